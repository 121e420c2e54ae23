#include "format/compact.hpp"

#include <algorithm>
#include <numeric>
#include <string>
#include <tuple>
#include <vector>

#include "format/coding.hpp"
#include "format/normalize.hpp"
#include "format/sample_sort.hpp"

// Two passes over the inputs:
//   1. rows: time filter, series re-interning, replica de-duplication and grouping (one group per
//      output row: a single row, or all rows of a (series, bucket) in a rollup);
//   2. samples, group by group: each input stack node is remapped to an output node (interning
//      its location, mapping, lines, functions and strings on first use) and summed per output
//      node.
// Everything is remapped lazily through per-input vectors, so an input id costs one hash lookup
// the first time it is used and one vector read after that, and nothing unused reaches the output.
// merge_segments runs the same passes over segment_columns, but pass 2 visits the output rows in
// file order and writes each row's pairs straight into the output's encoded columns: the pairs
// exist as sample_recs one row at a time.

namespace hearth {
namespace {

constexpr uint32_t unmapped = UINT32_MAX;

// floor(t / b) * b, clamped to INT64_MIN when that is not representable.
int64_t bucket_start(int64_t t, int64_t b) {
  int64_t r = t % b;
  if (r < 0) r += b;
  if (t < std::numeric_limits<int64_t>::min() + r) return std::numeric_limits<int64_t>::min();
  return t - r;
}

std::string str(uint64_t v) {
  return std::to_string(v);
}

class merger {
 public:
  merger(std::span<const block_data* const> inputs, const merge_options& opts)
      : in_(inputs), opts_(opts), maps_(inputs.size()) {}
  merger(std::span<const segment_columns* const> inputs, const merge_options& opts)
      : cols_(inputs), opts_(opts), maps_(inputs.size()) {
    for (const segment_columns* c : inputs) blocks_.push_back(&c->block());
    in_ = blocks_;
  }

  result<block_data> run(merge_stats* stats) {
    select_rows();
    if (failed_) return std::move(err_);
    build_rows();
    if (failed_) return std::move(err_);
    if (stats != nullptr) {
      stats_.output_profiles = out_.profiles.size();
      stats_.output_samples = out_.samples.size();
      *stats = stats_;
    }
    return std::move(out_);
  }

  result<merged_segment> run_streaming(merge_stats* stats) {
    select_rows();
    if (failed_) return std::move(err_);
    merged_segment m;
    stream_rows(m.samples);
    if (failed_) return std::move(err_);
    if (stats != nullptr) {
      stats_.output_profiles = out_.profiles.size();
      stats_.output_samples = m.samples.count;
      *stats = stats_;
    }
    m.block = std::move(out_);
    return m;
  }

 private:
  // Input id -> output id, unmapped until first used. One per input.
  struct input_maps {
    std::vector<uint32_t> str, map, fn, loc, node, series;  // map: 1-based, [0] = 0
  };
  struct dedupe_key {
    uint32_t series;
    int64_t time;
    uint64_t id_hi, id_lo;
  };
  struct group {
    profile_row row;  // series, time, duration and ids; samples filled in pass 2
    uint32_t members = 0;
    int64_t bucket = 0;  // rollups: the bucket's start
    int64_t end_ns = 0;  // rollups: the latest end of a member
  };
  struct member {
    uint32_t input, row, group;
  };

  void fail(size_t input, std::string what) {
    if (failed_) return;
    failed_ = true;
    err_ = error{errc::invalid_argument, "merge_blocks: input " + str(input) + ": " + what};
  }

  void fail_corrupt(size_t input, const error& e) {
    if (failed_) return;
    failed_ = true;
    err_ = error{e.code, "merge_segments: input " + str(input) + ": " + e.message};
  }

  // ---- symbols
  // -----------------------------------------------------------------------------------

