#include "query/partial_cache.hpp"

#include <cstring>

namespace hearth::query {
namespace {

// A new query_spec field must be added to the key below (or be shown not to change a
// merge_stacks partial): this fires when the struct changes size.
static_assert(sizeof(query_spec) == 280, "query_spec changed: update partial_cache_key");

void put_u64(std::string& out, uint64_t v) {
  char b[8];
  std::memcpy(b, &v, 8);
  out.append(b, 8);
}
void put_str(std::string& out, const std::string& s) {
  put_u64(out, s.size());
  out += s;
}
void put_strs(std::string& out, const std::vector<std::string>& v) {
  put_u64(out, v.size());
  for (const auto& s : v) put_str(out, s);
}
void put_u64s(std::string& out, const std::vector<uint64_t>& v) {
  put_u64(out, v.size());
  for (uint64_t x : v) put_u64(out, x);
}

uint64_t strings_bytes(const std::vector<std::string>& v) {
  uint64_t n = v.capacity() * sizeof(std::string);
  for (const auto& s : v) n += s.capacity() > 15 ? s.capacity() + 1 : 0;
  return n;
}

}  // namespace

std::optional<std::string> partial_cache_key(const query_spec& spec, const block_read& r) {
  if (static_cast<query_kind>(spec.kind) != query_kind::merge_stacks) return std::nullopt;
  if (spec.start_ns >= spec.end_ns || r.min_time_ns > r.max_time_ns) return std::nullopt;
  if (r.min_time_ns < spec.start_ns || r.max_time_ns >= spec.end_ns) return std::nullopt;
  // Every length is prefixed and every number fixed-width, so distinct specs never encode alike.
  std::string k;
  k.reserve(128 + spec.selector.size() + r.path.size() + r.rollup_path.size());
  put_str(k, r.path);
  // The block's times too: a read that names other times than those the entry was made with (and
  // checked against) must not find it.
  put_u64(k, static_cast<uint64_t>(r.min_time_ns));
  put_u64(k, static_cast<uint64_t>(r.max_time_ns));
  put_str(k, r.rollup_path);
  put_u64(k, r.rollup_path.empty() ? 0 : static_cast<uint64_t>(r.rollup_lo_ns));
  put_u64(k, r.rollup_path.empty() ? 0 : static_cast<uint64_t>(r.rollup_hi_ns));
  put_u64(k, spec.kind);
  put_str(k, spec.profile_type);
  put_str(k, spec.selector);
  put_str(k, spec.label_name);
  // start_ns and end_ns: left out (the block is inside the range; see the header).
  put_u64(k, static_cast<uint64_t>(spec.max_rollup_step_ns));
  put_strs(k, spec.call_site);
  put_strs(k, spec.label_names);
  put_u64(k, static_cast<uint64_t>(spec.step_ns));
  put_strs(k, spec.group_by);
  put_u64(k, (spec.pgo ? 1u : 0u) | (spec.pgo_aggregate_callees ? 2u : 0u) |
                 (spec.want_points ? 4u : 0u) | (spec.exemplars ? 8u : 0u));
  put_u64(k, spec.pgo_keep_locations);
  put_u64s(k, spec.span_ids);
  put_u64s(k, spec.profile_ids);
  return k;
}

uint64_t memory_of(const partial& p) {
  uint64_t n = sizeof(partial);
  n += strings_bytes(p.tree.names);
  n += p.tree.parents.capacity() * sizeof(uint32_t) + p.tree.name_ids.capacity() * sizeof(uint32_t) +
       p.tree.selfs.capacity() * sizeof(int64_t);
  // A frame part pins its block's frame map (also counted by the block cache while the block
  // stays there) and the dictionary it points into (bounded by the block store's budget).
  for (const auto& fp : p.frame_parts)
    n += sizeof(fp) + fp.sums.stacks.capacity() * sizeof(uint32_t) +
         fp.sums.values.capacity() * sizeof(int64_t) + (fp.frames ? fp.frames->bytes() : 0);
  n += strings_bytes(p.values);
  for (const auto& ls : p.label_sets)
    for (const auto& l : ls) n += sizeof(l) + l.name.size() + l.value.size();
  n += (p.point_times_ns.capacity() + p.point_values.capacity()) * sizeof(int64_t);
  n += strings_bytes(p.point_groups);
  // series and pprof stay empty in merge_stacks partials, the only ones cached.
  return n;
}

std::shared_ptr<const partial> partial_cache::get(const std::string& key) {
  std::lock_guard lock(mu_);
  auto it = index_.find(key);
  if (it == index_.end()) return nullptr;
  lru_.splice(lru_.begin(), lru_, it->second);
  return it->second->value;
}

void partial_cache::put(const std::string& key, std::shared_ptr<const partial> p) {
  if (!p) return;
  const uint64_t size = memory_of(*p) + 2 * key.size() + 64;
  std::vector<std::shared_ptr<const partial>> released;  // freed after the lock is let go
  std::lock_guard lock(mu_);
  if (auto it = index_.find(key); it != index_.end()) {
    bytes_ -= it->second->bytes;
    released.push_back(std::move(it->second->value));
    lru_.erase(it->second);
    index_.erase(it);
  }
  if (size > max_bytes_) return;
  lru_.push_front(entry{key, std::move(p), size});
  index_.emplace(key, lru_.begin());
  bytes_ += size;
  while (bytes_ > max_bytes_) {
    entry& last = lru_.back();
    bytes_ -= last.bytes;
    released.push_back(std::move(last.value));
    index_.erase(last.key);
    lru_.pop_back();
  }
}

uint64_t partial_cache::bytes() const {
  std::lock_guard lock(mu_);
  return bytes_;
}

size_t partial_cache::size() const {
  std::lock_guard lock(mu_);
  return lru_.size();
}

}  // namespace hearth::query
