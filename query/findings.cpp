#include "query/findings.hpp"

#include <algorithm>
#include <cassert>
#include <cstdio>
#include <map>

namespace hearth::query {
namespace {

double share(int64_t v, int64_t total) {
  return total == 0 ? 0 : static_cast<double>(v) / static_cast<double>(total);
}

template <class T, class Less>
std::vector<T> top(std::vector<T> v, int64_t n, Less less) {
  std::sort(v.begin(), v.end(), less);
  if (n > 0 && v.size() > static_cast<size_t>(n)) v.resize(static_cast<size_t>(n));
  return v;
}

// The first `n` (all when n <= 0) of `ids` in `less` order (a strict total order).
template <class Less>
std::vector<uint32_t> top_ids(std::vector<uint32_t> ids, int64_t n, Less less) {
  const size_t k = n > 0 ? std::min(ids.size(), static_cast<size_t>(n)) : ids.size();
  std::partial_sort(ids.begin(), ids.begin() + static_cast<std::ptrdiff_t>(k), ids.end(), less);
  ids.resize(k);
  return ids;
}

void append_double(std::string& out, double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.17g", v);
  out += buf;
}

void append_field(std::string& out, const char* key, int64_t v) {
  out += '"';
  out += key;
  out += "\":";
  out += std::to_string(v);
}

void append_field(std::string& out, const char* key, double v) {
  out += '"';
  out += key;
  out += "\":";
  append_double(out, v);
}

void append_name(std::string& out, const std::string& name) {
  out += R"("name":)";
  append_json_string(out, name);
}

template <class T, class F>
void append_list(std::string& out, const char* key, const std::vector<T>& v, F each) {
  out += '"';
  out += key;
  out += "\":[";
  for (size_t i = 0; i < v.size(); ++i) {
    if (i) out += ',';
    out += '{';
    each(v[i]);
    out += '}';
  }
  out += ']';
}

}  // namespace

tree_findings find(const flame_tree& tree, int64_t n) {
  assert(tree.finalized());
  tree_findings f;
  f.total = tree.total();
  // Ranked by name id, strings only for the n kept (a tree may have 100k+ names).
  const function_totals t = totals_by_name(tree);
  const auto& names = tree.names();
  std::vector<uint32_t> ids;
  for (uint32_t i = 0; i < names.size(); ++i)
    if (t.seen[i]) ids.push_back(i);
  const auto shares = [&](const std::vector<uint32_t>& picked) {
    std::vector<function_share> out;
    for (uint32_t i : picked)
      out.push_back({names[i], t.self[i], t.total[i], share(t.self[i], f.total), share(t.total[i], f.total)});
    return out;
  };
  f.top_self = shares(top_ids(ids, n, [&](uint32_t a, uint32_t b) {
    return t.self[a] != t.self[b] ? t.self[a] > t.self[b] : names[a] < names[b];
  }));
  f.top_total = shares(top_ids(std::move(ids), n, [&](uint32_t a, uint32_t b) {
    return t.total[a] != t.total[b] ? t.total[a] > t.total[b] : names[a] < names[b];
  }));

  // The heaviest child of every node, then the walk from the root.
  const auto& nodes = tree.nodes();
  std::vector<uint32_t> best(nodes.size(), 0);  // 0 = no child
  for (uint32_t i = 1; i < nodes.size(); ++i) {
    uint32_t& b = best[nodes[i].parent];
    if (b == 0 || nodes[i].total > nodes[b].total ||
        (nodes[i].total == nodes[b].total && tree.name_of(i) < tree.name_of(b)))
      b = i;
  }
  for (uint32_t cur = best[flame_tree::root]; cur != 0; cur = best[cur])
    f.hot_path.push_back({std::string(tree.name_of(cur)), nodes[cur].self, nodes[cur].total,
                          share(nodes[cur].total, f.total)});
  return f;
}

regression_findings find_regressions(const flame_tree& left, const flame_tree& right, int64_t n) {
  assert(left.finalized() && right.finalized());
  regression_findings r;
  r.left_total = left.total();
  r.right_total = right.total();
  std::map<std::string, function_change> by_name;
  for (const auto& s : top_functions(left)) {
    auto& c = by_name[s.name];
    c.left_self = s.self;
    c.left_total = s.total;
  }
  for (const auto& s : top_functions(right)) {
    auto& c = by_name[s.name];
    c.right_self = s.self;
    c.right_total = s.total;
  }
  std::vector<function_change> all;
  all.reserve(by_name.size());
  for (auto& [name, c] : by_name) {
    c.name = name;
    c.left_self_share = share(c.left_self, r.left_total);
    c.left_total_share = share(c.left_total, r.left_total);
    c.right_self_share = share(c.right_self, r.right_total);
    c.right_total_share = share(c.right_total, r.right_total);
    c.self_share_delta = c.right_self_share - c.left_self_share;
    c.total_share_delta = c.right_total_share - c.left_total_share;
    all.push_back(std::move(c));
  }
  const auto pick = [&](double function_change::*delta, bool grew) {
    std::vector<function_change> v;
    for (const auto& c : all)
      if (grew ? c.*delta > 0 : c.*delta < 0) v.push_back(c);
    return top(std::move(v), n, [&](const function_change& a, const function_change& b) {
      if (a.*delta != b.*delta) return grew ? a.*delta > b.*delta : a.*delta < b.*delta;
      return a.name < b.name;
    });
  };
  r.self_grew = pick(&function_change::self_share_delta, true);
  r.self_shrank = pick(&function_change::self_share_delta, false);
  r.total_grew = pick(&function_change::total_share_delta, true);
  r.total_shrank = pick(&function_change::total_share_delta, false);
  return r;
}

std::string render_findings_json(const tree_findings& f) {
  std::string out = "{";
  append_field(out, "total", f.total);
  const auto fn = [&](const function_share& s) {
    append_name(out, s.name);
    out += ',';
    append_field(out, "self", s.self);
    out += ',';
    append_field(out, "total", s.total);
    out += ',';
    append_field(out, "selfShare", s.self_share);
    out += ',';
    append_field(out, "totalShare", s.total_share);
  };
  out += ',';
  append_list(out, "topSelf", f.top_self, fn);
  out += ',';
  append_list(out, "topTotal", f.top_total, fn);
  out += ',';
  append_list(out, "hotPath", f.hot_path, [&](const path_frame& p) {
    append_name(out, p.name);
    out += ',';
    append_field(out, "self", p.self);
    out += ',';
    append_field(out, "total", p.total);
    out += ',';
    append_field(out, "share", p.share);
  });
  out += '}';
  return out;
}

std::string render_regressions_json(const regression_findings& r) {
  std::string out = "{";
  append_field(out, "leftTotal", r.left_total);
  out += ',';
  append_field(out, "rightTotal", r.right_total);
  const auto change = [&](const function_change& c) {
    append_name(out, c.name);
    for (auto [key, v] :
         {std::pair{"leftSelf", c.left_self}, std::pair{"leftTotal", c.left_total},
          std::pair{"rightSelf", c.right_self}, std::pair{"rightTotal", c.right_total}}) {
      out += ',';
      append_field(out, key, v);
    }
    for (auto [key, v] : {std::pair{"leftSelfShare", c.left_self_share},
                          std::pair{"leftTotalShare", c.left_total_share},
                          std::pair{"rightSelfShare", c.right_self_share},
                          std::pair{"rightTotalShare", c.right_total_share},
                          std::pair{"selfShareDelta", c.self_share_delta},
                          std::pair{"totalShareDelta", c.total_share_delta}}) {
      out += ',';
      append_field(out, key, v);
    }
  };
  for (auto [key, list] :
       {std::pair{"selfGrew", &r.self_grew}, std::pair{"selfShrank", &r.self_shrank},
        std::pair{"totalGrew", &r.total_grew}, std::pair{"totalShrank", &r.total_shrank}}) {
    out += ',';
    append_list(out, key, *list, change);
  }
  out += '}';
  return out;
}

}  // namespace hearth::query
