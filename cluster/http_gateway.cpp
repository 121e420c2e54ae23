#include "cluster/http_gateway.hpp"

#include <kj/async-io.h>
#include <kj/debug.h>
#include <kj/compat/http.h>

#include <map>

#include "actors/clock.hpp"
#include "actors/cluster_view.hpp"
#include "actors/metrics.hpp"
#include "cluster/actor_bridge.hpp"
#include "cluster/kj_server.hpp"
#include "cluster/proto/connect.hpp"
#include "cluster/query_api.hpp"
#include "format/ingest_request.hpp"
#include "format/gzip.hpp"
#include "format/pprof.hpp"
#include "format/tenant.hpp"
#include "query/diff.hpp"
#include "query/flame_tree.hpp"
#include "query/selector.hpp"
#include "query/series_query.hpp"
#include "otlp_profiles_service.pb.h"
#include "push.pb.h"
#include "settings.pb.h"

namespace hearth {
namespace {

using clock_type = std::chrono::steady_clock;
constexpr int64_t ns_per_ms = 1000000;
constexpr int64_t ns_per_s = 1000000000;

kj::StringPtr status_text(int code) {
  switch (code) {
    case 200: return "OK";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 413: return "Payload Too Large";
    case 415: return "Unsupported Media Type";
    case 422: return "Unprocessable Entity";
    case 429: return "Too Many Requests";
    case 499: return "Client Closed Request";
    case 501: return "Not Implemented";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    default: return code < 500 ? "Client Error" : "Internal Server Error";
  }
}

int hex_digit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Percent-decoding of a query component ('+' is a space, as browsers and SDKs encode it).
std::string url_decode(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '+') {
      out += ' ';
    } else if (s[i] == '%' && i + 2 < s.size() && hex_digit(s[i + 1]) >= 0 &&
               hex_digit(s[i + 2]) >= 0) {
      out += static_cast<char>(hex_digit(s[i + 1]) * 16 + hex_digit(s[i + 2]));
      i += 2;
    } else {
      out += s[i];
    }
  }
  return out;
}

// A parsed request target: path and decoded query parameters in order.
struct target {
  std::string path;
  std::vector<std::string> names;
  std::vector<std::string> values;

  /// The last value of a parameter (later wins, as Go's url.Values.Get takes the first: we
  /// follow Pyroscope's render handler, where later max-nodes/maxNodes win).
  const std::string* get(std::string_view n) const {
    const std::string* v = nullptr;
    for (size_t i = 0; i < names.size(); ++i)
      if (names[i] == n) v = &values[i];
    return v;
  }
};

target parse_target(std::string_view url) {
  target t;
  // kj hands a path-only URL to host services; tolerate an absolute form anyway.
  if (auto scheme = url.find("://"); scheme != std::string_view::npos) {
    auto slash = url.find('/', scheme + 3);
    url = slash == std::string_view::npos ? std::string_view("/") : url.substr(slash);
  }
  auto q = url.find('?');
  t.path = url_decode(url.substr(0, q));
  if (q == std::string_view::npos) return t;
  std::string_view rest = url.substr(q + 1);
  while (!rest.empty()) {
    auto amp = rest.find('&');
    std::string_view kv = rest.substr(0, amp);
    rest = amp == std::string_view::npos ? std::string_view() : rest.substr(amp + 1);
    if (kv.empty()) continue;
    auto eq = kv.find('=');
    t.names.push_back(url_decode(kv.substr(0, eq)));
    t.values.push_back(eq == std::string_view::npos ? std::string() : url_decode(kv.substr(eq + 1)));
  }
  return t;
}

// Pyroscope's timeline step: (until-from)/1500 rounded up to a "nice" interval, at least 15 s.
int64_t point_interval_s(int64_t from_s, int64_t until_s) {
  static const int64_t nice[] = {1,    2,     5,     10,    15,    20,     30,      60,     120,
                                 300,  600,   900,   1200,  1800,  3600,   7200,    10800,  21600,
                                 43200, 86400, 604800, 2592000, 31536000};
  int64_t want = (until_s - from_s) / 1500;
  int64_t step = nice[std::size(nice) - 1];
  for (int64_t n : nice)
    if (n >= want) {
      step = n;
      break;
    }
  return std::max<int64_t>(step, 15);
}

}  // namespace

// ---- the kj side -----------------------------------------------------------------------------

struct http_gateway::impl final : public kj::HttpService {
  impl(caf::actor_system& sys, actors a, self_metrics& m, options o)
      : sys_(sys), actors_(std::move(a)), metrics_(m), opts_(std::move(o)) {}

  caf::actor_system& sys_;
  actors actors_;
  self_metrics& metrics_;
  options opts_;

  kj::Own<kj::HttpHeaderTable> table_;
  kj::HttpHeaderId h_partial_;
  /// Cluster: the X-Hearth-Partial value of a read answer about to be sent, by its response
  /// (kj runs every request on this one thread: no lock).
  std::map<const Response*, std::string> partial_;
  kj::HttpHeaderId h_content_encoding_, h_accept_, h_accept_encoding_, h_retry_after_, h_org_id_, h_www_authenticate_, h_authorization_;

  // Requests to actors, answered on the kj thread (cluster/actor_bridge.hpp).
  template <class Reply, class Handle, class... Ts>
  kj::Promise<Reply> ask(Handle h, Ts... xs) {
    return bridge::ask<Reply>(sys_, opts_.timeout, h, std::move(xs)...);
  }
  template <class Reply, class Out, class Handle, class Fn, class... Ts>
  kj::Promise<Out> ask_map(Handle h, Fn fn, Ts... xs) {
    return bridge::ask_map<Reply, Out>(sys_, opts_.timeout, h, std::move(fn), std::move(xs)...);
  }

