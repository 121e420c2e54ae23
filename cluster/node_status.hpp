#pragma once
// What a node reports about itself and its peers in the Admin interface's cluster status. A single
// node has no peers; in a cluster the rows come from the membership view (actors/cluster_view.hpp).

#include <cstdint>
#include <string>
#include <vector>

namespace hearth {

struct node_status {
  std::string name;
  std::vector<std::string> roles;
  std::string state;  ///< "ready", "recovering", or a peer's reported state
  int64_t last_heartbeat_ms = 0;
  std::string http_address;
  std::string rpc_address;
  std::string version;
  int64_t started_ms = 0;
  std::string cluster_address;  ///< CAF remoting endpoint; "" on a single node
  double ring_share = 0;
  bool behind = false;
};

/// The roles a single node (no [cluster] section) runs: all of them.
std::vector<std::string> local_roles();

}  // namespace hearth
