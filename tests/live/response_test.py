#!/usr/bin/env python3
"""Live response tests: exfiltap runs inline between two network namespaces (lab.py) on two
net_af_packet ports, and the tests act through exfiltapctl and read the daemon's outputs.

Usage: response_test.py EXFILTAP EXFILTAPCTL    (root; prints TAP)

Each test asserts on what the client saw, the alerts file, exfiltapctl's replies and the
metrics. The lab and every process the tests start are removed at the end, by PID.
"""
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import traceback
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import daemon as daemonmod  # noqa: E402
import lab as labmod  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
PEER = os.path.join(HERE, "peer.py")
PYTHON = shutil.which("python3") or "/usr/bin/python3"
SERVER_PORT = 8080
SERVER_PORT2 = 8081

# Card numbers that pass Luhn and IIN checks (issuer test ranges are rejected by default,
# so these are generated, not published test numbers).
CARDS = ["4556737586899855", "5425233430109903", "4716108999716531", "4929584730273834",
         "5191230192006127", "4485275742308327"]


class Daemon(daemonmod.Daemon):
    def __init__(self, binary, ctl, lab, workdir, extra_config=""):
        super().__init__(binary, ctl, workdir)
        self.lab = lab
        self.write_config(f"""
dpdk:
  memory_mb: 640
{lab.ports_yaml()}networks:
  internal: ["{labmod.INTERNAL_NET}"]
content:
  custom:
    - name: reset_marker
      keywords: ["EXFILTAP-RESET-MARKER"]
      severity: high
outputs:
  alerts_file: {self.alerts}
  alert_suppression_s: 0
state_dir: {self.state}
control:
  socket: {self.socket}
metrics:
  listen: "127.0.0.1:{self.metrics_port}"
response:
  default_ttl_s: 600
  block_table:
    exact_capacity: 4096
    prefix_capacity: 256
  policies:
    - name: reset-marker
      detector: content
      class: reset_marker
      action: drop-flow
      reset: true
    - name: cards-out
      detector: content
      class: payment_card
      action: block-remote
      ttl_s: 600
{extra_config}
""")


metric_value = daemonmod.metric_value
wait_for = daemonmod.wait_for
free_port = daemonmod.free_port


class Server:
    """The outside TCP server (peer.py) in the outside namespace."""

    def __init__(self, lab, port):
        self.proc = lab.popen_in(lab.ns_out, PYTHON, PEER, "server", str(port), "--lifetime", "300")
        line = self.proc.stdout.readline()
        if "listening" not in line:
            raise RuntimeError("server did not start: " + line + self.proc.stderr.read())

    def stop(self):
        labmod.end_process(self.proc, grace_s=5)


def client(lab, port, *args, timeout=3):
    out = lab.exec_in(lab.ns_in, PYTHON, PEER, "client", labmod.OUTSIDE_IP, str(port),
                      "--timeout", str(timeout), *args, check=False, timeout=120).stdout
    return json.loads(out.strip().splitlines()[-1])


def entry_for(daemon, address, kind="block"):
    for entry in daemon.ctl_json("list", "--kind", kind)["message"]:
        if entry["address"] == address:
            return entry
    return None


# ---------------------------------------------------------------------------------------
# Tests. Each takes the shared context and raises AssertionError on failure.

def test_forwards_tcp(ctx):
    reply = client(ctx.lab, SERVER_PORT, "--size", "20000")
    assert reply["connected"], reply
    assert reply["reply"] == "got 20000", reply


def test_operator_block_drops_and_counts(ctx):
    d = ctx.daemon
    out = d.ctl_json("block", labmod.OUTSIDE_IP, "--reason", "test block", "--ttl", "300")
    assert out["return"] == "OK", out
    entry = entry_for(d, labmod.OUTSIDE_IP)
    assert entry is not None and entry["source"] == "operator", entry
    assert entry["reason"] == "test block", entry
    reply = client(ctx.lab, SERVER_PORT, "--size", "1000", timeout=2)
    assert not reply["connected"], f"connected through a block: {reply}"
    entry = entry_for(d, labmod.OUTSIDE_IP)
    assert entry["hits"] >= 1, entry
    metrics = d.metrics()
    dropped = metric_value(metrics, "exfiltap_dropped_packets_total", {"reason": "blocked"})
    assert dropped is not None and dropped >= 1, dropped
    hits = metric_value(metrics, "exfiltap_blocklist_hits_total", {"kind": "exact"})
    assert hits is not None and hits >= 1, hits


