#pragma once
// Helpers for the io/ tests (and other modules' tests that need files): a fresh temporary
// directory removed at scope exit, and the two real backends by parameter.

#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <ostream>
#include <string>
#include <system_error>

#include "io/file.hpp"

/// Asserts that a `status` or `result` is ok, printing its error otherwise.
#define HEARTH_ASSERT_OK(expr)                                                     \
  do {                                                                             \
    const auto& hearth_ok_ = (expr);                                               \
    ASSERT_TRUE(hearth_ok_.ok()) << #expr << ": " << hearth_ok_.err().to_string(); \
  } while (0)
/// Same, non-fatal.
#define HEARTH_EXPECT_OK(expr)                                                     \
  do {                                                                             \
    const auto& hearth_ok_ = (expr);                                               \
    EXPECT_TRUE(hearth_ok_.ok()) << #expr << ": " << hearth_ok_.err().to_string(); \
  } while (0)

namespace hearth::io::testing {

/// A new directory under /tmp (mkdtemp), removed with its content on destruction.
/// Thread-safety: none.
class temp_dir {
 public:
  temp_dir() {
    char tmpl[] = "/tmp/hearth-io-test-XXXXXX";
    if (::mkdtemp(tmpl) != nullptr) path_ = tmpl;
  }
  temp_dir(const temp_dir&) = delete;
  temp_dir& operator=(const temp_dir&) = delete;
  ~temp_dir() {
    std::error_code ec;
    if (!path_.empty()) std::filesystem::remove_all(path_, ec);
  }
  /// The directory, or "" if mkdtemp failed.
  const std::string& path() const { return path_; }
  /// `path()/name`.
  std::string operator/(std::string_view name) const { return path_ + "/" + std::string(name); }

 private:
  std::string path_;
};

/// Builds a backend or fails the current test.
inline std::unique_ptr<file_system> make_backend_or_fail(backend b) {
  auto fs = make_file_system(b);
  EXPECT_TRUE(fs.ok()) << (fs.ok() ? "" : fs.err().to_string());
  return fs.ok() ? std::move(*fs) : nullptr;
}

/// How gtest prints a backend parameter.
inline std::string backend_label(backend b) {
  switch (b) {
    case backend::automatic:
      return "automatic";
    case backend::io_uring:
      return "io_uring";
    case backend::posix:
      return "posix";
  }
  return "?";
}

/// Test-name suffix for a parameterized backend.
inline std::string backend_name(const ::testing::TestParamInfo<backend>& info) {
  return backend_label(info.param);
}

/// Both real backends; tests parameterized over them run against each.
inline auto real_backends() {
  return ::testing::Values(backend::posix, backend::io_uring);
}

/// A test parameterized over the backends: a fresh directory `dir_` and the backend `fs_`.
class backend_test : public ::testing::TestWithParam<backend> {
 protected:
  void SetUp() override {
    ASSERT_FALSE(dir_.path().empty());
    fs_ = make_backend_or_fail(GetParam());
    ASSERT_NE(fs_, nullptr);
  }

  temp_dir dir_;
  std::unique_ptr<file_system> fs_;
};

}  // namespace hearth::io::testing

namespace hearth::io {
/// Found by gtest through ADL, for readable failure messages.
inline void PrintTo(backend b, std::ostream* os) {
  *os << testing::backend_label(b);
}
}  // namespace hearth::io
