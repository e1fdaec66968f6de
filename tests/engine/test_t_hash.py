"""Tests for kvtwist.engine.t_hash: the hash commands, against a real redis-server too."""

from __future__ import annotations

import random

from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from kvtwist.engine import hashtype
from kvtwist.engine.store import Store
from kvtwist.wire.replies import NIL_ARRAY, OK, Error, Pairs, Streamed, to_resp
from tests.helpers import SessionMixin
from tests.redisref import DifferentialMixin

WRONGTYPE = "WRONGTYPE Operation against a key holding the wrong kind of value"


def b(*args):
    return [a if isinstance(a, bytes) else str(a).encode() for a in args]


class HashCommandTests(SynchronousTestCase):
    """The hash commands on one store."""

    def setUp(self) -> None:
        self.session = Store(Clock()).new_session()

    def run_(self, *args):
        return self.session.execute(b(*args))

    def test_hset_hget_hlen(self) -> None:
        """HSET counts new fields, HGET reads them, HLEN counts them."""
        self.assertEqual(self.run_("hset", "h", "a", "1", "b", "2"), 2)
        self.assertEqual(self.run_("hset", "h", "a", "3", "c", "4"), 1)
        self.assertEqual(self.run_("hget", "h", "a"), b"3")
        self.assertIsNone(self.run_("hget", "h", "zz"))
        self.assertIsNone(self.run_("hget", "nokey", "a"))
        self.assertEqual(self.run_("hlen", "h"), 3)
        self.assertEqual(self.run_("type", "h"), OK.__class__(b"hash"))

    def test_hgetall_keeps_insertion_order(self) -> None:
        """HGETALL lists fields in insertion order, an updated field keeping its place."""
        self.run_("hset", "h", "z", "1", "a", "2", "m", "3")
        self.run_("hset", "h", "z", "9")
        self.assertEqual(self.run_("hgetall", "h"),
                         Pairs([(b"z", b"9"), (b"a", b"2"), (b"m", b"3")]))
        self.assertEqual(self.run_("hkeys", "h"), [b"z", b"a", b"m"])
        self.assertEqual(self.run_("hvals", "h"), [b"9", b"2", b"3"])

    def test_big_hgetall_is_streamed(self) -> None:
        """A hash of more than STREAM_MIN fields is given a slice at a time."""
        args = ["hset", "h"]
        for i in range(3000):
            args += ["f%d" % i, "v%d" % i]
        self.run_(*args)
        reply = self.run_("hgetall", "h")
        self.assertIsInstance(reply, Streamed)
        self.assertEqual(len(reply.whole().items), 3000)

    def test_hdel_removes_the_emptied_key(self) -> None:
        """HDEL counts the fields removed; the last one takes the key with it."""
        self.run_("hset", "h", "a", "1", "b", "2")
        self.assertEqual(self.run_("hdel", "h", "a", "x", "a"), 1)
        self.assertEqual(self.run_("hdel", "h", "x"), 0)
        self.assertEqual(self.run_("hdel", "h", "b"), 1)
        self.assertEqual(self.run_("exists", "h"), 0)

    def test_wrongtype(self) -> None:
        """Every hash command on a string, and GET on a hash, answer WRONGTYPE."""
        self.run_("set", "s", "x")
        self.run_("hset", "h", "a", "1")
        for argv in (["hset", "s", "a", "1"], ["hget", "s", "a"], ["hgetall", "s"],
                     ["hincrby", "s", "a", "1"], ["hscan", "s", "0"], ["hrandfield", "s"],
                     ["hdel", "s", "a"], ["hlen", "s"], ["get", "h"]):
            self.assertEqual(self.run_(*argv), Error(WRONGTYPE), argv)

    def test_hincrbyfloat_logs_the_value(self) -> None:
        """HINCRBYFLOAT's logged operation holds the resulting value, as Redis's HSET."""
        logged = []
        self.session.keyspace.log = logged.append
        self.assertEqual(self.run_("hincrbyfloat", "h", "f", "10.5"), b"10.5")
        self.assertEqual(self.run_("hincrbyfloat", "h", "f", "0.1"), b"10.6")
        self.assertEqual(logged[-1][3:], (hashtype.OP_HPUT, (b"f", b"10.6")))

    def test_encoding_converts_and_stays(self) -> None:
        """OBJECT ENCODING is listpack until 513 fields or a 65-byte value, then hashtable."""
        self.run_("hset", "h", "a", "x" * 64)
        self.assertEqual(self.run_("object", "encoding", "h"), b"listpack")
        self.run_("hset", "h", "b", "x" * 65)
        self.assertEqual(self.run_("object", "encoding", "h"), b"hashtable")
        self.run_("hdel", "h", "b")
        self.assertEqual(self.run_("object", "encoding", "h"), b"hashtable")
        for i in range(512):
            self.run_("hset", "n", "f%d" % i, "v")
        self.assertEqual(self.run_("object", "encoding", "n"), b"listpack")
        self.run_("hset", "n", "one-more", "v")
        self.assertEqual(self.run_("object", "encoding", "n"), b"hashtable")

    def test_encoding_thresholds_are_configurable(self) -> None:
        """CONFIG SET hash-max-ziplist-entries changes when a hash converts."""
        self.addCleanup(hashtype.LIMITS.update, dict(hashtype.LIMITS))
        self.assertEqual(self.run_("config", "set", "hash-max-ziplist-entries", "2"), OK)
        self.assertEqual(self.run_("config", "get", "hash-max-listpack-entries"),
                         Pairs([(b"hash-max-listpack-entries", b"2")]))
        self.run_("hset", "h", "a", "1", "b", "2")
        self.assertEqual(self.run_("object", "encoding", "h"), b"listpack")
        self.run_("hset", "h", "c", "3")
        self.assertEqual(self.run_("object", "encoding", "h"), b"hashtable")

    def test_hscan_small_is_whole(self) -> None:
        """HSCAN returns a small hash whole with cursor 0, filtered by MATCH."""
        self.run_("hset", "h", "a1", "1", "b1", "2", "a2", "3")
        self.assertEqual(self.run_("hscan", "h", "0", "count", "1"),
                         [b"0", [b"a1", b"1", b"b1", b"2", b"a2", b"3"]])
        self.assertEqual(self.run_("hscan", "h", "0", "match", "a*"),
                         [b"0", [b"a1", b"1", b"a2", b"3"]])

    def test_hscan_big_survives_changes(self) -> None:
        """Every field present for a whole HSCAN is returned, with others added and removed."""
        rng = random.Random(7)
        args = ["hset", "h"]
        for i in range(1000):
            args += ["f%d" % i, "v"]
        self.run_(*args)
        seen, cursor, extra, steps = set(), b"0", 0, 0
        removed = set()
        while True:
            cursor, items = self.run_("hscan", "h", cursor, "count", "7")
            seen.update(items[::2])
            steps += 1
            for _ in range(5):
                extra += 1
                self.run_("hset", "h", "new%d" % extra, "v")
            victim = "f%d" % rng.randrange(1000)
            self.run_("hdel", "h", victim)
            removed.add(victim.encode())
            self.run_("hdel", "h", "new%d" % rng.randrange(1, extra + 1))
            if cursor == b"0":
                break
        expected = {b"f%d" % i for i in range(1000)} - removed
        self.assertEqual(expected - seen, set())
        self.assertLess(steps, 1000)

    def test_writes_touch_watched_keys(self) -> None:
        """A hash write by another client aborts a WATCHing transaction; a no-op one does not."""
        other = self.session.store.new_session()
        self.run_("hset", "h", "f", "1")
        self.run_("watch", "h")
        other.execute(b("hincrby", "h", "f", "1"))
        self.run_("multi")
        self.run_("hget", "h", "f")
        self.assertIs(self.run_("exec"), NIL_ARRAY)
        self.run_("watch", "h")
        other.execute(b("hdel", "h", "nope"))
        self.run_("multi")
        self.run_("hget", "h", "f")
        self.assertEqual(self.run_("exec"), [b"2"])

    def test_hrandfield_shapes(self) -> None:
        """HRANDFIELD: one field, distinct fields for a positive count, repeats when negative."""
        self.run_("hset", "h", "a", "1", "b", "2", "c", "3")
        self.assertIn(self.run_("hrandfield", "h"), [b"a", b"b", b"c"])
        self.assertEqual(sorted(self.run_("hrandfield", "h", "2")).__len__(), 2)
        self.assertEqual(len(set(self.run_("hrandfield", "h", "2"))), 2)
        self.assertEqual(len(self.run_("hrandfield", "h", "-10")), 10)
        pairs = self.run_("hrandfield", "h", "-4", "withvalues")
        self.assertEqual(len(pairs), 8)
        self.session.protocol = 3
        nested = self.run_("hrandfield", "h", "2", "withvalues")
        self.assertEqual(len(nested), 2)
        for field, value in nested:
            self.assertEqual(self.run_("hget", "h", field), value)

    def test_hrandfield_big_hash(self) -> None:
        """HRANDFIELD on a big hash picks distinct fields for a small count, uniformly enough."""
        args = ["hset", "h"]
        for i in range(5000):
            args += ["f%d" % i, "v%d" % i]
        self.run_(*args)
        picked = self.run_("hrandfield", "h", "10", "withvalues")
        self.assertEqual(len(set(picked[::2])), 10)
        self.assertEqual(len(self.run_("hrandfield", "h", "-50")), 50)
        self.assertEqual(len(self.run_("hrandfield", "h", "4000")), 4000)


