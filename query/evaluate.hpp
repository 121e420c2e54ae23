#pragma once
// One read query end to end, as pure code: what a reader evaluates over blocks (`query_spec`), the
// partial it produces (`partial`), and how partials of many blocks, partitions and tenants merge
// (`merger`). The actors only move these values around: a partition or reader feeds blocks to an
// `evaluator`; the query frontend feeds partials to a `merger` and renders from it.
// Pure and deterministic; no CAF, no I/O.

#include <cstdint>
#include <set>
#include <span>
#include <string>
#include <vector>

#include "format/block.hpp"
#include "format/error.hpp"
#include "query/block_query.hpp"
#include "query/flame_tree.hpp"
#include "query/frame_dict.hpp"
#include "query/pprof_export.hpp"
#include "query/series_query.hpp"
#include "query/stats.hpp"

namespace hearth::query {

/// What a selection computes per block. On the wire between nodes: never renumber.
enum class query_kind : uint8_t {
  merge_stacks = 1,  ///< flame tree (+ per-profile totals for a timeline)
  label_names = 2,
  label_values = 3,
  profile_types = 4,
  series_labels = 5,  ///< Series RPC: label sets of matching series
  select_series = 6,  ///< SelectSeries: points on a step grid by group
  merge_pprof = 7,    ///< SelectMergeProfile: full-fidelity merged samples and symbols
  profile_stats = 8,  ///< GetProfileStats: whole tenant, no selector
  analyze = 9,        ///< AnalyzeQuery: what the selection would read
};

/// One selection: a plain value fit for an actor message. Ranges are half-open [start, end).
struct query_spec {
  uint8_t kind = 0;          ///< query_kind
  std::string profile_type;  ///< __profile_type__ to match; empty = any
  std::string selector;      ///< Prometheus selector text, "{}" = all
  std::string label_name;    ///< label_values
  int64_t start_ns = 0;
  int64_t end_ns = 0;
  /// Rollup blocks with a step up to this may answer fully covered buckets (0: raw data only).
  int64_t max_rollup_step_ns = 0;
  std::vector<std::string> call_site;    ///< StackTraceSelector.call_site, root first
  std::vector<std::string> label_names;  ///< series_labels: projection (empty = all labels)
  int64_t step_ns = 0;                   ///< select_series grid step
  std::vector<std::string> group_by;     ///< select_series
  bool pgo = false;                      ///< merge_pprof: GoPGO trimming (call_site ignored)
  uint32_t pgo_keep_locations = 0;
  bool pgo_aggregate_callees = false;
  bool want_points = false;  ///< merge_stacks: also (time, total) per profile (+ group_by[0] value)
  /// merge_stacks / merge_pprof: sorted, unique span ids; non-empty: only the values of span
  /// samples with one of these ids count (SelectMergeSpanProfile, span_selector). Rollups, which
  /// keep no span samples, must not answer such a query.
  std::vector<uint64_t> span_ids;
  /// merge_stacks / merge_pprof: profile ids as (hi, lo) word pairs, sorted by pair, unique;
  /// non-empty: only these profiles count (profile_id_selector). Rollups keep no profile ids and
  /// must not answer such a query.
  std::vector<uint64_t> profile_ids;
  /// select_series: also the highest-valued profile of every point (EXEMPLAR_TYPE_INDIVIDUAL).
  /// Rollups keep no profile ids and must not answer such a query.
  bool exemplars = false;
};

/// How much of a block evaluating a query reads. Ordered: a block decoded deeper answers too.
enum class block_depth : uint8_t {
  /// Strings, series and the rows' series, times and totals (decode_segment_rows,
  /// row_fields::columns): labels, Series, profile types, stats, SelectSeries without a call
  /// site or exemplars.
  row_columns,
  /// ... and every field of the rows (row_fields::all): AnalyzeQuery (sample counts),
  /// SelectSeries with exemplars (profile ids).
  rows,
  /// The whole block (decode_segment): everything that reads samples.
  whole,
};

/// What evaluating `spec` reads of a block.
block_depth depth_needed(const query_spec& spec);

/// Which rollup of a raw block answers part of a selection (format/compact.hpp, rollups).
struct rollup_choice {
  size_t index = SIZE_MAX;  ///< into the steps given to choose_rollup; SIZE_MAX = none
  int64_t lo_ns = 0;        ///< the rollup answers the buckets [lo_ns, hi_ns) ...
  int64_t hi_ns = 0;        ///< ... the raw block the selected rows outside them
};

/// The coarsest rollup (by step, among `steps_ns`, each > 0) that may answer `spec` and whose
/// buckets lying wholly inside [start_ns, end_ns) are not empty. Only a flame graph or a pprof
/// export may read rollups (merge_stacks or merge_pprof, without a call site, span ids or profile
/// ids, steps up to max_rollup_step_ns): they keep per-bucket sums, no ids and no span samples.
/// An export may read only rollups whose rows keep their profiles' first time and last end
/// (segment_exact_rollup_times_version); the caller passes only those steps.
rollup_choice choose_rollup(const query_spec& spec, std::span<const int64_t> steps_ns);

/// Whether a raw block whose rows lie in [min_time_ns, max_time_ns] (its footer) has a row of
/// [spec.start_ns, spec.end_ns) outside the chosen rollup's buckets: when not, the rollup answers
/// for the whole block and the raw block need not be read.
bool raw_rows_outside(const query_spec& spec, const rollup_choice& c, int64_t min_time_ns,
                      int64_t max_time_ns);

/// A name-keyed call tree in flat form: node i has parent parents[i] (node 0 = root, its own
/// parent), name names[name_ids[i]] and self value selfs[i]. Parents precede children.
struct flat_tree {
  std::vector<std::string> names;
  std::vector<uint32_t> parents;
  std::vector<uint32_t> name_ids;
  std::vector<int64_t> selfs;
};

/// Flattens `t`, moving its names out (`t` is spent).
void to_flat(flame_tree&& t, flat_tree& out);
/// Adds a flat tree into `into` by name paths. A malformed node (a parent that does not precede
/// it, an unknown name) is attached at the root / named "?" instead of failing.
void merge_flat(const flat_tree& p, flame_tree& into);

/// One block's merge_stacks sums per stack node, with the block's frame map: a merger adds them
/// into one array per frame dictionary instead of merging name paths. Node-local (the map points
/// into this process's dictionary): a partial leaving the process is made portable first.
struct frame_part {
  std::shared_ptr<const block_frames> frames;
  stack_sums sums;
};

/// What the AnalyzeQuery RPC reports about a selection.
struct analyze_counts {
  uint64_t blocks = 0;    ///< blocks (sealed or head) overlapping the range
  uint64_t series = 0;    ///< series matching the selector in those blocks
  uint64_t profiles = 0;  ///< their profiles in the range
  uint64_t samples = 0;   ///< their (stack, value) pairs
  uint64_t bytes = 0;     ///< bytes of the overlapping segment files
};

/// One evaluator's (or several merged) contribution to a query.
struct partial {
  flat_tree tree;
  /// merge_stacks: blocks evaluated through their frame maps; they add to `tree`.
  std::vector<frame_part> frame_parts;
  std::vector<std::string> values;  ///< label names/values/profile types, sorted unique
  std::vector<label_set> label_sets;
  series_partial series;
  pprof_partial pprof;
  profile_stats stats;
  std::vector<int64_t> point_times_ns;  ///< merge_stacks with want_points: per profile
  std::vector<int64_t> point_values;
  /// With want_points and group_by: each point's value of label group_by[0] ("" = absent).
  std::vector<std::string> point_groups;
  analyze_counts counts;
};

/// Folds `p.frame_parts` into `p.tree`, so that `p` means the same in any process (what a
/// partial sent to another node must be).
void make_portable(partial& p);

/// Evaluates one query_spec over blocks, accumulating a partial. Not thread-safe (a value).
class evaluator {
 public:
  /// Compiles the selector (+ the profile-type matcher). Errors: bad_selector,
  /// unknown_profile_type, invalid_argument (unknown kind, step < 1 ms).
  static result<evaluator> make(const query_spec& spec);

