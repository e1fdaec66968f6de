"""Hashes are as durable as strings: journal replay, compaction, rollback of a refused write,
``kvtwist check`` and the RESP export (storage/typedrecords.py with engine/hashtype.py)."""

from __future__ import annotations

import errno
import subprocess

from twisted.trial.unittest import SynchronousTestCase

from kvtwist.engine.hashtype import Hash
from kvtwist.storage import fsck
from kvtwist.wire.replies import Error
from tests.storage.test_fsck import pipe_into_redis
from tests.storage import test_journal

StoreHarness = test_journal.StoreHarness


def hashes(h) -> dict:
    """Return {(db, key): (fields in order, expiry)} of every hash in the harness's store."""
    found = {}
    for keyspace in h.store.databases:
        for key, value in keyspace.data.items():
            if isinstance(value, Hash):
                found[(keyspace.index, key)] = (list(value.fields.items()),
                                                keyspace.expires.get(key, 0))
    return found


def fill(h) -> None:
    """Run a mix of hash writes on the harness."""
    h.run("hset", "h", "a", "1", "b", "2", "c", "3")
    h.run("hset", "h", "a", "10")
    h.run("hsetnx", "h", "d", "4")
    h.run("hdel", "h", "b")
    h.run("hincrby", "h", "a", "5")
    h.run("hincrbyfloat", "h", "f", "1.25")
    h.run("hincrbyfloat", "h", "f", "0.1")
    h.run("hmset", "gone", "x", "1")
    h.run("hdel", "gone", "x")
    h.run("hset", "ttl", "k", "v")
    h.run("pexpireat", "ttl", "4102444800000")
    h.run("select", "2")
    h.run("hset", "two", *["f%d" % i for i in range(1200)])
    h.run("hdel", "two", *["f%d" % i for i in range(0, 600, 4)])
    h.run("select", "0")


class HashPersistenceTests(SynchronousTestCase):
    """Every hash operation survives restarts and compactions, and a refused one vanishes."""

    mktemp = test_journal.GroupCommitTests.mktemp

    def test_replay(self) -> None:
        """After a restart the journal's operations rebuild every hash, order and expiry."""
        h = StoreHarness(self)
        fill(h)
        h.turn()
        expected = hashes(h)
        self.assertEqual(expected[(0, b"h")][0],
                         [(b"a", b"15"), (b"c", b"3"), (b"d", b"4"), (b"f", b"1.35")])
        self.assertNotIn((0, b"gone"), expected)
        self.assertEqual(hashes(h.reload()), expected)

    def test_compaction(self) -> None:
        """A snapshot taken with hash writes pending reloads to the same hashes, twice."""
        h = StoreHarness(self)
        fill(h)
        h.turn()
        h.run("hincrby", "h", "a", "1")  # pending while the snapshot is taken
        d = h.journal.compact()
        h.run("hset", "h", "later", "x")
        h.run("hdel", "h", "c")
        h.turn()
        self.assertGreater(self.successResultOf(d), 0)
        expected = hashes(h)
        again = h.reload()
        self.assertEqual(hashes(again), expected)
        self.assertEqual(hashes(again.reload()), expected)

    def test_rollback(self) -> None:
        """A hash write the disk refused is undone: the value is exactly as before, and
        it is not in the journal after a restart."""
        h = StoreHarness(self)
        fill(h)
        h.turn()
        before = hashes(h)
        h.ops.fault, h.ops.only = errno.ENOSPC, "write"
        h.run("hdel", "h", "a", "c")
        h.run("hset", "h", "new", "1", "d", "changed")
        h.run("hincrbyfloat", "h", "f", "1")
        h.run("hdel", "ttl", "k")  # empties the hash (and its expiry)
        h.run("hset", "fresh", "a", "1")
        h.turn()
        self.assertIsNotNone(h.journal.failure)
        self.assertEqual(hashes(h), before)
        self.assertEqual(h.store.keyspace.meter.used, h.store.keyspace.size()
                         + sum(ks.size() for ks in h.store.databases if ks is not h.store.keyspace))
        h.ops.fault = None
        h.clock.advance(1)
        h.turn()
        self.assertIsNone(h.journal.failure)
        self.assertEqual(hashes(h.reload()), before)

    def test_check_counts_and_export_loads_into_redis(self) -> None:
        """kvtwist check reads the hash records; the RESP export loads into redis-server
        with redis-cli --pipe and reads back equal."""
        h = StoreHarness(self)
        fill(h)
        h.turn()
        expected = hashes(h)
        h.stop()
        report = fsck.check(h.directory)
        self.assertTrue(report.ok, report.lines)
        self.assertIn("3 keys: OK", report.lines[-1])
        sock, piped = pipe_into_redis(self, h.directory)
        self.assertIn(b"errors: 0", piped.stdout)
        for (db, key), (fields, expiry) in expected.items():
            out = subprocess.run(["redis-cli", "-s", sock, "-n", str(db), "--raw", "hgetall",
                                  key], capture_output=True).stdout.split(b"\n")[:-1]
            self.assertEqual(sorted(zip(out[::2], out[1::2])), sorted(fields), key)
            ttl = subprocess.run(["redis-cli", "-s", sock, "-n", str(db), "pexpiretime", key],
                                 capture_output=True).stdout.strip()
            self.assertEqual(int(ttl), expiry or -1)

    def test_json_export(self) -> None:
        """The JSON export writes each hash as its type and its fields and values in order."""
        import io
        import json

        h = StoreHarness(self)
        h.run("hset", "h", "a", "1", "b", "\u00e9")
        h.run("hset", "bin", "k", b"\xff")
        h.turn()
        h.stop()
        out = io.BytesIO()
        self.assertEqual(fsck.export(h.directory, "json", out), 2)
        lines = [json.loads(line) for line in out.getvalue().splitlines()]
        self.assertIn({"key": "h", "type": "hash", "items": ["a", "1", "b", "\u00e9"]}, lines)
        self.assertIn({"key": "bin", "type": "hash", "items_base64": ["aw==", "/w=="]}, lines)

    def test_wrongtype_is_not_logged(self) -> None:
        """A refused command (WRONGTYPE, a bad number) writes nothing to the journal."""
        h = StoreHarness(self)
        h.run("set", "s", "x")
        h.run("hset", "h", "a", "v")
        h.turn()
        self.assertIsInstance(h.run("hset", "s", "a", "1"), Error)
        self.assertIsInstance(h.run("hincrby", "h", "a", "1"), Error)
        h.turn()
        h.stop()
        self.assertIn("2 records, 2 keys", fsck.check(h.directory).lines[-1])
        again = StoreHarness(None, h.directory)
        self.assertEqual(hashes(again), {(0, b"h"): ([(b"a", b"v")], 0)})
        again.stop()
