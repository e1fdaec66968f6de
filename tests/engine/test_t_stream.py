"""Tests for kvtwist.engine.t_stream: the stream commands against a real redis-server, byte
for byte (replies and errors), blocking XREAD, and their keyspace events."""

from __future__ import annotations

import random

from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from kvtwist.engine.store import Store
from kvtwist.engine.streamtype import NODE_LIMITS, StreamValue
from kvtwist.wire.replies import NIL_ARRAY, to_resp
from tests.pubsubref import kvstore_transcript, redis_transcript
from tests.redisref import DifferentialMixin, start_redis_or_skip

FAR = b"99999999999999"  # a millisecond time beyond the clock: "*" IDs are deterministic


def run_script(test, script, resp3=False):
    """Run every argv of ``script`` on both servers, comparing the replies' bytes."""
    queued = False
    for argv in script:
        if argv[0] == b"select":
            test.redis.call(argv)
            test.session.execute(argv)
        elif queued or argv[0] == b"multi":  # (no TIME while commands are queued)
            queued = argv[0] != b"exec"
            theirs = test.redis.call(argv)
            test.assertEqual(to_resp(test.session.execute(argv)), theirs, argv)
        else:
            test.compare(argv, resp3)


class StreamDifferentialTests(DifferentialMixin, SynchronousTestCase):
    """Replies and errors match redis-server 7.0's."""

    def test_xadd_ids_and_errors(self):
        """XADD: explicit, ms-*, * IDs; IDs equal or smaller than the top; 0-0; arity;
        NOMKSTREAM; WRONGTYPE; bad IDs parsed as Redis's string2ull."""
        script = [
            [b"xadd", b"s", b"1-1", b"f", b"v"], [b"xadd", b"s", b"1-1", b"f", b"v"],
            [b"xadd", b"s", b"1-0", b"f", b"v"], [b"xadd", b"s", b"1-*", b"f", b"v"],
            [b"xadd", b"s", b"0-*", b"f", b"v"], [b"xadd", b"s", b"2", b"f", b"v"],
            [b"xadd", b"s", b"2-*", b"f", b"v", b"g", b"w"], [b"xadd", b"n", b"0-0", b"f", b"v"],
            [b"exists", b"n"], [b"xadd", b"n", b"0-*", b"f", b"v"], [b"xadd", b"n", b"0", b"f"],
            [b"xadd", b"n", b"0-3", b"f", b"v", b"g"], [b"xadd", b"n"], [b"xadd", b"n", b"*"],
            [b"xadd", b"s", b"-", b"f", b"v"], [b"xadd", b"s", b"+", b"f", b"v"],
            [b"xadd", b"s", b"abc", b"f", b"v"], [b"xadd", b"s", b"3-x", b"f", b"v"],
            [b"xadd", b"s", b"007-1", b"f", b"v"], [b"xadd", b"s", b" 8-1", b"f", b"v"],
            [b"xadd", b"s", b"+9-1", b"f", b"v"], [b"xadd", b"s", b"10--1", b"f", b"v"],
            [b"xadd", b"s", b"10--01", b"f", b"v"], [b"xadd", b"s", b"-5-1", b"f", b"v"],
            [b"xadd", b"s", b"18446744073709551616-1", b"f", b"v"],
            [b"xadd", b"t", b"18446744073709551615-18446744073709551615", b"f", b"v"],
            [b"xadd", b"t", b"*", b"f", b"v"], [b"xadd", b"t", b"18446744073709551615-*",
                                                  b"f", b"v"],
            [b"xadd", b"u", FAR + b"-18446744073709551615", b"f", b"v"],
            [b"xadd", b"u", FAR + b"-*", b"f", b"v"], [b"xadd", b"u", b"*", b"f", b"v"],
            [b"xrange", b"u", b"-", b"+"],
            [b"xadd", b"none", b"nomkstream", b"*", b"f", b"v"], [b"exists", b"none"],
            [b"xadd", b"s", b"NOMKSTREAM", b"20-1", b"f", b"v"], [b"set", b"str", b"x"],
            [b"xadd", b"str", b"*", b"f", b"v"], [b"xadd", b"str", b"nomkstream", b"*", b"a",
                                                  b"b"],
            [b"xadd", b"s", b"maxlen"], [b"xadd", b"s", b"maxlen", b"1"],
            [b"xadd", b"s", b"bogus", b"f", b"v"], [b"xrange", b"s", b"-", b"+"],
            [b"xadd", b"s", b"30-1", b"f", b"v", b"f", b"w"], [b"xrange", b"s", b"30", b"30"],
            [b"xadd", b"f", FAR + b"-5", b"a", b"1"], [b"xadd", b"f", b"*", b"b", b"2"],
            [b"xadd", b"f", FAR + b"-*", b"c", b"3"], [b"xlen", b"f"],
        ]
        run_script(self, script)

    def test_xadd_trimming(self):
        """XADD and XTRIM with MAXLEN/MINID, exact and approximate (whole nodes), LIMIT and
        their errors; a trimmed-out stream stays, empty."""
        script = [[b"xadd", b"s", b"%d-1" % i, b"f", b"v%d" % i] for i in range(1, 251)]
        script += [
            [b"xtrim", b"s", b"maxlen", b"~", b"200"], [b"xlen", b"s"],
            [b"xtrim", b"s", b"maxlen", b"~", b"120"], [b"xlen", b"s"],
            [b"xtrim", b"s", b"maxlen", b"=", b"120"], [b"xlen", b"s"],
            [b"xtrim", b"s", b"minid", b"~", b"200"], [b"xlen", b"s"],
            [b"xtrim", b"s", b"minid", b"200"], [b"xlen", b"s"], [b"xrange", b"s", b"-",
                                                                  b"+", b"count", b"2"],
            [b"xadd", b"s", b"maxlen", b"~", b"10", b"300-1", b"f", b"v"], [b"xlen", b"s"],
            [b"xadd", b"s", b"maxlen", b"10", b"300-2", b"f", b"v"], [b"xlen", b"s"],
            [b"xadd", b"s", b"minid", b"=", b"251", b"300-3", b"f", b"v"], [b"xlen", b"s"],
            [b"xtrim", b"s", b"maxlen", b"~", b"0", b"limit", b"5"], [b"xlen", b"s"],
            [b"xtrim", b"s", b"maxlen", b"0", b"limit", b"5"],
            [b"xtrim", b"s", b"maxlen", b"-1"], [b"xtrim", b"s", b"maxlen", b"x"],
            [b"xtrim", b"s", b"maxlen", b"~", b"1", b"limit", b"-1"],
            [b"xtrim", b"s", b"maxlen", b"1", b"minid", b"1"], [b"xtrim", b"s", b"limit", b"1"],
            [b"xtrim", b"s", b"bogus", b"1"], [b"xtrim", b"s", b"minid", b"-"],
            [b"xtrim", b"s", b"minid", b"abc"], [b"xtrim", b"none", b"maxlen", b"1"],
            [b"xtrim", b"str", b"maxlen", b"1"], [b"set", b"str", b"x"],
            [b"xtrim", b"str", b"maxlen", b"1"],
            [b"xadd", b"s", b"limit", b"5", b"300-4", b"f", b"v"],
            [b"xadd", b"s", b"maxlen", b"5", b"limit", b"5", b"300-5", b"f", b"v"],
            [b"xtrim", b"s", b"maxlen", b"0"], [b"xlen", b"s"], [b"exists", b"s"],
            [b"type", b"s"], [b"xrange", b"s", b"-", b"+"],
            [b"xadd", b"e", b"maxlen", b"0", b"1-1", b"f", b"v"], [b"exists", b"e"],
            [b"xlen", b"e"], [b"xadd", b"e", b"1-1", b"f", b"v"],
        ]
        run_script(self, script)

    def test_approximate_trim_follows_node_bytes(self):
        """Nodes close at 4096 listpack bytes as Redis's, so MAXLEN ~ trims the same."""
        rng = random.Random(5)
        script = []
        for i in range(1, 400):
            fields = [b"field", b"x" * rng.randrange(1, 90)]
            if rng.random() < 0.3:
                fields = [b"other%d" % rng.randrange(3), b"%d" % rng.randrange(-5000, 99999)]
            if rng.random() < 0.2:
                fields += [b"n", b"%d" % rng.randrange(10 ** 12)]
            script.append([b"xadd", b"s", b"%d-%d" % (i * 3, rng.randrange(4))] + fields)
            if i % 37 == 0:
                script.append([b"xdel", b"s", b"%d-0" % (i * 3 - 3), b"%d-1" % (i * 3 - 6)])
        for maxlen in (390, 350, 300, 222, 100, 55, 3):
            script += [[b"xtrim", b"s", b"maxlen", b"~", b"%d" % maxlen], [b"xlen", b"s"]]
        run_script(self, script)

    def test_node_limits_config(self):
        """stream-node-max-entries and -bytes are configuration parameters (Redis's errors)
        and shape the nodes, so approximate trims and XINFO agree under other limits."""
        self.addCleanup(NODE_LIMITS.__setitem__, slice(None), list(NODE_LIMITS))
        script = [
            [b"config", b"get", b"stream-node-max-entries"],
            [b"config", b"set", b"stream-node-max-bytes", b"-1"],
            [b"config", b"set", b"stream-node-max-bytes", b"x"],
            [b"config", b"set", b"stream-node-max-entries", b"-1"],
            [b"config", b"set", b"stream-node-max-entries", b"1.5"],
            [b"config", b"set", b"stream-node-max-entries", b"7"],
            [b"config", b"set", b"stream-node-max-bytes", b"1kb"],
            [b"config", b"get", b"stream-node-max-bytes"],
        ]
        script += [[b"xadd", b"s", b"%d-1" % n, b"f", b"x" * (n % 60)] for n in range(1, 200)]
        script += [[b"xinfo", b"stream", b"s"], [b"xtrim", b"s", b"maxlen", b"~", b"150"],
                   [b"xtrim", b"s", b"maxlen", b"~", b"0", b"limit", b"20"],
                   [b"config", b"set", b"stream-node-max-entries", b"0"],
                   [b"config", b"set", b"stream-node-max-bytes", b"0"]]
        script += [[b"xadd", b"s", b"%d-1" % n, b"f", b"v"] for n in range(200, 500)]
        script += [[b"xinfo", b"stream", b"s"], [b"xtrim", b"s", b"maxlen", b"~", b"10"],
                   [b"xlen", b"s"], [b"config", b"set", b"stream-node-max-entries", b"100"],
                   [b"config", b"set", b"stream-node-max-bytes", b"4096"]]
        run_script(self, script)

    def test_xrange_xrevrange(self):
        """Ranges: -, +, incomplete IDs, exclusive bounds, COUNT, errors, missing key."""
        script = [[b"xadd", b"s", b"%d-%d" % (ms, seq), b"f", b"%d" % ms, b"g", b"%d" % seq]
                  for ms in (1, 2, 3) for seq in (0, 1, 2)]
        script += [
            [b"xrange", b"s", b"-", b"+"], [b"xrevrange", b"s", b"+", b"-"],
            [b"xrange", b"s", b"2", b"2"], [b"xrevrange", b"s", b"2", b"2"],
            [b"xrange", b"s", b"(1-1", b"(3-1"], [b"xrevrange", b"s", b"(3-1", b"(1-1"],
            [b"xrange", b"s", b"(1", b"+"], [b"xrange", b"s", b"-", b"(3"],
            [b"xrange", b"s", b"(-", b"+"], [b"xrange", b"s", b"-", b"(+"],
            [b"xrange", b"s", b"(", b"+"], [b"xrange", b"s", b"-", b"("],
            [b"xrange", b"s", b"(18446744073709551615-18446744073709551615", b"+"],
            [b"xrange", b"s", b"-", b"(0-0"], [b"xrange", b"s", b"-", b"(0"],
            [b"xrange", b"s", b"-", b"+", b"count", b"2"],
            [b"xrevrange", b"s", b"+", b"-", b"COUNT", b"4"],
            [b"xrange", b"s", b"-", b"+", b"count", b"0"],
            [b"xrange", b"s", b"-", b"+", b"count", b"-3"],
            [b"xrange", b"s", b"-", b"+", b"count"], [b"xrange", b"s", b"-", b"+", b"cnt", b"1"],
            [b"xrange", b"s", b"-", b"+", b"count", b"x"],
            [b"xrange", b"s", b"3", b"1"], [b"xrevrange", b"s", b"1", b"3"],
            [b"xrange", b"none", b"-", b"+"], [b"xrange", b"none", b"-", b"+", b"count", b"0"],
            [b"xrange", b"none", b"x", b"+"], [b"set", b"str", b"v"],
            [b"xrange", b"str", b"-", b"+"], [b"xrevrange", b"str", b"+", b"-"],
            [b"xrange", b"s", b"-"], [b"xrange", b"s", b"2-1", b"+", b"count", b"1", b"count",
                                      b"2"],
            [b"xdel", b"s", b"2-1", b"2-1", b"9-9", b"1-0"], [b"xdel", b"s", b"bad"],
            [b"xdel", b"s", b"-"], [b"xdel", b"s", b"3"], [b"xdel", b"none", b"bad"],
            [b"xdel", b"str", b"1-1"], [b"xrange", b"s", b"-", b"+"], [b"xlen", b"s"],
            [b"xlen", b"none"], [b"xlen", b"str"], [b"xlen", b"s", b"x"],
        ]
        run_script(self, script)

    def test_xread(self):
        """XREAD: COUNT, several streams, $, errors (unbalanced, GROUP/NOACK, >, WRONGTYPE),
        nothing new (nil), BLOCK with a timeout parsed as Redis's, RESP3 maps."""
        script = [
            [b"xadd", b"a", b"1-1", b"f", b"1"], [b"xadd", b"a", b"2-1", b"f", b"2"],
            [b"xadd", b"b", b"5-5", b"g", b"5"],
            [b"xread", b"streams", b"a", b"b", b"0", b"0"],
            [b"xread", b"count", b"1", b"streams", b"a", b"b", b"1-1", b"0-0"],
            [b"xread", b"count", b"-1", b"streams", b"a", b"0"],
            [b"xread", b"streams", b"a", b"b", b"$", b"$"],
            [b"xread", b"streams", b"a", b"none", b"2", b"0"],
            [b"xread", b"streams", b"a", b"b", b"0"], [b"xread", b"streams"],
            [b"xread", b"count", b"x", b"streams", b"a", b"0"],
            [b"xread", b"group", b"g", b"c", b"streams", b"a", b">"],
            [b"xread", b"noack", b"streams", b"a", b">"], [b"xread", b"streams", b"a", b">"],
            [b"xread", b"bogus", b"streams", b"a", b"0"], [b"xread", b"count", b"1", b"a"],
            [b"set", b"str", b"v"], [b"xread", b"streams", b"str", b"0"],
            [b"xread", b"streams", b"a", b"str", b"0", b"bad"],
            [b"xread", b"streams", b"a", b"str", b"bad", b"0"],
            [b"xread", b"streams", b"a", b"-"], [b"xread", b"streams", b"a", b"+"],
            [b"xread", b"streams", b"a", b"18446744073709551615-18446744073709551615"],
            [b"xread", b"block", b"-1", b"streams", b"a", b"$"],
            [b"xread", b"block", b"x", b"streams", b"a", b"$"],
            [b"xread", b"block", b"1.5", b"streams", b"a", b"$"],
            [b"xread", b"block", b"0", b"streams", b"a", b"0"],
            [b"multi"], [b"xread", b"block", b"0", b"streams", b"a", b"$"], [b"exec"],
            [b"xread", b"streams", b"nothing", b"0"],
        ]
        run_script(self, script)
        self.reset()
        self.redis.call([b"HELLO", b"3"])
        self.session.execute([b"HELLO", b"3"])
        run_script(self, [[b"xadd", b"a", b"1-1", b"f", b"1"], [b"xadd", b"b", b"1-1", b"g", b"2"],
                          [b"xread", b"streams", b"a", b"b", b"0", b"0"],
                          [b"xread", b"streams", b"a", b"$"],
                          [b"xrange", b"a", b"-", b"+", b"count", b"0"],
                          [b"xadd", b"none", b"nomkstream", b"*", b"f", b"v"]], resp3=True)

    def test_xsetid(self):
        """XSETID: options, its errors, and what later XADDs and XINFO-free reads see."""
        script = [
            [b"xsetid", b"none", b"1-1"], [b"xadd", b"s", b"5-5", b"f", b"v"],
            [b"xsetid", b"s", b"5-4"], [b"xsetid", b"s", b"5-5"], [b"xsetid", b"s", b"10-0"],
            [b"xadd", b"s", b"9-9", b"f", b"v"], [b"xadd", b"s", b"10-*", b"f", b"v"],
            [b"xsetid", b"s", b"20", b"entriesadded", b"1"],
            [b"xsetid", b"s", b"20", b"entriesadded", b"-1"],
            [b"xsetid", b"s", b"20", b"entriesadded", b"x"],
            [b"xsetid", b"s", b"20", b"maxdeletedid", b"30-0"],
            [b"xsetid", b"s", b"20", b"maxdeletedid", b"-"], [b"xsetid", b"s", b"+"],
            [b"xsetid", b"s", b"20", b"bogus", b"1"], [b"xsetid", b"s", b"20", b"entriesadded"],
            [b"xsetid", b"s", b"20", b"entriesadded", b"7", b"maxdeletedid", b"3-0"],
            [b"set", b"str", b"v"], [b"xsetid", b"str", b"1"], [b"xtrim", b"s", b"maxlen", b"0"],
            [b"xsetid", b"s", b"1-1"], [b"xadd", b"s", b"1-2", b"f", b"v"],
        ]
        run_script(self, script)

    def test_generic_commands(self):
        """TYPE, OBJECT ENCODING, SCAN TYPE, EXISTS, RENAME, COPY, MOVE, EXPIRE, DEL, and
        WRONGTYPE from the other families, on streams."""
        script = [
            [b"xadd", b"a", b"1-1", b"f", b"v"], [b"xadd", b"b", b"2-2", b"g", b"w"],
            [b"set", b"c", b"v"], [b"type", b"a"], [b"object", b"encoding", b"a"],
            [b"exists", b"a", b"b", b"c"], [b"scan", b"0", b"type", b"stream", b"match", b"a*"],
            [b"expire", b"a", b"100"], [b"ttl", b"a"], [b"rename", b"a", b"a2"], [b"ttl", b"a2"],
            [b"xrange", b"a2", b"-", b"+"], [b"copy", b"a2", b"b"],
            [b"copy", b"a2", b"b", b"replace"], [b"xrange", b"b", b"-", b"+"], [b"ttl", b"b"],
            [b"xadd", b"b", b"3-3", b"h", b"x"], [b"xlen", b"a2"], [b"move", b"b", b"1"],
            [b"exists", b"b"], [b"select", b"1"], [b"xrange", b"b", b"-", b"+"],
            [b"select", b"0"], [b"get", b"a2"], [b"lpush", b"a2", b"x"], [b"hget", b"a2", b"x"],
            [b"sadd", b"a2", b"x"], [b"zadd", b"a2", b"1", b"x"], [b"append", b"a2", b"x"],
            [b"sort", b"a2"], [b"del", b"a2", b"c"], [b"exists", b"a2"],
            [b"lpush", b"l", b"x"], [b"xadd", b"l", b"*", b"f", b"v"], [b"xlen", b"l"],
        ]
        run_script(self, script)

    def test_seeded_sequences(self):
        """Random sequences of stream commands over a few keys give the same replies."""
        for seed in range(8):
            self.reset()
            rng = random.Random(seed)
            for _ in range(200):
                self.compare(random_stream_command(rng))
            for key in (b"s1", b"s2"):
                self.compare([b"xrange", key, b"-", b"+"])


