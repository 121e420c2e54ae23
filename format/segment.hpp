#pragma once
// The segment file: one sealed, immutable block (format/block.hpp) frozen to bytes, with a TOC
// footer, per-section compression and CRC-32C, and label postings. Format: docs/design/format/
// segment.md. Pure: the caller hands in and takes out whole files as bytes; io/ does the syscalls.
// Thread-safety: free functions on values; every type here is a plain value type.

#include <cstdint>
#include <functional>
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
inline constexpr uint32_t segment_current_version = 6;
/// The oldest segment version readers still accept.
inline constexpr uint32_t segment_min_version = 1;
/// From this version on, a rollup row's time is the earliest time of the profiles it sums and its
/// duration reaches the latest end among them (format/compact.hpp, merge_options::bucket_ns);
/// before, they were the bucket's start and step. Only such rollups may answer a pprof export,
/// whose time_nanos/duration_nanos come from the rows.
inline constexpr uint32_t segment_exact_rollup_times_version = 6;
/// The highest `segment_info::level` a segment may carry (0 = sealed head, 1 and 2 = compacted;
/// 3 is spare room for one more compaction tier without a format change).
inline constexpr uint8_t segment_max_level = 3;

/// The zstd level of `encode_segment` when the caller names none.
inline constexpr int segment_default_zstd_level = 3;

/// Compression of a segment's sections.
enum class segment_codec : uint8_t {  // On disk: never renumber.
  none = 0,
  lz4 = 1,   ///< LZ4 block format; for fresh segments sealed from a head
  zstd = 2,  ///< zstd frames; for compacted segments
};

/// What the footer says about a segment; read without touching the sections.
/// The first group is computed by the writer; the block metadata (from `wal_seq` on) is given
/// by the writer's caller and stored as is. A version-1 file reads with the v2-only fields at
/// their defaults (block_id 0, level 0, rollup_step_ns 0, no sources).
struct segment_info {
  uint32_t version = 0;
  int64_t min_time_ns = 0;  ///< over profiles; 0/0 when there are none
  int64_t max_time_ns = 0;
  uint64_t series = 0;
  uint64_t profiles = 0;
  uint64_t samples = 0;
  uint64_t stacks = 0;                        ///< stack tree nodes, the root included
  segment_codec codec = segment_codec::none;  ///< the codec the writer was asked for

  uint64_t wal_seq = 0;   ///< opaque to the format: the WAL position the segment covers
  uint64_t block_id = 0;  ///< (v2) unique id of this block, chosen by the caller; 0 in v1 files
  uint8_t level = 0;      ///< (v2) 0 = sealed head, 1..segment_max_level = compacted
  /// (v2) 0 = raw profiles; > 0 = a rollup block whose rows are per-series aggregates at this
  /// step. The format stores it and checks it is >= 0; it does not check the rows against it.
  int64_t rollup_step_ns = 0;
  /// (v2) Ids of the blocks this one was compacted from, distinct and never `block_id`; empty
  /// for a head (level 0). Once this block is published its sources are obsolete: a catalog
  /// rebuilt from disk deletes any source it still finds (a compaction's crash-safe swap).
  std::vector<uint64_t> sources;
  friend bool operator==(const segment_info&, const segment_info&) = default;

