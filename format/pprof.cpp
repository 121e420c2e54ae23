#include "format/pprof.hpp"

// The pprof decoder reads the protobuf wire format by hand: the message is shallow (Profile ->
// Sample/Location/... -> Label/Line), so a generated parser buys nothing but one allocation per
// submessage. Nested arrays are flattened into the profile's vectors. Wire grammar, per message:
//   message := { tag <uvarint: field << 3 | wire_type> payload }
//   payload := varint (0) | 8 bytes (1) | len <uvarint> bytes (2) | 4 bytes (5)
// Wire types 3/4 (groups) are rejected: no pprof writer emits them and skipping them needs a stack.
// Reference: cluster/proto/profile.proto, https://protobuf.dev/programming-guides/encoding/

#include <libdeflate.h>

#include <memory>
#include <type_traits>

#include "format/protowire.hpp"

namespace hearth::pprof {

// ---------------------------------------------------------------------------------------------
// gzip

bool is_gzip(bytes_view data) {
  return data.size() >= 2 && data[0] == std::byte{0x1f} && data[1] == std::byte{0x8b};
}

namespace {

struct decompressor_deleter {
  void operator()(libdeflate_decompressor* d) const { libdeflate_free_decompressor(d); }
};

// Smallest gzip member: 10-byte header, an empty deflate block (2 bytes), 8-byte trailer.
constexpr size_t min_gzip_member = 20;

error too_large(size_t max_out) {
  return {errc::body_too_large,
          "gzip body inflates to more than the limit of " + std::to_string(max_out) + " bytes"};
}

}  // namespace

result<std::string> gunzip(bytes_view data, size_t max_out) {
  if (!is_gzip(data)) return error{errc::bad_gzip, "not gzip data (missing magic bytes 1f 8b)"};
  if (data.size() < min_gzip_member)
    return error{errc::bad_gzip, "truncated gzip stream: " + std::to_string(data.size()) +
                                     " bytes, a member needs at least " +
                                     std::to_string(min_gzip_member)};

  // ISIZE (the last 4 bytes) is the uncompressed size mod 2^32 of the last member: exact for the
  // usual single member, but untrusted. It only sizes the first attempt, capped by max_out and by
  // deflate's best ratio (~1032:1), so a tiny body cannot make us allocate max_out up front. It is
  // not used to refuse early: on corrupt input it is garbage, and the error must say bad_gzip.
  const auto* in = reinterpret_cast<const uint8_t*>(data.data());
  const uint8_t* t = in + data.size() - 4;
  const size_t isize = static_cast<size_t>(t[0]) | static_cast<size_t>(t[1]) << 8 |
                       static_cast<size_t>(t[2]) << 16 | static_cast<size_t>(t[3]) << 24;
  const size_t ratio_bound = data.size() < SIZE_MAX / 1032 ? data.size() * 1032 : SIZE_MAX;

  // One decompressor per thread (libdeflate's is ~32 KiB of tables, set up per call otherwise); it
  // keeps no state between calls.
  thread_local std::unique_ptr<libdeflate_decompressor, decompressor_deleter> d(
      libdeflate_alloc_decompressor());
  if (!d) return error{errc::internal, "cannot allocate a gzip decompressor"};

  // If ISIZE lied low (or there are several members), grow by doubling. libdeflate is one-shot, so
  // each retry inflates the member again; honest single-member bodies inflate exactly once.
  std::string out;
  out.resize(std::min({isize, max_out, ratio_bound}));
  size_t out_len = 0;
  size_t in_pos = 0;
  int member = 0;
  while (in_pos < data.size()) {
    if (member > 0 && (data.size() - in_pos < 2 || in[in_pos] != 0x1f || in[in_pos + 1] != 0x8b))
      return error{errc::bad_gzip, std::to_string(data.size() - in_pos) +
                                       " bytes of trailing garbage after gzip member " +
                                       std::to_string(member)};
    for (;;) {
      size_t used_in = 0;
      size_t used_out = 0;
      auto r = libdeflate_gzip_decompress_ex(d.get(), in + in_pos, data.size() - in_pos,
                                             out.data() + out_len, out.size() - out_len, &used_in,
                                             &used_out);
      // A member always consumes its header and trailer; the check only guards the outer loop.
      if (r == LIBDEFLATE_SUCCESS && used_in > 0) {
        in_pos += used_in;
        out_len += used_out;
        break;
      }
      if (r != LIBDEFLATE_INSUFFICIENT_SPACE)
        return error{errc::bad_gzip, "corrupt gzip member " + std::to_string(member) + " at byte " +
                                         std::to_string(in_pos) +
                                         " (bad header, deflate data, CRC or size trailer)"};
      if (out.size() >= max_out) return too_large(max_out);
      out.resize(out.size() > max_out / 2
                     ? max_out
                     : std::min(max_out, std::max<size_t>(out.size() * 2, 4096)));
    }
    ++member;
  }
  out.resize(out_len);
  return out;
}

// ---------------------------------------------------------------------------------------------
// Wire-level reading

namespace {

using namespace protowire;

// Counts of top-level repeated fields, from a first cheap pass, to size the vectors once.
struct top_counts {
  size_t n[15] = {};
  size_t sample_bytes = 0;
  size_t location_bytes = 0;
};

// Decodes one Profile into `out`. On failure, error() names the problem; messages are built
// innermost first and each enclosing message prepends its own coordinates ("sample 3: ...").
class parser {
 public:
  parser(bytes_view raw, profile& out)
      : base_(reinterpret_cast<const uint8_t*>(raw.data())), end_(base_ + raw.size()), out_(out) {}

