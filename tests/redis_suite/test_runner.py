"""Tests of the runner's pieces: the patched copy, ports, kvstore options, the own mode's
servers and helper command, the awaited server start and the hard timeout."""

from __future__ import annotations

import os
import select
import shutil
import socket
import sys
import tempfile
import time
from unittest import skipIf

from twisted.trial.unittest import SynchronousTestCase

from tests.procs import ROOT, free_port
from tests.redis_suite.runner import (
    DEFAULT_KVSTORE_ARGS, FILES, OWN, OWN_BLOCK, OWN_FILES, OWN_SERVER_PORTS, OWN_SKIP, TAGS,
    Job, LoggedServer, Ports, Proxied, Runner, drop_option, helper_command, install_servers,
    kvstore_accepts, kvstore_args, pairs_to_run, prepare_suite)

SERVER_TCL = "proc start {} {\n    r flushall\n    r function flush\n}\n"


def make_suite(root: str, helper: str = "puts hello\n") -> str:
    """A fake suite tree under ``root`` with the given test_helper.tcl."""
    source = os.path.join(root, "source")
    os.makedirs(os.path.join(source, "tests", "support"))
    with open(os.path.join(source, "tests", "support", "server.tcl"), "w") as handle:
        handle.write(SERVER_TCL)
    with open(os.path.join(source, "tests", "test_helper.tcl"), "w") as handle:
        handle.write(helper)
    return source


class PrepareSuiteTests(SynchronousTestCase):
    def setUp(self):
        self.root = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, self.root)

    def test_patched_copy(self):
        """The copy's FUNCTION FLUSH is wrapped in catch; the source is left as it was."""
        source = make_suite(self.root)
        copy = prepare_suite(source, os.path.join(self.root, "scratch"))
        with open(os.path.join(copy, "tests", "support", "server.tcl")) as handle:
            self.assertEqual(handle.read(), SERVER_TCL.replace(
                "r function flush", "catch {r function flush}"))
        with open(os.path.join(source, "tests", "support", "server.tcl")) as handle:
            self.assertEqual(handle.read(), SERVER_TCL)

    def test_unexpected_server_tcl(self):
        """A server.tcl without exactly one FUNCTION FLUSH line stops the run."""
        source = make_suite(self.root)
        with open(os.path.join(source, "tests", "support", "server.tcl"), "w") as handle:
            handle.write("proc start {} {}\n")
        self.assertRaises(SystemExit, prepare_suite, source, os.path.join(self.root, "s"))


class OptionTests(SynchronousTestCase):
    def test_drop_option(self):
        """An option is removed with its value, in both spellings."""
        self.assertEqual(drop_option(["--inline-replies", "resp", "--fsync", "no"],
                                     "--inline-replies"), ["--fsync", "no"])
        self.assertEqual(drop_option(["--inline-replies=resp", "-x"], "--inline-replies"),
                         ["-x"])

    def test_inline_replies_detection(self):
        """The default --inline-replies is kept exactly when this kvstore's --help lists it."""
        notes = []
        args = kvstore_args(None, log=notes.append)
        if kvstore_accepts("--inline-replies"):
            self.assertEqual(args, DEFAULT_KVSTORE_ARGS.split())
            self.assertEqual(notes, [])
        else:
            self.assertEqual(args, [])
            self.assertEqual(len(notes), 1)
        self.assertEqual(kvstore_args("--fsync no", log=notes.append), ["--fsync", "no"])


def free_block(count: int) -> int:
    """The first of ``count`` consecutive loopback ports all free now, drawn below the
    ephemeral range as free_port draws (where other tests' connections take none)."""
    for _ in range(200):
        low = free_port(count - 1)
        if all(Ports.bindable(port) for port in range(low, low + count)):
            return low
    raise RuntimeError("no %d consecutive free ports" % (count,))


