#!/usr/bin/env python3
"""W3 (24 h flame graph) and W8 (exact top-1000 functions) through real hearth servers, with and
without the readers' partial cache (docs/bench.md, "Partial cache").

usage: query_cache_bench.py PATH/TO/hearth SEGMENT_FILE... [--reps N] [--start-ms MS --end-ms MS]
                            [--selector SEL]

Copies the given segment files (e.g. the day file or hourly files that
`tools/query_bench --only w3,day --keep` leaves under /tmp/hearth-query-bench-PID) into the
segments directory of two fresh data dirs, starts one hearth on each (127.0.0.1 port 0, compaction
off, one shard): A with query.partial_cache_bytes = 0 and B with the default cache, then per server:
the first SelectMergeStacktraces (blocks decoded at start; an empty partial cache), then N more of
each query, interleaved A/B. Reports the server process's CPU time per query (utime + stime from
/proc/PID/stat, summed over the N runs and divided) and the median wall time, and checks that A
and B answer byte-identical bodies. Both servers are killed by pid at the end.
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
cpu_s = ht.process_cpu_s


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("hearth")
    ap.add_argument("segments", nargs="+")
    ap.add_argument("--reps", type=int, default=20)
    ap.add_argument("--start-ms", type=int, default=DAY_START_MS)
    ap.add_argument("--end-ms", type=int, default=DAY_START_MS + 86400 * 1000)
    ap.add_argument("--selector", default='{service_name="svc-a"}')
    a = ap.parse_args()
    ht.ctx.hearth = os.path.abspath(a.hearth)
    ht.ctx.tmp = tempfile.mkdtemp(prefix="hearth-query-cache-bench-")
    servers = []
    try:
        for name, lines in (("uncached", ["partial_cache_bytes = 0"]), ("cached", [])):
            servers.append(ht.server_on_segments(name, a.segments, lines))
        smst = {"profileTypeID": CPU, "labelSelector": a.selector, "start": str(a.start_ms), "end": str(a.end_ms),
                "maxNodes": "8192"}
        explain = {"selection": {"profile_typeID": CPU, "label_selector": a.selector, "start": str(a.start_ms),
                                 "end": str(a.end_ms)}, "top": "1000"}
        queries = [("W3 SelectMergeStacktraces (max_nodes 8192)", "/querier.v1.QuerierService/SelectMergeStacktraces", smst),
                   ("W8 Explain top 1000", "/hearth.v1.FindingsService/Explain", explain)]

        def run(srv, path, msg):
            pid = srv.proc.pid
            c0, w0 = cpu_s(pid), time.monotonic()
            st, _, body = srv.connect_json(path, msg, timeout=300)
            w, c = time.monotonic() - w0, cpu_s(pid) - c0
            if st != 200:
                raise SystemExit("%s %s: HTTP %d %s" % (srv.name, path, st, ht.error_text(body)))
            return body, w, c

        print("load average at start: %s" % open("/proc/loadavg").read().strip())
        for label, path, msg in queries:
            first = {}
            for srv in servers:
                body, w, c = run(srv, path, msg)
                first[srv.name] = (body, w, c)
            if first["uncached"][0] != first["cached"][0]:
                raise SystemExit("%s: first answers differ" % label)
            walls = {s.name: [] for s in servers}
            cpus = {s.name: 0.0 for s in servers}
            for _ in range(a.reps):
                for srv in servers:
                    body, w, c = run(srv, path, msg)
                    if body != first["uncached"][0]:
                        raise SystemExit("%s: %s answered differently" % (label, srv.name))
                    walls[srv.name].append(w)
                    cpus[srv.name] += c
            print("%s, %d bytes:" % (label, len(first["uncached"][0])))
            for srv in servers:
                print("  %-8s first: wall %.1f ms, CPU %.0f ms; next %d: wall p50 %.1f ms, CPU %.1f ms per query"
                      % (srv.name, first[srv.name][1] * 1e3, first[srv.name][2] * 1e3, a.reps,
                         statistics.median(walls[srv.name]) * 1e3, cpus[srv.name] / a.reps * 1e3))
        m = servers[1].metrics()
        print("cached server: hits %d, misses %d, %.1f MiB cached" % (
            m.get("hearth_query_partial_cache_hits_total", 0), m.get("hearth_query_partial_cache_misses_total", 0),
            m.get("hearth_query_partial_cache_bytes", 0) / 2**20))
        print("load average at end: %s" % open("/proc/loadavg").read().strip())
    finally:
        for srv in servers:
            srv.kill()
        shutil.rmtree(ht.ctx.tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
