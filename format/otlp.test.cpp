// The OTLP profiles decoder against requests built with libprotobuf (from our declaration in
// cluster/proto/otlp_*.proto): the label and name mapping of pyroscope-api.md §5/§9, sample values,
// sample attributes and links, every dictionary bounds check, the required parts, and that the
// proto3 JSON form (read by libprotobuf, as the distributor does) decodes to the same profiles.

#include "format/otlp.hpp"

#include <gtest/gtest.h>

#include <deque>
#include <map>
#include <string>
#include <vector>

#include "cluster/proto/connect.hpp"
#include "format/normalize.hpp"
#include "otlp_profiles_service.pb.h"

namespace hearth {
namespace {

namespace pb = opentelemetry::proto::profiles::v1development;
namespace cpb = opentelemetry::proto::common::v1;
using export_request = opentelemetry::proto::collector::profiles::v1development::ExportProfilesServiceRequest;

// Builds requests the way an OTLP exporter does: a shared dictionary with "" at string 0 and a
// zero entry at index 0 of every table, then resources, scopes and profiles referencing it.
struct request_builder {
  export_request req;
  std::map<std::string, int32_t> strings;

  request_builder() {
    auto* d = req.mutable_dictionary();
    str("");
    d->add_mapping_table();
    d->add_location_table();
    d->add_function_table();
    d->add_link_table();
    d->add_attribute_table();
    d->add_stack_table();
  }
  pb::ProfilesDictionary& dict() { return *req.mutable_dictionary(); }
  int32_t str(const std::string& s) {
    auto it = strings.find(s);
    if (it != strings.end()) return it->second;
    int32_t i = dict().string_table_size();
    dict().add_string_table(s);
    strings[s] = i;
    return i;
  }
  int32_t mapping(const std::string& file, const std::string& build_id = "") {
    auto* m = dict().add_mapping_table();
    m->set_memory_start(0x400000);
    m->set_memory_limit(0x800000);
    m->set_filename_strindex(str(file));
    if (!build_id.empty()) m->add_attribute_indices(attr("process.executable.build_id.gnu", build_id));
    return dict().mapping_table_size() - 1;
  }
  int32_t function(const std::string& name, const std::string& file = "main.go") {
    auto* f = dict().add_function_table();
    f->set_name_strindex(str(name));
    f->set_system_name_strindex(str(name));
    f->set_filename_strindex(str(file));
    f->set_start_line(7);
    return dict().function_table_size() - 1;
  }
  // A location with one line per function (innermost first).
  int32_t location(int32_t mapping, std::vector<int32_t> fns, uint64_t address = 0x1000,
                   int32_t frame_type_attr = -1) {
    auto* l = dict().add_location_table();
    l->set_mapping_index(mapping);
    l->set_address(address);
    for (size_t i = 0; i < fns.size(); ++i) {
      auto* ln = l->add_lines();
      ln->set_function_index(fns[i]);
      ln->set_line(static_cast<int64_t>(10 + i));
    }
    if (frame_type_attr >= 0) l->add_attribute_indices(frame_type_attr);
    return dict().location_table_size() - 1;
  }
  int32_t stack(std::vector<int32_t> locs) {
    auto* s = dict().add_stack_table();
    for (int32_t l : locs) s->add_location_indices(l);
    return dict().stack_table_size() - 1;
  }
  int32_t attr(const std::string& key, const std::string& value) {
    auto* a = dict().add_attribute_table();
    a->set_key_strindex(str(key));
    a->mutable_value()->set_string_value(value);
    return dict().attribute_table_size() - 1;
  }
  int32_t link(const std::string& trace_id, const std::string& span_id) {
    auto* l = dict().add_link_table();
    l->set_trace_id(trace_id);
    l->set_span_id(span_id);
    return dict().link_table_size() - 1;
  }
  pb::ResourceProfiles* resource(std::vector<std::pair<std::string, std::string>> attrs) {
    auto* r = req.add_resource_profiles();
    for (auto& [k, v] : attrs) {
      auto* kv = r->mutable_resource()->add_attributes();
      kv->set_key(k);
      kv->mutable_value()->set_string_value(v);
    }
    return r;
  }
  pb::Profile* profile(pb::ResourceProfiles* r, const std::string& type, const std::string& unit,
                       const std::string& ptype, const std::string& punit, int64_t period,
                       std::vector<std::pair<std::string, std::string>> scope_attrs = {}) {
    auto* sp = r->add_scope_profiles();
    for (auto& [k, v] : scope_attrs) {
      auto* kv = sp->mutable_scope()->add_attributes();
      kv->set_key(k);
      kv->mutable_value()->set_string_value(v);
    }
    auto* p = sp->add_profiles();
    p->mutable_sample_type()->set_type_strindex(str(type));
    p->mutable_sample_type()->set_unit_strindex(str(unit));
    if (!ptype.empty()) {
      p->mutable_period_type()->set_type_strindex(str(ptype));
      p->mutable_period_type()->set_unit_strindex(str(punit));
    }
    p->set_period(period);
    p->set_time_unix_nano(1700000000000000000ULL);
    p->set_duration_nano(10000000000ULL);
    return p;
  }
  static pb::Sample* sample(pb::Profile* p, int32_t stack, std::vector<int64_t> values,
                            std::vector<int32_t> attrs = {}, int32_t link = 0) {
    auto* s = p->add_samples();
    s->set_stack_index(stack);
    for (int64_t v : values) s->add_values(v);
    for (int32_t a : attrs) s->add_attribute_indices(a);
    s->set_link_index(link);
    return s;
  }
  std::string bytes() const { return req.SerializeAsString(); }
};

std::string label_value(const label_set& ls, std::string_view name) {
  for (const label& l : ls)
    if (l.name == name) return l.value;
  return "<absent>";
}

// A decoded profile as (leaf-first function names joined by ';', value, sample labels) rows.
std::vector<std::string> rows(const pprof::profile& p) {
  std::vector<std::string> out;
  for (const auto& s : p.samples) {
    std::string r;
    for (uint32_t i = 0; i < s.loc_count; ++i) {
      const auto& loc = p.locations[p.location_ids[s.loc_begin + i] - 1];
      for (uint32_t k = 0; k < loc.line_count; ++k) {
        const auto& ln = p.lines[loc.line_begin + k];
        r += std::string(ln.function_id ? p.str(p.functions[ln.function_id - 1].name) : "?") + ";";
      }
    }
    r += " " + std::to_string(p.values[s.value_begin]);
    for (uint32_t k = 0; k < s.label_count; ++k) {
      const auto& l = p.labels[s.label_begin + k];
      r += " " + std::string(p.str(l.key)) + "=" + std::string(p.str(l.str));
    }
    out.push_back(r);
  }
  return out;
}

// Decodes a copy of `bytes` that lives until the end of the test program (the result points into it).
result<otlp::request> decode(const std::string& bytes) {
  static std::deque<std::string> keep;
  keep.push_back(bytes);
  return otlp::decode(as_bytes(keep.back()));
}

// A small CPU profile of one resource: main -> work -> (inlined) hash, main -> idle.
struct cpu_fixture {
  request_builder b;
  pb::Profile* p = nullptr;
  int32_t st_work = 0, st_idle = 0;
  cpu_fixture() {
    int32_t m = b.mapping("/usr/bin/app", "abc123");
    int32_t f_main = b.function("main"), f_work = b.function("work"), f_hash = b.function("hash"),
            f_idle = b.function("idle");
    int32_t l_main = b.location(m, {f_main}, 0x1000);
    int32_t l_work = b.location(m, {f_hash, f_work}, 0x2000);
    int32_t l_idle = b.location(m, {f_idle}, 0x3000);
    st_work = b.stack({l_work, l_main});
    st_idle = b.stack({l_idle, l_main});
    auto* r = b.resource({{"service.name", "checkout"}, {"host.name", "h1"}, {"env", "prod"}});
    p = b.profile(r, "samples", "count", "cpu", "nanoseconds", 10000000,
                  {{"env", "scope-loses"}, {"otel.scope", "s"}});
  }
};

TEST(Otlp, MapsLabelsNameAndValuesOfACpuProfile) {
  cpu_fixture f;
  int32_t thread = f.b.attr("thread.name", "worker-1");
  request_builder::sample(f.p, f.st_work, {3}, {thread});
  request_builder::sample(f.p, f.st_idle, {1});
  auto r = decode(f.b.bytes());
  ASSERT_TRUE(r.ok()) << r.err().to_string();
  ASSERT_EQ(r->profiles.size(), 1u);
  const auto& c = r->profiles[0];
  label_set want = {{"__delta__", "false"}, {"__name__", "process_cpu"}, {"__otel__", "true"},
                    {"env", "prod"},          {"host.name", "h1"},          {"otel.scope", "s"},
                    {"service.name", "checkout"}, {"service_name", "checkout"}};
  EXPECT_EQ(c.labels, want);
  EXPECT_EQ(c.time_ns, 1700000000000000000LL);
  EXPECT_EQ(c.duration_ns, 10000000000LL);
  const auto& p = c.profile;
  ASSERT_EQ(p.sample_types.size(), 1u);
  EXPECT_EQ(p.str(p.sample_types[0].type), "cpu");
  EXPECT_EQ(p.str(p.sample_types[0].unit), "nanoseconds");
  EXPECT_EQ(p.str(p.period_type.type), "cpu");
  EXPECT_EQ(p.period, 10000000);
  EXPECT_EQ(rows(p), (std::vector<std::string>{"hash;work;main; 30000000 thread.name=worker-1",
                                               "idle;main; 10000000"}));
  ASSERT_EQ(p.mappings.size(), 1u);
  EXPECT_EQ(p.str(p.mappings[0].filename), "/usr/bin/app");
  EXPECT_EQ(p.str(p.mappings[0].build_id), "abc123");
  EXPECT_TRUE(p.mappings[0].has_functions);
  EXPECT_TRUE(p.mappings[0].has_inline_frames);
  EXPECT_EQ(p.strings[0], "");

  // The batch builder takes it as it takes a Push: one series with the reserved labels.
  batch_builder bb("t");
  ingest_meta m;
  m.labels = c.labels;
  m.time_ns = c.time_ns;
  ASSERT_TRUE(bb.add(p, m).ok());
  const auto& batch = bb.batch();
  ASSERT_EQ(batch.series.size(), 2u);  // thread.name is promoted: one series per value
  for (const auto& s : batch.series) {
    EXPECT_EQ(label_value(s.labels, "__profile_type__"), "process_cpu:cpu:nanoseconds:cpu:nanoseconds");
    EXPECT_EQ(label_value(s.labels, "__otel__"), "true");
    EXPECT_EQ(label_value(s.labels, "service_name"), "checkout");
  }
}

TEST(Otlp, ProfileNames) {
  struct tc {
    const char *type, *unit, *ptype, *punit;
    int64_t period;
    const char* name;
    const char* stored_type;
    int64_t value;
  } cases[] = {
      {"samples", "count", "cpu", "nanoseconds", 1000, "process_cpu", "cpu", 5000},
      {"off_cpu", "nanoseconds", "", "", 0, "off_cpu", "off_cpu", 5},
      {"alloc_space", "bytes", "space", "bytes", 524288, "space", "alloc_space", 5},
      {"wall", "nanoseconds", "", "", 0, "process_cpu", "wall", 5},          // no period: fallback
      {"samples", "count", "cpu", "nanoseconds", 0, "process_cpu", "samples", 5},  // no period
  };
  for (const auto& t : cases) {
    request_builder b;
    int32_t st = b.stack({b.location(b.mapping("a"), {b.function("f")})});
    auto* p = b.profile(b.resource({}), t.type, t.unit, t.ptype, t.punit, t.period);
    request_builder::sample(p, st, {5});
    auto r = decode(b.bytes());
    ASSERT_TRUE(r.ok()) << r.err().to_string();
    const auto& c = r->profiles.at(0);
    EXPECT_EQ(label_value(c.labels, "__name__"), t.name) << t.type;
    EXPECT_EQ(c.profile.str(c.profile.sample_types[0].type), t.stored_type) << t.type;
    EXPECT_EQ(c.profile.values[0], t.value) << t.type;
  }
}

TEST(Otlp, ServiceNameFallbacksAndSampleServices) {
  {
    request_builder b;
    int32_t st = b.stack({b.location(b.mapping("a"), {b.function("f")})});
    auto* p = b.profile(b.resource({{"process.executable.name", "nginx"}}), "samples", "count",
                        "cpu", "nanoseconds", 1);
    request_builder::sample(p, st, {1});
    b.profile(b.req.mutable_resource_profiles(0), "samples", "count", "cpu", "nanoseconds", 1);
    auto r = decode(b.bytes());
    ASSERT_TRUE(r.ok()) << r.err().to_string();
    EXPECT_EQ(label_value(r->profiles.at(0).labels, "service_name"), "unknown_service:nginx");
    EXPECT_EQ(r->profiles.size(), 1u);  // the profile without samples converts to nothing
  }
  {
    request_builder b;
    int32_t st = b.stack({b.location(b.mapping("a"), {b.function("f")})});
    request_builder::sample(b.profile(b.resource({}), "samples", "count", "cpu", "nanoseconds", 1), st, {1});
    auto r = decode(b.bytes());
    ASSERT_TRUE(r.ok()) << r.err().to_string();
    EXPECT_EQ(label_value(r->profiles.at(0).labels, "service_name"), "unknown_service");
  }
  {  // Samples naming a service go to their own profile; the attribute is not a sample label.
    cpu_fixture f;
    int32_t svc = f.b.attr("service.name", "payments");
    request_builder::sample(f.p, f.st_work, {2}, {svc});
    request_builder::sample(f.p, f.st_idle, {1});
    auto r = decode(f.b.bytes());
    ASSERT_TRUE(r.ok()) << r.err().to_string();
    ASSERT_EQ(r->profiles.size(), 2u);
    EXPECT_EQ(label_value(r->profiles[0].labels, "service_name"), "payments");
    EXPECT_EQ(rows(r->profiles[0].profile), std::vector<std::string>{"hash;work;main; 20000000"});
    EXPECT_EQ(label_value(r->profiles[1].labels, "service_name"), "checkout");
    EXPECT_EQ(rows(r->profiles[1].profile), std::vector<std::string>{"idle;main; 10000000"});
  }
}

// Many services in one profile: each gets its own profile with its own symbols (the first
// service's tables are dense, the others' sparse; both must agree).
TEST(Otlp, ManySampleServicesInOneProfile) {
  cpu_fixture f;
  const int n = 500;
  for (int i = 0; i < n; ++i) {
    int32_t svc = f.b.attr("service.name", "svc-" + std::to_string(i));
    request_builder::sample(f.p, i % 2 ? f.st_idle : f.st_work, {i + 1}, {svc});
  }
  auto r = decode(f.b.bytes());
  ASSERT_TRUE(r.ok()) << r.err().to_string();
  ASSERT_EQ(r->profiles.size(), static_cast<size_t>(n));
  for (int i = 0; i < n; ++i) {
    const auto& c = r->profiles[i];
    EXPECT_EQ(label_value(c.labels, "service_name"), "svc-" + std::to_string(i));
    std::string stack = i % 2 ? "idle;main;" : "hash;work;main;";
    EXPECT_EQ(rows(c.profile), std::vector<std::string>{stack + " " + std::to_string((i + 1) * 10000000LL)});
  }
}

// What a request expands to is bounded: profiles (with their labels) and stack copies.
TEST(Otlp, Limits) {
  cpu_fixture f;
  for (int i = 0; i < 5; ++i)
    request_builder::sample(f.p, f.st_work, {1}, {f.b.attr("service.name", "s" + std::to_string(i))});
  static std::deque<std::string> keep;
  keep.push_back(f.b.bytes());
  otlp::limits lim;
  lim.max_profiles = 5;
  EXPECT_TRUE(otlp::decode(as_bytes(keep.back()), lim).ok());
  lim.max_profiles = 4;
  auto r = otlp::decode(as_bytes(keep.back()), lim);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.err().code, errc::body_too_large);
  EXPECT_NE(r.err().message.find("more than 4 profiles"), std::string::npos) << r.err().message;
  lim = {};
  lim.max_location_refs = 10;  // 5 samples of a 2-location stack
  EXPECT_TRUE(otlp::decode(as_bytes(keep.back()), lim).ok());
  lim.max_location_refs = 9;
  r = otlp::decode(as_bytes(keep.back()), lim);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.err().code, errc::body_too_large);
  EXPECT_NE(r.err().message.find("more than 9 locations"), std::string::npos) << r.err().message;
  // service_name, service.name, host.name, env, then the scope's otel.scope: 5 visible labels.
  lim = {};
  lim.max_labels = 5;
  EXPECT_TRUE(otlp::decode(as_bytes(keep.back()), lim).ok());
  lim.max_labels = 4;
  r = otlp::decode(as_bytes(keep.back()), lim);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.err().code, errc::bad_labels);
  EXPECT_NE(r.err().message.find("scope: the resource and scope attributes give more than 4 labels"),
            std::string::npos)
      << r.err().message;
}

