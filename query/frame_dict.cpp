#include "query/frame_dict.hpp"

#include <algorithm>
#include <mutex>

#include "query/block_query.hpp"

namespace hearth::query {
namespace {

constexpr uint32_t invalid = block_frames::invalid;
constexpr uint32_t missing = invalid - 1;  // a lookup that would have to insert
constexpr uint32_t unset = invalid - 2;    // a string ref not looked up yet

// Per path: a flame_tree node (24 B), its index slot at load <= 1/2 (>= 32 B) and the vectors'
// growth slack; per name: the string, its index slot and slack.
constexpr uint64_t bytes_per_path = 64;
constexpr uint64_t bytes_per_name = sizeof(std::string) + 24;

}  // namespace

frame_dict::frame_dict(uint64_t max_bytes) : max_bytes_(max_bytes) {}

size_t frame_dict::size() const {
  std::shared_lock lock(mu_);
  return paths_.size();
}

uint64_t frame_dict::bytes() const {
  std::shared_lock lock(mu_);
  return bytes_locked();
}

uint64_t frame_dict::bytes_locked() const {
  return paths_.size() * bytes_per_path + paths_.names().size() * bytes_per_name + name_bytes_;
}

void frame_dict::resolve_names(const block_data& b, std::vector<uint32_t>& str_name, bool insert) {
  // The function names, in string-table order (the block's strings are read sequentially),
  // hashed first, then looked up a few ahead of their table slots' loads.
  const auto& strings = b.syms.strings;
  std::vector<uint32_t> refs;
  for (const function_rec& f : b.syms.functions)
    if (f.name < str_name.size() && (str_name[f.name] == unset || (insert && str_name[f.name] == missing))) {
      str_name[f.name] = missing;
      refs.push_back(f.name);
    }
  std::sort(refs.begin(), refs.end());
  std::vector<uint32_t> hashes(refs.size());
  for (size_t i = 0; i < refs.size(); ++i) hashes[i] = flame_tree::hash_name(strings[refs[i]]);
  constexpr size_t ahead = 8;
  for (size_t i = 0; i < refs.size(); ++i) {
    if (i + ahead < refs.size()) paths_.prefetch_name(hashes[i + ahead]);
    str_name[refs[i]] = name_id(strings[refs[i]], hashes[i], insert);
  }
}

uint32_t frame_dict::name_id(std::string_view name, uint32_t hash, bool insert) {
  if (!insert) return paths_.find_name(name, hash).value_or(missing);
  const size_t before = paths_.names().size();
  const uint32_t id = paths_.intern(name, hash);
  if (paths_.names().size() != before && name.size() > 15) name_bytes_ += name.size() + 1;
  return id;
}

uint32_t frame_dict::child(uint32_t parent, uint32_t name, bool insert) {
  return insert ? paths_.child_by_id(parent, name) : paths_.find_child(parent, name).value_or(missing);
}

uint32_t frame_dict::expand(const block_data& b, uint32_t location, uint32_t parent,
                            std::vector<uint32_t>& str_name, bool insert) {
  uint32_t node = parent;
  const auto w = walk_frames(
      b.syms, location,
      [&](uint32_t ref) {
        uint32_t& name = str_name[ref];
        if (name == unset || (name == missing && insert)) name = name_id(b.syms.strings[ref], flame_tree::hash_name(b.syms.strings[ref]), insert);
        if (name != missing) node = child(node, name, insert);
        return name != missing && node != missing;
      },
      [&](uint64_t address) {
        const std::string frame = address_frame_name(address);
        const uint32_t name = name_id(frame, flame_tree::hash_name(frame), insert);
        if (name != missing) node = child(node, name, insert);
        return name != missing && node != missing;
      });
  if (w == frames_walk::invalid) return invalid;
  return w == frames_walk::stopped ? missing : node;
}

std::shared_ptr<const block_frames> frame_dict::map(const block_data& b) {
  auto out = std::make_shared<block_frames>();
  out->dict = shared_from_this();
  auto& node = out->node;
  const size_t n = b.stacks.size();
  node.assign(n, invalid);
  if (n == 0) return out;
  node[0] = 0;
  std::vector<uint32_t> str_name(b.syms.strings.size(), unset);
  std::vector<uint32_t> pending;  // stack nodes whose path is not in the dictionary yet
  const symbols& syms = b.syms;
  // The name id of the first frame a stack node adds (its location's last line), if known.
  auto first_name = [&](uint32_t s) {
    uint32_t name = missing;
    walk_frames(
        syms, b.stacks[s].location,
        [&](uint32_t ref) {
          name = str_name[ref];
          return false;
        },
        [](uint64_t) { return false; });
    return name;
  };
  // Parents precede children (checked: a parent id >= its child's marks the path invalid), so
  // one ascending pass resolves every node from its parent's entry.
  {
    std::shared_lock lock(mu_);
    resolve_names(b, str_name, false);
    constexpr uint32_t ahead = 8;  // index slots are loaded this many nodes early
    for (uint32_t s = 1; s < n; ++s) {
      if (const uint32_t t = s + ahead; t < n) {
        const uint32_t p = b.stacks[t].parent;
        if (p < s && node[p] < missing)
          if (const uint32_t name = first_name(t); name < missing) paths_.prefetch_child(node[p], name);
      }
      const uint32_t parent = b.stacks[s].parent;
      if (parent >= s || node[parent] == invalid) continue;
      if (node[parent] == missing) {
        node[s] = missing;
        pending.push_back(s);
        continue;
      }
      node[s] = expand(b, b.stacks[s].location, node[parent], str_name, false);
      if (node[s] == missing) pending.push_back(s);
    }
  }
  if (!pending.empty()) {
    std::unique_lock lock(mu_);
    resolve_names(b, str_name, true);
    for (uint32_t s : pending) {
      // Paths added before the budget ran out stay: they are valid, only unused.
      if (bytes_locked() > max_bytes_) return nullptr;
      const uint32_t parent = node[b.stacks[s].parent];
      node[s] = parent == invalid ? invalid : expand(b, b.stacks[s].location, parent, str_name, true);
    }
  }
  for (uint32_t v : node)
    if (v != invalid) out->max_node = std::max(out->max_node, v);
  return out;
}

void frame_dict::materialize(std::span<const int64_t> sums, const std::vector<bool>& touched,
                             flame_tree& into) const {
  std::shared_lock lock(mu_);
  const auto& nodes = paths_.nodes();
  const size_t n = std::min({sums.size(), touched.size(), nodes.size()});
  // Every touched node and its ancestors, marked bottom-up until a marked one.
  std::vector<bool> need(n, false);
  for (size_t d = n; d-- > 1;) {
    if (!touched[d]) continue;
    for (uint32_t a = static_cast<uint32_t>(d); a != 0 && !need[a]; a = nodes[a].parent) need[a] = true;
  }
  std::vector<uint32_t> name_map(paths_.names().size(), unset);
  std::vector<uint32_t> fnode(n, flame_tree::root);
  if (n > 0 && touched[0] && sums[0] != 0) into.add_self(flame_tree::root, sums[0]);
  for (size_t d = 1; d < n; ++d) {
    if (!need[d]) continue;
    uint32_t& name = name_map[nodes[d].name];
    if (name == unset) name = into.intern(paths_.names()[nodes[d].name]);
    fnode[d] = into.child_by_id(fnode[nodes[d].parent], name);
    if (touched[d] && sums[d] != 0) into.add_self(fnode[d], sums[d]);
  }
}

}  // namespace hearth::query
