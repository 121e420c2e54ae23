#pragma once
// Profile ids: UUIDs as Pyroscope's Push (RawSample.ID), exemplars and profile_id_selector spell
// them, held as two big-endian 64-bit words.

#include <cstdint>
#include <string>
#include <string_view>

namespace hearth {

/// Parses "8-4-4-4-12" hex (either case; dashes anywhere are skipped, so 32 bare hex digits also
/// parse). False, with hi = lo = 0, for anything else.
bool parse_uuid(std::string_view s, uint64_t& hi, uint64_t& lo);

/// The canonical lowercase "8-4-4-4-12" form.
std::string format_uuid(uint64_t hi, uint64_t lo);

}  // namespace hearth
