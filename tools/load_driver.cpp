// Load driver: replays real pprof profiles against a running hearth over loopback and reports
// throughput, ack latency, status codes and (with --server-pid) the server's RSS and CPU time.
// See docs/bench.md ("HTTP ingest load driver").
//
// Design: N threads, each owning one keep-alive TCP connection with a minimal blocking HTTP/1.1
// client (Content-Length or chunked responses; reconnects when the server closes the connection or
// on an I/O error). Every thread sends its next request as soon as the previous answer arrived
// (closed loop), or paced to --rate requests/s in total (open loop per thread; latency is measured
// from the scheduled send time, so a slow server is not hidden by coordinated omission).
//
//   load_driver --url http://127.0.0.1:4040 --concurrency 8 --duration 30 [--requests N]
//               [--mode ingest|push] [--series N] [--services K] [--match cpu,heap]
//               [--rate R] [--server-pid PID] [--testdata DIR] [--progress]
//
// Only loopback targets are accepted (127.0.0.1, localhost, ::1).

#include <arpa/inet.h>
#include <libdeflate.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cinttypes>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <mutex>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "format/pprof.hpp"

namespace fs = std::filesystem;
using namespace hearth;

namespace {

[[noreturn]] void die(const std::string& msg) {
  std::fprintf(stderr, "load_driver: %s\n", msg.c_str());
  std::exit(2);
}

double mono_s() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec * 1e-9;
}

int64_t wall_ns() {
  timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return int64_t(ts.tv_sec) * 1000000000 + ts.tv_nsec;
}

// ---- options ------------------------------------------------------------------------------------

struct options {
  std::string url = "http://127.0.0.1:4040";
  std::string testdata = "/work/shared/testdata";
  std::string mode = "ingest";  // ingest | push
  std::vector<std::string> match;  // substrings of file paths; empty = every *.pb.gz
  int concurrency = 8;
  double duration = 0;   // seconds; 0 = unbounded (then --requests must be set)
  uint64_t requests = 0; // 0 = unbounded
  uint64_t series = 100; // distinct pod label values
  int services = 2;
  double rate = 0;       // total requests/s; 0 = closed loop
  int backoff_ms = 50;   // sleep after a 429/503 before the next request on that connection
  long server_pid = 0;
  bool progress = false;
  double timeout = 30;   // per-request socket timeout, seconds
};

void usage() {
  std::puts(
      "usage: load_driver [--url http://127.0.0.1:4040] [--concurrency N] [--duration S]\n"
      "                   [--requests N] [--mode ingest|push] [--series N] [--services K]\n"
      "                   [--match sub1,sub2] [--rate R] [--backoff-ms MS] [--server-pid PID]\n"
      "                   [--testdata DIR] [--timeout S] [--progress]\n"
      "Replays the real *.pb.gz profiles under --testdata against a hearth on loopback.\n"
      "Stops after --duration seconds and/or --requests requests (at least one is required).");
}

options parse_args(int argc, char** argv) {
  options o;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto val = [&]() -> std::string {
      if (i + 1 >= argc) die("missing value for " + a);
      return argv[++i];
    };
    if (a == "--url") o.url = val();
    else if (a == "--testdata") o.testdata = val();
    else if (a == "--mode") o.mode = val();
    else if (a == "--concurrency" || a == "-c") o.concurrency = std::stoi(val());
    else if (a == "--duration" || a == "-d") o.duration = std::stod(val());
    else if (a == "--requests" || a == "-n") o.requests = std::stoull(val());
    else if (a == "--series") o.series = std::stoull(val());
    else if (a == "--services") o.services = std::stoi(val());
    else if (a == "--rate") o.rate = std::stod(val());
    else if (a == "--backoff-ms") o.backoff_ms = std::stoi(val());
    else if (a == "--server-pid") o.server_pid = std::stol(val());
    else if (a == "--timeout") o.timeout = std::stod(val());
    else if (a == "--progress") o.progress = true;
    else if (a == "--match") {
      std::stringstream ss(val());
      std::string s;
      while (std::getline(ss, s, ','))
        if (!s.empty()) o.match.push_back(s);
    } else if (a == "--help" || a == "-h") {
      usage();
      std::exit(0);
    } else {
      usage();
      die("unknown argument " + a);
    }
  }
  if (o.mode != "ingest" && o.mode != "push") die("--mode must be ingest or push");
  if (o.concurrency < 1 || o.concurrency > 4096) die("--concurrency must be in 1..4096");
  if (o.duration <= 0 && o.requests == 0) die("give --duration and/or --requests");
  if (o.series < 1) die("--series must be >= 1");
  if (o.services < 1) die("--services must be >= 1");
  return o;
}

