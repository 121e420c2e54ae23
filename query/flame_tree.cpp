#include "query/flame_tree.hpp"

#include <algorithm>
#include <cassert>
#include <functional>
#include <queue>
#include <span>

namespace hearth::query {
namespace {

constexpr uint32_t no_id = ~uint32_t{0};

/// Children of every node, grouped by parent (CSR); a group is ordered by name byte-wise on its
/// first use, so a render sorts only the children of the nodes it visits.
class sorted_children {
 public:
  explicit sorted_children(const flame_tree& t) : t_(t), sorted_(t.size(), false) {
    const auto& nodes = t.nodes();
    begin_.assign(nodes.size() + 1, 0);
    for (size_t i = 1; i < nodes.size(); ++i) ++begin_[nodes[i].parent + 1];
    for (size_t i = 1; i < begin_.size(); ++i) begin_[i] += begin_[i - 1];
    ids_.resize(nodes.size() > 0 ? nodes.size() - 1 : 0);
    std::vector<uint32_t> fill(begin_.begin(), begin_.end() - 1);
    for (uint32_t i = 1; i < nodes.size(); ++i) ids_[fill[nodes[i].parent]++] = i;
  }

  /// The children of `n` in no particular order.
  std::span<const uint32_t> unsorted(uint32_t n) const {
    return {ids_.data() + begin_[n], ids_.data() + begin_[n + 1]};
  }
  /// Sorts node ids by name byte-wise.
  void sort(std::vector<uint32_t>& v) const {
    std::sort(v.begin(), v.end(), [&](uint32_t x, uint32_t y) { return t_.name_of(x) < t_.name_of(y); });
  }

  /// The children of `n` in byte-wise name order.
  std::span<const uint32_t> of(uint32_t n) {
    auto* b = ids_.data() + begin_[n];
    auto* e = ids_.data() + begin_[n + 1];
    if (!sorted_[n]) {
      std::sort(b, e, [&](uint32_t x, uint32_t y) { return t_.name_of(x) < t_.name_of(y); });
      sorted_[n] = true;
    }
    return {b, e};
  }

