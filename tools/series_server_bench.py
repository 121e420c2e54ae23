#!/usr/bin/env python3
"""W4b (SelectSeries over 24 h for 10k series, all of them and the top 10) through a real hearth
server, in both Connect codecs: what a Grafana panel waits for, response encoding and HTTP
included (docs/bench.md, "SelectSeries through a real server").

usage: series_server_bench.py PATH/TO/hearth SEGMENT_FILE... [--reps N] [--limits 10,0]
                              [--codecs proto,json] [--gzip]

Copies the segment files (e.g. the 24 hourly totals-hNN.seg that `tools/query_bench --only w4b
--keep` leaves under /tmp/hearth-query-bench-PID) into a fresh data dir, starts one hearth on it
(127.0.0.1, port 0, compaction off, one shard), then per (limit, codec) runs N SelectSeries
{} by pod at 60 s over the day and reports each run's wall time, the server's CPU time for it
(utime + stime from /proc/PID/stat) and the body size. The first query decodes the blocks. With
--gzip the requests accept a gzipped answer, as connect-go clients (Grafana) do. The server is
killed by pid at the end.
"""

import argparse
import json
import os
import shutil
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "integration"))
import hearthtest as ht  # noqa: E402

CPU = "process_cpu:cpu:nanoseconds:cpu:nanoseconds"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("hearth")
    ap.add_argument("segments", nargs="+")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--limits", default="10,0")
    ap.add_argument("--codecs", default="proto,json")
    ap.add_argument("--gzip", action="store_true")
    a = ap.parse_args()
    ht.ctx.hearth = os.path.abspath(a.hearth)
    ht.ctx.tmp = tempfile.mkdtemp(prefix="hearth-series-bench-")
    ht.ctx.pb = ht.generate_protos(ht.ctx.tmp)
    srv = None
    try:
        srv = ht.server_on_segments("series", a.segments)
        end_ms = ht.BENCH_DAY_START_MS + 86400 * 1000
        for limit in [int(x) for x in a.limits.split(",")]:
            for codec in a.codecs.split(","):
                walls, cpus = [], []
                for _ in range(a.reps):
                    c0, t0 = ht.process_cpu_s(srv.proc.pid), time.time()
                    if codec == "proto":
                        body = ht.ctx.pb.querier.SelectSeriesRequest(
                            profile_typeID=CPU, label_selector="{}", start=ht.BENCH_DAY_START_MS, end=end_ms, step=60,
                            group_by=["pod"], limit=limit).SerializeToString()
                    else:
                        body = json.dumps({"profileTypeID": CPU, "labelSelector": "{}",
                                           "start": str(ht.BENCH_DAY_START_MS), "end": str(end_ms), "step": 60,
                                           "groupBy": ["pod"], "limit": str(limit)}).encode()
                    headers = {"Content-Type": "application/" + codec}
                    if a.gzip:
                        headers["Accept-Encoding"] = "gzip"
                    st, _, body = srv.request("POST", "/querier.v1.QuerierService/SelectSeries", body, headers,
                                              timeout=300)
                    walls.append(time.time() - t0)
                    cpus.append(ht.process_cpu_s(srv.proc.pid) - c0)
                    if st != 200:
                        raise SystemExit("SelectSeries: HTTP %d: %s" % (st, body[:300]))
                print("limit %d, %s: wall %s ms, server CPU %s ms, body %.1f MB" % (
                    limit, codec, [round(w * 1000) for w in walls], [round(c * 1000) for c in cpus],
                    len(body) / 1e6), flush=True)
    finally:
        if srv is not None:
            srv.kill()
        shutil.rmtree(ht.ctx.tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
