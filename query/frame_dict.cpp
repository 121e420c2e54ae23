#include "query/frame_dict.hpp"

#include <algorithm>
#include <mutex>

#include "format/normalize.hpp"
#include "query/block_query.hpp"

namespace hearth::query {
namespace {

constexpr uint32_t invalid = block_frames::invalid;
constexpr uint32_t missing = invalid - 1;  // a lookup that would have to insert
constexpr uint32_t unset = invalid - 2;    // a string ref not looked up yet

// Per node: parent + name (8 B), its index slot at load <= 1/2 (>= 32 B), the map entry of the
// stack node it came from (4 B) and the vectors' growth slack.
constexpr uint64_t bytes_per_node = 56;

uint64_t child_key(uint32_t parent, uint32_t name) { return (uint64_t{parent} << 32) | name; }

}  // namespace

frame_dict::frame_dict(uint64_t max_bytes) : max_bytes_(max_bytes) {
  parents_.push_back(0);
  names_of_.push_back(0);
  index_.resize(16);
  name_id("total", true);
}

size_t frame_dict::size() const {
  std::shared_lock lock(mu_);
  return parents_.size();
}

uint64_t frame_dict::bytes() const {
  std::shared_lock lock(mu_);
  return parents_.size() * bytes_per_node + name_bytes_ + name_index_.size() * sizeof(name_slot);
}

bool frame_dict::over_budget() const {
  return parents_.size() * bytes_per_node + name_bytes_ + name_index_.size() * sizeof(name_slot) >
         max_bytes_;
}

uint64_t frame_dict::name_hash(std::string_view name) { return hash_bytes(name); }

void frame_dict::prefetch_child(uint32_t parent, uint32_t name) const {
  __builtin_prefetch(&index_[hash_mix(0, child_key(parent, name)) & (index_.size() - 1)]);
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
  std::vector<uint64_t> hashes(refs.size());
  for (size_t i = 0; i < refs.size(); ++i) hashes[i] = name_hash(strings[refs[i]]);
  constexpr size_t ahead = 8;
  for (size_t i = 0; i < refs.size(); ++i) {
    if (i + ahead < refs.size()) prefetch_name(hashes[i + ahead]);
    str_name[refs[i]] = name_id(strings[refs[i]], hashes[i], insert);
  }
}

uint32_t frame_dict::name_id(std::string_view name, uint64_t h, bool insert) {
  const size_t mask = name_index_.size() - 1;
  if (!name_index_.empty())
    for (size_t i = h & mask;; i = (i + 1) & mask) {
      const name_slot& s = name_index_[i];
      if (s.id_plus_one == 0) break;
      if (s.hash == h && names_[s.id_plus_one - 1] == name) return s.id_plus_one - 1;
    }
  if (!insert) return missing;
  const auto id = static_cast<uint32_t>(names_.size());
  names_.emplace_back(name);
  name_bytes_ += sizeof(std::string) + (name.size() > 15 ? name.size() + 1 : 0);
  if ((names_.size() + 1) * 2 > name_index_.size()) {
    std::vector<name_slot> slots(std::max<size_t>(16, name_index_.size() * 2));
    const size_t m = slots.size() - 1;
    for (const name_slot& s : name_index_) {
      if (s.id_plus_one == 0) continue;
      size_t i = s.hash & m;
      while (slots[i].id_plus_one != 0) i = (i + 1) & m;
      slots[i] = s;
    }
    name_index_ = std::move(slots);
  }
  const size_t m = name_index_.size() - 1;
  size_t i = h & m;
  while (name_index_[i].id_plus_one != 0) i = (i + 1) & m;
  name_index_[i] = name_slot{h, id + 1};
  return id;
}

uint32_t frame_dict::child(uint32_t parent, uint32_t name, bool insert) {
  const uint64_t key = child_key(parent, name);
  const size_t mask = index_.size() - 1;
  size_t i = hash_mix(0, key) & mask;
  for (;; i = (i + 1) & mask) {
    if (index_[i].key == key) return index_[i].node;
    if (index_[i].key == empty_key) break;
  }
  if (!insert) return missing;
  const auto id = static_cast<uint32_t>(parents_.size());
  parents_.push_back(parent);
  names_of_.push_back(name);
  index_[i] = slot{key, id};
  if (parents_.size() * 2 > index_.size()) {
    std::vector<slot> slots(index_.size() * 2);
    const size_t m = slots.size() - 1;
    for (const slot& s : index_) {
      if (s.key == empty_key) continue;
      size_t j = hash_mix(0, s.key) & m;
      while (slots[j].key != empty_key) j = (j + 1) & m;
      slots[j] = s;
    }
    index_ = std::move(slots);
  }
  return id;
}

uint32_t frame_dict::expand(const block_data& b, uint32_t location, uint32_t parent,
                            std::vector<uint32_t>& str_name, bool insert) {
  uint32_t node = parent;
  const auto w = walk_frames(
      b.syms, location,
      [&](uint32_t ref) {
        uint32_t& name = str_name[ref];
        if (name == unset || (name == missing && insert)) name = name_id(b.syms.strings[ref], insert);
        if (name != missing) node = child(node, name, insert);
        return name != missing && node != missing;
      },
      [&](uint64_t address) {
        const uint32_t name = name_id(address_frame_name(address), insert);
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
  auto first_name = [&](uint32_t s) -> uint32_t {
    const uint32_t l = b.stacks[s].location;
    if (l >= syms.locations.size()) return missing;
    const location_rec& loc = syms.locations[l];
    if (loc.line_count == 0 || uint64_t{loc.line_begin} + loc.line_count > syms.lines.size()) return missing;
    const uint32_t fn = syms.lines[loc.line_begin + loc.line_count - 1].function;
    if (fn >= syms.functions.size() || syms.functions[fn].name >= str_name.size()) return missing;
    return str_name[syms.functions[fn].name];
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
          if (const uint32_t name = first_name(t); name < missing) prefetch_child(node[p], name);
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
      if (over_budget()) return nullptr;
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
  const size_t n = std::min({sums.size(), touched.size(), parents_.size()});
  // Every touched node and its ancestors, marked bottom-up until a marked one.
  std::vector<bool> need(n, false);
  for (size_t d = n; d-- > 1;) {
    if (!touched[d]) continue;
    for (uint32_t a = static_cast<uint32_t>(d); a != 0 && !need[a]; a = parents_[a]) need[a] = true;
  }
  std::vector<uint32_t> name_map(names_.size(), unset);
  std::vector<uint32_t> fnode(n, flame_tree::root);
  if (n > 0 && touched[0] && sums[0] != 0) into.add_self(flame_tree::root, sums[0]);
  for (size_t d = 1; d < n; ++d) {
    if (!need[d]) continue;
    uint32_t& name = name_map[names_of_[d]];
    if (name == unset) name = into.intern(names_[names_of_[d]]);
    fnode[d] = into.child_by_id(fnode[parents_[d]], name);
    if (touched[d] && sums[d] != 0) into.add_self(fnode[d], sums[d]);
  }
}

}  // namespace hearth::query
