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
