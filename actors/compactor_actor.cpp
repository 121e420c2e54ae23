#include "actors/compactor_actor.hpp"

#include <algorithm>
#include <limits>
#include <random>
#include <set>
#include <utility>

#include "actors/clock.hpp"
#include "actors/log.hpp"
#include "actors/metrics.hpp"
#include "actors/partition_actor.hpp"
#include "format/compact.hpp"
#include "format/segment.hpp"
#include "io/file_lock.hpp"
#include "io/priority.hpp"
#include "io/segment_file.hpp"

namespace hearth {
namespace {

using self_ptr = compactor_actor::stateful_pointer<compactor_state>;

std::string who(const catalog_snapshot& c) {
  return "tenant=" + c.tenant + " shard=" + std::to_string(c.shard);
}

std::string who(const adopted_partition& p) {
  return "node=" + p.node + " tenant=" + p.tenant + " shard=" + std::to_string(p.shard);
}

void add_report(compaction_report& into, const compaction_report& r) {
  into.jobs += r.jobs;
  into.blocks_in += r.blocks_in;
  into.blocks_out += r.blocks_out;
  into.bytes_in += r.bytes_in;
  into.bytes_out += r.bytes_out;
  into.duplicates += r.duplicates;
  into.dropped += r.dropped;
}

// The deletion delay's clock: delayed_send's, which wall-clock steps do not move.
int64_t steady_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

// Deletes the replaced files that are due and publishes what the queue still holds.
void remove_due(compactor_state& st) {
  st.replaced.remove_due(*st.fs, steady_ns());
  st.metrics->compaction_deferred_bytes.Set(static_cast<double>(st.replaced.bytes()));
}

// Queues the files `r` replaced (after the directory sync) for deletion opts.deletion_delay later.
status finish_and_queue(self_ptr self, const catalog_snapshot& cat, const swap_reply& r) {
  auto& st = self->state;
  auto s = finish_swap(*st.fs, cat, r, st.replaced,
                       steady_ns() + std::chrono::nanoseconds(st.opts.deletion_delay).count());
  if (s && st.opts.deletion_delay.count() > 0)
    self->delayed_send(self, st.opts.deletion_delay, delete_atom::value);
  remove_due(st);
  return s;
}

int64_t retention_of(const compactor_options& o, const std::string& tenant) {
  auto it = o.tenant_retention_ns.find(tenant);
  return it != o.tenant_retention_ns.end() ? it->second : o.retention_ns;
}

struct run_context {
  std::vector<partition_actor> parts;
  size_t next = 0;
  compaction_report report;
  std::vector<caf::typed_response_promise<compaction_report>> waiters;
  bool retention_only = false;  ///< an operator's retention run: deletions, no compaction jobs
};

void finish_run(self_ptr self, std::shared_ptr<run_context> ctx) {
  self->state.running = false;
  if (ctx->report.jobs || ctx->report.dropped)
    log::info("compactor", "run: " + std::to_string(ctx->report.jobs) + " jobs, " +
                               std::to_string(ctx->report.blocks_in) + " blocks -> " +
                               std::to_string(ctx->report.blocks_out) + ", " +
                               std::to_string(ctx->report.bytes_in) + " -> " +
                               std::to_string(ctx->report.bytes_out) + " bytes, " +
                               std::to_string(ctx->report.dropped) + " dropped by retention");
  for (auto& w : ctx->waiters) w.deliver(ctx->report);
}

void next_partition(self_ptr self, std::shared_ptr<run_context> ctx);

// Runs the jobs of one partition one after another: each job's swap is answered before the next
// job is planned against the new catalog state.
void run_jobs(self_ptr self, std::shared_ptr<run_context> ctx, partition_actor part,
              std::shared_ptr<catalog_snapshot> cat, std::vector<compaction_job> jobs, size_t i) {
  if (i >= jobs.size()) return next_partition(self, ctx);
  const compaction_job& job = jobs[i];
  compaction_report job_report;
  auto req = run_compaction_job(*self->state.fs, *cat, job, self->state.opts.policy, job_report);
  if (!req) {
    log::error("compactor", who(*cat) + " job over " + std::to_string(job.inputs.size()) +
                                " blocks failed: " + req.err().to_string());
    self->state.metrics->compaction_failures.Increment();
    return run_jobs(self, ctx, part, cat, std::move(jobs), i + 1);
  }
  self->request(part, std::chrono::seconds(60), swap_atom::value, std::move(*req))
      .then(
          [self, ctx, part, cat, jobs, i, job_report](swap_reply& r) mutable {
            auto& m = *self->state.metrics;
            bool durable = true;
            if (r.applied) {
              if (auto s = finish_and_queue(self, *cat, r); !s) {
                log::error("compactor", who(*cat) + " swap published but not yet durable, " +
                                            std::to_string(r.obsolete.size()) +
                                            " replaced files kept; no more jobs here until a "
                                            "directory sync succeeds: " + s.err().to_string());
                self->state.unfinished[cat->segments_dir] = r;
                durable = false;
              }
              job_report.jobs = 1;
              add_report(ctx->report, job_report);
              m.compactions.Increment();
              m.compaction_in_bytes.Increment(static_cast<double>(job_report.bytes_in));
              m.compaction_out_bytes.Increment(static_cast<double>(job_report.bytes_out));
            } else {
              m.compaction_failures.Increment();
              log::warn("compactor", who(*cat) + " swap not applied: " + r.status.message);
            }
            if (!durable) return next_partition(self, ctx);
            run_jobs(self, ctx, part, cat, std::move(jobs), i + 1);
          },
          [self, ctx, cat](caf::error& e) {
            self->state.metrics->compaction_failures.Increment();
            log::error("compactor", who(*cat) + " swap failed: " + caf::to_string(e) +
                                        "; no more jobs here until a restart");
            // The partition may have applied it without our learning which files it replaced:
            // an entry that is not `applied` blocks this partition's jobs for good.
            self->state.unfinished[cat->segments_dir] = swap_reply{};
            next_partition(self, ctx);
          });
}

std::vector<block_ref> refs_of(const catalog_snapshot& c) {
  std::vector<block_ref> refs;
  refs.reserve(c.blocks.size());
  for (const auto& b : c.blocks)
    refs.push_back(block_ref{b.id, b.level, b.rollup_step_ns, b.min_time_ns, b.max_time_ns, b.bytes,
                             b.profiles, b.samples});
  return refs;
}

// Other nodes' partitions this node owns now (shared storage, their node down), after its own.
void run_adopted(self_ptr self, std::shared_ptr<run_context> ctx) {
  auto& st = self->state;
  if (!st.opts.adopted) return;
  for (const adopted_partition& p : st.opts.adopted()) {
    auto r = maintain_adopted(*st.fs, p, st.opts, wall_clock_ns(), st.adopted_footers,
                              !ctx->retention_only);
    if (!r) {
      log::warn("compactor", who(p) + " skipped: " + r.err().to_string());
      continue;
    }
    add_report(ctx->report, *r);
    auto& m = *st.metrics;
    m.compactions.Increment(static_cast<double>(r->jobs));
    m.compaction_in_bytes.Increment(static_cast<double>(r->bytes_in));
    m.compaction_out_bytes.Increment(static_cast<double>(r->bytes_out));
    m.retention_deleted.Increment(static_cast<double>(r->dropped));
  }
}

void next_partition(self_ptr self, std::shared_ptr<run_context> ctx) {
  if (ctx->next >= ctx->parts.size()) {
    run_adopted(self, ctx);
    return finish_run(self, ctx);
  }
  auto part = ctx->parts[ctx->next++];
  self->request(part, std::chrono::seconds(60), catalog_atom::value)
      .then(
          [self, ctx, part](catalog_snapshot& snap) {
            auto& st = self->state;
            auto cat = std::make_shared<catalog_snapshot>(std::move(snap));
            if (auto it = st.unfinished.find(cat->segments_dir); it != st.unfinished.end()) {
              if (!it->second.applied) return next_partition(self, ctx);  // outcome unknown
              if (auto s = finish_and_queue(self, *cat, it->second); !s) {
                log::warn("compactor", who(*cat) + " skipped: an earlier swap is still not "
                                                   "durable: " + s.err().to_string());
                return next_partition(self, ctx);
              }
              st.unfinished.erase(it);
            }
            int64_t retention = retention_of(st.opts, cat->tenant);
            int64_t now = wall_clock_ns();
            auto refs = refs_of(*cat);
            // Retention first; compaction is planned only over what survives, and the partition
            // refuses a swap whose inputs are gone, so deleted data never comes back.
            auto plan = plan_maintenance(refs, st.opts.policy, retention, now);
            // Replaced files retention would drop go first (deferred_removals::remove_expired).
            if (st.replaced.remove_expired(*st.fs, cat->segments_dir, retention, now) > 0)
              st.metrics->compaction_deferred_bytes.Set(static_cast<double>(st.replaced.bytes()));
            auto jobs = std::move(plan.jobs);
            if (ctx->retention_only) jobs.clear();
            if (plan.deletions.empty()) return run_jobs(self, ctx, part, cat, std::move(jobs), 0);
            self->request(part, std::chrono::seconds(60), drop_atom::value, plan.deletions)
                .then(
                    [self, ctx, part, cat, jobs](uint64_t n) mutable {
                      ctx->report.dropped += n;
                      self->state.metrics->retention_deleted.Increment(static_cast<double>(n));
                      run_jobs(self, ctx, part, cat, std::move(jobs), 0);
                    },
                    [self, ctx](caf::error&) { next_partition(self, ctx); });
          },
          [self, ctx](caf::error& e) {
            log::warn("compactor", "partition did not return its catalog: " + caf::to_string(e));
            next_partition(self, ctx);
          });
}

void start_run(self_ptr self, std::shared_ptr<run_context> ctx) {
  self->state.running = true;
  self->request(self->state.ingester, std::chrono::seconds(30), list_atom::value)
      .then(
          [self, ctx](std::vector<partition_actor>& parts) {
            ctx->parts = std::move(parts);
            next_partition(self, ctx);
          },
          [self, ctx](caf::error& e) {
            ctx->report.status =
                reply_status::from(error{errc::unavailable, "ingester: " + caf::to_string(e)});
            finish_run(self, ctx);
          });
}

}  // namespace

result<swap_request> run_compaction_job(io::file_system& fs, const catalog_snapshot& cat,
                                        const compaction_job& job, const compaction_policy& policy,
                                        compaction_report& report) {
  // Inputs are loaded with their pairs still encoded and merged column to column
  // (format/compact.hpp, merge_segments): no input or output pair is ever held as a sample_rec.
  std::vector<segment_columns> inputs;
  std::vector<std::string> paths;
  segment_info meta;
  meta.block_id = new_block_id();
  meta.level = job.output_level;
  for (uint64_t id : job.inputs) {
    auto it = std::find_if(cat.blocks.begin(), cat.blocks.end(), [&](const auto& b) { return b.id == id; });
    if (it == cat.blocks.end()) return error{errc::not_found, "input block " + std::to_string(id) + " not in catalog"};
    auto bytes = fs.read_file(it->path);
    if (!bytes) return bytes.err();
    auto cols = decode_segment_columns(as_bytes(*bytes));
    if (!cols) return error{cols.err().code, it->path + ": " + cols.err().message};
    report.bytes_in += bytes->size();
    inputs.push_back(std::move(*cols));
    paths.push_back(it->path);
    // The output covers every WAL position its inputs covered (recovery skips those files).
    meta.wal_seq = std::max(meta.wal_seq, it->wal_seq);
    meta.sources.push_back(id);
  }
  std::vector<const segment_columns*> ptrs;
  for (const auto& c : inputs) ptrs.push_back(&c);
  merge_stats stats;
  auto merged = merge_segments(ptrs, merge_options{}, &stats);
  if (!merged) {
    // The merge names a damaged input by its position ("input 2: ..."); the operator needs its file.
    std::string msg = merged.err().message + " (inputs in order:";
    for (const std::string& path : paths) msg += " " + path;
    return error{merged.err().code, msg + ")"};
  }
  report.blocks_in = inputs.size();
  report.duplicates = stats.duplicates;
  ptrs.clear();
  inputs.clear();
  swap_request req;
  req.inputs = job.inputs;
  int level = job.output_level >= 2 ? policy.l2_zstd_level : policy.l1_zstd_level;
  // Every output is encoded before any is written: the merged block, then its rollups
  // (format/compact.hpp, roll_up).
  std::vector<std::pair<std::string, segment_info>> encoded;  // commit order: raw, then rollups
  {
    auto bytes = encode_segment(merged->block, merged->samples, segment_codec::zstd, meta, level);
    if (!bytes) return bytes.err();
    encoded.emplace_back(std::move(*bytes), meta);
    auto rolled = roll_up(std::move(*merged), job.rollup_steps_ns);
    if (!rolled) return rolled.err();
    for (size_t k = 0; k < rolled->size(); ++k) {
      segment_info rm;
      rm.block_id = new_block_id();
      rm.level = job.output_level;
      rm.rollup_step_ns = job.rollup_steps_ns[k];
      rm.sources = {meta.block_id};
      const merged_segment& r = (*rolled)[k];
      auto rb = encode_segment(r.block, r.samples, segment_codec::zstd, rm, level);
      if (!rb) return rb.err();
      encoded.emplace_back(std::move(*rb), rm);
    }
  }
  auto cleanup = [&](error e) {
    for (const auto& p : req.outputs) (void)fs.remove(p);
    return e;
  };
  for (auto& [bytes, m] : encoded) {
    // The partition publishes from this footer without reading the file. The footer is read back
    // (its CRC and TOC checked) rather than the whole file decoded: encode_segment has checked
    // every invariant of the block it wrote, and a full decode cost a fifth of the job.
    auto info = read_segment_info(as_bytes(bytes));
    if (!info)
      return cleanup(
          error{errc::internal, "compaction output does not read back: " + info.err().message});
    block_entry e;
    e.id = info->block_id;
    e.level = info->level;
    e.rollup_step_ns = info->rollup_step_ns;
    e.min_time_ns = info->min_time_ns;
    e.max_time_ns = info->max_time_ns;
    e.bytes = bytes.size();
    e.profiles = info->profiles;
    e.samples = info->samples;
    e.wal_seq = info->wal_seq;
    e.path = cat.segments_dir + "/" + segment_file_name(m);
    e.sources = info->sources;
    e.version = info->version;
    std::string tmp = e.path + ".tmp";
    if (auto s = fs.write_file_atomic(tmp, as_bytes(bytes)); !s) return cleanup(s.err());
    req.outputs.push_back(tmp);
    req.blocks.push_back(std::move(e));
    report.bytes_out += bytes.size();
    report.blocks_out += 1;
    std::string().swap(bytes);
  }
  return req;
}

status finish_swap(io::file_system& fs, const catalog_snapshot& cat, const swap_reply& reply,
                   deferred_removals& later, int64_t due_ns) {
  if (auto s = fs.sync_dir(cat.segments_dir); !s)
    if (auto again = fs.sync_dir(cat.segments_dir); !again) return again;
  for (const auto& path : reply.obsolete) {
    deferred_removals::file f{path, std::numeric_limits<int64_t>::max(), 0, due_ns};
    for (const block_entry& b : cat.blocks)
      if (b.path == path) {
        f.max_time_ns = b.max_time_ns;
        f.bytes = b.bytes;
      }
    later.add(std::move(f));
  }
  return {};
}

void deferred_removals::add(file f) {
  bytes_ += f.bytes;
  files_.push_back(std::move(f));
}

bool deferred_removals::remove(io::file_system& fs, const file& f) {
  bytes_ -= f.bytes;
  auto s = fs.remove(f.path);
  if (s) {
    log::info("compactor", "removed " + f.path + " (compacted)");
    return true;
  }
  if (s.err().code == errc::not_found) return true;
  log::warn("compactor", "cannot remove " + f.path + ": " + s.err().to_string());
  return false;
}

size_t deferred_removals::remove_due(io::file_system& fs, int64_t now_ns) {
  size_t n = 0;
  while (!files_.empty() && files_.front().due_ns <= now_ns) {
    n += remove(fs, files_.front());
    files_.pop_front();
  }
  return n;
}

size_t deferred_removals::remove_expired(io::file_system& fs, const std::string& dir,
                                         int64_t retention_ns, int64_t now_ns) {
  std::vector<block_ref> under;  // id = position in the queue
  for (size_t i = 0; i < files_.size(); ++i)
    if (files_[i].path.starts_with(dir + "/"))
      under.push_back(block_ref{i, 0, 0, 0, files_[i].max_time_ns, 0, 0, 0});
  auto expired = plan_retention(under, retention_ns, now_ns);
  if (expired.empty()) return 0;
  std::set<uint64_t> gone(expired.begin(), expired.end());
  std::deque<file> keep;
  size_t n = 0;
  for (size_t i = 0; i < files_.size(); ++i)
    if (gone.count(i))
      n += remove(fs, files_[i]);
    else
      keep.push_back(std::move(files_[i]));
  files_ = std::move(keep);
  return n;
}

namespace {

// Deletes `ids` and the rollups derived from them from `cat` and from disk; true if any file went.
bool delete_blocks(io::file_system& fs, catalog_snapshot& cat, const std::set<uint64_t>& ids,
                   const std::string& why) {
  bool any = false;
  std::vector<block_entry> keep;
  for (auto& b : cat.blocks) {
    bool derived = b.rollup_step_ns > 0 && !b.sources.empty() && ids.count(b.sources[0]);
    if (!ids.count(b.id) && !derived) {
      keep.push_back(std::move(b));
      continue;
    }
    if (auto r = fs.remove(b.path); r) {
      log::info("compactor", "removed " + b.path + " (" + why + ")");
      any = true;
    } else if (r.err().code != errc::not_found) {
      log::warn("compactor", "cannot remove " + b.path + ": " + r.err().to_string());
    }
  }
  cat.blocks = std::move(keep);
  return any;
}

}  // namespace

result<compaction_report> maintain_adopted(io::file_system& fs, const adopted_partition& p,
                                           const compactor_options& opts, int64_t now_ns,
                                           footer_cache& footers, bool compact) {
  auto lock = io::file_lock::try_acquire(p.dir + "/owner.lock", opts.lock_holder);
  if (!lock) return lock.err();
  compaction_report report;
  catalog_snapshot cat;
  cat.tenant = p.tenant;
  cat.shard = p.shard;
  cat.segments_dir = p.dir + "/segments";
  auto names = fs.list_dir(cat.segments_dir);
  if (!names && names.err().code == errc::not_found) return report;
  if (!names) return names.err();
  std::set<std::pair<std::string, uint64_t>> seen;
  for (const auto& name : *names) {
    std::string path = cat.segments_dir + "/" + name;
    if (name.size() > 4 && name.compare(name.size() - 4, 4, ".tmp") == 0) {
      (void)fs.remove(path);  // a write its node (or an earlier owner) never published
      continue;
    }
    if (name.size() < 5 || name.compare(name.size() - 5, 5, ".hseg") != 0) continue;
    auto size = fs.file_size(path);
    if (!size) continue;
    auto key = std::make_pair(path, *size);
    seen.insert(key);
    auto it = footers.find(key);
    if (it == footers.end()) {
      auto info = io::read_segment_footer(fs, path);
      if (!info && !io::segment_damaged(info.err())) continue;  // gone, or unreadable now
      if (!info)
        log::error("compactor", who(p) + " segment " + path + " is corrupted and is not compacted: " +
                                    info.err().to_string());
      it = footers.emplace(key, info ? std::optional<segment_info>(*info) : std::nullopt).first;
    }
    if (!it->second) continue;
    const segment_info& info = *it->second;
    block_entry e;
    e.id = info.catalog_id();
    e.level = info.level;
    e.rollup_step_ns = info.rollup_step_ns;
    e.min_time_ns = info.min_time_ns;
    e.max_time_ns = info.max_time_ns;
    e.bytes = *size;
    e.profiles = info.profiles;
    e.samples = info.samples;
    e.wal_seq = info.wal_seq;
    e.path = path;
    e.sources = info.sources;
    e.version = info.version;
    cat.blocks.push_back(std::move(e));
  }
  for (auto it = footers.begin(); it != footers.end();)  // forget files of this directory that went
    it = (it->first.first.rfind(cat.segments_dir + "/", 0) == 0 && !seen.count(it->first))
             ? footers.erase(it)
             : std::next(it);
  bool changed = false;
  {
    std::vector<block_lineage> lineage;
    for (const auto& b : cat.blocks) lineage.push_back({b.id, b.rollup_step_ns, b.sources});
    auto gone = superseded_blocks(lineage);
    changed |= delete_blocks(fs, cat, {gone.begin(), gone.end()}, "superseded");
  }
  auto plan = plan_maintenance(refs_of(cat), opts.policy, retention_of(opts, p.tenant), now_ns);
  if (!plan.deletions.empty()) {
    report.dropped = plan.deletions.size();
    changed |= delete_blocks(fs, cat, {plan.deletions.begin(), plan.deletions.end()}, "retention");
  }
  if (changed)
    if (auto s = fs.sync_dir(cat.segments_dir); !s) return s.err();
  if (!compact) return report;
  if (plan.jobs.size() > max_adopted_jobs) plan.jobs.resize(max_adopted_jobs);
  for (const compaction_job& job : plan.jobs) {
    compaction_report job_report;
    auto req = run_compaction_job(fs, cat, job, opts.policy, job_report);
    if (!req) return req.err();
    // The partition's commit protocol: the raw output's rename is the commit point (it names its
    // sources), the directory sync makes it durable, and only then do the inputs go.
    for (size_t i = 0; i < req->outputs.size(); ++i) {
      if (auto s = fs.rename(req->outputs[i], req->blocks[i].path); !s) {
        for (size_t j = i; j < req->outputs.size(); ++j) (void)fs.remove(req->outputs[j]);
        if (i == 0) return s.err();
        req->blocks.resize(i);  // a rollup that failed: the raw block still answers
        break;
      }
    }
    if (auto s = fs.sync_dir(cat.segments_dir); !s) return s.err();  // inputs kept: superseded later
    delete_blocks(fs, cat, {job.inputs.begin(), job.inputs.end()}, "compacted");
    if (auto s = fs.sync_dir(cat.segments_dir); !s) return s.err();
    for (auto& b : req->blocks) cat.blocks.push_back(std::move(b));
    job_report.jobs = 1;
    add_report(report, job_report);
    log::info("compactor", who(p) + " compacted " + std::to_string(job.inputs.size()) +
                               " blocks into level " + std::to_string(job.output_level) + " for its node");
  }
  return report;
}

namespace {
// An operator's or a test's run (compact_atom, retention_atom): refused while one is running.
caf::result<compaction_report> start_requested_run(self_ptr self, bool retention_only) {
  if (self->state.running) {
    compaction_report busy;  // one run at a time
    busy.status = reply_status::from(error{errc::overloaded, "a compaction run is in progress"});
    return busy;
  }
  auto ctx = std::make_shared<run_context>();
  ctx->retention_only = retention_only;
  auto rp = self->make_response_promise<compaction_report>();
  ctx->waiters.push_back(rp);
  start_run(self, ctx);
  return rp;
}
}  // namespace

compactor_actor::behavior_type compactor_fn(self_ptr self, compactor_options opts,
                                            ingester_actor ingester, io::file_system* fs,
                                            self_metrics* metrics) {
  auto& st = self->state;
  st.opts = std::move(opts);
  st.ingester = std::move(ingester);
  st.fs = fs;
  st.metrics = metrics;
  // This runs on the actor's own (detached) thread: compaction's CPU and I/O then yield to the
  // partitions and distributor workers that acknowledge ingest (docs/bench.md, "Compaction
  // throughput and ingest").
  if (auto s = io::make_thread_background(); !s)
    log::warn("compactor", "runs at normal priority: " + s.err().to_string());
  if (st.opts.enabled) self->delayed_send(self, st.opts.interval, tick_atom::value);
  // At shutdown no query is left to read the replaced files: they go now, rather than at the
  // next start (which would read each output that names them first, to check it).
  self->set_exit_handler([self](caf::exit_msg& msg) {
    auto& st = self->state;
    st.replaced.remove_due(*st.fs, std::numeric_limits<int64_t>::max());
    self->quit(msg.reason);
  });
  return {
      [self](tick_atom) {
        if (!self->state.running) start_run(self, std::make_shared<run_context>());
        self->delayed_send(self, self->state.opts.interval, tick_atom::value);
      },
      [self](delete_atom) { remove_due(self->state); },
      [self](compact_atom) { return start_requested_run(self, false); },
      [self](retention_atom) { return start_requested_run(self, true); },
  };
}

}  // namespace hearth
