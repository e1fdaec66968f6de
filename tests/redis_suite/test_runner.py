"""Tests of the runner's pieces: the patched copy, ports, kvstore options and the hard timeout."""

from __future__ import annotations

import os
import shutil
import socket
import tempfile
from unittest import skipIf

from twisted.trial.unittest import SynchronousTestCase

from tests.redis_suite.runner import (
    DEFAULT_KVSTORE_ARGS, Job, Ports, Runner, drop_option, kvstore_accepts, kvstore_args,
    prepare_suite)

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


class PortsTests(SynchronousTestCase):
    def test_take_skips_busy_and_taken(self):
        """A port already handed out or bound by someone else is not handed out."""
        busy = socket.socket()
        busy.bind(("127.0.0.1", 0))
        self.addCleanup(busy.close)
        port = busy.getsockname()[1]
        if port + 1 > 65535 or not Ports.bindable(port + 1):
            self.skipTest("the neighbouring port is busy")
        ports = Ports(port, port + 1)
        self.assertEqual(ports.take(), port + 1)
        self.assertRaises(RuntimeError, ports.take)
        ports.give_back(port + 1)
        self.assertEqual(ports.take(), port + 1)


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
        self.assertFalse(os.path.exists("/proc/%d" % (child,)) and _alive(child))
        self.assertEqual(runner.processes.live, {})


def _alive(pid: int) -> bool:
    with open("/proc/%d/stat" % (pid,)) as stat:
        return stat.read().rpartition(")")[2].split()[0] != "Z"


class _FixedPorts:
    def take(self, helper=False):
        return 20000

    def give_back(self, port):
        pass
