"""The list value (engine/listtype.py): operations and their inverses, records, DUMP/RESTORE."""

from __future__ import annotations

import random

from twisted.trial.unittest import SynchronousTestCase

from kvtwist.engine import listpack, rdb
from kvtwist.engine.listtype import (
    INSERT_AT, PER_ELEMENT, POP_LEFT, POP_RIGHT, PUSH_LEFT, PUSH_RIGHT, REMOVE, ROTATE,
    SET_AT, TRIM, ListValue)
from kvtwist.engine.packeddeque import PackedDeque
from kvtwist.engine.types import LIST, OPS
from kvtwist.wire.replies import OK, Error
from tests.helpers import SessionMixin
from tests.redisref import RawConnection, start_redis_or_skip

OPERATIONS = [
    (PUSH_LEFT, (b"x", b"y")), (PUSH_RIGHT, (b"z",)), (POP_LEFT, (b"2",)), (POP_RIGHT, (b"3",)),
    (SET_AT, (b"1", b"new")), (INSERT_AT, (b"2", b"ins")), (INSERT_AT, (b"0", b"first")),
    (REMOVE, (b"2", b"a")), (REMOVE, (b"-1", b"a")), (REMOVE, (b"0", b"a")),
    (REMOVE, (b"0", b"absent")), (TRIM, (b"1", b"2")), (TRIM, (b"0", b"7")),
    (ROTATE, (b"L", b"R")), (ROTATE, (b"R", b"L")), (ROTATE, (b"L", b"L")),
]


class OperationTests(SynchronousTestCase):
    """Each operation's inverse restores the exact list and its size."""

    def test_inverses(self):
        """Every opcode applied then undone leaves the elements and nbytes as before."""
        for opcode, args in OPERATIONS:
            value = ListValue([b"a", b"b", b"a", b"c", b"a", b"d", b"a", b"e"])
            before, size = list(value.items), value.nbytes
            _, inverse = OPS[(LIST, opcode)](value, args)
            self.assertEqual(value.nbytes,
                             sum(map(len, value.items)) + PER_ELEMENT * len(value), opcode)
            inverse()
            self.assertEqual((list(value.items), value.nbytes), (before, size), opcode)

    def test_long_list_inverses(self):
        """On lists of many packed chunks every opcode's inverse restores the exact list."""
        rng = random.Random(7)
        for elements in ([b"%03d" % (n % 10) for n in range(1000)],
                         [b"v%d" % (n % 13) for n in range(1000)]):
            for _ in range(200):
                value = ListValue(elements)
                size = len(value)
                opcode = rng.choice([PUSH_LEFT, PUSH_RIGHT, POP_LEFT, POP_RIGHT, SET_AT,
                                     INSERT_AT, REMOVE, TRIM, ROTATE])
                if opcode in (PUSH_LEFT, PUSH_RIGHT):
                    args = tuple(rng.choice(elements) for _ in range(rng.randrange(1, 300)))
                elif opcode in (POP_LEFT, POP_RIGHT):
                    args = (b"%d" % rng.randrange(1, size),)
                elif opcode == SET_AT:
                    args = (b"%d" % rng.randrange(size), rng.choice([b"new", b"x" * 9000]))
                elif opcode == INSERT_AT:
                    args = (b"%d" % rng.randrange(size + 1), b"ins")
                elif opcode == REMOVE:
                    args = (b"%d" % rng.randrange(-50, 50), rng.choice(elements))
                elif opcode == TRIM:
                    args = (b"%d" % rng.randrange(400), b"%d" % rng.randrange(400))
                else:
                    args = (rng.choice([b"L", b"R"]), rng.choice([b"L", b"R"]))
                _, inverse = OPS[(LIST, opcode)](value, args)
                self.assertEqual(value.nbytes,
                                 sum(map(len, value.items)) + PER_ELEMENT * len(value))
                inverse()
                self.assertEqual(list(value.items), elements, opcode)
                self.assertEqual(value.nbytes, ListValue(elements).nbytes, opcode)

    def test_packed_storage(self):
        """A list keeps its elements in a PackedDeque; a snapshot is not changed by later
        operations."""
        value = ListValue([b"%04d" % n for n in range(1000)])
        self.assertIsInstance(value.items, PackedDeque)
        frozen = value.frozen()
        OPS[(LIST, POP_LEFT)](value, (b"500",))
        OPS[(LIST, SET_AT)](value, (b"10", b"changed"))
        self.assertEqual(ListValue.flatten(frozen), [b"%04d" % n for n in range(1000)])

    def test_remove_positions(self):
        """LREM's inverse puts removed elements back where they were, from either end."""
        rng = random.Random(3)
        for _ in range(200):
            items = [rng.choice([b"a", b"b"]) for _ in range(rng.randrange(1, 12))]
            value = ListValue(items)
            count = rng.randrange(-3, 4)
            removed, inverse = OPS[(LIST, REMOVE)](value, (b"%d" % count, b"a"))
            inverse()
            self.assertEqual(list(value.items), items)

    def test_flat_round_trip(self):
        """flatten/from_flat round-trip; an empty or non-bytes record is malformed."""
        value = ListValue([b"a", b"", b"c"])
        self.assertEqual(list(ListValue.from_flat(ListValue.flatten(value.frozen())).items),
                         [b"a", b"", b"c"])
        self.assertRaises(ValueError, ListValue.from_flat, [])
        self.assertRaises(ValueError, ListValue.from_flat, [b"a", 3])

    def test_export_chunks(self):
        """export_commands writes RPUSHes of at most 100 elements."""
        value = ListValue([b"%d" % n for n in range(250)])
        commands = value.export_commands(b"k")
        self.assertEqual([len(argv) - 2 for argv in commands], [100, 100, 50])
        self.assertEqual(commands[0][:3], [b"RPUSH", b"k", b"0"])


