// read_segment_rows through both real backends: what it reads decodes to the rows the whole file
// gives, and a file whose framing is damaged decodes to the error the whole file gives.

#include "io/segment_file.hpp"

#include <gtest/gtest.h>

#include "io/test_util.hpp"

namespace hearth::io {
namespace {

// 200 series of 30 profiles, one sample each on one of two stacks.
block_data small_block() {
  block_data b;
  b.syms.strings = {"", "main", "work", "service_name", "api", "pod"};
  b.syms.functions = {{1, 1, 0, 0}, {2, 2, 0, 0}};
  b.syms.lines = {{0, 10}, {1, 20}};
  b.syms.locations = {{0x10, 0, 1, 0}, {0x20, 1, 1, 0}};
  b.stacks = {{0, 0}, {0, 0}, {1, 1}};
  for (uint32_t s = 0; s < 200; ++s) {
    b.syms.strings.push_back("pod-" + std::to_string(s));
    b.series.push_back({static_cast<uint32_t>(b.labels.size()), 2});
    b.labels.push_back({5, static_cast<uint32_t>(b.syms.strings.size() - 1)});
    b.labels.push_back({3, 4});
  }
  const int64_t t0 = 1'767'225'600'000'000'000;
  for (uint32_t s = 0; s < 200; ++s)
    for (int64_t k = 0; k < 30; ++k) {
      const auto i = static_cast<uint32_t>(b.samples.size());
      const int64_t v = 1 + (s * 7 + k) % 100;
      b.samples.push_back({1 + static_cast<uint32_t>(k % 2), v});
      b.profiles.push_back({s, t0 + k * 15'000'000'000, 15'000'000'000, v, i, 1, s + 1,
                            static_cast<uint64_t>(k) + 1});
    }
  b.min_time_ns = t0;
  b.max_time_ns = t0 + 29 * 15'000'000'000;
  return b;
}

class io_segment_file : public testing::backend_test {};

TEST_P(io_segment_file, reads_what_a_rows_decode_needs) {
  auto file = encode_segment(small_block(), segment_codec::zstd, 7);
  HEARTH_ASSERT_OK(file);
  const std::string path = dir_ / "L1-1.hseg";
  HEARTH_ASSERT_OK(fs_->write_file_atomic(path, as_bytes(*file)));
  for (auto fields : {row_fields::columns, row_fields::all}) {
    auto want = decode_segment_rows(as_bytes(*file), fields);
    HEARTH_ASSERT_OK(want);
    auto image = read_segment_rows(*fs_, path, fields);
    HEARTH_ASSERT_OK(image);
    EXPECT_EQ(image->size, file->size());
    auto got = decode_segment_rows(image->view(), fields);
    HEARTH_ASSERT_OK(got);
    EXPECT_EQ(got->syms.strings, want->syms.strings);
    EXPECT_EQ(row_count(*got), 6000u);
    EXPECT_EQ(got->rows.series, want->rows.series);
    EXPECT_EQ(got->rows.time_ns, want->rows.time_ns);
    EXPECT_EQ(got->rows.total, want->rows.total);
    ASSERT_EQ(got->profiles.size(), want->profiles.size());
    for (size_t i = 0; i < got->profiles.size(); ++i) {
      EXPECT_EQ(got->profiles[i].id_lo, want->profiles[i].id_lo);
      EXPECT_EQ(got->profiles[i].duration_ns, want->profiles[i].duration_ns);
    }
  }
}

TEST_P(io_segment_file, damaged_framing_is_reported_as_for_the_whole_file) {
  auto file = encode_segment(small_block(), segment_codec::lz4, 7);
  HEARTH_ASSERT_OK(file);
  const std::string path = dir_ / "L1-2.hseg";
  // A bad trailer magic, a footer offset out of range, a footer byte flipped, a short file.
  std::vector<std::string> bad(4, *file);
  bad[0].back() ^= 1;
  bad[1][bad[1].size() - 12] ^= 0x40;
  bad[2][bad[2].size() - 40] ^= 1;
  bad[3].resize(15);
  for (const std::string& b : bad) {
    HEARTH_ASSERT_OK(fs_->write_file_atomic(path, as_bytes(b)));
    auto want = decode_segment_rows(as_bytes(b), row_fields::columns);
    ASSERT_FALSE(want.ok());
    auto image = read_segment_rows(*fs_, path, row_fields::columns);
    HEARTH_ASSERT_OK(image);
    auto got = decode_segment_rows(image->view(), row_fields::columns);
    ASSERT_FALSE(got.ok());
    EXPECT_EQ(got.err().code, errc::corrupted);
    EXPECT_EQ(got.err().message, want.err().message);
  }
  auto missing = read_segment_rows(*fs_, dir_ / "gone.hseg", row_fields::all);
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.err().code, errc::not_found);
}

TEST_P(io_segment_file, reads_a_footer_alone) {
  segment_info meta;
  meta.block_id = 77;
  meta.level = 2;
  meta.sources = {70, 71, 72};
  auto file = encode_segment(small_block(), segment_codec::zstd, meta);
  HEARTH_ASSERT_OK(file);
  const std::string path = dir_ / "L2-77.hseg";
  HEARTH_ASSERT_OK(fs_->write_file_atomic(path, as_bytes(*file)));
  auto got = read_segment_footer(*fs_, path);
  HEARTH_ASSERT_OK(got);
  EXPECT_EQ(*got, *read_segment_info(as_bytes(*file)));
  EXPECT_EQ(got->sources, meta.sources);
  EXPECT_EQ(got->profiles, 6000u);
  // A damaged footer (or trailer) is corrupted, as read_segment_info says; a gone file not_found.
  std::string bad = *file;
  bad[bad.size() - 30] ^= 1;
  HEARTH_ASSERT_OK(fs_->write_file_atomic(path, as_bytes(bad)));
  got = read_segment_footer(*fs_, path);
  ASSERT_FALSE(got.ok());
  EXPECT_EQ(got.err().code, errc::corrupted);
  EXPECT_EQ(got.err().message, read_segment_info(as_bytes(bad)).err().message);
  got = read_segment_footer(*fs_, dir_ / "gone.hseg");
  ASSERT_FALSE(got.ok());
  EXPECT_EQ(got.err().code, errc::not_found);
}

INSTANTIATE_TEST_SUITE_P(backends, io_segment_file, testing::real_backends(),
                         testing::backend_name);

}  // namespace
}  // namespace hearth::io