  kj::Promise<void> send(kj::HttpService::Response& response, int code, std::string_view ctype,
                         std::string body, const std::string& route, clock_type::time_point t0,
                         const char* retry_after = nullptr, bool gzipped = false) {
    metrics_.observe_request(route, code,
                             std::chrono::duration<double>(clock_type::now() - t0).count());
    kj::HttpHeaders h(*table_);
    auto ct = kj::heapString(ctype.data(), ctype.size());
    if (!ctype.empty()) h.set(kj::HttpHeaderId::CONTENT_TYPE, ct);
    if (retry_after) h.set(h_retry_after_, retry_after);
    if (gzipped) h.set(h_content_encoding_, "gzip");
    kj::String partial;
    if (auto it = partial_.find(&response); it != partial_.end()) {
      partial = kj::heapString(it->second.data(), it->second.size());
      h.set(h_partial_, partial);
      partial_.erase(it);
    }
    auto buf = kj::heap<std::string>(std::move(body));
    auto out = response.send(code, status_text(code), h, static_cast<uint64_t>(buf->size()));
    if (buf->empty()) return kj::READY_NOW;
    auto p = out->write(buf->data(), buf->size());
    return p.attach(kj::mv(out), kj::mv(buf));
  }

  // 401 with the challenge a client needs to retry with credentials.
  kj::Promise<void> send_unauthenticated(kj::HttpService::Response& r, const error& e,
                                         const std::string& route, clock_type::time_point t0) {
    metrics_.observe_request(route, 401, std::chrono::duration<double>(clock_type::now() - t0).count());
    kj::HttpHeaders h(*table_);
    h.set(kj::HttpHeaderId::CONTENT_TYPE, "application/json");
    h.set(h_www_authenticate_, opts_.auth.bearer_tokens.empty() ? "Basic realm=\"hearth\""
                                                                : "Bearer realm=\"hearth\"");
    auto buf = kj::heap<std::string>(connect::error_body(e));
    auto out = r.send(401, status_text(401), h, static_cast<uint64_t>(buf->size()));
    auto p = out->write(buf->data(), buf->size());
    return p.attach(kj::mv(out), kj::mv(buf));
  }

  // A JSON error {code, message} with the status of its class (Connect style).
  kj::Promise<void> send_error(kj::HttpService::Response& r, const error& e, const std::string& route,
                               clock_type::time_point t0, int status_override = 0) {
    int code = status_override ? status_override : connect::http_status(e.cls());
    return send(r, code, "application/json", connect::error_body(e), route, t0,
                e.cls() == error_class::overloaded ? "1" : nullptr);
  }

  static std::optional<std::string> header(const kj::HttpHeaders& hs, kj::HttpHeaderId id) {
    KJ_IF_MAYBE(v, hs.get(id)) { return std::string(v->cStr()); }
    return std::nullopt;
  }

  // The tenants a request runs as. Single-tenant mode ignores X-Scope-OrgID (as Pyroscope does);
  // with multi-tenancy the header is required, and only queries may name several ("a|b").
  result<std::vector<std::string>> tenants_of(const kj::HttpHeaders& hs, bool allow_many) const {
    if (!opts_.multitenancy) return std::vector<std::string>{std::string(default_tenant)};
    return parse_tenant_header(header(hs, h_org_id_).value_or(""), allow_many);
  }

  kj::Promise<void> request(kj::HttpMethod method, kj::StringPtr url, const kj::HttpHeaders& headers,
                            kj::AsyncInputStream& body, Response& response) override {
    auto t0 = clock_type::now();
    target t = parse_target(std::string_view(url.cStr(), url.size()));
    const std::string& p = t.path;

    auto wrong_method = [&](const char* allowed) {
      return send_error(response,
                        error{errc::invalid_argument, std::string(kj::str(method).cStr()) + " " + p +
                                                          ": method not allowed, use " + allowed},
                        p, t0, 405);
    };

    if (opts_.auth.enabled() && p != "/ready") {
      if (auto s = check_authorization(header(headers, h_authorization_), opts_.auth); !s)
        return send_unauthenticated(response, s.err(), p, t0);
    }
    if (p == "/ready") {
      if (method != kj::HttpMethod::GET) return wrong_method("GET");
      return ask<bool>(actors_.ingester, ready_atom::value)
          .then([this, &response, t0](bool ready) {
            std::string why;
            if (ready && opts_.cluster != nullptr && !opts_.cluster->ready(&why))
              return send(response, 503, "text/plain; charset=utf-8", "not ready: " + why + "\n", "/ready", t0);
            return ready ? send(response, 200, "text/plain; charset=utf-8", "ready\n", "/ready", t0)
                         : send(response, 503, "text/plain; charset=utf-8",
                                "not ready: recovering WAL and segments\n", "/ready", t0);
          });
    }
    if (p == "/cluster/status") {
      if (method != kj::HttpMethod::GET) return wrong_method("GET");
      return handle_cluster_status(t, response, t0);
    }
    if (p == "/metrics") {
      if (method != kj::HttpMethod::GET) return wrong_method("GET");
      return send(response, 200, "text/plain; version=0.0.4; charset=utf-8", metrics_.serialize(),
                  "/metrics", t0);
    }
    if (p == "/ingest" || p == "/pyroscope/ingest") {
      if (method != kj::HttpMethod::POST) return wrong_method("POST");
      if (auto e = missing_role("distributor")) return send_error(response, *e, p, t0);
      return handle_ingest(std::move(t), headers, body, response, t0);
    }
    if (p == "/push.v1.PusherService/Push") {
      if (method != kj::HttpMethod::POST) return wrong_method("POST");
      if (auto e = missing_role("distributor")) return send_error(response, *e, p, t0);
      return handle_push(std::move(t), headers, body, response, t0);
    }
    if (p == "/v1development/profiles" ||
        p == "/opentelemetry.proto.collector.profiles.v1development.ProfilesService/Export") {
      if (method != kj::HttpMethod::POST) return wrong_method("POST");
      return handle_otlp(std::move(t), headers, body, response, t0);
    }
    for (const char* service : {"querier.v1.QuerierService", "hearth.v1.FindingsService"}) {
      std::string prefix = std::string("/") + service + "/";
      if (p.rfind(prefix, 0) != 0) continue;
      if (method != kj::HttpMethod::POST) return wrong_method("POST");
      if (auto e = missing_role("querier")) return send_error(response, *e, p, t0);
      return handle_read_api(service, std::move(t), headers, body, response, t0);
    }
    if (p.rfind("/settings.v1.SettingsService/", 0) == 0) {
      if (method != kj::HttpMethod::POST) return wrong_method("POST");
      return handle_settings(std::move(t), headers, body, response, t0);
    }
    if (p == "/pyroscope/render" || p == "/pyroscope/render-diff" || p == "/pyroscope/label-values") {
      if (method != kj::HttpMethod::GET) return wrong_method("GET");
      if (auto e = missing_role("querier")) return send_error(response, *e, p, t0);
      auto tenants = tenants_of(headers, true);
      if (!tenants) return send_error(response, tenants.err(), p, t0);
      if (p == "/pyroscope/render-diff") return handle_render_diff(std::move(t), std::move(*tenants), response, t0);
      if (p == "/pyroscope/label-values") return handle_label_values(std::move(t), std::move(*tenants), response, t0);
      return handle_render(std::move(t), std::move(*tenants), response, t0);
    }
    if (p == "/admin/compact") {
      if (method != kj::HttpMethod::POST) return wrong_method("POST");
      return ask<compaction_report>(actors_.compactor, compact_atom::value)
          .then(
              [this, &response, t0](compaction_report r) -> kj::Promise<void> {
                if (!r.status.ok()) return send_error(response, r.status.to_error(), "/admin/compact", t0);
                std::string body = "{\"jobs\":" + std::to_string(r.jobs) +
                                   ",\"blocksIn\":" + std::to_string(r.blocks_in) +
                                   ",\"blocksOut\":" + std::to_string(r.blocks_out) +
                                   ",\"bytesIn\":" + std::to_string(r.bytes_in) +
                                   ",\"bytesOut\":" + std::to_string(r.bytes_out) +
                                   ",\"duplicates\":" + std::to_string(r.duplicates) +
                                   ",\"droppedByRetention\":" + std::to_string(r.dropped) + "}";
                return send(response, 200, "application/json", std::move(body), "/admin/compact", t0);
              },
              [this, &response, t0](kj::Exception&& e) -> kj::Promise<void> {
                return send_error(response,
                                  error{errc::unavailable, std::string("compaction failed: ") +
                                                               e.getDescription().cStr()},
                                  "/admin/compact", t0);
              });
    }
    return send_error(response, error{errc::not_found, "no route for " + p}, "other", t0);
  }

