#!/usr/bin/env python3
"""Ingest limits and authentication, end to end against real hearth processes on 127.0.0.1:
per-tenant ingestion rate (bytes/s and profiles/s, with per-tenant overrides), max active series
per tenant, the 429 answers naming the limit and its value, limits.max_stack_depth under both
limits.stack_depth_policy values (400 on /ingest, Push and the RPC upload; or truncation), optional
bearer/basic auth (401 with a challenge, /ready open), and the limits in --print-config (a bad
value: exit 2 naming the key).

usage: test_limits.py PATH/TO/hearth [NAME_SUBSTRING...]
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import hearthtest as ht  # noqa: E402

ht.ensure_system_python("test_limits")

import base64  # noqa: E402
import json  # noqa: E402
import subprocess  # noqa: E402
import time  # noqa: E402
import unittest  # noqa: E402

CPU = "process_cpu:cpu:nanoseconds:cpu:nanoseconds"
GO_CPU = os.path.join(ht.TESTDATA, "go", "workpool.cpu.000.pb.gz")


def profile_bytes():
    with open(GO_CPU, "rb") as fh:
        return fh.read()


def ingest(srv, name, body, headers=None, t_s=None):
    h = {"Content-Type": "application/octet-stream"}
    h.update(headers or {})
    return srv.request("POST", ht.ingest_path(name, t_s or int(time.time())), body, h)


class RateLimits(unittest.TestCase):
    def test_bytes_per_second_is_enforced_per_tenant_with_overrides(self):
        body = profile_bytes()
        n = len(body)
        srv = ht.Server("rate-bytes", os.path.join(ht.ctx.tmp, "rate-bytes"), {
            "server": ["multitenancy = true"],
            # Room for two requests at once, refilled at one request per ~100 s.
            "limits": ['ingestion_rate_bytes = %d' % (n // 100), 'ingestion_burst_bytes = %d' % (2 * n),
                       'per_tenant = { vip = { ingestion_rate_bytes = 0 } }'],
        })
        srv.start()
        try:
            for i in range(2):
                st, _, b = ingest(srv, "app%d{}" % i, body, {"X-Scope-OrgID": "t1"})
                self.assertEqual(st, 200, ht.error_text(b))
            st, h, b = ingest(srv, "app3{}", body, {"X-Scope-OrgID": "t1"})
            self.assertEqual(st, 429, ht.error_text(b))
            msg = json.loads(b)["message"]
            self.assertIn("limits.ingestion_rate_bytes=", msg)
            self.assertIn("'t1'", msg)
            self.assertIsNotNone(h.get("retry-after"))
            # Another tenant has its own bucket; the override makes vip unlimited.
            st, _, b = ingest(srv, "app{}", body, {"X-Scope-OrgID": "t2"})
            self.assertEqual(st, 200, ht.error_text(b))
            for i in range(5):
                st, _, b = ingest(srv, "vip%d{}" % i, body, {"X-Scope-OrgID": "vip"})
                self.assertEqual(st, 200, ht.error_text(b))
            self.assertGreaterEqual(srv.metrics().get("hearth_ingest_rate_limited_total", 0), 1)
        finally:
            srv.kill()

    def test_profiles_per_second(self):
        body = profile_bytes()
        srv = ht.Server("rate-prof", os.path.join(ht.ctx.tmp, "rate-prof"), {
            "limits": ["ingestion_rate_profiles = 1", "ingestion_burst_profiles = 3"],
        })
        srv.start()
        try:
            codes = []
            last = None
            for i in range(6):
                st, _, b = ingest(srv, "p%d{}" % i, body)
                codes.append(st)
                if st != 200:
                    last = b
            # 3 from the burst, at most one refilled during the loop, then 429.
            self.assertGreaterEqual(codes.count(200), 3, codes)
            self.assertLessEqual(codes.count(200), 4, codes)
            self.assertEqual(codes[-1], 429, codes)
            self.assertIn("limits.ingestion_rate_profiles=1/s (burst 3)", json.loads(last)["message"])
            time.sleep(1.2)
            st, _, b = ingest(srv, "later{}", body)
            self.assertEqual(st, 200, "refilled after a second: " + ht.error_text(b))
        finally:
            srv.kill()


class SeriesLimit(unittest.TestCase):
    def test_new_series_over_the_limit_are_refused_existing_ones_accepted(self):
        body = profile_bytes()
        srv = ht.Server("series", os.path.join(ht.ctx.tmp, "series"), {
            "storage": ["shards = 1"],
            # A Go CPU profile is two series (samples/count and cpu/nanoseconds).
            "limits": ["max_series_per_tenant = 4"],
        })
        srv.start()
        try:
            for pod in ("a", "b"):
                st, _, b = ingest(srv, "svc{pod=%s}" % pod, body)
                self.assertEqual(st, 200, ht.error_text(b))
            st, _, b = ingest(srv, "svc{pod=c}", body)
            self.assertEqual(st, 429, ht.error_text(b))
            msg = json.loads(b)["message"]
            self.assertIn("limits.max_series_per_tenant=4", msg)
            self.assertIn("the request adds 2", msg)
            st, _, b = ingest(srv, "svc{pod=a}", body)
            self.assertEqual(st, 200, "an active series is still accepted: " + ht.error_text(b))
            self.assertGreaterEqual(srv.metrics().get("hearth_ingest_series_limited_total", 0), 1)
            # The refused request stored nothing.
            now = int(time.time() * 1000)
            vals = ht.label_values(srv, "pod", "{}", now - 3600_000, now + 60_000)
            self.assertEqual(sorted(vals), ["a", "b"])
            # After a restart the WAL replay counts the same active series.
            srv.kill()
            srv.start()
            st, _, b = ingest(srv, "svc{pod=d}", body)
            self.assertEqual(st, 429, "limit holds after restart: " + ht.error_text(b))
        finally:
            srv.kill()


DEPTH = 8  # workpool.cpu.000 has stacks of up to 19 locations, 36 of exactly 8


def raw_cpu_profile():
    import gzip

    return gzip.decompress(profile_bytes())


def first_too_deep(raw, depth):
    """(index, locations) of the first stored sample (any non-zero value) with more than `depth`
    locations."""
    p = ht.ctx.pb.profile.Profile()
    p.ParseFromString(raw)
    for i, s in enumerate(p.sample):
        if any(s.value) and len(s.location_id) > depth:
            return i, len(s.location_id)
    raise AssertionError("no stack deeper than %d" % depth)


def within_depth(raw, depth):
    """The pprof without its samples deeper than `depth` (those exactly at it stay), gzipped."""
    import gzip

    p = ht.ctx.pb.profile.Profile()
    p.ParseFromString(raw)
    keep = [s for s in p.sample if len(s.location_id) <= depth]
    assert any(len(s.location_id) == depth for s in keep)
    del p.sample[:]
    p.sample.extend(keep)
    return gzip.compress(p.SerializeToString())


def upload_rpc(srv, service, path, t_s):
    """hearthctl upload over the Cap'n Proto RPC API -> CompletedProcess (text)."""
    ctl = os.environ.get("HEARTHCTL") or os.path.join(os.path.dirname(ht.ctx.hearth), "hearthctl")
    return subprocess.run([ctl, "--server", "127.0.0.1:%d" % srv.rpc_port, "upload", "--service", service,
                           "--from", str(t_s), path],
                          capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)


