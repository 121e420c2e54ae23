#pragma once
// The read API's wire translation, without any I/O: a Connect request body of
// querier.v1.QuerierService or hearth.v1.FindingsService becomes a validated query_request for the
// query frontend, and the frontend's query_result becomes the method's response body. The HTTP
// gateway only moves bytes around these two calls, so every rule of pyroscope-api.md §2.7 (ranges,
// limits, formats, selectors) is tested here without a server.

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "actors/interfaces.hpp"
#include "cluster/proto/connect.hpp"
#include "format/error.hpp"

namespace hearth::api {

/// Limits every read request is checked against (config [query]).
struct limits {
  int64_t max_nodes_default = 8192;
  int64_t max_nodes_max = 1048576;
  int64_t max_range_ns = 31ll * 24 * 3600 * 1000000000ll;
};

/// True for the methods parse_request knows, e.g. ("querier.v1.QuerierService", "Series").
bool known_method(std::string_view service, std::string_view method);

/// Decodes and validates one request. `now_ns` is the wall clock (ProfileTypes without a range
/// means the last hour). Errors name what was wrong: bad_request_body (undecodable),
/// bad_time_range, too_many_nodes, bad_selector, unknown_profile_type, invalid_argument,
/// unimplemented (a format or selector Hearth does not serve).
result<query_request> parse_request(std::string_view service, std::string_view method,
                                    connect::codec c, std::string_view body, const limits& lim,
                                    int64_t now_ns);

/// Encodes the frontend's answer as the method's response in codec `c`. `utf8_names`: the client
/// sent the allow-utf8-labelnames=true capability (else LabelNames drops non-legacy names).
result<std::string> render_response(std::string_view service, std::string_view method,
                                    connect::codec c, const query_request& q,
                                    const query_result& r, bool utf8_names);

/// Validates a [start, end] range in Unix ms (both inclusive, as Pyroscope) and converts it to
/// the half-open ns range of a query_spec.
result<std::pair<int64_t, int64_t>> check_range(int64_t start_ms, int64_t end_ms, const limits& lim);

/// max_nodes as a request gives it (absent or 0: the default; above the maximum: too_many_nodes).
result<int64_t> check_max_nodes(bool has, int64_t n, const limits& lim);

/// Splits a render-style query `<profile type>{selector}` (the selector may be absent) and
/// validates both parts. Returns (profile type id, selector).
result<std::pair<std::string, std::string>> split_typed_query(std::string_view q);

/// Pyroscope's legacy label-name rule: [a-zA-Z_][a-zA-Z0-9_]*.
bool is_legacy_label_name(std::string_view n);

}  // namespace hearth::api
