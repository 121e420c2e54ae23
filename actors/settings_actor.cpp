#include "actors/settings_actor.hpp"

#include "actors/clock.hpp"
#include "actors/log.hpp"
#include "format/tenant.hpp"

namespace hearth {
namespace {

using self_ptr = settings_actor::stateful_pointer<settings_state>;

std::string dir_of(const settings_state& st, const std::string& tenant) {
  return st.data_dir + "/" + tenant;
}

// The tenant's settings, read from disk on first use. A corrupted file is an error every time
// (never silently replaced by an empty map that the next Set would write over it).
result<settings_map*> load(settings_state& st, const std::string& tenant) {
  if (!valid_tenant_id(tenant))
    return error{errc::invalid_argument, "invalid tenant " + quote_untrusted(tenant)};
  if (auto it = st.tenants.find(tenant); it != st.tenants.end()) return &it->second;
  std::string path = dir_of(st, tenant) + "/settings.bin";
  auto exists = st.fs->exists(path);
  if (!exists) return exists.err();
  settings_map m;
  if (*exists) {
    auto bytes = st.fs->read_file(path);
    if (!bytes) return bytes.err();
    auto decoded = decode_settings(*bytes);
    if (!decoded) {
      error e{errc::corrupted, path + ": " + decoded.err().message};
      log::error("settings", e.to_string());
      return e;
    }
    m = std::move(*decoded);
  }
  return &st.tenants.emplace(tenant, std::move(m)).first->second;
}

status store(settings_state& st, const std::string& tenant, const settings_map& m) {
  std::string dir = dir_of(st, tenant);
  if (auto s = st.fs->create_dirs(dir); !s) return s;
  return st.fs->write_file_atomic(dir + "/settings.bin", as_bytes(encode_settings(m)));
}

settings_reply failed(const error& e) { return settings_reply{reply_status::from(e), {}}; }

// Applies `change` to a copy, persists it, and only then makes it the served state: a failed
// write leaves both the file and the answers as they were.
template <class Change>
settings_reply update(self_ptr self, const std::string& tenant, Change change) {
  auto& st = self->state;
  auto m = load(st, tenant);
  if (!m) return failed(m.err());
  settings_map next = **m;
  auto r = change(next);
  if (!r.status.ok()) return r;
  if (auto s = store(st, tenant, next); !s) return failed(s.err());
  **m = std::move(next);
  return r;
}

}  // namespace

settings_actor::behavior_type settings_fn(self_ptr self, std::string data_dir, io::file_system* fs) {
  self->state.data_dir = std::move(data_dir);
  self->state.fs = fs;
  return {
      [self](get_atom, const std::string& tenant) {
        auto m = load(self->state, tenant);
        if (!m) return failed(m.err());
        settings_reply r;
        for (const auto& [name, v] : **m) r.settings.push_back({name, v.value, v.modified_ms});
        return r;
      },
      [self](put_atom, const std::string& tenant, setting_entry& s) {
        if (s.modified_ms <= 0) s.modified_ms = wall_clock_ns() / 1000000;
        return update(self, tenant, [&](settings_map& m) {
          settings_reply r;
          if (auto st = apply_setting(m, s.name, {s.value, s.modified_ms}); !st) return failed(st.err());
          r.settings.push_back(s);
          return r;
        });
      },
      [self](delete_atom, const std::string& tenant, const setting_entry& s) {
        return update(self, tenant, [&](settings_map& m) {
          if (auto st = delete_setting(m, s.name, s.modified_ms); !st) return failed(st.err());
          return settings_reply{};
        });
      },
  };
}

}  // namespace hearth