def _rid(rng) -> bytes:
    choice = rng.randrange(6)
    if choice == 0:
        return b"%d" % rng.randrange(40)
    if choice == 1:
        return b"%d-*" % rng.randrange(40)
    if choice == 2:
        return rng.choice([b"-", b"+", b"0-0", b"(5", b"(10-1", b"x"])
    return b"%d-%d" % (rng.randrange(40), rng.randrange(4))


def random_stream_command(rng) -> list:
    """One random stream command on keys s1, s2 and a string key."""
    key = rng.choice([b"s1", b"s1", b"s2", b"str"])
    kind = rng.randrange(8)
    if kind <= 2:
        argv = [b"xadd", key]
        if rng.random() < 0.3:
            argv += [rng.choice([b"maxlen", b"MINID"]), rng.choice([b"~", b"=", b""])]
            argv = [arg for arg in argv if arg]
            argv.append(b"%d" % rng.randrange(12) if argv[-1].lower() != b"minid"
                        and argv[-2].lower() != b"minid" else _rid(rng))
        argv.append(FAR + b"-*" if rng.random() < 0.1 else _rid(rng))
        for _ in range(rng.randrange(1, 3)):
            argv += [rng.choice([b"a", b"b", b"1"]), rng.choice([b"x", b"12", b""])]
        return argv
    if kind == 3:
        return [rng.choice([b"xrange", b"xrevrange"]), key, _rid(rng), _rid(rng)] + (
            [b"count", b"%d" % rng.randrange(-1, 4)] if rng.random() < 0.5 else [])
    if kind == 4:
        return [b"xdel", key] + [_rid(rng) for _ in range(rng.randrange(1, 4))]
    if kind == 5:
        return [b"xtrim", key, rng.choice([b"maxlen", b"minid"]), b"%d" % rng.randrange(8)]
    if kind == 6:
        return [b"xread", b"count", b"%d" % rng.randrange(3), b"streams", key, _rid(rng)]
    return [rng.choice([b"xlen", b"type", b"exists"]), key]


