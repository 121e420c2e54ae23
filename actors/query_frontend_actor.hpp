#pragma once
// The query frontend: fans each selection of a request out to every partition of the request's
// tenants, merges the partials (by symbol name: ids never cross a partition boundary; see
// query::merger), then truncates and renders last (max_nodes with `other` folding, top-K series,
// findings over the untruncated tree). Diff and regression run their two selections in parallel.

#include "actors/interfaces.hpp"

namespace hearth {

class cluster_view;

struct query_frontend_options {
  int64_t max_nodes_default = 8192;
  std::chrono::seconds timeout{60};
  /// Evaluate segment files; at least one. Each read goes to the reader with the fewest reads in
  /// flight, so with more readers than cores every read of a query runs as soon as a core is
  /// free (the scheduler moves readers between its threads), whatever each one costs.
  std::vector<reader_actor> readers;
  /// A pprof export's files go to this many readers in batches (one per core), each batch merged
  /// into one partial there: the frontend then merges one partial per batch, not per file.
  size_t export_batches = 2;
  /// Cluster mode: each tenant shard is read from its first live, caught-up replica (this node's
  /// partitions or a peer's). Null: a single node. Outlives the actor.
  cluster_view* cluster = nullptr;
};

struct query_frontend_state {
  static inline const char* name = "query-frontend";
  query_frontend_options opts;
  ingester_actor ingester;
  size_t next_reader = 0;                 ///< where the search for the least busy reader starts
  std::vector<uint32_t> reads_in_flight;  ///< per reader of opts.readers
};

query_frontend_actor::behavior_type query_frontend_fn(
    query_frontend_actor::stateful_pointer<query_frontend_state> self, query_frontend_options opts,
    ingester_actor ingester);

}  // namespace hearth
