#pragma once
// The settings actor: owns every tenant's settings file (docs/design/format/settings.md). It runs
// detached because each write is fsynced before the reply, and it is the only writer of those
// files, so read-modify-write needs no locks.

#include <map>
#include <set>
#include <string>

#include "actors/interfaces.hpp"
#include "format/settings_file.hpp"
#include "io/file.hpp"

namespace hearth {

struct settings_state {
  static inline const char* name = "settings";
  std::string data_dir;
  io::file_system* fs = nullptr;
  std::map<std::string, settings_map> tenants;  ///< loaded on first use
};

settings_actor::behavior_type settings_fn(settings_actor::stateful_pointer<settings_state> self,
                                          std::string data_dir, io::file_system* fs);

}  // namespace hearth
