#include "query/selector.hpp"

#include <re2/re2.h>

#include <cstdint>
#include <optional>
#include <utility>

// Grammar (a subset of PromQL: one vector selector without offset/range):
//   selector := ws [metric_name ws] ['{' ws [item (ws ',' ws item)* ws [',' ws]] '}' ws]
//   item     := label_name ws op ws string | string          (a bare string is the metric name)
//   label_name := [a-zA-Z_][a-zA-Z0-9_]* | string             (quoted: non-empty, valid UTF-8)
//   metric_name := [a-zA-Z_:][a-zA-Z0-9_:]*
//   op       := '=' | '!=' | '=~' | '!~'
//   string   := '"' ... '"' | '\'' ... '\'' | '`' raw '`'
// At least one of metric_name and the brace list must be present. Escapes follow Go's
// strconv.Unquote (as Prometheus' lexer does): \a \b \f \n \r \t \v \\, the enclosing quote,
// \xHH, \NNN (octal), \uHHHH, \UHHHHHHHH; raw strings drop '\r' like Go.

namespace hearth::query {
namespace {

constexpr size_t max_quoted_input = 256;  // longer inputs are cut in error messages

bool is_space(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}
bool is_alpha(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}
bool is_digit(char c) {
  return c >= '0' && c <= '9';
}
bool is_quote(char c) {
  return c == '"' || c == '\'' || c == '`';
}

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

void append_utf8(std::string& out, uint32_t cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xc0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3f));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xe0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3f));
    out += static_cast<char>(0x80 | (cp & 0x3f));
  } else {
    out += static_cast<char>(0xf0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3f));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3f));
    out += static_cast<char>(0x80 | (cp & 0x3f));
  }
}

/// Length of the well-formed UTF-8 sequence at s[i], or 0 if it is not one.
size_t utf8_seq_len(std::string_view s, size_t i) {
  const auto b0 = static_cast<unsigned char>(s[i]);
  if (b0 < 0x80) return 1;
  size_t n;
  uint32_t cp;
  if (b0 >= 0xc2 && b0 <= 0xdf) {
    n = 2, cp = b0 & 0x1f;
  } else if (b0 >= 0xe0 && b0 <= 0xef) {
    n = 3, cp = b0 & 0x0f;
  } else if (b0 >= 0xf0 && b0 <= 0xf4) {
    n = 4, cp = b0 & 0x07;
  } else {
    return 0;
  }
  if (i + n > s.size()) return 0;
  for (size_t k = 1; k < n; ++k) {
    const auto b = static_cast<unsigned char>(s[i + k]);
    if ((b & 0xc0) != 0x80) return 0;
    cp = (cp << 6) | (b & 0x3f);
  }
  if ((n == 3 && cp < 0x800) || (n == 4 && (cp < 0x10000 || cp > 0x10ffff))) return 0;
  if (cp >= 0xd800 && cp <= 0xdfff) return 0;
  return n;
}

bool valid_utf8(std::string_view s) {
  for (size_t i = 0; i < s.size();) {
    const size_t n = utf8_seq_len(s, i);
    if (n == 0) return false;
    i += n;
  }
  return true;
}

class parser {
 public:
  explicit parser(std::string_view in) : in_(in) {}

  result<std::vector<matcher>> parse() {
    skip_ws();
    if (at_end()) return error{errc::bad_selector, "empty selector"};
    std::vector<matcher> out;
    bool has_name = false;
    std::string metric_name;
    if (is_alpha(peek()) || peek() == ':') {
      const size_t begin = pos_;
      while (!at_end() && (is_alpha(peek()) || is_digit(peek()) || peek() == ':')) ++pos_;
      metric_name.assign(in_.substr(begin, pos_ - begin));
      has_name = true;
      skip_ws();
    }
    if (!at_end() && peek() == '{') {
      ++pos_;
      if (auto st = parse_braces(out); !st.ok()) return st.err();
      skip_ws();
    } else if (!has_name) {
      return unexpected("a metric name or '{'");
    }
    if (!at_end()) return unexpected(has_name ? "'{' or end of input" : "end of input");
    if (has_name) {
      for (const auto& m : out) {
        if (m.name == "__name__")
          return fail_msg("metric name must not be set twice: \"" + metric_name + "\" or \"" +
                          m.value + "\"");
      }
      out.insert(out.begin(), matcher{"__name__", matcher::op::eq, std::move(metric_name), {}});
    }
    return out;
  }

 private:
  bool at_end() const { return pos_ >= in_.size(); }
  char peek() const { return in_[pos_]; }

  void skip_ws() {
    while (!at_end() && is_space(peek())) ++pos_;
  }

  std::string quoted_input() const {
    if (in_.size() <= max_quoted_input) return std::string(in_);
    return std::string(in_.substr(0, max_quoted_input)) + "...";
  }

  error fail_msg(std::string what) const {
    return error{errc::bad_selector, std::move(what) + " in " + quoted_input()};
  }