  uint32_t map_string(size_t i, uint32_t s) {
    const block_data& b = *in_[i];
    if (s >= b.syms.strings.size()) {
      fail(i, "string " + str(s) + " out of range (" + str(b.syms.strings.size()) + " strings)");
      return 0;
    }
    uint32_t& m = maps_[i].str[s];
    if (m == unmapped) m = syms_.string(out_.syms, b.syms.strings[s]);
    return m;
  }

  // `mp` is 1-based (location_rec::mapping); 0 (no mapping) maps to 0.
  uint32_t map_mapping(size_t i, uint32_t mp) {
    const block_data& b = *in_[i];
    if (mp > b.syms.mappings.size()) {
      fail(i, "mapping " + str(mp) + " out of range (" + str(b.syms.mappings.size()) + ")");
      return 0;
    }
    uint32_t& m = maps_[i].map[mp];
    if (m == unmapped) {
      mapping_rec o = b.syms.mappings[mp - 1];
      o.filename = map_string(i, o.filename);
      o.build_id = map_string(i, o.build_id);
      m = syms_.mapping(out_.syms, o);
    }
    return m;
  }

  uint32_t map_function(size_t i, uint32_t f) {
    const block_data& b = *in_[i];
    if (f >= b.syms.functions.size()) {
      fail(i, "function " + str(f) + " out of range (" + str(b.syms.functions.size()) + ")");
      return 0;
    }
    uint32_t& m = maps_[i].fn[f];
    if (m == unmapped) {
      const function_rec& r = b.syms.functions[f];
      function_rec o{map_string(i, r.name), map_string(i, r.system_name), map_string(i, r.filename),
                     r.start_line};
      m = syms_.function(out_.syms, o);
    }
    return m;
  }

  uint32_t map_location(size_t i, uint32_t l) {
    const block_data& b = *in_[i];
    if (l >= b.syms.locations.size()) {
      fail(i, "location " + str(l) + " out of range (" + str(b.syms.locations.size()) + ")");
      return 0;
    }
    uint32_t& m = maps_[i].loc[l];
    if (m == unmapped) {
      const location_rec& r = b.syms.locations[l];
      if (uint64_t{r.line_begin} + r.line_count > b.syms.lines.size()) {
        fail(i, "location " + str(l) + " lines out of range");
        return 0;
      }
      lines_.clear();
      for (uint32_t k = 0; k < r.line_count; ++k) {
        const line_rec& x = b.syms.lines[r.line_begin + k];
        lines_.push_back(line_rec{map_function(i, x.function), x.line});
      }
      m = syms_.location(out_.syms, r.address, lines_, map_mapping(i, r.mapping));
    }
    return m;
  }

  // ---- stack tree
  // --------------------------------------------------------------------------------

  uint32_t intern_node(uint32_t parent, uint32_t location) {
    return nodes_.find_or_insert(parent, location, [&] {
      out_.stacks.push_back(stack_node{parent, location});
      return static_cast<uint32_t>(out_.stacks.size() - 1);
    });
  }

  // Requires: 0 < n < stacks.size(). Walks up to the nearest mapped ancestor (the root is always
  // mapped), then interns the path back down, so each input node is interned once.
  uint32_t map_node(size_t i, uint32_t n) {
    const uint32_t mapped = maps_[i].node[n];
    return mapped != unmapped ? mapped : intern_path(i, n);
  }

  // map_node for a node not mapped yet.
  [[gnu::noinline]] uint32_t intern_path(size_t i, uint32_t n) {
    const block_data& b = *in_[i];
    std::vector<uint32_t>& m = maps_[i].node;
    path_.clear();
    for (uint32_t cur = n; m[cur] == unmapped;) {
      path_.push_back(cur);
      const uint32_t parent = b.stacks[cur].parent;
      if (parent >= cur) {
        fail(i, "stack node " + str(cur) + " parent " + str(parent) + " is not below its id");
        return 0;
      }
      cur = parent;
    }
    uint32_t node = m[b.stacks[path_.back()].parent];
    for (size_t k = path_.size(); k-- > 0;) {
      const uint32_t id = path_[k];
      const uint32_t loc = map_location(i, b.stacks[id].location);
      if (failed_) return 0;
      node = intern_node(node, loc);
      m[id] = node;
    }
    return node;
  }