class PortsTests(SynchronousTestCase):
    def test_take_skips_busy_and_taken(self):
        """A port already handed out or bound by someone else is not handed out."""
        port = free_block(2)
        busy = socket.socket()
        busy.bind(("127.0.0.1", port))
        self.addCleanup(busy.close)
        ports = Ports(port, port + 1)
        self.assertEqual(ports.take(), port + 1)
        self.assertRaises(RuntimeError, ports.take)
        ports.give_back(port + 1)
        self.assertEqual(ports.take(), port + 1)


class PortBlockTests(SynchronousTestCase):
    def test_block(self):
        """A block of ports is handed out whole, never overlapping ports taken, and given
        back whole."""
        low = free_block(6)
        ports = Ports(low, low + 5)
        self.assertEqual(ports.take(), low)
        self.assertEqual(ports.take(count=3), low + 1)
        self.assertRaises(RuntimeError, ports.take, count=3)
        ports.give_back(low + 1, 3)
        ports.give_back(low)
        self.assertEqual(ports.take(count=6), low)


class OwnModeTests(SynchronousTestCase):
    def test_pairs(self):
        """Own-server files run in the own mode only, the other listed files in the external
        modes only, and a file in neither list in every mode asked for."""
        self.assertEqual(pairs_to_run(["unit/quit", "unit/acl", "unit/new"],
                                      ["singledb", "own"]),
                         [("singledb", "unit/quit"), ("singledb", "unit/new"),
                          ("own", "unit/acl"), ("own", "unit/new")])
        self.assertFalse(set(FILES) & set(OWN_FILES))

    def test_helper_command(self):
        """Own mode runs one test client starting its servers 32 ports above the helper's own
        port, the replica tests left out; the external modes name the server, with
        --singledb in singledb."""
        own = helper_command(Job("kvstore", "unit/acl", OWN), None, 16100, 60)
        self.assertEqual(own[:5], ["tclsh", "tests/test_helper.tcl", "--clients", "1",
                                   "--dont-clean"])
        self.assertEqual(own[own.index("--baseport") + 1], "16132")
        self.assertEqual(own[own.index("--portcount") + 1], str(OWN_SERVER_PORTS))
        self.assertEqual(OWN_BLOCK, 32 + OWN_SERVER_PORTS)
        self.assertNotIn("--host", own)
        self.assertEqual(own.count("--skiptest"), len(OWN_SKIP))
        self.assertEqual(own[-len(TAGS):], TAGS)
        single = helper_command(Job("redis", "unit/quit", "singledb"), 7000, 16100, 60)
        self.assertEqual(single[2:7], ["--host", "127.0.0.1", "--port", "7000", "--singledb"])
        self.assertEqual(single[single.index("--portcount") + 1], "1")
        multi = helper_command(Job("redis", "unit/quit", "multidb"), 7000, 16100, 60)
        self.assertNotIn("--singledb", multi)

    def test_install_redis(self):
        """For redis-server runs src/ links to the real redis-server and redis-cli."""
        root = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, root)
        install_servers(root, "redis", [])
        for tool in ("redis-server", "redis-cli"):
            if shutil.which(tool):
                self.assertEqual(os.path.realpath(os.path.join(root, "src", tool)),
                                 os.path.realpath(shutil.which(tool)))

    def test_install_kvstore(self):
        """For kvstore runs src/redis-server is an executable script that execs the launcher
        from this checkout under this interpreter, with the runner's kvstore options."""
        root = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, root)
        install_servers(root, "kvstore", ["--inline-replies", "resp"])
        path = os.path.join(root, "src", "redis-server")
        self.assertFalse(os.path.islink(path))
        self.assertTrue(os.access(path, os.X_OK))
        with open(path) as handle:
            text = handle.read()
        self.assertTrue(text.startswith("#!/bin/sh\n"))
        for part in (" exec " + sys.executable, "tests.redis_suite.launcher", ROOT,
                     '--inline-replies resp -- "$@"'):
            self.assertIn(part, text)


