// io_bench: does O_DIRECT pay for Hearth's segment writes and WAL appends? (docs/bench.md,
// "Segment writes: buffered vs O_DIRECT"). Standalone: liburing and syscalls only, no Hearth code.
//
// Segment pattern (per rep): open x.tmp (O_CREAT|O_TRUNC), write `size` bytes sequentially in
// `chunk`-sized writes, [O_DIRECT: the last write is rounded up to 4096, then ftruncate to the real
// size], fdatasync, rename x.tmp -> x, fsync the directory. The real size is `size - 1500` so the
// O_DIRECT tail handling is exercised. Then the file is read back once (pread, 1 MiB chunks) "right
// after", as a query would; then dropped from the page cache (POSIX_FADV_DONTNEED) and read again
// ("cold", for reference).
//   uring-buf  : io_uring writes, buffered fd, `qd` writes in flight, then an fsync SQE (DATASYNC)
//   uring-dio  : the same on an O_DIRECT fd, 4096-aligned buffer from posix_memalign
//   pwrite-buf : pwrite loop + fdatasync
// WAL pattern: append `chunk` bytes then fdatasync, repeated until `size` bytes (per-append latency).
//
// Reported: MB/s (median of reps; MB = 10^6 bytes), CPU ms per MB of this process (getrusage
// RUSAGE_SELF, includes io-wq worker threads) and of the whole machine (/proc/stat non-idle,
// non-iowait jiffies: includes kworker writeback), read-back MB/s.
//
// Usage: io_bench [--dir /tmp] [--reps 5] [--quick]

#include <fcntl.h>
#include <liburing.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

