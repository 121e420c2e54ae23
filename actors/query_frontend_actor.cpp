#include "actors/query_frontend_actor.hpp"

#include <functional>
#include <memory>

namespace hearth {
namespace {

using self_ptr = query_frontend_actor::stateful_pointer<query_frontend_state>;

// The merged partials of one selection, and the first failure.
struct gathered {
  query::merger merged;
  reply_status failure;
  size_t left = 0;
};
using gathered_ptr = std::shared_ptr<gathered>;

// Fans `spec` out to every partition of `tenants` and calls `done` once all answered (or failed).
void gather(self_ptr self, const std::vector<std::string>& tenants, const query::query_spec& spec,
            std::function<void(gathered_ptr)> done) {
  auto g = std::make_shared<gathered>();
  auto timeout = self->state.opts.timeout;
  self->request(self->state.ingester, timeout, get_atom::value, tenants)
      .then(
          [self, g, spec, timeout, done](std::vector<partition_actor>& parts) {
            if (parts.empty()) return done(g);
            g->left = parts.size();
            for (auto& p : parts)
              self->request(p, timeout, query_atom::value, spec)
                  .then(
                      [self, g, spec, timeout, done](query_partial& part) {
                        if (!part.status.ok() && g->failure.ok()) g->failure = part.status;
                        if (part.status.ok()) {
                          g->merged.add(std::move(part.data));
                          // The partition's segment files go to the readers, in parallel.
                          auto& readers = self->state.opts.readers;
                          for (auto& ref : part.to_read) {
                            ++g->left;
                            auto& r = readers[self->state.next_reader++ % readers.size()];
                            self->request(r, timeout, read_atom::value, std::move(ref), spec)
                                .then(
                                    [g, done](query_partial& rp) {
                                      if (!rp.status.ok() && g->failure.ok()) g->failure = rp.status;
                                      if (rp.status.ok()) g->merged.add(std::move(rp.data));
                                      if (--g->left == 0) done(g);
                                    },
                                    [g, done](caf::error& e) {
                                      if (g->failure.ok())
                                        g->failure = reply_status::from(error{
                                            errc::unavailable,
                                            "reader did not answer: " + caf::to_string(e)});
                                      if (--g->left == 0) done(g);
                                    });
                          }
                        }
                        if (--g->left == 0) done(g);
                      },
                      [g, done](caf::error& e) {
                        if (g->failure.ok())
                          g->failure = reply_status::from(error{
                              errc::unavailable, "partition did not answer: " + caf::to_string(e)});
                        if (--g->left == 0) done(g);
                      });
          },
          [g, done](caf::error& e) {
            g->failure = reply_status::from(
                error{errc::unavailable, "ingester did not answer: " + caf::to_string(e)});
            done(g);
          });
}

query_result failed(const reply_status& s) {
  query_result r;
  r.status = s;
  return r;
}

// Renders a single-selection request from its merged partials.
query_result render(const query_request& q, int64_t max_nodes, gathered& g) {
  if (!g.failure.ok()) return failed(g.failure);
  query_result r;
  auto& m = g.merged;
  switch (static_cast<query_op>(q.op)) {
    case query_op::flame_graph: {
      m.tree().finalize();
      r.graph = query::render_flame_graph(m.tree(), max_nodes);
      bool grouped = !q.spec.group_by.empty();
      for (auto& p : m.points()) {
        r.point_times_ns.push_back(p.time_ns);
        r.point_values.push_back(p.value);
        if (grouped) r.point_groups.push_back(std::move(p.group));
      }
      break;
    }
    case query_op::tree:
      m.tree().finalize();
      r.bytes = query::render_tree_bytes(m.tree(), max_nodes);
      break;
    case query_op::findings:
      m.tree().finalize();
      r.findings = query::find(m.tree(), q.top_n);
      break;
    case query_op::values: r.values = m.values(); break;
    case query_op::label_sets: r.label_sets = m.label_sets(); break;
    case query_op::series:
      r.series = query::render_series(m.series(), q.spec.group_by,
                                      q.aggregation == 1 ? query::series_aggregation::average
                                                         : query::series_aggregation::sum,
                                      q.limit);
      break;
    case query_op::pprof: {
      query::pprof_options o;
      if (auto pt = query::parse_profile_type(q.spec.profile_type)) o.type = *pt;
      o.period = q.pprof_period;
      o.max_nodes = q.max_nodes;  // 0: a full-fidelity export
      r.bytes = query::render_pprof(m.pprof(), o);
      break;
    }
    case query_op::stats: r.stats = m.stats(); break;
    case query_op::analyze: r.counts = m.counts(); break;
    default:
      r.status = reply_status::from(
          error{errc::invalid_argument, "unknown query op " + std::to_string(q.op)});
  }
  return r;
}

// Renders a two-selection request (diff, regression).
query_result render_pair(const query_request& q, int64_t max_nodes, gathered& left, gathered& right) {
  if (!left.failure.ok()) return failed(left.failure);
  if (!right.failure.ok()) return failed(right.failure);
  auto& lt = left.merged.tree();
  auto& rt = right.merged.tree();
  lt.finalize();
  rt.finalize();
  query_result r;
  if (static_cast<query_op>(q.op) == query_op::diff) {
    auto d = query::render_flame_graph_diff(lt, rt, max_nodes);
    if (!d) return failed(reply_status::from(d.err()));
    r.diff = std::move(*d);
  } else {
    r.regression = query::find_regressions(lt, rt, q.top_n);
  }
  return r;
}

}  // namespace

query_frontend_actor::behavior_type query_frontend_fn(self_ptr self, query_frontend_options opts,
                                                      ingester_actor ingester) {
  self->state.opts = opts;
  self->state.ingester = std::move(ingester);
  return {
      [self](query_atom, query_request& q) -> caf::result<query_result> {
        int64_t max_nodes = q.max_nodes > 0 ? q.max_nodes : self->state.opts.max_nodes_default;
        auto rp = self->make_response_promise<query_result>();
        auto req = std::make_shared<query_request>(std::move(q));
        auto op = static_cast<query_op>(req->op);
        if (op == query_op::diff || op == query_op::regression) {
          auto sides = std::make_shared<std::pair<gathered_ptr, gathered_ptr>>();
          auto maybe_done = [rp, req, max_nodes, sides]() mutable {
            if (sides->first && sides->second)
              rp.deliver(render_pair(*req, max_nodes, *sides->first, *sides->second));
          };
          gather(self, req->tenants, req->spec, [sides, maybe_done](gathered_ptr g) mutable {
            sides->first = std::move(g);
            maybe_done();
          });
          gather(self, req->tenants, req->right, [sides, maybe_done](gathered_ptr g) mutable {
            sides->second = std::move(g);
            maybe_done();
          });
          return rp;
        }
        gather(self, req->tenants, req->spec, [rp, req, max_nodes](gathered_ptr g) mutable {
          rp.deliver(render(*req, max_nodes, *g));
        });
        return rp;
      },
  };
}

}  // namespace hearth
