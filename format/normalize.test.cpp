#include "format/normalize.hpp"

#include <gtest/gtest.h>

#include <deque>
#include <filesystem>
#include <map>
#include <random>
#include <set>
#include <tuple>

#include "format/batch_codec.hpp"
#include "format/ingest_request.hpp"
#include "format/test_util.hpp"

namespace hearth {
namespace {

using test::expected_totals;
using test::load_profile;
using test::testdata_dir;

std::string get(const label_set& ls, std::string_view name) {
  for (const auto& l : ls)
    if (l.name == name) return l.value;
  return "<absent>";
}

int64_t total(const ingest_series& s) {
  int64_t t = 0;
  for (int64_t v : s.sample_values) t += v;
  return t;
}

ingest_meta ingest_meta_for(std::string_view name, std::string spy = "gospy") {
  ingest_meta m;
  auto labels = parse_app_name(name);
  EXPECT_TRUE(labels.ok());
  m.labels = *labels;
  m.spy_name = std::move(spy);
  m.from = ingest_meta::source::ingest;
  return m;
}

/// Checks the batch invariants every consumer relies on.
void check_well_formed(const ingest_batch& b) {
  const symbols& s = b.syms;
  ASSERT_FALSE(s.strings.empty());
  EXPECT_EQ(s.strings[0], "");
  // batch_builder hands the head every string's hash, and each must be hash_bytes() of it.
  ASSERT_EQ(b.string_hashes.size(), s.strings.size());
  for (size_t i = 0; i < s.strings.size(); ++i) ASSERT_EQ(b.string_hashes[i], hash_bytes(s.strings[i])) << i;
  for (const auto& f : s.functions) {
    ASSERT_LT(f.name, s.strings.size());
    ASSERT_LT(f.system_name, s.strings.size());
    ASSERT_LT(f.filename, s.strings.size());
  }
  for (const auto& l : s.lines) ASSERT_LT(l.function, s.functions.size());
  for (const auto& l : s.locations) ASSERT_LE(l.line_begin + l.line_count, s.lines.size());
  for (const auto& m : s.mappings) {
    ASSERT_LT(m.filename, s.strings.size());
    ASSERT_LT(m.build_id, s.strings.size());
    ASSERT_EQ(m.flags & ~mapping_flags_all, 0);
  }
  for (const auto& l : s.locations) ASSERT_LE(l.mapping, s.mappings.size());
  for (size_t i = 0; i < s.mappings.size(); ++i)
    for (size_t j = i + 1; j < s.mappings.size(); ++j) ASSERT_FALSE(s.mappings[i] == s.mappings[j]);
  ASSERT_EQ(b.stack_offsets.back(), b.stack_locations.size());
  for (size_t i = 0; i < b.stack_count(); ++i) ASSERT_LT(b.stack_offsets[i], b.stack_offsets[i + 1]);
  for (uint32_t l : b.stack_locations) ASSERT_LT(l, s.locations.size());
  for (const auto& ser : b.series) {
    ASSERT_EQ(ser.sample_stacks.size(), ser.sample_values.size());
    ASSERT_FALSE(ser.sample_stacks.empty());
    std::vector<uint32_t> seen = ser.sample_stacks;
    std::sort(seen.begin(), seen.end());
    EXPECT_EQ(std::adjacent_find(seen.begin(), seen.end()), seen.end()) << "repeated stack in a series";
    for (uint32_t st : ser.sample_stacks) ASSERT_LT(st, b.stack_count());
    for (int64_t v : ser.sample_values) EXPECT_NE(v, 0);
    // Span samples: canonical, and only on stacks the series has.
    for (size_t i = 0; i < ser.spans.size(); ++i) {
      const span_sample& x = ser.spans[i];
      EXPECT_NE(x.span_id, 0u);
      EXPECT_NE(x.value, 0);
      EXPECT_NE(std::find(ser.sample_stacks.begin(), ser.sample_stacks.end(), x.stack), ser.sample_stacks.end());
      if (i > 0) {
        ASSERT_LT(std::tie(ser.spans[i - 1].stack, ser.spans[i - 1].span_id), std::tie(x.stack, x.span_id));
      }
    }
    for (size_t i = 1; i < ser.labels.size(); ++i) ASSERT_LT(ser.labels[i - 1].name, ser.labels[i].name);
  }
}

/// The __name__ Pyroscope gives each of our real profiles on /ingest without sample_type_config.
std::string expected_name(const std::string& file) {
  if (file.starts_with("node.cpu")) return "wall";
  if (file.find(".cpu.") != std::string::npos) return "process_cpu";
  if (file.find("heap") != std::string::npos || file.find("allocs") != std::string::npos) return "memory";
  if (file.find("goroutine") != std::string::npos) return "goroutines";
  if (file.find("mutex") != std::string::npos || file.find("block") != std::string::npos) return "mutex";
  if (file.find("threadcreate") != std::string::npos) return "threadcreate";
  return "?";
}

TEST(normalize, real_profiles_totals_and_profile_types) {
  size_t files = 0;
  for (const std::string dir : {"go", "node"}) {
    for (const auto& e : std::filesystem::directory_iterator(testdata_dir() + "/" + dir)) {
      const std::string file = e.path().filename().string();
      if (!file.ends_with(".pb.gz")) continue;
      const std::string name = file.substr(0, file.size() - 6);
      SCOPED_TRACE(file);
      auto l = load_profile(e.path().string());
      ASSERT_NE(l, nullptr);
      ++files;
      batch_builder b("t1");
      ASSERT_TRUE(b.add(l->p, ingest_meta_for("app{env=test}")).ok());
      ingest_batch batch = b.finish();
      check_well_formed(batch);
      EXPECT_EQ(batch.tenant, "t1");

      const auto want = expected_totals(dir, name);
      ASSERT_FALSE(want.empty());
      size_t nonzero = 0;
      for (const auto& [key, t] : want) {
        const std::string type = key.substr(0, key.find('/'));
        const std::string unit = key.substr(key.find('/') + 1);
        const ingest_series* found = nullptr;
        for (const auto& s : batch.series)
          if (get(s.labels, "__type__") == type && get(s.labels, "__unit__") == unit) {
            EXPECT_EQ(found, nullptr) << "two series for " << key;
            found = &s;
          }
        if (t == 0) {
          EXPECT_EQ(found, nullptr) << key << " has no samples and must not become a series";
          continue;
        }
        ++nonzero;
        ASSERT_NE(found, nullptr) << key;
        EXPECT_EQ(total(*found), t) << key;
        std::string n = expected_name(file);
        if (n == "wall" && type == "cpu") {
          n = "process_cpu";  // default relabel rule
          EXPECT_EQ(get(found->labels, "__name_replaced__"), "wall");
        }
        const std::string pt = n + ":" + type + ":" + unit + ":" + std::string(l->p.str(l->p.period_type.type)) + ":" +
                               std::string(l->p.str(l->p.period_type.unit));
        EXPECT_EQ(get(found->labels, "__profile_type__"), pt);
        EXPECT_EQ(get(found->labels, "__name__"), n);
        EXPECT_EQ(get(found->labels, "service_name"), "app");
        EXPECT_EQ(get(found->labels, "__service_name__"), "app");
        EXPECT_EQ(get(found->labels, "env"), "test");
        EXPECT_EQ(get(found->labels, "__delta__"), "false");
        EXPECT_EQ(get(found->labels, "pyroscope_spy"), "gospy");
        EXPECT_EQ(found->time_ns, l->p.time_nanos);
        EXPECT_EQ(found->duration_ns, l->p.duration_nanos);
      }
      EXPECT_EQ(batch.series.size(), nonzero);
      EXPECT_EQ(ingest_metric_name(l->p, nullptr), expected_name(file));
    }
  }
  EXPECT_EQ(files, 22u);
}

TEST(normalize, workpool_cpu_exact_labels) {
  auto l = load_profile(testdata_dir() + "/go/workpool.cpu.000.pb.gz");
  ASSERT_NE(l, nullptr);
  ingest_meta m = ingest_meta_for("workpool{__session_id__=abc,__private=1,region=eu}");
  m.time_ns = 42;
  m.duration_ns = 7;
  m.id_hi = 1;
  m.id_lo = 2;
  ingest_batch out;
  ASSERT_TRUE(append_profile(l->p, m, {}, out).ok());
  ASSERT_EQ(out.series.size(), 2u);
  const label_set want0 = {
      {"__delta__", "false"},
      {"__name__", "process_cpu"},
      {"__period_type__", "cpu"},
      {"__period_unit__", "nanoseconds"},
      {"__profile_type__", "process_cpu:samples:count:cpu:nanoseconds"},
      {"__service_name__", "workpool"},
      {"__type__", "samples"},
      {"__unit__", "count"},
      {"pyroscope_spy", "gospy"},
      {"region", "eu"},
      {"service_name", "workpool"},
  };
  EXPECT_EQ(out.series[0].labels, want0);
  EXPECT_EQ(get(out.series[1].labels, "__profile_type__"), "process_cpu:cpu:nanoseconds:cpu:nanoseconds");
  EXPECT_EQ(out.series[0].time_ns, 42);
  EXPECT_EQ(out.series[0].duration_ns, 7);
  EXPECT_EQ(out.series[1].id_hi, 1u);
  EXPECT_EQ(out.series[1].id_lo, 2u);
  // Both series share the stacks: same stack set, cpu = samples * period.
  EXPECT_EQ(out.series[0].sample_stacks, out.series[1].sample_stacks);
  EXPECT_EQ(total(out.series[1]), total(out.series[0]) * 10'000'000);
}

TEST(normalize, one_batch_shares_symbols_across_profiles) {
  auto a = load_profile(testdata_dir() + "/go/workpool.cpu.000.pb.gz");
  auto c = load_profile(testdata_dir() + "/go/workpool.cpu.001.pb.gz");
  ASSERT_TRUE(a && c);
  batch_builder b;
  ASSERT_TRUE(b.add(a->p, ingest_meta_for("app")).ok());
  const size_t strings = b.batch().syms.strings.size(), functions = b.batch().syms.functions.size(),
               locations = b.batch().syms.locations.size(), stacks = b.batch().stack_count();
  ASSERT_TRUE(b.add(a->p, ingest_meta_for("app")).ok());
  EXPECT_EQ(b.batch().syms.strings.size(), strings);
  EXPECT_EQ(b.batch().syms.functions.size(), functions);
  EXPECT_EQ(b.batch().syms.locations.size(), locations);
  EXPECT_EQ(b.batch().stack_count(), stacks);
  EXPECT_EQ(b.batch().series.size(), 4u);
  ASSERT_TRUE(b.add(c->p, ingest_meta_for("app")).ok());
  EXPECT_LT(b.batch().syms.functions.size(), functions * 2);  // mostly the same code
  ingest_batch out = b.finish();
  check_well_formed(out);
  EXPECT_EQ(out.series.size(), 6u);
  EXPECT_TRUE(b.batch().series.empty());
  // Symbol dedup keys: functions and locations are unique in the batch.
  for (size_t i = 0; i < out.syms.functions.size(); ++i)
    for (size_t j = i + 1; j < out.syms.functions.size(); ++j) ASSERT_FALSE(out.syms.functions[i] == out.syms.functions[j]);
  // append_profile continues an existing batch the same way.
  const size_t fns = out.syms.functions.size();
  ASSERT_TRUE(append_profile(a->p, ingest_meta_for("app"), {}, out).ok());
  EXPECT_EQ(out.syms.functions.size(), fns);
  EXPECT_EQ(out.series.size(), 8u);
  check_well_formed(out);
}

TEST(normalize, block_profile_names_with_sample_type_config) {
  auto l = load_profile(testdata_dir() + "/go/workpool.block.pb.gz");
  ASSERT_NE(l, nullptr);
  ingest_meta m = ingest_meta_for("app");
  m.display_names = std::vector<std::pair<std::string, std::string>>{{"contentions", "block_count"},
                                                                     {"delay", "block_duration"}};
  ingest_batch out;
  ASSERT_TRUE(append_profile(l->p, m, {}, out).ok());
  ASSERT_EQ(out.series.size(), 2u);
  EXPECT_EQ(get(out.series[0].labels, "__profile_type__"), "block:contentions:count:contentions:count");
  EXPECT_EQ(get(out.series[1].labels, "__profile_type__"), "block:delay:nanoseconds:contentions:count");
  // A config replaces the default table entirely.
  m.display_names = std::vector<std::pair<std::string, std::string>>{};
  EXPECT_EQ(ingest_metric_name(l->p, &*m.display_names), "delay");
}

TEST(normalize, node_cpu_gets_wall_and_process_cpu) {
  auto l = load_profile(testdata_dir() + "/node/node.cpu.000.pb.gz");
  ASSERT_NE(l, nullptr);
  ingest_batch out;
  ASSERT_TRUE(append_profile(l->p, ingest_meta_for("nodeapp{service_name=svc}", "nodespy"), {}, out).ok());
  std::vector<std::string> types;
  for (const auto& s : out.series) types.push_back(get(s.labels, "__profile_type__"));
  EXPECT_EQ(types, (std::vector<std::string>{"wall:sample:count:wall:nanoseconds",
                                             "wall:wall:nanoseconds:wall:nanoseconds",
                                             "process_cpu:cpu:nanoseconds:wall:nanoseconds"}));
  // An explicit service_name label wins over the app name.
  EXPECT_EQ(get(out.series[0].labels, "service_name"), "svc");
  EXPECT_EQ(get(out.series[0].labels, "__service_name__"), "svc");
  EXPECT_EQ(get(out.series[0].labels, "pyroscope_spy"), "nodespy");
}

// ---- synthetic profiles ------------------------------------------------------------------------

/// Builds a pprof::profile by hand: location id i has one line in function "f<i>".
struct synth {
  std::deque<std::string> store;
  pprof::profile p;

