"""Shared helpers of the hearth integration tests (test_foundation.py, test_storage.py,
test_crash_loop.py): the server process (started by us on 127.0.0.1 port 0, killed by its pid),
HTTP/Connect calls with timeouts, protobuf modules generated with protoc at run time, flame-graph
decoding, the shared testdata's expected answers, and a unittest runner that writes per-case JUnit
to $HEARTH_TEST_JUNIT.

Stdlib only at import time; `ensure_system_python()` must be called by a script before anything
imports google.protobuf (it re-executes the script under /usr/bin/python3, where Debian's
python3-protobuf lives, when the first python3 on PATH lacks it).
"""

import bisect
import glob
import gzip
import http.client
import json
import os
import re
import shutil
import signal
import subprocess
import sys
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
TESTDATA = os.environ.get("HEARTH_TESTDATA") or os.path.normpath(os.path.join(SOURCE_ROOT, "..", "shared", "testdata"))


class _Ctx:
    hearth = None  # absolute path of the binary
    tmp = None  # temp dir of this run
    pb = None  # generated modules: .profile .types .push .querier


ctx = _Ctx()


def ensure_system_python(script):
    try:
        import google.protobuf  # noqa: F401
    except ImportError:
        if (
            os.path.exists("/usr/bin/python3")
            and os.path.realpath(sys.executable) != os.path.realpath("/usr/bin/python3")
            and not os.environ.get("HEARTH_TEST_REEXEC")
        ):
            os.environ["HEARTH_TEST_REEXEC"] = "1"
            os.execv("/usr/bin/python3", ["/usr/bin/python3"] + sys.argv)
        sys.stderr.write("%s: needs python3-protobuf (apt-get install python3-protobuf)\n" % script)
        sys.exit(2)


def generate_protos(tmp):
    out = os.path.join(tmp, "pbgen")
    os.makedirs(out, exist_ok=True)
    proto_dir = os.path.join(SOURCE_ROOT, "cluster", "proto")
    protos = sorted(glob.glob(os.path.join(proto_dir, "*.proto")))
    if not protos:
        raise RuntimeError("no .proto files in " + proto_dir)
    subprocess.run(["protoc", "--python_out=" + out, "--proto_path=" + proto_dir] + protos, check=True, timeout=60)
    sys.path.insert(0, out)
    import profile_pb2, types_pb2, push_pb2, querier_pb2  # noqa: E401

    ns = _Ctx()
    ns.profile, ns.types, ns.push, ns.querier = profile_pb2, types_pb2, push_pb2, querier_pb2
    return ns


# ------------------------------------------------------------------------------------------------
# Benchmark drivers over the segment files tools/query_bench --keep leaves (tools/*_bench.py)

BENCH_DAY_START_MS = 1793491200 * 1000  # tools/query_bench's day_start_ns


