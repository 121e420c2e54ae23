#include "cluster/rpc_server.hpp"

// GCC 12 reports the vectors inside kj::ExceptionOr<reply> (kj's NullableValue union) as "maybe
// uninitialized" when a reply crosses the bridge; kj constructs them before use.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

#include <capnp/rpc-twoparty.h>
#include <kj/async-io.h>
#include <kj/debug.h>


#include "actors/clock.hpp"
#include "actors/cluster_view.hpp"
#include "admin.capnp.h"
#include "cluster/actor_bridge.hpp"
#include "cluster/kj_server.hpp"
#include "cluster/node_status.hpp"
#include "format/gzip.hpp"
#include "format/tenant.hpp"
#include "hearth.capnp.h"
#include "hearth.pb.h"
#include "ingest.capnp.h"
#include "querier.pb.h"
#include "query.capnp.h"
#include "query/flame_tree.hpp"
#include "types.pb.h"

namespace hearth {
namespace {

constexpr std::string_view querier_service = "querier.v1.QuerierService";
constexpr std::string_view findings_service = "hearth.v1.FindingsService";
constexpr uint32_t default_chunk_bytes = 64 << 10;
constexpr uint32_t max_chunk_bytes = 4 << 20;

// ---- errors ----------------------------------------------------------------------------------

// Our error as a Cap'n Proto exception: "<errc name> <number>: <message>" (docs/design/rpc.md).
// The kj type says what a client may do: OVERLOADED retry later, UNIMPLEMENTED do not retry,
// FAILED for everything else (the errc in the text tells which class).
kj::Exception to_kj(const error& e) {
  auto type = kj::Exception::Type::FAILED;
  if (e.cls() == error_class::overloaded) type = kj::Exception::Type::OVERLOADED;
  if (e.cls() == error_class::unimplemented) type = kj::Exception::Type::UNIMPLEMENTED;
  auto name = to_string(e.code);
  return kj::Exception(type, __FILE__, __LINE__,
                       kj::str(kj::StringPtr(name.data(), name.size()), " ",
                               static_cast<unsigned>(e.code), ": ", e.message.c_str()));
}

// An actor that did not answer (timeout, gone): unavailable, naming what was asked.
kj::Exception bridge_failure(const char* what, const kj::Exception& e) {
  return to_kj(error{errc::unavailable, std::string(what) + ": " + e.getDescription().cStr()});
}

std::string str(capnp::Text::Reader t) { return std::string(t.cStr(), t.size()); }

std::string base64_encode(std::string_view in) {
  static const char* tbl = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  size_t i = 0;
  for (; i + 2 < in.size(); i += 3) {
    uint32_t v = (uint8_t(in[i]) << 16) | (uint8_t(in[i + 1]) << 8) | uint8_t(in[i + 2]);
    for (int s = 18; s >= 0; s -= 6) out += tbl[(v >> s) & 63];
  }
  if (i + 1 == in.size()) {
    uint32_t v = uint8_t(in[i]) << 16;
    out += tbl[(v >> 18) & 63];
    out += tbl[(v >> 12) & 63];
    out += "==";
  } else if (i + 2 == in.size()) {
    uint32_t v = (uint8_t(in[i]) << 16) | (uint8_t(in[i + 1]) << 8);
    out += tbl[(v >> 18) & 63];
    out += tbl[(v >> 12) & 63];
    out += tbl[(v >> 6) & 63];
    out += '=';
  }
  return out;
}

// A login token against [auth]: a bearer token, or "user:password" for a basic user. The checks
// are those of the HTTP gateway (check_authorization), fed the header either form would send.
status check_token(const std::string& token, const auth_config& auth) {
  if (!auth.enabled()) return {};
  if (token.empty())
    return error{errc::unauthenticated, "authentication is required: log in with a token (--token)"};
  if (!auth.bearer_tokens.empty())
    if (check_authorization("Bearer " + token, auth)) return {};
  if (!auth.basic_users.empty() && token.find(':') != std::string::npos)
    if (check_authorization("Basic " + base64_encode(token), auth)) return {};
  return error{errc::unauthenticated, "the token is not accepted"};
}

}  // namespace

// ---- the kj side -----------------------------------------------------------------------------

struct rpc_server::impl {
  impl(caf::actor_system& sys, actors a, options o)
      : sys(sys), handles(std::move(a)), opts(std::move(o)), started_ms(wall_clock_ns() / 1000000) {}

  caf::actor_system& sys;
  actors handles;
  options opts;
  int64_t started_ms;
  std::string rpc_address;  ///< set on the server thread once bound; read only there

