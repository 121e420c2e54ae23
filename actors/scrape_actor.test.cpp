#include "actors/scrape_actor.hpp"

#include <gtest/gtest.h>

#include "profile.pb.h"

namespace hearth {
namespace {

// A mutex-like profile: types (contentions, delay); two stacks by address; Go-style location ids
// that differ between calls (the delta must match samples by address, not id).
std::string mutex_profile(int64_t a_cont, int64_t a_delay, int64_t b_cont, int64_t b_delay, uint64_t id_base) {
  google::v1::Profile p;
  for (const char* s : {"", "contentions", "count", "delay", "nanoseconds", "lockA", "lockB"}) p.add_string_table(s);
  auto* t = p.add_sample_type();
  t->set_type(1);
  t->set_unit(2);
  t = p.add_sample_type();
  t->set_type(3);
  t->set_unit(4);
  for (int f = 0; f < 2; ++f) {
    auto* fn = p.add_function();
    fn->set_id(f + 1);
    fn->set_name(5 + f);
    auto* loc = p.add_location();
    loc->set_id(id_base + f);
    loc->set_address(0x1000 + 16 * f);
    loc->add_line()->set_function_id(f + 1);
  }
  auto add = [&](uint64_t loc, int64_t c, int64_t d) {
    if (c == 0 && d == 0) return;
    auto* s = p.add_sample();
    s->add_location_id(loc);
    s->add_value(c);
    s->add_value(d);
  };
  add(id_base, a_cont, a_delay);
  add(id_base + 1, b_cont, b_delay);
  return p.SerializeAsString();
}

std::map<std::string, std::pair<int64_t, int64_t>> values(const std::string& bytes) {
  google::v1::Profile p;
  EXPECT_TRUE(p.ParseFromString(bytes));
  std::map<std::string, std::pair<int64_t, int64_t>> out;
  for (const auto& s : p.sample()) {
    uint64_t id = s.location_id(0);
    for (const auto& l : p.location())
      if (l.id() == id) out[p.string_table(p.function(static_cast<int>(l.line(0).function_id() - 1)).name())] = {s.value(0), s.value(1)};
  }
  return out;
}

TEST(PprofDelta, CumulativeProfilesBecomeDeltas) {
  pprof_delta d("mutex");
  auto first = d.next(mutex_profile(10, 100, 0, 0, 1));
  ASSERT_TRUE(first.ok());
  EXPECT_EQ(*first, "") << "the first scrape only sets the baseline";
  auto second = d.next(mutex_profile(15, 160, 4, 40, 7));  // ids renumbered
  ASSERT_TRUE(second.ok());
  auto v = values(*second);
  EXPECT_EQ(v.at("lockA"), std::make_pair(int64_t{5}, int64_t{60}));
  EXPECT_EQ(v.at("lockB"), std::make_pair(int64_t{4}, int64_t{40}));  // new since the baseline
  auto third = d.next(mutex_profile(15, 160, 6, 50, 3));
  ASSERT_TRUE(third.ok());
  v = values(*third);
  EXPECT_EQ(v.count("lockA"), 0u) << "unchanged samples are dropped";
  EXPECT_EQ(v.at("lockB"), std::make_pair(int64_t{2}, int64_t{10}));
  auto same = d.next(mutex_profile(15, 160, 6, 50, 3));
  ASSERT_TRUE(same.ok());
  EXPECT_EQ(*same, "") << "nothing changed: nothing to ingest";
  auto restarted = d.next(mutex_profile(1, 10, 0, 0, 1));  // counters went down: new baseline
  ASSERT_TRUE(restarted.ok());
  EXPECT_EQ(*restarted, "");
  auto after = d.next(mutex_profile(3, 30, 0, 0, 1));
  ASSERT_TRUE(after.ok());
  EXPECT_EQ(values(*after).at("lockA"), std::make_pair(int64_t{2}, int64_t{20}));
}

TEST(PprofDelta, GaugesPassThroughAndGarbageIsAnError) {
  pprof_delta g("goroutine");
  std::string p = mutex_profile(3, 4, 0, 0, 1);
  auto r = g.next(p);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(values(*r).at("lockA"), std::make_pair(int64_t{3}, int64_t{4}));
  pprof_delta bad("mutex");
  auto e = bad.next("\x0a\xff\xff not a profile");
  ASSERT_FALSE(e.ok());
  EXPECT_EQ(e.err().code, errc::bad_pprof);
}

TEST(ScrapePaths, EveryKind) {
  scrape_options o;
  o.cpu_seconds = 9;
  o.profile = "cpu";
  EXPECT_EQ(scrape_target_path(o), "/debug/pprof/profile?seconds=9");
  o.profile = "mutex";
  EXPECT_EQ(scrape_target_path(o), "/debug/pprof/mutex");
  EXPECT_EQ(scrape_profile_name("goroutine"), "goroutines");
  EXPECT_EQ(scrape_profile_name("allocs"), "memory");
}

}  // namespace
}  // namespace hearth
