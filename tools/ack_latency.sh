#!/usr/bin/env bash
# Ingest ack latency with and without concurrent compaction (performance.md W10's "p99 within
# +20%"): one hearth on 127.0.0.1 with heads sealed every 2 s and, with `on`, compaction every 2 s
# (L1 windows of 10 s, L2 of 60 s, no grace), driven open-loop by load_driver at 600 req/s (16
# connections, 1,000 series, the real Go CPU profiles) for 30 s. Prints load_driver's report.
#
# usage: tools/ack_latency.sh BUILD_DIR on|off PORT [WORK_DIR]
#   e.g. tools/ack_latency.sh build-rel off 4471; tools/ack_latency.sh build-rel on 4472
# Stops by itself (load_driver -d 30), kills only the server it started.
set -eu
bin=$1; mode=$2; port=$3; root=$(cd "$(dirname "$0")/.." && pwd)
work=${4:-$(mktemp -d /tmp/hearth-ack-latency.XXXXXX)}
testdata=${HEARTH_TESTDATA:-$root/../shared/testdata}
mkdir -p "$work/data"
{
  echo '[server]'; echo "http_listen = \"127.0.0.1:$port\""; echo 'rpc_listen = ""'
  echo '[storage]'; echo "path = \"$work/data\""; echo 'head_max_age = "2s"'
  echo '[compaction]'
  if [ "$mode" = on ]; then echo 'interval = "2s"'; echo 'l1_window = "10s"'; echo 'l2_window = "60s"'; echo 'grace = "0s"'
  else echo 'enabled = false'; fi
} > "$work/cfg.toml"
"$bin/tools/hearth" --config "$work/cfg.toml" > "$work/server.log" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null' EXIT
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$port/ready" >/dev/null && break; sleep 0.2; done
echo "compaction $mode; load before: $(cut -d' ' -f1-3 /proc/loadavg)"
"$bin/tools/load_driver" --url "http://127.0.0.1:$port" --testdata "$testdata" -c 16 -d 30 --rate 600 \
  --series 1000 --match mapindex.cpu,workpool.cpu --server-pid $pid
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg); swaps: $(grep -c 'swapped in' "$work/server.log" || true)"
