"""A minimal inline lab on this machine: two network namespaces joined through exfiltap.

    [ns inside] veth --- root end  ==exfiltap (net_af_packet x2)==  root end --- veth [ns outside]

The root-namespace ends carry no address, answer no ARP (arp_ignore=8) and run no IPv6, so
only the namespaces' own hosts answer; every offload is off on both ends of both pairs (with
checksum offload on, TCP through an af_packet bridge stalls). Addresses come from TEST-NET-2
(198.51.100.0/24), checked against the host's own first. Everything is removed on close(),
whatever failed before.
"""
import os
import subprocess
import time

INSIDE_IP = "198.51.100.10"
OUTSIDE_IP = "198.51.100.200"
PREFIX_LEN = 24
# The inside host is internal, the outside one external (config networks).
INTERNAL_NET = "198.51.100.0/25"


def run(*args, check=True, timeout=30):
    result = subprocess.run(list(args), capture_output=True, text=True, timeout=timeout)
    if check and result.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} failed ({result.returncode}): {result.stderr.strip()}")
    return result


def host_uses(prefix_start):
    out = run("ip", "-o", "addr", check=False).stdout
    return prefix_start in out


class Lab:
    def __init__(self, tag=None):
        tag = tag or str(os.getpid() % 100000)
        self.tag = tag
        self.ns_in = f"exft-in-{tag}"
        self.ns_out = f"exft-out-{tag}"
        # Interface names: at most 15 characters.
        self.root_in = f"xti{tag}"
        self.root_out = f"xto{tag}"
        self.peer_in = f"xpi{tag}"
        self.peer_out = f"xpo{tag}"
        self.created = []

    def up(self):
        if host_uses("198.51.100."):
            raise RuntimeError("the host already uses 198.51.100.0/24; the lab needs it")
        try:
            self._build()
        except Exception:
            self.close()
            raise
        return self

    def _build(self):
        for ns in (self.ns_in, self.ns_out):
            run("ip", "netns", "add", ns)
            self.created.append(("netns", ns))
            run("ip", "-n", ns, "link", "set", "lo", "up")
        for root, peer, ns, addr in ((self.root_in, self.peer_in, self.ns_in, INSIDE_IP),
                                     (self.root_out, self.peer_out, self.ns_out, OUTSIDE_IP)):
            run("ip", "link", "add", root, "type", "veth", "peer", "name", peer)
            self.created.append(("link", root))
            run("ip", "link", "set", peer, "netns", ns)
            # Root end: no IPv6, no ARP answers, no address.
            run("sysctl", "-qw", f"net.ipv6.conf.{root}.disable_ipv6=1")
            run("sysctl", "-qw", f"net.ipv4.conf.{root}.arp_ignore=8")
            run("ip", "-n", ns, "addr", "add", f"{addr}/{PREFIX_LEN}", "dev", peer)
            run("ip", "netns", "exec", ns, "sysctl", "-qw",
                f"net.ipv6.conf.{peer}.disable_ipv6=1")
            for dev, where in ((root, None), (peer, ns)):
                prefix = ["ip", "netns", "exec", where] if where else []
                run(*prefix, "ethtool", "-K", dev, "rx", "off", "tx", "off", "tso", "off",
                    "gso", "off", "gro", "off", "sg", "off", check=False)
            run("ip", "link", "set", root, "up")
            run("ip", "-n", ns, "link", "set", peer, "up")

    def devices(self):
        """The two net_af_packet devices exfiltap bridges (inside, outside)."""
        return (f"net_af_packet0,iface={self.root_in},qpairs=1,blocksz=4096,framesz=2048,framecnt=512",
                f"net_af_packet1,iface={self.root_out},qpairs=1,blocksz=4096,framesz=2048,framecnt=512")

    def exec_in(self, ns, *args, **kwargs):
        return run("ip", "netns", "exec", ns, *args, **kwargs)

    def popen_in(self, ns, *args):
        return subprocess.Popen(["ip", "netns", "exec", ns, *args], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)

    def close(self):
        for kind, name in reversed(self.created):
            if kind == "link":
                run("ip", "link", "del", name, check=False)
            elif kind == "netns":
                # Processes still in the namespace were started by the test and are ended
                # by it; deleting the namespace only unlinks it.
                run("ip", "netns", "del", name, check=False)
        self.created.clear()
        deadline = time.time() + 5
        while time.time() < deadline:
            names = run("ip", "netns", "list", check=False).stdout
            if self.ns_in not in names and self.ns_out not in names:
                break
            time.sleep(0.1)
