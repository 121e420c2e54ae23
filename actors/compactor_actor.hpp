#pragma once
// The compactor: every `interval` it asks each partition for its catalog, runs retention, plans
// compactions with the pure planner (format/compaction_plan.hpp), merges the inputs
// (format/compact.hpp) into a zstd block plus rollups, writes them as fsynced .tmp files, and asks
// the partition to swap them in. The partition owns the commit (rename) so a swap and a retention
// drop can never interleave: compaction never resurrects deleted data. Runs detached (file I/O).

#include <chrono>
#include <deque>
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
  /// The files a swap replaced are deleted this long after it is durable (deferred_removals).
  std::chrono::seconds deletion_delay{120};
};

/// The files of applied swaps, deleted only some time after the swap is durable, as Mimir's and
/// Pyroscope's compactors delay a block's deletion: a query the partition planned before the
/// swap has the old file list and its readers may open those files seconds later. Deleting them
/// at once made such a query fail with `unavailable` ("compacted or expired while the query
/// ran"). Files go in the order their swaps were applied, so a replaced file is never deleted
/// after the output that replaced it: a crash meanwhile leaves them to recovery, which deletes
/// every block a present block names as its source (superseded_blocks). Retention does not wait.
class deferred_removals {
 public:
  struct file {
    std::string path;
    int64_t max_time_ns = 0;  ///< the block's, for retention
    uint64_t bytes = 0;
    int64_t due_ns = 0;  ///< on the caller's clock (the compactor's: steady)
  };
  /// Queues `f`; its due time must not be before the last queued one's.
  void add(file f);
  /// Deletes the files due at `now_ns`, in queue order; returns how many it deleted. A file
  /// already gone counts as deleted; one that cannot be deleted is logged and dropped from the
  /// queue (a restart's recovery deletes it).
  size_t remove_due(io::file_system& fs, int64_t now_ns);
  /// Deletes at once the queued files under `dir` that retention drops (plan_retention: max time
  /// before now_ns - retention_ns). Runs before the partition drops its own expired blocks, so
  /// that a crash cannot leave a replaced file without the output that named it.
  size_t remove_expired(io::file_system& fs, const std::string& dir, int64_t retention_ns,
                        int64_t now_ns);
  size_t files() const { return files_.size(); }
  uint64_t bytes() const { return bytes_; }

 private:
  bool remove(io::file_system& fs, const file& f);
  std::deque<file> files_;
  uint64_t bytes_ = 0;
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
  deferred_removals replaced;  ///< files of applied swaps, deleted opts.deletion_delay later
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
/// durable, then queues `reply.obsolete` in `later`, due at `due_ns` (their times and sizes from
/// `cat`, the catalog the job was planned on). A failed sync is tried once more; if that fails
/// too, nothing is queued (a restart deletes those files, since the outputs name them as
/// sources) and the outputs must not be compacted further until a later call succeeds. Runs on
/// the compactor's thread so the partition's thread, which acknowledges appends, does not wait
/// for the sync. Exposed for tests.
status finish_swap(io::file_system& fs, const catalog_snapshot& cat, const swap_reply& reply,
                   deferred_removals& later, int64_t due_ns);

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
