#pragma once
// Protocol-buffer wire primitives shared by the hand-written decoders (format/pprof.cpp,
// format/otlp.cpp) and encoders (query/pprof_export.cpp, cluster/query_api.cpp): wire types,
// varints, one field as read from the wire, and fields written as libprotobuf writes them. Pure.

#include <bit>
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "format/coding.hpp"

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

// Writing. Proto3 scalars and strings equal to zero or empty are omitted, as libprotobuf omits
// them, so a message written field by field in number order is byte for byte its serialization.

inline void put_tag(encoder& e, uint32_t field, uint32_t wt) {
  e.put_uvarint(uint64_t{field} << 3 | wt);
}

/// The bytes of `v` as a varint.
inline size_t uvarint_size(uint64_t v) {
  return static_cast<size_t>(std::bit_width(v | 1) + 6) / 7;
}

inline void put_varint_field(encoder& e, uint32_t field, uint64_t v) {
  if (v == 0) return;
  put_tag(e, field, wt_varint);
  e.put_uvarint(v);
}

inline void put_int_field(encoder& e, uint32_t field, int64_t v) {
  put_varint_field(e, field, static_cast<uint64_t>(v));
}

/// A length-delimited field, written even when empty (a repeated element, as pprof's "").
inline void put_bytes_field(encoder& e, uint32_t field, std::string_view s) {
  put_tag(e, field, wt_len);
  e.put_string(s);
}

/// A proto3 string or bytes field: omitted when empty.
inline void put_string_field(encoder& e, uint32_t field, std::string_view s) {
  if (!s.empty()) put_bytes_field(e, field, s);
}

/// A proto3 double: omitted when its bits are zero (+0.0; -0.0 is written, as libprotobuf does).
inline void put_double_field(encoder& e, uint32_t field, double v) {
  const auto bits = std::bit_cast<uint64_t>(v);
  if (bits == 0) return;
  put_tag(e, field, wt_fixed64);
  e.put_u64(bits);
}

}  // namespace hearth::protowire
