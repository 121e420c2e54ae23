#pragma once
// A minimal pprof writer for the benchmark drivers (tools/storage_bench, tools/query_bench): they
// write perturbed real profiles as pprof files (raw-size comparisons, decode benchmarks, the
// `go tool pprof` peer). Field numbers: perftools.profiles. Not used by the server.

#include <cstdint>
#include <string>
#include <string_view>

#include "format/pprof.hpp"

namespace hearth::bench {

class pb_writer {
 public:
  std::string out;
  void varint(uint64_t v) {
    while (v >= 0x80) {
      out.push_back(static_cast<char>(v | 0x80));
      v >>= 7;
    }
    out.push_back(static_cast<char>(v));
  }
  void tag(uint32_t field, uint32_t wire) { varint((uint64_t{field} << 3) | wire); }
  void u64(uint32_t field, uint64_t v) {
    if (v == 0) return;  // proto3 default: omitted
    tag(field, 0);
    varint(v);
  }
  void bytes(uint32_t field, std::string_view s) {
    tag(field, 2);
    varint(s.size());
    out.append(s);
  }
};

inline std::string encode_pprof(const pprof::profile& p) {
  pb_writer w, sub, packed;
  auto value_type = [&](uint32_t field, const pprof::value_type& vt) {
    sub.out.clear();
    sub.u64(1, static_cast<uint64_t>(vt.type));
    sub.u64(2, static_cast<uint64_t>(vt.unit));
    w.bytes(field, sub.out);
  };
  for (const auto& vt : p.sample_types) value_type(1, vt);
  const size_t nv = p.sample_types.size();
  for (const auto& s : p.samples) {
    sub.out.clear();
    packed.out.clear();
    for (uint32_t i = 0; i < s.loc_count; ++i) packed.varint(p.location_ids[s.loc_begin + i]);
    if (!packed.out.empty()) sub.bytes(1, packed.out);
    packed.out.clear();
    for (size_t i = 0; i < nv; ++i) packed.varint(static_cast<uint64_t>(p.values[s.value_begin + i]));
    if (!packed.out.empty()) sub.bytes(2, packed.out);
    for (uint32_t i = 0; i < s.label_count; ++i) {
      const auto& l = p.labels[s.label_begin + i];
      pb_writer lw;
      lw.u64(1, static_cast<uint64_t>(l.key));
      lw.u64(2, static_cast<uint64_t>(l.str));
      lw.u64(3, static_cast<uint64_t>(l.num));
      lw.u64(4, static_cast<uint64_t>(l.num_unit));
      sub.bytes(3, lw.out);
    }
    w.bytes(2, sub.out);
  }
  for (const auto& m : p.mappings) {
    sub.out.clear();
    sub.u64(1, m.id);
    sub.u64(2, m.memory_start);
    sub.u64(3, m.memory_limit);
    sub.u64(4, m.file_offset);
    sub.u64(5, static_cast<uint64_t>(m.filename));
    sub.u64(6, static_cast<uint64_t>(m.build_id));
    sub.u64(7, m.has_functions);
    sub.u64(8, m.has_filenames);
    sub.u64(9, m.has_line_numbers);
    sub.u64(10, m.has_inline_frames);
    w.bytes(3, sub.out);
  }
  for (const auto& l : p.locations) {
    sub.out.clear();
    sub.u64(1, l.id);
    sub.u64(2, l.mapping_id);
    sub.u64(3, l.address);
    for (uint32_t i = 0; i < l.line_count; ++i) {
      pb_writer lw;
      lw.u64(1, p.lines[l.line_begin + i].function_id);
      lw.u64(2, static_cast<uint64_t>(p.lines[l.line_begin + i].line));
      sub.bytes(4, lw.out);
    }
    sub.u64(5, l.is_folded);
    w.bytes(4, sub.out);
  }
  for (const auto& f : p.functions) {
    sub.out.clear();
    sub.u64(1, f.id);
    sub.u64(2, static_cast<uint64_t>(f.name));
    sub.u64(3, static_cast<uint64_t>(f.system_name));
    sub.u64(4, static_cast<uint64_t>(f.filename));
    sub.u64(5, static_cast<uint64_t>(f.start_line));
    w.bytes(5, sub.out);
  }
  for (std::string_view s : p.strings) w.bytes(6, s);
  w.u64(7, static_cast<uint64_t>(p.drop_frames));
  w.u64(8, static_cast<uint64_t>(p.keep_frames));
  w.u64(9, static_cast<uint64_t>(p.time_nanos));
  w.u64(10, static_cast<uint64_t>(p.duration_nanos));
  value_type(11, p.period_type);
  w.u64(12, static_cast<uint64_t>(p.period));
  w.u64(14, static_cast<uint64_t>(p.default_sample_type));
  return std::move(w.out);
}


}  // namespace hearth::bench
