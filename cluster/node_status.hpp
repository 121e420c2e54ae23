#pragma once
// What a node reports about itself and its peers in the Admin interface's cluster status. A single
// node has no peers; cluster membership (when a node joins others) supplies them through
// `peer_statuses`, the one place the status reads them from.

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
};

/// The roles every hearth process runs today (one binary, every role).
std::vector<std::string> local_roles();

/// The peers this node knows, by name. A single node (no cluster membership configured) has none.
std::vector<node_status> peer_statuses();

}  // namespace hearth
