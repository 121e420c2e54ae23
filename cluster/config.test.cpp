#include "cluster/config.hpp"

#include <gtest/gtest.h>

namespace hearth {
namespace {

TEST(config, defaults_without_file) {
  config c;
  EXPECT_EQ(c.server.http_listen, "127.0.0.1:4040");
  EXPECT_EQ(c.storage.path, "./data");
  EXPECT_EQ(c.server.max_body_bytes, 16u << 20);
}

TEST(config, two_keys_override_defaults) {
  auto c = parse_config("[server]\nhttp_listen = \"127.0.0.1:5050\"\n[storage]\npath = \"/tmp/x\"\n",
                        "t.toml");
  ASSERT_TRUE(c.ok()) << c.err().to_string();
  EXPECT_EQ(c->server.http_listen, "127.0.0.1:5050");
  EXPECT_EQ(c->storage.path, "/tmp/x");
  EXPECT_EQ(c->storage.shards, config{}.storage.shards);
}

TEST(config, rpc_listen_defaults_parses_and_disables) {
  EXPECT_EQ(config{}.server.rpc_listen, "127.0.0.1:4041");
  auto c = parse_config("[server]\nrpc_listen = \"127.0.0.1:0\"\n", "t.toml");
  ASSERT_TRUE(c.ok()) << c.err().to_string();
  EXPECT_EQ(c->server.rpc_listen, "127.0.0.1:0");
  auto off = parse_config("[server]\nrpc_listen = \"\"\n", "t.toml");
  ASSERT_TRUE(off.ok()) << off.err().to_string();
  EXPECT_EQ(off->server.rpc_listen, "");
  EXPECT_NE(off->to_toml().find("rpc_listen = \"\""), std::string::npos);
  auto bad = parse_config("[server]\nrpc_listen = \"nope\"\n", "t.toml");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.err().message.find("server.rpc_listen"), std::string::npos) << bad.err().message;
}

TEST(config, units_are_parsed) {
  auto c = parse_config(
      "[server]\nmax_body_bytes = \"4MiB\"\n[storage]\nhead_max_age = \"1h30m\"\n"
      "[query]\nmax_range = \"2d\"\n",
      "t.toml");
  ASSERT_TRUE(c.ok()) << c.err().to_string();
  EXPECT_EQ(c->server.max_body_bytes, 4u << 20);
  EXPECT_EQ(c->storage.head_max_age_s, 5400u);
  EXPECT_EQ(c->query.max_range_s, 2u * 86400);
}

TEST(config, ingest_format_limits) {
  auto c = parse_config(
      "[limits]\nmax_text_line_bytes = \"4KiB\"\nmax_text_stack_depth = 64\nmax_jfr_stack_depth = 128\n",
      "t.toml");
  ASSERT_TRUE(c.ok()) << c.err().to_string();
  EXPECT_EQ(c->limits.max_text_line_bytes, 4096u);
  EXPECT_EQ(c->limits.max_text_stack_depth, 64u);
  EXPECT_EQ(c->limits.max_jfr_stack_depth, 128u);
  auto otlp = parse_config("[limits]\nmax_otlp_profiles = 7\n", "t.toml");
  ASSERT_TRUE(otlp.ok()) << otlp.err().to_string();
  EXPECT_EQ(otlp->limits.max_otlp_profiles, 7u);
  EXPECT_FALSE(parse_config("[limits]\nmax_otlp_profiles = 0\n", "t.toml").ok());
  auto bad = parse_config("[limits]\nmax_jfr_stack_depth = 0\n", "t.toml");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.err().message.find("max_jfr_stack_depth"), std::string::npos) << bad.err().message;
}

