#include "tools/hearthctl_util.hpp"

#include <gtest/gtest.h>

namespace hearth::ctl {
namespace {

constexpr int64_t s = 1000000000;
const int64_t now = 1763805600 * s;  // 2025-11-22T10:00:00Z

TEST(hearthctl_time, relative_rfc3339_and_unix) {
  EXPECT_EQ(parse_time("now", now), now);
  EXPECT_EQ(parse_time("now-1h", now), now - 3600 * s);
  EXPECT_EQ(parse_time("now-1h30m", now), now - 5400 * s);
  EXPECT_EQ(parse_time("now-2d", now), now - 2 * 86400 * s);
  EXPECT_EQ(parse_time("2025-11-22T10:00:00Z", now), now);
  EXPECT_EQ(parse_time("2025-11-22T12:00:00+02:00", now), now);
  EXPECT_EQ(parse_time("2025-11-22T10:00:00.25Z", now), now + s / 4);
  EXPECT_EQ(parse_time("1763805600", now), now);
  EXPECT_EQ(parse_time("1763805600000", now), now);
  EXPECT_EQ(parse_time("1763805600000000000", now), now);
  for (const char* bad : {"", "yesterday", "now-", "now-1y", "now+1h", "2025-13-01T00:00:00Z",
                          "2025-11-22T10:00:00", "2025-11-22", "12ab", "99999999999999999999"})
    EXPECT_FALSE(parse_time(bad, now).has_value()) << bad;
}

TEST(hearthctl_time, durations) {
  EXPECT_EQ(parse_duration_s("15s"), 15.0);
  EXPECT_EQ(parse_duration_s("2h30m"), 9000.0);
  EXPECT_EQ(parse_duration_s("500ms"), 0.5);
  EXPECT_EQ(parse_duration_s("60"), 60.0);
  EXPECT_FALSE(parse_duration_s("fast").has_value());
  EXPECT_FALSE(parse_duration_s("0s").has_value());
}

TEST(hearthctl_units, human_values) {
  EXPECT_EQ(human_bytes(512), "512 B");
  EXPECT_EQ(human_bytes(1536), "1.50 KiB");
  EXPECT_EQ(human_bytes(12.5 * 1024 * 1024), "12.5 MiB");
  EXPECT_EQ(human_duration_ns(1.5e9), "1.50 s");
  EXPECT_EQ(human_duration_ns(350e6), "350.00 ms");
  EXPECT_EQ(human_duration_ns(3723e9), "1h 2m");
  EXPECT_EQ(human_count(1234), "1234");
  EXPECT_EQ(human_count(123456), "123.5k");
  EXPECT_EQ(human_value(2048, "bytes"), "2.00 KiB");
  EXPECT_EQ(human_value(2e9, "nanoseconds"), "2.00 s");
  EXPECT_EQ(sample_unit_of("process_cpu:cpu:nanoseconds:cpu:nanoseconds"), "nanoseconds");
  EXPECT_EQ(sample_unit_of("memory:inuse_space:bytes:space:bytes"), "bytes");
  EXPECT_EQ(sample_unit_of("nonsense"), "");
  EXPECT_EQ(format_time_ns(now), "2025-11-22 10:00:00Z");
}

TEST(hearthctl_json, escapes) {
  EXPECT_EQ(json_string("a\"b\\c\n\x01"), "\"a\\\"b\\\\c\\n\\u0001\"");
}

TEST(hearthctl_table, aligns_and_cuts_the_last_column) {
  table t({"N", "NAME"}, {true, false});
  t.add({"1", "short"});
  t.add({"100", "a-much-longer-name"});
  EXPECT_EQ(t.render(), "  N  NAME\n  1  short\n100  a-much-longer-name\n");
  std::string cut = t.render(10);
  EXPECT_NE(cut.find("100  a-mu\xe2\x80\xa6\n"), std::string::npos) << cut;
}

// total(10) -> a(6: self 1) -> b(5: self 5); total -> c(4: self 4). Levels as Pyroscope writes
// them: [x delta, total, self, name].
flame_levels sample_graph() {
  flame_levels g;
  g.names = {"total", "a", "b", "c"};
  g.levels = {{0, 10, 0, 0}, {0, 6, 1, 1, 0, 4, 4, 3}, {0, 5, 5, 2}};
  return g;
}

TEST(hearthctl_tree, nests_children_under_their_parents_by_total) {
  tree_options o;
  o.unit = "count";
  std::string out = render_tree(sample_graph(), o);
  EXPECT_EQ(out,
            "TOTAL        %  SELF       %  FUNCTION\n"
            "   10  100.00%     0   0.00%  total\n"
            "    6   60.00%     1  10.00%    a\n"
            "    5   50.00%     5  50.00%      b\n"
            "    4   40.00%     4  40.00%    c\n");
  o.max_depth = 1;
  EXPECT_EQ(render_tree(sample_graph(), o).find("      b"), std::string::npos);
  o.max_depth = 0;
  o.min_percent = 45;
  std::string folded = render_tree(sample_graph(), o);
  EXPECT_EQ(folded.find("    c\n"), std::string::npos) << folded;
  EXPECT_NE(folded.find("1 more under 45%"), std::string::npos) << folded;
  EXPECT_EQ(render_tree(flame_levels{}, o), "(no data)\n");
}

TEST(hearthctl_progress, bar_fills_with_the_fraction) {
  std::string half = progress_line(512, 1024, 60);
  EXPECT_NE(half.find(" 50%"), std::string::npos) << half;
  EXPECT_EQ(half.rfind("\r[", 0), 0u);
}

}  // namespace
}  // namespace hearth::ctl
