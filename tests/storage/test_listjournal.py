"""Lists through the journal: every list operation replays, survives compaction, rolls back
exactly, is counted by ``kvtwist check`` and exported in a form redis-server loads."""

from __future__ import annotations

import subprocess

from tests.storage.journalharness import TypeJournalCase
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


class ListJournalTests(TypeJournalCase):
    """List operations survive restarts, compactions and refused writes."""

    commands = COMMANDS

    def values(self, h) -> dict:
        return {(keyspace.index, key): list(value.items) for keyspace in h.store.databases
                for key, value in keyspace.data.items()}

    def test_restart(self):
        """Every list command's effect replays to the same lists."""
        h = self.ran()
        expected = self.values(h)
        self.assertEqual(expected[(0, b"l")], [b"B", b"b", b"c", b"c2", b"d", b"e"])
        self.assertEqual(expected[(0, b"m")], [b"z"])
        self.assertEqual(expected[(5, b"l5")], [b"3", b"1"])
        self.assertEqual(self.values(h.reload()), expected)

    def test_compaction(self):
        """A compaction taken with list operations pending replays each exactly once."""
        h, again = self.compacted(("rpush", "l", "base"), ("rpush", "l", "after"))
        self.assertEqual(self.values(again.reload()), self.values(h))

    def test_rollback(self):
        """LTRIM, LREM, pops and LSET the disk refused leave the list exactly as before."""
        h = StoreHarness(self)
        h.run("rpush", "l", "a", "x", "b", "x", "c", "x", "d")
        self.refused(h, (("lrem", "l", "2", "x"), ("ltrim", "l", "1", "-2"), ("rpop", "l", "2"),
                         ("lset", "l", "0", "Q"), ("linsert", "l", "before", "b", "i"),
                         ("blpop", "l", "0"), ("lmove", "l", "other", "left", "left")))

    def test_check_and_export(self):
        """kvtwist check counts the lists; the RESP export loads into redis-server equal."""
        h = StoreHarness(self)
        self.run_all(h)
        h.run("rpush", "long", *["e%d" % n for n in range(250)])
        h.run("pexpireat", "long", "4102444800000")
        expected, sock = self.exported(h)
        for (db, key), items in expected.items():
            got = subprocess.run(["redis-cli", "-s", sock, "-n", str(db), "--no-raw", "lrange",
                                  key, "0", "-1"], capture_output=True).stdout
            self.assertEqual(got.count(b"\n"), len(items), key)
        ttl = subprocess.run(["redis-cli", "-s", sock, "pexpiretime", "long"],
                             capture_output=True)
        self.assertEqual(ttl.stdout.strip(), b"4102444800000")
