// hearthctl: the operators' tool. Talks Cap'n Proto RPC (cluster/schema/*.capnp) to a hearth's
// [server] rpc_listen port. Human output by default, --json for scripts. Exit codes: 0 ok,
// 1 `blocks verify` found corrupted blocks, 2 usage error, 3 server error (its message printed),
// 4 server unreachable or the connection was lost.

#include <capnp/ez-rpc.h>
#include <kj/debug.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <functional>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "admin.capnp.h"
#include "hearth.capnp.h"
#include "ingest.capnp.h"
#include "query.capnp.h"
#include "tools/hearthctl_util.hpp"

namespace {

using namespace hearth;
using namespace hearth::ctl;

constexpr int exit_ok = 0, exit_corrupted = 1, exit_usage = 2, exit_server = 3, exit_unreachable = 4;

// ---- help ------------------------------------------------------------------------------------

const char* main_help =
    R"(usage: hearthctl [global options] COMMAND [ARGS...]

Operate a Hearth continuous-profiling server over its Cap'n Proto RPC port.

Commands:
  status                      this node and its peers (state, roles, addresses, uptime)
  cluster status              the same (the cluster's view from this node)
  upload FILE...              push profiles (pprof, folded, lines or JFR files)
  query flamegraph QUERY      the merged flame graph as a tree
  query top QUERY             functions by self or total
  query hotpath QUERY         the hottest path from the root
  query series QUERY          totals over time
  query diff LEFT RIGHT       what grew and shrank between two selections
  query labels [NAME]         label names, or the values of label NAME
  query types                 profile types with data
  query export QUERY -o FILE  the merged profile as gzipped pprof (for go tool pprof)
  blocks ls                   sealed blocks per tenant and partition
  blocks inspect ID           one block's footer and sections
  blocks verify               decode every block and check every CRC
  compact                     run compaction (and retention) now
  retention                   apply retention now
  tenants                     stored data per tenant
  config                      the server's effective configuration (TOML)

Global options:
  --server HOST:PORT   server's RPC address (default $HEARTH_SERVER or 127.0.0.1:4041)
  --tenant T           tenant (X-Scope-OrgID) when the server runs multi-tenant; for
                       blocks and tenants: only this tenant
  --token TOKEN        credentials when the server has [auth]: a bearer token or
                       user:password (default $HEARTH_TOKEN)
  --json               machine-readable output on stdout
  -h, --help           this help; `hearthctl COMMAND --help` for a command's

QUERY is a profile type and an optional selector, as Grafana writes them:
  process_cpu:cpu:nanoseconds:cpu:nanoseconds{service_name="checkout"}
`hearthctl query types` lists the profile types.

Times (--from, --until) take now, now-1h, now-2d12h, RFC 3339 (2026-11-22T10:00:00Z)
or a Unix timestamp (seconds, or ms/µs/ns by digit count).

Exit status: 0 ok, 1 verify found corrupted blocks, 2 usage error, 3 server error,
4 server unreachable or connection lost.

Examples:
  hearthctl upload --label service_name=checkout cpu.pb.gz heap.pb.gz
  hearthctl query top 'process_cpu:cpu:nanoseconds:cpu:nanoseconds{service_name="checkout"}' --from now-6h
  hearthctl query export 'memory:inuse_space:bytes:space:bytes{}' -o heap.pb.gz
  hearthctl --json blocks ls | jq '.[] | select(.level == 0)'
)";

const std::map<std::string, std::string> command_help = {
    {"status", R"(usage: hearthctl status

This node (name, roles, state, addresses, version, uptime) and the peers it knows.

Example:
  hearthctl --server 10.0.0.5:4041 status
)"},
    {"cluster", R"(usage: hearthctl cluster status

The cluster as this node sees it: every node's state (alive, suspect, down; "behind" while
another node holds writes it missed), roles, cluster address, ring share and last heartbeat.
The same as `hearthctl status`.

Example:
  hearthctl --server 10.0.0.5:4041 cluster status
)"},
    {"upload", R"(usage: hearthctl upload [options] FILE...

Push profiles to the server, one call per file (the same decoding and limits as POST /ingest).
The format comes from --format or the file name (.pb.gz, .pprof, .pb: pprof; .jfr: jfr;
.folded, .txt: folded; .lines: lines). A progress bar shows on stderr when it is a terminal.

Options:
  --label K=V          a label of the series (repeatable); service_name is required,
                       or give it with --service
  --service NAME       the application name (label service_name)
  --format F           pprof | folded | lines | jfr
  --type KIND          folded/lines: what the values measure (cpu, wall, alloc_space,
                       inuse_space, goroutines, mutex_count, ...; default cpu)
  --display-name T=N   pprof: store sample type T as N (repeatable)
  --from TIME          start of the profile (default: from the profile, or now)
  --until TIME         end of the profile
  --sample-rate HZ     folded/lines/jfr: samples per second (default 100)
  --spy-name NAME      the profiler that made it (label pyroscope_spy)

Examples:
  hearthctl upload --service checkout --label env=prod cpu.pb.gz
  hearthctl upload --service batch --format folded --type wall stacks.txt
)"},
    {"query", R"(usage: hearthctl query SUBCOMMAND [options] ARGS

Subcommands:
  flamegraph QUERY   the merged flame graph as an indented tree with total and self
  top QUERY          the top functions (by self, or --by total)
  hotpath QUERY      the hottest path: from the root, always into the heaviest child
  series QUERY       totals on a step grid, per --group-by value
  diff LEFT RIGHT    functions whose share grew or shrank from LEFT to RIGHT
  labels [NAME]      label names, or the values of label NAME
  types              profile types with data
  export QUERY       the merged profile as gzipped pprof, streamed to -o FILE

Options (where they apply):
  --from TIME, --until TIME   the range (default now-1h .. now; labels: all time)
  --right-from TIME, --right-until TIME   diff: RIGHT's range (default: the same)
  --max-nodes N       flamegraph/diff/export: node limit (default: the server's)
  --max-depth N       flamegraph: levels shown below the root (default all)
  --min-percent P     flamegraph: hide nodes under P% of the total (default 0.5)
  --width N           cut lines to N columns (default: the terminal's)
  --limit N           top/diff: functions per list (default 20); series: top N series
  --by self|total     top: the order (default self)
  --step DURATION     series: grid step (default 1m)
  --group-by LABEL    series: one series per value (repeatable)
  --avg               series: average per step instead of the sum
  --match SELECTOR    labels: only series matching it (repeatable, ANDed)
  -o, --output FILE   export: where to write (- for stdout)

Examples:
  hearthctl query flamegraph 'process_cpu:cpu:nanoseconds:cpu:nanoseconds{service_name="api"}' --max-depth 8
  hearthctl query diff 'process_cpu:cpu:nanoseconds:cpu:nanoseconds{version="1"}' \
      'process_cpu:cpu:nanoseconds:cpu:nanoseconds{version="2"}'
  hearthctl query series 'memory:inuse_space:bytes:space:bytes{}' --step 5m --group-by service_name
  hearthctl query labels service_name
  hearthctl query export 'process_cpu:cpu:nanoseconds:cpu:nanoseconds{}' -o cpu.pb.gz && go tool pprof -top cpu.pb.gz
)"},
    {"blocks", R"(usage: hearthctl blocks ls | inspect ID | verify

  ls           sealed blocks per tenant and shard: level, time range, size, series,
               profiles, samples, codec
  inspect ID   one block's footer and its sections (offsets, sizes, codecs, CRCs)
  verify       decode every block fully and check every CRC; exits 1 when a block is corrupted

--tenant T limits each to one tenant.

Examples:
  hearthctl blocks ls
  hearthctl blocks inspect 1732270000123
  hearthctl --json blocks verify
)"},
    {"compact", R"(usage: hearthctl compact

Run the compactor now (retention first, then merges and rollups) and print what it did.
Fails (exit 3, overloaded) while a run is in progress.

Examples:
  hearthctl compact
  hearthctl --json compact | jq .blocksOut
)"},
    {"retention", R"(usage: hearthctl retention

Apply retention now ([retention] period and per-tenant periods) without compaction jobs.

Example:
  hearthctl retention
)"},
    {"tenants", R"(usage: hearthctl tenants

Stored data per tenant, summed over sealed blocks: partitions, blocks, bytes, series,
profiles, samples and the time range. --tenant T shows one tenant.

Examples:
  hearthctl tenants
  hearthctl --tenant team-a --json tenants
)"},
    {"config", R"(usage: hearthctl config

The server's effective configuration as `hearth --print-config` prints it (secrets redacted).

Example:
  hearthctl config | grep -A3 '^\[retention\]'
)"},
};

// ---- errors and arguments --------------------------------------------------------------------

struct usage_error {
  std::string message;
  std::string command;  // whose help to point at
};

struct server_error {
  std::string message;
};

struct parsed_args {
  std::vector<std::string> positional;
  std::multimap<std::string, std::string> values;
  std::set<std::string> flags;

  std::optional<std::string> get(const std::string& k) const {
    auto [a, b] = values.equal_range(k);
    if (a == b) return std::nullopt;
    return std::prev(b)->second;
  }
  std::vector<std::string> all(const std::string& k) const {
    std::vector<std::string> out;
    for (auto [a, b] = values.equal_range(k); a != b; ++a) out.push_back(a->second);
    return out;
  }
  bool has(const std::string& f) const { return flags.count(f) > 0; }
};

struct global_options {
  std::string server;
  std::string tenant;
  bool tenant_given = false;
  std::string token;
  bool json = false;
  bool help = false;
};

// Splits argv into global options (anywhere), the command words and the command's options:
// `value_opts` take a value (--k v or --k=v), `flag_opts` do not; anything else is a usage error.
parsed_args parse(const std::vector<std::string>& args, const std::set<std::string>& value_opts,
                  const std::set<std::string>& flag_opts, const std::string& cmd) {
  parsed_args p;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (a == "--") {
      for (++i; i < args.size(); ++i) p.positional.push_back(args[i]);
      break;
    }
    if (a.size() < 2 || a[0] != '-' || a == "-") {
      p.positional.push_back(a);
      continue;
    }
    std::string name = a, value;
    bool inline_value = false;
    if (auto eq = a.find('='); eq != std::string::npos && a.rfind("--", 0) == 0) {
      name = a.substr(0, eq);
      value = a.substr(eq + 1);
      inline_value = true;
    }
    if (name == "-o") name = "--output";
    if (value_opts.count(name)) {
      if (!inline_value) {
        if (i + 1 >= args.size()) throw usage_error{name + " needs a value", cmd};
        value = args[++i];
      }
      p.values.emplace(name, value);
    } else if (flag_opts.count(name) && !inline_value) {
      p.flags.insert(name);
    } else {
      throw usage_error{"unknown option " + a, cmd};
    }
  }
  return p;
}

int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

int64_t time_arg(const parsed_args& a, const std::string& opt, const std::string& def, const std::string& cmd) {
  std::string v = a.get(opt).value_or(def);
  auto t = parse_time(v, now_ns());
  if (!t) throw usage_error{opt + ": cannot read time '" + v + "' (now, now-1h, RFC 3339 or Unix)", cmd};
  return *t;
}

int64_t int_arg(const parsed_args& a, const std::string& opt, int64_t def, const std::string& cmd) {
  auto v = a.get(opt);
  if (!v) return def;
  char* end = nullptr;
  long long n = std::strtoll(v->c_str(), &end, 10);
  if (v->empty() || *end || n < 0) throw usage_error{opt + ": expected a non-negative integer, got '" + *v + "'", cmd};
  return n;
}

double double_arg(const parsed_args& a, const std::string& opt, double def, const std::string& cmd) {
  auto v = a.get(opt);
  if (!v) return def;
  char* end = nullptr;
  double n = std::strtod(v->c_str(), &end);
  if (v->empty() || *end || n < 0) throw usage_error{opt + ": expected a non-negative number, got '" + *v + "'", cmd};
  return n;
}

size_t terminal_width(const parsed_args& a, const std::string& cmd) {
  if (a.get("--width")) return static_cast<size_t>(int_arg(a, "--width", 0, cmd));
  if (!isatty(STDOUT_FILENO)) return 0;
  winsize ws{};
  if (ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0) return ws.ws_col;
  if (const char* c = std::getenv("COLUMNS")) return static_cast<size_t>(std::atoi(c));
  return 100;
}

std::string text(capnp::Text::Reader t) { return std::string(t.cStr(), t.size()); }

std::string pct(double x) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.2f%%", x * 100);
  return buf;
}

