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
#include <tuple>
#include <vector>

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

namespace hearth {
namespace {

// A hand-written JFR chunk in the shape async-profiler writes (compressed integers), so that what
// the JDK never emits is covered: `contextId` on events with a LabelsSnapshot, the `event`
// setting (wall) and generated class names.
class jfr_writer {
 public:
  // Metadata: class id -> (name, fields (name, type, pooled, array)).
  struct field {
    const char* name;
    uint64_t type;
    bool pooled = false;
    bool array = false;
  };
  void add_class(uint64_t id, const char* name, std::vector<field> fields) { classes_.push_back({id, name, std::move(fields)}); }

  static void varint(std::string& o, uint64_t v) {
    while (v >= 0x80) {
      o.push_back(static_cast<char>(v | 0x80));
      v >>= 7;
    }
    o.push_back(static_cast<char>(v));
  }
  static void utf8(std::string& o, std::string_view s) {
    o.push_back(3);
    varint(o, s.size());
    o += s;
  }
  // An event: padded 4-byte size, type, payload.
  static std::string event(uint64_t type, const std::string& payload) {
    std::string body;
    varint(body, type);
    body += payload;
    uint64_t size = body.size() + 4;
    std::string o;
    for (int i = 0; i < 3; ++i) o.push_back(static_cast<char>((size >> (7 * i) & 0x7f) | 0x80));
    o.push_back(static_cast<char>(size >> 21 & 0x7f));
    return o + body;
  }

  std::string metadata() const {
    std::vector<std::string> strings;
    auto idx = [&strings](std::string s) {
      for (size_t i = 0; i < strings.size(); ++i)
        if (strings[i] == s) return i;
      strings.push_back(s);
      return strings.size() - 1;
    };
    std::string tree;
    auto element = [&](std::string& o, const std::string& name,
                       std::vector<std::pair<std::string, std::string>> attrs, size_t children) {
      varint(o, idx(name));
      varint(o, attrs.size());
      for (auto& [k, v] : attrs) {
        varint(o, idx(k));
        varint(o, idx(v));
      }
      varint(o, children);
    };
    element(tree, "root", {}, 2);
    element(tree, "metadata", {}, classes_.size());
    for (const auto& c : classes_) {
      element(tree, "class", {{"id", std::to_string(c.id)}, {"name", c.name}}, c.fields.size());
      for (const auto& f : c.fields) {
        std::vector<std::pair<std::string, std::string>> a{{"name", f.name}, {"class", std::to_string(f.type)}};
        if (f.pooled) a.emplace_back("constantPool", "true");
        if (f.array) a.emplace_back("dimension", "1");
        element(tree, "field", a, 0);
      }
    }
    element(tree, "region", {}, 0);
    std::string p;
    varint(p, 0);  // start
    varint(p, 0);  // duration
    varint(p, 1);  // id
    varint(p, strings.size());
    for (const auto& s : strings) utf8(p, s);
    return event(0, p + tree);
  }

