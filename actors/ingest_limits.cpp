#include "actors/ingest_limits.hpp"

#include <algorithm>
#include <cstdio>

namespace hearth {

std::string human_bytes(uint64_t n) {
  static constexpr const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  double v = static_cast<double>(n);
  size_t u = 0;
  while (v >= 1024 && u + 1 < std::size(units)) {
    v /= 1024;
    ++u;
  }
  char buf[32];
  if (u == 0 || v == static_cast<double>(static_cast<uint64_t>(v)))
    std::snprintf(buf, sizeof buf, "%llu%s", static_cast<unsigned long long>(v), units[u]);
  else
    std::snprintf(buf, sizeof buf, "%.1f%s", v, units[u]);
  return buf;
}

ingest_limiter::ingest_limiter(tenant_limits defaults,
                               std::map<std::string, tenant_limits, std::less<>> per_tenant)
    : defaults_(defaults), per_tenant_(std::move(per_tenant)) {}

const tenant_limits& ingest_limiter::limits_of(std::string_view tenant) const {
  auto it = per_tenant_.find(tenant);
  return it == per_tenant_.end() ? defaults_ : it->second;
}

bool ingest_limiter::take(bucket& b, uint64_t rate, uint64_t burst, uint64_t n, double now_s) {
  const double cap = static_cast<double>(std::max(burst, rate));
  if (!b.started) {
    b.started = true;
    b.tokens = cap;
    b.last_s = now_s;
  }
  if (now_s > b.last_s) {
    b.tokens = std::min(cap, b.tokens + (now_s - b.last_s) * static_cast<double>(rate));
    b.last_s = now_s;
  }
  const double want = static_cast<double>(n);
  if (b.tokens >= want || b.tokens >= cap) {
    b.tokens -= want;
    return true;
  }
  return false;
}

status ingest_limiter::admit_bytes(std::string_view tenant, uint64_t bytes, double now_s) {
  const tenant_limits& l = limits_of(tenant);
  if (l.ingestion_rate_bytes == 0) return {};
  std::lock_guard lock(mu_);
  auto it = buckets_.find(tenant);
  if (it == buckets_.end()) it = buckets_.emplace(std::string(tenant), state{}).first;
  if (take(it->second.bytes, l.ingestion_rate_bytes, l.ingestion_burst_bytes, bytes, now_s)) return {};
  return error{errc::overloaded, "ingestion rate limit of tenant " + quote_untrusted(tenant) +
                                     " reached: limits.ingestion_rate_bytes=" +
                                     human_bytes(l.ingestion_rate_bytes) + "/s (burst " +
                                     human_bytes(std::max(l.ingestion_burst_bytes, l.ingestion_rate_bytes)) +
                                     "); retry later"};
}

status ingest_limiter::admit_profiles(std::string_view tenant, uint64_t profiles, double now_s) {
  const tenant_limits& l = limits_of(tenant);
  if (l.ingestion_rate_profiles == 0 || profiles == 0) return {};
  std::lock_guard lock(mu_);
  auto it = buckets_.find(tenant);
  if (it == buckets_.end()) it = buckets_.emplace(std::string(tenant), state{}).first;
  if (take(it->second.profiles, l.ingestion_rate_profiles, l.ingestion_burst_profiles, profiles, now_s))
    return {};
  return error{errc::overloaded,
               "ingestion rate limit of tenant " + quote_untrusted(tenant) +
                   " reached: limits.ingestion_rate_profiles=" + std::to_string(l.ingestion_rate_profiles) +
                   "/s (burst " +
                   std::to_string(std::max(l.ingestion_burst_profiles, l.ingestion_rate_profiles)) +
                   "); retry later"};
}

}  // namespace hearth
