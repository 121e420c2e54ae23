#include "format/normalize.hpp"

#include <algorithm>
#include <bit>
#include <functional>
#include <limits>
#include <map>
#include <tuple>
#include <type_traits>
#include <unordered_map>

namespace hearth {

uint64_t hash_bytes(std::string_view s) { return hash_mix(0, std::hash<std::string_view>{}(s)); }

void intern_table::grow() {
  rehash(slots_.empty() ? 16 : slots_.size() * 2);
}

void intern_table::reserve(size_t n) {
  size_t cap = slots_.empty() ? 16 : slots_.size();
  while ((n + 1) * 2 > cap) cap *= 2;
  if (cap != slots_.size()) rehash(cap);
}

void intern_table::reset() {
  // 64k slots (512 KiB) cover a request of ~30k distinct symbols; beyond that, free.
  if (slots_.size() > (size_t{1} << 16)) {
    clear();
    return;
  }
  std::fill(slots_.begin(), slots_.end(), slot{});
  size_ = 0;
}

void intern_table::rehash(size_t cap) {
  std::vector<slot> next(cap);
  const size_t mask = cap - 1;
  for (const slot& s : slots_) {
    if (s.id_plus_one == 0) continue;
    size_t i = s.hash & mask;
    while (next[i].id_plus_one != 0) i = (i + 1) & mask;
    next[i] = s;
  }
  slots_.swap(next);
}

void pair_table::reserve(size_t n) {
  size_t cap = slots_.empty() ? 1024 : slots_.size();
  while ((n + 1) * 2 > cap) cap *= 2;
  if (cap != slots_.size()) rehash(cap);
}

void pair_table::clear() {
  slots_.clear();
  slots_.shrink_to_fit();
  size_ = 0;
  shift_ = 64;
}

void pair_table::rehash(size_t cap) {
  std::vector<slot> next(cap);
  const int shift = 64 - std::countr_zero(cap);
  const size_t mask = cap - 1;
  for (const slot& s : slots_) {
    if (s.id_plus_one == 0) continue;
    size_t i = static_cast<size_t>((s.key * 0x9e3779b97f4a7c15ULL) >> shift);
    while (next[i].id_plus_one != 0) i = (i + 1) & mask;
    next[i] = s;
  }
  slots_.swap(next);
  shift_ = shift;
}

// ---- symbol_interner --------------------------------------------------------------------------

namespace {

uint64_t hash_function(const function_rec& f) {
  uint64_t h = hash_mix(0x66, f.name);
  h = hash_mix(h, f.system_name);
  h = hash_mix(h, f.filename);
  return hash_mix(h, static_cast<uint64_t>(f.start_line));
}

uint64_t hash_mapping(const mapping_rec& m) {
  uint64_t h = hash_mix(0x3a9, m.memory_start);
  h = hash_mix(h, m.memory_limit);
  h = hash_mix(h, m.file_offset);
  h = hash_mix(h, m.filename);
  h = hash_mix(h, m.build_id);
  return hash_mix(h, m.flags);
}

uint64_t hash_location(uint32_t mapping, uint64_t address, std::span<const line_rec> lines) {
  uint64_t h = hash_mix(0x10c, address);
  h = hash_mix(h, mapping);
  h = hash_mix(h, lines.size());
  for (const line_rec& l : lines) h = hash_mix(hash_mix(h, l.function), static_cast<uint64_t>(l.line));
  return h;
}

bool same_location(const symbols& s, uint32_t id, uint32_t mapping, uint64_t address,
                   std::span<const line_rec> lines) {
  const location_rec& loc = s.locations[id];
  return loc.address == address && loc.mapping == mapping && loc.line_count == lines.size() &&
         std::equal(lines.begin(), lines.end(), s.lines.begin() + loc.line_begin);
}

/// Calls intern(i) for i = 0 .. hashes.size() - 1, in order, having started early the loads lookup
/// i waits for: its slot of `table` 12 keys ahead, then near(c), the record of the slot's
/// candidate id c, 8 ahead, and far(c), what that record points to, 4 ahead. Lookups into a large
/// table otherwise wait for those cache misses one after the other. The table is first made room
/// for every key, so that no rehash mid-way moves the slots loaded.
template <class Near, class Far, class Intern>
void intern_ahead(intern_table& table, std::span<const uint64_t> hashes, Near near, Far far,
                  Intern intern) {
  const size_t n = hashes.size();
  table.reserve(table.size() + n);
  for (size_t i = 0; i < n; ++i) {
    if (i + 12 < n) table.prefetch(hashes[i + 12]);
    if (i + 8 < n)
      if (const uint32_t c = table.candidate(hashes[i + 8]); c != UINT32_MAX) near(c);
    if (i + 4 < n)
      if (const uint32_t c = table.candidate(hashes[i + 4]); c != UINT32_MAX) far(c);
    intern(i);
  }
}

}  // namespace

uint32_t symbol_interner::string(symbols& s, std::string_view v) {
  if (v.empty()) return 0;
  return string(s, v, hash_bytes(v));
}

uint32_t symbol_interner::string(symbols& s, std::string_view v, uint64_t hash) {
  if (v.empty()) return 0;
  return strings_.find_or_insert(
      hash, [&](uint32_t id) { return s.strings[id] == v; },
      [&] {
        s.strings.emplace_back(v);
        return static_cast<uint32_t>(s.strings.size() - 1);
      });
}

uint32_t symbol_interner::function(symbols& s, const function_rec& f) {
  return function(s, f, hash_function(f));
}

uint32_t symbol_interner::function(symbols& s, const function_rec& f, uint64_t hash) {
  return functions_.find_or_insert(
      hash, [&](uint32_t id) { return s.functions[id] == f; },
      [&] {
        s.functions.push_back(f);
        return static_cast<uint32_t>(s.functions.size() - 1);
      });
}

void symbol_interner::functions(symbols& s, std::span<const function_rec> fs,
                                std::span<uint32_t> out) {
  std::vector<uint64_t> hashes(fs.size());
  for (size_t i = 0; i < fs.size(); ++i) hashes[i] = hash_function(fs[i]);
  intern_ahead(
      functions_, hashes,
      [&](uint32_t c) {
        if (c < s.functions.size()) __builtin_prefetch(&s.functions[c]);
      },
      [](uint32_t) {}, [&](size_t i) { out[i] = function(s, fs[i], hashes[i]); });
}

void symbol_interner::strings(symbols& s, std::span<const std::string_view> vs,
                              std::span<uint32_t> out) {
  std::vector<uint64_t> hashes(vs.size());
  for (size_t i = 0; i < vs.size(); ++i) hashes[i] = vs[i].empty() ? 0 : hash_bytes(vs[i]);
  intern_ahead(
      strings_, hashes,
      [&](uint32_t c) {
        if (c < s.strings.size()) __builtin_prefetch(&s.strings[c]);
      },
      [&](uint32_t c) {
        if (c < s.strings.size()) __builtin_prefetch(s.strings[c].data());
      },
      [&](size_t i) { out[i] = string(s, vs[i], hashes[i]); });
}

uint32_t symbol_interner::mapping(symbols& s, const mapping_rec& m) {
  return 1 + mappings_.find_or_insert(
                 hash_mapping(m), [&](uint32_t id) { return s.mappings[id] == m; },
                 [&] {
                   s.mappings.push_back(m);
                   return static_cast<uint32_t>(s.mappings.size() - 1);
                 });
}

uint32_t symbol_interner::location(symbols& s, uint64_t address, std::span<const line_rec> lines,
                                   uint32_t mapping) {
  // Not a call of the overload below: one call level less on ingest's hottest interning path.
  return locations_.find_or_insert(
      hash_location(mapping, address, lines),
      [&](uint32_t id) { return same_location(s, id, mapping, address, lines); },
      [&] { return append_location(s, address, lines, mapping); });
}

uint32_t symbol_interner::location(symbols& s, uint64_t address, std::span<const line_rec> lines,
                                   uint32_t mapping, uint64_t hash) {
  return locations_.find_or_insert(
      hash, [&](uint32_t id) { return same_location(s, id, mapping, address, lines); },
      [&] { return append_location(s, address, lines, mapping); });
}

uint32_t symbol_interner::append_location(symbols& s, uint64_t address,
                                          std::span<const line_rec> lines, uint32_t mapping) {
  location_rec loc;
  loc.address = address;
  loc.line_begin = static_cast<uint32_t>(s.lines.size());
  loc.line_count = static_cast<uint32_t>(lines.size());
  loc.mapping = mapping;
  s.lines.insert(s.lines.end(), lines.begin(), lines.end());
  s.locations.push_back(loc);
  return static_cast<uint32_t>(s.locations.size() - 1);
}

void symbol_interner::locations(symbols& s, std::span<const location_key> keys,
                                std::span<const line_rec> lines, std::span<uint32_t> out) {
  auto lines_of = [&](const location_key& k) { return lines.subspan(k.line_begin, k.line_count); };
  std::vector<uint64_t> hashes(keys.size());
  for (size_t i = 0; i < keys.size(); ++i)
    hashes[i] = hash_location(keys[i].mapping, keys[i].address, lines_of(keys[i]));
  intern_ahead(
      locations_, hashes,
      [&](uint32_t c) {
        if (c < s.locations.size()) __builtin_prefetch(&s.locations[c]);
      },
      [&](uint32_t c) {
        if (c < s.locations.size() && s.locations[c].line_begin < s.lines.size())
          __builtin_prefetch(&s.lines[s.locations[c].line_begin]);
      },
      [&](size_t i) {
        out[i] = location(s, keys[i].address, lines_of(keys[i]), keys[i].mapping, hashes[i]);
      });
}

void symbol_interner::index(const symbols& s) {
  for (uint32_t i = 1; i < s.strings.size(); ++i) {
    const std::string& v = s.strings[i];
    if (v.empty()) continue;
    strings_.find_or_insert(hash_bytes(v), [&](uint32_t id) { return s.strings[id] == v; },
                            [&] { return i; });
  }
  for (uint32_t i = 0; i < s.mappings.size(); ++i) {
    const mapping_rec& m = s.mappings[i];
    mappings_.find_or_insert(hash_mapping(m), [&](uint32_t id) { return s.mappings[id] == m; },
                             [&] { return i; });
  }
  for (uint32_t i = 0; i < s.functions.size(); ++i) {
    const function_rec& f = s.functions[i];
    functions_.find_or_insert(hash_function(f), [&](uint32_t id) { return s.functions[id] == f; },
                              [&] { return i; });
  }
  for (uint32_t i = 0; i < s.locations.size(); ++i) {
    const location_rec& loc = s.locations[i];
    std::span<const line_rec> lines(s.lines.data() + loc.line_begin, loc.line_count);
    locations_.find_or_insert(hash_location(loc.mapping, loc.address, lines),
                              [&](uint32_t id) { return same_location(s, id, loc.mapping, loc.address, lines); },
                              [&] { return i; });
  }
}

void symbol_interner::reserve(size_t strings, size_t mappings, size_t functions, size_t locations) {
  strings_.reserve(strings);
  mappings_.reserve(mappings);
  functions_.reserve(functions);
  locations_.reserve(locations);
}

void symbol_interner::reset() {
  strings_.reset();
  mappings_.reset();
  functions_.reset();
  locations_.reset();
}

void symbol_interner::clear() {
  strings_.clear();
  mappings_.clear();
  functions_.clear();
  locations_.clear();
}

size_t symbol_interner::bytes_estimate() const {
  return strings_.bytes_estimate() + mappings_.bytes_estimate() + functions_.bytes_estimate() + locations_.bytes_estimate();
}

// ---- helpers ----------------------------------------------------------------------------------

bool valid_utf8(std::string_view s) {
  size_t i = 0;
  const size_t n = s.size();
  while (i < n) {
    auto c = static_cast<unsigned char>(s[i]);
    if (c < 0x80) {
      ++i;
      continue;
    }
    size_t len;
    uint32_t cp;
    if ((c & 0xE0) == 0xC0) {
      len = 2;
      cp = c & 0x1F;
    } else if ((c & 0xF0) == 0xE0) {
      len = 3;
      cp = c & 0x0F;
    } else if ((c & 0xF8) == 0xF0) {
      len = 4;
      cp = c & 0x07;
    } else {
      return false;
    }
    if (i + len > n) return false;
    for (size_t k = 1; k < len; ++k) {
      auto cc = static_cast<unsigned char>(s[i + k]);
      if ((cc & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (cc & 0x3F);
    }
    if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) ||
        cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
      return false;
    i += len;
  }
  return true;
}

namespace {

constexpr std::string_view k_name = "__name__";
constexpr std::string_view k_service = "service_name";

status check_label(std::string_view name, std::string_view value, const normalize_limits& lim,
                   std::string_view what) {
  if (name.empty()) return {errc::bad_labels, std::string(what) + " has an empty label name"};
  if (!valid_utf8(name))
    return {errc::bad_labels,
            std::string(what) + " label name " + quote_untrusted(name) + " is not valid UTF-8"};
  if (name.size() > lim.max_label_name_len)
    return {errc::bad_labels,
            std::string(what) + " label name " + quote_untrusted(name) + " is " +
                std::to_string(name.size()) +
                " bytes long, over max_label_name_len=" + std::to_string(lim.max_label_name_len)};
  if (!valid_utf8(value))
    return {errc::bad_labels, std::string(what) + " label " + quote_untrusted(name) +
                                  " has a value that is not valid UTF-8"};
  if (value.size() > lim.max_label_value_len)
    return {errc::bad_labels,
            std::string(what) + " label " + quote_untrusted(name) + " has a value " +
                std::to_string(value.size()) +
                " bytes long, over max_label_value_len=" + std::to_string(lim.max_label_value_len)};
  return {};
}

const std::string* find_label(const label_set& ls, std::string_view name) {
  for (const label& l : ls)
    if (l.name == name) return &l.value;
  return nullptr;
}

void set_label(label_set& ls, std::string_view name, std::string_view value) {
  for (label& l : ls)
    if (l.name == name) {
      l.value = std::string(value);
      return;
    }
  ls.push_back({std::string(name), std::string(value)});
}

/// Keeps the last `max` bytes of a symbol, not starting inside a UTF-8 sequence.
std::string_view truncate_symbol(std::string_view s, size_t max) {
  if (s.size() <= max) return s;
  s.remove_prefix(s.size() - max);
  while (!s.empty() && (static_cast<unsigned char>(s.front()) & 0xC0) == 0x80) s.remove_prefix(1);
  return s;
}

/// Maps pprof ids (locations, functions) to their index in the decoded vectors. Dense ids 1..n
/// (what every real profiler writes) take no memory.
class id_index {
 public:
  template <class T>
  explicit id_index(const std::vector<T>& v) {
    for (size_t i = 0; i < v.size(); ++i)
      if (v[i].id != i + 1) {
        dense_ = false;
        break;
      }
    if (!dense_)
      for (size_t i = 0; i < v.size(); ++i) map_.emplace(v[i].id, static_cast<uint32_t>(i));
    n_ = v.size();
  }
  /// Index of `id`, or UINT32_MAX.
  uint32_t find(uint64_t id) const {
    if (dense_) return id >= 1 && id <= n_ ? static_cast<uint32_t>(id - 1) : UINT32_MAX;
    return find_sparse(id);
  }

 private:
  // Out of line, so that the dense case inlines into the per-frame loops.
  [[gnu::noinline]] uint32_t find_sparse(uint64_t id) const {
    auto it = map_.find(id);
    return it == map_.end() ? UINT32_MAX : it->second;
  }

  bool dense_ = true;
  size_t n_ = 0;
  std::unordered_map<uint64_t, uint32_t> map_;
};

bool is_reserved_computed(std::string_view n) {
  return n == "__profile_type__" || n == "__type__" || n == "__unit__" || n == "__period_type__" ||
         n == "__period_unit__" || n == "__service_name__" || n == "__name_replaced__";
}

uint64_t hash_stack(std::span<const uint32_t> locs) {
  uint64_t h = hash_mix(0x57ac, locs.size());
  for (uint32_t l : locs) h = hash_mix(h, l);
  return h;
}

// Room for `extra` more elements, growing geometrically: a batch of many profiles (one Push
// request) reserves once per profile, and exact reserves would copy the vector every time.
template <class T>
void reserve_more(std::vector<T>& v, size_t extra) {
  if (v.size() + extra > v.capacity()) v.reserve(std::max(v.size() + extra, 2 * v.capacity()));
}

}  // namespace

std::string ingest_metric_name(const pprof::profile& p,
                               const std::vector<std::pair<std::string, std::string>>* display_names) {
  auto display = [&](std::string_view st) -> std::string_view {
    if (display_names != nullptr) {
      for (const auto& [k, v] : *display_names)
        if (k == st && !v.empty()) return v;
      return st;
    }
    if (st == "samples") return "cpu";
    if (st == "goroutine") return "goroutines";
    if (st == "contentions") return "mutex_count";
    if (st == "delay") return "mutex_duration";
    return st;
  };
  for (const auto& vt : p.sample_types)
    if (p.str(vt.type) == "wall") return "wall";
  std::string_view st;
  for (const auto& vt : p.sample_types) {
    st = display(p.str(vt.type));
    if (st.find("cpu") != std::string_view::npos) return "process_cpu";
    if (st.find("alloc_") != std::string_view::npos || st.find("inuse_") != std::string_view::npos ||
        st == "space" || st == "objects")
      return "memory";
    if (st.find("mutex_") != std::string_view::npos) return "mutex";
    if (st.find("block_") != std::string_view::npos) return "block";
    if (st.find("goroutines") != std::string_view::npos) return "goroutines";
  }
  return std::string(st);
}

// ---- batch_builder ----------------------------------------------------------------------------

batch_builder::batch_builder(std::string tenant, normalize_limits lim) : lim_(lim) {
  batch_.tenant = std::move(tenant);
  hash_strings();
}

void batch_builder::hash_strings() {
  std::vector<uint64_t>& h = batch_.string_hashes;
  const std::vector<std::string>& s = batch_.syms.strings;
  if (h.size() > s.size()) h.clear();
  h.reserve(s.size());
  while (h.size() < s.size()) h.push_back(hash_bytes(s[h.size()]));
}

batch_builder::batch_builder(ingest_batch existing, normalize_limits lim)
    : lim_(lim), batch_(std::move(existing)) {
  if (batch_.syms.strings.empty()) batch_.syms.strings.emplace_back();
  if (batch_.stack_offsets.empty()) batch_.stack_offsets.push_back(0);
  syms_.index(batch_.syms);
  hash_strings();
  for (uint32_t i = 0; i < batch_.stack_count(); ++i) {
    std::span<const uint32_t> locs(batch_.stack_locations.data() + batch_.stack_offsets[i],
                                   batch_.stack_offsets[i + 1] - batch_.stack_offsets[i]);
    stacks_.find_or_insert(
        hash_stack(locs),
        [&](uint32_t id) {
          return std::equal(locs.begin(), locs.end(),
                            batch_.stack_locations.begin() + batch_.stack_offsets[id],
                            batch_.stack_locations.begin() + batch_.stack_offsets[id + 1]);
        },
        [&] { return i; });
  }
}

uint32_t batch_builder::intern_stack(std::span<const uint32_t> locs) {
  return stacks_.find_or_insert(
      hash_stack(locs),
      [&](uint32_t id) {
        return std::equal(locs.begin(), locs.end(),
                          batch_.stack_locations.begin() + batch_.stack_offsets[id],
                          batch_.stack_locations.begin() + batch_.stack_offsets[id + 1]);
      },
      [&] {
        batch_.stack_locations.insert(batch_.stack_locations.end(), locs.begin(), locs.end());
        batch_.stack_offsets.push_back(static_cast<uint32_t>(batch_.stack_locations.size()));
        return static_cast<uint32_t>(batch_.stack_count() - 1);
      });
}

void batch_builder::start(std::string tenant, const normalize_limits& lim) {
  lim_ = lim;
  batch_ = ingest_batch{};
  batch_.tenant = std::move(tenant);
  hash_strings();
  syms_.reset();
  stacks_.reset();
  // Scratch sized by one huge profile is released, so a builder kept per thread does not pin it.
  auto trim = [](auto& v) {
    if (v.capacity() > (size_t{1} << 16)) std::decay_t<decltype(v)>().swap(v);
    v.clear();
  };
  for (auto* v : {&stack_slot_, &str_map_, &fn_map_, &loc_map_, &mapping_map_, &group_of_,
                  &group_count_, &by_group_, &sample_stack_, &fill_, &locs_, &loc_index_})
    trim(*v);
  trim(nonempty_);
  trim(loc_valid_);
  trim(line_scratch_);
}

ingest_batch batch_builder::finish() {
  ingest_batch out = std::move(batch_);
  batch_ = ingest_batch{};
  batch_.tenant = out.tenant;
  hash_strings();
  syms_.reset();
  stacks_.reset();
  stack_slot_.clear();
  return out;
}

status batch_builder::add(const pprof::profile& p, const ingest_meta& m) {
  // 1. Request labels: valid, unique.
  for (const label& l : m.labels)
    if (auto st = check_label(l.name, l.value, lim_, "request"); !st.ok()) return st;
  {
    std::vector<std::string_view> names;
    names.reserve(m.labels.size());
    for (const label& l : m.labels) names.push_back(l.name);
    std::sort(names.begin(), names.end());
    for (size_t i = 1; i < names.size(); ++i)
      if (names[i] == names[i - 1])
        return {errc::bad_labels,
                "duplicate label name " + quote_untrusted(names[i]) + " in the request labels"};
  }

  // 2. The labels every series of this profile shares.
  label_set base;
  std::string app;
  if (m.from == ingest_meta::source::ingest) {
    for (const label& l : m.labels) {
      if (l.name == k_name) {
        app = l.value;
        continue;
      }
      // Only __session_id__ is accepted from clients, and dropped too while
      // max_sessions_per_series is 0 (Pyroscope's default).
      if (l.name.starts_with("__")) continue;
      base.push_back(l);
    }
    const auto* dn = m.display_names ? &*m.display_names : nullptr;
    set_label(base, k_name, ingest_metric_name(p, dn));
    set_label(base, "__delta__", "false");
    if (!m.spy_name.empty()) set_label(base, "pyroscope_spy", m.spy_name);
    const std::string* svc = find_label(base, k_service);
    if (svc == nullptr || svc->empty()) {
      if (app.empty())
        return {errc::bad_labels, "the request has neither an application name nor a service_name label"};
      set_label(base, k_service, app);
    }
  } else {
    for (const label& l : m.labels) {
      if (l.name == "__session_id__" || is_reserved_computed(l.name)) continue;
      base.push_back(l);
    }
    const std::string* name = find_label(base, k_name);
    if (name == nullptr || name->empty())
      return {errc::bad_labels, "series labels must contain __name__"};
    const std::string* svc = find_label(base, k_service);
    if (svc == nullptr || svc->empty()) set_label(base, k_service, "unknown_service");
  }
  std::erase_if(base, [](const label& l) { return l.value.empty(); });
  const std::string service = *find_label(base, k_service);

  // 3. Group samples by their promoted string labels. Group 0 = no promoted labels.
  const size_t ns = p.samples.size();
  const size_t nt = p.sample_types.size();
  std::vector<uint32_t>& group_of = group_of_;
  group_of.assign(ns, 0);
  std::vector<label_set> groups(1);
  bool any_string_label = false;
  for (const auto& l : p.labels)
    if (l.str != 0) {
      any_string_label = true;
      break;
    }
  if (any_string_label) {
    using key_t = std::vector<std::pair<std::string_view, std::string_view>>;
    std::map<key_t, uint32_t> index;
    index.emplace(key_t{}, 0);
    key_t kv;
    for (size_t i = 0; i < ns; ++i) {
      const pprof::sample& s = p.samples[i];
      if (s.loc_count == 0) continue;  // never stored
      if (static_cast<size_t>(s.label_begin) + s.label_count > p.labels.size())
        return {errc::bad_pprof, "sample " + std::to_string(i) + " has labels out of range"};
      kv.clear();
      for (uint32_t k = 0; k < s.label_count; ++k) {
        const pprof::sample_label& l = p.labels[s.label_begin + k];
        if (l.str == 0) continue;  // numeric labels are not promoted
        std::string_view key = p.str(l.key);
        if (key == "span_id" || key == "trace_id" || key == "profile_id") continue;
        kv.emplace_back(key, p.str(l.str));
      }
      if (kv.empty()) continue;
      std::stable_sort(kv.begin(), kv.end(),
                       [](const auto& a, const auto& b) { return a.first < b.first; });
      kv.erase(std::unique(kv.begin(), kv.end(),
                           [](const auto& a, const auto& b) { return a.first == b.first; }),
               kv.end());
      auto [it, inserted] = index.emplace(kv, static_cast<uint32_t>(groups.size()));
      if (inserted) {
        label_set ls;
        for (const auto& [k, v] : kv) {
          if (auto st = check_label(k, v, lim_, "pprof sample"); !st.ok()) return st;
          ls.push_back({std::string(k), std::string(v)});
        }
        groups.push_back(std::move(ls));
      }
      group_of[i] = it->second;
    }
  }

  // 4. Which (type, group) pairs have samples; validate the location ids those samples use.
  const id_index loc_ids(p.locations);
  const id_index fn_ids(p.functions);
  const id_index map_ids(p.mappings);
  const size_t ng = groups.size();
  std::vector<uint8_t>& nonempty = nonempty_;
  nonempty.assign(nt * ng, 0);
  std::vector<uint32_t>& group_count = group_count_;
  group_count.assign(ng + 1, 0);
  // Each location is validated once, however many samples use it; the index found for every
  // location id of a kept sample is remembered for step 6.
  std::vector<uint32_t>& loc_index = loc_index_;
  loc_index.resize(p.location_ids.size());
  std::vector<uint8_t>& loc_valid = loc_valid_;
  loc_valid.assign(p.locations.size(), 0);
  for (size_t i = 0; i < ns; ++i) {
    const pprof::sample& s = p.samples[i];
    if (s.loc_count == 0) continue;
    if (static_cast<size_t>(s.value_begin) + nt > p.values.size() ||
        static_cast<size_t>(s.loc_begin) + s.loc_count > p.location_ids.size())
      return {errc::bad_pprof, "sample " + std::to_string(i) + " has values or locations out of range"};
    bool any = false;
    for (size_t t = 0; t < nt; ++t)
      if (p.values[s.value_begin + t] != 0) {
        nonempty[t * ng + group_of[i]] = 1;
        any = true;
      }
    if (!any) continue;
    if (s.loc_count > lim_.max_stack_depth &&
        lim_.depth_policy == normalize_limits::stack_depth_policy::reject)
      return {errc::invalid_argument, "sample " + std::to_string(i) + " has a stack of " +
                                          std::to_string(s.loc_count) +
                                          " frames, over limits.max_stack_depth = " +
                                          std::to_string(lim_.max_stack_depth)};
    ++group_count[group_of[i] + 1];
    for (uint32_t k = 0; k < s.loc_count; ++k) {
      uint64_t id = p.location_ids[s.loc_begin + k];
      uint32_t li = loc_ids.find(id);
      if (li == UINT32_MAX)
        return {errc::bad_pprof, "sample " + std::to_string(i) + " references missing location id " +
                                     std::to_string(id)};
      loc_index[s.loc_begin + k] = li;
      if (loc_valid[li]) continue;
      loc_valid[li] = 1;
      const pprof::location& loc = p.locations[li];
      if (static_cast<size_t>(loc.line_begin) + loc.line_count > p.lines.size())
        return {errc::bad_pprof, "location id " + std::to_string(id) + " has lines out of range"};
      if (loc.mapping_id != 0 && map_ids.find(loc.mapping_id) == UINT32_MAX)
        return {errc::bad_pprof, "location id " + std::to_string(id) + " references missing mapping id " +
                                     std::to_string(loc.mapping_id)};
      for (uint32_t j = 0; j < loc.line_count; ++j)
        if (fn_ids.find(p.lines[loc.line_begin + j].function_id) == UINT32_MAX)
          return {errc::bad_pprof, "location id " + std::to_string(id) +
                                       " references missing function id " +
                                       std::to_string(p.lines[loc.line_begin + j].function_id)};
    }
  }

  // 4b. Span ids, read only when some sample has string labels (a span id is one).
  std::vector<uint64_t>& sample_span = sample_span_;
  sample_span.clear();
  if (any_string_label) {
    for (size_t i = 0; i < ns; ++i) {
      const pprof::sample& s = p.samples[i];
      if (s.loc_count == 0) continue;  // its labels were not range-checked: never stored
      uint64_t span = 0, profile = 0;
      for (uint32_t k = 0; k < s.label_count; ++k) {
        const pprof::sample_label& l = p.labels[s.label_begin + k];
        if (l.str == 0) continue;
        const std::string_view key = p.str(l.key);
        if (key == "span_id") span = parse_span_id(p.str(l.str)).value_or(0);
        else if (key == "profile_id") profile = parse_span_id(p.str(l.str)).value_or(0);
      }
      if (span == 0) span = profile;
      if (span == 0) continue;
      if (sample_span.empty()) sample_span.assign(ns, 0);
      sample_span[i] = span;
    }
  }

  // 5. The labels of every series to emit (checked before anything is appended).
  const std::string_view period_type = p.str(p.period_type.type);
  const std::string_view period_unit = p.str(p.period_type.unit);
  std::vector<label_set> series_labels(nt * ng);
  for (size_t t = 0; t < nt; ++t) {
    const std::string_view type = p.str(p.sample_types[t].type);
    const std::string_view unit = p.str(p.sample_types[t].unit);
    for (size_t g = 0; g < ng; ++g) {
      if (!nonempty[t * ng + g]) continue;
      label_set ls = base;
      for (const label& l : groups[g])
        if (find_label(ls, l.name) == nullptr) ls.push_back(l);
      // Absent when /ingest derived an empty name (a profile whose sample types have none).
      const std::string* named = find_label(ls, k_name);
      std::string name = named ? *named : std::string();
      // Pyroscope's default ingestion relabel rules (pkg/validation/relabeling.go).
      if (name.starts_with("godeltaprof_")) {
        set_label(ls, "__name_replaced__", name);
        set_label(ls, "__delta__", "false");
        name = name.substr(12);
      }
      if (name == "wall" && type == "cpu") {
        set_label(ls, "__name_replaced__", name);
        name = "process_cpu";
      }
      if (name.empty())
        return {errc::bad_labels,
                m.from == ingest_meta::source::ingest
                    ? "the profile's sample types have no name to name its series by"
                    : "series labels must contain __name__"};
      set_label(ls, k_name, name);
      set_label(ls, "__type__", type);
      set_label(ls, "__unit__", unit);
      set_label(ls, "__period_type__", period_type);
      set_label(ls, "__period_unit__", period_unit);
      set_label(ls, "__service_name__", service);
      std::string pt = name;
      for (std::string_view part : {type, unit, period_type, period_unit}) {
        pt += ':';
        pt += part;
      }
      set_label(ls, "__profile_type__", pt);
      std::erase_if(ls, [](const label& l) { return l.value.empty(); });
      size_t visible = 0;
      for (const label& l : ls) visible += !l.name.starts_with("__");
      if (visible > lim_.max_labels)
        return {errc::bad_labels, "series of profile type " + quote_untrusted(pt) + " has " +
                                      std::to_string(visible) + " labels, over max_labels=" +
                                      std::to_string(lim_.max_labels)};
      std::sort(ls.begin(), ls.end());
      series_labels[t * ng + g] = std::move(ls);
    }
  }

  // 6. Nothing can fail from here on: intern symbols and stacks, emit series. pprof ids are
  // dense indexes, so each pprof string, function, mapping and location is mapped (and its bytes
  // hashed) at most once per profile, through vectors; the tables are sized up front.
  symbols& bs = batch_.syms;
  syms_.reserve(bs.strings.size() + p.strings.size(), bs.mappings.size() + p.mappings.size(),
                bs.functions.size() + p.functions.size(), bs.locations.size() + p.locations.size());
  stacks_.reserve(batch_.stack_count() + ns);
  reserve_more(bs.strings, p.strings.size());
  reserve_more(batch_.string_hashes, p.strings.size());
  reserve_more(bs.functions, p.functions.size());
  reserve_more(bs.locations, p.locations.size());
  reserve_more(bs.lines, p.lines.size());
  reserve_more(batch_.stack_offsets, ns);
  reserve_more(batch_.stack_locations, p.location_ids.size());
  std::vector<uint32_t>& str_map = str_map_;
  str_map.assign(p.strings.size(), UINT32_MAX);
  std::vector<uint32_t>& fn_map = fn_map_;
  fn_map.assign(p.functions.size(), UINT32_MAX);
  std::vector<uint32_t>& loc_map = loc_map_;
  loc_map.assign(p.locations.size(), UINT32_MAX);
  std::vector<uint32_t>& mapping_map = mapping_map_;
  mapping_map.assign(p.mappings.size(), UINT32_MAX);
  std::vector<line_rec>& line_scratch = line_scratch_;
  auto map_string = [&](int64_t i) -> uint32_t {
    if (i < 0 || static_cast<uint64_t>(i) >= p.strings.size()) return 0;  // p.str() gives ""
    uint32_t& id = str_map[static_cast<size_t>(i)];
    if (id == UINT32_MAX) {
      const std::string_view v = truncate_symbol(p.strings[static_cast<size_t>(i)], lim_.max_symbol_len);
      const uint64_t h = hash_bytes(v);
      id = syms_.string(bs, v, h);
      // A new string: its hash goes with the batch, so the head need not hash it again.
      if (batch_.string_hashes.size() < bs.strings.size()) batch_.string_hashes.push_back(h);
    }
    return id;
  };
  auto map_mapping = [&](uint64_t id) -> uint32_t {
    if (id == 0) return 0;
    const uint32_t mi = map_ids.find(id);
    if (mapping_map[mi] == UINT32_MAX) {
      const pprof::mapping& pm = p.mappings[mi];
      mapping_rec r;
      r.memory_start = pm.memory_start;
      r.memory_limit = pm.memory_limit;
      r.file_offset = pm.file_offset;
      r.filename = map_string(pm.filename);
      r.build_id = map_string(pm.build_id);
      r.flags = static_cast<uint8_t>((pm.has_functions ? mapping_has_functions : 0) |
                                     (pm.has_filenames ? mapping_has_filenames : 0) |
                                     (pm.has_line_numbers ? mapping_has_line_numbers : 0) |
                                     (pm.has_inline_frames ? mapping_has_inline_frames : 0));
      mapping_map[mi] = syms_.mapping(batch_.syms, r);
    }
    return mapping_map[mi];
  };
  auto map_function = [&](uint32_t fi) {
    if (fn_map[fi] == UINT32_MAX) {
      const pprof::function& f = p.functions[fi];
      function_rec r;
      r.name = map_string(f.name);
      r.system_name = map_string(f.system_name);
      r.filename = map_string(f.filename);
      r.start_line = f.start_line;
      fn_map[fi] = syms_.function(batch_.syms, r);
    }
    return fn_map[fi];
  };
  // The first use of each location; later uses read loc_map directly.
  auto map_location = [&](uint32_t li) {
    const pprof::location& loc = p.locations[li];
    line_scratch.clear();
    for (uint32_t j = 0; j < loc.line_count; ++j) {
      const pprof::line& pl = p.lines[loc.line_begin + j];
      line_scratch.push_back({map_function(fn_ids.find(pl.function_id)), pl.line});
    }
    // Symbolized frames are identified by their mapping and lines; the address is kept only
    // for unsymbolized ones, so one function+line at two addresses of a binary is one location.
    uint64_t address = line_scratch.empty() ? loc.address : 0;
    loc_map[li] = syms_.location(batch_.syms, address, line_scratch, map_mapping(loc.mapping_id));
    return loc_map[li];
  };

  // Samples bucketed by group (counting sort), each with its interned stack.
  for (size_t g = 1; g <= ng; ++g) group_count[g] += group_count[g - 1];
  std::vector<uint32_t>& by_group = by_group_;
  by_group.resize(group_count[ng]);
  std::vector<uint32_t>& sample_stack = sample_stack_;
  sample_stack.assign(ns, UINT32_MAX);
  std::vector<uint32_t>& locs = locs_;
  {
    std::vector<uint32_t>& fill = fill_;
    fill.assign(group_count.begin(), group_count.end() - 1);
    for (size_t i = 0; i < ns; ++i) {
      const pprof::sample& s = p.samples[i];
      if (s.loc_count == 0) continue;
      bool any = false;
      for (size_t t = 0; t < nt && !any; ++t) any = p.values[s.value_begin + t] != 0;
      if (!any) continue;
      by_group[fill[group_of[i]]++] = static_cast<uint32_t>(i);
      size_t first = 0;
      // Only stack_depth_policy::truncate gets here with a deeper stack: keep the root side.
      if (s.loc_count > lim_.max_stack_depth) first = s.loc_count - lim_.max_stack_depth;
      if (first == s.loc_count) continue;  // max_stack_depth == 0
      // Sized once and written by index: a push_back per frame does not inline in this loop.
      locs.resize(s.loc_count - first);
      uint32_t* out = locs.data();
      for (size_t k = first; k < s.loc_count; ++k) {
        const uint32_t li = loc_index[s.loc_begin + k];
        *out++ = loc_map[li] != UINT32_MAX ? loc_map[li] : map_location(li);
      }
      sample_stack[i] = intern_stack(locs);
    }
  }

  const int64_t time_ns = m.time_ns != 0 ? m.time_ns : p.time_nanos;
  const int64_t duration_ns = m.duration_ns != 0 ? m.duration_ns : p.duration_nanos;
  stack_slot_.resize(batch_.stack_count(), UINT32_MAX);
  for (size_t t = 0; t < nt; ++t) {
    for (size_t g = 0; g < ng; ++g) {
      if (!nonempty[t * ng + g]) continue;
      ingest_series out;
      out.time_ns = time_ns;
      out.duration_ns = duration_ns;
      out.id_hi = m.id_hi;
      out.id_lo = m.id_lo;
      out.period = p.period;
      out.sample_stacks.reserve(group_count[g + 1] - group_count[g]);
      out.sample_values.reserve(group_count[g + 1] - group_count[g]);
      for (uint32_t k = group_count[g]; k < group_count[g + 1]; ++k) {
        const uint32_t i = by_group[k];
        const int64_t v = p.values[p.samples[i].value_begin + t];
        const uint32_t st = sample_stack[i];
        if (v == 0 || st == UINT32_MAX) continue;
        uint32_t& slot = stack_slot_[st];
        if (slot == UINT32_MAX) {
          slot = static_cast<uint32_t>(out.sample_stacks.size());
          out.sample_stacks.push_back(st);
          out.sample_values.push_back(v);
        } else {
          out.sample_values[slot] = wrapping_add(out.sample_values[slot], v);
        }
        if (!sample_span.empty() && sample_span[i] != 0) out.spans.push_back({st, sample_span[i], v});
      }
      for (uint32_t st : out.sample_stacks) stack_slot_[st] = UINT32_MAX;
      sum_span_samples(out.spans);
      if (out.sample_stacks.empty()) continue;
      out.labels = std::move(series_labels[t * ng + g]);
      batch_.series.push_back(std::move(out));
    }
  }
  return {};
}

std::optional<uint64_t> parse_span_id(std::string_view s) {
  if (s.size() != 16) return std::nullopt;
  uint64_t v = 0;
  for (char c : s) {
    uint64_t d = 0;
    if (c >= '0' && c <= '9') d = static_cast<uint64_t>(c - '0');
    else if (c >= 'a' && c <= 'f') d = static_cast<uint64_t>(c - 'a' + 10);
    else if (c >= 'A' && c <= 'F') d = static_cast<uint64_t>(c - 'A' + 10);
    else return std::nullopt;
    v = v << 4 | d;
  }
  if (v == 0) return std::nullopt;
  return v;
}

void sum_span_samples(std::vector<span_sample>& spans) {
  if (spans.empty()) return;
  std::sort(spans.begin(), spans.end(), [](const span_sample& a, const span_sample& b) {
    return std::tie(a.stack, a.span_id) < std::tie(b.stack, b.span_id);
  });
  size_t w = 0;
  for (size_t r = 1; r < spans.size(); ++r) {
    if (spans[r].stack == spans[w].stack && spans[r].span_id == spans[w].span_id)
      spans[w].value = wrapping_add(spans[w].value, spans[r].value);
    else
      spans[++w] = spans[r];
  }
  spans.resize(w + 1);
  std::erase_if(spans, [](const span_sample& x) { return x.value == 0; });
}

status batch_builder::add_converted(const pprof::profile& p, const ingest_meta& m,
                                    std::string_view metric_name, std::string_view app) {
  // Spelled as a push: the labels are complete, so add() derives nothing from the request.
  ingest_meta push;
  push.from = ingest_meta::source::push;
  push.time_ns = m.time_ns;
  push.duration_ns = m.duration_ns;
  push.id_hi = m.id_hi;
  push.id_lo = m.id_lo;
  bool has_service = false, has_app_name = false;
  for (const label& l : m.labels) {
    if (l.name.starts_with("__")) continue;
    has_service = has_service || l.name == k_service;
    has_app_name = has_app_name || l.name == "app_name";
    push.labels.push_back(l);
  }
  push.labels.push_back({std::string(k_name), std::string(metric_name)});
  push.labels.push_back({"__delta__", "false"});
  if (!m.spy_name.empty()) push.labels.push_back({"pyroscope_spy", m.spy_name});
  if (!has_service) push.labels.push_back({std::string(k_service), std::string(app)});
  else if (!has_app_name) push.labels.push_back({"app_name", std::string(app)});
  std::sort(push.labels.begin(), push.labels.end());
  return add(p, push);
}

status append_profile(const pprof::profile& p, const ingest_meta& m, const normalize_limits& lim,
                      ingest_batch& out) {
  batch_builder b(std::move(out), lim);
  status st = b.add(p, m);
  out = b.finish();
  return st;
}

}  // namespace hearth
