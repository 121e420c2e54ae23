#!/usr/bin/env python3
"""Cluster benchmark (docs/bench.md, "Cluster: 1 vs 3 nodes"): one hearth, or three nodes with
replication_factor RF, driven by tools/load_driver; prints server CPU per ingested sample (all
server processes), the driver's figures and /pyroscope/render latency. Data goes under the
current directory; every server binds 127.0.0.1 (HTTP 15040-15043, CAF 17950-17952).

usage: cluster_bench.py single | cluster RF     (HEARTH, LOAD_DRIVER: the binaries)
"""
import os
import re
import statistics
import subprocess
import sys
import time
import urllib.parse
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
H = os.environ.get("HEARTH", os.path.join(ROOT, "build", "tools", "hearth"))
LD = os.environ.get("LOAD_DRIVER", os.path.join(ROOT, "build", "tools", "load_driver"))
def cpu(pid):
    f = open("/proc/%d/stat" % pid).read().rsplit(")", 1)[1].split()
    return (int(f[11]) + int(f[12])) / os.sysconf("SC_CLK_TCK")
def start(name, text):
    open(name + ".toml", "w").write(text)
    log = open(name + ".log", "w")
    return subprocess.Popen([H, "--config", name + ".toml"], stdout=log, stderr=log)
def wait_ready(port):
    for _ in range(300):
        try:
            if urllib.request.urlopen("http://127.0.0.1:%d/ready" % port, timeout=2).status == 200: return
        except Exception: pass
        time.sleep(0.1)
    raise SystemExit("not ready %d" % port)
def idle(label, procs):
    b = sum(cpu(p.pid) for p in procs)
    time.sleep(10)
    print("%s idle: %.3f cores" % (label, (sum(cpu(p.pid) for p in procs) - b) / 10))
def closed(label, procs, port):
    b = sum(cpu(p.pid) for p in procs)
    out = subprocess.run([LD, "--url", "http://127.0.0.1:%d" % port, "-c", "16", "-d", "15",
                          "--series", "500", "--match", "mapindex.cpu,workpool.cpu"], capture_output=True, text=True).stdout
    a = sum(cpu(p.pid) for p in procs)
    m = re.search(r"([\d.]+) samples/s", out)
    sps = float(m.group(1))
    print("%s closed loop c=16: %.0f samples/s, server CPU %.2f cores, %.2f us/sample" % (label, sps, (a - b) / 15, (a - b) / (sps * 15) * 1e6))
def run(label, procs, ingest_port, query_ports):
    idle(label, procs)
    before = sum(cpu(p.pid) for p in procs)
    out = subprocess.run([LD, "--url", "http://127.0.0.1:%d" % ingest_port, "-c", "8", "-d", "20", "--rate", "150",
                          "--series", "500", "--match", "mapindex.cpu,workpool.cpu"], capture_output=True, text=True).stdout
    after = sum(cpu(p.pid) for p in procs)
    m = re.search(r"([\d.]+) samples/s", out)
    sps = float(m.group(1)) if m else 0
    samples = sps * 20
    q = "process_cpu:cpu:nanoseconds:cpu:nanoseconds{}"
    lat = []
    for port in query_ports * 10:
        t = time.monotonic()
        urllib.request.urlopen("http://127.0.0.1:%d/pyroscope/render?query=%s&from=now-1h&until=now" % (port, urllib.parse.quote(q)), timeout=30).read()
        lat.append((time.monotonic() - t) * 1000)
    print("%s: samples/s %.0f, server CPU %.2f s for %.0f samples = %.2f us/sample; render p50 %.1f ms max %.1f ms" % (
        label, sps, after - before, samples, (after - before) / max(samples, 1) * 1e6, statistics.median(lat), max(lat)))
    closed(label, procs, ingest_port)
    print("   driver:", " | ".join(l.strip() for l in out.splitlines() if "samples/s" in l or "p50" in l or "status" in l))
HERE = os.getcwd()
mode = sys.argv[1] if len(sys.argv) > 1 else ""
if mode not in ("single", "cluster") or (mode == "cluster" and len(sys.argv) < 3):
    raise SystemExit(__doc__)
if mode == "single":
    p = start("single", '[server]\nhttp_listen = "127.0.0.1:15040"\nrpc_listen = ""\n[storage]\npath = "%s/single"\nshards = 8\n' % HERE)
    wait_ready(15040)
    run("1 node", [p], 15040, [15040])
    p.terminate(); p.wait()
else:
    rf = int(sys.argv[2])
    names = ["a", "b", "c"]
    procs = []
    for i, n in enumerate(names):
        peers = ", ".join('{ name = "%s", address = "127.0.0.1:%d" }' % (m, 17950 + j) for j, m in enumerate(names) if m != n)
        procs.append(start("n%s%d" % (n, rf), '[server]\nhttp_listen = "127.0.0.1:%d"\nrpc_listen = ""\n[storage]\npath = "%s/%s-rf%d"\nshards = 8\n'
                           '[cluster]\nnode = "%s"\nlisten = "127.0.0.1:%d"\nreplication_factor = %d\npeers = [ %s ]\n' % (15041 + i, HERE, n, rf, n, 17950 + i, rf, peers)))
    for i in range(3): wait_ready(15041 + i)
    run("3 nodes RF=%d" % rf, procs, 15041, [15042])
    for p in procs: p.terminate()
    for p in procs: p.wait()
