#pragma once
// The Diff RPC and /pyroscope/render-diff: two flame trees aligned into one, rendered as
// Pyroscope's FlameGraphDiff (pyroscope-api.md §2.5, 7 ints per node) and as the flamebearer
// "double" JSON (§4.2). The trees themselves are the merge_stacks results of each side, so the
// per-block partials and their merge are those of SelectMergeStacktraces.
// Pure and deterministic.

#include <cstdint>
#include <string>
#include <vector>

#include "format/error.hpp"
#include "query/flame_tree.hpp"

namespace hearth::query {

/// A diff flame graph in Pyroscope's `FlameGraphDiff` encoding.
struct flame_graph_diff {
  std::vector<std::string> names;  ///< names[0] == "total"; index order = DFS visit order
  /// levels[d]: 7 ints per node at depth d: [left x (delta), left total, left self,
  /// right x (delta), right total, right self, name index].
  std::vector<std::vector<int64_t>> levels;
  int64_t total = 0;        ///< left_ticks + right_ticks
  int64_t max_self = 0;     ///< the largest self of either side over rendered nodes
  int64_t left_ticks = 0;   ///< the left root's total
  int64_t right_ticks = 0;  ///< the right root's total
  friend bool operator==(const flame_graph_diff&, const flame_graph_diff&) = default;
};

/// Renders two trees exactly as Pyroscope's NewFlamegraphDiff: both are aligned to one shape
/// (a node missing on one side has zeros there; children in ascending byte-wise name order); the
/// threshold is the max_nodes-th largest max(left total, right total) over the aligned nodes,
/// root included (0 when there are at most max_nodes nodes); children with both totals below it
/// are folded into one "other" child per parent (self = total = their sum, per side) placed after
/// the kept children. Names are numbered in the order of a DFS that visits right to left.
/// `max_nodes <= 0` means default_max_nodes (the caller passes max(left, right) of the requests
/// and enforces the upper limit).
/// Errors: invalid_argument when a self value of either tree is negative (Pyroscope refuses too).
/// Requires: both trees finalized().
[[nodiscard]] result<flame_graph_diff> render_flame_graph_diff(const flame_tree& left,
                                                               const flame_tree& right,
                                                               int64_t max_nodes);

/// The /pyroscope/render-diff JSON: as render_flamebearer_json, with the 7-int levels,
/// "format":"double", "timeline":null and, after "heatmap", "leftTicks" and "rightTicks"
/// (omitted when 0, as Go's omitempty). `meta.timeline` is ignored.
std::string render_flamebearer_diff_json(const flame_graph_diff& g, const flamebearer_meta& meta);

}  // namespace hearth::query
