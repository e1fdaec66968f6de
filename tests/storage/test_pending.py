"""Tests for kvtwist.storage.pending: which keys have a write that is not durable yet."""

from __future__ import annotations

from twisted.trial.unittest import SynchronousTestCase

from kvtwist.engine.databases import IN_DB, SWAPDB
from kvtwist.engine.keyspace import DEL, EXPIRE_AT, FLUSH, SET
from kvtwist.engine.typedkeys import MUTATE
from kvtwist.storage.pending import PendingWrites


def read(pending: PendingWrites, label: int, *keys: bytes) -> int:
    """The gate of a read of ``keys`` (as a GET/MGET argv) in database ``label``."""
    argv = [b"MGET"] + list(keys)
    return pending.gate(label, argv, 1, len(argv), 1)


class PendingWritesTests(SynchronousTestCase):
    """Notes per key and per database, dropped once durable."""

    def test_a_read_waits_for_the_last_write_to_its_keys_only(self) -> None:
        """A key's gate is its last pending write; another key's is 0."""
        pending = PendingWrites()
        pending.note((SET, b"a", b"1", 0), 1)
        pending.note((SET, b"b", b"1", 0), 2)
        pending.note((EXPIRE_AT, b"a", 5), 3)
        self.assertEqual((read(pending, 0, b"a"), read(pending, 0, b"b")), (3, 2))
        self.assertEqual(read(pending, 0, b"c"), 0)
        self.assertEqual(read(pending, 0, b"c", b"b", b"a"), 3)

    def test_databases_are_apart(self) -> None:
        """A write to a key of database 1 does not hold a read of that key in database 0."""
        pending = PendingWrites()
        pending.note((IN_DB, 1, (SET, b"a", b"1", 0)), 1)
        pending.note((IN_DB, 2, (MUTATE, b"l", 2, 1, (b"x",))), 2)
        self.assertEqual(read(pending, 0, b"a"), 0)
        self.assertEqual(read(pending, 1, b"a"), 1)
        self.assertEqual(read(pending, 2, b"l"), 2)

    def test_flush_holds_its_whole_database(self) -> None:
        """After FLUSHDB every read of that database waits for it; others do not."""
        pending = PendingWrites()
        pending.note((IN_DB, 3, (FLUSH,)), 4)
        pending.note((FLUSH,), 5)
        self.assertEqual(read(pending, 3, b"any"), 4)
        self.assertEqual(read(pending, 0, b"any"), 5)
        self.assertEqual(read(pending, 1, b"any"), 0)

    def test_swapdb_holds_both_databases(self) -> None:
        """SWAPDB holds reads of both datasets it swapped until it is durable."""
        pending = PendingWrites()
        pending.note((SWAPDB, 0, 1, 0, 1), 7)
        self.assertEqual((read(pending, 0, b"k"), read(pending, 1, b"k")), (7, 7))
        self.assertEqual(read(pending, 2, b"k"), 0)

    def test_unknown_effect_holds_every_read(self) -> None:
        """An effect of a kind the notes do not know holds every read, in every database."""
        pending = PendingWrites()
        pending.note((99, b"what"), 3)
        self.assertEqual((read(pending, 0, b"k"), read(pending, 5, b"k")), (3, 3))
        pending.sent(3)
        pending.settle(3)
        self.assertEqual(read(pending, 0, b"k"), 0)

    def test_settle_forgets_durable_writes_only(self) -> None:
        """Settling forgets what is durable; a later write to the same key stays noted."""
        pending = PendingWrites()
        pending.note((SET, b"a", b"1", 0), 1)
        pending.note((IN_DB, 1, (FLUSH,)), 2)
        pending.sent(2)
        pending.note((DEL, b"a"), 3)
        pending.note((SET, b"b", b"1", 0), 4)
        pending.sent(4)
        pending.settle(2)
        self.assertEqual((read(pending, 0, b"a"), read(pending, 1, b"x")), (3, 0))
        pending.settle(4)
        self.assertEqual((len(pending), pending.keys, pending.dbs), (0, {}, {}))

    def test_memory_stays_bounded(self) -> None:
        """Many durable writes leave nothing behind: entries go once their commit is durable."""
        pending = PendingWrites()
        seq = 0
        for commit in range(100):
            for key in range(50):
                seq += 1
                pending.note((IN_DB, key % 3, (SET, b"k%d-%d" % (commit, key), b"v", 0)), seq)
            pending.sent(seq)
            pending.settle(seq)
        self.assertEqual(len(pending), 0)
        self.assertEqual(len(pending._batches), 0)

    def test_clear_forgets_everything(self) -> None:
        """A rollback clears every note (the writes are undone, numbers are reused)."""
        pending = PendingWrites()
        pending.note((SET, b"a", b"1", 0), 1)
        pending.sent(1)
        pending.note((FLUSH,), 2)
        pending.note((77,), 3)
        pending.clear()
        self.assertEqual((len(pending), pending.everything, read(pending, 0, b"a")), (0, 0, 0))
        pending.settle(10)
        self.assertEqual(len(pending), 0)
