// libFuzzer target: segment files and WAL records as read from a damaged disk: decode_segment,
// decode_segment_rows, decode_segment_columns (with every profile's pairs read and the file merged
// as the compactor merges it), decode_segment_outside (from the middle profile's time on, and
// around it with a one-second margin),
// decode_segment_series (the even series ids; a filter that marks more ids than there are series)
// and decode_batch must answer an error (corrupted) for any bytes, never crash or loop.
#include <cstddef>
#include <cstdint>
#include <vector>

#include "format/batch_codec.hpp"
#include "format/compact.hpp"
#include "format/segment.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace hearth;
  bytes_view in(reinterpret_cast<const std::byte*>(data), size);
  segment_info info;
  (void)decode_segment(in, &info);
  (void)decode_segment_series(in, [](const block_data& b) {
    std::vector<bool> even(b.series.size() + 3);
    for (size_t i = 0; i < even.size(); i += 2) even[i] = true;
    return even;
  });
  (void)decode_segment_rows(in, row_fields::columns, &info);
  (void)decode_segment_rows(in, row_fields::all, &info);
  if (auto cols = decode_segment_columns(in, &info); cols.ok()) {
    std::vector<sample_rec> pairs;
    for (uint32_t row = 0; row < cols->block().profiles.size(); ++row) {
      pairs.clear();
      (void)cols->read_samples(row, pairs);
    }
    if (const auto& rows = cols->block().profiles; !rows.empty()) {
      const int64_t mid = rows[rows.size() / 2].time_ns;
      (void)decode_segment_outside(in, mid, INT64_MAX);
      (void)decode_segment_outside(in, mid, mid, 1'000'000'000);
    }
    const segment_columns* one[] = {&*cols};
    if (auto m = merge_segments(one, merge_options{}); m.ok())
      (void)encode_segment(m->block, m->samples, segment_codec::none, segment_info{});
  }
  (void)decode_batch(in);
  return 0;
}
