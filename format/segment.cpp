#include "format/segment.hpp"

// Segment file, version 6. The full description, with field widths and what readers check, is
// docs/design/format/segment.md; this grammar is the short form (LE = little-endian fixed width,
// uv = unsigned LEB128 varint, zz = zig-zag varint):
//
//   file     := "HSEG" version<4> section{11} [periods] [spans] footer trailer
//               (v1, v2: section{9}; v3, v4: section{10}; periods and spans: v4+)
//   section  := len<4> id<1> codec<1> raw_len<4> body<len> crc32c<4>  (crc over len..body)
//   footer   := version<4> min_time<8> max_time<8> series<8> profiles<8> samples<8> stacks<8>
//               codec<1> wal_seq<8> meta count<4> (id<1> offset<8> length<8>){count} crc32c<4>
//   meta     := block_id<8> level<1> rollup_step_ns<8> n<4> source<8>{n}    (v2+; absent in v1)
//   trailer  := footer_offset<8> "HSEG"
//
//   strings   := n<uv> (len<uv> bytes){n}
//   mappings  := n<uv> (memory_start<uv> memory_limit<uv> file_offset<uv> filename<uv>
//                       build_id<uv> flags<1>){n}                          (v3+)
//   functions := n<uv> (name<uv> system_name<uv> filename<uv> start_line<zz>){n}
//   lines     := n<uv> (function<uv> line<zz>){n}
//   locations := n<uv> (address<uv> line_begin<uv> line_count<uv> mapping<uv>){n}
//                (v1, v2: without `mapping`, which then reads as 0 = none)
//   stacks    := n<uv> (id - parent)<uv>{n-1} location<uv>{n-1}           (node 0 implied)
//   series    := l<uv> (name<uv> value<uv>){l} s<uv> (label_begin<uv> label_count<uv>){s}
//   profiles  := n<uv> base_time<zz> series_delta<uv>{n} time{n} duration_delta<zz>{n}
//                total<zz>{n} sample_count<uv>{n}                        (v5+)
//                time: a series' first row's time - base_time <uv>, then each row's change of
//                its delta to the previous row's, from 0 <zz>; durations from the previous row's
//                (the first from 0); all modulo 2^64
//              | n<uv> base_time<zz> series_delta<uv>{n} time_delta<uv>{n} duration<zz>{n}
//                total<zz>{n} sample_count<uv>{n} (id_hi<8> id_lo<8>){n}  (v1-v4)
//   profile_ids := n<uv> (id_hi<8> id_lo<8>){n}                          (v5+, after profiles)
//   samples   := n<uv> stack_delta<uv>{n} value<zz>{n}
//   postings  := names<uv> (name<uv> values<uv> (value<uv> len<uv> roaring_portable<len>){values})
//   periods   := runs<uv> (count<uv> period<zz>){runs}      (v4+; counts >= 1, sum = profiles)
//   spans     := rows<uv> (row_delta<uv> n<uv> (stack_delta<uv> span_id<8> value<zz>){n}){rows}
//                (v4+; rows ascending, row_delta from the previous row + 0, or from 0 for
//                 the first; entries of a row ascending by (stack, span id), stack_delta from
//                 the previous entry's stack or 0)
//
// Version 1 is version 2 without `meta`; their sections are identical. Version 3 adds the
// mappings section (after strings) and each location's mapping ref. Writers write only the
// current version; readers dispatch on the version (read_footer and decode_segment) so an older
// layout keeps its own parser when a new one is added. Version 4 adds the optional periods and
// spans sections after postings (profiles in file order; a missing section means every period
// is 0 / no profile has span samples). Version 5 moves the ids to the profile_ids section and
// stores times and durations as differences. Version 6 has version 5's layout; its rollup rows
// keep the first time and last end of the profiles they sum (segment_exact_rollup_times_version).

#include <lz4.h>
#include <roaring/roaring.h>
#include <sys/mman.h>
#include <zstd.h>

#include <algorithm>
#include <bit>
#include <cstring>
#include <limits>
#include <memory>
#include <new>
#include <numeric>
#include <tuple>
#include <unordered_map>

#include "format/sample_sort.hpp"

namespace hearth {
namespace {

constexpr std::string_view file_magic = "HSEG";
constexpr size_t header_size = 8;         // magic + version
constexpr size_t trailer_size = 12;       // footer_offset + magic
constexpr size_t section_head_size = 10;  // len + id + codec + raw_len
constexpr size_t section_overhead = section_head_size + 4;
constexpr size_t toc_entry_size = 17;  // id + offset + length

/// Section ids (v1_sections / v3_sections give each version's file order).
enum class section_id : uint8_t {  // On disk: never renumber.
  strings = 1,
  functions = 2,
  lines = 3,
  locations = 4,
  stacks = 5,
  series = 6,
  profiles = 7,
  samples = 8,
  postings = 9,
  mappings = 10,     ///< v3+
  periods = 11,      ///< v4+, optional
  spans = 12,        ///< v4+, optional
  profile_ids = 13,  ///< v5+
};
constexpr section_id v1_sections[] = {
    section_id::strings,   section_id::functions, section_id::lines,
    section_id::locations, section_id::stacks,    section_id::series,
    section_id::profiles,  section_id::samples,   section_id::postings,
};
/// Version 3: version 1's sections with mappings after strings.
constexpr section_id v3_sections[] = {
    section_id::strings,   section_id::mappings, section_id::functions, section_id::lines,
    section_id::locations, section_id::stacks,   section_id::series,    section_id::profiles,
    section_id::samples,   section_id::postings,
};

/// Version 5: the profile ids leave the profiles section for their own, after it.
constexpr section_id v5_sections[] = {
    section_id::strings,     section_id::mappings, section_id::functions, section_id::lines,
    section_id::locations,   section_id::stacks,   section_id::series,    section_id::profiles,
    section_id::profile_ids, section_id::samples,  section_id::postings,
};

std::span<const section_id> sections_of_version(uint32_t version) {
  if (version >= 5) return v5_sections;
  if (version >= 3) return v3_sections;
  return v1_sections;
}

/// The sections a version may add after its required ones, each at most once, in this order.
constexpr section_id v4_optional_sections[] = {section_id::periods, section_id::spans};
std::span<const section_id> optional_sections_of_version(uint32_t version) {
  if (version >= 4) return v4_optional_sections;
  return {};
}

std::string_view section_name(section_id id) {
  switch (id) {
    case section_id::strings:
      return "strings";
    case section_id::functions:
      return "functions";
    case section_id::lines:
      return "lines";
    case section_id::locations:
      return "locations";
    case section_id::stacks:
      return "stacks";
    case section_id::series:
      return "series";
    case section_id::profiles:
      return "profiles";
    case section_id::samples:
      return "samples";
    case section_id::postings:
      return "postings";
    case section_id::mappings:
      return "mappings";
    case section_id::periods:
      return "periods";
    case section_id::spans:
      return "spans";
    case section_id::profile_ids:
      return "profile_ids";
  }
  return "unknown";
}

error corrupt(std::string_view where, std::string what) {
  return {errc::corrupted, "segment: " + std::string(where) + ": " + std::move(what)};
}

std::string str(uint64_t v) {
  return std::to_string(v);
}

// Sums in uint64 so a hostile file cannot cause signed overflow; totals compare bit for bit.
int64_t wrapping_sum(std::span<const sample_rec> s) {
  uint64_t sum = 0;
  for (const auto& x : s) sum += static_cast<uint64_t>(x.value);
  return static_cast<int64_t>(sum);
}

// The invariants of block.hpp that both sides rely on. The writer reports a violation as
// invalid_argument (its caller's bug), the reader as corrupted; `who` prefixes the message.
// Does not allocate, so it is safe on any block the reader managed to build. With
// `with_samples` false the pairs are not in `b.samples` (segment_columns, encoded_samples) and
// the checks of the profiles' sample ranges, stacks and totals are left to their owner.
status check_block(const block_data& b, errc code, std::string_view who, bool with_samples = true) {
  auto fail = [&](std::string_view section, std::string what) {
    return status(code, std::string(who) + ": " + std::string(section) + ": " + what);
  };
  const auto& sy = b.syms;
  if (sy.strings.empty() || !sy.strings[0].empty())
    return fail("strings", "string 0 must exist and be empty");
  const uint64_t ns = sy.strings.size();
  for (size_t i = 0; i < sy.mappings.size(); ++i) {
    const auto& m = sy.mappings[i];
    if (m.filename >= ns || m.build_id >= ns)
      return fail("mappings",
                  "mapping " + str(i) + " names a string out of range (" + str(ns) + " strings)");
    if ((m.flags & ~mapping_flags_all) != 0)
      return fail("mappings", "mapping " + str(i) + " has unknown flags " + str(m.flags));
  }
  for (size_t i = 0; i < sy.functions.size(); ++i) {
    const auto& f = sy.functions[i];
    if (f.name >= ns || f.system_name >= ns || f.filename >= ns)
      return fail("functions",
                  "function " + str(i) + " names a string out of range (" + str(ns) + " strings)");
  }
  for (size_t i = 0; i < sy.lines.size(); ++i)
    if (sy.lines[i].function >= sy.functions.size())
      return fail("lines", "line " + str(i) + " function " + str(sy.lines[i].function) +
                               " out of range (" + str(sy.functions.size()) + " functions)");
  for (size_t i = 0; i < sy.locations.size(); ++i) {
    const auto& l = sy.locations[i];
    if (uint64_t{l.line_begin} + l.line_count > sy.lines.size())
      return fail("locations", "location " + str(i) + " lines [" + str(l.line_begin) + ", +" +
                                   str(l.line_count) + ") out of range (" + str(sy.lines.size()) +
                                   " lines)");
    if (l.mapping > sy.mappings.size())
      return fail("locations", "location " + str(i) + " mapping " + str(l.mapping) +
                                   " out of range (" + str(sy.mappings.size()) + " mappings)");
  }
  if (b.stacks.empty() || b.stacks[0].parent != 0 || b.stacks[0].location != 0)
    return fail("stacks", "node 0 must be the root {parent 0, location 0}");
  for (size_t i = 1; i < b.stacks.size(); ++i) {
    if (b.stacks[i].parent >= i)
      return fail("stacks",
                  "node " + str(i) + " parent " + str(b.stacks[i].parent) + " is not below its id");
    if (b.stacks[i].location >= sy.locations.size())
      return fail("stacks", "node " + str(i) + " location " + str(b.stacks[i].location) +
                                " out of range (" + str(sy.locations.size()) + " locations)");
  }
  for (size_t i = 0; i < b.labels.size(); ++i)
    if (b.labels[i].name >= ns || b.labels[i].value >= ns)
      return fail("series",
                  "label " + str(i) + " names a string out of range (" + str(ns) + " strings)");
  for (size_t i = 0; i < b.series.size(); ++i) {
    const auto& s = b.series[i];
    if (uint64_t{s.label_begin} + s.label_count > b.labels.size())
      return fail("series", "series " + str(i) + " labels [" + str(s.label_begin) + ", +" +
                                str(s.label_count) + ") out of range (" + str(b.labels.size()) +
                                " labels)");
    for (uint32_t k = 1; k < s.label_count; ++k)
      if (!(sy.strings[b.labels[s.label_begin + k - 1].name] <
            sy.strings[b.labels[s.label_begin + k].name]))
        return fail("series", "series " + str(i) + " label names are not sorted and unique");
  }
  for (size_t i = 0; i < b.profiles.size(); ++i) {
    const auto& p = b.profiles[i];
    if (p.series >= b.series.size())
      return fail("profiles", "profile " + str(i) + " series " + str(p.series) + " out of range (" +
                                  str(b.series.size()) + " series)");
    if (with_samples) {
      if (uint64_t{p.sample_begin} + p.sample_count > b.samples.size())
        return fail("profiles", "profile " + str(i) + " samples [" + str(p.sample_begin) + ", +" +
                                    str(p.sample_count) + ") out of range (" +
                                    str(b.samples.size()) + " samples)");
      auto samples = std::span(b.samples).subspan(p.sample_begin, p.sample_count);
      for (const auto& s : samples)
        if (s.stack == 0 || s.stack >= b.stacks.size())
          return fail("samples", "profile " + str(i) + " stack " + str(s.stack) +
                                     " is the root or out of range (" + str(b.stacks.size()) +
                                     " nodes)");
      if (wrapping_sum(samples) != p.total)
        return fail("profiles", "profile " + str(i) + " total " + std::to_string(p.total) +
                                    " is not the sum of its samples " +
                                    std::to_string(wrapping_sum(samples)));
    }
    if (uint64_t{p.span_begin} + p.span_count > b.spans.size())
      return fail("spans", "profile " + str(i) + " span samples [" + str(p.span_begin) + ", +" +
                               str(p.span_count) + ") out of range (" + str(b.spans.size()) +
                               " span samples)");
    for (const auto& x : std::span(b.spans).subspan(p.span_begin, p.span_count))
      if (x.stack == 0 || x.stack >= b.stacks.size() || x.span_id == 0 || x.value == 0)
        return fail("spans", "profile " + str(i) + " span sample on stack " + str(x.stack) +
                                 " has span id 0 or value 0, or its stack is the root or out of "
                                 "range");
  }
  return {};
}

// The v2 block metadata rules (docs/design/format/segment.md, "Version 2"): an error message, or
// empty if `i` is storable. Shared by the writer (invalid_argument) and the reader (corrupted).
std::string check_meta(const segment_info& i) {
  if (i.level > segment_max_level)
    return "level " + str(i.level) + " above " + str(segment_max_level);
  if (i.rollup_step_ns < 0) return "negative rollup_step_ns " + std::to_string(i.rollup_step_ns);
  if (i.level == 0 && !i.sources.empty()) return "a level-0 block lists sources";
  std::vector<uint64_t> sorted = i.sources;
  std::sort(sorted.begin(), sorted.end());
  if (std::adjacent_find(sorted.begin(), sorted.end()) != sorted.end())
    return "a source is listed twice";
  if (std::binary_search(sorted.begin(), sorted.end(), i.block_id))
    return "block " + str(i.block_id) + " lists itself as a source";
  return {};
}

// ---- writing ------------------------------------------------------------------------------------

struct toc_entry {
  section_id id{};
  uint64_t offset = 0;
  uint64_t length = 0;  // the whole section record, header and crc included
};

class segment_writer {
 public:
  segment_writer(segment_codec codec, int zstd_level) : codec_(codec), zstd_level_(zstd_level) {
    out_.put_raw(file_magic);
    out_.put_u32(segment_current_version);
  }