  const query_spec& spec() const { return spec_; }
  query_kind kind() const { return static_cast<query_kind>(spec_.kind); }

  /// Adds the part of `b` with profile times in [start, end) ∩ the query's range. A raw block
  /// may be added in pieces with a rollup of it in between (see partition evaluate).
  /// With `frames` (the block's frame map, frame_dict::map), a merge_stacks selection keeps the
  /// block's sums per stack node (partial::frame_parts) instead of expanding them into the tree.
  void add(const block_data& b, int64_t start_ns, int64_t end_ns,
           std::shared_ptr<const block_frames> frames = nullptr);
  void add(const block_data& b, std::shared_ptr<const block_frames> frames = nullptr) {
    add(b, spec_.start_ns, spec_.end_ns, std::move(frames));
  }
  /// The series of `b` whose pairs add() reads, by id (block_store::get's `reads`): those the
  /// selector matches for the kinds that read pairs of selected series only, every series for
  /// the others.
  std::vector<bool> series_read(const block_data& b) const;
  /// For `analyze`: a block of `bytes` on disk overlaps the range.
  void note_block(uint64_t bytes) {
    ++counts_.blocks;
    counts_.bytes += bytes;
  }

  /// The accumulated partial; the evaluator is spent afterwards.
  partial finish() &&;

