#pragma once
// pprof -> ingest_batch: the heart of ingest. Turns one decoded pprof profile plus the request's
// metadata into series (one per pprof sample type and per distinct set of promoted string sample
// labels, pyroscope-api.md §3.3 and §5) with Pyroscope's reserved labels, and interns the
// profile's symbols and stacks into a batch-wide, de-duplicated table. Also home of the small
// interning tables that the head (format/head.hpp) reuses for the same job across batches.

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "format/block.hpp"
#include "format/error.hpp"
#include "format/pprof.hpp"

namespace hearth {

/// Per-series validation limits (defaults from Pyroscope, pyroscope-api.md §6).
struct normalize_limits {
  /// Labels per series, counting only names that do not start with `__` (so `service_name`,
  /// `pyroscope_spy` and promoted sample labels count; `__name__`, `__profile_type__`, `__type__`,
  /// `__unit__`, `__period_type__`, `__period_unit__`, `__service_name__`, `__delta__` do not).
  /// Exceeding it rejects the profile (bad_labels).
  size_t max_labels = 30;
  size_t max_label_name_len = 1024;   ///< bytes; longer names reject the profile
  size_t max_label_value_len = 2048;  ///< bytes; longer values reject the profile
  /// Most locations in one sample's stack; what happens to a deeper one is `depth_policy`'s.
  size_t max_stack_depth = 1000;
  /// reject: a stored sample (one with locations and a non-zero value) with a deeper stack fails
  /// the whole profile (invalid_argument, naming the sample, its depth and the limit).
  /// truncate: as Pyroscope does, the root side is kept and the leaf-most frames beyond the limit
  /// are dropped (so flame graphs keep their shape near the root).
  enum class stack_depth_policy : uint8_t { reject, truncate } depth_policy = stack_depth_policy::reject;
  /// Longer function names / system names / file names are truncated to their *last* bytes (as
  /// Pyroscope does: the tail of a path or a qualified name is the informative part), never
  /// splitting a UTF-8 sequence.
  size_t max_symbol_len = 65535;
};

/// What the request says about a profile besides its pprof bytes.
struct ingest_meta {
  /// For source::ingest: the output of parse_app_name() (app name under `__name__`). For
  /// source::push: the series labels of a RawProfileSeries. Names must be unique.
  label_set labels;
  int64_t time_ns = 0;      ///< 0: use the pprof's time_nanos (and 0 when that is absent too)
  int64_t duration_ns = 0;  ///< 0: use the pprof's duration_nanos
  uint64_t id_hi = 0;       ///< profile id (UUID) for replica de-duplication
  uint64_t id_lo = 0;
  std::string spy_name;  ///< /ingest `spyName`; stored as `pyroscope_spy` when non-empty
  /// Which API the profile came from; decides how `__name__` and `service_name` are found.
  enum class source : uint8_t { ingest, push } from = source::push;
  /// /ingest only: the `sample_type_config` form part as (sample type, display-name) pairs. When
  /// set it replaces the default display-name table used to derive `__name__` (see
  /// ingest_metric_name()).
  std::optional<std::vector<std::pair<std::string, std::string>>> display_names;
};

/// The profile name (`__name__`) Pyroscope derives for a pprof uploaded to /ingest (PY
/// `pkg/og/convert/pprof/profile.go` metricName), from the sample types in order:
///   1. any sample type equal to `wall`                       -> `wall`
///   2. otherwise, first sample type whose display name (below) matches:
///      contains `cpu` -> `process_cpu`; contains `alloc_` or `inuse_`, or equals `space` or
///      `objects` -> `memory`; contains `mutex_` -> `mutex`; contains `block_` -> `block`;
///      contains `goroutines` -> `goroutines`
///   3. otherwise the display name of the last sample type (e.g. Go `threadcreate`)
/// Default display names (when no sample_type_config was sent): `samples`->`cpu`,
/// `goroutine`->`goroutines`, `contentions`->`mutex_count`, `delay`->`mutex_duration`; others are
/// their own display name. So a Go block profile without a config becomes `mutex` (as in
/// Pyroscope); the Go SDK sends `block_count`/`block_duration` display names for it -> `block`.
std::string ingest_metric_name(const pprof::profile& p,
                               const std::vector<std::pair<std::string, std::string>>* display_names);

/// Hash helpers shared by the interning tables.
inline uint64_t hash_mix(uint64_t h, uint64_t v) {
  h ^= v + 0x9e3779b97f4a7c15ULL + (h << 6) + (h >> 2);
  h ^= h >> 31;
  h *= 0xbf58476d1ce4e5b9ULL;
  return h ^ (h >> 29);
}
uint64_t hash_bytes(std::string_view s);

/// An open-addressing hash set of 32-bit ids whose keys live elsewhere (in the vectors being
/// interned into). Only ids and hashes are stored, so growing those vectors (which moves SSO
/// strings) never leaves a dangling key. Thread-safety: none (a value type).
class intern_table {
 public:
  /// Returns the id whose key has hash `h` and satisfies `eq(id)`; if none, inserts and returns
  /// `make()` (which must append the key to the backing store and return its id).
  template <class Eq, class Make>
  uint32_t find_or_insert(uint64_t h, Eq&& eq, Make&& make) {
    if ((size_ + 1) * 2 > slots_.size()) grow();
    const uint32_t h32 = fold(h);
    const size_t mask = slots_.size() - 1;
    for (size_t i = h32 & mask;; i = (i + 1) & mask) {
      slot& s = slots_[i];
      if (s.id_plus_one == 0) {
        uint32_t id = make();
        s = slot{h32, id + 1};
        ++size_;
        return id;
      }
      if (s.hash == h32 && eq(s.id_plus_one - 1)) return s.id_plus_one - 1;
    }
  }
  size_t size() const { return size_; }
  /// Loads the slot where a lookup of hash `h` starts into the cache (a hint; no effect).
  void prefetch(uint64_t h) const {
    if (!slots_.empty()) __builtin_prefetch(&slots_[fold(h) & (slots_.size() - 1)]);
  }
  /// The id in one of the first two slots a lookup of `h` probes whose hash matches, or
  /// UINT32_MAX: the key a lookup would most likely compare, to prefetch it.
  uint32_t candidate(uint64_t h) const {
    if (slots_.empty()) return UINT32_MAX;
    const uint32_t h32 = fold(h);
    const size_t mask = slots_.size() - 1;
    for (size_t k = 0, i = h32 & mask; k < 2; ++k, i = (i + 1) & mask) {
      const slot& s = slots_[i];
      if (s.id_plus_one == 0) break;
      if (s.hash == h32) return s.id_plus_one - 1;
    }
    return UINT32_MAX;
  }
  /// Makes room for `n` ids in all without growing again (one allocation instead of a doubling
  /// series when the final size is known up front).
  void reserve(size_t n);
  /// Empties the table and frees its memory.
  void clear() {
    slots_.clear();
    slots_.shrink_to_fit();
    size_ = 0;
  }
  /// Empties the table but keeps its slots for the next use, unless they are many (a table
  /// reused per request should not pin the memory of the largest request forever).
  void reset();
  size_t bytes_estimate() const { return slots_.capacity() * sizeof(slot); }

