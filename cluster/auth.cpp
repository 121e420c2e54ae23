#include "cluster/auth.hpp"

#include <cstdint>

namespace hearth {
namespace {

// Equal without an early exit on the first differing byte.
bool same(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  unsigned char d = 0;
  for (size_t i = 0; i < a.size(); ++i) d |= static_cast<unsigned char>(a[i] ^ b[i]);
  return d == 0;
}

bool any_same(const std::vector<std::string>& set, std::string_view v) {
  bool found = false;
  for (const auto& s : set) found |= same(s, v);  // no early exit either
  return found;
}

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    char x = a[i], y = b[i];
    if (x >= 'A' && x <= 'Z') x = static_cast<char>(x - 'A' + 'a');
    if (y >= 'A' && y <= 'Z') y = static_cast<char>(y - 'A' + 'a');
    if (x != y) return false;
  }
  return true;
}

std::string accepted(const auth_config& cfg) {
  if (!cfg.bearer_tokens.empty() && !cfg.basic_users.empty()) return "Bearer or Basic";
  return cfg.bearer_tokens.empty() ? "Basic" : "Bearer";
}

}  // namespace

std::optional<std::string> base64_decode(std::string_view in) {
  if (in.size() % 4 != 0) return std::nullopt;
  auto val = [](char c) -> int {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
  };
  std::string out;
  out.reserve(in.size() / 4 * 3);
  for (size_t i = 0; i < in.size(); i += 4) {
    int v[4];
    int pad = 0;
    for (int k = 0; k < 4; ++k) {
      char c = in[i + k];
      if (c == '=') {
        if (i + 4 != in.size() || k < 2) return std::nullopt;
        ++pad;
        v[k] = 0;
        continue;
      }
      if (pad) return std::nullopt;  // data after padding
      v[k] = val(c);
      if (v[k] < 0) return std::nullopt;
    }
    uint32_t w = static_cast<uint32_t>(v[0] << 18 | v[1] << 12 | v[2] << 6 | v[3]);
    out += static_cast<char>(w >> 16);
    if (pad < 2) out += static_cast<char>((w >> 8) & 0xff);
    if (pad < 1) out += static_cast<char>(w & 0xff);
  }
  return out;
}

status check_authorization(std::optional<std::string_view> header, const auth_config& cfg) {
  if (!cfg.enabled()) return {};
  if (!header || header->empty())
    return error{errc::unauthenticated,
                 "authentication required: send an Authorization header (" + accepted(cfg) + ")"};
  std::string_view h = *header;
  size_t sp = h.find(' ');
  std::string_view scheme = h.substr(0, sp);
  std::string_view cred = sp == std::string_view::npos ? std::string_view() : h.substr(sp + 1);
  while (!cred.empty() && cred.front() == ' ') cred.remove_prefix(1);
  while (!cred.empty() && cred.back() == ' ') cred.remove_suffix(1);
  if (iequals(scheme, "bearer")) {
    if (cfg.bearer_tokens.empty())
      return error{errc::unauthenticated, "bearer tokens are not accepted here; use Basic"};
    if (any_same(cfg.bearer_tokens, cred)) return {};
    return error{errc::unauthenticated, "invalid bearer token"};
  }
  if (iequals(scheme, "basic")) {
    if (cfg.basic_users.empty())
      return error{errc::unauthenticated, "basic credentials are not accepted here; use Bearer"};
    auto plain = base64_decode(cred);
    if (!plain) return error{errc::unauthenticated, "basic credentials are not valid base64"};
    if (any_same(cfg.basic_users, *plain)) return {};
    return error{errc::unauthenticated, "invalid user or password"};
  }
  return error{errc::unauthenticated, "unsupported authorization scheme " + quote_untrusted(scheme) +
                                          "; use " + accepted(cfg)};
}

}  // namespace hearth
