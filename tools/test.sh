#!/usr/bin/env bash
# Installs what is missing, builds, and runs the whole test suite (unit, integration, crash tests).
# Ends with one line "N passed, N failed, N skipped" counted per test case from meson's JUnit log.
# Extra arguments go to `meson test` (e.g. a suite or test name).
set -uo pipefail
cd "$(dirname "$0")/.."
tools/build.sh || { echo "0 passed, 1 failed"; exit 1; }
rm -f build/meson-logs/testlog.junit.xml
meson test -C build --print-errorlogs --num-processes 2 "$@"
rc=$?
/usr/bin/python3 - <<'PY'
import os, xml.etree.ElementTree as ET
path = 'build/meson-logs/testlog.junit.xml'
if not os.path.exists(path):
    print("0 passed, 1 failed")
else:
    cases = ET.parse(path).getroot().findall('.//testcase')
    failed = sum(1 for c in cases if c.find('failure') is not None or c.find('error') is not None)
    skipped = sum(1 for c in cases if c.find('skipped') is not None)
    print(f"{len(cases) - failed - skipped} passed, {failed} failed, {skipped} skipped")
PY
exit $rc
