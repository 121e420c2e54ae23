#!/usr/bin/env bash
# Installs what is missing, builds, and starts the hearth server in the foreground on its embedded
# defaults (HTTP on 127.0.0.1:4040, data in ./data). Extra arguments go to hearth, e.g.
#   tools/run.sh --config hearth.toml
set -euo pipefail
cd "$(dirname "$0")/.."
tools/build.sh tools/hearth
exec build/tools/hearth "$@"
