#include "format/uuid.hpp"

namespace hearth {

bool parse_uuid(std::string_view s, uint64_t& hi, uint64_t& lo) {
  hi = lo = 0;
  int n = 0;
  for (char c : s) {
    if (c == '-') continue;
    const int v = (c >= '0' && c <= '9')   ? c - '0'
                  : (c >= 'a' && c <= 'f') ? c - 'a' + 10
                  : (c >= 'A' && c <= 'F') ? c - 'A' + 10
                                           : -1;
    if (v < 0 || n >= 32) {
      hi = lo = 0;
      return false;
    }
    if (n < 16) hi = hi << 4 | static_cast<uint64_t>(v);
    else lo = lo << 4 | static_cast<uint64_t>(v);
    ++n;
  }
  if (n != 32) {
    hi = lo = 0;
    return false;
  }
  return true;
}

std::string format_uuid(uint64_t hi, uint64_t lo) {
  static constexpr char digits[] = "0123456789abcdef";
  std::string out;
  out.reserve(36);
  for (int i = 0; i < 32; ++i) {
    if (i == 8 || i == 12 || i == 16 || i == 20) out.push_back('-');
    const uint64_t w = i < 16 ? hi : lo;
    out.push_back(digits[(w >> (60 - 4 * (i % 16))) & 0xf]);
  }
  return out;
}

}  // namespace hearth
