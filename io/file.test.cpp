// Tests of the file systems: both real backends (parameterized) and the fault wrapper.

#include "io/file.hpp"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <random>
#include <thread>

#include "io/fault_file.hpp"
#include "io/test_util.hpp"

namespace hearth::io {
namespace {

std::string random_bytes(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::string s(n, '\0');
  for (auto& c : s) c = static_cast<char>(rng());
  return s;
}

/// Writes `content` to `path` (replacing it) without the atomic dance.
void write_plain(file_system& fs, const std::string& path, std::string_view content) {
  auto gone = fs.remove(path);
  ASSERT_TRUE(gone.ok() || gone.err().code == errc::not_found);
  auto f = fs.open_appendable(path);
  HEARTH_ASSERT_OK(f);
  HEARTH_ASSERT_OK((*f)->append(as_bytes(content)));
  HEARTH_ASSERT_OK((*f)->close());
}

std::string read_or_die(file_system& fs, const std::string& path) {
  auto r = fs.read_file(path);
  EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.err().to_string());
  return r.ok() ? *r : std::string();
}

class io_file : public testing::backend_test {};

TEST_P(io_file, name_matches_backend) {
  EXPECT_EQ(fs_->name(), GetParam() == backend::io_uring ? "io_uring" : "posix");
}

TEST_P(io_file, append_sync_read_round_trip) {
  // Small appends (buffered), one crossing the buffer edge and one bigger than the buffer.
  const std::string path = dir_ / "f";
  auto f = fs_->open_appendable(path);
  HEARTH_ASSERT_OK(f);
  std::string want;
  const size_t sizes[] = {1, 7, 100, 4096, 60000, 10, 200000, 3, 65536, 1};
  uint32_t seed = 1;
  for (size_t n : sizes) {
    std::string chunk = random_bytes(n, seed++);
    HEARTH_ASSERT_OK((*f)->append(as_bytes(chunk)));
    want += chunk;
    EXPECT_EQ((*f)->size(), want.size());
  }
  HEARTH_ASSERT_OK((*f)->sync());
  EXPECT_EQ(read_or_die(*fs_, path), want);  // visible before close: sync wrote it
  HEARTH_ASSERT_OK((*f)->sync());            // nothing new: still fine
  HEARTH_ASSERT_OK((*f)->close());
  EXPECT_EQ(read_or_die(*fs_, path), want);
  auto size = fs_->file_size(path);
  HEARTH_ASSERT_OK(size);
  EXPECT_EQ(*size, want.size());
}

TEST_P(io_file, close_writes_out_the_buffer) {
  const std::string path = dir_ / "f";
  auto f = fs_->open_appendable(path);
  HEARTH_ASSERT_OK(f);
  HEARTH_ASSERT_OK((*f)->append(as_bytes(std::string_view("hello"))));
  EXPECT_EQ(read_or_die(*fs_, path), "");  // still in the user-space buffer
  HEARTH_ASSERT_OK((*f)->close());
  EXPECT_EQ(read_or_die(*fs_, path), "hello");
  // A closed file refuses everything.
  EXPECT_FALSE((*f)->append(as_bytes(std::string_view("x"))).ok());
  EXPECT_FALSE((*f)->sync().ok());
  EXPECT_FALSE((*f)->close().ok());
}

TEST_P(io_file, reopen_appends_at_the_end) {
  const std::string path = dir_ / "f";
  write_plain(*fs_, path, "abc");
  auto f = fs_->open_appendable(path);
  HEARTH_ASSERT_OK(f);
  EXPECT_EQ((*f)->size(), 3u);
  HEARTH_ASSERT_OK((*f)->append(as_bytes(std::string_view("def"))));
  HEARTH_ASSERT_OK((*f)->sync());
  EXPECT_EQ((*f)->size(), 6u);
  f->reset();  // the destructor closes too
  EXPECT_EQ(read_or_die(*fs_, path), "abcdef");
}

TEST_P(io_file, read_large_file) {
  const std::string path = dir_ / "big";
  const std::string want = random_bytes((3 << 20) + 123, 7);  // several read chunks
  write_plain(*fs_, path, want);
  EXPECT_EQ(read_or_die(*fs_, path), want);
  write_plain(*fs_, dir_ / "empty", "");
  EXPECT_EQ(read_or_die(*fs_, dir_ / "empty"), "");
}

TEST_P(io_file, missing_files_are_not_found_and_named) {
  const std::string path = dir_ / "nope";
  auto r = fs_->read_file(path);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.err().code, errc::not_found);
  EXPECT_NE(r.err().message.find(path), std::string::npos) << r.err().message;
  EXPECT_NE(r.err().message.find("No such file"), std::string::npos) << r.err().message;

