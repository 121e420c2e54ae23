#pragma once
// The distributor: turns an undecoded ingest request into normalized batches and routes each
// series to its partition (series label hash mod shards). Each request is decoded by a worker
// actor of its own, so requests decode in parallel on the scheduler's threads, never on the HTTP
// event loop. It answers only after every partition acknowledged a durable WAL write.

#include "actors/ingest_limits.hpp"
#include "actors/interfaces.hpp"
#include "format/folded.hpp"
#include "format/jfr.hpp"
#include "format/normalize.hpp"
#include "format/otlp.hpp"

namespace hearth {

class admission_board;
class cluster_view;
class self_metrics;

struct distributor_options {
  uint32_t shards = 1;
  uint64_t max_profile_bytes = 64ull << 20;  ///< one profile after gunzip
  normalize_limits limits;
  text_limits text;  ///< /ingest format=folded|lines
  jfr_limits jfr;    ///< /ingest format=jfr
  otlp::limits otlp;  ///< POST /v1development/profiles
  std::chrono::seconds append_timeout{60};
  /// Read before decoding: a request of a tenant with a partition over its WAL limit is answered
  /// 429 at once, without the CPU of gunzip and decode. Null: no early check. Outlives the actor.
  const admission_board* admission = nullptr;
  /// Per-tenant ingestion rates (bytes before decoding, profiles after). Null: unlimited.
  ingest_limiter* limiter = nullptr;
  /// Cluster mode: each shard goes to its replicas (actors/cluster_view.hpp) and the request is
  /// acknowledged on a write quorum. Null: a single node (local partitions only). Outlives the actor.
  cluster_view* cluster = nullptr;
};

struct distributor_state {
  static inline const char* name = "distributor";
  distributor_options opts;
  ingester_actor ingester;
  self_metrics* metrics = nullptr;
};

distributor_actor::behavior_type distributor_fn(
    distributor_actor::stateful_pointer<distributor_state> self, distributor_options opts,
    ingester_actor ingester, self_metrics* metrics);

/// Pure part of the distributor, exposed for tests: decodes one request into a batch.
result<ingest_batch> decode_ingest_request(const ingest_request& req, const distributor_options& opts,
                                           uint64_t* profiles_decoded);

/// Splits a batch into one batch per shard by series label hash; empty shards get empty batches.
/// The hash leaves out the labels that differ between the sample types of one profile
/// (`__name__`, `__profile_type__`, `__type__`, `__unit__`, `__period_type__`, `__period_unit__`,
/// `__name_replaced__`, `__delta__`), so a profile's series share a shard.
std::vector<ingest_batch> split_by_shard(ingest_batch b, uint32_t shards);

}  // namespace hearth
