#pragma once
// Hand-written zero-copy decoder for pprof (perftools.profiles.Profile, proto3 wire format) and
// the gzip handling in front of it (libdeflate). The decoded profile holds flattened vectors and
// string_views into the *uncompressed* input, which must outlive it.
// Cross-checked against libprotobuf's generated parser in pprof.test.cpp.

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "format/coding.hpp"
#include "format/error.hpp"

namespace hearth::pprof {

/// ValueType: indexes into the string table.
struct value_type {
  int64_t type = 0;
  int64_t unit = 0;
};

/// A sample: its location ids are location_ids[loc_begin, loc_begin + loc_count) (leaf first),
/// its values are values[value_begin, value_begin + sample_types.size()), its labels are
/// labels[label_begin, label_begin + label_count).
struct sample {
  uint32_t loc_begin = 0;
  uint32_t loc_count = 0;
  uint32_t value_begin = 0;
  uint32_t label_begin = 0;
  uint32_t label_count = 0;
};

/// A sample label: string-valued when str != 0, numeric otherwise.
struct sample_label {
  int64_t key = 0;
  int64_t str = 0;
  int64_t num = 0;
  int64_t num_unit = 0;
};

struct mapping {
  uint64_t id = 0;
  uint64_t memory_start = 0;
  uint64_t memory_limit = 0;
  uint64_t file_offset = 0;
  int64_t filename = 0;
  int64_t build_id = 0;
  bool has_functions = false;
  bool has_filenames = false;
  bool has_line_numbers = false;
  bool has_inline_frames = false;
};

struct line {
  uint64_t function_id = 0;
  int64_t line = 0;
};

/// A location: its lines are lines[line_begin, line_begin + line_count), innermost first.
struct location {
  uint64_t id = 0;
  uint64_t mapping_id = 0;
  uint64_t address = 0;
  uint32_t line_begin = 0;
  uint32_t line_count = 0;
  bool is_folded = false;
};

struct function {
  uint64_t id = 0;
  int64_t name = 0;
  int64_t system_name = 0;
  int64_t filename = 0;
  int64_t start_line = 0;
};

/// A decoded profile. `strings` point into the buffer given to decode().
struct profile {
  std::vector<value_type> sample_types;
  std::vector<sample> samples;
  std::vector<uint64_t> location_ids;
  std::vector<int64_t> values;
  std::vector<sample_label> labels;
  std::vector<mapping> mappings;
  std::vector<location> locations;
  std::vector<line> lines;
  std::vector<function> functions;
  std::vector<std::string_view> strings;
  std::vector<int64_t> comments;
  int64_t drop_frames = 0;
  int64_t keep_frames = 0;
  int64_t time_nanos = 0;
  int64_t duration_nanos = 0;
  value_type period_type;
  int64_t period = 0;
  int64_t default_sample_type = 0;

  /// The string at index i, or "" when out of range.
  std::string_view str(int64_t i) const {
    return i >= 0 && static_cast<uint64_t>(i) < strings.size() ? strings[i] : std::string_view{};
  }
};

/// True when the bytes start with the gzip magic 1f 8b.
bool is_gzip(bytes_view data);

/// Inflates a gzip member (libdeflate). Fails with bad_gzip on corrupt input and with
/// body_too_large when the output would exceed `max_out` bytes.
result<std::string> gunzip(bytes_view data, size_t max_out);

/// Decodes an uncompressed pprof message. Validates what later stages rely on: the string table
/// starts with "", every string index is in range, each sample has one value per sample type,
/// every referenced location/function/mapping id exists. Fails with bad_pprof naming the problem.
/// Unknown fields are skipped; packed and unpacked repeated fields are both accepted.
result<profile> decode(bytes_view raw);

}  // namespace hearth::pprof
