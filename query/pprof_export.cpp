#include "query/pprof_export.hpp"

#include <algorithm>
#include <cassert>
#include <limits>
#include <ranges>
#include <string_view>
#include <unordered_map>

#include "format/coding.hpp"
#include "format/normalize.hpp"
#include "format/protowire.hpp"
#include "query/block_query.hpp"

namespace hearth::query {
namespace {

constexpr uint32_t unset = ~uint32_t{0};
constexpr uint32_t bad = unset - 1;

void note_time(pprof_partial& p, int64_t first_ns, int64_t last_end_ns, uint64_t profiles) {
  if (profiles == 0) return;
  if (p.profiles == 0) {
    p.first_ns = first_ns;
    p.last_end_ns = last_end_ns;
  } else {
    p.first_ns = std::min(p.first_ns, first_ns);
    p.last_end_ns = std::max(p.last_end_ns, last_end_ns);
  }
  p.profiles += profiles;
}

// --- protobuf writing (proto3: zero scalars are omitted) ---

using protowire::put_bytes_field;
using protowire::put_int_field;
using protowire::put_varint_field;

template <class T>
void put_packed_field(encoder& e, encoder& scratch, uint32_t field, std::span<const T> vs) {
  if (vs.empty()) return;
  scratch.reset();
  for (T v : vs) scratch.put_uvarint(static_cast<uint64_t>(v));
  put_bytes_field(e, field, scratch.buffer());
}

/// The output string table, in order of first use; "" is index 0.
class string_table {
 public:
  string_table() { add(""); }
  int64_t add(std::string_view s) {
    auto [it, added] = ids_.try_emplace(s, static_cast<int64_t>(strings_.size()));
    if (added) strings_.push_back(s);
    return it->second;
  }
  const std::vector<std::string_view>& strings() const { return strings_; }