  template <class Reply, class Handle, class... Ts>
  kj::Promise<Reply> ask(Handle h, Ts... xs) {
    return bridge::ask<Reply>(sys, opts.timeout, h, std::move(xs)...);
  }
  template <class Reply, class Handle, class... Ts>
  kj::Promise<Reply> ask_admin(Handle h, Ts... xs) {
    return bridge::ask<Reply>(sys, opts.admin_timeout, h, std::move(xs)...);
  }

  kj_server_thread server;  ///< last: stopped (joined) before the members it serves go away
};

namespace {

using shared = rpc_server::impl;

// ---- Ingest ----------------------------------------------------------------------------------

// A label value of the legacy `name` parameter cannot hold its separators.
status check_legacy_label(const std::string& name, const std::string& value) {
  if (value.find_first_of(",{}") != std::string::npos)
    return error{errc::bad_labels, "label " + quote_untrusted(name) + ": value " +
                                       quote_untrusted(value) + " must not contain ',', '{' or '}'"};
  return {};
}

class ingest_impl final : public rpc::Ingest::Server {
 public:
  ingest_impl(shared& s, std::vector<std::string> tenants) : s_(s), tenants_(std::move(tenants)) {}

  kj::Promise<void> push(PushContext context) override {
    auto in = context.getParams().getRequest();
    auto req = build(in);
    if (!req) return to_kj(req.err());
    return s_.ask<ingest_reply>(s_.handles.distributor, ingest_atom::value, std::move(*req))
        .then(
            [context](ingest_reply r) mutable -> kj::Promise<void> {
              if (!r.status.ok()) return to_kj(r.status.to_error());
              auto out = context.getResults().initResult();
              out.setProfiles(r.profiles);
              out.setSeries(r.series);
              out.setSamples(r.samples);
              return kj::READY_NOW;
            },
            [](kj::Exception&& e) -> kj::Promise<void> { return bridge_failure("ingest", e); });
  }

 private:
  // The request POST /ingest would carry for the same upload: the distributor decodes it exactly
  // as an SDK's.
  result<ingest_request> build(rpc::PushRequest::Reader in) const {
    if (tenants_.size() != 1)
      return error{errc::invalid_argument, "ingest needs exactly one tenant; the session has " +
                                               std::to_string(tenants_.size())};
    auto data = in.getData();
    if (data.size() > s_.opts.max_body_bytes)
      return error{errc::body_too_large, "profile of " + std::to_string(data.size()) +
                                             " bytes exceeds the limit of " +
                                             std::to_string(s_.opts.max_body_bytes) +
                                             " bytes (server.max_body_bytes)"};
    std::string service = str(in.getServiceName());
    if (service.empty())
      return error{errc::bad_labels, "serviceName is required (the application name)"};
    std::string kind = str(in.getKind());
    bool text = in.getFormat() == rpc::Format::FOLDED || in.getFormat() == rpc::Format::LINES;
    if (!kind.empty() && !text)
      return error{errc::invalid_argument,
                   "kind " + quote_untrusted(kind) +
                       " applies to folded and lines uploads only (pprof and jfr name their sample types)"};
    std::string name = service + (kind.empty() ? "" : "." + kind) + "{";
    bool first = true;
    for (auto l : in.getLabels()) {
      std::string n = str(l.getName()), v = str(l.getValue());
      if (auto st = check_legacy_label(n, v); !st) return st.err();
      if (!first) name += ',';
      first = false;
      name += n + "=" + v;
    }
    name += "}";
    ingest_request req;
    req.tenant = tenants_.front();
    req.kind = static_cast<uint8_t>(ingest_kind::legacy_ingest);
    req.received_ns = wall_clock_ns();
    auto param = [&](std::string n, std::string v) {
      req.param_names.push_back(std::move(n));
      req.param_values.push_back(std::move(v));
    };
    param("name", name);
    if (in.getFromNs()) param("from", std::to_string(in.getFromNs()));
    if (in.getUntilNs()) param("until", std::to_string(in.getUntilNs()));
    if (in.getSampleRate()) param("sampleRate", std::to_string(in.getSampleRate()));
    if (in.hasSpyName() && in.getSpyName().size()) param("spyName", str(in.getSpyName()));
    std::string body(reinterpret_cast<const char*>(data.begin()), data.size());
    switch (in.getFormat()) {
      case rpc::Format::PPROF:
        if (in.getSampleTypeConfig().size() == 0) {
          param("format", "pprof");
          req.body = std::move(body);
        } else {
          // Display names travel as the Go SDK sends them: a multipart form with the profile
          // and a sample_type_config part.
          std::string cfg = "{";
          for (auto c : in.getSampleTypeConfig()) {
            if (cfg.size() > 1) cfg += ',';
            query::append_json_string(cfg, str(c.getSampleType()));
            cfg += ":{\"display-name\":";
            query::append_json_string(cfg, str(c.getDisplayName()));
            cfg += "}";
          }
          cfg += "}";
          const std::string boundary = "hearth-rpc-6d1f0c8a2b";
          if (body.find("--" + boundary) != std::string::npos)
            return error{errc::bad_request_body, "the profile's bytes contain the form boundary"};
          std::string form;
          form += "--" + boundary + "\r\nContent-Disposition: form-data; name=\"profile\"; "
                  "filename=\"profile.pprof\"\r\nContent-Type: application/octet-stream\r\n\r\n";
          form += body;
          form += "\r\n--" + boundary + "\r\nContent-Disposition: form-data; "
                  "name=\"sample_type_config\"\r\n\r\n" + cfg + "\r\n--" + boundary + "--\r\n";
          req.content_type = "multipart/form-data; boundary=" + boundary;
          req.body = std::move(form);
        }
        break;
      case rpc::Format::FOLDED:
        param("format", "folded");
        req.body = std::move(body);
        break;
      case rpc::Format::LINES:
        param("format", "lines");
        req.body = std::move(body);
        break;
      case rpc::Format::JFR:
        param("format", "jfr");
        req.body = std::move(body);
        break;
      default:
        return error{errc::unsupported_format, "unknown format " +
                                                   std::to_string(static_cast<int>(in.getFormat()))};
    }
    return req;
  }

