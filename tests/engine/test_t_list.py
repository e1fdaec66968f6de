"""The list commands against a real redis-server: every reply and error, byte for byte."""

from __future__ import annotations

import random

from twisted.trial.unittest import SynchronousTestCase

from kvtwist.engine.listtype import PER_ELEMENT, ListValue
from kvtwist.wire.replies import to_resp
from tests.helpers import SessionMixin
from tests.redisref import DifferentialMixin

# Edge cases of every list command, run in order on both servers.
SCRIPT = [
    "LPUSH l a b c", "RPUSH l d e f", "LRANGE l 0 -1", "LLEN l", "LLEN nope",
    "LPUSHX nope x", "RPUSHX nope x", "LPUSHX l z", "RPUSHX l y", "LRANGE l 0 -1",
    "LRANGE l -100 100", "LRANGE l 5 2", "LRANGE l -3 -1", "LRANGE l 1 x", "LRANGE nope 0 -1",
    "LRANGE l 9223372036854775807 -9223372036854775808", "LRANGE nope a b",
    "LINDEX l 0", "LINDEX l -1", "LINDEX l 100", "LINDEX l -100", "LINDEX l x",
    "LINDEX nope x", "LSET l 0 A", "LSET l -1 Z", "LSET l 100 q", "LSET nope 0 q",
    "LSET l x q", "LSET nope x q", "LINSERT l BEFORE A pre", "LINSERT l after Z post",
    "LINSERT l before missing q", "LINSERT nope before a b", "LINSERT l middle a b",
    "LINSERT nope middle a b", "LRANGE l 0 -1",
    "RPUSH r x a x b x c x", "LREM r 2 x", "LRANGE r 0 -1", "LREM r -1 x", "LRANGE r 0 -1",
    "LREM r 0 x", "LRANGE r 0 -1", "LREM nope 0 x", "LREM r x a", "LREM r 0 a",
    "LREM r 0 b", "LREM r 0 c", "EXISTS r",
    "RPUSH t 1 2 3 4 5 6 7", "LTRIM t 1 -2", "LRANGE t 0 -1", "LTRIM t 0 100",
    "LTRIM t -2 -1", "LRANGE t 0 -1", "LTRIM t 5 1", "EXISTS t", "LTRIM nope 0 1",
    "LTRIM t x 1",
    "RPUSH p a b c 1 2 3 c c", "LPOS p c", "LPOS p c RANK 2", "LPOS p c RANK -1",
    "LPOS p c COUNT 0", "LPOS p c COUNT 2", "LPOS p c RANK -2 COUNT 0", "LPOS p c MAXLEN 3",
    "LPOS p c MAXLEN 2", "LPOS p c COUNT 0 MAXLEN 7", "LPOS p x", "LPOS p x COUNT 1",
    "LPOS nope x", "LPOS nope x COUNT 1", "LPOS p c RANK 0", "LPOS p c COUNT -1",
    "LPOS p c COUNT x", "LPOS p c MAXLEN -1", "LPOS p c MAXLEN x", "LPOS p c RANK x",
    "LPOS p c bogus 1", "LPOS p c RANK", "LPOS p c RANK 9 COUNT 0",
    "RPUSH q 1 2 3 4 5", "LPOP q", "RPOP q", "LPOP q 2", "RPOP q 0", "LPOP q 10",
    "EXISTS q", "LPOP nope", "LPOP nope 0", "LPOP nope 2", "LPOP q x", "LPOP q -1",
    "RPOP nope -1", "LPOP q 1 2", "RPUSH q a b", "RPOP q 5",
    "RPUSH m 1 2 3", "LMOVE m n LEFT RIGHT", "LMOVE m n right left", "LRANGE n 0 -1",
    "LMOVE m m left right", "LRANGE m 0 -1", "LMOVE nope n left left", "LMOVE m n up left",
    "RPOPLPUSH m n", "RPOPLPUSH m n", "EXISTS m", "LRANGE n 0 -1", "RPOPLPUSH n n",
    "LRANGE n 0 -1", "SET s str", "LMOVE n s left left", "LMOVE s n left left",
    "LPUSH s x", "RPUSH s x", "LPUSHX s x", "LPOP s", "LLEN s", "LRANGE s 0 1",
    "LINDEX s 0", "LSET s 0 x", "LINSERT s before a b", "LREM s 0 x", "LTRIM s 0 1",
    "LPOS s x", "RPOPLPUSH n s", "LMPOP 2 s n left", "LMPOP 2 n s left",
    "LMPOP 1 nope left", "LMPOP 2 nope n LEFT COUNT 2", "LMPOP 2 nope n RIGHT count 10",
    "LMPOP 0 a left", "LMPOP -1 a left", "LMPOP x a left", "LMPOP 3 a b left",
    "LMPOP 1 a middle", "LMPOP 1 a left COUNT 0", "LMPOP 1 a left COUNT x",
    "LMPOP 1 a left COUNT 1 COUNT 2", "LMPOP 1 a left bogus",
    "BLPOP nope x", "BLPOP nope -1", "BLPOP nope 1e400", "BLPOP nope inf", "BLPOP nope nan",
    "BRPOP nope ''", "BLMOVE a b left left -1", "BLMOVE a b up left 0",
    "BRPOPLPUSH a b x", "BLMPOP x 1 a left", "BLMPOP 0 0 a left", "BLMPOP 0 1 a up",
    "RPUSH b1 x y z", "BLPOP nope b1 0", "BRPOP b1 0", "BLMPOP 0 2 nope b1 right COUNT 5",
    "RPUSH b2 1 2", "BLMOVE b2 b3 right left 0", "BRPOPLPUSH b2 b3 0", "LRANGE b3 0 -1",
    "BLPOP s 0", "BLMOVE s b3 left left 0", "BLMOVE b3 s left left 0",
    "BLPOP nope s 0", "BLMPOP 0 1 s left",
]


