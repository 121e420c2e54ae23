// query_bench: the server's read path, timed in-process over synthetic 24 h datasets built from
// the REAL Go CPU profiles of the shared testdata (docs/bench.md, "Query path (issue 4)").
//
// Datasets (deterministic):
//   * W3/W7/W8/W9 "stacks": per service, 24 h of 15 s Go CPU profiles (5,760 profiles, 2 rows each:
//     samples/count and cpu/nanoseconds, as batch_builder stores a Go CPU profile) of ~2k stacks.
//     The stacks are the distinct stacks of the 6 real Go CPU profiles; each profile takes every
//     base stack in one or more "versions": the leaf frame's function is renamed `<name>@vN`
//     (a new function and location), so a day holds ~200k distinct stacks of real shape.
//     Values are whole 10 ms CPU samples. Built with ingest_batch -> head.append -> seal ->
//     encode_segment(zstd) per hour (24 level-1 files per service, as compaction writes them);
//     service A and B are two partitions.
//   * W4b "totals": 10k series (pod=pod-NNNNN) x 1,440 profiles (one a minute) of one sample each,
//     block_data built directly (only profile totals matter), 24 hourly zstd files.
// Each query reads the files as the block store does (on a cold cache: read + decode_segment, or
// for a query that reads rows only, io::read_segment_rows + decode_segment_rows;
// "warm" = blocks already decoded, as the partition's block cache holds them), then
// query::evaluator::make/add/finish per partition, query::merger::add per partial and the
// frontend's render, calling the same functions as actors/partition_actor.cpp `evaluate` and
// actors/query_frontend_actor.cpp `render`/`render_pair`.
// Peer: K perturbed real Go CPU profiles written as .pb.gz; `go tool pprof -top` on them against
// Hearth's merge + exact top on the same profiles (after ingest into a block), flat values checked.
// Self-checks (a failure exits non-zero): totals of every answer against the generated totals,
// distinct stacks, series sums and top-10, pprof exports decode to the same total, peer flat values.
//
//   meson setup build-rel --buildtype=release && ninja -C build-rel tools/query_bench
//   build-rel/tools/query_bench --testdata ../shared/testdata [--quick] [--reps 7]

#include <fcntl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cinttypes>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <unordered_map>
#include <thread>
#include <unordered_set>
#include <vector>

#include "format/compact.hpp"
#include "format/compaction_plan.hpp"
#include "format/gzip.hpp"
#include "format/head.hpp"
#include "format/normalize.hpp"
#include "format/pprof.hpp"
#include "format/segment.hpp"
#include "io/segment_file.hpp"
#include "query/diff.hpp"
#include "query/evaluate.hpp"
#include "query/findings.hpp"
#include "query/partial_cache.hpp"
#include "query/flame_tree.hpp"
#include "query/pprof_export.hpp"
#include "query/series_query.hpp"
#include "tools/pprof_writer.hpp"