  int64_t s(std::string_view v) {
    for (size_t i = 0; i < p.strings.size(); ++i)
      if (p.strings[i] == v) return static_cast<int64_t>(i);
    store.emplace_back(v);
    p.strings.push_back(store.back());
    return static_cast<int64_t>(p.strings.size() - 1);
  }
  synth(std::vector<std::pair<std::string, std::string>> types, int locations) {
    p.strings.push_back("");
    for (auto& [t, u] : types) p.sample_types.push_back({s(t), s(u)});
    p.period_type = {s("cpu"), s("nanoseconds")};
    for (int i = 1; i <= locations; ++i) {
      p.functions.push_back({static_cast<uint64_t>(i), s("f" + std::to_string(i)), s("f" + std::to_string(i)),
                             s("file.go"), 1});
      pprof::location loc;
      loc.id = static_cast<uint64_t>(i);
      loc.address = 0x1000 + i;
      loc.line_begin = static_cast<uint32_t>(p.lines.size());
      loc.line_count = 1;
      p.lines.push_back({static_cast<uint64_t>(i), 10 + i});
      p.locations.push_back(loc);
    }
  }
  void sample(std::vector<uint64_t> locs, std::vector<int64_t> values,
              std::vector<std::pair<std::string, std::string>> str_labels = {}, int numeric_labels = 0) {
    pprof::sample x;
    x.loc_begin = static_cast<uint32_t>(p.location_ids.size());
    x.loc_count = static_cast<uint32_t>(locs.size());
    p.location_ids.insert(p.location_ids.end(), locs.begin(), locs.end());
    x.value_begin = static_cast<uint32_t>(p.values.size());
    p.values.insert(p.values.end(), values.begin(), values.end());
    x.label_begin = static_cast<uint32_t>(p.labels.size());
    for (auto& [k, v] : str_labels) p.labels.push_back({s(k), s(v), 0, 0});
    for (int i = 0; i < numeric_labels; ++i) p.labels.push_back({s("bytes"), 0, 512, 0});
    x.label_count = static_cast<uint32_t>(p.labels.size()) - x.label_begin;
    p.samples.push_back(x);
  }
};

ingest_meta push_meta(label_set labels) {
  ingest_meta m;
  m.labels = std::move(labels);
  std::sort(m.labels.begin(), m.labels.end());
  m.from = ingest_meta::source::push;
  return m;
}

TEST(normalize, sample_labels_split_series) {
  synth x({{"cpu", "nanoseconds"}, {"samples", "count"}}, 3);
  x.sample({1, 2}, {10, 1}, {{"handler", "/a"}});
  x.sample({1, 2}, {5, 1}, {{"handler", "/a"}, {"span_id", "0123456789abcdef"}});  // same series as above
  x.sample({1, 3}, {7, 1}, {{"handler", "/b"}, {"service_name", "evil"}}, 1);
  x.sample({3}, {3, 1}, {}, 2);  // numeric labels only: no promoted labels
  x.sample({2}, {0, 4}, {{"handler", "/c"}});  // zero for cpu: no cpu series for /c
  x.sample({}, {100, 100}, {{"handler", "/d"}});  // no locations: skipped
  x.sample({1, 2}, {1, 0}, {{"trace_id", "t"}, {"profile_id", "p"}, {"handler", "/a"}});
  batch_builder b;
  ASSERT_TRUE(b.add(x.p, push_meta({{"__name__", "process_cpu"}, {"service_name", "svc"}})).ok());
  ingest_batch out = b.finish();
  check_well_formed(out);
  std::map<std::string, int64_t> got;
  for (const auto& s : out.series) {
    EXPECT_EQ(get(s.labels, "service_name"), "svc");  // series labels win
    EXPECT_EQ(get(s.labels, "span_id"), "<absent>");
    EXPECT_EQ(get(s.labels, "trace_id"), "<absent>");
    EXPECT_EQ(get(s.labels, "profile_id"), "<absent>");
    EXPECT_EQ(get(s.labels, "bytes"), "<absent>");
    got[get(s.labels, "__type__") + " " + get(s.labels, "handler")] += total(s);
  }
  EXPECT_EQ(got, (std::map<std::string, int64_t>{{"cpu /a", 16},
                                                 {"cpu /b", 7},
                                                 {"cpu <absent>", 3},
                                                 {"samples /a", 2},
                                                 {"samples /b", 1},
                                                 {"samples /c", 4},
                                                 {"samples <absent>", 1}}));
  EXPECT_EQ(out.series.size(), 7u);
  // /a for cpu: three samples with one stack, summed into one entry.
  for (const auto& s : out.series)
    if (get(s.labels, "__type__") == "cpu" && get(s.labels, "handler") == "/a") {
      ASSERT_EQ(s.sample_stacks.size(), 1u);
      EXPECT_EQ(s.sample_values[0], 16);
    }
}

TEST(normalize, span_ids_are_kept_per_sample_and_do_not_split_series) {
  synth x({{"cpu", "nanoseconds"}, {"samples", "count"}}, 3);
  x.p.period = 10'000'000;
  x.sample({1, 2}, {10, 1});
  x.sample({1, 2}, {5, 1}, {{"span_id", "0123456789abcdef"}});
  x.sample({1, 2}, {4, 2}, {{"span_id", "0123456789ABCDEF"}});  // the same span: summed
  x.sample({1, 3}, {7, 1}, {{"profile_id", "00000000000000ff"}});  // renamed to span_id
  x.sample({1, 3}, {2, 1}, {{"span_id", "not-hex-at-all!!"}});    // not a span id: ignored
  x.sample({1, 3}, {3, 0}, {{"profile_id", "00000000000000ff"}, {"span_id", "00000000000000aa"}});
  x.sample({1, 3}, {1, 1}, {{"span_id", "0000000000000000"}});  // the zero id means none
  batch_builder b;
  ASSERT_TRUE(b.add(x.p, push_meta({{"__name__", "process_cpu"}, {"service_name", "svc"}})).ok());
  ingest_batch out = b.finish();
  check_well_formed(out);
  ASSERT_EQ(out.series.size(), 2u);  // one per sample type: span ids are not series labels
  std::map<std::string, const ingest_series*> by_type;
  for (const auto& s : out.series) {
    by_type[get(s.labels, "__type__")] = &s;
    EXPECT_EQ(s.period, 10'000'000);
  }
  const ingest_series& cpu = *by_type.at("cpu");
  const ingest_series& samples = *by_type.at("samples");
  EXPECT_EQ(total(cpu), 32);  // every sample counts, with or without a span
  EXPECT_EQ(total(samples), 7);
  ASSERT_EQ(cpu.sample_stacks.size(), 2u);
  const uint32_t s12 = cpu.sample_stacks[0], s13 = cpu.sample_stacks[1];
  EXPECT_EQ(cpu.spans, (std::vector<span_sample>{
                           {s12, 0x0123456789abcdef, 9}, {s13, 0xaa, 3}, {s13, 0xff, 7}}));
  EXPECT_EQ(samples.spans, (std::vector<span_sample>{{s12, 0x0123456789abcdef, 3}, {s13, 0xff, 1}}));
}

TEST(normalize, parse_span_id) {
  EXPECT_EQ(parse_span_id("0123456789abcdef"), 0x0123456789abcdefull);
  EXPECT_EQ(parse_span_id("FFFFFFFFFFFFFFFF"), ~uint64_t{0});
  EXPECT_EQ(parse_span_id("0000000000000000"), std::nullopt);
  EXPECT_EQ(parse_span_id("0123456789abcde"), std::nullopt);
  EXPECT_EQ(parse_span_id("0123456789abcdef0"), std::nullopt);
  EXPECT_EQ(parse_span_id("0123456789abcdeg"), std::nullopt);
  EXPECT_EQ(parse_span_id(""), std::nullopt);
}

TEST(normalize, push_rules) {
  synth x({{"alloc_space", "bytes"}}, 2);
  x.sample({1, 2}, {100});
  {
    batch_builder b;
    auto st = b.add(x.p, push_meta({{"service_name", "svc"}}));
    ASSERT_FALSE(st.ok());
    EXPECT_EQ(st.err().code, errc::bad_labels);
    EXPECT_NE(st.err().message.find("series labels must contain __name__"), std::string::npos);
  }
  {
    batch_builder b;
    ASSERT_TRUE(b.add(x.p, push_meta({{"__name__", "godeltaprof_memory"}, {"__session_id__", "s"},
                                      {"__type__", "spoof"}, {"job", "j"}}))
                    .ok());
    ingest_batch out = b.finish();
    ASSERT_EQ(out.series.size(), 1u);
    const label_set want = {
        {"__delta__", "false"},
        {"__name__", "memory"},
        {"__name_replaced__", "godeltaprof_memory"},
        {"__period_type__", "cpu"},
        {"__period_unit__", "nanoseconds"},
        {"__profile_type__", "memory:alloc_space:bytes:cpu:nanoseconds"},
        {"__service_name__", "unknown_service"},
        {"__type__", "alloc_space"},
        {"__unit__", "bytes"},
        {"job", "j"},
        {"service_name", "unknown_service"},
    };
    EXPECT_EQ(out.series[0].labels, want);
  }
}

TEST(normalize, empty_period_type_gives_empty_parts) {
  synth x({{"inuse_objects", "count"}}, 1);
  x.p.period_type = {};
  x.sample({1}, {3});
  ingest_batch out;
  ASSERT_TRUE(append_profile(x.p, ingest_meta_for("a"), {}, out).ok());
  ASSERT_EQ(out.series.size(), 1u);
  EXPECT_EQ(get(out.series[0].labels, "__profile_type__"), "memory:inuse_objects:count::");
  EXPECT_EQ(get(out.series[0].labels, "__period_type__"), "<absent>");
}

// Found by fuzz_pprof: /ingest names a series after the profile's sample type; with no type
// name there is none, which is a bad request, not a crash.
TEST(normalize, ingest_profile_with_unnamed_sample_types_is_bad_labels) {
  synth x({{"", "count"}}, 1);
  x.sample({1}, {3});
  ingest_batch out;
  auto st = append_profile(x.p, ingest_meta_for("a"), {}, out);
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.err().code, errc::bad_labels);
  EXPECT_NE(st.err().message.find("sample types have no name"), std::string::npos)
      << st.err().message;
  EXPECT_TRUE(out.series.empty());
}

TEST(normalize, stack_depth_keeps_root_side_and_symbols_keep_tail) {
  synth x({{"cpu", "nanoseconds"}}, 6);
  x.store.emplace_back("github.com/org/repo/pkg.(*T).VeryLongMethodName");
  x.p.strings[x.p.functions[0].name] = x.store.back();
  x.sample({1, 2, 3, 4, 5}, {1});  // leaf 1 ... root 5
  x.sample({6, 2, 3, 4, 5}, {2});  // differs only below the cut: merges with the first
  x.sample({4, 5}, {4});           // under the limit: kept whole
  x.sample({3, 4, 5}, {8});        // exactly at the limit: kept whole, the cut stacks merge into it
  normalize_limits lim;
  lim.max_stack_depth = 3;
  lim.depth_policy = normalize_limits::stack_depth_policy::truncate;
  lim.max_symbol_len = 10;
  ingest_batch out;
  ASSERT_TRUE(append_profile(x.p, ingest_meta_for("a"), lim, out).ok());
  check_well_formed(out);
  ASSERT_EQ(out.stack_count(), 2u);
  ASSERT_EQ(out.series.size(), 1u);
  EXPECT_EQ(out.series[0].sample_values, (std::vector<int64_t>{11, 4}));
  ASSERT_EQ(out.stack_locations.size(), 5u);
  std::vector<std::string> names;
  for (uint32_t loc : out.stack_locations) {
    const auto& l = out.syms.locations[loc];
    ASSERT_EQ(l.line_count, 1u);
    EXPECT_EQ(l.address, 0u);  // symbolized: identified by lines only
    names.push_back(out.syms.strings[out.syms.functions[out.syms.lines[l.line_begin].function].name]);
  }
  EXPECT_EQ(names, (std::vector<std::string>{"f3", "f4", "f5", "f4", "f5"}));

  // Truncated symbols keep the last bytes.
  synth y({{"cpu", "nanoseconds"}}, 1);
  y.store.emplace_back("github.com/org/repo/pkg.(*T).VeryLongMethodName");
  y.p.strings[y.p.functions[0].name] = y.store.back();
  y.sample({1}, {1});
  ingest_batch out2;
  ASSERT_TRUE(append_profile(y.p, ingest_meta_for("a"), lim, out2).ok());
  EXPECT_EQ(out2.syms.strings[out2.syms.functions[0].name], "MethodName");
}

TEST(normalize, stack_depth_reject_refuses_the_profile_naming_sample_depth_and_limit) {
  synth x({{"cpu", "nanoseconds"}}, 5);
  x.sample({1, 2}, {1});
  x.sample({1, 2, 3}, {2});  // exactly at the limit
  normalize_limits lim;
  lim.max_stack_depth = 3;
  ASSERT_EQ(lim.depth_policy, normalize_limits::stack_depth_policy::reject);  // the default
  ingest_batch out;
  ASSERT_TRUE(append_profile(x.p, ingest_meta_for("a"), lim, out).ok());
  check_well_formed(out);
  ASSERT_EQ(out.series.size(), 1u);
  EXPECT_EQ(out.series[0].sample_values, (std::vector<int64_t>{1, 2}));
  EXPECT_EQ(out.stack_locations.size(), 5u);

  // A deeper sample whose values are all zero is never stored, so it does not count.
  x.sample({1, 2, 3, 4, 5}, {0});
  ingest_batch zero = out;
  ASSERT_TRUE(append_profile(x.p, ingest_meta_for("b"), lim, zero).ok());
  EXPECT_EQ(zero.series.size(), 2u);

  // One frame over the limit fails the whole profile and leaves the batch as it was.
  x.sample({1, 2, 3, 4}, {5});
  ingest_batch copy = out;
  auto st = append_profile(x.p, ingest_meta_for("c"), lim, copy);
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.err().code, errc::invalid_argument);
  EXPECT_EQ(st.err().message, "sample 3 has a stack of 4 frames, over limits.max_stack_depth = 3");
  EXPECT_EQ(copy.series.size(), out.series.size());
  EXPECT_EQ(copy.syms.strings, out.syms.strings);
  EXPECT_EQ(copy.stack_locations, out.stack_locations);

