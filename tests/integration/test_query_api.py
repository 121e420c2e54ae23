#!/usr/bin/env python3
"""The read API end to end, against a real hearth holding real profiles:

1. loads the fixed dataset of tests/queries/dataset.json (real testdata profiles pushed over
   push.v1 with fixed timestamps, so that answers are deterministic);
2. golden queries: runs every tests/queries/NNNN_name.q and compares its answer byte for byte with
   NNNN_name.reference (HEARTH_UPDATE_GOLDEN=1 rewrites the references instead);
3. runs the real Connect client test `node tests/client/rpcs.test.mjs <url> <testdata>` (every RPC
   in both codecs) and turns each of its JSON lines into a case;
4. Python cases: /pyroscope/render with groupBy, /pyroscope/render-diff, /pyroscope/label-values,
   span profiles (SelectMergeSpanProfile, span_selector, the exported period), exemplars and
   profile_id_selector, multi-tenancy (401, isolation, "a|b"), settings across a SIGKILL restart.

usage: test_query_api.py PATH/TO/hearth [NAME_SUBSTRING...]

Environment: HEARTH_TESTDATA, HEARTH_SOURCE_ROOT, HEARTH_TEST_JUNIT, HEARTH_TEST_KEEP (as the other
integration tests), HEARTH_UPDATE_GOLDEN=1 (rewrite tests/queries/*.reference), HEARTH_NODE (the
node binary, default `node`).

.q format: lines starting with '#' are comments; the first other line is the request:
  connect <package.Service>/<Method>     followed by the request as Connect JSON (rest of file)
  http GET <path?query>                  a plain HTTP GET
then optionally `output: <transform>` lines before the body: `json` (default; keys sorted, lists
of scalars on one line), `flamegraph` (the answer's flamegraph as an indented tree of
"name total self"), `pprof-top N` (a google.v1.Profile answer as `go tool pprof -top` rows:
flat, cum, function). The answer is "status <code>" followed by the transformed body.
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import hearthtest as ht  # noqa: E402

ht.ensure_system_python("test_query_api")

import base64  # noqa: E402
import difflib  # noqa: E402
import glob  # noqa: E402
import gzip  # noqa: E402
import json  # noqa: E402
import re  # noqa: E402
import shutil  # noqa: E402
import signal  # noqa: E402
import subprocess  # noqa: E402
import time  # noqa: E402
import unittest  # noqa: E402
import urllib.parse  # noqa: E402
import uuid  # noqa: E402

from hearthtest import error_text, parse_totals  # noqa: E402

QUERIES = os.path.join(ht.SOURCE_ROOT, "tests", "queries")
CLIENT = os.path.join(ht.SOURCE_ROOT, "tests", "client")
NODE_TIMEOUT = 240  # seconds for the whole node client test

CPU = "process_cpu:cpu:nanoseconds:cpu:nanoseconds"
SAMPLES = "process_cpu:samples:count:cpu:nanoseconds"


class State:
    server = None
    dataset = None
    t0_ms = None
    golden = {}  # name -> (ok, detail)
    node_cases = []  # (name, ok, detail)
    node_problem = None  # text when node did not run to completion


def totals(rel):
    return parse_totals(os.path.join(ht.TESTDATA, "expected", rel, "totals.txt"))


def push_profile(server, labels, rel_file, t_ms, tenant=None):
    gz = ht.gz_profile_with_time(os.path.join(ht.TESTDATA, rel_file + ".pb.gz"), t_ms * 1000000)
    sid = str(uuid.uuid5(uuid.NAMESPACE_URL, "%s|%s|%d" % (rel_file, sorted(labels), t_ms)))
    req = ht.push_request_proto(labels, gz, sid)
    headers = {"Content-Type": "application/proto", "Connect-Protocol-Version": "1"}
    if tenant:
        headers["X-Scope-OrgID"] = tenant
    st, _, body = server.request("POST", "/push.v1.PusherService/Push", req.SerializeToString(), headers)
    if st != 200:
        raise AssertionError("Push %s: HTTP %d %s" % (rel_file, st, error_text(body)))


def load_dataset(server):
    with open(os.path.join(QUERIES, "dataset.json")) as f:
        ds = json.load(f)
    for p in ds["profiles"]:
        labels = sorted(p["labels"].items())
        push_profile(server, labels, p["file"], ds["t0_ms"] + p["offset_s"] * 1000)
    return ds


# ------------------------------------------------------------------------------------------------
# Golden queries


def dump(o, ind=0):
    """JSON with sorted keys, one key per line, lists of scalars on one line."""
    pad = " " * ind
    if isinstance(o, dict):
        if not o:
            return "{}"
        items = ["%s %s: %s" % (pad, json.dumps(k), dump(o[k], ind + 1)) for k in sorted(o)]
        return "{\n" + ",\n".join(items) + "\n" + pad + "}"
    if isinstance(o, list):
        if all(not isinstance(x, (dict, list)) for x in o):
            return json.dumps(o)
        return "[\n" + ",\n".join(pad + " " + dump(x, ind + 1) for x in o) + "\n" + pad + "]"
    return json.dumps(o)


def flamegraph_text(fg):
    names = fg.get("names", [])
    levels = [[int(v) for v in lv.get("values", [])] for lv in fg.get("levels", [])]
    nodes = ht.fg_nodes(names, levels)
    lines = ["total %s, max_self %s" % (fg.get("total", "0"), fg.get("maxSelf", "0"))]
    # children of a node: the next level's nodes inside its span, left to right

    def walk(d, node):
        lines.append("%s%s %d %d" % ("  " * d, node["name"], node["total"], node["self"]))
        if d + 1 < len(nodes):
            for c in nodes[d + 1]:
                if c["path"][:-1] == node["path"] and node["start"] <= c["start"] < node["start"] + node["total"]:
                    walk(d + 1, c)

    for root in nodes[0] if nodes else []:
        walk(0, root)
    return "\n".join(lines)


def pprof_top(p, n):
    """A google.v1.Profile in proto3 JSON -> `go tool pprof -top`-like rows: flat cum function,
    for the first sample type (what SelectMergeProfile answers)."""
    strings = p.get("stringTable", [])
    funcs = {f["id"]: strings[int(f.get("name", 0))] for f in p.get("function", [])}
    locs = {l["id"]: [funcs.get(ln.get("functionId"), "?") for ln in l.get("line", [])] for l in p.get("location", [])}
    flat, cum, total = {}, {}, 0
    for s in p.get("sample", []):
        v = int(s.get("value", ["0"])[0])
        frames = []
        for lid in s.get("locationId", []):
            frames.extend(locs.get(lid, ["?"]))  # lines: innermost first
        if not frames:
            continue
        total += v
        flat[frames[0]] = flat.get(frames[0], 0) + v
        for f in set(frames):
            cum[f] = cum.get(f, 0) + v
    types = ["%s/%s" % (strings[int(t.get("type", 0))], strings[int(t.get("unit", 0))]) for t in p.get("sampleType", [])]
    rows = sorted(flat, key=lambda f: (-flat[f], -cum[f], f))[:n]
    out = ["sample types %s, total %d, %d functions" % (",".join(types), total, len(cum))]
    out += ["%d %d %s" % (flat[f], cum[f], f) for f in rows]
    return "\n".join(out)


def parse_q(path):
    with open(path) as f:
        lines = f.read().split("\n")
    lines = [l for l in lines if not l.startswith("#")]
    while lines and not lines[0].strip():
        lines.pop(0)
    if not lines:
        raise AssertionError("%s: empty query" % path)
    head = lines.pop(0).split()
    output = ["json"]
    while lines and (lines[0].startswith("output:") or not lines[0].strip()):
        l = lines.pop(0)
        if l.startswith("output:"):
            output = l[len("output:"):].split()
    return head, output, "\n".join(lines).strip()


def run_golden(server, path):
    head, output, body = parse_q(path)
    if head[0] == "connect" and len(head) == 2:
        msg = json.loads(body or "{}")
        st, h, data = server.request("POST", "/" + head[1], json.dumps(msg).encode(), {"Content-Type": "application/json"})
    elif head[0] == "http" and len(head) == 3 and head[1] == "GET":
        st, h, data = server.request("GET", head[2])
    else:
        raise AssertionError("%s: first line must be `connect Service/Method` or `http GET path`, not %r" % (path, " ".join(head)))
    text = data.decode("utf-8", "replace")
    if st == 200 and h.get("content-type", "").startswith("application/json"):
        obj = json.loads(text)
        if output[0] == "flamegraph":
            text = flamegraph_text(obj.get("flamegraph", {}))
        elif output[0] == "pprof-top":
            text = pprof_top(obj, int(output[1]) if len(output) > 1 else 10)
        else:
            text = dump(obj)
    elif st != 200:
        try:
            j = json.loads(text)
            text = dump({"code": j.get("code")})  # messages are free text: only the code is golden
        except ValueError:
            pass
    return "status %d\n%s\n" % (st, text)


def golden_all(server):
    update = os.environ.get("HEARTH_UPDATE_GOLDEN") == "1"
    for q in sorted(glob.glob(os.path.join(QUERIES, "*.q"))):
        name = os.path.basename(q)[:-2]
        ref = q[:-2] + ".reference"
        try:
            got = run_golden(server, q)
        except Exception as e:  # reported by the case
            State.golden[name] = (False, "%s: %s" % (type(e).__name__, e))
            continue
        if update:
            with open(ref, "w") as f:
                f.write(got)
            State.golden[name] = (True, "reference rewritten")
            continue
        try:
            with open(ref) as f:
                want = f.read()
        except OSError:
            State.golden[name] = (False, "no reference %s (run with HEARTH_UPDATE_GOLDEN=1, then check it by hand)" % ref)
            continue
        if got == want:
            State.golden[name] = (True, "")
        else:
            diff = "".join(difflib.unified_diff(want.splitlines(True), got.splitlines(True), ref, "answer", n=2))
            State.golden[name] = (False, "answer differs from %s:\n%s" % (os.path.basename(ref), diff[:6000]))


# ------------------------------------------------------------------------------------------------
# The node client test


def run_node(server):
    node = os.environ.get("HEARTH_NODE", "node")
    if not os.path.isdir(os.path.join(CLIENT, "node_modules", "@connectrpc", "connect-node")):
        State.node_problem = "tests/client/node_modules missing: run `npm ci` in tests/client (tools/test.sh does)"
        return
    url = "http://127.0.0.1:%d" % server.port
    cmd = [node, os.path.join(CLIENT, "rpcs.test.mjs"), url, ht.TESTDATA]
    proc = subprocess.Popen(cmd, cwd=CLIENT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)
    try:
        out, err = proc.communicate(timeout=NODE_TIMEOUT)
    except subprocess.TimeoutExpired:
        os.kill(proc.pid, signal.SIGKILL)
        out, err = proc.communicate(timeout=15)
        State.node_problem = "node did not finish within %ds; stderr:\n%s" % (NODE_TIMEOUT, err.decode()[-3000:])
    for line in out.decode("utf-8", "replace").splitlines():
        try:
            j = json.loads(line)
        except ValueError:
            continue
        State.node_cases.append((j["name"], bool(j["ok"]), j.get("detail", "")))
    if State.node_problem is None and (proc.returncode not in (0, 1) or not State.node_cases):
        State.node_problem = "node exited %s with %d cases; stderr:\n%s" % (proc.returncode, len(State.node_cases), err.decode()[-3000:])


def case_method_name(prefix, name):
    return prefix + re.sub(r"[^A-Za-z0-9]+", "_", name).strip("_")


class Golden(unittest.TestCase):
    """One case per tests/queries/*.q (methods added by setup())."""


class NodeClient(unittest.TestCase):
    """One case per JSON line of tests/client/rpcs.test.mjs (methods added by setup())."""

    def test_node_ran_to_completion(self):
        if State.node_problem:
            self.fail(State.node_problem)


def setup():
    State.server = ht.Server("main", os.path.join(ht.ctx.tmp, "main-data"))
    State.server.start()
    State.dataset = load_dataset(State.server)
    State.t0_ms = State.dataset["t0_ms"]
    golden_all(State.server)  # before the node test pushes more
    run_node(State.server)

    def make(ok, detail):
        def t(self):
            if not ok:
                self.fail(detail)
            if detail:
                sys.stdout.write("[%s] " % detail[:300])
        return t

    for name, (ok, detail) in State.golden.items():
        setattr(Golden, case_method_name("test_golden_", name), make(ok, detail))
    seen = set()
    for name, ok, detail in State.node_cases:
        m = case_method_name("test_node_", name)
        while m in seen:
            m += "_"
        seen.add(m)
        setattr(NodeClient, m, make(ok, detail))
    return 0


# ------------------------------------------------------------------------------------------------
# Python cases: render, render-diff, label-values (main server)


def get_json(server, path, headers=None, want=200):
    st, h, body = server.request("GET", path, headers=headers)
    if st != want:
        raise AssertionError("GET %s: HTTP %d (want %d) %s" % (path, st, want, error_text(body)))
    return json.loads(body) if st == 200 else body


class Render(unittest.TestCase):
    def render_path(self, **params):
        return "/pyroscope/render?" + urllib.parse.urlencode(params)

    def test_render_group_by(self):
        t0 = State.t0_ms // 1000
        p = self.render_path(query=CPU + '{service_name="workpool"}', **{"from": t0 - 60, "until": t0 + 60, "groupBy": "region"})
        j = get_json(State.server, p)
        want = totals("merged/go-workpool-cpu")[("cpu", "nanoseconds")]
        fb = j["flamebearer"]
        self.assertEqual(fb["numTicks"], want, "numTicks = go tool pprof total")
        tl = sum(j["timeline"]["samples"])
        self.assertEqual(tl, want, "timeline sum")
        groups = j.get("groups") or {}
        self.assertEqual(sorted(groups), ["eu", "us"], "group keys")
        self.assertEqual(sum(sum(g["samples"]) for g in groups.values()), tl, "groups sum = timeline sum")
        self.assertEqual(sum(groups["us"]["samples"]), totals("go/workpool.cpu.001")[("cpu", "nanoseconds")], "us group")
        self.assertEqual(j["metadata"]["format"], "single")
        self.assertEqual(j["timeline"]["durationDelta"], 15, "step for a 2-minute range")

    def test_render_without_group_by_has_same_timeline(self):
        t0 = State.t0_ms // 1000
        base = {"query": CPU + '{service_name="mapindex"}', "from": t0 - 60, "until": t0 + 60}
        a = get_json(State.server, self.render_path(**base))
        b = get_json(State.server, self.render_path(groupBy="region", **base))
        self.assertEqual(a["timeline"], b["timeline"])
        want = totals("merged/go-mapindex-cpu")[("cpu", "nanoseconds")]
        self.assertEqual(a["flamebearer"]["numTicks"], want)
        self.assertEqual(sum(a["timeline"]["samples"]), want)

    def test_render_timeline_on_step_boundary_same_with_and_without_group_by(self):
        """Known server bug (see the report): a profile whose time is exactly on a timeline step
        boundary lands one bucket earlier in the groupBy timeline than in the plain one."""
        t = (State.t0_ms // 1000 // 60) * 60 + 120  # a multiple of 15 s, past the dataset
        push_profile(State.server, [("__name__", "process_cpu"), ("service_name", "boundary")], "go/workpool.cpu.000", t * 1000)
        base = {"query": CPU + '{service_name="boundary"}', "from": t - 60, "until": t + 60}
        a = get_json(State.server, self.render_path(**base))
        b = get_json(State.server, self.render_path(groupBy="region", **base))
        want = totals("go/workpool.cpu.000")[("cpu", "nanoseconds")]
        self.assertEqual(sum(a["timeline"]["samples"]), want)
        self.assertEqual(sum(b["timeline"]["samples"]), want)
        self.assertEqual(a["timeline"], b["timeline"], "timeline with groupBy differs from the one without")

    def test_render_diff(self):
        t0 = State.t0_ms // 1000
        q = CPU + '{service_name="workpool"}'
        p = "/pyroscope/render-diff?" + urllib.parse.urlencode(
            {"leftQuery": q, "leftFrom": t0 - 5, "leftUntil": t0 + 5, "rightQuery": q, "rightFrom": t0 + 5, "rightUntil": t0 + 15}
        )
        j = get_json(State.server, p)
        fb = j["flamebearer"]
        # leftTicks/rightTicks sit beside flamebearer (Pyroscope's FlamebearerProfileV1)
        self.assertEqual(j["leftTicks"], totals("go/workpool.cpu.000")[("cpu", "nanoseconds")])
        self.assertEqual(j["rightTicks"], totals("go/workpool.cpu.001")[("cpu", "nanoseconds")])
        self.assertEqual(fb["numTicks"], j["leftTicks"] + j["rightTicks"])
        self.assertEqual(j["metadata"]["format"], "double")
        self.assertIsNone(j.get("timeline"))
        self.assertTrue(all(len(lv) % 7 == 0 for lv in fb["levels"]))
        self.assertEqual(fb["levels"][0][1], j["leftTicks"])
        self.assertEqual(fb["levels"][0][4], j["rightTicks"])

    def test_render_diff_mismatched_types_is_400(self):
        t0 = State.t0_ms // 1000
        p = "/pyroscope/render-diff?" + urllib.parse.urlencode(
            {"leftQuery": CPU + "{}", "leftFrom": t0 - 5, "leftUntil": t0 + 5,
             "rightQuery": SAMPLES + "{}", "rightFrom": t0 - 5, "rightUntil": t0 + 5}
        )
        get_json(State.server, p, want=400)

    def test_label_values_name(self):
        j = get_json(State.server, "/pyroscope/label-values?label=__name__")
        for want in (CPU, SAMPLES, "memory:inuse_space:bytes:space:bytes", "goroutines:goroutine:count:goroutine:count"):
            self.assertIn(want, j)
        st, _, body = State.server.connect_json(
            "/querier.v1.QuerierService/ProfileTypes", {"start": str(State.t0_ms - 60000), "end": str(State.t0_ms + 60000)}
        )
        self.assertEqual(st, 200, error_text(body))
        ids = sorted(t["ID"] for t in json.loads(body)["profileTypes"])
        self.assertEqual(sorted(j), ids, "label-values?label=__name__ = ProfileTypes")
        get_json(State.server, "/pyroscope/label-values", want=400)

    def test_label_values_other_label(self):
        j = get_json(State.server, "/pyroscope/label-values?label=region")
        self.assertEqual(sorted(j), ["eu", "us"])


# ------------------------------------------------------------------------------------------------
# Span profiles: a real pprof with span_id labels on some samples (main server)

SPAN_A, SPAN_B = "00000000000a11ce", "0000000000000b0b"


def decode_tree_bytes(buf):
    """pyroscope-api.md §2.6 tree bytes -> sum of self values."""
    pos, total, left = 0, 0, [1]

    def uvarint():
        nonlocal pos
        r, shift = 0, 0
        while True:
            b = buf[pos]
            pos += 1
            r |= (b & 0x7F) << shift
            if not b & 0x80:
                return r
            shift += 7

    while left:
        if left[-1] == 0:
            left.pop()
            continue
        left[-1] -= 1
        n = uvarint()
        pos += n
        total += uvarint()
        left.append(uvarint())
    return total


class SpanProfile(unittest.TestCase):
    """SelectMergeSpanProfile and span_selector against labelled samples of a real profile."""

    @classmethod
    def setUpClass(cls):
        with open(os.path.join(ht.TESTDATA, "go", "workpool.cpu.000.pb.gz"), "rb") as fh:
            p = ht.ctx.pb.profile.Profile()
            p.ParseFromString(gzip.decompress(fh.read()))
        cls.t_ms = State.t0_ms + 9000  # inside the dataset's span: the newest profile time stays
        p.time_nanos = cls.t_ms * 1000000
        strings = list(p.string_table)

        def s(v):
            p.string_table.append(v)
            return len(p.string_table) - 1

        key, pid_key = s("span_id"), s("profile_id")
        a, b = s(SPAN_A), s(SPAN_B)
        cpu = [strings[t.type] for t in p.sample_type].index("cpu")
        cls.want = {SPAN_A: 0, SPAN_B: 0}
        for i, smp in enumerate(p.sample):
            if i % 4 == 0:
                smp.label.add(key=key, str=a)
                span = SPAN_A
            elif i % 4 == 1:
                smp.label.add(key=pid_key, str=b)  # Pyroscope renames profile_id to span_id
                span = SPAN_B
            else:
                continue
            if len(smp.location_id) > 0:
                cls.want[span] += smp.value[cpu]
        cls.period = p.period
        cls.svc = "spans-python"
        sid = str(uuid.uuid5(uuid.NAMESPACE_URL, "spans-python"))
        req = ht.push_request_proto([("__name__", "process_cpu"), ("service_name", cls.svc)], gzip.compress(p.SerializeToString()), sid)
        st, _, body = State.server.request("POST", "/push.v1.PusherService/Push", req.SerializeToString(),
                                           {"Content-Type": "application/proto", "Connect-Protocol-Version": "1"})
        if st != 200:
            raise AssertionError("Push: HTTP %d %s" % (st, error_text(body)))
        cls.win = (cls.t_ms - 30000, cls.t_ms + 30000)

    def span_profile(self, codec, spans, fmt=None, want=200):
        sel = '{service_name="%s"}' % self.svc
        method = "/querier.v1.QuerierService/SelectMergeSpanProfile"
        if codec == "json":
            msg = {"profileTypeID": CPU, "labelSelector": sel, "spanSelector": spans,
                   "start": str(self.win[0]), "end": str(self.win[1]), "maxNodes": "1048576"}
            if fmt:
                msg["format"] = fmt
            st, _, body = State.server.connect_json(method, msg)
            self.assertEqual(st, want, error_text(body))
            if st != 200:
                return json.loads(body)
            j = json.loads(body)
            if fmt == "PROFILE_FORMAT_TREE":
                return decode_tree_bytes(base64.b64decode(j.get("tree", "")))
            return int(j.get("flamegraph", {}).get("total", "0"))
        req = ht.ctx.pb.querier.SelectMergeSpanProfileRequest(
            profile_typeID=CPU, label_selector=sel, span_selector=spans, start=self.win[0], end=self.win[1], max_nodes=1048576)
        if fmt:
            req.format = ht.ctx.pb.querier.ProfileFormat.Value(fmt)
        st, _, body = State.server.connect_proto(method, req)
        self.assertEqual(st, want, error_text(body))
        if st != 200:
            return json.loads(body)
        r = ht.ctx.pb.querier.SelectMergeSpanProfileResponse()
        r.ParseFromString(body)
        if fmt == "PROFILE_FORMAT_TREE":
            return decode_tree_bytes(r.tree)
        return r.flamegraph.total

    def test_span_totals_in_both_codecs_and_formats(self):
        self.assertGreater(self.want[SPAN_A], 0)
        self.assertGreater(self.want[SPAN_B], 0)
        for codec in ("proto", "json"):
            self.assertEqual(self.span_profile(codec, [SPAN_A]), self.want[SPAN_A], codec)
            self.assertEqual(self.span_profile(codec, [SPAN_B.upper()]), self.want[SPAN_B], codec + " (profile_id label)")
            both = self.want[SPAN_A] + self.want[SPAN_B]
            self.assertEqual(self.span_profile(codec, [SPAN_B, SPAN_A], "PROFILE_FORMAT_FLAMEGRAPH"), both, codec)
            self.assertEqual(self.span_profile(codec, [SPAN_A, SPAN_B], "PROFILE_FORMAT_TREE"), both, codec + " tree")
            self.assertEqual(self.span_profile(codec, ["00000000000000ff"]), 0, codec + " unknown span")

    def test_span_selector_of_select_merge_stacktraces(self):
        sel = '{service_name="%s"}' % self.svc
        whole = totals("go/workpool.cpu.000")[("cpu", "nanoseconds")]
        for codec in ("proto", "json"):
            st, _, body = ht.smst_request(State.server, codec, CPU, sel, self.win[0], self.win[1], 1048576)
            self.assertEqual(st, 200, error_text(body))
            if codec == "json":
                total = int(json.loads(body)["flamegraph"]["total"])
            else:
                r = ht.ctx.pb.querier.SelectMergeStacktracesResponse()
                r.ParseFromString(body)
                total = r.flamegraph.total
            self.assertEqual(total, whole, "span ids change no other query")
        msg = {"profileTypeID": CPU, "labelSelector": sel, "spanSelector": [SPAN_B],
               "start": str(self.win[0]), "end": str(self.win[1])}
        st, _, body = State.server.connect_json(ht.SMST, msg)
        self.assertEqual(st, 200, error_text(body))
        self.assertEqual(int(json.loads(body)["flamegraph"]["total"]), self.want[SPAN_B])

    def test_bad_span_id_is_400_naming_it(self):
        for codec in ("proto", "json"):
            j = self.span_profile(codec, [SPAN_A, "12345"], want=400)
            self.assertEqual(j.get("code"), "invalid_argument", j)
            self.assertIn("12345", j.get("message", ""), j)

    def test_exported_pprof_keeps_the_period(self):
        """The pprof export writes the ingested profile's period (what `go tool pprof` prints)."""
        self.assertEqual(self.period, 10000000)
        req = ht.ctx.pb.querier.SelectMergeProfileRequest(
            profile_typeID=CPU, label_selector='{service_name="%s"}' % self.svc, start=self.win[0], end=self.win[1])
        st, _, body = State.server.connect_proto("/querier.v1.QuerierService/SelectMergeProfile", req)
        self.assertEqual(st, 200, error_text(body))
        p = ht.ctx.pb.profile.Profile()
        p.ParseFromString(body)
        self.assertEqual(p.period, self.period)
        if shutil.which("go"):
            path = os.path.join(ht.ctx.tmp, "span-export.pb")
            with open(path, "wb") as fh:
                fh.write(body)
            out = subprocess.run(["go", "tool", "pprof", "-raw", path], capture_output=True, text=True, timeout=120)
            self.assertEqual(out.returncode, 0, out.stderr)
            self.assertIn("Period: %d" % self.period, out.stdout)


# ------------------------------------------------------------------------------------------------
# Multi-tenancy and settings durability (own servers)


class Exemplars(unittest.TestCase):
    """SelectSeries exemplars (EXEMPLAR_TYPE_INDIVIDUAL) and profile_id_selector: Grafana's way from a
    point of a time series to the one profile behind it."""

    SVC = "exemplars-python"
    FILES = ["go/workpool.cpu.000", "go/workpool.cpu.001", "go/workpool.cpu.002"]

    @classmethod
    def setUpClass(cls):
        cls.t_ms = State.t0_ms + 20000
        cls.ids, cls.cpu = [], []
        for i, f in enumerate(cls.FILES):
            labels = sorted([("__name__", "process_cpu"), ("service_name", cls.SVC), ("pod", "pod-%d" % i)])
            t = cls.t_ms + i * 1000
            push_profile(State.server, labels, f, t)
            # push_profile's id, as it derives it
            cls.ids.append(str(uuid.uuid5(uuid.NAMESPACE_URL, "%s|%s|%d" % (f, labels, t))))
            cls.cpu.append(totals(f)[("cpu", "nanoseconds")])
        cls.sel = '{service_name="%s"}' % cls.SVC
        cls.win = (cls.t_ms - 60000, cls.t_ms + 60000)

    def series(self, codec, exemplar_type, group_by=(), step=120.0, want=200):
        if codec == "json":
            msg = {"profileTypeID": CPU, "labelSelector": self.sel, "start": str(self.win[0]),
                   "end": str(self.win[1]), "step": step, "groupBy": list(group_by)}
            if exemplar_type is not None:
                msg["exemplarType"] = exemplar_type
            st, _, body = State.server.connect_json("/querier.v1.QuerierService/SelectSeries", msg)
            self.assertEqual(st, want, error_text(body))
            return json.loads(body)
        req = ht.ctx.pb.querier.SelectSeriesRequest(profile_typeID=CPU, label_selector=self.sel, start=self.win[0],
                                                    end=self.win[1], step=step, group_by=list(group_by))
        if exemplar_type is not None:
            req.exemplar_type = ht.ctx.pb.types.ExemplarType.Value(exemplar_type)
        st, _, body = State.server.connect_proto("/querier.v1.QuerierService/SelectSeries", req)
        self.assertEqual(st, want, error_text(body))
        if st != 200:
            return json.loads(body)
        r = ht.ctx.pb.querier.SelectSeriesResponse()
        r.ParseFromString(body)
        from google.protobuf import json_format
        return json_format.MessageToDict(r)

    def test_one_exemplar_per_point_the_highest_profile(self):
        best = max(range(3), key=lambda i: self.cpu[i])
        for codec in ("proto", "json"):
            j = self.series(codec, "EXEMPLAR_TYPE_INDIVIDUAL", group_by=["service_name"])
            self.assertEqual(len(j["series"]), 1, j)
            pts = j["series"][0]["points"]
            self.assertEqual(len(pts), 1, pts)  # one 120 s step holds the three profiles
            self.assertEqual(pts[0]["value"], sum(self.cpu))
            ex = pts[0]["exemplars"]
            self.assertEqual(len(ex), 1, ex)
            self.assertEqual(ex[0]["profileId"], self.ids[best], codec)
            self.assertEqual(int(ex[0]["value"]), self.cpu[best])
            self.assertEqual(int(ex[0]["timestamp"]), self.t_ms + best * 1000)
            labels = {l["name"]: l["value"] for l in ex[0].get("labels", [])}
            self.assertEqual(labels, {"pod": "pod-%d" % best}, "group_by and internal labels are left out")
            # Grouped by pod: every point's exemplar is its only profile.
            j = self.series(codec, "EXEMPLAR_TYPE_INDIVIDUAL", group_by=["pod"])
            got = {s["labels"][0]["value"]: s["points"][0]["exemplars"][0]["profileId"] for s in j["series"]}
            self.assertEqual(got, {"pod-%d" % i: self.ids[i] for i in range(3)})

    def test_no_exemplars_unless_asked(self):
        for t in (None, "EXEMPLAR_TYPE_NONE", "EXEMPLAR_TYPE_UNSPECIFIED"):
            j = self.series("json", t)
            self.assertNotIn("exemplars", j["series"][0]["points"][0], t)

    def test_span_exemplars_are_unimplemented_and_unknown_types_refused(self):
        j = self.series("json", "EXEMPLAR_TYPE_SPAN", want=501)
        self.assertEqual(j["code"], "unimplemented")
        self.assertIn("span", j["message"])
        st, _, body = State.server.connect_json("/querier.v1.QuerierService/SelectSeries", {
            "profileTypeID": CPU, "labelSelector": self.sel, "start": str(self.win[0]), "end": str(self.win[1]),
            "step": 60, "exemplarType": 9})
        self.assertEqual(st, 400, error_text(body))
        self.assertIn("exemplar type 9", json.loads(body)["message"])

    def merged_total(self, codec, ids, want=200):
        if codec == "json":
            msg = {"profileTypeID": CPU, "labelSelector": self.sel, "start": str(self.win[0]),
                   "end": str(self.win[1]), "profileIdSelector": ids}
            st, _, body = State.server.connect_json(ht.SMST, msg)
            self.assertEqual(st, want, error_text(body))
            return int(json.loads(body).get("flamegraph", {}).get("total", "0")) if st == 200 else json.loads(body)
        req = ht.ctx.pb.querier.SelectMergeStacktracesRequest(
            profile_typeID=CPU, label_selector=self.sel, start=self.win[0], end=self.win[1], profile_id_selector=ids)
        st, _, body = State.server.connect_proto(ht.SMST, req)
        self.assertEqual(st, want, error_text(body))
        if st != 200:
            return json.loads(body)
        r = ht.ctx.pb.querier.SelectMergeStacktracesResponse()
        r.ParseFromString(body)
        return r.flamegraph.total

    def test_profile_id_selector_picks_exactly_those_profiles(self):
        for codec in ("proto", "json"):
            self.assertEqual(self.merged_total(codec, []), sum(self.cpu), codec)
            self.assertEqual(self.merged_total(codec, [self.ids[1]]), self.cpu[1], codec)
            self.assertEqual(self.merged_total(codec, [self.ids[2].upper(), self.ids[0]]), self.cpu[0] + self.cpu[2], codec)
            self.assertEqual(self.merged_total(codec, [str(uuid.uuid4())]), 0, codec)
        # SelectMergeProfile: the exported pprof holds that profile's samples only.
        req = ht.ctx.pb.querier.SelectMergeProfileRequest(
            profile_typeID=CPU, label_selector=self.sel, start=self.win[0], end=self.win[1],
            profile_id_selector=[self.ids[1]])
        st, _, body = State.server.connect_proto("/querier.v1.QuerierService/SelectMergeProfile", req)
        self.assertEqual(st, 200, error_text(body))
        p = ht.ctx.pb.profile.Profile()
        p.ParseFromString(gzip.decompress(body) if body[:2] == b"\x1f\x8b" else body)
        self.assertEqual(sum(s.value[0] for s in p.sample), self.cpu[1])

    def test_bad_profile_id_is_400_and_trace_ids_501(self):
        j = self.merged_total("json", [self.ids[0], "not-a-uuid"], want=400)
        self.assertEqual(j["code"], "invalid_argument")
        self.assertIn("not-a-uuid", j["message"])
        st, _, body = State.server.connect_json(ht.SMST, {
            "profileTypeID": CPU, "labelSelector": self.sel, "start": str(self.win[0]), "end": str(self.win[1]),
            "traceIdSelector": ["0123456789abcdef0123456789abcdef"]})
        self.assertEqual(st, 501, error_text(body))
        self.assertIn("trace_id_selector", json.loads(body)["message"])


class Tenancy(unittest.TestCase):
    srv = None

    @classmethod
    def setUpClass(cls):
        cls.srv = ht.Server("tenants", os.path.join(ht.ctx.tmp, "tenants-data"), {"server": ["multitenancy = true"]})
        cls.srv.start()
        t = State.t0_ms
        push_profile(cls.srv, [("__name__", "process_cpu"), ("service_name", "svc-a"), ("only_a", "1")], "go/workpool.cpu.000", t, tenant="a")
        push_profile(cls.srv, [("__name__", "process_cpu"), ("service_name", "svc-b")], "go/mapindex.cpu.000", t, tenant="b")
        cls.win = {"start": str(t - 60000), "end": str(t + 60000)}

    @classmethod
    def tearDownClass(cls):
        cls.srv.kill()

    def call(self, method, msg, tenant):
        h = {"Content-Type": "application/json"}
        if tenant is not None:
            h["X-Scope-OrgID"] = tenant
        st, _, body = self.srv.request("POST", method, json.dumps(msg).encode(), h)
        return st, body

    def ok(self, method, msg, tenant):
        st, body = self.call(method, msg, tenant)
        self.assertEqual(st, 200, "%s as %r: %s" % (method, tenant, error_text(body)))
        return json.loads(body)

    def cpu_total(self, selector, tenant):
        j = self.ok(ht.SMST, dict(profileTypeID=CPU, labelSelector=selector, maxNodes="1048576", **self.win), tenant)
        return int(j.get("flamegraph", {}).get("total", "0"))

    def test_no_org_id_is_401_unauthenticated(self):
        for method, msg in (("/querier.v1.QuerierService/LabelNames", {}), ("/settings.v1.SettingsService/Get", {})):
            st, body = self.call(method, msg, None)
            self.assertEqual(st, 401, method)
            self.assertEqual(json.loads(body).get("code"), "unauthenticated", body)
        st, _, body = self.srv.request("GET", "/pyroscope/render?" + urllib.parse.urlencode({"query": CPU + "{}", "from": "now-1h", "until": "now"}))
        self.assertEqual(st, 401, "render without X-Scope-OrgID")

    def test_tenant_isolation(self):
        a_total = totals("go/workpool.cpu.000")[("cpu", "nanoseconds")]
        b_total = totals("go/mapindex.cpu.000")[("cpu", "nanoseconds")]
        names_b = self.ok("/querier.v1.QuerierService/LabelNames", dict(matchers=["{}"], **self.win), "b")["names"]
        self.assertNotIn("only_a", names_b)
        names_a = self.ok("/querier.v1.QuerierService/LabelNames", dict(matchers=["{}"], **self.win), "a")["names"]
        self.assertIn("only_a", names_a)
        series_b = self.ok("/querier.v1.QuerierService/Series", dict(matchers=["{}"], labelNames=["service_name"], **self.win), "b")
        self.assertEqual(sorted({l["value"] for ls in series_b.get("labelsSet", []) for l in ls["labels"]}), ["svc-b"])
        self.assertEqual(self.cpu_total('{service_name="svc-a"}', "b"), 0, "tenant b sees tenant a's stacks")
        self.assertEqual(self.cpu_total("{}", "b"), b_total)
        self.assertEqual(self.cpu_total("{}", "a"), a_total)
        t0 = State.t0_ms // 1000
        render = "/pyroscope/render?" + urllib.parse.urlencode({"query": CPU + '{service_name="svc-a"}', "from": t0 - 60, "until": t0 + 60})
        self.assertEqual(get_json(self.srv, render, {"X-Scope-OrgID": "b"})["flamebearer"]["numTicks"], 0)
        self.assertEqual(get_json(self.srv, render, {"X-Scope-OrgID": "a"})["flamebearer"]["numTicks"], a_total)
        # settings are per tenant
        self.ok("/settings.v1.SettingsService/Set", {"setting": {"name": "pluginSettings", "value": "{\"a\":1}", "modifiedAt": "5"}}, "a")
        got_b = self.ok("/settings.v1.SettingsService/Get", {}, "b").get("settings", [])
        self.assertEqual(got_b, [], "tenant b sees tenant a's settings")
        got_a = self.ok("/settings.v1.SettingsService/Get", {}, "a").get("settings", [])
        self.assertEqual([(s["name"], s["value"]) for s in got_a], [("pluginSettings", "{\"a\":1}")])

    def test_pipe_reads_both_tenants(self):
        a_total = totals("go/workpool.cpu.000")[("cpu", "nanoseconds")]
        b_total = totals("go/mapindex.cpu.000")[("cpu", "nanoseconds")]
        self.assertEqual(self.cpu_total("{}", "a|b"), a_total + b_total)
        self.assertEqual(self.cpu_total("{}", "b|a"), a_total + b_total)
        v = self.ok("/querier.v1.QuerierService/LabelValues", dict(name="service_name", matchers=["{}"], **self.win), "a|b")
        self.assertEqual(v["names"], ["svc-a", "svc-b"])


class SettingsDurability(unittest.TestCase):
    def test_settings_survive_sigkill(self):
        srv = ht.Server("settings", os.path.join(ht.ctx.tmp, "settings-data"))
        srv.start()
        try:
            value = json.dumps({"enableFlameGraphDotComExport": False, "maxNodes": 16384})
            st, _, body = srv.connect_json("/settings.v1.SettingsService/Set", {"setting": {"name": "pluginSettings", "value": value, "modifiedAt": "1767225600123"}})
            self.assertEqual(st, 200, error_text(body))
            st, _, body = srv.connect_json("/settings.v1.SettingsService/Set", {"setting": {"name": "gone", "value": "x", "modifiedAt": "1"}})
            self.assertEqual(st, 200, error_text(body))
            st, _, body = srv.connect_json("/settings.v1.SettingsService/Delete", {"name": "gone"})
            self.assertEqual(st, 200, error_text(body))
            srv.kill(signal.SIGKILL)
            srv.start()
            st, _, body = srv.connect_json("/settings.v1.SettingsService/Get", {})
            self.assertEqual(st, 200, error_text(body))
            got = [(s["name"], s["value"], s.get("modifiedAt")) for s in json.loads(body).get("settings", [])]
            self.assertEqual(got, [("pluginSettings", value, "1767225600123")])
            # the stored modifiedAt still guards against older writes after the restart
            st, _, body = srv.connect_json("/settings.v1.SettingsService/Set", {"setting": {"name": "pluginSettings", "value": "old", "modifiedAt": "1767225600000"}})
            self.assertEqual(st, 409, error_text(body))
            self.assertEqual(json.loads(body).get("code"), "already_exists")
        finally:
            srv.kill()


if __name__ == "__main__":
    sys.exit(ht.run_main("query_api", [Golden, NodeClient, Render, SpanProfile, Exemplars, Tenancy, SettingsDurability], __doc__, setup=setup))