  bool run() {
    top_counts c;
    if (!count(c)) return false;
    reserve(c);
    return parse_profile(base_, end_);
  }

  std::string take_error() { return std::move(err_); }

 private:
  bool fail(std::string msg) {
    err_ = std::move(msg);
    return false;
  }
  // Prefixes the current error with the coordinates of the enclosing message.
  bool within(const char* what, size_t index) {
    err_ = std::string(what) + " " + std::to_string(index) + ": " + err_;
    return false;
  }
  std::string at(const uint8_t* p) const { return " at byte " + std::to_string(p - base_); }

  // Reads the next field of the message ending at `end`, skipping over its payload. The error
  // paths live out of line (wire_fail, wrong_type) so this stays small enough to inline.
  [[gnu::always_inline]] bool next(const uint8_t*& p, const uint8_t* end, field& f) {
    f.start = p;
    uint64_t tag = 0;
    if (p < end && *p < 0x80) [[likely]] {
      tag = *p++;
    } else if (!read_varint(p, end, tag) || p - f.start > 5 || tag > UINT32_MAX) {
      // libprotobuf reads tags as uint32 of at most 5 bytes; accept exactly what it accepts.
      return wire_fail(wire_error::bad_tag, f, p, end);
    }
    f.number = static_cast<uint32_t>(tag >> 3);
    f.type = static_cast<uint32_t>(tag & 7);
    if (f.number == 0) [[unlikely]]
      return wire_fail(wire_error::field_zero, f, p, end);
    switch (f.type) {
      case wt_varint:
        if (!read_varint(p, end, f.value)) [[unlikely]]
          return wire_fail(wire_error::bad_varint, f, p, end);
        return true;
      case wt_len: {
        uint64_t n = 0;
        if (!read_varint(p, end, n)) [[unlikely]]
          return wire_fail(wire_error::bad_length, f, p, end);
        if (n > static_cast<uint64_t>(end - p)) [[unlikely]] {
          f.value = n;
          return wire_fail(wire_error::overrun, f, p, end);
        }
        f.data = p;
        f.size = static_cast<size_t>(n);
        p += n;
        return true;
      }
      case wt_fixed64:
      case wt_fixed32: {
        size_t n = f.type == wt_fixed64 ? 8 : 4;
        if (static_cast<size_t>(end - p) < n) return wire_fail(wire_error::truncated, f, p, end);
        p += n;
        return true;
      }
      default:
        return wire_fail(wire_error::bad_type, f, p, end);
    }
  }

  enum class wire_error {
    bad_tag,
    field_zero,
    bad_varint,
    bad_length,
    overrun,
    truncated,
    bad_type
  };

