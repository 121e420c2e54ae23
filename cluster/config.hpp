#pragma once
// The server's configuration: embedded defaults, optionally overridden by a TOML file. Every key
// is declared once in config.cpp (name, default, parser), so `--print-config`, validation of
// unknown keys and the defaults can never drift apart.

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "actors/ingest_limits.hpp"
#include "cluster/auth.hpp"
#include "format/error.hpp"

namespace hearth {

/// Effective configuration of one `hearth` process. A value type.
struct config {
  struct server_section {
    std::string http_listen = "127.0.0.1:4040";  ///< HOST:PORT of the HTTP/Connect gateway
    std::string rpc_listen = "127.0.0.1:4041";   ///< HOST:PORT of the Cap'n Proto RPC API; "" = off
    uint64_t max_body_bytes = 16ull << 20;        ///< request body limit (before decompression)
    uint32_t http_threads = 1;                    ///< kj event-loop threads (1 today)
    bool multitenancy = false;  ///< require X-Scope-OrgID; off: every request is tenant "anonymous"
  } server;
  struct storage_section {
    std::string path = "./data";        ///< data directory
    std::string io_backend = "auto";    ///< auto | io_uring | posix
    /// Seal the head when it is larger. 64 MiB (was 256): a level-1 compaction merges up to
    /// `compaction.l0_max_blocks` sealed heads fully decoded, so this bounds its memory
    /// (docs/bench.md).
    uint64_t head_max_bytes = 64ull << 20;
    uint64_t head_max_age_s = 300;      ///< seal the head when its oldest profile is older
    uint64_t wal_max_bytes = 1ull << 30;      ///< refuse ingest (429) above this much unsealed WAL
    std::string segment_codec = "lz4";  ///< none | lz4 | zstd
    uint32_t shards = 2;                ///< partitions per tenant (series hash)
    uint64_t block_cache_bytes = 1ull << 30;  ///< decoded sealed blocks kept in memory (process-wide)
  } storage;
  struct limits_section {
    uint64_t max_profile_bytes = 64ull << 20;  ///< one profile, after gunzip
    uint32_t max_labels_per_series = 30;
    uint32_t max_label_name_length = 1024;
    uint32_t max_label_value_length = 2048;
    uint32_t max_stack_depth = 1000;
    /// reject (400 naming the limit) | truncate (keep the root side, as Pyroscope) a pprof/OTLP
    /// sample stack deeper than max_stack_depth
    std::string stack_depth_policy = "reject";
    uint64_t max_text_line_bytes = 1 << 20;  ///< /ingest folded/lines: longest line
    uint32_t max_text_stack_depth = 4096;    ///< /ingest folded/lines: most frames per line
    uint32_t max_jfr_stack_depth = 4096;     ///< /ingest jfr: most frames per stack trace
    uint32_t max_otlp_profiles = 10000;      ///< OTLP: profiles (profile x service) per request
    tenant_limits tenant;  ///< rate and series limits of a tenant without an override
    /// tenant -> { key -> value } for the keys of tenant_limits (per_tenant_keys()), over `tenant`
    std::map<std::string, std::map<std::string, uint64_t>> per_tenant;
  } limits;
  struct compaction_section {
    bool enabled = true;
    uint64_t interval_s = 30;          ///< how often the compactor plans
    uint64_t l1_window_s = 3600;       ///< L0 blocks merge per window of this size
    uint64_t l2_window_s = 86400;      ///< L1 blocks merge per window of this size
    uint64_t grace_s = 300;            ///< a window is closed this long after its end
    uint32_t l0_max_blocks = 8;        ///< an open window with this many L0 blocks merges early
    /// A job merges at most this many stored pairs (unless one block holds more): bounds its memory
    uint64_t max_output_samples = uint64_t{8} << 20;
    /// The same for L1 -> L2 jobs (rare, and their blocks are read by every long-range query)
    uint64_t l2_max_output_samples = uint64_t{24} << 20;
    bool rollups = true;               ///< write 1m and 1h rollups next to L2 blocks
    bool open_l2_windows = true;       ///< today's closed hours go to L2 as they close
    int32_t l1_zstd_level = 1;         ///< zstd level of L1 blocks (negative: fast modes)
    int32_t l2_zstd_level = 3;         ///< zstd level of L2 blocks and their rollups
    /// Files a compaction replaced are deleted this long after the swap: a query planned before
    /// it still reads them. Keep it above query.timeout; 0 deletes at once.
    uint64_t deletion_delay_s = 120;
  } compaction;
  struct retention_section {
    uint64_t period_s = 0;  ///< drop blocks older than this; 0 keeps data forever
    std::map<std::string, uint64_t> per_tenant_s;  ///< tenant -> period, overriding period_s
  } retention;
  struct query_section {
    int64_t max_nodes_default = 8192;
    int64_t max_nodes_max = 1048576;
    uint64_t max_range_s = 31 * 24 * 3600;  ///< longest accepted query range
    uint64_t timeout_s = 60;
    /// Flame-graph partials of whole sealed blocks kept for repeated queries; 0 disables.
    uint64_t partial_cache_bytes = 256ull << 20;
  } query;
  auth_config auth;  ///< optional bearer tokens / basic users for every API but /ready
  /// One `[[scrape]]` job of pull mode: every target's net/http/pprof endpoints, every interval.
  struct scrape_job {
    std::string job;                   ///< required; label `job`
    std::string service_name;          ///< label `service_name`; "" = the job name
    std::vector<std::string> targets;  ///< required; "host:port" each
    uint64_t interval_s = 15;
    std::vector<std::string> profiles = {"cpu", "heap", "goroutine", "mutex", "block"};
    uint32_t cpu_seconds = 0;  ///< `seconds=` of the cpu profile; 0 = interval - 1
    uint64_t timeout_s = 0;    ///< per scrape; 0 = interval + 10 s
    std::string path_prefix = "/debug/pprof";
    std::string tenant = "anonymous";
    std::vector<std::pair<std::string, std::string>> labels;  ///< extra labels, sorted by name

