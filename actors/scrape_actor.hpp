#pragma once
// Pull mode: one scrape actor per (target, profile) of each `[[scrape]]` config section. Every
// interval it GETs the target's net/http/pprof endpoint, turns cumulative profiles (allocations,
// mutex, block) into deltas against its previous scrape, and pushes the result through the
// distributor like any client would, with the job's labels. Health per target is in /metrics
// (hearth_scrape_up, hearth_scrape_duration_seconds, hearth_scrape_failures_total, ...).

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "actors/interfaces.hpp"
#include "actors/metrics.hpp"
#include "format/block.hpp"
#include "format/error.hpp"

namespace hearth {

/// What one scrape actor fetches and how it labels it.
struct scrape_options {
  std::string job;           ///< the [[scrape]] job name (label `job`)
  std::string service_name;  ///< label `service_name` (default: the job name)
  std::string host;
  uint16_t port = 0;
  std::string profile;      ///< cpu | heap | allocs | goroutine | mutex | block
  std::string path_prefix = "/debug/pprof";
  std::chrono::seconds interval{15};
  uint32_t cpu_seconds = 14;  ///< `seconds=` of the cpu profile
  std::chrono::seconds timeout{25};
  uint64_t max_body_bytes = 64ull << 20;
  std::string tenant = "anonymous";
  std::vector<std::pair<std::string, std::string>> labels;  ///< extra labels of the job
};

/// The URL path + query of a profile kind, e.g. "/debug/pprof/profile?seconds=14"; "" for an
/// unknown kind.
std::string scrape_target_path(const scrape_options& o);

/// The `__name__` Pyroscope gives each kind: process_cpu, memory, goroutines, mutex, block.
std::string_view scrape_profile_name(std::string_view profile);

/// Turns a target's successive cumulative pprof profiles into deltas. The cumulative sample types
/// are alloc_* of heap/allocs and every type of mutex/block; others (cpu, inuse_*, goroutine) pass
/// through. Samples are matched by their stack (location addresses and function names) and labels,
/// since Go renumbers locations in every profile. The first profile only sets the baseline of the
/// cumulative types (their values become 0); a counter that went down (the target restarted)
/// starts a new baseline. Samples left with only zero values are dropped.
class pprof_delta {
 public:
  explicit pprof_delta(std::string profile_kind) : kind_(std::move(profile_kind)) {}

  /// `raw`: the endpoint's bytes (gzipped or not). Returns the profile to ingest as serialized
  /// (uncompressed) pprof, or "" when nothing is left to ingest (first scrape of a profile whose
  /// every type is cumulative, or no sample changed).
  [[nodiscard]] result<std::string> next(std::string_view raw);

 private:
  std::string kind_;
  bool have_baseline_ = false;
  std::map<std::string, std::vector<int64_t>> prev_;  ///< sample key -> cumulative values
};

struct scrape_state {
  static inline const char* name = "scrape";
  scrape_options opts;
  distributor_actor distributor;
  self_metrics* metrics = nullptr;
  std::unique_ptr<pprof_delta> delta;
};

/// Scrapes now, then every opts.interval. Spawn detached: a scrape blocks its thread on I/O for
/// up to opts.timeout (a cpu profile takes cpu_seconds by design).
scrape_actor::behavior_type scrape_fn(scrape_actor::stateful_pointer<scrape_state> self, scrape_options opts,
                                      distributor_actor distributor, self_metrics* metrics);

}  // namespace hearth
