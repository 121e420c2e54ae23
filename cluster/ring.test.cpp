// Unit tests of the pure cluster cores: the hash ring and the membership state machine.

#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <set>

#include "cluster/membership.hpp"
#include "cluster/ring.hpp"

namespace hearth::cluster {
namespace {

TEST(Ring, SameRingWhateverTheOrderOfNodes) {
  ring a({"node-a", "node-b", "node-c"}, 64);
  ring b({"node-c", "node-a", "node-b"}, 64);
  for (uint64_t k = 0; k < 2000; ++k) {
    uint64_t key = ring::shard_key("tenant-" + std::to_string(k % 17), static_cast<uint32_t>(k));
    auto pa = a.preference(key, 2);
    auto pb = b.preference(key, 2);
    ASSERT_EQ(pa.size(), 2u);
    ASSERT_EQ(pb.size(), 2u);
    for (size_t i = 0; i < 2; ++i) EXPECT_EQ(a.nodes()[pa[i]], b.nodes()[pb[i]]) << key;
  }
}

TEST(Ring, PreferenceListsHoldDistinctNodes) {
  ring r({"a", "b", "c", "d"}, 16);
  for (uint64_t k = 0; k < 500; ++k) {
    auto p = r.preference(ring::shard_key("t", static_cast<uint32_t>(k)), 3);
    ASSERT_EQ(p.size(), 3u);
    EXPECT_EQ(std::set<uint32_t>(p.begin(), p.end()).size(), 3u);
  }
  // More replicas asked than nodes: every node once.
  auto all = r.preference(12345, 9);
  EXPECT_EQ(std::set<uint32_t>(all.begin(), all.end()).size(), 4u);
  EXPECT_TRUE(ring().preference(1, 2).empty());
}

TEST(Ring, SharesAddUpAndAreBalanced) {
  ring r({"node-a", "node-b", "node-c"}, 128);
  double sum = 0;
  for (uint32_t i = 0; i < 3; ++i) {
    double s = r.primary_share(i);
    EXPECT_GT(s, 0.2) << i;
    EXPECT_LT(s, 0.5) << i;
    sum += s;
  }
  EXPECT_NEAR(sum, 1.0, 1e-9);
  EXPECT_DOUBLE_EQ(ring({"solo"}, 1).primary_share(0), 1.0);
}

TEST(Ring, ANewNodeOnlyTakesKeysFromOthers) {
  ring three({"a", "b", "c"}, 128);
  ring four({"a", "b", "c", "d"}, 128);
  int moved = 0;
  for (uint64_t k = 0; k < 5000; ++k) {
    uint64_t key = ring::shard_key("tenant", static_cast<uint32_t>(k));
    auto before = three.nodes()[three.preference(key, 1)[0]];
    auto after = four.nodes()[four.preference(key, 1)[0]];
    if (before != after) {
      EXPECT_EQ(after, "d") << key;  // consistent hashing: keys move only to the new node
      ++moved;
    }
  }
  EXPECT_GT(moved, 5000 / 8);
  EXPECT_LT(moved, 5000 / 2);
}

TEST(Ring, TokensDependOnNameAndIndex) {
  EXPECT_NE(ring::token_of("a", 0), ring::token_of("a", 1));
  EXPECT_NE(ring::token_of("a", 0), ring::token_of("b", 0));
  EXPECT_EQ(ring::token_of("a", 7), ring::token_of("a", 7));
  EXPECT_NE(ring::shard_key("t", 0), ring::shard_key("t", 1));
  EXPECT_NE(ring::shard_key("t", 0), ring::shard_key("u", 0));
}

TEST(Ring, CompactionOwnershipMovesOnlyWhenTheWriterDies) {
  std::vector<compaction_candidate> nodes = {
      {"node-a", true, true}, {"node-b", true, true}, {"node-c", true, true}, {"node-d", false, true}};
  // A live writer compacts its own directories; a live writer without the role: nobody.
  for (uint32_t shard = 0; shard < 8; ++shard) {
    EXPECT_EQ(compaction_owner(nodes, 0, "t", shard, 16), 0);
    EXPECT_EQ(compaction_owner(nodes, 3, "t", shard, 16), -1);
  }
  // node-a dies: each of its partitions goes to one live compactor, never to node-d (no role),
  // and both survivors get some.
  nodes[0].live = false;
  std::map<int, int> owners;
  for (uint32_t shard = 0; shard < 64; ++shard) {
    int o = compaction_owner(nodes, 0, "tenant-" + std::to_string(shard % 4), shard, 16);
    ASSERT_TRUE(o == 1 || o == 2) << o;
    owners[o]++;
    // Deterministic: the same view gives the same answer.
    EXPECT_EQ(o, compaction_owner(nodes, 0, "tenant-" + std::to_string(shard % 4), shard, 16));
  }
  EXPECT_EQ(owners.size(), 2u);
  // node-b dies too: everything of node-a moves to node-c; then node-c: nobody is left.
  nodes[1].live = false;
  for (uint32_t shard = 0; shard < 16; ++shard) EXPECT_EQ(compaction_owner(nodes, 0, "t", shard, 16), 2);
  nodes[2].live = false;
  EXPECT_EQ(compaction_owner(nodes, 0, "t", 0, 16), -1);
  // Ownership of a dead node's partition stays put when an unrelated compactor dies.
  nodes = {{"node-a", true, false}, {"node-b", true, true}, {"node-c", true, true}, {"node-e", true, true}};
  for (uint32_t shard = 0; shard < 32; ++shard) {
    int before = compaction_owner(nodes, 0, "t", shard, 16);
    if (before == 3) continue;
    nodes[3].live = false;
    EXPECT_EQ(compaction_owner(nodes, 0, "t", shard, 16), before);
    nodes[3].live = true;
  }
}

TEST(Membership, HeartbeatsDriveAliveSuspectDown) {
  membership m(2, {3000, 10000});
  EXPECT_EQ(m.state(0, 1000), node_state::down);  // never heard
  EXPECT_EQ(m.heard(0, 42, 1000), membership::change::joined);
  EXPECT_EQ(m.state(0, 1000), node_state::alive);
  EXPECT_EQ(m.state(0, 3999), node_state::alive);
  EXPECT_EQ(m.state(0, 4000), node_state::suspect);
  EXPECT_EQ(m.state(0, 10999), node_state::suspect);
  EXPECT_EQ(m.state(0, 11000), node_state::down);
  EXPECT_EQ(m.heard(0, 42, 12000), membership::change::recovered);
  EXPECT_EQ(m.state(0, 12000), node_state::alive);
  EXPECT_EQ(m.heard(0, 42, 12500), membership::change::none);
  EXPECT_EQ(m.last_heard_ms(0), 12500);
  EXPECT_EQ(m.state(1, 12500), node_state::down);  // the other peer is independent
}

TEST(Membership, ANewBootIdIsARestart) {
  membership m(1, {3000, 10000});
  m.heard(0, 1, 1000);
  EXPECT_EQ(m.heard(0, 2, 1500), membership::change::restarted);
  EXPECT_EQ(m.boot_id(0), 2u);
  EXPECT_EQ(m.state(0, 1500), node_state::alive);
}

TEST(Membership, ALostConnectionIsSuspectAtOnce) {
  membership m(1, {3000, 10000});
  m.heard(0, 7, 1000);
  m.disconnected(0);
  EXPECT_EQ(m.state(0, 1001), node_state::suspect);
  EXPECT_EQ(m.state(0, 11000), node_state::down);
  EXPECT_EQ(m.heard(0, 7, 11500), membership::change::recovered);
  EXPECT_EQ(m.state(0, 11500), node_state::alive);
  // An out-of-order (older) heartbeat reply does not move the clock back.
  m.heard(0, 7, 11000);
  EXPECT_EQ(m.last_heard_ms(0), 11500);
}

}  // namespace
}  // namespace hearth::cluster
