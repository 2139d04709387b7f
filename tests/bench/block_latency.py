#!/usr/bin/env python3
"""Benchmark (not a test): how soon after `exfiltapctl block` returns do packets of the
blocked address stop, while a worker is busy forwarding a UDP stream to it.

Usage (root): block_latency.py EXFILTAP EXFILTAPCTL [--rounds N]

The lab of tests/live (two namespaces, exfiltap inline on net_af_packet) carries a UDP
stream from inside to outside; each datagram holds its send time. Mid-stream the address is
blocked; the receiver reports the newest send time it still got. Printed per round: the
command's round trip, and the last delivered datagram's send time relative to the moment
the command returned (negative: the block was in force before the reply came back).
"""
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "live"))
import lab as labmod  # noqa: E402
import response_test as rt  # noqa: E402

RECEIVER = r"""
import json, socket, sys, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("0.0.0.0", 9999)); s.settimeout(0.5)
print("ready", flush=True)
last = 0.0; count = 0; quiet_since = None; deadline = time.time() + float(sys.argv[1])
while time.time() < deadline:
    try:
        data, _ = s.recvfrom(2048)
    except socket.timeout:
        continue
    count += 1
    last = max(last, float(data.split(b" ", 1)[0]))
print(json.dumps({"last_sent": last, "received": count}), flush=True)
"""

SENDER = r"""
import socket, sys, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
end = time.time() + float(sys.argv[2]); n = 0
while time.time() < end:
    for _ in range(64):
        s.sendto(b"%.6f %d " % (time.time(), n) + b"x" * 200, (sys.argv[1], 9999)); n += 1
print(n, flush=True)
"""


def main():
    rounds = int(sys.argv[sys.argv.index("--rounds") + 1]) if "--rounds" in sys.argv else 5
    if os.geteuid() != 0:
        print("block_latency: needs root (network namespaces)")
        return 1
    work = tempfile.mkdtemp(prefix="exft-blat-")
    lab = labmod.Lab(tag=f"bl{os.getpid() % 1000}")
    daemon = None
    results = []
    try:
        lab.up()
        daemon = rt.Daemon(sys.argv[1], sys.argv[2], lab, work)
        daemon.start()
        for r in range(rounds):
            recv = lab.popen_in(lab.ns_out, rt.PYTHON, "-c", RECEIVER, "6")
            assert recv.stdout.readline().strip() == "ready"
            send = lab.popen_in(lab.ns_in, rt.PYTHON, "-c", SENDER, labmod.OUTSIDE_IP, "4")
            time.sleep(1.5)  # the worker is busy with the stream
            t0 = time.time()
            out = daemon.ctl_run("block", labmod.OUTSIDE_IP, "--reason", "latency bench")
            t1 = time.time()
            assert out.returncode == 0, out.stdout + out.stderr
            sent = int(send.communicate(timeout=20)[0].strip() or 0)
            got = json.loads(recv.communicate(timeout=20)[0].strip().splitlines()[-1])
            daemon.ctl_run("unblock", labmod.OUTSIDE_IP)
            results.append({"round_trip_ms": (t1 - t0) * 1000,
                            "last_after_return_ms": (got["last_sent"] - t1) * 1000,
                            "sent": sent, "received": got["received"]})
            print(f"round {r + 1}: block round trip {results[-1]['round_trip_ms']:.2f} ms, "
                  f"last delivered datagram sent {results[-1]['last_after_return_ms']:+.2f} ms "
                  f"after the command returned ({got['received']} of {sent} datagrams arrived)",
                  flush=True)
        stats = daemon.ctl_json("stats")["message"]
        print(f"worker packets rx {stats['packets_rx']}, dropped as blocked {stats['dropped_blocked']}")
        rtts = [x["round_trip_ms"] for x in results]
        lasts = [x["last_after_return_ms"] for x in results]
        print(f"median: round trip {statistics.median(rtts):.2f} ms; last delivered "
              f"{statistics.median(lasts):+.2f} ms after return (max {max(lasts):+.2f} ms)")
    finally:
        if daemon is not None:
            daemon.stop()
        lab.close()
        subprocess.run(["rm", "-rf", work], check=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
