#include "actors/query_frontend_actor.hpp"

#include <algorithm>
#include <set>

namespace hearth {

void merge_partial(const tree_partial& p, query::flame_tree& into) {
  size_t n = p.parents.size();
  if (n == 0) return;
  std::vector<uint32_t> name_map(p.names.size());
  for (size_t i = 0; i < p.names.size(); ++i) name_map[i] = into.intern(p.names[i]);
  std::vector<uint32_t> node_map(n, query::flame_tree::root);
  into.add_self(query::flame_tree::root, p.selfs[0]);
  for (size_t i = 1; i < n; ++i) {
    // Parents precede children; anything else (a malformed partial) is attached at the root.
    uint32_t parent = p.parents[i] < i ? node_map[p.parents[i]] : query::flame_tree::root;
    uint32_t name = p.name_ids[i] < name_map.size() ? name_map[p.name_ids[i]] : into.intern("?");
    node_map[i] = into.child_by_id(parent, name);
    into.add_self(node_map[i], p.selfs[i]);
  }
}

namespace {

// Accumulates partials of one query until every partition answered.
struct gather {
  query_request req;
  size_t left = 0;
  query::flame_tree tree;
  std::set<std::string> values;
  std::vector<std::pair<int64_t, int64_t>> points;
  reply_status failure;
};

query_result finish(gather& g, int64_t max_nodes) {
  query_result r;
  if (!g.failure.ok()) {
    r.status = g.failure;
    return r;
  }
  if (static_cast<query_kind>(g.req.kind) == query_kind::merge_stacks) {
    g.tree.finalize();
    auto fg = query::render_flame_graph(g.tree, max_nodes);
    r.names = std::move(fg.names);
    r.levels = std::move(fg.levels);
    r.total = fg.total;
    r.max_self = fg.max_self;
    std::sort(g.points.begin(), g.points.end());
    r.point_times_ns.reserve(g.points.size());
    r.point_values.reserve(g.points.size());
    for (auto& [t, v] : g.points) {
      r.point_times_ns.push_back(t);
      r.point_values.push_back(v);
    }
  }
  r.values.assign(g.values.begin(), g.values.end());
  return r;
}

}  // namespace

query_frontend_actor::behavior_type query_frontend_fn(
    query_frontend_actor::stateful_pointer<query_frontend_state> self, query_frontend_options opts,
    ingester_actor ingester) {
  self->state.opts = opts;
  self->state.ingester = std::move(ingester);
  return {
      [self](query_atom, query_request& q) -> caf::result<query_result> {
        auto& st = self->state;
        int64_t max_nodes = q.max_nodes > 0 ? q.max_nodes : st.opts.max_nodes_default;
        auto rp = self->make_response_promise<query_result>();
        auto g = std::make_shared<gather>();
        g->req = q;
        auto timeout = st.opts.timeout;
        self->request(st.ingester, timeout, get_atom::value, q.tenants)
            .then(
                [self, rp, g, max_nodes, timeout](std::vector<partition_actor>& parts) mutable {
                  if (parts.empty()) {
                    rp.deliver(finish(*g, max_nodes));
                    return;
                  }
                  g->left = parts.size();
                  for (auto& p : parts) {
                    self->request(p, timeout, query_atom::value, g->req)
                        .then(
                            [rp, g, max_nodes](query_partial& part) mutable {
                              if (!part.status.ok() && g->failure.ok()) g->failure = part.status;
                              if (part.status.ok()) {
                                merge_partial(part.tree, g->tree);
                                for (auto& v : part.values) g->values.insert(std::move(v));
                                for (size_t i = 0; i < part.point_times_ns.size(); ++i)
                                  g->points.emplace_back(part.point_times_ns[i], part.point_values[i]);
                              }
                              if (--g->left == 0) rp.deliver(finish(*g, max_nodes));
                            },
                            [rp, g, max_nodes](caf::error& e) mutable {
                              if (g->failure.ok())
                                g->failure = reply_status::from(
                                    error{errc::unavailable, "partition did not answer: " +
                                                                 caf::to_string(e)});
                              if (--g->left == 0) rp.deliver(finish(*g, max_nodes));
                            });
                  }
                },
                [rp](caf::error& e) mutable {
                  query_result r;
                  r.status = reply_status::from(
                      error{errc::unavailable, "ingester did not answer: " + caf::to_string(e)});
                  rp.deliver(std::move(r));
                });
        return rp;
      },
  };
}

}  // namespace hearth
