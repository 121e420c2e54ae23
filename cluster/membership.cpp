#include "cluster/membership.hpp"

namespace hearth::cluster {

std::string_view to_string(node_state s) {
  switch (s) {
    case node_state::alive: return "alive";
    case node_state::suspect: return "suspect";
    case node_state::down: return "down";
  }
  return "down";
}

membership::change membership::heard(size_t i, uint64_t boot_id, int64_t now_ms) {
  peer& p = peers_[i];
  node_state before = state(i, now_ms);
  bool first = p.last_ms == 0;
  bool new_boot = !first && boot_id != p.boot_id;
  if (now_ms > p.last_ms) p.last_ms = now_ms;
  p.boot_id = boot_id;
  p.connected = true;
  if (first) return change::joined;
  if (new_boot) return change::restarted;
  if (before != node_state::alive) return change::recovered;
  return change::none;
}

void membership::disconnected(size_t i) { peers_[i].connected = false; }

node_state membership::state(size_t i, int64_t now_ms) const {
  const peer& p = peers_[i];
  if (p.last_ms == 0) return node_state::down;
  int64_t silent = now_ms - p.last_ms;
  if (silent >= timing_.down_after_ms) return node_state::down;
  if (!p.connected || silent >= timing_.suspect_after_ms) return node_state::suspect;
  return node_state::alive;
}

}  // namespace hearth::cluster
