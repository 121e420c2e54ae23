#pragma once
// SelectSeries (pyroscope-api.md §2.7): per-profile values of the selected series summed into
// points on a step grid, grouped by label values, as a mergeable partial per block and a final
// render with SUM/AVERAGE and the top-K limit. Without a call site it reads only profile rows
// (profile_row::total), never sample columns.
// Grid (Pyroscope's RangeSeries): points at origin, origin + step, ... (unix ms); a profile at
// ts (ms) lands on the first grid point >= ts; profiles beyond the last grid point <= the range
// end are dropped. Pyroscope's query frontend moves the origin, and the selected range, one step
// before the request start: series_range() does that.
// Pure and deterministic.

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "format/block.hpp"
#include "query/block_query.hpp"

namespace hearth::query {

/// What to compute, shared by every block of one query.
struct series_request {
  /// The selected range, half-open [start_ns, end_ns); start_ns is also the grid origin.
  int64_t start_ns = 0;
  int64_t end_ns = 0;
  int64_t step_ns = 0;                ///< grid step; Requires: >= 1 ms (1'000'000)
  std::vector<std::string> group_by;  ///< label names the output series are keyed by
  /// StackTraceSelector.call_site (root first). Non-empty: a profile's value is the sum of its
  /// samples whose stack starts with this prefix (block_query.hpp stacks_with_prefix), which
  /// reads the sample columns; empty: profile_row::total.
  std::vector<std::string> call_site;
  /// Also pick each point's exemplar (Pyroscope's EXEMPLAR_TYPE_INDIVIDUAL).
  bool exemplars = false;
};

/// A point's exemplar: the profile with the highest value among those summed into the point
/// (ties: the earlier, then the lower id), as Pyroscope keeps one exemplar per point.
struct exemplar {
  int64_t time_ms = 0;  ///< the profile's own timestamp
  int64_t value = 0;    ///< its value in the point (its total, or its call-site part)
  uint64_t id_hi = 0;   ///< its profile id (format/uuid.hpp)
  uint64_t id_lo = 0;
  /// Its series' labels minus the group_by ones and the internal `__...__` ones, sorted.
  label_set labels;
  friend bool operator==(const exemplar&, const exemplar&) = default;
};

/// Whether `a` is the better exemplar: higher value, then earlier, then lower id.
bool better_exemplar(const exemplar& a, const exemplar& b);

/// The request range and grid of a SelectSeries request in unix ms (start and end inclusive,
/// step in ms as Pyroscope truncates `step` seconds) as Pyroscope's query frontend sets it up:
/// origin and selected range begin one step before `start_ms`.
series_request series_range(int64_t start_ms, int64_t end_ms, int64_t step_ms);

/// One block's (or several merged blocks') points, keyed by group and grid timestamp.
/// Group g's label values are group_values[g * group_by.size() + k] for the k-th group_by name
/// ("" = the series lacks the label); its points are [g == 0 ? 0 : group_end[g - 1],
/// group_end[g]): point i at point_ms[i], with point_sum[i] the sum of point_count[i] profile
/// values. Every group has a point; points are sorted by time within their group and unique;
/// groups are sorted by their values and unique. Compact, as a day of 10k series is 14 M
/// points: no group id per point, and no counts while every point sums one profile.
/// A plain value type: copyable, only ints and strings, fit for an actor message.
struct series_partial {
  std::vector<std::string> group_values;
  std::vector<uint64_t> group_end;
  std::vector<int64_t> point_ms;
  std::vector<int64_t> point_sum;
  /// Empty when every point sums exactly one profile; otherwise one count per point.
  std::vector<int64_t> point_count;
  /// With series_request::exemplars: point i's exemplar; otherwise empty.
  std::vector<exemplar> point_exemplar;
  size_t groups() const { return group_end.size(); }
  size_t points() const { return point_ms.size(); }
  bool empty() const { return group_end.empty(); }
  int64_t count(size_t i) const { return point_count.empty() ? 1 : point_count[i]; }
  friend bool operator==(const series_partial&, const series_partial&) = default;
};

/// Adds the profiles of `series` (ids from select_series) in [req.start_ns, req.end_ns) to
/// `out`, which must hold the partial of the same request (or be empty). The block may hold its
/// rows as columns (block_data::rows) unless the request has a call site (which reads samples)
/// or asks for exemplars (which read profile ids; from columns, every exemplar is empty).
void select_series_points(const block_data& block, std::span<const uint32_t> series,
                          const series_request& req, series_partial& out);

/// Merges `parts` (emptied) into `into`; all from the same request. Exact (integer sums and
/// counts). One pass over all of them, whatever their number: their group lists are merged once
/// (partials with the same groups, as a query's blocks mostly have, share one mapping) and each
/// group's points sorted only when the partials' times overlap. A partial whose vectors disagree
/// in size, or whose group ends do not cut its points into non-empty runs, is dropped (it can
/// only come from a faulty peer).
void merge_series(series_partial& into, std::vector<series_partial>& parts);

/// How partials become the response.
enum class series_aggregation : uint8_t {
  sum,      ///< point value = sum of the profile values in the bucket
  average,  ///< point value = their mean (Pyroscope v1; v2 sums whatever is asked)
};

/// One output point: 16 bytes, as a day of 10k series is 14.4 M of them.
struct series_point {
  int64_t timestamp_ms = 0;
  double value = 0;
  friend bool operator==(const series_point&, const series_point&) = default;
};

/// One output series: the group_by labels it carries (sorted by name; absent ones omitted) and
/// its points sorted by time.
struct series {
  label_set labels;
  std::vector<series_point> points;
  /// Only when exemplars were asked for: point i's exemplar, whose profile id is zero when the
  /// point has none (every profile of it lacked an id); otherwise empty.
  std::vector<exemplar> exemplars;
  friend bool operator==(const series&, const series&) = default;
};

/// The final series as Pyroscope's TopSeries orders them: by the sum of their point values,
/// descending, then by labels; with limit > 0 only the first `limit`. Groups with equal label sets
/// (group_by names repeated, or several absent labels) are one series.
std::vector<series> render_series(const series_partial& p, std::span<const std::string> group_by,
                                  series_aggregation aggregation, int64_t limit);

/// render_series of the merge of `parts` (emptied; a partial not in the documented form with
/// group_by.size() values per group is dropped). With SUM and a limit, the series' totals are
/// summed straight from the partials and only the kept series' points are merged, unless values
/// are so large (2^52 in magnitude) that doubles could rank series differently.
std::vector<series> render_series(std::vector<series_partial>& parts,
                                  std::span<const std::string> group_by,
                                  series_aggregation aggregation, int64_t limit);

}  // namespace hearth::query
