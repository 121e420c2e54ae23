#include "query/diff.hpp"

#include <gtest/gtest.h>

#include "query/block_query.hpp"
#include "query/test_util.hpp"

namespace hearth::query {
namespace {

using levels = std::vector<std::vector<int64_t>>;

flame_tree tree(const std::vector<std::pair<std::vector<std::string>, int64_t>>& stacks) {
  flame_tree t;
  for (const auto& [frames, v] : stacks) {
    uint32_t n = flame_tree::root;
    for (const auto& f : frames) n = t.child(n, f);
    t.add_self(n, v);
  }
  t.finalize();
  return t;
}

// Left: a;b=3 a;c=2 d=5. Right: a;b=1 e=4.
flame_tree left_tree() {
  return tree({{{"a", "b"}, 3}, {{"a", "c"}, 2}, {{"d"}, 5}});
}
flame_tree right_tree() {
  return tree({{{"a", "b"}, 1}, {{"e"}, 4}});
}

TEST(diff, aligns_both_trees_into_seven_value_levels) {
  auto g = render_flame_graph_diff(left_tree(), right_tree(), 0);
  ASSERT_TRUE(g.ok());
  EXPECT_EQ(g->names, (std::vector<std::string>{"total", "e", "d", "a", "c", "b"}));
  EXPECT_EQ(g->levels, (levels{{0, 10, 0, 0, 5, 0, 0},
                               {0, 5, 0, 0, 1, 0, 3, 0, 5, 5, 0, 0, 0, 2, 0, 0, 0, 0, 4, 4, 1},
                               {0, 3, 3, 0, 1, 1, 5, 0, 2, 2, 0, 0, 0, 4}}));
  EXPECT_EQ(g->total, 15);
  EXPECT_EQ(g->max_self, 5);
  EXPECT_EQ(g->left_ticks, 10);
  EXPECT_EQ(g->right_ticks, 5);
}

TEST(diff, max_nodes_folds_children_below_the_threshold_into_other) {
  // Aligned totals max(l, r): root 10, a 5, d 5, e 4, b 3, c 2; the 3rd largest is 5.
  auto g = render_flame_graph_diff(left_tree(), right_tree(), 3);
  ASSERT_TRUE(g.ok());
  EXPECT_EQ(g->names, (std::vector<std::string>{"total", "other", "d", "a"}));
  EXPECT_EQ(g->levels, (levels{{0, 10, 0, 0, 5, 0, 0},
                               {0, 5, 0, 0, 1, 0, 3, 0, 5, 5, 0, 0, 0, 2, 0, 0, 0, 0, 4, 4, 1},
                               {0, 5, 5, 0, 1, 1, 1}}));
  EXPECT_EQ(g->max_self, 5);
}

TEST(diff, refuses_negative_values_and_handles_empty_trees) {
  EXPECT_FALSE(render_flame_graph_diff(tree({{{"a"}, -1}}), right_tree(), 0).ok());
  EXPECT_FALSE(render_flame_graph_diff(left_tree(), tree({{{"a"}, -1}}), 0).ok());
  auto g = render_flame_graph_diff(flame_tree(), flame_tree(), 0);
  ASSERT_TRUE(g.ok());
  EXPECT_EQ(g->names, (std::vector<std::string>{"total"}));
  EXPECT_EQ(g->levels, (levels{{0, 0, 0, 0, 0, 0, 0}}));
}

TEST(diff, a_real_diff_keeps_both_sides_exact) {
  const block_data b = test::block_of(
      {{"go/workpool.cpu.000.pb.gz", 1000}, {"go/mapindex.cpu.000.pb.gz", 2000, "other_service"}});
  auto m = parse_selector(R"({__type__="cpu", service_name="svc"})");
  auto n = parse_selector(R"({__type__="cpu", service_name="other_service"})");
  ASSERT_TRUE(m.ok() && n.ok());
  flame_tree l, r;
  merge_stacks(b, select_series(b, *m), 0, 5000, l);
  merge_stacks(b, select_series(b, *n), 0, 5000, r);
  l.finalize();
  r.finalize();
  for (int64_t max_nodes : {int64_t{0}, int64_t{50}}) {
    auto g = render_flame_graph_diff(l, r, max_nodes);
    ASSERT_TRUE(g.ok());
    EXPECT_EQ(g->left_ticks, l.total());
    EXPECT_EQ(g->right_ticks, r.total());
    // Each level's spans tile at most the root on both sides; level 1 tiles it exactly.
    for (const auto& level : g->levels) {
      int64_t lsum = 0, rsum = 0;
      for (size_t i = 0; i < level.size(); i += 7) {
        EXPECT_GE(level[i], 0);
        EXPECT_GE(level[i + 3], 0);
        lsum += level[i] + level[i + 1];
        rsum += level[i + 3] + level[i + 4];
      }
      EXPECT_LE(lsum, l.total());
      EXPECT_LE(rsum, r.total());
    }
    int64_t l1 = 0, r1 = 0;
    for (size_t i = 0; i < g->levels[1].size(); i += 7)
      l1 += g->levels[1][i + 1], r1 += g->levels[1][i + 4];
    EXPECT_EQ(l1, l.total());
    EXPECT_EQ(r1, r.total());
    size_t nodes = 0;
    for (const auto& level : g->levels) nodes += level.size() / 7;
    if (max_nodes == 50) {
      EXPECT_LT(nodes, 150u);
    }
  }
}

TEST(diff, flamebearer_double_json) {
  auto g = render_flame_graph_diff(tree({{{"a"}, 2}}), tree({{{"a"}, 1}, {{"b<"}, 1}}), 0);
  ASSERT_TRUE(g.ok());
  flamebearer_meta meta;
  meta.sample_type = "cpu";
  meta.sample_unit = "nanoseconds";
  EXPECT_EQ(
      render_flamebearer_diff_json(*g, meta),
      R"({"version":1,"flamebearer":{"names":["total","b\u003c","a"],)"
      R"("levels":[[0,2,0,0,2,0,0],[0,2,2,0,1,1,2,0,0,0,0,1,1,1]],"numTicks":4,"maxSelf":2},)"
      R"("metadata":{"format":"double","spyName":"","sampleRate":1000000000,"units":"samples",)"
      R"("name":"cpu"},"timeline":null,"groups":null,"heatmap":null,"leftTicks":2,"rightTicks":2})");
}

}  // namespace
}  // namespace hearth::query
