#include "format/compaction_plan.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <random>
#include <set>
#include <string>
#include <tuple>
#include <vector>

namespace hearth {
namespace {

constexpr int64_t sec = 1'000'000'000;
constexpr int64_t minute = 60 * sec;
constexpr int64_t hour = 60 * minute;
constexpr int64_t day = 24 * hour;
constexpr int64_t grace = 5 * minute;  // the default policy's

/// A raw block. `max` defaults to `min` + 10 s.
block_ref blk(uint64_t id, uint8_t level, int64_t min, int64_t max = -1, uint64_t bytes = 100) {
  block_ref b;
  b.id = id;
  b.level = level;
  b.min_time_ns = min;
  b.max_time_ns = max == -1 ? min + 10 * sec : max;
  b.bytes = bytes;
  b.profiles = 1;
  return b;
}

/// `b` holding `n` stored pairs.
block_ref pairs(block_ref b, uint64_t n) {
  b.samples = n;
  return b;
}

block_ref rollup(uint64_t id, uint8_t level, int64_t step, int64_t min, int64_t max) {
  block_ref b = blk(id, level, min, max);
  b.rollup_step_ns = step;
  return b;
}

const std::vector<int64_t> default_rollups = {minute, hour};

compaction_job job(std::vector<uint64_t> inputs, uint8_t level, int64_t start, int64_t width) {
  compaction_job j;
  j.inputs = std::move(inputs);
  j.output_level = level;
  j.window_start_ns = start;
  j.window_end_ns = start + width;
  if (level == 2) j.rollup_steps_ns = default_rollups;
  return j;
}
compaction_job l1(std::vector<uint64_t> in, int64_t start) {
  return job(std::move(in), 1, start, hour);
}
compaction_job l2(std::vector<uint64_t> in, int64_t start) {
  return job(std::move(in), 2, start, day);
}

std::string describe(const std::vector<compaction_job>& jobs) {
  std::string s;
  for (const auto& j : jobs) {
    s += "{L" + std::to_string(j.output_level) + " [" + std::to_string(j.window_start_ns / sec) +
         "s," + std::to_string(j.window_end_ns / sec) + "s) in:";
    for (uint64_t id : j.inputs) s += " " + std::to_string(id);
    s += " rollups:" + std::to_string(j.rollup_steps_ns.size()) + "} ";
  }
  return s.empty() ? "(no jobs)" : s;
}

struct plan_case {
  std::string name;
  std::vector<block_ref> blocks;
  int64_t now;
  std::vector<compaction_job> want;
  compaction_policy policy = {};
};

void run_cases(const std::vector<plan_case>& cases) {
  for (const auto& c : cases) {
    auto got = plan_compactions(c.blocks, c.policy, c.now);
    EXPECT_EQ(got, c.want) << c.name << "\n got:  " << describe(got)
                           << "\n want: " << describe(c.want);
  }
}

// Day 10 from the epoch, so windows are well away from 0; h(n) is its n-th hour.
constexpr int64_t d10 = 10 * day;
constexpr int64_t h(int64_t n) {
  return d10 + n * hour;
}

TEST(compaction_plan, validate_rejects_bad_policies) {
  EXPECT_TRUE(validate(compaction_policy{}).ok());
  struct bad_case {
    std::string name;
    compaction_policy p;
  };
  std::vector<bad_case> cases;
  auto add = [&](std::string name, auto mutate) {
    compaction_policy p;
    mutate(p);
    cases.push_back({std::move(name), p});
  };
  add("l1 window 0", [](auto& p) { p.l1_window_ns = 0; });
  add("l1 window < 0", [](auto& p) { p.l1_window_ns = -hour; });
  add("l2 window 0", [](auto& p) { p.l2_window_ns = 0; });
  add("l2 not a multiple of l1", [](auto& p) { p.l2_window_ns = 90 * minute; });
  add("l0_max_blocks 0", [](auto& p) { p.l0_max_blocks = 0; });
  add("l1_min_blocks 0", [](auto& p) { p.l1_min_blocks = 0; });
  add("grace < 0", [](auto& p) { p.grace_ns = -1; });
  add("max_output_bytes 0", [](auto& p) { p.max_output_bytes = 0; });
  add("max_output_samples 0", [](auto& p) { p.max_output_samples = 0; });
  add("l2_max_output_samples 0", [](auto& p) { p.l2_max_output_samples = 0; });
  add("rollup step 0", [](auto& p) { p.rollup_steps_ns = {minute, 0}; });
  add("l1 zstd level 0", [](auto& p) { p.l1_zstd_level = 0; });
  add("l2 zstd level 20", [](auto& p) { p.l2_zstd_level = 20; });
  add("l1 zstd level -101", [](auto& p) { p.l1_zstd_level = -101; });
  for (const auto& c : cases) {
    status s = validate(c.p);
    ASSERT_FALSE(s.ok()) << c.name;
    EXPECT_EQ(s.err().code, errc::bad_config) << c.name;
    // An invalid policy plans nothing, even with an obviously due window.
    std::vector<block_ref> blocks = {blk(1, 0, h(0))};
    EXPECT_TRUE(plan_compactions(blocks, c.p, h(5)).empty()) << c.name;
  }
}

TEST(compaction_plan, l0_to_l1_rules) {
  compaction_policy max3;
  max3.l0_max_blocks = 3;
  compaction_policy no_grace;
  no_grace.grace_ns = 0;
  run_cases({
      {"empty input", {}, h(5), {}},
      {"closed window, one L0 block: still compacted (re-encoded), L0 never lingers",
       {blk(1, 0, h(0))},
       h(2),
       {l1({1}, h(0))}},
      {"closed window, several blocks: one job, inputs by (min_time, id)",
       {blk(7, 0, h(0) + 20 * minute), blk(3, 0, h(0) + 20 * minute), blk(9, 0, h(0) + minute)},
       h(2),
       {l1({9, 3, 7}, h(0))}},
      {"two closed windows: two jobs, oldest first",
       {blk(2, 0, h(1) + minute), blk(1, 0, h(0) + minute)},
       h(3),
       {l1({1}, h(0)), l1({2}, h(1))}},
      {"open window (now inside it) below l0_max_blocks: nothing",
       {blk(1, 0, h(0)), blk(2, 0, h(0) + minute)},
       h(0) + 30 * minute,
       {}},
      {"grace: window end passed but grace not over: still open",
       {blk(1, 0, h(0))},
       h(1) + grace - 1,
       {}},
      {"grace: closed exactly at window_end + grace",
       {blk(1, 0, h(0))},
       h(1) + grace,
       {l1({1}, h(0))}},
      {"grace 0: closed exactly at the window end",
       {blk(1, 0, h(0))},
       h(1),
       {l1({1}, h(0))},
       no_grace},
      {"grace 0: one ns before the end is open", {blk(1, 0, h(0))}, h(1) - 1, {}, no_grace},
      {"open window at l0_max_blocks compacts early",
       {blk(1, 0, h(0)), blk(2, 0, h(0) + 1), blk(3, 0, h(0) + 2)},
       h(0) + 10 * minute,
       {l1({1, 2, 3}, h(0))},
       max3},
      {"open window one below l0_max_blocks waits",
       {blk(1, 0, h(0)), blk(2, 0, h(0) + 1)},
       h(0) + 10 * minute,
       {},
       max3},
      {"future window (blocks stamped after now) is open", {blk(1, 0, h(3))}, h(1), {}},
      {"window by min_time: a block spilling past the window end stays in its start window",
       {blk(1, 0, h(0) + 59 * minute, h(2) + 30 * minute)},
       h(1) + grace,
       {l1({1}, h(0))}},
      {"window start is inclusive, end exclusive",
       {blk(1, 0, h(1) - 1), blk(2, 0, h(1))},
       h(3),
       {l1({1}, h(0)), l1({2}, h(1))}},
      {"times before the epoch floor, not truncate, to their window",
       {blk(1, 0, -1), blk(2, 0, -hour)},
       h(0),
       {l1({2, 1}, -hour)}},
      {"rollup blocks are never inputs", {rollup(1, 0, minute, h(0), h(0) + 1)}, h(5), {}},
      {"L1 blocks in a closed hour are not re-merged with L0 (no level mixing)",
       {blk(1, 1, h(0)), blk(2, 0, h(0) + 1)},
       h(2),
       {l1({2}, h(0))}},
  });
}

TEST(compaction_plan, l1_to_l2_rules) {
  compaction_policy no_rollups;
  no_rollups.rollup_steps_ns = {};
  compaction_policy min1_no_rollups = no_rollups;
  min1_no_rollups.l1_min_blocks = 1;
  compaction_policy min4;
  min4.l1_min_blocks = 4;
  compaction_policy messy_rollups;
  messy_rollups.rollup_steps_ns = {hour, minute, hour};
  compaction_policy closed_only;
  closed_only.open_l2_windows = false;
  compaction_job single_no_rollups = l2({1}, d10);
  single_no_rollups.rollup_steps_ns = {};
  const int64_t next_day = d10 + day;
  run_cases({
      {"closed day with two L1 blocks: one L2 job with rollups",
       {blk(2, 1, h(5)), blk(1, 1, h(1))},
       next_day + grace,
       {l2({1, 2}, d10)}},
      {"day still open (grace not over), open windows off",
       {blk(2, 1, h(5)), blk(1, 1, h(1))},
       next_day + grace - 1,
       {},
       closed_only},
      {"day open (now inside it), open windows off",
       {blk(2, 1, h(5)), blk(1, 1, h(1))},
       h(20),
       {},
       closed_only},
      {"closed day with a single L1 block and rollups wanted: promoted to L2",
       {blk(1, 1, h(3))},
       next_day + grace,
       {l2({1}, d10)}},
      {"single L1 block without rollups and l1_min_blocks 2: stays L1",
       {blk(1, 1, h(3))},
       next_day + grace,
       {},
       no_rollups},
      {"single L1 block, l1_min_blocks 1, no rollups: promoted without rollups",
       {blk(1, 1, h(3))},
       next_day + grace,
       {single_no_rollups},
       min1_no_rollups},
      {"2..l1_min_blocks-1 blocks in a closed day: stays L1",
       {blk(1, 1, h(1)), blk(2, 1, h(2)), blk(3, 1, h(3))},
       next_day + grace,
       {},
       min4},
      {"l1_min_blocks reached",
       {blk(1, 1, h(1)), blk(2, 1, h(2)), blk(3, 1, h(3)), blk(4, 1, h(4))},
       next_day + grace,
       {l2({1, 2, 3, 4}, d10)},
       min4},
      {"rollup steps are sorted and deduplicated",
       {blk(1, 1, h(3))},
       next_day + grace,
       {l2({1}, d10)},
       messy_rollups},
      {"L2 blocks are final", {blk(1, 2, h(1)), blk(2, 2, h(2))}, next_day + 10 * day, {}},
      {"levels above 2 are ignored", {blk(1, 3, h(1)), blk(2, 3, h(2))}, next_day + 10 * day, {}},
      {"the day's L2 block takes in its L1 ones",
       {blk(1, 2, h(1)), blk(2, 1, h(2))},
       next_day + grace,
       {l2({1, 2}, d10)}},
      {"rollup blocks are never inputs",
       {rollup(1, 1, minute, h(1), h(2)), blk(2, 1, h(2))},
       next_day + grace,
       {l2({2}, d10)}},
      {"L1 block spilling into the next day belongs to the day of its min_time",
       {blk(1, 1, h(23) + 30 * minute, next_day + 2 * hour), blk(2, 1, next_day + hour)},
       next_day + grace,
       {l2({1}, d10)}},
  });
}

TEST(compaction_plan, lower_level_pending_guard) {
  const int64_t next_day = d10 + day;
  run_cases({
      {"an L0 block left in a closed day: L0->L1 now, L1->L2 waits",
       {blk(1, 1, h(1)), blk(2, 1, h(2)), blk(3, 0, h(23) + 50 * minute)},
       next_day + grace,
       {l1({3}, h(23))}},
      {"the L0 block sits in an hour that is still open: the settled hours go to L2 without it",
       {blk(1, 1, h(1)), blk(2, 1, h(2)), blk(3, 0, h(23) + 50 * minute)},
       next_day + grace - 1,
       {l2({1, 2}, d10)}},
      {"an L0 block of another day does not hold this one back",
       {blk(1, 1, h(1)), blk(2, 1, h(2)), blk(3, 0, next_day + minute)},
       next_day + grace,
       {l2({1, 2}, d10)}},
      {"an L0 block of the previous day spilling into this one does not hold it back",
       {blk(1, 1, h(1)), blk(2, 1, h(2)), blk(3, 0, d10 - minute, h(1))},
       next_day + grace,
       {l1({3}, d10 - hour), l2({1, 2}, d10)}},
      {"an L0 rollup block (derived data) does not hold the day back",
       {blk(1, 1, h(1)), blk(2, 1, h(2)), rollup(3, 0, minute, h(4), h(4) + 1)},
       next_day + grace,
       {l2({1, 2}, d10)}},
  });
  // After the L0 job runs (its output is an L1 block), the day compacts in one go.
  std::vector<block_ref> after = {blk(1, 1, h(1)), blk(2, 1, h(2)), blk(4, 1, h(23) + 50 * minute)};
  EXPECT_EQ(plan_compactions(after, {}, next_day + grace), std::vector{l2({1, 2, 4}, d10)});
}

TEST(compaction_plan, max_output_bytes_splits_windows) {
  compaction_policy p;
  p.max_output_bytes = 1000;
  compaction_policy max3 = p;
  max3.l0_max_blocks = 3;
  const int64_t next_day = d10 + day;
  run_cases({
      {"sum exactly at the cap: one job",
       {blk(1, 0, h(0), -1, 500), blk(2, 0, h(0) + 1, -1, 500)},
       h(2),
       {l1({1, 2}, h(0))},
       p},
      {"one byte over: split in (min_time, id) order",
       {blk(1, 0, h(0), -1, 500), blk(2, 0, h(0) + 1, -1, 501)},
       h(2),
       {l1({1}, h(0)), l1({2}, h(0))},
       p},
      {"greedy runs",
       {blk(1, 0, h(0), -1, 400), blk(2, 0, h(0) + 1, -1, 400), blk(3, 0, h(0) + 2, -1, 400),
        blk(4, 0, h(0) + 3, -1, 400), blk(5, 0, h(0) + 4, -1, 100)},
       h(2),
       {l1({1, 2}, h(0)), l1({3, 4, 5}, h(0))},
       p},
      {"a block over the cap on its own is a job by itself (cannot be split, must not linger)",
       {blk(1, 0, h(0), -1, 300), blk(2, 0, h(0) + 1, -1, 5000), blk(3, 0, h(0) + 2, -1, 300)},
       h(2),
       {l1({1}, h(0)), l1({2}, h(0)), l1({3}, h(0))},
       p},
      {"huge sizes do not overflow the sum",
       {blk(1, 0, h(0), -1, UINT64_MAX), blk(2, 0, h(0) + 1, -1, UINT64_MAX)},
       h(2),
       {l1({1}, h(0)), l1({2}, h(0))},
       p},
      {"the l0_max_blocks trigger counts blocks, then splits by bytes",
       {blk(1, 0, h(0), -1, 600), blk(2, 0, h(0) + 1, -1, 600), blk(3, 0, h(0) + 2, -1, 300)},
       h(0) + minute,
       {l1({1}, h(0)), l1({2, 3}, h(0))},
       max3},
      {"L2 split: every part carries the rollups",
       {blk(1, 1, h(1), -1, 700), blk(2, 1, h(2), -1, 700), blk(3, 1, h(3), -1, 200)},
       next_day + grace,
       {l2({1}, d10), l2({2, 3}, d10)},
       p},
  });
}

TEST(compaction_plan, max_output_samples_splits_windows) {
  compaction_policy p;
  p.max_output_samples = 1000;
  compaction_policy l2_cap = p;
  l2_cap.l2_max_output_samples = 2000;
  run_cases({
      {"pairs exactly at the cap: one job",
       {pairs(blk(1, 0, h(0)), 500), pairs(blk(2, 0, h(0) + 1), 500)},
       h(2),
       {l1({1, 2}, h(0))},
       p},
      {"one pair over: split, although the bytes are far below max_output_bytes",
       {pairs(blk(1, 0, h(0)), 500), pairs(blk(2, 0, h(0) + 1), 501)},
       h(2),
       {l1({1}, h(0)), l1({2}, h(0))},
       p},
      {"a block over the cap on its own is a job by itself",
       {pairs(blk(1, 0, h(0)), 300), pairs(blk(2, 0, h(0) + 1), 5000),
        pairs(blk(3, 0, h(0) + 2), 300)},
       h(2),
       {l1({1}, h(0)), l1({2}, h(0)), l1({3}, h(0))},
       p},
      {"L2 jobs are cut by l2_max_output_samples instead",
       {pairs(blk(1, 1, h(0)), 900), pairs(blk(2, 1, h(1)), 900), pairs(blk(3, 1, h(2)), 900)},
       h(24) + grace,
       {l2({1, 2}, d10), l2({3}, d10)},
       l2_cap},
      {"huge counts do not overflow the sum",
       {pairs(blk(1, 0, h(0)), UINT64_MAX), pairs(blk(2, 0, h(0) + 1), UINT64_MAX)},
       h(2),
       {l1({1}, h(0)), l1({2}, h(0))},
       p},
  });
}

TEST(compaction_plan, rollups_only_on_l2) {
  // A mixed plan: an L1 job and an L2 job side by side.
  std::vector<block_ref> blocks = {blk(1, 1, h(1)), blk(2, 1, h(2)), blk(3, 0, d10 + day + hour)};
  auto jobs = plan_compactions(blocks, {}, d10 + day + 3 * hour);
  ASSERT_EQ(jobs.size(), 2u) << describe(jobs);
  for (const auto& j : jobs) {
    if (j.output_level == 1) {
      EXPECT_TRUE(j.rollup_steps_ns.empty()) << describe(jobs);
    }
    if (j.output_level == 2) {
      EXPECT_EQ(j.rollup_steps_ns, default_rollups) << describe(jobs);
    }
  }
  EXPECT_EQ(jobs[0].output_level, 2);  // day 10 is older than hour 1 of day 11
  EXPECT_EQ(jobs[1].output_level, 1);
}

TEST(compaction_plan, oldest_window_first) {
  std::vector<block_ref> blocks = {blk(1, 0, 12 * day + 5 * hour), blk(2, 1, 3 * day + hour),
                                   blk(3, 1, 3 * day + 2 * hour), blk(4, 0, 12 * day + 2 * hour),
                                   blk(5, 0, 1 * day + 7 * hour)};
  auto jobs = plan_compactions(blocks, {}, 13 * day);
  std::vector<compaction_job> want = {l1({5}, day + 7 * hour), l2({2, 3}, 3 * day),
                                      l1({4}, 12 * day + 2 * hour), l1({1}, 12 * day + 5 * hour)};
  EXPECT_EQ(jobs, want) << describe(jobs);
}

struct retention_case {
  std::string name;
  std::vector<block_ref> blocks;
  int64_t retention;
  int64_t now;
  std::vector<uint64_t> want;
};

TEST(compaction_plan, retention_edges) {
  const int64_t now = 40 * day;
  const int64_t ret = 30 * day;
  const int64_t cut = now - ret;
  std::vector<retention_case> cases = {
      {"max_time exactly at the cut-off is kept", {blk(1, 2, cut - day, cut)}, ret, now, {}},
      {"one ns before the cut-off is deleted", {blk(1, 2, cut - day, cut - 1)}, ret, now, {1}},
      {"whole blocks: a block straddling the cut-off is kept",
       {blk(1, 2, cut - 5 * day, cut + 1)},
       ret,
       now,
       {}},
      {"rollup blocks and every level are deleted alike, ids ascending",
       {rollup(9, 2, hour, 0, hour), blk(3, 0, 0), blk(5, 1, 0), blk(4, 2, cut)},
       ret,
       now,
       {3, 5, 9}},
      {"retention 0 keeps forever", {blk(1, 0, 0)}, 0, now, {}},
      {"negative retention keeps forever", {blk(1, 0, 0)}, -1, now, {}},
      {"retention longer than all of time: no overflow, nothing deleted",
       {blk(1, 0, INT64_MIN, INT64_MIN)},
       INT64_MAX,
       -10,
       {}},
      {"empty input", {}, ret, now, {}},
  };
  for (const auto& c : cases)
    EXPECT_EQ(plan_retention(c.blocks, c.retention, c.now), c.want) << c.name;
}

TEST(compaction_plan, maintenance_never_compacts_what_retention_deletes) {
  // Day 0 holds two L1 blocks and a rollup. Block 1 and the rollup end before the cut-off (3 h) and
  // are deleted; block 2 ends after it, survives, and is promoted to L2 alone. Block 1 is never a
  // job input.
  std::vector<block_ref> blocks = {blk(1, 1, hour, 2 * hour), blk(2, 1, 20 * hour, day + hour),
                                   rollup(3, 2, minute, 0, hour)};
  const int64_t now = 31 * day;
  const int64_t ret = 31 * day - 3 * hour;  // cut-off at 3 h
  auto plan = plan_maintenance(blocks, {}, ret, now);
  EXPECT_EQ(plan.deletions, (std::vector<uint64_t>{1, 3}));
  EXPECT_EQ(plan.jobs, std::vector{l2({2}, 0)}) << describe(plan.jobs);
  // Planning compactions over the stale set (before retention) would have used block 1.
  EXPECT_EQ(plan_compactions(blocks, {}, now), std::vector{l2({1, 2}, 0)});
}

TEST(compaction_plan, shuffled_input_gives_the_same_plan) {
  std::mt19937_64 rng(7);
  std::vector<block_ref> blocks;
  for (uint64_t id = 1; id <= 200; ++id) {
    uint8_t level = static_cast<uint8_t>(rng() % 3);
    // Many ties in min_time, so the id tie-break matters.
    int64_t min = static_cast<int64_t>(rng() % 96) * 30 * minute;
    blocks.push_back(
        blk(id, level, min, min + static_cast<int64_t>(rng() % (3 * hour)), rng() % 400'000'000));
  }
  compaction_policy p;
  p.l0_max_blocks = 4;
  const int64_t now = 2 * day + 6 * hour;
  auto want = plan_compactions(blocks, p, now);
  auto want_m = plan_maintenance(blocks, p, day, now);
  ASSERT_FALSE(want.empty());
  ASSERT_FALSE(want_m.deletions.empty());
  for (int i = 0; i < 20; ++i) {
    std::shuffle(blocks.begin(), blocks.end(), rng);
    EXPECT_EQ(plan_compactions(blocks, p, now), want) << "shuffle " << i;
    EXPECT_EQ(plan_maintenance(blocks, p, day, now), want_m) << "shuffle " << i;
  }
}

/// Checks what must hold for any plan of `blocks` at `now` (each violation is a gtest failure).
void check_invariants(const std::vector<block_ref>& blocks, const compaction_policy& p, int64_t now,
                      const std::vector<compaction_job>& jobs, const std::string& ctx) {
  std::map<uint64_t, const block_ref*> by_id;
  for (const auto& b : blocks) by_id[b.id] = &b;
  std::set<uint64_t> used;
  auto floor_div = [](int64_t t, int64_t w) { return t / w - (t % w != 0 && t < 0 ? 1 : 0); };
  for (size_t i = 0; i < jobs.size(); ++i) {
    const auto& j = jobs[i];
    std::string where = ctx + " job " + std::to_string(i) + " " + describe({j});
    ASSERT_FALSE(j.inputs.empty()) << where;
    ASSERT_TRUE(j.output_level == 1 || j.output_level == 2) << where;
    const int64_t width = j.output_level == 1 ? p.l1_window_ns : p.l2_window_ns;
    EXPECT_EQ(j.window_end_ns - j.window_start_ns, width) << where;
    EXPECT_EQ(j.window_start_ns % width, 0) << where;
    EXPECT_EQ(j.rollup_steps_ns.empty(), j.output_level == 1 || p.rollup_steps_ns.empty()) << where;
    const bool closed = now >= j.window_end_ns + p.grace_ns;
    // Of an L2 window, the part whose L1 windows are closed; all of it once it is closed.
    int64_t settled_end = j.window_end_ns;
    if (!closed)
      settled_end =
          std::min(j.window_end_ns, floor_div(now - p.grace_ns, p.l1_window_ns) * p.l1_window_ns);
    if (j.output_level == 2) {
      EXPECT_TRUE(closed || p.open_l2_windows) << where;
    }
    if (j.output_level == 1 && !closed) {
      // Only the l0_max_blocks trigger compacts an open window.
      size_t in_window = 0;
      for (const auto& b : blocks)
        in_window += b.level == 0 && b.rollup_step_ns == 0 && b.min_time_ns >= j.window_start_ns &&
                     b.min_time_ns < j.window_end_ns;
      EXPECT_GE(in_window, p.l0_max_blocks) << where << " open window below l0_max_blocks";
    }
    if (i > 0) {
      EXPECT_LE(jobs[i - 1].window_start_ns, j.window_start_ns) << where;
    }
    uint64_t sum = 0;
    uint64_t pairs = 0;
    int targets = 0;
    const block_ref* prev = nullptr;
    for (uint64_t id : j.inputs) {
      ASSERT_TRUE(by_id.contains(id)) << where << " unknown input " << id;
      const block_ref& b = *by_id[id];
      EXPECT_TRUE(used.insert(id).second) << where << " input " << id << " in two jobs";
      EXPECT_EQ(b.rollup_step_ns, 0) << where << " rollup block " << id << " as input";
      if (b.level == 2 && j.output_level == 2) {
        // The window's target: its last L2 block, below the caps, at most one per job.
        EXPECT_TRUE(++targets == 1) << where << " second L2 input " << id;
        EXPECT_LT(b.bytes, p.max_output_bytes) << where;
        EXPECT_LT(b.samples, p.l2_max_output_samples) << where;
        for (const auto& o : blocks)
          if (o.level == 2 && o.rollup_step_ns == 0 &&
              floor_div(o.min_time_ns, p.l2_window_ns) * p.l2_window_ns == j.window_start_ns) {
            EXPECT_LE(std::tie(o.min_time_ns, o.id), std::tie(b.min_time_ns, b.id))
                << where << " target " << id << " is not the window's last L2 block";
          }
      } else {
        EXPECT_EQ(b.level + 1, j.output_level) << where << " input " << id << " level mix";
      }
      if (j.output_level == 2 && b.level == 1) {
        EXPECT_LT(b.min_time_ns, settled_end) << where << " L1 input " << id << " not settled";
      }
      EXPECT_GE(b.min_time_ns, j.window_start_ns) << where << " input " << id;
      EXPECT_LT(b.min_time_ns, j.window_end_ns) << where << " input " << id;
      if (prev != nullptr) {
        EXPECT_LT(std::tie(prev->min_time_ns, prev->id), std::tie(b.min_time_ns, b.id)) << where;
      }
      prev = &b;
      sum += b.bytes;
      pairs += b.samples;
    }
    if (j.inputs.size() > 1) {
      EXPECT_LE(sum, p.max_output_bytes) << where;
      EXPECT_LE(pairs, j.output_level == 2 ? p.l2_max_output_samples : p.max_output_samples)
          << where;
    }
    if (targets == 1) {
      EXPECT_GT(j.inputs.size(), 1u) << where << " the target rewritten alone";
    }
    if (j.output_level == 2) {
      // Lower-level-pending guard: no L0 raw block in the settled part of this window.
      for (const auto& b : blocks)
        if (b.level == 0 && b.rollup_step_ns == 0 &&
            floor_div(b.min_time_ns, p.l2_window_ns) * p.l2_window_ns == j.window_start_ns) {
          EXPECT_GE(b.min_time_ns, settled_end)
              << where << " L0 block " << b.id << " still pending";
        }
    }
  }
  // Completeness: every L0 raw block of a closed hour is an input (L0 never lingers).
  for (const auto& b : blocks) {
    if (b.level != 0 || b.rollup_step_ns != 0) continue;
    int64_t end = (floor_div(b.min_time_ns, p.l1_window_ns) + 1) * p.l1_window_ns;
    if (now >= end + p.grace_ns) {
      EXPECT_TRUE(used.contains(b.id)) << ctx << " L0 " << b.id << " left";
    }
  }
}

std::vector<block_ref> random_blocks(std::mt19937_64& rng, uint64_t& next_id, int64_t span) {
  std::vector<block_ref> blocks;
  const size_t n = rng() % 60;
  for (size_t i = 0; i < n; ++i) {
    uint8_t level = static_cast<uint8_t>(rng() % 4);  // 3 = unknown, ignored
    int64_t min = static_cast<int64_t>(rng() % static_cast<uint64_t>(span)) - span / 4;
    int64_t len = static_cast<int64_t>(rng() % (2 * static_cast<uint64_t>(hour)));
    block_ref b = blk(next_id++, level, min, min + len, 1 + rng() % 300);
    b.samples = 1 + rng() % 5000;
    if (rng() % 8 == 0) b.rollup_step_ns = rng() % 2 ? minute : hour;
    blocks.push_back(b);
  }
  return blocks;
}

TEST(compaction_plan, property_random_block_sets) {
  std::mt19937_64 rng(20240611);
  int total_jobs = 0, l2_jobs = 0;
  for (int iter = 0; iter < 500; ++iter) {
    compaction_policy p;
    p.l1_window_ns = (1 + static_cast<int64_t>(rng() % 3)) * hour;
    p.l2_window_ns = p.l1_window_ns * (1 + static_cast<int64_t>(rng() % 6));
    p.l0_max_blocks = 1 + rng() % 6;
    p.l1_min_blocks = 1 + rng() % 4;
    p.grace_ns = static_cast<int64_t>(rng() % 3) * 5 * minute;
    p.max_output_bytes = 100 + rng() % 1000;
    p.max_output_samples = 1000 + rng() % 20000;
    p.l2_max_output_samples = 1000 + rng() % 40000;
    if (rng() % 3 == 0) p.rollup_steps_ns = {};
    ASSERT_TRUE(validate(p).ok());
    uint64_t next_id = 1;
    auto blocks = random_blocks(rng, next_id, 3 * day);
    const int64_t now = static_cast<int64_t>(rng() % (4 * static_cast<uint64_t>(day))) - day / 2;
    const std::string ctx = "iter " + std::to_string(iter);
    auto jobs = plan_compactions(blocks, p, now);
    check_invariants(blocks, p, now, jobs, ctx);
    total_jobs += static_cast<int>(jobs.size());
    for (const auto& j : jobs) l2_jobs += j.output_level == 2;

    // With retention: no job input is a deleted block, and deletions match plan_retention.
    const int64_t ret = static_cast<int64_t>(rng() % (2 * static_cast<uint64_t>(day)));
    auto m = plan_maintenance(blocks, p, ret, now);
    EXPECT_EQ(m.deletions, plan_retention(blocks, ret, now)) << ctx;
    std::set<uint64_t> deleted(m.deletions.begin(), m.deletions.end());
    for (const auto& j : m.jobs)
      for (uint64_t id : j.inputs) EXPECT_FALSE(deleted.contains(id)) << ctx << " input " << id;
    for (uint64_t id : m.deletions) {
      auto it = std::find_if(blocks.begin(), blocks.end(), [&](auto& b) { return b.id == id; });
      ASSERT_NE(it, blocks.end());
      EXPECT_LT(it->max_time_ns, now - ret) << ctx;
    }
    if (HasFailure()) break;
  }
  // The generator must actually exercise the planner.
  EXPECT_GT(total_jobs, 500);
  EXPECT_GT(l2_jobs, 50);
}

/// A model executor: each job's inputs become one raw block at the output level spanning their
/// times (at half their bytes: zstd; with all their pairs), plus one rollup block per step.
/// `rollup_of` maps each rollup block to its raw block: an input's rollups go with it, as the
/// partition's swap removes them.
void execute(std::vector<block_ref>& blocks, const std::vector<compaction_job>& jobs,
             uint64_t& next_id, std::map<uint64_t, uint64_t>& rollup_of) {
  for (const auto& j : jobs) {
    block_ref out = blk(next_id++, j.output_level, INT64_MAX, INT64_MIN, 0);
    for (uint64_t id : j.inputs) {
      auto it = std::find_if(blocks.begin(), blocks.end(), [&](auto& b) { return b.id == id; });
      ASSERT_NE(it, blocks.end()) << "job input " << id << " is not a block";
      out.min_time_ns = std::min(out.min_time_ns, it->min_time_ns);
      out.max_time_ns = std::max(out.max_time_ns, it->max_time_ns);
      out.bytes += it->bytes / 2;
      out.samples += it->samples;
      blocks.erase(it);
      std::erase_if(blocks, [&](const block_ref& b) {
        auto r = rollup_of.find(b.id);
        return r != rollup_of.end() && r->second == id;
      });
    }
    for (int64_t s : j.rollup_steps_ns) {
      rollup_of[next_id] = out.id;
      blocks.push_back(rollup(next_id++, 2, s, out.min_time_ns, out.max_time_ns));
    }
    blocks.push_back(out);
  }
}

TEST(compaction_plan, simulated_executor_converges_to_l2) {
  // Model-based: run every plan (inputs replaced by one merged block, plus rollups for L2) while
  // the clock advances; once everything is closed, every raw block of the data is L2.
  std::mt19937_64 rng(99);
  for (int iter = 0; iter < 50; ++iter) {
    compaction_policy p;
    p.l0_max_blocks = 3;
    p.max_output_bytes = 2000;
    uint64_t next_id = 1;
    std::map<uint64_t, uint64_t> rollup_of;
    std::vector<block_ref> blocks;
    int64_t now = 0;
    std::set<int64_t> profile_days;
    for (int step = 0; step < 200; ++step) {
      now += static_cast<int64_t>(rng() % 40) * minute;
      // A freshly sealed head block (sometimes late data).
      int64_t min = now - static_cast<int64_t>(rng() % (rng() % 10 == 0 ? 3 * day : hour));
      blocks.push_back(blk(next_id++, 0, min, now, 1 + rng() % 500));
      auto jobs = plan_compactions(blocks, p, now);
      check_invariants(blocks, p, now, jobs, "iter " + std::to_string(iter));
      ASSERT_FALSE(HasFailure());
      execute(blocks, jobs, next_id, rollup_of);
    }
    // Close everything: plan until nothing is left to do.
    now += 3 * day;
    for (int round = 0; round < 2; ++round) {
      auto jobs = plan_compactions(blocks, p, now);
      check_invariants(blocks, p, now, jobs, "final iter " + std::to_string(iter));
      execute(blocks, jobs, next_id, rollup_of);
    }
    EXPECT_TRUE(plan_compactions(blocks, p, now).empty()) << "iter " << iter;
    size_t raw = 0;
    for (const auto& b : blocks)
      if (b.rollup_step_ns == 0) {
        EXPECT_EQ(b.level, 2) << "iter " << iter << " block " << b.id;
        ++raw;
      }
    // Two rollups per raw block, none left over from a block that was merged again.
    EXPECT_EQ(blocks.size(), 3 * raw) << "iter " << iter;
    if (HasFailure()) break;
  }
}

TEST(compaction_plan, open_l2_windows) {
  compaction_policy closed_only;
  closed_only.open_l2_windows = false;
  compaction_policy cap1000;
  cap1000.l2_max_output_samples = 1000;
  std::vector<block_ref> today;  // L1 blocks of hours 1..13, one made early in the open hour 14
  for (uint64_t i = 1; i <= 13; ++i) today.push_back(blk(i, 1, h(static_cast<int64_t>(i))));
  today.push_back(blk(14, 1, h(14) + minute));
  today.push_back(blk(15, 0, h(14) + 20 * minute));
  std::vector<uint64_t> hours_1_13 = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13};
  std::vector<uint64_t> hours_1_12 = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12};
  run_cases({
      {"settled hours of today go to L2; the open hour's blocks wait",
       today,
       h(14) + 30 * minute,
       {l2(hours_1_13, d10)}},
      {"an hour is settled only after the grace", today, h(14) + grace - 1, {l2(hours_1_12, d10)}},
      {"open windows off: today waits for midnight", today, h(14) + 30 * minute, {}, closed_only},
      {"nothing settled yet", {blk(1, 1, h(0))}, h(0) + 30 * minute, {}},
      {"an L0 block left in a settled hour holds the settled part back",
       {blk(1, 1, h(1)), blk(2, 0, h(2) + 10 * minute), blk(3, 1, h(2))},
       h(3) + grace,
       {l1({2}, h(2))}},
      {"the day's L2 block takes in the next settled hour",
       {blk(20, 2, h(0), h(5)), rollup(21, 2, minute, h(0), h(5)), blk(6, 1, h(6))},
       h(7) + grace,
       {l2({20, 6}, d10)}},
      {"a late L1 block sorts before the target in the job",
       {blk(20, 2, h(5), h(9)), blk(3, 1, h(3))},
       h(10),
       {l2({3, 20}, d10)}},
      {"only the day's last L2 block is a target",
       {pairs(blk(20, 2, h(0)), 10), pairs(blk(21, 2, h(4)), 10),
        pairs(blk(6, 1, h(6)), 10)},
       h(7) + grace,
       {l2({21, 6}, d10)},
       cap1000},
      {"a last L2 block at the cap is final: the hour starts a new one",
       {pairs(blk(20, 2, h(0)), 1000), pairs(blk(6, 1, h(6)), 10)},
       h(7) + grace,
       {l2({6}, d10)},
       cap1000},
      {"a target with no room for the hour is not rewritten alone",
       {pairs(blk(20, 2, h(0)), 990), pairs(blk(6, 1, h(6)), 20),
        pairs(blk(7, 1, h(7)), 20)},
       h(8) + grace,
       {l2({6, 7}, d10)},
       cap1000},
      {"the target fills up, the rest starts a new block",
       {pairs(blk(20, 2, h(0)), 900), pairs(blk(6, 1, h(6)), 60),
        pairs(blk(7, 1, h(7)), 60)},
       h(8) + grace,
       {l2({20, 6}, d10), l2({7}, d10)},
       cap1000},
  });
}

