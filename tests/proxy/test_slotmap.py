"""Tests for kvtwist.proxy.slotmap: key slots, CLUSTER SLOTS / SHARDS parsing, the map."""

from __future__ import annotations

from twisted.trial.unittest import SynchronousTestCase

from kvtwist.proxy.slotmap import (
    SLOTS, SlotMap, SlotMapError, key_slot, parse_shards, parse_slots)

# CLUSTER SLOTS of a three-primary cluster (one replica for the first range).
SLOTS_REPLY = [
    [0, 5460, [b"127.0.0.1", 7000, b"id-a"], [b"127.0.0.1", 7003, b"id-d"]],
    [5461, 10922, [b"127.0.0.1", 7001, b"id-b"]],
    [10923, 16383, [b"", 7002, b"id-c"]],
]

SHARDS_REPLY = [
    [b"slots", [0, 100, 200, 5460], b"nodes", [
        [b"id", b"id-d", b"port", 7003, b"ip", b"127.0.0.1", b"endpoint", b"127.0.0.1",
         b"role", b"replica", b"replication-offset", 0, b"health", b"online"],
        [b"id", b"id-a", b"port", 7000, b"ip", b"127.0.0.1", b"endpoint", b"127.0.0.1",
         b"role", b"master", b"replication-offset", 0, b"health", b"online"]]],
    [b"slots", [], b"nodes", [
        [b"id", b"id-e", b"port", 7004, b"ip", b"127.0.0.1", b"endpoint", b"127.0.0.1",
         b"role", b"master", b"replication-offset", 0, b"health", b"online"]]],
]


class KeySlotTests(SynchronousTestCase):
    """key_slot is Redis's keyHashSlot."""

    def test_known_slots(self) -> None:
        """Slots Redis's documentation gives (CLUSTER KEYSLOT) come out the same."""
        self.assertEqual(key_slot(b"somekey"), 11058)
        self.assertEqual(key_slot(b"foo"), 12182)
        self.assertEqual(key_slot(b"foo{hash_tag}"), 2515)
        self.assertEqual(key_slot(b"bar{hash_tag}"), 2515)

    def test_hash_tags(self) -> None:
        """Only a non-empty tag between the first { and the next } is hashed."""
        self.assertEqual(key_slot(b"{user1000}.following"), key_slot(b"user1000"))
        self.assertEqual(key_slot(b"foo{bar}{zap}"), key_slot(b"bar"))
        self.assertEqual(key_slot(b"foo{{bar}}zap"), key_slot(b"{bar"))
        self.assertEqual(key_slot(b"foo{}{bar}"), key_slot(b"foo{}{bar}"))
        self.assertNotEqual(key_slot(b"foo{}{bar}"), key_slot(b"bar"))
        self.assertEqual(key_slot(b"{}"), key_slot(b"{}"))
        self.assertEqual(key_slot(b""), 0)

    def test_range(self) -> None:
        """Every slot is in 0-16383."""
        for number in range(2000):
            self.assertTrue(0 <= key_slot(b"k%d" % (number,)) < SLOTS)


class ParseTests(SynchronousTestCase):
    """CLUSTER SLOTS and CLUSTER SHARDS replies become (first, last, primary) ranges."""

    def test_slots(self) -> None:
        """Each range's primary is its first node; an empty host is the one asked."""
        self.assertEqual(parse_slots(SLOTS_REPLY, "10.0.0.9"), [
            (0, 5460, "127.0.0.1:7000"), (5461, 10922, "127.0.0.1:7001"),
            (10923, 16383, "10.0.0.9:7002")])

    def test_shards(self) -> None:
        """Each shard's slot pairs go to its master; a shard with no slots adds none."""
        self.assertEqual(parse_shards(SHARDS_REPLY), [
            (0, 100, "127.0.0.1:7000"), (200, 5460, "127.0.0.1:7000")])

    def test_errors(self) -> None:
        """An error reply or a malformed entry raises SlotMapError."""
        self.assertRaises(SlotMapError, parse_slots, b"nope")
        self.assertRaises(SlotMapError, parse_slots, [[0, b"x", [b"h", 1]]])
        self.assertRaises(SlotMapError, parse_shards, [[b"slots", [0, 1]]])
        self.assertRaises(SlotMapError, SlotMap, [(0, SLOTS, "a:1")])

    def test_ipv6(self) -> None:
        """An IPv6 host is bracketed in its address."""
        self.assertEqual(parse_slots([[0, 1, [b"::1", 7000]]]), [(0, 1, "[::1]:7000")])


class SlotMapTests(SynchronousTestCase):
    """The owner of each slot, the primaries, and what changed between two maps."""

    def test_owners(self) -> None:
        """Slots map to their ranges' primaries; uncovered ones to None."""
        slotmap = SlotMap([(0, 9, "a:1"), (20, 16383, "b:2")])
        self.assertEqual(slotmap.owner(5), "a:1")
        self.assertIsNone(slotmap.owner(15))
        self.assertEqual(slotmap.owner(16383), "b:2")
        self.assertEqual(slotmap.primaries(), ["a:1", "b:2"])
        self.assertEqual(slotmap.covered(), SLOTS - 10)
        self.assertEqual(slotmap.ranges(), [(0, 9, "a:1"), (10, 19, None),
                                            (20, 16383, "b:2")])

    def test_changed(self) -> None:
        """changed names exactly the slots whose owner differs."""
        before = SlotMap([(0, 16383, "a:1")])
        after = SlotMap([(0, 99, "b:2"), (100, 16383, "a:1")])
        self.assertEqual(before.changed(after), set(range(100)))
        after.assign(100, "c:3")
        self.assertEqual(after.owner(100), "c:3")
        self.assertEqual(before.changed(after), set(range(101)))
