#include "actors/admission.hpp"

namespace hearth {

void admission_board::set_over_limit(const std::string& tenant, uint32_t shard, bool over) {
  std::lock_guard lock(mu_);
  if (over) {
    if (over_[tenant].insert(shard).second) over_count_.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  auto it = over_.find(tenant);
  if (it == over_.end() || it->second.erase(shard) == 0) return;
  over_count_.fetch_sub(1, std::memory_order_relaxed);
  if (it->second.empty()) over_.erase(it);
}

std::optional<uint32_t> admission_board::over_limit(std::string_view tenant) const {
  if (over_count_.load(std::memory_order_relaxed) == 0) return std::nullopt;
  std::lock_guard lock(mu_);
  auto it = over_.find(tenant);
  if (it == over_.end()) return std::nullopt;
  return *it->second.begin();
}

}  // namespace hearth
