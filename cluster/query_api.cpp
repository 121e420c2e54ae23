#include "cluster/query_api.hpp"

#include <algorithm>
#include <bit>
#include <charconv>
#include <climits>
#include <cmath>
#include <cstdio>
#include <cstdlib>

#include "format/normalize.hpp"
#include "format/protowire.hpp"
#include "format/text.hpp"
#include "format/uuid.hpp"
#include "hearth.pb.h"
#include "querier.pb.h"
#include "query/block_query.hpp"
#include "query/selector.hpp"
#include "query/series_query.hpp"
#include "types.pb.h"

namespace hearth::api {
namespace {

constexpr int64_t ns_per_ms = 1000000;
constexpr std::string_view querier = "querier.v1.QuerierService";
constexpr std::string_view findings = "hearth.v1.FindingsService";
constexpr int64_t default_top = 20;

// Several matcher strings are ANDed, as Pyroscope's v2 read path does ("{a="1"}" + "{b=~"x"}" ->
// {a="1",b=~"x"}).
template <class Strings>
std::string join_matchers(const Strings& ms) {
  if (ms.empty()) return "{}";
  if (ms.size() == 1) return ms[0];
  std::string out = "{";
  for (const auto& m : ms) {
    std::string_view s = m;
    auto open = s.find('{');
    auto close = s.rfind('}');
    if (open == std::string_view::npos || close == std::string_view::npos || close < open)
      return m;  // let the parser report it
    std::string_view inner = s.substr(open + 1, close - open - 1);
    if (inner.find_first_not_of(" \t,") == std::string_view::npos) continue;
    if (out.size() > 1) out += ',';
    out += inner;
  }
  return out + "}";
}

// Label queries without a range read everything (Pyroscope v1, which most installs run, does;
// v2 refuses them): both 0 means all time.
result<std::pair<int64_t, int64_t>> lenient_range(int64_t start, int64_t end, const limits& lim) {
  if (start == 0 && end == 0) return std::pair{int64_t{0}, INT64_MAX};
  return check_range(start, end, lim);
}

status check_selector(const std::string& sel) {
  auto ms = query::parse_selector(sel);
  if (!ms) return ms.err();
  return {};
}

// A SelectMergeStacktraces-shaped selection: profile type, selector and range.
result<query::query_spec> stacks_selection(const std::string& type, const std::string& selector,
                                           int64_t start, int64_t end, const limits& lim,
                                           std::string_view what) {
  if (type.empty())
    return error{errc::invalid_argument, std::string(what) + ": profile_typeID is required"};
  if (auto pt = query::parse_profile_type(type); !pt) return pt.err();
  auto range = check_range(start, end, lim);
  if (!range) return range.err();
  query::query_spec s;
  s.kind = static_cast<uint8_t>(query::query_kind::merge_stacks);
  s.profile_type = type;
  s.selector = selector.empty() ? "{}" : selector;
  if (auto st = check_selector(s.selector); !st) return st.err();
  s.start_ns = range->first;
  s.end_ns = range->second;
  s.max_rollup_step_ns = INT64_MAX;  // a flame graph only needs per-bucket sums
  return s;
}

void apply_stack_selector(const types::v1::StackTraceSelector& sts, query::query_spec& s) {
  if (sts.has_go_pgo()) {
    s.pgo = true;
    s.pgo_keep_locations = sts.go_pgo().keep_locations();
    s.pgo_aggregate_callees = sts.go_pgo().aggregate_callees();
    return;  // Pyroscope ignores call_site when go_pgo is set
  }
  for (const auto& l : sts.call_site()) s.call_site.push_back(l.name());
}

// A span_selector: 16-hex-digit span ids (pyroscope-api.md §2.2), as the sorted unique numbers
// a query_spec filters by.
template <class Strings>
result<std::vector<uint64_t>> parse_span_selector(const Strings& ids, std::string_view what) {
  std::vector<uint64_t> out;
  out.reserve(static_cast<size_t>(ids.size()));
  for (const auto& id : ids) {
    auto v = parse_span_id(id);
    if (!v)
      return error{errc::invalid_argument,
                   std::string(what) + ": span id " + quote_untrusted(id) +
                       " is not 16 hex digits (a non-zero 64-bit span id)"};
    out.push_back(*v);
  }
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

template <class Msg>
result<Msg> decode(connect::codec c, std::string_view body) {
  Msg m;
  if (auto st = connect::decode(c, body, m); !st) return st.err();
  return m;
}

/// profile_id_selector: UUIDs -> query_spec::profile_ids ((hi, lo) pairs, sorted, unique).
template <class Ids>
result<std::vector<uint64_t>> parse_profile_ids(const Ids& in, std::string_view what) {
  std::vector<std::pair<uint64_t, uint64_t>> ids;
  for (const auto& s : in) {
    uint64_t hi = 0, lo = 0;
    if (!parse_uuid(s, hi, lo))
      return error{errc::invalid_argument,
                   std::string(what) + ": profile id " + quote_untrusted(s) +
                       " is not a UUID (8-4-4-4-12 hex digits)"};
    ids.emplace_back(hi, lo);
  }
  std::sort(ids.begin(), ids.end());
  ids.erase(std::unique(ids.begin(), ids.end()), ids.end());
  std::vector<uint64_t> out;
  out.reserve(2 * ids.size());
  for (auto [hi, lo] : ids) {
    out.push_back(hi);
    out.push_back(lo);
  }
  return out;
}

result<query_request> smst_request(const querier::v1::SelectMergeStacktracesRequest& in,
                                   const limits& lim, std::string_view what) {
  if (!in.span_selector().empty() && !in.trace_id_selector().empty())
    return error{errc::invalid_argument,
                 std::string(what) + ": span_selector and trace_id_selector cannot be combined"};
  if (!in.trace_id_selector().empty())
    return error{errc::unimplemented,
                 std::string(what) +
                     ": trace_id_selector is not supported (Hearth keeps span ids per sample, not "
                     "trace ids; use span_selector)"};
  auto spec = stacks_selection(in.profile_typeid(), in.label_selector(), in.start(), in.end(), lim, what);
  if (!spec) return spec.err();
  if (!in.profile_id_selector().empty()) {
    auto ids = parse_profile_ids(in.profile_id_selector(), what);
    if (!ids) return ids.err();
    spec->profile_ids = std::move(*ids);
    spec->max_rollup_step_ns = 0;  // rollups keep no profile ids
  }
  if (!in.span_selector().empty()) {
    auto spans = parse_span_selector(in.span_selector(), what);
    if (!spans) return spans.err();
    spec->span_ids = std::move(*spans);
    spec->max_rollup_step_ns = 0;  // rollups keep no span samples
  }
  auto mn = check_max_nodes(in.has_max_nodes(), in.max_nodes(), lim);
  if (!mn) return mn.err();
  query_request q;
  q.spec = std::move(*spec);
  q.max_nodes = *mn;
  if (in.has_stack_trace_selector()) apply_stack_selector(in.stack_trace_selector(), q.spec);
  switch (in.format()) {
    case querier::v1::PROFILE_FORMAT_UNSPECIFIED:
    case querier::v1::PROFILE_FORMAT_FLAMEGRAPH:
      q.op = static_cast<uint8_t>(query_op::flame_graph);
      q.spec.pgo = false;  // GoPGO only trims pprof output
      break;
    case querier::v1::PROFILE_FORMAT_TREE:
      q.op = static_cast<uint8_t>(query_op::tree);
      q.spec.pgo = false;
      break;
    case querier::v1::PROFILE_FORMAT_PPROF:
      q.op = static_cast<uint8_t>(query_op::pprof);
      q.spec.kind = static_cast<uint8_t>(query::query_kind::merge_pprof);
      q.max_nodes = in.has_max_nodes() ? *mn : 0;  // full fidelity unless asked
      break;
    default:
      return error{errc::unimplemented,
                   std::string(what) + ": format " + querier::v1::ProfileFormat_Name(in.format()) +
                       " is not supported; use FLAMEGRAPH, TREE or PPROF"};
  }
  return q;
}

result<query::query_spec> finding_selection(const hearth::v1::Selection& s, const limits& lim,
                                            std::string_view what) {
  return stacks_selection(s.profile_typeid(), s.label_selector(), s.start(), s.end(), lim, what);
}

}  // namespace

bool is_legacy_label_name(std::string_view n) {
  if (n.empty()) return false;
  for (size_t i = 0; i < n.size(); ++i) {
    char c = n[i];
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || (i && c >= '0' && c <= '9');
    if (!ok) return false;
  }
  return true;
}

result<std::pair<int64_t, int64_t>> check_range(int64_t start_ms, int64_t end_ms, const limits& lim) {
  if (start_ms == 0 || end_ms == 0)
    return error{errc::bad_time_range, "missing time range: start and end (ms) are required"};
  if (start_ms > end_ms)
    return error{errc::bad_time_range, "start (" + std::to_string(start_ms) + ") is after end (" +
                                           std::to_string(end_ms) + ")"};
  if (end_ms - start_ms > lim.max_range_ns / ns_per_ms)
    return error{errc::bad_time_range, "query range of " + std::to_string((end_ms - start_ms) / 1000) +
                                           "s exceeds the limit of " +
                                           std::to_string(lim.max_range_ns / 1000000000) +
                                           "s (query.max_range)"};
  auto r = query::ns_range_from_ms(start_ms, end_ms);
  return std::pair{r.start_ns, r.end_ns};
}

result<int64_t> check_max_nodes(bool has, int64_t n, const limits& lim) {
  if (!has || n == 0) return lim.max_nodes_default;
  if (n < 0) return error{errc::too_many_nodes, "max_nodes must not be negative"};
  if (n > lim.max_nodes_max)
    return error{errc::too_many_nodes, "max_nodes " + std::to_string(n) + " exceeds the limit of " +
                                           std::to_string(lim.max_nodes_max) + " (query.max_nodes_max)"};
  return n;
}

result<std::pair<std::string, std::string>> split_typed_query(std::string_view qs) {
  auto brace = qs.find('{');
  std::string type(qs.substr(0, brace));
  while (!type.empty() && (type.back() == ' ' || type.back() == '\t')) type.pop_back();
  while (!type.empty() && (type.front() == ' ' || type.front() == '\t')) type.erase(0, 1);
  auto pt = query::parse_profile_type(type);
  if (!pt) return pt.err();
  std::string selector = brace == std::string_view::npos ? "{}" : std::string(qs.substr(brace));
  if (auto st = check_selector(selector); !st) return st.err();
  return std::pair{pt->id, selector};
}

bool known_method(std::string_view service, std::string_view method) {
  static const std::vector<std::string_view> q = {
      "ProfileTypes", "LabelValues", "LabelNames", "Series", "SelectMergeStacktraces",
      "SelectMergeSpanProfile", "SelectMergeProfile", "SelectSeries", "Diff", "GetProfileStats",
      "AnalyzeQuery", "SelectHeatmap"};
  static const std::vector<std::string_view> f = {"Explain", "Regression"};
  const auto& list = service == querier ? q : f;
  if (service != querier && service != findings) return false;
  return std::find(list.begin(), list.end(), method) != list.end();
}

result<query_request> parse_request(std::string_view service, std::string_view method,
                                    connect::codec c, std::string_view body, const limits& lim,
                                    int64_t now_ns) {
  using query::query_kind;
  query_request q;
  auto set_kind = [&](query_op op, query_kind k) {
    q.op = static_cast<uint8_t>(op);
    q.spec.kind = static_cast<uint8_t>(k);
  };
  if (service == findings) {
    if (method == "Explain") {
      auto in = decode<hearth::v1::ExplainRequest>(c, body);
      if (!in) return in.err();
      auto s = finding_selection(in->selection(), lim, "Explain");
      if (!s) return s.err();
      q.op = static_cast<uint8_t>(query_op::findings);
      q.spec = std::move(*s);
      q.top_n = in->top() > 0 ? in->top() : default_top;
      return q;
    }
    auto in = decode<hearth::v1::RegressionRequest>(c, body);
    if (!in) return in.err();
    auto l = finding_selection(in->baseline(), lim, "Regression baseline");
    if (!l) return l.err();
    auto r = finding_selection(in->comparison(), lim, "Regression comparison");
    if (!r) return r.err();
    q.op = static_cast<uint8_t>(query_op::regression);
    q.spec = std::move(*l);
    q.right = std::move(*r);
    q.top_n = in->top() > 0 ? in->top() : default_top;
    return q;
  }

  if (method == "ProfileTypes") {
    auto in = decode<querier::v1::ProfileTypesRequest>(c, body);
    if (!in) return in.err();
    int64_t start = in->start(), end = in->end();
    if (start == 0 && end == 0) {  // Pyroscope: both absent means the last hour
      end = now_ns / ns_per_ms;
      start = end - 3600 * 1000;
    }
    auto range = check_range(start, end, lim);
    if (!range) return range.err();
    set_kind(query_op::values, query_kind::profile_types);
    q.spec.start_ns = range->first;
    q.spec.end_ns = range->second;
    return q;
  }
  if (method == "LabelNames") {
    auto in = decode<types::v1::LabelNamesRequest>(c, body);
    if (!in) return in.err();
    auto range = lenient_range(in->start(), in->end(), lim);
    if (!range) return range.err();
    set_kind(query_op::values, query_kind::label_names);
    q.spec.selector = join_matchers(in->matchers());
    q.spec.start_ns = range->first;
    q.spec.end_ns = range->second;
  } else if (method == "LabelValues") {
    auto in = decode<types::v1::LabelValuesRequest>(c, body);
    if (!in) return in.err();
    if (in->name().empty()) return error{errc::invalid_argument, "LabelValues: name is required"};
    auto range = lenient_range(in->start(), in->end(), lim);
    if (!range) return range.err();
    set_kind(query_op::values, query_kind::label_values);
    q.spec.label_name = in->name();
    q.spec.selector = join_matchers(in->matchers());
    q.spec.start_ns = range->first;
    q.spec.end_ns = range->second;
  } else if (method == "Series") {
    auto in = decode<querier::v1::SeriesRequest>(c, body);
    if (!in) return in.err();
    auto range = lenient_range(in->start(), in->end(), lim);
    if (!range) return range.err();
    set_kind(query_op::label_sets, query_kind::series_labels);
    q.spec.selector = join_matchers(in->matchers());
    q.spec.label_names.assign(in->label_names().begin(), in->label_names().end());
    q.spec.start_ns = range->first;
    q.spec.end_ns = range->second;
  } else if (method == "SelectMergeStacktraces") {
    auto in = decode<querier::v1::SelectMergeStacktracesRequest>(c, body);
    if (!in) return in.err();
    return smst_request(*in, lim, "SelectMergeStacktraces");
  } else if (method == "SelectMergeProfile") {
    auto in = decode<querier::v1::SelectMergeProfileRequest>(c, body);
    if (!in) return in.err();
    if (!in->trace_id_selector().empty())
      return error{errc::unimplemented,
                   "SelectMergeProfile: trace_id_selector is not supported (Hearth keeps span ids "
                   "per sample, not trace ids)"};
    auto spec = stacks_selection(in->profile_typeid(), in->label_selector(), in->start(), in->end(),
                                 lim, "SelectMergeProfile");
    if (!spec) return spec.err();
    if (!in->profile_id_selector().empty()) {
      auto ids = parse_profile_ids(in->profile_id_selector(), "SelectMergeProfile");
      if (!ids) return ids.err();
      spec->profile_ids = std::move(*ids);
      spec->max_rollup_step_ns = 0;
    }
    q.spec = std::move(*spec);
    set_kind(query_op::pprof, query_kind::merge_pprof);
    if (in->has_stack_trace_selector()) apply_stack_selector(in->stack_trace_selector(), q.spec);
    if (in->has_max_nodes()) {
      auto mn = check_max_nodes(true, in->max_nodes(), lim);
      if (!mn) return mn.err();
      q.max_nodes = *mn;
    }
    return q;
  } else if (method == "SelectSeries") {
    auto in = decode<querier::v1::SelectSeriesRequest>(c, body);
    if (!in) return in.err();
    auto spec = stacks_selection(in->profile_typeid(), in->label_selector(), in->start(), in->end(),
                                 lim, "SelectSeries");
    if (!spec) return spec.err();
    if (!(in->step() * 1000 >= 1))
      return error{errc::invalid_argument, "SelectSeries: step must be at least 1 ms (it is in seconds)"};
    int64_t step_ms = static_cast<int64_t>(in->step() * 1000);
    auto grid = query::series_range(in->start(), in->end(), step_ms);
    q.spec = std::move(*spec);
    set_kind(query_op::series, query_kind::select_series);
    q.spec.start_ns = grid.start_ns;
    q.spec.end_ns = grid.end_ns;
    q.spec.step_ns = grid.step_ns;
    q.spec.max_rollup_step_ns = 0;
    q.spec.group_by.assign(in->group_by().begin(), in->group_by().end());
    switch (in->exemplar_type()) {
      case types::v1::EXEMPLAR_TYPE_UNSPECIFIED:
      case types::v1::EXEMPLAR_TYPE_NONE: break;
      case types::v1::EXEMPLAR_TYPE_INDIVIDUAL: q.spec.exemplars = true; break;
      case types::v1::EXEMPLAR_TYPE_SPAN:
        return error{errc::unimplemented, "SelectSeries: exemplar type span is not implemented"};
      default:
        return error{errc::invalid_argument, "SelectSeries: unknown exemplar type " +
                                                 std::to_string(in->exemplar_type())};
    }
    if (in->has_stack_trace_selector())
      for (const auto& l : in->stack_trace_selector().call_site()) q.spec.call_site.push_back(l.name());
    q.aggregation = in->has_aggregation() && in->aggregation() == types::v1::TIME_SERIES_AGGREGATION_TYPE_AVERAGE ? 1 : 0;
    if (in->has_limit()) {
      if (in->limit() < 0) return error{errc::invalid_argument, "SelectSeries: limit must not be negative"};
      q.limit = in->limit();
    }
    return q;
  } else if (method == "Diff") {
    auto in = decode<querier::v1::DiffRequest>(c, body);
    if (!in) return in.err();
    if (!in->has_left() || !in->has_right())
      return error{errc::invalid_argument, "Diff: left and right are required"};
    auto l = smst_request(in->left(), lim, "Diff left");
    if (!l) return l.err();
    auto r = smst_request(in->right(), lim, "Diff right");
    if (!r) return r.err();
    q.op = static_cast<uint8_t>(query_op::diff);
    q.spec = std::move(l->spec);
    q.right = std::move(r->spec);
    q.spec.kind = q.right.kind = static_cast<uint8_t>(query_kind::merge_stacks);
    q.spec.pgo = q.right.pgo = false;
    int64_t ln = in->left().has_max_nodes() ? in->left().max_nodes() : 0;
    int64_t rn = in->right().has_max_nodes() ? in->right().max_nodes() : 0;
    auto mn = check_max_nodes(true, std::max(ln, rn), lim);
    if (!mn) return mn.err();
    q.max_nodes = *mn;
    return q;
  } else if (method == "GetProfileStats") {
    auto in = decode<types::v1::GetProfileStatsRequest>(c, body);
    if (!in) return in.err();
    set_kind(query_op::stats, query_kind::profile_stats);
    q.spec.start_ns = 0;
    q.spec.end_ns = INT64_MAX;
  } else if (method == "AnalyzeQuery") {
    auto in = decode<querier::v1::AnalyzeQueryRequest>(c, body);
    if (!in) return in.err();
    auto range = check_range(in->start(), in->end(), lim);
    if (!range) return range.err();
    set_kind(query_op::analyze, query_kind::analyze);
    // The query is a selector, optionally prefixed by a profile type (as /pyroscope/render's).
    std::string_view qs = in->query();
    if (qs.empty()) qs = "{}";
    auto brace = qs.find('{');
    if (brace != 0) {
      auto typed = split_typed_query(qs);
      if (!typed) return typed.err();
      q.spec.profile_type = typed->first;
      q.spec.selector = typed->second;
    } else {
      q.spec.selector = std::string(qs);
      if (auto st = check_selector(q.spec.selector); !st) return st.err();
    }
    q.spec.start_ns = range->first;
    q.spec.end_ns = range->second;
    return q;
  } else if (method == "SelectMergeSpanProfile") {
    auto in = decode<querier::v1::SelectMergeSpanProfileRequest>(c, body);
    if (!in) return in.err();
    constexpr std::string_view what = "SelectMergeSpanProfile";
    auto spec = stacks_selection(in->profile_typeid(), in->label_selector(), in->start(), in->end(),
                                 lim, what);
    if (!spec) return spec.err();
    if (in->span_selector().empty())
      return error{errc::invalid_argument, std::string(what) + ": span_selector is required"};
    auto spans = parse_span_selector(in->span_selector(), what);
    if (!spans) return spans.err();
    auto mn = check_max_nodes(in->has_max_nodes(), in->max_nodes(), lim);
    if (!mn) return mn.err();
    q.spec = std::move(*spec);
    q.spec.span_ids = std::move(*spans);
    q.spec.max_rollup_step_ns = 0;  // rollups keep no span samples
    q.max_nodes = *mn;
    switch (in->format()) {
      case querier::v1::PROFILE_FORMAT_UNSPECIFIED:
      case querier::v1::PROFILE_FORMAT_FLAMEGRAPH:
        q.op = static_cast<uint8_t>(query_op::flame_graph);
        break;
      case querier::v1::PROFILE_FORMAT_TREE:
        q.op = static_cast<uint8_t>(query_op::tree);
        break;
      default:
        return error{errc::unimplemented,
                     std::string(what) + ": format " + querier::v1::ProfileFormat_Name(in->format()) +
                         " is not supported; use FLAMEGRAPH or TREE"};
    }
    return q;
  } else {
    return error{errc::unimplemented,
                 std::string(service) + "/" + std::string(method) +
                     " is not served by Hearth (SelectHeatmap needs Pyroscope's v2 storage "
                     "feature toggle)"};
  }
  if (q.spec.selector.empty()) q.spec.selector = "{}";
  if (auto st = check_selector(q.spec.selector); !st) return st.err();
  return q;
}

namespace {

void fill_flame_graph(const query::flame_graph& g, querier::v1::FlameGraph* fg) {
  for (const auto& n : g.names) fg->add_names(n);
  for (const auto& lvl : g.levels) {
    auto* l = fg->add_levels();
    l->mutable_values()->Reserve(static_cast<int>(lvl.size()));
    for (auto v : lvl) l->add_values(v);
  }
  fg->set_total(g.total);
  fg->set_max_self(g.max_self);
}

void fill_labels(const label_set& ls, google::protobuf::RepeatedPtrField<types::v1::LabelPair>* out) {
  for (const auto& l : ls) {
    auto* p = out->Add();
    p->set_name(l.name);
    p->set_value(l.value);
  }
}

void fill_share(const query::function_share& f, hearth::v1::FunctionShare* o) {
  o->set_name(f.name);
  o->set_self(f.self);
  o->set_total(f.total);
  o->set_self_share(f.self_share);
  o->set_total_share(f.total_share);
}

void fill_change(const query::function_change& f, hearth::v1::FunctionChange* o) {
  o->set_name(f.name);
  o->set_baseline_self(f.left_self);
  o->set_baseline_total(f.left_total);
  o->set_comparison_self(f.right_self);
  o->set_comparison_total(f.right_total);
  o->set_baseline_self_share(f.left_self_share);
  o->set_baseline_total_share(f.left_total_share);
  o->set_comparison_self_share(f.right_self_share);
  o->set_comparison_total_share(f.right_total_share);
  o->set_self_share_delta(f.self_share_delta);
  o->set_total_share_delta(f.total_share_delta);
}

// Point i's exemplar, if exemplars were asked for and it has one.
const query::exemplar* exemplar_of(const query::series& s, size_t i) {
  if (i >= s.exemplars.size()) return nullptr;
  const query::exemplar& e = s.exemplars[i];
  return e.id_hi != 0 || e.id_lo != 0 ? &e : nullptr;
}

// SelectSeriesResponse (querier.proto) in the binary codec, written field by field: byte for
// byte what libprotobuf serializes, without a message object per point, which for a day of 10k
// series (14.4 M points) cost seconds of allocation.
std::string series_response_bytes(const std::vector<query::series>& all) {
  using namespace protowire;
  encoder out, one, ex;
  const auto put_labels = [](encoder& e, uint32_t field, const label_set& ls, encoder& scratch) {
    for (const auto& l : ls) {  // types.v1.LabelPair
      scratch.reset();
      put_string_field(scratch, 1, l.name);
      put_string_field(scratch, 2, l.value);
      put_bytes_field(e, field, scratch.buffer());
    }
  };
  for (const auto& s : all) {  // types.v1.Series
    one.reset();
    put_labels(one, 1, s.labels, ex);
    for (size_t i = 0; i < s.points.size(); ++i) {  // types.v1.Point
      const query::series_point& p = s.points[i];
      const bool value = std::bit_cast<uint64_t>(p.value) != 0;
      const auto ts = static_cast<uint64_t>(p.timestamp_ms);
      const query::exemplar* e = exemplar_of(s, i);
      if (e == nullptr) {
        put_tag(one, 2, wt_len);
        one.put_uvarint((value ? 9 : 0) + (ts != 0 ? 1 + uvarint_size(ts) : 0));
        put_double_field(one, 1, p.value);
        put_varint_field(one, 2, ts);
        continue;
      }
      encoder point, x;
      put_double_field(point, 1, p.value);
      put_varint_field(point, 2, ts);
      put_int_field(x, 1, e->time_ms);  // types.v1.Exemplar
      put_string_field(x, 2, format_uuid(e->id_hi, e->id_lo));
      put_int_field(x, 4, e->value);
      put_labels(x, 5, e->labels, ex);
      put_bytes_field(point, 4, x.buffer());
      put_bytes_field(one, 2, point.buffer());
    }
    put_bytes_field(out, 1, one.buffer());
  }
  return out.release();
}

// A double as libprotobuf's JSON printer writes it: %.15g, or %.17g when that does not read back
// exactly; NaN and the infinities as strings.
void append_json_double(std::string& out, double v) {
  if (std::isnan(v)) {
    out += "\"NaN\"";
    return;
  }
  if (std::isinf(v)) {
    out += v > 0 ? "\"Infinity\"" : "\"-Infinity\"";
    return;
  }
  char b[32];
  if (v != 0 && std::fabs(v) < 1e15 && v == std::trunc(v)) {  // what %.15g gives, quickly
    out.append(b, std::to_chars(b, b + sizeof b, static_cast<int64_t>(v)).ptr);
    return;
  }
  int n = std::snprintf(b, sizeof b, "%.15g", v);
  if (std::strtod(b, nullptr) != v) n = std::snprintf(b, sizeof b, "%.17g", v);
  out.append(b, static_cast<size_t>(n));
}

// SelectSeriesResponse in the JSON codec, written as the binary one: what libprotobuf's JSON
// printer gives for the message (lowerCamelCase names, zero values and empty lists left out,
// int64 as strings), for a day of 10k series in a fraction of the printer's time.
std::string series_response_json(const std::vector<query::series>& all) {
  std::string out;
  // Appends `"key":` after a comma unless it is the object's first field.
  const auto key = [&out](bool& first, std::string_view k) {
    if (!first) out += ',';
    first = false;
    out += '"';
    out += k;
    out += "\":";
  };
  const auto string_field = [&](bool& first, std::string_view k, std::string_view v) {
    if (v.empty()) return;
    key(first, k);
    out += '"';
    append_json_escaped(out, v);
    out += '"';
  };
  const auto int_field = [&](bool& first, std::string_view k, int64_t v) {
    if (v == 0) return;
    key(first, k);
    char b[24];
    out += '"';
    out.append(b, std::to_chars(b, b + sizeof b, v).ptr);
    out += '"';
  };
  const auto labels = [&](bool& first, const label_set& ls) {  // repeated types.v1.LabelPair
    if (ls.empty()) return;
    key(first, "labels");
    out += '[';
    for (size_t i = 0; i < ls.size(); ++i) {
      out += i == 0 ? "{" : ",{";
      bool f = true;
      string_field(f, "name", ls[i].name);
      string_field(f, "value", ls[i].value);
      out += '}';
    }
    out += ']';
  };
  out += '{';
  if (!all.empty()) out += "\"series\":[";
  for (size_t k = 0; k < all.size(); ++k) {  // types.v1.Series
    const query::series& s = all[k];
    out += k == 0 ? "{" : ",{";
    bool first = true;
    labels(first, s.labels);
    if (!s.points.empty()) {
      key(first, "points");
      out += '[';
    }
    for (size_t i = 0; i < s.points.size(); ++i) {  // types.v1.Point
      out += i == 0 ? "{" : ",{";
      bool f = true;
      if (std::bit_cast<uint64_t>(s.points[i].value) != 0) {
        key(f, "value");
        append_json_double(out, s.points[i].value);
      }
      int_field(f, "timestamp", s.points[i].timestamp_ms);
      if (const query::exemplar* e = exemplar_of(s, i)) {  // types.v1.Exemplar
        key(f, "exemplars");
        out += "[{";
        bool fe = true;
        int_field(fe, "timestamp", e->time_ms);
        string_field(fe, "profileId", format_uuid(e->id_hi, e->id_lo));
        int_field(fe, "value", e->value);
        labels(fe, e->labels);
        out += "}]";
      }
      out += '}';
    }
    if (!s.points.empty()) out += ']';
    out += '}';
  }
  if (!all.empty()) out += ']';
  out += '}';
  return out;
}

// The merged pprof is already google.v1.Profile bytes: binary clients get them as they are, JSON
// clients get them re-encoded through the message.
result<std::string> pprof_body(connect::codec c, const std::string& bytes) {
  if (c == connect::codec::proto) return bytes;
  google::v1::Profile p;
  if (!p.ParseFromString(bytes))
    return error{errc::internal, "merged pprof does not parse as google.v1.Profile"};
  return connect::encode(c, p);
}

}  // namespace

result<std::string> render_response(std::string_view service, std::string_view method,
                                    connect::codec c, const query_request& q,
                                    const query_result& r, bool utf8_names) {
  if (service == findings) {
    if (method == "Explain") {
      hearth::v1::ExplainResponse out;
      out.set_total(r.findings.total);
      for (const auto& f : r.findings.top_self) fill_share(f, out.add_top_self());
      for (const auto& f : r.findings.top_total) fill_share(f, out.add_top_total());
      for (const auto& p : r.findings.hot_path) {
        auto* o = out.add_hot_path();
        o->set_name(p.name);
        o->set_self(p.self);
        o->set_total(p.total);
        o->set_share(p.share);
      }
      return connect::encode(c, out);
    }
    hearth::v1::RegressionResponse out;
    out.set_baseline_total(r.regression.left_total);
    out.set_comparison_total(r.regression.right_total);
    for (const auto& f : r.regression.self_grew) fill_change(f, out.add_self_grew());
    for (const auto& f : r.regression.self_shrank) fill_change(f, out.add_self_shrank());
    for (const auto& f : r.regression.total_grew) fill_change(f, out.add_total_grew());
    for (const auto& f : r.regression.total_shrank) fill_change(f, out.add_total_shrank());
    return connect::encode(c, out);
  }
  if (method == "ProfileTypes") {
    querier::v1::ProfileTypesResponse out;
    for (const auto& id : r.values) {
      auto pt = query::parse_profile_type(id);
      if (!pt) continue;
      auto* p = out.add_profile_types();
      p->set_id(pt->id);
      p->set_name(pt->name);
      p->set_sample_type(pt->sample_type);
      p->set_sample_unit(pt->sample_unit);
      p->set_period_type(pt->period_type);
      p->set_period_unit(pt->period_unit);
    }
    return connect::encode(c, out);
  }
  if (method == "LabelNames") {
    types::v1::LabelNamesResponse out;
    for (const auto& v : r.values)
      if (utf8_names || is_legacy_label_name(v)) out.add_names(v);
    return connect::encode(c, out);
  }
  if (method == "LabelValues") {
    types::v1::LabelValuesResponse out;
    for (const auto& v : r.values) out.add_names(v);
    return connect::encode(c, out);
  }
  if (method == "Series") {
    querier::v1::SeriesResponse out;
    for (const auto& ls : r.label_sets) fill_labels(ls, out.add_labels_set()->mutable_labels());
    return connect::encode(c, out);
  }
  if (method == "SelectMergeStacktraces") {
    querier::v1::SelectMergeStacktracesResponse out;
    switch (static_cast<query_op>(q.op)) {
      case query_op::tree: out.set_tree(r.bytes); break;
      case query_op::pprof:
        if (!out.mutable_pprof()->mutable_profile()->ParseFromString(r.bytes))
          return error{errc::internal, "merged pprof does not parse as google.v1.Profile"};
        break;
      default: fill_flame_graph(r.graph, out.mutable_flamegraph());
    }
    return connect::encode(c, out);
  }
  if (method == "SelectMergeProfile") return pprof_body(c, r.bytes);
  if (method == "SelectMergeSpanProfile") {
    querier::v1::SelectMergeSpanProfileResponse out;
    if (static_cast<query_op>(q.op) == query_op::tree)
      out.set_tree(r.bytes);
    else
      fill_flame_graph(r.graph, out.mutable_flamegraph());
    return connect::encode(c, out);
  }
  if (method == "SelectSeries") {
    return c == connect::codec::proto ? series_response_bytes(r.series)
                                      : series_response_json(r.series);
  }
  if (method == "Diff") {
    querier::v1::DiffResponse out;
    auto* fg = out.mutable_flamegraph();
    for (const auto& n : r.diff.names) fg->add_names(n);
    for (const auto& lvl : r.diff.levels) {
      auto* l = fg->add_levels();
      for (auto v : lvl) l->add_values(v);
    }
    fg->set_total(r.diff.total);
    fg->set_max_self(r.diff.max_self);
    fg->set_leftticks(r.diff.left_ticks);
    fg->set_rightticks(r.diff.right_ticks);
    return connect::encode(c, out);
  }
  if (method == "GetProfileStats") {
    types::v1::GetProfileStatsResponse out;
    out.set_data_ingested(r.stats.data_ingested);
    out.set_oldest_profile_time(r.stats.oldest_profile_ms);
    out.set_newest_profile_time(r.stats.newest_profile_ms);
    return connect::encode(c, out);
  }
  if (method == "AnalyzeQuery") {
    querier::v1::AnalyzeQueryResponse out;
    auto* s = out.add_query_scopes();
    s->set_component_type("storage");
    s->set_component_count(1);
    s->set_block_count(r.counts.blocks);
    s->set_series_count(r.counts.series);
    s->set_profile_count(r.counts.profiles);
    s->set_sample_count(r.counts.samples);
    s->set_profile_bytes(r.counts.bytes);
    auto* i = out.mutable_query_impact();
    i->set_total_bytes_in_time_range(r.counts.bytes);
    i->set_total_queried_series(r.counts.series);
    i->set_deduplication_needed(false);
    return connect::encode(c, out);
  }
  return error{errc::unimplemented, "no response for " + std::string(method)};
}

}  // namespace hearth::api
