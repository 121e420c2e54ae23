#!/usr/bin/env bash
# Installs every Debian 12 package Hearth needs to build, run and test, when something is missing.
# Idempotent and quiet when everything is there. Needs root (or sudo) only when it installs.
set -euo pipefail

packages=(
  g++ meson ninja-build pkg-config cmake python3 python3-protobuf
  libcaf-dev capnproto libcapnp-dev liburing-dev liblz4-dev libzstd-dev zlib1g-dev libdeflate-dev
  libroaring-dev libtomlplusplus-dev prometheus-cpp-dev libgtest-dev libbenchmark-dev
  libprotobuf-dev protobuf-compiler libre2-dev curl
  # go builds the pull-mode test target (tests/scrape); javac, java and jfr make the JFR recordings
  # of format/jfr.test.cpp and the ingest-format tests
  golang-go openjdk-17-jdk-headless
)

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
# Node.js runs the real-client tests (tests/client); any node >= 18 on PATH will do, else Debian's.
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  missing+=(nodejs npm)
fi
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
echo "deps: installing ${missing[*]}" >&2
sudo=""
if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