  shared& s_;
  std::vector<std::string> tenants_;
};

// ---- Query -----------------------------------------------------------------------------------

// A Selection as Connect's (profile type, selector, start, end).
struct typed_selection {
  std::string type, selector;
  int64_t start = 0, end = 0;
};

result<typed_selection> selection_of(rpc::Selection::Reader s) {
  auto typed = api::split_typed_query(str(s.getQuery()));
  if (!typed) return typed.err();
  return typed_selection{typed->first, typed->second, s.getStartMs(), s.getEndMs()};
}

template <class Msg>
void fill_smst(Msg& m, const typed_selection& s) {
  m.set_profile_typeid(s.type);
  m.set_label_selector(s.selector);
  m.set_start(s.start);
  m.set_end(s.end);
}

void fill_flame_graph(rpc::FlameGraph::Builder out, const query::flame_graph& g) {
  auto names = out.initNames(static_cast<unsigned>(g.names.size()));
  for (size_t i = 0; i < g.names.size(); ++i) names.set(i, g.names[i].c_str());
  auto levels = out.initLevels(static_cast<unsigned>(g.levels.size()));
  for (size_t d = 0; d < g.levels.size(); ++d) {
    auto row = levels.init(d, static_cast<unsigned>(g.levels[d].size()));
    for (size_t k = 0; k < g.levels[d].size(); ++k) row.set(k, g.levels[d][k]);
  }
  out.setTotal(g.total);
  out.setMaxSelf(g.max_self);
}

void fill_shares(capnp::List<rpc::FunctionShare>::Builder out, const std::vector<query::function_share>& in) {
  for (size_t i = 0; i < in.size(); ++i) {
    out[i].setName(in[i].name.c_str());
    out[i].setSelf(in[i].self);
    out[i].setTotal(in[i].total);
    out[i].setSelfShare(in[i].self_share);
    out[i].setTotalShare(in[i].total_share);
  }
}

void fill_changes(capnp::List<rpc::FunctionChange>::Builder out, const std::vector<query::function_change>& in) {
  for (size_t i = 0; i < in.size(); ++i) {
    out[i].setName(in[i].name.c_str());
    out[i].setLeftSelf(in[i].left_self);
    out[i].setLeftTotal(in[i].left_total);
    out[i].setRightSelf(in[i].right_self);
    out[i].setRightTotal(in[i].right_total);
    out[i].setSelfShareDelta(in[i].self_share_delta);
    out[i].setTotalShareDelta(in[i].total_share_delta);
  }
}

template <class Builder>
void fill_texts(Builder out, const std::vector<std::string>& xs) {
  for (size_t i = 0; i < xs.size(); ++i) out.set(i, xs[i].c_str());
}

class query_impl final : public rpc::Query::Server {
 public:
  query_impl(shared& s, std::vector<std::string> tenants) : s_(s), tenants_(std::move(tenants)) {}