  error fail_at(size_t pos, std::string what) const {
    return error{errc::bad_selector,
                 std::move(what) + " at position " + std::to_string(pos) + " in " + quoted_input()};
  }

  /// "unexpected 'x' at position N in <input> (expected <what>)".
  error unexpected(std::string_view expected) const {
    std::string got;
    if (at_end()) {
      got = "end of input";
    } else {
      const auto b = static_cast<unsigned char>(peek());
      if (b >= 0x20 && b < 0x7f) {
        got = std::string("'") + peek() + "'";
      } else if (size_t n = utf8_seq_len(in_, pos_); b >= 0x80 && n > 0) {
        got = "'" + std::string(in_.substr(pos_, n)) + "'";
      } else {
        static constexpr char hex[] = "0123456789abcdef";
        got = std::string("byte 0x") + hex[b >> 4] + hex[b & 15];
      }
    }
    return error{errc::bad_selector, "unexpected " + got + " at position " + std::to_string(pos_) +
                                         " in " + quoted_input() + " (expected " +
                                         std::string(expected) + ")"};
  }

  status parse_braces(std::vector<matcher>& out) {
    bool bare_name_seen = false;
    skip_ws();
    while (true) {
      if (at_end()) return unexpected("a label matcher or '}'");
      if (peek() == '}') {
        ++pos_;
        return {};
      }
      const size_t item_pos = pos_;
      std::string name;
      bool quoted_name = false;
      if (is_quote(peek())) {
        auto s = parse_string();
        if (!s.ok()) return s.err();
        name = std::move(*s);
        quoted_name = true;
      } else if (is_alpha(peek())) {
        const size_t begin = pos_;
        while (!at_end() && (is_alpha(peek()) || is_digit(peek()))) ++pos_;
        name.assign(in_.substr(begin, pos_ - begin));
      } else {
        return unexpected("a label name");
      }
      skip_ws();
      if (quoted_name && (at_end() || (peek() != '=' && peek() != '!'))) {
        // A bare quoted string is the metric name (Prometheus 3).
        if (bare_name_seen)
          return fail_at(item_pos, "metric name must not be set twice: \"" + name + "\"");
        bare_name_seen = true;
        out.push_back(matcher{"__name__", matcher::op::eq, std::move(name), {}});
      } else {
        if (quoted_name && name.empty()) return fail_at(item_pos, "empty label name");
        if (quoted_name && !valid_utf8(name))
          return fail_at(item_pos, "label name is not valid UTF-8");
        auto o = parse_op();
        if (!o.ok()) return o.err();
        skip_ws();
        if (at_end() || !is_quote(peek())) return unexpected("a quoted label value");
        auto v = parse_string();
        if (!v.ok()) return v.err();
        auto m = make_matcher(std::move(name), *o, std::move(*v));
        if (!m.ok()) return fail_at(item_pos, m.err().message);
        out.push_back(std::move(*m));
      }
      skip_ws();
      if (at_end()) return unexpected("',' or '}'");
      if (peek() == ',') {
        ++pos_;
        skip_ws();
        continue;
      }
      if (peek() != '}') return unexpected("',' or '}'");
    }
  }

  result<enum matcher::op> parse_op() {
    if (!at_end() && peek() == '=') {
      ++pos_;
      if (!at_end() && peek() == '~') {
        ++pos_;
        return matcher::op::re;
      }
      return matcher::op::eq;
    }
    if (!at_end() && peek() == '!' && pos_ + 1 < in_.size()) {
      if (in_[pos_ + 1] == '=') {
        pos_ += 2;
        return matcher::op::neq;
      }
      if (in_[pos_ + 1] == '~') {
        pos_ += 2;
        return matcher::op::nre;
      }
    }
    return unexpected("one of '=', '!=', '=~', '!~'");
  }

