#include "actors/ingester_actor.hpp"

#include "actors/log.hpp"
#include "actors/metrics.hpp"

namespace hearth {
namespace {

using self_ptr = ingester_actor::stateful_pointer<ingester_state>;

std::vector<partition_actor>& open_tenant(self_ptr self, const std::string& tenant) {
  auto& st = self->state;
  auto& parts = st.tenants[tenant];
  if (!parts.empty()) return parts;
  for (uint32_t shard = 0; shard < st.opts.shards; ++shard) {
    partition_options po = st.opts.partition;
    po.tenant = tenant;
    po.shard = shard;
    po.shards = st.opts.shards;
    po.dir = st.opts.data_dir + "/" + tenant + "/shard-" + std::to_string(shard);
    // Detached: WAL syncs and segment writes block their own thread, not the scheduler's.
    auto p = self->system().spawn<caf::detached>(partition_fn, std::move(po), st.fs, st.metrics);
    self->link_to(p);
    parts.push_back(std::move(p));
  }
  return parts;
}

}  // namespace

ingester_actor::behavior_type ingester_fn(self_ptr self, ingester_options opts, io::file_system* fs,
                                          self_metrics* metrics) {
  auto& st = self->state;
  st.opts = std::move(opts);
  st.fs = fs;
  st.metrics = metrics;
  if (auto s = fs->create_dirs(st.opts.data_dir); !s)
    log::error("ingester", "cannot create data directory: " + s.err().to_string());
  if (auto names = fs->list_dir(st.opts.data_dir)) {
    for (const auto& tenant : *names) {
      if (!valid_tenant_id(tenant)) continue;
      auto shard_dirs = fs->list_dir(st.opts.data_dir + "/" + tenant);
      if (!shard_dirs) continue;
      bool has_shards = false;
      for (const auto& d : *shard_dirs) has_shards |= d.rfind("shard-", 0) == 0;
      if (!has_shards) continue;
      // Shards beyond the configured count would be orphaned: refuse to hide data silently.
      for (const auto& d : *shard_dirs) {
        if (d.rfind("shard-", 0) != 0) continue;
        auto n = std::strtoul(d.c_str() + 6, nullptr, 10);
        if (n >= st.opts.shards)
          log::error("ingester", "tenant=" + tenant + " has " + d + " but storage.shards=" +
                                     std::to_string(st.opts.shards) +
                                     ": its data is not served until shards is raised again");
      }
      open_tenant(self, tenant);
    }
  } else {
    log::error("ingester", "cannot list data directory: " + names.err().to_string());
  }
  return {
      [self](get_atom, const std::string& tenant, bool create) -> std::vector<partition_actor> {
        auto& st = self->state;
        auto it = st.tenants.find(tenant);
        if (it != st.tenants.end()) return it->second;
        if (!create || !valid_tenant_id(tenant)) return {};
        return open_tenant(self, tenant);
      },
      [self](get_atom, const std::vector<std::string>& tenants) {
        std::vector<partition_actor> out;
        for (const auto& t : tenants)
          if (auto it = self->state.tenants.find(t); it != self->state.tenants.end())
            out.insert(out.end(), it->second.begin(), it->second.end());
        return out;
      },
      [self](list_atom) {
        std::vector<partition_actor> all;
        for (auto& [_, parts] : self->state.tenants) all.insert(all.end(), parts.begin(), parts.end());
        return all;
      },
      [self](ready_atom) -> caf::result<bool> {
        auto& st = self->state;
        std::vector<partition_actor> all;
        for (auto& [_, parts] : st.tenants) all.insert(all.end(), parts.begin(), parts.end());
        if (all.empty()) return true;
        auto rp = self->make_response_promise<bool>();
        auto left = std::make_shared<size_t>(all.size());
        auto ok = std::make_shared<bool>(true);
        for (auto& p : all) {
          // A partition answers only after its recovery finished (its mailbox waits until then).
          self->request(p, std::chrono::milliseconds(500), ready_atom::value)
              .then(
                  [rp, left, ok](bool r) mutable {
                    *ok = *ok && r;
                    if (--*left == 0) rp.deliver(*ok);
                  },
                  [rp, left, ok](caf::error&) mutable {
                    *ok = false;
                    if (--*left == 0) rp.deliver(false);
                  });
        }
        return rp;
      },
  };
}

}  // namespace hearth
