#include "query/block_query.hpp"

#include <gtest/gtest.h>

#include <map>

#include "query/test_util.hpp"

namespace hearth::query {
namespace {

using strings = std::vector<std::string>;
const std::string cpu = "process_cpu:cpu:nanoseconds:cpu:nanoseconds";
const std::string mem = "memory:alloc_space:bytes:space:bytes";

/// A hand-built block:
///   functions main, handler, inlined_helper, leaf;
///   location 0 = main; location 1 = 2 lines [inlined_helper (innermost), handler (caller)];
///   location 2 = no lines, address 0xdeadbeef; location 3 = leaf.
///   stacks: 1 = main, 2 = main;handler;inlined_helper, 3 = 2;0xdeadbeef, 4 = main;leaf.
///   series 0 {cpu, service_name=api, env=prod}, 1 {mem, service_name=web}, 2 {cpu, web}.
///   profiles: s0@1000 {2:10, 3:5}; s0@2000 {2:1, 4:7}; s1@1500 {4:100}; s2@3000 {1:4, 3:2}.
class test_block {
 public:
  test_block() {
    auto& s = b.syms;
    const uint32_t main_fn = fn("main"), handler = fn("handler"), helper = fn("inlined_helper"),
                   leaf = fn("leaf");
    s.lines = {{main_fn, 10}, {helper, 20}, {handler, 30}, {leaf, 40}};
    s.locations = {{0x1000, 0, 1}, {0x2000, 1, 2}, {0xdeadbeef, 0, 0}, {0x4000, 3, 1}};
    b.stacks = {{0, 0}, {0, 0}, {1, 1}, {2, 2}, {1, 3}};
    add_series({{"__name__", "process_cpu"},
                {"__profile_type__", cpu},
                {"env", "prod"},
                {"service_name", "api"}});
    add_series({{"__name__", "memory"}, {"__profile_type__", mem}, {"service_name", "web"}});
    add_series({{"__name__", "process_cpu"}, {"__profile_type__", cpu}, {"service_name", "web"}});
    add_profile(0, 1000, {{2, 10}, {3, 5}});
    add_profile(0, 2000, {{2, 1}, {4, 7}});
    add_profile(1, 1500, {{4, 100}});
    add_profile(2, 3000, {{1, 4}, {3, 2}});
  }

  uint32_t str(const std::string& v) {
    for (uint32_t i = 0; i < b.syms.strings.size(); ++i)
      if (b.syms.strings[i] == v) return i;
    b.syms.strings.push_back(v);
    return static_cast<uint32_t>(b.syms.strings.size() - 1);
  }
  uint32_t fn(const std::string& name) {
    b.syms.functions.push_back({str(name), str(name), str("file.cc"), 1});
    return static_cast<uint32_t>(b.syms.functions.size() - 1);
  }
  void add_series(const label_set& ls) {
    b.series.push_back({static_cast<uint32_t>(b.labels.size()), static_cast<uint32_t>(ls.size())});
    for (const auto& l : ls) b.labels.push_back({str(l.name), str(l.value)});
  }
  void add_profile(uint32_t series, int64_t t, const std::vector<sample_rec>& samples) {
    int64_t total = 0;
    for (const auto& s : samples) total += s.value;
    b.profiles.push_back({series, t, 10, total, static_cast<uint32_t>(b.samples.size()),
                          static_cast<uint32_t>(samples.size()), 0, 0});
    b.samples.insert(b.samples.end(), samples.begin(), samples.end());
    b.min_time_ns = b.profiles.size() == 1 ? t : std::min(b.min_time_ns, t);
    b.max_time_ns = std::max(b.max_time_ns, t);
  }

