"""Tests for kvtwist.engine.t_geo: GEOADD, GEOPOS, GEODIST and GEOHASH against a real
redis-server, byte for byte."""

from __future__ import annotations

import random

from twisted.trial.unittest import SynchronousTestCase

from tests.helpers import SessionMixin
from tests.pubsubref import kvstore_transcript, redis_transcript
from tests.redisref import DifferentialMixin, start_redis_or_skip

COORDS = [b"0", b"13.361389", b"38.115556", b"15.087269", b"37.502669", b"-180", b"180",
          b"85.05112878", b"-85.05112878", b"85.05112879", b"180.0001", b"-73.9857",
          b"40.7484", b"x", b"", b"nan", b"inf", b"-inf", b"1e-300", b"-0", b"2.5e1",
          b"139.6917", b"35.6895", b"-122.4194", b"37.7749", b"0.0000001"]
MEMBERS = [b"Palermo", b"Catania", b"a", b"b", b"c", b"", b"nope"]
UNITS = [b"m", b"km", b"ft", b"mi", b"KM", b"Mi", b"yd"]


EVENTS_SCRIPT = [
    (0, [b"PSUBSCRIBE", b"__key*__:*"]),
    (1, [b"CONFIG", b"SET", b"notify-keyspace-events", b"KEAnm"]),
    (1, [b"GEOADD", b"g", b"13.361389", b"38.115556", b"Palermo"]),
    (1, [b"GEOADD", b"g", b"XX", b"CH", b"15.087269", b"37.502669", b"Palermo"]),
    (1, [b"GEOADD", b"g", b"NX", b"15.087269", b"37.502669", b"Palermo"]),
    (1, [b"GEOADD", b"g", b"200", b"0", b"bad"]),
    (1, [b"GEOPOS", b"missing", b"a"]),
    (1, [b"GEODIST", b"missing", b"a", b"b"]),
    (1, [b"GEOHASH", b"missing", b"a"]),
    (1, [b"GEOPOS", b"g", b"Palermo"]),
    (1, [b"CONFIG", b"SET", b"notify-keyspace-events", b""]),
]


def _pick(rng, items):
    return items[rng.randrange(len(items))]


def random_command(rng) -> list:
    """Return one random geo (or plain sorted-set) command."""
    key = _pick(rng, [b"g", b"g2", b"s"])
    kind = rng.randrange(10)
    if kind < 4:
        argv = [b"GEOADD", key]
        for option in (b"NX", b"XX", b"CH", b"nx", b"GT"):
            if rng.random() < 0.1:
                argv.append(option)
        for _ in range(rng.randrange(1, 4)):
            argv += [_pick(rng, COORDS), _pick(rng, COORDS), _pick(rng, MEMBERS)]
        if rng.random() < 0.05:
            argv.pop()
        return argv
    if kind < 6:
        return [b"GEOPOS", key] + [_pick(rng, MEMBERS) for _ in range(rng.randrange(0, 4))]
    if kind < 8:
        argv = [b"GEODIST", key, _pick(rng, MEMBERS), _pick(rng, MEMBERS)]
        if rng.random() < 0.6:
            argv.append(_pick(rng, UNITS))
        if rng.random() < 0.05:
            argv.append(b"m")
        return argv
    if kind < 9:
        return [b"GEOHASH", key] + [_pick(rng, MEMBERS) for _ in range(rng.randrange(0, 4))]
    return _pick(rng, [[b"SET", b"s", b"1"], [b"ZRANGE", b"g", b"0", b"-1", b"WITHSCORES"],
                       [b"ZADD", b"g", b"1e20", b"huge"], [b"ZADD", b"g", b"-5", b"b"],
                       [b"DEL", b"g"]])


class GeoDifferentialTests(DifferentialMixin, SynchronousTestCase):
    def test_random_sequences(self):
        """Random GEOADD/GEOPOS/GEODIST/GEOHASH sequences reply as redis-server's, in RESP2
        and RESP3 (coordinates as Redis's human long doubles, distances to 4 places)."""
        for resp3 in (False, True):
            if resp3:
                self.redis.call([b"HELLO", b"3"])
                self.session.execute([b"HELLO", b"3"])
            rng = random.Random(17)
            self.reset()
            for _ in range(600):
                self.compare(random_command(rng), resp3=resp3)

    def test_known_places(self):
        """Redis's documented example: Palermo and Catania, their distance and hashes."""
        self.compare([b"GEOADD", b"Sicily", b"13.361389", b"38.115556", b"Palermo",
                      b"15.087269", b"37.502669", b"Catania"])
        self.compare([b"GEODIST", b"Sicily", b"Palermo", b"Catania", b"km"])
        self.compare([b"GEOPOS", b"Sicily", b"Palermo", b"Catania", b"NonExisting"])
        self.compare([b"GEOHASH", b"Sicily", b"Palermo", b"Catania"])
        self.compare([b"GEOADD", b"Sicily", b"200", b"0", b"x"])
        self.compare([b"GEOADD", b"Sicily", b"xx", b"nx", b"1", b"1", b"x"])


class GeoEventTests(SynchronousTestCase):
    def test_script(self):
        """GEOADD sends ZADD's "zadd" event (and "new"), the readers "keymiss" on a missing
        key, as Redis 7.0's geo commands do."""
        server = start_redis_or_skip()
        self.addCleanup(server.stop)
        expected = redis_transcript(server.port, 2, EVENTS_SCRIPT)
        got = kvstore_transcript(2, EVENTS_SCRIPT)
        for want, have in zip(expected, got):
            self.assertEqual(have, want, EVENTS_SCRIPT[want[0]])


class GeoStatsTests(SessionMixin, SynchronousTestCase):
    def test_counted_as_geoadd(self):
        """GEOADD is counted as itself in commandstats, not as the ZADD it runs, and its
        WRONGTYPE error is its failure (unit/introspection-2's GEOADD stats tests)."""
        self.call("config", "resetstat")
        self.call("geoadd", "foo", "0", "0", "bar")
        self.call("set", "str", "1")
        self.call("geoadd", "str", "0", "0", "bar")
        text = self.call("info", "commandstats")
        self.assertIn(b"cmdstat_geoadd:calls=2,", text)
        self.assertIn(b",rejected_calls=0,failed_calls=1\r\n", text)
        self.assertNotIn(b"cmdstat_zadd", text)
