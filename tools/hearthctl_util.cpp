#include "tools/hearthctl_util.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <functional>

#include "format/text.hpp"

namespace hearth::ctl {
namespace {

constexpr int64_t ns_per_s = 1000000000;

bool all_digits(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

std::optional<int64_t> to_int(std::string_view s) {
  if (!all_digits(s) || s.size() > 19) return std::nullopt;
  int64_t v = 0;
  for (char c : s) {
    if (v > (INT64_MAX - (c - '0')) / 10) return std::nullopt;
    v = v * 10 + (c - '0');
  }
  return v;
}

// "1h30m", "15s", "500ms": a sum of (number, unit) terms, in ns.
std::optional<int64_t> parse_terms_ns(std::string_view s) {
  if (s.empty()) return std::nullopt;
  int64_t total = 0;
  size_t i = 0;
  while (i < s.size()) {
    size_t j = i;
    while (j < s.size() && s[j] >= '0' && s[j] <= '9') ++j;
    if (j == i) return std::nullopt;
    auto n = to_int(s.substr(i, j - i));
    if (!n) return std::nullopt;
    size_t k = j;
    while (k < s.size() && std::isalpha(static_cast<unsigned char>(s[k]))) ++k;
    std::string_view unit = s.substr(j, k - j);
    int64_t mul = 0;
    if (unit == "ms") mul = 1000000;
    else if (unit == "s") mul = ns_per_s;
    else if (unit == "m") mul = 60 * ns_per_s;
    else if (unit == "h") mul = 3600 * ns_per_s;
    else if (unit == "d") mul = 86400 * ns_per_s;
    else if (unit == "w") mul = 7 * 86400 * ns_per_s;
    else return std::nullopt;
    if (*n > INT64_MAX / mul) return std::nullopt;
    total += *n * mul;
    i = k;
  }
  return total;
}

// RFC 3339: YYYY-MM-DDTHH:MM:SS[.frac](Z|±HH:MM); 't' and ' ' accepted for 'T'.
std::optional<int64_t> parse_rfc3339(std::string_view s) {
  if (s.size() < 20 || s[4] != '-' || s[7] != '-' || (s[10] != 'T' && s[10] != 't' && s[10] != ' ') ||
      s[13] != ':' || s[16] != ':')
    return std::nullopt;
  auto y = to_int(s.substr(0, 4)), mo = to_int(s.substr(5, 2)), d = to_int(s.substr(8, 2));
  auto h = to_int(s.substr(11, 2)), mi = to_int(s.substr(14, 2)), se = to_int(s.substr(17, 2));
  if (!y || !mo || !d || !h || !mi || !se || *mo < 1 || *mo > 12 || *d < 1 || *d > 31 || *h > 23 ||
      *mi > 59 || *se > 60)
    return std::nullopt;
  size_t i = 19;
  int64_t frac_ns = 0;
  if (i < s.size() && s[i] == '.') {
    size_t j = ++i;
    int64_t scale = 100000000;
    while (j < s.size() && s[j] >= '0' && s[j] <= '9') {
      frac_ns += (s[j] - '0') * scale;
      scale /= 10;
      ++j;
    }
    if (j == i) return std::nullopt;
    i = j;
  }
  int64_t offset_s = 0;
  if (i < s.size() && (s[i] == 'Z' || s[i] == 'z')) {
    ++i;
  } else if (i + 6 == s.size() && (s[i] == '+' || s[i] == '-') && s[i + 3] == ':') {
    auto oh = to_int(s.substr(i + 1, 2)), om = to_int(s.substr(i + 4, 2));
    if (!oh || !om || *oh > 23 || *om > 59) return std::nullopt;
    offset_s = (*oh * 3600 + *om * 60) * (s[i] == '+' ? 1 : -1);
    i += 6;
  } else {
    return std::nullopt;
  }
  if (i != s.size()) return std::nullopt;
  int64_t days = days_from_civil(*y, static_cast<unsigned>(*mo), static_cast<unsigned>(*d));
  int64_t secs = days * 86400 + *h * 3600 + *mi * 60 + *se - offset_s;
  return secs * ns_per_s + frac_ns;
}

std::string fmt(const char* f, double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, f, v);
  return buf;
}

// Display width of UTF-8 text (code points; every one counts 1).
size_t text_width(std::string_view s) {
  size_t n = 0;
  for (char c : s) n += (static_cast<unsigned char>(c) & 0xc0) != 0x80;
  return n;
}

// The first `w` code points of `s`, the last one an ellipsis when cut.
std::string cut(std::string_view s, size_t w) {
  if (text_width(s) <= w) return std::string(s);
  if (w == 0) return "";
  std::string out;
  size_t n = 0;
  for (size_t i = 0; i < s.size(); ++i) {
    bool start = (static_cast<unsigned char>(s[i]) & 0xc0) != 0x80;
    if (start && ++n > w - 1) break;
    out += s[i];
  }
  return out + "\xe2\x80\xa6";
}

}  // namespace

std::optional<int64_t> parse_time(std::string_view s, int64_t now_ns) {
  if (s == "now") return now_ns;
  if (s.rfind("now-", 0) == 0) {
    auto d = parse_terms_ns(s.substr(4));
    if (!d) return std::nullopt;
    return now_ns - *d;
  }
  if (all_digits(s)) {
    auto v = to_int(s);
    if (!v) return std::nullopt;
    switch (s.size()) {
      case 13: return *v * 1000000;
      case 16: return *v * 1000;
      case 19: return *v;
      default:
        if (*v > INT64_MAX / ns_per_s) return std::nullopt;
        return *v * ns_per_s;
    }
  }
  return parse_rfc3339(s);
}

std::optional<double> parse_duration_s(std::string_view s) {
  if (all_digits(s)) return static_cast<double>(*to_int(s));
  auto ns = parse_terms_ns(s);
  if (!ns || *ns <= 0) return std::nullopt;
  return static_cast<double>(*ns) / ns_per_s;
}

std::string human_bytes(double b) {
  static const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB"};
  int u = 0;
  double v = b;
  while (std::fabs(v) >= 1024 && u < 5) {
    v /= 1024;
    ++u;
  }
  if (u == 0) return fmt("%.0f B", v);
  return fmt(std::fabs(v) >= 100 ? "%.0f " : std::fabs(v) >= 10 ? "%.1f " : "%.2f ", v) + units[u];
}

std::string human_duration_ns(double ns) {
  double a = std::fabs(ns);
  if (a < 1e3) return fmt("%.0f ns", ns);
  if (a < 1e6) return fmt("%.2f µs", ns / 1e3);
  if (a < 1e9) return fmt("%.2f ms", ns / 1e6);
  if (a < 60e9) return fmt("%.2f s", ns / 1e9);
  if (a < 3600e9) {
    int64_t s = static_cast<int64_t>(a / 1e9);
    return (ns < 0 ? "-" : "") + std::to_string(s / 60) + "m " + std::to_string(s % 60) + "s";
  }
  int64_t m = static_cast<int64_t>(a / 60e9);
  return (ns < 0 ? "-" : "") + std::to_string(m / 60) + "h " + std::to_string(m % 60) + "m";
}

std::string human_count(double n) {
  double a = std::fabs(n);
  if (a < 10000) return fmt("%.0f", n);
  if (a < 1e6) return fmt("%.1fk", n / 1e3);
  if (a < 1e9) return fmt("%.1fM", n / 1e6);
  return fmt("%.1fG", n / 1e9);
}

std::string human_value(double v, std::string_view unit) {
  if (unit == "nanoseconds") return human_duration_ns(v);
  if (unit == "microseconds") return human_duration_ns(v * 1e3);
  if (unit == "milliseconds") return human_duration_ns(v * 1e6);
  if (unit == "seconds") return human_duration_ns(v * 1e9);
  if (unit == "bytes") return human_bytes(v);
  return human_count(v);
}

std::string sample_unit_of(std::string_view id) {
  size_t a = id.find(':');
  if (a == std::string_view::npos) return "";
  size_t b = id.find(':', a + 1);
  if (b == std::string_view::npos) return "";
  size_t c = id.find(':', b + 1);
  return std::string(id.substr(b + 1, c == std::string_view::npos ? std::string_view::npos : c - b - 1));
}

std::string format_time_ns(int64_t ns) {
  std::time_t t = static_cast<std::time_t>(ns / ns_per_s);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%SZ", &tm);
  return buf;
}

void append_json(std::string& out, std::string_view s) {
  out += '"';
  append_json_escaped(out, s);
  out += '"';
}

std::string json_string(std::string_view s) {
  std::string out;
  append_json(out, s);
  return out;
}

table::table(std::vector<std::string> header, std::vector<bool> right)
    : header_(std::move(header)), right_(std::move(right)) {
  right_.resize(header_.size(), false);
}

void table::add(std::vector<std::string> row) {
  row.resize(header_.size());
  rows_.push_back(std::move(row));
}

std::string table::render(size_t width) const {
  std::vector<size_t> w(header_.size(), 0);
  for (size_t i = 0; i < header_.size(); ++i) w[i] = text_width(header_[i]);
  for (const auto& r : rows_)
    for (size_t i = 0; i < r.size(); ++i) w[i] = std::max(w[i], text_width(r[i]));
  auto line = [&](const std::vector<std::string>& r) {
    std::string out;
    for (size_t i = 0; i < r.size(); ++i) {
      bool last = i + 1 == r.size();
      std::string cell = r[i];
      if (last && width > 0) {
        size_t used = text_width(out);
        cell = cut(cell, width > used ? width - used : 1);
      }
      size_t pad = w[i] > text_width(cell) ? w[i] - text_width(cell) : 0;
      if (right_[i]) out += std::string(pad, ' ') + cell;
      else out += cell + (last ? "" : std::string(pad, ' '));
      if (!last) out += "  ";
    }
    while (!out.empty() && out.back() == ' ') out.pop_back();
    return out + "\n";
  };
  std::string out = line(header_);
  for (const auto& r : rows_) out += line(r);
  return out;
}

std::string render_tree(const flame_levels& g, const tree_options& o) {
  struct node {
    int64_t x = 0, total = 0, self = 0;
    int64_t name = 0;
    std::vector<size_t> children;
  };
  std::vector<node> nodes;
  std::vector<std::vector<size_t>> by_level(g.levels.size());
  for (size_t d = 0; d < g.levels.size(); ++d) {
    int64_t x = 0;
    const auto& lv = g.levels[d];
    for (size_t k = 0; k + 3 < lv.size(); k += 4) {
      x += lv[k];
      node n;
      n.x = x;
      n.total = lv[k + 1];
      n.self = lv[k + 2];
      n.name = lv[k + 3];
      x += n.total;
      by_level[d].push_back(nodes.size());
      nodes.push_back(std::move(n));
    }
  }
  if (nodes.empty() || by_level[0].empty()) return "(no data)\n";
  // A node's parent is the node one level up whose [x, x + total) holds its x.
  for (size_t d = 1; d < by_level.size(); ++d) {
    size_t p = 0;
    const auto& ups = by_level[d - 1];
    for (size_t id : by_level[d]) {
      while (p < ups.size() && nodes[ups[p]].x + nodes[ups[p]].total <= nodes[id].x) ++p;
      if (p < ups.size()) nodes[ups[p]].children.push_back(id);
    }
  }
  const double root_total = static_cast<double>(std::max<int64_t>(nodes[by_level[0][0]].total, 1));
  auto pct = [&](int64_t v) { return fmt("%.2f%%", 100.0 * static_cast<double>(v) / root_total); };
  table t({"TOTAL", "%", "SELF", "%", "FUNCTION"}, {true, true, true, true, false});
  std::function<void(size_t, int, std::string)> walk = [&](size_t id, int depth, std::string indent) {
    const node& n = nodes[id];
    std::string name = n.name >= 0 && static_cast<size_t>(n.name) < g.names.size() ? g.names[n.name] : "?";
    t.add({human_value(static_cast<double>(n.total), o.unit), pct(n.total),
           human_value(static_cast<double>(n.self), o.unit), pct(n.self), indent + name});
    if (o.max_depth > 0 && depth >= o.max_depth) return;
    std::vector<size_t> kids = n.children;
    std::stable_sort(kids.begin(), kids.end(),
                     [&](size_t a, size_t b) { return nodes[a].total > nodes[b].total; });
    int64_t hidden = 0;
    size_t hidden_n = 0;
    for (size_t c : kids) {
      if (100.0 * static_cast<double>(nodes[c].total) / root_total < o.min_percent) {
        hidden += nodes[c].total;
        ++hidden_n;
        continue;
      }
      walk(c, depth + 1, indent + "  ");
    }
    if (hidden_n)
      t.add({human_value(static_cast<double>(hidden), o.unit), pct(hidden), "", "",
             indent + "  \xe2\x80\xa6 " + std::to_string(hidden_n) + " more under " +
                 fmt("%g%%", o.min_percent)});
  };
  walk(by_level[0][0], 0, "");
  return t.render(o.width);
}

std::string progress_line(uint64_t done, uint64_t total, size_t width) {
  double f = total ? std::min(1.0, static_cast<double>(done) / static_cast<double>(total)) : 1.0;
  std::string tail = fmt("  %3.0f%%  ", f * 100) + human_bytes(static_cast<double>(done)) + "/" +
                     human_bytes(static_cast<double>(total));
  size_t bar = width > tail.size() + 12 ? std::min<size_t>(40, width - tail.size() - 3) : 10;
  size_t filled = static_cast<size_t>(f * static_cast<double>(bar));
  return "\r[" + std::string(filled, '#') + std::string(bar - filled, '.') + "]" + tail;
}

}  // namespace hearth::ctl