// ---- loopback-only URL ----------------------------------------------------------------------------

struct endpoint {
  sockaddr_storage addr{};
  socklen_t len = 0;
  std::string host_header;
};

bool is_loopback(const sockaddr* sa) {
  if (sa->sa_family == AF_INET) {
    auto* in = reinterpret_cast<const sockaddr_in*>(sa);
    return (ntohl(in->sin_addr.s_addr) >> 24) == 127;
  }
  if (sa->sa_family == AF_INET6) {
    auto* in6 = reinterpret_cast<const sockaddr_in6*>(sa);
    return IN6_IS_ADDR_LOOPBACK(&in6->sin6_addr);
  }
  return false;
}

endpoint resolve_loopback(const std::string& url) {
  const std::string scheme = "http://";
  if (url.rfind(scheme, 0) != 0) die("--url must start with http:// (got " + url + ")");
  std::string rest = url.substr(scheme.size());
  if (auto slash = rest.find('/'); slash != std::string::npos) rest = rest.substr(0, slash);
  std::string host, port = "80";
  if (!rest.empty() && rest[0] == '[') {
    auto rb = rest.find(']');
    if (rb == std::string::npos) die("bad IPv6 literal in --url " + url);
    host = rest.substr(1, rb - 1);
    if (rb + 1 < rest.size()) {
      if (rest[rb + 1] != ':') die("bad --url " + url);
      port = rest.substr(rb + 2);
    }
  } else {
    auto colon = rest.rfind(':');
    host = colon == std::string::npos ? rest : rest.substr(0, colon);
    if (colon != std::string::npos) port = rest.substr(colon + 1);
  }
  if (host != "127.0.0.1" && host != "localhost" && host != "::1")
    die("refusing --url host '" + host + "': only 127.0.0.1, localhost and ::1 are allowed");
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICSERV;
  addrinfo* res = nullptr;
  if (int rc = getaddrinfo(host.c_str(), port.c_str(), &hints, &res); rc != 0)
    die("cannot resolve " + host + ":" + port + ": " + gai_strerror(rc));
  endpoint ep;
  for (addrinfo* p = res; p; p = p->ai_next) {
    if (!is_loopback(p->ai_addr)) continue;  // belt and braces: localhost must map to loopback
    std::memcpy(&ep.addr, p->ai_addr, p->ai_addrlen);
    ep.len = p->ai_addrlen;
    break;
  }
  freeaddrinfo(res);
  if (ep.len == 0) die("host '" + host + "' does not resolve to a loopback address");
  ep.host_header = rest;
  return ep;
}

// ---- profiles -------------------------------------------------------------------------------------

struct profile_file {
  std::string name;      // e.g. go/mapindex.cpu.000
  std::string kind;      // cpu, heap, allocs, ... (the part before the sequence number)
  std::string gz;        // the original gzipped bytes
  std::string raw;       // uncompressed pprof
  uint64_t samples = 0;  // pprof samples, counted once by decoding
  uint64_t sample_types = 0;
};

