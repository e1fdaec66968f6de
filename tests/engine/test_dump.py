"""Tests for kvtwist.engine.dump: DUMP (a key's RDB payload, or every pair) and RESTORE."""

from __future__ import annotations

import random

from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from kvtwist.engine import rdb
from kvtwist.engine.keyspace import DEL, SET
from kvtwist.engine.store import Store
from kvtwist.wire import replies
from kvtwist.wire.replies import OK, Pairs, Streamed, to_resp
from kvtwist.wire.textreply import to_text
from tests.helpers import START, SessionMixin
from tests.redisref import RawConnection, start_redis_or_skip

NOW_MS = int(START * 1000)
BAR = rdb.dump_string(b"bar")


class DumpAllTests(SessionMixin, SynchronousTestCase):
    def test_dump_without_key_lists_pairs(self):
        """DUMP (and PRINT) with no argument lists every live pair sorted by key, as before."""
        self.call("mset", "b", "2", "a", "1")
        self.call("set", "gone", "x", "px", "1")
        self.clock.advance(1)
        reply = self.call("dump")
        self.assertEqual(reply, Pairs([(b"a", b"1"), (b"b", b"2")]))
        self.assertEqual(to_text(reply), b'"a" => "1"\r\n"b" => "2"\r\n(2 pairs)\r\n')
        self.assertEqual(self.call("print"), reply)

    def test_large_dump_streams_a_snapshot(self):
        """DUMP over many keys streams the live pairs sorted by key, as they were when it ran."""
        count = replies.STREAM_MIN + 500
        args = []
        for i in range(count):
            args += [b"k%05d" % ((i * 7919) % count), b"v%d" % i]
        self.call("mset", *args)
        expected = Pairs(sorted(zip(args[::2], args[1::2])))
        reply = self.call("dump")
        self.assertIsInstance(reply, Streamed)
        self.call("set", "k00001", "changed")
        self.assertEqual(reply.whole(), expected)


class DumpKeyTests(SessionMixin, SynchronousTestCase):
    def test_dump_key(self):
        """DUMP key returns Redis's payload of the value; a missing or expired key is nil."""
        self.call("set", "foo", "bar")
        self.assertEqual(self.call("dump", "foo"), BAR)
        self.assertEqual(self.call("print", "foo"), BAR)
        self.assertIsNone(self.call("dump", "nosuch"))
        self.call("set", "gone", "x", "px", "1")
        self.clock.advance(1)
        self.assertIsNone(self.call("dump", "gone"))

    def test_dump_arity(self):
        """DUMP with two or more keys is Redis's arity error."""
        self.assertEqual(self.error("dump", "a", "b"),
                         "ERR wrong number of arguments for 'dump' command")