std::string num(double x) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.17g", x);
  return buf;
}

// The message of a remote exception as the server wrote it ("<errc> <n>: <message>").
std::string remote_message(const kj::Exception& e) {
  std::string d = e.getDescription().cStr();
  const std::string prefix = "remote exception: ";
  if (d.rfind(prefix, 0) == 0) d = d.substr(prefix.size());
  return d;
}

// ---- the session -----------------------------------------------------------------------------

// The connection and the login, pipelined: nothing waits until a command's first call, so a bad
// argument found while building that call is a usage error even when the server is down.
capnp::RemotePromise<rpc::Hearth::LoginResults> login(capnp::EzRpcClient& client, const global_options& g) {
  auto req = client.getMain<rpc::Hearth>().loginRequest();
  req.setToken(g.token.c_str());
  req.setTenant(g.tenant.c_str());
  return req.send();
}

struct session {
  capnp::EzRpcClient client;
  capnp::RemotePromise<rpc::Hearth::LoginResults> logged_in;
  rpc::Ingest::Client ingest;
  rpc::Query::Client query;
  rpc::Admin::Client admin;

  explicit session(const global_options& g)
      : client(g.server.c_str(), 4041),
        logged_in(login(client, g)),
        ingest(logged_in.getIngest()),
        query(logged_in.getQuery()),
        admin(logged_in.getAdmin()) {}
  kj::WaitScope& ws() { return client.getWaitScope(); }
};

void set_selection(rpc::Selection::Builder s, const std::string& q, int64_t from_ns, int64_t until_ns) {
  s.setQuery(q.c_str());
  s.setStartMs(from_ns / 1000000);
  s.setEndMs(until_ns / 1000000);
}

std::string need_query(const parsed_args& a, size_t idx, const std::string& what, const std::string& cmd) {
  if (a.positional.size() <= idx) throw usage_error{"missing " + what, cmd};
  return a.positional[idx];
}

void no_more_args(const parsed_args& a, size_t n, const std::string& cmd) {
  if (a.positional.size() > n) throw usage_error{"unexpected argument '" + a.positional[n] + "'", cmd};
}

// ---- status, config, tenants, maintenance ----------------------------------------------------

std::string node_json(rpc::Node::Reader n) {
  std::string o = "{\"name\":" + json_string(text(n.getName())) + ",\"roles\":[";
  for (size_t i = 0; i < n.getRoles().size(); ++i) o += (i ? "," : "") + json_string(text(n.getRoles()[i]));
  o += "],\"state\":" + json_string(text(n.getState())) +
       ",\"lastHeartbeatMs\":" + std::to_string(n.getLastHeartbeatMs()) +
       ",\"httpAddress\":" + json_string(text(n.getHttpAddress())) +
       ",\"rpcAddress\":" + json_string(text(n.getRpcAddress())) +
       ",\"version\":" + json_string(text(n.getVersion())) +
       ",\"startedMs\":" + std::to_string(n.getStartedMs()) +
       ",\"clusterAddress\":" + json_string(text(n.getClusterAddress())) +
       ",\"ringShare\":" + num(n.getRingShare()) +
       ",\"behind\":" + (n.getBehind() ? "true" : "false") + "}";
  return o;
}

