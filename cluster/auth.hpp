#pragma once
// Optional request authentication for the HTTP/Connect API: static bearer tokens and HTTP basic
// users from the `[auth]` config section. Pure: no sockets; the gateway passes the Authorization
// header in. With neither configured, every request is accepted (the default: Hearth binds
// loopback and multi-tenant deployments usually put a proxy in front).

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "format/error.hpp"

namespace hearth {

struct auth_config {
  std::vector<std::string> bearer_tokens;  ///< accepted `Authorization: Bearer <token>` values
  std::vector<std::string> basic_users;    ///< accepted `user:password` pairs for `Basic`

  bool enabled() const { return !bearer_tokens.empty() || !basic_users.empty(); }
};

/// Checks an Authorization header value against `cfg`. Accepted when auth is not enabled, or the
/// header carries one of the configured bearer tokens or basic credentials (compared in time
/// independent of where they differ). Otherwise errc::unauthenticated with a message saying what
/// was missing or wrong (never echoing the secret).
[[nodiscard]] status check_authorization(std::optional<std::string_view> header, const auth_config& cfg);

/// Standard base64 (RFC 4648 §4, with padding) decoding; nullopt on a malformed input.
std::optional<std::string> base64_decode(std::string_view in);

}  // namespace hearth
