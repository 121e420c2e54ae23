#include "format/ingest_request.hpp"

#include <gtest/gtest.h>

#include <random>

#include "format/pprof.hpp"
#include "format/test_util.hpp"

namespace hearth {
namespace {

using test::read_file;
using test::testdata_dir;

label_set ls(std::initializer_list<std::pair<const char*, const char*>> kv) {
  label_set out;
  for (auto& [k, v] : kv) out.push_back({k, v});
  return out;
}

// ---- parse_app_name ----------------------------------------------------------------------------

TEST(ingest_request, app_name_plain) {
  auto r = parse_app_name("my-app.cpu");
  ASSERT_TRUE(r.ok()) << r.err().to_string();
  EXPECT_EQ(*r, ls({{"__name__", "my-app.cpu"}}));
}

TEST(ingest_request, app_name_with_labels_sorted_and_trimmed) {
  auto r = parse_app_name(" svc/a_b.c { zone = eu-1 , env=prod,host=h:1 } ");
  ASSERT_TRUE(r.ok()) << r.err().to_string();
  EXPECT_EQ(*r, ls({{"__name__", "svc/a_b.c"}, {"env", "prod"}, {"host", "h:1"}, {"zone", "eu-1"}}));
}

TEST(ingest_request, app_name_node_sdk_style) {
  // Values contain '/', '.', '=' and spaces; they run raw up to ',' or '}'.
  auto r = parse_app_name(
      "nodeapp{otel.scope.name=com.grafana.pyroscope/nodejs,otel.scope.version=0.4.1,"
      "process.runtime.name=nodejs,process.runtime.version=v20.11.0,k=a=b c}");
  ASSERT_TRUE(r.ok()) << r.err().to_string();
  ASSERT_EQ(r->size(), 6u);
  EXPECT_EQ((*r)[0], (label{"__name__", "nodeapp"}));
  EXPECT_EQ((*r)[1], (label{"k", "a=b c"}));
  EXPECT_EQ((*r)[2], (label{"otel.scope.name", "com.grafana.pyroscope/nodejs"}));
}

TEST(ingest_request, app_name_empty_braces_and_trailing_comma) {
  auto a = parse_app_name("app{}");
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(*a, ls({{"__name__", "app"}}));
  auto b = parse_app_name("app{a=1,}");
  ASSERT_TRUE(b.ok()) << b.err().to_string();
  EXPECT_EQ(*b, ls({{"__name__", "app"}, {"a", "1"}}));
  auto c = parse_app_name("app{a=}");  // empty value: no label
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(*c, ls({{"__name__", "app"}}));
}

TEST(ingest_request, app_name_session_id_kept_for_normalize_to_drop) {
  auto r = parse_app_name("app{__session_id__=abc}");
  ASSERT_TRUE(r.ok()) << r.err().to_string();
  EXPECT_EQ(*r, ls({{"__name__", "app"}, {"__session_id__", "abc"}}));
}

TEST(ingest_request, app_name_errors) {
  struct tc {
    const char* in;
    const char* want;  // substring of the message
  } cases[] = {
      {"", "empty application name"},
      {"   ", "empty application name"},
      {"{a=b}", "empty application name"},
      {"my app", "contains ' '"},
      {"app!{a=b}", "contains '!'"},
      {"app{a=b", "missing '}'"},
      {"app{a=b,", "missing '}'"},
      {"app{", "missing '}'"},
      {"app{a=b}x", "after '}'"},
      {"app{a b=c}", "contains ' '"},
      {"app{a-b=c}", "contains '-'"},
      {"app{a=1,a=2}", "duplicate label name 'a'"},
      {"app{=x}", "empty label name"},
      {"app{a}", "has no '='"},
      {"app{__name__=x}", "duplicate label name '__name__'"},
      {"app}", "contains '}'"},
  };
  for (const auto& c : cases) {
    auto r = parse_app_name(c.in);
    ASSERT_FALSE(r.ok()) << c.in;
    EXPECT_EQ(r.err().code, errc::bad_labels) << c.in;
    EXPECT_NE(r.err().message.find(c.want), std::string::npos) << c.in << " -> " << r.err().message;
  }
}

TEST(ingest_request, app_name_control_bytes_are_escaped_in_messages) {
  auto r = parse_app_name(std::string_view("a\x01\n", 3));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.err().message.find('\x01'), std::string::npos);
  EXPECT_NE(r.err().message.find("\\x01"), std::string::npos);
}

// ---- parse_attime -------------------------------------------------------------------------------

constexpr int64_t k_sec = 1'000'000'000;
constexpr int64_t k_now = 1'700'000'000LL * k_sec + 123;

TEST(ingest_request, attime_now_and_relative) {
  EXPECT_EQ(*parse_attime("now", k_now), k_now);
  EXPECT_EQ(*parse_attime(" now ", k_now), k_now);
  EXPECT_EQ(*parse_attime("now-15s", k_now), k_now - 15 * k_sec);
  EXPECT_EQ(*parse_attime("now-30m", k_now), k_now - 30 * 60 * k_sec);
  EXPECT_EQ(*parse_attime("now-1h", k_now), k_now - 3600 * k_sec);
  EXPECT_EQ(*parse_attime("now-2d", k_now), k_now - 2 * 86400 * k_sec);
  EXPECT_EQ(*parse_attime("now-1w", k_now), k_now - 7 * 86400 * k_sec);
}

TEST(ingest_request, attime_digits_by_length) {
  EXPECT_EQ(*parse_attime("1700000000", 0), 1'700'000'000LL * k_sec);            // 10: seconds
  EXPECT_EQ(*parse_attime("1700000000123", 0), 1'700'000'000'123LL * 1'000'000);  // 13: ms
  EXPECT_EQ(*parse_attime("1700000000123456", 0), 1'700'000'000'123'456LL * 1000);  // 16: µs
  EXPECT_EQ(*parse_attime("1700000000123456789", 0), 1'700'000'000'123'456'789LL);  // 19: ns
  EXPECT_EQ(*parse_attime("0", 0), 0);
  EXPECT_EQ(*parse_attime("12", 0), 12 * k_sec);
  EXPECT_EQ(*parse_attime("00001700000000", 0), 1'700'000'000LL * k_sec);  // 14 digits: seconds
  EXPECT_FALSE(parse_attime("170000000012", 0).ok());  // 12 digits: seconds, beyond int64 ns
}

TEST(ingest_request, attime_yyyymmdd) {
  EXPECT_EQ(*parse_attime("19700101", 0), 0);
  EXPECT_EQ(*parse_attime("20240229", 0), 1'709'164'800LL * k_sec);
  EXPECT_EQ(*parse_attime("20231114", 0), 1'699'920'000LL * k_sec);
}

TEST(ingest_request, attime_errors) {
  for (const char* s : {"", "  ", "abc", "now+1h", "now-1x", "now-", "now-h", "now1h", "nowx", "-5", "1.5",
                        "20241340", "20230229", "20240001", "12345678901234567890", "99999999999999999",
                        "now-99999999999999999w", "1e9"}) {
    auto r = parse_attime(s, k_now);
    ASSERT_FALSE(r.ok()) << s;
    EXPECT_EQ(r.err().code, errc::bad_time_range) << s;
    EXPECT_FALSE(r.err().message.empty());
  }
}

// ---- multipart ----------------------------------------------------------------------------------

TEST(ingest_request, boundary_forms) {
  EXPECT_EQ(*multipart_boundary("multipart/form-data; boundary=abc123"), "abc123");
  EXPECT_EQ(*multipart_boundary("Multipart/Form-Data;BOUNDARY=\"a b;c\""), "a b;c");
  EXPECT_EQ(*multipart_boundary("multipart/form-data; charset=utf-8; boundary=x-y_z ; other=1"), "x-y_z");
  EXPECT_EQ(*multipart_boundary("multipart/form-data; a=\"b;boundary=no\"; boundary=yes"), "yes");
  EXPECT_EQ(*multipart_boundary("multipart/form-data; boundary=----WebKitFormBoundary7MA4YWxkTrZu0gW"),
            "----WebKitFormBoundary7MA4YWxkTrZu0gW");
}

TEST(ingest_request, boundary_errors) {
  for (const char* ct : {"application/octet-stream", "", "multipart/form-data", "multipart/form-data; boundary=",
                         "multipart/form-data; boundary=\"\"", "multipart/form-data; boundary=\"abc",
                         "multipart/mixed; boundary=abc"}) {
    auto r = multipart_boundary(ct);
    ASSERT_FALSE(r.ok()) << ct;
    EXPECT_EQ(r.err().code, errc::bad_request_body) << ct;
  }
  auto r = multipart_boundary("multipart/form-data; boundary=" + std::string(71, 'a'));
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.err().message.find("71"), std::string::npos);
}

// What Go's mime/multipart writer produces (pyroscope-go).
std::string go_style_body(std::string_view boundary, std::string_view profile, std::string_view config) {
  std::string b;
  b += "--";
  b += boundary;
  b += "\r\nContent-Disposition: form-data; name=\"profile\"; filename=\"profile.pprof\"\r\n"
       "Content-Type: application/octet-stream\r\n\r\n";
  b += profile;
  b += "\r\n--";
  b += boundary;
  b += "\r\nContent-Disposition: form-data; name=\"sample_type_config\"; filename=\"sample_type_config.json\"\r\n"
       "Content-Type: application/octet-stream\r\n\r\n";
  b += config;
  b += "\r\n--";
  b += boundary;
  b += "--\r\n";
  return b;
}

TEST(ingest_request, multipart_with_real_gzipped_profile) {
  std::string gz = read_file(testdata_dir() + "/go/workpool.cpu.000.pb.gz");
  ASSERT_GT(gz.size(), 100u);
  // Gzip data contains CR and LF bytes; make sure this one does.
  EXPECT_NE(gz.find('\n'), std::string::npos);
  const std::string boundary = "d4f1e62b2c5e0c8d5a8e7f2a9b3c1d0e4f5a6b7c8d9e0f1a2b3c4d5e6f7a";
  std::string config = R"({"contentions":{"display-name":"block_count"}})";
  std::string body = go_style_body(boundary, gz, config);
  auto ct = multipart_boundary("multipart/form-data; boundary=" + boundary);
  ASSERT_TRUE(ct.ok());
  auto parts = parse_multipart(body, *ct);
  ASSERT_TRUE(parts.ok()) << parts.err().to_string();
  ASSERT_EQ(parts->size(), 2u);
  const multipart_part* p = find_part(*parts, "profile");
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(p->filename, "profile.pprof");
  EXPECT_EQ(p->content_type, "application/octet-stream");
  EXPECT_EQ(p->data, gz);
  EXPECT_GE(p->data.data(), body.data());  // a view into the body
  EXPECT_LE(p->data.data() + p->data.size(), body.data() + body.size());
  ASSERT_NE(find_part(*parts, "sample_type_config"), nullptr);
  EXPECT_EQ(find_part(*parts, "sample_type_config")->data, config);
  EXPECT_EQ(find_part(*parts, "prev_profile"), nullptr);

  ASSERT_TRUE(pprof::is_gzip(as_bytes(p->data)));
  auto raw = pprof::gunzip(as_bytes(p->data), 64 << 20);
  ASSERT_TRUE(raw.ok()) << raw.err().to_string();
  auto prof = pprof::decode(as_bytes(*raw));
  ASSERT_TRUE(prof.ok()) << prof.err().to_string();
  EXPECT_EQ(prof->sample_types.size(), 2u);
}

TEST(ingest_request, multipart_lf_only_preamble_epilogue_unquoted) {
  std::string body =
      "this is a preamble\n--xyz\nContent-Disposition: form-data; name=profile; filename=p.pb\n\nAB\nC\n"
      "--xyz\ncontent-disposition: FORM-DATA; NAME=\"other\"\n\n\n--xyz--\nepilogue --xyz\n";
  auto parts = parse_multipart(body, "xyz");
  ASSERT_TRUE(parts.ok()) << parts.err().to_string();
  ASSERT_EQ(parts->size(), 2u);
  EXPECT_EQ((*parts)[0].name, "profile");
  EXPECT_EQ((*parts)[0].filename, "p.pb");
  EXPECT_EQ((*parts)[0].data, "AB\nC");
  EXPECT_EQ((*parts)[1].name, "other");
  EXPECT_EQ((*parts)[1].data, "");
}

TEST(ingest_request, multipart_boundary_lookalikes_in_data) {
  // "--b" inside data not preceded by a line break, and "\r\n--bX" (boundary followed by another
  // byte) are data, as in Go's reader. A quoted filename may contain ';' and escaped quotes.
  std::string data = std::string("x--b\r\n--bX\r\n--b-\r\n\0\r\n", 20);
  std::string body = "--b\r\nContent-Disposition: form-data; name=\"f\"; filename=\"a;\\\"b\\\".bin\"\r\n\r\n" + data +
                     "\r\n--b  \r\nContent-Disposition: form-data; name=\"g\"\r\n\r\n\r\n\r\n--b--";
  auto parts = parse_multipart(body, "b");
  ASSERT_TRUE(parts.ok()) << parts.err().to_string();
  ASSERT_EQ(parts->size(), 2u);
  EXPECT_EQ((*parts)[0].filename, "a;\"b\".bin");
  EXPECT_EQ((*parts)[0].data, data);
  EXPECT_EQ((*parts)[1].data, "\r\n");
}

TEST(ingest_request, multipart_folded_and_unknown_headers) {
  std::string body =
      "--q\r\nX-Other: 1\r\n  folded\r\nContent-Disposition: form-data;\r\n name=\"n\"\r\n\r\nv\r\n--q--\r\n";
  auto parts = parse_multipart(body, "q");
  ASSERT_TRUE(parts.ok()) << parts.err().to_string();
  ASSERT_EQ(parts->size(), 1u);
  EXPECT_EQ((*parts)[0].name, "n");
  EXPECT_EQ((*parts)[0].data, "v");
}

TEST(ingest_request, multipart_errors) {
  struct tc {
    std::string body;
    const char* want;
  } cases[] = {
      {"", "no delimiter"},
      {"hello world", "no delimiter"},
      {"--b\r\nContent-Disposition: form-data; name=\"f\"\r\n\r\ndata", "not terminated by a delimiter"},
      {"--b\r\nContent-Disposition: form-data; name=\"f\"\r\n\r\ndata\r\n--b", "not terminated by a delimiter"},
      {"--b\r\nContent-Disposition: form-data; name=\"f\"\r\n\r\ndata\r\n--b \r\n", "not terminated by an empty line"},
      {"--b\r\nContent-Disposition: form-data; name=\"f\"\r\n", "not terminated by an empty line"},
      {"--b\r\nno colon here\r\n\r\nx\r\n--b--", "malformed header line"},
      {"--b\r\n: empty name\r\n\r\nx\r\n--b--", "malformed header line"},
      {"--b\r\n folded first\r\n\r\nx\r\n--b--", "continuation"},
      {"--bgarbage\r\n--b junk\r\n", "no delimiter"},
  };
  for (const auto& c : cases) {
    auto r = parse_multipart(c.body, "b");
    ASSERT_FALSE(r.ok()) << c.body;
    EXPECT_EQ(r.err().code, errc::bad_request_body);
    EXPECT_NE(r.err().message.find(c.want), std::string::npos) << c.body << " -> " << r.err().message;
  }
  EXPECT_FALSE(parse_multipart("--b--", "").ok());
  EXPECT_FALSE(parse_multipart("--b--", std::string(71, 'b')).ok());
}

TEST(ingest_request, multipart_close_only_and_part_limit) {
  auto r = parse_multipart("--b--\r\n", "b");
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->empty());
  std::string body;
  for (int i = 0; i < 5; ++i) body += "--b\r\nContent-Disposition: form-data; name=\"p\"\r\n\r\nx\r\n";
  body += "--b--";
  EXPECT_TRUE(parse_multipart(body, "b", 5).ok());
  auto over = parse_multipart(body, "b", 4);
  ASSERT_FALSE(over.ok());
  EXPECT_NE(over.err().message.find("more than 4 parts"), std::string::npos);
}

TEST(ingest_request, multipart_hostile_inputs_are_linear) {
  // Many near-delimiters and a long boundary made of one repeated byte: must finish quickly.
  const std::string boundary(70, 'a');
  std::string body = "--" + boundary + "\r\n\r\n";
  std::string near = "\n--" + std::string(69, 'a') + "b";
  while (body.size() < (8u << 20)) body += near;
  auto r = parse_multipart(body, boundary);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.err().message.find("not terminated by a delimiter"), std::string::npos);
  // A body of only line breaks and dashes.
  std::string junk(4u << 20, '\n');
  for (size_t i = 0; i < junk.size(); i += 3) junk[i] = '-';
  auto j = parse_multipart(junk, "-");
  EXPECT_FALSE(j.ok());
}

TEST(ingest_request, multipart_truncations_never_crash) {
  std::string body = go_style_body("BOUND", std::string("\x1f\x8b\r\n--BOUND\r\x00zz", 14), "{}");
  for (size_t n = 0; n <= body.size(); ++n) {
    auto r = parse_multipart(std::string_view(body).substr(0, n), "BOUND");
    if (r.ok()) {
      EXPECT_GE(n, body.size() - 2);  // only the final CRLF after the close delimiter may go
    }
  }
}

TEST(ingest_request, random_inputs_never_crash) {
  // Inputs drawn from the characters that matter to each parser.
  std::mt19937_64 rng(3);
  const std::string alphabet = std::string("ab{}=,- \r\n\"\\;:/.09now") + '\0' + '\xff';
  for (int t = 0; t < 20000; ++t) {
    std::string s(rng() % 40, ' ');
    for (char& c : s) c = alphabet[rng() % alphabet.size()];
    auto a = parse_app_name(s);
    if (a.ok()) {
      EXPECT_EQ((*a)[0].name, "__name__");
    }
    auto b = parse_attime(s, k_now);
    (void)b;
    auto c = multipart_boundary("multipart/form-data;" + s);
    (void)c;
    auto d = parse_multipart("--a\r\n" + s + "\r\n--a--", "a");
    if (d.ok()) {
      for (const auto& part : *d) EXPECT_LE(part.data.size(), s.size() + 8);
    }
  }
}

}  // namespace
}  // namespace hearth
