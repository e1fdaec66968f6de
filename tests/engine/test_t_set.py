"""Tests for kvtwist.engine.t_set: the set commands against a real redis-server, byte for byte
(members compared as sets where Redis's order is its hash table's), and their events."""

from __future__ import annotations

import random

from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from kvtwist.engine.settype import MAX_INTSET, SetValue
from kvtwist.engine.store import Store
from kvtwist.wire.replies import SetReply, to_resp, to_resp3
from tests.pubsubref import kvstore_transcript, redis_transcript
from tests.redisref import DifferentialMixin, start_redis_or_skip
from tests.respparse import parse_reply

KEYS = [b"s1", b"s2", b"s3", b"str", b"none"]
MEMBERS = [b"1", b"2", b"3", b"-7", b"10", b"007", b"a", b"b", b"\x00x", b""]
# Commands whose replies list members in Redis's hash-table order: compared as sets.
UNORDERED = {b"smembers", b"sinter", b"sunion", b"sdiff", b"srandmember", b"spop", b"sscan",
             b"scan"}


def normalised(reply: bytes):
    """Return a parsed reply with its member lists sorted (SSCAN: the members of it)."""
    value = parse_reply(reply)
    if isinstance(value, list):
        if len(value) == 2 and isinstance(value[1], list):
            return [value[0], sorted(value[1])]
        return sorted(value)
    return value


