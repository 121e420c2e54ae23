#pragma once
// The hash ring of a cluster (pure: no CAF, no sockets). Every ingester node owns `tokens` virtual
// tokens derived from its name, so every node computes the same ring from the same configuration.
// The unit of replication is a tenant shard (the distributor's series-hash shard): its key is
// hashed onto the ring and the first `rf` distinct nodes clockwise from it are its preference
// list (replicas). Reads and compaction use the first live, caught-up node of that list.

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace hearth::cluster {

class ring {
 public:
  /// `nodes`: the ingester nodes (any order; the ring sorts nothing but tokens).
  ring(std::vector<std::string> nodes, uint32_t tokens_per_node);
  ring() = default;

  /// The token `index` of node `name`: deterministic, the same on every node.
  static uint64_t token_of(std::string_view name, uint32_t index);
  /// Where a tenant shard sits on the ring.
  static uint64_t shard_key(std::string_view tenant, uint32_t shard);

  /// The first `rf` distinct nodes clockwise from `key` (indices into nodes()); fewer when the
  /// ring has fewer nodes.
  std::vector<uint32_t> preference(uint64_t key, uint32_t rf) const;

  const std::vector<std::string>& nodes() const { return nodes_; }
  /// Index of a node in nodes(), or -1.
  int index_of(std::string_view name) const;
  /// Share of the hash space (0..1) whose first replica is node `i`.
  double primary_share(uint32_t i) const;
  /// Number of tokens of node `i` (tokens_per_node for every node).
  uint32_t tokens_per_node() const { return tokens_per_node_; }
  bool empty() const { return tokens_.empty(); }

 private:
  struct token {
    uint64_t value;
    uint32_t node;
  };
  std::vector<std::string> nodes_;
  std::vector<token> tokens_;  ///< sorted by value
  uint32_t tokens_per_node_ = 0;
};

/// A node as compaction ownership sees it.
struct compaction_candidate {
  std::string name;
  bool compactor = false;  ///< has the compactor role
  bool live = false;       ///< alive (suspect counts as live: it may still hold its directories)
};

/// Who compacts the partition directory (`writer`'s tenant shard) on shared storage
/// (docs/design/cluster.md, "Compaction ownership"): its writer while the writer is live, or -1
/// then if the writer has no compactor role; once the writer is down, the first live compactor
/// clockwise from the partition's key on a ring of the compactor nodes other than the writer
/// (`tokens` each). Every node with the same view picks the same owner, and a dead node's
/// partitions spread over the surviving compactors. -1 when no compactor is live.
/// Requires: writer < nodes.size().
int compaction_owner(const std::vector<compaction_candidate>& nodes, size_t writer,
                     std::string_view tenant, uint32_t shard, uint32_t tokens);

}  // namespace hearth::cluster
