#pragma once
// GetProfileStats and the Series RPC (pyroscope-api.md §2.1, §2.2, §2.7) over blocks: whether any
// profile was ingested and the oldest/newest profile time, and the label sets of matching series
// (optionally projected onto some label names), each as a per-block partial plus a merge.
// Pure and deterministic.

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "format/block.hpp"
#include "query/selector.hpp"

namespace hearth::query {

/// types.v1.GetProfileStatsResponse as a mergeable value. Times are unix ms (floor of the
/// profile's ns time); both 0 while data_ingested is false (proto3 zero values).
struct profile_stats {
  bool data_ingested = false;
  int64_t oldest_profile_ms = 0;
  int64_t newest_profile_ms = 0;
  friend bool operator==(const profile_stats&, const profile_stats&) = default;
};

/// The stats of every profile row of `block` (no selector, no range: the tenant's whole data).
/// Reads only profile rows. For a sealed segment the footer's min/max time give the same answer
/// without loading the block.
profile_stats block_profile_stats(const block_data& block);

/// Merges `from` into `into`.
void merge_profile_stats(profile_stats& into, const profile_stats& from);

/// The label sets of the series matching `matchers` that have a profile in [start_ns, end_ns),
/// restricted to `label_names` when it is not empty (names absent from a series are left out),
/// sorted and unique; a projection that leaves a series no label yields nothing for it.
/// Each label set is sorted by name.
std::vector<label_set> series_label_sets(const block_data& block,
                                         const std::vector<matcher>& matchers,
                                         std::span<const std::string> label_names, int64_t start_ns,
                                         int64_t end_ns);

/// Merges the sorted unique lists `from` into `into` (the result sorted and unique).
void merge_label_sets(std::vector<label_set>& into, const std::vector<label_set>& from);

}  // namespace hearth::query
