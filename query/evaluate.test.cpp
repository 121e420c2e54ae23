#include "query/evaluate.hpp"

#include <gtest/gtest.h>

#include <tuple>

#include "format/segment.hpp"
#include "query/test_util.hpp"

namespace hearth::query {
namespace {

using test::s_ns;
const std::string& cpu = test::cpu_type;

query_spec stacks(int64_t start, int64_t end) {
  return test::stacks_query(start, end);
}

partial run(const query_spec& q, const std::vector<const block_data*>& blocks) {
  auto ev = evaluator::make(q);
  EXPECT_TRUE(ev.ok()) << ev.err().to_string();
  for (const auto* b : blocks) ev->add(*b);
  return std::move(*ev).finish();
}

TEST(evaluate, partials_of_split_blocks_merge_to_the_answer_of_one_block) {
  const std::vector<test::profile_file> files = {
      {"go/workpool.cpu.000.pb.gz", 10 * s_ns, "api", {{"region", "eu"}}},
      {"go/workpool.cpu.001.pb.gz", 20 * s_ns, "api", {{"region", "us"}}},
      {"go/mapindex.cpu.000.pb.gz", 30 * s_ns, "db"}};
  const block_data all = test::block_of(files);
  const block_data a = test::block_of({files[0]});
  const block_data b = test::block_of({files[1], files[2]});

  query_spec q = stacks(0, 100 * s_ns);
  q.want_points = true;
  q.group_by = {"region"};
  merger one, two;
  one.add(run(q, {&all}));
  two.add(run(q, {&a}));
  two.add(run(q, {&b}));
  one.tree().finalize();
  two.tree().finalize();
  EXPECT_EQ(render_flame_graph(one.tree(), 8192), render_flame_graph(two.tree(), 8192));
  // The peer's merged answer for the two workpool profiles plus mapindex.
  EXPECT_EQ(one.tree().total(), 5520000000 + 5610000000 + 5870000000);
  const auto pts = two.points();
  ASSERT_EQ(pts.size(), 3u);
  EXPECT_EQ(pts[0], (timeline_point{10 * s_ns, 5520000000, "eu"}));
  EXPECT_EQ(pts[1], (timeline_point{20 * s_ns, 5610000000, "us"}));
  EXPECT_EQ(pts[2], (timeline_point{30 * s_ns, 5870000000, ""}));

  // Ranges are half-open and a block may be added in pieces (rollup splits).
  auto ev = evaluator::make(stacks(10 * s_ns, 30 * s_ns));
  ASSERT_TRUE(ev.ok());
  ev->add(all, 0, 15 * s_ns);
  ev->add(all, 15 * s_ns, 100 * s_ns);
  merger m;
  m.add(std::move(*ev).finish());
  m.tree().finalize();
  EXPECT_EQ(m.tree().total(), 5520000000 + 5610000000);
}

TEST(evaluate, every_kind_over_a_real_block) {
  const block_data b = test::block_of({{"go/workpool.cpu.000.pb.gz", 10 * s_ns, "api"},
                                       {"go/workpool.heap.pb.gz", 20 * s_ns, "api"}});
  query_spec q = stacks(0, 100 * s_ns);

  q.kind = static_cast<uint8_t>(query_kind::label_values);
  q.profile_type.clear();
  q.label_name = "service_name";
  EXPECT_EQ(run(q, {&b}).values, std::vector<std::string>{"api"});

  q.kind = static_cast<uint8_t>(query_kind::profile_types);
  auto types = run(q, {&b}).values;
  EXPECT_NE(std::find(types.begin(), types.end(), cpu), types.end());

  q.kind = static_cast<uint8_t>(query_kind::series_labels);
  q.label_names = {"__profile_type__"};
  EXPECT_EQ(run(q, {&b}).label_sets.size(), types.size());

  q = stacks(0, 100 * s_ns);
  q.kind = static_cast<uint8_t>(query_kind::select_series);
  q.step_ns = 60 * s_ns;
  auto p = run(q, {&b});
  int64_t sum = 0;
  for (auto v : p.series.point_sum) sum += v;
  EXPECT_EQ(sum, 5520000000);

  q.kind = static_cast<uint8_t>(query_kind::merge_pprof);
  p = run(q, {&b});
  int64_t pprof_sum = 0;
  for (auto v : p.pprof.values) pprof_sum += v;
  EXPECT_EQ(pprof_sum, 5520000000);

  q.kind = static_cast<uint8_t>(query_kind::analyze);
  p = run(q, {&b});
  EXPECT_EQ(p.counts.series, 1u);
  EXPECT_EQ(p.counts.profiles, 1u);
  EXPECT_GT(p.counts.samples, 0u);

  q.kind = static_cast<uint8_t>(query_kind::profile_stats);
  EXPECT_EQ(run(q, {&b}).stats, (profile_stats{true, 10000, 20000}));
}

// A query answers the same from a block decoded only as deep as depth_needed says (rows as
// columns, full rows: as the readers decode for it) as from the whole block.
TEST(evaluate, queries_answer_alike_from_blocks_decoded_as_deep_as_they_need) {
  const block_data b = test::block_of({{"go/workpool.cpu.000.pb.gz", 10 * s_ns, "api"},
                                       {"go/workpool.heap.pb.gz", 20 * s_ns, "api"},
                                       {"go/mapindex.cpu.000.pb.gz", 70 * s_ns, "db"}});
  auto file = encode_segment(b, segment_codec::lz4, 1);
  ASSERT_TRUE(file.ok()) << file.err().to_string();
  auto full = decode_segment(as_bytes(*file));
  auto columns = decode_segment_rows(as_bytes(*file), row_fields::columns);
  auto rows = decode_segment_rows(as_bytes(*file), row_fields::all);
  ASSERT_TRUE(full.ok() && columns.ok() && rows.ok());
  ASSERT_TRUE(columns->profiles.empty());
  int at_depth[3] = {0, 0, 0};
  // The whole range, then ranges that each take only some rows (every row decides an answer).
  const std::pair<int64_t, int64_t> ranges[] = {
      {0, 200 * s_ns}, {0, 15 * s_ns}, {15 * s_ns, 30 * s_ns}, {30 * s_ns, 200 * s_ns}};
  for (const auto& [from, to] : ranges)
    for (uint8_t kind = 1; kind <= static_cast<uint8_t>(query_kind::analyze); ++kind)
      for (bool call_site : {false, true})
        for (bool exemplars : {false, true}) {
          SCOPED_TRACE("kind " + std::to_string(kind) + " call site " + std::to_string(call_site) +
                       " exemplars " + std::to_string(exemplars) + " from " + std::to_string(from));
          query_spec q = stacks(from, to);
          q.kind = kind;
          q.label_name = "service_name";
          q.step_ns = 60 * s_ns;
          q.group_by = {"service_name"};
          q.exemplars = exemplars;
          if (call_site) q.call_site = {"runtime.goexit"};
          const bool series = kind == static_cast<uint8_t>(query_kind::select_series);
          const block_depth want =
              kind == static_cast<uint8_t>(query_kind::merge_stacks) ||
                      kind == static_cast<uint8_t>(query_kind::merge_pprof) || (series && call_site)
                  ? block_depth::whole
              : kind == static_cast<uint8_t>(query_kind::analyze) || (series && exemplars)
                  ? block_depth::rows
                  : block_depth::row_columns;
          EXPECT_EQ(depth_needed(q), want);
          ++at_depth[static_cast<int>(want)];
          if (want == block_depth::whole) continue;
          const partial a = run(q, {&*full});
          const partial r = run(q, {want == block_depth::rows ? &*rows : &*columns});
          EXPECT_EQ(a.values, r.values);
          EXPECT_EQ(a.label_sets, r.label_sets);
          EXPECT_EQ(a.series, r.series);
          EXPECT_EQ(a.stats, r.stats);
          EXPECT_EQ(std::tie(a.counts.series, a.counts.profiles, a.counts.samples),
                    std::tie(r.counts.series, r.counts.profiles, r.counts.samples));
          if (series && from == 0 && to == 200 * s_ns) {
            EXPECT_EQ(a.series.point_sum.size(), 2u);  // api at 60 s, db at 120 s
            EXPECT_EQ(a.series.point_exemplar.size(), exemplars ? 2u : 0u);
          }
        }
  // Per range: 5 kinds x 4, and SelectSeries without a call site or exemplars; AnalyzeQuery x 4,
  // and SelectSeries with exemplars only.
  EXPECT_EQ(at_depth[0], 4 * 21);
  EXPECT_EQ(at_depth[1], 4 * 5);
  // Exemplars asked of a block holding columns are empty, never read out of bounds.
  query_spec q = stacks(0, 100 * s_ns);
  q.kind = static_cast<uint8_t>(query_kind::select_series);
  q.step_ns = 60 * s_ns;
  q.exemplars = true;
  for (const auto& group_by : {std::vector<std::string>{}, {"service_name"}}) {
    q.group_by = group_by;  // one group of two series (the grid); a series per group (streaming)
    const partial p = run(q, {&*columns});
    ASSERT_EQ(p.series.point_exemplar.size(), p.series.point_sum.size());
    ASSERT_FALSE(p.series.point_sum.empty());
    for (const auto& e : p.series.point_exemplar) EXPECT_EQ(e.id_hi | e.id_lo, 0u);
  }
}

TEST(evaluate, bad_specs_are_refused_with_the_reason) {
  query_spec q = stacks(0, 1);
  q.selector = "{a=}";
  EXPECT_EQ(evaluator::make(q).err().code, errc::bad_selector);
  q = stacks(0, 1);
  q.kind = 42;
  EXPECT_EQ(evaluator::make(q).err().code, errc::invalid_argument);
  q = stacks(0, 1);
  q.kind = static_cast<uint8_t>(query_kind::select_series);
  q.step_ns = 1000;  // 1 µs
  EXPECT_EQ(evaluator::make(q).err().code, errc::invalid_argument);
}

TEST(evaluate, merge_flat_tolerates_malformed_partials) {
  flat_tree t;
  t.names = {"total", "a"};
  t.parents = {0, 5, 1};   // node 1 names a parent after it: attached at the root
  t.name_ids = {0, 1, 9};  // node 2 names no name: "?"
  t.selfs = {0, 3, 4};
  flame_tree into;
  merge_flat(t, into);
  into.finalize();
  EXPECT_EQ(into.total(), 7);
  EXPECT_TRUE(into.find_name("?").has_value());
}

// choose_rollup takes the coarsest step whose whole buckets inside the range are not empty, only
// for flame graphs and pprof exports; raw_rows_outside says whether the raw block is still needed.
TEST(evaluate, rollup_choice_and_when_the_raw_block_is_needed) {
  constexpr int64_t m = 60 * s_ns, h = 3600 * s_ns, day = 24 * h;
  query_spec q;
  q.kind = static_cast<uint8_t>(query_kind::merge_stacks);
  q.max_rollup_step_ns = INT64_MAX;
  q.start_ns = 10 * day;
  q.end_ns = 11 * day;
  const std::vector<int64_t> steps = {m, h};
  rollup_choice c = choose_rollup(q, steps);
  EXPECT_EQ(c.index, 1u);
  EXPECT_EQ(c.lo_ns, 10 * day);
  EXPECT_EQ(c.hi_ns, 11 * day);
  // A day block inside the range: the 1 h rollup answers alone.
  EXPECT_FALSE(raw_rows_outside(q, c, 10 * day, 11 * day - 15 * s_ns));
  // Unaligned range: whole hours from the rollup, the edges from the raw block.
  q.start_ns = 10 * day + 90 * m;
  q.end_ns = 10 * day + 5 * h + 30 * s_ns;
  c = choose_rollup(q, steps);
  EXPECT_EQ(c.index, 1u);
  EXPECT_EQ(c.lo_ns, 10 * day + 2 * h);
  EXPECT_EQ(c.hi_ns, 10 * day + 5 * h);
  EXPECT_TRUE(raw_rows_outside(q, c, 10 * day, 11 * day - 1));
  EXPECT_FALSE(raw_rows_outside(q, c, 10 * day + 2 * h, 10 * day + 5 * h - 1));
  // Rows before the range's start or from its end on are not selected: no need for them.
  EXPECT_FALSE(raw_rows_outside(q, c, 10 * day, 10 * day + 89 * m));
  EXPECT_FALSE(raw_rows_outside(q, c, 10 * day + 6 * h, 11 * day - 1));
  EXPECT_TRUE(raw_rows_outside(q, c, 10 * day + 5 * h, 11 * day - 1));  // [5 h, 5 h + 30 s)
  // Less than an hour: the 1 min rollup.
  q.start_ns = 10 * day + 30 * s_ns;
  q.end_ns = 10 * day + 30 * m;
  c = choose_rollup(q, steps);
  EXPECT_EQ(c.index, 0u);
  EXPECT_EQ(c.lo_ns, 10 * day + m);
  EXPECT_EQ(c.hi_ns, 10 * day + 30 * m);
  // Less than a minute, a capped step, other kinds, a call site, profile ids: none.
  q.end_ns = q.start_ns + 20 * s_ns;
  EXPECT_EQ(choose_rollup(q, steps).index, SIZE_MAX);
  q.start_ns = 10 * day;
  q.end_ns = 11 * day;
  q.max_rollup_step_ns = m;
  EXPECT_EQ(choose_rollup(q, steps).index, 0u);
  q.max_rollup_step_ns = 0;
  EXPECT_EQ(choose_rollup(q, steps).index, SIZE_MAX);
  q.max_rollup_step_ns = INT64_MAX;
  query_spec pprof = q;  // a pprof export reads them as a flame graph does
  pprof.kind = static_cast<uint8_t>(query_kind::merge_pprof);
  EXPECT_EQ(choose_rollup(pprof, steps).index, 1u);
  for (auto f : std::vector<void (*)(query_spec&)>{
           [](query_spec& x) { x.kind = static_cast<uint8_t>(query_kind::select_series); },
           [](query_spec& x) { x.kind = static_cast<uint8_t>(query_kind::analyze); },
           [](query_spec& x) { x.call_site = {"main"}; },
           [](query_spec& x) {
             x.profile_ids = {1, 2};
           },
           [](query_spec& x) { x.span_ids = {7}; },
           [](query_spec& x) {
             x.kind = static_cast<uint8_t>(query_kind::merge_pprof);
             x.span_ids = {7};
           },
       }) {
    query_spec x = q;
    f(x);
    EXPECT_EQ(choose_rollup(x, steps).index, SIZE_MAX);
  }
  // Negative times floor towards minus infinity; no overflow at the ends of time.
  q.start_ns = -h - 1;
  q.end_ns = 0;
  c = choose_rollup(q, steps);
  EXPECT_EQ(c.index, 1u);
  EXPECT_EQ(c.lo_ns, -h);
  q.start_ns = INT64_MAX - 10;
  q.end_ns = INT64_MAX;
  EXPECT_EQ(choose_rollup(q, steps).index, SIZE_MAX);
  EXPECT_TRUE(raw_rows_outside(q, rollup_choice{}, 0, 0));  // no rollup: always the raw block
}

}  // namespace
}  // namespace hearth::query

