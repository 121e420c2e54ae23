#pragma once
// Helpers shared by the query/ tests and benchmarks: blocks built from the shared real profiles
// (format/test_util.hpp) through the same path ingest takes (normalize, then the head), and
// rendering a flame_tree as "a;b;c" -> self.

#include <algorithm>
#include <cstdint>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "format/head.hpp"
#include "format/normalize.hpp"
#include "format/test_util.hpp"
#include "query/evaluate.hpp"
#include "query/flame_tree.hpp"

namespace hearth::test {

inline constexpr int64_t s_ns = 1'000'000'000;
inline const std::string cpu_type = "process_cpu:cpu:nanoseconds:cpu:nanoseconds";

/// A flame-graph selection of every CPU profile in [start, end).
inline query::query_spec stacks_query(int64_t start, int64_t end) {
  query::query_spec q;
  q.kind = static_cast<uint8_t>(query::query_kind::merge_stacks);
  q.profile_type = cpu_type;
  q.selector = "{}";
  q.start_ns = start;
  q.end_ns = end;
  return q;
}

/// One real profile to put in a block: a testdata-relative path, its time and its labels.
struct profile_file {
  std::string path;  ///< relative to testdata_dir(), e.g. "go/workpool.cpu.000.pb.gz"
  int64_t time_ns = 0;
  std::string service = "svc";
  label_set
      extra;  ///< more series labels (sorted by name, not clashing with __name__/service_name)
};

/// Appends one decoded profile, as pushed with `__name__` = `name`, to `h`. Adds a test failure
/// when it cannot be normalized.
inline void append_to(head& h, const pprof::profile& p, const std::string& name,
                      const profile_file& f) {
  ingest_meta m;
  m.labels = {{"__name__", name}, {"service_name", f.service}};
  m.labels.insert(m.labels.end(), f.extra.begin(), f.extra.end());
  std::sort(m.labels.begin(), m.labels.end());
  m.time_ns = f.time_ns;
  ingest_batch b;
  if (auto st = append_profile(p, m, {}, b); !st.ok()) {
    ADD_FAILURE() << f.path << ": " << st.err().to_string();
    return;
  }
  h.append(b);
}

/// A block holding the given profiles, as pushed (`__name__` = `name`) and appended to a head.
/// Adds a test failure for a file that cannot be loaded or normalized.
inline block_data block_of(const std::vector<profile_file>& files,
                           const std::string& name = "process_cpu") {
  head h;
  for (const auto& f : files) {
    auto lp = load_profile(testdata_dir() + "/" + f.path);
    if (lp) append_to(h, lp->p, name, f);
  }
  return h.seal();
}

/// A block holding one uncompressed pprof message (e.g. one we rendered), as block_of() does.
inline block_data block_of_pprof(const std::string& raw, const std::string& name = "process_cpu") {
  head h;
  auto p = pprof::decode(as_bytes(raw));
  if (!p.ok()) {
    ADD_FAILURE() << p.err().to_string();
    return h.seal();
  }
  append_to(h, *p, name, profile_file{"rendered", 1});
  return h.seal();
}

/// `function -> {flat, cum}` from expected/<dir>/<name>/top.<type>.txt (`go tool pprof -top`
/// in exact units; the " (inline)" marker stripped). Empty when the file is missing.
inline std::map<std::string, std::pair<int64_t, int64_t>> expected_top(const std::string& dir,
                                                                       const std::string& name,
                                                                       const std::string& type) {
  std::map<std::string, std::pair<int64_t, int64_t>> out;
  std::ifstream f(testdata_dir() + "/expected/" + dir + "/" + name + "/top." + type + ".txt");
  std::string line;
  bool table = false;
  while (std::getline(f, line)) {
    if (!table) {
      table = line.find("flat%") != std::string::npos;
      continue;
    }
    std::istringstream in(line);
    std::string flat, flat_pct, sum_pct, cum, cum_pct, fn;
    in >> flat >> flat_pct >> sum_pct >> cum >> cum_pct;
    std::getline(in >> std::ws, fn);
    if (auto pos = fn.rfind(" (inline)"); pos != std::string::npos) fn.resize(pos);
    out[fn] = {std::stoll(flat), std::stoll(cum)};
  }
  return out;
}

/// Every node of a finalized tree with a non-zero self as "a;b;c" -> self.
inline std::map<std::string, int64_t> tree_paths(const query::flame_tree& t) {
  std::map<std::string, int64_t> out;
  for (uint32_t i = 1; i < t.size(); ++i) {
    if (t.nodes()[i].self == 0) continue;
    std::string p(t.name_of(i));
    for (uint32_t n = t.nodes()[i].parent; n != query::flame_tree::root; n = t.nodes()[n].parent)
      p = std::string(t.name_of(n)) + ";" + p;
    out[p] += t.nodes()[i].self;
  }
  return out;
}

}  // namespace hearth::test