class StackDepth(unittest.TestCase):
    def test_deeper_stacks_refuse_the_whole_request_on_every_ingest_path(self):
        import gzip

        raw = raw_cpu_profile()
        idx, n = first_too_deep(raw, DEPTH)
        want = "sample %d has a stack of %d frames, over limits.max_stack_depth = %d" % (idx, n, DEPTH)
        srv = ht.Server("depth-reject", os.path.join(ht.ctx.tmp, "depth-reject"), {
            "limits": ["max_stack_depth = %d" % DEPTH],  # stack_depth_policy = "reject" by default
        })
        srv.start()
        try:
            t_s = int(time.time())
            cases = [("raw gzip", "application/octet-stream", gzip.compress(raw), "pprof"),
                     ("raw", "application/octet-stream", raw, "pprof")]
            for gz in (True, False):
                ctype, body = ht.multipart([("profile", "profile.pprof", "application/octet-stream",
                                             gzip.compress(raw) if gz else raw)])
                cases.append(("multipart %s" % ("gzip" if gz else "plain"), ctype, body, None))
            for what, ctype, body, fmt in cases:
                st, _, b = srv.request("POST", ht.ingest_path("deep-%s{}" % what.replace(" ", "-"), t_s, fmt=fmt),
                                       body, {"Content-Type": ctype})
                self.assertEqual(st, 400, what + ": " + ht.error_text(b))
                self.assertIn(want, json.loads(b)["message"], what)

            # Push: one series within the limit, one over it; the whole request is refused.
            ok_gz = within_depth(raw, DEPTH)
            deep_gz = ht.gz_profile_with_time(GO_CPU, t_s * 10**9)
            req = ht.push_request_proto([("__name__", "process_cpu"), ("service_name", "push-shallow")], ok_gz,
                                        ht.new_id())
            s = req.series.add()
            for k, v in (("__name__", "process_cpu"), ("service_name", "push-deep")):
                s.labels.add(name=k, value=v)
            s.samples.add(raw_profile=deep_gz, ID=ht.new_id())
            st, _, b = srv.connect_proto("/push.v1.PusherService/Push", req)
            self.assertEqual(st, 400, ht.error_text(b))
            self.assertEqual(json.loads(b)["code"], "invalid_argument")
            self.assertIn("series 1 sample 0: " + want, json.loads(b)["message"])
            jreq = ht.push_request_json([("__name__", "process_cpu"), ("service_name", "push-deep")], deep_gz,
                                        ht.new_id())
            st, _, b = srv.connect_json("/push.v1.PusherService/Push", jreq)
            self.assertEqual(st, 400, ht.error_text(b))
            self.assertEqual(json.loads(b)["code"], "invalid_argument")
            self.assertIn(want, json.loads(b)["message"])

            # The RPC ingest (hearthctl upload) gives the same error.
            path = os.path.join(ht.ctx.tmp, "deep.pb.gz")
            with open(path, "wb") as f:
                f.write(gzip.compress(raw))
            r = upload_rpc(srv, "rpc-deep", path, t_s)
            self.assertEqual(r.returncode, 3, r.stderr)
            self.assertIn(want, r.stderr)

            # Nothing of the refused requests was stored; stacks of exactly DEPTH frames pass.
            now = int(time.time() * 1000)
            self.assertEqual(ht.label_values(srv, "service_name", "{}", now - 3600_000, now + 60_000), [])
            st, _, b = ingest(srv, "shallow{}", ok_gz, t_s=t_s)
            self.assertEqual(st, 200, ht.error_text(b))
            self.assertEqual(ht.label_values(srv, "service_name", "{}", now - 3600_000, now + 60_000), ["shallow"])
        finally:
            srv.kill()

    def test_truncate_keeps_the_root_side_of_deeper_stacks(self):
        raw = raw_cpu_profile()
        srv = ht.Server("depth-truncate", os.path.join(ht.ctx.tmp, "depth-truncate"), {
            "limits": ["max_stack_depth = %d" % DEPTH, 'stack_depth_policy = "truncate"'],
        })
        srv.start()
        try:
            t_s = int(time.time())
            st, _, b = ingest(srv, "cut{}", profile_bytes(), t_s=t_s)
            self.assertEqual(st, 200, ht.error_text(b))
            r = upload_rpc(srv, "cut-rpc", GO_CPU, t_s)
            self.assertEqual(r.returncode, 0, r.stderr)
            p = ht.ctx.pb.profile.Profile()
            p.ParseFromString(raw)
            cpu = [p.string_table[t.type] for t in p.sample_type].index("cpu")
            want = ht.pprof_summary(raw, cpu, DEPTH)
            self.assertNotEqual(ht.summary_diff(want, ht.pprof_summary(raw, cpu)), [])  # something was cut
            for svc in ("cut", "cut-rpc"):
                names, levels, total = ht.select_merge(srv, CPU, '{service_name="%s"}' % svc, (t_s - 3600) * 1000,
                                                       (t_s + 60) * 1000)
                diff = ht.summary_diff(want, ht.fg_summary(names, levels, total))
                self.assertEqual(diff, [], svc + ": " + "; ".join(diff))
        finally:
            srv.kill()


