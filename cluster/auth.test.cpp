#include "cluster/auth.hpp"

#include <gtest/gtest.h>

namespace hearth {
namespace {

TEST(Base64, DecodesWithAndWithoutPadding) {
  EXPECT_EQ(*base64_decode("YWxpY2U6c2VjcmV0"), "alice:secret");
  EXPECT_EQ(*base64_decode("YQ=="), "a");
  EXPECT_EQ(*base64_decode("YWI="), "ab");
  EXPECT_EQ(*base64_decode(""), "");
  EXPECT_FALSE(base64_decode("YQ="));      // length not a multiple of 4
  EXPECT_FALSE(base64_decode("Y$==")); // bad character
  EXPECT_FALSE(base64_decode("Y===")); // too much padding
  EXPECT_FALSE(base64_decode("YQ==YQ=="));  // data after padding
}

TEST(Auth, DisabledAcceptsEverything) {
  auth_config cfg;
  EXPECT_TRUE(check_authorization(std::nullopt, cfg).ok());
  EXPECT_TRUE(check_authorization("Bearer whatever", cfg).ok());
}

TEST(Auth, BearerTokens) {
  auth_config cfg;
  cfg.bearer_tokens = {"t0ken", "other"};
  EXPECT_TRUE(check_authorization("Bearer t0ken", cfg).ok());
  EXPECT_TRUE(check_authorization("bearer other", cfg).ok());
  auto missing = check_authorization(std::nullopt, cfg);
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.err().code, errc::unauthenticated);
  EXPECT_NE(missing.err().message.find("Authorization header"), std::string::npos);
  auto wrong = check_authorization("Bearer t0ke", cfg);
  ASSERT_FALSE(wrong.ok());
  EXPECT_EQ(wrong.err().message, "invalid bearer token");
  auto basic = check_authorization("Basic YWxpY2U6c2VjcmV0", cfg);
  ASSERT_FALSE(basic.ok());
  EXPECT_NE(basic.err().message.find("use Bearer"), std::string::npos);
  auto scheme = check_authorization("Digest abc", cfg);
  ASSERT_FALSE(scheme.ok());
  EXPECT_NE(scheme.err().message.find("'Digest'"), std::string::npos);
}

TEST(Auth, BasicUsers) {
  auth_config cfg;
  cfg.basic_users = {"alice:secret"};
  EXPECT_TRUE(check_authorization("Basic YWxpY2U6c2VjcmV0", cfg).ok());
  auto wrong = check_authorization("Basic YWxpY2U6c2VjcmVU", cfg);  // alice:secreT
  ASSERT_FALSE(wrong.ok());
  EXPECT_EQ(wrong.err().message, "invalid user or password");
  EXPECT_FALSE(check_authorization("Basic !!!!", cfg).ok());
  EXPECT_FALSE(check_authorization("Bearer secret", cfg).ok());
  // The message never echoes the credentials.
  EXPECT_EQ(wrong.err().message.find("YWxp"), std::string::npos);
}

}  // namespace
}  // namespace hearth
