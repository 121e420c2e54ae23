// Tests for the pprof decoder and gunzip: every real profile in the shared testdata is decoded and
// compared field by field with libprotobuf's generated parser and with `go tool pprof` totals;
// hand-built messages cover each rejection; truncation and byte-flip runs check robustness.

#include "format/pprof.hpp"

#include <google/protobuf/stubs/logging.h>
#include <gtest/gtest.h>
#include <zlib.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <set>
#include <sstream>

#include "format/test_util.hpp"
#include "profile.pb.h"

namespace hearth::pprof {
namespace {

namespace fs = std::filesystem;

// --- helpers -----------------------------------------------------------------------------------

using test::inflate_file;
using test::read_file;
using test::testdata_dir;

// Every real profile, as (kind "go"/"node", name without .pb.gz, path), sorted.
struct testfile {
  std::string kind;
  std::string name;
  fs::path path;
};
std::vector<testfile> real_profiles() {
  std::vector<testfile> out;
  for (const char* kind : {"go", "node"}) {
    fs::path dir = fs::path(testdata_dir()) / kind;
    if (!fs::is_directory(dir)) continue;
    for (const auto& e : fs::directory_iterator(dir)) {
      std::string f = e.path().filename().string();
      const std::string suffix = ".pb.gz";
      if (f.size() > suffix.size() && f.ends_with(suffix))
        out.push_back({kind, f.substr(0, f.size() - suffix.size()), e.path()});
    }
  }
  std::sort(out.begin(), out.end(), [](auto& a, auto& b) { return a.path < b.path; });
  return out;
}

// gzip with zlib (a second implementation, so gunzip is not checked against itself).
std::string gzip(std::string_view data, int level = 6) {
  z_stream z{};
  EXPECT_EQ(deflateInit2(&z, level, Z_DEFLATED, 15 + 16, 9, Z_DEFAULT_STRATEGY), Z_OK);
  std::string out(deflateBound(&z, data.size()) + 32, '\0');
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data.data()));
  z.avail_in = static_cast<uInt>(data.size());
  z.next_out = reinterpret_cast<Bytef*>(out.data());
  z.avail_out = static_cast<uInt>(out.size());
  EXPECT_EQ(deflate(&z, Z_FINISH), Z_STREAM_END);
  out.resize(z.total_out);
  deflateEnd(&z);
  return out;
}

