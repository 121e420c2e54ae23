#pragma once
// Protocol-buffer wire primitives shared by the hand-written decoders (format/pprof.cpp,
// format/otlp.cpp): wire types, varints and one field as read from the wire. Pure.

#include <cstddef>
#include <cstdint>

namespace hearth::protowire {

enum wire_type : uint32_t {
  wt_varint = 0,
  wt_fixed64 = 1,
  wt_len = 2,
  wt_start_group = 3,
  wt_end_group = 4,
  wt_fixed32 = 5,
};

/// "varint", "fixed64", "length-delimited", ... ("invalid" for 6 and 7).
inline const char* wire_type_name(uint32_t wt) {
  switch (wt) {
    case wt_varint: return "varint";
    case wt_fixed64: return "fixed64";
    case wt_len: return "length-delimited";
    case wt_start_group: return "start-group";
    case wt_end_group: return "end-group";
    case wt_fixed32: return "fixed32";
    default: return "invalid";
  }
}

/// Reads a varint of at most 10 bytes at `p` (advanced past it). Bits past 64 are dropped, as
/// libprotobuf does. False when it is truncated or longer.
inline bool read_varint(const uint8_t*& p, const uint8_t* end, uint64_t& out) {
  if (p < end && *p < 0x80) [[likely]] {  // most tags, indexes and lengths: one byte
    out = *p++;
    return true;
  }
  uint64_t v = 0;
  for (int shift = 0; shift < 70; shift += 7) {
    if (p == end) return false;
    const uint8_t b = *p++;
    v |= static_cast<uint64_t>(b & 0x7f) << shift;
    if (b < 0x80) {
      out = v;
      return true;
    }
  }
  return false;
}

/// One field as read from the wire. For wt_len, [data, data + size) is the payload; for the
/// fixed and varint types, `value`.
struct field {
  const uint8_t* start = nullptr;  ///< the tag, for error offsets
  uint32_t number = 0;
  uint32_t type = 0;
  uint64_t value = 0;
  const uint8_t* data = nullptr;
  size_t size = 0;
};

}  // namespace hearth::protowire
