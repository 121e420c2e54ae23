#pragma once
// A tenant's settings (Pyroscope's settings.v1: name -> value with a modification time), and the
// file that keeps them: docs/design/format/settings.md. Pure: no I/O here.

#include <cstdint>
#include <map>
#include <string>
#include <string_view>

#include "format/error.hpp"

namespace hearth {

struct setting_value {
  std::string value;
  int64_t modified_ms = 0;  ///< Unix ms of the write that produced this value
  friend bool operator==(const setting_value&, const setting_value&) = default;
};

/// Settings of one tenant, ordered by name (the order Get returns them in).
using settings_map = std::map<std::string, setting_value, std::less<>>;

/// Applies a write. A write older than the stored value (`modified_ms` smaller) is refused with
/// errc::already_exists, as Pyroscope does, so a slow client cannot undo a newer change.
status apply_setting(settings_map& m, std::string_view name, setting_value v);

/// Removes a setting unless a newer value was written after `modified_ms` (0 removes always).
/// Removing an absent name is not an error.
status delete_setting(settings_map& m, std::string_view name, int64_t modified_ms);

std::string encode_settings(const settings_map& m);
/// Decodes a settings file; a bad magic, version, checksum or body is errc::corrupted.
result<settings_map> decode_settings(std::string_view file);

}  // namespace hearth
