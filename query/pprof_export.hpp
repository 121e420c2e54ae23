#pragma once
// SelectMergeProfile / PROFILE_FORMAT_PPROF (pyroscope-api.md §2.2, §2.3): the selected samples
// merged into one full-fidelity pprof profile. A per-block partial keeps the samples' location
// stacks and the symbols they use (mappings, functions, locations with their lines, strings),
// de-duplicated by content, so partials of any blocks merge; the render writes the
// perftools.profiles.Profile protobuf bytes (uncompressed) with a hand-written encoder.
// Pure and deterministic: output bytes depend only on the partial's content and the options.

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "format/block.hpp"
#include "format/normalize.hpp"
#include "query/selector.hpp"

namespace hearth::query {

/// types.v1.GoPGO: a profile trimmed for Go's profile-guided optimization.
struct go_pgo {
  uint32_t keep_locations = 0;     ///< keep only this many leaf-most locations; 0 = all
  bool aggregate_callees = false;  ///< zero the innermost line number of each leaf location
};

/// Which stacks a pprof partial takes. With `pgo` set `call_site` is ignored (as in Pyroscope).
struct pprof_selector {
  std::vector<std::string> call_site;  ///< root-first prefix of frame names; empty = all
  std::optional<go_pgo> pgo;
  /// Sorted, unique span ids; non-empty: only the span samples (block_data::spans) with one of
  /// these ids are taken instead of the profiles' samples (SelectMergeSpanProfile).
  std::vector<uint64_t> span_ids;
  /// Profile ids as query_spec::profile_ids; non-empty: only these profiles are taken.
  std::vector<uint64_t> profile_ids;
};

/// Merged samples and the symbols they use, the stacks as a tree. Node 0 is the root (the empty
/// stack; parent 0, location 0 unused, value 0); node i >= 1 is the stack of node
/// stack_parents[i] (< i) with location stack_locations[i] (an index into syms.locations) called
/// from it, and values[i] is the value of the sample with that stack, or 0 when no sample ends
/// there (the node only leads to others). Nodes are unique by (parent, location), so stacks are.
/// A sample's pprof location list (leaf first) is its node's locations up to the root.
/// Symbols are unique by content (strings by bytes, mappings by all fields, functions by
/// name/system name/file/start line, locations by mapping/address/lines), as symbol_interner
/// (format/normalize.hpp) keeps them.
/// `first_ns`/`last_end_ns`: the earliest selected profile's time and the latest end
/// (time + duration); both 0 while `profiles` is 0. `period`: the largest period of the selected
/// profiles (0 when none is known).
/// A value type, fit for an actor message (`index` is never serialized). One received from
/// elsewhere is not trusted: merging or rendering one skips the nodes that break these rules.
struct pprof_index;
struct pprof_partial {
  symbols syms;
  std::vector<uint32_t> stack_parents{0};
  std::vector<uint32_t> stack_locations{0};
  std::vector<int64_t> values{0};
  int64_t first_ns = 0;
  int64_t last_end_ns = 0;
  uint64_t profiles = 0;  ///< profiles (or rollup rows) that contributed
  int64_t period = 0;
  /// Process-local, never serialized: the tables of the pprof_builder that made this partial
  /// (symbols by content, nodes by (parent, location)), so that a builder continuing or adopting
  /// it does not index it again (a frontend merging readers' partials, 90k+ symbols each). Used
  /// only while it is this partial's alone and matches its sizes; null when unknown.
  std::shared_ptr<pprof_index> index;

  /// The number of samples: nodes with a value. Linear in the nodes.
  size_t samples() const;
  /// Nothing selected: no profile and no node.
  bool empty() const { return profiles == 0 && values.size() <= 1; }
};

/// Accumulates one pprof_partial from blocks and other partials, keeping its indexes (symbols by
/// content, stack nodes by (parent, location)) alive between calls: each add() or merge() costs
/// time linear in what it adds (a block's selected stack-tree nodes, a partial's nodes), not in
/// what was accumulated before, nor in the depth of the stacks.
/// Thread-safety: a plain value type; mutation is not thread-safe.
class pprof_builder {
 public:
  pprof_builder();
  /// Continues `p` (indexed once, linear in its size, when something is first added to it,
  /// unless it carries its own index).
  explicit pprof_builder(pprof_partial p);