// The first difference between our decoding and libprotobuf's, or "" when they agree.
std::string diff(const profile& a, const google::v1::Profile& b) {
  std::ostringstream d;
  auto ne = [&](const std::string& what, auto x, auto y) {
    if (x == y) return false;
    d << what << ": ours " << x << ", libprotobuf " << y;
    return true;
  };
#define HEARTH_CMP(what, x, y) \
  if (ne(what, x, y)) return d.str()
  auto at = [](const char* what, size_t i, const char* f) {
    return std::string(what) + "[" + std::to_string(i) + "]." + f;
  };

  HEARTH_CMP("sample_type count", a.sample_types.size(), size_t(b.sample_type_size()));
  for (size_t i = 0; i < a.sample_types.size(); ++i) {
    HEARTH_CMP(at("sample_type", i, "type"), a.sample_types[i].type, b.sample_type(i).type());
    HEARTH_CMP(at("sample_type", i, "unit"), a.sample_types[i].unit, b.sample_type(i).unit());
  }
  HEARTH_CMP("sample count", a.samples.size(), size_t(b.sample_size()));
  for (size_t i = 0; i < a.samples.size(); ++i) {
    const sample& s = a.samples[i];
    const auto& t = b.sample(i);
    HEARTH_CMP(at("sample", i, "location_id count"), size_t(s.loc_count),
               size_t(t.location_id_size()));
    for (uint32_t j = 0; j < s.loc_count; ++j)
      HEARTH_CMP(at("sample", i, "location_id") + std::to_string(j),
                 a.location_ids[s.loc_begin + j], t.location_id(j));
    size_t nv = i + 1 < a.samples.size() ? a.samples[i + 1].value_begin : a.values.size();
    nv -= s.value_begin;
    HEARTH_CMP(at("sample", i, "value count"), nv, size_t(t.value_size()));
    for (size_t j = 0; j < nv; ++j)
      HEARTH_CMP(at("sample", i, "value") + std::to_string(j), a.values[s.value_begin + j],
                 t.value(j));
    HEARTH_CMP(at("sample", i, "label count"), size_t(s.label_count), size_t(t.label_size()));
    for (uint32_t j = 0; j < s.label_count; ++j) {
      const sample_label& l = a.labels[s.label_begin + j];
      const auto& m = t.label(j);
      std::string w = at("sample", i, "label") + std::to_string(j);
      HEARTH_CMP(w + ".key", l.key, m.key());
      HEARTH_CMP(w + ".str", l.str, m.str());
      HEARTH_CMP(w + ".num", l.num, m.num());
      HEARTH_CMP(w + ".num_unit", l.num_unit, m.num_unit());
    }
  }
  HEARTH_CMP("mapping count", a.mappings.size(), size_t(b.mapping_size()));
  for (size_t i = 0; i < a.mappings.size(); ++i) {
    const mapping& x = a.mappings[i];
    const auto& y = b.mapping(i);
    HEARTH_CMP(at("mapping", i, "id"), x.id, y.id());
    HEARTH_CMP(at("mapping", i, "memory_start"), x.memory_start, y.memory_start());
    HEARTH_CMP(at("mapping", i, "memory_limit"), x.memory_limit, y.memory_limit());
    HEARTH_CMP(at("mapping", i, "file_offset"), x.file_offset, y.file_offset());
    HEARTH_CMP(at("mapping", i, "filename"), x.filename, y.filename());
    HEARTH_CMP(at("mapping", i, "build_id"), x.build_id, y.build_id());
    HEARTH_CMP(at("mapping", i, "has_functions"), x.has_functions, y.has_functions());
    HEARTH_CMP(at("mapping", i, "has_filenames"), x.has_filenames, y.has_filenames());
    HEARTH_CMP(at("mapping", i, "has_line_numbers"), x.has_line_numbers, y.has_line_numbers());
    HEARTH_CMP(at("mapping", i, "has_inline_frames"), x.has_inline_frames, y.has_inline_frames());
  }
  HEARTH_CMP("location count", a.locations.size(), size_t(b.location_size()));
  for (size_t i = 0; i < a.locations.size(); ++i) {
    const location& x = a.locations[i];
    const auto& y = b.location(i);
    HEARTH_CMP(at("location", i, "id"), x.id, y.id());
    HEARTH_CMP(at("location", i, "mapping_id"), x.mapping_id, y.mapping_id());
    HEARTH_CMP(at("location", i, "address"), x.address, y.address());
    HEARTH_CMP(at("location", i, "is_folded"), x.is_folded, y.is_folded());
    HEARTH_CMP(at("location", i, "line count"), size_t(x.line_count), size_t(y.line_size()));
    for (uint32_t j = 0; j < x.line_count; ++j) {
      std::string w = at("location", i, "line") + std::to_string(j);
      HEARTH_CMP(w + ".function_id", a.lines[x.line_begin + j].function_id,
                 y.line(j).function_id());
      HEARTH_CMP(w + ".line", a.lines[x.line_begin + j].line, y.line(j).line());
    }
  }
  HEARTH_CMP("function count", a.functions.size(), size_t(b.function_size()));
  for (size_t i = 0; i < a.functions.size(); ++i) {
    const function& x = a.functions[i];
    const auto& y = b.function(i);
    HEARTH_CMP(at("function", i, "id"), x.id, y.id());
    HEARTH_CMP(at("function", i, "name"), x.name, y.name());
    HEARTH_CMP(at("function", i, "system_name"), x.system_name, y.system_name());
    HEARTH_CMP(at("function", i, "filename"), x.filename, y.filename());
    HEARTH_CMP(at("function", i, "start_line"), x.start_line, y.start_line());
  }
  // decode() turns an absent string table into {""}.
  if (b.string_table_size() == 0) {
    HEARTH_CMP("strings for an empty table", a.strings.size(), size_t(1));
    HEARTH_CMP("strings[0] for an empty table", a.strings[0], std::string_view());
  } else {
    HEARTH_CMP("string count", a.strings.size(), size_t(b.string_table_size()));
    for (size_t i = 0; i < a.strings.size(); ++i)
      HEARTH_CMP("string " + std::to_string(i), a.strings[i], std::string_view(b.string_table(i)));
  }
  HEARTH_CMP("comment count", a.comments.size(), size_t(b.comment_size()));
  for (size_t i = 0; i < a.comments.size(); ++i)
    HEARTH_CMP("comment " + std::to_string(i), a.comments[i], b.comment(i));
  HEARTH_CMP("drop_frames", a.drop_frames, b.drop_frames());
  HEARTH_CMP("keep_frames", a.keep_frames, b.keep_frames());
  HEARTH_CMP("time_nanos", a.time_nanos, b.time_nanos());
  HEARTH_CMP("duration_nanos", a.duration_nanos, b.duration_nanos());
  HEARTH_CMP("period_type.type", a.period_type.type, b.period_type().type());
  HEARTH_CMP("period_type.unit", a.period_type.unit, b.period_type().unit());
  HEARTH_CMP("period", a.period, b.period());
  HEARTH_CMP("default_sample_type", a.default_sample_type, b.default_sample_type());
#undef HEARTH_CMP
  return "";
}

bool valid_utf8(std::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    auto c = static_cast<unsigned char>(s[i]);
    size_t n = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
    if (n == 0 || i + n > s.size()) return false;
    for (size_t k = 1; k < n; ++k)
      if ((static_cast<unsigned char>(s[i + k]) & 0xc0) != 0x80) return false;
    i += n;
  }
  return true;
}

// Silences libprotobuf's error log (it complains about every invalid UTF-8 string it rejects).
struct quiet_protobuf {
  static void drop(google::protobuf::LogLevel, const char*, int, const std::string&) {}
  quiet_protobuf() { old = google::protobuf::SetLogHandler(&drop); }
  ~quiet_protobuf() { google::protobuf::SetLogHandler(old); }
  google::protobuf::LogHandler* old;
};

