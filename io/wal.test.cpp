// WAL tests, against both real backends: round trips, cut/remove/after_seq, torn tails at every
// byte offset, corruption, garbage files, and crashes through the fault wrapper.

#include "io/wal.hpp"

#include <gtest/gtest.h>

#include <random>

#include "io/fault_file.hpp"
#include "io/test_util.hpp"

namespace hearth::io {
namespace {

using testing::temp_dir;

struct record {
  uint64_t seq;
  std::string payload;
  bool operator==(const record&) const = default;
};

std::ostream& operator<<(std::ostream& os, const record& r) {
  return os << "{" << r.seq << ", " << r.payload.size() << " bytes}";
}

std::string payload_for(int i) {
  // Varied sizes, content derived from i so that mix-ups show.
  return std::string(1 + (i * 37) % 300, static_cast<char>('a' + i % 26)) + std::to_string(i);
}

class wal : public ::testing::TestWithParam<backend> {
 protected:
  void SetUp() override {
    ASSERT_FALSE(tmp_.path().empty());
    fs_ = testing::make_backend_or_fail(GetParam());
    ASSERT_NE(fs_, nullptr);
    dir_ = tmp_ / "wal";
  }

  std::unique_ptr<wal_writer> open_writer(file_system& fs, uint64_t max = 1 << 20) {
    auto w = wal_writer::open(fs, dir_, max);
    EXPECT_TRUE(w.ok()) << (w.ok() ? "" : w.err().to_string());
    return w.ok() ? std::move(*w) : nullptr;
  }

  /// Replays `dir_` after `after`; fails the test on error.
  std::vector<record> replay(file_system& fs, uint64_t after = 0,
                             wal_replay_stats* stats = nullptr) {
    std::vector<record> out;
    auto st = replay_wal(
        fs, dir_, after,
        [&](uint64_t seq, bytes_view p) {
          out.push_back({seq, std::string(as_chars(p))});
          return status{};
        },
        stats);
    EXPECT_TRUE(st.ok()) << (st.ok() ? "" : st.err().to_string());
    return out;
  }

  std::string path_of(uint64_t seq) const { return dir_ + "/" + wal_file_name(seq); }

  std::string read(const std::string& path) {
    auto r = fs_->read_file(path);
    EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.err().to_string());
    return r.ok() ? *r : std::string();
  }

  void write_plain(const std::string& path, std::string_view content) {
    auto gone = fs_->remove(path);
    ASSERT_TRUE(gone.ok() || gone.err().code == errc::not_found);
    auto f = fs_->open_appendable(path);
    HEARTH_ASSERT_OK(f);
    HEARTH_ASSERT_OK((*f)->append(as_bytes(content)));
    HEARTH_ASSERT_OK((*f)->close());
  }