std::vector<profile_file> load_profiles(const options& o) {
  std::vector<fs::path> paths;
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(o.testdata, ec); !ec && it != fs::end(it);
       it.increment(ec)) {
    const auto& p = it->path();
    if (!it->is_regular_file()) continue;
    std::string s = p.string();
    if (s.size() < 6 || s.compare(s.size() - 6, 6, ".pb.gz") != 0) continue;
    if (s.find("/expected/") != std::string::npos) continue;
    if (!o.match.empty() && std::none_of(o.match.begin(), o.match.end(), [&](const std::string& m) {
          return s.find(m) != std::string::npos;
        }))
      continue;
    paths.push_back(p);
  }
  if (ec) die("cannot read --testdata " + o.testdata + ": " + ec.message());
  std::sort(paths.begin(), paths.end());
  std::vector<profile_file> out;
  for (const auto& p : paths) {
    profile_file f;
    f.name = fs::relative(p, o.testdata).string();
    f.name.resize(f.name.size() - 6);
    std::ifstream in(p, std::ios::binary);
    f.gz.assign(std::istreambuf_iterator<char>(in), {});
    auto raw = pprof::gunzip(as_bytes(f.gz), size_t(256) << 20);
    if (!raw) die(p.string() + ": " + raw.err().message);
    f.raw = std::move(*raw);
    auto prof = pprof::decode(as_bytes(f.raw));
    if (!prof) die(p.string() + ": " + prof.err().message);
    f.samples = (*prof).samples.size();
    f.sample_types = (*prof).sample_types.size();
    std::string base = p.filename().string();          // mapindex.cpu.000.pb.gz
    base.resize(base.size() - 6);                       // mapindex.cpu.000
    auto d1 = base.find('.');
    std::string k = d1 == std::string::npos ? base : base.substr(d1 + 1);  // cpu.000
    if (auto d2 = k.find('.'); d2 != std::string::npos) k = k.substr(0, d2);
    f.kind = k;
    out.push_back(std::move(f));
  }
  if (out.empty()) die("no *.pb.gz profiles under " + o.testdata + " match --match");
  return out;
}

// ---- request bodies -------------------------------------------------------------------------------

void put_varint(std::string& s, uint64_t v) {
  while (v >= 0x80) {
    s.push_back(char(v | 0x80));
    v >>= 7;
  }
  s.push_back(char(v));
}
void put_bytes(std::string& s, uint32_t field, std::string_view b) {
  put_varint(s, (uint64_t(field) << 3) | 2);
  put_varint(s, b.size());
  s.append(b);
}

// PushRequest { repeated RawProfileSeries series = 1; }
// RawProfileSeries { repeated LabelPair labels = 1; repeated RawSample samples = 2; }
// LabelPair { string name = 1; string value = 2; }   RawSample { bytes raw_profile = 1; string ID = 2; }
std::string push_body(const std::vector<std::pair<std::string, std::string>>& labels,
                      std::string_view raw_profile, std::string_view id) {
  std::string series;
  for (const auto& [n, v] : labels) {
    std::string lp;
    put_bytes(lp, 1, n);
    put_bytes(lp, 2, v);
    put_bytes(series, 1, lp);
  }
  std::string sample;
  put_bytes(sample, 1, raw_profile);
  put_bytes(sample, 2, id);
  put_bytes(series, 2, sample);
  std::string req;
  put_bytes(req, 1, series);
  return req;
}

std::string uuid4(std::mt19937_64& rng) {
  uint64_t a = rng(), b = rng();
  a = (a & ~uint64_t(0xF000)) | 0x4000;
  b = (b & ~(uint64_t(0xC) << 60)) | (uint64_t(0x8) << 60);
  char buf[40];
  std::snprintf(buf, sizeof buf, "%08x-%04x-%04x-%04x-%012" PRIx64, unsigned(a >> 32),
                unsigned((a >> 16) & 0xFFFF), unsigned(a & 0xFFFF), unsigned(b >> 48),
                uint64_t(b & 0xFFFFFFFFFFFFull));
  return buf;
}

std::string url_escape(std::string_view s) {
  static const char* hex = "0123456789ABCDEF";
  std::string o;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') o.push_back(char(c));
    else {
      o.push_back('%');
      o.push_back(hex[c >> 4]);
      o.push_back(hex[c & 15]);
    }
  }
  return o;
}

// Push carries no `from`: the server stamps a pushed profile with the pprof's time_nanos. The test
// files are months old, so for push the driver re-stamps each file once a second: it appends a
// time_nanos field (proto3: the last value of a scalar field wins) and gzips again (libdeflate -1).
class restamper {
 public:
  explicit restamper(const std::vector<profile_file>& files) : files_(files) {
    comp_ = libdeflate_alloc_compressor(1);
    refresh();
  }
  ~restamper() { libdeflate_free_compressor(comp_); }
  void refresh() {
    auto next = std::make_shared<std::vector<std::string>>();
    int64_t now = wall_ns();
    for (const auto& f : files_) {
      std::string raw = f.raw;
      put_varint(raw, (9 << 3) | 0);  // Profile.time_nanos = 9
      put_varint(raw, uint64_t(now));
      std::string gz(libdeflate_gzip_compress_bound(comp_, raw.size()), '\0');
      size_t n = libdeflate_gzip_compress(comp_, raw.data(), raw.size(), gz.data(), gz.size());
      gz.resize(n);
      next->push_back(std::move(gz));
    }
    std::lock_guard lk(mu_);
    cur_ = std::move(next);
  }
  std::shared_ptr<const std::vector<std::string>> get() {
    std::lock_guard lk(mu_);
    return cur_;
  }