  // Reads the whole body with the configured limit; the continuation gets the bytes, gunzipped
  // when `decode_encoding` is set and Content-Encoding says gzip.
  template <class Fn>
  kj::Promise<void> with_body(const kj::HttpHeaders& headers, kj::AsyncInputStream& body,
                              Response& response, std::string route, clock_type::time_point t0,
                              Fn fn, bool decode_encoding = true) {
    uint64_t limit = opts_.max_body_bytes;
    auto too_large = error{errc::body_too_large, "request body exceeds the limit of " +
                                                     std::to_string(limit) +
                                                     " bytes (server.max_body_bytes)"};
    KJ_IF_MAYBE(len, body.tryGetLength()) {
      if (*len > limit) return send_error(response, too_large, route, t0, 413);
    }
    bool gzip = false;
    if (auto ce = header(headers, h_content_encoding_)) gzip = decode_encoding && *ce == "gzip";
    return body.readAllBytes(limit + 1)
        .then(
            [this, &response, route, t0, limit, too_large, gzip,
             fn = std::move(fn)](kj::Array<kj::byte> bytes) mutable -> kj::Promise<void> {
              if (bytes.size() > limit) return send_error(response, too_large, route, t0, 413);
              std::string data(reinterpret_cast<const char*>(bytes.begin()), bytes.size());
              if (gzip) {
                // Request bodies are small here (Connect queries); big ingest bodies carry gzip
                // inside the payload and are inflated by the distributor.
                auto r = pprof::gunzip(as_bytes(data), limit);
                if (!r) return send_error(response, r.err(), route, t0);
                data = std::move(*r);
              }
              return fn(std::move(data));
            },
            [this, &response, route, t0, too_large](kj::Exception&& e) -> kj::Promise<void> {
              std::string d = e.getDescription().cStr();
              if (d.find("limit") != std::string::npos)
                return send_error(response, too_large, route, t0, 413);
              return send_error(response,
                                error{errc::bad_request_body, "failed to read request body: " + d},
                                route, t0, 400);
            });
  }

  // ---- ingest -------------------------------------------------------------------------------

  kj::Promise<void> handle_ingest(target t, const kj::HttpHeaders& headers, kj::AsyncInputStream& body,
                                  Response& response, clock_type::time_point t0) {
    std::string route = "/ingest";
    auto tenants = tenants_of(headers, false);
    if (!tenants) return send_error(response, tenants.err(), route, t0);
    ingest_request req;
    req.tenant = tenants->front();
    req.kind = static_cast<uint8_t>(ingest_kind::legacy_ingest);
    req.content_type = header(headers, kj::HttpHeaderId::CONTENT_TYPE).value_or("");
    req.param_names = std::move(t.names);
    req.param_values = std::move(t.values);
    req.received_ns = wall_clock_ns();
    // Content-Encoding on /ingest is not used by SDKs (the pprof inside is gzipped); treat the body
    // as opaque bytes and let the distributor detect gzip by magic, off the event loop.
    return with_body(
        headers, body, response, route, t0,
        [this, &response, route, t0, req = std::move(req)](std::string data) mutable {
          metrics_.bytes_received.Increment(static_cast<double>(data.size()));
          req.body = std::move(data);
          return forward_ingest(std::move(req), response, route, t0, reply_style::legacy);
        },
        /*decode_encoding=*/false);
  }

  // How an ingest route answers: /ingest (empty 200, 422 for bodies it cannot read), Connect
  // (PushResponse in the request's codec) or OTLP (ExportProfilesServiceResponse; 400, 413, 429,
  // else 500).
  enum class reply_style : uint8_t { legacy, connect, otlp };

