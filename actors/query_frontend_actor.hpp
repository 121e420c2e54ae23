#pragma once
// The query frontend: fans a query out to every partition of the tenant, merges the partial
// answers by symbol name (ids never cross a partition boundary), truncates last (max_nodes with
// `other` folding) and renders the flame graph.

#include "actors/interfaces.hpp"
#include "query/flame_tree.hpp"

namespace hearth {

struct query_frontend_options {
  int64_t max_nodes_default = 8192;
  std::chrono::seconds timeout{60};
};

struct query_frontend_state {
  static inline const char* name = "query-frontend";
  query_frontend_options opts;
  ingester_actor ingester;
};

query_frontend_actor::behavior_type query_frontend_fn(
    query_frontend_actor::stateful_pointer<query_frontend_state> self, query_frontend_options opts,
    ingester_actor ingester);

/// Merges a partition's flat tree into `into` by names along paths.
void merge_partial(const tree_partial& p, query::flame_tree& into);

}  // namespace hearth
