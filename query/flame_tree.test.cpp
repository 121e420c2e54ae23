#include "query/flame_tree.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <random>

namespace hearth::query {
namespace {

using levels_t = std::vector<std::vector<int64_t>>;

/// Adds `v` at the path "a;b;c" (empty: the root).
void add_stack(flame_tree& t, std::string_view path, int64_t v) {
  uint32_t n = flame_tree::root;
  while (!path.empty()) {
    const size_t semi = path.find(';');
    n = t.child(n, path.substr(0, semi));
    path = semi == std::string_view::npos ? std::string_view() : path.substr(semi + 1);
  }
  t.add_self(n, v);
}

flame_tree make_tree(const std::vector<std::pair<std::string, int64_t>>& stacks) {
  flame_tree t;
  for (const auto& [path, v] : stacks) add_stack(t, path, v);
  t.finalize();
  return t;
}

/// Decodes a flame graph the way Grafana does (a node's parent is the bar of the previous level
/// whose span contains it) into "a;b;c" -> self, checking the layout invariants on the way.
std::map<std::string, int64_t> decode(const flame_graph& g) {
  struct bar {
    int64_t start, total, self;
    std::string path;
  };
  std::vector<std::vector<bar>> bars(g.levels.size());
  std::map<std::string, int64_t> out;
  for (size_t d = 0; d < g.levels.size(); ++d) {
    const auto& l = g.levels[d];
    EXPECT_EQ(l.size() % 4, 0u);
    int64_t prev_end = 0;
    for (size_t i = 0; i + 3 < l.size(); i += 4) {
      EXPECT_GE(l[i], 0) << "overlapping bars at level " << d;
      const int64_t start = prev_end + l[i];
      prev_end = start + l[i + 1];
      EXPECT_LT(static_cast<size_t>(l[i + 3]), g.names.size());
      const std::string& name = g.names[l[i + 3]];
      std::string path;
      if (d > 0) {
        const bar* parent = nullptr;
        for (const bar& p : bars[d - 1]) {
          if (start >= p.start + p.self && start + l[i + 1] <= p.start + p.total) parent = &p;
        }
        EXPECT_NE(parent, nullptr) << name << " at level " << d << " has no parent";
        if (parent == nullptr) continue;
        path = parent->path.empty() ? name : parent->path + ";" + name;
      }
      bars[d].push_back({start, l[i + 1], l[i + 2], path});
      if (l[i + 2] != 0) out[path] += l[i + 2];
    }
  }
  return out;
}

TEST(flame_tree, worked_example_from_the_api_doc) {
  const flame_tree t = make_tree({{"a;b", 3}, {"a;c", 2}, {"d", 5}});
  const flame_graph g = render_flame_graph(t, 0);
  EXPECT_EQ(g.names, (std::vector<std::string>{"total", "d", "a", "c", "b"}));
  EXPECT_EQ(g.levels,
            (levels_t{{0, 10, 0, 0}, {0, 5, 0, 2, 0, 5, 5, 1}, {0, 3, 3, 4, 0, 2, 2, 3}}));
  EXPECT_EQ(g.total, 10);
  EXPECT_EQ(g.max_self, 5);
}

TEST(flame_tree, tree_bytes_of_the_worked_example) {
  const flame_tree t = make_tree({{"a;b", 3}, {"a;c", 2}, {"d", 5}});
  using namespace std::string_literals;
  // virtual root (""/0/2 children), then the last child first: d, a, and a's children c, b.
  EXPECT_EQ(render_tree_bytes(t, 8192), "\x00\x00\x02"s "\x01" "d\x05\x00"s "\x01" "a\x00\x02"s
                                        "\x01" "c\x02\x00"s "\x01" "b\x03\x00"s);
  // max_nodes 2 keeps a and d (totals 5); b and c fold into "other" under a.
  EXPECT_EQ(render_tree_bytes(t, 2), "\x00\x00\x02"s "\x01" "d\x05\x00"s "\x01" "a\x00\x01"s
                                     "\x05" "other\x05\x00"s);
  EXPECT_EQ(render_tree_bytes(make_tree({}), 8192), "");
}

TEST(flame_tree, output_does_not_depend_on_insertion_order) {
  const flame_tree a = make_tree({{"a;b", 3}, {"a;c", 2}, {"d", 5}});
  const flame_tree b = make_tree({{"d", 5}, {"a;c", 1}, {"a;b", 3}, {"a;c", 1}});
  EXPECT_EQ(render_flame_graph(a, 0), render_flame_graph(b, 0));
  EXPECT_EQ(top_functions(a), top_functions(b));
}

TEST(flame_tree, empty_tree) {
  flame_tree t;
  EXPECT_TRUE(t.finalized());
  EXPECT_EQ(t.total(), 0);
  EXPECT_EQ(t.names(), std::vector<std::string>{"total"});
  const flame_graph g = render_flame_graph(t, 100);
  EXPECT_EQ(g.names, std::vector<std::string>{"total"});
  EXPECT_EQ(g.levels, (levels_t{{0, 0, 0, 0}}));
  EXPECT_EQ(g.total, 0);
  EXPECT_EQ(g.max_self, 0);
  EXPECT_TRUE(top_functions(t).empty());
}

TEST(flame_tree, self_on_the_left_and_gaps_between_parents) {
  // Children start after their parent's self; c's bar follows b's self, leaving a gap after x.
  const flame_tree t = make_tree({{"a", 5}, {"a;x", 1}, {"b", 2}, {"b;c", 5}});
  const flame_graph g = render_flame_graph(t, 0);
  EXPECT_EQ(g.names, (std::vector<std::string>{"total", "b", "c", "a", "x"}));
  EXPECT_EQ(g.levels,
            (levels_t{{0, 13, 0, 0}, {0, 6, 5, 3, 0, 7, 2, 1}, {5, 1, 1, 4, 2, 5, 5, 2}}));
  EXPECT_EQ(g.total, 13);
  EXPECT_EQ(g.max_self, 5);
}

TEST(flame_tree, children_in_byte_order) {
  // Upper case sorts before lower case, multi-byte UTF-8 after ASCII.
  const flame_tree t = make_tree({{"b", 1}, {"\xc3\xa9", 1}, {"B", 1}, {"a", 1}});
  const flame_graph g = render_flame_graph(t, 0);
  ASSERT_EQ(g.levels.size(), 2u);
  std::vector<std::string> order;
  for (size_t i = 3; i < g.levels[1].size(); i += 4) order.push_back(g.names[g.levels[1][i]]);
  EXPECT_EQ(order, (std::vector<std::string>{"B", "a", "b", "\xc3\xa9"}));
}

TEST(flame_tree, max_nodes_folds_small_children_into_other) {
  // Non-root totals: a=7 b=5 e=2 c=1 d=1 f=1. max_nodes 3 -> threshold 2.
  const flame_tree t = make_tree({{"a;b", 5}, {"a;c", 1}, {"a;d", 1}, {"e", 2}, {"f", 1}});
  const flame_graph g = render_flame_graph(t, 3);
  EXPECT_EQ(g.names, (std::vector<std::string>{"total", "other", "e", "a", "b"}));
  EXPECT_EQ(
      g.levels,
      (levels_t{{0, 10, 0, 0}, {0, 7, 0, 3, 0, 2, 2, 2, 0, 1, 1, 1}, {0, 5, 5, 4, 0, 2, 2, 1}}));
  EXPECT_EQ(g.total, 10);
  EXPECT_EQ(g.max_self, 5);

  // Enough nodes allowed: nothing folded; max_nodes <= 0 is the default (8192).
  const flame_graph all = render_flame_graph(t, 6);
  EXPECT_EQ(all, render_flame_graph(t, 0));
  EXPECT_EQ(all, render_flame_graph(t, -1));
  EXPECT_EQ(std::count(all.names.begin(), all.names.end(), "other"), 0);
  EXPECT_EQ(all.names.size(), 7u);
}

TEST(flame_tree, max_nodes_ties_at_threshold_are_kept) {
  // Totals: a=3 b=2 c=2 d=1; max_nodes 2 -> threshold 2; b and c (== threshold) both stay.
  const flame_tree t = make_tree({{"a", 3}, {"b", 2}, {"c", 2}, {"d", 1}});
  const flame_graph g = render_flame_graph(t, 2);
  EXPECT_EQ(g.names, (std::vector<std::string>{"total", "other", "c", "b", "a"}));
  EXPECT_EQ(g.levels, (levels_t{{0, 8, 0, 0}, {0, 3, 3, 4, 0, 2, 2, 3, 0, 2, 2, 2, 0, 1, 1, 1}}));
}

TEST(flame_tree, real_other_frames_fold_into_the_synthetic_other) {
  // Pyroscope never keeps a real child named "other": it joins the synthetic one (one name).
  const flame_tree t = make_tree({{"other", 4}, {"z", 1}, {"a", 5}});
  const flame_graph g = render_flame_graph(t, 1);  // threshold 5: only "a" kept
  EXPECT_EQ(g.names, (std::vector<std::string>{"total", "other", "a"}));
  EXPECT_EQ(g.levels, (levels_t{{0, 10, 0, 0}, {0, 5, 5, 2, 0, 5, 5, 1}}));
  const flame_graph all = render_flame_graph(t, 0);  // no threshold, still folded
  EXPECT_EQ(all.levels, (levels_t{{0, 10, 0, 0}, {0, 5, 5, 3, 0, 1, 1, 2, 0, 4, 4, 1}}));
  EXPECT_EQ(all.names, (std::vector<std::string>{"total", "other", "z", "a"}));
}

TEST(flame_tree, frame_named_total_shares_name_zero) {
  const flame_tree t = make_tree({{"total;x", 2}});
  const flame_graph g = render_flame_graph(t, 0);
  EXPECT_EQ(g.names, (std::vector<std::string>{"total", "x"}));
  EXPECT_EQ(g.levels, (levels_t{{0, 2, 0, 0}, {0, 2, 0, 0}, {0, 2, 2, 1}}));
}

TEST(flame_tree, child_is_find_or_create_and_totals_need_finalize) {
  flame_tree t;
  const uint32_t a = t.child(flame_tree::root, "a");
  EXPECT_EQ(t.child(flame_tree::root, "a"), a);
  const uint32_t ab = t.child(a, "b");
  EXPECT_NE(t.child(ab, "a"), a);  // same name, other parent
  EXPECT_EQ(t.name_of(ab), "b");
  EXPECT_EQ(t.nodes()[ab].parent, a);
  EXPECT_FALSE(t.finalized());
  t.add_self(ab, 4);
  t.add_self(a, 1);
  t.finalize();
  EXPECT_TRUE(t.finalized());
  EXPECT_EQ(t.total(), 5);
  EXPECT_EQ(t.nodes()[a].total, 5);
  EXPECT_EQ(t.nodes()[ab].total, 4);
  t.add_self(ab, 1);
  EXPECT_FALSE(t.finalized());
  t.finalize();
  EXPECT_EQ(t.total(), 6);
  EXPECT_EQ(t.intern("b"), t.nodes()[ab].name);
  EXPECT_EQ(t.find_name("nope"), std::nullopt);
}

TEST(flame_tree, many_children_stay_distinct) {
  // Exercises index growth: every (parent, name) pair maps to its own node.
  flame_tree t;
  for (int i = 0; i < 2000; ++i) {
    const uint32_t p = t.child(flame_tree::root, "p" + std::to_string(i % 50));
    t.add_self(t.child(p, "c" + std::to_string(i)), 1);
  }
  EXPECT_EQ(t.size(), 1u + 50u + 2000u);
  for (int i = 0; i < 2000; ++i) {
    const uint32_t p = t.child(flame_tree::root, "p" + std::to_string(i % 50));
    EXPECT_EQ(t.name_of(t.child(p, "c" + std::to_string(i))), "c" + std::to_string(i));
  }
  EXPECT_EQ(t.size(), 1u + 50u + 2000u);
  t.finalize();
  EXPECT_EQ(t.total(), 2000);
}

TEST(flame_tree, merge_by_names_along_paths) {
  flame_tree a;
  add_stack(a, "main;f", 2);
  add_stack(a, "main;g", 1);
  flame_tree b;
  add_stack(b, "x", 7);  // interns names in another order than a
  add_stack(b, "main;g", 3);
  add_stack(b, "main;g;h", 4);
  add_stack(b, "", 1);  // root self
  a.merge(b);
  EXPECT_FALSE(a.finalized());
  a.finalize();
  const flame_tree want =
      make_tree({{"main;f", 2}, {"main;g", 4}, {"main;g;h", 4}, {"x", 7}, {"", 1}});
  EXPECT_EQ(a.total(), 18);
  EXPECT_EQ(a.size(), want.size());
  EXPECT_EQ(render_flame_graph(a, 0), render_flame_graph(want, 0));
}

TEST(flame_tree, root_self_is_on_the_left_of_the_root) {
  const flame_tree t = make_tree({{"", 3}, {"a", 2}});
  const flame_graph g = render_flame_graph(t, 0);
  EXPECT_EQ(g.levels, (levels_t{{0, 5, 3, 0}, {3, 2, 2, 1}}));
  EXPECT_EQ(g.total, 5);
  EXPECT_EQ(g.max_self, 3);
}

TEST(flame_tree, random_trees_round_trip_through_the_encoding) {
  std::mt19937 rng(42);
  for (int round = 0; round < 20; ++round) {
    std::map<std::string, int64_t> want;
    flame_tree t;
    for (int s = 0; s < 200; ++s) {
      std::string path;
      const int depth = 1 + static_cast<int>(rng() % 6);
      for (int d = 0; d < depth; ++d) {
        if (d) path += ';';
        path += static_cast<char>('a' + rng() % 4);
      }
      const int64_t v = 1 + static_cast<int64_t>(rng() % 100);
      add_stack(t, path, v);
      want[path] += v;
    }
    t.finalize();
    const flame_graph g = render_flame_graph(t, 0);
    EXPECT_EQ(decode(g), want) << "round " << round;
    EXPECT_EQ(g.total, t.total());

    // Truncated: still a consistent layout with the same total, within the node budget + others.
    const flame_graph small = render_flame_graph(t, 20);
    std::map<std::string, int64_t> got = decode(small);
    int64_t sum = 0;
    for (const auto& [p, v] : got) sum += v;
    EXPECT_EQ(sum, t.total());
    size_t non_other = 0;
    for (size_t d = 1; d < small.levels.size(); ++d) {
      for (size_t i = 3; i < small.levels[d].size(); i += 4)
        non_other += small.names[small.levels[d][i]] != "other";
    }
    // Kept: every node whose total reaches the 20th largest total (ties included).
    std::vector<int64_t> totals;
    for (size_t i = 1; i < t.size(); ++i) totals.push_back(t.nodes()[i].total);
    std::sort(totals.rbegin(), totals.rend());
    ASSERT_GT(totals.size(), 20u);
    const int64_t threshold = totals[19];
    EXPECT_EQ(non_other,
              static_cast<size_t>(std::count_if(totals.begin(), totals.end(),
                                                [&](int64_t v) { return v >= threshold; })));
  }
}

TEST(flame_tree, flamebearer_json_cpu) {
  const flame_graph g = render_flame_graph(make_tree({{"a;b", 3}, {"a;c", 2}, {"d", 5}}), 0);
  EXPECT_EQ(render_flamebearer_json(g, {"cpu", "nanoseconds", std::nullopt}),
            R"({"version":1,"flamebearer":{"names":["total","d","a","c","b"],)"
            R"("levels":[[0,10,0,0],[0,5,0,2,0,5,5,1],[0,3,3,4,0,2,2,3]],"numTicks":10,)"
            R"("maxSelf":5},"metadata":{"format":"single","spyName":"","sampleRate":1000000000,)"
            R"("units":"samples","name":"cpu"},"timeline":null,"groups":null,"heatmap":null})");
}

TEST(flame_tree, flamebearer_json_units_timeline_and_escaping) {
  flame_graph g;
  g.names = {"total", "a\"b\\c/<&>\n\t\x01\x7f", "\xc3\xa9\xe2\x80\xa8\xff"};
  g.levels = {{0, 3, 0, 0}, {0, 2, 2, 1, 0, 1, 1, 2}};
  g.total = 3;
  g.max_self = 2;
  const std::string json = render_flamebearer_json(
      g, {"inuse_space", "bytes",
          flamebearer_timeline{1700000000, 15, {0, 3, 18446744073709551615u}}});
  EXPECT_EQ(json,
            R"({"version":1,"flamebearer":{"names":["total","a\"b\\c/\u003c\u0026\u003e\n\t\u0001)"
            "\x7f"
            R"(","é\u2028\ufffd"],"levels":[[0,3,0,0],[0,2,2,1,0,1,1,2]],"numTicks":3,)"
            R"("maxSelf":2},"metadata":{"format":"single","spyName":"","sampleRate":100,)"
            R"("units":"bytes","name":"inuse_space"},"timeline":{"startTime":1700000000,)"
            R"("samples":[0,3,18446744073709551615],"durationDelta":15,"watermarks":null},)"
            R"("groups":null,"heatmap":null})");

