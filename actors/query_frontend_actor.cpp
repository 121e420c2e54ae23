#include "actors/query_frontend_actor.hpp"

#include <algorithm>
#include <functional>
#include <map>
#include <memory>
#include <set>

#include "actors/cluster_view.hpp"
#include "actors/log.hpp"

namespace hearth {
namespace {

using self_ptr = query_frontend_actor::stateful_pointer<query_frontend_state>;

// The merged partials of one selection, and the first failure.
struct gathered {
  query::merger merged;
  reply_status failure;
  size_t left = 0;  ///< requests in flight, plus one while a stage is still sending
  bool collect = false;               ///< keep partials unmerged in `parts` (a peer's shard read)
  std::vector<query::partial> parts;  ///< with collect
  std::set<std::string> missing;      ///< cluster: nodes whose data may be missing

  void add(query::partial&& p) {
    if (collect) {
      query::make_portable(p);  // frame maps point into this process: they go to a peer
      parts.push_back(std::move(p));
    } else {
      merged.add(std::move(p));
    }
  }
};
using gathered_ptr = std::shared_ptr<gathered>;
using done_fn = std::function<void(gathered_ptr)>;

void finish_one(const gathered_ptr& g, const done_fn& done) {
  if (--g->left == 0) done(g);
}

void fail(const gathered_ptr& g, reply_status s) {
  if (g->failure.ok()) g->failure = std::move(s);
}

// Sends one read (a segment_ref, or a batch of them) to the next reader; its partial goes into `g`.
template <class What>
void send_read(self_ptr self, const gathered_ptr& g, What&& what, const query::query_spec& spec,
               const done_fn& done) {
  auto& st = self->state;
  const size_t n = st.opts.readers.size();
  st.reads_in_flight.resize(n);
  // The least busy reader, ties broken round robin.
  size_t pick = st.next_reader++ % n;
  for (size_t k = 1; k < n; ++k) {
    const size_t i = (pick + k) % n;
    if (st.reads_in_flight[i] < st.reads_in_flight[pick]) pick = i;
  }
  ++st.reads_in_flight[pick];
  ++g->left;
  self->request(st.opts.readers[pick], st.opts.timeout, read_atom::value, std::forward<What>(what),
                spec)
      .then(
          [self, pick, g, done](query_partial& rp) {
            --self->state.reads_in_flight[pick];
            if (!rp.status.ok()) fail(g, rp.status);
            if (rp.status.ok()) g->add(std::move(rp.data));
            finish_one(g, done);
          },
          [self, pick, g, done](caf::error& e) {
            --self->state.reads_in_flight[pick];
            fail(g, reply_status::from(
                        error{errc::unavailable, "reader did not answer: " + caf::to_string(e)}));
            finish_one(g, done);
          });
}

// Queries `parts` and then, on the readers, the segment files each lists.
void query_partitions(self_ptr self, const gathered_ptr& g, const std::vector<partition_actor>& parts,
                      const query::query_spec& spec, const done_fn& done) {
  auto timeout = self->state.opts.timeout;
  for (auto& p : parts) {
    ++g->left;
    self->request(p, timeout, query_atom::value, spec)
        .then(
            [self, g, spec, done](query_partial& part) {
              if (!part.status.ok()) fail(g, part.status);
              if (part.status.ok()) {
                g->add(std::move(part.data));
                // The partition's segment files go to the readers, in parallel. A pprof export's
                // go in one batch per reader: each file's partial holds nearly every symbol of
                // its service, and merging them on the readers, a batch into one partial, spares
                // the frontend a merge (all of those symbols interned again) per file.
                if (spec.kind == static_cast<uint8_t>(query::query_kind::merge_pprof) &&
                    part.to_read.size() > 1) {
                  std::vector<std::vector<segment_ref>> batches(std::min(
                      std::max<size_t>(1, self->state.opts.export_batches), part.to_read.size()));
                  for (size_t i = 0; i < part.to_read.size(); ++i)
                    batches[i % batches.size()].push_back(std::move(part.to_read[i]));
                  for (auto& batch : batches) send_read(self, g, std::move(batch), spec, done);
                } else {
                  for (auto& ref : part.to_read) send_read(self, g, std::move(ref), spec, done);
                }
              }
              finish_one(g, done);
            },
            [g, done](caf::error& e) {
              fail(g, reply_status::from(
                          error{errc::unavailable, "partition did not answer: " + caf::to_string(e)}));
              finish_one(g, done);
            });
  }
}

// Queries the named shards (parallel tenants/shards) of this node's partitions.
void query_local_shards(self_ptr self, const gathered_ptr& g, const std::vector<std::string>& tenants,
                        const std::vector<uint32_t>& shards, const query::query_spec& spec,
                        const done_fn& done) {
  std::map<std::string, std::vector<uint32_t>> by_tenant;
  for (size_t i = 0; i < tenants.size() && i < shards.size(); ++i) by_tenant[tenants[i]].push_back(shards[i]);
  auto timeout = self->state.opts.timeout;
  for (auto& [tenant, want] : by_tenant) {
    ++g->left;
    self->request(self->state.ingester, timeout, get_atom::value, tenant, false)
        .then(
            [self, g, spec, done, want = want](std::vector<partition_actor>& ps) {
              std::vector<partition_actor> sel;
              for (uint32_t s : want)
                if (s < ps.size()) sel.push_back(ps[s]);
              query_partitions(self, g, sel, spec, done);
              finish_one(g, done);
            },
            [g, done](caf::error& e) {
              fail(g, reply_status::from(
                          error{errc::unavailable, "ingester did not answer: " + caf::to_string(e)}));
              finish_one(g, done);
            });
  }
}

// Cluster: one tenant shard to read, with the replicas that may answer it, best first.
struct shard_read {
  std::string tenant;
  uint32_t shard = 0;
  std::vector<uint32_t> candidates;  ///< member indices
  size_t next = 0;                   ///< the candidate asked now
  std::vector<std::string> lacking;  ///< replicas not reachable and caught up: named if not read
  size_t caught_up = 0;  ///< the first caught_up candidates were reachable and caught up
};
using shard_plan = std::shared_ptr<std::vector<shard_read>>;

// Sends each shard of `which` to its current candidate: this node's partitions, or one request per
// peer. A peer that fails moves its shards to their next candidate; a shard left without one
// names its missing replicas in the answer.
void dispatch_shards(self_ptr self, const gathered_ptr& g, shard_plan plan, std::vector<size_t> which,
                     query::query_spec spec, done_fn done) {
  cluster_view& view = *self->state.opts.cluster;
  std::map<uint32_t, std::vector<size_t>> by_node;
  for (size_t k : which) {
    auto& sr = (*plan)[k];
    if (sr.next >= sr.candidates.size()) {
      for (auto& n : sr.lacking) g->missing.insert(n);
      continue;
    }
    if (sr.next >= sr.caught_up)  // read from a replica that may lack writes
      for (auto& n : sr.lacking) g->missing.insert(n);
    by_node[sr.candidates[sr.next]].push_back(k);
  }
  for (auto& [node, ks] : by_node) {
    shard_query q;
    for (size_t k : ks) {
      q.tenants.push_back((*plan)[k].tenant);
      q.shards.push_back((*plan)[k].shard);
    }
    q.spec = spec;
    if (node == 0) {
      query_local_shards(self, g, q.tenants, q.shards, spec, done);
      continue;
    }
    auto route = view.route_to(node);
    ++g->left;
    auto retry = [self, g, plan, ks = ks, spec, done, node = node, &view](const std::string& why) {
      log::warn("query", "peer " + view.member(node).name + " did not answer a read: " + why +
                             "; trying the next replica");
      for (size_t k : ks) {
        auto& sr = (*plan)[k];
        ++sr.next;
        if (std::find(sr.lacking.begin(), sr.lacking.end(), view.member(node).name) == sr.lacking.end())
          sr.lacking.push_back(view.member(node).name);
      }
      dispatch_shards(self, g, plan, ks, spec, done);
      finish_one(g, done);
    };
    if (!route.handle) {
      retry("not connected");
      continue;
    }
    self->request(route.handle, view.options().rpc_timeout, query_atom::value, std::move(q))
        .then(
            [g, done, retry](shard_query_reply& r) {
              if (!r.status.ok()) return retry(r.status.message);
              for (auto& p : r.parts) g->add(std::move(p));
              finish_one(g, done);
            },
            [retry](caf::error& e) { retry(caf::to_string(e)); });
  }
}

void cluster_gather(self_ptr self, const std::vector<std::string>& tenants, const query::query_spec& spec,
                    done_fn done) {
  cluster_view& view = *self->state.opts.cluster;
  auto g = std::make_shared<gathered>();
  g->left = 1;
  auto plan = std::make_shared<std::vector<shard_read>>();
  std::vector<cluster_view::route> routes(view.size());
  for (size_t i = 0; i < view.size(); ++i) routes[i] = view.route_to(i);
  // Reachable: this node, or a peer with a connection that heartbeats.
  auto reachable = [&](uint32_t m) {
    return m == 0 || (routes[m].handle && routes[m].state == cluster::node_state::alive);
  };
  for (const auto& t : tenants)
    for (uint32_t s = 0; s < view.options().shards; ++s) {
      shard_read sr;
      sr.tenant = t;
      sr.shard = s;
      auto reps = view.replicas(t, s);
      for (uint32_t m : reps)
        if (reachable(m) && !routes[m].behind) sr.candidates.push_back(m);
      sr.caught_up = sr.candidates.size();
      // Then replicas that may lack writes (catching up, or suspect): better than nothing.
      for (uint32_t m : reps)
        if (std::find(sr.candidates.begin(), sr.candidates.end(), m) == sr.candidates.end() &&
            (reachable(m) || (routes[m].handle && routes[m].state != cluster::node_state::down)))
          sr.candidates.push_back(m);
      for (uint32_t m : reps)
        if (!reachable(m) || routes[m].behind) sr.lacking.push_back(view.member(m).name);
      plan->push_back(std::move(sr));
    }
  std::vector<size_t> all(plan->size());
  for (size_t k = 0; k < all.size(); ++k) all[k] = k;
  dispatch_shards(self, g, plan, std::move(all), spec, done);
  finish_one(g, done);
}

// Fans `spec` out to every partition of `tenants` and calls `done` once all answered (or failed).
void gather(self_ptr self, const std::vector<std::string>& tenants, const query::query_spec& spec,
            done_fn done) {
  if (self->state.opts.cluster != nullptr) return cluster_gather(self, tenants, spec, std::move(done));
  auto g = std::make_shared<gathered>();
  g->left = 1;
  auto timeout = self->state.opts.timeout;
  self->request(self->state.ingester, timeout, get_atom::value, tenants)
      .then(
          [self, g, spec, done](std::vector<partition_actor>& parts) {
            query_partitions(self, g, parts, spec, done);
            finish_one(g, done);
          },
          [g, done](caf::error& e) {
            fail(g, reply_status::from(
                        error{errc::unavailable, "ingester did not answer: " + caf::to_string(e)}));
            finish_one(g, done);
          });
}

query_result failed(const reply_status& s) {
  query_result r;
  r.status = s;
  return r;
}

// Names the nodes whose data may be missing (cluster), and counts and logs such an answer.
void mark_partial(self_ptr self, query_result& r, const gathered& g) {
  if (g.missing.empty() || !r.status.ok()) return;
  r.partial_nodes.assign(g.missing.begin(), g.missing.end());
  std::string names;
  for (auto& n : r.partial_nodes) names += (names.empty() ? "" : ",") + n;
  self->state.opts.cluster->metrics().partial_queries.Increment();
  log::warn("query", "partial result: no live caught-up replica for some shards of node(s) " + names);
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
      r.series = m.render_series(q.spec.group_by,
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
          auto maybe_done = [self, rp, req, max_nodes, sides]() mutable {
            if (sides->first && sides->second) {
              auto r = render_pair(*req, max_nodes, *sides->first, *sides->second);
              sides->first->missing.insert(sides->second->missing.begin(), sides->second->missing.end());
              mark_partial(self, r, *sides->first);
              rp.deliver(std::move(r));
            }
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
        gather(self, req->tenants, req->spec, [self, rp, req, max_nodes](gathered_ptr g) mutable {
          auto r = render(*req, max_nodes, *g);
          mark_partial(self, r, *g);
          rp.deliver(std::move(r));
        });
        return rp;
      },
      [self](query_atom, shard_query& q) -> caf::result<shard_query_reply> {
        auto rp = self->make_response_promise<shard_query_reply>();
        auto g = std::make_shared<gathered>();
        g->collect = true;
        g->left = 1;
        done_fn done = [rp](gathered_ptr g) mutable {
          shard_query_reply r;
          r.status = g->failure;
          if (r.status.ok()) r.parts = std::move(g->parts);
          rp.deliver(std::move(r));
        };
        query_local_shards(self, g, q.tenants, q.shards, q.spec, done);
        finish_one(g, done);
        return rp;
      },
  };
}

}  // namespace hearth