  /// The id a catalog knows the block by: `block_id`, or for a v1 file (no block id) one derived
  /// from its WAL position, with the top bit set so it never equals a chosen id.
  uint64_t catalog_id() const { return block_id ? block_id : (wal_seq | (1ull << 63)); }
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
/// sorted by stack id, its span samples by (stack id, span id); the decoded block has those rows
/// with fresh `sample_begin`s and `span_begin`s. The periods section is written only when a
/// profile has a non-zero period, the spans section only when a profile has span samples.
/// The footer stores `meta`'s wal_seq, block_id, level, rollup_step_ns and sources as given;
/// its version, time range, counts and codec are computed here (those fields of `meta` are
/// ignored).
/// Fails with errc::invalid_argument if `b` breaks an invariant of block.hpp (a dangling
/// reference, a profile total that is not the sum of its samples, a repeated stack within a
/// profile, a repeated (stack, span id) or a span id 0 within a profile, unsorted labels), if
/// `meta` is not storable (level > segment_max_level,
/// rollup_step_ns < 0, sources on a level-0 block, a repeated source, or `block_id` among its
/// own sources), if `zstd_level` is 0 or outside zstd's range, or if a section outgrows the
/// format's 32-bit lengths. `zstd_level` matters only for `segment_codec::zstd` (negative levels
/// are zstd's fast modes); readers do not need to know it.
result<std::string> encode_segment(const block_data& b, segment_codec codec,
                                   const segment_info& meta,
                                   int zstd_level = segment_default_zstd_level);

/// The sealed-head shorthand kept for existing callers: a level-0, raw block with no sources
/// whose block_id is `wal_seq` (a partition's WAL sequences are unique, so they serve as ids).
/// Same as `encode_segment(b, codec, {.wal_seq = wal_seq, .block_id = wal_seq})`.
result<std::string> encode_segment(const block_data& b, segment_codec codec, uint64_t wal_seq);

/// Validates and loads a whole segment of any supported version. On success every cross
/// reference of the block has been checked (see "What readers validate" in the format doc),
/// profiles are sorted by (series, time) with contiguous sample ranges, and, when not null,
/// `*info` is the footer and `*postings` the stored postings (checked equal to the series').
/// Fails with errc::corrupted naming the section and what was wrong, or
/// errc::unsupported_format for a well-formed file of a version newer than this reader.
/// Files of versions 1 and 2 (before mappings) decode with no mappings and every location's
/// mapping 0; files of versions 1 to 3 (before periods and span samples) with every profile's
/// period 0 and no span samples. The result owns its data; `file` may be released afterwards.
result<block_data> decode_segment(bytes_view file, segment_info* info = nullptr,
                                  postings_index* postings = nullptr);

/// Which series a partial decode reads the pairs of (decode_segment_series): called with the
/// block's strings, series and profile rows decoded (as decode_segment_rows with
/// row_fields::all gives them), it marks series ids; ids past the mask's end count as unmarked.
using series_filter = std::function<std::vector<bool>(const block_data&)>;

/// decode_segment, except that only the pairs of the profiles of the series `keep` marks are
/// decoded: the other profiles keep their rows (time, total, ids, spans) with sample_count 0. A
/// block holds every profile type of its services (a Go service sends 6-8), and a flame graph or
/// an export reads one: their pairs are most of a decode (docs/bench.md, "Pairs of the selected
/// series only"). When `keep` marks no series (a block of other services), the result is the
/// rows alone, read and checked as decode_segment_rows(file, row_fields::all) reads them, with
/// every sample_count 0: no symbols, stacks, pairs or span samples. The result answers only
/// queries that read no pairs of an unmarked series. With every series marked it is
/// decode_segment's block. Same errors as decode_segment for what it reads; damage to the pairs
/// of an unmarked series' profile goes unnoticed, except a column that ends early.
result<block_data> decode_segment_series(bytes_view file, const series_filter& keep,
                                         segment_info* info = nullptr);

/// Which fields of the profile rows decode_segment_rows gives.
enum class row_fields : uint8_t {
  /// Series, time and total, as block_data::rows (`profiles` stays empty): what label, Series,
  /// profile type and SelectSeries queries (without a call site or exemplars) read.
  columns,
  /// Every field, as block_data::profiles (sample ranges pointing past the absent samples).
  all,
};

/// Loads only what queries over series and profile rows need: the strings, series and profiles
/// sections, CRC-checked and validated as decode_segment validates them; no other section is
/// read or decompressed. With row_fields::columns, the durations, sample counts (but their sum,
/// checked against the footer) and profile ids are not read either.
/// The result has no symbols other than strings, only the root stack node, no periods (0), no
/// span samples, no samples (every profile's sample range lies past `samples`) and no postings:
/// it must not be used for queries that read samples, nor written back. Same errors as
/// decode_segment for the sections it reads; a damaged section it does not read goes unnoticed.
result<block_data> decode_segment_rows(bytes_view file, row_fields fields,
                                       segment_info* info = nullptr);

/// A block's (stack, value) pairs already laid out as the samples section stores them: profiles
/// in the block's row order, each profile's pairs by ascending stack id, `stacks` the stack
/// deltas (the first of a profile from 0) as unsigned varints and `values` the values as zig-zag
/// varints. Built by merge_segments (format/compact.hpp).
struct encoded_samples {
  uint64_t count = 0;
  std::string stacks;
  std::string values;
};

/// A segment loaded for streaming compaction (format/compact.hpp, merge_segments): every
/// section decoded into `block()` as decode_segment does, except the (stack, value) pairs, which
/// stay in their encoded columns (one copy of the uncompressed samples section, 2-6 bytes per pair
/// instead of 16) and are decoded one profile at a time by read_samples. The postings section is
/// not read (a compaction output's postings are rebuilt from its series).
/// Thread-safety: a value; const members may be called concurrently.
class segment_columns {
 public:
  /// Symbols, stacks, series, profiles, periods and span samples; `samples` is empty and each
  /// profile's sample_begin/sample_count index the pairs read_samples returns.
  const block_data& block() const { return block_; }

