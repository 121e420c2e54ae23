#pragma once
// Membership of the cluster as seen by one node (pure: no CAF, no sockets, no clock). A peer is
// alive while heartbeats arrive, suspect after `suspect_after` without one (or as soon as its
// connection drops), and down after `down_after`. A peer never heard from is down. A new boot id
// means the peer restarted (it lost its in-memory state; hints for it are replayed).

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace hearth::cluster {

enum class node_state : uint8_t { alive = 0, suspect = 1, down = 2 };

std::string_view to_string(node_state s);

struct membership_timing {
  int64_t suspect_after_ms = 3000;
  int64_t down_after_ms = 10000;
};

class membership {
 public:
  /// What a heartbeat changed.
  enum class change : uint8_t {
    none,       ///< the peer was alive and still is
    joined,     ///< first heartbeat from the peer since this node started
    restarted,  ///< the peer's boot id changed: a new process
    recovered,  ///< same process, heard again after being suspect or down
  };

  membership(size_t peers, membership_timing timing) : peers_(peers), timing_(timing) {}

  /// Records a heartbeat (or a heartbeat reply) of peer `i` at `now_ms`.
  change heard(size_t i, uint64_t boot_id, int64_t now_ms);
  /// Records that the connection to peer `i` closed: suspect at once, until heard again.
  void disconnected(size_t i);

  node_state state(size_t i, int64_t now_ms) const;
  /// Unix ms of the last heartbeat (0: never).
  int64_t last_heard_ms(size_t i) const { return peers_[i].last_ms; }
  uint64_t boot_id(size_t i) const { return peers_[i].boot_id; }
  bool ever_heard(size_t i) const { return peers_[i].last_ms != 0; }
  size_t size() const { return peers_.size(); }

 private:
  struct peer {
    int64_t last_ms = 0;
    uint64_t boot_id = 0;
    bool connected = false;
  };
  std::vector<peer> peers_;
  membership_timing timing_;
};

}  // namespace hearth::cluster
