#pragma once
// Every actor interface of Hearth and every message type they exchange, in one place. Message
// types are value structs with an `inspect` overload and one type-ID block, so any handle may be a
// remote actor later (CAF 0.17 remoting serializes exactly these). Replies carry errors as values
// (`reply_status`, codes from format/error.hpp) because CAF 0.17 error codes are 8-bit.

#include <caf/all.hpp>
#include <cstdint>
#include <string>
#include <vector>

#include "format/block.hpp"
#include "format/error.hpp"
#include "query/diff.hpp"
#include "query/evaluate.hpp"
#include "query/findings.hpp"

namespace hearth {

// ---- message types -------------------------------------------------------------------------

/// Outcome of a request: code 0 = success, otherwise an `errc` value and a message for humans.
struct reply_status {
  uint16_t code = 0;
  std::string message;

  bool ok() const { return code == 0; }
  static reply_status from(const error& e) { return {static_cast<uint16_t>(e.code), e.message}; }
  error to_error() const { return error{static_cast<errc>(code), message}; }
};

/// How an ingest body is encoded. On the wire between nodes: never renumber.
enum class ingest_kind : uint8_t {
  legacy_ingest = 1,  ///< POST /ingest: query params + raw or multipart body
  push_proto = 2,     ///< push.v1.PusherService/Push, application/proto
  push_json = 3,      ///< push.v1.PusherService/Push, application/json
  otlp_proto = 4,     ///< POST /v1development/profiles, binary ExportProfilesServiceRequest
  otlp_json = 5,      ///< POST /v1development/profiles, its proto3 JSON form
};

/// An undecoded ingest request, as the gateway read it off the socket.
struct ingest_request {
  std::string tenant;
  uint8_t kind = 0;  ///< ingest_kind
  std::string content_type;
  std::vector<std::string> param_names;   ///< URL query parameters (legacy /ingest), decoded
  std::vector<std::string> param_values;  ///< parallel to param_names
  std::string body;
  int64_t received_ns = 0;  ///< wall clock at receipt: default time of profiles without one
};

struct ingest_reply {
  reply_status status;
  uint64_t profiles = 0;  ///< pprof profiles decoded
  uint64_t series = 0;    ///< series profiles stored
  uint64_t samples = 0;   ///< (stack, value) pairs stored
};

/// A partition's answer to an append: durable in its WAL when status is ok.
struct append_reply {
  reply_status status;
  uint64_t series = 0;
  uint64_t samples = 0;
};

/// What the query frontend produces from a request. On the wire between nodes: never renumber.
enum class query_op : uint8_t {
  flame_graph = 1,  ///< merge_stacks -> Pyroscope FlameGraph (+ timeline points if asked)
  values = 2,       ///< label names/values/profile types
  label_sets = 3,   ///< Series RPC
  series = 4,       ///< SelectSeries
  pprof = 5,        ///< merged pprof bytes (SelectMergeProfile, format PPROF)
  stats = 6,        ///< GetProfileStats
  analyze = 7,      ///< AnalyzeQuery counts
  diff = 8,         ///< two merge_stacks selections -> FlameGraphDiff
  findings = 9,     ///< merge_stacks -> exact top functions and hot path
  regression = 10,  ///< two merge_stacks selections -> share changes
  tree = 11,        ///< merge_stacks -> Pyroscope's `tree` bytes (PROFILE_FORMAT_TREE)
};

/// A read request as the gateway hands it to the query frontend: validated, with every tenant it
/// may read. The selection(s) travel on to partitions as query::query_spec.
struct query_request {
  std::vector<std::string> tenants;  ///< sorted, unique; every one is searched
  uint8_t op = 0;                    ///< query_op
  query::query_spec spec;            ///< the selection (the left side of diff/regression)
  query::query_spec right;           ///< diff/regression: the right side
  int64_t max_nodes = 0;             ///< flame graph/diff/tree/pprof truncation; 0 = default
  int64_t top_n = 0;                 ///< findings/regression: functions per list (0 = all)
  uint8_t aggregation = 0;           ///< series: 0 sum, 1 average
  int64_t limit = 0;                 ///< series: top-K series (0 = all)
  int64_t pprof_period = 0;          ///< pprof: the period written into the profile
};

/// A segment file a reader actor evaluates for a query, with the rollup of it to use for the
/// buckets [rollup_lo_ns, rollup_hi_ns) (none when rollup_path is empty).
struct segment_ref {
  std::string path;
  uint64_t bytes = 0;
  std::string rollup_path;
  int64_t rollup_lo_ns = 0;
  int64_t rollup_hi_ns = 0;
  int64_t rollup_step_ns = 0;  ///< the rollup's step: the query lies within a step of lo and hi
  int64_t min_time_ns = 0;  ///< the raw block's first and last profile times (its footer)
  int64_t max_time_ns = 0;
};

/// One partition's (or reader's) contribution to one selection. A partition evaluates what it
/// holds in memory and lists in `to_read` the segment files for reader actors.
struct query_partial {
  reply_status status;
  query::partial data;
  std::vector<segment_ref> to_read;
};

/// The frontend's rendered answer; which fields are set depends on the op.
struct query_result {
  reply_status status;
  query::flame_graph graph;             ///< flame_graph
  query::flame_graph_diff diff;         ///< diff
  std::vector<std::string> values;      ///< values
  std::vector<label_set> label_sets;    ///< label_sets
  std::vector<query::series> series;    ///< series
  std::string bytes;                    ///< pprof (uncompressed protobuf) / tree
  query::profile_stats stats;           ///< stats
  query::analyze_counts counts;         ///< analyze
  query::tree_findings findings;        ///< findings
  query::regression_findings regression;  ///< regression
  std::vector<int64_t> point_times_ns;  ///< flame_graph with want_points: per profile, by time
  std::vector<int64_t> point_values;
  std::vector<std::string> point_groups;  ///< with group_by: each point's group_by[0] value
  /// Cluster: nodes whose data may be missing from this answer (no live caught-up replica of
  /// some tenant shard); empty when every shard was read. The gateway sends X-Hearth-Partial.
  std::vector<std::string> partial_nodes;
};

/// A block of a partition's catalog, as the compactor sees it.
struct block_entry {
  uint64_t id = 0;
  uint8_t level = 0;
  int64_t rollup_step_ns = 0;
  int64_t min_time_ns = 0;
  int64_t max_time_ns = 0;
  uint64_t bytes = 0;
  uint64_t profiles = 0;
  uint64_t samples = 0;  ///< stored (stack, value) pairs; the planner bounds a job's memory by them
  uint64_t wal_seq = 0;
  std::string path;
  std::vector<uint64_t> sources;
  uint32_t version = 0;  ///< the file's segment format version (segment_info::version)
};

/// A partition's sealed blocks.
struct catalog_snapshot {
  std::string tenant;
  uint32_t shard = 0;
  std::string segments_dir;
  std::vector<block_entry> blocks;
};

/// Replace `inputs` by the already written, fsynced `outputs` (temporary paths ending in ".tmp",
/// in commit order: the raw block first, then its rollups). The partition renames and publishes
/// them without syncing the directory; the requester syncs it and then deletes
/// `swap_reply::obsolete` (`finish_swap` in actors/compactor_actor.hpp).
struct swap_request {
  std::vector<uint64_t> inputs;
  std::vector<std::string> outputs;
  /// Parallel to `outputs`: each output's footer as the compactor wrote and validated it (`path`
  /// is the published name, without ".tmp"). The partition publishes from these without reading
  /// the files.
  std::vector<block_entry> blocks;
};

struct swap_reply {
  reply_status status;
  bool applied = false;
  /// The files of the replaced blocks, no longer served: to delete once the renames of the
  /// outputs are durable (before that they are what a crash falls back to).
  std::vector<std::string> obsolete;
};

/// What a sealer thread reports to its partition: a frozen head written (or not) as a segment.
struct seal_result {
  reply_status status;    ///< ok: `path` is published and durable
  uint64_t block_id = 0;  ///< the frozen block's id
  std::string path;
  uint64_t bytes = 0;   ///< file size
  int64_t took_ns = 0;  ///< encode + write time on the sealer thread
};

/// What one compactor run did.
struct compaction_report {
  reply_status status;
  uint64_t jobs = 0;
  uint64_t blocks_in = 0;
  uint64_t blocks_out = 0;
  uint64_t bytes_in = 0;
  uint64_t bytes_out = 0;
  uint64_t duplicates = 0;
  uint64_t dropped = 0;  ///< blocks deleted by retention
};

/// One setting of settings.v1 (name, value, Unix ms of its write).
struct setting_entry {
  std::string name;
  std::string value;
  int64_t modified_ms = 0;
};

/// The settings actor's answer: the affected settings (Get: all of the tenant's, by name).
struct settings_reply {
  reply_status status;
  std::vector<setting_entry> settings;
};

// ---- operators' view of storage (the RPC Admin interface) ---------------------------------

/// A sealed block as an operator lists it: the catalog entry plus what its footer says.
struct block_detail {
  std::string tenant;
  uint32_t shard = 0;
  block_entry entry;
  uint64_t series = 0;
  uint8_t codec = 0;     ///< segment_codec
  uint32_t version = 0;  ///< segment format version
};

struct block_listing {
  reply_status status;
  std::vector<block_detail> blocks;  ///< by tenant, shard, min time
};

/// One section record of a segment (format/segment.hpp segment_section_info).
struct section_detail {
  std::string name;
  uint64_t offset = 0;
  uint64_t stored_bytes = 0;
  uint64_t raw_bytes = 0;
  uint8_t codec = 0;
  uint32_t crc = 0;
  bool crc_ok = false;
};

struct block_inspection {
  reply_status status;
  block_detail block;
  std::vector<section_detail> sections;
  uint64_t stacks = 0;
};

/// A full decode of one block: ok, or what was wrong.
struct block_check {
  block_detail block;
  reply_status outcome;
};

struct verify_report {
  reply_status status;
  uint64_t checked = 0;
  uint64_t corrupted = 0;
  std::vector<block_check> results;
};

/// A tenant's sealed data, summed over its blocks.
struct tenant_stat {
  std::string tenant;
  uint32_t partitions = 0;
  uint64_t blocks = 0;
  uint64_t bytes = 0;
  uint64_t series = 0;
  uint64_t profiles = 0;
  uint64_t samples = 0;
  int64_t min_time_ns = 0;
  int64_t max_time_ns = 0;
};

struct tenant_stats_reply {
  reply_status status;
  std::vector<tenant_stat> tenants;  ///< by tenant
};

/// Cluster: what a node says about itself in every heartbeat and heartbeat reply. Peers check it
/// against their configuration (name, roles, ring tokens, replication factor, shards).
struct node_hello {
  std::string name;
  std::vector<std::string> roles;
  uint32_t tokens = 0;
  uint32_t replication_factor = 0;
  uint32_t shards = 0;
  uint64_t boot_id = 0;  ///< random per process start
  /// Nodes this node holds undelivered replica writes (hints) for, or dropped some for: they
  /// are behind, and reads prefer other replicas of their shards.
  std::vector<std::string> hints_for;
};

struct node_hello_reply {
  reply_status status;  ///< not ok: the heartbeat was refused (the message says why)
  node_hello info;
};

/// Cluster: a read of some tenant shards of one node. Parallel tenants/shards name the shards.
struct shard_query {
  std::vector<std::string> tenants;
  std::vector<uint32_t> shards;
  query::query_spec spec;
};

/// The unmerged partials of the shards read (partitions and their segment files).
struct shard_query_reply {
  reply_status status;
  std::vector<query::partial> parts;
};

// ---- atoms ---------------------------------------------------------------------------------

using ingest_atom = caf::atom_constant<caf::atom("ingest")>;
using append_atom = caf::atom_constant<caf::atom("append")>;
using flush_atom = caf::atom_constant<caf::atom("flush")>;
using tick_atom = caf::atom_constant<caf::atom("tick")>;
using query_atom = caf::atom_constant<caf::atom("query")>;
using get_atom = caf::atom_constant<caf::atom("get")>;
using ready_atom = caf::atom_constant<caf::atom("ready")>;
using catalog_atom = caf::atom_constant<caf::atom("catalog")>;
using swap_atom = caf::atom_constant<caf::atom("swap")>;
using drop_atom = caf::atom_constant<caf::atom("drop")>;
using compact_atom = caf::atom_constant<caf::atom("compact")>;
using list_atom = caf::atom_constant<caf::atom("list")>;
using put_atom = caf::atom_constant<caf::atom("put")>;
using read_atom = caf::atom_constant<caf::atom("read")>;
using delete_atom = caf::atom_constant<caf::atom("delete")>;
using seal_atom = caf::atom_constant<caf::atom("seal")>;
using sealed_atom = caf::atom_constant<caf::atom("sealed")>;
using inspect_atom = caf::atom_constant<caf::atom("inspect")>;
using verify_atom = caf::atom_constant<caf::atom("verify")>;
using retention_atom = caf::atom_constant<caf::atom("retention")>;
using stats_atom = caf::atom_constant<caf::atom("stats")>;
using heartbeat_atom = caf::atom_constant<caf::atom("heartbeat")>;
using replica_atom = caf::atom_constant<caf::atom("replica")>;

// ---- interfaces ----------------------------------------------------------------------------

/// A partition: one tenant x shard. Owns a WAL, an in-memory head and the sealed segments.
using partition_actor = caf::typed_actor<
    // Appends a batch to the WAL; replies once it is fsynced (group commit), then it is queryable.
    caf::replies_to<append_atom, ingest_batch>::with<append_reply>,
    // Evaluates a query over the head and the sealed segments.
    caf::replies_to<query_atom, query::query_spec>::with<query_partial>,
    // True when the partition recovered and accepts writes (answered after recovery ends).
    caf::replies_to<ready_atom>::with<bool>,
    // The sealed blocks, for the compactor.
    caf::replies_to<catalog_atom>::with<catalog_snapshot>,
    // Atomically replaces compaction inputs by outputs, unless an input is gone (retention).
    caf::replies_to<swap_atom, swap_request>::with<swap_reply>,
    // Retention: deletes these blocks (and rollups derived from them); replies how many went.
    caf::replies_to<drop_atom, std::vector<uint64_t>>::with<uint64_t>,
    // Internal: sync the WAL for every append received so far and acknowledge them.
    caf::reacts_to<flush_atom>,
    // Internal, periodic: seal the head when it is too old.
    caf::reacts_to<tick_atom>,
    // Internal: the sealer thread finished writing the oldest frozen head.
    caf::reacts_to<seal_atom, seal_result>,
    // Replies once every head frozen so far is durable on disk (true), or as soon as writing one
    // failed (false; it is retried later). Does not seal the current head (tests, shutdown).
    caf::replies_to<sealed_atom>::with<bool>>;

/// The ingester: creates and finds the partitions of each tenant.
using ingester_actor = caf::typed_actor<
    // Partitions of a tenant (creating them when `create` is true; else possibly none).
    caf::replies_to<get_atom, std::string, bool>::with<std::vector<partition_actor>>,
    // Partitions of several tenants (a query's X-Scope-OrgID "a|b"); unknown tenants have none.
    caf::replies_to<get_atom, std::vector<std::string>>::with<std::vector<partition_actor>>,
    // True once every partition found on disk at start has recovered.
    caf::replies_to<ready_atom>::with<bool>,
    // Every partition of every tenant.
    caf::replies_to<list_atom>::with<std::vector<partition_actor>>>;

/// The distributor: decodes and normalizes ingest requests, routes series to partitions.
using distributor_actor = caf::typed_actor<
    // Decodes the request off the HTTP thread and replies after every partition acknowledged.
    caf::replies_to<ingest_atom, ingest_request>::with<ingest_reply>>;

/// A pull-mode scraper of one (target, profile) of a [[scrape]] job.
using scrape_actor = caf::typed_actor<
    // Internal, periodic: one scrape.
    caf::reacts_to<tick_atom>>;

/// The compactor: plans and runs merges, rollups and retention over every partition's blocks.
using compactor_actor = caf::typed_actor<
    // Internal, periodic: one maintenance run.
    caf::reacts_to<tick_atom>,
    // Internal: deletes the replaced files whose deletion delay has passed (deferred_removals).
    caf::reacts_to<delete_atom>,
    // Runs maintenance now and replies what it did (operators, tests).
    caf::replies_to<compact_atom>::with<compaction_report>,
    // Runs retention alone now (no compaction jobs) and replies what it dropped (operators).
    caf::replies_to<retention_atom>::with<compaction_report>>;

/// Per-tenant settings (settings.v1.SettingsService), persisted in the tenant's directory.
using settings_actor = caf::typed_actor<
    // All settings of a tenant, sorted by name.
    caf::replies_to<get_atom, std::string>::with<settings_reply>,
    // Stores a setting (modified_ms 0 = now); refuses one older than the stored value.
    caf::replies_to<put_atom, std::string, setting_entry>::with<settings_reply>,
    // Removes a setting unless it was modified after modified_ms (0 = unconditionally).
    caf::replies_to<delete_atom, std::string, setting_entry>::with<settings_reply>>;

/// A reader: evaluates one selection over one segment file, or a batch of them (read through the
/// shared block store), on the CAF scheduler's threads, so long queries neither wait on nor delay
/// partitions.
using reader_actor = caf::typed_actor<
    caf::replies_to<read_atom, segment_ref, query::query_spec>::with<query_partial>,
    // Several files into one partial (pprof exports: the reader merges their symbols, not the
    // frontend).
    caf::replies_to<read_atom, std::vector<segment_ref>, query::query_spec>::with<query_partial>>;

/// The operators' view of storage: reads catalogs from partitions and segment files through io/,
/// on its own (detached) thread. Tenant "" means every tenant.
using admin_actor = caf::typed_actor<
    // Every sealed block with its footer's counts.
    caf::replies_to<list_atom, std::string>::with<block_listing>,
    // One block's footer and section records (by tenant and block id).
    caf::replies_to<inspect_atom, std::string, uint64_t>::with<block_inspection>,
    // Decodes every block fully (every CRC and cross reference); reports, never throws.
    caf::replies_to<verify_atom, std::string>::with<verify_report>,
    // Per-tenant sums over sealed blocks.
    caf::replies_to<stats_atom, std::string>::with<tenant_stats_reply>>;

/// The query frontend: validates, fans out to partitions, merges, renders.
using query_frontend_actor = caf::typed_actor<
    caf::replies_to<query_atom, query_request>::with<query_result>,
    // Cluster: reads only the named tenant shards of this node, unmerged (for a remote frontend).
    caf::replies_to<query_atom, shard_query>::with<shard_query_reply>>;

/// Cluster: a node's published actor (CAF remoting). Peers heartbeat it, write replicas of
/// their tenant shards through it and read its shards.
using cluster_node_actor = caf::typed_actor<
    // Heartbeat: the sender's identity in, ours out (or a refusal).
    caf::replies_to<heartbeat_atom, node_hello>::with<node_hello_reply>,
    // A replica write of one tenant shard (batch.tenant); replies once it is in an fsynced WAL.
    caf::replies_to<replica_atom, uint32_t, ingest_batch>::with<append_reply>,
    // A read of some tenant shards.
    caf::replies_to<query_atom, shard_query>::with<shard_query_reply>>;

/// Cluster: this node's membership loop (connects to peers, heartbeats them, replays hints).
using cluster_membership_actor = caf::typed_actor<
    // Internal, periodic: one heartbeat round.
    caf::reacts_to<tick_atom>>;

// ---- inspect overloads (wire format of every message type) ----------------------------------

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, label& x) {
  return f(caf::meta::type_name("hearth::label"), x.name, x.value);
}
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, function_rec& x) {
  return f(caf::meta::type_name("hearth::function_rec"), x.name, x.system_name, x.filename,
           x.start_line);
}
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, line_rec& x) {
  return f(caf::meta::type_name("hearth::line_rec"), x.function, x.line);
}
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, mapping_rec& x) {
  return f(caf::meta::type_name("hearth::mapping_rec"), x.memory_start, x.memory_limit,
           x.file_offset, x.filename, x.build_id, x.flags);
}
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, location_rec& x) {
  return f(caf::meta::type_name("hearth::location_rec"), x.address, x.line_begin, x.line_count,
           x.mapping);
}
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, symbols& x) {
  return f(caf::meta::type_name("hearth::symbols"), x.strings, x.mappings, x.functions, x.lines,
           x.locations);
}
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, span_sample& x) {
  return f(caf::meta::type_name("hearth::span_sample"), x.stack, x.span_id, x.value);
}
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, ingest_series& x) {
  return f(caf::meta::type_name("hearth::ingest_series"), x.labels, x.time_ns, x.duration_ns,
           x.id_hi, x.id_lo, x.sample_stacks, x.sample_values, x.spans, x.period);
}
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, ingest_batch& x) {
  return f(caf::meta::type_name("hearth::ingest_batch"), x.tenant, x.syms, x.stack_offsets,
           x.stack_locations, x.series);
}
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, reply_status& x) {
  return f(caf::meta::type_name("hearth::reply_status"), x.code, x.message);
}
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, ingest_request& x) {
  return f(caf::meta::type_name("hearth::ingest_request"), x.tenant, x.kind, x.content_type,
           x.param_names, x.param_values, x.body, x.received_ns);
}
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, ingest_reply& x) {
  return f(caf::meta::type_name("hearth::ingest_reply"), x.status, x.profiles, x.series, x.samples);
}
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, append_reply& x) {
  return f(caf::meta::type_name("hearth::append_reply"), x.status, x.series, x.samples);
}
namespace query {
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, query_spec& x) {
  return f(caf::meta::type_name("hearth::query::query_spec"), x.kind, x.profile_type, x.selector,
           x.label_name, x.start_ns, x.end_ns, x.max_rollup_step_ns, x.call_site, x.label_names,
           x.step_ns, x.group_by, x.pgo, x.pgo_keep_locations, x.pgo_aggregate_callees,
           x.want_points, x.span_ids, x.profile_ids, x.exemplars);
}
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, flat_tree& x) {
  return f(caf::meta::type_name("hearth::query::flat_tree"), x.names, x.parents, x.name_ids, x.selfs);
}
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, series_partial& x) {
  return f(caf::meta::type_name("hearth::query::series_partial"), x.group_values, x.group_end,
           x.point_ms, x.point_sum, x.point_count, x.point_exemplar);
}
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, exemplar& x) {
  return f(caf::meta::type_name("hearth::query::exemplar"), x.time_ms, x.value, x.id_hi, x.id_lo,
           x.labels);
}
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, pprof_partial& x) {
  return f(caf::meta::type_name("hearth::query::pprof_partial"), x.syms, x.stack_parents,
           x.stack_locations, x.values, x.first_ns, x.last_end_ns, x.profiles, x.period);
}
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, profile_stats& x) {
  return f(caf::meta::type_name("hearth::query::profile_stats"), x.data_ingested,
           x.oldest_profile_ms, x.newest_profile_ms);
}
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, analyze_counts& x) {
  return f(caf::meta::type_name("hearth::query::analyze_counts"), x.blocks, x.series, x.profiles,
           x.samples, x.bytes);
}
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, partial& x) {
  // Frame parts point into this process's frame dictionary: fold them into the tree first.
  if constexpr (Inspector::reads_state) make_portable(x);
  return f(caf::meta::type_name("hearth::query::partial"), x.tree, x.values, x.label_sets, x.series,
           x.pprof, x.stats, x.point_times_ns, x.point_values, x.point_groups, x.counts);
}
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, flame_graph& x) {
  return f(caf::meta::type_name("hearth::query::flame_graph"), x.names, x.levels, x.total,
           x.max_self);
}
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, flame_graph_diff& x) {
  return f(caf::meta::type_name("hearth::query::flame_graph_diff"), x.names, x.levels, x.total,
           x.max_self, x.left_ticks, x.right_ticks);
}
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, series_point& x) {
  return f(caf::meta::type_name("hearth::query::series_point"), x.timestamp_ms, x.value);
}
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, series& x) {
  return f(caf::meta::type_name("hearth::query::series"), x.labels, x.points, x.exemplars);
}
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, function_share& x) {
  return f(caf::meta::type_name("hearth::query::function_share"), x.name, x.self, x.total,
           x.self_share, x.total_share);
}
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, path_frame& x) {
  return f(caf::meta::type_name("hearth::query::path_frame"), x.name, x.self, x.total, x.share);
}
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, tree_findings& x) {
  return f(caf::meta::type_name("hearth::query::tree_findings"), x.total, x.top_self, x.top_total,
           x.hot_path);
}
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, function_change& x) {
  return f(caf::meta::type_name("hearth::query::function_change"), x.name, x.left_self,
           x.left_total, x.right_self, x.right_total, x.left_self_share, x.left_total_share,
           x.right_self_share, x.right_total_share, x.self_share_delta, x.total_share_delta);
}
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, regression_findings& x) {
  return f(caf::meta::type_name("hearth::query::regression_findings"), x.left_total,
           x.right_total, x.self_grew, x.self_shrank, x.total_grew, x.total_shrank);
}
}  // namespace query

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, query_request& x) {
  return f(caf::meta::type_name("hearth::query_request"), x.tenants, x.op, x.spec, x.right,
           x.max_nodes, x.top_n, x.aggregation, x.limit, x.pprof_period);
}
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, segment_ref& x) {
  return f(caf::meta::type_name("hearth::segment_ref"), x.path, x.bytes, x.rollup_path,
           x.rollup_lo_ns, x.rollup_hi_ns, x.rollup_step_ns, x.min_time_ns, x.max_time_ns);
}
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, query_partial& x) {
  return f(caf::meta::type_name("hearth::query_partial"), x.status, x.data, x.to_read);
}
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, query_result& x) {
  return f(caf::meta::type_name("hearth::query_result"), x.status, x.graph, x.diff, x.values,
           x.label_sets, x.series, x.bytes, x.stats, x.counts, x.findings, x.regression,
           x.point_times_ns, x.point_values, x.point_groups, x.partial_nodes);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, block_entry& x) {
  return f(caf::meta::type_name("hearth::block_entry"), x.id, x.level, x.rollup_step_ns,
           x.min_time_ns, x.max_time_ns, x.bytes, x.profiles, x.samples, x.wal_seq, x.path,
           x.sources, x.version);
}
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, catalog_snapshot& x) {
  return f(caf::meta::type_name("hearth::catalog_snapshot"), x.tenant, x.shard, x.segments_dir,
           x.blocks);
}
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, swap_request& x) {
  return f(caf::meta::type_name("hearth::swap_request"), x.inputs, x.outputs, x.blocks);
}
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, seal_result& x) {
  return f(caf::meta::type_name("hearth::seal_result"), x.status, x.block_id, x.path, x.bytes,
           x.took_ns);
}
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, swap_reply& x) {
  return f(caf::meta::type_name("hearth::swap_reply"), x.status, x.applied, x.obsolete);
}
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, compaction_report& x) {
  return f(caf::meta::type_name("hearth::compaction_report"), x.status, x.jobs, x.blocks_in,
           x.blocks_out, x.bytes_in, x.bytes_out, x.duplicates, x.dropped);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, node_hello& x) {
  return f(caf::meta::type_name("hearth::node_hello"), x.name, x.roles, x.tokens,
           x.replication_factor, x.shards, x.boot_id, x.hints_for);
}
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, node_hello_reply& x) {
  return f(caf::meta::type_name("hearth::node_hello_reply"), x.status, x.info);
}
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, shard_query& x) {
  return f(caf::meta::type_name("hearth::shard_query"), x.tenants, x.shards, x.spec);
}
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, shard_query_reply& x) {
  return f(caf::meta::type_name("hearth::shard_query_reply"), x.status, x.parts);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, setting_entry& x) {
  return f(caf::meta::type_name("hearth::setting_entry"), x.name, x.value, x.modified_ms);
}
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, settings_reply& x) {
  return f(caf::meta::type_name("hearth::settings_reply"), x.status, x.settings);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, block_detail& x) {
  return f(caf::meta::type_name("hearth::block_detail"), x.tenant, x.shard, x.entry, x.series,
           x.codec, x.version);
}
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, block_listing& x) {
  return f(caf::meta::type_name("hearth::block_listing"), x.status, x.blocks);
}
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, section_detail& x) {
  return f(caf::meta::type_name("hearth::section_detail"), x.name, x.offset, x.stored_bytes,
           x.raw_bytes, x.codec, x.crc, x.crc_ok);
}
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, block_inspection& x) {
  return f(caf::meta::type_name("hearth::block_inspection"), x.status, x.block, x.sections, x.stacks);
}
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, block_check& x) {
  return f(caf::meta::type_name("hearth::block_check"), x.block, x.outcome);
}
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, verify_report& x) {
  return f(caf::meta::type_name("hearth::verify_report"), x.status, x.checked, x.corrupted, x.results);
}
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, tenant_stat& x) {
  return f(caf::meta::type_name("hearth::tenant_stat"), x.tenant, x.partitions, x.blocks, x.bytes,
           x.series, x.profiles, x.samples, x.min_time_ns, x.max_time_ns);
}
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, tenant_stats_reply& x) {
  return f(caf::meta::type_name("hearth::tenant_stats_reply"), x.status, x.tenants);
}

}  // namespace hearth