class Auth(unittest.TestCase):
    srv = None

    @classmethod
    def setUpClass(cls):
        cls.srv = ht.Server("auth", os.path.join(ht.ctx.tmp, "auth"), {
            "auth": ['bearer_tokens = ["tok-1"]', 'basic_users = ["alice:pa:ss"]'],
        })
        cls.srv.start()  # waits for /ready without credentials

    @classmethod
    def tearDownClass(cls):
        cls.srv.kill()

    def test_requests_without_credentials_are_401_with_a_challenge(self):
        for method, path, body in (("POST", ht.ingest_path("app{}", int(time.time())), profile_bytes()),
                                   ("POST", "/querier.v1.QuerierService/LabelNames", b"{}"),
                                   ("GET", "/metrics", None),
                                   ("GET", "/pyroscope/render?query=x&from=now-1h&until=now", None)):
            st, h, b = self.srv.request(method, path, body, {"Content-Type": "application/json"})
            self.assertEqual(st, 401, path)
            self.assertEqual(json.loads(b)["code"], "unauthenticated")
            self.assertIn("Bearer", h.get("www-authenticate", ""))

    def test_bearer_and_basic_credentials_are_accepted(self):
        basic = "Basic " + base64.b64encode(b"alice:pa:ss").decode()
        for auth in ("Bearer tok-1", basic):
            st, _, b = ingest(self.srv, "app{}", profile_bytes(), {"Authorization": auth})
            self.assertEqual(st, 200, ht.error_text(b))
            st, _, b = self.srv.request("POST", "/querier.v1.QuerierService/LabelNames", b"{}",
                                        {"Content-Type": "application/json", "Authorization": auth})
            self.assertEqual(st, 200, ht.error_text(b))

    def test_wrong_credentials_are_401(self):
        for auth, why in (("Bearer tok-2", "invalid bearer token"),
                          ("Basic " + base64.b64encode(b"alice:wrong").decode(), "invalid user or password"),
                          ("Token tok-1", "unsupported authorization scheme")):
            st, _, b = self.srv.request("POST", "/querier.v1.QuerierService/LabelNames", b"{}",
                                        {"Content-Type": "application/json", "Authorization": auth})
            self.assertEqual(st, 401, auth)
            self.assertIn(why, json.loads(b)["message"])
            self.assertNotIn("wrong", json.loads(b)["message"])


