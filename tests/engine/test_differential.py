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


# -- keyspace and introspection commands (EXPIRE options, EXPIRETIME, TOUCH, OBJECT, COMMAND) --

ENCODED = [b"0", b"123", b"9999", b"10000", b"-5", b"9223372036854775807", b"-0", b" 1", b"01",
           b"12345678901234567890", b"x" * 44, b"y" * 45, b"", b"abc", b"3.5"]


def random_key_command(rng, now: int) -> list:
    """Return one random argument vector for the keyspace and OBJECT commands."""
    key = _pick(rng, KEYS)
    kind = rng.randrange(13)
    if kind == 0:
        return [b"set", key, _pick(rng, ENCODED)]
    if kind == 12:
        return _pick(rng, [[b"setbit", key, b"3", b"1"], [b"bitfield", key, b"get", b"u8", b"0"],
                           [b"bitfield", key, b"SET", b"u8", b"0", b"49"],
                           [b"bitop", b"or", key, _pick(rng, KEYS)]])
    if kind == 1:
        return [_pick(rng, [b"append", b"APPEND"]), key, _pick(rng, [b"", b"1", b"x", b"12"])]
    if kind == 2:
        return [b"setrange", key, _pick(rng, [b"0", b"2"]), _pick(rng, [b"", b"7", b"zz"])]
    if kind == 3:
        return [_pick(rng, [b"incr", b"incrbyfloat", b"incrby"]), key] + (
            [] if rng.random() < 0.3 else [_pick(rng, [b"1", b"2.5", b"-3", b"10000"])])
    if kind == 4:
        return [b"object", _pick(rng, [b"encoding", b"ENCODING", b"refcount", b"freq",
                                       b"idletime", b"foo"]), key]
    if kind == 5:
        argv = [_pick(rng, [b"expire", b"pexpire", b"expireat", b"pexpireat"]), key,
                _pick(rng, SECONDS + MILLIS + [b"%d" % (now + 7200), b"%d" % (now * 1000 + 9e6)])]
        argv.extend(rng.sample([b"nx", b"XX", b"gt", b"LT", b"gt", b"foo"], rng.randrange(3)))
        return argv
    if kind == 6:
        return [_pick(rng, [b"expiretime", b"pexpiretime", b"ttl", b"persist"]), key]
    if kind == 7:
        return [_pick(rng, [b"touch", b"unlink", b"TOUCH"])] + [
            _pick(rng, KEYS) for _ in range(rng.randrange(0, 4))]
    if kind == 8:
        return [b"del", key]
    if kind == 9:
        return [b"object"] + _pick(rng, [[], [b"help"], [b"HELP", b"x"], [b"encoding"],
                                         [b"encoding", key, key]])
    if kind == 10:
        return [b"getset", key, _pick(rng, ENCODED)]
    return [b"mset", key, _pick(rng, ENCODED), _pick(rng, KEYS), _pick(rng, ENCODED)]


def elements(reply: bytes) -> list:
    """Split an array reply's bytes into its elements' bytes."""
    parser = RawConnection.__new__(RawConnection)
    header = reply.index(b"\r\n") + 2
    parser.buffer = reply
    count = int(reply[1:header - 2])
    found, position = [], header
    for _ in range(count):
        end = parser._reply_end(position)
        found.append(reply[position:end])
        position = end
    return found