  // Builds the message for a wire-level error; `p` is where reading stopped.
  [[gnu::cold, gnu::noinline]] bool wire_fail(wire_error e, const field& f, const uint8_t* p,
                                              const uint8_t* end) {
    std::string fld = "field " + std::to_string(f.number);
    switch (e) {
      case wire_error::bad_tag:
        return fail("truncated or malformed field tag" + at(f.start));
      case wire_error::field_zero:
        return fail("field number 0" + at(f.start));
      case wire_error::bad_varint:
        return fail(fld + ": truncated varint or varint longer than 10 bytes" + at(p));
      case wire_error::bad_length:
        return fail(fld + ": truncated length" + at(p));
      case wire_error::overrun:
        return fail(fld + ": length " + std::to_string(f.value) +
                    " runs past the end of its message (" + std::to_string(end - p) +
                    " bytes left)" + at(p));
      case wire_error::truncated:
        return fail(fld + ": truncated " + wire_type_name(f.type) + " value" + at(p));
      case wire_error::bad_type:
        if (f.type == wt_start_group || f.type == wt_end_group)
          return fail(fld + " uses a group (wire type " + std::to_string(f.type) +
                      "), which pprof does not use" + at(f.start));
        return fail(fld + " has invalid wire type " + std::to_string(f.type) + at(f.start));
    }
    return fail(fld + ": malformed" + at(f.start));
  }

  [[gnu::cold, gnu::noinline]] bool wrong_type(const field& f, const char* want, const char* name) {
    return fail("field " + std::to_string(f.number) + " (" + name + ") has wire type " +
                wire_type_name(f.type) + ", want " + want + at(f.start));
  }

  bool want(const field& f, uint32_t type, const char* name) {
    if (f.type == type) [[likely]]
      return true;
    return wrong_type(f, wire_type_name(type), name);
  }

  // A singular varint field. Proto3 semantics: the last occurrence wins.
  template <class T>
  bool scalar(const field& f, const char* name, T& dst) {
    if (!want(f, wt_varint, name)) return false;
    if constexpr (std::is_same_v<T, bool>) {
      dst = f.value != 0;
    } else {
      dst = static_cast<T>(f.value);
    }
    return true;
  }

  // A repeated varint field, packed (one length-delimited run) or not (one varint per field).
  // Both forms may be mixed in one message, as the protobuf spec demands of parsers.
  template <class T>
  bool varints(const field& f, const char* name, std::vector<T>& dst) {
    if (f.type == wt_varint) {
      dst.push_back(static_cast<T>(f.value));
      return true;
    }
    if (f.type != wt_len) return wrong_type(f, "varint or packed", name);
    if (f.size == 0) return true;
    const uint8_t* p = f.data;
    const uint8_t* end = p + f.size;
    // Every varint ends in a byte < 0x80: counting those sizes the output exactly, and once the
    // last byte is known to be one, no varint can run past `end`, so the loop needs no bounds
    // checks beyond the 10-byte limit.
    if (end[-1] >= 0x80)
      return fail("field " + std::to_string(f.number) + " (" + name +
                  "): packed run ends inside a varint" + at(end - 1));
    size_t n = 0;
    for (const uint8_t* q = p; q < end; ++q) n += *q < 0x80;
    size_t old = dst.size();
    dst.resize(old + n);  // geometric growth: resize never shrinks the reserve
    T* out = dst.data() + old;
    for (size_t i = 0; i < n; ++i) {
      uint64_t v = *p & 0x7f;
      if (*p++ >= 0x80) {
        int shift = 7;
        for (;;) {
          if (shift >= 70) {
            dst.resize(old);
            return fail("field " + std::to_string(f.number) + " (" + name +
                        "): varint longer than 10 bytes" + at(p));
          }
          uint8_t b = *p++;
          v |= static_cast<uint64_t>(b & 0x7f) << shift;
          shift += 7;
          if (b < 0x80) break;
        }
      }
      out[i] = static_cast<T>(v);
    }
    return true;
  }