# Argument vectors whose replies must be redis-server's, in order, on fresh servers.
SCRIPT = [
    ["hset", "h"], ["hset", "h", "a"], ["hset", "h", "a", "1", "b"], ["hmset", "h", "a"],
    ["hset", "h", "a", "1", "b", "2", "a", "3"], ["hgetall", "h"], ["hmset", "h", "c", "4"],
    ["hsetnx", "h", "a", "9"], ["hsetnx", "h", "d", "5"], ["hget", "h", "a"],
    ["hmget", "h", "a", "nope", "d"], ["hmget", "missing", "a", "b"], ["hlen", "h"],
    ["hlen", "missing"], ["hstrlen", "h", "a"], ["hstrlen", "h", "nope"], ["hexists", "h", "a"],
    ["hexists", "h", "x"], ["hkeys", "h"], ["hvals", "h"], ["hkeys", "missing"],
    ["hgetall", "missing"], ["hdel", "h"], ["hdel", "h", "x"], ["hdel", "h", "a", "a", "b"],
    ["hincrby", "h", "n", "5"], ["hincrby", "h", "n", "-7"], ["hincrby", "h", "n", "x"],
    ["hincrby", "h", "n", "9223372036854775807"], ["hincrby", "h", "c", "1"],
    ["hset", "h", "s", "abc", "big", "9223372036854775807", "sp", " 1"],
    ["hincrby", "h", "s", "1"], ["hincrby", "h", "big", "1"], ["hincrby", "h", "sp", "1"],
    ["hincrby", "h", "big", "-1"], ["hincrby", "h", "n", "01"],
    ["hincrbyfloat", "h", "f", "10.5"], ["hincrbyfloat", "h", "f", "0.1"],
    ["hincrbyfloat", "h", "f", "-5.0e3"], ["hincrbyfloat", "h", "f", "abc"],
    ["hincrbyfloat", "h", "f", "inf"], ["hincrbyfloat", "h", "f", "nan"],
    ["hincrbyfloat", "h", "s", "1"], ["hincrbyfloat", "h", "n", "1.5"],
    ["hset", "h", "inf", "inf", "huge", "1e308"], ["hincrbyfloat", "h", "inf", "1"],
    ["hincrbyfloat", "h", "huge", "1e308"], ["hincrbyfloat", "h", "huge", "1"],
    ["hincrbyfloat", "h", "x", "3.0"], ["hincrbyfloat", "h", "x", "1e-20"],
    ["hincrbyfloat", "h", "x", "0x10"], ["object", "encoding", "h"],
    ["hmget", "h", "a", "b", "c", "d", "n", "s", "big", "sp", "f", "x", "inf", "huge"],
    ["hset", "sm", "a", "1", "b", "2", "c", "3", "hat", "4"],
    ["hrandfield", "missing"], ["hrandfield", "missing", "3"], ["hrandfield", "sm", "0"],
    ["hrandfield", "sm", "x"], ["hrandfield", "sm", "1", "x"], ["hrandfield", "sm", "1", "2", "3"],
    ["hrandfield", "sm", "100"], ["hrandfield", "sm", "100", "WITHVALUES"],
    ["hrandfield", "sm", "-9223372036854775808"], ["hrandfield", "sm", "9223372036854775807"],
    ["hrandfield", "sm", "4611686018427387904", "withvalues"],
    ["hrandfield", "sm", "-4611686018427387904", "withvalues"],
    ["hrandfield", "sm", "4611686018427387903", "withvalues"],
    ["hrandfield", "missing", "5", "withvalues"],
    ["hscan", "sm", "0"], ["hscan", "sm", "0", "match", "h*"], ["hscan", "sm", "x"],
    ["hscan", "sm", "0", "count", "0"], ["hscan", "sm", "0", "count", "x"],
    ["hscan", "sm", "0", "type", "hash"], ["hscan", "sm", "0", "count"],
    ["hscan", "missing", "0", "bogus"], ["hscan", "sm", "-1"],
    ["hscan", "sm", "18446744073709551616"],
    ["set", "s", "v"], ["hset", "s", "a", "1"], ["hget", "s", "a"], ["hgetall", "s"],
    ["hscan", "s", "0"], ["hscan", "s", "x"], ["hincrby", "s", "a", "x"],
    ["hincrby", "s", "a", "1"],
    ["hincrbyfloat", "s", "a", "inf"], ["hrandfield", "s", "x"], ["hrandfield", "s", "1"],
    ["hdel", "s", "a"], ["hsetnx", "s", "a", "1"], ["hstrlen", "s", "a"], ["get", "h"],
    ["hset", "big", "x" * 65, "1"], ["object", "encoding", "big"], ["object", "encoding", "h"],
    ["hset", "n", "a", "1"], ["hdel", "n", "a"], ["exists", "n"],
    ["hincrbyfloat", "z", "a", "1e5000"], ["hincrbyfloat", "z", "a", "-0"], ["hgetall", "z"],
]