  // The same profile is accepted, cut to its root side, under truncate.
  lim.depth_policy = normalize_limits::stack_depth_policy::truncate;
  ASSERT_TRUE(append_profile(x.p, ingest_meta_for("c"), lim, copy).ok());
  check_well_formed(copy);
  ASSERT_EQ(copy.series.size(), 2u);
  EXPECT_EQ(copy.series[1].sample_values, (std::vector<int64_t>{1, 2, 5}));
  EXPECT_EQ(copy.stack_count(), 3u);  // {1,2}, {1,2,3} and the cut {2,3,4}
}

TEST(normalize, unsymbolized_locations_keep_their_address) {
  synth x({{"cpu", "nanoseconds"}}, 2);
  x.p.locations[0].line_count = 0;
  x.p.locations[1].line_count = 0;
  x.sample({1, 2}, {1});
  ingest_batch out;
  ASSERT_TRUE(append_profile(x.p, ingest_meta_for("a"), {}, out).ok());
  ASSERT_EQ(out.syms.locations.size(), 2u);
  EXPECT_EQ(out.syms.locations[0].address, 0x1001u);
  EXPECT_EQ(out.syms.locations[1].address, 0x1002u);
  EXPECT_TRUE(out.syms.functions.empty());
}

TEST(normalize, label_validation_errors_leave_batch_unchanged) {
  synth x({{"cpu", "nanoseconds"}}, 1);
  x.sample({1}, {1});
  ingest_batch out;
  ASSERT_TRUE(append_profile(x.p, ingest_meta_for("a"), {}, out).ok());
  const std::string before_strings = std::to_string(out.syms.strings.size());

  auto expect_bad = [&](const ingest_meta& m, const normalize_limits& lim, const char* want) {
    ingest_batch copy = out;
    auto st = append_profile(x.p, m, lim, copy);
    ASSERT_FALSE(st.ok()) << want;
    EXPECT_EQ(st.err().code, errc::bad_labels);
    EXPECT_NE(st.err().message.find(want), std::string::npos) << st.err().message;
    EXPECT_EQ(copy.series.size(), out.series.size());
    EXPECT_EQ(copy.syms.strings, out.syms.strings);
    EXPECT_EQ(copy.stack_locations, out.stack_locations);
  };
  expect_bad(push_meta({{"__name__", "cpu"}, {"bad\xff", "x"}}), {}, "not valid UTF-8");
  expect_bad(push_meta({{"__name__", "cpu"}, {"k", "bad\xc0\x80"}}), {}, "not valid UTF-8");
  expect_bad(push_meta({{"__name__", "cpu"}, {"", "x"}}), {}, "empty label name");
  expect_bad(push_meta({{"__name__", "cpu"}, {"k", "1"}, {"k", "2"}}), {}, "duplicate label name 'k'");
  normalize_limits lim;
  lim.max_label_value_len = 4;
  expect_bad(push_meta({{"__name__", "cpu"}, {"k", "12345"}}), lim, "max_label_value_len=4");
  lim = {};
  lim.max_label_name_len = 2;
  expect_bad(push_meta({{"__name__", "cpu"}, {"kkk", "1"}}), lim, "max_label_name_len=2");
  lim = {};
  lim.max_labels = 3;  // service_name + 3 others = 4 visible labels
  expect_bad(push_meta({{"__name__", "cpu"}, {"a", "1"}, {"b", "1"}, {"c", "1"}}), lim, "max_labels=3");
  EXPECT_TRUE(append_profile(x.p, push_meta({{"__name__", "cpu"}, {"a", "1"}, {"b", "1"}}), lim, out).ok());

  // Invalid promoted sample labels are rejected too.
  synth y({{"cpu", "nanoseconds"}}, 1);
  y.sample({1}, {1}, {{"k", "\xff"}});
  ingest_batch out2;
  auto st = append_profile(y.p, ingest_meta_for("a"), {}, out2);
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.err().message.find("pprof sample label 'k'"), std::string::npos) << st.err().message;
  EXPECT_TRUE(out2.series.empty());
  EXPECT_EQ(out2.syms.strings.size(), 1u);
}

