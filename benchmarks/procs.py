"""Child servers on loopback: start, wait for PING, measure RSS, bulk-load, stop by PID."""

from __future__ import annotations

import collections
import os
import random
import shutil
import signal
import socket
import subprocess
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CPYTHON = os.path.join(ROOT, ".venv", "bin", "python")
PYPY = os.path.join(ROOT, ".venv-pypy", "bin", "python")


class ServerError(Exception):
    """A child server did not start, answer or load as expected."""


_PORTS = random.Random()  # seeded from os.urandom: parallel test workers draw differently
_GIVEN = collections.OrderedDict()  # ports free_port handed out lately, oldest first
_GIVEN_LIMIT = 1000


def ephemeral_range() -> tuple:
    """Return the kernel's (first, last) port for outgoing connections and binds to port 0."""
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as handle:
            first, last = handle.read().split()
        return int(first), int(last)
    except (OSError, ValueError):
        return 32768, 60999


def free_port(companion: int = 0) -> int:
    """Return a TCP port on 127.0.0.1 that was free a moment ago, for a server that must be
    told its port before it starts (nutcracker, redis-server, a restarted kvstore). With
    ``companion``, the port that far above it is free too (a cluster node's bus port).

    The ports are drawn at random from below the kernel's ephemeral range, so no outgoing
    connection and no bind to port 0 in any process can take them before the server binds
    them. A port this process handed out (a companion too) is not drawn again until
    ``_GIVEN_LIMIT`` others were: a caller may name many ports before any server binds
    one. Only another process drawing the same port at the same moment can take it
    (about 1 in 10,000)."""
    top = ephemeral_range()[0] - companion
    for _ in range(1000):
        if top - 10000 >= 1024:
            port = _PORTS.randrange(top - 10000, top)
        else:  # an unusual range: take what the kernel gives
            with socket.socket() as sock:
                sock.bind(("127.0.0.1", 0))
                port = sock.getsockname()[1]
        wanted = (port, port + companion) if companion else (port,)
        if wanted[-1] < 65536 and all(_unused(each) for each in wanted):
            for each in wanted:
                _give(each)
            return port
    raise ServerError("no free loopback port")


def _give(port: int) -> None:
    """Remember ``port`` as handed out, forgetting the oldest beyond ``_GIVEN_LIMIT``."""
    _GIVEN[port] = None
    if len(_GIVEN) > _GIVEN_LIMIT:
        _GIVEN.popitem(last=False)


def _unused(port: int) -> bool:
    """Whether this process did not hand ``port`` out lately and it can be bound now."""
    return port not in _GIVEN and _bindable(port)


def _bindable(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def child_env() -> dict:
    """Return an environment that finds kvtwist and its twistd plugin from this checkout."""
    env = dict(os.environ)
    env["PYTHONPATH"] = ROOT + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    return env


def kvstore_available() -> bool:
    """Return whether this checkout has the kvstore twistd plugin's tap module yet."""
    return os.path.exists(os.path.join(ROOT, "kvtwist", "serve", "tap.py"))


def kvproxy_available() -> bool:
    """Return whether this checkout has the kvproxy twistd plugin's tap module yet."""
    return os.path.exists(os.path.join(ROOT, "kvtwist", "proxy", "tap.py"))


class Server:
    """One child process listening on 127.0.0.1:port; use as a context manager."""

    def __init__(self, label: str, argv: list, port: int, workdir: str, ready_timeout=60.0):
        self.label = label
        self.argv = argv
        self.port = port
        self.workdir = workdir
        self.ready_timeout = ready_timeout
        self.proc = None
        self.ready_after = None
        self.auth = ()  # the redis-benchmark arguments that log in (-a, --user)

    def start(self) -> float:
        """Start the child and return the seconds until it answered PING with +PONG."""
        log = open(os.path.join(self.workdir, "%s-%d.out" % (_slug(self.label), self.port)), "ab")
        try:
            began = time.monotonic()
            self.proc = subprocess.Popen(self.argv, stdout=log, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL, cwd=self.workdir,
                                         env=child_env())
        finally:
            log.close()
        wait_for_pong(self.port, self.ready_timeout, self.proc)
        self.ready_after = time.monotonic() - began
        return self.ready_after

    def stop(self, timeout: float = 15.0) -> None:
        """Stop the child by its PID: SIGTERM, then SIGKILL after ``timeout`` seconds."""
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def __enter__(self):
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc):
        self.stop()


