"""Tests for kvtwist.storage.fsck: check/repair and JSON-lines/RESP export of a data directory."""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import tempfile
import time

from twisted.trial.unittest import SkipTest, SynchronousTestCase

from kvtwist.storage import datadir, fsck, records
from kvtwist.engine.databases import IN_DB, SELECT, SWAPDB
from kvtwist.engine.keyspace import EXPIRE_AT, SET, SETRANGE
from tests.storage.test_datadir import write_dir


class CheckTests(SynchronousTestCase):
    """check reports like redis-check-aof and repairs on request."""

    def setUp(self) -> None:
        self.dir = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, self.dir, True)
        write_dir(self.dir, [(b"a", b"1", 0)], [[(SET, b"b", b"2", 0), (SET, b"c", b"3", 0)]])
        self.journal = datadir.journal_path(self.dir, 1)

    def test_repair_refused_while_in_use(self) -> None:
        """--repair refuses a directory another process holds; a plain check still reads it."""
        lock = datadir.lock_directory(self.dir)
        self.addCleanup(os.close, lock)
        report = fsck.check(self.dir, repair=True)
        self.assertEqual((report.ok, report.exit_code), (False, 1))
        self.assertIn("REFUSED", report.lines[0])
        self.assertIn("in use by another process", report.lines[0])
        self.assertTrue(fsck.check(self.dir).ok)

    def test_clean(self) -> None:
        """A sound directory checks OK with exit code 0."""
        report = fsck.check(self.dir)
        self.assertEqual((report.ok, report.exit_code), (True, 0))
        self.assertIn("3 records, 3 keys: OK", report.lines[-1])

    def test_torn_tail(self) -> None:
        """A torn tail is reported with its offset; --repair cuts it off."""
        with open(self.journal, "ab") as f:
            f.write(b"\x00\x00\x00\x30abc")
        size = os.path.getsize(self.journal)
        report = fsck.check(self.dir)
        self.assertTrue(report.ok)
        torn = "torn tail at offset %d: 7 bytes" % (size - 7)
        self.assertTrue(any(torn in line for line in report.lines))
        self.assertEqual(os.path.getsize(self.journal), size)
        fsck.check(self.dir, repair=True)
        self.assertEqual(os.path.getsize(self.journal), size - 7)

    def test_corrupt_and_repair(self) -> None:
        """A checksum failure fails the check, naming file and offset; repair keeps the prefix."""
        first = records.HEADER_SIZE + len(records.encode_effect((SET, b"b", b"2", 0)))
        with open(self.journal, "r+b") as f:
            f.seek(first + 9)
            f.write(b"Z")
        report = fsck.check(self.dir)
        self.assertEqual((report.ok, report.exit_code), (False, 1))
        self.assertIn("%s: offset %d" % (self.journal, first), report.lines[0])
        report = fsck.check(self.dir, repair=True)
        self.assertTrue(report.ok)
        self.assertTrue(any(line.startswith("REPAIRED") for line in report.lines))
        self.assertEqual(os.path.getsize(self.journal), first)
        self.assertTrue(fsck.check(self.dir).ok)

    def test_not_a_directory(self) -> None:
        """Checking a missing directory fails with a clear message, not a traceback."""
        report = fsck.check(os.path.join(self.dir, "nope"))
        self.assertFalse(report.ok)
        self.assertIn("not a directory", report.lines[0])


