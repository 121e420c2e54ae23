#include "query/partial_cache.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <functional>
#include <thread>

#include "format/compact.hpp"
#include "query/test_util.hpp"

namespace hearth::query {
namespace {

using test::s_ns;
const std::string& cpu = test::cpu_type;

query_spec stacks(int64_t start, int64_t end) { return test::stacks_query(start, end); }

block_read block(int64_t min_s, int64_t max_s) {
  block_read r;
  r.path = "/data/anonymous/0/segments/00000000000000a1.seg";
  r.min_time_ns = min_s * s_ns;
  r.max_time_ns = max_s * s_ns;
  return r;
}

void expect_same(const partial& a, const partial& b) {
  EXPECT_EQ(a.tree.names, b.tree.names);
  EXPECT_EQ(a.tree.parents, b.tree.parents);
  EXPECT_EQ(a.tree.name_ids, b.tree.name_ids);
  EXPECT_EQ(a.tree.selfs, b.tree.selfs);
  EXPECT_EQ(a.point_times_ns, b.point_times_ns);
  EXPECT_EQ(a.point_values, b.point_values);
  EXPECT_EQ(a.point_groups, b.point_groups);
}

TEST(partial_cache_key, specs_differing_in_any_field_but_the_range_never_share_a_key) {
  const query_spec base = stacks(0, 100 * s_ns);
  const block_read r = block(10, 30);
  const auto k0 = partial_cache_key(base, r);
  ASSERT_TRUE(k0);
  // One change per query_spec field (start_ns and end_ns aside), and per part of the read.
  const std::vector<std::pair<const char*, std::function<void(query_spec&, block_read&)>>> changes = {
      {"profile_type", [](query_spec& q, block_read&) { q.profile_type = "memory:alloc_space:bytes:space:bytes"; }},
      {"profile_type empty", [](query_spec& q, block_read&) { q.profile_type.clear(); }},
      {"selector", [](query_spec& q, block_read&) { q.selector = "{service_name=\"api\"}"; }},
      {"label_name", [](query_spec& q, block_read&) { q.label_name = "region"; }},
      {"max_rollup_step_ns", [](query_spec& q, block_read&) { q.max_rollup_step_ns = 60 * s_ns; }},
      {"call_site", [](query_spec& q, block_read&) { q.call_site = {"main"}; }},
      {"call_site split", [](query_spec& q, block_read&) { q.call_site = {"ma", "in"}; }},
      {"label_names", [](query_spec& q, block_read&) { q.label_names = {"pod"}; }},
      {"step_ns", [](query_spec& q, block_read&) { q.step_ns = 15 * s_ns; }},
      {"group_by", [](query_spec& q, block_read&) { q.group_by = {"region"}; }},
      {"pgo", [](query_spec& q, block_read&) { q.pgo = true; }},
      {"pgo_keep_locations", [](query_spec& q, block_read&) { q.pgo_keep_locations = 5; }},
      {"pgo_aggregate_callees", [](query_spec& q, block_read&) { q.pgo_aggregate_callees = true; }},
      {"want_points", [](query_spec& q, block_read&) { q.want_points = true; }},
      {"span_ids", [](query_spec& q, block_read&) { q.span_ids = {7}; }},
      {"profile_ids", [](query_spec& q, block_read&) { q.profile_ids = {1, 2}; }},
      {"exemplars", [](query_spec& q, block_read&) { q.exemplars = true; }},
      {"path", [](query_spec&, block_read& b) { b.path += "x"; }},
      {"block times", [](query_spec&, block_read& b) { b.max_time_ns -= 1; }},
      {"rollup_path", [](query_spec&, block_read& b) {
         b.rollup_path = "/r.seg";
         b.rollup_lo_ns = 20 * s_ns;
         b.rollup_hi_ns = 30 * s_ns;
       }},
  };
  std::set<std::string> keys = {*k0};
  for (const auto& [what, change] : changes) {
    query_spec q = base;
    block_read b = r;
    change(q, b);
    auto k = partial_cache_key(q, b);
    ASSERT_TRUE(k) << what;
    EXPECT_NE(*k, *k0) << what;
    EXPECT_TRUE(keys.insert(*k).second) << what << " encodes like another change";
  }
  // Selector text and profile type next to each other: no shifting bytes from one to the other.
  query_spec a = base, b = base;
  a.profile_type = "ab";
  a.selector = "c";
  b.profile_type = "a";
  b.selector = "bc";
  EXPECT_NE(partial_cache_key(a, r), partial_cache_key(b, r));
  // The rollup split is part of the key; without a rollup path it is meaningless and ignored.
  block_read r1 = r, r2 = r;
  r1.rollup_path = r2.rollup_path = "/r.seg";
  r1.rollup_lo_ns = 20 * s_ns;
  r2.rollup_lo_ns = 21 * s_ns;
  EXPECT_NE(partial_cache_key(base, r1), partial_cache_key(base, r2));
  r1.rollup_path = r2.rollup_path = "";
  EXPECT_EQ(partial_cache_key(base, r1), partial_cache_key(base, r2));
}

TEST(partial_cache_key, covering_ranges_share_a_key_and_cutting_ranges_have_none) {
  const block_read r = block(10, 30);
  const auto k = partial_cache_key(stacks(0, 100 * s_ns), r);
  ASSERT_TRUE(k);
  EXPECT_EQ(partial_cache_key(stacks(10 * s_ns, 30 * s_ns + 1), r), k);
  EXPECT_EQ(partial_cache_key(stacks(-5 * s_ns, 3600 * s_ns), r), k);
  EXPECT_FALSE(partial_cache_key(stacks(10 * s_ns + 1, 100 * s_ns), r));  // cuts the start
  EXPECT_FALSE(partial_cache_key(stacks(0, 30 * s_ns), r));               // end is exclusive
  EXPECT_FALSE(partial_cache_key(stacks(15 * s_ns, 20 * s_ns), r));       // inside the block
  EXPECT_FALSE(partial_cache_key(stacks(50 * s_ns, 40 * s_ns), r));       // empty range
  // Only merge_stacks partials are cached.
  for (auto kind : {query_kind::label_names, query_kind::label_values, query_kind::profile_types,
                    query_kind::series_labels, query_kind::select_series, query_kind::merge_pprof,
                    query_kind::profile_stats, query_kind::analyze}) {
    query_spec q = stacks(0, 100 * s_ns);
    q.kind = static_cast<uint8_t>(kind);
    EXPECT_FALSE(partial_cache_key(q, r)) << int(q.kind);
  }
}

// The claim behind the key: over a block inside the range, the partial (tree and timeline
// points, grouped or not, with or without a rollup split) does not depend on the range.
TEST(partial_cache_key, a_block_inside_the_range_yields_the_same_partial_for_every_covering_range) {
  const std::vector<test::profile_file> files = {
      {"go/workpool.cpu.000.pb.gz", 10 * s_ns, "api", {{"region", "eu"}}},
      {"go/workpool.cpu.001.pb.gz", 20 * s_ns, "api", {{"region", "us"}}},
      {"go/mapindex.cpu.000.pb.gz", 30 * s_ns, "db"}};
  const block_data raw = test::block_of(files);
  ASSERT_EQ(raw.min_time_ns, 10 * s_ns);
  ASSERT_EQ(raw.max_time_ns, 30 * s_ns);
  merge_options mo;
  mo.bucket_ns = 20 * s_ns;
  const block_data* in[] = {&raw};
  auto rolled = merge_blocks(in, mo);
  ASSERT_TRUE(rolled.ok()) << rolled.err().to_string();

  auto eval = [&](query_spec q, int64_t lo, int64_t hi, bool with_rollup) {
    auto ev = evaluator::make(q);
    EXPECT_TRUE(ev.ok());
    if (with_rollup) {
      ev->add(raw, q.start_ns, lo);
      ev->add(*rolled, lo, hi);
      ev->add(raw, hi, q.end_ns);
    } else {
      ev->add(raw);
    }
    return std::move(*ev).finish();
  };
  for (bool with_rollup : {false, true}) {
    for (int variant = 0; variant < 3; ++variant) {
      query_spec wide = stacks(-100 * s_ns, 1000 * s_ns), tight = stacks(10 * s_ns, 30 * s_ns + 1);
      for (query_spec* q : {&wide, &tight}) {
        q->want_points = variant > 0;
        if (variant == 2) q->group_by = {"region"};
      }
      block_read r = block(10, 30);
      if (with_rollup) {
        r.rollup_path = "/r.seg";
        r.rollup_lo_ns = 20 * s_ns;
        r.rollup_hi_ns = 40 * s_ns;
      }
      ASSERT_EQ(partial_cache_key(wide, r), partial_cache_key(tight, r));
      const partial a = eval(wide, r.rollup_lo_ns, r.rollup_hi_ns, with_rollup);
      const partial b = eval(tight, r.rollup_lo_ns, r.rollup_hi_ns, with_rollup);
      EXPECT_FALSE(a.tree.parents.empty());
      if (variant > 0) {
        // The rollup answers [20 s, 40 s): the 20 s and 30 s profiles (two series), each series'
        // row at the time of its first profile in the bucket.
        auto times = a.point_times_ns;
        std::sort(times.begin(), times.end());
        EXPECT_EQ(times, (std::vector<int64_t>{10 * s_ns, 20 * s_ns, 30 * s_ns}));
      } else {
        EXPECT_TRUE(a.point_times_ns.empty());
      }
      expect_same(a, b);
    }
  }
}

std::shared_ptr<const partial> sized(size_t points) {
  auto p = std::make_shared<partial>();
  p->point_times_ns.assign(points, 1);
  p->point_values.assign(points, 2);
  return p;
}

TEST(partial_cache, stays_within_its_budget_evicting_the_least_recently_used) {
  const uint64_t one = memory_of(*sized(1000)) + 2 * 1 + 64;  // what put() counts for a 1-byte key
  partial_cache c(3 * one);
  c.put("a", sized(1000));
  c.put("b", sized(1000));
  c.put("c", sized(1000));
  EXPECT_EQ(c.size(), 3u);
  EXPECT_EQ(c.bytes(), 3 * one);
  ASSERT_TRUE(c.get("a"));  // now a is the most recent: b goes next
  c.put("d", sized(1000));
  EXPECT_EQ(c.size(), 3u);
  EXPECT_LE(c.bytes(), c.max_bytes());
  EXPECT_FALSE(c.get("b"));
  EXPECT_TRUE(c.get("a"));
  EXPECT_TRUE(c.get("c"));
  EXPECT_TRUE(c.get("d"));
  // Replacing a key does not count it twice.
  c.put("d", sized(1000));
  EXPECT_EQ(c.bytes(), 3 * one);
  // A partial larger than the whole budget is not kept (and evicts nothing).
  c.put("huge", sized(10000));
  EXPECT_FALSE(c.get("huge"));
  EXPECT_EQ(c.size(), 3u);
  // A bigger one pushes out as many as needed, oldest first (a, c were used before d).
  c.put("two", sized(2000));
  EXPECT_TRUE(c.get("two"));
  EXPECT_TRUE(c.get("d"));
  EXPECT_FALSE(c.get("a"));
  EXPECT_FALSE(c.get("c"));
  EXPECT_LE(c.bytes(), c.max_bytes());
  // A zero budget keeps nothing.
  partial_cache none(0);
  none.put("a", sized(1));
  EXPECT_FALSE(none.get("a"));
  EXPECT_EQ(none.bytes(), 0u);
}

TEST(partial_cache, values_are_shared_unchanged) {
  partial_cache c(1 << 20);
  auto p = sized(10);
  c.put("k", p);
  auto got = c.get("k");
  EXPECT_EQ(got.get(), p.get());
  EXPECT_EQ(got->point_values, std::vector<int64_t>(10, 2));
}

TEST(partial_cache, is_safe_to_use_from_many_threads) {
  partial_cache c(50 * (memory_of(*sized(100)) + 64 + 8));
  std::vector<std::thread> ts;
  for (int t = 0; t < 4; ++t)
    ts.emplace_back([&c, t] {
      for (int i = 0; i < 2000; ++i) {
        std::string key = std::to_string((i * 7 + t) % 120);
        if (auto p = c.get(key))
          EXPECT_EQ(p->point_times_ns.size(), 100u);
        else
          c.put(key, sized(100));
      }
    });
  for (auto& t : ts) t.join();
  EXPECT_LE(c.bytes(), c.max_bytes());
  EXPECT_GT(c.size(), 0u);
  EXPECT_LE(c.size(), 50u);
}

}  // namespace
}  // namespace hearth::query
