#include "actors/partition_actor.hpp"

#include <algorithm>
#include <chrono>
#include <cinttypes>
#include <random>
#include <map>
#include <set>
#include <thread>

#include "actors/admission.hpp"
#include "actors/clock.hpp"
#include "actors/log.hpp"
#include "actors/metrics.hpp"
#include "format/batch_codec.hpp"
#include "format/compaction_plan.hpp"
#include "io/segment_file.hpp"
#include "query/block_query.hpp"
#include "query/flame_tree.hpp"
#include "query/selector.hpp"

namespace hearth {
namespace {

// The identity of a series for the active-series limit: a hash of its whole label set.
uint64_t series_key(const label_set& ls) {
  uint64_t h = 0;
  for (const auto& l : ls) h = hash_mix(hash_mix(h, hash_bytes(l.name)), hash_bytes(l.value));
  return h;
}


using self_ptr = partition_actor::stateful_pointer<partition_state>;

std::string who(const partition_state& st) {
  return "tenant=" + st.opts.tenant + " shard=" + std::to_string(st.opts.shard);
}

std::string ms(int64_t ns) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f", static_cast<double>(ns) / 1e6);
  return buf;
}

}  // namespace

std::string segment_file_name(const segment_info& info) {
  char buf[64];
  if (info.rollup_step_ns > 0)
    std::snprintf(buf, sizeof buf, "L%u-%016" PRIx64 "-r%" PRId64 "s.hseg", info.level, info.block_id,
                  info.rollup_step_ns / 1000000000);
  else
    std::snprintf(buf, sizeof buf, "L%u-%016" PRIx64 ".hseg", info.level, info.block_id);
  return buf;
}

namespace {

std::string wal_dir(const partition_state& st) { return st.opts.dir + "/wal"; }
std::string seg_dir(const partition_state& st) { return st.opts.dir + "/segments"; }

// On-disk blocks live in the shared block store (read there by reader actors); a frozen head's
// block, not on disk yet, is pinned in its loaded_segment.
void forget_block(partition_state& st, loaded_segment& s) {
  s.data.reset();
  if (!s.path.empty()) st.opts.store->drop(s.path);
}

void report_head(partition_state& st) {
  double bytes = static_cast<double>(st.mem.bytes_estimate());
  double profiles = static_cast<double>(st.mem.profiles());
  st.metrics->head_bytes.Increment(bytes - st.head_bytes_reported);
  st.metrics->head_profiles.Increment(profiles - st.head_profiles_reported);
  st.head_bytes_reported = bytes;
  st.head_profiles_reported = profiles;
}

// Tells the distributor whether this partition refuses appends for its WAL size (the check in the
// append handler). Called wherever wal_bytes_unsealed may have changed.
void publish_admission(partition_state& st) {
  const bool over = st.wal_bytes_unsealed > st.opts.wal_max_bytes;
  if (st.opts.admission == nullptr || over == st.over_limit_published) return;
  st.opts.admission->set_over_limit(st.opts.tenant, st.opts.shard, over);
  st.over_limit_published = over;
}

}  // namespace

uint64_t new_block_id() {
  thread_local std::mt19937_64 rng{std::random_device{}()};
  uint64_t id = 0;
  while (id == 0 || (id >> 63)) id = rng() >> 1;  // ids with the top bit are derived for v1 files
  return id;
}