def pipe_into_redis(case, directory: str):
    """Start a redis-server on a unix socket (stopped at cleanup), pipe ``directory``'s RESP
    export into it with ``redis-cli --pipe``; return the socket path and redis-cli's result."""
    if not shutil.which("redis-server") or not shutil.which("redis-cli"):
        raise SkipTest("redis-server and redis-cli are not installed")
    sock = os.path.join(directory, "redis.sock")
    server = subprocess.Popen(["redis-server", "--port", "0", "--unixsocket", sock,
                               "--save", "", "--appendonly", "no"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    case.addCleanup(server.wait)
    case.addCleanup(server.kill)
    out = io.BytesIO()
    fsck.export(directory, "resp", out)
    for _ in range(200):  # wait for the socket without sleeping: ping until it answers
        ping = subprocess.run(["redis-cli", "-s", sock, "ping"], capture_output=True)
        if ping.stdout.strip() == b"PONG":
            break
    piped = subprocess.run(["redis-cli", "-s", sock, "--pipe"], input=out.getvalue(),
                           capture_output=True)
    return sock, piped


class ExportTests(SynchronousTestCase):
    """export writes live pairs as JSON lines or a RESP stream redis-cli --pipe accepts."""

    def setUp(self) -> None:
        self.dir = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, self.dir, True)
        self.future = int(time.time() * 1000) + 10**9
        write_dir(self.dir, [(b"text", b"hello", 0), (b"bin\xff", b"\x00\x01\r\n", 0)],
                  [[(SET, b"ttl", b"v", 0), (EXPIRE_AT, b"ttl", self.future),
                    (SET, b"gone", b"x", 1)]])

    def test_json(self) -> None:
        """JSON lines hold text, base64 other bytes and absolute expiry, skipping expired keys."""
        out = io.BytesIO()
        self.assertEqual(fsck.export(self.dir, "json", out), 3)
        items = [json.loads(line) for line in out.getvalue().splitlines()]
        self.assertIn({"key": "text", "value": "hello"}, items)
        self.assertIn({"key_base64": "Ymlu/w==", "value": "\x00\x01\r\n"}, items)
        self.assertIn({"key": "ttl", "value": "v", "expire_at_ms": self.future}, items)

    def test_resp(self) -> None:
        """The RESP stream is SET commands, with PXAT for keys that expire."""
        out = io.BytesIO()
        fsck.export(self.dir, "resp", out)
        data = out.getvalue()
        self.assertIn(b"*3\r\n$3\r\nSET\r\n$4\r\ntext\r\n$5\r\nhello\r\n", data)
        self.assertIn(b"*5\r\n$3\r\nSET\r\n$3\r\nttl\r\n$1\r\nv\r\n$4\r\nPXAT\r\n", data)

    def test_missing_directory(self) -> None:
        """Exporting a missing directory raises DataError naming it."""
        missing = os.path.join(self.dir, "nope")
        exc = self.assertRaises(fsck.DataError, fsck.export, missing, "json", io.BytesIO())
        self.assertIn(missing, str(exc))

    def test_bad_format(self) -> None:
        """An unknown format raises ValueError."""
        self.assertRaises(ValueError, fsck.export, self.dir, "xml", io.BytesIO())

    def test_pipe_into_redis(self) -> None:
        """redis-cli --pipe loads the RESP export into a real redis-server with the same pairs."""
        sock, piped = pipe_into_redis(self, self.dir)
        self.assertIn(b"errors: 0, replies: 3", piped.stdout)
        got = subprocess.run(["redis-cli", "-s", sock, "--no-raw", "get", b"bin\xff"],
                             capture_output=True).stdout
        self.assertEqual(got.strip(), b'"\\x00\\x01\\r\\n"')
        ttl = subprocess.run(["redis-cli", "-s", sock, "pexpiretime", "ttl"], capture_output=True)
        self.assertEqual(int(ttl.stdout), self.future)


class DatabasesExportTests(SynchronousTestCase):
    """export carries every database: a "db" field in JSON, SELECT before each in RESP."""

    def setUp(self) -> None:
        self.dir = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, self.dir, True)
        # Database 2's data is swapped into index 5 by the journal.
        write_dir(self.dir, [(b"zero", b"0", 0), (SELECT, 2), (b"two", b"2", 0), (SELECT, 0)],
                  [[(IN_DB, 3, (SET, b"three", b"3", 0)), (SWAPDB, 2, 5, 2, 5)]])

    def test_json_db_field(self) -> None:
        """Keys outside database 0 get a "db" field with their index after SWAPDB."""
        out = io.BytesIO()
        self.assertEqual(fsck.export(self.dir, "json", out), 3)
        items = [json.loads(line) for line in out.getvalue().splitlines()]
        self.assertEqual(items, [{"key": "zero", "value": "0"},
                                 {"db": 3, "key": "three", "value": "3"},
                                 {"db": 5, "key": "two", "value": "2"}])

    def test_resp_selects(self) -> None:
        """The RESP stream SELECTs each database before its keys."""
        out = io.BytesIO()
        fsck.export(self.dir, "resp", out)
        data = out.getvalue()
        self.assertEqual(data.count(b"SELECT"), 2)
        self.assertLess(data.index(b"$6\r\nSELECT\r\n$1\r\n3\r\n"), data.index(b"three"))
        self.assertLess(data.index(b"$6\r\nSELECT\r\n$1\r\n5\r\n"), data.index(b"two"))

    def test_pipe_into_redis_keeps_databases(self) -> None:
        """redis-cli --pipe of the RESP export puts each key in its database of a redis-server."""
        sock, piped = pipe_into_redis(self, self.dir)
        self.assertIn(b"errors: 0, replies: 5", piped.stdout)
        got = [subprocess.run(["redis-cli", "-s", sock, "-n", db, "get", key],
                              capture_output=True).stdout.strip()
               for db, key in (("0", "zero"), ("3", "three"), ("5", "two"), ("2", "two"))]
        self.assertEqual(got, [b"0", b"3", b"2", b""])

    def test_check_counts_every_database(self) -> None:
        """check reports the keys of all databases."""
        self.assertIn("3 keys: OK", fsck.check(self.dir).lines[-1])


class MemoryStateTests(SynchronousTestCase):
    """The tools' plain keyspace replays every effect kind as the server's does."""

    def test_setrange_keeps_expiry_and_pads(self) -> None:
        """SETRANGE patches a value in place, keeps its expiry, and creates a missing key."""
        state = fsck.MemoryState()
        state.apply((SET, b"k", b"hello", 99))
        state.apply((SETRANGE, b"k", 5, b"!"))
        state.apply((SETRANGE, b"k", 0, b"J"))
        state.apply((SETRANGE, b"new", 2, b"x"))
        self.assertEqual(state.data, {b"k": (b"Jello!", 99), b"new": (b"\0\0x", 0)})
