"""Tests for kvtwist.serve.daemon: the options both twistd plugins share."""

from __future__ import annotations

import io
import sys

from twisted.trial.unittest import SynchronousTestCase

from kvtwist import __version__
from kvtwist.serve import daemon
from kvtwist.serve.daemon import ServerOptions


class Options(ServerOptions):
    default_listen = "tcp:1:interface=127.0.0.1"


class ServerOptionsTests(SynchronousTestCase):
    """--listen and --version as both plugins offer them."""

    def test_default_listen(self) -> None:
        """Without --listen the subclass's default endpoint is used."""
        options = Options()
        options.parseOptions([])
        self.assertEqual(options["listen"], ["tcp:1:interface=127.0.0.1"])

    def test_listen_repeats(self) -> None:
        """--listen and -l may be repeated and replace the default."""
        options = Options()
        options.parseOptions(["--listen", "tcp:2", "-l", "unix:/tmp/kv.sock"])
        self.assertEqual(options["listen"], ["tcp:2", "unix:/tmp/kv.sock"])

    def test_version(self) -> None:
        """--version prints the kvtwist version and exits 0."""
        out = io.StringIO()
        self.patch(sys, "stdout", out)
        error = self.assertRaises(SystemExit, Options().parseOptions, ["--version"])
        self.assertEqual(error.code, 0)
        self.assertEqual(out.getvalue(), "kvtwist %s\n" % (__version__,))


class PyPyNurseryTests(SynchronousTestCase):
    """twistd under PyPy restarts itself once with a larger GC nursery (daemon.pypy_restart)."""

    twistd = ["/venv/bin/twistd", "-n", "kvstore", "--data", "d"]

    def test_restartsTwistdUnderPyPy(self) -> None:
        """Under PyPy, the twistd script without PYPY_GC_NURSERY is re-run with it, same
        arguments."""
        env = {"PATH": "/bin"}
        argv, environ = daemon.pypy_restart("PyPy", "/venv/bin/pypy3", "/venv/bin/twistd",
                                            ["twistd"] + self.twistd[1:], env)
        self.assertEqual(argv, ["/venv/bin/pypy3"] + self.twistd)
        self.assertEqual(environ, {"PATH": "/bin", "PYPY_GC_NURSERY": daemon.PYPY_NURSERY})
        self.assertEqual(env, {"PATH": "/bin"})

    def test_noRestart(self) -> None:
        """CPython, a nursery chosen by the user, or a main program that is not the twistd
        script (one running twistd inside itself with argv[0] "twistd", ``-c``): no restart."""
        nursery = {"PYPY_GC_NURSERY": "4MB"}
        script = "/venv/bin/twistd"
        self.assertIsNone(daemon.pypy_restart("CPython", "/usr/bin/python3", script,
                                              self.twistd, {}))
        self.assertIsNone(daemon.pypy_restart("PyPy", "/venv/bin/pypy3", script,
                                              self.twistd, nursery))
        for main_file in (None, "/repo/tests/redis_suite/launcher.py",
                          "/venv/lib/pytest/__main__.py", "/venv/bin/trial"):
            self.assertIsNone(daemon.pypy_restart("PyPy", "/venv/bin/pypy3", main_file,
                                                  ["twistd", "kvstore"], {}))

    def test_postOptions(self) -> None:
        """Parsing options in-process (not twistd's own argv) never restarts anything."""
        calls = []
        self.patch(daemon.os, "execve", lambda *args: calls.append(args))
        Options().parseOptions([])
        self.assertEqual(calls, [])
