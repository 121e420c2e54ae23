#include "format/compaction_plan.hpp"

#include <algorithm>
#include <limits>
#include <map>
#include <set>
#include <string>
#include <tuple>

namespace hearth {
namespace {

constexpr int64_t i64_min = std::numeric_limits<int64_t>::min();
constexpr int64_t i64_max = std::numeric_limits<int64_t>::max();

/// a + b, clamped to the int64 range. Window ends and cut-offs near the ends of time must not
/// wrap: a wrapped window end would make a far-future window look closed.
int64_t sat_add(int64_t a, int64_t b) {
  int64_t r = 0;
  if (__builtin_add_overflow(a, b, &r)) return b > 0 ? i64_max : i64_min;
  return r;
}

/// floor(t / w) for w > 0 (C++ division truncates toward zero; times before 1970 are negative).
int64_t floor_div(int64_t t, int64_t w) {
  int64_t q = t / w;
  if (t % w != 0 && t < 0) --q;
  return q;
}

/// The start of window k of width w, clamped (k * w may overflow only for k = floor(t / w) with
/// t near int64 min, where the true start is below int64 min).
int64_t window_start(int64_t k, int64_t w) {
  int64_t r = 0;
  if (__builtin_mul_overflow(k, w, &r)) return k < 0 ? i64_min : i64_max;
  return r;
}

bool by_time_then_id(const block_ref* a, const block_ref* b) {
  return std::tie(a->min_time_ns, a->id) < std::tie(b->min_time_ns, b->id);
}

/// Raw blocks of one level, grouped by window index; each group sorted by (min_time, id) because
/// `sorted` is.
std::map<int64_t, std::vector<const block_ref*>> group_by_window(
    const std::vector<const block_ref*>& sorted, uint8_t level, int64_t width) {
  std::map<int64_t, std::vector<const block_ref*>> out;
  for (const block_ref* b : sorted)
    if (b->level == level) out[floor_div(b->min_time_ns, width)].push_back(b);
  return out;
}

/// a + b, clamped to the uint64 range.
uint64_t sat_add_u(uint64_t a, uint64_t b) {
  return b > std::numeric_limits<uint64_t>::max() - a ? std::numeric_limits<uint64_t>::max() : a + b;
}

/// Cuts one window's blocks into jobs of at most p.max_output_bytes and the output level's pairs
/// cap of input, keeping the (min_time, id) order, and appends them to `out`.
void emit_jobs(const std::vector<const block_ref*>& window_blocks, uint8_t output_level,
               int64_t start, int64_t end, const std::vector<int64_t>& rollups,
               const compaction_policy& p, std::vector<compaction_job>& out) {
  const uint64_t max_samples = output_level >= 2 ? p.l2_max_output_samples : p.max_output_samples;
  compaction_job cur;
  uint64_t cur_bytes = 0;
  uint64_t cur_samples = 0;
  auto flush = [&] {
    if (cur.inputs.empty()) return;
    cur.output_level = output_level;
    cur.window_start_ns = start;
    cur.window_end_ns = end;
    cur.rollup_steps_ns = rollups;
    out.push_back(std::move(cur));
    cur = compaction_job{};
    cur_bytes = 0;
    cur_samples = 0;
  };
  // Written so the sums never overflow: n > max - cur.
  auto over = [](uint64_t cur_n, uint64_t n, uint64_t max) { return cur_n > max || n > max - cur_n; };
  for (const block_ref* b : window_blocks) {
    if (!cur.inputs.empty() && (over(cur_bytes, b->bytes, p.max_output_bytes) ||
                                over(cur_samples, b->samples, max_samples)))
      flush();
    cur.inputs.push_back(b->id);
    cur_bytes = sat_add_u(cur_bytes, b->bytes);
    cur_samples = sat_add_u(cur_samples, b->samples);
  }
  flush();
}

}  // namespace

status validate(const compaction_policy& p) {
  auto bad = [](std::string what) { return status{errc::bad_config, "compaction: " + what}; };
  if (p.l1_window_ns <= 0) return bad("l1_window_ns must be > 0");
  if (p.l2_window_ns <= 0) return bad("l2_window_ns must be > 0");
  if (p.l2_window_ns % p.l1_window_ns != 0)
    return bad("l2_window_ns must be a multiple of l1_window_ns");
  if (p.l0_max_blocks < 1) return bad("l0_max_blocks must be >= 1");
  if (p.l1_min_blocks < 1) return bad("l1_min_blocks must be >= 1");
  if (p.grace_ns < 0) return bad("grace_ns must be >= 0");
  if (p.max_output_bytes == 0) return bad("max_output_bytes must be > 0");
  if (p.max_output_samples == 0) return bad("max_output_samples must be > 0");
  if (p.l2_max_output_samples == 0) return bad("l2_max_output_samples must be > 0");
  for (int64_t s : p.rollup_steps_ns)
    if (s <= 0) return bad("rollup steps must be > 0");
  // zstd accepts 1..22 and its fast modes below 0; 20+ need a large window, and 0 means "default".
  for (int level : {p.l1_zstd_level, p.l2_zstd_level})
    if (level == 0 || level < -100 || level > 19)
      return bad("zstd levels must be in -100..-1 or 1..19, got " + std::to_string(level));
  return {};
}

std::vector<compaction_job> plan_compactions(std::span<const block_ref> blocks,
                                             const compaction_policy& p, int64_t now_ns) {
  std::vector<compaction_job> jobs;
  if (!validate(p).ok()) return jobs;

  // Everything below walks `sorted`, never `blocks`, so the plan does not depend on input order.
  std::vector<const block_ref*> sorted;
  sorted.reserve(blocks.size());
  for (const block_ref& b : blocks)
    if (b.rollup_step_ns == 0 && b.level <= 2) sorted.push_back(&b);
  std::sort(sorted.begin(), sorted.end(), by_time_then_id);

  auto closed = [&](int64_t end) { return now_ns >= sat_add(end, p.grace_ns); };

  // L0 -> L1.
  for (const auto& [k, group] : group_by_window(sorted, 0, p.l1_window_ns)) {
    int64_t start = window_start(k, p.l1_window_ns);
    int64_t end = sat_add(start, p.l1_window_ns);
    if (closed(end) || group.size() >= p.l0_max_blocks)
      emit_jobs(group, 1, start, end, {}, p, jobs);
  }

  // L1 -> L2, per L2 window over its settled part: all of it once the window is closed, else its
  // L1 windows that are closed (when open windows compact at all). A settled part with an L0 block
  // left waits: compacting it now would leave that L0 data for a second L2 job soon after.
  std::vector<int64_t> rollups = p.rollup_steps_ns;
  std::sort(rollups.begin(), rollups.end());
  rollups.erase(std::unique(rollups.begin(), rollups.end()), rollups.end());
  auto l2_windows = group_by_window(sorted, 2, p.l2_window_ns);
  const auto l0_blocks = group_by_window(sorted, 0, p.l2_window_ns);
  // The latest L1 window end e with now >= e + grace: the largest multiple of the width that is
  // <= now - grace. Open L2 windows are settled up to there.
  int64_t settled_until = i64_min;
  if (int64_t t = 0; !__builtin_sub_overflow(now_ns, p.grace_ns, &t))
    settled_until = window_start(floor_div(t, p.l1_window_ns), p.l1_window_ns);
  for (const auto& [k, group] : group_by_window(sorted, 1, p.l2_window_ns)) {
    int64_t start = window_start(k, p.l2_window_ns);
    int64_t end = sat_add(start, p.l2_window_ns);
    int64_t settled_end = end;
    if (!closed(end)) {
      if (!p.open_l2_windows) continue;
      settled_end = std::min(end, settled_until);
      if (settled_end <= start) continue;
    }
    if (auto it = l0_blocks.find(k); it != l0_blocks.end())
      if (std::any_of(it->second.begin(), it->second.end(),
                      [&](const block_ref* b) { return b->min_time_ns < settled_end; }))
        continue;
    std::vector<const block_ref*> inputs;
    const block_ref* target = nullptr;
    if (auto it = l2_windows.find(k); it != l2_windows.end()) {
      const block_ref* last = it->second.back();
      if (last->bytes < p.max_output_bytes && last->samples < p.l2_max_output_samples)
        target = last;
    }
    if (target != nullptr) inputs.push_back(target);
    for (const block_ref* b : group)
      if (b->min_time_ns < settled_end) inputs.push_back(b);
    const size_t settled = inputs.size() - (target != nullptr ? 1 : 0);
    if (settled == 0) continue;
    bool enough =
        target != nullptr || settled >= p.l1_min_blocks || (settled == 1 && !rollups.empty());
    if (!enough) continue;
    std::vector<compaction_job> window_jobs;
    emit_jobs(inputs, 2, start, end, rollups, p, window_jobs);
    std::map<uint64_t, const block_ref*> by_id;
    for (const block_ref* b : inputs) by_id[b->id] = b;
    for (compaction_job& j : window_jobs) {
      if (target != nullptr && j.inputs.size() == 1 && j.inputs[0] == target->id) continue;
      // The target went first for the cut; a job lists its inputs in (min_time, id) order.
      std::sort(j.inputs.begin(), j.inputs.end(),
                [&](uint64_t x, uint64_t y) { return by_time_then_id(by_id[x], by_id[y]); });
      jobs.push_back(std::move(j));
    }
  }

  // Oldest window first. Stable, so the runs of one split window stay in time order.
  std::stable_sort(jobs.begin(), jobs.end(), [](const compaction_job& a, const compaction_job& b) {
    return std::tie(a.window_start_ns, a.output_level) <
           std::tie(b.window_start_ns, b.output_level);
  });
  return jobs;
}

std::vector<uint64_t> plan_retention(std::span<const block_ref> blocks, int64_t retention_ns,
                                     int64_t now_ns) {
  std::vector<uint64_t> out;
  if (retention_ns <= 0) return out;
  // now - retention, clamped: with a retention longer than all of time nothing is old enough.
  int64_t cutoff = 0;
  if (__builtin_sub_overflow(now_ns, retention_ns, &cutoff)) return out;
  for (const block_ref& b : blocks)
    if (b.max_time_ns < cutoff) out.push_back(b.id);
  std::sort(out.begin(), out.end());
  return out;
}

maintenance_plan plan_maintenance(std::span<const block_ref> blocks, const compaction_policy& p,
                                  int64_t retention_ns, int64_t now_ns) {
  maintenance_plan plan;
  plan.deletions = plan_retention(blocks, retention_ns, now_ns);
  std::vector<block_ref> kept;
  kept.reserve(blocks.size());
  for (const block_ref& b : blocks)
    if (!std::binary_search(plan.deletions.begin(), plan.deletions.end(), b.id)) kept.push_back(b);
  plan.jobs = plan_compactions(kept, p, now_ns);
  return plan;
}

std::vector<uint64_t> superseded_blocks(std::span<const block_lineage> blocks) {
  std::set<uint64_t> present, obsolete;
  for (const block_lineage& b : blocks) {
    present.insert(b.id);
    if (b.rollup_step_ns == 0) obsolete.insert(b.sources.begin(), b.sources.end());
  }
  std::vector<uint64_t> out;
  for (const block_lineage& b : blocks) {
    bool orphan = b.rollup_step_ns > 0 && (b.sources.empty() || !present.count(b.sources[0]) ||
                                           obsolete.count(b.sources[0]));
    if (obsolete.count(b.id) || orphan) out.push_back(b.id);
  }
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

}  // namespace hearth