def test_unblock_restores(ctx):
    d = ctx.daemon
    out = d.ctl_json("unblock", labmod.OUTSIDE_IP)
    assert out["return"] == "OK", out
    assert entry_for(d, labmod.OUTSIDE_IP) is None
    reply = client(ctx.lab, SERVER_PORT, "--size", "5000")
    assert reply["reply"] == "got 5000", reply


def test_bad_commands_get_errors(ctx):
    d = ctx.daemon
    r = d.ctl_run("block", "198.51.100.300")
    assert r.returncode in (1, 2), (r.returncode, r.stdout, r.stderr)
    r = d.ctl_run("unblock", "203.0.113.77")
    assert r.returncode == 1, (r.returncode, r.stdout, r.stderr)
    # A raw malformed line straight to the socket: an error reply, the daemon stays up.
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(5)
        s.connect(d.socket)
        s.sendall(b"{not json\n")
        reply = json.loads(s.makefile().readline())
        assert reply["return"] == "NOK", reply
    assert d.ctl_json("version")["return"] == "OK"
    # One command must not switch a link, or all blocking, off.
    for wide in ("block", "0.0.0.0/0"), ("allow", "0.0.0.0/0"), ("block", "::/0"), \
            ("block", "::ffff:203.0.113.9"):
        r = d.ctl_run(*wide)
        assert r.returncode == 1 and "refused" in r.stdout + r.stderr, (wide, r.stdout, r.stderr)
    # Found by trying to break it: a number too large for the parser left the connection dead.
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(5)
        s.connect(d.socket)
        s.sendall(b'{"command":"version","x":1e400}\n{"command":"version"}\n')
        f = s.makefile()
        assert json.loads(f.readline())["return"] == "NOK"
        assert json.loads(f.readline())["return"] == "OK"


def test_reload_reports_a_refused_config(ctx):
    d = ctx.daemon
    with open(d.config) as f:
        good = f.read()
    try:
        with open(d.config, "w") as f:
            f.write(good.replace("action: block-remote", "action: explode"))
        r = d.ctl_run("reload")
        assert r.returncode == 1 and "explode" in r.stdout + r.stderr, (r.stdout, r.stderr)
    finally:
        with open(d.config, "w") as f:
            f.write(good)
    assert d.ctl_json("reload")["return"] == "OK"
    reply = client(ctx.lab, SERVER_PORT, "--size", "1000")
    assert reply["reply"] == "got 1000", reply


def test_allowlist_wins(ctx):
    d = ctx.daemon
    out = d.ctl_json("allow", labmod.OUTSIDE_IP, "--reason", "partner")
    assert out["return"] == "OK", out
    r = d.ctl_run("block", labmod.OUTSIDE_IP)
    assert r.returncode == 1, (r.stdout, r.stderr)
    assert "allow" in (r.stdout + r.stderr).lower(), r.stdout
    reply = client(ctx.lab, SERVER_PORT, "--size", "3000")
    assert reply["reply"] == "got 3000", reply
    assert d.ctl_json("unallow", labmod.OUTSIDE_IP)["return"] == "OK"


