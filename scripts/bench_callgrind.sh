#!/usr/bin/env bash
# Instructions per packet of the worker's burst function, deterministic enough to guard
# against regressions: each main scenario of exfiltap-bench runs briefly under callgrind with
# collection toggled on Worker::process_burst only (so polling, set-up and the reader do not
# count), and the instructions collected are divided by the packets those bursts handled.
#
# Usage: scripts/bench_callgrind.sh [--build DIR] [--update] [--scenarios a,b,...]
#   compares with tests/bench/callgrind_baseline.json and exits 1 when a scenario rose by
#   more than 10% (--update rewrites the baseline instead).
set -euo pipefail
cd "$(dirname "$0")/.."
build=build
update=0
scenarios="ack-10k,new-10k,imix,1kxun,text-1460,text-64,digits"
while [ $# -gt 0 ]; do
    case "$1" in
        --build) build=$2; shift 2 ;;
        --update) update=1; shift ;;
        --scenarios) scenarios=$2; shift 2 ;;
        *) echo "bench_callgrind: unknown argument $1" >&2; exit 2 ;;
    esac
done
bench="$build/tests/bench/exfiltap-bench"
baseline=tests/bench/callgrind_baseline.json
[ -x "$bench" ] || { echo "bench_callgrind: $bench not built" >&2; exit 2; }
command -v valgrind >/dev/null || { echo "bench_callgrind: valgrind not installed" >&2; exit 2; }
work=$(mktemp -d /tmp/exfiltap-callgrind-XXXXXX)
trap 'rm -rf "$work"' EXIT

results="$work/results.txt"
: >"$results"
IFS=',' read -r -a list <<<"$scenarios"
for s in "${list[@]}"; do
    # Short: few passes, one worker, no bare run, no flow-scale test.
    # The wait for room in the full event ring (offline runs lose no event) is left out:
    # how long it spins depends on when valgrind, which runs one thread at a time, lets
    # the control thread drain the ring.
    valgrind --tool=callgrind --toggle-collect='*Worker::process_burst*' \
        --toggle-collect='*Worker::wait_to_enqueue*' \
        --callgrind-out-file="$work/$s.out" \
        "$bench" --scenario "$s" --workers 1 --passes-factor 0.1 --flow-scale 0 --no-bare \
        --no-stage-cycles --no-siem --memory-mb 1536 --json "$work/$s.json" >"$work/$s.log" 2>&1 || {
        tail -20 "$work/$s.log"
        echo "bench_callgrind: $s failed" >&2
        exit 1
    }
    ir=$(awk '/^(summary|totals):/ {print $2; exit}' "$work/$s.out")
    packets=$(python3 -c 'import json,sys; j=json.load(open(sys.argv[1])); print(sum(r["pipeline"]["all_busy_packets"] for r in j["runs"]))' "$work/$s.json")
    echo "$s $ir $packets" >>"$results"
done

python3 - "$results" "$baseline" "$update" <<'EOF'
import json, sys
results, baseline_path, update = sys.argv[1], sys.argv[2], sys.argv[3] == "1"
now = {}
for line in open(results):
    name, ir, packets = line.split()
    now[name] = round(int(ir) / max(int(packets), 1), 1)
try:
    base = json.load(open(baseline_path))
except FileNotFoundError:
    base = {}
if update:
    base.update({k: {"instructions_per_packet": v} for k, v in now.items()})
    with open(baseline_path, "w") as f:
        json.dump(base, f, indent=2, sort_keys=True)
        f.write("\n")
    for k, v in sorted(now.items()):
        print(f"{k:12} {v:10.1f} instructions/packet (baseline written)")
    sys.exit(0)
risen = []
for k, v in sorted(now.items()):
    b = base.get(k, {}).get("instructions_per_packet")
    if b is None:
        print(f"{k:12} {v:10.1f} instructions/packet (no baseline)")
        continue
    change = (v - b) / b
    flag = "ROSE >10%" if change > 0.10 else "ok"
    print(f"{k:12} {v:10.1f} instructions/packet, baseline {b:.1f} ({change:+.1%}) {flag}")
    if change > 0.10:
        risen.append(k)
if risen:
    print("bench_callgrind: instructions per packet rose by more than 10%: " + ", ".join(risen))
    sys.exit(1)
EOF
