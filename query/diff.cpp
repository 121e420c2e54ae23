#include "query/diff.hpp"

#include <algorithm>
#include <cassert>
#include <functional>
#include <numeric>
#include <queue>
#include <string_view>
#include <unordered_map>

namespace hearth::query {
namespace {

constexpr uint32_t none = ~uint32_t{0};

/// Children of every node of a tree, each group ordered by name byte-wise.
std::vector<std::vector<uint32_t>> children_by_name(const flame_tree& t) {
  std::vector<std::vector<uint32_t>> ch(t.size());
  for (uint32_t i = 1; i < t.size(); ++i) ch[t.nodes()[i].parent].push_back(i);
  for (auto& c : ch)
    std::sort(c.begin(), c.end(),
              [&](uint32_t a, uint32_t b) { return t.name_of(a) < t.name_of(b); });
  return ch;
}

/// A node of the aligned tree: both sides' values and its children (ids into the same vector).
struct aligned_node {
  std::string_view name;
  int64_t left_self = 0, left_total = 0, right_self = 0, right_total = 0;
  std::vector<uint32_t> children;  // ascending by name
};

std::vector<aligned_node> align(const flame_tree& l, const flame_tree& r) {
  const auto lc = children_by_name(l), rc = children_by_name(r);
  std::vector<aligned_node> out;
  std::vector<std::pair<uint32_t, uint32_t>> sides;  // (left id, right id) per aligned node
  const auto add = [&](uint32_t a, uint32_t b) {
    aligned_node n;
    n.name = a != none ? l.name_of(a) : r.name_of(b);
    if (a != none) n.left_self = l.nodes()[a].self, n.left_total = l.nodes()[a].total;
    if (b != none) n.right_self = r.nodes()[b].self, n.right_total = r.nodes()[b].total;
    out.push_back(std::move(n));
    sides.emplace_back(a, b);
    return static_cast<uint32_t>(out.size() - 1);
  };
  add(flame_tree::root, flame_tree::root);
  for (uint32_t i = 0; i < out.size(); ++i) {
    const auto [a, b] = sides[i];
    static const std::vector<uint32_t> empty;
    const auto& ca = a != none ? lc[a] : empty;
    const auto& cb = b != none ? rc[b] : empty;
    size_t x = 0, y = 0;
    while (x < ca.size() || y < cb.size()) {
      uint32_t id;
      if (y == cb.size() || (x < ca.size() && l.name_of(ca[x]) < r.name_of(cb[y]))) {
        id = add(ca[x++], none);
      } else if (x == ca.size() || r.name_of(cb[y]) < l.name_of(ca[x])) {
        id = add(none, cb[y++]);
      } else {
        id = add(ca[x++], cb[y++]);
      }
      out[i].children.push_back(id);
    }
  }
  return out;
}

/// Pyroscope's combineMinValues: a capped min-heap of max(left, right) totals filled in DFS
/// pre-order (root included), skipping the subtree of a node that cannot enter it.
int64_t min_value(const std::vector<aligned_node>& t, int64_t max_nodes) {
  if (static_cast<int64_t>(t.size()) <= max_nodes) return 0;
  std::priority_queue<int64_t, std::vector<int64_t>, std::greater<>> heap;
  std::vector<uint32_t> stack{0};
  while (!stack.empty()) {
    const uint32_t n = stack.back();
    stack.pop_back();
    const int64_t v = std::max(t[n].left_total, t[n].right_total);
    if (static_cast<int64_t>(heap.size()) >= max_nodes) {
      if (v <= heap.top()) continue;
      heap.pop();
    }
    heap.push(v);
    stack.insert(stack.end(), t[n].children.rbegin(), t[n].children.rend());
  }
  return static_cast<int64_t>(heap.size()) < max_nodes ? 0 : heap.top();
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
  const std::vector<aligned_node> t = align(left, right);
  const int64_t min_val = min_value(t, max_nodes);

  flame_graph_diff g;
  g.left_ticks = t[0].left_total;
  g.right_ticks = t[0].right_total;
  g.total = g.left_ticks + g.right_ticks;

  std::unordered_map<std::string_view, uint32_t> name_index;
  struct item {
    uint32_t node;  // none: a synthetic "other" with the totals below
    uint32_t level;
    int64_t left_x, right_x;
    int64_t other_left, other_right;
  };
  std::vector<item> stack{{0, 0, 0, 0, 0, 0}};
  while (!stack.empty()) {
    const item cur = stack.back();
    stack.pop_back();
    const bool synthetic = cur.node == none;
    const std::string_view name = synthetic ? "other" : t[cur.node].name;
    const int64_t ls = synthetic ? cur.other_left : t[cur.node].left_self;
    const int64_t lt = synthetic ? cur.other_left : t[cur.node].left_total;
    const int64_t rs = synthetic ? cur.other_right : t[cur.node].right_self;
    const int64_t rt = synthetic ? cur.other_right : t[cur.node].right_total;
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
    for (uint32_t c : t[cur.node].children) {
      if (t[c].left_total >= min_val || t[c].right_total >= min_val) {
        stack.push_back({c, cur.level + 1, lx, rx, 0, 0});
        lx += t[c].left_total;
        rx += t[c].right_total;
      } else {
        other_l += t[c].left_total;
        other_r += t[c].right_total;
      }
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