TEST(Otlp, ValuesTimestampsLinksAndKernelFrames) {
  request_builder b;
  int32_t m = b.mapping("vmlinux");
  int32_t kernel = b.attr("profile.frame.type", "kernel");
  int32_t st = b.stack({b.location(m, {b.function("schedule")}, 0x10, kernel),
                        b.location(b.mapping("/bin/app"), {b.function("main")})});
  auto* p = b.profile(b.resource({{"service.name", "s"}}), "off_cpu", "nanoseconds", "", "", 0);
  int32_t lk = b.link(std::string("\x01\x02\x03\x04\x05\x06\x07\x08\x09\x0a\x0b\x0c\x0d\x0e\x0f\x10", 16),
                      std::string("\xaa\xbb\xcc\xdd\x00\x11\x22\x33", 8));
  auto* s1 = request_builder::sample(p, st, {100, 200, 300}, {}, lk);  // one value per timestamp
  for (int i = 0; i < 3; ++i) s1->add_timestamps_unix_nano(1700000000000000000ULL + i);
  auto* s2 = request_builder::sample(p, st, {});  // timestamps only: one each
  s2->add_timestamps_unix_nano(1);
  s2->add_timestamps_unix_nano(2);
  auto r = decode(b.bytes());
  ASSERT_TRUE(r.ok()) << r.err().to_string();
  const auto& pp = r->profiles.at(0).profile;
  EXPECT_EQ(rows(pp), (std::vector<std::string>{
                          "schedule;main; 600 span_id=aabbccdd00112233 "
                          "trace_id=0102030405060708090a0b0c0d0e0f10",
                          "schedule;main; 2"}));
  EXPECT_EQ(pp.str(pp.mappings[pp.locations[0].mapping_id - 1].filename), "[kernel] vmlinux");
  EXPECT_EQ(pp.str(pp.mappings[pp.locations[1].mapping_id - 1].filename), "/bin/app");

  request_builder::sample(p, st, {});  // neither values nor timestamps
  auto bad = decode(b.bytes());
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.err().message.find("samples[2]: the sample has neither values nor timestamps"),
            std::string::npos)
      << bad.err().message;
}

