#pragma once
// Admission before decode: partitions publish whether their unsealed WAL is over
// storage.wal_max_bytes, and the distributor reads it before it spends CPU on gunzip, decode and
// normalization. Advisory only: the partition's own check in its append stays the authority (a
// request admitted here may still get 429 there, and a flag cleared by a seal lets the next
// request through at once).

#include <atomic>
#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <string_view>

namespace hearth {

/// The partitions of this node that currently refuse appends because their unsealed WAL is over
/// its limit. Thread-safety: every member may be called from any thread. The common case (no
/// partition over its limit) costs one relaxed atomic load per request.
class admission_board {
 public:
  admission_board() = default;
  admission_board(const admission_board&) = delete;
  admission_board& operator=(const admission_board&) = delete;

  /// Records whether partition `shard` of `tenant` is over its WAL limit. Called by the partition
  /// whenever the answer may have changed; repeating the current answer is cheap.
  void set_over_limit(const std::string& tenant, uint32_t shard, bool over);

  /// When a partition of `tenant` is over its WAL limit, the lowest such shard; otherwise nullopt.
  /// A request of the tenant is refused if any of its shards is over: its series are spread over
  /// the shards by label hash, which is unknown before decoding.
  std::optional<uint32_t> over_limit(std::string_view tenant) const;

 private:
  std::atomic<uint32_t> over_count_{0};  ///< partitions over their limit, all tenants
  mutable std::mutex mu_;
  std::map<std::string, std::set<uint32_t>, std::less<>> over_;  ///< guarded by mu_
};

}  // namespace hearth
