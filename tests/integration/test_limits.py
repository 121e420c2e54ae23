#!/usr/bin/env python3
"""Ingest limits and authentication, end to end against real hearth processes on 127.0.0.1:
per-tenant ingestion rate (bytes/s and profiles/s, with per-tenant overrides), max active series
per tenant, the 429 answers naming the limit and its value, optional bearer/basic auth (401 with a
challenge, /ready open), and the limits in --print-config.

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
                     "max_labels_per_series = ", "max_stack_depth = ", 'bearer_tokens = ["<redacted>"]'):
            self.assertIn(want, out.stdout)
        self.assertNotIn("very-secret", out.stdout)


if __name__ == "__main__":
    sys.exit(ht.run_main("integration_limits", [RateLimits, SeriesLimit, Auth, PrintConfig], __doc__))
