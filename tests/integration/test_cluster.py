#!/usr/bin/env python3
"""Cluster integration test for hearth (docs/design/cluster.md): three `hearth` processes
configured by hand-written [cluster] sections, pushed to through one node and queried through
another, answer exactly as one node given the same data (flame graph, timeline, label names and
values, series, pprof export); with replication_factor 2 a node killed with SIGKILL during an
ingest loop loses no acknowledged profile, queries keep answering without a partial-result
warning, the node rejoins after a restart and catches up (hinted handoff), after which the other
replica can die and every profile is still there; hints survive a SIGKILL of the node holding
them; a read that really lacks a shard says so in
X-Hearth-Partial; a stack over limits.max_stack_depth gets the single node's 400 from a cluster
distributor; bad [cluster] configurations fail at start naming the key, and a peer that
announces another name or other roles than configured is refused.

usage: test_cluster.py PATH/TO/hearth [NAME_SUBSTRING...]

Environment: HEARTH_TESTDATA, HEARTH_SOURCE_ROOT, HEARTH_TEST_KEEP=1, HEARTH_TEST_JUNIT=FILE.
Every server binds 127.0.0.1 (HTTP on port 0, CAF remoting on a port picked free just before), runs
on its own data dir under a temp dir, and is killed by its pid.
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import hearthtest as ht  # noqa: E402

ht.ensure_system_python("test_cluster")

import gzip  # noqa: E402
import json  # noqa: E402
import subprocess  # noqa: E402
import time  # noqa: E402
import unittest  # noqa: E402
import urllib.parse  # noqa: E402

from hearthtest import error_text  # noqa: E402

CPU = "process_cpu:cpu:nanoseconds:cpu:nanoseconds"
# (service, kind, stem) ingested by the three-node case, through /ingest as pprof.
PROFILES = [("workpool", "go", "workpool.cpu.%03d" % i) for i in range(3)] + \
           [("mapindex", "go", "mapindex.cpu.%03d" % i) for i in range(3)] + \
           [("workpool", "go", "workpool.heap"), ("mapindex", "go", "mapindex.allocs"),
            ("nodeapp", "node", "node.cpu.000"), ("nodeapp", "node", "node.cpu.001")]


def cpu_total(kind, stem):
    return ht.parse_totals(os.path.join(ht.expected_dir(kind, stem), "totals.txt"))[("cpu", "nanoseconds")]


def ingest(server, service, kind, stem, t_s, labels=""):
    with open(ht.testdata_path(kind, stem), "rb") as f:
        body = f.read()
    path = ht.ingest_path("%s{env=test%s}" % (service, labels), t_s)
    return server.request("POST", path, body, {"Content-Type": "application/octet-stream"})


def render(server, query, t0, t1):
    """/pyroscope/render -> (json, headers)."""
    q = urllib.parse.urlencode({"query": query, "from": str(t0), "until": str(t1), "max-nodes": "0"})
    st, h, body = server.request("GET", "/pyroscope/render?" + q)
    if st != 200:
        raise AssertionError("render %s on %s: HTTP %d %s" % (query, server.name, st, error_text(body)))
    return json.loads(body), h


def cpu_ticks(server, selector, t0, t1):
    """Total of the CPU flame graph and the X-Hearth-Partial header (or None)."""
    d, h = render(server, CPU + selector, t0, t1)
    return d["flamebearer"]["numTicks"], h.get("x-hearth-partial")


def status(server):
    st, _, body = server.request("GET", "/cluster/status")
    assert st == 200, (st, body)
    return json.loads(body)


def node_row(server, name):
    for n in status(server)["nodes"]:
        if n["name"] == name:
            return n
    raise AssertionError("no node %s in the status of %s" % (name, server.name))


def wait_for(what, fn, timeout=30):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = fn()
        if last:
            return last
        time.sleep(0.1)
    raise AssertionError("timed out waiting for %s (last: %r)" % (what, last))


def wait_reachable(server, name):
    """Waits until `server` sees peer `name` alive, connected and caught up: the state a read
    needs to use it (a machine-wide stall can leave a peer suspect, or its connection being
    re-established, for a heartbeat or two after it was last seen so)."""
    wait_for("%s reaching %s" % (server.name, name),
             lambda: (lambda r: r["state"] == "alive" and r["connected"] and not r["behind"])(node_row(server, name)))


def shard_has_data(server, shard, tenant="anonymous"):
    """True when the node's partition of the tenant shard holds any bytes (a node creates every
    shard's partition of a tenant it writes to, so an empty one may exist on a non-replica)."""
    root = os.path.join(server.data_dir, tenant, "shard-%d" % shard)
    return any(os.path.getsize(os.path.join(d, f)) > 0 for d, _, fs in os.walk(root) for f in fs)


