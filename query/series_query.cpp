#include "query/series_query.hpp"

#include <algorithm>
#include <cassert>
#include <map>
#include <numeric>
#include <optional>
#include <string_view>
#include <unordered_map>

namespace hearth::query {
namespace {

constexpr int64_t ns_per_ms = 1'000'000;

int64_t floor_div(int64_t a, int64_t b) {
  return a / b - ((a % b != 0) && ((a < 0) != (b < 0)));
}

/// Series `id`'s labels without the group_by ones and the internal `__...__` ones (an exemplar's).
label_set exemplar_labels(const block_data& b, uint32_t id, std::span<const std::string> group_by) {
  label_set out;
  const series_rec& s = b.series[id];
  if (uint64_t{s.label_begin} + s.label_count > b.labels.size()) return out;
  for (uint32_t i = 0; i < s.label_count; ++i) {
    const label_ref& l = b.labels[s.label_begin + i];
    if (l.name >= b.syms.strings.size() || l.value >= b.syms.strings.size()) continue;
    const std::string& name = b.syms.strings[l.name];
    if (name.starts_with("__") && name.ends_with("__")) continue;
    if (std::find(group_by.begin(), group_by.end(), name) != group_by.end()) continue;
    out.push_back({name, b.syms.strings[l.value]});
  }
  std::sort(out.begin(), out.end());
  return out;
}

/// A candidate exemplar before its labels are looked up: (value, time, id) of a block row.
struct candidate {
  int64_t value = 0;
  uint32_t row = UINT32_MAX;  ///< UINT32_MAX: none yet
};

bool better_row(const block_data& b, int64_t va, uint32_t a, int64_t vb, uint32_t bi) {
  if (bi == UINT32_MAX) return true;
  const profile_row& x = b.profiles[a];
  const profile_row& y = b.profiles[bi];
  if (va != vb) return va > vb;
  if (x.time_ns != y.time_ns) return x.time_ns < y.time_ns;
  return std::pair{x.id_hi, x.id_lo} < std::pair{y.id_hi, y.id_lo};
}

struct pair_hash {
  size_t operator()(const std::pair<uint32_t, int64_t>& p) const {
    uint64_t x = (uint64_t{p.first} << 40) ^ static_cast<uint64_t>(p.second);
    x ^= x >> 31;
    x *= 0x9e3779b97f4a7c15ULL;
    return static_cast<size_t>(x ^ (x >> 29));
  }
};

}  // namespace

bool better_exemplar(const exemplar& a, const exemplar& b) {
  if (a.value != b.value) return a.value > b.value;
  if (a.time_ms != b.time_ms) return a.time_ms < b.time_ms;
  return std::pair{a.id_hi, a.id_lo} < std::pair{b.id_hi, b.id_lo};
}

series_request series_range(int64_t start_ms, int64_t end_ms, int64_t step_ms) {
  const ns_range r = ns_range_from_ms(start_ms - step_ms, end_ms);
  series_request req;
  req.start_ns = r.start_ns;
  req.end_ns = r.end_ns;
  req.step_ns = step_ms * ns_per_ms;
  return req;
}

namespace {

/// The select_series groups of a block: per series its group's rank among the block's groups
/// (UINT32_MAX: not selected), and the ranks' keys in order. Series are keyed by the string ids
/// of their group_by values, so strings are compared once per distinct value tuple, not per
/// series; tuples spelling the same strings (an untrusted block may repeat a string) share a rank.
struct block_groups {
  std::vector<uint32_t> rank_of_series;
  std::vector<std::vector<std::string_view>> keys;  ///< into the block's strings
};

block_groups group_series(const block_data& b, std::span<const uint32_t> series,
                          std::span<const std::string> group_by) {
  block_groups out;
  out.rank_of_series.assign(b.series.size(), UINT32_MAX);
  const auto& strings = b.syms.strings;
  const size_t width = group_by.size();
  // slot[i]: the first group_by position naming string i (-1: none); a repeated group_by name
  // copies the value of its first position.
  std::vector<int32_t> slot(width == 0 ? 0 : strings.size(), -1);
  std::vector<size_t> first_of(width);
  for (size_t k = 0; k < width; ++k) {
    first_of[k] = static_cast<size_t>(std::find(group_by.begin(), group_by.end(), group_by[k]) -
                                      group_by.begin());
    if (first_of[k] != k) continue;
    for (size_t i = 0; i < strings.size(); ++i)
      if (slot[i] < 0 && strings[i] == group_by[k]) slot[i] = static_cast<int32_t>(k);
  }
  // Distinct value-id tuples (0 = the empty string 0: an absent label) in first-seen order.
  std::vector<uint32_t> tuples;  // width ids per tuple
  std::vector<uint32_t> tuple_of_series(b.series.size(), UINT32_MAX);
  std::vector<uint32_t> by_value(width == 1 ? std::max<size_t>(strings.size(), 1) : 0,
                                 UINT32_MAX);          // width 1: id -> tuple
  std::unordered_map<std::string, uint32_t> by_bytes;  // width > 1
  std::vector<uint32_t> key(width);
  for (uint32_t id : series) {
    if (id >= b.series.size() || tuple_of_series[id] != UINT32_MAX) continue;
    std::fill(key.begin(), key.end(), 0);
    const series_rec& s = b.series[id];
    if (uint64_t{s.label_begin} + s.label_count <= b.labels.size())
      for (uint32_t i = 0; i < s.label_count; ++i) {
        const label_ref& l = b.labels[s.label_begin + i];
        if (l.name >= slot.size() || slot[l.name] < 0 || l.value >= strings.size()) continue;
        key[static_cast<size_t>(slot[l.name])] = l.value;
      }
    for (size_t k = 0; k < width; ++k) key[k] = key[first_of[k]];
    uint32_t t = 0;
    if (width == 1) {
      uint32_t& slot_t = by_value[key[0]];
      if (slot_t == UINT32_MAX) {
        slot_t = static_cast<uint32_t>(tuples.size());
        tuples.push_back(key[0]);
      }
      t = slot_t;
    } else if (width > 1) {
      std::string bytes(reinterpret_cast<const char*>(key.data()), width * sizeof(uint32_t));
      auto [it, added] =
          by_bytes.try_emplace(std::move(bytes), static_cast<uint32_t>(tuples.size() / width));
      if (added) tuples.insert(tuples.end(), key.begin(), key.end());
      t = it->second;
    } else if (tuples.empty()) {
      tuples.push_back(0);  // width 0: one group, no values
    }
    tuple_of_series[id] = t;
  }
  const size_t ntuples = width == 0 ? tuples.size() : tuples.size() / width;
  if (ntuples == 0) return out;
  // Tuples sorted by their strings; equal strings get one rank.
  const auto text = [&](uint32_t t) {
    std::vector<std::string_view> v(width);
    for (size_t k = 0; k < width; ++k)
      if (const uint32_t id = tuples[t * width + k]; id < strings.size()) v[k] = strings[id];
    return v;
  };
  std::vector<std::pair<std::vector<std::string_view>, uint32_t>> sorted;
  sorted.reserve(ntuples);
  for (uint32_t t = 0; t < ntuples; ++t) sorted.emplace_back(text(t), t);
  std::sort(sorted.begin(), sorted.end());
  std::vector<uint32_t> rank_of_tuple(ntuples);
  for (auto& [k, t] : sorted) {
    if (out.keys.empty() || out.keys.back() != k) out.keys.push_back(std::move(k));
    rank_of_tuple[t] = static_cast<uint32_t>(out.keys.size() - 1);
  }
  for (uint32_t id = 0; id < b.series.size(); ++id)
    if (tuple_of_series[id] != UINT32_MAX)
      out.rank_of_series[id] = rank_of_tuple[tuple_of_series[id]];
  return out;
}

/// The grid point of profile times visited mostly in order: point k (at origin + k * step) takes
/// the times (its time - step, its time], so a profile's point is mostly the previous profile's or
/// the next one, found without a division.
struct grid_cursor {
  int64_t origin_ms, step_ms;
  int64_t k = 0, t = INT64_MIN;
  int64_t index_of(int64_t ts_ms) const { return (ts_ms - origin_ms + step_ms - 1) / step_ms; }
  /// Moves to the point of a profile at `ts_ms`; returns its time (ms).
  int64_t at(int64_t ts_ms) {
    if (t == INT64_MIN || ts_ms > t + step_ms || ts_ms <= t - step_ms) {
      k = index_of(ts_ms);
      t = origin_ms + k * step_ms;
    } else if (ts_ms > t) {
      ++k;
      t += step_ms;
    }
    return t;
  }
};

/// A row's value through the call site whose stacks `keep` marks: false when it has none.
bool row_value(const block_data& block, const profile_row& p, const std::vector<bool>& keep,
               int64_t& value) {
  if (uint64_t{p.sample_begin} + p.sample_count > block.samples.size()) return false;
  bool any = false;
  value = 0;
  for (uint32_t i = 0; i < p.sample_count; ++i) {
    const sample_rec& s = block.samples[p.sample_begin + i];
    if (s.stack < keep.size() && keep[s.stack]) {
      value = wrapping_add(value, s.value);
      any = true;
    }
  }
  return any;  // without any, the profile has no stack through the call site
}

/// What every SelectSeries pass asks of a block's row: its series in a group (`rank`), its time
/// in the request's range and not past the last grid point, and with a call site (`keep`) a
/// stack through it.
struct row_selection {
  const block_data& block;
  row_view rows;
  const std::vector<uint32_t>& rank;
  const series_request& req;
  const std::vector<bool>& keep;
  int64_t last_ms;

