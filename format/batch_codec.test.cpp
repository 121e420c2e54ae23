#include "format/batch_codec.hpp"

#include <gtest/gtest.h>

#include <filesystem>
#include <random>

#include "format/ingest_request.hpp"
#include "format/normalize.hpp"
#include "format/test_util.hpp"

namespace hearth {
namespace {

using test::load_profile;
using test::testdata_dir;

bool same(const ingest_batch& a, const ingest_batch& b) {
  if (a.tenant != b.tenant || a.syms.strings != b.syms.strings || a.syms.mappings != b.syms.mappings ||
      a.syms.functions != b.syms.functions ||
      a.syms.lines != b.syms.lines || a.stack_offsets != b.stack_offsets || a.stack_locations != b.stack_locations ||
      a.series.size() != b.series.size() || a.syms.locations.size() != b.syms.locations.size())
    return false;
  for (size_t i = 0; i < a.syms.locations.size(); ++i) {
    const auto &x = a.syms.locations[i], &y = b.syms.locations[i];
    if (x.address != y.address || x.line_begin != y.line_begin || x.line_count != y.line_count ||
        x.mapping != y.mapping)
      return false;
  }
  for (size_t i = 0; i < a.series.size(); ++i) {
    const auto &x = a.series[i], &y = b.series[i];
    if (x.labels != y.labels || x.time_ns != y.time_ns || x.duration_ns != y.duration_ns || x.id_hi != y.id_hi ||
        x.id_lo != y.id_lo || x.sample_stacks != y.sample_stacks || x.sample_values != y.sample_values ||
        x.spans != y.spans || x.period != y.period)
      return false;
  }
  return true;
}

/// All real profiles normalized into one batch (what one busy request could look like).
ingest_batch real_batch(const std::string& subdir) {
  batch_builder b("tenant-a");
  std::vector<std::string> raws;
  for (const auto& e : std::filesystem::directory_iterator(testdata_dir() + "/" + subdir)) {
    if (!e.path().string().ends_with(".pb.gz")) continue;
    auto l = load_profile(e.path().string());
    if (l == nullptr) continue;
    ingest_meta m;
    m.labels = *parse_app_name("app{file=" + e.path().filename().string() + "}");
    m.from = ingest_meta::source::ingest;
    m.id_hi = 0x0123456789abcdefULL;
    m.id_lo = 0xfedcba9876543210ULL;
    EXPECT_TRUE(b.add(l->p, m).ok());
  }
  return b.finish();
}

TEST(batch_codec, round_trip_real_batches) {
  for (const char* dir : {"go", "node"}) {
    ingest_batch b = real_batch(dir);
    ASSERT_GT(b.series.size(), 3u);
    std::string enc = encode_batch(b);
    EXPECT_EQ(static_cast<uint8_t>(enc[0]), batch_format_v3);  // v2 until spans were stored
    EXPECT_NE(b.series[0].period, 0);
    if (std::string(dir) == "go") {
      EXPECT_FALSE(b.syms.mappings.empty());
    } else {
      EXPECT_TRUE(b.syms.mappings.empty());
    }
    auto dec = decode_batch(as_bytes(enc));
    ASSERT_TRUE(dec.ok()) << dec.err().to_string();
    EXPECT_TRUE(same(b, *dec));
    EXPECT_EQ(encode_batch(*dec), enc);  // deterministic
  }
}

TEST(batch_codec, round_trip_empty_and_edge_values) {
  ingest_batch empty;
  auto d0 = decode_batch(as_bytes(encode_batch(empty)));
  ASSERT_TRUE(d0.ok()) << d0.err().to_string();
  EXPECT_TRUE(same(empty, *d0));

  ingest_batch b;
  b.tenant = std::string("t\0x", 3);
  b.syms.strings.push_back(std::string(300, 'z'));
  b.syms.functions.push_back({1, 1, 0, INT64_MIN});
  b.syms.lines.push_back({0, -1});
  b.syms.mappings.push_back({UINT64_MAX, 0, UINT64_MAX, 1, 0, mapping_flags_all});
  b.syms.mappings.push_back({0, 0, 0, 0, 1, 0});
  b.syms.locations.push_back({UINT64_MAX, 0, 1, 2});
  b.syms.locations.push_back({0, 1, 0, 0});
  b.stack_locations = {0, 1, 1};
  b.stack_offsets = {0, 2, 3};
  ingest_series s;
  s.labels = {{"__name__", "x"}, {"a", ""}};
  s.time_ns = INT64_MAX;
  s.duration_ns = -5;
  s.id_hi = UINT64_MAX;
  s.sample_stacks = {1, 0};
  s.sample_values = {INT64_MIN, INT64_MAX};
  b.series.push_back(s);
  auto d = decode_batch(as_bytes(encode_batch(b)));
  ASSERT_TRUE(d.ok()) << d.err().to_string();
  EXPECT_TRUE(same(b, *d));
}

TEST(batch_codec, every_truncation_fails) {
  ingest_batch b = real_batch("node");
  std::string enc = encode_batch(b);
  for (size_t n = 0; n < enc.size(); n += (n < 200 ? 1 : 97)) {
    auto d = decode_batch(as_bytes(std::string_view(enc).substr(0, n)));
    ASSERT_FALSE(d.ok()) << n;
    EXPECT_EQ(d.err().code, errc::corrupted);
  }
  std::string longer = enc + "x";
  EXPECT_FALSE(decode_batch(as_bytes(longer)).ok());
}

TEST(batch_codec, byte_flips_error_or_equal) {
  ingest_batch b = real_batch("go");
  const std::string enc = encode_batch(b);
  std::mt19937_64 rng(7);
  size_t failures = 0, trials = 0;
  for (size_t i = 0; i < enc.size(); i += 1 + enc.size() / 3000) {
    std::string bad = enc;
    bad[i] = static_cast<char>(bad[i] ^ (1 + rng() % 255));
    auto d = decode_batch(as_bytes(bad));
    ++trials;
    if (!d.ok()) {
      ++failures;
      EXPECT_EQ(d.err().code, errc::corrupted);
    } else {
      EXPECT_TRUE(same(b, *d));
    }
  }
  EXPECT_EQ(failures, trials);  // the CRC catches every single-byte change
}

/// Encodes like encode_batch but lets a test corrupt the body *with* a valid checksum, to reach
/// the structural checks behind the CRC.
std::string with_crc(std::string body) {
  encoder e;
  e.put_raw(body);
  e.put_u32(crc32c(as_bytes(body)));
  return e.release();
}

TEST(batch_codec, structural_checks_behind_a_valid_crc) {
  ingest_batch b = real_batch("node");
  const std::string enc = encode_batch(b);
  const std::string body = enc.substr(0, enc.size() - 4);
  // Random garbage with a valid CRC: must fail cleanly (or, rarely, decode to something valid).
  std::mt19937_64 rng(11);
  for (int t = 0; t < 2000; ++t) {
    std::string bad = body;
    const int flips = 1 + static_cast<int>(rng() % 4);
    for (int k = 0; k < flips; ++k) bad[1 + rng() % (bad.size() - 1)] = static_cast<char>(rng());
    auto d = decode_batch(as_bytes(with_crc(bad)));
    if (d.ok()) {
      // Whatever decoded must be internally consistent.
      for (const auto& s : d->series)
        for (uint32_t st : s.sample_stacks) ASSERT_LT(st, d->stack_count());
      for (uint32_t l : d->stack_locations) ASSERT_LT(l, d->syms.locations.size());
      for (const auto& loc : d->syms.locations) ASSERT_LE(uint64_t{loc.line_begin} + loc.line_count, d->syms.lines.size());
      for (const auto& l : d->syms.lines) ASSERT_LT(l.function, d->syms.functions.size());
      for (const auto& f : d->syms.functions) ASSERT_LT(f.name, d->syms.strings.size());
      for (const auto& loc : d->syms.locations) ASSERT_LE(loc.mapping, d->syms.mappings.size());
      for (const auto& m : d->syms.mappings) ASSERT_LT(m.build_id, d->syms.strings.size());
    } else {
      EXPECT_EQ(d.err().code, errc::corrupted);
    }
  }
  // Targeted: a stack index out of range, unsorted labels, a huge count, a bad version.
  auto expect_corrupt = [](const ingest_batch& x, const char* want) {
    auto d = decode_batch(as_bytes(encode_batch(x)));
    ASSERT_FALSE(d.ok()) << want;
    EXPECT_NE(d.err().message.find(want), std::string::npos) << d.err().message;
  };
  ingest_batch x = b;
  x.series[0].sample_stacks[0] = static_cast<uint32_t>(x.stack_count());
  expect_corrupt(x, "stack index out of range");
  x = b;
  std::swap(x.series[0].labels[0], x.series[0].labels[1]);
  expect_corrupt(x, "not sorted");
  x = b;
  x.syms.locations[0].line_count = static_cast<uint32_t>(x.syms.lines.size() + 1);
  expect_corrupt(x, "location lines out of range");
  x = b;
  x.syms.strings[0] = "nope";
  expect_corrupt(x, "strings[0]");
  x = b;
  x.syms.functions[0].name = static_cast<uint32_t>(x.syms.strings.size());
  expect_corrupt(x, "function table");
  x = b;
  x.syms.lines[0].function = static_cast<uint32_t>(x.syms.functions.size());
  expect_corrupt(x, "line table");
  x = b;
  x.stack_locations[0] = static_cast<uint32_t>(x.syms.locations.size());
  expect_corrupt(x, "location index out of range");

  std::string huge = body.substr(0, 1);
  encoder e;
  e.put_string("t");
  e.put_uvarint(UINT64_MAX / 2);  // string count far beyond the record
  huge += e.buffer();
  auto d = decode_batch(as_bytes(with_crc(huge)));
  ASSERT_FALSE(d.ok());
  EXPECT_NE(d.err().message.find("bad string count"), std::string::npos);

  std::string v4 = body;
  v4[0] = 4;
  d = decode_batch(as_bytes(with_crc(v4)));
  ASSERT_FALSE(d.ok());
  EXPECT_NE(d.err().message.find("unknown version 4"), std::string::npos);
}

/// The version-1 encoding (before mappings) and the version-2 one (before periods and spans), as
/// their writers laid them out; kept here because the writer now writes only version 3 and WALs
/// written before an upgrade must still replay.
std::string encode_batch_v1(const ingest_batch& b, uint8_t version = batch_format_v1) {
  encoder e;
  e.put_u8(version);
  e.put_string(b.tenant);
  e.put_uvarint(b.syms.strings.size());
  for (const auto& s : b.syms.strings) e.put_string(s);
  if (version == batch_format_v2) {
    e.put_uvarint(b.syms.mappings.size());
    for (const auto& m : b.syms.mappings) {
      e.put_uvarint(m.memory_start);
      e.put_uvarint(m.memory_limit);
      e.put_uvarint(m.file_offset);
      e.put_uvarint(m.filename);
      e.put_uvarint(m.build_id);
      e.put_u8(m.flags);
    }
  }
  e.put_uvarint(b.syms.functions.size());
  for (const auto& f : b.syms.functions) {
    e.put_uvarint(f.name);
    e.put_uvarint(f.system_name);
    e.put_uvarint(f.filename);
    e.put_varint(f.start_line);
  }
  e.put_uvarint(b.syms.lines.size());
  for (const auto& l : b.syms.lines) {
    e.put_uvarint(l.function);
    e.put_varint(l.line);
  }
  e.put_uvarint(b.syms.locations.size());
  for (const auto& l : b.syms.locations) {
    e.put_uvarint(l.address);
    e.put_uvarint(l.line_begin);
    e.put_uvarint(l.line_count);
    if (version == batch_format_v2) e.put_uvarint(l.mapping);
  }
  const size_t n_stacks = b.stack_count();
  e.put_uvarint(n_stacks);
  for (size_t i = 0; i < n_stacks; ++i) {
    e.put_uvarint(b.stack_offsets[i + 1] - b.stack_offsets[i]);
    for (uint32_t k = b.stack_offsets[i]; k < b.stack_offsets[i + 1]; ++k) e.put_uvarint(b.stack_locations[k]);
  }
  e.put_uvarint(b.series.size());
  for (const auto& s : b.series) {
    e.put_uvarint(s.labels.size());
    for (const auto& l : s.labels) {
      e.put_string(l.name);
      e.put_string(l.value);
    }
    e.put_varint(s.time_ns);
    e.put_varint(s.duration_ns);
    e.put_u64(s.id_hi);
    e.put_u64(s.id_lo);
    e.put_uvarint(s.sample_stacks.size());
    for (size_t i = 0; i < s.sample_stacks.size(); ++i) {
      e.put_uvarint(s.sample_stacks[i]);
      e.put_varint(s.sample_values[i]);
    }
  }
  e.put_u32(crc32c(as_bytes(e.buffer())));
  return e.release();
}

TEST(batch_codec, version_1_records_decode_without_mappings) {
  for (const char* dir : {"go", "node"}) {
    ingest_batch b = real_batch(dir);
    const std::string v1 = encode_batch_v1(b);
    ASSERT_EQ(static_cast<uint8_t>(v1[0]), batch_format_v1);
    auto d = decode_batch(as_bytes(v1));
    ASSERT_TRUE(d.ok()) << d.err().to_string();
    // Everything but the mappings comes back.
    ingest_batch want = b;
    want.syms.mappings.clear();
    for (auto& l : want.syms.locations) l.mapping = 0;
    for (auto& s : want.series) s.period = 0;
    EXPECT_TRUE(same(want, *d)) << dir;
    EXPECT_TRUE(d->syms.mappings.empty());
    // Re-encoded, it is a current-version record of the same batch.
    const std::string v2 = encode_batch(*d);
    EXPECT_EQ(static_cast<uint8_t>(v2[0]), batch_format_current);
    auto d2 = decode_batch(as_bytes(v2));
    ASSERT_TRUE(d2.ok());
    EXPECT_TRUE(same(want, *d2));
    // Truncated v1 records fail like v2 ones.
    for (size_t n = 0; n < v1.size(); n += (n < 200 ? 1 : 97))
      ASSERT_FALSE(decode_batch(as_bytes(std::string_view(v1).substr(0, n))).ok()) << n;
  }
}

TEST(batch_codec, mapping_refs_are_checked) {
  ingest_batch b = real_batch("go");
  ASSERT_FALSE(b.syms.mappings.empty());
  auto expect_corrupt = [](const ingest_batch& x, const char* want) {
    auto d = decode_batch(as_bytes(encode_batch(x)));
    ASSERT_FALSE(d.ok()) << want;
    EXPECT_EQ(d.err().code, errc::corrupted);
    EXPECT_NE(d.err().message.find(want), std::string::npos) << d.err().message;
  };
  ingest_batch x = b;
  x.syms.locations[0].mapping = static_cast<uint32_t>(x.syms.mappings.size() + 1);
  expect_corrupt(x, "mapping index out of range");
  x = b;
  x.syms.mappings[0].filename = static_cast<uint32_t>(x.syms.strings.size());
  expect_corrupt(x, "mapping table");
  x = b;
  x.syms.mappings[0].build_id = static_cast<uint32_t>(x.syms.strings.size());
  expect_corrupt(x, "mapping table");
  x = b;
  x.syms.mappings[0].flags = 0x10;
  expect_corrupt(x, "unknown flags");
  x = b;
  x.syms.locations[0].mapping = static_cast<uint32_t>(x.syms.mappings.size());  // the last: fine
  auto d = decode_batch(as_bytes(encode_batch(x)));
  ASSERT_TRUE(d.ok()) << d.err().to_string();
  EXPECT_TRUE(same(x, *d));
}

}  // namespace
}  // namespace hearth