class RestoreTests(SessionMixin, SynchronousTestCase):
    def test_round_trip(self):
        """A DUMPed value RESTOREs under another key with no TTL, logged as one SET."""
        self.call("set", "foo", "x" * 100)
        payload = self.call("dump", "foo")
        self.assertEqual(self.call("restore", "copy", "0", payload), OK)
        self.assertEqual(self.call("get", "copy"), b"x" * 100)
        self.assertEqual(self.call("ttl", "copy"), -1)
        self.assertEqual(self.journal.effects[-1], (SET, b"copy", b"x" * 100, 0))

    def test_relative_and_absolute_ttl(self):
        """The TTL is in ms from now, or with ABSTTL a Unix time in ms; 0 means none."""
        self.assertEqual(self.call("restore", "a", "5000", BAR), OK)
        self.assertEqual(self.call("pttl", "a"), 5000)
        self.assertEqual(self.journal.effects[-1], (SET, b"a", b"bar", NOW_MS + 5000))
        self.assertEqual(self.call("restore", "b", str(NOW_MS + 3000), BAR, "ABSTTL"), OK)
        self.assertEqual(self.call("pttl", "b"), 3000)
        self.assertEqual(self.call("restore", "c", "0", BAR, "absttl"), OK)
        self.assertEqual(self.call("pttl", "c"), -1)
        self.assertEqual(self.call("restore", "d", "2569591501", BAR), OK)
        self.assertEqual(self.call("pttl", "d"), 2569591501)

    def test_past_ttl_does_not_create_and_replace_deletes(self):
        """An ABSTTL time not in the future creates nothing; with REPLACE the old key goes."""
        self.assertEqual(self.call("restore", "a", str(NOW_MS), BAR, "absttl"), OK)
        self.assertEqual(self.call("exists", "a"), 0)
        self.call("set", "old", "v")
        self.assertEqual(self.call("restore", "old", "1", BAR, "absttl", "replace"), OK)
        self.assertEqual(self.call("exists", "old"), 0)
        self.assertEqual(self.journal.effects[-1], (DEL, b"old"))

    def test_overflowing_ttl_is_in_the_past(self):
        """A relative TTL that overflows 64 bits wraps into the past, as in Redis: no key."""
        self.assertEqual(self.call("restore", "a", "9223372036854775807", BAR), OK)
        self.assertEqual(self.call("exists", "a"), 0)

    def test_busykey_and_replace(self):
        """An existing key is BUSYKEY (before the TTL and payload are checked) unless REPLACE."""
        self.call("set", "foo", "old", "ex", "100")
        self.assertEqual(self.error("restore", "foo", "x", "..."),
                         "BUSYKEY Target key name already exists.")
        self.assertEqual(self.call("restore", "foo", "0", BAR, "REPLACE"), OK)
        self.assertEqual(self.call("get", "foo"), b"bar")
        self.assertEqual(self.call("ttl", "foo"), -1)
        self.call("set", "gone", "x", "px", "1")
        self.clock.advance(1)
        self.assertEqual(self.call("restore", "gone", "0", BAR), OK)

    def test_argument_errors(self):
        """Options, then the TTL, then the payload are checked, with Redis's texts."""
        self.assertEqual(self.error("restore", "k", "-1", "...", "bogus"), "ERR syntax error")
        self.assertEqual(self.error("restore", "k", "0", BAR, "idletime"), "ERR syntax error")
        self.assertEqual(self.error("restore", "k", "x", "..."),
                         "ERR value is not an integer or out of range")
        self.assertEqual(self.error("restore", "k", "-1", "..."),
                         "ERR Invalid TTL value, must be >= 0")
        self.assertEqual(self.error("restore", "k", "0", "..."),
                         "ERR DUMP payload version or checksum are wrong")
        self.assertEqual(self.error("restore", "k", "0", BAR[:-1] + b"\0"),
                         "ERR DUMP payload version or checksum are wrong")
        self.assertEqual(self.error("restore", "k", "0", b"\x08" + BAR[1:-8] + rdb.crc64(
            b"\x08" + BAR[1:-8]).to_bytes(8, "little")), "ERR Bad data format")
        self.assertEqual(self.error("restore", "k"),
                         "ERR wrong number of arguments for 'restore' command")
        self.assertEqual(self.call("exists", "k"), 0)

    def test_idletime_and_freq_are_validated(self):
        """IDLETIME and FREQ get Redis's checks, and only one of them may be given."""
        self.assertEqual(self.error("restore", "k", "0", BAR, "idletime", "-1"),
                         "ERR Invalid IDLETIME value, must be >= 0")
        self.assertEqual(self.error("restore", "k", "0", BAR, "idletime", "x"),
                         "ERR value is not an integer or out of range")
        self.assertEqual(self.error("restore", "k", "0", BAR, "freq", "256"),
                         "ERR Invalid FREQ value, must be >= 0 and <= 255")
        self.assertEqual(self.error("restore", "k", "0", BAR, "freq", "1", "idletime", "1"),
                         "ERR syntax error")
        self.assertEqual(self.error("restore", "k", "0", BAR, "idletime", "1", "freq", "1"),
                         "ERR syntax error")
        self.assertEqual(self.call("exists", "k"), 0)

    def test_freq_sets_the_access_counter_under_lfu(self):
        """Under an LFU policy RESTORE ... FREQ f sets the key's counter (OBJECT FREQ), as
        objectSetLRUOrLFU; under another policy FREQ is accepted and has no effect."""
        self.assertEqual(self.call("restore", "a", "0", BAR, "freq", "100"), OK)
        self.assertEqual(self.call("get", "a"), b"bar")
        self.assertEqual(self.call("config", "set", "maxmemory-policy", "allkeys-lfu"), OK)
        self.assertEqual(self.call("restore", "b", "0", BAR, "freq", "100"), OK)
        self.assertEqual(self.call("object", "freq", "b"), 100)
        self.assertEqual(self.call("restore", "c", "0", BAR, "idletime", "500"), OK)
        self.assertEqual(self.call("object", "freq", "c"), 5)  # LFU_INIT_VAL: a new key

    def test_idletime_sets_the_access_time(self):
        """RESTORE ... IDLETIME s leaves the key idle for s seconds (OBJECT IDLETIME), as
        Redis's objectSetLRUOrLFU; without it the restored key was just accessed."""
        self.clock.advance(5000)
        self.assertEqual(self.call("restore", "a", "0", BAR, "idletime", "1000"), OK)
        self.assertEqual(self.call("restore", "b", "0", BAR), OK)
        self.assertEqual(self.call("object", "idletime", "a"), 1000)
        self.assertEqual(self.call("object", "idletime", "b"), 0)
        self.clock.advance(3)
        self.assertEqual(self.call("object", "idletime", "a"), 1003)
        self.assertEqual(self.call("restore", "a", "0", BAR, "replace", "idletime", "7"), OK)
        self.assertEqual(self.call("object", "idletime", "a"), 7)
        self.assertEqual(self.call("get", "a"), b"bar")
        self.assertEqual(self.call("object", "idletime", "a"), 0)

    def test_set_payload_restores(self):
        """A set payload from redis-server restores as a set (engine/settype.py)."""
        payload = bytes.fromhex("0202017901780a000cdf6b3db330bcf0")
        self.assertEqual(self.call("restore", "k", "0", payload), OK)
        self.assertEqual(sorted(self.call("smembers", "k")), [b"x", b"y"])


