#include "actors/partition_actor.hpp"

#include <algorithm>
#include <chrono>
#include <cinttypes>
#include <set>

#include "actors/log.hpp"
#include "actors/metrics.hpp"
#include "format/batch_codec.hpp"
#include "query/block_query.hpp"
#include "query/flame_tree.hpp"
#include "query/selector.hpp"

namespace hearth {
namespace {

using self_ptr = partition_actor::stateful_pointer<partition_state>;

int64_t wall_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::string who(const partition_state& st) {
  return "tenant=" + st.opts.tenant + " shard=" + std::to_string(st.opts.shard);
}

std::string segment_name(uint64_t seq) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%020" PRIu64 ".hseg", seq);
  return buf;
}

std::string wal_dir(const partition_state& st) { return st.opts.dir + "/wal"; }
std::string seg_dir(const partition_state& st) { return st.opts.dir + "/segments"; }

void report_head(partition_state& st) {
  double bytes = static_cast<double>(st.mem.bytes_estimate());
  double profiles = static_cast<double>(st.mem.profiles());
  st.metrics->head_bytes.Increment(bytes - st.head_bytes_reported);
  st.metrics->head_profiles.Increment(profiles - st.head_profiles_reported);
  st.head_bytes_reported = bytes;
  st.head_profiles_reported = profiles;
}

// Loads sealed segments, replays the WAL written after them into the head, and opens a fresh WAL
// file. Corrupt segments are reported and skipped: other blocks keep serving.
status recover(partition_state& st) {
  auto& fs = *st.fs;
  if (auto s = fs.create_dirs(seg_dir(st)); !s) return s;
  if (auto s = fs.create_dirs(wal_dir(st)); !s) return s;
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
    auto bytes = fs.read_file(path);
    if (!bytes) {
      log::error("partition", who(st) + " cannot read segment " + path + ": " + bytes.err().to_string());
      st.metrics->segments_corrupted.Increment();
      continue;
    }
    segment_info info;
    auto block = decode_segment(as_bytes(*bytes), &info);
    if (!block) {
      log::error("partition", who(st) + " segment " + path + " is corrupted and is not served: " +
                                  block.err().to_string());
      st.metrics->segments_corrupted.Increment();
      continue;
    }
    covered = std::max(covered, info.wal_seq);
    st.segments.push_back(std::make_shared<loaded_segment>(loaded_segment{path, info, std::move(*block)}));
  }
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
        return {};
      },
      &stats);
  if (!s) return s;
  st.metrics->wal_torn_tails.Increment(static_cast<double>(stats.torn_tails + stats.corrupt_records));
  st.wal_bytes_unsealed = stats.bytes;
  if (st.mem.profiles() > 0) st.head_first_append_ns = wall_ns();
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
  return {};
}

// Seals the head into a segment. The WAL is cut first, so the segment covers exactly the WAL files
// up to the returned sequence; those files are removed only after the segment is published.
void seal(self_ptr self) {
  auto& st = self->state;
  if (st.mem.profiles() == 0) return;
  auto seq = st.wal->cut();
  if (!seq) {
    log::error("partition", who(st) + " cannot cut WAL for sealing: " + seq.err().to_string());
    return;
  }
  block_data block = st.mem.seal();
  st.head_first_append_ns = 0;
  report_head(st);
  auto bytes = encode_segment(block, st.opts.codec, *seq);
  std::string path = seg_dir(st) + "/" + segment_name(*seq);
  status written = bytes ? st.fs->write_file_atomic(path, as_bytes(*bytes)) : status(bytes.err());
  auto seg = std::make_shared<loaded_segment>();
  seg->path = path;
  seg->info.wal_seq = *seq;
  seg->info.min_time_ns = block.min_time_ns;
  seg->info.max_time_ns = block.max_time_ns;
  seg->data = std::move(block);
  st.segments.push_back(seg);
  if (!written) {
    // The data stays served from memory and stays in the WAL; a restart replays it. Later seals
    // cover higher sequences, so they must not delete these WAL files: keep wal_bytes_unsealed.
    log::error("partition", who(st) + " cannot write segment " + path + ": " + written.err().to_string() +
                                "; data stays in the WAL");
    seg->path.clear();
    return;
  }
  st.metrics->segments_written.Increment();
  st.metrics->segment_bytes.Increment(static_cast<double>(bytes->size()));
  // Only remove WAL files when every earlier sealed block reached disk.
  bool all_on_disk = std::all_of(st.segments.begin(), st.segments.end(),
                                 [](const auto& s) { return !s->path.empty(); });
  if (all_on_disk) {
    if (auto r = st.wal->remove_up_to(*seq); !r)
      log::warn("partition", who(st) + " cannot remove WAL files up to " + std::to_string(*seq) +
                                 ": " + r.err().to_string());
    st.wal_bytes_unsealed = 0;
  }
  log::info("partition", who(st) + " sealed segment " + path + " (" + std::to_string(bytes->size()) +
                             " bytes, " + std::to_string(seg->data.profiles.size()) + " profiles)");
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
    // The failed file may hold a partial batch; continue in a fresh file. Replay tolerates it.
    auto w = io::wal_writer::open(*st.fs, wal_dir(st), io::wal_max_record_limit);
    if (w) st.wal = std::move(*w);
    return;
  }
  for (auto& w : waiting) {
    append_reply r;
    for (const auto& s : w.batch.series) {
      ++r.series;
      r.samples += s.sample_values.size();
    }
    if (st.head_first_append_ns == 0) st.head_first_append_ns = wall_ns();
    st.mem.append(w.batch);
    w.promise.deliver(std::move(r));
  }
  report_head(st);
  if (st.mem.bytes_estimate() > st.opts.head_max_bytes) seal(self);
}

