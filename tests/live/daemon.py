"""exfiltap as a live daemon for the live tests and scripts/lab: its files in one work folder,
started and stopped by PID, driven through exfiltapctl, read through its alerts file and a
real HTTP scrape of /metrics."""
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.request


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def end_process(proc, timeout=30):
    """SIGTERM to a process this test started, SIGKILL after `timeout` s; its exit code."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    return proc.returncode


def run_one_tap_test(exfiltap, name, config_text, check):
    """One TAP test against a daemon of its own in a fresh work folder: `config_text(work,
    sock, alerts, port)` gives its config, `check(sock, alerts, port)` raises on failure.
    The daemon is stopped by PID and the folder removed; prints the TAP lines, returns the
    exit code."""
    print("1..1", flush=True)
    work = tempfile.mkdtemp(prefix="exft-" + name[:16] + "-")
    port = free_port()
    sock = os.path.join(work, "control.sock")
    alerts = os.path.join(work, "alerts.json")
    config = os.path.join(work, "exfiltap.yaml")
    with open(config, "w") as f:
        f.write(config_text(work, sock, alerts, port))
    log = open(os.path.join(work, "daemon.log"), "w")
    proc = subprocess.Popen([exfiltap, "--", "--config", config], stdout=log,
                            stderr=subprocess.STDOUT)
    ok = False
    try:
        check(sock, alerts, port)
        ok = True
    except Exception as error:  # noqa: BLE001
        print(f"# {error}")
        with open(os.path.join(work, "daemon.log")) as f:
            for line in f.read().splitlines()[-15:]:
                print("# daemon: " + line)
    finally:
        rc = end_process(proc)
        log.close()
        if rc != 0:
            print(f"# exit code {rc}")
            ok = False
        shutil.rmtree(work, ignore_errors=True)
    print(("ok" if ok else "not ok") + " 1 " + name, flush=True)
    return 0 if ok else 1


def wait_for(predicate, timeout=10, step=0.2):
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(step)
    return predicate()


def metric_value(text, name, labels=None):
    """The sum of a metric's samples whose labels include `labels`; None when absent."""
    total = 0.0
    found = False
    for line in text.splitlines():
        if not line.startswith(name):
            continue
        head, _, value = line.rpartition(" ")
        if head != name and not head.startswith(name + "{"):
            continue
        if labels and not all(f'{k}="{v}"' in head for k, v in labels.items()):
            continue
        total += float(value)
        found = True
    return total if found else None


class Daemon:
    """Paths are fixed at construction; write_config() takes the YAML, which names them."""

    def __init__(self, binary, ctl, workdir):
        self.binary = binary
        self.ctl = ctl
        self.dir = workdir
        self.socket = os.path.join(workdir, "control.sock")
        self.alerts = os.path.join(workdir, "alerts.json")
        self.state = os.path.join(workdir, "state")
        self.metrics_port = free_port()
        self.log_path = os.path.join(workdir, "daemon.log")
        self.config = os.path.join(workdir, "exfiltap.yaml")
        self.proc = None
        self.log = None

    def write_config(self, text):
        with open(self.config, "w") as f:
            f.write(text)

    def start(self, timeout=60):
        self.log = open(self.log_path, "a")
        offset = len(self.log_text())
        self.proc = subprocess.Popen([self.binary, "--", "--config", self.config],
                                     stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"exfiltap exited with {self.proc.returncode}:\n" + self.log_text())
            if "ready:" in self.log_text()[offset:]:
                return
            time.sleep(0.2)
        raise RuntimeError("exfiltap not ready in time:\n" + self.log_text())

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def log_text(self):
        try:
            with open(self.log_path) as f:
                return f.read()
        except OSError:
            return ""

    def signal(self, sig):
        self.proc.send_signal(sig)

    def rss_kib(self):
        with open(f"/proc/{self.proc.pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        return 0

    def stop(self):
        if self.proc is None:
            return None
        rc = end_process(self.proc)
        self.log.close()
        self.proc = None
        return rc

    def ctl_run(self, *args, json_out=True, timeout=20):
        cmd = [self.ctl, "--socket", self.socket] + (["--json"] if json_out else []) + list(args)
        return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)

    def ctl_json(self, *args):
        result = self.ctl_run(*args)
        if result.returncode != 0:
            raise AssertionError(f"exfiltapctl {' '.join(args)}: rc {result.returncode}: "
                                 f"{result.stdout} {result.stderr}")
        return json.loads(result.stdout)

    def alerts_list(self):
        try:
            with open(self.alerts) as f:
                return [json.loads(line) for line in f if line.strip()]
        except OSError:
            return []

    def metrics(self):
        url = f"http://127.0.0.1:{self.metrics_port}/metrics"
        with urllib.request.urlopen(url, timeout=5) as r:
            return r.read().decode()

    def metric(self, name, labels=None):
        return metric_value(self.metrics(), name, labels)
