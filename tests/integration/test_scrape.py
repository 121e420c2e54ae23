#!/usr/bin/env python3
"""Pull mode end to end: a real Go program serving net/http/pprof (tests/scrape/target.go, built
here with Debian's golang-go and started on 127.0.0.1) is scraped by a real hearth configured with
a [[scrape]] job; every profile kind (cpu, heap, goroutine, mutex, block) must come back through the
query API with the job's labels and the program's functions, cumulative profiles must be stored as
deltas, per-target health must be in /metrics (also for a target that is down), and a bad
[[scrape]] section must stop the server at start with a message naming it.

usage: test_scrape.py PATH/TO/hearth [NAME_SUBSTRING...]
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import hearthtest as ht  # noqa: E402

ht.ensure_system_python("test_scrape")

import gzip  # noqa: E402
import http.client  # noqa: E402
import json  # noqa: E402
import re  # noqa: E402
import signal  # noqa: E402
import socket  # noqa: E402
import subprocess  # noqa: E402
import time  # noqa: E402
import unittest  # noqa: E402

TARGET_SRC = os.path.join(ht.SOURCE_ROOT, "tests", "scrape", "target.go")
SCRAPES_WANTED = 4  # per profile kind, before the checks run
WAIT = 60  # seconds at most for them


class State:
    target = None  # the Go program
    target_addr = None
    dead_addr = None
    srv = None
    problem = None
    t0_ms = 0


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def scrape_metrics(srv):
    """{(metric, profile, instance): value} of the hearth_scrape* series."""
    st, _, body = srv.request("GET", "/metrics")
    out = {}
    for m in re.finditer(r'^(hearth_scrape\w*)\{([^}]*)\}\s+(\S+)', body.decode(), re.M):
        labels = dict(re.findall(r'(\w+)="([^"]*)"', m.group(2)))
        out[(m.group(1), labels.get("profile"), labels.get("instance"))] = float(m.group(3))
    return out


def setup():
    exe = os.path.join(ht.ctx.tmp, "target")
    env = dict(os.environ, GOCACHE=os.path.join(ht.ctx.tmp, "gocache"), GO111MODULE="off",
               GOPATH=os.path.join(ht.ctx.tmp, "gopath"))
    try:
        b = subprocess.run(["go", "build", "-o", exe, TARGET_SRC], env=env, capture_output=True, text=True, timeout=300)
    except FileNotFoundError:
        State.problem = "go not found: tools/deps.sh installs golang-go"
        return 0
    if b.returncode != 0:
        State.problem = "go build failed:\n" + b.stderr[-3000:]
        return 0
    log = open(os.path.join(ht.ctx.tmp, "target.log"), "wb")
    State.target = subprocess.Popen([exe, "127.0.0.1:0"], stdout=subprocess.PIPE, stderr=log, stdin=subprocess.DEVNULL)
    line = State.target.stdout.readline().decode()
    m = re.search(r"listening on (127\.0\.0\.1:\d+)", line)
    if not m:
        State.problem = "the Go target did not start: %r" % line
        return 0
    State.target_addr = m.group(1)
    State.dead_addr = "127.0.0.1:%d" % free_port()  # nothing listens there
    State.t0_ms = int(time.time() * 1000) - 10_000
    State.srv = ht.Server("scrape", os.path.join(ht.ctx.tmp, "scrape-data"), extra_toml=(
        '[[scrape]]\njob = "gotarget"\ntargets = ["%s"]\ninterval = "2s"\nlabels = { env = "test" }\n\n'
        '[[scrape]]\njob = "down"\ntargets = ["%s"]\ninterval = "1s"\nprofiles = ["heap"]\n'
        % (State.target_addr, State.dead_addr)))
    State.srv.start()
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        m = scrape_metrics(State.srv)
        done = [m.get(("hearth_scrapes_total", p, State.target_addr), 0) for p in ("cpu", "heap", "goroutine", "mutex", "block")]
        if min(done) >= SCRAPES_WANTED:
            break
        time.sleep(0.5)
    return 0


def teardown():
    if State.target is not None and State.target.poll() is None:
        os.kill(State.target.pid, signal.SIGKILL)
        State.target.wait(timeout=10)


def query(method, msg):
    st, _, body = State.srv.request("POST", "/querier.v1.QuerierService/" + method, json.dumps(msg).encode(),
                                    {"Content-Type": "application/json"})
    if st != 200:
        raise AssertionError("%s: HTTP %d %s" % (method, st, ht.error_text(body)))
    return json.loads(body)


def window():
    return {"start": str(State.t0_ms), "end": str(int(time.time() * 1000) + 10_000)}


class Scrape(unittest.TestCase):
    def setUp(self):
        if State.problem:
            self.fail(State.problem)

    def test_every_profile_kind_is_scraped_and_healthy(self):
        m = scrape_metrics(State.srv)
        for p in ("cpu", "heap", "goroutine", "mutex", "block"):
            self.assertGreaterEqual(m.get(("hearth_scrapes_total", p, State.target_addr), 0), SCRAPES_WANTED, p)
            self.assertEqual(m.get(("hearth_scrape_up", p, State.target_addr)), 1.0, p)
            self.assertGreater(m.get(("hearth_scrape_last_success_timestamp_seconds", p, State.target_addr), 0), 0, p)
        self.assertGreaterEqual(m.get(("hearth_scrape_duration_seconds", "cpu", State.target_addr), 0), 1.0,
                                "a cpu scrape takes cpu_seconds (interval - 1 = 1 s)")

    def test_a_target_that_is_down_is_reported_not_fatal(self):
        m = scrape_metrics(State.srv)
        self.assertEqual(m.get(("hearth_scrape_up", "heap", State.dead_addr)), 0.0)
        self.assertGreaterEqual(m.get(("hearth_scrape_failures_total", "heap", State.dead_addr), 0), 1)
        st, _, _ = State.srv.request("GET", "/ready")
        self.assertEqual(st, 200)
        self.assertIn("cannot connect to " + State.dead_addr, State.srv.log())

    def test_profile_types_labels_and_functions(self):
        ids = {t["ID"] for t in query("ProfileTypes", window()).get("profileTypes", [])}
        want = {
            "process_cpu:cpu:nanoseconds:cpu:nanoseconds": "hearthScrapeBurn",
            "memory:alloc_space:bytes:space:bytes": "hearthScrapeAlloc",
            "memory:inuse_space:bytes:space:bytes": "hearthScrapeAlloc",
            "goroutines:goroutine:count:goroutine:count": "hearthScrapeContend",
            "mutex:contentions:count:contentions:count": "hearthScrapeContend",
            "block:delay:nanoseconds:contentions:count": "hearthScrapeContend",
        }
        for ptype, fn in want.items():
            self.assertIn(ptype, ids)
            j = query("SelectMergeStacktraces", dict(profileTypeID=ptype, labelSelector='{service_name="gotarget", env="test"}',
                                                     maxNodes=str(ht.MAX_NODES), **window()))
            names = j.get("flamegraph", {}).get("names", [])
            self.assertTrue(any(fn in n for n in names), "%s has no %s: %s" % (ptype, fn, names[:15]))
        for name, value in (("job", "gotarget"), ("instance", State.target_addr), ("env", "test")):
            j = query("LabelValues", dict(name=name, matchers=['{service_name="gotarget"}'], **window()))
            self.assertEqual(j.get("names"), [value], name)

    def test_cumulative_profiles_are_stored_as_deltas(self):
        # What the target has counted since it started, read after the scrapes: the stored deltas
        # (scrapes after the first, which only sets the baseline) must add up to less than that.
        # Stored cumulative values would add up to several times as much.
        host, port = State.target_addr.split(":")
        conn = http.client.HTTPConnection(host, int(port), timeout=30)
        conn.request("GET", "/debug/pprof/mutex")
        raw = conn.getresponse().read()
        conn.close()
        p = ht.ctx.pb.profile.Profile()
        p.ParseFromString(gzip.decompress(raw))
        idx = [ht_str(p, st.type) for st in p.sample_type].index("contentions")
        cumulative = sum(s.value[idx] for s in p.sample)
        j = query("SelectMergeStacktraces", dict(profileTypeID="mutex:contentions:count:contentions:count",
                                                 labelSelector='{service_name="gotarget"}', maxNodes=str(ht.MAX_NODES), **window()))
        stored = int(j["flamegraph"]["total"])
        self.assertGreater(stored, 0)
        self.assertLess(stored, cumulative, "stored %d vs cumulative %d" % (stored, cumulative))

    def test_bad_scrape_config_stops_the_server_with_a_message(self):
        cfg = os.path.join(ht.ctx.tmp, "bad-scrape.toml")
        for text, want in (
            ('[[scrape]]\njob = "x"\ntargets = ["127.0.0.1:1"]\nprofiles = ["cpu", "threads"]\n', "scrape[0].profiles: unknown profile \"threads\""),
            ('[[scrape]]\njob = "x"\ntargets = ["nohostport"]\n', "scrape[0].targets"),
            ('[[scrape]]\ntargets = ["127.0.0.1:1"]\n', "scrape[0].job: required"),
            ('[[scrape]]\njob = "x"\ntargets = ["127.0.0.1:1"]\ninterval = "5s"\ncpu_seconds = 5\n', "scrape[0].cpu_seconds"),
            ('[[scrape]]\njob = "x"\ntargets = ["127.0.0.1:1"]\nlabels = { job = "y" }\n', "scrape[0].labels"),
        ):
            with open(cfg, "w") as f:
                f.write(text)
            out = subprocess.run([ht.ctx.hearth, "--config", cfg], capture_output=True, text=True, timeout=30)
            self.assertEqual(out.returncode, 2, text)
            self.assertIn(want, out.stderr)


def ht_str(p, i):
    return p.string_table[i]


if __name__ == "__main__":
    try:
        rc = ht.run_main("integration_scrape", [Scrape], __doc__, setup=setup)
    finally:
        teardown()
    sys.exit(rc)
