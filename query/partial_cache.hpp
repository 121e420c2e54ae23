#pragma once
// A results cache of per-block flame-graph partials. A sealed segment file never changes and its
// name carries a random block id, so the partial a merge_stacks selection yields over one file is
// a pure function of the file and the selection: when the block lies wholly inside the query's
// range, the range itself drops out and a refreshing dashboard can reuse the partial of every
// block but the newest. Keys say exactly what the partial depends on (partial_cache_key); values
// are immutable and shared. Pure: no CAF, no I/O. Thread-safe: every member may be called from
// any thread (one mutex; partials are copied and sized outside it).

#include <cstdint>
#include <list>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>

#include "query/evaluate.hpp"

namespace hearth::query {

/// How one segment file is evaluated for a query (what a reader is asked to do).
struct block_read {
  std::string path;        ///< the segment file (unique: its name holds a random block id)
  int64_t min_time_ns = 0; ///< the block's first and last profile times (its footer)
  int64_t max_time_ns = 0;
  std::string rollup_path;  ///< a rollup answering [rollup_lo_ns, rollup_hi_ns); "" = none
  int64_t rollup_lo_ns = 0;
  int64_t rollup_hi_ns = 0;
};

/// The cache key of `spec`'s partial over `r`, or nothing when that partial may depend on the
/// query's range or is not cached: only merge_stacks (flame graphs, timelines, diffs, findings)
/// over a block with min_time >= start and max_time < end. Then every profile of the block is
/// inside the range (so are its timeline points), and with a rollup the raw block answers
/// (-inf, lo) and [hi, +inf) and the rollup [lo, hi) whatever start and end are; lo and hi are
/// in the key. The key encodes the read (path, block times, rollup split) and every query_spec
/// field but start_ns and end_ns.
std::optional<std::string> partial_cache_key(const query_spec& spec, const block_read& r);

/// Approximate heap bytes of a partial (what the cache's budget counts).
uint64_t memory_of(const partial& p);

/// A least-recently-used map from partial_cache_key to immutable partials, bounded by the
/// approximate bytes of its values (a partial larger than the whole budget is not kept).
class partial_cache {
 public:
  explicit partial_cache(uint64_t max_bytes) : max_bytes_(max_bytes) {}
  partial_cache(const partial_cache&) = delete;
  partial_cache& operator=(const partial_cache&) = delete;

  /// The partial under `key` (now the most recently used), or null.
  std::shared_ptr<const partial> get(const std::string& key);
  /// Keeps `p` under `key` (replacing an entry of that key), evicting least recently used
  /// entries to stay within the budget.
  void put(const std::string& key, std::shared_ptr<const partial> p);

  uint64_t max_bytes() const { return max_bytes_; }
  uint64_t bytes() const;
  size_t size() const;

 private:
  struct entry {
    std::string key;
    std::shared_ptr<const partial> value;
    uint64_t bytes = 0;
  };
  using list = std::list<entry>;  ///< most recently used first

  const uint64_t max_bytes_;
  mutable std::mutex mu_;
  list lru_;
  std::unordered_map<std::string, list::iterator> index_;
  uint64_t bytes_ = 0;
};

}  // namespace hearth::query
