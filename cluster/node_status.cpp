#include "cluster/node_status.hpp"

namespace hearth {

std::vector<std::string> local_roles() {
  return {"distributor", "ingester", "querier", "compactor"};
}

}  // namespace hearth