namespace {

// A compaction publishes its output (which names its sources) before it deletes the inputs; a
// crash in between leaves both on disk. The output wins (superseded_blocks, which also finds
// orphaned rollups): those files are deleted here, so that a block's data is visible exactly once.
// Recovery reads footers only, but before an output's inputs are deleted as superseded the output
// is read and every section's CRC checked: a damaged one is dropped from the catalog (reported,
// its file kept), so its inputs, no longer superseded, keep serving.
// The ids of the listed blocks that others supersede, ascending (superseded_blocks).
std::vector<uint64_t> superseded_ids(const partition_state& st) {
  std::vector<block_lineage> lineage;
  for (const auto& s : st.segments)
    lineage.push_back({s->id(), s->info.rollup_step_ns, s->info.sources});
  return superseded_blocks(lineage);
}

void check_superseding(partition_state& st) {
  const auto gone = superseded_ids(st);
  if (gone.empty()) return;
  std::erase_if(st.segments, [&](const std::shared_ptr<loaded_segment>& s) {
    if (s->info.rollup_step_ns != 0 ||
        std::none_of(s->info.sources.begin(), s->info.sources.end(), [&](uint64_t src) {
          return std::binary_search(gone.begin(), gone.end(), src);
        }))
      return false;
    // Every section's CRC, the footer's and the TOC's (no section is decompressed): a day's
    // 42 MB block takes ~4 ms, where a full decode took 0.3-0.6 s and its memory. Since
    // compaction deletes replaced files only after a delay, a restart usually finds some.
    auto bytes = st.fs->read_file(s->path);
    auto sections = bytes ? read_segment_sections(as_bytes(*bytes))
                          : result<std::vector<segment_section_info>>(bytes.err());
    std::string why = sections ? "" : sections.err().to_string();
    if (sections)
      for (const auto& sec : *sections)
        if (!sec.crc_ok && why.empty()) why = "section " + sec.name + " fails its CRC";
    if (why.empty()) return false;
    log::error("partition", who(st) + " segment " + s->path +
                                " is corrupted and is not served; its sources stay: " + why);
    st.metrics->segments_corrupted.Increment();
    return true;
  });
}

void drop_obsolete(partition_state& st) {
  const auto gone = superseded_ids(st);
  std::vector<std::shared_ptr<loaded_segment>> keep;
  for (auto& s : st.segments) {
    if (std::binary_search(gone.begin(), gone.end(), s->id())) {
      log::info("partition", who(st) + " removing superseded " + s->path);
      if (auto r = st.fs->remove(s->path); !r)
        log::warn("partition", who(st) + " cannot remove " + s->path + ": " + r.err().to_string());
      forget_block(st, *s);
      continue;
    }
    keep.push_back(std::move(s));
  }
  st.segments = std::move(keep);
  (void)st.fs->sync_dir(seg_dir(st));
}

// Loads sealed segments, replays the WAL written after them into the head, and opens a fresh WAL
// file. Corrupt segments are reported and skipped: other blocks keep serving.
status recover(partition_state& st) {
  auto& fs = *st.fs;
  if (auto s = fs.create_dirs(seg_dir(st)); !s) return s;
  if (auto s = fs.create_dirs(wal_dir(st)); !s) return s;
  if (!st.opts.lock_holder.empty()) {
    // On shared storage: no other node's compactor may touch this directory while it is served.
    auto deadline = std::chrono::steady_clock::now() + st.opts.lock_wait;
    bool told = false;
    for (;;) {
      auto lock = io::file_lock::try_acquire(st.opts.dir + "/owner.lock", st.opts.lock_holder);
      if (lock) {
        st.owner_lock = std::move(*lock);
        if (told) log::info("partition", who(st) + " took " + st.owner_lock->path());
        break;
      }
      if (lock.err().code != errc::unavailable || std::chrono::steady_clock::now() >= deadline)
        return lock.err();
      if (!told) log::warn("partition", who(st) + " waiting: " + lock.err().message);
      told = true;
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
    }
  }
  auto names = fs.list_dir(seg_dir(st));
  if (!names) return names.err();
  uint64_t covered = 0;
  for (const auto& name : *names) {
    std::string path = seg_dir(st) + "/" + name;
    if (name.size() > 4 && name.compare(name.size() - 4, 4, ".tmp") == 0) {
      (void)fs.remove(path);  // an unpublished write from before a crash
      continue;
    }
    if (name.size() < 5 || name.compare(name.size() - 5, 5, ".hseg") != 0) continue;
    // The footer alone: the sections are read, checked and cached when a query first needs them
    // (block_store reports a damaged one then), so a start costs per file, not per byte.
    uint64_t size = 0;
    auto info = io::read_segment_footer(fs, path, &size);
    if (!info) {
      log::error("partition", who(st) +
                                  (io::segment_damaged(info.err())
                                       ? " segment " + path + " is corrupted and is not served: "
                                       : " cannot read segment " + path + ": ") +
                                  info.err().to_string());
      st.metrics->segments_corrupted.Increment();
      continue;
    }
    covered = std::max(covered, info->wal_seq);
    auto seg = std::make_shared<loaded_segment>();
    seg->path = path;
    seg->bytes = size;
    seg->info = *info;
    st.segments.push_back(seg);
  }
  check_superseding(st);
  drop_obsolete(st);
  io::wal_replay_stats stats;
  uint64_t replayed_profiles = 0;
  auto s = io::replay_wal(
      fs, wal_dir(st), covered,
      [&](uint64_t seq, bytes_view payload) -> status {
        auto batch = decode_batch(payload);
        if (!batch) {
          // The CRC matched, so the bytes are what we wrote: an undecodable record is a format bug,
          // not disk damage. Skip it loudly rather than refuse the whole partition.
          log::error("partition", who(st) + " skipping undecodable WAL record in file " +
                                      std::to_string(seq) + ": " + batch.err().to_string());
          st.metrics->wal_torn_tails.Increment();
          return {};
        }
        replayed_profiles += batch->series.size();
        st.mem.append(*batch);
        for (const auto& s : batch->series) st.active_series.insert(series_key(s.labels));
        return {};
      },
      &stats);
  if (!s) return s;
  st.metrics->wal_torn_tails.Increment(static_cast<double>(stats.torn_tails + stats.corrupt_records));
  st.wal_bytes_unsealed = stats.bytes;
  st.wal_bytes_head = stats.bytes;
  if (st.mem.profiles() > 0) st.head_first_append_ns = wall_clock_ns();
  auto w = io::wal_writer::open(fs, wal_dir(st), io::wal_max_record_limit);
  if (!w) return w.err();
  st.wal = std::move(*w);
  if (covered > 0) {
    if (auto r = st.wal->remove_up_to(covered); !r)
      log::warn("partition", who(st) + " cannot remove covered WAL files: " + r.err().to_string());
  }
  log::info("partition", who(st) + " recovered: " + std::to_string(st.segments.size()) +
                             " segments, " + std::to_string(stats.records) + " WAL records (" +
                             std::to_string(replayed_profiles) + " series profiles) from " +
                             std::to_string(stats.files) + " files, " +
                             std::to_string(stats.torn_tails) + " torn tails, io=" +
                             std::string(fs.name()));
  report_head(st);
  publish_admission(st);
  return {};
}

// A failed WAL write or sync leaves the writer poisoned (retrying an fsync after EIO can falsely
// succeed). Refuse what waits on it and continue in a fresh file; replay tolerates the old tail.
void reopen_wal(partition_state& st) {
  auto w = io::wal_writer::open(*st.fs, wal_dir(st), io::wal_max_record_limit);
  if (!w) {
    log::error("partition", who(st) + " cannot reopen the WAL: " + w.err().to_string());
    return;  // the poisoned writer keeps refusing appends; a later failure retries
  }
  st.wal = std::move(*w);
}

void refuse_waiting(partition_state& st, const error& why) {
  auto waiting = std::move(st.waiting);
  st.waiting.clear();
  for (auto& w : waiting) w.promise.deliver(append_reply{reply_status::from(why), 0, 0});
}

void answer_seal_waiters(partition_state& st, bool ok) {
  auto waiters = std::move(st.seal_waiters);
  st.seal_waiters.clear();
  for (auto& w : waiters) w.deliver(ok);
}

// Starts writing the oldest frozen head that is not on disk yet, on a detached sealer thread.
// The block stays in `segments` (pinned, answering queries) while it is written; `seal_done`
// publishes it in the catalog when the thread reports back.
void start_seal_job(self_ptr self) {
  auto& st = self->state;
  if (st.sealing) return;
  loaded_segment* next = nullptr;
  for (auto& s : st.segments)
    if (s->path.empty() && s->data && (!next || s->info.wal_seq < next->info.wal_seq))
      next = s.get();
  if (!next) {
    answer_seal_waiters(st, true);
    return;
  }
  st.sealing = true;
  segment_info meta;
  meta.wal_seq = next->info.wal_seq;
  meta.block_id = next->info.block_id;
  meta.level = 0;
  std::string path = seg_dir(st) + "/" + segment_file_name(meta);
  auto part = caf::actor_cast<partition_actor>(self);
  self->spawn<caf::detached>([part, path, meta, data = next->data, codec = st.opts.codec,
                              fs = st.fs](caf::blocking_actor* sealer) {
    auto started = std::chrono::steady_clock::now();
    seal_result r;
    r.block_id = meta.block_id;
    r.path = path;
    auto bytes = encode_segment(*data, codec, meta);
    status written = bytes ? fs->write_file_atomic(path, as_bytes(*bytes)) : status(bytes.err());
    if (written)
      r.bytes = bytes->size();
    else
      r.status = reply_status::from(written.err());
    r.took_ns = std::chrono::duration_cast<std::chrono::nanoseconds>(
                    std::chrono::steady_clock::now() - started)
                    .count();
    sealer->send(part, seal_atom::value, std::move(r));
  });
}

// Freezes the head: cuts the WAL (so the frozen block covers exactly the WAL files up to the
// returned sequence), moves the head's block into `segments` as a pinned, not yet durable
// segment and hands it to the sealer. Those WAL files are removed only once it is on disk.
// While a seal is in flight the head keeps growing: `seal_done` freezes it afterwards, so at
// most one frozen head waits beside the open one.
// Admits the batch against this partition's share of limits.max_series_per_tenant (all or
// nothing: a refused batch adds no series) and records its new series as active.
status admit_series(partition_state& st, const ingest_batch& b) {
  const uint64_t max = st.opts.limiter ? st.opts.limiter->limits_of(st.opts.tenant).max_series : 0;
  if (max == 0) {
    for (const auto& s : b.series) st.active_series.insert(series_key(s.labels));
    return {};
  }
  const uint64_t shards = std::max<uint32_t>(1, st.opts.shards);
  const uint64_t local = (max + shards - 1) / shards;
  std::vector<uint64_t> fresh;
  for (const auto& s : b.series) {
    uint64_t k = series_key(s.labels);
    if (!st.active_series.count(k) && std::find(fresh.begin(), fresh.end(), k) == fresh.end())
      fresh.push_back(k);
  }
  if (st.active_series.size() + fresh.size() > local)
    return error{errc::overloaded,
                 "series limit of tenant " + quote_untrusted(st.opts.tenant) +
                     " reached: limits.max_series_per_tenant=" + std::to_string(max) + " (" +
                     std::to_string(local) + " per shard, " + std::to_string(st.active_series.size()) +
                     " active in shard " + std::to_string(st.opts.shard) + ", the request adds " +
                     std::to_string(fresh.size()) + ")"};
  st.active_series.insert(fresh.begin(), fresh.end());
  return {};
}

void freeze(self_ptr self) {
  auto& st = self->state;
  if (st.mem.profiles() == 0) return;
  if (!st.waiting.empty()) return;  // flush() first: their records must not be cut off unsynced
  if (st.sealing) return;
  auto started = std::chrono::steady_clock::now();
  auto seq = st.wal->cut();
  if (!seq) {
    log::error("partition", who(st) + " cannot cut WAL for sealing: " + seq.err().to_string());
    reopen_wal(st);
    return;
  }
  auto block = std::make_shared<const block_data>(st.mem.seal());
  st.active_series.clear();
  st.head_first_append_ns = 0;
  st.wal_bytes_head = 0;
  report_head(st);
  auto seg = std::make_shared<loaded_segment>();
  seg->info.wal_seq = *seq;
  seg->info.block_id = new_block_id();
  seg->info.level = 0;
  seg->info.min_time_ns = block->min_time_ns;
  seg->info.max_time_ns = block->max_time_ns;
  seg->info.profiles = block->profiles.size();
  seg->info.samples = block->samples.size();
  seg->data = std::move(block);
  st.segments.push_back(seg);
  st.freeze_took_ns = std::chrono::duration_cast<std::chrono::nanoseconds>(
                          std::chrono::steady_clock::now() - started)
                          .count();
  start_seal_job(self);
}

bool head_due(const partition_state& st) {
  if (st.failed || st.head_first_append_ns == 0) return false;
  // By size, by age, and when the unsealed WAL nears its limit: otherwise a partition that
  // answers 429 would keep answering it until its head ages out.
  return st.mem.bytes_estimate() > st.opts.head_max_bytes ||
         wall_clock_ns() - st.head_first_append_ns > st.opts.head_max_age_ns ||
         st.wal_bytes_unsealed > st.opts.wal_max_bytes / 2;
}

// The sealer thread's report. On success the segment joins the catalog, and once no frozen head
// is left in memory only, the WAL files it covers go. On failure the block stays pinned and in
// the WAL (a restart replays it); the write is retried later.
void seal_done(self_ptr self, const seal_result& r) {
  auto& st = self->state;
  st.sealing = false;
  auto it = std::find_if(st.segments.begin(), st.segments.end(), [&](const auto& s) {
    return s->path.empty() && s->info.block_id == r.block_id;
  });
  if (it == st.segments.end()) {
    log::error("partition",
               who(st) + " sealer reported unknown block " + std::to_string(r.block_id));
  } else if (!r.status.ok()) {
    log::error("partition", who(st) + " cannot write segment " + r.path + ": " + r.status.message +
                                "; data stays in the WAL");
    st.seal_retry_ns = wall_clock_ns() + 5'000'000'000;
    answer_seal_waiters(st, false);
    return;
  } else {
    loaded_segment& seg = **it;
    seg.path = r.path;
    seg.bytes = r.bytes;
    seg.info.version = segment_current_version;  // the sealer's encode_segment wrote it
    // Durable now: the block moves to the shared store, where readers find it by path.
    st.opts.store->put(seg.path, std::move(seg.data));
    seg.data.reset();
    st.metrics->segments_written.Increment();
    st.metrics->segment_bytes.Increment(static_cast<double>(r.bytes));
    log::info("partition", who(st) + " sealed segment " + r.path + " (" + std::to_string(r.bytes) +
                               " bytes, " + std::to_string(seg.info.profiles) +
                               " profiles; head frozen in " + ms(st.freeze_took_ns) +
                               " ms on the partition thread, encoded and written in " +
                               ms(r.took_ns) + " ms by the sealer)");
    bool all_on_disk = std::all_of(st.segments.begin(), st.segments.end(),
                                   [](const auto& s) { return !s->path.empty(); });
    if (all_on_disk) {
      if (auto rm = st.wal->remove_up_to(seg.info.wal_seq); !rm)
        log::warn("partition", who(st) + " cannot remove WAL files up to " +
                                   std::to_string(seg.info.wal_seq) + ": " + rm.err().to_string());
      st.wal_bytes_unsealed = st.wal_bytes_head;
      publish_admission(st);
    }
  }
  if (st.waiting.empty() && head_due(st)) freeze(self);
  start_seal_job(self);
}

void flush(self_ptr self) {
  auto& st = self->state;
  st.flush_scheduled = false;
  if (st.waiting.empty()) return;
  auto synced = st.wal->sync();
  st.metrics->wal_fsyncs.Increment();
  auto waiting = std::move(st.waiting);
  st.waiting.clear();
  if (!synced) {
    log::error("partition", who(st) + " WAL sync failed, " + std::to_string(waiting.size()) +
                                " appends refused: " + synced.err().to_string());
    for (auto& w : waiting)
      w.promise.deliver(append_reply{reply_status::from(error{errc::unavailable,
                                                              "write-ahead log sync failed: " +
                                                                  synced.err().message}),
                                     0, 0});
    reopen_wal(st);
    return;
  }
  if (st.head_first_append_ns == 0) st.head_first_append_ns = wall_clock_ns();
  for (auto& w : waiting) st.mem.append(w.batch);
  // Gauges first: a client that saw its ack must also see the head that holds its profile.
  report_head(st);
  for (auto& w : waiting) {
    append_reply r;
    for (const auto& s : w.batch.series) {
      ++r.series;
      r.samples += s.sample_values.size();
    }
    w.promise.deliver(std::move(r));
  }
  if (st.mem.bytes_estimate() > st.opts.head_max_bytes) {
    freeze(self);
    publish_admission(st);
  }
}

// Evaluates one selection over what only this partition holds in memory (the head, frozen heads)
// and lists the segment files a reader actor must evaluate (with the rollup to use, if any), so
// that no segment is read or scanned on this thread, which also acknowledges appends.
query_partial evaluate(partition_state& st, const query::query_spec& q) {
  query_partial out;
  auto ev = query::evaluator::make(q);
  if (!ev) {
    out.status = reply_status::from(ev.err());
    return out;
  }
  auto kind = ev->kind();
  // Raw blocks answer everything; a rollup of a raw block answers the buckets it fully covers.
  std::map<uint64_t, std::vector<loaded_segment*>> rollups;
  for (const auto& s : st.segments)
    if (s->info.rollup_step_ns > 0 && !s->info.sources.empty())
      rollups[s->info.sources[0]].push_back(s.get());
  query::profile_stats footer_stats;
  for (const auto& sp : st.segments) {
    loaded_segment* seg = sp.get();
    if (seg->info.rollup_step_ns != 0 || seg->info.profiles == 0) continue;
    if (kind == query::query_kind::profile_stats) {
      // The footer answers without reading the block.
      query::merge_profile_stats(footer_stats, query::profile_stats{true, seg->info.min_time_ns / 1000000,
                                                                    seg->info.max_time_ns / 1000000});
      continue;
    }
    if (seg->info.max_time_ns < q.start_ns || seg->info.min_time_ns >= q.end_ns) continue;
    if (seg->path.empty()) {  // a frozen head: in memory only
      if (kind == query::query_kind::analyze) ev->note_block(0);
      ev->add(*seg->data);
      continue;
    }
    segment_ref ref;
    ref.path = seg->path;
    ref.bytes = seg->bytes;
    ref.min_time_ns = seg->info.min_time_ns;
    ref.max_time_ns = seg->info.max_time_ns;
    // A flame graph or an export may take the coarsest usable rollup whose aligned interior is
    // not empty (query::choose_rollup); the reader then reads the raw block only for rows outside
    // it. An export's times come from the rows: only rollups that keep them exact.
    if (auto it = rollups.find(seg->id()); it != rollups.end()) {
      const bool exact_times = kind == query::query_kind::merge_pprof;
      std::vector<int64_t> steps;
      std::vector<loaded_segment*> usable;
      for (loaded_segment* r : it->second)
        if (!r->path.empty() && !st.opts.store->corrupted(r->path) &&
            (!exact_times || r->info.version >= segment_exact_rollup_times_version)) {
          steps.push_back(r->info.rollup_step_ns);
          usable.push_back(r);
        }
      const query::rollup_choice c = query::choose_rollup(q, steps);
      if (c.index != SIZE_MAX) {
        ref.rollup_path = usable[c.index]->path;
        ref.rollup_step_ns = steps[c.index];
        ref.rollup_lo_ns = c.lo_ns;
        ref.rollup_hi_ns = c.hi_ns;
      }
    }
    out.to_read.push_back(std::move(ref));
  }
  // The head: it has no rollups.
  const block_data& h = st.mem.data();
  if (!h.profiles.empty()) {
    if (kind == query::query_kind::analyze && h.max_time_ns >= q.start_ns && h.min_time_ns < q.end_ns)
      ev->note_block(0);
    ev->add(h);
  }
  out.data = std::move(*ev).finish();
  query::merge_profile_stats(out.data.stats, footer_stats);
  return out;
}

catalog_snapshot snapshot(const partition_state& st) {
  catalog_snapshot c;
  c.tenant = st.opts.tenant;
  c.shard = st.opts.shard;
  c.segments_dir = seg_dir(st);
  for (const auto& s : st.segments) {
    if (s->path.empty()) continue;  // not on disk: nothing to compact from
    block_entry e;
    e.id = s->id();
    e.level = s->info.level;
    e.rollup_step_ns = s->info.rollup_step_ns;
    e.min_time_ns = s->info.min_time_ns;
    e.max_time_ns = s->info.max_time_ns;
    e.bytes = s->bytes;
    e.profiles = s->info.profiles;
    e.samples = s->info.samples;
    e.wal_seq = s->info.wal_seq;
    e.path = s->path;
    e.sources = s->info.sources;
    e.version = s->info.version;
    c.blocks.push_back(std::move(e));
  }
  return c;
}

// Deletes blocks from memory and disk; rollups of a deleted raw block go with it. With
// `unlink_later`, the files are not deleted but their paths appended to it.
uint64_t remove_blocks(partition_state& st, const std::set<uint64_t>& ids, const char* why,
                       std::vector<std::string>* unlink_later = nullptr) {
  uint64_t n = 0;
  std::vector<std::shared_ptr<loaded_segment>> keep;
  for (auto& s : st.segments) {
    bool derived = s->info.rollup_step_ns > 0 && !s->info.sources.empty() && ids.count(s->info.sources[0]);
    if (!ids.count(s->id()) && !derived) {
      keep.push_back(std::move(s));
      continue;
    }
    ++n;
    forget_block(st, *s);
    if (unlink_later != nullptr) {
      if (!s->path.empty()) unlink_later->push_back(s->path);
    } else if (!s->path.empty()) {
      if (auto r = st.fs->remove(s->path); !r)
        log::warn("partition", who(st) + " cannot remove " + s->path + ": " + r.err().to_string());
      else
        log::info("partition", who(st) + " removed " + s->path + " (" + why + ")");
    }
  }
  st.segments = std::move(keep);
  if (unlink_later == nullptr) (void)st.fs->sync_dir(seg_dir(st));
  return n;
}

swap_reply swap(partition_state& st, const swap_request& req) {
  auto started = std::chrono::steady_clock::now();
  swap_reply r;
  auto discard = [&](error e) {
    for (const auto& p : req.outputs) (void)st.fs->remove(p);
    r.status = reply_status::from(e);
    return r;
  };
  std::set<uint64_t> live;
  for (const auto& s : st.segments) live.insert(s->id());
  for (uint64_t id : req.inputs)
    if (!live.count(id))
      // Retention (or another swap) removed an input meanwhile: publishing the output would
      // resurrect deleted data.
      return discard(error{errc::not_found, "compaction input " + std::to_string(id) +
                                                " is gone; output discarded"});
  // The compactor validated every output (a full decode) and sends its footer along: this thread
  // also acknowledges appends, so it reads no file here. Blocks are decoded into the cache only
  // when a query first needs them.
  if (req.blocks.size() != req.outputs.size())
    return discard(
        error{errc::invalid_argument, "swap request has " + std::to_string(req.outputs.size()) +
                                          " outputs but " + std::to_string(req.blocks.size()) +
                                          " block entries"});
  std::vector<std::shared_ptr<loaded_segment>> loaded;
  for (size_t i = 0; i < req.outputs.size(); ++i) {
    const std::string& tmp = req.outputs[i];
    const block_entry& e = req.blocks[i];
    if (tmp.size() < 5 || tmp.compare(tmp.size() - 4, 4, ".tmp") != 0 ||
        e.path != tmp.substr(0, tmp.size() - 4))
      return discard(error{errc::invalid_argument,
                           "compaction output " + tmp + " is not a .tmp file of " + e.path});
    auto seg = std::make_shared<loaded_segment>();
    seg->info.block_id = e.id;
    seg->info.level = e.level;
    seg->info.rollup_step_ns = e.rollup_step_ns;
    seg->info.min_time_ns = e.min_time_ns;
    seg->info.max_time_ns = e.max_time_ns;
    seg->info.profiles = e.profiles;
    seg->info.samples = e.samples;
    seg->info.wal_seq = e.wal_seq;
    seg->info.sources = e.sources;
    seg->info.version = e.version;
    seg->bytes = e.bytes;
    seg->path = e.path;
    loaded.push_back(std::move(seg));
  }
  // The commit point is the rename of the raw output (it names its sources); rollups follow. The
  // directory is synced by the compactor, off this thread, before it deletes the inputs: until
  // then a crash leaves the inputs (the renames lost) or both (recovery deletes the sources an
  // output names), never neither.
  for (auto& seg : loaded) {
    if (auto s = st.fs->rename(seg->path + ".tmp", seg->path); !s) {
      log::error("partition", who(st) + " cannot publish " + seg->path + ": " + s.err().to_string());
      if (&seg == &loaded.front()) return discard(s.err());
      seg->path.clear();  // a rollup that failed: the raw block still answers
    }
  }
  for (auto& seg : loaded)
    if (!seg->path.empty()) st.segments.push_back(std::move(seg));
  remove_blocks(st, std::set<uint64_t>(req.inputs.begin(), req.inputs.end()), "compacted",
                &r.obsolete);
  r.applied = true;
  log::info("partition", who(st) + " swapped in " + std::to_string(loaded.size()) +
                             " compacted blocks for " + std::to_string(req.inputs.size()) + " in " +
                             ms(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                    std::chrono::steady_clock::now() - started)
                                    .count()) +
                             " ms");
  return r;
}

}  // namespace

