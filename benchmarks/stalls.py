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

PING_EVERY = 0.005  # seconds between the watching client's PINGs


class Watcher:
    """A second client that PINGs every few ms and records each round trip, in a thread."""

    def __init__(self, port: int) -> None:
        self.port = port
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
            self._sock.sendall(b"*1\r\n$4\r\nPING\r\n")
            if self._sock.recv(64) != b"+PONG\r\n":
                raise procs.ServerError("PING answered otherwise")
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


def workloads(quick: bool) -> list:
    """Return ``[(test name, setup(sock), work(sock))]``: each work is the costly request."""
    big = (32 if quick else 128) * 2**20
    grown = (16 if quick else 64) * 2**20
    long_key = b"a" * 10240
    pattern = b"*a" * 40 + b"b"
    return [
        ("SET %d MB" % (big >> 20), lambda s: None,
         lambda s: _request(s, b"SET", b"big", b"v" * big)),
        ("APPEND 1 B to %d MB x5" % (grown >> 20),
         lambda s: _request(s, b"SET", b"grown", b"v" * grown),
         lambda s: [_request(s, b"APPEND", b"grown", b"x") for _ in range(5)]),
        ("KEYS (*a)x40 b, 10 kB key",
         lambda s: _request(s, b"SET", long_key, b"1"),
         lambda s: _request(s, b"KEYS", pattern)),
    ]


def stalls(run: Run) -> None:
    """The longest and p99 PING wait of a second client while each costly request runs."""
    group = "stalls (other client's PING wait)"
    reference = "redis-server appendfsync always"
    run.references[group] = reference
    label = "kvstore (CPython) --fsync always"
    for test, setup, work in workloads(run.quick):
        _guard(run, group, reference, test, functools.partial(
            _measure, run, group, reference, test, setup, work,
            run.redis(appendfsync="always")), unit="ms")
        if not procs.kvstore_available():
            run.failed(group, label, test, "kvtwist/serve/tap.py not in this checkout yet",
                       unit="ms")
            continue
        _guard(run, group, label, test, functools.partial(
            _measure, run, group, label, test, setup, work, run.kvstore(CPY, fsync="always")),
            unit="ms")


def _measure(run: Run, group: str, label: str, test: str, setup, work, server) -> None:
    with server:
        with socket.create_connection(("127.0.0.1", server.port), timeout=300) as sock:
            setup(sock)
            with Watcher(server.port) as watcher:
                time.sleep(0.2)
                began = time.monotonic()
                work(sock)
                took = time.monotonic() - began
                time.sleep(0.2)
    waits = sorted(watcher.waits)
    if not waits:
        raise procs.ServerError("no PING answered")
    p99 = waits[min(len(waits) - 1, int(len(waits) * 0.99))] * 1000
    note = "request took %.2f s; %d PINGs, median %.1f ms" % (
        took, len(waits), statistics.median(waits) * 1000)
    run.rows.append(Row(group, label, test, waits[-1] * 1000, "ms", p50=None, p99=p99,
                        note=note))
    run.progress("%s: %s %s: longest PING wait %.1f ms (p99 %.1f ms)" % (
        group, label, test, waits[-1] * 1000, p99))
