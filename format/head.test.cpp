#include "format/head.hpp"

#include <gtest/gtest.h>

#include <filesystem>
#include <map>
#include <set>

#include "format/batch_codec.hpp"
#include "format/ingest_request.hpp"
#include "format/normalize.hpp"
#include "format/segment.hpp"
#include "format/test_util.hpp"

namespace hearth {
namespace {

using test::expected_nonzero_totals;
using test::load_profile;
using test::testdata_dir;

/// Normalizes one real profile into its own batch.
ingest_batch batch_of(const std::string& rel, std::string app = "app", int64_t time_ns = 0) {
  auto l = load_profile(testdata_dir() + "/" + rel);
  if (l == nullptr) return {};
  ingest_meta m;
  m.labels = *parse_app_name(app);
  m.from = ingest_meta::source::ingest;
  m.time_ns = time_ns;
  batch_builder b;
  EXPECT_TRUE(b.add(l->p, m).ok()) << rel;
  return b.finish();
}

std::string label_value(const block_data& d, uint32_t series, std::string_view name) {
  const series_rec& s = d.series[series];
  for (uint32_t i = 0; i < s.label_count; ++i) {
    const label_ref& l = d.labels[s.label_begin + i];
    if (d.syms.strings[l.name] == name) return d.syms.strings[l.value];
  }
  return "<absent>";
}

/// Sum of profile totals per (series' __type__/__unit__).
std::map<std::string, int64_t> totals_by_type(const block_data& d) {
  std::map<std::string, int64_t> out;
  for (const auto& p : d.profiles)
    out[label_value(d, p.series, "__type__") + "/" + label_value(d, p.series, "__unit__")] += p.total;
  return out;
}

void check_well_formed(const block_data& d) {
  ASSERT_EQ(d.syms.strings[0], "");
  std::set<std::string> strings(d.syms.strings.begin(), d.syms.strings.end());
  EXPECT_EQ(strings.size(), d.syms.strings.size()) << "duplicate strings";
  ASSERT_FALSE(d.stacks.empty());
  for (size_t i = 0; i < d.syms.mappings.size(); ++i) {
    ASSERT_LT(d.syms.mappings[i].filename, d.syms.strings.size());
    ASSERT_LT(d.syms.mappings[i].build_id, d.syms.strings.size());
    for (size_t j = i + 1; j < d.syms.mappings.size(); ++j)
      EXPECT_FALSE(d.syms.mappings[i] == d.syms.mappings[j]) << "duplicate mappings";
  }
  for (const auto& l : d.syms.locations) ASSERT_LE(l.mapping, d.syms.mappings.size());
  for (size_t i = 1; i < d.stacks.size(); ++i) {
    ASSERT_LT(d.stacks[i].parent, i);  // parents come first
    ASSERT_LT(d.stacks[i].location, d.syms.locations.size());
  }
  for (const auto& l : d.labels) {
    ASSERT_LT(l.name, d.syms.strings.size());
    ASSERT_LT(l.value, d.syms.strings.size());
  }
  for (const auto& s : d.series) ASSERT_LE(s.label_begin + s.label_count, d.labels.size());
  for (const auto& p : d.profiles) {
    ASSERT_LT(p.series, d.series.size());
    ASSERT_LE(p.sample_begin + p.sample_count, d.samples.size());
    std::set<uint32_t> stacks;
    int64_t total = 0;
    for (uint32_t i = 0; i < p.sample_count; ++i) {
      const sample_rec& s = d.samples[p.sample_begin + i];
      ASSERT_NE(s.stack, 0u);
      ASSERT_LT(s.stack, d.stacks.size());
      EXPECT_TRUE(stacks.insert(s.stack).second) << "stack repeated within a profile";
      total += s.value;
    }
    EXPECT_EQ(total, p.total);
  }
}

/// The function names of a stack node's path, leaf first (innermost line of each location).
std::vector<std::string> path_of(const block_data& d, uint32_t node) {
  std::vector<std::string> out;
  for (; node != 0; node = d.stacks[node].parent) {
    const location_rec& loc = d.syms.locations[d.stacks[node].location];
    out.push_back(loc.line_count ? d.syms.strings[d.syms.functions[d.syms.lines[loc.line_begin].function].name]
                                 : "0x" + std::to_string(loc.address));
  }
  return out;
}

std::vector<std::string> path_of(const ingest_batch& b, uint32_t stack) {
  std::vector<std::string> out;
  for (uint32_t k = b.stack_offsets[stack]; k < b.stack_offsets[stack + 1]; ++k) {
    const location_rec& loc = b.syms.locations[b.stack_locations[k]];
    out.push_back(loc.line_count ? b.syms.strings[b.syms.functions[b.syms.lines[loc.line_begin].function].name]
                                 : "0x" + std::to_string(loc.address));
  }
  return out;
}

TEST(head, real_profiles_totals) {
  head h;
  size_t series_in = 0;
  for (const std::string dir : {"go", "node"}) {
    for (const auto& e : std::filesystem::directory_iterator(testdata_dir() + "/" + dir)) {
      const std::string file = e.path().filename().string();
      if (!file.ends_with(".pb.gz")) continue;
      SCOPED_TRACE(file);
      const std::string name = file.substr(0, file.size() - 6);
      // One head per profile to compare with its own totals, and one shared head for everything.
      ingest_batch b = batch_of(dir + "/" + file, "app{file=" + name + "}");
      head one;
      one.append(b);
      check_well_formed(one.data());
      EXPECT_EQ(totals_by_type(one.data()), expected_nonzero_totals(dir, name));
      EXPECT_EQ(one.profiles(), b.series.size());
      series_in += b.series.size();
      h.append(b);
    }
  }
  check_well_formed(h.data());
  EXPECT_EQ(h.profiles(), series_in);
  EXPECT_EQ(h.data().series.size(), series_in);  // each file has its own `file` label
}

TEST(head, same_profile_twice_interns_to_same_stacks) {
  ingest_batch b = batch_of("go/workpool.cpu.000.pb.gz");
  head h;
  h.append(b);
  const block_data& d = h.data();
  const size_t stacks = d.stacks.size(), strings = d.syms.strings.size(), functions = d.syms.functions.size(),
               locations = d.syms.locations.size(), series = d.series.size();
  const auto totals = totals_by_type(d);
  const size_t bytes = h.bytes_estimate();
  EXPECT_GT(bytes, 0u);

  h.append(b);
  EXPECT_EQ(d.stacks.size(), stacks);
  EXPECT_EQ(d.syms.strings.size(), strings);
  EXPECT_EQ(d.syms.functions.size(), functions);
  EXPECT_EQ(d.syms.locations.size(), locations);
  EXPECT_EQ(d.series.size(), series);
  EXPECT_EQ(h.profiles(), 2 * b.series.size());
  for (const auto& [k, v] : totals_by_type(d)) EXPECT_EQ(v, 2 * totals.at(k)) << k;
  EXPECT_GE(h.bytes_estimate(), bytes);
  check_well_formed(d);

  // Every sample's node path is its batch stack.
  const profile_row& row = d.profiles[0];
  const ingest_series& s = b.series[0];
  ASSERT_EQ(row.sample_count, s.sample_stacks.size());
  for (uint32_t i = 0; i < row.sample_count; ++i) {
    const sample_rec& r = d.samples[row.sample_begin + i];
    EXPECT_EQ(path_of(d, r.stack), path_of(b, s.sample_stacks[i]));
    EXPECT_EQ(int64_t{r.value}, s.sample_values[i]);
  }
}

TEST(head, shared_prefixes_share_nodes_across_profiles) {
  head h;
  h.append(batch_of("go/workpool.cpu.000.pb.gz"));
  const size_t after_one = h.data().stacks.size();
  h.append(batch_of("go/workpool.cpu.001.pb.gz"));
  h.append(batch_of("go/workpool.cpu.002.pb.gz"));
  // Consecutive windows of one program: the tree grows far less than 3x.
  EXPECT_LT(h.data().stacks.size(), after_one * 2);
  EXPECT_EQ(h.data().series.size(), 2u);  // same labels in all three
  EXPECT_EQ(h.profiles(), 6u);
  check_well_formed(h.data());
  std::set<std::pair<uint32_t, uint32_t>> keys;
  for (size_t i = 1; i < h.data().stacks.size(); ++i)
    EXPECT_TRUE(keys.insert({h.data().stacks[i].parent, h.data().stacks[i].location}).second);
}

TEST(head, decoded_batches_append_like_direct_ones) {
  ingest_batch b = batch_of("node/node.heap.pb.gz");
  auto dec = decode_batch(as_bytes(encode_batch(b)));
  ASSERT_TRUE(dec.ok());
  head a, c;
  a.append(b);
  c.append(*dec);
  EXPECT_EQ(a.data().stacks.size(), c.data().stacks.size());
  EXPECT_EQ(totals_by_type(a.data()), totals_by_type(c.data()));
  EXPECT_EQ(totals_by_type(a.data()), expected_nonzero_totals("node", "node.heap"));
}

// The strings' hashes that batch_builder passes along only save work: a head fed the same batches
// without them (as after a WAL replay) holds exactly the same data.
TEST(head, string_hashes_from_the_builder_change_nothing) {
  head with, without;
  for (const char* rel : {"go/workpool.cpu.000.pb.gz", "go/mapindex.cpu.001.pb.gz", "go/workpool.cpu.001.pb.gz",
                          "node/node.cpu.000.pb.gz"}) {
    ingest_batch b = batch_of(rel);
    ASSERT_EQ(b.string_hashes.size(), b.syms.strings.size()) << rel;
    with.append(b);
    b.string_hashes.clear();
    without.append(b);
  }
  const block_data& a = with.data();
  const block_data& c = without.data();
  EXPECT_EQ(a.syms.strings, c.syms.strings);
  EXPECT_EQ(a.syms.functions, c.syms.functions);
  EXPECT_EQ(a.syms.lines, c.syms.lines);
  ASSERT_EQ(a.stacks.size(), c.stacks.size());
  for (size_t i = 0; i < a.stacks.size(); ++i) {
    EXPECT_EQ(a.stacks[i].parent, c.stacks[i].parent);
    EXPECT_EQ(a.stacks[i].location, c.stacks[i].location);
  }
  EXPECT_EQ(totals_by_type(a), totals_by_type(c));
  EXPECT_EQ(with.bytes_estimate(), without.bytes_estimate());
  // No string is interned twice.
  EXPECT_EQ(std::set<std::string>(a.syms.strings.begin(), a.syms.strings.end()).size(), a.syms.strings.size());
}

// Span samples reach the head on its stack nodes, summed where two batch stacks are one node;
// the period with them; and both survive the WAL record and a segment.
TEST(head, span_samples_and_periods_survive_wal_and_segment) {
  ingest_batch b = batch_of("go/workpool.cpu.000.pb.gz");
  ASSERT_FALSE(b.series.empty());
  ingest_series& s = b.series[0];
  ASSERT_GE(s.sample_stacks.size(), 3u);
  // A second batch stack with the same locations as stack 0: the head makes one node of both.
  const uint32_t dup = static_cast<uint32_t>(b.stack_count());
  const uint32_t st0 = s.sample_stacks[0];
  b.stack_locations.insert(b.stack_locations.end(), b.stack_locations.begin() + b.stack_offsets[st0],
                           b.stack_locations.begin() + b.stack_offsets[st0 + 1]);
  b.stack_offsets.push_back(static_cast<uint32_t>(b.stack_locations.size()));
  s.spans = {{st0, 0xabc, 2}, {s.sample_stacks[1], 0xabc, 3}, {dup, 0xabc, 4}, {dup, 0xdef, 5}};
  sum_span_samples(s.spans);
  auto wal = decode_batch(as_bytes(encode_batch(b)));
  ASSERT_TRUE(wal.ok()) << wal.err().to_string();
  head h;
  h.append(*wal);
  const block_data& d = h.data();
  const profile_row& row = d.profiles[0];
  EXPECT_EQ(row.period, s.period);
  EXPECT_NE(row.period, 0);
  ASSERT_EQ(row.span_count, 3u);
  const uint32_t n0 = d.samples[row.sample_begin].stack;
  std::vector<span_sample> want = {{n0, 0xabc, 6}, {n0, 0xdef, 5}, {d.samples[row.sample_begin + 1].stack, 0xabc, 3}};
  sum_span_samples(want);
  std::vector<span_sample> got(d.spans.begin() + row.span_begin, d.spans.begin() + row.span_begin + row.span_count);
  EXPECT_EQ(got, want);
  for (size_t i = 1; i < d.profiles.size(); ++i) EXPECT_EQ(d.profiles[i].span_count, 0u);

  auto file = encode_segment(d, segment_codec::lz4, 1);
  ASSERT_TRUE(file.ok()) << file.err().to_string();
  auto back = decode_segment(as_bytes(*file));
  ASSERT_TRUE(back.ok()) << back.err().to_string();
  ASSERT_EQ(back->spans.size(), 3u);
  int64_t sum = 0;
  for (const auto& x : back->spans) sum += x.value;
  EXPECT_EQ(sum, 14);
  for (const auto& p : back->profiles) EXPECT_NE(p.period, 0);
}

TEST(head, time_range_seal_and_reuse) {
  head h;
  EXPECT_TRUE(h.empty());
  EXPECT_EQ(h.data().min_time_ns, 0);
  h.append(batch_of("go/workpool.heap.pb.gz", "app", 2000));
  h.append(batch_of("go/workpool.goroutine.pb.gz", "app", 1000));
  h.append(batch_of("go/workpool.mutex.pb.gz", "app", 3000));
  EXPECT_EQ(h.data().min_time_ns, 1000);
  EXPECT_EQ(h.data().max_time_ns, 3000);
  const size_t profiles = h.profiles();
  const size_t bytes = h.bytes_estimate();

  block_data sealed = h.seal();
  EXPECT_EQ(sealed.profiles.size(), profiles);
  EXPECT_EQ(sealed.min_time_ns, 1000);
  check_well_formed(sealed);
  EXPECT_TRUE(h.empty());
  EXPECT_EQ(h.profiles(), 0u);
  EXPECT_EQ(h.data().syms.strings.size(), 1u);
  EXPECT_EQ(h.data().stacks.size(), 1u);
  EXPECT_LT(h.bytes_estimate(), bytes / 4);

  // A fresh head after seal: ids start over and nothing dangles into the sealed data.
  h.append(batch_of("go/workpool.heap.pb.gz", "app", 5000));
  check_well_formed(h.data());
  EXPECT_EQ(h.data().min_time_ns, 5000);
  EXPECT_EQ(h.data().max_time_ns, 5000);
  EXPECT_EQ(totals_by_type(h.data()), expected_nonzero_totals("go", "workpool.heap"));
}

TEST(head, many_small_strings_survive_reallocation) {
  // Interning keys are ids, not views, so SSO strings moving on reallocation cannot break lookups.
  head h;
  for (int round = 0; round < 2; ++round) {
    ingest_batch b;
    for (int i = 0; i < 5000; ++i) b.syms.strings.push_back("s" + std::to_string(i));
    b.syms.functions.push_back({1, 2, 3, 0});
    b.syms.lines.push_back({0, 1});
    b.syms.locations.push_back({0, 0, 1});
    b.stack_locations = {0};
    b.stack_offsets = {0, 1};
    ingest_series s;
    s.labels = {{"__name__", "x"}, {"k", "v" + std::to_string(round)}};
    s.sample_stacks = {0, 0};
    s.sample_values = {2, 3};
    b.series.push_back(s);
    h.append(b);
  }
  EXPECT_EQ(h.data().syms.strings.size(), 5001u + 5);  // "", s0..s4999, __name__, x, k, v0, v1
  EXPECT_EQ(h.data().series.size(), 2u);
  EXPECT_EQ(h.data().profiles[0].sample_count, 1u);  // repeated stack summed
  EXPECT_EQ(h.data().profiles[0].total, 5);
  check_well_formed(h.data());
}

// The binaries of every profile, by (file name, build id): what pprof export and symbolization
// will look up.
using binary_set = std::set<std::pair<std::string, std::string>>;
binary_set binaries_of(const symbols& s) {
  binary_set out;
  for (const auto& m : s.mappings) out.insert({s.strings[m.filename], s.strings[m.build_id]});
  return out;
}

TEST(head, mappings_are_interned_across_batches) {
  head h;
  ingest_batch a = batch_of("go/workpool.cpu.000.pb.gz", "a");
  ingest_batch b = batch_of("go/workpool.cpu.001.pb.gz", "b");
  ingest_batch c = batch_of("go/mapindex.heap.pb.gz", "c");
  ASSERT_EQ(a.syms.mappings.size(), 1u);
  h.append(a);
  h.append(b);  // the same binary: nothing new
  EXPECT_EQ(h.data().syms.mappings.size(), 1u);
  h.append(c);  // another binary
  EXPECT_EQ(h.data().syms.mappings.size(), 2u);
  h.append(batch_of("node/" + std::string("node.cpu.000.pb.gz"), "n"));  // no mappings
  check_well_formed(h.data());
  EXPECT_EQ(h.data().syms.mappings.size(), 2u);
  binary_set want = binaries_of(a.syms);
  want.merge(binaries_of(c.syms));
  EXPECT_EQ(binaries_of(h.data().syms), want);
  // Every location of a Go stack lies in a binary; the Node ones in none.
  size_t with = 0, without = 0;
  for (const auto& l : h.data().syms.locations) (l.mapping != 0 ? with : without)++;
  EXPECT_GT(with, 0u);
  EXPECT_GT(without, 0u);
  // Re-indexed after a seal, nothing is left over.
  block_data sealed = h.seal();
  EXPECT_TRUE(h.data().syms.mappings.empty());
  h.append(a);
  EXPECT_EQ(h.data().syms.mappings.size(), 1u);
  EXPECT_EQ(sealed.syms.mappings.size(), 2u);
}

// normalize -> head -> segment -> decode keeps each frame's binary: file name, build id, range,
// offset and flags, and which location lies in which binary.
TEST(head, mappings_survive_normalize_head_segment_decode) {
  size_t go = 0, node = 0;
  for (const char* dir : {"go", "node"}) {
    head h;
    binary_set want;
    for (const auto& e : std::filesystem::directory_iterator(testdata_dir() + "/" + dir)) {
      const std::string file = e.path().filename().string();
      if (!file.ends_with(".pb.gz")) continue;
      auto l = load_profile(e.path().string());
      ASSERT_NE(l, nullptr) << file;
      // Straight from the pprof: the binaries its sampled locations lie in.
      for (const auto& s : l->p.samples)
        for (uint32_t k = 0; k < s.loc_count; ++k)
          for (const auto& loc : l->p.locations)
            if (loc.id == l->p.location_ids[s.loc_begin + k])
              for (const auto& m : l->p.mappings)
                if (m.id == loc.mapping_id)
                  want.insert({std::string(l->p.str(m.filename)), std::string(l->p.str(m.build_id))});
      if (std::string(dir) == "go") {
        ++go;
        EXPECT_EQ(l->p.mappings.size(), 3u) << file;  // as stats.json says
      } else {
        ++node;
        EXPECT_TRUE(l->p.mappings.empty()) << file;
      }
      h.append(batch_of(std::string(dir) + "/" + file, "app{f=" + file + "}"));
    }
    const block_data sealed = h.seal();
    check_well_formed(sealed);
    for (auto codec : {segment_codec::none, segment_codec::lz4, segment_codec::zstd}) {
      auto file = encode_segment(sealed, codec, uint64_t{9});
      ASSERT_TRUE(file.ok()) << file.err().to_string();
      auto got = decode_segment(as_bytes(*file));
      ASSERT_TRUE(got.ok()) << got.err().to_string();
      check_well_formed(*got);
      EXPECT_EQ(got->syms.mappings, sealed.syms.mappings);
      EXPECT_EQ(binaries_of(got->syms), want) << dir;
      ASSERT_EQ(got->syms.locations.size(), sealed.syms.locations.size());
      for (size_t i = 0; i < sealed.syms.locations.size(); ++i)
        ASSERT_EQ(got->syms.locations[i].mapping, sealed.syms.locations[i].mapping) << i;
      if (std::string(dir) == "go") {
        ASSERT_FALSE(got->syms.mappings.empty());
        for (const auto& m : got->syms.mappings) {
          EXPECT_TRUE(got->syms.strings[m.filename].starts_with("/srv/profdemo/build/go/"))
              << got->syms.strings[m.filename];
          EXPECT_EQ(m.memory_start, 0x400000u);
          EXPECT_GT(m.memory_limit, m.memory_start);
          EXPECT_NE(m.flags & mapping_has_functions, 0);
        }
        for (const auto& l : got->syms.locations) EXPECT_NE(l.mapping, 0u);
      } else {
        EXPECT_TRUE(got->syms.mappings.empty());
        for (const auto& l : got->syms.locations) EXPECT_EQ(l.mapping, 0u);
      }
    }
  }
  EXPECT_GT(go, 5u);
  EXPECT_GT(node, 0u);
}

}  // namespace
}  // namespace hearth
