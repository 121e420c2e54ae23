#!/usr/bin/env python3
"""The first query after a start, through a real hearth server: W3 (24 h flame graph), W7 (diff of
two services), W9 (pprof export, full and GoPGO) as Grafana's backend and profilecli send them,
over Connect with the binary codec (docs/bench.md, "Cold queries through a real server").

usage: cold_query_bench.py PATH/TO/hearth SEGMENT_FILE... [--reps N] [--warm N]
                           [--workloads w3,w7,w9,w9pgo]

Copies the segment files (e.g. the day files and rollups, or the hourly files, that
`tools/query_bench --only w7,day --keep` leaves under /tmp/hearth-query-bench-PID: svc-a and
svc-b) into a fresh data dir. Per workload and rep it starts one hearth on it (127.0.0.1 port 0,
compaction off, one shard, the partial cache off), which reads only the footers at start, sends
the query once (the cold figure: every block read and decoded, frame maps built) and then --warm
more times (blocks cached), and kills the server by pid. Reports the median wall time and the
server's CPU time per query (utime + stime from /proc/PID/stat), and checks that every answer of
a workload is the same: byte for byte for flame graphs and diffs; for pprof exports the same
number of samples and the same total (the bytes follow the order in which the readers' partials
were merged, which varies with several files). The OS page cache stays warm, as in
tools/query_bench's cold runs.
"""

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "integration"))
import hearthtest as ht  # noqa: E402

CPU = "process_cpu:cpu:nanoseconds:cpu:nanoseconds"
DAY_START_MS = ht.BENCH_DAY_START_MS


def stacks(service, start_ms, end_ms):
    return {"profileTypeID": CPU, "labelSelector": '{service_name="%s"}' % service, "start": str(start_ms),
            "end": str(end_ms), "maxNodes": "8192"}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("hearth")
    ap.add_argument("segments", nargs="+")
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--warm", type=int, default=3)
    ap.add_argument("--workloads", default="w3,w7,w9,w9pgo")
    a = ap.parse_args()
    ht.ctx.hearth = os.path.abspath(a.hearth)
    protos = tempfile.mkdtemp(prefix="hearth-cold-query-bench-protos-")
    ht.ctx.pb = ht.generate_protos(protos)
    from google.protobuf import json_format  # noqa: E402 (after generate_protos, as the tests do)
    start, end = DAY_START_MS, DAY_START_MS + 86400 * 1000
    q = "/querier.v1.QuerierService/"
    pgo = dict(stacks("svc-a", start, end), stackTraceSelector={"goPgo": {"keepLocations": 5, "aggregateCallees": True}})
    pgo.pop("maxNodes")
    full = stacks("svc-a", start, end)
    full.pop("maxNodes")
    pb = ht.ctx.pb.querier
    workloads = {
        "w3": ("W3 SelectMergeStacktraces svc-a (max_nodes 8192)", "SelectMergeStacktraces",
               json_format.ParseDict(stacks("svc-a", start, end), pb.SelectMergeStacktracesRequest())),
        "w7": ("W7 Diff svc-a vs svc-b (max_nodes 8192)", "Diff",
               json_format.ParseDict({"left": stacks("svc-a", start, end), "right": stacks("svc-b", start, end)},
                                     pb.DiffRequest())),
        "w9": ("W9 SelectMergeProfile svc-a, full", "SelectMergeProfile",
               json_format.ParseDict(full, pb.SelectMergeProfileRequest())),
        "w9pgo": ("W9 SelectMergeProfile svc-a, GoPGO keep_locations 5 + aggregate_callees", "SelectMergeProfile",
                  json_format.ParseDict(pgo, pb.SelectMergeProfileRequest())),
    }
    print("load average at start: %s; %d segment files" % (open("/proc/loadavg").read().strip(), len(a.segments)))
    for key in a.workloads.split(","):
        label, method, msg = workloads[key]
        cold_w, cold_c, warm_w, warm_c, body0 = [], [], [], [], None
        for rep in range(a.reps):
            ht.ctx.tmp = tempfile.mkdtemp(prefix="hearth-cold-query-bench-")
            srv = ht.server_on_segments("cold", a.segments, ["partial_cache_bytes = 0"])
            try:
                for i in range(1 + a.warm):
                    pid = srv.proc.pid
                    c0, w0 = ht.process_cpu_s(pid), time.monotonic()
                    st, _, body = srv.connect_proto(q + method, msg, timeout=300)
                    w, c = time.monotonic() - w0, ht.process_cpu_s(pid) - c0
                    if st != 200:
                        raise SystemExit("%s: HTTP %d %s" % (label, st, ht.error_text(body)))
                    if method == "SelectMergeProfile":
                        p = ht.ctx.pb.profile.Profile()
                        p.ParseFromString(body)
                        body = (len(p.sample), sum(x.value[0] for x in p.sample), len(body))
                    if body0 is None:
                        body0 = body
                    elif body[:2] != body0[:2]:
                        raise SystemExit("%s: rep %d query %d answered differently" % (label, rep, i))
                    (warm_w if i else cold_w).append(w)
                    (warm_c if i else cold_c).append(c)
            finally:
                srv.kill()
                shutil.rmtree(ht.ctx.tmp, ignore_errors=True)
        size = body0[2] if isinstance(body0, tuple) else len(body0)
        print("%s, %d bytes:" % (label, size), flush=True)
        print("  first query after start: wall p50 %.1f ms (min %.1f, max %.1f), server CPU p50 %.0f ms; %d reps"
              % (statistics.median(cold_w) * 1e3, min(cold_w) * 1e3, max(cold_w) * 1e3,
                 statistics.median(cold_c) * 1e3, a.reps))
        if warm_w:
            print("  then (blocks cached):    wall p50 %.1f ms, server CPU p50 %.0f ms; %d queries"
                  % (statistics.median(warm_w) * 1e3, statistics.median(warm_c) * 1e3, len(warm_w)))
    print("load average at end: %s" % open("/proc/loadavg").read().strip())
    shutil.rmtree(protos, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
