#include "format/coding.hpp"

#include <gtest/gtest.h>

#include <random>

namespace hearth {
namespace {

TEST(coding, varints_round_trip) {
  encoder e;
  const int64_t vals[] = {0, 1, -1, 63, -64, 64, 1 << 20, INT64_MAX, INT64_MIN};
  for (auto v : vals) e.put_varint(v);
  e.put_uvarint(UINT64_MAX);
  e.put_u32(0xdeadbeef);
  e.put_u64(0x0123456789abcdefULL);
  e.put_string("hello");
  decoder d(e.buffer());
  for (auto v : vals) EXPECT_EQ(d.get_varint(), v);
  EXPECT_EQ(d.get_uvarint(), UINT64_MAX);
  EXPECT_EQ(d.get_u32(), 0xdeadbeefu);
  EXPECT_EQ(d.get_u64(), 0x0123456789abcdefULL);
  EXPECT_EQ(d.get_string(), "hello");
  EXPECT_TRUE(d.ok());
  EXPECT_TRUE(d.empty());
}

TEST(coding, uvarints_of_every_length_at_every_distance_from_the_end) {
  // Every bit length 0..64, each followed by 0..11 bytes of padding: the decoder's 8-byte and
  // bytewise paths must agree, and never read past the end.
  std::mt19937_64 rng(42);
  for (int bits = 0; bits <= 64; ++bits) {
    for (int pad = 0; pad <= 11; ++pad) {
      const uint64_t v = bits == 0 ? 0 : (rng() | (uint64_t{1} << 63)) >> (64 - bits);
      encoder e;
      e.put_uvarint(v);
      e.put_uvarint(v >> 1);  // a second one right behind it
      std::string buf = e.release();
      const size_t len = buf.size();
      buf.append(static_cast<size_t>(pad), '\x7f');
      decoder d(std::string_view(buf).substr(0, len + static_cast<size_t>(pad)));
      EXPECT_EQ(d.get_uvarint(), v) << bits << " bits, pad " << pad;
      EXPECT_EQ(d.get_uvarint(), v >> 1) << bits << " bits, pad " << pad;
      EXPECT_TRUE(d.ok());
      EXPECT_EQ(d.remaining(), static_cast<size_t>(pad));
    }
  }
  // A varint cut short by the end of the input fails, whatever its length.
  for (int n = 1; n <= 10; ++n) {
    std::string s(static_cast<size_t>(n), '\x80');
    decoder d(s);
    d.get_uvarint();
    EXPECT_FALSE(d.ok()) << n;
  }
}

TEST(coding, decoder_is_sticky_on_truncation) {
  encoder e;
  e.put_string("abcdef");
  std::string s = e.release();
  s.resize(4);
  decoder d(s);
  EXPECT_EQ(d.get_string(), "");
  EXPECT_FALSE(d.ok());
  EXPECT_EQ(d.get_u32(), 0u);
  EXPECT_FALSE(d.ok());
}

TEST(coding, overlong_uvarint_fails) {
  std::string s(11, '\xff');
  decoder d(s);
  d.get_uvarint();
  EXPECT_FALSE(d.ok());
}

TEST(coding, crc32c_known_vectors) {
  // RFC 3720 B.4 test vectors.
  EXPECT_EQ(crc32c(as_bytes("123456789")), 0xE3069283u);
  std::string zeros(32, '\0');
  EXPECT_EQ(crc32c(as_bytes(zeros)), 0x8A9136AAu);
  std::string ones(32, '\xff');
  EXPECT_EQ(crc32c(as_bytes(ones)), 0x62A8AB43u);
  // Chaining partial sums gives the same answer.
  EXPECT_EQ(crc32c(as_bytes("6789"), crc32c(as_bytes("12345"))), 0xE3069283u);
  // The same vectors through the portable (table) implementation.
  EXPECT_EQ(crc32c_portable(as_bytes("123456789")), 0xE3069283u);
  EXPECT_EQ(crc32c_portable(as_bytes(zeros)), 0x8A9136AAu);
  EXPECT_EQ(crc32c_portable(as_bytes(ones)), 0x62A8AB43u);
  EXPECT_EQ(crc32c_portable(as_bytes("6789"), crc32c_portable(as_bytes("12345"))), 0xE3069283u);
}

// crc32c() (the SSE4.2 instruction where the CPU has it) and the table fallback must agree on
// every length, alignment and chained initial value: on-disk checksums written by either are
// read back by the other.
TEST(coding, crc32c_matches_portable) {
  if (!crc32c_hardware()) GTEST_SKIP() << "no SSE4.2: crc32c() is crc32c_portable()";
  std::mt19937_64 rng(42);
  std::string buf(4096 + 16, '\0');
  for (char& c : buf) c = static_cast<char>(rng());
  for (size_t len = 0; len <= 600; ++len) {
    for (size_t off : {size_t{0}, size_t{1}, size_t{3}, size_t{7}}) {
      const auto init = static_cast<uint32_t>(rng());
      const bytes_view v = as_bytes(std::string_view(buf).substr(off, len));
      ASSERT_EQ(crc32c(v), crc32c_portable(v)) << "len " << len << " offset " << off;
      ASSERT_EQ(crc32c(v, init), crc32c_portable(v, init)) << "len " << len << " offset " << off;
    }
  }
  const bytes_view all = as_bytes(std::string_view(buf).substr(5, 4096));
  EXPECT_EQ(crc32c(all), crc32c_portable(all));
  EXPECT_EQ(crc32c(all.subspan(1000), crc32c(all.first(1000))), crc32c_portable(all));
}

}  // namespace
}  // namespace hearth
