#pragma once
// Hearth's self-metrics, declared in one table (name, help, unit in the name) on a prometheus-cpp
// registry that main() creates and passes in. Exported by the gateway's own GET /metrics.
// Thread-safety: prometheus-cpp metrics are safe to update from any thread.

#include <memory>
#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>
#include <string>

namespace hearth {

/// Handles to every self-metric. Owned by main; outlives the actor system and the gateway.
class self_metrics {
 public:
  explicit self_metrics(std::shared_ptr<prometheus::Registry> registry);
  self_metrics(const self_metrics&) = delete;
  self_metrics& operator=(const self_metrics&) = delete;

  prometheus::Registry& registry() { return *registry_; }
  /// The whole registry in the Prometheus text exposition format.
  std::string serialize() const;

  /// Counts one HTTP request of `route` answered with `code`, taking `seconds`.
  void observe_request(const std::string& route, int code, double seconds);

  prometheus::Counter& profiles_ingested;   ///< pprof profiles accepted (after decode)
  prometheus::Counter& series_ingested;     ///< per-sample-type series profiles stored
  prometheus::Counter& samples_ingested;    ///< (stack, value) pairs stored
  prometheus::Counter& bytes_received;      ///< ingest request body bytes
  prometheus::Counter& ingest_rejected;     ///< ingest requests answered with an error
  prometheus::Counter& ingest_rejected_before_decode;  ///< of those, 429s decided before decoding
  prometheus::Counter& ingest_rate_limited;    ///< 429s for limits.ingestion_rate_{bytes,profiles}
  prometheus::Counter& ingest_series_limited;  ///< 429s for limits.max_series_per_tenant
  prometheus::Counter& wal_bytes;           ///< bytes appended to WALs
  prometheus::Counter& wal_fsyncs;          ///< WAL syncs (one per group commit)
  prometheus::Counter& segments_written;    ///< segments sealed and published
  prometheus::Counter& segment_bytes;       ///< bytes of segments published
  prometheus::Counter& segments_corrupted;  ///< segment files that failed validation when read
  prometheus::Counter& wal_torn_tails;      ///< torn WAL tails truncated at recovery
  prometheus::Counter& compactions;        ///< compaction jobs completed
  prometheus::Counter& compaction_in_bytes;   ///< segment bytes read by compactions
  prometheus::Counter& compaction_out_bytes;  ///< segment bytes written by compactions
  prometheus::Counter& compaction_failures;   ///< jobs that failed or were discarded
  prometheus::Counter& retention_deleted;     ///< blocks deleted by retention
  prometheus::Gauge& compaction_deferred_bytes;  ///< replaced files kept for the deletion delay
  prometheus::Gauge& head_bytes;            ///< estimated bytes held by all heads
  prometheus::Gauge& head_profiles;         ///< profiles in all heads
  // Pull mode, one child per {job, instance, profile}.
  prometheus::Family<prometheus::Gauge>& scrape_up;        ///< 1 when the last scrape was ingested
  prometheus::Family<prometheus::Gauge>& scrape_duration;  ///< seconds the last scrape took
  prometheus::Family<prometheus::Gauge>& scrape_last_success;  ///< unix time of the last success
  prometheus::Family<prometheus::Counter>& scrapes;          ///< scrapes attempted
  prometheus::Family<prometheus::Counter>& scrape_failures;  ///< scrapes that failed
  // The readers' flame-graph partial cache (query.partial_cache_bytes).
  prometheus::Counter& partial_cache_hits;    ///< cacheable block reads answered from the cache
  prometheus::Counter& partial_cache_misses;  ///< cacheable block reads evaluated
  prometheus::Gauge& partial_cache_bytes;     ///< approximate bytes of the cached partials
  // The block store's frame dictionary (query/frame_dict.hpp).
  prometheus::Gauge& frame_dict_paths;  ///< frame paths numbered by the current dictionary
  prometheus::Gauge& frame_dict_bytes;  ///< its approximate bytes (bounded by block_cache_bytes / 8)
  prometheus::Counter& frame_dict_resets;  ///< dictionaries started because the last one was full

 private:
  std::shared_ptr<prometheus::Registry> registry_;
  prometheus::Family<prometheus::Counter>& requests_;
  prometheus::Family<prometheus::Histogram>& durations_;
};

}  // namespace hearth
