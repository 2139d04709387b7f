"""Tiny pcap crafting helpers (no scapy). Valid checksums unless asked otherwise."""
import struct, ipaddress

def csum(b):
    if len(b) % 2: b += b'\0'
    s = sum(struct.unpack('!%dH' % (len(b)//2), b))
    while s >> 16: s = (s & 0xffff) + (s >> 16)
    return (~s) & 0xffff

def eth(payload, etype=0x0800, vlans=(), src=b'\x02\0\0\0\0\x01', dst=b'\x02\0\0\0\0\x02', tpid=0x8100):
    h = dst + src
    for i, v in enumerate(vlans):
        t = tpid if i == 0 else 0x8100
        h += struct.pack('!HH', t, v)
    return h + struct.pack('!H', etype) + payload

def ip4(src, dst, proto, payload, ttl=64, ident=1, flags=0x4000, opts=b''):
    ihl = 5 + len(opts)//4
    h = struct.pack('!BBHHHBBH4s4s', 0x40 | ihl, 0, 20+len(opts)+len(payload), ident, flags, ttl, proto, 0,
                    ipaddress.IPv4Address(src).packed, ipaddress.IPv4Address(dst).packed) + opts
    h = h[:10] + struct.pack('!H', csum(h)) + h[12:]
    return h + payload

def ip6(src, dst, nh, payload, ext=b''):
    return struct.pack('!IHBB16s16s', 0x60000000, len(ext)+len(payload), nh, 64,
                       ipaddress.IPv6Address(src).packed, ipaddress.IPv6Address(dst).packed) + ext + payload

def tcp(src, dst, sp, dp, seq, ack, flags, data=b'', v6=False, badsum=False, opts=b''):
    off = (20 + len(opts)) // 4
    h = struct.pack('!HHIIBBHHH', sp, dp, seq & 0xffffffff, ack & 0xffffffff, off << 4, flags, 65535, 0, 0) + opts
    seg = h + data
    if v6:
        ph = ipaddress.IPv6Address(src).packed + ipaddress.IPv6Address(dst).packed + struct.pack('!IxxxB', len(seg), 6)
    else:
        ph = ipaddress.IPv4Address(src).packed + ipaddress.IPv4Address(dst).packed + struct.pack('!xBH', 6, len(seg))
    c = csum(ph + seg)
    if badsum: c ^= 0x1234
    return seg[:16] + struct.pack('!H', c) + seg[18:]

FIN, SYN, RST, PSH, ACK = 1, 2, 4, 8, 16

class Pcap:
    def __init__(self, path, linktype=1, nsec=False, snaplen=262144):
        self.f = open(path, 'wb'); self.nsec = nsec; self.t = 1700000000_000000
        magic = 0xa1b23c4d if nsec else 0xa1b2c3d4
        self.f.write(struct.pack('<IHHiIII', magic, 2, 4, 0, 0, snaplen, linktype))
        self.n = 0
    def rec(self, data, caplen=None, wirelen=None, ts=None):
        self.t += 1000
        t = self.t if ts is None else ts
        sec, usec = divmod(t, 1000000)
        if self.nsec: usec *= 1000
        cl = len(data) if caplen is None else caplen
        wl = len(data) if wirelen is None else wirelen
        self.f.write(struct.pack('<IIII', sec, usec, cl, wl) + data)
        self.n += 1
    def close(self): self.f.close()

class Conn:
    """A TCP connection; c->s data via send(), with full control of seq."""
    def __init__(self, pc, c='10.20.1.15', s='203.0.113.80', cp=40000, sp=80, isn=1000, sisn=5000, vlans=(), v6=False, tpid=0x8100):
        self.pc, self.c, self.s, self.cp, self.sp = pc, c, s, cp, sp
        self.cseq, self.sseq, self.vlans, self.v6, self.tpid = isn, sisn, vlans, v6, tpid
    def pkt(self, src_is_client, seq, ack, flags, data=b'', badsum=False, ttl=64):
        a, b, pa, pb = (self.c, self.s, self.cp, self.sp) if src_is_client else (self.s, self.c, self.sp, self.cp)
        t = tcp(a, b, pa, pb, seq, ack, flags, data, v6=self.v6, badsum=badsum)
        if self.v6:
            return eth(ip6(a, b, 6, t), 0x86dd, self.vlans, tpid=self.tpid)
        return eth(ip4(a, b, 6, t, ttl=ttl), 0x0800, self.vlans, tpid=self.tpid)
    def hs(self):
        self.pc.rec(self.pkt(True, self.cseq, 0, SYN)); self.cseq += 1
        self.pc.rec(self.pkt(False, self.sseq, self.cseq, SYN | ACK)); self.sseq += 1
        self.pc.rec(self.pkt(True, self.cseq, self.sseq, ACK))
    def send(self, data, seq=None, advance=True, badsum=False, flags=PSH | ACK, ack=True):
        s = self.cseq if seq is None else seq
        self.pc.rec(self.pkt(True, s, self.sseq, flags, data, badsum=badsum))
        if advance and seq is None: self.cseq += len(data)
        if ack: self.pc.rec(self.pkt(False, self.sseq, s + len(data), ACK))
    def fin(self):
        self.pc.rec(self.pkt(True, self.cseq, self.sseq, FIN | ACK)); self.cseq += 1
        self.pc.rec(self.pkt(False, self.sseq, self.cseq, FIN | ACK)); self.sseq += 1
        self.pc.rec(self.pkt(True, self.cseq, self.sseq, ACK))

def luhn_ok(s):
    t = 0
    for i, ch in enumerate(reversed(s)):
        d = int(ch)
        if i % 2: d = d * 2 - 9 if d > 4 else d * 2
        t += d
    return t % 10 == 0

PAN = '4857083934735715'   # from shared/cases (synthetic)
PAN2 = '5335705397616813'
SSN = '152-87-5870'
