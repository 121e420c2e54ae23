#pragma once
// The Connect protocol's unary framing over HTTP/1.1, as Grafana, Pyroscope's UIs, Alloy and
// profilecli speak it: binary proto (`application/proto`) or proto3 JSON (`application/json`),
// optional gzip bodies, and errors as `{"code": "...", "message": "..."}` with a mapped status.
// No sockets here: the gateway feeds bytes in and writes bytes out.

#include <google/protobuf/message.h>
#include <string>
#include <string_view>

#include "format/error.hpp"

namespace hearth::connect {

/// The codec of a Connect request, from its Content-Type.
enum class codec : uint8_t { proto, json };

/// Picks the codec from a Content-Type ("application/proto", "application/json",
/// "application/json; charset=utf-8"); anything else is unsupported (HTTP 415).
result<codec> codec_of(std::string_view content_type);

/// The response Content-Type for a codec.
std::string_view content_type(codec c);

/// Parses a request body into `msg`. JSON accepts lowerCamelCase and proto field names, int64 as
/// numbers or strings, and ignores unknown fields. An empty body is the empty message.
status decode(codec c, std::string_view body, google::protobuf::Message& msg);

/// Serializes a response message (JSON: lowerCamelCase, int64 as strings, zero values omitted).
std::string encode(codec c, const google::protobuf::Message& msg);

/// The Connect error code name for an error class ("invalid_argument", "resource_exhausted"...).
std::string_view code_name(error_class c);

/// The HTTP status Connect uses for an error class.
int http_status(error_class c);

/// The JSON body of a Connect error.
std::string error_body(const error& e);

/// Escapes a string for a JSON string literal (without the quotes).
std::string json_escape(std::string_view s);

}  // namespace hearth::connect
