#pragma once
// The pure core of compaction: merges blocks (format/block.hpp) into one new block, re-interning
// symbols, stack-tree nodes and series across inputs, dropping profiles outside a time range and
// replicas of the same profile, and optionally rolling profiles up into fixed time buckets. The
// compaction executor loads the input segments with decode_segment_columns, calls merge_segments
// (the streaming form of merge_blocks) and encodes the result with encode_segment
// (format/segment.hpp); this file does no I/O.

#include <cstdint>
#include <limits>
#include <span>
#include <vector>

#include "format/block.hpp"
#include "format/error.hpp"
#include "format/segment.hpp"

namespace hearth {

/// What merge_blocks keeps and how it shapes the output rows.
struct merge_options {
  /// 0: keep every profile as its own row (with its span samples and period). > 0: a rollup: per
  /// series, all kept profiles whose time falls in [k*bucket_ns, (k+1)*bucket_ns) (floor
  /// division, so negative times work too) become ONE row at the earliest of their times, whose
  /// duration reaches the latest of their ends (profile_row::end_ns; INT64_MAX when longer),
  /// samples summed per stack, total summed, profile id 0/0, no span samples and the largest
  /// period of its profiles. The row's time lies in its bucket, so a rollup of a rollup (finer
  /// buckets nesting in coarser ones) has the same rows as one of the profiles. Negative:
  /// invalid_argument.
  int64_t bucket_ns = 0;
  /// Keep only profiles with start_ns <= time_ns < end_ns (the input profile's time, before any
  /// bucketing). start_ns > end_ns: bad_time_range.
  int64_t start_ns = std::numeric_limits<int64_t>::min();
  int64_t end_ns = std::numeric_limits<int64_t>::max();
  /// Replicas: rows of the same series (same label set) with the same non-zero profile id
  /// (id_hi, id_lo) and the same time are stored once; the first one met (inputs in order, rows
  /// in order) is kept. Rows with id 0/0 are never de-duplicated. Applied before rolling up.
  bool dedupe = true;
};

/// What merge_blocks did. input_* count every row of every input, including those outside the
/// time range; output_* count the result.
struct merge_stats {
  uint64_t input_profiles = 0;
  uint64_t output_profiles = 0;
  uint64_t duplicates = 0;  ///< rows dropped as replicas
  uint64_t input_samples = 0;
  uint64_t output_samples = 0;
};

/// Merges blocks into one new block: symbols, stacks and series are re-interned (de-duplicated
/// across inputs, and within an input if it held duplicates), profiles kept or rolled up, replicas
/// dropped. Only the symbols, stack nodes, labels and series reached from a kept profile appear in
/// the output, so filtered-out or de-duplicated rows drag nothing along.
///
/// The output is well-formed for encode_segment: strings[0] == "", node 0 the root, parents before
/// children, no repeated stack within a profile (input nodes that intern to one output node are
/// summed), every total the (wrapping) sum of its samples, min/max_time_ns over the rows (0/0 when
/// there are none). Rows come in order of first appearance (a rollup row where its first profile
/// was); samples of a row in order of first appearance of their stack.
///
/// Cost: linear in the size of the inputs (each input id is remapped once through a vector; output
/// tables are interned through hash tables), plus the output.
/// Fails with invalid_argument for bad options or for an input that breaks an invariant of
/// block.hpp that the merge relies on (an id out of range, a parent not below its node, a sample
/// on the root); such an input is never read out of bounds.
/// Requires: the pointers in `inputs` are not null. `stats`, when not null, is overwritten.
/// Thread-safety: a pure function; inputs are only read.
[[nodiscard]] result<block_data> merge_blocks(std::span<const block_data* const> inputs,
                                              const merge_options& opts,
                                              merge_stats* stats = nullptr);

/// merge_blocks' output with its pairs already encoded: what merge_segments returns and
/// encode_segment(block, samples, ...) writes.
struct merged_segment {
  block_data block;         ///< no samples; profiles in (series, time, id) order
  encoded_samples samples;  ///< the profiles' pairs, in the samples section's layout
};

/// merge_blocks over segments loaded by decode_segment_columns, streaming the pairs: pass 2
/// visits the output rows in the order encode_segment writes them and each input profile's pairs
/// are decoded when its output row is built, remapped, summed, sorted and appended to the
/// output's encoded columns. Neither the inputs' nor the output's pairs are ever held whole as
/// 16-byte sample_recs, and encode_segment neither checks nor sorts them again.
/// Same options, stats and content as merge_blocks on the decoded inputs (the output's ids may
/// be numbered differently: symbols and nodes are interned in the order rows are visited); the
/// same errors, and errc::corrupted (naming the input) for a damaged pair that decode_segment
/// would have refused. Only the pairs of kept profiles are read.
/// Requires: the pointers in `inputs` are not null. Thread-safety: a pure function.
[[nodiscard]] result<merged_segment> merge_segments(std::span<const segment_columns* const> inputs,
                                                    const merge_options& opts,
                                                    merge_stats* stats = nullptr);

/// The rollups of a merged block, one per entry of `steps_ns` (each > 0), in that order: what the
/// compactor writes next to an L2 block. Each is merge_segments over `m` with bucket_ns = step and
/// no de-duplication (replicas are already gone), computed from the coarsest earlier rollup whose
/// step divides it (its buckets nest, so the sums are the same) or else from `m`: a 1 h rollup
/// reads the 1 min one's rows, not the block's. Errors: invalid_argument for a step <= 0 or a
/// block that breaks encode_segment's invariants. Thread-safety: a pure function.
[[nodiscard]] result<std::vector<merged_segment>> roll_up(merged_segment m,
                                                          std::span<const int64_t> steps_ns);

}  // namespace hearth