  // A whole chunk: header, metadata, one constant pool event, then `events`.
  std::string chunk(const std::string& pool_payload, const std::vector<std::string>& events) const {
    std::string meta = metadata();
    std::string cp = event(1, pool_payload);
    std::string body = meta + cp;
    for (const auto& e : events) body += e;
    uint64_t size = 68 + body.size();
    std::string h("FLR\0\0\2\0\1", 8);
    auto be = [&h](uint64_t v) {
      for (int i = 7; i >= 0; --i) h.push_back(static_cast<char>(v >> (8 * i)));
    };
    be(size);
    be(68 + meta.size());  // constant pool offset
    be(68);                // metadata offset
    be(0);
    be(0);
    be(0);
    be(1'000'000'000);
    h += std::string("\0\0\0\1", 4);  // compressed integers
    return h + body;
  }

 private:
  struct cls {
    uint64_t id;
    const char* name;
    std::vector<field> fields;
  };
  std::vector<cls> classes_;
};

enum : uint64_t { t_long = 10, t_int, t_bool, t_string, t_symbol = 20, t_class, t_method, t_frame, t_trace, t_state,
                  t_exec = 100, t_setting, t_monitor };

jfr_writer async_profiler_like() {
  jfr_writer w;
  w.add_class(t_long, "long", {});
  w.add_class(t_int, "int", {});
  w.add_class(t_bool, "boolean", {});
  w.add_class(t_string, "java.lang.String", {});
  w.add_class(t_symbol, "jdk.types.Symbol", {{"string", t_string}});
  w.add_class(t_class, "java.lang.Class", {{"name", t_symbol, true}});
  w.add_class(t_method, "jdk.types.Method", {{"type", t_class, true}, {"name", t_symbol, true}});
  w.add_class(t_frame, "jdk.types.StackFrame", {{"method", t_method, true}, {"lineNumber", t_int}});
  w.add_class(t_trace, "jdk.types.StackTrace", {{"truncated", t_bool}, {"frames", t_frame, false, true}});
  w.add_class(t_state, "jdk.types.ThreadState", {{"name", t_string}});
  w.add_class(t_exec, "jdk.ExecutionSample",
              {{"startTime", t_long}, {"stackTrace", t_trace, true}, {"state", t_state, true}, {"contextId", t_long}});
  w.add_class(t_setting, "jdk.ActiveSetting", {{"startTime", t_long}, {"name", t_string}, {"value", t_string}});
  w.add_class(t_monitor, "jdk.JavaMonitorEnter", {{"startTime", t_long}, {"duration", t_long}, {"stackTrace", t_trace, true}});
  return w;
}

// Pools: symbols 1 "app/Main", 2 "main", 3 "work", 4 "app/Main$$Lambda$7/0x0000000800c0b000",
// 5 "run"; classes 1 app/Main, 2 the lambda; methods 1 main, 2 work, 3 lambda run; stack traces
// 1 = [work:12, main:3] (leaf first), 2 = [run:0, main:4]; states 1 RUNNABLE, 2 SLEEPING.
std::string pools() {
  using w = jfr_writer;
  std::string p;
  w::varint(p, 0);
  w::varint(p, 0);
  w::varint(p, 0);  // delta
  p.push_back(1);   // flush
  w::varint(p, 5);  // pools
  w::varint(p, t_symbol);
  w::varint(p, 5);
  const char* syms[] = {"app/Main", "main", "work", "app/Main$$Lambda$7/0x0000000800c0b000", "run"};
  for (int i = 0; i < 5; ++i) {
    w::varint(p, i + 1);
    w::utf8(p, syms[i]);
  }
  w::varint(p, t_class);
  w::varint(p, 2);
  for (int i : {1, 2}) {
    w::varint(p, i);
    w::varint(p, i == 1 ? 1 : 4);
  }
  w::varint(p, t_method);
  w::varint(p, 3);
  for (auto [id, cls, name] : {std::tuple{1, 1, 2}, std::tuple{2, 1, 3}, std::tuple{3, 2, 5}}) {
    w::varint(p, id);
    w::varint(p, cls);
    w::varint(p, name);
  }
  w::varint(p, t_trace);
  w::varint(p, 2);
  for (auto [id, leaf, leaf_line, root_line] : {std::tuple{1, 2, 12, 3}, std::tuple{2, 3, 0, 4}}) {
    w::varint(p, id);
    p.push_back(0);  // truncated
    w::varint(p, 2);
    w::varint(p, leaf);
    w::varint(p, leaf_line);
    w::varint(p, 1);
    w::varint(p, root_line);
  }
  w::varint(p, t_state);
  w::varint(p, 2);
  for (int i : {1, 2}) {
    w::varint(p, i);
    w::utf8(p, i == 1 ? "STATE_RUNNABLE" : "STATE_SLEEPING");
  }
  return p;
}

std::string exec(uint64_t trace, uint64_t state, uint64_t ctx) {
  std::string p;
  jfr_writer::varint(p, 0);
  jfr_writer::varint(p, trace);
  jfr_writer::varint(p, state);
  jfr_writer::varint(p, ctx);
  return jfr_writer::event(t_exec, p);
}

std::string setting(std::string_view name, std::string_view value) {
  std::string p;
  jfr_writer::varint(p, 0);
  jfr_writer::utf8(p, name);
  jfr_writer::utf8(p, value);
  return jfr_writer::event(t_setting, p);
}

// LabelsSnapshot{contexts {7: {labels {1: 2}}}, strings {1: "route", 2: "/checkout"}}, encoded
// by hand (field 1 = contexts entries, field 2 = strings entries).
std::string labels_snapshot() {
  auto msg = [](uint32_t field, const std::string& body) {
    std::string o;
    jfr_writer::varint(o, field << 3 | 2);
    jfr_writer::varint(o, body.size());
    return o + body;
  };
  auto num = [](uint32_t field, uint64_t v) {
    std::string o;
    jfr_writer::varint(o, field << 3);
    jfr_writer::varint(o, v);
    return o;
  };
  std::string ctx = msg(1, num(1, 1) + num(2, 2));                    // Context.labels entry 1 -> 2
  std::string out = msg(1, num(1, 7) + msg(2, ctx));                  // contexts entry 7
  out += msg(2, num(1, 1) + msg(2, "route"));                         // strings entry 1
  out += msg(2, num(1, 2) + msg(2, "/checkout"));                     // strings entry 2
  return out;
}

TEST(jfr, async_profiler_context_labels_wall_and_lambdas) {
  jfr_writer w = async_profiler_like();
  std::string rec = w.chunk(pools(), {setting("event", "wall"), exec(1, 1, 7), exec(1, 1, 7), exec(1, 1, 0),
                                      exec(2, 2, 0), exec(1, 1, 99)});
  auto labels = parse_jfr_labels(as_bytes(labels_snapshot()));
  ASSERT_TRUE(labels.ok()) << labels.err().to_string();
  ASSERT_EQ(labels->strings.size(), 2u);
  auto got = parse_jfr(as_bytes(rec), 100, &*labels);
  ASSERT_TRUE(got.ok()) << got.err().to_string();
  EXPECT_EQ(got->event, "wall");
  ASSERT_EQ(got->profiles.size(), 2u);
  const pprof::profile& cpu = got->profiles[0].profile;
  EXPECT_EQ(got->profiles[0].metric, "process_cpu");
  // CPU: the sleeping sample is left out; context 7 gets route=/checkout, 0 and unknown 99 none.
  std::map<std::pair<std::string, std::string>, int64_t> by;  // (stack, labels) -> value
  for (const auto& s : cpu.samples) {
    std::string st, ls;
    for (uint32_t k = 0; k < s.loc_count; ++k) {
      const auto& loc = cpu.locations[cpu.location_ids[s.loc_begin + k] - 1];
      const auto& ln = cpu.lines[loc.line_begin];
      st += std::string(cpu.str(cpu.functions[ln.function_id - 1].name)) + ":" + std::to_string(ln.line) + " ";
    }
    for (uint32_t k = 0; k < s.label_count; ++k)
      ls += std::string(cpu.str(cpu.labels[s.label_begin + k].key)) + "=" +
            std::string(cpu.str(cpu.labels[s.label_begin + k].str));
    by[{st, ls}] += cpu.values[s.value_begin];
  }
  using key = std::pair<std::string, std::string>;
  EXPECT_EQ(by, (std::map<key, int64_t>{{{"app/Main.work:12 app/Main.main:3 ", "route=/checkout"}, 20'000'000},
                                        {{"app/Main.work:12 app/Main.main:3 ", ""}, 20'000'000}}));
  // Wall (event=wall): every sample, sleeping included, without labels; lambda class merged.
  const pprof::profile& wall = got->profiles[1].profile;
  EXPECT_EQ(got->profiles[1].metric, "wall");
  int64_t total = 0;
  bool lambda = false;
  for (int64_t v : wall.values) total += v;
  for (const auto& f : wall.functions) lambda = lambda || wall.str(f.name) == "app/Main$$Lambda_.run";
  EXPECT_EQ(total, 5 * 10'000'000);
  EXPECT_TRUE(lambda);
}

TEST(jfr, uncompressed_sizes_and_bad_labels) {
  auto bad = parse_jfr_labels(as_bytes(std::string("\x0a\x05\x08", 3)));
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.err().message.find("LabelsSnapshot"), std::string::npos);
  auto empty = parse_jfr_labels({});
  ASSERT_TRUE(empty.ok());
  EXPECT_TRUE(empty->contexts.empty());
  // An event whose size runs past the chunk, and a pool naming a class the metadata lacks.
  jfr_writer w = async_profiler_like();
  std::string rec = w.chunk(pools(), {exec(1, 1, 0)});
  std::string cut = rec.substr(0, rec.size() - 2);
  cut.replace(8, 8, std::string("\0\0\0\0\0\0", 6) + static_cast<char>(cut.size() >> 8) + static_cast<char>(cut.size()));
  auto r = parse_jfr(as_bytes(cut), 100);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.err().message.find("outside the chunk"), std::string::npos) << r.err().message;
  std::string p = pools();
  p[5] = static_cast<char>(77);  // the first pool's class id
  auto u = parse_jfr(as_bytes(w.chunk(p, {exec(1, 1, 0)})), 100);
  ASSERT_FALSE(u.ok());
  EXPECT_NE(u.err().message.find("unknown class id 77"), std::string::npos) << u.err().message;
}

}  // namespace
}  // namespace hearth
