#include "io/segment_file.hpp"

#include <new>

namespace hearth::io {
namespace {

// An open segment file and what was read of it.
struct framed {
  std::unique_ptr<readable_file> file;
  segment_image img;
  bool footer_read = false;
};

// Opens `path` into an image of its size and reads its header, trailer and footer (all of it
// when shorter than a header and a trailer). A damaged header, trailer or footer offset stops the
// reads there, leaving `footer_read` false: the decode then finds the same damage in the bytes
// read, which it reads first, in this order.
result<framed> read_framing(file_system& fs, const std::string& path) {
  auto file = fs.open_readable(path);
  if (!file) return file.take_error();
  framed out;
  out.file = std::move(*file);
  readable_file& f = *out.file;
  segment_image& img = out.img;
  img.size = f.size();
  // Not value-initialized: pages that are never read are never touched.
  img.bytes.reset(new (std::nothrow) char[img.size == 0 ? 1 : img.size]);
  if (!img.bytes)
    return error{errc::internal,
                 "read " + path + ": cannot allocate " + std::to_string(img.size) + " bytes"};
  constexpr uint64_t header = 8, trailer = 12;
  if (img.size < header + trailer) {
    const byte_range all{0, img.size};
    if (auto st = f.read({&all, 1}, img.bytes.get()); !st) return st.err();
    return out;
  }
  const byte_range ends[] = {{0, header}, {img.size - trailer, trailer}};
  if (auto st = f.read(ends, img.bytes.get()); !st) return st.err();
  auto footer = segment_footer_range(img.view());
  if (!footer) return out;
  if (auto st = f.read({&*footer, 1}, img.bytes.get()); !st) return st.err();
  out.footer_read = true;
  return out;
}

}  // namespace

result<segment_image> read_segment_rows(file_system& fs, const std::string& path,
                                        row_fields fields) {
  auto r = read_framing(fs, path);
  if (!r) return r.take_error();
  if (!r->footer_read) return std::move(r->img);
  auto sections = segment_rows_ranges(r->img.view(), fields);
  if (!sections) return std::move(r->img);
  if (auto st = r->file->read(*sections, r->img.bytes.get()); !st) return st.err();
  return std::move(r->img);
}

result<segment_info> read_segment_footer(file_system& fs, const std::string& path, uint64_t* size) {
  auto r = read_framing(fs, path);
  if (!r) return r.take_error();
  if (size) *size = r->img.size;
  return read_segment_info(r->img.view());
}

}  // namespace hearth::io