def process_cpu_s(pid):
    """The CPU time (utime + stime) a process has used, in seconds."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def server_on_segments(name, segments, query_lines=()):
    """A started hearth (one shard, compaction off, [query] `query_lines`) whose data dir under
    ctx.tmp holds copies of the segment files."""
    data = os.path.join(ctx.tmp, "data-" + name)
    seg_dir = os.path.join(data, "anonymous", "shard-0", "segments")
    os.makedirs(seg_dir)
    for i, s in enumerate(segments):
        shutil.copyfile(s, os.path.join(seg_dir, "L2-%016x.hseg" % (0xBE00 + i)))
    srv = Server(name, data, {"storage": ["shards = 1"], "compaction": ["enabled = false"], "query": list(query_lines)})
    srv.start()
    return srv


# ------------------------------------------------------------------------------------------------
# Servers

ALL_SERVERS = []


class Server:
    """One hearth process over one data dir. `sections` maps a TOML section name to the lines of
    that section (strings "key = value"); [server] http_listen and [storage] path are set here;
    extra_toml is appended (arrays of tables such as [[scrape]]).
    With early_reply, request() still reads the answer of a server that replied (413) and closed
    before it read all of a large body, instead of raising the send's BrokenPipeError."""

    def __init__(self, name, data_dir, sections=None, early_reply=False, extra_toml=""):
        self.name = name
        self.extra_toml = extra_toml  # appended as is (e.g. [[scrape]] tables)
        self.data_dir = data_dir
        self.sections = dict(sections or {})
        self.early_reply = early_reply
        self.proc = None
        self.port = None
        self.rpc_port = None  # the Cap'n Proto RPC port (hearthctl), logged after the HTTP one
        self.log_path = None
        self.runs = 0

    def config_text(self):
        server = ['http_listen = "127.0.0.1:0"']
        if not any(l.split("=")[0].strip() == "rpc_listen" for l in self.sections.get("server", [])):
            server.append('rpc_listen = "127.0.0.1:0"')
        secs = {"server": server, "storage": ['path = "%s"' % self.data_dir]}
        for k, lines in self.sections.items():
            secs.setdefault(k, []).extend(lines)
        return "".join("[%s]\n%s\n" % (k, "\n".join(v)) for k, v in secs.items()) + self.extra_toml

    def wants_rpc(self):
        """False when the test's [server] lines turn the RPC port off (rpc_listen = "")."""
        return not any(l.replace(" ", "") == 'rpc_listen=""' for l in self.sections.get("server", []))

    def start(self):
        """Starts the process and waits for its "listening on" line and a 200 from /ready."""
        self.launch()
        return self.wait_ready()

    def launch(self):
        """Starts the process and waits for its "listening on" line only (a cluster node is not
        ready before its peers run: start them all, then wait_ready() each)."""
        assert self.proc is None or self.proc.poll() is not None, "already running"
        self.runs += 1
        cfg = os.path.join(ctx.tmp, "%s.%d.toml" % (self.name, self.runs))
        with open(cfg, "w") as f:
            f.write(self.config_text())
        self.log_path = os.path.join(ctx.tmp, "%s.%d.log" % (self.name, self.runs))
        logf = open(self.log_path, "wb")
        self.proc = subprocess.Popen([ctx.hearth, "--config", cfg], stdin=subprocess.DEVNULL, stdout=logf, stderr=logf)
        logf.close()
        if self not in ALL_SERVERS:
            ALL_SERVERS.append(self)
        self.port = None
        self.deadline = time.monotonic() + START_TIMEOUT
        while True:
            if self.proc.poll() is not None:
                raise AssertionError("hearth exited with %s before listening; log:\n%s" % (self.proc.returncode, self.log()))
            m = re.search(r"listening on http://127\.0\.0\.1:(\d+)", self.log())
            r = re.search(r"rpc listening on 127\.0\.0\.1:(\d+)", self.log())
            if m and (r or not self.wants_rpc()):
                self.port = int(m.group(1))
                self.rpc_port = int(r.group(1)) if r else None
                break
            if time.monotonic() > self.deadline:
                raise AssertionError("no 'listening on' line within %ds; log:\n%s" % (START_TIMEOUT, self.log()))
            time.sleep(0.02)

    def wait_ready(self):
        """Polls /ready until 200 (within START_TIMEOUT of launch()); -> its body."""
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
            if time.monotonic() > self.deadline:
                raise AssertionError("/ready not 200 within %ds (last: %r); log:\n%s" % (START_TIMEOUT, last, self.log()))
            time.sleep(0.05)

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
        except (OSError, TypeError):
            return ""

    def all_logs(self):
        """Logs of every run of this server, oldest first."""
        out = []
        for i in range(1, self.runs + 1):
            try:
                with open(os.path.join(ctx.tmp, "%s.%d.log" % (self.name, i)), "rb") as f:
                    out.append(f.read().decode("utf-8", "replace"))
            except OSError:
                pass
        return "\n".join(out)

    # ---- HTTP

    def request(self, method, path, body=None, headers=None, timeout=HTTP_TIMEOUT, port=None):
        """Returns (status, headers dict (lower-case names), body bytes)."""
        conn = http.client.HTTPConnection("127.0.0.1", port or self.port, timeout=timeout)
        try:
            send_error = None
            try:
                conn.request(method, path, body=body, headers=dict(headers or {}))
            except (BrokenPipeError, ConnectionResetError) as e:
                if not self.early_reply:
                    raise
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
        return self.request("POST", method, json.dumps(msg).encode(), {"Content-Type": "application/json"}, timeout)

    def connect_proto(self, method, msg, timeout=HTTP_TIMEOUT):
        return self.request(
            "POST", method, msg.SerializeToString(),
            {"Content-Type": "application/proto", "Connect-Protocol-Version": "1"}, timeout,
        )

    def metrics(self):
        """{metric name: sum over its label sets}."""
        st, _, body = self.request("GET", "/metrics")
        if st != 200:
            raise AssertionError("GET /metrics: HTTP %d" % st)
        out = {}
        for m in re.finditer(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{[^}]*\})?\s+(\S+)", body.decode(), re.M):
            try:
                out[m.group(1)] = out.get(m.group(1), 0.0) + float(m.group(2))
            except ValueError:
                pass
        return out

    def compact(self):
        """POST /admin/compact -> the JSON report."""
        # The periodic compactor may be mid-run (429 "a compaction run is in progress"): wait for it.
        deadline = time.monotonic() + 60
        while True:
            st, _, body = self.request("POST", "/admin/compact", b"", timeout=120)
            if st != 429 or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        if st != 200:
            raise AssertionError("POST /admin/compact: HTTP %d %s" % (st, error_text(body)))
        return json.loads(body)

    def compact_until_idle(self, max_runs=12):
        """Runs /admin/compact until a run has no job; -> (list of reports, summed report)."""
        reports = []
        for _ in range(max_runs):
            r = self.compact()
            reports.append(r)
            if r.get("jobs", 0) == 0:
                break
        else:
            raise AssertionError("/admin/compact still had jobs after %d runs: %r" % (max_runs, reports))
        total = {}
        for r in reports:
            for k, v in r.items():
                total[k] = total.get(k, 0) + v
        return reports, total

    def wait_heads_sealed(self, timeout=20):
        """Waits until every in-memory head is empty (hearth_head_profiles == 0): everything acked
        so far is in segment files."""
        deadline = time.monotonic() + timeout
        while True:
            v = self.metrics().get("hearth_head_profiles", None)
            if v == 0:
                return
            if time.monotonic() > deadline:
                raise AssertionError("heads not sealed within %ds (hearth_head_profiles=%r); log tail:\n%s" % (timeout, v, self.log()[-3000:]))
            time.sleep(0.1)

    def segment_files(self, suffix=".hseg"):
        """Paths, relative to the data dir, of every segment file of every tenant and shard."""
        out = []
        for p in glob.glob(os.path.join(self.data_dir, "*", "shard-*", "segments", "*")):
            if p.endswith(suffix):
                out.append(os.path.relpath(p, self.data_dir))
        return sorted(out)