class HashDifferentialTests(DifferentialMixin, SynchronousTestCase):
    """The hash commands answer redis-server 7.0's bytes, in RESP2 and RESP3."""

    def test_script(self) -> None:
        """Every command of SCRIPT gives redis-server's reply."""
        for argv in SCRIPT:
            self.compare(b(*argv))

    def test_script_resp3(self) -> None:
        """The same commands after HELLO 3 give redis-server's RESP3 replies."""
        self.redis.call([b"HELLO", b"3"])
        self.session.protocol = 3
        for argv in SCRIPT:
            self.compare(b(*argv), resp3=True)

    def test_resp3_hrandfield_withvalues(self) -> None:
        """HRANDFIELD WITHVALUES of the whole hash is an array of pairs in RESP3."""
        self.redis.call([b"HELLO", b"3"])
        self.session.protocol = 3
        self.compare(b("hset", "h", "a", "1", "b", "2"), resp3=True)
        self.compare(b("hrandfield", "h", "5", "withvalues"), resp3=True)
        self.compare(b("hset", "one", "a", "1"), resp3=True)
        self.compare(b("hrandfield", "one", "-3", "withvalues"), resp3=True)
        self.compare(b("hrandfield", "one", "-3"), resp3=True)

    def test_random_sequences(self) -> None:
        """Random HSET/HDEL/HINCRBY sequences leave the same HGETALL and DUMP as redis-server."""
        rng = random.Random(18)
        fields = [b"a", b"b", b"c", b"1", b"-5", b"300", b"x" * 70, b"9223372036854775808"]
        values = [b"", b"0", b"17", b"-4096", b"70000", b"hello", b"y" * 80, b"1.5",
                  b"12345678901", b"x" * 5000]
        for _ in range(300):
            kind = rng.randrange(5)
            # h1 stays small (listpack: Redis's order, which HGETALL and DUMP show); h2
            # converts to a hash table, whose order is Redis's own: compared sorted.
            key = rng.choice([b"h1", b"h2"])
            if kind <= 1:
                argv = [b"hset", key]
                for _ in range(rng.randrange(1, 4)):
                    argv += [rng.choice(fields), rng.choice(values)]
                if key == b"h1":
                    argv[2:] = [item[:20] for item in argv[2:]]
            elif kind == 2:
                named = rng.sample(fields, rng.randrange(1, 3))
                argv = [b"hdel", key] + [item[:20] for item in named]
            elif kind == 3:
                argv = [b"hincrby", key, rng.choice(fields)[:20],
                        rng.choice([b"1", b"-300", b"x"])]
            else:
                argv = [rng.choice([b"hgetall", b"dump", b"hlen"]), key]
                if key == b"h2" and argv[0] != b"hlen":
                    theirs = self.redis.call([b"hgetall", key])
                    ours = self.session.execute([b"hgetall", key])
                    self.assertEqual(to_resp(Pairs(sorted(ours.items))),
                                     self._sorted_pairs(theirs))
                    continue
            self.compare(argv)

    def test_dump_interop(self) -> None:
        """A hash DUMPed by redis-server RESTOREs here and back, small and big, equal."""
        small = [b"hset", b"small", b"a", b"1", b"b", b"-20000", b"c", b"x" * 30, b"d", b""]
        big = [b"hset", b"big"]
        for i in range(600):
            big += [b"field:%d" % i, b"%d" % (i * 1000)]
        for argv in (small, big, [b"hset", b"long", b"k", b"v" * 100]):
            self.redis.call(argv)
            key = argv[1]
            payload = self.redis.call([b"DUMP", key]).split(b"\r\n", 1)[1][:-2]
            self.assertEqual(self.session.execute([b"restore", key, b"0", payload]), OK)
            ours = self.session.execute([b"dump", key])
            self.assertEqual(self.redis.call([b"restore", b"back", b"0", ours]), b"+OK\r\n")
            mine = sorted(self.session.execute([b"hgetall", key]).items)
            theirs = self.redis.call([b"hgetall", b"back"])
            self.assertEqual(to_resp(Pairs(mine)), self._sorted_pairs(theirs))
            self.assertEqual(self.redis.call([b"object", b"encoding", b"back"]),
                             to_resp(self.session.execute([b"object", b"encoding", key])), key)
            self.redis.call([b"del", b"back"])
        # A small hash's DUMP is redis-server's, byte for byte.
        self.compare([b"dump", b"small"])

    def _sorted_pairs(self, raw: bytes) -> bytes:
        parts = raw.split(b"\r\n")[1:-1]
        items = [parts[i] for i in range(1, len(parts), 2)]
        pairs = sorted(zip(items[::2], items[1::2]))
        return to_resp(Pairs(pairs))

    def test_generic_commands(self) -> None:
        """TYPE, EXISTS, RENAME, MOVE, COPY, EXPIRE, SCAN TYPE and DEL treat a hash as Redis."""
        for argv in (["hset", "h", "a", "1"], ["type", "h"], ["exists", "h"],
                     ["copy", "h", "h2"], ["hgetall", "h2"], ["rename", "h2", "h3"],
                     ["hgetall", "h3"], ["expire", "h3", "100"], ["ttl", "h3"],
                     ["move", "h3", "1"], ["select", "1"],
                     ["hgetall", "h3"], ["select", "0"], ["del", "h"], ["exists", "h"]):
            reply = self.compare(b(*argv))
            self.assertNotEqual(reply[:1], b"-", argv)
        self.compare(b("hset", "h", "a", "1"))
        self.compare(b("set", "s", "1"))
        self.compare(b("scan", "0", "type", "hash"))


