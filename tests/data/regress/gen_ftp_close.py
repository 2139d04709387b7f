"""l1_ftp_stor_reported_at_close.pcap: an FTP upload (EPSV, STOR) whose data connection
closes before the 226 reply, then an unrelated packet 100 s later. The upload must be
reported once, when the data connection closes, not when the closed flow times out (30 s
later), and not again on the 226.

l2_ftp_forged_rst.pcap: the same upload with one segment sent twice and, half-way, an RST
far outside the window that the receiver ignores; the rest of the file follows. The
transfer must still be reported with the whole file's size (retransmitted bytes once)."""
import sys

from pk import ACK, FIN, PSH, RST, SYN, Conn, Pcap, eth, ip4, tcp

BASE = 1700000000_000000


def server_says(conn, text, at):
    data = text.encode()
    conn.pc.rec(conn.pkt(False, conn.sseq, conn.cseq, PSH | ACK, data), ts=at)
    conn.sseq += len(data)
    conn.pc.rec(conn.pkt(True, conn.cseq, conn.sseq, ACK), ts=at + 50)


def client_says(conn, text, at):
    data = text.encode()
    conn.pc.rec(conn.pkt(True, conn.cseq, conn.sseq, PSH | ACK, data), ts=at)
    conn.cseq += len(data)
    conn.pc.rec(conn.pkt(False, conn.sseq, conn.cseq, ACK), ts=at + 50)


def handshake(conn, at):
    conn.pc.rec(conn.pkt(True, conn.cseq, 0, SYN), ts=at)
    conn.cseq += 1
    conn.pc.rec(conn.pkt(False, conn.sseq, conn.cseq, SYN | ACK), ts=at + 100)
    conn.sseq += 1
    conn.pc.rec(conn.pkt(True, conn.cseq, conn.sseq, ACK), ts=at + 200)


def close(conn, at):
    conn.pc.rec(conn.pkt(True, conn.cseq, conn.sseq, FIN | ACK), ts=at)
    conn.cseq += 1
    conn.pc.rec(conn.pkt(False, conn.sseq, conn.cseq, FIN | ACK), ts=at + 100)
    conn.sseq += 1
    conn.pc.rec(conn.pkt(True, conn.cseq, conn.sseq, ACK), ts=at + 200)


def main(path, forged_rst=False):
    pc = Pcap(path)
    ctl = Conn(pc, c="10.20.1.15", s="203.0.113.21", cp=40100, sp=21, isn=1000, sisn=9000)
    data = Conn(pc, c="10.20.1.15", s="203.0.113.21", cp=40200, sp=40001, isn=50000,
                sisn=70000)
    t = BASE
    handshake(ctl, t)
    server_says(ctl, "220 ready\r\n", t + 10_000)
    client_says(ctl, "USER alice\r\n", t + 20_000)
    server_says(ctl, "331 password please\r\n", t + 30_000)
    client_says(ctl, "PASS secret\r\n", t + 40_000)
    server_says(ctl, "230 logged in\r\n", t + 50_000)
    client_says(ctl, "EPSV\r\n", t + 60_000)
    server_says(ctl, "229 Entering Extended Passive Mode (|||40001|)\r\n", t + 70_000)
    handshake(data, t + 80_000)
    client_says(ctl, "STOR q3-report.txt\r\n", t + 90_000)
    server_says(ctl, "150 Ok to send data.\r\n", t + 100_000)
    line = b"quarterly figures, region north, nothing sensitive here\n"
    body = (line * (20000 // len(line) + 1))[:20000]
    at = t + 110_000
    for n, i in enumerate(range(0, len(body), 1400)):
        chunk = body[i:i + 1400]
        pc.rec(data.pkt(True, data.cseq, data.sseq, PSH | ACK, chunk), ts=at)
        if forged_rst and n == 3:  # the same segment again: counted once
            pc.rec(data.pkt(True, data.cseq, data.sseq, PSH | ACK, chunk), ts=at + 20)
        data.cseq += len(chunk)
        pc.rec(data.pkt(False, data.sseq, data.cseq, ACK), ts=at + 50)
        if forged_rst and n == 7:  # an RST nowhere near the window
            pc.rec(data.pkt(True, data.cseq + 3_000_000, 0, RST), ts=at + 60)
        at += 10_000
    close(data, t + 1_000_000)  # the data connection closes at 1 s
    server_says(ctl, "226 Transfer complete.\r\n", t + 1_100_000)
    # 100 s later: an unrelated packet moves packet time past the closed-flow timeout.
    other = tcp("10.20.1.99", "198.51.100.7", 41000, 443, 1, 0, SYN)
    pc.rec(eth(ip4("10.20.1.99", "198.51.100.7", 6, other)), ts=t + 100_000_000)
    client_says(ctl, "QUIT\r\n", t + 100_100_000)
    server_says(ctl, "221 bye\r\n", t + 100_200_000)
    close(ctl, t + 100_300_000)
    pc.close()


if __name__ == "__main__":
    main("l1_ftp_stor_reported_at_close.pcap")
    main("l2_ftp_forged_rst.pcap", forged_rst=True)
