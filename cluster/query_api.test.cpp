#include "cluster/query_api.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <random>

#include <google/protobuf/util/json_util.h>

#include "format/uuid.hpp"
#include "querier.pb.h"

namespace hearth::api {
namespace {

constexpr std::string_view Q = "querier.v1.QuerierService";
constexpr int64_t now_ns = 1'700'000'000'000'000'000;
const limits lim;

result<query_request> parse_json(std::string_view method, std::string_view body,
                                 std::string_view service = Q) {
  return parse_request(service, method, connect::codec::json, body, lim, now_ns);
}

TEST(query_api, select_merge_stacktraces_accepts_proto_and_camel_names) {
  for (auto body : {R"({"profile_typeID":"process_cpu:cpu:nanoseconds:cpu:nanoseconds",
                        "label_selector":"{service_name=\"a\"}","start":"1000","end":2000,
                        "stack_trace_selector":{"call_site":[{"name":"main"}]}})",
                    R"({"profileTypeID":"process_cpu:cpu:nanoseconds:cpu:nanoseconds",
                        "labelSelector":"{service_name=\"a\"}","start":1000,"end":"2000",
                        "stackTraceSelector":{"callSite":[{"name":"main"}]},"unknownField":1})"}) {
    auto q = parse_json("SelectMergeStacktraces", body);
    ASSERT_TRUE(q.ok()) << q.err().to_string();
    EXPECT_EQ(q->op, static_cast<uint8_t>(query_op::flame_graph));
    EXPECT_EQ(q->spec.selector, "{service_name=\"a\"}");
    EXPECT_EQ(q->spec.start_ns, 1000 * 1000000);
    EXPECT_EQ(q->spec.end_ns, 2001 * 1000000);  // inclusive ms end -> half-open ns
    EXPECT_EQ(q->spec.call_site, std::vector<std::string>{"main"});
    EXPECT_EQ(q->max_nodes, lim.max_nodes_default);
  }
}

TEST(query_api, select_merge_span_profile_uses_its_own_field_numbers) {
  // JSON names first: span ids in either case, repeated ones once, sorted.
  auto q = parse_json("SelectMergeSpanProfile",
                      R"({"profileTypeID":"process_cpu:cpu:nanoseconds:cpu:nanoseconds",
                          "labelSelector":"{service_name=\"a\"}","spanSelector":["00000000000000BB","00000000000000aa","00000000000000bb"],
                          "start":"1000","end":2000,"maxNodes":"16","format":"PROFILE_FORMAT_TREE"})");
  ASSERT_TRUE(q.ok()) << q.err().to_string();
  EXPECT_EQ(q->op, static_cast<uint8_t>(query_op::tree));
  EXPECT_EQ(q->spec.span_ids, (std::vector<uint64_t>{0xaa, 0xbb}));
  EXPECT_EQ(q->spec.start_ns, 1000 * 1000000);
  EXPECT_EQ(q->spec.end_ns, 2001 * 1000000);
  EXPECT_EQ(q->spec.max_rollup_step_ns, 0);  // rollups keep no span ids
  EXPECT_EQ(q->max_nodes, 16);
  EXPECT_EQ(q->spec.kind, static_cast<uint8_t>(query::query_kind::merge_stacks));

  // Binary: start/end are fields 4/5 and span_selector is 3 (SelectMergeStacktraces has 3/4 and 11).
  querier::v1::SelectMergeSpanProfileRequest m;
  m.set_profile_typeid("process_cpu:cpu:nanoseconds:cpu:nanoseconds");
  m.add_span_selector("0123456789abcdef");
  m.set_start(1000);
  m.set_end(2000);
  auto b = parse_request(Q, "SelectMergeSpanProfile", connect::codec::proto, m.SerializeAsString(), lim, now_ns);
  ASSERT_TRUE(b.ok()) << b.err().to_string();
  EXPECT_EQ(b->op, static_cast<uint8_t>(query_op::flame_graph));
  EXPECT_EQ(b->spec.span_ids, (std::vector<uint64_t>{0x0123456789abcdef}));
  EXPECT_EQ(b->spec.start_ns, 1000 * 1000000);

  // A bad span id is named; no span id at all is an error too (it would select everything).
  auto bad = parse_json("SelectMergeSpanProfile",
                        R"({"profileTypeID":"process_cpu:cpu:nanoseconds:cpu:nanoseconds",
                            "spanSelector":["00000000000000aa","xyz"],"start":1,"end":5})");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.err().code, errc::invalid_argument);
  EXPECT_NE(bad.err().message.find("xyz"), std::string::npos) << bad.err().message;
  auto none = parse_json("SelectMergeSpanProfile",
                         R"({"profileTypeID":"process_cpu:cpu:nanoseconds:cpu:nanoseconds","start":1,"end":5})");
  ASSERT_FALSE(none.ok());
  EXPECT_EQ(none.err().code, errc::invalid_argument);
  auto dot = parse_json("SelectMergeSpanProfile",
                        R"({"profileTypeID":"process_cpu:cpu:nanoseconds:cpu:nanoseconds",
                            "spanSelector":["00000000000000aa"],"start":1,"end":5,"format":"PROFILE_FORMAT_PPROF"})");
  ASSERT_FALSE(dot.ok());
  EXPECT_EQ(dot.err().code, errc::unimplemented);

  // SelectMergeStacktraces' span_selector (field 11) lands in the same spec field.
  auto sm = parse_json("SelectMergeStacktraces",
                       R"({"profileTypeID":"process_cpu:cpu:nanoseconds:cpu:nanoseconds",
                           "spanSelector":["00000000000000aa"],"start":1,"end":5})");
  ASSERT_TRUE(sm.ok()) << sm.err().to_string();
  EXPECT_EQ(sm->spec.span_ids, (std::vector<uint64_t>{0xaa}));
  EXPECT_EQ(sm->spec.max_rollup_step_ns, 0);
}

