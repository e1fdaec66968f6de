"""Tests for kvtwist.cli.demo: the two-user transcript, against kvstore and redis-server."""

from __future__ import annotations

import io
import os
import re
import shutil
import sys
import tempfile

from twisted.trial import unittest

from kvtwist.cli import demo
from kvtwist.wire.replies import OK
from tests.redisref import start_redis_or_skip
from tests.cli.test_repl import cli_env, run_cli


class TranscriptTests(unittest.SynchronousTestCase):
    """The transcript shows commands as typed and replies as redis-cli shows them."""

    def test_show_command(self):
        """Plain words stay bare; words with spaces, quotes or odd bytes are quoted."""
        self.assertEqual(demo.show_command([b"SET", b"k", b"v"]), b"SET k v")
        self.assertEqual(demo.show_command([b"SET", b"k", b"a b"]), b'SET k "a b"')
        self.assertEqual(demo.show_command([b"SET", b"k", b""]), b'SET k ""')
        self.assertEqual(demo.show_command([b"SET", b"k", b"\x00'"]), b'SET k "\\x00\'"')

    def test_exchange(self):
        """A reply is written under its command, indented past the speaker's prompt."""
        out = io.BytesIO()
        transcript = demo.Transcript(out)
        transcript.exchange("bob", [b"MGET", b"a", b"b"], [b"1", None])
        transcript.exchange("alice", [b"SET", b"a", b"1"], OK)
        self.assertEqual(out.getvalue(),
                         b'bob> MGET a b\n     1) "1"\n     2) (nil)\n'
                         b"alice> SET a 1\n       OK\n")

    def test_expected_values(self):
        """Bob expects each key's last value, so the overwrite wins."""
        values = demo.expected_values()
        self.assertEqual(values[b"demo:city"], b"Lisbon")
        self.assertEqual(len(values), len(demo.ALICE) - 1)
        self.assertNotIn(demo.MISSING, values)


class ProcessTests(unittest.SynchronousTestCase):
    """Starting servers reports failures clearly."""

    def test_server_that_exits(self):
        """A server that exits before listening raises ServerFailed with its status and log."""
        tmpdir = tempfile.mkdtemp(prefix="kvtwist-demo-")
        self.addCleanup(shutil.rmtree, tmpdir, True)
        argv = [sys.executable, "-c", "import sys; print('no such option'); sys.exit(3)"]
        exc = self.assertRaises(demo.ServerFailed, demo.start_process, argv, demo.free_port(),
                                os.path.join(tmpdir, "log"), 30.0, "fake")
        self.assertIn("fake exited with status 3", str(exc))
        self.assertIn("no such option", str(exc))


def check_transcript(test, out: bytes) -> None:
    """Assert the transcript shows the whole two-user session."""
    text = out.decode("utf-8")
    test.assertIn("alice connected to 127.0.0.1:", text)
    test.assertIn("bob connected to 127.0.0.1:", text)
    for argv in demo.ALICE:
        test.assertIn("alice> %s\n       OK\n" % (demo.show_command(argv).decode(),), text)
    test.assertIn('bob> GET demo:city\n     "Lisbon"\n', text)
    test.assertEqual(text.count("bob> GET demo:unicorn\n     (nil)\n"), demo.MISSING_TRIES)
    test.assertIn("     5) (nil)\n", text)
    test.assertIn("alice> QUIT\n       OK\nalice disconnected\n", text)
    test.assertIn("bob> QUIT\n     OK\nbob disconnected\n", text)
    # Alice's writes all come before Bob's reads.
    test.assertLess(text.rindex("alice> SET"), text.index("bob> GET"))


class DemoTests(unittest.TestCase):
    """kvtwist demo from the command line."""

    def test_demo_starts_kvstore(self):
        """Without --port the demo starts kvstore, plays the session, stops it and exits 0."""
        scratch = tempfile.mkdtemp()  # the demo's data directory goes in here, then away
        self.addCleanup(shutil.rmtree, scratch, True)
        status, out, err = run_cli(["demo"], timeout=120, env=cli_env(TMPDIR=scratch))
        self.assertEqual(status, 0, out + err)
        self.assertEqual(os.listdir(scratch), [])
        check_transcript(self, out)
        match = re.search(rb"started kvstore \(pid (\d+)\)", out)
        self.assertIsNotNone(match, out)
        self.assertTrue(out.endswith(b"kvtwist demo: kvstore stopped\n"), out)
        self.assertRaises(OSError, os.kill, int(match.group(1)), 0)

    def test_demo_against_redis(self):
        """With --port the demo uses the server already there, e.g. redis-server."""
        server = start_redis_or_skip()
        self.addCleanup(server.stop)
        status, out, err = run_cli(["demo", "--port", str(server.port)])
        self.assertEqual(status, 0, out + err)
        check_transcript(self, out)
        self.assertNotIn(b"kvstore", out)

    def test_nothing_listening(self):
        """With --port and nothing listening, the demo says it could not connect and exits 1."""
        port = demo.free_port()
        status, out, err = run_cli(["demo", "--port", str(port)])
        self.assertEqual(status, 1)
        self.assertIn(b"Could not connect to 127.0.0.1:%d" % (port,), out)
        self.assertNotIn(b"Traceback", out + err)
