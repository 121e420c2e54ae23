#pragma once
// A small blocking HTTP/1.1 GET client for pull-mode scraping (net/http/pprof endpoints): one
// request per connection, a deadline over the whole exchange, bounded response size. Handles
// Content-Length, chunked and close-delimited bodies. Plain HTTP only.

#include <chrono>
#include <cstdint>
#include <string>

#include "format/error.hpp"

namespace hearth::io {

struct http_response {
  int status = 0;
  std::string content_type;
  std::string body;
};

/// GETs http://<host>:<port><target>. Fails with errc::unavailable (connect/refused/reset,
/// deadline passed: the message says which) or errc::body_too_large (over max_body bytes), or
/// errc::invalid_argument for a malformed response. Does not follow redirects.
[[nodiscard]] result<http_response> http_get(const std::string& host, uint16_t port, const std::string& target,
                                             std::chrono::milliseconds timeout, uint64_t max_body);

/// Decodes a chunked HTTP/1.1 body (RFC 9112 §7.1; extensions and trailers ignored).
[[nodiscard]] result<std::string> dechunk(std::string_view body);

}  // namespace hearth::io