NOTIFY_SCRIPT = [
    (0, [b"PSUBSCRIBE", b"__key*__:*"]),
    (1, [b"CONFIG", b"SET", b"notify-keyspace-events", b"KEAnm"]),
    (1, [b"HSET", b"h", b"a", b"1", b"b", b"2"]),
    (1, [b"HMSET", b"h", b"c", b"3"]),
    (1, [b"HSETNX", b"h", b"a", b"1"]),
    (1, [b"HSETNX", b"h", b"d", b"1"]),
    (1, [b"HINCRBY", b"h", b"n", b"1"]),
    (1, [b"HINCRBYFLOAT", b"h", b"f", b"1.5"]),
    (1, [b"HINCRBY", b"h", b"a", b"x"]),
    (1, [b"HDEL", b"h", b"zz"]),
    (1, [b"HDEL", b"h", b"a", b"b"]),
    (1, [b"HDEL", b"h", b"c", b"d", b"n", b"f"]),
    (1, [b"HGET", b"missing", b"a"]),
    (1, [b"HGETALL", b"missing"]),
    (1, [b"HSCAN", b"missing", b"0"]),
    (1, [b"HRANDFIELD", b"missing"]),
    (1, [b"HLEN", b"missing"]),
    (1, [b"HDEL", b"missing", b"a"]),
    (1, [b"HSET", b"n2", b"a", b"1"]),
]