  temp_dir tmp_;
  std::unique_ptr<file_system> fs_;
  std::string dir_;
};

TEST_P(wal, file_names) {
  EXPECT_EQ(wal_file_name(1), "00000000000000000001.wal");
  EXPECT_EQ(wal_file_name(18446744073709551615ull), "18446744073709551615.wal");
}

TEST_P(wal, append_sync_replay_round_trip) {
  auto w = open_writer(*fs_);
  ASSERT_NE(w, nullptr);
  EXPECT_EQ(w->current_seq(), 1u);
  std::vector<record> want;
  uint64_t payload_bytes = 0;
  for (int i = 0; i < 1000; ++i) {
    want.push_back({1, payload_for(i)});
    payload_bytes += want.back().payload.size();
    HEARTH_ASSERT_OK(w->append(as_bytes(want.back().payload)));
  }
  HEARTH_ASSERT_OK(w->sync());
  EXPECT_EQ(w->bytes_written(), 8 + 8 * 1000 + payload_bytes);
  EXPECT_EQ(w->current_file_bytes(), w->bytes_written());
  w.reset();

  wal_replay_stats stats;
  EXPECT_EQ(replay(*fs_, 0, &stats), want);
  EXPECT_EQ(stats.files, 1u);
  EXPECT_EQ(stats.records, 1000u);
  EXPECT_EQ(stats.bytes, payload_bytes);
  EXPECT_EQ(stats.torn_tails, 0u);
  EXPECT_EQ(stats.corrupt_records, 0u);
  EXPECT_EQ(stats.truncated_bytes, 0u);
  EXPECT_EQ(stats.last_seq, 1u);
}

TEST_P(wal, missing_or_empty_dir_replays_nothing) {
  wal_replay_stats stats;
  EXPECT_TRUE(replay(*fs_, 0, &stats).empty());
  EXPECT_EQ(stats.files, 0u);
  auto w = open_writer(*fs_);  // creates the dir and an empty file 1
  ASSERT_NE(w, nullptr);
  w.reset();
  EXPECT_TRUE(replay(*fs_, 0, &stats).empty());
  EXPECT_EQ(stats.files, 1u);
  EXPECT_EQ(stats.torn_tails, 0u);
}

TEST_P(wal, rejects_empty_and_oversized_records_without_poisoning) {
  auto w = open_writer(*fs_, 16);
  ASSERT_NE(w, nullptr);
  auto empty = w->append({});
  ASSERT_FALSE(empty.ok());
  EXPECT_EQ(empty.err().code, errc::invalid_argument);
  auto big = w->append(as_bytes(std::string(17, 'x')));
  ASSERT_FALSE(big.ok());
  EXPECT_EQ(big.err().code, errc::invalid_argument);
  HEARTH_ASSERT_OK(w->append(as_bytes(std::string(16, 'x'))));
  HEARTH_ASSERT_OK(w->sync());
  w.reset();
  EXPECT_EQ(replay(*fs_).size(), 1u);

  auto zero = wal_writer::open(*fs_, dir_, 0);
  ASSERT_FALSE(zero.ok());
  EXPECT_EQ(zero.err().code, errc::invalid_argument);
  auto huge = wal_writer::open(*fs_, dir_, wal_max_record_limit + 1);
  EXPECT_FALSE(huge.ok());
}

TEST_P(wal, cut_remove_up_to_and_after_seq) {
  auto w = open_writer(*fs_);
  ASSERT_NE(w, nullptr);
  std::vector<record> all;
  for (uint64_t file = 1; file <= 3; ++file) {
    EXPECT_EQ(w->current_seq(), file);
    for (int i = 0; i < 3; ++i) {
      all.push_back({file, "f" + std::to_string(file) + "r" + std::to_string(i)});
      HEARTH_ASSERT_OK(w->append(as_bytes(all.back().payload)));
    }
    if (file < 3) {
      auto closed = w->cut();
      HEARTH_ASSERT_OK(closed);
      EXPECT_EQ(*closed, file);
    }
  }
  HEARTH_ASSERT_OK(w->sync());
  EXPECT_EQ(w->current_seq(), 3u);

  EXPECT_EQ(replay(*fs_, 0), all);
  EXPECT_EQ(replay(*fs_, 1), std::vector<record>(all.begin() + 3, all.end()));
  EXPECT_EQ(replay(*fs_, 3), std::vector<record>{});

  auto bad = w->remove_up_to(3);  // the open file
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.err().code, errc::invalid_argument);
  HEARTH_ASSERT_OK(w->remove_up_to(2));
  auto names = fs_->list_dir(dir_);
  HEARTH_ASSERT_OK(names);
  EXPECT_EQ(*names, std::vector<std::string>{wal_file_name(3)});
  EXPECT_EQ(replay(*fs_, 0), std::vector<record>(all.begin() + 6, all.end()));
  HEARTH_ASSERT_OK(w->remove_up_to(2));  // nothing left to remove: fine
  w.reset();