TEST(normalize, ingest_without_app_name_fails) {
  synth x({{"cpu", "nanoseconds"}}, 1);
  x.sample({1}, {1});
  ingest_meta m;
  m.from = ingest_meta::source::ingest;
  ingest_batch out;
  auto st = append_profile(x.p, m, {}, out);
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.err().code, errc::bad_labels);
}

// pprof mappings (the binaries) are interned by all their fields, referenced 1-based by the
// locations that lie in them (0 = none), and only when a stored location uses them.
TEST(normalize, mappings_are_interned_and_referenced_by_locations) {
  synth x({{"cpu", "nanoseconds"}}, 5);
  auto add_mapping = [&](uint64_t id, uint64_t start, std::string_view file, std::string_view build,
                         bool fn, bool inl) {
    pprof::mapping m;
    m.id = id;
    m.memory_start = start;
    m.memory_limit = start + 0x10000;
    m.file_offset = 0x1000;
    m.filename = x.s(file);
    m.build_id = x.s(build);
    m.has_functions = fn;
    m.has_filenames = fn;
    m.has_line_numbers = true;
    m.has_inline_frames = inl;
    x.p.mappings.push_back(m);
  };
  add_mapping(10, 0x400000, "/usr/bin/app", "b1d", true, false);
  add_mapping(20, 0x7f0000000000, "/lib/libc.so.6", "c0ffee", false, true);
  add_mapping(30, 0x800000, "/unused", "", true, true);  // referenced by no location
  add_mapping(40, 0x400000, "/usr/bin/app", "b1d", true, false);  // a duplicate of 10
  x.p.locations[0].mapping_id = 10;
  x.p.locations[1].mapping_id = 20;
  // locations[2]: no mapping
  x.p.locations[3].mapping_id = 40;
  // Location 5 has location 4's line and mapping but another address: the same location.
  x.p.locations[4].mapping_id = 40;
  x.p.lines[x.p.locations[4].line_begin] = x.p.lines[x.p.locations[3].line_begin];
  x.sample({1, 2, 3}, {1});
  x.sample({4, 3}, {2});
  x.sample({5}, {3});
  ingest_batch out;
  ASSERT_TRUE(append_profile(x.p, ingest_meta_for("a"), {}, out).ok());
  check_well_formed(out);
  const symbols& sy = out.syms;
  ASSERT_EQ(sy.mappings.size(), 2u);  // 10 and 40 are one; 30 is unused
  const mapping_rec& app = sy.mappings[0];
  EXPECT_EQ(app.memory_start, 0x400000u);
  EXPECT_EQ(app.memory_limit, 0x410000u);
  EXPECT_EQ(app.file_offset, 0x1000u);
  EXPECT_EQ(sy.strings[app.filename], "/usr/bin/app");
  EXPECT_EQ(sy.strings[app.build_id], "b1d");
  EXPECT_EQ(app.flags, mapping_has_functions | mapping_has_filenames | mapping_has_line_numbers);
  const mapping_rec& libc = sy.mappings[1];
  EXPECT_EQ(sy.strings[libc.filename], "/lib/libc.so.6");
  EXPECT_EQ(sy.strings[libc.build_id], "c0ffee");
  EXPECT_EQ(libc.flags, mapping_has_line_numbers | mapping_has_inline_frames);
  ASSERT_EQ(out.stack_count(), 3u);
  auto loc = [&](uint32_t stack, uint32_t k) {
    return sy.locations[out.stack_locations[out.stack_offsets[stack] + k]];
  };
  EXPECT_EQ(loc(0, 0).mapping, 1u);
  EXPECT_EQ(loc(0, 1).mapping, 2u);
  EXPECT_EQ(loc(0, 2).mapping, 0u);
  EXPECT_EQ(loc(1, 0).mapping, 1u);
  // Symbolized: identified by (mapping, lines), so locations 4 and 5 are one.
  EXPECT_EQ(out.stack_locations[out.stack_offsets[1]], out.stack_locations[out.stack_offsets[2]]);
  EXPECT_EQ(loc(2, 0).address, 0u);
  EXPECT_EQ(sy.locations.size(), 4u);

  // The same lines in another binary (or in none) are another location.
  synth y({{"cpu", "nanoseconds"}}, 2);
  y.p.lines[1] = y.p.lines[0];
  pprof::mapping m;
  m.id = 1;
  m.filename = y.s("/bin/x");
  y.p.mappings.push_back(m);
  y.p.locations[0].mapping_id = 1;
  y.sample({1, 2}, {1});
  ingest_batch out2;
  ASSERT_TRUE(append_profile(y.p, ingest_meta_for("a"), {}, out2).ok());
  ASSERT_EQ(out2.syms.locations.size(), 2u);
  EXPECT_EQ(out2.syms.locations[0].mapping, 1u);
  EXPECT_EQ(out2.syms.locations[1].mapping, 0u);
  EXPECT_EQ(out2.syms.locations[0].address, 0u);
  EXPECT_EQ(out2.syms.locations[1].address, 0u);

  // Unsymbolized locations keep their address next to their mapping.
  synth z({{"cpu", "nanoseconds"}}, 1);
  z.p.locations[0].line_count = 0;
  z.p.mappings.push_back(m);
  z.p.locations[0].mapping_id = 1;
  z.sample({1}, {1});
  ingest_batch out3;
  ASSERT_TRUE(append_profile(z.p, ingest_meta_for("a"), {}, out3).ok());
  ASSERT_EQ(out3.syms.locations.size(), 1u);
  EXPECT_EQ(out3.syms.locations[0].address, 0x1001u);
  EXPECT_EQ(out3.syms.locations[0].mapping, 1u);

  // Appending the same profile again adds no mapping.
  ASSERT_TRUE(append_profile(x.p, ingest_meta_for("a"), {}, out).ok());
  EXPECT_EQ(out.syms.mappings.size(), 2u);
  EXPECT_EQ(out.syms.locations.size(), 4u);
}

