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

Stdlib only, plus Debian's python3-protobuf; the Python protobuf modules are generated with protoc
at run time into a temp dir. Every server this script starts binds 127.0.0.1 on a free port and is
killed by its pid; every HTTP call has a timeout.
"""

import os
import sys

# Debian's python3-protobuf lives in /usr/lib/python3/dist-packages: when `python3` on PATH is
# another interpreter (pyenv, venv) that lacks it, re-run under the system one.
try:
    import google.protobuf  # noqa: F401
except ImportError:
    if os.path.exists("/usr/bin/python3") and os.path.realpath(sys.executable) != os.path.realpath(
        "/usr/bin/python3"
    ) and not os.environ.get("HEARTH_TEST_REEXEC"):
        os.environ["HEARTH_TEST_REEXEC"] = "1"
        os.execv("/usr/bin/python3", ["/usr/bin/python3"] + sys.argv)
    sys.stderr.write("test_foundation: needs python3-protobuf (apt-get install python3-protobuf)\n")
    sys.exit(2)

import base64
import bisect
import glob
import gzip
import http.client
import json
import random
import re
import shutil
import signal
import subprocess
import tempfile
import time
import unittest
import urllib.parse
import uuid
import xml.etree.ElementTree as ET

HTTP_TIMEOUT = 30  # seconds, every request
START_TIMEOUT = 30  # seconds until "listening on" and /ready
MAX_NODES = 1048576  # the largest accepted max_nodes: nothing folds into "other"

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE_ROOT = os.environ.get("HEARTH_SOURCE_ROOT") or os.path.normpath(os.path.join(HERE, "..", ".."))
TESTDATA = os.environ.get("HEARTH_TESTDATA") or os.path.normpath(
    os.path.join(SOURCE_ROOT, "..", "shared", "testdata")
)
HEARTH = None  # set in main()
TMP = None  # temp dir of this run
pb = None  # namespace of the generated modules (profile_pb2, types_pb2, push_pb2, querier_pb2)

# ------------------------------------------------------------------------------------------------
# Generated protobuf modules


class _PB:
    pass


def generate_protos(tmp):
    out = os.path.join(tmp, "pbgen")
    os.makedirs(out, exist_ok=True)
    proto_dir = os.path.join(SOURCE_ROOT, "cluster", "proto")
    protos = sorted(glob.glob(os.path.join(proto_dir, "*.proto")))
    if not protos:
        raise RuntimeError("no .proto files in " + proto_dir)
    subprocess.run(
        ["protoc", "--python_out=" + out, "--proto_path=" + proto_dir] + protos,
        check=True,
        timeout=60,
    )
    sys.path.insert(0, out)
    ns = _PB()
    import profile_pb2, types_pb2, push_pb2, querier_pb2  # noqa: E401

    ns.profile = profile_pb2
    ns.types = types_pb2
    ns.push = push_pb2
    ns.querier = querier_pb2
    return ns


# ------------------------------------------------------------------------------------------------
# Servers: started by us, killed by pid.

ALL_SERVERS = []


class Server:
    def __init__(self, name, data_dir, extra_toml=""):
        self.name = name
        self.data_dir = data_dir
        self.extra_toml = extra_toml
        self.proc = None
        self.port = None
        self.log_path = None
        self.runs = 0

    def config_text(self):
        server_extra, storage_extra = "", ""
        for line in self.extra_toml.splitlines():
            sect, _, kv = line.partition(":")
            if sect == "server":
                server_extra += kv + "\n"
            elif sect == "storage":
                storage_extra += kv + "\n"
        return (
            '[server]\nhttp_listen = "127.0.0.1:0"\n%s[storage]\npath = "%s"\n%s'
            % (server_extra, self.data_dir, storage_extra)
        )

    def start(self):
        assert self.proc is None or self.proc.poll() is not None, "already running"
        self.runs += 1
        cfg = os.path.join(TMP, "%s.%d.toml" % (self.name, self.runs))
        with open(cfg, "w") as f:
            f.write(self.config_text())
        self.log_path = os.path.join(TMP, "%s.%d.log" % (self.name, self.runs))
        logf = open(self.log_path, "wb")
        self.proc = subprocess.Popen(
            [HEARTH, "--config", cfg], stdin=subprocess.DEVNULL, stdout=logf, stderr=logf
        )
        logf.close()
        if self not in ALL_SERVERS:
            ALL_SERVERS.append(self)
        self.port = None
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            if self.proc.poll() is not None:
                raise AssertionError(
                    "hearth exited with %s before listening; log:\n%s" % (self.proc.returncode, self.log())
                )
            m = re.search(r"listening on http://127\.0\.0\.1:(\d+)", self.log())
            if m:
                self.port = int(m.group(1))
                break
            if time.monotonic() > deadline:
                raise AssertionError("no 'listening on' line within %ds; log:\n%s" % (START_TIMEOUT, self.log()))
            time.sleep(0.05)
        last = None
        while True:
            try:
                st, _, body = self.request("GET", "/ready", timeout=5)
                last = (st, body)
                if st == 200:
                    return body
            except OSError as e:
                last = e
            if self.proc.poll() is not None:
                raise AssertionError("hearth exited with %s; log:\n%s" % (self.proc.returncode, self.log()))
            if time.monotonic() > deadline:
                raise AssertionError("/ready not 200 within %ds (last: %r); log:\n%s" % (START_TIMEOUT, last, self.log()))
            time.sleep(0.1)

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def kill(self, sig=signal.SIGKILL):
        if self.alive():
            try:
                os.kill(self.proc.pid, sig)
            except ProcessLookupError:
                pass
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=15)

    def log(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    # ---- HTTP

    def request(self, method, path, body=None, headers=None, timeout=HTTP_TIMEOUT):
        """Returns (status, headers dict (lower-case names), body bytes)."""
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            hdrs = dict(headers or {})
            send_error = None
            try:
                conn.request(method, path, body=body, headers=hdrs)
            except (BrokenPipeError, ConnectionResetError) as e:
                # A server may answer (413) and close before reading a large body.
                send_error = e
            try:
                resp = conn.getresponse()
            except (http.client.RemoteDisconnected, ConnectionResetError):
                if send_error:
                    raise send_error
                raise
            data = resp.read()
            return resp.status, {k.lower(): v for k, v in resp.getheaders()}, data
        finally:
            conn.close()

    def connect_json(self, method, msg, timeout=HTTP_TIMEOUT):
        st, h, body = self.request(
            "POST", method, json.dumps(msg).encode(), {"Content-Type": "application/json"}, timeout
        )
        return st, h, body

    def connect_proto(self, method, msg, timeout=HTTP_TIMEOUT):
        st, h, body = self.request(
            "POST",
            method,
            msg.SerializeToString(),
            {"Content-Type": "application/proto", "Connect-Protocol-Version": "1"},
            timeout,
        )
        return st, h, body


def kill_all_servers():
    for s in ALL_SERVERS:
        try:
            s.kill()
        except Exception as e:  # pragma: no cover
            sys.stderr.write("kill %s: %s\n" % (s.name, e))


# ------------------------------------------------------------------------------------------------
# Test data and expectations

FILES = []  # list of dicts: kind (go|node), stem, path, svc, expected_dir, method


def stem_of(path):
    return os.path.basename(path)[: -len(".pb.gz")]


def svc_of(stem):
    return stem.replace(".", "-")


def parse_totals(path):
    """totals.txt -> {(sample_type, unit): total}; the 'samples N' line (no slash) is skipped."""
    out = {}
    with open(path) as f:
        for line in f:
            parts = line.split()
            if len(parts) != 2 or "/" not in parts[0]:
                continue
            t, u = parts[0].split("/", 1)
            out[(t, u)] = int(parts[1])
    return out


_ROW = re.compile(r"^\s*(\S+)\s+(\S+%)\s+(\S+%)\s+(\S+)\s+(\S+%)\s+(.*)$")


def parse_top(path, n=10):
    """`go tool pprof -top` -> [(function, flat)] for the first n rows (flat as an exact int)."""
    with open(path) as f:
        lines = f.read().splitlines()
    idx = [i for i, l in enumerate(lines) if l.split()[:2] == ["flat", "flat%"]]
    if not idx:
        raise ValueError("no 'flat flat%' header in " + path)
    rows = []
    for line in lines[idx[0] + 1 :]:
        m = _ROW.match(line)
        if not m:
            raise ValueError("unparsable row in %s: %r" % (path, line))
        v = re.match(r"^(\d+)([A-Za-z]*)$", m.group(1))
        if not v:
            raise ValueError("non-integer flat in %s: %r" % (path, line))
        name = m.group(6)
        # pprof marks inlined frames: the function name is what precedes the marker
        for suffix in (" (inline)", " (partial-inline)"):
            if name.endswith(suffix):
                name = name[: -len(suffix)]
        rows.append((name, int(v.group(1))))
    return rows[:n]


# Ingest method per file, in sorted order: a cycle over the four paths, plus one ungzipped body.
METHODS = ["ingest_pprof_gz", "push_proto", "ingest_multipart", "push_json"]
UNGZIPPED_STEM = "workpool.goroutine"


def discover_files():
    files = []
    for kind in ("go", "node"):
        for p in sorted(glob.glob(os.path.join(TESTDATA, kind, "*.pb.gz"))):
            st = stem_of(p)
            files.append(
                {
                    "kind": kind,
                    "stem": st,
                    "path": p,
                    "svc": svc_of(st),
                    "expected_dir": os.path.join(TESTDATA, "expected", kind, st),
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


# ---- Flame graph decoding


def decode_fg_json(fg):
    names = list(fg.get("names", []))
    levels = [[int(x) for x in lv.get("values", [])] for lv in fg.get("levels", [])]
    return names, levels, int(fg.get("total", "0")), int(fg.get("maxSelf", "0"))


def decode_fg_proto(fg):
    return list(fg.names), [list(lv.values) for lv in fg.levels], fg.total, fg.max_self


def fg_nodes(names, levels):
    """-> list per depth of nodes dict(start, total, self, name, path); checks the encoding.
    Raises AssertionError on a malformed graph (a node outside every parent, bad name index,
    totals that do not add up)."""
    out = []
    for d, vals in enumerate(levels):
        if len(vals) % 4:
            raise AssertionError("level %d has %d values, not a multiple of 4" % (d, len(vals)))
        nodes = []
        prev_end = 0
        for i in range(0, len(vals), 4):
            x, total, self_, ni = vals[i : i + 4]
            start = prev_end + x
            prev_end = start + total
            if not 0 <= ni < len(names):
                raise AssertionError("level %d node %d: name index %d out of range" % (d, i // 4, ni))
            nodes.append({"start": start, "total": total, "self": self_, "name": names[ni], "kids": 0})
        out.append(nodes)
    # parents: the node of depth d-1 whose span holds [start, start+total)
    for d in range(len(out)):
        for n in out[d]:
            if d == 0:
                n["path"] = (n["name"],)
                continue
            parents = out[d - 1]
            starts = [p["start"] for p in parents]
            j = bisect.bisect_right(starts, n["start"]) - 1
            # zero-width parents may share a start: walk left to one that holds the child
            while j >= 0 and not (
                parents[j]["start"] <= n["start"] and n["start"] + n["total"] <= parents[j]["start"] + parents[j]["total"]
            ):
                j -= 1
            if j < 0:
                raise AssertionError(
                    "level %d node %r [%d,+%d) lies in no parent" % (d, n["name"], n["start"], n["total"])
                )
            p = parents[j]
            p["kids"] += n["total"]
            n["path"] = p["path"] + (n["name"],)
    for d, nodes in enumerate(out):
        for n in nodes:
            if d + 1 < len(out) or n["kids"]:
                if n["self"] + n["kids"] != n["total"]:
                    raise AssertionError(
                        "node %s: self %d + children %d != total %d"
                        % ("/".join(n["path"]), n["self"], n["kids"], n["total"])
                    )
    return out


def fg_summary(names, levels, total):
    """Canonical, order-independent answer: total, self per stack path, self per function."""
    nodes = fg_nodes(names, levels)
    if names[:1] != ["total"] and names:
        raise AssertionError("names[0] = %r, want 'total'" % names[0])
    by_path, by_name = {}, {}
    for d, lv in enumerate(nodes):
        for n in lv:
            if d == 0:
                continue
            if n["self"]:
                p = "/".join(n["path"][1:])
                by_path[p] = by_path.get(p, 0) + n["self"]
            by_name[n["name"]] = by_name.get(n["name"], 0) + n["self"]
    root_total = sum(n["total"] for n in nodes[0]) if nodes else 0
    if root_total != total:
        raise AssertionError("flamegraph.total %d != sum of root totals %d" % (total, root_total))
    return {"total": total, "by_path": by_path, "by_name": by_name, "has_other": "other" in names}


# ---- Queries


def error_text(body):
    try:
        j = json.loads(body)
        return "%s: %s" % (j.get("code"), j.get("message"))
    except Exception:
        return body.decode("utf-8", "replace")[:500]


def profile_types_for(server, svc):
    """{(sample_type, sample_unit): [profile type IDs]} of the series of one service."""
    s, e = q_range()
    st, _, body = server.connect_json(
        "/querier.v1.QuerierService/LabelValues",
        {"name": "__profile_type__", "matchers": ['{service_name="%s"}' % svc], "start": str(s), "end": str(e)},
    )
    if st != 200:
        raise AssertionError("LabelValues __profile_type__ for %s: HTTP %d %s" % (svc, st, error_text(body)))
    out = {}
    for pid in json.loads(body).get("names", []):
        parts = pid.split(":")
        if len(parts) < 5:
            raise AssertionError("malformed __profile_type__ %r for %s" % (pid, svc))
        out.setdefault((parts[1], parts[2]), []).append(pid)
    return out


def select_merge(server, ptype, selector, codec, max_nodes=MAX_NODES):
    """-> (names, levels, total, max_self) or raises AssertionError with the server's error."""
    s, e = q_range()
    if codec == "json":
        st, h, body = server.connect_json(
            "/querier.v1.QuerierService/SelectMergeStacktraces",
            {
                "profileTypeID": ptype,
                "labelSelector": selector,
                "start": str(s),
                "end": str(e),
                "maxNodes": str(max_nodes),
            },
        )
        if st != 200:
            raise AssertionError("SelectMergeStacktraces(json) %s %s: HTTP %d %s" % (ptype, selector, st, error_text(body)))
        ct = h.get("content-type", "")
        if not ct.startswith("application/json"):
            raise AssertionError("SelectMergeStacktraces(json) answered Content-Type %r" % ct)
        j = json.loads(body)
        fg = j.get("flamegraph", {})
        # proto3 JSON: int64 fields are strings (Pyroscope's UI types levels[].values as string[])
        for k in ("total", "maxSelf"):
            if k in fg and not isinstance(fg[k], str):
                raise AssertionError("SelectMergeStacktraces(json): flamegraph.%s is %r, want an int64 string" % (k, fg[k]))
        lv0 = (fg.get("levels") or [{}])[0].get("values", [])
        if lv0 and not isinstance(lv0[0], str):
            raise AssertionError("SelectMergeStacktraces(json): levels[].values are %r, want int64 strings" % type(lv0[0]).__name__)
        return decode_fg_json(fg)
    req = pb.querier.SelectMergeStacktracesRequest(
        profile_typeID=ptype, label_selector=selector, start=s, end=e, max_nodes=max_nodes
    )
    st, h, body = server.connect_proto("/querier.v1.QuerierService/SelectMergeStacktraces", req)
    if st != 200:
        raise AssertionError("SelectMergeStacktraces(proto) %s %s: HTTP %d %s" % (ptype, selector, st, error_text(body)))
    ct = h.get("content-type", "")
    if ct != "application/proto":
        raise AssertionError("SelectMergeStacktraces(proto) answered Content-Type %r" % ct)
    resp = pb.querier.SelectMergeStacktracesResponse()
    resp.ParseFromString(body)
    return decode_fg_proto(resp.flamegraph)


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


