#!/usr/bin/env bash
# Installs what is missing, builds, and runs the whole test suite (unit, integration, crash tests).
# Ends with one line "N passed, N failed, N skipped" counted per test case from meson's JUnit log.
# Extra arguments go to `meson test` (e.g. a suite or test name).
set -uo pipefail
cd "$(dirname "$0")/.."
tools/build.sh || { echo "0 passed, 1 failed"; exit 1; }
# The real npm clients of tests/client, exactly as locked in its package-lock.json.
if [ ! -f tests/client/node_modules/.package-lock.json ] ||
   [ tests/client/package-lock.json -nt tests/client/node_modules/.package-lock.json ]; then
  (cd tests/client && npm ci --no-audit --no-fund --loglevel=error) || { echo "0 passed, 1 failed"; exit 1; }
fi
rm -f build/meson-logs/testlog.junit.xml build/meson-logs/*.cases.xml
meson test -C build --print-errorlogs --num-processes 2 "$@"
rc=$?
/usr/bin/python3 - <<'PY'
# gtest binaries appear case by case in meson's JUnit log; script tests appear there as one case
# each, and write their own cases to meson-logs/<test>.cases.xml: count those instead.
import glob, os, xml.etree.ElementTree as ET
path = 'build/meson-logs/testlog.junit.xml'
if not os.path.exists(path):
    print("0 passed, 1 failed")
    raise SystemExit
detailed = {os.path.basename(p)[:-len('.cases.xml')]: p for p in glob.glob('build/meson-logs/*.cases.xml')}
cases = []
for c in ET.parse(path).getroot().iter('testcase'):
    if c.get('name') in detailed:
        continue
    cases.append(c)
for p in detailed.values():
    cases.extend(ET.parse(p).getroot().iter('testcase'))
failed = sum(1 for c in cases if c.find('failure') is not None or c.find('error') is not None)
skipped = sum(1 for c in cases if c.find('skipped') is not None)
print(f"{len(cases) - failed - skipped} passed, {failed} failed, {skipped} skipped")
PY
exit $rc
