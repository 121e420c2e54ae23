#pragma once
// Tenant IDs (Pyroscope's X-Scope-OrgID). A tenant ID names a directory under the data dir, so it
// is validated strictly: 1-150 characters of [A-Za-z0-9_.-], never "." or "..".

#include <algorithm>
#include <string>
#include <string_view>
#include <vector>

#include "format/error.hpp"

namespace hearth {

/// The tenant every request runs as when multi-tenancy is off.
inline constexpr std::string_view default_tenant = "anonymous";

inline bool valid_tenant_id(std::string_view id) {
  if (id.empty() || id.size() > 150 || id == "." || id == "..") return false;
  for (char c : id) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '-' || c == '.';
    if (!ok) return false;
  }
  return true;
}

/// Parses an X-Scope-OrgID value: one tenant, or for queries several separated by '|' (returned
/// sorted and de-duplicated). An absent or empty header is `unauthenticated`; a malformed ID is
/// `unauthenticated` too, naming it.
inline result<std::vector<std::string>> parse_tenant_header(std::string_view v, bool allow_many) {
  if (v.empty())
    return error{errc::unauthenticated,
                 "no org id: multi-tenancy is enabled and the X-Scope-OrgID header is missing"};
  std::vector<std::string> out;
  while (true) {
    auto bar = v.find('|');
    std::string_view id = v.substr(0, bar);
    if (!valid_tenant_id(id))
      return error{errc::unauthenticated,
                   "invalid tenant id " + quote_untrusted(id) +
                       " in X-Scope-OrgID: use 1-150 characters of [A-Za-z0-9_.-]"};
    out.emplace_back(id);
    if (bar == std::string_view::npos) break;
    v = v.substr(bar + 1);
  }
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  if (out.size() > 1 && !allow_many)
    return error{errc::invalid_argument,
                 "X-Scope-OrgID names " + std::to_string(out.size()) +
                     " tenants; writes go to exactly one"};
  return out;
}

}  // namespace hearth
