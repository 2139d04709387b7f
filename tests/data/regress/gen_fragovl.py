"""IPv4/IPv6 overlapping fragments with different data, both copies arriving before the datagram
completes (tail copies first, head last). Client port 33000+i. Writes fragovl.pcap, fragovl_cases.json."""
import sys, json, random, struct
from pk import *
random.seed(5)
def luhn_complete(prefix, n):
    while True:
        body = prefix + ''.join(random.choice('0123456789') for _ in range(n - len(prefix) - 1))
        for d in '0123456789':
            if luhn_ok(body + d): return body + d
PAN = luhn_complete('4921', 16)
p = Pcap(sys.argv[1] if len(sys.argv) > 1 else 'fragovl.pcap'); meta = {}
def http(body): return f'POST /u HTTP/1.1\r\nHost: x.example\r\nContent-Length: {len(body)}\r\n\r\n'.encode() + body
for i, (v6, order, shift) in enumerate([(False, 'decoy,real,head', 0), (False, 'real,decoy,head', 0), (True, 'decoy,real,head', 0), (True, 'real,decoy,head', 0),
                                         (False, 'decoy,real,head', 8), (False, 'head,decoy,real', 8)]):
    port = 33000 + i
    c = Conn(p, c='fd00:20::15' if v6 else '10.20.1.15', s='2001:db8::80' if v6 else '203.0.113.80', cp=port, v6=v6); c.hs()
    d = http(f'card={PAN}&x=1'.encode())
    t = tcp(c.c, c.s, c.cp, c.sp, c.cseq, c.sseq, PSH | ACK, d, v6=v6)   # checksum valid for the REAL bytes
    mid = ((20 + d.index(PAN.encode())) // 8) * 8 - shift
    real = t[mid:]; decoy = real.replace(PAN.encode(), b'X' * 16)
    frags = {'head': (0, t[:mid], True), 'real': (mid, real, False), 'decoy': (mid, decoy, False)}
    for name in order.split(','):
        off, pl, mf = frags[name]
        if v6:
            fh = struct.pack('!BBHI', 6, 0, off | (1 if mf else 0), 777 + i)
            p.rec(eth(ip6(c.c, c.s, 44, pl, ext=fh), 0x86dd))
        else:
            p.rec(eth(ip4(c.c, c.s, 6, pl, ident=777 + i, flags=(0x2000 if mf else 0) | off // 8)))
    c.cseq += len(d); p.rec(c.pkt(False, c.sseq, c.cseq, ACK)); c.fin()
    meta[port] = (('v6' if v6 else 'v4') + f'_ovl_{order}_shift{shift}', 'payment_card or fragment anomaly')
p.close(); json.dump({'cases': meta, 'values': {'PAN': PAN}}, open('fragovl_cases.json', 'w'), indent=1)
