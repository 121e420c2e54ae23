// libFuzzer target: the whole pprof ingest decode path on untrusted bytes: gunzip (when the bytes
// carry the gzip magic), pprof::decode, batch_builder (labels, limits, symbol and stack
// interning), then the WAL record codec round trip of the batch built.
#include <cstddef>
#include <cstdint>
#include <cstdlib>

#include "format/batch_codec.hpp"
#include "format/normalize.hpp"
#include "format/pprof.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace hearth;
  bytes_view in(reinterpret_cast<const std::byte*>(data), size);
  std::string plain;
  if (pprof::is_gzip(in)) {
    auto g = pprof::gunzip(in, 16u << 20);
    if (!g) return 0;
    plain = std::move(*g);
    in = as_bytes(plain);
  }
  auto p = pprof::decode(in);
  if (!p) return 0;
  for (auto from : {ingest_meta::source::ingest, ingest_meta::source::push}) {
    ingest_meta m;
    m.from = from;
    m.labels = from == ingest_meta::source::ingest ? label_set{{"__name__", "app"}, {"env", "fuzz"}}
                                                   : label_set{{"__name__", "process_cpu"}, {"service_name", "svc"}};
    m.time_ns = 1;
    batch_builder b;
    normalize_limits lim;
    lim.max_stack_depth = 64;
    // Both depth policies: a deep stack fails the /ingest pass and is cut in the push pass.
    lim.depth_policy = from == ingest_meta::source::ingest ? normalize_limits::stack_depth_policy::reject
                                                           : normalize_limits::stack_depth_policy::truncate;
    b.start("fuzz", lim);
    if (!b.add(*p, m)) continue;
    ingest_batch batch = b.finish();
    std::string rec = encode_batch(batch);
    auto back = decode_batch(as_bytes(rec));
    if (!back) std::abort();  // what we encode must decode
  }
  return 0;
}
