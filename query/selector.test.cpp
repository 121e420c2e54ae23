#include "query/selector.hpp"

#include <gtest/gtest.h>
#include <re2/re2.h>

#include <map>

namespace hearth::query {
namespace {

using op = enum matcher::op;

/// Parses or fails the test.
std::vector<matcher> parse_ok(std::string_view s) {
  auto r = parse_selector(s);
  EXPECT_TRUE(r.ok()) << s << ": " << (r.ok() ? "" : r.err().to_string());
  return r.ok() ? *r : std::vector<matcher>{};
}

/// The error message of a failing parse, "" if it parsed.
std::string parse_err(std::string_view s) {
  auto r = parse_selector(s);
  EXPECT_FALSE(r.ok()) << "parsed: " << s;
  if (r.ok()) return "";
  EXPECT_EQ(r.err().code, errc::bad_selector) << s;
  return r.err().to_string();
}

void expect_matcher(const matcher& m, std::string_view name, op o, std::string_view value) {
  EXPECT_EQ(m.name, name);
  EXPECT_EQ(m.op, o) << m.name;
  EXPECT_EQ(m.value, value) << m.name;
  EXPECT_EQ(m.re != nullptr, o == op::re || o == op::nre) << m.name;
}

/// Whether all matchers accept a label set (absent labels read as "").
bool matches_all(const std::vector<matcher>& ms, const std::map<std::string, std::string>& ls) {
  for (const auto& m : ms) {
    auto it = ls.find(m.name);
    if (!m.matches(it == ls.end() ? std::string_view() : std::string_view(it->second)))
      return false;
  }
  return true;
}

TEST(selector, basic_matchers_in_order) {
  auto ms = parse_ok(R"({service_name="api", env=~"prod|canary", pod!="p1", zone!~"eu-.*"})");
  ASSERT_EQ(ms.size(), 4u);
  expect_matcher(ms[0], "service_name", op::eq, "api");
  expect_matcher(ms[1], "env", op::re, "prod|canary");
  expect_matcher(ms[2], "pod", op::neq, "p1");
  expect_matcher(ms[3], "zone", op::nre, "eu-.*");
}

TEST(selector, empty_braces_match_everything) {
  EXPECT_TRUE(parse_ok("{}").empty());
  EXPECT_TRUE(parse_ok("  { \t\n }  ").empty());
  EXPECT_TRUE(matches_all(parse_ok("{}"), {{"a", "b"}}));
}

TEST(selector, metric_name_with_colons_is_first_name_matcher) {
  auto ms = parse_ok(R"(process_cpu:cpu:nanoseconds:cpu:nanoseconds{service_name="x"})");
  ASSERT_EQ(ms.size(), 2u);
  expect_matcher(ms[0], "__name__", op::eq, "process_cpu:cpu:nanoseconds:cpu:nanoseconds");
  expect_matcher(ms[1], "service_name", op::eq, "x");

  auto bare = parse_ok("memory:alloc_objects:count::");
  ASSERT_EQ(bare.size(), 1u);
  expect_matcher(bare[0], "__name__", op::eq, "memory:alloc_objects:count::");

  auto spaced = parse_ok(" up { } ");
  ASSERT_EQ(spaced.size(), 1u);
  expect_matcher(spaced[0], "__name__", op::eq, "up");
}

TEST(selector, quoted_label_names_and_bare_metric_name) {
  auto ms = parse_ok(R"({"service.name"="x", "my.metric", 'k8s.pod'!="p", "ünï"=~"v"})");
  ASSERT_EQ(ms.size(), 4u);
  expect_matcher(ms[0], "service.name", op::eq, "x");
  expect_matcher(ms[1], "__name__", op::eq, "my.metric");
  expect_matcher(ms[2], "k8s.pod", op::neq, "p");
  expect_matcher(ms[3], "ünï", op::re, "v");

  auto first = parse_ok(R"({"my.metric"})");
  ASSERT_EQ(first.size(), 1u);
  expect_matcher(first[0], "__name__", op::eq, "my.metric");
}

TEST(selector, whitespace_anywhere_and_trailing_comma) {
  auto ms = parse_ok(" \n{ a \t=\n \"1\" ,b!~ '2' , } \n");
  ASSERT_EQ(ms.size(), 2u);
  expect_matcher(ms[0], "a", op::eq, "1");
  expect_matcher(ms[1], "b", op::nre, "2");
  EXPECT_EQ(parse_ok(R"({a="1",})").size(), 1u);
}

TEST(selector, string_escapes) {
  auto ms = parse_ok(R"({a="x\ny\t\\\"z", b='it\'s', c="\x41\u00e9\U0001F600\101\a\b\f\r\v"})");
  ASSERT_EQ(ms.size(), 3u);
  EXPECT_EQ(ms[0].value, "x\ny\t\\\"z");
  EXPECT_EQ(ms[1].value, "it's");
  EXPECT_EQ(ms[2].value,
            "A\xc3\xa9\xf0\x9f\x98\x80"
            "A\a\b\f\r\v");
  // A quote of the other kind needs no escape.
  EXPECT_EQ(parse_ok(R"({a="it's", b='say "hi"'})")[1].value, "say \"hi\"");
}

TEST(selector, backquote_is_raw) {
  auto ms = parse_ok("{a=`C:\\dir\\n\"'`, b=~`\\d+`, c=`x\r\ny`}");
  ASSERT_EQ(ms.size(), 3u);
  EXPECT_EQ(ms[0].value, "C:\\dir\\n\"'");
  EXPECT_EQ(ms[1].value, "\\d+");
  EXPECT_TRUE(ms[1].matches("123"));
  EXPECT_FALSE(ms[1].matches("12a"));
  EXPECT_EQ(ms[2].value, "x\ny");  // Go drops '\r' from raw strings
}

TEST(selector, regexes_are_fully_anchored) {
  auto ms = parse_ok(R"({a=~"ap", b!~"ap", c=~"prod|canary", d=~".*"})");
  ASSERT_EQ(ms.size(), 4u);
  EXPECT_FALSE(ms[0].matches("api"));
  EXPECT_FALSE(ms[0].matches("xap"));
  EXPECT_TRUE(ms[0].matches("ap"));
  EXPECT_TRUE(ms[1].matches("api"));
  EXPECT_FALSE(ms[1].matches("ap"));
  // The alternation is grouped before anchoring: not `^prod|canary$`.
  EXPECT_TRUE(ms[2].matches("prod"));
  EXPECT_TRUE(ms[2].matches("canary"));
  EXPECT_FALSE(ms[2].matches("production"));
  EXPECT_FALSE(ms[2].matches("mycanary"));
  // `.` matches newlines, as in Prometheus' (?s:).
  EXPECT_TRUE(ms[3].matches("a\nb"));
  EXPECT_EQ(ms[0].re->pattern(), "^(?:ap)$");
}

TEST(selector, absent_label_semantics) {
  const std::map<std::string, std::string> without_env{{"service_name", "api"}};
  const std::map<std::string, std::string> with_env{{"service_name", "api"}, {"env", "prod"}};
  const auto check = [&](std::string_view sel, bool want_without, bool want_with) {
    auto ms = parse_ok(sel);
    EXPECT_EQ(matches_all(ms, without_env), want_without) << sel << " on series without env";
    EXPECT_EQ(matches_all(ms, with_env), want_with) << sel << " on series with env=prod";
  };
  check(R"({env=""})", true, false);
  check(R"({env!=""})", false, true);
  check(R"({env="prod"})", false, true);
  check(R"({env!="prod"})", true, false);
  check(R"({env!="dev"})", true, true);
  check(R"({env=~"prod|"})", true, true);  // regex matching "" matches absent
  check(R"({env=~"prod"})", false, true);
  check(R"({env=~".*"})", true, true);
  check(R"({env=~".+"})", false, true);
  check(R"({env!~"prod"})", true, false);
  check(R"({env!~".+"})", true, false);
  check(R"({service_name="api", env!~"dev"})", true, true);
}

TEST(selector, error_positions_and_messages) {
  EXPECT_EQ(parse_err("{service_name=}"),
            "bad_selector: unexpected '}' at position 14 in {service_name=} "
            "(expected a quoted label value)");
  EXPECT_EQ(parse_err(""), "bad_selector: empty selector");
  EXPECT_NE(parse_err("   ").find("empty selector"), std::string::npos);
  EXPECT_NE(parse_err(R"({a="1")").find("unexpected end of input at position 6"),
            std::string::npos);
  EXPECT_NE(parse_err(R"({a="1" b="2"})").find("unexpected 'b' at position 7"), std::string::npos);
  EXPECT_NE(parse_err(R"({a=="1"})").find("unexpected '=' at position 3"), std::string::npos);
  EXPECT_NE(parse_err(R"({a~"1"})").find("unexpected '~' at position 2"), std::string::npos);
  EXPECT_NE(parse_err(R"({a!"1"})").find("position 2"), std::string::npos);
  EXPECT_NE(parse_err(R"({a=1})").find("unexpected '1' at position 3"), std::string::npos);
  EXPECT_NE(parse_err(R"({a="1"}x)").find("unexpected 'x' at position 7"), std::string::npos);
  EXPECT_NE(parse_err(R"({,})").find("unexpected ',' at position 1"), std::string::npos);
  EXPECT_NE(parse_err(R"({a="1",,})").find("unexpected ',' at position 7"), std::string::npos);
  EXPECT_NE(parse_err(R"({a:b="1"})").find("unexpected ':' at position 2"), std::string::npos);
  EXPECT_NE(parse_err(R"({a})").find("unexpected '}' at position 2"), std::string::npos);
  EXPECT_NE(parse_err(R"(foo bar)").find("unexpected 'b' at position 4"), std::string::npos);
  EXPECT_NE(parse_err(R"("foo")").find("position 0"), std::string::npos);
  EXPECT_NE(parse_err("{é=\"1\"}").find("unexpected 'é' at position 1"), std::string::npos);
}

TEST(selector, string_errors) {
  EXPECT_NE(parse_err(R"({a="abc})").find("unterminated string at position 3"), std::string::npos);
  EXPECT_NE(parse_err("{a=`abc}").find("unterminated raw string at position 3"), std::string::npos);
  EXPECT_NE(parse_err("{a=\"x\ny\"}").find("newline in string at position 5"), std::string::npos);
  EXPECT_NE(parse_err(R"({a="\q"})").find("unknown escape sequence '\\q' at position 4"),
            std::string::npos);
  EXPECT_NE(parse_err(R"({a="\'"})").find("unknown escape sequence"), std::string::npos);
  EXPECT_NE(parse_err(R"({a='\"'})").find("unknown escape sequence"), std::string::npos);
  EXPECT_NE(parse_err(R"({a="\x4"})").find("want 2 hex digits"), std::string::npos);
  EXPECT_NE(parse_err(R"({a="\u12"})").find("want 4 hex digits"), std::string::npos);
  EXPECT_NE(parse_err(R"({a="\ud800"})").find("invalid Unicode"), std::string::npos);
  EXPECT_NE(parse_err(R"({a="\U00110000"})").find("invalid Unicode"), std::string::npos);
  EXPECT_NE(parse_err(R"({a="\400"})").find("octal escape value > 255"), std::string::npos);
  EXPECT_NE(parse_err(R"({a="\18"})").find("want 3 octal digits"), std::string::npos);
  EXPECT_NE(parse_err(R"({""="x"})").find("empty label name at position 1"), std::string::npos);
  EXPECT_NE(parse_err("{\"\xff\"=\"x\"}").find("not valid UTF-8"), std::string::npos);
}

TEST(selector, invalid_regex_names_label_and_re2_error) {
  const std::string e = parse_err(R"({service_name="x", env=~"prod(")");
  EXPECT_NE(e.find("invalid regex for label \"env\""), std::string::npos) << e;
  EXPECT_NE(e.find("missing )"), std::string::npos) << e;
  EXPECT_NE(e.find("position 19"), std::string::npos) << e;
  // Unbalanced in a way that anchoring would hide: `^(?:a)|(b)$` is valid, `a)|(b` is not.
  EXPECT_NE(parse_err(R"({a=~"a)|(b"})").find("invalid regex for label \"a\""), std::string::npos);
  EXPECT_NE(parse_err(R"({a!~"x\\"})").find("invalid regex"), std::string::npos);
}

TEST(selector, metric_name_set_twice) {
  EXPECT_NE(parse_err(R"(foo{__name__="bar"})").find("metric name must not be set twice"),
            std::string::npos);
  EXPECT_NE(parse_err(R"(foo{"bar"})").find("metric name must not be set twice"),
            std::string::npos);
  EXPECT_NE(parse_err(R"({"foo", "bar"})").find("metric name must not be set twice"),
            std::string::npos);
}

TEST(selector, make_matcher_and_to_string) {
  auto m = make_matcher("__profile_type__", op::eq, "process_cpu:cpu:nanoseconds:cpu:nanoseconds");
  ASSERT_TRUE(m.ok());
  EXPECT_TRUE(m->matches("process_cpu:cpu:nanoseconds:cpu:nanoseconds"));
  EXPECT_FALSE(m->matches("process_cpu"));
  auto bad = make_matcher("x", op::nre, "[");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.err().code, errc::bad_selector);
  EXPECT_EQ(to_string(op::eq), "=");
  EXPECT_EQ(to_string(op::neq), "!=");
  EXPECT_EQ(to_string(op::re), "=~");
  EXPECT_EQ(to_string(op::nre), "!~");
}

TEST(selector, profile_type_ids) {
  auto p = parse_profile_type("process_cpu:cpu:nanoseconds:cpu:nanoseconds");
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(*p, (profile_type{"process_cpu:cpu:nanoseconds:cpu:nanoseconds", "process_cpu", "cpu",
                              "nanoseconds", "cpu", "nanoseconds"}));
  auto empty_period = parse_profile_type("memory:alloc_objects:count::");
  ASSERT_TRUE(empty_period.ok());
  EXPECT_EQ(empty_period->sample_type, "alloc_objects");
  EXPECT_EQ(empty_period->period_type, "");
  EXPECT_EQ(empty_period->period_unit, "");
  auto delta = parse_profile_type("memory:alloc_space:bytes:space:bytes:delta");
  ASSERT_TRUE(delta.ok());
  EXPECT_EQ(delta->id, "memory:alloc_space:bytes:space:bytes:delta");
  EXPECT_EQ(delta->period_unit, "bytes");

  for (std::string_view bad : {"", "process_cpu", "a:b:c:d", "a:b:c:d:e:f:g", ":cpu:ns:cpu:ns",
                               "p::ns:cpu:ns", "p:cpu::cpu:ns"}) {
    auto r = parse_profile_type(bad);
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_EQ(r.err().code, errc::unknown_profile_type);
    EXPECT_NE(r.err().message.find("\"" + std::string(bad) + "\""), std::string::npos)
        << r.err().message;
  }
  EXPECT_NE(parse_profile_type("a:b:c:d").err().message.find("has 4 parts"), std::string::npos);
}

}  // namespace
}  // namespace hearth::query