  status add(section_id id, const std::string& raw) {
    std::string packed;
    segment_codec used = codec_;
    if (raw.size() > UINT32_MAX) return too_big(id, raw.size());
    if (used == segment_codec::lz4) {
      if (raw.size() > size_t{LZ4_MAX_INPUT_SIZE}) return too_big(id, raw.size());
      packed.resize(static_cast<size_t>(LZ4_compressBound(static_cast<int>(raw.size()))));
      int n = LZ4_compress_default(raw.data(), packed.data(), static_cast<int>(raw.size()),
                                   static_cast<int>(packed.size()));
      if (n <= 0 && !raw.empty())
        return status(errc::internal,
                      "encode_segment: lz4 failed on " + std::string(section_name(id)));
      packed.resize(static_cast<size_t>(std::max(n, 0)));
    } else if (used == segment_codec::zstd) {
      packed.resize(ZSTD_compressBound(raw.size()));
      if (!zstd_) zstd_.reset(ZSTD_createCCtx());
      if (!zstd_) return status(errc::internal, "encode_segment: out of memory for a zstd context");
      size_t n = ZSTD_compressCCtx(zstd_.get(), packed.data(), packed.size(), raw.data(),
                                   raw.size(), zstd_level_);
      if (ZSTD_isError(n))
        return status(errc::internal, "encode_segment: zstd failed on " +
                                          std::string(section_name(id)) + ": " +
                                          ZSTD_getErrorName(n));
      packed.resize(n);
    }
    // Compression that does not pay is skipped: the reader copes with any codec per section.
    if (used != segment_codec::none && packed.size() >= raw.size()) used = segment_codec::none;
    const std::string& body = used == segment_codec::none ? raw : packed;

    size_t start = out_.size();
    out_.put_u32(static_cast<uint32_t>(body.size()));
    out_.put_u8(static_cast<uint8_t>(id));
    out_.put_u8(static_cast<uint8_t>(used));
    out_.put_u32(static_cast<uint32_t>(raw.size()));
    out_.put_raw(body);
    out_.put_u32(crc32c(as_bytes(std::string_view(out_.buffer()).substr(start))));
    toc_.push_back({id, start, out_.size() - start});
    return {};
  }

  /// Requires: `info.sources.size()` fits 32 bits.
  std::string finish(const segment_info& info) {
    size_t footer_offset = out_.size();
    out_.put_u32(info.version);
    out_.put_u64(static_cast<uint64_t>(info.min_time_ns));
    out_.put_u64(static_cast<uint64_t>(info.max_time_ns));
    out_.put_u64(info.series);
    out_.put_u64(info.profiles);
    out_.put_u64(info.samples);
    out_.put_u64(info.stacks);
    out_.put_u8(static_cast<uint8_t>(info.codec));
    out_.put_u64(info.wal_seq);
    out_.put_u64(info.block_id);
    out_.put_u8(info.level);
    out_.put_u64(static_cast<uint64_t>(info.rollup_step_ns));
    out_.put_u32(static_cast<uint32_t>(info.sources.size()));
    for (uint64_t s : info.sources) out_.put_u64(s);
    out_.put_u32(static_cast<uint32_t>(toc_.size()));
    for (const auto& e : toc_) {
      out_.put_u8(static_cast<uint8_t>(e.id));
      out_.put_u64(e.offset);
      out_.put_u64(e.length);
    }
    out_.put_u32(crc32c(as_bytes(std::string_view(out_.buffer()).substr(footer_offset))));
    out_.put_u64(footer_offset);
    out_.put_raw(file_magic);
    return out_.release();
  }

 private:
  static status too_big(section_id id, size_t n) {
    return status(errc::invalid_argument, "encode_segment: section " +
                                              std::string(section_name(id)) + " is " + str(n) +
                                              " bytes, over the format's limit; split the block");
  }

  struct zstd_free {
    void operator()(ZSTD_CCtx* c) const { ZSTD_freeCCtx(c); }
  };

