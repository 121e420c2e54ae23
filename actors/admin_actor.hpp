#pragma once
// The admin actor: the operators' view of stored blocks (hearthctl blocks ls/inspect/verify,
// tenant stats). It asks the partitions for their catalogs (the same catalog_atom the compactor
// uses) and reads the segment files through io/ with the segment reader of format/, on its own
// detached thread, so a long verify delays neither partitions nor queries.

#include "actors/interfaces.hpp"
#include "io/file.hpp"

namespace hearth {

struct admin_state {
  static inline const char* name = "admin";
  // Declared so the state is no aggregate: CAF would try to build one from the actor pointer.
  admin_state() = default;
  ingester_actor ingester;
  io::file_system* fs = nullptr;
};

admin_actor::behavior_type admin_fn(admin_actor::stateful_pointer<admin_state> self,
                                    ingester_actor ingester, io::file_system* fs);

}  // namespace hearth
