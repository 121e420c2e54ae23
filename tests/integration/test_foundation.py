#!/usr/bin/env python3
"""Foundation integration test for hearth: ingest every real profile of the shared testdata over
every ingest path, query it back over both Connect codecs and /pyroscope/render, compare with
`go tool pprof`'s answers, then check bad input, crash durability (SIGKILL), sealing, config
handling and /metrics.

usage: test_foundation.py PATH/TO/hearth [NAME_SUBSTRING...]
(filters select test methods by substring; the T cases share one server and build on
test_01/test_02, so filter those in together, e.g. `test_0`)

Environment: HEARTH_TESTDATA (default <source root>/../shared/testdata), HEARTH_SOURCE_ROOT
(default two levels above this file), HEARTH_TEST_KEEP=1 keeps the temp dir,
HEARTH_TEST_JUNIT=FILE writes a JUnit XML report.

Stdlib only, plus Debian's python3-protobuf; the server, the protobuf modules (generated with
protoc at run time into a temp dir), flame-graph decoding, the testdata parsers and the JUnit
runner come from hearthtest.py. Every server this script starts binds 127.0.0.1 on a free port and is
killed by its pid; every HTTP call has a timeout.
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import hearthtest as ht  # noqa: E402

# re-runs under /usr/bin/python3 when `python3` on PATH lacks Debian's python3-protobuf
ht.ensure_system_python("test_foundation")

import glob  # noqa: E402
import gzip  # noqa: E402
import json  # noqa: E402
import random  # noqa: E402
import re  # noqa: E402
import signal  # noqa: E402
import subprocess  # noqa: E402
import time  # noqa: E402
import unittest  # noqa: E402
import urllib.parse  # noqa: E402

from hearthtest import MAX_NODES, error_text, parse_top, parse_totals  # noqa: E402

# ------------------------------------------------------------------------------------------------
# Test data and expectations

FILES = []  # list of dicts: kind (go|node), stem, path, svc, expected_dir, method


def stem_of(path):
    return os.path.basename(path)[: -len(".pb.gz")]


def svc_of(stem):
    return stem.replace(".", "-")


# Ingest method per file, in sorted order: a cycle over the four paths, plus one ungzipped body.
METHODS = ["ingest_pprof_gz", "push_proto", "ingest_multipart", "push_json"]
UNGZIPPED_STEM = "workpool.goroutine"


def discover_files():
    files = []
    for kind in ("go", "node"):
        for p in sorted(glob.glob(os.path.join(ht.TESTDATA, kind, "*.pb.gz"))):
            st = stem_of(p)
            files.append(
                {
                    "kind": kind,
                    "stem": st,
                    "path": p,
                    "svc": svc_of(st),
                    "expected_dir": ht.expected_dir(kind, st),
                }
            )
    for i, f in enumerate(files):
        f["method"] = "ingest_pprof_raw" if f["stem"] == UNGZIPPED_STEM else METHODS[i % len(METHODS)]
    return files


def push_name_for(f):
    """__name__ for Push (the /ingest path derives it itself): what the SDKs/Alloy would send."""
    st = f["stem"]
    if f["kind"] == "node":
        return "wall" if ".cpu." in st else "memory"
    kind = st.split(".")[1]
    return {
        "cpu": "process_cpu",
        "heap": "memory",
        "allocs": "memory",
        "goroutine": "goroutines",
        "mutex": "mutex",
        "block": "block",
        "threadcreate": "threadcreate",
    }[kind]


# ------------------------------------------------------------------------------------------------
# Shared state across the ordered test cases

class State:
    server = None  # the main server
    data_dir = None
    t0 = None  # unix seconds at push time
    pushed = {}  # stem -> True once acked
    acked = 0  # profiles acked 200 by the main server
    counts = {"totals": 0, "top_rows": 0}  # comparisons made against go tool pprof's answers
    baseline = {}  # key -> canonical answer (from the first server run, proto codec)
    probe_svc = None


def q_range():
    """Query window in ms around the push time (pushes use now)."""
    return (State.t0 - 3600) * 1000, (int(time.time()) + 600) * 1000


# ---- Flame graphs and queries (over hearthtest's)


def fg_summary(names, levels, total):
    """Canonical, order-independent answer: total, self per stack path, self per function (every
    function of the graph, self 0 included), and whether an 'other' node folds small ones."""
    summ = ht.fg_summary(names, levels, total, every_name=True)
    summ["has_other"] = "other" in names
    return summ


def profile_types_for(server, svc):
    """{(sample_type, sample_unit): [profile type IDs]} of the series of one service."""
    s, e = q_range()
    out = {}
    for pid in ht.label_values(server, "__profile_type__", '{service_name="%s"}' % svc, s, e):
        parts = pid.split(":")
        if len(parts) < 5:
            raise AssertionError("malformed __profile_type__ %r for %s" % (pid, svc))
        out.setdefault((parts[1], parts[2]), []).append(pid)
    return out


def select_merge(server, ptype, selector, codec, max_nodes=MAX_NODES):
    """-> (names, levels, total, max_self) over q_range() or raises AssertionError with the
    server's error (or a wrong Content-Type / JSON int64 encoding)."""
    s, e = q_range()
    return ht.select_merge_codec(server, ptype, selector, s, e, codec, max_nodes)


