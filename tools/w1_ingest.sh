#!/usr/bin/env bash
# W1 ingest throughput on W1-sized profiles (performance.md: Go CPU pprof, gzip -1, 1k-5k samples
# per profile, 10k series). The real Go CPU profiles in ../shared/testdata have 350-484 samples,
# so this merges them with `go tool pprof -proto` (Debian's golang-go; identical stacks add up)
# into three real profiles of 783, 1,156 and 1,939 samples, recompressed with gzip -1, then runs
# one hearth on 127.0.0.1 (default configuration: every ack after an fsync) and load_driver,
# closed loop, over those profiles and, alternated, over the unmerged ones.
#
# usage: tools/w1_ingest.sh BUILD_DIR PORT [SECONDS] [RUNS]
# Stops by itself; kills only the servers it started.
set -eu
bin=$1; port=$2; dur=${3:-15}; runs=${4:-2}; root=$(cd "$(dirname "$0")/.." && pwd)
testdata=${HEARTH_TESTDATA:-$root/../shared/testdata}
work=$(mktemp -d /tmp/hearth-w1.XXXXXX)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/w1/go"
T=$testdata/go
merge() { go tool pprof -proto "${@:2}" 2>/dev/null | gunzip | gzip -1 > "$work/w1/go/$1"; }
merge mapindex.cpu.w1a.pb.gz $T/mapindex.cpu.00[0-2].pb.gz
merge workpool.cpu.w1b.pb.gz $T/workpool.cpu.00[0-2].pb.gz
merge all.cpu.w1c.pb.gz $T/mapindex.cpu.00[0-2].pb.gz $T/workpool.cpu.00[0-2].pb.gz
printf '[server]\nhttp_listen = "127.0.0.1:%s"\nrpc_listen = ""\n[storage]\npath = "%s"\n' "$port" "$work/data" > "$work/cfg.toml"
one() {  # $1 label, $2 testdata dir, $3 --match
  rm -rf "$work/data"
  "$bin/tools/hearth" --config "$work/cfg.toml" > "$work/server.log" 2>&1 &
  local pid=$!
  for _ in $(seq 100); do curl -sf "http://127.0.0.1:$port/ready" >/dev/null && break; sleep 0.2; done
  echo "== $1 (load $(cut -d' ' -f1-3 /proc/loadavg))"
  "$bin/tools/load_driver" --url "http://127.0.0.1:$port" --testdata "$2" -c 16 -d "$dur" --series 10000 \
    --match "$3" --server-pid $pid 2>&1 | grep -E "mean .* samples per profile|^throughput|^ack latency|^server cpu"
  kill $pid; wait $pid 2>/dev/null || true
}
for i in $(seq "$runs"); do
  one "real profiles, run $i" "$testdata" mapindex.cpu,workpool.cpu
  one "W1-sized profiles, run $i" "$work/w1" cpu.w1
done
