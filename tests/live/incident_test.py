#!/usr/bin/env python3
"""Incidents on a live daemon: one passive port fed by a generated capture (net_pcap rx_pcap)
in which 10.20.1.80 mails three zip attachments out (archive_out: packing, then
mail_attachment_out: exfiltration). The daemon opens one incident, and `exfiltapctl
incidents` lists it, shows its timeline, refuses an unknown id and the daemon keeps
answering; the opening wrote the incident's flows from the flight recorder as pcapng.

Usage: incident_test.py EXFILTAP EXFILTAPCTL BH-mail_attachment_out-alert.pcap    (prints TAP)
"""
import json
import os
import shutil
import subprocess
import sys
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import daemon as daemonmod  # noqa: E402
import response_test as rt  # noqa: E402

HOST = "10.20.1.80"


def ctl_run(ctl, sock, *args, json_out=True):
    cmd = [ctl, "--socket", sock] + (["--json"] if json_out else []) + list(args)
    return subprocess.run(cmd, capture_output=True, text=True, timeout=20)


def check(ctl, sock, alerts, port):
    def incident_records():
        try:
            with open(alerts) as f:
                return [json.loads(l) for l in f if '"event_type":"incident"' in l]
        except OSError:
            return []

    assert rt.wait_for(lambda: len(incident_records()) >= 1, timeout=60), \
        "no incident record from the passive port"
    record = incident_records()[0]["incident"]
    assert record["event"] == "opened", record
    assert record["host"]["ip"] == HOST, record
    assert record["stages"] == ["packing", "exfiltration"], record

    listed = ctl_run(ctl, sock, "incidents")
    assert listed.returncode == 0, listed.stderr
    rows = json.loads(listed.stdout)["message"]
    assert len(rows) == 1, rows
    row = rows[0]
    assert row["id"] == record["id"] and row["host"] == HOST, row
    assert row["state"] == "open" and row["stages"] == "packing,exfiltration", row
    assert row["score"] == record["score"] and row["findings"] == 4, row

    human = ctl_run(ctl, sock, "incidents", json_out=False)
    assert human.returncode == 0 and HOST in human.stdout, human.stdout

    one = ctl_run(ctl, sock, "incidents", str(record["id"]))
    assert one.returncode == 0, one.stderr
    detail = json.loads(one.stdout)["message"]
    detectors = [f["detector"] for f in detail["findings"]]
    assert detectors == ["archive_out"] * 3 + ["mail_attachment_out"], detectors
    alert_flows = set()
    with open(alerts) as f:
        for line in f:
            r = json.loads(line)
            if r["event_type"] == "alert":
                alert_flows.add(r["flow_id"])
    assert all(f["flow_id"] in alert_flows for f in detail["findings"]), detail

    missing = ctl_run(ctl, sock, "incidents", "999")
    assert missing.returncode != 0, missing.stdout
    assert "no incident 999" in missing.stdout + missing.stderr, missing.stdout + missing.stderr
    still = ctl_run(ctl, sock, "version")
    assert still.returncode == 0, "daemon stopped answering after a bad id"

    # Evidence: the opening asked the flight recorder for the incident's flows; the pcapng
    # holds their packets and opens in tshark.
    folder = os.path.join(os.path.dirname(alerts), "evidence")

    def evidence_files():
        try:
            return [n for n in os.listdir(folder)
                    if n.endswith(f"-incident-{record['id']}.pcapng")]
        except OSError:
            return []
    assert rt.wait_for(evidence_files, timeout=20), os.listdir(os.path.dirname(alerts))
    path = os.path.join(folder, evidence_files()[0])
    assert os.path.getsize(path) > 0
    if shutil.which("tshark"):
        shown = subprocess.run(["tshark", "-r", path, "-T", "fields", "-e", "ip.src",
                                "-e", "ip.dst"], capture_output=True, text=True, timeout=60)
        assert shown.returncode == 0, shown.stderr
        rows = [line.split("\t") for line in shown.stdout.splitlines() if line.strip()]
        # Packets of the incident's flows only: every one has the host at one end.
        assert rows and all(HOST in row for row in rows), rows[:5]
        print(f"# evidence {os.path.basename(path)}: {len(rows)} packets")
    else:
        print("# tshark not installed: evidence file not opened with it (scripts/setup.sh)")

    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
        text = r.read().decode()
    opened = rt.metric_value(text, "exfiltap_incidents_opened_total")
    assert opened == 1, opened
    assert rt.wait_for(lambda: rt.metric_value(
        urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode(),
        "exfiltap_incidents_open") == 1, timeout=10), "exfiltap_incidents_open is not 1"


def main():
    exfiltap, ctl, capture = sys.argv[1:4]

    def config_text(work, sock, alerts, port):
        return f"""dpdk: {{memory_mb: 512}}
ports:
  mode: passive
  passive: ["net_pcap0,rx_pcap={capture}"]
  mbufs: 4095
networks:
  internal: ["10.20.0.0/16"]
assets:
  - name: workstations
    prefixes: [10.20.1.0/24]
    classification: confidential
behaviour:
  mail_attachment_out: {{window_s: 3600, count: 3, bytes: 0}}
incidents: {{open_score: 50, idle_s: 86400}}
outputs:
  alerts_file: {alerts}
  alert_suppression_s: 0
  evidence: {{enabled: true, dir: {work}/evidence}}
state_dir: {work}/state
control: {{socket: {sock}}}
metrics: {{listen: "127.0.0.1:{port}"}}
"""

    return daemonmod.run_one_tap_test(
        exfiltap, "incidents_listed_shown_and_bad_id_refused", config_text,
        lambda sock, alerts, port: check(ctl, sock, alerts, port))


if __name__ == "__main__":
    sys.exit(main())