// Whatever we accept, libprotobuf must accept and read the same way. We are stricter (wire types
// of known fields, groups, references), and libprotobuf rejects invalid UTF-8 in proto3 strings
// where we do not look at string contents.
void expect_consistent_with_libprotobuf(const std::string& raw, const std::string& what) {
  auto ours = decode(as_bytes(raw));
  if (!ours.ok()) {
    EXPECT_EQ(ours.err().code, errc::bad_pprof) << what;
    EXPECT_FALSE(ours.err().message.empty()) << what;
    return;
  }
  google::v1::Profile pb;
  if (!pb.ParseFromString(raw)) {
    bool bad_utf8 = false;
    for (auto s : ours->strings) bad_utf8 = bad_utf8 || !valid_utf8(s);
    EXPECT_TRUE(bad_utf8) << what << ": we accept what libprotobuf rejects";
    return;
  }
  EXPECT_EQ(diff(*ours, pb), "") << what;
}

// Wire-level builder for hand-made messages.
struct wire {
  encoder e;
  wire& tag(uint32_t field, uint32_t type) {
    e.put_uvarint(uint64_t{field} << 3 | type);
    return *this;
  }
  wire& varint(uint32_t field, uint64_t v) {
    tag(field, 0);
    e.put_uvarint(v);
    return *this;
  }
  wire& bytes(uint32_t field, std::string_view s) {
    tag(field, 2);
    e.put_string(s);
    return *this;
  }
  wire& packed(uint32_t field, std::initializer_list<uint64_t> vs) {
    encoder in;
    for (uint64_t v : vs) in.put_uvarint(v);
    return bytes(field, in.buffer());
  }
  wire& raw(std::string_view s) {
    e.put_raw(s);
    return *this;
  }
  std::string str() const { return e.buffer(); }
};

// A small valid profile: 2 sample types, 2 samples, 2 locations, 1 function, 1 mapping.
google::v1::Profile small_profile() {
  google::v1::Profile p;
  for (const char* s : {"", "samples", "count", "cpu", "nanoseconds", "main", "main.go", "bin"})
    p.add_string_table(s);
  auto* st = p.add_sample_type();
  st->set_type(1);
  st->set_unit(2);
  st = p.add_sample_type();
  st->set_type(3);
  st->set_unit(4);
  auto* m = p.add_mapping();
  m->set_id(1);
  m->set_filename(7);
  auto* f = p.add_function();
  f->set_id(1);
  f->set_name(5);
  f->set_filename(6);
  for (uint64_t id : {1, 2}) {
    auto* l = p.add_location();
    l->set_id(id);
    l->set_mapping_id(1);
    l->set_address(0x1000 * id);
    auto* ln = l->add_line();
    ln->set_function_id(1);
    ln->set_line(10 + id);
  }
  for (int i = 0; i < 2; ++i) {
    auto* s = p.add_sample();
    s->add_location_id(1);
    s->add_location_id(2);
    s->add_value(i + 1);
    s->add_value(10000000);
  }
  p.mutable_period_type()->set_type(3);
  p.mutable_period_type()->set_unit(4);
  p.set_period(10000000);
  return p;
}

result<profile> decode_pb(const google::v1::Profile& p, std::string& keep) {
  keep = p.SerializeAsString();
  return decode(as_bytes(keep));
}

void expect_bad(const google::v1::Profile& p, const std::string& needle) {
  std::string raw;
  auto r = decode_pb(p, raw);
  ASSERT_FALSE(r.ok()) << "expected an error containing: " << needle;
  EXPECT_EQ(r.err().code, errc::bad_pprof);
  EXPECT_NE(r.err().message.find(needle), std::string::npos) << r.err().message;
}

void expect_bad_wire(const std::string& raw, const std::string& needle) {
  auto r = decode(as_bytes(raw));
  ASSERT_FALSE(r.ok()) << "expected an error containing: " << needle;
  EXPECT_EQ(r.err().code, errc::bad_pprof);
  EXPECT_NE(r.err().message.find(needle), std::string::npos) << r.err().message;
}

// --- real profiles -----------------------------------------------------------------------------

TEST(pprof, testdata_present) {
  auto files = real_profiles();
  // 18 Go + 4 Node profiles; a missing directory must not make the other tests pass vacuously.
  ASSERT_GE(files.size(), 22u) << "testdata not found under " << testdata_dir()
                               << " (set HEARTH_TESTDATA)";
}

TEST(pprof, real_profiles_match_libprotobuf) {
  auto files = real_profiles();
  ASSERT_FALSE(files.empty());
  for (const auto& f : files) {
    SCOPED_TRACE(f.path.string());
    std::string raw = inflate_file(f.path);
    auto ours = decode(as_bytes(raw));
    ASSERT_TRUE(ours.ok()) << ours.err().to_string();
    google::v1::Profile pb;
    ASSERT_TRUE(pb.ParseFromString(raw));
    EXPECT_EQ(diff(*ours, pb), "");
    // Zero-copy: strings point into the inflated buffer.
    for (auto s : ours->strings)
      if (!s.empty()) {
        EXPECT_GE(s.data(), raw.data());
        EXPECT_LE(s.data() + s.size(), raw.data() + raw.size());
      }
  }
}

