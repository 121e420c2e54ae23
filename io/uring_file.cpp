// The io_uring backend (liburing 2.3). Appends and syncs go through a ring: a sync is ONE
// submission of the buffered bytes as a write SQE linked (IOSQE_IO_LINK) to an
// fsync(IORING_FSYNC_DATASYNC) SQE, so a WAL group commit costs one io_uring_enter. Reads go
// through a ring in chunks. Directory operations, open and truncate stay plain syscalls
// (inherited from posix_file_system; liburing 2.3 has no prep_ftruncate).
//
// Rings: a pool of small rings, each borrowed for the duration of ONE operation (submit, then
// reap every CQE of it). Why not one ring behind a mutex: a WAL fdatasync takes milliseconds and
// would stall every other thread's reads and writes. Why not a ring per file: idle files would
// pin rings (an fd and locked memory each). The pool's mutex is held only to pop/push a ring.

#include "io/uring_file.hpp"

#include <fcntl.h>
#include <liburing.h>
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <mutex>
#include <vector>

#include "io/posix_file.hpp"

namespace hearth::io {
namespace {

/// Each operation uses at most two SQEs (write + fsync); a little headroom costs nothing.
constexpr unsigned ring_entries = 8;
/// Largest single read/write SQE (the length field is 32 bits; stay well clear).
constexpr size_t max_io_bytes = size_t{1} << 30;
/// Chunk size of `read_file`.
constexpr size_t read_chunk_bytes = size_t{1} << 20;
/// Idle rings kept for reuse; more concurrent operations create (and then drop) extra rings.
constexpr size_t max_idle_rings = 8;

/// One io_uring instance. Thread-safety: none; used by one operation at a time.
class ring {
 public:
  ring() = default;
  ring(const ring&) = delete;
  ring& operator=(const ring&) = delete;
  ~ring() {
    if (live_) io_uring_queue_exit(&r_);
  }

  /// Sets up the ring. Returns 0 or a negative errno.
  int init() {
    int r = io_uring_queue_init(ring_entries, &r_, 0);
    live_ = (r == 0);
    return r;
  }
  io_uring* get() { return &r_; }

 private:
  io_uring r_{};
  bool live_ = false;
};

/// Rings for reuse. Thread-safety: thread-safe (a mutex around the idle list).
class ring_pool {
 public:
  /// An idle ring, or a new one. Returns a negative errno from io_uring_queue_init on failure.
  std::unique_ptr<ring> acquire(int* err) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (!idle_.empty()) {
        auto r = std::move(idle_.back());
        idle_.pop_back();
        return r;
      }
    }
    auto r = std::make_unique<ring>();
    if (int e = r->init(); e < 0) {
      *err = e;
      return nullptr;
    }
    return r;
  }
  /// Returns a ring whose SQ and CQ are empty.
  void release(std::unique_ptr<ring> r) {
    std::lock_guard<std::mutex> lock(mu_);
    if (idle_.size() < max_idle_rings) idle_.push_back(std::move(r));
  }

 private:
  std::mutex mu_;
  std::vector<std::unique_ptr<ring>> idle_;
};

/// A ring borrowed from the pool for one operation; goes back on destruction unless broken
/// (a ring whose submission failed may still hold SQEs that would leak into the next user).
/// Thread-safety: none.
class ring_lease {
 public:
  explicit ring_lease(std::shared_ptr<ring_pool> pool) : pool_(std::move(pool)) {}
  ring_lease(const ring_lease&) = delete;
  ring_lease& operator=(const ring_lease&) = delete;
  ~ring_lease() {
    if (ring_ && !broken_) pool_->release(std::move(ring_));
  }

  /// Borrows a ring; an error names `path` (the operation that needed it).
  status acquire(std::string_view path) {
    int err = 0;
    ring_ = pool_->acquire(&err);
    if (!ring_) return errno_error("io_uring_queue_init for", path, -err);
    return {};
  }

  /// The next free SQE, zeroed by liburing's prep helpers. Never null: each operation uses at
  /// most two of `ring_entries` and leaves the ring empty.
  io_uring_sqe* sqe() { return io_uring_get_sqe(ring_->get()); }

