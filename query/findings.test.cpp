#include "query/findings.hpp"

#include <gtest/gtest.h>

#include "query/block_query.hpp"
#include "query/test_util.hpp"

namespace hearth::query {
namespace {

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

TEST(findings, top_functions_with_shares_and_the_hot_path) {
  // main;a;x=5 main;a;y=1 main;b=3 main=1: total 10.
  const flame_tree t =
      tree({{{"main", "a", "x"}, 5}, {{"main", "a", "y"}, 1}, {{"main", "b"}, 3}, {{"main"}, 1}});
  const tree_findings f = find(t, 2);
  EXPECT_EQ(f.total, 10);
  EXPECT_EQ(f.top_self,
            (std::vector<function_share>{{"x", 5, 5, 0.5, 0.5}, {"b", 3, 3, 0.3, 0.3}}));
  EXPECT_EQ(f.top_total,
            (std::vector<function_share>{{"main", 1, 10, 0.1, 1.0}, {"a", 0, 6, 0.0, 0.6}}));
  EXPECT_EQ(f.hot_path,
            (std::vector<path_frame>{{"main", 1, 10, 1.0}, {"a", 0, 6, 0.6}, {"x", 5, 5, 0.5}}));
  EXPECT_EQ(find(t, 0).top_self.size(), 5u);
  EXPECT_EQ(
      render_findings_json(find(tree({{{"f"}, 1}}), 1)),
      R"({"total":1,"topSelf":[{"name":"f","self":1,"total":1,"selfShare":1,"totalShare":1}],)"
      R"("topTotal":[{"name":"f","self":1,"total":1,"selfShare":1,"totalShare":1}],)"
      R"("hotPath":[{"name":"f","self":1,"total":1,"share":1}]})");
  const tree_findings empty = find(flame_tree(), 10);
  EXPECT_TRUE(empty.top_self.empty() && empty.hot_path.empty());
}

TEST(findings, exact_over_a_real_tree_whatever_max_nodes_would_fold) {
  const block_data b = test::block_of({{"go/workpool.cpu.000.pb.gz", 1000}});
  auto m = parse_selector(R"({__type__="cpu"})");
  ASSERT_TRUE(m.ok());
  flame_tree t;
  merge_stacks(b, select_series(b, *m), 0, 2000, t);
  t.finalize();
  const tree_findings f = find(t, 0);
  // Shares of self add up to the whole: nothing is lost to "other".
  double self_shares = 0;
  int64_t self_sum = 0;
  for (const auto& s : f.top_self) self_shares += s.self_share, self_sum += s.self;
  EXPECT_EQ(self_sum, t.total());
  EXPECT_NEAR(self_shares, 1.0, 1e-9);
  // The peer's answer for the heaviest function.
  const auto top = test::expected_top("go", "workpool.cpu.000", "cpu");
  EXPECT_EQ(f.top_self[0].name, "crypto/sha256.block");
  EXPECT_EQ(f.top_self[0].self, top.at("crypto/sha256.block").first);
  // The hot path descends through ever smaller totals to a leaf.
  ASSERT_FALSE(f.hot_path.empty());
  for (size_t i = 1; i < f.hot_path.size(); ++i)
    EXPECT_LE(f.hot_path[i].total, f.hot_path[i - 1].total);
  EXPECT_EQ(f.hot_path.back().self, f.hot_path.back().total);
}

TEST(findings, regressions_rank_share_changes_both_ways) {
  // Left: a=8 b=2 (total 10). Right: a=5 b=3 c=2 (total 10).
  const flame_tree l = tree({{{"a"}, 8}, {{"b"}, 2}});
  const flame_tree r = tree({{{"a"}, 5}, {{"b"}, 3}, {{"c"}, 2}});
  const regression_findings g = find_regressions(l, r, 1);
  EXPECT_EQ(g.left_total, 10);
  EXPECT_EQ(g.right_total, 10);
  ASSERT_EQ(g.self_grew.size(), 1u);
  EXPECT_EQ(g.self_grew[0].name, "c");  // +0.2 beats b's +0.1
  EXPECT_DOUBLE_EQ(g.self_grew[0].self_share_delta, 0.2);
  EXPECT_EQ(g.self_grew[0].left_self, 0);
  ASSERT_EQ(g.self_shrank.size(), 1u);
  EXPECT_EQ(g.self_shrank[0].name, "a");
  EXPECT_DOUBLE_EQ(g.self_shrank[0].total_share_delta, -0.3);
  EXPECT_EQ(find_regressions(l, r, 0).self_grew.size(), 2u);
  EXPECT_TRUE(find_regressions(l, l, 0).total_grew.empty());
  const std::string json = render_regressions_json(g);
  EXPECT_EQ(
      json.rfind(R"({"leftTotal":10,"rightTotal":10,"selfGrew":[{"name":"c","leftSelf":0,)", 0), 0u)
      << json;
  EXPECT_NE(json.find(R"("totalShrank":[{"name":"a")"), std::string::npos) << json;
}

}  // namespace
}  // namespace hearth::query
