"""Tests for kvtwist.serve.daemon: the options both twistd plugins share."""

from __future__ import annotations

import io
import sys

from twisted.trial.unittest import SynchronousTestCase

from kvtwist import __version__
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
