"""Strings written in place (engine/strbuf.py) through the journal: APPEND, SETRANGE, SETBIT
and BITFIELD on large values replay, survive compaction (a snapshot taken while writes go on
holds the value as it was), roll back exactly when the disk refuses them, and export."""

from __future__ import annotations

import subprocess

from kvtwist.engine.strbuf import PROMOTE, StringBuffer
from tests.storage.journalharness import TypeJournalCase
from tests.storage.test_journal import StoreHarness

BIG = PROMOTE + 100

COMMANDS = [
    ("set", "big", "a" * BIG), ("append", "big", "tail"), ("setrange", "big", "10", "middle"),
    ("setrange", "big", str(BIG + 20), "past a gap"), ("setbit", "big", "7", "1"),
    ("bitfield", "big", "set", "u8", "#3", "66", "incrby", "i16", str(8 * (BIG + 40)), "9"),
    ("setrange", "grown", str(BIG), "x"), ("append", "grown", "y" * 100),
    ("select", "3"), ("append", "other", "z" * BIG), ("append", "other", "!"), ("select", "0"),
]


class StringBufferJournalTests(TypeJournalCase):
    """In-place string writes survive restarts, compactions and refused writes."""

    commands = COMMANDS

    def values(self, h) -> dict:
        return {(keyspace.index, key): bytes(value) for keyspace in h.store.databases
                for key, value in keyspace.data.items()}

    def test_restart(self):
        """Every write replays to the same bytes, written in place again on replay."""
        h = self.ran()
        self.assertIs(h.store.databases[0].data[b"big"].__class__, StringBuffer)
        expected = self.values(h)
        self.assertEqual(expected[(0, b"big")][10:16], b"middle")
        self.assertEqual(len(expected[(0, b"grown")]), BIG + 101)
        again = h.reload()
        self.assertEqual(self.values(again), expected)
        self.assertIs(again.store.databases[0].data[b"big"].__class__, StringBuffer)

    def test_compaction(self):
        """A compaction taken with writes pending, and writes after it, replays exactly."""
        h, again = self.compacted(("append", "big", "base"), ("append", "big", "after"))
        self.assertEqual(self.values(again.reload()), self.values(h))

    def test_snapshot_holds_the_value_as_it_was(self):
        """Writes after the snapshot was taken (before its thread encodes it) are not in it,
        and replay on top of it exactly once."""
        h = StoreHarness(self)
        h.run("setrange", "k", str(BIG), "x")
        h.turn()
        d = h.journal.compact()
        for step in range(20):
            h.run("append", "k", "%02d" % step)
            h.run("setrange", "k", str(step), "Z")
        h.turn()
        self.assertGreater(self.successResultOf(d), 0)
        expected = self.values(h)
        self.assertEqual(expected[(0, b"k")][:20], b"Z" * 20)
        self.assertEqual(self.values(h.reload()), expected)

    def test_rollback(self):
        """In-place writes the disk refused leave every value exactly as before."""
        h = StoreHarness(self)
        self.run_all(h)
        self.refused(h, (("append", "big", "refused"), ("setrange", "big", "5", "nope"),
                         ("setrange", "big", str(BIG * 2), "far"), ("setbit", "big", "0", "1"),
                         ("bitfield", "big", "incrby", "u8", "#1", "1"),
                         ("append", "grown", "more"), ("set", "big", "small"),
                         ("append", "new", "q" * BIG)))

    def test_check_and_export(self):
        """kvtwist check counts the keys; the RESP export loads into redis-server equal."""
        h = StoreHarness(self)
        self.run_all(h)
        expected, sock = self.exported(h)
        for (db, key), value in expected.items():
            got = subprocess.run(["redis-cli", "-s", sock, "-n", str(db), "strlen", key],
                                 capture_output=True).stdout
            self.assertEqual(int(got), len(value), key)
        got = subprocess.run(["redis-cli", "-s", sock, "getrange", "big", "0", "40"],
                             capture_output=True).stdout
        self.assertEqual(got.rstrip(b"\n"), expected[(0, b"big")][:41])