class SetDifferentialTests(DifferentialMixin, SynchronousTestCase):
    """Replies and errors match redis-server 7.0's."""

    def run_both(self, argv, resp3: bool = False) -> None:
        """Run ``argv`` on both; exact bytes, or equal as sets for hash-table orders."""
        theirs = self.redis.call(list(argv))
        reply = self.session.execute(list(argv))
        ours = (to_resp3 if resp3 else to_resp)(reply)
        if ours == theirs:
            return
        if argv[0].lower() in UNORDERED:
            self.assertEqual(ours[:1], theirs[:1], argv)
            self.assertEqual(normalised(ours), normalised(theirs), argv)
            return
        self.assertEqual(ours, theirs, argv)

    def test_errors_and_edges(self):
        """Arity, WRONGTYPE, bad counts, cursors and options, empty keys: same replies."""
        script = [
            [b"sadd", b"s1"], [b"sadd", b"s1", b"1", b"2", b"2", b"3"], [b"set", b"str", b"v"],
            [b"sadd", b"str", b"x"], [b"srem", b"str", b"x"], [b"srem", b"none", b"x"],
            [b"smembers", b"none"], [b"smembers", b"str"], [b"sismember", b"str", b"1"],
            [b"sismember", b"none", b"1"], [b"smismember", b"none", b"1", b"2"],
            [b"smismember", b"str", b"1"], [b"smismember", b"s1", b"1", b"9", b"3"],
            [b"scard", b"none"], [b"scard", b"str"], [b"scard", b"s1"],
            [b"spop", b"none"], [b"spop", b"str"], [b"spop", b"s1", b"-1"],
            [b"spop", b"s1", b"x"], [b"spop", b"s1", b"0"], [b"spop", b"none", b"5"],
            [b"spop", b"str", b"0"], [b"spop", b"s1", b"1", b"2"], [b"spop", b"none", b"-1"],
            [b"srandmember", b"none"], [b"srandmember", b"none", b"3"],
            [b"srandmember", b"none", b"-3"], [b"srandmember", b"s1", b"0"],
            [b"srandmember", b"s1", b"x"], [b"srandmember", b"s1", b"1", b"2"],
            [b"srandmember", b"s1", b"-9223372036854775808"], [b"srandmember", b"str", b"2"],
            [b"srandmember", b"s1", b"9223372036854775807"], [b"srandmember", b"s1", b"3"],
            [b"smove", b"none", b"str", b"1"], [b"smove", b"str", b"s1", b"1"],
            [b"smove", b"s1", b"str", b"1"], [b"smove", b"s1", b"s1", b"1"],
            [b"smove", b"s1", b"s1", b"9"], [b"smove", b"s1", b"s2", b"9"],
            [b"smove", b"s1", b"s2", b"1"], [b"smembers", b"s2"], [b"smove", b"s1", b"s2"],
            [b"sinter", b"s1", b"none", b"str"], [b"sinter", b"none", b"str"],
            [b"sinter", b"s1", b"s1"], [b"sunion", b"none", b"str"], [b"sdiff", b"none", b"str"],
            [b"sdiff", b"s1", b"s1"], [b"sdiff", b"none", b"s1"],
            [b"sintercard", b"0", b"s1"], [b"sintercard", b"-1", b"s1"],
            [b"sintercard", b"x", b"s1"], [b"sintercard", b"3", b"s1"],
            [b"sintercard", b"1", b"s1", b"limit"], [b"sintercard", b"1", b"s1", b"limit", b"-1"],
            [b"sintercard", b"1", b"s1", b"limit", b"x"], [b"sintercard", b"1", b"s1", b"foo"],
            [b"sintercard", b"2", b"s1", b"str"], [b"sintercard", b"2", b"s1", b"s2"],
            [b"sintercard", b"1", b"s1", b"LIMIT", b"1"], [b"sintercard", b"1", b"s1", b"LIMIT",
                                                          b"0"],
            [b"sinterstore", b"d", b"none", b"s1"], [b"sunionstore", b"d", b"s1", b"s2"],
            [b"type", b"d"], [b"object", b"encoding", b"d"], [b"sinterstore", b"d", b"none"],
            [b"exists", b"d"], [b"sunionstore", b"str", b"s1"], [b"type", b"str"],
            [b"sdiffstore", b"d", b"str"], [b"set", b"str", b"v"], [b"sdiffstore", b"d", b"none"],
            [b"sscan", b"none", b"0"], [b"sscan", b"none", b"x"], [b"sscan", b"str", b"0"],
            [b"sscan", b"s1", b"-1"], [b"sscan", b"s1", b"18446744073709551616"],
            [b"sscan", b"s1", b"0", b"count"], [b"sscan", b"s1", b"0", b"count", b"0"],
            [b"sscan", b"s1", b"0", b"count", b"x"], [b"sscan", b"s1", b"0", b"type", b"set"],
            [b"sscan", b"none", b"0", b"bogus"], [b"sscan", b"str", b"0", b"bogus"],
            [b"sscan", b"s1", b"0", b"match", b"[12]"], [b"sscan", b"s1", b"0", b"match"],
            [b"sadd", b"big", b"a"], [b"sscan", b"big", b"0", b"COUNT", b"100"],
            [b"spop", b"s2", b"100"], [b"exists", b"s2"], [b"sadd", b"one", b"x"],
            [b"spop", b"one"], [b"exists", b"one"], [b"spop", b"one"],
        ]
        for argv in script:
            self.run_both(argv)

    def test_resp3_shapes(self):
        """Under RESP3, SMEMBERS, SINTER, SUNION, SDIFF and SPOP count answer sets, SRANDMEMBER
        an array, and empty ones are the empty set."""
        self.redis.call([b"HELLO", b"3"])
        self.session.execute([b"HELLO", b"3"])
        for argv in ([b"sadd", b"a", b"1", b"2", b"x"], [b"sadd", b"b", b"2", b"3"],
                     [b"smembers", b"a"], [b"smembers", b"none"], [b"sinter", b"a", b"b"],
                     [b"sinter", b"a", b"none"], [b"sunion", b"a", b"b"], [b"sdiff", b"a", b"b"],
                     [b"spop", b"none", b"2"], [b"spop", b"a", b"0"], [b"srandmember", b"a", b"5"],
                     [b"srandmember", b"none", b"5"], [b"srandmember", b"none"],
                     [b"spop", b"none"], [b"sscan", b"a", b"0"], [b"spop", b"a", b"9"]):
            self.run_both(argv, resp3=True)

    def test_intset_orders(self):
        """Intset results come in numeric order, as Redis's (SMEMBERS, SSCAN, SPOP all,
        SRANDMEMBER all, SUNION, SDIFF, SINTER of intsets, DUMP of an intset)."""
        for argv in ([b"sadd", b"i", b"10", b"-3", b"7", b"200000", b"1"],
                     [b"sadd", b"j", b"7", b"1", b"55"], [b"smembers", b"i"],
                     [b"sscan", b"i", b"0"], [b"srandmember", b"i", b"10"],
                     [b"sunion", b"i", b"j"], [b"sdiff", b"i", b"j"], [b"sinter", b"i", b"j"],
                     [b"sunionstore", b"u", b"i", b"j"], [b"smembers", b"u"], [b"dump", b"u"],
                     [b"object", b"encoding", b"u"], [b"spop", b"i", b"5"]):
            self.compare(argv)

    def test_encoding_transitions(self):
        """OBJECT ENCODING follows Redis: intset up to 512 integers, hashtable after, never back;
        STORE results and SPOP's rebuild judged afresh; SMOVE creates by the member."""
        steps = [[b"sadd", b"e"] + [b"%d" % i for i in range(512)],
                 [b"object", b"encoding", b"e"], [b"sadd", b"e", b"512"],
                 [b"object", b"encoding", b"e"], [b"srem", b"e", b"512"],
                 [b"object", b"encoding", b"e"], [b"sunionstore", b"f", b"e"],
                 [b"object", b"encoding", b"f"], [b"sadd", b"g", b"1", b"x"],
                 [b"srem", b"g", b"x"], [b"object", b"encoding", b"g"],
                 [b"sadd", b"h", b"x", b"1", b"2", b"3", b"4", b"5", b"6", b"7"],
                 [b"smove", b"h", b"new1", b"x"], [b"object", b"encoding", b"new1"],
                 [b"smove", b"h", b"new2", b"1"], [b"object", b"encoding", b"new2"],
                 [b"object", b"encoding", b"h"], [b"spop", b"h", b"5"],
                 [b"object", b"encoding", b"h"], [b"copy", b"g", b"gc"],
                 [b"object", b"encoding", b"gc"]]
        for argv in steps:
            if argv[0] == b"spop":  # random members: the same count of them
                self.assertEqual(len(parse_reply(self.redis.call(argv))),
                                 len(self.session.execute(argv)))
            else:
                self.run_both(argv)

    def test_config_intset_entries(self):
        """set-max-intset-entries is a parameter that takes effect, validated as Redis's."""
        self.addCleanup(MAX_INTSET.__setitem__, 0, MAX_INTSET[0])
        self.addCleanup(self.redis.call, [b"CONFIG", b"SET", b"set-max-intset-entries",
                                          b"512"])
        for argv in ([b"config", b"get", b"set-max-intset-entries"],
                     [b"config", b"set", b"set-max-intset-entries", b"x"],
                     [b"config", b"set", b"set-max-intset-entries", b"-1"],
                     [b"config", b"set", b"set-max-intset-entries", b"3"],
                     [b"config", b"get", b"set-max-intset-entries"],
                     [b"sadd", b"k", b"1", b"2", b"3"], [b"object", b"encoding", b"k"],
                     [b"sadd", b"k", b"4"], [b"object", b"encoding", b"k"]):
            self.compare(argv)

    def test_generic_commands(self):
        """MOVE, RENAME, COPY, DEL, EXISTS, EXPIRE, TYPE, SCAN TYPE and OBJECT ENCODING on sets."""
        for argv in ([b"sadd", b"a", b"x", b"y"], [b"sadd", b"b", b"1"], [b"set", b"c", b"v"],
                     [b"type", b"a"], [b"exists", b"a", b"b", b"c"],
                     [b"scan", b"0", b"type", b"set", b"count", b"100"],
                     [b"expire", b"a", b"100"], [b"ttl", b"a"], [b"rename", b"a", b"a2"],
                     [b"ttl", b"a2"], [b"smembers", b"a2"], [b"copy", b"a2", b"b"],
                     [b"copy", b"a2", b"b", b"replace"], [b"smembers", b"b"], [b"ttl", b"b"],
                     [b"move", b"b", b"1"], [b"exists", b"b"], [b"select", b"1"],
                     [b"smembers", b"b"], [b"object", b"encoding", b"b"], [b"select", b"0"],
                     [b"del", b"a2", b"c"], [b"exists", b"a2"], [b"sadd", b"c", b"z"]):
            if argv[0] == b"select":
                self.redis.call(argv)
                self.session.execute(argv)
            else:
                self.run_both(argv)

    def test_seeded_sequences(self):
        """Random sequences of set commands over a few keys give the same replies."""
        for seed in range(12):
            self.reset()
            rng = random.Random(seed)
            for _ in range(150):
                self.run_both(random_set_command(rng))
            for key in KEYS:
                self.run_both([b"smembers", key] if key != b"str" else [b"type", key])
                self.run_both([b"object", b"encoding", key])

    def test_random_picks(self):
        """SPOP and SRANDMEMBER take distinct members of the set (repeats only with a
        negative count), about uniformly, and SPOP removes what it returns."""
        session = Store(Clock()).new_session()
        session.execute([b"sadd", b"k"] + [b"m%d" % i for i in range(100)])
        picks = session.execute([b"srandmember", b"k", b"-5000"]).whole()
        self.assertEqual(len(picks), 5000)
        counts = {member: picks.count(member) for member in set(picks)}
        self.assertEqual(len(counts), 100)
        self.assertTrue(all(10 < count < 110 for count in counts.values()), counts)
        for count in (1, 10, 30, 99):
            got = session.execute([b"srandmember", b"k", b"%d" % count])
            self.assertEqual(len(set(got)), count)
        popped = session.execute([b"spop", b"k", b"30"])
        self.assertIsInstance(popped, list)
        self.assertEqual(len(set(popped)), 30)
        popped += session.execute([b"spop", b"k", b"60"])  # Redis's rebuild strategy
        popped.append(session.execute([b"spop", b"k"]))
        rest = session.execute([b"smembers", b"k"])
        self.assertEqual(sorted(popped + rest), sorted(b"m%d" % i for i in range(100)))
        self.assertEqual(len(rest), 9)

    def test_sscan_large_set_survives_changes(self):
        """SSCAN over a large set returns every member present throughout while others come
        and go, and ends with cursor 0."""
        session = Store(Clock()).new_session()
        session.execute([b"sadd", b"k"] + [b"m%d" % i for i in range(2000)])
        seen, cursor, step = set(), b"0", 0
        while True:
            cursor, members = session.execute([b"sscan", b"k", cursor, b"count", b"50"])
            seen.update(members)
            session.execute([b"srem", b"k", b"m%d" % (1000 + step)])
            session.execute([b"sadd", b"k", b"n%d" % step])
            step += 1
            if cursor == b"0":
                break
        self.assertEqual({b"m%d" % i for i in range(1000)} - seen, set())
        self.assertLess(step, 60)

    def test_large_smembers_streams_in_resp2(self):
        """A large SMEMBERS is Streamed under RESP2 and a SetReply under RESP3."""
        session = Store(Clock()).new_session()
        session.execute([b"sadd", b"k"] + [b"m%d" % i for i in range(3000)])
        self.assertEqual(len(session.execute([b"smembers", b"k"]).whole()), 3000)
        session.protocol = 3
        self.assertIsInstance(session.execute([b"smembers", b"k"]), SetReply)


