"""Lists through the journal: every list operation replays, survives compaction, rolls back
exactly, is counted by ``kvtwist check`` and exported in a form redis-server loads."""

from __future__ import annotations

import errno
import subprocess

from twisted.trial.unittest import SynchronousTestCase

from kvtwist.storage import fsck
from tests.storage.test_fsck import pipe_into_redis
from tests.storage import test_journal
from tests.storage.test_journal import StoreHarness

# Every list operation (opcodes 1-9), on two databases.
COMMANDS = [
    ("rpush", "l", "a", "b", "c", "d", "e", "f", "a", "g"), ("lpush", "l", "z", "y"),
    ("lpop", "l"), ("rpop", "l", "2"), ("lset", "l", "1", "B"),
    ("linsert", "l", "after", "c", "c2"), ("lrem", "l", "-1", "a"), ("ltrim", "l", "0", "-2"),
    ("lmove", "l", "l", "left", "right"), ("lmove", "l", "m", "right", "left"),
    ("rpush", "gone", "x"), ("lpop", "gone"),
    ("select", "5"), ("rpush", "l5", "1", "2", "3"), ("rpoplpush", "l5", "l5"),
    ("lmpop", "1", "l5", "right", "count", "1"), ("select", "0"),
]


def values(h) -> dict:
    return {(keyspace.index, key): list(value.items) for keyspace in h.store.databases
            for key, value in keyspace.data.items()}


class ListJournalTests(SynchronousTestCase):
    """List operations survive restarts, compactions and refused writes."""

    mktemp = test_journal.GroupCommitTests.mktemp

    def run_all(self, h) -> None:
        for argv in COMMANDS:
            h.run(*argv)

    def test_restart(self):
        """Every list command's effect replays to the same lists."""
        h = StoreHarness(self)
        self.run_all(h)
        h.turn()
        expected = values(h)
        self.assertEqual(expected[(0, b"l")], [b"B", b"b", b"c", b"c2", b"d", b"e"])
        self.assertEqual(expected[(0, b"m")], [b"z"])
        self.assertEqual(expected[(5, b"l5")], [b"3", b"1"])
        self.assertEqual(values(h.reload()), expected)

    def test_compaction(self):
        """A compaction taken with list operations pending replays each exactly once."""
        h = StoreHarness(self)
        h.run("rpush", "l", "base")
        h.turn()
        self.run_all(h)
        d = h.journal.compact()
        h.run("rpush", "l", "after")
        h.turn()
        self.assertGreater(self.successResultOf(d), 0)
        expected = values(h)
        again = h.reload()
        self.assertEqual(values(again), expected)
        self.assertEqual(values(again.reload()), expected)

    def test_rollback(self):
        """LTRIM, LREM, pops and LSET the disk refused leave the list exactly as before."""
        h = StoreHarness(self)
        h.run("rpush", "l", "a", "x", "b", "x", "c", "x", "d")
        h.turn()
        before = values(h)
        h.ops.fault, h.ops.only = errno.ENOSPC, "write"
        for argv in (("lrem", "l", "2", "x"), ("ltrim", "l", "1", "-2"), ("rpop", "l", "2"),
                     ("lset", "l", "0", "Q"), ("linsert", "l", "before", "b", "i"),
                     ("blpop", "l", "0"), ("lmove", "l", "other", "left", "left")):
            h.run(*argv)
        h.turn()
        self.assertEqual(values(h), before)
        h.ops.fault = None
        h.clock.advance(1)
        h.turn()
        self.assertEqual(values(h.reload()), before)

    def test_check_and_export(self):
        """kvtwist check counts the lists; the RESP export loads into redis-server equal."""
        h = StoreHarness(self)
        self.run_all(h)
        h.run("rpush", "long", *["e%d" % n for n in range(250)])
        h.run("pexpireat", "long", "4102444800000")
        h.turn()
        expected = values(h)
        h.stop()
        report = fsck.check(h.directory)
        self.assertTrue(report.ok, report.lines)
        self.assertIn("%d keys" % len(expected), report.lines[-1])
        sock, piped = pipe_into_redis(self, h.directory)
        self.assertIn(b"errors: 0", piped.stdout)
        for (db, key), items in expected.items():
            got = subprocess.run(["redis-cli", "-s", sock, "-n", str(db), "--no-raw", "lrange",
                                  key, "0", "-1"], capture_output=True).stdout
            self.assertEqual(got.count(b"\n"), len(items), key)
        ttl = subprocess.run(["redis-cli", "-s", sock, "pexpiretime", "long"],
                             capture_output=True)
        self.assertEqual(ttl.stdout.strip(), b"4102444800000")