def pprof_canonical(body):
    """A pprof's samples as sorted (stack of function names, values) pairs (ids differ by merge order)."""
    p = ht.ctx.pb.profile.Profile()
    p.ParseFromString(body)
    strings = list(p.string_table)
    funcs = {f.id: strings[f.name] for f in p.function}
    locs = {l.id: tuple(funcs[ln.function_id] for ln in l.line) for l in p.location}
    acc = {}
    for s in p.sample:
        stack = tuple(f for lid in s.location_id for f in locs[lid])
        acc[stack] = tuple(a + b for a, b in zip(acc.get(stack, (0,) * len(s.value)), s.value))
    types = [(strings[t.type], strings[t.unit]) for t in p.sample_type]
    return types, sorted(acc.items())


# ------------------------------------------------------------------------------------------------
# Configuration


class TestConfig(unittest.TestCase):
    def run_config(self, text):
        path = os.path.join(ht.ctx.tmp, "bad-%d.toml" % abs(hash(text)))
        with open(path, "w") as f:
            f.write('[server]\nhttp_listen = "127.0.0.1:0"\n[storage]\npath = "%s"\n%s' % (
                os.path.join(ht.ctx.tmp, "bad-data"), text))
        return subprocess.run([ht.ctx.hearth, "--config", path], capture_output=True, text=True, timeout=20)

    def test_bad_cluster_configs_fail_at_start_naming_the_key(self):
        base = '[cluster]\nnode = "a"\nlisten = "127.0.0.1:%d"\n' % ht.free_port()
        cases = [
            (base + 'roles = ["ingester", "gateway"]\npeers = []\n',
             'cluster.roles: unknown role "gateway"'),
            (base + 'peers = [ { name = "b" } ]\n', 'cluster.peers[0].address: required: peer "b" has no address'),
            (base + 'peers = [ { name = "a", address = "127.0.0.1:1" } ]\n', "cluster.peers[0].name: lists this node itself"),
            (base + 'peers = [ { name = "b", address = "127.0.0.1:1" }, { name = "b", address = "127.0.0.1:2" } ]\n',
             'cluster.peers[1].name: duplicate node name "b"'),
            (base + 'replication_factor = 3\npeers = [ { name = "b", address = "127.0.0.1:1" } ]\n',
             "cluster.replication_factor: 3 exceeds the 2 ingester node(s) configured"),
            (base + 'peers = [ { name = "b", address = "127.0.0.1:1", roles = ["querier", "janitor"] } ]\n',
             'cluster.peers[0].roles: unknown role "janitor"'),
            (base + 'peers = [ { name = "b", address = "127.0.0.1:1", zone = "x" } ]\n', "cluster.peers[0].zone: unknown key"),
            ('[cluster]\nlisten = "127.0.0.1:1"\n', "cluster.node: required"),
            (base + 'replication_factor = 2\nwrite_quorum = 3\npeers = [ { name = "b", address = "127.0.0.1:1" } ]\n',
             "cluster.write_quorum: must not exceed replication_factor"),
        ]
        for text, want in cases:
            r = self.run_config(text)
            self.assertEqual(r.returncode, 2, (text, r.stdout, r.stderr))
            self.assertIn(want, r.stderr, text)

    def test_print_config_shows_the_cluster_and_no_cluster_is_a_single_node(self):
        port = ht.free_port()
        path = os.path.join(ht.ctx.tmp, "print.toml")
        with open(path, "w") as f:
            f.write('[cluster]\nnode = "a"\nlisten = "127.0.0.1:%d"\nreplication_factor = 2\n'
                    'peers = [ { name = "b", address = "127.0.0.1:1", roles = ["ingester"] } ]\n' % port)
        out = subprocess.run([ht.ctx.hearth, "--config", path, "--print-config"], capture_output=True, text=True,
                             timeout=20)
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertIn("[cluster]", out.stdout)
        self.assertIn("write_quorum = 2", out.stdout)
        self.assertIn('{ name = "b", address = "127.0.0.1:1", roles = ["ingester"] }', out.stdout)
        plain = subprocess.run([ht.ctx.hearth, "--print-config"], capture_output=True, text=True, timeout=20)
        self.assertNotIn("[cluster]", plain.stdout)

    def test_a_peer_announcing_another_name_or_other_roles_is_refused(self):
        # c and d are configured as each other's peers; c calls d "node-x", and d expects c to be
        # a querier only. Neither accepts the other, and each says why in its log.
        pc, pd = ht.free_port(), ht.free_port()
        c = ht.Server("refuse-c", os.path.join(ht.ctx.tmp, "refuse-c"), {"cluster": [
            'node = "node-c"', 'listen = "127.0.0.1:%d"' % pc, 'heartbeat_interval = "1s"', 'suspect_after = "2s"',
            'peers = [ { name = "node-x", address = "127.0.0.1:%d" } ]' % pd]})
        d = ht.Server("refuse-d", os.path.join(ht.ctx.tmp, "refuse-d"), {"cluster": [
            'node = "node-d"', 'listen = "127.0.0.1:%d"' % pd, 'heartbeat_interval = "1s"', 'suspect_after = "2s"',
            'peers = [ { name = "node-c", address = "127.0.0.1:%d", roles = ["querier"] } ]' % pc]})
        ht.start_all([c, d])
        wait_for("c's refusal", lambda: 'announced name "node-d" but cluster.peers names it "node-x"' in c.log())
        wait_for("d's refusal", lambda: 'node "node-c" announces roles [compactor,distributor,ingester,querier,store] '
                                        'but cluster.peers configures [querier]' in d.log())
        self.assertNotEqual(node_row(c, "node-x")["state"], "alive")
        self.assertNotEqual(node_row(d, "node-c")["state"], "alive")
        c.kill()
        d.kill()