 private:
  const flame_tree& t_;
  std::vector<uint32_t> begin_;
  std::vector<uint32_t> ids_;
  std::vector<bool> sorted_;
};

/// Pyroscope's threshold: the max_nodes-th largest total among non-root nodes (0 if there are
/// fewer). Pyroscope finds it with a bounded heap over a DFS that skips a subtree whose root
/// cannot enter the heap. When no self value is negative a subtree's totals never exceed its
/// root's, so the skipped nodes could not have entered either and the heap ends with the
/// max_nodes largest totals: a selection finds the same value. With negative values the same
/// traversal and pruning as Pyroscope's keep the result identical.
int64_t min_value(const flame_tree& t, sorted_children& ch, int64_t max_nodes) {
  const auto& nodes = t.nodes();
  if (static_cast<int64_t>(nodes.size()) - 1 <= max_nodes) return 0;
  if (std::all_of(nodes.begin(), nodes.end(), [](const auto& n) { return n.self >= 0; })) {
    std::vector<int64_t> totals;
    totals.reserve(nodes.size() - 1);
    for (size_t i = 1; i < nodes.size(); ++i) totals.push_back(nodes[i].total);
    auto kth = totals.begin() + (max_nodes - 1);
    std::nth_element(totals.begin(), kth, totals.end(), std::greater<>());
    return *kth;
  }
  std::priority_queue<int64_t, std::vector<int64_t>, std::greater<>> heap;
  auto roots = ch.of(flame_tree::root);
  std::vector<uint32_t> stack(roots.begin(), roots.end());
  while (!stack.empty()) {
    const uint32_t n = stack.back();
    stack.pop_back();
    if (static_cast<int64_t>(heap.size()) >= max_nodes) {
      if (nodes[n].total <= heap.top()) continue;
      heap.pop();
    }
    heap.push(nodes[n].total);
    auto kids = ch.of(n);
    stack.insert(stack.end(), kids.begin(), kids.end());
  }
  if (static_cast<int64_t>(heap.size()) < max_nodes) return 0;
  return heap.top();
}

void put_uvarint(std::string& out, uint64_t v) {
  while (v >= 0x80) {
    out.push_back(static_cast<char>(v | 0x80));
    v >>= 7;
  }
  out.push_back(static_cast<char>(v));
}

}  // namespace

std::string render_tree_bytes(const flame_tree& tree, int64_t max_nodes) {
  std::string out;
  const auto& nodes = tree.nodes();
  if (nodes.size() <= 1) return out;
  sorted_children ch(tree);
  const int64_t min_val = max_nodes > 0 ? min_value(tree, ch, max_nodes) : 0;
  // A stack entry is a node id, or a synthetic "other" carrying its value.
  struct item {
    uint32_t node;
    int64_t other;  // >= 0 with node == UINT32_MAX: a folded "other" leaf
  };
  std::vector<item> stack{{flame_tree::root, 0}};
  std::vector<item> kids;
  std::vector<uint32_t> kept;
  std::unordered_map<uint32_t, int64_t> extra_self;
  while (!stack.empty()) {
    item it = stack.back();
    stack.pop_back();
    if (it.node == UINT32_MAX) {
      put_uvarint(out, 5);
      out += "other";
      put_uvarint(out, static_cast<uint64_t>(it.other));
      put_uvarint(out, 0);
      continue;
    }
    const auto& n = nodes[it.node];
    std::string_view name = it.node == flame_tree::root ? std::string_view() : tree.name_of(it.node);
    put_uvarint(out, name.size());
    out += name;
    int64_t self = n.self;
    if (auto e = extra_self.find(it.node); e != extra_self.end()) self += e->second;
    put_uvarint(out, static_cast<uint64_t>(self));
    kids.clear();
    int64_t other = 0;
    uint32_t existing_other = UINT32_MAX;
    // Only the kept children are sorted: folded ones are just summed.
    kept.clear();
    for (const uint32_t c : ch.unsorted(it.node)) {
      if (tree.name_of(c) == "other") existing_other = c;
      if (nodes[c].total >= min_val || tree.name_of(c) == "other")
        kept.push_back(c);
      else
        other += nodes[c].total;
    }
    ch.sort(kept);
    for (const uint32_t c : kept) kids.push_back({c, 0});
    if (other > 0) {
      if (existing_other != UINT32_MAX) {
        extra_self[existing_other] += other;  // Pyroscope adds to the existing "other" child
      } else {
        // "other" takes its byte-wise place among the kept children.
        auto pos = std::find_if(kids.begin(), kids.end(),
                                [&](const item& k) { return tree.name_of(k.node) > "other"; });
        kids.insert(pos, item{UINT32_MAX, other});
      }
    }
    put_uvarint(out, kids.size());
    stack.insert(stack.end(), kids.begin(), kids.end());
  }
  return out;
}

void append_json_string(std::string& out, std::string_view s) {
  static constexpr char hex[] = "0123456789abcdef";
  out += '"';
  for (size_t i = 0; i < s.size();) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c < 0x80) {
      switch (c) {
        case '"':
          out += "\\\"";
          break;
        case '\\':
          out += "\\\\";
          break;
        case '\b':
          out += "\\b";
          break;
        case '\f':
          out += "\\f";
          break;
        case '\n':
          out += "\\n";
          break;
        case '\r':
          out += "\\r";
          break;
        case '\t':
          out += "\\t";
          break;
        case '<':
        case '>':
        case '&':
          out += "\\u00";
          out += hex[c >> 4];
          out += hex[c & 15];
          break;
        default:
          if (c < 0x20) {
            out += "\\u00";
            out += hex[c >> 4];
            out += hex[c & 15];
          } else {
            out += static_cast<char>(c);
          }
      }
      ++i;
      continue;
    }
    // Multi-byte: copy well-formed sequences, replace each invalid byte by U+FFFD; escape
    // U+2028/U+2029 (line separators that break JavaScript).
    size_t n = 0;
    uint32_t cp = 0;
    if (c >= 0xc2 && c <= 0xdf) {
      n = 2, cp = c & 0x1f;
    } else if (c >= 0xe0 && c <= 0xef) {
      n = 3, cp = c & 0x0f;
    } else if (c >= 0xf0 && c <= 0xf4) {
      n = 4, cp = c & 0x07;
    }
    bool ok = n > 0 && i + n <= s.size();
    for (size_t k = 1; ok && k < n; ++k) {
      const auto b = static_cast<unsigned char>(s[i + k]);
      if ((b & 0xc0) != 0x80) ok = false;
      cp = (cp << 6) | (b & 0x3f);
    }
    if (ok && ((n == 3 && cp < 0x800) || (n == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
               (cp >= 0xd800 && cp <= 0xdfff)))
      ok = false;
    if (!ok) {
      out += "\\ufffd";
      ++i;
    } else if (cp == 0x2028 || cp == 0x2029) {
      out += cp == 0x2028 ? "\\u2028" : "\\u2029";
      i += n;
    } else {
      out.append(s.substr(i, n));
      i += n;
    }
  }
  out += '"';
}