def _argv(line: str) -> list:
    return [b"" if word == "''" else word.encode() for word in line.split()]


class DifferentialTests(DifferentialMixin, SynchronousTestCase):
    """The same commands give the same RESP bytes as redis-server."""

    def test_script_resp2(self):
        """Every case in SCRIPT answers as Redis 7.0 does under RESP2."""
        for line in SCRIPT:
            self.compare(_argv(line))

    def test_script_resp3(self):
        """Every case in SCRIPT answers as Redis 7.0 does under RESP3 (nulls differ)."""
        self.redis.call([b"HELLO", b"3"])
        self.session.protocol = 3
        for line in SCRIPT:
            self.compare(_argv(line), resp3=True)

    def test_random_sequences(self):
        """Random list commands on a few keys agree with redis-server, values included."""
        rng = random.Random(18)
        keys = [b"k1", b"k2", b"k3"]
        elements = [b"a", b"b", b"c", b"", b"1"]
        numbers = [b"0", b"1", b"2", b"-1", b"-2", b"5", b"-7", b"100"]
        for _ in range(1500):
            key = rng.choice(keys)
            kind = rng.randrange(14)
            if kind == 0:
                argv = [rng.choice([b"LPUSH", b"RPUSH", b"LPUSHX", b"RPUSHX"]), key] + [
                    rng.choice(elements) for _ in range(rng.randrange(1, 4))]
            elif kind == 1:
                argv = [rng.choice([b"LPOP", b"RPOP"]), key] + (
                    [rng.choice(numbers)] if rng.random() < 0.5 else [])
            elif kind == 2:
                argv = [b"LRANGE", key, rng.choice(numbers), rng.choice(numbers)]
            elif kind == 3:
                argv = [b"LINDEX", key, rng.choice(numbers)]
            elif kind == 4:
                argv = [b"LSET", key, rng.choice(numbers), rng.choice(elements)]
            elif kind == 5:
                argv = [b"LINSERT", key, rng.choice([b"BEFORE", b"AFTER"]),
                        rng.choice(elements), rng.choice(elements)]
            elif kind == 6:
                argv = [b"LREM", key, rng.choice(numbers), rng.choice(elements)]
            elif kind == 7:
                argv = [b"LTRIM", key, rng.choice(numbers), rng.choice(numbers)]
            elif kind == 8:
                argv = [b"LPOS", key, rng.choice(elements), b"RANK",
                        rng.choice([b"1", b"2", b"-1", b"-3"]), b"COUNT", rng.choice(numbers[:3])]
            elif kind == 9:
                argv = [b"LMOVE", key, rng.choice(keys), rng.choice([b"LEFT", b"RIGHT"]),
                        rng.choice([b"LEFT", b"RIGHT"])]
            elif kind == 10:
                argv = [b"LMPOP", b"2", key, rng.choice(keys), rng.choice([b"LEFT", b"RIGHT"]),
                        b"COUNT", rng.choice([b"1", b"2", b"9"])]
            elif kind == 11:
                argv = [rng.choice([b"BLPOP", b"BRPOP"]), key, rng.choice(keys), b"0"]
                if not any(self.session.keyspace.exists(each) for each in argv[1:3]):
                    argv = [b"LLEN", key]
            elif kind == 12:
                argv = [b"LLEN", key]
            else:
                argv = [b"LRANGE", key, b"0", b"-1"]
            self.compare(argv)


