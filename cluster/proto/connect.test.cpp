#include "cluster/proto/connect.hpp"

#include <gtest/gtest.h>

#include "querier.pb.h"
#include "types.pb.h"

namespace hearth {
namespace {

TEST(connect, codec_from_content_type) {
  EXPECT_EQ(*connect::codec_of("application/proto"), connect::codec::proto);
  EXPECT_EQ(*connect::codec_of("application/json; charset=utf-8"), connect::codec::json);
  EXPECT_FALSE(connect::codec_of("text/plain").ok());
  EXPECT_FALSE(connect::codec_of("").ok());
}

TEST(connect, json_accepts_camel_and_proto_names_and_string_ints) {
  querier::v1::SelectMergeStacktracesRequest a, b;
  ASSERT_TRUE(connect::decode(connect::codec::json,
                              R"({"profileTypeID":"x:y:z::","labelSelector":"{}","start":"1000","end":2000,"maxNodes":"5","unknownField":1})",
                              a)
                  .ok());
  EXPECT_EQ(a.profile_typeid(), "x:y:z::");
  EXPECT_EQ(a.start(), 1000);
  EXPECT_EQ(a.end(), 2000);
  EXPECT_EQ(a.max_nodes(), 5);
  ASSERT_TRUE(connect::decode(connect::codec::json,
                              R"({"profile_typeID":"t","label_selector":"{a=\"b\"}","format":"PROFILE_FORMAT_SANDWICH"})", b)
                  .ok());
  EXPECT_EQ(b.profile_typeid(), "t");
  EXPECT_EQ(b.label_selector(), "{a=\"b\"}");
}

TEST(connect, json_output_uses_strings_for_int64_and_omits_zero) {
  querier::v1::FlameGraph fg;
  fg.add_names("total");
  fg.add_levels()->add_values(0);
  fg.set_total(12345678901234);
  std::string s = connect::encode(connect::codec::json, fg);
  EXPECT_NE(s.find("\"total\":\"12345678901234\""), std::string::npos) << s;
  EXPECT_EQ(s.find("maxSelf"), std::string::npos) << s;
}

TEST(connect, bad_bodies_are_errors) {
  types::v1::LabelNamesRequest r;
  EXPECT_FALSE(connect::decode(connect::codec::json, "{not json", r).ok());
  EXPECT_FALSE(connect::decode(connect::codec::proto, "\xff\xff\xff", r).ok());
  EXPECT_TRUE(connect::decode(connect::codec::json, "", r).ok());
}

TEST(connect, error_body_and_status) {
  error e{errc::bad_selector, "unexpected \"}\""};
  EXPECT_EQ(connect::http_status(e.cls()), 400);
  EXPECT_EQ(connect::error_body(e),
            R"({"code":"invalid_argument","message":"bad_selector: unexpected \"}\""})");
  EXPECT_EQ(connect::http_status(error_class::overloaded), 429);
  EXPECT_EQ(connect::code_name(error_class::unimplemented), "unimplemented");
}

}  // namespace
}  // namespace hearth
