#include "format/compact.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <limits>
#include <map>
#include <random>
#include <set>
#include <string>
#include <tuple>
#include <vector>

#include "format/head.hpp"
#include "format/ingest_request.hpp"
#include "format/normalize.hpp"
#include "format/segment.hpp"
#include "format/test_util.hpp"

namespace hearth {
namespace {

using test::load_profile;
using test::testdata_dir;

constexpr int64_t sec = 1'000'000'000;
constexpr int64_t t0 = 1'700'000'000 * sec;  // 2023-11-14, a multiple of 3600 s
constexpr segment_codec all_codecs[] = {segment_codec::none, segment_codec::lz4,
                                        segment_codec::zstd};

// ---- the reference model: profiles by name, never by id
// ------------------------------------------

/// A flame-graph frame: (function name, system name, file name, line, binary); `0x<addr>` for a location
/// without lines.
/// The last field names the frame's binary (mapping_name()), "" for none.
using frame = std::tuple<std::string, std::string, std::string, int64_t, std::string>;
/// A call path, root first.
using path = std::vector<frame>;

int64_t wadd(int64_t a, int64_t b) {
  return static_cast<int64_t>(static_cast<uint64_t>(a) + static_cast<uint64_t>(b));
}

/// One profile with every id resolved to names.
struct canon_profile {
  label_set labels;
  int64_t time_ns = 0;
  int64_t duration_ns = 0;
  uint64_t id_hi = 0, id_lo = 0;
  int64_t total = 0;
  std::map<path, int64_t> samples;
  friend bool operator==(const canon_profile&, const canon_profile&) = default;
  friend auto operator<=>(const canon_profile&, const canon_profile&) = default;
};

label_set labels_of(const block_data& d, uint32_t series) {
  label_set out;
  const series_rec& s = d.series[series];
  for (uint32_t k = 0; k < s.label_count; ++k) {
    const label_ref& l = d.labels[s.label_begin + k];
    out.push_back(label{d.syms.strings[l.name], d.syms.strings[l.value]});
  }
  return out;
}

/// A mapping by content: every field, strings resolved; "" for none (mapping 0).
std::string mapping_name(const block_data& d, uint32_t mapping) {
  if (mapping == 0) return "";
  const mapping_rec& m = d.syms.mappings[mapping - 1];
  return d.syms.strings[m.filename] + "|" + d.syms.strings[m.build_id] + "|" +
         std::to_string(m.memory_start) + "-" + std::to_string(m.memory_limit) + "@" +
         std::to_string(m.file_offset) + "/" + std::to_string(m.flags);
}

path path_of(const block_data& d, uint32_t node) {
  path leaf_first;
  for (; node != 0; node = d.stacks[node].parent) {
    const location_rec& loc = d.syms.locations[d.stacks[node].location];
    const std::string binary = mapping_name(d, loc.mapping);
    if (loc.line_count == 0) {
      char buf[32];
      std::snprintf(buf, sizeof buf, "0x%llx", static_cast<unsigned long long>(loc.address));
      leaf_first.emplace_back(buf, "", "", 0, binary);
    }
    for (uint32_t k = 0; k < loc.line_count; ++k) {  // innermost first
      const line_rec& l = d.syms.lines[loc.line_begin + k];
      const function_rec& f = d.syms.functions[l.function];
      leaf_first.emplace_back(d.syms.strings[f.name], d.syms.strings[f.system_name],
                              d.syms.strings[f.filename], l.line, binary);
    }
  }
  return path(leaf_first.rbegin(), leaf_first.rend());
}

/// Every row of `d`, in row order.
std::vector<canon_profile> rows_of(const block_data& d) {
  std::vector<canon_profile> out;
  for (const profile_row& p : d.profiles) {
    canon_profile c;
    c.labels = labels_of(d, p.series);
    c.time_ns = p.time_ns;
    c.duration_ns = p.duration_ns;
    c.id_hi = p.id_hi;
    c.id_lo = p.id_lo;
    c.total = p.total;
    for (uint32_t k = 0; k < p.sample_count; ++k) {
      const sample_rec& s = d.samples[p.sample_begin + k];
      int64_t& v = c.samples[path_of(d, s.stack)];
      v = wadd(v, s.value);
    }
    out.push_back(std::move(c));
  }
  return out;
}

/// The content of a block, independent of ids and row order.
std::vector<canon_profile> canon(const block_data& d) {
  auto out = rows_of(d);
  std::sort(out.begin(), out.end());
  return out;
}

int64_t floor_bucket(int64_t t, int64_t b) {
  __int128 q = t / b;
  if (t % b != 0 && t < 0) --q;
  return static_cast<int64_t>(q * b);
}

struct model_result {
  std::vector<canon_profile> profiles;  // sorted
  uint64_t duplicates = 0;
};

/// Brute force: what merge_blocks must produce, by name.
model_result model(const std::vector<const block_data*>& inputs, const merge_options& o) {
  model_result out;
  std::set<std::tuple<label_set, int64_t, uint64_t, uint64_t>> seen;
  std::map<std::pair<label_set, int64_t>, canon_profile> buckets;
  std::map<std::pair<label_set, int64_t>, __int128> ends;  // the latest end in each bucket
  for (const block_data* b : inputs) {
    for (canon_profile& c : rows_of(*b)) {
      if (c.time_ns < o.start_ns || c.time_ns >= o.end_ns) continue;
      if (o.dedupe && (c.id_hi != 0 || c.id_lo != 0) &&
          !seen.insert({c.labels, c.time_ns, c.id_hi, c.id_lo}).second) {
        ++out.duplicates;
        continue;
      }
      if (o.bucket_ns == 0) {
        out.profiles.push_back(std::move(c));
        continue;
      }
      // A rollup row runs from its members' earliest time to their latest end.
      const int64_t t = floor_bucket(c.time_ns, o.bucket_ns);
      const __int128 end =
          std::min<__int128>(__int128{c.time_ns} + std::max<int64_t>(c.duration_ns, 0), INT64_MAX);
      auto [it, fresh] = buckets.try_emplace({c.labels, t});
      canon_profile& r = it->second;
      if (fresh) {
        r.labels = c.labels;
        r.time_ns = c.time_ns;
        ends[it->first] = end;
      }
      r.time_ns = std::min(r.time_ns, c.time_ns);
      ends[it->first] = std::max(ends[it->first], end);
      r.total = wadd(r.total, c.total);
      for (const auto& [p, v] : c.samples) r.samples[p] = wadd(r.samples[p], v);
    }
  }
  for (auto& [k, c] : buckets) {
    c.duration_ns = static_cast<int64_t>(std::min<__int128>(ends[k] - c.time_ns, INT64_MAX));
    out.profiles.push_back(std::move(c));
  }
  std::sort(out.profiles.begin(), out.profiles.end());
  return out;
}

/// Sum of totals per (label set, time).
std::map<std::pair<label_set, int64_t>, int64_t> totals_by_series_time(const block_data& d) {
  std::map<std::pair<label_set, int64_t>, int64_t> out;
  for (const profile_row& p : d.profiles) {
    int64_t& v = out[{labels_of(d, p.series), p.time_ns}];
    v = wadd(v, p.total);
  }
  return out;
}

// ---- structural checks
// ---------------------------------------------------------------------------

/// The invariants encode_segment relies on, plus: no duplicate symbols, nodes or series, and
/// nothing that no profile reaches.
void check_tight(const block_data& d) {
  const symbols& sy = d.syms;
  ASSERT_FALSE(sy.strings.empty());
  ASSERT_EQ(sy.strings[0], "");
  EXPECT_EQ(std::set<std::string>(sy.strings.begin(), sy.strings.end()).size(), sy.strings.size())
      << "duplicate strings";
  ASSERT_FALSE(d.stacks.empty());
  ASSERT_EQ(d.stacks[0].parent, 0u);
  ASSERT_EQ(d.stacks[0].location, 0u);

  std::vector<bool> map_used(sy.mappings.size());
  std::vector<bool> str_used(sy.strings.size()), fn_used(sy.functions.size()),
      line_used(sy.lines.size()), loc_used(sy.locations.size()), node_used(d.stacks.size()),
      label_used(d.labels.size()), series_used(d.series.size());
  str_used[0] = node_used[0] = true;
  std::set<std::pair<uint32_t, uint32_t>> nodes;
  for (size_t i = 1; i < d.stacks.size(); ++i) {
    ASSERT_LT(d.stacks[i].parent, i);
    ASSERT_LT(d.stacks[i].location, sy.locations.size());
    EXPECT_TRUE(nodes.insert({d.stacks[i].parent, d.stacks[i].location}).second)
        << "dup node " << i;
  }
  std::set<std::vector<std::pair<uint32_t, uint32_t>>> series_keys;
  for (const series_rec& s : d.series) {
    ASSERT_LE(uint64_t{s.label_begin} + s.label_count, d.labels.size());
    std::vector<std::pair<uint32_t, uint32_t>> key;
    for (uint32_t k = 0; k < s.label_count; ++k) {
      const label_ref& l = d.labels[s.label_begin + k];
      ASSERT_LT(l.name, sy.strings.size());
      ASSERT_LT(l.value, sy.strings.size());
      if (k > 0) {
        EXPECT_LT(sy.strings[d.labels[s.label_begin + k - 1].name], sy.strings[l.name]);
      }
      key.emplace_back(l.name, l.value);
    }
    EXPECT_TRUE(series_keys.insert(key).second) << "duplicate series";
  }
  for (size_t i = 0; i < sy.mappings.size(); ++i)
    for (size_t j = i + 1; j < sy.mappings.size(); ++j)
      EXPECT_FALSE(sy.mappings[i] == sy.mappings[j]) << "dup mapping";
  std::set<std::tuple<uint32_t, uint32_t, uint32_t, int64_t>> fns;
  for (const function_rec& f : sy.functions)
    EXPECT_TRUE(fns.insert({f.name, f.system_name, f.filename, f.start_line}).second) << "dup fn";

  for (const profile_row& p : d.profiles) {
    ASSERT_LT(p.series, d.series.size());
    series_used[p.series] = true;
    const series_rec& s = d.series[p.series];
    for (uint32_t k = 0; k < s.label_count; ++k) {
      label_used[s.label_begin + k] = true;
      str_used[d.labels[s.label_begin + k].name] = str_used[d.labels[s.label_begin + k].value] =
          true;
    }
    ASSERT_LE(uint64_t{p.sample_begin} + p.sample_count, d.samples.size());
    std::set<uint32_t> stacks;
    int64_t total = 0;
    for (uint32_t k = 0; k < p.sample_count; ++k) {
      const sample_rec& x = d.samples[p.sample_begin + k];
      ASSERT_NE(x.stack, 0u);
      ASSERT_LT(x.stack, d.stacks.size());
      EXPECT_TRUE(stacks.insert(x.stack).second) << "stack repeated within a profile";
      total = wadd(total, x.value);
      for (uint32_t n = x.stack; !node_used[n]; n = d.stacks[n].parent) node_used[n] = true;
    }
    EXPECT_EQ(total, p.total);
  }
  for (size_t n = 1; n < d.stacks.size(); ++n)
    if (node_used[n]) loc_used[d.stacks[n].location] = true;
  for (size_t l = 0; l < sy.locations.size(); ++l) {
    if (!loc_used[l]) continue;
    const location_rec& loc = sy.locations[l];
    ASSERT_LE(uint64_t{loc.line_begin} + loc.line_count, sy.lines.size());
    ASSERT_LE(loc.mapping, sy.mappings.size());
    if (loc.mapping != 0) map_used[loc.mapping - 1] = true;
    for (uint32_t k = 0; k < loc.line_count; ++k) {
      line_used[loc.line_begin + k] = true;
      ASSERT_LT(sy.lines[loc.line_begin + k].function, sy.functions.size());
      fn_used[sy.lines[loc.line_begin + k].function] = true;
    }
  }
  for (size_t f = 0; f < sy.functions.size(); ++f) {
    if (!fn_used[f]) continue;
    const function_rec& r = sy.functions[f];
    ASSERT_LT(std::max({r.name, r.system_name, r.filename}), sy.strings.size());
    str_used[r.name] = str_used[r.system_name] = str_used[r.filename] = true;
  }
  for (size_t m = 0; m < sy.mappings.size(); ++m) {
    if (!map_used[m]) continue;
    const mapping_rec& r = sy.mappings[m];
    ASSERT_LT(std::max(r.filename, r.build_id), sy.strings.size());
    str_used[r.filename] = str_used[r.build_id] = true;
  }
  auto all = [](const std::vector<bool>& v) { return std::count(v.begin(), v.end(), false); };
  EXPECT_EQ(all(str_used), 0) << "unreferenced strings";
  EXPECT_EQ(all(fn_used), 0) << "unreferenced functions";
  EXPECT_EQ(all(map_used), 0) << "unreferenced mappings";
  EXPECT_EQ(all(line_used), 0) << "unreferenced lines";
  EXPECT_EQ(all(loc_used), 0) << "unreferenced locations";
  EXPECT_EQ(all(node_used), 0) << "unreferenced stack nodes";
  EXPECT_EQ(all(label_used), 0) << "unreferenced labels";
  EXPECT_EQ(all(series_used), 0) << "unreferenced series";

  if (d.profiles.empty()) {
    EXPECT_EQ(d.min_time_ns, 0);
    EXPECT_EQ(d.max_time_ns, 0);
  } else {
    auto [lo, hi] = std::minmax_element(d.profiles.begin(), d.profiles.end(),
                                        [](auto& a, auto& b) { return a.time_ns < b.time_ns; });
    EXPECT_EQ(d.min_time_ns, lo->time_ns);
    EXPECT_EQ(d.max_time_ns, hi->time_ns);
  }
}

/// Merges and checks against the model, the structural invariants and the stats.
block_data merge_and_check(const std::vector<const block_data*>& in, const merge_options& o) {
  merge_stats st;
  auto r = merge_blocks(in, o, &st);
  EXPECT_TRUE(r.ok()) << r.err().to_string();
  if (!r.ok()) return {};
  check_tight(*r);
  const model_result m = model(in, o);
  EXPECT_EQ(canon(*r), m.profiles);
  EXPECT_EQ(st.duplicates, m.duplicates);
  uint64_t in_rows = 0, in_samples = 0;
  for (const block_data* b : in) {
    in_rows += b->profiles.size();
    for (const auto& p : b->profiles) in_samples += p.sample_count;
  }
  EXPECT_EQ(st.input_profiles, in_rows);
  EXPECT_EQ(st.input_samples, in_samples);
  EXPECT_EQ(st.output_profiles, r->profiles.size());
  EXPECT_EQ(st.output_samples, r->samples.size());
  return std::move(*r);
}

// ---- random blocks
// -------------------------------------------------------------------------------

struct rnd {
  std::mt19937_64 g;
  explicit rnd(uint64_t seed) : g(seed) {}
  uint64_t below(uint64_t n) { return n == 0 ? 0 : g() % n; }
  bool chance(unsigned percent) { return below(100) < percent; }
};

/// Times near bucket edges (60 s and 3600 s), a negative one, and some spread.
int64_t random_time(rnd& r) {
  static const int64_t picks[] = {0,        1,          59 * sec,   60 * sec - 1,   60 * sec,
                                  61 * sec, 3599 * sec, 3600 * sec, 3600 * sec + 1, 7200 * sec,
                                  -1,       -60 * sec,  -61 * sec};
  if (r.chance(10)) return picks[r.below(std::size(picks))];  // around 0, negatives included
  if (r.chance(60)) return t0 + picks[r.below(std::size(picks))];
  return t0 + static_cast<int64_t>(r.below(3 * 3600)) * sec;
}

/// A batch with its own symbol ids (drawn from shared name pools, so batches overlap by name).
ingest_batch random_batch(rnd& r) {
  ingest_batch b;
  symbol_interner si;
  // Binaries from a small shared pool (so batches overlap), some unreferenced; 0 = none.
  std::vector<uint32_t> binaries{0};
  for (size_t i = 0, n = r.below(4); i < n; ++i) {
    const uint64_t k = r.below(4);
    mapping_rec m;
    m.memory_start = 0x400000 * (k + 1);
    m.memory_limit = m.memory_start + 0x1000;
    m.file_offset = k == 3 ? 0x2000 : 0;
    m.filename = si.string(b.syms, "/bin/m" + std::to_string(k));
    m.build_id = k == 2 ? 0 : si.string(b.syms, "id" + std::to_string(k));
    m.flags = static_cast<uint8_t>(k * 5 % 16);
    binaries.push_back(si.mapping(b.syms, m));
  }
  const size_t n_loc = 1 + r.below(12);
  for (size_t i = 0; i < n_loc; ++i) {
    std::vector<line_rec> lines;
    const size_t n_lines = r.below(3);  // 0: unsymbolized
    for (size_t k = 0; k < n_lines; ++k) {
      function_rec f;
      f.name = si.string(b.syms, "fn" + std::to_string(r.below(15)));
      f.filename = si.string(b.syms, r.chance(50) ? "a.go" : "b.go");
      f.system_name = r.chance(20) ? si.string(b.syms, "sys") : 0;
      f.start_line = static_cast<int64_t>(r.below(2));
      lines.push_back(line_rec{si.function(b.syms, f), static_cast<int64_t>(r.below(4))});
    }
    si.location(b.syms, 0x1000 + r.below(8), lines, binaries[r.below(binaries.size())]);
  }
  const size_t n_loc_real = b.syms.locations.size();
  const size_t n_stacks = 1 + r.below(10);
  for (size_t i = 0; i < n_stacks; ++i) {
    const size_t depth = 1 + r.below(5);
    for (size_t k = 0; k < depth; ++k)
      b.stack_locations.push_back(static_cast<uint32_t>(r.below(n_loc_real)));
    b.stack_offsets.push_back(static_cast<uint32_t>(b.stack_locations.size()));
  }
  const size_t n_series = 1 + r.below(4);
  for (size_t i = 0; i < n_series; ++i) {
    ingest_series s;
    s.labels.push_back({"__name__", r.chance(50) ? "cpu" : "mem"});
    s.labels.push_back({"service_name", "svc" + std::to_string(r.below(3))});
    if (r.chance(40)) s.labels.push_back({"pod", "p" + std::to_string(r.below(2))});
    std::sort(s.labels.begin(), s.labels.end());
    s.time_ns = random_time(r);
    s.duration_ns = static_cast<int64_t>(r.below(3)) * 10 * sec;
    if (r.chance(60)) {
      s.id_hi = 1 + r.below(2);
      s.id_lo = r.below(3);
    }
    const size_t n_samples = r.below(6);  // 0: a row without samples
    for (size_t k = 0; k < n_samples; ++k) {
      s.sample_stacks.push_back(static_cast<uint32_t>(r.below(n_stacks)));
      s.sample_values.push_back(static_cast<int64_t>(r.below(100)) - 10);
    }
    b.series.push_back(std::move(s));
  }
  return b;
}

/// A block from a few random batches. With `shared`, some batches are copies of earlier ones
/// (replicas, within a block or across blocks) and new ones are added to it.
block_data random_block(rnd& r, std::vector<ingest_batch>* shared = nullptr) {
  head h;
  const size_t n = 1 + r.below(4);
  for (size_t i = 0; i < n; ++i) {
    if (shared != nullptr && !shared->empty() && r.chance(40)) {
      h.append((*shared)[r.below(shared->size())]);
      continue;
    }
    ingest_batch b = random_batch(r);
    h.append(b);
    if (shared != nullptr) shared->push_back(std::move(b));
  }
  return h.seal();
}

std::vector<const block_data*> ptrs(const std::vector<block_data>& v) {
  std::vector<const block_data*> out;
  for (const auto& b : v) out.push_back(&b);
  return out;
}

// ---- real profiles
// -------------------------------------------------------------------------------

/// Normalizes one real profile into its own batch.
ingest_batch batch_of(const std::string& rel, const std::string& app, int64_t time_ns,
                      uint64_t id_hi = 0, uint64_t id_lo = 0) {
  auto l = load_profile(testdata_dir() + "/" + rel);
  if (l == nullptr) return {};
  ingest_meta m;
  m.labels = *parse_app_name(app);
  m.from = ingest_meta::source::ingest;
  m.time_ns = time_ns;
  m.id_hi = id_hi;
  m.id_lo = id_lo;
  batch_builder b;
  EXPECT_TRUE(b.add(l->p, m).ok()) << rel;
  return b.finish();
}

std::vector<std::string> real_files() {
  std::vector<std::string> out;
  for (const std::string dir : {"go", "node"})
    for (const auto& e : std::filesystem::directory_iterator(testdata_dir() + "/" + dir))
      if (e.path().filename().string().ends_with(".pb.gz"))
        out.push_back(dir + "/" + e.path().filename().string());
  std::sort(out.begin(), out.end());
  return out;
}

/// Every real profile, spread over `n` blocks, at times 20 s apart over ~2 hours, two apps.
std::vector<block_data> real_blocks(size_t n) {
  std::vector<head> heads(n);
  const auto files = real_files();
  EXPECT_GE(files.size(), 20u);
  for (size_t i = 0; i < files.size(); ++i) {
    const std::string app = i % 3 == 0 ? "shop{env=prod}" : "shop{env=dev}";
    heads[i % n].append(
        batch_of(files[i], app, t0 + static_cast<int64_t>(i) * 370 * sec, 0, i + 1));
  }
  std::vector<block_data> out;
  for (auto& h : heads) out.push_back(h.seal());
  return out;
}

// ---- tests
// ---------------------------------------------------------------------------------------

/// Case `seed` of the random merge tests: 1, 2 or 5 random blocks sharing batches, plain or
/// rolled up by the minute or hour, with or without de-duplication, sometimes a time range.
merge_options random_merge(uint64_t seed, std::vector<block_data>& blocks) {
  rnd r(seed);
  std::vector<ingest_batch> shared;
  const size_t n = std::array<size_t, 3>{1, 2, 5}[seed % 3];
  for (size_t i = 0; i < n; ++i) blocks.push_back(random_block(r, &shared));
  merge_options o;
  o.bucket_ns = std::array<int64_t, 3>{0, 60 * sec, 3600 * sec}[(seed / 3) % 3];
  o.dedupe = (seed / 9) % 4 != 0;
  if (r.chance(30)) {
    o.start_ns = random_time(r);
    o.end_ns = o.start_ns + static_cast<int64_t>(r.below(4000)) * sec;
  }
  return o;
}

TEST(compact, random_blocks_match_the_model) {
  for (uint64_t seed = 0; seed < 300; ++seed) {
    SCOPED_TRACE("seed " + std::to_string(seed));
    std::vector<block_data> blocks;
    const merge_options o = random_merge(seed, blocks);
    merge_and_check(ptrs(blocks), o);
    if (HasFailure()) return;
  }
}

TEST(compact, merge_is_idempotent_and_associative_by_content) {
  rnd r(7);
  std::vector<ingest_batch> shared;
  std::vector<block_data> blocks;
  for (int i = 0; i < 5; ++i) blocks.push_back(random_block(r, &shared));
  const auto all = ptrs(blocks);
  merge_options o;
  auto whole = merge_blocks(all, o);
  ASSERT_TRUE(whole.ok());
  // ((0,1),(2,3,4)) == (0..4), and merging a merged block again changes nothing.
  auto left = merge_blocks(std::vector<const block_data*>{all[0], all[1]}, o);
  auto right = merge_blocks(std::vector<const block_data*>{all[2], all[3], all[4]}, o);
  ASSERT_TRUE(left.ok() && right.ok());
  auto nested = merge_blocks(std::vector<const block_data*>{&*left, &*right}, o);
  ASSERT_TRUE(nested.ok());
  EXPECT_EQ(canon(*nested), canon(*whole));
  auto again = merge_blocks(std::vector<const block_data*>{&*whole}, o);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(canon(*again), canon(*whole));
  EXPECT_EQ(again->stacks.size(), whole->stacks.size());
  EXPECT_EQ(again->syms.strings.size(), whole->syms.strings.size());
}

TEST(compact, real_profiles_merge_of_1_2_5_blocks) {
  for (size_t n : {1, 2, 5}) {
    SCOPED_TRACE("blocks " + std::to_string(n));
    const auto blocks = real_blocks(n);
    merge_options o;
    block_data out = merge_and_check(ptrs(blocks), o);
    size_t rows = 0;
    for (const auto& b : blocks) rows += b.profiles.size();
    EXPECT_EQ(out.profiles.size(), rows);
    // The merged tree is no larger than the inputs' together, and smaller when they share code.
    size_t nodes = 0;
    for (const auto& b : blocks) nodes += b.stacks.size() - 1;
    if (n > 1) {
      EXPECT_LT(out.stacks.size() - 1, nodes);
    }
  }
}

TEST(compact, identical_replicas_in_two_blocks_are_stored_once) {
  ingest_batch b = batch_of("go/workpool.cpu.000.pb.gz", "app", t0, 0xabc, 0xdef);
  ASSERT_FALSE(b.series.empty());
  head h1, h2;
  h1.append(b);
  h2.append(b);
  const block_data one = h1.seal(), two = h2.seal();
  const std::vector<const block_data*> in{&one, &two};

  merge_stats st;
  auto r = merge_blocks(in, merge_options{}, &st);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(st.duplicates, b.series.size());
  EXPECT_EQ(st.input_profiles, 2 * b.series.size());
  EXPECT_EQ(st.output_profiles, b.series.size());
  EXPECT_EQ(canon(*r), canon(one));
  EXPECT_EQ(totals_by_series_time(*r), totals_by_series_time(one));
  check_tight(*r);

  // Without de-duplication both copies stay; totals double.
  merge_options keep;
  keep.dedupe = false;
  auto both = merge_blocks(in, keep, &st);
  ASSERT_TRUE(both.ok());
  EXPECT_EQ(st.duplicates, 0u);
  EXPECT_EQ(both->profiles.size(), 2 * b.series.size());
  for (const auto& [k, v] : totals_by_series_time(*both))
    EXPECT_EQ(v, 2 * totals_by_series_time(one).at(k));
  // A replica inside one block is dropped too.
  head h3;
  h3.append(b);
  h3.append(b);
  const block_data inner = h3.seal();
  auto r3 = merge_blocks(std::vector<const block_data*>{&inner}, merge_options{}, &st);
  ASSERT_TRUE(r3.ok());
  EXPECT_EQ(st.duplicates, b.series.size());
  EXPECT_EQ(canon(*r3), canon(one));
}

TEST(compact, only_same_series_same_id_same_time_are_replicas) {
  ingest_batch b = batch_of("go/workpool.heap.pb.gz", "app", t0, 1, 2);
  ingest_batch other_time = batch_of("go/workpool.heap.pb.gz", "app", t0 + 1, 1, 2);
  ingest_batch other_app = batch_of("go/workpool.heap.pb.gz", "app2", t0, 1, 2);
  ingest_batch other_id = batch_of("go/workpool.heap.pb.gz", "app", t0, 1, 3);
  ingest_batch no_id = batch_of("go/workpool.heap.pb.gz", "app", t0, 0, 0);
  head h;
  for (const auto* x : {&b, &other_time, &other_app, &other_id, &no_id, &no_id}) h.append(*x);
  const block_data d = h.seal();
  merge_stats st;
  block_data out = merge_and_check({&d}, merge_options{});
  auto r = merge_blocks(std::vector<const block_data*>{&d}, merge_options{}, &st);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(st.duplicates, 0u);  // id 0/0 rows are never replicas of each other
  EXPECT_EQ(out.profiles.size(), d.profiles.size());
}

TEST(compact, rollups_sum_every_series_per_bucket) {
  const auto blocks = real_blocks(5);
  const auto in = ptrs(blocks);
  for (int64_t bucket : {60 * sec, 3600 * sec}) {
    SCOPED_TRACE("bucket " + std::to_string(bucket / sec) + " s");
    merge_options o;
    o.bucket_ns = bucket;
    block_data out = merge_and_check(in, o);  // flame-graph content per bucket, by path

    // Totals per (series, bucket) equal the inputs' sums, computed independently.
    // Each row spans its bucket's profiles: from the first time to the last end.
    std::map<std::pair<label_set, int64_t>, int64_t> want, first, last_end;
    for (const auto* b : in)
      for (const profile_row& p : b->profiles) {
        const std::pair<label_set, int64_t> k{labels_of(*b, p.series),
                                              floor_bucket(p.time_ns, bucket)};
        want[k] += p.total;
        first.try_emplace(k, p.time_ns);
        first[k] = std::min(first[k], p.time_ns);
        last_end[k] = std::max(last_end[k], p.time_ns + std::max<int64_t>(p.duration_ns, 0));
      }
    std::map<std::pair<label_set, int64_t>, int64_t> got;
    std::set<std::pair<uint32_t, int64_t>> keys;
    for (const profile_row& p : out.profiles) {
      const std::pair<label_set, int64_t> k{labels_of(out, p.series),
                                            floor_bucket(p.time_ns, bucket)};
      got[k] += p.total;
      EXPECT_EQ(p.time_ns, first[k]);
      EXPECT_EQ(p.end_ns(), last_end[k]);
      EXPECT_GE(p.duration_ns, 0);
      EXPECT_EQ(p.id_hi, 0u);
      EXPECT_EQ(p.id_lo, 0u);
      EXPECT_TRUE(keys.insert({p.series, k.second}).second) << "two rows for one bucket";
    }
    EXPECT_EQ(got, want);
    size_t rows = 0;
    for (const auto* b : in) rows += b->profiles.size();
    EXPECT_EQ(out.profiles.size(), want.size());
    if (bucket == 3600 * sec) {
      EXPECT_LT(out.profiles.size(), rows);  // the cpu windows of one program share buckets
    }
  }
}

TEST(compact, rollup_of_replicas_counts_them_once) {
  ingest_batch a = batch_of("go/mapindex.cpu.000.pb.gz", "app", t0 + 5 * sec, 9, 9);
  ingest_batch c = batch_of("go/mapindex.cpu.001.pb.gz", "app", t0 + 15 * sec, 9, 10);
  head h1, h2;
  h1.append(a);
  h1.append(c);
  h2.append(a);  // replica of a
  const block_data b1 = h1.seal(), b2 = h2.seal();
  merge_options o;
  o.bucket_ns = 60 * sec;
  merge_stats st;
  auto r = merge_blocks(std::vector<const block_data*>{&b1, &b2}, o, &st);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(st.duplicates, a.series.size());
  auto want = model({&b1}, o);
  EXPECT_EQ(canon(*r), want.profiles);
  merge_and_check({&b1, &b2}, o);
}

TEST(compact, time_filter_edges) {
  head h;
  const int64_t times[] = {t0 - 1, t0, t0 + 1, t0 + 60 * sec - 1, t0 + 60 * sec, t0 + 60 * sec + 1};
  for (int64_t t : times) h.append(batch_of("go/workpool.goroutine.pb.gz", "app", t));
  const block_data d = h.seal();
  auto times_of = [](const block_data& b) {
    std::multiset<int64_t> s;
    for (const auto& p : b.profiles) s.insert(p.time_ns);
    return s;
  };
  merge_options o;
  o.start_ns = t0;
  o.end_ns = t0 + 60 * sec;
  block_data out = merge_and_check({&d}, o);
  EXPECT_EQ(times_of(out), (std::multiset<int64_t>{t0, t0 + 1, t0 + 60 * sec - 1}));
  EXPECT_EQ(out.min_time_ns, t0);
  EXPECT_EQ(out.max_time_ns, t0 + 60 * sec - 1);

  o.start_ns = o.end_ns = t0;  // empty range
  out = merge_and_check({&d}, o);
  EXPECT_TRUE(out.profiles.empty());
  EXPECT_EQ(out.syms.strings.size(), 1u);  // nothing dragged along
  EXPECT_EQ(out.stacks.size(), 1u);
  EXPECT_TRUE(out.series.empty());

  o.start_ns = t0 + 60 * sec + 1;  // only the last one; the defaults keep everything
  o.end_ns = std::numeric_limits<int64_t>::max();
  EXPECT_EQ(times_of(merge_and_check({&d}, o)), (std::multiset<int64_t>{t0 + 60 * sec + 1}));
  EXPECT_EQ(merge_and_check({&d}, merge_options{}).profiles.size(), std::size(times));

  o.start_ns = t0 + 1;
  o.end_ns = t0;
  auto bad = merge_blocks(std::vector<const block_data*>{&d}, o);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.err().code, errc::bad_time_range);
  merge_options neg;
  neg.bucket_ns = -1;
  auto bad2 = merge_blocks(std::vector<const block_data*>{&d}, neg);
  ASSERT_FALSE(bad2.ok());
  EXPECT_EQ(bad2.err().code, errc::invalid_argument);
}

TEST(compact, filtered_out_profiles_drag_no_symbols_along) {
  head h;
  h.append(batch_of("go/workpool.cpu.000.pb.gz", "go_app", t0));
  h.append(batch_of("node/node.cpu.000.pb.gz", "node_app", t0 + 100 * sec));
  const block_data d = h.seal();
  head only_go;
  only_go.append(batch_of("go/workpool.cpu.000.pb.gz", "go_app", t0));
  const block_data go = only_go.seal();

  merge_options o;
  o.end_ns = t0 + 50 * sec;
  block_data out = merge_and_check({&d}, o);
  EXPECT_EQ(canon(out), canon(go));
  EXPECT_EQ(out.syms.strings.size(), go.syms.strings.size());
  EXPECT_EQ(out.syms.functions.size(), go.syms.functions.size());
  ASSERT_EQ(out.syms.mappings.size(), 1u);  // the Go binary; Node has none
  ASSERT_EQ(go.syms.mappings.size(), 1u);
  EXPECT_EQ(mapping_name(out, 1), mapping_name(go, 1));
  EXPECT_EQ(out.syms.locations.size(), go.syms.locations.size());
  EXPECT_EQ(out.syms.lines.size(), go.syms.lines.size());
  EXPECT_EQ(out.stacks.size(), go.stacks.size());
  EXPECT_EQ(out.series.size(), go.series.size());
  EXPECT_LT(out.syms.strings.size(), d.syms.strings.size());
}

TEST(compact, round_trips_through_segments_with_every_codec) {
  const auto blocks = real_blocks(3);
  for (int64_t bucket : {int64_t{0}, 60 * sec}) {
    merge_options o;
    o.bucket_ns = bucket;
    block_data out = merge_and_check(ptrs(blocks), o);
    const auto want = canon(out);
    for (segment_codec c : all_codecs) {
      SCOPED_TRACE(static_cast<int>(c));
      auto file = encode_segment(out, c, 42);
      ASSERT_TRUE(file.ok()) << file.err().to_string();
      segment_info info;
      auto back = decode_segment(as_bytes(*file), &info);
      ASSERT_TRUE(back.ok()) << back.err().to_string();
      EXPECT_EQ(canon(*back), want);
      EXPECT_EQ(info.profiles, out.profiles.size());
      EXPECT_EQ(info.min_time_ns, out.min_time_ns);
      EXPECT_EQ(info.max_time_ns, out.max_time_ns);
      // Decoded segments are valid merge inputs too.
      auto again = merge_blocks(std::vector<const block_data*>{&*back}, merge_options{});
      ASSERT_TRUE(again.ok());
      EXPECT_EQ(canon(*again), want);
    }
  }
  // Random blocks, including rows without samples and rollups of negative offsets.
  for (uint64_t seed = 0; seed < 30; ++seed) {
    rnd r(1000 + seed);
    std::vector<ingest_batch> shared;
    std::vector<block_data> in;
    for (int i = 0; i < 3; ++i) in.push_back(random_block(r, &shared));
    merge_options o;
    o.bucket_ns = seed % 2 ? 60 * sec : 0;
    block_data out = merge_and_check(ptrs(in), o);
    for (segment_codec c : all_codecs) {
      auto file = encode_segment(out, c, 0);
      ASSERT_TRUE(file.ok()) << file.err().to_string();
      auto back = decode_segment(as_bytes(*file));
      ASSERT_TRUE(back.ok()) << back.err().to_string();
      EXPECT_EQ(canon(*back), canon(out));
    }
  }
}

TEST(compact, empty_inputs_give_an_empty_block) {
  merge_stats st;
  st.duplicates = 99;
  auto none = merge_blocks(std::span<const block_data* const>{}, merge_options{}, &st);
  ASSERT_TRUE(none.ok());
  EXPECT_EQ(st.duplicates, 0u);
  const block_data empty;
  auto two = merge_blocks(std::vector<const block_data*>{&empty, &empty}, merge_options{});
  ASSERT_TRUE(two.ok());
  for (const block_data* d : {&*none, &*two}) {
    check_tight(*d);
    EXPECT_EQ(d->syms.strings, std::vector<std::string>{""});
    EXPECT_EQ(d->stacks.size(), 1u);
    EXPECT_TRUE(d->series.empty() && d->profiles.empty() && d->samples.empty() &&
                d->labels.empty());
    EXPECT_TRUE(d->syms.functions.empty() && d->syms.locations.empty() && d->syms.lines.empty());
    for (segment_codec c : all_codecs) {
      auto file = encode_segment(*d, c, 0);
      ASSERT_TRUE(file.ok());
      auto back = decode_segment(as_bytes(*file));
      ASSERT_TRUE(back.ok());
      EXPECT_TRUE(back->profiles.empty());
    }
  }
}

// A block that is valid but not canonical: two nodes and two locations with the same content, a
// function and a string repeated. The merge folds them, and sums the samples that meet.
block_data non_canonical_block() {
  block_data d;
  d.syms.strings = {"", "main", "main", "x.go", "k", "v"};
  d.syms.functions = {{1, 0, 3, 0}, {2, 0, 3, 0}};
  d.syms.lines = {{0, 7}, {1, 7}};
  d.syms.locations = {{0, 0, 1}, {0, 1, 1}, {0xbeef, 0, 0}};
  d.stacks = {{0, 0}, {0, 0}, {0, 1}, {1, 2}, {2, 2}};
  d.labels = {{4, 5}, {4, 5}};
  d.series = {{0, 1}, {1, 1}};
  d.samples = {{3, 10}, {4, 5}, {1, 1}, {2, 2}};
  d.profiles = {profile_row{0, 100, 0, 15, 0, 2, 0, 0}, profile_row{1, 100, 0, 3, 2, 2, 0, 0}};
  d.min_time_ns = d.max_time_ns = 100;
  return d;
}

TEST(compact, duplicates_inside_an_input_are_folded_and_summed) {
  const block_data d = non_canonical_block();
  ASSERT_TRUE(encode_segment(d, segment_codec::none, 0).ok());  // the writer accepts it
  block_data out = merge_and_check({&d}, merge_options{});
  EXPECT_EQ(out.syms.strings.size(), 5u);  // "", main, x.go, k, v
  EXPECT_EQ(out.syms.functions.size(), 1u);
  EXPECT_EQ(out.syms.locations.size(), 2u);
  EXPECT_EQ(out.stacks.size(), 3u);  // root, main, main -> 0xbeef
  EXPECT_EQ(out.series.size(), 1u);
  ASSERT_EQ(out.profiles.size(), 2u);
  EXPECT_EQ(out.profiles[0].sample_count, 1u);  // 10 + 5 on one node
  EXPECT_EQ(out.profiles[0].total, 15);
  EXPECT_EQ(int64_t{out.samples[out.profiles[0].sample_begin].value}, 15);
  merge_options o;
  o.bucket_ns = 1000;
  out = merge_and_check({&d}, o);
  ASSERT_EQ(out.profiles.size(), 1u);
  EXPECT_EQ(out.profiles[0].total, 18);
  EXPECT_EQ(out.profiles[0].sample_count, 2u);
}

// Span samples and periods: a kept profile keeps them (span samples on input nodes that become one
// output node are summed), a replica's are dropped with it, a rollup row has no span samples and
// its profiles' largest period; all of it survives a segment.
/// non_canonical_block with span samples and periods; profile 0 has a non-zero id.
block_data block_with_spans() {
  block_data d = non_canonical_block();
  d.profiles[0].id_hi = 1;  // a replica below has the same id
  d.spans = {{3, 0xa, 4}, {4, 0xa, 3}, {4, 0xb, 1}, {2, 0xa, 2}};
  d.profiles[0].span_begin = 0;
  d.profiles[0].span_count = 3;
  d.profiles[0].period = 100;
  d.profiles[1].span_begin = 3;
  d.profiles[1].span_count = 1;
  d.profiles[1].period = 250;
  return d;
}

TEST(compact, span_samples_follow_their_profiles_and_rollups_drop_them) {
  block_data d = block_with_spans();
  ASSERT_TRUE(encode_segment(d, segment_codec::none, 0).ok());
  block_data replica = d;
  for (auto& x : replica.spans) x.value *= 10;

  block_data out = merge_and_check({&d, &replica}, merge_options{});
  ASSERT_EQ(out.profiles.size(), 3u);  // profile 0 once, profile 1 (id 0/0) twice
  auto spans_of = [&](const profile_row& p) {
    std::vector<std::pair<uint64_t, int64_t>> v;
    for (uint32_t k = p.span_begin; k < p.span_begin + p.span_count; ++k)
      v.push_back({out.spans[k].span_id, out.spans[k].value});
    return v;
  };
  EXPECT_EQ(spans_of(out.profiles[0]), (std::vector<std::pair<uint64_t, int64_t>>{{0xa, 7}, {0xb, 1}}));
  EXPECT_EQ(out.spans[out.profiles[0].span_begin].stack, out.samples[out.profiles[0].sample_begin].stack);
  EXPECT_EQ(out.profiles[0].period, 100);
  EXPECT_EQ(spans_of(out.profiles[1]), (std::vector<std::pair<uint64_t, int64_t>>{{0xa, 2}}));
  EXPECT_EQ(spans_of(out.profiles[2]), (std::vector<std::pair<uint64_t, int64_t>>{{0xa, 20}}));
  EXPECT_EQ(out.profiles[2].period, 250);

  auto file = encode_segment(out, segment_codec::zstd, 0);
  ASSERT_TRUE(file.ok()) << file.err().to_string();
  auto back = decode_segment(as_bytes(*file));
  ASSERT_TRUE(back.ok()) << back.err().to_string();
  int64_t span_sum = 0;
  for (const auto& x : back->spans) span_sum += x.value;
  EXPECT_EQ(span_sum, 7 + 1 + 2 + 20);

  merge_options o;
  o.bucket_ns = 1000;
  out = merge_and_check({&d}, o);
  ASSERT_EQ(out.profiles.size(), 1u);
  EXPECT_TRUE(out.spans.empty());
  EXPECT_EQ(out.profiles[0].span_count, 0u);
  EXPECT_EQ(out.profiles[0].period, 250);
  EXPECT_EQ(out.profiles[0].total, 18);  // the samples are unchanged by spans
}

// Mappings are remapped like the other symbols: equal ones from different inputs (or within one)
// become one, a location keeps its binary, and only referenced mappings reach the output.
TEST(compact, mappings_are_remapped_and_only_referenced_ones_kept) {
  block_data a = non_canonical_block();
  a.syms.strings.push_back("/bin/app");  // 6
  a.syms.strings.push_back("b1d");       // 7
  a.syms.mappings = {{0x400000, 0x500000, 0, 6, 7, mapping_has_functions},
                     {0x900000, 0x901000, 0, 7, 0, 0},  // referenced by nobody
                     {0x400000, 0x500000, 0, 6, 7, mapping_has_functions}};  // = mapping 1
  a.syms.locations[0].mapping = 1;
  a.syms.locations[1].mapping = 3;
  a.syms.locations[2].mapping = 0;
  ASSERT_TRUE(encode_segment(a, segment_codec::none, 0).ok());
  block_data b;  // another input: the same binary with other ids, and one more
  b.syms.strings = {"", "/lib/libc.so", "/bin/app", "b1d", "f", "k", "v"};
  b.syms.mappings = {{0x7f0000, 0x7f1000, 0x1000, 1, 0, mapping_flags_all},
                     {0x400000, 0x500000, 0, 2, 3, mapping_has_functions}};
  b.syms.functions = {{4, 0, 0, 0}};
  b.syms.lines = {{0, 1}};
  b.syms.locations = {{0, 0, 1, 2}, {0x7f0010, 0, 0, 1}};
  b.stacks = {{0, 0}, {0, 0}, {1, 1}};
  b.labels = {{5, 6}};
  b.series = {{0, 1}};
  b.samples = {{2, 4}};
  b.profiles = {profile_row{0, 200, 0, 4, 0, 1, 0, 0}};
  b.min_time_ns = b.max_time_ns = 200;
  ASSERT_TRUE(encode_segment(b, segment_codec::none, 0).ok());

  block_data out = merge_and_check({&a, &b}, merge_options{});
  ASSERT_EQ(out.syms.mappings.size(), 2u);  // /bin/app once, libc; not the unreferenced one
  std::set<std::string> names;
  for (const auto& m : out.syms.mappings) names.insert(out.syms.strings[m.filename]);
  EXPECT_EQ(names, (std::set<std::string>{"/bin/app", "/lib/libc.so"}));
  // Locations 0 and 1 of `a` were equal but for their function's string id: one location now.
  size_t in_app = 0, in_libc = 0, in_none = 0;
  for (const auto& l : out.syms.locations) {
    const std::string bin = l.mapping ? out.syms.strings[out.syms.mappings[l.mapping - 1].filename] : "";
    (bin == "/bin/app" ? in_app : bin.empty() ? in_none : in_libc)++;
  }
  EXPECT_EQ(in_app, 2u);  // main (from a) and f (from b)
  EXPECT_EQ(in_libc, 1u);
  EXPECT_EQ(in_none, 1u);  // 0xbeef
  // And through a segment.
  auto file = encode_segment(out, segment_codec::zstd, 0);
  ASSERT_TRUE(file.ok()) << file.err().to_string();
  auto back = decode_segment(as_bytes(*file));
  ASSERT_TRUE(back.ok()) << back.err().to_string();
  EXPECT_EQ(back->syms.mappings, out.syms.mappings);
  EXPECT_EQ(canon(*back), canon(out));
}

TEST(compact, broken_inputs_fail_without_reading_out_of_bounds) {
  const auto expect_invalid = [](const block_data& d) {
    auto r = merge_blocks(std::vector<const block_data*>{&d}, merge_options{});
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.err().code, errc::invalid_argument);
    EXPECT_NE(r.err().message.find("input 0"), std::string::npos) << r.err().message;
  };
  const block_data good = non_canonical_block();
  block_data d = good;
  d.samples[0].stack = 99;
  expect_invalid(d);
  d = good;
  d.samples[0].stack = 0;
  expect_invalid(d);
  d = good;
  d.stacks[3].parent = 4;
  expect_invalid(d);
  d = good;
  d.stacks[1].location = 9;
  expect_invalid(d);
  d = good;
  d.syms.locations[0].line_count = 9;
  expect_invalid(d);
  d = good;
  d.syms.lines[0].function = 9;
  expect_invalid(d);
  d = good;
  d.syms.locations[0].mapping = 1;  // good has no mappings
  expect_invalid(d);
  d = good;
  d.syms.mappings.push_back({0, 0, 0, 99, 0, 0});
  d.syms.locations[0].mapping = 1;
  expect_invalid(d);
  d = good;
  d.syms.mappings.push_back({0, 0, 0, 0, 99, 0});
  d.syms.locations[0].mapping = 1;
  expect_invalid(d);
  d = good;
  d.syms.functions[0].name = 99;
  expect_invalid(d);
  d = good;
  d.labels[0].value = 99;
  expect_invalid(d);
  d = good;
  d.series[0].label_count = 5;
  expect_invalid(d);
  d = good;
  d.profiles[0].series = 7;
  expect_invalid(d);
  d = good;
  d.profiles[1].sample_count = 7;
  expect_invalid(d);
}

