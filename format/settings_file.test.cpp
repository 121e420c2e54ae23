#include "format/settings_file.hpp"

#include <gtest/gtest.h>

namespace hearth {
namespace {

TEST(Settings, ApplyRefusesOlderWritesAndRoundTrips) {
  settings_map m;
  ASSERT_TRUE(apply_setting(m, "pluginSettings", {"{\"a\":1}", 100}).ok());
  ASSERT_TRUE(apply_setting(m, "other", {"x", 5}).ok());
  auto older = apply_setting(m, "pluginSettings", {"{\"a\":0}", 99});
  ASSERT_FALSE(older.ok());
  EXPECT_EQ(older.err().code, errc::already_exists);
  EXPECT_EQ(m["pluginSettings"].value, "{\"a\":1}");
  ASSERT_TRUE(apply_setting(m, "pluginSettings", {"{\"a\":2}", 100}).ok());  // same time wins
  EXPECT_FALSE(apply_setting(m, "", {"v", 1}).ok());

  auto file = encode_settings(m);
  auto back = decode_settings(file);
  ASSERT_TRUE(back.ok()) << back.err().to_string();
  EXPECT_EQ(*back, m);
  EXPECT_EQ(back->begin()->first, "other");  // ordered by name
}

TEST(Settings, DeleteHonoursModificationTime) {
  settings_map m;
  ASSERT_TRUE(apply_setting(m, "k", {"v", 50}).ok());
  EXPECT_EQ(delete_setting(m, "k", 10).err().code, errc::already_exists);
  EXPECT_TRUE(delete_setting(m, "k", 50).ok());
  EXPECT_TRUE(m.empty());
  EXPECT_TRUE(delete_setting(m, "absent", 0).ok());
}

TEST(Settings, EveryFlippedByteOrTruncationIsCorrupted) {
  settings_map m;
  ASSERT_TRUE(apply_setting(m, "pluginSettings", {"{\"enableFlameGraphDotComExport\":true}", 7}).ok());
  std::string file = encode_settings(m);
  for (size_t i = 0; i < file.size(); ++i) {
    std::string bad = file;
    bad[i] = static_cast<char>(bad[i] ^ 0x20);
    auto r = decode_settings(bad);
    ASSERT_FALSE(r.ok()) << "flip at " << i;
    EXPECT_EQ(r.err().code, errc::corrupted);
  }
  for (size_t n = 0; n < file.size(); ++n) EXPECT_FALSE(decode_settings(file.substr(0, n)).ok());
  auto empty = decode_settings(encode_settings({}));
  ASSERT_TRUE(empty.ok());
  EXPECT_TRUE(empty->empty());
}

}  // namespace
}  // namespace hearth