 private:
  std::unordered_map<std::string_view, int64_t> ids_;
  std::vector<std::string_view> strings_;
};

/// A stack in output form: partial location ids, leaf first; `other_location` is the synthetic
/// truncation location.
constexpr uint32_t other_location = unset;

struct out_sample {
  std::vector<uint32_t> locs;
  int64_t value = 0;
};

/// Pyroscope's pprof truncation over the function call tree (see pprof_options::max_nodes).
std::vector<out_sample> truncate(const pprof_partial& p, int64_t max_nodes) {
  const auto& syms = p.syms;
  // Frames of a location, root side first: its lines from last to first; a location without
  // lines is one frame of its own.
  const auto frame_of = [&](uint32_t loc, uint32_t line_from_last) -> uint64_t {
    const location_rec& r = syms.locations[loc];
    if (r.line_count == 0) return syms.functions.size() + uint64_t{loc};
    return syms.lines[r.line_begin + r.line_count - 1 - line_from_last].function;
  };
  const auto frames_in = [&](uint32_t loc) -> uint32_t {
    return std::max<uint32_t>(1, syms.locations[loc].line_count);
  };
  std::unordered_map<uint64_t, uint32_t> node_ids;        // (parent << 32 | frame) -> node
  std::vector<int64_t> totals{0};                         // node 0: the root
  std::vector<std::vector<uint32_t>> paths(p.samples());  // per sample: nodes root to leaf
  for (size_t i = 0; i < p.samples(); ++i) {
    uint32_t node = 0;
    for (uint32_t k = p.stack_offsets[i + 1]; k-- > p.stack_offsets[i];) {
      const uint32_t loc = p.stack_locations[k];
      for (uint32_t j = 0; j < frames_in(loc); ++j) {
        const uint64_t key = (uint64_t{node} << 32) ^ frame_of(loc, j);
        auto [it, added] = node_ids.try_emplace(key, static_cast<uint32_t>(totals.size()));
        if (added) totals.push_back(0);
        node = it->second;
        totals[node] += p.values[i];
        paths[i].push_back(node);
      }
    }
  }
  int64_t threshold = std::numeric_limits<int64_t>::min();
  if (static_cast<int64_t>(totals.size()) - 1 > max_nodes) {
    std::vector<int64_t> sorted(totals.begin() + 1, totals.end());
    std::nth_element(sorted.begin(), sorted.begin() + (max_nodes - 1), sorted.end(),
                     std::greater<>());
    threshold = sorted[max_nodes - 1];
  }
  std::vector<out_sample> out;
  out.reserve(p.samples());
  for (size_t i = 0; i < p.samples(); ++i) {
    // The deepest kept frame decides how many root-side locations stay (a location stays whole
    // if any of its frames is kept).
    int64_t deepest = -1;
    for (size_t f = 0; f < paths[i].size(); ++f)
      if (totals[paths[i][f]] >= threshold) deepest = static_cast<int64_t>(f);
    out_sample s;
    s.value = p.values[i];
    const uint32_t begin = p.stack_offsets[i], end = p.stack_offsets[i + 1];
    int64_t frames = 0;
    uint32_t keep_from = end;  // locations [keep_from, end) are kept
    while (keep_from > begin && frames <= deepest) {
      --keep_from;
      frames += frames_in(p.stack_locations[keep_from]);
    }
    s.locs.assign(p.stack_locations.begin() + keep_from, p.stack_locations.begin() + end);
    // The cut leaf side becomes one "other" location (leaf first).
    if (keep_from > begin) s.locs.insert(s.locs.begin(), other_location);
    out.push_back(std::move(s));
  }
  return out;
}

uint64_t hash_stack(std::span<const uint32_t> locs) {
  uint64_t h = hash_mix(0x57ac, locs.size());
  for (uint32_t l : locs) h = hash_mix(h, l);
  return h;
}

}  // namespace

/// Remaps from one source symbol table, memoized per source id.
struct pprof_builder::source {
  explicit source(const symbols& s)
      : syms(s),
        str(s.strings.size(), unset),
        map(s.mappings.size(), unset),
        fn(s.functions.size(), unset),
        loc(s.locations.size(), unset) {}
  const symbols& syms;
  std::vector<uint32_t> str, map, fn, loc;
};

pprof_builder::pprof_builder() = default;

pprof_builder::pprof_builder(pprof_partial p) : p_(std::move(p)), indexed_(false) {}

void pprof_builder::index() {
  indexed_ = true;
  interner_.clear();
  stacks_.clear();
  interner_.index(p_.syms);
  stacks_.reserve(p_.values.size());
  for (uint32_t i = 0; i < p_.values.size(); ++i) {
    const auto locs = stack(i);
    stacks_.find_or_insert(
        hash_stack(locs), [&](uint32_t id) { return std::ranges::equal(stack(id), locs); },
        [&] { return i; });
  }
}

pprof_partial pprof_builder::take() {
  pprof_partial out = std::move(p_);
  p_ = pprof_partial();
  interner_.clear();
  stacks_.clear();
  indexed_ = true;
  return out;
}

std::span<const uint32_t> pprof_builder::stack(uint32_t i) const {
  return std::span<const uint32_t>(p_.stack_locations)
      .subspan(p_.stack_offsets[i], p_.stack_offsets[i + 1] - p_.stack_offsets[i]);
}

/// The partial's location for `l` of `src`, or `bad` for an inconsistent reference.
uint32_t pprof_builder::location(source& src, uint32_t l) {
  if (l >= src.loc.size()) return bad;
  if (src.loc[l] != unset) return src.loc[l];
  const location_rec& r = src.syms.locations[l];
  if (uint64_t{r.line_begin} + r.line_count > src.syms.lines.size()) return src.loc[l] = bad;
  std::vector<line_rec>& lines = lines_;
  lines.clear();
  for (uint32_t i = 0; i < r.line_count; ++i) {
    const line_rec& ln = src.syms.lines[r.line_begin + i];
    const uint32_t f = function(src, ln.function);
    if (f == bad) return src.loc[l] = bad;
    lines.push_back({f, ln.line});
  }
  uint32_t m = 0;
  if (r.mapping != 0) {
    m = mapping(src, r.mapping - 1);
    if (m == bad) return src.loc[l] = bad;
  }
  return src.loc[l] = interner_.location(p_.syms, r.address, lines, m);
}

/// The location equal to partial location `l` with its innermost line number zeroed.
uint32_t pprof_builder::without_callee_line(uint32_t l) {
  const location_rec r = p_.syms.locations[l];
  if (r.line_count == 0 || p_.syms.lines[r.line_begin].line == 0) return l;
  std::vector<line_rec>& lines = lines_;
  lines.assign(p_.syms.lines.begin() + r.line_begin,
               p_.syms.lines.begin() + r.line_begin + r.line_count);
  lines[0].line = 0;
  return interner_.location(p_.syms, r.address, lines, r.mapping);
}

/// Adds `v` to the sample with stack `locs` (partial location ids, leaf first).
void pprof_builder::add_stack(std::span<const uint32_t> locs, int64_t v) {
  const auto n = static_cast<uint32_t>(p_.values.size());
  const uint32_t id = stacks_.find_or_insert(
      hash_stack(locs), [&](uint32_t i) { return std::ranges::equal(stack(i), locs); },
      [&] {
        p_.stack_locations.insert(p_.stack_locations.end(), locs.begin(), locs.end());
        p_.stack_offsets.push_back(static_cast<uint32_t>(p_.stack_locations.size()));
        p_.values.push_back(0);
        return n;
      });
  p_.values[id] += v;
}

uint32_t pprof_builder::string(source& src, uint32_t s) {
  if (s >= src.str.size()) return bad;
  if (src.str[s] == unset) src.str[s] = interner_.string(p_.syms, src.syms.strings[s]);
  return src.str[s];
}

uint32_t pprof_builder::function(source& src, uint32_t f) {
  if (f >= src.fn.size()) return bad;
  if (src.fn[f] != unset) return src.fn[f];
  const function_rec& r = src.syms.functions[f];
  const function_rec out{string(src, r.name), string(src, r.system_name), string(src, r.filename),
                         r.start_line};
  if (out.name == bad || out.system_name == bad || out.filename == bad) return src.fn[f] = bad;
  return src.fn[f] = interner_.function(p_.syms, out);
}

/// `m` is 0-based; returns the partial's 1-based mapping id.
uint32_t pprof_builder::mapping(source& src, uint32_t m) {
  if (m >= src.map.size()) return bad;
  if (src.map[m] != unset) return src.map[m];
  mapping_rec out = src.syms.mappings[m];
  out.filename = string(src, out.filename);
  out.build_id = string(src, out.build_id);
  if (out.filename == bad || out.build_id == bad) return src.map[m] = bad;
  return src.map[m] = interner_.mapping(p_.syms, out);
}

void pprof_builder::add(const block_data& block, std::span<const uint32_t> series,
                        int64_t start_ns, int64_t end_ns, const pprof_selector& sel) {
  if (series.empty() || block.profiles.empty() || start_ns >= end_ns) return;
  if (!indexed_) index();
  const std::vector<bool> selected = series_mask(block, series);
  const bool by_call_site = !sel.pgo && !sel.call_site.empty();
  const std::vector<bool> keep =
      by_call_site ? stacks_with_prefix(block, sel.call_site) : std::vector<bool>();

  std::vector<int64_t> sums(block.stacks.size(), 0);
  std::vector<uint32_t> touched;
  int64_t first = std::numeric_limits<int64_t>::max(),
          last_end = std::numeric_limits<int64_t>::min();
  uint64_t profiles = 0;
  for (const profile_row& p : block.profiles) {
    if (p.series >= selected.size() || !selected[p.series]) continue;
    if (p.time_ns < start_ns || p.time_ns >= end_ns) continue;
    if (!profile_selected(sel.profile_ids, p)) continue;
    if (uint64_t{p.sample_begin} + p.sample_count > block.samples.size()) continue;
    ++profiles;
    first = std::min(first, p.time_ns);
    last_end = std::max(last_end, p.end_ns());
    p_.period = std::max(p_.period, p.period);
    if (!sel.span_ids.empty()) {
      if (uint64_t{p.span_begin} + p.span_count > block.spans.size()) continue;
      for (uint32_t i = 0; i < p.span_count; ++i) {
        const span_sample& s = block.spans[p.span_begin + i];
        if (s.stack == 0 || s.stack >= sums.size()) continue;
        if (!keep.empty() && !keep[s.stack]) continue;
        if (!std::binary_search(sel.span_ids.begin(), sel.span_ids.end(), s.span_id)) continue;
        if (sums[s.stack] == 0) touched.push_back(s.stack);
        sums[s.stack] += s.value;
      }
      continue;
    }
    for (uint32_t i = 0; i < p.sample_count; ++i) {
      const sample_rec& s = block.samples[p.sample_begin + i];
      if (s.stack == 0 || s.stack >= sums.size()) continue;
      if (!keep.empty() && !keep[s.stack]) continue;
      if (sums[s.stack] == 0) touched.push_back(s.stack);
      sums[s.stack] += s.value;
    }
  }
  std::sort(touched.begin(), touched.end());
  touched.erase(std::unique(touched.begin(), touched.end()), touched.end());

  source src(block.syms);
  std::vector<uint32_t> locs;
  for (uint32_t s : touched) {
    if (sums[s] == 0) continue;
    locs.clear();
    bool ok = true;
    for (uint32_t cur = s; cur != 0 && ok; cur = block.stacks[cur].parent) {
      if (block.stacks[cur].parent >= cur) ok = false;  // corrupt: parents precede children
      const uint32_t l = location(src, block.stacks[cur].location);
      if (l == bad) ok = false;
      locs.push_back(l);
    }
    if (!ok) continue;
    if (sel.pgo) {
      if (sel.pgo->keep_locations > 0 && locs.size() > sel.pgo->keep_locations)
        locs.resize(sel.pgo->keep_locations);
      if (sel.pgo->aggregate_callees) locs[0] = without_callee_line(locs[0]);
    }
    add_stack(locs, sums[s]);
  }
  note_time(p_, first, last_end, profiles);
}

void pprof_builder::merge(const pprof_partial& from) {
  assert(&p_ != &from);
  if (!indexed_) index();
  p_.period = std::max(p_.period, from.period);
  source src(from.syms);
  std::vector<uint32_t> locs;
  for (size_t i = 0; i < from.samples(); ++i) {
    locs.clear();
    bool ok = true;
    for (uint32_t k = from.stack_offsets[i]; k < from.stack_offsets[i + 1] && ok; ++k) {
      locs.push_back(location(src, from.stack_locations[k]));
      ok = locs.back() != bad;
    }
    if (ok) add_stack(locs, from.values[i]);
  }
  note_time(p_, from.first_ns, from.last_end_ns, from.profiles);
}

void pprof_builder::merge(pprof_partial&& from) {
  if (p_.profiles == 0 && p_.values.empty()) {
    p_ = std::move(from);
    indexed_ = false;  // indexed when something is added to it
    return;
  }
  merge(static_cast<const pprof_partial&>(from));
}

void select_pprof(const block_data& block, std::span<const uint32_t> series, int64_t start_ns,
                  int64_t end_ns, const pprof_selector& sel, pprof_partial& out) {
  pprof_builder b(std::move(out));
  b.add(block, series, start_ns, end_ns, sel);
  out = b.take();
}

void merge_pprof(pprof_partial& into, const pprof_partial& from) {
  assert(&into != &from);
  if (into.profiles == 0 && into.values.empty()) {
    into = from;
    return;
  }
  pprof_builder b(std::move(into));
  b.merge(from);
  into = b.take();
}

std::string render_pprof(const pprof_partial& p, const pprof_options& opts) {
  const auto& syms = p.syms;
  std::vector<out_sample> samples;
  if (opts.max_nodes > 0) {
    samples = truncate(p, opts.max_nodes);
  } else {
    samples.resize(p.samples());
    for (size_t i = 0; i < p.samples(); ++i) {
      samples[i].locs.assign(p.stack_locations.begin() + p.stack_offsets[i],
                             p.stack_locations.begin() + p.stack_offsets[i + 1]);
      samples[i].value = p.values[i];
    }
  }

  // Dense output ids (1-based) for what the samples reference, in partial order; the synthetic
  // "other" location and function come last.
  std::vector<uint32_t> loc_id(syms.locations.size(), 0), fn_id(syms.functions.size(), 0),
      map_id(syms.mappings.size() + 1, 0);
  bool has_other = false;
  for (const auto& s : samples)
    for (uint32_t l : s.locs) {
      if (l == other_location)
        has_other = true;
      else
        loc_id[l] = 1;
    }
  uint32_t n_loc = 0, n_fn = 0, n_map = 0;
  for (uint32_t l = 0; l < loc_id.size(); ++l) {
    if (loc_id[l] == 0) continue;
    loc_id[l] = ++n_loc;
    const location_rec& r = syms.locations[l];
    if (r.mapping != 0) map_id[r.mapping] = 1;
    for (uint32_t i = 0; i < r.line_count; ++i) fn_id[syms.lines[r.line_begin + i].function] = 1;
  }
  for (auto& f : fn_id)
    if (f) f = ++n_fn;
  for (auto& m : map_id)
    if (m) m = ++n_map;
  const uint32_t other_loc_id = n_loc + 1, other_fn_id = n_fn + 1;

  // Map samples to output ids; samples whose stacks became equal (truncation) are merged.
  std::vector<std::pair<std::vector<uint64_t>, int64_t>> rows;
  rows.reserve(samples.size());
  for (const auto& s : samples) {
    std::vector<uint64_t> ids;
    ids.reserve(s.locs.size());
    for (uint32_t l : s.locs) ids.push_back(l == other_location ? other_loc_id : loc_id[l]);
    rows.emplace_back(std::move(ids), s.value);
  }
  std::sort(rows.begin(), rows.end());
  size_t w = 0;
  for (size_t r = 0; r < rows.size(); ++r) {
    if (w > 0 && rows[w - 1].first == rows[r].first) {
      rows[w - 1].second += rows[r].second;
    } else {
      if (w != r) rows[w] = std::move(rows[r]);  // never self-move: it would empty the vector
      ++w;
    }
  }
  rows.resize(w);

  string_table strings;
  encoder e, sub, packed;
  {  // sample_type = 1
    sub.reset();
    put_int_field(sub, 1, strings.add(opts.type.sample_type));
    put_int_field(sub, 2, strings.add(opts.type.sample_unit));
    put_bytes_field(e, 1, sub.buffer());
  }
  for (const auto& [ids, value] : rows) {  // sample = 2
    sub.reset();
    put_packed_field<uint64_t>(sub, packed, 1, ids);
    const int64_t v[] = {value};
    put_packed_field<int64_t>(sub, packed, 2, v);
    put_bytes_field(e, 2, sub.buffer());
  }
  for (uint32_t m = 1; m < map_id.size(); ++m) {  // mapping = 3
    if (map_id[m] == 0) continue;
    const mapping_rec& r = syms.mappings[m - 1];
    sub.reset();
    put_varint_field(sub, 1, map_id[m]);
    put_varint_field(sub, 2, r.memory_start);
    put_varint_field(sub, 3, r.memory_limit);
    put_varint_field(sub, 4, r.file_offset);
    put_int_field(sub, 5, strings.add(syms.strings[r.filename]));
    put_int_field(sub, 6, strings.add(syms.strings[r.build_id]));
    put_varint_field(sub, 7, (r.flags & mapping_has_functions) != 0);
    put_varint_field(sub, 8, (r.flags & mapping_has_filenames) != 0);
    put_varint_field(sub, 9, (r.flags & mapping_has_line_numbers) != 0);
    put_varint_field(sub, 10, (r.flags & mapping_has_inline_frames) != 0);
    put_bytes_field(e, 3, sub.buffer());
  }
  encoder line;
  const auto put_location = [&](uint32_t id, uint32_t mapping, uint64_t address,
                                std::span<const std::pair<uint32_t, int64_t>> lines) {
    sub.reset();
    put_varint_field(sub, 1, id);
    put_varint_field(sub, 2, mapping);
    put_varint_field(sub, 3, address);
    for (const auto& [fn, ln] : lines) {
      line.reset();
      put_varint_field(line, 1, fn);
      put_int_field(line, 2, ln);
      put_bytes_field(sub, 4, line.buffer());
    }
    put_bytes_field(e, 4, sub.buffer());
  };
  std::vector<std::pair<uint32_t, int64_t>> lines;
  for (uint32_t l = 0; l < loc_id.size(); ++l) {  // location = 4
    if (loc_id[l] == 0) continue;
    const location_rec& r = syms.locations[l];
    lines.clear();
    for (uint32_t i = 0; i < r.line_count; ++i) {
      const line_rec& ln = syms.lines[r.line_begin + i];
      lines.emplace_back(fn_id[ln.function], ln.line);
    }
    put_location(loc_id[l], r.mapping ? map_id[r.mapping] : 0, r.address, lines);
  }
  if (has_other) {
    const std::pair<uint32_t, int64_t> other_line[] = {{other_fn_id, 0}};
    put_location(other_loc_id, 0, 0, other_line);
  }
  const auto put_function = [&](uint32_t id, int64_t name, int64_t system_name, int64_t filename,
                                int64_t start_line) {
    sub.reset();
    put_varint_field(sub, 1, id);
    put_int_field(sub, 2, name);
    put_int_field(sub, 3, system_name);
    put_int_field(sub, 4, filename);
    put_int_field(sub, 5, start_line);
    put_bytes_field(e, 5, sub.buffer());
  };
  for (uint32_t f = 0; f < fn_id.size(); ++f) {  // function = 5
    if (fn_id[f] == 0) continue;
    const function_rec& r = syms.functions[f];
    put_function(fn_id[f], strings.add(syms.strings[r.name]),
                 strings.add(syms.strings[r.system_name]), strings.add(syms.strings[r.filename]),
                 r.start_line);
  }
  if (has_other) {
    const int64_t other = strings.add("other");
    put_function(other_fn_id, other, other, 0, 0);
  }
  const int64_t period_type = strings.add(opts.type.period_type);
  const int64_t period_unit = strings.add(opts.type.period_unit);
  for (std::string_view s : strings.strings()) put_bytes_field(e, 6, s);  // string_table = 6
  if (p.profiles > 0) {
    put_int_field(e, 9, p.first_ns);                   // time_nanos
    put_int_field(e, 10, p.last_end_ns - p.first_ns);  // duration_nanos
  }
  sub.reset();  // period_type = 11
  put_int_field(sub, 1, period_type);
  put_int_field(sub, 2, period_unit);
  put_bytes_field(e, 11, sub.buffer());
  put_int_field(e, 12, opts.period != 0 ? opts.period : p.period);
  return e.release();
}

}  // namespace hearth::query