// Totals per sample type over samples with locations, and the number of distinct samples
// `go tool pprof` keeps (nonzero, with locations, identical stacks and labels merged).
TEST(pprof, real_profiles_match_go_tool_pprof_totals) {
  auto files = real_profiles();
  ASSERT_FALSE(files.empty());
  for (const auto& f : files) {
    SCOPED_TRACE(f.path.string());
    std::ifstream in(fs::path(testdata_dir()) / "expected" / f.kind / f.name / "totals.txt");
    ASSERT_TRUE(in.good()) << "no totals.txt";
    std::map<std::string, int64_t> want;
    std::string key;
    int64_t v = 0;
    while (in >> key >> v) want[key] = v;
    ASSERT_TRUE(want.count("samples"));

    std::string raw = inflate_file(f.path);
    auto p = decode(as_bytes(raw));
    ASSERT_TRUE(p.ok()) << p.err().to_string();
    std::map<std::string, int64_t> got;
    const size_t nt = p->sample_types.size();
    for (const auto& st : p->sample_types)
      got[std::string(p->str(st.type)) + "/" + std::string(p->str(st.unit))] = 0;
    std::set<std::vector<int64_t>> distinct;
    for (const sample& s : p->samples) {
      if (s.loc_count == 0) continue;
      bool all_zero = true;
      for (size_t i = 0; i < nt; ++i) {
        const auto& st = p->sample_types[i];
        int64_t x = p->values[s.value_begin + i];
        got[std::string(p->str(st.type)) + "/" + std::string(p->str(st.unit))] += x;
        all_zero = all_zero && x == 0;
      }
      if (all_zero) continue;
      // Merge key: the stack, then the labels sorted by key (values keep their order).
      std::vector<int64_t> k(p->location_ids.begin() + s.loc_begin,
                             p->location_ids.begin() + s.loc_begin + s.loc_count);
      k.push_back(0);
      std::vector<sample_label> ls(p->labels.begin() + s.label_begin,
                                   p->labels.begin() + s.label_begin + s.label_count);
      std::stable_sort(ls.begin(), ls.end(),
                       [&](const auto& a, const auto& b) { return p->str(a.key) < p->str(b.key); });
      for (const auto& l : ls) k.insert(k.end(), {l.key, l.str, l.num, l.num_unit});
      distinct.insert(std::move(k));
    }
    got["samples"] = static_cast<int64_t>(distinct.size());
    EXPECT_EQ(got, want);
  }
}

TEST(pprof, empty_mutex_profile_is_valid) {
  std::string raw = inflate_file(fs::path(testdata_dir()) / "go" / "mapindex.mutex.pb.gz");
  auto p = decode(as_bytes(raw));
  ASSERT_TRUE(p.ok()) << p.err().to_string();
  EXPECT_EQ(p->samples.size(), 0u);
  EXPECT_EQ(p->locations.size(), 0u);
  EXPECT_EQ(p->sample_types.size(), 2u);
  EXPECT_EQ(p->str(p->sample_types[1].type), "delay");
}

// --- wire format -------------------------------------------------------------------------------

TEST(pprof, empty_input_is_an_empty_profile) {
  auto p = decode(bytes_view{});
  ASSERT_TRUE(p.ok()) << p.err().to_string();
  EXPECT_TRUE(p->samples.empty());
  EXPECT_TRUE(p->sample_types.empty());
  ASSERT_EQ(p->strings.size(), 1u);
  EXPECT_EQ(p->strings[0], "");
  EXPECT_EQ(p->str(0), "");
  EXPECT_EQ(p->str(5), "");
  EXPECT_EQ(p->str(-1), "");
}

TEST(pprof, packed_and_unpacked_repeated_fields_decode_alike) {
  auto base = [] {
    wire w;
    w.bytes(6, "").bytes(6, "t").bytes(6, "u");
    w.bytes(1, wire().varint(1, 1).varint(2, 2).str());
    w.bytes(1, wire().varint(1, 1).varint(2, 2).str());
    for (uint64_t id : {1, 2, 300}) w.bytes(4, wire().varint(1, id).str());
    return w;
  };
  wire packed = base();
  packed.bytes(2, wire().packed(1, {300, 2, 1}).packed(2, {7, uint64_t(-1)}).str());
  wire unpacked = base();
  unpacked.bytes(
      2,
      wire().varint(1, 300).varint(1, 2).varint(1, 1).varint(2, 7).varint(2, uint64_t(-1)).str());
  // Both forms in one message, interleaved: the spec says parsers must concatenate.
  wire mixed = base();
  mixed.bytes(2, wire()
                     .varint(1, 300)
                     .packed(2, {7})
                     .packed(1, {2})
                     .varint(1, 1)
                     .varint(2, uint64_t(-1))
                     .str());
  for (const wire* w : {&packed, &unpacked, &mixed}) {
    std::string raw = w->str();
    auto p = decode(as_bytes(raw));
    ASSERT_TRUE(p.ok()) << p.err().to_string();
    ASSERT_EQ(p->samples.size(), 1u);
    EXPECT_EQ(p->location_ids, (std::vector<uint64_t>{300, 2, 1}));
    EXPECT_EQ(p->values, (std::vector<int64_t>{7, -1}));
    expect_consistent_with_libprotobuf(raw, "packing variant");
  }
}

