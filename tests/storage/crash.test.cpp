// Fault-injection crash tests of the storage path (partition WAL + head + seal, compaction +
// swap) through io/: every write, sync, directory sync and rename the workload does is made to
// fail in turn (EIO, and a few ENOSPC), the machine then "loses power" (io::fault_file_system::
// crash: unsynced bytes, unsynced renames and unsynced creations are undone), and a new partition
// recovers the directory. Invariants after recovery:
//   1. every acknowledged append is present exactly once (its profiles and totals match);
//   2. an unacknowledged append is absent or present exactly once (never doubled or partial);
//   3. recovery succeeds (ready), leaves no .tmp file, and no block is visible twice.
// A second mode restarts without the power loss (the process died after the fault, the disk kept
// everything), which must satisfy the same invariants. A third stops the workload as soon as the
// fault fires ("killed" there, then power loss): a crash at each step of every write, including
// each step of the off-thread seal (segment write, sync, rename, directory sync, WAL removal).
// The partition seals on a sealer thread; the sweeps wait for each seal to finish so that crash
// points are reproducible, and separate tests run with seals in flight.

#include <gtest/gtest.h>

#include <caf/all.hpp>
#include <prometheus/registry.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <limits>
#include <map>
#include <memory>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include <unistd.h>

#include "actors/compactor_actor.hpp"
#include "actors/interfaces.hpp"
#include "actors/log.hpp"
#include "actors/metrics.hpp"
#include "actors/partition_actor.hpp"
#include "actors/reader_actor.hpp"
#include "format/compaction_plan.hpp"
#include "format/head.hpp"
#include "format/normalize.hpp"
#include "format/test_util.hpp"
#include "io/fault_file.hpp"
#include "io/file.hpp"

