#pragma once
// The in-memory head of a partition: the open, appendable block that ingest batches are interned
// into until it is sealed and written out as a segment. Symbols, stack-tree nodes and series are
// de-duplicated across batches with hash tables keyed by ids (never by views into the growing
// vectors), so the head stays compact however many similar profiles arrive.

#include <cstddef>
#include <cstdint>
#include <vector>

#include "format/block.hpp"
#include "format/normalize.hpp"

namespace hearth {

/// The appendable block of one partition. Thread-safety: none; owned by one partition actor.
class head {
 public:
  head();

  /// Interns the batch's symbols, stacks and series and adds one profile_row per ingest_series,
  /// its samples summed per stack node, its span samples summed per (stack node, span id), and
  /// its period. Requires: `b` is well-formed (from batch_builder or a
  /// successful decode_batch): every index in range, labels sorted by name.
  void append(const ingest_batch& b);

  /// The data so far. Valid until the next append() or seal().
  const block_data& data() const { return data_; }
  /// Roughly the heap bytes used by the data and the interning tables.
  size_t bytes_estimate() const;
  /// Number of profile rows.
  size_t profiles() const { return data_.profiles.size(); }
  bool empty() const { return data_.profiles.empty(); }
  /// Moves the data out and resets the head to empty.
  block_data seal();

 private:
  uint32_t intern_node(uint32_t parent, uint32_t location);

  block_data data_;
  symbol_interner syms_;
  pair_table nodes_;     // (parent, location) -> stack node
  intern_table series_;  // label-ref run -> series
  size_t string_bytes_ = 0;
  // Per-append scratch, kept to reuse its capacity.
  std::vector<uint32_t> str_map_, map_map_, fn_map_, loc_map_, stack_map_, node_slot_, path_;
  std::vector<line_rec> lines_;
  std::vector<label_ref> label_scratch_;
  std::vector<span_sample> span_scratch_;
};

}  // namespace hearth