class LongListDifferentialTests(DifferentialMixin, SynchronousTestCase):
    """Lists of hundreds of elements (many packed chunks) answer as redis-server's."""

    def test_random_long_lists(self):
        """Random commands anywhere in long lists of uniform and mixed elements agree."""
        rng = random.Random(1818)
        keys = [b"u", b"m"]
        self.compare([b"RPUSH", b"u"] + [b"%04d" % (n % 37) for n in range(700)])
        self.compare([b"RPUSH", b"m"] + [b"e%d" % (n % 53) for n in range(700)])
        self.compare([b"LPUSH", b"m"] + [b"x" * n for n in range(0, 300, 7)])
        elements = [b"0001", b"0036", b"e5", b"e52", b"", b"xxxxxxx", b"zz"]
        for _ in range(600):
            key = rng.choice(keys)
            size = self.session.keyspace.get(key)
            size = len(size) if size is not None else 0
            index = rng.randrange(-size - 3, size + 3) if size else rng.randrange(-3, 3)
            other = rng.randrange(-size - 3, size + 3) if size else 0
            kind = rng.randrange(12)
            if kind == 0:
                argv = [rng.choice([b"LPUSH", b"RPUSH"]), key] + [
                    rng.choice(elements) for _ in range(rng.randrange(1, 200))]
            elif kind == 1:
                argv = [rng.choice([b"LPOP", b"RPOP"]), key, b"%d" % rng.randrange(0, 150)]
            elif kind == 2:
                argv = [b"LRANGE", key, b"%d" % index, b"%d" % other]
            elif kind == 3:
                argv = [b"LINDEX", key, b"%d" % index]
            elif kind == 4:
                argv = [b"LSET", key, b"%d" % index, rng.choice(elements + [b"y" * 9000])]
            elif kind == 5:
                argv = [b"LINSERT", key, rng.choice([b"BEFORE", b"AFTER"]),
                        rng.choice(elements), rng.choice(elements)]
            elif kind == 6:
                argv = [b"LREM", key, b"%d" % rng.randrange(-5, 6), rng.choice(elements)]
            elif kind == 7:
                argv = [b"LTRIM", key, b"%d" % rng.randrange(0, 30), b"%d" % -rng.randrange(1, 30)]
            elif kind == 8:
                argv = [b"LPOS", key, rng.choice(elements), b"RANK",
                        rng.choice([b"1", b"3", b"-1", b"-4"]), b"COUNT", b"0"]
            elif kind == 9:
                argv = [b"LMOVE", key, rng.choice(keys), rng.choice([b"LEFT", b"RIGHT"]),
                        rng.choice([b"LEFT", b"RIGHT"])]
            elif kind == 10:
                argv = [b"SORT", key, b"BY", b"nosort", b"LIMIT", b"%d" % abs(index), b"50"]
            else:
                argv = [b"LRANGE", key, b"0", b"-1"]
            self.compare(argv)