void tree_to_partial(const query::flame_tree& t, tree_partial& out) {
  out.names = t.names();
  const auto& nodes = t.nodes();
  out.parents.reserve(nodes.size());
  out.name_ids.reserve(nodes.size());
  out.selfs.reserve(nodes.size());
  for (const auto& n : nodes) {
    out.parents.push_back(n.parent);
    out.name_ids.push_back(n.name);
    out.selfs.push_back(n.self);
  }
}

query_partial evaluate(const partition_state& st, const query_request& q) {
  query_partial out;
  auto ms = query::parse_selector(q.selector.empty() ? "{}" : q.selector);
  if (!ms) {
    out.status = reply_status::from(ms.err());
    return out;
  }
  if (!q.profile_type.empty()) {
    auto m = query::make_matcher("__profile_type__", query::matcher::op::eq, q.profile_type);
    if (!m) {
      out.status = reply_status::from(m.err());
      return out;
    }
    ms->push_back(std::move(*m));
  }
  std::vector<const block_data*> blocks;
  for (const auto& s : st.segments) blocks.push_back(&s->data);
  blocks.push_back(&st.mem.data());
  auto kind = static_cast<query_kind>(q.kind);
  std::set<std::string> values;
  query::flame_tree tree;
  for (const block_data* b : blocks) {
    if (b->profiles.empty() || b->max_time_ns < q.start_ns || b->min_time_ns >= q.end_ns) continue;
    switch (kind) {
      case query_kind::merge_stacks: {
        auto series = query::select_series(*b, *ms);
        if (series.empty()) break;
        query::merge_stacks(*b, series, q.start_ns, q.end_ns, tree);
        std::vector<bool> selected(b->series.size(), false);
        for (auto id : series) selected[id] = true;
        for (const auto& p : b->profiles) {
          if (!selected[p.series] || p.time_ns < q.start_ns || p.time_ns >= q.end_ns) continue;
          out.point_times_ns.push_back(p.time_ns);
          out.point_values.push_back(p.total);
          ++out.profiles;
        }
        break;
      }
      case query_kind::label_names:
        for (auto& v : query::label_names(*b, *ms, q.start_ns, q.end_ns)) values.insert(std::move(v));
        break;
      case query_kind::label_values:
        for (auto& v : query::label_values(*b, q.label_name, *ms, q.start_ns, q.end_ns))
          values.insert(std::move(v));
        break;
      case query_kind::profile_types:
        for (auto& v : query::profile_type_ids(*b, q.start_ns, q.end_ns)) values.insert(std::move(v));
        break;
      default:
        out.status = reply_status::from(error{errc::invalid_argument, "unknown query kind"});
        return out;
    }
  }
  if (kind == query_kind::merge_stacks) tree_to_partial(tree, out.tree);
  out.values.assign(values.begin(), values.end());
  return out;
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
        std::string record = encode_batch(batch);
        if (auto s = st.wal->append(as_bytes(record)); !s)
          return append_reply{reply_status::from(error{errc::unavailable,
                                                       "write-ahead log append failed: " +
                                                           s.err().message}),
                              0, 0};
        st.metrics->wal_bytes.Increment(static_cast<double>(record.size()));
        st.wal_bytes_unsealed += record.size();
        auto rp = self->make_response_promise<append_reply>();
        st.waiting.push_back(partition_state::pending{std::move(batch), rp});
        if (!st.flush_scheduled) {
          st.flush_scheduled = true;
          // Appends already in the mailbox are handled before this message: one sync for all.
          self->send(self, flush_atom::value);
        }
        return rp;
      },
      [self](query_atom, const query_request& q) -> query_partial {
        return evaluate(self->state, q);
      },
      [self](flush_atom) { flush(self); },
      [self](ready_atom) { return !self->state.failed; },
      [self](tick_atom) {
        auto& st = self->state;
        // Sync and apply pending appends first: sealing cuts the WAL, and records of appends that
        // are not in the head yet must not be deleted with the files the new segment covers.
        if (!st.waiting.empty()) flush(self);
        if (!st.failed && st.head_first_append_ns != 0 &&
            wall_ns() - st.head_first_append_ns > st.opts.head_max_age_ns)
          seal(self);
        self->delayed_send(self, std::chrono::seconds(1), tick_atom::value);
      },
  };
}

}  // namespace hearth