def free_port():
    """A TCP port on 127.0.0.1 that was free a moment ago (for addresses peers must know in
    advance, such as cluster.listen; HTTP listens on port 0 instead)."""
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def cluster_servers(prefix, names, replication_factor, write_quorum=None, shards=4, roles=None, extra=None):
    """Servers of one cluster, one per node name, each with its own data dir and a [cluster]
    section as an operator writes it: this node, its CAF listen address, every other node as a
    peer. roles: {name: [roles]} (default all); extra: {name: [extra [cluster] lines]}.
    Start them with start_all()."""
    addrs = {n: "127.0.0.1:%d" % free_port() for n in names}
    servers = []
    for n in names:
        peers = []
        for m in names:
            if m == n:
                continue
            role_part = ""
            if roles and m in roles:
                role_part = ", roles = [%s]" % ", ".join('"%s"' % r for r in roles[m])
            peers.append('  { name = "%s", address = "%s"%s },' % (m, addrs[m], role_part))
        lines = ['node = "%s"' % n, 'listen = "%s"' % addrs[n], "replication_factor = %d" % replication_factor,
                 'heartbeat_interval = "1s"', 'suspect_after = "3s"', 'down_after = "6s"', 'rpc_timeout = "5s"']
        if write_quorum is not None:
            lines.append("write_quorum = %d" % write_quorum)
        if roles and n in roles:
            lines.append("roles = [%s]" % ", ".join('"%s"' % r for r in roles[n]))
        lines += (extra or {}).get(n, [])
        lines.append("peers = [\n%s\n]" % "\n".join(peers))
        srv = Server("%s-%s" % (prefix, n), os.path.join(ctx.tmp, "%s-%s" % (prefix, n)),
                     {"storage": ["shards = %d" % shards], "cluster": lines})
        srv.cluster_address = addrs[n]
        servers.append(srv)
    return servers


