#include "format/ingest_request.hpp"

#include <algorithm>
#include <limits>

#include "format/text.hpp"

namespace hearth {
namespace {

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\v' || c == '\f'; }

std::string_view trim(std::string_view s) {
  while (!s.empty() && is_space(s.front())) s.remove_prefix(1);
  while (!s.empty() && is_space(s.back())) s.remove_suffix(1);
  return s;
}

bool is_alnum(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}
bool is_app_char(char c) { return is_alnum(c) || c == '_' || c == '.' || c == '-' || c == '/'; }
bool is_label_char(char c) { return is_alnum(c) || c == '_' || c == '.'; }
bool is_digit(char c) { return c >= '0' && c <= '9'; }

char lower(char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; }
bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i)
    if (lower(a[i]) != lower(b[i])) return false;
  return true;
}

error labels_error(std::string msg) { return error{errc::bad_labels, std::move(msg)}; }
error time_error(std::string_view s, std::string why) {
  return error{errc::bad_time_range, "invalid time " + quote_untrusted(s) + ": " + std::move(why)};
}
error body_error(std::string msg) { return error{errc::bad_request_body, std::move(msg)}; }

bool is_leap(int64_t y) { return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0; }

/// Parses all-digit `s` (1..19 digits) into `out`; false on overflow of int64.
bool parse_digits(std::string_view s, int64_t& out) {
  uint64_t v = 0;
  for (char c : s) {
    uint64_t d = static_cast<uint64_t>(c - '0');
    if (v > (static_cast<uint64_t>(std::numeric_limits<int64_t>::max()) - d) / 10) return false;
    v = v * 10 + d;
  }
  out = static_cast<int64_t>(v);
  return true;
}

bool mul_overflows(int64_t a, int64_t b, int64_t& out) { return __builtin_mul_overflow(a, b, &out); }

}  // namespace

result<label_set> parse_app_name(std::string_view name) {
  std::string_view s = trim(name);
  size_t brace = s.find('{');
  std::string_view app = trim(s.substr(0, brace));
  if (app.empty())
    return labels_error("invalid name " + quote_untrusted(name) + ": empty application name");
  for (char c : app)
    if (!is_app_char(c))
      return labels_error("invalid name " + quote_untrusted(name) + ": application name " +
                          quote_untrusted(app) + " contains " +
                          quote_untrusted(std::string_view(&c, 1)) +
                          " (allowed: A-Z a-z 0-9 _ . - /)");
  label_set out;
  out.push_back({"__name__", std::string(app)});
  if (brace != std::string_view::npos) {
    size_t i = brace + 1;
    bool closed = false;
    while (i < s.size()) {
      // name
      size_t name_end = i;
      while (name_end < s.size() && s[name_end] != '=' && s[name_end] != ',' && s[name_end] != '}')
        ++name_end;
      std::string_view lname = trim(s.substr(i, name_end - i));
      if (name_end < s.size() && s[name_end] == '}' && lname.empty()) {
        closed = true;  // `app{}` or a trailing comma
        i = name_end + 1;
        break;
      }
      if (name_end == s.size() || s[name_end] != '=') {
        if (name_end == s.size() && lname.empty()) break;  // missing `}` after a comma
        return labels_error("invalid name " + quote_untrusted(name) + ": label " +
                            quote_untrusted(lname) + " has no '='");
      }
      if (lname.empty())
        return labels_error("invalid name " + quote_untrusted(name) + ": empty label name");
      for (char c : lname)
        if (!is_label_char(c))
          return labels_error("invalid name " + quote_untrusted(name) + ": label name " +
                              quote_untrusted(lname) + " contains " +
                              quote_untrusted(std::string_view(&c, 1)) +
                              " (allowed: A-Z a-z 0-9 _ .)");
      // value: raw up to `,` or `}`
      size_t v = name_end + 1;
      size_t value_end = v;
      while (value_end < s.size() && s[value_end] != ',' && s[value_end] != '}') ++value_end;
      if (value_end == s.size()) break;  // missing `}`
      std::string_view value = trim(s.substr(v, value_end - v));
      // An empty value means "no label", as in Prometheus; it still counts for duplicates.
      out.push_back({std::string(lname), std::string(value)});
      i = value_end + 1;
      if (s[value_end] == '}') {
        closed = true;
        break;
      }
    }
    if (!closed) return labels_error("invalid name " + quote_untrusted(name) + ": missing '}'");
    if (!trim(s.substr(i)).empty())
      return labels_error("invalid name " + quote_untrusted(name) + ": unexpected text after '}'");
  }
  std::sort(out.begin(), out.end());
  for (size_t k = 1; k < out.size(); ++k)
    if (out[k].name == out[k - 1].name)
      return labels_error("invalid name " + quote_untrusted(name) + ": duplicate label name " +
                          quote_untrusted(out[k].name));
  std::erase_if(out, [](const label& l) { return l.value.empty(); });
  return out;
}

