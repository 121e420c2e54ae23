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
  for_each_row(block, [&](uint32_t, int64_t time_ns, int64_t) {
    const int64_t t = floor_ms(time_ns);
    if (!s.data_ingested) {
      s = {true, t, t};
      return;
    }
    s.oldest_profile_ms = std::min(s.oldest_profile_ms, t);
    s.newest_profile_ms = std::max(s.newest_profile_ms, t);
  });
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
  std::vector<bool> in_range(block.series.size(), false);
  if (start_ns < end_ns)
    for_each_row(block, [&](uint32_t s, int64_t t, int64_t) {
      if (s < in_range.size() && t >= start_ns && t < end_ns) in_range[s] = true;
    });
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