class KeyspaceDifferentialTests(DifferentialTests):
    def compare(self, session, argv):
        self.sync_clock()
        theirs = self.redis.call(argv)
        ours = to_resp(session.execute(list(argv)))
        if argv[0].lower() == b"object" and argv[1:2] in ([b"idletime"],) and ours != theirs:
            # Idle seconds may differ by one across a second boundary between the two calls.
            self.assertLessEqual(abs(int(ours[1:]) - int(theirs[1:])), 1, (argv, ours, theirs))
            return
        if argv[0].lower() in (b"expiretime", b"pexpiretime") and ours != theirs:
            # A relative expiry set on a loaded machine may start a few ms apart on the two.
            slack = 1 if argv[0].lower() == b"expiretime" else 1000
            self.assertTrue(ours[:1] == theirs[:1] == b":" and int(ours[1:]) > 0
                            and abs(int(ours[1:]) - int(theirs[1:])) <= slack,
                            (argv, ours, theirs))
            return
        self.assertTrue(same_reply(ours, theirs, argv),
                        "%r: ours %r, redis %r" % (argv, ours, theirs))

    def test_seeded_sequences(self):
        """Random keyspace/OBJECT commands give byte-identical replies."""
        for seed in range(4):
            rng = random.Random(seed)
            session = self.fresh_session()
            for _ in range(500):
                self.compare(session, random_key_command(rng, self.now))
            for key in KEYS:
                self.compare(session, [b"object", b"encoding", key])
                self.compare(session, [b"pexpiretime", key])

    test_hypothesis_sequences = None
    test_admin_replies = None

    def test_error_texts(self):
        """Hand-picked keyspace errors match byte for byte."""
        session = self.fresh_session()
        for argv in ([b"set", b"k", b"v"], [b"expire", b"k", b"9223372036854775807"],
                     [b"pexpire", b"k", b"9223372036854775807"],
                     [b"expireat", b"k", b"-9223372036854775808"],
                     [b"expire", b"k", b"-9223372036854776"], [b"set", b"k", b"v"],
                     [b"expire", b"k", b"-9223372036854775"], [b"set", b"k", b"v"],
                     [b"expire", b"k", b"1", b"nx", b"gt"], [b"expire", b"k", b"x", b"zz"],
                     [b"expiretime"], [b"pexpiretime", b"a", b"b"], [b"touch"], [b"unlink"],
                     [b"object"], [b"object", b"freq", b"k"], [b"object", b"refcount"]):
            self.compare(session, argv)

    def test_command_info_and_docs(self):
        """COMMAND INFO and DOCS of every table command Redis has match (subcommands aside
        from their order, which is a hash order in Redis)."""
        from kvtwist.engine import introspect
        from kvtwist.engine.table import TABLE
        session = self.fresh_session()
        data = introspect.command_data()
        for name in TABLE:
            text = name.decode()
            if text not in data:
                continue
            subs = introspect.subcommand_names(text)
            if not data[text]["subcommands"]:
                self.compare(session, [b"command", b"info", name])
                self.compare(session, [b"COMMAND", b"DOCS", name.upper()])
                continue
            ours = to_resp(session.execute([b"command", b"info", name]))
            theirs = self.redis.call([b"command", b"info", name])
            self.assertEqual(elements(elements(ours)[0])[:9], elements(elements(theirs)[0])[:9])
            ours = elements(to_resp(session.execute([b"command", b"docs", name])))[1]
            theirs = elements(self.redis.call([b"command", b"docs", name]))[1]
            self.assertEqual(elements(ours)[:-2], elements(theirs)[:-2], name)
            for full in subs:
                if full in data:
                    self.compare(session, [b"command", b"info", full.encode()])
                    self.compare(session, [b"command", b"docs", full.encode()])

    def test_command_getkeys_and_more(self):
        """GETKEYS, GETKEYSANDFLAGS, HELP, LIST filters and their errors match."""
        session = self.fresh_session()
        for argv in ([b"get", b"k"], [b"MSET", b"a", b"1", b"b", b"2"], [b"mset", b"a"],
                     [b"set", b"k", b"v", b"get"], [b"set", b"k", b"v", b"ex", b"1"],
                     [b"del", b"a", b"b"], [b"rename", b"a", b"b"], [b"object", b"encoding", b"k"],
                     [b"client", b"list"], [b"client", b"foo"], [b"ping", b"x"], [b"foo", b"x"],
                     [b"get", b"a", b"b"], [b"getrange", b"k", b"0"], [b"get"], [b"touch", b"a"],
                     [b"expire", b"k", b"1", b"nx"], [b"command", b"info"], [b"object", b"help"]):
            self.compare(session, [b"command", b"getkeys"] + argv)
            self.compare(session, [b"command", b"getkeysandflags"] + argv)
        for argv in ([b"command", b"help"], [b"command", b"foo"], [b"command", b"count", b"x"],
                     [b"command", b"list", b"x"], [b"command", b"list", b"filterby", b"foo", b"x"],
                     [b"command", b"list", b"filterby", b"module", b"x"],
                     [b"command", b"list", b"filterby", b"aclcat", b"nosuch"],
                     [b"command", b"info", b"nosuch", b"a|b|c", b"client|nosuch"],
                     [b"command", b"docs", b"nosuch"], [b"object", b"help"]):
            self.compare(session, argv)
        for pattern in (b"*expire*", b"OBJECT|*", b"command|*", b"obj?ct"):
            argv = [b"command", b"list", b"filterby", b"pattern", pattern]
            theirs = [each.split(b"\r\n")[1] for each in elements(self.redis.call(argv))]
            self.assertEqual(sorted(session.execute(argv)), sorted(theirs))
