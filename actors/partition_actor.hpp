#pragma once
// The partition actor: one tenant x shard. It owns the WAL (group commit: one fsync acknowledges
// every append that arrived before it), the in-memory head, and the sealed segments it wrote or
// found on disk. It runs detached because WAL syncs block. Sealing freezes the head on this
// thread (a WAL cut and a move); a short-lived detached sealer thread encodes and writes it.

#include <chrono>
#include <memory>
#include <string>
#include <unordered_set>
#include <vector>

#include "actors/block_store.hpp"
#include "actors/ingest_limits.hpp"
#include "actors/interfaces.hpp"
#include "format/head.hpp"
#include "format/segment.hpp"
#include "io/file.hpp"
#include "io/file_lock.hpp"
#include "io/wal.hpp"

namespace hearth {

class admission_board;
class self_metrics;

/// Static settings of a partition.
struct partition_options {
  std::string tenant;
  uint32_t shard = 0;
  std::string dir;  ///< <data>/<tenant>/shard-<n>; holds wal/ and segments/
  uint64_t head_max_bytes = 64ull << 20;  ///< default of storage.head_max_bytes
  int64_t head_max_age_ns = 300ll * 1000000000;
  uint64_t wal_max_bytes = 1ull << 30;
  segment_codec codec = segment_codec::lz4;
  block_store* store = nullptr;  ///< decoded blocks of every partition; required, outlives the actor
  /// Where the partition publishes whether its unsealed WAL is over wal_max_bytes, for the
  /// distributor to refuse requests before decoding them; null: not published. Outlives the actor.
  admission_board* admission = nullptr;
  /// Where the tenant's limits.max_series_per_tenant comes from; this partition admits
  /// ceil(max / shards) active series. Null: unlimited. Outlives the actor.
  const ingest_limiter* limiter = nullptr;
  uint32_t shards = 1;  ///< partitions of the tenant (for the per-partition share of max_series)
  /// Not empty: the directory is on shared storage (cluster.shared_path), where another node's
  /// compactor may work on it while this node is down. The partition then holds `dir`/owner.lock
  /// (io::file_lock, written with this text) for its whole life, taken before it reads anything;
  /// it waits up to `lock_wait` for a job of that compactor to finish, else refuses writes.
  std::string lock_holder;
  std::chrono::seconds lock_wait{300};
};

/// A sealed, immutable segment. Its decoded block lives in the shared block_store (bounded by
/// storage.block_cache_bytes, re-read from its file when evicted) once the file is durable.
struct loaded_segment {
  /// Empty for a frozen head that is not durable yet (being written, or its write failed): its
  /// block is pinned in memory and its data is still in the WAL.
  std::string path;
  uint64_t bytes = 0;  ///< file size
  segment_info info;
  std::shared_ptr<const block_data> data;  ///< the pinned block of a frozen head (path empty)

  uint64_t id() const { return info.catalog_id(); }
};

/// State of a partition actor. Touched only by its own (detached) thread.
struct partition_state {
  static inline const char* name = "partition";

  partition_options opts;
  io::file_system* fs = nullptr;
  self_metrics* metrics = nullptr;
  std::unique_ptr<io::file_lock> owner_lock;  ///< held while opts.lock_holder is set
  std::unique_ptr<io::wal_writer> wal;
  head mem;
  int64_t head_first_append_ns = 0;  ///< wall clock of the first append into the current head
  std::vector<std::shared_ptr<loaded_segment>> segments;
  uint64_t wal_bytes_unsealed = 0;  ///< WAL bytes not yet covered by a durable segment
  uint64_t wal_bytes_head = 0;      ///< WAL bytes appended since the last freeze

  /// A sealer thread is writing the oldest frozen head. One at a time, oldest first: recovery
  /// skips the WAL files below the highest sequence on disk, so no segment may reach disk before
  /// an older frozen one.
  bool sealing = false;
  int64_t seal_retry_ns = 0;   ///< after a failed segment write: wall clock of the next attempt
  int64_t freeze_took_ns = 0;  ///< time the last freeze held this thread (for the seal's log line)
  /// Waiting for every frozen head to be durable (`sealed_atom`).
  std::vector<caf::typed_response_promise<bool>> seal_waiters;
  bool over_limit_published = false;  ///< last answer given to opts.admission

  /// Appends waiting for the next sync.
  struct pending {
    ingest_batch batch;
    caf::typed_response_promise<append_reply> promise;
  };
  std::vector<pending> waiting;
  bool flush_scheduled = false;
  bool failed = false;  ///< the WAL could not be opened: every append is refused
  std::string failure;

  /// Label hashes of the series in the open head (and in appends waiting for it): the active
  /// series counted against limits.max_series_per_tenant. Cleared when the head is frozen.
  std::unordered_set<uint64_t> active_series;

  double head_bytes_reported = 0;
  double head_profiles_reported = 0;
};

/// A fresh random block id (non-zero; the top bit stays clear: it marks ids derived for v1 files).
uint64_t new_block_id();

/// File name of a segment: "L<level>-<block id>.hseg", rollups "L<level>-<id>-r<step>s.hseg".
std::string segment_file_name(const segment_info& info);

/// Recovers the partition from `opts.dir` (segments, then WAL replay) and serves it.
partition_actor::behavior_type partition_fn(partition_actor::stateful_pointer<partition_state> self,
                                            partition_options opts, io::file_system* fs,
                                            self_metrics* metrics);

}  // namespace hearth