TEST(normalize, dangling_mapping_is_bad_pprof) {
  synth x({{"cpu", "nanoseconds"}}, 1);
  x.p.locations[0].mapping_id = 77;
  x.sample({1}, {1});
  ingest_batch out;
  auto st = append_profile(x.p, ingest_meta_for("a"), {}, out);
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.err().code, errc::bad_pprof);
  EXPECT_NE(st.err().message.find("mapping id 77"), std::string::npos) << st.err().message;
  EXPECT_TRUE(out.syms.mappings.empty());
}

// Go profiles carry 3 mappings (the binary, [vdso], [vsyscall]); every sampled frame lies in the
// binary, the only one that reaches the batch. Node.js profiles have no mappings at all.
TEST(normalize, real_profiles_keep_the_mappings_their_frames_use) {
  size_t go_files = 0, node_files = 0;
  for (const char* dir : {"go", "node"}) {
    for (const auto& e : std::filesystem::directory_iterator(testdata_dir() + "/" + dir)) {
      const std::string file = e.path().filename().string();
      if (!file.ends_with(".pb.gz")) continue;
      auto l = load_profile(e.path().string());
      ASSERT_NE(l, nullptr) << file;
      ingest_batch out;
      ASSERT_TRUE(append_profile(l->p, ingest_meta_for("app"), {}, out).ok()) << file;
      check_well_formed(out);
      // The mappings the stored locations use, straight from the pprof.
      std::set<std::tuple<std::string, std::string, uint64_t, uint64_t>> want;
      for (const auto& s : l->p.samples)
        for (uint32_t k = 0; k < s.loc_count; ++k)
          for (const auto& loc : l->p.locations)
            if (loc.id == l->p.location_ids[s.loc_begin + k] && loc.mapping_id != 0)
              for (const auto& m : l->p.mappings)
                if (m.id == loc.mapping_id)
                  want.insert({std::string(l->p.str(m.filename)), std::string(l->p.str(m.build_id)),
                               m.memory_start, m.memory_limit});
      std::set<std::tuple<std::string, std::string, uint64_t, uint64_t>> got;
      for (const auto& m : out.syms.mappings)
        got.insert({out.syms.strings[m.filename], out.syms.strings[m.build_id], m.memory_start,
                    m.memory_limit});
      EXPECT_EQ(got, want) << file;
      if (std::string(dir) == "go") {
        ++go_files;
        EXPECT_EQ(l->p.mappings.size(), 3u) << file;
        ASSERT_EQ(out.syms.mappings.size(), want.size()) << file;
        if (want.empty()) continue;  // threadcreate: no sample has a location
        ASSERT_EQ(out.syms.mappings.size(), 1u) << file;
        const mapping_rec& bin = out.syms.mappings[0];
        EXPECT_TRUE(out.syms.strings[bin.filename].starts_with("/srv/profdemo/build/go/")) << file;
        EXPECT_EQ(bin.memory_start, 0x400000u) << file;
        EXPECT_NE(bin.flags & mapping_has_functions, 0) << file;
        for (const auto& loc : out.syms.locations) EXPECT_EQ(loc.mapping, 1u) << file;
      } else {
        ++node_files;
        EXPECT_TRUE(l->p.mappings.empty()) << file;
        EXPECT_TRUE(out.syms.mappings.empty()) << file;
        for (const auto& loc : out.syms.locations) EXPECT_EQ(loc.mapping, 0u) << file;
      }
    }
  }
  EXPECT_GT(go_files, 5u);
  EXPECT_GT(node_files, 0u);
}

