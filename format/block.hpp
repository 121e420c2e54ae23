#pragma once
// The in-memory shape of a block of profiles, shared by the head (which appends to it), the
// segment writer (which freezes it to a file, docs/design/format/segment.md) and the segment
// reader (which loads it back). Queries in query/ read only this shape, so the head and sealed
// segments answer through one code path. Also the ingest batch a distributor hands a partition.

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <string>
#include <utility>
#include <vector>

namespace hearth {

/// A label as a pair of owned strings. Label sets are kept sorted by name, names unique.
struct label {
  std::string name;
  std::string value;
  friend bool operator==(const label&, const label&) = default;
  friend auto operator<=>(const label&, const label&) = default;
};
using label_set = std::vector<label>;

/// A function symbol. String fields are indexes into `symbols::strings`.
struct function_rec {
  uint32_t name = 0;
  uint32_t system_name = 0;
  uint32_t filename = 0;
  int64_t start_line = 0;
  friend bool operator==(const function_rec&, const function_rec&) = default;
};

/// One (function, line) of a location. In a location's run of lines the first is the innermost
/// (inlined) frame and the last is the caller the others were inlined into, as in pprof.
struct line_rec {
  uint32_t function = 0;  ///< index into symbols::functions
  int64_t line = 0;
  friend bool operator==(const line_rec&, const line_rec&) = default;
};

/// A mapping: a binary (executable or shared library) mapped into the profiled process, as in
/// pprof. String fields are indexes into `symbols::strings`.
struct mapping_rec {
  uint64_t memory_start = 0;
  uint64_t memory_limit = 0;
  uint64_t file_offset = 0;
  uint32_t filename = 0;  ///< the binary's path
  uint32_t build_id = 0;  ///< e.g. the GNU build id, as pprof gives it
  uint8_t flags = 0;      ///< mapping_flag bits
  friend bool operator==(const mapping_rec&, const mapping_rec&) = default;
};

/// Bits of mapping_rec::flags (pprof's has_* fields). On disk: never renumber.
enum mapping_flag : uint8_t {
  mapping_has_functions = 1u << 0,
  mapping_has_filenames = 1u << 1,
  mapping_has_line_numbers = 1u << 2,
  mapping_has_inline_frames = 1u << 3,
  mapping_flags_all = 0x0f,  ///< the bits defined so far; others must be 0
};

/// A location: a run of `lines`, the binary it is in and, for unsymbolized frames, the address.
struct location_rec {
  uint64_t address = 0;
  uint32_t line_begin = 0;  ///< index into symbols::lines
  uint32_t line_count = 0;
  uint32_t mapping = 0;  ///< 1-based index into symbols::mappings; 0 = no mapping
  friend bool operator==(const location_rec&, const location_rec&) = default;
};

/// Deduplicated symbol tables. strings[0] is always "".
struct symbols {
  std::vector<std::string> strings{std::string()};
  std::vector<mapping_rec> mappings;  ///< referenced 1-based by location_rec::mapping
  std::vector<function_rec> functions;
  std::vector<line_rec> lines;
  std::vector<location_rec> locations;
};

/// A node of the stack tree: a call path is a chain of nodes from a leaf up to the root.
/// Node 0 is the root sentinel (the empty path); its parent is 0.
struct stack_node {
  uint32_t parent = 0;    ///< index into block_data::stacks
  uint32_t location = 0;  ///< index into symbols::locations (unused for node 0)
};

/// A label of a series as string refs.
struct label_ref {
  uint32_t name = 0;
  uint32_t value = 0;
};

/// A series: its labels are labels[label_begin, label_begin + label_count), sorted by name.
struct series_rec {
  uint32_t label_begin = 0;
  uint32_t label_count = 0;
};

/// One stored profile of one series (one pprof sample type of one ingested profile).
struct profile_row {
  uint32_t series = 0;
  int64_t time_ns = 0;
  int64_t duration_ns = 0;
  int64_t total = 0;          ///< sum of the sample values
  uint32_t sample_begin = 0;  ///< index into block_data::samples
  uint32_t sample_count = 0;
  uint64_t id_hi = 0;  ///< profile id (UUID) for replica de-duplication
  uint64_t id_lo = 0;
  /// The part of the samples that carried a span id: block_data::spans[span_begin, +span_count).
  uint32_t span_begin = 0;
  uint32_t span_count = 0;
  int64_t period = 0;  ///< the pprof's period (in its period type's unit); 0 = unknown

  /// When the profile ends: time_ns + duration_ns, a negative duration counting as 0, and
  /// INT64_MAX when the sum is past it.
  int64_t end_ns() const {
    int64_t e;
    return __builtin_add_overflow(time_ns, std::max<int64_t>(duration_ns, 0), &e) ? INT64_MAX : e;
  }
};

/// A (stack, span id, value) triple: `value` of the profile's samples on `stack` carried the pprof
/// sample label `span_id` (16 hex digits, here as the number they spell; never 0). Span samples
/// refine a profile's samples, they do not add to them: the sample on `stack` already counts
/// `value`. Within a profile, (stack, span_id) pairs are unique.
struct span_sample {
  /// Index into block_data::stacks (never 0); in an ingest_batch, one of the batch's stacks.
  uint32_t stack = 0;
  uint64_t span_id = 0;
  int64_t value = 0;
  friend bool operator==(const span_sample&, const span_sample&) = default;
};

/// A (stack, value) pair. Within a profile stacks are unique (repeated stacks are summed).
/// 12 bytes, packed to 4-byte alignment: a decoded day file holds tens of millions of them, and
/// the padding of an 8-aligned layout was a quarter of that memory and of its page faults
/// (docs/bench.md). Read `value` by value only: a reference or pointer to it may be misaligned.
#pragma pack(push, 4)
struct sample_rec {
  uint32_t stack = 0;  ///< index into block_data::stacks (never 0)
  int64_t value = 0;
};
#pragma pack(pop)
static_assert(sizeof(sample_rec) == 12);

/// a + b modulo 2^64: how sample values, totals and their sums add up (never signed overflow).
inline int64_t wrapping_add(int64_t a, int64_t b) {
  return static_cast<int64_t>(static_cast<uint64_t>(a) + static_cast<uint64_t>(b));
}

/// The fields of the profile rows that the queries reading no samples and no profile ids need
/// (label names and values, Series, profile types, SelectSeries without a call site or
/// exemplars), as parallel columns in row order: 20 bytes a row where a profile_row takes 72. A
/// rows-only decode (decode_segment_rows, row_fields::columns) gives a block these instead of
/// `block_data::profiles`.
struct row_columns {
  std::vector<uint32_t> series;
  std::vector<int64_t> time_ns;
  std::vector<int64_t> total;