flame_tree::flame_tree() {
  names_.emplace_back("total");
  nodes_.push_back(node{});
  rehash_names(16);
  rehash_index(16);
  const uint32_t h = hash_name("total");
  name_slots_[mix(h) & (name_slots_.size() - 1)] = {h, 1};
}

uint32_t flame_tree::hash_name(std::string_view name) {
  const uint64_t h = std::hash<std::string_view>{}(name);
  return static_cast<uint32_t>(h ^ (h >> 32));
}

uint32_t flame_tree::intern(std::string_view name, uint32_t h) {
  const size_t mask = name_slots_.size() - 1;
  for (size_t i = mix(h) & mask;; i = (i + 1) & mask) {
    name_slot& s = name_slots_[i];
    if (s.id_plus_one == 0) {
      const auto id = static_cast<uint32_t>(names_.size());
      names_.emplace_back(name);
      s = name_slot{h, id + 1};
      if (names_.size() * 2 > name_slots_.size()) rehash_names(name_slots_.size() * 2);
      return id;
    }
    if (s.hash == h && names_[s.id_plus_one - 1] == name) return s.id_plus_one - 1;
  }
}

std::optional<uint32_t> flame_tree::find_name(std::string_view name, uint32_t h) const {
  const size_t mask = name_slots_.size() - 1;
  for (size_t i = mix(h) & mask;; i = (i + 1) & mask) {
    const name_slot& s = name_slots_[i];
    if (s.id_plus_one == 0) return std::nullopt;
    if (s.hash == h && names_[s.id_plus_one - 1] == name) return s.id_plus_one - 1;
  }
}

void flame_tree::rehash_names(size_t capacity) {
  std::vector<name_slot> slots(capacity);
  const size_t mask = capacity - 1;
  for (const name_slot& s : name_slots_) {
    if (s.id_plus_one == 0) continue;
    size_t i = mix(s.hash) & mask;
    while (slots[i].id_plus_one != 0) i = (i + 1) & mask;
    slots[i] = s;
  }
  name_slots_ = std::move(slots);
}

uint32_t flame_tree::child_by_id(uint32_t parent, uint32_t name_id) {
  assert(parent < nodes_.size() && name_id < names_.size());
  const uint64_t key = (uint64_t{parent} << 32) | name_id;
  const size_t mask = index_.size() - 1;
  for (size_t slot = mix(key) & mask;; slot = (slot + 1) & mask) {
    child_slot& s = index_[slot];
    if (s.key == key) return s.node;
    if (s.key != empty_key) continue;
    const auto id = static_cast<uint32_t>(nodes_.size());
    nodes_.push_back(node{parent, name_id, 0, 0});
    finalized_ = false;
    s = child_slot{key, id};
    // nodes_.size() - 1 entries are indexed (the root is not).
    if ((nodes_.size() - 1) * 2 > index_.size()) rehash_index(index_.size() * 2);
    return id;
  }
}

