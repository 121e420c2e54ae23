// libFuzzer target: segment files and WAL records as read from a damaged disk: decode_segment,
// decode_segment_rows and decode_batch must answer an error (corrupted) for any bytes, never crash or loop.
#include <cstddef>
#include <cstdint>

#include "format/batch_codec.hpp"
#include "format/segment.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace hearth;
  bytes_view in(reinterpret_cast<const std::byte*>(data), size);
  segment_info info;
  (void)decode_segment(in, &info);
  (void)decode_segment_rows(in, &info);
  (void)decode_batch(in);
  return 0;
}