class ThroughProxyTests(SynchronousTestCase):
    @skipIf(shutil.which("redis-server") is None, "needs redis-server")
    def test_proxy_in_front_of_redis(self):
        """The runner starts redis-server and kvproxy in front of it, which answers for it;
        stopping the pair stops both and gives the backend's port back."""
        root = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, root)
        probe = socket.socket()
        probe.bind(("127.0.0.1", 0))
        low = probe.getsockname()[1]
        probe.close()
        ports = Ports(low, min(low + 20, 65535))
        runner = Runner(root, root, [], ports, 60, 60.0, log=lambda text: None)
        self.addCleanup(runner.processes.stop_all)
        port = ports.take()
        server = runner._start("kvproxy-redis", port, root)
        self.assertIsInstance(server, Proxied)
        with socket.create_connection(("127.0.0.1", port), 10) as client:
            client.sendall(b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\nv\r\n")
            self.assertEqual(_read_line(client), b"+OK\r\n")
        with socket.create_connection(("127.0.0.1", server.backend_port), 10) as client:
            client.sendall(b"*2\r\n$3\r\nGET\r\n$1\r\nk\r\n")
            self.assertEqual(_read_line(client), b"$1\r\n")
        backend = server.backend.process
        runner._stop_server(server)
        self.assertIsNotNone(server.process.poll())
        self.assertIsNotNone(backend.poll())
        self.assertEqual(ports.taken, {port})
        self.assertIn("=== kvproxy", server.log)


def _read_line(client) -> bytes:
    data = b""
    while not data.endswith(b"\r\n"):
        more = client.recv(1)
        if not more:
            break
        data += more
    return data


class LoggedServerTests(SynchronousTestCase):
    def test_ready_line(self):
        """The start is awaited on the server's ready line, its log kept."""
        server = LoggedServer(["sh", "-c", "echo starting; echo '* Ready to accept "
                                           "connections'; exec cat"], cwd=ROOT)
        self.addCleanup(server.close)
        self.addCleanup(server.process.wait)
        self.addCleanup(server.process.kill)
        server.wait_ready(30)
        self.assertIn("starting\n", server.log)

    def test_exit_before_ready(self):
        """A server exiting before it is ready is a RuntimeError with its log."""
        server = LoggedServer(["sh", "-c", "echo cannot bind; exit 1"], cwd=ROOT)
        self.addCleanup(server.close)
        error = self.assertRaises(RuntimeError, server.wait_ready, 30)
        self.assertIn("exited", str(error))
        self.assertIn("cannot bind", str(error))
        self.assertEqual(server.process.wait(), 1)


@skipIf(shutil.which("tclsh") is None, "needs tclsh")
class HardTimeoutTests(SynchronousTestCase):
    def test_hung_helper_is_killed(self):
        """A helper (and the child it started) running past the wall-clock limit is killed
        and the file counts as aborted."""
        root = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, root)
        helper = ("set child [exec tclsh << {after 60000} &]\n"
                  "set f [open child.pid w]; puts $f $child; close $f\n"
                  "puts {[ok]: first (1 ms)}; flush stdout\nafter 60000\n")
        suite = make_suite(root, helper)
        runner = Runner(suite, root, [], Ports(1, 1), 60, 1.0, log=lambda text: None)
        runner.ports = _FixedPorts()
        where = os.path.join(root, "job")
        os.makedirs(where)
        run = runner._helper(Job("redis", "unit/x", "singledb"), 1, suite, where)
        self.assertEqual(list(run.results), ["first"])
        self.assertIn("wall-clock", run.aborted)
        with open(os.path.join(suite, "child.pid")) as handle:
            child = int(handle.read())
        # SIGKILL is sent by then; the kernel may take a moment to end the process.
        deadline = time.monotonic() + 10
        while os.path.exists("/proc/%d" % (child,)) and _alive(child):
            self.assertLess(time.monotonic(), deadline, "the helper's child outlived it")
            select.select([], [], [], 0.05)
        self.assertEqual(runner.processes.live, {})


def _alive(pid: int) -> bool:
    with open("/proc/%d/stat" % (pid,)) as stat:
        return stat.read().rpartition(")")[2].split()[0] != "Z"


class _FixedPorts:
    def take(self, helper=False, count=1):
        return 20000

    def give_back(self, port, count=1):
        pass
