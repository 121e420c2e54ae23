#!/usr/bin/env bash
# Server memory under sustained ingest at 10k active series (performance.md W2: RSS < 2 GiB over
# 10 minutes): one hearth on 127.0.0.1 with its default configuration, load_driver open-loop at
# 900 req/s over 10,000 series from 32 connections for DURATION seconds (default 600), VmRSS and
# VmHWM sampled every second. Prints load_driver's report, RSS per minute (min-max, MiB) and VmHWM.
#
# usage: tools/rss_soak.sh BUILD_DIR PORT [DURATION_S] [WORK_DIR]
# Stops by itself after DURATION_S, kills only the server it started.
set -eu
bin=$1; port=$2; dur=${3:-600}; root=$(cd "$(dirname "$0")/.." && pwd)
work=${4:-$(mktemp -d /tmp/hearth-rss-soak.XXXXXX)}
testdata=${HEARTH_TESTDATA:-$root/../shared/testdata}
mkdir -p "$work/data"
printf '[server]\nhttp_listen = "127.0.0.1:%s"\nrpc_listen = ""\n[storage]\npath = "%s"\n' "$port" "$work/data" > "$work/cfg.toml"
"$bin/tools/hearth" --config "$work/cfg.toml" > "$work/server.log" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null' EXIT
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$port/ready" >/dev/null && break; sleep 0.2; done
( while kill -0 $pid 2>/dev/null; do
    echo "$(date +%s) $(awk '/VmRSS|VmHWM/ {printf "%s ", $2}' /proc/$pid/status 2>/dev/null)"; sleep 1
  done ) > "$work/rss.txt" &
echo "load before: $(cut -d' ' -f1-3 /proc/loadavg)"
"$bin/tools/load_driver" --url "http://127.0.0.1:$port" --testdata "$testdata" --series 10000 --rate 900 -c 32 \
  -d "$dur" --match mapindex.cpu,workpool.cpu --server-pid $pid
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "VmHWM: $(awk '/VmHWM/ {printf "%d MiB", $2 / 1024}' /proc/$pid/status)"
# rss.txt: "<unix s> <VmHWM kB> <VmRSS kB>" (the order /proc prints them)
awk 'NF >= 3 { m = int(($1 - t0) / 60); if (!t0) { t0 = $1; m = 0 } r = $3 / 1024;
       if (!(m in lo) || r < lo[m]) lo[m] = r; if (r > hi[m]) hi[m] = r; if (m > last) last = m }
     END { printf "RSS per minute (MiB):"; for (i = 0; i <= last; i++) printf " %d-%d", lo[i], hi[i]; print "" }' "$work/rss.txt"
