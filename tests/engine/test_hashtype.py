"""Tests for kvtwist.engine.hashtype (and its packed encodings, engine/rdbpacked.py): the
Hash value, its operations and their undo, and the DUMP/RESTORE codec."""

from __future__ import annotations

import random
import struct

from hypothesis import given, settings, strategies as st
from twisted.trial.unittest import SynchronousTestCase

from kvtwist.engine import rdb, rdbpacked
from kvtwist.engine.hashtype import OP_HDEL, OP_HPUT, OP_HSET, PER_FIELD, Hash
from kvtwist.engine.types import OPS, TYPES, HASH
from tests.redisref import DifferentialMixin


def apply(value, opcode, *args):
    return OPS[(HASH, opcode)](value, tuple(args))


def nbytes(value: Hash) -> int:
    return sum(len(f) + len(v) + PER_FIELD for f, v in value.fields.items())


class HashValueTests(SynchronousTestCase):
    """The value class keeps the contract of engine/types.py."""

    def test_registered(self) -> None:
        """Hash is the type of code HASH, answering TYPE with hash."""
        self.assertIs(TYPES[HASH], Hash)
        self.assertEqual(Hash().type_name, b"hash")

    def test_flat_round_trip(self) -> None:
        """flatten and from_flat give back the same fields in the same order."""
        value = Hash()
        apply(value, OP_HSET, b"z", b"1", b"a", b"2")
        again = Hash.from_flat(Hash.flatten(value.frozen()))
        self.assertEqual(list(again.fields.items()), [(b"z", b"1"), (b"a", b"2")])
        self.assertEqual(again.nbytes, value.nbytes)

    def test_from_flat_refuses_malformed(self) -> None:
        """Odd, empty or repeated-field items are a ValueError."""
        for items in ([], [b"a"], [b"a", b"1", b"a", b"2"]):
            self.assertRaises(ValueError, Hash.from_flat, items)

    def test_export_chunks(self) -> None:
        """export_commands writes HSETs of at most 100 pairs."""
        value = Hash.from_flat([b"%d" % (i // 2) for i in range(500)])
        commands = value.export_commands(b"k")
        self.assertEqual([len(c) for c in commands], [202, 202, 102])
        self.assertEqual(commands[0][:4], [b"HSET", b"k", b"0", b"0"])

    def test_copy_is_independent(self) -> None:
        """A copy keeps the encoding and does not follow later changes."""
        value = Hash.from_flat([b"a", b"x" * 100])
        other = value.copy()
        apply(value, OP_HSET, b"b", b"2")
        self.assertEqual(list(other.fields), [b"a"])
        self.assertEqual(other.encoding(), b"hashtable")

    def test_frozen_is_a_copy(self) -> None:
        """frozen() does not change with the value."""
        value = Hash.from_flat([b"a", b"1"])
        frozen = value.frozen()
        apply(value, OP_HDEL, b"a")
        self.assertEqual(frozen, {b"a": b"1"})


class OperationTests(SynchronousTestCase):
    """Each operation's result, byte count and exact undo."""

    def snapshot(self, value: Hash):
        return list(value.fields.items()), value.nbytes, value.encoding()

    def test_hset_result_and_undo(self) -> None:
        """HSET counts new fields; its inverse restores values, order and size."""
        value = Hash.from_flat([b"a", b"1", b"b", b"2"])
        before = self.snapshot(value)
        result, undo = apply(value, OP_HSET, b"a", b"9", b"c", b"3", b"c", b"4")
        self.assertEqual(result, 1)
        self.assertEqual(value.fields, {b"a": b"9", b"b": b"2", b"c": b"4"})
        self.assertEqual(value.nbytes, nbytes(value))
        undo()
        self.assertEqual(self.snapshot(value), before)

    def test_hdel_undo_keeps_order(self) -> None:
        """HDEL's inverse puts a small hash's fields back in their places."""
        value = Hash.from_flat([b"a", b"1", b"b", b"2", b"c", b"3"])
        before = self.snapshot(value)
        result, undo = apply(value, OP_HDEL, b"a", b"x", b"b")
        self.assertEqual(result, 2)
        self.assertEqual(value.nbytes, nbytes(value))
        undo()
        self.assertEqual(self.snapshot(value), before)

    def test_hput(self) -> None:
        """HPUT sets one computed value: 1 when new; undone exactly."""
        value = Hash()
        self.assertEqual(apply(value, OP_HPUT, b"n", b"5")[0], 1)
        result, undo = apply(value, OP_HPUT, b"n", b"6")
        self.assertEqual(result, 0)
        undo()
        self.assertEqual(value.fields, {b"n": b"5"})

    def test_big_hash_undo_with_scan_order(self) -> None:
        """With a scan order made, undoing a HDEL keeps it consistent and the fields equal."""
        value = Hash.from_flat([b"f%d" % (i // 2) for i in range(2000)])
        order = value.scan_order()
        _, undo = apply(value, OP_HDEL, *[b"%d" % i for i in range(0, 1000, 3)])
        undo()
        self.assertEqual(len(value), 1000)
        self.assertEqual(value.nbytes, nbytes(value))
        seen, cursor = set(), 0
        while True:
            cursor, found = order.scan(cursor, 100)
            seen.update(found)
            if not cursor:
                break
        self.assertEqual(seen, set(value.fields))

    @settings(max_examples=60, deadline=None)
    @given(st.lists(st.tuples(st.sampled_from([OP_HSET, OP_HDEL, OP_HPUT]),
                              st.lists(st.sampled_from([b"a", b"b", b"c", b"dd", b"e" * 70]),
                                       min_size=2, max_size=6)),
                    min_size=1, max_size=30))
    def test_undo_all_restores(self, steps) -> None:
        """Any series of operations undone newest first leaves the value as it was."""
        value = Hash.from_flat([b"a", b"0", b"z", b"1"])
        before = self.snapshot(value)
        undos = []
        for opcode, args in steps:
            if opcode != OP_HDEL:
                args = args[:len(args) // 2 * 2] if opcode == OP_HSET else args[:2]
            undos.append(apply(value, opcode, *args)[1])
            self.assertEqual(value.nbytes, nbytes(value))
        for undo in reversed(undos):
            undo()
        self.assertEqual(self.snapshot(value)[:2], before[:2])


class ListpackTests(SynchronousTestCase):
    """The listpack writer and readers (engine/rdbpacked.py)."""

    ITEMS = [b"0", b"127", b"128", b"-1", b"4095", b"-4096", b"4096", b"-32768", b"32767",
             b"8388607", b"-8388608", b"2147483647", b"-2147483648", b"9223372036854775807",
             b"-9223372036854775808", b"9223372036854775808", b"007", b"-0", b"+1", b"",
             b"x" * 63, b"y" * 64, b"z" * 4095, b"w" * 4096, b"q" * 20000]

    def test_round_trip(self) -> None:
        """Every integer and string width reads back as written."""
        self.assertEqual(rdbpacked.read_listpack(rdbpacked.write_listpack(self.ITEMS)),
                         self.ITEMS)

    def test_integers_are_compact(self) -> None:
        """Canonical integers take Redis's smallest encoding (one byte for 0..127)."""
        self.assertEqual(rdbpacked.write_listpack([b"5"]), b"\x09\x00\x00\x00\x01\x00\x05\x01\xff")

    def test_malformed(self) -> None:
        """Truncated, mis-sized or mis-counted listpacks are Bad data format."""
        good = rdbpacked.write_listpack([b"abc", b"1"])
        for bad in (good[:-1], good[:6] + b"\xff", b"\x00" * 7,
                    struct.pack("<IH", len(good), 3) + good[6:]):
            self.assertRaises(rdb.BadPayload, rdbpacked.read_listpack, bad)

    def test_zipmap_and_ziplist(self) -> None:
        """The zipmap and ziplist of Redis's test assets read as their pairs."""
        zipmap = b"\x02\x02f1\x02\x00v1\x02f2\x02\x00v2\xff"
        self.assertEqual(rdbpacked.read_zipmap(zipmap), [b"f1", b"v1", b"f2", b"v2"])
        ziplist = bytes.fromhex("1b000000160000000400000266310402763104026632040276 32ff"
                                .replace(" ", ""))
        self.assertEqual(rdbpacked.read_ziplist(ziplist), [b"f1", b"v1", b"f2", b"v2"])
        self.assertRaises(rdb.BadPayload, rdbpacked.read_ziplist, ziplist[:-1] + b"\x00")
        self.assertRaises(rdb.BadPayload, rdbpacked.read_zipmap, zipmap[:-2] + b"\xff")


def ziplist(items) -> bytes:
    """Return a ziplist of ``items`` (bytes or ints) in Redis's encodings."""
    entries = []
    previous = 0
    for item in items:
        prevlen = bytes((previous,)) if previous < 254 else b"\xfe" + struct.pack("<I", previous)
        if isinstance(item, int):
            if 0 <= item <= 12:
                body = bytes((0xF1 + item,))
            else:
                for code, width in ((0xFE, 1), (0xC0, 2), (0xF0, 3), (0xD0, 4), (0xE0, 8)):
                    if -(1 << (8 * width - 1)) <= item < 1 << (8 * width - 1):
                        body = bytes((code,)) + item.to_bytes(width, "little", signed=True)
                        break
        elif len(item) < 64:
            body = bytes((len(item),)) + item
        elif len(item) < 16384:
            body = bytes((0x40 | (len(item) >> 8), len(item) & 0xFF)) + item
        else:
            body = b"\x80" + struct.pack(">I", len(item)) + item
        entry = prevlen + body
        entries.append(entry)
        previous = len(entry)
    body = b"".join(entries)
    tail = 10 + len(body) - len(entries[-1])
    return struct.pack("<IIH", 10 + len(body) + 1, tail, len(items)) + body + b"\xff"


class RestoreDifferentialTests(DifferentialMixin, SynchronousTestCase):
    """Old hash encodings RESTORE here as in redis-server 7.0."""

    def restore_both(self, kind: int, blob: bytes, key: bytes = b"h") -> None:
        body = bytes((kind,)) + rdb.encode_string(blob, compress=False)
        payload = body + rdb.footer(body)
        reply = self.compare([b"restore", key, b"0", payload, b"replace"])
        if reply.startswith(b"+"):
            theirs = self.redis.call([b"hgetall", key])
            ours = self.session.execute([b"hgetall", key])
            parts = theirs.split(b"\r\n")[2:-1:2]
            self.assertEqual(sorted(zip(parts[::2], parts[1::2])), sorted(ours.items))
            self.compare([b"object", b"encoding", key])

    def test_ziplist(self) -> None:
        """Ziplists of every entry encoding load; duplicates and odd counts are refused."""
        items = [b"f1", 5, b"f2", -100, b"f3", 3000, b"f4", -70000, b"f5", 2 ** 31,
                 b"f6", -2 ** 40, b"f7", b"x" * 300, b"f8", b"y" * 20000, b"f9", 0, b"a" * 64, 12]
        self.restore_both(rdb.TYPE_HASH_ZIPLIST, ziplist(items))
        self.restore_both(rdb.TYPE_HASH_ZIPLIST, ziplist([b"a", b"1", b"b", 7]), b"small")
        self.restore_both(rdb.TYPE_HASH_ZIPLIST, ziplist([b"a", b"1", b"a", b"2"]))
        self.restore_both(rdb.TYPE_HASH_ZIPLIST, ziplist([b"a", b"1", b"b"]))

    def test_zipmap(self) -> None:
        """A zipmap loads as its pairs."""
        self.restore_both(rdb.TYPE_HASH_ZIPMAP, b"\x02\x02f1\x02\x00v1\x02f2\x02\x00v2\xff")

    def test_listpack_and_hash(self) -> None:
        """Listpack and plain hash payloads load; an empty hash is refused."""
        self.restore_both(rdb.TYPE_HASH_LISTPACK, rdbpacked.write_listpack(
            ListpackTests.ITEMS[:20]))
        self.restore_both(rdb.TYPE_HASH_LISTPACK, rdbpacked.write_listpack([]))
        body = bytes((rdb.TYPE_HASH,)) + rdb.encode_length(0)
        self.compare([b"restore", b"e", b"0", body + rdb.footer(body)])
        # A repeated field: redis-server (sanitize-dump-payload no) keeps a corrupt hash of
        # two "a" fields; kvstore refuses it.
        body = bytes((rdb.TYPE_HASH,)) + rdb.encode_length(2) + b"\x01a\x01b\x01a\x01c"
        reply = self.session.execute([b"restore", b"d", b"0", body + rdb.footer(body)])
        self.assertEqual(reply.message, "ERR Bad data format")

    def test_random_dump_round_trip(self) -> None:
        """Random hashes DUMP here and RESTORE in redis-server, and back, unchanged."""
        rng = random.Random(5)
        for round_ in range(20):
            key = b"r%d" % round_
            argv = [b"hset", key]
            for _ in range(rng.choice([1, 5, 50, 600])):
                argv += [b"%d" % rng.randrange(-10 ** 6, 10 ** 6),
                         rng.choice([b"%d" % rng.randrange(-2 ** 63, 2 ** 63), b"v" * 70,
                                     b"text", b""])]
            self.session.execute(argv)
            payload = self.session.execute([b"dump", key])
            self.assertEqual(self.redis.call([b"restore", key, b"0", payload]), b"+OK\r\n")
            self.compare([b"hlen", key])
            self.compare([b"object", b"encoding", key])
            theirs = self.redis.call([b"dump", key]).split(b"\r\n", 1)[1][:-2]
            ours = self.session.execute([b"hgetall", key]).items
            self.session.execute([b"restore", key, b"0", theirs, b"replace"])
            self.assertEqual(sorted(self.session.execute([b"hgetall", key]).items), sorted(ours))


class ScanOrderUndoTests(SynchronousTestCase):
    """An undo after a scan order was made keeps the order complete."""

    def test_order_made_between_hdel_and_undo(self) -> None:
        """Fields an HDEL's undo puts back are in a scan order made after the HDEL."""
        value = Hash.from_flat([b"a", b"1", b"b", b"2", b"c", b"3"])
        _, undo = apply(value, OP_HDEL, b"a")
        order = value.scan_order()
        undo()
        self.assertEqual(set(order.scan(0, 100)[1]), {b"a", b"b", b"c"})