// Keys and values by string-table index (key_strindex, string_value_strindex), non-string
// attributes, unknown fields and tables without their zero entry.
TEST(Otlp, StringIndexesOtherValuesUnknownFieldsAndBareTables) {
  cpu_fixture f;
  auto& rattrs = *f.b.req.mutable_resource_profiles(0)->mutable_resource()->mutable_attributes();
  auto* by_index = rattrs.Add();
  by_index->set_key_strindex(f.b.str("team"));
  by_index->mutable_value()->set_string_value_strindex(f.b.str("payments"));
  auto* num = rattrs.Add();
  num->set_key("pid");
  num->mutable_value()->set_int_value(42);  // not a string: no label
  auto* a = f.b.dict().add_attribute_table();
  a->set_key_strindex(f.b.str("thread.name"));
  a->mutable_value()->set_string_value_strindex(f.b.str("main-thread"));
  auto* n = f.b.dict().add_attribute_table();
  n->set_key_strindex(f.b.str("thread.id"));
  n->mutable_value()->set_int_value(7);
  request_builder::sample(f.p, f.st_idle, {1}, {f.b.dict().attribute_table_size() - 2,
                                               f.b.dict().attribute_table_size() - 1});
  // An unknown field (number 99, varint) in the request and one (length-delimited) in the sample.
  f.p->mutable_samples(0)->GetReflection()->MutableUnknownFields(f.p->mutable_samples(0))->AddLengthDelimited(77, "xyz");
  std::string bytes = f.b.bytes() + std::string("\x98\x06\x01", 3);
  auto r = decode(bytes);
  ASSERT_TRUE(r.ok()) << r.err().to_string();
  const auto& c = r->profiles.at(0);
  EXPECT_EQ(label_value(c.labels, "team"), "payments");
  EXPECT_EQ(label_value(c.labels, "pid"), "<absent>");
  EXPECT_EQ(rows(c.profile), std::vector<std::string>{"idle;main; 10000000 thread.name=main-thread"});

  // Tables without a zero entry: index 0 of an empty mapping/function table means none.
  export_request bare;
  auto* d = bare.mutable_dictionary();
  d->add_string_table("");
  d->add_string_table("samples");
  d->add_string_table("count");
  d->add_location_table()->set_address(0xabc);
  d->add_stack_table()->add_location_indices(0);
  auto* p = bare.add_resource_profiles()->add_scope_profiles()->add_profiles();
  p->mutable_sample_type()->set_type_strindex(1);
  p->mutable_sample_type()->set_unit_strindex(2);
  p->add_samples()->add_values(4);
  auto br = decode(bare.SerializeAsString());
  ASSERT_TRUE(br.ok()) << br.err().to_string();
  const auto& bp = br->profiles.at(0).profile;
  ASSERT_EQ(bp.locations.size(), 1u);
  EXPECT_EQ(bp.locations[0].mapping_id, 0u);
  EXPECT_EQ(bp.locations[0].address, 0xabcu);
  EXPECT_EQ(bp.values, std::vector<int64_t>{4});
}