 private:
  struct slot {
    uint32_t hash = 0;
    uint32_t id_plus_one = 0;  ///< 0 = empty
  };
  static uint32_t fold(uint64_t h) { return static_cast<uint32_t>(h ^ (h >> 32)); }
  void grow();
  void rehash(size_t cap);  // cap: a power of two above 2 * size_

  std::vector<slot> slots_;
  size_t size_ = 0;
};

/// An open-addressing map from a pair of 32-bit ids (a stack node's parent and location) to a
/// 32-bit id. The key is kept in the slot, so a lookup reads no other memory: the store the ids
/// index (a large stack tree) is mostly out of cache, and a key compared there would cost two more
/// misses per lookup. Thread-safety: none (a value type).
class pair_table {
 public:
  /// The id of (a, b); if absent, inserts and returns `make()`, the new id.
  template <class Make>
  uint32_t find_or_insert(uint32_t a, uint32_t b, Make&& make) {
    if ((size_ + 1) * 2 > slots_.size()) rehash(slots_.empty() ? 1024 : slots_.size() * 2);
    const uint64_t key = uint64_t{a} << 32 | b;
    const size_t mask = slots_.size() - 1;
    for (size_t i = start(key);; i = (i + 1) & mask) {
      slot& s = slots_[i];
      if (s.id_plus_one == 0) {
        const uint32_t id = make();
        s = slot{key, id + 1};
        ++size_;
        return id;
      }
      if (s.key == key) return s.id_plus_one - 1;
    }
  }
  size_t size() const { return size_; }
  /// Makes room for `n` ids without growing again.
  void reserve(size_t n);
  /// Empties the table and frees its memory.
  void clear();
  size_t bytes_estimate() const { return slots_.capacity() * sizeof(slot); }