namespace hearth {
namespace {

namespace fs = std::filesystem;
using io::fault_op;

constexpr int kBeforeCompaction = 8;  // appends before the compaction rounds
constexpr int kAfterCompaction = 3;   // appends after them (the last one stays in the head)
constexpr int kAppends = kBeforeCompaction + kAfterCompaction;
constexpr int64_t kT0 = 1'700'000'000'000'000'000;  // aligned to the 20 s L2 window
constexpr int64_t kStep = 3'000'000'000;             // 3 s between appends
constexpr uint64_t kMaxN = 400;                       // cap on the crash points per op
const auto kTimeout = std::chrono::seconds(30);

int64_t time_of(int seq) { return kT0 + seq * kStep; }

const char* op_name(fault_op op) {
  switch (op) {
    case fault_op::write: return "write";
    case fault_op::sync: return "sync";
    case fault_op::sync_dir: return "sync_dir";
    case fault_op::rename: return "rename";
  }
  return "?";
}

/// What one append holds: its profile rows and the sum of their totals.
struct expectation {
  uint64_t rows = 0;
  int64_t total = 0;
  friend bool operator==(const expectation&, const expectation&) = default;
};

/// Shared across the tests: the batches (one per seq) and the settings derived from them.
struct workload_data {
  std::vector<ingest_batch> batches;
  std::vector<expectation> expected;
  uint64_t head_max_bytes = 1;
};

workload_data& data() {
  static workload_data* d = [] {
    auto* w = new workload_data;
    auto prof = test::load_profile(test::testdata_dir() + "/go/workpool.mutex.pb.gz");
    if (!prof) return w;
    for (int seq = 0; seq < kAppends; ++seq) {
      batch_builder b("crash");
      ingest_meta m;
      m.from = ingest_meta::source::push;
      m.labels = {{"__name__", "mutex"}, {"seq", std::to_string(seq)}, {"service_name", "crash"}};
      m.time_ns = time_of(seq);
      m.duration_ns = 1'000'000'000;
      m.id_hi = 0x5eed;
      m.id_lo = static_cast<uint64_t>(seq) + 1;
      if (auto s = b.add(prof->p, m); !s) {
        ADD_FAILURE() << "batch " << seq << ": " << s.err().to_string();
        return w;
      }
      ingest_batch batch = b.finish();
      expectation e;
      for (const auto& s : batch.series) {
        ++e.rows;
        for (int64_t v : s.sample_values) e.total += v;
      }
      w->expected.push_back(e);
      w->batches.push_back(std::move(batch));
    }
    // Seal after every second append: above the head size after one append, below two.
    head h;
    h.append(w->batches[0]);
    uint64_t one = h.bytes_estimate();
    h.append(w->batches[1]);
    uint64_t two = h.bytes_estimate();
    w->head_max_bytes = two > one ? (one + two) / 2 : 1;
    return w;
  }();
  return *d;
}

self_metrics& metrics() {
  static self_metrics* m = new self_metrics(std::make_shared<prometheus::Registry>());
  return *m;
}

/// A fresh, empty data directory (on tmpfs when there is one: fsync is then cheap).
std::string fresh_dir() {
  static int counter = 0;
  fs::path root = fs::exists("/dev/shm") ? fs::path("/dev/shm") : fs::temp_directory_path();
  fs::path dir = root / ("hearth-crash-" + std::to_string(::getpid()));
  std::error_code ec;
  fs::remove_all(dir, ec);
  fs::create_directories(dir);
  ++counter;
  return (dir / "shard-0").string();
}

partition_options options(const std::string& dir, block_store& store) {
  partition_options o;
  o.store = &store;
  o.tenant = "crash";
  o.shard = 0;
  o.dir = dir;
  o.head_max_bytes = data().head_max_bytes;
  o.head_max_age_ns = 3600ll * 1'000'000'000;  // only size seals: deterministic
  return o;
}

compaction_policy policy() {
  compaction_policy p;
  p.l1_window_ns = 10'000'000'000;
  p.l2_window_ns = 20'000'000'000;
  p.l0_max_blocks = 8;
  p.l1_min_blocks = 2;
  p.grace_ns = 0;
  p.rollup_steps_ns = {5'000'000'000};
  return p;
}

std::unique_ptr<caf::actor_system_config> make_config() {
  auto cfg = std::make_unique<caf::actor_system_config>();
  cfg->add_message_types<caf::id_block::hearth>();
  cfg->set("scheduler.max-threads", 2);
  return cfg;
}

/// What the faulty run did.
struct run_log {
  std::vector<int> acked;  ///< per seq: 1 acknowledged ok, 0 refused, -1 no answer
  int swaps_applied = 0;
  int jobs_failed = 0;
  bool ready = false;
  bool stopped = false;  ///< stopped early: the armed fault fired (the process "died" there)
  std::vector<std::string> notes;
  std::vector<std::string> unseen;  ///< queries during the run that missed or doubled acked data
  int stale_reads_refused = 0;  ///< with query_across_swaps: plans refused once their files went
};

/// How the workload runs.
struct workload_mode {
  /// After every append, wait until every frozen head is on disk (`sealed_atom`): the blocks
  /// and the order of file operations are then the same in every run.
  bool wait_for_seals = true;
  /// After every append, query everything: each acknowledged append must be there exactly once,
  /// whether it sits in the head, a frozen head being written, or a segment.
  bool query_each = false;
  /// Stop as soon as this returns true (checked after every step), as if the process died.
  std::function<bool()> dead;
  /// Instead of the partition's own compaction rounds: its node stops after the first appends,
  /// another node's compactor takes the directory over for two passes (maintain_adopted, as on
  /// shared storage), then the node comes back and appends the rest.
  bool adopted = false;
  /// Before each compaction swap, a query is planned (the partition's file list); after the
  /// swap, with the replaced files still queued for deletion, its files must read to what a new
  /// query answers. Once they are deleted, reading it must fail with `unavailable`.
  bool query_across_swaps = false;
};

using profile_map = std::map<int64_t, expectation>;

/// A partition's answer to `q`: its own partial, listing the segment files readers evaluate.
std::vector<query_partial> plan(caf::scoped_actor& self, const partition_actor& p,
                                const query::query_spec& q, std::string& err) {
  std::vector<query_partial> out;
  self->request(p, kTimeout, query_atom::value, q)
      .receive([&](query_partial& r) { out.push_back(std::move(r)); },
               [&](caf::error& e) { err += "query: " + caf::to_string(e) + "; "; });
  return out;
}

/// `planned` with the segment files it lists evaluated as the readers do.
std::vector<query_partial> read_planned(std::vector<query_partial> planned, block_store& store,
                                        const query::query_spec& q) {
  if (planned.empty()) return planned;
  auto refs = planned.front().to_read;
  for (const auto& ref : refs) planned.push_back(read_segment(store, ref, q));
  return planned;
}

/// A partition's answer to `q` with the segment files it lists evaluated as the readers do.
std::vector<query_partial> ask(caf::scoped_actor& self, const partition_actor& p,
                               block_store& store, const query::query_spec& q, std::string& err) {
  return read_planned(plan(self, p, q, err), store, q);
}

query::query_spec all_profiles() {
  query::query_spec q;
  q.kind = static_cast<uint8_t>(query::query_kind::merge_stacks);
  q.want_points = true;
  q.selector = "{}";
  q.start_ns = 0;
  q.end_ns = std::numeric_limits<int64_t>::max();
  return q;
}

/// Every profile of `parts` (answers to all_profiles()), keyed by time; errors go to `err`.
profile_map profiles_of(const std::vector<query_partial>& parts, std::string& err) {
  profile_map by_time;
  for (const auto& r : parts) {
    if (!r.status.ok()) err += "query: " + r.status.message + "; ";
    for (size_t i = 0; i < r.data.point_times_ns.size(); ++i) {
      auto& e = by_time[r.data.point_times_ns[i]];
      ++e.rows;
      e.total += r.data.point_values[i];
    }
  }
  return by_time;
}

/// Every profile `p` serves (merge_stacks over all time), keyed by time; errors go to `err`.
profile_map read_profiles(caf::scoped_actor& self, const partition_actor& p, block_store& store,
                          std::string& err) {
  return profiles_of(ask(self, p, store, all_profiles(), err), err);
}

/// Runs the workload over `fsys`: appends, two compaction rounds (L0 -> L1, L1 -> L2 + rollup),
/// more appends. Stops the actor system before returning (every file of the partition closed,
/// every sealer thread finished).
run_log run_workload(io::file_system& fsys, const std::string& dir,
                     const workload_mode& mode = {}) {
  run_log out;
  out.acked.assign(kAppends, -1);
  block_store store(&fsys, 1ull << 30, &metrics());
  auto cfg = make_config();
  caf::actor_system sys{*cfg};
  {
    caf::scoped_actor self{sys};
    partition_actor p = sys.spawn<caf::detached>(partition_fn, options(dir, store), &fsys, &metrics());
    self->request(p, kTimeout, ready_atom::value)
        .receive([&](bool r) { out.ready = r; },
                 [&](caf::error& e) { out.notes.push_back("ready: " + caf::to_string(e)); });
    auto dead = [&] {
      if (!out.stopped && mode.dead && mode.dead()) out.stopped = true;
      return out.stopped;
    };
    auto append = [&](int seq) {
      if (dead()) return;
      self->request(p, kTimeout, append_atom::value, data().batches[seq])
          .receive(
              [&](append_reply& r) {
                out.acked[seq] = r.status.ok() ? 1 : 0;
                if (!r.status.ok())
                  out.notes.push_back("append " + std::to_string(seq) + ": " + r.status.message);
              },
              [&](caf::error& e) {
                out.notes.push_back("append " + std::to_string(seq) + ": " + caf::to_string(e));
              });
      if (mode.query_each && !dead()) {
        std::string err;
        profile_map seen = read_profiles(self, p, store, err);
        if (!err.empty()) out.unseen.push_back("after append " + std::to_string(seq) + ": " + err);
        for (int s = 0; s <= seq; ++s) {
          if (out.acked[s] != 1) continue;
          auto it = seen.find(time_of(s));
          expectation got = it == seen.end() ? expectation{} : it->second;
          if (got.rows != data().expected[s].rows || got.total != data().expected[s].total)
            out.unseen.push_back("after append " + std::to_string(seq) + ": seq " +
                                 std::to_string(s) + " has " + std::to_string(got.rows) + " rows");
        }
      }
      if (mode.wait_for_seals && !dead())
        self->request(p, kTimeout, sealed_atom::value)
            .receive(
                [&](bool ok) {
                  if (!ok) out.notes.push_back("seal " + std::to_string(seq) + " failed");
                },
                [&](caf::error& e) { out.notes.push_back("sealed: " + caf::to_string(e)); });
    };
    bool swap_unfinished = false;
    // The compactor's deletion delay: the first round's replaced files are still on disk during
    // the second round (whose output replaces the first's), and all go before the last appends.
    deferred_removals replaced;
    std::vector<std::vector<query_partial>> stale_plans;  // query_across_swaps
    auto compaction_round = [&] {
      if (dead() || swap_unfinished) return;
      catalog_snapshot cat;
      self->request(p, kTimeout, catalog_atom::value)
          .receive([&](catalog_snapshot& c) { cat = std::move(c); },
                   [&](caf::error& e) { out.notes.push_back("catalog: " + caf::to_string(e)); });
      std::vector<block_ref> refs;
      for (const auto& b : cat.blocks)
        refs.push_back(block_ref{b.id, b.level, b.rollup_step_ns, b.min_time_ns, b.max_time_ns,
                                 b.bytes, b.profiles, b.samples});
      auto jobs = plan_compactions(refs, policy(), int64_t{1} << 62);
      for (const auto& job : jobs) {
        if (dead() || swap_unfinished) return;
        compaction_report rep;
        auto req = run_compaction_job(fsys, cat, job, policy(), rep);
        if (!req) {
          ++out.jobs_failed;
          out.notes.push_back("job: " + req.err().to_string());
          continue;
        }
        if (dead()) return;  // died between writing the outputs and the swap
        std::string err;
        std::vector<query_partial> planned;
        if (mode.query_across_swaps) planned = plan(self, p, all_profiles(), err);
        self->request(p, kTimeout, swap_atom::value, std::move(*req))
            .receive(
                [&](swap_reply& r) {
                  if (!r.applied) {
                    out.notes.push_back("swap: " + r.status.message);
                    return;
                  }
                  ++out.swaps_applied;
                  if (dead()) return;  // died between the renames and the directory sync
                  if (auto s = finish_swap(fsys, cat, r, replaced, 1); !s) {
                    // As the compactor does: no job over these outputs until a sync succeeds.
                    out.notes.push_back("finish_swap: " + s.err().to_string());
                    swap_unfinished = true;
                  }
                },
                [&](caf::error& e) { out.notes.push_back("swap: " + caf::to_string(e)); });
        if (mode.query_across_swaps && !dead()) {
          // A fresh store: nothing of the replaced files is cached.
          block_store fresh(&fsys, 1ull << 30, &metrics());
          profile_map then = profiles_of(read_planned(planned, fresh, all_profiles()), err);
          profile_map now = read_profiles(self, p, store, err);
          if (!err.empty() || then != now)
            out.unseen.push_back("a query planned before swap " +
                                 std::to_string(out.swaps_applied) + " read " +
                                 std::to_string(then.size()) + " profiles, one after it " +
                                 std::to_string(now.size()) + ": " + err);
          stale_plans.push_back(std::move(planned));
        }
      }
    };
    for (int seq = 0; seq < kBeforeCompaction; ++seq) append(seq);
    if (mode.adopted) {
      self->send_exit(p, caf::exit_reason::kill);
      self->wait_for(p);  // the node is gone: its files are closed
      compactor_options co;
      co.policy = policy();
      co.lock_holder = "adopting node";
      footer_cache footers;
      // A failed pass is retried by the next one, as the compactor's next run does.
      for (int pass = 0; pass < 2 && !dead(); ++pass) {
        auto r = maintain_adopted(fsys, adopted_partition{"gone", "crash", 0, dir}, co,
                                  int64_t{1} << 62, footers);
        if (!r) out.notes.push_back("adopted pass: " + r.err().to_string());
        else out.swaps_applied += static_cast<int>(r->jobs);
      }
      if (dead()) return out;
      p = sys.spawn<caf::detached>(partition_fn, options(dir, store), &fsys, &metrics());
    } else {
      compaction_round();
      compaction_round();
      if (!dead()) replaced.remove_due(fsys, 1);
      for (auto& planned : stale_plans) {
        block_store fresh(&fsys, 1ull << 30, &metrics());
        for (const auto& r : read_planned(std::move(planned), fresh, all_profiles()))
          if (r.status.code == static_cast<uint16_t>(errc::unavailable)) {
            ++out.stale_reads_refused;
            break;
          }
      }
    }
    for (int seq = kBeforeCompaction; seq < kAppends; ++seq) append(seq);
    self->send_exit(p, caf::exit_reason::kill);
  }
  return out;  // ~actor_system waits for the partition and its sealer threads to terminate
}

/// What a recovered partition serves.
struct recovered {
  bool ready = false;
  profile_map by_time;  ///< per profile time: rows and summed totals
  std::set<std::string> seq_values;
  std::vector<std::string> tmp_files;
  std::vector<std::string> segment_files;
  std::string error;
};

recovered recover_and_read(io::file_system& base, const std::string& dir) {
  recovered out;
  io::fault_file_system clean(base);
  {
    block_store store(&clean, 1ull << 30, &metrics());
    auto cfg = make_config();
    caf::actor_system sys{*cfg};
    caf::scoped_actor self{sys};
    partition_actor p = sys.spawn<caf::detached>(partition_fn, options(dir, store), &clean, &metrics());
    self->request(p, kTimeout, ready_atom::value)
        .receive([&](bool r) { out.ready = r; },
                 [&](caf::error& e) { out.error += "ready: " + caf::to_string(e) + "; "; });
    out.by_time = read_profiles(self, p, store, out.error);
    query::query_spec q;
    q.kind = static_cast<uint8_t>(query::query_kind::label_values);
    q.selector = "{}";
    q.start_ns = 0;
    q.end_ns = std::numeric_limits<int64_t>::max();
    q.label_name = "seq";
    for (auto& r : ask(self, p, store, q, out.error)) {
      if (!r.status.ok()) out.error += "label_values: " + r.status.message + "; ";
      out.seq_values.insert(r.data.values.begin(), r.data.values.end());
    }
    self->send_exit(p, caf::exit_reason::kill);
  }
  for (const char* sub : {"/segments", "/wal"}) {
    std::error_code ec;
    for (const auto& entry : fs::directory_iterator(dir + sub, ec)) {
      std::string name = entry.path().filename().string();
      if (name.ends_with(".tmp")) out.tmp_files.push_back(std::string(sub) + "/" + name);
      if (name.ends_with(".hseg")) out.segment_files.push_back(name);
    }
  }
  return out;
}

std::string describe(const run_log& r) {
  std::ostringstream s;
  s << "acked:";
  for (int a : r.acked) s << ' ' << a;
  s << " | swaps applied " << r.swaps_applied << ", jobs failed " << r.jobs_failed << ", ready "
    << r.ready << (r.stopped ? ", killed at the fault" : "");
  for (const auto& n : r.notes) s << "\n    " << n;
  return s.str();
}

/// Checks the invariants; returns a description of every violation ("" when none).
std::string check(const run_log& run, const recovered& rec) {
  std::ostringstream bad;
  if (!rec.ready) bad << "recovery failed (ready=false) " << rec.error << "\n";
  if (!rec.error.empty()) bad << "errors: " << rec.error << "\n";
  for (const auto& u : run.unseen) bad << "during the run: " << u << "\n";
  for (const auto& t : rec.tmp_files) bad << "tmp file left after recovery: " << t << "\n";
  std::set<int64_t> known;
  std::set<std::string> present;
  for (int seq = 0; seq < kAppends; ++seq) {
    known.insert(time_of(seq));
    const expectation& want = data().expected[seq];
    auto it = rec.by_time.find(time_of(seq));
    expectation got = it == rec.by_time.end() ? expectation{} : it->second;
    if (got.rows > 0) present.insert(std::to_string(seq));
    bool exact = got.rows == want.rows && got.total == want.total;
    if (run.acked[seq] == 1) {
      if (!exact)
        bad << "acknowledged append seq=" << seq << ": " << got.rows << " rows / total "
            << got.total << ", want " << want.rows << " / " << want.total
            << (got.rows == 0 ? " (LOST)" : got.rows > want.rows ? " (DOUBLED)" : " (PARTIAL)")
            << "\n";
    } else if (got.rows != 0 && !exact) {
      bad << "unacknowledged append seq=" << seq << " (" << run.acked[seq] << "): " << got.rows
          << " rows / total " << got.total << ", want 0 or " << want.rows << " / " << want.total
          << "\n";
    }
  }
  for (const auto& [t, e] : rec.by_time)
    if (!known.count(t)) bad << "profile at unknown time " << t << "\n";
  if (rec.seq_values != present) {
    bad << "label_values(seq) disagrees with the profiles:";
    for (const auto& v : rec.seq_values) bad << ' ' << v;
    bad << " vs";
    for (const auto& v : present) bad << ' ' << v;
    bad << "\n";
  }
  return bad.str();
}

class StorageCrash : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    log::set_level(std::getenv("HEARTH_CRASH_LOG") ? "info" : "error");
    ASSERT_EQ(data().batches.size(), static_cast<size_t>(kAppends));
  }
  static void TearDownTestSuite() {
    log::set_level("info");
    std::error_code ec;
    fs::path root = fs::exists("/dev/shm") ? fs::path("/dev/shm") : fs::temp_directory_path();
    fs::remove_all(root / ("hearth-crash-" + std::to_string(::getpid())), ec);
  }