  // A new writer never appends to an old file: it starts after the highest one.
  auto w2 = open_writer(*fs_);
  ASSERT_NE(w2, nullptr);
  EXPECT_EQ(w2->current_seq(), 4u);
}

TEST_P(wal, writer_starts_after_highest_file_and_ignores_other_names) {
  HEARTH_ASSERT_OK(fs_->create_dirs(dir_));
  write_plain(path_of(7), "garbage, not even a header");
  write_plain(dir_ + "/notes.txt", "hi");
  write_plain(dir_ + "/00000000000000000099.wal.tmp", "x");
  write_plain(dir_ + "/99999999999999999999.wal", "x");  // does not fit in 64 bits: not ours
  auto w = open_writer(*fs_);
  ASSERT_NE(w, nullptr);
  EXPECT_EQ(w->current_seq(), 8u);
  HEARTH_ASSERT_OK(w->append(as_bytes(std::string_view("r"))));
  HEARTH_ASSERT_OK(w->sync());
  w.reset();
  wal_replay_stats stats;
  EXPECT_EQ(replay(*fs_, 0, &stats), (std::vector<record>{{8, "r"}}));
  EXPECT_EQ(stats.corrupt_files, 1u);
  EXPECT_EQ(read(path_of(7)), "garbage, not even a header");  // skipped, not truncated
}

TEST_P(wal, torn_tail_at_every_byte_offset_of_the_last_record) {
  auto w = open_writer(*fs_);
  ASSERT_NE(w, nullptr);
  std::vector<record> want;
  for (int i = 0; i < 4; ++i) {
    want.push_back({1, payload_for(i).substr(0, 20)});
    HEARTH_ASSERT_OK(w->append(as_bytes(want.back().payload)));
  }
  const uint64_t last_start = w->current_file_bytes() - 8 - want.back().payload.size();
  HEARTH_ASSERT_OK(w->sync());
  w.reset();
  const std::string full = read(path_of(1));
  ASSERT_EQ(full.size(), last_start + 8 + 20);
  want.pop_back();

  for (uint64_t cut = last_start; cut < full.size(); ++cut) {
    SCOPED_TRACE("cut at " + std::to_string(cut));
    write_plain(path_of(1), std::string_view(full).substr(0, cut));
    wal_replay_stats stats;
    EXPECT_EQ(replay(*fs_, 0, &stats), want);
    EXPECT_EQ(stats.torn_tails, cut > last_start ? 1u : 0u);
    EXPECT_EQ(stats.corrupt_records, 0u);
    EXPECT_EQ(stats.truncated_bytes, cut - last_start);
    EXPECT_EQ(*fs_->file_size(path_of(1)), last_start);
    // Cut back to the good prefix: the next replay finds nothing wrong.
    wal_replay_stats again;
    EXPECT_EQ(replay(*fs_, 0, &again), want);
    EXPECT_EQ(again.torn_tails, 0u);
  }
}

TEST_P(wal, torn_header_of_a_fresh_file) {
  HEARTH_ASSERT_OK(fs_->create_dirs(dir_));
  for (size_t n = 0; n < 8; ++n) {
    write_plain(path_of(1), std::string_view("HWAL\x01\0\0\0", 8).substr(0, n));
    wal_replay_stats stats;
    EXPECT_TRUE(replay(*fs_, 0, &stats).empty());
    EXPECT_EQ(stats.torn_tails, n > 0 ? 1u : 0u) << n;
    EXPECT_EQ(stats.corrupt_files, 0u) << n;
    EXPECT_EQ(*fs_->file_size(path_of(1)), 0u);
  }
}

