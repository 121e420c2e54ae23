#include "cluster/ring.hpp"

#include <algorithm>

#include "format/normalize.hpp"

namespace hearth::cluster {
namespace {

// splitmix64's finalizer: spreads close inputs (token index 0, 1, 2...) over the whole space.
uint64_t mix64(uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

}  // namespace

ring::ring(std::vector<std::string> nodes, uint32_t tokens_per_node)
    : nodes_(std::move(nodes)), tokens_per_node_(tokens_per_node) {
  tokens_.reserve(nodes_.size() * tokens_per_node);
  for (uint32_t n = 0; n < nodes_.size(); ++n)
    for (uint32_t i = 0; i < tokens_per_node; ++i) tokens_.push_back({token_of(nodes_[n], i), n});
  // Ties (astronomically unlikely) are broken by node name so every node sorts alike.
  std::sort(tokens_.begin(), tokens_.end(), [this](const token& a, const token& b) {
    return a.value != b.value ? a.value < b.value : nodes_[a.node] < nodes_[b.node];
  });
}

uint64_t ring::token_of(std::string_view name, uint32_t index) {
  return mix64(hash_bytes(name) ^ mix64(index));
}

uint64_t ring::shard_key(std::string_view tenant, uint32_t shard) {
  return mix64(hash_mix(hash_bytes(tenant), shard + 1));
}

std::vector<uint32_t> ring::preference(uint64_t key, uint32_t rf) const {
  std::vector<uint32_t> out;
  if (tokens_.empty()) return out;
  rf = std::min<uint32_t>(rf, static_cast<uint32_t>(nodes_.size()));
  auto it = std::lower_bound(tokens_.begin(), tokens_.end(), key,
                             [](const token& t, uint64_t k) { return t.value < k; });
  size_t start = static_cast<size_t>(it - tokens_.begin());
  for (size_t k = 0; k < tokens_.size() && out.size() < rf; ++k) {
    uint32_t n = tokens_[(start + k) % tokens_.size()].node;
    if (std::find(out.begin(), out.end(), n) == out.end()) out.push_back(n);
  }
  return out;
}

int ring::index_of(std::string_view name) const {
  for (size_t i = 0; i < nodes_.size(); ++i)
    if (nodes_[i] == name) return static_cast<int>(i);
  return -1;
}

double ring::primary_share(uint32_t i) const {
  if (tokens_.empty()) return 0;
  // A token owns the keys in (previous token, token]; the first one also the wrap-around range.
  long double owned = 0;
  for (size_t k = 0; k < tokens_.size(); ++k) {
    if (tokens_[k].node != i) continue;
    uint64_t prev = tokens_[k == 0 ? tokens_.size() - 1 : k - 1].value;
    owned += static_cast<long double>(tokens_[k].value - prev);  // unsigned wrap for k == 0
  }
  if (tokens_.size() == 1) return 1;
  return static_cast<double>(owned / 18446744073709551616.0L);
}

int compaction_owner(const std::vector<compaction_candidate>& nodes, size_t writer,
                     std::string_view tenant, uint32_t shard, uint32_t tokens) {
  const compaction_candidate& w = nodes[writer];
  if (w.live) return w.compactor ? static_cast<int>(writer) : -1;
  std::vector<std::string> names;
  std::vector<size_t> index;
  for (size_t i = 0; i < nodes.size(); ++i)
    if (i != writer && nodes[i].compactor) {
      names.push_back(nodes[i].name);
      index.push_back(i);
    }
  ring r(std::move(names), tokens);
  std::string key = w.name + "/" + std::string(tenant);
  for (uint32_t n : r.preference(ring::shard_key(key, shard), static_cast<uint32_t>(index.size())))
    if (nodes[index[n]].live) return static_cast<int>(index[n]);
  return -1;
}

}  // namespace hearth::cluster