// ---- merge_segments: the streaming form over encoded inputs
// ------------------------------------------------------------------------

/// Per row, what canon leaves out: (labels, time, id, period, span samples by path and span id).
using span_key = std::tuple<label_set, int64_t, uint64_t, uint64_t, int64_t,
                            std::map<std::pair<path, uint64_t>, int64_t>>;
std::multiset<span_key> spans_and_periods(const block_data& d) {
  std::multiset<span_key> out;
  for (const profile_row& p : d.profiles) {
    std::map<std::pair<path, uint64_t>, int64_t> spans;
    for (uint32_t k = p.span_begin; k < p.span_begin + p.span_count; ++k)
      spans[{path_of(d, d.spans[k].stack), d.spans[k].span_id}] += d.spans[k].value;
    out.insert({labels_of(d, p.series), p.time_ns, p.id_hi, p.id_lo, p.period, std::move(spans)});
  }
  return out;
}

/// Encodes `in` (codecs in turn), loads them with decode_segment_columns, merges them with
/// merge_segments and checks that the result, written with encode_segment and read back, has
/// merge_blocks' content and stats. Returns the decoded output.
block_data stream_and_check(const std::vector<const block_data*>& in, const merge_options& o) {
  std::vector<segment_columns> cols;
  for (size_t i = 0; i < in.size(); ++i) {
    auto file = encode_segment(*in[i], all_codecs[i % 3], i + 1);
    EXPECT_TRUE(file.ok()) << file.err().to_string();
    if (!file.ok()) return {};
    auto c = decode_segment_columns(as_bytes(*file));
    EXPECT_TRUE(c.ok()) << c.err().to_string();
    if (!c.ok()) return {};
    EXPECT_TRUE(c->block().samples.empty());
    cols.push_back(std::move(*c));
  }
  std::vector<const segment_columns*> cp;
  for (const auto& c : cols) cp.push_back(&c);
  merge_stats want_st, st;
  auto want = merge_blocks(in, o, &want_st);
  EXPECT_TRUE(want.ok()) << want.err().to_string();
  auto got = merge_segments(cp, o, &st);
  EXPECT_TRUE(got.ok()) << got.err().to_string();
  if (!want.ok() || !got.ok()) return {};
  EXPECT_TRUE(got->block.samples.empty());
  EXPECT_EQ(got->samples.count, want->samples.size());
  EXPECT_EQ(st.input_profiles, want_st.input_profiles);
  EXPECT_EQ(st.output_profiles, want_st.output_profiles);
  EXPECT_EQ(st.duplicates, want_st.duplicates);
  EXPECT_EQ(st.input_samples, want_st.input_samples);
  EXPECT_EQ(st.output_samples, want_st.output_samples);
  EXPECT_EQ(got->block.stacks.size(), want->stacks.size());
  EXPECT_EQ(got->block.series.size(), want->series.size());
  EXPECT_EQ(got->block.syms.strings.size(), want->syms.strings.size());
  segment_info meta;
  meta.level = 1;
  meta.block_id = 77;
  meta.rollup_step_ns = o.bucket_ns;
  for (size_t i = 0; i < in.size(); ++i) meta.sources.push_back(i + 1);
  auto file = encode_segment(got->block, got->samples, segment_codec::zstd, meta, 1);
  EXPECT_TRUE(file.ok()) << file.err().to_string();
  if (!file.ok()) return {};
  segment_info info;
  auto back = decode_segment(as_bytes(*file), &info);
  EXPECT_TRUE(back.ok()) << back.err().to_string();
  if (!back.ok()) return {};
  EXPECT_EQ(canon(*back), canon(*want));
  EXPECT_EQ(spans_and_periods(*back), spans_and_periods(*want));
  EXPECT_EQ(info.samples, want->samples.size());
  EXPECT_EQ(info.profiles, want->profiles.size());
  EXPECT_EQ(info.min_time_ns, want->min_time_ns);
  EXPECT_EQ(info.max_time_ns, want->max_time_ns);
  EXPECT_EQ(info.sources, meta.sources);
  return std::move(*back);
}