  block_data b;
};

std::vector<matcher> sel(std::string_view s) {
  auto r = parse_selector(s);
  EXPECT_TRUE(r.ok()) << s;
  return r.ok() ? *r : std::vector<matcher>{};
}

/// Every node of a finalized tree with a non-zero self as "a;b;c" -> self.
std::map<std::string, int64_t> paths(const flame_tree& t) {
  std::map<std::string, int64_t> out;
  for (uint32_t i = 1; i < t.size(); ++i) {
    if (t.nodes()[i].self == 0) continue;
    std::string p(t.name_of(i));
    for (uint32_t n = t.nodes()[i].parent; n != flame_tree::root; n = t.nodes()[n].parent)
      p = std::string(t.name_of(n)) + ";" + p;
    out[p] += t.nodes()[i].self;
  }
  return out;
}

flame_tree merged(const block_data& b, std::vector<uint32_t> series, int64_t start, int64_t end) {
  flame_tree t;
  merge_stacks(b, series, start, end, t);
  t.finalize();
  return t;
}

TEST(block_query, select_series_by_matchers) {
  const test_block tb;
  const auto& b = tb.b;
  EXPECT_EQ(select_series(b, sel("{}")), (std::vector<uint32_t>{0, 1, 2}));
  EXPECT_EQ(select_series(b, sel(R"({service_name="api"})")), (std::vector<uint32_t>{0}));
  EXPECT_EQ(select_series(b, sel(R"({service_name=~"web"})")), (std::vector<uint32_t>{1, 2}));
  EXPECT_EQ(select_series(b, sel(R"({service_name=~"we"})")), (std::vector<uint32_t>{}));
  EXPECT_EQ(select_series(b, sel(R"({env=""})")), (std::vector<uint32_t>{1, 2}));
  EXPECT_EQ(select_series(b, sel(R"({env!="prod"})")), (std::vector<uint32_t>{1, 2}));
  EXPECT_EQ(select_series(b, sel(R"({env!~"p.*"})")), (std::vector<uint32_t>{1, 2}));
  EXPECT_EQ(select_series(b, sel(R"({env=~"prod|"})")), (std::vector<uint32_t>{0, 1, 2}));
  EXPECT_EQ(select_series(b, sel(R"({nope="x"})")), (std::vector<uint32_t>{}));
  EXPECT_EQ(select_series(b, sel(R"(process_cpu{service_name!="api"})")),
            (std::vector<uint32_t>{2}));
  // A render query's metric name is a profile type ID, not a __name__ value: the caller maps it
  // to __profile_type__; taken literally it matches nothing.
  EXPECT_EQ(select_series(b, sel(cpu + "{}")), (std::vector<uint32_t>{}));
  EXPECT_EQ(select_series(b, sel(R"({__profile_type__=")" + cpu + R"("})")),
            (std::vector<uint32_t>{0, 2}));
  EXPECT_EQ(select_series(b, sel(R"({__name__="memory", service_name="web"})")),
            (std::vector<uint32_t>{1}));
}

TEST(block_query, merge_expands_inlined_and_lineless_locations) {
  const test_block tb;
  const flame_tree t = merged(tb.b, {0}, 0, 10000);
  EXPECT_EQ(paths(t), (std::map<std::string, int64_t>{
                          {"main;handler;inlined_helper", 11},
                          {"main;handler;inlined_helper;0xdeadbeef", 5},
                          {"main;leaf", 7},
                      }));
  EXPECT_EQ(t.total(), 23);
  // Each path exists once: root, main, handler, inlined_helper, 0xdeadbeef, leaf.
  EXPECT_EQ(t.size(), 6u);
  const flame_graph g = render_flame_graph(t, 0);
  EXPECT_EQ(g.names, (strings{"total", "main", "leaf", "handler", "inlined_helper", "0xdeadbeef"}));
  EXPECT_EQ(
      g.levels,
      (std::vector<std::vector<int64_t>>{
          {0, 23, 0, 0}, {0, 23, 0, 1}, {0, 16, 0, 3, 0, 7, 7, 2}, {0, 16, 11, 4}, {11, 5, 5, 5}}));
}

TEST(block_query, merge_time_range_is_half_open) {
  const test_block tb;
  const auto& b = tb.b;
  // [1000, 2000): the profile at 1000 is in, the one at 2000 is out.
  EXPECT_EQ(paths(merged(b, {0}, 1000, 2000)),
            (std::map<std::string, int64_t>{{"main;handler;inlined_helper", 10},
                                            {"main;handler;inlined_helper;0xdeadbeef", 5}}));
  // [1001, 2001): only the one at 2000.
  EXPECT_EQ(paths(merged(b, {0}, 1001, 2001)),
            (std::map<std::string, int64_t>{{"main;handler;inlined_helper", 1}, {"main;leaf", 7}}));
  EXPECT_EQ(merged(b, {0}, 1001, 2000).total(), 0);
  EXPECT_EQ(merged(b, {0}, 2000, 2000).total(), 0);
  EXPECT_EQ(merged(b, {0}, 3000, 1000).total(), 0);
  EXPECT_EQ(merged(b, {}, 0, 10000).total(), 0);

  const ns_range r = ns_range_from_ms(1, 2);
  EXPECT_EQ(r.start_ns, 1'000'000);
  EXPECT_EQ(r.end_ns, 3'000'000);  // the whole end millisecond is included
  const ns_range big = ns_range_from_ms(INT64_MIN, INT64_MAX);
  EXPECT_EQ(big.start_ns, INT64_MIN);
  EXPECT_EQ(big.end_ns, INT64_MAX);
}

TEST(block_query, profile_ids_select_single_profiles) {
  test_block tb;
  auto& b = tb.b;
  // Ids (7, 1), (7, 2), (8, 0), (9, 9) for the four profiles.
  const std::vector<std::pair<uint64_t, uint64_t>> ids = {{7, 1}, {7, 2}, {8, 0}, {9, 9}};
  for (size_t i = 0; i < ids.size(); ++i) std::tie(b.profiles[i].id_hi, b.profiles[i].id_lo) = ids[i];
  const std::vector<uint64_t> second = {7, 2}, first_and_last = {7, 1, 9, 9}, none = {7, 3};
  EXPECT_TRUE(profile_selected({}, b.profiles[0]));
  EXPECT_TRUE(profile_selected(second, b.profiles[1]));
  EXPECT_FALSE(profile_selected(second, b.profiles[0]));
  EXPECT_TRUE(profile_selected(first_and_last, b.profiles[3]));
  EXPECT_FALSE(profile_selected(first_and_last, b.profiles[2]));
  const auto with = [&](std::vector<uint32_t> series, const std::vector<uint64_t>& pick) {
    flame_tree t;
    merge_stacks(b, series, 0, 10000, {}, t, pick);
    t.finalize();
    return paths(t);
  };
  EXPECT_EQ(with({0, 1, 2}, second),
            (std::map<std::string, int64_t>{{"main;handler;inlined_helper", 1}, {"main;leaf", 7}}));
  EXPECT_EQ(with({0, 2}, first_and_last),
            (std::map<std::string, int64_t>{{"main", 4},
                                            {"main;handler;inlined_helper", 10},
                                            {"main;handler;inlined_helper;0xdeadbeef", 7}}));
  EXPECT_TRUE(with({0, 1, 2}, none).empty());
  // The selector narrows, it never widens: a selected id in an unselected series stays out.
  EXPECT_TRUE(with({1}, first_and_last).empty());
}

TEST(block_query, merge_several_series_and_into_an_existing_tree) {
  const test_block tb;
  const auto& b = tb.b;
  flame_tree t;
  const uint32_t existing = t.child(t.child(flame_tree::root, "main"), "leaf");
  t.add_self(existing, 1);
  // Series order and duplicates do not matter.
  const std::vector<uint32_t> series{2, 0, 2};
  merge_stacks(b, series, 0, 10000, t);
  t.finalize();
  EXPECT_EQ(paths(t), (std::map<std::string, int64_t>{
                          {"main", 4},
                          {"main;handler;inlined_helper", 11},
                          {"main;handler;inlined_helper;0xdeadbeef", 7},
                          {"main;leaf", 8},
                      }));
  EXPECT_EQ(t.total(), 30);
  const auto top = top_functions(t);
  ASSERT_EQ(top.size(), 5u);
  EXPECT_EQ(top[0], (function_stat{"inlined_helper", 11, 18}));
  EXPECT_EQ(top[1], (function_stat{"leaf", 8, 8}));
  EXPECT_EQ(top[2], (function_stat{"0xdeadbeef", 7, 7}));
  EXPECT_EQ(top[3], (function_stat{"main", 4, 30}));
  EXPECT_EQ(top[4], (function_stat{"handler", 0, 18}));
}

TEST(block_query, label_names_and_values_respect_matchers_and_time) {
  const test_block tb;
  const auto& b = tb.b;
  EXPECT_EQ(label_names(b, {}, 0, 10000),
            (strings{"__name__", "__profile_type__", "env", "service_name"}));
  EXPECT_EQ(label_names(b, sel(R"({service_name="web"})"), 0, 10000),
            (strings{"__name__", "__profile_type__", "service_name"}));
  EXPECT_EQ(label_names(b, {}, 2500, 10000),
            (strings{"__name__", "__profile_type__", "service_name"}));
  EXPECT_EQ(label_names(b, {}, 0, 1000), strings{});
  EXPECT_EQ(label_names(b, {}, 1000, 1001),
            (strings{"__name__", "__profile_type__", "env", "service_name"}));

  EXPECT_EQ(label_values(b, "service_name", {}, 0, 10000), (strings{"api", "web"}));
  EXPECT_EQ(label_values(b, "service_name", {}, 1600, 2500), (strings{"api"}));
  EXPECT_EQ(label_values(b, "service_name", sel(R"({__name__="process_cpu"})"), 2500, 4000),
            (strings{"web"}));
  EXPECT_EQ(label_values(b, "env", {}, 0, 10000), (strings{"prod"}));
  EXPECT_EQ(label_values(b, "env", sel(R"({service_name="web"})"), 0, 10000), strings{});
  EXPECT_EQ(label_values(b, "nope", {}, 0, 10000), strings{});
  EXPECT_EQ(label_values(b, "__name__", {}, 0, 10000), (strings{"memory", "process_cpu"}));

  EXPECT_EQ(profile_type_ids(b, 0, 10000), (strings{mem, cpu}));
  EXPECT_EQ(profile_type_ids(b, 2500, 10000), (strings{cpu}));
  EXPECT_EQ(profile_type_ids(b, 1500, 1501), (strings{mem}));
  EXPECT_EQ(profile_type_ids(b, 5000, 10000), strings{});
}

TEST(block_query, series_labels_are_owned_strings) {
  const test_block tb;
  EXPECT_EQ(
      series_labels(tb.b, 1),
      (label_set{{"__name__", "memory"}, {"__profile_type__", mem}, {"service_name", "web"}}));
  EXPECT_EQ(series_labels(tb.b, 99), label_set{});
}

TEST(block_query, empty_block) {
  const block_data b;
  EXPECT_TRUE(select_series(b, {}).empty());
  EXPECT_TRUE(label_names(b, {}, 0, 10).empty());
  EXPECT_TRUE(profile_type_ids(b, 0, 10).empty());
  flame_tree t;
  merge_stacks(b, std::vector<uint32_t>{0}, 0, 10, t);
  t.finalize();
  EXPECT_EQ(t.total(), 0);
}

TEST(block_query, inconsistent_indexes_are_skipped_not_followed) {
  test_block tb;
  auto& b = tb.b;
  // Stack 5: a location out of range; stack 6: a parent that is not smaller (a cycle);
  // stack 7: below stack 5; stack 8: a location whose line range is out of bounds.
  b.syms.locations.push_back({0, 100, 2});
  b.stacks.push_back({1, 99});
  b.stacks.push_back({6, 0});
  b.stacks.push_back({5, 0});
  b.stacks.push_back({1, 4});
  tb.add_profile(0, 500, {{5, 1}, {6, 1}, {7, 1}, {8, 1}, {99, 1}, {4, 2}});
  b.profiles.push_back({0, 600, 0, 0, 1000, 5, 0, 0});  // samples out of range
  b.profiles.push_back({77, 600, 0, 0, 0, 1, 0, 0});    // series out of range
  b.series.push_back({1000, 3});                        // labels out of range
  flame_tree t;
  merge_stacks(b, std::vector<uint32_t>{0, 3, 77}, 0, 1000, t);
  t.finalize();
  EXPECT_EQ(paths(t), (std::map<std::string, int64_t>{{"main;leaf", 2}}));
  EXPECT_EQ(select_series(b, sel(R"({service_name=""})")), (std::vector<uint32_t>{3}));
  EXPECT_EQ(label_names(b, {}, 0, 10000),
            (strings{"__name__", "__profile_type__", "env", "service_name"}));
}

TEST(block_query, call_site_keeps_whole_stacks_under_the_prefix) {
  const test_block tb;
  using fs = std::map<std::string, int64_t>;
  auto through = [&](std::vector<std::string> call_site) {
    flame_tree t;
    merge_stacks(tb.b, std::vector<uint32_t>{0}, 0, 10000, call_site, t);
    t.finalize();
    return paths(t);
  };
  EXPECT_EQ(through({"main", "handler"}), (fs{{"main;handler;inlined_helper", 11},
                                              {"main;handler;inlined_helper;0xdeadbeef", 5}}));
  // The prefix may end inside an inlined location and may name a lineless frame.
  EXPECT_EQ(through({"main", "handler", "inlined_helper", "0xdeadbeef"}),
            (fs{{"main;handler;inlined_helper;0xdeadbeef", 5}}));
  EXPECT_EQ(through({"main"}), paths(merged(tb.b, {0}, 0, 10000)));
  EXPECT_EQ(through({}), paths(merged(tb.b, {0}, 0, 10000)));
  // Not a prefix: a frame below the root, or longer than every stack.
  EXPECT_EQ(through({"handler"}), fs{});
  EXPECT_EQ(through({"main", "leaf", "deeper"}), fs{});
  EXPECT_EQ(through({"main", "inlined_helper"}), fs{});
}

TEST(block_query, stacks_with_prefix_marks_each_stack_node) {
  const test_block tb;
  const std::vector<std::string> none, main_handler{"main", "handler"};
  EXPECT_EQ(stacks_with_prefix(tb.b, none), (std::vector<bool>{true, true, true, true, true}));
  EXPECT_EQ(stacks_with_prefix(tb.b, main_handler),
            (std::vector<bool>{false, false, true, true, false}));
}

TEST(block_query, call_site_partitions_a_real_profile_by_its_root_frames) {
  const block_data b = test::block_of({{"go/workpool.cpu.000.pb.gz", 1000}});
  const auto series = select_series(b, {});
  ASSERT_FALSE(series.empty());
  const flame_tree all = merged(b, series, 0, 2000);
  ASSERT_GT(all.total(), 0);
  // Every root child and every grandchild, as a call site, selects exactly its subtree.
  int64_t sum = 0;
  size_t checked = 0;
  for (uint32_t i = 1; i < all.size(); ++i) {
    const uint32_t parent = all.nodes()[i].parent;
    if (parent != flame_tree::root && all.nodes()[parent].parent != flame_tree::root) continue;
    std::vector<std::string> call_site{std::string(all.name_of(i))};
    if (parent != flame_tree::root)
      call_site.insert(call_site.begin(), std::string(all.name_of(parent)));
    flame_tree t;
    merge_stacks(b, series, 0, 2000, call_site, t);
    t.finalize();
    EXPECT_EQ(t.total(), all.nodes()[i].total) << call_site.back();
    if (parent == flame_tree::root) sum += t.total();
    ++checked;
  }
  EXPECT_GT(checked, 3u);
  EXPECT_EQ(sum, all.total());
}

}  // namespace
}  // namespace hearth::query