 private:
  const std::vector<profile_file>& files_;
  libdeflate_compressor* comp_;
  std::mutex mu_;
  std::shared_ptr<const std::vector<std::string>> cur_;
};

// ---- minimal HTTP/1.1 client ----------------------------------------------------------------------

class connection {
 public:
  connection(const endpoint& ep, double timeout) : ep_(ep), timeout_(timeout) {}
  ~connection() { close_fd(); }

  // Sends one request and reads the whole response. Returns the status, or -1 on an I/O or
  // protocol error (the connection is then closed and reopened on the next call).
  int roundtrip(const std::string& head, std::string_view body, std::string* retry_after) {
    for (int attempt = 0; attempt < 2; ++attempt) {
      bool fresh = fd_ < 0;
      if (fd_ < 0 && !open_fd()) return -1;
      if (!send_all(head, body)) {
        close_fd();
        if (!fresh) continue;  // a stale keep-alive connection: reconnect once
        return -1;
      }
      int st = read_response(retry_after);
      if (st == -2 && !fresh) {  // closed before any byte of the response: retry once
        close_fd();
        continue;
      }
      if (st < 0) {
        close_fd();
        return -1;
      }
      return st;
    }
    return -1;
  }
  uint64_t reconnects() const { return connects_ > 0 ? connects_ - 1 : 0; }

