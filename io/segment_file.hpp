#pragma once
// Reading a segment file in part: a query that reads only profile rows (time series, label names
// and values, Series) reads only the sections it decodes, and a catalog only the footers, not the
// samples, symbols and profile ids of a file that may hold hundreds of MB of them
// (format/segment.hpp, "Reading a segment in part").

#include <memory>
#include <string>

#include "format/segment.hpp"
#include "io/file.hpp"

namespace hearth::io {

/// A segment file as far as it was read: a buffer of the file's size with the bytes read at their
/// offsets. The other bytes are never written (they cost address space, not memory) and must not
/// be read: only a decode of the depth the image was read for may look at it.
struct segment_image {
  std::unique_ptr<char[]> bytes;
  uint64_t size = 0;

  bytes_view view() const { return {reinterpret_cast<const std::byte*>(bytes.get()), size}; }
};

/// Reads what decode_segment_rows(image.view(), fields) reads of the segment at `path`: its
/// header and trailer, its footer, then the sections segment_rows_ranges names, through one open
/// file. When the framing is damaged (bad magic, footer offset or footer) it stops there: the
/// decode reads those bytes first and reports the damage as it does for the whole file. Errors:
/// the file system's (errc::not_found when the file is gone).
result<segment_image> read_segment_rows(file_system& fs, const std::string& path,
                                        row_fields fields);

/// Whether an error of read_segment_footer or read_segment_rows' decode is the file's bytes
/// (errc::corrupted, or errc::unsupported_format for a newer version) rather than reading them
/// (a file gone or unreadable now, which a later attempt may read).
inline bool segment_damaged(const error& e) {
  return e.code == errc::corrupted || e.code == errc::unsupported_format;
}

/// The footer of the segment at `path` (as read_segment_info gives it), reading only its header,
/// trailer and footer; `*size` (when not null) is the file's size. Errors: the file system's, then
/// read_segment_info's (errc::corrupted, errc::unsupported_format).
result<segment_info> read_segment_footer(file_system& fs, const std::string& path,
                                         uint64_t* size = nullptr);

}  // namespace hearth::io