  /// Submits the `n` prepared SQEs (user_data = 0..n-1) and reaps all `n` CQEs into `res`.
  status run(unsigned n, int* res, std::string_view path) {
    io_uring* r = ring_->get();
    unsigned submitted = 0;
    int stalls = 0;
    while (submitted < n) {
      int s = io_uring_submit_and_wait(r, n - submitted);
      if (s == -EINTR || s == -EAGAIN || s == 0) {
        // EAGAIN/0: the kernel is short of memory right now; retry a bounded number of times.
        if (s != -EINTR && ++stalls > 1000)
          s = -EAGAIN;
        else
          continue;
      }
      if (s < 0) {
        broken_ = true;
        (void)reap(submitted, nullptr);
        return errno_error("io_uring_submit for", path, -s);
      }
      submitted += static_cast<unsigned>(s);
    }
    if (int w = reap(n, res); w < 0) {
      broken_ = true;
      return errno_error("io_uring_wait_cqe for", path, -w);
    }
    return {};
  }

 private:
  /// Waits for `n` CQEs. Returns 0, or a negative errno if waiting itself failed.
  int reap(unsigned n, int* res) {
    io_uring* r = ring_->get();
    for (unsigned i = 0; i < n;) {
      io_uring_cqe* cqe = nullptr;
      int w = io_uring_wait_cqe(r, &cqe);
      if (w == -EINTR) continue;
      if (w < 0) return w;
      if (res != nullptr && cqe->user_data < n) res[cqe->user_data] = cqe->res;
      io_uring_cqe_seen(r, cqe);
      ++i;
    }
    return 0;
  }

  std::shared_ptr<ring_pool> pool_;
  std::unique_ptr<ring> ring_;
  bool broken_ = false;
};

class uring_file final : public buffered_file {
 public:
  uring_file(std::string path, int fd, uint64_t size, std::shared_ptr<ring_pool> pool)
      : buffered_file(std::move(path), fd, size), pool_(std::move(pool)) {}
  ~uring_file() override { (void)close(); }

 protected:
  status write_out(uint64_t offset, bytes_view data, bool sync) override {
    ring_lease ring(pool_);
    if (auto st = ring.acquire(path()); !st.ok()) return st;
    size_t done = 0;
    while (true) {
      const size_t chunk = std::min(data.size() - done, max_io_bytes);
      const bool with_fsync = sync && done + chunk == data.size();
      if (chunk == 0 && !with_fsync) return {};
      unsigned n = 0;
      if (chunk > 0) {
        io_uring_sqe* sqe = ring.sqe();
        io_uring_prep_write(sqe, fd(), data.data() + done, static_cast<unsigned>(chunk),
                            offset + done);
        sqe->user_data = n++;
        // A short or failed write breaks the link: the fsync then completes with -ECANCELED.
        if (with_fsync) io_uring_sqe_set_flags(sqe, IOSQE_IO_LINK);
      }
      if (with_fsync) {
        io_uring_sqe* sqe = ring.sqe();
        io_uring_prep_fsync(sqe, fd(), IORING_FSYNC_DATASYNC);
        sqe->user_data = n++;
      }
      int res[2] = {0, 0};
      if (auto st = ring.run(n, res, path()); !st.ok()) return st;
      unsigned next = 0;
      if (chunk > 0) {
        const int w = res[next++];
        if (w == -EINTR || w == -EAGAIN) continue;  // resubmit (with the cancelled fsync)
        if (w < 0) return errno_error("write", path(), -w);
        if (w == 0) return error{errc::io_error, "write " + path() + ": wrote 0 bytes"};
        done += static_cast<size_t>(w);
        if (static_cast<size_t>(w) < chunk) continue;  // short write: finish it, fsync after
      }
      if (with_fsync) {
        const int f = res[next];
        if (f == -EINTR || f == -EAGAIN) continue;  // data is written; loop does the fsync alone
        if (f < 0) return errno_error("fdatasync", path(), -f);
        return {};
      }
    }
  }

 private:
  std::shared_ptr<ring_pool> pool_;
};

/// Reads its ranges `ring_entries` at a time, each in one submission; a short read is continued
/// in the next batch.
class uring_readable_file final : public fd_readable_file {
 public:
  uring_readable_file(std::string path, int fd, uint64_t size, std::shared_ptr<ring_pool> pool)
      : fd_readable_file(std::move(path), fd, size), pool_(std::move(pool)) {}