 private:
  struct slot {
    uint64_t key = 0;
    uint32_t id_plus_one = 0;  ///< 0 = empty
  };
  size_t start(uint64_t key) const {
    return static_cast<size_t>((key * 0x9e3779b97f4a7c15ULL) >> shift_);
  }
  void rehash(size_t cap);  // cap: a power of two above 2 * size_

  std::vector<slot> slots_;
  size_t size_ = 0;
  int shift_ = 64;  // 64 - log2(slots_.size())
};

/// Interns strings, mappings, functions and locations (with their line runs) into a `symbols`
/// table, de-duplicating by value: strings by bytes, mappings by all their fields, functions by
/// (name, system_name, filename, start_line), locations by (mapping, address, lines). Used by
/// batch_builder (pprof -> batch), by the head (batch -> block) and by merge_blocks. Requires:
/// every call passes the same `symbols` object, which nobody else appends to. Thread-safety: none.
class symbol_interner {
 public:
  uint32_t string(symbols& s, std::string_view v);
  /// The same, for a caller that has `hash` = hash_bytes(v) already.
  uint32_t string(symbols& s, std::string_view v, uint64_t hash);
  /// out[i] = string(s, vs[i]) for every string, in order, with the lookups overlapping (as
  /// locations() does). Requires: out.size() == vs.size().
  void strings(symbols& s, std::span<const std::string_view> vs, std::span<uint32_t> out);
  /// out[i] = function(s, fs[i]) for every function, in order, the lookups overlapping.
  /// Requires: out.size() == fs.size().
  void functions(symbols& s, std::span<const function_rec> fs, std::span<uint32_t> out);
  /// Returns the mapping's 1-based id (as location_rec::mapping stores it).
  uint32_t mapping(symbols& s, const mapping_rec& m);
  uint32_t function(symbols& s, const function_rec& f);
  /// `mapping` is a 1-based id from mapping(), or 0 for none.
  uint32_t location(symbols& s, uint64_t address, std::span<const line_rec> lines,
                    uint32_t mapping = 0);
  /// A location for locations(): its lines are lines[line_begin, line_begin + line_count) of the
  /// span passed along.
  struct location_key {
    uint64_t address = 0;
    uint32_t mapping = 0;
    uint32_t line_begin = 0;
    uint32_t line_count = 0;
  };
  /// out[i] = location(s, keys[i]...) for every key, in order. The lookups overlap: each key's
  /// table slot, stored location and stored lines are loaded into the cache a few keys ahead, so
  /// interning many locations into a large table (merging two exports' partials, 100k+
  /// locations each) waits for about one cache miss per location instead of three in a row.
  /// Requires: out.size() == keys.size(); every key's lines within `lines`.
  void locations(symbols& s, std::span<const location_key> keys, std::span<const line_rec> lines,
                 std::span<uint32_t> out);
  /// Indexes an existing table (after clear()), so later calls de-duplicate against it.
  void index(const symbols& s);
  /// Makes room for that many distinct strings, mappings, functions and locations.
  void reserve(size_t strings, size_t mappings, size_t functions, size_t locations);
  void clear();
  /// clear(), but keeps the tables' memory (see intern_table::reset).
  void reset();
  size_t bytes_estimate() const;

 private:
  uint32_t function(symbols& s, const function_rec& f, uint64_t hash);
  uint32_t location(symbols& s, uint64_t address, std::span<const line_rec> lines, uint32_t mapping,
                    uint64_t hash);
  static uint32_t append_location(symbols& s, uint64_t address, std::span<const line_rec> lines,
                                  uint32_t mapping);