class PrintConfig(unittest.TestCase):
    def test_limits_and_redacted_auth_are_printed(self):
        cfg = os.path.join(ht.ctx.tmp, "print.toml")
        with open(cfg, "w") as f:
            f.write('[limits]\ningestion_rate_bytes = "8MiB"\nper_tenant = { team-a = { max_series_per_tenant = 10 } }\n'
                    '[auth]\nbearer_tokens = ["very-secret"]\n')
        out = subprocess.run([ht.ctx.hearth, "--config", cfg, "--print-config"], capture_output=True, text=True,
                             timeout=30)
        self.assertEqual(out.returncode, 0, out.stderr)
        for want in ('ingestion_rate_bytes = "8MiB"', "ingestion_rate_profiles = ", "max_series_per_tenant = ",
                     'per_tenant = { "team-a" = { max_series_per_tenant = 10 } }', "max_profile_bytes = ",
                     "max_labels_per_series = ", "max_stack_depth = ", 'stack_depth_policy = "reject"',
                     'bearer_tokens = ["<redacted>"]'):
            self.assertIn(want, out.stdout)
        self.assertNotIn("very-secret", out.stdout)

    def test_unknown_stack_depth_policy_exits_2_naming_the_key(self):
        cfg = os.path.join(ht.ctx.tmp, "bad-policy.toml")
        with open(cfg, "w") as f:
            f.write('[limits]\nstack_depth_policy = "drop"\n')
        out = subprocess.run([ht.ctx.hearth, "--config", cfg, "--print-config"], capture_output=True, text=True,
                             timeout=30)
        self.assertEqual(out.returncode, 2, out.stderr)
        self.assertIn("limits.stack_depth_policy", out.stderr)
        self.assertIn("reject, truncate", out.stderr)


if __name__ == "__main__":
    sys.exit(ht.run_main("integration_limits", [RateLimits, SeriesLimit, StackDepth, Auth, PrintConfig], __doc__))