class BlockingTests(SynchronousTestCase):
    """XREAD BLOCK waits on the engine's blocking infrastructure."""

    def setUp(self):
        self.clock = Clock()
        self.clock.advance(1000)
        self.store = Store(self.clock)
        self.reader = self.store.new_session()
        self.writer = self.store.new_session()

    def replies(self, blocked) -> list:
        got = []
        blocked.add_callback(lambda done: got.append(done.reply))
        return got

    def test_woken_by_xadd(self):
        """A reader blocked on $ gets exactly the entry added after it blocked."""
        self.writer.execute([b"xadd", b"s", b"1-1", b"f", b"old"])
        blocked = self.reader.execute([b"xread", b"block", b"0", b"streams", b"s", b"$"])
        got = self.replies(blocked)
        self.assertEqual(got, [])
        self.writer.execute([b"xadd", b"s", b"2-1", b"f", b"new"])
        self.assertEqual([to_resp(reply) for reply in got],
                         [to_resp([[b"s", [[b"2-1", [b"f", b"new"]]]]])])

    def test_timeout_gives_nil(self):
        """BLOCK 100 ends after 100 ms with a nil array; a write to another key wakes nobody."""
        blocked = self.reader.execute([b"xread", b"block", b"100", b"streams", b"s", b"0"])
        got = self.replies(blocked)
        self.writer.execute([b"xadd", b"other", b"1-1", b"f", b"v"])
        self.clock.advance(0.099)
        self.assertEqual(got, [])
        self.clock.advance(0.002)
        self.assertEqual(got, [NIL_ARRAY])

    def test_other_type_keeps_waiting(self):
        """A string written at the key leaves the reader blocked; a stream later serves it."""
        blocked = self.reader.execute([b"xread", b"block", b"0", b"count", b"1", b"streams",
                                       b"s", b"0"])
        got = self.replies(blocked)
        self.writer.execute([b"set", b"s", b"v"])
        self.assertEqual(got, [])
        self.writer.execute([b"del", b"s"])
        self.writer.execute([b"xadd", b"s", b"1-1", b"a", b"1"])
        self.assertEqual([to_resp(reply) for reply in got],
                         [to_resp([[b"s", [[b"1-1", [b"a", b"1"]]]]])])
        self.assertEqual(self.store.blocking.count(), 0)


