#pragma once
// Reader actors: evaluate a query's selection over one segment file each, reading it through the
// shared block store. The query frontend spreads a query's segment files over a small pool of
// them, so one query uses every core and partitions keep acknowledging appends meanwhile.

#include "actors/block_store.hpp"
#include "actors/interfaces.hpp"

namespace hearth {

/// The partial of `spec` over the segment `ref` (and its rollup). A corrupted file contributes
/// nothing (the store reports it once; other blocks keep answering); a missing one, removed by a
/// compaction or retention while the query ran, fails the query as `unavailable` (retry).
query_partial read_segment(block_store& store, const segment_ref& ref, const query::query_spec& spec);

reader_actor::behavior_type reader_fn(reader_actor::pointer self, block_store* store);

}  // namespace hearth