def start_all(servers):
    """Launches every server, then waits until each is ready."""
    for s in servers:
        s.launch()
    for s in servers:
        s.wait_ready()


def kill_all_servers():
    for s in ALL_SERVERS:
        try:
            s.kill()
        except Exception as e:  # pragma: no cover
            sys.stderr.write("kill %s: %s\n" % (s.name, e))


# ------------------------------------------------------------------------------------------------
# Testdata


def testdata_path(kind, stem):
    return os.path.join(TESTDATA, kind, stem + ".pb.gz")


def expected_dir(kind, stem):
    return os.path.join(TESTDATA, "expected", kind, stem)


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
        for suffix in (" (inline)", " (partial-inline)"):
            if name.endswith(suffix):
                name = name[: -len(suffix)]
        rows.append((name, int(v.group(1))))
    return rows[:n]


def gz_profile_with_time(path, t_ns):
    """The file's pprof with time_nanos set to t_ns, gzipped (Push carries no timestamp of its own)."""
    with open(path, "rb") as fh:
        raw = gzip.decompress(fh.read())
    p = ctx.pb.profile.Profile()
    p.ParseFromString(raw)
    p.time_nanos = t_ns
    return gzip.compress(p.SerializeToString())


def push_request_proto(labels, raw_gz, sample_id):
    req = ctx.pb.push.PushRequest()
    s = req.series.add()
    for k, v in labels:
        s.labels.add(name=k, value=v)
    s.samples.add(raw_profile=raw_gz, ID=sample_id)
    return req


def push_request_json(labels, raw_gz, sample_id):
    import base64

    return {
        "series": [
            {
                "labels": [{"name": k, "value": v} for k, v in labels],
                "samples": [{"rawProfile": base64.b64encode(raw_gz).decode(), "ID": sample_id}],
            }
        ]
    }


def ingest_path(name_with_labels, t_s, spy="gospy", fmt="pprof"):
    """/ingest?name=&from=&until=[&format=][&spyName=]; spy or fmt None leaves that parameter out."""
    q = {"name": name_with_labels, "from": str(t_s), "until": str(t_s)}
    if fmt is not None:
        q["format"] = fmt
    if spy is not None:
        q["spyName"] = spy
    return "/ingest?" + urllib.parse.urlencode(q)


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


def new_id():
    return str(uuid.uuid4())


# ------------------------------------------------------------------------------------------------
# Queries and flame graphs


def error_text(body):
    try:
        j = json.loads(body)
        return "%s: %s" % (j.get("code"), j.get("message"))
    except Exception:
        return body.decode("utf-8", "replace")[:500]


def label_values(server, name, selector, start_ms, end_ms):
    st, _, body = server.connect_json(
        "/querier.v1.QuerierService/LabelValues",
        {"name": name, "matchers": [selector], "start": str(start_ms), "end": str(end_ms)},
    )
    if st != 200:
        raise AssertionError("LabelValues %s %s: HTTP %d %s" % (name, selector, st, error_text(body)))
    return json.loads(body).get("names", [])


SMST = "/querier.v1.QuerierService/SelectMergeStacktraces"


