#pragma once
// Per-tenant ingestion limits: a rate (bytes/s and profiles/s, token buckets with a burst) checked
// by the distributor, and a cap on active series checked by each partition. The limits of a tenant
// are the `[limits]` defaults unless `limits.per_tenant` overrides them.

#include <chrono>
#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>

#include "format/error.hpp"

namespace hearth {

/// The limits that may differ per tenant. 0 means unlimited for every field.
struct tenant_limits {
  uint64_t ingestion_rate_bytes = 64ull << 20;   ///< request bytes per second (as received)
  uint64_t ingestion_burst_bytes = 256ull << 20;  ///< bucket size of the byte rate
  uint64_t ingestion_rate_profiles = 5000;       ///< profiles per second
  uint64_t ingestion_burst_profiles = 20000;     ///< bucket size of the profile rate
  uint64_t max_series = 200000;                  ///< active series (in open heads) per tenant

  friend bool operator==(const tenant_limits&, const tenant_limits&) = default;
};

/// Thread-safe ingestion rate limiter shared by every distributor worker, and the resolver of
/// each tenant's limits. The clock is passed in (seconds as double from any fixed origin), so the
/// buckets are testable without sleeping.
class ingest_limiter {
 public:
  ingest_limiter(tenant_limits defaults, std::map<std::string, tenant_limits, std::less<>> per_tenant);
  ingest_limiter(const ingest_limiter&) = delete;
  ingest_limiter& operator=(const ingest_limiter&) = delete;

  /// The limits of `tenant`: its override when one is configured, else the defaults.
  const tenant_limits& limits_of(std::string_view tenant) const;

  /// Takes `bytes` from the tenant's byte bucket. A request is admitted while the bucket holds at
  /// least `bytes`, or is full (so a request larger than the burst is not refused forever); the
  /// bucket may then go negative and refills at the rate. Refused: errc::overloaded naming
  /// limits.ingestion_rate_bytes and its value.
  [[nodiscard]] status admit_bytes(std::string_view tenant, uint64_t bytes, double now_s);

  /// The same for profiles (counted after decoding).
  [[nodiscard]] status admit_profiles(std::string_view tenant, uint64_t profiles, double now_s);

  /// Seconds since an arbitrary fixed origin on the steady clock.
  static double now_s() {
    return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
  }

 private:
  struct bucket {
    double tokens = 0;
    double last_s = 0;
    bool started = false;
  };
  struct state {
    bucket bytes, profiles;
  };
  static bool take(bucket& b, uint64_t rate, uint64_t burst, uint64_t n, double now_s);

  tenant_limits defaults_;
  std::map<std::string, tenant_limits, std::less<>> per_tenant_;
  std::mutex mu_;
  std::map<std::string, state, std::less<>> buckets_;  ///< guarded by mu_
};

/// "64MiB", "1.5KiB", "17B": a byte count for messages.
std::string human_bytes(uint64_t n);

}  // namespace hearth