  kj::Promise<void> flameGraph(FlameGraphContext context) override {
    auto p = context.getParams();
    auto sel = selection_of(p.getSelection());
    if (!sel) return to_kj(sel.err());
    querier::v1::SelectMergeStacktracesRequest m;
    fill_smst(m, *sel);
    if (p.getMaxNodes()) m.set_max_nodes(p.getMaxNodes());
    m.set_format(querier::v1::PROFILE_FORMAT_FLAMEGRAPH);
    return run(querier_service, "SelectMergeStacktraces", m, [context](query_result& r) mutable {
      fill_flame_graph(context.getResults().initGraph(), r.graph);
    });
  }

  kj::Promise<void> findings(FindingsContext context) override {
    auto p = context.getParams();
    auto sel = selection_of(p.getSelection());
    if (!sel) return to_kj(sel.err());
    hearth::v1::ExplainRequest m;
    fill_smst(*m.mutable_selection(), *sel);
    m.set_top(p.getTop());
    return run(findings_service, "Explain", m, [context](query_result& r) mutable {
      auto out = context.getResults().initFindings();
      const auto& f = r.findings;
      out.setTotal(f.total);
      fill_shares(out.initTopSelf(static_cast<unsigned>(f.top_self.size())), f.top_self);
      fill_shares(out.initTopTotal(static_cast<unsigned>(f.top_total.size())), f.top_total);
      auto hp = out.initHotPath(static_cast<unsigned>(f.hot_path.size()));
      for (size_t i = 0; i < f.hot_path.size(); ++i) {
        hp[i].setName(f.hot_path[i].name.c_str());
        hp[i].setSelf(f.hot_path[i].self);
        hp[i].setTotal(f.hot_path[i].total);
        hp[i].setShare(f.hot_path[i].share);
      }
    });
  }

  kj::Promise<void> regression(RegressionContext context) override {
    auto p = context.getParams();
    auto base = selection_of(p.getBaseline());
    if (!base) return to_kj(base.err());
    auto cmp = selection_of(p.getComparison());
    if (!cmp) return to_kj(cmp.err());
    hearth::v1::RegressionRequest m;
    fill_smst(*m.mutable_baseline(), *base);
    fill_smst(*m.mutable_comparison(), *cmp);
    m.set_top(p.getTop());
    return run(findings_service, "Regression", m, [context](query_result& r) mutable {
      auto out = context.getResults().initRegression();
      const auto& g = r.regression;
      out.setLeftTotal(g.left_total);
      out.setRightTotal(g.right_total);
      fill_changes(out.initSelfGrew(static_cast<unsigned>(g.self_grew.size())), g.self_grew);
      fill_changes(out.initSelfShrank(static_cast<unsigned>(g.self_shrank.size())), g.self_shrank);
      fill_changes(out.initTotalGrew(static_cast<unsigned>(g.total_grew.size())), g.total_grew);
      fill_changes(out.initTotalShrank(static_cast<unsigned>(g.total_shrank.size())), g.total_shrank);
    });
  }

  kj::Promise<void> series(SeriesContext context) override {
    auto p = context.getParams();
    auto sel = selection_of(p.getSelection());
    if (!sel) return to_kj(sel.err());
    querier::v1::SelectSeriesRequest m;
    fill_smst(m, *sel);
    m.set_step(p.getStepS());
    for (auto g : p.getGroupBy()) m.add_group_by(str(g));
    if (p.getAverage()) m.set_aggregation(types::v1::TIME_SERIES_AGGREGATION_TYPE_AVERAGE);
    if (p.getLimit()) m.set_limit(p.getLimit());
    return run(querier_service, "SelectSeries", m, [context](query_result& r) mutable {
      auto out = context.getResults().initSeries(static_cast<unsigned>(r.series.size()));
      for (size_t i = 0; i < r.series.size(); ++i) {
        const auto& s = r.series[i];
        auto ls = out[i].initLabels(static_cast<unsigned>(s.labels.size()));
        for (size_t k = 0; k < s.labels.size(); ++k) {
          ls[k].setName(s.labels[k].name.c_str());
          ls[k].setValue(s.labels[k].value.c_str());
        }
        auto ps = out[i].initPoints(static_cast<unsigned>(s.points.size()));
        for (size_t k = 0; k < s.points.size(); ++k) {
          ps[k].setTimestampMs(s.points[k].timestamp_ms);
          ps[k].setValue(s.points[k].value);
        }
      }
    });
  }