  // ---- series
  // ------------------------------------------------------------------------------------

  uint32_t map_series(size_t i, uint32_t s) {
    const block_data& b = *in_[i];
    uint32_t& m = maps_[i].series[s];
    if (m != unmapped) return m;
    const series_rec& sr = b.series[s];
    if (uint64_t{sr.label_begin} + sr.label_count > b.labels.size()) {
      fail(i, "series " + str(s) + " labels out of range");
      return 0;
    }
    // Same strings, same order: the input's sorted label names stay sorted.
    label_scratch_.clear();
    uint64_t h = hash_mix(0x5e1, sr.label_count);
    for (uint32_t k = 0; k < sr.label_count; ++k) {
      const label_ref& l = b.labels[sr.label_begin + k];
      label_ref r{map_string(i, l.name), map_string(i, l.value)};
      label_scratch_.push_back(r);
      h = hash_mix(hash_mix(h, r.name), r.value);
    }
    if (failed_) return 0;
    m = series_.find_or_insert(
        h,
        [&](uint32_t id) {
          const series_rec& o = out_.series[id];
          return o.label_count == label_scratch_.size() &&
                 std::equal(label_scratch_.begin(), label_scratch_.end(),
                            out_.labels.begin() + o.label_begin,
                            [](const label_ref& x, const label_ref& y) {
                              return x.name == y.name && x.value == y.value;
                            });
        },
        [&] {
          series_rec o;
          o.label_begin = static_cast<uint32_t>(out_.labels.size());
          o.label_count = static_cast<uint32_t>(label_scratch_.size());
          out_.labels.insert(out_.labels.end(), label_scratch_.begin(), label_scratch_.end());
          out_.series.push_back(o);
          return static_cast<uint32_t>(out_.series.size() - 1);
        });
    return m;
  }

  // ---- pass 1: rows
  // ------------------------------------------------------------------------------

  // True if the row is a replica of one already kept.
  bool is_replica(uint32_t series, const profile_row& r) {
    if (!opts_.dedupe || (r.id_hi == 0 && r.id_lo == 0)) return false;
    const dedupe_key k{series, r.time_ns, r.id_hi, r.id_lo};
    uint64_t h = hash_mix(hash_mix(0xd0, series), static_cast<uint64_t>(r.time_ns));
    h = hash_mix(hash_mix(h, r.id_hi), r.id_lo);
    const size_t before = dedupe_keys_.size();
    dedupe_.find_or_insert(
        h,
        [&](uint32_t id) {
          const dedupe_key& o = dedupe_keys_[id];
          return o.series == k.series && o.time == k.time && o.id_hi == k.id_hi &&
                 o.id_lo == k.id_lo;
        },
        [&] {
          dedupe_keys_.push_back(k);
          return static_cast<uint32_t>(dedupe_keys_.size() - 1);
        });
    return dedupe_keys_.size() == before;
  }

  uint32_t group_of(uint32_t series, const profile_row& r) {
    if (opts_.bucket_ns == 0) {
      group g;
      g.row = r;
      g.row.series = series;
      groups_.push_back(g);
      return static_cast<uint32_t>(groups_.size() - 1);
    }
    const int64_t t = bucket_start(r.time_ns, opts_.bucket_ns);
    const uint32_t id = buckets_.find_or_insert(
        hash_mix(hash_mix(0xb0c, series), static_cast<uint64_t>(t)),
        [&](uint32_t id) { return groups_[id].row.series == series && groups_[id].bucket == t; },
        [&] {
          group g;
          g.row.series = series;
          g.row.time_ns = r.time_ns;
          g.bucket = t;
          g.end_ns = r.end_ns();
          groups_.push_back(g);
          return static_cast<uint32_t>(groups_.size() - 1);
        });
    // The row spans its members: from the earliest time to the latest end.
    group& g = groups_[id];
    g.row.time_ns = std::min(g.row.time_ns, r.time_ns);
    g.end_ns = std::max(g.end_ns, r.end_ns());
    if (__builtin_sub_overflow(g.end_ns, g.row.time_ns, &g.row.duration_ns))
      g.row.duration_ns = std::numeric_limits<int64_t>::max();
    return id;
  }

