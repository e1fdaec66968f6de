"""Tests for kvtwist.proxy.commands: the keys each proxied write touches."""

from __future__ import annotations

from twisted.trial.unittest import SynchronousTestCase

from kvtwist.proxy.commands import ALL, READ_ONLY, REFUSED, WRITES, all_keys


class CommandTableTests(SynchronousTestCase):
    """What the proxy invalidates for each kind of write."""

    def test_single_key_writes(self) -> None:
        """SET, INCR and EXPIRE touch their first argument only."""
        for name in (b"SET", b"INCR", b"EXPIRE", b"PUT"):
            self.assertEqual(WRITES[name]([name, b"k", b"v"]), [b"k"])

    def test_multi_key_writes(self) -> None:
        """DEL touches every key, MSET every other argument, RENAME both names."""
        self.assertEqual(WRITES[b"DEL"]([b"DEL", b"a", b"b"]), [b"a", b"b"])
        self.assertEqual(WRITES[b"REMOVE"]([b"REMOVE", b"a"]), [b"a"])
        self.assertEqual(WRITES[b"MSET"]([b"MSET", b"a", b"1", b"b", b"2"]), [b"a", b"b"])
        self.assertEqual(WRITES[b"RENAME"]([b"RENAME", b"a", b"b"]), [b"a", b"b"])

    def test_flushes_touch_everything(self) -> None:
        """FLUSH and its aliases, like an unknown write, touch every key."""
        for name in (b"FLUSH", b"FLUSHDB", b"FLUSHALL"):
            self.assertIs(WRITES[name]([name]), ALL)
        self.assertIs(all_keys([b"SOMETHING", b"x"]), ALL)

    def test_tables_are_disjoint(self) -> None:
        """No command is at once a write, a read and refused."""
        self.assertEqual(set(WRITES) & READ_ONLY, set())
        self.assertEqual(set(WRITES) & REFUSED, set())
        self.assertEqual(READ_ONLY & REFUSED, set())