def file_answers(server, f, codec):
    """For one file: {(type, unit): summary or None (no series)} over its expected sample types,
    plus the list of mismatches against totals.txt."""
    expected = parse_totals(os.path.join(f["expected_dir"], "totals.txt"))
    types = profile_types_for(server, f["svc"])
    answers, problems = {}, []
    for (t, u), want in sorted(expected.items()):
        ids = types.get((t, u), [])
        if len(ids) > 1:
            problems.append("%s/%s: several profile types %r for one sample type" % (t, u, ids))
            continue
        if not ids:
            answers[(t, u)] = None
            if want != 0:
                problems.append(
                    "%s/%s: no __profile_type__ for service %s (have %r); expected total %d"
                    % (t, u, f["svc"], sorted(types), want)
                )
            continue
        names, levels, total, _ = select_merge(server, ids[0], '{service_name="%s"}' % f["svc"], codec)
        try:
            summ = fg_summary(names, levels, total)
        except AssertionError as e:
            problems.append("%s/%s (%s): malformed flame graph: %s" % (t, u, ids[0], e))
            continue
        summ["ptype"] = ids[0]
        answers[(t, u)] = summ
        State.counts["totals"] += 1
        if total != want:
            problems.append("%s/%s (%s, %s): flamegraph.total = %d, expected %d (diff %+d)" % (t, u, ids[0], codec, total, want, total - want))
    return answers, problems


def top_problems(f, answers):
    """Compare self per function with the flat column of top.<type>.txt (top 10 rows)."""
    problems = []
    for (t, u), summ in sorted(answers.items()):
        top_path = os.path.join(f["expected_dir"], "top.%s.txt" % t)
        if not os.path.exists(top_path):
            continue
        rows = parse_top(top_path)
        got = summ["by_name"] if summ else {}
        if summ and summ["has_other"]:
            problems.append("%s: flame graph has an 'other' node although max_nodes=%d" % (t, MAX_NODES))
        State.counts["top_rows"] += len(rows)
        bad = [(name, want, got.get(name, 0)) for name, want in rows if got.get(name, 0) != want]
        if bad:
            lines = ["%s/%s: self per function differs from top.%s.txt flat:" % (t, u, t)]
            lines.append("    %-20s %-20s %s" % ("expected flat", "got self", "function"))
            for name, want, g in bad:
                lines.append("    %-20d %-20d %s" % (want, g, name))
            problems.append("\n".join(lines))
    return problems


def push_file(server, f, svc=None, method=None, t=None):
    """Sends one file by its method; returns (status, body, description)."""
    svc = svc or f["svc"]
    method = method or f["method"]
    t = t or int(time.time())
    with open(f["path"], "rb") as fh:
        gz = fh.read()
    if method.startswith("ingest"):
        labels = "env=test,file=%s" % f["stem"]
        if method == "ingest_multipart":
            name = "%s{otel.scope.name=com.grafana.pyroscope/nodejs,process.runtime.name=nodejs,%s}" % (svc, labels)
            path = ht.ingest_path(name, t, spy="nodespy", fmt=None)
            ctype, body = ht.multipart([("profile", "profile", "application/octet-stream", gz)])
        else:
            path = ht.ingest_path("%s{%s}" % (svc, labels), t)
            ctype = "application/octet-stream"
            body = gz if method == "ingest_pprof_gz" else gzip.decompress(gz)
        st, _, resp = server.request("POST", path, body, {"Content-Type": ctype})
        return st, resp, "POST %s (%s, %d bytes)" % (path, method, len(body))
    raw = ht.gz_profile_with_time(f["path"], t * 1000000000)
    labels = [("__name__", push_name_for(f)), ("service_name", svc), ("env", "test")]
    sid = ht.new_id()
    if method == "push_proto":
        st, _, resp = server.connect_proto("/push.v1.PusherService/Push", ht.push_request_proto(labels, raw, sid))
    else:
        st, _, resp = server.connect_json("/push.v1.PusherService/Push", ht.push_request_json(labels, raw, sid))
    return st, resp, "Push %s labels=%r" % (method, labels)


# ------------------------------------------------------------------------------------------------
# The test cases, run in the order of ORDER below (they share one server and its data).


def snapshot_all(server, codec="proto"):
    """Every per-file answer plus the merged groups: {key: canonical summary}."""
    snap, problems = {}, []
    for f in FILES:
        answers, probs = file_answers(server, f, codec)
        problems += ["%s: %s" % (f["stem"], p) for p in probs]
        problems += ["%s: %s" % (f["stem"], p) for p in top_problems(f, answers)]
        for k, v in answers.items():
            snap[(f["stem"],) + k] = v
    for group, regex in MERGED_GROUPS:
        res, probs = merged_answer(server, group, regex, codec)
        problems += probs
        for k, v in res.items():
            snap[("merged:" + group,) + k] = v
    return snap, problems