  void SetUp() override {
    auto b = io::make_file_system(io::backend::posix);
    ASSERT_TRUE(b.ok()) << b.err().to_string();
    base_ = std::move(*b);
  }

  struct point {
    fault_op op;
    uint64_t n;
    errc code;
    bool tear = false;
  };

  /// One crash point: a fresh dir, the workload with one armed fault, power loss (or not),
  /// recovery, invariants. Returns whether the armed fault fired.
  bool crash_at(const point& pt, bool power_loss, std::vector<std::string>* failures,
                bool killed = false) {
    std::string dir = fresh_dir();
    io::fault_file_system faulty(*base_);
    if (pt.tear) faulty.tear_nth(pt.n);
    else faulty.fail_nth(pt.op, pt.n, pt.code);
    workload_mode mode;
    mode.adopted = adopted_;
    if (killed) mode.dead = [&] { return faulty.count(pt.op) >= pt.n; };
    run_log run = run_workload(faulty, dir, mode);
    bool fired = faulty.count(pt.op) >= pt.n;
    if (power_loss) {
      if (auto s = faulty.crash(); !s) {
        failures->push_back("crash() failed: " + s.err().to_string());
        return fired;
      }
    }
    recovered rec = recover_and_read(*base_, dir);
    std::string bad = check(run, rec);
    if (std::getenv("HEARTH_CRASH_VERBOSE"))
      std::cout << "[ point    ] " << (pt.tear ? "torn write" : op_name(pt.op)) << " #" << pt.n
                << (power_loss ? " power loss" : " restart") << (fired ? "" : " (not fired)")
                << ": " << describe(run) << "\n";
    // Recovery must also be stable: a second restart serves the same.
    if (bad.empty()) {
      recovered again = recover_and_read(*base_, dir);
      if (again.by_time.size() != rec.by_time.size() || !check(run, again).empty())
        bad = "second recovery differs: " + check(run, again);
    }
    if (!bad.empty()) {
      std::ostringstream s;
      s << (pt.tear ? "torn write" : op_name(pt.op)) << " #" << pt.n << " "
        << (pt.code == errc::no_space ? "ENOSPC" : "EIO")
        << (power_loss ? ", power loss" : ", restart without power loss") << ":\n  " << bad
        << "  run: " << describe(run) << "\n  segments after recovery:";
      for (const auto& f : rec.segment_files) s << ' ' << f;
      failures->push_back(s.str());
    }
    return fired;
  }

