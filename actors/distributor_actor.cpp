#include "actors/distributor_actor.hpp"

#include <google/protobuf/arena.h>
#include <google/protobuf/struct.pb.h>
#include <google/protobuf/util/json_util.h>

#include <algorithm>
#include <optional>
#include <random>

#include "actors/admission.hpp"
#include "actors/cluster_view.hpp"
#include "actors/metrics.hpp"
#include "cluster/proto/connect.hpp"
#include "format/ingest_request.hpp"
#include "format/jfr.hpp"
#include "format/otlp.hpp"
#include "format/pprof.hpp"
#include "format/uuid.hpp"
#include "otlp_profiles_service.pb.h"
#include "push.pb.h"

namespace hearth {
namespace {

const std::string* param(const ingest_request& r, std::string_view name) {
  for (size_t i = 0; i < r.param_names.size(); ++i)
    if (r.param_names[i] == name) return &r.param_values[i];
  return nullptr;
}

// gunzip when the bytes carry the gzip magic, then decode. `storage` keeps the inflated bytes
// alive for the string_views of the returned profile.
result<pprof::profile> decode_pprof(bytes_view raw, uint64_t max_bytes, std::string& storage,
                                    std::string_view what) {
  bytes_view plain = raw;
  if (pprof::is_gzip(raw)) {
    auto r = pprof::gunzip(raw, max_bytes);
    if (!r) {
      error e = r.take_error();
      e.message = std::string(what) + ": " + e.message;
      return e;
    }
    storage = std::move(*r);
    plain = as_bytes(storage);
  } else if (raw.size() > max_bytes) {
    return error{errc::body_too_large, std::string(what) + ": profile of " + std::to_string(raw.size()) +
                                           " bytes exceeds limits.max_profile_bytes=" +
                                           std::to_string(max_bytes)};
  }
  auto p = pprof::decode(plain);
  if (!p) {
    error e = p.take_error();
    e.message = std::string(what) + ": " + e.message;
    return e;
  }
  return p;
}

// A random id for profiles that come without one (legacy /ingest).
void random_id(uint64_t& hi, uint64_t& lo) {
  thread_local std::mt19937_64 rng{std::random_device{}()};
  hi = rng();
  lo = rng();
}

// The batch builder of this thread: a worker handles its request to the end on one scheduler
// thread, so reusing the builder's tables and scratch across requests is safe and saves their
// allocations.
batch_builder& thread_builder() {
  thread_local batch_builder b;
  return b;
}

// The Go SDK's `sample_type_config` part: {"<sample type>": {"display-name": "...", "units": ...}}.
// Only display names matter for pprof (they pick __name__); other keys are ignored as upstream.
result<std::vector<std::pair<std::string, std::string>>> parse_sample_type_config(std::string_view json) {
  std::string plain;
  bytes_view raw = as_bytes(json);
  if (pprof::is_gzip(raw)) {
    auto r = pprof::gunzip(raw, 1 << 20);
    if (!r) return r.err();
    plain = std::move(*r);
    json = plain;
  }
  google::protobuf::Struct doc;
  auto st = google::protobuf::util::JsonStringToMessage(
      google::protobuf::StringPiece(json.data(), json.size()), &doc);
  if (!st.ok())
    return error{errc::bad_request_body,
                 "sample_type_config is not a JSON object: " + std::string(st.message())};
  std::vector<std::pair<std::string, std::string>> out;
  for (const auto& [type, cfg] : doc.fields()) {
    if (!cfg.has_struct_value()) continue;
    const auto& f = cfg.struct_value().fields();
    auto it = f.find("display-name");
    if (it != f.end() && it->second.has_string_value() && !it->second.string_value().empty())
      out.emplace_back(type, it->second.string_value());
  }
  std::sort(out.begin(), out.end());
  return out;
}

// `sampleRate` (Hz): Pyroscope's default 100 when absent, not a number, or not positive.
uint32_t sample_rate_param(const ingest_request& req) {
  const std::string* s = param(req, "sampleRate");
  if (s == nullptr || s->empty() || s->size() > 9 ||
      s->find_first_not_of("0123456789") != std::string::npos)
    return 100;
  uint32_t v = static_cast<uint32_t>(std::stoul(*s));
  return v == 0 ? 100 : v;
}

// format=folded|lines (and the default when the body is not a multipart form): the app name's
// suffix picks the profile type; units and aggregationType are ignored, as by Pyroscope.
result<ingest_batch> decode_text(const ingest_request& req, const distributor_options& opts,
                                 text_format f, ingest_meta& meta, uint64_t* profiles) {
  std::string_view app;
  for (const label& l : meta.labels)
    if (l.name == "__name__") app = l.value;
  auto type = legacy_text_type_of(app, sample_rate_param(req));
  if (!type) return type.err();
  std::string storage;
  std::string_view text = req.body;
  if (pprof::is_gzip(as_bytes(text))) {
    auto r = pprof::gunzip(as_bytes(text), opts.max_profile_bytes);
    if (!r) return r.err();
    storage = std::move(*r);
    text = storage;
  }
  auto p = parse_text_profile(text, f, *type, opts.text);
  if (!p) return p.err();
  random_id(meta.id_hi, meta.id_lo);
  batch_builder& b = thread_builder();
  b.start(req.tenant, opts.limits);
  if (auto st = b.add_converted(*p, meta, type->name, type->app); !st) return st.err();
  if (profiles) *profiles = 1;
  return b.finish();
}

// format=jfr (the Pyroscope Java agent): a raw JFR body, or a multipart form with a `jfr` part
// and an optional `labels` part (both may be gzipped). Each profile type found becomes its series.
result<ingest_batch> decode_jfr(const ingest_request& req, const distributor_options& opts,
                                ingest_meta& meta, uint64_t* profiles) {
  std::string_view app;
  for (const label& l : meta.labels)
    if (l.name == "__name__") app = l.value;
  std::string_view jfr = req.body;
  std::vector<multipart_part> parts;
  if (req.content_type.find("multipart/form-data") != std::string::npos) {
    auto boundary = multipart_boundary(req.content_type);
    if (!boundary) return boundary.err();
    auto parsed = parse_multipart(req.body, *boundary);
    if (!parsed) return parsed.err();
    parts = std::move(*parsed);
    const multipart_part* part = find_part(parts, "jfr");
    if (!part) return error{errc::bad_request_body, "multipart body has no \"jfr\" field"};
    jfr = part->data;
  }
  std::optional<jfr_labels> labels;
  if (const multipart_part* part = find_part(parts, "labels"); part && !part->data.empty()) {
    std::string plain;
    bytes_view raw = as_bytes(part->data);
    if (pprof::is_gzip(raw)) {
      auto r = pprof::gunzip(raw, opts.max_profile_bytes);
      if (!r) {
        error e = r.take_error();
        e.message = "jfr labels: " + e.message;
        return e;
      }
      plain = std::move(*r);
      raw = as_bytes(plain);
    }
    auto l = parse_jfr_labels(raw);
    if (!l) return l.err();
    labels = std::move(*l);
  }
  std::string storage;
  if (pprof::is_gzip(as_bytes(jfr))) {
    auto r = pprof::gunzip(as_bytes(jfr), opts.max_profile_bytes);
    if (!r) {
      error e = r.take_error();
      e.message = "jfr: " + e.message;
      return e;
    }
    storage = std::move(*r);
    jfr = storage;
  } else if (jfr.size() > opts.max_profile_bytes) {
    return error{errc::body_too_large, "jfr: recording of " + std::to_string(jfr.size()) +
                                           " bytes exceeds limits.max_profile_bytes=" +
                                           std::to_string(opts.max_profile_bytes)};
  }
  auto ps = parse_jfr(as_bytes(jfr), sample_rate_param(req), labels ? &*labels : nullptr, opts.jfr);
  if (!ps) return ps.err();
  if (!ps->event.empty()) {  // Pyroscope's jfr_event label (async-profiler's `event` setting)
    std::erase_if(meta.labels, [](const label& l) { return l.name == "jfr_event"; });
    meta.labels.push_back({"jfr_event", ps->event});
    std::sort(meta.labels.begin(), meta.labels.end());
  }
  batch_builder& b = thread_builder();
  b.start(req.tenant, opts.limits);
  for (const jfr_profile& jp : ps->profiles) {
    random_id(meta.id_hi, meta.id_lo);
    if (auto st = b.add_converted(jp.profile, meta, jp.metric, app); !st) return st.err();
  }
  if (profiles) *profiles = ps->profiles.size();
  return b.finish();
}

result<ingest_batch> decode_legacy(const ingest_request& req, const distributor_options& opts,
                                   uint64_t* profiles) {
  const std::string* name = param(req, "name");
  if (!name || name->empty())
    return error{errc::bad_labels, "the name query parameter is required, e.g. name=myapp{env=prod}"};
  auto labels = parse_app_name(*name);
  if (!labels) return labels.err();
  ingest_meta meta;
  meta.labels = std::move(*labels);
  meta.from = ingest_meta::source::ingest;
  const std::string* spy = param(req, "spyName");
  meta.spy_name = spy && !spy->empty() ? *spy : "unknown";  // Pyroscope's default
  int64_t from = 0, until = 0;
  if (const std::string* f = param(req, "from"); f && !f->empty()) {
    auto t = parse_attime(*f, req.received_ns);
    if (!t) return t.err();
    from = *t;
  }
  if (const std::string* u = param(req, "until"); u && !u->empty()) {
    auto t = parse_attime(*u, req.received_ns);
    if (!t) return t.err();
    until = *t;
  }
  const std::string* format = param(req, "format");
  bool multipart = req.content_type.find("multipart/form-data") != std::string::npos;
  std::string_view pprof_bytes;
  std::vector<multipart_part> parts;
  if (format && *format == "pprof") {
    pprof_bytes = req.body;  // format=pprof wins over multipart detection (as upstream)
  } else if ((!format || format->empty()) && multipart) {
    auto boundary = multipart_boundary(req.content_type);
    if (!boundary) return boundary.err();
    auto parsed = parse_multipart(req.body, *boundary);
    if (!parsed) return parsed.err();
    parts = std::move(*parsed);
    if (find_part(parts, "prev_profile"))
      return error{errc::bad_request_body,
                   "multipart field prev_profile is not supported (unsupported client version: "
                   "send delta profiles)"};
    const multipart_part* prof = find_part(parts, "profile");
    if (!prof) return error{errc::bad_request_body, "multipart body has no \"profile\" field"};
    pprof_bytes = prof->data;
    if (const multipart_part* stc = find_part(parts, "sample_type_config")) {
      auto names = parse_sample_type_config(stc->data);
      if (!names) return names.err();
      meta.display_names = std::move(*names);
    }
  } else {
    // Any other format value is folded text, as upstream, except the ones we do not read.
    std::string_view f = format ? std::string_view(*format) : std::string_view();
    if (f == "speedscope" || f == "trie" || f == "tree" ||
        req.content_type.find("binary/octet-stream+") != std::string::npos)
      return error{errc::unsupported_format,
                   "format=" + std::string(f.empty() ? req.content_type : f) +
                       " is not supported; send pprof, jfr, folded or lines"};
    meta.time_ns = from ? from : req.received_ns;
    meta.duration_ns = (from && until > from) ? until - from : 0;
    if (f == "jfr") return decode_jfr(req, opts, meta, profiles);
    return decode_text(req, opts, f == "lines" ? text_format::lines : text_format::folded, meta,
                       profiles);
  }
  std::string storage;
  auto p = decode_pprof(as_bytes(pprof_bytes), opts.max_profile_bytes, storage, "profile");
  if (!p) return p.err();
  meta.time_ns = from ? from : (p->time_nanos ? p->time_nanos : req.received_ns);
  meta.duration_ns = (from && until > from) ? until - from : 0;
  random_id(meta.id_hi, meta.id_lo);
  batch_builder& b = thread_builder();
  b.start(req.tenant, opts.limits);
  if (auto st = b.add(*p, meta); !st) return st.err();
  if (profiles) *profiles = 1;
  return b.finish();
}

result<ingest_batch> decode_push(const ingest_request& req, const distributor_options& opts,
                                 uint64_t* profiles) {
  google::protobuf::Arena arena;
  auto* msg = google::protobuf::Arena::CreateMessage<push::v1::PushRequest>(&arena);
  auto codec = req.kind == static_cast<uint8_t>(ingest_kind::push_json) ? connect::codec::json
                                                                        : connect::codec::proto;
  if (auto st = connect::decode(codec, req.body, *msg); !st) return st.err();
  batch_builder& b = thread_builder();
  b.start(req.tenant, opts.limits);
  uint64_t n = 0;
  for (int si = 0; si < msg->series_size(); ++si) {
    const auto& series = msg->series(si);
    ingest_meta meta;
    meta.from = ingest_meta::source::push;
    for (const auto& l : series.labels()) meta.labels.push_back(label{l.name(), l.value()});
    std::sort(meta.labels.begin(), meta.labels.end());
    for (int k = 0; k < series.samples_size(); ++k) {
      const auto& sample = series.samples(k);
      std::string what = "series " + std::to_string(si) + " sample " + std::to_string(k);
      std::string storage;
      auto p = decode_pprof(as_bytes(sample.raw_profile()), opts.max_profile_bytes, storage, what);
      if (!p) return p.err();
      ingest_meta m = meta;
      m.time_ns = p->time_nanos ? p->time_nanos : req.received_ns;
      parse_uuid(sample.id(), m.id_hi, m.id_lo);
      if (m.id_hi == 0 && m.id_lo == 0) random_id(m.id_hi, m.id_lo);
      if (auto st = b.add(*p, m); !st) {
        error e = st.err();
        e.message = what + ": " + e.message;
        return e;
      }
      ++n;
    }
  }
  if (profiles) *profiles = n;
  return b.finish();
}

// POST /v1development/profiles: an ExportProfilesServiceRequest, binary or proto3 JSON, gzipped or
// not (told by its magic: neither form can start with 1f 8b). JSON goes through libprotobuf's JSON
// reader into the binary form, so one hand-written decoder (format/otlp.hpp) reads both.
result<ingest_batch> decode_otlp(const ingest_request& req, const distributor_options& opts,
                                 uint64_t* profiles) {
  std::string plain;
  std::string_view body = req.body;
  if (pprof::is_gzip(as_bytes(body))) {
    auto r = pprof::gunzip(as_bytes(body), opts.max_profile_bytes);
    if (!r) {
      error e = r.take_error();
      e.message = "request body: " + e.message;
      if (e.code == errc::body_too_large) e.message += " (limits.max_profile_bytes)";
      return e;
    }
    plain = std::move(*r);
    body = plain;
  } else if (body.size() > opts.max_profile_bytes) {
    return error{errc::body_too_large, "request body of " + std::to_string(body.size()) +
                                           " bytes exceeds limits.max_profile_bytes=" +
                                           std::to_string(opts.max_profile_bytes)};
  }
  std::string binary;
  if (req.kind == static_cast<uint8_t>(ingest_kind::otlp_json)) {
    google::protobuf::Arena arena;
    auto* msg = google::protobuf::Arena::CreateMessage<
        opentelemetry::proto::collector::profiles::v1development::ExportProfilesServiceRequest>(
        &arena);
    if (auto st = connect::decode(connect::codec::json, body, *msg); !st) return st.err();
    msg->SerializeToString(&binary);
    body = binary;
  }
  auto r = otlp::decode(as_bytes(body), opts.otlp);
  if (!r) return r.err();
  batch_builder& b = thread_builder();
  b.start(req.tenant, opts.limits);
  for (const otlp::converted_profile& c : r->profiles) {
    ingest_meta m;
    m.from = ingest_meta::source::push;
    m.labels = c.labels;
    m.time_ns = c.time_ns ? c.time_ns : req.received_ns;
    m.duration_ns = c.duration_ns;
    random_id(m.id_hi, m.id_lo);
    if (auto st = b.add(c.profile, m); !st) {
      error e = st.err();
      e.message = c.where + ": " + e.message;
      return e;
    }
  }
  if (profiles) *profiles = r->profiles.size();
  return b.finish();
}

// Labels that batch_builder gives each sample type of a profile its own value of.
bool per_sample_type_label(std::string_view n) {
  return n == "__name__" || n == "__name_replaced__" || n == "__delta__" ||
         n == "__profile_type__" || n == "__type__" || n == "__unit__" || n == "__period_type__" ||
         n == "__period_unit__";
}

// The shard key of a series: its labels without the per-sample-type ones, so that all series of
// one profile (one per sample type) go to one shard. Their symbols and stacks are then encoded,
// written and interned once, not once per shard (as Pyroscope's distributor, which routes by the
// request's series labels before sample types are split).
uint64_t series_hash(const label_set& ls) {
  uint64_t h = 0;
  for (const auto& l : ls) {
    if (per_sample_type_label(l.name)) continue;
    h = hash_mix(h, hash_bytes(l.name));
    h = hash_mix(h, hash_bytes(l.value));
  }
  return h;
}

}  // namespace

result<ingest_batch> decode_ingest_request(const ingest_request& req, const distributor_options& opts,
                                           uint64_t* profiles) {
  switch (static_cast<ingest_kind>(req.kind)) {
    case ingest_kind::legacy_ingest: return decode_legacy(req, opts, profiles);
    case ingest_kind::push_proto:
    case ingest_kind::push_json: return decode_push(req, opts, profiles);
    case ingest_kind::otlp_proto:
    case ingest_kind::otlp_json: return decode_otlp(req, opts, profiles);
  }
  return error{errc::invalid_argument, "unknown ingest kind " + std::to_string(req.kind)};
}

std::vector<ingest_batch> split_by_shard(ingest_batch b, uint32_t shards) {
  std::vector<ingest_batch> out(shards);
  if (shards <= 1) {
    out[0] = std::move(b);
    return out;
  }
  std::vector<std::vector<ingest_series>> per(shards);
  for (auto& s : b.series) per[series_hash(s.labels) % shards].push_back(std::move(s));
  b.series.clear();
  uint32_t used = 0, last = 0;
  for (uint32_t i = 0; i < shards; ++i)
    if (!per[i].empty()) {
      ++used;
      last = i;
    }
  for (uint32_t i = 0; i < shards; ++i) {
    if (per[i].empty()) continue;
    // TODO(perf): copy only the symbols and stacks a shard references.
    ingest_batch& o = out[i];
    if (used == 1 || i == last) {
      o.tenant = b.tenant;
      o.syms = std::move(b.syms);
      o.string_hashes = std::move(b.string_hashes);
      o.stack_offsets = std::move(b.stack_offsets);
      o.stack_locations = std::move(b.stack_locations);
    } else {
      o.tenant = b.tenant;
      o.syms = b.syms;
      o.string_hashes = b.string_hashes;
      o.stack_offsets = b.stack_offsets;
      o.stack_locations = b.stack_locations;
    }
    o.series = std::move(per[i]);
  }
  return out;
}

namespace {

// Cluster mode: the outcome of one request's replica writes, shard by shard.
struct replicated_write {
  struct shard_state {
    uint32_t shard = 0;
    std::shared_ptr<const ingest_batch> batch;
    std::vector<uint32_t> replicas;  ///< member indices
    uint32_t quorum = 1;
    uint32_t acks = 0;
    std::vector<std::pair<uint32_t, std::string>> failed;  ///< member, why
    reply_status first_refusal;  ///< a replica's own error answer (limits), else ok
    bool counted = false;        ///< series/samples taken from the first acknowledgment
  };
  std::vector<shard_state> shards;
  size_t outstanding = 0;
  bool decided = false;
  ingest_reply acc;
};

// Sends each shard of `parts` to its replicas; answers through `done` once every replica answered
// and every shard has a write quorum (or at once when a shard cannot get one any more), keeps a
// hint for every peer that missed a write of a shard some replica stored, and calls `finished`
// when every replica answered.
void replicate(distributor_actor::pointer self, const distributor_options& opts,
               std::vector<ingest_batch> parts, std::vector<partition_actor> local, uint64_t profiles,
               self_metrics* metrics, std::function<void(ingest_reply)> done,
               std::function<void()> finished) {
  cluster_view& view = *opts.cluster;
  auto w = std::make_shared<replicated_write>();
  w->acc.profiles = profiles;
  for (uint32_t s = 0; s < parts.size(); ++s) {
    if (parts[s].series.empty()) continue;
    replicated_write::shard_state st;
    st.shard = s;
    st.replicas = view.replicas(parts[s].tenant, s);
    st.quorum = std::min<uint32_t>(view.options().write_quorum, static_cast<uint32_t>(st.replicas.size()));
    st.batch = std::make_shared<const ingest_batch>(std::move(parts[s]));
    w->outstanding += st.replicas.size();
    w->shards.push_back(std::move(st));
  }
  if (w->shards.empty()) {
    metrics->profiles_ingested.Increment(static_cast<double>(profiles));
    done(w->acc);
    finished();
    return;
  }
  // Decides the request as soon as it can, and settles the hints once every replica answered.
  auto settle = [w, &view, metrics, done, finished]() {
    // Hinted handoff, before the answer: a peer that missed a write some replica stored gets it
    // when it is back, and counts as behind for reads from now on.
    if (w->outstanding == 0)
      for (auto& st : w->shards) {
        if (st.acks == 0) continue;
        for (auto& [m, reason] : st.failed)
          if (m != 0) view.add_hint(m, st.shard, *st.batch);
      }
    if (!w->decided) {
      bool all = true;
      for (auto& st : w->shards) {
        if (st.acks >= st.quorum) continue;
        all = false;
        uint32_t possible = static_cast<uint32_t>(st.replicas.size() - st.failed.size());
        if (possible >= st.quorum) continue;
        w->decided = true;
        view.metrics().quorum_failures.Increment();
        std::string why;
        for (auto& [m, reason] : st.failed)
          why += (why.empty() ? "" : "; ") + view.member(m).name + ": " + reason;
        reply_status rs = st.first_refusal.ok()
                              ? reply_status::from(error{
                                    errc::unavailable,
                                    "write quorum not reached for tenant=" + st.batch->tenant +
                                        " shard=" + std::to_string(st.shard) + ": " +
                                        std::to_string(st.acks) + " of " +
                                        std::to_string(st.replicas.size()) +
                                        " replicas acknowledged, " + std::to_string(st.quorum) +
                                        " needed (" + why + ")"})
                              : st.first_refusal;
        ingest_reply r;
        r.status = rs;
        done(r);
        break;
      }
      // Success waits for every replica's answer (a peer known down fails at once, a hung one
      // after rpc_timeout), so that a read right after the 200 finds the write on whichever
      // caught-up replica it asks: a replica that missed it has a hint and counts as behind.
      if (all && !w->decided && w->outstanding == 0) {
        w->decided = true;
        metrics->profiles_ingested.Increment(static_cast<double>(w->acc.profiles));
        metrics->series_ingested.Increment(static_cast<double>(w->acc.series));
        metrics->samples_ingested.Increment(static_cast<double>(w->acc.samples));
        done(w->acc);
      }
    }
    if (w->outstanding == 0) finished();
  };
  auto on_reply = [w, settle](size_t k, uint32_t member, append_reply& r) {
    auto& st = w->shards[k];
    if (r.status.ok()) {
      ++st.acks;
      if (!st.counted) {
        st.counted = true;
        w->acc.series += r.series;
        w->acc.samples += r.samples;
      }
    } else {
      st.failed.emplace_back(member, r.status.message);
      // A refusal by the partition itself (limits, WAL full) is the client's answer, not a 503.
      if (st.first_refusal.ok() && static_cast<errc>(r.status.code) != errc::unavailable)
        st.first_refusal = r.status;
    }
    --w->outstanding;
    settle();
  };
  auto on_error = [w, &view, settle](size_t k, uint32_t member, std::string why) {
    w->shards[k].failed.emplace_back(member, std::move(why));
    view.metrics().replica_write_failures.Increment();
    --w->outstanding;
    settle();
  };
  for (size_t k = 0; k < w->shards.size(); ++k) {
    auto& st = w->shards[k];
    for (uint32_t m : st.replicas) {
      if (m == 0) {
        if (st.shard >= local.size()) {
          on_error(k, m, "no local partition for the shard");
          continue;
        }
        self->request(local[st.shard], opts.append_timeout, append_atom::value, *st.batch)
            .then([on_reply, k, m](append_reply& r) { on_reply(k, m, r); },
                  [on_error, k, m](caf::error& e) { on_error(k, m, "local partition: " + caf::to_string(e)); });
        continue;
      }
      auto route = view.route_to(m);
      if (!route.handle || route.state == cluster::node_state::down) {
        on_error(k, m, std::string("not connected (") + std::string(cluster::to_string(route.state)) + ")");
        continue;
      }
      self->request(route.handle, view.options().rpc_timeout, replica_atom::value, st.shard, *st.batch)
          .then([on_reply, k, m](append_reply& r) { on_reply(k, m, r); },
                [on_error, k, m](caf::error& e) { on_error(k, m, caf::to_string(e)); });
    }
  }
}

// One request's worker: decodes, fans out to partitions, answers, quits.
distributor_actor::behavior_type worker_fn(distributor_actor::pointer self, distributor_options opts,
                                           ingester_actor ingester, self_metrics* metrics) {
  return {
      [self, opts, ingester, metrics](ingest_atom, ingest_request& req) -> caf::result<ingest_reply> {
        uint64_t profiles = 0;
        auto batch = decode_ingest_request(req, opts, &profiles);
        if (!batch) {
          self->quit();  // the worker serves exactly one request
          return ingest_reply{reply_status::from(batch.err()), 0, 0, 0};
        }
        if (opts.limiter != nullptr) {
          if (auto s = opts.limiter->admit_profiles(req.tenant, profiles, ingest_limiter::now_s()); !s) {
            metrics->ingest_rate_limited.Increment();
            self->quit();
            return ingest_reply{reply_status::from(s.err()), 0, 0, 0};
          }
        }
        // Delivers the answer and ends the worker.
        auto rp = std::make_shared<caf::typed_response_promise<ingest_reply>>(
            self->make_response_promise<ingest_reply>());
        auto done = [self, rp](ingest_reply r) {
          rp->deliver(std::move(r));
          self->quit();
        };
        auto parts = split_by_shard(std::move(*batch), opts.shards);
        auto timeout = opts.append_timeout;
        if (opts.cluster != nullptr) {
          // The worker stays until every replica answered (hints), though it may answer earlier.
          auto rp2 = rp;
          auto answer = [rp2](ingest_reply r) { rp2->deliver(std::move(r)); };
          auto finish = [self]() { self->quit(); };
          if (!opts.cluster->member(0).has_role("ingester")) {  // every replica is a peer
            replicate(self, opts, std::move(parts), {}, profiles, metrics, answer, finish);
            return *rp;
          }
          self->request(ingester, timeout, get_atom::value, req.tenant, true)
              .then(
                  [self, opts, parts = std::move(parts), profiles, metrics, answer,
                   finish](std::vector<partition_actor>& partitions) mutable {
                    replicate(self, opts, std::move(parts), std::move(partitions), profiles, metrics,
                              answer, finish);
                  },
                  [answer, finish](caf::error& e) {
                    answer(ingest_reply{reply_status::from(error{errc::unavailable,
                                                                 "ingester unavailable: " +
                                                                     caf::to_string(e)}),
                                        0, 0, 0});
                    finish();
                  });
          return *rp;
        }
        self->request(ingester, timeout, get_atom::value, req.tenant, true)
            .then(
                [self, done, parts = std::move(parts), profiles, metrics,
                 timeout](std::vector<partition_actor>& partitions) mutable {
                  if (partitions.size() != parts.size()) {
                    done(ingest_reply{reply_status::from(error{errc::unavailable,
                                                               "no partitions for tenant"}),
                                      0, 0, 0});
                    return;
                  }
                  auto acc = std::make_shared<ingest_reply>();
                  acc->profiles = profiles;
                  auto left = std::make_shared<size_t>(0);
                  for (auto& p : parts) *left += p.series.empty() ? 0 : 1;
                  if (*left == 0) {  // valid profiles without any sample: nothing to store
                    metrics->profiles_ingested.Increment(static_cast<double>(acc->profiles));
                    done(*acc);
                    return;
                  }
                  for (size_t i = 0; i < parts.size(); ++i) {
                    if (parts[i].series.empty()) continue;
                    self->request(partitions[i], timeout, append_atom::value, std::move(parts[i]))
                        .then(
                            [done, acc, left, metrics](append_reply& r) mutable {
                              if (!r.status.ok() && acc->status.ok()) acc->status = r.status;
                              acc->series += r.series;
                              acc->samples += r.samples;
                              if (--*left == 0) {
                                if (acc->status.ok()) {
                                  metrics->profiles_ingested.Increment(static_cast<double>(acc->profiles));
                                  metrics->series_ingested.Increment(static_cast<double>(acc->series));
                                  metrics->samples_ingested.Increment(static_cast<double>(acc->samples));
                                }
                                done(*acc);
                              }
                            },
                            [done, acc, left](caf::error& e) mutable {
                              if (acc->status.ok())
                                acc->status = reply_status::from(
                                    error{errc::unavailable, "partition did not acknowledge: " +
                                                                 caf::to_string(e)});
                              if (--*left == 0) done(*acc);
                            });
                  }
                },
                [done](caf::error& e) mutable {
                  done(ingest_reply{reply_status::from(error{errc::unavailable,
                                                                   "ingester unavailable: " +
                                                                       caf::to_string(e)}),
                                          0, 0, 0});
                });
        return *rp;
      },
  };
}

}  // namespace

distributor_actor::behavior_type distributor_fn(
    distributor_actor::stateful_pointer<distributor_state> self, distributor_options opts,
    ingester_actor ingester, self_metrics* metrics) {
  self->state.opts = std::move(opts);
  self->state.ingester = std::move(ingester);
  self->state.metrics = metrics;
  return {
      [self](ingest_atom a, ingest_request& req) -> caf::result<ingest_reply> {
        auto& st = self->state;
        if (st.opts.admission != nullptr) {
          if (auto shard = st.opts.admission->over_limit(req.tenant)) {
            st.metrics->ingest_rejected_before_decode.Increment();
            return ingest_reply{
                reply_status::from(
                    error{errc::overloaded, "write-ahead log of tenant=" + req.tenant +
                                                " shard=" + std::to_string(*shard) +
                                                " is over storage.wal_max_bytes; retry later"}),
                0, 0, 0};
          }
        }
        if (st.opts.limiter != nullptr) {
          if (auto s = st.opts.limiter->admit_bytes(req.tenant, req.body.size(), ingest_limiter::now_s());
              !s) {
            st.metrics->ingest_rate_limited.Increment();
            return ingest_reply{reply_status::from(s.err()), 0, 0, 0};
          }
        }
        auto worker = self->spawn(worker_fn, st.opts, st.ingester, st.metrics);
        return self->delegate(worker, a, std::move(req));
      },
  };
}

}  // namespace hearth
