"""The lab's real servers and clients, all from Debian packages, started on demand in the
lab's namespaces and ended by PID.

Servers: an upload web server over HTTP and HTTPS (python3, a self-signed certificate made by
openssl), FTP (python3-pyftpdlib), SMTP (python3-aiosmtpd), SMB2 (samba's smbd, in inside2),
SSH (openssh-server), a DNS tunnel end (iodined) and an ordinary DNS server (dnsmasq), the
last four in outside unless said otherwise.
"""
import os
import shutil
import signal
import subprocess
import time

import lab as labmod

SYS_PYTHON = "/usr/bin/python3"  # Debian's, which has the packages' modules
HERE = os.path.dirname(os.path.abspath(__file__))
UPLOAD_SERVER = os.path.join(HERE, "upload_server.py")
TLS_NAME = "upload.lab.example"
TUNNEL_DOMAIN = "t.lab.example"
TUNNEL_PASSWORD = "exfiltap-lab"
FTP_USER, FTP_PASSWORD = "lab", "labpass"

# Debian packages: the lab's servers and clients, and the tools it runs.
PACKAGES = ["iproute2", "ethtool", "procps", "curl", "openssl", "python3", "python3-pyftpdlib",
            "python3-aiosmtpd", "samba", "smbclient", "openssh-server", "openssh-client",
            "iodine", "dnsmasq-base", "bind9-dnsutils", "iputils-ping", "prometheus"]


def missing_packages():
    missing = []
    for p in PACKAGES:
        out = subprocess.run(["dpkg-query", "-W", "-f=${Status}", p], capture_output=True,
                             text=True).stdout
        if "install ok installed" not in out:
            missing.append(p)
    return missing


def install_packages():
    missing = missing_packages()
    if not missing:
        return
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    subprocess.run(["apt-get", "update", "-qq"], check=False, env=env)
    subprocess.run(["apt-get", "install", "-y", "-qq", "--no-install-recommends", *missing],
                   check=True, env=env, stdout=subprocess.DEVNULL)


def port_open(lab, ns, address, port):
    probe = f"import socket; socket.create_connection(('{address}', {port}), 1).close()"
    return subprocess.run(["ip", "netns", "exec", ns, SYS_PYTHON, "-c", probe],
                          capture_output=True).returncode == 0


STARTED = []  # every service's PID, for the check that none outlives the lab


class Service:
    """One server process in a namespace; its output goes to a log file of the work folder."""

    def __init__(self, lab, ns, name, args, workdir, ready=None, timeout=20):
        self.name = name
        self.log_path = os.path.join(workdir, f"{name}.log")
        self.log = open(self.log_path, "w")
        # A session of its own: smbd signals its whole process group when it stops, and
        # stop() ends the service's children with it.
        self.proc = lab.popen_in(ns, *args, stdout=self.log, stderr=subprocess.STDOUT,
                                 stdin=subprocess.DEVNULL, start_new_session=True)
        STARTED.append(self.proc.pid)
        try:
            deadline = time.time() + timeout
            while ready is not None and time.time() < deadline:
                if self.proc.poll() is not None:
                    raise RuntimeError(f"{name} exited with {self.proc.returncode}: "
                                       f"{self.output()}")
                if ready():
                    return
                time.sleep(0.2)
            if ready is not None:
                raise RuntimeError(f"{name} not ready in {timeout} s: {self.output()}")
        except BaseException:  # not ready, or interrupted while waiting: nothing is left
            self.stop()
            raise

    def output(self):
        try:
            with open(self.log_path, errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def stop(self):
        """Ends the service and every process of its group (all started by it)."""
        labmod.end_process(self.proc)
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)  # children left behind, if any
        except ProcessLookupError:
            pass
        self.log.close()


def make_certificate(workdir):
    cert = os.path.join(workdir, "tls.crt")
    key = os.path.join(workdir, "tls.key")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                    "-subj", f"/CN={TLS_NAME}", "-addext", f"subjectAltName=DNS:{TLS_NAME}",
                    "-keyout", key, "-out", cert], check=True, capture_output=True)
    return cert, key


def start_web(lab, workdir):
    cert, key = make_certificate(workdir)
    out = lab.ns_out
    ip = labmod.OUTSIDE_IP
    return [
        Service(lab, out, "http", [SYS_PYTHON, UPLOAD_SERVER, ip, "80"], workdir,
                ready=lambda: port_open(lab, out, ip, 80)),
        Service(lab, out, "https", [SYS_PYTHON, UPLOAD_SERVER, ip, "443", "--tls", cert, key],
                workdir, ready=lambda: port_open(lab, out, ip, 443)),
    ]