  /// Every crash point of `op` (n = 1, 2, ... until the fault no longer fires).
  void sweep(fault_op op, bool power_loss, bool tear = false, bool killed = false) {
    std::vector<std::string> failures;
    uint64_t n = 1;
    for (; n <= kMaxN; ++n)
      if (!crash_at({op, n, errc::io_error, tear}, power_loss, &failures, killed)) break;
    EXPECT_LE(n, kMaxN) << "crash points capped";
    EXPECT_GT(n, 1u) << "the workload never reached a " << op_name(op);
    std::cout << "[ sweep    ] " << (tear ? "torn write" : op_name(op)) << ": " << (n - 1)
              << " crash points, " << failures.size() << " violating\n";
    for (const auto& f : failures) ADD_FAILURE() << f;
  }

  std::unique_ptr<io::file_system> base_;
  bool adopted_ = false;  ///< the workload's compaction is another node's (workload_mode::adopted)
};

TEST_F(StorageCrash, BaselineWithoutFaults) {
  std::string dir = fresh_dir();
  io::fault_file_system faulty(*base_);
  run_log run = run_workload(faulty, dir);
  EXPECT_TRUE(run.ready);
  for (int seq = 0; seq < kAppends; ++seq) EXPECT_EQ(run.acked[seq], 1) << "seq " << seq;
  // Round 1: two L0 -> L1 jobs; round 2: one L1 -> L2 job with a rollup.
  EXPECT_EQ(run.swaps_applied, 3) << describe(run);
  EXPECT_EQ(run.jobs_failed, 0) << describe(run);
  std::cout << "[ baseline ] ops: write " << faulty.count(fault_op::write) << ", sync "
            << faulty.count(fault_op::sync) << ", sync_dir " << faulty.count(fault_op::sync_dir)
            << ", rename " << faulty.count(fault_op::rename) << "\n";
  ASSERT_TRUE(faulty.crash().ok());
  recovered rec = recover_and_read(*base_, dir);
  EXPECT_EQ(check(run, rec), "");
  // One L2 block + its rollup, the L0 block sealed after compaction; seq 10 is in the WAL.
  std::ostringstream segs;
  for (const auto& f : rec.segment_files) segs << f << ' ';
  EXPECT_EQ(rec.segment_files.size(), 3u) << segs.str();
}

// A query the partition planned just before a compaction swap reads the files that swap replaced:
// they stay until the compactor's deletion delay has passed (deferred_removals). The same plans
// fail with `unavailable` once the files are gone, which is what a query racing a compaction got
// when they were deleted at once.
TEST_F(StorageCrash, QueryPlannedBeforeASwapReadsTheReplacedFiles) {
  std::string dir = fresh_dir();
  workload_mode mode;
  mode.query_across_swaps = true;
  run_log run = run_workload(*base_, dir, mode);
  EXPECT_EQ(run.swaps_applied, 3) << describe(run);
  for (const auto& u : run.unseen) ADD_FAILURE() << u;
  EXPECT_EQ(run.stale_reads_refused, 3) << describe(run);
  recovered rec = recover_and_read(*base_, dir);
  EXPECT_EQ(check(run, rec), "") << describe(run);
}

TEST_F(StorageCrash, WriteFailsThenPowerLoss) { sweep(fault_op::write, true); }
TEST_F(StorageCrash, SyncFailsThenPowerLoss) { sweep(fault_op::sync, true); }
TEST_F(StorageCrash, SyncDirFailsThenPowerLoss) { sweep(fault_op::sync_dir, true); }
TEST_F(StorageCrash, RenameFailsThenPowerLoss) { sweep(fault_op::rename, true); }
TEST_F(StorageCrash, TornWriteThenPowerLoss) { sweep(fault_op::write, true, /*tear=*/true); }

// A compaction that crashed after publishing its output and before deleting its inputs: at start
// the output wins and its inputs go, but only once the output was read and checked whole (a start
// reads footers only). A damaged output is dropped from the catalog instead and its inputs keep
// answering. Built from a clean run: its L2 block's data is written again as that block's first
// source (a level-1 block of the same profiles), beside the L2 block.
TEST_F(StorageCrash, DamagedOutputKeepsItsInputs) {
  for (bool damaged : {false, true}) {
    SCOPED_TRACE(damaged ? "damaged output" : "valid output");
    std::string dir = fresh_dir();
    run_log run = run_workload(*base_, dir);
    ASSERT_EQ(run.swaps_applied, 3) << describe(run);
    std::string l2_path;
    segment_info l2;
    for (const auto& e : fs::directory_iterator(dir + "/segments")) {
      auto bytes = base_->read_file(e.path().string());
      ASSERT_TRUE(bytes.ok());
      auto info = read_segment_info(as_bytes(*bytes));
      ASSERT_TRUE(info.ok()) << info.err().to_string();
      if (info->level == 2 && info->rollup_step_ns == 0) {
        l2_path = e.path().string();
        l2 = *info;
      }
    }
    ASSERT_FALSE(l2_path.empty());
    ASSERT_FALSE(l2.sources.empty());
    auto l2_bytes = base_->read_file(l2_path);
    ASSERT_TRUE(l2_bytes.ok());
    auto block = decode_segment(as_bytes(*l2_bytes));
    ASSERT_TRUE(block.ok());
    segment_info input;
    input.block_id = l2.sources[0];
    input.level = 1;
    input.wal_seq = l2.wal_seq;
    auto input_file = encode_segment(*block, segment_codec::zstd, input);
    ASSERT_TRUE(input_file.ok()) << input_file.err().to_string();
    char name[64];
    std::snprintf(name, sizeof name, "/segments/L1-%016llx.hseg",
                  static_cast<unsigned long long>(input.block_id));
    const std::string input_path = dir + name;
    ASSERT_TRUE(base_->write_file_atomic(input_path, as_bytes(*input_file)).ok());
    if (damaged) {
      // One byte in the middle of the samples section: the footer stays valid.
      std::string bad = *l2_bytes;
      auto secs = read_segment_sections(as_bytes(bad));
      ASSERT_TRUE(secs.ok());
      bool flipped = false;
      for (const auto& sec : *secs)
        if (sec.name == "samples") {
          bad[sec.offset + 14 + sec.stored_bytes / 2] ^= 0x55;
          flipped = true;
        }
      ASSERT_TRUE(flipped);
      ASSERT_TRUE(base_->write_file_atomic(l2_path, as_bytes(bad)).ok());
    }
    const double corrupted_before = metrics().segments_corrupted.Value();
    recovered rec = recover_and_read(*base_, dir);
    EXPECT_EQ(check(run, rec), "") << describe(run);
    const bool input_kept = fs::exists(input_path);
    EXPECT_EQ(input_kept, damaged);
    EXPECT_TRUE(fs::exists(l2_path));  // a damaged block is reported, not deleted
    EXPECT_EQ(metrics().segments_corrupted.Value() - corrupted_before, damaged ? 1.0 : 0.0);
  }
}

// Killed at the faulting operation: nothing after it runs (no retry, no cleanup), then power loss.
TEST_F(StorageCrash, KilledAtWriteThenPowerLoss) {
  sweep(fault_op::write, true, false, true);
}
TEST_F(StorageCrash, KilledAtSyncThenPowerLoss) {
  sweep(fault_op::sync, true, false, true);
}
TEST_F(StorageCrash, KilledAtSyncDirThenPowerLoss) {
  sweep(fault_op::sync_dir, true, false, true);
}
TEST_F(StorageCrash, KilledAtRenameThenPowerLoss) {
  sweep(fault_op::rename, true, false, true);
}
TEST_F(StorageCrash, KilledAtTornWriteThenPowerLoss) {
  sweep(fault_op::write, true, true, true);
}

// Compaction by another node on shared storage (maintain_adopted) while the partition's node is
// down, crashed at each of its steps; then the node recovers the directory and appends more.
TEST_F(StorageCrash, AdoptedBaselineWithoutFaults) {
  adopted_ = true;
  std::string dir = fresh_dir();
  run_log run = run_workload(*base_, dir, workload_mode{true, false, {}, true});
  EXPECT_EQ(run.swaps_applied, 3) << describe(run);  // two L0 -> L1 jobs, one L1 -> L2
  recovered rec = recover_and_read(*base_, dir);
  EXPECT_EQ(check(run, rec), "") << describe(run);
}
TEST_F(StorageCrash, AdoptedKilledAtWriteThenPowerLoss) {
  adopted_ = true;
  sweep(fault_op::write, true, false, true);
}
TEST_F(StorageCrash, AdoptedKilledAtSyncDirThenPowerLoss) {
  adopted_ = true;
  sweep(fault_op::sync_dir, true, false, true);
}
TEST_F(StorageCrash, AdoptedKilledAtRenameThenPowerLoss) {
  adopted_ = true;
  sweep(fault_op::rename, true, false, true);
}
TEST_F(StorageCrash, AdoptedRenameFailsThenRestart) {
  adopted_ = true;
  sweep(fault_op::rename, false);
}
TEST_F(StorageCrash, AdoptedSyncDirFailsThenPowerLoss) {
  adopted_ = true;
  sweep(fault_op::sync_dir, true);
}

TEST_F(StorageCrash, WriteFailsThenRestart) { sweep(fault_op::write, false); }
TEST_F(StorageCrash, SyncFailsThenRestart) { sweep(fault_op::sync, false); }
TEST_F(StorageCrash, SyncDirFailsThenRestart) { sweep(fault_op::sync_dir, false); }
TEST_F(StorageCrash, RenameFailsThenRestart) { sweep(fault_op::rename, false); }

// ENOSPC: the same paths as EIO, so a few points per op (first, middle, last) suffice.
TEST_F(StorageCrash, NoSpaceThenPowerLoss) {
  std::vector<std::string> failures;
  for (fault_op op : {fault_op::write, fault_op::sync, fault_op::sync_dir, fault_op::rename}) {
    io::fault_file_system probe(*base_);
    run_workload(probe, fresh_dir());
    uint64_t total = probe.count(op);
    ASSERT_GT(total, 0u) << op_name(op);
    for (uint64_t n : std::set<uint64_t>{1, (total + 1) / 2, total})
      EXPECT_TRUE(crash_at({op, n, errc::no_space}, true, &failures)) << op_name(op) << " #" << n;
  }
  for (const auto& f : failures) ADD_FAILURE() << f;
}

// Seals in flight: appends do not wait for the sealer, every acknowledged append must be visible
// exactly once to a query right after its ack (in the head, a frozen head being written, or a
// segment), and a power loss right after the last ack (sealer threads possibly mid-write) loses
// nothing acknowledged.
TEST_F(StorageCrash, SealsInFlightQueriesAndPowerLoss) {
  for (int round = 0; round < 5; ++round) {
    std::string dir = fresh_dir();
    io::fault_file_system faulty(*base_);
    workload_mode mode;
    mode.wait_for_seals = false;
    mode.query_each = true;
    run_log run = run_workload(faulty, dir, mode);
    for (int seq = 0; seq < kAppends; ++seq) EXPECT_EQ(run.acked[seq], 1) << "seq " << seq;
    ASSERT_TRUE(faulty.crash().ok());
    recovered rec = recover_and_read(*base_, dir);
    EXPECT_EQ(check(run, rec), "") << "round " << round << ": " << describe(run);
  }
}

// A seal whose segment write fails keeps its block in memory (still served) and in the WAL; the
// next attempt writes it, oldest first, and only then is the WAL cut away.
TEST_F(StorageCrash, FailedSealIsRetriedInOrder) {
  std::string dir = fresh_dir();
  io::fault_file_system faulty(*base_);
  block_store store(&faulty, 1ull << 30, &metrics());
  auto cfg = make_config();
  caf::actor_system sys{*cfg};
  caf::scoped_actor self{sys};
  partition_actor p = sys.spawn<caf::detached>(partition_fn, options(dir, store), &faulty, &metrics());
  auto append = [&](int seq) {
    bool ok = false;
    self->request(p, kTimeout, append_atom::value, data().batches[seq])
        .receive([&](append_reply& r) { ok = r.status.ok(); }, [&](caf::error&) {});
    return ok;
  };
  auto sealed = [&] {
    bool ok = false;
    self->request(p, kTimeout, sealed_atom::value)
        .receive([&](bool r) { ok = r; }, [&](caf::error&) {});
    return ok;
  };
  ASSERT_TRUE(append(0));
  // The next rename is the first seal's publish step (the WAL renames nothing).
  faulty.fail_nth(fault_op::rename, 1, errc::io_error);
  ASSERT_TRUE(append(1));  // over head_max_bytes: freezes the head, the sealer's rename fails
  std::string err;
  profile_map seen = read_profiles(self, p, store, err);
  EXPECT_EQ(err, "");
  EXPECT_EQ(seen.size(), 2u) << "the frozen block is served whether or not it is on disk yet";
  // A waiter that arrives after the failure retries at once (true); one that arrived before it
  // hears of the failure (false) and the next one retries.
  bool durable = sealed() || sealed();
  EXPECT_TRUE(durable);
  EXPECT_EQ(faulty.count(fault_op::rename), 2u) << "one failed rename, one retry";
  ASSERT_TRUE(append(2));
  ASSERT_TRUE(append(3));
  EXPECT_TRUE(sealed());
  self->send_exit(p, caf::exit_reason::kill);
  self->wait_for(p);
  ASSERT_TRUE(faulty.crash().ok());
  run_log run;
  run.acked = std::vector<int>(kAppends, -1);
  for (int seq = 0; seq < 4; ++seq) run.acked[seq] = 1;
  recovered rec = recover_and_read(*base_, dir);
  EXPECT_EQ(check(run, rec), "");
  EXPECT_EQ(rec.segment_files.size(), 2u);
}

}  // namespace
}  // namespace hearth