TEST(query_api, select_merge_span_profile_renders_flame_graph_or_tree) {
  query_request q;
  q.op = static_cast<uint8_t>(query_op::tree);
  query_result r;
  r.bytes = "tree-bytes";
  auto out = render_response(Q, "SelectMergeSpanProfile", connect::codec::proto, q, r, false);
  ASSERT_TRUE(out.ok()) << out.err().to_string();
  querier::v1::SelectMergeSpanProfileResponse resp;
  ASSERT_TRUE(resp.ParseFromString(*out));
  EXPECT_EQ(resp.tree(), "tree-bytes");
  EXPECT_FALSE(resp.has_flamegraph());
  q.op = static_cast<uint8_t>(query_op::flame_graph);
  r.graph.names = {"total"};
  r.graph.levels = {{0, 0, 0, 0}};
  out = render_response(Q, "SelectMergeSpanProfile", connect::codec::proto, q, r, false);
  ASSERT_TRUE(out.ok());
  ASSERT_TRUE(resp.ParseFromString(*out));
  ASSERT_TRUE(resp.has_flamegraph());
  EXPECT_EQ(resp.flamegraph().names(0), "total");
}

TEST(query_api, errors_name_what_is_wrong) {
  auto code = [](std::string_view method, std::string_view body) {
    auto q = parse_json(method, body);
    return q.ok() ? errc{} : q.err().code;
  };
  const std::string pt = R"("profileTypeID":"process_cpu:cpu:nanoseconds:cpu:nanoseconds")";
  EXPECT_EQ(code("SelectMergeStacktraces", "{" + pt + R"(,"start":0,"end":5})"), errc::bad_time_range);
  EXPECT_EQ(code("SelectMergeStacktraces", "{" + pt + R"(,"start":9,"end":5})"), errc::bad_time_range);
  EXPECT_EQ(code("SelectMergeStacktraces", "{" + pt + R"(,"start":1,"end":5,"maxNodes":2000000})"),
            errc::too_many_nodes);
  EXPECT_EQ(code("SelectMergeStacktraces", "{" + pt + R"(,"start":1,"end":5,"labelSelector":"{a=}"})"),
            errc::bad_selector);
  EXPECT_EQ(code("SelectMergeStacktraces", R"({"profileTypeID":"cpu","start":1,"end":5})"),
            errc::unknown_profile_type);
  EXPECT_EQ(code("SelectMergeStacktraces", "{" + pt + R"(,"start":1,"end":5,"format":"PROFILE_FORMAT_DOT"})"),
            errc::unimplemented);
  EXPECT_EQ(code("SelectMergeStacktraces", "{" + pt + R"(,"start":1,"end":5,"spanSelector":["00000000000000aa"]})"),
            errc{});
  EXPECT_EQ(code("SelectMergeStacktraces", "{" + pt + R"(,"start":1,"end":5,"spanSelector":["aa"]})"),
            errc::invalid_argument);
  EXPECT_EQ(code("SelectMergeStacktraces", "{" + pt + R"(,"start":1,"end":5,"profileIdSelector":["x"]})"),
            errc::invalid_argument);
  EXPECT_EQ(code("SelectMergeStacktraces",
                 "{" + pt + R"(,"start":1,"end":5,"profileIdSelector":["6ba7b810-9dad-11d1-80b4-00c04fd430c8"]})"),
            errc{});
  EXPECT_EQ(code("SelectMergeStacktraces",
                 "{" + pt + R"(,"start":1,"end":5,"traceIdSelector":["0123456789abcdef0123456789abcdef"]})"),
            errc::unimplemented);
  EXPECT_EQ(code("SelectSeries", "{" + pt + R"(,"start":1,"end":5,"step":1,"exemplarType":"EXEMPLAR_TYPE_SPAN"})"),
            errc::unimplemented);
  EXPECT_EQ(code("SelectSeries", "{" + pt + R"(,"start":1,"end":5,"step":0.0001})"), errc::invalid_argument);
  EXPECT_EQ(code("LabelValues", R"({"start":1,"end":5})"), errc::invalid_argument);
  EXPECT_EQ(code("Series", "not json"), errc::bad_request_body);
  EXPECT_EQ(code("SelectMergeSpanProfile", "{}"), errc::invalid_argument);  // no profile type
  const int64_t day = 86'400'000;
  EXPECT_EQ(code("SelectMergeStacktraces", "{" + pt + R"(,"start":1,"end":)" + std::to_string(40 * day) + "}"),
            errc::bad_time_range);  // over query.max_range (31 d)
}