TEST(compaction_plan, a_day_compacted_hour_by_hour) {
  // A head sealed every 10 min through two days, the planner run after each seal and the plans
  // executed by the model: at each moment every settled hour (of today or the day before) is in
  // level 2, nothing of it at L0 or L1, and today's level 2 is a few blocks.
  compaction_policy p;
  p.l2_max_output_samples = 5000;
  uint64_t next_id = 1;
  std::map<uint64_t, uint64_t> rollup_of;
  std::vector<block_ref> blocks;
  int64_t reread = 0, first = 0;
  for (int64_t now = d10 + 10 * minute; now <= d10 + 2 * day; now += 10 * minute) {
    block_ref head = blk(next_id++, 0, now - 10 * minute, now - 1);
    head.samples = 100;
    blocks.push_back(head);
    for (int round = 0; round < 3; ++round) {
      auto jobs = plan_compactions(blocks, p, now);
      check_invariants(blocks, p, now, jobs,
                       "now " + std::to_string((now - d10) / minute) + " min");
      ASSERT_FALSE(HasFailure());
      for (const auto& j : jobs)
        for (uint64_t id : j.inputs) {
          auto it = std::find_if(blocks.begin(), blocks.end(), [&](auto& b) { return b.id == id; });
          if (j.output_level == 2)
            (it->level == 2 ? reread : first) += static_cast<int64_t>(it->samples);
        }
      execute(blocks, jobs, next_id, rollup_of);
    }
    const int64_t today = now / day * day;
    const int64_t settled = (now - p.grace_ns) / hour * hour;
    size_t l2_today = 0;
    uint64_t l2_samples = 0;
    for (const auto& b : blocks) {
      if (b.rollup_step_ns != 0) continue;
      if (b.min_time_ns < settled) {
        EXPECT_EQ(b.level, 2) << "block " << b.id << " of a settled hour at " << now;
      }
      if (b.min_time_ns >= today && b.level == 2) {
        ++l2_today;
        l2_samples += b.samples;
      }
    }
    if (settled > today) {
      // Greedy packing: two neighbouring blocks together exceed the cap.
      EXPECT_LE(l2_today, 2 * l2_samples / p.l2_max_output_samples + 1) << now;
      EXPECT_EQ(l2_samples, static_cast<uint64_t>((settled - today) / (10 * minute)) * 100) << now;
    }
    ASSERT_FALSE(HasFailure());
  }
  // The price: pairs read again by the hourly merges into the day's last block. The cap bounds
  // it: a pair is re-read at most cap / (pairs per hour) times (here 5000 / 600).
  EXPECT_GT(reread, 0);
  EXPECT_LE(reread, first * (p.l2_max_output_samples / 600 + 1));
}

TEST(compaction_plan, superseded_blocks_after_an_interrupted_swap) {
  // 1, 2 were compacted into 10 (with rollup 11); the crash came before 1, 2 were deleted.
  // 3 is untouched; 20 is a rollup whose raw block 21 never got renamed; 30 a rollup of 2.
  std::vector<block_lineage> blocks = {
      {1, 0, {}}, {2, 0, {}}, {3, 0, {}}, {10, 0, {1, 2}}, {11, 60, {10}}, {20, 60, {21}}, {30, 60, {2}},
  };
  EXPECT_EQ(superseded_blocks(blocks), (std::vector<uint64_t>{1, 2, 20, 30}));
  // A rollup without a source is an orphan too; a clean directory loses nothing.
  EXPECT_EQ(superseded_blocks(std::vector<block_lineage>{{5, 60, {}}}), (std::vector<uint64_t>{5}));
  EXPECT_TRUE(superseded_blocks(std::vector<block_lineage>{{1, 0, {}}, {10, 0, {}}, {11, 60, {10}}}).empty());
}

}  // namespace
}  // namespace hearth