def start_ftp(lab, workdir):
    root = os.path.join(workdir, "ftp-root")
    os.makedirs(root, exist_ok=True)
    ip = labmod.OUTSIDE_IP
    return Service(lab, lab.ns_out, "ftp",
                   [SYS_PYTHON, "-m", "pyftpdlib", "-i", ip, "-p", "21", "-w", "-d", root,
                    "-u", FTP_USER, "-P", FTP_PASSWORD, "-r", "30000-30100"], workdir,
                   ready=lambda: port_open(lab, lab.ns_out, ip, 21))


def start_smtp(lab, workdir):
    ip = labmod.OUTSIDE_IP
    # The default handler prints each message it receives (to the service's log).
    return Service(lab, lab.ns_out, "smtp",
                   [SYS_PYTHON, "-m", "aiosmtpd", "-n", "-l", f"{ip}:25"], workdir,
                   ready=lambda: port_open(lab, lab.ns_out, ip, 25))


def start_smb(lab, workdir):
    """smbd in inside2: a workstation sharing a folder (the inventory gives it no file-server
    role)."""
    base = os.path.join(workdir, "samba")
    for sub in ("lock", "state", "cache", "pid", "private", "ncalrpc", "share"):
        os.makedirs(os.path.join(base, sub), exist_ok=True)
    os.chmod(os.path.join(base, "share"), 0o777)
    conf = os.path.join(base, "smb.conf")
    with open(conf, "w") as f:
        f.write(f"""[global]
workgroup = LAB
netbios name = INSIDE2
server role = standalone server
interfaces = {labmod.INSIDE2_IP}/24
bind interfaces only = yes
smb ports = 445
disable netbios = yes
lock directory = {base}/lock
state directory = {base}/state
cache directory = {base}/cache
pid directory = {base}/pid
private dir = {base}/private
ncalrpc dir = {base}/ncalrpc
log file = {base}/log.%m
map to guest = Bad User
guest account = nobody
server min protocol = SMB2_02
load printers = no
printing = bsd
printcap name = /dev/null
disable spoolss = yes
[drop]
path = {base}/share
read only = no
guest ok = yes
force user = root
""")
    ip = labmod.INSIDE2_IP
    service = Service(lab, lab.ns_in2, "smbd",
                      ["/usr/sbin/smbd", "--foreground", "--no-process-group", "--debug-stdout",
                       f"--configfile={conf}"], workdir,
                      ready=lambda: port_open(lab, lab.ns_in2, ip, 445), timeout=30)
    service.conf = conf
    service.share = os.path.join(base, "share")
    return service


def start_ssh(lab, workdir):
    base = os.path.join(workdir, "ssh")
    os.makedirs(base, exist_ok=True)
    host_key = os.path.join(base, "host_key")
    client_key = os.path.join(base, "client_key")
    for key in (host_key, client_key):
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", key], check=True)
    shutil.copy(client_key + ".pub", os.path.join(base, "authorized_keys"))
    conf = os.path.join(base, "sshd_config")
    with open(conf, "w") as f:
        f.write(f"""Port 22
ListenAddress {labmod.OUTSIDE_IP}
HostKey {host_key}
PidFile {base}/sshd.pid
AuthorizedKeysFile {base}/authorized_keys
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
""")
    os.makedirs("/run/sshd", mode=0o755, exist_ok=True)  # sshd's privilege separation folder
    ip = labmod.OUTSIDE_IP
    service = Service(lab, lab.ns_out, "sshd", ["/usr/sbin/sshd", "-D", "-e", "-f", conf],
                      workdir, ready=lambda: port_open(lab, lab.ns_out, ip, 22))
    service.client_key = client_key
    return service


def start_dns(lab, workdir):
    """dnsmasq answering lab.example names on the second outside address."""
    ip = labmod.OUTSIDE_DNS_IP
    return Service(lab, lab.ns_out, "dnsmasq",
                   ["/usr/sbin/dnsmasq", "--no-daemon", "--conf-file=/dev/null", "--no-resolv",
                    "--no-hosts", f"--listen-address={ip}", "--bind-interfaces",
                    "--user=root", f"--pid-file={workdir}/dnsmasq.pid",
                    f"--address=/www.lab.example/{labmod.OUTSIDE_IP}",
                    f"--address=/files.lab.example/{labmod.OUTSIDE_IP}"], workdir,
                   ready=lambda: "started" in open(os.path.join(workdir, "dnsmasq.log")).read())


def start_iodined(lab, workdir):
    ip = labmod.OUTSIDE_IP
    return Service(lab, lab.ns_out, "iodined",
                   ["/usr/sbin/iodined", "-f", "-c", "-l", ip, "-P", TUNNEL_PASSWORD,
                    "10.53.53.1/27", TUNNEL_DOMAIN], workdir,
                   ready=lambda: "Listening" in open(os.path.join(workdir, "iodined.log")).read())