MERGED_GROUPS = [
    ("go-workpool-cpu", "workpool-cpu-.*"),
    ("go-mapindex-cpu", "mapindex-cpu-.*"),
    ("node-cpu", "node-cpu-.*"),
]


def merged_answer(server, group, regex, codec):
    exp_dir = os.path.join(ht.TESTDATA, "expected", "merged", group)
    expected = parse_totals(os.path.join(exp_dir, "totals.txt"))
    members = [f for f in FILES if re.fullmatch(regex, f["svc"])]
    res, problems = {}, []
    if len(members) != 3:
        problems.append("merged %s: %d member files match %s" % (group, len(members), regex))
    member_types = [profile_types_for(server, m["svc"]) for m in members]
    for (t, u), want in sorted(expected.items()):
        ids = sorted({i for mt in member_types for i in mt.get((t, u), [])})
        if len(ids) != 1:
            problems.append(
                "merged %s %s/%s: members have profile types %r (want exactly one shared)" % (group, t, u, ids)
            )
            continue
        names, levels, total, _ = select_merge(server, ids[0], '{service_name=~"%s"}' % regex, codec)
        summ = fg_summary(names, levels, total)
        summ["ptype"] = ids[0]
        res[(t, u)] = summ
        if total != want:
            problems.append(
                "merged %s %s/%s: SelectMergeStacktraces(%s, {service_name=~\"%s\"}, %s) total = %d, expected %d (diff %+d)"
                % (group, t, u, ids[0], regex, codec, total, want, total - want)
            )
        top_path = os.path.join(exp_dir, "top.%s.txt" % t)
        if os.path.exists(top_path):
            bad = [(n, w, summ["by_name"].get(n, 0)) for n, w in parse_top(top_path) if summ["by_name"].get(n, 0) != w]
            if bad:
                problems.append(
                    "merged %s %s: self per function differs from top.%s.txt:\n%s"
                    % (group, t, t, "\n".join("    want %d got %d  %s" % (w, g, n) for n, w, g in bad))
                )
    return res, problems


def diff_snapshots(a, b):
    """Human-readable differences between two snapshots."""
    out = []
    for k in sorted(set(a) | set(b), key=str):
        x, y = a.get(k, "<missing>"), b.get(k, "<missing>")
        if x == y:
            continue
        if not isinstance(x, dict) or not isinstance(y, dict):
            out.append("%r: before=%s after=%s" % (k, "None" if x is None else ("<answer>" if isinstance(x, dict) else x), "None" if y is None else ("<answer>" if isinstance(y, dict) else y)))
            continue
        if x["total"] != y["total"]:
            out.append("%r: total before=%d after=%d" % (k, x["total"], y["total"]))
        for p in sorted(set(x["by_path"]) | set(y["by_path"]))[:1000]:
            if x["by_path"].get(p) != y["by_path"].get(p):
                out.append("%r: self of stack %s: before=%s after=%s" % (k, p, x["by_path"].get(p), y["by_path"].get(p)))
                if len(out) > 40:
                    return out + ["..."]
    return out