class ListValueTests(SessionMixin, SynchronousTestCase):
    """Type, encoding and the generic key commands on lists."""

    def test_type_and_encoding(self):
        """TYPE says list and OBJECT ENCODING quicklist, as Redis 7.0 for any list."""
        self.call("RPUSH", "l", "a")
        self.assertEqual(to_resp(self.call("TYPE", "l")), b"+list\r\n")
        self.assertEqual(self.call("OBJECT", "ENCODING", "l"), b"quicklist")

    def test_emptied_list_disappears(self):
        """Popping the last element removes the key and its expiry."""
        self.call("RPUSH", "l", "a")
        self.call("EXPIRE", "l", "100")
        self.call("LPOP", "l")
        self.assertEqual(self.call("EXISTS", "l"), 0)
        self.call("RPUSH", "l", "b")
        self.assertEqual(self.call("TTL", "l"), -1)

    def test_generic_commands(self):
        """RENAME, COPY, MOVE, DEL and EXPIRE work on a list."""
        self.call("RPUSH", "l", "a", "b")
        self.assertEqual(self.call("COPY", "l", "c"), 1)
        self.call("RPUSH", "c", "x")
        self.assertEqual(self.call("LRANGE", "l", "0", "-1"), [b"a", b"b"])
        self.call("RENAME", "c", "d")
        self.assertEqual(self.call("LRANGE", "d", "0", "-1"), [b"a", b"b", b"x"])
        self.assertEqual(self.call("MOVE", "d", "1"), 1)
        self.call("SELECT", "1")
        self.assertEqual(self.call("LLEN", "d"), 3)
        self.assertEqual(self.call("DEL", "d"), 1)

    def test_scan_type(self):
        """SCAN TYPE list finds the lists and nothing else."""
        self.call("RPUSH", "l", "a")
        self.call("SET", "s", "x")
        self.assertEqual(self.call("SCAN", "0", "TYPE", "list")[1], [b"l"])

    def test_nbytes_follows_changes(self):
        """nbytes is the elements' bytes plus a fixed overhead each, after every operation."""
        self.call("RPUSH", "l", "aa", "b", "ccc", "b")
        self.call("LREM", "l", "0", "b")
        self.call("LINSERT", "l", "BEFORE", "ccc", "dddd")
        self.call("LSET", "l", "0", "e")
        value = self.store.keyspace.data[b"l"]
        self.assertIsInstance(value, ListValue)
        self.assertEqual(value.nbytes, sum(map(len, value.items)) + PER_ELEMENT * len(value))


NOTIFY_SCRIPT = [
    (0, [b"PSUBSCRIBE", b"__key*__:*"]),
    (1, [b"CONFIG", b"SET", b"notify-keyspace-events", b"KEAnm"]),
    (1, [b"RPUSH", b"l", b"a", b"b", b"c", b"d", b"e"]),
    (1, [b"LPUSH", b"l", b"z"]),
    (1, [b"LPUSHX", b"l", b"y"]),
    (1, [b"RPUSHX", b"nope", b"y"]),
    (1, [b"LPOP", b"l"]),
    (1, [b"RPOP", b"l", b"1"]),
    (1, [b"LSET", b"l", b"0", b"Z"]),
    (1, [b"LINSERT", b"l", b"BEFORE", b"b", b"i"]),
    (1, [b"LINSERT", b"l", b"BEFORE", b"missing", b"i"]),
    (1, [b"LREM", b"l", b"0", b"i"]),
    (1, [b"LREM", b"l", b"0", b"missing"]),
    (1, [b"LTRIM", b"l", b"0", b"-1"]),
    (1, [b"LTRIM", b"l", b"0", b"-2"]),
    (1, [b"LMOVE", b"l", b"m", b"LEFT", b"RIGHT"]),
    (1, [b"RPOPLPUSH", b"l", b"m"]),
    (1, [b"LMPOP", b"2", b"nope", b"l", b"LEFT", b"COUNT", b"1"]),
    (1, [b"BLPOP", b"nope", b"m", b"0"]),
    (1, [b"LRANGE", b"nope", b"0", b"-1"]),
    (1, [b"LLEN", b"nope"]),
    (1, [b"LINDEX", b"nope", b"0"]),
    (1, [b"LPOS", b"nope", b"x"]),
    (1, [b"CONFIG", b"SET", b"notify-keyspace-events", b""]),
]


class NotifyTests(SynchronousTestCase):
    """Keyspace events of the list commands are Redis's, byte for byte."""

    def test_script(self):
        """Each list command publishes the events redis-server publishes (no list emptied)."""
        from tests.pubsubref import kvstore_transcript, redis_transcript
        from tests.redisref import start_redis_or_skip

        server = start_redis_or_skip()
        self.addCleanup(server.stop)
        expected = redis_transcript(server.port, 2, NOTIFY_SCRIPT)
        got = kvstore_transcript(2, NOTIFY_SCRIPT)
        for want, have in zip(expected, got):
            self.assertEqual(have, want, NOTIFY_SCRIPT[want[0]])
