#include "query/block_query.hpp"

#include <algorithm>
#include <limits>
#include <optional>

namespace hearth::query {
namespace {

constexpr uint32_t unset = ~uint32_t{0};
constexpr uint32_t invalid = unset - 1;

/// The string at `ref`, or nullopt if the ref is out of range.
std::optional<std::string_view> str(const block_data& b, uint32_t ref) {
  if (ref >= b.syms.strings.size()) return std::nullopt;
  return std::string_view(b.syms.strings[ref]);
}

/// The label refs of series `id`; empty if the series or its range is out of bounds.
std::span<const label_ref> labels_of(const block_data& b, uint32_t id) {
  if (id >= b.series.size()) return {};
  const series_rec& s = b.series[id];
  if (uint64_t{s.label_begin} + s.label_count > b.labels.size()) return {};
  return std::span<const label_ref>(b.labels).subspan(s.label_begin, s.label_count);
}

/// The value of label `name` of series `id`, or "" when absent.
std::string_view label_value(const block_data& b, uint32_t id, std::string_view name) {
  for (const label_ref& l : labels_of(b, id)) {
    auto n = str(b, l.name);
    if (n && *n == name) return str(b, l.value).value_or(std::string_view());
  }
  return {};
}

bool series_matches(const block_data& b, uint32_t id, const std::vector<matcher>& matchers) {
  for (const matcher& m : matchers) {
    if (!m.matches(label_value(b, id, m.name))) return false;
  }
  return true;
}

/// Whether any profile may be in range. block_data::min/max_time_ns are not consulted: pruning
/// whole blocks by time is the caller's job, and a hand-built block may leave them unset.
bool may_overlap(const block_data& b, int64_t start_ns, int64_t end_ns) {
  return row_count(b) > 0 && start_ns < end_ns;
}

std::vector<std::string> sorted_unique(std::vector<std::string_view> v) {
  std::sort(v.begin(), v.end());
  v.erase(std::unique(v.begin(), v.end()), v.end());
  return std::vector<std::string>(v.begin(), v.end());
}

/// The frame name of a location without lines: "0x<address in lowercase hex>".
class address_frame {
 public:
  explicit address_frame(uint64_t address) {
    static constexpr char hex[] = "0123456789abcdef";
    begin_ = buf_ + sizeof buf_;
    do {
      *--begin_ = hex[address & 15];
      address >>= 4;
    } while (address != 0);
    *--begin_ = 'x';
    *--begin_ = '0';
  }
  std::string_view name() const {
    return {begin_, static_cast<size_t>(buf_ + sizeof buf_ - begin_)};
  }

 private:
  char buf_[2 + 16];
  char* begin_;
};

/// Expands stack nodes into flame_tree nodes, memoized per stack node and per name string (so a
/// name shared by several functions is hashed once per block).
class stack_expander {
 public:
  stack_expander(const block_data& b, flame_tree& out)
      : b_(b), out_(out), memo_(b.stacks.size(), unset), str_name_(b.syms.strings.size(), unset) {
    if (!memo_.empty()) memo_[0] = flame_tree::root;
  }

  /// The flame_tree node of stack node `s`, or `invalid` if its path is inconsistent.
  uint32_t resolve(uint32_t s) {
    return map_stack_node(
        b_, memo_, path_, s, unset, invalid,
        [&](uint32_t parent, uint32_t location) { return expand(parent, location); });
  }

 private:
  /// Appends the frames of `location` below `parent`; returns the innermost frame's node.
  uint32_t expand(uint32_t parent, uint32_t location) {
    uint32_t node = parent;
    const auto w = walk_frames(
        b_.syms, location,
        [&](uint32_t ref) {
          if (str_name_[ref] == unset) str_name_[ref] = out_.intern(b_.syms.strings[ref]);
          node = out_.child_by_id(node, str_name_[ref]);
          return true;
        },
        [&](uint64_t address) {
          node = out_.child(node, address_frame(address).name());
          return true;
        });
    return w == frames_walk::done ? node : invalid;
  }