  segment_codec codec_;
  int zstd_level_;
  std::unique_ptr<ZSTD_CCtx, zstd_free> zstd_;  // created on the first zstd section, then reused
  encoder out_;
  std::vector<toc_entry> toc_;
};

using roaring_ptr = std::unique_ptr<roaring_bitmap_t, decltype(&roaring_bitmap_free)>;

std::string encode_postings(const block_data& b) {
  // Postings are keyed by string content; any ref with that content will do for the file.
  std::unordered_map<std::string_view, uint32_t> ref_of;
  for (uint32_t i = 0; i < b.syms.strings.size(); ++i) ref_of.emplace(b.syms.strings[i], i);
  postings_index p = make_postings(b);
  encoder e;
  e.put_uvarint(p.by_name.size());
  std::string bitmap;
  for (const auto& [name, values] : p.by_name) {
    e.put_uvarint(ref_of.at(name));
    e.put_uvarint(values.size());
    for (const auto& [value, ids] : values) {
      e.put_uvarint(ref_of.at(value));
      roaring_ptr r(roaring_bitmap_of_ptr(ids.size(), ids.data()), &roaring_bitmap_free);
      roaring_bitmap_run_optimize(r.get());
      bitmap.resize(roaring_bitmap_portable_size_in_bytes(r.get()));
      bitmap.resize(roaring_bitmap_portable_serialize(r.get(), bitmap.data()));
      e.put_string(bitmap);
    }
  }
  return e.release();
}

// ---- reading ------------------------------------------------------------------------------------

struct footer_data {
  segment_info info;
  std::vector<toc_entry> toc;
};

// Sets the block's time range from its profile rows and checks it against the footer's.
// What parse_profiles learns of the rows while it decodes them, so no later pass over the 72-byte
// rows is needed: their time range and the sum of their sample counts.
struct rows_summary {
  int64_t min_time_ns = 0, max_time_ns = 0;  ///< 0/0 without rows
  uint64_t samples = 0;
};

status set_time_range(block_data& b, const rows_summary& r, const segment_info& footer) {
  b.min_time_ns = r.min_time_ns;
  b.max_time_ns = r.max_time_ns;
  if (footer.min_time_ns != b.min_time_ns || footer.max_time_ns != b.max_time_ns)
    return corrupt("footer", "time range does not match the profiles'");
  return {};
}

uint32_t load_u32(bytes_view b, size_t at) {
  return decoder(b.subspan(at, 4)).get_u32();
}
uint64_t load_u64(bytes_view b, size_t at) {
  return decoder(b.subspan(at, 8)).get_u64();
}

// The fields versions 1 and 2 share, from min_time to wal_seq.
status parse_footer_common(decoder& d, segment_info& i) {
  i.min_time_ns = static_cast<int64_t>(d.get_u64());
  i.max_time_ns = static_cast<int64_t>(d.get_u64());
  i.series = d.get_u64();
  i.profiles = d.get_u64();
  i.samples = d.get_u64();
  i.stacks = d.get_u64();
  uint8_t codec = d.get_u8();
  i.wal_seq = d.get_u64();
  if (!d.ok()) return corrupt("footer", "truncated");
  if (codec > static_cast<uint8_t>(segment_codec::zstd))
    return corrupt("footer", "unknown codec " + str(codec));
  i.codec = static_cast<segment_codec>(codec);
  if (i.min_time_ns > i.max_time_ns) return corrupt("footer", "min_time is after max_time");
  return {};
}

// The TOC, the same in every version but for the sections it lists: count<4> then the entries,
// up to the footer's CRC.
status parse_toc(decoder& d, uint64_t footer_offset, footer_data& f) {
  const std::span<const section_id> want = sections_of_version(f.info.version);
  const std::span<const section_id> optional = optional_sections_of_version(f.info.version);
  uint32_t count = d.get_u32();
  if (!d.ok()) return corrupt("footer", "truncated");
  if (count < want.size() || count > want.size() + optional.size() ||
      d.remaining() != uint64_t{count} * toc_entry_size)
    return corrupt("footer", "TOC lists " + str(count) + " sections in " + str(d.remaining()) +
                                 " bytes; version " + str(f.info.version) + " has " +
                                 str(want.size()) + " (+" + str(optional.size()) + " optional)");
  size_t next_optional = 0;  // optional sections come after the required ones, in order
  // The sections must tile [header, footer) in the fixed order, so every byte of the file is
  // covered by exactly one CRC.
  uint64_t pos = header_size;
  for (uint32_t k = 0; k < count; ++k) {
    toc_entry e;
    e.id = static_cast<section_id>(d.get_u8());
    e.offset = d.get_u64();
    e.length = d.get_u64();
    if (k >= want.size()) {
      while (next_optional < optional.size() && optional[next_optional] != e.id) ++next_optional;
      if (next_optional == optional.size())
        return corrupt("footer", "TOC entry " + str(k) + " has section id " +
                                     str(static_cast<uint8_t>(e.id)) +
                                     ", not an optional section of this version in order");
      ++next_optional;
    } else if (e.id != want[k]) {
      return corrupt("footer", "TOC entry " + str(k) + " has section id " +
                                   str(static_cast<uint8_t>(e.id)) + ", want " +
                                   str(static_cast<uint8_t>(want[k])));
    }
    if (e.offset != pos || e.length < section_overhead || e.length > footer_offset - pos)
      return corrupt("footer", "TOC entry for " + std::string(section_name(e.id)) + " [" +
                                   str(e.offset) + ", +" + str(e.length) +
                                   ") does not follow the previous section at " + str(pos));
    pos += e.length;
    f.toc.push_back(e);
  }
  if (pos != footer_offset)
    return corrupt("footer",
                   "sections end at " + str(pos) + ", footer starts at " + str(footer_offset));
  return {};
}

result<footer_data> parse_footer_v1(decoder& d, uint64_t footer_offset) {
  footer_data f;
  f.info.version = 1;
  if (auto st = parse_footer_common(d, f.info); !st) return st.err();
  if (auto st = parse_toc(d, footer_offset, f); !st) return st.err();
  return f;
}

// Versions 2 to 6: version 1's footer plus the block metadata between wal_seq and the TOC.
result<footer_data> parse_footer_v2(decoder& d, uint64_t footer_offset, uint32_t version) {
  footer_data f;
  auto& i = f.info;
  i.version = version;
  if (auto st = parse_footer_common(d, i); !st) return st.err();
  i.block_id = d.get_u64();
  i.level = d.get_u8();
  i.rollup_step_ns = static_cast<int64_t>(d.get_u64());
  const uint32_t n = d.get_u32();
  // Each source takes 8 bytes and the TOC's count 4 more: checked before reserving.
  if (!d.ok() || uint64_t{n} * 8 + 4 > d.remaining())
    return corrupt("footer", "truncated block metadata (" + str(n) + " sources)");
  i.sources.reserve(n);
  for (uint32_t k = 0; k < n; ++k) i.sources.push_back(d.get_u64());
  if (std::string why = check_meta(i); !why.empty()) return corrupt("footer", why);
  if (auto st = parse_toc(d, footer_offset, f); !st) return st.err();
  return f;
}

// The footer's offset from the trailer, after the magics and the file's length are checked.
result<uint64_t> find_footer(bytes_view file) {
  const size_t n = file.size();
  if (n < header_size + 4 + trailer_size)
    return corrupt("file", str(n) + " bytes is shorter than any segment");
  if (as_chars(file.first(4)) != file_magic) return corrupt("header", "bad magic");
  if (as_chars(file.last(4)) != file_magic) return corrupt("trailer", "bad magic");
  const uint64_t footer_offset = load_u64(file, n - trailer_size);
  if (footer_offset < header_size || footer_offset > n - trailer_size - 4)
    return corrupt("trailer", "footer offset " + str(footer_offset) + " out of range (file is " +
                                  str(n) + " bytes)");
  return footer_offset;
}

result<footer_data> read_footer(bytes_view file) {
  auto found = find_footer(file);
  if (!found) return found.take_error();
  const uint64_t footer_offset = *found;
  const uint32_t header_version = load_u32(file, 4);
  const size_t footer_end = file.size() - trailer_size - 4;  // where the footer's crc starts
  bytes_view footer = file.subspan(footer_offset, footer_end - footer_offset);
  if (crc32c(footer) != load_u32(file, footer_end)) return corrupt("footer", "crc mismatch");
  decoder d(footer);
  const uint32_t version = d.get_u32();
  if (!d.ok()) return corrupt("footer", "truncated");
  if (version != header_version)
    return corrupt("footer",
                   "version " + str(version) + " differs from the header's " + str(header_version));
  if (version < segment_min_version || version > segment_current_version)
    return error{errc::unsupported_format,
                 "segment: version " + str(version) + " is not supported (this reader reads " +
                     str(segment_min_version) + " to " + str(segment_current_version) + ")"};
  switch (version) {
    case 1:
      return parse_footer_v1(d, footer_offset);
    case 2:
    case 3:
    case 4:
    case 5:
    case 6:
      return parse_footer_v2(d, footer_offset, version);
  }
  return error{errc::internal, "segment: no footer parser for version " + str(version)};
}

// Asks the kernel to back [p, p + bytes) with transparent huge pages where 2 MiB pages fit in it.
// A block's rows of a large segment (72 bytes per profile: 43 MB for 600k profiles; as columns,
// 4.8 MB of times and of totals) and a large section's decompression buffer are fresh mappings
// on every decode, and faulting them in 4 KiB pages was a fifth of a rows-only decode
// (docs/bench.md, "SelectSeries W4b"). Only a hint: without THP (or with it off) nothing changes.
void advise_huge_pages(const void* p, size_t bytes) {
  constexpr uintptr_t huge = uintptr_t{2} << 20;
  if (bytes < 2 * huge) return;
  const uintptr_t lo = (reinterpret_cast<uintptr_t>(p) + huge - 1) & ~(huge - 1);
  const uintptr_t hi = (reinterpret_cast<uintptr_t>(p) + bytes) & ~(huge - 1);
  if (hi > lo) madvise(reinterpret_cast<void*>(lo), hi - lo, MADV_HUGEPAGE);
}

// Where decompressed section bodies live while they are parsed. Not zero-filled: a length that
// lies (within the codec's maximum expansion, which load_section enforces) then costs address
// space that is never touched, not memory.
class scratch_buffer {
 public:
  /// A buffer of at least `n` bytes, or null if even the address space is not there.
  char* get(size_t n) {
    if (n > cap_) {
      buf_.reset(new (std::nothrow) char[n]);
      cap_ = buf_ ? n : 0;
      advise_huge_pages(buf_.get(), cap_);
    }
    return buf_.get();
  }

