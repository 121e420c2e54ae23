#pragma once
// Binary (de)serialization of an ingest_batch, the payload of a WAL record (and of a batch sent
// between nodes). Self-describing and checksummed: a version byte, the batch's tables as varints,
// and a trailing CRC-32C; the decoder validates every cross-reference, so a flipped or truncated
// record yields errc::corrupted, never a crash or a batch that points out of its tables.

#include <string>

#include "format/block.hpp"
#include "format/coding.hpp"
#include "format/error.hpp"

namespace hearth {

/// Batch encoding versions (the first byte). On disk: never renumber.
/// v1: no mappings (decodes with an empty mapping table and every location's mapping 0).
inline constexpr uint8_t batch_format_v1 = 1;
/// v2: v1 plus the mapping table and each location's mapping ref.
inline constexpr uint8_t batch_format_v2 = 2;
/// v3: v2 plus, per series, the pprof period and the span samples. The current version.
/// (v1 and v2 decode with period 0 and no spans.)
inline constexpr uint8_t batch_format_v3 = 3;
inline constexpr uint8_t batch_format_current = batch_format_v3;

/// Encodes a batch in the current version. Requires: `b` is well-formed (as produced by
/// batch_builder or decode_batch).
std::string encode_batch(const ingest_batch& b);

/// Decodes and validates a batch written by encode_batch, of any version from v1 to current. Fails with errc::corrupted naming the
/// first problem: unknown version, checksum mismatch, truncation, trailing bytes, an index out of
/// range, a label set that is not sorted/unique, strings[0] != "", span samples that are not in
/// canonical form (sum_span_samples) or have span id 0. The result owns its bytes.
[[nodiscard]] result<ingest_batch> decode_batch(bytes_view data);

}  // namespace hearth