namespace hearth {
namespace {

namespace fs = std::filesystem;
using bench::encode_pprof;

constexpr int64_t ns_per_s = 1'000'000'000;
constexpr int64_t ns_per_ms = 1'000'000;
constexpr int64_t cpu_period_ns = 10'000'000;  // Go's 100 Hz
// 2026-11-01T00:00:00Z
constexpr int64_t day_start_ns = int64_t{1'793'491'200} * ns_per_s;
constexpr int64_t hour_ns = 3600 * ns_per_s;
const char* const cpu_type = "process_cpu:cpu:nanoseconds:cpu:nanoseconds";

// ---------------------------------------------------------------------------------------------
// Utilities

[[noreturn]] void die(const std::string& what) {
  std::fprintf(stderr, "query_bench: FAILED: %s\n", what.c_str());
  std::exit(1);
}

template <class T>
T must(result<T> r, const char* what) {
  if (!r.ok()) die(std::string(what) + ": " + r.err().to_string());
  return std::move(*r);
}

void check(bool ok, const std::string& what) {
  if (!ok) die("check failed: " + what);
}

double now_s(clockid_t clock) {
  timespec ts{};
  clock_gettime(clock, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}
double wall_now() { return now_s(CLOCK_MONOTONIC); }
double cpu_now() { return now_s(CLOCK_PROCESS_CPUTIME_ID); }

/// splitmix64: deterministic.
struct rng {
  uint64_t s;
  uint64_t next() {
    uint64_t z = (s += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
  }
  double uniform() { return static_cast<double>(next() >> 11) * 0x1.0p-53; }
};

/// The file system the block store reads through (io_uring where the kernel allows it).
io::file_system& file_system() {
  static std::unique_ptr<io::file_system> fs =
      must(io::make_file_system(io::backend::automatic), "make_file_system");
  return *fs;
}

std::string read_whole(const std::string& p) {
  int fd = ::open(p.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) die("open " + p + ": " + std::strerror(errno));
  struct stat st {};
  ::fstat(fd, &st);
  std::string out(static_cast<size_t>(st.st_size), '\0');
  size_t got = 0;
  while (got < out.size()) {
    ssize_t n = ::read(fd, out.data() + got, out.size() - got);
    if (n <= 0) die("read " + p);
    got += static_cast<size_t>(n);
  }
  ::close(fd);
  return out;
}

void write_whole(const std::string& p, std::string_view data) {
  std::ofstream out(p, std::ios::binary | std::ios::trunc);
  out.write(data.data(), static_cast<std::streamsize>(data.size()));
  if (!out) die("write " + p);
}

std::string loadavg() {
  std::ifstream in("/proc/loadavg");
  std::string a, b, c;
  in >> a >> b >> c;
  return a + " " + b + " " + c;
}

std::string cpu_model() {
  std::ifstream in("/proc/cpuinfo");
  std::string line;
  while (std::getline(in, line))
    if (line.rfind("model name", 0) == 0) return line.substr(line.find(':') + 2);
  return "?";
}

std::string human_bytes(double b) {
  char buf[64];
  if (b >= 1e6) std::snprintf(buf, sizeof buf, "%.2f MB", b / 1e6);
  else if (b >= 1e3) std::snprintf(buf, sizeof buf, "%.1f KB", b / 1e3);
  else std::snprintf(buf, sizeof buf, "%.0f B", b);
  return buf;
}

/// Wall and CPU seconds of repeated runs; p50 = median, p99 = nearest rank (the max for < 100).
struct samples {
  std::vector<double> wall, cpu;
  void add(double w, double c) {
    wall.push_back(w);
    cpu.push_back(c);
  }
  static double pct(std::vector<double> v, double p) {
    if (v.empty()) return 0;
    std::sort(v.begin(), v.end());
    size_t rank = static_cast<size_t>(std::ceil(p * static_cast<double>(v.size())));
    return v[std::min(v.size() - 1, rank == 0 ? 0 : rank - 1)];
  }
  double p50() const { return pct(wall, 0.5); }
  double p99() const { return pct(wall, 0.99); }
  double cpu50() const { return pct(cpu, 0.5); }
};

/// --all-pairs: whole-depth reads decode every series' pairs (the readers before
/// decode_segment_series), for an A/B in one run.
bool all_pairs = false;

/// Per-stage CPU seconds of one query run (summed over partitions).
struct stages {
  double read = 0, decode = 0, frames = 0, add = 0, finish = 0, merge = 0, render = 0;
  double cache = 0;  ///< partial cache: copying a hit out, or a miss's partial in
  double total() const { return read + decode + frames + add + finish + merge + render + cache; }
};

template <class F>
void timed(double& acc, F&& f) {
  double c0 = cpu_now();
  f();
  acc += cpu_now() - c0;
}

// ---------------------------------------------------------------------------------------------
// Segments on disk and the read path of one partition (actors/partition_actor.cpp `evaluate`
// and actors/reader_actor.cpp, with their rollups and frame maps).

struct seg_file {
  std::string path;
  segment_info info;
  uint64_t bytes = 0;
  std::shared_ptr<const block_data> data;  ///< the block cache
  query::block_depth depth = query::block_depth::whole;  ///< how deep `data` was decoded
  std::shared_ptr<const query::block_frames> frames;  ///< kept with `data`, as block_store::frames
  std::vector<bool> series;  ///< whole depth: the series whose pairs `data` has; empty = all
  /// As block_store::get_outside: the block with only the pairs outside [outside_lo, outside_hi)
  /// and less than outside_step from it decoded, and its frame map.
  std::shared_ptr<const block_data> outside;
  int64_t outside_lo = 0, outside_hi = 0, outside_step = 0;
  std::shared_ptr<const query::block_frames> outside_frames;
};

/// The process's frame dictionary (actors/block_store: one per server, budget 1/8 of 1 GiB).
query::frame_dict& frame_dictionary() {
  static auto dict = std::make_shared<query::frame_dict>(uint64_t{1} << 27);
  return *dict;
}

struct partition {
  std::vector<seg_file> segs;
  void drop_cache() {
    for (auto& s : segs) {
      s.data.reset();
      s.frames.reset();
      s.series.clear();
      s.outside.reset();
      s.outside_frames.reset();
    }
  }
};

void add_segment(partition& p, const std::string& path, const std::string& bytes) {
  write_whole(path, bytes);
  seg_file s;
  s.path = path;
  s.bytes = bytes.size();
  s.info = must(read_segment_info(as_bytes(bytes)), "read_segment_info");
  p.segs.push_back(std::move(s));
}

/// As the server's read path: the partition lists the segment files whose footer time range
/// overlaps the query, with the rollup a flame graph may read instead (query::choose_rollup, as
/// actors/partition_actor.cpp `evaluate`), and a reader evaluates each file on its own
/// (actors/reader_actor.cpp: the rollup alone when it covers every selected row of the file,
/// else the raw block, cached or read and decoded; one evaluator per file, finish, or for a pprof
/// export one per reader's batch of a partition's files); the frontend's merger merges every
/// partial. With `cache`, as a reader with
/// query.partial_cache_bytes: a cacheable file's partial is copied out of the cache, or
/// evaluated and a copy kept.
query::merger gather(std::vector<partition*>& parts, const query::query_spec& q, stages& st,
                     query::partial_cache* cache = nullptr) {
  query::merger m;
  // As block_store::get: a query decodes only as deep as it reads (rows as columns, full rows,
  // the whole block); a block decoded less deep than a query needs is decoded again.
  const query::block_depth depth = query::depth_needed(q);
  // --all-pairs: every series' pairs, as every reader decoded blocks before decode_segment_series.
  auto load_whole = [&](seg_file& seg) -> const block_data& {
    if (!seg.data || seg.depth < depth || !seg.series.empty()) {
      std::string bytes;
      timed(st.read, [&] { bytes = read_whole(seg.path); });
      timed(st.decode, [&] {
        seg.data = std::make_shared<const block_data>(must(decode_segment(as_bytes(bytes)), "decode_segment"));
      });
      seg.depth = query::block_depth::whole;
      seg.series.clear();
      seg.frames.reset();
    }
    return *seg.data;
  };
  // As block_store::get with the evaluator's series reads: a whole block has the pairs of the
  // series some query read (seg.series; empty = all), and is decoded again, with both sets and
  // its frame map kept, when a query reads another.
  auto load = [&](seg_file& seg, const query::evaluator& ev) -> const block_data& {
    if (all_pairs) return load_whole(seg);
    bool more = false;
    if (seg.data && seg.depth == query::block_depth::whole && !seg.series.empty()) {
      const std::vector<bool> want = ev.series_read(*seg.data);
      for (size_t i = 0; i < want.size(); ++i) more = more || (want[i] && !seg.series[i]);
    }
    if (!seg.data || seg.depth < depth || more) {
      const auto fields = depth == query::block_depth::rows ? row_fields::all : row_fields::columns;
      if (depth == query::block_depth::whole) {
        std::string bytes;
        timed(st.read, [&] { bytes = read_whole(seg.path); });
        std::vector<bool> had = seg.series, series;
        timed(st.decode, [&] {
          seg.data = std::make_shared<const block_data>(must(
              decode_segment_series(as_bytes(bytes),
                                    [&](const block_data& b) {
                                      series = ev.series_read(b);
                                      for (size_t i = 0; i < had.size(); ++i) series[i] = series[i] || had[i];
                                      return series;
                                    }),
              "decode_segment_series"));
        });
        seg.series = std::find(series.begin(), series.end(), false) == series.end() ? std::vector<bool>{} : series;
        // Decoded again for more series' pairs: the same stacks, so the frame map stays (unless
        // the block had only its rows: no series read, no stacks decoded).
        if (more && seg.frames && seg.frames->node.size() == seg.data->stacks.size()) {
          seg.depth = depth;
          return *seg.data;
        }
      } else {
        io::segment_image image;
        timed(st.read, [&] {
          image = must(io::read_segment_rows(file_system(), seg.path, fields), "read_segment_rows");
        });
        timed(st.decode, [&] {
          seg.data = std::make_shared<const block_data>(
              must(decode_segment_rows(image.view(), fields), "decode_segment_rows"));
        });
      }
      seg.depth = depth;
      seg.frames.reset();
    }
    return *seg.data;
  };
  // As the reader: a flame graph reads a block through its frame map, made on first use.
  const bool stacks = q.kind == static_cast<uint8_t>(query::query_kind::merge_stacks);
  const bool pprof = q.kind == static_cast<uint8_t>(query::query_kind::merge_pprof);
  // The server's readers: one per core, at least 2 (tools/hearth.cpp).
  std::vector<std::optional<query::evaluator>> batches(std::max(2u, std::thread::hardware_concurrency()));
  size_t dealt = 0;
  auto finish_batches = [&] {
    for (auto& b : batches) {
      if (!b) continue;
      query::partial part;
      timed(st.finish, [&] { part = std::move(*b).finish(); });
      timed(st.merge, [&] { m.add(std::move(part)); });
      b.reset();
    }
    dealt = 0;
  };
  auto frames = [&](seg_file& seg) -> std::shared_ptr<const query::block_frames> {
    if (!stacks) return nullptr;
    if (!seg.frames) timed(st.frames, [&] { seg.frames = frame_dictionary().map(*seg.data); });
    return seg.frames;
  };
  for (partition* p : parts) {
    for (auto& seg : p->segs) {
      if (seg.info.rollup_step_ns != 0 || seg.info.profiles == 0 || seg.info.max_time_ns < q.start_ns ||
          seg.info.min_time_ns >= q.end_ns)
        continue;
      std::vector<int64_t> steps;
      std::vector<seg_file*> rollups;
      for (auto& r : p->segs)
        if (r.info.rollup_step_ns > 0 && !r.info.sources.empty() && r.info.sources[0] == seg.info.block_id &&
            (q.kind != static_cast<uint8_t>(query::query_kind::merge_pprof) ||
             r.info.version >= segment_exact_rollup_times_version)) {
          steps.push_back(r.info.rollup_step_ns);
          rollups.push_back(&r);
        }
      const query::rollup_choice rc = query::choose_rollup(q, steps);
      seg_file* rolled = rc.index == SIZE_MAX ? nullptr : rollups[rc.index];
      std::optional<std::string> key;
      if (cache)
        key = query::partial_cache_key(q, {seg.path, seg.info.min_time_ns, seg.info.max_time_ns,
                                           rolled ? rolled->path : "", rc.lo_ns, rc.hi_ns});
      if (key) {
        query::partial part;
        bool hit = false;
        timed(st.cache, [&] {
          if (auto c = cache->get(*key)) {
            part = *c;
            hit = true;
          }
        });
        if (hit) {
          timed(st.merge, [&] { m.add(std::move(part)); });
          continue;
        }
      }
      // A pprof export's files go to the readers in batches (one per reader, files dealt in
      // turn; actors/query_frontend_actor.cpp): each batch is one evaluator, finished below.
      std::optional<query::evaluator> own;
      query::evaluator* evp = nullptr;
      if (pprof) {
        auto& b = batches[dealt++ % batches.size()];
        if (!b) b = must(query::evaluator::make(q), "evaluator::make");
        evp = &*b;
      } else {
        own = must(query::evaluator::make(q), "evaluator::make");
        evp = &*own;
      }
      query::evaluator& ev = *evp;
      if (!rolled) {
        const block_data& raw = load(seg, ev);
        auto f = frames(seg);
        timed(st.add, [&] { ev.add(raw, f); });
      } else if (!query::raw_rows_outside(q, rc, seg.info.min_time_ns, seg.info.max_time_ns)) {
        const block_data& r = load(*rolled, ev);
        auto f = frames(*rolled);
        timed(st.add, [&] { ev.add(r, rc.lo_ns, rc.hi_ns, f); });
      } else {
        const block_data& r = load(*rolled, ev);
        // As block_store::get_outside: the whole block if it is decoded, else only the pairs of
        // the rows outside the rollup's buckets and less than a step from them, kept for this
        // window.
        const block_data* rawp = nullptr;
        std::shared_ptr<const query::block_frames> fw;
        if (seg.data && seg.depth == query::block_depth::whole && seg.series.empty()) {
          rawp = seg.data.get();
          fw = frames(seg);
        } else {
          const int64_t step = rolled->info.rollup_step_ns;
          if (!seg.outside || seg.outside_lo != rc.lo_ns || seg.outside_hi != rc.hi_ns ||
              seg.outside_step != step) {
            std::string bytes;
            timed(st.read, [&] { bytes = read_whole(seg.path); });
            timed(st.decode, [&] {
              seg.outside = std::make_shared<const block_data>(
                  must(decode_segment_outside(as_bytes(bytes), rc.lo_ns, rc.hi_ns, step), "decode_segment_outside"));
            });
            seg.outside_lo = rc.lo_ns;
            seg.outside_hi = rc.hi_ns;
            seg.outside_step = step;
            seg.outside_frames.reset();
          }
          rawp = seg.outside.get();
          if (stacks && !seg.outside_frames)
            timed(st.frames, [&] { seg.outside_frames = frame_dictionary().map(*seg.outside); });
          fw = seg.outside_frames;
        }
        const block_data& raw = *rawp;
        auto fr = frames(*rolled);
        timed(st.add, [&] {
          ev.add(raw, q.start_ns, rc.lo_ns, fw);
          ev.add(r, rc.lo_ns, rc.hi_ns, fr);
          ev.add(raw, rc.hi_ns, q.end_ns, fw);
        });
      }
      if (pprof) continue;
      query::partial part;
      timed(st.finish, [&] { part = std::move(ev).finish(); });
      if (key) timed(st.cache, [&] { cache->put(*key, std::make_shared<const query::partial>(part)); });
      timed(st.merge, [&] { m.add(std::move(part)); });
    }
    finish_batches();  // a partition's files are batched on their own
  }
  // The frontend's first tree() folds the partials' frame parts into the tree.
  if (stacks) timed(st.merge, [&] { m.tree(); });
  return m;
}

// ---------------------------------------------------------------------------------------------
// The base stacks: distinct stacks of the real Go CPU profiles, with their summed values.

struct base_pool {
  ingest_batch batch;                          ///< symbols of all sources + their stacks
  /// Base stacks: one batch stack per distinct path of frame names (what a flame tree keys by),
  /// so every (base, version) is a distinct flame-tree leaf.
  std::vector<uint32_t> base;
  std::vector<int64_t> count;                  ///< per base stack: summed samples/count
  size_t location_stacks = 0;                  ///< distinct stacks by location before that
  label_set cpu_labels, count_labels;          ///< a series' labels for each type
  std::vector<std::string> sources;
};

std::vector<fs::path> go_cpu_files(const fs::path& testdata) {
  std::vector<fs::path> files;
  for (const auto& e : fs::directory_iterator(testdata / "go")) {
    std::string n = e.path().filename().string();
    if (n.find(".cpu.") != std::string::npos && n.ends_with(".pb.gz")) files.push_back(e.path());
  }
  std::sort(files.begin(), files.end());
  check(!files.empty(), "no go/*.cpu.*.pb.gz under " + testdata.string());
  return files;
}

std::string label_value(const label_set& ls, std::string_view name) {
  for (const auto& l : ls)
    if (l.name == name) return l.value;
  return {};
}

base_pool load_base(const fs::path& testdata, const std::string& service) {
  base_pool bp;
  batch_builder bb("bench");
  for (const auto& f : go_cpu_files(testdata)) {
    std::string raw = must(pprof::gunzip(as_bytes(read_whole(f.string())), 64 << 20), "gunzip");
    pprof::profile p = must(pprof::decode(as_bytes(raw)), "pprof::decode");
    ingest_meta m;
    m.from = ingest_meta::source::push;
    m.labels = {{"__name__", "process_cpu"}, {"service_name", service}};
    m.time_ns = day_start_ns;
    m.duration_ns = 15 * ns_per_s;
    if (!bb.add(p, m).ok()) die("batch_builder.add " + f.string());
    bp.sources.push_back(f.filename().string());
  }
  bp.batch = bb.finish();
  const ingest_batch& b = bp.batch;
  bp.location_stacks = b.stack_count();
  // Group the stacks by their path of frame names (root to leaf, inlined frames expanded).
  std::vector<uint32_t> base_of(b.stack_count());
  std::map<std::string, uint32_t> by_path;
  for (uint32_t s = 0; s < b.stack_count(); ++s) {
    std::string key;
    for (uint32_t i = b.stack_offsets[s + 1]; i-- > b.stack_offsets[s];) {
      const location_rec& l = b.syms.locations[b.stack_locations[i]];
      for (uint32_t j = l.line_count; j-- > 0;) {
        key += b.syms.strings[b.syms.functions[b.syms.lines[l.line_begin + j].function].name];
        key.push_back('\0');
      }
    }
    auto [it, fresh] = by_path.emplace(key, static_cast<uint32_t>(bp.base.size()));
    if (fresh) bp.base.push_back(s);
    base_of[s] = it->second;
  }
  bp.count.assign(bp.base.size(), 0);
  for (const auto& s : b.series) {
    std::string type = label_value(s.labels, "__type__");
    if (type == "samples") {
      bp.count_labels = s.labels;
      for (size_t i = 0; i < s.sample_stacks.size(); ++i) bp.count[base_of[s.sample_stacks[i]]] += s.sample_values[i];
    } else if (type == "cpu") {
      bp.cpu_labels = s.labels;
    }
  }
  check(!bp.cpu_labels.empty() && !bp.count_labels.empty(), "base profiles have cpu and samples series");
  for (auto& c : bp.count) c = std::max<int64_t>(c, 1);
  for (auto* ls : {&bp.cpu_labels, &bp.count_labels})
    for (auto& l : *ls)
      if (l.name == "__service_name__") l.value = service;
  return bp;
}

// ---------------------------------------------------------------------------------------------
// Dataset 1: one service's day of ~2k-stack profiles with ~200k distinct stacks.

struct stacks_options {
  int profiles = 5760;           ///< 15 s apart
  int stacks_per_profile = 2000;
  int distinct_target = 200'000;
};

struct stacks_dataset {
  int64_t cpu_total = 0, count_total = 0;
  int64_t cpu_first_half = 0;  ///< profiles before the midpoint (for a check of the halves)
  std::vector<int64_t> cpu_by_profile;  ///< the cpu total of each profile (15 s apart from the day's start)
  uint64_t pairs = 0;          ///< stored (stack, value) pairs, both types
  uint64_t distinct_stacks = 0;
  uint64_t file_bytes = 0, day_file_bytes = 0;
  std::vector<uint64_t> rollup_file_bytes;  ///< the day's 1 min and 1 h rollups
  int base_stacks = 0, versions = 0;
  double build_s = 0, encode_s = 0;
  int64_t end_ns = 0;
};

/// The layouts the day's hourly L1 files are compacted into besides the hourly files themselves.
struct compacted_layouts {
  partition day;     ///< the whole day as one L2 file and its rollups (no job cap): the best case
  partition today;   ///< as the default policy leaves it in the last hour (open L2 windows): 23 hours in L2
  partition closed;  ///< as the default policy leaves it once the day has closed
};

/// As the L1 -> L2 compaction (actors/compactor_actor.cpp, run_compaction_job): `inputs` merged
/// (merge_segments) into one level-2 file `name`.seg naming `sources`, then its rollups at `steps`
/// (roll_up), each its own file `name`-rollup<step>s.seg, all added to `out`. Returns the files'
/// sizes, the raw one first.
std::vector<uint64_t> write_l2(partition& out, const std::vector<const segment_columns*>& inputs,
                               std::vector<uint64_t> sources, const std::vector<int64_t>& steps, int zstd_level,
                               const std::string& name, uint64_t& block_id) {
  std::vector<uint64_t> sizes;
  segment_info meta;
  meta.level = 2;
  meta.block_id = ++block_id;
  meta.sources = std::move(sources);
  merged_segment merged = must(merge_segments(inputs, merge_options{}), "merge_segments");
  std::string bytes = must(encode_segment(merged.block, merged.samples, segment_codec::zstd, meta, zstd_level), "encode L2");
  sizes.push_back(bytes.size());
  add_segment(out, name + ".seg", bytes);
  std::vector<merged_segment> rolled = must(roll_up(std::move(merged), steps), "roll_up");
  for (size_t k = 0; k < rolled.size(); ++k) {
    segment_info rm;
    rm.level = 2;
    rm.block_id = ++block_id;
    rm.rollup_step_ns = steps[k];
    rm.sources = {meta.block_id};
    bytes = must(encode_segment(rolled[k].block, rolled[k].samples, segment_codec::zstd, rm, zstd_level), "encode rollup");
    sizes.push_back(bytes.size());
    add_segment(out, name + "-rollup" + std::to_string(steps[k] / ns_per_s) + "s.seg", bytes);
  }
  return sizes;
}

/// Runs the plans of `policy` at `now` over the hourly files of `part` (their columns `hours`),
/// as the compactor does (actors/compactor_actor.cpp, run_compaction_job): each job's inputs
/// merged (merge_segments), written at its level, with rollups for level 2; blocks no job takes
/// stay as they are. Plans until none is left.
void plan_layout(const partition& part, const std::vector<segment_columns>& hours, const compaction_policy& policy,
                 int64_t now, partition& out, const std::string& dir, const std::string& prefix, uint64_t& block_id) {
  std::vector<block_ref> refs;
  for (const auto& sg : part.segs)
    refs.push_back(block_ref{sg.info.block_id, sg.info.level, 0, sg.info.min_time_ns, sg.info.max_time_ns, sg.bytes,
                             sg.info.profiles, sg.info.samples});
  const std::vector<compaction_job> jobs = plan_compactions(refs, policy, now);
  check(!jobs.empty(), "the policy plans jobs over the hourly files");
  std::set<uint64_t> taken;
  int n = 0;
  for (const compaction_job& j : jobs) {
    check(j.output_level == 2, "hourly L1 files go to L2");
    std::vector<const segment_columns*> ptrs;
    for (uint64_t id : j.inputs)
      for (size_t i = 0; i < part.segs.size(); ++i)
        if (part.segs[i].info.block_id == id) ptrs.push_back(&hours[i]), taken.insert(id);
    write_l2(out, ptrs, j.inputs, j.rollup_steps_ns, policy.l2_zstd_level, dir + "/" + prefix + "-l2-" + std::to_string(n++),
             block_id);
  }
  for (const auto& sg : part.segs)
    if (!taken.count(sg.info.block_id)) {
      seg_file copy = sg;
      copy.data.reset();
      copy.frames.reset();
      out.segs.push_back(std::move(copy));
    }
}

/// Also, when `layouts` is set, the day compacted: as one level-2 segment and its 1 min and 1 h
/// rollups, and as the default policy's plans leave it (compacted_layouts).
stacks_dataset build_stacks(const base_pool& bp, const stacks_options& o, uint64_t seed, partition& part,
                            const std::string& dir, const std::string& tag, compacted_layouts* layouts = nullptr) {
  partition* day = layouts != nullptr ? &layouts->day : nullptr;
  std::vector<segment_columns> hours;
  stacks_dataset ds;
  const uint32_t B = static_cast<uint32_t>(bp.base.size());
  const uint32_t V = static_cast<uint32_t>(std::max<int64_t>(1, (o.distinct_target + B - 1) / B));
  ds.base_stacks = static_cast<int>(B);
  ds.versions = static_cast<int>(V);
  check(static_cast<uint64_t>(o.stacks_per_profile) <= uint64_t{B} * V, "stacks per profile <= distinct stacks");
  std::unordered_set<uint64_t> seen;
  const int64_t step = 15 * ns_per_s;
  const int per_hour = static_cast<int>(hour_ns / step);
  ds.end_ns = day_start_ns + int64_t{o.profiles} * step;
  const int64_t mid_ns = day_start_ns + int64_t{o.profiles / 2} * step;
  rng r{seed};
  uint64_t block_id = seed << 20;
  for (int k0 = 0; k0 < o.profiles; k0 += per_hour) {
    double c0 = cpu_now();
    ingest_batch b;
    b.tenant = "bench";
    b.syms = bp.batch.syms;
    // (function, version) -> function; (location, version) -> location; (base, version) -> stack.
    std::unordered_map<uint64_t, uint32_t> fn_v, loc_v, stack_v;
    auto variant_loc = [&](uint32_t loc, uint32_t v) -> uint32_t {
      uint64_t key = (uint64_t{loc} << 32) | v;
      if (auto it = loc_v.find(key); it != loc_v.end()) return it->second;
      const location_rec l = b.syms.locations[loc];
      check(l.line_count > 0, "Go leaf locations are symbolized");
      // The innermost line (first) gets the versioned function.
      const line_rec inner = b.syms.lines[l.line_begin];
      uint64_t fkey = (uint64_t{inner.function} << 32) | v;
      uint32_t fn;
      if (auto it = fn_v.find(fkey); it != fn_v.end()) {
        fn = it->second;
      } else {
        function_rec f = b.syms.functions[inner.function];
        std::string name = b.syms.strings[f.name] + "@v" + std::to_string(v);
        f.name = static_cast<uint32_t>(b.syms.strings.size());
        f.system_name = f.name;
        b.syms.strings.push_back(std::move(name));
        fn = static_cast<uint32_t>(b.syms.functions.size());
        b.syms.functions.push_back(f);
        fn_v.emplace(fkey, fn);
      }
      location_rec nl = l;
      nl.line_begin = static_cast<uint32_t>(b.syms.lines.size());
      b.syms.lines.push_back(line_rec{fn, inner.line});
      for (uint32_t j = 1; j < l.line_count; ++j) b.syms.lines.push_back(b.syms.lines[l.line_begin + j]);
      uint32_t id = static_cast<uint32_t>(b.syms.locations.size());
      b.syms.locations.push_back(nl);
      loc_v.emplace(key, id);
      return id;
    };
    auto stack_of = [&](uint32_t base, uint32_t v) -> uint32_t {
      uint64_t key = (uint64_t{base} << 32) | v;
      if (auto it = stack_v.find(key); it != stack_v.end()) return it->second;
      const uint32_t bs = bp.base[base];
      const uint32_t from = bp.batch.stack_offsets[bs], to = bp.batch.stack_offsets[bs + 1];
      b.stack_locations.push_back(variant_loc(bp.batch.stack_locations[from], v));
      for (uint32_t i = from + 1; i < to; ++i) b.stack_locations.push_back(bp.batch.stack_locations[i]);
      uint32_t id = static_cast<uint32_t>(b.stack_count());
      b.stack_offsets.push_back(static_cast<uint32_t>(b.stack_locations.size()));
      stack_v.emplace(key, id);
      return id;
    };
    for (int k = k0; k < std::min(o.profiles, k0 + per_hour); ++k) {
      const int64_t t = day_start_ns + int64_t{k} * step;
      ds.cpu_by_profile.push_back(0);
      ingest_series cpu, cnt;
      cpu.labels = bp.cpu_labels;
      cnt.labels = bp.count_labels;
      cpu.time_ns = cnt.time_ns = t;
      cpu.duration_ns = cnt.duration_ns = step;
      cpu.id_hi = cnt.id_hi = r.next() | 1;
      cpu.id_lo = cnt.id_lo = r.next();
      const uint32_t offset = static_cast<uint32_t>((uint64_t(k) * o.stacks_per_profile) % B);
      for (int j = 0; j < o.stacks_per_profile; ++j) {
        const uint32_t x = offset + static_cast<uint32_t>(j);
        const uint32_t base = x % B, i = x / B;  // i-th version of this base stack in this profile
        const uint32_t v = static_cast<uint32_t>((hash_mix(seed + static_cast<uint64_t>(k), base) + i) % V);
        const uint32_t s = stack_of(base, v);
        seen.insert((uint64_t{base} << 32) | v);
        const int64_t n = 1 + static_cast<int64_t>(r.next() % static_cast<uint64_t>(2 * bp.count[base]));
        cnt.sample_stacks.push_back(s);
        cnt.sample_values.push_back(n);
        cpu.sample_stacks.push_back(s);
        cpu.sample_values.push_back(n * cpu_period_ns);
        ds.count_total += n;
        ds.cpu_total += n * cpu_period_ns;
        ds.cpu_by_profile.back() += n * cpu_period_ns;
        if (t < mid_ns) ds.cpu_first_half += n * cpu_period_ns;
        ds.pairs += 2;
      }
      b.series.push_back(std::move(cnt));
      b.series.push_back(std::move(cpu));
    }
    head h;
    h.append(b);
    block_data blk = h.seal();
    double c1 = cpu_now();
    segment_info meta;
    meta.level = 1;
    meta.block_id = ++block_id;
    meta.sources = {block_id + (uint64_t{1} << 40)};
    std::string bytes = must(encode_segment(blk, segment_codec::zstd, meta), "encode_segment zstd");
    if (day) hours.push_back(must(decode_segment_columns(as_bytes(bytes)), "decode_segment_columns"));
    double c2 = cpu_now();
    ds.build_s += c1 - c0;
    ds.encode_s += c2 - c1;
    ds.file_bytes += bytes.size();
    char name[64];
    std::snprintf(name, sizeof name, "/%s-h%02d.seg", tag.c_str(), k0 / per_hour);
    add_segment(part, dir + name, bytes);
  }
  ds.distinct_stacks = seen.size();
  if (layouts != nullptr) {
    // The server's defaults: 1 h and 24 h windows, level-2 jobs of at most 24 Mi pairs, open L2
    // windows. At 23:05 hours 0-22 have closed; the open hour 23 stays one L1 file (as the
    // l0_max_blocks merges leave it), which is how the whole last hour of the day looks.
    const compaction_policy policy;
    plan_layout(part, hours, policy, day_start_ns + 23 * hour_ns + policy.grace_ns, layouts->today, dir, tag + "-today", block_id);
    plan_layout(part, hours, policy, day_start_ns + 24 * hour_ns + policy.grace_ns, layouts->closed, dir, tag + "-closed", block_id);
  }
  if (day) {
    // The whole day in one job, whatever the caps (the best case), at the default zstd level.
    std::vector<const segment_columns*> ptrs;
    std::vector<uint64_t> sources;
    for (const auto& h : hours) ptrs.push_back(&h);
    for (const auto& sg : part.segs) sources.push_back(sg.info.block_id);
    std::vector<uint64_t> sizes = write_l2(*day, ptrs, sources, {60 * ns_per_s, hour_ns}, segment_default_zstd_level,
                                           dir + "/" + tag + "-day", block_id);
    ds.day_file_bytes = sizes[0];
    ds.rollup_file_bytes.assign(sizes.begin() + 1, sizes.end());
  }
  return ds;
}

// ---------------------------------------------------------------------------------------------
// Dataset 2: 10k series x 1,440 one-minute profiles; only totals matter.

struct totals_dataset {
  int series = 0, per_series = 0;
  int64_t total = 0;
  std::vector<int64_t> per_pod;  ///< sum per pod
  uint64_t file_bytes = 0;
  double build_s = 0;
};

std::string pod_name(int pod) {
  char b[32];
  std::snprintf(b, sizeof b, "pod-%05d", pod);
  return b;
}

totals_dataset build_totals(const base_pool& bp, int nseries, int minutes, partition& part, const std::string& dir) {
  totals_dataset ds;
  ds.series = nseries;
  ds.per_series = minutes;
  ds.per_pod.assign(static_cast<size_t>(nseries), 0);
  rng r{777};
  double c0 = cpu_now();
  for (int h0 = 0; h0 < minutes; h0 += 60) {
    block_data b;
    b.syms = bp.batch.syms;
    // One real frame: the leaf location of the first base stack.
    b.stacks.push_back(stack_node{0, bp.batch.stack_locations[0]});
    std::unordered_map<std::string, uint32_t> str_ids;
    for (uint32_t i = 0; i < b.syms.strings.size(); ++i) str_ids.emplace(b.syms.strings[i], i);
    auto intern = [&](const std::string& s) {
      auto [it, fresh] = str_ids.emplace(s, static_cast<uint32_t>(b.syms.strings.size()));
      if (fresh) b.syms.strings.push_back(s);
      return it->second;
    };
    for (int pod = 0; pod < nseries; ++pod) {
      label_set ls = bp.cpu_labels;
      ls.push_back({"pod", pod_name(pod)});
      for (auto& l : ls)
        if (l.name == "service_name" || l.name == "__service_name__") l.value = "svc-" + std::to_string(pod % 10);
      std::sort(ls.begin(), ls.end());
      series_rec sr;
      sr.label_begin = static_cast<uint32_t>(b.labels.size());
      sr.label_count = static_cast<uint32_t>(ls.size());
      for (const auto& l : ls) b.labels.push_back(label_ref{intern(l.name), intern(l.value)});
      b.series.push_back(sr);
    }
    b.profiles.reserve(static_cast<size_t>(nseries) * 60);
    b.samples.reserve(static_cast<size_t>(nseries) * 60);
    for (int m = h0; m < std::min(minutes, h0 + 60); ++m)
      for (int pod = 0; pod < nseries; ++pod) {
        profile_row row;
        row.series = static_cast<uint32_t>(pod);
        row.time_ns = day_start_ns + int64_t{m} * 60 * ns_per_s + int64_t{pod % 60} * ns_per_s;
        row.duration_ns = 60 * ns_per_s;
        row.total = (1 + static_cast<int64_t>(r.next() % 1000)) * cpu_period_ns;
        row.sample_begin = static_cast<uint32_t>(b.samples.size());
        row.sample_count = 1;
        row.id_hi = r.next() | 1;
        row.id_lo = r.next();
        b.samples.push_back(sample_rec{1, row.total});
        b.profiles.push_back(row);
        ds.total += row.total;
        ds.per_pod[static_cast<size_t>(pod)] += row.total;
      }
    b.min_time_ns = b.profiles.front().time_ns;
    b.max_time_ns = b.min_time_ns;
    for (const auto& p : b.profiles) {
      b.min_time_ns = std::min(b.min_time_ns, p.time_ns);
      b.max_time_ns = std::max(b.max_time_ns, p.time_ns);
    }
    segment_info meta;
    meta.level = 1;
    meta.block_id = 900'000 + static_cast<uint64_t>(h0);
    meta.sources = {meta.block_id + 1'000'000};
    std::string bytes = must(encode_segment(b, segment_codec::zstd, meta), "encode_segment totals");
    ds.file_bytes += bytes.size();
    char name[64];
    std::snprintf(name, sizeof name, "/totals-h%02d.seg", h0 / 60);
    add_segment(part, dir + name, bytes);
  }
  ds.build_s = cpu_now() - c0;
  return ds;
}

// ---------------------------------------------------------------------------------------------
// The peer: go tool pprof as a child process.

struct child_run {
  double wall = 0, cpu = 0;  ///< cpu = user + sys of the child (all its threads)
  std::string out;
};

child_run run_child(const std::vector<std::string>& argv, const std::string& out_path) {
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  double w0 = wall_now();
  pid_t pid = fork();
  if (pid < 0) die("fork");
  if (pid == 0) {
    int fd = ::open(out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    int nul = ::open("/dev/null", O_WRONLY);
    if (fd < 0 || nul < 0) _exit(127);
    dup2(fd, 1);
    dup2(nul, 2);
    execvp(args[0], args.data());
    _exit(127);
  }
  int status = 0;
  rusage ru{};
  if (wait4(pid, &status, 0, &ru) != pid) die("wait4");
  child_run r;
  r.wall = wall_now() - w0;
  r.cpu = static_cast<double>(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
          static_cast<double>(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) * 1e-6;
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) die("peer command failed: " + argv[0] + " " + argv[1]);
  r.out = read_whole(out_path);
  return r;
}

/// flat per function from `pprof -top -unit=ns` output.
std::vector<std::pair<std::string, int64_t>> parse_top(const std::string& text) {
  std::vector<std::pair<std::string, int64_t>> out;
  std::istringstream in(text);
  std::string line;
  bool body = false;
  while (std::getline(in, line)) {
    if (!body) {
      if (line.find("flat%") != std::string::npos) body = true;
      continue;
    }
    std::istringstream ls(line);
    std::string flat, flatp, sump, cum, cump;
    if (!(ls >> flat >> flatp >> sump >> cum >> cump)) continue;
    std::string name;
    std::getline(ls, name);
    name.erase(0, name.find_first_not_of(' '));
    if (name.ends_with(" (inline)")) name.resize(name.size() - 9);
    check(flat == "0" || flat.ends_with("ns"), "pprof -top prints ns with -unit=ns: " + line);
    out.emplace_back(name, std::strtoll(flat.c_str(), nullptr, 10));
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Driver

struct options {
  std::string testdata;
  std::string tmp = "/tmp";
  int reps = 5;        ///< W3, W7, W8, peer
  int heavy_reps = 1;  ///< W9 (cold and warm each)
  int w4b_reps = 1;    ///< W4b: cold runs and as many warm; one gather, two renders
  bool quick = false;
  bool keep = false;
  int64_t w3_from_s = 0;  ///< W3/W8 start this many seconds after the day's start (a range a rollup hour cuts)
  stacks_options stacks;
  int totals_series = 10'000;
  int totals_minutes = 1440;
  std::vector<int> peer_k{14, 100};
  std::string only;  ///< comma-separated workloads to run (w3,w8,w7,w9,w4b,peer,day); empty = all
  bool wants(const char* w) const { return only.empty() || ("," + only + ",").find("," + std::string(w) + ",") != std::string::npos; }
};

[[noreturn]] void usage() {
  std::fprintf(stderr,
               "usage: query_bench [--testdata DIR] [--tmp DIR] [--reps N] [--heavy-reps N] [--w4b-reps N]\n"
               "                   [--quick] [--keep] [--only w3,w8,w7,w9,w4b,peer,day] [--w3-from SECONDS]\n"
               "                   [--all-pairs]\n"
               "  Default: 24 h (5,760 profiles x 2,000 stacks, ~200k distinct) per service, 10k x 1,440\n"
               "  totals, peer K = 14 and 100; 5 runs (cold and warm each) for W3/W8/peer, W7 5 cold + 3 warm\n"
               "  + 3 from the partial cache,\n"
               "  1 for W9 (hourly files: cold only) and\n"
               "  W4b (cold and warm; one gather rendered for all and top-10): runs take 10-30 s at this size.\n"
               "  --quick: 6 h (1,440 profiles, 50k distinct), 1k x 1,440 totals, K = 14, 5 runs of all.\n"
               "  --w3-from S: W3/W8 over [day start + S s, day end), e.g. 1380 for a range that starts 23 min\n"
               "  into an hour, as a \"last 24 h\" one does: the rollups answer its whole hours, the raw blocks the rest.\n"
               "  day: also each service's day as one L2 file with its 1 min and 1 h rollups, and as the\n"
               "  default compaction policy leaves it in the last hour (open L2 windows; the\n"
               "  open hour as one L1 file) and once the day has closed, for W3/W8, W7 and W9 to run over\n"
               "  every layout.\n");
  std::exit(2);
}

options parse(int argc, char** argv) {
  options o;
  if (const char* d = std::getenv("HEARTH_TESTDATA"); d != nullptr && *d != 0) o.testdata = d;
  else o.testdata = "../shared/testdata";
  bool reps_set = false;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= argc) usage();
      return argv[++i];
    };
    if (a == "--testdata") o.testdata = next();
    else if (a == "--tmp") o.tmp = next();
    else if (a == "--reps") o.reps = std::max(1, std::atoi(next().c_str())), reps_set = true;
    else if (a == "--heavy-reps") o.heavy_reps = std::max(1, std::atoi(next().c_str()));
    else if (a == "--w3-from") o.w3_from_s = std::max(0, std::atoi(next().c_str()));
    else if (a == "--all-pairs") all_pairs = true;
    else if (a == "--w4b-reps") o.w4b_reps = std::max(1, std::atoi(next().c_str()));
    else if (a == "--quick") o.quick = true;
    else if (a == "--keep") o.keep = true;
    else if (a == "--only") o.only = next();
    else usage();
  }
  if (o.quick) {
    o.stacks.profiles = 1440;
    o.stacks.distinct_target = 50'000;
    o.totals_series = 1000;
    o.peer_k = {14};
    o.w4b_reps = 5;
    o.heavy_reps = 5;
    if (!reps_set) o.reps = 5;
  }
  return o;
}

struct row {
  std::string name, figure, target, ratio;
};
std::vector<row> table;

std::string ms(double s) {
  if (s == 0) return "-";  // no run of that kind
  char b[32];
  std::snprintf(b, sizeof b, "%.1f ms", s * 1e3);
  return b;
}
std::string fmt(const char* f, double x) {
  char b[64];
  std::snprintf(b, sizeof b, f, x);
  return b;
}
std::string wc(const samples& x) { return ms(x.p50()) + " (CPU " + ms(x.cpu50()) + ")"; }
/// "target / figure" as "N.NNx" (> 1 = met) for "lower is better" figures.
std::string vs(double target, double figure) { return fmt("%.2fx", target / figure) + (figure <= target ? " met" : " MISSED"); }

void print_stages(const char* what, const stages& s, int runs) {
  if (runs <= 0) return;
  const double n = runs;
  std::printf("   %s CPU per run: read %.1f, decode_segment %.1f, frame maps %.1f, evaluator.add %.1f, finish %.1f, merger.add %.1f, render %.1f, partial cache %.1f ms\n",
              what, s.read / n * 1e3, s.decode / n * 1e3, s.frames / n * 1e3, s.add / n * 1e3, s.finish / n * 1e3, s.merge / n * 1e3,
              s.render / n * 1e3, s.cache / n * 1e3);
}

query::query_spec stacks_spec(const std::string& service, int64_t start, int64_t end) {
  query::query_spec q;
  q.kind = static_cast<uint8_t>(query::query_kind::merge_stacks);
  q.profile_type = cpu_type;
  q.selector = "{service_name=\"" + service + "\"}";
  q.start_ns = start;
  q.end_ns = end;
  q.max_rollup_step_ns = INT64_MAX;  // as cluster/query_api.cpp stacks_selection
  return q;
}

int run(int argc, char** argv) {
  const options o = parse(argc, argv);
  const std::string dir = o.tmp + "/hearth-query-bench-" + std::to_string(getpid());
  fs::create_directories(dir);
  std::printf("query_bench%s: machine %ld cpus, %s; load average at start %s\n", o.quick ? " --quick" : "",
              sysconf(_SC_NPROCESSORS_ONLN), cpu_model().c_str(), loadavg().c_str());
  std::fflush(stdout);

  // ---- datasets ----
  base_pool svc_a = load_base(o.testdata, "svc-a"), svc_b = load_base(o.testdata, "svc-b");
  partition part_a, part_b, part_t;
  compacted_layouts lay_a, lay_b;
  partition& part_a_day = lay_a.day;
  double g0 = wall_now();
  stacks_dataset da = build_stacks(svc_a, o.stacks, 1, part_a, dir, "svc-a", o.wants("day") ? &lay_a : nullptr);
  stacks_dataset db;
  if (o.wants("w7"))
    db = build_stacks(svc_b, o.stacks, 2, part_b, dir, "svc-b", o.wants("day") ? &lay_b : nullptr);
  totals_dataset dt;
  if (o.wants("w4b")) dt = build_totals(svc_a, o.totals_series, o.totals_minutes, part_t, dir);
  const double gen_s = wall_now() - g0;
  std::printf("base: %zu distinct stacks (%d distinct frame-name paths) from %zu real Go CPU profiles; %d versions per path\n",
              svc_a.location_stacks, da.base_stacks, svc_a.sources.size(), da.versions);
  std::printf("stacks dataset per service: %d profiles x %d stacks (2 rows each: cpu + samples), %" PRIu64
              " distinct stacks, %" PRIu64 " pairs, %zu zstd files, %s (%.2f B/pair); build %.1f s, encode %.1f s CPU\n",
              o.stacks.profiles, o.stacks.stacks_per_profile, da.distinct_stacks, da.pairs, part_a.segs.size(),
              human_bytes(static_cast<double>(da.file_bytes)).c_str(),
              static_cast<double>(da.file_bytes) / static_cast<double>(da.pairs), da.build_s, da.encode_s);
  {
    uint64_t nodes = 0;
    for (const auto& sg : part_a.segs) nodes += sg.info.stacks;
    std::printf("  stack-tree nodes per hourly file: %.0f on average (the day: %" PRIu64 " distinct stacks)\n",
                static_cast<double>(nodes) / static_cast<double>(part_a.segs.size()), da.distinct_stacks);
  }
  if (!part_a_day.segs.empty()) {
    std::printf("  the same day as one L2 file (merge_segments of the 24 hourly files): %s (%.2f B/pair)",
                human_bytes(static_cast<double>(da.day_file_bytes)).c_str(),
                static_cast<double>(da.day_file_bytes) / static_cast<double>(da.pairs));
    for (size_t k = 1; k < part_a_day.segs.size(); ++k)
      std::printf(", %" PRId64 " s rollup %s (%" PRIu64 " pairs)", part_a_day.segs[k].info.rollup_step_ns / ns_per_s,
                  human_bytes(static_cast<double>(part_a_day.segs[k].bytes)).c_str(), part_a_day.segs[k].info.samples);
    std::printf("\n");
  }
  std::printf("totals dataset: %d series x %d profiles = %lld rows, %zu zstd files, %s (%.2f B/row); build %.1f s CPU\n",
              dt.series, dt.per_series, static_cast<long long>(dt.series) * dt.per_series, part_t.segs.size(),
              human_bytes(static_cast<double>(dt.file_bytes)).c_str(),
              static_cast<double>(dt.file_bytes) / (static_cast<double>(dt.series) * dt.per_series), dt.build_s);
  std::printf("generation took %.1f s wall; files under %s\n\n", gen_s, dir.c_str());
  std::fflush(stdout);
  check(da.distinct_stacks >= static_cast<uint64_t>(o.stacks.distinct_target) * 9 / 10, "~distinct_target distinct stacks");

  const int64_t t0 = day_start_ns, t1 = da.end_ns;
  // Layouts of the same data: 0 the hourly L1 files; with `day`, 1 the day as one L2 file, 2 as
  // the default policy leaves it in the day's last hour (open L2 windows), 3 once it has closed.
  auto layout_of = [&](int layout, bool b) -> partition& {
    compacted_layouts& L = b ? lay_b : lay_a;
    return layout == 0 ? (b ? part_b : part_a) : layout == 1 ? L.day : layout == 2 ? L.today : L.closed;
  };
  auto layout_label = [](int layout, const std::vector<partition*>& ps) {
    size_t l1 = 0, l2 = 0, rollups = 0;
    for (const partition* P : ps)
      for (const auto& sg : P->segs) (sg.info.rollup_step_ns ? rollups : sg.info.level == 2 ? l2 : l1) += 1;
    std::string files = (l2 ? std::to_string(l2) + " L2 + " + std::to_string(rollups) + " rollup files" : "") +
                        (l2 && l1 ? ", " : "") + (l1 ? std::to_string(l1) + (layout == 0 ? " hourly" : "") + " L1 files" : "");
    const char* what[] = {"", "the day as one file: ", "default policy, last hour open: ", "default policy, day closed: "};
    return " [" + std::string(what[layout]) + files + "]";
  };
  const std::string span = std::to_string(o.stacks.profiles * 15 / 3600) + " h";

  // ---- W3: flame graph ----
  size_t tree_nodes = 0;
  for (int layout = 0; layout < 4 && o.wants("w3"); ++layout) {
    partition& P = layout_of(layout, false);
    if (P.segs.empty()) continue;
    std::vector<partition*> parts{&P};
    const std::string lay = layout_label(layout, parts) + (o.w3_from_s ? " from +" + std::to_string(o.w3_from_s) + " s" : "");
    samples cold, warm, cold8, warm8, find_only, cached, cached8;
    stages sc, sw, sh;
    const int64_t w3_t0 = t0 + o.w3_from_s * ns_per_s;
    const auto q = stacks_spec("svc-a", w3_t0, t1);
    int64_t w3_total = 0;  // the profiles in [w3_t0, t1)
    for (size_t k = 0; k < da.cpu_by_profile.size(); ++k)
      if (t0 + static_cast<int64_t>(k) * 15 * ns_per_s >= w3_t0) w3_total += da.cpu_by_profile[k];
    const int nc = o.reps, nw = o.reps;
    // "cached": warm blocks and every file's partial in a query::partial_cache (the readers'
    // results cache) filled by one untimed run: what a repeated dashboard query costs.
    query::partial_cache pcache(uint64_t{4} << 30);
    query::flame_graph uncached_graph;  // the answers of the last run without the cache
    std::vector<query::function_share> uncached_top;
    for (int rep = 0; rep < std::max(nc, nw); ++rep)
      for (int mode = 0; mode < 3; ++mode) {
        const bool is_warm = mode > 0, is_cached = mode == 2;
        if (rep >= (is_warm ? nw : nc)) continue;
        if (!is_warm) P.drop_cache();
        if (is_cached && pcache.size() == 0) {
          stages fill;
          gather(parts, q, fill, &pcache);
          std::printf("   partial cache filled: %zu partials, %s (insert CPU %.1f ms)\n", pcache.size(),
                      human_bytes(static_cast<double>(pcache.bytes())).c_str(), fill.cache * 1e3);
        }
        stages& st = is_cached ? sh : is_warm ? sw : sc;
        double w0 = wall_now(), c0 = cpu_now();
        query::merger m = gather(parts, q, st, is_cached ? &pcache : nullptr);
        const double gw = wall_now() - w0, gc = cpu_now() - c0;
        query::flame_graph g;
        timed(st.render, [&] {
          m.tree().finalize();
          g = query::render_flame_graph(m.tree(), 8192);
        });
        (is_cached ? cached : is_warm ? warm : cold).add(wall_now() - w0, cpu_now() - c0);
        // W8 on the same merged tree: the findings op renders with find() instead
        // (query_frontend_actor.cpp render, query_op::findings): gather + finalize + find.
        double fw0 = wall_now(), fc0 = cpu_now();
        m.tree().finalize();
        query::tree_findings f = query::find(m.tree(), 1000);
        const double fw = wall_now() - fw0, fc = cpu_now() - fc0;
        find_only.add(fw, fc);
        (is_cached ? cached8 : is_warm ? warm8 : cold8).add(gw + fw, gc + fc);
        check(f.total == w3_total, "W8 findings total == generated cpu total");
        check(f.top_self.size() == 1000, "W8 1000 functions");
        for (size_t x = 1; x < f.top_self.size(); ++x) check(f.top_self[x].self <= f.top_self[x - 1].self, "W8 top_self sorted");
        check(g.total == w3_total, "W3 flame graph total == generated cpu total (" + std::to_string(g.total) +
                                           " vs " + std::to_string(w3_total) + ")");
        if (!is_cached) {
          uncached_graph = g;
          uncached_top = f.top_self;
        } else {
          check(g == uncached_graph, "W3 from the partial cache == W3 evaluated");
          check(f.top_self == uncached_top, "W8 from the partial cache == W8 evaluated");
        }
        size_t rendered = 0;
        for (const auto& l : g.levels) rendered += l.size() / 4;
        check(rendered <= 8192 + 1 + 8192, "W3 rendered nodes bounded by max_nodes");
        tree_nodes = m.tree().size();
      }
    std::printf("W3 %s flame graph%s (svc-a, %zu tree nodes, max_nodes 8192): cold p50 %s p99 %s (CPU %s); warm p50 %s p99 %s\n",
                span.c_str(), lay.c_str(), tree_nodes, ms(cold.p50()).c_str(), ms(cold.p99()).c_str(), ms(cold.cpu50()).c_str(), ms(warm.p50()).c_str(),
                ms(warm.p99()).c_str());
    print_stages("cold", sc, nc);
    print_stages("warm", sw, nw);
    std::printf("W3%s from the partial cache (a repeated query; not a cold one): p50 %s (CPU %s)\n", lay.c_str(),
                ms(cached.p50()).c_str(), ms(cached.cpu50()).c_str());
    print_stages("cached", sh, nw);
    table.push_back({"W3 flame graph " + span + lay + ", cold p50", wc(cold), "< 150 ms", vs(0.150, cold.p50())});
    table.push_back({"W3 flame graph " + span + lay + ", cold p99", ms(cold.p99()), "< 400 ms", vs(0.400, cold.p99())});
    table.push_back({"W3 flame graph " + span + lay + ", warm p50", wc(warm), "< 150 ms", vs(0.150, warm.p50())});
    table.push_back({"W3 flame graph " + span + lay + ", partial-cache hit p50", wc(cached), "< 150 ms", vs(0.150, cached.p50())});
    std::printf("W8 exact top-1000 functions%s (gather + finalize + query::find(n=1000)): cold p50 %s, warm p50 %s; find alone p50 %s\n",
                lay.c_str(), ms(cold8.p50()).c_str(), ms(warm8.p50()).c_str(), ms(find_only.p50()).c_str());
    table.push_back({"W8 top-1000 functions " + span + lay + ", cold p50", wc(cold8), "< 200 ms", vs(0.200, cold8.p50())});
    table.push_back({"W8 top-1000 functions " + span + lay + ", warm p50", wc(warm8), "< 200 ms", vs(0.200, warm8.p50())});
    table.push_back({"W8 top-1000 functions " + span + lay + ", partial-cache hit p50", wc(cached8), "< 200 ms", vs(0.200, cached8.p50())});
    table.push_back({"W8 query::find(n=1000) alone" + lay + ", p50", wc(find_only), "-", "-"});
    check(tree_nodes > da.distinct_stacks, "tree has a leaf per distinct stack (" + std::to_string(tree_nodes) + " nodes)");
  }
  std::fflush(stdout);

  // ---- W7: diff of two services ----
  // cold, warm, and "cached" (warm blocks and every file's partial in a query::partial_cache
  // filled by one untimed run: a repeated diff, as W3's cached figure); over the hourly files,
  // and with `day` over each service's L2 day file and its rollups.
  for (int layout = 0; layout < 4 && o.wants("w7"); ++layout) {
    partition &A = layout_of(layout, false), &B = layout_of(layout, true);
    if (A.segs.empty() || B.segs.empty()) continue;
    std::vector<partition*> sides{&A, &B};
    const std::string lay = layout_label(layout, sides);
    samples cold, warm, cached;
    stages sc, sw, sh;
    const auto ql = stacks_spec("svc-a", t0, t1), qr = stacks_spec("svc-b", t0, t1);
    const int nc = o.reps, nw = o.quick ? o.reps : 3;  // warm: 3 runs by default
    query::partial_cache pcache(uint64_t{4} << 30);
    for (int rep = 0; rep < std::max(nc, nw); ++rep)
      for (int mode = 0; mode < 3; ++mode) {
        const bool is_warm = mode > 0, is_cached = mode == 2;
        if (rep >= (is_warm ? nw : nc)) continue;
        if (!is_warm) A.drop_cache(), B.drop_cache();
        query::partial_cache* pc = is_cached ? &pcache : nullptr;
        if (is_cached && pcache.size() == 0) {
          stages fill;
          gather(sides, ql, fill, pc);
          gather(sides, qr, fill, pc);
        }
        stages& st = is_cached ? sh : is_warm ? sw : sc;
        double w0 = wall_now(), c0 = cpu_now();
        // Both sides fan out to every partition (the first side fills the block cache).
        query::merger l = gather(sides, ql, st, pc);
        query::merger r = gather(sides, qr, st, pc);
        query::flame_graph_diff d;
        timed(st.render, [&] {
          l.tree().finalize();
          r.tree().finalize();
          d = must(query::render_flame_graph_diff(l.tree(), r.tree(), 8192), "render_flame_graph_diff");
        });
        (is_cached ? cached : is_warm ? warm : cold).add(wall_now() - w0, cpu_now() - c0);
        check(d.left_ticks == da.cpu_total && d.right_ticks == db.cpu_total, "W7 diff ticks == generated totals");
      }
    std::printf("W7 diff svc-a vs svc-b, 24 h each%s: cold p50 %s p99 %s, warm p50 %s, partial-cache hit p50 %s\n",
                lay.c_str(), ms(cold.p50()).c_str(), ms(cold.p99()).c_str(), ms(warm.p50()).c_str(),
                ms(cached.p50()).c_str());
    print_stages("cold", sc, nc);
    print_stages("warm", sw, nw);
    print_stages("cached", sh, nw);
    const std::string nm = "W7 diff of two " + span + " services" + lay;
    table.push_back({nm + ", cold p50", wc(cold), "< 300 ms", vs(0.300, cold.p50())});
    table.push_back({nm + ", warm p50", wc(warm), "< 300 ms", vs(0.300, warm.p50())});
    table.push_back({nm + ", partial-cache hit p50", wc(cached), "< 300 ms", vs(0.300, cached.p50())});
  }
  std::fflush(stdout);

  // ---- W9: pprof export, full and GoPGO ----
  // The day file's export reads its 1 h rollup: its time_nanos/duration_nanos must still be the
  // hourly files' (the first profile's time, to the last one's end).
  std::optional<std::pair<int64_t, int64_t>> w9_times[4];
  for (int variant = 0; variant < 8 && o.wants("w9"); ++variant) {
    const int pgo = variant & 1, layout = variant >> 1;
    partition& P = layout_of(layout, false);
    if (P.segs.empty()) continue;
    std::vector<partition*> parts{&P};
    const std::string lay = layout_label(layout, parts);
    samples cold, warm, gz;
    stages sc, sw;
    auto q = stacks_spec("svc-a", t0, t1);
    q.kind = static_cast<uint8_t>(query::query_kind::merge_pprof);
    if (pgo) {
      q.pgo = true;
      q.pgo_keep_locations = 5;
      q.pgo_aggregate_callees = true;
    }
    query::pprof_options po;
    po.type = must(query::parse_profile_type(cpu_type), "parse_profile_type");
    po.period = cpu_period_ns;
    po.max_nodes = 0;
    size_t raw_size = 0, gz_size = 0;
    // Hourly files: cold only by default (a warm run differs by the decode, ~1 s, and takes 13 s).
    const int nc = o.heavy_reps, nw = o.quick || layout == 1 ? o.heavy_reps : 0;
    for (int rep = 0; rep < std::max(nc, nw); ++rep)
      for (int is_warm = 0; is_warm < 2; ++is_warm) {
        if (rep >= (is_warm ? nw : nc)) continue;
        if (!is_warm) P.drop_cache();
        stages& st = is_warm ? sw : sc;
        double w0 = wall_now(), c0 = cpu_now();
        query::merger m = gather(parts, q, st);
        std::string bytes;
        timed(st.render, [&] { bytes = query::render_pprof(m.pprof(), po); });
        (is_warm ? warm : cold).add(wall_now() - w0, cpu_now() - c0);
        if (is_warm || nw == 0) {
          double a = wall_now(), b = cpu_now();
          std::string z = gzip_compress(bytes, 1);
          gz.add(wall_now() - a, cpu_now() - b);
          raw_size = bytes.size();
          gz_size = z.size();
          if (rep == 0) {
            pprof::profile p = must(pprof::decode(as_bytes(bytes)), "decode exported pprof");
            int64_t sum = 0;
            for (int64_t v : p.values) sum += v;
            check(sum == da.cpu_total, "W9 exported pprof total == generated cpu total");
            w9_times[layout] = std::pair{p.time_nanos, p.duration_nanos};
            if (layout > 0 && w9_times[0])
              check(w9_times[layout] == w9_times[0], "W9 time_nanos/duration_nanos from L2 files == from the hourly files");
            std::printf("   W9 %s: %zu samples, %zu locations, %zu functions\n", pgo ? "PGO" : "full", p.samples.size(),
                        p.locations.size(), p.functions.size());
          }
        }
      }
    const std::string nm = std::string(pgo ? "W9 pprof export GoPGO keep_locations=5" : "W9 pprof export full") + lay;
    std::printf("%s: cold p50 %s, warm p50 %s; %s raw, %s gzip-1 (gzip %s)\n", nm.c_str(), ms(cold.p50()).c_str(),
                ms(warm.p50()).c_str(), human_bytes(static_cast<double>(raw_size)).c_str(),
                human_bytes(static_cast<double>(gz_size)).c_str(), ms(gz.p50()).c_str());
    print_stages("cold", sc, nc);
    const double tgt = pgo ? 0.300 : 2.0, tgt_mb = pgo ? 3.0 : 30.0;
    table.push_back({nm + ", cold p50 (+ gzip-1)", wc(cold) + " (+" + ms(gz.p50()) + ")",
                     pgo ? "< 300 ms" : "< 2 s", vs(tgt, cold.p50() + gz.p50())});
    table.push_back({nm + ", size raw / gzip-1",
                     human_bytes(static_cast<double>(raw_size)) + " / " + human_bytes(static_cast<double>(gz_size)),
                     pgo ? "<= 3 MB gz" : "<= 30 MB gz", vs(tgt_mb, static_cast<double>(gz_size) / 1e6)});
  }
  std::fflush(stdout);

  // ---- W4b: SelectSeries 10k series x 1,440 at 60 s, for all series and for the top 10
  // (limit 10): each figure = a gather + the merger's render (its partials merged + render_series).
  if (o.wants("w4b")) {
    samples cold[2], warm[2];
    stages sc, sw;
    double render_cpu[2][2] = {{0, 0}, {0, 0}};  // [warm][limit]
    query::query_spec q;
    q.kind = static_cast<uint8_t>(query::query_kind::select_series);
    q.profile_type = cpu_type;
    q.selector = "{}";
    const int64_t start_ms = day_start_ns / ns_per_ms,
                  end_ms = (day_start_ns + int64_t{dt.per_series} * 60 * ns_per_s) / ns_per_ms;
    auto grid = query::series_range(start_ms, end_ms, 60'000);
    q.start_ns = grid.start_ns;
    q.end_ns = grid.end_ns;
    q.step_ns = grid.step_ns;
    q.group_by = {"pod"};
    const std::vector<std::string> group_by = q.group_by;
    std::vector<partition*> parts{&part_t};
    size_t npoints[2] = {0, 0};
    const int nc = o.w4b_reps, nw = o.w4b_reps;
    for (int rep = 0; rep < std::max(nc, nw); ++rep)
      for (int is_warm = 0; is_warm < 2; ++is_warm)
        for (int li = 0; li < 2; ++li) {
          if (rep >= (is_warm ? nw : nc)) continue;
          if (!is_warm) part_t.drop_cache();
          stages& st = is_warm ? sw : sc;
          const int limit = li ? 10 : 0;
          double w0 = wall_now(), c0 = cpu_now();
          query::merger m = gather(parts, q, st);
          // As the frontend renders (query_frontend_actor.cpp): the merger merges the partials
          // of the series the limit keeps and renders them.
          std::vector<query::series> out;
          const double r0 = st.render;
          timed(st.render, [&] { out = m.render_series(group_by, query::series_aggregation::sum, limit); });
          render_cpu[is_warm][li] += st.render - r0;
          (is_warm ? warm : cold)[li].add(wall_now() - w0, cpu_now() - c0);
          if (rep != 0 || is_warm) continue;
          check(out.size() == static_cast<size_t>(limit ? limit : dt.series), "W4b series count");
          double sum = 0;
          npoints[li] = 0;
          for (const auto& s : out)
            for (const auto& p : s.points) sum += p.value, ++npoints[li];
          if (!limit) {
            check(static_cast<int64_t>(sum) == dt.total, "W4b sum of all points == generated total");
            check(npoints[li] == static_cast<size_t>(dt.series) * dt.per_series, "W4b one point per profile");
          } else {
            std::vector<std::pair<int64_t, int>> want;
            for (int p = 0; p < dt.series; ++p) want.emplace_back(-dt.per_pod[static_cast<size_t>(p)], p);
            std::sort(want.begin(), want.end());
            for (int i = 0; i < limit; ++i) {
              double sm = 0;
              for (const auto& p : out[static_cast<size_t>(i)].points) sm += p.value;
              check(static_cast<int64_t>(sm) == -want[static_cast<size_t>(i)].first, "W4b top-10 sums");
              check(label_value(out[static_cast<size_t>(i)].labels, "pod") == pod_name(want[static_cast<size_t>(i)].second),
                    "W4b top-10 order");
            }
          }
        }
    for (int li = 0; li < 2; ++li) {
      const std::string nm = li ? "W4b SelectSeries top-10 (limit 10)" : "W4b SelectSeries all series";
      std::printf("%s, %d series x %d at 60 s (%zu points out): cold p50 %s, warm p50 %s; merge + render CPU %.1f ms/run\n",
                  nm.c_str(), dt.series, dt.per_series, npoints[li], ms(cold[li].p50()).c_str(), ms(warm[li].p50()).c_str(),
                  render_cpu[0][li] / nc * 1e3);
      if (nc > 0) table.push_back({nm + ", cold p50", wc(cold[li]), "< 200 ms", vs(0.200, cold[li].p50())});
      if (nw > 0) table.push_back({nm + ", warm p50", wc(warm[li]), "< 200 ms", vs(0.200, warm[li].p50())});
    }
    std::printf("   (the stages below are of both gathers; render = merging the series partials + render_series)\n");
    print_stages("cold", sc, nc);
    print_stages("warm", sw, nw);
  }
  std::fflush(stdout);

  // ---- Peer: go tool pprof -top vs merge + top on the same K profiles ----
  const std::string pprof_bin = [&] {
    // `go tool pprof` execs $(go env GOTOOLDIR)/pprof; also time the binary directly.
    child_run r = run_child({"go", "env", "GOTOOLDIR"}, dir + "/gotooldir.txt");
    std::string d = r.out;
    while (!d.empty() && (d.back() == '\n' || d.back() == ' ')) d.pop_back();
    return d + "/pprof";
  }();
  for (int K : o.peer_k) {
    if (!o.wants("peer")) break;
    // K perturbed real profiles (round robin, ~10% of samples dropped, values x [0.7, 1.3]).
    const auto files = go_cpu_files(o.testdata);
    std::vector<std::string> raws;
    std::vector<pprof::profile> originals;
    raws.reserve(files.size());
    for (const auto& f : files) raws.push_back(must(pprof::gunzip(as_bytes(read_whole(f.string())), 64 << 20), "gunzip"));
    for (const auto& raw : raws) originals.push_back(must(pprof::decode(as_bytes(raw)), "decode"));
    std::vector<std::string> paths;
    int64_t want_cpu = 0;
    const std::string pdir = dir + "/peer-" + std::to_string(K);
    fs::create_directories(pdir);
    for (int i = 0; i < K; ++i) {
      const pprof::profile& src = originals[static_cast<size_t>(i) % originals.size()];
      pprof::profile w = src;
      rng r{0xabcdef + static_cast<uint64_t>(i)};
      w.samples.clear();
      w.values.clear();
      size_t cpu_idx = 0;
      for (size_t t = 0; t < src.sample_types.size(); ++t)
        if (src.str(src.sample_types[t].type) == "cpu") cpu_idx = t;
      for (const auto& s : src.samples) {
        if (r.uniform() < 0.10) continue;
        pprof::sample c = s;
        c.value_begin = static_cast<uint32_t>(w.values.size());
        for (size_t t = 0; t < src.sample_types.size(); ++t) {
          int64_t v = src.values[s.value_begin + t];
          if (v != 0) v = std::max<int64_t>(1, std::llround(static_cast<double>(v) * (0.7 + 0.6 * r.uniform())));
          w.values.push_back(v);
          if (t == cpu_idx && s.loc_count > 0) want_cpu += v;
        }
        w.samples.push_back(c);
      }
      w.time_nanos = day_start_ns + int64_t{i} * 15 * ns_per_s;
      char name[64];
      std::snprintf(name, sizeof name, "/p%03d.pb.gz", i);
      paths.push_back(pdir + name);
      write_whole(paths.back(), gzip_compress(encode_pprof(w), 1));
    }
    std::vector<std::string> go_argv{"go", "tool", "pprof", "-top", "-nodecount=1000", "-nodefraction=0",
                                     "-edgefraction=0", "-sample_index=cpu", "-unit=ns"};
    for (const auto& p : paths) go_argv.push_back(p);
    std::vector<std::string> bin_argv = go_argv;
    bin_argv.erase(bin_argv.begin(), bin_argv.begin() + 2);
    bin_argv[0] = pprof_bin;

    samples peer_go, peer_bin, ours_query, ours_all;
    std::vector<std::pair<std::string, int64_t>> peer_top;
    query::tree_findings ours;
    for (int rep = 0; rep < o.reps; ++rep) {
      child_run a = run_child(go_argv, pdir + "/top.txt");
      peer_go.add(a.wall, a.cpu);
      peer_top = parse_top(a.out);
      child_run b = run_child(bin_argv, pdir + "/top-bin.txt");
      peer_bin.add(b.wall, b.cpu);
      // Ours, whole path: read + gunzip + decode + normalize + head, then the query.
      double w0 = wall_now(), c0 = cpu_now();
      head h;
      for (int i = 0; i < K; ++i) {
        std::string raw = must(pprof::gunzip(as_bytes(read_whole(paths[static_cast<size_t>(i)])), 64 << 20), "gunzip");
        pprof::profile p = must(pprof::decode(as_bytes(raw)), "decode");
        ingest_meta m;
        m.from = ingest_meta::source::push;
        m.labels = {{"__name__", "process_cpu"}, {"service_name", "peer"}};
        batch_builder bb("bench");
        if (!bb.add(p, m).ok()) die("batch_builder peer");
        h.append(bb.finish());
      }
      const block_data blk = h.seal();
      double w1 = wall_now(), c1 = cpu_now();
      auto q = stacks_spec("peer", day_start_ns - hour_ns, day_start_ns + 2 * hour_ns);
      auto ev = must(query::evaluator::make(q), "evaluator::make");
      ev.add(blk);
      query::merger m;
      m.add(std::move(ev).finish());
      m.tree().finalize();
      ours = query::find(m.tree(), 1000);
      double w2 = wall_now(), c2 = cpu_now();
      ours_query.add(w2 - w1, c2 - c1);
      ours_all.add(w2 - w0, c2 - c0);
    }
    check(ours.total == want_cpu, "peer: our total == generated cpu total");
    std::map<std::string, int64_t> our_flat;
    for (const auto& f : ours.top_self) our_flat[f.name] = f.self;
    size_t compared = 0;
    for (size_t i = 0; i < peer_top.size() && compared < 50; ++i) {
      const auto& [name, flat] = peer_top[i];
      if (flat == 0) break;
      auto it = our_flat.find(name);
      check(it != our_flat.end() && it->second == flat,
            "peer: flat of " + name + " = " + std::to_string(flat) + " in go tool pprof, " +
                (it == our_flat.end() ? std::string("absent") : std::to_string(it->second)) + " in Hearth");
      ++compared;
    }
    check(compared >= 20 || compared == peer_top.size(), "peer: compared the top entries");
    std::printf("Peer, K=%d profiles (%zu functions): go tool pprof -top p50 %s (CPU %s), pprof binary p50 %s; Hearth "
                "merge+find p50 %s (CPU %s), with ingest (gunzip+decode+normalize+head) p50 %s; top %zu flat values agree\n",
                K, peer_top.size(), ms(peer_go.p50()).c_str(), ms(peer_go.cpu50()).c_str(), ms(peer_bin.p50()).c_str(),
                ms(ours_query.p50()).c_str(), ms(ours_query.cpu50()).c_str(), ms(ours_all.p50()).c_str(), compared);
    table.push_back({"Peer K=" + std::to_string(K) + ": merge + top-1000 (block built)",
                     wc(ours_query) + " vs " + ms(peer_go.p50()), ">= 10x faster",
                     fmt("%.0fx", peer_go.p50() / ours_query.p50()) + (peer_go.p50() / ours_query.p50() >= 10 ? " met" : " MISSED")});
    table.push_back({"Peer K=" + std::to_string(K) + ": incl. gunzip+decode+normalize",
                     wc(ours_all) + " vs " + wc(peer_go), ">= 10x faster",
                     fmt("%.0fx", peer_go.p50() / ours_all.p50()) + (peer_go.p50() / ours_all.p50() >= 10 ? " met" : " MISSED")});
    table.push_back({"Peer K=" + std::to_string(K) + ": vs pprof binary, incl. ingest",
                     ms(ours_all.p50()) + " vs " + ms(peer_bin.p50()), "-", fmt("%.0fx", peer_bin.p50() / ours_all.p50())});
  }

  // ---- table ----
  std::printf("\nAll self-checks passed. Load average at end: %s. %d runs per figure (p50 = median; p99 = max for < 100 runs).\n\n",
              loadavg().c_str(), o.reps);
  std::printf("| workload | figure | target | target/figure |\n|---|---|---|---|\n");
  for (const auto& r : table) std::printf("| %s | %s | %s | %s |\n", r.name.c_str(), r.figure.c_str(), r.target.c_str(), r.ratio.c_str());
  if (!o.keep) {
    std::error_code ec;
    fs::remove_all(dir, ec);
  }
  return 0;
}

}  // namespace
}  // namespace hearth

int main(int argc, char** argv) { return hearth::run(argc, argv); }