TEST(pprof, unknown_fields_of_every_wire_type_are_skipped) {
  auto unknown = [] {
    wire w;
    w.varint(99, 12345);
    w.tag(100, 1).raw(std::string(8, '\x7f'));
    w.bytes(101, "whatever \x80 bytes");
    w.tag(102, 5).raw(std::string(4, '\xff'));
    w.tag(536870911, 0).raw("\x01");  // the largest field number
    return w.str();
  };
  wire w;
  w.raw(unknown()).bytes(6, "").raw(unknown()).bytes(6, "cpu").bytes(6, "ns");
  w.bytes(1, wire().raw(unknown()).varint(1, 1).varint(2, 2).raw(unknown()).str());
  w.bytes(5, wire().varint(1, 1).raw(unknown()).varint(2, 1).str());
  w.bytes(3, wire().varint(1, 1).raw(unknown()).varint(7, 1).str());
  w.bytes(4, wire()
                 .varint(1, 1)
                 .raw(unknown())
                 .varint(2, 1)
                 .bytes(4, wire().raw(unknown()).varint(1, 1).varint(2, 42).str())
                 .str());
  w.bytes(2, wire()
                 .raw(unknown())
                 .packed(1, {1})
                 .packed(2, {5})
                 .bytes(3, wire().raw(unknown()).varint(1, 1).varint(3, 9).str())
                 .str());
  w.varint(9, 77).raw(unknown());
  std::string raw = w.str();
  auto p = decode(as_bytes(raw));
  ASSERT_TRUE(p.ok()) << p.err().to_string();
  EXPECT_EQ(p->strings.size(), 3u);
  EXPECT_EQ(p->time_nanos, 77);
  ASSERT_EQ(p->lines.size(), 1u);
  EXPECT_EQ(p->lines[0].line, 42);
  ASSERT_EQ(p->labels.size(), 1u);
  EXPECT_EQ(p->labels[0].num, 9);
  EXPECT_TRUE(p->mappings.at(0).has_functions);
  expect_consistent_with_libprotobuf(raw, "unknown fields");
}

TEST(pprof, rejects_groups_and_invalid_wire_types) {
  expect_bad_wire(wire().tag(50, 3).tag(50, 4).str(), "field 50 uses a group");
  expect_bad_wire(wire().tag(50, 4).str(), "group");
  expect_bad_wire(wire().tag(50, 6).str(), "invalid wire type 6");
  expect_bad_wire(wire().tag(50, 7).str(), "invalid wire type 7");
  expect_bad_wire(wire().bytes(2, wire().tag(9, 3).str()).str(), "sample 0: field 9 uses a group");
  expect_bad_wire(wire().raw(std::string("\x00", 1)).str(), "field number 0");
}

TEST(pprof, rejects_wrong_wire_type_for_known_fields) {
  expect_bad_wire(wire().varint(1, 5).str(), "field 1 (sample_type) has wire type varint");
  expect_bad_wire(wire().bytes(9, "x").str(),
                  "field 9 (time_nanos) has wire type length-delimited");
  expect_bad_wire(wire().varint(6, 0).str(), "string_table");
  expect_bad_wire(wire().tag(2, 0).raw("\x01").str(), "sample");
  expect_bad_wire(wire().bytes(2, wire().tag(1, 5).raw("abcd").str()).str(),
                  "sample 0: field 1 (location_id) has wire type fixed32");
  expect_bad_wire(wire().bytes(4, wire().varint(4, 1).str()).str(), "location 0: field 4 (line)");
}

TEST(pprof, rejects_truncation_bad_lengths_and_long_varints) {
  expect_bad_wire(std::string("\x48", 1), "field 9: truncated varint");
  expect_bad_wire(std::string("\x48\x80", 2), "truncated varint");
  expect_bad_wire(std::string("\x32\x05"
                              "ab",
                              4),
                  "length 5 runs past the end of its message (2 bytes left)");
  expect_bad_wire(std::string("\x32", 1), "truncated length");
  expect_bad_wire(std::string("\x32\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01", 11), "runs past");
  expect_bad_wire(std::string("\x80", 1), "malformed field tag");
  expect_bad_wire(std::string("\x09\x01\x02", 3), "truncated fixed64");
  // 11-byte varint
  expect_bad_wire(std::string("\x48\xff\xff\xff\xff\xff\xff\xff\xff\xff\x81\x00", 12),
                  "longer than 10 bytes");
  // 11-byte varint inside a packed run
  expect_bad_wire(
      wire()
          .bytes(2, wire()
                        .bytes(2, std::string("\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01", 11))
                        .str())
          .str(),
      "sample 0: field 2 (value): varint longer than 10 bytes");
  expect_bad_wire(wire().bytes(2, wire().bytes(1, "\x01\x81").str()).str(),
                  "packed run ends inside a varint");
  // A submessage's length must stay inside its parent.
  expect_bad_wire(wire().bytes(2, std::string("\x0a\x05\x01", 3)).str(),
                  "sample 0: field 1: length 5 runs past");
}

