#!/usr/bin/env bash
# Runs the whole test suite: installs dependencies and builds when needed, then the unit,
# EAL and integration suites (the suites that start EAL run one test at a time). Ends with
# the line "N passed, N failed" counted over every test case.
set -uo pipefail
cd "$(dirname "$0")/.."
build=${BUILD_DIR:-build}
scripts/setup.sh "$build" || { echo "0 passed, 1 failed"; exit 1; }

meson test -C "$build" --print-errorlogs --num-processes 2 "$@"
rc=$?
python3 - "$build/meson-logs/testlog.junit.xml" <<'PY'
import sys, xml.etree.ElementTree as ET
passed = failed = skipped = 0
try:
    root = ET.parse(sys.argv[1]).getroot()
except Exception as e:
    print(f"cannot read test log: {e}")
    print("0 passed, 1 failed")
    sys.exit(0)
for case in root.iter("testcase"):
    if case.find("failure") is not None or case.find("error") is not None:
        failed += 1
    elif case.find("skipped") is not None:
        skipped += 1
    else:
        passed += 1
print(f"{passed} passed, {failed} failed, {skipped} skipped")
PY
exit $rc