def random_set_command(rng) -> list:
    """Return a random set command whose reply is deterministic (SPOP/SRANDMEMBER only with
    counts covering the whole set)."""
    key = rng.choice(KEYS)
    members = rng.sample(MEMBERS, rng.randrange(1, 4))
    keys = rng.sample(KEYS, rng.randrange(1, 4))
    kind = rng.randrange(16)
    if kind <= 2:
        return [b"sadd", key] + members
    if kind == 3:
        return [b"srem", key] + members
    if kind == 4:
        return [b"smembers", key]
    if kind == 5:
        return [b"sismember", key, members[0]]
    if kind == 6:
        return [b"smismember", key] + members
    if kind == 7:
        return [b"scard", key]
    if kind == 8:
        return [b"smove", key, rng.choice(KEYS), members[0]]
    if kind == 9:
        return [rng.choice([b"sinter", b"sunion", b"sdiff"])] + keys
    if kind == 10:
        argv = [b"sintercard", b"%d" % len(keys)] + keys
        return argv + ([b"limit", rng.choice([b"0", b"1", b"2"])] if rng.random() < 0.5 else [])
    if kind == 11:
        return [rng.choice([b"sinterstore", b"sunionstore", b"sdiffstore"]),
                rng.choice(KEYS)] + keys
    if kind == 12:
        return [b"spop", key, rng.choice([b"20", b"0"])] if rng.random() < 0.7 else [b"set",
                                                                                   b"str", b"v"]
    if kind == 13:
        return [b"srandmember", key, rng.choice([b"20", b"0"])]
    if kind == 14:
        return [b"sscan", key, b"0", b"count", b"100"]
    return [rng.choice([b"type", b"object"]), key] if rng.random() < 0.5 else [
        b"object", b"encoding", key]