TEST(compact_stream, random_blocks_match_merge_blocks) {
  for (uint64_t seed = 0; seed < 150; ++seed) {
    SCOPED_TRACE("seed " + std::to_string(seed));
    std::vector<block_data> blocks;
    const merge_options o = random_merge(5000 + seed, blocks);
    stream_and_check(ptrs(blocks), o);
    if (HasFailure()) return;
  }
}

TEST(compact_stream, real_profiles_plain_and_rolled_up) {
  const auto blocks = real_blocks(3);
  for (int64_t bucket : {int64_t{0}, 60 * sec, 3600 * sec}) {
    SCOPED_TRACE(bucket);
    merge_options o;
    o.bucket_ns = bucket;
    stream_and_check(ptrs(blocks), o);
  }
  // A merged block merged again (the L1 -> L2 step) keeps its content.
  auto l1 = merge_blocks(ptrs(blocks), merge_options{});
  ASSERT_TRUE(l1.ok());
  stream_and_check({&*l1, &blocks[0]}, merge_options{});
}

TEST(compact_stream, duplicates_spans_and_periods_inside_an_input) {
  const block_data d = block_with_spans();
  block_data replica = d;
  for (auto& x : replica.spans) x.value *= 10;
  for (int64_t bucket : {int64_t{0}, int64_t{1000}}) {
    merge_options o;
    o.bucket_ns = bucket;
    block_data out = stream_and_check({&d, &replica}, o);
    if (bucket == 0) {
      // Profile 0 once with (node, 0xa) summed, profile 1 (id 0/0) from both inputs.
      EXPECT_EQ(out.spans.size(), 4u);
      ASSERT_EQ(out.profiles.size(), 3u);
    } else {
      EXPECT_TRUE(out.spans.empty());
      ASSERT_EQ(out.profiles.size(), 1u);
      EXPECT_EQ(out.profiles[0].period, 250);
    }
  }
}