    uint32_t effective_cpu_seconds() const {
      return cpu_seconds ? cpu_seconds : static_cast<uint32_t>(interval_s > 1 ? interval_s - 1 : 1);
    }
    uint64_t effective_timeout_s() const { return timeout_s ? timeout_s : interval_s + 10; }
  };
  std::vector<scrape_job> scrape;

  /// `[cluster]`: this node's place in a multi-node cluster (docs/design/cluster.md). Absent
  /// (enabled false): a single node, exactly as before.
  struct cluster_peer {
    std::string name;                ///< the peer's `cluster.node`
    std::string address;             ///< its `cluster.listen` (CAF remoting), "127.0.0.1:7947"
    std::vector<std::string> roles;  ///< its roles (must match what it announces); default all
  };
  struct cluster_section {
    bool enabled = false;            ///< a [cluster] section was given
    std::string node;                ///< this node's name, unique in the cluster
    std::vector<std::string> roles = all_roles();
    std::string listen;              ///< HOST:PORT of CAF remoting (published on HOST only)
    std::vector<cluster_peer> peers;  ///< every other node
    uint32_t replication_factor = 1;  ///< ingesters holding each tenant shard
    uint32_t write_quorum = 0;        ///< replicas acknowledging a write; 0 = RF/2 + 1
    uint32_t tokens = 128;            ///< virtual ring tokens per ingester
    uint64_t heartbeat_interval_s = 1;
    uint64_t suspect_after_s = 3;     ///< no heartbeat for this long: suspect
    uint64_t down_after_s = 10;       ///< no heartbeat for this long: down
    uint64_t rpc_timeout_s = 10;      ///< a replica append or remote query taking longer fails
    uint64_t hint_max_bytes = 256ull << 20;  ///< hinted-handoff queue bound (all peers together)
    /// Storage every node reaches (an NFS or CephFS mount; a local directory for nodes on one
    /// machine). Set: this node's data directory is <shared_path>/<node>, and the compactors
    /// take over a down node's directories (docs/design/cluster.md, "Compaction ownership").
    std::string shared_path;

    static std::vector<std::string> all_roles() {
      return {"distributor", "ingester", "querier", "compactor", "store"};
    }
    bool has_role(std::string_view r) const {
      for (const auto& x : roles)
        if (x == r) return true;
      return false;
    }
    uint32_t effective_write_quorum() const {
      return write_quorum ? write_quorum : replication_factor / 2 + 1;
    }
  } cluster;

  struct log_section {
    std::string level = "info";  ///< error | warn | info | debug
  } log;

  /// Each tenant of limits.per_tenant with its effective limits (defaults + its overrides).
  std::map<std::string, tenant_limits, std::less<>> tenant_overrides() const;

  /// The effective configuration as TOML (what `hearth --print-config` prints).
  std::string to_toml() const;
};

/// Parses a TOML document over the embedded defaults. Unknown sections/keys and bad values fail
/// with errc::bad_config naming the key (e.g. "storage.shards: must be between 1 and 256").
result<config> parse_config(std::string_view toml_text, std::string_view source_name);

/// Reads and parses a TOML file.
result<config> load_config_file(const std::string& path);

/// Parses "HOST:PORT" (IPv4 or [IPv6]); port 0 means "any free port".
result<std::pair<std::string, uint16_t>> parse_listen_address(std::string_view s);

}  // namespace hearth
