#include "format/head.hpp"

#include <algorithm>

namespace hearth {
namespace {

template <class T>
size_t vec_bytes(const std::vector<T>& v) {
  return v.capacity() * sizeof(T);
}

size_t string_heap(std::string_view s) {
  // libstdc++ keeps up to 15 bytes inline (SSO).
  return s.size() > 15 ? s.size() + 1 : 0;
}

}  // namespace

head::head() = default;

uint32_t head::intern_node(uint32_t parent, uint32_t location) {
  return nodes_.find_or_insert(parent, location, [&] {
    data_.stacks.push_back(stack_node{parent, location});
    return static_cast<uint32_t>(data_.stacks.size() - 1);
  });
}

void head::append(const ingest_batch& b) {
  symbols& syms = data_.syms;
  auto intern_string = [&](std::string_view s) {
    const size_t before = syms.strings.size();
    uint32_t id = syms_.string(syms, s);
    if (syms.strings.size() != before) string_bytes_ += string_heap(s);
    return id;
  };

  // Symbols: map every batch id to a head id (the batch only holds what its series use). The
  // strings' hashes come with the batch when batch_builder made it (not after a WAL replay).
  const size_t n_strings = b.syms.strings.size();
  str_map_.assign(n_strings, 0);
  if (b.string_hashes.size() == n_strings) {
    for (size_t i = 1; i < n_strings; ++i) {
      const std::string& s = b.syms.strings[i];
      const size_t before = syms.strings.size();
      str_map_[i] = syms_.string(syms, s, b.string_hashes[i]);
      if (syms.strings.size() != before) string_bytes_ += string_heap(s);
    }
  } else {
    for (size_t i = 0; i < n_strings; ++i) str_map_[i] = intern_string(b.syms.strings[i]);
  }
  map_map_.assign(b.syms.mappings.size() + 1, 0);  // 1-based, as locations refer to them
  for (size_t i = 0; i < b.syms.mappings.size(); ++i) {
    mapping_rec m = b.syms.mappings[i];
    m.filename = str_map_[m.filename];
    m.build_id = str_map_[m.build_id];
    map_map_[i + 1] = syms_.mapping(syms, m);
  }
  fn_map_.assign(b.syms.functions.size(), 0);
  for (size_t i = 0; i < b.syms.functions.size(); ++i) {
    const function_rec& f = b.syms.functions[i];
    fn_map_[i] = syms_.function(
        syms, function_rec{str_map_[f.name], str_map_[f.system_name], str_map_[f.filename], f.start_line});
  }
  loc_map_.assign(b.syms.locations.size(), 0);
  for (size_t i = 0; i < b.syms.locations.size(); ++i) {
    const location_rec& loc = b.syms.locations[i];
    lines_.clear();
    for (uint32_t k = 0; k < loc.line_count; ++k) {
      const line_rec& l = b.syms.lines[loc.line_begin + k];
      lines_.push_back(line_rec{fn_map_[l.function], l.line});
    }
    loc_map_[i] = syms_.location(syms, loc.address, lines_, map_map_[loc.mapping]);
  }

  // Stacks: walk each (leaf-first) location run from the root down to a stack-tree node. A run
  // that shares its root side with the previous run reuses that part of its path (a comparison
  // of batch location ids instead of a table lookup per frame).
  const size_t n_stacks = b.stack_count();
  stack_map_.assign(n_stacks, 0);
  path_.clear();
  const uint32_t* prev = nullptr;
  size_t prev_len = 0;
  for (size_t i = 0; i < n_stacks; ++i) {
    const uint32_t* run = b.stack_locations.data() + b.stack_offsets[i];
    const size_t len = b.stack_offsets[i + 1] - b.stack_offsets[i];
    size_t same = 0;
    while (same < len && same < prev_len && run[len - 1 - same] == prev[prev_len - 1 - same])
      ++same;
    path_.resize(same);
    uint32_t node = same > 0 ? path_[same - 1] : 0;
    for (size_t k = len - same; k > 0; --k) {
      node = intern_node(node, loc_map_[run[k - 1]]);
      path_.push_back(node);
    }
    stack_map_[i] = node;
    prev = run;
    prev_len = len;
  }

  // Series and their profile rows.
  node_slot_.resize(data_.stacks.size(), UINT32_MAX);
  for (const ingest_series& s : b.series) {
    label_scratch_.clear();
    uint64_t h = hash_mix(0x5e1, s.labels.size());
    for (const label& l : s.labels) {
      label_ref r{intern_string(l.name), intern_string(l.value)};
      label_scratch_.push_back(r);
      h = hash_mix(hash_mix(h, r.name), r.value);
    }
    const uint32_t series = series_.find_or_insert(
        h,
        [&](uint32_t id) {
          const series_rec& sr = data_.series[id];
          return sr.label_count == label_scratch_.size() &&
                 std::equal(label_scratch_.begin(), label_scratch_.end(), data_.labels.begin() + sr.label_begin,
                            [](const label_ref& a, const label_ref& b) {
                              return a.name == b.name && a.value == b.value;
                            });
        },
        [&] {
          series_rec sr;
          sr.label_begin = static_cast<uint32_t>(data_.labels.size());
          sr.label_count = static_cast<uint32_t>(label_scratch_.size());
          data_.labels.insert(data_.labels.end(), label_scratch_.begin(), label_scratch_.end());
          data_.series.push_back(sr);
          return static_cast<uint32_t>(data_.series.size() - 1);
        });

    profile_row row;
    row.series = series;
    row.time_ns = s.time_ns;
    row.duration_ns = s.duration_ns;
    row.id_hi = s.id_hi;
    row.id_lo = s.id_lo;
    row.sample_begin = static_cast<uint32_t>(data_.samples.size());
    for (size_t i = 0; i < s.sample_stacks.size(); ++i) {
      const uint32_t node = stack_map_[s.sample_stacks[i]];
      if (node == 0) continue;  // an empty stack has no frame to attribute the value to
      const int64_t v = s.sample_values[i];
      row.total = wrapping_add(row.total, v);
      uint32_t& slot = node_slot_[node];
      if (slot == UINT32_MAX) {
        slot = static_cast<uint32_t>(data_.samples.size());
        data_.samples.push_back(sample_rec{node, v});
      } else {
        data_.samples[slot].value = wrapping_add(data_.samples[slot].value, v);
      }
    }
    row.sample_count = static_cast<uint32_t>(data_.samples.size()) - row.sample_begin;
    for (uint32_t k = row.sample_begin; k < data_.samples.size(); ++k) node_slot_[data_.samples[k].stack] = UINT32_MAX;
    row.period = s.period;
    row.span_begin = static_cast<uint32_t>(data_.spans.size());
    if (!s.spans.empty()) {
      span_scratch_.clear();
      for (const span_sample& x : s.spans)
        if (const uint32_t node = stack_map_[x.stack]; node != 0)
          span_scratch_.push_back(span_sample{node, x.span_id, x.value});
      sum_span_samples(span_scratch_);  // batch stacks that became one node
      data_.spans.insert(data_.spans.end(), span_scratch_.begin(), span_scratch_.end());
    }
    row.span_count = static_cast<uint32_t>(data_.spans.size()) - row.span_begin;

    data_.add_profile(row);
  }
}

size_t head::bytes_estimate() const {
  const symbols& s = data_.syms;
  return vec_bytes(s.strings) + string_bytes_ + vec_bytes(s.mappings) + vec_bytes(s.functions) +
         vec_bytes(s.lines) + vec_bytes(s.locations) + vec_bytes(data_.stacks) +
         vec_bytes(data_.labels) + vec_bytes(data_.series) + vec_bytes(data_.profiles) +
         vec_bytes(data_.samples) + vec_bytes(data_.spans) + syms_.bytes_estimate() +
         nodes_.bytes_estimate() + series_.bytes_estimate() + vec_bytes(node_slot_);
}

block_data head::seal() {
  block_data out = std::move(data_);
  data_ = block_data{};
  syms_.clear();
  nodes_.clear();
  series_.clear();
  string_bytes_ = 0;
  node_slot_.clear();
  node_slot_.shrink_to_fit();
  return out;
}

}  // namespace hearth