def _slug(label: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in label)


def wait_for_pong(port: int, timeout: float, proc=None) -> None:
    """Return once 127.0.0.1:port answers a RESP PING with +PONG (or, with a password
    set, with -NOAUTH: it is serving).

    Raises ServerError if ``proc`` exits first or ``timeout`` seconds pass.
    """
    deadline = time.monotonic() + timeout
    while True:
        if proc is not None and proc.poll() is not None:
            raise ServerError("server exited with status %s before answering PING"
                              % (proc.returncode,))
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=2.0) as sock:
                sock.sendall(b"*1\r\n$4\r\nPING\r\n")
                if _read_line(sock) in (b"+PONG", _NOAUTH):
                    return
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise ServerError("no PONG from 127.0.0.1:%d within %.0fs" % (port, timeout))
        time.sleep(0.01)


_NOAUTH = b"-NOAUTH Authentication required."


def _read_line(sock) -> bytes:
    data = b""
    while not data.endswith(b"\r\n"):
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    return data.split(b"\r\n", 1)[0]


def command(port: int, *args) -> bytes:
    """Send one RESP command to 127.0.0.1:port and return the raw first reply line."""
    with socket.create_connection(("127.0.0.1", port), timeout=30.0) as sock:
        sock.sendall(encode(args))
        return _read_line(sock)


def info_field(port: int, name: str) -> int:
    """Return an integer field of redis-server's INFO (e.g. ``used_memory``)."""
    with socket.create_connection(("127.0.0.1", port), timeout=30.0) as sock:
        sock.sendall(encode(("INFO", "memory")))
        data = b""
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
            header, _, body = data.partition(b"\r\n")
            if header.startswith(b"$") and len(body) >= int(header[1:]):
                break
    for line in data.split(b"\r\n"):
        if line.startswith(name.encode() + b":"):
            return int(line.split(b":", 1)[1])
    raise ServerError("INFO has no field %s" % (name,))


def encode(args) -> bytes:
    """Return one RESP multibulk request for ``args`` (bytes or str items)."""
    parts = [b"*%d\r\n" % len(args)]
    for arg in args:
        if isinstance(arg, str):
            arg = arg.encode()
        parts.append(b"$%d\r\n%s\r\n" % (len(arg), arg))
    return b"".join(parts)


def bulk_load(port: int, count: int, key_format: bytes, value_format: bytes,
              batch: int = 10000, timeout: float = 300.0) -> float:
    """SET ``count`` keys (``key_format % i`` -> ``value_format % i``, or ``value_format``
    itself when it has no ``%``) over one pipelined RESP connection, a batch at a time;
    return the seconds it took.

    Raises ServerError on any reply other than +OK.
    """
    began = time.monotonic()
    fixed = b"%" not in value_format
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        for first in range(0, count, batch):
            last = min(count, first + batch)
            sock.sendall(b"".join(
                b"*3\r\n$3\r\nSET\r\n$%d\r\n%s\r\n$%d\r\n%s\r\n" % (
                    len(key), key, len(value), value)
                for key, value in ((key_format % i, value_format if fixed else
                                    value_format % i) for i in range(first, last))))
            want = (last - first) * 5
            got = []
            have = 0
            while have < want:
                chunk = sock.recv(min(1 << 20, want - have))
                if not chunk:
                    raise ServerError("server closed the connection during the load")
                got.append(chunk)
                have += len(chunk)
            replies = b"".join(got)
            if replies != b"+OK\r\n" * (last - first):
                raise ServerError("unexpected reply during load: %r" % (replies[:80],))
    return time.monotonic() - began


