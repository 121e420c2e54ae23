#include "query/pprof_export.hpp"

#include <algorithm>
#include <array>
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

/// Samples as location lists, leaf first: sample i has the locations
/// locs[offsets[i], offsets[i + 1]) and value values[i]. `other_location` is the synthetic
/// truncation location.
constexpr uint32_t other_location = unset;

struct flat_samples {
  std::vector<uint32_t> offsets{0};
  std::vector<uint32_t> locs;
  std::vector<int64_t> values;
  size_t size() const { return values.size(); }
  std::span<const uint32_t> stack(size_t i) const {
    return std::span<const uint32_t>(locs).subspan(offsets[i], offsets[i + 1] - offsets[i]);
  }
};

/// Whether the partial's nodes keep the rules of pprof_partial: three arrays of one size >= 1,
/// parents before their children, locations in range.
bool well_formed_nodes(const pprof_partial& p) {
  const size_t n = p.values.size();
  if (n == 0 || p.stack_parents.size() != n || p.stack_locations.size() != n) return false;
  for (size_t i = 1; i < n; ++i)
    if (p.stack_parents[i] >= i || p.stack_locations[i] >= p.syms.locations.size()) return false;
  return true;
}

/// The partial's samples (its nodes with a value, in node order) as location lists. A node that
/// breaks the rules of pprof_partial, or descends from one that does, is left out.
flat_samples flatten(const pprof_partial& p) {
  flat_samples out;
  const size_t n = std::min({p.values.size(), p.stack_parents.size(), p.stack_locations.size()});
  std::vector<bool> ok(n, false);
  if (n > 0) ok[0] = true;
  for (size_t i = 1; i < n; ++i) {
    const uint32_t parent = p.stack_parents[i];
    ok[i] = parent < i && ok[parent] && p.stack_locations[i] < p.syms.locations.size();
    if (!ok[i] || p.values[i] == 0) continue;
    for (uint32_t cur = static_cast<uint32_t>(i); cur != 0; cur = p.stack_parents[cur])
      out.locs.push_back(p.stack_locations[cur]);
    out.offsets.push_back(static_cast<uint32_t>(out.locs.size()));
    out.values.push_back(p.values[i]);
  }
  return out;
}

