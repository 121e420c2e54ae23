#include "query/pprof_export.hpp"

#include <gtest/gtest.h>

#include <map>
#include <numeric>
#include <set>
#include <tuple>

#include "format/pprof.hpp"
#include "query/block_query.hpp"
#include "query/flame_tree.hpp"
#include "query/test_util.hpp"

namespace hearth::query {
namespace {

const std::string cpu = "process_cpu:cpu:nanoseconds:cpu:nanoseconds";

std::vector<uint32_t> cpu_series(const block_data& b) {
  auto m = parse_selector("{__profile_type__=\"" + cpu + "\"}");
  EXPECT_TRUE(m.ok());
  return m.ok() ? select_series(b, *m) : std::vector<uint32_t>{};
}

pprof_options cpu_options(int64_t max_nodes = 0) {
  auto t = parse_profile_type(cpu);
  EXPECT_TRUE(t.ok());
  pprof_options o;
  if (t.ok()) o.type = *t;
  o.period = 10'000'000;
  o.max_nodes = max_nodes;
  return o;
}

pprof_partial select_all(const block_data& b, const pprof_selector& sel = {}) {
  pprof_partial p;
  select_pprof(b, cpu_series(b), 0, INT64_MAX, sel, p);
  return p;
}

/// The flame tree of a rendered pprof, read back through the decoder and the ingest path.
flame_tree tree_of(const std::string& raw) {
  const block_data b = test::block_of_pprof(raw);
  flame_tree t;
  merge_stacks(b, select_series(b, {}), 0, INT64_MAX, t);
  t.finalize();
  return t;
}

flame_tree tree_of(const block_data& b) {
  flame_tree t;
  merge_stacks(b, cpu_series(b), 0, INT64_MAX, t);
  t.finalize();
  return t;
}

TEST(pprof_export, one_real_profile_round_trips_with_the_same_flat_and_cum) {
  const block_data b = test::block_of({{"go/workpool.cpu.000.pb.gz", 5'000'000'000}});
  const pprof_partial p = select_all(b);
  ASSERT_GT(p.samples(), 0u);
  const std::string raw = render_pprof(p, cpu_options());

  auto d = pprof::decode(as_bytes(raw));
  ASSERT_TRUE(d.ok()) << d.err().to_string();
  ASSERT_EQ(d->sample_types.size(), 1u);
  EXPECT_EQ(d->str(d->sample_types[0].type), "cpu");
  EXPECT_EQ(d->str(d->sample_types[0].unit), "nanoseconds");
  EXPECT_EQ(d->str(d->period_type.type), "cpu");
  EXPECT_EQ(d->str(d->period_type.unit), "nanoseconds");
  EXPECT_EQ(d->period, 10'000'000);
  EXPECT_EQ(d->time_nanos, 5'000'000'000);
  EXPECT_GT(d->duration_nanos, 0);
  EXPECT_EQ(d->strings[0], "");
  EXPECT_FALSE(d->mappings.empty());
  int64_t total = 0;
  for (int64_t v : d->values) total += v;
  EXPECT_EQ(total, test::expected_totals("go", "workpool.cpu.000").at("cpu/nanoseconds"));
  // Full fidelity: the same functions (name, system name, file, start line) and locations
  // (lines; the address only for unsymbolized ones: storage drops the address of symbolized
  // locations, format/normalize.cpp) as the input profile.
  auto in = test::load_profile(test::testdata_dir() + "/go/workpool.cpu.000.pb.gz");
  ASSERT_TRUE(in);
  using fn_key = std::tuple<std::string_view, std::string_view, std::string_view, int64_t>;
  const auto functions = [](const pprof::profile& x) {
    std::set<fn_key> out;
    for (const auto& f : x.functions)
      out.insert({x.str(f.name), x.str(f.system_name), x.str(f.filename), f.start_line});
    return out;
  };
  const auto locations = [](const pprof::profile& x) {
    std::set<std::pair<uint64_t, std::vector<std::pair<std::string_view, int64_t>>>> out;
    for (const auto& l : x.locations) {
      std::vector<std::pair<std::string_view, int64_t>> lines;
      for (uint32_t i = 0; i < l.line_count; ++i) {
        const auto& ln = x.lines[l.line_begin + i];
        lines.emplace_back(x.str(x.functions[ln.function_id - 1].name), ln.line);
      }
      out.insert({lines.empty() ? l.address : 0, lines});
    }
    return out;
  };
  EXPECT_EQ(functions(*d), functions(in->p));
  EXPECT_EQ(locations(*d), locations(in->p));
  // Only the mappings that locations use are written.
  ASSERT_FALSE(d->mappings.empty());
  for (const auto& m : d->mappings)
    EXPECT_TRUE(std::any_of(in->p.mappings.begin(), in->p.mappings.end(), [&](const auto& x) {
      return in->p.str(x.filename) == d->str(m.filename) && x.memory_start == m.memory_start &&
             x.memory_limit == m.memory_limit && in->p.str(x.build_id) == d->str(m.build_id);
    }));

  // Per function: the same flat/cum as the input, and as `go tool pprof -top` says.
  const auto out = top_functions(tree_of(raw));
  EXPECT_EQ(out, top_functions(tree_of(b)));
  const auto expected = test::expected_top("go", "workpool.cpu.000", "cpu");
  ASSERT_GT(expected.size(), 10u);
  for (const auto& [name, flat_cum] : expected) {
    // (A named capture: clang 14 cannot capture a structured binding.)
    auto it = std::find_if(out.begin(), out.end(), [&n = name](const auto& s) { return s.name == n; });
    ASSERT_NE(it, out.end()) << name;
    EXPECT_EQ(it->self, flat_cum.first) << name;
    EXPECT_EQ(it->total, flat_cum.second) << name;
  }
}

TEST(pprof_export, partials_of_several_blocks_deduplicate_symbols_and_stacks) {
  const block_data a = test::block_of({{"go/workpool.cpu.000.pb.gz", 1000}});
  const block_data b = test::block_of({{"go/workpool.cpu.001.pb.gz", 2000}});
  const block_data both =
      test::block_of({{"go/workpool.cpu.000.pb.gz", 1000}, {"go/workpool.cpu.001.pb.gz", 2000}});
  pprof_partial merged = select_all(a);
  merge_pprof(merged, select_all(b));
  const pprof_partial whole = select_all(both);
  EXPECT_EQ(merged.samples(), whole.samples());
  EXPECT_EQ(merged.syms.locations.size(), whole.syms.locations.size());
  EXPECT_EQ(merged.syms.functions.size(), whole.syms.functions.size());
  EXPECT_EQ(merged.syms.mappings.size(), whole.syms.mappings.size());
  EXPECT_EQ(merged.profiles, 2u);
  EXPECT_EQ(merged.first_ns, 1000);
  EXPECT_EQ(top_functions(tree_of(render_pprof(merged, cpu_options()))),
            top_functions(tree_of(both)));

  // The same block twice: nothing new but the values.
  pprof_partial twice = select_all(a);
  const size_t locations = twice.syms.locations.size(), samples = twice.samples();
  merge_pprof(twice, select_all(a));
  EXPECT_EQ(twice.syms.locations.size(), locations);
  EXPECT_EQ(twice.samples(), samples);
  EXPECT_EQ(tree_of(render_pprof(twice, cpu_options())).total(), 2 * tree_of(a).total());
}

TEST(pprof_export, go_pgo_keeps_leaf_locations_and_drops_callee_lines) {
  const block_data b = test::block_of({{"go/workpool.cpu.000.pb.gz", 1000}});
  const int64_t total = tree_of(b).total();
  const pprof_partial full = select_all(b);

  pprof_selector sel;
  sel.pgo = go_pgo{2, false};
  sel.call_site = {"no_such_function"};  // ignored with GoPGO
  const pprof_partial kept = select_all(b, sel);
  auto d = pprof::decode(as_bytes(render_pprof(kept, cpu_options())));
  ASSERT_TRUE(d.ok());
  size_t longest = 0;
  for (const auto& s : d->samples) longest = std::max<size_t>(longest, s.loc_count);
  EXPECT_EQ(longest, 2u);
  EXPECT_LT(kept.samples(), full.samples());
  EXPECT_EQ(tree_of(render_pprof(kept, cpu_options())).total(), total);

  sel.pgo = go_pgo{0, true};
  const pprof_partial agg = select_all(b, sel);
  d = pprof::decode(as_bytes(render_pprof(agg, cpu_options())));
  ASSERT_TRUE(d.ok());
  for (const auto& s : d->samples) {
    const auto& leaf = d->locations[d->location_ids[s.loc_begin] - 1];
    ASSERT_GT(leaf.line_count, 0u);
    EXPECT_EQ(d->lines[leaf.line_begin].line, 0);
  }
  EXPECT_LE(agg.samples(), full.samples());
  EXPECT_EQ(tree_of(render_pprof(agg, cpu_options())).total(), total);
}

/// A location by content: its address and its lines' (function name, line), innermost first.
using loc_key = std::pair<uint64_t, std::vector<std::pair<std::string, int64_t>>>;
using stack_sums_by_content = std::map<std::vector<loc_key>, int64_t>;

/// The samples of a rendered pprof by the content of their stacks (leaf first).
stack_sums_by_content sums_of(const std::string& raw) {
  stack_sums_by_content out;
  auto d = pprof::decode(as_bytes(raw));
  EXPECT_TRUE(d.ok());
  if (!d.ok()) return out;
  for (const auto& s : d->samples) {
    std::vector<loc_key> key;
    for (uint32_t k = 0; k < s.loc_count; ++k) {
      const auto& l = d->locations[d->location_ids[s.loc_begin + k] - 1];
      loc_key lk{l.address, {}};
      for (uint32_t i = 0; i < l.line_count; ++i) {
        const auto& ln = d->lines[l.line_begin + i];
        lk.second.emplace_back(std::string(d->strings[d->functions[ln.function_id - 1].name]),
                               ln.line);
      }
      key.push_back(std::move(lk));
    }
    out[key] += d->values[s.value_begin];
  }
  return out;
}

// GoPGO against a model that reads the block's samples one by one: each stack cut to its
// keep_locations leaf-most locations, its leaf's innermost line zeroed with aggregate_callees,
// equal results summed. Shallow and deep cuts, with and without the zeroing.
TEST(pprof_export, go_pgo_matches_a_model_of_every_sample) {
  const block_data b = test::block_of({{"go/workpool.cpu.000.pb.gz", 1000},
                                       {"go/mapindex.cpu.000.pb.gz", 2000},
                                       {"go/workpool.cpu.001.pb.gz", 3000}});
  const std::vector<uint32_t> series = cpu_series(b);
  for (uint32_t keep : {0u, 1u, 2u, 3u, 5u, 8u, 9u, 12u, 40u})
    for (bool zero : {false, true}) {
      SCOPED_TRACE("keep_locations " + std::to_string(keep) + (zero ? ", aggregate_callees" : ""));
      stack_sums_by_content want;
      for (const profile_row& p : b.profiles) {
        if (!std::binary_search(series.begin(), series.end(), p.series)) continue;
        for (uint32_t i = 0; i < p.sample_count; ++i) {
          const sample_rec& x = b.samples[p.sample_begin + i];
          std::vector<loc_key> key;
          for (uint32_t cur = x.stack; cur != 0 && (keep == 0 || key.size() < keep);
               cur = b.stacks[cur].parent) {
            const location_rec& l = b.syms.locations[b.stacks[cur].location];
            loc_key lk{l.address, {}};
            for (uint32_t k = 0; k < l.line_count; ++k) {
              const line_rec& ln = b.syms.lines[l.line_begin + k];
              lk.second.emplace_back(b.syms.strings[b.syms.functions[ln.function].name], ln.line);
            }
            key.push_back(std::move(lk));
          }
          if (zero && !key.front().second.empty()) key.front().second.front().second = 0;
          want[key] += x.value;
        }
      }
      pprof_selector sel;
      sel.pgo = go_pgo{keep, zero};
      EXPECT_EQ(sums_of(render_pprof(select_all(b, sel), cpu_options())), want);
    }
}

TEST(pprof_export, call_site_selects_stacks_under_the_prefix) {
  const block_data b = test::block_of({{"go/workpool.cpu.000.pb.gz", 1000}});
  const flame_tree all = tree_of(b);
  uint32_t top = 0;
  for (uint32_t i = 1; i < all.size(); ++i)
    if (all.nodes()[i].parent == flame_tree::root &&
        (top == 0 || all.nodes()[i].total > all.nodes()[top].total))
      top = i;
  pprof_selector sel;
  sel.call_site = {std::string(all.name_of(top))};
  const flame_tree t = tree_of(render_pprof(select_all(b, sel), cpu_options()));
  EXPECT_EQ(t.total(), all.nodes()[top].total);
}

TEST(pprof_export, max_nodes_cuts_small_subtrees_into_other) {
  // A Node profile: no inlined frames, so every kept frame is a kept call-tree node.
  const block_data b = test::block_of({{"node/node.cpu.000.pb.gz", 1000}});
  auto m = parse_selector(R"({__type__="cpu"})");
  ASSERT_TRUE(m.ok());
  const auto ids = select_series(b, *m);
  flame_tree all;
  merge_stacks(b, ids, 0, INT64_MAX, all);
  all.finalize();
  constexpr int64_t max_nodes = 15;
  ASSERT_GT(all.size(), 2 * max_nodes);
  pprof_partial p;
  select_pprof(b, ids, 0, INT64_MAX, {}, p);
  const std::string raw = render_pprof(p, cpu_options(max_nodes));
  ASSERT_TRUE(pprof::decode(as_bytes(raw)).ok());
  const flame_tree t = tree_of(raw);
  EXPECT_EQ(t.total(), all.total());
  // What remains besides "other": nodes of the original tree at or above the threshold, and
  // "other" only as a leaf.
  std::vector<int64_t> totals;
  for (uint32_t i = 1; i < all.size(); ++i) totals.push_back(all.nodes()[i].total);
  std::nth_element(totals.begin(), totals.begin() + (max_nodes - 1), totals.end(),
                   std::greater<>());
  const int64_t threshold = totals[max_nodes - 1];
  size_t kept = 0, others = 0;
  for (uint32_t i = 1; i < t.size(); ++i) {
    if (t.name_of(i) == "other") {
      ++others;
      EXPECT_EQ(t.nodes()[i].self, t.nodes()[i].total);
      continue;
    }
    ++kept;
    EXPECT_GE(t.nodes()[i].total, threshold) << t.name_of(i);
  }
  EXPECT_GT(others, 0u);
  EXPECT_GE(kept, static_cast<size_t>(max_nodes));
  EXPECT_LE(kept, static_cast<size_t>(std::count_if(
                      all.nodes().begin() + 1, all.nodes().end(),
                      [&](const flame_tree::node& n) { return n.total >= threshold; })));
  // No truncation when the tree is small enough.
  EXPECT_EQ(top_functions(tree_of(render_pprof(p, cpu_options(1 << 20)))), top_functions(all));
}

TEST(pprof_export, empty_selection_renders_a_valid_empty_profile) {
  const pprof_partial empty;
  const std::string raw = render_pprof(empty, cpu_options());
  auto d = pprof::decode(as_bytes(raw));
  ASSERT_TRUE(d.ok());
  EXPECT_TRUE(d->samples.empty());
  EXPECT_EQ(d->str(d->sample_types.at(0).type), "cpu");
}

// A partial from elsewhere (another node) is not trusted: merged or rendered, a node whose parent
// does not precede it or whose location is out of range is left out with what descends from it,
// and arrays of different sizes make the partial count for nothing; the rest survives intact.
TEST(pprof_export, a_malformed_partial_loses_only_its_bad_nodes) {
  const block_data b = test::block_of({{"go/workpool.cpu.000.pb.gz", 1000}});
  const pprof_partial good = select_all(b);
  const auto want = sums_of(render_pprof(good, cpu_options()));
  ASSERT_GT(good.values.size(), 3u);
  // A new leaf under node 1 with a bad location, and a child of it: both dropped.
  pprof_partial bad = good;
  bad.stack_parents.push_back(1);
  bad.stack_locations.push_back(static_cast<uint32_t>(bad.syms.locations.size()) + 7);
  bad.values.push_back(5);
  bad.stack_parents.push_back(static_cast<uint32_t>(bad.values.size()) - 1);
  bad.stack_locations.push_back(0);
  bad.values.push_back(6);
  // A node that names itself as its parent.
  bad.stack_parents.push_back(static_cast<uint32_t>(bad.values.size()));
  bad.stack_locations.push_back(0);
  bad.values.push_back(7);
  EXPECT_EQ(sums_of(render_pprof(bad, cpu_options())), want);
  pprof_partial into;
  merge_pprof(into, good);
  merge_pprof(into, bad);  // merged: every good node counts twice, the bad ones not at all
  auto twice = want;
  for (auto& [k, v] : twice) v *= 2;
  EXPECT_EQ(sums_of(render_pprof(into, cpu_options())), twice);
  pprof_builder adopted;  // adopted whole, then indexed when more comes
  adopted.merge(pprof_partial(bad));
  adopted.merge(good);
  EXPECT_EQ(sums_of(render_pprof(adopted.partial(), cpu_options())), twice);

  pprof_partial uneven = good;
  uneven.stack_locations.pop_back();
  into = pprof_partial();
  merge_pprof(into, good);
  merge_pprof(into, uneven);
  EXPECT_EQ(sums_of(render_pprof(into, cpu_options())), want);
  EXPECT_TRUE(sums_of(render_pprof(
                          pprof_partial{
                              .syms = {}, .stack_parents = {}, .stack_locations = {}, .values = {}},
                          cpu_options()))
                  .empty());
}

}  // namespace
}  // namespace hearth::query

namespace hearth::query {
namespace {

// The exported period is the stored profiles' (the ingested pprof's), the largest when they differ,
// unless the caller overrides it.
TEST(pprof_export, period_comes_from_the_stored_profiles) {
  block_data b = test::block_of({{"go/workpool.cpu.000.pb.gz", 5'000'000'000}});
  pprof_partial p = select_all(b);
  EXPECT_EQ(p.period, 10'000'000);  // Go's CPU profiler samples at 100 Hz
  pprof_options o = cpu_options();
  o.period = 0;
  auto d = pprof::decode(as_bytes(render_pprof(p, o)));
  ASSERT_TRUE(d.ok()) << d.err().to_string();
  EXPECT_EQ(d->period, 10'000'000);

  block_data c = b;
  for (auto& r : c.profiles) r.period = 20'000'000;
  merge_pprof(p, select_all(c));
  EXPECT_EQ(p.period, 20'000'000);
  o.period = 5;
  d = pprof::decode(as_bytes(render_pprof(p, o)));
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(d->period, 5);
}

TEST(pprof_export, span_ids_select_only_the_span_samples) {
  block_data b = test::block_of({{"go/workpool.cpu.000.pb.gz", 5'000'000'000}});
  ASSERT_GE(b.samples.size(), 2u);
  const uint32_t cpu_id = cpu_series(b).at(0);
  auto row = std::find_if(b.profiles.begin(), b.profiles.end(),
                          [&](const profile_row& x) { return x.series == cpu_id; });
  ASSERT_NE(row, b.profiles.end());
  profile_row& r = *row;
  b.spans = {{b.samples[r.sample_begin].stack, 0xa, 3}, {b.samples[r.sample_begin + 1].stack, 0xb, 4}};
  r.span_begin = 0;
  r.span_count = 2;
  pprof_selector sel;
  sel.span_ids = {0xb};
  const pprof_partial p = select_all(b, sel);
  ASSERT_EQ(p.samples(), 1u);
  EXPECT_EQ(std::accumulate(p.values.begin(), p.values.end(), int64_t{0}), 4);
  sel.span_ids = {0xc};
  EXPECT_EQ(select_all(b, sel).samples(), 0u);
}

// A builder hands its tables over with the partial it gives out, and a builder that adopts that
// partial continues from them: the same bytes as one that indexes the partial again. A partial
// changed since it was taken, or shared with a copy, is indexed again.
TEST(pprof_export, a_taken_partial_carries_its_index_to_the_builder_that_adopts_it) {
  const block_data a = test::block_of({{"go/workpool.cpu.000.pb.gz", 1000}});
  const block_data b = test::block_of({{"go/mapindex.cpu.000.pb.gz", 2000}});
  const block_data c = test::block_of({{"go/workpool.cpu.001.pb.gz", 3000}});
  auto taken = [](const block_data& blk) {
    pprof_builder one;
    one.add(blk, cpu_series(blk), 0, INT64_MAX, {});
    return one.take();
  };
  auto without_index = [](pprof_partial p) {
    p.index.reset();
    return p;
  };
  pprof_partial pa = taken(a);
  ASSERT_NE(pa.index, nullptr);
  // Reference: every partial indexed again by content.
  pprof_builder ref;
  ref.merge(without_index(pa));
  ref.merge(without_index(taken(b)));
  ref.add(c, cpu_series(c), 0, INT64_MAX, {});
  const std::string want = render_pprof(ref.partial(), cpu_options());

  pprof_builder adopting;
  adopting.merge(std::move(pa));  // adopted with its tables
  adopting.merge(taken(b));
  adopting.add(c, cpu_series(c), 0, INT64_MAX, {});
  EXPECT_EQ(render_pprof(adopting.partial(), cpu_options()), want);

  // Continued by the constructor, then taken and adopted again.
  pprof_builder continued(taken(a));
  continued.merge(taken(b));
  pprof_builder again(continued.take());
  again.add(c, cpu_series(c), 0, INT64_MAX, {});
  EXPECT_EQ(render_pprof(again.partial(), cpu_options()), want);

  // Shared with a copy: neither adopts the tables (either might change them).
  pprof_partial shared = taken(a);
  pprof_partial copy = shared;
  EXPECT_EQ(copy.index.use_count(), 2);
  pprof_builder from_copy(std::move(copy));
  from_copy.merge(taken(b));
  from_copy.add(c, cpu_series(c), 0, INT64_MAX, {});
  EXPECT_EQ(render_pprof(from_copy.partial(), cpu_options()), want);
  pprof_builder from_shared(std::move(shared));
  from_shared.merge(taken(b));
  from_shared.add(c, cpu_series(c), 0, INT64_MAX, {});
  EXPECT_EQ(from_shared.partial().values, ref.partial().values);
  EXPECT_EQ(render_pprof(from_shared.partial(), cpu_options()), want);

  // Changed after it was taken (a node appended by hand): its tables no longer cover it, so it
  // is indexed again. Adopted, they would miss the new node, and merging it once more would add
  // it a second time (a second node for one stack).
  pprof_partial grown = taken(a);
  const uint32_t leaf = grown.stack_locations.back();
  for (size_t i = 1; i < grown.values.size(); ++i)
    ASSERT_FALSE(grown.stack_parents[i] == 0 && grown.stack_locations[i] == leaf);
  grown.stack_parents.push_back(0);
  grown.stack_locations.push_back(leaf);
  grown.values.push_back(7);
  const pprof_partial plain = without_index(grown);
  pprof_builder reindexed;
  reindexed.merge(pprof_partial(plain));
  reindexed.merge(plain);
  pprof_builder from_grown;
  from_grown.merge(std::move(grown));
  from_grown.merge(plain);
  EXPECT_EQ(from_grown.partial().values.size(), reindexed.partial().values.size());
  EXPECT_EQ(from_grown.partial().values, reindexed.partial().values);
}

}  // namespace
}  // namespace hearth::query