std::optional<uint32_t> flame_tree::find_child(uint32_t parent, uint32_t name_id) const {
  const uint64_t key = (uint64_t{parent} << 32) | name_id;
  const size_t mask = index_.size() - 1;
  for (size_t slot = mix(key) & mask;; slot = (slot + 1) & mask) {
    const child_slot& s = index_[slot];
    if (s.key == key) return s.node;
    if (s.key == empty_key) return std::nullopt;
  }
}

void flame_tree::rehash_index(size_t capacity) {
  std::vector<child_slot> slots(capacity);
  const size_t mask = capacity - 1;
  for (const child_slot& s : index_) {
    if (s.key == empty_key) continue;
    size_t i = mix(s.key) & mask;
    while (slots[i].key != empty_key) i = (i + 1) & mask;
    slots[i] = s;
  }
  index_ = std::move(slots);
}

void flame_tree::reserve(size_t nodes, size_t names) {
  nodes_.reserve(nodes);
  names_.reserve(names);
  size_t cap = index_.size();
  while (nodes * 2 > cap) cap *= 2;
  if (cap != index_.size()) rehash_index(cap);
  cap = name_slots_.size();
  while (names * 2 > cap) cap *= 2;
  if (cap != name_slots_.size()) rehash_names(cap);
}

void flame_tree::add_self(uint32_t id, int64_t v) {
  assert(id < nodes_.size());
  nodes_[id].self += v;
  finalized_ = false;
}

void flame_tree::merge(const flame_tree& other) {
  std::vector<uint32_t> name_map(other.names_.size());
  for (size_t i = 0; i < other.names_.size(); ++i) name_map[i] = intern(other.names_[i]);
  std::vector<uint32_t> node_map(other.nodes_.size());
  node_map[0] = root;
  add_self(root, other.nodes_[0].self);
  // Parents precede children, so node_map[parent] is always set.
  for (size_t i = 1; i < other.nodes_.size(); ++i) {
    const node& n = other.nodes_[i];
    node_map[i] = child_by_id(node_map[n.parent], name_map[n.name]);
    if (n.self != 0) nodes_[node_map[i]].self += n.self;
  }
  finalized_ = false;
}

void flame_tree::finalize() {
  for (auto& n : nodes_) n.total = n.self;
  for (size_t i = nodes_.size() - 1; i > 0; --i) nodes_[nodes_[i].parent].total += nodes_[i].total;
  finalized_ = true;
}

int64_t flame_tree::total() const {
  assert(finalized_);
  return nodes_[0].total;
}