  kj::Promise<void> forward_ingest(ingest_request req, Response& response, std::string route,
                                   clock_type::time_point t0, reply_style style) {
    auto codec = req.kind == static_cast<uint8_t>(ingest_kind::push_json) ||
                         req.kind == static_cast<uint8_t>(ingest_kind::otlp_json)
                     ? connect::codec::json
                     : connect::codec::proto;
    return ask<ingest_reply>(actors_.distributor, ingest_atom::value, std::move(req))
        .then(
            [this, &response, route, t0, style, codec](ingest_reply r) -> kj::Promise<void> {
              if (!r.status.ok()) {
                metrics_.ingest_rejected.Increment();
                error e = r.status.to_error();
                int code = 0;
                // Pyroscope answers /ingest parse and convert failures with 422.
                if (style == reply_style::legacy &&
                    (e.code == errc::bad_pprof || e.code == errc::bad_gzip ||
                     e.code == errc::bad_request_body))
                  code = 422;
                if (style == reply_style::otlp) code = otlp_status(e);
                if (e.code == errc::body_too_large) code = 413;
                return send_error(response, e, route, t0, code);
              }
              if (style == reply_style::legacy) return send(response, 200, "", "", route, t0);
              if (style == reply_style::otlp) {
                opentelemetry::proto::collector::profiles::v1development::ExportProfilesServiceResponse
                    out;
                if (codec == connect::codec::json)
                  return send(response, 200, "application/json", connect::encode(codec, out), route,
                              t0);
                return send(response, 200, "application/x-protobuf", connect::encode(codec, out),
                            route, t0);
              }
              push::v1::PushResponse pr;
              return send(response, 200, connect::content_type(codec), connect::encode(codec, pr),
                          route, t0);
            },
            [this, &response, route, t0](kj::Exception&& e) -> kj::Promise<void> {
              metrics_.ingest_rejected.Increment();
              return send_error(response,
                                error{errc::unavailable, std::string("ingest failed: ") +
                                                             e.getDescription().cStr()},
                                route, t0);
            });
  }

  kj::Promise<void> handle_push(target, const kj::HttpHeaders& headers, kj::AsyncInputStream& body,
                                Response& response, clock_type::time_point t0) {
    std::string route = "/push.v1.PusherService/Push";
    auto ct = header(headers, kj::HttpHeaderId::CONTENT_TYPE).value_or("");
    auto codec = connect::codec_of(ct);
    if (!codec) return send_error(response, codec.err(), route, t0, 415);
    auto tenants = tenants_of(headers, false);
    if (!tenants) return send_error(response, tenants.err(), route, t0);
    return with_body(headers, body, response, route, t0,
                     [this, &response, route, t0, c = *codec, ct,
                      tenant = tenants->front()](std::string data) {
                       metrics_.bytes_received.Increment(static_cast<double>(data.size()));
                       ingest_request req;
                       req.tenant = tenant;
                       req.kind = static_cast<uint8_t>(c == connect::codec::json
                                                           ? ingest_kind::push_json
                                                           : ingest_kind::push_proto);
                       req.content_type = ct;
                       req.body = std::move(data);
                       req.received_ns = wall_clock_ns();
                       return forward_ingest(std::move(req), response, route, t0, reply_style::connect);
                     });
  }

  // OTLP/HTTP status of a failed export (pyroscope-api.md §9): 400 invalid, 401 credentials,
  // 413 too large, 429 limited, 500 anything else.
  static int otlp_status(const error& e) {
    if (e.code == errc::body_too_large) return 413;
    switch (e.cls()) {
      case error_class::invalid_argument: return 400;
      case error_class::unauthenticated: return 401;
      case error_class::overloaded: return 429;
      default: return 500;
    }
  }

  // POST /v1development/profiles (and the Export path of the gRPC service, for HTTP clients):
  // OTLP profiles in binary protobuf or proto3 JSON, optionally gzipped. The body is decoded by
  // the distributor's worker, gunzipped there too.
  kj::Promise<void> handle_otlp(target, const kj::HttpHeaders& headers, kj::AsyncInputStream& body,
                                Response& response, clock_type::time_point t0) {
    std::string route = "/v1development/profiles";
    std::string ct = header(headers, kj::HttpHeaderId::CONTENT_TYPE).value_or("");
    std::string base = ct.substr(0, ct.find(';'));
    while (!base.empty() && base.back() == ' ') base.pop_back();
    for (auto& ch : base) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    ingest_kind kind;
    if (base == "application/x-protobuf" || base == "application/protobuf") {
      kind = ingest_kind::otlp_proto;
    } else if (base == "application/json") {
      kind = ingest_kind::otlp_json;
    } else {
      std::string why = base.rfind("application/grpc", 0) == 0
                            ? "OTLP over gRPC is not served; send OTLP/HTTP to "
                              "/v1development/profiles"
                            : "use application/x-protobuf, application/protobuf or application/json";
      return send_error(response,
                        error{errc::unsupported_format,
                              "unsupported Content-Type " + quote_untrusted(ct) + ": " + why},
                        route, t0, 415);
    }
    bool gzip = false;
    if (auto ce = header(headers, h_content_encoding_)) {
      std::string v = *ce;
      for (auto& ch : v) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
      if (v == "gzip") {
        gzip = true;
      } else if (!v.empty() && v != "identity") {
        return send_error(response,
                          error{errc::unsupported_format,
                                "unsupported Content-Encoding " + quote_untrusted(*ce) +
                                    ": use gzip or none"},
                          route, t0, 415);
      }
    }
    auto tenants = tenants_of(headers, false);
    if (!tenants) return send_error(response, tenants.err(), route, t0);
    return with_body(
        headers, body, response, route, t0,
        [this, &response, route, t0, kind, gzip, ct,
         tenant = tenants->front()](std::string data) -> kj::Promise<void> {
          metrics_.bytes_received.Increment(static_cast<double>(data.size()));
          // Neither form can start with the gzip magic, so the distributor tells gzip by it; a
          // body that says gzip must be gzip.
          if (gzip && !pprof::is_gzip(as_bytes(data)))
            return send_error(response,
                              error{errc::bad_gzip,
                                    "Content-Encoding is gzip but the body is not gzip data"},
                              route, t0, 400);
          ingest_request req;
          req.tenant = tenant;
          req.kind = static_cast<uint8_t>(kind);
          req.content_type = ct;
          req.body = std::move(data);
          req.received_ns = wall_clock_ns();
          return forward_ingest(std::move(req), response, route, t0, reply_style::otlp);
        },
        /*decode_encoding=*/false);
  }

