#!/usr/bin/python3
"""The lab's web server (outside): accepts uploads (POST, PUT; length or chunked), serves
small files, over HTTP or, with --tls, HTTPS. Replies to an upload with JSON
{"received": bytes}. Prints "listening" once the socket is bound.

Usage: upload_server.py ADDRESS PORT [--tls CERT KEY] [--lifetime S]
"""
import http.server
import json
import ssl
import sys
import threading


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        sys.stderr.write("%s %s\n" % (self.address_string(), fmt % args))

    def _read_body(self):
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            total = 0
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return total
                remaining = size
                while remaining:
                    remaining -= len(self.rfile.read(min(remaining, 65536)))
                total += size
                self.rfile.readline()
        length = int(self.headers.get("Content-Length", "0"))
        remaining = length
        while remaining:
            chunk = self.rfile.read(min(remaining, 65536))
            if not chunk:
                break
            remaining -= len(chunk)
        return length - remaining

    def _reply(self, code, body, content_type="application/json"):
        data = body.encode()
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self):
        self._reply(200, json.dumps({"received": self._read_body()}) + "\n")

    do_PUT = do_POST

    def do_GET(self):
        if self.path.startswith("/small"):
            line = "exfiltap lab page, nothing sensitive here.\n"
            self._reply(200, line * 100, "text/plain")
        else:
            self._reply(404, "{}\n")


def main(argv):
    address, port = argv[1], int(argv[2])
    lifetime = 600.0
    cert = key = None
    i = 3
    while i < len(argv):
        if argv[i] == "--tls":
            cert, key = argv[i + 1], argv[i + 2]
            i += 3
        elif argv[i] == "--lifetime":
            lifetime = float(argv[i + 1])
            i += 2
        else:
            raise SystemExit(f"unknown argument {argv[i]}")
    server = http.server.ThreadingHTTPServer((address, port), Handler)
    if cert:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert, key)
        server.socket = context.wrap_socket(server.socket, server_side=True)
    # Bounded: the server ends itself after its lifetime even if nobody stops it.
    timer = threading.Timer(lifetime, server.shutdown)
    timer.daemon = True
    timer.start()
    print("listening", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main(sys.argv)
