from pk import *
import struct, os
hdr = b'POST /u HTTP/1.1\r\nHost: x\r\n\r\n'
def session(p, **kw):
    c = Conn(p, **kw); c.hs(); c.send(hdr + f'card={PAN}&x=1'.encode()); c.fin()

open('f01_empty.pcap', 'wb').close()
p = Pcap('f02_header_only.pcap'); p.close()
open('f03_short_header.pcap', 'wb').write(open('f02_header_only.pcap', 'rb').read()[:10])
open('f04_garbage.pcap', 'wb').write(os.urandom(4096))
p = Pcap('f05_truncated_record.pcap'); session(p); p.close()
d = open('f05_truncated_record.pcap', 'rb').read(); open('f05_truncated_record.pcap', 'wb').write(d[:-30])
# huge caplen in the record header
p = Pcap('f06_huge_caplen.pcap'); session(p); p.f.write(struct.pack('<IIII', 1700000001, 0, 0xfffffff0, 0xfffffff0) + b'A' * 100); p.close()
# zero-length records and caplen > wirelen, caplen < 14
p = Pcap('f07_zero_and_tiny.pcap')
p.rec(b''); p.rec(b'\x01'); p.rec(b'\x02' * 13)
pk_ = Conn(p).pkt(True, 1, 0, SYN); p.rec(pk_, wirelen=10)   # caplen > wirelen
session(p); p.rec(b'')
p.close()
# frames larger than 64 KiB (jumbo beyond writer buffer), snaplen-cut packets
p = Pcap('f08_big_frames.pcap', snaplen=262144)
c = Conn(p); c.hs()
big = b'B' * 70000
fr = c.pkt(True, c.cseq, c.sseq, ACK | PSH, b'')  # base
p.rec(eth(b'\x00' * 100000, 0x88b5))             # 100014-byte non-IP frame
p.rec(eth(b'\x00' * 65600, 0x88b5))
c.send(hdr + f'card={PAN}&x=1'.encode()); c.fin(); p.close()
# snaplen cut: TCP segment with PAN, captured only to 70 bytes (wire len larger)
p = Pcap('f09_snaplen_cut.pcap', snaplen=80)
c = Conn(p); c.hs()
full = c.pkt(True, c.cseq, c.sseq, ACK | PSH, hdr + f'card={PAN}&x=1'.encode())
p.rec(full[:80], wirelen=len(full)); c.cseq += len(hdr) + 22
c.send(b' more ' + f'ssn {SSN} '.encode()); c.fin(); p.close()
# link types
for lt, name, mk in [(101, 'raw', lambda f: f[14:]), (228, 'ipv4', lambda f: f[14:]), (0, 'null', lambda f: struct.pack('<I', 2) + f[14:]),
                     (113, 'sll', lambda f: struct.pack('!HHH8sH', 0, 1, 6, b'\x02' * 8, 0x0800) + f[14:]), (105, 'wifi', lambda f: f)]:
    p = Pcap(f'f10_linktype_{name}.pcap', linktype=lt)
    q = Pcap('/tmp/_tmp.pcap'); session(q); q.close()
    d = open('/tmp/_tmp.pcap', 'rb').read()[24:]; off = 0
    while off < len(d):
        ts, tu, cl, wl = struct.unpack('<IIII', d[off:off+16]); fr = d[off+16:off+16+cl]; off += 16 + cl
        p.rec(mk(fr))
    p.close()
# big-endian pcap
q = open('/tmp/_tmp.pcap', 'rb').read()
out = struct.pack('>IHHiIII', 0xa1b2c3d4, 2, 4, 0, 0, 262144, 1); off = 24
while off < len(q):
    ts, tu, cl, wl = struct.unpack('<IIII', q[off:off+16]); out += struct.pack('>IIII', ts, tu, cl, wl) + q[off+16:off+16+cl]; off += 16 + cl
open('f11_bigendian.pcap', 'wb').write(out)
# nanosecond pcap
p = Pcap('f12_nsec.pcap', nsec=True); session(p); p.close()
# timestamps going backwards and usec >= 1e6
p = Pcap('f13_bad_timestamps.pcap')
c = Conn(p); ts = [1700000000_000000, 1600000000_000000, 0, 1700000000_999999, 2**32 * 1000000 - 1, 5, 7, 9, 11, 13]
pk_list = []
c2 = Conn(Pcap('/tmp/_t2.pcap')); 
class Cap:
    def __init__(s): s.l = []
    def rec(s, d, **k): s.l.append(d)
cap = Cap(); c = Conn(cap); c.hs(); c.send(hdr + f'card={PAN}&x=1'.encode()); c.fin()
for i, d in enumerate(cap.l):
    p.rec(d, ts=ts[i % len(ts)])
p.f.write(struct.pack('<IIII', 1700000001, 2500000, len(cap.l[0]), len(cap.l[0])) + cap.l[0])  # usec > 1e6
p.close()