namespace hearth::query {
namespace {

/// test_block() with span samples: s0@1000 {2: 10 = span 0xa 6 + span 0xb 4, 3: 5 = span 0xa 5};
/// s0@2000 {4: 7 = span 0xb 7}; s2@3000 {1: 4 = span 0xa 1}.
block_data span_block() {
  block_data b = test_block().b;
  b.spans = {{2, 0xa, 6}, {2, 0xb, 4}, {3, 0xa, 5}, {4, 0xb, 7}, {1, 0xa, 1}};
  b.profiles[0].span_begin = 0;
  b.profiles[0].span_count = 3;
  b.profiles[1].span_begin = 3;
  b.profiles[1].span_count = 1;
  b.profiles[3].span_begin = 4;
  b.profiles[3].span_count = 1;
  return b;
}

flame_tree span_merged(const block_data& b, std::vector<uint32_t> series, std::vector<uint64_t> ids,
                       std::vector<std::string> call_site = {}) {
  flame_tree t;
  merge_span_stacks(b, series, 0, INT64_MAX, call_site, ids, t);
  t.finalize();
  return t;
}

TEST(block_query, span_filter_sums_only_the_samples_of_the_given_spans) {
  const block_data b = span_block();
  EXPECT_EQ(paths(span_merged(b, {0, 2}, {0xa})),
            (std::map<std::string, int64_t>{{"main", 1},
                                            {"main;handler;inlined_helper", 6},
                                            {"main;handler;inlined_helper;0xdeadbeef", 5}}));
  EXPECT_EQ(paths(span_merged(b, {0}, {0xb})),
            (std::map<std::string, int64_t>{{"main;handler;inlined_helper", 4}, {"main;leaf", 7}}));
  EXPECT_EQ(span_merged(b, {0, 2}, {0xa, 0xb}).total(), 23);
  EXPECT_EQ(span_merged(b, {0, 2}, {0xc}).total(), 0);      // no such span
  EXPECT_EQ(span_merged(b, {2}, {0xb}).total(), 0);         // a span of another series
  EXPECT_EQ(span_merged(b, {0, 2}, {0xa}, {"main", "leaf"}).total(), 0);
  EXPECT_EQ(span_merged(b, {0, 2}, {0xb}, {"main", "leaf"}).total(), 7);
  // The time range applies as for merge_stacks.
  flame_tree t;
  merge_span_stacks(b, std::vector<uint32_t>{0}, 1500, 2500, {}, std::vector<uint64_t>{0xa, 0xb}, t);
  t.finalize();
  EXPECT_EQ(t.total(), 7);
  // Without a span filter nothing changes: the samples already hold the span samples' values.
  EXPECT_EQ(paths(merged(b, {0, 2}, 0, INT64_MAX)), paths(merged(test_block().b, {0, 2}, 0, INT64_MAX)));
  EXPECT_EQ(span_total(b, b.profiles[0], std::vector<uint64_t>{0xa}), 11);
  EXPECT_EQ(span_total(b, b.profiles[2], std::vector<uint64_t>{0xa}), 0);
}

TEST(block_query, span_samples_out_of_range_are_skipped) {
  block_data b = span_block();
  b.profiles[0].span_count = 99;  // past the end: the profile is skipped
  b.spans[3].stack = 77;          // no such node
  EXPECT_EQ(span_merged(b, {0, 2}, {0xa, 0xb}).total(), 1);
  EXPECT_EQ(span_total(b, b.profiles[0], std::vector<uint64_t>{0xa}), 0);
}

}  // namespace
}  // namespace hearth::query
