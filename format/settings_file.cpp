#include "format/settings_file.hpp"

#include "format/coding.hpp"

namespace hearth {
namespace {
constexpr uint32_t magic = 0x53545448;  // "HTTS" little-endian: Hearth settings
constexpr uint8_t version = 1;
}  // namespace

status apply_setting(settings_map& m, std::string_view name, setting_value v) {
  if (name.empty()) return error{errc::invalid_argument, "setting name is required"};
  auto it = m.find(name);
  if (it != m.end() && it->second.modified_ms > v.modified_ms)
    return error{errc::already_exists,
                 "failed to update " + quote_untrusted(name) + ": newer update already written (at " +
                     std::to_string(it->second.modified_ms) + " ms, this one at " +
                     std::to_string(v.modified_ms) + " ms)"};
  if (it == m.end())
    m.emplace(std::string(name), std::move(v));
  else
    it->second = std::move(v);
  return {};
}

status delete_setting(settings_map& m, std::string_view name, int64_t modified_ms) {
  auto it = m.find(name);
  if (it == m.end()) return {};
  if (modified_ms != 0 && it->second.modified_ms > modified_ms)
    return error{errc::already_exists,
                 "failed to delete " + quote_untrusted(name) + ": newer update already written"};
  m.erase(it);
  return {};
}

std::string encode_settings(const settings_map& m) {
  encoder body;
  body.put_uvarint(m.size());
  for (const auto& [name, v] : m) {
    body.put_string(name);
    body.put_string(v.value);
    body.put_varint(v.modified_ms);
  }
  encoder out;
  out.put_u32(magic);
  out.put_u8(version);
  out.put_u32(static_cast<uint32_t>(body.size()));
  out.put_raw(body.buffer());
  out.put_u32(crc32c(as_bytes(body.buffer())));
  return out.release();
}

result<settings_map> decode_settings(std::string_view file) {
  decoder d(file);
  uint32_t mg = d.get_u32();
  uint8_t ver = d.get_u8();
  uint32_t len = d.get_u32();
  if (!d.ok() || mg != magic) return error{errc::corrupted, "settings file: bad magic"};
  if (ver != version)
    return error{errc::corrupted, "settings file: unknown version " + std::to_string(ver)};
  bytes_view body = d.get_raw(len);
  uint32_t crc = d.get_u32();
  if (!d.ok() || !d.empty()) return error{errc::corrupted, "settings file: truncated or trailing bytes"};
  if (crc32c(body) != crc) return error{errc::corrupted, "settings file: checksum mismatch"};
  decoder b(body);
  settings_map m;
  uint64_t n = b.get_uvarint();
  for (uint64_t i = 0; i < n && b.ok(); ++i) {
    std::string name(b.get_string());
    std::string value(b.get_string());
    int64_t mod = b.get_varint();
    m[std::move(name)] = setting_value{std::move(value), mod};
  }
  if (!b.ok() || !b.empty()) return error{errc::corrupted, "settings file: malformed body"};
  return m;
}

}  // namespace hearth