TEST(config, stack_depth_policy) {
  auto d = parse_config("", "t.toml");
  ASSERT_TRUE(d.ok()) << d.err().to_string();
  EXPECT_EQ(d->limits.stack_depth_policy, "reject");
  EXPECT_NE(d->to_toml().find("stack_depth_policy = \"reject\""), std::string::npos);
  auto t = parse_config("[limits]\nmax_stack_depth = 8\nstack_depth_policy = \"truncate\"\n", "t.toml");
  ASSERT_TRUE(t.ok()) << t.err().to_string();
  EXPECT_EQ(t->limits.max_stack_depth, 8u);
  EXPECT_EQ(t->limits.stack_depth_policy, "truncate");
  EXPECT_NE(t->to_toml().find("stack_depth_policy = \"truncate\""), std::string::npos);
  auto bad = parse_config("[limits]\nstack_depth_policy = \"drop\"\n", "t.toml");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.err().message.find("limits.stack_depth_policy"), std::string::npos) << bad.err().message;
  EXPECT_NE(bad.err().message.find("reject, truncate"), std::string::npos) << bad.err().message;
}

TEST(config, unknown_keys_and_sections_are_named) {
  auto c = parse_config("[server]\nhttp_listn = \"x\"\n[stroage]\npath = \"y\"\n", "t.toml");
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.err().message.find("unknown key server.http_listn"), std::string::npos) << c.err().message;
  EXPECT_NE(c.err().message.find("unknown section [stroage]"), std::string::npos) << c.err().message;
}

TEST(config, bad_values_are_named) {
  auto c = parse_config("[storage]\nshards = 0\nio_backend = \"spdk\"\n[server]\nhttp_listen = \"nope\"\n",
                        "t.toml");
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.err().message.find("storage.shards"), std::string::npos) << c.err().message;
  EXPECT_NE(c.err().message.find("storage.io_backend"), std::string::npos) << c.err().message;
  EXPECT_NE(c.err().message.find("server.http_listen"), std::string::npos) << c.err().message;
  auto t = parse_config("[storage]\npath = 3\n", "t.toml");
  ASSERT_FALSE(t.ok());
  EXPECT_NE(t.err().message.find("storage.path"), std::string::npos);
}

TEST(config, syntax_errors_have_a_position) {
  auto c = parse_config("[server\n", "bad.toml");
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.err().code, errc::bad_config);
  EXPECT_NE(c.err().message.find("bad.toml:1:"), std::string::npos) << c.err().message;
}

TEST(config, printed_config_parses_back_to_the_same) {
  config c;
  c.storage.path = "/var/lib/hearth";
  c.storage.shards = 4;
  c.query.max_range_s = 3600;
  auto back = parse_config(c.to_toml(), "printed");
  ASSERT_TRUE(back.ok()) << back.err().to_string();
  EXPECT_EQ(back->to_toml(), c.to_toml());
  EXPECT_EQ(back->storage.shards, 4u);
}

TEST(config, retention_per_tenant_and_compaction) {
  auto c = parse_config(
      "[retention]\nperiod = \"30d\"\nper_tenant = { team-a = \"7d\", anonymous = \"0s\" }\n"
      "[compaction]\nl1_window = \"10m\"\nrollups = false\n",
      "t.toml");
  ASSERT_TRUE(c.ok()) << c.err().to_string();
  EXPECT_EQ(c->retention.period_s, 30u * 86400);
  EXPECT_EQ(c->retention.per_tenant_s.at("team-a"), 7u * 86400);
  EXPECT_EQ(c->retention.per_tenant_s.at("anonymous"), 0u);
  EXPECT_EQ(c->compaction.l1_window_s, 600u);
  EXPECT_FALSE(c->compaction.rollups);
  auto back = parse_config(c->to_toml(), "printed");
  ASSERT_TRUE(back.ok()) << back.err().to_string() << "\n" << c->to_toml();
  EXPECT_EQ(back->to_toml(), c->to_toml());
  auto bad = parse_config("[retention]\nper_tenant = { x = \"soon\" }\n", "t.toml");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.err().message.find("retention.per_tenant: x:"), std::string::npos) << bad.err().message;
}

