"""Run Redis's own test suite (7.0.15) against a fresh kvstore and a fresh redis-server per
test file and mode, and compare kvstore's passes with redis-server's (stdlib only).

Modes: ``singledb`` and ``multidb`` run the helper against a server the runner starts
(``--host``/``--port``, with and without ``--singledb``); ``own`` runs the files tagged
``external:skip`` the way the suite runs by itself: its harness starts ``src/redis-server
CONFIGFILE`` for every ``start_server`` block, where src/redis-server is the real one or, for
kvstore, a script running tests/redis_suite/launcher.py.

With ``--through-proxy redis|kvstore`` (``proxied``) the candidate is ``twistd kvproxy
--backend`` in front of a redis-server or a kvstore the runner starts for the run, still
compared with redis-server directly: a client should not tell kvproxy from its backend.

Every (file, mode, server) run is independent: its own copy of the patched suite, its own
server(s) on its own loopback ports with their own data directories, its own helper process
group, all stopped by PID (or process group) when the run ends, fails or is interrupted.
"""

from __future__ import annotations

import functools
import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from typing import List, Optional, Tuple

from tests.procs import ROOT, TwistdProcess, twistd_command
from tests.redis_suite.proxied import (  # noqa: F401 (the runner's names for them)
    DEFAULT_PROXY_ARGS, PROXIED_BACKENDS, PROXY, Proxied, proxied, proxy_command)
from tests.redis_suite.results import FileRun, parse_output

FILES = [
    "unit/type/string", "unit/type/incr", "unit/expire", "unit/keyspace", "unit/protocol",
    "unit/quit", "unit/multi", "unit/info-command", "unit/info", "unit/scan", "unit/pubsub",
    "unit/tracking", "unit/introspection", "unit/introspection-2", "unit/querybuf", "unit/dump",
    "unit/other", "unit/type/hash", "unit/type/list", "unit/type/list-2", "unit/type/list-3",
    "unit/type/set", "unit/type/zset", "unit/type/stream", "unit/sort",
]
# Files that start their own servers (tagged external:skip): they run in the own mode only.
OWN_FILES = ["unit/auth", "unit/acl", "unit/acl-v2", "unit/limits", "unit/maxmemory",
             "unit/obuf-limits"]
OWN = "own"
MODES = ["singledb", "multidb", OWN]
# An own-mode helper's ports: its own (the first), then OWN_SERVER_PORTS for its servers 32
# further on (the harness looks for its own port in the 32 below --baseport).
OWN_SERVER_PORTS = 8
# Own-mode tests that start a replica (SLAVEOF) without the needs:repl tag in 7.0.15: left out
# for both servers as the tagged ones are (the first two take 40 s or more under load).
OWN_SKIP = ["slave buffer are counted correctly", "replica buffer don't induce eviction",
            "MASTERAUTH test with binary password"]
OWN_BLOCK = 32 + OWN_SERVER_PORTS
DEFAULT_KVSTORE_ARGS = "--inline-replies resp"
# Tests that need a replica or DEBUG are left out for both servers.
TAGS = ["--tags", "-needs:repl", "--tags", "-needs:debug"]
FLUSH_LINE = "    r function flush\n"


def prepare_suite(source: str, scratch: str) -> str:
    """Copy the suite into ``scratch`` and wrap its ``r function flush`` (kvstore may refuse
    FUNCTION) in catch; return the copy's directory. The source is never modified."""
    copy = os.path.join(scratch, "redis-tests")
    shutil.copytree(source, copy)
    path = os.path.join(copy, "tests", "support", "server.tcl")
    with open(path) as handle:
        text = handle.read()
    if text.count(FLUSH_LINE) != 1:
        raise SystemExit("%s: expected one %r line to patch" % (path, FLUSH_LINE.strip()))
    with open(path, "w") as handle:
        handle.write(text.replace(FLUSH_LINE, "    catch {r function flush}\n"))
    return copy


class Ports:
    """Hands out loopback ports from [low, high] that this runner is not using and that can be
    bound right now (the helper also binds port + 10000 for its own listener)."""

    def __init__(self, low: int, high: int) -> None:
        self.low, self.high = low, high
        self.taken = set()
        self.lock = threading.Lock()

    @staticmethod
    def bindable(port: int) -> bool:
        probe = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            probe.bind(("127.0.0.1", port))
            return True
        except OSError:
            return False
        finally:
            probe.close()

    def take(self, helper: bool = False, count: int = 1) -> int:
        """The first of ``count`` consecutive ports none of which this runner hands out now,
        the first bindable right now (with ``helper``, its port + 10000 too); O(range x
        count)."""
        with self.lock:
            for port in range(self.low, self.high - count + 2):
                if any(each in self.taken for each in range(port, port + count)):
                    continue
                if not self.bindable(port) or (helper and not self.bindable(port + 10000)):
                    continue
                self.taken.update(range(port, port + count))
                return port
        raise RuntimeError("no %d free port(s) in %d-%d" % (count, self.low, self.high))

    def give_back(self, port: int, count: int = 1) -> None:
        with self.lock:
            self.taken.difference_update(range(port, port + count))


