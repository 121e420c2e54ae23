#pragma once
// A call tree keyed by frame names (what a query merges stacks into) and its renderings: the
// Pyroscope FlameGraph level encoding (pyroscope-api.md §2.4), the /pyroscope/render flamebearer
// JSON (§4.2) and a per-function table equal to `go tool pprof -top` flat/cum.
// Pure and deterministic: output depends only on the tree's content, never on insertion order.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace hearth::query {

/// A call tree whose nodes are identified by their path of frame names from the root.
/// Node 0 is the root (name id 0, "total"); a node's parent always has a smaller id.
/// Totals (`node::total`, `total()`) are valid only after `finalize()` and until the next
/// mutation (`child`, `add_self`, `merge`); `finalized()` says which state the tree is in.
/// Thread-safety: a plain value type; concurrent const use is safe, mutation is not.
class flame_tree {
 public:
  /// A node: the name id, the self value and (after finalize) self + descendants' self.
  struct node {
    uint32_t parent = 0;
    uint32_t name = 0;  ///< index into names()
    int64_t self = 0;
    int64_t total = 0;
  };

  /// The root id.
  static constexpr uint32_t root = 0;

  /// An empty tree: only the root, names() == {"total"}; finalized, total() == 0.
  flame_tree();

  /// The id of `name`, interning it if new. "total" is always id 0, the root's name.
  uint32_t intern(std::string_view name) { return intern(name, hash_name(name)); }
  /// The id of `name` if interned.
  std::optional<uint32_t> find_name(std::string_view name) const { return find_name(name, hash_name(name)); }
  /// As above, with `hash` = hash_name(name) computed by a caller that looks up many names and
  /// prefetches their slots (prefetch_name) a few names ahead.
  uint32_t intern(std::string_view name, uint32_t hash);
  std::optional<uint32_t> find_name(std::string_view name, uint32_t hash) const;
  static uint32_t hash_name(std::string_view name);
  void prefetch_name(uint32_t hash) const {
    __builtin_prefetch(&name_slots_[mix(hash) & (name_slots_.size() - 1)]);
  }

  /// The child of `parent` named `name`, created (with self 0) if absent. Amortized O(1).
  /// Requires: parent < size().
  uint32_t child(uint32_t parent, std::string_view name) {
    return child_by_id(parent, intern(name));
  }
  /// As child(), with an interned name id. Requires: parent < size(), name_id < names().size().
  uint32_t child_by_id(uint32_t parent, uint32_t name_id);

  /// The child of `parent` named `name_id` if it exists (never creates one).
  std::optional<uint32_t> find_child(uint32_t parent, uint32_t name_id) const;

  /// A hint that child_by_id(parent, name_id) follows soon: starts loading its index slot.
  void prefetch_child(uint32_t parent, uint32_t name_id) const {
    const uint64_t key = (uint64_t{parent} << 32) | name_id;
    __builtin_prefetch(&index_[mix(key) & (index_.size() - 1)]);
  }

  /// Adds `v` to the self value of `node`. Requires: node < size().
  void add_self(uint32_t node, int64_t v);

  /// Makes room for `nodes` nodes and `names` names in all without growing again.
  void reserve(size_t nodes, size_t names);

  /// Moves the names out (for a flat copy of a tree about to be discarded); the tree is left
  /// with no names and may only be destroyed or assigned to afterwards.
  std::vector<std::string> release_names() && { return std::move(names_); }

  /// Adds every node of `other` (matched by the path of names from the root) and its self value.
  /// Only self values are merged; call finalize() afterwards for totals.
  void merge(const flame_tree& other);

  /// Computes every node's total bottom-up in O(size()).
  void finalize();
  /// Whether totals are valid (no mutation since the last finalize()).
  bool finalized() const { return finalized_; }
  /// The root's total (sum of all self values). Requires: finalized().
  int64_t total() const;

  /// Number of nodes, the root included.
  size_t size() const { return nodes_.size(); }
  /// All nodes, indexed by id.
  const std::vector<node>& nodes() const { return nodes_; }
  /// Interned names, indexed by name id; names()[0] == "total".
  const std::vector<std::string>& names() const { return names_; }
  /// The name of node `id`. Requires: id < size().
  std::string_view name_of(uint32_t id) const { return names_[nodes_[id].name]; }

 private:
  // Open-addressing (linear probing) tables; capacities are powers of two, load factor <= 1/2.
  // Name slot: the name's 32-bit hash and id + 1 (0 = empty); names compare only on equal hashes.
  struct name_slot {
    uint32_t hash = 0;
    uint32_t id_plus_one = 0;
  };
  // Child slot: key (parent << 32 | name id) -> node id, one cache line fetch per probe;
  // empty slots hold empty_key.
  static constexpr uint64_t empty_key = ~uint64_t{0};
  struct child_slot {
    uint64_t key = empty_key;
    uint32_t node = 0;
  };

  /// splitmix64's finalizer: (parent, name) keys are dense small integers, so spread them out.
  static uint64_t mix(uint64_t x) {
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ULL;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebULL;
    x ^= x >> 31;
    return x;
  }
  void rehash_names(size_t capacity);
  void rehash_index(size_t capacity);

