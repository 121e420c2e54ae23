#pragma once
// Reader actors: evaluate a query's selection over one segment file each (for a pprof export, a
// batch of them), reading it through the shared block store. The query frontend spreads a query's
// segment files over a small pool of them, so one query uses every core and partitions keep
// acknowledging appends meanwhile. Flame graph partials of whole blocks are kept in a shared
// results cache (query/partial_cache.hpp).

#include "actors/block_store.hpp"
#include "actors/interfaces.hpp"
#include "query/partial_cache.hpp"

namespace hearth {

class self_metrics;

/// The readers' results cache (query.partial_cache_bytes); null members: no cache / no metrics.
/// Both outlive the actor system.
struct reader_cache {
  query::partial_cache* partials = nullptr;
  self_metrics* metrics = nullptr;
};

/// The partial of `spec` over the segment `ref` (and its rollup). A corrupted file contributes
/// nothing (the store reports it once; other blocks keep answering); a missing one, removed by a
/// compaction or retention while the query ran, fails the query as `unavailable` (retry). With a
/// cache, a merge_stacks partial of a block inside the query's range is looked up before the
/// block is read and kept after it is evaluated; a hit answers exactly what the evaluation did.
query_partial read_segment(block_store& store, const segment_ref& ref, const query::query_spec& spec,
                           const reader_cache& cache = {});

/// The partial of `spec` over every file of `refs` (each as read_segment reads it), evaluated into
/// one partial: what a pprof export asks of a reader, so that the symbols of many files are
/// merged on the readers' threads and the frontend merges a partial per reader, not per file.
/// No partial cache; the first missing file fails the whole read (retry).
query_partial read_segments(block_store& store, const std::vector<segment_ref>& refs,
                            const query::query_spec& spec);

reader_actor::behavior_type reader_fn(reader_actor::pointer self, block_store* store,
                                      reader_cache cache);

}  // namespace hearth
