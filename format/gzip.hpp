#pragma once
// gzip compression (libdeflate) for HTTP responses and pprof exports; the inflating side is
// pprof::gunzip (format/pprof.hpp), which also guards against decompression bombs.

#include <string>
#include <string_view>

namespace hearth {

/// A complete gzip member of `data`. Level 1 (fastest) .. 12 (smallest); 6 is gzip's default.
std::string gzip_compress(std::string_view data, int level = 6);

}  // namespace hearth