  auto rm = fs_->remove(path);
  ASSERT_FALSE(rm.ok());
  EXPECT_EQ(rm.err().code, errc::not_found);
  EXPECT_NE(rm.err().message.find(path), std::string::npos) << rm.err().message;

  auto mv = fs_->rename(path, dir_ / "other");
  ASSERT_FALSE(mv.ok());
  EXPECT_EQ(mv.err().code, errc::not_found);
  EXPECT_NE(mv.err().message.find(path), std::string::npos) << mv.err().message;

  auto sz = fs_->file_size(path);
  ASSERT_FALSE(sz.ok());
  EXPECT_EQ(sz.err().code, errc::not_found);

  auto ls = fs_->list_dir(dir_ / "no-dir");
  ASSERT_FALSE(ls.ok());
  EXPECT_EQ(ls.err().code, errc::not_found);

  auto open = fs_->open_appendable(dir_ / "no-dir/f");
  ASSERT_FALSE(open.ok());
  EXPECT_NE(open.err().message.find("no-dir/f"), std::string::npos) << open.err().message;

  auto ex = fs_->exists(path);
  HEARTH_ASSERT_OK(ex);
  EXPECT_FALSE(*ex);
}

TEST_P(io_file, write_file_atomic_replaces_and_leaves_no_tmp) {
  const std::string path = dir_ / "meta.json";
  HEARTH_ASSERT_OK(fs_->write_file_atomic(path, as_bytes(std::string_view("version one"))));
  EXPECT_EQ(read_or_die(*fs_, path), "version one");
  // A stale tmp from an earlier crash, longer than the new content: must not leak into it.
  write_plain(*fs_, path + ".tmp", "stale stale stale stale stale");
  HEARTH_ASSERT_OK(fs_->write_file_atomic(path, as_bytes(std::string_view("v2"))));
  EXPECT_EQ(read_or_die(*fs_, path), "v2");
  auto names = fs_->list_dir(dir_.path());
  HEARTH_ASSERT_OK(names);
  EXPECT_EQ(*names, std::vector<std::string>{"meta.json"});
}

TEST_P(io_file, write_behind_writes_out_the_buffer_and_keeps_appending) {
  const std::string path = dir_ / "f";
  auto f = fs_->open_appendable(path);
  HEARTH_ASSERT_OK(f);
  HEARTH_ASSERT_OK((*f)->append(as_bytes(std::string_view("buffered|"))));
  HEARTH_ASSERT_OK((*f)->write_behind());
  // Written out (not only buffered): another reader sees it before any sync or close.
  EXPECT_EQ(read_or_die(*fs_, path), "buffered|");
  HEARTH_ASSERT_OK((*f)->write_behind());  // nothing new: fine
  HEARTH_ASSERT_OK((*f)->append(as_bytes(std::string_view("more"))));
  HEARTH_ASSERT_OK((*f)->sync());
  HEARTH_ASSERT_OK((*f)->close());
  EXPECT_EQ(read_or_die(*fs_, path), "buffered|more");
  EXPECT_FALSE((*f)->write_behind().ok());  // closed
}

TEST_P(io_file, write_file_atomic_in_write_behind_steps) {
  // Not a multiple of the step, so the last piece is short.
  const size_t n = 2 * file_system::write_behind_bytes + 12345;
  std::string data(n, '\0');
  for (size_t i = 0; i < n; ++i) data[i] = static_cast<char>(i * 131 + (i >> 16));
  const std::string path = dir_ / "big";
  HEARTH_ASSERT_OK(fs_->write_file_atomic(path, as_bytes(data)));
  EXPECT_EQ(read_or_die(*fs_, path), data);
}

TEST_P(io_file, write_file_atomic_into_missing_dir_fails_cleanly) {
  auto st = fs_->write_file_atomic(dir_ / "missing/x", as_bytes(std::string_view("x")));
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.err().message.find("missing/x"), std::string::npos) << st.err().message;
}

