#pragma once
// The compactor: every `interval` it asks each partition for its catalog, runs retention, plans
// compactions with the pure planner (format/compaction_plan.hpp), merges the inputs
// (format/compact.hpp) into a zstd block plus rollups, writes them as fsynced .tmp files, and asks
// the partition to swap them in. The partition owns the commit (rename) so a swap and a retention
// drop can never interleave: compaction never resurrects deleted data. Runs detached (file I/O).

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "actors/interfaces.hpp"
#include "format/compaction_plan.hpp"
#include "format/segment.hpp"
#include "io/file.hpp"

namespace hearth {

class self_metrics;

/// A partition directory that no partition actor of this node serves: another node's, on shared
/// storage (cluster.shared_path), compacted here while that node is down.
struct adopted_partition {
  std::string node;  ///< the node that wrote it
  std::string tenant;
  uint32_t shard = 0;
  std::string dir;  ///< <shared_path>/<node>/<tenant>/shard-<shard>
};

struct compactor_options {
  bool enabled = true;
  std::chrono::seconds interval{30};
  compaction_policy policy;
  int64_t retention_ns = 0;                        ///< 0 keeps forever
  std::map<std::string, int64_t> tenant_retention_ns;  ///< overrides per tenant
  /// Asked at the end of every run: other nodes' partitions this node compacts now (cluster with
  /// shared storage: those of down nodes whose owner is this node). Unset: none.
  std::function<std::vector<adopted_partition>()> adopted;
  std::string lock_holder;  ///< written into owner.lock while this node works on an adopted partition
};

/// What the compactor remembers of an adopted partition's files between runs: their footers (none
/// for a corrupted file, reported once), so that a run reads only files that are new (path and
/// size identify a published file).
using footer_cache = std::map<std::pair<std::string, uint64_t>, std::optional<segment_info>>;

struct compactor_state {
  static inline const char* name = "compactor";
  compactor_options opts;
  ingester_actor ingester;
  io::file_system* fs = nullptr;
  self_metrics* metrics = nullptr;
  bool running = false;  ///< a run is in progress: ticks and triggers wait for it
  /// Per segments directory: the replaced files of an applied swap whose `finish_swap` failed.
  /// Until a later one succeeds, that partition gets no compaction job: a job over the swap's
  /// outputs would delete them, and a crash would then find these files and the new output's
  /// data both (nothing names them as sources any more). A reply that is not `applied` stands
  /// for a swap whose answer never came (a timeout): that partition gets no job until a restart.
  std::map<std::string, swap_reply> unfinished;
  footer_cache adopted_footers;
};

compactor_actor::behavior_type compactor_fn(compactor_actor::stateful_pointer<compactor_state> self,
                                            compactor_options opts, ingester_actor ingester,
                                            io::file_system* fs, self_metrics* metrics);

/// Runs one compaction job on files (pure I/O + format work, no actors): reads the inputs, merges,
/// writes the raw output and its rollups (zstd at the policy's level for the output level) as
/// fsynced "<final>.tmp" files in `segments_dir`, each footer read back. Returns the swap that
/// publishes them: the .tmp paths in commit order and their footers. Exposed for tests.
result<swap_request> run_compaction_job(io::file_system& fs, const catalog_snapshot& cat,
                                        const compaction_job& job, const compaction_policy& policy,
                                        compaction_report& report);

/// The requester's half of a swap, after the partition applied it (renamed the outputs, without
/// a directory sync, and stopped serving the inputs): syncs `segments_dir`, which makes the swap
/// durable, then deletes `reply.obsolete`. A failed sync is tried once more; if that fails too,
/// nothing is deleted (a restart deletes those files, since the outputs name them as sources) and
/// the outputs must not be compacted further until a later call succeeds. Runs on the
/// compactor's thread so the partition's thread, which acknowledges appends, does not wait for
/// the sync. Exposed for tests.
status finish_swap(io::file_system& fs, const std::string& segments_dir, const swap_reply& reply);

/// Retention and compaction of an adopted partition, done on its files alone with the
/// partition's own publication protocol (docs/design/format/segment.md, "Compaction"): under
/// `p.dir`/owner.lock for the whole call (fails with `unavailable` naming the holder when
/// someone has it: its node came back, or another compactor took it), it deletes stale .tmp
/// files and superseded blocks, plans with plan_maintenance, deletes what retention drops, then
/// for each job writes the outputs (.tmp, fsynced), renames them, syncs the directory and deletes
/// the inputs. Corrupt files are reported and left alone. At most `max_adopted_jobs` jobs run
/// per call (the next run goes on), so a node coming back waits for the lock only briefly.
/// A partition without a segments directory has nothing to do. `compact` false: retention only.
/// Exposed for tests.
inline constexpr size_t max_adopted_jobs = 4;
result<compaction_report> maintain_adopted(io::file_system& fs, const adopted_partition& p,
                                           const compactor_options& opts, int64_t now_ns,
                                           footer_cache& footers, bool compact = true);

}  // namespace hearth