  void select_rows() {
    for (size_t i = 0; i < in_.size(); ++i) {
      const block_data& b = *in_[i];
      input_maps& m = maps_[i];
      m.str.assign(b.syms.strings.size(), unmapped);
      m.map.assign(b.syms.mappings.size() + 1, unmapped);
      m.map[0] = 0;  // no mapping stays no mapping
      m.fn.assign(b.syms.functions.size(), unmapped);
      m.loc.assign(b.syms.locations.size(), unmapped);
      m.node.assign(b.stacks.size(), unmapped);
      if (!m.node.empty()) m.node[0] = 0;  // the root sentinel maps to the root
      m.series.assign(b.series.size(), unmapped);
      stats_.input_profiles += b.profiles.size();
      for (size_t r = 0; r < b.profiles.size(); ++r) {
        const profile_row& p = b.profiles[r];
        stats_.input_samples += p.sample_count;
        if (p.time_ns < opts_.start_ns || p.time_ns >= opts_.end_ns) continue;
        if (p.series >= b.series.size()) {
          fail(i, "profile " + str(r) + " series " + str(p.series) + " out of range");
          return;
        }
        if (cols_.empty() && uint64_t{p.sample_begin} + p.sample_count > b.samples.size()) {
          fail(i, "profile " + str(r) + " samples out of range");
          return;
        }
        const uint32_t series = map_series(i, p.series);
        if (failed_) return;
        if (is_replica(series, p)) {
          ++stats_.duplicates;
          continue;
        }
        const uint32_t g = group_of(series, p);
        ++groups_[g].members;
        members_.push_back(member{static_cast<uint32_t>(i), static_cast<uint32_t>(r), g});
        kept_samples_ += p.sample_count;
      }
    }
  }

  // ---- pass 2: samples
  // ---------------------------------------------------------------------------

  // Members ordered by group (a stable counting sort; the identity when not rolling up): group
  // g's members are order[start[g], start[g + 1]).
  void order_members(std::vector<uint32_t>& start, std::vector<uint32_t>& order) const {
    start.assign(groups_.size() + 1, 0);
    for (size_t g = 0; g < groups_.size(); ++g) start[g + 1] = start[g] + groups_[g].members;
    order.assign(members_.size(), 0);
    std::vector<uint32_t> next(start.begin(), start.end() - 1);
    for (size_t k = 0; k < members_.size(); ++k)
      order[next[members_[k].group]++] = static_cast<uint32_t>(k);
  }

  // Appends the pairs of members order[begin, end) to `dst`, remapped to output nodes and summed
  // per output node (node_slot_ holds each node's index in `dst`; reset_slots clears it).
  void gather(uint32_t begin, uint32_t end, const std::vector<uint32_t>& order,
              std::vector<sample_rec>& dst) {
    for (uint32_t k = begin; k < end; ++k) {
      const member& mb = members_[order[k]];
      const block_data& b = *in_[mb.input];
      const profile_row& p = b.profiles[mb.row];
      std::span<const sample_rec> pairs;
      if (cols_.empty()) {
        pairs = std::span(b.samples).subspan(p.sample_begin, p.sample_count);
      } else {
        read_.clear();
        if (auto st = cols_[mb.input]->read_samples(mb.row, read_); !st) {
          fail_corrupt(mb.input, st.err());
          return;
        }
        pairs = read_;
      }
      for (const sample_rec& x : pairs) {
        if (x.stack == 0 || x.stack >= b.stacks.size()) {
          fail(mb.input, "profile " + str(mb.row) + " stack " + str(x.stack) +
                             " is the root or out of range");
          return;
        }
        const uint32_t node = map_node(mb.input, x.stack);
        if (failed_) return;
        if (node >= node_slot_.size())
          node_slot_.resize(std::max<size_t>(out_.stacks.size(), node_slot_.size() * 2), unmapped);
        uint32_t& slot = node_slot_[node];
        if (slot == unmapped) {
          slot = static_cast<uint32_t>(dst.size());
          dst.push_back(sample_rec{node, x.value});
        } else {
          dst[slot].value = wrapping_add(dst[slot].value, x.value);
        }
      }
    }
  }

