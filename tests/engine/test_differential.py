"""Differential tests: random command sequences give the same RESP bytes as a real redis-server."""

from __future__ import annotations

import random

from hypothesis import HealthCheck, given, settings, strategies as st
from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from kvtwist.engine.store import Store
from kvtwist.wire.replies import to_resp
from tests.redisref import RawConnection, start_redis_or_skip

KEYS = [b"a", b"b", b"c", b"n"]
VALUES = [b"", b"0", b"1", b"-7", b"10.5", b"hello", b"a b\r\nc", b"\x00\xff",
          b"9223372036854775806", b"-9223372036854775808", b"007", b" 1", b"3e2"]
INTEGERS = [b"0", b"1", b"-1", b"42", b"-100", b"9223372036854775807", b"-9223372036854775808",
            b"9223372036854775808", b"1.5", b"abc", b"", b"+1", b"01", b"-0", b"0x10"]
FLOATS = [b"0.1", b"-0.3", b"1e3", b"5.0e-2", b"abc", b"inf", b"", b"3", b".5", b"-1e400", b"7."]
# Long and far-away expiry times keep replies independent of the few ms between the two servers.
SECONDS = [b"3600", b"86400", b"0", b"-5", b"abc", b"9223372036854775807"]
MILLIS = [b"3600000", b"90000000", b"0", b"-1", b"1.5"]
SET_OPTIONS = [[b"NX"], [b"xx"], [b"GET"], [b"keepttl"], [b"EX"], [b"bogus"]]


def _pick(rng, items):
    return items[rng.randrange(len(items))]


def random_command(rng, now: int) -> list:
    """Return one random argument vector drawn from the commands under test."""
    key, value = _pick(rng, KEYS), _pick(rng, VALUES)
    kind = rng.randrange(27)
    if kind >= 24:
        return database_command(rng, key)
    if kind == 0:
        argv = [b"SET", key, value]
        for _ in range(rng.randrange(3)):
            choice = rng.randrange(8)
            if choice < len(SET_OPTIONS):
                argv.extend(SET_OPTIONS[choice])
            if choice in (4, 6):
                argv.append(_pick(rng, SECONDS))
            elif choice == 7:
                argv.extend([_pick(rng, [b"px", b"EXAT", b"pxat"]),
                             _pick(rng, [b"%d" % (now + 7200), b"%d" % (now * 1000 + 7200000),
                                         b"3600000", b"1", b"-3", b"x"])])
        return argv
    if kind == 1:
        return [b"get", key]
    if kind == 2:
        return [b"DEL"] + rng.sample(KEYS, rng.randrange(1, 4))
    if kind == 3:
        return [_pick(rng, [b"incr", b"DECR"]), key]
    if kind == 4:
        return [_pick(rng, [b"incrby", b"decrby"]), key, _pick(rng, INTEGERS)]
    if kind == 5:
        return [b"incrbyfloat", key, _pick(rng, FLOATS)]
    if kind == 6:
        return [b"append", key, value]
    if kind == 7:
        return [b"strlen", key]
    if kind == 8:
        argv = [b"mset"]
        for other in rng.sample(KEYS, rng.randrange(1, 4)):
            argv.extend([other, _pick(rng, VALUES)])
        return argv[:-1] if rng.random() < 0.2 else argv
    if kind == 9:
        return [b"MGET"] + rng.sample(KEYS, rng.randrange(1, 4))
    if kind == 10:
        return [b"exists"] + [_pick(rng, KEYS) for _ in range(rng.randrange(1, 4))]
    if kind == 11:
        return [b"getdel", key]
    if kind == 12:
        argv = [_pick(rng, [b"expire", b"PEXPIRE"]), key,
                _pick(rng, SECONDS if rng.random() < 0.5 else MILLIS)]
        if rng.random() < 0.4:
            argv.extend(rng.sample([b"nx", b"XX", b"gt", b"lt", b"zz"], rng.randrange(1, 3)))
        return argv
    if kind == 13:
        return [b"expireat", key, _pick(rng, [b"%d" % (now + 7200), b"1", b"x"])]
    if kind == 14:
        return [_pick(rng, [b"ttl", b"pttl"]), key]
    if kind == 15:
        return [b"persist", key]
    if kind == 16:
        return [b"getrange", key, _pick(rng, INTEGERS[:5]), _pick(rng, INTEGERS[:5])]
    if kind == 17:
        return [b"setrange", key, _pick(rng, [b"0", b"3", b"-1", b"x"]), value]
    if kind == 18:
        return [_pick(rng, [b"setnx", b"getset"]), key, value]
    if kind == 19:
        return [_pick(rng, [b"setex", b"psetex"]), key, _pick(rng, SECONDS + MILLIS), value]
    if kind == 20:
        return [_pick(rng, [b"type", b"msetnx"]), key] + ([value] if rng.random() < 0.5 else [])
    if kind == 21:
        return [_pick(rng, [b"rename", b"renamenx"]), key, _pick(rng, KEYS)]
    if kind == 22:
        # Wrong arity: drop or add arguments to a well-known command.
        return _pick(rng, [[b"get"], [b"GET", key, key], [b"set", key], [b"incr"],
                           [b"expire", key], [b"mget"], [b"ping", b"a", b"b"]])
    return [_pick(rng, [b"foo", b"BAR", b"sett"])] + [_pick(rng, VALUES)
                                                      for _ in range(rng.randrange(3))]


DATABASES = [b"0", b"1", b"2", b"15", b"16", b"-1", b"x"]