TEST(normalize, dangling_location_is_bad_pprof) {
  synth x({{"cpu", "nanoseconds"}}, 1);
  x.sample({1, 99}, {1});
  ingest_batch out;
  auto st = append_profile(x.p, ingest_meta_for("a"), {}, out);
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.err().code, errc::bad_pprof);
  EXPECT_NE(st.err().message.find("99"), std::string::npos);
}

TEST(normalize, a_reused_builder_builds_what_a_fresh_one_builds) {
  auto a = load_profile(testdata_dir() + "/go/workpool.cpu.000.pb.gz");
  auto c = load_profile(testdata_dir() + "/go/mapindex.cpu.001.pb.gz");
  auto n = load_profile(testdata_dir() + "/node/node.cpu.000.pb.gz");
  ASSERT_TRUE(a && c && n);
  batch_builder fresh("t");
  ASSERT_TRUE(fresh.add(a->p, ingest_meta_for("app")).ok());
  ASSERT_TRUE(fresh.add(n->p, ingest_meta_for("node")).ok());
  const std::string want = encode_batch(fresh.finish());

  batch_builder reused("other");
  ASSERT_TRUE(reused.add(c->p, ingest_meta_for("x")).ok());
  (void)reused.finish();
  // A request that failed half way (its batch is dropped by start()).
  reused.start("other", {});
  ASSERT_TRUE(reused.add(c->p, ingest_meta_for("x")).ok());
  synth bad({{"cpu", "nanoseconds"}}, 1);
  bad.sample({1, 99}, {1});
  ASSERT_FALSE(reused.add(bad.p, ingest_meta_for("x")).ok());
  reused.start("t", {});
  ASSERT_TRUE(reused.add(a->p, ingest_meta_for("app")).ok());
  ASSERT_TRUE(reused.add(n->p, ingest_meta_for("node")).ok());
  ingest_batch got = reused.finish();
  check_well_formed(got);
  EXPECT_EQ(encode_batch(got), want);
}