TEST(Otlp, RequiredParts) {
  auto expect_error = [](const std::string& bytes, const std::string& want) {
    auto r = decode(bytes);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.err().code, errc::bad_request_body);
    EXPECT_NE(r.err().message.find(want), std::string::npos) << r.err().message;
  };
  export_request none;
  none.add_resource_profiles();
  expect_error(none.SerializeAsString(), "no dictionary");
  expect_error("", "no dictionary");
  request_builder b;
  expect_error(b.bytes(), "no resource_profiles");
  b.resource({})->add_scope_profiles()->add_profiles();
  expect_error(b.bytes(), "resource_profiles[0]: scope_profiles[0]: profiles[0]: the profile has no sample_type");
  expect_error("\x0a\x05\x01", "runs past the end");
  expect_error(std::string("\x12\x00\x0b", 3), "wire type 3");
}

// Every index into a dictionary table is checked, and the error names the table and index.
TEST(Otlp, EveryDictionaryIndexIsBoundsChecked) {
  struct tc {
    const char* what;
    void (*mutate)(cpu_fixture&);
    const char* want;
  } cases[] = {
      {"stack", [](cpu_fixture& f) { f.p->mutable_samples(0)->set_stack_index(99); },
       "profiles[0]: samples[0]: stack_index 99 is out of range of dictionary.stack_table"},
      {"negative stack", [](cpu_fixture& f) { f.p->mutable_samples(0)->set_stack_index(-1); },
       "stack_index -1 is out of range of dictionary.stack_table"},
      {"location", [](cpu_fixture& f) { f.b.dict().mutable_stack_table(f.st_work)->add_location_indices(77); },
       "location index 77 is out of range of dictionary.location_table"},
      {"mapping", [](cpu_fixture& f) { f.b.dict().mutable_location_table(1)->set_mapping_index(55); },
       "mapping_index 55 is out of range of dictionary.mapping_table"},
      {"function", [](cpu_fixture& f) { f.b.dict().mutable_location_table(1)->mutable_lines(0)->set_function_index(44); },
       "function_index 44 is out of range of dictionary.function_table"},
      {"function name", [](cpu_fixture& f) { f.b.dict().mutable_function_table(1)->set_name_strindex(999); },
       "name_strindex 999 is out of range of dictionary.string_table"},
      {"function system name", [](cpu_fixture& f) { f.b.dict().mutable_function_table(1)->set_system_name_strindex(998); },
       "system_name_strindex 998 is out of range of dictionary.string_table"},
      {"function file", [](cpu_fixture& f) { f.b.dict().mutable_function_table(1)->set_filename_strindex(997); },
       "filename_strindex 997 is out of range of dictionary.string_table"},
      {"mapping file", [](cpu_fixture& f) { f.b.dict().mutable_mapping_table(1)->set_filename_strindex(996); },
       "filename_strindex 996 is out of range of dictionary.string_table"},
      {"mapping attribute", [](cpu_fixture& f) { f.b.dict().mutable_mapping_table(1)->add_attribute_indices(66); },
       "attribute_indices[1] 66 is out of range of dictionary.attribute_table"},
      {"location attribute", [](cpu_fixture& f) { f.b.dict().mutable_location_table(1)->add_attribute_indices(65); },
       "attribute_indices[0] 65 is out of range of dictionary.attribute_table"},
      {"sample attribute", [](cpu_fixture& f) { f.p->mutable_samples(0)->add_attribute_indices(64); },
       "attribute_indices[0] 64 is out of range of dictionary.attribute_table"},
      {"attribute key", [](cpu_fixture& f) {
         f.p->mutable_samples(0)->add_attribute_indices(f.b.attr("k", "v"));
         f.b.dict().mutable_attribute_table(f.b.dict().attribute_table_size() - 1)->set_key_strindex(995);
       }, "key_strindex 995 is out of range of dictionary.string_table"},
      {"attribute value", [](cpu_fixture& f) {
         f.p->mutable_samples(0)->add_attribute_indices(f.b.attr("k", "v"));
         f.b.dict().mutable_attribute_table(f.b.dict().attribute_table_size() - 1)->mutable_value()->set_string_value_strindex(994);
       }, "string_value_strindex 994 is out of range of dictionary.string_table"},
      {"link", [](cpu_fixture& f) { f.p->mutable_samples(0)->set_link_index(33); },
       "link_index 33 is out of range of dictionary.link_table"},
      {"sample type", [](cpu_fixture& f) { f.p->mutable_sample_type()->set_unit_strindex(993); },
       "sample_type.unit_strindex 993 is out of range of dictionary.string_table"},
      {"period type", [](cpu_fixture& f) { f.p->mutable_period_type()->set_type_strindex(992); },
       "period_type.type_strindex 992 is out of range of dictionary.string_table"},
      {"profile attribute", [](cpu_fixture& f) { f.p->add_attribute_indices(63); },
       "attribute_indices[0] 63 is out of range of dictionary.attribute_table"},
      {"resource key", [](cpu_fixture& f) {
         auto* kv = f.b.req.mutable_resource_profiles(0)->mutable_resource()->add_attributes();
         kv->set_key_strindex(991);
         kv->mutable_value()->set_string_value("x");
       }, "resource.attributes[3]: key_strindex 991 is out of range of dictionary.string_table"},
      {"resource value", [](cpu_fixture& f) {
         auto* kv = f.b.req.mutable_resource_profiles(0)->mutable_resource()->add_attributes();
         kv->set_key("k");
         kv->mutable_value()->set_string_value_strindex(990);
       }, "resource.attributes[3]: string_value_strindex 990 is out of range of dictionary.string_table"},
      {"scope value", [](cpu_fixture& f) {
         auto* kv = f.b.req.mutable_resource_profiles(0)->mutable_scope_profiles(0)->mutable_scope()->add_attributes();
         kv->set_key("k");
         kv->mutable_value()->set_string_value_strindex(989);
       }, "scope.attributes[2]: string_value_strindex 989 is out of range of dictionary.string_table"},
  };
  for (const auto& t : cases) {
    cpu_fixture f;
    request_builder::sample(f.p, f.st_work, {1});
    request_builder::sample(f.p, f.st_idle, {1});
    t.mutate(f);
    auto r = decode(f.b.bytes());
    ASSERT_FALSE(r.ok()) << t.what;
    EXPECT_EQ(r.err().code, errc::bad_request_body) << t.what;
    EXPECT_NE(r.err().message.find(t.want), std::string::npos) << t.what << ": " << r.err().message;
    // Errors say where: which resource, scope, profile and sample (or dictionary entry).
    EXPECT_EQ(r.err().message.rfind("resource_profiles[0]: ", 0), 0u)
        << t.what << ": " << r.err().message;
  }
}

