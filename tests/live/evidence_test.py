#!/usr/bin/env python3
"""Evidence from a running daemon: one receive-only port fed by the demo capture (net_pcap,
siem_test.run_daemon), then `exfiltapctl evidence FLOW_ID,FLOW_ID` for two flows that
alerted. The reply names a pcapng file, which must appear, open in tshark and hold exactly
the packets and bytes of those flows in the capture. Then a reload moves the evidence folder
(the next file is written there) and a changed recorder size is logged as needing a restart.

Usage: evidence_test.py EXFILTAP EXFILTAPCTL DEMO.pcap    (prints TAP)
"""
import json
import os
import shutil
import struct
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import response_test as rt  # noqa: E402
import siem_test as siem  # noqa: E402


EVIDENCE = "  evidence: {enabled: true, recorder_bytes: 4194304}"


def flow_key(frame):
    """Both directions of an untagged IPv4 TCP/UDP frame give the same key; None otherwise."""
    if len(frame) < 38 or frame[12:14] != b"\x08\x00":
        return None
    ihl = (frame[14] & 0x0F) * 4
    if frame[23] not in (6, 17):
        return None
    src, dst = frame[26:30], frame[30:34]
    sport, dport = struct.unpack("!HH", frame[14 + ihl:18 + ihl])
    return tuple(sorted([(src, sport), (dst, dport)]))


def capture_flows(path):
    """key -> [packets, original bytes] of a little-endian pcap file."""
    flows = {}
    with open(path, "rb") as f:
        data = f.read()
    at = 24
    while at + 16 <= len(data):
        _, _, caplen, length = struct.unpack("<IIII", data[at:at + 16])
        key = flow_key(data[at + 16:at + 16 + caplen])
        at += 16 + caplen
        if key is not None:
            entry = flows.setdefault(key, [0, 0])
            entry[0] += 1
            entry[1] += length
    return flows


def pcapng_packets(path):
    """(packets, original bytes) of the enhanced packet blocks of a pcapng file."""
    with open(path, "rb") as f:
        data = f.read()
    at, packets, total = 0, 0, 0
    while at + 12 <= len(data):
        kind, length = struct.unpack("<II", data[at:at + 8])
        if kind == 6:
            packets += 1
            total += struct.unpack("<I", data[at + 24:at + 28])[0]
        at += length
    return packets, total


def address(text):
    return bytes(int(part) for part in text.split("."))


def check_evidence(ctl, demo, work, alerts):
    sock = os.path.join(work, "control.sock")
    picked = {}
    for record in alerts:
        if record["exfil"]["class"] == "payment_card" and len(picked) < 2:
            picked[record["flow_id"]] = tuple(sorted([
                (address(record["src_ip"]), record["src_port"]),
                (address(record["dest_ip"]), record["dest_port"])]))
    assert len(picked) == 2, picked
    ids = ",".join(str(i) for i in picked)

    reply = subprocess.run([ctl, "--socket", sock, "--json", "evidence", ids, "--id", "live-test"],
                           capture_output=True, text=True, timeout=20)
    assert reply.returncode == 0, reply.stdout + reply.stderr
    message = json.loads(reply.stdout)["message"]
    path = message["path"]
    assert path.startswith(os.path.join(work, "state", "evidence", "evidence-")), path
    assert sorted(message["flow_ids"]) == sorted(picked), message
    assert rt.wait_for(lambda: os.path.exists(path), timeout=20), "no file " + path
    assert (os.stat(path).st_mode & 0o777) == 0o640, oct(os.stat(path).st_mode)

    flows = capture_flows(demo)
    want_packets = sum(flows[key][0] for key in picked.values())
    want_bytes = sum(flows[key][1] for key in picked.values())
    got = pcapng_packets(path)
    assert got == (want_packets, want_bytes), (got, want_packets, want_bytes)
    if shutil.which("tshark"):
        shown = subprocess.run(["tshark", "-r", path], capture_output=True, text=True,
                               timeout=60)
        assert shown.returncode == 0, shown.stderr
        assert len(shown.stdout.splitlines()) == want_packets, shown.stdout
    else:
        print("# tshark not installed: file not opened with it (scripts/setup.sh)")

    bad = subprocess.run([ctl, "--socket", sock, "evidence", "12,x"], capture_output=True,
                         text=True, timeout=20)
    assert bad.returncode != 0, bad.stdout
    stats = json.loads(subprocess.run([ctl, "--socket", sock, "--json", "stats"],
                                      capture_output=True, text=True,
                                      timeout=20).stdout)["message"]["evidence"]
    assert stats["files_written"] == 1 and stats["packets_written"] == want_packets, stats
    check_reload(ctl, work, ids, want_packets)


def check_reload(ctl, work, ids, want_packets):
    """A reload moves the evidence folder at once; a new recorder size waits for a restart
    (the log says so) and the recorders keep what they hold."""
    sock = os.path.join(work, "control.sock")
    config = os.path.join(work, "exfiltap.yaml")
    moved = os.path.join(work, "moved")
    with open(config) as f:
        text = f.read()
    with open(config, "w") as f:
        f.write(text.replace(EVIDENCE, "  evidence: {enabled: true, recorder_bytes: 8 MiB, "
                             f"dir: {moved}, max_files: 5}}"))
    reload = subprocess.run([ctl, "--socket", sock, "reload"], capture_output=True, text=True,
                            timeout=20)
    assert reload.returncode == 0, reload.stdout + reload.stderr
    reply = subprocess.run([ctl, "--socket", sock, "--json", "evidence", ids], capture_output=True,
                           text=True, timeout=20)
    assert reply.returncode == 0, reply.stdout + reply.stderr
    path = json.loads(reply.stdout)["message"]["path"]
    assert path.startswith(moved + "/evidence-"), path
    assert rt.wait_for(lambda: os.path.exists(path), timeout=20), "no file " + path
    assert pcapng_packets(path)[0] == want_packets, pcapng_packets(path)
    with open(os.path.join(work, "daemon.log")) as f:
        log = f.read()
    assert "the evidence recorders (enabled, recorder_bytes, snap_bytes) need a restart" in log, \
        log[-2000:]


def main():
    exfiltap, ctl, demo = sys.argv[1:4]
    print("1..1", flush=True)
    work = tempfile.mkdtemp(prefix="exft-evidence-")
    outputs = EVIDENCE
    try:
        ok = siem.run_daemon(exfiltap, ctl, demo, work, outputs,
                             lambda alerts, metric: check_evidence(ctl, demo, work, alerts))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(("ok" if ok else "not ok") + " 1 exfiltapctl_evidence_writes_the_flows_packets",
          flush=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