TEST(config, tenant_limits_defaults_and_overrides) {
  auto c = parse_config(
      "[limits]\ningestion_rate_bytes = \"8MiB\"\nmax_series_per_tenant = 1000\n"
      "per_tenant = { team-a = { ingestion_rate_bytes = \"1MiB\", max_series_per_tenant = 0 }, "
      "team-b = { ingestion_rate_profiles = 3 } }\n",
      "t.toml");
  ASSERT_TRUE(c.ok()) << c.err().to_string();
  EXPECT_EQ(c->limits.tenant.ingestion_rate_bytes, 8u << 20);
  EXPECT_EQ(c->limits.tenant.max_series, 1000u);
  auto o = c->tenant_overrides();
  ASSERT_EQ(o.size(), 2u);
  EXPECT_EQ(o.at("team-a").ingestion_rate_bytes, 1u << 20);
  EXPECT_EQ(o.at("team-a").max_series, 0u);
  EXPECT_EQ(o.at("team-a").ingestion_rate_profiles, tenant_limits{}.ingestion_rate_profiles);
  EXPECT_EQ(o.at("team-b").ingestion_rate_profiles, 3u);
  EXPECT_EQ(o.at("team-b").ingestion_rate_bytes, 8u << 20);  // the [limits] default, whatever the order
  auto back = parse_config(c->to_toml(), "printed");
  ASSERT_TRUE(back.ok()) << back.err().to_string() << "\n" << c->to_toml();
  EXPECT_EQ(back->to_toml(), c->to_toml());
  EXPECT_NE(c->to_toml().find("max_series_per_tenant = 1000"), std::string::npos);
  auto bad = parse_config("[limits]\nper_tenant = { x = { rate = 1 } }\n", "t.toml");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.err().message.find("limits.per_tenant: x: unknown key rate"), std::string::npos)
      << bad.err().message;
}

TEST(config, auth_is_parsed_and_redacted_when_printed) {
  auto c = parse_config("[auth]\nbearer_tokens = [\"s3cret\"]\nbasic_users = [\"alice:pw\"]\n", "t.toml");
  ASSERT_TRUE(c.ok()) << c.err().to_string();
  EXPECT_TRUE(c->auth.enabled());
  EXPECT_EQ(c->auth.bearer_tokens.at(0), "s3cret");
  EXPECT_EQ(c->auth.basic_users.at(0), "alice:pw");
  std::string printed = c->to_toml();
  EXPECT_EQ(printed.find("s3cret"), std::string::npos);
  EXPECT_EQ(printed.find("alice"), std::string::npos);
  EXPECT_NE(printed.find("bearer_tokens = [\"<redacted>\"]"), std::string::npos) << printed;
  auto bad = parse_config("[auth]\nbasic_users = [\"alice\"]\n", "t.toml");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.err().message.find("auth.basic_users"), std::string::npos);
  EXPECT_FALSE(config{}.auth.enabled());
}

TEST(config, compaction_zstd_levels) {
  auto d = parse_config("", "t.toml");
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(d->compaction.l1_zstd_level, 1);
  EXPECT_EQ(d->compaction.l2_zstd_level, 3);
  auto c = parse_config("[compaction]\nl1_zstd_level = -3\nl2_zstd_level = 9\n", "t.toml");
  ASSERT_TRUE(c.ok()) << c.err().to_string();
  EXPECT_EQ(c->compaction.l1_zstd_level, -3);
  EXPECT_EQ(c->compaction.l2_zstd_level, 9);
  auto back = parse_config(c->to_toml(), "printed");
  ASSERT_TRUE(back.ok()) << back.err().to_string();
  EXPECT_EQ(back->compaction.l1_zstd_level, -3);
  for (const char* bad : {"l1_zstd_level = 0", "l2_zstd_level = 20", "l1_zstd_level = -101"}) {
    auto b = parse_config(std::string("[compaction]\n") + bad + "\n", "t.toml");
    EXPECT_FALSE(b.ok()) << bad;
  }
}