class T(unittest.TestCase):
    maxDiff = None

    @property
    def srv(self):
        if State.server is None or not State.server.alive():
            self.skipTest("main server not running (an earlier case failed to start it)")
        return State.server

    def assertServing(self, after):
        st, _, body = self.srv.request("GET", "/ready", timeout=10)
        self.assertEqual((st, body.strip()), (200, b"ready"), "server stopped serving after " + after)

    # 1
    def test_01_start_and_ready(self):
        State.data_dir = os.path.join(ht.ctx.tmp, "data")
        State.server = ht.Server("main", State.data_dir, early_reply=True)
        body = State.server.start()
        self.assertEqual(body.strip(), b"ready")
        self.assertRegex(State.server.log(), r"listening on http://127\.0\.0\.1:\d+")

    # 2
    def test_02_push_every_file(self):
        srv = self.srv
        State.t0 = int(time.time())
        failures = []
        for f in FILES:
            st, body, desc = push_file(srv, f, t=State.t0)
            if st == 200:
                State.pushed[f["stem"]] = True
                State.acked += 1
            else:
                failures.append("%s: %s -> HTTP %d %s" % (f["stem"], desc, st, error_text(body)))
        used = sorted({f["method"] for f in FILES})
        self.assertEqual(used, sorted(METHODS + ["ingest_pprof_raw"]), "every ingest path used")
        self.assertEqual(failures, [], "every ack must be 200")
        self.assertEqual(len(State.pushed), len(FILES))

    # 3 (+4): every file, proto codec: totals and top functions; kept as the baseline
    def test_03_totals_and_top_proto(self):
        State.counts = {"totals": 0, "top_rows": 0}
        snap, problems = snapshot_all(self.srv, "proto")
        State.baseline = snap
        sys.stdout.write("[compared %(totals)d flame-graph totals and %(top_rows)d top-function rows] " % State.counts)
        self.assertGreaterEqual(State.counts["totals"], 40, "too few totals compared: is the testdata complete?")
        self.assertEqual(problems, [], "\n" + "\n".join(problems))

    # 3 over JSON: every file again; the answers must equal the proto ones
    def test_04_totals_and_top_json(self):
        problems = []
        for f in FILES:
            answers, probs = file_answers(self.srv, f, "json")
            problems += ["%s: %s" % (f["stem"], p) for p in probs + top_problems(f, answers)]
            for k, v in answers.items():
                base = State.baseline.get((f["stem"],) + k, "<none>")
                if base != "<none>" and base != v:
                    problems.append("%s %s: JSON answer differs from proto answer: %s" % (f["stem"], k, diff_snapshots({k: base}, {k: v})[:5]))
        self.assertEqual(problems, [], "\n" + "\n".join(problems))

    def test_05_profile_types_rpc(self):
        s, e = q_range()
        st, h, body = self.srv.connect_proto(
            "/querier.v1.QuerierService/ProfileTypes", ht.ctx.pb.querier.ProfileTypesRequest(start=s, end=e)
        )
        self.assertEqual(st, 200, error_text(body))
        resp = ht.ctx.pb.querier.ProfileTypesResponse()
        resp.ParseFromString(body)
        ids = [p.ID for p in resp.profile_types]
        self.assertEqual(ids, sorted(ids), "ProfileTypes sorted by ID")
        for p in resp.profile_types:
            parts = p.ID.split(":")
            self.assertEqual(
                [p.name, p.sample_type, p.sample_unit, p.period_type, p.period_unit], parts[:5], "ProfileType fields of " + p.ID
            )
        for want in ("process_cpu:cpu:nanoseconds:cpu:nanoseconds", "process_cpu:samples:count:cpu:nanoseconds"):
            self.assertIn(want, ids)
        # every type any file answered with is listed
        used = {v["ptype"] for v in State.baseline.values() if v}
        self.assertEqual(sorted(used - set(ids)), [], "profile types of the data missing from ProfileTypes")
        # JSON: same list
        st, h, body = self.srv.connect_json("/querier.v1.QuerierService/ProfileTypes", {"start": str(s), "end": str(e)})
        self.assertEqual(st, 200, error_text(body))
        self.assertEqual([p["ID"] for p in json.loads(body).get("profileTypes", [])], ids)

    # 5
    def test_06_render_flamebearer(self):
        cases = [
            ("workpool.cpu.000", ("cpu", "nanoseconds"), "samples", 1000000000),
            ("workpool.heap", ("inuse_space", "bytes"), "bytes", 100),
            ("node.cpu.000", ("wall", "nanoseconds"), "nanoseconds", 100),
        ]
        problems = []
        for stem, st_u, units, rate in cases:
            f = [x for x in FILES if x["stem"] == stem][0]
            want = parse_totals(os.path.join(f["expected_dir"], "totals.txt"))[st_u]
            ptype = profile_types_for(self.srv, f["svc"]).get(st_u, ["?"])[0]
            q = {
                "query": '%s{service_name="%s"}' % (ptype, f["svc"]),
                "from": str(State.t0 - 3600),
                "until": str(int(time.time()) + 60),
                "format": "json",
                "max-nodes": str(MAX_NODES),
            }
            path = "/pyroscope/render?" + urllib.parse.urlencode(q)
            st, h, body = self.srv.request("GET", path)
            if st != 200:
                problems.append("GET %s: HTTP %d %s" % (path, st, error_text(body)))
                continue
            j = json.loads(body)
            fb, md, tl = j.get("flamebearer") or {}, j.get("metadata") or {}, j.get("timeline")
            got = {
                "numTicks": fb.get("numTicks"),
                "names[0]": (fb.get("names") or [None])[0],
                "metadata.units": md.get("units"),
                "metadata.name": md.get("name"),
                "metadata.format": md.get("format"),
                "metadata.sampleRate": md.get("sampleRate"),
                "timeline present": isinstance(tl, dict) and isinstance(tl.get("samples"), list) and len(tl["samples"]) > 0,
                "timeline sum": sum(tl["samples"]) if isinstance(tl, dict) and isinstance(tl.get("samples"), list) else None,
            }
            exp = {
                "numTicks": want,
                "names[0]": "total",
                "metadata.units": units,
                "metadata.name": st_u[0],
                "metadata.format": "single",
                "metadata.sampleRate": rate,
                "timeline present": True,
                "timeline sum": want,
            }
            if got != exp:
                problems.append("GET %s:\n  expected %r\n  got      %r" % (path, exp, got))
            else:
                levels = fb.get("levels", [])
                try:
                    summ = fg_summary(fb["names"], levels, fb["numTicks"])
                    base = State.baseline.get((stem,) + st_u)
                    if base and summ["by_name"] != base["by_name"]:
                        problems.append("%s: render self-per-function differs from SelectMergeStacktraces" % stem)
                except AssertionError as e:
                    problems.append("%s: render levels malformed: %s" % (stem, e))
        self.assertEqual(problems, [], "\n" + "\n".join(problems))

    # 6 (also checked inside test_03 over proto): explicitly, over JSON
    def test_07_merged_groups_json(self):
        problems = []
        for group, regex in MERGED_GROUPS:
            res, probs = merged_answer(self.srv, group, regex, "json")
            problems += probs
        self.assertEqual(problems, [], "\n" + "\n".join(problems))

    def test_09_labels(self):
        # name= labels of /ingest, spyName, and Push labels are queryable
        s, e = q_range()
        problems = []

        def values(name, sel):
            st, _, body = self.srv.connect_json(
                "/querier.v1.QuerierService/LabelValues", {"name": name, "matchers": [sel], "start": str(s), "end": str(e)}
            )
            if st != 200:
                problems.append("LabelValues %s %s: HTTP %d %s" % (name, sel, st, error_text(body)))
                return []
            return json.loads(body).get("names", [])

        for f in FILES:
            if not any(v for v in parse_totals(os.path.join(f["expected_dir"], "totals.txt")).values()):
                continue  # nothing stored for an empty profile
            sel = '{service_name="%s"}' % f["svc"]
            got = {"env": values("env", sel)}
            want = {"env": ["test"]}
            if f["method"].startswith("ingest"):
                got["file"] = values("file", sel)
                want["file"] = [f["stem"]]
                got["pyroscope_spy"] = values("pyroscope_spy", sel)
                want["pyroscope_spy"] = ["nodespy" if f["method"] == "ingest_multipart" else "gospy"]
            if got != want:
                problems.append("%s (%s): label values %r, expected %r" % (f["stem"], f["method"], got, want))
        all_svcs = values("service_name", "{}")
        missing = sorted({f["svc"] for f in FILES if any(parse_totals(os.path.join(f["expected_dir"], "totals.txt")).values())} - set(all_svcs))
        if missing:
            problems.append("LabelValues service_name {} lacks %r" % missing)
        self.assertEqual(problems, [], "\n" + "\n".join(problems))

    def test_08_max_nodes_folds_into_other(self):
        f = [x for x in FILES if x["stem"] == "workpool.cpu.000"][0]
        ptype = profile_types_for(self.srv, f["svc"])[("cpu", "nanoseconds")][0]
        names, levels, total, _ = select_merge(self.srv, ptype, '{service_name="%s"}' % f["svc"], "proto", max_nodes=8)
        self.assertEqual(total, 5520000000)
        self.assertIn("other", names, "max_nodes=8 must fold small nodes into 'other'")
        n = sum(len(lv) // 4 for lv in levels)
        self.assertLessEqual(n, 8 * 4, "far more nodes than max_nodes=8")
        fg_summary(names, levels, total)

    # 7: bad input
    def _expect_error(self, desc, st, body, statuses, words=()):
        text = body.decode("utf-8", "replace")
        self.assertIn(st, statuses, "%s: HTTP %d (want %s), body %r" % (desc, st, statuses, text[:300]))
        self.assertTrue(text.strip(), "%s: empty error body" % desc)
        try:
            j = json.loads(text)
            msg = "%s %s" % (j.get("code", ""), j.get("message", ""))
            self.assertTrue(j.get("message"), "%s: JSON error body without message: %r" % (desc, text))
        except ValueError:
            msg = text
        if words:
            self.assertTrue(
                any(w.lower() in msg.lower() for w in words),
                "%s: error %r names none of %r" % (desc, msg, words),
            )
        self.assertServing(desc)

    def _ingest(self, body, fmt="pprof", ctype="application/octet-stream", name="badinput"):
        path = ht.ingest_path(name, int(time.time()), spy=None, fmt=fmt)
        st, _, resp = self.srv.request("POST", path, body, {"Content-Type": ctype})
        return "POST " + path, st, resp

    def test_10_bad_random_bytes(self):
        rnd = random.Random(7)
        data = bytes(rnd.getrandbits(8) for _ in range(4096))
        desc, st, body = self._ingest(data)
        self._expect_error(desc + " (4096 random bytes)", st, body, (400, 422), ("pprof", "profile", "protobuf", "decode", "parse"))

    def test_11_bad_gzipped_garbage(self):
        rnd = random.Random(8)
        data = gzip.compress(bytes(rnd.getrandbits(8) for _ in range(4096)))
        desc, st, body = self._ingest(data)
        self._expect_error(desc + " (gzipped random bytes)", st, body, (400, 422), ("pprof", "profile", "protobuf", "decode", "parse"))

    def test_12_bad_gzip_stream(self):
        rnd = random.Random(9)
        data = b"\x1f\x8b\x08\x00" + bytes(rnd.getrandbits(8) for _ in range(2048))
        desc, st, body = self._ingest(data)
        self._expect_error(desc + " (gzip magic then garbage)", st, body, (400, 422), ("gzip", "inflate", "deflate", "decompress"))
        # a truncated real gzip too
        with open(FILES[0]["path"], "rb") as fh:
            gz = fh.read()
        desc, st, body = self._ingest(gz[: len(gz) // 2])
        self._expect_error(desc + " (truncated gzip)", st, body, (400, 422), ("gzip", "inflate", "deflate", "decompress", "truncat", "eof", "end"))

    def test_13_bad_multipart_garbage(self):
        ctype, body = ht.multipart([("profile", "profile", "application/octet-stream", b"\x00\x01garbage\xff" * 50)])
        desc, st, resp = self._ingest(body, fmt=None, ctype=ctype)
        self._expect_error(desc + " (multipart with a garbage profile)", st, resp, (400, 422), ("pprof", "profile", "protobuf", "decode", "parse"))

    def test_14_bad_push_raw_profile(self):
        labels = [("__name__", "process_cpu"), ("service_name", "badinput")]
        req = ht.push_request_proto(labels, b"\x1f\x8b\x08\x00garbage-after-magic", ht.new_id())
        st, _, body = self.srv.connect_proto("/push.v1.PusherService/Push", req)
        self._expect_error("Push with a corrupt gzip raw_profile", st, body, (400, 422), ("gzip", "pprof", "profile", "decompress"))

    def test_15_body_over_limit(self):
        big = b"\x00" * (16 * 1024 * 1024 + 4096)
        desc, st, body = self._ingest(big)
        self._expect_error(desc + " (16 MiB + 4 KiB body, default max_body_bytes 16 MiB)", st, body, (413,), ("body", "large", "limit", "size"))
        # and a small-limit server from config: 64 KiB
        small = ht.Server(
            "small-limit", os.path.join(ht.ctx.tmp, "data-small"), {"server": ['max_body_bytes = "64KiB"']}, early_reply=True
        )
        try:
            small.start()
            t = int(time.time())
            path = ht.ingest_path("x", t, spy=None)
            st, _, body = small.request("POST", path, b"\x00" * (65 * 1024), {"Content-Type": "application/octet-stream"})
            self.assertEqual(st, 413, "max_body_bytes=64KiB server: POST %s with 65 KiB: HTTP %d %s" % (path, st, error_text(body)))
            with open([f for f in FILES if f["stem"] == "workpool.cpu.000"][0]["path"], "rb") as fh:
                gz = fh.read()
            self.assertLess(len(gz), 64 * 1024)
            st, _, body = small.request("POST", path, gz, {"Content-Type": "application/octet-stream"})
            self.assertEqual(st, 200, "max_body_bytes=64KiB server: a %d-byte profile: HTTP %d %s" % (len(gz), st, error_text(body)))
        finally:
            small.kill()
        self.assertServing("the oversized body")

    def _smst(self, codec, ptype="process_cpu:cpu:nanoseconds:cpu:nanoseconds", sel="{}", max_nodes=None):
        s, e = q_range()
        return ht.smst_request(self.srv, codec, ptype, sel, s, e, max_nodes)

    def test_16_bad_selector(self):
        for codec in ("json", "proto"):
            st, h, body = self._smst(codec, sel="{service_name=}")
            self._expect_error("SelectMergeStacktraces(%s) label_selector '{service_name=}'" % codec, st, body, (400,), ("bad_selector",))
            self.assertTrue(h.get("content-type", "").startswith("application/json"), "Connect errors are JSON: %r" % h.get("content-type"))

    def test_17_unknown_profile_type(self):
        for codec in ("json", "proto"):
            st, h, body = self._smst(codec, ptype="nope")
            self._expect_error("SelectMergeStacktraces(%s) profile_typeID 'nope'" % codec, st, body, (400,), ("profile",))

    def test_18_max_nodes_over_limit(self):
        for codec in ("json", "proto"):
            st, h, body = self._smst(codec, max_nodes=MAX_NODES + 1)
            self._expect_error("SelectMergeStacktraces(%s) max_nodes %d" % (codec, MAX_NODES + 1), st, body, (400,), ("max_nodes", "nodes"))
        # the limit itself is fine
        st, h, body = self._smst("proto", max_nodes=MAX_NODES)
        self.assertEqual(st, 200, error_text(body))

    def test_19_unknown_route(self):
        for method, path in (("GET", "/no/such/route"), ("POST", "/querier.v1.QuerierService/NoSuchMethod")):
            st, _, body = self.srv.request(method, path, b"{}" if method == "POST" else None, {"Content-Type": "application/json"})
            self.assertEqual(st, 404, "%s %s: HTTP %d %r" % (method, path, st, body[:200]))
            self.assertTrue(body.strip(), "%s %s: empty 404 body" % (method, path))
        self.assertServing("unknown routes")

    def test_20_get_on_ingest(self):
        st, h, body = self.srv.request("GET", "/ingest?name=x")
        self.assertEqual(st, 405, "GET /ingest: HTTP %d %r" % (st, body[:200]))
        st, h, body = self.srv.request("GET", "/querier.v1.QuerierService/ProfileTypes")
        self.assertEqual(st, 405, "GET /querier.v1.QuerierService/ProfileTypes: HTTP %d %r" % (st, body[:200]))
        self.assertServing("GET on POST routes")

    def test_21_push_without_name(self):
        with open(FILES[0]["path"], "rb") as fh:
            gz = fh.read()
        for codec in ("proto", "json"):
            labels = [("service_name", "no-name")]
            if codec == "proto":
                st, _, body = self.srv.connect_proto("/push.v1.PusherService/Push", ht.push_request_proto(labels, gz, ht.new_id()))
            else:
                st, _, body = self.srv.connect_json("/push.v1.PusherService/Push", ht.push_request_json(labels, gz, ht.new_id()))
            self._expect_error("Push(%s) without __name__" % codec, st, body, (400,), ("__name__", "name"))

    def test_22_health_check_window(self):
        st, h, body = self.srv.connect_proto("/querier.v1.QuerierService/ProfileTypes", ht.ctx.pb.querier.ProfileTypesRequest(start=1000, end=4000))
        self.assertEqual(st, 200, "ProfileTypes(proto) start=1000 end=4000: HTTP %d %s" % (st, error_text(body)))
        self.assertEqual(h.get("content-type"), "application/proto")
        resp = ht.ctx.pb.querier.ProfileTypesResponse()
        resp.ParseFromString(body)
        self.assertEqual([p.ID for p in resp.profile_types], [])
        st, h, body = self.srv.connect_json("/querier.v1.QuerierService/ProfileTypes", {"start": 1000, "end": 4000})
        self.assertEqual(st, 200, "ProfileTypes(json) start=1000 end=4000: HTTP %d %s" % (st, error_text(body)))
        self.assertEqual(json.loads(body).get("profileTypes", []), [])

    def test_29_answers_unchanged_after_bad_input(self):
        snap, problems = snapshot_all(self.srv, "proto")
        d = diff_snapshots(State.baseline, snap)
        self.assertEqual(problems + d, [], "\n" + "\n".join(problems + d))

    # 11
    def test_30_metrics(self):
        st, h, body = self.srv.request("GET", "/metrics")
        self.assertEqual(st, 200)
        text = body.decode()
        vals = [float(m.group(1)) for m in re.finditer(r"^hearth_ingest_profiles_total(?:\{[^}]*\})?\s+(\S+)", text, re.M)]
        self.assertTrue(vals, "no hearth_ingest_profiles_total sample in /metrics:\n" + text[:2000])
        self.assertGreater(sum(vals), 0, "hearth_ingest_profiles_total")
        self.assertRegex(text, re.compile(r"^hearth_http_requests_total(\{[^}]*\})?\s+\d", re.M))
        reqs = [float(m.group(1)) for m in re.finditer(r"^hearth_http_requests_total(?:\{[^}]*\})?\s+(\S+)", text, re.M)]
        self.assertGreater(sum(reqs), len(FILES), "hearth_http_requests_total")

    def test_31_metrics_count_every_accepted_profile(self):
        st, h, body = self.srv.request("GET", "/metrics")
        self.assertEqual(st, 200)
        vals = [float(m.group(1)) for m in re.finditer(r"^hearth_ingest_profiles_total(?:\{[^}]*\})?\s+(\S+)", body.decode(), re.M)]
        empty = [f["stem"] for f in FILES if all(v == 0 for v in parse_totals(os.path.join(f["expected_dir"], "totals.txt")).values())]
        self.assertEqual(
            sum(vals),
            State.acked,
            "hearth_ingest_profiles_total ('pprof profiles accepted') vs profiles acked 200 by this server; "
            "%d of them hold no sample with a location: %s" % (len(empty), empty),
        )

    # 8: durability. One more profile is acked, then SIGKILL at once.
    def test_40_sigkill_restart(self):
        srv = self.srv
        f = [x for x in FILES if x["stem"] == "workpool.cpu.001"][0]
        State.probe_svc = "durability-probe"
        st, body, desc = push_file(srv, f, svc=State.probe_svc, method="push_proto", t=int(time.time()))
        self.assertEqual(st, 200, "%s: HTTP %d %s" % (desc, st, error_text(body)))
        os.kill(srv.proc.pid, signal.SIGKILL)  # right after the ack
        srv.proc.wait(timeout=15)
        srv.start()
        snap, problems = snapshot_all(srv, "proto")
        d = diff_snapshots(State.baseline, snap)
        probe = self._probe_total(srv)
        self.assertEqual(probe, 5610000000, "the profile acked right before SIGKILL (service %s): total" % State.probe_svc)
        self.assertEqual(problems + d, [], "after SIGKILL + restart:\n" + "\n".join(problems + d))

    def _probe_total(self, srv):
        types = profile_types_for(srv, State.probe_svc)
        ids = types.get(("cpu", "nanoseconds"))
        if not ids:
            return None
        return select_merge(srv, ids[0], '{service_name="%s"}' % State.probe_svc, "proto")[2]

    # 9: seal, SIGKILL, restart: answers from segments
    def test_41_seal_then_restart(self):
        srv = self.srv
        srv.kill()
        srv.sections = {"storage": ["head_max_age = 1"]}
        srv.start()
        f = [x for x in FILES if x["stem"] == "mapindex.cpu.000"][0]
        st, body, desc = push_file(srv, f, svc="seal-probe", method="ingest_pprof_gz", t=int(time.time()))
        self.assertEqual(st, 200, "%s: HTTP %d %s" % (desc, st, error_text(body)))
        deadline = time.monotonic() + 15
        while "sealed segment" not in srv.log() and time.monotonic() < deadline:
            time.sleep(0.2)
        self.assertIn("sealed segment", srv.log(), "no 'sealed segment' log line within 15 s with head_max_age = 1; log:\n" + srv.log()[-3000:])
        # let every partition's head (both shards) seal what it holds
        time.sleep(3)
        srv.kill()  # SIGKILL
        srv.sections = {}
        srv.start()
        self.assertRegex(srv.log(), r"recovered: [1-9]\d* segments", "restart after sealing loaded no segment")
        snap, problems = snapshot_all(srv, "proto")
        d = diff_snapshots(State.baseline, snap)
        self.assertEqual(self._probe_total(srv), 5610000000, "durability probe after seal + restart")
        exp = parse_totals(os.path.join(f["expected_dir"], "totals.txt"))[("cpu", "nanoseconds")]
        types = profile_types_for(srv, "seal-probe")
        self.assertIn(("cpu", "nanoseconds"), types)
        got = select_merge(srv, types[("cpu", "nanoseconds")][0], '{service_name="seal-probe"}', "json")[2]
        self.assertEqual(got, exp, "seal-probe total after seal + SIGKILL + restart")
        self.assertEqual(problems + d, [], "after seal + SIGKILL + restart:\n" + "\n".join(problems + d))

    @classmethod
    def tearDownClass(cls):
        if State.server:
            State.server.kill()


# 10: the command line
class C(unittest.TestCase):
    def run_hearth(self, *args):
        p = subprocess.run([ht.ctx.hearth] + list(args), stdin=subprocess.DEVNULL, capture_output=True, timeout=30)
        return p.returncode, p.stdout.decode("utf-8", "replace"), p.stderr.decode("utf-8", "replace")

    def write(self, name, text):
        path = os.path.join(ht.ctx.tmp, name)
        with open(path, "w") as f:
            f.write(text)
        return path

    def test_print_config(self):
        rc, out, err = self.run_hearth("--print-config")
        self.assertEqual(rc, 0, err)
        self.assertRegex(out, re.compile(r"^\s*http_listen\s*=", re.M))
        self.assertRegex(out, re.compile(r"^\s*path\s*=", re.M))
        self.assertIn("[server]", out)
        self.assertIn("[storage]", out)
        # with a config: the effective values show
        cfg = self.write("print.toml", '[server]\nhttp_listen = "127.0.0.1:4999"\n[storage]\npath = "/tmp/hearth-print-test"\nshards = 3\n')
        rc, out, err = self.run_hearth("--config", cfg, "--print-config")
        self.assertEqual(rc, 0, err)
        self.assertIn('"127.0.0.1:4999"', out)
        self.assertIn('"/tmp/hearth-print-test"', out)
        self.assertRegex(out, re.compile(r"^shards\s*=\s*3\s*$", re.M))

    def test_unknown_key(self):
        cfg = self.write("unknown.toml", '[server]\nhttp_listen = "127.0.0.1:0"\nno_such_key_xyz = 1\n[storage]\npath = "%s"\n' % os.path.join(ht.ctx.tmp, "d-unknown"))
        rc, out, err = self.run_hearth("--config", cfg)
        self.assertNotEqual(rc, 0, "hearth accepted an unknown key; stderr %r" % err)
        self.assertIn("no_such_key_xyz", err)
        cfg = self.write("unknown2.toml", '[no_such_section]\nx = 1\n')
        rc, out, err = self.run_hearth("--config", cfg)
        self.assertNotEqual(rc, 0, "hearth accepted an unknown section; stderr %r" % err)
        self.assertIn("no_such_section", err)

    def test_bad_value(self):
        for text, key in (
            ("[storage]\nshards = 0\n", "shards"),
            ('[server]\nmax_body_bytes = "lots"\n', "max_body_bytes"),
            ("[storage]\nhead_max_age = -5\n", "head_max_age"),
        ):
            cfg = self.write("bad-%s.toml" % key, text)
            rc, out, err = self.run_hearth("--config", cfg)
            self.assertNotEqual(rc, 0, "hearth accepted %r; stderr %r" % (text, err))
            self.assertIn(key, err, "stderr for %r" % text)

    def test_missing_config_file(self):
        rc, out, err = self.run_hearth("--config", os.path.join(ht.ctx.tmp, "does-not-exist.toml"))
        self.assertNotEqual(rc, 0)
        self.assertIn("does-not-exist.toml", err)


def setup():
    global FILES
    FILES = discover_files()
    if len(FILES) < 4:
        sys.stderr.write("too few profiles under %s\n" % ht.TESTDATA)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(ht.run_main("integration_foundation", [T, C], __doc__, setup))