TEST_P(wal, trailing_zeros_are_a_torn_tail) {
  auto w = open_writer(*fs_);
  ASSERT_NE(w, nullptr);
  for (int i = 0; i < 5; ++i) HEARTH_ASSERT_OK(w->append(as_bytes(payload_for(i))));
  HEARTH_ASSERT_OK(w->sync());
  const uint64_t good = w->current_file_bytes();
  w.reset();
  HEARTH_ASSERT_OK(fs_->truncate(path_of(1), good + 4096));  // zero-filled extension
  wal_replay_stats stats;
  EXPECT_EQ(replay(*fs_, 0, &stats).size(), 5u);
  EXPECT_EQ(stats.torn_tails, 1u);
  EXPECT_EQ(stats.truncated_bytes, 4096u);
  EXPECT_EQ(*fs_->file_size(path_of(1)), good);
}

TEST_P(wal, crc_mismatch_stops_the_file_and_later_files_still_replay) {
  auto w = open_writer(*fs_);
  ASSERT_NE(w, nullptr);
  std::vector<uint64_t> ends;  // file offset after each record of file 1
  for (int i = 0; i < 5; ++i) {
    HEARTH_ASSERT_OK(w->append(as_bytes("one-" + std::to_string(i))));
    ends.push_back(w->current_file_bytes());
  }
  HEARTH_ASSERT_OK(w->cut());
  HEARTH_ASSERT_OK(w->append(as_bytes(std::string_view("two-0"))));
  HEARTH_ASSERT_OK(w->sync());
  w.reset();

  // Flip one payload byte of record 2 (0-based): records 0 and 1 survive, 2..4 are dropped.
  std::string bytes = read(path_of(1));
  bytes[ends[1] + 8] ^= 0x01;
  write_plain(path_of(1), bytes);
  wal_replay_stats stats;
  EXPECT_EQ(replay(*fs_, 0, &stats),
            (std::vector<record>{{1, "one-0"}, {1, "one-1"}, {2, "two-0"}}));
  EXPECT_EQ(stats.corrupt_records, 1u);
  EXPECT_EQ(stats.torn_tails, 0u);
  EXPECT_EQ(stats.files, 2u);
  EXPECT_EQ(stats.last_seq, 2u);
  EXPECT_EQ(*fs_->file_size(path_of(1)), ends[1]);
}

TEST_P(wal, crc_mismatch_in_the_last_record_is_a_torn_tail) {
  auto w = open_writer(*fs_);
  ASSERT_NE(w, nullptr);
  HEARTH_ASSERT_OK(w->append(as_bytes(std::string_view("first"))));
  const uint64_t good = w->current_file_bytes();
  HEARTH_ASSERT_OK(w->append(as_bytes(std::string_view("second"))));
  HEARTH_ASSERT_OK(w->sync());
  w.reset();
  std::string bytes = read(path_of(1));
  bytes.back() ^= 0x40;
  write_plain(path_of(1), bytes);
  wal_replay_stats stats;
  EXPECT_EQ(replay(*fs_, 0, &stats), (std::vector<record>{{1, "first"}}));
  EXPECT_EQ(stats.torn_tails, 1u);
  EXPECT_EQ(stats.corrupt_records, 0u);
  EXPECT_EQ(*fs_->file_size(path_of(1)), good);
}

TEST_P(wal, length_above_the_limit_is_corruption) {
  auto w = open_writer(*fs_);
  ASSERT_NE(w, nullptr);
  HEARTH_ASSERT_OK(w->append(as_bytes(std::string_view("ok"))));
  HEARTH_ASSERT_OK(w->sync());
  const uint64_t good = w->current_file_bytes();
  w.reset();
  encoder e;
  e.put_u32(1000);  // above the replay bound of 100 below
  e.put_u32(0);
  e.put_raw(std::string(1000, 'z'));
  write_plain(path_of(1), read(path_of(1)) + e.buffer());
  wal_replay_stats stats;
  std::vector<record> got;
  HEARTH_ASSERT_OK(replay_wal(
      *fs_, dir_, 0,
      [&](uint64_t seq, bytes_view p) {
        got.push_back({seq, std::string(as_chars(p))});
        return status{};
      },
      &stats, 100));
  EXPECT_EQ(got, (std::vector<record>{{1, "ok"}}));
  EXPECT_EQ(stats.corrupt_records, 1u);
  EXPECT_EQ(*fs_->file_size(path_of(1)), good);
}

