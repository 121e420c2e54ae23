// libFuzzer target: label selector and profile type ID parsers on untrusted text.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "query/selector.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace hearth;
  std::string_view in(reinterpret_cast<const char*>(data), size);
  (void)query::parse_selector(in);
  (void)query::parse_profile_type(in);
  return 0;
}