TEST(normalize, sparse_ids_and_time_fallback) {
  synth x({{"cpu", "nanoseconds"}}, 2);
  x.p.locations[0].id = 1000;
  x.p.locations[1].id = 7;
  x.p.functions[0].id = 55;
  x.p.lines[0].function_id = 55;
  x.p.time_nanos = 123;
  x.p.duration_nanos = 456;
  x.sample({1000, 7}, {5});
  ingest_batch out;
  ASSERT_TRUE(append_profile(x.p, ingest_meta_for("a"), {}, out).ok());
  check_well_formed(out);
  ASSERT_EQ(out.series.size(), 1u);
  EXPECT_EQ(out.series[0].time_ns, 123);
  EXPECT_EQ(out.series[0].duration_ns, 456);
  EXPECT_EQ(out.syms.strings[out.syms.functions[out.syms.lines[0].function].name], "f1");
}

TEST(normalize, valid_utf8) {
  EXPECT_TRUE(valid_utf8(""));
  EXPECT_TRUE(valid_utf8("plain"));
  EXPECT_TRUE(valid_utf8("h\xc3\xa9llo \xe2\x82\xac \xf0\x9f\x94\xa5"));
  EXPECT_FALSE(valid_utf8("\xc3"));
  EXPECT_FALSE(valid_utf8("\xe0\x80\x80"));      // overlong
  EXPECT_FALSE(valid_utf8("\xed\xa0\x80"));      // surrogate
  EXPECT_FALSE(valid_utf8("\xf4\x90\x80\x80"));  // > U+10FFFF
  EXPECT_FALSE(valid_utf8("\x80"));
}