TEST_P(io_file, list_dir_is_sorted_and_skips_dots) {
  for (const char* n : {"b", "a", "c10", "c2", ".hidden"}) write_plain(*fs_, dir_ / n, n);
  HEARTH_ASSERT_OK(fs_->create_dirs(dir_ / "sub"));
  auto names = fs_->list_dir(dir_.path());
  HEARTH_ASSERT_OK(names);
  EXPECT_EQ(*names, (std::vector<std::string>{".hidden", "a", "b", "c10", "c2", "sub"}));
}

TEST_P(io_file, rename_remove_create_dirs_truncate) {
  const std::string a = dir_ / "a";
  const std::string b = dir_ / "b";
  write_plain(*fs_, a, "content a");
  write_plain(*fs_, b, "content b");
  HEARTH_ASSERT_OK(fs_->rename(a, b));  // replaces b
  EXPECT_EQ(read_or_die(*fs_, b), "content a");
  EXPECT_FALSE(*fs_->exists(a));

  HEARTH_ASSERT_OK(fs_->truncate(b, 4));
  EXPECT_EQ(read_or_die(*fs_, b), "cont");
  HEARTH_ASSERT_OK(fs_->truncate(b, 6));  // extends with zeros
  EXPECT_EQ(read_or_die(*fs_, b), std::string("cont\0\0", 6));

  const std::string nested = dir_ / "x/y/z";
  HEARTH_ASSERT_OK(fs_->create_dirs(nested));
  HEARTH_ASSERT_OK(fs_->create_dirs(nested));  // idempotent
  HEARTH_ASSERT_OK(fs_->sync_dir(nested));
  EXPECT_TRUE(*fs_->exists(nested));
  auto on_file = fs_->create_dirs(b + "/sub");
  EXPECT_FALSE(on_file.ok());

  HEARTH_ASSERT_OK(fs_->remove(b));
  EXPECT_FALSE(*fs_->exists(b));
  HEARTH_ASSERT_OK(fs_->remove(nested));  // an empty directory
  EXPECT_FALSE(*fs_->exists(nested));
  auto not_empty = fs_->remove(dir_ / "x");
  ASSERT_FALSE(not_empty.ok());
  EXPECT_EQ(not_empty.err().code, errc::io_error);
  EXPECT_NE(not_empty.err().message.find(dir_ / "x"), std::string::npos);
}

TEST_P(io_file, concurrent_files_share_one_file_system) {
  // Each thread owns one file; all share the backend (for io_uring: the ring pool).
  constexpr int threads = 4;
  constexpr int rounds = 20;
  std::vector<std::thread> pool;
  std::vector<std::string> errors(threads);
  for (int t = 0; t < threads; ++t) {
    pool.emplace_back([&, t] {
      const std::string path = dir_ / ("t" + std::to_string(t));
      auto f = fs_->open_appendable(path);
      if (!f.ok()) {
        errors[t] = f.err().to_string();
        return;
      }
      std::string want;
      for (int r = 0; r < rounds; ++r) {
        const std::string chunk = random_bytes(100 + r * 1000, t * 100 + r);
        want += chunk;
        if (auto st = (*f)->append(as_bytes(chunk)); !st.ok()) errors[t] = st.err().to_string();
        if (auto st = (*f)->sync(); !st.ok()) errors[t] = st.err().to_string();
        auto got = fs_->read_file(path);
        if (!got.ok() || *got != want)
          errors[t] = "read back differs at round " + std::to_string(r);
      }
    });
  }
  for (auto& th : pool) th.join();
  for (int t = 0; t < threads; ++t) EXPECT_EQ(errors[t], "") << "thread " << t;
}