def test_detector_verdict_drops_upload_and_blocks_peer(ctx):
    d = ctx.daemon
    before = len(d.alerts_list())
    body = ("POST /upload HTTP/1.1\r\nHost: files.example\r\n\r\n"
            + "".join(f"customer {i}: card {c} exp 12/29\n" for i, c in enumerate(CARDS))
            + "x" * 60000).encode()
    path = os.path.join(ctx.workdir, "upload.txt")
    with open(path, "wb") as f:
        f.write(body)
    reply = client(ctx.lab, SERVER_PORT, "--file", path, "--chunk", "1400", "--pause", "0.002",
                   timeout=4)
    assert reply["connected"], reply
    assert reply["reply"] != f"got {len(body)}", f"the whole upload went through: {reply}"
    alerts = wait_for(lambda: [a for a in d.alerts_list()[before:]
                               if a["exfil"]["class"] == "payment_card"])
    assert alerts, "no payment_card alert"
    first = alerts[0]
    assert first["alert"]["action"] == "blocked", first
    assert first["dest_ip"] == labmod.OUTSIDE_IP, first
    assert "blocked " + labmod.OUTSIDE_IP in first["exfil"].get("response", ""), first
    for a in alerts:
        assert a["exfil"]["sample"].startswith("*"), a  # last four only
    entry = entry_for(d, labmod.OUTSIDE_IP)
    assert entry is not None and entry["source"] == "detector", entry
    reply = client(ctx.lab, SERVER_PORT2, "--size", "100", timeout=2)
    assert not reply["connected"], f"a new connection went through: {reply}"


def test_drop_flow_with_reset_resets_both_ends(ctx):
    d = ctx.daemon
    body = b"header\n" + b"EXFILTAP-RESET-MARKER\n" + b"y" * 40000
    path = os.path.join(ctx.workdir, "marker.txt")
    with open(path, "wb") as f:
        f.write(body)
    reply = client(ctx.lab, SERVER_PORT2, "--file", path, "--chunk", "1400", "--pause", "0.002",
                   timeout=4)
    assert reply["connected"], reply
    # The client learns at once that the connection is gone, instead of stalling.
    error = reply.get("error", "").lower()
    assert "reset" in error or "broken pipe" in error, (reply, d.ctl_json("stats")["message"])
    stats = d.ctl_json("stats")["message"]
    assert stats["resets_sent"] >= 2 and stats["flow_verdicts"] >= 1, stats
    alerts = wait_for(lambda: [a for a in d.alerts_list() if a["exfil"]["class"] == "custom"])
    assert alerts and alerts[0]["alert"]["action"] == "blocked", alerts
    metrics = d.metrics()
    dropped = metric_value(metrics, "exfiltap_dropped_packets_total", {"reason": "flow_verdict"})
    assert dropped and dropped >= 1, dropped
    # drop-flow blocks no address: the next connection goes through.
    reply = client(ctx.lab, SERVER_PORT2, "--size", "100")
    assert reply["reply"] == "got 100", reply


def test_block_list_survives_restart(ctx):
    d = ctx.daemon
    assert d.ctl_json("block", "198.51.100.201", "--reason", "kept")["return"] == "OK"
    rc = d.stop()
    assert rc == 0, f"exit code {rc}: {d.log_text()[-2000:]}"
    d.start()
    entry = entry_for(d, "198.51.100.201")
    assert entry is not None and entry["reason"] == "kept", entry
    peer = entry_for(d, labmod.OUTSIDE_IP)
    assert peer is not None and peer["source"] == "detector", peer
    reply = client(ctx.lab, SERVER_PORT, "--size", "100", timeout=2)
    assert not reply["connected"], reply
    assert d.ctl_json("unblock", labmod.OUTSIDE_IP)["return"] == "OK"
    reply = client(ctx.lab, SERVER_PORT, "--size", "100")
    assert reply["reply"] == "got 100", reply


