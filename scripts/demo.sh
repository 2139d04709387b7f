#!/usr/bin/env bash
# The demo: builds exfiltap if needed and runs it on the bundled generated capture (an HTTP
# upload with card numbers and SSNs among benign traffic). Prints the alerts and the summary.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh build
out=$(mktemp -d /tmp/exfiltap-demo.XXXXXX)
echo "demo: exfiltap --pcap build/tests/integration/demo.pcap (outputs in $out)"
build/control/exfiltap --pcap build/tests/integration/demo.pcap \
    --write "$out/forwarded.pcap" --alerts "$out/alerts.json" \
    --summary-json "$out/summary.json" --set "state_dir=$out/state"
echo
echo "alerts ($out/alerts.json):"
if command -v python3 >/dev/null; then
    python3 -c 'import json,sys
for line in open(sys.argv[1]):
    print(json.dumps(json.loads(line), indent=None))' "$out/alerts.json"
else
    cat "$out/alerts.json"
fi