int cmd_status(session& s, const global_options& g, const parsed_args& a) {
  no_more_args(a, 0, "status");
  auto res = s.admin.statusRequest().send().wait(s.ws());
  auto st = res.getStatus();
  if (g.json) {
    std::string o = "{\"self\":" + node_json(st.getSelf()) + ",\"peers\":[";
    for (size_t i = 0; i < st.getPeers().size(); ++i) o += (i ? "," : "") + node_json(st.getPeers()[i]);
    std::printf("%s]}\n", o.c_str());
    return exit_ok;
  }
  int64_t now_ms = now_ns() / 1000000;
  // A cluster member also shows its cluster endpoint and ring share (peers' HTTP/RPC addresses
  // are not known to this node: "-").
  const bool clustered = !text(st.getSelf().getClusterAddress()).empty();
  std::vector<std::string> head = {"NODE", "STATE", "ROLES", "HTTP", "RPC", "VERSION", "UPTIME", "HEARTBEAT"};
  std::vector<bool> right = {false, false, false, false, false, false, true, true};
  if (clustered) {
    head.insert(head.begin() + 3, {"CLUSTER", "RING"});
    right.insert(right.begin() + 3, {false, true});
  }
  table t(head, right);
  auto or_dash = [](std::string v) { return v.empty() ? std::string("-") : v; };
  auto row = [&](rpc::Node::Reader n, bool self) {
    std::string roles;
    for (auto r : n.getRoles()) roles += (roles.empty() ? "" : ",") + text(r);
    std::string state = text(n.getState()) + (n.getBehind() ? " (behind)" : "");
    std::vector<std::string> cells = {
        text(n.getName()) + (self ? " (this)" : ""), state, roles, or_dash(text(n.getHttpAddress())),
        or_dash(text(n.getRpcAddress())), or_dash(text(n.getVersion())),
        n.getStartedMs() ? human_duration_ns(static_cast<double>(now_ms - n.getStartedMs()) * 1e6) : "-",
        n.getLastHeartbeatMs() == 0 ? std::string("never")
        : now_ms - n.getLastHeartbeatMs() < 1000
            ? std::string("now")
            : human_duration_ns(static_cast<double>(now_ms - n.getLastHeartbeatMs()) * 1e6) + " ago"};
    if (clustered) {
      cells.insert(cells.begin() + 3, {text(n.getClusterAddress()), pct(n.getRingShare())});
    }
    t.add(cells);
  };
  row(st.getSelf(), true);
  for (auto p : st.getPeers()) row(p, false);
  std::fputs(t.render().c_str(), stdout);
  if (st.getPeers().size() == 0) std::puts("(single node: no peers)");
  return exit_ok;
}

int cmd_cluster(session& s, const global_options& g, const parsed_args& a) {
  std::string sub = need_query(a, 0, "cluster subcommand (status)", "cluster");
  if (sub != "status") throw usage_error{"unknown cluster subcommand '" + sub + "' (status)", "cluster"};
  parsed_args rest = a;
  rest.positional.erase(rest.positional.begin());
  return cmd_status(s, g, rest);
}

int cmd_config(session& s, const global_options& g, const parsed_args& a) {
  no_more_args(a, 0, "config");
  auto res = s.admin.configRequest().send().wait(s.ws());
  if (g.json) std::printf("{\"toml\":%s}\n", json_string(text(res.getToml())).c_str());
  else std::fputs(text(res.getToml()).c_str(), stdout);
  return exit_ok;
}

int cmd_tenants(session& s, const global_options& g, const parsed_args& a) {
  no_more_args(a, 0, "tenants");
  auto req = s.admin.tenantStatsRequest();
  req.setTenant(g.tenant_given ? g.tenant.c_str() : "");
  auto res = req.send().wait(s.ws());
  if (g.json) {
    std::string o = "[";
    bool first = true;
    for (auto t : res.getTenants()) {
      o += std::string(first ? "" : ",") + "{\"tenant\":" + json_string(text(t.getTenant())) +
           ",\"partitions\":" + std::to_string(t.getPartitions()) + ",\"blocks\":" + std::to_string(t.getBlocks()) +
           ",\"bytes\":" + std::to_string(t.getBytes()) + ",\"series\":" + std::to_string(t.getSeries()) +
           ",\"profiles\":" + std::to_string(t.getProfiles()) + ",\"samples\":" + std::to_string(t.getSamples()) +
           ",\"minTimeNs\":" + std::to_string(t.getMinTimeNs()) + ",\"maxTimeNs\":" + std::to_string(t.getMaxTimeNs()) + "}";
      first = false;
    }
    std::printf("%s]\n", o.c_str());
    return exit_ok;
  }
  table t({"TENANT", "PARTITIONS", "BLOCKS", "SIZE", "SERIES", "PROFILES", "SAMPLES", "OLDEST", "NEWEST"},
          {false, true, true, true, true, true, true, false, false});
  for (auto x : res.getTenants())
    t.add({text(x.getTenant()), std::to_string(x.getPartitions()), std::to_string(x.getBlocks()),
           human_bytes(static_cast<double>(x.getBytes())), std::to_string(x.getSeries()),
           std::to_string(x.getProfiles()), std::to_string(x.getSamples()),
           x.getMinTimeNs() ? format_time_ns(x.getMinTimeNs()) : "-",
           x.getMaxTimeNs() ? format_time_ns(x.getMaxTimeNs()) : "-"});
  if (t.empty()) std::puts("no tenants with data");
  else std::fputs(t.render().c_str(), stdout);
  return exit_ok;
}

void print_report(rpc::CompactionReport::Reader r, bool json, const char* what) {
  if (json) {
    std::printf("{\"jobs\":%llu,\"blocksIn\":%llu,\"blocksOut\":%llu,\"bytesIn\":%llu,\"bytesOut\":%llu,"
                "\"duplicates\":%llu,\"dropped\":%llu}\n",
                (unsigned long long)r.getJobs(), (unsigned long long)r.getBlocksIn(),
                (unsigned long long)r.getBlocksOut(), (unsigned long long)r.getBytesIn(),
                (unsigned long long)r.getBytesOut(), (unsigned long long)r.getDuplicates(),
                (unsigned long long)r.getDropped());
    return;
  }
  std::printf("%s done: %llu jobs, %llu blocks -> %llu (%s -> %s), %llu duplicate profiles dropped, "
              "%llu blocks deleted by retention\n",
              what, (unsigned long long)r.getJobs(), (unsigned long long)r.getBlocksIn(),
              (unsigned long long)r.getBlocksOut(), human_bytes(static_cast<double>(r.getBytesIn())).c_str(),
              human_bytes(static_cast<double>(r.getBytesOut())).c_str(), (unsigned long long)r.getDuplicates(),
              (unsigned long long)r.getDropped());
}

int cmd_compact(session& s, const global_options& g, const parsed_args& a) {
  no_more_args(a, 0, "compact");
  auto res = s.admin.compactRequest().send().wait(s.ws());
  print_report(res.getReport(), g.json, "compaction");
  return exit_ok;
}

int cmd_retention(session& s, const global_options& g, const parsed_args& a) {
  no_more_args(a, 0, "retention");
  auto res = s.admin.runRetentionRequest().send().wait(s.ws());
  print_report(res.getReport(), g.json, "retention");
  return exit_ok;
}