TEST(pprof, ten_byte_varints_are_negative_int64) {
  std::string raw = wire().varint(9, uint64_t(-5)).varint(12, uint64_t(INT64_MIN)).str();
  auto p = decode(as_bytes(raw));
  ASSERT_TRUE(p.ok()) << p.err().to_string();
  EXPECT_EQ(p->time_nanos, -5);
  EXPECT_EQ(p->period, INT64_MIN);
  expect_consistent_with_libprotobuf(raw, "10-byte varints");
}

TEST(pprof, last_scalar_wins_and_period_type_merges) {
  std::string raw = wire()
                        .bytes(6, "")
                        .bytes(6, "a")
                        .bytes(6, "b")
                        .varint(12, 1)
                        .varint(12, 2)
                        .bytes(11, wire().varint(1, 1).varint(2, 1).str())
                        .bytes(11, wire().varint(2, 2).str())
                        .str();
  auto p = decode(as_bytes(raw));
  ASSERT_TRUE(p.ok()) << p.err().to_string();
  EXPECT_EQ(p->period, 2);
  EXPECT_EQ(p->period_type.type, 1);
  EXPECT_EQ(p->period_type.unit, 2);
  expect_consistent_with_libprotobuf(raw, "merge");
}

// --- validation --------------------------------------------------------------------------------

TEST(pprof, small_profile_is_valid) {
  std::string raw;
  auto p = decode_pb(small_profile(), raw);
  ASSERT_TRUE(p.ok()) << p.err().to_string();
  google::v1::Profile pb;
  ASSERT_TRUE(pb.ParseFromString(raw));
  EXPECT_EQ(diff(*p, pb), "");
}

TEST(pprof, string_table_must_start_empty) {
  auto p = small_profile();
  p.set_string_table(0, "oops");
  expect_bad(p, "string_table[0] must be \"\", is \"oops\"");
}

TEST(pprof, string_index_out_of_range) {
  {
    auto p = small_profile();
    p.mutable_function(0)->set_name(8);
    expect_bad(p, "function 0 name: string index 8 out of range (string_table has 8 entries)");
  }
  {
    auto p = small_profile();
    p.mutable_sample_type(1)->set_unit(-1);
    expect_bad(p, "sample_type 1 unit: string index -1 out of range");
  }
  {
    auto p = small_profile();
    auto* l = p.mutable_sample(1)->add_label();
    l->set_key(1);
    l->set_str(1000);
    expect_bad(p, "sample 1 label 0 str: string index 1000 out of range");
  }
  {
    auto p = small_profile();
    p.mutable_mapping(0)->set_build_id(99);
    expect_bad(p, "mapping 0 build_id: string index 99");
  }
  {
    auto p = small_profile();
    p.mutable_period_type()->set_type(50);
    expect_bad(p, "period_type type: string index 50");
  }
  for (int which = 0; which < 4; ++which) {
    auto p = small_profile();
    if (which == 0) p.set_drop_frames(8);
    if (which == 1) p.set_keep_frames(8);
    if (which == 2) p.set_default_sample_type(8);
    if (which == 3) p.add_comment(8);
    expect_bad(p, "string index 8 out of range");
  }
  {
    // No string table at all: only index 0 ("") is valid.
    google::v1::Profile p;
    p.add_sample_type()->set_type(1);
    expect_bad(p, "sample_type 0 type: string index 1 out of range (string_table has 1 entries)");
  }
}

TEST(pprof, wrong_value_count) {
  auto p = small_profile();
  p.mutable_sample(1)->mutable_value()->RemoveLast();
  expect_bad(p, "sample 1 has 1 values, want 2 (one per sample type)");
  p = small_profile();
  p.mutable_sample(0)->add_value(3);
  expect_bad(p, "sample 0 has 3 values, want 2 (one per sample type)");
  p = small_profile();
  p.clear_sample_type();
  p.mutable_sample(0)->clear_value();
  p.mutable_sample(1)->clear_value();
  expect_bad(p, "profile has 2 samples but no sample_type");
}

TEST(pprof, dangling_and_bad_ids) {
  auto p = small_profile();
  p.mutable_sample(1)->set_location_id(1, 3);
  expect_bad(p, "sample 1 location 1 references location id 3, which does not exist");
  p = small_profile();
  p.mutable_location(1)->mutable_line(0)->set_function_id(2);
  expect_bad(p, "location 1 (id 2) line 0 references function id 2, which does not exist");
  p = small_profile();
  p.mutable_location(0)->set_mapping_id(9);
  expect_bad(p, "location 0 (id 1) references mapping id 9, which does not exist");
  p = small_profile();
  p.mutable_location(1)->set_id(1);
  expect_bad(p, "location id 1 appears more than once");
  p = small_profile();
  p.mutable_function(0)->set_id(0);
  p.mutable_location(0)->mutable_line(0)->set_function_id(0);
  p.mutable_location(1)->mutable_line(0)->set_function_id(0);
  expect_bad(p, "function with reserved id 0");
  p = small_profile();
  p.mutable_sample(0)->add_location_id(0);
  expect_bad(p, "references location id 0");

  // Allowed: mapping_id 0 (no mapping) and function_id 0 (no function), as in Go.
  p = small_profile();
  p.mutable_location(0)->set_mapping_id(0);
  p.mutable_location(0)->mutable_line(0)->set_function_id(0);
  std::string raw;
  auto r = decode_pb(p, raw);
  EXPECT_TRUE(r.ok()) << r.err().to_string();
}

