#pragma once
// The HTTP gateway: one kj-http event loop on its own thread serving Pyroscope's HTTP surfaces
// (POST /ingest, Connect push and querier services, /pyroscope/render, /ready, /metrics). It reads
// bodies with a size limit and hands bytes to actors: nothing is decoded on the event loop but
// small query requests. Replies come back through kj cross-thread fulfillers.

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

#include "actors/interfaces.hpp"
#include "cluster/auth.hpp"
#include "format/error.hpp"

namespace hearth {

class cluster_view;
class self_metrics;

/// Serves HTTP until stopped. Thread-safety: start/stop from one thread (main).
class http_gateway {
 public:
  struct options {
    std::string host = "127.0.0.1";
    uint16_t port = 4040;
    uint64_t max_body_bytes = 16ull << 20;
    int64_t max_nodes_default = 8192;
    int64_t max_nodes_max = 1048576;
    int64_t max_range_ns = 31ll * 24 * 3600 * 1000000000ll;
    std::chrono::seconds timeout{60};
    bool multitenancy = false;  ///< require X-Scope-OrgID (else every request is "anonymous")
    auth_config auth;           ///< when enabled, every route but /ready needs credentials (401)
    /// Cluster mode: /ready follows the ring, GET /cluster/status, X-Hearth-Partial on reads,
    /// ingest and reads refused on nodes without the distributor / querier role. Outlives the gateway.
    const cluster_view* cluster = nullptr;
  };
  struct actors {
    distributor_actor distributor;
    query_frontend_actor frontend;
    ingester_actor ingester;
    compactor_actor compactor;
    settings_actor settings;
  };

  http_gateway(caf::actor_system& sys, actors handles, self_metrics& metrics, options opts);
  ~http_gateway();
  http_gateway(const http_gateway&) = delete;
  http_gateway& operator=(const http_gateway&) = delete;

  /// Binds the listener and starts serving on a new thread. Returns the bound port.
  result<uint16_t> start();
  /// Stops accepting, ends the event loop and joins its thread. Idempotent.
  void stop();

  struct impl;

 private:
  std::unique_ptr<impl> impl_;
};

}  // namespace hearth
