// hearth: the server. Alone it serves on 127.0.0.1:4040 with data in ./data (embedded defaults);
// `--config FILE` reads TOML over those defaults. main() builds every long-lived object (config,
// metrics registry, I/O backend, actor system, gateway) and passes them in: no singletons.

#include <signal.h>

#include <caf/io/middleman.hpp>

#include <cstdio>
#include <unistd.h>
#include <cstring>
#include <memory>
#include <random>
#include <string>
#include <thread>

#include "actors/admission.hpp"
#include "actors/ingest_limits.hpp"
#include "actors/scrape_actor.hpp"
#include "actors/cluster_actor.hpp"
#include "actors/compactor_actor.hpp"
#include "actors/distributor_actor.hpp"
#include "actors/ingester_actor.hpp"
#include "actors/log.hpp"
#include "actors/metrics.hpp"
#include "actors/query_frontend_actor.hpp"
#include "actors/reader_actor.hpp"
#include "actors/settings_actor.hpp"
#include "actors/admin_actor.hpp"
#include "cluster/config.hpp"
#include "cluster/http_gateway.hpp"
#include "cluster/rpc_server.hpp"
#include "io/file.hpp"

namespace {

// The cluster settings of [cluster] as the actors take them (members[0] is this node).
hearth::cluster_options cluster_options_of(const hearth::config& cfg) {
  hearth::cluster_options o;
  const auto& cl = cfg.cluster;
  o.members.push_back({cl.node, cl.listen, cl.roles});
  for (const auto& p : cl.peers) o.members.push_back({p.name, p.address, p.roles});
  o.replication_factor = cl.replication_factor;
  o.write_quorum = cl.effective_write_quorum();
  o.tokens = cl.tokens;
  o.shards = cfg.storage.shards;
  o.heartbeat_interval_ms = static_cast<int64_t>(cl.heartbeat_interval_s) * 1000;
  o.timing.suspect_after_ms = static_cast<int64_t>(cl.suspect_after_s) * 1000;
  o.timing.down_after_ms = static_cast<int64_t>(cl.down_after_s) * 1000;
  o.rpc_timeout = std::chrono::seconds(cl.rpc_timeout_s);
  o.hint_max_bytes = cl.hint_max_bytes;
  return o;
}

const char* usage =
    "usage: hearth [--config FILE] [--print-config]\n"
    "\n"
    "A continuous-profiling database that speaks Grafana Pyroscope's protocols.\n"
    "With no arguments it serves HTTP on 127.0.0.1:4040 and Cap'n Proto RPC (hearthctl) on\n"
    "127.0.0.1:4041 with data in ./data.\n"
    "\n"
    "  --config FILE    read settings from a TOML file (unknown keys are errors)\n"
    "  --print-config   print the effective configuration as TOML and exit\n"
    "  --help           show this help\n"
    "  --version        print the version\n";

int run(const hearth::config& cfg) {
  using namespace hearth;
  log::set_level(cfg.log.level);
  auto addr = parse_listen_address(cfg.server.http_listen);
  if (!addr) {
    std::fprintf(stderr, "hearth: server.http_listen: %s\n", addr.err().message.c_str());
    return 2;
  }
  io::backend want = cfg.storage.io_backend == "posix"      ? io::backend::posix
                     : cfg.storage.io_backend == "io_uring" ? io::backend::io_uring
                                                            : io::backend::automatic;
  auto fs = io::make_file_system(want);
  if (!fs) {
    std::fprintf(stderr, "hearth: storage.io_backend: %s\n", fs.err().to_string().c_str());
    return 2;
  }

  // SIGINT/SIGTERM are taken by sigwait below; block them before any thread starts.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
  signal(SIGPIPE, SIG_IGN);

  auto registry = std::make_shared<prometheus::Registry>();
  self_metrics metrics(registry);
  admission_board admission;  // before the actor system: partitions publish into it until they exit
  // Per-tenant rate buckets and limits, read by distributor workers and partitions.
  ingest_limiter limiter(cfg.limits.tenant, cfg.tenant_overrides());
  // Decoded blocks of every tenant, shared by partitions and readers; outlives the actor system.
  block_store blocks(fs->get(), cfg.storage.block_cache_bytes, &metrics);
  // Flame-graph partials of whole sealed blocks, shared by the readers; outlives the actor system.
  std::unique_ptr<query::partial_cache> partials;
  if (cfg.query.partial_cache_bytes > 0)
    partials = std::make_unique<query::partial_cache>(cfg.query.partial_cache_bytes);

  // Cluster mode: the membership view outlives the actor system (actors read it until they exit).
  std::unique_ptr<cluster_view> cluster;
  if (cfg.cluster.enabled) {
    cluster = std::make_unique<cluster_view>(cluster_options_of(cfg), *registry);
    // Hints survive a restart of this node; "+" keeps the directory apart from tenant names.
    cluster->persist_hints(fs->get(), cfg.storage.path + "/cluster+hints");
    uint32_t ingesters = 0;
    for (size_t i = 0; i < cluster->size(); ++i) ingesters += cluster->member(i).has_role("ingester");
    if (cfg.storage.shards < ingesters)
      log::warn("hearth", "cluster: storage.shards=" + std::to_string(cfg.storage.shards) + " is below the " +
                              std::to_string(ingesters) +
                              " ingester nodes: a tenant's data sits on few nodes (raise storage.shards)");
  }

  caf::actor_system_config sys_cfg;
  sys_cfg.add_message_types<caf::id_block::hearth>();
  if (cluster) sys_cfg.load<caf::io::middleman>();  // CAF remoting only for a cluster
  sys_cfg.set("logger.verbosity", caf::atom("quiet"));
  sys_cfg.set("logger.console-verbosity", caf::atom("quiet"));
  caf::actor_system sys{sys_cfg};

  ingester_options io_opts;
  io_opts.data_dir = cfg.storage.path;
  io_opts.shards = cfg.storage.shards;
  io_opts.partition.head_max_bytes = cfg.storage.head_max_bytes;
  io_opts.partition.head_max_age_ns = static_cast<int64_t>(cfg.storage.head_max_age_s) * 1000000000;
  io_opts.partition.wal_max_bytes = cfg.storage.wal_max_bytes;
  io_opts.partition.store = &blocks;
  io_opts.partition.codec = cfg.storage.segment_codec == "zstd"   ? segment_codec::zstd
                            : cfg.storage.segment_codec == "none" ? segment_codec::none
                                                                  : segment_codec::lz4;
  io_opts.partition.admission = &admission;
  io_opts.partition.limiter = &limiter;
  // On shared storage another node's compactor may take over this node's directories while it is
  // down: each partition holds its directory's owner.lock while it runs.
  const std::string lock_holder = cfg.cluster.node + " pid " + std::to_string(::getpid());
  if (cluster && !cfg.cluster.shared_path.empty()) io_opts.partition.lock_holder = lock_holder;
  auto ingester = sys.spawn(ingester_fn, io_opts, fs->get(), &metrics);

  distributor_options d_opts;
  d_opts.shards = cfg.storage.shards;
  d_opts.max_profile_bytes = cfg.limits.max_profile_bytes;
  d_opts.limits.max_labels = cfg.limits.max_labels_per_series;
  d_opts.limits.max_label_name_len = cfg.limits.max_label_name_length;
  d_opts.limits.max_label_value_len = cfg.limits.max_label_value_length;
  d_opts.limits.max_stack_depth = cfg.limits.max_stack_depth;
  d_opts.limits.depth_policy = cfg.limits.stack_depth_policy == "truncate"
                                   ? normalize_limits::stack_depth_policy::truncate
                                   : normalize_limits::stack_depth_policy::reject;
  d_opts.text.max_line_bytes = cfg.limits.max_text_line_bytes;
  d_opts.text.max_stack_depth = cfg.limits.max_text_stack_depth;
  d_opts.jfr.max_stack_depth = cfg.limits.max_jfr_stack_depth;
  d_opts.otlp.max_profiles = cfg.limits.max_otlp_profiles;
  d_opts.otlp.max_location_refs = cfg.limits.max_profile_bytes;
  d_opts.otlp.max_labels = cfg.limits.max_labels_per_series;
  d_opts.admission = &admission;
  d_opts.limiter = &limiter;
  d_opts.cluster = cluster.get();
  auto distributor = sys.spawn(distributor_fn, d_opts, ingester, &metrics);

  // Pull mode: one detached scraper per (target, profile) of each [[scrape]] job.
  std::vector<scrape_actor> scrapers;
  for (const auto& job : cfg.scrape) {
    for (const auto& target : job.targets) {
      auto hp = parse_listen_address(target);  // validated by the config parser
      for (const auto& profile : job.profiles) {
        scrape_options so;
        so.job = job.job;
        so.service_name = job.service_name.empty() ? job.job : job.service_name;
        so.host = hp->first;
        so.port = hp->second;
        so.profile = profile;
        so.path_prefix = job.path_prefix;
        so.interval = std::chrono::seconds(job.interval_s);
        so.cpu_seconds = job.effective_cpu_seconds();
        so.timeout = std::chrono::seconds(job.effective_timeout_s());
        so.max_body_bytes = cfg.limits.max_profile_bytes;
        so.tenant = job.tenant;
        so.labels = job.labels;
        scrapers.push_back(sys.spawn<caf::detached>(scrape_fn, std::move(so), distributor, &metrics));
      }
    }
  }

  compactor_options c_opts;
  c_opts.enabled = cfg.compaction.enabled;
  c_opts.interval = std::chrono::seconds(cfg.compaction.interval_s);
  constexpr int64_t ns = 1000000000;
  c_opts.policy.l1_window_ns = static_cast<int64_t>(cfg.compaction.l1_window_s) * ns;
  c_opts.policy.l2_window_ns = static_cast<int64_t>(cfg.compaction.l2_window_s) * ns;
  c_opts.policy.grace_ns = static_cast<int64_t>(cfg.compaction.grace_s) * ns;
  c_opts.policy.l0_max_blocks = cfg.compaction.l0_max_blocks;
  c_opts.policy.max_output_samples = cfg.compaction.max_output_samples;
  c_opts.policy.l2_max_output_samples = cfg.compaction.l2_max_output_samples;
  c_opts.policy.open_l2_windows = cfg.compaction.open_l2_windows;
  c_opts.policy.l1_zstd_level = cfg.compaction.l1_zstd_level;
  c_opts.policy.l2_zstd_level = cfg.compaction.l2_zstd_level;
  if (!cfg.compaction.rollups) c_opts.policy.rollup_steps_ns.clear();
  c_opts.deletion_delay = std::chrono::seconds(cfg.compaction.deletion_delay_s);
  if (cfg.compaction.deletion_delay_s > 0 && cfg.compaction.deletion_delay_s < cfg.query.timeout_s)
    log::warn("hearth",
              "compaction.deletion_delay (" + std::to_string(cfg.compaction.deletion_delay_s) +
                  "s) is shorter than query.timeout (" + std::to_string(cfg.query.timeout_s) +
                  "s): a long query that races a compaction may fail with unavailable");
  if (cluster && !cfg.cluster.has_role("compactor") && c_opts.enabled) {
    c_opts.enabled = false;
    log::warn("hearth", "cluster: this node has no compactor role: its blocks are not compacted");
  }
  if (cluster && !cfg.cluster.shared_path.empty() && cfg.cluster.has_role("compactor")) {
    c_opts.lock_holder = lock_holder;
    c_opts.adopted = [view = cluster.get(), fs = fs->get(), shared = cfg.cluster.shared_path] {
      return view->adopted_partitions(*fs, shared);
    };
  }
  c_opts.retention_ns = static_cast<int64_t>(cfg.retention.period_s) * ns;
  for (const auto& [tenant, secs] : cfg.retention.per_tenant_s)
    c_opts.tenant_retention_ns[tenant] = static_cast<int64_t>(secs) * ns;
  if (auto v = validate(c_opts.policy); !v) {
    std::fprintf(stderr, "hearth: compaction: %s\n", v.err().message.c_str());
    return 2;
  }
  auto compactor = sys.spawn<caf::detached>(compactor_fn, c_opts, ingester, fs->get(), &metrics);

  query_frontend_options q_opts;
  // Four readers per core: a query's segment files are evaluated in parallel, off the
  // partitions, each read by the least busy reader; the scheduler's threads (one per core) take
  // whichever reader has work, so a query's costly reads do not queue behind one reader while
  // another core idles.
  const unsigned cores = std::max(2u, std::thread::hardware_concurrency());
  for (unsigned i = 0; i < 4 * cores; ++i)
    q_opts.readers.push_back(sys.spawn(reader_fn, &blocks, reader_cache{partials.get(), &metrics}));
  q_opts.export_batches = cores;
  q_opts.max_nodes_default = cfg.query.max_nodes_default;
  q_opts.timeout = std::chrono::seconds(cfg.query.timeout_s);
  q_opts.cluster = cluster.get();
  auto frontend = sys.spawn(query_frontend_fn, q_opts, ingester);

  // Cluster: publish this node's actor on cluster.listen only, then start heartbeating peers.
  cluster_node_actor node;
  cluster_membership_actor membership;
  if (cluster) {
    uint64_t boot_id = (uint64_t{std::random_device{}()} << 32) | std::random_device{}();
    node = sys.spawn(cluster_node_fn, cluster.get(), boot_id, ingester, frontend);
    auto listen = parse_listen_address(cfg.cluster.listen);  // validated by the config parser
    auto published = sys.middleman().publish(node, listen->second, listen->first.c_str(), true);
    if (!published) {
      std::fprintf(stderr, "hearth: cluster.listen %s: cannot publish: %s\n", cfg.cluster.listen.c_str(),
                   sys.render(published.error()).c_str());
      caf::anon_send_exit(node, caf::exit_reason::user_shutdown);
      caf::anon_send_exit(distributor, caf::exit_reason::user_shutdown);
      caf::anon_send_exit(frontend, caf::exit_reason::user_shutdown);
      caf::anon_send_exit(compactor, caf::exit_reason::user_shutdown);
      caf::anon_send_exit(ingester, caf::exit_reason::user_shutdown);
      return 1;
    }
    std::string roles;
    for (const auto& r : cfg.cluster.roles) roles += (roles.empty() ? "" : ",") + r;
    log::info("hearth", "cluster: node " + cfg.cluster.node + " roles=" + roles + " listening for peers on " +
                            cfg.cluster.listen + ", " + std::to_string(cfg.cluster.peers.size()) +
                            " peer(s), replication_factor=" + std::to_string(cfg.cluster.replication_factor) +
                            " write_quorum=" + std::to_string(cfg.cluster.effective_write_quorum()));
    membership = sys.spawn<caf::detached>(cluster_membership_fn, cluster.get(), boot_id);
  }

  http_gateway::options g_opts;
  g_opts.host = addr->first;
  g_opts.port = addr->second;
  g_opts.max_body_bytes = cfg.server.max_body_bytes;
  g_opts.max_nodes_default = cfg.query.max_nodes_default;
  g_opts.max_nodes_max = cfg.query.max_nodes_max;
  g_opts.max_range_ns = static_cast<int64_t>(cfg.query.max_range_s) * 1000000000;
  g_opts.timeout = std::chrono::seconds(cfg.query.timeout_s);
  g_opts.multitenancy = cfg.server.multitenancy;
  g_opts.auth = cfg.auth;
  g_opts.cluster = cluster.get();
  auto settings = sys.spawn<caf::detached>(settings_fn, cfg.storage.path, fs->get());
  http_gateway gateway(sys, {distributor, frontend, ingester, compactor, settings}, metrics, g_opts);
  auto port = gateway.start();
  // The RPC API (hearthctl, native clients): its own kj thread over the same actors.
  admin_actor admin;
  std::unique_ptr<rpc_server> rpc;
  result<uint16_t> rpc_port = uint16_t{0};
  if (port && !cfg.server.rpc_listen.empty()) {
    admin = sys.spawn<caf::detached>(admin_fn, ingester, fs->get());
    auto raddr = parse_listen_address(cfg.server.rpc_listen);  // validated by the config parser
    rpc_server::options r_opts;
    r_opts.host = raddr->first;
    r_opts.port = raddr->second;
    r_opts.max_body_bytes = cfg.server.max_body_bytes;
    r_opts.limits = {cfg.query.max_nodes_default, cfg.query.max_nodes_max, g_opts.max_range_ns};
    r_opts.timeout = g_opts.timeout;
    r_opts.multitenancy = cfg.server.multitenancy;
    r_opts.auth = cfg.auth;
    r_opts.config_toml = cfg.to_toml();
    r_opts.http_address = addr->first + ":" + std::to_string(*port);
    r_opts.version = "0.1.0";
    r_opts.cluster = cluster.get();
    rpc = std::make_unique<rpc_server>(sys, rpc_server::actors{distributor, frontend, ingester, compactor, admin},
                                       r_opts);
    rpc_port = rpc->start();
  }
  int rc = 0;
  if (!port || !rpc_port) {
    log::error("hearth", (port ? rpc_port.err() : port.err()).to_string());
    rc = 1;
    gateway.stop();
  } else {
    log::info("hearth", "listening on http://" + addr->first + ":" + std::to_string(*port) +
                            " data=" + cfg.storage.path + " io=" + std::string((*fs)->name()));
    if (rpc)
      log::info("hearth", "rpc listening on " + cfg.server.rpc_listen.substr(0, cfg.server.rpc_listen.rfind(':')) +
                              ":" + std::to_string(*rpc_port));
    int sig = 0;
    sigwait(&stop_signals, &sig);
    log::info("hearth", std::string("received ") + (sig == SIGINT ? "SIGINT" : "SIGTERM") +
                            ", shutting down");
    if (rpc) rpc->stop();
    gateway.stop();
  }
  if (admin) caf::anon_send_exit(admin, caf::exit_reason::user_shutdown);
  // A scraper in the middle of a fetch exits when it returns (at most its timeout).
  for (auto& s : scrapers) caf::anon_send_exit(s, caf::exit_reason::user_shutdown);
  if (cluster) {
    caf::anon_send_exit(membership, caf::exit_reason::user_shutdown);
    caf::anon_send_exit(node, caf::exit_reason::user_shutdown);
  }
  caf::anon_send_exit(distributor, caf::exit_reason::user_shutdown);
  caf::anon_send_exit(frontend, caf::exit_reason::user_shutdown);
  caf::anon_send_exit(compactor, caf::exit_reason::user_shutdown);
  caf::anon_send_exit(ingester, caf::exit_reason::user_shutdown);
  return rc;
}

}  // namespace

int main(int argc, char** argv) {
  std::string config_path;
  bool print = false;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--config" && i + 1 < argc) {
      config_path = argv[++i];
    } else if (a.rfind("--config=", 0) == 0) {
      config_path = a.substr(9);
    } else if (a == "--print-config") {
      print = true;
    } else if (a == "--help" || a == "-h") {
      std::fputs(usage, stdout);
      return 0;
    } else if (a == "--version") {
      std::puts("hearth 0.1.0");
      return 0;
    } else {
      std::fprintf(stderr, "hearth: unknown argument %s\n\n%s", a.c_str(), usage);
      return 2;
    }
  }
  hearth::config cfg;
  if (!config_path.empty()) {
    auto c = hearth::load_config_file(config_path);
    if (!c) {
      std::fprintf(stderr, "hearth: invalid configuration: %s\n", c.err().message.c_str());
      return 2;
    }
    cfg = std::move(*c);
  }
  if (print) {
    std::fputs(cfg.to_toml().c_str(), stdout);
    return 0;
  }
  return run(cfg);
}