def rss_bytes(pid: int) -> int:
    """Return the resident set size of process ``pid`` from /proc/PID/status."""
    with open("/proc/%d/status" % pid) as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise ServerError("no VmRSS for pid %d" % pid)


def parse_stat_times(text: str, ticks: int) -> tuple:
    """Return ``(user, system)`` seconds from the text of a /proc/PID/stat file."""
    # The command name (field 2) is in parentheses and may hold spaces or ")": fields are
    # counted from the last ")".
    fields = text[text.rindex(")") + 2:].split()
    return int(fields[11]) / ticks, int(fields[12]) / ticks


def cpu_seconds(pid: int) -> dict:
    """Return ``{pid: (user, system)}`` CPU seconds of ``pid`` (all its threads) and its children.

    A process that is gone, or whose files cannot be read, is left out.
    """
    ticks = os.sysconf("SC_CLK_TCK")
    found = {}
    try:
        with open("/proc/%d/stat" % pid) as stat:
            found[pid] = parse_stat_times(stat.read(), ticks)
        children = []
        for task in os.listdir("/proc/%d/task" % pid):
            with open("/proc/%d/task/%s/children" % (pid, task)) as listed:
                children.extend(int(child) for child in listed.read().split())
    except (OSError, ValueError):
        return found
    for child in children:
        try:
            with open("/proc/%d/stat" % child) as stat:
                found[child] = parse_stat_times(stat.read(), ticks)
        except (OSError, ValueError):
            pass
    return found


# ``python -m twisted`` is the newer ``twist`` runner, which has no -n/--pidfile/--logfile;
# this runs ``twistd`` itself under whichever interpreter is given.
TWISTD = "from twisted.scripts.twistd import run; run()"


def kvstore_argv(python: str, port: int, data_dir: str, fsync: str, log: str,
                 extra=()) -> list:
    """Return the argv that runs ``twistd kvstore`` under ``python`` on 127.0.0.1:port."""
    return [python, "-c", TWISTD, "-n", "--pidfile", "", "--logfile", log, "kvstore",
            "--listen", "tcp:%d:interface=127.0.0.1" % port, "--data", data_dir,
            "--fsync", fsync] + list(extra)


def kvproxy_argv(python: str, port: int, backend: int, log: str) -> list:
    """Return the argv that runs ``twistd kvproxy`` on 127.0.0.1:port in front of ``backend``."""
    return [python, "-c", TWISTD, "-n", "--pidfile", "", "--logfile", log, "kvproxy",
            "--listen", "tcp:%d:interface=127.0.0.1" % port,
            "--backend", "tcp:127.0.0.1:%d" % backend]


def redis_argv(port: int, workdir: str, appendfsync=None) -> list:
    """Return the redis-server argv; ``appendfsync`` None means no persistence at all."""
    argv = ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
            "--dir", workdir, "--daemonize", "no"]
    if appendfsync is None:
        return argv + ["--appendonly", "no"]
    return argv + ["--appendonly", "yes", "--appendfsync", appendfsync]


def ceiling_argv(python: str, port: int) -> list:
    """Return the argv that runs the Twisted ceiling server under ``python``."""
    return [python, os.path.join(ROOT, "benchmarks", "ceiling.py"), "--port", str(port)]


def nutcracker_config(path: str, port: int, backend: int) -> list:
    """Write a twemproxy YAML config for one Redis backend to ``path``; return its argv."""
    with open(path, "w") as config:
        config.write("bench:\n  listen: 127.0.0.1:%d\n  redis: true\n  hash: fnv1a_64\n"
                     "  distribution: ketama\n  auto_eject_hosts: false\n"
                     "  servers:\n   - 127.0.0.1:%d:1\n" % (port, backend))
    return [shutil.which("nutcracker") or "/usr/sbin/nutcracker", "-c", path,
            "-s", str(free_port()), "-a", "127.0.0.1"]