  /// Requires: at a quote character.
  result<std::string> parse_string() {
    const size_t start = pos_;
    const char quote = in_[pos_++];
    std::string out;
    if (quote == '`') {
      while (!at_end() && peek() != '`') {
        if (peek() != '\r') out += peek();
        ++pos_;
      }
      if (at_end()) return fail_at(start, "unterminated raw string");
      ++pos_;
      return out;
    }
    while (true) {
      if (at_end()) return fail_at(start, "unterminated string");
      const char c = in_[pos_];
      if (c == quote) {
        ++pos_;
        return out;
      }
      if (c == '\n') return fail_at(pos_, "newline in string");
      if (c != '\\') {
        out += c;
        ++pos_;
        continue;
      }
      const size_t esc = pos_;
      if (++pos_ >= in_.size()) return fail_at(start, "unterminated string");
      const char e = in_[pos_++];
      switch (e) {
        case 'a':
          out += '\a';
          break;
        case 'b':
          out += '\b';
          break;
        case 'f':
          out += '\f';
          break;
        case 'n':
          out += '\n';
          break;
        case 'r':
          out += '\r';
          break;
        case 't':
          out += '\t';
          break;
        case 'v':
          out += '\v';
          break;
        case '\\':
          out += '\\';
          break;
        case '\'':
        case '"':
          if (e != quote) return fail_at(esc, std::string("unknown escape sequence '\\") + e + "'");
          out += e;
          break;
        case 'x':
        case 'u':
        case 'U': {
          const size_t digits = e == 'x' ? 2 : e == 'u' ? 4 : 8;
          uint32_t v = 0;
          for (size_t k = 0; k < digits; ++k) {
            const int h = pos_ < in_.size() ? hex_value(in_[pos_]) : -1;
            if (h < 0)
              return fail_at(esc, std::string("invalid escape '\\") + e + "': want " +
                                      std::to_string(digits) + " hex digits");
            v = v * 16 + static_cast<uint32_t>(h);
            ++pos_;
          }
          if (e == 'x') {
            out += static_cast<char>(v);
          } else {
            if (v > 0x10ffff || (v >= 0xd800 && v <= 0xdfff))
              return fail_at(esc, "escape sequence is an invalid Unicode code point");
            append_utf8(out, v);
          }
          break;
        }
        case '0':
        case '1':
        case '2':
        case '3':
        case '4':
        case '5':
        case '6':
        case '7': {
          uint32_t v = static_cast<uint32_t>(e - '0');
          for (int k = 0; k < 2; ++k) {
            if (pos_ >= in_.size() || in_[pos_] < '0' || in_[pos_] > '7')
              return fail_at(esc, "invalid octal escape: want 3 octal digits");
            v = v * 8 + static_cast<uint32_t>(in_[pos_++] - '0');
          }
          if (v > 255) return fail_at(esc, "octal escape value > 255");
          out += static_cast<char>(v);
          break;
        }
        default:
          return fail_at(esc, std::string("unknown escape sequence '\\") + e + "'");
      }
    }
  }

  std::string_view in_;
  size_t pos_ = 0;
};

}  // namespace

bool matcher::matches(std::string_view v) const {
  switch (op) {
    case op::eq:
      return v == value;
    case op::neq:
      return v != value;
    case op::re:
      return re && RE2::FullMatch(v, *re);
    case op::nre:
      return re && !RE2::FullMatch(v, *re);
  }
  return false;
}

std::string_view to_string(enum matcher::op op) {
  switch (op) {
    case matcher::op::eq:
      return "=";
    case matcher::op::neq:
      return "!=";
    case matcher::op::re:
      return "=~";
    case matcher::op::nre:
      return "!~";
  }
  return "=";
}

result<matcher> make_matcher(std::string name, enum matcher::op op, std::string value) {
  matcher m{std::move(name), op, std::move(value), {}};
  if (op == matcher::op::re || op == matcher::op::nre) {
    RE2::Options opts;
    opts.set_log_errors(false);
    opts.set_dot_nl(true);  // Prometheus compiles `^(?s:re)$`
    // Compile the regex alone first: wrapping an unbalanced one such as `a)|(b` in `^(?:...)$`
    // would otherwise yield a valid regex with different meaning.
    RE2 alone(m.value, opts);
    if (!alone.ok())
      return error{errc::bad_selector, "invalid regex for label \"" + m.name +
                                           "\": " + alone.error() + " (regex \"" + m.value + "\")"};
    auto re = std::make_shared<const RE2>("^(?:" + m.value + ")$", opts);
    if (!re->ok())
      return error{errc::bad_selector,
                   "invalid regex for label \"" + m.name + "\": " + re->error()};
    m.re = std::move(re);
  }
  return m;
}

result<std::vector<matcher>> parse_selector(std::string_view selector) {
  return parser(selector).parse();
}

result<profile_type> parse_profile_type(std::string_view id) {
  std::vector<std::string_view> parts;
  size_t begin = 0;
  while (true) {
    const size_t colon = id.find(':', begin);
    parts.push_back(id.substr(begin, colon == std::string_view::npos ? colon : colon - begin));
    if (colon == std::string_view::npos) break;
    begin = colon + 1;
  }
  const auto fail = [&](std::string what) -> error {
    return error{errc::unknown_profile_type,
                 "profile type \"" + std::string(id) + "\": " + std::move(what) +
                     "; want <name>:<sample_type>:<sample_unit>:<period_type>:<period_unit>"};
  };
  if (parts.size() != 5 && parts.size() != 6)
    return fail("has " + std::to_string(parts.size()) + " parts");
  if (parts[0].empty()) return fail("empty name");
  if (parts[1].empty()) return fail("empty sample type");
  if (parts[2].empty()) return fail("empty sample unit");
  return profile_type{std::string(id),       std::string(parts[0]), std::string(parts[1]),
                      std::string(parts[2]), std::string(parts[3]), std::string(parts[4])};
}

}  // namespace hearth::query