result<int64_t> parse_attime(std::string_view raw, int64_t now_ns) {
  std::string_view s = trim(raw);
  if (s.empty()) return time_error(raw, "empty");
  if (s.starts_with("now")) {
    std::string_view rest = s.substr(3);
    if (rest.empty()) return now_ns;
    if (rest.front() != '-' || rest.size() < 3)
      return time_error(raw, "want now or now-<n><s|m|h|d|w>");
    std::string_view num = rest.substr(1, rest.size() - 2);
    char unit = rest.back();
    int64_t mult = 0;
    switch (unit) {
      case 's': mult = 1'000'000'000LL; break;
      case 'm': mult = 60LL * 1'000'000'000LL; break;
      case 'h': mult = 3600LL * 1'000'000'000LL; break;
      case 'd': mult = 86400LL * 1'000'000'000LL; break;
      case 'w': mult = 7LL * 86400LL * 1'000'000'000LL; break;
      default:
        return time_error(raw, "unknown unit " + quote_untrusted(std::string_view(&unit, 1)));
    }
    if (num.empty() || num.size() > 18 || !std::all_of(num.begin(), num.end(), is_digit))
      return time_error(raw, "want now-<n><s|m|h|d|w>");
    int64_t n = 0, off = 0, t = 0;
    if (!parse_digits(num, n) || mul_overflows(n, mult, off) || __builtin_sub_overflow(now_ns, off, &t))
      return time_error(raw, "out of range");
    return t;
  }
  if (!std::all_of(s.begin(), s.end(), is_digit))
    return time_error(raw, "want now, now-<n><unit>, YYYYMMDD or a unix timestamp");
  if (s.size() > 19) return time_error(raw, "too many digits");
  int64_t v = 0;
  if (!parse_digits(s, v)) return time_error(raw, "out of range");
  if (s.size() == 8) {
    int64_t y = v / 10000;
    auto m = static_cast<unsigned>(v / 100 % 100);
    auto d = static_cast<unsigned>(v % 100);
    static constexpr unsigned mdays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (m < 1 || m > 12 || d < 1 || d > mdays[m - 1] + (m == 2 && is_leap(y) ? 1 : 0))
      return time_error(raw, "not a valid YYYYMMDD date");
    int64_t out = 0;
    if (mul_overflows(days_from_civil(y, m, d), 86400LL * 1'000'000'000LL, out))
      return time_error(raw, "out of range");
    return out;
  }
  int64_t out = 0;
  switch (s.size()) {
    case 13: if (mul_overflows(v, 1'000'000, out)) return time_error(raw, "out of range"); return out;
    case 16: if (mul_overflows(v, 1'000, out)) return time_error(raw, "out of range"); return out;
    case 19: return v;
    default:
      if (mul_overflows(v, 1'000'000'000, out)) return time_error(raw, "out of range");
      return out;
  }
}

result<std::string> multipart_boundary(std::string_view content_type) {
  size_t semi = content_type.find(';');
  std::string_view media = trim(content_type.substr(0, semi));
  if (!iequals(media, "multipart/form-data"))
    return body_error("Content-Type " + quote_untrusted(content_type) +
                      " is not multipart/form-data");
  std::string_view rest = semi == std::string_view::npos ? std::string_view{} : content_type.substr(semi + 1);
  while (!rest.empty()) {
    size_t eq = rest.find('=');
    if (eq == std::string_view::npos) break;
    std::string_view pname = trim(rest.substr(0, eq));
    rest.remove_prefix(eq + 1);
    while (!rest.empty() && (rest.front() == ' ' || rest.front() == '\t')) rest.remove_prefix(1);
    std::string value;
    if (!rest.empty() && rest.front() == '"') {
      size_t i = 1;
      bool closed = false;
      for (; i < rest.size(); ++i) {
        if (rest[i] == '\\' && i + 1 < rest.size()) {
          value += rest[++i];
        } else if (rest[i] == '"') {
          closed = true;
          break;
        } else {
          value += rest[i];
        }
      }
      if (!closed)
        return body_error("Content-Type " + quote_untrusted(content_type) +
                          ": unterminated quoted parameter");
      rest.remove_prefix(i + 1);
      size_t next = rest.find(';');
      rest = next == std::string_view::npos ? std::string_view{} : rest.substr(next + 1);
    } else {
      size_t next = rest.find(';');
      value = std::string(trim(rest.substr(0, next)));
      rest = next == std::string_view::npos ? std::string_view{} : rest.substr(next + 1);
    }
    if (iequals(pname, "boundary")) {
      if (value.empty())
        return body_error("Content-Type " + quote_untrusted(content_type) + ": empty boundary");
      if (value.size() > 70)
        return body_error("Content-Type boundary is " + std::to_string(value.size()) +
                          " bytes long, at most 70 allowed");
      if (value.find_first_of("\r\n") != std::string::npos)
        return body_error("Content-Type boundary contains a line break");
      return value;
    }
  }
  return body_error("Content-Type " + quote_untrusted(content_type) + " has no boundary parameter");
}

namespace {

/// Parses `form-data; name="x"; filename=y` into name and filename.
void parse_disposition(std::string_view v, multipart_part& part) {
  size_t semi = v.find(';');
  std::string_view rest = semi == std::string_view::npos ? std::string_view{} : v.substr(semi + 1);
  while (!rest.empty()) {
    size_t eq = rest.find('=');
    size_t sc = rest.find(';');
    if (eq == std::string_view::npos || (sc != std::string_view::npos && sc < eq)) {
      // a parameter without a value: skip it
      if (sc == std::string_view::npos) break;
      rest.remove_prefix(sc + 1);
      continue;
    }
    std::string_view pname = trim(rest.substr(0, eq));
    rest.remove_prefix(eq + 1);
    while (!rest.empty() && (rest.front() == ' ' || rest.front() == '\t')) rest.remove_prefix(1);
    std::string value;
    if (!rest.empty() && rest.front() == '"') {
      size_t i = 1;
      for (; i < rest.size() && rest[i] != '"'; ++i) {
        if (rest[i] == '\\' && i + 1 < rest.size()) ++i;
        value += rest[i];
      }
      rest.remove_prefix(std::min(rest.size(), i + 1));
      size_t next = rest.find(';');
      rest = next == std::string_view::npos ? std::string_view{} : rest.substr(next + 1);
    } else {
      size_t next = rest.find(';');
      value = std::string(trim(rest.substr(0, next)));
      rest = next == std::string_view::npos ? std::string_view{} : rest.substr(next + 1);
    }
    if (iequals(pname, "name")) part.name = std::move(value);
    else if (iequals(pname, "filename")) part.filename = std::move(value);
  }
}

}  // namespace

result<std::vector<multipart_part>> parse_multipart(std::string_view body, std::string_view boundary,
                                                    size_t max_parts) {
  if (boundary.empty() || boundary.size() > 70)
    return body_error("multipart boundary must be 1..70 bytes, got " + std::to_string(boundary.size()));
  // "\n--boundary": every delimiter but a leading one is preceded by a line break.
  std::string nl_delim = "\n--";
  nl_delim += boundary;
  const std::string_view delim = std::string_view(nl_delim).substr(1);

  // A delimiter is `--boundary` followed by `--` (close) or optional blanks and a line break;
  // anything else (`--boundaryX`) is data, as in Go's mime/multipart.
  auto is_delimiter_at = [&](size_t at) {
    size_t q = at + delim.size();
    if (body.substr(q).starts_with("--")) return true;
    while (q < body.size() && (body[q] == ' ' || body[q] == '\t')) ++q;
    return q < body.size() && (body[q] == '\n' || (body[q] == '\r' && q + 1 < body.size() && body[q + 1] == '\n'));
  };
  // Position just past the '\n' of the next "\n--boundary" delimiter at or after `from`, or npos.
  auto next_delimiter = [&](size_t from) {
    for (;;) {
      size_t f = body.find(nl_delim, from);
      if (f == std::string_view::npos || is_delimiter_at(f + 1)) return f;
      from = f + 1;
    }
  };

  size_t pos;
  if (body.starts_with(delim) && is_delimiter_at(0)) {
    pos = 0;
  } else {
    size_t f = next_delimiter(0);
    if (f == std::string_view::npos)
      return body_error("multipart body has no delimiter line for boundary " +
                        quote_untrusted(boundary));
    pos = f + 1;
  }

  std::vector<multipart_part> parts;
  for (;;) {
    size_t p = pos + delim.size();
    if (body.substr(p).starts_with("--")) return parts;  // close delimiter; the epilogue is ignored
    while (p < body.size() && (body[p] == ' ' || body[p] == '\t')) ++p;  // transport padding
    if (p < body.size() && body[p] == '\r') ++p;
    if (p >= body.size() || body[p] != '\n')
      return body_error("multipart delimiter line " + std::to_string(parts.size() + 1) +
                        " is not followed by a line break");
    ++p;
    if (parts.size() == max_parts)
      return body_error("multipart body has more than " + std::to_string(max_parts) + " parts");
    multipart_part part;
    const std::string part_no = "multipart part " + std::to_string(parts.size() + 1);
    // Headers up to an empty line.
    std::string ignored;
    std::string* last_value = nullptr;
    bool have_disposition = false;
    std::string disposition;
    for (;;) {
      size_t eol = body.find('\n', p);
      if (eol == std::string_view::npos)
        return body_error(part_no + ": headers are not terminated by an empty line");
      std::string_view line = body.substr(p, eol - p);
      if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
      p = eol + 1;
      if (line.empty()) break;
      if (line.front() == ' ' || line.front() == '\t') {  // obsolete header folding
        if (last_value == nullptr) return body_error(part_no + ": header continuation without a header");
        *last_value += ' ';
        *last_value += trim(line);
        continue;
      }
      size_t colon = line.find(':');
      if (colon == std::string_view::npos || trim(line.substr(0, colon)).empty())
        return body_error(part_no + ": malformed header line " + quote_untrusted(line));
      std::string_view hname = trim(line.substr(0, colon));
      std::string_view hvalue = trim(line.substr(colon + 1));
      if (iequals(hname, "Content-Disposition")) {
        disposition = std::string(hvalue);
        have_disposition = true;
        last_value = &disposition;
      } else if (iequals(hname, "Content-Type")) {
        part.content_type = std::string(hvalue);
        last_value = &part.content_type;
      } else {
        last_value = &ignored;  // other headers are not kept
      }
    }
    if (have_disposition) parse_disposition(disposition, part);
    // Data up to the next "[CR]LF--boundary".
    size_t f = next_delimiter(p);
    if (f == std::string_view::npos)
      return body_error(part_no + " (" + quote_untrusted(part.name) +
                        ") is not terminated by a delimiter for boundary " +
                        quote_untrusted(boundary) + " (truncated body?)");
    size_t end = f;
    if (end > p && body[end - 1] == '\r') --end;
    part.data = body.substr(p, end - p);
    parts.push_back(std::move(part));
    pos = f + 1;
  }
}

const multipart_part* find_part(const std::vector<multipart_part>& parts, std::string_view name) {
  for (const auto& p : parts)
    if (p.name == name) return &p;
  return nullptr;
}

}  // namespace hearth
