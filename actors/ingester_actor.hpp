#pragma once
// The ingester: the registry of partitions on this node. It creates a tenant's partitions (one per
// shard) on first write, and at start re-opens every partition found in the data directory so
// their WALs are replayed before /ready turns green.

#include <map>
#include <string>
#include <vector>

#include "actors/interfaces.hpp"
#include "actors/partition_actor.hpp"
#include "format/tenant.hpp"

namespace hearth {

/// Settings shared by all partitions of this node.
struct ingester_options {
  std::string data_dir;
  uint32_t shards = 1;
  partition_options partition;  ///< template: tenant, shard and dir are filled per partition
};

struct ingester_state {
  static inline const char* name = "ingester";
  ingester_options opts;
  io::file_system* fs = nullptr;
  self_metrics* metrics = nullptr;
  std::map<std::string, std::vector<partition_actor>> tenants;
};

/// Spawns the partitions found on disk, then serves lookups.
ingester_actor::behavior_type ingester_fn(ingester_actor::stateful_pointer<ingester_state> self,
                                          ingester_options opts, io::file_system* fs,
                                          self_metrics* metrics);

}  // namespace hearth
