#pragma once
// Hand-written zero-copy decoder for pprof (perftools.profiles.Profile, proto3 wire format) and
// the gzip handling in front of it (libdeflate). The decoded profile holds flattened vectors and
// string_views into the *uncompressed* input, which must outlive it.
// Cross-checked against libprotobuf's generated parser in pprof.test.cpp.

#include <algorithm>
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

/// A mapping: a binary mapped into the profiled process. Strings are string-table indexes.
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

/// One source line of a location; function_id 0 means "no function information".
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

/// A function. name, system_name and filename are string-table indexes.
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

/// Maps pprof ids (arbitrary nonzero uint64s; almost always 1..N in order) to positions in one of
/// a profile's vectors (`mappings`, `locations`, `functions`). Identity and near-dense ids use no
/// lookup structure or a flat table; only scattered ids pay for a sorted vector and binary search.
/// Thread-safety: a plain value type, safe to share once built.
class id_index {
 public:
  static constexpr uint32_t npos = UINT32_MAX;

  /// Indexes `items` by their `id` member. Zero and duplicate ids are recorded (see bad_id()).
  template <class T>
  static id_index of(const std::vector<T>& items);

  /// Position of `id`, or npos when absent.
  uint32_t find(uint64_t id) const {
    // The common case stays tiny so it inlines into per-sample loops.
    if (mode_ == mode::identity) return id - 1 < size_ ? static_cast<uint32_t>(id - 1) : npos;
    return find_slow(id);
  }

  /// True when some id is 0 or appears twice; bad_id() says which (0 for a zero id).
  bool has_bad_id() const { return has_bad_id_; }
  uint64_t bad_id() const { return bad_id_; }

 private:
  enum class mode : uint8_t { identity, table, sorted };
  struct entry {
    uint64_t id;
    uint32_t pos;
  };

  uint32_t find_slow(uint64_t id) const {
    if (mode_ == mode::table) return id < table_.size() ? table_[id] : npos;
    auto it = std::lower_bound(sorted_.begin(), sorted_.end(), id,
                               [](const entry& e, uint64_t v) { return e.id < v; });
    return it != sorted_.end() && it->id == id ? it->pos : npos;
  }

  void note_bad(uint64_t id) {
    if (!has_bad_id_) bad_id_ = id;
    has_bad_id_ = true;
  }

  mode mode_ = mode::identity;
  uint64_t size_ = 0;
  std::vector<uint32_t> table_;  // id -> position, npos for holes (mode::table)
  std::vector<entry> sorted_;    // by id (mode::sorted)
  bool has_bad_id_ = false;
  uint64_t bad_id_ = 0;
};

template <class T>
id_index id_index::of(const std::vector<T>& items) {
  id_index x;
  x.size_ = items.size();
  uint64_t max_id = 0;
  bool identity = true;
  for (size_t i = 0; i < items.size(); ++i) {
    identity = identity && items[i].id == i + 1;
    max_id = std::max(max_id, items[i].id);
  }
  if (identity) return x;
  // A flat table costs 4 bytes per possible id; take it while ids are at most ~4x sparse.
  if (max_id <= 4 * static_cast<uint64_t>(items.size()) + 64) {
    x.mode_ = mode::table;
    x.table_.assign(max_id + 1, npos);
    for (size_t i = 0; i < items.size(); ++i) {
      uint64_t id = items[i].id;
      if (id == 0 || x.table_[id] != npos) x.note_bad(id);
      if (id != 0 && x.table_[id] == npos) x.table_[id] = static_cast<uint32_t>(i);
    }
    return x;
  }
  x.mode_ = mode::sorted;
  x.sorted_.reserve(items.size());
  for (size_t i = 0; i < items.size(); ++i) {
    if (items[i].id == 0) x.note_bad(0);
    x.sorted_.push_back({items[i].id, static_cast<uint32_t>(i)});
  }
  std::sort(x.sorted_.begin(), x.sorted_.end(), [](const entry& a, const entry& b) {
    return a.id < b.id || (a.id == b.id && a.pos < b.pos);
  });
  for (size_t i = 1; i < x.sorted_.size(); ++i)
    if (x.sorted_[i].id == x.sorted_[i - 1].id) x.note_bad(x.sorted_[i].id);
  return x;
}

/// True when the bytes start with the gzip magic 1f 8b.
bool is_gzip(bytes_view data);

/// Inflates a gzip member (libdeflate). Fails with bad_gzip on corrupt input and with
/// body_too_large when the output would exceed `max_out` bytes.
result<std::string> gunzip(bytes_view data, size_t max_out);

/// Decodes an uncompressed pprof message. Validates what later stages rely on: the string table
/// starts with "", every string index is in range, each sample has one value per sample type,
/// every referenced location/function/mapping id exists, mapping/location/function ids are nonzero
/// and unique (as Go's CheckValid demands). A line's function_id may be 0 (no function, as in Go).
/// An input with no strings at all decodes with strings == {""}.
/// Fails with bad_pprof naming the problem (field, index, byte offset).
/// Unknown fields are skipped; packed and unpacked repeated fields are both accepted; groups,
/// wrong wire types for known fields, truncation and over-long varints are rejected.
/// Requires: `raw` outlives the returned profile (its strings point into it).
result<profile> decode(bytes_view raw);

}  // namespace hearth::pprof
