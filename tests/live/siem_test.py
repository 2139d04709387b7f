#!/usr/bin/env python3
"""SIEM outputs of the live daemon: a passive port fed by the demo capture (net_pcap
rx_pcap), syslog over TCP to a receiver of this test (RFC 6587 octet counting) and Redis
(a redis-server this test starts on 127.0.0.1, ended by PID). Then the same with a syslog
receiver that accepts and never reads and no Redis at all: the daemon sees every packet and
writes every alert, and /metrics counts what the outputs could not send.

Usage: siem_test.py EXFILTAP EXFILTAPCTL DEMO.pcap    (prints TAP)
"""
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import daemon as daemonmod  # noqa: E402
import response_test as rt  # noqa: E402

HEADER = re.compile(r"<17[0-7]>1 \d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z \S+ exfiltap \d+ alert - ")


class Receiver:
    """TCP syslog receiver on 127.0.0.1; `stalled` accepts and never reads."""

    def __init__(self, stalled=False):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.stalled = stalled
        self.messages = []
        self.bad = 0
        self.held = []
        self.stop = False
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self):
        self.sock.settimeout(0.2)
        while not self.stop:
            try:
                conn, _ = self.sock.accept()
            except socket.timeout:
                continue
            if self.stalled:
                self.held.append(conn)
                continue
            threading.Thread(target=self.read, args=(conn,), daemon=True).start()

    def read(self, conn):
        data = b""
        while True:
            chunk = conn.recv(65536)
            if not chunk:
                return
            data += chunk
            while b" " in data:
                head, _, rest = data.partition(b" ")
                if not head.isdigit():
                    self.bad += 1
                    data = b""
                    break
                n = int(head)
                if len(rest) < n:
                    break
                self.messages.append(rest[:n].decode())
                data = rest[n:]

    def close(self):
        self.stop = True
        self.thread.join()
        for c in self.held:
            c.close()
        self.sock.close()


def start_redis(work):
    port = rt.free_port()
    proc = subprocess.Popen(["redis-server", "--port", str(port), "--bind", "127.0.0.1",
                             "--save", "", "--appendonly", "no", "--dir", work,
                             "--logfile", os.path.join(work, "redis.log")])
    up = rt.wait_for(lambda: subprocess.run(["redis-cli", "-p", str(port), "ping"],
                                            capture_output=True, text=True).stdout.strip()
                     == "PONG", timeout=10)
    assert up, "redis-server did not start"
    return proc, port


def redis_list(port, key):
    out = subprocess.run(["redis-cli", "-p", str(port), "--raw", "lrange", key, "0", "-1"],
                         capture_output=True, text=True, timeout=10).stdout
    return [json.loads(line) for line in out.splitlines() if line.strip()]


def run_daemon(exfiltap, ctl, demo, work, outputs, check, after=None):
    port = rt.free_port()
    sock = os.path.join(work, "control.sock")
    alerts = os.path.join(work, "alerts.json")
    config = os.path.join(work, "exfiltap.yaml")
    with open(config, "w") as f:
        f.write(f"""dpdk: {{memory_mb: 512}}
ports:
  mode: passive
  passive: ["net_pcap0,rx_pcap={demo}"]
  mbufs: 4095
outputs:
  alerts_file: {alerts}
  alert_suppression_s: 0
{outputs}
state_dir: {work}/state
control: {{socket: {sock}}}
metrics: {{listen: "127.0.0.1:{port}"}}
response: {{block_table: {{exact_capacity: 1024, prefix_capacity: 64}}}}
""")
    log_path = os.path.join(work, "daemon.log")
    log = open(log_path, "w")
    proc = subprocess.Popen([exfiltap, "--", "--config", config], stdout=log,
                            stderr=subprocess.STDOUT)
    ok = False
    try:
        def stats():
            try:
                out = subprocess.run([ctl, "--socket", sock, "--json", "stats"],
                                     capture_output=True, text=True, timeout=20).stdout
                return json.loads(out)["message"]
            except (ValueError, KeyError, subprocess.TimeoutExpired):
                return None

        def alert_lines():
            try:
                with open(alerts) as f:
                    return [json.loads(line) for line in f]
            except OSError:
                return []

        # Every packet read and the alerts settled (no new one for a second).
        assert rt.wait_for(lambda: (stats() or {}).get("packets_rx") == 263, timeout=60), \
            stats()
        seen = []

        def settled():
            seen.append(len(alert_lines()))
            return len(seen) > 5 and seen[-1] == seen[-6] and seen[-1] > 0
        assert rt.wait_for(settled, timeout=30), seen

        def metric(name, labels):
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
                return rt.metric_value(r.read().decode(), name, labels)
        check(alert_lines(), metric)
        ok = True
    except Exception as error:  # noqa: BLE001
        print(f"# {error!r}")
        with open(log_path) as f:
            for line in f.read().splitlines()[-15:]:
                print("# daemon: " + line)
    finally:
        rc = daemonmod.end_process(proc)
        log.close()
        if rc != 0:
            print(f"# exit code {rc}")
            ok = False
    if ok and after is not None:
        with open(log_path) as f:
            text = f.read()
        try:
            after(text)
        except AssertionError as error:
            print(f"# {error!r}")
            for line in text.splitlines()[-15:]:
                print("# daemon: " + line)
            ok = False
    return ok