TEST(config, compaction_max_output_samples) {
  auto d = parse_config("", "t.toml");
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(d->compaction.max_output_samples, uint64_t{8} << 20);
  auto c = parse_config("[compaction]\nmax_output_samples = 1000000\n", "t.toml");
  ASSERT_TRUE(c.ok()) << c.err().to_string();
  EXPECT_EQ(c->compaction.max_output_samples, 1000000u);
  auto back = parse_config(c->to_toml(), "printed");
  ASSERT_TRUE(back.ok()) << back.err().to_string();
  EXPECT_EQ(back->compaction.max_output_samples, 1000000u);
  EXPECT_FALSE(parse_config("[compaction]\nmax_output_samples = 0\n", "t.toml").ok());
  EXPECT_EQ(d->compaction.l2_max_output_samples, uint64_t{24} << 20);
  auto l2 = parse_config("[compaction]\nl2_max_output_samples = 3000000\n", "t.toml");
  ASSERT_TRUE(l2.ok()) << l2.err().to_string();
  EXPECT_EQ(l2->compaction.l2_max_output_samples, 3000000u);
  EXPECT_EQ(parse_config(l2->to_toml(), "printed")->compaction.l2_max_output_samples, 3000000u);
  EXPECT_FALSE(parse_config("[compaction]\nl2_max_output_samples = 0\n", "t.toml").ok());
}

TEST(config, compaction_open_l2_windows) {
  EXPECT_TRUE(config{}.compaction.open_l2_windows);
  auto c = parse_config("[compaction]\nopen_l2_windows = false\n", "t.toml");
  ASSERT_TRUE(c.ok()) << c.err().to_string();
  EXPECT_FALSE(c->compaction.open_l2_windows);
  auto back = parse_config(c->to_toml(), "printed");
  ASSERT_TRUE(back.ok()) << back.err().to_string();
  EXPECT_FALSE(back->compaction.open_l2_windows);
  EXPECT_FALSE(parse_config("[compaction]\nopen_l2_windows = 3\n", "t.toml").ok());
}

TEST(config, query_partial_cache_bytes) {
  EXPECT_EQ(config{}.query.partial_cache_bytes, uint64_t{256} << 20);
  auto c = parse_config("[query]\npartial_cache_bytes = \"64MiB\"\n", "t.toml");
  ASSERT_TRUE(c.ok()) << c.err().to_string();
  EXPECT_EQ(c->query.partial_cache_bytes, uint64_t{64} << 20);
  EXPECT_NE(c->to_toml().find("partial_cache_bytes = \"64MiB\""), std::string::npos);
  auto off = parse_config("[query]\npartial_cache_bytes = 0\n", "t.toml");
  ASSERT_TRUE(off.ok()) << off.err().to_string();
  EXPECT_EQ(off->query.partial_cache_bytes, 0u);
  auto back = parse_config(off->to_toml(), "printed");
  ASSERT_TRUE(back.ok()) << back.err().to_string();
  EXPECT_EQ(back->query.partial_cache_bytes, 0u);
  for (const char* bad : {"\"lots\"", "-1", "\"2TiB\""}) {
    auto b = parse_config(std::string("[query]\npartial_cache_bytes = ") + bad + "\n", "t.toml");
    ASSERT_FALSE(b.ok()) << bad;
    EXPECT_NE(b.err().message.find("query.partial_cache_bytes"), std::string::npos) << b.err().message;
  }
}

TEST(config, listen_address) {
  auto a = parse_listen_address("127.0.0.1:0");
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a->first, "127.0.0.1");
  EXPECT_EQ(a->second, 0);
  EXPECT_FALSE(parse_listen_address("127.0.0.1:70000").ok());
  EXPECT_FALSE(parse_listen_address(":80").ok());
  auto v6 = parse_listen_address("[::1]:4040");
  ASSERT_TRUE(v6.ok());
  EXPECT_EQ(v6->first, "::1");
}

