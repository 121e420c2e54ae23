#include "format/gzip.hpp"

#include <gtest/gtest.h>

#include "format/pprof.hpp"

namespace hearth {
namespace {

TEST(Gzip, RoundTripsThroughGunzipAtEveryLevel) {
  std::string data;
  for (int i = 0; i < 5000; ++i) data += "frame-" + std::to_string(i % 97) + ";";
  for (int level : {1, 6, 12}) {
    std::string gz = gzip_compress(data, level);
    ASSERT_GE(gz.size(), 18u);
    EXPECT_EQ(static_cast<unsigned char>(gz[0]), 0x1f);
    EXPECT_EQ(static_cast<unsigned char>(gz[1]), 0x8b);
    EXPECT_LT(gz.size(), data.size() / 4) << "level " << level;
    auto back = pprof::gunzip(as_bytes(gz), data.size());
    ASSERT_TRUE(back.ok()) << back.err().to_string();
    EXPECT_EQ(*back, data);
  }
  auto empty = pprof::gunzip(as_bytes(gzip_compress("")), 10);
  ASSERT_TRUE(empty.ok());
  EXPECT_EQ(*empty, "");
}

}  // namespace
}  // namespace hearth
