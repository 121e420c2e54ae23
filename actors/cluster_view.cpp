#include "actors/cluster_view.hpp"

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>

#include "actors/log.hpp"
#include "format/batch_codec.hpp"
#include "format/tenant.hpp"

namespace hearth {

bool cluster_member::has_role(std::string_view r) const {
  return std::find(roles.begin(), roles.end(), r) != roles.end();
}

cluster_metrics::cluster_metrics(prometheus::Registry& r)
    : peers(prometheus::BuildGauge()
                .Name("hearth_cluster_peers")
                .Help("peers of this node by membership state (alive, suspect, down)")
                .Register(r)),
      ring_share(prometheus::BuildGauge()
                     .Name("hearth_cluster_ring_ownership_ratio")
                     .Help("share of the ring's hash space each ingester node is first replica of")
                     .Register(r)),
      hints_pending(prometheus::BuildGauge()
                        .Name("hearth_cluster_hints_pending")
                        .Help("replica writes held for a peer that missed them (replication lag)")
                        .Register(r)),
      hint_bytes(prometheus::BuildGauge()
                     .Name("hearth_cluster_hint_bytes")
                     .Help("approximate bytes held by the hinted-handoff queue")
                     .Register(r)
                     .Add({})),
      hints_stored(prometheus::BuildCounter()
                       .Name("hearth_cluster_hints_stored_total")
                       .Help("replica writes kept for a peer that missed them")
                       .Register(r)
                       .Add({})),
      hints_replayed(prometheus::BuildCounter()
                         .Name("hearth_cluster_hints_replayed_total")
                         .Help("kept replica writes delivered to their peer")
                         .Register(r)
                         .Add({})),
      hints_dropped(prometheus::BuildCounter()
                        .Name("hearth_cluster_hints_dropped_total")
                        .Help("replica writes not kept because the queue was at hint_max_bytes")
                        .Register(r)
                        .Add({})),
      replica_write_failures(prometheus::BuildCounter()
                                 .Name("hearth_cluster_replica_write_failures_total")
                                 .Help("replica writes that failed or were not attempted (peer down)")
                                 .Register(r)
                                 .Add({})),
      quorum_failures(prometheus::BuildCounter()
                          .Name("hearth_cluster_write_quorum_failures_total")
                          .Help("ingest requests answered 503: a shard missed its write quorum")
                          .Register(r)
                          .Add({})),
      partial_queries(prometheus::BuildCounter()
                          .Name("hearth_cluster_partial_queries_total")
                          .Help("queries answered with X-Hearth-Partial (a shard had no live, caught-up replica)")
                          .Register(r)
                          .Add({})),
      adopted_partitions(prometheus::BuildGauge()
                             .Name("hearth_cluster_adopted_partitions")
                             .Help("partitions of down nodes (on cluster.shared_path) this node owns "
                                   "for compaction and retention, at its last compaction run")
                             .Register(r)
                             .Add({})) {}

uint64_t approx_batch_bytes(const ingest_batch& b) {
  uint64_t n = sizeof(ingest_batch) + b.tenant.size();
  for (const auto& s : b.syms.strings) n += s.size() + sizeof(s);
  n += b.syms.mappings.size() * sizeof(mapping_rec) + b.syms.functions.size() * sizeof(function_rec) +
       b.syms.lines.size() * sizeof(line_rec) + b.syms.locations.size() * sizeof(location_rec);
  n += (b.stack_offsets.size() + b.stack_locations.size()) * sizeof(uint32_t);
  for (const auto& s : b.series) {
    n += sizeof(s);
    for (const auto& l : s.labels) n += l.name.size() + l.value.size() + sizeof(l);
    n += s.sample_stacks.size() * sizeof(s.sample_stacks[0]) +
         s.sample_values.size() * sizeof(s.sample_values[0]) + s.spans.size() * sizeof(span_sample);
  }
  return n;
}

cluster_view::cluster_view(cluster_options opts, prometheus::Registry& registry)
    : opts_(std::move(opts)), metrics_(registry) {
  std::vector<std::string> ingesters;
  for (size_t i = 0; i < opts_.members.size(); ++i)
    if (opts_.members[i].has_role("ingester")) {
      ingesters.push_back(opts_.members[i].name);
      ring_to_member_.push_back(static_cast<int>(i));
    }
  ring_ = cluster::ring(ingesters, opts_.tokens);
  rows_.resize(opts_.members.size());
  rows_[0].state = cluster::node_state::alive;
  rows_[0].connected = true;
  hints_.resize(opts_.members.size());
  dropped_.resize(opts_.members.size(), false);
  for (size_t r = 0; r < ingesters.size(); ++r)
    metrics_.ring_share.Add({{"node", ingesters[r]}}).Set(ring_.primary_share(static_cast<uint32_t>(r)));
}

int cluster_view::index_of(std::string_view name) const {
  for (size_t i = 0; i < opts_.members.size(); ++i)
    if (opts_.members[i].name == name) return static_cast<int>(i);
  return -1;
}

std::vector<uint32_t> cluster_view::replicas(std::string_view tenant, uint32_t shard) const {
  std::vector<uint32_t> out;
  for (uint32_t r : ring_.preference(cluster::ring::shard_key(tenant, shard), opts_.replication_factor))
    out.push_back(static_cast<uint32_t>(ring_to_member_[r]));
  return out;
}

bool cluster_view::behind_locked(size_t i) const {
  if (i != 0 && (!hints_[i].empty() || dropped_[i])) return true;
  const std::string& name = opts_.members[i].name;
  for (size_t j = 1; j < rows_.size(); ++j) {
    if (j == i || rows_[j].state == cluster::node_state::down) continue;
    const auto& hf = rows_[j].hints_for;
    if (std::find(hf.begin(), hf.end(), name) != hf.end()) return true;
  }
  return false;
}

cluster_view::route cluster_view::route_to(size_t i) const {
  std::lock_guard lk(mu_);
  route r;
  r.handle = rows_[i].handle;
  r.state = rows_[i].state;
  r.behind = behind_locked(i);
  return r;
}

void cluster_view::set_peer(size_t i, cluster::node_state state, int64_t last_ms, uint64_t boot_id,
                            cluster_node_actor handle, bool connected) {
  std::lock_guard lk(mu_);
  auto& row = rows_[i];
  row.state = state;
  row.last_ms = last_ms;
  row.boot_id = boot_id;
  row.handle = std::move(handle);
  row.connected = connected;
}

void cluster_view::set_peer_hints(size_t i, std::vector<std::string> hints_for) {
  std::lock_guard lk(mu_);
  rows_[i].hints_for = std::move(hints_for);
}

bool cluster_view::ready(std::string* why) const {
  std::lock_guard lk(mu_);
  if (!joined_) {
    if (why) *why = "joining the cluster (waiting for every peer to answer, at most cluster.down_after)";
    return false;
  }
  uint32_t live = 0;
  for (size_t i = 0; i < rows_.size(); ++i)
    if (opts_.members[i].has_role("ingester") && rows_[i].state == cluster::node_state::alive) ++live;
  if (live < opts_.write_quorum) {
    if (why)
      *why = "ring has " + std::to_string(live) + " live ingester(s), a write quorum needs " +
             std::to_string(opts_.write_quorum);
    return false;
  }
  return true;
}

int cluster_view::compaction_owner(size_t writer, std::string_view tenant, uint32_t shard) const {
  std::vector<cluster::compaction_candidate> nodes;
  {
    std::lock_guard lk(mu_);
    if (!joined_ && writer != 0) return -1;  // before the first heartbeats every peer looks down
    for (size_t i = 0; i < rows_.size(); ++i)
      nodes.push_back({opts_.members[i].name, opts_.members[i].has_role("compactor"),
                       i == 0 || rows_[i].state != cluster::node_state::down});
  }
  return cluster::compaction_owner(nodes, writer, tenant, shard, opts_.tokens);
}

std::vector<adopted_partition> cluster_view::adopted_partitions(io::file_system& fs,
                                                                const std::string& shared_path) {
  std::vector<adopted_partition> out;
  for (size_t i = 1; i < size(); ++i) {
    if (route_to(i).state != cluster::node_state::down) continue;
    const std::string& node = member(i).name;
    auto tenants = fs.list_dir(shared_path + "/" + node);
    if (!tenants) continue;  // it never wrote anything here
    for (const auto& tenant : *tenants) {
      if (!valid_tenant_id(tenant)) continue;  // "cluster+hints" and the like
      auto shards = fs.list_dir(shared_path + "/" + node + "/" + tenant);
      if (!shards) continue;
      for (const auto& d : *shards) {
        if (d.rfind("shard-", 0) != 0) continue;
        char* end = nullptr;
        unsigned long shard = std::strtoul(d.c_str() + 6, &end, 10);
        if (end == d.c_str() + 6 || *end != '\0' || shard > UINT32_MAX) continue;
        if (compaction_owner(i, tenant, static_cast<uint32_t>(shard)) != 0) continue;
        out.push_back({node, tenant, static_cast<uint32_t>(shard),
                       shared_path + "/" + node + "/" + tenant + "/" + d});
      }
    }
  }
  metrics_.adopted_partitions.Set(static_cast<double>(out.size()));
  return out;
}

std::vector<cluster_node_status> cluster_view::status(int64_t now_ms) const {
  std::lock_guard lk(mu_);
  std::vector<cluster_node_status> out;
  for (size_t i = 0; i < rows_.size(); ++i) {
    const auto& m = opts_.members[i];
    cluster_node_status s;
    s.name = m.name;
    s.address = m.address;
    s.roles = m.roles;
    s.self = i == 0;
    s.state = rows_[i].state;
    s.connected = rows_[i].connected;
    s.last_heartbeat_ms = i == 0 ? now_ms : rows_[i].last_ms;
    s.boot_id = rows_[i].boot_id;
    for (size_t r = 0; r < ring_to_member_.size(); ++r)
      if (ring_to_member_[r] == static_cast<int>(i)) {
        s.tokens = ring_.tokens_per_node();
        s.ring_share = ring_.primary_share(static_cast<uint32_t>(r));
      }
    s.hints_held_for = hints_[i].size();
    s.behind = behind_locked(i);
    s.hints_for = i == 0 ? std::vector<std::string>{} : rows_[i].hints_for;
    if (i == 0)
      for (size_t j = 1; j < rows_.size(); ++j)
        if (!hints_[j].empty() || dropped_[j]) s.hints_for.push_back(opts_.members[j].name);
    out.push_back(std::move(s));
  }
  return out;
}

size_t cluster_view::persist_hints(io::file_system* fs, std::string dir) {
  fs_ = fs;
  hints_dir_ = std::move(dir);
  size_t loaded = 0;
  uint64_t max_seq = 0;
  for (size_t i = 1; i < opts_.members.size(); ++i) {
    std::string node_dir = hints_dir_ + "/" + opts_.members[i].name;
    if (auto s = fs_->create_dirs(node_dir); !s) {
      log::error("cluster", "hints directory " + node_dir + ": " + s.err().to_string());
      continue;
    }
    auto names = fs_->list_dir(node_dir);
    if (!names) continue;
    for (const auto& n : *names) {
      std::string path = node_dir + "/" + n;
      unsigned long long seq = 0;
      unsigned shard = 0;
      if (n.size() < 6 || n.substr(n.size() - 5) != ".hint" ||
          std::sscanf(n.c_str(), "%llu-%u.hint", &seq, &shard) != 2) {
        if (n.size() > 4 && n.substr(n.size() - 4) == ".tmp") (void)fs_->remove(path);  // a crash mid-write
        continue;
      }
      auto data = fs_->read_file(path);
      auto batch = data ? decode_batch(as_bytes(*data)) : result<ingest_batch>(data.err());
      if (!batch) {
        log::error("cluster", "hint " + path + " is unreadable, removing it: " + batch.err().to_string());
        (void)fs_->remove(path);
        std::lock_guard lk(mu_);
        dropped_[i] = true;
        continue;
      }
      max_seq = std::max<uint64_t>(max_seq, seq);
      uint64_t bytes = approx_batch_bytes(*batch);
      std::lock_guard lk(mu_);
      hints_[i].push_back(cluster_hint{shard, std::move(*batch), bytes, path});
      hint_bytes_ += bytes;
      ++loaded;
    }
    std::lock_guard lk(mu_);
    if (!hints_[i].empty()) {
      log::info("cluster", "loaded " + std::to_string(hints_[i].size()) + " hinted write(s) for " +
                               opts_.members[i].name + " from " + node_dir);
      metrics_.hints_pending.Add({{"node", opts_.members[i].name}}).Set(static_cast<double>(hints_[i].size()));
    }
  }
  hint_seq_ = max_seq + 1;
  metrics_.hint_bytes.Set(static_cast<double>(hint_bytes_));
  return loaded;
}

bool cluster_view::add_hint(size_t i, uint32_t shard, const ingest_batch& batch) {
  uint64_t bytes = approx_batch_bytes(batch);
  {
    std::lock_guard lk(mu_);
    if (hint_bytes_ + bytes > opts_.hint_max_bytes) {
      dropped_[i] = true;
      metrics_.hints_dropped.Increment();
      return false;
    }
    hint_bytes_ += bytes;  // reserved while the file is written (outside the lock)
  }
  std::string path;
  if (fs_ != nullptr) {
    char name[64];
    std::snprintf(name, sizeof name, "%020llu-%u.hint",
                  static_cast<unsigned long long>(hint_seq_.fetch_add(1)), shard);
    std::string p = hints_dir_ + "/" + opts_.members[i].name + "/" + name;
    std::string data = encode_batch(batch);
    if (auto s = fs_->write_file_atomic(p, as_bytes(data)); s) path = std::move(p);
    else log::error("cluster", "cannot persist a hint (kept in memory only): " + s.err().to_string());
  }
  std::lock_guard lk(mu_);
  hints_[i].push_back(cluster_hint{shard, batch, bytes, std::move(path)});
  metrics_.hints_stored.Increment();
  metrics_.hint_bytes.Set(static_cast<double>(hint_bytes_));
  metrics_.hints_pending.Add({{"node", opts_.members[i].name}}).Set(static_cast<double>(hints_[i].size()));
  return true;
}

bool cluster_view::peek_hint(size_t i, cluster_hint& out) const {
  std::lock_guard lk(mu_);
  if (hints_[i].empty()) return false;
  out = hints_[i].front();
  return true;
}

void cluster_view::pop_hint(size_t i) {
  std::string path;
  {
    std::lock_guard lk(mu_);
    if (hints_[i].empty()) return;
    hint_bytes_ -= hints_[i].front().bytes;
    path = std::move(hints_[i].front().path);
    hints_[i].pop_front();
    metrics_.hints_replayed.Increment();
    metrics_.hint_bytes.Set(static_cast<double>(hint_bytes_));
    metrics_.hints_pending.Add({{"node", opts_.members[i].name}}).Set(static_cast<double>(hints_[i].size()));
  }
  if (!path.empty() && fs_ != nullptr)
    if (auto s = fs_->remove(path); !s)
      log::warn("cluster", "cannot remove delivered hint " + path + ": " + s.err().to_string());
}

uint64_t cluster_view::hints_pending(size_t i) const {
  std::lock_guard lk(mu_);
  return hints_[i].size();
}

std::vector<std::string> cluster_view::hints_for() const {
  std::lock_guard lk(mu_);
  std::vector<std::string> out;
  for (size_t j = 1; j < rows_.size(); ++j)
    if (!hints_[j].empty() || dropped_[j]) out.push_back(opts_.members[j].name);
  return out;
}

}  // namespace hearth