  intern_table strings_, mappings_, functions_, locations_;
};

/// Builds one ingest_batch from any number of decoded profiles (e.g. all series of one Push
/// request), sharing and de-duplicating symbols and stacks (stacks by their location sequence)
/// across them. Each add() either appends all series of the profile or, on error, leaves the
/// batch unchanged. Thread-safety: none (one request handler owns it).
///
/// Series rules (pyroscope-api.md §3.3, §5): for each pprof sample type, one series per distinct
/// set of *string* sample labels (promoted to series labels; request labels win on conflict;
/// `span_id`, `trace_id`, `profile_id` and numeric labels are not promoted). Every series gets
/// `__name__`, `__profile_type__` = `<name>:<type>:<unit>:<period type>:<period unit>`,
/// `__type__`, `__unit__`, `__period_type__`, `__period_unit__`, `service_name` and
/// `__service_name__`; /ingest adds `__delta__="false"` and `pyroscope_spy`. Pyroscope's default
/// relabel rules are applied: `godeltaprof_X` -> `X` (with `__delta__="false"`), and `wall` ->
/// `process_cpu` for the `__type__="cpu"` series (both record the old name in
/// `__name_replaced__`). `__session_id__` is dropped (max_sessions_per_series = 0).
/// For source::ingest, request labels starting with `__` are dropped, `__name__` comes from
/// ingest_metric_name() and `service_name` is the app name unless given as a label. For
/// source::push, `__name__` must be among the labels and `service_name` defaults to
/// `unknown_service`. Samples without locations or with a zero value are skipped; identical stacks
/// within a series are summed; series left without samples are not emitted.
/// A sample's `span_id` label (or, failing that, its `profile_id` label, which Pyroscope renames
/// to `span_id`) that parse_span_id() accepts also lands in ingest_series::spans, summed per
/// (stack, span id); other values are ignored. Every series keeps the pprof's period.
class batch_builder {
 public:
  explicit batch_builder(std::string tenant = {}, normalize_limits lim = {});
  /// Continues an existing batch (indexes its symbols and stacks: linear in its size).
  batch_builder(ingest_batch existing, normalize_limits lim);

  /// Appends the series of one profile. Fails with bad_labels (invalid/duplicate/too long/too
  /// many labels, missing `__name__` on push), bad_pprof (dangling ids) or invalid_argument (a
  /// stack over max_stack_depth under stack_depth_policy::reject), naming the problem.
  [[nodiscard]] status add(const pprof::profile& p, const ingest_meta& m);

  /// Appends the series of a profile that /ingest converted from another format (folded/lines
  /// text, JFR), whose profile name the converter decides (pyroscope-api.md §3.3): `__name__` =
  /// `metric_name`, `__delta__="false"`, `pyroscope_spy` = m.spy_name (when not empty), the
  /// request labels not starting with `__`, and `service_name` = `app` unless the request gave
  /// one, in which case `app_name` = `app` (unless given too). Otherwise as add(); `m.from` and
  /// `m.display_names` are not used.
  [[nodiscard]] status add_converted(const pprof::profile& p, const ingest_meta& m,
                                     std::string_view metric_name, std::string_view app);

  /// Drops the batch being built (if any) and starts an empty one for `tenant` with `lim`, keeping
  /// the memory of the tables and scratch unless a huge profile made them large: a builder kept per
  /// thread skips allocating them again for every request.
  void start(std::string tenant, const normalize_limits& lim);

  /// The batch being built (for inspection).
  const ingest_batch& batch() const { return batch_; }
  /// Moves the batch out and resets the builder (keeping the tenant and limits).
  ingest_batch finish();

 private:
  uint32_t intern_stack(std::span<const uint32_t> locs);
  /// Extends batch_.string_hashes to all of batch_.syms.strings.
  void hash_strings();

  normalize_limits lim_;
  ingest_batch batch_;
  symbol_interner syms_;
  intern_table stacks_;
  std::vector<uint32_t> stack_slot_;  // scratch: stack -> sample index in the current series
  // Per-add scratch, members so that their memory is reused by the next add().
  std::vector<uint32_t> str_map_;  // pprof string index -> batch string id (UINT32_MAX: not yet)
  std::vector<uint32_t> fn_map_, loc_map_, mapping_map_, group_of_, group_count_, by_group_,
      sample_stack_, fill_, locs_, loc_index_;
  std::vector<uint8_t> nonempty_, loc_valid_;
  std::vector<line_rec> line_scratch_;
  std::vector<uint64_t> sample_span_;  // sample -> its span id, 0 = none (empty: no sample has one)
};

/// Appends one decoded profile's series to `out`, de-duplicating against the symbols already in
/// it. Convenience for a single profile: it re-indexes `out` on every call, so prefer
/// batch_builder for many profiles. On error `out` is unchanged.
[[nodiscard]] status append_profile(const pprof::profile& p, const ingest_meta& m,
                                    const normalize_limits& lim, ingest_batch& out);

/// A span id as pprof sample labels and Pyroscope requests spell it: exactly 16 hex digits (either
/// case), read as a big-endian u64. nullopt for anything else and for the all-zero id (no span).
std::optional<uint64_t> parse_span_id(std::string_view s);

/// Sorts span samples by (stack, span id), sums the values of equal pairs (wrapping) and drops
/// pairs that sum to 0: the canonical form ingest_series::spans and block_data::spans keep.
void sum_span_samples(std::vector<span_sample>& spans);

/// True when `s` is well-formed UTF-8.
bool valid_utf8(std::string_view s);

}  // namespace hearth
