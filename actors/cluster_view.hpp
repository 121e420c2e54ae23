#pragma once
// The cluster as this node sees it, shared by the actors that route by it: the distributor's
// workers (replica writes), the query frontend (which replica answers each shard), the gateway
// (/ready, /cluster/status). The membership actor (actors/cluster_actor.hpp) is its only writer.
// Also the hinted-handoff queue: replica writes a peer missed, replayed when it is back.
// Thread-safety: every method may be called from any thread.

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>

#include <atomic>
#include <deque>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "actors/compactor_actor.hpp"
#include "actors/interfaces.hpp"
#include "cluster/membership.hpp"
#include "io/file.hpp"
#include "cluster/ring.hpp"

namespace hearth {

class self_metrics;

/// A node of the cluster as configured.
struct cluster_member {
  std::string name;
  std::string address;  ///< HOST:PORT of its CAF remoting
  std::vector<std::string> roles;
  bool has_role(std::string_view r) const;
};

/// The cluster settings of this node (from config [cluster]); members[0] is this node.
struct cluster_options {
  std::vector<cluster_member> members;
  uint32_t replication_factor = 1;
  uint32_t write_quorum = 1;
  uint32_t tokens = 128;
  uint32_t shards = 1;  ///< storage.shards: must be equal on every node
  int64_t heartbeat_interval_ms = 1000;
  cluster::membership_timing timing;
  std::chrono::milliseconds rpc_timeout{10000};
  uint64_t hint_max_bytes = 256ull << 20;
};

/// One node's row of /cluster/status.
struct cluster_node_status {
  std::string name;
  std::string address;
  std::vector<std::string> roles;
  bool self = false;
  cluster::node_state state = cluster::node_state::down;
  bool connected = false;          ///< this node holds a live handle to it (peers only)
  int64_t last_heartbeat_ms = 0;   ///< unix ms (self: now)
  uint64_t boot_id = 0;
  uint32_t tokens = 0;             ///< 0 when not an ingester
  double ring_share = 0;           ///< share of the hash space it is first replica of
  uint64_t hints_held_for = 0;     ///< replica writes this node holds for it
  bool behind = false;             ///< some node holds (or dropped) writes for it
  std::vector<std::string> hints_for;  ///< nodes it reported holding hints for
};

/// A replica write a peer missed.
struct cluster_hint {
  uint32_t shard = 0;
  ingest_batch batch;
  uint64_t bytes = 0;
  std::string path;  ///< its file when hints are persisted ("" otherwise)
};

/// Cluster metrics (registered only when [cluster] is configured).
struct cluster_metrics {
  explicit cluster_metrics(prometheus::Registry& r);
  prometheus::Family<prometheus::Gauge>& peers;           ///< {state}
  prometheus::Family<prometheus::Gauge>& ring_share;      ///< {node}
  prometheus::Family<prometheus::Gauge>& hints_pending;   ///< {node}
  prometheus::Gauge& hint_bytes;
  prometheus::Counter& hints_stored;
  prometheus::Counter& hints_replayed;
  prometheus::Counter& hints_dropped;
  prometheus::Counter& replica_write_failures;
  prometheus::Counter& quorum_failures;
  prometheus::Counter& partial_queries;
  prometheus::Gauge& adopted_partitions;
};

class cluster_view {
 public:
  cluster_view(cluster_options opts, prometheus::Registry& registry);

  const cluster_options& options() const { return opts_; }
  const std::string& self_name() const { return opts_.members[0].name; }
  size_t size() const { return opts_.members.size(); }
  const cluster_member& member(size_t i) const { return opts_.members[i]; }
  cluster_metrics& metrics() { return metrics_; }
  /// Member index of a node name, or -1.
  int index_of(std::string_view name) const;

  /// Member indices of the replicas of a tenant shard, in preference order.
  std::vector<uint32_t> replicas(std::string_view tenant, uint32_t shard) const;

  /// What a router needs of a member: its handle (null when not connected) and state.
  struct route {
    cluster_node_actor handle;
    cluster::node_state state = cluster::node_state::down;
    bool behind = false;
  };
  route route_to(size_t i) const;

  // ---- written by the membership actor
  void set_peer(size_t i, cluster::node_state state, int64_t last_ms, uint64_t boot_id,
                cluster_node_actor handle, bool connected);
  void set_peer_hints(size_t i, std::vector<std::string> hints_for);
  void set_self_boot_id(uint64_t id) { std::lock_guard lk(mu_); rows_[0].boot_id = id; }
  void set_joined() { std::lock_guard lk(mu_); joined_ = true; }

  /// Ready for traffic: joined (every peer answered once, or cluster.down_after passed since the
  /// start) and the ring has enough
  /// live ingesters for a write quorum. `why` says what is missing.
  bool ready(std::string* why) const;
  std::vector<cluster_node_status> status(int64_t now_ms) const;

  // ---- compaction ownership (cluster.shared_path; docs/design/cluster.md)
  /// Member index of the node that compacts member `writer`'s partition (tenant, shard), or -1:
  /// cluster::compaction_owner over this view (suspect counts as live). Before this node has
  /// joined, no other node's partition is ever this node's.
  int compaction_owner(size_t writer, std::string_view tenant, uint32_t shard) const;
  /// The partitions of down members found under `shared_path`/<node>/<tenant>/shard-<k> whose
  /// owner is this node (sets hearth_cluster_adopted_partitions).
  std::vector<adopted_partition> adopted_partitions(io::file_system& fs, const std::string& shared_path);

  // ---- hinted handoff
  /// Keeps hints as files under `dir`/<node>/ (written atomically before they count), and loads
  /// the ones a previous run left. Call before any add_hint. Returns how many were loaded.
  size_t persist_hints(io::file_system* fs, std::string dir);
  /// Keeps a replica write for member `i`. False (and counted as dropped) when the queue is full.
  bool add_hint(size_t i, uint32_t shard, const ingest_batch& batch);
  /// The oldest hint for member `i`, if any (left in the queue until pop_hint).
  bool peek_hint(size_t i, cluster_hint& out) const;
  void pop_hint(size_t i);
  uint64_t hints_pending(size_t i) const;
  /// Names of the members this node holds (or dropped) hints for.
  std::vector<std::string> hints_for() const;

 private:
  bool behind_locked(size_t i) const;

  cluster_options opts_;
  cluster::ring ring_;
  std::vector<int> ring_to_member_;
  cluster_metrics metrics_;
  mutable std::mutex mu_;
  struct peer_row {
    cluster::node_state state = cluster::node_state::down;
    int64_t last_ms = 0;
    uint64_t boot_id = 0;
    bool connected = false;
    cluster_node_actor handle;
    std::vector<std::string> hints_for;
  };
  std::vector<peer_row> rows_;  ///< parallel to members; rows_[0] is this node
  bool joined_ = false;
  std::vector<std::deque<cluster_hint>> hints_;  ///< per member
  std::vector<bool> dropped_;  ///< per member: a hint was dropped (the queue was full)
  uint64_t hint_bytes_ = 0;
  io::file_system* fs_ = nullptr;  ///< persisted hints (null: in memory only)
  std::string hints_dir_;
  std::atomic<uint64_t> hint_seq_{1};
};

/// Approximate in-memory size of a batch (the hint queue's bound).
uint64_t approx_batch_bytes(const ingest_batch& b);

}  // namespace hearth
