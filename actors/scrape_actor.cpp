#include "actors/scrape_actor.hpp"

#include <algorithm>

#include "actors/clock.hpp"
#include "actors/log.hpp"
#include "format/pprof.hpp"
#include "io/http_get.hpp"
#include "profile.pb.h"
#include "push.pb.h"

namespace hearth {
namespace {

// Whether sample type `type` of a `kind` profile counts up over the process lifetime.
bool cumulative(std::string_view kind, std::string_view type) {
  if (kind == "mutex" || kind == "block") return true;
  if (kind == "heap" || kind == "allocs") return type.starts_with("alloc_");
  return false;
}

// A sample's identity across scrapes: its frames (address, then function names and lines of each
// location) and its labels, in order.
std::string sample_key(const google::v1::Profile& p, const google::v1::Sample& s,
                       const std::map<uint64_t, const google::v1::Location*>& locs,
                       const std::map<uint64_t, const google::v1::Function*>& funcs) {
  auto str = [&](int64_t i) -> std::string_view {
    return i >= 0 && i < p.string_table_size() ? std::string_view(p.string_table(static_cast<int>(i)))
                                               : std::string_view();
  };
  std::string k;
  for (uint64_t id : s.location_id()) {
    auto it = locs.find(id);
    if (it == locs.end()) {
      k += "?;";
      continue;
    }
    const auto& l = *it->second;
    k += std::to_string(l.address());
    for (const auto& line : l.line()) {
      auto f = funcs.find(line.function_id());
      k += '|';
      if (f != funcs.end()) k += str(f->second->name());
      k += ':' + std::to_string(line.line());
    }
    k += ';';
  }
  for (const auto& lab : s.label()) {
    k += '#';
    k += str(lab.key());
    k += '=';
    k += lab.str() ? std::string(str(lab.str())) : std::to_string(lab.num());
  }
  return k;
}

}  // namespace

std::string scrape_target_path(const scrape_options& o) {
  const std::string& p = o.path_prefix;
  if (o.profile == "cpu") return p + "/profile?seconds=" + std::to_string(o.cpu_seconds);
  if (o.profile == "heap" || o.profile == "allocs" || o.profile == "goroutine" || o.profile == "mutex" ||
      o.profile == "block")
    return p + "/" + o.profile;
  return {};
}

std::string_view scrape_profile_name(std::string_view profile) {
  if (profile == "cpu") return "process_cpu";
  if (profile == "heap" || profile == "allocs") return "memory";
  if (profile == "goroutine") return "goroutines";
  if (profile == "mutex") return "mutex";
  if (profile == "block") return "block";
  return {};
}

result<std::string> pprof_delta::next(std::string_view raw) {
  std::string plain;
  bytes_view bytes = as_bytes(raw);
  if (pprof::is_gzip(bytes)) {
    auto g = pprof::gunzip(bytes, 1ull << 30);
    if (!g) return g.err();
    plain = std::move(*g);
  } else {
    plain = std::string(raw);
  }
  google::v1::Profile p;
  if (!p.ParseFromString(plain)) return error{errc::bad_pprof, "the scraped body is not a pprof profile"};
  std::vector<int> cum;
  for (int i = 0; i < p.sample_type_size(); ++i) {
    int64_t t = p.sample_type(i).type();
    std::string_view type = t >= 0 && t < p.string_table_size() ? p.string_table(static_cast<int>(t)) : "";
    if (cumulative(kind_, type)) cum.push_back(i);
  }
  if (cum.empty()) return plain;  // nothing to subtract

  std::map<uint64_t, const google::v1::Location*> locs;
  for (const auto& l : p.location()) locs[l.id()] = &l;
  std::map<uint64_t, const google::v1::Function*> funcs;
  for (const auto& f : p.function()) funcs[f.id()] = &f;

  std::map<std::string, std::vector<int64_t>> now;
  bool reset = false;
  for (const auto& s : p.sample()) {
    std::vector<int64_t> v;
    for (int i : cum) v.push_back(i < s.value_size() ? s.value(i) : 0);
    std::string k = sample_key(p, s, locs, funcs);
    auto& acc = now[k];
    if (acc.empty()) acc.assign(v.size(), 0);
    for (size_t j = 0; j < v.size(); ++j) acc[j] += v[j];
  }
  if (have_baseline_)
    for (const auto& [k, v] : now) {
      auto it = prev_.find(k);
      if (it == prev_.end()) continue;
      for (size_t j = 0; j < v.size(); ++j) reset |= v[j] < it->second[j];
    }
  const bool baseline_only = !have_baseline_ || reset;

  // Subtract per key; a key's delta goes to its first sample, the duplicates get zero.
  std::map<std::string, std::vector<int64_t>> left;
  if (!baseline_only)
    for (const auto& [k, v] : now) {
      std::vector<int64_t> d = v;
      if (auto it = prev_.find(k); it != prev_.end())
        for (size_t j = 0; j < d.size(); ++j) d[j] -= it->second[j];
      left.emplace(k, std::move(d));
    }
  google::v1::Profile out = p;
  out.clear_sample();
  for (const auto& s : p.sample()) {
    google::v1::Sample ns = s;
    std::vector<int64_t>* d = nullptr;
    if (!baseline_only) {
      auto it = left.find(sample_key(p, s, locs, funcs));
      if (it != left.end()) d = &it->second;
    }
    for (size_t j = 0; j < cum.size(); ++j) {
      if (cum[j] >= ns.value_size()) continue;
      int64_t v = 0;
      if (d != nullptr) {
        v = (*d)[j];
        (*d)[j] = 0;
      }
      ns.set_value(cum[j], v);
    }
    if (std::any_of(ns.value().begin(), ns.value().end(), [](int64_t v) { return v != 0; }))
      *out.add_sample() = std::move(ns);
  }
  prev_ = std::move(now);
  have_baseline_ = true;
  if (out.sample_size() == 0) return std::string();
  return out.SerializeAsString();
}

namespace {

using self_ptr = scrape_actor::stateful_pointer<scrape_state>;

std::map<std::string, std::string> metric_labels(const scrape_options& o) {
  return {{"job", o.job}, {"instance", o.host + ":" + std::to_string(o.port)}, {"profile", o.profile}};
}

void finish(self_ptr self, std::chrono::steady_clock::time_point t0, const status& st) {
  auto& s = self->state;
  auto labels = metric_labels(s.opts);
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  s.metrics->scrape_duration.Add(labels).Set(secs);
  s.metrics->scrape_up.Add(labels).Set(st.ok() ? 1 : 0);
  if (st.ok()) {
    s.metrics->scrape_last_success.Add(labels).Set(static_cast<double>(wall_clock_ns()) / 1e9);
  } else {
    s.metrics->scrape_failures.Add(labels).Increment();
    log::warn("scrape", "job=" + s.opts.job + " instance=" + labels["instance"] + " profile=" + s.opts.profile +
                            ": " + st.err().to_string());
  }
}

void scrape_once(self_ptr self) {
  auto& s = self->state;
  const auto t0 = std::chrono::steady_clock::now();
  const int64_t start_ns = wall_clock_ns();
  s.metrics->scrapes.Add(metric_labels(s.opts)).Increment();
  auto resp = io::http_get(s.opts.host, s.opts.port, scrape_target_path(s.opts),
                           std::chrono::duration_cast<std::chrono::milliseconds>(s.opts.timeout),
                           s.opts.max_body_bytes);
  if (!resp) return finish(self, t0, resp.err());
  if (resp->status != 200) {
    std::string snippet = resp->body.substr(0, 200);
    return finish(self, t0,
                  error{errc::unavailable, "HTTP " + std::to_string(resp->status) + " from " +
                                               scrape_target_path(s.opts) + ": " + quote_untrusted(snippet)});
  }
  auto delta = s.delta->next(resp->body);
  if (!delta) return finish(self, t0, delta.err());
  if (delta->empty()) return finish(self, t0, status{});  // a baseline: nothing to ingest yet

  push::v1::PushRequest push;
  auto* series = push.add_series();
  auto add = [&](const std::string& n, const std::string& v) {
    auto* l = series->add_labels();
    l->set_name(n);
    l->set_value(v);
  };
  add("__name__", std::string(scrape_profile_name(s.opts.profile)));
  add("service_name", s.opts.service_name);
  add("job", s.opts.job);
  add("instance", s.opts.host + ":" + std::to_string(s.opts.port));
  for (const auto& [k, v] : s.opts.labels) add(k, v);
  // The profile's own time: when the fetch started (a cpu profile covers the seconds after it).
  google::v1::Profile timed;
  if (timed.ParseFromString(*delta) && timed.time_nanos() == 0) {
    timed.set_time_nanos(start_ns);
    *delta = timed.SerializeAsString();
  }
  series->add_samples()->set_raw_profile(std::move(*delta));

  ingest_request req;
  req.tenant = s.opts.tenant;
  req.kind = static_cast<uint8_t>(ingest_kind::push_proto);
  req.content_type = "application/proto";
  req.body = push.SerializeAsString();
  req.received_ns = start_ns;
  self->request(s.distributor, std::chrono::seconds(60), ingest_atom::value, std::move(req))
      .then([self, t0](const ingest_reply& r) { finish(self, t0, r.status.ok() ? status{} : status{r.status.to_error()}); },
            [self, t0](caf::error& e) {
              finish(self, t0, error{errc::unavailable, "distributor: " + caf::to_string(e)});
            });
}

}  // namespace

scrape_actor::behavior_type scrape_fn(self_ptr self, scrape_options opts, distributor_actor distributor,
                                      self_metrics* metrics) {
  auto& s = self->state;
  s.delta = std::make_unique<pprof_delta>(opts.profile);
  s.opts = std::move(opts);
  s.distributor = std::move(distributor);
  s.metrics = metrics;
  self->send(self, tick_atom::value);
  return {
      [self](tick_atom) {
        auto& s = self->state;
        const auto t0 = std::chrono::steady_clock::now();
        scrape_once(self);
        // Keep the period: the next scrape starts one interval after this one started.
        auto took = std::chrono::steady_clock::now() - t0;
        auto wait = s.opts.interval > took ? s.opts.interval - took : std::chrono::steady_clock::duration::zero();
        self->delayed_send(self, std::chrono::duration_cast<std::chrono::milliseconds>(wait), tick_atom::value);
      },
  };
}

}  // namespace hearth