TEST_P(wal, garbage_never_crashes) {
  HEARTH_ASSERT_OK(fs_->create_dirs(dir_));
  std::mt19937 rng(42);
  const std::string header("HWAL\x01\0\0\0", 8);
  for (int round = 0; round < 100; ++round) {
    std::string junk(rng() % 200, '\0');
    for (auto& c : junk) c = static_cast<char>(rng());
    if (round % 4 == 0) {
      // Small plausible lengths, so that parsing goes deeper than the first record header.
      for (size_t i = 0; i + 4 <= junk.size(); i += 13) junk[i + 1] = junk[i + 2] = junk[i + 3] = 0;
    }
    // Most rounds: a valid header, then garbage; some: garbage from byte 0.
    write_plain(path_of(1), round % 5 == 0 ? junk : header + junk);
    wal_replay_stats stats;
    auto st = replay_wal(
        *fs_, dir_, 0, [](uint64_t, bytes_view) { return status{}; }, &stats);
    HEARTH_ASSERT_OK(st);
    EXPECT_EQ(stats.files + stats.corrupt_files, 1u);
  }
}

TEST_P(wal, callback_error_stops_replay) {
  auto w = open_writer(*fs_);
  ASSERT_NE(w, nullptr);
  for (int i = 0; i < 3; ++i) HEARTH_ASSERT_OK(w->append(as_bytes(payload_for(i))));
  HEARTH_ASSERT_OK(w->sync());
  w.reset();
  int calls = 0;
  auto st = replay_wal(
      *fs_, dir_, 0,
      [&](uint64_t, bytes_view) {
        return ++calls == 2 ? status(errc::bad_labels, "nope") : status{};
      },
      nullptr);
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.err().code, errc::bad_labels);
  EXPECT_EQ(calls, 2);
  EXPECT_EQ(replay(*fs_).size(), 3u);  // nothing was cut
}

// ---- crashes through the fault wrapper ----

TEST_P(wal, crash_keeps_synced_records_and_loses_the_rest) {
  fault_file_system fault(*fs_);
  auto w = open_writer(fault);
  ASSERT_NE(w, nullptr);
  std::vector<record> synced;
  for (int i = 0; i < 50; ++i) {
    synced.push_back({1, payload_for(i)});
    HEARTH_ASSERT_OK(w->append(as_bytes(synced.back().payload)));
  }
  const uint64_t syncs_before = fault.count(fault_op::sync);
  HEARTH_ASSERT_OK(w->sync());
  EXPECT_EQ(fault.count(fault_op::sync), syncs_before + 1);  // group commit: one fsync for 50
  for (int i = 50; i < 60; ++i) HEARTH_ASSERT_OK(w->append(as_bytes(payload_for(i))));
  HEARTH_ASSERT_OK(fault.crash());
  w.reset();

  wal_replay_stats stats;
  EXPECT_EQ(replay(fault, 0, &stats), synced);
  EXPECT_EQ(stats.torn_tails, 0u);  // the crash cut at a sync point, i.e. a record boundary

  // Life goes on: a new writer, a new file, and both survive the next crash.
  auto w2 = open_writer(fault);
  ASSERT_NE(w2, nullptr);
  EXPECT_EQ(w2->current_seq(), 2u);
  HEARTH_ASSERT_OK(w2->append(as_bytes(std::string_view("after"))));
  HEARTH_ASSERT_OK(w2->sync());
  HEARTH_ASSERT_OK(fault.crash());
  w2.reset();
  synced.push_back({2, "after"});
  EXPECT_EQ(replay(fault), synced);
}