/// Pyroscope's pprof truncation over the function call tree (see pprof_options::max_nodes).
flat_samples truncate(const symbols& syms, const flat_samples& in, int64_t max_nodes) {
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
  std::unordered_map<uint64_t, uint32_t> node_ids;  // (parent << 32 | frame) -> node
  std::vector<int64_t> totals{0};                   // node 0: the root
  std::vector<uint32_t> path_offsets{0}, paths;     // per sample: nodes root to leaf
  for (size_t i = 0; i < in.size(); ++i) {
    uint32_t node = 0;
    for (uint32_t k = in.offsets[i + 1]; k-- > in.offsets[i];) {
      const uint32_t loc = in.locs[k];
      for (uint32_t j = 0; j < frames_in(loc); ++j) {
        const uint64_t key = (uint64_t{node} << 32) ^ frame_of(loc, j);
        auto [it, added] = node_ids.try_emplace(key, static_cast<uint32_t>(totals.size()));
        if (added) totals.push_back(0);
        node = it->second;
        totals[node] += in.values[i];
        paths.push_back(node);
      }
    }
    path_offsets.push_back(static_cast<uint32_t>(paths.size()));
  }
  int64_t threshold = std::numeric_limits<int64_t>::min();
  if (static_cast<int64_t>(totals.size()) - 1 > max_nodes) {
    std::vector<int64_t> sorted(totals.begin() + 1, totals.end());
    std::nth_element(sorted.begin(), sorted.begin() + (max_nodes - 1), sorted.end(),
                     std::greater<>());
    threshold = sorted[max_nodes - 1];
  }
  flat_samples out;
  for (size_t i = 0; i < in.size(); ++i) {
    // The deepest kept frame decides how many root-side locations stay (a location stays whole
    // if any of its frames is kept).
    int64_t deepest = -1;
    for (uint32_t f = path_offsets[i]; f < path_offsets[i + 1]; ++f)
      if (totals[paths[f]] >= threshold) deepest = static_cast<int64_t>(f - path_offsets[i]);
    const uint32_t begin = in.offsets[i], end = in.offsets[i + 1];
    int64_t frames = 0;
    uint32_t keep_from = end;  // locations [keep_from, end) are kept
    while (keep_from > begin && frames <= deepest) {
      --keep_from;
      frames += frames_in(in.locs[keep_from]);
    }
    // The cut leaf side becomes one "other" location (leaf first).
    if (keep_from > begin) out.locs.push_back(other_location);
    out.locs.insert(out.locs.end(), in.locs.begin() + keep_from, in.locs.begin() + end);
    out.offsets.push_back(static_cast<uint32_t>(out.locs.size()));
    out.values.push_back(in.values[i]);
  }
  return out;
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

/// A builder's tables over its partial, handed over with it. `sizes` are the partial's table
/// sizes when they were taken: a partial changed since no longer matches and is indexed again.
struct pprof_index {
  symbol_interner interner;
  pair_table nodes;
  std::vector<uint32_t> callee;
  std::array<size_t, 6> sizes{};
};

namespace {

std::array<size_t, 6> table_sizes(const pprof_partial& p) {
  return {p.syms.strings.size(),   p.syms.mappings.size(), p.syms.functions.size(),
          p.syms.locations.size(), p.syms.lines.size(),    p.values.size()};
}

}  // namespace

pprof_builder::pprof_builder() = default;

pprof_builder::pprof_builder(pprof_partial p) {
  adopt(std::move(p));
}

/// Takes `p` as the builder's partial, and its index when it is p's alone and still matches.
void pprof_builder::adopt(pprof_partial&& p) {
  std::shared_ptr<pprof_index> ix = std::move(p.index);
  p_ = std::move(p);
  callee_.clear();
  indexed_ = false;  // indexed when something is added to it
  if (ix && ix.use_count() == 1 && ix->sizes == table_sizes(p_) &&
      p_.stack_parents.size() == p_.values.size() &&
      p_.stack_locations.size() == p_.values.size()) {
    interner_ = std::move(ix->interner);
    nodes_ = std::move(ix->nodes);
    callee_ = std::move(ix->callee);
    indexed_ = true;
  }
}

void pprof_builder::index() {
  indexed_ = true;
  interner_.clear();
  nodes_.clear();
  callee_.clear();
  if (!well_formed_nodes(p_)) {  // a partial from elsewhere: keep what is sound of it
    pprof_partial from = std::move(p_);
    p_ = pprof_partial();
    merge(from);
    return;
  }
  interner_.index(p_.syms);
  nodes_.reserve(p_.values.size());
  for (uint32_t i = 1; i < p_.values.size(); ++i)
    nodes_.find_or_insert(p_.stack_parents[i], p_.stack_locations[i], [&] { return i; });
}

pprof_partial pprof_builder::take() {
  pprof_partial out = std::move(p_);
  p_ = pprof_partial();
  if (indexed_ && !out.empty()) {
    auto ix = std::make_shared<pprof_index>();
    ix->interner = std::move(interner_);
    ix->nodes = std::move(nodes_);
    ix->callee = std::move(callee_);
    ix->sizes = table_sizes(out);
    out.index = std::move(ix);
  }
  interner_.clear();
  nodes_.clear();
  callee_.clear();
  indexed_ = true;
  return out;
}

/// The node (parent, location), added (with value 0) when new.
uint32_t pprof_builder::node(uint32_t parent, uint32_t location) {
  return nodes_.find_or_insert(parent, location, [&] {
    p_.stack_parents.push_back(parent);
    p_.stack_locations.push_back(location);
    p_.values.push_back(0);
    return static_cast<uint32_t>(p_.values.size() - 1);
  });
}

/// The partial's node for node `b` of `block`'s stack tree (its path of locations, unchanged),
/// or `bad` when the path breaks the block's rules. `memo` holds the answers by block node
/// (memo[0] = 0, the root; unset = not yet known): each block node is mapped once.
uint32_t pprof_builder::block_node(const block_data& block, source& src,
                                   std::vector<uint32_t>& memo, uint32_t b) {
  return map_stack_node(block, memo, path_, b, unset, bad, [&](uint32_t parent, uint32_t loc) {
    const uint32_t l = location(src, loc);
    return l == bad ? bad : node(parent, l);
  });
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

/// Maps the locations of `src` marked in `used` (those not mapped yet) at once: their functions
/// and mappings one by one, then the locations through symbol_interner::locations, whose table
/// lookups overlap. A location with an inconsistent reference is left to location().
void pprof_builder::premap_locations(source& src, const std::vector<bool>& used) {
  {
    // The strings of their functions first, then the functions, each at once.
    std::vector<bool> str_used(src.str.size(), false), fn_used(src.fn.size(), false);
    for (uint32_t l = 0; l < used.size() && l < src.loc.size(); ++l) {
      if (!used[l] || src.loc[l] != unset) continue;
      const location_rec& r = src.syms.locations[l];
      if (uint64_t{r.line_begin} + r.line_count > src.syms.lines.size()) continue;
      for (uint32_t i = 0; i < r.line_count; ++i) {
        const uint32_t f = src.syms.lines[r.line_begin + i].function;
        if (f >= src.fn.size() || src.fn[f] != unset) continue;
        fn_used[f] = true;
        const function_rec& fr = src.syms.functions[f];
        for (uint32_t x : {fr.name, fr.system_name, fr.filename})
          if (x < str_used.size() && src.str[x] == unset) str_used[x] = true;
      }
    }
    std::vector<std::string_view> vs;
    std::vector<uint32_t> ids;
    for (uint32_t x = 0; x < str_used.size(); ++x)
      if (str_used[x]) {
        vs.push_back(src.syms.strings[x]);
        ids.push_back(x);
      }
    std::vector<uint32_t> out(vs.size());
    interner_.strings(p_.syms, vs, out);
    for (size_t i = 0; i < ids.size(); ++i) src.str[ids[i]] = out[i];
    // Then the functions, at once.
    std::vector<function_rec> fs;
    ids.clear();
    for (uint32_t f = 0; f < fn_used.size(); ++f) {
      if (!fn_used[f]) continue;
      const function_rec& r = src.syms.functions[f];
      const function_rec mapped{string(src, r.name), string(src, r.system_name),
                                string(src, r.filename), r.start_line};
      if (mapped.name == bad || mapped.system_name == bad || mapped.filename == bad) continue;
      fs.push_back(mapped);
      ids.push_back(f);
    }
    out.resize(fs.size());
    interner_.functions(p_.syms, fs, out);
    for (size_t i = 0; i < ids.size(); ++i) src.fn[ids[i]] = out[i];
  }
  std::vector<symbol_interner::location_key> keys;
  std::vector<uint32_t> which;
  std::vector<line_rec>& lines = lines_;
  lines.clear();
  for (uint32_t l = 0; l < used.size() && l < src.loc.size(); ++l) {
    if (!used[l] || src.loc[l] != unset) continue;
    const location_rec& r = src.syms.locations[l];
    if (uint64_t{r.line_begin} + r.line_count > src.syms.lines.size()) continue;
    const auto begin = static_cast<uint32_t>(lines.size());
    bool ok = true;
    for (uint32_t i = 0; i < r.line_count && ok; ++i) {
      const line_rec& ln = src.syms.lines[r.line_begin + i];
      const uint32_t f = function(src, ln.function);
      ok = f != bad;
      lines.push_back({f, ln.line});
    }
    uint32_t m = 0;
    if (ok && r.mapping != 0) {
      m = mapping(src, r.mapping - 1);
      ok = m != bad;
    }
    if (!ok) {
      lines.resize(begin);
      continue;
    }
    keys.push_back({r.address, m, begin, r.line_count});
    which.push_back(l);
  }
  std::vector<uint32_t> out(keys.size());
  interner_.locations(p_.syms, keys, lines, out);
  for (size_t i = 0; i < which.size(); ++i) src.loc[which[i]] = out[i];
}

/// without_callee_line() for the partial locations `ls` at once (repeats allowed), the new
/// locations' lookups overlapping.
void pprof_builder::premap_callee_lines(std::span<const uint32_t> ls) {
  if (callee_.size() < p_.syms.locations.size()) callee_.resize(p_.syms.locations.size(), unset);
  std::vector<symbol_interner::location_key> keys;
  std::vector<uint32_t> which;
  std::vector<line_rec>& lines = lines_;
  lines.clear();
  for (uint32_t l : ls) {
    if (l >= callee_.size() || callee_[l] != unset) continue;
    const location_rec r = p_.syms.locations[l];
    if (r.line_count == 0 || p_.syms.lines[r.line_begin].line == 0) {
      callee_[l] = l;
      continue;
    }
    callee_[l] = bad;  // pending: a repeat in `ls` is skipped
    keys.push_back({r.address, r.mapping, static_cast<uint32_t>(lines.size()), r.line_count});
    lines.insert(lines.end(), p_.syms.lines.begin() + r.line_begin,
                 p_.syms.lines.begin() + r.line_begin + r.line_count);
    lines[keys.back().line_begin].line = 0;
    which.push_back(l);
  }
  std::vector<uint32_t> out(keys.size());
  interner_.locations(p_.syms, keys, lines, out);
  for (size_t i = 0; i < which.size(); ++i) callee_[which[i]] = out[i];
}

/// The partial's node for the path of block node `x` and its `j - 1` nearest ancestors (all of
/// its path when it is shallower), or `bad`: node(chain(parent, j - 1), location of x), with
/// chain(x, 0) = chain(0, j) = the root. chains[j - 1][x] holds the answers (unset: not yet known).
uint32_t pprof_builder::chain_node(const block_data& block, source& src,
                                   std::vector<std::vector<uint32_t>>& chains, uint32_t x,
                                   uint32_t j) {
  if (j == 0 || x == 0) return 0;
  uint32_t& known = chains[j - 1][x];
  if (known != unset) return known;
  const uint32_t parent = block.stacks[x].parent;
  if (parent >= x) return known = bad;  // corrupt: parents precede children
  const uint32_t up = chain_node(block, src, chains, parent, j - 1);
  const uint32_t l = location(src, block.stacks[x].location);
  return known = up == bad || l == bad ? bad : node(up, l);
}

/// The location equal to partial location `l` with its innermost line number zeroed.
uint32_t pprof_builder::without_callee_line(uint32_t l) {
  if (l < callee_.size() && callee_[l] != unset) return callee_[l];
  const location_rec r = p_.syms.locations[l];
  uint32_t out = l;
  if (r.line_count != 0 && p_.syms.lines[r.line_begin].line != 0) {
    std::vector<line_rec>& lines = lines_;
    lines.assign(p_.syms.lines.begin() + r.line_begin,
                 p_.syms.lines.begin() + r.line_begin + r.line_count);
    lines[0].line = 0;
    out = interner_.location(p_.syms, r.address, lines, r.mapping);
  }
  if (callee_.size() < p_.syms.locations.size()) callee_.resize(p_.syms.locations.size(), unset);
  callee_[l] = out;
  return out;
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

  if (p_.values.size() <= 1) nodes_.reserve(touched.size());
  source src(block.syms);
  std::vector<uint32_t> memo(block.stacks.size(), unset);
  if (!memo.empty()) memo[0] = 0;
  const uint32_t keep_locations = sel.pgo ? sel.pgo->keep_locations : 0;
  const bool zero_callee_line = sel.pgo && sel.pgo->aggregate_callees;
  // GoPGO keeps a stack's keep_locations leaf-most locations: the leaf under the chain of its
  // parent's keep_locations - 1 nearest, memoized per (block node, chain length) up to
  // max_chain_memo, walked per stack beyond.
  constexpr uint32_t max_chain_memo = 8;
  std::vector<std::vector<uint32_t>> chains;
  if (keep_locations > 1 && keep_locations <= max_chain_memo)
    chains.assign(keep_locations - 1, std::vector<uint32_t>(block.stacks.size(), unset));
  {
    // The locations of the stack nodes mapped below: each touched stack and its ancestors (only
    // its keep_locations leaf-most nodes for GoPGO), all mapped at once.
    std::vector<bool> used(block.syms.locations.size(), false);
    // Per node: how many nodes from it towards the root were marked (a later walk that would
    // mark no more stops there).
    std::vector<uint32_t> marked(block.stacks.size(), 0);
    for (uint32_t s : touched) {
      if (sums[s] == 0) continue;
      uint32_t left = keep_locations > 0 ? keep_locations : UINT32_MAX;
      for (uint32_t cur = s; cur != 0 && left > 0 && marked[cur] < left; --left) {
        marked[cur] = keep_locations > 0 ? left : UINT32_MAX;
        if (block.stacks[cur].location < used.size()) used[block.stacks[cur].location] = true;
        if (block.stacks[cur].parent >= cur) break;
        cur = block.stacks[cur].parent;
      }
    }
    premap_locations(src, used);
    if (zero_callee_line) {
      std::vector<uint32_t> leaves;
      for (uint32_t s : touched)
        if (sums[s] != 0 && block.stacks[s].location < src.loc.size() &&
            src.loc[block.stacks[s].location] < bad)
          leaves.push_back(src.loc[block.stacks[s].location]);
      premap_callee_lines(leaves);
    }
  }
  std::vector<uint32_t> leafmost;  // block locations, leaf first
  for (uint32_t s : touched) {
    if (sums[s] == 0) continue;
    const uint32_t parent = block.stacks[s].parent;
    if (parent >= s) continue;  // corrupt: parents precede children
    uint32_t n = bad;           // the partial node of the parent's part of the stack
    if (keep_locations == 0) {
      n = block_node(block, src, memo, parent);
    } else if (keep_locations <= max_chain_memo) {
      n = chain_node(block, src, chains, parent, keep_locations - 1);
    } else {
      leafmost.clear();
      for (uint32_t cur = s; cur != 0 && leafmost.size() <= keep_locations;
           cur = block.stacks[cur].parent) {
        if (block.stacks[cur].parent >= cur) break;
        leafmost.push_back(block.stacks[cur].location);
      }
      if (leafmost.size() <= keep_locations) {  // not cut
        n = block_node(block, src, memo, parent);
      } else {
        n = 0;
        for (uint32_t k = keep_locations - 1; k >= 1 && n != bad; --k) {
          const uint32_t l = location(src, leafmost[k]);
          n = l == bad ? bad : node(n, l);
        }
      }
    }
    uint32_t l = location(src, block.stacks[s].location);
    if (n == bad || l == bad) continue;
    if (zero_callee_line) l = without_callee_line(l);
    p_.values[node(n, l)] += sums[s];
  }
  note_time(p_, first, last_end, profiles);
}

void pprof_builder::merge(const pprof_partial& from) {
  assert(&p_ != &from);
  if (!indexed_) index();
  p_.period = std::max(p_.period, from.period);
  const size_t n = from.values.size();
  if (n > 1 && from.stack_parents.size() == n && from.stack_locations.size() == n) {
    source src(from.syms);
    std::vector<bool> used(from.syms.locations.size(), false);
    for (size_t i = 1; i < n; ++i)
      if (from.stack_locations[i] < used.size()) used[from.stack_locations[i]] = true;
    premap_locations(src, used);
    std::vector<uint32_t> to(n, bad);  // from's node -> ours
    to[0] = 0;
    for (size_t i = 1; i < n; ++i) {
      const uint32_t parent = from.stack_parents[i];
      if (parent >= i || to[parent] == bad) continue;
      const uint32_t l = location(src, from.stack_locations[i]);
      if (l == bad) continue;
      to[i] = node(to[parent], l);
      p_.values[to[i]] += from.values[i];
    }
  }
  note_time(p_, from.first_ns, from.last_end_ns, from.profiles);
}

void pprof_builder::merge(pprof_partial&& from) {
  if (p_.empty()) {
    adopt(std::move(from));
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

size_t pprof_partial::samples() const {
  size_t n = 0;
  for (size_t i = 1; i < values.size(); ++i) n += values[i] != 0;
  return n;
}

void merge_pprof(pprof_partial& into, const pprof_partial& from) {
  assert(&into != &from);
  if (into.empty()) {
    into = from;
    return;
  }
  pprof_builder b(std::move(into));
  b.merge(from);
  into = b.take();
}

std::string render_pprof(const pprof_partial& p, const pprof_options& opts) {
  const auto& syms = p.syms;
  flat_samples samples = flatten(p);
  if (opts.max_nodes > 0) samples = truncate(syms, samples, opts.max_nodes);

  // Dense output ids (1-based) for what the samples reference, in partial order; the synthetic
  // "other" location and function come last.
  std::vector<uint32_t> loc_id(syms.locations.size(), 0), fn_id(syms.functions.size(), 0),
      map_id(syms.mappings.size() + 1, 0);
  bool has_other = false;
  for (uint32_t l : samples.locs) {
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

  // Samples in output ids, sorted by their id lists; samples whose stacks became equal
  // (truncation) are written as one.
  for (uint32_t& l : samples.locs) l = l == other_location ? other_loc_id : loc_id[l];
  std::vector<uint32_t> order(samples.size());
  for (uint32_t i = 0; i < order.size(); ++i) order[i] = i;
  std::sort(order.begin(), order.end(), [&](uint32_t x, uint32_t y) {
    return std::ranges::lexicographical_compare(samples.stack(x), samples.stack(y));
  });

  string_table strings;
  encoder e, sub, packed;
  {  // sample_type = 1
    sub.reset();
    put_int_field(sub, 1, strings.add(opts.type.sample_type));
    put_int_field(sub, 2, strings.add(opts.type.sample_unit));
    put_bytes_field(e, 1, sub.buffer());
  }
  for (size_t k = 0; k < order.size();) {  // sample = 2
    const std::span<const uint32_t> ids = samples.stack(order[k]);
    int64_t value = 0;
    for (; k < order.size() && std::ranges::equal(samples.stack(order[k]), ids); ++k)
      value += samples.values[order[k]];
    sub.reset();
    put_packed_field<uint32_t>(sub, packed, 1, ids);
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
