"""Traffic ends for the live tests, run inside the lab's namespaces.

  peer.py server PORT            TCP server: per connection, reads to EOF (or 5 s idle),
                                 answers "got N" and prints {"conn": k, "bytes": N} per line.
  peer.py client HOST PORT [--file F | --size N] [--timeout S] [--chunk B] [--pause S]
                                 connects, sends, shuts down writing, reads the answer;
                                 prints {"connected": bool, "sent": N, "reply": "..."}.
Both stop by themselves: the server after --lifetime seconds (default 120).
"""
import json
import socket
import sys
import time


def server(port, lifetime):
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("0.0.0.0", port))
    listener.listen(16)
    listener.settimeout(0.5)
    print(json.dumps({"listening": port}), flush=True)
    deadline = time.time() + lifetime
    conn_id = 0
    while time.time() < deadline:
        try:
            conn, _ = listener.accept()
        except socket.timeout:
            continue
        conn_id += 1
        conn.settimeout(5)
        total = 0
        try:
            while True:
                data = conn.recv(65536)
                if not data:
                    break
                total += len(data)
            conn.sendall(f"got {total}\n".encode())
        except OSError:
            pass
        finally:
            conn.close()
        print(json.dumps({"conn": conn_id, "bytes": total}), flush=True)


def client(host, port, payload, timeout, chunk, pause):
    result = {"connected": False, "sent": 0, "reply": ""}
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.settimeout(timeout)
    try:
        sock.connect((host, port))
        result["connected"] = True
        for start in range(0, len(payload), chunk):
            sock.sendall(payload[start:start + chunk])
            result["sent"] += len(payload[start:start + chunk])
            if pause:
                time.sleep(pause)
        sock.shutdown(socket.SHUT_WR)
        result["reply"] = sock.recv(100).decode(errors="replace").strip()
    except OSError as error:
        result["error"] = str(error)
    finally:
        sock.close()
    print(json.dumps(result), flush=True)


def main(argv):
    if argv[1] == "server":
        lifetime = float(argv[argv.index("--lifetime") + 1]) if "--lifetime" in argv else 120
        server(int(argv[2]), lifetime)
        return 0
    host, port = argv[2], int(argv[3])
    opts = dict(zip(argv[4::2], argv[5::2]))
    if "--file" in opts:
        with open(opts["--file"], "rb") as f:
            payload = f.read()
    else:
        payload = b"x" * int(opts.get("--size", "100"))
    client(host, port, payload, float(opts.get("--timeout", "3")),
           int(opts.get("--chunk", "1000")), float(opts.get("--pause", "0")))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