class EventTests(SynchronousTestCase):
    """Keyspace events of the stream commands, as Redis 7.0 sends them."""

    def test_script(self):
        """xadd, xtrim (from XADD MAXLEN and XTRIM), xdel, xsetid; no del when emptied."""
        script = [
            (1, [b"config", b"set", b"notify-keyspace-events", b"KEA"]),
            (0, [b"psubscribe", b"__key*"]),
            (1, [b"xadd", b"s", b"1-1", b"f", b"v"]), (1, [b"xadd", b"s", b"2-1", b"f", b"v"]),
            (1, [b"xadd", b"s", b"maxlen", b"1", b"3-1", b"f", b"v"]),
            (1, [b"xadd", b"s", b"maxlen", b"5", b"4-1", b"f", b"v"]),
            (1, [b"xdel", b"s", b"9-9"]), (1, [b"xdel", b"s", b"3-1"]),
            (1, [b"xtrim", b"s", b"maxlen", b"0"]), (1, [b"xtrim", b"s", b"maxlen", b"0"]),
            (1, [b"xsetid", b"s", b"9-9"]), (1, [b"xrange", b"none", b"-", b"+"]),
            (1, [b"xlen", b"none"]), (1, [b"del", b"s"]),
            (1, [b"config", b"set", b"notify-keyspace-events", b"KEAmn"]),
            (1, [b"xread", b"streams", b"none", b"0"]), (1, [b"xinfo", b"stream", b"none"]),
            (1, [b"xrevrange", b"none", b"+", b"-"]), (1, [b"xadd", b"n", b"1-1", b"f", b"v"]),
            (1, [b"xdel", b"none2", b"1-1"]), (1, [b"xtrim", b"none3", b"maxlen", b"1"]),
            (1, [b"xread", b"streams", b"n", b"n", b"0", b"$"]),
        ]
        server = start_redis_or_skip()
        self.addCleanup(server.stop)
        expected = redis_transcript(server.port, 2, script)
        got = kvstore_transcript(2, script)
        for want, have in zip(expected, got):
            self.assertEqual(have, want, script[want[0]])
        self.assertEqual(len(got), len(expected))


class RespTests(SynchronousTestCase):
    """Stream values are typed values of their own."""

    def test_stream_value_is_kept_when_empty(self):
        """XTRIM to 0 leaves an empty StreamValue in the keyspace."""
        store = Store(Clock())
        session = store.new_session()
        session.execute([b"xadd", b"s", b"1-1", b"f", b"v"])
        self.assertEqual(to_resp(session.execute([b"xtrim", b"s", b"maxlen", b"0"])), b":1\r\n")
        self.assertIsInstance(store.keyspace.get(b"s"), StreamValue)
