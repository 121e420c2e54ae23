#pragma once
// Findings (our own API, not Pyroscope's): what a merged flame tree says without reading it. Exact
// top-N functions by self and by total with their share of the whole, the hottest path, and a
// regression finding between two trees (functions whose share grew or shrank most). All computed
// over the full tree (top_functions, flame_tree.hpp), before any max_nodes truncation, so nothing
// is lost to "other". Plain structs plus a compact JSON renderer each. Pure and deterministic.

#include <cstdint>
#include <string>
#include <vector>

#include "query/flame_tree.hpp"

namespace hearth::query {

/// One function with its values and their share of the tree total (0 when the total is 0).
struct function_share {
  std::string name;
  int64_t self = 0;
  int64_t total = 0;
  double self_share = 0;   ///< self / tree total
  double total_share = 0;  ///< total / tree total
  friend bool operator==(const function_share&, const function_share&) = default;
};

/// One frame of the hottest path: its node's self and total and the total's share.
struct path_frame {
  std::string name;
  int64_t self = 0;
  int64_t total = 0;
  double share = 0;  ///< total / tree total
  friend bool operator==(const path_frame&, const path_frame&) = default;
};

/// What one tree says.
struct tree_findings {
  int64_t total = 0;
  std::vector<function_share> top_self;   ///< by self desc, then name; at most N
  std::vector<function_share> top_total;  ///< by total desc, then name; at most N
  /// From the root's heaviest child down to a leaf, each step to the child with the greatest
  /// total (ties: the byte-wise smallest name). Empty for an empty tree.
  std::vector<path_frame> hot_path;
  friend bool operator==(const tree_findings&, const tree_findings&) = default;
};

/// Findings of `tree` with the top `n` functions each way (n <= 0: all).
/// Requires: tree.finalized().
tree_findings find(const flame_tree& tree, int64_t n);

/// A function's change between two trees (left = before/baseline, right = after).
struct function_change {
  std::string name;
  int64_t left_self = 0, left_total = 0, right_self = 0, right_total = 0;
  double left_self_share = 0, left_total_share = 0, right_self_share = 0, right_total_share = 0;
  double self_share_delta = 0;   ///< right_self_share - left_self_share
  double total_share_delta = 0;  ///< right_total_share - left_total_share
  friend bool operator==(const function_change&, const function_change&) = default;
};

/// The functions whose share moved most. A function missing from one side has zeros there.
struct regression_findings {
  int64_t left_total = 0, right_total = 0;
  std::vector<function_change> self_grew;     ///< largest positive self-share delta first
  std::vector<function_change> self_shrank;   ///< most negative self-share delta first
  std::vector<function_change> total_grew;    ///< largest positive total-share delta first
  std::vector<function_change> total_shrank;  ///< most negative total-share delta first
  friend bool operator==(const regression_findings&, const regression_findings&) = default;
};

/// The top `n` functions each way (n <= 0: all) by share delta; a function with a zero delta is
/// in neither list of that measure. Ties: by name. Requires: both finalized().
regression_findings find_regressions(const flame_tree& left, const flame_tree& right, int64_t n);

/// Compact JSON: {"total":T,"topSelf":[{"name":..,"self":..,"total":..,"selfShare":..,
/// "totalShare":..},..],"topTotal":[..],"hotPath":[{"name":..,"self":..,"total":..,"share":..},..]}.
/// Integers as JSON numbers, shares with up to 17 significant digits.
std::string render_findings_json(const tree_findings& f);

/// Compact JSON: {"leftTotal":L,"rightTotal":R,"selfGrew":[change..],"selfShrank":[..],
/// "totalGrew":[..],"totalShrank":[..]} where a change is {"name":..,"leftSelf":..,
/// "leftTotal":..,"rightSelf":..,"rightTotal":..,"leftSelfShare":..,"leftTotalShare":..,
/// "rightSelfShare":..,"rightTotalShare":..,"selfShareDelta":..,"totalShareDelta":..}.
std::string render_regressions_json(const regression_findings& r);

}  // namespace hearth::query
