"""Tests for kvtwist.engine.streamtype: the stream value, its node layout, its operations and
their inverses, and its flat record form."""

from __future__ import annotations

import random

from twisted.trial.unittest import SynchronousTestCase

from kvtwist.engine.streamnode import NODE_MAX_ENTRIES, format_id, parse_id
from kvtwist.engine.streamtype import TRIM, XADD, XDEL, XSETID, StreamValue
from kvtwist.engine.types import OPS

ALL = (0, (1 << 128) - 1)


def state(value: StreamValue):
    """Everything a stream holds, for exact comparisons."""
    return (value.range(*ALL), value.length, value.last_id, value.first_id, value.max_deleted,
            value.entries_added, value.nbytes, list(value.starts),
            [(node.master, node.mfields, node.deleted, node.last, node.base, list(node.ids))
             for node in value.nodes])


def apply(value, opcode, *args):
    return OPS[(value.code, opcode)](value, tuple(args))


def filled(count: int, size: int = 3) -> StreamValue:
    value = StreamValue()
    for n in range(1, count + 1):
        apply(value, XADD, b"%d-0" % n, b"f", b"v" * size)
    return value


class LayoutTests(SynchronousTestCase):
    """Entries go into nodes as Redis's listpacks do."""

    def test_nodes_close_at_entries_and_bytes(self):
        """A node takes 100 entries (deleted ones count) or closes before 4096 bytes."""
        value = filled(250)
        self.assertEqual([len(node.ids) for node in value.nodes], [100, 100, 50])
        big = filled(60, size=200)
        self.assertTrue(all(node.lp_bytes() < 4096 for node in big.nodes))
        self.assertGreater(len(big.nodes), 2)
        apply(value, XDEL, b"201-0")
        self.assertEqual(value.nodes[2].deleted, 1)
        for n in range(251, 302):
            apply(value, XADD, b"%d-0" % n, b"f", b"v")
        self.assertEqual(len(value.nodes[2].ids) + value.nodes[2].deleted, NODE_MAX_ENTRIES)

    def test_range_and_locate(self):
        """Ranges across nodes, forwards and backwards, with counts; locate finds live IDs."""
        value = filled(250)
        ids = [ident for ident, _ in value.range(parse_id(b"95-0"), parse_id(b"105-0"))]
        self.assertEqual(ids, [parse_id(b"%d-0" % n) for n in range(95, 106)])
        back = value.range(parse_id(b"95-0"), parse_id(b"105-0"), 3, reverse=True)
        self.assertEqual([format_id(ident) for ident, _ in back], [b"105-0", b"104-0", b"103-0"])
        self.assertEqual(value.range(5, 4), [])
        self.assertEqual(value.locate(parse_id(b"150-0")), (1, 49))
        self.assertIsNone(value.locate(parse_id(b"150-1")))

    def test_trim_count(self):
        """Approximate trims count whole nodes only; exact ones reach the threshold; LIMIT."""
        value = filled(250)
        self.assertEqual(value.trim_count(maxlen=160, approx=True), 0)
        self.assertEqual(value.trim_count(maxlen=150, approx=True), 100)
        self.assertEqual(value.trim_count(maxlen=120), 130)
        self.assertEqual(value.trim_count(minid=parse_id(b"150-0")), 149)
        self.assertEqual(value.trim_count(minid=parse_id(b"150-0"), approx=True), 100)
        self.assertEqual(value.trim_count(maxlen=0, approx=True, limit=150), 100)


class OperationTests(SynchronousTestCase):
    """Operations change the stream and their inverses restore it exactly."""

    def test_random_operations_undo_exactly(self):
        """Random XADD, TRIM, XDEL and XSETID: each inverse restores the state before it."""
        rng = random.Random(3)
        value = StreamValue()
        next_ms = 1
        for _ in range(1500):
            before = state(value)
            kind = rng.randrange(10)
            if kind < 6 or not value.length:
                next_ms += rng.randrange(1, 3)
                items = (b"f", b"x" * rng.randrange(120)) * rng.randrange(1, 3)
                _, inverse = apply(value, XADD, b"%d-%d" % (next_ms, rng.randrange(3)), *items)
            elif kind == 6:
                count = rng.randrange(value.length + 1)
                _, inverse = apply(value, TRIM, b"%d" % count)
            elif kind < 9:
                live = [ident for ident, _ in value.range(*ALL)]
                chosen = rng.sample(live, min(len(live), rng.randrange(1, 4)))
                _, inverse = apply(value, XDEL, *map(format_id, chosen))
            else:
                _, inverse = apply(value, XSETID, format_id(value.last_id + 5), b"%d" % (
                    value.entries_added + 1), format_id(value.max_deleted))
            after = state(value)
            if rng.random() < 0.3:
                inverse()
                self.assertEqual(state(value), before)
                if rng.random() < 0.5:
                    continue
                value = StreamValue.from_flat(StreamValue.flatten(value.frozen()))
            else:
                self.assertEqual(state(StreamValue.from_flat(
                    StreamValue.flatten(value.frozen()))), after)
        self.assertGreater(value.length, 0)

    def test_xdel_metadata(self):
        """XDEL records the greatest deleted ID and moves the first ID on; an empty stream stays."""
        value = filled(5)
        apply(value, XDEL, b"1-0", b"3-0")
        self.assertEqual((value.first_id, value.max_deleted),
                         (parse_id(b"2-0"), parse_id(b"3-0")))
        apply(value, XDEL, b"2-0", b"4-0", b"5-0")
        self.assertEqual((value.length, value.first_id, len(value), bool(value)), (0, 0, 0, True))
        self.assertEqual(value.nodes, [])

    def test_copy_is_independent(self):
        """COPY's copy does not change with the original."""
        value = filled(120)
        twin = value.copy()
        apply(value, XDEL, b"110-0")
        apply(value, TRIM, b"5")
        self.assertEqual(twin.length, 120)
        self.assertEqual(len(twin.range(*ALL)), 120)


class FlatTests(SynchronousTestCase):
    """The record form of a stream."""

    def test_malformed(self):
        """Short, trailing, unordered or empty-node records are ValueErrors."""
        flat = StreamValue.flatten(filled(3).frozen())
        for bad in (flat[:-1], flat + [b"x"], flat[:4], [b"x"] + flat[1:]):
            self.assertRaises(ValueError, StreamValue.from_flat, bad)
        swapped = list(flat)
        first, second = swapped.index(b"1-0", 6), swapped.index(b"2-0", 6)
        swapped[first], swapped[second] = swapped[second], swapped[first]
        self.assertRaises(ValueError, StreamValue.from_flat, swapped)

    def test_export_commands(self):
        """Export: an XADD per entry with its ID, then XSETID with the counters; an empty
        stream is made with MAXLEN 0 first."""
        value = filled(2)
        commands = value.export_commands(b"k")
        self.assertEqual(commands[0], [b"XADD", b"k", b"1-0", b"f", b"vvv"])
        self.assertEqual(commands[-1], [b"XSETID", b"k", b"2-0", b"ENTRIESADDED", b"2",
                                        b"MAXDELETEDID", b"0-0"])
        apply(value, TRIM, b"2")
        self.assertEqual(value.export_commands(b"k")[0][:5],
                         [b"XADD", b"k", b"MAXLEN", b"0", b"0-1"])
