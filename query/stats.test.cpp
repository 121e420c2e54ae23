#include "query/stats.hpp"

#include <gtest/gtest.h>

#include "query/test_util.hpp"

namespace hearth::query {
namespace {

constexpr int64_t ms = 1'000'000;

TEST(stats, profile_stats_over_blocks) {
  EXPECT_EQ(block_profile_stats(block_data{}), profile_stats{});
  const block_data a = test::block_of({{"go/workpool.cpu.000.pb.gz", 5000 * ms + 7}});
  const block_data b = test::block_of(
      {{"go/workpool.heap.pb.gz", 9000 * ms}, {"go/workpool.cpu.001.pb.gz", 3000 * ms}});
  EXPECT_EQ(block_profile_stats(a), (profile_stats{true, 5000, 5000}));
  profile_stats s = block_profile_stats(a);
  merge_profile_stats(s, block_profile_stats(b));
  EXPECT_EQ(s, (profile_stats{true, 3000, 9000}));
  profile_stats none;
  merge_profile_stats(none, profile_stats{});
  EXPECT_FALSE(none.data_ingested);
  merge_profile_stats(none, s);
  EXPECT_EQ(none, s);
}

TEST(stats, series_label_sets_projected_and_deduplicated) {
  const block_data b =
      test::block_of({{"go/workpool.cpu.000.pb.gz", 1000, "api", {{"env", "prod"}}},
                      {"go/workpool.cpu.001.pb.gz", 2000, "api", {{"env", "dev"}}},
                      {"go/workpool.heap.pb.gz", 3000, "db"}});
  auto all = parse_selector("{}");
  ASSERT_TRUE(all.ok());
  const std::vector<std::string> names{"service_name", "__profile_type__"};
  const auto sets = series_label_sets(b, *all, names, 0, 10000);
  // api: two cpu profile types (cpu, samples) under two envs -> 2 projected sets; db: 4 heap types.
  ASSERT_EQ(sets.size(), 6u);
  EXPECT_EQ(sets[0], (label_set{{"__profile_type__", "process_cpu:alloc_objects:count:space:bytes"},
                                {"service_name", "db"}}));
  EXPECT_TRUE(std::is_sorted(sets.begin(), sets.end()));
  // Without a projection every label stays, so the two envs are apart.
  auto api = parse_selector(R"({service_name="api", __type__="cpu"})");
  ASSERT_TRUE(api.ok());
  const auto full = series_label_sets(b, *api, {}, 0, 10000);
  ASSERT_EQ(full.size(), 2u);
  EXPECT_NE(std::find(full[0].begin(), full[0].end(), label{"env", "dev"}), full[0].end());
  // Time range: only the first profile.
  EXPECT_EQ(series_label_sets(b, *api, {}, 0, 1500).size(), 1u);
  // Merge is a sorted union.
  auto merged = series_label_sets(b, *api, {}, 0, 1500);
  merge_label_sets(merged, full);
  EXPECT_EQ(merged, full);
  const std::vector<std::string> missing{"no_such_label"};
  EXPECT_TRUE(series_label_sets(b, *all, missing, 0, 10000).empty());
}

}  // namespace
}  // namespace hearth::query