  // Sums dst[from, end) and clears their node_slot_ entries.
  int64_t total_and_reset_slots(const std::vector<sample_rec>& dst, size_t from) {
    int64_t total = 0;
    for (size_t s = from; s < dst.size(); ++s) {
      total = wrapping_add(total, dst[s].value);
      node_slot_[dst[s].stack] = unmapped;
    }
    return total;
  }

  void build_rows() {
    std::vector<uint32_t> start, order;
    order_members(start, order);
    out_.profiles.reserve(groups_.size());
    out_.samples.reserve(opts_.bucket_ns == 0 ? kept_samples_ : 0);
    for (size_t g = 0; g < groups_.size(); ++g) {
      profile_row row = groups_[g].row;
      row.sample_begin = static_cast<uint32_t>(out_.samples.size());
      gather(start[g], start[g + 1], order, out_.samples);
      if (failed_) return;
      if (out_.samples.size() > UINT32_MAX) {
        failed_ = true;
        err_ = error{errc::invalid_argument, "merge_blocks: more than 2^32 output samples"};
        return;
      }
      if (!add_spans(row, start[g], start[g + 1], order)) return;
      row.sample_count = static_cast<uint32_t>(out_.samples.size()) - row.sample_begin;
      row.total = total_and_reset_slots(out_.samples, row.sample_begin);
      out_.add_profile(row);
    }
  }

  // Pass 2 of merge_segments: the output rows in (series, time, id) order, as encode_segment lays
  // them out (stable, so equal keys keep merge_blocks' order), each row's pairs sorted by output
  // node and appended to `out` as the samples section's two columns.
  void stream_rows(encoded_samples& out) {
    std::vector<uint32_t> start, order;
    order_members(start, order);
    std::vector<uint32_t> rows(groups_.size());
    std::iota(rows.begin(), rows.end(), 0u);
    auto key = [&](uint32_t g) {
      const profile_row& r = groups_[g].row;
      return std::tie(r.series, r.time_ns, r.id_hi, r.id_lo);
    };
    std::stable_sort(rows.begin(), rows.end(), [&](uint32_t x, uint32_t y) { return key(x) < key(y); });
    encoder stacks, values;
    // Address space, not memory: pages are touched only as the columns fill (a stack delta is
    // rarely over 2 bytes, a value over 3), and growing by copies cost more than the writing.
    stacks.buffer().reserve(kept_samples_ * 2 + 16);
    values.buffer().reserve(kept_samples_ * 3 + 16);
    row_sorter sorter(out_.stacks.size());
    std::vector<sample_rec> pairs;
    out_.profiles.reserve(groups_.size());
    for (uint32_t g : rows) {
      profile_row row = groups_[g].row;
      pairs.clear();
      std::span<const sample_rec> s;
      bool done = false;
      if (start[g + 1] - start[g] == 1) {
        // One profile (no rollup, the common case): its pairs, remapped in place, need summing
        // only if two of its input nodes became one output node, which the sort detects.
        const member& mb = members_[order[start[g]]];
        if (read_mapped(mb, pairs)) {
          sorter.grow(out_.stacks.size());
          const row_sorter::sorted sorted = sorter.sort(pairs);
          done = static_cast<bool>(sorted);
          s = sorted.rows;
          row.total = in_[mb.input]->profiles[mb.row].total;
        }
        if (failed_) return;
      }
      if (!done) {  // a rollup row, or a profile two of whose nodes fold into one
        pairs.clear();
        gather(start[g], start[g + 1], order, pairs);
        if (failed_) return;
        row.total = total_and_reset_slots(pairs, 0);
        sorter.grow(out_.stacks.size());
        s = sorter.sort(pairs).rows;  // nodes are unique here
      }
      if (out.count + s.size() > UINT32_MAX) {
        failed_ = true;
        err_ = error{errc::invalid_argument, "merge_segments: more than 2^32 output samples"};
        return;
      }
      if (!add_spans(row, start[g], start[g + 1], order)) return;
      row.sample_begin = static_cast<uint32_t>(out.count);
      row.sample_count = static_cast<uint32_t>(s.size());
      stacks.put_uvarints(s.size(), [&](size_t k) {
        return uint64_t{s[k].stack} - (k == 0 ? 0 : s[k - 1].stack);
      });
      values.put_varints(s.size(), [&](size_t k) { return s[k].value; });
      out.count += s.size();
      out_.add_profile(row);
    }
    out.stacks = stacks.release();
    out.values = values.release();
  }