// Ranges in any order, empty ones, more than one io_uring batch (8), one of a large file's whole
// length: each lands at its own offset and nothing else is written.
TEST_P(io_file, readable_file_reads_ranges_at_their_offsets) {
  const std::string path = dir_ / "r";
  const std::string content = random_bytes((size_t{3} << 20) + 17, 5);
  write_plain(*fs_, path, content);
  auto f = fs_->open_readable(path);
  HEARTH_ASSERT_OK(f);
  EXPECT_EQ((*f)->size(), content.size());
  std::mt19937 rng(9);
  for (int round = 0; round < 20; ++round) {
    std::vector<byte_range> ranges;
    const int n = 1 + static_cast<int>(rng() % 20);
    for (int k = 0; k < n; ++k) {
      const uint64_t at = rng() % (content.size() + 1);
      ranges.push_back({at, rng() % (content.size() - at + 1) / (k % 3 == 0 ? 1 : 64)});
    }
    std::string dst(content.size(), '\x5a');
    HEARTH_ASSERT_OK((*f)->read(ranges, dst.data()));
    std::vector<bool> covered(content.size(), false);
    for (const auto& r : ranges)
      for (uint64_t i = r.offset; i < r.offset + r.length; ++i) covered[i] = true;
    for (size_t i = 0; i < content.size(); ++i)
      ASSERT_EQ(dst[i], covered[i] ? content[i] : '\x5a') << "round " << round << " byte " << i;
  }
  const byte_range all{0, content.size()};
  std::string dst(content.size(), '\0');
  HEARTH_ASSERT_OK((*f)->read({&all, 1}, dst.data()));
  EXPECT_EQ(dst, content);
}

TEST_P(io_file, readable_file_reads_what_it_opened_and_refuses_past_the_end) {
  const std::string path = dir_ / "r";
  write_plain(*fs_, path, "old content, twenty-nine byte");
  auto f = fs_->open_readable(path);
  HEARTH_ASSERT_OK(f);
  // Replaced (as compaction and retention replace and remove segments): the open file still
  // reads the old bytes.
  HEARTH_ASSERT_OK(fs_->write_file_atomic(path, as_bytes("new")));
  std::string dst(29, '\0');
  const byte_range head{0, 11};
  HEARTH_ASSERT_OK((*f)->read({&head, 1}, dst.data()));
  EXPECT_EQ(dst.substr(0, 11), "old content");
  // Past the size at open: refused, naming the file.
  const byte_range past{20, 10};
  auto st = (*f)->read({&past, 1}, dst.data());
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.err().code, errc::io_error);
  EXPECT_NE(st.err().message.find(path), std::string::npos) << st.err().message;

  // A file that shrinks after the open ends before the range: an error, not a hang or garbage.
  const std::string other = dir_ / "s";
  write_plain(*fs_, other, std::string(100, 'x'));
  auto g = fs_->open_readable(other);
  HEARTH_ASSERT_OK(g);
  HEARTH_ASSERT_OK(fs_->truncate(other, 10));
  std::string out(100, '\0');
  const byte_range tail{5, 50};
  st = (*g)->read({&tail, 1}, out.data());
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.err().code, errc::io_error);
  EXPECT_NE(st.err().message.find("ends at 10"), std::string::npos) << st.err().message;

  auto missing = fs_->open_readable(dir_ / "nope");
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.err().code, errc::not_found);
}

INSTANTIATE_TEST_SUITE_P(backends, io_file, testing::real_backends(), testing::backend_name);

// ---- make_file_system ----

/// Sets an environment variable for one scope.
class scoped_env {
 public:
  scoped_env(const char* name, const char* value) : name_(name) {
    if (const char* old = ::getenv(name)) old_ = old;
    ::setenv(name, value, 1);
  }
  scoped_env(const scoped_env&) = delete;
  scoped_env& operator=(const scoped_env&) = delete;
  ~scoped_env() {
    if (old_) {
      ::setenv(name_, old_->c_str(), 1);
    } else {
      ::unsetenv(name_);
    }
  }

 private:
  const char* name_;
  std::optional<std::string> old_;
};

TEST(io_file, make_file_system_backends) {
  auto posix = make_file_system(backend::posix);
  HEARTH_ASSERT_OK(posix);
  EXPECT_EQ((*posix)->name(), "posix");
  // The reference machine has io_uring (dependencies.md section 5); forced, it must come up.
  auto uring = make_file_system(backend::io_uring);
  HEARTH_ASSERT_OK(uring);
  EXPECT_EQ((*uring)->name(), "io_uring");
  {
    scoped_env env("HEARTH_IO_BACKEND", "posix");
    auto a = make_file_system(backend::automatic);
    HEARTH_ASSERT_OK(a);
    EXPECT_EQ((*a)->name(), "posix");
    auto forced = make_file_system(backend::io_uring);  // explicit configuration wins
    HEARTH_ASSERT_OK(forced);
    EXPECT_EQ((*forced)->name(), "io_uring");
  }
  {
    scoped_env env("HEARTH_IO_BACKEND", "io_uring");
    auto a = make_file_system(backend::automatic);
    HEARTH_ASSERT_OK(a);
    EXPECT_EQ((*a)->name(), "io_uring");
  }
  {
    scoped_env env("HEARTH_IO_BACKEND", "spdk");
    auto a = make_file_system(backend::automatic);
    ASSERT_FALSE(a.ok());
    EXPECT_EQ(a.err().code, errc::bad_config);
    EXPECT_NE(a.err().message.find("spdk"), std::string::npos);
  }
}

