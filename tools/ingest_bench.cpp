// ingest_bench: the server's per-request ingest path, stage by stage, in one thread, for CPU and
// instruction counts per pprof sample (docs/bench.md, "Ingest CPU per sample").
//
// Each request is what tools/load_driver sends to /ingest: one of the real `*.pb.gz` files of
// the testdata (round robin), for series `svc-<pod % 2>{pod=pod-<pod>}`, pod = request % --series.
// Per request, as the distributor worker and the partition do it:
//   gunzip -> pprof::decode -> batch_builder (one per thread, reused) -> encode_batch ->
//   WAL append (one WAL per shard; shard = pod % --shards, since all series of a profile go to
//   one shard) -> group commit: fsync every --group requests -> head.append (one head per shard).
// Each stage is a separate non-inlined function, so a callgrind run gives its inclusive
// instruction count directly (`callgrind_annotate --inclusive=yes`, the `stage_*` functions).
//
// Self-check (a failure exits non-zero): every shard's WAL replays to a head with the same
// samples, values and profiles as the head filled during the run.
//
//   build-rel/tools/ingest_bench --testdata /work/shared/testdata [--requests 2000] \
//       [--series 1000] [--shards 2] [--group 8] [--match mapindex.cpu,workpool.cpu] [--tmp /tmp]

#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "format/batch_codec.hpp"
#include "format/head.hpp"
#include "format/ingest_request.hpp"
#include "format/normalize.hpp"
#include "format/pprof.hpp"
#include "io/file.hpp"
#include "io/wal.hpp"