  kj::Promise<void> diff(DiffContext context) override {
    auto p = context.getParams();
    auto left = selection_of(p.getLeft());
    if (!left) return to_kj(left.err());
    auto right = selection_of(p.getRight());
    if (!right) return to_kj(right.err());
    querier::v1::DiffRequest m;
    fill_smst(*m.mutable_left(), *left);
    fill_smst(*m.mutable_right(), *right);
    if (p.getMaxNodes()) {
      m.mutable_left()->set_max_nodes(p.getMaxNodes());
      m.mutable_right()->set_max_nodes(p.getMaxNodes());
    }
    return run(querier_service, "Diff", m, [context](query_result& r) mutable {
      auto out = context.getResults().initDiff();
      const auto& d = r.diff;
      fill_texts(out.initNames(static_cast<unsigned>(d.names.size())), d.names);
      auto levels = out.initLevels(static_cast<unsigned>(d.levels.size()));
      for (size_t i = 0; i < d.levels.size(); ++i) {
        auto row = levels.init(i, static_cast<unsigned>(d.levels[i].size()));
        for (size_t k = 0; k < d.levels[i].size(); ++k) row.set(k, d.levels[i][k]);
      }
      out.setTotal(d.total);
      out.setMaxSelf(d.max_self);
      out.setLeftTicks(d.left_ticks);
      out.setRightTicks(d.right_ticks);
    });
  }

  kj::Promise<void> labelNames(LabelNamesContext context) override {
    auto p = context.getParams();
    types::v1::LabelNamesRequest m;
    for (auto x : p.getMatchers()) m.add_matchers(str(x));
    m.set_start(p.getStartMs());
    m.set_end(p.getEndMs());
    return run(querier_service, "LabelNames", m, [context](query_result& r) mutable {
      fill_texts(context.getResults().initNames(static_cast<unsigned>(r.values.size())), r.values);
    });
  }

  kj::Promise<void> labelValues(LabelValuesContext context) override {
    auto p = context.getParams();
    types::v1::LabelValuesRequest m;
    m.set_name(str(p.getName()));
    for (auto x : p.getMatchers()) m.add_matchers(str(x));
    m.set_start(p.getStartMs());
    m.set_end(p.getEndMs());
    return run(querier_service, "LabelValues", m, [context](query_result& r) mutable {
      fill_texts(context.getResults().initValues(static_cast<unsigned>(r.values.size())), r.values);
    });
  }

  kj::Promise<void> profileTypes(ProfileTypesContext context) override {
    auto p = context.getParams();
    querier::v1::ProfileTypesRequest m;
    m.set_start(p.getStartMs());
    m.set_end(p.getEndMs());
    return run(querier_service, "ProfileTypes", m, [context](query_result& r) mutable {
      fill_texts(context.getResults().initTypes(static_cast<unsigned>(r.values.size())), r.values);
    });
  }

  kj::Promise<void> exportPprof(ExportPprofContext context) override {
    auto p = context.getParams();
    auto sel = selection_of(p.getSelection());
    if (!sel) return to_kj(sel.err());
    uint32_t chunk = p.getChunkBytes() ? p.getChunkBytes() : default_chunk_bytes;
    if (chunk > max_chunk_bytes)
      return to_kj(error{errc::invalid_argument, "chunkBytes " + std::to_string(chunk) +
                                                     " exceeds " + std::to_string(max_chunk_bytes)});
    querier::v1::SelectMergeProfileRequest m;
    fill_smst(m, *sel);
    if (p.getMaxNodes()) m.set_max_nodes(p.getMaxNodes());
    auto q = parse("SelectMergeProfile", querier_service, m);
    if (!q) return to_kj(q.err());
    auto sink = p.getSink();
    // Gzipped on the CAF side: the file `go tool pprof` reads, and nothing heavy on this loop.
    struct gz {
      reply_status status;
      std::string bytes;
    };
    auto encode = [](query_result& r) {
      gz g{r.status, {}};
      if (r.status.ok()) g.bytes = gzip_compress(r.bytes, 6);
      return g;
    };
    return bridge::ask_map<query_result, gz>(s_.sys, s_.opts.timeout, s_.handles.frontend,
                                             std::move(encode), query_atom::value, std::move(*q))
        .then(
            [context, sink, chunk](gz g) mutable -> kj::Promise<void> {
              if (!g.status.ok()) return to_kj(g.status.to_error());
              auto bytes = kj::heap<std::string>(std::move(g.bytes));
              auto begin = sink.beginRequest();
              begin.setTotalBytes(bytes->size());
              auto& ref = *bytes;
              return begin.send()
                  .then([sink, &ref, chunk](auto&&) mutable { return write_chunks(sink, ref, 0, chunk); })
                  .then([sink]() mutable { return sink.doneRequest().send().ignoreResult(); })
                  .then([context, &ref]() mutable { context.getResults().setBytes(ref.size()); })
                  .attach(kj::mv(bytes));
            },
            [](kj::Exception&& e) -> kj::Promise<void> {
              if (e.getType() == kj::Exception::Type::DISCONNECTED) return kj::mv(e);
              return bridge_failure("export", e);
            });
  }

