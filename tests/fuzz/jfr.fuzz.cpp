// libFuzzer target: the JFR reader (chunk header, metadata, constant pools, events) and the Java
// agent's labels snapshot decoder on untrusted bytes.
#include <cstddef>
#include <cstdint>

#include "format/jfr.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace hearth;
  bytes_view in(reinterpret_cast<const std::byte*>(data), size);
  jfr_limits lim;
  lim.max_stack_depth = 256;
  (void)parse_jfr(in, 100, nullptr, lim);
  auto labels = parse_jfr_labels(in);
  if (labels) (void)parse_jfr(in, 997, &*labels, lim);
  return 0;
}