  // ---- settings.v1 ------------------------------------------------------------------------------

  kj::Promise<void> handle_settings(target t, const kj::HttpHeaders& headers, kj::AsyncInputStream& body,
                                    Response& response, clock_type::time_point t0) {
    std::string method = t.path.substr(std::string_view("/settings.v1.SettingsService/").size());
    std::string route = t.path;
    if (method != "Get" && method != "Set" && method != "Delete")
      return send_error(response, error{errc::not_found, "no method " + method + " in settings.v1.SettingsService"},
                        "other", t0);
    auto codec = connect::codec_of(header(headers, kj::HttpHeaderId::CONTENT_TYPE).value_or(""));
    if (!codec) return send_error(response, codec.err(), route, t0, 415);
    auto tenants = tenants_of(headers, false);
    if (!tenants) return send_error(response, tenants.err(), route, t0);
    return with_body(headers, body, response, route, t0,
                     [this, &response, route, t0, c = *codec, method,
                      tenant = tenants->front()](std::string data) -> kj::Promise<void> {
      auto on_reply = [this, &response, route, t0, c, method](settings_reply r) -> kj::Promise<void> {
        if (!r.status.ok()) return send_error(response, r.status.to_error(), route, t0);
        auto fill = [](settings::v1::Setting* out, const setting_entry& s) {
          out->set_name(s.name);
          out->set_value(s.value);
          out->set_modifiedat(s.modified_ms);
        };
        if (method == "Get") {
          settings::v1::GetSettingsResponse out;
          for (const auto& s : r.settings) fill(out.add_settings(), s);
          return reply_msg(response, c, out, route, t0);
        }
        if (method == "Set") {
          settings::v1::SetSettingsResponse out;
          if (!r.settings.empty()) fill(out.mutable_setting(), r.settings.front());
          return reply_msg(response, c, out, route, t0);
        }
        return reply_msg(response, c, settings::v1::DeleteSettingsResponse{}, route, t0);
      };
      auto on_fail = [this, &response, route, t0](kj::Exception&& e) -> kj::Promise<void> {
        return send_error(response,
                          error{errc::unavailable, std::string("settings: ") + e.getDescription().cStr()},
                          route, t0);
      };
      if (method == "Get") {
        settings::v1::GetSettingsRequest in;
        if (auto st = connect::decode(c, data, in); !st) return send_error(response, st.err(), route, t0);
        return ask<settings_reply>(actors_.settings, get_atom::value, tenant).then(std::move(on_reply), std::move(on_fail));
      }
      if (method == "Set") {
        settings::v1::SetSettingsRequest in;
        if (auto st = connect::decode(c, data, in); !st) return send_error(response, st.err(), route, t0);
        if (!in.has_setting() || in.setting().name().empty())
          return send_error(response, error{errc::invalid_argument, "Set: setting.name is required"}, route, t0);
        setting_entry e{in.setting().name(), in.setting().value(), in.setting().modifiedat()};
        return ask<settings_reply>(actors_.settings, put_atom::value, tenant, std::move(e))
            .then(std::move(on_reply), std::move(on_fail));
      }
      settings::v1::DeleteSettingsRequest in;
      if (auto st = connect::decode(c, data, in); !st) return send_error(response, st.err(), route, t0);
      if (in.name().empty())
        return send_error(response, error{errc::invalid_argument, "Delete: name is required"}, route, t0);
      return ask<settings_reply>(actors_.settings, delete_atom::value, tenant, setting_entry{in.name(), "", 0})
          .then(std::move(on_reply), std::move(on_fail));
    });
  }

  // ---- queries ------------------------------------------------------------------------------

  api::limits limits() const {
    return api::limits{opts_.max_nodes_default, opts_.max_nodes_max, opts_.max_range_ns};
  }

  kj::Promise<void> reply_msg(Response& response, connect::codec c,
                              const google::protobuf::Message& m, const std::string& route,
                              clock_type::time_point t0) {
    return send(response, 200, connect::content_type(c), connect::encode(c, m), route, t0);
  }

  // Connect unary: the response may be gzipped when the client's Accept-Encoding allows it.
  bool accepts_gzip(const kj::HttpHeaders& headers) const {
    auto ae = header(headers, h_accept_encoding_);
    return ae && ae->find("gzip") != std::string::npos;
  }

  // Cluster: the next send() on `response` carries X-Hearth-Partial with these nodes.
  void note_partial(Response& response, const std::vector<std::string>& nodes) {
    if (nodes.empty()) return;
    std::string v;
    for (const auto& n : nodes) v += (v.empty() ? "" : ",") + n;
    partial_[&response] = std::move(v);
  }