flame_graph render_flame_graph(const flame_tree& tree, int64_t max_nodes) {
  assert(tree.finalized());
  if (max_nodes <= 0) max_nodes = default_max_nodes;
  const auto& nodes = tree.nodes();
  sorted_children ch(tree);
  const int64_t min_val = min_value(tree, ch, max_nodes);

  // Flame-graph name index per tree name id, assigned on first visit. The synthetic "other"
  // shares the slot of a real "other" name, as Pyroscope keys names by string.
  std::vector<uint32_t> name_index(tree.names().size(), no_id);
  const std::optional<uint32_t> other_name_id = tree.find_name("other");
  uint32_t synthetic_other_index = no_id;

  flame_graph fg;
  fg.total = nodes[0].total;

  struct item {
    uint32_t node;  // no_id: the synthetic "other" with self = total = other_total
    uint32_t level;
    int64_t x;  // absolute start
    int64_t other_total;
  };
  std::vector<item> stack{{flame_tree::root, 0, 0, 0}};
  std::vector<uint32_t> kept;
  while (!stack.empty()) {
    const item cur = stack.back();
    stack.pop_back();
    const bool synthetic = cur.node == no_id;
    const int64_t self = synthetic ? cur.other_total : nodes[cur.node].self;
    const int64_t total = synthetic ? cur.other_total : nodes[cur.node].total;
    fg.max_self = std::max(fg.max_self, self);

    uint32_t* slot = synthetic
                         ? (other_name_id ? &name_index[*other_name_id] : &synthetic_other_index)
                         : &name_index[nodes[cur.node].name];
    if (*slot == no_id) {
      *slot = static_cast<uint32_t>(fg.names.size());
      fg.names.emplace_back(synthetic ? std::string_view("other") : tree.name_of(cur.node));
    }
    if (cur.level == fg.levels.size()) fg.levels.emplace_back();
    auto& level = fg.levels[cur.level];
    level.insert(level.end(), {cur.x, total, self, static_cast<int64_t>(*slot)});
    if (synthetic) continue;

    // Kept children are pushed left to right (so popped right to left), then "other", which is
    // therefore visited first among its siblings although it is laid out last.
    int64_t x = cur.x + self;
    int64_t other_total = 0;
    // Only the kept children are sorted: folded ones are just summed.
    kept.clear();
    for (const uint32_t c : ch.unsorted(cur.node)) {
      if (nodes[c].total >= min_val && tree.name_of(c) != "other")
        kept.push_back(c);
      else
        other_total += nodes[c].total;
    }
    ch.sort(kept);
    for (const uint32_t c : kept) {
      stack.push_back({c, cur.level + 1, x, 0});
      x += nodes[c].total;
    }
    if (other_total != 0) stack.push_back({no_id, cur.level + 1, x, other_total});
  }

  // Levels were filled in visit order (right to left): reverse the 4-tuples, then delta-encode
  // x as the gap since the end of the previous bar of the level.
  for (auto& level : fg.levels) {
    const size_t n = level.size() / 4;
    for (size_t i = 0; i < n / 2; ++i)
      std::swap_ranges(level.begin() + 4 * i, level.begin() + 4 * i + 4,
                       level.begin() + 4 * (n - 1 - i));
    int64_t prev_end = 0;
    for (size_t i = 0; i < level.size(); i += 4) {
      const int64_t abs_x = level[i];
      level[i] = abs_x - prev_end;
      prev_end = abs_x + level[i + 1];
    }
  }
  // The root's name is "total" whatever the tree calls it.
  fg.names[0] = "total";
  return fg;
}

flamebearer_units units_of(const flamebearer_meta& meta) {
  const std::string_view st = meta.sample_type;
  if (st == "inuse_objects" || st == "alloc_objects" || st == "goroutine" || st == "samples")
    return {"objects", 100};
  if (st == "cpu") return {"samples", 1000000000};
  return {meta.sample_unit, 100};
}

void append_flamebearer_head(std::string& out, const std::vector<std::string>& names,
                             const std::vector<std::vector<int64_t>>& levels, int64_t total,
                             int64_t max_self, std::string_view format, const flamebearer_meta& meta) {
  const auto [units, sample_rate] = units_of(meta);
  size_t values = 0;
  for (const auto& l : levels) values += l.size();
  out.reserve(out.size() + 256 + values * 6 + names.size() * 24);
  out += R"({"version":1,"flamebearer":{"names":[)";
  for (size_t i = 0; i < names.size(); ++i) {
    if (i) out += ',';
    append_json_string(out, names[i]);
  }
  out += R"(],"levels":[)";
  for (size_t i = 0; i < levels.size(); ++i) {
    if (i) out += ',';
    out += '[';
    for (size_t j = 0; j < levels[i].size(); ++j) {
      if (j) out += ',';
      out += std::to_string(levels[i][j]);
    }
    out += ']';
  }
  out += R"(],"numTicks":)" + std::to_string(total);
  out += R"(,"maxSelf":)" + std::to_string(max_self);
  out += R"(},"metadata":{"format":)";
  append_json_string(out, format);
  out += R"(,"spyName":"","sampleRate":)";
  out += std::to_string(sample_rate);
  out += R"(,"units":)";
  append_json_string(out, units);
  out += R"(,"name":)";
  append_json_string(out, meta.sample_type);
  out += '}';
}

