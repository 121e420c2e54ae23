#include "cluster/proto/connect.hpp"

#include <google/protobuf/util/json_util.h>

#include "format/text.hpp"

namespace hearth::connect {

result<codec> codec_of(std::string_view ct) {
  auto semi = ct.find(';');
  std::string_view base = ct.substr(0, semi);
  while (!base.empty() && base.back() == ' ') base.remove_suffix(1);
  std::string lower(base);
  for (auto& ch : lower) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  if (lower == "application/proto" || lower == "application/protobuf" ||
      lower == "application/x-protobuf")
    return codec::proto;
  if (lower == "application/json") return codec::json;
  return error{errc::unsupported_format,
               "unsupported Content-Type \"" + std::string(ct) +
                   "\": use application/proto or application/json"};
}

std::string_view content_type(codec c) {
  return c == codec::proto ? "application/proto" : "application/json";
}

status decode(codec c, std::string_view body, google::protobuf::Message& msg) {
  if (c == codec::proto) {
    if (!msg.ParseFromArray(body.data(), static_cast<int>(body.size())))
      return error{errc::bad_request_body,
                   "request body is not a valid " + msg.GetDescriptor()->full_name() + " message"};
    return {};
  }
  if (body.empty()) return {};
  google::protobuf::util::JsonParseOptions opts;
  opts.ignore_unknown_fields = true;
  auto st = google::protobuf::util::JsonStringToMessage(
      google::protobuf::StringPiece(body.data(), body.size()), &msg, opts);
  if (!st.ok())
    return error{errc::bad_request_body, "request body is not valid JSON for " +
                                             msg.GetDescriptor()->full_name() + ": " +
                                             std::string(st.message())};
  return {};
}

std::string encode(codec c, const google::protobuf::Message& msg) {
  std::string out;
  if (c == codec::proto) {
    msg.SerializeToString(&out);
    return out;
  }
  google::protobuf::util::JsonPrintOptions opts;
  (void)google::protobuf::util::MessageToJsonString(msg, &out, opts);
  return out;
}

std::string_view code_name(error_class c) {
  switch (c) {
    case error_class::invalid_argument: return "invalid_argument";
    case error_class::not_found: return "not_found";
    case error_class::corrupted: return "data_loss";
    case error_class::overloaded: return "resource_exhausted";
    case error_class::unavailable: return "unavailable";
    case error_class::unimplemented: return "unimplemented";
    case error_class::internal: return "internal";
    case error_class::unauthenticated: return "unauthenticated";
    case error_class::already_exists: return "already_exists";
  }
  return "internal";
}

int http_status(error_class c) {
  switch (c) {
    case error_class::invalid_argument: return 400;
    case error_class::not_found: return 404;
    case error_class::corrupted: return 500;
    case error_class::overloaded: return 429;
    case error_class::unavailable: return 503;
    case error_class::unimplemented: return 501;
    case error_class::internal: return 500;
    case error_class::unauthenticated: return 401;
    case error_class::already_exists: return 409;
  }
  return 500;
}

std::string json_escape(std::string_view s) {
  std::string out;
  out.reserve(s.size() + 8);
  append_json_escaped(out, s);
  return out;
}

std::string error_body(const error& e) {
  return "{\"code\":\"" + std::string(code_name(e.cls())) + "\",\"message\":\"" +
         json_escape(e.to_string()) + "\"}";
}

}  // namespace hearth::connect
