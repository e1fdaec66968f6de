"""Start real ``twistd`` processes on loopback for tests, learn their ports, stop them by PID."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
from typing import Optional

from benchmarks.procs import free_port  # noqa: F401 (one port policy for tests and benchmarks)

_PORT_LINE = re.compile(rb"starting on (\d+)")
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def twistd_command() -> list:
    """The argv prefix that runs twistd under this interpreter, or the one KVTWIST_SERVER_PYTHON
    names (``python -m twisted`` is twist)."""
    python = os.path.abspath(os.environ.get("KVTWIST_SERVER_PYTHON") or sys.executable)
    script = os.path.join(os.path.dirname(python), "twistd")
    if os.path.exists(script):
        return [script]
    return [python, "-c", "from twisted.scripts.twistd import run; run()"]


class ChildProcess:
    """A child process (``self.process``, a Popen; ``self.pid``) ended by signalling its PID."""

    process: subprocess.Popen
    pid: int

    def kill(self) -> int:
        """SIGKILL the process (a crash) and reap it; return its exit status."""
        if self.process.poll() is None:
            os.kill(self.pid, signal.SIGKILL)
        return self._reap()

    def stop(self, timeout: float = 20.0) -> int:
        """SIGTERM the process (a clean shutdown), SIGKILL if it lingers; return its status."""
        if self.process.poll() is None:
            os.kill(self.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                os.kill(self.pid, signal.SIGKILL)
        return self._reap()

    def _reap(self) -> int:
        return self.process.wait()


class TwistdProcess(ChildProcess):
    """A ``twistd -n <plugin>`` child process whose log is read from its stdout."""

    def __init__(self, plugin: str, args, cwd: Optional[str] = None, tac: bool = False,
                 env: Optional[dict] = None) -> None:
        command = twistd_command() + ["-n", "--pidfile=", "--logfile=-"]
        command += ["-y", plugin] if tac else [plugin]
        command += list(args)
        env = dict(os.environ, **(env or {}))
        env["PYTHONPATH"] = ROOT + os.pathsep + env.get("PYTHONPATH", "")
        env["PYTHONUNBUFFERED"] = "1"
        self.command = command
        self.plugin = plugin
        self.process = subprocess.Popen(
            command, cwd=cwd or ROOT, env=env, stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        self.pid = self.process.pid
        self.lines = []
        self.ports = []
        self._changed = threading.Condition()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        for line in iter(self.process.stdout.readline, b""):
            with self._changed:
                self.lines.append(line)
                match = _PORT_LINE.search(line)
                if match:
                    self.ports.append(int(match.group(1)))
                self._changed.notify_all()
        with self._changed:
            self._changed.notify_all()

    @property
    def log(self) -> str:
        """Everything the process has logged so far."""
        return b"".join(self.lines).decode("utf-8", "replace")

    def wait_for_ports(self, count: int = 1, timeout: float = 30.0) -> list:
        """Wait until the process logs ``count`` listening ports; return them."""
        with self._changed:
            ok = self._changed.wait_for(
                lambda: len(self.ports) >= count or self.process.poll() is not None, timeout)
        if len(self.ports) < count:
            self.stop()
            raise RuntimeError("%s did not start listening (ok=%s):\n%s"
                               % (" ".join(self.command), ok, self.log))
        return self.ports[:count]

    def wait_for_line(self, pattern: str, timeout: float = 30.0) -> str:
        """Wait until a log line matches ``pattern`` (a regex); return that line."""
        regex = re.compile(pattern.encode("utf-8"))

        def found():
            for line in self.lines:
                if regex.search(line):
                    return line
            return None

        with self._changed:
            self._changed.wait_for(lambda: found() or self.process.poll() is not None, timeout)
            line = found()
        if line is None:
            raise RuntimeError("no log line matching %r:\n%s" % (pattern, self.log))
        return line.decode("utf-8", "replace")

    def _reap(self) -> int:
        status = ChildProcess._reap(self)
        self._reader.join(10)
        self.process.stdout.close()
        return status


def _start_listening(plugin: str, port: int, args) -> TwistdProcess:
    proc = TwistdProcess(plugin, ["--listen", "tcp:%d:interface=127.0.0.1" % (port,)] + list(args))
    proc.port = proc.wait_for_ports(1)[0]
    return proc


def start_kvstore(data_dir: str, *args: str, port: int = 0) -> TwistdProcess:
    """Start ``twistd -n kvstore`` with its data in ``data_dir``; return it, listening.

    It listens on loopback ``port`` (0: any free one); the port is the result's ``.port``.
    """
    return _start_listening("kvstore", port, ["--data", data_dir] + list(args))


def start_kvproxy(backend_port: int, *args: str, port: int = 0) -> TwistdProcess:
    """Start ``twistd -n kvproxy`` in front of loopback ``backend_port``; return it, listening.

    It listens on loopback ``port`` (0: any free one); the port is the result's ``.port``.
    """
    return _start_listening(
        "kvproxy", port, ["--backend", "tcp:127.0.0.1:%d" % (backend_port,)] + list(args))


def start_kvproxy_pool(pool_path: str, *args: str, port: int = 0) -> TwistdProcess:
    """Start ``twistd -n kvproxy`` in front of the pool of the YAML file ``pool_path``; return
    it, listening on loopback ``port`` (0: any free one), the port its ``.port``."""
    return _start_listening("kvproxy", port, ["--pool", pool_path] + list(args))