CAF_BEGIN_TYPE_ID_BLOCK(hearth, caf::first_custom_type_id)
CAF_ADD_TYPE_ID(hearth, (hearth::label))
CAF_ADD_TYPE_ID(hearth, (hearth::function_rec))
CAF_ADD_TYPE_ID(hearth, (hearth::line_rec))
CAF_ADD_TYPE_ID(hearth, (hearth::location_rec))
CAF_ADD_TYPE_ID(hearth, (hearth::mapping_rec))
CAF_ADD_TYPE_ID(hearth, (hearth::symbols))
CAF_ADD_TYPE_ID(hearth, (hearth::ingest_series))
CAF_ADD_TYPE_ID(hearth, (hearth::ingest_batch))
CAF_ADD_TYPE_ID(hearth, (hearth::reply_status))
CAF_ADD_TYPE_ID(hearth, (hearth::ingest_request))
CAF_ADD_TYPE_ID(hearth, (hearth::ingest_reply))
CAF_ADD_TYPE_ID(hearth, (hearth::append_reply))
CAF_ADD_TYPE_ID(hearth, (hearth::query_request))
CAF_ADD_TYPE_ID(hearth, (hearth::query::query_spec))
CAF_ADD_TYPE_ID(hearth, (hearth::segment_ref))
CAF_ADD_TYPE_ID(hearth, (hearth::query_partial))
CAF_ADD_TYPE_ID(hearth, (hearth::query_result))
CAF_ADD_TYPE_ID(hearth, (hearth::partition_actor))
CAF_ADD_TYPE_ID(hearth, (std::vector<hearth::partition_actor>))
CAF_ADD_TYPE_ID(hearth, (hearth::block_entry))
CAF_ADD_TYPE_ID(hearth, (hearth::catalog_snapshot))
CAF_ADD_TYPE_ID(hearth, (hearth::swap_request))
CAF_ADD_TYPE_ID(hearth, (hearth::swap_reply))
CAF_ADD_TYPE_ID(hearth, (hearth::compaction_report))
CAF_ADD_TYPE_ID(hearth, (hearth::seal_result))
CAF_ADD_TYPE_ID(hearth, (std::vector<uint64_t>))
CAF_ADD_TYPE_ID(hearth, (std::vector<std::string>))
CAF_ADD_TYPE_ID(hearth, (hearth::setting_entry))
CAF_ADD_TYPE_ID(hearth, (hearth::settings_reply))
// rpc: the operators' view of storage (admin_actor)
CAF_ADD_TYPE_ID(hearth, (hearth::block_detail))
CAF_ADD_TYPE_ID(hearth, (hearth::block_listing))
CAF_ADD_TYPE_ID(hearth, (hearth::section_detail))
CAF_ADD_TYPE_ID(hearth, (hearth::block_inspection))
CAF_ADD_TYPE_ID(hearth, (hearth::block_check))
CAF_ADD_TYPE_ID(hearth, (hearth::verify_report))
CAF_ADD_TYPE_ID(hearth, (hearth::tenant_stat))
CAF_ADD_TYPE_ID(hearth, (hearth::tenant_stats_reply))
// cluster
CAF_ADD_TYPE_ID(hearth, (hearth::node_hello))
CAF_ADD_TYPE_ID(hearth, (hearth::node_hello_reply))
CAF_ADD_TYPE_ID(hearth, (hearth::shard_query))
CAF_ADD_TYPE_ID(hearth, (hearth::shard_query_reply))
CAF_ADD_TYPE_ID(hearth, (hearth::cluster_node_actor))
CAF_END_TYPE_ID_BLOCK(hearth)
