#!/usr/bin/env bash
# Builds the libFuzzer targets of tests/fuzz with clang (ASan + UBSan) in build-fuzz and runs each
# for a bounded time over a seed corpus made from real files (the shared testdata profiles, the
# segment fixtures, the golden queries' request bodies). The optional CI step:
#
#   tools/fuzz.sh [SECONDS_PER_TARGET (default 60)] [TARGET...]
#
# Installs clang and its libFuzzer runtime from Debian when missing. Crashes, timeouts, leaks and
# sanitizer reports fail the run; their reproducers are kept in build-fuzz/artifacts/. Ends with
# the line "N passed, N failed" (one case per target).
set -uo pipefail
cd "$(dirname "$0")/.."
secs="${1:-60}"
shift || true
targets=("$@")
[ ${#targets[@]} -eq 0 ] && targets=(pprof ingest_request selector segment connect_json folded jfr otlp)

tools/deps.sh || exit 1
missing=()
for p in clang libclang-rt-14-dev; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  sudo=""; [ "$(id -u)" -ne 0 ] && sudo="sudo"
  $sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null || exit 1
fi

if [ ! -f build-fuzz/build.ninja ]; then
  CXX=clang++ CC=clang meson setup build-fuzz -Dfuzz=true --buildtype=debugoptimized >/dev/null || exit 1
fi
ninja -C build-fuzz $(printf 'tests/fuzz/fuzz_%s ' "${targets[@]}") || { echo "0 passed, ${#targets[@]} failed"; exit 1; }

testdata="${HEARTH_TESTDATA:-$(pwd)/../shared/testdata}"
corpus=build-fuzz/corpus
rm -rf "$corpus" && mkdir -p "$corpus" build-fuzz/artifacts
# pprof: every real profile, gzipped as sent and plain.
mkdir -p "$corpus/pprof"
for f in "$testdata"/*/*.pb.gz; do
  b=$(basename "$f" .pb.gz)-$(basename "$(dirname "$f")")
  cp "$f" "$corpus/pprof/$b.gz"
  gzip -dc "$f" > "$corpus/pprof/$b.pb"
done
# ingest_request: content type, name, attime, then a multipart body around a real profile.
mkdir -p "$corpus/ingest_request"
first=$(ls "$testdata"/go/*.pb.gz | head -1)
{
  printf 'multipart/form-data; boundary=hearthfuzz\napp{env=prod,pod=a-1}\nnow-1h\n'
  printf -- '--hearthfuzz\r\nContent-Disposition: form-data; name="profile"; filename="profile"\r\n'
  printf 'Content-Type: application/octet-stream\r\n\r\n'
  cat "$first"
  printf '\r\n--hearthfuzz\r\nContent-Disposition: form-data; name="sample_type_config"\r\n\r\n'
  printf '{"alloc_space":{"display-name":"alloc_space_bytes","units":"bytes"}}\r\n--hearthfuzz--\r\n'
} > "$corpus/ingest_request/multipart"
printf 'multipart/form-data; boundary="q b"\nmyapp{}\n1767225600\n--q b--\r\n' > "$corpus/ingest_request/empty"
# selector: the selectors of the golden queries, and profile type IDs.
mkdir -p "$corpus/selector"
i=0
grep -ho '{[^{}]*}' tests/queries/*.q | sort -u | while IFS= read -r s; do
  i=$((i + 1)); printf '%s' "$s" > "$corpus/selector/q$i"
done
printf 'process_cpu:cpu:nanoseconds:cpu:nanoseconds' > "$corpus/selector/type"
printf '{service_name=~"api.*", "utf8.name"!="x", pod!~"b|c"}' > "$corpus/selector/mixed"
# segment: every fixture format version.
mkdir -p "$corpus/segment" && cp tests/data/*.hseg "$corpus/segment/"
# connect_json: the golden queries' JSON bodies, once per method byte.
mkdir -p "$corpus/connect_json"
n=0
for q in tests/queries/*.q; do
  body=$(grep -m1 '^{' "$q") || continue
  for m in 0 1 2 3 4 6 8 9 11; do
    n=$((n + 1)); { printf "\\x$(printf %02x $m)"; printf '%s' "$body"; } > "$corpus/connect_json/b$n"
  done
done

# folded: Pyroscope-style collapsed stacks, with app names that pick each profile type.
mkdir -p "$corpus/folded"
printf 'app.cpu\nmain;work;spin 42\nmain;work;alloc 7\r\nmain 1\n' > "$corpus/folded/cpu"
printf 'svc.alloc_space\nmain;make;grow 4096\n\nmain;idle 0\n' > "$corpus/folded/alloc"
printf 'svc.wall\na;b;c\na;b\na\n' > "$corpus/folded/lines"
# jfr: a real recording of tests/data/jfr/Burn.java under OpenJDK 17 (as format/jfr.test.cpp makes).
mkdir -p "$corpus/jfr"
jbin=/usr/lib/jvm/java-17-openjdk-amd64/bin
if [ -x "$jbin/javac" ]; then
  jtmp=$(mktemp -d)
  "$jbin/javac" -d "$jtmp" tests/data/jfr/Burn.java &&
    "$jbin/java" -XX:StartFlightRecording=filename="$jtmp/rec.jfr",settings=tests/data/jfr/hearth.jfc \
      -cp "$jtmp" Burn 1500 > "$jtmp/java.log" 2>&1 && cp "$jtmp/rec.jfr" "$corpus/jfr/burn.jfr"
  rm -rf "$jtmp"
fi
# otlp: real profiles converted to OTLP with google.protobuf (tests/integration/otlp_convert.py),
# binary (first byte even) and proto3 JSON (first byte odd).
mkdir -p "$corpus/otlp"
otmp=$(mktemp -d)
if /usr/bin/python3 tests/integration/otlp_convert.py "$otmp" "$testdata"/go/workpool.cpu.000.pb.gz \
     "$testdata"/go/workpool.heap.pb.gz "$testdata"/node/node.cpu.000.pb.gz > /dev/null; then
  for f in "$otmp"/*.otlp.pb; do { printf '\x00'; cat "$f"; } > "$corpus/otlp/$(basename "$f")"; done
  for f in "$otmp"/*.otlp.json; do { printf '\x01'; cat "$f"; } > "$corpus/otlp/$(basename "$f")"; done
fi
rm -rf "$otmp"

passed=0; failed=0
for t in "${targets[@]}"; do
  echo "== fuzz_$t: ${secs}s"
  if build-fuzz/tests/fuzz/fuzz_"$t" "$corpus/$t" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 \
       -max_len=262144 -artifact_prefix=build-fuzz/artifacts/"$t"- -print_final_stats=1 \
       > build-fuzz/fuzz_"$t".log 2>&1; then
    passed=$((passed + 1))
    grep -E "^stat::number_of_executed_units|^#[0-9]+.*DONE" build-fuzz/fuzz_"$t".log | tail -2
  else
    failed=$((failed + 1))
    echo "fuzz_$t FAILED; log: build-fuzz/fuzz_$t.log"; tail -40 build-fuzz/fuzz_"$t".log
  fi
done
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
