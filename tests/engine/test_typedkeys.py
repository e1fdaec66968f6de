"""Tests for kvtwist.engine.typedkeys: typed values in the keyspace, their logged operations,
replay, undo, and what the generic commands make of them."""

from __future__ import annotations

from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from kvtwist.engine.keyspace import DEL, MUTATE, SET, Keyspace
from kvtwist.engine.store import Store
from kvtwist.engine.types import WRONGTYPE
from kvtwist.wire.replies import CommandError, Error, Pairs, Status
from tests.engine.bagtype import ADD, TAKE, Bag


def keyspace(log=None) -> Keyspace:
    clock = Clock()
    clock.advance(1000)
    return Keyspace(clock, log=log)


class MutateTests(SynchronousTestCase):
    """Keyspace.mutate applies, logs and removes emptied values."""

    def test_creates_and_logs(self) -> None:
        """An operation on a missing key creates it and logs (MUTATE, key, code, op, args)."""
        log = []
        ks = keyspace(log.append)
        self.assertEqual(ks.mutate(b"k", Bag, ADD, (b"a", b"b")), 2)
        self.assertEqual(ks.get(b"k").items, [b"a", b"b"])
        self.assertEqual(log, [(MUTATE, b"k", Bag.code, ADD, (b"a", b"b"))])
        self.assertTrue(ks.typed_keys)

    def test_no_change_creates_nothing(self) -> None:
        """An operation leaving a new value empty creates no key and logs nothing."""
        log = []
        ks = keyspace(log.append)
        self.assertEqual(ks.mutate(b"k", Bag, TAKE, (b"0",)), [])
        self.assertFalse(ks.exists(b"k"))
        self.assertEqual(log, [])

    def test_emptied_value_disappears_with_its_expiry(self) -> None:
        """An operation that empties a value removes the key and its expiry."""
        ks = keyspace()
        ks.mutate(b"k", Bag, ADD, (b"a",))
        ks.expire_at(b"k", ks.now_ms() + 5000)
        self.assertEqual(ks.mutate(b"k", Bag, TAKE, (b"1",)), [b"a"])
        self.assertFalse(ks.exists(b"k"))
        self.assertEqual(ks.expires, {})
        self.assertEqual(ks.meter.used, 0)

    def test_on_emptied_after_the_log(self) -> None:
        """on_emptied is called once, after the emptying operation's log, and only then."""
        seen = []
        ks = keyspace(lambda effect: seen.append(effect[0]))
        ks.on_emptied = lambda space, key: seen.append((space is ks, key))
        ks.mutate(b"k", Bag, ADD, (b"a", b"b"))
        ks.mutate(b"k", Bag, TAKE, (b"1",))
        ks.mutate(b"nope", Bag, TAKE, (b"1",))
        self.assertEqual(seen, [MUTATE, MUTATE])
        ks.mutate(b"k", Bag, TAKE, (b"1",))
        self.assertEqual(seen, [MUTATE, MUTATE, MUTATE, (True, b"k")])

    def test_wrongtype(self) -> None:
        """An operation on a string raises WRONGTYPE and changes nothing."""
        log = []
        ks = keyspace(log.append)
        ks.set(b"s", b"v")
        del log[:]
        with self.assertRaises(CommandError) as raised:
            ks.mutate(b"s", Bag, ADD, (b"a",))
        self.assertEqual(raised.exception.message, WRONGTYPE)
        self.assertEqual((ks.get(b"s"), log), (b"v", []))

    def test_get_string_and_get_typed(self) -> None:
        """get_string refuses a typed value and get_typed a string; both give None when missing."""
        ks = keyspace()
        ks.set(b"s", b"v")
        ks.mutate(b"b", Bag, ADD, (b"a",))
        self.assertEqual(ks.get_string(b"s"), b"v")
        self.assertIsNone(ks.get_string(b"missing"))
        self.assertIsNone(ks.get_typed(b"missing", Bag))
        self.assertEqual(ks.get_typed(b"b", Bag).items, [b"a"])
        self.assertRaises(CommandError, ks.get_string, b"b")
        self.assertRaises(CommandError, ks.get_typed, b"s", Bag)

    def test_meter_follows_the_value(self) -> None:
        """The memory meter counts key, per-key overhead and the value's nbytes, then nothing."""
        ks = keyspace()
        ks.mutate(b"k", Bag, ADD, (b"abc",))
        self.assertEqual(ks.meter.used, 1 + 120 + 13)
        self.assertEqual(ks.meter.used, ks.size())
        ks.mutate(b"k", Bag, ADD, (b"de",))
        self.assertEqual(ks.meter.used, ks.size())
        ks.delete(b"k")
        self.assertEqual(ks.meter.used, 0)