namespace {

constexpr size_t align = 4096;
constexpr size_t tail_short = 1500;  // real size = nominal - tail_short (not block-aligned)

[[noreturn]] void die(const char* what, int err) {
  std::fprintf(stderr, "io_bench: %s: %s\n", what, std::strerror(err));
  std::exit(1);
}

double now_s() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

double cpu_self_s() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  return ru.ru_utime.tv_sec + ru.ru_stime.tv_sec + (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

/// Busy CPU seconds of the whole machine (user+nice+system+irq+softirq+steal; not idle/iowait).
double cpu_machine_s() {
  std::ifstream f("/proc/stat");
  std::string cpu;
  unsigned long long v[8] = {};
  f >> cpu;
  for (auto& x : v) f >> x;
  const double busy = double(v[0] + v[1] + v[2] + v[5] + v[6] + v[7]);
  return busy / double(sysconf(_SC_CLK_TCK));
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

enum class mode { uring_buf, uring_dio, pwrite_buf };
const char* mode_name(mode m) {
  switch (m) {
    case mode::uring_buf: return "uring-buf";
    case mode::uring_dio: return "uring-dio";
    case mode::pwrite_buf: return "pwrite-buf";
  }
  return "?";
}

struct ring_t {
  io_uring r{};
  ring_t() {
    if (int e = io_uring_queue_init(64, &r, 0); e < 0) die("io_uring_queue_init", -e);
  }
  ~ring_t() { io_uring_queue_exit(&r); }
  int wait_one(uint64_t* user_data = nullptr) {
    io_uring_cqe* cqe = nullptr;
    int w;
    while ((w = io_uring_wait_cqe(&r, &cqe)) == -EINTR) {
    }
    if (w < 0) die("io_uring_wait_cqe", -w);
    const int res = cqe->res;
    if (user_data) *user_data = cqe->user_data;
    io_uring_cqe_seen(&r, cqe);
    return res;
  }
};

/// Writes [0, len) of buf to fd at offsets 0.. in `chunk` pieces with up to `qd` in flight, then an
/// fsync(DATASYNC) SQE. For O_DIRECT `len` must already be rounded up to `align`.
void uring_write_all(ring_t& ring, int fd, const char* buf, size_t len, size_t chunk, unsigned qd,
                     bool datasync_after) {
  size_t next = 0, inflight = 0;
  while (next < len || inflight > 0) {
    while (next < len && inflight < qd) {
      const size_t n = std::min(chunk, len - next);
      io_uring_sqe* sqe = io_uring_get_sqe(&ring.r);
      io_uring_prep_write(sqe, fd, buf + next, unsigned(n), next);
      sqe->user_data = n;  // expected length
      next += n;
      ++inflight;
    }
    if (int s = io_uring_submit(&ring.r); s < 0) die("io_uring_submit", -s);
    uint64_t expected = 0;
    const int res = ring.wait_one(&expected);
    if (res < 0) die("uring write", -res);
    // Short writes do not happen on a local ext4 file; a real backend would resubmit the rest.
    if (uint64_t(res) != expected) die("uring short write", EIO);
    --inflight;
  }
  if (datasync_after) {
    io_uring_sqe* sqe = io_uring_get_sqe(&ring.r);
    io_uring_prep_fsync(sqe, fd, IORING_FSYNC_DATASYNC);
    if (int s = io_uring_submit(&ring.r); s < 0) die("io_uring_submit", -s);
    if (int res = ring.wait_one(); res < 0) die("uring fsync", -res);
  }
}

struct seg_result {
  double write_mbps, self_cpu_ms_per_mb, machine_cpu_ms_per_mb, read_hot_mbps, read_cold_mbps;
};

double read_back(const std::string& path, size_t size, char* rbuf) {
  const double t0 = now_s();
  int fd = open(path.c_str(), O_RDONLY);
  if (fd < 0) die("open for read", errno);
  size_t off = 0;
  while (off < size) {
    ssize_t r = pread(fd, rbuf, 1 << 20, off_t(off));
    if (r < 0) die("pread", errno);
    if (r == 0) break;
    off += size_t(r);
  }
  close(fd);
  const double dt = now_s() - t0;
  if (off != size) die("read back size mismatch", EIO);
  return size / dt / 1e6;
}

void drop_cache(const std::string& path) {
  int fd = open(path.c_str(), O_RDONLY);
  if (fd < 0) die("open for fadvise", errno);
  fdatasync(fd);
  posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
  close(fd);
}

seg_result segment_once(const std::string& dir, mode m, size_t nominal, size_t chunk, unsigned qd,
                        const char* wbuf, char* rbuf) {
  const std::string tmp = dir + "/seg.tmp", fin = dir + "/seg";
  const size_t real = nominal - tail_short;
  const double c0 = cpu_self_s(), m0 = cpu_machine_s(), t0 = now_s();
  int flags = O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | (m == mode::uring_dio ? O_DIRECT : 0);
  int fd = open(tmp.c_str(), flags, 0644);
  if (fd < 0) die("open", errno);
  if (m == mode::pwrite_buf) {
    for (size_t off = 0; off < real;) {
      const size_t n = std::min(chunk, real - off);
      ssize_t w = pwrite(fd, wbuf + off, n, off_t(off));
      if (w <= 0) die("pwrite", errno);
      off += size_t(w);
    }
    if (fdatasync(fd) != 0) die("fdatasync", errno);
  } else {
    static ring_t ring;
    if (m == mode::uring_dio) {
      const size_t rounded = (real + align - 1) / align * align;
      uring_write_all(ring, fd, wbuf, rounded, chunk, qd, false);
      if (ftruncate(fd, off_t(real)) != 0) die("ftruncate", errno);
      // One fdatasync covers the data (already on the device) and the new size.
      io_uring_sqe* sqe = io_uring_get_sqe(&ring.r);
      io_uring_prep_fsync(sqe, fd, IORING_FSYNC_DATASYNC);
      io_uring_submit(&ring.r);
      if (int res = ring.wait_one(); res < 0) die("uring fsync", -res);
    } else {
      uring_write_all(ring, fd, wbuf, real, chunk, qd, true);
    }
  }
  close(fd);
  if (rename(tmp.c_str(), fin.c_str()) != 0) die("rename", errno);
  int dfd = open(dir.c_str(), O_RDONLY | O_DIRECTORY);
  if (dfd < 0 || fsync(dfd) != 0) die("fsync dir", errno);
  close(dfd);
  const double dt = now_s() - t0, dc = cpu_self_s() - c0, dm = cpu_machine_s() - m0;
  const double mb = real / 1e6;
  seg_result r{mb / dt, dc * 1e3 / mb, dm * 1e3 / mb, 0, 0};
  struct stat st{};
  if (stat(fin.c_str(), &st) != 0 || size_t(st.st_size) != real) die("size check", EIO);
  r.read_hot_mbps = read_back(fin, real, rbuf);
  drop_cache(fin);
  r.read_cold_mbps = read_back(fin, real, rbuf);
  if (std::memcmp(rbuf, wbuf + ((real - 1) / (1 << 20)) * (1 << 20),
                  real - ((real - 1) / (1 << 20)) * (1 << 20)) != 0)
    die("content mismatch in last MiB", EIO);
  unlink(fin.c_str());
  return r;
}

/// WAL: `count` appends of `chunk` bytes, each followed by fdatasync. Returns per-append latencies.
std::vector<double> wal_once(const std::string& dir, mode m, size_t chunk, size_t total,
                             const char* wbuf, double* self_cpu_ms_per_mb) {
  const std::string path = dir + "/wal";
  int flags = O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | (m == mode::uring_dio ? O_DIRECT : 0);
  int fd = open(path.c_str(), flags, 0644);
  if (fd < 0) die("open wal", errno);
  static ring_t ring;
  std::vector<double> lat;
  const double c0 = cpu_self_s();
  for (size_t off = 0; off + chunk <= total; off += chunk) {
    const double t0 = now_s();
    if (m == mode::pwrite_buf) {
      if (pwrite(fd, wbuf, chunk, off_t(off)) != ssize_t(chunk)) die("pwrite", errno);
      if (fdatasync(fd) != 0) die("fdatasync", errno);
    } else {
      // Hearth's shape: one write SQE linked to an fsync(DATASYNC) SQE, one submit.
      io_uring_sqe* w = io_uring_get_sqe(&ring.r);
      io_uring_prep_write(w, fd, wbuf, unsigned(chunk), off);
      io_uring_sqe_set_flags(w, IOSQE_IO_LINK);
      io_uring_sqe* s = io_uring_get_sqe(&ring.r);
      io_uring_prep_fsync(s, fd, IORING_FSYNC_DATASYNC);
      if (int e = io_uring_submit_and_wait(&ring.r, 2); e < 0) die("submit", -e);
      for (int i = 0; i < 2; ++i)
        if (int res = ring.wait_one(); res < 0) die("uring wal", -res);
    }
    lat.push_back(now_s() - t0);
  }
  *self_cpu_ms_per_mb = (cpu_self_s() - c0) * 1e3 / (total / 1e6);
  close(fd);
  unlink(path.c_str());
  return lat;
}

}  // namespace

int main(int argc, char** argv) {
  std::string base = "/tmp";
  int reps = 5;
  bool quick = false;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--dir" && i + 1 < argc) base = argv[++i];
    else if (a == "--reps" && i + 1 < argc) reps = std::atoi(argv[++i]);
    else if (a == "--quick") quick = true;
    else {
      std::fprintf(stderr, "usage: io_bench [--dir /tmp] [--reps 5] [--quick]\n");
      return 2;
    }
  }
  std::string tmpl = base + "/io_bench.XXXXXX";
  std::vector<char> tb(tmpl.begin(), tmpl.end());
  tb.push_back('\0');
  if (!mkdtemp(tb.data())) die("mkdtemp", errno);
  const std::string dir = tb.data();
  struct statfs sf{};
  statfs(dir.c_str(), &sf);
  std::printf("# dir %s  f_type 0x%lx (0xef53 = ext2/3/4)  reps %d\n", dir.c_str(),
              (unsigned long)sf.f_type, reps);

  const size_t max_size = size_t(64) << 20;
  char* wbuf = nullptr;
  char* rbuf = nullptr;
  if (posix_memalign(reinterpret_cast<void**>(&wbuf), align, max_size) != 0) die("memalign", ENOMEM);
  if (posix_memalign(reinterpret_cast<void**>(&rbuf), align, 1 << 20) != 0) die("memalign", ENOMEM);
  uint64_t x = 0x9e3779b97f4a7c15ull;  // incompressible-ish content
  for (size_t i = 0; i < max_size; i += 8) {
    x ^= x << 13, x ^= x >> 7, x ^= x << 17;
    std::memcpy(wbuf + i, &x, 8);
  }

  std::printf("\n## segment: write+fdatasync+rename+dirsync, then read back (median of %d)\n", reps);
  std::printf("%-10s %6s %6s %3s | %21s %9s %13s | %12s %14s\n", "mode", "size", "chunk", "qd",
              "write MB/s [min-max]", "self cpu/MB", "mach cpu/MB", "readback MB/s", "cold read MB/s");
  const std::vector<size_t> sizes = quick ? std::vector<size_t>{4 << 20}
                                          : std::vector<size_t>{4 << 20, 64 << 20};
  for (size_t size : sizes)
    for (size_t chunk : {size_t(256) << 10, size_t(1) << 20})
      for (auto [m, qd] : {std::pair{mode::uring_buf, 1u}, std::pair{mode::uring_buf, 4u},
                           std::pair{mode::uring_dio, 1u}, std::pair{mode::uring_dio, 4u},
                           std::pair{mode::pwrite_buf, 1u}}) {
        std::vector<double> w, sc, rh, rc;
        double mach_ms = 0, mach_mb = 0;  // /proc/stat ticks are 10 ms: sum over reps, not median
        for (int r = 0; r < reps; ++r) {
          auto res = segment_once(dir, m, size, chunk, qd, wbuf, rbuf);
          w.push_back(res.write_mbps), sc.push_back(res.self_cpu_ms_per_mb);
          mach_ms += res.machine_cpu_ms_per_mb * (size - tail_short) / 1e6;
          mach_mb += (size - tail_short) / 1e6;
          rh.push_back(res.read_hot_mbps);
          rc.push_back(res.read_cold_mbps);
        }
        std::printf("%-10s %4zuMi %4zuKi %3u | %9.0f [%4.0f-%4.0f] %6.2f ms %10.2f ms | %12.0f %14.0f\n",
                    mode_name(m), size >> 20, chunk >> 10, qd, median(w),
                    *std::min_element(w.begin(), w.end()), *std::max_element(w.begin(), w.end()),
                    median(sc), mach_ms / mach_mb, median(rh), median(rc));
        std::fflush(stdout);
      }

  std::printf("\n## WAL: append+fdatasync, %d MiB per rep (%d reps), per-append latency\n",
              quick ? 4 : 16, reps);
  std::printf("%-10s %6s | %10s %10s %10s | %10s %12s\n", "mode", "chunk", "p50 ms", "p90 ms",
              "max ms", "MB/s", "self cpu/MB");
  for (size_t chunk : {size_t(64) << 10, size_t(256) << 10, size_t(1) << 20})
    for (mode m : {mode::uring_buf, mode::uring_dio, mode::pwrite_buf}) {
      std::vector<double> all, cpu;
      const size_t total = quick ? size_t(4) << 20 : size_t(16) << 20;
      for (int r = 0; r < reps; ++r) {
        double c = 0;
        auto l = wal_once(dir, m, chunk, total, wbuf, &c);
        all.insert(all.end(), l.begin(), l.end());
        cpu.push_back(c);
      }
      std::sort(all.begin(), all.end());
      const double p50 = all[all.size() / 2], p90 = all[all.size() * 9 / 10], mx = all.back();
      std::printf("%-10s %4zuKi | %10.2f %10.2f %10.2f | %10.0f %9.2f ms\n", mode_name(m),
                  chunk >> 10, p50 * 1e3, p90 * 1e3, mx * 1e3, chunk / p50 / 1e6, median(cpu));
      std::fflush(stdout);
    }

  rmdir(dir.c_str());
  free(wbuf);
  free(rbuf);
  return 0;
}
