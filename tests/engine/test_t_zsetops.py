"""Tests for kvtwist.engine.t_zsetops (pops and set algebra) and the sorted-set keyspace
events, against a real redis-server."""

from __future__ import annotations

from twisted.trial.unittest import SynchronousTestCase

from tests.pubsubref import kvstore_transcript, redis_transcript
from tests.redisref import DifferentialMixin, start_redis_or_skip

SCRIPT = [
    (0, [b"PSUBSCRIBE", b"__key*__:*"]),
    (1, [b"CONFIG", b"SET", b"notify-keyspace-events", b"KEA"]),
    (1, [b"ZADD", b"z", b"1", b"a", b"2", b"b", b"3", b"c"]),
    (1, [b"ZADD", b"z", b"1", b"a"]),
    (1, [b"ZADD", b"z", b"INCR", b"1", b"a"]),
    (1, [b"ZINCRBY", b"z", b"1", b"b"]),
    (1, [b"ZREM", b"z", b"nope"]),
    (1, [b"ZREM", b"z", b"a"]),
    (1, [b"ZPOPMIN", b"z"]),
    (1, [b"ZPOPMAX", b"z", b"0"]),
    (1, [b"ZADD", b"z", b"5", b"x", b"6", b"y", b"7", b"w"]),
    (1, [b"ZMPOP", b"1", b"z", b"MAX"]),
    (1, [b"ZMPOP", b"1", b"z", b"MIN"]),
    (1, [b"ZREMRANGEBYRANK", b"z", b"5", b"9"]),
    (1, [b"ZREMRANGEBYSCORE", b"z", b"0", b"5"]),
    (1, [b"ZADD", b"z", b"0", b"p", b"0", b"q"]),
    (1, [b"ZREMRANGEBYLEX", b"z", b"[p", b"[p"]),
    (1, [b"ZUNIONSTORE", b"u", b"1", b"z"]),
    (1, [b"ZINTERSTORE", b"i", b"2", b"z", b"u"]),
    (1, [b"ZDIFFSTORE", b"d", b"2", b"z", b"u"]),
    (1, [b"ZRANGESTORE", b"r", b"z", b"0", b"-1"]),
    (1, [b"ZRANGESTORE", b"r", b"nope", b"0", b"-1"]),
    (1, [b"ZUNION", b"1", b"z"]),
    (1, [b"ZADD", b"e", b"1", b"a"]),
    (1, [b"ZREM", b"e", b"a"]),
    (1, [b"ZADD", b"e", b"1", b"a"]),
    (1, [b"ZPOPMAX", b"e", b"3"]),
    (1, [b"ZADD", b"e", b"1", b"a"]),
    (1, [b"ZREMRANGEBYRANK", b"e", b"0", b"-1"]),
    (1, [b"ZADD", b"e", b"1", b"a"]),
    (1, [b"ZMPOP", b"1", b"e", b"MIN"]),
    (1, [b"CONFIG", b"SET", b"notify-keyspace-events", b"Em"]),
    (1, [b"ZSCORE", b"m1", b"a"]),
    (1, [b"ZRANGE", b"m2", b"0", b"1"]),
    (1, [b"ZCARD", b"m3"]),
    (1, [b"ZUNION", b"2", b"m4", b"z"]),
    (1, [b"ZADD", b"m5", b"1", b"a"]),
    (1, [b"CONFIG", b"SET", b"notify-keyspace-events", b""]),
]


class EventTests(SynchronousTestCase):
    """Sorted-set commands send Redis's keyspace events, "del" of an emptied set too."""

    def test_script(self):
        """Every step's messages and replies match Redis's."""
        server = start_redis_or_skip()
        self.addCleanup(server.stop)
        expected = redis_transcript(server.port, 2, SCRIPT)
        got = kvstore_transcript(2, SCRIPT)
        for want, have in zip(expected, got):
            self.assertEqual(have, want, SCRIPT[want[0]])


class PopAndAlgebraTests(DifferentialMixin, SynchronousTestCase):
    def test_pops(self):
        """ZPOPMIN/ZPOPMAX/ZMPOP reply shapes in RESP2 and RESP3, across keys."""
        for resp3 in (False, True):
            if resp3:
                self.redis.call([b"HELLO", b"3"])
                self.session.execute([b"HELLO", b"3"])
            self.compare([b"ZADD", b"z", b"1", b"a", b"2", b"b", b"3", b"c", b"4", b"d"])
            for argv in ([b"ZPOPMIN", b"z"], [b"ZPOPMAX", b"z", b"1"], [b"ZPOPMIN", b"none", b"3"],
                         [b"ZMPOP", b"2", b"none", b"z", b"MIN", b"COUNT", b"10"],
                         [b"ZMPOP", b"1", b"z", b"MAX"], [b"EXISTS", b"z"]):
                self.compare(argv, resp3=resp3)

    def test_algebra_weights_and_aggregates(self):
        """WEIGHTS, AGGREGATE and infinities (inf - inf is 0) combine as Redis."""
        self.compare([b"ZADD", b"a", b"1", b"x", b"inf", b"y", b"-inf", b"z", b"2", b"w"])
        self.compare([b"ZADD", b"b", b"2", b"x", b"-inf", b"y", b"inf", b"z", b"3", b"v"])
        for how in (b"SUM", b"MIN", b"MAX"):
            for weights in ([b"1", b"1"], [b"0", b"2"], [b"-1", b"0.5"], [b"inf", b"1"]):
                for name in (b"ZUNION", b"ZINTER"):
                    self.compare([name, b"2", b"a", b"b", b"WEIGHTS"] + weights +
                                 [b"AGGREGATE", how, b"WITHSCORES"])
        for argv in ([b"ZDIFF", b"2", b"a", b"b", b"WITHSCORES"], [b"ZINTERCARD", b"2", b"a", b"b"],
                     [b"ZINTERCARD", b"2", b"a", b"b", b"LIMIT", b"1"],
                     [b"ZINTER", b"2", b"a", b"a", b"WITHSCORES"],
                     [b"ZUNIONSTORE", b"a", b"2", b"a", b"b"], [b"ZRANGE", b"a", b"0", b"-1",
                                                               b"WITHSCORES"]):
            self.compare(argv)