TEST(io_file, errno_error_maps_codes) {
  EXPECT_EQ(errno_error("open", "/p", ENOENT).code, errc::not_found);
  EXPECT_EQ(errno_error("write", "/p", ENOSPC).code, errc::no_space);
  EXPECT_EQ(errno_error("write", "/p", EDQUOT).code, errc::no_space);
  const error e = errno_error("fdatasync", "/data/wal/1.wal", EIO);
  EXPECT_EQ(e.code, errc::io_error);
  EXPECT_EQ(e.message, "fdatasync /data/wal/1.wal: Input/output error");
  EXPECT_EQ(parent_dir("a/b"), "a");
  EXPECT_EQ(parent_dir("a/b/"), "a");
  EXPECT_EQ(parent_dir("/b"), "/");
  EXPECT_EQ(parent_dir("b"), ".");
}

// ---- fault_file_system ----

class io_fault : public io_file {
 protected:
  void SetUp() override {
    io_file::SetUp();
    ASSERT_NE(fs_, nullptr);
    fault_ = std::make_unique<fault_file_system>(*fs_);
  }
  std::unique_ptr<fault_file_system> fault_;
};

TEST_P(io_fault, crash_drops_unsynced_appends) {
  const std::string path = dir_ / "f";
  write_plain(*fs_, path, "old|");  // existed before: counts as durable
  auto f = fault_->open_appendable(path);
  HEARTH_ASSERT_OK(f);
  HEARTH_ASSERT_OK((*f)->append(as_bytes(std::string_view("synced|"))));
  HEARTH_ASSERT_OK((*f)->sync());
  HEARTH_ASSERT_OK((*f)->append(as_bytes(std::string_view("lost"))));
  HEARTH_ASSERT_OK(fault_->crash());
  EXPECT_EQ(read_or_die(*fs_, path), "old|synced|");
  // The handle died with the "machine".
  EXPECT_FALSE((*f)->append(as_bytes(std::string_view("x"))).ok());
  EXPECT_FALSE((*f)->sync().ok());
  f->reset();
  EXPECT_EQ(read_or_die(*fs_, path), "old|synced|");
}

TEST_P(io_fault, write_behind_is_not_durable) {
  const std::string path = dir_ / "f";
  write_plain(*fs_, path, "old|");
  auto f = fault_->open_appendable(path);
  HEARTH_ASSERT_OK(f);
  HEARTH_ASSERT_OK((*f)->append(as_bytes(std::string_view("synced|"))));
  HEARTH_ASSERT_OK((*f)->sync());
  HEARTH_ASSERT_OK((*f)->append(as_bytes(std::string_view("written back, not synced"))));
  HEARTH_ASSERT_OK((*f)->write_behind());
  HEARTH_ASSERT_OK(fault_->crash());
  EXPECT_EQ(read_or_die(*fs_, path), "old|synced|");
  EXPECT_FALSE((*f)->write_behind().ok());
}

TEST_P(io_fault, crash_drops_files_whose_directory_was_not_synced) {
  const std::string kept = dir_ / "kept";
  const std::string lost = dir_ / "lost";
  auto k = fault_->open_appendable(kept);
  HEARTH_ASSERT_OK(k);
  HEARTH_ASSERT_OK((*k)->append(as_bytes(std::string_view("k"))));
  HEARTH_ASSERT_OK((*k)->sync());
  HEARTH_ASSERT_OK(fault_->sync_dir(dir_.path()));
  auto l = fault_->open_appendable(lost);
  HEARTH_ASSERT_OK(l);
  HEARTH_ASSERT_OK((*l)->append(as_bytes(std::string_view("l"))));
  HEARTH_ASSERT_OK((*l)->sync());  // data synced, name not
  HEARTH_ASSERT_OK(fault_->crash());
  EXPECT_EQ(read_or_die(*fs_, kept), "k");
  EXPECT_FALSE(*fs_->exists(lost));
}