// roll_up: each step's rollup of a merged block (the 1 h one computed from the 1 min one, a 90 s
// one from the block itself) has the content of rolling the inputs up directly.
TEST(compact_stream, roll_up_matches_rolling_up_the_inputs) {
  rnd r(77);
  std::vector<ingest_batch> shared;
  std::vector<block_data> blocks = real_blocks(2);
  for (int i = 0; i < 3; ++i) blocks.push_back(random_block(r, &shared));
  std::vector<segment_columns> cols;
  for (const auto& b : blocks) {
    auto f = encode_segment(b, segment_codec::lz4, 1);
    ASSERT_TRUE(f.ok());
    auto c = decode_segment_columns(as_bytes(*f));
    ASSERT_TRUE(c.ok());
    cols.push_back(std::move(*c));
  }
  std::vector<const segment_columns*> cp;
  for (const auto& c : cols) cp.push_back(&c);
  auto merged = merge_segments(cp, merge_options{});
  ASSERT_TRUE(merged.ok());
  const std::vector<int64_t> steps = {60 * sec, 3600 * sec, 90 * sec};
  auto rolled = roll_up(*merged, steps);
  ASSERT_TRUE(rolled.ok()) << rolled.err().to_string();
  ASSERT_EQ(rolled->size(), steps.size());
  for (size_t k = 0; k < steps.size(); ++k) {
    SCOPED_TRACE(steps[k]);
    merge_options o;
    o.bucket_ns = steps[k];
    auto want = merge_blocks(ptrs(blocks), o);
    ASSERT_TRUE(want.ok());
    const merged_segment& m = (*rolled)[k];
    auto f = encode_segment(m.block, m.samples, segment_codec::none, segment_info{});
    ASSERT_TRUE(f.ok()) << f.err().to_string();
    auto back = decode_segment(as_bytes(*f));
    ASSERT_TRUE(back.ok()) << back.err().to_string();
    EXPECT_EQ(canon(*back), canon(*want));
    EXPECT_EQ(spans_and_periods(*back), spans_and_periods(*want));
  }
  auto none = roll_up(*merged, {});
  ASSERT_TRUE(none.ok());
  EXPECT_TRUE(none->empty());
  auto bad = roll_up(*merged, std::vector<int64_t>{60 * sec, 0});
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.err().code, errc::invalid_argument);
  // Pairs that do not fit the block's counts are refused.
  encoded_samples short_pairs = merged->samples;
  short_pairs.values.pop_back();
  auto cut = make_segment_columns(merged->block, short_pairs);
  ASSERT_FALSE(cut.ok());
  EXPECT_EQ(cut.err().code, errc::invalid_argument);
}

