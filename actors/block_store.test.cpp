#include "actors/block_store.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>

#include "format/segment.hpp"
#include "io/posix_file.hpp"
#include "query/evaluate.hpp"
#include "query/test_util.hpp"

namespace hearth {
namespace {

using test::s_ns;

// Segment files of real profiles in a fresh directory, read through a block_store.
struct store_fixture {
  std::filesystem::path dir = std::filesystem::temp_directory_path() /
                              ("hearth-block-store-test-" + std::to_string(::getpid()));
  io::posix_file_system fs;
  std::vector<std::string> paths;

  store_fixture() {
    std::filesystem::create_directories(dir);
    const char* stems[] = {"go/workpool.cpu.000.pb.gz", "go/mapindex.cpu.000.pb.gz"};
    for (size_t i = 0; i < 2; ++i) {
      const block_data b = test::block_of({{stems[i], (10 + static_cast<int64_t>(i)) * s_ns}});
      auto bytes = encode_segment(b, segment_codec::lz4, i + 1);
      EXPECT_TRUE(bytes.ok());
      paths.push_back((dir / ("L0-" + std::to_string(i) + ".hseg")).string());
      EXPECT_TRUE(fs.write_file_atomic(paths.back(), as_bytes(*bytes)).ok());
    }
  }
  ~store_fixture() { std::filesystem::remove_all(dir); }
};

// The flame graph of every block of `paths` read from `store`, through frame maps or not.
query::flame_graph graph(block_store& store, const std::vector<std::string>& paths, bool frames) {
  query::merger m;
  for (const auto& p : paths) {
    auto got = store.get(p);
    EXPECT_EQ(got.what, block_store::outcome::ok);
    auto ev = query::evaluator::make(test::stacks_query(0, 100 * s_ns));
    ev->add(*got.block, frames ? store.frames(p, got.block) : nullptr);
    m.add(std::move(*ev).finish());
  }
  m.tree().finalize();
  return query::render_flame_graph(m.tree(), 8192);
}

TEST(block_store, frame_maps_are_made_once_per_cached_block_and_answer_alike) {
  store_fixture fx;
  block_store store(&fx.fs, 64 << 20, nullptr);
  auto a = store.get(fx.paths[0]);
  ASSERT_EQ(a.what, block_store::outcome::ok);
  auto fa = store.frames(fx.paths[0], a.block);
  ASSERT_NE(fa, nullptr);
  EXPECT_EQ(store.frames(fx.paths[0], a.block), fa) << "kept with the block";
  // A block that is not the cached one for the path gets no map.
  auto copy = std::make_shared<const block_data>(*a.block);
  EXPECT_EQ(store.frames(fx.paths[0], copy), nullptr);
  auto b = store.get(fx.paths[1]);
  auto fb = store.frames(fx.paths[1], b.block);
  ASSERT_NE(fb, nullptr);
  EXPECT_EQ(fb->dict, fa->dict) << "one dictionary per store";
  const auto expanded = graph(store, fx.paths, false);
  EXPECT_GT(expanded.total, 0);
  EXPECT_EQ(graph(store, fx.paths, true), expanded);
  // Dropping the file's block drops its map.
  store.drop(fx.paths[0]);
  EXPECT_EQ(store.frames(fx.paths[0], a.block), nullptr);
}

// A block is decoded only as deep as asked; a cached block at least that deep answers, and a
// deeper request decodes the file again and replaces it.
TEST(block_store, blocks_are_decoded_as_deep_as_asked_and_cached_with_their_depth) {
  using query::block_depth;
  store_fixture fx;
  block_store store(&fx.fs, 64 << 20, nullptr);
  const std::string& path = fx.paths[0];
  auto columns = store.get(path, block_depth::row_columns);
  ASSERT_EQ(columns.what, block_store::outcome::ok);
  EXPECT_TRUE(columns.block->profiles.empty());
  EXPECT_GT(columns.block->rows.size(), 0u);
  EXPECT_EQ(store.frames(path, columns.block), nullptr) << "no stacks to map";
  EXPECT_EQ(store.get(path, block_depth::row_columns).block, columns.block) << "cached";

  auto rows = store.get(path, block_depth::rows);
  ASSERT_EQ(rows.what, block_store::outcome::ok);
  EXPECT_NE(rows.block, columns.block) << "decoded again, deeper";
  EXPECT_EQ(rows.block->profiles.size(), columns.block->rows.size());
  EXPECT_TRUE(rows.block->samples.empty());
  EXPECT_EQ(store.get(path, block_depth::row_columns).block, rows.block) << "the deeper one";

  auto whole = store.get(path);
  ASSERT_EQ(whole.what, block_store::outcome::ok);
  EXPECT_NE(whole.block, rows.block);
  EXPECT_FALSE(whole.block->samples.empty());
  EXPECT_NE(store.frames(path, whole.block), nullptr);
  for (auto depth : {block_depth::row_columns, block_depth::rows, block_depth::whole})
    EXPECT_EQ(store.get(path, depth).block, whole.block);
}

TEST(block_store, outside_a_window_only_those_profiles_are_decoded_and_cached_apart) {
  store_fixture fx;
  const block_data b = test::block_of({{"go/workpool.cpu.000.pb.gz", 10 * s_ns},
                                       {"go/mapindex.cpu.000.pb.gz", 20 * s_ns},
                                       {"go/workpool.cpu.001.pb.gz", 30 * s_ns}});
  const std::string path = (fx.dir / "L2-window.hseg").string();
  ASSERT_TRUE(
      fx.fs.write_file_atomic(path, as_bytes(*encode_segment(b, segment_codec::zstd, 7))).ok());
  block_store store(&fx.fs, 64 << 20, nullptr);
  std::string key;
  auto w = store.get_outside(path, 15 * s_ns, 25 * s_ns, 10 * s_ns, &key);
  ASSERT_EQ(w.what, block_store::outcome::ok);
  EXPECT_NE(key, path);
  size_t inside = 0, outside = 0;
  for (const auto& p : w.block->profiles)
    (p.time_ns == 20 * s_ns ? inside : outside) += p.sample_count;
  EXPECT_EQ(inside, 0u);
  EXPECT_GT(outside, 0u);
  // What a query reads of it, around the window, equals the whole block's answer.
  auto answer = [&](const block_data& blk, std::shared_ptr<const query::block_frames> f) {
    auto ev = query::evaluator::make(test::stacks_query(0, 100 * s_ns));
    ev->add(blk, 0, 15 * s_ns, f);
    ev->add(blk, 25 * s_ns, 100 * s_ns, f);
    query::merger m;
    m.add(std::move(*ev).finish());
    m.tree().finalize();
    return query::render_flame_graph(m.tree(), 8192);
  };
  auto fw = store.frames(key, w.block);
  EXPECT_NE(fw, nullptr) << "the windowed block is cached under its key, with its frame map";
  std::string again_key;
  EXPECT_EQ(store.get_outside(path, 15 * s_ns, 25 * s_ns, 10 * s_ns, &again_key).block, w.block)
      << "cached";
  EXPECT_EQ(again_key, key);
  EXPECT_NE(store.get_outside(path, 15 * s_ns, 35 * s_ns, 10 * s_ns, &again_key).block, w.block)
      << "another window";
  // Only the rows less than a step from the window: with a 4 s step, neither 10 s nor 30 s.
  auto near = store.get_outside(path, 15 * s_ns, 25 * s_ns, 4 * s_ns, &again_key);
  ASSERT_EQ(near.what, block_store::outcome::ok);
  EXPECT_NE(near.block, w.block) << "another step";
  EXPECT_TRUE(near.block->samples.empty());
  EXPECT_EQ(near.block->profiles.size(), w.block->profiles.size());
  auto whole = store.get(path);
  ASSERT_EQ(whole.what, block_store::outcome::ok);
  EXPECT_EQ(answer(*w.block, fw), answer(*whole.block, nullptr));
  EXPECT_GT(answer(*w.block, nullptr).total, 0);
  // Once the whole block is cached, it answers every window.
  EXPECT_EQ(store.get_outside(path, 15 * s_ns, 25 * s_ns, 10 * s_ns, &again_key).block,
            whole.block);
  EXPECT_EQ(again_key, path);
  // drop() forgets the windowed blocks of the file too.
  store.drop(path);
  auto fresh = store.get_outside(path, 15 * s_ns, 25 * s_ns, 10 * s_ns, &again_key);
  ASSERT_EQ(fresh.what, block_store::outcome::ok);
  EXPECT_NE(fresh.block, w.block);
  // A damaged file is reported corrupted, and missing once gone.
  const std::string bad = (fx.dir / "L2-bad.hseg").string();
  std::string bytes = *encode_segment(b, segment_codec::none, 8);
  bytes[bytes.size() / 2] ^= 0x40;
  ASSERT_TRUE(fx.fs.write_file_atomic(bad, as_bytes(bytes)).ok());
  EXPECT_EQ(store.get_outside(bad, 15 * s_ns, 25 * s_ns, 10 * s_ns, &again_key).what,
            block_store::outcome::corrupted);
  EXPECT_TRUE(store.corrupted(bad));
  EXPECT_EQ(store.get_outside((fx.dir / "gone.hseg").string(), 0, 1, 1, &again_key).what,
            block_store::outcome::missing);
}

// A query's series reads decode only those series' pairs; a block missing some that a later
// query reads is decoded again with both sets (keeping its frame map), and answers alike.
TEST(block_store, only_the_pairs_of_the_series_a_query_reads_are_decoded) {
  store_fixture fx;
  const block_data b = test::block_of(
      {{"go/workpool.cpu.000.pb.gz", 10 * s_ns}, {"go/mapindex.cpu.000.pb.gz", 20 * s_ns}});
  const std::string path = (fx.dir / "L2-types.hseg").string();
  ASSERT_TRUE(
      fx.fs.write_file_atomic(path, as_bytes(*encode_segment(b, segment_codec::zstd, 9))).ok());
  query::query_spec cpu = test::stacks_query(0, 100 * s_ns);
  query::query_spec count = cpu;
  count.profile_type = "process_cpu:samples:count:cpu:nanoseconds";
  auto cpu_ev = query::evaluator::make(cpu), count_ev = query::evaluator::make(count);
  ASSERT_TRUE(cpu_ev.ok() && count_ev.ok());
  const series_filter cpu_reads = [&](const block_data& x) { return cpu_ev->series_read(x); };
  const series_filter count_reads = [&](const block_data& x) { return count_ev->series_read(x); };
  auto pairs_of = [](const block_data& x, const std::vector<bool>& series) {
    size_t n = 0;
    for (const auto& p : x.profiles)
      if (series[p.series]) n += p.sample_count;
    return n;
  };
  auto answer = [&](const query::query_spec& q, const block_data& x,
                    std::shared_ptr<const query::block_frames> f) {
    auto ev = query::evaluator::make(q);
    ev->add(x, f);
    query::merger m;
    m.add(std::move(*ev).finish());
    m.tree().finalize();
    return query::render_flame_graph(m.tree(), 8192);
  };
  block_store reference(&fx.fs, 64 << 20, nullptr);
  auto full = reference.get(path);
  ASSERT_EQ(full.what, block_store::outcome::ok);
  const auto cpu_series = cpu_ev->series_read(*full.block);
  const auto count_series = count_ev->series_read(*full.block);
  ASSERT_GT(pairs_of(*full.block, cpu_series), 0u);
  ASSERT_GT(pairs_of(*full.block, count_series), 0u);

  block_store store(&fx.fs, 64 << 20, nullptr);
  // A selection with no series in the block: its rows alone.
  query::query_spec other = cpu;
  other.selector = "{service_name=\"not-in-this-block\"}";
  auto other_ev = query::evaluator::make(other);
  ASSERT_TRUE(other_ev.ok());
  const series_filter no_reads = [&](const block_data& x) { return other_ev->series_read(x); };
  auto rows = store.get(path, query::block_depth::whole, no_reads);
  ASSERT_EQ(rows.what, block_store::outcome::ok);
  EXPECT_TRUE(rows.block->samples.empty());
  EXPECT_EQ(rows.block->stacks.size(), 1u) << "no stack tree decoded";
  EXPECT_EQ(rows.block->profiles.size(), full.block->profiles.size());
  EXPECT_EQ(store.get(path, query::block_depth::whole, no_reads).block, rows.block) << "cached";
  EXPECT_EQ(answer(other, *rows.block, store.frames(path, rows.block)).total, 0);
  auto c = store.get(path, query::block_depth::whole, cpu_reads);
  EXPECT_NE(c.block, rows.block) << "decoded again for the cpu series' pairs";
  ASSERT_EQ(c.what, block_store::outcome::ok);
  EXPECT_EQ(c.block->samples.size(), pairs_of(*full.block, cpu_series)) << "cpu pairs only";
  EXPECT_EQ(pairs_of(*c.block, count_series), 0u);
  auto fc = store.frames(path, c.block);
  ASSERT_NE(fc, nullptr);
  EXPECT_EQ(store.get(path, query::block_depth::whole, cpu_reads).block, c.block) << "cached";
  std::string key;
  auto outside = store.get_outside(path, 15 * s_ns, 25 * s_ns, 10 * s_ns, &key);
  EXPECT_NE(outside.block, c.block) << "a block without every series' pairs answers no window";
  EXPECT_NE(key, path);
  EXPECT_EQ(answer(cpu, *c.block, fc), answer(cpu, *full.block, nullptr));
  // The other type: decoded again with both, replacing the cached block, its map kept.
  auto both = store.get(path, query::block_depth::whole, count_reads);
  ASSERT_EQ(both.what, block_store::outcome::ok);
  EXPECT_NE(both.block, c.block);
  EXPECT_EQ(both.block->samples.size(), full.block->samples.size());
  EXPECT_EQ(store.frames(path, both.block), fc) << "same stacks: the map is kept";
  EXPECT_EQ(store.get(path, query::block_depth::whole, cpu_reads).block, both.block);
  EXPECT_EQ(store.get(path).block, both.block) << "every series' pairs: answers everything";
  EXPECT_EQ(answer(count, *both.block, fc), answer(count, *full.block, nullptr));
  EXPECT_GT(answer(count, *both.block, fc).total, 0);
  // A get that reads everything (no filter) replaces a partial block by the whole one.
  store.drop(path);
  auto again = store.get(path, query::block_depth::whole, count_reads);
  EXPECT_EQ(again.block->samples.size(), pairs_of(*full.block, count_series));
  auto whole = store.get(path);
  EXPECT_NE(whole.block, again.block);
  EXPECT_EQ(whole.block->samples.size(), full.block->samples.size());
  EXPECT_EQ(store.get(path, query::block_depth::whole, cpu_reads).block, whole.block);
}

TEST(block_store, a_full_frame_dictionary_is_replaced_and_queries_expand_meanwhile) {
  store_fixture fx;
  // A 1 KiB cache: a 128-byte dictionary has no room for any path.
  block_store store(&fx.fs, 1024, nullptr);
  const auto expanded = graph(store, fx.paths, false);
  EXPECT_GT(expanded.total, 0);
  auto a = store.get(fx.paths[0]);
  EXPECT_EQ(store.frames(fx.paths[0], a.block), nullptr);
  EXPECT_EQ(store.frames(fx.paths[0], a.block), nullptr) << "the new dictionary is as small";
  EXPECT_EQ(graph(store, fx.paths, true), expanded);
}

}  // namespace
}  // namespace hearth