  // The pairs of one member's profile (read from its columns; read_samples has checked the
  // stacks are non-root nodes in range and sum to the total) appended to `dst`, each stack
  // remapped to its output node, repeats not summed. False when reading failed (failed_ set).
  // Requires: the inputs are segment_columns (merge_segments).
  bool read_mapped(const member& mb, std::vector<sample_rec>& dst) {
    const size_t from = dst.size();
    if (auto st = cols_[mb.input]->read_samples(mb.row, dst); !st) {
      fail_corrupt(mb.input, st.err());
      return false;
    }
    for (size_t k = from; k < dst.size(); ++k) {
      dst[k].stack = map_node(mb.input, dst[k].stack);
      if (failed_) return false;
    }
    return true;
  }

  // The span samples and period of the output row made of members order[begin, end): a kept
  // profile keeps its span samples (remapped to output nodes, summed where two input nodes became
  // one); a rollup row has none and the largest period of its members. False on a bad input.
  bool add_spans(profile_row& row, uint32_t begin, uint32_t end, const std::vector<uint32_t>& order) {
    row.span_begin = static_cast<uint32_t>(out_.spans.size());
    row.span_count = 0;
    if (opts_.bucket_ns != 0) {
      row.period = 0;
      for (uint32_t k = begin; k < end; ++k) {
        const member& mb = members_[order[k]];
        row.period = std::max(row.period, in_[mb.input]->profiles[mb.row].period);
      }
      return true;
    }
    span_scratch_.clear();
    for (uint32_t k = begin; k < end; ++k) {
      const member& mb = members_[order[k]];
      const block_data& b = *in_[mb.input];
      const profile_row& p = b.profiles[mb.row];
      if (uint64_t{p.span_begin} + p.span_count > b.spans.size()) {
        fail(mb.input, "profile " + str(mb.row) + " span samples out of range");
        return false;
      }
      for (uint32_t s = p.span_begin; s < p.span_begin + p.span_count; ++s) {
        const span_sample& x = b.spans[s];
        if (x.stack == 0 || x.stack >= b.stacks.size()) {
          fail(mb.input, "profile " + str(mb.row) + " span sample stack " + str(x.stack) +
                             " is the root or out of range");
          return false;
        }
        const uint32_t node = map_node(mb.input, x.stack);
        if (failed_) return false;
        span_scratch_.push_back(span_sample{node, x.span_id, x.value});
      }
    }
    sum_span_samples(span_scratch_);
    out_.spans.insert(out_.spans.end(), span_scratch_.begin(), span_scratch_.end());
    if (out_.spans.size() > UINT32_MAX) {
      failed_ = true;
      err_ = error{errc::invalid_argument, "merge_blocks: more than 2^32 output span samples"};
      return false;
    }
    row.span_count = static_cast<uint32_t>(out_.spans.size()) - row.span_begin;
    return true;
  }