  /// Appends profile `row`'s pairs to `out`, by ascending stack id. Checks what decode_segment
  /// checks of them: every stack id is a non-root node in range and appears once, and they sum
  /// to the profile's total; errc::corrupted otherwise (then `out` may hold some of them).
  /// Requires: row < block().profiles.size().
  status read_samples(uint32_t row, std::vector<sample_rec>& out) const;

 private:
  friend result<segment_columns> decode_segment_columns(bytes_view, segment_info*);
  friend result<segment_columns> make_segment_columns(block_data, const encoded_samples&);
  friend result<block_data> decode_segment_outside(bytes_view, int64_t, int64_t, int64_t);
  block_data block_;
  std::string samples_;              // the uncompressed samples section body
  std::vector<uint32_t> stacks_at_;  // per profile: offset of its first stack delta in samples_
  std::vector<uint32_t> values_at_;  // per profile: offset of its first value in samples_
};

/// Loads a segment for streaming compaction. Same errors as decode_segment for the sections it
/// parses, plus corrupted when a profile's sample columns do not hold its sample_count varints;
/// a damaged pair (a bad stack delta, a wrong total) is reported by read_samples instead.
result<segment_columns> decode_segment_columns(bytes_view file, segment_info* info = nullptr);

/// decode_segment, except that only the pairs of the profiles whose time lies outside
/// [lo_ns, hi_ns) are decoded: the profiles inside keep their rows (time, total, ids, spans) with
/// sample_count 0, and the postings section is not read. For a reader whose query a rollup
/// answers over those buckets (actors/reader_actor.cpp): a range that starts mid-hour needs of a
/// day's raw block only the rows of its partial hours, ~300 of 11,000, and decoding their pairs
/// alone skips most of the cost (docs/bench.md, "Raw rows outside a rollup"). The result answers
/// only queries that read nothing inside [lo_ns, hi_ns) of it. Same errors as
/// decode_segment_columns, plus what read_samples reports of a decoded profile's pairs; damage to
/// the pairs of a profile inside the window goes unnoticed (they are not read).
/// With `margin_ns`, only the pairs of profiles in [lo_ns - margin_ns, lo_ns) and
/// [hi_ns, hi_ns + margin_ns) are decoded (bounds saturate): the reader passes the rollup's step,
/// since a range whose whole buckets are [lo, hi) starts less than a step before lo and ends less
/// than a step after hi. Yesterday's day block in a "last 24 h" range from 14:23 then decodes the
/// pairs of 14:00-15:00, not of 00:00-15:00. The result answers only queries inside
/// [lo - margin, hi + margin) that read nothing inside [lo, hi).
result<block_data> decode_segment_outside(bytes_view file, int64_t lo_ns, int64_t hi_ns,
                                          int64_t margin_ns = INT64_MAX);

/// A segment_columns over a block and its pairs already encoded (merge_segments' output), so a
/// merge result can be merged again (the compactor rolls a merged block up) without writing and
/// reading it back. `b` must have no samples and satisfy what encode_segment(b, samples, ...)
/// requires; errc::invalid_argument when its structure is broken or `samples` does not hold each
/// profile's sample_count varints in each column. The pairs are checked as read_samples reads them.
result<segment_columns> make_segment_columns(block_data b, const encoded_samples& samples);

/// encode_segment for a block whose pairs come encoded: `b.samples` must be empty, `b.profiles`
/// already in (series, time, id) order, their sample_counts summing to `samples.count` and each
/// total the sum of its pairs in `samples`, every pair's stack a non-root node of `b`.
/// Fails with errc::invalid_argument when `b` breaks an invariant encode_segment checks, has
/// samples, has its rows out of order or its counts disagree with `samples.count`; the pairs
/// themselves are the caller's guarantee (a reader rejects a file with a bad one as corrupted).
result<std::string> encode_segment(const block_data& b, const encoded_samples& samples,
                                   segment_codec codec, const segment_info& meta,
                                   int zstd_level = segment_default_zstd_level);

/// Reads and checks only the header, trailer and footer (CRC, TOC layout, block metadata):
/// cheap, it touches no section, so a catalog can be rebuilt from disk with it. A file that
/// passes may still fail decode_segment (a damaged section). Same errors as decode_segment.
result<segment_info> read_segment_info(bytes_view file);

/// Reading a segment in part (what a rows-only decode reads, from a file whose other sections can
/// be large): a reader first reads the header (8 bytes) and the trailer (the last 12), asks
/// segment_footer_range where the footer is, reads it, asks segment_rows_ranges which sections
/// decode_segment_rows(file, fields) reads, reads those, and decodes a buffer of the file's size
/// holding those bytes at their offsets (its other bytes are never looked at).
/// The footer's range [footer_offset, size - 12) from the header and trailer in `file` (a view of
/// the whole file's size). Fails with errc::corrupted as read_segment_info does on a bad magic, a
/// file too short to be a segment, or a footer offset out of range.
result<byte_range> segment_footer_range(bytes_view file);
/// The ranges of `file` that decode_segment_rows(file, fields) reads besides the header, footer
/// and trailer (which `file` must already hold): the section records it decodes, in file order.
/// Same errors as read_segment_info.
result<std::vector<byte_range>> segment_rows_ranges(bytes_view file, row_fields fields);

/// One section record of a segment as its TOC lists it (for operators: `hearthctl blocks inspect`).
struct segment_section_info {
  std::string name;           ///< e.g. "samples"
  uint64_t offset = 0;        ///< of the record in the file
  uint64_t stored_bytes = 0;  ///< body length as stored
  uint64_t raw_bytes = 0;     ///< body length after decompression, as the record claims
  segment_codec codec = segment_codec::none;
  uint32_t crc = 0;     ///< the record's stored CRC-32C
  bool crc_ok = false;  ///< the CRC matches the record's bytes
};

/// The footer (as read_segment_info) and every section record the TOC lists, each record's
/// header read and its CRC checked; bodies are not decompressed. Errors as read_segment_info;
/// a section whose header disagrees with the TOC fails with errc::corrupted naming it, while a
/// CRC mismatch is reported in `crc_ok` (so a damaged file can still be inspected).
result<std::vector<segment_section_info>> read_segment_sections(bytes_view file,
                                                                segment_info* info = nullptr);

}  // namespace hearth
