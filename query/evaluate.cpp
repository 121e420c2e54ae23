#include "query/evaluate.hpp"

#include <algorithm>

namespace hearth::query {

block_depth depth_needed(const query_spec& spec) {
  switch (static_cast<query_kind>(spec.kind)) {
    case query_kind::label_names:
    case query_kind::label_values:
    case query_kind::profile_types:
    case query_kind::series_labels:
    case query_kind::profile_stats:
      return block_depth::row_columns;
    case query_kind::analyze:
      return block_depth::rows;
    case query_kind::select_series:
      return !spec.call_site.empty() ? block_depth::whole
             : spec.exemplars        ? block_depth::rows
                                     : block_depth::row_columns;
    default:
      return block_depth::whole;
  }
}

namespace {
int64_t floor_to(int64_t t, int64_t step) {
  return t >= 0 ? t / step * step : -((-t + step - 1) / step) * step;
}
}  // namespace

rollup_choice choose_rollup(const query_spec& spec, std::span<const int64_t> steps_ns) {
  rollup_choice best;
  const auto kind = static_cast<query_kind>(spec.kind);
  if ((kind != query_kind::merge_stacks && kind != query_kind::merge_pprof) ||
      !spec.call_site.empty() || !spec.span_ids.empty() || !spec.profile_ids.empty())
    return best;
  int64_t best_step = 0;
  for (size_t i = 0; i < steps_ns.size(); ++i) {
    const int64_t step = steps_ns[i];
    if (step <= 0 || step > spec.max_rollup_step_ns || step <= best_step) continue;
    // The first bucket starting at or after start_ns, the last one ending by end_ns (no
    // overflow: a bucket start past INT64_MAX - step cannot be reached by a real profile).
    if (spec.start_ns > INT64_MAX - step + 1) continue;
    const int64_t a = floor_to(spec.start_ns + step - 1, step), z = floor_to(spec.end_ns, step);
    if (a < z) {
      best_step = step;
      best = rollup_choice{i, a, z};
    }
  }
  return best;
}

bool raw_rows_outside(const query_spec& spec, const rollup_choice& c, int64_t min_time_ns,
                      int64_t max_time_ns) {
  if (c.index == SIZE_MAX) return true;
  const bool left = min_time_ns < c.lo_ns && max_time_ns >= spec.start_ns;
  const bool right = max_time_ns >= c.hi_ns && min_time_ns < spec.end_ns;
  return left || right;
}

void to_flat(flame_tree&& t, flat_tree& out) {
  const auto& nodes = t.nodes();
  out.parents.clear();
  out.name_ids.clear();
  out.selfs.clear();
  out.parents.reserve(nodes.size());
  out.name_ids.reserve(nodes.size());
  out.selfs.reserve(nodes.size());
  for (const auto& n : nodes) {
    out.parents.push_back(n.parent);
    out.name_ids.push_back(n.name);
    out.selfs.push_back(n.self);
  }
  out.names = std::move(t).release_names();
}

void merge_flat(const flat_tree& p, flame_tree& into) {
  size_t n = p.parents.size();
  if (n == 0 || p.name_ids.size() != n || p.selfs.size() != n) return;
  // Partials of one query are mostly alike in size: size the target for the largest so far.
  into.reserve(std::max(into.size(), n), std::max(into.names().size(), p.names.size()));
  std::vector<uint32_t> name_map(p.names.size());
  for (size_t i = 0; i < p.names.size(); ++i) name_map[i] = into.intern(p.names[i]);
  std::vector<uint32_t> node_map(n, flame_tree::root);
  into.add_self(flame_tree::root, p.selfs[0]);
  // The tree's index is larger than the caches: look `ahead` nodes ahead and prefetch the slot
  // of each whose parent is already mapped, so the lookups' cache misses overlap.
  constexpr size_t ahead = 8;
  for (size_t i = 1; i < n; ++i) {
    if (const size_t j = i + ahead; j < n && p.parents[j] < i && p.name_ids[j] < name_map.size())
      into.prefetch_child(node_map[p.parents[j]], name_map[p.name_ids[j]]);
    uint32_t parent = p.parents[i] < i ? node_map[p.parents[i]] : flame_tree::root;
    uint32_t name = p.name_ids[i] < name_map.size() ? name_map[p.name_ids[i]] : into.intern("?");
    node_map[i] = into.child_by_id(parent, name);
    // Most inner nodes have no self value: skip touching them (a cache miss in a large tree).
    if (p.selfs[i] != 0) into.add_self(node_map[i], p.selfs[i]);
  }
}

namespace {
// Adds frame parts into the per-dictionary sums.
void add_frame_parts(std::vector<merger::frame_sums>& acc, const std::vector<frame_part>& parts) {
  for (const frame_part& fp : parts) {
    if (!fp.frames || !fp.frames->dict) continue;
    const block_frames& f = *fp.frames;
    auto it = std::find_if(acc.begin(), acc.end(), [&](const auto& a) { return a.dict == f.dict; });
    if (it == acc.end()) it = acc.insert(acc.end(), merger::frame_sums{f.dict, {}, {}});
    if (it->sums.size() <= f.max_node) {
      it->sums.resize(size_t{f.max_node} + 1, 0);
      it->touched.resize(size_t{f.max_node} + 1, false);
    }
    const auto& ss = fp.sums;
    for (size_t i = 0; i < ss.stacks.size() && i < ss.values.size(); ++i) {
      if (ss.stacks[i] >= f.node.size()) continue;
      const uint32_t d = f.node[ss.stacks[i]];
      if (d == block_frames::invalid) continue;
      it->sums[d] += ss.values[i];
      it->touched[d] = true;
    }
  }
}

void materialize_all(std::vector<merger::frame_sums>& acc, flame_tree& into) {
  for (auto& a : acc) a.dict->materialize(a.sums, a.touched, into);
  acc.clear();
}

}  // namespace

result<evaluator> evaluator::make(const query_spec& spec) {
  evaluator ev;
  ev.spec_ = spec;
  auto kind = ev.kind();
  if (kind < query_kind::merge_stacks || kind > query_kind::analyze)
    return error{errc::invalid_argument, "unknown query kind " + std::to_string(spec.kind)};
  auto ms = parse_selector(spec.selector.empty() ? "{}" : spec.selector);
  if (!ms) return ms.err();
  ev.matchers_ = std::move(*ms);
  if (!spec.profile_type.empty()) {
    auto m = make_matcher("__profile_type__", matcher::op::eq, spec.profile_type);
    if (!m) return m.err();
    ev.matchers_.push_back(std::move(*m));
  }
  if (kind == query_kind::select_series) {
    if (spec.step_ns < 1000000) return error{errc::invalid_argument, "step must be at least 1 ms"};
    ev.series_req_.start_ns = spec.start_ns;
    ev.series_req_.end_ns = spec.end_ns;
    ev.series_req_.step_ns = spec.step_ns;
    ev.series_req_.group_by = spec.group_by;
    ev.series_req_.call_site = spec.call_site;
    ev.series_req_.exemplars = spec.exemplars;
  }
  if (!std::is_sorted(spec.span_ids.begin(), spec.span_ids.end()) ||
      std::adjacent_find(spec.span_ids.begin(), spec.span_ids.end()) != spec.span_ids.end())
    return error{errc::invalid_argument, "span ids must be sorted and unique"};
  if (spec.profile_ids.size() % 2 != 0)
    return error{errc::invalid_argument, "profile ids must be (hi, lo) pairs"};
  for (size_t i = 2; i < spec.profile_ids.size(); i += 2)
    if (std::pair{spec.profile_ids[i - 2], spec.profile_ids[i - 1]} >=
        std::pair{spec.profile_ids[i], spec.profile_ids[i + 1]})
      return error{errc::invalid_argument, "profile ids must be sorted and unique"};
  if (kind == query_kind::merge_pprof) {
    ev.pprof_sel_.span_ids = spec.span_ids;
    ev.pprof_sel_.profile_ids = spec.profile_ids;
    ev.pprof_sel_.call_site = spec.call_site;
    if (spec.pgo) ev.pprof_sel_.pgo = go_pgo{spec.pgo_keep_locations, spec.pgo_aggregate_callees};
  }
  return ev;
}

void make_portable(partial& p) {
  if (p.frame_parts.empty()) return;
  flame_tree t;
  merge_flat(p.tree, t);
  std::vector<merger::frame_sums> acc;
  add_frame_parts(acc, p.frame_parts);
  materialize_all(acc, t);
  to_flat(std::move(t), p.tree);
  p.frame_parts.clear();
}

void evaluator::add(const block_data& b, int64_t start, int64_t end,
                    std::shared_ptr<const block_frames> frames) {
  start = std::max(start, spec_.start_ns);
  end = std::min(end, spec_.end_ns);
  auto kind = this->kind();
  if (kind == query_kind::profile_stats) {
    merge_profile_stats(stats_, block_profile_stats(b));
    return;
  }
  if (start >= end || row_count(b) == 0 || b.max_time_ns < start || b.min_time_ns >= end) return;
  switch (kind) {
    case query_kind::label_names:
      for (auto& v : label_names(b, matchers_, start, end)) values_.insert(std::move(v));
      return;
    case query_kind::label_values:
      for (auto& v : label_values(b, spec_.label_name, matchers_, start, end))
        values_.insert(std::move(v));
      return;
    case query_kind::profile_types:
      for (auto& v : profile_type_ids(b, start, end)) values_.insert(std::move(v));
      return;
    case query_kind::series_labels:
      merge_label_sets(label_sets_, series_label_sets(b, matchers_, spec_.label_names, start, end));
      return;
    default:
      break;
  }
  auto series = select_series(b, matchers_);
  if (series.empty()) return;
  switch (kind) {
    case query_kind::merge_stacks: {
      const bool by_span = !spec_.span_ids.empty();
      stack_sums sums = by_span
                            ? sum_span_stacks(b, series, start, end, spec_.call_site,
                                              spec_.span_ids, spec_.profile_ids)
                            : sum_stacks(b, series, start, end, spec_.call_site, spec_.profile_ids);
      if (frames && frames->node.size() == b.stacks.size()) {
        if (!sums.stacks.empty())
          frame_parts_.push_back(frame_part{std::move(frames), std::move(sums)});
      } else {
        add_stack_sums(b, sums, tree_);
      }
      if (!spec_.want_points) return;
      const std::vector<bool> selected = series_mask(b, series);
      // The group_by[0] value of each selected series, looked up once per block.
      std::vector<std::string> group(spec_.group_by.empty() ? 0 : b.series.size());
      if (!spec_.group_by.empty())
        for (auto id : series)
          for (const auto& l : series_labels(b, id))
            if (l.name == spec_.group_by[0]) group[id] = l.value;
      for (const auto& p : b.profiles) {
        if (!selected[p.series] || p.time_ns < start || p.time_ns >= end) continue;
        if (!profile_selected(spec_.profile_ids, p)) continue;
        const int64_t value = by_span ? span_total(b, p, spec_.span_ids) : p.total;
        if (by_span && value == 0) continue;
        point_times_.push_back(p.time_ns);
        point_values_.push_back(value);
        if (!group.empty()) point_groups_.push_back(group[p.series]);
      }
      return;
    }
    case query_kind::select_series:
      // The grid is the query's: a block is always added over the whole range. Each block's
      // points go to their own partial; finish() merges them all at once (merging each into one
      // growing partial would copy it once per block).
      series_parts_.emplace_back();
      select_series_points(b, series, series_req_, series_parts_.back());
      if (series_parts_.back().empty()) series_parts_.pop_back();
      return;
    case query_kind::merge_pprof:
      pprof_.add(b, series, start, end, pprof_sel_);
      return;
    case query_kind::analyze: {
      counts_.series += series.size();
      const std::vector<bool> selected = series_mask(b, series);
      for (const auto& p : b.profiles) {
        if (!selected[p.series] || p.time_ns < start || p.time_ns >= end) continue;
        ++counts_.profiles;
        counts_.samples += p.sample_count;
      }
      return;
    }
    default:
      return;
  }
}

std::vector<bool> evaluator::series_read(const block_data& b) const {
  switch (kind()) {
    case query_kind::merge_stacks:
    case query_kind::merge_pprof:
    case query_kind::select_series:
    case query_kind::analyze:
      return series_mask(b, select_series(b, matchers_));
    default:
      return std::vector<bool>(b.series.size(), true);
  }
}

partial evaluator::finish() && {
  partial out;
  if (kind() == query_kind::merge_stacks) {
    to_flat(std::move(tree_), out.tree);
    out.frame_parts = std::move(frame_parts_);
  }
  out.values.assign(values_.begin(), values_.end());
  out.label_sets = std::move(label_sets_);
  merge_series(out.series, series_parts_);
  out.pprof = pprof_.take();
  out.stats = stats_;
  out.point_times_ns = std::move(point_times_);
  out.point_values = std::move(point_values_);
  out.point_groups = std::move(point_groups_);
  out.counts = counts_;
  return out;
}

flame_tree& merger::tree() {
  if (!frame_sums_.empty()) materialize_all(frame_sums_, tree_);
  return tree_;
}

void merger::add(partial&& p) {
  merge_flat(p.tree, tree_);
  add_frame_parts(frame_sums_, p.frame_parts);
  for (auto& v : p.values) values_.insert(std::move(v));
  merge_label_sets(label_sets_, p.label_sets);
  if (!p.series.empty()) series_parts_.push_back(std::move(p.series));
  if (p.pprof.profiles > 0 || !p.pprof.values.empty()) pprof_.merge(std::move(p.pprof));
  merge_profile_stats(stats_, p.stats);
  bool grouped = p.point_groups.size() == p.point_times_ns.size();
  for (size_t i = 0; i < p.point_times_ns.size() && i < p.point_values.size(); ++i)
    points_.push_back({p.point_times_ns[i], p.point_values[i],
                       grouped ? std::move(p.point_groups[i]) : std::string()});
  counts_.blocks += p.counts.blocks;
  counts_.series += p.counts.series;
  counts_.profiles += p.counts.profiles;
  counts_.samples += p.counts.samples;
  counts_.bytes += p.counts.bytes;
}

std::vector<series> merger::render_series(std::span<const std::string> group_by,
                                          series_aggregation aggregation, int64_t limit) {
  return query::render_series(series_parts_, group_by, aggregation, limit);
}

std::vector<timeline_point> merger::points() const {
  auto out = points_;
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace hearth::query
