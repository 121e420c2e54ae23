#pragma once
// The cluster's actors (docs/design/cluster.md). `cluster_node_fn` is the actor this node
// publishes over CAF remoting: peers heartbeat it, send it replica writes and read its shards.
// `cluster_membership_fn` (detached: off the scheduler's workers) connects to every peer,
// heartbeats it, tracks alive/suspect/down (cluster/membership.hpp), publishes what it learns in
// the cluster_view and replays hinted writes to peers that are back.

#include "actors/cluster_view.hpp"
#include "actors/interfaces.hpp"

namespace hearth {

/// What this node announces, from its configuration.
node_hello make_hello(const cluster_view& view, uint64_t boot_id);

/// Why a peer's announcement does not match our configuration of it ("" when it matches);
/// `expected` is its member index, or -1 to find it by name.
std::string check_hello(const cluster_view& view, const node_hello& h, int expected);

struct cluster_node_state {
  static inline const char* name = "cluster-node";
  cluster_view* view = nullptr;
  ingester_actor ingester;
  query_frontend_actor frontend;
  node_hello hello;
  std::set<std::string> refused_logged;  ///< refusals already logged (one line each)
};

cluster_node_actor::behavior_type cluster_node_fn(
    cluster_node_actor::stateful_pointer<cluster_node_state> self, cluster_view* view,
    uint64_t boot_id, ingester_actor ingester, query_frontend_actor frontend);

struct cluster_membership_state {
  static inline const char* name = "cluster-membership";
  cluster_view* view = nullptr;
  cluster::membership members{0, {}};
  uint64_t boot_id = 0;
  std::vector<cluster_node_actor> handles;  ///< per member (0 = self, unused)
  std::vector<int64_t> connected_ms;        ///< per member: unix ms its handle was made
  std::vector<bool> replaying;              ///< per member: a hint is in flight
  std::vector<bool> connecting;             ///< per member: a connection attempt is pending
  std::vector<bool> connect_failed_logged;  ///< per member
  std::set<std::string> refused_logged;
  int64_t start_ms = 0;  ///< unix ms of the start
  bool joined = false;
};

cluster_membership_actor::behavior_type cluster_membership_fn(
    cluster_membership_actor::stateful_pointer<cluster_membership_state> self, cluster_view* view,
    uint64_t boot_id);

}  // namespace hearth
