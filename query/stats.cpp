#include "query/stats.hpp"

#include <algorithm>
#include <iterator>

#include "query/block_query.hpp"

namespace hearth::query {
namespace {

int64_t floor_ms(int64_t ns) {
  constexpr int64_t ns_per_ms = 1'000'000;
  return ns / ns_per_ms - ((ns % ns_per_ms != 0) && ns < 0);
}

}  // namespace

profile_stats block_profile_stats(const block_data& block) {
  profile_stats s;
  const row_view rows(block);
  for (size_t i = 0; i < rows.size(); ++i) {
    const int64_t t = floor_ms(rows.time_ns(i));
    if (!s.data_ingested) {
      s = {true, t, t};
      continue;
    }
    s.oldest_profile_ms = std::min(s.oldest_profile_ms, t);
    s.newest_profile_ms = std::max(s.newest_profile_ms, t);
  }
  return s;
}

void merge_profile_stats(profile_stats& into, const profile_stats& from) {
  if (!from.data_ingested) return;
  if (!into.data_ingested) {
    into = from;
    return;
  }
  into.oldest_profile_ms = std::min(into.oldest_profile_ms, from.oldest_profile_ms);
  into.newest_profile_ms = std::max(into.newest_profile_ms, from.newest_profile_ms);
}

std::vector<label_set> series_label_sets(const block_data& block,
                                         const std::vector<matcher>& matchers,
                                         std::span<const std::string> label_names, int64_t start_ns,
                                         int64_t end_ns) {
  const std::vector<bool> in_range = series_in_range(block, start_ns, end_ns);
  std::vector<label_set> out;
  for (uint32_t id : select_series(block, matchers)) {
    if (!in_range[id]) continue;
    label_set ls = series_labels(block, id);
    if (!label_names.empty())
      std::erase_if(ls, [&](const label& l) {
        return std::find(label_names.begin(), label_names.end(), l.name) == label_names.end();
      });
    if (!ls.empty()) out.push_back(std::move(ls));
  }
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

void merge_label_sets(std::vector<label_set>& into, const std::vector<label_set>& from) {
  std::vector<label_set> out;
  out.reserve(into.size() + from.size());
  std::set_union(std::make_move_iterator(into.begin()), std::make_move_iterator(into.end()),
                 from.begin(), from.end(), std::back_inserter(out));
  into = std::move(out);
}

}  // namespace hearth::query
