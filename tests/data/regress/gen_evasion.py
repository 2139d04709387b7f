from pk import *
hdr = b'POST /u HTTP/1.1\r\nHost: x.example\r\nContent-Length: 100\r\n\r\n'

# E1: value adjacent to letters / underscore
def e1():
    p = Pcap('e1_letter_adjacent.pcap')
    for i, body in enumerate([f'card={PAN}DDDD', f'card=x{PAN} ', f'card={PAN}_', f'card_{PAN} ', f'ssn={SSN}DD', f'ssn=A{SSN} ']):
        c = Conn(p, cp=41000+i); c.hs(); c.send(hdr + body.encode()); c.fin()
    p.close()

# E2: out-of-window RST (receiver would ignore it) then the PAN
def e2():
    p = Pcap('e2_rst_out_of_window.pcap')
    c = Conn(p); c.hs(); c.send(hdr)
    p.rec(c.pkt(True, c.cseq + 1000000, 0, RST))   # seq far outside the window: ignored by stacks (RFC 793/5961)
    c.send(f'card={PAN}&x=1'.encode()); c.fin(); p.close()

# E3: bad-checksum decoy segment first, real segment (same seq) after
def e3():
    p = Pcap('e3_badsum_decoy.pcap')
    c = Conn(p); c.hs(); c.send(hdr)
    body = f'card={PAN}&x=1'.encode()
    c.send(b'X' * len(body), advance=False, badsum=True, ack=False)   # receiver drops it
    c.send(body); c.fin(); p.close()

# E4: 5-tuple reuse: first connection closes with RST, second connection (new ISN) on same ports carries PAN
def e4():
    p = Pcap('e4_port_reuse_after_rst.pcap')
    c = Conn(p, isn=1000); c.hs(); c.send(hdr + b'hello '); p.rec(c.pkt(True, c.cseq, c.sseq, RST | ACK))
    c2 = Conn(p, isn=500, sisn=9000); c2.hs(); c2.send(hdr + f'card={PAN}&x=1'.encode()); c2.fin(); p.close()

def e4b():   # FIN-closed first connection, new one with a lower ISN
    p = Pcap('e4b_port_reuse_after_fin.pcap')
    c = Conn(p, isn=100000); c.hs(); c.send(hdr + b'hello '); c.fin()
    c2 = Conn(p, isn=500, sisn=9000); c2.hs(); c2.send(hdr + f'card={PAN}&x=1'.encode()); c2.fin(); p.close()

# E5: far-ahead junk segments fill the reorder budget -> next_seq jumps -> real data skipped
def e5():
    p = Pcap('e5_reorder_budget_jump.pcap')
    c = Conn(p); c.hs(); c.send(hdr)
    base = c.cseq + 100_000_000
    for k in range(300):   # 300 * 1000 B = 300 KB > 256 KiB default reorder_flow_bytes
        c.send(b'J' * 1000, seq=base + k * 1000, ack=False)
    c.send(f'card={PAN}&x=1 '.encode() * 3); c.fin(); p.close()

# E6: overlap conflict: held future segment with decoy, then real one with the PAN at the same seq
def e6():
    p = Pcap('e6_overlap_first_wins.pcap')
    c = Conn(p); c.hs(); c.send(hdr)
    gap = b'a' * 10
    body = f'card={PAN}&x=1'.encode()
    c.send(b'Z' * len(body), seq=c.cseq + len(gap), ack=False)  # decoy held first
    c.send(body, seq=c.cseq + len(gap), ack=False)              # real data, conflicting
    c.send(gap); c.cseq += len(body); c.fin(); p.close()

# E7: unusual separators
def e7():
    p = Pcap('e7_separators.pcap')
    fm = [PAN[0:4]+'.'+PAN[4:8]+'.'+PAN[8:12]+'.'+PAN[12:], PAN[0:4]+'  '+PAN[4:8]+'  '+PAN[8:12]+'  '+PAN[12:],
          PAN[0:4]+'\t'+PAN[4:8]+'\t'+PAN[8:12]+'\t'+PAN[12:], PAN[0:4]+'/'+PAN[4:8]+'/'+PAN[8:12]+'/'+PAN[12:],
          PAN[0:4]+' - '+PAN[4:8]+' - '+PAN[8:12]+' - '+PAN[12:], '"'+PAN+'"', PAN[0:8]+' '+PAN[8:], SSN.replace('-', '.'), SSN.replace('-',''), SSN.replace('-','/')]
    for i, v in enumerate(fm):
        c = Conn(p, cp=42000+i); c.hs(); c.send(hdr + f'card {v} ssn\r\n'.encode()); c.fin()
    p.close()

# E8: value at very end of stream (no terminator) with FIN, and without FIN
def e8():
    p = Pcap('e8_value_at_end.pcap')
    c = Conn(p, cp=43000); c.hs(); c.send(hdr + f'card={PAN}'.encode()); c.fin()
    c = Conn(p, cp=43001); c.hs(); c.send(hdr + f'ssn={SSN}'.encode()); c.fin()
    c = Conn(p, cp=43002); c.hs(); c.send(hdr + f'card={PAN2}'.encode())   # no FIN, capture ends
    p.close()

# E9: PAN split in every way over 2 and 3 segments, all in one pcap, one flow each
def e9():
    p = Pcap('e9_split_every_way.pcap')
    body = f'card {PAN[0:4]} {PAN[4:8]} {PAN[8:12]} {PAN[12:]} end'.encode()
    full = hdr + body
    n = 0
    for cut in range(len(hdr), len(full)):
        c = Conn(p, cp=10000 + n); n += 1; c.hs(); c.send(full[:cut]); c.send(full[cut:]); c.fin()
    p.close(); print('e9 flows', n)

# E10: out of order delivery (reverse order of 1-byte segments)
def e10():
    p = Pcap('e10_reverse_1byte.pcap')
    c = Conn(p); c.hs(); c.send(hdr)
    body = f'card={PAN}&x=1'.encode(); base = c.cseq
    for i in reversed(range(len(body))):
        c.send(body[i:i+1], seq=base + i, ack=False)
    c.cseq = base + len(body); c.fin(); p.close()

# E11: sequence wrap-around in the middle of the PAN
def e11():
    p = Pcap('e11_seq_wrap.pcap')
    body = f'card={PAN}&x=1'.encode()
    isn = (0x100000000 - len(hdr) - 8 - 1)
    c = Conn(p, isn=isn); c.hs(); c.send(hdr); c.send(body[:9]); c.send(body[9:]); c.fin(); p.close()

for f in [e1, e2, e3, e4, e4b, e5, e6, e7, e8, e9, e10, e11]: f()