def gz_profile_with_time(path, t_ns):
    """The file's pprof with time_nanos set to t_ns, gzipped (Push carries no timestamp of its own)."""
    with open(path, "rb") as fh:
        raw = gzip.decompress(fh.read())
    p = pb.profile.Profile()
    p.ParseFromString(raw)
    p.time_nanos = t_ns
    return gzip.compress(p.SerializeToString())


def multipart(fields):
    """fields: [(name, filename, content_type, bytes)] -> (content_type, body)."""
    boundary = "----hearthtest" + uuid.uuid4().hex
    out = b""
    for name, filename, ctype, data in fields:
        out += b"--" + boundary.encode() + b"\r\n"
        out += ('Content-Disposition: form-data; name="%s"; filename="%s"\r\n' % (name, filename)).encode()
        out += ("Content-Type: %s\r\n\r\n" % ctype).encode()
        out += data + b"\r\n"
    out += b"--" + boundary.encode() + b"--\r\n"
    return "multipart/form-data; boundary=" + boundary, out


def push_file(server, f, svc=None, method=None, t=None):
    """Sends one file by its method; returns (status, body, description)."""
    svc = svc or f["svc"]
    method = method or f["method"]
    t = t or int(time.time())
    with open(f["path"], "rb") as fh:
        gz = fh.read()
    if method.startswith("ingest"):
        labels = "env=test,file=%s" % f["stem"]
        q = {"from": str(t), "until": str(t)}
        if method == "ingest_multipart":
            name = "%s{otel.scope.name=com.grafana.pyroscope/nodejs,process.runtime.name=nodejs,%s}" % (svc, labels)
            q.update(name=name, spyName="nodespy")
            ctype, body = multipart([("profile", "profile", "application/octet-stream", gz)])
        else:
            q.update(name="%s{%s}" % (svc, labels), format="pprof", spyName="gospy")
            ctype = "application/octet-stream"
            body = gz if method == "ingest_pprof_gz" else gzip.decompress(gz)
        path = "/ingest?" + urllib.parse.urlencode(q)
        st, _, resp = server.request("POST", path, body, {"Content-Type": ctype})
        return st, resp, "POST %s (%s, %d bytes)" % (path, method, len(body))
    raw = gz_profile_with_time(f["path"], t * 1000000000)
    labels = [("__name__", push_name_for(f)), ("service_name", svc), ("env", "test")]
    sid = str(uuid.uuid4())
    if method == "push_proto":
        req = pb.push.PushRequest()
        s = req.series.add()
        for k, v in labels:
            s.labels.add(name=k, value=v)
        s.samples.add(raw_profile=raw, ID=sid)
        st, _, resp = server.connect_proto("/push.v1.PusherService/Push", req)
    else:
        msg = {
            "series": [
                {
                    "labels": [{"name": k, "value": v} for k, v in labels],
                    "samples": [{"rawProfile": base64.b64encode(raw).decode(), "ID": sid}],
                }
            ]
        }
        st, _, resp = server.connect_json("/push.v1.PusherService/Push", msg)
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
    exp_dir = os.path.join(TESTDATA, "expected", "merged", group)
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
        State.data_dir = os.path.join(TMP, "data")
        State.server = Server("main", State.data_dir)
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
            "/querier.v1.QuerierService/ProfileTypes", pb.querier.ProfileTypesRequest(start=s, end=e)
        )
        self.assertEqual(st, 200, error_text(body))
        resp = pb.querier.ProfileTypesResponse()
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
        t = int(time.time())
        q = {"name": name, "from": str(t), "until": str(t)}
        if fmt:
            q["format"] = fmt
        path = "/ingest?" + urllib.parse.urlencode(q)
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
        ctype, body = multipart([("profile", "profile", "application/octet-stream", b"\x00\x01garbage\xff" * 50)])
        desc, st, resp = self._ingest(body, fmt=None, ctype=ctype)
        self._expect_error(desc + " (multipart with a garbage profile)", st, resp, (400, 422), ("pprof", "profile", "protobuf", "decode", "parse"))

    def test_14_bad_push_raw_profile(self):
        req = pb.push.PushRequest()
        s = req.series.add()
        s.labels.add(name="__name__", value="process_cpu")
        s.labels.add(name="service_name", value="badinput")
        s.samples.add(raw_profile=b"\x1f\x8b\x08\x00garbage-after-magic", ID=str(uuid.uuid4()))
        st, _, body = self.srv.connect_proto("/push.v1.PusherService/Push", req)
        self._expect_error("Push with a corrupt gzip raw_profile", st, body, (400, 422), ("gzip", "pprof", "profile", "decompress"))

    def test_15_body_over_limit(self):
        big = b"\x00" * (16 * 1024 * 1024 + 4096)
        desc, st, body = self._ingest(big)
        self._expect_error(desc + " (16 MiB + 4 KiB body, default max_body_bytes 16 MiB)", st, body, (413,), ("body", "large", "limit", "size"))
        # and a small-limit server from config: 64 KiB
        small = Server("small-limit", os.path.join(TMP, "data-small"), 'server:max_body_bytes = "64KiB"')
        try:
            small.start()
            t = int(time.time())
            path = "/ingest?" + urllib.parse.urlencode({"name": "x", "from": t, "until": t, "format": "pprof"})
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

    def _smst(self, codec, **kw):
        s, e = q_range()
        if codec == "json":
            msg = {"profileTypeID": kw.get("ptype", "process_cpu:cpu:nanoseconds:cpu:nanoseconds"), "labelSelector": kw.get("sel", "{}"), "start": str(s), "end": str(e)}
            if "max_nodes" in kw:
                msg["maxNodes"] = str(kw["max_nodes"])
            return self.srv.connect_json("/querier.v1.QuerierService/SelectMergeStacktraces", msg)
        req = pb.querier.SelectMergeStacktracesRequest(
            profile_typeID=kw.get("ptype", "process_cpu:cpu:nanoseconds:cpu:nanoseconds"), label_selector=kw.get("sel", "{}"), start=s, end=e
        )
        if "max_nodes" in kw:
            req.max_nodes = kw["max_nodes"]
        return self.srv.connect_proto("/querier.v1.QuerierService/SelectMergeStacktraces", req)

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
            if codec == "proto":
                req = pb.push.PushRequest()
                s = req.series.add()
                s.labels.add(name="service_name", value="no-name")
                s.samples.add(raw_profile=gz, ID=str(uuid.uuid4()))
                st, _, body = self.srv.connect_proto("/push.v1.PusherService/Push", req)
            else:
                msg = {"series": [{"labels": [{"name": "service_name", "value": "no-name"}], "samples": [{"rawProfile": base64.b64encode(gz).decode(), "ID": str(uuid.uuid4())}]}]}
                st, _, body = self.srv.connect_json("/push.v1.PusherService/Push", msg)
            self._expect_error("Push(%s) without __name__" % codec, st, body, (400,), ("__name__", "name"))

    def test_22_health_check_window(self):
        st, h, body = self.srv.connect_proto("/querier.v1.QuerierService/ProfileTypes", pb.querier.ProfileTypesRequest(start=1000, end=4000))
        self.assertEqual(st, 200, "ProfileTypes(proto) start=1000 end=4000: HTTP %d %s" % (st, error_text(body)))
        self.assertEqual(h.get("content-type"), "application/proto")
        resp = pb.querier.ProfileTypesResponse()
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
        srv.extra_toml = "storage:head_max_age = 1"
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
        srv.extra_toml = ""
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
        p = subprocess.run([HEARTH] + list(args), stdin=subprocess.DEVNULL, capture_output=True, timeout=30)
        return p.returncode, p.stdout.decode("utf-8", "replace"), p.stderr.decode("utf-8", "replace")

    def write(self, name, text):
        path = os.path.join(TMP, name)
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
        cfg = self.write("unknown.toml", '[server]\nhttp_listen = "127.0.0.1:0"\nno_such_key_xyz = 1\n[storage]\npath = "%s"\n' % os.path.join(TMP, "d-unknown"))
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
        rc, out, err = self.run_hearth("--config", os.path.join(TMP, "does-not-exist.toml"))
        self.assertNotEqual(rc, 0)
        self.assertIn("does-not-exist.toml", err)


