#include "actors/metrics.hpp"

#include <prometheus/text_serializer.h>

namespace hearth {
namespace {

prometheus::Counter& counter(prometheus::Registry& r, const char* name, const char* help) {
  return prometheus::BuildCounter().Name(name).Help(help).Register(r).Add({});
}
prometheus::Gauge& gauge(prometheus::Registry& r, const char* name, const char* help) {
  return prometheus::BuildGauge().Name(name).Help(help).Register(r).Add({});
}

}  // namespace

self_metrics::self_metrics(std::shared_ptr<prometheus::Registry> r)
    : profiles_ingested(counter(*r, "hearth_ingest_profiles_total", "pprof profiles accepted")),
      series_ingested(counter(*r, "hearth_ingest_series_profiles_total",
                              "series profiles stored (one per sample type and label set)")),
      samples_ingested(counter(*r, "hearth_ingest_samples_total", "(stack, value) pairs stored")),
      bytes_received(counter(*r, "hearth_ingest_received_bytes_total", "ingest request body bytes")),
      ingest_rejected(counter(*r, "hearth_ingest_rejected_total", "ingest requests refused")),
      ingest_rejected_before_decode(
          counter(*r, "hearth_ingest_rejected_before_decode_total",
                  "ingest requests answered 429 before decoding (a partition's WAL over its limit)")),
      ingest_rate_limited(counter(*r, "hearth_ingest_rate_limited_total",
                                  "ingest requests answered 429 for a tenant's ingestion rate limit")),
      ingest_series_limited(counter(*r, "hearth_ingest_series_limited_total",
                                    "appends refused for a tenant's max_series_per_tenant")),
      wal_bytes(counter(*r, "hearth_wal_written_bytes_total", "bytes appended to write-ahead logs")),
      wal_fsyncs(counter(*r, "hearth_wal_fsyncs_total", "WAL syncs (one per group commit)")),
      segments_written(counter(*r, "hearth_segments_written_total", "segments sealed and published")),
      segment_bytes(counter(*r, "hearth_segments_written_bytes_total", "bytes of published segments")),
      segments_corrupted(counter(*r, "hearth_segments_corrupted_total",
                                 "segment files that failed validation when loaded")),
      wal_torn_tails(counter(*r, "hearth_wal_torn_tails_total", "torn WAL tails cut at recovery")),
      compactions(counter(*r, "hearth_compactions_total", "compaction jobs completed")),
      compaction_in_bytes(counter(*r, "hearth_compaction_read_bytes_total",
                                  "segment bytes read by compactions")),
      compaction_out_bytes(counter(*r, "hearth_compaction_written_bytes_total",
                                   "segment bytes written by compactions (rollups included)")),
      compaction_failures(counter(*r, "hearth_compaction_failures_total",
                                  "compaction jobs that failed or were discarded")),
      retention_deleted(counter(*r, "hearth_retention_deleted_blocks_total",
                                "blocks deleted by retention")),
      compaction_deferred_bytes(
          gauge(*r, "hearth_compaction_deferred_deletion_bytes",
                "bytes of files replaced by compaction, kept for compaction.deletion_delay so that "
                "queries planned before the swap can still read them")),
      head_bytes(gauge(*r, "hearth_head_bytes", "estimated bytes held by in-memory heads")),
      head_profiles(gauge(*r, "hearth_head_profiles", "series profiles held by in-memory heads")),
      registry_(std::move(r)),
      scrape_up(prometheus::BuildGauge()
                    .Name("hearth_scrape_up")
                    .Help("1 when the last scrape of a pull-mode target was fetched and ingested, else 0")
                    .Register(*r)),
      scrape_duration(prometheus::BuildGauge()
                          .Name("hearth_scrape_duration_seconds")
                          .Help("duration of the last scrape of a pull-mode target (fetch + ingest)")
                          .Register(*r)),
      scrape_last_success(prometheus::BuildGauge()
                              .Name("hearth_scrape_last_success_timestamp_seconds")
                              .Help("unix time of the last successful scrape of a pull-mode target")
                              .Register(*r)),
      scrapes(prometheus::BuildCounter()
                  .Name("hearth_scrapes_total")
                  .Help("scrapes of pull-mode targets attempted")
                  .Register(*r)),
      scrape_failures(prometheus::BuildCounter()
                          .Name("hearth_scrape_failures_total")
                          .Help("scrapes of pull-mode targets that failed (fetch, decode or ingest)")
                          .Register(*r)),
      partial_cache_hits(counter(*r, "hearth_query_partial_cache_hits_total",
                                 "flame-graph block partials answered from the partial cache")),
      partial_cache_misses(counter(*r, "hearth_query_partial_cache_misses_total",
                                   "cacheable flame-graph block partials evaluated (not in the cache)")),
      partial_cache_bytes(gauge(*r, "hearth_query_partial_cache_bytes",
                                "approximate bytes of the partials held by the partial cache")),
      frame_dict_paths(gauge(*r, "hearth_query_frame_dict_paths",
                             "frame paths numbered by the block store's frame dictionary")),
      frame_dict_bytes(gauge(*r, "hearth_query_frame_dict_bytes",
                             "approximate bytes of the frame dictionary (at most block_cache_bytes / 8)")),
      frame_dict_resets(counter(*r, "hearth_query_frame_dict_resets_total",
                                "frame dictionaries started because the previous one was full")),
      requests_(prometheus::BuildCounter()
                    .Name("hearth_http_requests_total")
                    .Help("HTTP requests by route and status code")
                    .Register(*registry_)),
      durations_(prometheus::BuildHistogram()
                     .Name("hearth_http_request_duration_seconds")
                     .Help("HTTP request latency by route")
                     .Register(*registry_)) {}

std::string self_metrics::serialize() const {
  return prometheus::TextSerializer{}.Serialize(registry_->Collect());
}

void self_metrics::observe_request(const std::string& route, int code, double seconds) {
  requests_.Add({{"route", route}, {"code", std::to_string(code)}}).Increment();
  static const prometheus::Histogram::BucketBoundaries buckets = {
      0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};
  durations_.Add({{"route", route}}, buckets).Observe(seconds);
}

}  // namespace hearth
