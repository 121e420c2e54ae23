#pragma once
// The Cap'n Proto RPC server (cluster/schema/*.capnp, docs/design/rpc.md): one kj event loop on its
// own thread, serving the Hearth bootstrap (login -> Ingest, Query, Admin). Every call is bridged
// to the same actors the HTTP gateway uses (cluster/actor_bridge.hpp) and validated by the same
// code (query requests go through api::parse_request); errors become Cap'n Proto exceptions whose
// description is "<errc name> <number>: <message>".

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

#include "actors/interfaces.hpp"
#include "cluster/auth.hpp"
#include "cluster/query_api.hpp"
#include "format/error.hpp"

namespace hearth {

class cluster_view;

/// Serves RPC until stopped. Thread-safety: start/stop from one thread (main).
class rpc_server {
 public:
  struct options {
    std::string host = "127.0.0.1";
    uint16_t port = 4041;
    uint64_t max_body_bytes = 16ull << 20;  ///< largest Ingest.push data
    api::limits limits;
    std::chrono::seconds timeout{60};             ///< reads and ingest
    std::chrono::seconds admin_timeout{600};      ///< compaction, retention, verify
    bool multitenancy = false;
    auth_config auth;
    std::string config_toml;   ///< Admin.config: the effective configuration (secrets redacted)
    std::string http_address;  ///< for the cluster status
    std::string version;
    /// The cluster's membership view, or null on a single node. Must outlive the server.
    const cluster_view* cluster = nullptr;
  };
  struct actors {
    distributor_actor distributor;
    query_frontend_actor frontend;
    ingester_actor ingester;
    compactor_actor compactor;
    admin_actor admin;
  };

  rpc_server(caf::actor_system& sys, actors handles, options opts);
  ~rpc_server();
  rpc_server(const rpc_server&) = delete;
  rpc_server& operator=(const rpc_server&) = delete;

  /// Binds the listener and starts serving on a new thread. Returns the bound port.
  result<uint16_t> start();
  /// Stops accepting, ends the event loop (dropping open connections) and joins the thread.
  void stop();

  struct impl;

 private:
  std::unique_ptr<impl> impl_;
};

}  // namespace hearth
