"""Tests for kvtwist.cli: the console script's options and its check/export/cli/demo wiring."""

from __future__ import annotations

import io
import json
import os
import shutil
import sys
import tempfile

from twisted.trial import unittest

from kvtwist import __version__

from kvtwist.cli import main as cli, demo

from kvtwist.storage import fsck
from tests.procs import start_kvstore
from tests.cli.test_repl import run_cli


class Output:
    """Captures what main() writes to stdout and stderr (text and binary)."""

    def __init__(self, test):
        self.out = io.TextIOWrapper(io.BytesIO(), encoding="utf-8")
        self.err = io.TextIOWrapper(io.BytesIO(), encoding="utf-8")
        test.patch(sys, "stdout", self.out)
        test.patch(sys, "stderr", self.err)

    def text(self, stream) -> bytes:
        stream.flush()
        return stream.buffer.getvalue()


class OptionsTests(unittest.SynchronousTestCase):
    """Argument parsing and dispatch."""

    def test_version(self):
        """--version prints 'kvtwist <version>' and exits 0."""
        output = Output(self)
        exc = self.assertRaises(SystemExit, cli.main, ["--version"])
        self.assertEqual(exc.code, 0)
        self.assertEqual(output.text(output.out), b"kvtwist %s\n" % (__version__.encode(),))

    def test_no_subcommand(self):
        """Without a subcommand, usage goes to stderr and the status is 2."""
        output = Output(self)
        self.assertEqual(cli.main([]), 2)
        self.assertIn(b"usage: kvtwist", output.text(output.err))

    def test_cli_options(self):
        """cli takes -h/--host and -p/--port like redis-cli, and keeps the command words."""
        args = cli.build_parser().parse_args(["cli", "-h", "::1", "-p", "6379", "set", "k", "-1"])
        self.assertEqual((args.host, args.port, args.command), ("::1", 6379, ["set", "k", "-1"]))
        args = cli.build_parser().parse_args(["cli"])
        self.assertEqual((args.host, args.port, args.command, args.raw),
                         ("127.0.0.1", 7379, [], None))

    def test_bad_port(self):
        """A port that is not a number in range is a usage error (status 2)."""
        Output(self)
        for port in ["x", "0", "70000"]:
            exc = self.assertRaises(SystemExit, cli.main, ["cli", "-p", port, "ping"])
            self.assertEqual(exc.code, 2)

    def test_cli_dispatch(self):
        """cli passes host, port, TLS settings, raw mode and the command to run_cli."""
        from kvtwist.cli import repl

        calls = []
        self.patch(repl, "run_cli", lambda *a, **kw: calls.append((a, kw)) or 7)
        status = cli.main(["cli", "-p", "1234", "--tls", "--insecure", "--raw", "get", "k"])
        self.assertEqual(status, 7)
        self.assertEqual(calls, [(("127.0.0.1", 1234, ["get", "k"]),
                                  {"tls": True, "cafile": None, "insecure": True, "raw": True})])

    def test_demo_dispatch(self):
        """demo passes --host and --port (None: start a kvstore) to run_demo."""
        calls = []
        self.patch(demo, "run_demo", lambda host, port: calls.append((host, port)) or 0)
        self.assertEqual(cli.main(["demo"]), 0)
        self.assertEqual(cli.main(["demo", "-p", "9"]), 0)
        self.assertEqual(calls, [("127.0.0.1", None), ("127.0.0.1", 9)])


class FsckWiringTests(unittest.SynchronousTestCase):
    """check and export call kvtwist.storage.fsck and report its outcome."""

    def test_check_report(self):
        """check prints the report's lines and exits with its exit code; --repair is passed on."""
        calls = []

        def check(directory, repair=False):
            calls.append((directory, repair))
            return fsck.Report(False, ["CORRUPT: bad record", "second line"])
        self.patch(fsck, "check", check)
        output = Output(self)
        self.assertEqual(cli.main(["check", "/data", "--repair"]), 1)
        self.assertEqual(calls, [("/data", True)])
        self.assertEqual(output.text(output.out), b"CORRUPT: bad record\nsecond line\n")

    def test_export_corrupt(self):
        """export of a corrupt directory prints one line and exits 1."""
        def export(directory, fmt, out):
            raise fsck.DataError("bad checksum at offset 9")
        self.patch(fsck, "export", export)
        output = Output(self)
        self.assertEqual(cli.main(["export", "/data"]), 1)
        self.assertEqual(output.text(output.err),
                         b"kvtwist export: /data: corrupt data: bad checksum at offset 9\n")

    def test_export_unwritable_output(self):
        """An output file that cannot be created is reported without a traceback."""
        self.patch(fsck, "export", lambda directory, fmt, out: 0)
        output = Output(self)
        self.assertEqual(cli.main(["export", "/data", "-o", "/nonexistent/dir/out"]), 1)
        self.assertIn(b"No such file or directory", output.text(output.err))


class DataDirectoryTests(unittest.TestCase):
    """check and export on a data directory a real kvstore wrote."""

    def test_check_and_export(self):
        """After kvstore stored two keys, check says OK and export writes them as JSON and RESP."""
        tmpdir = tempfile.mkdtemp(prefix="kvtwist-cli-")
        self.addCleanup(shutil.rmtree, tmpdir, True)
        data = os.path.join(tmpdir, "data")
        process = start_kvstore(data)
        try:
            self.assertEqual(
                run_cli(["cli", "-p", str(process.port), "mset", "a", "1", "b", "two"])[0], 0)
        finally:
            process.stop()
        status, out, err = run_cli(["check", data])
        self.assertEqual(status, 0, out + err)
        self.assertIn(b"2 keys", out)
        status, out, err = run_cli(["export", data, "--format", "json"])
        self.assertEqual(status, 0, err)
        pairs = sorted((item["key"], item["value"]) for item in map(json.loads, out.splitlines()))
        self.assertEqual(pairs, [("a", "1"), ("b", "two")])
        target = os.path.join(tmpdir, "dump.resp")
        status, out, err = run_cli(["export", data, "--format", "resp", "-o", target])
        self.assertEqual((status, err), (0, b"kvtwist export: 2 pairs written to %s\n"
                                         % (target.encode(),)))
        with open(target, "rb") as f:
            self.assertIn(b"*3\r\n$3\r\nSET\r\n$1\r\na\r\n$1\r\n1\r\n", f.read())