 private:
  std::unique_ptr<char[]> buf_;
  size_t cap_ = 0;
};

// Verifies a section record and returns its uncompressed body: a view into `file` for codec
// none, otherwise into `scratch`.
result<bytes_view> load_section(bytes_view file, const toc_entry& e, scratch_buffer& scratch) {
  const auto name = section_name(e.id);
  bytes_view rec = file.subspan(e.offset, e.length);
  decoder d(rec);
  const uint32_t len = d.get_u32();
  const auto id = static_cast<section_id>(d.get_u8());
  const uint8_t codec = d.get_u8();
  const uint32_t raw_len = d.get_u32();
  if (uint64_t{len} + section_overhead != e.length)
    return corrupt(name, "length " + str(len) + " disagrees with the TOC's " + str(e.length));
  if (crc32c(rec.first(section_head_size + len)) != load_u32(rec, section_head_size + len))
    return corrupt(name, "crc mismatch");
  if (id != e.id) return corrupt(name, "record has section id " + str(static_cast<uint8_t>(id)));
  bytes_view body = rec.subspan(section_head_size, len);
  const char* src = reinterpret_cast<const char*>(body.data());
  switch (static_cast<segment_codec>(codec)) {
    case segment_codec::none:
      if (raw_len != len) return corrupt(name, "uncompressed section with raw_len != len");
      return body;
    case segment_codec::lz4: {
      // LZ4 cannot expand more than 255x; a larger claim is a lie, not a reason to allocate.
      if (len > uint32_t{LZ4_MAX_INPUT_SIZE} || raw_len > uint64_t{len} * 255 + 16 ||
          raw_len > static_cast<uint32_t>(std::numeric_limits<int>::max()))
        return corrupt(name, "lz4 lengths " + str(len) + " -> " + str(raw_len) + " impossible");
      char* dst = scratch.get(raw_len);
      if (!dst) return corrupt(name, "cannot allocate raw_len " + str(raw_len));
      int got = LZ4_decompress_safe(src, dst, static_cast<int>(len), static_cast<int>(raw_len));
      if (got < 0 || static_cast<uint32_t>(got) != raw_len)
        return corrupt(name, "lz4 body does not decompress to " + str(raw_len) + " bytes");
      return as_bytes(std::string_view(dst, raw_len));
    }
    case segment_codec::zstd: {
      // One frame, whose header states raw_len; and every zstd block has a 3-byte header and
      // yields at most 128 KiB.
      if (raw_len > (uint64_t{len} / 3 + 1) * ZSTD_BLOCKSIZE_MAX ||
          ZSTD_findFrameCompressedSize(src, len) != len ||
          ZSTD_getFrameContentSize(src, len) != raw_len)
        return corrupt(
            name, "zstd frame of " + str(len) + " bytes does not hold " + str(raw_len) + " bytes");
      char* dst = scratch.get(raw_len);
      if (!dst) return corrupt(name, "cannot allocate raw_len " + str(raw_len));
      size_t got = ZSTD_decompress(dst, raw_len, src, len);
      if (ZSTD_isError(got) || got != raw_len)
        return corrupt(name, "zstd body does not decompress to " + str(raw_len) + " bytes");
      return as_bytes(std::string_view(dst, raw_len));
    }
  }
  return corrupt(name, "unknown codec " + str(codec));
}

// Reads a count of items that take at least `min_bytes` each, so that a corrupt count cannot
// make us reserve more than the section could hold.
bool get_count(decoder& d, uint64_t min_bytes, uint64_t& n) {
  n = d.get_uvarint();
  if (!d.ok() || n > UINT32_MAX || n * min_bytes > d.remaining()) {
    d.fail();
    return false;
  }
  return true;
}

status end_of(std::string_view name, const decoder& d) {
  if (!d.ok()) return corrupt(name, "truncated, a count too large, or a value out of range");
  if (!d.empty()) return corrupt(name, str(d.remaining()) + " trailing bytes");
  return {};
}

status parse_strings(bytes_view body, block_data& b) {
  decoder d(body);
  uint64_t n = 0;
  auto& out = b.syms.strings;
  out.clear();
  if (get_count(d, 1, n)) {
    out.reserve(n);
    for (uint64_t i = 0; i < n && d.ok(); ++i) out.emplace_back(d.get_string());
  }
  return end_of("strings", d);
}

status parse_functions(bytes_view body, block_data& b) {
  decoder d(body);
  uint64_t n = 0;
  auto& out = b.syms.functions;
  if (get_count(d, 4, n)) {
    out.resize(n);
    for (auto& f : out) {
      f.name = d.get_uvarint32();
      f.system_name = d.get_uvarint32();
      f.filename = d.get_uvarint32();
      f.start_line = d.get_varint();
    }
  }
  return end_of("functions", d);
}

status parse_lines(bytes_view body, block_data& b) {
  decoder d(body);
  uint64_t n = 0;
  auto& out = b.syms.lines;
  if (get_count(d, 2, n)) {
    out.resize(n);
    for (auto& l : out) {
      l.function = d.get_uvarint32();
      l.line = d.get_varint();
    }
  }
  return end_of("lines", d);
}

status parse_mappings(bytes_view body, block_data& b) {
  decoder d(body);
  uint64_t n = 0;
  auto& out = b.syms.mappings;
  if (get_count(d, 6, n)) {
    out.resize(n);
    for (auto& m : out) {
      m.memory_start = d.get_uvarint();
      m.memory_limit = d.get_uvarint();
      m.file_offset = d.get_uvarint();
      m.filename = d.get_uvarint32();
      m.build_id = d.get_uvarint32();
      m.flags = d.get_u8();
    }
  }
  return end_of("mappings", d);
}

// `with_mapping`: the v3 body, whose entries end with the mapping ref (v1/v2 read as mapping 0).
status parse_locations(bytes_view body, block_data& b, bool with_mapping) {
  decoder d(body);
  uint64_t n = 0;
  auto& out = b.syms.locations;
  if (get_count(d, with_mapping ? 4 : 3, n)) {
    out.resize(n);
    for (auto& l : out) {
      l.address = d.get_uvarint();
      l.line_begin = d.get_uvarint32();
      l.line_count = d.get_uvarint32();
      if (with_mapping) l.mapping = d.get_uvarint32();
    }
  }
  return end_of("locations", d);
}

status parse_stacks(bytes_view body, block_data& b) {
  decoder d(body);
  uint64_t n = d.get_uvarint();
  if (!d.ok() || n == 0 || n > UINT32_MAX || (n - 1) * 2 > d.remaining())
    return corrupt("stacks",
                   "node count " + str(n) + " impossible in " + str(body.size()) + " bytes");
  b.stacks.assign(n, stack_node{});
  for (uint64_t i = 1; i < n; ++i) {
    uint64_t delta = d.get_uvarint();
    if (!d.ok()) break;
    if (delta == 0 || delta > i)
      return corrupt("stacks", "node " + str(i) + " parent delta " + str(delta) +
                                   " does not point below the node");
    b.stacks[i].parent = static_cast<uint32_t>(i - delta);
  }
  for (uint64_t i = 1; i < n; ++i) b.stacks[i].location = d.get_uvarint32();
  return end_of("stacks", d);
}

status parse_series(bytes_view body, block_data& b) {
  decoder d(body);
  uint64_t n = 0;
  if (get_count(d, 2, n)) {
    b.labels.resize(n);
    for (auto& l : b.labels) {
      l.name = d.get_uvarint32();
      l.value = d.get_uvarint32();
    }
  }
  if (get_count(d, 2, n)) {
    b.series.resize(n);
    for (auto& s : b.series) {
      s.label_begin = d.get_uvarint32();
      s.label_count = d.get_uvarint32();
    }
  }
  return end_of("series", d);
}

// Where the `n` varints starting at byte `from` of `b` end: just past the n-th byte with its high
// bit clear (counted 8 bytes at a time), or npos when `b` ends first.
size_t skip_varints(bytes_view b, size_t from, uint64_t n) {
  size_t i = from;
  const auto* p = reinterpret_cast<const unsigned char*>(b.data());
  while (n > 0 && i + 8 <= b.size()) {
    uint64_t w;
    std::memcpy(&w, p + i, 8);
    // The terminators (bytes < 0x80), counted by summing one bit per byte into the top byte: a
    // multiply, where std::popcount without -mpopcnt is a libgcc call.
    const uint64_t ends = (((~w & 0x8080808080808080ULL) >> 7) * 0x0101010101010101ULL) >> 56;
    if (ends >= n) break;  // the n-th terminator is in this word: find it bytewise
    n -= ends;
    i += 8;
  }
  for (; n > 0 && i < b.size(); ++i)
    if (p[i] < 0x80) --n;
  return n == 0 ? i : std::string_view::npos;
}

// The profiles section is column after column (series, time, duration, total, sample count;
// before version 5 then the ids), each but the ids a run of n varints after the count and the
// time base.
struct profile_section {
  uint64_t n = 0;
  int64_t base = 0;
  size_t at[6] = {};  ///< where each column starts in the body (at[5]: the ids, or the end)

  /// A reader of varint column c (0 series ... 4 sample counts) of `body`.
  decoder column(bytes_view body, int c) const {
    return decoder(body.subspan(at[c], at[c + 1] - at[c]));
  }
};

// `ids_inline`: the section ends with the 16-byte ids (versions 1 to 4).
status find_profile_columns(bytes_view body, profile_section& ps, bool ids_inline) {
  decoder d(body);
  // series, time, duration, total, sample_count: >= 1 byte each; ids: 16 bytes.
  if (!get_count(d, ids_inline ? 21 : 5, ps.n)) return end_of("profiles", d);
  ps.base = d.get_varint();
  if (!d.ok()) return end_of("profiles", d);
  ps.at[0] = body.size() - d.remaining();
  for (int c = 1; c < 6; ++c) {
    ps.at[c] = skip_varints(body, ps.at[c - 1], ps.n);
    if (ps.at[c] == std::string_view::npos)
      return corrupt("profiles", "truncated column " + str(c - 1));
  }
  if (ids_inline && body.size() - ps.at[5] < 16 * ps.n)
    return corrupt("profiles", "truncated profile ids");
  if (!ids_inline && ps.at[5] != body.size())
    return corrupt("profiles", str(body.size() - ps.at[5]) + " trailing bytes");
  return {};
}

// One row's series, time and duration from their column readers, checked as the writer
// guarantees them: series ids in range and non-decreasing, times non-decreasing within a series.
// `Dod` (version 5): after a series' first row, a time is stored as the change of its delta to
// the previous row's (delta of delta, the first delta's change from 0), and every duration as its
// difference to the previous row's (the first row's to 0), all zig-zag and modulo 2^64. Before: a
// time is its delta to the previous row's (a uvarint), a duration itself.
template <bool Dod>
struct row_stepper {
  const block_data& b;
  int64_t base;
  uint64_t series = 0;
  int64_t time = 0;
  uint64_t delta = 0;     // Dod: the current series' last time delta (0 after its first row)
  uint64_t duration = 0;  // Dod: the previous row's duration

