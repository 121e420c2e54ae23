#pragma once
// The compactor: every `interval` it asks each partition for its catalog, runs retention, plans
// compactions with the pure planner (format/compaction_plan.hpp), merges the inputs
// (format/compact.hpp) into a zstd block plus rollups, writes them as fsynced .tmp files, and asks
// the partition to swap them in. The partition owns the commit (rename) so a swap and a retention
// drop can never interleave: compaction never resurrects deleted data. Runs detached (file I/O).

#include <map>
#include <string>

#include "actors/interfaces.hpp"
#include "format/compaction_plan.hpp"
#include "io/file.hpp"

namespace hearth {

class self_metrics;

struct compactor_options {
  bool enabled = true;
  std::chrono::seconds interval{30};
  compaction_policy policy;
  int64_t retention_ns = 0;                        ///< 0 keeps forever
  std::map<std::string, int64_t> tenant_retention_ns;  ///< overrides per tenant
};

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

}  // namespace hearth
