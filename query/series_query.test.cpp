#include "query/series_query.hpp"

#include <gtest/gtest.h>

#include <map>
#include <random>
#include <tuple>

#include "query/test_util.hpp"

namespace hearth::query {
namespace {

constexpr int64_t ms = 1'000'000;
const std::string cpu = "process_cpu:cpu:nanoseconds:cpu:nanoseconds";

/// A block of profile rows only: no samples at all, so any read of a sample column would find
/// nothing, and every total must come from the rows.
struct rows_block {
  block_data b;

  uint32_t str(const std::string& v) {
    for (uint32_t i = 0; i < b.syms.strings.size(); ++i)
      if (b.syms.strings[i] == v) return i;
    b.syms.strings.push_back(v);
    return static_cast<uint32_t>(b.syms.strings.size() - 1);
  }
  uint32_t add_series(const label_set& ls) {
    b.series.push_back({static_cast<uint32_t>(b.labels.size()), static_cast<uint32_t>(ls.size())});
    for (const auto& l : ls) b.labels.push_back({str(l.name), str(l.value)});
    return static_cast<uint32_t>(b.series.size() - 1);
  }
  void add(uint32_t series, int64_t t_ns, int64_t total, uint64_t id_lo = 0) {
    b.profiles.push_back({series, t_ns, 0, total, 0, 0, id_lo == 0 ? 0 : 0xabcdULL, id_lo});
  }
};

series_partial points_of(const block_data& b, const series_request& req) {
  series_partial p;
  select_series_points(b, select_series(b, {}), req, p);
  return p;
}

/// Merges one more partial into `into`.
void merge_one(series_partial& into, series_partial from) {
  std::vector<series_partial> parts;
  parts.push_back(std::move(from));
  merge_series(into, parts);
  EXPECT_TRUE(parts.empty());
}

std::vector<series_point> only_points(const std::vector<series>& s) {
  EXPECT_EQ(s.size(), 1u);
  return s.empty() ? std::vector<series_point>{} : s[0].points;
}

TEST(series_query, points_land_on_the_next_grid_point_from_one_step_before_start) {
  rows_block rb;
  const uint32_t s = rb.add_series({{"service_name", "a"}});
  // Request [100000, 160000] ms, step 10 s: origin and range start at 90000 ms.
  for (int64_t t_ms : {85000, 89999, 90000, 95000, 100000, 100001, 159999, 160000, 160001})
    rb.add(s, t_ms * ms + 123, t_ms / 1000);
  const series_request req = series_range(100000, 160000, 10000);
  EXPECT_EQ(req.start_ns, 90000 * ms);
  EXPECT_EQ(req.end_ns, 160001 * ms);
  const auto pts = only_points(render_series(points_of(rb.b, req), {}, series_aggregation::sum, 0));
  EXPECT_EQ(pts, (std::vector<series_point>{
                     {90000, 90}, {100000, 95 + 100}, {110000, 100}, {160000, 159 + 160}}));
}

TEST(series_query, group_by_sum_average_and_top_k) {
  rows_block rb;
  const uint32_t a = rb.add_series({{"env", "prod"}, {"service_name", "a"}});
  const uint32_t b = rb.add_series({{"env", "prod"}, {"service_name", "b"}});
  const uint32_t c = rb.add_series({{"service_name", "b"}});
  rb.add(a, 1000 * ms, 10);
  rb.add(a, 1500 * ms, 30);
  rb.add(b, 1000 * ms, 4);
  rb.add(c, 1000 * ms, 100);
  rb.add(c, 3000 * ms, 1);
  series_request req = series_range(1000, 5000, 1000);

  req.group_by = {"service_name"};
  auto p = points_of(rb.b, req);
  EXPECT_EQ(p.group_values, (std::vector<std::string>{"a", "b"}));
  using pts = std::vector<series_point>;
  // Ordered by total, descending: b (105) before a (40).
  EXPECT_EQ(render_series(p, req.group_by, series_aggregation::sum, 0),
            (std::vector<series>{{{{"service_name", "b"}}, pts{{1000, 104}, {3000, 1}}},
                                 {{{"service_name", "a"}}, pts{{1000, 10}, {2000, 30}}}}));
  EXPECT_EQ(render_series(p, req.group_by, series_aggregation::average, 0),
            (std::vector<series>{{{{"service_name", "b"}}, pts{{1000, 52}, {3000, 1}}},
                                 {{{"service_name", "a"}}, pts{{1000, 10}, {2000, 30}}}}));
  EXPECT_EQ(render_series(p, req.group_by, series_aggregation::sum, 1),
            (std::vector<series>{{{{"service_name", "b"}}, pts{{1000, 104}, {3000, 1}}}}));

  // A series without the label is its own group with no labels.
  req.group_by = {"env"};
  EXPECT_EQ(render_series(points_of(rb.b, req), req.group_by, series_aggregation::sum, 0),
            (std::vector<series>{{{}, pts{{1000, 100}, {3000, 1}}},
                                 {{{"env", "prod"}}, pts{{1000, 14}, {2000, 30}}}}));
  // Labels come out sorted by name whatever the group_by order.
  req.group_by = {"service_name", "env"};
  const auto two = render_series(points_of(rb.b, req), req.group_by, series_aggregation::sum, 0);
  ASSERT_EQ(two.size(), 3u);
  EXPECT_EQ(two[1].labels, (label_set{{"env", "prod"}, {"service_name", "a"}}));
}

TEST(series_query, merging_partials_equals_one_block) {
  rows_block one, left, right;
  const label_set la{{"service_name", "a"}}, lb{{"service_name", "b"}}, lc{{"service_name", "c"}};
  const uint32_t a = one.add_series(la), b = one.add_series(lb), c = one.add_series(lc);
  const uint32_t la_ = left.add_series(la), lc_ = left.add_series(lc);
  const uint32_t rb_ = right.add_series(lb), ra_ = right.add_series(la);
  const std::vector<std::tuple<int, uint32_t, int64_t, int64_t>> rows = {{0, la_, 1000, 1},
                                                                         {1, rb_, 1000, 2},
                                                                         {1, ra_, 1000, 4},
                                                                         {0, lc_, 2500, 8},
                                                                         {1, ra_, 4000, 16}};
  one.add(a, 1000 * ms, 1);
  one.add(b, 1000 * ms, 2);
  one.add(a, 1000 * ms, 4);
  one.add(c, 2500 * ms, 8);
  one.add(a, 4000 * ms, 16);
  for (const auto& [side, s, t, v] : rows) (side == 0 ? left : right).add(s, t * ms, v);
  series_request req = series_range(1000, 5000, 1000);
  req.group_by = {"service_name"};
  const series_partial whole = points_of(one.b, req);
  series_partial lr = points_of(left.b, req), rl = points_of(right.b, req);
  merge_one(lr, points_of(right.b, req));
  merge_one(rl, points_of(left.b, req));
  EXPECT_EQ(lr, whole);
  EXPECT_EQ(rl, whole);
  EXPECT_EQ(whole.point_count, (std::vector<int64_t>{2, 1, 1, 1}));
  series_partial empty;
  merge_one(empty, whole);
  EXPECT_EQ(empty, whole);
}

// A reference model of select_series_points + merge_series: per (group values, grid time) the
// sum and count of the rows, straight from the definition, against blocks split and merged in
// every way the evaluator and the merger do.
TEST(series_query, blocks_split_and_merged_at_once_match_a_reference_model) {
  std::mt19937_64 rnd(42);
  for (int round = 0; round < 300; ++round) {
    const int nseries = 1 + static_cast<int>(rnd() % 30), nrows = static_cast<int>(rnd() % 400);
    const int64_t step_ms = 1000 * (1 + static_cast<int64_t>(rnd() % 5));
    series_request req = series_range(100'000, 100'000 + 60'000, step_ms);
    const int width = static_cast<int>(rnd() % 3);
    req.group_by = {"pod", "zone", "pod"};
    req.group_by.resize(static_cast<size_t>(width));
    // Every series its own pod: one series per group when grouping by pod (the streaming path).
    const bool unique_pods = rnd() % 2 == 0;
    if (unique_pods && width > 0) req.group_by = {"pod"};
    struct row {
      label_set labels;
      int64_t t_ns, total;
    };
    std::vector<label_set> sets;
    for (int i = 0; i < nseries; ++i) {
      label_set ls{{"service_name", "a"}};
      if (unique_pods)
        ls.push_back({"pod", "p" + std::to_string(i)});
      else if (rnd() % 4 != 0)
        ls.push_back({"pod", "p" + std::to_string(rnd() % 7)});
      if (rnd() % 2 != 0) ls.push_back({"zone", "z" + std::to_string(rnd() % 3)});
      ls.push_back({"x", std::to_string(i)});  // every series distinct
      std::sort(ls.begin(), ls.end());
      sets.push_back(ls);
    }
    std::vector<row> rows;
    for (int i = 0; i < nrows; ++i)
      rows.push_back(
          {sets[rnd() % sets.size()],
           (80'000 + static_cast<int64_t>(rnd() % 90'000)) * ms + static_cast<int64_t>(rnd() % ms),
           static_cast<int64_t>(rnd() % 1000) - 100});
    // The model.
    std::map<std::pair<std::vector<std::string>, int64_t>, std::pair<int64_t, int64_t>> want;
    const int64_t origin = req.start_ns / ms, last = (req.end_ns - 1) / ms;
    for (const auto& r : rows) {
      if (r.t_ns < req.start_ns || r.t_ns >= req.end_ns) continue;
      const int64_t ts = r.t_ns / ms, t = origin + (ts - origin + step_ms - 1) / step_ms * step_ms;
      if (t > last) continue;
      std::vector<std::string> key;
      for (const auto& name : req.group_by) {
        std::string v;
        for (const auto& l : r.labels)
          if (l.name == name) v = l.value;
        key.push_back(v);
      }
      auto& [sum, count] = want[{key, t}];
      sum += r.total;
      ++count;
    }
    // Blocks: rows dealt to `nb` blocks, each sorted by (series, time) as segments are; some
    // blocks claim a narrower time range than their rows (rows outside it take the sparse path).
    const int nb = 1 + static_cast<int>(rnd() % 6);
    std::vector<rows_block> blocks(static_cast<size_t>(nb));
    std::vector<std::vector<std::pair<uint32_t, const row*>>> dealt(static_cast<size_t>(nb));
    std::vector<std::map<label_set, uint32_t>> ids(
        static_cast<size_t>(nb));  // one series per label set
    for (const auto& r : rows) {
      const size_t bi = rnd() % blocks.size();
      auto [it, added] = ids[bi].try_emplace(r.labels, 0);
      if (added) it->second = blocks[bi].add_series(r.labels);
      dealt[bi].push_back({it->second, &r});
    }
    std::vector<series_partial> parts;
    for (size_t bi = 0; bi < blocks.size(); ++bi) {
      auto& d = dealt[bi];
      std::sort(d.begin(), d.end(), [](const auto& x, const auto& y) {
        return std::pair{x.first, x.second->t_ns} < std::pair{y.first, y.second->t_ns};
      });
      block_data& b = blocks[bi].b;
      // Some blocks keep rows in arrival order, as a head does, or have a series' rows together
      // but not in time order: the grid path, not streaming.
      if (const auto mode = rnd() % 4; mode == 0) {
        std::shuffle(d.begin(), d.end(), rnd);
      } else if (mode == 1) {
        std::shuffle(d.begin(), d.end(), rnd);
        std::stable_sort(d.begin(), d.end(),
                         [](const auto& x, const auto& y) { return x.first < y.first; });
      }
      for (const auto& [sid, r] : d) b.add_profile(profile_row{sid, r->t_ns, 0, r->total});
      if (rnd() % 3 == 0 && b.max_time_ns > b.min_time_ns)
        b.min_time_ns += (b.max_time_ns - b.min_time_ns) / 2;
      if (rnd() % 3 == 0 && b.max_time_ns > b.min_time_ns)
        b.max_time_ns -= (b.max_time_ns - b.min_time_ns) / 3;
      parts.push_back(points_of(b, req));
    }
    std::shuffle(parts.begin(), parts.end(), rnd);
    series_partial got;
    if (rnd() % 2 == 0) {
      merge_series(got, parts);
    } else {
      for (auto& p : parts) merge_one(got, std::move(p));
    }
    // The partial's documented form, and its values.
    std::map<std::pair<std::vector<std::string>, int64_t>, std::pair<int64_t, int64_t>> have;
    const size_t w = req.group_by.size();
    const size_t ng = got.group_end.size();
    ASSERT_EQ(got.group_values.size(), ng * w);
    ASSERT_EQ(got.point_sum.size(), got.point_ms.size());
    bool ones = true;
    if (!got.point_count.empty()) {
      ASSERT_EQ(got.point_count.size(), got.point_ms.size());
      ones = std::all_of(got.point_count.begin(), got.point_count.end(),
                         [](int64_t c) { return c == 1; });
    }
    EXPECT_TRUE(got.point_count.empty() || !ones) << "counts of 1 are not stored";
    size_t i = 0;
    for (size_t g = 0; g < ng; ++g) {
      ASSERT_GT(got.group_end[g], i) << "group " << g << " has a point";
      ASSERT_LE(got.group_end[g], got.point_ms.size());
      if (g > 0) {
        ASSERT_TRUE(std::lexicographical_compare(
            got.group_values.begin() + (g - 1) * w, got.group_values.begin() + g * w,
            got.group_values.begin() + g * w, got.group_values.begin() + (g + 1) * w));
      }
      std::vector<std::string> key(got.group_values.begin() + static_cast<ptrdiff_t>(g * w),
                                   got.group_values.begin() + static_cast<ptrdiff_t>((g + 1) * w));
      for (const size_t first = i; i < got.group_end[g]; ++i) {
        if (i > first) {
          ASSERT_LT(got.point_ms[i - 1], got.point_ms[i]) << i;
        }
        have[{key, got.point_ms[i]}] = {got.point_sum[i], got.count(i)};
      }
    }
    ASSERT_EQ(i, got.point_ms.size());
    ASSERT_EQ(have, want) << "round " << round;
  }
}

TEST(series_query, a_repeated_string_is_one_group_and_a_malformed_partial_is_dropped) {
  // An untrusted block may spell one value twice in its string table: still one group.
  rows_block rb;
  const uint32_t s1 = rb.add_series({{"pod", "a"}, {"service_name", "x"}});
  rb.b.syms.strings.push_back("a");  // a second "a"
  rb.b.series.push_back({static_cast<uint32_t>(rb.b.labels.size()), 2});
  rb.b.labels.push_back({rb.str("pod"), static_cast<uint32_t>(rb.b.syms.strings.size() - 1)});
  rb.b.labels.push_back({rb.str("service_name"), rb.str("x")});
  const uint32_t s2 = static_cast<uint32_t>(rb.b.series.size() - 1);
  rb.b.add_profile({s1, 1000 * ms, 0, 1});
  rb.b.add_profile({s2, 1000 * ms, 0, 2});
  series_request req = series_range(1000, 2000, 1000);
  req.group_by = {"pod"};
  const series_partial p = points_of(rb.b, req);
  EXPECT_EQ(p.group_values, (std::vector<std::string>{"a"}));
  EXPECT_EQ(p.point_sum, (std::vector<int64_t>{3}));

  series_partial bad = p;
  bad.point_ms.pop_back();  // sizes disagree: dropped, not read out of bounds
  series_partial into = p;
  merge_one(into, bad);
  EXPECT_EQ(into, p);
  for (auto group_end : {std::vector<uint64_t>{1, 1}, std::vector<uint64_t>{2, 1},
                         std::vector<uint64_t>{1, 3}, std::vector<uint64_t>{0, 2}}) {
    bad = p;
    bad.group_values = {"a", "b"};
    bad.group_end = group_end;  // a group without points, or ends out of order or range: dropped
    bad.point_ms = {1000, 2000};
    bad.point_sum = {1, 2};
    bad.point_count = {};
    into = p;
    merge_one(into, bad);
    EXPECT_EQ(into, p);
  }
  bad.group_end = {1, 2};  // the same partial well formed is merged
  into = p;
  merge_one(into, bad);
  EXPECT_EQ(into.group_values, (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(into.point_count, (std::vector<int64_t>{3, 1}));
  bad = p;
  bad.point_count = {2, 1};  // more counts than points: dropped
  into = p;
  merge_one(into, bad);
  EXPECT_EQ(into, p);
}

// Rendering from the partials with a limit (only the kept series merged) gives what rendering the
// whole merge gives, for every limit, both aggregations, repeated and absent group_by labels, and
// values too large for the shortcut.
TEST(series_query, rendering_the_top_series_from_partials_equals_rendering_the_whole_merge) {
  std::mt19937_64 rnd(7);
  for (int round = 0; round < 30; ++round) {
    series_request req = series_range(1000, 20'000, 1000);
    req.group_by = round % 3 == 0 ? std::vector<std::string>{"pod", "pod"}
                                  : std::vector<std::string>{"pod", "zone"};
    const bool huge = round % 5 == 4;
    std::vector<series_partial> parts;
    const int nb = 1 + static_cast<int>(rnd() % 4);
    for (int b = 0; b < nb; ++b) {
      rows_block rb;
      for (int r = 0; r < 60; ++r) {
        label_set ls{{"service_name", "a"}};
        if (rnd() % 5 != 0) ls.push_back({"pod", "p" + std::to_string(rnd() % 9)});
        if (rnd() % 2 != 0) ls.push_back({"zone", "z" + std::to_string(rnd() % 2)});
        const uint32_t s = rb.add_series(ls);
        // Ties on purpose (small values), and some beyond what a double holds exactly.
        const int64_t v = huge ? (int64_t{1} << 61) + static_cast<int64_t>(rnd() % 3)
                               : static_cast<int64_t>(rnd() % 4);
        rb.b.add_profile(profile_row{s, (1000 + static_cast<int64_t>(rnd() % 19'000)) * ms, 0, v});
      }
      std::stable_sort(rb.b.profiles.begin(), rb.b.profiles.end(),
                       [](const profile_row& x, const profile_row& y) {
                         return std::pair{x.series, x.time_ns} < std::pair{y.series, y.time_ns};
                       });
      parts.push_back(points_of(rb.b, req));
    }
    for (auto agg : {series_aggregation::sum, series_aggregation::average})
      for (int64_t limit : {0, 1, 2, 3, 5, 8, 100}) {
        std::vector<series_partial> a = parts, b = parts;
        series_partial merged;
        merge_series(merged, a);
        const auto want = render_series(merged, req.group_by, agg, limit);
        EXPECT_EQ(render_series(b, req.group_by, agg, limit), want) << round << " " << limit;
        EXPECT_TRUE(b.empty());
      }
  }
}

TEST(series_query, exemplars_are_the_highest_valued_profile_of_each_point) {
  rows_block rb;
  const uint32_t a =
      rb.add_series({{"__name__", "process_cpu"}, {"pod", "a-1"}, {"service_name", "a"}});
  const uint32_t a2 = rb.add_series({{"pod", "a-2"}, {"service_name", "a"}});
  const uint32_t b = rb.add_series({{"pod", "b-1"}, {"service_name", "b"}});
  rb.add(a, 1000 * ms, 10, 1);
  rb.add(a2, 1000 * ms + 5, 30, 2);  // the best of point (a, 1000)
  rb.add(a, 1500 * ms, 7, 3);
  rb.add(a2, 1600 * ms, 7, 4);  // ties with id 3 on value: the earlier one wins
  rb.add(b, 1000 * ms, 1);      // no id: never an exemplar
  series_request req = series_range(1000, 5000, 1000);
  req.group_by = {"service_name"};
  req.exemplars = true;
  const series_partial p = points_of(rb.b, req);
  ASSERT_EQ(p.point_exemplar.size(), p.point_ms.size());
  const auto out = render_series(p, req.group_by, series_aggregation::sum, 0);
  ASSERT_EQ(out.size(), 2u);
  ASSERT_EQ(out[0].labels, (label_set{{"service_name", "a"}}));
  ASSERT_EQ(out[0].points.size(), 2u);
  EXPECT_EQ(out[0].points[0].value, 40);
  // Labels leave out group_by and internal names.
  EXPECT_EQ(out[0].exemplars, (std::vector<exemplar>{{1000, 30, 0xabcd, 2, {{"pod", "a-2"}}},
                                                     {1500, 7, 0xabcd, 3, {{"pod", "a-1"}}}}));
  EXPECT_EQ(out[1].exemplars, (std::vector<exemplar>{exemplar{}}));  // a point without one

  // Partials merged in any order pick the same exemplars as one block.
  rows_block left, right;
  const uint32_t la = left.add_series({{"pod", "a-1"}, {"service_name", "a"}});
  const uint32_t ra = right.add_series({{"pod", "a-2"}, {"service_name", "a"}});
  left.add(la, 1000 * ms, 10, 1);
  right.add(ra, 1000 * ms + 5, 30, 2);
  left.add(la, 1500 * ms, 7, 3);
  right.add(ra, 1600 * ms, 7, 4);
  series_partial lr = points_of(left.b, req), rl = points_of(right.b, req);
  merge_one(lr, points_of(right.b, req));
  merge_one(rl, points_of(left.b, req));
  EXPECT_EQ(lr, rl);
  const auto merged = render_series(lr, req.group_by, series_aggregation::sum, 0);
  ASSERT_EQ(merged.size(), 1u);
  EXPECT_EQ(merged[0].points, out[0].points);
  EXPECT_EQ(merged[0].exemplars, out[0].exemplars);

  // Without the flag nothing is picked.
  req.exemplars = false;
  EXPECT_TRUE(points_of(rb.b, req).point_exemplar.empty());
  const series_partial plain = points_of(rb.b, req);
  for (const auto& s : render_series(plain, req.group_by, series_aggregation::sum, 0))
    EXPECT_TRUE(s.exemplars.empty());
}

TEST(series_query, real_profiles_sum_to_the_peer_totals) {
  const block_data b = test::block_of({{"go/workpool.cpu.000.pb.gz", 10'000 * ms},
                                       {"go/workpool.cpu.001.pb.gz", 20'000 * ms},
                                       {"go/workpool.cpu.002.pb.gz", 30'000 * ms}});
  auto m = parse_selector("{__profile_type__=\"" + cpu + "\"}");
  ASSERT_TRUE(m.ok());
  const auto ids = select_series(b, *m);
  series_request req = series_range(10'000, 30'000, 10'000);
  series_partial p;
  select_series_points(b, ids, req, p);
  const auto pts = only_points(render_series(p, {}, series_aggregation::sum, 0));
  ASSERT_EQ(pts.size(), 3u);
  double sum = 0;
  for (const auto& pt : pts) sum += pt.value;
  EXPECT_EQ(sum, test::expected_totals("merged", "go-workpool-cpu").at("cpu/nanoseconds"));
  EXPECT_EQ(pts[0].value, test::expected_totals("go", "workpool.cpu.000").at("cpu/nanoseconds"));
}

TEST(series_query, call_site_values_match_the_flame_graph_through_the_prefix) {
  const block_data b = test::block_of({{"go/workpool.cpu.000.pb.gz", 10'000 * ms},
                                       {"go/workpool.cpu.001.pb.gz", 20'000 * ms},
                                       {"go/workpool.cpu.002.pb.gz", 30'000 * ms}});
  auto m = parse_selector("{__profile_type__=\"" + cpu + "\"}");
  ASSERT_TRUE(m.ok());
  const auto ids = select_series(b, *m);
  flame_tree all;
  merge_stacks(b, ids, 0, 40'000 * ms, all);
  all.finalize();
  // The heaviest root child and, below it, its heaviest child.
  auto heaviest_child = [&](uint32_t parent) {
    uint32_t best = 0;
    for (uint32_t i = 1; i < all.size(); ++i)
      if (all.nodes()[i].parent == parent &&
          (best == 0 || all.nodes()[i].total > all.nodes()[best].total))
        best = i;
    return best;
  };
  const uint32_t top = heaviest_child(flame_tree::root);
  const uint32_t second = heaviest_child(top);
  ASSERT_NE(second, 0u);
  series_request req = series_range(10'000, 30'000, 10'000);
  req.call_site = {std::string(all.name_of(top)), std::string(all.name_of(second))};
  series_partial p;
  select_series_points(b, ids, req, p);
  const auto pts = only_points(render_series(p, {}, series_aggregation::sum, 0));
  double sum = 0;
  for (const auto& pt : pts) sum += pt.value;
  EXPECT_EQ(sum, all.nodes()[second].total);
  EXPECT_LT(sum, all.total());
  // Per point: the flame graph of that profile alone through the same prefix.
  for (const auto& pt : pts) {
    flame_tree one;
    merge_stacks(b, ids, pt.timestamp_ms * ms, pt.timestamp_ms * ms + 1, req.call_site, one);
    one.finalize();
    EXPECT_EQ(pt.value, one.total()) << pt.timestamp_ms;
  }
}

}  // namespace
}  // namespace hearth::query
