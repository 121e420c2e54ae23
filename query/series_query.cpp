#include "query/series_query.hpp"

#include <algorithm>
#include <cassert>
#include <map>
#include <numeric>
#include <string_view>
#include <unordered_map>

namespace hearth::query {
namespace {

constexpr int64_t ns_per_ms = 1'000'000;

int64_t floor_div(int64_t a, int64_t b) {
  return a / b - ((a % b != 0) && ((a < 0) != (b < 0)));
}

/// The group_by values of series `id` ("" for an absent label).
std::vector<std::string> group_key(const block_data& b, uint32_t id,
                                   std::span<const std::string> group_by) {
  std::vector<std::string> key(group_by.size());
  const series_rec& s = b.series[id];
  if (uint64_t{s.label_begin} + s.label_count > b.labels.size()) return key;
  for (uint32_t i = 0; i < s.label_count; ++i) {
    const label_ref& l = b.labels[s.label_begin + i];
    if (l.name >= b.syms.strings.size() || l.value >= b.syms.strings.size()) continue;
    const std::string& name = b.syms.strings[l.name];
    for (size_t k = 0; k < group_by.size(); ++k)
      if (group_by[k] == name) key[k] = b.syms.strings[l.value];
  }
  return key;
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

void select_series_points(const block_data& block, std::span<const uint32_t> series,
                          const series_request& req, series_partial& out) {
  assert(req.step_ns >= ns_per_ms);
  if (series.empty() || block.profiles.empty() || req.start_ns >= req.end_ns) return;

  // Group id per selected series (ids local to this call), UINT32_MAX for unselected ones.
  std::map<std::vector<std::string>, uint32_t> groups;
  std::vector<uint32_t> group_of(block.series.size(), UINT32_MAX);
  for (uint32_t id : series) {
    if (id >= block.series.size() || group_of[id] != UINT32_MAX) continue;
    auto [it, added] = groups.try_emplace(group_key(block, id, req.group_by),
                                          static_cast<uint32_t>(groups.size()));
    group_of[id] = it->second;
  }
  if (groups.empty()) return;

  const std::vector<bool> keep =
      req.call_site.empty() ? std::vector<bool>() : stacks_with_prefix(block, req.call_site);
  const int64_t origin_ms = floor_div(req.start_ns, ns_per_ms);
  const int64_t last_ms = floor_div(req.end_ns - 1, ns_per_ms);
  const int64_t step_ms = req.step_ns / ns_per_ms;

  // Points are accumulated densely per (group rank, grid index) when the grid is small enough,
  // else in a hash map; either way emitted in (group rank, time) order without a sort of points.
  std::vector<uint32_t> rank(groups.size());
  std::vector<const std::vector<std::string>*> key_of_rank;
  for (const auto& [key, id] : groups) {
    rank[id] = static_cast<uint32_t>(key_of_rank.size());
    key_of_rank.push_back(&key);
  }
  // The dense grid spans only the grid points this block's profiles can land on.
  const auto index_of = [&](int64_t time_ns) {
    return (floor_div(time_ns, ns_per_ms) - origin_ms + step_ms - 1) / step_ms;
  };
  int64_t k_lo = INT64_MAX, k_hi = -1;
  for (const profile_row& p : block.profiles) {
    if (p.series >= group_of.size() || group_of[p.series] == UINT32_MAX) continue;
    if (p.time_ns < req.start_ns || p.time_ns >= req.end_ns) continue;
    k_lo = std::min(k_lo, index_of(p.time_ns));
    k_hi = std::max(k_hi, index_of(p.time_ns));
  }
  k_hi = std::min(k_hi, (last_ms - origin_ms) / step_ms);
  const uint64_t grid = k_hi >= k_lo ? static_cast<uint64_t>(k_hi - k_lo + 1) : 0;
  const uint64_t cells = grid * groups.size();
  constexpr uint64_t max_dense_cells = 1ull << 24;  // 16 M cells = 256 MiB of sums and counts
  const bool dense = grid > 0 && last_ms >= origin_ms && cells <= max_dense_cells;
  std::vector<int64_t> dsum(dense ? cells : 0), dcount(dense ? cells : 0);
  std::vector<candidate> dbest(dense && req.exemplars ? cells : 0);
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
  for (uint32_t row = 0; row < block.profiles.size(); ++row) {
    const profile_row& p = block.profiles[row];
    if (p.series >= group_of.size() || group_of[p.series] == UINT32_MAX) continue;
    if (p.time_ns < req.start_ns || p.time_ns >= req.end_ns) continue;
    int64_t value = p.total;
    if (!keep.empty()) {
      if (uint64_t{p.sample_begin} + p.sample_count > block.samples.size()) continue;
      bool any = false;
      value = 0;
      for (uint32_t i = 0; i < p.sample_count; ++i) {
        const sample_rec& s = block.samples[p.sample_begin + i];
        if (s.stack < keep.size() && keep[s.stack]) {
          value += s.value;
          any = true;
        }
      }
      if (!any) continue;  // the profile has no stack through the call site
    }
    const int64_t ts_ms = floor_div(p.time_ns, ns_per_ms);
    const int64_t k = (ts_ms - origin_ms + step_ms - 1) / step_ms;
    const int64_t t = origin_ms + k * step_ms;
    if (t > last_ms) continue;  // past the last grid point, as Pyroscope's RangeSeries drops it
    const uint32_t g = rank[group_of[p.series]];
    if (dense && k >= k_lo && k <= k_hi) {
      const uint64_t cell = g * grid + static_cast<uint64_t>(k - k_lo);
      dsum[cell] += value;
      ++dcount[cell];
      if (req.exemplars) offer(dbest[cell], value, row);
    } else {
      auto& c = points[{g, t}];
      c.sum += value;
      ++c.count;
      if (req.exemplars) offer(c.best, value, row);
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
  uint32_t last = UINT32_MAX, next = 0;
  auto emit = [&](uint32_t g, int64_t t, int64_t sum, int64_t count, const candidate& best) {
    if (g != last) {
      last = g;
      ++next;
      const auto& key = *key_of_rank[g];
      mine.group_values.insert(mine.group_values.end(), key.begin(), key.end());
    }
    mine.point_group.push_back(next - 1);
    mine.point_ms.push_back(t);
    mine.point_sum.push_back(sum);
    mine.point_count.push_back(count);
    if (req.exemplars) mine.point_exemplar.push_back(make_exemplar(best));
  };
  if (dense) {
    const candidate none;
    for (uint32_t g = 0; g < groups.size(); ++g)
      for (uint64_t k = 0; k < grid; ++k)
        if (dcount[g * grid + k] > 0)
          emit(g, origin_ms + (k_lo + static_cast<int64_t>(k)) * step_ms, dsum[g * grid + k],
               dcount[g * grid + k], req.exemplars ? dbest[g * grid + k] : none);
  } else {
    std::vector<std::pair<std::pair<uint32_t, int64_t>, cell>> sorted(points.begin(), points.end());
    std::sort(sorted.begin(), sorted.end(),
              [](const auto& a, const auto& b) { return a.first < b.first; });
    for (const auto& [k, v] : sorted) emit(k.first, k.second, v.sum, v.count, v.best);
  }
  if (out.point_group.empty()) out = std::move(mine);
  else merge_series(out, mine);
}

void merge_series(series_partial& into, const series_partial& from) {
  if (from.point_group.empty()) return;
  if (into.point_group.empty()) {
    into = from;
    return;
  }
  // Group counts: with no group_by there is one group (0) and no values.
  const auto groups_of = [](const series_partial& p) {
    return p.point_group.empty() ? 0u : p.point_group.back() + 1;  // sorted by group
  };
  const uint32_t na = groups_of(into), nb = groups_of(from);
  const size_t width = na == 0 ? 0 : into.group_values.size() / na;
  const auto key = [width](const series_partial& p, uint32_t g) {
    return std::span<const std::string>(p.group_values).subspan(g * width, width);
  };
  const auto less = [](std::span<const std::string> x, std::span<const std::string> y) {
    return std::lexicographical_compare(x.begin(), x.end(), y.begin(), y.end());
  };
  // Merge the sorted group lists.
  series_partial out;
  std::vector<uint32_t> map_a(na), map_b(nb);
  uint32_t i = 0, j = 0, n = 0;
  while (i < na || j < nb) {
    std::span<const std::string> k;
    if (j == nb || (i < na && less(key(into, i), key(from, j)))) {
      k = key(into, i);
      map_a[i++] = n;
    } else if (i == na || less(key(from, j), key(into, i))) {
      k = key(from, j);
      map_b[j++] = n;
    } else {
      k = key(into, i);
      map_a[i++] = n;
      map_b[j++] = n;
    }
    out.group_values.insert(out.group_values.end(), k.begin(), k.end());
    ++n;
  }
  // Merge the sorted point lists (group ids are remapped monotonically, so order is kept).
  size_t a = 0, b = 0;
  const size_t pa = into.point_group.size(), pb = from.point_group.size();
  // Exemplars travel with their points when both sides carry them (the same request).
  const bool ex = into.point_exemplar.size() == pa && from.point_exemplar.size() == pb;
  const auto push = [&out](uint32_t g, int64_t t, int64_t sum, int64_t count) {
    out.point_group.push_back(g);
    out.point_ms.push_back(t);
    out.point_sum.push_back(sum);
    out.point_count.push_back(count);
  };
  const auto take = [&out, ex](const series_partial& p, size_t i) {
    if (ex) out.point_exemplar.push_back(p.point_exemplar[i]);
  };
  while (a < pa || b < pb) {
    const auto ka = a < pa ? std::pair{map_a[into.point_group[a]], into.point_ms[a]}
                           : std::pair{UINT32_MAX, INT64_MAX};
    const auto kb = b < pb ? std::pair{map_b[from.point_group[b]], from.point_ms[b]}
                           : std::pair{UINT32_MAX, INT64_MAX};
    if (b == pb || (a < pa && ka < kb)) {
      push(ka.first, ka.second, into.point_sum[a], into.point_count[a]);
      take(into, a);
      ++a;
    } else if (a == pa || kb < ka) {
      push(kb.first, kb.second, from.point_sum[b], from.point_count[b]);
      take(from, b);
      ++b;
    } else {
      push(ka.first, ka.second, into.point_sum[a] + from.point_sum[b],
           into.point_count[a] + from.point_count[b]);
      if (ex) {
        const exemplar& x = into.point_exemplar[a];
        const exemplar& y = from.point_exemplar[b];
        // An empty exemplar (no profile with an id) loses to any real one.
        const bool x_real = x.id_hi != 0 || x.id_lo != 0, y_real = y.id_hi != 0 || y.id_lo != 0;
        out.point_exemplar.push_back(
            !y_real || (x_real && better_exemplar(x, y)) ? x : y);
      }
      ++a, ++b;
    }
  }
  into = std::move(out);
}

std::vector<series> render_series(const series_partial& p, std::span<const std::string> group_by,
                                  series_aggregation aggregation, int64_t limit) {
  const size_t width = group_by.size();
  const uint32_t ngroups = p.point_group.empty() ? 0 : p.point_group.back() + 1;
  // Label set per group (once per group, not per point); groups that render to the same label
  // set (a repeated group_by name, several absent labels) become one output series.
  std::map<label_set, uint32_t> series_of_labels;
  std::vector<label_set> labels_of_series;
  std::vector<uint32_t> series_of_group(ngroups);
  for (uint32_t g = 0; g < ngroups; ++g) {
    label_set labels;
    for (size_t k = 0; k < width; ++k) {
      const std::string& v = p.group_values[g * width + k];
      if (!v.empty()) labels.push_back({group_by[k], v});
    }
    std::sort(labels.begin(), labels.end());
    labels.erase(std::unique(labels.begin(), labels.end(),
                             [](const label& a, const label& b) { return a.name == b.name; }),
                 labels.end());
    auto [it, added] = series_of_labels.try_emplace(labels, static_cast<uint32_t>(labels_of_series.size()));
    if (added) labels_of_series.push_back(std::move(labels));
    series_of_group[g] = it->second;
  }
  const size_t nseries = labels_of_series.size();
  const bool with_ex = p.point_exemplar.size() == p.point_group.size();
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
    // One group per series (the usual case): points are sorted by (group, time), so a group's
    // points are one contiguous run; totals come straight from the partial and only the series
    // kept by `limit` are materialized.
    std::vector<size_t> first(ngroups, SIZE_MAX), last(ngroups, 0);
    for (size_t i = 0; i < p.point_group.size(); ++i) {
      const uint32_t g = p.point_group[i];
      if (first[g] == SIZE_MAX) first[g] = i;
      last[g] = i + 1;
      total[series_of_group[g]] += value_of(p.point_sum[i], p.point_count[i]);
    }
    std::vector<uint32_t> group_of_series(nseries);
    for (uint32_t g = 0; g < ngroups; ++g) group_of_series[series_of_group[g]] = g;
    const auto order = top(total);
    out.resize(order.size());
    for (size_t k = 0; k < order.size(); ++k) {
      const uint32_t s = order[k], g = group_of_series[s];
      out[k].labels = std::move(labels_of_series[s]);
      if (first[g] == SIZE_MAX) continue;
      out[k].points.reserve(last[g] - first[g]);
      for (size_t i = first[g]; i < last[g]; ++i) {
        out[k].points.push_back({p.point_ms[i], value_of(p.point_sum[i], p.point_count[i]), {}});
        if (with_ex && real(i)) out[k].points.back().exemplars.push_back(p.point_exemplar[i]);
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
  for (size_t i = 0; i < p.point_group.size(); ++i)
    pts[series_of_group[p.point_group[i]]].push_back(
        {p.point_ms[i], p.point_sum[i], p.point_count[i], with_ex && real(i) ? i : SIZE_MAX});
  for (size_t s = 0; s < nseries; ++s) {
    auto& v = pts[s];
    std::sort(v.begin(), v.end(), [](const pt& a, const pt& b) { return a.t < b.t; });
    size_t w = 0;
    for (size_t r = 0; r < v.size(); ++r) {
      if (w > 0 && v[w - 1].t == v[r].t) {
        pt& into = v[w - 1];
        into.sum += v[r].sum;
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
    for (const pt& x : pts[s]) {
      out[k].points.push_back({x.t, value_of(x.sum, x.count), {}});
      if (x.ex != SIZE_MAX) out[k].points.back().exemplars.push_back(p.point_exemplar[x.ex]);
    }
  }
  return out;
}

}  // namespace hearth::query