// The proto3 JSON form, read with libprotobuf's JSON reader as the distributor reads it, decodes to
// the same profiles as the binary form: camelCase and proto names, int64 as strings and numbers,
// bytes as base64.
TEST(Otlp, JsonAndBinaryAgree) {
  cpu_fixture f;
  int32_t thread = f.b.attr("thread.name", "worker-1");
  int32_t lk = f.b.link(std::string(16, '\x01'), std::string(8, '\x02'));
  request_builder::sample(f.p, f.st_work, {3}, {thread}, lk);
  request_builder::sample(f.p, f.st_idle, {1});
  auto bin = decode(f.b.bytes());
  ASSERT_TRUE(bin.ok()) << bin.err().to_string();

  std::string json = connect::encode(connect::codec::json, f.b.req);
  // The printer writes camelCase and int64 as strings; rewrite a few to the other spellings.
  auto replace = [&](const std::string& from, const std::string& to) {
    auto pos = json.find(from);
    ASSERT_NE(pos, std::string::npos) << from;
    json.replace(pos, from.size(), to);
  };
  replace("\"stackTable\"", "\"stack_table\"");
  replace("\"period\":\"10000000\"", "\"period\":10000000");
  replace("\"timeUnixNano\"", "\"time_unix_nano\"");
  EXPECT_NE(json.find("\"traceId\":\"AQEBAQEBAQEBAQEBAQEBAQ==\""), std::string::npos) << json;

  export_request back;
  ASSERT_TRUE(connect::decode(connect::codec::json, json, back).ok());
  std::string bytes = back.SerializeAsString();
  auto js = decode(bytes);
  ASSERT_TRUE(js.ok()) << js.err().to_string();
  ASSERT_EQ(js->profiles.size(), bin->profiles.size());
  for (size_t i = 0; i < bin->profiles.size(); ++i) {
    EXPECT_EQ(js->profiles[i].labels, bin->profiles[i].labels);
    EXPECT_EQ(js->profiles[i].time_ns, bin->profiles[i].time_ns);
    EXPECT_EQ(rows(js->profiles[i].profile), rows(bin->profiles[i].profile));
  }
}