 private:
  // Chunks in order; each write's promise resolves as Cap'n Proto's flow control allows.
  static kj::Promise<void> write_chunks(rpc::ByteSink::Client sink, const std::string& bytes,
                                        size_t at, uint32_t chunk) {
    if (at >= bytes.size()) return kj::READY_NOW;
    size_t n = std::min<size_t>(chunk, bytes.size() - at);
    auto req = sink.writeRequest();
    req.setChunk(kj::arrayPtr(reinterpret_cast<const kj::byte*>(bytes.data() + at), n));
    return req.send().then([sink, &bytes, at, n, chunk]() mutable {
      return write_chunks(sink, bytes, at + n, chunk);
    });
  }

  // The Connect request as the querier API decodes it: the RPC answers exactly what HTTP would.
  result<query_request> parse(std::string_view method, std::string_view service,
                              const google::protobuf::Message& m) const {
    auto q = api::parse_request(service, method, connect::codec::proto, m.SerializeAsString(),
                                s_.opts.limits, wall_clock_ns());
    if (!q) return q.err();
    q->tenants = tenants_;
    return q;
  }

  template <class Fill>
  kj::Promise<void> run(std::string_view service, std::string_view method,
                        const google::protobuf::Message& m, Fill fill) {
    auto q = parse(method, service, m);
    if (!q) return to_kj(q.err());
    return s_.ask<query_result>(s_.handles.frontend, query_atom::value, std::move(*q))
        .then(
            [fill = std::move(fill)](query_result r) mutable -> kj::Promise<void> {
              if (!r.status.ok()) return to_kj(r.status.to_error());
              fill(r);
              return kj::READY_NOW;
            },
            [](kj::Exception&& e) -> kj::Promise<void> { return bridge_failure("query", e); });
  }

  shared& s_;
  std::vector<std::string> tenants_;
};

// ---- Admin -----------------------------------------------------------------------------------

std::string_view codec_name(uint8_t c) {
  switch (c) {
    case 0: return "none";
    case 1: return "lz4";
    case 2: return "zstd";
    default: return "unknown";
  }
}

void fill_block(rpc::Block::Builder out, const block_detail& b) {
  out.setTenant(b.tenant.c_str());
  out.setShard(b.shard);
  out.setId(b.entry.id);
  out.setPath(b.entry.path.c_str());
  out.setLevel(b.entry.level);
  out.setRollupStepNs(b.entry.rollup_step_ns);
  out.setMinTimeNs(b.entry.min_time_ns);
  out.setMaxTimeNs(b.entry.max_time_ns);
  out.setBytes(b.entry.bytes);
  out.setSeries(b.series);
  out.setProfiles(b.entry.profiles);
  out.setSamples(b.entry.samples);
  auto c = codec_name(b.codec);
  out.setCodec(capnp::Text::Reader(c.data(), c.size()));
  out.setVersion(b.version);
  auto src = out.initSources(static_cast<unsigned>(b.entry.sources.size()));
  for (size_t i = 0; i < b.entry.sources.size(); ++i) src.set(i, b.entry.sources[i]);
}

void fill_report(rpc::CompactionReport::Builder out, const compaction_report& r) {
  out.setJobs(r.jobs);
  out.setBlocksIn(r.blocks_in);
  out.setBlocksOut(r.blocks_out);
  out.setBytesIn(r.bytes_in);
  out.setBytesOut(r.bytes_out);
  out.setDuplicates(r.duplicates);
  out.setDropped(r.dropped);
}

void fill_node(rpc::Node::Builder out, const node_status& n) {
  out.setName(n.name.c_str());
  fill_texts(out.initRoles(static_cast<unsigned>(n.roles.size())), n.roles);
  out.setState(n.state.c_str());
  out.setLastHeartbeatMs(n.last_heartbeat_ms);
  out.setHttpAddress(n.http_address.c_str());
  out.setRpcAddress(n.rpc_address.c_str());
  out.setVersion(n.version.c_str());
  out.setStartedMs(n.started_ms);
  out.setClusterAddress(n.cluster_address.c_str());
  out.setRingShare(n.ring_share);
  out.setBehind(n.behind);
}

class admin_impl final : public rpc::Admin::Server {
 public:
  explicit admin_impl(shared& s) : s_(s) {}

