#include "io/segment_file.hpp"

#include <new>

namespace hearth::io {

result<segment_image> read_segment_rows(file_system& fs, const std::string& path,
                                        row_fields fields) {
  auto file = fs.open_readable(path);
  if (!file) return file.take_error();
  readable_file& f = **file;
  segment_image img;
  img.size = f.size();
  // Not value-initialized: pages that are never read are never touched.
  img.bytes.reset(new (std::nothrow) char[img.size == 0 ? 1 : img.size]);
  if (!img.bytes)
    return error{errc::internal,
                 "read " + path + ": cannot allocate " + std::to_string(img.size) + " bytes"};
  // A short file is read whole; a damaged header, trailer or footer stops the reads, and the
  // decode then finds the same damage in the bytes read (it reads them first, in this order).
  constexpr uint64_t header = 8, trailer = 12;
  if (img.size < header + trailer) {
    const byte_range all{0, img.size};
    if (auto st = f.read({&all, 1}, img.bytes.get()); !st) return st.err();
    return img;
  }
  const byte_range ends[] = {{0, header}, {img.size - trailer, trailer}};
  if (auto st = f.read(ends, img.bytes.get()); !st) return st.err();
  auto footer = segment_footer_range(img.view());
  if (!footer) return img;
  if (auto st = f.read({&*footer, 1}, img.bytes.get()); !st) return st.err();
  auto sections = segment_rows_ranges(img.view(), fields);
  if (!sections) return img;
  if (auto st = f.read(*sections, img.bytes.get()); !st) return st.err();
  return img;
}

}  // namespace hearth::io