  bool count(top_counts& c) {
    const uint8_t* p = base_;
    field f;
    while (p < end_) {
      if (!next(p, end_, f)) return false;
      if (f.number < 15) ++c.n[f.number];
      if (f.number == 2) c.sample_bytes += f.size;
      if (f.number == 4) c.location_bytes += f.size;
    }
    return true;
  }

  void reserve(const top_counts& c) {
    out_.sample_types.reserve(c.n[1]);
    out_.samples.reserve(c.n[2]);
    out_.mappings.reserve(c.n[3]);
    out_.locations.reserve(c.n[4]);
    out_.functions.reserve(c.n[5]);
    out_.strings.reserve(c.n[6] + 1);
    // Estimates for the nested arrays; vectors grow geometrically past them. Each value takes at
    // least a byte, so the product is capped by the bytes that could hold it.
    out_.values.reserve(std::min(c.n[1] * c.n[2], c.sample_bytes));
    out_.location_ids.reserve(c.sample_bytes / 2);
    out_.lines.reserve(c.n[4] + c.location_bytes / 16);
  }

  bool parse_profile(const uint8_t* p, const uint8_t* end) {
    field f;
    while (p < end) {
      if (!next(p, end, f)) return false;
      switch (f.number) {
        case 1:
          if (!want(f, wt_len, "sample_type")) return false;
          out_.sample_types.emplace_back();
          if (!parse_value_type(f, out_.sample_types.back()))
            return within("sample_type", out_.sample_types.size() - 1);
          break;
        case 2:
          if (!want(f, wt_len, "sample")) return false;
          if (!parse_sample(f)) return within("sample", out_.samples.size());
          break;
        case 3:
          if (!want(f, wt_len, "mapping")) return false;
          if (!parse_mapping(f)) return within("mapping", out_.mappings.size() - 1);
          break;
        case 4:
          if (!want(f, wt_len, "location")) return false;
          if (!parse_location(f)) return within("location", out_.locations.size());
          break;
        case 5:
          if (!want(f, wt_len, "function")) return false;
          if (!parse_function(f)) return within("function", out_.functions.size() - 1);
          break;
        case 6:
          if (!want(f, wt_len, "string_table")) return false;
          out_.strings.emplace_back(reinterpret_cast<const char*>(f.data), f.size);
          break;
        case 7:
          if (!scalar(f, "drop_frames", out_.drop_frames)) return false;
          break;
        case 8:
          if (!scalar(f, "keep_frames", out_.keep_frames)) return false;
          break;
        case 9:
          if (!scalar(f, "time_nanos", out_.time_nanos)) return false;
          break;
        case 10:
          if (!scalar(f, "duration_nanos", out_.duration_nanos)) return false;
          break;
        case 11:
          // A singular message seen twice is merged field by field (protobuf semantics).
          if (!want(f, wt_len, "period_type")) return false;
          if (!parse_value_type(f, out_.period_type)) {
            err_ = "period_type: " + err_;
            return false;
          }
          break;
        case 12:
          if (!scalar(f, "period", out_.period)) return false;
          break;
        case 13:
          if (!varints(f, "comment", out_.comments)) return false;
          break;
        case 14:
          if (!scalar(f, "default_sample_type", out_.default_sample_type)) return false;
          break;
        default:
          break;  // unknown field, already skipped by next()
      }
    }
    return true;
  }

  bool parse_value_type(const field& m, value_type& vt) {
    const uint8_t* p = m.data;
    const uint8_t* end = p + m.size;
    field f;
    while (p < end) {
      if (!next(p, end, f)) return false;
      if (f.number == 1 && !scalar(f, "type", vt.type)) return false;
      if (f.number == 2 && !scalar(f, "unit", vt.unit)) return false;
    }
    return true;
  }