// ---- blocks ----------------------------------------------------------------------------------

std::string block_json(rpc::Block::Reader b) {
  std::string o = "{\"tenant\":" + json_string(text(b.getTenant())) + ",\"shard\":" + std::to_string(b.getShard()) +
                  ",\"id\":" + std::to_string(b.getId()) + ",\"path\":" + json_string(text(b.getPath())) +
                  ",\"level\":" + std::to_string(b.getLevel()) + ",\"rollupStepNs\":" + std::to_string(b.getRollupStepNs()) +
                  ",\"minTimeNs\":" + std::to_string(b.getMinTimeNs()) + ",\"maxTimeNs\":" + std::to_string(b.getMaxTimeNs()) +
                  ",\"bytes\":" + std::to_string(b.getBytes()) + ",\"series\":" + std::to_string(b.getSeries()) +
                  ",\"profiles\":" + std::to_string(b.getProfiles()) + ",\"samples\":" + std::to_string(b.getSamples()) +
                  ",\"codec\":" + json_string(text(b.getCodec())) + ",\"version\":" + std::to_string(b.getVersion()) +
                  ",\"sources\":[";
  for (size_t i = 0; i < b.getSources().size(); ++i) o += (i ? "," : "") + std::to_string(b.getSources()[i]);
  return o + "]}";
}

std::string level_name(rpc::Block::Reader b) {
  std::string l = "L" + std::to_string(b.getLevel());
  if (b.getRollupStepNs()) l += " rollup " + human_duration_ns(static_cast<double>(b.getRollupStepNs()));
  return l;
}

std::string block_range(rpc::Block::Reader b) {
  if (b.getProfiles() == 0) return "-";
  return format_time_ns(b.getMinTimeNs()) + " .. " + format_time_ns(b.getMaxTimeNs()).substr(11);
}

int cmd_blocks(session& s, const global_options& g, const parsed_args& a) {
  std::string sub = need_query(a, 0, "blocks subcommand (ls, inspect, verify)", "blocks");
  std::string tenant = g.tenant_given ? g.tenant : "";
  if (sub == "ls") {
    no_more_args(a, 1, "blocks");
    auto req = s.admin.listBlocksRequest();
    req.setTenant(tenant.c_str());
    auto res = req.send().wait(s.ws());
    if (g.json) {
      std::string o = "[";
      for (size_t i = 0; i < res.getBlocks().size(); ++i) o += (i ? "," : "") + block_json(res.getBlocks()[i]);
      std::printf("%s]\n", o.c_str());
      return exit_ok;
    }
    table t({"TENANT", "SHARD", "ID", "LEVEL", "TIME RANGE (UTC)", "SIZE", "SERIES", "PROFILES", "SAMPLES", "CODEC"},
            {false, true, true, false, false, true, true, true, true, false});
    for (auto b : res.getBlocks())
      t.add({text(b.getTenant()), std::to_string(b.getShard()), std::to_string(b.getId()), level_name(b),
             block_range(b), human_bytes(static_cast<double>(b.getBytes())), std::to_string(b.getSeries()),
             std::to_string(b.getProfiles()), std::to_string(b.getSamples()), text(b.getCodec())});
    if (t.empty()) std::puts("no sealed blocks (recent data is in the in-memory head until it is sealed)");
    else std::fputs(t.render().c_str(), stdout);
    return exit_ok;
  }
  if (sub == "inspect") {
    std::string id_text = need_query(a, 1, "block ID (see `hearthctl blocks ls`)", "blocks");
    no_more_args(a, 2, "blocks");
    char* end = nullptr;
    unsigned long long id = std::strtoull(id_text.c_str(), &end, 10);
    if (id_text.empty() || *end) throw usage_error{"block ID must be a number, got '" + id_text + "'", "blocks"};
    auto req = s.admin.inspectBlockRequest();
    req.setTenant(tenant.c_str());
    req.setId(id);
    auto res = req.send().wait(s.ws());
    auto in = res.getInspection();
    auto b = in.getBlock();
    if (g.json) {
      std::string o = "{\"block\":" + block_json(b) + ",\"stacks\":" + std::to_string(in.getStacks()) +
                      ",\"walSeq\":" + std::to_string(in.getWalSeq()) + ",\"sections\":[";
      for (size_t i = 0; i < in.getSections().size(); ++i) {
        auto x = in.getSections()[i];
        o += std::string(i ? "," : "") + "{\"name\":" + json_string(text(x.getName())) +
             ",\"offset\":" + std::to_string(x.getOffset()) + ",\"bytes\":" + std::to_string(x.getBytes()) +
             ",\"rawBytes\":" + std::to_string(x.getRawBytes()) + ",\"codec\":" + json_string(text(x.getCodec())) +
             ",\"crc\":" + std::to_string(x.getCrc()) + ",\"crcOk\":" + (x.getCrcOk() ? "true" : "false") + "}";
      }
      std::printf("%s]}\n", o.c_str());
      return exit_ok;
    }
    table kv({"FIELD", "VALUE"}, {false, false});
    kv.add({"tenant / shard", text(b.getTenant()) + " / " + std::to_string(b.getShard())});
    kv.add({"id", std::to_string(b.getId())});
    kv.add({"path", text(b.getPath())});
    kv.add({"format version", std::to_string(b.getVersion())});
    kv.add({"level", level_name(b)});
    kv.add({"time range (UTC)", block_range(b)});
    kv.add({"size", human_bytes(static_cast<double>(b.getBytes())) + " (" + std::to_string(b.getBytes()) + " bytes)"});
    kv.add({"series / profiles / samples", std::to_string(b.getSeries()) + " / " + std::to_string(b.getProfiles()) +
                                               " / " + std::to_string(b.getSamples())});
    kv.add({"stack nodes", std::to_string(in.getStacks())});
    kv.add({"codec", text(b.getCodec())});
    kv.add({"wal seq", std::to_string(in.getWalSeq())});
    std::string src;
    for (auto x : b.getSources()) src += (src.empty() ? "" : ", ") + std::to_string(x);
    kv.add({"sources", src.empty() ? "-" : src});
    std::fputs(kv.render().c_str(), stdout);
    std::puts("");
    table t({"SECTION", "OFFSET", "STORED", "RAW", "CODEC", "CRC32C", "CHECK"},
            {false, true, true, true, false, false, false});
    for (auto x : in.getSections()) {
      char crc[16];
      std::snprintf(crc, sizeof crc, "%08x", x.getCrc());
      t.add({text(x.getName()), std::to_string(x.getOffset()), human_bytes(static_cast<double>(x.getBytes())),
             human_bytes(static_cast<double>(x.getRawBytes())), text(x.getCodec()), crc,
             x.getCrcOk() ? "ok" : "CRC MISMATCH"});
    }
    std::fputs(t.render().c_str(), stdout);
    return exit_ok;
  }
  if (sub == "verify") {
    no_more_args(a, 1, "blocks");
    auto req = s.admin.verifyBlocksRequest();
    req.setTenant(tenant.c_str());
    auto res = req.send().wait(s.ws());
    if (g.json) {
      std::string o = "{\"checked\":" + std::to_string(res.getChecked()) + ",\"corrupted\":" +
                      std::to_string(res.getCorrupted()) + ",\"results\":[";
      for (size_t i = 0; i < res.getResults().size(); ++i) {
        auto r = res.getResults()[i];
        o += std::string(i ? "," : "") + "{\"block\":" + block_json(r.getBlock()) + ",\"ok\":" +
             (r.getOk() ? "true" : "false") + ",\"error\":" + json_string(text(r.getError())) + "}";
      }
      std::printf("%s]}\n", o.c_str());
    } else {
      table t({"TENANT", "SHARD", "ID", "LEVEL", "SIZE", "RESULT"}, {false, true, true, false, true, false});
      for (auto r : res.getResults())
        t.add({text(r.getBlock().getTenant()), std::to_string(r.getBlock().getShard()),
               std::to_string(r.getBlock().getId()), level_name(r.getBlock()),
               human_bytes(static_cast<double>(r.getBlock().getBytes())),
               r.getOk() ? "ok" : "CORRUPTED: " + text(r.getError())});
      if (!t.empty()) std::fputs(t.render().c_str(), stdout);
      std::printf("%llu blocks checked, %llu corrupted\n", (unsigned long long)res.getChecked(),
                  (unsigned long long)res.getCorrupted());
    }
    return res.getCorrupted() ? exit_corrupted : exit_ok;
  }
  throw usage_error{"unknown blocks subcommand '" + sub + "' (ls, inspect, verify)", "blocks"};
}