  std::vector<node> nodes_;
  std::vector<std::string> names_;
  std::vector<name_slot> name_slots_;
  std::vector<child_slot> index_;
  bool finalized_ = true;
};

/// A flame graph in Pyroscope's `FlameGraph` encoding (pyroscope-api.md §2.4).
struct flame_graph {
  std::vector<std::string> names;  ///< names[0] == "total"; index order = DFS visit order
  /// levels[d]: 4 ints per node at depth d: [x_offset (delta), total, self, name index].
  std::vector<std::vector<int64_t>> levels;
  int64_t total = 0;     ///< the root's total
  int64_t max_self = 0;  ///< the largest self of any rendered node (the `other` nodes included)
  friend bool operator==(const flame_graph&, const flame_graph&) = default;
};

/// The default number of nodes of a flame graph (Pyroscope's max_flamegraph_nodes_default).
inline constexpr int64_t default_max_nodes = 8192;

/// Renders `tree` exactly as Pyroscope's NewFlameGraph does: children left to right in ascending
/// byte-wise name order, each node's self on the left of its span; names numbered in the order
/// of a stack-based DFS (which visits right to left). With more than `max_nodes` non-root nodes,
/// the threshold is the max_nodes-th largest node total; children below it (and any child named
/// "other") are folded into one synthetic child "other" (self = total = their sum) placed after
/// the kept children. `max_nodes <= 0` means default_max_nodes; the caller enforces the upper
/// limit. A root self value (samples with an empty stack) is kept as the root's self, on the left.
/// Requires: tree.finalized().
flame_graph render_flame_graph(const flame_tree& tree, int64_t max_nodes);

/// Pyroscope's `tree` bytes (PROFILE_FORMAT_TREE, pyroscope-api.md §2.6): a pre-order DFS from a
/// virtual root with an empty name; per node uvarint(len(name)), the name, uvarint(self),
/// uvarint(child count); children in byte-wise name order are emitted last first. Children whose
/// total is below the max_nodes-th largest node total are folded into one "other" child (merged
/// into an existing "other"). An empty tree gives no bytes. Requires: tree.finalized().
std::string render_tree_bytes(const flame_tree& tree, int64_t max_nodes);

/// The timeline of a /pyroscope/render response.
struct flamebearer_timeline {
  int64_t start_s = 0;  ///< unix seconds of the first sample
  int64_t step_s = 0;   ///< seconds between samples ("durationDelta")
  std::vector<uint64_t> samples;
};

/// What the flamebearer JSON needs besides the graph.
struct flamebearer_meta {
  std::string sample_type;                       ///< e.g. "cpu"; also the metadata "name"
  std::string sample_unit;                       ///< e.g. "nanoseconds"
  std::optional<flamebearer_timeline> timeline;  ///< absent: "timeline": null
};

/// The flamebearer metadata "units" and "sampleRate" of a sample type (pyroscope-api.md §4.2).
struct flamebearer_units {
  std::string units;
  uint32_t sample_rate = 100;
};
flamebearer_units units_of(const flamebearer_meta& meta);

/// Appends `s` to `out` as a JSON string the way Go's encoding/json does by default (HTML-safe,
/// invalid UTF-8 replaced by U+FFFD, U+2028/U+2029 escaped).
void append_json_string(std::string& out, std::string_view s);

/// The /pyroscope/render JSON (pyroscope-api.md §4.2), compact, keys in Pyroscope's order,
/// strings escaped as Go's encoding/json does (HTML-safe, invalid UTF-8 replaced by U+FFFD).
/// No trailing newline.
/// The flamebearer JSON from its start through the "metadata" object (no closing brace of the
/// document): names, levels, numTicks, maxSelf, and metadata with `format` ("single"/"double").
/// Shared by the single and the diff renderers.
void append_flamebearer_head(std::string& out, const std::vector<std::string>& names,
                             const std::vector<std::vector<int64_t>>& levels, int64_t total,
                             int64_t max_self, std::string_view format, const flamebearer_meta& meta);

/// groupBy timelines of /pyroscope/render: (label value or "*", timeline), in output order.
using flamebearer_groups = std::vector<std::pair<std::string, flamebearer_timeline>>;

/// With `groups`, "groups" maps each key to its timeline; without, it is null.
std::string render_flamebearer_json(const flame_graph& graph, const flamebearer_meta& meta,
                                    const flamebearer_groups* groups = nullptr);

/// Flat and cumulative value of one function name.
struct function_stat {
  std::string name;
  int64_t self = 0;   ///< sum of self over nodes with this name (pprof "flat")
  int64_t total = 0;  ///< sum over call paths containing the name, each path counted once ("cum")
  friend bool operator==(const function_stat&, const function_stat&) = default;
};

/// Per name id of a finalized tree: the self and total top_functions reports for names()[i],
/// and whether a non-root node has that name.
struct function_totals {
  std::vector<int64_t> self;
  std::vector<int64_t> total;
  std::vector<bool> seen;
};
function_totals totals_by_name(const flame_tree& tree);

/// Per-function self and total over all non-root nodes, recursion counted once per path (as
/// `go tool pprof -top`), sorted by self descending, then name ascending (byte-wise).
/// Requires: tree.finalized().
std::vector<function_stat> top_functions(const flame_tree& tree);

}  // namespace hearth::query
