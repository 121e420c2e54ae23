#pragma once
// Prometheus metric selectors as Pyroscope accepts them (`name{label="v", env=~"prod|canary"}`,
// Prometheus 3 quoted UTF-8 names included), parsed into label matchers; and profile type IDs
// (`process_cpu:cpu:nanoseconds:cpu:nanoseconds`). Pure and deterministic.
// Reference: ../shared/reference/pyroscope-api.md §5, §6.

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "format/error.hpp"

namespace re2 {
class RE2;
}

namespace hearth::query {

/// One label matcher. A series without the label is matched as if the label had the value "":
/// `l=""` matches series without `l`, `!=`/`!~` match absent labels, and a regex that matches ""
/// matches absent labels (Prometheus semantics).
/// Thread-safety: immutable after construction; the compiled regex is shared and thread-safe.
struct matcher {
  /// The matching operator: `=`, `!=`, `=~`, `!~`.
  enum class op { eq, neq, re, nre };

  std::string name;     ///< label name, e.g. "service_name" or "__name__"
  enum op op = op::eq;  ///< the operator
  std::string value;    ///< the literal value, or the regex as written (unanchored)
  /// For `re`/`nre`: `^(?:value)$` compiled with `.` matching `\n` (as Prometheus' `(?s:)`).
  std::shared_ptr<const re2::RE2> re;

  /// True iff a label value (or "" for an absent label) satisfies this matcher.
  bool matches(std::string_view value_or_empty) const;
};

/// Builds a matcher, compiling the regex for `re`/`nre`.
/// Errors: bad_selector naming the label and the RE2 error when the regex is invalid.
[[nodiscard]] result<matcher> make_matcher(std::string name, enum matcher::op op,
                                           std::string value);

/// The selector operator as written: "=", "!=", "=~" or "!~".
std::string_view to_string(enum matcher::op op);

/// Parses a Prometheus metric selector: an optional metric name (colons allowed; `name{...}` is
/// `__name__="name"`, placed first) followed by an optional brace list of matchers
/// (`label op "value"`, or a bare quoted metric name). Label names are identifiers or quoted
/// UTF-8 strings; values are "double", 'single' (Go escapes) or `raw` strings; whitespace is
/// allowed between tokens; a trailing comma is allowed. `{}` yields zero matchers (matches
/// everything). Matchers appear in input order.
/// Errors: bad_selector with what is wrong, the byte position (0-based) and the input, e.g.
/// "unexpected '}' at position 14 in {service_name=} (expected a quoted label value)".
[[nodiscard]] result<std::vector<matcher>> parse_selector(std::string_view selector);

/// A parsed profile type ID `<name>:<sample_type>:<sample_unit>:<period_type>:<period_unit>`.
struct profile_type {
  std::string id;  ///< the ID as given
  std::string name;
  std::string sample_type;
  std::string sample_unit;
  std::string period_type;  ///< may be empty
  std::string period_unit;  ///< may be empty
  friend bool operator==(const profile_type&, const profile_type&) = default;
};

/// Parses a profile type ID of 5 parts, or 6 with a trailing part that is ignored (`:delta`, as
/// Pyroscope tolerates). Name, sample type and sample unit must be non-empty.
/// Errors: unknown_profile_type naming the ID and what is wrong.
[[nodiscard]] result<profile_type> parse_profile_type(std::string_view id);

}  // namespace hearth::query
