"""The inline lab on this machine: network namespaces joined through exfiltap.

Two layouts. "pair" (the response tests):

    [ns inside] veth --- root end  ==exfiltap (net_af_packet x2)==  root end --- veth [ns outside]

"full" (scripts/lab): the outside port leads to a switch namespace whose bridge joins the
outside host and a second internal host, so inside-to-inside2 traffic crosses exfiltap too:

    [inside] --- xti ==exfiltap== xto --- [switch: br0] --- [outside]  (.200, DNS on .201)
                                                       \--- [inside2] (.20)

The root-namespace ends carry no address, answer no ARP (arp_ignore=8) and run no IPv6, so
only the namespaces' own hosts answer; every offload is off on both ends of every veth (with
checksum offload on, TCP through an af_packet bridge stalls). Addresses come from TEST-NET-2
(198.51.100.0/24), checked against the host's own first. Everything is removed on close(),
whatever failed before.
"""
import os
import subprocess
import time

INSIDE_IP = "198.51.100.10"
INSIDE2_IP = "198.51.100.20"
OUTSIDE_IP = "198.51.100.200"
OUTSIDE_DNS_IP = "198.51.100.201"
PREFIX_LEN = 24
# The inside hosts are internal, the outside ones external (config networks).
INTERNAL_NET = "198.51.100.0/25"
OFFLOADS = ("rx", "tx", "tso", "gso", "gro", "sg", "lro", "rxvlan", "txvlan")


def run(*args, check=True, timeout=30):
    result = subprocess.run(list(args), capture_output=True, text=True, timeout=timeout)
    if check and result.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} failed ({result.returncode}): {result.stderr.strip()}")
    return result


def host_uses(prefix_start):
    out = run("ip", "-o", "addr", check=False).stdout
    return prefix_start in out