  /// Whether `row` is selected; if so, its grid point's time (ms; `cursor.k` its index) and value.
  [[gnu::always_inline]] bool take(size_t row, grid_cursor& cursor, int64_t& t,
                                   int64_t& value) const {
    const uint32_t series = rows.series(row);
    const int64_t time_ns = rows.time_ns(row);
    if (series >= rank.size() || rank[series] == UINT32_MAX) return false;
    if (time_ns < req.start_ns || time_ns >= req.end_ns) return false;
    value = rows.total(row);
    if (!keep.empty() && !row_value(block, block.profiles[row], keep, value)) return false;
    t = cursor.at(floor_div(time_ns, ns_per_ms));
    return t <= last_ms;  // past the last grid point, as Pyroscope's RangeSeries drops it
  }
};

/// select_series_points when every group has one series (group_by names a label unique per
/// series, as `pod` usually is) and no exemplars are asked for: the rows of a sealed block are in
/// (series, time) order, so each series' points come out in order, one open point at a time, with
/// no grid to zero and scan. False (and `mine` untouched) when the rows are not in that order (a
/// head's are in arrival order); the caller then uses the grid.
bool stream_points(const row_selection& sel, const block_groups& groups, series_partial& mine) {
  const std::vector<uint32_t>& rank = groups.rank_of_series;
  const row_view& rows = sel.rows;
  std::vector<bool> taken(groups.keys.size(), false);
  for (uint32_t r : rank) {
    if (r == UINT32_MAX) continue;
    if (taken[r]) return false;  // two series in one group
    taken[r] = true;
  }
  grid_cursor grid{floor_div(sel.req.start_ns, ns_per_ms), sel.req.step_ns / ns_per_ms};
  struct run {
    uint32_t rank;
    size_t begin, end;  // its points in ms/sum/count
  };
  std::vector<run> runs;
  std::vector<bool> seen(rank.size(), false);
  // At most a point per row; written by index (a push_back per point was a tenth of the pass).
  // Counts only once a point sums two profiles (series_partial::point_count).
  std::vector<int64_t> ms(rows.size()), sum(rows.size()), count;
  size_t np = 0;
  uint32_t cur = UINT32_MAX;
  for (size_t row = 0; row < rows.size(); ++row) {
    int64_t t = 0, value = 0;
    if (!sel.take(row, grid, t, value)) continue;
    const uint32_t series = rows.series(row);
    if (series != cur) {
      if (seen[series]) return false;  // the series' rows are not contiguous
      seen[series] = true;
      cur = series;
      runs.push_back({rank[cur], np, np});
    } else if (t < ms[np - 1]) {  // the run has a point: its first row made one
      return false;               // the series' rows are not in time order
    }
    if (runs.back().end > runs.back().begin && ms[np - 1] == t) {
      sum[np - 1] = wrapping_add(sum[np - 1], value);
      if (count.empty()) count.assign(rows.size(), 1);
      ++count[np - 1];
    } else {
      ms[np] = t;
      sum[np] = value;
      ++np;
      ++runs.back().end;
    }
  }
  ms.resize(np);
  sum.resize(np);
  if (!count.empty()) count.resize(np);
  // Groups in rank order (the series' order already, when series ids follow their labels).
  const bool in_order = std::is_sorted(runs.begin(), runs.end(),
                                       [](const run& a, const run& b) { return a.rank < b.rank; });
  if (!in_order)
    std::sort(runs.begin(), runs.end(), [](const run& a, const run& b) { return a.rank < b.rank; });
  const size_t n = ms.size();
  if (in_order) {
    mine.point_ms = std::move(ms);
    mine.point_sum = std::move(sum);
    mine.point_count = std::move(count);
  } else {
    mine.point_ms.reserve(n);
    mine.point_sum.reserve(n);
    if (!count.empty()) mine.point_count.reserve(n);
  }
  mine.group_end.reserve(runs.size());
  size_t w = 0;
  for (const run& r : runs) {  // every run has a point: its first row made one
    for (std::string_view v : groups.keys[r.rank]) mine.group_values.emplace_back(v);
    w += r.end - r.begin;
    mine.group_end.push_back(w);
    if (in_order) continue;
    mine.point_ms.insert(mine.point_ms.end(), ms.begin() + static_cast<ptrdiff_t>(r.begin),
                         ms.begin() + static_cast<ptrdiff_t>(r.end));
    mine.point_sum.insert(mine.point_sum.end(), sum.begin() + static_cast<ptrdiff_t>(r.begin),
                          sum.begin() + static_cast<ptrdiff_t>(r.end));
    if (!count.empty())
      mine.point_count.insert(mine.point_count.end(),
                              count.begin() + static_cast<ptrdiff_t>(r.begin),
                              count.begin() + static_cast<ptrdiff_t>(r.end));
  }
  return true;
}

}  // namespace

void select_series_points(const block_data& block, std::span<const uint32_t> series,
                          const series_request& req, series_partial& out) {
  assert(req.step_ns >= ns_per_ms);
  if (series.empty() || row_count(block) == 0 || req.start_ns >= req.end_ns) return;
  const block_groups groups = group_series(block, series, req.group_by);
  if (groups.keys.empty()) return;
  const std::vector<uint32_t>& rank = groups.rank_of_series;

  const std::vector<bool> keep =
      req.call_site.empty() ? std::vector<bool>() : stacks_with_prefix(block, req.call_site);
  const auto merge_mine = [&out](series_partial&& mine) {
    if (out.empty()) {
      out = std::move(mine);
      return;
    }
    std::vector<series_partial> parts;
    parts.push_back(std::move(mine));
    merge_series(out, parts);
  };
  const row_view rows(block);
  const int64_t last_ms = floor_div(req.end_ns - 1, ns_per_ms);
  const row_selection sel{block, rows, rank, req, keep, last_ms};
  // Exemplars need the profile ids, which only full rows have (block_depth::rows); from columns
  // every point's exemplar is empty. Only the grid path gives exemplars.
  const bool exemplars = req.exemplars && !block.profiles.empty();
  if (!req.exemplars) {
    series_partial mine;
    if (stream_points(sel, groups, mine)) return merge_mine(std::move(mine));
  }
  const int64_t origin_ms = floor_div(req.start_ns, ns_per_ms);
  const int64_t step_ms = req.step_ns / ns_per_ms;
  grid_cursor cursor{origin_ms, step_ms};

  // Points are accumulated densely per (group rank, grid index) over the grid points the block's
  // time range can land on, else (a row outside the range the block claims, or too large a grid)
  // in a hash map; either way emitted in (group rank, time) order without a sort of points.
  const int64_t t_lo = std::max(block.min_time_ns, req.start_ns);
  const int64_t t_hi = std::min(block.max_time_ns, req.end_ns - 1);
  int64_t k_lo = 0, k_hi = -1;
  if (t_lo <= t_hi && last_ms >= origin_ms) {
    k_lo = cursor.index_of(floor_div(t_lo, ns_per_ms));
    k_hi = std::min(cursor.index_of(floor_div(t_hi, ns_per_ms)), (last_ms - origin_ms) / step_ms);
  }
  const uint64_t grid = k_hi >= k_lo ? static_cast<uint64_t>(k_hi - k_lo + 1) : 0;
  const uint64_t ngroups = groups.keys.size();
  constexpr uint64_t max_dense_cells = 1ull << 24;  // 16 M cells = 256 MiB of sums and counts
  const bool dense = grid > 0 && grid <= max_dense_cells / ngroups;
  const uint64_t cells = dense ? grid * ngroups : 0;
  std::vector<int64_t> dsum(cells), dcount(cells);
  std::vector<candidate> dbest(exemplars ? cells : 0);
  struct cell {
    int64_t sum = 0, count = 0;
    candidate best;
  };
  std::unordered_map<std::pair<uint32_t, int64_t>, cell, pair_hash> points;
  // Profiles without an id (none since ingest assigns one, but blocks are untrusted) are never
  // exemplars.
  const auto offer = [&](candidate& best, int64_t value, uint32_t row) {
    const profile_row& p = block.profiles[row];
    if (p.id_hi == 0 && p.id_lo == 0) return;
    if (better_row(block, value, row, best.value, best.row)) best = {value, row};
  };
  for (uint32_t row = 0; row < rows.size(); ++row) {
    int64_t t = 0, value = 0;
    if (!sel.take(row, cursor, t, value)) continue;
    const int64_t k = cursor.k;
    const uint32_t g = rank[rows.series(row)];
    if (dense && k >= k_lo && k <= k_hi) {
      const uint64_t c = g * grid + static_cast<uint64_t>(k - k_lo);
      dsum[c] = wrapping_add(dsum[c], value);
      ++dcount[c];
      if (exemplars) offer(dbest[c], value, row);
    } else {
      auto& c = points[{g, t}];
      c.sum = wrapping_add(c.sum, value);
      ++c.count;
      if (exemplars) offer(c.best, value, row);
    }
  }
  // Exemplar labels, looked up once per series.
  std::unordered_map<uint32_t, label_set> labels_of;
  const auto make_exemplar = [&](const candidate& c) {
    exemplar e;
    if (c.row == UINT32_MAX) return e;  // every profile of the point lacked an id
    const profile_row& p = block.profiles[c.row];
    e.time_ms = floor_div(p.time_ns, ns_per_ms);
    e.value = c.value;
    e.id_hi = p.id_hi;
    e.id_lo = p.id_lo;
    auto [it, added] = labels_of.try_emplace(p.series);
    if (added) it->second = exemplar_labels(block, p.series, req.group_by);
    e.labels = it->second;
    return e;
  };

  // This block's partial in the documented order (groups by key, points by (group, time); only
  // groups with points), then merged into `out`.
  series_partial mine;
  size_t npoints = points.size();
  bool ones = true;  // every point sums one profile: no count column
  for (const auto& [key, c] : points) ones = ones && c.count == 1;
  for (uint64_t c = 0; c < cells; ++c) {
    npoints += dcount[c] > 0;
    ones = ones && dcount[c] <= 1;
  }
  mine.point_ms.reserve(npoints);
  mine.point_sum.reserve(npoints);
  if (!ones) mine.point_count.reserve(npoints);
  uint32_t last = UINT32_MAX;
  auto emit = [&](uint32_t g, int64_t t, int64_t sum, int64_t count, const candidate& best) {
    if (g != last) {
      last = g;
      for (std::string_view v : groups.keys[g]) mine.group_values.emplace_back(v);
      mine.group_end.push_back(0);
    }
    mine.point_ms.push_back(t);
    mine.point_sum.push_back(sum);
    if (!ones) mine.point_count.push_back(count);
    if (req.exemplars) mine.point_exemplar.push_back(make_exemplar(best));
    mine.group_end.back() = mine.point_ms.size();
  };
  std::vector<std::pair<std::pair<uint32_t, int64_t>, cell>> sparse(points.begin(), points.end());
  std::sort(sparse.begin(), sparse.end(),
            [](const auto& a, const auto& b) { return a.first < b.first; });
  // Dense cells and sparse points of a group interleave by time: the dense ones of group g are
  // at k_lo .. k_hi, the sparse ones anywhere (below k_lo or above k_hi when dense).
  const candidate none;
  size_t sp = 0;
  for (uint32_t g = 0; g < ngroups; ++g) {
    const int64_t dense_from = origin_ms + k_lo * step_ms;
    for (; sp < sparse.size() && sparse[sp].first.first == g &&
           (!dense || sparse[sp].first.second < dense_from);
         ++sp)
      emit(g, sparse[sp].first.second, sparse[sp].second.sum, sparse[sp].second.count,
           sparse[sp].second.best);
    if (dense)
      for (uint64_t k = 0; k < grid; ++k)
        if (const uint64_t c = g * grid + k; dcount[c] > 0)
          emit(g, origin_ms + (k_lo + static_cast<int64_t>(k)) * step_ms, dsum[c], dcount[c],
               exemplars ? dbest[c] : none);
    for (; sp < sparse.size() && sparse[sp].first.first == g; ++sp)
      emit(g, sparse[sp].first.second, sparse[sp].second.sum, sparse[sp].second.count,
           sparse[sp].second.best);
  }
  merge_mine(std::move(mine));
}

namespace {

/// The first point of group g of `p` (its points end at p.group_end[g]).
size_t group_begin(const series_partial& p, size_t g) {
  return g == 0 ? 0 : static_cast<size_t>(p.group_end[g - 1]);
}

/// Appends a point's count to a count column that stays empty while every count is 1 (as
/// series_partial::point_count); `index` is the point's index, the column's size if not empty.
void put_count(std::vector<int64_t>& counts, size_t index, int64_t count) {
  if (counts.empty()) {
    if (count == 1) return;
    counts.assign(index, 1);
  }
  counts.push_back(count);
}

/// Whether `p` is in the documented form with `width` values per group: what merging and
/// rendering rely on to stay in bounds.
bool well_formed(const series_partial& p, size_t width) {
  const size_t m = p.points();
  if (p.point_sum.size() != m || (!p.point_count.empty() && p.point_count.size() != m) ||
      (!p.point_exemplar.empty() && p.point_exemplar.size() != m) ||
      p.group_values.size() != p.groups() * width)
    return false;
  uint64_t end = 0;
  for (uint64_t e : p.group_end) {
    if (e <= end) return false;  // every group has a point
    end = e;
  }
  return end == m;
}

/// Drops the empty partials and those not well formed (a faulty peer's) with `width` values per
/// group, or, without a width, the first one's.
void keep_well_formed(std::vector<series_partial>& parts, std::optional<size_t> width) {
  std::erase_if(parts, [](const series_partial& p) { return p.empty(); });
  if (!width && !parts.empty()) width = parts[0].group_values.size() / parts[0].groups();
  std::erase_if(parts, [&](const series_partial& p) { return !well_formed(p, *width); });
}

/// The label set a group's values render to: the group_by names with a value, sorted; a repeated
/// name once.
label_set labels_of_group(std::span<const std::string> values,
                          std::span<const std::string> group_by) {
  label_set labels;
  for (size_t k = 0; k < group_by.size(); ++k)
    if (!values[k].empty()) labels.push_back({group_by[k], values[k]});
  std::sort(labels.begin(), labels.end());
  labels.erase(std::unique(labels.begin(), labels.end(),
                           [](const label& a, const label& b) { return a.name == b.name; }),
               labels.end());
  return labels;
}

/// Index of the first earlier partial with the same group values as partial i (i if none):
/// partials of one query's blocks mostly have the same groups, and share what is computed per
/// group.
std::vector<size_t> twins(const std::vector<series_partial>& all) {
  std::vector<size_t> twin(all.size()), lists;
  for (size_t i = 0; i < all.size(); ++i) {
    twin[i] = i;
    for (size_t j : lists)
      if (all[j].group_values == all[i].group_values && all[j].groups() == all[i].groups()) {
        twin[i] = j;
        break;
      }
    if (twin[i] == i) lists.push_back(i);
  }
  return twin;
}

/// For a SUM render with a limit: drops from `parts` (well formed, `group_by.size()` values per
/// group) the groups of every series the limit leaves out, so only the kept series' points are
/// merged. A series' total is the sum of its profiles' values, so it is known without merging
/// points. Does nothing when some series' values add up to 2^52 or more in magnitude: below that
/// every partial sum is exact in a double, so the totals here rank series exactly as
/// render_series does.
void keep_top_series(std::vector<series_partial>& parts, std::span<const std::string> group_by,
                     int64_t limit) {
  const size_t width = group_by.size();
  const std::vector<size_t> twin = twins(parts);
  std::map<label_set, uint32_t> series_of_labels;
  std::vector<std::vector<uint32_t>> series_of_group(parts.size());
  for (size_t i = 0; i < parts.size(); ++i) {
    if (twin[i] != i) continue;
    auto& m = series_of_group[i];
    m.resize(parts[i].groups());
    for (uint32_t g = 0; g < m.size(); ++g) {
      auto values = std::span<const std::string>(parts[i].group_values).subspan(g * width, width);
      m[g] = series_of_labels
                 .try_emplace(labels_of_group(values, group_by),
                              static_cast<uint32_t>(series_of_labels.size()))
                 .first->second;
    }
  }
  const size_t nseries = series_of_labels.size();
  if (static_cast<uint64_t>(limit) >= nseries) return;
  std::vector<int64_t> total(nseries, 0);
  std::vector<double> magnitude(nseries, 0);
  for (size_t i = 0; i < parts.size(); ++i) {
    const auto& m = series_of_group[twin[i]];
    const auto& p = parts[i];
    for (size_t g = 0; g < p.groups(); ++g) {
      const uint32_t s = m[g];
      for (size_t j = group_begin(p, g); j < p.group_end[g]; ++j) {
        magnitude[s] += std::abs(static_cast<double>(p.point_sum[j]));
        total[s] = static_cast<int64_t>(static_cast<uint64_t>(total[s]) +
                                        static_cast<uint64_t>(p.point_sum[j]));
      }
    }
  }
  constexpr double exact = 4503599627370496.0;  // 2^52
  for (double x : magnitude)
    if (!(x < exact)) return;
  // render_series' order: by total, descending, then by labels (the map's order).
  std::vector<uint32_t> order;
  order.reserve(nseries);
  for (const auto& [labels, s] : series_of_labels) order.push_back(s);
  std::stable_sort(order.begin(), order.end(),
                   [&](uint32_t a, uint32_t b) { return total[a] > total[b]; });
  std::vector<bool> kept(nseries, false);
  for (size_t k = 0; k < static_cast<size_t>(limit); ++k) kept[order[k]] = true;
  // Each partial cut down to the kept series' groups (in order, so still sorted).
  for (size_t i = 0; i < parts.size(); ++i) {
    const auto& m = series_of_group[twin[i]];
    series_partial& p = parts[i];
    series_partial q;
    const bool ex = !p.point_exemplar.empty();
    for (uint32_t g = 0; g < m.size(); ++g) {
      if (!kept[m[g]]) continue;
      for (size_t k = 0; k < width; ++k)
        q.group_values.push_back(std::move(p.group_values[g * width + k]));
      const auto from = static_cast<ptrdiff_t>(group_begin(p, g));
      const auto to = static_cast<ptrdiff_t>(p.group_end[g]);
      q.point_ms.insert(q.point_ms.end(), p.point_ms.begin() + from, p.point_ms.begin() + to);
      q.point_sum.insert(q.point_sum.end(), p.point_sum.begin() + from, p.point_sum.begin() + to);
      for (ptrdiff_t j = from; j < to; ++j)
        put_count(q.point_count, q.point_sum.size() - static_cast<size_t>(to - j),
                  p.count(static_cast<size_t>(j)));
      if (ex)
        q.point_exemplar.insert(q.point_exemplar.end(),
                                std::make_move_iterator(p.point_exemplar.begin() + from),
                                std::make_move_iterator(p.point_exemplar.begin() + to));
      q.group_end.push_back(q.points());
    }
    p = std::move(q);
  }
}

/// merge_series of partials all well formed with one width: into `into` (empty), `all` spent.
void merge_well_formed(std::vector<series_partial>& all, series_partial& into) {
  if (all.size() <= 1) {
    if (!all.empty()) into = std::move(all.front());
    return;
  }
  const size_t width = all[0].group_values.size() / all[0].groups();
  const auto key = [width](const series_partial& p, uint32_t g) {
    return std::span<const std::string>(p.group_values).subspan(g * width, width);
  };
  const auto less = [](std::span<const std::string> x, std::span<const std::string> y) {
    return std::lexicographical_compare(x.begin(), x.end(), y.begin(), y.end());
  };
  // Each partial's groups are sorted and unique: merge the distinct group lists (partials of one
  // query's blocks mostly have the same groups; such a partial reuses its twin's mapping) into
  // the output's, mapping every partial's group to its output rank.
  const size_t n = all.size();
  const std::vector<size_t> twin = twins(all);
  std::vector<size_t> lists;  // partials with a group list unlike every earlier one's
  for (size_t i = 0; i < n; ++i)
    if (twin[i] == i) lists.push_back(i);
  std::vector<std::vector<uint32_t>> rank(n);
  for (size_t i : lists) rank[i].resize(all[i].groups());
  std::vector<uint32_t> at(n, 0);
  series_partial out;
  uint32_t ngroups = 0;
  for (;;) {
    // The smallest key at the heads of the lists (few lists: a linear scan).
    size_t best = SIZE_MAX;
    for (size_t i : lists)
      if (at[i] < rank[i].size() &&
          (best == SIZE_MAX || less(key(all[i], at[i]), key(all[best], at[best]))))
        best = i;
    if (best == SIZE_MAX) break;
    const auto k = key(all[best], at[best]);
    for (size_t i : lists)
      if (at[i] < rank[i].size() && std::equal(k.begin(), k.end(), key(all[i], at[i]).begin()))
        rank[i][at[i]++] = ngroups;
    out.group_values.insert(out.group_values.end(), k.begin(), k.end());
    ++ngroups;
  }
  // Each output group's points are its runs in the partials, written straight to the output:
  // partials taken in order of their first time, so a group's runs from blocks that follow each
  // other in time need no sort; a group whose runs overlap is sorted by time and its equal
  // times summed. The output is written once, in order.
  std::vector<size_t> by_time(n);
  std::iota(by_time.begin(), by_time.end(), size_t{0});
  std::vector<int64_t> first_ms(n);
  for (size_t i = 0; i < n; ++i)
    first_ms[i] = *std::min_element(all[i].point_ms.begin(), all[i].point_ms.end());
  std::stable_sort(by_time.begin(), by_time.end(),
                   [&](size_t x, size_t y) { return first_ms[x] < first_ms[y]; });
  size_t total = 0;
  bool ex = true;  // exemplars travel with their points when every partial carries them
  bool counted = false;
  for (const auto& p : all) {
    total += p.points();
    ex = ex && !p.point_exemplar.empty();
    counted = counted || !p.point_count.empty();
  }
  out.group_end.reserve(ngroups);
  out.point_ms.reserve(total);
  out.point_sum.reserve(total);
  if (counted) out.point_count.reserve(total);
  if (ex) out.point_exemplar.reserve(total);
  std::vector<uint32_t> local(n, 0);  // per partial: its next group
  std::vector<int64_t> ms, sum, count;
  std::vector<exemplar> exs;
  std::vector<size_t> order;
  for (uint32_t g = 0; g < ngroups; ++g) {
    const size_t from = out.points();
    bool sorted = true;
    for (size_t i : by_time) {
      auto& p = all[i];
      const auto& r = rank[twin[i]];
      if (local[i] >= r.size() || r[local[i]] != g) continue;
      const uint32_t lg = local[i]++;
      const size_t j = group_begin(p, lg), end = p.group_end[lg];
      if (out.points() > from && p.point_ms[j] <= out.point_ms.back()) sorted = false;
      out.point_ms.insert(out.point_ms.end(), p.point_ms.begin() + static_cast<ptrdiff_t>(j),
                          p.point_ms.begin() + static_cast<ptrdiff_t>(end));
      out.point_sum.insert(out.point_sum.end(), p.point_sum.begin() + static_cast<ptrdiff_t>(j),
                           p.point_sum.begin() + static_cast<ptrdiff_t>(end));
      if (p.point_count.empty()) {
        if (!out.point_count.empty()) out.point_count.resize(out.points(), 1);
      } else {
        for (size_t x = j; x < end; ++x)
          put_count(out.point_count, out.points() - (end - x), p.point_count[x]);
      }
      if (ex)
        out.point_exemplar.insert(
            out.point_exemplar.end(),
            std::make_move_iterator(p.point_exemplar.begin() + static_cast<ptrdiff_t>(j)),
            std::make_move_iterator(p.point_exemplar.begin() + static_cast<ptrdiff_t>(end)));
    }
    if (!sorted) {
      // Overlapping runs: this group's points by time (stable: earlier partials first), equal
      // times summed, rewritten in place.
      const size_t to = out.points();
      order.resize(to - from);
      std::iota(order.begin(), order.end(), from);
      std::stable_sort(order.begin(), order.end(),
                       [&](size_t x, size_t y) { return out.point_ms[x] < out.point_ms[y]; });
      ms.clear();
      sum.clear();
      count.clear();
      exs.clear();
      for (size_t x : order) {
        if (!ms.empty() && ms.back() == out.point_ms[x]) {
          sum.back() = wrapping_add(sum.back(), out.point_sum[x]);
          count.back() += out.count(x);
          if (ex) {
            // An empty exemplar (no profile with an id) loses to any real one.
            exemplar& a = exs.back();
            exemplar& c = out.point_exemplar[x];
            const bool a_real = a.id_hi != 0 || a.id_lo != 0, c_real = c.id_hi != 0 || c.id_lo != 0;
            if (c_real && (!a_real || better_exemplar(c, a))) a = std::move(c);
          }
          continue;
        }
        ms.push_back(out.point_ms[x]);
        sum.push_back(out.point_sum[x]);
        count.push_back(out.count(x));
        if (ex) exs.push_back(std::move(out.point_exemplar[x]));
      }
      out.point_ms.resize(from);
      out.point_sum.resize(from);
      if (!out.point_count.empty()) out.point_count.resize(from);
      out.point_ms.insert(out.point_ms.end(), ms.begin(), ms.end());
      out.point_sum.insert(out.point_sum.end(), sum.begin(), sum.end());
      for (size_t x = 0; x < count.size(); ++x) put_count(out.point_count, from + x, count[x]);
      if (ex) {
        out.point_exemplar.resize(from);
        std::move(exs.begin(), exs.end(), std::back_inserter(out.point_exemplar));
      }
    }
    out.group_end.push_back(out.points());
  }
  into = std::move(out);
}

}  // namespace

void merge_series(series_partial& into, std::vector<series_partial>& parts) {
  // The partials, `into` first; a partial not well formed (it may come from a peer) is dropped
  // rather than read out of bounds.
  std::vector<series_partial> all;
  all.reserve(parts.size() + 1);
  all.push_back(std::move(into));
  for (auto& p : parts) all.push_back(std::move(p));
  parts.clear();
  into = series_partial{};
  keep_well_formed(all, std::nullopt);
  merge_well_formed(all, into);
}

std::vector<series> render_series(const series_partial& p, std::span<const std::string> group_by,
                                  series_aggregation aggregation, int64_t limit) {
  const size_t width = group_by.size();
  const size_t ngroups = p.groups();
  // Label set per group (once per group, not per point); groups that render to the same label
  // set (a repeated group_by name, several absent labels) become one output series.
  std::map<label_set, uint32_t> series_of_labels;
  std::vector<label_set> labels_of_series;
  std::vector<uint32_t> series_of_group(ngroups);
  for (uint32_t g = 0; g < ngroups; ++g) {
    label_set labels = labels_of_group(
        std::span<const std::string>(p.group_values).subspan(g * width, width), group_by);
    auto [it, added] =
        series_of_labels.try_emplace(labels, static_cast<uint32_t>(labels_of_series.size()));
    if (added) labels_of_series.push_back(std::move(labels));
    series_of_group[g] = it->second;
  }
  const size_t nseries = labels_of_series.size();
  const bool with_ex = !p.point_exemplar.empty();
  const auto real = [&p](size_t i) {
    return i != SIZE_MAX && (p.point_exemplar[i].id_hi != 0 || p.point_exemplar[i].id_lo != 0);
  };
  auto value_of = [aggregation](int64_t sum, int64_t count) {
    return aggregation == series_aggregation::average
               ? static_cast<double>(sum) / static_cast<double>(count)
               : static_cast<double>(sum);
  };
  // By total, descending; ties by labels (the order of series_of_labels, i.e. label sets).
  const auto top = [&](const std::vector<double>& total) {
    std::vector<uint32_t> order;
    order.reserve(nseries);
    for (const auto& [labels, s] : series_of_labels) order.push_back(s);
    std::stable_sort(order.begin(), order.end(),
                     [&](uint32_t a, uint32_t b) { return total[a] > total[b]; });
    order.resize(limit > 0 ? std::min(nseries, static_cast<size_t>(limit)) : nseries);
    return order;
  };
  std::vector<double> total(nseries, 0);
  std::vector<series> out;

  if (nseries == ngroups) {
    // One group per series (the usual case): a group's points are its series' points; totals
    // come straight from the partial and only the series kept by `limit` are materialized.
    for (size_t g = 0; g < ngroups; ++g)
      for (size_t i = group_begin(p, g); i < p.group_end[g]; ++i)
        total[series_of_group[g]] += value_of(p.point_sum[i], p.count(i));
    std::vector<uint32_t> group_of_series(nseries);
    for (uint32_t g = 0; g < ngroups; ++g) group_of_series[series_of_group[g]] = g;
    const auto order = top(total);
    out.resize(order.size());
    for (size_t k = 0; k < order.size(); ++k) {
      const uint32_t s = order[k], g = group_of_series[s];
      out[k].labels = std::move(labels_of_series[s]);
      const size_t first = group_begin(p, g), last = p.group_end[g];
      out[k].points.reserve(last - first);
      for (size_t i = first; i < last; ++i)
        out[k].points.push_back({p.point_ms[i], value_of(p.point_sum[i], p.count(i))});
      if (with_ex) {
        out[k].exemplars.resize(last - first);
        for (size_t i = first; i < last; ++i)
          if (real(i)) out[k].exemplars[i - first] = p.point_exemplar[i];
      }
    }
    return out;
  }

  // Groups that render to the same labels are merged: their points at the same time add up
  // (sums and counts) before the aggregation, and the better exemplar stays.
  struct pt {
    int64_t t = 0, sum = 0, count = 0;
    size_t ex = SIZE_MAX;  ///< index into p.point_exemplar; SIZE_MAX: none
  };
  std::vector<std::vector<pt>> pts(nseries);
  for (size_t g = 0; g < ngroups; ++g)
    for (size_t i = group_begin(p, g); i < p.group_end[g]; ++i)
      pts[series_of_group[g]].push_back(
          {p.point_ms[i], p.point_sum[i], p.count(i), with_ex && real(i) ? i : SIZE_MAX});
  for (size_t s = 0; s < nseries; ++s) {
    auto& v = pts[s];
    std::sort(v.begin(), v.end(), [](const pt& a, const pt& b) { return a.t < b.t; });
    size_t w = 0;
    for (size_t r = 0; r < v.size(); ++r) {
      if (w > 0 && v[w - 1].t == v[r].t) {
        pt& into = v[w - 1];
        into.sum = wrapping_add(into.sum, v[r].sum);
        into.count += v[r].count;
        if (v[r].ex != SIZE_MAX &&
            (into.ex == SIZE_MAX ||
             better_exemplar(p.point_exemplar[v[r].ex], p.point_exemplar[into.ex])))
          into.ex = v[r].ex;
      } else {
        v[w++] = v[r];
      }
    }
    v.resize(w);
    for (const pt& x : v) total[s] += value_of(x.sum, x.count);
  }
  const auto order = top(total);
  out.resize(order.size());
  for (size_t k = 0; k < order.size(); ++k) {
    const uint32_t s = order[k];
    out[k].labels = std::move(labels_of_series[s]);
    out[k].points.reserve(pts[s].size());
    if (with_ex) out[k].exemplars.resize(pts[s].size());
    for (const pt& x : pts[s]) {
      if (x.ex != SIZE_MAX) out[k].exemplars[out[k].points.size()] = p.point_exemplar[x.ex];
      out[k].points.push_back({x.t, value_of(x.sum, x.count)});
    }
  }
  return out;
}

std::vector<series> render_series(std::vector<series_partial>& parts,
                                  std::span<const std::string> group_by,
                                  series_aggregation aggregation, int64_t limit) {
  keep_well_formed(parts, group_by.size());
  if (limit > 0 && aggregation == series_aggregation::sum) keep_top_series(parts, group_by, limit);
  series_partial merged;
  merge_well_formed(parts, merged);
  parts.clear();
  return render_series(merged, group_by, aggregation, limit);
}

}  // namespace hearth::query