TEST_P(wal, crash_after_cut_keeps_both_files) {
  // The writer must sync the directory when it creates a file, or the crash model drops it.
  fault_file_system fault(*fs_);
  auto w = open_writer(fault);
  ASSERT_NE(w, nullptr);
  HEARTH_ASSERT_OK(w->append(as_bytes(std::string_view("a"))));
  HEARTH_ASSERT_OK(w->cut());
  HEARTH_ASSERT_OK(w->append(as_bytes(std::string_view("b"))));
  HEARTH_ASSERT_OK(w->sync());
  HEARTH_ASSERT_OK(fault.crash());
  w.reset();
  EXPECT_EQ(replay(fault), (std::vector<record>{{1, "a"}, {2, "b"}}));
}

TEST_P(wal, sync_errors_surface_with_their_code_and_poison_the_writer) {
  for (errc code : {errc::io_error, errc::no_space}) {
    SCOPED_TRACE(std::string(to_string(code)));
    fault_file_system fault(*fs_);
    auto w = open_writer(fault);
    ASSERT_NE(w, nullptr);
    HEARTH_ASSERT_OK(w->append(as_bytes(std::string_view("kept"))));
    HEARTH_ASSERT_OK(w->sync());
    HEARTH_ASSERT_OK(w->append(as_bytes(std::string_view("lost"))));
    fault.fail_nth(fault_op::sync, 1, code);
    auto st = w->sync();
    ASSERT_FALSE(st.ok());
    EXPECT_EQ(st.err().code, code);
    EXPECT_NE(st.err().message.find(wal_file_name(w->current_seq())), std::string::npos)
        << st.err().message;
    // Poisoned: neither appends nor a retried sync go through.
    auto again = w->append(as_bytes(std::string_view("x")));
    ASSERT_FALSE(again.ok());
    EXPECT_EQ(again.err().code, code);
    EXPECT_FALSE(w->sync().ok());
    EXPECT_FALSE(w->cut().ok());
    HEARTH_ASSERT_OK(fault.crash());
    w.reset();
    std::vector<record> got = replay(fault);
    ASSERT_FALSE(got.empty());
    EXPECT_EQ(got.back(), (record{got.back().seq, "kept"}));
    EXPECT_EQ(got.size(), code == errc::io_error ? 1u : 2u);  // round 2 also sees round 1's
  }
}

TEST_P(wal, append_error_surfaces) {
  fault_file_system fault(*fs_);
  auto w = open_writer(fault);
  ASSERT_NE(w, nullptr);
  fault.fail_nth(fault_op::write, 1, errc::no_space);
  auto st = w->append(as_bytes(std::string_view("x")));
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.err().code, errc::no_space);
  EXPECT_FALSE(w->sync().ok());
}

TEST_P(wal, torn_append_is_cut_off_by_the_next_replay) {
  fault_file_system fault(*fs_);
  auto w = open_writer(fault);
  ASSERT_NE(w, nullptr);
  HEARTH_ASSERT_OK(w->append(as_bytes(std::string_view("one"))));
  HEARTH_ASSERT_OK(w->append(as_bytes(std::string_view("two"))));
  const uint64_t good = w->current_file_bytes();
  // A record is two appends (header, payload): tear the payload of the third record.
  fault.tear_nth(2);
  ASSERT_FALSE(w->append(as_bytes(std::string(100, 't'))).ok());
  w.reset();  // closes: the torn bytes reach the file
  EXPECT_EQ(*fs_->file_size(path_of(1)), good + 8 + 50);
  wal_replay_stats stats;
  EXPECT_EQ(replay(fault, 0, &stats), (std::vector<record>{{1, "one"}, {1, "two"}}));
  EXPECT_EQ(stats.torn_tails, 1u);
  EXPECT_EQ(*fs_->file_size(path_of(1)), good);
}

INSTANTIATE_TEST_SUITE_P(backends, wal, testing::real_backends(), testing::backend_name);

}  // namespace
}  // namespace hearth::io
