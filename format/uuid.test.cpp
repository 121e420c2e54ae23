#include "format/uuid.hpp"

#include <gtest/gtest.h>

namespace hearth {

TEST(uuid, round_trips_the_canonical_form) {
  uint64_t hi = 0, lo = 0;
  ASSERT_TRUE(parse_uuid("0123ABCD-4567-89ef-0011-223344556677", hi, lo));
  EXPECT_EQ(hi, 0x0123abcd456789efULL);
  EXPECT_EQ(lo, 0x0011223344556677ULL);
  EXPECT_EQ(format_uuid(hi, lo), "0123abcd-4567-89ef-0011-223344556677");
  ASSERT_TRUE(parse_uuid("0123abcd456789ef0011223344556677", hi, lo));
  EXPECT_EQ(format_uuid(hi, lo), "0123abcd-4567-89ef-0011-223344556677");
}

TEST(uuid, refuses_what_is_not_one) {
  uint64_t hi = 1, lo = 1;
  for (const char* bad : {"", "0123abcd", "0123abcd-4567-89ef-0011-2233445566778",
                          "0123abcd-4567-89ef-0011-22334455667g", "not a uuid at all, no"}) {
    EXPECT_FALSE(parse_uuid(bad, hi, lo)) << bad;
    EXPECT_EQ(hi, 0u);
    EXPECT_EQ(lo, 0u);
  }
}

}  // namespace hearth