class ReplayTests(SynchronousTestCase):
    """The log of operations replays to the same values."""

    def test_replay(self) -> None:
        """Replaying a log of adds, takes, sets and deletes gives the same keyspace."""
        log = []

        def record(effect) -> None:
            # As the journal, which encodes a whole value when it is logged.
            if effect[0] == SET and effect[2].__class__ is not bytes:
                effect = (SET, effect[1], effect[2].copy(), effect[3])
            log.append(effect)
        ks = keyspace(record)
        ks.mutate(b"a", Bag, ADD, (b"1", b"2", b"3"))
        ks.mutate(b"a", Bag, TAKE, (b"2",))
        ks.mutate(b"b", Bag, ADD, (b"x",))
        ks.mutate(b"b", Bag, TAKE, (b"1",))  # emptied: removed again on replay
        ks.set(b"c", Bag([b"whole"]))
        ks.mutate(b"c", Bag, ADD, (b"more",))
        again = keyspace()
        for effect in log:
            again.apply(effect)
        self.assertEqual(sorted(again.data), [b"a", b"c"])
        self.assertEqual(again.data[b"a"].items, [b"1"])
        self.assertEqual(again.data[b"c"].items, [b"whole", b"more"])
        self.assertTrue(again.typed_keys)
        self.assertEqual(len(again.live_keys()), 2)

    def test_replay_refuses_another_type(self) -> None:
        """An operation replayed onto a string is an error, not a silent change."""
        ks = keyspace()
        ks.apply((SET, b"s", b"v", 0))
        self.assertRaises(ValueError, ks.apply, (MUTATE, b"s", Bag.code, ADD, (b"a",)))


class UndoTests(SynchronousTestCase):
    """A rollback takes operations back exactly."""

    def test_rollback_restores_every_state(self) -> None:
        """Creating, growing, emptying and deleting are all undone, newest first."""
        ks = keyspace()
        ks.mutate(b"old", Bag, ADD, (b"1", b"2"))
        ks.expire_at(b"old", ks.now_ms() + 9000)
        before = ks.meter.used
        ks.track_undo()
        ks.mutate(b"new", Bag, ADD, (b"n",))
        ks.mutate(b"old", Bag, ADD, (b"3",))
        ks.mutate(b"old", Bag, TAKE, (b"3",))  # emptied and removed
        ks.mutate(b"old", Bag, ADD, (b"again",))  # a new value under the same key
        ks.delete(b"old")
        changed = ks.rollback()
        self.assertEqual(sorted(ks.data), [b"old"])
        self.assertEqual(ks.data[b"old"].items, [b"1", b"2"])
        self.assertEqual(ks.expires, {b"old": ks.now_ms() + 9000})
        self.assertEqual(ks.meter.used, before)
        self.assertEqual(ks.meter.used, ks.size())
        self.assertIn((ks, (DEL, b"new")), changed)
        self.assertEqual(ks.live_keys(), [b"old"])


class GenericCommandTests(SynchronousTestCase):
    """The string and keyspace commands meet a typed value as Redis's do."""

    def setUp(self) -> None:
        self.store = Store(Clock())
        self.session = self.store.new_session()
        self.session.keyspace.mutate(b"bag", Bag, ADD, (b"a", b"b"))
        self.session.keyspace.set(b"str", b"v")

    def run_command(self, *args):
        return self.session.execute([a.encode() if isinstance(a, str) else a for a in args])

    def test_string_commands_refuse_typed_values(self) -> None:
        """GET, APPEND, INCR, STRLEN, SETRANGE, GETBIT and SET ... GET answer WRONGTYPE."""
        for command in (["get", "bag"], ["append", "bag", "x"], ["incr", "bag"],
                        ["strlen", "bag"], ["setrange", "bag", "0", "x"],
                        ["getbit", "bag", "0"], ["set", "bag", "x", "get"],
                        ["getdel", "bag"], ["getrange", "bag", "0", "1"], ["lcs", "bag", "str"]):
            self.assertEqual(self.run_command(*command), Error(WRONGTYPE), command)
        self.assertEqual(self.session.keyspace.get(b"bag").items, [b"a", b"b"])

    def test_mget_reads_nil(self) -> None:
        """MGET answers nil for a key of another type."""
        self.assertEqual(self.run_command("mget", "str", "bag"), [b"v", None])

    def test_set_replaces_any_type(self) -> None:
        """SET overwrites a typed value."""
        self.assertEqual(self.run_command("set", "bag", "s"), Status(b"OK"))
        self.assertEqual(self.run_command("get", "bag"), b"s")

    def test_type_and_scan_type(self) -> None:
        """TYPE names the type and SCAN ... TYPE filters by it."""
        self.assertEqual(self.run_command("type", "bag"), Status(b"bag"))
        self.assertEqual(self.run_command("scan", "0", "type", "bag"), [b"0", [b"bag"]])
        self.assertEqual(self.run_command("scan", "0", "type", "string"), [b"0", [b"str"]])

    def test_copy_is_independent(self) -> None:
        """COPY makes a new value: changing the copy leaves the source alone."""
        self.assertEqual(self.run_command("copy", "bag", "bag2"), 1)
        self.session.keyspace.mutate(b"bag2", Bag, ADD, (b"c",))
        self.assertEqual(self.session.keyspace.get(b"bag").items, [b"a", b"b"])

    def test_object_encoding_and_dump_listing(self) -> None:
        """OBJECT ENCODING asks the value; DUMP alone shows a typed value by its type."""
        self.assertEqual(self.run_command("object", "encoding", "bag"), b"baglist")
        self.assertEqual(self.run_command("dump"),
                         Pairs([(b"bag", b"<bag>"), (b"str", b"v")]))

    def test_rename_and_move_keep_the_value(self) -> None:
        """RENAME and MOVE carry a typed value over."""
        self.run_command("rename", "bag", "b2")
        self.run_command("move", "b2", "3")
        self.run_command("select", "3")
        self.assertEqual(self.run_command("type", "b2"), Status(b"bag"))


