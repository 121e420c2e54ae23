#include "cluster/config.hpp"

#include <algorithm>
#include <set>

#include <charconv>
#include <fstream>
#include <functional>
#include <sstream>
#include <toml++/toml.h>
#include <vector>

#include "format/tenant.hpp"

namespace hearth {
namespace {

// A key's parser turns a TOML node into the field, or says what is wrong with the value.
using setter = std::function<std::string(const toml::node&, config&)>;
using getter = std::function<std::string(const config&)>;

struct key_def {
  std::string_view section;
  std::string_view name;
  std::string_view help;
  setter set;
  getter get;
};

std::string quote(std::string_view s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  return out + "\"";
}

// Sizes: an integer (bytes) or a string with a unit: "512KiB", "16MiB", "1GiB", "100MB".
std::string parse_size(const toml::node& n, uint64_t& out, uint64_t min, uint64_t max) {
  uint64_t v = 0;
  if (auto i = n.value<int64_t>()) {
    if (*i < 0) return "must not be negative";
    v = static_cast<uint64_t>(*i);
  } else if (auto s = n.value<std::string>()) {
    std::string_view sv = *s;
    uint64_t num = 0;
    auto [p, ec] = std::from_chars(sv.data(), sv.data() + sv.size(), num);
    if (ec != std::errc() || p == sv.data()) return "expected a size such as 16MiB, got " + quote(sv);
    std::string_view unit(p, sv.data() + sv.size() - p);
    while (!unit.empty() && unit.front() == ' ') unit.remove_prefix(1);
    uint64_t mul = 0;
    if (unit.empty() || unit == "B") mul = 1;
    else if (unit == "KiB") mul = 1ull << 10;
    else if (unit == "MiB") mul = 1ull << 20;
    else if (unit == "GiB") mul = 1ull << 30;
    else if (unit == "KB") mul = 1000;
    else if (unit == "MB") mul = 1000 * 1000;
    else if (unit == "GB") mul = 1000ull * 1000 * 1000;
    else return "unknown size unit " + quote(unit) + " (use B, KiB, MiB, GiB, KB, MB, GB)";
    if (num > UINT64_MAX / mul) return "size overflows";
    v = num * mul;
  } else {
    return "expected a size (integer bytes or a string such as \"16MiB\")";
  }
  if (v < min || v > max)
    return "must be between " + std::to_string(min) + " and " + std::to_string(max) + " bytes";
  out = v;
  return {};
}

// Durations: an integer (seconds) or a string: "15s", "5m", "2h", "7d", "1h30m".
std::string parse_duration(const toml::node& n, uint64_t& out, uint64_t min, uint64_t max) {
  uint64_t v = 0;
  if (auto i = n.value<int64_t>()) {
    if (*i < 0) return "must not be negative";
    v = static_cast<uint64_t>(*i);
  } else if (auto s = n.value<std::string>()) {
    std::string_view sv = *s;
    if (sv.empty()) return "empty duration";
    while (!sv.empty()) {
      uint64_t num = 0;
      auto [p, ec] = std::from_chars(sv.data(), sv.data() + sv.size(), num);
      if (ec != std::errc() || p == sv.data() || p == sv.data() + sv.size())
        return "expected a duration such as \"30s\", \"5m\", \"24h\" or \"7d\", got " + quote(*s);
      uint64_t mul = 0;
      switch (*p) {
        case 's': mul = 1; break;
        case 'm': mul = 60; break;
        case 'h': mul = 3600; break;
        case 'd': mul = 86400; break;
        case 'w': mul = 7 * 86400; break;
        default: return "unknown duration unit '" + std::string(1, *p) + "' in " + quote(*s);
      }
      v += num * mul;
      sv.remove_prefix(p - sv.data() + 1);
    }
  } else {
    return "expected a duration (integer seconds or a string such as \"5m\")";
  }
  if (v < min || v > max)
    return "must be between " + std::to_string(min) + "s and " + std::to_string(max) + "s";
  out = v;
  return {};
}

template <class Int>
std::string parse_int(const toml::node& n, Int& out, int64_t min, int64_t max) {
  auto i = n.value<int64_t>();
  if (!i || !n.is_integer()) return "expected an integer";
  if (*i < min || *i > max)
    return "must be between " + std::to_string(min) + " and " + std::to_string(max);
  out = static_cast<Int>(*i);
  return {};
}

std::string parse_bool(const toml::node& n, bool& out) {
  auto b = n.value<bool>();
  if (!b || !n.is_boolean()) return "expected true or false";
  out = *b;
  return {};
}

std::string parse_choice(const toml::node& n, std::string& out,
                         std::initializer_list<std::string_view> choices) {
  auto s = n.value<std::string>();
  if (!s || !n.is_string()) return "expected a string";
  std::string all;
  for (auto c : choices) {
    if (*s == c) {
      out = *s;
      return {};
    }
    all += (all.empty() ? "" : ", ") + std::string(c);
  }
  return "must be one of " + all + ", got " + quote(*s);
}

std::string fmt_size(uint64_t v) {
  if (v && v % (1ull << 30) == 0) return quote(std::to_string(v >> 30) + "GiB");
  if (v && v % (1ull << 20) == 0) return quote(std::to_string(v >> 20) + "MiB");
  if (v && v % (1ull << 10) == 0) return quote(std::to_string(v >> 10) + "KiB");
  return std::to_string(v);
}

std::string fmt_duration(uint64_t s) {
  if (s == 0) return quote("0s");
  if (s % 86400 == 0) return quote(std::to_string(s / 86400) + "d");
  if (s && s % 3600 == 0) return quote(std::to_string(s / 3600) + "h");
  if (s && s % 60 == 0) return quote(std::to_string(s / 60) + "m");
  return quote(std::to_string(s) + "s");
}

// The keys of tenant_limits: in [limits] (every tenant's default) and in limits.per_tenant.
struct tenant_key {
  std::string_view name;
  std::string_view help;
  bool is_size;  ///< a byte size ("16MiB") rather than a count
  uint64_t tenant_limits::*field;
};
const std::vector<tenant_key>& tenant_keys() {
  static const std::vector<tenant_key> k = {
      {"ingestion_rate_bytes", "request bytes per second per tenant, as received (0: unlimited); over it: 429",
       true, &tenant_limits::ingestion_rate_bytes},
      {"ingestion_burst_bytes", "bytes a tenant may send at once above its rate (token bucket size)", true,
       &tenant_limits::ingestion_burst_bytes},
      {"ingestion_rate_profiles", "profiles per second per tenant (0: unlimited); over it: 429", false,
       &tenant_limits::ingestion_rate_profiles},
      {"ingestion_burst_profiles", "profiles a tenant may send at once above its rate", false,
       &tenant_limits::ingestion_burst_profiles},
      {"max_series_per_tenant",
       "active series (in open heads) per tenant (0: unlimited); a request adding more: 429", false,
       &tenant_limits::max_series},
  };
  return k;
}

std::string parse_tenant_value(const tenant_key& k, const toml::node& n, uint64_t& out) {
  if (k.is_size) return parse_size(n, out, 0, 1ull << 40);
  return parse_int(n, out, 0, int64_t{1} << 40);
}

std::string fmt_tenant_value(const tenant_key& k, uint64_t v) {
  return k.is_size ? fmt_size(v) : std::to_string(v);
}

std::string quote_list_redacted(const std::vector<std::string>& v) {
  std::string out = "[";
  for (size_t i = 0; i < v.size(); ++i) out += (i ? ", " : "") + quote("<redacted>");
  return out + "]";
}

std::string parse_string_list(const toml::node& n, std::vector<std::string>& out, bool need_colon) {
  const toml::array* a = n.as_array();
  if (!a) return "expected an array of strings";
  std::vector<std::string> v;
  for (const auto& e : *a) {
    auto s = e.value<std::string>();
    if (!s || !e.is_string() || s->empty()) return "expected an array of non-empty strings";
    if (need_colon && s->find(':') == std::string::npos) return "expected \"user:password\" strings";
    v.push_back(*s);
  }
  out = std::move(v);
  return {};
}

bool valid_label_name(std::string_view n) {
  if (n.empty()) return false;
  for (size_t i = 0; i < n.size(); ++i) {
    char c = n[i];
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || (i > 0 && c >= '0' && c <= '9');
    if (!ok) return false;
  }
  return true;
}

// One [[scrape]] table -> a job, or the problems found (prefixed "scrape[i].").
void parse_scrape_job(const toml::table& t, size_t index, config& c, std::vector<std::string>& problems) {
  config::scrape_job j;
  const std::string at = "scrape[" + std::to_string(index) + "].";
  auto fail = [&](const std::string& key, const std::string& why) { problems.push_back(at + key + ": " + why); };
  auto string_of = [&](const toml::node& n, const std::string& key, std::string& out) {
    auto s = n.value<std::string>();
    if (!s || !n.is_string() || s->empty()) return fail(key, "expected a non-empty string");
    out = *s;
  };
  for (auto& [k, n] : t) {
    std::string key(k.str());
    if (key == "job") {
      string_of(n, key, j.job);
    } else if (key == "service_name") {
      string_of(n, key, j.service_name);
    } else if (key == "targets") {
      if (auto why = parse_string_list(n, j.targets, false); !why.empty()) fail(key, why);
      for (const auto& target : j.targets)
        if (auto a = parse_listen_address(target); !a || a->second == 0)
          fail(key, "expected \"host:port\" with a port, got " + quote(target));
    } else if (key == "interval") {
      if (auto why = parse_duration(n, j.interval_s, 1, 86400); !why.empty()) fail(key, why);
    } else if (key == "timeout") {
      if (auto why = parse_duration(n, j.timeout_s, 1, 86400); !why.empty()) fail(key, why);
    } else if (key == "cpu_seconds") {
      if (auto why = parse_int(n, j.cpu_seconds, 1, 3600); !why.empty()) fail(key, why);
    } else if (key == "profiles") {
      if (auto why = parse_string_list(n, j.profiles, false); !why.empty()) fail(key, why);
      std::set<std::string> seen;
      for (const auto& p : j.profiles) {
        static const std::set<std::string> known = {"cpu", "heap", "allocs", "goroutine", "mutex", "block"};
        if (!known.count(p)) fail(key, "unknown profile " + quote(p) + " (cpu, heap, allocs, goroutine, mutex, block)");
        if (!seen.insert(p).second) fail(key, "profile " + quote(p) + " listed twice");
      }
    } else if (key == "path_prefix") {
      string_of(n, key, j.path_prefix);
      if (!j.path_prefix.empty() && j.path_prefix.front() != '/') fail(key, "must start with /");
      while (j.path_prefix.size() > 1 && j.path_prefix.back() == '/') j.path_prefix.pop_back();
    } else if (key == "tenant") {
      string_of(n, key, j.tenant);
      if (!valid_tenant_id(j.tenant)) fail(key, "not a valid tenant id: " + quote(j.tenant));
    } else if (key == "labels") {
      const toml::table* lt = n.as_table();
      if (!lt) {
        fail(key, "expected a table of name = \"value\"");
        continue;
      }
      for (auto& [ln, lv] : *lt) {
        std::string name(ln.str());
        auto v = lv.value<std::string>();
        if (!valid_label_name(name) || name.starts_with("__"))
          fail(key, "bad label name " + quote(name));
        else if (name == "job" || name == "instance" || name == "service_name")
          fail(key, "label " + quote(name) + " is set by the scraper (use job/service_name keys)");
        else if (!v || !lv.is_string())
          fail(key, name + ": expected a string");
        else
          j.labels.emplace_back(name, *v);
      }
      std::sort(j.labels.begin(), j.labels.end());
    } else {
      problems.push_back("unknown key " + at + key);
    }
  }
  if (j.job.empty()) fail("job", "required");
  if (j.targets.empty()) fail("targets", "required (at least one \"host:port\")");
  if (j.profiles.empty()) fail("profiles", "must name at least one profile");
  if (j.effective_cpu_seconds() >= j.interval_s && std::count(j.profiles.begin(), j.profiles.end(), "cpu"))
    fail("cpu_seconds", "must be shorter than interval (" + std::to_string(j.interval_s) + "s)");
  if (j.effective_timeout_s() <= j.effective_cpu_seconds())
    fail("timeout", "must be longer than cpu_seconds");
  c.scrape.push_back(std::move(j));
}

// Roles a node may have ([cluster] roles and peers' roles).
std::string parse_roles(const toml::node& n, std::vector<std::string>& out) {
  std::vector<std::string> v;
  if (auto why = parse_string_list(n, v, false); !why.empty()) return why;
  if (v.empty()) return "must name at least one role";
  auto known = config::cluster_section::all_roles();
  std::set<std::string> seen;
  for (const auto& r : v) {
    if (std::find(known.begin(), known.end(), r) == known.end())
      return "unknown role " + quote(r) + " (distributor, ingester, querier, compactor, store)";
    if (!seen.insert(r).second) return "role " + quote(r) + " listed twice";
  }
  out = std::move(v);
  return {};
}

// A CAF remoting address: "HOST:PORT" with a port.
std::string parse_node_address(const toml::node& n, std::string& out) {
  auto s = n.value<std::string>();
  if (!s || !n.is_string()) return "expected a string \"HOST:PORT\"";
  auto a = parse_listen_address(*s);
  if (!a) return a.err().message;
  if (a->second == 0) return "needs a port (peers must know it), got " + quote(*s);
  out = *s;
  return {};
}

// The [cluster] table -> c.cluster, or the problems found (prefixed "cluster.").
void parse_cluster_section(const toml::table& t, config& c, std::vector<std::string>& problems) {
  auto& cl = c.cluster;
  cl.enabled = true;
  auto fail = [&](const std::string& key, const std::string& why) {
    problems.push_back("cluster." + key + ": " + why);
  };
  bool quorum_set = false;
  for (auto& [k, n] : t) {
    std::string key(k.str());
    std::string why;
    if (key == "node") {
      auto s = n.value<std::string>();
      if (!s || !n.is_string() || s->empty()) why = "expected a non-empty string";
      else if (!valid_tenant_id(*s)) why = "not a valid node name (letters, digits, - _ .): " + quote(*s);
      else cl.node = *s;
    } else if (key == "roles") {
      why = parse_roles(n, cl.roles);
    } else if (key == "listen") {
      why = parse_node_address(n, cl.listen);
    } else if (key == "replication_factor") {
      why = parse_int(n, cl.replication_factor, 1, 16);
    } else if (key == "write_quorum") {
      why = parse_int(n, cl.write_quorum, 1, 16);
      quorum_set = true;
    } else if (key == "tokens") {
      why = parse_int(n, cl.tokens, 1, 4096);
    } else if (key == "heartbeat_interval") {
      why = parse_duration(n, cl.heartbeat_interval_s, 1, 3600);
    } else if (key == "suspect_after") {
      why = parse_duration(n, cl.suspect_after_s, 1, 86400);
    } else if (key == "down_after") {
      why = parse_duration(n, cl.down_after_s, 1, 86400);
    } else if (key == "rpc_timeout") {
      why = parse_duration(n, cl.rpc_timeout_s, 1, 3600);
    } else if (key == "hint_max_bytes") {
      why = parse_size(n, cl.hint_max_bytes, 0, 1ull << 40);
    } else if (key == "shared_path") {
      auto s = n.value<std::string>();
      if (!s || !n.is_string() || s->empty()) why = "expected a non-empty string (a directory every node reaches)";
      else cl.shared_path = *s;
    } else if (key == "peers") {
      const toml::array* a = n.as_array();
      if (!a) {
        why = "expected an array of { name = \"...\", address = \"HOST:PORT\" } tables";
      } else {
        cl.peers.clear();
        for (size_t i = 0; i < a->size(); ++i) {
          std::string at = "peers[" + std::to_string(i) + "]";
          const toml::table* pt = a->get(i)->as_table();
          if (!pt) {
            fail(at, "expected a table { name = \"...\", address = \"HOST:PORT\" }");
            continue;
          }
          config::cluster_peer p;
          p.roles = config::cluster_section::all_roles();
          for (auto& [pk, pn] : *pt) {
            std::string pkey(pk.str());
            std::string pwhy;
            if (pkey == "name") {
              auto s = pn.value<std::string>();
              if (!s || !pn.is_string() || s->empty()) pwhy = "expected a non-empty string";
              else p.name = *s;
            } else if (pkey == "address") {
              pwhy = parse_node_address(pn, p.address);
            } else if (pkey == "roles") {
              pwhy = parse_roles(pn, p.roles);
            } else {
              pwhy = "unknown key (name, address, roles)";
            }
            if (!pwhy.empty()) fail(at + "." + pkey, pwhy);
          }
          if (p.name.empty()) fail(at + ".name", "required");
          if (p.address.empty())
            fail(at + ".address", "required: peer " + quote(p.name) + " has no address");
          cl.peers.push_back(std::move(p));
        }
      }
    } else {
      problems.push_back("unknown key cluster." + key);
      continue;
    }
    if (!why.empty()) fail(key, why);
  }
  if (cl.node.empty()) fail("node", "required (this node's name)");
  if (cl.listen.empty()) fail("listen", "required (\"127.0.0.1:PORT\" for CAF remoting)");
  std::set<std::string> names{cl.node}, addresses{cl.listen};
  uint32_t ingesters = cl.has_role("ingester") ? 1 : 0;
  for (size_t i = 0; i < cl.peers.size(); ++i) {
    const auto& p = cl.peers[i];
    std::string at = "peers[" + std::to_string(i) + "]";
    if (!p.name.empty() && p.name == cl.node)
      fail(at + ".name", "lists this node itself (" + quote(p.name) + "); list only the other nodes");
    else if (!p.name.empty() && !names.insert(p.name).second)
      fail(at + ".name", "duplicate node name " + quote(p.name));
    if (!p.address.empty() && !addresses.insert(p.address).second)
      fail(at + ".address", "address " + quote(p.address) + " is used by two nodes");
    if (std::find(p.roles.begin(), p.roles.end(), "ingester") != p.roles.end()) ++ingesters;
  }
  if (cl.replication_factor > ingesters)
    fail("replication_factor", std::to_string(cl.replication_factor) + " exceeds the " +
                                   std::to_string(ingesters) + " ingester node(s) configured");
  if (quorum_set && cl.write_quorum > cl.replication_factor)
    fail("write_quorum", "must not exceed replication_factor (" +
                             std::to_string(cl.replication_factor) + ")");
  if (cl.suspect_after_s <= cl.heartbeat_interval_s)
    fail("suspect_after", "must be longer than heartbeat_interval");
  if (cl.down_after_s < cl.suspect_after_s)
    fail("down_after", "must not be shorter than suspect_after");
}

std::string cluster_to_toml(const config::cluster_section& cl) {
  auto list = [](const std::vector<std::string>& v) {
    std::string out;
    for (const auto& x : v) out += (out.empty() ? "" : ", ") + quote(x);
    return "[" + out + "]";
  };
  std::string out = "\n# multi-node cluster (docs/design/cluster.md)\n[cluster]\n";
  out += "node = " + quote(cl.node) + "\n";
  out += "roles = " + list(cl.roles) + "\n";
  out += "listen = " + quote(cl.listen) + "\n";
  out += "replication_factor = " + std::to_string(cl.replication_factor) + "\n";
  out += "# replicas that must acknowledge a write (default replication_factor / 2 + 1)\n";
  out += "write_quorum = " + std::to_string(cl.effective_write_quorum()) + "\n";
  out += "tokens = " + std::to_string(cl.tokens) + "\n";
  out += "heartbeat_interval = " + fmt_duration(cl.heartbeat_interval_s) + "\n";
  out += "suspect_after = " + fmt_duration(cl.suspect_after_s) + "\n";
  out += "down_after = " + fmt_duration(cl.down_after_s) + "\n";
  out += "rpc_timeout = " + fmt_duration(cl.rpc_timeout_s) + "\n";
  out += "hint_max_bytes = " + fmt_size(cl.hint_max_bytes) + "\n";
  if (!cl.shared_path.empty())
    out += "# storage every node reaches; this node's data directory is <shared_path>/<node>\n"
           "shared_path = " + quote(cl.shared_path) + "\n";
  out += "peers = [";
  for (size_t i = 0; i < cl.peers.size(); ++i)
    out += std::string(i ? ",\n  " : "\n  ") + "{ name = " + quote(cl.peers[i].name) +
           ", address = " + quote(cl.peers[i].address) + ", roles = " + list(cl.peers[i].roles) +
           " }";
  out += cl.peers.empty() ? "]\n" : "\n]\n";
  return out;
}

// Fills the [limits] entries of tenant_limits (declared with a name only) from tenant_keys().
std::vector<key_def> with_tenant_keys(std::vector<key_def> k) {
  for (auto& d : k) {
    if (d.set) continue;
    for (const auto& t : tenant_keys()) {
      if (t.name != d.name) continue;
      d.help = t.help;
      d.set = [t](const toml::node& n, config& c) { return parse_tenant_value(t, n, c.limits.tenant.*t.field); };
      d.get = [t](const config& c) { return fmt_tenant_value(t, c.limits.tenant.*t.field); };
    }
  }
  return k;
}

// The one table of every key. Order = order of --print-config.
const std::vector<key_def>& keys() {
  static const std::vector<key_def> k = with_tenant_keys({
      {"server", "http_listen", "HOST:PORT of the HTTP and Connect API",
       [](const toml::node& n, config& c) -> std::string {
         auto s = n.value<std::string>();
         if (!s || !n.is_string()) return "expected a string \"HOST:PORT\"";
         auto a = parse_listen_address(*s);
         if (!a) return a.err().message;
         c.server.http_listen = *s;
         return {};
       },
       [](const config& c) { return quote(c.server.http_listen); }},
      {"server", "rpc_listen", "HOST:PORT of the Cap'n Proto RPC API (hearthctl); \"\" disables it",
       [](const toml::node& n, config& c) -> std::string {
         auto s = n.value<std::string>();
         if (!s || !n.is_string()) return "expected a string \"HOST:PORT\" or \"\"";
         if (!s->empty())
           if (auto a = parse_listen_address(*s); !a) return a.err().message;
         c.server.rpc_listen = *s;
         return {};
       },
       [](const config& c) { return quote(c.server.rpc_listen); }},
      {"server", "max_body_bytes", "largest accepted request body, before decompression",
       [](const toml::node& n, config& c) {
         return parse_size(n, c.server.max_body_bytes, 1024, 1ull << 32);
       },
       [](const config& c) { return fmt_size(c.server.max_body_bytes); }},
      {"server", "multitenancy",
       "require X-Scope-OrgID on every request (401 without); off: all data is tenant anonymous",
       [](const toml::node& n, config& c) { return parse_bool(n, c.server.multitenancy); },
       [](const config& c) { return std::string(c.server.multitenancy ? "true" : "false"); }},
      {"storage", "path", "data directory (WAL, segments)",
       [](const toml::node& n, config& c) -> std::string {
         auto s = n.value<std::string>();
         if (!s || !n.is_string() || s->empty()) return "expected a non-empty string";
         c.storage.path = *s;
         return {};
       },
       [](const config& c) { return quote(c.storage.path); }},
      {"storage", "io_backend", "auto (io_uring when the kernel allows it), io_uring or posix",
       [](const toml::node& n, config& c) {
         return parse_choice(n, c.storage.io_backend, {"auto", "io_uring", "posix"});
       },
       [](const config& c) { return quote(c.storage.io_backend); }},
      {"storage", "head_max_bytes", "seal the in-memory head into a segment above this size",
       [](const toml::node& n, config& c) {
         return parse_size(n, c.storage.head_max_bytes, 1 << 20, 64ull << 30);
       },
       [](const config& c) { return fmt_size(c.storage.head_max_bytes); }},
      {"storage", "head_max_age", "seal the head when it has held data this long",
       [](const toml::node& n, config& c) {
         return parse_duration(n, c.storage.head_max_age_s, 1, 7 * 86400);
       },
       [](const config& c) { return fmt_duration(c.storage.head_max_age_s); }},
      {"storage", "wal_max_bytes", "answer 429 when unsealed WAL of a partition exceeds this",
       [](const toml::node& n, config& c) {
         return parse_size(n, c.storage.wal_max_bytes, 1 << 20, 1ull << 40);
       },
       [](const config& c) { return fmt_size(c.storage.wal_max_bytes); }},
      {"storage", "segment_codec", "section compression of new segments: none, lz4 or zstd",
       [](const toml::node& n, config& c) {
         return parse_choice(n, c.storage.segment_codec, {"none", "lz4", "zstd"});
       },
       [](const config& c) { return quote(c.storage.segment_codec); }},
      {"storage", "shards", "partitions per tenant; series are spread by label hash",
       [](const toml::node& n, config& c) { return parse_int(n, c.storage.shards, 1, 256); },
       [](const config& c) { return std::to_string(c.storage.shards); }},
      {"storage", "block_cache_bytes",
       "decoded sealed blocks kept in memory (all tenants together); the rest are re-read from disk",
       [](const toml::node& n, config& c) {
         return parse_size(n, c.storage.block_cache_bytes, 1 << 20, 1ull << 40);
       },
       [](const config& c) { return fmt_size(c.storage.block_cache_bytes); }},
      {"limits", "max_profile_bytes", "largest profile after decompression",
       [](const toml::node& n, config& c) {
         return parse_size(n, c.limits.max_profile_bytes, 1024, 1ull << 32);
       },
       [](const config& c) { return fmt_size(c.limits.max_profile_bytes); }},
      {"limits", "max_labels_per_series", "labels a series may carry (internal __ labels excluded)",
       [](const toml::node& n, config& c) {
         return parse_int(n, c.limits.max_labels_per_series, 1, 1000);
       },
       [](const config& c) { return std::to_string(c.limits.max_labels_per_series); }},
      {"limits", "max_label_name_length", "longest label name",
       [](const toml::node& n, config& c) {
         return parse_int(n, c.limits.max_label_name_length, 1, 65536);
       },
       [](const config& c) { return std::to_string(c.limits.max_label_name_length); }},
      {"limits", "max_label_value_length", "longest label value",
       [](const toml::node& n, config& c) {
         return parse_int(n, c.limits.max_label_value_length, 1, 1 << 20);
       },
       [](const config& c) { return std::to_string(c.limits.max_label_value_length); }},
      {"limits", "max_stack_depth",
       "pprof, Push and OTLP: most frames in a sample's stack (see stack_depth_policy)",
       [](const toml::node& n, config& c) {
         return parse_int(n, c.limits.max_stack_depth, 1, 100000);
       },
       [](const config& c) { return std::to_string(c.limits.max_stack_depth); }},
      {"limits", "stack_depth_policy",
       "a deeper stack: reject (the whole request, 400) or truncate (keep the root side, as Pyroscope)",
       [](const toml::node& n, config& c) {
         return parse_choice(n, c.limits.stack_depth_policy, {"reject", "truncate"});
       },
       [](const config& c) { return quote(c.limits.stack_depth_policy); }},
      {"limits", "max_text_line_bytes", "/ingest folded and lines bodies: a longer line is rejected",
       [](const toml::node& n, config& c) {
         return parse_size(n, c.limits.max_text_line_bytes, 64, 1ull << 30);
       },
       [](const config& c) { return fmt_size(c.limits.max_text_line_bytes); }},
      {"limits", "max_text_stack_depth", "/ingest folded and lines bodies: a line with more frames is rejected",
       [](const toml::node& n, config& c) {
         return parse_int(n, c.limits.max_text_stack_depth, 1, 1000000);
       },
       [](const config& c) { return std::to_string(c.limits.max_text_stack_depth); }},
      {"limits", "max_jfr_stack_depth", "/ingest jfr: a stack trace with more frames is rejected",
       [](const toml::node& n, config& c) {
         return parse_int(n, c.limits.max_jfr_stack_depth, 1, 1000000);
       },
       [](const config& c) { return std::to_string(c.limits.max_jfr_stack_depth); }},
      {"limits", "max_otlp_profiles",
       "OTLP profiles ingest: a request converting to more profiles (one per OTLP profile and "
       "service) is rejected (413)",
       [](const toml::node& n, config& c) {
         return parse_int(n, c.limits.max_otlp_profiles, 1, 10000000);
       },
       [](const config& c) { return std::to_string(c.limits.max_otlp_profiles); }},
      {"limits", "ingestion_rate_bytes", "", nullptr, nullptr},
      {"limits", "ingestion_burst_bytes", "", nullptr, nullptr},
      {"limits", "ingestion_rate_profiles", "", nullptr, nullptr},
      {"limits", "ingestion_burst_profiles", "", nullptr, nullptr},
      {"limits", "max_series_per_tenant", "", nullptr, nullptr},
      {"limits", "per_tenant",
       "per-tenant overrides of the five keys above, e.g. { team-a = { ingestion_rate_bytes = \"8MiB\" } }",
       [](const toml::node& n, config& c) -> std::string {
         const toml::table* t = n.as_table();
         if (!t) return "expected a table of tenant = { key = value, ... }";
         c.limits.per_tenant.clear();
         for (auto& [tenant, v] : *t) {
           const toml::table* kv = v.as_table();
           std::string tn(tenant.str());
           if (!kv) return tn + ": expected a table of limits";
           auto& dst = c.limits.per_tenant[tn];
           for (auto& [key, val] : *kv) {
             const tenant_key* def = nullptr;
             for (const auto& k : tenant_keys())
               if (k.name == key.str()) def = &k;
             if (!def) return tn + ": unknown key " + std::string(key.str());
             uint64_t x = 0;
             if (auto why = parse_tenant_value(*def, val, x); !why.empty())
               return tn + "." + std::string(key.str()) + ": " + why;
             dst[std::string(def->name)] = x;
           }
         }
         return {};
       },
       [](const config& c) {
         std::string out = "{";
         for (const auto& [tenant, kv] : c.limits.per_tenant) {
           out += (out.size() > 1 ? ", " : " ") + quote(tenant) + " = {";
           bool first = true;
           for (const auto& k : tenant_keys()) {
             auto it = kv.find(std::string(k.name));
             if (it == kv.end()) continue;
             out += std::string(first ? " " : ", ") + std::string(k.name) + " = " + fmt_tenant_value(k, it->second);
             first = false;
           }
           out += first ? "}" : " }";
         }
         return out + (out.size() > 1 ? " }" : "}");
       }},
      {"auth", "bearer_tokens",
       "accepted `Authorization: Bearer` tokens; with these or basic_users set, every API but /ready needs one",
       [](const toml::node& n, config& c) { return parse_string_list(n, c.auth.bearer_tokens, false); },
       [](const config& c) { return quote_list_redacted(c.auth.bearer_tokens); }},
      {"auth", "basic_users", "accepted HTTP basic credentials as \"user:password\" strings",
       [](const toml::node& n, config& c) { return parse_string_list(n, c.auth.basic_users, true); },
       [](const config& c) { return quote_list_redacted(c.auth.basic_users); }},
      {"query", "max_nodes_default", "flame-graph nodes when a query does not say",
       [](const toml::node& n, config& c) {
         return parse_int(n, c.query.max_nodes_default, 1, 1 << 24);
       },
       [](const config& c) { return std::to_string(c.query.max_nodes_default); }},
      {"query", "max_nodes_max", "largest max_nodes a query may ask for",
       [](const toml::node& n, config& c) {
         return parse_int(n, c.query.max_nodes_max, 1, 1 << 24);
       },
       [](const config& c) { return std::to_string(c.query.max_nodes_max); }},
      {"query", "max_range", "longest accepted query time range",
       [](const toml::node& n, config& c) {
         return parse_duration(n, c.query.max_range_s, 60, 3650ull * 86400);
       },
       [](const config& c) { return fmt_duration(c.query.max_range_s); }},
      {"query", "timeout", "a query taking longer fails with deadline_exceeded",
       [](const toml::node& n, config& c) {
         return parse_duration(n, c.query.timeout_s, 1, 3600);
       },
       [](const config& c) { return fmt_duration(c.query.timeout_s); }},
      {"query", "partial_cache_bytes",
       "flame-graph partials of whole sealed blocks kept for repeated queries (0 disables)",
       [](const toml::node& n, config& c) {
         return parse_size(n, c.query.partial_cache_bytes, 0, 1ull << 40);
       },
       [](const config& c) { return fmt_size(c.query.partial_cache_bytes); }},
      {"compaction", "enabled", "merge small segments into larger time-window blocks",
       [](const toml::node& n, config& c) { return parse_bool(n, c.compaction.enabled); },
       [](const config& c) { return std::string(c.compaction.enabled ? "true" : "false"); }},
      {"compaction", "interval", "how often the compactor plans work",
       [](const toml::node& n, config& c) {
         return parse_duration(n, c.compaction.interval_s, 1, 86400);
       },
       [](const config& c) { return fmt_duration(c.compaction.interval_s); }},
      {"compaction", "l1_window", "level-0 segments are merged per window of this size",
       [](const toml::node& n, config& c) {
         return parse_duration(n, c.compaction.l1_window_s, 1, 7 * 86400);
       },
       [](const config& c) { return fmt_duration(c.compaction.l1_window_s); }},
      {"compaction", "l2_window", "level-1 blocks are merged per window of this size",
       [](const toml::node& n, config& c) {
         return parse_duration(n, c.compaction.l2_window_s, 1, 31 * 86400);
       },
       [](const config& c) { return fmt_duration(c.compaction.l2_window_s); }},
      {"compaction", "grace", "a window is closed this long after its end",
       [](const toml::node& n, config& c) {
         return parse_duration(n, c.compaction.grace_s, 0, 86400);
       },
       [](const config& c) { return fmt_duration(c.compaction.grace_s); }},
      {"compaction", "l0_max_blocks", "an open window with this many level-0 segments merges early",
       [](const toml::node& n, config& c) {
         return parse_int(n, c.compaction.l0_max_blocks, 2, 1000);
       },
       [](const config& c) { return std::to_string(c.compaction.l0_max_blocks); }},
      {"compaction", "max_output_samples",
       "a merge job reads at most this many stored pairs (~40 bytes each while it runs)",
       [](const toml::node& n, config& c) {
         return parse_int(n, c.compaction.max_output_samples, 1, int64_t{1} << 40);
       },
       [](const config& c) { return std::to_string(c.compaction.max_output_samples); }},
      {"compaction", "l2_max_output_samples",
       "a level-1 -> level-2 merge job reads at most this many stored pairs (one job of 22 M pairs "
       "peaked at 0.45-0.7 GiB)",
       [](const toml::node& n, config& c) {
         return parse_int(n, c.compaction.l2_max_output_samples, 1, int64_t{1} << 40);
       },
       [](const config& c) { return std::to_string(c.compaction.l2_max_output_samples); }},
      {"compaction", "open_l2_windows",
       "merge each closed level-1 window of the current level-2 window (today's hours) into level 2 "
       "as it closes, not only once the whole level-2 window has closed",
       [](const toml::node& n, config& c) { return parse_bool(n, c.compaction.open_l2_windows); },
       [](const config& c) { return std::string(c.compaction.open_l2_windows ? "true" : "false"); }},
      {"compaction", "rollups", "write 1m and 1h pre-aggregated blocks next to level-2 blocks",
       [](const toml::node& n, config& c) { return parse_bool(n, c.compaction.rollups); },
       [](const config& c) { return std::string(c.compaction.rollups ? "true" : "false"); }},
      {"compaction", "l1_zstd_level",
       "zstd level of level-1 blocks (1..19, or -100..-1 for zstd's fast modes)",
       [](const toml::node& n, config& c) {
         std::string e = parse_int(n, c.compaction.l1_zstd_level, -100, 19);
         return e.empty() && c.compaction.l1_zstd_level == 0 ? "0 is not a zstd level" : e;
       },
       [](const config& c) { return std::to_string(c.compaction.l1_zstd_level); }},
      {"compaction", "l2_zstd_level",
       "zstd level of level-2 blocks and their rollups (1..19, or -100..-1)",
       [](const toml::node& n, config& c) {
         std::string e = parse_int(n, c.compaction.l2_zstd_level, -100, 19);
         return e.empty() && c.compaction.l2_zstd_level == 0 ? "0 is not a zstd level" : e;
       },
       [](const config& c) { return std::to_string(c.compaction.l2_zstd_level); }},
      {"compaction", "deletion_delay",
       "files a compaction replaced are deleted this long after the swap, so that a query planned "
       "before it can still read them (keep it above query.timeout; 0s deletes at once)",
       [](const toml::node& n, config& c) {
         return parse_duration(n, c.compaction.deletion_delay_s, 0, 7 * 86400);
       },
       [](const config& c) { return fmt_duration(c.compaction.deletion_delay_s); }},
      {"retention", "period", "drop whole blocks older than this; \"0s\" keeps data forever",
       [](const toml::node& n, config& c) {
         return parse_duration(n, c.retention.period_s, 0, 100ull * 365 * 86400);
       },
       [](const config& c) { return fmt_duration(c.retention.period_s); }},
      {"retention", "per_tenant", "per-tenant periods overriding period, e.g. { team-a = \"7d\" }",
       [](const toml::node& n, config& c) -> std::string {
         const toml::table* t = n.as_table();
         if (!t) return "expected an inline table of tenant = duration";
         c.retention.per_tenant_s.clear();
         for (auto& [k, v] : *t) {
           uint64_t s = 0;
           if (auto why = parse_duration(v, s, 0, 100ull * 365 * 86400); !why.empty())
             return std::string(k.str()) + ": " + why;
           c.retention.per_tenant_s[std::string(k.str())] = s;
         }
         return {};
       },
       [](const config& c) {
         std::string out = "{";
         for (const auto& [k, v] : c.retention.per_tenant_s)
           out += (out.size() > 1 ? ", " : " ") + quote(k) + " = " + fmt_duration(v);
         return out + (out.size() > 1 ? " }" : "}");
       }},
      {"log", "level", "error, warn, info or debug",
       [](const toml::node& n, config& c) {
         return parse_choice(n, c.log.level, {"error", "warn", "info", "debug"});
       },
       [](const config& c) { return quote(c.log.level); }},
  });
  return k;
}

}  // namespace

std::map<std::string, tenant_limits, std::less<>> config::tenant_overrides() const {
  std::map<std::string, tenant_limits, std::less<>> out;
  for (const auto& [tenant, kv] : limits.per_tenant) {
    tenant_limits l = limits.tenant;
    for (const auto& k : tenant_keys())
      if (auto it = kv.find(std::string(k.name)); it != kv.end()) l.*k.field = it->second;
    out.emplace(tenant, l);
  }
  return out;
}

std::string config::to_toml() const {
  std::string out = "# hearth effective configuration\n";
  std::string_view section;
  for (const auto& k : keys()) {
    if (k.section != section) {
      section = k.section;
      out += "\n[" + std::string(section) + "]\n";
    }
    out += "# " + std::string(k.help) + "\n";
    out += std::string(k.name) + " = " + k.get(*this) + "\n";
  }
  for (const auto& j : scrape) {
    out += "\n# pull mode: a job's targets are scraped every interval\n[[scrape]]\n";
    out += "job = " + quote(j.job) + "\n";
    if (!j.service_name.empty()) out += "service_name = " + quote(j.service_name) + "\n";
    std::string list;
    for (const auto& t : j.targets) list += (list.empty() ? "" : ", ") + quote(t);
    out += "targets = [" + list + "]\n";
    out += "interval = " + fmt_duration(j.interval_s) + "\n";
    list.clear();
    for (const auto& p : j.profiles) list += (list.empty() ? "" : ", ") + quote(p);
    out += "profiles = [" + list + "]\n";
    out += "cpu_seconds = " + std::to_string(j.effective_cpu_seconds()) + "\n";
    out += "timeout = " + fmt_duration(j.effective_timeout_s()) + "\n";
    out += "path_prefix = " + quote(j.path_prefix) + "\n";
    out += "tenant = " + quote(j.tenant) + "\n";
    list.clear();
    for (const auto& [k, v] : j.labels) list += (list.empty() ? " " : ", ") + k + " = " + quote(v);
    out += "labels = {" + list + (list.empty() ? "}" : " }") + "\n";
  }
  if (cluster.enabled) out += cluster_to_toml(cluster);
  return out;
}

result<config> parse_config(std::string_view text, std::string_view source) {
  toml::table root;
  try {
    root = toml::parse(text, source);
  } catch (const toml::parse_error& e) {
    std::ostringstream msg;
    msg << source << ":" << e.source().begin.line << ":" << e.source().begin.column << ": "
        << e.description();
    return error{errc::bad_config, msg.str()};
  }
  config c;
  std::vector<std::string> problems;
  for (auto& [sec_name, sec_node] : root) {
    std::string sec(sec_name.str());
    if (sec == "scrape") {
      const toml::array* jobs = sec_node.as_array();
      if (!jobs || !jobs->is_array_of_tables()) {
        problems.push_back("scrape: expected [[scrape]] tables");
        continue;
      }
      for (size_t i = 0; i < jobs->size(); ++i) parse_scrape_job(*jobs->get(i)->as_table(), i, c, problems);
      continue;
    }
    if (sec == "cluster") {
      if (const toml::table* ct = sec_node.as_table()) parse_cluster_section(*ct, c, problems);
      else problems.push_back("cluster: expected a table [cluster]");
      continue;
    }
    const toml::table* tbl = sec_node.as_table();
    bool known_section = false;
    for (const auto& k : keys()) known_section |= k.section == sec;
    if (!known_section) {
      problems.push_back("unknown section [" + sec + "]");
      continue;
    }
    if (!tbl) {
      problems.push_back(sec + ": expected a table [" + sec + "]");
      continue;
    }
    for (auto& [key_name, node] : *tbl) {
      std::string key(key_name.str());
      const key_def* def = nullptr;
      for (const auto& k : keys())
        if (k.section == sec && k.name == key) def = &k;
      if (!def) {
        problems.push_back("unknown key " + sec + "." + key);
        continue;
      }
      if (auto why = def->set(node, c); !why.empty()) problems.push_back(sec + "." + key + ": " + why);
    }
  }
  if (c.cluster.enabled && !c.cluster.shared_path.empty() && !c.cluster.node.empty()) {
    std::string own = c.cluster.shared_path + "/" + c.cluster.node;
    const toml::node* set = root.at_path("storage.path").node();
    if (set != nullptr && c.storage.path != own)
      problems.push_back("storage.path: must be left out (or be " + quote(own) +
                         ") when cluster.shared_path is set: this node's data directory is "
                         "<shared_path>/<node>");
    c.storage.path = own;
  }
  if (c.query.max_nodes_default > c.query.max_nodes_max)
    problems.push_back("query.max_nodes_default: must not exceed query.max_nodes_max");
  if (!problems.empty()) {
    std::string msg(source);
    msg += ": ";
    for (size_t i = 0; i < problems.size(); ++i) msg += (i ? "; " : "") + problems[i];
    return error{errc::bad_config, msg};
  }
  return c;
}

result<config> load_config_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return error{errc::bad_config, "cannot read config file " + path};
  std::ostringstream ss;
  ss << in.rdbuf();
  return parse_config(ss.str(), path);
}

result<std::pair<std::string, uint16_t>> parse_listen_address(std::string_view s) {
  auto colon = s.rfind(':');
  if (colon == std::string_view::npos || colon == 0)
    return error{errc::bad_config, "expected HOST:PORT, got \"" + std::string(s) + "\""};
  std::string host(s.substr(0, colon));
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  std::string_view port_s = s.substr(colon + 1);
  unsigned port = 0;
  auto [p, ec] = std::from_chars(port_s.data(), port_s.data() + port_s.size(), port);
  if (ec != std::errc() || p != port_s.data() + port_s.size() || port > 65535)
    return error{errc::bad_config, "bad port in \"" + std::string(s) + "\""};
  return std::pair{host, static_cast<uint16_t>(port)};
}

}  // namespace hearth