TEST(pprof, sparse_and_unordered_ids) {
  for (uint64_t base : {uint64_t{0}, uint64_t{1} << 40, ~uint64_t{0} - 10}) {
    auto p = small_profile();
    // Unordered ids near 1..N (flat table) and far-apart ids (sorted lookup).
    uint64_t a = base == 0 ? 2 : base + 7;
    uint64_t b = base == 0 ? 1 : base + 3;
    p.mutable_location(0)->set_id(a);
    p.mutable_location(1)->set_id(b);
    for (int i = 0; i < 2; ++i) {
      p.mutable_sample(i)->set_location_id(0, b);
      p.mutable_sample(i)->set_location_id(1, a);
    }
    p.mutable_function(0)->set_id(base + 5);
    for (int i = 0; i < 2; ++i) p.mutable_location(i)->mutable_line(0)->set_function_id(base + 5);
    SCOPED_TRACE(base);
    std::string raw;
    auto r = decode_pb(p, raw);
    ASSERT_TRUE(r.ok()) << r.err().to_string();
    auto idx = id_index::of(r->locations);
    EXPECT_FALSE(idx.has_bad_id());
    EXPECT_EQ(idx.find(a), 0u);
    EXPECT_EQ(idx.find(b), 1u);
    EXPECT_EQ(idx.find(base + 4), id_index::npos);
    EXPECT_EQ(idx.find(0), id_index::npos);
    p.mutable_sample(1)->set_location_id(0, base + 4);
    expect_bad(p, "references location id " + std::to_string(base + 4));
  }
}

TEST(pprof, id_index_modes) {
  std::vector<function> fs(100);
  for (size_t i = 0; i < fs.size(); ++i) fs[i].id = i + 1;
  auto ident = id_index::of(fs);
  EXPECT_EQ(ident.find(1), 0u);
  EXPECT_EQ(ident.find(100), 99u);
  EXPECT_EQ(ident.find(101), id_index::npos);
  EXPECT_EQ(ident.find(0), id_index::npos);
  std::reverse(fs.begin(), fs.end());
  auto table = id_index::of(fs);
  EXPECT_EQ(table.find(1), 99u);
  EXPECT_EQ(table.find(100), 0u);
  EXPECT_EQ(table.find(101), id_index::npos);
  for (auto& f : fs) f.id *= 1000003;
  auto sorted = id_index::of(fs);
  EXPECT_EQ(sorted.find(1000003), 99u);
  EXPECT_EQ(sorted.find(1000004), id_index::npos);
  EXPECT_FALSE(sorted.has_bad_id());
  fs[3].id = fs[7].id;
  auto dup = id_index::of(fs);
  EXPECT_TRUE(dup.has_bad_id());
  EXPECT_EQ(dup.bad_id(), fs[7].id);
  std::vector<function> zero(3);
  zero[0].id = 1;
  zero[1].id = 0;
  zero[2].id = 2;
  EXPECT_TRUE(id_index::of(zero).has_bad_id());
  EXPECT_EQ(id_index::of(zero).bad_id(), 0u);
}

// --- robustness --------------------------------------------------------------------------------

// The smallest real profile that has samples, locations, functions, mappings and labels.
std::string small_real_profile() {
  return inflate_file(fs::path(testdata_dir()) / "go" / "workpool.mutex.pb.gz");
}

TEST(pprof, truncated_at_every_offset) {
  std::string raw = small_real_profile();
  ASSERT_GT(raw.size(), 500u);
  ASSERT_TRUE(decode(as_bytes(raw)).ok());
  size_t failed = 0;
  quiet_protobuf quiet;
  for (size_t n = 0; n < raw.size(); ++n) {
    // A copy of exactly n bytes, so reading past the prefix would touch freed/foreign memory.
    std::string cut = raw.substr(0, n);
    auto r = decode(as_bytes(cut));
    failed += !r.ok();
    expect_consistent_with_libprotobuf(cut, "prefix of " + std::to_string(n) + " bytes");
  }
  // Most prefixes end inside a field; the ones that end on a field boundary may be valid.
  EXPECT_GT(failed, raw.size() * 9 / 10);
}

TEST(pprof, random_byte_flips) {
  std::string raw = small_real_profile();
  std::mt19937_64 rng(20261122);
  quiet_protobuf quiet;
  size_t accepted = 0;
  for (int i = 0; i < 5000; ++i) {
    std::string m = raw;
    int flips = 1 + static_cast<int>(rng() % 3);
    for (int k = 0; k < flips; ++k) {
      size_t at = rng() % m.size();
      if (rng() % 2)
        m[at] = static_cast<char>(rng());
      else
        m[at] ^= static_cast<char>(1 << (rng() % 8));
    }
    accepted += decode(as_bytes(m)).ok();
    expect_consistent_with_libprotobuf(m, "flip run " + std::to_string(i));
    if (HasFailure()) break;
  }
  // Flips inside values and addresses stay valid: the cross-check above must have run.
  EXPECT_GT(accepted, 500u);
}

// --- gzip --------------------------------------------------------------------------------------