# Values for the interop tests: integers at the encoding edges, short, long compressible
# and incompressible, binary, empty.
INTEROP_VALUES = [b"", b"0", b"-1", b"127", b"128", b"-32769", b"2147483647", b"2147483648",
                  b"9223372036854775807", b"-9223372036854775808", b"18446744073709551616",
                  b"007", b"1.5", b"bar", b"\x00\xff\r\n", b"a" * 20, b"a" * 21, b"ab" * 500,
                  b"hello world " * 40, bytes(range(256)) * 3, b"x" * 70000]


class InteropTests(SynchronousTestCase):
    """DUMP payloads cross between kvstore's engine and a real redis-server, both ways."""

    def setUp(self):
        server = start_redis_or_skip()
        self.addCleanup(server.stop)
        self.redis = RawConnection(server.port)
        self.addCleanup(self.redis.close)
        self.clock = Clock()
        self.clock.advance(START)
        self.session = Store(self.clock).new_session()

    def ours(self, *argv):
        return to_resp(self.session.execute(list(argv)))

    def values(self):
        rng = random.Random(7)
        values = list(INTEROP_VALUES)
        for _ in range(60):
            size = rng.choice([5, 19, 21, 40, 300, 5000, 20000])
            alphabet = rng.choice([b"ab", b"abcdefgh", bytes(range(256))])
            values.append(bytes(rng.choice(alphabet) for _ in range(size)))
            values.append(b"%d" % rng.randint(-2 ** 64, 2 ** 64))
        return values

    def test_redis_dump_restores_into_kvstore(self):
        """Each value DUMPed by redis-server RESTOREs into kvstore and DUMPs back identically."""
        for value in self.values():
            self.assertEqual(self.redis.call([b"SET", b"k", value]), b"+OK\r\n")
            theirs = self.redis.call([b"DUMP", b"k"])
            payload = theirs.split(b"\r\n", 1)[1][:-2]
            self.assertEqual(self.ours(b"RESTORE", b"k", b"0", payload, b"REPLACE"), b"+OK\r\n")
            self.assertEqual(self.ours(b"GET", b"k"), self.redis.call([b"GET", b"k"]))
            self.assertEqual(self.ours(b"DUMP", b"k"), theirs, value[:40])

    def test_kvstore_dump_restores_into_redis(self):
        """Each value DUMPed by kvstore RESTOREs into redis-server to the same value."""
        for value in self.values():
            self.ours(b"SET", b"k", value)
            payload = self.session.execute([b"DUMP", b"k"])
            self.assertEqual(self.redis.call([b"RESTORE", b"k", b"0", payload, b"REPLACE"]),
                             b"+OK\r\n")
            self.assertEqual(self.redis.call([b"GET", b"k"]), self.ours(b"GET", b"k"))

    def test_errors_and_quirks_match(self):
        """Bad payloads, option errors and Redis's decoding quirks give redis-server's replies."""
        footer_read = b"\x00\x0a" + rdb.footer(b"\x00\x0a")
        lzf_empty = b"\x00\xc3\x02\x00\x00a" + rdb.footer(b"\x00\xc3\x02\x00\x00a")
        old = b"\x00\x03bar\x09\x00"
        old += rdb.crc64(old).to_bytes(8, "little")
        cases = [[b"RESTORE", b"q", b"0", b"..."], [b"RESTORE", b"q", b"-5", BAR],
                 [b"RESTORE", b"q", b"x", BAR], [b"RESTORE", b"q", b"0", BAR, b"nope"],
                 [b"RESTORE", b"q", b"0", BAR, b"FREQ", b"300"],
                 [b"RESTORE", b"q", b"0", BAR, b"IDLETIME", b"-2"],
                 [b"RESTORE", b"q", b"0", BAR[:-1] + b"!"],
                 [b"RESTORE", b"q", b"0", b"\x08" + BAR[1:-8]
                  + rdb.crc64(b"\x08" + BAR[1:-8]).to_bytes(8, "little")],
                 [b"RESTORE", b"f", b"0", footer_read], [b"GET", b"f"],
                 [b"RESTORE", b"e", b"0", lzf_empty], [b"GET", b"e"],
                 [b"RESTORE", b"o", b"0", old], [b"GET", b"o"], [b"DUMP", b"o"],
                 [b"RESTORE", b"o", b"0", old], [b"DUMP", b"nosuch"], [b"DUMP", b"a", b"b"],
                 [b"RESTORE", b"p", b"9223372036854775807", BAR], [b"EXISTS", b"p"],
                 [b"RESTORE", b"o", b"1", BAR, b"ABSTTL", b"REPLACE"], [b"EXISTS", b"o"]]
        for argv in cases:
            self.assertEqual(self.ours(*argv), self.redis.call(argv), argv)