TEST_P(io_fault, atomic_write_survives_crash_and_bare_rename_does_not) {
  const std::string path = dir_ / "meta";
  HEARTH_ASSERT_OK(fault_->write_file_atomic(path, as_bytes(std::string_view("one"))));
  HEARTH_ASSERT_OK(fault_->crash());
  EXPECT_EQ(read_or_die(*fs_, path), "one");

  // Same steps without the final directory sync: the rename is undone by the crash.
  const std::string tmp = dir_ / "meta.tmp";
  auto f = fault_->open_appendable(tmp);
  HEARTH_ASSERT_OK(f);
  HEARTH_ASSERT_OK((*f)->append(as_bytes(std::string_view("two"))));
  HEARTH_ASSERT_OK((*f)->sync());
  HEARTH_ASSERT_OK((*f)->close());
  HEARTH_ASSERT_OK(fault_->rename(tmp, path));
  EXPECT_EQ(read_or_die(*fs_, path), "two");
  HEARTH_ASSERT_OK(fault_->crash());
  EXPECT_EQ(read_or_die(*fs_, path), "one");
  EXPECT_FALSE(*fs_->exists(tmp));  // its creation was never made durable either
  auto names = fs_->list_dir(dir_.path());
  HEARTH_ASSERT_OK(names);
  EXPECT_EQ(*names, std::vector<std::string>{"meta"});
}

TEST_P(io_fault, injected_errors_have_the_right_codes_and_stick) {
  const std::string path = dir_ / "f";
  auto f = fault_->open_appendable(path);
  HEARTH_ASSERT_OK(f);
  fault_->fail_nth(fault_op::sync, 2, errc::no_space);
  HEARTH_ASSERT_OK((*f)->append(as_bytes(std::string_view("a"))));
  HEARTH_ASSERT_OK((*f)->sync());  // the first sync passes
  HEARTH_ASSERT_OK((*f)->append(as_bytes(std::string_view("b"))));
  auto st = (*f)->sync();
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.err().code, errc::no_space);
  EXPECT_NE(st.err().message.find(path), std::string::npos) << st.err().message;
  // Poisoned: a retried sync must not pretend the data is durable.
  auto again = (*f)->sync();
  ASSERT_FALSE(again.ok());
  EXPECT_EQ(again.err().code, errc::no_space);
  EXPECT_EQ(fault_->count(fault_op::sync), 2u);  // the refused retry does not count

  auto g = fault_->open_appendable(dir_ / "g");
  HEARTH_ASSERT_OK(g);
  fault_->fail_nth(fault_op::write, 1, errc::io_error);
  auto w = (*g)->append(as_bytes(std::string_view("x")));
  ASSERT_FALSE(w.ok());
  EXPECT_EQ(w.err().code, errc::io_error);

  fault_->fail_nth(fault_op::rename, 1, errc::io_error);
  auto mv = fault_->rename(path, dir_ / "h");
  ASSERT_FALSE(mv.ok());
  EXPECT_EQ(mv.err().code, errc::io_error);
  EXPECT_TRUE(*fs_->exists(path));  // nothing happened

  fault_->fail_nth(fault_op::sync_dir, 1, errc::io_error);
  EXPECT_FALSE(fault_->sync_dir(dir_.path()).ok());
  HEARTH_ASSERT_OK(fault_->sync_dir(dir_.path()));

  fault_->fail_nth(fault_op::sync, 1, errc::io_error);
  fault_->clear_faults();
  auto k = fault_->open_appendable(dir_ / "k");
  HEARTH_ASSERT_OK(k);
  HEARTH_ASSERT_OK((*k)->sync());
}

TEST_P(io_fault, torn_write_leaves_half_the_bytes) {
  const std::string path = dir_ / "f";
  auto f = fault_->open_appendable(path);
  HEARTH_ASSERT_OK(f);
  fault_->tear_nth(2);
  HEARTH_ASSERT_OK((*f)->append(as_bytes(std::string_view("whole|"))));
  auto st = (*f)->append(as_bytes(std::string_view("0123456789")));
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.err().code, errc::io_error);
  EXPECT_FALSE((*f)->append(as_bytes(std::string_view("more"))).ok());
  f->reset();
  EXPECT_EQ(read_or_die(*fs_, path), "whole|01234");
}

INSTANTIATE_TEST_SUITE_P(backends, io_fault, testing::real_backends(), testing::backend_name);

}  // namespace
}  // namespace hearth::io
