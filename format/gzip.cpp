#include "format/gzip.hpp"

#include <libdeflate.h>

#include <memory>

namespace hearth {

std::string gzip_compress(std::string_view data, int level) {
  struct free_compressor {
    void operator()(libdeflate_compressor* c) const { libdeflate_free_compressor(c); }
  };
  // One compressor per thread and level in use: allocating one costs more than compressing a
  // small response.
  thread_local std::unique_ptr<libdeflate_compressor, free_compressor> c;
  thread_local int c_level = 0;
  if (!c || c_level != level) {
    c.reset(libdeflate_alloc_compressor(level));
    c_level = level;
  }
  std::string out(libdeflate_gzip_compress_bound(c.get(), data.size()), '\0');
  size_t n = libdeflate_gzip_compress(c.get(), data.data(), data.size(), out.data(), out.size());
  out.resize(n);  // the bound always suffices, so n > 0
  return out;
}

}  // namespace hearth