  size_t size() const { return series.size(); }
};

/// A block of profiles: symbols, stack tree, series, profiles and their samples.
/// Thread-safety: a value type; sealed blocks are shared as `shared_ptr<const block_data>`.
struct block_data {
  symbols syms;
  std::vector<stack_node> stacks{stack_node{}};
  std::vector<label_ref> labels;
  std::vector<series_rec> series;
  std::vector<profile_row> profiles;
  std::vector<sample_rec> samples;
  std::vector<span_sample> spans;  ///< per profile: profile_row::span_begin/span_count
  /// Only in a block decoded with row_fields::columns, whose `profiles` is then empty: the rows'
  /// series, times and totals. Everywhere else empty; read rows through row_view, which serves
  /// either shape.
  row_columns rows;
  int64_t min_time_ns = 0;  ///< over profiles; 0/0 when empty
  int64_t max_time_ns = 0;

  /// Appends a profile row and widens [min_time_ns, max_time_ns] to its time.
  void add_profile(const profile_row& row) {
    if (profiles.empty()) {
      min_time_ns = max_time_ns = row.time_ns;
    } else {
      min_time_ns = std::min(min_time_ns, row.time_ns);
      max_time_ns = std::max(max_time_ns, row.time_ns);
    }
    profiles.push_back(row);
  }
};

/// The series, times and totals of a block's rows read in place, in whichever shape the block
/// holds them: its row columns (a columns decode) or the fields of its profile_rows (a head's
/// block, a full decode). Each field is a base and a byte stride. Valid while the block is.
class row_view {
 public:
  explicit row_view(const block_data& b) {
    if (!b.profiles.empty()) {
      const profile_row& p = b.profiles.front();
      n_ = b.profiles.size();
      series_ = as_bytes(&p.series);
      time_ = as_bytes(&p.time_ns);
      total_ = as_bytes(&p.total);
      series_stride_ = time_stride_ = sizeof(profile_row);
    } else {
      n_ = b.rows.size();
      series_ = as_bytes(b.rows.series.data());
      time_ = as_bytes(b.rows.time_ns.data());
      total_ = as_bytes(b.rows.total.data());
      series_stride_ = sizeof(uint32_t);
      time_stride_ = sizeof(int64_t);
    }
  }
  size_t size() const { return n_; }
  uint32_t series(size_t i) const { return load<uint32_t>(series_ + i * series_stride_); }
  int64_t time_ns(size_t i) const { return load<int64_t>(time_ + i * time_stride_); }
  int64_t total(size_t i) const { return load<int64_t>(total_ + i * time_stride_); }

 private:
  static const char* as_bytes(const void* p) { return static_cast<const char*>(p); }
  template <class T>
  static T load(const char* p) {
    T v;
    std::memcpy(&v, p, sizeof v);
    return v;
  }
  size_t n_ = 0;
  const char* series_ = nullptr;
  const char* time_ = nullptr;  ///< time and total share a stride: 8 bytes or a profile_row
  const char* total_ = nullptr;
  size_t series_stride_ = 0, time_stride_ = 0;
};

/// The number of profile rows of `b`, in whichever shape it holds them.
inline size_t row_count(const block_data& b) {
  return row_view(b).size();
}

/// One series' profile inside an ingest batch: stacks index into ingest_batch stack lists.
struct ingest_series {
  label_set labels;  ///< sorted; includes __name__, __profile_type__, service_name
  int64_t time_ns = 0;
  int64_t duration_ns = 0;
  uint64_t id_hi = 0;
  uint64_t id_lo = 0;
  std::vector<uint32_t> sample_stacks;  ///< parallel to sample_values
  std::vector<int64_t> sample_values;
  /// The samples' values that carried a span id, per (stack, span id); already in sample_values.
  std::vector<span_sample> spans;
  int64_t period = 0;  ///< the pprof's period; 0 = unknown
};

/// What a distributor hands a partition: the decoded, normalized profiles of one request (or a
/// part of one), sharing one symbol table. Stack i is the location run
/// stack_locations[stack_offsets[i], stack_offsets[i+1]), leaf first (pprof order).
struct ingest_batch {
  std::string tenant;
  symbols syms;
  std::vector<uint32_t> stack_offsets{0};
  std::vector<uint32_t> stack_locations;
  std::vector<ingest_series> series;
  /// hash_bytes() (format/normalize.hpp) of each of syms.strings, parallel to it, when the
  /// producer had them at hand (batch_builder does); otherwise shorter (usually empty). The head
  /// interns the strings with them instead of hashing their bytes again. Neither the WAL record
  /// nor the CAF serialization carries them: a consumer of a batch decoded from either hashes
  /// the strings itself.
  std::vector<uint64_t> string_hashes;

  size_t stack_count() const { return stack_offsets.size() - 1; }
};

}  // namespace hearth
