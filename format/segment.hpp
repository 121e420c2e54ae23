#pragma once
// The segment file: one sealed, immutable block (format/block.hpp) frozen to bytes, with a TOC
// footer, per-section compression and CRC-32C, and label postings. Format: docs/design/format/
// segment.md. Pure: the caller hands in and takes out whole files as bytes; io/ does the syscalls.
// Thread-safety: free functions on values; every type here is a plain value type.

#include <cstdint>
#include <map>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "format/block.hpp"
#include "format/coding.hpp"
#include "format/error.hpp"

namespace hearth {

/// The newest segment version this code writes; readers accept
/// [segment_min_version, segment_current_version].
inline constexpr uint32_t segment_current_version = 1;
/// The oldest segment version readers still accept.
inline constexpr uint32_t segment_min_version = 1;

/// Compression of a segment's sections.
enum class segment_codec : uint8_t {  // On disk: never renumber.
  none = 0,
  lz4 = 1,   ///< LZ4 block format; for fresh segments sealed from a head
  zstd = 2,  ///< zstd frames; for compacted segments
};

/// What the footer says about a segment; read without touching the sections.
struct segment_info {
  uint32_t version = 0;
  int64_t min_time_ns = 0;  ///< over profiles; 0/0 when there are none
  int64_t max_time_ns = 0;
  uint64_t series = 0;
  uint64_t profiles = 0;
  uint64_t samples = 0;
  uint64_t stacks = 0;                        ///< stack tree nodes, the root included
  segment_codec codec = segment_codec::none;  ///< the codec the writer was asked for
  uint64_t wal_seq = 0;  ///< opaque to the format: the WAL position the segment covers
  friend bool operator==(const segment_info&, const segment_info&) = default;
};

/// Label postings of a block: label name -> value -> ascending ids of the series carrying that
/// label. Built from `block_data::series`; stored in the segment as portable roaring bitmaps.
struct postings_index {
  std::map<std::string, std::map<std::string, std::vector<uint32_t>, std::less<>>, std::less<>>
      by_name;

  /// Series ids with label `name`=`value`, ascending; empty if there are none. The span is valid
  /// as long as this object lives and is not modified.
  std::span<const uint32_t> series_for(std::string_view name, std::string_view value) const;
  friend bool operator==(const postings_index&, const postings_index&) = default;
};

/// Builds the postings of `b` from its series' labels.
/// Requires: `b` is valid (label refs in range), as any block that encode_segment accepts.
postings_index make_postings(const block_data& b);

/// Writes `b` as a complete segment file of the current version, sections compressed with
/// `codec` (a section stays uncompressed if compression would not shrink it). Profiles are
/// sorted by (series, time, id) and samples laid out in that order, each profile's samples
/// sorted by stack id; the decoded block has those rows with fresh `sample_begin`s.
/// min/max time are computed from the profiles. `wal_seq` is stored in the footer as is.
/// Fails with errc::invalid_argument if `b` breaks an invariant of block.hpp (a dangling
/// reference, a profile total that is not the sum of its samples, a repeated stack within a
/// profile, unsorted labels) or a section outgrows the format's 32-bit lengths.
result<std::string> encode_segment(const block_data& b, segment_codec codec, uint64_t wal_seq);

/// Validates and loads a whole segment of any supported version. On success every cross
/// reference of the block has been checked (see "What readers validate" in the format doc),
/// profiles are sorted by (series, time) with contiguous sample ranges, and, when not null,
/// `*info` is the footer and `*postings` the stored postings (checked equal to the series').
/// Fails with errc::corrupted naming the section and what was wrong, or
/// errc::unsupported_format for a well-formed file of a version newer than this reader.
/// The result owns its data; `file` may be released afterwards.
result<block_data> decode_segment(bytes_view file, segment_info* info = nullptr,
                                  postings_index* postings = nullptr);

/// Reads and checks only the header, trailer and footer (CRC, TOC layout): cheap.
/// Same errors as decode_segment.
result<segment_info> read_segment_info(bytes_view file);

}  // namespace hearth
