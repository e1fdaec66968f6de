"""Tests for kvtwist.engine.t_zsetrange: ranges by rank, score and lex, LIMIT, REV, STORE and
removal by range, against a real redis-server."""

from __future__ import annotations

from twisted.trial.unittest import SynchronousTestCase

from tests.redisref import DifferentialMixin


class RangeTests(DifferentialMixin, SynchronousTestCase):
    def fill(self, size: int) -> None:
        self.compare([b"DEL", b"z", b"l"])
        argv = [b"ZADD", b"z"]
        lex = [b"ZADD", b"l"]
        for index in range(size):
            argv += [b"%d" % (index // 3), b"m%03d" % index]
            lex += [b"0", b"m%03d" % index]
        self.compare(argv)
        self.compare(lex)

    def test_ranges_both_encodings(self):
        """Every range form with LIMIT and REV gives Redis's members, listpack and skiplist."""
        for size in (10, 300):
            self.fill(size)
            for argv in ([b"ZRANGE", b"z", b"2", b"-3", b"REV", b"WITHSCORES"],
                         [b"ZRANGE", b"z", b"(1", b"5", b"BYSCORE", b"LIMIT", b"2", b"4"],
                         [b"ZRANGE", b"z", b"5", b"(1", b"BYSCORE", b"REV", b"LIMIT", b"1", b"3"],
                         [b"ZRANGE", b"l", b"[m005", b"(m050", b"BYLEX", b"LIMIT", b"3", b"5"],
                         [b"ZRANGE", b"l", b"(m050", b"[m005", b"BYLEX", b"REV"],
                         [b"ZRANGEBYLEX", b"l", b"-", b"+", b"LIMIT", b"0", b"2"],
                         [b"ZREVRANGEBYLEX", b"l", b"+", b"-", b"LIMIT", b"8", b"2"],
                         [b"ZLEXCOUNT", b"l", b"[m003", b"+"], [b"ZCOUNT", b"z", b"(2", b"+inf"],
                         [b"ZRANGESTORE", b"d", b"z", b"0", b"49"], [b"OBJECT", b"ENCODING", b"d"],
                         [b"ZRANGESTORE", b"d", b"l", b"[m1", b"+", b"BYLEX", b"REV",
                          b"LIMIT", b"0", b"5"],
                         [b"ZRANGE", b"d", b"0", b"-1", b"WITHSCORES"],
                         [b"ZREMRANGEBYRANK", b"z", b"-5", b"-2"],
                         [b"ZREMRANGEBYSCORE", b"z", b"(3", b"6"],
                         [b"ZREMRANGEBYLEX", b"l", b"(m004", b"[m009"],
                         [b"ZRANGE", b"z", b"0", b"-1", b"WITHSCORES"],
                         [b"ZRANGE", b"l", b"0", b"-1"], [b"ZRANK", b"l", b"m010"],
                         [b"ZREVRANK", b"z", b"m000"]):
                self.compare(argv)