 private:
  evaluator() = default;

  query_spec spec_;
  std::vector<matcher> matchers_;
  series_request series_req_;
  pprof_selector pprof_sel_;
  flame_tree tree_;
  std::vector<frame_part> frame_parts_;
  std::set<std::string> values_;
  std::vector<label_set> label_sets_;
  std::vector<series_partial> series_parts_;  ///< one per block; merged at once in finish()
  pprof_builder pprof_;
  profile_stats stats_;
  std::vector<int64_t> point_times_, point_values_;
  std::vector<std::string> point_groups_;
  analyze_counts counts_;
};

/// One profile's contribution to a timeline.
struct timeline_point {
  int64_t time_ns = 0;
  int64_t value = 0;
  std::string group;  ///< the group_by[0] label value ("" = absent or no group_by)
  friend auto operator<=>(const timeline_point&, const timeline_point&) = default;
};

/// Merges partials of one query_spec (from any blocks, partitions, tenants). A value type.
class merger {
 public:
  void add(partial&& p);

  /// The merged tree (partials' frame parts are folded in on first use after an add).
  flame_tree& tree();
  std::vector<std::string> values() const { return {values_.begin(), values_.end()}; }
  const std::vector<label_set>& label_sets() const { return label_sets_; }
  /// The series response: query::render_series over the series partials, which it consumes
  /// (all merged at once; with a limit only the kept series' points are merged).
  std::vector<series> render_series(std::span<const std::string> group_by,
                                    series_aggregation aggregation, int64_t limit);
  /// The merged pprof partials (merged as they arrive, by one builder that keeps its indexes).
  const pprof_partial& pprof() const { return pprof_.partial(); }
  const profile_stats& stats() const { return stats_; }
  const analyze_counts& counts() const { return counts_; }
  /// Per-profile (time, total, group), sorted.
  std::vector<timeline_point> points() const;

  /// Per frame dictionary: the summed frame parts, by dictionary node.
  struct frame_sums {
    std::shared_ptr<const frame_dict> dict;
    std::vector<int64_t> sums;
    std::vector<bool> touched;
  };

 private:
  flame_tree tree_;
  std::vector<frame_sums> frame_sums_;
  std::set<std::string> values_;
  std::vector<label_set> label_sets_;
  std::vector<series_partial> series_parts_;
  pprof_builder pprof_;
  profile_stats stats_;
  std::vector<timeline_point> points_;
  analyze_counts counts_;
};

}  // namespace hearth::query