TEST(query_api, select_series_grid_and_options) {
  auto q = parse_json("SelectSeries", R"({"profileTypeID":"process_cpu:cpu:nanoseconds:cpu:nanoseconds",
      "start":600000,"end":1200000,"step":60,"groupBy":["pod"],
      "aggregation":"TIME_SERIES_AGGREGATION_TYPE_AVERAGE","limit":"10"})");
  ASSERT_TRUE(q.ok()) << q.err().to_string();
  EXPECT_EQ(q->spec.kind, static_cast<uint8_t>(query::query_kind::select_series));
  EXPECT_EQ(q->spec.step_ns, 60'000'000'000);
  EXPECT_EQ(q->spec.start_ns, 540'000'000'000);  // one step before start, as Pyroscope
  EXPECT_EQ(q->spec.group_by, std::vector<std::string>{"pod"});
  EXPECT_EQ(q->aggregation, 1);
  EXPECT_EQ(q->limit, 10);
}

TEST(query_api, profile_types_defaults_to_the_last_hour_and_health_check_window_is_fine) {
  auto q = parse_json("ProfileTypes", "{}");
  ASSERT_TRUE(q.ok());
  EXPECT_EQ(q->spec.end_ns - q->spec.start_ns, 3600ll * 1000000000 + 1000000);
  EXPECT_TRUE(parse_json("ProfileTypes", R"({"start":1000,"end":4000})").ok());
}

TEST(query_api, findings_and_diff_carry_both_selections) {
  auto e = parse_json("Explain", R"({"selection":{"profileTypeID":"process_cpu:cpu:nanoseconds:cpu:nanoseconds",
      "labelSelector":"{}","start":1,"end":5}})", "hearth.v1.FindingsService");
  ASSERT_TRUE(e.ok()) << e.err().to_string();
  EXPECT_EQ(e->op, static_cast<uint8_t>(query_op::findings));
  EXPECT_EQ(e->top_n, 20);
  auto d = parse_json("Diff", R"({"left":{"profileTypeID":"process_cpu:cpu:nanoseconds:cpu:nanoseconds","start":1,"end":5,"maxNodes":10},
      "right":{"profileTypeID":"process_cpu:cpu:nanoseconds:cpu:nanoseconds","start":6,"end":9,"maxNodes":30}})");
  ASSERT_TRUE(d.ok()) << d.err().to_string();
  EXPECT_EQ(d->max_nodes, 30);  // max of both sides
  EXPECT_EQ(d->right.start_ns, 6 * 1000000);
  EXPECT_FALSE(known_method("hearth.v1.FindingsService", "Series"));
  EXPECT_TRUE(known_method(Q, "AnalyzeQuery"));
}

TEST(query_api, label_names_hide_utf8_names_without_the_capability) {
  query_request q;
  query_result r;
  r.values = {"__name__", "service.name", "service_name"};
  auto plain = render_response(Q, "LabelNames", connect::codec::json, q, r, false);
  ASSERT_TRUE(plain.ok());
  EXPECT_EQ(*plain, R"({"names":["__name__","service_name"]})");
  auto utf8 = render_response(Q, "LabelNames", connect::codec::json, q, r, true);
  ASSERT_TRUE(utf8.ok());
  EXPECT_EQ(*utf8, R"({"names":["__name__","service.name","service_name"]})");
}


