#pragma once
// Pure parsing of the parts of a legacy `POST /ingest` request (pyroscope-api.md §3): the `name`
// query parameter (`app{k=v,...}`), the `from`/`until` "attime" values, and the multipart/form-data
// body (RFC 7578) the SDKs use to upload a pprof. Everything here takes untrusted bytes and returns
// errors as values naming what was wrong; work is linear in the input size.

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "format/block.hpp"
#include "format/error.hpp"

namespace hearth {

/// Parses the `name` query parameter `appname{k=v,k2=v2}` (§3.1). The app name may use
/// `[A-Za-z0-9_.\-/]` and is returned under `__name__`; label names may use `[A-Za-z0-9_.]`;
/// values are raw text up to the next `,` or `}` (no quoting or escaping). Whitespace around
/// names and values is trimmed; `app{}` and a trailing comma are accepted. The result is sorted
/// by name. Fails with bad_labels on an empty app name, a bad character, a missing `}`, text after
/// `}`, an empty label name or a duplicate label name.
[[nodiscard]] result<label_set> parse_app_name(std::string_view name);

/// Parses an "attime" value (§3.1) into unix nanoseconds: `now`, `now-<n><s|m|h|d|w>`, 8 digits
/// `YYYYMMDD` (UTC midnight), or a decimal timestamp whose digit count picks the unit: 13 = ms,
/// 16 = µs, 19 = ns, anything else = seconds. Surrounding whitespace is ignored. Fails with
/// bad_time_range on anything else, on an invalid calendar date, or on overflow of int64 ns.
[[nodiscard]] result<int64_t> parse_attime(std::string_view s, int64_t now_ns);

/// One part of a multipart/form-data body. `data` points into the body given to
/// parse_multipart(), which must outlive it.
struct multipart_part {
  std::string name;          ///< Content-Disposition `name` ("" when absent)
  std::string filename;      ///< Content-Disposition `filename` ("" when absent)
  std::string content_type;  ///< the part's Content-Type header ("" when absent)
  std::string_view data;     ///< the part's bytes (may be binary, e.g. gzip)
};

/// Extracts the `boundary` parameter of a `multipart/form-data; boundary=...` Content-Type
/// (quoted or not; parameter names are case-insensitive). Fails with bad_request_body when the
/// type is not multipart/form-data, the boundary is missing, empty, longer than 70 characters
/// (RFC 2046) or unterminated when quoted.
[[nodiscard]] result<std::string> multipart_boundary(std::string_view content_type);

/// Splits a multipart/form-data body (RFC 7578 / RFC 2046) into its parts. Line endings are CRLF;
/// bare LF is tolerated. A preamble before the first delimiter and an epilogue after the close
/// delimiter are ignored. Each part has headers (Content-Disposition with `name`/`filename`, quoted
/// or not; Content-Type; others are ignored) then an empty line then its bytes, which run up to the
/// next `CRLF--boundary`. Fails with bad_request_body naming what was wrong: no opening delimiter,
/// a part without the header/body separator, a malformed header line, a missing close delimiter,
/// more than `max_parts` parts. Runs in time linear in the body size.
[[nodiscard]] result<std::vector<multipart_part>> parse_multipart(std::string_view body,
                                                                  std::string_view boundary,
                                                                  size_t max_parts = 64);

/// The first part named `name`, or nullptr.
const multipart_part* find_part(const std::vector<multipart_part>& parts, std::string_view name);

}  // namespace hearth