# ------------------------------------------------------------------------------------------------


class _JUnitResult(unittest.TextTestResult):
    def __init__(self, *a, **kw):
        super().__init__(*a, **kw)
        self.records = []
        self._t = {}

    def startTest(self, test):
        self._t[test.id()] = time.monotonic()
        super().startTest(test)

    def _rec(self, test, kind, text=""):
        self.records.append((test.id(), kind, text, time.monotonic() - self._t.get(test.id(), time.monotonic())))

    def addSuccess(self, test):
        super().addSuccess(test)
        self._rec(test, "pass")

    def addFailure(self, test, err):
        super().addFailure(test, err)
        self._rec(test, "failure", self._exc_info_to_string(err, test))

    def addError(self, test, err):
        super().addError(test, err)
        self._rec(test, "error", self._exc_info_to_string(err, test))

    def addSkip(self, test, reason):
        super().addSkip(test, reason)
        self._rec(test, "skipped", reason)


def write_junit(path, result):
    suite = ET.Element("testsuite", name="integration_foundation", tests=str(len(result.records)))
    suite.set("failures", str(sum(1 for r in result.records if r[1] == "failure")))
    suite.set("errors", str(sum(1 for r in result.records if r[1] == "error")))
    suite.set("skipped", str(sum(1 for r in result.records if r[1] == "skipped")))
    for tid, kind, text, dt in result.records:
        cls, _, name = tid.rpartition(".")
        tc = ET.SubElement(suite, "testcase", classname=cls, name=name, time="%.3f" % dt)
        if kind in ("failure", "error", "skipped"):
            ET.SubElement(tc, kind, message=text.splitlines()[-1][:200] if text else "").text = text
    ET.ElementTree(suite).write(path, encoding="utf-8", xml_declaration=True)


