#include "format/folded.hpp"

#include <gtest/gtest.h>

#include <map>
#include <string>

#include "format/normalize.hpp"

namespace hearth {
namespace {

// Stack ("root;...;leaf") -> summed value, read back from a parsed profile.
std::map<std::string, int64_t> stacks_of(const pprof::profile& p) {
  std::map<std::string, int64_t> out;
  for (const auto& s : p.samples) {
    std::string st;
    for (uint32_t k = s.loc_count; k-- > 0;) {
      const auto& loc = p.locations[p.location_ids[s.loc_begin + k] - 1];
      const auto& fn = p.functions[p.lines[loc.line_begin].function_id - 1];
      if (!st.empty()) st += ';';
      st += p.str(fn.name);
    }
    out[st] += p.values[s.value_begin];
  }
  return out;
}

std::string profile_type(const pprof::profile& p, std::string_view name) {
  std::string s(name);
  for (auto part : {p.str(p.sample_types[0].type), p.str(p.sample_types[0].unit),
                    p.str(p.period_type.type), p.str(p.period_type.unit)}) {
    s += ':';
    s += part;
  }
  return s;
}

TEST(folded, type_from_app_name_suffix) {
  struct tc {
    const char* app;
    const char* want_type;
    const char* want_app;
    int64_t period;
  } cases[] = {
      {"myapp", "process_cpu:cpu:nanoseconds:cpu:nanoseconds", "myapp", 10'000'000},
      {"my-app.cpu", "process_cpu:cpu:nanoseconds:cpu:nanoseconds", "my-app", 10'000'000},
      {"a.b.itimer", "process_cpu:cpu:nanoseconds:cpu:nanoseconds", "a.b", 10'000'000},
      {"svc.wall", "wall:wall:nanoseconds:cpu:nanoseconds", "svc", 10'000'000},
      {"svc.seconds", "wall:wall:nanoseconds:cpu:nanoseconds", "svc", 10'000'000},
      {"svc.alloc_space", "memory:alloc_space:bytes::", "svc", 0},
      {"svc.inuse_objects", "memory:inuse_objects:count::", "svc", 0},
      {"svc.goroutines", "goroutine:goroutines:count::", "svc", 0},
      {"svc.mutex_duration", "mutex:delay:nanoseconds::", "svc", 0},
      {"svc.lock_count", "block:contentions:count::", "svc", 0},
      {"svc.alloc_in_new_tlab_bytes", "memory:alloc_in_new_tlab_bytes:bytes::", "svc", 0},
      {"svc.exceptions", "exceptions:samples:count::", "svc", 0},
  };
  for (const auto& c : cases) {
    auto t = legacy_text_type_of(c.app, 100);
    ASSERT_TRUE(t.ok()) << c.app << ": " << t.err().to_string();
    auto p = parse_text_profile("a;b 1\n", text_format::folded, *t);
    ASSERT_TRUE(p.ok()) << p.err().to_string();
    EXPECT_EQ(profile_type(*p, t->name), c.want_type) << c.app;
    EXPECT_EQ(t->app, c.want_app) << c.app;
    EXPECT_EQ(t->period, c.period) << c.app;
  }
  auto bad = legacy_text_type_of("my.app", 100);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.err().code, errc::unknown_profile_type);
  EXPECT_NE(bad.err().message.find("'app'"), std::string::npos) << bad.err().message;
  auto empty = legacy_text_type_of(".cpu", 100);
  ASSERT_FALSE(empty.ok());
  EXPECT_EQ(empty.err().code, errc::bad_labels);
  EXPECT_EQ(legacy_text_type_of("x.cpu", 1000)->period, 1'000'000);
}

TEST(folded, folded_counts_scaled_by_sample_rate) {
  auto t = legacy_text_type_of("app.cpu", 100);
  ASSERT_TRUE(t.ok());
  std::string body = "main;work;hot 3\r\nmain;work 2\n\nmain;work;hot 1\nmain;idle 0\nfoo bar;baz 7";
  auto p = parse_text_profile(body, text_format::folded, *t);
  ASSERT_TRUE(p.ok()) << p.err().to_string();
  auto st = stacks_of(*p);
  EXPECT_EQ(st, (std::map<std::string, int64_t>{{"main;work;hot", 40'000'000},
                                                {"main;work", 20'000'000},
                                                {"foo bar;baz", 70'000'000}}));
  EXPECT_EQ(p->functions.size(), 6u);  // main work hot idle 'foo bar' baz: one each
  EXPECT_EQ(p->period, 10'000'000);
}

TEST(folded, lines_count_each_line_once) {
  auto t = legacy_text_type_of("app.alloc_objects", 100);
  ASSERT_TRUE(t.ok());
  auto p = parse_text_profile("a;b\na;b 5\na;b\n\na\n", text_format::lines, *t);
  ASSERT_TRUE(p.ok()) << p.err().to_string();
  EXPECT_EQ(stacks_of(*p), (std::map<std::string, int64_t>{{"a;b", 2}, {"a;b 5", 1}, {"a", 1}}));
}

TEST(folded, errors_name_line_and_reason) {
  auto t = legacy_text_type_of("app", 100);
  ASSERT_TRUE(t.ok());
  struct tc {
    std::string body;
    text_format f;
    const char* want;
  } cases[] = {
      {"a;b 1\nnocount\n", text_format::folded, "line 2 has no sample count"},
      {"a;b x1\n", text_format::folded, "line 1: sample count 'x1' is not"},
      {"a;b -1\n", text_format::folded, "line 1: sample count '-1' is not"},
      {"a;b 1.5\n", text_format::folded, "is not a non-negative decimal integer"},
      {"a;;b 1\n", text_format::folded, "line 1: frame 2 is empty"},
      {"\n\n;a\n", text_format::lines, "line 3: frame 1 is empty"},
      {"a 9223372036854775807\n", text_format::folded, "overflows int64"},
      {"a 99999999999999999999\n", text_format::folded, "is not a non-negative"},
      {std::string(2000, 'x') + " 1\n", text_format::folded, "line 1 is 2002 bytes, over the limit of 1000"},
      {"a;b;c;d;e 1\n", text_format::folded, "line 1 has more than 4 frames"},
  };
  text_limits lim;
  lim.max_line_bytes = 1000;
  lim.max_stack_depth = 4;
  for (const auto& c : cases) {
    auto p = parse_text_profile(c.body, c.f, *t, lim);
    ASSERT_FALSE(p.ok()) << c.body;
    EXPECT_EQ(p.err().code, errc::bad_request_body);
    EXPECT_NE(p.err().message.find(c.want), std::string::npos) << p.err().message;
  }
}

TEST(folded, arbitrary_bytes_never_crash) {
  auto t = legacy_text_type_of("app", 100);
  ASSERT_TRUE(t.ok());
  uint64_t x = 88172645463325252ull;
  for (int round = 0; round < 2000; ++round) {
    std::string body;
    size_t n = round % 64;
    for (size_t i = 0; i < n; ++i) {
      x ^= x << 13;
      x ^= x >> 7;
      x ^= x << 17;
      const char alphabet[] = "ab;; 019\n\r\x00\xff";
      body.push_back(alphabet[x % (sizeof(alphabet) - 1)]);
    }
    for (auto f : {text_format::folded, text_format::lines}) {
      auto p = parse_text_profile(body, f, *t);
      if (!p.ok()) continue;
      for (const auto& s : p->samples) EXPECT_GT(s.loc_count, 0u);
    }
  }
}

TEST(folded, converted_profile_becomes_series_with_pyroscope_labels) {
  auto t = legacy_text_type_of("shop.alloc_space", 100);
  ASSERT_TRUE(t.ok());
  auto p = parse_text_profile("main;alloc 512\nmain;alloc 512\nmain 8\n", text_format::folded, *t);
  ASSERT_TRUE(p.ok());
  ingest_meta m;
  m.labels = {{"__name__", "shop.alloc_space"}, {"__session_id__", "s"}, {"env", "prod"}};
  m.spy_name = "gospy";
  m.time_ns = 5;
  batch_builder b("t");
  ASSERT_TRUE(b.add_converted(*p, m, t->name, t->app).ok());
  const ingest_batch& batch = b.batch();
  ASSERT_EQ(batch.series.size(), 1u);
  const auto& ls = batch.series[0].labels;
  auto get = [&](std::string_view n) -> std::string {
    for (const auto& l : ls)
      if (l.name == n) return l.value;
    return "<none>";
  };
  EXPECT_EQ(get("__name__"), "memory");
  EXPECT_EQ(get("__profile_type__"), "memory:alloc_space:bytes::");
  EXPECT_EQ(get("service_name"), "shop");
  EXPECT_EQ(get("env"), "prod");
  EXPECT_EQ(get("pyroscope_spy"), "gospy");
  EXPECT_EQ(get("__delta__"), "false");
  EXPECT_EQ(get("__session_id__"), "<none>");
  EXPECT_EQ(get("app_name"), "<none>");
  int64_t total = 0;
  for (int64_t v : batch.series[0].sample_values) total += v;
  EXPECT_EQ(total, 1032);

  // An explicit service_name wins; the app name goes to app_name.
  m.labels = {{"__name__", "shop.cpu"}, {"service_name", "checkout"}};
  auto t2 = legacy_text_type_of("shop.cpu", 100);
  auto p2 = parse_text_profile("a 1\n", text_format::folded, *t2);
  batch_builder b2("t");
  ASSERT_TRUE(b2.add_converted(*p2, m, t2->name, t2->app).ok());
  const auto& ls2 = b2.batch().series[0].labels;
  bool saw_app = false, saw_svc = false;
  for (const auto& l : ls2) {
    saw_app = saw_app || (l.name == "app_name" && l.value == "shop");
    saw_svc = saw_svc || (l.name == "service_name" && l.value == "checkout");
  }
  EXPECT_TRUE(saw_app && saw_svc);
}

}  // namespace
}  // namespace hearth