 private:
  bool open_fd() {
    fd_ = ::socket(ep_.addr.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd_ < 0) return false;
    int one = 1;
    setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    timeval tv{};
    tv.tv_sec = long(timeout_);
    tv.tv_usec = long((timeout_ - double(tv.tv_sec)) * 1e6);
    setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd_, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    if (::connect(fd_, reinterpret_cast<const sockaddr*>(&ep_.addr), ep_.len) != 0) {
      close_fd();
      return false;
    }
    ++connects_;
    buf_.clear();
    pos_ = 0;
    return true;
  }
  void close_fd() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }
  bool send_all(const std::string& head, std::string_view body) {
    size_t off = 0, total = head.size() + body.size();
    while (off < total) {
      iovec iov[2];
      int n = 0;
      if (off < head.size()) {
        iov[n++] = {const_cast<char*>(head.data() + off), head.size() - off};
        iov[n++] = {const_cast<char*>(body.data()), body.size()};
      } else {
        size_t b = off - head.size();
        iov[n++] = {const_cast<char*>(body.data() + b), body.size() - b};
      }
      msghdr mh{};
      mh.msg_iov = iov;
      mh.msg_iovlen = n;
      ssize_t w = ::sendmsg(fd_, &mh, MSG_NOSIGNAL);
      if (w < 0) {
        if (errno == EINTR) continue;
        return false;
      }
      off += size_t(w);
    }
    return true;
  }
  // Ensures at least `need` unread bytes in buf_. Returns false on EOF/error.
  bool fill(size_t need) {
    while (buf_.size() - pos_ < need) {
      if (pos_ > 0 && pos_ == buf_.size()) {
        buf_.clear();
        pos_ = 0;
      }
      char tmp[16384];
      ssize_t r = ::recv(fd_, tmp, sizeof tmp, 0);
      if (r < 0 && errno == EINTR) continue;
      if (r <= 0) return false;
      buf_.append(tmp, size_t(r));
    }
    return true;
  }
  // Reads up to and including CRLF; returns false on EOF.
  bool read_line(std::string& line) {
    for (;;) {
      auto e = buf_.find("\r\n", pos_);
      if (e != std::string::npos) {
        line.assign(buf_, pos_, e - pos_);
        pos_ = e + 2;
        return true;
      }
      if (buf_.size() - pos_ > 65536) return false;
      if (!fill(buf_.size() - pos_ + 1)) return false;
    }
  }
  bool skip(size_t n) {
    if (!fill(n)) return false;
    pos_ += n;
    return true;
  }
  static bool ieq_prefix(std::string_view s, std::string_view p) {
    if (s.size() < p.size()) return false;
    for (size_t i = 0; i < p.size(); ++i)
      if (std::tolower(static_cast<unsigned char>(s[i])) != p[i]) return false;
    return true;
  }
  static std::string_view trim(std::string_view v) {
    while (!v.empty() && (v.front() == ' ' || v.front() == '\t')) v.remove_prefix(1);
    while (!v.empty() && (v.back() == ' ' || v.back() == '\t')) v.remove_suffix(1);
    return v;
  }
  // -2: EOF before the status line (stale keep-alive); -1: other error.
  int read_response(std::string* retry_after) {
    std::string line;
    if (!read_line(line)) return buf_.size() == pos_ ? -2 : -1;
    if (line.rfind("HTTP/1.", 0) != 0 || line.size() < 12) return -1;
    int status = std::atoi(line.c_str() + 9);
    bool http10 = line[7] == '0';
    int64_t content_length = -1;
    bool chunked = false, close_after = http10;
    for (;;) {
      if (!read_line(line)) return -1;
      if (line.empty()) break;
      std::string_view l = line;
      auto colon = l.find(':');
      if (colon == std::string_view::npos) continue;
      std::string_view v = trim(l.substr(colon + 1));
      if (ieq_prefix(l, "content-length:")) content_length = std::atoll(std::string(v).c_str());
      else if (ieq_prefix(l, "transfer-encoding:")) chunked = v.find("chunked") != v.npos;
      else if (ieq_prefix(l, "connection:")) {
        std::string lv(v);
        for (auto& c : lv) c = char(std::tolower(static_cast<unsigned char>(c)));
        if (lv.find("close") != std::string::npos) close_after = true;
        if (lv.find("keep-alive") != std::string::npos) close_after = false;
      } else if (ieq_prefix(l, "retry-after:") && retry_after)
        *retry_after = std::string(v);
    }
    if (status == 204 || status == 304 || (status >= 100 && status < 200)) content_length = 0;
    if (chunked) {
      for (;;) {
        if (!read_line(line)) return -1;
        size_t n = std::strtoull(line.c_str(), nullptr, 16);
        if (n == 0) {
          for (;;) {  // trailers
            if (!read_line(line)) return -1;
            if (line.empty()) break;
          }
          break;
        }
        if (!skip(n + 2)) return -1;
      }
    } else if (content_length >= 0) {
      if (!skip(size_t(content_length))) return -1;
    } else {
      // Body until EOF.
      while (fill(buf_.size() - pos_ + 1)) pos_ = buf_.size();
      close_after = true;
    }
    if (close_after) close_fd();
    return status;
  }

  const endpoint& ep_;
  double timeout_;
  int fd_ = -1;
  uint64_t connects_ = 0;
  std::string buf_;
  size_t pos_ = 0;
};

// ---- /proc sampling -------------------------------------------------------------------------------

struct proc_mem {
  int64_t rss_kb = -1, hwm_kb = -1;
};
proc_mem read_mem(long pid) {
  proc_mem m;
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmRSS:", 0) == 0) m.rss_kb = std::atoll(line.c_str() + 6);
    if (line.rfind("VmHWM:", 0) == 0) m.hwm_kb = std::atoll(line.c_str() + 6);
  }
  return m;
}
// utime + stime of the whole process (all threads), in seconds; -1 when unreadable.
double read_cpu_s(long pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string s((std::istreambuf_iterator<char>(in)), {});
  auto rp = s.rfind(')');
  if (rp == std::string::npos) return -1;
  std::istringstream rest(s.substr(rp + 2));
  std::string f;
  // Fields after "(comm)": 3 state ... 14 utime 15 stime.
  unsigned long long ut = 0, st = 0;
  for (int i = 3; i <= 15; ++i) {
    if (!(rest >> f)) return -1;
    if (i == 14) ut = std::stoull(f);
    if (i == 15) st = std::stoull(f);
  }
  return double(ut + st) / double(sysconf(_SC_CLK_TCK));
}
double self_cpu_s() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  return ru.ru_utime.tv_sec + ru.ru_utime.tv_usec * 1e-6 + ru.ru_stime.tv_sec +
         ru.ru_stime.tv_usec * 1e-6;
}