// Repeated scalars may be packed or not; both decode alike. Hand-written wire bytes for a request
// whose stack lists its locations unpacked and whose sample lists its values unpacked.
TEST(Otlp, PackedAndUnpackedRepeatedScalars) {
  request_builder b;
  int32_t st = b.stack({b.location(b.mapping("a"), {b.function("f")}), 0});
  auto* p = b.profile(b.resource({}), "samples", "count", "", "", 0);
  request_builder::sample(p, st, {2, 3});
  auto packed = decode(b.bytes());
  ASSERT_TRUE(packed.ok()) << packed.err().to_string();

  // Re-encode: dictionary.stack_table[1] with unpacked location indices, and the sample's values
  // unpacked, by hand.
  auto enc_varint = [](uint64_t v) {
    std::string s;
    do {
      uint8_t byte = v & 0x7f;
      v >>= 7;
      s += static_cast<char>(v ? byte | 0x80 : byte);
    } while (v);
    return s;
  };
  auto len_field = [&](uint32_t num, const std::string& body) {
    return enc_varint(num << 3 | 2) + enc_varint(body.size()) + body;
  };
  auto var_field = [&](uint32_t num, uint64_t v) { return enc_varint(num << 3) + enc_varint(v); };
  // The same request without stack 1 and without samples; then a second `dictionary` field
  // (which merges: stack_table gains index 1) and the resource written by hand.
  export_request rest = b.req;
  rest.mutable_dictionary()->mutable_stack_table()->RemoveLast();
  auto* prof_msg = rest.mutable_resource_profiles(0)->mutable_scope_profiles(0)->mutable_profiles(0);
  prof_msg->clear_samples();
  std::string prof = prof_msg->SerializeAsString();
  rest.clear_resource_profiles();
  std::string stack = var_field(1, 1) + var_field(1, 0);
  std::string sample = var_field(1, 1) + var_field(4, 2) + var_field(4, 3);
  std::string resource = len_field(2, len_field(2, prof + len_field(2, sample)));
  std::string all = rest.SerializeAsString() + len_field(2, len_field(7, stack)) + len_field(1, resource);
  auto unpacked = decode(all);
  ASSERT_TRUE(unpacked.ok()) << unpacked.err().to_string();
  EXPECT_EQ(rows(unpacked->profiles.at(0).profile), rows(packed->profiles.at(0).profile));
  EXPECT_EQ(rows(unpacked->profiles.at(0).profile), std::vector<std::string>{"f; 5"});
}

// Truncations of a valid request give errors, never a crash (and the full one decodes).
TEST(Otlp, TruncationsFailCleanly) {
  cpu_fixture f;
  request_builder::sample(f.p, f.st_work, {3}, {f.b.attr("thread.name", "t")});
  std::string bytes = f.b.bytes();
  ASSERT_TRUE(decode(bytes).ok());
  size_t failures = 0;
  for (size_t n = 0; n < bytes.size(); ++n) failures += !decode(bytes.substr(0, n)).ok();
  EXPECT_GT(failures, bytes.size() / 2);
}

}  // namespace
}  // namespace hearth