def test_prometheus_scrapes_daemon(ctx):
    prom = shutil.which("prometheus")
    if prom is None:
        if os.environ.get("EXFILTAP_REQUIRE_SHARED") == "1":
            raise AssertionError("prometheus is not installed")
        return "SKIP prometheus not installed (apt-get install prometheus)"
    d = ctx.daemon
    port = free_port()
    pdir = tempfile.mkdtemp(prefix="exft-prom-")
    with open(os.path.join(pdir, "prometheus.yml"), "w") as f:
        f.write(f"""global:
  scrape_interval: 1s
scrape_configs:
  - job_name: exfiltap
    static_configs:
      - targets: ["127.0.0.1:{d.metrics_port}"]
""")
    proc = subprocess.Popen([prom, f"--config.file={pdir}/prometheus.yml",
                             f"--storage.tsdb.path={pdir}/data",
                             f"--web.listen-address=127.0.0.1:{port}"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        def query():
            url = f"http://127.0.0.1:{port}/api/v1/query?query=sum(exfiltap_packets_total)"
            try:
                with urllib.request.urlopen(url, timeout=2) as r:
                    data = json.loads(r.read())
                result = data["data"]["result"]
                return float(result[0]["value"][1]) if result else None
            except (OSError, ValueError, KeyError):
                return None

        first = wait_for(query, timeout=30)
        assert first is not None, "prometheus never scraped exfiltap"
        client(ctx.lab, SERVER_PORT, "--size", "50000")
        grown = wait_for(lambda: (query() or 0) > first and query(), timeout=20)
        assert grown and grown > first, (first, grown)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        shutil.rmtree(pdir, ignore_errors=True)


def test_sigterm_drains_and_exits_zero(ctx):
    rc = ctx.daemon.stop()
    assert rc == 0, f"exit code {rc}"
    assert not os.path.exists(ctx.daemon.socket), "control socket left behind"


TESTS = [test_forwards_tcp, test_operator_block_drops_and_counts, test_unblock_restores,
         test_bad_commands_get_errors, test_reload_reports_a_refused_config, test_allowlist_wins,
         test_detector_verdict_drops_upload_and_blocks_peer, test_block_list_survives_restart,
         test_drop_flow_with_reset_resets_both_ends,
         test_prometheus_scrapes_daemon, test_sigterm_drains_and_exits_zero]


class Context:
    pass


def main():
    print(f"1..{len(TESTS)}", flush=True)
    if os.geteuid() != 0:
        for i, t in enumerate(TESTS, 1):
            print(f"ok {i} {t.__name__} # SKIP needs root (network namespaces)")
        return 0
    for tool in ("ip", "ethtool"):
        if shutil.which(tool) is None:
            for i, t in enumerate(TESTS, 1):
                print(f"not ok {i} {t.__name__} # {tool} not installed")
            return 1
    ctx = Context()
    ctx.workdir = tempfile.mkdtemp(prefix="exft-live-")
    ctx.lab = labmod.Lab()
    servers = []
    failed = 0
    try:
        ctx.lab.up()
        ctx.daemon = Daemon(sys.argv[1], sys.argv[2], ctx.lab, ctx.workdir)
        ctx.daemon.start()
        servers = [Server(ctx.lab, SERVER_PORT), Server(ctx.lab, SERVER_PORT2)]
        for i, test in enumerate(TESTS, 1):
            started = time.time()
            try:
                outcome = test(ctx)
                if isinstance(outcome, str) and outcome.startswith("SKIP"):
                    print(f"ok {i} {test.__name__} # {outcome}", flush=True)
                else:
                    print(f"ok {i} {test.__name__} ({time.time() - started:.1f} s)", flush=True)
            except Exception:  # noqa: BLE001 - every failure is reported as TAP
                failed += 1
                print(f"not ok {i} {test.__name__}", flush=True)
                for line in traceback.format_exc().splitlines():
                    print("# " + line, flush=True)
                for line in ctx.daemon.log_text().splitlines()[-15:]:
                    print("# daemon: " + line, flush=True)
    except Exception:  # noqa: BLE001
        for line in traceback.format_exc().splitlines():
            print("# " + line, flush=True)
        print("Bail out! lab or daemon did not start", flush=True)
        failed += 1
    finally:
        for server in servers:
            server.stop()
        if getattr(ctx, "daemon", None) is not None:
            ctx.daemon.stop()
        ctx.lab.close()
        shutil.rmtree(ctx.workdir, ignore_errors=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