TEST(compact_stream, empty_inputs) {
  const block_data empty;
  block_data out = stream_and_check({&empty, &empty}, merge_options{});
  EXPECT_TRUE(out.profiles.empty());
  auto none = merge_segments(std::span<const segment_columns* const>{}, merge_options{});
  ASSERT_TRUE(none.ok());
  EXPECT_EQ(none->samples.count, 0u);
  EXPECT_TRUE(encode_segment(none->block, none->samples, segment_codec::zstd, segment_info{}).ok());
}

/// A segment whose samples section holds a bad pair, CRCs recomputed: built by encoding a block
/// whose pair is valid and patching the uncompressed section (codec none) in place.
TEST(compact_stream, a_damaged_pair_is_corrupted_naming_the_input) {
  const auto blocks = real_blocks(2);
  std::vector<std::string> files;
  for (const auto& b : blocks) {
    auto f = encode_segment(b, segment_codec::none, 1);
    ASSERT_TRUE(f.ok());
    files.push_back(std::move(*f));
  }
  auto listed = read_segment_sections(as_bytes(files[1]));
  ASSERT_TRUE(listed.ok()) << listed.err().to_string();
  const segment_section_info* samples = nullptr;
  for (const auto& s : *listed)
    if (s.name == "samples") samples = &s;
  ASSERT_NE(samples, nullptr);
  ASSERT_EQ(samples->codec, segment_codec::none);
  // A record is len(4) id(1) codec(1) raw_len(4) body crc32c(4), the CRC over all before it.
  const auto flip = [&](std::string& f, uint64_t at, uint8_t mask) {
    const uint64_t body = samples->offset + 10, len = samples->stored_bytes;
    f[body + at] = static_cast<char>(f[body + at] ^ mask);
    const uint32_t crc = crc32c(as_bytes(f).subspan(samples->offset, 10 + len));
    for (int i = 0; i < 4; ++i) f[body + len + i] = static_cast<char>(crc >> (8 * i));
  };
  // Bytes of the section flipped in turn (sampled; one mask keeps every varint's length, one
  // breaks it), CRC fixed up so only the content checks can catch it. The streaming path must
  // give decode_segment's verdict: corrupted (from the loader, or from merge_segments naming
  // input 1) exactly when decode_segment refuses the file, and otherwise the content
  // merge_blocks gives on the decoded file (a changed stack id can leave a valid file).
  auto c0 = decode_segment_columns(as_bytes(files[0]));
  ASSERT_TRUE(c0.ok());
  size_t by_loader = 0, by_merge = 0, valid = 0;
  for (uint64_t at = 0; at < samples->raw_bytes; at += 1 + samples->raw_bytes / 80)
    for (uint8_t mask : {uint8_t{0x5a}, uint8_t{0x80}}) {
      SCOPED_TRACE("byte " + std::to_string(at) + " mask " + std::to_string(mask));
      std::string f = files[1];
      flip(f, at, mask);
      auto full = decode_segment(as_bytes(f));
      auto c1 = decode_segment_columns(as_bytes(f));
      if (!c1.ok()) {
        EXPECT_EQ(c1.err().code, errc::corrupted) << c1.err().to_string();
        EXPECT_FALSE(full.ok());
        ++by_loader;
        continue;
      }
      auto m = merge_segments(std::vector<const segment_columns*>{&*c0, &*c1}, merge_options{});
      if (!m.ok()) {
        EXPECT_EQ(m.err().code, errc::corrupted) << m.err().to_string();
        EXPECT_NE(m.err().message.find("input 1"), std::string::npos) << m.err().message;
        EXPECT_FALSE(full.ok());
        ++by_merge;
        continue;
      }
      ++valid;
      ASSERT_TRUE(full.ok()) << full.err().to_string();
      auto want = merge_blocks(std::vector<const block_data*>{&blocks[0], &*full}, merge_options{});
      ASSERT_TRUE(want.ok());
      auto file = encode_segment(m->block, m->samples, segment_codec::none, segment_info{});
      ASSERT_TRUE(file.ok()) << file.err().to_string();
      auto back = decode_segment(as_bytes(*file));
      ASSERT_TRUE(back.ok()) << back.err().to_string();
      EXPECT_EQ(canon(*back), canon(*want));
    }
  EXPECT_GT(by_loader, 0u);  // a varint that runs past its column
  EXPECT_GT(by_merge, 0u);   // a stack out of range or repeated, a value that breaks a total
  EXPECT_GT(valid, 0u);
}

