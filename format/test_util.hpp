#pragma once
// Helpers shared by the format/ tests: where the shared testdata lives, reading and decoding its
// profiles, and the expected totals `go tool pprof` computed for them (expected/<dir>/<name>/).

#include <gtest/gtest.h>

#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <utility>

#include "format/coding.hpp"
#include "format/pprof.hpp"

namespace hearth::test {

/// The shared testdata directory: $HEARTH_TESTDATA if set, else
/// $HEARTH_SOURCE_ROOT/../shared/testdata, else ../shared/testdata relative to the working
/// directory.
inline std::string testdata_dir() {
  if (const char* d = std::getenv("HEARTH_TESTDATA"); d != nullptr && *d != 0) return d;
  if (const char* r = std::getenv("HEARTH_SOURCE_ROOT"); r != nullptr && *r != 0)
    return (std::filesystem::path(r) / ".." / "shared" / "testdata").string();
  return (std::filesystem::path("..") / "shared" / "testdata").string();
}

/// The whole file as bytes; "" when it cannot be read (callers assert on what they got).
inline std::string read_file(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::ostringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

/// Reads and inflates a gzipped file into `out`. On failure adds a test failure naming the file and
/// returns false.
inline bool inflate_into(const std::string& path, std::string& out) {
  std::string gz = read_file(path);
  auto raw = pprof::gunzip(as_bytes(gz), 256 << 20);
  if (!raw.ok()) {
    ADD_FAILURE() << path << ": " << raw.err().to_string();
    return false;
  }
  out = std::move(*raw);
  return true;
}

/// A gzipped file, inflated; "" (and a test failure) when it cannot be.
inline std::string inflate_file(const std::string& path) {
  std::string out;
  inflate_into(path, out);
  return out;
}

/// A decoded real profile and the inflated buffer its strings point into.
struct loaded_profile {
  std::string raw;
  pprof::profile p;
};

/// Reads, inflates and decodes a gzipped pprof file. On failure adds a test failure naming the file
/// and returns nullptr.
inline std::unique_ptr<loaded_profile> load_profile(const std::string& path) {
  auto out = std::make_unique<loaded_profile>();
  if (!inflate_into(path, out->raw)) return nullptr;
  auto p = pprof::decode(as_bytes(out->raw));
  if (!p.ok()) {
    ADD_FAILURE() << path << ": " << p.err().to_string();
    return nullptr;
  }
  out->p = std::move(*p);
  return out;
}

/// `<type>/<unit> -> total` from expected/<dir>/<name>/totals.txt (the `samples N` line skipped),
/// zero totals included. Empty when the file is missing.
inline std::map<std::string, int64_t> expected_totals(const std::string& dir,
                                                      const std::string& name) {
  std::map<std::string, int64_t> out;
  std::ifstream f(testdata_dir() + "/expected/" + dir + "/" + name + "/totals.txt");
  std::string key;
  int64_t v;
  while (f >> key >> v)
    if (key.find('/') != std::string::npos) out[key] = v;
  return out;
}

/// expected_totals() without the zero totals: the sample types that become series.
inline std::map<std::string, int64_t> expected_nonzero_totals(const std::string& dir,
                                                              const std::string& name) {
  auto out = expected_totals(dir, name);
  std::erase_if(out, [](const auto& kv) { return kv.second == 0; });
  return out;
}

}  // namespace hearth::test
