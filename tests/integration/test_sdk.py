#!/usr/bin/env python3
"""The real Pyroscope Node.js SDK end to end: `@pyroscope/nodejs` from npm (the current release,
and 0.4.1, whose upload is axios + form-data instead of fetch + FormData), both installed by
`npm ci` in tests/client, profile a small Node workload (tests/client/sdk_workload.mjs) and upload
to a real hearth with a tenant (X-Scope-OrgID) and a bearer token; the workload's functions, its
labels and the SDK's profile types must come back through the query API.

usage: test_sdk.py PATH/TO/hearth [NAME_SUBSTRING...]
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import hearthtest as ht  # noqa: E402

ht.ensure_system_python("test_sdk")

import json  # noqa: E402
import signal  # noqa: E402
import subprocess  # noqa: E402
import time  # noqa: E402
import unittest  # noqa: E402

CLIENT = os.path.join(ht.SOURCE_ROOT, "tests", "client")
NODE_TIMEOUT = 120
TENANT = "sdk-tenant"
TOKEN = "sdk-token-123"
WALL = "wall:wall:nanoseconds:wall:nanoseconds"
HEAP = "memory:inuse_space:bytes:inuse_space:bytes"
PACKAGES = {"current": "@pyroscope/nodejs", "v041": "pyroscope-nodejs-041"}


class State:
    srv = None
    runs = {}  # key -> (ok, detail, version)
    t0_ms = 0


def setup():
    State.t0_ms = int(time.time() * 1000) - 60_000
    State.srv = ht.Server("sdk", os.path.join(ht.ctx.tmp, "sdk-data"), {
        "server": ["multitenancy = true"],
        "auth": ['bearer_tokens = ["%s"]' % TOKEN],
    })
    State.srv.start()
    node = os.environ.get("HEARTH_NODE", "node")
    url = "http://127.0.0.1:%d" % State.srv.port
    for key, pkg in PACKAGES.items():
        if not os.path.isdir(os.path.join(CLIENT, "node_modules", pkg)):
            State.runs[key] = (False, "tests/client/node_modules/%s missing: run `npm ci` in tests/client" % pkg, None)
            continue
        cmd = [node, os.path.join(CLIENT, "sdk_workload.mjs"), pkg, url, "sdk-" + key, "5", TENANT, TOKEN]
        proc = subprocess.Popen(cmd, cwd=CLIENT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)
        try:
            out, err = proc.communicate(timeout=NODE_TIMEOUT)
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)
            out, err = proc.communicate(timeout=15)
            State.runs[key] = (False, "node did not finish within %ds: %s" % (NODE_TIMEOUT, err.decode()[-2000:]), None)
            continue
        version = None
        for line in out.decode("utf-8", "replace").splitlines():
            try:
                version = json.loads(line).get("version")
            except ValueError:
                pass
        ok = proc.returncode == 0 and version is not None
        State.runs[key] = (ok, "exit %s; stderr:\n%s" % (proc.returncode, err.decode()[-2000:]), version)
    return 0


def call(method, msg, tenant=TENANT, token=TOKEN):
    h = {"Content-Type": "application/json"}
    if tenant:
        h["X-Scope-OrgID"] = tenant
    if token:
        h["Authorization"] = "Bearer " + token
    st, _, body = State.srv.request("POST", "/querier.v1.QuerierService/" + method, json.dumps(msg).encode(), h)
    return st, body


def ok(method, msg):
    st, body = call(method, msg)
    if st != 200:
        raise AssertionError("%s: HTTP %d %s" % (method, st, ht.error_text(body)))
    return json.loads(body)


def window():
    return {"start": str(State.t0_ms), "end": str(int(time.time() * 1000) + 60_000)}


def flame_names(ptype, service):
    j = ok("SelectMergeStacktraces", dict(profileTypeID=ptype, labelSelector='{service_name="%s"}' % service,
                                          maxNodes=str(ht.MAX_NODES), **window()))
    fg = j.get("flamegraph", {})
    return fg.get("names", []), int(fg.get("total", "0"))


class Sdk(unittest.TestCase):
    def check_run(self, key):
        good, detail, _ = State.runs[key]
        self.assertTrue(good, detail)

    def check_profile_types(self, key):
        self.check_run(key)
        j = ok("ProfileTypes", window())
        ids = {t["ID"] for t in j.get("profileTypes", [])}
        for want in (WALL, "wall:samples:count:wall:nanoseconds", HEAP, "memory:inuse_objects:count:inuse_space:bytes"):
            self.assertIn(want, ids)

    def check_labels(self, key):
        self.check_run(key)
        svc = "sdk-" + key
        j = ok("LabelValues", dict(name="service_name", **window()))
        self.assertIn(svc, j.get("names", []))
        sel = '{service_name="%s"}' % svc
        for name, want in (("hearth_test", "sdk"), ("sdk_version", State.runs[key][2]), ("pyroscope_spy", "nodespy")):
            j = ok("LabelValues", dict(name=name, matchers=[sel], **window()))
            self.assertEqual(j.get("names", []), [want], name)

    def check_functions(self, key):
        self.check_run(key)
        svc = "sdk-" + key
        names, total = flame_names(WALL, svc)
        self.assertGreater(total, 0)
        self.assertTrue(any("hearthSdkSpinPrimes" in n for n in names), "wall flame graph of %s: %s" % (svc, names[:20]))
        names, total = flame_names(HEAP, svc)
        self.assertGreater(total, 0)
        self.assertTrue(any("hearthSdkAllocate" in n for n in names), "heap flame graph of %s: %s" % (svc, names[:20]))

    def test_current_profile_types(self):
        self.check_profile_types("current")

    def test_current_labels(self):
        self.check_labels("current")

    def test_current_functions(self):
        self.check_functions("current")

    def test_v041_profile_types(self):
        self.check_profile_types("v041")

    def test_v041_labels(self):
        self.check_labels("v041")

    def test_v041_functions(self):
        self.check_functions("v041")

    def test_data_is_only_visible_to_the_sdk_tenant_with_the_token(self):
        st, _ = call("LabelValues", dict(name="service_name", **window()), tenant="someone-else")
        self.assertEqual(st, 200)
        j = json.loads(call("LabelValues", dict(name="service_name", **window()), tenant="someone-else")[1])
        self.assertEqual(j.get("names", []), [])
        st, _ = call("LabelValues", dict(name="service_name", **window()), token=None)
        self.assertEqual(st, 401)


if __name__ == "__main__":
    sys.exit(ht.run_main("integration_sdk", [Sdk], __doc__, setup=setup))
