#include "query/frame_dict.hpp"

#include <gtest/gtest.h>

#include <thread>

#include "query/evaluate.hpp"
#include "query/test_util.hpp"

namespace hearth::query {
namespace {

using test::s_ns;

const std::vector<test::profile_file> files = {
    {"go/workpool.cpu.000.pb.gz", 10 * s_ns, "api", {{"region", "eu"}}},
    {"go/workpool.cpu.001.pb.gz", 20 * s_ns, "api", {{"region", "us"}}},
    {"go/mapindex.cpu.000.pb.gz", 30 * s_ns, "db"},
    {"go/mapindex.cpu.001.pb.gz", 40 * s_ns, "db"}};

// The merged answer of `q` over `blocks`, each block through `frames[i]` when given.
struct answer {
  flame_graph graph;
  std::vector<function_stat> top;
  std::map<std::string, int64_t> paths;
};
answer run(const query_spec& q, const std::vector<const block_data*>& blocks,
           const std::vector<std::shared_ptr<const block_frames>>& frames = {}, bool portable = false) {
  merger m;
  for (size_t i = 0; i < blocks.size(); ++i) {
    auto ev = evaluator::make(q);
    EXPECT_TRUE(ev.ok());
    ev->add(*blocks[i], frames.empty() ? nullptr : frames[i]);
    partial p = std::move(*ev).finish();
    if (portable) {
      make_portable(p);
      EXPECT_TRUE(p.frame_parts.empty());
    }
    m.add(std::move(p));
  }
  m.tree().finalize();
  return {render_flame_graph(m.tree(), 8192), top_functions(m.tree()), test::tree_paths(m.tree())};
}

void expect_same(const answer& a, const answer& b) {
  EXPECT_EQ(a.graph, b.graph);
  EXPECT_EQ(a.top, b.top);
  EXPECT_EQ(a.paths, b.paths);
}

TEST(frame_dict, blocks_read_through_frame_maps_answer_as_expanded_trees) {
  std::vector<block_data> blocks;
  for (const auto& f : files) blocks.push_back(test::block_of({f}));
  blocks.push_back(test::block_of(files));  // the same stacks again, other node numbers
  // A location without lines becomes a "0x..." frame, on both paths.
  blocks[1].syms.locations[blocks[1].stacks[blocks[1].stacks.size() / 2].location].line_count = 0;
  std::vector<const block_data*> ptrs;
  for (const auto& b : blocks) ptrs.push_back(&b);
  auto dict = std::make_shared<frame_dict>(uint64_t{1} << 30);
  std::vector<std::shared_ptr<const block_frames>> frames;
  for (const auto& b : blocks) {
    frames.push_back(dict->map(b));
    ASSERT_NE(frames.back(), nullptr);
    EXPECT_EQ(frames.back()->node.size(), b.stacks.size());
  }
  // Mapping a block again adds nothing and gives the same nodes.
  const size_t n = dict->size();
  EXPECT_EQ(dict->map(blocks[0])->node, frames[0]->node);
  EXPECT_EQ(dict->size(), n);

  query_spec q = test::stacks_query(0, 100 * s_ns);
  const answer expanded = run(q, ptrs);
  EXPECT_GT(expanded.paths.size(), 100u);
  expect_same(run(q, ptrs, frames), expanded);
  expect_same(run(q, ptrs, frames, true), expanded);

  // Selections, ranges and call sites apply to the sums before the map.
  q.selector = R"({service_name="db"})";
  q.start_ns = 35 * s_ns;
  expect_same(run(q, ptrs, frames), run(q, ptrs));
  q = test::stacks_query(0, 100 * s_ns);
  ASSERT_GT(expanded.graph.names.size(), 2u);
  q.call_site = {expanded.graph.names[1]};  // a root frame (the DFS visits it first)
  const answer cs = run(q, ptrs);
  EXPECT_GT(cs.paths.size(), 0u);
  expect_same(run(q, ptrs, frames), cs);

  // A partial mixing an expanded block (the head) and mapped ones merges to the same answer.
  merger m;
  for (size_t i = 0; i < blocks.size(); ++i) {
    auto ev = evaluator::make(test::stacks_query(0, 100 * s_ns));
    ev->add(*ptrs[i], i % 2 ? frames[i] : nullptr);
    m.add(std::move(*ev).finish());
  }
  m.tree().finalize();
  EXPECT_EQ(render_flame_graph(m.tree(), 8192), expanded.graph);
}

TEST(frame_dict, inconsistent_paths_are_skipped_as_the_expansion_skips_them) {
  block_data b = test::block_of({files[0]});
  ASSERT_GT(b.stacks.size(), 10u);
  b.stacks[5].parent = 7;                        // a parent after its child
  b.stacks[8].location = 1u << 30;               // a location out of range
  b.syms.locations[b.stacks[9].location].line_begin = 1u << 30;  // lines out of range
  auto dict = std::make_shared<frame_dict>(uint64_t{1} << 30);
  auto f = dict->map(b);
  ASSERT_NE(f, nullptr);
  EXPECT_EQ(f->node[5], block_frames::invalid);
  EXPECT_EQ(f->node[8], block_frames::invalid);
  const query_spec q = test::stacks_query(0, 100 * s_ns);
  expect_same(run(q, {&b}, {f}), run(q, {&b}));
}

TEST(frame_dict, a_full_dictionary_refuses_new_paths_and_the_evaluator_expands_instead) {
  const block_data a = test::block_of({files[0]});
  const block_data b = test::block_of({files[2]});
  auto dict = std::make_shared<frame_dict>(0);  // no room for anything
  EXPECT_EQ(dict->map(a), nullptr);
  auto roomy = std::make_shared<frame_dict>(uint64_t{1} << 30);
  auto fa = roomy->map(a);
  ASSERT_NE(fa, nullptr);
  // Budget for a's paths only: b (other paths) no longer fits; a still maps (nothing new).
  auto tight = std::make_shared<frame_dict>(roomy->bytes());
  ASSERT_NE(tight->map(a), nullptr);
  EXPECT_EQ(tight->map(b), nullptr);
  EXPECT_NE(tight->map(a), nullptr);
  const query_spec q = test::stacks_query(0, 100 * s_ns);
  expect_same(run(q, {&a, &b}, {fa, nullptr}), run(q, {&a, &b}));
}

TEST(frame_dict, blocks_map_concurrently_into_one_dictionary) {
  std::vector<block_data> blocks;
  for (const auto& f : files) blocks.push_back(test::block_of({f}));
  auto dict = std::make_shared<frame_dict>(uint64_t{1} << 30);
  std::vector<std::shared_ptr<const block_frames>> frames(blocks.size());
  std::vector<std::thread> threads;
  for (size_t i = 0; i < blocks.size(); ++i)
    threads.emplace_back([&, i] {
      for (int rep = 0; rep < 20; ++rep) frames[i] = dict->map(blocks[i]);
    });
  for (auto& t : threads) t.join();
  std::vector<const block_data*> ptrs;
  for (const auto& b : blocks) ptrs.push_back(&b);
  const query_spec q = test::stacks_query(0, 100 * s_ns);
  expect_same(run(q, ptrs, frames), run(q, ptrs));
  // Every path once: a fresh dictionary fed the same blocks one by one has as many nodes.
  auto serial = std::make_shared<frame_dict>(uint64_t{1} << 30);
  for (const auto& b : blocks) serial->map(b);
  EXPECT_EQ(dict->size(), serial->size());
}

}  // namespace
}  // namespace hearth::query