def pairs_to_run(files: List[str], modes: List[str]) -> List[Tuple[str, str]]:
    """(mode, file) pairs in mode order: a file of OWN_FILES runs in the own mode only, one of
    FILES in the other modes only, any other file named in every mode asked for."""
    def fits(mode: str, file: str) -> bool:
        if file in OWN_FILES:
            return mode == OWN
        return mode != OWN or file not in FILES

    return [(mode, file) for mode in modes for file in files if fits(mode, file)]


LAUNCHER = """#!/bin/sh
# kvstore in place of redis-server for Redis's own-server tests (tests/redis_suite/launcher.py).
# Written by tests/redis_suite/runner.py; exec keeps the PID the harness started.
PYTHONPATH=%(root)s${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1 exec %(python)s -c %(code)s \\
    %(args)s -- "$@"
"""
LAUNCHER_CODE = ("import sys; sys.path.insert(0, %r); from tests.redis_suite.launcher import "
                 "main; sys.exit(main())")
TOOLS = ("redis-server", "redis-cli", "redis-benchmark")


def install_servers(copy: str, server: str, args: List[str]) -> None:
    """Give the suite copy a src/ the harness runs: redis-cli and redis-benchmark link to the
    real ones; src/redis-server to the real one too, or for kvstore the launcher script
    (running this checkout's kvstore under this interpreter with ``args``)."""
    src = os.path.join(copy, "src")
    os.makedirs(src, exist_ok=True)
    for tool in TOOLS:
        path = shutil.which(tool)
        target = os.path.join(src, tool)
        if tool == "redis-server" and server == "kvstore":
            with open(target, "w") as handle:
                handle.write(LAUNCHER % {
                    "root": shlex.quote(ROOT), "python": shlex.quote(sys.executable),
                    "code": shlex.quote(LAUNCHER_CODE % (ROOT,)),
                    "args": " ".join(shlex.quote(arg) for arg in args)})
            os.chmod(target, 0o755)
        elif path is not None:
            os.symlink(os.path.realpath(path), target)