  bool parse_sample(const field& m) {
    const uint8_t* p = m.data;
    const uint8_t* end = p + m.size;
    sample s;
    // Counts fit in 32 bits: every element takes at least one byte and decode() caps the input.
    s.loc_begin = static_cast<uint32_t>(out_.location_ids.size());
    s.value_begin = static_cast<uint32_t>(out_.values.size());
    s.label_begin = static_cast<uint32_t>(out_.labels.size());
    field f;
    while (p < end) {
      if (!next(p, end, f)) return false;
      switch (f.number) {
        case 1:
          if (!varints(f, "location_id", out_.location_ids)) return false;
          break;
        case 2:
          if (!varints(f, "value", out_.values)) return false;
          break;
        case 3:
          if (!want(f, wt_len, "label")) return false;
          out_.labels.emplace_back();
          if (!parse_label(f, out_.labels.back()))
            return within("label", out_.labels.size() - 1 - s.label_begin);
          break;
        default:
          break;
      }
    }
    s.loc_count = static_cast<uint32_t>(out_.location_ids.size() - s.loc_begin);
    s.label_count = static_cast<uint32_t>(out_.labels.size() - s.label_begin);
    out_.samples.push_back(s);
    return true;
  }

  bool parse_label(const field& m, sample_label& l) {
    const uint8_t* p = m.data;
    const uint8_t* end = p + m.size;
    field f;
    while (p < end) {
      if (!next(p, end, f)) return false;
      switch (f.number) {
        case 1:
          if (!scalar(f, "key", l.key)) return false;
          break;
        case 2:
          if (!scalar(f, "str", l.str)) return false;
          break;
        case 3:
          if (!scalar(f, "num", l.num)) return false;
          break;
        case 4:
          if (!scalar(f, "num_unit", l.num_unit)) return false;
          break;
        default:
          break;
      }
    }
    return true;
  }

  bool parse_mapping(const field& m) {
    const uint8_t* p = m.data;
    const uint8_t* end = p + m.size;
    mapping& mp = out_.mappings.emplace_back();
    field f;
    while (p < end) {
      if (!next(p, end, f)) return false;
      bool ok = true;
      switch (f.number) {
        case 1:
          ok = scalar(f, "id", mp.id);
          break;
        case 2:
          ok = scalar(f, "memory_start", mp.memory_start);
          break;
        case 3:
          ok = scalar(f, "memory_limit", mp.memory_limit);
          break;
        case 4:
          ok = scalar(f, "file_offset", mp.file_offset);
          break;
        case 5:
          ok = scalar(f, "filename", mp.filename);
          break;
        case 6:
          ok = scalar(f, "build_id", mp.build_id);
          break;
        case 7:
          ok = scalar(f, "has_functions", mp.has_functions);
          break;
        case 8:
          ok = scalar(f, "has_filenames", mp.has_filenames);
          break;
        case 9:
          ok = scalar(f, "has_line_numbers", mp.has_line_numbers);
          break;
        case 10:
          ok = scalar(f, "has_inline_frames", mp.has_inline_frames);
          break;
        default:
          break;
      }
      if (!ok) return false;
    }
    return true;
  }

  bool parse_location(const field& m) {
    const uint8_t* p = m.data;
    const uint8_t* end = p + m.size;
    location loc;
    loc.line_begin = static_cast<uint32_t>(out_.lines.size());
    field f;
    while (p < end) {
      if (!next(p, end, f)) return false;
      bool ok = true;
      switch (f.number) {
        case 1:
          ok = scalar(f, "id", loc.id);
          break;
        case 2:
          ok = scalar(f, "mapping_id", loc.mapping_id);
          break;
        case 3:
          ok = scalar(f, "address", loc.address);
          break;
        case 4:
          ok = want(f, wt_len, "line");
          if (ok) {
            out_.lines.emplace_back();
            if (!parse_line(f, out_.lines.back()))
              return within("line", out_.lines.size() - 1 - loc.line_begin);
          }
          break;
        case 5:
          ok = scalar(f, "is_folded", loc.is_folded);
          break;
        default:
          break;
      }
      if (!ok) return false;
    }
    loc.line_count = static_cast<uint32_t>(out_.lines.size() - loc.line_begin);
    out_.locations.push_back(loc);
    return true;
  }

  bool parse_line(const field& m, line& ln) {
    const uint8_t* p = m.data;
    const uint8_t* end = p + m.size;
    field f;
    while (p < end) {
      if (!next(p, end, f)) return false;
      if (f.number == 1 && !scalar(f, "function_id", ln.function_id)) return false;
      if (f.number == 2 && !scalar(f, "line", ln.line)) return false;
    }
    return true;
  }

