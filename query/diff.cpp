#include "query/diff.hpp"

#include <algorithm>
#include <cassert>
#include <functional>
#include <string_view>
#include <unordered_map>

namespace hearth::query {
namespace {

constexpr uint32_t none = ~uint32_t{0};

/// Both trees aligned to one shape: `shape` holds every path of either tree (built by names with
/// the tree's own hash index), and per shape node each side's self and total (0 where the side
/// lacks the path).
struct aligned {
  flame_tree shape;
  std::vector<int64_t> left_self, left_total, right_self, right_total;
  std::vector<uint32_t> begin, children;  // CSR of each node's children, in no particular order
};

aligned align(const flame_tree& l, const flame_tree& r) {
  aligned a;
  a.shape.reserve(std::max(l.size(), r.size()), std::max(l.names().size(), r.names().size()));
  // Each side's node -> its shape node (paths are unique within a tree, so each shape node gets
  // at most one node of each side).
  const auto place = [&](const flame_tree& t) {
    std::vector<uint32_t> name_map(t.names().size());
    for (size_t i = 0; i < name_map.size(); ++i) name_map[i] = a.shape.intern(t.names()[i]);
    std::vector<uint32_t> at(t.size(), flame_tree::root);
    for (uint32_t i = 1; i < t.size(); ++i)
      at[i] = a.shape.child_by_id(at[t.nodes()[i].parent], name_map[t.nodes()[i].name]);
    return at;
  };
  const std::vector<uint32_t> la = place(l), ra = place(r);
  const size_t n = a.shape.size();
  a.left_self.assign(n, 0), a.left_total.assign(n, 0), a.right_self.assign(n, 0), a.right_total.assign(n, 0);
  for (uint32_t i = 0; i < l.size(); ++i) {
    a.left_self[la[i]] = l.nodes()[i].self;
    a.left_total[la[i]] = l.nodes()[i].total;
  }
  for (uint32_t i = 0; i < r.size(); ++i) {
    a.right_self[ra[i]] = r.nodes()[i].self;
    a.right_total[ra[i]] = r.nodes()[i].total;
  }
  const auto& nodes = a.shape.nodes();
  a.begin.assign(n + 1, 0);
  for (size_t i = 1; i < n; ++i) ++a.begin[nodes[i].parent + 1];
  for (size_t i = 1; i <= n; ++i) a.begin[i] += a.begin[i - 1];
  a.children.resize(n > 0 ? n - 1 : 0);
  std::vector<uint32_t> fill(a.begin.begin(), a.begin.end() - 1);
  for (uint32_t i = 1; i < n; ++i) a.children[fill[nodes[i].parent]++] = i;
  return a;
}

/// Pyroscope's combineMinValues: a capped min-heap of max(left, right) totals filled in DFS
/// pre-order (root included), skipping the subtree of a node that cannot enter it. Both trees
/// have no negative value (checked by the caller), so a subtree's values never exceed its root's
/// and the skipped nodes could not have entered either: the heap ends with the max_nodes largest
/// values, which a selection finds.
int64_t min_value(const aligned& a, int64_t max_nodes) {
  const size_t n = a.shape.size();
  if (static_cast<int64_t>(n) <= max_nodes) return 0;
  std::vector<int64_t> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = std::max(a.left_total[i], a.right_total[i]);
  const auto kth = v.begin() + (max_nodes - 1);
  std::nth_element(v.begin(), kth, v.end(), std::greater<>());
  return *kth;
}

bool has_negative_self(const flame_tree& t) {
  return std::any_of(t.nodes().begin(), t.nodes().end(),
                     [](const flame_tree::node& n) { return n.self < 0; });
}

}  // namespace

result<flame_graph_diff> render_flame_graph_diff(const flame_tree& left, const flame_tree& right,
                                                 int64_t max_nodes) {
  assert(left.finalized() && right.finalized());
  const bool neg_l = has_negative_self(left), neg_r = has_negative_self(right);
  if (neg_l || neg_r)
    return error{errc::invalid_argument, std::string(neg_l && neg_r ? "both trees"
                                                     : neg_l        ? "the left tree"
                                                                    : "the right tree") +
                                             " must have only non-negative values to be diffed"};
  if (max_nodes <= 0) max_nodes = default_max_nodes;
  const aligned t = align(left, right);
  const int64_t min_val = min_value(t, max_nodes);

  flame_graph_diff g;
  g.left_ticks = t.left_total[0];
  g.right_ticks = t.right_total[0];
  g.total = g.left_ticks + g.right_ticks;

  std::unordered_map<std::string_view, uint32_t> name_index;
  struct item {
    uint32_t node;  // none: a synthetic "other" with the totals below
    uint32_t level;
    int64_t left_x, right_x;
    int64_t other_left, other_right;
  };
  std::vector<item> stack{{0, 0, 0, 0, 0, 0}};
  std::vector<uint32_t> kept;
  while (!stack.empty()) {
    const item cur = stack.back();
    stack.pop_back();
    const bool synthetic = cur.node == none;
    const std::string_view name = synthetic ? "other" : t.shape.name_of(cur.node);
    const int64_t ls = synthetic ? cur.other_left : t.left_self[cur.node];
    const int64_t lt = synthetic ? cur.other_left : t.left_total[cur.node];
    const int64_t rs = synthetic ? cur.other_right : t.right_self[cur.node];
    const int64_t rt = synthetic ? cur.other_right : t.right_total[cur.node];
    // The root is keyed apart from any real function that happens to be called "total".
    uint32_t index;
    if (cur.node == 0) {
      index = 0;
      g.names.emplace_back("total");
    } else if (auto it = name_index.find(name); it != name_index.end()) {
      index = it->second;
    } else {
      index = static_cast<uint32_t>(g.names.size());
      name_index.emplace(name, index);
      g.names.emplace_back(name);
    }
    if (cur.level == g.levels.size()) g.levels.emplace_back();
    g.levels[cur.level].insert(g.levels[cur.level].end(),
                               {cur.left_x, lt, ls, cur.right_x, rt, rs, int64_t{index}});
    g.max_self = std::max({g.max_self, ls, rs});
    if (synthetic) continue;

    int64_t lx = cur.left_x + ls, rx = cur.right_x + rs;
    int64_t other_l = 0, other_r = 0;
    // Kept children in byte-wise name order (only they are sorted); the others fold into "other".
    kept.clear();
    for (uint32_t k = t.begin[cur.node]; k < t.begin[cur.node + 1]; ++k) {
      const uint32_t c = t.children[k];
      if (t.left_total[c] >= min_val || t.right_total[c] >= min_val) {
        kept.push_back(c);
      } else {
        other_l += t.left_total[c];
        other_r += t.right_total[c];
      }
    }
    std::sort(kept.begin(), kept.end(),
              [&](uint32_t a, uint32_t b) { return t.shape.name_of(a) < t.shape.name_of(b); });
    for (uint32_t c : kept) {
      stack.push_back({c, cur.level + 1, lx, rx, 0, 0});
      lx += t.left_total[c];
      rx += t.right_total[c];
    }
    if (other_l != 0 || other_r != 0)
      stack.push_back({none, cur.level + 1, lx, rx, other_l, other_r});
  }
  // Visits went right to left: reverse each level's 7-tuples, then delta-encode both x columns.
  for (auto& level : g.levels) {
    const size_t n = level.size() / 7;
    for (size_t i = 0; i < n / 2; ++i)
      std::swap_ranges(level.begin() + 7 * i, level.begin() + 7 * i + 7,
                       level.begin() + 7 * (n - 1 - i));
    for (size_t col : {size_t{0}, size_t{3}}) {
      int64_t prev = 0;
      for (size_t i = col; i < level.size(); i += 7) {
        level[i] -= prev;
        prev += level[i] + level[i + 1];
      }
    }
  }
  return g;
}

std::string render_flamebearer_diff_json(const flame_graph_diff& g, const flamebearer_meta& meta) {
  std::string out;
  append_flamebearer_head(out, g.names, g.levels, g.total, g.max_self, "double", meta);
  out += R"(,"timeline":null,"groups":null,"heatmap":null)";
  if (g.left_ticks != 0) out += R"(,"leftTicks":)" + std::to_string(g.left_ticks);
  if (g.right_ticks != 0) out += R"(,"rightTicks":)" + std::to_string(g.right_ticks);
  out += '}';
  return out;
}

}  // namespace hearth::query