  // GET /cluster/status: the nodes as this one sees them (JSON, or text with ?format=text).
  kj::Promise<void> handle_cluster_status(const target& t, Response& response, clock_type::time_point t0) {
    std::string route = "/cluster/status";
    if (opts_.cluster == nullptr)
      return send_error(response, error{errc::not_found, "not a cluster: this node has no [cluster] section"},
                        route, t0);
    int64_t now_ms = wall_clock_ns() / 1000000;
    auto nodes = opts_.cluster->status(now_ms);
    std::string why;
    bool ready = opts_.cluster->ready(&why);
    const auto& o = opts_.cluster->options();
    const std::string* fmt = t.get("format");
    if (fmt && *fmt == "text") {
      char line[512];
      std::string out = "node " + opts_.cluster->self_name() + ": " + (ready ? "ready" : "not ready: " + why) +
                        "\nreplication_factor=" + std::to_string(o.replication_factor) +
                        " write_quorum=" + std::to_string(o.write_quorum) +
                        " shards=" + std::to_string(o.shards) + "\n\n";
      std::snprintf(line, sizeof line, "%-16s %-22s %-8s %-10s %-8s %-7s %-9s %s\n", "NODE", "ADDRESS", "STATE",
                    "HEARTBEAT", "TOKENS", "OWNS", "HINTS", "ROLES");
      out += line;
      for (const auto& n : nodes) {
        std::string roles;
        for (const auto& r : n.roles) roles += (roles.empty() ? "" : ",") + r;
        std::string hb = n.self ? "self" : n.last_heartbeat_ms == 0
                                               ? "never"
                                               : std::to_string((now_ms - n.last_heartbeat_ms) / 1000) + "s ago";
        std::string state = std::string(cluster::to_string(n.state)) + (n.behind ? "*" : "");
        std::snprintf(line, sizeof line, "%-16s %-22s %-8s %-10s %-8u %5.1f%%  %-9llu %s\n", n.name.c_str(),
                      n.address.c_str(), state.c_str(), hb.c_str(), n.tokens, n.ring_share * 100,
                      static_cast<unsigned long long>(n.hints_held_for), roles.c_str());
        out += line;
      }
      out += "\n* behind: some node holds writes it missed (reads prefer other replicas)\n";
      return send(response, 200, "text/plain; charset=utf-8", std::move(out), route, t0);
    }
    auto q = [](const std::string& s) {
      std::string out = "\"";
      for (char c : s) {
        if (c == '"' || c == '\\') out += '\\';
        out += c;
      }
      return out + "\"";
    };
    std::string out = "{\"node\":" + q(opts_.cluster->self_name()) + ",\"ready\":" + (ready ? "true" : "false") +
                      ",\"notReadyReason\":" + q(why) +
                      ",\"replicationFactor\":" + std::to_string(o.replication_factor) +
                      ",\"writeQuorum\":" + std::to_string(o.write_quorum) +
                      ",\"shards\":" + std::to_string(o.shards) + ",\"nodes\":[";
    for (size_t i = 0; i < nodes.size(); ++i) {
      const auto& n = nodes[i];
      std::string roles, hints;
      for (const auto& r : n.roles) roles += (roles.empty() ? "" : ",") + q(r);
      for (const auto& h : n.hints_for) hints += (hints.empty() ? "" : ",") + q(h);
      char share[32];
      std::snprintf(share, sizeof share, "%.6f", n.ring_share);
      out += std::string(i ? "," : "") + "{\"name\":" + q(n.name) + ",\"address\":" + q(n.address) +
             ",\"self\":" + (n.self ? "true" : "false") + ",\"state\":" + q(std::string(cluster::to_string(n.state))) +
             ",\"connected\":" + (n.connected ? "true" : "false") +
             ",\"lastHeartbeatMs\":" + std::to_string(n.last_heartbeat_ms) +
             ",\"bootId\":" + q(std::to_string(n.boot_id)) + ",\"roles\":[" + roles + "]" +
             ",\"tokens\":" + std::to_string(n.tokens) + ",\"ringShare\":" + share +
             ",\"hintsHeldFor\":" + std::to_string(n.hints_held_for) +
             ",\"behind\":" + (n.behind ? "true" : "false") + ",\"holdsHintsFor\":[" + hints + "]}";
    }
    out += "]}";
    return send(response, 200, "application/json", std::move(out), route, t0);
  }

  // Cluster: a node without `role` refuses the routes that need it.
  std::optional<error> missing_role(std::string_view role) const {
    if (opts_.cluster == nullptr || opts_.cluster->member(0).has_role(role)) return std::nullopt;
    return error{errc::unavailable, "node " + opts_.cluster->self_name() + " has no " + std::string(role) +
                                        " role (cluster.roles); send this request to another node"};
  }

  kj::Promise<void> run_query(query_request q, Response& response, std::string route,
                              clock_type::time_point t0,
                              std::function<kj::Promise<void>(query_result&)> on_ok) {
    return ask<query_result>(actors_.frontend, query_atom::value, std::move(q))
        .then(
            [this, &response, route, t0, on_ok = std::move(on_ok)](query_result r) -> kj::Promise<void> {
              if (!r.status.ok()) return send_error(response, r.status.to_error(), route, t0);
              note_partial(response, r.partial_nodes);
              return on_ok(r);
            },
            [this, &response, route, t0](kj::Exception&& e) -> kj::Promise<void> {
              return send_error(response,
                                error{errc::unavailable,
                                      std::string("query failed: ") + e.getDescription().cStr()},
                                route, t0);
            });
  }

  // querier.v1.QuerierService and hearth.v1.FindingsService: decode + validate (api::), ask the
  // query frontend, encode (api::). Nothing but byte shuffling happens on the event loop.
  kj::Promise<void> handle_read_api(std::string service, target t, const kj::HttpHeaders& headers,
                                    kj::AsyncInputStream& body, Response& response,
                                    clock_type::time_point t0) {
    std::string method = t.path.substr(service.size() + 2);
    std::string route = t.path;
    if (!api::known_method(service, method))
      return send_error(response, error{errc::not_found, "no method " + method + " in " + service},
                        "other", t0);
    auto codec = connect::codec_of(header(headers, kj::HttpHeaderId::CONTENT_TYPE).value_or(""));
    if (!codec) return send_error(response, codec.err(), route, t0, 415);
    bool utf8_names = false;
    if (auto acc = header(headers, h_accept_))
      utf8_names = acc->find("allow-utf8-labelnames=true") != std::string::npos;
    auto tenants = tenants_of(headers, true);
    if (!tenants) return send_error(response, tenants.err(), route, t0);
    bool gzip = accepts_gzip(headers);
    return with_body(
        headers, body, response, route, t0,
        [this, &response, route, t0, c = *codec, service, method, utf8_names, gzip,
         tenants = std::move(*tenants)](std::string data) mutable -> kj::Promise<void> {
          auto q = api::parse_request(service, method, c, data, limits(), wall_clock_ns());
          if (!q) return send_error(response, q.err(), route, t0);
          q->tenants = std::move(tenants);
          // The frontend's answer is encoded (and gzipped) on the CAF side, off the event loop.
          struct encoded {
            reply_status status;
            std::string body;
            bool gzipped = false;
            std::vector<std::string> partial_nodes;
          };
          auto encode = [c, service, method, utf8_names, gzip, req = *q](query_result& r) {
            encoded e;
            if (!r.status.ok()) {
              e.status = r.status;
              return e;
            }
            auto out = api::render_response(service, method, c, req, r, utf8_names);
            if (!out) {
              e.status = reply_status::from(out.err());
              return e;
            }
            e.body = std::move(*out);
            e.partial_nodes = std::move(r.partial_nodes);
            // Small bodies are not worth a gzip header and the client's inflate.
            if (gzip && e.body.size() >= 1024) {
              e.body = gzip_compress(e.body, 1);
              e.gzipped = true;
            }
            return e;
          };
          return ask_map<query_result, encoded>(actors_.frontend, std::move(encode), query_atom::value,
                                                std::move(*q))
              .then(
                  [this, &response, route, t0, c](encoded e) -> kj::Promise<void> {
                    if (!e.status.ok()) return send_error(response, e.status.to_error(), route, t0);
                    note_partial(response, e.partial_nodes);
                    return send(response, 200, connect::content_type(c), std::move(e.body), route,
                                t0, nullptr, e.gzipped);
                  },
                  [this, &response, route, t0](kj::Exception&& e) -> kj::Promise<void> {
                    return send_error(response,
                                      error{errc::unavailable,
                                            std::string("query failed: ") + e.getDescription().cStr()},
                                      route, t0);
                  });
        });
  }

