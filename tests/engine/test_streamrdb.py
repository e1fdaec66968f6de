"""Tests for kvtwist.engine.streamrdb: DUMP and RESTORE of streams in Redis 7.0's RDB
encoding, both ways against a real redis-server."""

from __future__ import annotations

import random

from twisted.trial.unittest import SynchronousTestCase

from kvtwist.engine import rdb
from kvtwist.engine.streamrdb import GROUPS_REFUSED
from kvtwist.wire.replies import Error, to_resp
from tests.redisref import DifferentialMixin
from tests.respparse import parse_reply


def build(rng, count: int) -> list:
    """XADD/XDEL commands for a stream with several nodes, varied fields and values."""
    script = []
    for n in range(1, count + 1):
        if rng.random() < 0.6:
            items = [b"field", b"value%d" % n]
        elif rng.random() < 0.5:
            number = rng.randrange(-10 ** 12, 10 ** 12)
            items = [b"a", b"%d" % number, b"b", b"x" * rng.randrange(200)]
        else:
            items = [b"z" * rng.randrange(1, 30), b"ab" * rng.randrange(40)]
        script.append([b"xadd", b"s", b"%d-%d" % (n * 7, rng.randrange(3))] + items)
    for n in rng.sample(range(1, count + 1), count // 10):
        script.append([b"xdel", b"s", b"%d-0" % (n * 7), b"%d-1" % (n * 7), b"%d-2" % (n * 7)])
    return script


class DumpRestoreTests(DifferentialMixin, SynchronousTestCase):
    """Streams DUMPed by redis-server RESTORE into kvstore and back."""

    def run_both(self, script) -> None:
        for argv in script:
            self.redis.call(argv)
            self.session.execute(argv)

    def state(self, call, key=b"s") -> list:
        """What a stream shows: its entries and the metadata XINFO STREAM gives."""
        info = parse_reply(call([b"xinfo", b"stream", key]))
        return [call([b"xrange", key, b"-", b"+"]), info[:14]]

    def ours(self, argv) -> bytes:
        return to_resp(self.session.execute(argv))

    def test_same_bytes_without_deletions(self):
        """A stream built the same way DUMPs to the very bytes redis-server gives."""
        rng = random.Random(1)
        script = [argv for argv in build(rng, 300) if argv[0] == b"xadd"]
        self.run_both(script)
        self.assertEqual(self.ours([b"dump", b"s"]), self.redis.call([b"dump", b"s"]))

    def test_redis_to_kvstore_and_back(self):
        """Redis's DUMP (deleted entries, several nodes, LZF) RESTOREs into kvstore with the
        same entries and metadata, later approximate trims agree, and kvstore's DUMP
        RESTOREs into redis-server equal."""
        for seed, count in ((2, 5), (3, 450)):
            self.reset()
            self.redis.call([b"xadd", b"s", b"1-0", b"f", b"v"])
            self.redis.call([b"del", b"s"])
            for argv in build(random.Random(seed), count):
                self.redis.call(argv)
            payload = parse_reply(self.redis.call([b"dump", b"s"]))
            self.assertEqual(self.ours([b"restore", b"k", b"0", payload]), b"+OK\r\n")
            self.redis.call([b"restore", b"k", b"0", payload])
            self.assertEqual(self.state(self.ours, b"k"), self.state(self.redis.call, b"k"))
            ours = parse_reply(self.ours([b"dump", b"k"]))
            self.redis.call([b"restore", b"back", b"0", ours])
            self.assertEqual(self.state(self.redis.call, b"back"), self.state(self.ours, b"k"))
            for maxlen in (400, 300, 100, 10):
                self.compare([b"xtrim", b"k", b"maxlen", b"~", b"%d" % maxlen])
                if maxlen == 100:
                    self.compare([b"xadd", b"k", b"99999-1", b"f", b"v"])
            self.assertEqual(self.state(self.ours, b"k"), self.state(self.redis.call, b"k"))

    def test_empty_stream_and_metadata(self):
        """An empty stream (trimmed to nothing) keeps its last ID and counters both ways."""
        self.run_both([[b"xadd", b"s", b"5-5", b"f", b"v"], [b"xadd", b"s", b"6-0", b"f", b"v"],
                       [b"xdel", b"s", b"6-0"], [b"xtrim", b"s", b"maxlen", b"0"]])
        self.assertEqual(self.ours([b"dump", b"s"]), self.redis.call([b"dump", b"s"]))
        payload = parse_reply(self.redis.call([b"dump", b"s"]))
        self.ours([b"restore", b"e", b"0", payload])
        self.assertEqual(self.state(self.ours, b"e"), self.state(self.redis.call, b"s"))

    def test_groups_and_corruption_are_refused(self):
        """A stream with a consumer group, or a damaged payload, is refused."""
        self.redis.call([b"xadd", b"s", b"1-1", b"f", b"v"])
        self.redis.call([b"xgroup", b"create", b"s", b"g", b"0"])
        payload = parse_reply(self.redis.call([b"dump", b"s"]))
        reply = self.session.execute([b"restore", b"k", b"0", payload])
        self.assertEqual(reply, Error(GROUPS_REFUSED))
        self.redis.call([b"xgroup", b"destroy", b"s", b"g"])
        payload = parse_reply(self.redis.call([b"dump", b"s"]))
        body = payload[:-10]
        for cut in (5, 12, len(body) - 3):
            broken = body[:cut] + bytes([body[cut] ^ 0x55]) + body[cut + 1:]
            broken += rdb.footer(broken)
            reply = self.session.execute([b"restore", b"k", b"0", broken, b"replace"])
            self.assertIsInstance(reply, Error)
        self.assertEqual(self.ours([b"exists", b"k"]), b":0\r\n")