std::string render_flamebearer_json(const flame_graph& g, const flamebearer_meta& meta,
                                    const flamebearer_groups* groups) {
  std::string out;
  append_flamebearer_head(out, g.names, g.levels, g.total, g.max_self, "single", meta);
  out += R"(,"timeline":)";
  auto timeline = [&out](const flamebearer_timeline& t) {
    out += R"({"startTime":)" + std::to_string(t.start_s) + R"(,"samples":[)";
    for (size_t i = 0; i < t.samples.size(); ++i) {
      if (i) out += ',';
      out += std::to_string(t.samples[i]);
    }
    out += R"(],"durationDelta":)" + std::to_string(t.step_s);
    out += R"(,"watermarks":null})";
  };
  if (meta.timeline)
    timeline(*meta.timeline);
  else
    out += "null";
  out += R"(,"groups":)";
  if (groups) {
    out += '{';
    for (size_t i = 0; i < groups->size(); ++i) {
      if (i) out += ',';
      append_json_string(out, (*groups)[i].first);
      out += ':';
      timeline((*groups)[i].second);
    }
    out += '}';
  } else {
    out += "null";
  }
  out += R"(,"heatmap":null})";
  return out;
}

function_totals totals_by_name(const flame_tree& tree) {
  assert(tree.finalized());
  const auto& nodes = tree.nodes();
  const auto& names = tree.names();
  function_totals out;
  auto& self = out.self;
  auto& total = out.total;
  auto& seen = out.seen;
  self.assign(names.size(), 0);
  total.assign(names.size(), 0);
  seen.assign(names.size(), false);
  std::vector<uint32_t> on_path(names.size(), 0);  // occurrences of each name on the DFS path

  // Children lists (any order), then an iterative DFS with enter/exit events.
  std::vector<uint32_t> begin(nodes.size() + 1, 0), ids(nodes.size());
  for (size_t i = 1; i < nodes.size(); ++i) ++begin[nodes[i].parent + 1];
  for (size_t i = 1; i < begin.size(); ++i) begin[i] += begin[i - 1];
  {
    std::vector<uint32_t> fill(begin.begin(), begin.end() - 1);
    for (uint32_t i = 1; i < nodes.size(); ++i) ids[fill[nodes[i].parent]++] = i;
  }
  struct frame {
    uint32_t node;
    bool exit;
  };
  std::vector<frame> stack;
  for (uint32_t k = begin[0]; k < begin[1]; ++k) stack.push_back({ids[k], false});
  while (!stack.empty()) {
    const frame f = stack.back();
    stack.pop_back();
    const uint32_t name = nodes[f.node].name;
    if (f.exit) {
      --on_path[name];
      continue;
    }
    seen[name] = true;
    self[name] += nodes[f.node].self;
    if (on_path[name] == 0) total[name] += nodes[f.node].total;
    ++on_path[name];
    stack.push_back({f.node, true});
    for (uint32_t k = begin[f.node]; k < begin[f.node + 1]; ++k) stack.push_back({ids[k], false});
  }
  return out;
}

std::vector<function_stat> top_functions(const flame_tree& tree) {
  const function_totals t = totals_by_name(tree);
  const auto& names = tree.names();
  std::vector<function_stat> out;
  for (uint32_t i = 0; i < names.size(); ++i) {
    if (t.seen[i]) out.push_back({names[i], t.self[i], t.total[i]});
  }
  std::sort(out.begin(), out.end(), [](const function_stat& a, const function_stat& b) {
    if (a.self != b.self) return a.self > b.self;
    return a.name < b.name;
  });
  return out;
}

}  // namespace hearth::query