class HashNotifyTests(SynchronousTestCase):
    """Hash commands send redis-server's keyspace events (hset, hdel, del, keymiss...)."""

    def test_script(self) -> None:
        """Every step's messages and replies match Redis's."""
        from tests.pubsubref import kvstore_transcript, redis_transcript
        from tests.redisref import start_redis_or_skip

        server = start_redis_or_skip()
        self.addCleanup(server.stop)
        expected = redis_transcript(server.port, 2, NOTIFY_SCRIPT)
        got = kvstore_transcript(2, NOTIFY_SCRIPT)
        self.assertEqual(len(got), len(expected))
        for want, have in zip(expected, got):
            self.assertEqual(have, want, NOTIFY_SCRIPT[want[0]])


class HugeCountTests(SessionMixin, SynchronousTestCase):
    """A huge negative count is streamed a slice at a time, not built."""

    def test_hrandfield_huge_negative_count(self):
        """HRANDFIELD h -999999999 streams its picks from a snapshot (the server paces them,
        an output buffer limit closes the client mid-run as in Redis); RESP3 WITHVALUES
        (pairs of arrays) is still refused."""
        from kvtwist.wire.replies import Streamed

        self.call("hset", "h", "f", "v")
        reply = self.session.execute([b"HRANDFIELD", b"h", b"-999999999"])
        self.assertIsInstance(reply, Streamed)
        self.assertEqual(reply.count, 999999999)
        self.assertEqual(next(reply.slices)[:3], [b"f", b"f", b"f"])
        reply = self.session.execute([b"HRANDFIELD", b"h", b"-5000", b"WITHVALUES"])
        self.assertEqual(to_resp(reply.whole())[:20], b"*10000\r\n$1\r\nf\r\n$1\r\nv")
        self.session.protocol = 3
        reply = self.session.execute([b"HRANDFIELD", b"h", b"-999999999", b"WITHVALUES"])
        self.assertIn("count is too large", reply.message)