  // ---- /pyroscope/render, /pyroscope/render-diff, /pyroscope/label-values ---------------------

  // A render-style time parameter (attime: s/ms/µs/ns, YYYYMMDD, now-1h); absent = now.
  result<int64_t> render_time(const target& t, const char* name, int64_t now) const {
    const std::string* v = t.get(name);
    if (!v || v->empty()) return now;
    auto r = parse_attime(*v, now);
    if (!r) return r.err();
    if (*r == 0) return error{errc::bad_time_range, "missing time range: " + std::string(name) + " is 0"};
    return r;
  }

  // max-nodes / maxNodes (later wins; invalid values ignored, as Pyroscope).
  result<int64_t> render_max_nodes(const target& t) const {
    int64_t max_nodes = 0;
    for (size_t i = 0; i < t.names.size(); ++i)
      if (t.names[i] == "max-nodes" || t.names[i] == "maxNodes") {
        char* end = nullptr;
        long long v = std::strtoll(t.values[i].c_str(), &end, 10);
        if (end && *end == 0 && v > 0) max_nodes = v;
      }
    return api::check_max_nodes(max_nodes != 0, max_nodes, limits());
  }

  // One side of a render: `query` + `from`/`until` params -> a merge_stacks selection.
  result<query::query_spec> render_selection(const target& t, const char* qname, const char* from,
                                             const char* until, int64_t now) const {
    const std::string* qp = t.get(qname);
    if (!qp || qp->empty())
      return error{errc::bad_selector,
                   std::string(qname) + " parameter is required, e.g. "
                                        "process_cpu:cpu:nanoseconds:cpu:nanoseconds{service_name=\"x\"}"};
    auto typed = api::split_typed_query(*qp);
    if (!typed) return typed.err();
    auto f = render_time(t, from, now);
    if (!f) return f.err();
    auto u = render_time(t, until, now);
    if (!u) return u.err();
    auto range = api::check_range(*f / ns_per_ms, *u / ns_per_ms, limits());
    if (!range) return range.err();
    query::query_spec s;
    s.kind = static_cast<uint8_t>(query::query_kind::merge_stacks);
    s.profile_type = typed->first;
    s.selector = typed->second;
    s.start_ns = range->first;
    s.end_ns = range->second;
    return s;
  }

  kj::Promise<void> handle_render(target t, std::vector<std::string> tenants, Response& response,
                                  clock_type::time_point t0) {
    std::string route = "/pyroscope/render";
    int64_t now = wall_clock_ns();
    auto spec = render_selection(t, "query", "from", "until", now);
    if (!spec) return send_error(response, spec.err(), route, t0);
    auto mn = render_max_nodes(t);
    if (!mn) return send_error(response, mn.err(), route, t0);
    auto pt = *query::parse_profile_type(spec->profile_type);
    int64_t from_s = spec->start_ns / ns_per_s, until_s = (spec->end_ns - 1) / ns_per_s;
    int64_t step = point_interval_s(from_s, until_s);
    // The timeline must stay exact at its own step: no coarser rollups.
    spec->max_rollup_step_ns = step * ns_per_s;
    spec->want_points = true;
    // groupBy (only the first is used): one timeline per value of that label ("*" = absent),
    // from the same per-profile points as the main timeline, so they always add up to it.
    const std::string* group_by = t.get("groupBy");
    bool grouped = group_by && !group_by->empty();
    if (grouped) spec->group_by = {*group_by};
    // aggregation=avg: each sample is the mean of the profiles in its step (default: their sum).
    bool avg = t.get("aggregation") && *t.get("aggregation") == "avg";
    query_request q;
    q.tenants = std::move(tenants);
    q.op = static_cast<uint8_t>(query_op::flame_graph);
    q.spec = *spec;
    q.max_nodes = *mn;
    int64_t start = from_s / step * step, end = until_s / step * step;
    return run_query(std::move(q), response, route, t0,
                     [this, &response, route, t0, start, end, step, pt, grouped, avg](query_result& r) {
                       size_t n = static_cast<size_t>(std::max<int64_t>(0, (end - start) / step));
                       query::flamebearer_timeline all{start, step, std::vector<uint64_t>(n, 0)};
                       query::flamebearer_groups groups;
                       std::vector<uint64_t> all_count(n, 0);
                       std::vector<std::vector<uint64_t>> group_count;
                       std::map<std::string, size_t> group_index;
                       for (size_t i = 0; i < r.point_times_ns.size(); ++i) {
                         // A profile counts in the step that contains its time (a rollup row
                         // sits at its first profile's time, in its bucket: rollups answer the
                         // same timeline).
                         int64_t ts = r.point_times_ns[i] / ns_per_s;
                         if (ts < start || ts >= end) continue;
                         size_t k = static_cast<size_t>((ts - start) / step);
                         auto v = static_cast<uint64_t>(std::max<int64_t>(0, r.point_values[i]));
                         all.samples[k] += v;
                         ++all_count[k];
                         if (!grouped || i >= r.point_groups.size()) continue;
                         std::string key = r.point_groups[i].empty() ? "*" : r.point_groups[i];
                         auto [it, added] = group_index.emplace(key, groups.size());
                         if (added) {
                           groups.emplace_back(key, query::flamebearer_timeline{
                                                        start, step, std::vector<uint64_t>(n, 0)});
                           group_count.emplace_back(n, 0);
                         }
                         groups[it->second].second.samples[k] += v;
                         ++group_count[it->second][k];
                       }
                       if (avg) {
                         auto mean = [](std::vector<uint64_t>& xs, const std::vector<uint64_t>& cs) {
                           for (size_t k = 0; k < xs.size(); ++k)
                             if (cs[k]) xs[k] /= cs[k];
                         };
                         mean(all.samples, all_count);
                         for (size_t g = 0; g < groups.size(); ++g) mean(groups[g].second.samples, group_count[g]);
                       }
                       std::sort(groups.begin(), groups.end(),
                                 [](const auto& x, const auto& y) { return x.first < y.first; });
                       query::flamebearer_meta meta;
                       meta.sample_type = pt.sample_type;
                       meta.sample_unit = pt.sample_unit;
                       meta.timeline = std::move(all);
                       return send(response, 200, "application/json",
                                   query::render_flamebearer_json(r.graph, meta, grouped ? &groups : nullptr),
                                   route, t0);
                     });
  }

