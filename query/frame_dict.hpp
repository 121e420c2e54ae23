#pragma once
// A process-wide dictionary of frame paths, so that a block's stack tree is expanded into frame
// names once (when the block is first queried) instead of once per query, and so that the
// partials of many blocks merge by adding into an array instead of by walking name paths.
//
// A frame path is what a flame-tree node is: the names from the root down to it. The dictionary
// numbers every path it has seen, append-only: node 0 is the root, node n > 0 has a parent < n and
// a name. `map` gives each stack node of a block the dictionary node of its expanded frame path
// (query/block_query.hpp describes the expansion: inlined lines, "0x..." frames); the result is
// cached with the block (actors/block_store). A query then sums sample values per stack node as
// before, and the merger adds those sums into the dictionary nodes, building the flame tree once
// per query from the nodes it touched (`materialize`).
// Thread-safety: every member may be called from any thread (a shared mutex inside).

#include <cstdint>
#include <memory>
#include <shared_mutex>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "format/block.hpp"
#include "query/flame_tree.hpp"

namespace hearth::query {

class frame_dict;

/// The dictionary node of every stack node of one block.
struct block_frames {
  std::shared_ptr<const frame_dict> dict;
  /// node[s]: the dictionary node of stack node s; invalid when its path is inconsistent
  /// (a corrupt block). node[0] == 0, the root.
  std::vector<uint32_t> node;
  uint32_t max_node = 0;  ///< the largest valid entry of `node`
  static constexpr uint32_t invalid = ~uint32_t{0};

  /// Heap bytes (for cache budgets).
  uint64_t bytes() const { return sizeof(*this) + node.capacity() * sizeof(uint32_t); }
};

class frame_dict : public std::enable_shared_from_this<frame_dict> {
 public:
  /// A dictionary that refuses to grow past `max_bytes` (nodes, their index and the names).
  explicit frame_dict(uint64_t max_bytes);

  /// The frames of every stack node of `b`, or nullptr when they do not fit in this dictionary
  /// (the caller starts a new one). Nodes already known are looked up under a shared lock, so
  /// blocks of one service, which share most paths, map concurrently; only new paths are added
  /// under the exclusive lock. Requires: the dictionary is owned by a shared_ptr.
  std::shared_ptr<const block_frames> map(const block_data& b);

  /// Adds the per-node sums `sums[d]` of every node d with `touched[d]` into `into`, creating
  /// each touched node's path (by names) in `into` even when its sum is 0. Entries past
  /// size() are ignored.
  void materialize(std::span<const int64_t> sums, const std::vector<bool>& touched,
                   flame_tree& into) const;

  /// Number of nodes (the root included) and a rough heap size.
  size_t size() const;
  uint64_t bytes() const;

 private:
  // Lookups; `insert` adds what is missing (exclusive lock held) or returns `missing` (shared).
  uint32_t child(uint32_t parent, uint32_t name, bool insert);
  uint32_t name_id(std::string_view name, uint32_t hash, bool insert);
  // Resolves the name of every function of `b` into str_name (string ref -> name id or missing).
  void resolve_names(const block_data& b, std::vector<uint32_t>& str_name, bool insert);
  // Expands stack node `s` below `parent` (its parent's node); missing if a lookup misses.
  uint32_t expand(const block_data& b, uint32_t location, uint32_t parent, std::vector<uint32_t>& str_name,
                  bool insert);
  uint64_t bytes_locked() const;

  const uint64_t max_bytes_;
  mutable std::shared_mutex mu_;
  /// The paths, as a call tree keyed by names (its self and total values stay 0).
  flame_tree paths_;
  uint64_t name_bytes_ = 0;
};

}  // namespace hearth::query