// SelectSeries is written field by field, not through message objects: in the binary codec byte
// for byte libprotobuf's serialization of the same response, and in JSON its printer's text,
// zero and negative-zero values, NaN and infinities, absent timestamps, empty strings and
// exemplars included.
TEST(query_api, select_series_bytes_are_libprotobufs_serialization) {
  std::mt19937_64 rnd(7);
  const double specials[] = {0.0, -0.0, 1.5, -2.25, 1e300, 999999999999999.0, 1e15,
                             -123456789012345.0, 123456789012345.6, 0.1, 1e-7,
                             std::numeric_limits<double>::infinity(),
                             std::numeric_limits<double>::quiet_NaN(), 5e-324};
  const int64_t times[] = {0, 1, -1, 127, 128, 1'700'000'000'000, INT64_MIN, INT64_MAX};
  for (int round = 0; round < 50; ++round) {
    query_result r;
    r.series.resize(rnd() % 4);
    for (auto& s : r.series) {
      for (size_t k = rnd() % 3; k > 0; --k)
        s.labels.push_back(
            {"name" + std::to_string(k), rnd() % 4 == 0 ? "" : "v" + std::to_string(rnd())});
      s.points.resize(rnd() % 5);
      if (rnd() % 2) s.exemplars.resize(s.points.size());  // exemplars asked for
      for (size_t i = 0; i < s.points.size(); ++i) {
        auto& p = s.points[i];
        p.timestamp_ms = times[rnd() % std::size(times)];
        p.value = rnd() % 2 ? specials[rnd() % std::size(specials)]
                            : static_cast<double>(rnd() % 1000);
        if (!s.exemplars.empty() && rnd() % 3 != 0) {  // else the point has none: a zero id
          query::exemplar& e = s.exemplars[i];
          e.time_ms = times[rnd() % std::size(times)];
          e.value = static_cast<int64_t>(rnd() % 3) - 1;
          e.id_hi = rnd() % 2 ? rnd() : 0;
          e.id_lo = rnd() | 1;
          if (rnd() % 2) e.labels = {{"pod", "p" + std::to_string(rnd() % 9)}};
        }
      }
    }
    querier::v1::SelectSeriesResponse want;
    for (const auto& s : r.series) {
      auto* o = want.add_series();
      for (const auto& l : s.labels) {
        auto* lp = o->add_labels();
        lp->set_name(l.name);
        lp->set_value(l.value);
      }
      for (size_t i = 0; i < s.points.size(); ++i) {
        const auto& p = s.points[i];
        auto* pt = o->add_points();
        pt->set_timestamp(p.timestamp_ms);
        pt->set_value(p.value);
        if (i < s.exemplars.size() && (s.exemplars[i].id_hi | s.exemplars[i].id_lo) != 0) {
          const auto& e = s.exemplars[i];
          auto* x = pt->add_exemplars();
          x->set_timestamp(e.time_ms);
          x->set_profile_id(format_uuid(e.id_hi, e.id_lo));
          x->set_value(e.value);
          for (const auto& l : e.labels) {
            auto* lp = x->add_labels();
            lp->set_name(l.name);
            lp->set_value(l.value);
          }
        }
      }
    }
    auto got = render_response(Q, "SelectSeries", connect::codec::proto, query_request{}, r, false);
    ASSERT_TRUE(got.ok()) << got.err().to_string();
    ASSERT_EQ(*got, want.SerializeAsString()) << "round " << round;
    // JSON, also written without messages: libprotobuf's printer gives the same text (these
    // labels need no escaping, which may differ: libprotobuf escapes '<' and '>', we need not).
    auto json = render_response(Q, "SelectSeries", connect::codec::json, query_request{}, r, false);
    ASSERT_TRUE(json.ok()) << json.err().to_string();
    std::string printed;
    ASSERT_TRUE(google::protobuf::util::MessageToJsonString(want, &printed).ok());
    ASSERT_EQ(*json, printed) << "round " << round;
  }
  // Labels that need escaping read back as libprotobuf's own text does.
  query_result r;
  r.series.resize(1);
  r.series[0].labels = {{"a<b>&\"\\", "\x01\n\u2028\u00e9"}};
  r.series[0].points = {{1, 2.5}};
  auto json = render_response(Q, "SelectSeries", connect::codec::json, query_request{}, r, false);
  ASSERT_TRUE(json.ok());
  querier::v1::SelectSeriesResponse want, back;
  auto* lp = want.add_series()->add_labels();
  lp->set_name(r.series[0].labels[0].name);
  lp->set_value(r.series[0].labels[0].value);
  auto* pt = want.mutable_series(0)->add_points();
  pt->set_timestamp(1);
  pt->set_value(2.5);
  ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(*json, &back).ok()) << *json;
  EXPECT_EQ(back.SerializeAsString(), want.SerializeAsString()) << *json;
}

}  // namespace
}  // namespace hearth::api