def main():
    global HEARTH, TMP, pb, FILES
    if len(sys.argv) < 2:
        sys.stderr.write(__doc__)
        return 2
    HEARTH = os.path.abspath(sys.argv[1])
    if not os.access(HEARTH, os.X_OK):
        sys.stderr.write("not an executable: %s\n" % HEARTH)
        return 2
    if not os.path.isdir(TESTDATA):
        sys.stderr.write("no testdata at %s (set HEARTH_TESTDATA)\n" % TESTDATA)
        return 2
    TMP = tempfile.mkdtemp(prefix="hearth-it-")
    started = time.monotonic()
    ok = False
    try:
        pb = generate_protos(TMP)
        FILES = discover_files()
        if len(FILES) < 4:
            sys.stderr.write("too few profiles under %s\n" % TESTDATA)
            return 2
        loader = unittest.TestLoader()
        names = sys.argv[2:]
        suite = unittest.TestSuite()
        for cls in (T, C):
            for n in sorted(loader.getTestCaseNames(cls)):
                if not names or any(x in n for x in names):
                    suite.addTest(cls(n))
        runner = unittest.TextTestRunner(verbosity=2, resultclass=_JUnitResult, stream=sys.stdout)
        result = runner.run(suite)
        junit = os.environ.get("HEARTH_TEST_JUNIT")
        if junit:
            write_junit(junit, result)
        ok = result.wasSuccessful()
        npass = sum(1 for r in result.records if r[1] == "pass")
        nfail = sum(1 for r in result.records if r[1] in ("failure", "error"))
        nskip = sum(1 for r in result.records if r[1] == "skipped")
        print("integration_foundation: %d passed, %d failed, %d skipped in %.1f s" % (npass, nfail, nskip, time.monotonic() - started))
        if not ok:
            for s in ALL_SERVERS:
                if s.log_path:
                    print("---- log of %s (%s), last 40 lines:" % (s.name, s.log_path))
                    print("\n".join(s.log().splitlines()[-40:]))
    finally:
        kill_all_servers()
        if ok and not os.environ.get("HEARTH_TEST_KEEP"):
            shutil.rmtree(TMP, ignore_errors=True)
        else:
            print("temp dir kept: " + TMP)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