partition_actor::behavior_type partition_fn(self_ptr self, partition_options opts, io::file_system* fs,
                                            self_metrics* metrics) {
  auto& st = self->state;
  st.opts = std::move(opts);
  st.fs = fs;
  st.metrics = metrics;
  if (auto s = recover(st); !s) {
    st.failed = true;
    st.failure = s.err().to_string();
    log::error("partition", who(st) + " failed to recover, refusing writes: " + st.failure);
  }
  self->delayed_send(self, std::chrono::seconds(1), tick_atom::value);
  return {
      [self](append_atom, ingest_batch& batch) -> caf::result<append_reply> {
        auto& st = self->state;
        if (st.failed)
          return append_reply{reply_status::from(error{errc::unavailable,
                                                       "partition is not writable: " + st.failure}),
                              0, 0};
        if (st.wal_bytes_unsealed > st.opts.wal_max_bytes)
          return append_reply{
              reply_status::from(error{errc::overloaded,
                                       "write-ahead log of " + who(st) + " holds " +
                                           std::to_string(st.wal_bytes_unsealed) +
                                           " unsealed bytes, over storage.wal_max_bytes=" +
                                           std::to_string(st.opts.wal_max_bytes) + "; retry later"}),
              0, 0};
        if (auto s = admit_series(st, batch); !s) {
          st.metrics->ingest_series_limited.Increment();
          return append_reply{reply_status::from(s.err()), 0, 0};
        }
        std::string record = encode_batch(batch);
        if (auto s = st.wal->append(as_bytes(record)); !s) {
          error why{errc::unavailable, "write-ahead log append failed: " + s.err().message};
          // Earlier appends waiting for the sync share the poisoned file: refuse them too, or the
          // fresh file's sync would acknowledge records that never reached disk.
          refuse_waiting(st, why);
          reopen_wal(st);
          return append_reply{reply_status::from(why), 0, 0};
        }
        st.metrics->wal_bytes.Increment(static_cast<double>(record.size()));
        st.wal_bytes_unsealed += record.size();
        publish_admission(st);
        st.wal_bytes_head += record.size();
        auto rp = self->make_response_promise<append_reply>();
        st.waiting.push_back(partition_state::pending{std::move(batch), rp});
        if (!st.flush_scheduled) {
          st.flush_scheduled = true;
          // Appends already in the mailbox are handled before this message: one sync for all.
          self->send(self, flush_atom::value);
        }
        return rp;
      },
      [self](query_atom, const query::query_spec& q) -> query_partial {  // NOLINT
        return evaluate(self->state, q);
      },
      [self](flush_atom) { flush(self); },
      [self](ready_atom) { return !self->state.failed; },
      [self](catalog_atom) { return snapshot(self->state); },
      [self](swap_atom, const swap_request& req) { return swap(self->state, req); },
      [self](drop_atom, const std::vector<uint64_t>& ids) {
        return remove_blocks(self->state, std::set<uint64_t>(ids.begin(), ids.end()), "retention");
      },
      [self](tick_atom) {
        auto& st = self->state;
        // Sync and apply pending appends first: sealing cuts the WAL, and records of appends that
        // are not in the head yet must not be deleted with the files the new segment covers.
        if (!st.waiting.empty()) flush(self);
        if (head_due(st)) {
          freeze(self);
          publish_admission(st);
        }
        // A frozen head whose write failed is retried (oldest first) once the backoff passed.
        if (!st.sealing && wall_clock_ns() >= st.seal_retry_ns) start_seal_job(self);
        self->delayed_send(self, std::chrono::seconds(1), tick_atom::value);
      },
      [self](seal_atom, const seal_result& r) { seal_done(self, r); },
      [self](sealed_atom) -> caf::result<bool> {
        auto& st = self->state;
        bool pending = std::any_of(st.segments.begin(), st.segments.end(),
                                   [](const auto& s) { return s->path.empty() && s->data; });
        if (!pending) return true;
        auto rp = self->make_response_promise<bool>();
        st.seal_waiters.push_back(rp);
        if (!st.sealing) start_seal_job(self);  // a failed write: retry now for the waiter
        return rp;
      },
  };
}

}  // namespace hearth
