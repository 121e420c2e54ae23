// libFuzzer target: OTLP profiles export requests on untrusted bytes. The first byte picks the
// form: even = binary protobuf straight into the hand-written decoder; odd = proto3 JSON read by
// libprotobuf into the request message and re-serialized, as the distributor does. Every decoded
// profile then goes through batch_builder as the distributor adds it, with the stack depth policy
// picked by the first byte's second bit (0 = reject, 1 = truncate).
#include <cstddef>
#include <cstdint>
#include <string>

#include "cluster/proto/connect.hpp"
#include "format/normalize.hpp"
#include "format/otlp.hpp"
#include "otlp_profiles_service.pb.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace hearth;
  if (size == 0) return 0;
  std::string body(reinterpret_cast<const char*>(data) + 1, size - 1);
  std::string binary;
  if (data[0] & 1) {
    opentelemetry::proto::collector::profiles::v1development::ExportProfilesServiceRequest msg;
    if (!connect::decode(connect::codec::json, body, msg).ok()) return 0;
    msg.SerializeToString(&binary);
  } else {
    binary = std::move(body);
  }
  auto r = otlp::decode(as_bytes(binary));
  if (!r) return 0;
  normalize_limits lim;
  lim.max_stack_depth = 64;
  lim.depth_policy = (data[0] & 2) ? normalize_limits::stack_depth_policy::truncate
                                   : normalize_limits::stack_depth_policy::reject;
  batch_builder b("fuzz", lim);
  for (const auto& c : r->profiles) {
    ingest_meta m;
    m.labels = c.labels;
    m.time_ns = c.time_ns ? c.time_ns : 1;
    (void)b.add(c.profile, m);
  }
  return 0;
}
