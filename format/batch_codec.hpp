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

/// Current batch encoding version (the first byte). On disk: never renumber.
inline constexpr uint8_t batch_format_v1 = 1;

/// Encodes a batch. Requires: `b` is well-formed (as produced by batch_builder or decode_batch).
std::string encode_batch(const ingest_batch& b);

/// Decodes and validates a batch written by encode_batch. Fails with errc::corrupted naming the
/// first problem: unknown version, checksum mismatch, truncation, trailing bytes, an index out of
/// range, a label set that is not sorted/unique, strings[0] != "". The result owns its bytes.
[[nodiscard]] result<ingest_batch> decode_batch(bytes_view data);

}  // namespace hearth
