"""The stalls suite: how long other clients wait while one client sends a costly request."""

from __future__ import annotations

import functools
import socket
import statistics
import threading
import time

from benchmarks import procs
from benchmarks.report import Row
from benchmarks.suites import CPY, Run, _guard

PING_EVERY = 0.010  # seconds between the watching client's requests (the 10 ms)
# What the watching client sends, and the whole reply it expects.
PING_WATCH = (b"*1\r\n$4\r\nPING\r\n", b"+PONG\r\n")
# A read of data (a small key that does not exist): unlike PING's, its reply waits for
# writes other clients made before it to be durable (fsync always), a large one's too.
GET_WATCH = (b"*2\r\n$3\r\nGET\r\n$14\r\nstalls:watcher\r\n", b"$-1\r\n")


class Watcher:
    """A second client that sends a request every 10 ms and records each round trip, in a thread."""

    def __init__(self, port: int, watch: tuple = PING_WATCH) -> None:
        self.port = port
        self.request, self.expected = watch
        self.waits = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> "Watcher":
        self._sock = socket.create_connection(("127.0.0.1", self.port), timeout=120)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(130)
        self._sock.close()

    def _run(self) -> None:
        while not self._stop.is_set():
            began = time.monotonic()
            self._sock.sendall(self.request)
            if self._sock.recv(64) != self.expected:
                raise procs.ServerError("the watcher's request was answered otherwise")
            self.waits.append(time.monotonic() - began)
            time.sleep(PING_EVERY)


def _request(sock, *args) -> bytes:
    """Send one command on ``sock`` and return its whole first reply line (or bulk header)."""
    sock.sendall(procs.encode(args))
    reply = b""
    while not reply.endswith(b"\r\n"):
        chunk = sock.recv(65536)
        if not chunk:
            raise procs.ServerError("connection closed")
        reply += chunk
    return reply


def _get_whole(sock, key: bytes) -> int:
    """GET ``key`` on ``sock`` and read the whole bulk reply; return the value's length."""
    sock.sendall(procs.encode((b"GET", key)))
    reply = b""
    while b"\r\n" not in reply:
        chunk = sock.recv(65536)
        if not chunk:
            raise procs.ServerError("connection closed")
        reply += chunk
    head, _, rest = reply.partition(b"\r\n")
    if not head.startswith(b"$"):
        raise procs.ServerError("GET answered %r" % (head[:80],))
    size = int(head[1:])
    left = size + 2 - len(rest)
    while left > 0:
        chunk = sock.recv(min(left, 1 << 20))
        if not chunk:
            raise procs.ServerError("connection closed")
        left -= len(chunk)
    return size


def workloads(quick: bool) -> list:
    """Return ``[(test name, setup(sock), work(sock), watch)]``: each work is the costly
    request, ``watch`` what the other client sends meanwhile (PING_WATCH or GET_WATCH).

    The full run adds the issue's target, a 512 MB SET (proto-max-bulk-len's limit), watched
    by PINGs and by GETs; the server and the client each hold the value two or three times.
    """
    big = (32 if quick else 128) * 2**20
    grown = (16 if quick else 64) * 2**20
    long_key = b"a" * 10240
    pattern = b"*a" * 40 + b"b"

    def set_of(size: int):
        return lambda s: _request(s, b"SET", b"big", b"v" * size)

    rows = [
        ("SET %d MB" % (big >> 20), lambda s: None, set_of(big), PING_WATCH),
        ("GET %d MB" % (big >> 20), set_of(big), lambda s: _get_whole(s, b"big"), PING_WATCH),
        ("APPEND 1 B to %d MB x5" % (grown >> 20),
         lambda s: _request(s, b"SET", b"grown", b"v" * grown),
         lambda s: [_request(s, b"APPEND", b"grown", b"x") for _ in range(5)], PING_WATCH),
        ("KEYS (*a)x40 b, 10 kB key",
         lambda s: _request(s, b"SET", long_key, b"1"),
         lambda s: _request(s, b"KEYS", pattern), PING_WATCH),
    ]
    if not quick:
        largest = 512 * 2**20
        rows.append(("SET 512 MB", lambda s: None, set_of(largest), PING_WATCH))
    else:
        largest = big
    rows.append(("SET %d MB, GET watcher" % (largest >> 20), lambda s: None, set_of(largest),
                 GET_WATCH))
    return rows


def stalls(run: Run) -> None:
    """The longest and p99 wait of another client's PING (or GET) during each costly request."""
    group = "stalls (other client's PING wait)"
    reference = "redis-server appendfsync always"
    run.references[group] = reference
    label = "kvstore (CPython) --fsync always"
    for test, setup, work, watch in workloads(run.quick):
        _guard(run, group, reference, test, functools.partial(
            _measure, run, group, reference, test, setup, work, watch,
            run.redis(appendfsync="always")), unit="ms")
        if not procs.kvstore_available():
            run.failed(group, label, test, "kvtwist/serve/tap.py not in this checkout yet",
                       unit="ms")
            continue
        _guard(run, group, label, test, functools.partial(
            _measure, run, group, label, test, setup, work, watch,
            run.kvstore(CPY, fsync="always")), unit="ms")


def _measure(run: Run, group: str, label: str, test: str, setup, work, watch,
             server) -> None:
    with server:
        with socket.create_connection(("127.0.0.1", server.port), timeout=300) as sock:
            setup(sock)
            with Watcher(server.port, watch) as watcher:
                time.sleep(0.2)
                began = time.monotonic()
                work(sock)
                took = time.monotonic() - began
                time.sleep(0.2)
    waits = sorted(watcher.waits)
    if not waits:
        raise procs.ServerError("no PING answered")
    p99 = waits[min(len(waits) - 1, int(len(waits) * 0.99))] * 1000
    note = "request took %.2f s; %d %ss, median %.1f ms" % (
        took, len(waits), "PING" if watch is PING_WATCH else "GET",
        statistics.median(waits) * 1000)
    run.rows.append(Row(group, label, test, waits[-1] * 1000, "ms", p50=None, p99=p99,
                        note=note))
    run.progress("%s: %s %s: longest wait %.1f ms (p99 %.1f ms)" % (
        group, label, test, waits[-1] * 1000, p99))
