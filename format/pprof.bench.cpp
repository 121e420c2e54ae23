// Benchmarks for the pprof ingest path on the largest real profiles in the shared testdata:
// gunzip (libdeflate), our zero-copy decode (with validation), and libprotobuf's generated parser
// on an Arena for comparison. Reports bytes/s of uncompressed input and samples/s.
//   ninja -C build-a format/pprof_bench && HEARTH_TESTDATA=../shared/testdata
//   build-a/format/pprof_bench

#include <benchmark/benchmark.h>
#include <google/protobuf/arena.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>

#include "format/pprof.hpp"
#include "profile.pb.h"

namespace {

namespace fs = std::filesystem;
using namespace hearth;

fs::path testdata_dir() {
  if (const char* d = std::getenv("HEARTH_TESTDATA")) return d;
  if (const char* r = std::getenv("HEARTH_SOURCE_ROOT"))
    return fs::path(r) / ".." / "shared" / "testdata";
  return fs::path("..") / "shared" / "testdata";
}

std::string read_file(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

struct input {
  std::string name;
  std::string gz;
  std::string raw;
  size_t samples = 0;
};

void set_counters(benchmark::State& state, const input& in) {
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * in.raw.size()));
  state.counters["samples/s"] = benchmark::Counter(static_cast<double>(in.samples),
                                                   benchmark::Counter::kIsIterationInvariantRate);
  state.counters["raw_bytes"] = static_cast<double>(in.raw.size());
}

void bm_gunzip(benchmark::State& state, const input* in) {
  for (auto _ : state) {
    auto r = pprof::gunzip(as_bytes(in->gz), 64 << 20);
    if (!r.ok()) state.SkipWithError(r.err().message.c_str());
    benchmark::DoNotOptimize(r);
  }
  set_counters(state, *in);
}

void bm_decode_hearth(benchmark::State& state, const input* in) {
  for (auto _ : state) {
    auto r = pprof::decode(as_bytes(in->raw));
    if (!r.ok()) state.SkipWithError(r.err().message.c_str());
    benchmark::DoNotOptimize(r);
  }
  set_counters(state, *in);
}

void bm_parse_libprotobuf_arena(benchmark::State& state, const input* in) {
  for (auto _ : state) {
    google::protobuf::Arena arena;
    auto* p = google::protobuf::Arena::CreateMessage<google::v1::Profile>(&arena);
    if (!p->ParseFromString(in->raw)) state.SkipWithError("libprotobuf parse failed");
    benchmark::DoNotOptimize(p);
  }
  set_counters(state, *in);
}

}  // namespace

int main(int argc, char** argv) {
  // The largest profiles of each kind: Go CPU (most samples) and Node CPU/heap.
  static std::vector<input> inputs;
  for (const char* rel : {"go/mapindex.cpu.002.pb.gz", "go/workpool.cpu.002.pb.gz",
                          "go/mapindex.allocs.pb.gz", "node/node.heap.pb.gz"}) {
    input in;
    in.name = fs::path(rel).stem().stem().string();
    in.gz = read_file(testdata_dir() / rel);
    auto raw = pprof::gunzip(as_bytes(in.gz), 64 << 20);
    if (!raw.ok()) {
      std::cerr << rel << ": " << raw.err().to_string() << " (set HEARTH_TESTDATA)\n";
      return 1;
    }
    in.raw = std::move(*raw);
    auto p = pprof::decode(as_bytes(in.raw));
    if (!p.ok()) {
      std::cerr << rel << ": " << p.err().to_string() << "\n";
      return 1;
    }
    in.samples = p->samples.size();
    inputs.push_back(std::move(in));
  }
  for (const auto& in : inputs) {
    benchmark::RegisterBenchmark(("gunzip/" + in.name).c_str(), bm_gunzip, &in);
    benchmark::RegisterBenchmark(("decode_hearth/" + in.name).c_str(), bm_decode_hearth, &in);
    benchmark::RegisterBenchmark(("parse_libprotobuf_arena/" + in.name).c_str(),
                                 bm_parse_libprotobuf_arena, &in);
  }
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