// ---- upload ----------------------------------------------------------------------------------

std::optional<rpc::Format> format_of(const std::string& name) {
  if (name == "pprof") return rpc::Format::PPROF;
  if (name == "folded") return rpc::Format::FOLDED;
  if (name == "lines") return rpc::Format::LINES;
  if (name == "jfr") return rpc::Format::JFR;
  return std::nullopt;
}

std::optional<rpc::Format> format_of_file(const std::string& path) {
  auto ends = [&](const char* suf) {
    size_t n = std::strlen(suf);
    return path.size() >= n && path.compare(path.size() - n, n, suf) == 0;
  };
  if (ends(".pb.gz") || ends(".pprof") || ends(".pb") || ends(".prof")) return rpc::Format::PPROF;
  if (ends(".jfr") || ends(".jfr.gz")) return rpc::Format::JFR;
  if (ends(".folded") || ends(".txt") || ends(".folded.gz")) return rpc::Format::FOLDED;
  if (ends(".lines")) return rpc::Format::LINES;
  return std::nullopt;
}

std::string read_file(const std::string& path, const std::string& cmd) {
  std::ifstream f(path, std::ios::binary);
  if (!f) throw usage_error{"cannot read " + path + ": " + std::strerror(errno), cmd};
  std::ostringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

int cmd_upload(session& s, const global_options& g, const parsed_args& a) {
  const std::string cmd = "upload";
  if (a.positional.empty()) throw usage_error{"no FILE to upload", cmd};
  std::vector<std::pair<std::string, std::string>> labels;
  std::string service = a.get("--service").value_or("");
  for (const auto& l : a.all("--label")) {
    auto eq = l.find('=');
    if (eq == std::string::npos || eq == 0) throw usage_error{"--label expects K=V, got '" + l + "'", cmd};
    if (l.substr(0, eq) == "service_name") service = l.substr(eq + 1);
    else labels.emplace_back(l.substr(0, eq), l.substr(eq + 1));
  }
  if (service.empty()) throw usage_error{"a service name is required: --service NAME or --label service_name=NAME", cmd};
  std::vector<std::pair<std::string, std::string>> display;
  for (const auto& d : a.all("--display-name")) {
    auto eq = d.find('=');
    if (eq == std::string::npos || eq == 0) throw usage_error{"--display-name expects TYPE=NAME, got '" + d + "'", cmd};
    display.emplace_back(d.substr(0, eq), d.substr(eq + 1));
  }
  std::optional<rpc::Format> forced;
  if (auto f = a.get("--format")) {
    forced = format_of(*f);
    if (!forced) throw usage_error{"--format must be pprof, folded, lines or jfr, got '" + *f + "'", cmd};
  }
  int64_t from = a.get("--from") ? time_arg(a, "--from", "now", cmd) : 0;
  int64_t until = a.get("--until") ? time_arg(a, "--until", "now", cmd) : 0;
  int64_t rate = int_arg(a, "--sample-rate", 0, cmd);
  std::string kind = a.get("--type").value_or("");
  // Read and check every file before sending any: a typo in the 5th name uploads nothing.
  std::vector<std::pair<std::string, rpc::Format>> files;
  uint64_t total = 0;
  for (const auto& p : a.positional) {
    auto f = forced ? forced : format_of_file(p);
    if (!f) throw usage_error{"cannot tell the format of " + p + " from its name; give --format", cmd};
    std::ifstream in(p, std::ios::binary | std::ios::ate);
    if (!in) throw usage_error{"cannot read " + p + ": " + std::strerror(errno), cmd};
    total += static_cast<uint64_t>(in.tellg());
    files.emplace_back(p, *f);
  }
  bool bar = !g.json && isatty(STDERR_FILENO);
  uint64_t done = 0, profiles = 0, series = 0, samples = 0;
  std::string json = "[";
  for (size_t i = 0; i < files.size(); ++i) {
    std::string data = read_file(files[i].first, cmd);
    auto req = s.ingest.pushRequest();
    auto r = req.initRequest();
    r.setServiceName(service.c_str());
    auto ls = r.initLabels(static_cast<unsigned>(labels.size()));
    for (size_t k = 0; k < labels.size(); ++k) {
      ls[k].setName(labels[k].first.c_str());
      ls[k].setValue(labels[k].second.c_str());
    }
    r.setFormat(files[i].second);
    r.setData(kj::arrayPtr(reinterpret_cast<const kj::byte*>(data.data()), data.size()));
    r.setFromNs(from);
    r.setUntilNs(until);
    r.setSampleRate(static_cast<uint32_t>(rate));
    if (auto spy = a.get("--spy-name")) r.setSpyName(spy->c_str());
    r.setKind(kind.c_str());
    auto stc = r.initSampleTypeConfig(static_cast<unsigned>(display.size()));
    for (size_t k = 0; k < display.size(); ++k) {
      stc[k].setSampleType(display[k].first.c_str());
      stc[k].setDisplayName(display[k].second.c_str());
    }
    if (bar) std::fprintf(stderr, "%s  %zu/%zu %s", progress_line(done, total, 60).c_str(), i + 1, files.size(),
                          files[i].first.c_str());
    auto res_response = req.send().wait(s.ws());
    auto res = res_response.getResult();
    done += data.size();
    profiles += res.getProfiles();
    series += res.getSeries();
    samples += res.getSamples();
    if (g.json)
      json += std::string(i ? "," : "") + "{\"file\":" + json_string(files[i].first) + ",\"bytes\":" +
              std::to_string(data.size()) + ",\"profiles\":" + std::to_string(res.getProfiles()) +
              ",\"series\":" + std::to_string(res.getSeries()) + ",\"samples\":" + std::to_string(res.getSamples()) + "}";
  }
  if (bar) std::fprintf(stderr, "%s\n", progress_line(done, total, 60).c_str());
  if (g.json) {
    std::printf("%s]\n", json.c_str());
  } else {
    std::printf("uploaded %zu file%s (%s): %llu profiles, %llu series, %llu samples\n", files.size(),
                files.size() == 1 ? "" : "s", human_bytes(static_cast<double>(done)).c_str(),
                (unsigned long long)profiles, (unsigned long long)series, (unsigned long long)samples);
  }
  return exit_ok;
}

// ---- query -----------------------------------------------------------------------------------

std::string shares_json(capnp::List<rpc::FunctionShare>::Reader l) {
  std::string o = "[";
  for (size_t i = 0; i < l.size(); ++i)
    o += std::string(i ? "," : "") + "{\"name\":" + json_string(text(l[i].getName())) +
         ",\"self\":" + std::to_string(l[i].getSelf()) + ",\"total\":" + std::to_string(l[i].getTotal()) +
         ",\"selfShare\":" + num(l[i].getSelfShare()) + ",\"totalShare\":" + num(l[i].getTotalShare()) + "}";
  return o + "]";
}

std::string changes_json(capnp::List<rpc::FunctionChange>::Reader l) {
  std::string o = "[";
  for (size_t i = 0; i < l.size(); ++i)
    o += std::string(i ? "," : "") + "{\"name\":" + json_string(text(l[i].getName())) +
         ",\"leftSelf\":" + std::to_string(l[i].getLeftSelf()) + ",\"leftTotal\":" + std::to_string(l[i].getLeftTotal()) +
         ",\"rightSelf\":" + std::to_string(l[i].getRightSelf()) + ",\"rightTotal\":" + std::to_string(l[i].getRightTotal()) +
         ",\"selfShareDelta\":" + num(l[i].getSelfShareDelta()) +
         ",\"totalShareDelta\":" + num(l[i].getTotalShareDelta()) + "}";
  return o + "]";
}

std::string levels_json(capnp::List<capnp::List<int64_t>>::Reader lv) {
  std::string o = "[";
  for (size_t i = 0; i < lv.size(); ++i) {
    o += i ? ",[" : "[";
    for (size_t k = 0; k < lv[i].size(); ++k) o += (k ? "," : "") + std::to_string(lv[i][k]);
    o += "]";
  }
  return o + "]";
}

std::string names_json(capnp::List<capnp::Text>::Reader l) {
  std::string o = "[";
  for (size_t i = 0; i < l.size(); ++i) o += (i ? "," : "") + json_string(text(l[i]));
  return o + "]";
}

void print_changes(const char* title, capnp::List<rpc::FunctionChange>::Reader l, const std::string& unit,
                   size_t width) {
  std::printf("%s\n", title);
  if (l.size() == 0) {
    std::puts("  (none)\n");
    return;
  }
  table t({"  BEFORE", "AFTER", "SHARE Δ", "FUNCTION"}, {true, true, true, false});
  for (auto c : l) {
    char d[32];
    std::snprintf(d, sizeof d, "%+.2f pp", c.getSelfShareDelta() * 100);
    t.add({"  " + human_value(static_cast<double>(c.getLeftSelf()), unit),
           human_value(static_cast<double>(c.getRightSelf()), unit), d, text(c.getName())});
  }
  std::fputs(t.render(width).c_str(), stdout);
  std::puts("");
}

int export_pprof(session& s, const global_options& g, const parsed_args& a, const std::string& q,
                 const std::string& path);

int cmd_query(session& s, const global_options& g, const parsed_args& a) {
  const std::string cmd = "query";
  std::string sub = need_query(a, 0, "query subcommand (flamegraph, top, hotpath, series, diff, labels, types, export)", cmd);
  size_t width = terminal_width(a, cmd);
  if (sub == "flamegraph") {
    std::string q = need_query(a, 1, "QUERY (a profile type and selector)", cmd);
    no_more_args(a, 2, cmd);
    auto req = s.query.flameGraphRequest();
    set_selection(req.initSelection(), q, time_arg(a, "--from", "now-1h", cmd), time_arg(a, "--until", "now", cmd));
    req.setMaxNodes(int_arg(a, "--max-nodes", 0, cmd));
    tree_options o;
    o.max_depth = static_cast<int>(int_arg(a, "--max-depth", 0, cmd));
    o.min_percent = double_arg(a, "--min-percent", 0.5, cmd);
    o.width = width;
    o.unit = sample_unit_of(q.substr(0, q.find('{')));
    auto res = req.send().wait(s.ws());
    auto fg = res.getGraph();
    if (g.json) {
      std::printf("{\"names\":%s,\"levels\":%s,\"total\":%lld,\"maxSelf\":%lld}\n", names_json(fg.getNames()).c_str(),
                  levels_json(fg.getLevels()).c_str(), (long long)fg.getTotal(), (long long)fg.getMaxSelf());
      return exit_ok;
    }
    if (fg.getTotal() == 0) {
      std::puts("no data in this range (try --from now-24h, or `hearthctl query types`)");
      return exit_ok;
    }
    flame_levels lv;
    for (auto n : fg.getNames()) lv.names.push_back(text(n));
    for (auto l : fg.getLevels()) {
      lv.levels.emplace_back();
      for (auto v : l) lv.levels.back().push_back(v);
    }
    std::fputs(render_tree(lv, o).c_str(), stdout);
    return exit_ok;
  }
  if (sub == "top" || sub == "hotpath") {
    std::string q = need_query(a, 1, "QUERY (a profile type and selector)", cmd);
    no_more_args(a, 2, cmd);
    std::string by = a.get("--by").value_or("self");
    if (by != "self" && by != "total") throw usage_error{"--by must be self or total, got '" + by + "'", cmd};
    auto req = s.query.findingsRequest();
    set_selection(req.initSelection(), q, time_arg(a, "--from", "now-1h", cmd), time_arg(a, "--until", "now", cmd));
    req.setTop(int_arg(a, "--limit", 20, cmd));
    auto res = req.send().wait(s.ws());
    auto f = res.getFindings();
    std::string unit = sample_unit_of(q.substr(0, q.find('{')));
    if (sub == "top") {
      if (g.json) {
        std::printf("{\"total\":%lld,\"topSelf\":%s,\"topTotal\":%s}\n", (long long)f.getTotal(),
                    shares_json(f.getTopSelf()).c_str(), shares_json(f.getTopTotal()).c_str());
        return exit_ok;
      }
      if (f.getTotal() == 0) {
        std::puts("no data in this range");
        return exit_ok;
      }
      table t({"#", "SELF", "SELF%", "TOTAL", "TOTAL%", "FUNCTION"}, {true, true, true, true, true, false});
      auto list = by == "self" ? f.getTopSelf() : f.getTopTotal();
      for (size_t i = 0; i < list.size(); ++i)
        t.add({std::to_string(i + 1), human_value(static_cast<double>(list[i].getSelf()), unit),
               pct(list[i].getSelfShare()), human_value(static_cast<double>(list[i].getTotal()), unit),
               pct(list[i].getTotalShare()), text(list[i].getName())});
      std::printf("total %s, top %zu by %s\n", human_value(static_cast<double>(f.getTotal()), unit).c_str(),
                  static_cast<size_t>(list.size()), by.c_str());
      std::fputs(t.render(width).c_str(), stdout);
      return exit_ok;
    }
    if (g.json) {
      std::string o = "{\"total\":" + std::to_string(f.getTotal()) + ",\"hotPath\":[";
      for (size_t i = 0; i < f.getHotPath().size(); ++i) {
        auto p = f.getHotPath()[i];
        o += std::string(i ? "," : "") + "{\"name\":" + json_string(text(p.getName())) + ",\"self\":" +
             std::to_string(p.getSelf()) + ",\"total\":" + std::to_string(p.getTotal()) + ",\"share\":" +
             num(p.getShare()) + "}";
      }
      std::printf("%s]}\n", o.c_str());
      return exit_ok;
    }
    if (f.getTotal() == 0) {
      std::puts("no data in this range");
      return exit_ok;
    }
    table t({"DEPTH", "TOTAL", "TOTAL%", "SELF", "FUNCTION"}, {true, true, true, true, false});
    for (size_t i = 0; i < f.getHotPath().size(); ++i) {
      auto p = f.getHotPath()[i];
      t.add({std::to_string(i), human_value(static_cast<double>(p.getTotal()), unit), pct(p.getShare()),
             human_value(static_cast<double>(p.getSelf()), unit), std::string(std::min<size_t>(i, 20), ' ') + text(p.getName())});
    }
    std::fputs(t.render(width).c_str(), stdout);
    return exit_ok;
  }
  if (sub == "series") {
    std::string q = need_query(a, 1, "QUERY (a profile type and selector)", cmd);
    no_more_args(a, 2, cmd);
    auto step = parse_duration_s(a.get("--step").value_or("1m"));
    if (!step) throw usage_error{"--step: cannot read duration '" + *a.get("--step") + "' (e.g. 15s, 5m, 1h)", cmd};
    auto req = s.query.seriesRequest();
    set_selection(req.initSelection(), q, time_arg(a, "--from", "now-1h", cmd), time_arg(a, "--until", "now", cmd));
    req.setStepS(*step);
    auto gb = a.all("--group-by");
    auto l = req.initGroupBy(static_cast<unsigned>(gb.size()));
    for (size_t i = 0; i < gb.size(); ++i) l.set(i, gb[i].c_str());
    req.setAverage(a.has("--avg"));
    req.setLimit(int_arg(a, "--limit", 0, cmd));
    auto res = req.send().wait(s.ws());
    std::string unit = sample_unit_of(q.substr(0, q.find('{')));
    if (g.json) {
      std::string o = "[";
      for (size_t i = 0; i < res.getSeries().size(); ++i) {
        auto se = res.getSeries()[i];
        o += std::string(i ? "," : "") + "{\"labels\":{";
        for (size_t k = 0; k < se.getLabels().size(); ++k)
          o += (k ? "," : "") + json_string(text(se.getLabels()[k].getName())) + ":" +
               json_string(text(se.getLabels()[k].getValue()));
        o += "},\"points\":[";
        for (size_t k = 0; k < se.getPoints().size(); ++k)
          o += std::string(k ? "," : "") + "[" + std::to_string(se.getPoints()[k].getTimestampMs()) + "," +
               num(se.getPoints()[k].getValue()) + "]";
        o += "]}";
      }
      std::printf("%s]\n", o.c_str());
      return exit_ok;
    }
    if (res.getSeries().size() == 0) {
      std::puts("no data in this range");
      return exit_ok;
    }
    for (auto se : res.getSeries()) {
      std::string name;
      for (auto lb : se.getLabels()) name += (name.empty() ? "" : ",") + text(lb.getName()) + "=" + text(lb.getValue());
      std::printf("series {%s}\n", name.c_str());
      table t({"  TIME (UTC)", "VALUE"}, {false, true});
      for (auto p : se.getPoints())
        t.add({"  " + format_time_ns(p.getTimestampMs() * 1000000), human_value(p.getValue(), unit)});
      std::fputs(t.render(width).c_str(), stdout);
    }
    return exit_ok;
  }
  if (sub == "diff") {
    std::string left = need_query(a, 1, "LEFT query", cmd);
    std::string right = need_query(a, 2, "RIGHT query", cmd);
    no_more_args(a, 3, cmd);
    int64_t lf = time_arg(a, "--from", "now-1h", cmd), lu = time_arg(a, "--until", "now", cmd);
    int64_t rf = a.get("--right-from") ? time_arg(a, "--right-from", "", cmd) : lf;
    int64_t ru = a.get("--right-until") ? time_arg(a, "--right-until", "", cmd) : lu;
    auto dreq = s.query.diffRequest();
    set_selection(dreq.initLeft(), left, lf, lu);
    set_selection(dreq.initRight(), right, rf, ru);
    dreq.setMaxNodes(int_arg(a, "--max-nodes", 0, cmd));
    auto rreq = s.query.regressionRequest();
    set_selection(rreq.initBaseline(), left, lf, lu);
    set_selection(rreq.initComparison(), right, rf, ru);
    rreq.setTop(int_arg(a, "--limit", 20, cmd));
    auto dres = dreq.send();
    auto rres = rreq.send();
    auto d_response = dres.wait(s.ws());
    auto d = d_response.getDiff();
    auto r_response = rres.wait(s.ws());
    auto r = r_response.getRegression();
    std::string unit = sample_unit_of(left.substr(0, left.find('{')));
    if (g.json) {
      std::printf("{\"diff\":{\"names\":%s,\"levels\":%s,\"total\":%lld,\"maxSelf\":%lld,\"leftTicks\":%lld,"
                  "\"rightTicks\":%lld},\"regression\":{\"leftTotal\":%lld,\"rightTotal\":%lld,\"selfGrew\":%s,"
                  "\"selfShrank\":%s,\"totalGrew\":%s,\"totalShrank\":%s}}\n",
                  names_json(d.getNames()).c_str(), levels_json(d.getLevels()).c_str(), (long long)d.getTotal(),
                  (long long)d.getMaxSelf(), (long long)d.getLeftTicks(), (long long)d.getRightTicks(),
                  (long long)r.getLeftTotal(), (long long)r.getRightTotal(), changes_json(r.getSelfGrew()).c_str(),
                  changes_json(r.getSelfShrank()).c_str(), changes_json(r.getTotalGrew()).c_str(),
                  changes_json(r.getTotalShrank()).c_str());
      return exit_ok;
    }
    std::printf("before: %s   after: %s   (self values; share Δ in percentage points of each side's total)\n\n",
                human_value(static_cast<double>(d.getLeftTicks()), unit).c_str(),
                human_value(static_cast<double>(d.getRightTicks()), unit).c_str());
    print_changes("grew:", r.getSelfGrew(), unit, width);
    print_changes("shrank:", r.getSelfShrank(), unit, width);
    return exit_ok;
  }
  if (sub == "labels") {
    no_more_args(a, 2, cmd);
    bool values = a.positional.size() > 1;
    // Without --from and --until: all time. With one of them, the other defaults as elsewhere
    // (--until now, --from an hour before --until).
    int64_t from = 0, until = 0;
    if (a.get("--from") || a.get("--until")) {
      until = time_arg(a, "--until", "now", cmd) / 1000000;
      from = a.get("--from") ? time_arg(a, "--from", "", cmd) / 1000000 : until - 3600 * 1000;
    }
    auto matchers = a.all("--match");
    std::vector<std::string> out;
    if (values) {
      auto req = s.query.labelValuesRequest();
      req.setName(a.positional[1].c_str());
      auto m = req.initMatchers(static_cast<unsigned>(matchers.size()));
      for (size_t i = 0; i < matchers.size(); ++i) m.set(i, matchers[i].c_str());
      req.setStartMs(from);
      req.setEndMs(until);
      auto res = req.send().wait(s.ws());
      for (auto v : res.getValues()) out.push_back(text(v));
    } else {
      auto req = s.query.labelNamesRequest();
      auto m = req.initMatchers(static_cast<unsigned>(matchers.size()));
      for (size_t i = 0; i < matchers.size(); ++i) m.set(i, matchers[i].c_str());
      req.setStartMs(from);
      req.setEndMs(until);
      auto res = req.send().wait(s.ws());
      for (auto v : res.getNames()) out.push_back(text(v));
    }
    if (g.json) {
      std::string o = "[";
      for (size_t i = 0; i < out.size(); ++i) o += (i ? "," : "") + json_string(out[i]);
      std::printf("%s]\n", o.c_str());
    } else {
      for (const auto& v : out) std::puts(v.c_str());
    }
    return exit_ok;
  }
  if (sub == "types") {
    no_more_args(a, 1, cmd);
    auto req = s.query.profileTypesRequest();
    req.setStartMs(time_arg(a, "--from", "now-1h", cmd) / 1000000);
    req.setEndMs(time_arg(a, "--until", "now", cmd) / 1000000);
    auto res = req.send().wait(s.ws());
    if (g.json) {
      std::printf("%s\n", names_json(res.getTypes()).c_str());
    } else {
      for (auto t : res.getTypes()) std::puts(text(t).c_str());
      if (res.getTypes().size() == 0) std::fputs("no profile types in this range (try --from now-24h)\n", stderr);
    }
    return exit_ok;
  }
  if (sub == "export") {
    std::string q = need_query(a, 1, "QUERY (a profile type and selector)", cmd);
    no_more_args(a, 2, cmd);
    auto out_path = a.get("--output");
    if (!out_path) throw usage_error{"export needs -o FILE (or -o - for stdout)", cmd};
    return export_pprof(s, g, a, q, *out_path);
  }
  throw usage_error{"unknown query subcommand '" + sub + "'", cmd};
}

// The client side of the streamed export: chunks go straight to the file.
class file_sink final : public rpc::ByteSink::Server {
 public:
  file_sink(std::FILE* f, bool bar) : f_(f), bar_(bar) {}
  uint64_t written = 0, total = 0;
  bool finished = false;

 protected:
  kj::Promise<void> begin(BeginContext context) override {
    total = context.getParams().getTotalBytes();
    return kj::READY_NOW;
  }
  kj::Promise<void> write(WriteContext context) override {
    auto chunk = context.getParams().getChunk();
    if (std::fwrite(chunk.begin(), 1, chunk.size(), f_) != chunk.size())
      return KJ_EXCEPTION(FAILED, "writing the export failed", strerror(errno));
    written += chunk.size();
    if (bar_) std::fputs(progress_line(written, total, 60).c_str(), stderr);
    return kj::READY_NOW;
  }
  kj::Promise<void> done(DoneContext) override {
    finished = true;
    if (bar_) std::fputs("\n", stderr);
    return kj::READY_NOW;
  }

 private:
  std::FILE* f_;
  bool bar_;
};

int export_pprof(session& s, const global_options& g, const parsed_args& a, const std::string& q,
                 const std::string& path) {
  const std::string cmd = "query";
  bool to_stdout = path == "-";
  std::string tmp = path + ".part";
  std::FILE* f = to_stdout ? stdout : std::fopen(tmp.c_str(), "wb");
  if (!f) throw usage_error{"cannot write " + tmp + ": " + std::strerror(errno), cmd};
  auto sink_own = kj::heap<file_sink>(f, !g.json && !to_stdout && isatty(STDERR_FILENO));
  file_sink& sink = *sink_own;
  auto req = s.query.exportPprofRequest();
  set_selection(req.initSelection(), q, time_arg(a, "--from", "now-1h", cmd), time_arg(a, "--until", "now", cmd));
  req.setMaxNodes(int_arg(a, "--max-nodes", 0, cmd));
  req.setSink(kj::mv(sink_own));
  uint64_t bytes = 0;
  try {
    bytes = req.send().wait(s.ws()).getBytes();
  } catch (...) {
    if (!to_stdout) {
      std::fclose(f);
      std::remove(tmp.c_str());
    }
    throw;
  }
  if (!to_stdout) {
    bool ok = std::fflush(f) == 0 && fsync(fileno(f)) == 0;
    ok = std::fclose(f) == 0 && ok;
    if (!ok || std::rename(tmp.c_str(), path.c_str()) != 0) {
      std::remove(tmp.c_str());
      throw usage_error{"cannot write " + path + ": " + std::strerror(errno), cmd};
    }
  } else {
    std::fflush(stdout);
  }
  if (!sink.finished || sink.written != bytes)
    throw server_error{"export ended after " + std::to_string(sink.written) + " of " + std::to_string(bytes) + " bytes"};
  if (g.json) std::printf("{\"file\":%s,\"bytes\":%llu}\n", json_string(path).c_str(), (unsigned long long)bytes);
  else if (!to_stdout) std::printf("wrote %s (%s, gzipped pprof)\n", path.c_str(), human_bytes(static_cast<double>(bytes)).c_str());
  return exit_ok;
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  global_options g;
  if (const char* e = std::getenv("HEARTH_SERVER"); e && *e) g.server = e;
  else g.server = "127.0.0.1:4041";
  if (const char* e = std::getenv("HEARTH_TOKEN"); e && *e) g.token = e;
  // Global options may come anywhere; what is left is the command and its arguments.
  std::vector<std::string> rest;
  std::string command;
  try {
    for (size_t i = 0; i < args.size(); ++i) {
      const std::string& a = args[i];
      auto take = [&](const std::string& name, std::string& out) {
        if (a == name) {
          if (i + 1 >= args.size()) throw usage_error{name + " needs a value", command};
          out = args[++i];
          return true;
        }
        if (a.rfind(name + "=", 0) == 0) {
          out = a.substr(name.size() + 1);
          return true;
        }
        return false;
      };
      if (take("--server", g.server) || take("--token", g.token)) continue;
      if (take("--tenant", g.tenant)) {
        g.tenant_given = true;
        continue;
      }
      if (a == "--json") {
        g.json = true;
        continue;
      }
      if (a == "--help" || a == "-h") {
        g.help = true;
        continue;
      }
      if (a == "--version") {
        std::puts("hearthctl 0.1.0");
        return exit_ok;
      }
      if (command.empty() && !a.empty() && a[0] != '-') {
        command = a;
        continue;
      }
      rest.push_back(a);
    }
    if (command == "help") {
      command = rest.empty() ? "" : rest.front();
      g.help = true;
      rest.clear();
    }
    if (g.help || command.empty()) {
      if (command.empty()) {
        std::fputs(main_help, g.help ? stdout : stderr);
        return g.help ? exit_ok : exit_usage;
      }
      auto it = command_help.find(command);
      if (it == command_help.end()) throw usage_error{"unknown command '" + command + "'", ""};
      std::fputs(it->second.c_str(), stdout);
      return exit_ok;
    }
    using handler = std::function<int(session&, const global_options&, const parsed_args&)>;
    struct spec {
      std::set<std::string> values, flags;
      handler run;
    };
    const std::map<std::string, spec> commands = {
        {"status", {{}, {}, cmd_status}},
        {"cluster", {{}, {}, cmd_cluster}},
        {"config", {{}, {}, cmd_config}},
        {"tenants", {{}, {}, cmd_tenants}},
        {"compact", {{}, {}, cmd_compact}},
        {"retention", {{}, {}, cmd_retention}},
        {"blocks", {{}, {}, cmd_blocks}},
        {"upload",
         {{"--label", "--service", "--format", "--type", "--display-name", "--from", "--until", "--sample-rate",
           "--spy-name"},
          {},
          cmd_upload}},
        {"query",
         {{"--from", "--until", "--right-from", "--right-until", "--max-nodes", "--max-depth", "--min-percent",
           "--width", "--limit", "--by", "--step", "--group-by", "--match", "--output"},
          {"--avg"},
          cmd_query}},
    };
    auto it = commands.find(command);
    if (it == commands.end()) throw usage_error{"unknown command '" + command + "'", ""};
    auto parsed = parse(rest, it->second.values, it->second.flags, command);
    // A bad argument is reported before any connection is made where it can be: the handlers
    // validate first and call the server after.
    try {
      session s(g);
      return it->second.run(s, g, parsed);
    } catch (const kj::Exception& e) {
      if (e.getType() == kj::Exception::Type::DISCONNECTED) {
        std::fprintf(stderr, "hearthctl: cannot reach hearth at %s (or the connection was lost): %s\n",
                     g.server.c_str(), remote_message(e).c_str());
        return exit_unreachable;
      }
      std::fprintf(stderr, "hearthctl: server error: %s\n", remote_message(e).c_str());
      return exit_server;
    }
  } catch (const usage_error& e) {
    std::fprintf(stderr, "hearthctl: %s\n", e.message.c_str());
    std::fprintf(stderr, "Run 'hearthctl %s--help' for usage.\n", e.command.empty() ? "" : (e.command + " ").c_str());
    return exit_usage;
  } catch (const server_error& e) {
    std::fprintf(stderr, "hearthctl: server error: %s\n", e.message.c_str());
    return exit_server;
  }
}