  /// False when row i breaks those rules; error() says how.
  [[gnu::always_inline]] bool next(uint64_t i, decoder& ds, decoder& dt) {
    const uint64_t before = series;
    series += ds.get_uvarint();
    if (series >= b.series.size()) [[unlikely]]
      return false;
    const bool first = i == 0 || series != before;
    const int64_t prev = first ? base : time;
    uint64_t step;  // time - prev
    if constexpr (Dod) {
      if (first) {
        step = dt.get_uvarint_wide();
        delta = 0;
      } else {
        step = delta += static_cast<uint64_t>(dt.get_varint());
      }
    } else {
      step = dt.get_uvarint_wide();
    }
    time = static_cast<int64_t>(static_cast<uint64_t>(prev) + step);
    // The time difference is non-negative; a wrap-around means a corrupt column.
    return time >= prev;
  }
  /// The row's duration from column reader `dd`.
  [[gnu::always_inline]] int64_t next_duration(decoder& dd) {
    if constexpr (Dod) {
      duration += static_cast<uint64_t>(dd.get_varint());
      return static_cast<int64_t>(duration);
    } else {
      return dd.get_varint();
    }
  }
  [[gnu::noinline]] status error(uint64_t i) const {
    if (series >= b.series.size())
      return corrupt("profiles", "series id " + str(series) + " out of range (" +
                                     str(b.series.size()) + " series)");
    return corrupt("profiles", "profile " + str(i) + " time goes backwards within its series");
  }
};

// Each row is built once from all columns read side by side: writing the 72-byte rows column by
// column touched every row six times (plus a zeroing pass), which was most of a rows-only decode.
// Version 5's ids are filled in afterwards by parse_profile_ids.
template <bool V5>
status parse_profiles_of(bytes_view body, block_data& b, rows_summary& sum) {
  profile_section ps;
  if (auto st = find_profile_columns(body, ps, !V5); !st) return st;
  const uint64_t n = ps.n;
  decoder ds = ps.column(body, 0), dt = ps.column(body, 1), dd = ps.column(body, 2),
          dv = ps.column(body, 3), dc = ps.column(body, 4);
  decoder di(body.subspan(ps.at[5]));
  auto& rows = b.profiles;
  rows.clear();
  rows.reserve(n);
  advise_huge_pages(rows.data(), n * sizeof(profile_row));
  row_stepper<V5> step{b, ps.base};
  uint64_t begin = 0;
  int64_t lo = INT64_MAX, hi = INT64_MIN;
  for (uint64_t i = 0; i < n; ++i) {
    if (!step.next(i, ds, dt)) [[unlikely]]
      return step.error(i);
    profile_row r;
    r.series = static_cast<uint32_t>(step.series);
    r.time_ns = step.time;
    r.duration_ns = step.next_duration(dd);
    r.total = dv.get_varint();
    r.sample_count = dc.get_uvarint32();
    if (begin > UINT32_MAX) return corrupt("profiles", "sample counts overflow 32 bits");
    r.sample_begin = static_cast<uint32_t>(begin);
    begin += r.sample_count;
    if constexpr (!V5) {
      r.id_hi = di.get_u64();
      r.id_lo = di.get_u64();
    }
    lo = std::min(lo, r.time_ns);
    hi = std::max(hi, r.time_ns);
    rows.push_back(r);
  }
  for (decoder* c : {&ds, &dt, &dd, &dv, &dc, &di})
    if (auto s = end_of("profiles", *c); !s) return s;
  sum = n == 0 ? rows_summary{} : rows_summary{lo, hi, begin};
  return {};
}

status parse_profiles(bytes_view body, block_data& b, rows_summary& sum, uint32_t version) {
  return version >= 5 ? parse_profiles_of<true>(body, b, sum)
                      : parse_profiles_of<false>(body, b, sum);
}

// parse_profiles for row_fields::columns: the series, time and total columns into `b.rows`; the
// sample counts only summed; durations and ids not read (their columns' extents are checked, and
// the section's CRC covers their bytes).
template <bool V5>
status parse_profile_columns_of(bytes_view body, block_data& b, rows_summary& sum) {
  profile_section ps;
  if (auto st = find_profile_columns(body, ps, !V5); !st) return st;
  const uint64_t n = ps.n;
  decoder ds = ps.column(body, 0), dt = ps.column(body, 1), dv = ps.column(body, 3),
          dc = ps.column(body, 4);
  row_columns& rows = b.rows;
  rows.series.reserve(n);
  rows.time_ns.reserve(n);
  rows.total.reserve(n);
  advise_huge_pages(rows.time_ns.data(), n * sizeof(int64_t));
  advise_huge_pages(rows.total.data(), n * sizeof(int64_t));
  rows.series.resize(n);
  rows.time_ns.resize(n);
  rows.total.resize(n);
  row_stepper<V5> step{b, ps.base};
  int64_t lo = INT64_MAX, hi = INT64_MIN;
  for (uint64_t i = 0; i < n; ++i) {
    if (!step.next(i, ds, dt)) [[unlikely]]
      return step.error(i);
    rows.series[i] = static_cast<uint32_t>(step.series);
    rows.time_ns[i] = step.time;
    rows.total[i] = dv.get_varint_wide();
    lo = std::min(lo, step.time);
    hi = std::max(hi, step.time);
  }
  uint64_t samples = 0;
  for (uint64_t i = 0; i < n; ++i) {
    // As parse_profiles: every row's first sample must have a 32-bit index.
    if (samples > UINT32_MAX) return corrupt("profiles", "sample counts overflow 32 bits");
    samples += dc.get_uvarint32();
  }
  for (decoder* c : {&ds, &dt, &dv, &dc})
    if (auto s = end_of("profiles", *c); !s) return s;
  sum = n == 0 ? rows_summary{} : rows_summary{lo, hi, samples};
  return {};
}

status parse_profile_columns(bytes_view body, block_data& b, rows_summary& sum, uint32_t version) {
  return version >= 5 ? parse_profile_columns_of<true>(body, b, sum)
                      : parse_profile_columns_of<false>(body, b, sum);
}

// v5: the profile ids, in file (profile) order, after the profiles section.
status parse_profile_ids(bytes_view body, block_data& b) {
  decoder d(body);
  const uint64_t n = d.get_uvarint();
  if (!d.ok()) return end_of("profile_ids", d);
  if (n != b.profiles.size())
    return corrupt("profile_ids", str(n) + " ids for " + str(b.profiles.size()) + " profiles");
  if (d.remaining() != 16 * n)
    return corrupt("profile_ids", str(d.remaining()) + " bytes hold no " + str(n) + " ids");
  for (auto& p : b.profiles) {
    p.id_hi = d.get_u64();
    p.id_lo = d.get_u64();
  }
  return end_of("profile_ids", d);
}

// The samples section's leading count, which must be the sum of the profiles' sample counts.
status get_sample_count(decoder& d, const block_data& b, uint64_t& n) {
  if (!get_count(d, 2, n)) return end_of("samples", d);
  uint64_t want = 0;
  for (const auto& r : b.profiles) want += r.sample_count;
  if (n != want)
    return corrupt("samples", str(n) + " samples, but the profiles' counts sum to " + str(want));
  return {};
}

// The stack and value columns are read side by side (the values start where skip_varints finds
// the stacks' end), so each pair is written once: a pass per column wrote the whole array twice.
// The samples section's pair count (checked against the profiles') and where its stack and
// value columns start.
status find_sample_columns(bytes_view body, const block_data& b, uint64_t& n, size_t& stacks_at,
                           size_t& values_at) {
  decoder d(body);
  if (auto st = get_sample_count(d, b, n); !st) return st;
  stacks_at = body.size() - d.remaining();
  values_at = skip_varints(body, stacks_at, n);
  if (values_at == std::string_view::npos) return corrupt("samples", "stack column truncated");
  return {};
}

status parse_samples(bytes_view body, block_data& b) {
  uint64_t n = 0;
  size_t stacks_at = 0, values_at = 0;
  if (auto st = find_sample_columns(body, b, n, stacks_at, values_at); !st) return st;
  decoder ds(body.subspan(stacks_at, values_at - stacks_at)), dv(body.subspan(values_at));
  b.samples.resize(n);
  sample_rec* out = b.samples.data();
  const uint64_t nodes = b.stacks.size();
  for (size_t p = 0; p < b.profiles.size(); ++p) {
    const auto& r = b.profiles[p];
    uint64_t stack = 0;
    for (uint32_t k = 0; k < r.sample_count; ++k) {
      const uint64_t delta = ds.get_uvarint();
      stack += delta;
      if (delta == 0 || stack >= nodes) [[unlikely]]
        return corrupt("samples", "profile " + str(p) + " sample " + str(k) + " stack " +
                                      str(stack) + " repeats or is out of range (" +
                                      str(nodes) + " nodes)");
      *out++ = sample_rec{static_cast<uint32_t>(stack), dv.get_varint()};
    }
  }
  if (auto st = end_of("samples", ds); !st) return st;
  return end_of("samples", dv);
}

// Profile `row`'s pairs (r.sample_count of them) from the stack-delta and value decoders into
// `out`, checked as read_samples documents: strictly increasing non-root stacks below `nodes`,
// columns not truncated, the values summing to the row's total.
status read_row_pairs(decoder& ds, decoder& dv, const profile_row& r, size_t row, uint64_t nodes,
                      sample_rec* out) {
  uint64_t stack = 0, sum = 0;
  for (uint32_t k = 0; k < r.sample_count; ++k) {
    const uint64_t delta = ds.get_uvarint();
    stack += delta;
    const int64_t value = dv.get_varint();
    if (!ds.ok() || !dv.ok() || delta == 0 || stack >= nodes) [[unlikely]]
      return corrupt("samples", "profile " + str(row) + " sample " + str(k) + " stack " +
                                    str(stack) + " repeats, is out of range (" + str(nodes) +
                                    " nodes) or is truncated");
    out[k] = sample_rec{static_cast<uint32_t>(stack), value};
    sum += static_cast<uint64_t>(value);
  }
  if (static_cast<int64_t>(sum) != r.total)
    return corrupt("profiles", "profile " + str(row) + " total " + std::to_string(r.total) +
                                   " is not the sum of its samples " +
                                   std::to_string(static_cast<int64_t>(sum)));
  return {};
}

// parse_samples for the profiles of the series `keep` marks only (decode_segment_series): the
// pairs of the others are skipped (skip_varints) and their rows left with sample_count 0. Each
// decoded profile's pairs are checked as read_samples checks them (check_block, which would
// expect every row's pairs, is not run on them).
status parse_samples_of(bytes_view body, block_data& b, const std::vector<bool>& keep) {
  uint64_t n = 0;
  size_t stacks_at = 0, values_at = 0;
  if (auto st = find_sample_columns(body, b, n, stacks_at, values_at); !st) return st;
  auto kept = [&](const profile_row& r) { return r.series < keep.size() && keep[r.series]; };
  uint64_t want = 0;
  for (const auto& r : b.profiles)
    if (kept(r)) want += r.sample_count;
  b.samples.resize(want);
  sample_rec* out = b.samples.data();
  const bytes_view stacks = body.first(values_at);
  const uint64_t nodes = b.stacks.size();
  size_t s_at = stacks_at, v_at = values_at;
  for (size_t p = 0; p < b.profiles.size(); ++p) {
    profile_row& r = b.profiles[p];
    r.sample_begin = static_cast<uint32_t>(out - b.samples.data());
    if (!kept(r)) {
      s_at = skip_varints(stacks, s_at, r.sample_count);
      v_at = skip_varints(body, v_at, r.sample_count);
      if (s_at == std::string_view::npos || v_at == std::string_view::npos)
        return corrupt("samples", "columns truncated in profile " + str(p));
      r.sample_count = 0;
      continue;
    }
    decoder ds(stacks.subspan(s_at)), dv(body.subspan(v_at));
    if (auto st = read_row_pairs(ds, dv, r, p, nodes, out); !st) return st;
    out += r.sample_count;
    s_at = stacks.size() - ds.remaining();
    v_at = body.size() - dv.remaining();
  }
  if (s_at != values_at || v_at != body.size())
    return corrupt("samples", "columns do not end with the last profile's pairs");
  return {};
}

// The samples section for segment_columns: the body is kept encoded; each profile's first stack
// delta and first value are located (skip_varints) so read_samples can start there.
status parse_sample_columns(bytes_view body, const block_data& b, std::vector<uint32_t>& stacks_at,
                            std::vector<uint32_t>& values_at) {
  decoder d(body);
  uint64_t n = 0;
  if (auto st = get_sample_count(d, b, n); !st) return st;
  size_t at = body.size() - d.remaining();
  for (auto* column : {&stacks_at, &values_at}) {
    column->resize(b.profiles.size());
    for (size_t p = 0; p < b.profiles.size(); ++p) {
      (*column)[p] = static_cast<uint32_t>(at);
      at = skip_varints(body, at, b.profiles[p].sample_count);
      if (at == std::string_view::npos)
        return corrupt("samples", std::string(column == &stacks_at ? "stack" : "value") +
                                      " column truncated in profile " + str(p));
    }
  }
  if (at != body.size()) return corrupt("samples", str(body.size() - at) + " trailing bytes");
  return {};
}

// v4: the profiles' periods as runs, in file (profile) order.
status parse_periods(bytes_view body, block_data& b) {
  decoder d(body);
  uint64_t runs = 0;
  if (!get_count(d, 2, runs)) return end_of("periods", d);
  uint64_t row = 0;
  for (uint64_t r = 0; r < runs; ++r) {
    const uint64_t n = d.get_uvarint();
    const int64_t period = d.get_varint();
    if (!d.ok()) return end_of("periods", d);
    if (n == 0 || n > b.profiles.size() - row)
      return corrupt("periods", "run " + str(r) + " of " + str(n) +
                                    " profiles is empty or runs past the " +
                                    str(b.profiles.size()) + " profiles");
    for (uint64_t k = 0; k < n; ++k) b.profiles[row++].period = period;
  }
  if (row != b.profiles.size())
    return corrupt("periods",
                   "runs cover " + str(row) + " of " + str(b.profiles.size()) + " profiles");
  return end_of("periods", d);
}

// v4: the span samples of the profiles that have any, in file (profile) order.
status parse_spans(bytes_view body, block_data& b) {
  decoder d(body);
  uint64_t rows = 0;
  if (!get_count(d, 3, rows)) return end_of("spans", d);
  uint64_t row = 0;
  for (uint64_t r = 0; r < rows; ++r) {
    const uint64_t delta = d.get_uvarint();
    uint64_t n = 0;
    if (!d.ok() || !get_count(d, 10, n)) return end_of("spans", d);
    if ((r > 0 && delta == 0) || delta >= b.profiles.size() - row || n == 0)
      return corrupt("spans", "entry " + str(r) + ": profile delta " + str(delta) +
                                  " repeats or is out of range, or it lists no span samples");
    row += delta;
    profile_row& p = b.profiles[row];
    if (b.spans.size() + n > UINT32_MAX) return corrupt("spans", "more than 2^32 span samples");
    p.span_begin = static_cast<uint32_t>(b.spans.size());
    p.span_count = static_cast<uint32_t>(n);
    uint64_t stack = 0;
    for (uint64_t k = 0; k < n; ++k) {
      span_sample x;
      stack += d.get_uvarint();
      x.span_id = d.get_u64();
      x.value = d.get_varint();
      if (!d.ok()) return end_of("spans", d);
      if (stack == 0 || stack >= b.stacks.size() || x.span_id == 0 || x.value == 0)
        return corrupt("spans", "profile " + str(row) + " span sample " + str(k) + " on stack " +
                                    str(stack) + ": the root or out of range (" +
                                    str(b.stacks.size()) + " nodes), span id 0 or value 0");
      x.stack = static_cast<uint32_t>(stack);
      if (k > 0 && x.stack == b.spans.back().stack && x.span_id <= b.spans.back().span_id)
        return corrupt("spans", "profile " + str(row) + " span samples not sorted and unique");
      b.spans.push_back(x);
    }
  }
  return end_of("spans", d);
}

// Reads a bitmap in the Roaring portable format (github.com/RoaringBitmap/RoaringFormatSpec)
// into ascending ids, all < `limit`; returns why not, or "". We do not hand these bytes to
// CRoaring: 0.2.66's deserializer trusts a bitset container's stated cardinality (so
// roaring_bitmap_to_uint32_array can overflow its buffer on a crafted file), accepts unsorted
// arrays and overlapping runs, and prints to stderr. This parser accepts exactly the valid
// encodings, which include everything roaring_bitmap_portable_serialize writes.
std::string parse_portable_bitmap(bytes_view bits, uint64_t limit, std::vector<uint32_t>& out) {
  constexpr uint32_t cookie_no_runs = 12346, cookie_runs = 12347;
  constexpr uint32_t max_array = 4096, no_offset_threshold = 4;
  decoder d(bits);
  auto u16 = [&d] { return static_cast<uint32_t>(d.get_u8()) | uint32_t{d.get_u8()} << 8; };
  const uint32_t cookie = d.get_u32();
  uint64_t n = 0;
  bytes_view run_flags;
  if ((cookie & 0xffff) == cookie_runs) {
    n = (cookie >> 16) + 1;
    run_flags = d.get_raw((n + 7) / 8);
  } else if (cookie == cookie_no_runs) {
    n = d.get_u32();
  } else {
    return "bad cookie " + str(cookie);
  }
  if (!d.ok() || n > 65536 || n * 4 > d.remaining()) return "bad container count";
  struct container {
    uint32_t key, card;
    bool run;
  };
  std::vector<container> cs(n);
  uint64_t total = 0;
  for (uint64_t i = 0; i < n; ++i) {
    cs[i].key = u16();
    cs[i].card = u16() + 1;
    cs[i].run = !run_flags.empty() && (static_cast<uint8_t>(run_flags[i / 8]) >> (i % 8) & 1) != 0;
    total += cs[i].card;
    if (i > 0 && cs[i].key <= cs[i - 1].key) return "container keys not ascending";
  }
  if (total > limit) return str(total) + " ids for " + str(limit) + " series";
  const bool has_offsets = run_flags.empty() || n >= no_offset_threshold;
  const size_t offsets_at = bits.size() - d.remaining();
  if (has_offsets) d.get_raw(4 * n);
  if (!d.ok()) return "truncated";
  out.clear();
  out.reserve(total);
  for (uint64_t i = 0; i < n; ++i) {
    const size_t here = bits.size() - d.remaining();
    if (has_offsets && load_u32(bits, offsets_at + 4 * i) != here)
      return "container " + str(i) + " offset mismatch";
    const uint32_t high = cs[i].key << 16;
    const size_t before = out.size();
    if (cs[i].run) {
      const uint32_t runs = u16();
      if (!d.ok() || uint64_t{runs} * 4 > d.remaining()) return "truncated run container";
      int64_t next = 0;  // the smallest value the next run may start at
      for (uint32_t r = 0; r < runs; ++r) {
        const uint32_t start = u16(), len = u16() + 1;
        if (start < next || start + len > 0x10000) return "runs overlap or overflow";
        if (out.size() - before + len > cs[i].card) return "runs exceed the cardinality";
        for (uint32_t v = start; v < start + len; ++v) out.push_back(high | v);
        next = int64_t{start} + len;
      }
    } else if (cs[i].card <= max_array) {
      if (uint64_t{cs[i].card} * 2 > d.remaining()) return "truncated array container";
      for (uint32_t k = 0; k < cs[i].card; ++k) {
        const uint32_t v = u16();
        if (k > 0 && v <= (out.back() & 0xffff)) return "array container not ascending";
        out.push_back(high | v);
      }
    } else {
      bytes_view words = d.get_raw(8192);
      if (!d.ok()) return "truncated bitset container";
      for (uint32_t w = 0; w < 1024; ++w) {
        uint64_t x = load_u64(words, 8 * w);
        if (out.size() - before + std::popcount(x) > cs[i].card)
          return "bitset exceeds the cardinality";
        for (; x != 0; x &= x - 1) out.push_back(high | (w * 64 + std::countr_zero(x)));
      }
    }
    if (out.size() - before != cs[i].card) return "container " + str(i) + " cardinality mismatch";
  }
  if (!d.ok() || !d.empty()) return "malformed or trailing bytes";
  if (out.empty()) return "empty";
  if (out.back() >= limit) return "series id " + str(out.back()) + " out of range";
  return {};
}

status parse_postings(bytes_view body, const block_data& b, postings_index& out) {
  decoder d(body);
  const auto& strings = b.syms.strings;
  auto string_at = [&](const char* what, std::string_view& s) -> status {
    const uint64_t ref = d.get_uvarint();
    if (!d.ok()) return end_of("postings", d);
    if (ref >= strings.size())
      return corrupt("postings", std::string(what) + " ref " + str(ref) + " out of range");
    s = strings[ref];
    return {};
  };
  uint64_t names = 0;
  if (!get_count(d, 2, names)) return end_of("postings", d);
  std::string_view prev_name;
  for (uint64_t i = 0; i < names; ++i) {
    std::string_view name;
    if (auto st = string_at("name", name); !st) return st;
    if (i > 0 && !(prev_name < name))
      return corrupt("postings",
                     "label names not sorted and unique at '" + std::string(name) + "'");
    prev_name = name;
    uint64_t values = 0;
    if (!get_count(d, 3, values) || values == 0)
      return corrupt("postings", "label '" + std::string(name) + "' has a bad value count");
    auto& by_value = out.by_name[std::string(name)];
    std::string_view prev_value;
    for (uint64_t k = 0; k < values; ++k) {
      std::string_view value;
      if (auto st = string_at("value", value); !st) return st;
      if (k > 0 && !(prev_value < value))
        return corrupt("postings", "values of '" + std::string(name) + "' not sorted and unique");
      prev_value = value;
      const std::string where = "bitmap of " + std::string(name) + "=" + std::string(value);
      bytes_view bits = d.get_raw(d.get_uvarint());
      if (!d.ok()) return end_of("postings", d);
      std::vector<uint32_t> ids;
      if (std::string why = parse_portable_bitmap(bits, b.series.size(), ids); !why.empty())
        return corrupt("postings", where + ": " + why);
      by_value.emplace(std::string(value), std::move(ids));
    }
  }
  return end_of("postings", d);
}

// What decode_sections fills of a segment_columns besides its block.
struct segment_columns_parts {
  std::string samples;
  std::vector<uint32_t> stacks_at, values_at;
};

// The sections of every version: 1 and 2 differ only in the footer; 3 adds the mappings section
// and the locations' mapping refs (the TOC, checked by read_footer, lists the version's sections).
// With `cols`, the samples stay encoded in `*cols` (segment_columns) and postings are not read.
// The sections a rows-only decode reads: strings, series and profiles, and from version 5 on,
// for row_fields::all, the profile ids.
bool rows_read(section_id id, row_fields fields) {
  return id == section_id::strings || id == section_id::series || id == section_id::profiles ||
         (id == section_id::profile_ids && fields == row_fields::all);
}

// What decode_sections' check_block verifies of the sections a rows-only decode reads (strings,
// series, profiles), and the footer's counts and time range against them.
status check_rows(block_data& b, const rows_summary& rows, const footer_data& f) {
  const auto& sy = b.syms;
  if (sy.strings.empty() || !sy.strings[0].empty())
    return corrupt("strings", "string 0 must exist and be empty");
  for (size_t i = 0; i < b.labels.size(); ++i)
    if (b.labels[i].name >= sy.strings.size() || b.labels[i].value >= sy.strings.size())
      return corrupt("series", "label " + str(i) + " names a string out of range");
  for (size_t i = 0; i < b.series.size(); ++i) {
    const auto& s = b.series[i];
    if (uint64_t{s.label_begin} + s.label_count > b.labels.size())
      return corrupt("series", "series " + str(i) + " labels out of range");
    for (uint32_t k = 1; k < s.label_count; ++k)
      if (!(sy.strings[b.labels[s.label_begin + k - 1].name] <
            sy.strings[b.labels[s.label_begin + k].name]))
        return corrupt("series", "series " + str(i) + " label names are not sorted and unique");
  }
  if (auto st = set_time_range(b, rows, f.info); !st) return st;
  const auto& i = f.info;
  if (i.series != b.series.size() || i.profiles != row_count(b) || i.samples != rows.samples)
    return corrupt("footer", "counts do not match the sections");
  return {};
}

result<block_data> decode_sections(bytes_view file, const footer_data& f,
                                   postings_index* postings_out,
                                   segment_columns_parts* cols = nullptr,
                                   const series_filter* keep = nullptr) {
  const bool v3 = f.info.version >= 3;
  block_data b;
  rows_summary rows;
  postings_index postings;
  scratch_buffer scratch;
  // With `keep`: the rows' sections first (each depends only on those before it in the file), then
  // the filter, then the others, unless it marks no series: then the rows are the answer.
  std::vector<toc_entry> toc = f.toc;
  size_t rows_sections = 0;
  std::vector<bool> mask;
  bool partial = false;  // some series' pairs not decoded
  if (keep)
    rows_sections = static_cast<size_t>(
        std::stable_partition(toc.begin(), toc.end(),
                              [](const toc_entry& e) { return rows_read(e.id, row_fields::all); }) -
        toc.begin());
  for (size_t k = 0; k < toc.size(); ++k) {
    const toc_entry& e = toc[k];
    if (keep && k == rows_sections) {
      mask = (*keep)(b);
      mask.resize(b.series.size());
      partial = std::find(mask.begin(), mask.end(), false) != mask.end();
      if (std::find(mask.begin(), mask.end(), true) == mask.end()) {
        if (auto st = check_rows(b, rows, f); !st) return st.err();
        for (auto& p : b.profiles) p.sample_begin = p.sample_count = 0;
        return b;
      }
    }
    if (cols && e.id == section_id::postings) continue;
    auto body = load_section(file, e, scratch);
    if (!body) return body.take_error();
    status st;
    switch (e.id) {
      case section_id::strings:
        st = parse_strings(*body, b);
        break;
      case section_id::functions:
        st = parse_functions(*body, b);
        break;
      case section_id::lines:
        st = parse_lines(*body, b);
        break;
      case section_id::mappings:
        st = parse_mappings(*body, b);
        break;
      case section_id::locations:
        st = parse_locations(*body, b, v3);
        break;
      case section_id::stacks:
        st = parse_stacks(*body, b);
        break;
      case section_id::series:
        st = parse_series(*body, b);
        break;
      case section_id::profiles:
        st = parse_profiles(*body, b, rows, f.info.version);
        break;
      case section_id::profile_ids:
        st = parse_profile_ids(*body, b);
        break;
      case section_id::samples:
        if (cols) {
          st = parse_sample_columns(*body, b, cols->stacks_at, cols->values_at);
          if (st) cols->samples.assign(reinterpret_cast<const char*>(body->data()), body->size());
        } else if (partial) {
          st = parse_samples_of(*body, b, mask);
        } else {
          st = parse_samples(*body, b);
        }
        break;
      case section_id::postings:
        st = parse_postings(*body, b, postings);
        break;
      case section_id::periods:
        st = parse_periods(*body, b);
        break;
      case section_id::spans:
        st = parse_spans(*body, b);
        break;
    }
    if (!st) return st.err();
  }
  if (auto st = check_block(b, errc::corrupted, "segment", cols == nullptr && !partial); !st)
    return st.err();
  // (series, time) order and contiguous sample ranges hold by construction: parse_profiles
  // rejects deltas that would break them.
  if (auto st = set_time_range(b, rows, f.info); !st) return st.err();
  const auto& i = f.info;
  const uint64_t samples = cols || partial ? rows.samples : b.samples.size();
  if (i.series != b.series.size() || i.profiles != b.profiles.size() || i.samples != samples ||
      i.stacks != b.stacks.size())
    return corrupt("footer", "counts do not match the sections");
  if (!cols && postings != make_postings(b))
    return corrupt("postings", "do not match the series' labels");
  if (postings_out) *postings_out = std::move(postings);
  return b;
}

// The row-level part of any version: the sections of rows_read, each CRC-checked and parsed as
// decode_sections does; the others (periods and spans included) are not read.
// What decode_sections' check_block verifies of these sections is verified here too.
result<block_data> decode_rows(bytes_view file, const footer_data& f, row_fields fields) {
  block_data b;
  rows_summary rows;
  scratch_buffer scratch;
  const uint32_t version = f.info.version;
  for (const auto& e : f.toc) {
    if (!rows_read(e.id, fields)) continue;
    auto body = load_section(file, e, scratch);
    if (!body) return body.take_error();
    status st = e.id == section_id::strings       ? parse_strings(*body, b)
                : e.id == section_id::series      ? parse_series(*body, b)
                : e.id == section_id::profile_ids ? parse_profile_ids(*body, b)
                : fields == row_fields::columns   ? parse_profile_columns(*body, b, rows, version)
                                                  : parse_profiles(*body, b, rows, version);
    if (!st) return st.err();
  }
  if (auto st = check_rows(b, rows, f); !st) return st.err();
  return b;
}

}  // namespace

std::span<const uint32_t> postings_index::series_for(std::string_view name,
                                                     std::string_view value) const {
  auto n = by_name.find(name);
  if (n == by_name.end()) return {};
  auto v = n->second.find(value);
  if (v == n->second.end()) return {};
  return v->second;
}

postings_index make_postings(const block_data& b) {
  postings_index p;
  for (uint32_t s = 0; s < b.series.size(); ++s) {
    const auto& sr = b.series[s];
    for (uint32_t k = 0; k < sr.label_count; ++k) {
      const auto& l = b.labels[sr.label_begin + k];
      auto& name = b.syms.strings[l.name];
      auto n = p.by_name.find(name);
      if (n == p.by_name.end()) n = p.by_name.emplace(name, decltype(n->second){}).first;
      auto& value = b.syms.strings[l.value];
      auto v = n->second.find(value);
      if (v == n->second.end()) v = n->second.emplace(value, std::vector<uint32_t>{}).first;
      v->second.push_back(s);  // s ascends, and a series names a label once
    }
  }
  return p;
}

result<std::string> encode_segment(const block_data& b, segment_codec codec, uint64_t wal_seq) {
  segment_info meta;
  meta.wal_seq = wal_seq;
  meta.block_id = wal_seq;
  return encode_segment(b, codec, meta);
}

namespace {

// encode_segment for both shapes: pairs in `b.samples` (pre == nullptr) or already encoded.
result<std::string> encode_impl(const block_data& b, const encoded_samples* pre,
                                segment_codec codec, const segment_info& meta, int zstd_level) {
  if (static_cast<uint8_t>(codec) > static_cast<uint8_t>(segment_codec::zstd))
    return error{errc::invalid_argument, "encode_segment: unknown codec"};
  if (zstd_level < ZSTD_minCLevel() || zstd_level > ZSTD_maxCLevel() || zstd_level == 0)
    return error{errc::invalid_argument,
                 "encode_segment: zstd level " + std::to_string(zstd_level) + " out of range"};
  if (std::string why = check_meta(meta); !why.empty())
    return error{errc::invalid_argument, "encode_segment: footer: " + why};
  if (meta.sources.size() > UINT32_MAX)
    return error{errc::invalid_argument, "encode_segment: footer: more than 2^32 sources"};
  if (auto st = check_block(b, errc::invalid_argument, "encode_segment", pre == nullptr); !st)
    return st.err();
  if (b.profiles.size() > UINT32_MAX || b.samples.size() > UINT32_MAX ||
      (pre && pre->count > UINT32_MAX))
    return error{errc::invalid_argument, "encode_segment: more than 2^32 profiles or samples"};

  std::vector<uint32_t> order(b.profiles.size());
  std::iota(order.begin(), order.end(), 0u);
  auto row_less = [&](uint32_t x, uint32_t y) {
    const auto& p = b.profiles[x];
    const auto& q = b.profiles[y];
    return std::tie(p.series, p.time_ns, p.id_hi, p.id_lo) <
           std::tie(q.series, q.time_ns, q.id_hi, q.id_lo);
  };
  if (!std::is_sorted(order.begin(), order.end(), row_less)) {
    if (pre)
      return error{errc::invalid_argument,
                   "encode_segment: encoded samples need profiles in (series, time, id) order"};
    std::stable_sort(order.begin(), order.end(), row_less);
  }
  if (pre) {
    uint64_t n = 0;
    for (const auto& p : b.profiles) n += p.sample_count;
    if (!b.samples.empty() || n != pre->count)
      return error{errc::invalid_argument, "encode_segment: the profiles count " + str(n) +
                                               " samples, the encoded samples hold " +
                                               str(pre->count)};
  }

  segment_info info = meta;  // the block metadata, as given
  info.version = segment_current_version;
  info.series = b.series.size();
  info.profiles = b.profiles.size();
  info.stacks = b.stacks.size();
  info.codec = codec;
  info.min_time_ns = 0;
  info.max_time_ns = 0;
  if (!b.profiles.empty()) {
    info.min_time_ns = std::numeric_limits<int64_t>::max();
    info.max_time_ns = std::numeric_limits<int64_t>::min();
    for (const auto& p : b.profiles) {
      info.min_time_ns = std::min(info.min_time_ns, p.time_ns);
      info.max_time_ns = std::max(info.max_time_ns, p.time_ns);
    }
  }

  segment_writer w(codec, zstd_level);
  auto add = [&](section_id id, const encoder& e) { return w.add(id, e.buffer()); };
  encoder e;
  const auto& sy = b.syms;

  e.put_uvarint(sy.strings.size());
  for (const auto& s : sy.strings) e.put_string(s);
  if (auto st = add(section_id::strings, e); !st) return st.err();

  e.reset();
  e.put_uvarint(sy.mappings.size());
  for (const auto& m : sy.mappings) {
    e.put_uvarint(m.memory_start);
    e.put_uvarint(m.memory_limit);
    e.put_uvarint(m.file_offset);
    e.put_uvarint(m.filename);
    e.put_uvarint(m.build_id);
    e.put_u8(m.flags);
  }
  if (auto st = add(section_id::mappings, e); !st) return st.err();

  e.reset();
  e.put_uvarint(sy.functions.size());
  for (const auto& f : sy.functions) {
    e.put_uvarint(f.name);
    e.put_uvarint(f.system_name);
    e.put_uvarint(f.filename);
    e.put_varint(f.start_line);
  }
  if (auto st = add(section_id::functions, e); !st) return st.err();

  e.reset();
  e.put_uvarint(sy.lines.size());
  for (const auto& l : sy.lines) {
    e.put_uvarint(l.function);
    e.put_varint(l.line);
  }
  if (auto st = add(section_id::lines, e); !st) return st.err();

  e.reset();
  e.put_uvarint(sy.locations.size());
  for (const auto& l : sy.locations) {
    e.put_uvarint(l.address);
    e.put_uvarint(l.line_begin);
    e.put_uvarint(l.line_count);
    e.put_uvarint(l.mapping);
  }
  if (auto st = add(section_id::locations, e); !st) return st.err();

  // Parent as a distance: in DFS order most nodes sit right after their parent (distance 1).
  e.reset();
  e.put_uvarint(b.stacks.size());
  for (size_t i = 1; i < b.stacks.size(); ++i) e.put_uvarint(i - b.stacks[i].parent);
  for (size_t i = 1; i < b.stacks.size(); ++i) e.put_uvarint(b.stacks[i].location);
  if (auto st = add(section_id::stacks, e); !st) return st.err();

  e.reset();
  e.put_uvarint(b.labels.size());
  for (const auto& l : b.labels) {
    e.put_uvarint(l.name);
    e.put_uvarint(l.value);
  }
  e.put_uvarint(b.series.size());
  for (const auto& s : b.series) {
    e.put_uvarint(s.label_begin);
    e.put_uvarint(s.label_count);
  }
  if (auto st = add(section_id::series, e); !st) return st.err();

  // Profiles, column by column (a totals-only scan reads a prefix of the columns).
  e.reset();
  e.put_uvarint(order.size());
  const int64_t base = info.min_time_ns;
  e.put_varint(base);
  const size_t nrows = order.size();
  auto row = [&](size_t k) -> const profile_row& { return b.profiles[order[k]]; };
  e.put_uvarints(
      nrows, [&](size_t k) { return uint64_t{row(k).series} - (k == 0 ? 0 : row(k - 1).series); });
  // Times: a series' first as its distance from `base`, then each delta's change from the
  // previous delta (0 before the first), so a series at a fixed interval costs a byte a row.
  auto time_delta = [&](size_t k) {
    return static_cast<uint64_t>(row(k).time_ns) - static_cast<uint64_t>(row(k - 1).time_ns);
  };
  auto first_of_series = [&](size_t k) { return k == 0 || row(k - 1).series != row(k).series; };
  for (size_t k = 0; k < nrows; ++k) {
    if (first_of_series(k)) {
      e.put_uvarint(static_cast<uint64_t>(row(k).time_ns) - static_cast<uint64_t>(base));
    } else {
      const uint64_t before = first_of_series(k - 1) ? 0 : time_delta(k - 1);
      e.put_varint(static_cast<int64_t>(time_delta(k) - before));
    }
  }
  // Durations: each one's difference to the previous row's (0 before the first).
  e.put_varints(nrows, [&](size_t k) {
    const uint64_t before = k == 0 ? 0 : static_cast<uint64_t>(row(k - 1).duration_ns);
    return static_cast<int64_t>(static_cast<uint64_t>(row(k).duration_ns) - before);
  });
  e.put_varints(nrows, [&](size_t k) { return row(k).total; });
  e.put_uvarints(nrows, [&](size_t k) { return uint64_t{row(k).sample_count}; });
  if (auto st = add(section_id::profiles, e); !st) return st.err();

  // The ids in their own section: random UUIDs do not compress, and a query that reads only the
  // series, times and totals (time series) then neither decompresses nor checks them.
  e.reset();
  e.put_uvarint(order.size());
  for (uint32_t i : order) {
    e.put_u64(b.profiles[i].id_hi);
    e.put_u64(b.profiles[i].id_lo);
  }
  if (auto st = add(section_id::profile_ids, e); !st) return st.err();

  // Samples in profile order, each profile's sorted by stack so stack ids delta-encode. One pass
  // writes the stack deltas into `e` and the values into `values`, which is appended after them:
  // only one profile's samples are copied at a time (a sorted copy of the whole block would add
  // 16 bytes per pair to the seal's peak memory).
  uint64_t sample_total = 0;
  for (uint32_t i : order) sample_total += b.profiles[i].sample_count;
  info.samples = sample_total;
  e.reset();
  e.put_uvarint(sample_total);
  if (pre) {
    e.put_raw(pre->stacks);
    e.put_raw(pre->values);
  }
  encoder values;
  row_sorter sorter(pre ? 0 : b.stacks.size());
  for (uint32_t i : pre ? std::span<const uint32_t>() : std::span<const uint32_t>(order)) {
    const auto& p = b.profiles[i];
    std::span<const sample_rec> s(b.samples.data() + p.sample_begin, p.sample_count);
    // Rows decoded from a segment are already sorted by stack: sort a copy only when not.
    if (std::adjacent_find(s.begin(), s.end(), [](const auto& x, const auto& y) {
          return x.stack >= y.stack;
        }) != s.end()) {
      auto r = sorter.sort(s);
      if (!r)
        return error{errc::invalid_argument, "encode_segment: samples: profile " + str(i) +
                                                 " has stack " + str(r.err_stack) + " twice"};
      s = r.rows;
    }
    e.put_uvarints(s.size(),
                   [&](size_t k) { return uint64_t{s[k].stack} - (k == 0 ? 0 : s[k - 1].stack); });
    values.put_varints(s.size(), [&](size_t k) { return s[k].value; });
  }
  e.put_raw(values.buffer());
  values = encoder{};
  if (auto st = add(section_id::samples, e); !st) return st.err();

  if (auto st = w.add(section_id::postings, encode_postings(b)); !st) return st.err();

  // v4's optional sections, in file (profile) order: periods as runs, then span samples.
  if (std::any_of(b.profiles.begin(), b.profiles.end(),
                  [](const profile_row& p) { return p.period != 0; })) {
    e.reset();
    std::vector<std::pair<uint64_t, int64_t>> runs;
    for (uint32_t i : order) {
      const int64_t period = b.profiles[i].period;
      if (runs.empty() || runs.back().second != period) runs.push_back({0, period});
      ++runs.back().first;
    }
    e.put_uvarint(runs.size());
    for (const auto& [n, period] : runs) {
      e.put_uvarint(n);
      e.put_varint(period);
    }
    if (auto st = add(section_id::periods, e); !st) return st.err();
  }
  if (!b.spans.empty()) {
    e.reset();
    uint64_t rows = 0;
    for (uint32_t i : order) rows += b.profiles[i].span_count != 0;
    e.put_uvarint(rows);
    std::vector<span_sample> spans;
    uint64_t prev_row = 0;
    for (size_t k = 0; k < order.size(); ++k) {
      const auto& p = b.profiles[order[k]];
      if (p.span_count == 0) continue;
      spans.assign(b.spans.begin() + p.span_begin, b.spans.begin() + p.span_begin + p.span_count);
      std::sort(spans.begin(), spans.end(), [](const span_sample& x, const span_sample& y) {
        return std::tie(x.stack, x.span_id) < std::tie(y.stack, y.span_id);
      });
      e.put_uvarint(k - prev_row);
      prev_row = k;
      e.put_uvarint(spans.size());
      uint32_t prev_stack = 0;
      for (size_t j = 0; j < spans.size(); ++j) {
        if (j > 0 && spans[j].stack == spans[j - 1].stack &&
            spans[j].span_id == spans[j - 1].span_id)
          return error{errc::invalid_argument,
                       "encode_segment: spans: profile " + str(order[k]) + " has stack " +
                           str(spans[j].stack) + " with span " + str(spans[j].span_id) + " twice"};
        e.put_uvarint(spans[j].stack - prev_stack);
        prev_stack = spans[j].stack;
        e.put_u64(spans[j].span_id);
        e.put_varint(spans[j].value);
      }
    }
    if (auto st = add(section_id::spans, e); !st) return st.err();
  }
  return w.finish(info);
}

}  // namespace

result<std::string> encode_segment(const block_data& b, segment_codec codec,
                                   const segment_info& meta, int zstd_level) {
  return encode_impl(b, nullptr, codec, meta, zstd_level);
}

result<std::string> encode_segment(const block_data& b, const encoded_samples& samples,
                                   segment_codec codec, const segment_info& meta, int zstd_level) {
  return encode_impl(b, &samples, codec, meta, zstd_level);
}

result<segment_info> read_segment_info(bytes_view file) {
  auto f = read_footer(file);
  if (!f) return f.take_error();
  return f->info;
}

result<std::vector<segment_section_info>> read_segment_sections(bytes_view file,
                                                                segment_info* info) {
  auto f = read_footer(file);
  if (!f) return f.take_error();
  std::vector<segment_section_info> out;
  out.reserve(f->toc.size());
  for (const auto& e : f->toc) {
    const auto name = section_name(e.id);
    bytes_view rec = file.subspan(e.offset, e.length);  // in range: read_footer checked the TOC
    decoder d(rec);
    const uint32_t len = d.get_u32();
    d.get_u8();  // the id, checked against the TOC's by load_section when decoding
    const uint8_t codec = d.get_u8();
    const uint32_t raw_len = d.get_u32();
    if (!d.ok() || uint64_t{len} + section_overhead != e.length)
      return corrupt(name, "length " + str(len) + " disagrees with the TOC's " + str(e.length));
    if (codec > static_cast<uint8_t>(segment_codec::zstd))
      return corrupt(name, "unknown codec " + str(codec));
    segment_section_info s;
    s.name = std::string(name);
    s.offset = e.offset;
    s.stored_bytes = len;
    s.raw_bytes = raw_len;
    s.codec = static_cast<segment_codec>(codec);
    s.crc = load_u32(rec, section_head_size + len);
    s.crc_ok = crc32c(rec.first(section_head_size + len)) == s.crc;
    out.push_back(std::move(s));
  }
  if (info) *info = f->info;
  return out;
}

result<byte_range> segment_footer_range(bytes_view file) {
  auto found = find_footer(file);
  if (!found) return found.take_error();
  return byte_range{*found, file.size() - trailer_size - *found};
}

result<std::vector<byte_range>> segment_rows_ranges(bytes_view file, row_fields fields) {
  auto f = read_footer(file);
  if (!f) return f.take_error();
  std::vector<byte_range> out;
  for (const auto& e : f->toc)
    if (rows_read(e.id, fields)) out.push_back({e.offset, e.length});
  return out;
}

result<block_data> decode_segment_rows(bytes_view file, row_fields fields, segment_info* info) {
  auto f = read_footer(file);
  if (!f) return f.take_error();
  auto b = decode_rows(file, *f, fields);
  if (b && info) *info = f->info;
  return b;
}

result<segment_columns> decode_segment_columns(bytes_view file, segment_info* info) {
  auto f = read_footer(file);
  if (!f) return f.take_error();
  segment_columns_parts parts;
  auto b = decode_sections(file, *f, nullptr, &parts);
  if (!b) return b.take_error();
  segment_columns c;
  c.block_ = std::move(*b);
  c.samples_ = std::move(parts.samples);
  c.stacks_at_ = std::move(parts.stacks_at);
  c.values_at_ = std::move(parts.values_at);
  if (info) *info = f->info;
  return c;
}

result<segment_columns> make_segment_columns(block_data b, const encoded_samples& samples) {
  if (!b.samples.empty())
    return error{errc::invalid_argument, "segment_columns: the block has decoded samples"};
  if (auto st = check_block(b, errc::invalid_argument, "segment_columns", false); !st)
    return st.err();
  encoder e;
  e.put_uvarint(samples.count);
  std::string body = std::move(e.buffer());
  body.reserve(body.size() + samples.stacks.size() + samples.values.size());
  body += samples.stacks;
  body += samples.values;
  segment_columns c;
  if (auto st =
          parse_sample_columns(as_bytes(std::string_view(body)), b, c.stacks_at_, c.values_at_);
      !st)
    return error{errc::invalid_argument, "segment_columns: " + st.err().message};
  c.block_ = std::move(b);
  c.samples_ = std::move(body);
  return c;
}

result<block_data> decode_segment_outside(bytes_view file, int64_t lo_ns, int64_t hi_ns,
                                          int64_t margin_ns) {
  auto c = decode_segment_columns(file);
  if (!c) return c.take_error();
  block_data& b = c->block_;
  margin_ns = std::max<int64_t>(margin_ns, 0);
  // [from, to): the rows whose pairs may be decoded (128 bits: the bounds may pass int64's);
  // INT64_MAX is no margin at all.
  const bool bounded = margin_ns != INT64_MAX;
  const __int128 from = __int128{lo_ns} - margin_ns, to = __int128{hi_ns} + margin_ns;
  for (uint32_t row = 0; row < b.profiles.size(); ++row) {
    profile_row& p = b.profiles[row];
    const uint32_t begin = static_cast<uint32_t>(b.samples.size());
    if ((p.time_ns < lo_ns || p.time_ns >= hi_ns) &&
        (!bounded || (p.time_ns >= from && p.time_ns < to)))
      if (auto st = c->read_samples(row, b.samples); !st) return st.err();
    p.sample_begin = begin;
    p.sample_count = static_cast<uint32_t>(b.samples.size()) - begin;
  }
  return std::move(b);
}

status segment_columns::read_samples(uint32_t row, std::vector<sample_rec>& out) const {
  const profile_row& p = block_.profiles[row];
  const bytes_view body = as_bytes(std::string_view(samples_));
  decoder ds(body.subspan(stacks_at_[row])), dv(body.subspan(values_at_[row]));
  const size_t base = out.size();
  out.resize(base + p.sample_count);
  return read_row_pairs(ds, dv, p, row, block_.stacks.size(), out.data() + base);
}

result<block_data> decode_segment_series(bytes_view file, const series_filter& keep,
                                         segment_info* info) {
  auto f = read_footer(file);
  if (!f) return f.take_error();
  auto b = decode_sections(file, *f, nullptr, nullptr, &keep);
  if (b && info) *info = f->info;
  return b;
}

result<block_data> decode_segment(bytes_view file, segment_info* info, postings_index* postings) {
  auto f = read_footer(file);
  if (!f) return f.take_error();
  result<block_data> b = error{errc::internal, "segment: no decoder for this version"};
  switch (f->info.version) {
    case 1:
    case 2:
    case 3:
    case 4:
    case 5:
    case 6:
      b = decode_sections(file, *f, postings);
      break;
  }
  if (b && info) *info = f->info;
  return b;
}

}  // namespace hearth