def smst_request(server, codec, ptype, selector, start_ms, end_ms, max_nodes=None):
    """One SelectMergeStacktraces call over codec "proto" or "json" -> (status, headers, body);
    max_nodes None leaves the field out."""
    if codec == "json":
        msg = {"profileTypeID": ptype, "labelSelector": selector, "start": str(start_ms), "end": str(end_ms)}
        if max_nodes is not None:
            msg["maxNodes"] = str(max_nodes)
        return server.connect_json(SMST, msg)
    req = ctx.pb.querier.SelectMergeStacktracesRequest(
        profile_typeID=ptype, label_selector=selector, start=start_ms, end=end_ms
    )
    if max_nodes is not None:
        req.max_nodes = max_nodes
    return server.connect_proto(SMST, req)


def decode_fg_json(fg):
    """A proto3-JSON flamegraph -> (names, levels, total, max_self)."""
    names = list(fg.get("names", []))
    levels = [[int(x) for x in lv.get("values", [])] for lv in fg.get("levels", [])]
    return names, levels, int(fg.get("total", "0")), int(fg.get("maxSelf", "0"))


def decode_fg_proto(fg):
    """A querier.v1.FlameGraph message -> (names, levels, total, max_self)."""
    return list(fg.names), [list(lv.values) for lv in fg.levels], fg.total, fg.max_self


def select_merge(server, ptype, selector, start_ms, end_ms, max_nodes=MAX_NODES):
    """SelectMergeStacktraces over proto -> (names, levels, total)."""
    st, h, body = smst_request(server, "proto", ptype, selector, start_ms, end_ms, max_nodes)
    if st != 200:
        raise AssertionError(
            "SelectMergeStacktraces %s %s [%d, %d]: HTTP %d %s" % (ptype, selector, start_ms, end_ms, st, error_text(body))
        )
    resp = ctx.pb.querier.SelectMergeStacktracesResponse()
    resp.ParseFromString(body)
    return decode_fg_proto(resp.flamegraph)[:3]


def select_merge_codec(server, ptype, selector, start_ms, end_ms, codec, max_nodes=MAX_NODES):
    """SelectMergeStacktraces over codec "proto" or "json", checking the answer's Content-Type and,
    over JSON, that int64 fields are strings -> (names, levels, total, max_self); raises
    AssertionError with the server's error."""
    st, h, body = smst_request(server, codec, ptype, selector, start_ms, end_ms, max_nodes)
    what = "SelectMergeStacktraces(%s)" % codec
    if st != 200:
        raise AssertionError("%s %s %s: HTTP %d %s" % (what, ptype, selector, st, error_text(body)))
    ct = h.get("content-type", "")
    if codec == "json":
        if not ct.startswith("application/json"):
            raise AssertionError("%s answered Content-Type %r" % (what, ct))
        fg = json.loads(body).get("flamegraph", {})
        # proto3 JSON: int64 fields are strings (Pyroscope's UI types levels[].values as string[])
        for k in ("total", "maxSelf"):
            if k in fg and not isinstance(fg[k], str):
                raise AssertionError("%s: flamegraph.%s is %r, want an int64 string" % (what, k, fg[k]))
        lv0 = (fg.get("levels") or [{}])[0].get("values", [])
        if lv0 and not isinstance(lv0[0], str):
            raise AssertionError("%s: levels[].values are %r, want int64 strings" % (what, type(lv0[0]).__name__))
        return decode_fg_json(fg)
    if ct != "application/proto":
        raise AssertionError("%s answered Content-Type %r" % (what, ct))
    resp = ctx.pb.querier.SelectMergeStacktracesResponse()
    resp.ParseFromString(body)
    return decode_fg_proto(resp.flamegraph)