def database_command(rng, key: bytes) -> list:
    """Return a random SELECT, MOVE, SWAPDB, COPY, FLUSHDB or DBSIZE argument vector."""
    kind = rng.randrange(6)
    if kind == 0:
        return [b"SELECT", _pick(rng, DATABASES[:4] * 3 + DATABASES)]
    if kind == 1:
        return [b"move", key, _pick(rng, DATABASES)]
    if kind == 2:
        return [b"swapdb", _pick(rng, DATABASES), _pick(rng, DATABASES[:4])]
    if kind == 3:
        argv = [b"COPY", key, _pick(rng, KEYS)]
        if rng.random() < 0.5:
            argv.extend([b"db", _pick(rng, DATABASES)])
        if rng.random() < 0.5:
            argv.append(_pick(rng, [b"replace", b"REPLACE", b"bogus"]))
        return argv
    if kind == 4:
        return [_pick(rng, [b"flushdb", b"FLUSHDB", b"flushdb"]), ]
    return [b"dbsize"]


def same_reply(ours: bytes, theirs: bytes, argv) -> bool:
    """Return whether two replies match; positive TTLs may differ by the round trip's skew."""
    if ours == theirs:
        return True
    if argv[0].lower() in (b"ttl", b"pttl") and ours[:1] == theirs[:1] == b":":
        mine, real = int(ours[1:]), int(theirs[1:])
        slack = 1 if argv[0].lower() == b"ttl" else 1000
        return mine > 0 and real > 0 and abs(mine - real) <= slack
    return False


class DifferentialTests(SynchronousTestCase):
    def setUp(self):
        server = start_redis_or_skip()
        self.addCleanup(server.stop)
        port = server.port
        self.redis = RawConnection(port)
        self.addCleanup(self.redis.close)
        now = self.redis.call([b"TIME"])
        seconds = int(now.split(b"\r\n")[2])
        self.clock = Clock()
        self.clock.advance(seconds)
        self.now = seconds

    def fresh_session(self):
        self.assertEqual(self.redis.call([b"FLUSHALL"]), b"+OK\r\n")
        self.assertEqual(self.redis.call([b"SELECT", b"0"]), b"+OK\r\n")
        return Store(self.clock).new_session()

    def sync_clock(self):
        # Follow redis-server's clock so relative expiry times start from the same instant.
        parts = self.redis.call([b"TIME"]).split(b"\r\n")
        now = int(parts[2]) + int(parts[4]) / 1e6
        if now > self.clock.seconds():
            self.clock.advance(now - self.clock.seconds())

    def compare(self, session, argv):
        self.sync_clock()
        theirs = self.redis.call(argv)
        ours = to_resp(session.execute(list(argv)))
        self.assertTrue(same_reply(ours, theirs, argv),
                        "%r: ours %r, redis %r" % (argv, ours, theirs))

    def test_seeded_sequences(self):
        """Thousands of random commands give byte-identical replies (and final state)."""
        for seed in range(4):
            rng = random.Random(seed)
            session = self.fresh_session()
            for _ in range(600):
                self.compare(session, random_command(rng, self.now))
            for db in (b"0", b"1", b"2", b"15"):
                self.compare(session, [b"select", db])
                for key in KEYS:
                    self.compare(session, [b"get", key])
                    self.compare(session, [b"ttl", key])

    @settings(max_examples=40, deadline=None,
              suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
    @given(st.lists(st.integers(min_value=0, max_value=2 ** 32), min_size=1, max_size=30))
    def test_hypothesis_sequences(self, seeds):
        """Hypothesis-chosen command sequences (shrinkable by seed) match redis-server."""
        session = self.fresh_session()
        for seed in seeds:
            self.compare(session, random_command(random.Random(seed), self.now))
        for key in KEYS:
            self.compare(session, [b"get", key])

    def test_error_texts(self):
        """Hand-picked error cases match byte for byte."""
        session = self.fresh_session()
        for argv in ([b"get"], [b"foo", b"a", b"b"], [b"FOO"], [b"foo", b"x" * 200, b"y"],
                     [b"CLIENT", b"xx"], [b"client"], [b"CLIENT", b"SETNAME"],
                     [b"config", b"foo"], [b"set", b"k", b"1", b"nx", b"xx"],
                     [b"set", b"k", b"1", b"ex", b"0"], [b"decrby", b"k", b"-9223372036854775808"],
                     [b"scan", b"abc"], [b"scan", b"0", b"count", b"0"], [b"select", b"x"],
                     [b"select", b"9999999999"], [b"config", b"set", b"foo", b"bar"],
                     [b"config", b"set", b"databases", b"3"], [b"rename", b"nokey", b"x"],
                     [b"expire", b"k", b"1", b"gt", b"lt"], [b"incrbyfloat", b"k", b"x"],
                     [b"hello", b"x"], [b"hello", b"4"], [b"hello", b"2", b"foo"]):
            self.compare(session, argv)

    def test_admin_replies(self):
        """Deterministic admin replies match (PING, ECHO, CONFIG GET, SELECT 0, DBSIZE, TYPE)."""
        session = self.fresh_session()
        for argv in ([b"ping"], [b"PING", b"hi"], [b"echo", b"x"], [b"select", b"0"],
                     [b"config", b"get", b"save"], [b"config", b"get", b"appendonly"],
                     [b"config", b"get", b"hz"], [b"set", b"k", b"v"], [b"dbsize"],
                     [b"type", b"k"], [b"type", b"none"], [b"keys", b"k"], [b"client", b"getname"],
                     [b"client", b"setname", b"me"], [b"client", b"getname"],
                     [b"client", b"setname", b"a b"], [b"info", b"nosuch"],
                     [b"flushall", b"async"], [b"dbsize"], [b"randomkey"], [b"quit"]):
            self.compare(session, argv)
