// The JFR reader against the JDK's own: a recording made by OpenJDK 17 (tests/data/jfr/Burn.java
// under tests/data/jfr/hearth.jfc, compiled and run in a temp dir) is decoded by parse_jfr() and by
// `jfr print --json`, and the per-leaf-frame counts and amounts of every event type must agree.
// Then truncations and byte flips of the same recording must give errors, never a crash.

#include "format/jfr.hpp"

#include <google/protobuf/struct.pb.h>
#include <google/protobuf/util/json_util.h>
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <map>
#include <random>
#include <string>

#include "format/test_util.hpp"

namespace hearth {
namespace {

namespace fs = std::filesystem;

std::string java_home() {
  const char* h = std::getenv("HEARTH_JAVA_HOME");
  return h != nullptr && *h != 0 ? h : "/usr/lib/jvm/java-17-openjdk-amd64";
}

int run(const std::string& cmd) { return std::system(cmd.c_str()); }

// (count, amount) per leaf frame `class.method`.
using per_leaf = std::map<std::string, std::pair<int64_t, int64_t>>;

struct recording {
  std::string jfr;   // the recording's bytes
  std::string json;  // `jfr print --json` of it
  std::string error;
};

// Made once for all tests of this file (a JVM start costs seconds).
const recording& the_recording() {
  static const recording r = [] {
    recording out;
    const char* root = std::getenv("HEARTH_SOURCE_ROOT");
    if (root == nullptr) {
      out.error = "set HEARTH_SOURCE_ROOT (meson test does)";
      return out;
    }
    fs::path dir = fs::temp_directory_path() / ("hearth-jfr-test-" + std::to_string(::getpid()));
    fs::create_directories(dir);
    fs::path src = fs::path(root) / "tests" / "data" / "jfr";
    std::string bin = java_home() + "/bin/";
    std::string d = dir.string();
    if (run(bin + "javac -d " + d + " " + (src / "Burn.java").string()) != 0) {
      out.error = "javac failed (is openjdk-17-jdk-headless installed? see tools/deps.sh)";
    } else if (run(bin + "java -XX:StartFlightRecording=filename=" + d + "/rec.jfr,settings=" +
                   (src / "hearth.jfc").string() + " -cp " + d + " Burn 2500 > " + d + "/java.log 2>&1") != 0) {
      out.error = "java failed, see " + d + "/java.log";
    } else if (run(bin + "jfr print --json --stack-depth 64 --events jdk.ExecutionSample,"
                         "jdk.ObjectAllocationInNewTLAB,jdk.ObjectAllocationOutsideTLAB,"
                         "jdk.ObjectAllocationSample,jdk.JavaMonitorEnter,jdk.ThreadPark " +
                   d + "/rec.jfr > " + d + "/rec.json") != 0) {
      out.error = "jfr print failed";
    } else {
      out.jfr = test::read_file(d + "/rec.jfr");
      out.json = test::read_file(d + "/rec.json");
    }
    std::error_code ec;
    fs::remove_all(dir, ec);
    return out;
  }();
  return r;
}

// "PT0.025047999S", "PT1M2.5S" -> nanoseconds.
int64_t iso_duration_ns(const std::string& s) {
  if (!s.starts_with("PT")) return -1;
  int64_t ns = 0;
  std::string num;
  for (char c : s.substr(2)) {
    if ((c >= '0' && c <= '9') || c == '.' || c == '-') {
      num += c;
      continue;
    }
    size_t dot = num.find('.');
    std::string whole = num.substr(0, dot), frac = dot == std::string::npos ? "" : num.substr(dot + 1);
    frac.resize(9, '0');
    int64_t unit = c == 'H' ? 3600 : c == 'M' ? 60 : 1;
    ns += (std::stoll(whole.empty() ? "0" : whole) * unit) * 1'000'000'000 + std::stoll(frac) * unit;
    num.clear();
  }
  return ns;
}

std::string leaf_of(const google::protobuf::Value& event_values) {
  const auto& st = event_values.struct_value().fields().at("stackTrace");
  if (!st.has_struct_value()) return "";
  const auto& frames = st.struct_value().fields().at("frames").list_value();
  if (frames.values_size() == 0) return "";
  const auto& m = frames.values(0).struct_value().fields().at("method").struct_value().fields();
  std::string cls = m.at("type").struct_value().fields().at("name").string_value();
  if (size_t at = cls.find("$$Lambda$"); at != std::string::npos) cls = cls.substr(0, at) + "$$Lambda_";
  return cls + "." + m.at("name").string_value();
}

// What `jfr print` says, per event type and leaf frame.
std::map<std::string, per_leaf> expected(const std::string& json) {
  google::protobuf::Struct doc;
  auto st = google::protobuf::util::JsonStringToMessage(json, &doc);
  EXPECT_TRUE(st.ok()) << st.ToString();
  std::map<std::string, per_leaf> out;
  const auto& events = doc.fields().at("recording").struct_value().fields().at("events").list_value();
  for (const auto& ev : events.values()) {
    const auto& f = ev.struct_value().fields();
    std::string type = f.at("type").string_value();
    const auto& v = f.at("values");
    const auto& vf = v.struct_value().fields();
    std::string leaf = leaf_of(v);
    if (leaf.empty()) continue;
    int64_t amount = 0;
    if (type == "jdk.ExecutionSample") {
      if (vf.at("state").string_value() == "STATE_SLEEPING") continue;
    } else if (type == "jdk.ObjectAllocationInNewTLAB") {
      amount = static_cast<int64_t>(vf.at("tlabSize").number_value());
    } else if (type == "jdk.ObjectAllocationOutsideTLAB") {
      amount = static_cast<int64_t>(vf.at("allocationSize").number_value());
    } else if (type == "jdk.ObjectAllocationSample") {
      amount = static_cast<int64_t>(vf.at("weight").number_value());
    } else {
      amount = iso_duration_ns(vf.at("duration").string_value());
    }
    auto& slot = out[type][leaf];
    slot.first += 1;
    slot.second += amount;
  }
  return out;
}

const pprof::profile* find(const jfr_profiles& ps, std::string_view first_type) {
  for (const auto& p : ps.profiles)
    if (p.profile.str(p.profile.sample_types[0].type) == first_type) return &p.profile;
  return nullptr;
}

per_leaf leaves(const pprof::profile& p) {
  per_leaf out;
  for (const auto& s : p.samples) {
    if (s.loc_count == 0) continue;
    const auto& loc = p.locations[p.location_ids[s.loc_begin] - 1];
    std::string name(p.str(p.functions[p.lines[loc.line_begin].function_id - 1].name));
    auto& slot = out[name];
    slot.first += p.values[s.value_begin];
    if (p.sample_types.size() > 1) slot.second += p.values[s.value_begin + 1];
  }
  return out;
}

class jfr_test : public ::testing::Test {
 protected:
  void SetUp() override {
    const recording& r = the_recording();
    ASSERT_TRUE(r.error.empty()) << r.error;
    ASSERT_FALSE(r.jfr.empty());
  }
};

TEST_F(jfr_test, decodes_what_jfr_print_shows) {
  const recording& r = the_recording();
  auto got = parse_jfr(as_bytes(r.jfr), 100);
  ASSERT_TRUE(got.ok()) << got.err().to_string();
  auto want = expected(r.json);
  ASSERT_GT(want["jdk.ExecutionSample"].size(), 0u);
  ASSERT_GT(want["jdk.ObjectAllocationOutsideTLAB"].size(), 0u);
  ASSERT_GT(want["jdk.JavaMonitorEnter"].size(), 0u);

  struct check {
    const char* event;
    const char* first_type;
    const char* metric;
  } checks[] = {
      {"jdk.ExecutionSample", "cpu", "process_cpu"},
      {"jdk.ObjectAllocationInNewTLAB", "alloc_in_new_tlab_objects", "memory"},
      {"jdk.ObjectAllocationOutsideTLAB", "alloc_outside_tlab_objects", "memory"},
      {"jdk.ObjectAllocationSample", "alloc_sample_objects", "memory"},
      {"jdk.JavaMonitorEnter", "contentions", "mutex"},
      {"jdk.ThreadPark", "contentions", "block"},
  };
  for (const auto& c : checks) {
    const per_leaf& w = want[c.event];
    const pprof::profile* p = nullptr;
    for (const auto& jp : got->profiles)
      if (jp.profile.str(jp.profile.sample_types[0].type) == c.first_type && jp.metric == c.metric)
        p = &jp.profile;
    if (w.empty()) {
      EXPECT_EQ(p, nullptr) << c.event;
      continue;
    }
    ASSERT_NE(p, nullptr) << c.event;
    per_leaf g = leaves(*p);
    if (std::string_view(c.event) == "jdk.ExecutionSample") {
      for (auto& [k, v] : g) {
        EXPECT_EQ(v.first % 10'000'000, 0) << k;
        v.first /= 10'000'000;  // 1e9 / sampleRate per sample
      }
    }
    EXPECT_EQ(g, w) << c.event;
  }
  const pprof::profile* lock = nullptr;
  for (const auto& jp : got->profiles)
    if (jp.metric == "mutex") lock = &jp.profile;
  ASSERT_NE(lock, nullptr);
  EXPECT_EQ(lock->str(lock->sample_types[1].type), "delay");
  EXPECT_EQ(lock->str(lock->sample_types[1].unit), "nanoseconds");
  EXPECT_EQ(lock->str(lock->period_type.type), "mutex");
  EXPECT_EQ(find(*got, "wall"), nullptr);  // JDK recordings have no `event=wall` setting
  EXPECT_EQ(got->event, "");
}

TEST_F(jfr_test, frames_are_named_and_generated_classes_merged) {
  auto got = parse_jfr(as_bytes(the_recording().jfr), 100);
  ASSERT_TRUE(got.ok()) << got.err().to_string();
  bool saw_main = false, saw_lambda = false;
  for (const auto& jp : got->profiles)
    for (const auto& f : jp.profile.functions) {
      std::string_view n = jp.profile.str(f.name);
      saw_main = saw_main || n == "Burn.main";
      saw_lambda = saw_lambda || n == "Burn$$Lambda_.run";
      EXPECT_EQ(n.find("$$Lambda$"), std::string_view::npos) << n;
    }
  EXPECT_TRUE(saw_main);
  EXPECT_TRUE(saw_lambda);
  // Lines: every location carries the frame's line number (Burn.main has some > 0).
  const pprof::profile& p = got->profiles.front().profile;
  bool line = false;
  for (const auto& l : p.lines) line = line || l.line > 0;
  EXPECT_TRUE(line);
}

TEST_F(jfr_test, sample_rate_sets_the_cpu_weight) {
  auto got = parse_jfr(as_bytes(the_recording().jfr), 250);
  ASSERT_TRUE(got.ok());
  const pprof::profile* cpu = find(*got, "cpu");
  ASSERT_NE(cpu, nullptr);
  EXPECT_EQ(cpu->period, 4'000'000);
  for (int64_t v : cpu->values) EXPECT_EQ(v % 4'000'000, 0);
}

TEST_F(jfr_test, truncation_and_corruption_give_errors_not_crashes) {
  const std::string& good = the_recording().jfr;
  size_t errors = 0;
  for (size_t cut : {size_t{0}, size_t{3}, size_t{67}, size_t{68}, size_t{100}, good.size() / 3, good.size() / 2,
                     good.size() - 1}) {
    auto r = parse_jfr(as_bytes(std::string_view(good).substr(0, cut)), 100);
    ASSERT_FALSE(r.ok()) << cut;
    EXPECT_EQ(r.err().code, errc::bad_request_body);
    EXPECT_TRUE(r.err().message.starts_with("jfr: ")) << r.err().message;
  }
  std::mt19937_64 rng(7);
  for (int round = 0; round < 300; ++round) {
    std::string bad = good;
    int flips = 1 + static_cast<int>(rng() % 8);
    for (int i = 0; i < flips; ++i) bad[rng() % bad.size()] ^= static_cast<char>(1 + rng() % 255);
    auto r = parse_jfr(as_bytes(bad), 100);
    if (!r.ok()) {
      ++errors;
      EXPECT_TRUE(r.err().message.starts_with("jfr: chunk 0 at byte ")) << r.err().message;
    }
  }
  EXPECT_GT(errors, 0u);
}

TEST(jfr, not_a_recording) {
  auto empty = parse_jfr({}, 100);
  ASSERT_FALSE(empty.ok());
  EXPECT_NE(empty.err().message.find("empty recording"), std::string::npos);
  std::string text(100, 'x');
  auto r = parse_jfr(as_bytes(text), 100);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.err().message.find("magic"), std::string::npos) << r.err().message;
  std::string v1 = std::string("FLR\0\0\1\0\0", 8) + std::string(60, '\0');
  auto old = parse_jfr(as_bytes(v1), 100);
  ASSERT_FALSE(old.ok());
  EXPECT_NE(old.err().message.find("unsupported JFR version 1.0"), std::string::npos) << old.err().message;
  std::string v2 = std::string("FLR\0\0\2\0\1", 8) + std::string(8, '\0') + std::string(52, '\0');
  auto small = parse_jfr(as_bytes(v2), 100);
  ASSERT_FALSE(small.ok());
  EXPECT_NE(small.err().message.find("chunk size 0"), std::string::npos) << small.err().message;
}

}  // namespace
}  // namespace hearth