# -- the "del" event of an emptied value, against a real redis-server --------------------

EMPTYING = [
    (0, [b"PSUBSCRIBE", b"__key*__:*"]),
    (1, [b"CONFIG", b"SET", b"notify-keyspace-events", b"KEA"]),
    (1, [b"RPUSH", b"l", b"a", b"b"]),
    (1, [b"LPOP", b"l"]),
    (1, [b"RPOP", b"l"]),
    (1, [b"RPUSH", b"l", b"a", b"b"]),
    (1, [b"LPOP", b"l", b"5"]),
    (1, [b"RPUSH", b"l", b"a", b"b"]),
    (1, [b"RPOP", b"l", b"2"]),
    (1, [b"RPUSH", b"l", b"a", b"b"]),
    (1, [b"LTRIM", b"l", b"5", b"10"]),
    (1, [b"RPUSH", b"l", b"a", b"a"]),
    (1, [b"LREM", b"l", b"0", b"a"]),
    (1, [b"RPUSH", b"l", b"a"]),
    (1, [b"LMOVE", b"l", b"l2", b"LEFT", b"RIGHT"]),
    (1, [b"RPOPLPUSH", b"l2", b"l3"]),
    (1, [b"LMPOP", b"1", b"l3", b"LEFT"]),
    (1, [b"RPUSH", b"l", b"x"]),
    (1, [b"BLPOP", b"l", b"0"]),
    (1, [b"RPUSH", b"l", b"x"]),
    (1, [b"BLMOVE", b"l", b"l4", b"RIGHT", b"LEFT", b"0"]),
    (1, [b"SADD", b"s", b"a", b"b"]),
    (1, [b"SREM", b"s", b"a", b"b"]),
    (1, [b"SADD", b"s", b"a"]),
    (1, [b"SPOP", b"s"]),
    (1, [b"SADD", b"s", b"a"]),
    (1, [b"SPOP", b"s", b"5"]),
    (1, [b"HSET", b"h", b"f", b"v", b"g", b"w"]),
    (1, [b"HDEL", b"h", b"f", b"g"]),
    (1, [b"ZADD", b"z", b"1", b"a"]),
    (1, [b"ZREM", b"z", b"a"]),
    (1, [b"ZADD", b"z", b"1", b"a", b"2", b"b"]),
    (1, [b"ZPOPMIN", b"z", b"5"]),
    (1, [b"ZADD", b"z", b"1", b"a"]),
    (1, [b"ZPOPMAX", b"z"]),
    (1, [b"ZADD", b"z", b"1", b"a"]),
    (1, [b"ZREMRANGEBYSCORE", b"z", b"-inf", b"+inf"]),
    (1, [b"ZADD", b"z", b"1", b"a"]),
    (1, [b"ZREMRANGEBYRANK", b"z", b"0", b"-1"]),
    (1, [b"ZADD", b"z", b"0", b"a"]),
    (1, [b"ZREMRANGEBYLEX", b"z", b"-", b"+"]),
    (1, [b"ZADD", b"z", b"1", b"a"]),
    (1, [b"BZPOPMIN", b"z", b"0"]),
    (1, [b"ZADD", b"z", b"1", b"a"]),
    (1, [b"ZMPOP", b"1", b"z", b"MIN"]),
    (1, [b"CONFIG", b"SET", b"notify-keyspace-events", b"El"]),
    (1, [b"RPUSH", b"l", b"a"]),
    (1, [b"LPOP", b"l"]),
    (1, [b"CONFIG", b"SET", b"notify-keyspace-events", b"Kg"]),
    (1, [b"RPUSH", b"l", b"a"]),
    (1, [b"LPOP", b"l"]),
    (1, [b"CONFIG", b"SET", b"notify-keyspace-events", b""]),
]


class EmptiedEventTests(SynchronousTestCase):
    """A typed-value write that empties its key tells its own event, then "del", as Redis."""

    def test_against_redis(self) -> None:
        """Every step's keyspace messages match a redis-server's, byte for byte."""
        from tests.pubsubref import kvstore_transcript, redis_transcript
        from tests.redisref import start_redis_or_skip

        server = start_redis_or_skip()
        self.addCleanup(server.stop)
        expected = redis_transcript(server.port, 2, EMPTYING)
        got = kvstore_transcript(2, EMPTYING)
        for want, have in zip(expected, got):
            self.assertEqual(have, want, EMPTYING[want[0]])
