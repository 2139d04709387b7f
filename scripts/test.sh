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
python3 scripts/count_junit.py "$build/meson-logs/testlog.junit.xml"
exit $rc