TEST(pprof, gunzip_round_trip_and_is_gzip) {
  std::string data;
  for (int i = 0; i < 10000; ++i) data += "line " + std::to_string(i) + "\n";
  std::string gz = gzip(data);
  EXPECT_TRUE(is_gzip(as_bytes(gz)));
  EXPECT_FALSE(is_gzip(as_bytes(data)));
  EXPECT_FALSE(is_gzip(as_bytes(std::string("\x1f"))));
  auto r = gunzip(as_bytes(gz), data.size());
  ASSERT_TRUE(r.ok()) << r.err().to_string();
  EXPECT_EQ(*r, data);
  // One byte below the exact size is over the limit.
  auto small = gunzip(as_bytes(gz), data.size() - 1);
  ASSERT_FALSE(small.ok());
  EXPECT_EQ(small.err().code, errc::body_too_large);
  // A small limit must hold even though growth starts at a few KiB.
  auto tiny = gunzip(as_bytes(gzip(std::string(300, 'z'))), 100);
  ASSERT_FALSE(tiny.ok());
  EXPECT_EQ(tiny.err().code, errc::body_too_large);
  auto lying = gzip(std::string(300, 'z'));
  lying[lying.size() - 4] = 1;  // ISIZE says 1 byte
  lying[lying.size() - 3] = 0;
  auto lie = gunzip(as_bytes(lying), 100);
  ASSERT_FALSE(lie.ok());
  EXPECT_EQ(lie.err().code, errc::body_too_large);
  // Empty content.
  auto e = gunzip(as_bytes(gzip("")), 0);
  ASSERT_TRUE(e.ok()) << e.err().to_string();
  EXPECT_EQ(*e, "");
}

TEST(pprof, gunzip_rejects_bad_input) {
  for (std::string bad : {std::string(), std::string("hello world, not gzip"),
                          std::string("\x1f\x8b", 2), std::string("\x1f\x8b\x08\x00", 4)}) {
    auto r = gunzip(as_bytes(bad), 1 << 20);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.err().code, errc::bad_gzip);
    EXPECT_FALSE(r.err().message.empty());
  }
  std::string gz = gzip(std::string(5000, 'x') + "tail");
  // Corrupt CRC (the 4 bytes before ISIZE).
  std::string crc = gz;
  crc[crc.size() - 6] ^= 0x55;
  auto r = gunzip(as_bytes(crc), 1 << 20);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.err().code, errc::bad_gzip);
  // Truncated at every length: never crash, never succeed.
  for (size_t n = 0; n < gz.size(); ++n) {
    std::string cut = gz.substr(0, n);
    auto t = gunzip(as_bytes(cut), 1 << 20);
    EXPECT_FALSE(t.ok()) << n;
  }
  // Trailing garbage after a member.
  auto g = gunzip(as_bytes(gz + "garbage"), 1 << 20);
  ASSERT_FALSE(g.ok());
  EXPECT_NE(g.err().message.find("trailing garbage"), std::string::npos) << g.err().message;
}

TEST(pprof, gunzip_multi_member) {
  std::string a(100000, 'a'), b = "second member";
  auto r = gunzip(as_bytes(gzip(a) + gzip(b) + gzip("")), 1 << 20);
  ASSERT_TRUE(r.ok()) << r.err().to_string();
  EXPECT_EQ(*r, a + b);
  auto over = gunzip(as_bytes(gzip(a) + gzip(b)), a.size() + 5);
  ASSERT_FALSE(over.ok());
  EXPECT_EQ(over.err().code, errc::body_too_large);
}

TEST(pprof, gzip_bomb_is_body_too_large) {
  std::string zeros(16 << 20, '\0');
  std::string bomb = gzip(zeros, 9);
  ASSERT_LT(bomb.size(), 20000u);
  auto r = gunzip(as_bytes(bomb), 1 << 20);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.err().code, errc::body_too_large);
  EXPECT_NE(r.err().message.find("1048576"), std::string::npos) << r.err().message;
  // A bomb whose trailer lies about its size is caught while inflating, not by the trailer.
  std::string liar = bomb;
  for (int i = 1; i <= 4; ++i) liar[liar.size() - i] = i == 4 ? '\x10' : '\0';
  auto l = gunzip(as_bytes(liar), 1 << 20);
  ASSERT_FALSE(l.ok());
  EXPECT_EQ(l.err().code, errc::body_too_large);
}

TEST(pprof, gunzip_random_flips) {
  std::string gz = read_file(fs::path(testdata_dir()) / "go" / "workpool.mutex.pb.gz");
  ASSERT_FALSE(gz.empty());
  std::mt19937_64 rng(7);
  size_t ok = 0;
  for (int i = 0; i < 2000; ++i) {
    std::string m = gz;
    m[rng() % m.size()] ^= static_cast<char>(1 + rng() % 255);
    auto r = gunzip(as_bytes(m), 1 << 20);
    if (r.ok()) {
      ++ok;
      (void)decode(as_bytes(*r));
    } else {
      EXPECT_TRUE(r.err().code == errc::bad_gzip || r.err().code == errc::body_too_large);
    }
  }
  // Only flips in the header's mtime/OS/XFL bytes can survive the CRC.
  EXPECT_LT(ok, 200u);
}

}  // namespace
}  // namespace hearth::pprof
