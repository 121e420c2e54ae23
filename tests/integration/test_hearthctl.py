#!/usr/bin/env python3
"""hearthctl against a real hearth on 127.0.0.1 (its RPC port): every command, human and --json
output, exit codes (2 usage, 3 server error, 4 unreachable, 1 verify found corruption), answers
equal to the HTTP API's and to `go tool pprof`'s (testdata/expected), auth, and verify reporting a
corrupted block without the server failing.

usage: test_hearthctl.py PATH/TO/hearth [NAME_SUBSTRING...]   (hearthctl: $HEARTHCTL, or next to hearth)
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import hearthtest as ht  # noqa: E402

ht.ensure_system_python("test_hearthctl")

import gzip  # noqa: E402
import json  # noqa: E402
import socket  # noqa: E402
import subprocess  # noqa: E402
import time  # noqa: E402
import unittest  # noqa: E402

CPU = "process_cpu:cpu:nanoseconds:cpu:nanoseconds"
HEAP = "memory:inuse_space:bytes:space:bytes"
WORKPOOL = CPU + '{service_name="workpool"}'
MAPINDEX_HEAP = HEAP + '{service_name="mapindex"}'
RANGE = ["--from", "now-7d", "--until", "now"]


class State:
    srv = None


def ctl_path():
    return os.environ.get("HEARTHCTL") or os.path.join(os.path.dirname(ht.ctx.hearth), "hearthctl")


def ctl(*args, srv=None, env=None, timeout=120):
    """Runs hearthctl against `srv` (default: the shared server) -> CompletedProcess (text)."""
    s = srv or State.srv
    e = dict(os.environ)
    e.pop("HEARTH_SERVER", None)
    e.pop("HEARTH_TOKEN", None)
    e.update(env or {})
    cmd = [ctl_path()]
    if s is not None:
        cmd += ["--server", "127.0.0.1:%d" % s.rpc_port]
    return subprocess.run(cmd + list(args), capture_output=True, text=True, timeout=timeout, env=e,
                          stdin=subprocess.DEVNULL)


def ctl_json(*args, srv=None):
    r = ctl("--json", *args, srv=srv)
    if r.returncode != 0:
        raise AssertionError("hearthctl %s: exit %d: %s" % (" ".join(args), r.returncode, r.stderr))
    return json.loads(r.stdout)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def wait_blocks(srv, timeout=30):
    deadline = time.monotonic() + timeout
    while True:
        blocks = ctl_json("blocks", "ls", srv=srv)
        if blocks:
            return blocks
        if time.monotonic() > deadline:
            raise AssertionError("no sealed block within %ds; log:\n%s" % (timeout, srv.log()))
        time.sleep(0.2)


def setup():
    if not os.access(ctl_path(), os.X_OK):
        sys.stderr.write("no hearthctl at %s (set HEARTHCTL)\n" % ctl_path())
        return 2
    srv = ht.Server("ctl", os.path.join(ht.ctx.tmp, "ctl"), {"storage": ["head_max_age = 1"]})
    srv.start()
    State.srv = srv
    go = os.path.join(ht.TESTDATA, "go")
    files = [os.path.join(go, "workpool.cpu.%03d.pb.gz" % i) for i in range(3)]
    r = ctl("upload", "--label", "service_name=workpool", "--label", "env=test", *files)
    if r.returncode != 0:
        sys.stderr.write("upload failed: %s\n" % r.stderr)
        return 1
    r = ctl("upload", "--service", "mapindex", os.path.join(go, "mapindex.heap.pb.gz"))
    if r.returncode != 0:
        sys.stderr.write("upload failed: %s\n" % r.stderr)
        return 1
    return 0


def http_smst(ptype, selector, max_nodes=None):
    now = int(time.time() * 1000)
    return ht.select_merge(State.srv, ptype, selector, now - 7 * 86400 * 1000, now,
                           max_nodes if max_nodes is not None else ht.MAX_NODES)


class Usage(unittest.TestCase):
    def test_help_reads_like_a_cli(self):
        r = ctl("--help", srv=None)
        self.assertEqual(r.returncode, 0, r.stderr)
        for want in ("usage: hearthctl", "Commands:", "Global options:", "Examples:", "Exit status:",
                     "query flamegraph", "blocks verify", "--server HOST:PORT"):
            self.assertIn(want, r.stdout)
        for cmd in ("status", "cluster", "upload", "query", "blocks", "compact", "retention", "tenants", "config"):
            r = ctl(cmd, "--help", srv=None)
            self.assertEqual(r.returncode, 0, cmd + ": " + r.stderr)
            self.assertIn("usage: hearthctl " + cmd, r.stdout)
            self.assertIn("Example", r.stdout)
        r = ctl("help", "query", srv=None)
        self.assertEqual(r.returncode, 0)
        self.assertIn("--max-depth", r.stdout)

    def test_usage_errors_exit_2_before_connecting(self):
        cases = [
            ([], "usage: hearthctl"),
            (["frobnicate"], "unknown command 'frobnicate'"),
            (["query"], "missing query subcommand"),
            (["query", "top"], "missing QUERY"),
            (["query", "top", WORKPOOL, "--from", "yesterday"], "--from: cannot read time 'yesterday'"),
            (["query", "top", WORKPOOL, "--frob"], "unknown option --frob"),
            (["query", "series", WORKPOOL, "--step", "soon"], "--step"),
            (["query", "export", WORKPOOL], "-o FILE"),
            (["upload", "x.pb.gz"], "service name is required"),
            (["upload", "--service", "a", "/no/such/file.pb.gz"], "cannot read /no/such/file.pb.gz"),
            (["upload", "--service", "a", "--format", "xml", "f"], "--format must be"),
            (["blocks", "inspect", "abc"], "block ID must be a number"),
            (["blocks", "frob"], "unknown blocks subcommand"),
        ]
        # An unreachable address: these must fail as usage errors, not as connection errors.
        for args, want in cases:
            r = subprocess.run([ctl_path(), "--server", "127.0.0.1:%d" % free_port()] + args,
                               capture_output=True, text=True, timeout=30)
            self.assertEqual(r.returncode, 2, "%r: exit %d %s" % (args, r.returncode, r.stderr))
            self.assertIn(want, r.stderr, args)

    def test_unreachable_server_exits_4_naming_the_address(self):
        port = free_port()
        r = subprocess.run([ctl_path(), "--server", "127.0.0.1:%d" % port, "status"], capture_output=True,
                           text=True, timeout=30)
        self.assertEqual(r.returncode, 4, r.stderr)
        self.assertIn("127.0.0.1:%d" % port, r.stderr)
        # HEARTH_SERVER is the default address.
        r = subprocess.run([ctl_path(), "status"], capture_output=True, text=True, timeout=30,
                           env=dict(os.environ, HEARTH_SERVER="127.0.0.1:%d" % port))
        self.assertEqual(r.returncode, 4, r.stderr)
        self.assertIn("127.0.0.1:%d" % port, r.stderr)


class Queries(unittest.TestCase):
    def test_server_errors_exit_3_with_the_message(self):
        r = ctl("query", "top", CPU + '{service_name=~"("}', *RANGE)
        self.assertEqual(r.returncode, 3, r.stderr)
        self.assertIn("bad_selector", r.stderr)
        r = ctl("query", "top", WORKPOOL, "--from", "now-60d")
        self.assertEqual(r.returncode, 3, r.stderr)
        self.assertIn("query.max_range", r.stderr)
        r = ctl("blocks", "inspect", "12345")
        self.assertEqual(r.returncode, 3, r.stderr)
        self.assertIn("not_found", r.stderr)
        bad = os.path.join(ht.ctx.tmp, "bad.pb.gz")
        with open(bad, "wb") as f:
            f.write(gzip.compress(b"not a profile at all"))
        r = ctl("upload", "--service", "broken", bad)
        self.assertEqual(r.returncode, 3, r.stderr)
        self.assertIn("bad_pprof", r.stderr)

    def test_top_matches_go_tool_pprof(self):
        for ptype, sel, expected in (
            (CPU, WORKPOOL, os.path.join(ht.TESTDATA, "expected", "merged", "go-workpool-cpu", "top.cpu.txt")),
            (HEAP, MAPINDEX_HEAP, os.path.join(ht.expected_dir("go", "mapindex.heap"), "top.inuse_space.txt")),
        ):
            got = ctl_json("query", "top", sel, "--limit", "60", *RANGE)
            selfs = {f["name"]: f["self"] for f in got["topSelf"]}
            for name, flat in ht.parse_top(expected, 10):
                if flat == 0:
                    continue
                self.assertEqual(selfs.get(name), flat, "%s: %s" % (sel, name))
        human = ctl("query", "top", WORKPOOL, "--limit", "5", *RANGE)
        self.assertEqual(human.returncode, 0, human.stderr)
        lines = human.stdout.splitlines()
        self.assertIn("total 16.69 s", lines[0])
        self.assertRegex(lines[2], r"^1\s+3\.01 s\s+18\.03%\s+3\.01 s\s+18\.03%\s+crypto/sha256\.block$")
        self.assertEqual(len(lines), 2 + 5)

    def test_flamegraph_equals_the_http_api(self):
        names, levels, total = http_smst(CPU, '{service_name="workpool"}', 300)
        got = ctl_json("query", "flamegraph", WORKPOOL, "--max-nodes", "300", *RANGE)
        self.assertEqual(got["total"], total)
        self.assertEqual(got["total"], 16690000000)
        self.assertEqual(got["names"], names)
        self.assertEqual(got["levels"], levels)
        human = ctl("query", "flamegraph", WORKPOOL, "--max-depth", "3", "--min-percent", "1", "--width", "90", *RANGE)
        self.assertEqual(human.returncode, 0, human.stderr)
        lines = human.stdout.splitlines()
        self.assertEqual(lines[0].split(), ["TOTAL", "%", "SELF", "%", "FUNCTION"])
        self.assertRegex(lines[1], r"16\.69 s\s+100\.00%.*\stotal$")
        self.assertTrue(any(l.endswith("    example.com/profdemo/workpool.worker") for l in lines), human.stdout)
        self.assertTrue(all(len(l) <= 90 for l in lines))
        # depth 3 below the root at most: two spaces of column gap, then two per level
        self.assertTrue(any(l.endswith("        example.com/profdemo/workpool.compressPayload") for l in lines))
        self.assertFalse(any("          example.com" in l for l in lines), human.stdout)

    def test_hotpath_series_diff(self):
        hp = ctl_json("query", "hotpath", WORKPOOL, *RANGE)
        self.assertEqual(hp["total"], 16690000000)
        self.assertEqual(hp["hotPath"][0]["name"], "example.com/profdemo/workpool.Run.func1")
        totals = [p["total"] for p in hp["hotPath"]]
        self.assertEqual(totals, sorted(totals, reverse=True))
        human = ctl("query", "hotpath", WORKPOOL, *RANGE)
        self.assertIn("DEPTH", human.stdout)

        series = ctl_json("query", "series", CPU + "{}", "--step", "1h", "--group-by", "service_name", *RANGE)
        self.assertEqual([s["labels"] for s in series], [{"service_name": "workpool"}])
        self.assertEqual(sum(p[1] for p in series[0]["points"]), 16690000000)
        human = ctl("query", "series", WORKPOOL, "--step", "1h", *RANGE)
        self.assertEqual(human.returncode, 0, human.stderr)
        self.assertIn("series {}", human.stdout)

        d = ctl_json("query", "diff", WORKPOOL, CPU + '{env="test"}', *RANGE)
        self.assertEqual(d["diff"]["leftTicks"], 16690000000)
        self.assertEqual(d["diff"]["rightTicks"], 16690000000)
        self.assertEqual(d["regression"]["selfGrew"], [])
        human = ctl("query", "diff", WORKPOOL, CPU + '{env="test"}', *RANGE)
        self.assertEqual(human.returncode, 0, human.stderr)
        self.assertIn("grew:", human.stdout)

    def test_labels_and_types_equal_the_http_api(self):
        names = ctl_json("query", "labels")
        self.assertIn("service_name", names)
        self.assertIn("env", names)
        values = ctl_json("query", "labels", "service_name")
        now = int(time.time() * 1000)
        self.assertEqual(values, ht.label_values(State.srv, "service_name", "{}", now - 7 * 86400 * 1000, now))
        self.assertIn("mapindex", values)
        self.assertIn("workpool", values)
        human = ctl("query", "labels", "env", "--match", '{service_name="workpool"}')
        self.assertEqual(human.stdout, "test\n")
        types = ctl_json("query", "types", *RANGE)
        self.assertIn(CPU, types)
        self.assertIn(HEAP, types)

    def test_export_is_the_merged_profile(self):
        out = os.path.join(ht.ctx.tmp, "cpu.pb.gz")
        r = ctl("query", "export", WORKPOOL, "-o", out, *RANGE)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("wrote " + out, r.stdout)
        p = ht.ctx.pb.profile.Profile()
        with open(out, "rb") as f:
            p.ParseFromString(gzip.decompress(f.read()))
        idx = [i for i, st in enumerate(p.sample_type) if p.string_table[st.type] == "cpu"][0]
        self.assertEqual(sum(s.value[idx] for s in p.sample), 16690000000)
        self.assertFalse(os.path.exists(out + ".part"))
        j = ctl_json("query", "export", WORKPOOL, "-o", out, *RANGE)
        self.assertEqual(j["bytes"], os.path.getsize(out))

    def test_display_names_rename_sample_types_as_the_go_sdk_form_does(self):
        block = os.path.join(ht.TESTDATA, "go", "workpool.block.pb.gz")
        r = ctl("upload", "--service", "stc-block", "--display-name", "contentions=block_count",
                "--display-name", "delay=block_duration", block)
        self.assertEqual(r.returncode, 0, r.stderr)
        r = ctl("upload", "--service", "stc-none", block)
        self.assertEqual(r.returncode, 0, r.stderr)
        types = ctl_json("query", "types", *RANGE)
        for t in ("block:contentions:count:contentions:count", "block:delay:nanoseconds:contentions:count"):
            self.assertIn(t, types)
        vals = ctl_json("query", "labels", "service_name", "--match",
                        '{__profile_type__="block:contentions:count:contentions:count"}')
        self.assertEqual(vals, ["stc-block"])
        vals = ctl_json("query", "labels", "service_name", "--match",
                        '{__profile_type__="mutex:contentions:count:contentions:count"}')
        self.assertEqual(vals, ["stc-none"])

    def test_folded_upload_with_kind(self):
        text = os.path.join(ht.ctx.tmp, "stacks.folded")
        with open(text, "w") as f:
            f.write("main;serve;parse 7\nmain;serve 3\n")
        r = ctl("upload", "--service", "textapp", "--type", "wall", text)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("uploaded 1 file", r.stdout)
        top = ctl_json("query", "top", 'wall:wall:nanoseconds:cpu:nanoseconds{service_name="textapp"}', *RANGE)
        self.assertEqual(top["topSelf"][0]["name"], "parse")
        self.assertEqual(top["total"], 10 * 10000000)  # 10 samples at the default 100 Hz
        r = ctl("upload", "--service", "x", "--type", "wall", os.path.join(ht.TESTDATA, "go", "workpool.cpu.000.pb.gz"))
        self.assertEqual(r.returncode, 3, r.stderr)
        self.assertIn("folded and lines", r.stderr)


class Admin(unittest.TestCase):
    def test_status_config_tenants(self):
        st = ctl_json("status")
        self.assertEqual(st["self"]["state"], "ready")
        self.assertEqual(st["self"]["rpcAddress"], "127.0.0.1:%d" % State.srv.rpc_port)
        self.assertEqual(st["self"]["httpAddress"], "127.0.0.1:%d" % State.srv.port)
        self.assertEqual(st["peers"], [])
        human = ctl("status")
        self.assertIn("(this)", human.stdout)
        self.assertIn("ready", human.stdout)
        cfg = ctl("config")
        self.assertEqual(cfg.returncode, 0)
        printed = subprocess.run([ht.ctx.hearth, "--config", os.path.join(ht.ctx.tmp, "ctl.1.toml"), "--print-config"],
                                 capture_output=True, text=True, timeout=30).stdout
        self.assertEqual(cfg.stdout, printed)
        wait_blocks(State.srv)
        tenants = ctl_json("tenants")
        self.assertEqual([t["tenant"] for t in tenants], ["anonymous"])
        self.assertGreater(tenants[0]["blocks"], 0)
        human = ctl("tenants")
        self.assertIn("anonymous", human.stdout)
        self.assertIn("PARTITIONS", human.stdout)

    def test_blocks_ls_inspect_verify_compact_retention(self):
        blocks = wait_blocks(State.srv)
        b = blocks[0]
        for k in ("tenant", "shard", "id", "path", "level", "minTimeNs", "maxTimeNs", "bytes", "series", "profiles",
                  "samples", "codec"):
            self.assertIn(k, b)
        self.assertEqual(b["bytes"], os.path.getsize(b["path"]))
        human = ctl("blocks", "ls")
        self.assertIn(str(b["id"]), human.stdout)
        ins = ctl_json("blocks", "inspect", str(b["id"]))
        self.assertEqual(ins["block"]["id"], b["id"])
        self.assertTrue(all(s["crcOk"] for s in ins["sections"]))
        self.assertIn("samples", [s["name"] for s in ins["sections"]])
        human = ctl("blocks", "inspect", str(b["id"]))
        self.assertIn("SECTION", human.stdout)
        self.assertIn("CRC32C", human.stdout)
        v = ctl("blocks", "verify")
        self.assertEqual(v.returncode, 0, v.stdout + v.stderr)
        self.assertRegex(v.stdout, r"\d+ blocks checked, 0 corrupted")
        # compaction may be running on its own timer: overloaded (exit 3) is its documented answer
        for _ in range(50):
            c = ctl("--json", "compact")
            if c.returncode == 0:
                break
            self.assertIn("overloaded", c.stderr)
            time.sleep(0.2)
        self.assertEqual(c.returncode, 0, c.stderr)
        self.assertIn("jobs", json.loads(c.stdout))
        r = ctl("retention")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("retention done: 0 jobs", r.stdout)
        # data is still all there
        self.assertEqual(ctl_json("query", "top", WORKPOOL, *RANGE)["total"], 16690000000)

    def test_verify_reports_a_corrupted_block_and_the_server_keeps_serving(self):
        srv = ht.Server("ctl-corrupt", os.path.join(ht.ctx.tmp, "ctl-corrupt"), {"storage": ["head_max_age = 1"],
                                                                                 "compaction": ["enabled = false"]})
        srv.start()
        try:
            r = ctl("upload", "--service", "workpool", os.path.join(ht.TESTDATA, "go", "workpool.cpu.000.pb.gz"), srv=srv)
            self.assertEqual(r.returncode, 0, r.stderr)
            b = wait_blocks(srv)[0]
            ins = ctl_json("blocks", "inspect", str(b["id"]), srv=srv)
            sec = [s for s in ins["sections"] if s["name"] == "samples"][0]
            with open(b["path"], "r+b") as f:
                f.seek(sec["offset"] + 10)
                byte = f.read(1)
                f.seek(sec["offset"] + 10)
                f.write(bytes([byte[0] ^ 0x5A]))
            v = ctl("blocks", "verify", srv=srv)
            self.assertEqual(v.returncode, 1, v.stdout + v.stderr)
            self.assertIn("CORRUPTED", v.stdout)
            self.assertIn("1 corrupted", v.stdout)
            j = json.loads(ctl("--json", "blocks", "verify", srv=srv).stdout)
            self.assertEqual(j["corrupted"], 1)
            self.assertIn("samples", j["results"][0]["error"])
            ins = ctl_json("blocks", "inspect", str(b["id"]), srv=srv)
            self.assertFalse([s for s in ins["sections"] if s["name"] == "samples"][0]["crcOk"])
            self.assertEqual(ctl("status", srv=srv).returncode, 0)
            self.assertTrue(srv.alive())
        finally:
            srv.kill()

    def test_auth_token(self):
        srv = ht.Server("ctl-auth", os.path.join(ht.ctx.tmp, "ctl-auth"), {}, extra_toml='[auth]\nbearer_tokens = ["tok-123"]\n')
        srv.start()
        try:
            r = ctl("status", srv=srv)
            self.assertEqual(r.returncode, 3, r.stderr)
            self.assertIn("unauthenticated", r.stderr)
            self.assertEqual(ctl("--token", "nope", "status", srv=srv).returncode, 3)
            self.assertEqual(ctl("--token", "tok-123", "status", srv=srv).returncode, 0)
            self.assertEqual(ctl("status", srv=srv, env={"HEARTH_TOKEN": "tok-123"}).returncode, 0)
        finally:
            srv.kill()

    def test_tenants_and_body_limit_apply_as_on_http(self):
        srv = ht.Server("ctl-mt", os.path.join(ht.ctx.tmp, "ctl-mt"),
                        {"server": ["multitenancy = true", 'max_body_bytes = "4KiB"']})
        srv.start()
        try:
            small = os.path.join(ht.ctx.tmp, "small.folded")
            with open(small, "w") as f:
                f.write("main;a 5\n")
            r = ctl("upload", "--service", "app", small, srv=srv)
            self.assertEqual(r.returncode, 3, r.stderr)
            self.assertIn("unauthenticated", r.stderr)
            r = ctl("--tenant", "team-a", "upload", "--service", "app", small, srv=srv)
            self.assertEqual(r.returncode, 0, r.stderr)
            q = CPU + '{service_name="app"}'
            self.assertEqual(ctl_json("--tenant", "team-a", "query", "top", q, *RANGE, srv=srv)["total"], 5 * 10000000)
            self.assertEqual(ctl_json("--tenant", "team-b", "query", "top", q, *RANGE, srv=srv)["total"], 0)
            self.assertEqual(ctl_json("--tenant", "team-a|team-b", "query", "top", q, *RANGE, srv=srv)["total"],
                             5 * 10000000)
            big = os.path.join(ht.TESTDATA, "go", "workpool.cpu.000.pb.gz")
            self.assertGreater(os.path.getsize(big), 4096)
            r = ctl("--tenant", "team-a", "upload", "--service", "app", big, srv=srv)
            self.assertEqual(r.returncode, 3, r.stderr)
            self.assertIn("body_too_large", r.stderr)
            self.assertIn("server.max_body_bytes", r.stderr)
        finally:
            srv.kill()

    def test_rpc_port_can_be_turned_off(self):
        srv = ht.Server("ctl-off", os.path.join(ht.ctx.tmp, "ctl-off"), {"server": ['rpc_listen = ""']})
        srv.start()
        try:
            self.assertIsNone(srv.rpc_port)
            self.assertNotIn("rpc listening", srv.log())
            st, _, _ = srv.request("GET", "/ready")
            self.assertEqual(st, 200)
        finally:
            srv.kill()


if __name__ == "__main__":
    sys.exit(ht.run_main("integration_hearthctl", [Usage, Queries, Admin], __doc__, setup=setup))
