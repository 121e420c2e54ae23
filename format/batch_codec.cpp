#include "format/batch_codec.hpp"

#include <tuple>

// Record grammar (all integers uvarint unless noted, `svarint` = zig-zag varint):
//
//   batch     := version <1b = 3> body crc32c <4b LE, over version + body>
//   body      := tenant <string>
//                n_strings strings <string>*n            (strings[0] is "")
//                n_mappings (memory_start memory_limit file_offset filename build_id
//                            flags<1b>)*n                (v2 only)
//                n_functions (name system_name filename start_line<svarint>)*n
//                n_lines (function line<svarint>)*n
//                n_locations (address line_begin line_count mapping)*n   (mapping: v2 only;
//                                                          1-based, 0 = none)
//                n_stacks (len location*len)*n           (leaf first)
//                n_series series*n
//   series    := n_labels (name <string> value <string>)*n
//                time_ns<svarint> duration_ns<svarint> id_hi<8b> id_lo<8b>
//                n_samples (stack value<svarint>)*n
//                period<svarint> n_spans (stack span_id<8b> value<svarint>)*n   (v3 only)
//   string    := len bytes
//
// Full description: docs/design/format/wal.md. Version 1 is version 2 without the mapping table
// and the locations' mapping refs; version 2 is version 3 without the series' period and span
// samples. The decoder reads all three, the encoder writes only version 3.

