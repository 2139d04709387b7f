from pk import *
import sys
N = int(sys.argv[1]); out = sys.argv[2]
p = Pcap(out)
hdr = b'POST /u HTTP/1.1\r\n\r\n'
# a long-lived flow interleaved with a SYN flood of N distinct flows; PAN sent in 2 pieces around the flood
c = Conn(p, c='10.20.9.9', cp=55555); c.hs(); c.send(hdr + b'card=' + PAN[:8].encode())
for i in range(N):
    a = f'10.{20 + (i >> 16) % 200}.{(i >> 8) & 255}.{i & 255}'
    p.rec(eth(ip4(a, '203.0.113.5', 6, tcp(a, '203.0.113.5', 1024 + (i % 60000), 443, i, 0, SYN))))
c.send(PAN[8:].encode() + b'&x=1'); c.fin(); p.close()
