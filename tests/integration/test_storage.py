#!/usr/bin/env python3
"""Storage integration test for hearth: compaction (L0 -> L1 -> L2 + rollups) keeps every answer,
de-duplicates replicas, survives kill -9; /pyroscope/render over rollups equals
SelectMergeStacktraces; retention deletes old blocks for good (per-tenant override included); a
corrupted segment is skipped, counted and logged while the other blocks keep answering; a
partition whose unsealed WAL is over storage.wal_max_bytes makes ingest answer 429 before the body
is decoded, and starts a seal that lets writes in again; the closed L1 windows of an L2 window that
is still open go to level 2 and are merged into its level-2 block as they close.

usage: test_storage.py PATH/TO/hearth [NAME_SUBSTRING...]
(filters select test methods by substring; the A cases share one server and build on each other in
name order, so filter them in together, e.g. `test_a`)

Environment: HEARTH_TESTDATA (default <source root>/../shared/testdata), HEARTH_SOURCE_ROOT,
HEARTH_TEST_KEEP=1 keeps the temp dir, HEARTH_TEST_JUNIT=FILE writes a per-case JUnit report.

Every server binds 127.0.0.1 port 0, runs on its own data dir under a temp dir, and is killed by
its pid. Profile times are placed by rewriting the pprof's time_nanos (Push) or by `from` (/ingest).
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import hearthtest as ht  # noqa: E402

ht.ensure_system_python("test_storage")

import gzip  # noqa: E402
import json  # noqa: E402
import re  # noqa: E402
import signal  # noqa: E402
import time  # noqa: E402
import unittest  # noqa: E402
import urllib.parse  # noqa: E402

W = 600  # the l2_window of the compaction server, seconds
# deletion_delay 0s: these cases read the segment directory, which then holds no replaced file
COMPACTION = ['enabled = true', 'interval = "1h"', 'l1_window = "1m"', 'l2_window = "10m"', 'grace = "0s"',
              'deletion_delay = "0s"']
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"

# Services of the compaction case: (service, kind, stems, how it is sent, __name__ for Push)
SERVICES = {
    "st-go": ("go", ["workpool.cpu.000", "workpool.cpu.001", "workpool.cpu.002"], "push_proto", "process_cpu"),
    "st-node": ("node", ["node.cpu.000", "node.cpu.001", "node.cpu.002"], "push_json", "wall"),
    "st-ing": ("go", ["mapindex.cpu.001", "mapindex.cpu.002", "mapindex.cpu.001"], "ingest", None),
}
MAIN_SVCS = ["st-go", "st-node", "st-ing"]


def send(srv, svc, kind, stem, method, name, t_s, sample_id=None, body=None):
    """One profile. Returns (status, body, request description, request body used) so that a
    replica can re-send the very same bytes."""
    path = ht.testdata_path(kind, stem)
    if method == "ingest":
        with open(path, "rb") as fh:
            gz = fh.read()
        p = ht.ingest_path("%s{env=test}" % svc, t_s)
        st, _, resp = srv.request("POST", p, gz, {"Content-Type": "application/octet-stream"})
        return st, resp, "POST " + p, None
    labels = [("__name__", name), ("service_name", svc), ("env", "test")]
    if body is None:
        raw = ht.gz_profile_with_time(path, t_s * 1000000000)
        if method == "push_proto":
            body = ht.push_request_proto(labels, raw, sample_id).SerializeToString()
        else:
            body = json.dumps(ht.push_request_json(labels, raw, sample_id)).encode()
    if method == "push_proto":
        hdr = {"Content-Type": "application/proto", "Connect-Protocol-Version": "1"}
    else:
        hdr = {"Content-Type": "application/json"}
    st, _, resp = srv.request("POST", "/push.v1.PusherService/Push", body, hdr)
    return st, resp, "Push(%s) %s %s t=%d ID=%s" % (method, svc, stem, t_s, sample_id), body


def ptypes_of(srv, svc, start_ms, end_ms):
    """{(sample_type, unit): profile type ID} of one service."""
    out = {}
    for pid in ht.label_values(srv, "__profile_type__", '{service_name="%s"}' % svc, start_ms, end_ms):
        parts = pid.split(":")
        out[(parts[1], parts[2])] = pid
    return out


# ------------------------------------------------------------------------------------------------
# A: compaction keeps the answers


class A:  # shared state of the A cases
    srv = None
    now = None
    w0 = None  # start (s) of the first 10-minute window holding data
    model = []  # dicts: svc, kind, stem, t, id (unique per request unless a replica), refkey
    refs = {}  # (svc, stem) -> {ptype: summary of one profile}
    ptypes = {}  # svc -> {(type, unit): ptype}
    queries = []  # (label, ptype, selector, svcs, a_s, b_s)
    before = {}  # query label -> summary before compaction
    after = {}
    files_before = []
    files_after = []
    reports = []


def model_summary(q, dedupe):
    label, ptype, selector, svcs, a, b = q
    acc = ht.empty_summary()
    seen = set()
    for p in A.model:
        if p["svc"] not in svcs or not a <= p["t"] <= b:
            continue
        key = (p["svc"], p["t"], p["id"])
        if dedupe and key in seen:
            continue  # a replica: same series, same time, same profile ID
        seen.add(key)
        s = A.refs[p["refkey"]].get(ptype)
        if s:
            ht.summary_add(acc, s)
    return acc


def export_summary(srv, ptype, selector, a_ms, b_ms):
    """SelectMergeProfile -> (time_nanos, duration_nanos, period, {stack: value}), a stack being
    the tuple of its locations' (address, ((function, file, line), ...)), leaf first: what the
    pprof says, whatever ids it numbers its tables with."""
    req = ht.ctx.pb.querier.SelectMergeProfileRequest(profile_typeID=ptype, label_selector=selector, start=a_ms, end=b_ms)
    st, _, body = srv.connect_proto("/querier.v1.QuerierService/SelectMergeProfile", req)
    if st != 200:
        raise AssertionError("SelectMergeProfile %s %s [%d, %d]: HTTP %d %s" % (ptype, selector, a_ms, b_ms, st, ht.error_text(body)))
    p = ht.ctx.pb.profile.Profile()
    p.ParseFromString(body)
    s = p.string_table
    fns = {f.id: (s[f.name], s[f.filename]) for f in p.function}
    locs = {l.id: (l.address, tuple(fns[ln.function_id] + (ln.line,) for ln in l.line)) for l in p.location}
    stacks = {}
    for x in p.sample:
        k = tuple(locs[i] for i in x.location_id)
        stacks[k] = stacks.get(k, 0) + x.value[0]
    return (p.time_nanos, p.duration_nanos, p.period, stacks)


def export_diff(want, got):
    """What differs between two export_summary results, in words."""
    out = []
    for i, what in enumerate(("time_nanos", "duration_nanos", "period")):
        if want[i] != got[i]:
            out.append("%s %d, want %d" % (what, got[i], want[i]))
    if want[3] != got[3]:
        keys = set(want[3]) | set(got[3])
        bad = [k for k in keys if want[3].get(k) != got[3].get(k)]
        out.append("%d of %d stacks differ (totals %d, want %d)" % (len(bad), len(keys), sum(got[3].values()), sum(want[3].values())))
    return "; ".join(out)


def run_queries(srv):
    """Every query of A.queries as a flame graph (answers[label]) and as a pprof export
    (answers[label + " pprof"])."""
    out, problems = {}, []
    for label, ptype, selector, svcs, a, b in A.queries:
        try:
            names, levels, total = ht.select_merge(srv, ptype, selector, a * 1000, b * 1000)
            out[label] = ht.fg_summary(names, levels, total)
            out[label + " pprof"] = x = export_summary(srv, ptype, selector, a * 1000, b * 1000)
            if sum(x[3].values()) != total:
                problems.append("%s: the export's samples sum to %d, the flame graph's total is %d" % (label, sum(x[3].values()), total))
        except AssertionError as e:
            problems.append("%s: %s" % (label, e))
    return out, problems


def compare(answers, dedupe, when):
    problems = []
    for q in A.queries:
        if q[0] not in answers:
            continue
        want = model_summary(q, dedupe)
        d = ht.summary_diff(want, answers[q[0]])
        if d:
            problems.append(
                "%s: SelectMergeStacktraces(%s, %s, [%d, %d] ms) %s:\n    %s"
                % (q[0], q[1], q[2], q[4] * 1000, q[5] * 1000, when, "\n    ".join(d))
            )
    return problems


class TestA(unittest.TestCase):
    maxDiff = None

    @property
    def srv(self):
        if A.srv is None or not A.srv.alive():
            self.skipTest("compaction server not running (an earlier case failed)")
        return A.srv

    def test_a1_ingest_in_sealed_batches(self):
        A.srv = ht.Server(
            # head_max_age: a batch (18 fsync'd pushes) must land in one head even on a loaded
            # machine; with 1 s a slow batch was sealed in two and the L2 layout checked below changed.
            "compaction", os.path.join(ht.ctx.tmp, "data-compaction"), {"storage": ["head_max_age = 3"], "compaction": COMPACTION}
        )
        A.srv.start()
        srv = A.srv
        A.now = now = int(time.time())
        A.w0 = w0 = now // W * W - 12 * W  # 12 closed 10-minute windows, then the current one
        failures = []
        batches = []
        # 8 batches: 4 over windows 0..5, 4 over windows 6..11; each holds every service in every one
        # of its windows, so each sealed block (per shard) starts in the group's first window and the
        # blocks of a group share one L2 window: 8 L0 blocks per shard become 2 L2 blocks.
        for group in (0, 1):
            for j in range(4):
                batch = []
                for k in range(group * 6, group * 6 + 6):
                    for s, svc in enumerate(MAIN_SVCS):
                        kind, stems, method, name = SERVICES[svc]
                        t = w0 + k * W + 13 + j * 140 + s * 37
                        batch.append((svc, kind, stems[(j + k) % 3], method, name, t, ht.new_id()))
                batches.append(batch)
        # Replica candidates: st-rep in window 0 only (so every block holding one starts in window 0
        # and all of them meet in window 0's L2 merge), plus one ID used twice at two times (not a
        # replica: both count).
        dup = ht.new_id()
        rep = [
            ("st-rep", "go", "mapindex.cpu.000", "push_proto", "process_cpu", w0 + 41, ht.new_id()),
            ("st-rep", "go", "mapindex.cpu.000", "push_proto", "process_cpu", w0 + 199, ht.new_id()),
            ("st-rep", "go", "mapindex.cpu.000", "push_proto", "process_cpu", w0 + 433, ht.new_id()),
            ("st-rep", "go", "mapindex.cpu.000", "push_proto", "process_cpu", w0 + 520, dup),
            ("st-rep", "go", "mapindex.cpu.000", "push_proto", "process_cpu", w0 + 560, dup),
        ]
        batches[0] = rep + batches[0]
        # the current window: stays L0/L1 (its L2 window is open)
        batches.append(
            [
                ("st-go", "go", "workpool.cpu.001", "push_proto", "process_cpu", now - 40, ht.new_id()),
                ("st-node", "node", "node.cpu.002", "push_json", "wall", now - 30, ht.new_id()),
                ("st-go", "go", "workpool.cpu.002", "push_proto", "process_cpu", now - 25, ht.new_id()),
            ]
        )
        bodies = {}
        A.files_before = []
        for batch in batches:
            for svc, kind, stem, method, name, t, sid in batch:
                st, resp, desc, body = send(srv, svc, kind, stem, method, name, t, sid)
                if st != 200:
                    failures.append("%s -> HTTP %d %s" % (desc, st, ht.error_text(resp)))
                    continue
                bodies[(svc, t, sid)] = body
                A.model.append({"svc": svc, "kind": kind, "stem": stem, "t": t, "id": sid or desc, "refkey": (svc, stem)})
                if method == "ingest":
                    A.model[-1]["id"] = ht.new_id()  # /ingest draws a random profile ID per request
            srv.wait_heads_sealed()
        # The last batch: replicas of the first three st-rep profiles (the same Push request bytes,
        # so same series, same time, same ID), and the first ID again under another service (same
        # ID and time, other series: not a replica).
        for svc, kind, stem, method, name, t, sid in rep[:3]:
            st, resp, desc, _ = send(srv, svc, kind, stem, method, name, t, sid, body=bodies[(svc, t, sid)])
            if st != 200:
                failures.append("replica %s -> HTTP %d %s" % (desc, st, ht.error_text(resp)))
                continue
            A.model.append({"svc": svc, "kind": kind, "stem": stem, "t": t, "id": sid, "refkey": (svc, stem)})
        t, sid = rep[0][5], rep[0][6]
        st, resp, desc, _ = send(srv, "st-rep-other", "go", "mapindex.cpu.000", "push_proto", "process_cpu", t, sid)
        if st != 200:
            failures.append("%s -> HTTP %d %s" % (desc, st, ht.error_text(resp)))
        A.model.append({"svc": "st-rep-other", "kind": "go", "stem": "mapindex.cpu.000", "t": t, "id": sid, "refkey": ("st-rep", "mapindex.cpu.000")})
        srv.wait_heads_sealed()
        self.assertEqual(failures, [], "every push must be acked 200")
        A.files_before = srv.segment_files()
        l0 = [f for f in A.files_before if os.path.basename(f).startswith("L0-")]
        self.assertEqual(len(l0), len(A.files_before), "before any compaction every segment is L0: %r" % A.files_before)
        self.assertGreaterEqual(len(l0), 10, "10 sealed batches over 2 shards: L0 files %r" % l0)

    def test_a2_reference_profiles(self):
        """One profile per (service, stem), alone at its time: the building blocks of every
        expected answer, checked against go tool pprof's totals and top rows."""
        srv = self.srv
        lo, hi = (A.w0 - 3600) * 1000, (A.now + 3600) * 1000
        for svc in MAIN_SVCS + ["st-rep", "st-rep-other"]:
            A.ptypes[svc] = ptypes_of(srv, svc, lo, hi)
        problems = []
        counts = {}
        for p in A.model:
            counts[(p["svc"], p["t"])] = counts.get((p["svc"], p["t"]), 0) + 1
        for p in A.model:
            key = p["refkey"]
            if key in A.refs or key[0] != p["svc"] or counts[(p["svc"], p["t"])] != 1:
                continue
            exp = ht.parse_totals(os.path.join(ht.expected_dir(p["kind"], p["stem"]), "totals.txt"))
            A.refs[key] = {}
            for (t_, u), want in sorted(exp.items()):
                ptype = A.ptypes[p["svc"]].get((t_, u))
                if ptype is None:
                    problems.append("%s: no profile type for %s/%s (have %r)" % (p["svc"], t_, u, A.ptypes[p["svc"]]))
                    continue
                names, levels, total = ht.select_merge(srv, ptype, '{service_name="%s"}' % p["svc"], p["t"] * 1000, p["t"] * 1000)
                s = ht.fg_summary(names, levels, total)
                A.refs[key][ptype] = s
                if total != want:
                    problems.append("%s %s %s at t=%d: total %d, go tool pprof says %d" % (p["svc"], p["stem"], ptype, p["t"], total, want))
                top = os.path.join(ht.expected_dir(p["kind"], p["stem"]), "top.%s.txt" % t_)
                if os.path.exists(top):
                    for fn, flat in ht.parse_top(top):
                        if s["by_name"].get(fn, 0) != flat:
                            problems.append("%s %s %s: self of %s = %d, pprof flat %d" % (p["svc"], p["stem"], ptype, fn, s["by_name"].get(fn, 0), flat))
        want_keys = {p["refkey"] for p in A.model}
        self.assertEqual(sorted(want_keys - set(A.refs)), [], "a reference for every (service, stem)")
        self.assertEqual(problems, [], "\n".join(problems))

        # The queries: selectors x ranges, several starting/ending mid-window, one on exact profile
        # times (the end millisecond is inclusive), one spanning whole hours (served from the 1h
        # rollup after compaction), one empty.
        w0, now = A.w0, A.now
        h1 = (w0 + 3599) // 3600 * 3600
        ranges = {
            "all": (w0 - 60, now + 60),
            "mid": (w0 + 2 * W + 200, w0 + 5 * W + 400),
            "exact-ends": (w0 + 3 * W + 13, w0 + 7 * W + 153),
            "hours": (h1 - 150, h1 + 3600 + 170),
            "hour-aligned": (h1, h1 + 3600 - 1),
            "window0": (w0 + 100, w0 + 460),
            "empty": (w0 + W + 560, w0 + W + 590),
            "current": (now // W * W, now + 60),
        }
        go_cpu = A.ptypes["st-go"][("cpu", "nanoseconds")]
        selectors = [
            ("go-cpu", go_cpu, '{service_name="st-go"}', {"st-go"}),
            ("go-samples", A.ptypes["st-go"][("samples", "count")], '{service_name="st-go",env="test"}', {"st-go"}),
            ("node-wall", A.ptypes["st-node"][("wall", "nanoseconds")], '{service_name="st-node"}', {"st-node"}),
            ("node-cpu", A.ptypes["st-node"][("cpu", "nanoseconds")], '{service_name="st-node"}', {"st-node"}),
            ("ing-cpu", A.ptypes["st-ing"][("cpu", "nanoseconds")], '{service_name="st-ing"}', {"st-ing"}),
            ("rep-cpu", A.ptypes["st-rep"][("cpu", "nanoseconds")], '{service_name="st-rep"}', {"st-rep"}),
            ("rep-other", A.ptypes["st-rep-other"][("cpu", "nanoseconds")], '{service_name="st-rep-other"}', {"st-rep-other"}),
            ("st-regex-cpu", go_cpu, '{service_name=~"st-.*"}', set(SERVICES) | {"st-rep", "st-rep-other"}),
            ("not-go", go_cpu, '{service_name!="st-go"}', (set(SERVICES) | {"st-rep", "st-rep-other"}) - {"st-go"}),
        ]
        A.queries = []
        for sl, ptype, sel, svcs in selectors:
            for rl, (a, b) in ranges.items():
                A.queries.append(("%s/%s" % (sl, rl), ptype, sel, svcs, a, b))

    def test_a3_answers_before_compaction(self):
        answers, problems = run_queries(self.srv)
        A.before = answers
        # Before compaction the head and the L0 blocks do not de-duplicate: a replica sent after a
        # seal is a second row in a second block, so it counts twice.
        problems += compare(answers, dedupe=False, when="before compaction (replicas count twice)")
        nonzero = [q[0] for q in A.queries if answers.get(q[0], {}).get("total")]
        self.assertGreater(len(nonzero), len(A.queries) // 2, "most queries answer data")
        self.assertEqual(problems, [], "\n" + "\n".join(problems))

    def test_a4_compact(self):
        srv = self.srv
        A.reports, total = srv.compact_until_idle()
        A.files_after = srv.segment_files()
        base = [os.path.basename(f) for f in A.files_after]
        problems = []
        if total.get("jobs", 0) < 2:
            problems.append("jobs over all runs: %r" % A.reports)
        # 3 replicas x 2 series (cpu and samples) each: 6 rows dropped, exactly once
        if total.get("duplicates") != 6:
            problems.append("duplicates over all runs = %r, want 6 (3 replica pushes x 2 sample types); reports %r" % (total.get("duplicates"), A.reports))
        if total.get("droppedByRetention") != 0:
            problems.append("droppedByRetention = %r without retention" % total.get("droppedByRetention"))
        if not any(re.fullmatch(r"L2-[0-9a-f]{16}\.hseg", b) for b in base):
            problems.append("no raw L2 block: %r" % base)
        for step in ("60", "3600"):
            if not any(re.fullmatch(r"L2-[0-9a-f]{16}-r%ss\.hseg" % step, b) for b in base):
                problems.append("no %ss rollup next to the L2 blocks: %r" % (step, base))
        if len(A.files_after) >= len(A.files_before):
            problems.append("%d segment files after compaction, %d before: %r" % (len(A.files_after), len(A.files_before), base))
        # L1 existed: either some L1 block is still there (the current window) or the log shows
        # L1 blocks compacted away into L2
        if not any(b.startswith("L1-") for b in base) and not re.search(r"removed \S*/L1-[0-9a-f]{16}\.hseg \(compacted\)", srv.log()):
            problems.append("no L1 block on disk and none compacted away in the log")
        leftovers = [b for b in base if b.startswith("L0-")]
        # Only the current L1 window (1 minute) may still hold L0 blocks
        for f in A.files_after:
            if f.endswith(".tmp"):
                problems.append("leftover .tmp file " + f)
            if os.path.basename(f).startswith("L2-"):
                with open(os.path.join(srv.data_dir, f), "rb") as fh:
                    if ZSTD_MAGIC not in fh.read():
                        problems.append("%s holds no zstd frame (compaction outputs are zstd)" % f)
        if len(leftovers) > 2:
            problems.append("L0 blocks left after compaction: %r" % leftovers)
        sys.stdout.write("[%d files -> %d; reports %s] " % (len(A.files_before), len(A.files_after), json.dumps(A.reports)))
        self.assertEqual(problems, [], "\n".join(problems))

    def test_a5_answers_after_compaction(self):
        answers, problems = run_queries(self.srv)
        A.after = answers
        # After compaction every replica is gone: the answers equal the unique profiles.
        problems += compare(answers, dedupe=True, when="after compaction")
        # and every answer not touched by a replica is identical to the one before
        changed = [q[0] for q in A.queries if model_summary(q, True) != model_summary(q, False)]
        for q in A.queries:
            if q[0] not in changed and q[0] in A.before and q[0] in answers and A.before[q[0]] != answers[q[0]]:
                problems.append("%s: answer changed by compaction: %s" % (q[0], ht.summary_diff(A.before[q[0]], answers[q[0]])))
            # The export too, times included, though whole minutes and hours of it now come from
            # the rollups: their rows keep the first time and the last end of the profiles they sum.
            x = q[0] + " pprof"
            if q[0] not in changed and x in A.before and x in answers and A.before[x] != answers[x]:
                problems.append("%s: export changed by compaction: %s" % (q[0], export_diff(A.before[x], answers[x])))
        self.assertTrue(changed, "some query covers replicas")
        sys.stdout.write("[%d queries; %d differ before/after only by replicas] " % (len(A.queries), len(changed)))
        self.assertEqual(problems, [], "\n" + "\n".join(problems))

    def test_a6_kill9_restart(self):
        srv = self.srv
        srv.kill()
        srv.start()
        self.assertRegex(srv.log(), r"recovered: [1-9]\d* segments")
        problems = []
        files = srv.segment_files(suffix="")
        tmps = [f for f in files if f.endswith(".tmp")]
        if tmps:
            problems.append(".tmp files after restart: %r" % tmps)
        if srv.segment_files() != A.files_after:
            problems.append("segment files changed across the restart:\n  before %r\n  after  %r" % (A.files_after, srv.segment_files()))
        answers, probs = run_queries(srv)
        problems += probs
        for q in A.queries:
            if q[0] in A.after and answers.get(q[0]) != A.after[q[0]]:
                problems.append("%s: differs after kill -9 + restart: %s" % (q[0], ht.summary_diff(A.after[q[0]], answers.get(q[0], ht.empty_summary()))))
            x = q[0] + " pprof"
            if x in A.after and x in answers and answers[x] != A.after[x]:
                problems.append("%s: export differs after kill -9 + restart: %s" % (q[0], export_diff(A.after[x], answers[x])))
        r = srv.compact()
        if r.get("jobs") != 0 or r.get("duplicates") != 0:
            problems.append("a compaction after the restart still found work: %r" % r)
        self.assertEqual(problems, [], "\n" + "\n".join(problems))

    # 2: /pyroscope/render over the whole range
    def test_a7_render_equals_select_merge(self):
        srv = self.srv
        now = int(time.time())
        problems = []
        cases = [
            # 24 h: timeline step 60 s, so the flame graph may come from the 60 s rollups
            ("go-cpu", "st-go", ("cpu", "nanoseconds"), now - 86400 + 120, now + 120, 60),
            ("node-wall", "st-node", ("wall", "nanoseconds"), now - 86400 + 120, now + 120, 60),
            ("regex-cpu", None, ("cpu", "nanoseconds"), now - 86400 + 120, now + 120, 60),
            # 2 h 20 min: step 15 s, raw blocks only
            ("go-cpu-short", "st-go", ("cpu", "nanoseconds"), A.w0 - 600, now + 120, 15),
        ]
        for label, svc, st_u, frm, until, step in cases:
            ptype = A.ptypes[svc or "st-go"][st_u]
            sel = '{service_name="%s"}' % svc if svc else '{service_name=~"st-.*"}'
            svcs = {svc} if svc else set(SERVICES) | {"st-rep", "st-rep-other"}
            q = {"query": ptype + sel, "from": str(frm), "until": str(until), "format": "json", "max-nodes": str(ht.MAX_NODES)}
            path = "/pyroscope/render?" + urllib.parse.urlencode(q)
            st, _, body = srv.request("GET", path)
            if st != 200:
                problems.append("GET %s: HTTP %d %s" % (path, st, ht.error_text(body)))
                continue
            j = json.loads(body)
            fb, tl = j.get("flamebearer") or {}, j.get("timeline") or {}
            try:
                rs = ht.fg_summary(fb.get("names", []), fb.get("levels", []), fb.get("numTicks", 0))
            except AssertionError as e:
                problems.append("%s: render flame graph malformed: %s" % (label, e))
                continue
            names, levels, total = ht.select_merge(srv, ptype, sel, frm * 1000, until * 1000)
            ss = ht.fg_summary(names, levels, total)
            want = model_summary((label, ptype, sel, svcs, frm, until), True)
            for what, got in (("render", rs), ("SelectMergeStacktraces", ss)):
                d = ht.summary_diff(want, got)
                if d:
                    problems.append("%s: %s over [%d, %d] vs the unique profiles: %s" % (label, what, frm, until, d))
            if rs != ss:
                problems.append("%s: render != SelectMergeStacktraces: %s" % (label, ht.summary_diff(ss, rs)))
            # the timeline: exact per step (a rollup row sits at its first profile's time, in the same step)
            got_step = tl.get("durationDelta")
            samples = tl.get("samples") or []
            start = tl.get("startTime")
            if got_step != step:
                problems.append("%s: timeline step %r, want %d" % (label, got_step, step))
                continue
            exp = [0] * len(samples)
            seen = set()
            for p in A.model:
                k = (p["svc"], p["t"], p["id"])
                if p["svc"] not in svcs or k in seen or not frm <= p["t"] <= until:
                    continue
                seen.add(k)
                s = A.refs[p["refkey"]].get(ptype)
                i = (p["t"] - start) // step
                if s and 0 <= i < len(exp):
                    exp[i] += s["total"]
            if samples != exp:
                bad = [(start + i * step, exp[i], samples[i]) for i in range(len(exp)) if exp[i] != samples[i]]
                problems.append("%s: timeline differs at %d steps (time, want, got): %r" % (label, len(bad), bad[:8]))
            if sum(samples) != rs["total"]:
                problems.append("%s: timeline sum %d != numTicks %d" % (label, sum(samples), rs["total"]))
        self.assertEqual(problems, [], "\n" + "\n".join(problems))

    @classmethod
    def tearDownClass(cls):
        if A.srv:
            A.srv.kill()


# ------------------------------------------------------------------------------------------------
# B: retention


class TestB(unittest.TestCase):
    maxDiff = None

    def answers(self, srv, now, ptype):
        lo, hi = (now - 4 * 3600) * 1000, (now + 60) * 1000
        out = {"names": sorted(n for n in ht.label_values(srv, "service_name", "{}", lo, hi) if n.startswith("ret-"))}
        # LabelValues without a time range answers over all data
        st, _, body = srv.connect_json("/querier.v1.QuerierService/LabelValues", {"name": "service_name"})
        self.assertEqual(st, 200, ht.error_text(body))
        out["names-all-time"] = sorted(n for n in json.loads(body).get("names", []) if n.startswith("ret-"))
        for svc in ("ret-old", "ret-mid", "ret-new"):
            out[svc] = ht.select_merge(srv, ptype, '{service_name="%s"}' % svc, lo, hi)[2]
        out["sum"] = ht.select_merge(srv, ptype, '{service_name=~"ret-.*"}', (now - 4 * 3600) * 1000, hi)[2]
        out["old-range"] = ht.select_merge(srv, ptype, "{}", (now - 3 * 3600 - 600) * 1000, (now - 3 * 3600 + 600) * 1000)[2]
        return out

    def test_b1_retention(self):
        srv = ht.Server(
            "retention",
            os.path.join(ht.ctx.tmp, "data-retention"),
            {
                "storage": ["head_max_age = 1"],
                "compaction": COMPACTION,
                # 1 h for every tenant, but 2 h for the default tenant: the profiles 90 min old stay
                "retention": ['period = "1h"', 'per_tenant = { anonymous = "2h" }'],
            },
        )
        srv.start()
        now = int(time.time())
        totals = {s: ht.parse_totals(os.path.join(ht.expected_dir("go", s), "totals.txt"))[("cpu", "nanoseconds")] for s in ("workpool.cpu.000", "workpool.cpu.001", "workpool.cpu.002")}
        batches = [
            ("ret-old", "workpool.cpu.000", [now - 3 * 3600, now - 3 * 3600 + 60, now - 3 * 3600 + 120]),
            ("ret-mid", "workpool.cpu.001", [now - 90 * 60, now - 90 * 60 + 30]),
            ("ret-new", "workpool.cpu.002", [now - 20, now - 10]),
        ]
        want = {}
        for svc, stem, times in batches:
            for i, t in enumerate(times):
                method = "ingest" if i == 1 else "push_proto"
                st, resp, desc, _ = send(srv, svc, "go", stem, method, "process_cpu", t, ht.new_id())
                self.assertEqual(st, 200, "%s: HTTP %d %s" % (desc, st, ht.error_text(resp)))
            want[svc] = totals[stem] * len(times)
            srv.wait_heads_sealed()  # one block per batch: retention deletes whole blocks
        ptype = "process_cpu:cpu:nanoseconds:cpu:nanoseconds"
        pre = self.answers(srv, now, ptype)
        exp_pre = {
            "names": ["ret-mid", "ret-new", "ret-old"], "names-all-time": ["ret-mid", "ret-new", "ret-old"],
            "ret-old": want["ret-old"], "ret-mid": want["ret-mid"], "ret-new": want["ret-new"],
            "sum": sum(want.values()), "old-range": want["ret-old"],
        }
        self.assertEqual(pre, exp_pre, "before retention ran")
        old_files = srv.segment_files()
        reports, total = srv.compact_until_idle()
        exp_post = {
            "names": ["ret-mid", "ret-new"], "names-all-time": ["ret-mid", "ret-new"],
            "ret-old": 0, "ret-mid": want["ret-mid"], "ret-new": want["ret-new"],
            "sum": want["ret-mid"] + want["ret-new"], "old-range": 0,
        }
        problems = []
        if not total.get("droppedByRetention", 0) > 0:
            problems.append("droppedByRetention over the runs: %r" % reports)
        m = srv.metrics()
        if not m.get("hearth_retention_deleted_blocks_total", 0) > 0:
            problems.append("hearth_retention_deleted_blocks_total = %r" % m.get("hearth_retention_deleted_blocks_total"))
        post = self.answers(srv, now, ptype)
        if post != exp_post:
            problems.append("after /admin/compact (retention 2h for anonymous):\n  want %r\n  got  %r" % (exp_post, post))
        # kill -9 and restart: the deleted profiles never come back (no WAL replay, no stale file)
        srv.kill()
        srv.start()
        again = self.answers(srv, now, ptype)
        if again != exp_post:
            problems.append("after kill -9 + restart:\n  want %r\n  got  %r" % (exp_post, again))
        r = srv.compact()
        if r.get("droppedByRetention") != 0:
            problems.append("a run after the restart dropped %r more blocks: %r" % (r.get("droppedByRetention"), r))
        again = self.answers(srv, now, ptype)
        if again != exp_post:
            problems.append("after restart + /admin/compact:\n  want %r\n  got  %r" % (exp_post, again))
        sys.stdout.write("[%d files -> %d; %s] " % (len(old_files), len(srv.segment_files()), json.dumps(total)))
        srv.kill()
        self.assertEqual(problems, [], "\n" + "\n".join(problems))


# ------------------------------------------------------------------------------------------------
# C: a corrupted segment


class TestC(unittest.TestCase):
    maxDiff = None

    def test_c1_corrupt_segment(self):
        srv = ht.Server(
            "corrupt",
            os.path.join(ht.ctx.tmp, "data-corrupt"),
            {"storage": ["head_max_age = 1"], "compaction": ["enabled = false"]},
        )
        srv.start()
        now = int(time.time())
        batches = [
            ("c-a", "go", "workpool.cpu.000", "push_proto", "process_cpu"),
            ("c-b", "go", "mapindex.cpu.000", "push_proto", "process_cpu"),
            ("c-c", "node", "node.cpu.000", "push_json", "wall"),
        ]
        files_of = {}
        for n, (svc, kind, stem, method, name) in enumerate(batches):
            have = set(srv.segment_files())
            for i in range(2):
                st, resp, desc, _ = send(srv, svc, kind, stem, method, name, now - 100 + 20 * n + 5 * i, ht.new_id())
                self.assertEqual(st, 200, "%s: HTTP %d %s" % (desc, st, ht.error_text(resp)))
            srv.wait_heads_sealed()
            # The head gauge drops when a head is frozen; the sealer writes its file a few ms later
            # (tens of ms on a loaded machine), so wait for the file itself.
            deadline = time.monotonic() + 20
            while not set(srv.segment_files()) - have and time.monotonic() < deadline:
                time.sleep(0.05)
            files_of[svc] = sorted(set(srv.segment_files()) - have)
            self.assertTrue(files_of[svc], "no segment sealed for " + svc)
        lo, hi = (now - 600) * 1000, (now + 60) * 1000

        def answers():
            out = {}
            for svc, _, _, _, _ in batches:
                for (t_, u), ptype in sorted(ptypes_of(srv, svc, lo, hi).items()):
                    names, levels, total = ht.select_merge(srv, ptype, '{service_name="%s"}' % svc, lo, hi)
                    out[(svc, ptype)] = ht.fg_summary(names, levels, total)
            return out

        before = answers()
        self.assertGreaterEqual(len([k for k in before if k[0] == "c-b"]), 2)
        srv.kill()
        victim = max(files_of["c-b"], key=lambda f: os.path.getsize(os.path.join(srv.data_dir, f)))
        path = os.path.join(srv.data_dir, victim)
        with open(path, "r+b") as fh:
            data = bytearray(fh.read())
            mid = len(data) // 2
            data[mid] ^= 0xFF
            fh.seek(0)
            fh.write(data)
        srv.start()  # asserts /ready 200
        problems = []
        # A start reads footers only (this flip is in a section): the damage is found, counted and
        # logged by the first query that reads the block.
        after = answers()
        corrupted = srv.metrics().get("hearth_segments_corrupted_total", 0)
        if not corrupted >= 1:
            problems.append("hearth_segments_corrupted_total = %r after flipping byte %d of %s" % (corrupted, mid, victim))
        if os.path.basename(victim) not in srv.log():
            problems.append("the log does not name %s:\n%s" % (victim, srv.log()[-2000:]))
        lost = []
        for k, s in sorted(before.items()):
            got = after.get(k, ht.empty_summary())
            if k[0] != "c-b":
                if got != s:
                    problems.append("%s %s: changed by the corruption of another block (%s): %s" % (k[0], k[1], victim, ht.summary_diff(s, got)))
            elif got["total"] == 0:
                lost.append(k[1])
            elif got != s:
                # every series lives in one shard, so one block: all of it or nothing
                problems.append("%s %s: partly answered: %s" % (k[0], k[1], ht.summary_diff(s, got)))
        if not lost:
            problems.append("no series of c-b lost although its block %s was corrupted" % victim)
        # still writable and answering
        st, resp, desc, _ = send(srv, "c-d", "go", "workpool.cpu.001", "push_proto", "process_cpu", now, ht.new_id())
        if st != 200:
            problems.append("%s after the corruption: HTTP %d %s" % (desc, st, ht.error_text(resp)))
        else:
            got = ht.select_merge(srv, "process_cpu:cpu:nanoseconds:cpu:nanoseconds", '{service_name="c-d"}', lo, hi)[2]
            if got != 5610000000:
                problems.append("c-d pushed after the corruption: total %d, want 5610000000" % got)
        sys.stdout.write("[corrupted %s; lost %r] " % (victim, lost))
        srv.kill()
        self.assertEqual(problems, [], "\n" + "\n".join(problems))


# ------------------------------------------------------------------------------------------------
# D: overload (WAL over its limit)


def big_pprof_gz(functions=24, name_bytes=48000):
    """A gzipped pprof whose WAL record alone is over 1 MiB: `functions` frames with long, distinct
    (random hex) names, one sample per frame."""
    p = ht.ctx.pb.profile.Profile()
    strings = ["", "cpu", "nanoseconds", "samples", "count", "big.go"]
    p.sample_type.add(type=1, unit=2)
    p.period_type.type, p.period_type.unit, p.period = 1, 2, 10000000
    p.time_nanos = int(time.time()) * 1000000000
    for i in range(1, functions + 1):
        strings.append("f%d_%s" % (i, os.urandom(name_bytes // 2).hex()))
        p.function.add(id=i, name=len(strings) - 1, filename=5)
        p.location.add(id=i).line.add(function_id=i, line=i)
        p.sample.add(location_id=[i], value=[10000000 * i])
    p.string_table.extend(strings)
    return gzip.compress(p.SerializeToString(), 1)


class TestD(unittest.TestCase):
    maxDiff = None

    def test_d1_overload_answers_429_before_decode_then_seals(self):
        srv = ht.Server(
            "overload",
            os.path.join(ht.ctx.tmp, "data-overload"),
            {"storage": ['wal_max_bytes = "1MiB"', 'head_max_age = "1h"'], "compaction": ["enabled = false"]},
        )
        srv.start()
        try:
            hdr = {"Content-Type": "application/octet-stream"}
            big = big_pprof_gz()
            with open(ht.testdata_path("go", "workpool.cpu.000"), "rb") as fh:
                small = fh.read()
            garbage = b"this is not a pprof, and under overload nobody looks at it"
            now = int(time.time())
            m0 = srv.metrics()
            # One big profile puts the WAL over 1 MiB; the partition's tick (every second) seals
            # it soon after, so the overload is seen right away or the round is tried again.
            seen = None
            for attempt in range(5):
                st, _, body = srv.request("POST", ht.ingest_path("ov-big{}", now), big, hdr)
                self.assertEqual(st, 200, ht.error_text(body))
                st_bad, h_bad, body_bad = srv.request("POST", ht.ingest_path("ov-bad{}", now), garbage, hdr)
                st_ok, h_ok, body_ok = srv.request("POST", ht.ingest_path("ov-small{}", now), small, hdr)
                if st_bad == 429:
                    seen = (h_bad, body_bad, st_ok, h_ok, body_ok)
                    break
                # decoded (and refused as bad pprof): only because a seal came in between
                self.assertEqual(st_bad, 422, ht.error_text(body_bad))
                time.sleep(1.5)
            self.assertIsNotNone(seen, "a malformed body under overload was never answered 429")
            h_bad, body_bad, st_ok, h_ok, body_ok = seen
            self.assertEqual(h_bad.get("retry-after"), "1")
            self.assertIn("wal_max_bytes", ht.error_text(body_bad))
            if st_ok == 429:
                self.assertEqual(h_ok.get("retry-after"), "1")
            m1 = srv.metrics()
            rejected = m1.get("hearth_ingest_rejected_before_decode_total", 0) - m0.get(
                "hearth_ingest_rejected_before_decode_total", 0)
            self.assertGreaterEqual(rejected, 1 + (st_ok == 429))
            # The tick seals a WAL over half its limit: writes are accepted again within seconds.
            deadline = time.monotonic() + 10
            while True:
                st, _, body = srv.request("POST", ht.ingest_path("ov-small{}", now), small, hdr)
                if st == 200:
                    break
                self.assertEqual(st, 429, ht.error_text(body))
                self.assertLess(time.monotonic(), deadline, "still 429 after 10 s: no seal started")
                time.sleep(0.2)
            self.assertGreaterEqual(srv.metrics().get("hearth_segments_written_total", 0), 1)
            st, _, body = srv.request("POST", ht.ingest_path("ov-bad{}", now), garbage, hdr)
            self.assertEqual(st, 422, "a malformed body is decoded (422) again once the WAL is sealed: " + ht.error_text(body))
        finally:
            srv.kill()


# ------------------------------------------------------------------------------------------------
# E: today's closed hours go to level 2 while the day is still open (compaction.open_l2_windows)


class TestE(unittest.TestCase):
    maxDiff = None

    def test_e1_open_window_grows_in_level_2(self):
        now = int(time.time())
        # An L2 window that started at least 15 minutes ago, so that every profile below lies in
        # it, in 1-minute L1 windows that are closed (grace 0) while the L2 window stays open.
        hours = next(h for h in range(24, 1, -1) if now % (h * 3600) >= 900 and (h * 3600 - now % (h * 3600)) >= 600)
        srv = ht.Server(
            "open-l2",
            os.path.join(ht.ctx.tmp, "data-open-l2"),
            {
                "storage": ["head_max_age = 2"],
                "compaction": ['enabled = true', 'interval = "1h"', 'l1_window = "1m"', 'l2_window = "%dh"' % hours, 'grace = "0s"',
                               'deletion_delay = "0s"'],
            },
        )
        srv.start()
        stems = ["workpool.cpu.000", "workpool.cpu.001", "workpool.cpu.002"]
        totals = {st: ht.parse_totals(os.path.join(ht.expected_dir("go", st), "totals.txt"))[("cpu", "nanoseconds")] for st in stems}
        ptype = "process_cpu:cpu:nanoseconds:cpu:nanoseconds"
        sel = '{service_name="open-l2"}'
        sent = []  # (time, stem)
        problems = []

        def push(times):
            for i, t in enumerate(times):
                stem = stems[i % 3]
                st, resp, desc, _ = send(srv, "open-l2", "go", stem, "push_proto", "process_cpu", t, ht.new_id())
                self.assertEqual(st, 200, "%s: HTTP %d %s" % (desc, st, ht.error_text(resp)))
                sent.append((t, stem))
            srv.wait_heads_sealed()

        def files():
            out = {"raw": [], "rollups": [], "lower": []}
            for f in srv.segment_files():
                b = os.path.basename(f)
                if not b.startswith("L2-"):
                    out["lower"].append(b)
                else:
                    out["rollups" if "-r" in b else "raw"].append(b)
            return out

        def check_answers(when):
            for a, b in ((now - 900, now), (now - 600, now - 421), (now - 420, now - 200), (now - 581, now - 581)):
                want = sum(totals[stem] for t, stem in sent if a <= t <= b)
                got = ht.select_merge(srv, ptype, sel, a * 1000, b * 1000)[2]
                if got != want:
                    problems.append("%s: flame graph over [%d, %d] totals %d, want %d" % (when, a, b, got, want))
                x = export_summary(srv, ptype, sel, a * 1000, b * 1000)
                if sum(x[3].values()) != want:
                    problems.append("%s: export over [%d, %d] sums to %d, want %d" % (when, a, b, sum(x[3].values()), want))

        # Minutes now-10 .. now-7, then now-6 .. now-4: each group closed when it is compacted.
        push([now - 600 + 19 * i for i in range(9)])
        srv.compact_until_idle()
        first = files()
        if len(first["raw"]) != 1 or len(first["rollups"]) != 2 or first["lower"]:
            problems.append("after the first minutes: want 1 L2 block + 2 rollups and nothing below, have %r" % first)
        check_answers("first L2 block")
        push([now - 400 + 17 * i for i in range(9)])
        before = ht.select_merge(srv, ptype, sel, (now - 900) * 1000, now * 1000)
        srv.compact_until_idle()
        second = files()
        if len(second["raw"]) != 1 or len(second["rollups"]) != 2 or second["lower"]:
            problems.append("after the next minutes: want 1 L2 block + 2 rollups and nothing below, have %r" % second)
        if set(second["raw"] + second["rollups"]) & set(first["raw"] + first["rollups"]):
            problems.append("the open window's L2 block (and its rollups) should have been merged again: %r then %r" % (first, second))
        if not re.search(r"removed \S*/%s \(compacted\)" % re.escape(first["raw"][0] if first["raw"] else "?"), srv.log()):
            problems.append("the log does not show the first L2 block compacted away")
        after = ht.select_merge(srv, ptype, sel, (now - 900) * 1000, now * 1000)
        if ht.fg_summary(*after) != ht.fg_summary(*before):
            problems.append("the merge into the L2 block changed the flame graph: %s" % ht.summary_diff(ht.fg_summary(*before), ht.fg_summary(*after)))
        check_answers("grown L2 block")
        srv.kill()
        srv.start()
        if files() != second:
            problems.append("files changed across kill -9 + restart: %r then %r" % (second, files()))
        check_answers("after kill -9 + restart")
        r = srv.compact()
        if r.get("jobs") != 0:
            problems.append("a compaction after the restart still found work: %r" % r)
        sys.stdout.write("[l2_window %dh; %r -> %r] " % (hours, first, second))
        srv.kill()
        self.assertEqual(problems, [], "\n" + "\n".join(problems))


class TestF(unittest.TestCase):
    """compaction.deletion_delay at its default (2 min): the files a swap replaced stay on disk
    and are counted in hearth_compaction_deferred_deletion_bytes; a graceful stop deletes them,
    and after a kill -9 the next start does (the outputs name them as sources). Answers are the
    same throughout."""

    def test_f1_replaced_files_wait_for_the_deletion_delay(self):
        now = int(time.time())
        srv = ht.Server(
            "deletion-delay",
            os.path.join(ht.ctx.tmp, "data-deletion-delay"),
            {"storage": ["head_max_age = 1", "shards = 1"],
             "compaction": ['enabled = true', 'interval = "1h"', 'l1_window = "1m"', 'l2_window = "10m"', 'grace = "0s"']},
        )
        srv.start()
        ptype = "process_cpu:cpu:nanoseconds:cpu:nanoseconds"
        sel = '{service_name="delay"}'
        stems = ["workpool.cpu.000", "workpool.cpu.001"]
        want = 0
        problems = []

        def push(times):
            nonlocal want
            for i, t in enumerate(times):
                stem = stems[i % 2]
                st, resp, desc, _ = send(srv, "delay", "go", stem, "push_proto", "process_cpu", t, ht.new_id())
                self.assertEqual(st, 200, "%s: HTTP %d %s" % (desc, st, ht.error_text(resp)))
                want += ht.parse_totals(os.path.join(ht.expected_dir("go", stem), "totals.txt"))[("cpu", "nanoseconds")]
                srv.wait_heads_sealed()  # one level-0 block each

        def total():
            return ht.select_merge(srv, ptype, sel, (now - 3600) * 1000, now * 1000)[2]

        def level0():
            return [f for f in srv.segment_files() if os.path.basename(f).startswith("L0-")]

        # Two closed minutes, two level-0 blocks each.
        push([now - 300 + 7, now - 300 + 31, now - 240 + 7, now - 240 + 31])
        before = level0()
        self.assertGreaterEqual(len(before), 4, "level-0 blocks: %r" % before)
        r = srv.compact()
        self.assertGreater(r.get("jobs", 0), 0, "compaction found no job: %r" % r)
        if not all(f in level0() for f in before):
            problems.append("replaced level-0 files deleted before the delay: %r, now %r" % (before, level0()))
        held = srv.metrics().get("hearth_compaction_deferred_deletion_bytes", 0)
        if held <= 0:
            problems.append("hearth_compaction_deferred_deletion_bytes = %r with replaced files queued" % held)
        if total() != want:
            problems.append("after compaction: total %d, want %d (replaced files counted again?)" % (total(), want))
        # A graceful stop deletes them.
        srv.kill(signal.SIGTERM)
        left = [f for f in before if f in srv.segment_files()]
        if left:
            problems.append("replaced files left after SIGTERM: %r" % left)
        srv.start()
        if total() != want:
            problems.append("after SIGTERM + start: total %d, want %d" % (total(), want))
        # Two more closed minutes, compacted, then kill -9: the next start deletes the replaced files.
        push([now - 180 + 7, now - 180 + 31, now - 120 + 7, now - 120 + 31])
        before = level0()
        srv.compact()
        if not before or not all(f in srv.segment_files() for f in before):
            problems.append("second round: replaced files not held: %r" % before)
        srv.kill()
        srv.start()
        left = [f for f in before if f in srv.segment_files()]
        if left:
            problems.append("replaced files left after kill -9 + start: %r" % left)
        if not re.search(r"removing superseded", srv.log()):
            problems.append("the start after kill -9 did not log removing superseded files")
        if total() != want:
            problems.append("after kill -9 + start: total %d, want %d" % (total(), want))
        srv.kill()
        self.assertEqual(problems, [], "\n" + "\n".join(problems))

if __name__ == "__main__":
    sys.exit(ht.run_main("integration_storage", [TestA, TestB, TestC, TestD, TestE, TestF], __doc__))