# Keyspace events of the set commands, compared with Redis's over two connections.
EVENT_SCRIPT = [
    (1, [b"config", b"set", b"notify-keyspace-events", b"KEA"]),
    (0, [b"psubscribe", b"__key*__:*"]),
    (1, [b"sadd", b"s", b"a", b"b", b"c", b"1"]),
    (1, [b"sadd", b"s", b"a"]),
    (1, [b"srem", b"s", b"a", b"zz"]),
    (1, [b"srem", b"s", b"zz"]),
    (1, [b"smove", b"s", b"s", b"b"]),
    (1, [b"smove", b"s", b"nope", b"zz"]),
    (1, [b"sadd", b"t", b"b"]),
    (1, [b"smove", b"s", b"t", b"b"]),
    (1, [b"sinterstore", b"d", b"s", b"s"]),
    (1, [b"sunionstore", b"d", b"s", b"t"]),
    (1, [b"sdiffstore", b"d", b"s", b"s"]),
    (1, [b"sinterstore", b"d", b"none"]),
    (1, [b"spop", b"t", b"0"]),
    (1, [b"sismember", b"s", b"c"]),
]


class EventTests(SynchronousTestCase):
    """Keyspace events of the set commands, as Redis 7.0 sends them."""

    def test_script(self):
        """Every step's events match Redis's, for steps that empty no key."""
        server = start_redis_or_skip()
        self.addCleanup(server.stop)
        expected = redis_transcript(server.port, 2, EVENT_SCRIPT)
        got = kvstore_transcript(2, EVENT_SCRIPT)
        for want, have in zip(expected, got):
            self.assertEqual(have, want, EVENT_SCRIPT[want[0]])

    def test_spop_and_store_events(self):
        """SPOP names "spop"; a STORE names its own event; SMOVE names "sadd" and "srem"."""
        store = Store(Clock())
        script = [(1, [b"config", b"set", b"notify-keyspace-events", b"KEs"]),
                  (0, [b"psubscribe", b"__keyevent*"]),
                  (1, [b"sadd", b"k", b"1", b"2", b"3"]), (1, [b"spop", b"k"]),
                  (1, [b"spop", b"k", b"1"])]
        got = b"".join(data for _, _, data in kvstore_transcript(2, script, store))
        self.assertEqual(got.count(b"__keyevent@0__:spop"), 2)
        self.assertIsInstance(store.keyspace.get(b"k"), SetValue)