# ------------------------------------------------------------------------------------------------
# Three nodes vs one


class TestThreeNodes(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.single = ht.Server("single", os.path.join(ht.ctx.tmp, "single"), {"storage": ["shards = 4"]})
        cls.single.start()
        cls.nodes = ht.cluster_servers("three", ["node-a", "node-b", "node-c"], replication_factor=2)
        ht.start_all(cls.nodes)
        cls.a, cls.b, cls.c = cls.nodes
        now = int(time.time())
        cls.t0, cls.t1 = now - 3600, now + 60
        for i, (svc, kind, stem) in enumerate(PROFILES):
            t = now - 1800 + 60 * i
            for srv in (cls.a, cls.single):
                st, _, body = ingest(srv, svc, kind, stem, t)
                assert st == 200, (srv.name, stem, st, body)

    @classmethod
    def tearDownClass(cls):
        for s in cls.nodes + [cls.single]:
            s.kill()

    def test_flame_graphs_and_timelines_equal_a_single_node(self):
        for q in (CPU + "{}", CPU + '{service_name="workpool"}', "memory:alloc_space:bytes:space:bytes{}",
                  "process_cpu:samples:count:cpu:nanoseconds{}", "wall:wall:nanoseconds:wall:nanoseconds{}"):
            want, _ = render(self.single, q, self.t0, self.t1)
            self.assertGreater(want["flamebearer"]["numTicks"], 0, q)
            for srv in (self.b, self.c, self.a):
                got, h = render(srv, q, self.t0, self.t1)
                self.assertEqual(got["flamebearer"], want["flamebearer"], (q, srv.name))
                self.assertEqual(got["timeline"], want["timeline"], (q, srv.name))
                self.assertIsNone(h.get("x-hearth-partial"), (q, srv.name))
        total = sum(cpu_total(k, s) for _, k, s in PROFILES if ".cpu." in s and k == "go")
        ticks, _ = cpu_ticks(self.b, '{service_name=~"workpool|mapindex"}', self.t0, self.t1)
        self.assertEqual(ticks, total)

    def test_labels_series_and_pprof_equal_a_single_node(self):
        win = {"start": str(self.t0 * 1000), "end": str(self.t1 * 1000)}
        calls = [
            ("/querier.v1.QuerierService/LabelNames", dict(matchers=["{}"], **win)),
            ("/querier.v1.QuerierService/LabelValues", dict(name="service_name", matchers=["{}"], **win)),
            ("/querier.v1.QuerierService/ProfileTypes", win),
            ("/querier.v1.QuerierService/Series", dict(matchers=['{service_name="nodeapp"}'], **win)),
            ("/querier.v1.QuerierService/SelectSeries",
             dict(profileTypeID=CPU, labelSelector="{}", groupBy=["service_name"], step=60, **win)),
        ]
        for method, msg in calls:
            st, _, want = self.single.connect_json(method, msg)
            self.assertEqual(st, 200, (method, error_text(want)))
            for srv in (self.b, self.c):
                st, h, got = srv.connect_json(method, msg)
                self.assertEqual(st, 200, (method, srv.name, error_text(got)))
                if method.endswith("Series"):  # the order of label sets is not specified
                    key = "labelsSet" if method.endswith("/Series") else "series"
                    canon = lambda b: sorted(json.dumps(x, sort_keys=True) for x in json.loads(b).get(key, []))
                    self.assertEqual(canon(got), canon(want), (method, srv.name))
                else:
                    self.assertEqual(json.loads(got), json.loads(want), (method, srv.name))
                self.assertIsNone(h.get("x-hearth-partial"))
        req = ht.ctx.pb.querier.SelectMergeProfileRequest(
            profile_typeID=CPU, label_selector="{}", start=self.t0 * 1000, end=self.t1 * 1000)
        st, _, want = self.single.connect_proto("/querier.v1.QuerierService/SelectMergeProfile", req)
        self.assertEqual(st, 200, error_text(want))
        st, _, got = self.b.connect_proto("/querier.v1.QuerierService/SelectMergeProfile", req)
        self.assertEqual(st, 200, error_text(got))
        self.assertEqual(pprof_canonical(got), pprof_canonical(want))

    def test_deep_stacks_are_refused_as_by_a_single_node(self):
        """A stack one frame over the default limits.max_stack_depth (1000) is refused by a
        cluster distributor with the single node's status and message, and nothing is stored."""
        p = ht.ctx.pb.profile.Profile()
        p.string_table.extend(["", "samples", "count", "cpu", "nanoseconds"])
        p.sample_type.add(type=1, unit=2)
        p.sample_type.add(type=3, unit=4)
        p.period_type.type, p.period_type.unit, p.period = 3, 4, 10_000_000
        p.time_nanos = (self.t0 + 600) * 10**9
        for i in range(1, 1002):
            p.string_table.append("frame%d" % i)
            p.function.add(id=i, name=len(p.string_table) - 1)
            p.location.add(id=i).line.add(function_id=i)
        p.sample.add(location_id=list(range(1000, 0, -1)), value=[1, 10_000_000])
        p.sample.add(location_id=list(range(1001, 0, -1)), value=[1, 10_000_000])
        body = gzip.compress(p.SerializeToString())
        path = ht.ingest_path("deep-cluster{}", self.t0 + 600)
        want = "sample 1 has a stack of 1001 frames, over limits.max_stack_depth = 1000"
        answers = []
        for srv in (self.single, self.b):
            st, _, b = srv.request("POST", path, body, {"Content-Type": "application/octet-stream"})
            self.assertEqual(st, 400, (srv.name, error_text(b)))
            self.assertIn(want, json.loads(b)["message"])
            answers.append(b)
            req = ht.push_request_proto([("__name__", "process_cpu"), ("service_name", "deep-cluster")], body,
                                        ht.new_id())
            st, _, b = srv.connect_proto("/push.v1.PusherService/Push", req)
            self.assertEqual((st, json.loads(b)["code"]), (400, "invalid_argument"), (srv.name, error_text(b)))
            self.assertIn("series 0 sample 0: " + want, json.loads(b)["message"])
        self.assertEqual(answers[0], answers[1])
        for srv in (self.a, self.c):
            self.assertNotIn("deep-cluster",
                             ht.label_values(srv, "service_name", "{}", self.t0 * 1000, self.t1 * 1000))

    def test_each_shard_is_stored_on_replication_factor_nodes(self):
        # Three services: at most three of the four shards got series.
        used = 0
        for shard in range(4):
            holders = [n.name for n in self.nodes if shard_has_data(n, shard)]
            self.assertIn(len(holders), (0, 2), (shard, holders))
            used += len(holders) == 2
            if holders:
                self.assertTrue(shard_has_data(self.single, shard), shard)
        self.assertGreaterEqual(used, 2)

    def test_status_metrics_and_ready(self):
        s = status(self.b)
        self.assertEqual(s["node"], "node-b")
        self.assertTrue(s["ready"])
        self.assertEqual(s["replicationFactor"], 2)
        self.assertEqual(s["writeQuorum"], 2)
        self.assertEqual(sorted(n["name"] for n in s["nodes"]), ["node-a", "node-b", "node-c"])
        for n in s["nodes"]:
            self.assertEqual(n["state"], "alive", n)
            self.assertEqual(n["tokens"], 128, n)
            self.assertEqual(sorted(n["roles"]), ["compactor", "distributor", "ingester", "querier", "store"])
        self.assertAlmostEqual(sum(n["ringShare"] for n in s["nodes"]), 1.0, places=6)
        st, _, text = self.b.request("GET", "/cluster/status?format=text")
        self.assertEqual(st, 200)
        self.assertIn(b"node node-b: ready", text)
        self.assertIn(b"node-c", text)
        st, _, body = self.b.request("GET", "/metrics")
        m = body.decode()
        self.assertIn('hearth_cluster_peers{state="alive"} 2', m)
        self.assertIn('hearth_cluster_ring_ownership_ratio{node="node-a"}', m)
        self.assertIn("hearth_cluster_hint_bytes 0", m)
        # The operators' tool over Cap'n Proto RPC: the same membership as /cluster/status.
        ctl = os.environ.get("HEARTHCTL") or os.path.join(os.path.dirname(ht.ctx.hearth), "hearthctl")
        r = subprocess.run([ctl, "--server", "127.0.0.1:%d" % self.b.rpc_port, "--json", "status"],
                           capture_output=True, text=True, timeout=30)
        self.assertEqual(r.returncode, 0, r.stderr)
        j = json.loads(r.stdout)
        self.assertEqual(j["self"]["name"], "node-b")
        self.assertEqual(j["self"]["clusterAddress"], self.b.cluster_address)
        self.assertEqual(sorted(p["name"] for p in j["peers"]), ["node-a", "node-c"])
        for p in j["peers"]:
            self.assertEqual(p["state"], "alive", p)
            self.assertFalse(p["behind"], p)
        self.assertAlmostEqual(j["self"]["ringShare"] + sum(p["ringShare"] for p in j["peers"]), 1.0, places=6)
        for cmd in (["status"], ["cluster", "status"]):
            r = subprocess.run([ctl, "--server", "127.0.0.1:%d" % self.b.rpc_port] + cmd,
                               capture_output=True, text=True, timeout=30)
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertRegex(r.stdout, r"node-b \(this\)\s+ready")
            self.assertRegex(r.stdout, r"node-c\s+alive")
        r = subprocess.run([ctl, "--server", "127.0.0.1:%d" % self.b.rpc_port, "cluster", "ring"],
                           capture_output=True, text=True, timeout=30)
        self.assertEqual(r.returncode, 2, "an unknown subcommand is a usage error")
        self.assertIn("unknown cluster subcommand 'ring'", r.stderr)
        st, _, body = self.single.request("GET", "/cluster/status")
        self.assertEqual(st, 404)
        st, _, body = self.single.request("GET", "/metrics")
        self.assertNotIn(b"hearth_cluster_", body)


    def test_z_majority_quorum_refuses_writes_a_dead_replica_would_miss(self):
        """Last of the class (it kills node-c): with the default write_quorum (2 of 2), a shard
        whose replicas include the dead node is refused with 503 naming it; others still work."""
        self.c.kill()
        now = int(time.time())
        refused = []
        for i in range(16):
            st, _, body = ingest(self.a, "quorum%d" % i, "go", "workpool.cpu.000", now - 30)
            if st != 200:
                self.assertEqual(st, 503, error_text(body))
                refused.append(error_text(body))
        self.assertTrue(refused, "some of 16 series hit a shard replicated on node-c")
        # (Whether a shard is replicated on node-a and node-b only depends on the ring: with four
        # shards there may be none, so accepted writes are not required.)
        for msg in refused:
            self.assertIn("write quorum not reached", msg)
            self.assertIn("node-c", msg)
        st, _, body = self.a.request("GET", "/metrics")
        self.assertIn("hearth_cluster_write_quorum_failures_total %d" % len(refused), body.decode())
        st, _, body = self.b.request("GET", "/ready")
        self.assertEqual(st, 200, "two live ingesters still make a write quorum of 2")


# ------------------------------------------------------------------------------------------------
# Node loss, rejoin, catch-up


class TestNodeLoss(unittest.TestCase):
    def test_kill_during_ingest_rejoin_catch_up_then_lose_the_other_replica(self):
        # write_quorum 1: a write is acknowledged once one replica has it in an fsynced WAL, and the
        # replica that missed it gets it from the hinted-handoff queue when it is back.
        nodes = ht.cluster_servers("loss", ["node-a", "node-b", "node-c"], replication_factor=2, write_quorum=1)
        ht.start_all(nodes)
        a, b, c = nodes
        now = int(time.time())
        t0, t1 = now - 3600, now + 60
        stems = ["workpool.cpu.%03d" % i for i in range(3)] + ["mapindex.cpu.%03d" % i for i in range(3)]
        acked = 0
        n_acked = 0
        for i in range(36):
            if i == 12:
                c.kill()  # SIGKILL
            stem = stems[i % len(stems)]
            st, _, body = ingest(a, "loop", "go", stem, now - 1200 + i, labels=",i=%d" % i)
            self.assertEqual(st, 200, (i, error_text(body)))
            acked += cpu_total("go", stem)
            n_acked += 1
            if i % 6 == 5:
                started = time.monotonic()
                ticks, partial = cpu_ticks(b, '{service_name="loop"}', t0, t1)
                self.assertLess(time.monotonic() - started, 10, "a query waited on a dead node")
                self.assertEqual(ticks, acked, "after %d acknowledged profiles" % n_acked)
                self.assertIsNone(partial, "replicas covered every shard")
        self.assertEqual(node_row(a, "node-c")["state"] in ("suspect", "down"), True)
        held = node_row(a, "node-c")["hintsHeldFor"]
        self.assertGreater(held, 0, "node-a kept the writes node-c missed")

        c.start()  # same data dir, same config
        wait_for("node-c alive and caught up on node-a and node-b, and node-c knowing it",
                 lambda: all(node_row(s, "node-c")["state"] == "alive" and not node_row(s, "node-c")["behind"]
                             and node_row(s, "node-c")["hintsHeldFor"] == 0 for s in (a, b))
                 and not node_row(c, "node-c")["behind"])
        self.assertIn("peer node-c restarted", a.all_logs())
        self.assertIn("peer node-c caught up", a.all_logs())
        st, _, body = a.request("GET", "/metrics")
        self.assertIn("hearth_cluster_hints_replayed_total %d" % held, body.decode())
        ticks, partial = cpu_ticks(c, '{service_name="loop"}', t0, t1)
        self.assertEqual((ticks, partial), (acked, None))

        # The other replica of node-c's shards dies: node-c alone must still answer them.
        b.kill()
        for srv, other in ((a, "node-c"), (c, "node-a")):
            wait_reachable(srv, other)
            started = time.monotonic()
            ticks, partial = cpu_ticks(srv, '{service_name="loop"}', t0, t1)
            self.assertLess(time.monotonic() - started, 10, "a query waited on a dead node")
            self.assertEqual((ticks, partial), (acked, None), srv.name)

        # Now node-c dies too: the shards whose replicas are {node-b, node-c} (those node-a holds
        # no data of) are not readable, and the answer says which nodes it lacks.
        c.kill()
        ticks, partial = cpu_ticks(a, '{service_name="loop"}', t0, t1)
        if all(shard_has_data(a, k) for k in range(4)):
            self.assertEqual((ticks, partial), (acked, None), "node-a holds a replica of every shard")
        else:
            self.assertIsNotNone(partial, "shards without a live replica must be reported")
            self.assertTrue(set(partial.split(",")) <= {"node-b", "node-c"}, partial)
            self.assertLess(ticks, acked)
        st, _, body = a.request("GET", "/ready")
        self.assertEqual(st, 200, "node-a alone still holds a write quorum of 1")
        for s in nodes:
            s.kill()


class TestHintsSurviveRestart(unittest.TestCase):
    def test_hints_are_kept_on_disk_across_a_restart_of_their_holder(self):
        nodes = ht.cluster_servers("hints", ["node-a", "node-b", "node-c"], replication_factor=2, write_quorum=1)
        ht.start_all(nodes)
        a, b, c = nodes
        now = int(time.time())
        t0, t1 = now - 3600, now + 60
        c.kill()
        acked = 0
        for i in range(12):
            stem = "workpool.cpu.%03d" % (i % 3)
            st, _, body = ingest(a, "hinted", "go", stem, now - 600 + i, labels=",i=%d" % i)
            self.assertEqual(st, 200, error_text(body))
            acked += cpu_total("go", stem)
        held = node_row(a, "node-c")["hintsHeldFor"]
        self.assertGreater(held, 0)
        a.kill()  # SIGKILL: the hints must come back from node-a's data dir
        a.start()
        self.assertIn("loaded %d hinted write(s) for node-c" % held, a.log())
        self.assertEqual(node_row(a, "node-c")["hintsHeldFor"], held)
        c.start()
        # Every node learns from heartbeats that nobody holds hints for node-c any more.
        wait_for("node-c caught up", lambda: node_row(a, "node-c")["state"] == "alive"
                 and node_row(a, "node-c")["hintsHeldFor"] == 0
                 and not any(node_row(s, "node-c")["behind"] for s in (a, b, c)))
        st, _, body = a.request("GET", "/metrics")
        self.assertIn("hearth_cluster_hints_replayed_total %d" % held, body.decode())
        hint_files = [f for _, _, fs in os.walk(os.path.join(a.data_dir, "cluster+hints")) for f in fs]
        self.assertEqual(hint_files, [], "delivered hints are removed")
        b.kill()
        for srv, other in ((a, "node-c"), (c, "node-a")):
            wait_reachable(srv, other)
            ticks, partial = cpu_ticks(srv, '{service_name="hinted"}', t0, t1)
            self.assertEqual((ticks, partial), (acked, None), srv.name)
        for s in nodes:
            s.kill()


class TestSharedStorage(unittest.TestCase):
    def test_a_dead_nodes_blocks_are_compacted_by_one_owner_and_served_after_its_restart(self):
        # Every node's data directory is <shared>/<node>. node-a never compacts by itself here
        # (its interval is an hour), so its sealed level-0 blocks wait; once it is down, node-b
        # and node-c take its partitions over, each partition by exactly one of them.
        shared = os.path.join(ht.ctx.tmp, "shared")
        names = ["node-a", "node-b", "node-c"]
        nodes = ht.cluster_servers("shared", names, replication_factor=3, write_quorum=1,
                                   extra={n: ['shared_path = "%s"' % shared] for n in names})
        for srv, n in zip(nodes, names):
            srv.data_dir = os.path.join(shared, n)
            srv.sections["storage"].append('head_max_age = "1s"')
            srv.sections["compaction"] = ['interval = "%s"' % ("1h" if n == "node-a" else "1s"),
                                          'l1_window = "10s"', 'l2_window = "1h"', 'grace = "0s"',
                                          # replaced files go 1 s after a swap: the waits
                                          # below look at the directories, and a query racing
                                          # a compaction still finds its files
                                          "rollups = false", 'deletion_delay = "1s"']
        ht.start_all(nodes)
        a, b, c = nodes
        now = int(time.time())
        t0, t1 = now - 3600, now + 60
        acked = 0
        for i in range(24):  # spread over 4 minutes: several level-1 windows
            stem = "workpool.cpu.%03d" % (i % 3)
            st, _, body = ingest(b, "shared", "go", stem, now - 600 + 10 * i, labels=",i=%d" % i)
            self.assertEqual(st, 200, error_text(body))
            acked += cpu_total("go", stem)
            if i % 8 == 7:
                time.sleep(1.5)  # let the heads seal: several level-0 blocks per partition

        def level_files(node, level):
            root = os.path.join(shared, node, "anonymous")
            return sorted(os.path.join(d, f) for d, _, fs in os.walk(root) for f in fs
                          if f.startswith("L%d-" % level) and f.endswith(".hseg"))

        def compacted(node):  # level 1, or level 2 already (open L2 windows take closed L1 windows)
            return level_files(node, 1) + level_files(node, 2)

        # Each node's partitions compact on their own schedule, and an L1 block may have gone on
        # to level 2 before another partition's L0 blocks went: any compacted level counts.
        wait_for("node-b and node-c compacting their own level-0 blocks",
                 lambda: compacted("node-b") and compacted("node-c") and not level_files("node-b", 0))
        a_l0 = wait_for("node-a's heads sealed", lambda: len(level_files("node-a", 0)) >= 4 and level_files("node-a", 0))
        lock = os.path.join(shared, "node-a", "anonymous", "shard-0", "owner.lock")
        with open(lock) as f:
            self.assertEqual(f.read().strip(), "node-a pid %d" % a.proc.pid)
        self.assertNotIn("node=node-a", b.log() + c.log(), "nobody touches a live node's partitions")

        a.kill()  # SIGKILL: the kernel drops its locks
        wait_for("node-a's level-0 blocks compacted by the others",
                 lambda: not level_files("node-a", 0) and compacted("node-a"), timeout=60)
        # Each of node-a's partitions went to exactly one owner.
        owners = {}
        for srv in (b, c):
            for line in srv.log().splitlines():
                if "node=node-a " in line and " compacted " in line:
                    shard = line.split("shard=")[1].split()[0]
                    owners.setdefault(shard, set()).add(srv.name)
        self.assertTrue(owners, "some partition of node-a was compacted")
        for shard, who in owners.items():
            self.assertEqual(len(who), 1, "shard %s compacted by %s" % (shard, who))
        adopted = 0
        for srv in (b, c):
            st, _, body = srv.request("GET", "/metrics")
            for line in body.decode().splitlines():
                if line.startswith("hearth_cluster_adopted_partitions "):
                    adopted += int(float(line.split()[1]))
        self.assertEqual(adopted, len(os.listdir(os.path.join(shared, "node-a", "anonymous"))),
                         "every partition of node-a has one owner")
        ticks, partial = cpu_ticks(b, '{service_name="shared"}', t0, t1)
        self.assertEqual((ticks, partial), (acked, None))

        # node-a comes back over the compacted files: it takes its locks again, and alone (the
        # others killed) it answers every acknowledged profile exactly once.
        a.start()
        wait_for("node-a caught up", lambda: not node_row(b, "node-a")["behind"]
                 and node_row(b, "node-a")["state"] == "alive")
        with open(lock) as f:
            self.assertEqual(f.read().strip(), "node-a pid %d" % a.proc.pid)
        b.kill()
        c.kill()
        ticks, partial = cpu_ticks(a, '{service_name="shared"}', t0, t1)
        self.assertEqual((ticks, partial), (acked, None))
        self.assertFalse(set(a_l0) & set(level_files("node-a", 0)), "the compacted inputs stay gone")
        for s in nodes:
            s.kill()


if __name__ == "__main__":
    sys.exit(ht.run_main("integration_cluster", [TestConfig, TestThreeNodes, TestNodeLoss, TestHintsSurviveRestart,
                                                 TestSharedStorage], __doc__))