  /// Adds the samples of the profiles of `series` in [start_ns, end_ns) whose stacks pass `sel`.
  /// Values are summed per stack after the selector's trimming, so trimmed stacks that become
  /// equal are one sample.
  void add(const block_data& block, std::span<const uint32_t> series, int64_t start_ns,
           int64_t end_ns, const pprof_selector& sel);
  /// Merges `from`, de-duplicating symbols and stacks by content. Exact.
  void merge(const pprof_partial& from);
  /// As merge(const&); adopts `from` whole (with its index) when nothing has been added yet.
  void merge(pprof_partial&& from);

  /// The accumulated partial.
  const pprof_partial& partial() const { return p_; }
  /// Moves the partial out, with the builder's tables as its `index`; the builder is empty
  /// afterwards.
  pprof_partial take();

 private:
  struct source;
  void index();
  void adopt(pprof_partial&& p);
  uint32_t location(source& src, uint32_t l);
  void premap_locations(source& src, const std::vector<bool>& used);
  void premap_callee_lines(std::span<const uint32_t> ls);
  uint32_t without_callee_line(uint32_t l);
  uint32_t string(source& src, uint32_t s);
  uint32_t function(source& src, uint32_t f);
  uint32_t mapping(source& src, uint32_t m);
  uint32_t node(uint32_t parent, uint32_t location);
  uint32_t block_node(const block_data& block, source& src, std::vector<uint32_t>& memo,
                      uint32_t b);
  uint32_t chain_node(const block_data& block, source& src,
                      std::vector<std::vector<uint32_t>>& chains, uint32_t x, uint32_t j);

  pprof_partial p_;
  symbol_interner interner_;
  pair_table nodes_;              // stack nodes, keyed by (parent, location)
  bool indexed_ = true;           // whether interner_ and nodes_ cover p_
  std::vector<line_rec> lines_;   // scratch of location()
  std::vector<uint32_t> callee_;  // without_callee_line's answers by location (unset: none yet)
  std::vector<uint32_t> path_;    // scratch of block_node()
};

/// Adds the samples of the profiles of `series` in [start_ns, end_ns) whose stacks pass `sel` to
/// `out` (which holds the partial of the same query, or is empty), as pprof_builder::add.
/// Convenience for one block: it re-indexes `out`; use a pprof_builder for many.
void select_pprof(const block_data& block, std::span<const uint32_t> series, int64_t start_ns,
                  int64_t end_ns, const pprof_selector& sel, pprof_partial& out);

/// Merges `from` into `into`, de-duplicating symbols and stacks by content. Exact. Cost:
/// linear in the sizes of both (`into` is re-indexed); use a pprof_builder for many partials.
void merge_pprof(pprof_partial& into, const pprof_partial& from);

/// What the render needs besides the samples.
struct pprof_options {
  profile_type type;   ///< sample type/unit and period type/unit come from here
  /// Overrides the partial's period when not 0 (the partial's is the stored profiles' period).
  int64_t period = 0;
  /// > 0: Pyroscope's pprof truncation: in the call tree of functions (inlined frames included)
  /// the nodes whose total is below the max_nodes-th largest node total are cut from every stack;
  /// the locations they leave empty become one "other" location (a function named "other"), a
  /// stack cut entirely becomes just "other". <= 0: no truncation.
  int64_t max_nodes = 0;
};

/// The merged profile as perftools.profiles.Profile bytes (not gzipped): one sample type
/// (type.sample_type/type.sample_unit), period type and period (opts.period, else p.period),
/// time_nanos/duration_nanos from
/// first_ns/last_end_ns, only the referenced mappings/locations/functions/strings with dense ids
/// from 1 (strings from index 0 = ""), samples sorted by their location id lists.
std::string render_pprof(const pprof_partial& p, const pprof_options& opts);

}  // namespace hearth::query
