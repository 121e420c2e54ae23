#include "actors/block_store.hpp"

#include <algorithm>
#include <optional>

#include "actors/log.hpp"
#include "actors/metrics.hpp"
#include "format/segment.hpp"
#include "io/segment_file.hpp"

namespace hearth {

uint64_t memory_of(const block_data& b) {
  uint64_t n = sizeof(block_data);
  for (const auto& s : b.syms.strings)
    n += sizeof(std::string) + (s.size() > 15 ? s.size() + 1 : 0);
  n += b.syms.functions.capacity() * sizeof(function_rec) +
       b.syms.lines.capacity() * sizeof(line_rec) +
       b.syms.locations.capacity() * sizeof(location_rec) +
       b.stacks.capacity() * sizeof(stack_node) + b.labels.capacity() * sizeof(label_ref) +
       b.series.capacity() * sizeof(series_rec) + b.profiles.capacity() * sizeof(profile_row) +
       b.samples.capacity() * sizeof(sample_rec) + b.spans.capacity() * sizeof(span_sample) +
       b.rows.series.capacity() * sizeof(uint32_t) +
       (b.rows.time_ns.capacity() + b.rows.total.capacity()) * sizeof(int64_t);
  return n;
}

namespace {
// Whether a block with the pairs of the series `have` marks (empty = all) has those of every
// series `want` marks.
bool covers(const std::vector<bool>& have, const std::vector<bool>& want) {
  if (have.empty()) return true;
  for (size_t i = 0; i < want.size(); ++i)
    if (want[i] && (i >= have.size() || !have[i])) return false;
  return true;
}
}  // namespace

block_store::lookup block_store::get(const std::string& path, query::block_depth depth,
                                     const series_filter& reads) {
  std::shared_ptr<const block_data> part;  // cached whole, but with some series' pairs only
  std::vector<bool> had;
  {
    std::lock_guard lock(mu_);
    if (corrupted_.count(path)) return {outcome::corrupted, nullptr};
    if (auto it = cache_.find(path); it != cache_.end() && it->second.depth >= depth) {
      if (depth != query::block_depth::whole || it->second.series.empty()) {
        it->second.last_use = ++clock_;
        return {outcome::ok, it->second.block};
      }
      part = it->second.block;
      had = it->second.series;
    }
  }
  if (part && reads && covers(had, reads(*part))) {
    std::lock_guard lock(mu_);
    if (auto it = cache_.find(path); it != cache_.end() && it->second.block == part)
      it->second.last_use = ++clock_;
    return {outcome::ok, std::move(part)};
  }
  // Row depths read only the sections they decode (io/segment_file.hpp).
  std::optional<result<block_data>> decoded;
  std::vector<bool> series;  // of a partial decode: the series whose pairs it has
  if (depth == query::block_depth::whole) {
    auto bytes = fs_->read_file(path);
    if (!bytes) return {outcome::missing, nullptr};
    if (reads) {
      decoded.emplace(decode_segment_series(as_bytes(*bytes), [&](const block_data& b) {
        series = reads(b);
        series.resize(b.series.size());
        for (size_t i = 0; i < had.size() && i < series.size(); ++i)
          series[i] = series[i] || had[i];
        return series;
      }));
      if (std::find(series.begin(), series.end(), false) == series.end()) series.clear();
    } else {
      decoded.emplace(decode_segment(as_bytes(*bytes)));
    }
  } else {
    const auto fields = depth == query::block_depth::rows ? row_fields::all : row_fields::columns;
    auto image = io::read_segment_rows(*fs_, path, fields);
    if (!image) return {outcome::missing, nullptr};
    decoded.emplace(decode_segment_rows(image->view(), fields));
  }
  result<block_data>& block = *decoded;
  std::lock_guard lock(mu_);
  if (!block) {
    report_corrupted_locked(path, block.err());
    return {outcome::corrupted, nullptr};
  }
  auto data = std::make_shared<const block_data>(std::move(*block));
  // A racing decode of the same file may have landed meanwhile: keep the deeper block, and of
  // two whole ones the one with more series' pairs.
  auto it = cache_.find(path);
  if (it == cache_.end() || it->second.depth < depth ||
      (depth == query::block_depth::whole &&
       (series.empty() || (!it->second.series.empty() && covers(series, it->second.series)))))
    put_locked(path, data, depth, std::move(series));
  return {outcome::ok, std::move(data)};
}

namespace {
// The cache key of the windowed block of `path`: '\n' is in no path the partitions write.
std::string outside_key(const std::string& path, int64_t lo_ns, int64_t hi_ns, int64_t step_ns) {
  return path + "\noutside " + std::to_string(lo_ns) + " " + std::to_string(hi_ns) + " " +
         std::to_string(step_ns);
}
}  // namespace

block_store::lookup block_store::get_outside(const std::string& path, int64_t lo_ns, int64_t hi_ns,
                                             int64_t step_ns, std::string* key) {
  *key = outside_key(path, lo_ns, hi_ns, step_ns);
  {
    std::lock_guard lock(mu_);
    if (corrupted_.count(path)) return {outcome::corrupted, nullptr};
    if (auto it = cache_.find(path); it != cache_.end() &&
                                     it->second.depth == query::block_depth::whole &&
                                     it->second.series.empty()) {
      it->second.last_use = ++clock_;
      *key = path;
      return {outcome::ok, it->second.block};
    }
    if (auto it = cache_.find(*key); it != cache_.end()) {
      it->second.last_use = ++clock_;
      return {outcome::ok, it->second.block};
    }
  }
  auto bytes = fs_->read_file(path);
  if (!bytes) return {outcome::missing, nullptr};
  auto block = decode_segment_outside(as_bytes(*bytes), lo_ns, hi_ns, step_ns);
  std::lock_guard lock(mu_);
  if (!block) {
    report_corrupted_locked(path, block.err());
    return {outcome::corrupted, nullptr};
  }
  auto data = std::make_shared<const block_data>(std::move(*block));
  put_locked(*key, data);
  return {outcome::ok, std::move(data)};
}

void block_store::report_corrupted_locked(const std::string& path, const error& e) {
  if (!corrupted_.insert(path).second) return;
  if (metrics_) metrics_->segments_corrupted.Increment();
  log::error("blocks", "segment " + path + " is corrupted and is not served: " + e.to_string());
}

void block_store::put(const std::string& path, std::shared_ptr<const block_data> block) {
  std::lock_guard lock(mu_);
  put_locked(path, std::move(block));
}

void block_store::put_locked(const std::string& path, std::shared_ptr<const block_data> block,
                             query::block_depth depth, std::vector<bool> series) {
  entry e{std::move(block), 0, ++clock_, depth, std::move(series)};
  e.mem = memory_of(*e.block);
  if (auto it = cache_.find(path); it != cache_.end()) {
    // A whole block decoded again for more series' pairs has the same stacks: keep their map.
    const entry& old = it->second;
    if (depth == query::block_depth::whole && old.depth == depth && old.frames &&
        old.frames->dict == dict_ && old.frames->node.size() == e.block->stacks.size()) {
      e.frames = old.frames;
      e.mem += e.frames->bytes();
    }
    bytes_ -= old.mem;
    cache_.erase(it);
  }
  bytes_ += e.mem;
  cache_[path] = std::move(e);
  evict_locked(path);
}

// Evicts least recently used blocks over the budget (never `keep`).
void block_store::evict_locked(const std::string& keep) {
  while (bytes_ > max_bytes_ && cache_.size() > 1) {
    auto victim = cache_.end();
    for (auto it = cache_.begin(); it != cache_.end(); ++it)
      if (it->first != keep &&
          (victim == cache_.end() || it->second.last_use < victim->second.last_use))
        victim = it;
    bytes_ -= victim->second.mem;
    cache_.erase(victim);
  }
}

std::shared_ptr<const query::block_frames> block_store::frames(
    const std::string& path, const std::shared_ptr<const block_data>& block) {
  std::shared_ptr<query::frame_dict> dict;
  {
    std::lock_guard lock(mu_);
    auto it = cache_.find(path);
    if (it == cache_.end() || it->second.block != block ||
        it->second.depth != query::block_depth::whole)
      return nullptr;
    if (it->second.frames) return it->second.frames;
    dict = dict_;
  }
  auto frames = dict->map(*block);  // outside the lock: the dictionary locks itself
  if (metrics_ && frames) {
    metrics_->frame_dict_paths.Set(static_cast<double>(dict->size()));
    metrics_->frame_dict_bytes.Set(static_cast<double>(dict->bytes()));
  }
  std::lock_guard lock(mu_);
  if (!frames) {
    // The dictionary is full: start a new one and drop the maps into the old one, which is
    // freed once no query or cached partial uses it.
    if (dict_ == dict) {
      log::info("blocks", "frame dictionary full (" + std::to_string(dict->size()) +
                              " paths): starting a new one");
      dict_ = std::make_shared<query::frame_dict>(dict_budget(max_bytes_));
      if (metrics_) {
        metrics_->frame_dict_resets.Increment();
        metrics_->frame_dict_paths.Set(static_cast<double>(dict_->size()));
        metrics_->frame_dict_bytes.Set(static_cast<double>(dict_->bytes()));
      }
      for (auto& [p, e] : cache_)
        if (e.frames && e.frames->dict == dict) {
          e.mem -= e.frames->bytes();
          bytes_ -= e.frames->bytes();
          e.frames.reset();
        }
    }
    return nullptr;
  }
  auto it = cache_.find(path);
  // Evicted meanwhile, or mapped into a dictionary that was replaced meanwhile: answer this
  // query with the map but do not keep it (it would pin the old dictionary).
  if (it == cache_.end() || it->second.block != block || dict_ != dict) return frames;
  if (!it->second.frames) {
    it->second.frames = frames;
    it->second.mem += frames->bytes();
    bytes_ += frames->bytes();
    evict_locked(path);
  }
  return it->second.frames;
}

void block_store::drop(const std::string& path) {
  std::lock_guard lock(mu_);
  const std::string windowed = path + "\n";
  for (auto it = cache_.begin(); it != cache_.end();) {
    if (it->first == path || it->first.rfind(windowed, 0) == 0) {
      bytes_ -= it->second.mem;
      it = cache_.erase(it);
    } else {
      ++it;
    }
  }
  corrupted_.erase(path);
}

bool block_store::corrupted(const std::string& path) const {
  std::lock_guard lock(mu_);
  return corrupted_.count(path) > 0;
}

}  // namespace hearth