// ---- the run --------------------------------------------------------------------------------------

struct worker_stats {
  std::vector<float> lat_ms;  // successful and failed answers alike (any HTTP status)
  std::map<int, uint64_t> status;
  uint64_t profiles_ok = 0, samples_ok = 0, bytes_sent = 0, io_errors = 0, reconnects = 0;
  std::string first_error_body;
};

struct shared_state {
  std::atomic<uint64_t> next{0};
  std::atomic<bool> stop{false};
  std::atomic<uint64_t> done{0}, ok{0}, r429{0}, samples_ok{0};
};

double pct(std::vector<float>& v, double p) {
  if (v.empty()) return 0;
  size_t i = size_t(std::ceil(p / 100.0 * double(v.size()))) ;
  if (i > 0) --i;
  return v[std::min(i, v.size() - 1)];
}

}  // namespace

int main(int argc, char** argv) {
  options o = parse_args(argc, argv);
  endpoint ep = resolve_loopback(o.url);
  std::vector<profile_file> files = load_profiles(o);

  uint64_t total_samples = 0;
  std::fprintf(stderr, "load_driver: %zu profiles from %s (samples per file counted once):\n",
               files.size(), o.testdata.c_str());
  for (const auto& f : files) {
    total_samples += f.samples;
    std::fprintf(stderr, "  %-28s %7zu B gz %8zu B raw %6" PRIu64 " samples x %" PRIu64 " types\n",
                 f.name.c_str(), f.gz.size(), f.raw.size(), f.samples, f.sample_types);
  }
  std::fprintf(stderr, "  mean %.1f samples per profile\n", double(total_samples) / files.size());

  std::unique_ptr<restamper> stamps;
  if (o.mode == "push") stamps = std::make_unique<restamper>(files);

  // Series label sets: name=svc-<s>{pod=<i>} with s = i % services.
  std::vector<std::string> ingest_names(o.series);
  for (uint64_t i = 0; i < o.series; ++i)
    ingest_names[i] = url_escape("svc-" + std::to_string(i % o.services) + "{pod=pod-" +
                                 std::to_string(i) + "}");

  shared_state sh;
  std::vector<worker_stats> stats(o.concurrency);
  const double t_start = mono_s();
  const double t_end = o.duration > 0 ? t_start + o.duration : 1e300;
  double cpu0 = o.server_pid ? read_cpu_s(o.server_pid) : -1;
  if (o.server_pid && cpu0 < 0) die("cannot read /proc/" + std::to_string(o.server_pid) + "/stat");
  proc_mem mem0 = o.server_pid ? read_mem(o.server_pid) : proc_mem{};
  double self0 = self_cpu_s();

  auto worker = [&](int w) {
    worker_stats& st = stats[w];
    st.lat_ms.reserve(1 << 16);
    connection conn(ep, o.timeout);
    std::mt19937_64 rng(0x9E3779B97F4A7C15ull * (w + 1));
    const double period = o.rate > 0 ? double(o.concurrency) / o.rate : 0;
    double next_send = t_start + (period > 0 ? period * w / o.concurrency : 0);
    std::string head, body;
    for (;;) {
      if (sh.stop.load(std::memory_order_relaxed)) break;
      double now = mono_s();
      if (now >= t_end) break;
      if (period > 0 && now < next_send) {
        double wait = std::min(next_send, t_end) - now;
        std::this_thread::sleep_for(std::chrono::duration<double>(wait));
        if (mono_s() >= t_end) break;
      }
      uint64_t k = sh.next.fetch_add(1, std::memory_order_relaxed);
      if (o.requests && k >= o.requests) break;
      const profile_file& f = files[k % files.size()];
      uint64_t pod = (k / files.size() + k) % o.series;
      std::string_view payload;
      std::shared_ptr<const std::vector<std::string>> stamped;
      if (o.mode == "ingest") {
        head = "POST /ingest?name=" + ingest_names[pod] + "&format=pprof&from=" +
               std::to_string(wall_ns() / 1000000000) +
               " HTTP/1.1\r\nHost: " + ep.host_header +
               "\r\nContent-Type: application/octet-stream\r\nContent-Length: " +
               std::to_string(f.gz.size()) + "\r\n\r\n";
        payload = f.gz;
      } else {
        stamped = stamps->get();
        std::string name = f.kind == "cpu" ? "process_cpu"
                           : (f.kind == "heap" || f.kind == "allocs") ? "memory"
                                                                      : f.kind;
        body = push_body({{"__name__", name},
                          {"pod", "pod-" + std::to_string(pod)},
                          {"service_name", "svc-" + std::to_string(pod % o.services)}},
                         (*stamped)[k % files.size()], uuid4(rng));
        head = "POST /push.v1.PusherService/Push HTTP/1.1\r\nHost: " + ep.host_header +
               "\r\nContent-Type: application/proto\r\nConnect-Protocol-Version: 1\r\n"
               "Content-Length: " +
               std::to_string(body.size()) + "\r\n\r\n";
        payload = body;
      }
      // Open loop: latency counts from the scheduled send time, so queueing is not hidden.
      double t0 = period > 0 ? std::min(next_send, mono_s()) : mono_s();
      std::string retry_after;
      int status = conn.roundtrip(head, payload, &retry_after);
      double t1 = mono_s();
      if (period > 0) {
        next_send += period;
        // Do not build an unbounded backlog if the server cannot keep up: skip missed slots.
        if (next_send < t1 - 1.0) next_send = t1;
      }
      if (status >= 0) st.bytes_sent += head.size() + payload.size();
      if (status < 0) {
        ++st.io_errors;
        ++st.status[-1];
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
        continue;
      }
      st.lat_ms.push_back(float((t1 - t0) * 1e3));
      ++st.status[status];
      sh.done.fetch_add(1, std::memory_order_relaxed);
      if (status == 200) {
        ++st.profiles_ok;
        st.samples_ok += f.samples;
        sh.ok.fetch_add(1, std::memory_order_relaxed);
        sh.samples_ok.fetch_add(f.samples, std::memory_order_relaxed);
      } else {
        if (status == 429) sh.r429.fetch_add(1, std::memory_order_relaxed);
        if ((status == 429 || status == 503) && o.backoff_ms > 0)
          std::this_thread::sleep_for(std::chrono::milliseconds(o.backoff_ms));
      }
    }
    st.reconnects = conn.reconnects();
  };

  std::vector<std::thread> threads;
  for (int w = 0; w < o.concurrency; ++w) threads.emplace_back(worker, w);

  // Monitor: once a second sample the server's RSS, refresh push timestamps, print progress.
  int64_t peak_rss_kb = mem0.rss_kb;
  std::vector<std::pair<double, int64_t>> rss_trend;  // (t, kB) once per second
  std::atomic<bool> workers_done{false};
  std::thread monitor([&] {
    uint64_t last_done = 0, last_samples = 0;
    double last_t = t_start, last_cpu = cpu0;
    int tick = 0;
    while (!workers_done.load()) {
      for (int i = 0; i < 10 && !workers_done.load(); ++i)
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
      if (workers_done.load()) break;
      ++tick;
      double now = mono_s();
      if (stamps) stamps->refresh();
      int64_t rss = -1;
      double cpu = -1;
      if (o.server_pid) {
        rss = read_mem(o.server_pid).rss_kb;
        cpu = read_cpu_s(o.server_pid);
        peak_rss_kb = std::max(peak_rss_kb, rss);
        rss_trend.emplace_back(now - t_start, rss);
      }
      if (o.progress) {
        uint64_t d = sh.done.load(), s = sh.samples_ok.load();
        double dt = now - last_t;
        std::fprintf(stderr,
                     "[%4.0fs] %7.0f req/s %9.0f samples/s  ok %" PRIu64 " 429 %" PRIu64
                     "  server rss %.1f MiB cpu %.2f cores\n",
                     now - t_start, (d - last_done) / dt, (s - last_samples) / dt, sh.ok.load(),
                     sh.r429.load(), rss / 1024.0, cpu >= 0 ? (cpu - last_cpu) / dt : 0.0);
        last_done = d;
        last_samples = s;
        last_t = now;
        last_cpu = cpu;
      }
    }
  });
  for (auto& t : threads) t.join();
  const double t_stop = mono_s();
  workers_done = true;
  monitor.join();
  double cpu1 = o.server_pid ? read_cpu_s(o.server_pid) : -1;
  proc_mem mem1 = o.server_pid ? read_mem(o.server_pid) : proc_mem{};
  if (o.server_pid) peak_rss_kb = std::max(peak_rss_kb, mem1.rss_kb);
  double self_cpu = self_cpu_s() - self0;

  // Aggregate.
  std::vector<float> lat;
  std::map<int, uint64_t> status;
  uint64_t profiles = 0, samples = 0, bytes = 0, ioerr = 0, reconnects = 0;
  for (auto& s : stats) {
    lat.insert(lat.end(), s.lat_ms.begin(), s.lat_ms.end());
    for (auto [c, n] : s.status) status[c] += n;
    profiles += s.profiles_ok;
    samples += s.samples_ok;
    bytes += s.bytes_sent;
    ioerr += s.io_errors;
    reconnects += s.reconnects;
  }
  std::sort(lat.begin(), lat.end());
  const double wall = t_stop - t_start;
  uint64_t answered = lat.size();
  uint64_t other = 0;
  for (auto [c, n] : status)
    if (c != 200 && c != 429 && c != -1) other += n;

  std::printf("load_driver: mode=%s url=%s concurrency=%d series=%" PRIu64 " services=%d files=%zu%s\n",
              o.mode.c_str(), o.url.c_str(), o.concurrency, o.series, o.services, files.size(),
              o.rate > 0 ? (" rate=" + std::to_string(o.rate)).c_str() : " (closed loop)");
  std::printf("wall %.2f s, %" PRIu64 " answered, %" PRIu64 " I/O errors, %" PRIu64 " reconnects, %.1f MB sent\n",
              wall, answered, ioerr, reconnects, bytes / 1e6);
  std::printf("throughput (200s only): %.1f requests/s, %.1f profiles/s, %.0f samples/s (answered: %.1f req/s)\n",
              profiles / wall, profiles / wall, samples / wall, answered / wall);
  std::printf("ack latency ms: p50 %.2f  p90 %.2f  p99 %.2f  max %.2f  mean %.2f\n", pct(lat, 50),
              pct(lat, 90), pct(lat, 99), lat.empty() ? 0.0 : lat.back(),
              lat.empty() ? 0.0 : [&] {
                double s = 0;
                for (float x : lat) s += x;
                return s / lat.size();
              }());
  std::printf("status: 200=%" PRIu64 " 429=%" PRIu64 " other=%" PRIu64 " io_error=%" PRIu64,
              status[200], status[429], other, status[-1]);
  for (auto [c, n] : status)
    if (c != 200 && c != 429 && c != -1) std::printf(" [%d]=%" PRIu64, c, n);
  std::printf("\n");
  std::printf("driver cpu %.2f s (%.2f cores)\n", self_cpu, self_cpu / wall);
  if (o.server_pid) {
    double cpu = cpu1 - cpu0;
    std::printf("server cpu %.2f s (%.2f cores busy); samples/s per server core: %.0f\n", cpu,
                cpu / wall, cpu > 0 ? samples / cpu : 0.0);
    std::printf("server rss: start %.1f MiB, end %.1f MiB, peak sampled %.1f MiB, VmHWM %.1f MiB\n",
                mem0.rss_kb / 1024.0, mem1.rss_kb / 1024.0, peak_rss_kb / 1024.0,
                mem1.hwm_kb / 1024.0);
    // RSS trend: the max per 60 s window (or per tenth of the run if shorter).
    double win = wall >= 120 ? 60 : std::max(1.0, std::floor(wall / 10));
    std::printf("server rss trend (max per %.0f s):", win);
    std::map<int, int64_t> per;
    for (auto [t, r] : rss_trend) per[int(t / win)] = std::max(per[int(t / win)], r);
    for (auto [i, r] : per) std::printf(" %.0fs:%.0fMiB", (i + 1) * win, r / 1024.0);
    std::printf("\n");
  }
  return (status[200] == 0) ? 1 : 0;
}