TEST(config, cluster_section) {
  config plain;
  EXPECT_FALSE(plain.cluster.enabled);  // no [cluster]: a single node
  auto c = parse_config(
      "[cluster]\nnode = \"a\"\nlisten = \"127.0.0.1:7001\"\nreplication_factor = 3\n"
      "peers = [ { name = \"b\", address = \"127.0.0.1:7002\" },\n"
      "  { name = \"c\", address = \"127.0.0.1:7003\", roles = [\"ingester\", \"store\"] } ]\n",
      "t.toml");
  ASSERT_TRUE(c.ok()) << c.err().to_string();
  EXPECT_TRUE(c->cluster.enabled);
  EXPECT_EQ(c->cluster.node, "a");
  EXPECT_EQ(c->cluster.roles.size(), 5u);
  ASSERT_EQ(c->cluster.peers.size(), 2u);
  EXPECT_EQ(c->cluster.peers[1].roles, (std::vector<std::string>{"ingester", "store"}));
  EXPECT_EQ(c->cluster.effective_write_quorum(), 2u);  // RF/2 + 1
  // What --print-config prints parses back to the same cluster.
  auto again = parse_config(c->to_toml(), "printed.toml");
  ASSERT_TRUE(again.ok()) << again.err().to_string();
  EXPECT_EQ(again->cluster.peers[1].address, "127.0.0.1:7003");
  EXPECT_EQ(again->cluster.write_quorum, 2u);
}

TEST(config, cluster_errors_name_the_key) {
  auto bad = [](const std::string& body) {
    auto c = parse_config("[cluster]\nnode = \"a\"\nlisten = \"127.0.0.1:7001\"\n" + body, "t.toml");
    return c.ok() ? std::string() : c.err().message;
  };
  EXPECT_NE(bad("roles = [\"ingester\", \"router\"]\n").find("cluster.roles: unknown role \"router\""),
            std::string::npos);
  EXPECT_NE(bad("peers = [ { name = \"b\" } ]\n").find("cluster.peers[0].address: required"), std::string::npos);
  EXPECT_NE(bad("peers = [ { name = \"a\", address = \"127.0.0.1:1\" } ]\n").find("lists this node itself"),
            std::string::npos);
  EXPECT_NE(bad("replication_factor = 2\n").find("cluster.replication_factor: 2 exceeds the 1 ingester"),
            std::string::npos);
  EXPECT_NE(bad("suspect_after = \"1s\"\n").find("cluster.suspect_after: must be longer than heartbeat_interval"),
            std::string::npos);
  auto zero = parse_config("[cluster]\nnode = \"a\"\nlisten = \"127.0.0.1:0\"\n", "t.toml");
  ASSERT_FALSE(zero.ok());
  EXPECT_NE(zero.err().message.find("cluster.listen: needs a port"), std::string::npos);
  EXPECT_NE(bad("colour = 1\n").find("unknown key cluster.colour"), std::string::npos);
  EXPECT_EQ(bad("peers = []\n"), "");
}

TEST(config, cluster_shared_path_sets_the_data_directory) {
  auto c = parse_config("[cluster]\nnode = \"a\"\nlisten = \"127.0.0.1:7001\"\nshared_path = \"/mnt/h\"\n",
                        "t.toml");
  ASSERT_TRUE(c.ok()) << c.err().to_string();
  EXPECT_EQ(c->storage.path, "/mnt/h/a");
  auto again = parse_config(c->to_toml(), "printed.toml");  // prints both; they agree
  ASSERT_TRUE(again.ok()) << again.err().to_string();
  EXPECT_EQ(again->cluster.shared_path, "/mnt/h");
  auto clash = parse_config("[storage]\npath = \"/data\"\n[cluster]\nnode = \"a\"\n"
                            "listen = \"127.0.0.1:7001\"\nshared_path = \"/mnt/h\"\n", "t.toml");
  ASSERT_FALSE(clash.ok());
  EXPECT_NE(clash.err().message.find("storage.path: must be left out (or be \"/mnt/h/a\")"), std::string::npos)
      << clash.err().message;
  auto empty = parse_config("[cluster]\nnode = \"a\"\nlisten = \"127.0.0.1:7001\"\nshared_path = \"\"\n", "t.toml");
  ASSERT_FALSE(empty.ok());
  EXPECT_NE(empty.err().message.find("cluster.shared_path: expected a non-empty string"), std::string::npos);
}

}  // namespace
}  // namespace hearth