namespace hearth::query {
namespace {

// A span query through the evaluator: only the span samples with the given ids, in the tree and in
// the per-profile points; ids must be sorted and unique.
TEST(evaluate, span_ids_filter_the_tree_and_the_points) {
  block_data b = test::block_of(
      {{"go/workpool.cpu.000.pb.gz", 5 * s_ns}, {"go/workpool.cpu.001.pb.gz", 6 * s_ns}});
  // The cpu profile at 6 s gets span samples (the `samples` type's rows share its stacks).
  size_t row = b.profiles.size();
  for (size_t i = 0; i < b.profiles.size(); ++i)
    for (const auto& l : series_labels(b, b.profiles[i].series))
      if (l.name == "__type__" && l.value == "cpu" && b.profiles[i].time_ns == 6 * s_ns) row = i;
  ASSERT_LT(row, b.profiles.size());
  profile_row& r = b.profiles[row];
  b.spans = {{b.samples[r.sample_begin].stack, 0xa, 3},
             {b.samples[r.sample_begin + 1].stack, 0xb, 4}};
  r.span_begin = 0;
  r.span_count = 2;
  query_spec q = stacks(0, 10 * s_ns);
  q.want_points = true;
  q.span_ids = {0xa, 0xb};
  partial p = run(q, {&b});
  merger m;
  m.add(std::move(p));
  m.tree().finalize();
  EXPECT_EQ(m.tree().total(), 7);
  const auto pts = m.points();
  ASSERT_EQ(pts.size(), 1u);
  EXPECT_EQ(pts[0].time_ns, 6 * s_ns);
  EXPECT_EQ(pts[0].value, 7);

  q.span_ids = {0xb, 0xa};
  EXPECT_EQ(evaluator::make(q).err().code, errc::invalid_argument);
  q.span_ids = {0xa, 0xa};
  EXPECT_EQ(evaluator::make(q).err().code, errc::invalid_argument);
}

}  // namespace
}  // namespace hearth::query
