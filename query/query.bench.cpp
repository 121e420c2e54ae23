// Benchmarks for the query core over real profiles from the shared testdata (the Go and Node CPU
// profiles, each appended `copies` times at successive 15 s steps, so the block holds a small
// fleet's worth of real stacks): merge + exact top functions (performance.md W3/W8), diff of two
// halves (W7), pprof export with and without GoPGO (W9) and SelectSeries totals (W4).
//   ninja -C build query/query_bench && HEARTH_TESTDATA=../shared/testdata build/query/query_bench

#include <benchmark/benchmark.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>

#include "format/head.hpp"
#include "format/normalize.hpp"
#include "format/pprof.hpp"
#include "query/block_query.hpp"
#include "query/diff.hpp"
#include "query/findings.hpp"
#include "query/flame_tree.hpp"
#include "query/pprof_export.hpp"
#include "query/series_query.hpp"

namespace {

namespace fs = std::filesystem;
using namespace hearth;
using namespace hearth::query;

constexpr int64_t step_ns = 15'000'000'000;
constexpr int copies = 20;

fs::path testdata_dir() {
  if (const char* d = std::getenv("HEARTH_TESTDATA")) return d;
  if (const char* r = std::getenv("HEARTH_SOURCE_ROOT"))
    return fs::path(r) / ".." / "shared" / "testdata";
  return fs::path("..") / "shared" / "testdata";
}

/// The fleet block and the time that splits it into two halves.
struct fleet {
  block_data block;
  int64_t end_ns = 0;
  std::vector<uint32_t> cpu;  // series with __type__="cpu"
};

const fleet& the_fleet() {
  static const fleet f = [] {
    const char* files[] = {
        "go/workpool.cpu.000.pb.gz", "go/workpool.cpu.001.pb.gz", "go/workpool.cpu.002.pb.gz",
        "go/mapindex.cpu.000.pb.gz", "go/mapindex.cpu.001.pb.gz", "go/mapindex.cpu.002.pb.gz",
        "node/node.cpu.000.pb.gz",   "node/node.cpu.001.pb.gz",   "node/node.cpu.002.pb.gz"};
    std::vector<std::pair<std::string, pprof::profile>> decoded;
    for (const char* name : files) {
      std::ifstream in(testdata_dir() / name, std::ios::binary);
      std::ostringstream ss;
      ss << in.rdbuf();
      auto raw = pprof::gunzip(as_bytes(ss.str()), 256 << 20);
      if (!raw.ok()) {
        std::cerr << name << ": " << raw.err().to_string() << "\n";
        std::exit(1);
      }
      decoded.emplace_back(std::move(*raw), pprof::profile{});
      auto p = pprof::decode(as_bytes(decoded.back().first));
      if (!p.ok()) std::exit(1);
      decoded.back().second = std::move(*p);
    }
    head h;
    int64_t t = 0;
    for (int c = 0; c < copies; ++c) {
      for (const auto& [raw, p] : decoded) {
        ingest_meta m;
        m.labels = {{"__name__", "process_cpu"}, {"service_name", "fleet"}};
        m.time_ns = t += step_ns;
        ingest_batch b;
        if (!append_profile(p, m, {}, b).ok()) std::exit(1);
        h.append(b);
      }
    }
    fleet out;
    out.block = h.seal();
    out.end_ns = t + 1;
    auto sel = parse_selector(R"({__type__="cpu"})");
    out.cpu = select_series(out.block, *sel);
    return out;
  }();
  return f;
}

flame_tree merged(const fleet& f, int64_t start, int64_t end) {
  flame_tree t;
  merge_stacks(f.block, f.cpu, start, end, t);
  t.finalize();
  return t;
}

void BM_merge_top(benchmark::State& state) {
  const fleet& f = the_fleet();
  for (auto _ : state) {
    flame_tree t = merged(f, 0, f.end_ns);
    auto top = find(t, 1000);
    benchmark::DoNotOptimize(top);
  }
  state.SetItemsProcessed(state.iterations() * static_cast<int64_t>(f.block.samples.size()));
}
BENCHMARK(BM_merge_top)->Unit(benchmark::kMillisecond);

void BM_render_flame_graph(benchmark::State& state) {
  const flame_tree t = merged(the_fleet(), 0, the_fleet().end_ns);
  for (auto _ : state) benchmark::DoNotOptimize(render_flame_graph(t, default_max_nodes));
}
BENCHMARK(BM_render_flame_graph)->Unit(benchmark::kMillisecond);

void BM_diff(benchmark::State& state) {
  const fleet& f = the_fleet();
  for (auto _ : state) {
    const flame_tree l = merged(f, 0, f.end_ns / 2), r = merged(f, f.end_ns / 2, f.end_ns);
    auto g = render_flame_graph_diff(l, r, default_max_nodes);
    auto regressions = find_regressions(l, r, 100);
    benchmark::DoNotOptimize(g);
    benchmark::DoNotOptimize(regressions);
  }
}
BENCHMARK(BM_diff)->Unit(benchmark::kMillisecond);

void BM_pprof_export(benchmark::State& state) {
  const fleet& f = the_fleet();
  pprof_selector sel;
  if (state.range(0) > 0) sel.pgo = go_pgo{static_cast<uint32_t>(state.range(0)), true};
  pprof_options opts;
  opts.type = *parse_profile_type("process_cpu:cpu:nanoseconds:cpu:nanoseconds");
  size_t bytes = 0;
  for (auto _ : state) {
    pprof_partial p;
    select_pprof(f.block, f.cpu, 0, f.end_ns, sel, p);
    const std::string raw = render_pprof(p, opts);
    bytes = raw.size();
    benchmark::DoNotOptimize(raw);
  }
  state.counters["pprof_bytes"] = static_cast<double>(bytes);
}
BENCHMARK(BM_pprof_export)->Arg(0)->Arg(5)->Unit(benchmark::kMillisecond);

void BM_series(benchmark::State& state) {
  const fleet& f = the_fleet();
  series_request req;
  req.start_ns = 0;
  req.end_ns = f.end_ns;
  req.step_ns = step_ns;
  for (auto _ : state) {
    series_partial p;
    select_series_points(f.block, f.cpu, req, p);
    benchmark::DoNotOptimize(render_series(p, {}, series_aggregation::sum, 0));
  }
  state.SetItemsProcessed(state.iterations() * static_cast<int64_t>(f.block.profiles.size()));
}
BENCHMARK(BM_series)->Unit(benchmark::kMicrosecond);

}  // namespace

BENCHMARK_MAIN();
