#include "actors/ingest_limits.hpp"

#include <gtest/gtest.h>

namespace hearth {
namespace {

tenant_limits small() {
  tenant_limits l;
  l.ingestion_rate_bytes = 1000;
  l.ingestion_burst_bytes = 2000;
  l.ingestion_rate_profiles = 10;
  l.ingestion_burst_profiles = 20;
  l.max_series = 7;
  return l;
}

TEST(IngestLimiter, ByteBucketRefillsAtTheRate) {
  ingest_limiter lim(small(), {});
  EXPECT_TRUE(lim.admit_bytes("a", 1500, 100.0).ok());  // bucket starts full (2000)
  EXPECT_TRUE(lim.admit_bytes("a", 500, 100.0).ok());
  auto refused = lim.admit_bytes("a", 100, 100.0);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.err().code, errc::overloaded);
  EXPECT_NE(refused.err().message.find("limits.ingestion_rate_bytes=1000B/s"), std::string::npos)
      << refused.err().message;
  EXPECT_NE(refused.err().message.find("'a'"), std::string::npos);
  EXPECT_TRUE(lim.admit_bytes("a", 100, 100.125).ok());   // 0.125 s at 1000 B/s = 125 B
  EXPECT_FALSE(lim.admit_bytes("a", 100, 100.1875).ok());  // 25 + 62.5 B
  EXPECT_TRUE(lim.admit_bytes("b", 2000, 100.1875).ok());  // another tenant has its own bucket
}

TEST(IngestLimiter, RequestLargerThanTheBurstPassesOnAFullBucket) {
  ingest_limiter lim(small(), {});
  EXPECT_TRUE(lim.admit_bytes("a", 5000, 0).ok());  // full bucket: admitted, goes into debt
  EXPECT_FALSE(lim.admit_bytes("a", 1, 2.0).ok());  // -3000 + 2000 refilled < 1
  EXPECT_TRUE(lim.admit_bytes("a", 1, 3.1).ok());
}

TEST(IngestLimiter, ProfilesAndOverrides) {
  tenant_limits big = small();
  big.ingestion_rate_profiles = 0;  // unlimited for this tenant
  big.max_series = 100;
  ingest_limiter lim(small(), {{"vip", big}});
  EXPECT_EQ(lim.limits_of("vip").max_series, 100u);
  EXPECT_EQ(lim.limits_of("other").max_series, 7u);
  EXPECT_TRUE(lim.admit_profiles("a", 20, 0).ok());
  auto refused = lim.admit_profiles("a", 1, 0);
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.err().message.find("limits.ingestion_rate_profiles=10/s (burst 20)"), std::string::npos)
      << refused.err().message;
  EXPECT_TRUE(lim.admit_profiles("vip", 1000000, 0).ok());
}

TEST(IngestLimiter, ZeroMeansUnlimited) {
  tenant_limits l;
  l.ingestion_rate_bytes = 0;
  l.ingestion_rate_profiles = 0;
  ingest_limiter lim(l, {});
  for (int i = 0; i < 100; ++i) {
    EXPECT_TRUE(lim.admit_bytes("a", 1ull << 40, 0).ok());
    EXPECT_TRUE(lim.admit_profiles("a", 1ull << 30, 0).ok());
  }
}

TEST(HumanBytes, Units) {
  EXPECT_EQ(human_bytes(17), "17B");
  EXPECT_EQ(human_bytes(64ull << 20), "64MiB");
  EXPECT_EQ(human_bytes(1536), "1.5KiB");
}

}  // namespace
}  // namespace hearth