namespace hearth {
namespace {

namespace fs = std::filesystem;

[[noreturn]] void die(const std::string& what) {
  std::fprintf(stderr, "ingest_bench: FAILED: %s\n", what.c_str());
  std::exit(1);
}

template <class T>
T must(result<T> r, const char* what) {
  if (!r.ok()) die(std::string(what) + ": " + r.err().to_string());
  return std::move(*r);
}

void must(const status& s, const char* what) {
  if (!s.ok()) die(std::string(what) + ": " + s.err().to_string());
}

double thread_cpu_s() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

// One stage's CPU time over the run.
struct stage_time {
  const char* name;
  double cpu = 0;
};

// ---- the stages (noinline: each is one callgrind entry) --------------------------------------

[[gnu::noinline]] std::string stage_gunzip(const std::string& gz) {
  return must(pprof::gunzip(as_bytes(gz), 64 << 20), "gunzip");
}

[[gnu::noinline]] pprof::profile stage_decode(const std::string& raw) {
  return must(pprof::decode(as_bytes(raw)), "pprof::decode");
}

[[gnu::noinline]] ingest_batch stage_build(batch_builder& b, const pprof::profile& p, const ingest_meta& m) {
  b.start("anonymous", normalize_limits{});
  must(b.add(p, m), "batch_builder::add");
  return b.finish();
}

[[gnu::noinline]] std::string stage_encode(const ingest_batch& b) { return encode_batch(b); }

[[gnu::noinline]] void stage_wal_append(io::wal_writer& w, const std::string& rec) {
  must(w.append(as_bytes(rec)), "wal append");
}

[[gnu::noinline]] void stage_wal_sync(io::wal_writer& w) { must(w.sync(), "wal sync"); }

[[gnu::noinline]] void stage_head_append(head& h, const ingest_batch& b) { h.append(b); }

// The batch is destroyed on the partition thread once the head holds it.
[[gnu::noinline]] void stage_free(std::vector<ingest_batch>& v) { v.clear(); }

struct options {
  std::string testdata;
  std::string tmp = "/tmp";
  std::vector<std::string> match{"mapindex.cpu", "workpool.cpu"};
  size_t requests = 2000;
  size_t series = 1000;
  size_t shards = 2;
  size_t group = 8;
};

std::vector<std::string> split_csv(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream ss(s);
  for (std::string part; std::getline(ss, part, ',');)
    if (!part.empty()) out.push_back(part);
  return out;
}

options parse(int argc, char** argv) {
  options o;
  if (const char* e = std::getenv("HEARTH_TESTDATA")) o.testdata = e;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto val = [&]() -> std::string {
      if (i + 1 >= argc) die("missing value after " + a);
      return argv[++i];
    };
    auto num = [&]() -> size_t {
      std::string v = val();
      char* end = nullptr;
      unsigned long long x = std::strtoull(v.c_str(), &end, 10);
      if (v.empty() || *end != '\0' || x == 0) die(a + " wants a positive integer, got " + v);
      return static_cast<size_t>(x);
    };
    if (a == "--testdata") o.testdata = val();
    else if (a == "--tmp") o.tmp = val();
    else if (a == "--match") o.match = split_csv(val());
    else if (a == "--requests") o.requests = num();
    else if (a == "--series") o.series = num();
    else if (a == "--shards") o.shards = num();
    else if (a == "--group") o.group = num();
    else {
      std::fprintf(stderr,
                   "usage: ingest_bench [--testdata DIR] [--requests N] [--series N] [--shards N]\n"
                   "                    [--group K] [--match a,b] [--tmp DIR]\n");
      std::exit(a == "--help" || a == "-h" ? 0 : 2);
    }
  }
  if (o.testdata.empty()) o.testdata = "../shared/testdata";
  return o;
}

// The totals a head holds: compared between the run's heads and the WAL replay's.
struct head_totals {
  uint64_t profiles = 0, pairs = 0;
  int64_t sum = 0;
  bool operator==(const head_totals&) const = default;
};

head_totals totals(const head& h) {
  head_totals t;
  t.profiles = h.data().profiles.size();
  t.pairs = h.data().samples.size();
  for (const auto& s : h.data().samples)
    t.sum = static_cast<int64_t>(static_cast<uint64_t>(t.sum) + static_cast<uint64_t>(s.value));
  return t;
}

int run(int argc, char** argv) {
  const options o = parse(argc, argv);

  // Inputs: the matching files, each with its pprof sample count.
  std::vector<std::string> files;
  std::vector<uint64_t> file_samples;
  for (const auto& e : fs::recursive_directory_iterator(o.testdata)) {
    const std::string name = e.path().filename().string();
    if (!name.ends_with(".pb.gz")) continue;
    bool want = false;
    for (const auto& m : o.match) want = want || name.find(m) != std::string::npos;
    if (want) files.push_back(e.path().string());
  }
  std::sort(files.begin(), files.end());
  if (files.empty()) die("no *.pb.gz matching --match under " + o.testdata);
  std::vector<std::string> gz;
  for (const auto& f : files) {
    std::ifstream in(f, std::ios::binary);
    gz.emplace_back(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
    const std::string raw = stage_gunzip(gz.back());
    file_samples.push_back(stage_decode(raw).samples.size());
  }
  std::vector<label_set> pod_labels(o.series);
  for (size_t pod = 0; pod < o.series; ++pod)
    pod_labels[pod] = must(parse_app_name("svc-" + std::to_string(pod % 2) + "{pod=pod-" + std::to_string(pod) + "}"),
                           "parse_app_name");

  auto fsys = must(io::make_file_system(io::backend::automatic), "make_file_system");
  const std::string dir = o.tmp + "/ingest_bench." + std::to_string(getpid());
  std::error_code ec;
  fs::remove_all(dir, ec);
  std::vector<std::unique_ptr<io::wal_writer>> wals;
  std::vector<head> heads(o.shards);
  for (size_t s = 0; s < o.shards; ++s)
    wals.push_back(must(io::wal_writer::open(*fsys, dir + "/wal-" + std::to_string(s), io::wal_max_record_limit),
                        "wal_writer::open"));

  stage_time t_gunzip{"gunzip"}, t_decode{"pprof::decode"}, t_build{"batch_builder"}, t_encode{"encode_batch"},
      t_append{"WAL append"}, t_sync{"WAL fsync (group)"}, t_head{"head.append"}, t_free{"batch free"};
  auto timed = [](stage_time& t, auto&& f) {
    const double c0 = thread_cpu_s();
    if constexpr (std::is_void_v<decltype(f())>) {
      f();
      t.cpu += thread_cpu_s() - c0;
    } else {
      auto r = f();
      t.cpu += thread_cpu_s() - c0;
      return r;
    }
  };

  batch_builder builder;
  uint64_t samples = 0, wal_bytes = 0;
  uint32_t wal_crc = 0;  // over all records in order: compares the WAL bytes of two builds
  std::vector<std::vector<ingest_batch>> pending(o.shards);
  const double wall0 = [] {
    timespec ts{};
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
  }();
  const double cpu0 = thread_cpu_s();
  auto commit = [&](size_t s) {
    timed(t_sync, [&] { stage_wal_sync(*wals[s]); });
    for (const auto& b : pending[s]) timed(t_head, [&] { stage_head_append(heads[s], b); });
    timed(t_free, [&] { stage_free(pending[s]); });
  };
  for (size_t i = 0; i < o.requests; ++i) {
    const size_t f = i % gz.size();
    const size_t pod = i % o.series;
    const size_t shard = pod % o.shards;
    ingest_meta meta;
    meta.labels = pod_labels[pod];
    meta.from = ingest_meta::source::ingest;
    meta.spy_name = "unknown";
    meta.time_ns = static_cast<int64_t>(1'700'000'000 + i) * 1'000'000'000;
    meta.id_hi = i + 1;
    meta.id_lo = 0x9e3779b97f4a7c15ULL * (i + 1);
    const std::string raw = timed(t_gunzip, [&] { return stage_gunzip(gz[f]); });
    const pprof::profile p = timed(t_decode, [&] { return stage_decode(raw); });
    ingest_batch b = timed(t_build, [&] { return stage_build(builder, p, meta); });
    const std::string rec = timed(t_encode, [&] { return stage_encode(b); });
    timed(t_append, [&] { stage_wal_append(*wals[shard], rec); });
    wal_bytes += rec.size();
    wal_crc = crc32c(as_bytes(rec), wal_crc);
    samples += file_samples[f];
    pending[shard].push_back(std::move(b));
    if (pending[shard].size() >= o.group) commit(shard);
  }
  for (size_t s = 0; s < o.shards; ++s)
    if (!pending[s].empty()) commit(s);
  const double cpu = thread_cpu_s() - cpu0;
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  const double wall = static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9 - wall0;
  wals.clear();

  // Self-check: the WALs replay to the same heads.
  for (size_t s = 0; s < o.shards; ++s) {
    head replayed;
    must(io::replay_wal(*fsys, dir + "/wal-" + std::to_string(s), 0,
                        [&](uint64_t, bytes_view payload) -> status {
                          auto b = decode_batch(payload);
                          if (!b.ok()) return b.err();
                          replayed.append(*b);
                          return {};
                        },
                        nullptr),
         "replay_wal");
    if (!(totals(replayed) == totals(heads[s]))) die("shard " + std::to_string(s) + ": WAL replay != head");
  }
  fs::remove_all(dir, ec);

  std::printf("ingest_bench: %zu requests over %zu files (%s), %zu series, %zu shards, fsync every %zu "
              "requests per shard; %" PRIu64 " pprof samples, %.2f MB of WAL (records' crc32c %08x)\n",
              o.requests, files.size(), std::string(fsys->name()).c_str(), o.series, o.shards, o.group, samples,
              static_cast<double>(wal_bytes) / 1e6, wal_crc);
  std::printf("| stage | CPU s | ns/sample | samples/s per core |\n|---|---|---|---|\n");
  double sum = 0;
  for (const stage_time* t : {&t_gunzip, &t_decode, &t_build, &t_encode, &t_append, &t_sync, &t_head, &t_free}) {
    sum += t->cpu;
    std::printf("| %s | %.3f | %.1f | %.2f M |\n", t->name, t->cpu, t->cpu * 1e9 / static_cast<double>(samples),
                static_cast<double>(samples) / t->cpu / 1e6);
  }
  std::printf("| all stages | %.3f | %.1f | %.2f M |\n", sum, sum * 1e9 / static_cast<double>(samples),
              static_cast<double>(samples) / sum / 1e6);
  std::printf("thread CPU %.3f s, wall %.3f s: %.2f M samples/s per core\n", cpu, wall,
              static_cast<double>(samples) / cpu / 1e6);
  return 0;
}

}  // namespace
}  // namespace hearth

int main(int argc, char** argv) { return hearth::run(argc, argv); }
