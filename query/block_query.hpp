#pragma once
// Query evaluation over one block (format/block.hpp), the same code path for the head and for
// sealed segments: series selection by label matchers, merging the stacks of the selected
// profiles into a flame_tree, and the label/profile-type listings.
// Time ranges are half-open: a profile is in [start_ns, end_ns) iff start_ns <= time_ns < end_ns.
// Pure; never crashes on inconsistent indexes (such entries are skipped).

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "format/block.hpp"
#include "query/flame_tree.hpp"
#include "query/selector.hpp"

namespace hearth::query {

/// A half-open time range in unix nanoseconds.
struct ns_range {
  int64_t start_ns = 0;
  int64_t end_ns = 0;
};

/// Converts a Pyroscope request range in milliseconds, inclusive on both ends (a profile at any
/// instant of the `end_ms` millisecond is included), to the half-open nanosecond range the
/// functions below take. Saturates instead of overflowing.
ns_range ns_range_from_ms(int64_t start_ms, int64_t end_ms);

/// Ids of the series whose labels satisfy every matcher (an absent label reads as ""),
/// ascending. No matchers: all series.
std::vector<uint32_t> select_series(const block_data& block, const std::vector<matcher>& matchers);

/// Per series of `block`: whether it has a profile in [start_ns, end_ns).
std::vector<bool> series_in_range(const block_data& block, int64_t start_ns, int64_t end_ns);

/// Adds to `out` the self values of every profile of `series` with start_ns <= time_ns < end_ns:
/// sample values are summed per stack node, then each stack node is expanded root to leaf into
/// frame names (each location's lines from last, the caller, to first, the innermost inlined
/// function; a line's frame is its function's name; a location without lines is
/// "0x<address in lowercase hex>"), each stack node once. The sum of a stack lands on its leaf
/// frame. Zero sums add nothing. The caller calls out.finalize() after the last merge.
/// `series` may be in any order; duplicates count once.
void merge_stacks(const block_data& block, std::span<const uint32_t> series, int64_t start_ns,
                  int64_t end_ns, flame_tree& out);

/// `series` (ids from select_series, any order) as a mask over the block's series; ids out of
/// range are ignored.
std::vector<bool> series_mask(const block_data& block, std::span<const uint32_t> series);

/// Whether profile `p` is one of `profile_ids`: (hi, lo) word pairs sorted by pair, unique
/// (query_spec::profile_ids). An empty list selects every profile.
bool profile_selected(std::span<const uint64_t> profile_ids, const profile_row& p);

/// As merge_stacks above, keeping only the stacks whose root-first frame names (expanded as
/// above, inlined frames included) start with `call_site` (Pyroscope's
/// StackTraceSelector.call_site): the kept stacks stay whole, from the root down to their leaf.
/// An empty `call_site` keeps every stack. Non-empty `profile_ids`: only those profiles
/// (profile_selected).
void merge_stacks(const block_data& block, std::span<const uint32_t> series, int64_t start_ns,
                  int64_t end_ns, std::span<const std::string> call_site, flame_tree& out,
                  std::span<const uint64_t> profile_ids = {});

/// As merge_stacks above, summing instead of the profiles' samples only their span samples
/// (block_data::spans) whose span id is in `span_ids` (sorted, unique). Empty `span_ids` adds
/// nothing.
void merge_span_stacks(const block_data& block, std::span<const uint32_t> series, int64_t start_ns,
                       int64_t end_ns, std::span<const std::string> call_site,
                       std::span<const uint64_t> span_ids, flame_tree& out,
                       std::span<const uint64_t> profile_ids = {});

/// The per-stack-node sums of a selection of one block, before any expansion into frame names:
/// stack node ids ascending and unique, each with its non-zero sum.
struct stack_sums {
  std::vector<uint32_t> stacks;
  std::vector<int64_t> values;
};

/// What merge_stacks adds to its tree, as sums per stack node (merge_stacks = add_stack_sums
/// of this).
stack_sums sum_stacks(const block_data& block, std::span<const uint32_t> series, int64_t start_ns,
                      int64_t end_ns, std::span<const std::string> call_site,
                      std::span<const uint64_t> profile_ids = {});
/// What merge_span_stacks adds to its tree, as sums per stack node.
stack_sums sum_span_stacks(const block_data& block, std::span<const uint32_t> series,
                           int64_t start_ns, int64_t end_ns, std::span<const std::string> call_site,
                           std::span<const uint64_t> span_ids,
                           std::span<const uint64_t> profile_ids = {});

/// Expands each stack node of `sums` into frame names (as merge_stacks describes) and adds its
/// sum to the leaf frame's self value in `out`.
void add_stack_sums(const block_data& block, const stack_sums& sums, flame_tree& out);

/// The frame name of a location without lines: "0x<address in lowercase hex>".
std::string address_frame_name(uint64_t address);

/// How a walk over a location's frames ended.
enum class frames_walk : uint8_t { done, invalid, stopped };

/// Visits the frames stack location `location` of `syms` expands into, caller first (merge_stacks
/// describes the expansion): `on_name(ref)` with the string ref of each line's function name,
/// from the last line to the first, or `on_address(address)` once for a location without lines.
/// A callback returns false to stop the walk (`stopped`); `invalid`: an id out of range.
template <class OnName, class OnAddress>
frames_walk walk_frames(const symbols& syms, uint32_t location, OnName&& on_name,
                        OnAddress&& on_address) {
  if (location >= syms.locations.size()) return frames_walk::invalid;
  const location_rec& loc = syms.locations[location];
  if (loc.line_count == 0)
    return on_address(loc.address) ? frames_walk::done : frames_walk::stopped;
  if (uint64_t{loc.line_begin} + loc.line_count > syms.lines.size()) return frames_walk::invalid;
  for (uint32_t i = loc.line_count; i-- > 0;) {
    const uint32_t fn = syms.lines[loc.line_begin + i].function;
    if (fn >= syms.functions.size()) return frames_walk::invalid;
    const uint32_t ref = syms.functions[fn].name;
    if (ref >= syms.strings.size()) return frames_walk::invalid;
    if (!on_name(ref)) return frames_walk::stopped;
  }
  return frames_walk::done;
}

/// Maps stack node `s` of `b` into another tree built parent first (a flame tree, a pprof
/// partial's nodes), memoized: memo[s] when known, else child(image of its parent, location) for
/// `s` and each ancestor not known yet, nearest the root first. `memo` has an entry per stack node,
/// `unknown` where not mapped yet, memo[0] the root's image; a node whose path is broken (a parent
/// not below its child, or `child` answering `invalid`) maps to `invalid`, and so do its
/// descendants. `path` is scratch. Each stack node is mapped once per memo.
template <class Child>
uint32_t map_stack_node(const block_data& b, std::vector<uint32_t>& memo,
                        std::vector<uint32_t>& path, uint32_t s, uint32_t unknown, uint32_t invalid,
                        Child&& child) {
  if (s >= memo.size()) return invalid;
  // Walk up to the nearest known ancestor. Parents have smaller ids (the stack tree is
  // append-only); checking it also rules out cycles in a corrupt block.
  path.clear();
  uint32_t cur = s;
  while (memo[cur] == unknown) {
    path.push_back(cur);
    const uint32_t parent = b.stacks[cur].parent;
    if (parent >= cur) {
      cur = invalid;
      break;
    }
    cur = parent;
  }
  uint32_t node = cur == invalid ? invalid : memo[cur];
  for (auto it = path.rbegin(); it != path.rend(); ++it) {
    if (node != invalid) node = child(node, b.stacks[*it].location);
    memo[*it] = node;
  }
  return node;
}

/// The sum of the span samples of `p` whose span id is in `span_ids` (sorted, unique); 0 when
/// the profile's span range is out of bounds.
int64_t span_total(const block_data& block, const profile_row& p,
                   std::span<const uint64_t> span_ids);

/// For every stack node s of `block`: whether the root-first frame names of its path (expanded
/// as merge_stacks does) start with `prefix`. Node 0, the empty path, matches only an empty
/// prefix. Nodes with an inconsistent path never match. Cost: one pass over the stack nodes,
/// comparing names only until a path matches fully or differs.
std::vector<bool> stacks_with_prefix(const block_data& block, std::span<const std::string> prefix);

/// Sorted, unique label names of the series matching `matchers` that have at least one profile
/// with start_ns <= time_ns < end_ns.
std::vector<std::string> label_names(const block_data& block, const std::vector<matcher>& matchers,
                                     int64_t start_ns, int64_t end_ns);

/// Sorted, unique values of label `name` over the series matching `matchers` that carry the
/// label and have at least one profile with start_ns <= time_ns < end_ns.
std::vector<std::string> label_values(const block_data& block, std::string_view name,
                                      const std::vector<matcher>& matchers, int64_t start_ns,
                                      int64_t end_ns);

/// Sorted, unique values of `__profile_type__` over series with a profile in [start_ns, end_ns).
std::vector<std::string> profile_type_ids(const block_data& block, int64_t start_ns,
                                          int64_t end_ns);

/// The labels of series `id` as owned strings, sorted by name. Requires: id < series.size().
label_set series_labels(const block_data& block, uint32_t id);

}  // namespace hearth::query
