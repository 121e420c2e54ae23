// The RPC API against a real `hearth` process (its path is this test's first argument): every
// method of Hearth, Ingest, Query and Admin with real profiles (HEARTH_TESTDATA), bad requests
// (bad selector, bad pprof, unknown block, bad token), an unreachable server, and a server killed
// in the middle of a streamed export (the client gets DISCONNECTED, and does not hang).

#include <capnp/ez-rpc.h>
#include <gtest/gtest.h>
#include <kj/async-io.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>
#include <string>
#include <thread>

#include "admin.capnp.h"
#include "hearth.capnp.h"
#include "ingest.capnp.h"
#include "query.capnp.h"

namespace {

using namespace hearth;
namespace fs = std::filesystem;

std::string hearth_path;

const std::string cpu_type = "process_cpu:cpu:nanoseconds:cpu:nanoseconds";

std::string slurp(const fs::path& p) {
  std::ifstream f(p, std::ios::binary);
  std::ostringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

fs::path testdata() {
  const char* d = std::getenv("HEARTH_TESTDATA");
  return d ? fs::path(d) : fs::path("../shared/testdata");
}

// One hearth process on 127.0.0.1 ephemeral ports in a fresh directory; killed by its pid.
class server {
 public:
  explicit server(const std::string& extra_toml) {
    dir_ = fs::temp_directory_path() / ("hearth-rpc-test-" + std::to_string(getpid()) + "-" + std::to_string(counter_++));
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    std::ofstream(dir_ / "h.toml") << "[server]\nhttp_listen = \"127.0.0.1:0\"\nrpc_listen = \"127.0.0.1:0\"\n"
                                   << extra_toml << "[storage]\npath = \"" << (dir_ / "data").string()
                                   << "\"\nhead_max_age = 1\n";
    pid_ = fork();
    if (pid_ == 0) {
      std::string log = (dir_ / "log").string();
      std::freopen(log.c_str(), "w", stdout);
      std::freopen(log.c_str(), "a", stderr);
      std::string cfg = (dir_ / "h.toml").string();
      execl(hearth_path.c_str(), hearth_path.c_str(), "--config", cfg.c_str(), nullptr);
      _exit(127);
    }
    std::regex re("rpc listening on 127\\.0\\.0\\.1:(\\d+)");
    for (int i = 0; i < 600 && port_ == 0; ++i) {
      std::smatch m;
      std::string log = slurp(dir_ / "log");
      if (std::regex_search(log, m, re)) port_ = static_cast<uint16_t>(std::stoi(m[1]));
      else std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
  }
  ~server() {
    kill(SIGTERM);
    fs::remove_all(dir_);
  }
  void kill(int sig) {
    if (pid_ > 0) {
      ::kill(pid_, sig);
      waitpid(pid_, nullptr, 0);
      pid_ = -1;
    }
  }
  pid_t pid() const { return pid_; }
  uint16_t port() const { return port_; }
  std::string log() const { return slurp(dir_ / "log"); }

 private:
  static inline int counter_ = 0;
  fs::path dir_;
  pid_t pid_ = -1;
  uint16_t port_ = 0;
};

struct session {
  capnp::EzRpcClient client;
  rpc::Ingest::Client ingest = nullptr;
  rpc::Query::Client query = nullptr;
  rpc::Admin::Client admin = nullptr;
  explicit session(uint16_t port, const char* token = "") : client("127.0.0.1", port) {
    auto req = client.getMain<rpc::Hearth>().loginRequest();
    req.setToken(token);
    auto res = req.send().wait(ws());
    ingest = res.getIngest();
    query = res.getQuery();
    admin = res.getAdmin();
  }
  kj::WaitScope& ws() { return client.getWaitScope(); }
};

// The remote exception's text, "" when the promise resolved.
template <class Promise>
std::string failure_of(Promise&& p, kj::WaitScope& ws, kj::Exception::Type* type = nullptr) {
  try {
    p.wait(ws);
  } catch (const kj::Exception& e) {
    if (type) *type = e.getType();
    return e.getDescription().cStr();
  }
  return "";
}

void set_selection(rpc::Selection::Builder s, const std::string& q) {
  s.setQuery(q.c_str());
  s.setStartMs(now_ms() - 7 * 86400 * 1000ll);
  s.setEndMs(now_ms());
}

// Collects a streamed export; optionally kills the server on the first chunk and then never
// finishes that write (the export must fail with DISCONNECTED, not hang).
class collecting_sink final : public rpc::ByteSink::Server {
 public:
  explicit collecting_sink(std::string& out, server* kill_on_first = nullptr) : out_(out), kill_(kill_on_first) {}
  uint64_t announced = 0;
  bool* done_flag = nullptr;

 protected:
  kj::Promise<void> begin(BeginContext c) override {
    announced = c.getParams().getTotalBytes();
    return kj::READY_NOW;
  }
  kj::Promise<void> write(WriteContext c) override {
    auto d = c.getParams().getChunk();
    out_.append(reinterpret_cast<const char*>(d.begin()), d.size());
    if (kill_) {
      kill_->kill(SIGKILL);
      return kj::NEVER_DONE;
    }
    return kj::READY_NOW;
  }
  kj::Promise<void> done(DoneContext) override {
    if (done_flag) *done_flag = true;
    return kj::READY_NOW;
  }

 private:
  std::string& out_;
  server* kill_;
};

class rpc_api : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    srv = new server("");
    ASSERT_NE(srv->port(), 0) << srv->log();
    session s(srv->port());
    // Wait until recovery is over, then upload the three real CPU profiles of one run.
    for (int i = 0; i < 200; ++i) {
      auto r = s.admin.statusRequest().send().wait(s.ws());
      if (std::string(r.getStatus().getSelf().getState().cStr()) == "ready") break;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    for (const char* f : {"workpool.cpu.000.pb.gz", "workpool.cpu.001.pb.gz", "workpool.cpu.002.pb.gz"}) {
      std::string data = slurp(testdata() / "go" / f);
      ASSERT_FALSE(data.empty()) << f;
      auto req = s.ingest.pushRequest();
      auto r = req.initRequest();
      r.setServiceName("workpool");
      auto l = r.initLabels(1);
      l[0].setName("env");
      l[0].setValue("test");
      r.setFormat(rpc::Format::PPROF);
      r.setData(kj::arrayPtr(reinterpret_cast<const kj::byte*>(data.data()), data.size()));
      auto res_response = req.send().wait(s.ws());
      auto res = res_response.getResult();
      ASSERT_EQ(res.getProfiles(), 1u);
      ASSERT_GT(res.getSamples(), 0u);
    }
  }
  static void TearDownTestSuite() {
    delete srv;
    srv = nullptr;
  }
  static inline server* srv = nullptr;
  const std::string workpool = cpu_type + "{service_name=\"workpool\"}";
};

TEST_F(rpc_api, status_names_this_node_and_no_peers) {
  session s(srv->port());
  auto st_response = s.admin.statusRequest().send().wait(s.ws());
  auto st = st_response.getStatus();
  EXPECT_EQ(std::string(st.getSelf().getState().cStr()), "ready");
  EXPECT_EQ(std::string(st.getSelf().getRpcAddress().cStr()), "127.0.0.1:" + std::to_string(srv->port()));
  bool querier = false;
  for (auto r : st.getSelf().getRoles()) querier |= std::string(r.cStr()) == "querier";
  EXPECT_TRUE(querier);
  EXPECT_EQ(st.getPeers().size(), 0u);
  EXPECT_GT(st.getSelf().getStartedMs(), 0);
}

// The merged flame graph totals what go tool pprof reports for the three files
// (expected/merged/go-workpool-cpu/totals.txt), and the top self function is its top line.
TEST_F(rpc_api, flame_graph_and_findings_match_go_tool_pprof) {
  session s(srv->port());
  auto req = s.query.flameGraphRequest();
  set_selection(req.initSelection(), workpool);
  auto g_response = req.send().wait(s.ws());
  auto g = g_response.getGraph();
  EXPECT_EQ(g.getTotal(), 16690000000);
  EXPECT_EQ(std::string(g.getNames()[0].cStr()), "total");
  ASSERT_GT(g.getLevels().size(), 3u);

  auto f = s.query.findingsRequest();
  set_selection(f.initSelection(), workpool);
  f.setTop(5);
  auto fr_response = f.send().wait(s.ws());
  auto fr = fr_response.getFindings();
  EXPECT_EQ(fr.getTotal(), 16690000000);
  ASSERT_EQ(fr.getTopSelf().size(), 5u);
  EXPECT_EQ(std::string(fr.getTopSelf()[0].getName().cStr()), "crypto/sha256.block");
  EXPECT_EQ(fr.getTopSelf()[0].getSelf(), 3010000000);
  EXPECT_GT(fr.getHotPath().size(), 3u);
}

TEST_F(rpc_api, series_diff_regression_labels_and_types) {
  session s(srv->port());
  auto se = s.query.seriesRequest();
  set_selection(se.initSelection(), workpool);
  se.setStepS(3600);
  auto sr_response = se.send().wait(s.ws());
  auto sr = sr_response.getSeries();
  ASSERT_EQ(sr.size(), 1u);
  double sum = 0;
  for (auto p : sr[0].getPoints()) sum += p.getValue();
  EXPECT_EQ(sum, 16690000000.0);

  auto d = s.query.diffRequest();
  set_selection(d.initLeft(), workpool);
  set_selection(d.initRight(), cpu_type + "{env=\"test\"}");
  auto dr_response = d.send().wait(s.ws());
  auto dr = dr_response.getDiff();
  EXPECT_EQ(dr.getLeftTicks(), 16690000000);
  EXPECT_EQ(dr.getRightTicks(), 16690000000);

  auto rg = s.query.regressionRequest();
  set_selection(rg.initBaseline(), workpool);
  set_selection(rg.initComparison(), workpool);
  auto rr_response = rg.send().wait(s.ws());
  auto rr = rr_response.getRegression();
  EXPECT_EQ(rr.getLeftTotal(), rr.getRightTotal());
  EXPECT_EQ(rr.getSelfGrew().size(), 0u);  // identical sides: nothing changed

  auto ln_response = s.query.labelNamesRequest().send().wait(s.ws());

  auto ln = ln_response.getNames();
  bool has_env = false;
  for (auto n : ln) has_env |= std::string(n.cStr()) == "env";
  EXPECT_TRUE(has_env);
  auto lv = s.query.labelValuesRequest();
  lv.setName("service_name");
  auto vals_response = lv.send().wait(s.ws());
  auto vals = vals_response.getValues();
  ASSERT_EQ(vals.size(), 1u);
  EXPECT_EQ(std::string(vals[0].cStr()), "workpool");
  auto pt = s.query.profileTypesRequest();
  pt.setStartMs(now_ms() - 7 * 86400 * 1000ll);
  pt.setEndMs(now_ms());
  bool has_cpu = false;
  auto types = pt.send().wait(s.ws());
  for (auto t : types.getTypes()) has_cpu |= std::string(t.cStr()) == cpu_type;
  EXPECT_TRUE(has_cpu);
}

TEST_F(rpc_api, export_streams_gzipped_pprof_in_chunks) {
  session s(srv->port());
  std::string got;
  bool done = false;
  auto sink = kj::heap<collecting_sink>(got);
  sink->done_flag = &done;
  auto& sink_ref = *sink;
  auto req = s.query.exportPprofRequest();
  set_selection(req.initSelection(), workpool);
  req.setChunkBytes(1024);
  req.setSink(kj::mv(sink));
  uint64_t bytes = req.send().wait(s.ws()).getBytes();
  EXPECT_TRUE(done);
  EXPECT_EQ(got.size(), bytes);
  EXPECT_EQ(sink_ref.announced, bytes);
  ASSERT_GT(got.size(), 1024u);  // several chunks
  EXPECT_EQ(static_cast<unsigned char>(got[0]), 0x1f);
  EXPECT_EQ(static_cast<unsigned char>(got[1]), 0x8b);
}

TEST_F(rpc_api, bad_requests_fail_with_our_error_codes) {
  session s(srv->port());
  auto fg = s.query.flameGraphRequest();
  set_selection(fg.initSelection(), cpu_type + "{service_name=~\"(\"}");
  EXPECT_NE(failure_of(fg.send(), s.ws()).find("bad_selector 103: "), std::string::npos);

  auto nt = s.query.flameGraphRequest();
  set_selection(nt.initSelection(), "no-such-type{}");
  EXPECT_NE(failure_of(nt.send(), s.ws()), "");

  auto push = s.ingest.pushRequest();
  auto r = push.initRequest();
  r.setServiceName("broken");
  r.setFormat(rpc::Format::PPROF);
  const char junk[] = "this is not a pprof profile";
  r.setData(kj::arrayPtr(reinterpret_cast<const kj::byte*>(junk), sizeof junk));
  EXPECT_NE(failure_of(push.send(), s.ws()).find("bad_pprof 102: "), std::string::npos);

  auto lbl = s.ingest.pushRequest();
  auto lr = lbl.initRequest();
  lr.setServiceName("x");
  auto l = lr.initLabels(1);
  l[0].setName("a");
  l[0].setValue("b,c");
  lr.setFormat(rpc::Format::FOLDED);
  EXPECT_NE(failure_of(lbl.send(), s.ws()).find("bad_labels 104: "), std::string::npos);

  auto ib = s.admin.inspectBlockRequest();
  ib.setId(42);
  EXPECT_NE(failure_of(ib.send(), s.ws()).find("not_found 200: no block 42"), std::string::npos);

  auto big = s.query.exportPprofRequest();
  std::string ignored;
  set_selection(big.initSelection(), workpool);
  big.setChunkBytes(64 << 20);
  big.setSink(kj::heap<collecting_sink>(ignored));
  EXPECT_NE(failure_of(big.send(), s.ws()).find("invalid_argument 100: "), std::string::npos);
}

TEST_F(rpc_api, folded_upload_is_queryable) {
  session s(srv->port());
  auto push = s.ingest.pushRequest();
  auto r = push.initRequest();
  r.setServiceName("folded-app");
  r.setFormat(rpc::Format::FOLDED);
  std::string text = "main;work;hash 30\nmain;work 10\n";
  r.setData(kj::arrayPtr(reinterpret_cast<const kj::byte*>(text.data()), text.size()));
  r.setSampleRate(100);
  EXPECT_EQ(push.send().wait(s.ws()).getResult().getProfiles(), 1u);
  auto f = s.query.findingsRequest();
  set_selection(f.initSelection(), cpu_type + "{service_name=\"folded-app\"}");
  auto fr_response = f.send().wait(s.ws());
  auto fr = fr_response.getFindings();
  EXPECT_EQ(fr.getTotal(), 40 * 10000000ll);  // 40 samples at 100 Hz
  EXPECT_EQ(std::string(fr.getTopSelf()[0].getName().cStr()), "hash");
}

// Blocks appear once the head is sealed (head_max_age = 1 s); then every admin method.
TEST_F(rpc_api, admin_blocks_maintenance_tenants_and_config) {
  session s(srv->port());
  capnp::List<rpc::Block>::Reader blocks;
  for (int i = 0; i < 300; ++i) {
    auto lb = s.admin.listBlocksRequest();
    auto res = lb.send().wait(s.ws());
    if (res.getBlocks().size() > 0) {
      auto id = res.getBlocks()[0].getId();
      EXPECT_EQ(std::string(res.getBlocks()[0].getTenant().cStr()), "anonymous");
      EXPECT_GT(res.getBlocks()[0].getSamples(), 0u);
      EXPECT_GE(res.getBlocks()[0].getVersion(), 1u);
      auto ib = s.admin.inspectBlockRequest();
      ib.setId(id);
      auto in_response = ib.send().wait(s.ws());
      auto in = in_response.getInspection();
      EXPECT_EQ(in.getBlock().getId(), id);
      ASSERT_GT(in.getSections().size(), 5u);
      for (auto sec : in.getSections()) EXPECT_TRUE(sec.getCrcOk()) << sec.getName().cStr();
      break;
    }
    ASSERT_LT(i, 299) << "no block sealed within 30 s; log:\n" << srv->log();
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  auto v = s.admin.verifyBlocksRequest().send().wait(s.ws());
  EXPECT_GT(v.getChecked(), 0u);
  EXPECT_EQ(v.getCorrupted(), 0u);
  for (auto r : v.getResults()) EXPECT_TRUE(r.getOk()) << r.getError().cStr();

  // A compaction run may be under way on its timer: overloaded is the documented answer then.
  bool compacted = false;
  for (int i = 0; i < 300 && !compacted; ++i) {
    kj::Exception::Type type = kj::Exception::Type::FAILED;
    std::string err = failure_of(s.admin.compactRequest().send(), s.ws(), &type);
    compacted = err.empty();
    if (compacted) break;
    ASSERT_EQ(type, kj::Exception::Type::OVERLOADED) << err;
    EXPECT_NE(err.find("overloaded 400: "), std::string::npos) << err;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  ASSERT_TRUE(compacted) << "a compaction run was in progress for 30 s";
  auto ret_response = s.admin.runRetentionRequest().send().wait(s.ws());
  auto ret = ret_response.getReport();
  EXPECT_EQ(ret.getJobs(), 0u);  // retention alone never compacts
  EXPECT_EQ(ret.getDropped(), 0u);  // no retention configured

  auto ts_response = s.admin.tenantStatsRequest().send().wait(s.ws());

  auto ts = ts_response.getTenants();
  ASSERT_EQ(ts.size(), 1u);
  EXPECT_EQ(std::string(ts[0].getTenant().cStr()), "anonymous");
  EXPECT_GT(ts[0].getBlocks(), 0u);
  EXPECT_GT(ts[0].getPartitions(), 0u);

  std::string toml = s.admin.configRequest().send().wait(s.ws()).getToml().cStr();
  EXPECT_NE(toml.find("rpc_listen = \"127.0.0.1:0\""), std::string::npos) << toml;
  EXPECT_NE(toml.find("head_max_age"), std::string::npos);
}

TEST(rpc_auth, a_token_is_required_when_auth_is_configured) {
  server srv("[auth]\nbearer_tokens = [\"s3cret-token\"]\nbasic_users = [\"ops:pa55\"]\n");
  ASSERT_NE(srv.port(), 0) << srv.log();
  capnp::EzRpcClient client("127.0.0.1", srv.port());
  auto& ws = client.getWaitScope();
  for (const char* bad : {"", "wrong"}) {
    auto req = client.getMain<rpc::Hearth>().loginRequest();
    req.setToken(bad);
    EXPECT_NE(failure_of(req.send(), ws).find("unauthenticated 800: "), std::string::npos) << bad;
  }
  for (const char* good : {"s3cret-token", "ops:pa55"}) {
    auto req = client.getMain<rpc::Hearth>().loginRequest();
    req.setToken(good);
    auto admin = req.send().getAdmin();
    EXPECT_NE(std::string(admin.configRequest().send().wait(ws).getToml().cStr()).find("[auth]"),
              std::string::npos)
        << good;
  }
}

TEST(rpc_failures, unreachable_server_is_a_disconnected_error) {
  // A port that was just free: bind, read it, close.
  uint16_t port = 0;
  {
    auto io = kj::setupAsyncIo();  // its event loop must be gone before EzRpcClient makes its own
    auto addr = io.provider->getNetwork().parseAddress("127.0.0.1", 0).wait(io.waitScope);
    port = static_cast<uint16_t>(addr->listen()->getPort());
  }
  capnp::EzRpcClient client("127.0.0.1", port);
  kj::Exception::Type type = kj::Exception::Type::FAILED;
  std::string err = failure_of(client.getMain<rpc::Hearth>().loginRequest().send(), client.getWaitScope(), &type);
  EXPECT_EQ(type, kj::Exception::Type::DISCONNECTED) << err;
}

// The server dies while it streams an export: the call fails with DISCONNECTED within seconds.
TEST(rpc_failures, server_killed_mid_export_disconnects_the_client) {
  server srv("");
  ASSERT_NE(srv.port(), 0) << srv.log();
  session s(srv.port());
  for (int i = 0; i < 3; ++i) {
    std::string data = slurp(testdata() / "go" / ("workpool.cpu.00" + std::to_string(i) + ".pb.gz"));
    auto req = s.ingest.pushRequest();
    auto r = req.initRequest();
    r.setServiceName("workpool");
    r.setFormat(rpc::Format::PPROF);
    r.setData(kj::arrayPtr(reinterpret_cast<const kj::byte*>(data.data()), data.size()));
    req.send().wait(s.ws());
  }
  std::string got;
  auto req = s.query.exportPprofRequest();
  set_selection(req.initSelection(), cpu_type + "{}");
  req.setChunkBytes(512);
  req.setSink(kj::heap<collecting_sink>(got, &srv));
  auto t0 = std::chrono::steady_clock::now();
  auto guarded = req.send().ignoreResult().exclusiveJoin(
      s.client.getIoProvider().getTimer().afterDelay(20 * kj::SECONDS).then([]() -> kj::Promise<void> {
        return KJ_EXCEPTION(FAILED, "test timeout: the export neither finished nor failed");
      }));
  kj::Exception::Type type = kj::Exception::Type::FAILED;
  std::string err = failure_of(kj::mv(guarded), s.ws(), &type);
  EXPECT_EQ(type, kj::Exception::Type::DISCONNECTED) << err;
  EXPECT_FALSE(got.empty());  // it was killed mid-stream, after the first chunk
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(15));
}

}  // namespace

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s PATH_TO_HEARTH [gtest options]\n", argv[0]);
    return 2;
  }
  hearth_path = argv[1];
  signal(SIGPIPE, SIG_IGN);
  return RUN_ALL_TESTS();
}
