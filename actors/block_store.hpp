#pragma once
// The process-wide cache of decoded segment blocks, shared by partitions (which put the blocks
// they seal) and reader actors (which read and decode the segments a query needs, off
// the partitions' threads). Bounded by storage.block_cache_bytes; least recently used blocks are
// evicted and re-read from their file on demand. A file that no longer validates is reported once
// (log + hearth_segments_corrupted_total) and never served again.
// Thread-safety: every member may be called from any thread; decoding happens outside the lock.

#include <cstdint>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <unordered_map>

#include "format/block.hpp"
#include "format/segment.hpp"
#include "io/file.hpp"
#include "query/evaluate.hpp"
#include "query/frame_dict.hpp"

namespace hearth {

class self_metrics;

/// A rough heap size of a decoded block, for the cache budget.
uint64_t memory_of(const block_data& b);

class block_store {
 public:
  enum class outcome : uint8_t { ok, missing, corrupted };
  struct lookup {
    outcome what = outcome::missing;
    std::shared_ptr<const block_data> block;  ///< set iff ok
  };

  block_store(io::file_system* fs, uint64_t max_bytes, self_metrics* metrics)
      : fs_(fs),
        max_bytes_(max_bytes),
        metrics_(metrics),
        dict_(std::make_shared<query::frame_dict>(dict_budget(max_bytes))) {}

  /// The block of segment file `path`: cached, or read and decoded now by the calling thread.
  /// `missing`: the file is gone (compacted or expired meanwhile) or unreadable.
  /// `depth`: what the caller reads of the block (query::depth_needed). A cached block decoded
  /// at least that deep answers; a miss decodes only that much (decode_segment_rows for row
  /// depths) and caches it, and a later get() that needs more decodes the file again and
  /// replaces it.
  /// `reads` (whole depth; query::evaluator::series_read): the series whose pairs the caller
  /// reads; empty = all. A miss decodes only those pairs (decode_segment_series), plus those of a
  /// cached block it replaces; a cached block answers when it has the pairs of every series
  /// `reads` marks. The replacing block keeps the replaced one's frame map (same file, same
  /// stacks).
  lookup get(const std::string& path, query::block_depth depth = query::block_depth::whole,
             const series_filter& reads = {});
  /// The block of `path` for a query inside [lo_ns - step_ns, hi_ns + step_ns) that reads none of
  /// its profiles in [lo_ns, hi_ns) (a rollup of that step answers those buckets): the cached
  /// whole block if there is one with every series' pairs, else the block with only the pairs of
  /// the profiles in the two margins decoded (decode_segment_outside), cached under its own key,
  /// which is stored in `*key` for frames(). A window's bounds are a rollup's bucket edges, so a
  /// "last 24 h" query refreshed within the hour finds that block again. Outcomes as get()'s; a
  /// corrupted file is marked for both.
  lookup get_outside(const std::string& path, int64_t lo_ns, int64_t hi_ns, int64_t step_ns,
                     std::string* key);
  /// Caches a block decoded elsewhere (a seal).
  void put(const std::string& path, std::shared_ptr<const block_data> block);
  /// Forgets a block whose file was removed (and its windowed blocks).
  void drop(const std::string& path);
  bool corrupted(const std::string& path) const;
  /// The frame map of `block`, the block of `path` that get() returned (query/frame_dict.hpp):
  /// computed by the calling thread on first use and kept with the cached block, so a block's
  /// stacks are expanded into frame names once, not once per query. Null when the block is no
  /// longer cached as `block` (the caller evaluates without a map).
  std::shared_ptr<const query::block_frames> frames(const std::string& path,
                                                    const std::shared_ptr<const block_data>& block);

  /// The frame dictionary's share of the block cache budget: when it is full, a new one is
  /// started and the cached maps into the old one are dropped (re-made on their next use).
  static uint64_t dict_budget(uint64_t block_cache_bytes) { return block_cache_bytes / 8; }

 private:
  struct entry {
    std::shared_ptr<const block_data> block;
    uint64_t mem = 0;
    uint64_t last_use = 0;
    /// Below `whole`: decoded by decode_segment_rows (no symbols, stacks or samples).
    query::block_depth depth = query::block_depth::whole;
    /// Whole depth: empty when every series' pairs are decoded, else the series whose are.
    std::vector<bool> series;
    std::shared_ptr<const query::block_frames> frames;  ///< set on first frames()
  };
  void put_locked(const std::string& path, std::shared_ptr<const block_data> block,
                  query::block_depth depth = query::block_depth::whole,
                  std::vector<bool> series = {});
  void evict_locked(const std::string& keep);
  // Marks `path` corrupted and reports it (log, hearth_segments_corrupted_total) the first time.
  void report_corrupted_locked(const std::string& path, const error& e);

  io::file_system* fs_;
  const uint64_t max_bytes_;
  self_metrics* metrics_;
  mutable std::mutex mu_;
  std::unordered_map<std::string, entry> cache_;
  std::set<std::string> corrupted_;
  uint64_t bytes_ = 0;
  uint64_t clock_ = 0;
  std::shared_ptr<query::frame_dict> dict_;  ///< guarded by mu_ (the pointer; it locks itself)
};

}  // namespace hearth