  kj::Promise<void> status(StatusContext context) override {
    auto& s = s_;
    return s.ask<bool>(s.handles.ingester, ready_atom::value)
        .then(
            [context, &s](bool ready) mutable -> kj::Promise<void> {
              node_status self;
              self.name = s.rpc_address;
              self.roles = local_roles();
              self.state = ready ? "ready" : "recovering";
              self.last_heartbeat_ms = wall_clock_ns() / 1000000;
              self.http_address = s.opts.http_address;
              self.rpc_address = s.rpc_address;
              self.version = s.opts.version;
              self.started_ms = s.started_ms;
              // In a cluster: this node's name, roles and ring share, and every peer as the
              // membership view sees it (state alive/suspect/down, last heartbeat, behind).
              std::vector<node_status> peers;
              if (s.opts.cluster != nullptr) {
                for (const auto& row : s.opts.cluster->status(self.last_heartbeat_ms)) {
                  node_status* n = &self;
                  if (!row.self) {
                    peers.emplace_back();
                    n = &peers.back();
                    n->state = std::string(cluster::to_string(row.state));
                    n->last_heartbeat_ms = row.last_heartbeat_ms;
                  }
                  n->name = row.name;
                  n->roles = row.roles;
                  n->cluster_address = row.address;
                  n->ring_share = row.ring_share;
                  n->behind = row.behind;
                }
              }
              auto out = context.getResults().initStatus();
              fill_node(out.initSelf(), self);
              auto ps = out.initPeers(static_cast<unsigned>(peers.size()));
              for (size_t i = 0; i < peers.size(); ++i) fill_node(ps[i], peers[i]);
              return kj::READY_NOW;
            },
            [](kj::Exception&& e) -> kj::Promise<void> { return bridge_failure("status", e); });
  }

  kj::Promise<void> listBlocks(ListBlocksContext context) override {
    return s_.ask_admin<block_listing>(s_.handles.admin, list_atom::value,
                                       str(context.getParams().getTenant()))
        .then(
            [context](block_listing r) mutable -> kj::Promise<void> {
              if (!r.status.ok()) return to_kj(r.status.to_error());
              auto out = context.getResults().initBlocks(static_cast<unsigned>(r.blocks.size()));
              for (size_t i = 0; i < r.blocks.size(); ++i) fill_block(out[i], r.blocks[i]);
              return kj::READY_NOW;
            },
            [](kj::Exception&& e) -> kj::Promise<void> { return bridge_failure("blocks", e); });
  }

  kj::Promise<void> inspectBlock(InspectBlockContext context) override {
    auto p = context.getParams();
    return s_.ask_admin<block_inspection>(s_.handles.admin, inspect_atom::value, str(p.getTenant()),
                                          p.getId())
        .then(
            [context](block_inspection r) mutable -> kj::Promise<void> {
              if (!r.status.ok()) return to_kj(r.status.to_error());
              auto out = context.getResults().initInspection();
              fill_block(out.initBlock(), r.block);
              out.setStacks(r.stacks);
              out.setWalSeq(r.block.entry.wal_seq);
              auto ss = out.initSections(static_cast<unsigned>(r.sections.size()));
              for (size_t i = 0; i < r.sections.size(); ++i) {
                const auto& x = r.sections[i];
                ss[i].setName(x.name.c_str());
                ss[i].setOffset(x.offset);
                ss[i].setBytes(x.stored_bytes);
                ss[i].setRawBytes(x.raw_bytes);
                auto c = codec_name(x.codec);
                ss[i].setCodec(capnp::Text::Reader(c.data(), c.size()));
                ss[i].setCrc(x.crc);
                ss[i].setCrcOk(x.crc_ok);
              }
              return kj::READY_NOW;
            },
            [](kj::Exception&& e) -> kj::Promise<void> { return bridge_failure("inspect", e); });
  }