namespace hearth {
namespace {

// A batch whose series carry span samples and a period (what batch_builder makes of a pprof with
// span_id labels).
ingest_batch span_batch() {
  ingest_batch b = real_batch("go");
  for (auto& s : b.series) {
    for (size_t i = 0; i < s.sample_stacks.size(); i += 3)
      s.spans.push_back({s.sample_stacks[i], 0x0123456789abcdefull + i % 2, s.sample_values[i]});
    sum_span_samples(s.spans);
  }
  return b;
}

TEST(batch_codec, version_2_records_decode_without_periods_and_spans) {
  ingest_batch b = span_batch();
  const std::string v2 = encode_batch_v1(b, batch_format_v2);
  auto d = decode_batch(as_bytes(v2));
  ASSERT_TRUE(d.ok()) << d.err().to_string();
  ingest_batch want = b;
  for (auto& s : want.series) {
    s.spans.clear();
    s.period = 0;
  }
  EXPECT_TRUE(same(want, *d));
}

TEST(batch_codec, spans_and_periods_round_trip_and_are_checked) {
  ingest_batch b = span_batch();
  ASSERT_FALSE(b.series[0].spans.empty());
  const std::string enc = encode_batch(b);
  auto d = decode_batch(as_bytes(enc));
  ASSERT_TRUE(d.ok()) << d.err().to_string();
  EXPECT_TRUE(same(b, *d));

  auto must_fail = [](ingest_batch x, const char* what) {
    auto r = decode_batch(as_bytes(encode_batch(x)));
    ASSERT_FALSE(r.ok()) << what;
    EXPECT_EQ(r.err().code, errc::corrupted);
    EXPECT_NE(r.err().message.find(what), std::string::npos) << r.err().message;
  };
  ingest_batch x = b;
  x.series[0].spans[0].span_id = 0;
  must_fail(x, "span id 0");
  x = b;
  x.series[0].spans.push_back(x.series[0].spans[0]);
  must_fail(x, "not sorted");
  x = b;
  x.series[0].spans[0].stack = static_cast<uint32_t>(x.stack_count());
  must_fail(x, "out of range");
}

}  // namespace
}  // namespace hearth