class ListpackTests(SynchronousTestCase):
    """The listpack codec round-trips every encoding."""

    def test_round_trip(self):
        """Integers of every width, strings of every length class, and odd text survive."""
        elements = [b"0", b"127", b"128", b"-1", b"4095", b"-4096", b"32767", b"-32768",
                    b"8388607", b"2147483647", b"-2147483648", b"9223372036854775807",
                    b"-9223372036854775808", b"007", b"+1", b"", b"x" * 63, b"y" * 64,
                    b"z" * 4095, b"w" * 4096, b"1" * 30]
        self.assertEqual(listpack.decode(listpack.encode(elements)), elements)

    def test_malformed(self):
        """A truncated blob is refused."""
        blob = listpack.encode([b"abc", b"12"])
        self.assertRaises(ValueError, listpack.decode, blob[:-2] + b"\xff")


class DumpInteropTests(SessionMixin, SynchronousTestCase):
    """DUMP payloads move between kvstore and redis-server both ways."""

    def setUp(self):
        SessionMixin.setUp(self)
        server = start_redis_or_skip()
        self.addCleanup(server.stop)
        self.redis = RawConnection(server.port)
        self.addCleanup(self.redis.close)

    def _redis_dump(self, key: bytes) -> bytes:
        reply = self.redis.call([b"DUMP", key])
        size, _, rest = reply[1:].partition(b"\r\n")
        return rest[:int(size)]

    def test_both_ways(self):
        """Small, integer-rich and multi-node lists: redis-server's DUMP restores here, and
        ours restores in redis-server, with the same elements."""
        cases = [[b"a"], [b"%d" % n for n in range(-300, 300, 7)] + [b"x" * 100],
                 [b"e%d" % n + b"." * (n % 50) for n in range(3000)], [b"big" * 5000, b"s"]]
        for number, elements in enumerate(cases):
            key = b"list%d" % number
            self.redis.call([b"DEL", key])
            for start in range(0, len(elements), 500):
                self.redis.call([b"RPUSH", key] + elements[start:start + 500])
            payload = self._redis_dump(key)
            self.assertEqual(self.call("RESTORE", key, "0", payload), OK)
            self.assertEqual(self.call("LRANGE", key, "0", "-1"), elements)
            ours = self.call("DUMP", key)
            self.assertEqual(self.redis.call([b"RESTORE", key, b"0", ours, b"REPLACE"]),
                             b"+OK\r\n")
            self.assertEqual(self.redis.call([b"LLEN", key]), b":%d\r\n" % len(elements))
            self.assertEqual(self.redis.call([b"LINDEX", key, b"-1"]),
                             b"$%d\r\n%s\r\n" % (len(elements[-1]), elements[-1]))

    def test_bad_payload(self):
        """A corrupt list payload is Bad data format, as Redis says."""
        body = bytes((rdb.TYPE_LIST_QUICKLIST_2,)) + rdb.encode_length(1) + rdb.encode_length(
            2) + rdb.encode_string(b"\x00\x01garbage", compress=False)
        reply = self.call("RESTORE", "k", "0", body + rdb.footer(body))
        self.assertIsInstance(reply, Error)
        self.assertEqual(reply.message, "ERR Bad data format")