  kj::Promise<void> verifyBlocks(VerifyBlocksContext context) override {
    return s_.ask_admin<verify_report>(s_.handles.admin, verify_atom::value,
                                       str(context.getParams().getTenant()))
        .then(
            [context](verify_report r) mutable -> kj::Promise<void> {
              if (!r.status.ok()) return to_kj(r.status.to_error());
              auto res = context.getResults();
              res.setChecked(r.checked);
              res.setCorrupted(r.corrupted);
              auto out = res.initResults(static_cast<unsigned>(r.results.size()));
              for (size_t i = 0; i < r.results.size(); ++i) {
                fill_block(out[i].initBlock(), r.results[i].block);
                out[i].setOk(r.results[i].outcome.ok());
                if (!r.results[i].outcome.ok())
                  out[i].setError(r.results[i].outcome.to_error().to_string().c_str());
              }
              return kj::READY_NOW;
            },
            [](kj::Exception&& e) -> kj::Promise<void> { return bridge_failure("verify", e); });
  }

  kj::Promise<void> compact(CompactContext context) override {
    return maintenance(context, compact_atom::value);
  }
  kj::Promise<void> runRetention(RunRetentionContext context) override {
    return maintenance(context, retention_atom::value);
  }

  kj::Promise<void> tenantStats(TenantStatsContext context) override {
    return s_.ask_admin<tenant_stats_reply>(s_.handles.admin, stats_atom::value,
                                            str(context.getParams().getTenant()))
        .then(
            [context](tenant_stats_reply r) mutable -> kj::Promise<void> {
              if (!r.status.ok()) return to_kj(r.status.to_error());
              auto out = context.getResults().initTenants(static_cast<unsigned>(r.tenants.size()));
              for (size_t i = 0; i < r.tenants.size(); ++i) {
                const auto& t = r.tenants[i];
                out[i].setTenant(t.tenant.c_str());
                out[i].setPartitions(t.partitions);
                out[i].setBlocks(t.blocks);
                out[i].setBytes(t.bytes);
                out[i].setSeries(t.series);
                out[i].setProfiles(t.profiles);
                out[i].setSamples(t.samples);
                out[i].setMinTimeNs(t.min_time_ns);
                out[i].setMaxTimeNs(t.max_time_ns);
              }
              return kj::READY_NOW;
            },
            [](kj::Exception&& e) -> kj::Promise<void> { return bridge_failure("tenant stats", e); });
  }

  kj::Promise<void> config(ConfigContext context) override {
    context.getResults().setToml(s_.opts.config_toml.c_str());
    return kj::READY_NOW;
  }

 private:
  template <class Context, class Atom>
  kj::Promise<void> maintenance(Context context, Atom atom) {
    return s_.ask_admin<compaction_report>(s_.handles.compactor, atom)
        .then(
            [context](compaction_report r) mutable -> kj::Promise<void> {
              if (!r.status.ok()) return to_kj(r.status.to_error());
              fill_report(context.getResults().initReport(), r);
              return kj::READY_NOW;
            },
            [](kj::Exception&& e) -> kj::Promise<void> { return bridge_failure("compactor", e); });
  }

  shared& s_;
};

// ---- bootstrap -------------------------------------------------------------------------------

class hearth_impl final : public rpc::Hearth::Server {
 public:
  explicit hearth_impl(shared& s) : s_(s) {}

  kj::Promise<void> login(LoginContext context) override {
    auto p = context.getParams();
    if (auto st = check_token(str(p.getToken()), s_.opts.auth); !st) return to_kj(st.err());
    std::vector<std::string> tenants{std::string(default_tenant)};
    if (s_.opts.multitenancy) {
      auto t = parse_tenant_header(str(p.getTenant()), true);
      if (!t) return to_kj(t.err());
      tenants = std::move(*t);
    }
    auto out = context.getResults();
    out.setIngest(kj::heap<ingest_impl>(s_, tenants));
    out.setQuery(kj::heap<query_impl>(s_, tenants));
    out.setAdmin(kj::heap<admin_impl>(s_));
    return kj::READY_NOW;
  }

 private:
  shared& s_;
};

}  // namespace

rpc_server::rpc_server(caf::actor_system& sys, actors handles, options opts)
    : impl_(std::make_unique<impl>(sys, std::move(handles), std::move(opts))) {}

rpc_server::~rpc_server() { stop(); }

result<uint16_t> rpc_server::start() {
  impl& i = *impl_;
  return i.server.start("RPC", i.opts.host, i.opts.port,
                        [&i](kj::AsyncIoContext& io, kj::ConnectionReceiver& listener,
                             kj::Promise<void> stop) {
                          i.rpc_address = i.opts.host + ":" + std::to_string(listener.getPort());
                          capnp::TwoPartyServer server(kj::heap<hearth_impl>(i));
                          server.listen(listener).exclusiveJoin(kj::mv(stop)).wait(io.waitScope);
                        });
}

void rpc_server::stop() {
  if (impl_) impl_->server.stop();
}

}  // namespace hearth
