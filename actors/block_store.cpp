#include "actors/block_store.hpp"

#include "actors/log.hpp"
#include "actors/metrics.hpp"
#include "format/segment.hpp"

namespace hearth {

uint64_t memory_of(const block_data& b) {
  uint64_t n = sizeof(block_data);
  for (const auto& s : b.syms.strings) n += sizeof(std::string) + (s.size() > 15 ? s.size() + 1 : 0);
  n += b.syms.functions.capacity() * sizeof(function_rec) + b.syms.lines.capacity() * sizeof(line_rec) +
       b.syms.locations.capacity() * sizeof(location_rec) + b.stacks.capacity() * sizeof(stack_node) +
       b.labels.capacity() * sizeof(label_ref) + b.series.capacity() * sizeof(series_rec) +
       b.profiles.capacity() * sizeof(profile_row) + b.samples.capacity() * sizeof(sample_rec) +
       b.spans.capacity() * sizeof(span_sample);
  return n;
}

block_store::lookup block_store::get(const std::string& path) {
  {
    std::lock_guard lock(mu_);
    if (corrupted_.count(path)) return {outcome::corrupted, nullptr};
    if (auto it = cache_.find(path); it != cache_.end()) {
      it->second.last_use = ++clock_;
      return {outcome::ok, it->second.block};
    }
  }
  auto bytes = fs_->read_file(path);
  if (!bytes) return {outcome::missing, nullptr};
  auto block = decode_segment(as_bytes(*bytes));
  std::lock_guard lock(mu_);
  if (!block) {
    if (corrupted_.insert(path).second) {
      if (metrics_) metrics_->segments_corrupted.Increment();
      log::error("blocks", "segment " + path + " is corrupted and is not served: " +
                               block.err().to_string());
    }
    return {outcome::corrupted, nullptr};
  }
  auto data = std::make_shared<const block_data>(std::move(*block));
  put_locked(path, data);
  return {outcome::ok, std::move(data)};
}

void block_store::put(const std::string& path, std::shared_ptr<const block_data> block) {
  std::lock_guard lock(mu_);
  put_locked(path, std::move(block));
}

void block_store::put_locked(const std::string& path, std::shared_ptr<const block_data> block) {
  if (auto it = cache_.find(path); it != cache_.end()) {
    bytes_ -= it->second.mem;
    cache_.erase(it);
  }
  entry e{std::move(block), 0, ++clock_};
  e.mem = memory_of(*e.block);
  bytes_ += e.mem;
  cache_[path] = std::move(e);
  // Evict least recently used blocks over the budget (never the one just put).
  while (bytes_ > max_bytes_ && cache_.size() > 1) {
    auto victim = cache_.end();
    for (auto it = cache_.begin(); it != cache_.end(); ++it)
      if (it->first != path && (victim == cache_.end() || it->second.last_use < victim->second.last_use))
        victim = it;
    bytes_ -= victim->second.mem;
    cache_.erase(victim);
  }
}

void block_store::drop(const std::string& path) {
  std::lock_guard lock(mu_);
  if (auto it = cache_.find(path); it != cache_.end()) {
    bytes_ -= it->second.mem;
    cache_.erase(it);
  }
  corrupted_.erase(path);
}

bool block_store::corrupted(const std::string& path) const {
  std::lock_guard lock(mu_);
  return corrupted_.count(path) > 0;
}

}  // namespace hearth