  const auto units_of = [&](std::string type, std::string unit) {
    const std::string j = render_flamebearer_json(g, {std::move(type), std::move(unit), {}});
    const size_t b = j.find("\"sampleRate\":");
    return j.substr(b, j.find(",\"name\"") - b);
  };
  EXPECT_EQ(units_of("alloc_objects", "count"), R"("sampleRate":100,"units":"objects")");
  EXPECT_EQ(units_of("inuse_objects", "count"), R"("sampleRate":100,"units":"objects")");
  EXPECT_EQ(units_of("goroutine", "count"), R"("sampleRate":100,"units":"objects")");
  EXPECT_EQ(units_of("samples", "count"), R"("sampleRate":100,"units":"objects")");
  EXPECT_EQ(units_of("cpu", "nanoseconds"), R"("sampleRate":1000000000,"units":"samples")");
  EXPECT_EQ(units_of("wall", "microseconds"), R"("sampleRate":100,"units":"microseconds")");
  EXPECT_EQ(units_of("contentions", "count"), R"("sampleRate":100,"units":"count")");
}

TEST(flame_tree, top_functions_counts_recursion_once_per_path) {
  const flame_tree t = make_tree({{"main;f;f;g", 3}, {"main;f", 2}, {"main;g", 1}});
  EXPECT_EQ(top_functions(t), (std::vector<function_stat>{
                                  {"g", 4, 4},
                                  {"f", 2, 5},  // the inner f's 3 are already in the outer f's 5
                                  {"main", 0, 6},
                              }));
  // Mutual recursion; equal self sorts by name.
  const flame_tree m = make_tree({{"a;b;a;b", 1}, {"c;a", 1}});
  EXPECT_EQ(top_functions(m), (std::vector<function_stat>{
                                  {"a", 1, 2},
                                  {"b", 1, 1},
                                  {"c", 0, 1},
                              }));
}

TEST(flame_tree, top_functions_matches_a_brute_force_per_sample_count) {
  std::mt19937 rng(7);
  flame_tree t;
  std::map<std::string, int64_t> flat, cum;
  for (int s = 0; s < 300; ++s) {
    std::vector<std::string> frames;
    const int depth = 1 + static_cast<int>(rng() % 7);
    for (int d = 0; d < depth; ++d)
      frames.push_back(std::string(1, static_cast<char>('a' + rng() % 3)));
    std::string path;
    for (const auto& f : frames) path += (path.empty() ? "" : ";") + f;
    const int64_t v = 1 + static_cast<int64_t>(rng() % 10);
    add_stack(t, path, v);
    flat[frames.back()] += v;
    std::map<std::string, bool> once;
    for (const auto& f : frames) once[f] = true;
    for (const auto& [f, _] : once) cum[f] += v;
  }
  t.finalize();
  for (const function_stat& f : top_functions(t)) {
    EXPECT_EQ(f.self, flat[f.name]) << f.name;
    EXPECT_EQ(f.total, cum[f.name]) << f.name;
  }
  EXPECT_EQ(top_functions(t).size(), cum.size());
}

}  // namespace
}  // namespace hearth::query
