#!/usr/bin/env python3
"""Writes every distinct packet of the given pcap files as one seed file (libFuzzer corpus).

Usage: fuzz_seeds.py OUT_DIR FILE.pcap... (classic pcap, either byte order, us or ns)
"""
import hashlib
import os
import struct
import sys

MAGICS = {b"\xd4\xc3\xb2\xa1": "<", b"\x4d\x3c\xb2\xa1": "<",
          b"\xa1\xb2\xc3\xd4": ">", b"\xa1\xb2\x3c\x4d": ">"}


def packets(path):
    with open(path, "rb") as f:
        data = f.read()
    if len(data) < 24 or data[:4] not in MAGICS:
        return
    endian = MAGICS[data[:4]]
    off = 24
    while off + 16 <= len(data):
        caplen = struct.unpack(endian + "I", data[off + 8:off + 12])[0]
        off += 16
        if caplen > len(data) - off:
            return
        yield data[off:off + caplen]
        off += caplen


def main() -> int:
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    seen = set()
    for path in sys.argv[2:]:
        for pkt in packets(path):
            digest = hashlib.sha1(pkt).hexdigest()
            if digest in seen:
                continue
            seen.add(digest)
            with open(os.path.join(out, digest), "wb") as f:
                f.write(pkt)
    print(f"{len(seen)} seeds in {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