 protected:
  status read_ranges(std::span<const byte_range> ranges, char* dst) override {
    ring_lease ring(pool_);
    if (auto st = ring.acquire(path()); !st.ok()) return st;
    std::vector<byte_range> todo(ranges.begin(), ranges.end());  // what is left of each
    size_t next = 0;  // todo[next..] are still to submit; a batch appends what it left
    std::vector<byte_range> batch;
    while (next < todo.size()) {
      batch.clear();
      while (next < todo.size() && batch.size() < ring_entries) batch.push_back(todo[next++]);
      int res[ring_entries] = {};
      for (unsigned k = 0; k < batch.size(); ++k) {
        const byte_range& r = batch[k];
        io_uring_sqe* sqe = ring.sqe();
        io_uring_prep_read(sqe, fd(), dst + r.offset,
                           static_cast<unsigned>(std::min<uint64_t>(r.length, max_io_bytes)),
                           r.offset);
        sqe->user_data = k;
      }
      if (auto st = ring.run(static_cast<unsigned>(batch.size()), res, path()); !st.ok()) return st;
      for (unsigned k = 0; k < batch.size(); ++k) {
        byte_range r = batch[k];
        const int n = res[k];
        if (n == -EINTR || n == -EAGAIN) {
          todo.push_back(r);
          continue;
        }
        if (n < 0) return errno_error("read", path(), -n);
        if (n == 0) return ended_early(r.offset);
        r.offset += static_cast<uint64_t>(n);
        r.length -= static_cast<uint64_t>(n);
        if (r.length > 0) todo.push_back(r);
      }
    }
    return {};
  }

 private:
  std::shared_ptr<ring_pool> pool_;
};

/// Thread-safety: thread-safe (the pool is; the rest is stateless).
class uring_file_system final : public posix_file_system {
 public:
  explicit uring_file_system(std::shared_ptr<ring_pool> pool) : pool_(std::move(pool)) {}

  std::string_view name() const override { return "io_uring"; }

  result<std::unique_ptr<writable_file>> open_appendable(const std::string& path) override {
    auto r = open_for_append(path);
    if (!r.ok()) return r.take_error();
    return std::unique_ptr<writable_file>(new uring_file(path, r->first, r->second, pool_));
  }

  result<std::unique_ptr<readable_file>> open_readable(const std::string& path) override {
    auto r = open_for_read(path);
    if (!r.ok()) return r.take_error();
    return std::unique_ptr<readable_file>(
        new uring_readable_file(path, r->first, r->second, pool_));
  }

  result<std::string> read_file(const std::string& path) override {
    fd_guard fd(open_retry(path.c_str(), O_RDONLY));
    if (fd.get() < 0) return errno_error("open", path, errno);
    struct stat st;
    if (::fstat(fd.get(), &st) != 0) return errno_error("stat", path, errno);
    ring_lease ring(pool_);
    if (auto s = ring.acquire(path); !s.ok()) return s.err();
    // Sized for the whole file plus one byte, so that EOF is seen without growing; reads
    // continue until EOF in case the file grew meanwhile.
    std::string out;
    out.resize(static_cast<size_t>(st.st_size) + 1);
    size_t got = 0;
    while (true) {
      if (got == out.size()) out.resize(out.size() * 2);
      const size_t want = std::min(out.size() - got, read_chunk_bytes);
      io_uring_sqe* sqe = ring.sqe();
      io_uring_prep_read(sqe, fd.get(), out.data() + got, static_cast<unsigned>(want), got);
      sqe->user_data = 0;
      int res = 0;
      if (auto s = ring.run(1, &res, path); !s.ok()) return s.err();
      if (res == -EINTR || res == -EAGAIN) continue;
      if (res < 0) return errno_error("read", path, -res);
      if (res == 0) break;
      got += static_cast<size_t>(res);  // a short read simply continues at the new offset
    }
    out.resize(got);
    return out;
  }

 private:
  std::shared_ptr<ring_pool> pool_;
};

}  // namespace

result<std::unique_ptr<file_system>> make_uring_file_system(int* probe_errno) {
  auto pool = std::make_shared<ring_pool>();
  int err = 0;
  auto r = pool->acquire(&err);
  if (!r) {
    *probe_errno = -err;
    error e = errno_error("io_uring unavailable:", "io_uring_queue_init", -err);
    e.code = errc::unavailable;
    return e;
  }
  // Kernels 5.1-5.5 set up rings but lack IORING_OP_READ/WRITE (and 5.1 lacks nothing else we
  // could use instead); treat that like no io_uring at all.
  io_uring_probe* probe = io_uring_get_probe_ring(r->get());
  const bool ops_ok = probe != nullptr && io_uring_opcode_supported(probe, IORING_OP_READ) &&
                      io_uring_opcode_supported(probe, IORING_OP_WRITE) &&
                      io_uring_opcode_supported(probe, IORING_OP_FSYNC);
  if (probe != nullptr) io_uring_free_probe(probe);
  if (!ops_ok) {
    *probe_errno = EINVAL;
    return error{errc::unavailable,
                 "io_uring unavailable: the kernel lacks IORING_OP_READ/WRITE/FSYNC"};
  }
  pool->release(std::move(r));
  return std::unique_ptr<file_system>(new uring_file_system(std::move(pool)));
}

}  // namespace hearth::io
