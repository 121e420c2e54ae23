#include "actors/cluster_actor.hpp"

#include <caf/io/middleman.hpp>

#include <algorithm>
#include <chrono>

#include "actors/log.hpp"
#include "format/tenant.hpp"

namespace hearth {
namespace {

int64_t unix_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::string join(std::vector<std::string> v) {
  std::string out;
  for (auto& s : v) out += (out.empty() ? "" : ",") + s;
  return "[" + out + "]";
}

}  // namespace

node_hello make_hello(const cluster_view& view, uint64_t boot_id) {
  node_hello h;
  h.name = view.self_name();
  h.roles = view.member(0).roles;
  h.tokens = view.options().tokens;
  h.replication_factor = view.options().replication_factor;
  h.shards = view.options().shards;
  h.boot_id = boot_id;
  h.hints_for = view.hints_for();
  return h;
}

std::string check_hello(const cluster_view& view, const node_hello& h, int expected) {
  int idx = view.index_of(h.name);
  if (expected > 0 && idx != expected)
    return "the node at " + view.member(static_cast<size_t>(expected)).address + " announced name \"" +
           h.name + "\" but cluster.peers names it \"" + view.member(static_cast<size_t>(expected)).name + "\"";
  if (idx == 0) return "node \"" + h.name + "\" announces this node's own name";
  if (idx < 0) return "unknown node name \"" + h.name + "\" (not in cluster.peers)";
  auto known = std::vector<std::string>{"distributor", "ingester", "querier", "compactor", "store"};
  for (const auto& r : h.roles)
    if (std::find(known.begin(), known.end(), r) == known.end())
      return "node \"" + h.name + "\" announces unknown role \"" + r + "\"";
  auto mine = view.member(static_cast<size_t>(idx)).roles;
  auto theirs = h.roles;
  std::sort(mine.begin(), mine.end());
  std::sort(theirs.begin(), theirs.end());
  if (mine != theirs)
    return "node \"" + h.name + "\" announces roles " + join(theirs) + " but cluster.peers configures " +
           join(mine);
  const auto& o = view.options();
  if (h.tokens != o.tokens || h.replication_factor != o.replication_factor || h.shards != o.shards)
    return "node \"" + h.name + "\" has tokens=" + std::to_string(h.tokens) +
           " replication_factor=" + std::to_string(h.replication_factor) +
           " storage.shards=" + std::to_string(h.shards) + ", this node " + std::to_string(o.tokens) +
           "/" + std::to_string(o.replication_factor) + "/" + std::to_string(o.shards) +
           ": every node must agree";
  return {};
}

cluster_node_actor::behavior_type cluster_node_fn(
    cluster_node_actor::stateful_pointer<cluster_node_state> self, cluster_view* view,
    uint64_t boot_id, ingester_actor ingester, query_frontend_actor frontend) {
  auto& st = self->state;
  st.view = view;
  st.ingester = std::move(ingester);
  st.frontend = std::move(frontend);
  st.hello = make_hello(*view, boot_id);
  return {
      [self](heartbeat_atom, node_hello& h) -> node_hello_reply {
        auto& st = self->state;
        node_hello_reply r;
        st.hello.hints_for = st.view->hints_for();
        r.info = st.hello;
        std::string why = check_hello(*st.view, h, -1);
        if (!why.empty()) {
          if (st.refused_logged.insert(h.name + "\n" + why).second)
            log::warn("cluster", "refused a heartbeat: " + why);
          r.status = reply_status::from(
              error{errc::invalid_argument, "refused by " + st.view->self_name() + ": " + why});
        }
        return r;
      },
      [self](replica_atom, uint32_t shard, ingest_batch& b) -> caf::result<append_reply> {
        auto& st = self->state;
        if (!st.view->member(0).has_role("ingester"))
          return append_reply{reply_status::from(error{errc::unavailable, st.view->self_name() +
                                                                              " is not an ingester"}),
                              0, 0};
        if (!valid_tenant_id(b.tenant) || shard >= st.view->options().shards)
          return append_reply{
              reply_status::from(error{errc::invalid_argument,
                                       "replica write of an invalid tenant or shard " + std::to_string(shard)}),
              0, 0};
        auto rp = self->make_response_promise<append_reply>();
        auto timeout = st.view->options().rpc_timeout;
        std::string tenant = b.tenant;
        self->request(st.ingester, timeout, get_atom::value, tenant, true)
            .then(
                [self, rp, shard, b = std::move(b), timeout](std::vector<partition_actor>& ps) mutable {
                  if (shard >= ps.size()) {
                    rp.deliver(append_reply{
                        reply_status::from(error{errc::unavailable, "no partition for the shard"}), 0, 0});
                    return;
                  }
                  self->request(ps[shard], timeout, append_atom::value, std::move(b))
                      .then([rp](append_reply& r) mutable { rp.deliver(std::move(r)); },
                            [rp](caf::error& e) mutable {
                              rp.deliver(append_reply{
                                  reply_status::from(error{errc::unavailable,
                                                           "partition did not acknowledge: " +
                                                               caf::to_string(e)}),
                                  0, 0});
                            });
                },
                [rp](caf::error& e) mutable {
                  rp.deliver(append_reply{
                      reply_status::from(error{errc::unavailable, "ingester unavailable: " + caf::to_string(e)}),
                      0, 0});
                });
        return rp;
      },
      [self](query_atom a, shard_query& q) {
        return self->delegate(self->state.frontend, a, std::move(q));
      },
  };
}

namespace {

using membership_ptr = cluster_membership_actor::stateful_pointer<cluster_membership_state>;

void publish(membership_ptr self, size_t i) {
  auto& st = self->state;
  int64_t now = unix_ms();
  st.view->set_peer(i, st.members.state(i, now), st.members.last_heard_ms(i), st.members.boot_id(i),
                    st.handles[i], static_cast<bool>(st.handles[i]));
}

void drop_handle(membership_ptr self, size_t i) {
  auto& st = self->state;
  if (st.handles[i]) self->demonitor(st.handles[i].address());
  st.handles[i] = nullptr;
  st.members.disconnected(i);
  publish(self, i);
}

// Sends member i its oldest hint, then the next, while it acknowledges them.
void replay_next(membership_ptr self, size_t i) {
  auto& st = self->state;
  cluster_hint h;
  if (!st.handles[i] || st.members.state(i, unix_ms()) != cluster::node_state::alive ||
      !st.view->peek_hint(i, h)) {
    if (st.replaying[i] && st.view->hints_pending(i) == 0)
      log::info("cluster", "peer " + st.view->member(i).name + " caught up: every hinted write delivered");
    st.replaying[i] = false;
    return;
  }
  st.replaying[i] = true;
  self->request(st.handles[i], st.view->options().rpc_timeout, replica_atom::value, h.shard,
                std::move(h.batch))
      .then(
          [self, i](append_reply& r) {
            auto& st = self->state;
            if (!r.status.ok() && static_cast<errc>(r.status.code) == errc::unavailable) {
              st.replaying[i] = false;  // retried at the next heartbeat
              return;
            }
            if (!r.status.ok())  // refused for good (limits): replaying it again cannot help
              log::warn("cluster", "peer " + st.view->member(i).name +
                                       " refused a hinted write, dropping it: " + r.status.message);
            st.view->pop_hint(i);
            replay_next(self, i);
          },
          [self, i](caf::error&) { self->state.replaying[i] = false; });
}

// One heartbeat to member i (which has a handle); the reply updates membership and the view.
void send_heartbeat(membership_ptr self, size_t i) {
  auto& st = self->state;
  auto hb_timeout = std::chrono::milliseconds(st.view->options().timing.suspect_after_ms);
  self->request(st.handles[i], hb_timeout, heartbeat_atom::value, make_hello(*st.view, st.boot_id))
      .then(
          [self, i](node_hello_reply& r) {
            auto& st = self->state;
            const auto& m = st.view->member(i);
            std::string why = check_hello(*st.view, r.info, static_cast<int>(i));
            if (!why.empty()) {
              if (st.refused_logged.insert(m.name + "\n" + why).second)
                log::error("cluster", "refusing peer at " + m.address + ": " + why);
              drop_handle(self, i);
              return;
            }
            if (!r.status.ok()) {
              if (st.refused_logged.insert(m.name + "\n" + r.status.message).second)
                log::error("cluster", "peer " + m.name + " at " + m.address +
                                          " refused this node: " + r.status.message);
              return;
            }
            uint64_t old_boot = st.members.boot_id(i);
            switch (st.members.heard(i, r.info.boot_id, unix_ms())) {
              case cluster::membership::change::joined:
                log::info("cluster", "peer " + m.name + " joined (roles " + join(r.info.roles) + ")");
                break;
              case cluster::membership::change::restarted:
                log::info("cluster", "peer " + m.name + " restarted (boot id " + std::to_string(old_boot) +
                                         " -> " + std::to_string(r.info.boot_id) + ")");
                break;
              case cluster::membership::change::recovered:
                log::info("cluster", "peer " + m.name + " is alive again");
                break;
              case cluster::membership::change::none: break;
            }
            st.view->set_peer_hints(i, std::move(r.info.hints_for));
            publish(self, i);
            if (!st.replaying[i] && st.view->hints_pending(i) > 0) replay_next(self, i);
          },
          [](caf::error&) {});
}

// Connects to member i through the middleman actor, without blocking this actor: a listener
// that accepts but never completes the handshake (a wrong port) costs one pending attempt that
// times out after suspect_after, not the heartbeats of every other peer.
void connect_to(membership_ptr self, size_t i) {
  auto& st = self->state;
  const auto& m = st.view->member(i);
  auto colon = m.address.rfind(':');
  std::string host = m.address.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[') host = host.substr(1, host.size() - 2);
  auto port = static_cast<uint16_t>(std::stoul(m.address.substr(colon + 1)));
  st.connecting[i] = true;
  auto timeout = std::chrono::milliseconds(st.view->options().timing.suspect_after_ms);
  auto fail = [self, i](const std::string& why) {
    auto& st = self->state;
    st.connecting[i] = false;
    if (st.connect_failed_logged[i]) return;
    st.connect_failed_logged[i] = true;
    const auto& m = st.view->member(i);
    log::info("cluster", "cannot reach peer " + m.name + " at " + m.address + " (" + why +
                             "); retrying every heartbeat");
  };
  self->request(self->system().middleman().actor_handle(), timeout, caf::connect_atom::value, host, port)
      .then(
          [self, i, fail](const caf::node_id&, caf::strong_actor_ptr& ptr, const std::set<std::string>&) {
            auto& st = self->state;
            if (!ptr) return fail("no actor published there");
            st.connecting[i] = false;
            auto h = caf::actor_cast<cluster_node_actor>(ptr);
            st.handles[i] = h;
            st.connected_ms[i] = unix_ms();
            self->monitor(h);
            st.connect_failed_logged[i] = false;
            log::info("cluster", "connected to peer " + st.view->member(i).name + " at " +
                                     st.view->member(i).address);
            send_heartbeat(self, i);
          },
          [self, fail](caf::error& e) { fail(self->system().render(e)); });
}

void heartbeat_round(membership_ptr self) {
  auto& st = self->state;
  cluster_view& view = *st.view;
  for (size_t i = 1; i < view.size(); ++i) {
    if (!st.handles[i] && !st.connecting[i]) connect_to(self, i);
    else if (st.handles[i]) send_heartbeat(self, i);
    publish(self, i);
  }
  // Joined: every peer answered once, or down_after passed since the start (peers that are
  // down then are not waited for).
  int64_t now = unix_ms();
  if (!st.joined) {
    bool all = true;
    for (size_t i = 1; i < view.size(); ++i) all = all && st.members.ever_heard(i);
    if (all || now - st.start_ms >= view.options().timing.down_after_ms) {
      st.joined = true;
      view.set_joined();
      log::info("cluster", all ? "joined the cluster: every peer answered"
                               : "joined the cluster without the peers that did not answer");
    }
  }
  double counts[3] = {0, 0, 0};
  for (size_t i = 1; i < view.size(); ++i) {
    auto s = st.members.state(i, now);
    counts[static_cast<int>(s)] += 1;
    // A connection that has not answered a heartbeat for down_after is dropped and made again
    // (a fresh one gets down_after to answer).
    if (s == cluster::node_state::down && st.handles[i] && st.members.ever_heard(i) &&
        now - st.connected_ms[i] >= view.options().timing.down_after_ms)
      drop_handle(self, i);
  }
  for (auto s : {cluster::node_state::alive, cluster::node_state::suspect, cluster::node_state::down})
    view.metrics().peers.Add({{"state", std::string(cluster::to_string(s))}}).Set(counts[static_cast<int>(s)]);
}

}  // namespace

cluster_membership_actor::behavior_type cluster_membership_fn(
    cluster_membership_actor::stateful_pointer<cluster_membership_state> self, cluster_view* view,
    uint64_t boot_id) {
  auto& st = self->state;
  st.view = view;
  st.boot_id = boot_id;
  st.start_ms = unix_ms();
  st.members = cluster::membership(view->size(), view->options().timing);
  view->set_self_boot_id(boot_id);
  st.handles.resize(view->size());
  st.connected_ms.resize(view->size(), 0);
  st.connecting.resize(view->size(), false);
  st.replaying.resize(view->size(), false);
  st.connect_failed_logged.resize(view->size(), false);
  self->set_down_handler([self](caf::down_msg& dm) {
    auto& st = self->state;
    for (size_t i = 1; i < st.handles.size(); ++i)
      if (st.handles[i] && st.handles[i].address() == dm.source) {
        log::warn("cluster", "lost the connection to peer " + st.view->member(i).name);
        st.handles[i] = nullptr;
        st.members.disconnected(i);
        publish(self, i);
      }
  });
  self->send(self, tick_atom::value);
  return {
      [self](tick_atom) {
        heartbeat_round(self);
        self->delayed_send(self, std::chrono::milliseconds(self->state.view->options().heartbeat_interval_ms),
                           tick_atom::value);
      },
  };
}

}  // namespace hearth