  bool parse_function(const field& m) {
    const uint8_t* p = m.data;
    const uint8_t* end = p + m.size;
    function& fn = out_.functions.emplace_back();
    field f;
    while (p < end) {
      if (!next(p, end, f)) return false;
      bool ok = true;
      switch (f.number) {
        case 1:
          ok = scalar(f, "id", fn.id);
          break;
        case 2:
          ok = scalar(f, "name", fn.name);
          break;
        case 3:
          ok = scalar(f, "system_name", fn.system_name);
          break;
        case 4:
          ok = scalar(f, "filename", fn.filename);
          break;
        case 5:
          ok = scalar(f, "start_line", fn.start_line);
          break;
        default:
          break;
      }
      if (!ok) return false;
    }
    return true;
  }

  const uint8_t* base_;
  const uint8_t* end_;
  profile& out_;
  std::string err_;
};

// ---------------------------------------------------------------------------------------------
// Validation: what later stages rely on, checked once so they can index without checks.

// Shows an untrusted string in an error message: at most 32 bytes, non-printables escaped.
std::string quote(std::string_view s) {
  static constexpr char hex[] = "0123456789abcdef";
  std::string q = "\"";
  for (size_t i = 0; i < s.size() && i < 32; ++i) {
    auto c = static_cast<unsigned char>(s[i]);
    if (c >= 0x20 && c < 0x7f && c != '"' && c != '\\') {
      q += static_cast<char>(c);
    } else {
      q += "\\x";
      q += hex[c >> 4];
      q += hex[c & 15];
    }
  }
  if (s.size() > 32) q += "...";
  q += '"';
  return q;
}

class validator {
 public:
  explicit validator(const profile& p) : p_(p) {}

