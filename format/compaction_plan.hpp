#pragma once
// The compaction and retention planner for one partition's blocks: given what the segment footers
// say (level, time range, size), decides which blocks to merge into the next level and which to
// delete. Pure and deterministic, like Prometheus' `Compactor.Plan`: no I/O, no clock (`now_ns` is
// a parameter); the partition actor runs the plan (reads, merges, publishes, deletes).
// Thread-safety: free functions on values; every type here is a plain value type.

#include <cstdint>
#include <span>
#include <vector>

#include "format/error.hpp"

namespace hearth {

/// What the planner knows of a block (from its segment footer).
struct block_ref {
  uint64_t id = 0;             ///< unique block id
  uint8_t level = 0;           ///< 0 = sealed head; 1, 2 = compacted (2 is terminal)
  int64_t rollup_step_ns = 0;  ///< 0 = raw profiles; else a rollup block at that step
  int64_t min_time_ns = 0;     ///< over its profiles (inclusive)
  int64_t max_time_ns = 0;     ///< over its profiles (inclusive)
  uint64_t bytes = 0;
  uint64_t profiles = 0;
  uint64_t samples = 0;  ///< stored (stack, value) pairs: what a merge decodes and holds
  friend bool operator==(const block_ref&, const block_ref&) = default;
};

/// When blocks compact. Windows are aligned to multiples of their width since time 0 and are
/// half-open: window k of width w is [k*w, (k+1)*w). See `validate` for what a usable policy is.
struct compaction_policy {
  int64_t l1_window_ns = 3'600'000'000'000;  ///< 1 h: L0 blocks are grouped by floor(min_time / it)
  int64_t l2_window_ns = 86'400'000'000'000;  ///< 24 h: L1 blocks likewise; a multiple of l1
  /// An open L1 window with at least this many L0 blocks compacts before it closes.
  size_t l0_max_blocks = 8;
  /// An L2 window without a level-2 block compacts when it has at least this many (settled) L1
  /// blocks. A single L1 block is promoted to L2 alone only if rollups are wanted
  /// (`rollup_steps_ns` not empty) or l1_min_blocks <= 1. With 2 .. l1_min_blocks-1 blocks the
  /// window stays at L1. A window that already has a level-2 block below the caps merges even one
  /// settled L1 block into it.
  size_t l1_min_blocks = 2;
  /// Whether an L2 window that is still open (today) compacts its settled L1 windows (hours that
  /// are closed) into level 2 as they close, instead of waiting for the whole window to close.
  /// Each settled hour is merged into the window's last level-2 block below the caps, so a query
  /// over the last 24 h reads a few level-2 blocks and their rollups, not one file per hour.
  /// The price is write amplification: that block is rewritten once per hour until it reaches
  /// max_output_samples (docs/bench.md, "Level 2 while the day is open").
  bool open_l2_windows = true;
  int64_t grace_ns = 300'000'000'000;  ///< 5 min: a window is closed when now >= window_end + grace
  /// Rollups written next to each L2 block (never for L1).
  std::vector<int64_t> rollup_steps_ns = {60'000'000'000, 3'600'000'000'000};
  /// A job's inputs never add up to more than this; a window's blocks are split into several jobs.
  /// The one exception: a single block larger than this on its own is still a job by itself (a
  /// block cannot be split, and leaving it would block its whole L2 window forever).
  uint64_t max_output_bytes = uint64_t{1} << 30;  ///< 1 GiB
  /// Likewise for the inputs' stored pairs (`block_ref::samples`), with the same exception. The
  /// executor holds every input's and the output's sample columns (2-6 bytes per pair each, plus
  /// symbols and stack trees), so this rather than the compressed bytes bounds a job's memory
  /// (docs/bench.md, "Compaction: streaming column-to-column merge").
  uint64_t max_output_samples = uint64_t{8} << 20;
  /// The same bound for L1 -> L2 jobs. Level-2 blocks are read by every long-range query and a
  /// window split into k of them costs each such query ~k stack trees to decode (W3 over a day:
  /// 167 ms in one block, 298 ms in three; docs/bench.md, "Level 2 while the day is open"), while
  /// their jobs are rare (one per partition and hour), so their cap is higher: one job of 22 M
  /// pairs peaked at 456 MiB (the open window's block and an hour) to 686 MiB (24 hourly inputs).
  uint64_t l2_max_output_samples = uint64_t{24} << 20;
  /// zstd levels of the outputs (negative = zstd's fast modes). L1 blocks live for a day at most
  /// and are rewritten into L2, so they get a fast level; L2 blocks (and their rollups) stay until
  /// retention, so they get a denser one. Measured in docs/bench.md "3. Compaction".
  int l1_zstd_level = 1;
  int l2_zstd_level = 3;
  friend bool operator==(const compaction_policy&, const compaction_policy&) = default;
};

/// One merge for the executor: read `inputs`, write one raw block at `output_level` (zstd), plus
/// one rollup block per entry of `rollup_steps_ns`, publish them, then delete the inputs.
struct compaction_job {
  std::vector<uint64_t> inputs;  ///< block ids, sorted by (min_time, id); never empty
  /// 1 or 2; every input is at output_level - 1, except that an L2 job may also hold one L2 block
  /// (its window's target, see plan_compactions): its rollups then go with it.
  uint8_t output_level = 1;
  /// The window the inputs were grouped by, [start, end). Every input's min_time is inside it; its
  /// max_time (and so the output's) may lie past window_end_ns: a block belongs to the window of
  /// its first profile and is never cut at a window boundary.
  int64_t window_start_ns = 0;
  int64_t window_end_ns = 0;
  /// Rollup blocks to write besides the raw output: ascending, unique, and empty unless
  /// output_level == 2.
  std::vector<int64_t> rollup_steps_ns;
  friend bool operator==(const compaction_job&, const compaction_job&) = default;
};

/// Checks a policy (from the configuration): both windows > 0, l2_window_ns a multiple of
/// l1_window_ns (so an L1 block's day is the day of its L0 inputs), l0_max_blocks >= 1,
/// l1_min_blocks >= 1, grace_ns >= 0, max_output_bytes > 0, max_output_samples > 0,
/// l2_max_output_samples > 0 and every rollup step > 0.
/// Returns `bad_config` naming the first offending field.
[[nodiscard]] status validate(const compaction_policy& p);

/// Jobs to run now, oldest window first (then L1 jobs before L2 jobs, then in input order).
///
/// Only raw blocks (rollup_step_ns == 0) are inputs; rollup blocks are derived data and are only
/// ever removed by retention, or with the raw block they derive from. Inputs of different jobs
/// never overlap.
/// The rules:
///  - L0 -> L1 per L1 window: when the window is closed, all of its L0 blocks (even a single one,
///    so L0 never lingers); while it is open, only once it holds >= l0_max_blocks L0 blocks.
///  - L1 -> L2 per L2 window, over its *settled* L1 blocks: all of them once the window is closed;
///    while it is open (and open_l2_windows is set), those whose L1 window is closed. The window's
///    *target* is its last level-2 raw block in (min_time, id) order if that one is below both
///    caps. With a target, the settled L1 blocks are merged into it (the target is an input, so
///    a job may then hold one L2 input besides its L1 ones); without one, the window needs
///    >= l1_min_blocks settled L1 blocks, or exactly one when rollups are wanted. L2 jobs carry
///    the policy's rollup steps.
///  - Never over lower-level blocks still pending: no L1 -> L2 for a window while an L0 block
///    (by min_time) remains in its settled part (for a closed window: anywhere in it). Those L0
///    blocks become L1 in this or a later plan, and the window compacts in the plan after that.
///  - A window's inputs are cut, in (min_time, id) order with the target first, into runs of at
///    most max_output_bytes and at most max_output_samples (l2_max_output_samples for L2 jobs); a
///    run that would be the target alone is dropped (rewriting a block on its own gains nothing).
///    Each job's inputs are then sorted by (min_time, id).
///  - Level-2 blocks other than a target are final; blocks at a level above 2 are ignored.
///
/// Retention interplay: compaction never resurrects deleted data. The executor applies
/// `plan_retention` first and must then re-plan compactions over the surviving blocks (or use
/// `plan_maintenance`, which does both); a compaction plan computed before a deletion is stale and
/// must not be run, since it could read (or copy into a new block) data retention has removed.
///
/// An invalid policy (see `validate`) plans nothing.
/// Requires: block ids are unique.
[[nodiscard]] std::vector<compaction_job> plan_compactions(std::span<const block_ref> blocks,
                                                           const compaction_policy& p,
                                                           int64_t now_ns);

/// Blocks to delete for retention, ascending by id: every block (raw or rollup, any level) whose
/// max_time_ns < now_ns - retention_ns. Whole blocks only: a block is kept while any of its
/// profiles is within retention, so a compacted block can hold data up to about one L2 window
/// (plus its spill past the window end) older than retention_ns. A block whose max_time equals the
/// cut-off exactly is kept. retention_ns <= 0 means keep forever.
[[nodiscard]] std::vector<uint64_t> plan_retention(std::span<const block_ref> blocks,
                                                   int64_t retention_ns, int64_t now_ns);

/// Retention and compaction planned together, in the order the executor must run them.
struct maintenance_plan {
  std::vector<uint64_t> deletions;   ///< run first: plan_retention over all blocks
  std::vector<compaction_job> jobs;  ///< then: plan_compactions over the blocks that survive
  friend bool operator==(const maintenance_plan&, const maintenance_plan&) = default;
};

/// Plans retention, then compactions over the blocks retention keeps, so no job input is ever a
/// block that is being deleted.
[[nodiscard]] maintenance_plan plan_maintenance(std::span<const block_ref> blocks,
                                                const compaction_policy& p, int64_t retention_ns,
                                                int64_t now_ns);

/// A block's lineage, from its footer: what recovery needs to make every profile visible once.
struct block_lineage {
  uint64_t id = 0;
  int64_t rollup_step_ns = 0;     ///< 0 = raw block
  std::vector<uint64_t> sources;  ///< raw: the blocks it was compacted from; rollup: its raw block
};

/// The blocks of one directory that must be deleted, ascending: every block a raw block names as
/// a source (a compaction published its output, which names its inputs, and stopped before it
/// deleted them: the output wins), and every rollup whose raw block is missing or itself
/// superseded (an orphan). What is left shows each profile exactly once.
[[nodiscard]] std::vector<uint64_t> superseded_blocks(std::span<const block_lineage> blocks);

}  // namespace hearth