TEST(compact_stream, encode_from_columns_rejects_what_it_cannot_write) {
  const auto blocks = real_blocks(1);
  auto file = encode_segment(blocks[0], segment_codec::lz4, 1);
  ASSERT_TRUE(file.ok());
  auto c = decode_segment_columns(as_bytes(*file));
  ASSERT_TRUE(c.ok());
  auto m = merge_segments(std::vector<const segment_columns*>{&*c}, merge_options{});
  ASSERT_TRUE(m.ok());
  ASSERT_GE(m->block.profiles.size(), 2u);
  {
    merged_segment bad = *m;  // counts disagree with the pairs
    bad.samples.count += 1;
    auto r = encode_segment(bad.block, bad.samples, segment_codec::none, segment_info{});
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.err().code, errc::invalid_argument);
  }
  {
    merged_segment bad = *m;  // rows out of order
    std::swap(bad.block.profiles.front(), bad.block.profiles.back());
    auto r = encode_segment(bad.block, bad.samples, segment_codec::none, segment_info{});
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.err().code, errc::invalid_argument);
  }
  {
    merged_segment bad = *m;  // pairs both given and encoded
    bad.block.samples.push_back({1, 1});
    auto r = encode_segment(bad.block, bad.samples, segment_codec::none, segment_info{});
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.err().code, errc::invalid_argument);
  }
}