  status run() {
    // Strings first: every later message may name string indexes.
    if (!p_.strings.empty() && !p_.strings[0].empty())
      return bad("string_table[0] must be \"\", is " + quote(p_.strings[0]));
    for (size_t i = 0; i < p_.sample_types.size(); ++i) {
      if (!str_ok(p_.sample_types[i].type, "sample_type", i, "type")) return err_;
      if (!str_ok(p_.sample_types[i].unit, "sample_type", i, "unit")) return err_;
    }
    if (!str_ok(p_.period_type.type, "period_type", npos, "type")) return err_;
    if (!str_ok(p_.period_type.unit, "period_type", npos, "unit")) return err_;
    if (!str_ok(p_.drop_frames, "profile", npos, "drop_frames")) return err_;
    if (!str_ok(p_.keep_frames, "profile", npos, "keep_frames")) return err_;
    if (!str_ok(p_.default_sample_type, "profile", npos, "default_sample_type")) return err_;
    for (size_t i = 0; i < p_.comments.size(); ++i)
      if (!str_ok(p_.comments[i], "comment", i, "")) return err_;
    for (size_t i = 0; i < p_.mappings.size(); ++i) {
      if (!str_ok(p_.mappings[i].filename, "mapping", i, "filename")) return err_;
      if (!str_ok(p_.mappings[i].build_id, "mapping", i, "build_id")) return err_;
    }
    for (size_t i = 0; i < p_.functions.size(); ++i) {
      const function& f = p_.functions[i];
      if (!str_ok(f.name, "function", i, "name")) return err_;
      if (!str_ok(f.system_name, "function", i, "system_name")) return err_;
      if (!str_ok(f.filename, "function", i, "filename")) return err_;
    }

    if (!p_.samples.empty() && p_.sample_types.empty())
      return bad("profile has " + std::to_string(p_.samples.size()) +
                 " samples but no sample_type");
    const size_t n_types = p_.sample_types.size();
    for (size_t i = 0; i < p_.samples.size(); ++i) {
      const sample& s = p_.samples[i];
      // Values are contiguous per sample, so a sample's count is the gap to the next one's.
      size_t next = i + 1 < p_.samples.size() ? p_.samples[i + 1].value_begin : p_.values.size();
      size_t n = next - s.value_begin;
      if (n != n_types)
        return bad("sample " + std::to_string(i) + " has " + std::to_string(n) + " values, want " +
                   std::to_string(n_types) + " (one per sample type)");
      for (uint32_t j = 0; j < s.label_count; ++j) {
        const sample_label& l = p_.labels[s.label_begin + j];
        if (in_range(l.key) && in_range(l.str) && in_range(l.num_unit)) [[likely]]
          continue;
        std::string where = "sample " + std::to_string(i) + " label";
        if (!str_ok(l.key, where.c_str(), j, "key")) return err_;
        if (!str_ok(l.str, where.c_str(), j, "str")) return err_;
        if (!str_ok(l.num_unit, where.c_str(), j, "num_unit")) return err_;
      }
    }

    // Ids: nonzero and unique per kind, and every reference resolves.
    auto mappings = id_index::of(p_.mappings);
    if (mappings.has_bad_id()) return bad_id("mapping", mappings.bad_id());
    auto functions = id_index::of(p_.functions);
    if (functions.has_bad_id()) return bad_id("function", functions.bad_id());
    auto locations = id_index::of(p_.locations);
    if (locations.has_bad_id()) return bad_id("location", locations.bad_id());
    for (size_t i = 0; i < p_.locations.size(); ++i) {
      const location& loc = p_.locations[i];
      if (loc.mapping_id != 0 && mappings.find(loc.mapping_id) == id_index::npos)
        return bad("location " + std::to_string(i) + " (id " + std::to_string(loc.id) +
                   ") references mapping id " + std::to_string(loc.mapping_id) +
                   ", which does not exist");
      for (uint32_t j = 0; j < loc.line_count; ++j) {
        uint64_t fid = p_.lines[loc.line_begin + j].function_id;
        if (fid != 0 && functions.find(fid) == id_index::npos)
          return bad("location " + std::to_string(i) + " (id " + std::to_string(loc.id) +
                     ") line " + std::to_string(j) + " references function id " +
                     std::to_string(fid) + ", which does not exist");
      }
    }
    for (size_t i = 0; i < p_.samples.size(); ++i) {
      const sample& s = p_.samples[i];
      for (uint32_t j = 0; j < s.loc_count; ++j) {
        uint64_t id = p_.location_ids[s.loc_begin + j];
        if (locations.find(id) == id_index::npos)
          return bad("sample " + std::to_string(i) + " location " + std::to_string(j) +
                     " references location id " + std::to_string(id) + ", which does not exist");
      }
    }
    return {};
  }

 private:
  static constexpr size_t npos = SIZE_MAX;

  bool in_range(int64_t idx) const {
    return static_cast<uint64_t>(idx) < p_.strings.size();  // negative wraps to huge
  }
  bool str_ok(int64_t idx, const char* what, size_t i, const char* field) {
    if (in_range(idx)) [[likely]]
      return true;
    std::string m = what;
    if (i != npos) m += " " + std::to_string(i);
    if (*field) m += std::string(" ") + field;
    m += ": string index " + std::to_string(idx) + " out of range (string_table has " +
         std::to_string(p_.strings.size()) + " entries)";
    err_ = error{errc::bad_pprof, std::move(m)};
    return false;
  }
  static error bad(std::string msg) { return {errc::bad_pprof, std::move(msg)}; }
  static error bad_id(const char* kind, uint64_t id) {
    if (id == 0) return bad(std::string(kind) + " with reserved id 0");
    return bad(std::string(kind) + " id " + std::to_string(id) + " appears more than once");
  }

  const profile& p_;
  error err_;
};

}  // namespace

result<profile> decode(bytes_view raw) {
  // Offsets in the decoded profile are 32-bit.
  if (raw.size() > UINT32_MAX)
    return error{errc::bad_pprof,
                 "profile of " + std::to_string(raw.size()) + " bytes exceeds the 4 GiB limit"};
  profile out;
  parser p(raw, out);
  if (!p.run()) return error{errc::bad_pprof, p.take_error()};
  if (out.strings.empty()) out.strings.emplace_back();
  validator v(out);
  if (status s = v.run(); !s.ok()) return s.err();
  return out;
}

}  // namespace hearth::pprof