namespace hearth {
namespace {

error corrupt(std::string what) { return error{errc::corrupted, "ingest batch: " + std::move(what)}; }

}  // namespace

namespace {

// An upper bound of the encoded size for the common case (varints of ids and lines up to 5 bytes,
// values up to 10), so that the buffer is allocated once instead of doubling as it fills.
size_t size_hint(const ingest_batch& b) {
  size_t n = 16 + b.tenant.size();
  for (const auto& s : b.syms.strings) n += 5 + s.size();
  n += b.syms.mappings.size() * 46 + b.syms.functions.size() * 25 + b.syms.lines.size() * 15 +
       b.syms.locations.size() * 25 + b.stack_count() * 5 + b.stack_locations.size() * 5;
  for (const auto& s : b.series) {
    n += 60 + s.sample_stacks.size() * 15 + s.spans.size() * 23;
    for (const auto& l : s.labels) n += 10 + l.name.size() + l.value.size();
  }
  return n;
}

}  // namespace

std::string encode_batch(const ingest_batch& b) {
  encoder e;
  e.buffer().reserve(size_hint(b));
  e.put_u8(batch_format_current);
  e.put_string(b.tenant);
  e.put_uvarint(b.syms.strings.size());
  for (const auto& s : b.syms.strings) e.put_string(s);
  e.put_uvarint(b.syms.mappings.size());
  for (const auto& m : b.syms.mappings) {
    e.put_uvarint(m.memory_start);
    e.put_uvarint(m.memory_limit);
    e.put_uvarint(m.file_offset);
    e.put_uvarint(m.filename);
    e.put_uvarint(m.build_id);
    e.put_u8(m.flags);
  }
  e.put_uvarint(b.syms.functions.size());
  for (const auto& f : b.syms.functions) {
    e.put_uvarint(f.name);
    e.put_uvarint(f.system_name);
    e.put_uvarint(f.filename);
    e.put_varint(f.start_line);
  }
  e.put_uvarint(b.syms.lines.size());
  for (const auto& l : b.syms.lines) {
    e.put_uvarint(l.function);
    e.put_varint(l.line);
  }
  e.put_uvarint(b.syms.locations.size());
  for (const auto& l : b.syms.locations) {
    e.put_uvarint(l.address);
    e.put_uvarint(l.line_begin);
    e.put_uvarint(l.line_count);
    e.put_uvarint(l.mapping);
  }
  const size_t n_stacks = b.stack_count();
  e.put_uvarint(n_stacks);
  for (size_t i = 0; i < n_stacks; ++i) {
    e.put_uvarint(b.stack_offsets[i + 1] - b.stack_offsets[i]);
    for (uint32_t k = b.stack_offsets[i]; k < b.stack_offsets[i + 1]; ++k) e.put_uvarint(b.stack_locations[k]);
  }
  e.put_uvarint(b.series.size());
  for (const auto& s : b.series) {
    e.put_uvarint(s.labels.size());
    for (const auto& l : s.labels) {
      e.put_string(l.name);
      e.put_string(l.value);
    }
    e.put_varint(s.time_ns);
    e.put_varint(s.duration_ns);
    e.put_u64(s.id_hi);
    e.put_u64(s.id_lo);
    e.put_uvarint(s.sample_stacks.size());
    for (size_t i = 0; i < s.sample_stacks.size(); ++i) {
      e.put_uvarint(s.sample_stacks[i]);
      e.put_varint(s.sample_values[i]);
    }
    e.put_varint(s.period);
    e.put_uvarint(s.spans.size());
    for (const span_sample& x : s.spans) {
      e.put_uvarint(x.stack);
      e.put_u64(x.span_id);
      e.put_varint(x.value);
    }
  }
  e.put_u32(crc32c(as_bytes(e.buffer())));
  return e.release();
}

result<ingest_batch> decode_batch(bytes_view data) {
  if (data.size() < 5) return corrupt("record of " + std::to_string(data.size()) + " bytes is too short");
  const uint8_t version = static_cast<uint8_t>(data[0]);
  if (version != batch_format_v1 && version != batch_format_v2 && version != batch_format_v3)
    return corrupt("unknown version " + std::to_string(version));
  const bytes_view payload = data.first(data.size() - 4);
  {
    decoder tail(data.last(4));
    const uint32_t want = tail.get_u32();
    if (crc32c(payload) != want) return corrupt("checksum mismatch");
  }
  decoder d(payload.subspan(1));
  ingest_batch b;
  // Every element takes at least one byte, so a count above the bytes left is corrupt; checking
  // that first bounds every reserve() by the record size.
  auto count = [&](const char* what, size_t min_bytes, size_t& n) -> status {
    uint64_t v = d.get_uvarint();
    if (!d.ok() || v > d.remaining() / min_bytes) return corrupt(std::string("bad ") + what + " count");
    n = static_cast<size_t>(v);
    return {};
  };
  size_t n = 0;
  b.tenant = std::string(d.get_string());

  if (auto st = count("string", 1, n); !st.ok()) return st.err();
  if (n == 0) return corrupt("empty string table");
  b.syms.strings.clear();
  b.syms.strings.reserve(n);
  for (size_t i = 0; i < n; ++i) b.syms.strings.emplace_back(d.get_string());
  if (!d.ok()) return corrupt("truncated string table");
  if (!b.syms.strings[0].empty()) return corrupt("strings[0] is not empty");
  const uint64_t n_strings = b.syms.strings.size();

  if (version >= batch_format_v2) {
    if (auto st = count("mapping", 6, n); !st.ok()) return st.err();
    b.syms.mappings.resize(n);
    for (auto& m : b.syms.mappings) {
      m.memory_start = d.get_uvarint();
      m.memory_limit = d.get_uvarint();
      m.file_offset = d.get_uvarint();
      m.filename = d.get_uvarint32(n_strings - 1);
      m.build_id = d.get_uvarint32(n_strings - 1);
      m.flags = d.get_u8();
      if (!d.ok()) return corrupt("mapping table: truncated or string index out of range");
      if ((m.flags & ~mapping_flags_all) != 0) return corrupt("mapping with unknown flags");
    }
  }
  const uint64_t n_mappings = b.syms.mappings.size();

  if (auto st = count("function", 4, n); !st.ok()) return st.err();
  b.syms.functions.resize(n);
  for (auto& f : b.syms.functions) {
    f.name = d.get_uvarint32(n_strings - 1);
    f.system_name = d.get_uvarint32(n_strings - 1);
    f.filename = d.get_uvarint32(n_strings - 1);
    f.start_line = d.get_varint();
  }
  if (!d.ok()) return corrupt("function table: truncated or string index out of range");
  const uint64_t n_functions = b.syms.functions.size();

  if (auto st = count("line", 2, n); !st.ok()) return st.err();
  b.syms.lines.resize(n);
  for (auto& l : b.syms.lines) {
    if (n_functions == 0) return corrupt("line table without functions");
    l.function = d.get_uvarint32(n_functions - 1);
    l.line = d.get_varint();
  }
  if (!d.ok()) return corrupt("line table: truncated or function index out of range");
  const uint64_t n_lines = b.syms.lines.size();

  const bool has_mapping_refs = version >= batch_format_v2;
  if (auto st = count("location", has_mapping_refs ? 4 : 3, n); !st.ok()) return st.err();
  b.syms.locations.resize(n);
  for (auto& l : b.syms.locations) {
    l.address = d.get_uvarint();
    l.line_begin = d.get_uvarint32();
    l.line_count = d.get_uvarint32();
    if (has_mapping_refs) l.mapping = d.get_uvarint32(n_mappings);
    if (!d.ok()) return corrupt("location table: truncated or mapping index out of range");
    if (static_cast<uint64_t>(l.line_begin) + l.line_count > n_lines)
      return corrupt("location lines out of range");
  }
  const uint64_t n_locations = b.syms.locations.size();

  if (auto st = count("stack", 1, n); !st.ok()) return st.err();
  b.stack_offsets.reserve(n + 1);
  for (size_t i = 0; i < n; ++i) {
    const uint64_t len = d.get_uvarint();
    if (!d.ok() || len > d.remaining()) return corrupt("bad stack length");
    for (uint64_t k = 0; k < len; ++k) {
      if (n_locations == 0) return corrupt("stack without locations table");
      b.stack_locations.push_back(d.get_uvarint32(n_locations - 1));
    }
    if (!d.ok()) return corrupt("stack: truncated or location index out of range");
    if (b.stack_locations.size() > UINT32_MAX) return corrupt("too many stack locations");
    b.stack_offsets.push_back(static_cast<uint32_t>(b.stack_locations.size()));
  }
  const uint64_t n_stacks = b.stack_count();

  if (auto st = count("series", 19, n); !st.ok()) return st.err();
  b.series.resize(n);
  for (auto& s : b.series) {
    size_t nl = 0;
    if (auto st = count("label", 2, nl); !st.ok()) return st.err();
    s.labels.resize(nl);
    for (auto& l : s.labels) {
      l.name = std::string(d.get_string());
      l.value = std::string(d.get_string());
    }
    if (!d.ok()) return corrupt("truncated series labels");
    for (size_t i = 1; i < s.labels.size(); ++i)
      if (!(s.labels[i - 1].name < s.labels[i].name)) return corrupt("series labels not sorted/unique");
    s.time_ns = d.get_varint();
    s.duration_ns = d.get_varint();
    s.id_hi = d.get_u64();
    s.id_lo = d.get_u64();
    size_t ns = 0;
    if (auto st = count("sample", 2, ns); !st.ok()) return st.err();
    s.sample_stacks.resize(ns);
    s.sample_values.resize(ns);
    for (size_t i = 0; i < ns; ++i) {
      if (n_stacks == 0) return corrupt("samples without stacks");
      s.sample_stacks[i] = d.get_uvarint32(n_stacks - 1);
      s.sample_values[i] = d.get_varint();
    }
    if (!d.ok()) return corrupt("samples: truncated or stack index out of range");
    if (version >= batch_format_v3) {
      s.period = d.get_varint();
      size_t nsp = 0;
      if (auto st = count("span sample", 10, nsp); !st.ok()) return st.err();
      s.spans.resize(nsp);
      for (size_t i = 0; i < nsp; ++i) {
        span_sample& x = s.spans[i];
        if (n_stacks == 0) return corrupt("span samples without stacks");
        x.stack = d.get_uvarint32(n_stacks - 1);
        x.span_id = d.get_u64();
        x.value = d.get_varint();
        if (!d.ok()) return corrupt("span samples: truncated or stack index out of range");
        if (x.span_id == 0 || x.value == 0) return corrupt("span sample with span id 0 or value 0");
        if (i > 0 && !(std::tie(s.spans[i - 1].stack, s.spans[i - 1].span_id) < std::tie(x.stack, x.span_id)))
          return corrupt("span samples not sorted by (stack, span id) and unique");
      }
    }
  }
  if (!d.empty()) return corrupt(std::to_string(d.remaining()) + " trailing bytes");
  return b;
}

}  // namespace hearth