// pair_table against a std::map model: random pairs (many repeated, many sharing a half),
// through several doublings, then cleared and used again.
TEST(pair_table, maps_each_pair_to_the_id_it_was_first_given) {
  std::mt19937_64 rng(7);
  pair_table t;
  std::map<std::pair<uint32_t, uint32_t>, uint32_t> model;
  for (int round = 0; round < 2; ++round) {
    for (int i = 0; i < 20000; ++i) {
      const uint32_t a = static_cast<uint32_t>(rng() % 300), b = static_cast<uint32_t>(rng() % 100);
      const uint32_t big = static_cast<uint32_t>(rng());  // keys over the whole 64-bit range
      const auto [x, y] = i % 3 == 0 ? std::pair{big, ~big} : std::pair{a, b};
      const auto ins = model.try_emplace({x, y}, static_cast<uint32_t>(model.size()));
      const uint32_t want = ins.first->second;
      bool made = false;
      const uint32_t id = t.find_or_insert(x, y, [&] {
        made = true;
        return want;
      });
      EXPECT_EQ(made, ins.second);
      EXPECT_EQ(id, want);
    }
    EXPECT_EQ(t.size(), model.size());
    t.clear();
    model.clear();
    EXPECT_EQ(t.size(), 0u);
  }
}

// Interning at once (symbol_interner::locations/strings/functions) against one by one: batches
// of 0 to thousands of random items, three rounds each, so that later rounds find earlier rounds'
// items and every batch repeats some of its own. `round(rng, n, one, many)` interns n items into
// both and checks that the ids and the tables agree.
template <class Round>
void check_at_once(uint64_t seed, Round round) {
  std::mt19937_64 rng(seed);
  for (size_t batch : {0u, 1u, 5u, 40u, 3000u}) {
    symbol_interner a, b;
    symbols one, many;
    for (int r = 0; r < 3; ++r) round(rng, batch, a, one, b, many);
  }
}

// Locations: several lines per location, with and without an address and a mapping.
TEST(symbol_interner, locations_at_once_intern_as_one_by_one) {
  check_at_once(11, [](std::mt19937_64& rng, size_t n, symbol_interner& a, symbols& one,
                       symbol_interner& b, symbols& many) {
    std::vector<line_rec> lines;
    std::vector<symbol_interner::location_key> keys;
    for (size_t i = 0; i < n; ++i) {
      symbol_interner::location_key k;
      k.address = rng() % 4 == 0 ? rng() % 50 : 0;
      k.mapping = static_cast<uint32_t>(rng() % 3);
      k.line_begin = static_cast<uint32_t>(lines.size());
      k.line_count = static_cast<uint32_t>(rng() % 3 == 0 ? rng() % 4 : 1);
      for (uint32_t j = 0; j < k.line_count; ++j)
        lines.push_back({static_cast<uint32_t>(rng() % 200), static_cast<int64_t>(rng() % 30)});
      keys.push_back(k);
    }
    std::vector<uint32_t> want(n), got(n);
    for (size_t i = 0; i < n; ++i)
      want[i] = a.location(
          one, keys[i].address,
          std::span<const line_rec>(lines).subspan(keys[i].line_begin, keys[i].line_count),
          keys[i].mapping);
    b.locations(many, keys, lines, got);
    EXPECT_EQ(got, want);
    EXPECT_TRUE(many.locations == one.locations);
    EXPECT_TRUE(many.lines == one.lines);
  });
}

// Strings: the empty string is 0; long (heap) and short (inline) ones alike.
TEST(symbol_interner, strings_at_once_intern_as_one_by_one) {
  check_at_once(5, [](std::mt19937_64& rng, size_t n, symbol_interner& a, symbols& one,
                      symbol_interner& b, symbols& many) {
    std::vector<std::string> owned;
    for (size_t i = 0; i < n; ++i) {
      const uint64_t v = rng() % 500;
      owned.push_back(v == 0 ? std::string()
                             : std::string(v % 3 == 0 ? 40 : 3, 'a') + std::to_string(v));
    }
    const std::vector<std::string_view> vs(owned.begin(), owned.end());
    std::vector<uint32_t> want(n), got(n);
    for (size_t i = 0; i < n; ++i) want[i] = a.string(one, vs[i]);
    b.strings(many, vs, got);
    EXPECT_EQ(got, want);
    EXPECT_EQ(many.strings, one.strings);
  });
}

// Functions: equal by all four fields.
TEST(symbol_interner, functions_at_once_intern_as_one_by_one) {
  check_at_once(3, [](std::mt19937_64& rng, size_t n, symbol_interner& a, symbols& one,
                      symbol_interner& b, symbols& many) {
    std::vector<function_rec> fs;
    for (size_t i = 0; i < n; ++i)
      fs.push_back({static_cast<uint32_t>(rng() % 40), static_cast<uint32_t>(rng() % 3),
                    static_cast<uint32_t>(rng() % 5), static_cast<int64_t>(rng() % 4)});
    std::vector<uint32_t> want(n), got(n);
    for (size_t i = 0; i < n; ++i) want[i] = a.function(one, fs[i]);
    b.functions(many, fs, got);
    EXPECT_EQ(got, want);
    EXPECT_TRUE(many.functions == one.functions);
  });
}

}  // namespace
}  // namespace hearth