def fg_nodes(names, levels):
    """-> list per depth of nodes dict(start, total, self, name, path); raises AssertionError on a
    malformed graph."""
    out = []
    for d, vals in enumerate(levels):
        if len(vals) % 4:
            raise AssertionError("level %d has %d values, not a multiple of 4" % (d, len(vals)))
        nodes, prev_end = [], 0
        for i in range(0, len(vals), 4):
            x, total, self_, ni = vals[i : i + 4]
            start = prev_end + x
            prev_end = start + total
            if not 0 <= ni < len(names):
                raise AssertionError("level %d node %d: name index %d out of range" % (d, i // 4, ni))
            nodes.append({"start": start, "total": total, "self": self_, "name": names[ni], "kids": 0})
        out.append(nodes)
    for d in range(len(out)):
        for n in out[d]:
            if d == 0:
                n["path"] = (n["name"],)
                continue
            parents = out[d - 1]
            starts = [p["start"] for p in parents]
            j = bisect.bisect_right(starts, n["start"]) - 1
            while j >= 0 and not (
                parents[j]["start"] <= n["start"] and n["start"] + n["total"] <= parents[j]["start"] + parents[j]["total"]
            ):
                j -= 1
            if j < 0:
                raise AssertionError("level %d node %r [%d,+%d) lies in no parent" % (d, n["name"], n["start"], n["total"]))
            p = parents[j]
            p["kids"] += n["total"]
            n["path"] = p["path"] + (n["name"],)
    for d, nodes in enumerate(out):
        for n in nodes:
            if (d + 1 < len(out) or n["kids"]) and n["self"] + n["kids"] != n["total"]:
                raise AssertionError(
                    "node %s: self %d + children %d != total %d" % ("/".join(n["path"]), n["self"], n["kids"], n["total"])
                )
    return out


def fg_summary(names, levels, total, every_name=False):
    """Canonical, order-independent answer: {total, by_path (self per stack), by_name (self per
    function)}; zero entries are left out so that summaries add up, except that every_name keeps
    every function of the graph in by_name (self 0 included)."""
    nodes = fg_nodes(names, levels)
    if names and names[0] != "total":
        raise AssertionError("names[0] = %r, want 'total'" % names[0])
    by_path, by_name = {}, {}
    for d, lv in enumerate(nodes):
        if d == 0:
            continue
        for n in lv:
            if n["self"]:
                p = "/".join(n["path"][1:])
                by_path[p] = by_path.get(p, 0) + n["self"]
            if n["self"] or every_name:
                by_name[n["name"]] = by_name.get(n["name"], 0) + n["self"]
    root_total = sum(n["total"] for n in nodes[0]) if nodes else 0
    if root_total != total:
        raise AssertionError("flamegraph.total %d != sum of root totals %d" % (total, root_total))
    return {"total": total, "by_path": by_path, "by_name": by_name}


def pprof_summary(raw, value_index, max_depth=None):
    """The fg_summary() a flame graph of one uncompressed pprof's sample type `value_index` should
    equal: a stack's frames are its functions (inlined ones included) from the root; with
    max_depth, only the root-side max_depth locations of each stack are kept (Pyroscope's
    truncation, limits.stack_depth_policy = "truncate")."""
    p = ctx.pb.profile.Profile()
    p.ParseFromString(raw)
    strings = list(p.string_table)
    funcs = {f.id: strings[f.name] for f in p.function}
    # pprof lists a location's lines and a sample's locations leaf first
    locs = {l.id: [funcs[ln.function_id] for ln in reversed(l.line)] for l in p.location}
    out = empty_summary()
    for s in p.sample:
        v = s.value[value_index]
        ids = list(s.location_id)
        if not v or not ids:
            continue
        if max_depth is not None:
            ids = ids[-max_depth:]
        frames = [f for lid in reversed(ids) for f in locs[lid]]
        summary_add(out, {"total": v, "by_path": {"/".join(frames): v}, "by_name": {frames[-1]: v}})
    return out


def summary_add(acc, s, times=1):
    acc["total"] += s["total"] * times
    for key in ("by_path", "by_name"):
        for k, v in s[key].items():
            acc[key][k] = acc[key].get(k, 0) + v * times
            if acc[key][k] == 0:
                del acc[key][k]
    return acc


def empty_summary():
    return {"total": 0, "by_path": {}, "by_name": {}}


def summary_diff(want, got, limit=8):
    """Readable differences between two summaries (empty list when equal)."""
    out = []
    if want["total"] != got["total"]:
        out.append("total: want %d got %d (diff %+d)" % (want["total"], got["total"], got["total"] - want["total"]))
    keys = sorted(set(want["by_path"]) | set(got["by_path"]))
    bad = [k for k in keys if want["by_path"].get(k, 0) != got["by_path"].get(k, 0)]
    for k in bad[:limit]:
        out.append("self of %s: want %d got %d" % (k[-120:], want["by_path"].get(k, 0), got["by_path"].get(k, 0)))
    if len(bad) > limit:
        out.append("... %d more stacks differ" % (len(bad) - limit))
    return out


# ------------------------------------------------------------------------------------------------
# Runner with per-case JUnit


class JUnitResult(unittest.TextTestResult):
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


def write_junit(path, result, suite_name):
    suite = ET.Element("testsuite", name=suite_name, tests=str(len(result.records)))
    suite.set("failures", str(sum(1 for r in result.records if r[1] == "failure")))
    suite.set("errors", str(sum(1 for r in result.records if r[1] == "error")))
    suite.set("skipped", str(sum(1 for r in result.records if r[1] == "skipped")))
    for tid, kind, text, dt in result.records:
        cls, _, name = tid.rpartition(".")
        tc = ET.SubElement(suite, "testcase", classname=cls, name=name, time="%.3f" % dt)
        if kind in ("failure", "error", "skipped"):
            ET.SubElement(tc, kind, message=text.splitlines()[-1][:200] if text else "").text = text
    ET.ElementTree(suite).write(path, encoding="utf-8", xml_declaration=True)


def run_main(suite_name, classes, doc, setup=None):
    """argv: PATH/TO/hearth [NAME_SUBSTRING...]. Sets ctx, calls setup() (when given; a non-zero
    answer is the exit code, nothing runs), runs the test methods of `classes` in name order
    (filtered by substring), writes JUnit, kills every server; -> exit code."""
    if len(sys.argv) < 2:
        sys.stderr.write(doc)
        return 2
    ctx.hearth = os.path.abspath(sys.argv[1])
    if not os.access(ctx.hearth, os.X_OK):
        sys.stderr.write("not an executable: %s\n" % ctx.hearth)
        return 2
    if not os.path.isdir(TESTDATA):
        sys.stderr.write("no testdata at %s (set HEARTH_TESTDATA)\n" % TESTDATA)
        return 2
    ctx.tmp = tempfile.mkdtemp(prefix="hearth-%s-" % suite_name)
    started = time.monotonic()
    ok = False
    try:
        ctx.pb = generate_protos(ctx.tmp)
        if setup:
            rc = setup()
            if rc:
                return rc
        loader = unittest.TestLoader()
        names = sys.argv[2:]
        suite = unittest.TestSuite()
        for cls in classes:
            for n in sorted(loader.getTestCaseNames(cls)):
                if not names or any(x in n for x in names):
                    suite.addTest(cls(n))
        runner = unittest.TextTestRunner(verbosity=2, resultclass=JUnitResult, stream=sys.stdout)
        result = runner.run(suite)
        junit = os.environ.get("HEARTH_TEST_JUNIT")
        if junit:
            write_junit(junit, result, suite_name)
        ok = result.wasSuccessful()
        npass = sum(1 for r in result.records if r[1] == "pass")
        nfail = sum(1 for r in result.records if r[1] in ("failure", "error"))
        nskip = sum(1 for r in result.records if r[1] == "skipped")
        print("%s: %d passed, %d failed, %d skipped in %.1f s" % (suite_name, npass, nfail, nskip, time.monotonic() - started))
        if not ok:
            for s in ALL_SERVERS:
                if s.log_path:
                    print("---- log of %s (%s), last 40 lines:" % (s.name, s.log_path))
                    print("\n".join(s.log().splitlines()[-40:]))
    finally:
        kill_all_servers()
        if ok and not os.environ.get("HEARTH_TEST_KEEP"):
            shutil.rmtree(ctx.tmp, ignore_errors=True)
        else:
            print("temp dir kept: " + ctx.tmp)
    return 0 if ok else 1
