#!/usr/bin/env python3
"""Slow clients against one of the CA's HTTP services, and what they cost it.

Each connection sends one whole request, reads the answer, then sends the
header of a second request on the same (kept-alive) connection one byte every
--interval seconds. Reports, every --sample seconds, how many of these
connections the server still keeps open, and the server's open file
descriptors and resident memory (from /proc/<pid>, so run it on the server's
machine).

    bench/hostile/slowloris.py --addr 127.0.0.1:8080 --pid $(pgrep -n ocsp-responder) \
        --connections 300 --duration 130 --path /health

Sources are spread over 127.0.0.1 .. 127.0.0.<--sources> (all loopback on
Linux), so a per-address cap can be watched too.
"""
import argparse
import resource
import socket
import time


def proc(pid):
    fds = len(__import__("os").listdir(f"/proc/{pid}/fd"))
    rss = 0
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1]) // 1024
    return fds, rss


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--addr", required=True)
    ap.add_argument("--pid", type=int, required=True)
    ap.add_argument("--connections", type=int, default=300)
    ap.add_argument("--duration", type=float, default=130)
    ap.add_argument("--interval", type=float, default=3)
    ap.add_argument("--sample", type=float, default=10)
    ap.add_argument("--sources", type=int, default=1)
    ap.add_argument("--path", default="/health")
    a = ap.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    host, port = a.addr.rsplit(":", 1)
    fds0, rss0 = proc(a.pid)
    print(f"before: server fds {fds0}, RSS {rss0} MiB")
    conns, refused = [], 0
    request = f"GET {a.path} HTTP/1.1\r\nHost: x\r\n\r\n".encode()
    for i in range(a.connections):
        src = f"127.0.0.{1 + i % a.sources}"
        s = socket.socket()
        s.settimeout(5)
        try:
            s.bind((src, 0))
            s.connect((host, int(port)))
            s.sendall(request)
            got = s.recv(65536)
            if not got.startswith(b"HTTP/1.1 200") and not got.startswith(b"HTTP/1.1 503"):
                refused += 1
                s.close()
                continue
            if got.startswith(b"HTTP/1.1 503") and b"Content-Length: 0" in got:
                refused += 1  # refused by the connection cap
                s.close()
                continue
            s.setblocking(False)
            conns.append(s)
        except OSError:
            refused += 1
            s.close()
    print(f"opened {len(conns)} kept-alive connections ({refused} refused)")
    trickle = b"GET / HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 100000
    start = time.time()
    next_sample = 0
    pos = 0
    while time.time() - start < a.duration:
        alive = []
        for s in conns:
            try:
                s.send(trickle[pos:pos + 1])
                try:
                    if s.recv(4096) == b"":
                        s.close()
                        continue
                except BlockingIOError:
                    pass
                alive.append(s)
            except OSError:
                s.close()
        conns = alive
        pos += 1
        t = time.time() - start
        if t >= next_sample:
            fds, rss = proc(a.pid)
            print(f"t={t:5.0f}s  slow connections open {len(conns):6d}  server fds {fds:6d}  RSS {rss} MiB", flush=True)
            next_sample += a.sample
        time.sleep(a.interval)
    fds, rss = proc(a.pid)
    print(f"after {a.duration:.0f}s: {len(conns)} of {a.connections} slow connections still open; server fds {fds}, RSS {rss} MiB")


if __name__ == "__main__":
    main()