  const block_data& b_;
  flame_tree& out_;
  std::vector<uint32_t> memo_;      // stack node -> flame node, unset or invalid
  std::vector<uint32_t> str_name_;  // string ref -> interned name id in out_
  std::vector<uint32_t> path_;
};

/// Collects the non-zero sums of `sums` (dense, per stack node) at the nodes listed in
/// `touched` (possibly repeated) in ascending stack order.
stack_sums sparse_sums(const std::vector<int64_t>& sums, std::vector<uint32_t>& touched) {
  stack_sums out;
  out.stacks.reserve(touched.size());
  out.values.reserve(touched.size());
  if (touched.size() * 8 >= sums.size()) {
    // Most of the block's stacks: one pass over the dense sums beats sorting the list.
    for (uint32_t s = 0; s < sums.size(); ++s)
      if (sums[s] != 0) {
        out.stacks.push_back(s);
        out.values.push_back(sums[s]);
      }
    return out;
  }
  std::sort(touched.begin(), touched.end());
  touched.erase(std::unique(touched.begin(), touched.end()), touched.end());
  for (uint32_t s : touched) {
    if (sums[s] == 0) continue;
    out.stacks.push_back(s);
    out.values.push_back(sums[s]);
  }
  return out;
}

}  // namespace

std::vector<bool> series_in_range(const block_data& b, int64_t start_ns, int64_t end_ns) {
  std::vector<bool> in(b.series.size(), false);
  if (!may_overlap(b, start_ns, end_ns)) return in;
  const row_view rows(b);
  for (size_t i = 0; i < rows.size(); ++i) {
    const uint32_t s = rows.series(i);
    const int64_t t = rows.time_ns(i);
    if (s < in.size() && t >= start_ns && t < end_ns) in[s] = true;
  }
  return in;
}

std::string address_frame_name(uint64_t address) {
  return std::string(address_frame(address).name());
}

void add_stack_sums(const block_data& block, const stack_sums& sums, flame_tree& out) {
  // Most touched stacks are new nodes of a fresh (per-block) tree: size it once. Ascending
  // stack order visits parents before children, so memoized walks stay short.
  if (out.size() == 1)
    out.reserve(std::min(block.stacks.size(), 2 * sums.stacks.size()), block.syms.functions.size());
  stack_expander ex(block, out);
  for (size_t i = 0; i < sums.stacks.size() && i < sums.values.size(); ++i) {
    const uint32_t node = ex.resolve(sums.stacks[i]);
    if (node != invalid) out.add_self(node, sums.values[i]);
  }
}

std::vector<bool> series_mask(const block_data& block, std::span<const uint32_t> series) {
  std::vector<bool> selected(block.series.size(), false);
  for (uint32_t s : series)
    if (s < selected.size()) selected[s] = true;
  return selected;
}

ns_range ns_range_from_ms(int64_t start_ms, int64_t end_ms) {
  constexpr int64_t ns_per_ms = 1'000'000;
  constexpr int64_t max = std::numeric_limits<int64_t>::max();
  constexpr int64_t min = std::numeric_limits<int64_t>::min();
  const auto to_ns = [&](int64_t ms) {
    if (ms > max / ns_per_ms) return max;
    if (ms < min / ns_per_ms) return min;
    return ms * ns_per_ms;
  };
  const int64_t end = end_ms >= max / ns_per_ms ? max : to_ns(end_ms + 1);
  return {to_ns(start_ms), end};
}

std::vector<uint32_t> select_series(const block_data& block, const std::vector<matcher>& matchers) {
  // TODO(perf): intersect label postings for equality matchers instead of scanning all series.
  std::vector<uint32_t> out;
  for (uint32_t id = 0; id < block.series.size(); ++id) {
    if (series_matches(block, id, matchers)) out.push_back(id);
  }
  return out;
}

std::vector<bool> stacks_with_prefix(const block_data& block, std::span<const std::string> prefix) {
  // matched[s]: how many prefix frames the path of s matches, `full` once all of them match,
  // `mismatch` once one differs. Parents precede their children, so one forward pass suffices.
  constexpr int32_t mismatch = -1;
  const auto full = static_cast<int32_t>(prefix.size());
  const auto& syms = block.syms;
  std::vector<int32_t> matched(block.stacks.size(), mismatch);
  std::vector<bool> out(block.stacks.size(), false);
  if (matched.empty()) return out;
  matched[0] = 0;
  out[0] = prefix.empty();
  for (size_t s = 1; s < block.stacks.size(); ++s) {
    const stack_node& n = block.stacks[s];
    if (n.parent >= s) continue;  // corrupt: stays a mismatch
    int32_t m = matched[n.parent];
    if (m == mismatch || m == full) {
      matched[s] = m;
      out[s] = m == full;
      continue;
    }
    if (n.location >= syms.locations.size()) continue;
    const location_rec& loc = syms.locations[n.location];
    if (loc.line_count == 0) {
      m = address_frame(loc.address).name() == prefix[m] ? m + 1 : mismatch;
    } else if (uint64_t{loc.line_begin} + loc.line_count > syms.lines.size()) {
      m = mismatch;
    } else {
      // Frames of a location run from the last line (the caller) to the first (innermost).
      for (uint32_t i = loc.line_count; i-- > 0 && m != mismatch && m != full;) {
        const uint32_t fn = syms.lines[loc.line_begin + i].function;
        auto name = fn < syms.functions.size() ? str(block, syms.functions[fn].name) : std::nullopt;
        m = name && *name == prefix[m] ? m + 1 : mismatch;
      }
    }
    matched[s] = m;
    out[s] = m == full;
  }
  return out;
}

void merge_stacks(const block_data& block, std::span<const uint32_t> series, int64_t start_ns,
                  int64_t end_ns, flame_tree& out) {
  merge_stacks(block, series, start_ns, end_ns, {}, out);
}

bool profile_selected(std::span<const uint64_t> profile_ids, const profile_row& p) {
  if (profile_ids.empty()) return true;
  size_t lo = 0, hi = profile_ids.size() / 2;  // binary search over the pairs
  while (lo < hi) {
    const size_t mid = (lo + hi) / 2;
    const uint64_t h = profile_ids[2 * mid], l = profile_ids[2 * mid + 1];
    if (h < p.id_hi || (h == p.id_hi && l < p.id_lo))
      lo = mid + 1;
    else
      hi = mid;
  }
  return lo < profile_ids.size() / 2 && profile_ids[2 * lo] == p.id_hi &&
         profile_ids[2 * lo + 1] == p.id_lo;
}

void merge_stacks(const block_data& block, std::span<const uint32_t> series, int64_t start_ns,
                  int64_t end_ns, std::span<const std::string> call_site, flame_tree& out,
                  std::span<const uint64_t> profile_ids) {
  add_stack_sums(block, sum_stacks(block, series, start_ns, end_ns, call_site, profile_ids), out);
}

stack_sums sum_stacks(const block_data& block, std::span<const uint32_t> series, int64_t start_ns,
                      int64_t end_ns, std::span<const std::string> call_site,
                      std::span<const uint64_t> profile_ids) {
  if (series.empty() || !may_overlap(block, start_ns, end_ns)) return {};
  const std::vector<bool> selected = series_mask(block, series);
  const std::vector<bool> keep =
      call_site.empty() ? std::vector<bool>() : stacks_with_prefix(block, call_site);
  // Sum per stack node first so each stack node is expanded once.
  // TODO(perf): profiles of a series are contiguous in sealed blocks; seek instead of scanning.
  std::vector<int64_t> sums(block.stacks.size(), 0);
  std::vector<uint32_t> touched;
  for (const profile_row& p : block.profiles) {
    if (p.series >= selected.size() || !selected[p.series]) continue;
    if (p.time_ns < start_ns || p.time_ns >= end_ns) continue;
    if (!profile_selected(profile_ids, p)) continue;
    if (uint64_t{p.sample_begin} + p.sample_count > block.samples.size()) continue;
    for (uint32_t i = 0; i < p.sample_count; ++i) {
      const sample_rec& s = block.samples[p.sample_begin + i];
      if (s.stack == 0 || s.stack >= sums.size()) continue;
      if (!keep.empty() && !keep[s.stack]) continue;
      if (sums[s.stack] == 0) touched.push_back(s.stack);
      sums[s.stack] += s.value;
    }
  }
  return sparse_sums(sums, touched);
}

void merge_span_stacks(const block_data& block, std::span<const uint32_t> series, int64_t start_ns,
                       int64_t end_ns, std::span<const std::string> call_site,
                       std::span<const uint64_t> span_ids, flame_tree& out,
                       std::span<const uint64_t> profile_ids) {
  add_stack_sums(block,
                 sum_span_stacks(block, series, start_ns, end_ns, call_site, span_ids, profile_ids),
                 out);
}

stack_sums sum_span_stacks(const block_data& block, std::span<const uint32_t> series,
                           int64_t start_ns, int64_t end_ns, std::span<const std::string> call_site,
                           std::span<const uint64_t> span_ids,
                           std::span<const uint64_t> profile_ids) {
  if (series.empty() || span_ids.empty() || block.spans.empty() ||
      !may_overlap(block, start_ns, end_ns))
    return {};
  const std::vector<bool> selected = series_mask(block, series);
  const std::vector<bool> keep =
      call_site.empty() ? std::vector<bool>() : stacks_with_prefix(block, call_site);
  std::vector<int64_t> sums(block.stacks.size(), 0);
  std::vector<uint32_t> touched;
  for (const profile_row& p : block.profiles) {
    if (p.span_count == 0 || p.series >= selected.size() || !selected[p.series]) continue;
    if (p.time_ns < start_ns || p.time_ns >= end_ns) continue;
    if (!profile_selected(profile_ids, p)) continue;
    if (uint64_t{p.span_begin} + p.span_count > block.spans.size()) continue;
    for (uint32_t i = 0; i < p.span_count; ++i) {
      const span_sample& s = block.spans[p.span_begin + i];
      if (s.stack == 0 || s.stack >= sums.size()) continue;
      if (!keep.empty() && !keep[s.stack]) continue;
      if (!std::binary_search(span_ids.begin(), span_ids.end(), s.span_id)) continue;
      if (sums[s.stack] == 0) touched.push_back(s.stack);
      sums[s.stack] += s.value;
    }
  }
  return sparse_sums(sums, touched);
}

int64_t span_total(const block_data& block, const profile_row& p,
                   std::span<const uint64_t> span_ids) {
  if (uint64_t{p.span_begin} + p.span_count > block.spans.size()) return 0;
  int64_t sum = 0;
  for (uint32_t i = 0; i < p.span_count; ++i) {
    const span_sample& s = block.spans[p.span_begin + i];
    if (std::binary_search(span_ids.begin(), span_ids.end(), s.span_id)) sum += s.value;
  }
  return sum;
}

std::vector<std::string> label_names(const block_data& block, const std::vector<matcher>& matchers,
                                     int64_t start_ns, int64_t end_ns) {
  const std::vector<bool> in = series_in_range(block, start_ns, end_ns);
  std::vector<std::string_view> names;
  for (uint32_t id = 0; id < block.series.size(); ++id) {
    if (!in[id] || !series_matches(block, id, matchers)) continue;
    for (const label_ref& l : labels_of(block, id)) {
      if (auto n = str(block, l.name)) names.push_back(*n);
    }
  }
  return sorted_unique(std::move(names));
}

std::vector<std::string> label_values(const block_data& block, std::string_view name,
                                      const std::vector<matcher>& matchers, int64_t start_ns,
                                      int64_t end_ns) {
  const std::vector<bool> in = series_in_range(block, start_ns, end_ns);
  std::vector<std::string_view> values;
  for (uint32_t id = 0; id < block.series.size(); ++id) {
    if (!in[id] || !series_matches(block, id, matchers)) continue;
    for (const label_ref& l : labels_of(block, id)) {
      auto n = str(block, l.name);
      auto v = str(block, l.value);
      if (n && v && *n == name) values.push_back(*v);
    }
  }
  return sorted_unique(std::move(values));
}

std::vector<std::string> profile_type_ids(const block_data& block, int64_t start_ns,
                                          int64_t end_ns) {
  return label_values(block, "__profile_type__", {}, start_ns, end_ns);
}

label_set series_labels(const block_data& block, uint32_t id) {
  label_set out;
  for (const label_ref& l : labels_of(block, id)) {
    auto n = str(block, l.name);
    auto v = str(block, l.value);
    if (n && v) out.push_back(label{std::string(*n), std::string(*v)});
  }
  return out;
}

}  // namespace hearth::query
