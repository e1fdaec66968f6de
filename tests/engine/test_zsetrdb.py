"""Tests for kvtwist.engine.zsetrdb: sorted sets DUMPed by redis-server RESTORE into kvstore
and back, every encoding Redis 7.0 may write (listpack, ZSET_2, ZSET, ziplist), and the
payloads RESTORE refuses."""

from __future__ import annotations

import random
import struct

from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from kvtwist.engine import rdb
from kvtwist.engine.store import Store
from kvtwist.engine.zsetrdb import listpack_entries, ziplist_entries
from kvtwist.wire.replies import to_resp
from tests.redisref import RawConnection, start_redis_or_skip


def payload(body: bytes) -> bytes:
    """Return a DUMP payload of an RDB object body."""
    return body + rdb.footer(body)


def ziplist(entries) -> bytes:
    """Return a ziplist of string entries (short strings, prevlen of one byte)."""
    body = b""
    previous = 0
    tail = 10
    for entry in entries:
        tail = 10 + len(body)
        if entry.__class__ is int:
            encoded = bytes((previous, 0xFE)) + struct.pack("<b", entry)
        else:
            encoded = bytes((previous, len(entry))) + entry
        body += encoded
        previous = len(encoded)
    total = 10 + len(body) + 1
    return struct.pack("<IIH", total, tail, len(entries)) + body + b"\xff"


class InteropTests(SynchronousTestCase):
    def setUp(self):
        server = start_redis_or_skip()
        self.addCleanup(server.stop)
        self.redis = RawConnection(server.port)
        self.addCleanup(self.redis.close)
        self.session = Store(Clock()).new_session()

    def ours(self, *argv):
        return to_resp(self.session.execute(list(argv)))

    def sets(self):
        rng = random.Random(5)
        yield [(b"1", b"a"), (b"2.5", b"b"), (b"-inf", b"c"), (b"inf", b"d"), (b"-0", b"e"),
               (b"12345", b"123"), (b"-7", b"-1"), (b"1e300", b"x" * 40)]
        yield [(b"0.1", b"m" * 70)]
        yield [(b"%d" % i, b"%d" % (i * 7)) for i in range(129)]
        for _ in range(4):
            size = rng.choice([3, 100, 500])
            yield [(repr(rng.uniform(-1e6, 1e6)).encode(),
                    bytes(rng.randrange(256) for _ in range(rng.randrange(30))))
                   for _ in range(size)]

    def test_redis_dump_restores_into_kvstore_and_back(self):
        """A sorted set DUMPed by redis-server (listpack or skiplist) RESTOREs into kvstore with
        the same members, scores and encoding, and kvstore's DUMP RESTOREs into redis-server."""
        for pairs in self.sets():
            self.redis.call([b"DEL", b"k", b"back"])
            argv = [b"ZADD", b"k"]
            for score, member in pairs:
                argv += [score, member]
            self.redis.call(argv)
            theirs = self.redis.call([b"DUMP", b"k"]).split(b"\r\n", 1)[1][:-2]
            self.assertEqual(self.ours(b"RESTORE", b"k", b"0", theirs, b"REPLACE"), b"+OK\r\n")
            for check in ([b"ZRANGE", b"k", b"0", b"-1", b"WITHSCORES"],
                          [b"OBJECT", b"ENCODING", b"k"]):
                self.assertEqual(self.ours(*check), self.redis.call(check))
            ours = self.session.execute([b"DUMP", b"k"])
            self.assertEqual(self.redis.call([b"RESTORE", b"back", b"0", ours]), b"+OK\r\n")
            self.assertEqual(self.redis.call([b"ZRANGE", b"back", b"0", b"-1", b"WITHSCORES"]),
                             self.ours(b"ZRANGE", b"k", b"0", b"-1", b"WITHSCORES"))

    def test_old_encodings_and_bad_payloads(self):
        """ZSET (text scores) and ziplist payloads load as redis-server loads them; empty sets,
        NaN scores, repeated members and malformed ziplists are refused alike."""
        text = bytes((rdb.TYPE_ZSET,)) + rdb.encode_length(3) + rdb.encode_string(b"a") \
            + b"\x031.5" + rdb.encode_string(b"b") + b"\xfe" + rdb.encode_string(b"c") + b"\xff"
        cases = [
            payload(text),
            payload(bytes((rdb.TYPE_ZSET_ZIPLIST,)) + rdb.encode_string(
                ziplist([b"a", b"1", b"c", b"2.5", b"b", 7]), compress=False)),
            payload(bytes((rdb.TYPE_ZSET_2,)) + rdb.encode_length(0)),
            payload(bytes((rdb.TYPE_ZSET,)) + rdb.encode_length(1) + rdb.encode_string(b"a")
                    + b"\xfd"),
            payload(bytes((rdb.TYPE_ZSET_2,)) + rdb.encode_length(2) + rdb.encode_string(b"a")
                    + struct.pack("<d", 1.0) + rdb.encode_string(b"a") + struct.pack("<d", 2.0)),
            payload(bytes((rdb.TYPE_ZSET_ZIPLIST,)) + rdb.encode_string(
                ziplist([b"a", b"1", b"b"]), compress=False)),
            payload(bytes((rdb.TYPE_ZSET_LISTPACK,)) + rdb.encode_string(b"\x07\x00\x00\x00\x00",
                                                                         compress=False)),
        ]
        for data in cases:
            argv = [b"RESTORE", b"k", b"0", data, b"REPLACE"]
            self.assertEqual(self.ours(*argv), self.redis.call(argv), data)
            check = [b"ZRANGE", b"k", b"0", b"-1", b"WITHSCORES"]
            self.assertEqual(self.ours(*check), self.redis.call(check))


class PackTests(SynchronousTestCase):
    def test_redis_listpack_payload(self):
        """A listpack payload from redis-server (ZADD k 1 m) loads as that sorted set."""
        kind, value = rdb.load(bytes.fromhex("110c0c0000000200816d020101ff0a0026e3fd9ddd7d6ecb"))
        self.assertEqual((kind, value.scores, value.encoding()),
                         (rdb.TYPE_ZSET_LISTPACK, {b"m": 1.0}, b"listpack"))

    def test_listpack_integers_and_strings(self):
        """Listpack entries decode: 7-bit, 13-bit, 16..64-bit integers and 6/12/32-bit strings."""
        entries = [b"\x05\x01", b"\xdf\xff\x02", b"\xf1\x00\x80\x03", b"\xf4" + struct.pack(
            "<q", -2) + b"\x09", b"\x83abc\x04", b"\xe0\x02xy\x04"]
        body = b"".join(entries)
        blob = struct.pack("<IH", 6 + len(body) + 1, len(entries)) + body + b"\xff"
        self.assertEqual(listpack_entries(blob), [5, -1, -32768, -2, b"abc", b"xy"])

    def test_ziplist_entries(self):
        """Ziplist entries decode: strings, 8-bit and immediate integers."""
        blob = ziplist([b"ab", -3])
        self.assertEqual(ziplist_entries(blob), [b"ab", -3])