  std::span<const block_data* const> in_;
  std::span<const segment_columns* const> cols_;  // merge_segments: in_[i] is cols_[i]->block()
  std::vector<const block_data*> blocks_;
  const merge_options& opts_;
  std::vector<input_maps> maps_;
  block_data out_;
  merge_stats stats_;
  bool failed_ = false;
  error err_;

  symbol_interner syms_;
  pair_table nodes_;      // (parent, location) -> output stack node
  intern_table series_;   // label-ref run -> output series
  intern_table dedupe_;   // dedupe_key -> index into dedupe_keys_
  intern_table buckets_;  // (series, bucket start) -> group, rollups only
  std::vector<dedupe_key> dedupe_keys_;
  std::vector<group> groups_;
  std::vector<member> members_;
  uint64_t kept_samples_ = 0;

  // Scratch, kept to reuse its capacity.
  std::vector<line_rec> lines_;
  std::vector<label_ref> label_scratch_;
  std::vector<uint32_t> path_;
  std::vector<uint32_t> node_slot_;  // output node -> index of its sample in the current row
  std::vector<span_sample> span_scratch_;
  std::vector<sample_rec> read_;  // one input profile's pairs (merge_segments)
};

status check_options(const merge_options& opts) {
  if (opts.bucket_ns < 0)
    return status(errc::invalid_argument,
                  "merge_blocks: bucket_ns " + std::to_string(opts.bucket_ns) + " is negative");
  if (opts.start_ns > opts.end_ns)
    return status(errc::bad_time_range, "merge_blocks: start_ns " + std::to_string(opts.start_ns) +
                                            " is after end_ns " + std::to_string(opts.end_ns));
  return {};
}

}  // namespace

result<block_data> merge_blocks(std::span<const block_data* const> inputs,
                                const merge_options& opts, merge_stats* stats) {
  if (auto st = check_options(opts); !st) return st.err();
  return merger(inputs, opts).run(stats);
}

result<merged_segment> merge_segments(std::span<const segment_columns* const> inputs,
                                      const merge_options& opts, merge_stats* stats) {
  if (auto st = check_options(opts); !st) return st.err();
  return merger(inputs, opts).run_streaming(stats);
}

result<std::vector<merged_segment>> roll_up(merged_segment m, std::span<const int64_t> steps_ns) {
  std::vector<merged_segment> out;
  if (steps_ns.empty()) return out;
  for (int64_t step : steps_ns)
    if (step <= 0) return error{errc::invalid_argument, "roll_up: step " + std::to_string(step) + " is not > 0"};
  // Sources a rollup may be computed from: the block (step 0) and each rollup made so far.
  std::vector<std::pair<int64_t, segment_columns>> sources;
  auto raw = make_segment_columns(std::move(m.block), m.samples);
  if (!raw) return raw.err();
  m.samples = {};
  sources.emplace_back(0, std::move(*raw));
  for (size_t k = 0; k < steps_ns.size(); ++k) {
    const int64_t step = steps_ns[k];
    const segment_columns* from = &sources.front().second;
    int64_t from_step = 0;
    for (const auto& [s, c] : sources)
      if (s > from_step && step % s == 0) from = &c, from_step = s;
    merge_options o;
    o.bucket_ns = step;
    o.dedupe = false;
    const segment_columns* one[] = {from};
    auto rolled = merge_segments(one, o);
    if (!rolled) return rolled.err();
    if (k + 1 < steps_ns.size()) {  // a later, coarser step may be computed from this one
      auto cols = make_segment_columns(rolled->block, rolled->samples);
      if (!cols) return cols.err();
      sources.emplace_back(step, std::move(*cols));
    }
    out.push_back(std::move(*rolled));
  }
  return out;
}

}  // namespace hearth
