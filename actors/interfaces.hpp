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

/// What a query asks for. On the wire between nodes: never renumber.
enum class query_kind : uint8_t {
  merge_stacks = 1,   ///< flame tree + per-profile totals
  label_names = 2,
  label_values = 3,
  profile_types = 4,
};

/// A query, parsed only as far as the gateway needs; each partition parses the selector itself
/// (compiled regexes do not travel).
struct query_request {
  std::string tenant;
  uint8_t kind = 0;            ///< query_kind
  std::string profile_type;    ///< __profile_type__ to match; empty = any
  std::string selector;        ///< Prometheus selector text, "{}" = all
  std::string label_name;      ///< for label_values
  int64_t start_ns = 0;        ///< the range is [start_ns, end_ns)
  int64_t end_ns = 0;
  int64_t max_nodes = 0;       ///< 0 = server default
  /// Rollup blocks with a step up to this may answer fully covered buckets (0: raw data only).
  /// Flame graphs take any step; a timeline takes steps no coarser than its own.
  int64_t max_rollup_step_ns = 0;
};

/// A name-keyed call tree in flat form: node i has parent parents[i] (node 0 = root, its own
/// parent), name names[name_ids[i]] and self value selfs[i]. Parents precede children.
struct tree_partial {
  std::vector<std::string> names;
  std::vector<uint32_t> parents;
  std::vector<uint32_t> name_ids;
  std::vector<int64_t> selfs;
};

/// One partition's contribution to a query.
struct query_partial {
  reply_status status;
  tree_partial tree;
  std::vector<std::string> values;  ///< label names/values/profile types, sorted unique
  std::vector<int64_t> point_times_ns;  ///< per matching profile: time and total (timeline)
  std::vector<int64_t> point_values;
  uint64_t profiles = 0;            ///< profiles scanned
};

/// The merged answer of the query frontend.
struct query_result {
  reply_status status;
  std::vector<std::string> names;              ///< flame graph names, names[0] = "total"
  std::vector<std::vector<int64_t>> levels;    ///< flame graph levels (Pyroscope encoding)
  int64_t total = 0;
  int64_t max_self = 0;
  std::vector<std::string> values;             ///< label names/values/profile types
  std::vector<int64_t> point_times_ns;         ///< merged per-profile totals, sorted by time
  std::vector<int64_t> point_values;
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
  uint64_t wal_seq = 0;
  std::string path;
  std::vector<uint64_t> sources;
};

/// A partition's sealed blocks.
struct catalog_snapshot {
  std::string tenant;
  uint32_t shard = 0;
  std::string segments_dir;
  std::vector<block_entry> blocks;
};

/// Replace `inputs` by the already written, fsynced `outputs` (temporary paths ending in ".tmp",
/// in commit order: the raw block first, then its rollups).
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
using seal_atom = caf::atom_constant<caf::atom("seal")>;
using sealed_atom = caf::atom_constant<caf::atom("sealed")>;

// ---- interfaces ----------------------------------------------------------------------------

/// A partition: one tenant x shard. Owns a WAL, an in-memory head and the sealed segments.
using partition_actor = caf::typed_actor<
    // Appends a batch to the WAL; replies once it is fsynced (group commit), then it is queryable.
    caf::replies_to<append_atom, ingest_batch>::with<append_reply>,
    // Evaluates a query over the head and the sealed segments.
    caf::replies_to<query_atom, query_request>::with<query_partial>,
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
    // True once every partition found on disk at start has recovered.
    caf::replies_to<ready_atom>::with<bool>,
    // Every partition of every tenant.
    caf::replies_to<list_atom>::with<std::vector<partition_actor>>>;

/// The distributor: decodes and normalizes ingest requests, routes series to partitions.
using distributor_actor = caf::typed_actor<
    // Decodes the request off the HTTP thread and replies after every partition acknowledged.
    caf::replies_to<ingest_atom, ingest_request>::with<ingest_reply>>;

/// The compactor: plans and runs merges, rollups and retention over every partition's blocks.
using compactor_actor = caf::typed_actor<
    // Internal, periodic: one maintenance run.
    caf::reacts_to<tick_atom>,
    // Runs maintenance now and replies what it did (operators, tests).
    caf::replies_to<compact_atom>::with<compaction_report>>;

/// The query frontend: validates, fans out to partitions, merges, renders.
using query_frontend_actor = caf::typed_actor<
    caf::replies_to<query_atom, query_request>::with<query_result>>;

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
typename Inspector::result_type inspect(Inspector& f, ingest_series& x) {
  return f(caf::meta::type_name("hearth::ingest_series"), x.labels, x.time_ns, x.duration_ns,
           x.id_hi, x.id_lo, x.sample_stacks, x.sample_values);
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
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, query_request& x) {
  return f(caf::meta::type_name("hearth::query_request"), x.tenant, x.kind, x.profile_type,
           x.selector, x.label_name, x.start_ns, x.end_ns, x.max_nodes, x.max_rollup_step_ns);
}
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, tree_partial& x) {
  return f(caf::meta::type_name("hearth::tree_partial"), x.names, x.parents, x.name_ids, x.selfs);
}
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, query_partial& x) {
  return f(caf::meta::type_name("hearth::query_partial"), x.status, x.tree, x.values,
           x.point_times_ns, x.point_values, x.profiles);
}
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, query_result& x) {
  return f(caf::meta::type_name("hearth::query_result"), x.status, x.names, x.levels, x.total,
           x.max_self, x.values, x.point_times_ns, x.point_values);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, block_entry& x) {
  return f(caf::meta::type_name("hearth::block_entry"), x.id, x.level, x.rollup_step_ns,
           x.min_time_ns, x.max_time_ns, x.bytes, x.profiles, x.wal_seq, x.path, x.sources);
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
  return f(caf::meta::type_name("hearth::swap_reply"), x.status, x.applied);
}
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, compaction_report& x) {
  return f(caf::meta::type_name("hearth::compaction_report"), x.status, x.jobs, x.blocks_in,
           x.blocks_out, x.bytes_in, x.bytes_out, x.duplicates, x.dropped);
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
CAF_ADD_TYPE_ID(hearth, (hearth::tree_partial))
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
CAF_END_TYPE_ID_BLOCK(hearth)
