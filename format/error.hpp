#pragma once
// Errors as values for the pure modules (format/, query/, io/): one `errc` enum with stable numbers,
// each mapped to an error class from which HTTP/Connect status codes and retry policy derive.
// Actors carry the same codes across the wire (see actors/interfaces.hpp).

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <variant>

namespace hearth {

/// Error codes. On the wire and in logs: never renumber, never reuse a number.
enum class errc : uint16_t {
  // invalid_argument (1xx)
  invalid_argument = 100,
  bad_gzip = 101,
  bad_pprof = 102,
  bad_selector = 103,
  bad_labels = 104,
  bad_time_range = 105,
  body_too_large = 106,
  unknown_profile_type = 107,
  bad_config = 108,
  bad_request_body = 109,
  too_many_nodes = 110,
  unsupported_format = 111,
  // not_found (2xx)
  not_found = 200,
  // corrupted (3xx)
  corrupted = 300,
  // overloaded (4xx)
  overloaded = 400,
  // unavailable (5xx)
  unavailable = 500,
  // unimplemented (6xx)
  unimplemented = 600,
  // internal (7xx)
  internal = 700,
  io_error = 701,
  no_space = 702,

  unauthenticated = 800,  ///< no or bad tenant (X-Scope-OrgID) where one is required

  already_exists = 900,  ///< a newer version was already written (settings)
};

/// The class of an error: what a client may do about it.
enum class error_class : uint8_t {
  invalid_argument,
  not_found,
  corrupted,
  overloaded,
  unavailable,
  unimplemented,
  internal,
  unauthenticated,
  already_exists,
};

/// Maps a code to its class (by number range).
constexpr error_class class_of(errc c) {
  switch (static_cast<uint16_t>(c) / 100) {
    case 1: return error_class::invalid_argument;
    case 2: return error_class::not_found;
    case 3: return error_class::corrupted;
    case 4: return error_class::overloaded;
    case 5: return error_class::unavailable;
    case 6: return error_class::unimplemented;
    case 8: return error_class::unauthenticated;
    case 9: return error_class::already_exists;
    default: return error_class::internal;
  }
}

/// Name of an error class, as used in logs and Connect error codes' neighbourhood.
std::string_view to_string(error_class c);
/// Stable lowercase name of a code (e.g. "bad_pprof").
std::string_view to_string(errc c);

/// An error: a code and a message for a human that names what was wrong.
struct error {
  errc code = errc::internal;
  std::string message;

  error_class cls() const { return class_of(code); }
  /// "bad_pprof: sample 3 has 1 values, want 2"
  std::string to_string() const;
};

/// Renders untrusted text (a request field, a label, a header) for an error message: in single
/// quotes, cut to its first 64 bytes (then "..."), control bytes (< 0x20, 0x7f) as `\xNN`.
std::string quote_untrusted(std::string_view s);

/// Either a value or an error. Thread-safety: a plain value type.
template <class T>
class [[nodiscard]] result {
 public:
  result(T value) : v_(std::move(value)) {}  // NOLINT: implicit by design
  result(error e) : v_(std::move(e)) {}      // NOLINT: implicit by design
  result(errc c, std::string msg) : v_(error{c, std::move(msg)}) {}

  bool ok() const { return v_.index() == 0; }
  explicit operator bool() const { return ok(); }
  T& operator*() & { return std::get<0>(v_); }
  const T& operator*() const& { return std::get<0>(v_); }
  T&& operator*() && { return std::get<0>(std::move(v_)); }
  T* operator->() { return &std::get<0>(v_); }
  const T* operator->() const { return &std::get<0>(v_); }
  /// Requires: !ok().
  const error& err() const { return std::get<1>(v_); }
  error&& take_error() { return std::get<1>(std::move(v_)); }

 private:
  std::variant<T, error> v_;
};

/// Success or an error.
class [[nodiscard]] status {
 public:
  status() = default;
  status(error e) : err_(std::move(e)), failed_(true) {}  // NOLINT: implicit by design
  status(errc c, std::string msg) : err_{c, std::move(msg)}, failed_(true) {}
  static status ok_status() { return {}; }

  bool ok() const { return !failed_; }
  explicit operator bool() const { return ok(); }
  /// Requires: !ok().
  const error& err() const { return err_; }

 private:
  error err_;
  bool failed_ = false;
};

}  // namespace hearth