class Processes:
    """The child processes alive now, so that an interrupt stops them all by PID."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.live = {}  # pid -> (process, is a process group leader)
        self.stopping = False

    def add(self, process, group: bool = False) -> None:
        with self.lock:
            if self.stopping:
                _kill(process, group)
                raise KeyboardInterrupt("stopping")
            self.live[process.pid] = (process, group)

    def remove(self, process) -> None:
        with self.lock:
            self.live.pop(process.pid, None)

    def stop_all(self) -> None:
        with self.lock:
            self.stopping = True
            live = list(self.live.values())
            self.live.clear()
        for process, group in live:
            _kill(process, group)


def _kill(process, group: bool) -> None:
    """SIGKILL a Popen we started (its whole process group when it leads one) and reap it."""
    if process.poll() is None:
        try:
            if group:
                os.killpg(process.pid, signal.SIGKILL)
            else:
                os.kill(process.pid, signal.SIGKILL)
        except OSError:
            pass
    try:
        process.wait(10)
    except subprocess.TimeoutExpired:
        pass


@functools.lru_cache(maxsize=None)
@functools.lru_cache(maxsize=None)
def kvstore_accepts(option: str) -> bool:
    """Whether this checkout's ``twistd kvstore`` knows ``option`` (from its --help, asked
    once per process)."""
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    done = subprocess.run(twistd_command() + ["kvstore", "--help"], cwd=ROOT, env=env,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=120)
    return option.encode() in done.stdout


def drop_option(args: List[str], option: str) -> List[str]:
    """``args`` without ``option`` and its value (``--opt value`` or ``--opt=value``)."""
    kept, skip = [], False
    for arg in args:
        if skip:
            skip = False
        elif arg == option:
            skip = True
        elif not arg.startswith(option + "="):
            kept.append(arg)
    return kept


class Job:
    """One run of the helper on one test file, in one mode, against one server."""

    def __init__(self, server: str, file: str, mode: str, attempt: int = 1) -> None:
        self.server, self.file, self.mode, self.attempt = server, file, mode, attempt

    @property
    def label(self) -> str:
        return "%s-%s-%s-%d" % (self.mode, self.file.replace("/", "_"), self.server, self.attempt)


class LoggedServer:
    """A server we started (redis-server), its log read by a thread (``log``), so that its
    start is awaited on its "Ready to accept connections" line rather than by polling."""

    READY = b"Ready to accept connections"

    def __init__(self, command: List[str], cwd: str) -> None:
        self.process = subprocess.Popen(command, cwd=cwd, stdin=subprocess.DEVNULL,
                                        stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        self.lines: List[bytes] = []
        self.changed = threading.Condition()
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        for line in iter(self.process.stdout.readline, b""):
            with self.changed:
                self.lines.append(line)
                self.changed.notify_all()
        with self.changed:
            self.lines.append(b"")  # the end of the log
            self.changed.notify_all()

    @property
    def log(self) -> str:
        return b"".join(self.lines).decode("utf-8", "replace")

    def ready(self) -> bool:
        return any(self.READY in line for line in self.lines)

    def wait_ready(self, seconds: float = 30.0) -> None:
        """Wait (on the reader's condition, no polling) until the server logs that it accepts
        connections; RuntimeError if it exits or is silent for ``seconds``."""
        with self.changed:
            self.changed.wait_for(lambda: self.ready() or (self.lines and not self.lines[-1]),
                                  seconds)
            if self.ready():
                return
        raise RuntimeError("the server %s:\n%s" % (
            "exited" if self.lines and not self.lines[-1] else
            "not ready after %.0f s" % (seconds,), self.log))

    def close(self) -> None:
        """After the process has ended: let the reader reach the end of the log."""
        self.reader.join(10)
        self.process.stdout.close()


class Runner:
    """Runs jobs: settings shared by all of them, and the processes alive now."""

    def __init__(self, suite: str, scratch: str, kvstore_args: List[str], ports: Ports,
                 helper_timeout: int, file_timeout: float, log=print,
                 proxy_args: Optional[List[str]] = None) -> None:
        self.suite, self.scratch = suite, scratch
        self.kvstore_args = kvstore_args
        self.proxy_args = shlex.split(DEFAULT_PROXY_ARGS) if proxy_args is None else proxy_args
        self.ports = ports
        self.helper_timeout, self.file_timeout = helper_timeout, file_timeout
        self.processes = Processes()
        self.log = log

    def run(self, job: Job) -> FileRun:
        """Run a job from a fresh copy of the suite and a fresh server; never raises for a
        server or helper failure (it becomes the FileRun's ``aborted``)."""
        started = time.monotonic()
        run = self._run(job)
        run.seconds = time.monotonic() - started
        passed = len(run.passed())
        self.log("  %-7s %-8s %-20s %3d passed %4.0f s%s" % (
            job.server, job.mode, job.file, passed, run.seconds,
            " (%s)" % (run.aborted,) if run.aborted else ""))
        return run

    def _run(self, job: Job) -> FileRun:
        where = os.path.join(self.scratch, job.label)
        os.makedirs(where)
        copy = os.path.join(where, "redis-tests")
        shutil.copytree(self.suite, copy)
        if job.mode == OWN:  # the harness starts (and stops) the servers itself
            install_servers(copy, job.server, self.kvstore_args)
            return self._helper(job, None, copy, where)
        port = self.ports.take()
        server = None
        try:
            try:
                server = self._start(job.server, port, where)
            except KeyboardInterrupt:
                raise
            except Exception as error:  # the server did not come up: no test ran
                run = FileRun(job.file, job.mode)
                run.aborted = "%s did not start: %s" % (job.server, str(error).splitlines()[0])
                return run
            run = self._helper(job, port, copy, where)
            if server.process.poll() is not None and not run.aborted and not run.finished:
                run.aborted = "%s exited with status %s" % (job.server, server.process.returncode)
            return run
        finally:
            if server is not None:
                self._stop_server(server)
                self._write(where, "%s.log" % (job.server,), server.log)
            self.ports.give_back(port)

    def _stop_server(self, server) -> None:
        """Stop a server _start started (kvproxy first, then its backend)."""
        self._stop(server.process)
        if isinstance(server, LoggedServer):
            server.close()
        if isinstance(server, Proxied):
            try:
                self._stop_server(server.backend)
            finally:
                self.ports.give_back(server.backend_port)

    def _start(self, kind: str, port: int, where: str):
        if kind.startswith(PROXY):
            return self._start_proxied(kind[len(PROXY):], port, where)
        if kind == "kvstore":
            data = os.path.join(where, "data")
            args = ["--listen", "tcp:%d:interface=127.0.0.1" % (port,), "--data", data]
            process = TwistdProcess("kvstore", args + self.kvstore_args, cwd=where)
            self.processes.add(process.process)
            try:
                process.wait_for_ports(1, timeout=60)
            except RuntimeError:
                self._write(where, "kvstore.log", process.log)
                raise
            return process
        server = LoggedServer(
            ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--daemonize", "no", "--dir", where], cwd=where)
        self.processes.add(server.process)
        try:
            server.wait_ready()
        except RuntimeError:
            self._stop(server.process)
            server.close()
            self._write(where, "redis.log", server.log)
            raise
        return server

    def _start_proxied(self, backend_kind: str, port: int, where: str) -> Proxied:
        """Start the backend on a port of its own, then kvproxy on ``port`` in front of it."""
        backend_port = self.ports.take()
        try:
            backend = self._start(backend_kind, backend_port, where)
        except BaseException:
            self.ports.give_back(backend_port)
            raise
        proxy = None
        try:
            proxy = TwistdProcess("kvproxy", proxy_command(port, backend_port,
                                                           self.proxy_args), cwd=where)
            self.processes.add(proxy.process)
            proxy.wait_for_ports(1, timeout=60)
        except BaseException:  # wait_for_ports stopped kvproxy
            if proxy is not None:
                self._stop(proxy.process)
                self._write(where, "kvproxy.log", proxy.log)
            try:
                self._stop_server(backend)
            finally:
                self.ports.give_back(backend_port)
            raise
        return Proxied(proxy, backend, backend_port)

    def _stop(self, process) -> None:
        """SIGTERM the server by PID, SIGKILL it if it lingers, reap it."""
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                _kill(process, False)
        self.processes.remove(process)

    @staticmethod
    def _write(where: str, name: str, text: str) -> None:
        """Keep a log in the job's directory (a directory gone meanwhile loses it)."""
        if text:
            try:
                with open(os.path.join(where, name), "w") as handle:
                    handle.write(text)
            except OSError:
                pass

    def _helper(self, job: Job, port: Optional[int], copy: str, where: str) -> FileRun:
        """Run tclsh test_helper.tcl for the job's file in its own process group (with the
        servers an own-mode harness starts), killed as a group after ``file_timeout`` seconds
        of wall-clock time."""
        count = OWN_BLOCK if job.mode == OWN else 1
        base = self.ports.take(helper=True, count=count)
        command = helper_command(job, port, base, self.helper_timeout)
        output_path = os.path.join(where, "helper.out")
        env = dict(os.environ, TERM="dumb")
        timed_out = False
        try:
            with open(output_path, "wb") as output:
                helper = subprocess.Popen(command, cwd=copy, env=env, stdin=subprocess.DEVNULL,
                                          stdout=output, stderr=subprocess.STDOUT,
                                          start_new_session=True)
                self.processes.add(helper, group=True)
                try:
                    helper.wait(self.file_timeout)
                except subprocess.TimeoutExpired:
                    timed_out = True
                # The helper's test client is a second tclsh in the same group.
                _kill(helper, True)
                self.processes.remove(helper)
        finally:
            self.ports.give_back(base, count)
        with open(output_path, errors="replace") as handle:
            run = parse_output(handle.read(), job.file, job.mode)
        if timed_out:
            run.aborted = run.aborted or ("killed after %.0f s (wall-clock limit)"
                                          % (self.file_timeout,))
        elif not run.finished and not run.aborted:
            run.aborted = "the helper exited with status %s before the file ended" % (
                helper.returncode,)
        return run


def helper_command(job: Job, port: Optional[int], base: int, timeout: int) -> List[str]:
    """tclsh's argv for a job: against the server on ``port``, or (own mode) one test client
    starting servers on ports base + 32 .. base + 32 + OWN_SERVER_PORTS - 1; the helper's own
    port is ``base``."""
    command = ["tclsh", "tests/test_helper.tcl"]
    if job.mode == OWN:
        command += ["--clients", "1", "--dont-clean"]  # servers' logs stay in the scratch
        for name in OWN_SKIP:
            command += ["--skiptest", name]
    else:
        command += ["--host", "127.0.0.1", "--port", str(port)]
        command += ["--singledb"] if job.mode == "singledb" else []
    command += ["--single", job.file, "--durable", "--timeout", str(timeout),
                "--baseport", str(base + 32),
                "--portcount", str(OWN_SERVER_PORTS if job.mode == OWN else 1)]
    return command + TAGS


def kvstore_args(text: Optional[str], log=print) -> List[str]:
    """The extra kvstore arguments, without --inline-replies when this kvstore lacks it."""
    args = shlex.split(DEFAULT_KVSTORE_ARGS if text is None else text)
    if "--inline-replies" in " ".join(args) and not kvstore_accepts("--inline-replies"):
        log("note: this kvstore has no --inline-replies option; running without it")
        args = drop_option(args, "--inline-replies")
    return args


def tool_check() -> None:
    """Stop early, with the reason, when tclsh or redis-server is missing."""
    for tool in ("tclsh", "redis-server"):
        if shutil.which(tool) is None:
            raise SystemExit("%s not found on PATH (apt-get install tcl redis-server)" % (tool,))
    if sys.platform != "linux" and not hasattr(os, "killpg"):
        raise SystemExit("needs a POSIX system (process groups)")