def end_process(proc, grace_s=10):
    """SIGTERM, then SIGKILL after the grace time; reaps it."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=grace_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def offloads_off(dev, ns=None):
    prefix = ["ip", "netns", "exec", ns] if ns else []
    for feature in OFFLOADS:  # one at a time: a device without one refuses the whole list
        run(*prefix, "ethtool", "-K", dev, feature, "off", check=False)


class Lab:
    """tag=None: names of this process (tests); names=dict: fixed names (scripts/lab)."""

    def __init__(self, tag=None, full=False, names=None):
        tag = tag or str(os.getpid() % 100000)
        self.tag = tag
        self.full = full
        names = names or {}
        self.ns_in = names.get("inside", f"exft-in-{tag}")
        self.ns_out = names.get("outside", f"exft-out-{tag}")
        self.ns_in2 = names.get("inside2", f"exft-in2-{tag}")
        self.ns_sw = names.get("switch", f"exft-sw-{tag}")
        # Interface names: at most 15 characters.
        self.root_in = f"xti{tag}"
        self.root_out = f"xto{tag}"
        self.peer_in = f"xpi{tag}"
        self.peer_out = f"xpo{tag}"
        self.created = []

    def namespaces(self):
        return [self.ns_in, self.ns_out] + ([self.ns_in2, self.ns_sw] if self.full else [])

    def up(self):
        if host_uses("198.51.100."):
            raise RuntimeError("the host already uses 198.51.100.0/24; the lab needs it")
        existing = run("ip", "netns", "list", check=False).stdout.split()
        clash = [ns for ns in self.namespaces() if ns in existing]
        if clash:
            raise RuntimeError(f"namespaces {', '.join(clash)} exist already (scripts/lab down "
                               "removes a lab left behind)")
        try:
            self._build()
        except BaseException:  # Ctrl-C or a signal during the build removes it too
            self.close()
            raise
        return self

    def _add_ns(self, ns):
        self.created.append(("netns", ns))  # first: an interrupt right after the add
        run("ip", "netns", "add", ns)           # must not leave it unrecorded
        run("ip", "-n", ns, "link", "set", "lo", "up")
        for key in ("all", "default"):  # absent where the kernel has no IPv6 at all
            run("ip", "netns", "exec", ns, "sysctl", "-qw", f"net.ipv6.conf.{key}.disable_ipv6=1",
                check=False)

    def _root_end(self, root, peer, ns):
        self.created.append(("link", root))
        run("ip", "link", "add", root, "type", "veth", "peer", "name", peer)
        run("ip", "link", "set", peer, "netns", ns)
        # Root end: no IPv6, no ARP answers, no address.
        run("sysctl", "-qw", f"net.ipv6.conf.{root}.disable_ipv6=1")
        run("sysctl", "-qw", f"net.ipv4.conf.{root}.arp_ignore=8")
        offloads_off(root)
        offloads_off(peer, ns)
        run("ip", "link", "set", root, "up")
        run("ip", "-n", ns, "link", "set", peer, "up")

    def _host(self, ns, dev, *addrs):
        for addr in addrs:
            run("ip", "-n", ns, "addr", "add", f"{addr}/{PREFIX_LEN}", "dev", dev)

    def _build(self):
        for ns in self.namespaces():
            self._add_ns(ns)
        self._root_end(self.root_in, self.peer_in, self.ns_in)
        self._host(self.ns_in, self.peer_in, INSIDE_IP)
        if not self.full:
            self._root_end(self.root_out, self.peer_out, self.ns_out)
            self._host(self.ns_out, self.peer_out, OUTSIDE_IP)
            return
        # The switch: a bridge without STP whose ports forward at once.
        self._root_end(self.root_out, self.peer_out, self.ns_sw)
        sw = ["ip", "-n", self.ns_sw]
        run(*sw, "link", "add", "br0", "type", "bridge", "stp_state", "0", "forward_delay", "0")
        run(*sw, "link", "set", self.peer_out, "master", "br0")
        for ns, dev, addrs in ((self.ns_out, "eth0", (OUTSIDE_IP, OUTSIDE_DNS_IP)),
                               (self.ns_in2, "eth0", (INSIDE2_IP,))):
            port = f"sw{'o' if ns == self.ns_out else 'i'}{self.tag}"[:15]
            run(*sw, "link", "add", port, "type", "veth", "peer", "name", dev, "netns", ns)
            offloads_off(port, self.ns_sw)
            offloads_off(dev, ns)
            run(*sw, "link", "set", port, "master", "br0")
            run(*sw, "link", "set", port, "up")
            run("ip", "-n", ns, "link", "set", dev, "up")
            self._host(ns, dev, *addrs)
        run(*sw, "link", "set", "br0", "up")

    def devices(self, framesz=2048, framecnt=512):
        """The two net_af_packet devices exfiltap bridges (inside, outside)."""
        blocksz = max(4096, framesz)
        common = f"qpairs=1,blocksz={blocksz},framesz={framesz},framecnt={framecnt}"
        return (f"net_af_packet0,iface={self.root_in},{common}",
                f"net_af_packet1,iface={self.root_out},{common}")

    def ports_yaml(self):
        """The config's `ports` and `workers` sections: inline over the two devices."""
        inside, outside = self.devices()
        return f"""ports:
  mode: inline
  pairs:
    - inside: "{inside}"
      outside: "{outside}"
  mbufs: 8191
  rx_descriptors: 512
  tx_descriptors: 512
workers:
  count: 1
"""

    def exec_in(self, ns, *args, **kwargs):
        return run("ip", "netns", "exec", ns, *args, **kwargs)

    def popen_in(self, ns, *args, **kwargs):
        options = dict(stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        options.update(kwargs)
        return subprocess.Popen(["ip", "netns", "exec", ns, *args], **options)

    def close(self):
        for kind, name in reversed(self.created):
            if kind == "link":
                run("ip", "link", "del", name, check=False)
            elif kind == "netns":
                # Processes still in the namespace were started by the caller and are ended
                # by it; deleting the namespace only unlinks it.
                run("ip", "netns", "del", name, check=False)
        self.created.clear()
        deadline = time.time() + 5
        while time.time() < deadline:
            names = run("ip", "netns", "list", check=False).stdout.split()
            if not any(ns in names for ns in self.namespaces()):
                break
            time.sleep(0.1)
