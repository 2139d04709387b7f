#!/usr/bin/env python3
"""Passive (SPAN/TAP) mode: the daemon on one receive-only port fed by a capture
(net_pcap rx_pcap, standing in for a mirror port). Nothing is dropped; what the policy would
drop is counted as would_drop and the alerts say so.

Usage: passive_test.py EXFILTAP EXFILTAPCTL DEMO.pcap    (prints TAP)
"""
import json
import os
import subprocess
import sys
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import daemon as daemonmod  # noqa: E402
import response_test as rt  # noqa: E402


def main():
    exfiltap, ctl, demo = sys.argv[1:4]

    def config_text(work, sock, alerts, port):
        return f"""dpdk: {{memory_mb: 512}}
ports:
  mode: passive
  passive: ["net_pcap0,rx_pcap={demo}"]
  mbufs: 4095
outputs: {{alerts_file: {alerts}, alert_suppression_s: 0}}
state_dir: {work}/state
control: {{socket: {sock}}}
metrics: {{listen: "127.0.0.1:{port}"}}
response:
  block_table: {{exact_capacity: 1024, prefix_capacity: 64}}
  policies:
    - name: cards-out
      detector: content
      class: payment_card
      action: block-remote
"""

    def check(sock, alerts, port):
        def card_alerts():
            try:
                with open(alerts) as f:
                    return [json.loads(l) for l in f if '"payment_card"' in l]
            except OSError:
                return []

        found = rt.wait_for(lambda: len(card_alerts()) >= 3, timeout=60)
        assert found, "no card alerts from the passive port"
        records = card_alerts()
        assert all(r["alert"]["action"] == "would_drop" for r in records), records
        assert any("passive: listed" in r["exfil"].get("response", "") for r in records), records
        stats = json.loads(subprocess.run([ctl, "--socket", sock, "--json", "stats"],
                                          capture_output=True, text=True, timeout=20).stdout)
        msg = stats["message"]
        assert msg["mode"] == "passive", msg
        assert msg["dropped_blocked"] == 0 and msg["dropped_flow_verdict"] == 0, msg
        assert msg["would_drop"] > 0, msg
        assert msg["packets_tx"] == 0 and msg["packets_rx"] == 263, msg
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
            text = r.read().decode()
        would = rt.metric_value(text, "exfiltap_would_drop_packets_total")
        assert would and would > 0, would

    return daemonmod.run_one_tap_test(
        exfiltap, "passive_port_counts_would_drop_and_drops_nothing", config_text, check)


if __name__ == "__main__":
    sys.exit(main())