  kj::Promise<void> handle_render_diff(target t, std::vector<std::string> tenants, Response& response,
                                       clock_type::time_point t0) {
    std::string route = "/pyroscope/render-diff";
    int64_t now = wall_clock_ns();
    auto left = render_selection(t, "leftQuery", "leftFrom", "leftUntil", now);
    if (!left) return send_error(response, left.err(), route, t0);
    auto right = render_selection(t, "rightQuery", "rightFrom", "rightUntil", now);
    if (!right) return send_error(response, right.err(), route, t0);
    if (left->profile_type != right->profile_type)
      return send_error(response,
                        error{errc::invalid_argument, "left and right queries must have the same profile type (" +
                                                          left->profile_type + " vs " + right->profile_type + ")"},
                        route, t0);
    auto mn = render_max_nodes(t);
    if (!mn) return send_error(response, mn.err(), route, t0);
    left->max_rollup_step_ns = right->max_rollup_step_ns = INT64_MAX;
    auto pt = *query::parse_profile_type(left->profile_type);
    query_request q;
    q.tenants = std::move(tenants);
    q.op = static_cast<uint8_t>(query_op::diff);
    q.spec = std::move(*left);
    q.right = std::move(*right);
    q.max_nodes = *mn;
    return run_query(std::move(q), response, route, t0, [this, &response, route, t0, pt](query_result& r) {
      query::flamebearer_meta meta;
      meta.sample_type = pt.sample_type;
      meta.sample_unit = pt.sample_unit;
      return send(response, 200, "application/json", query::render_flamebearer_diff_json(r.diff, meta),
                  route, t0);
    });
  }

  // ?label=__name__ lists profile type ids; any other label its values (Pyroscope forwards no
  // name there, which is a bug we do not copy).
  kj::Promise<void> handle_label_values(target t, std::vector<std::string> tenants, Response& response,
                                        clock_type::time_point t0) {
    std::string route = "/pyroscope/label-values";
    const std::string* label = t.get("label");
    if (!label || label->empty())
      return send_error(response, error{errc::invalid_argument, "label parameter is required"}, route, t0);
    query_request q;
    q.tenants = std::move(tenants);
    q.op = static_cast<uint8_t>(query_op::values);
    q.spec.start_ns = 0;
    q.spec.end_ns = INT64_MAX;
    q.spec.selector = "{}";
    if (*label == "__name__") {
      q.spec.kind = static_cast<uint8_t>(query::query_kind::profile_types);
    } else {
      q.spec.kind = static_cast<uint8_t>(query::query_kind::label_values);
      q.spec.label_name = *label;
    }
    return run_query(std::move(q), response, route, t0, [this, &response, route, t0](query_result& r) {
      std::string out = "[";
      for (size_t i = 0; i < r.values.size(); ++i) {
        if (i) out += ',';
        query::append_json_string(out, r.values[i]);
      }
      out += "]";
      return send(response, 200, "application/json", std::move(out), route, t0);
    });
  }

  // ---- lifecycle ----------------------------------------------------------------------------

  // Registers the headers the gateway reads or writes (before the server thread starts).
  void build_header_table() {
    kj::HttpHeaderTable::Builder builder;
    h_content_encoding_ = builder.add("Content-Encoding");
    h_partial_ = builder.add("X-Hearth-Partial");
    h_accept_ = builder.add("Accept");
    h_accept_encoding_ = builder.add("Accept-Encoding");
    h_retry_after_ = builder.add("Retry-After");
    h_www_authenticate_ = builder.add("WWW-Authenticate");
    h_authorization_ = builder.add("Authorization");
    h_org_id_ = builder.add("X-Scope-OrgID");
    table_ = builder.build();
  }

  kj_server_thread server_;  ///< last: stopped (joined) before the members it serves go away
};

http_gateway::http_gateway(caf::actor_system& sys, actors handles, self_metrics& metrics, options opts)
    : impl_(std::make_unique<impl>(sys, std::move(handles), metrics, std::move(opts))) {}

http_gateway::~http_gateway() { stop(); }

result<uint16_t> http_gateway::start() {
  impl& i = *impl_;
  i.build_header_table();
  return i.server_.start("HTTP", i.opts_.host, i.opts_.port,
                         [&i](kj::AsyncIoContext& io, kj::ConnectionReceiver& listener,
                              kj::Promise<void> stop) {
                           kj::HttpServerSettings settings;
                           kj::HttpServer server(io.provider->getTimer(), *i.table_, i, settings);
                           server.listenHttp(listener).exclusiveJoin(kj::mv(stop)).wait(io.waitScope);
                         });
}

void http_gateway::stop() {
  if (impl_) impl_->server_.stop();
}

}  // namespace hearth