// Not a benchmark (no time limit): measures the merge on a realistic compaction and prints it.
TEST(compact, throughput_on_perturbed_real_cpu_profiles) {
  std::vector<ingest_batch> base;
  for (const char* f :
       {"go/mapindex.cpu.000.pb.gz", "go/mapindex.cpu.001.pb.gz", "go/mapindex.cpu.002.pb.gz",
        "go/workpool.cpu.000.pb.gz", "go/workpool.cpu.001.pb.gz", "go/workpool.cpu.002.pb.gz"})
    base.push_back(batch_of(f, "app", 0));
  // 100 copies of every profile: 10 blocks (one per 6-minute head) of 10 copies each, values
  // perturbed, 4 pods, timestamps 10 s apart, fresh ids, and every 10th copy a replica.
  rnd r(42);
  constexpr int copies = 100, n_blocks = 10;
  std::vector<head> heads(n_blocks);
  for (int c = 0; c < copies; ++c) {
    for (size_t f = 0; f < base.size(); ++f) {
      ingest_batch b = base[f];
      for (ingest_series& s : b.series) {
        s.labels.push_back({"pod", "pod-" + std::to_string(r.below(4))});
        std::sort(s.labels.begin(), s.labels.end());
        s.time_ns =
            t0 + (c * static_cast<int64_t>(base.size()) + static_cast<int64_t>(f)) * 10 * sec;
        s.id_hi = static_cast<uint64_t>(c) + 1;
        s.id_lo = f;
        for (int64_t& v : s.sample_values)
          v = v * static_cast<int64_t>(1 + r.below(3)) + static_cast<int64_t>(r.below(7));
      }
      heads[c * n_blocks / copies].append(b);
      if (c % 10 == 9) heads[(c * n_blocks / copies + 1) % n_blocks].append(b);
    }
  }
  std::vector<block_data> blocks;
  for (auto& h : heads) blocks.push_back(h.seal());
  uint64_t replicas = 0;
  for (const auto& b : base) replicas += (copies / 10) * b.series.size();

  for (segment_codec codec : {segment_codec::lz4, segment_codec::zstd}) {
    size_t bytes = 0;
    std::vector<block_data> decoded;
    for (const auto& b : blocks) {
      auto f = encode_segment(b, codec, 0);
      ASSERT_TRUE(f.ok()) << f.err().to_string();
      bytes += f->size();
      auto d = decode_segment(as_bytes(*f));
      ASSERT_TRUE(d.ok());
      decoded.push_back(std::move(*d));
    }
    const auto in = ptrs(decoded);
    for (int64_t bucket : {int64_t{0}, 3600 * sec}) {
      merge_options o;
      o.bucket_ns = bucket;
      merge_stats st;
      double best = 1e99;
      size_t out_bytes = 0;
      for (int rep = 0; rep < 3; ++rep) {
        const auto start = std::chrono::steady_clock::now();
        auto out = merge_blocks(in, o, &st);
        const double s =
            std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
        ASSERT_TRUE(out.ok());
        best = std::min(best, s);
        if (rep == 0) {
          check_tight(*out);
          auto f = encode_segment(*out, segment_codec::zstd, 0);
          ASSERT_TRUE(f.ok());
          out_bytes = f->size();
        }
      }
      EXPECT_EQ(st.duplicates, replicas);
      std::printf(
          "[ compact  ] %s inputs: %zu blocks, %.2f MB encoded, %llu rows, %llu samples; bucket "
          "%lld s: "
          "%llu rows out (%llu replicas), %.1f ms, %.0f MB/s, %.2f M samples/s; output %.2f MB "
          "zstd\n",
          codec == segment_codec::lz4 ? "lz4" : "zstd", blocks.size(), bytes / 1e6,
          static_cast<unsigned long long>(st.input_profiles),
          static_cast<unsigned long long>(st.input_samples), static_cast<long long>(bucket / sec),
          static_cast<unsigned long long>(st.output_profiles),
          static_cast<unsigned long long>(st.duplicates), best * 1e3, bytes / 1e6 / best,
          st.input_samples / 1e6 / best, out_bytes / 1e6);
    }
  }
}

}  // namespace
}  // namespace hearth
