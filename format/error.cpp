#include "format/error.hpp"

namespace hearth {

std::string_view to_string(error_class c) {
  switch (c) {
    case error_class::invalid_argument: return "invalid_argument";
    case error_class::not_found: return "not_found";
    case error_class::corrupted: return "corrupted";
    case error_class::overloaded: return "overloaded";
    case error_class::unavailable: return "unavailable";
    case error_class::unimplemented: return "unimplemented";
    case error_class::internal: return "internal";
    case error_class::unauthenticated: return "unauthenticated";
    case error_class::already_exists: return "already_exists";
  }
  return "internal";
}

std::string_view to_string(errc c) {
  switch (c) {
    case errc::invalid_argument: return "invalid_argument";
    case errc::bad_gzip: return "bad_gzip";
    case errc::bad_pprof: return "bad_pprof";
    case errc::bad_selector: return "bad_selector";
    case errc::bad_labels: return "bad_labels";
    case errc::bad_time_range: return "bad_time_range";
    case errc::body_too_large: return "body_too_large";
    case errc::unknown_profile_type: return "unknown_profile_type";
    case errc::bad_config: return "bad_config";
    case errc::bad_request_body: return "bad_request_body";
    case errc::too_many_nodes: return "too_many_nodes";
    case errc::unsupported_format: return "unsupported_format";
    case errc::not_found: return "not_found";
    case errc::corrupted: return "corrupted";
    case errc::overloaded: return "overloaded";
    case errc::unavailable: return "unavailable";
    case errc::unimplemented: return "unimplemented";
    case errc::internal: return "internal";
    case errc::io_error: return "io_error";
    case errc::no_space: return "no_space";
    case errc::unauthenticated: return "unauthenticated";
    case errc::already_exists: return "already_exists";
  }
  return "internal";
}

std::string error::to_string() const {
  std::string s(hearth::to_string(code));
  s += ": ";
  s += message;
  return s;
}

std::string quote_untrusted(std::string_view s) {
  static constexpr char hex[] = "0123456789abcdef";
  static constexpr size_t max_bytes = 64;
  std::string out = "'";
  const size_t n = s.size() < max_bytes ? s.size() : max_bytes;
  for (size_t i = 0; i < n; ++i) {
    auto c = static_cast<unsigned char>(s[i]);
    if (c < 0x20 || c == 0x7f) {
      out += "\\x";
      out += hex[c >> 4];
      out += hex[c & 15];
    } else {
      out += static_cast<char>(c);
    }
  }
  if (s.size() > n) out += "...";
  out += "'";
  return out;
}

}  // namespace hearth