def without_hmac(records):
    return [{**r, "exfil": {k: v for k, v in r["exfil"].items() if k != "sample_hmac"}}
            for r in records]


def test_delivered(exfiltap, ctl, demo):
    work = tempfile.mkdtemp(prefix="exft-siem-")
    receiver = Receiver()
    redis, redis_port = start_redis(work)
    try:
        outputs = f"""  syslog: {{enabled: true, transport: tcp, address: "127.0.0.1:{receiver.port}",
            facility: local5, format: json}}
  redis: {{enabled: true, address: "127.0.0.1:{redis_port}", mode: list, key: exft}}"""

        def check(alerts, metric):
            assert rt.wait_for(lambda: len(receiver.messages) >= len(alerts), 10), \
                (len(receiver.messages), len(alerts))
            got = []
            for m in receiver.messages:
                head = HEADER.match(m)
                assert head, m
                got.append(json.loads(m[head.end():]))
            assert got == alerts, (got, alerts)
            assert receiver.bad == 0
            assert rt.wait_for(lambda: len(redis_list(redis_port, "exft")) == len(alerts), 10)
            assert redis_list(redis_port, "exft") == alerts
            for a in alerts:
                sample = a["exfil"].get("sample", "")
                assert sample == "" or set(sample[:-4]) == {"*"}, sample
            for name in ("syslog", "redis"):
                value = metric("exfiltap_output_dropped_records_total", {"output": name})
                assert value == 0, (name, value)
        return run_daemon(exfiltap, ctl, demo, work, outputs, check)
    finally:
        receiver.close()
        daemonmod.end_process(redis)
        shutil.rmtree(work, ignore_errors=True)


def test_stalled_and_absent(exfiltap, ctl, demo):
    work = tempfile.mkdtemp(prefix="exft-siem-")
    stalled = Receiver(stalled=True)
    try:
        outputs = f"""  syslog: {{enabled: true, transport: tcp, address: "127.0.0.1:{stalled.port}",
            queue_records: 1}}
  redis: {{enabled: true, address: "127.0.0.1:{rt.free_port()}", queue_records: 1}}"""
        count = []

        def check(alerts, metric):
            # No Redis: the first record waits in the queue of one while the output retries;
            # every later one is dropped and counted at once.
            count.append(len(alerts))
            lost = metric("exfiltap_output_dropped_records_total", {"output": "redis"})
            assert lost == len(alerts) - 1, (lost, len(alerts))
            assert stalled.held, "the stalled receiver was never connected to"
            syslog_lost = metric("exfiltap_output_dropped_records_total", {"output": "syslog"})
            assert syslog_lost is not None, "no syslog row in output_drops"

        def after(log):
            # At the stop the waiting record is counted too: every alert accounted for.
            n = count[0]
            want = f"redis output: 0 records sent, {n - 1} dropped (queue full), 1 not sent"
            assert want in log, want
            assert re.search(r"syslog output: \d+ records sent, \d+ dropped", log)
        return run_daemon(exfiltap, ctl, demo, work, outputs, check, after)
    finally:
        stalled.close()
        shutil.rmtree(work, ignore_errors=True)


def main():
    exfiltap, ctl, demo = sys.argv[1:4]
    tests = [("siem_outputs_deliver_every_alert", test_delivered),
             ("stalled_and_absent_siem_cost_nothing_but_counted_drops", test_stalled_and_absent)]
    print(f"1..{len(tests)}", flush=True)
    failed = 0
    for i, (name, fn) in enumerate(tests, 1):
        try:
            ok = fn(exfiltap, ctl, demo)
        except Exception as error:  # noqa: BLE001
            print(f"# {error!r}")
            ok = False
        failed += 0 if ok else 1
        print(("ok" if ok else "not ok") + f" {i} {name}", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
