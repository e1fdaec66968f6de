"""Tests for kvtwist.engine.notify: notify-keyspace-events and keyspace event messages."""

from __future__ import annotations

from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from kvtwist.engine import notify
from kvtwist.engine.store import Store
from kvtwist.engine.table import TABLE
from kvtwist.wire.replies import OK, Error, Pairs
from tests.pubsubref import kvstore_transcript, redis_transcript
from tests.redisref import start_redis_or_skip


class FlagsTests(SynchronousTestCase):
    """The parameter's letters, as keyspaceEventsStringToFlags and FlagsToString."""

    def test_normalised(self) -> None:
        """CONFIG GET shows Redis's normal form: A absorbs the classes, K E m come last."""
        for given, shown in [("", ""), ("KEA", "AKE"), ("EKg$", "g$KE"), ("Agn", "A"),
                             ("mK", "Km"), ("lshzxetdn$gKE", "AKE"), ("n", "n"),
                             ("xE", "xE"), ("AAm", "Am"), ("$lshzxeKE", "$lshzxeKE")]:
            self.assertEqual(notify.flags_text(notify.parse_flags(given)), shown, given)

    def test_badLetter(self) -> None:
        """A letter outside Ag$lshzxeKEtmdn is refused with Redis's reason."""
        with self.assertRaises(ValueError) as caught:
            notify.parse_flags("KEq")
        self.assertEqual(str(caught.exception),
                         "Invalid event class character. Use 'Ag$lshzxeKEtmdn'.")

    def test_configSet(self) -> None:
        """CONFIG SET validates, CONFIG GET shows the normalised text."""
        session = Store(Clock()).new_session()
        self.assertEqual(session.execute([b"CONFIG", b"SET", b"notify-keyspace-events",
                                          b"Q"]),
                         Error("ERR CONFIG SET failed (possibly related to argument "
                               "'notify-keyspace-events') - Invalid event class character. "
                               "Use 'Ag$lshzxeKEtmdn'."))
        self.assertEqual(session.execute([b"CONFIG", b"SET", b"notify-keyspace-events",
                                          b"EKA"]), OK)
        self.assertEqual(session.execute([b"CONFIG", b"GET", b"notify-keyspace-events"]),
                         Pairs([(b"notify-keyspace-events", b"AKE")]))


class EventTests(SynchronousTestCase):
    """Events derived from the effects of commands, published to subscribers."""

    def setUp(self) -> None:
        self.clock = Clock()
        self.store = Store(self.clock)
        self.listener = self.store.new_session()
        self.got = []
        self.listener.push = self.got.append
        self.listener.execute([b"PSUBSCRIBE", b"__key*__:*"])
        self.writer = self.store.new_session()
        self.writer.push = lambda reply: None

    def configure(self, flags: bytes) -> None:
        self.assertEqual(self.writer.execute([b"CONFIG", b"SET", b"notify-keyspace-events",
                                              flags]), OK)

    def events(self, *argv) -> list:
        del self.got[:]
        self.writer.execute(list(argv))
        return [(message[2], message[3]) for message in self.got]

    def test_keyspaceAndKeyevent(self) -> None:
        """K sends __keyspace@0__:<key> <event>, E sends __keyevent@0__:<event> <key>."""
        self.configure(b"KE$")
        self.assertEqual(self.events(b"SET", b"k", b"v"),
                         [(b"__keyspace@0__:k", b"set"), (b"__keyevent@0__:set", b"k")])
        self.configure(b"E$")
        self.assertEqual(self.events(b"SET", b"k", b"v"), [(b"__keyevent@0__:set", b"k")])

    def test_classes(self) -> None:
        """Only the classes asked for are sent: g for generic, $ for string events."""
        self.configure(b"Eg")
        self.assertEqual(self.events(b"SET", b"k", b"v", b"EX", b"100"),
                         [(b"__keyevent@0__:expire", b"k")])
        self.assertEqual(self.events(b"APPEND", b"k", b"x"), [])
        self.configure(b"E$")
        self.assertEqual(self.events(b"DEL", b"k"), [])

    def test_eventNames(self) -> None:
        """Each command's effects get Redis's event names."""
        self.configure(b"EA")
        cases = [
            ([b"SET", b"a", b"1"], [b"set"]),
            ([b"SET", b"a", b"1", b"PX", b"100000"], [b"set", b"expire"]),
            ([b"SET", b"a", b"1", b"KEEPTTL"], [b"set"]),
            ([b"SETEX", b"a", b"100", b"1"], [b"set", b"expire"]),
            ([b"GETSET", b"a", b"2"], [b"set"]),
            ([b"SETNX", b"b", b"2"], [b"set"]),
            ([b"MSET", b"a", b"1", b"b", b"2"], [b"set", b"set"]),
            ([b"INCR", b"a"], [b"incrby"]),
            ([b"DECRBY", b"a", b"3"], [b"incrby"]),
            ([b"INCRBYFLOAT", b"a", b"1.5"], [b"incrbyfloat"]),
            ([b"APPEND", b"a", b"x"], [b"append"]),
            ([b"SETRANGE", b"a", b"1", b"yy"], [b"setrange"]),
            ([b"EXPIRE", b"a", b"100"], [b"expire"]),
            ([b"PERSIST", b"a"], [b"persist"]),
            ([b"RENAME", b"a", b"c"], [b"rename_from", b"rename_to"]),
            ([b"GETDEL", b"c"], [b"del"]),
            ([b"PEXPIRE", b"b", b"-1"], [b"del"]),
            ([b"SET", b"d", b"1"], [b"set"]),
            ([b"DEL", b"d", b"nope"], [b"del"]),
            ([b"FLUSHALL"], []),
            ([b"GET", b"a"], []),
        ]
        for argv, names in cases:
            self.assertEqual([channel.split(b":", 1)[1] for channel, _ in self.events(*argv)],
                             names, argv)

    def test_expired(self) -> None:
        """A key reaching its time sends "expired" (class x) when it goes."""
        self.configure(b"Ex")
        self.writer.execute([b"SET", b"k", b"v", b"PX", b"100"])
        self.clock.advance(0.2)
        self.assertEqual(self.events(b"GET", b"k"), [(b"__keyevent@0__:expired", b"k")])

    def test_new(self) -> None:
        """With n, a key created is told as "new" before its write's own event."""
        self.configure(b"EA")
        self.assertEqual(self.events(b"SET", b"k", b"v"), [(b"__keyevent@0__:set", b"k")])
        self.configure(b"EAn")
        self.assertEqual(self.events(b"SET", b"n", b"v"),
                         [(b"__keyevent@0__:new", b"n"), (b"__keyevent@0__:set", b"n")])
        self.assertEqual(self.events(b"SET", b"n", b"w"), [(b"__keyevent@0__:set", b"n")])

    def test_every_database_when_all_are_empty(self) -> None:
        """Configured while every database is empty, new-key, miss and expired events still
        come from every database, not only database 0 (unit/pubsub's new key test in db 9)."""
        self.writer.execute([b"SELECT", b"9"])
        self.configure(b"Enmx")
        self.assertEqual(self.events(b"SET", b"k", b"v", b"PX", b"100"),
                         [(b"__keyevent@9__:new", b"k")])
        self.assertEqual(self.events(b"GET", b"nope"), [(b"__keyevent@9__:keymiss", b"nope")])
        self.clock.advance(0.2)
        self.assertEqual(self.events(b"GET", b"k"), [(b"__keyevent@9__:expired", b"k"),
                                                     (b"__keyevent@9__:keymiss", b"k")])

    def test_keymiss(self) -> None:
        """With m, a read command's lookup of a missing key sends "keymiss"; a write's does not."""
        self.configure(b"Em")
        miss = [(b"__keyevent@0__:keymiss", b"k")]
        for argv in ([b"GET", b"k"], [b"EXISTS", b"k"], [b"TTL", b"k"], [b"TYPE", b"k"],
                     [b"STRLEN", b"k"], [b"GETDEL", b"k"]):
            self.assertEqual(self.events(*argv), miss, argv)
        self.assertEqual(self.events(b"SET", b"k", b"v", b"GET"), miss)
        self.assertEqual(self.events(b"MGET", b"k", b"x", b"y"),
                         [(b"__keyevent@0__:keymiss", b"x"), (b"__keyevent@0__:keymiss", b"y")])
        for argv in ([b"SET", b"a", b"v"], [b"INCR", b"b"], [b"DEL", b"c"],
                     [b"EXPIRE", b"c", b"1"], [b"APPEND", b"d", b"x"], [b"GET", b"k"]):
            self.assertEqual(self.events(*argv), [], argv)
        self.configure(b"")
        self.assertNotIn("get", self.store.keyspace.__dict__)

    def test_heldToReleasedAtEnd(self) -> None:
        """A "move_to" waits for the source's "move_from" but goes out by the command's end."""
        self.configure(b"EA")
        self.writer.last_command = b"move"
        self.store.current = self.writer
        del self.got[:]
        self.store.notifier._effect((1, b"k", b"v", 0), 1)
        self.assertEqual(self.got, [])
        notify._remembering(lambda session, argv: None)(self.writer, [b"MOVE", b"k", b"1"])
        self.assertEqual([m[2:] for m in self.got], [[b"__keyevent@1__:move_to", b"k"]])

    def test_move_tells_from_then_to(self) -> None:
        """MOVE tells move_from (source database) before move_to (target), as Redis does."""
        self.configure(b"EA")
        self.writer.execute([b"SET", b"k", b"v"])
        del self.got[:]
        self.writer.execute([b"MOVE", b"k", b"1"])
        self.assertEqual([m[2:] for m in self.got], [[b"__keyevent@0__:move_from", b"k"],
                                                     [b"__keyevent@1__:move_to", b"k"]])

    def test_dbFromSession(self) -> None:
        """The database named is the one of the session whose command logged the effect."""
        self.configure(b"E$")
        self.writer.execute([b"SELECT", b"7"])
        self.assertEqual(self.events(b"SET", b"k", b"v"), [(b"__keyevent@7__:set", b"k")])
        notifier = self.store.notifier
        del self.got[:]
        notifier._effect((1, b"k", b"v", 0), 3)  # a store naming the database itself
        self.assertEqual(self.got[0][2], b"__keyevent@3__:set")

    def test_costsNothingWhenOff(self) -> None:
        """Empty, or without K and E, the store is not observed nor SET wrapped."""
        append = self.store.journal.append
        set_handler = TABLE[b"set"].handler
        self.configure(b"KEAnm")
        self.assertNotEqual(self.store.keyspace.log, append)
        for off in (b"", b"A", b"KE"):
            self.configure(off)
            self.assertEqual(self.store.keyspace.log, append)
            self.assertIsNone(self.store.keyspace.on_expired)
            self.assertIsNone(self.store.keyspace.on_emptied)
            self.assertNotIn("set", self.store.keyspace.__dict__)
            self.assertNotIn("get", self.store.keyspace.__dict__)
            self.assertIs(TABLE[b"set"].handler, set_handler)


# -- against a real redis-server -------------------------------------------------------

SCRIPT = [
    (0, [b"PSUBSCRIBE", b"__key*__:*"]),
    (1, [b"CONFIG", b"SET", b"notify-keyspace-events", b"KEA"]),
    (1, [b"CONFIG", b"GET", b"notify-keyspace-events"]),
    (1, [b"SET", b"a", b"1"]),
    (1, [b"SET", b"a", b"2", b"EX", b"100"]),
    (1, [b"SET", b"a", b"3", b"KEEPTTL"]),
    (1, [b"SET", b"a", b"3", b"NX"]),
    (1, [b"SETEX", b"b", b"100", b"x"]),
    (1, [b"PSETEX", b"b", b"100000", b"x"]),
    (1, [b"GETSET", b"b", b"y"]),
    (1, [b"MSET", b"c", b"1", b"d", b"2"]),
    (1, [b"MSETNX", b"e", b"1", b"f", b"2"]),
    (1, [b"SETNX", b"e", b"1"]),
    (1, [b"INCR", b"c"]),
    (1, [b"DECR", b"c"]),
    (1, [b"INCRBY", b"c", b"5"]),
    (1, [b"INCRBYFLOAT", b"c", b"0.5"]),
    (1, [b"INCR", b"a"]),
    (1, [b"APPEND", b"a", b"x"]),
    (1, [b"SETRANGE", b"a", b"0", b"zz"]),
    (1, [b"SETRANGE", b"a", b"0", b""]),
    (1, [b"EXPIRE", b"a", b"100"]),
    (1, [b"PEXPIREAT", b"a", b"99999999999999"]),
    (1, [b"EXPIRE", b"nope", b"100"]),
    (1, [b"PERSIST", b"a"]),
    (1, [b"PERSIST", b"a"]),
    (1, [b"RENAME", b"a", b"r"]),
    (1, [b"RENAMENX", b"r", b"c"]),
    (1, [b"RENAMENX", b"r", b"r2"]),
    (1, [b"DEL", b"r2", b"nope", b"c"]),
    (1, [b"GETDEL", b"d"]),
    (1, [b"GETDEL", b"d"]),
    (1, [b"EXPIRE", b"e", b"-1"]),
    (1, [b"GET", b"f"]),
    (1, [b"CONFIG", b"SET", b"notify-keyspace-events", b"E$"]),
    (1, [b"SET", b"g", b"1", b"PX", b"100000"]),
    (1, [b"DEL", b"g"]),
    (1, [b"CONFIG", b"SET", b"notify-keyspace-events", b"Kg"]),
    (1, [b"SET", b"g", b"1", b"PX", b"100000"]),
    (1, [b"CONFIG", b"SET", b"notify-keyspace-events", b"KEAn"]),
    (1, [b"SET", b"h", b"1"]),
    (1, [b"SET", b"h", b"2"]),
    (1, [b"INCR", b"i"]),
    (1, [b"APPEND", b"j", b"x"]),
    (1, [b"RENAME", b"j", b"j2"]),
    (1, [b"CONFIG", b"SET", b"notify-keyspace-events", b"Em"]),
    (1, [b"CONFIG", b"GET", b"notify-keyspace-events"]),
    (1, [b"GET", b"m1"]),
    (1, [b"GET", b"h"]),
    (1, [b"SET", b"m2", b"v"]),
    (1, [b"SET", b"m3", b"v", b"GET"]),
    (1, [b"SET", b"m3b", b"v", b"NX"]),
    (1, [b"INCR", b"m4"]),
    (1, [b"EXISTS", b"m5", b"m5", b"h"]),
    (1, [b"MGET", b"m6", b"h", b"m7"]),
    (1, [b"TTL", b"m8"]),
    (1, [b"PTTL", b"m8"]),
    (1, [b"TYPE", b"m8"]),
    (1, [b"STRLEN", b"m8"]),
    (1, [b"GETRANGE", b"m8", b"0", b"1"]),
    (1, [b"GETSET", b"m9", b"v"]),
    (1, [b"GETDEL", b"m10"]),
    (1, [b"DEL", b"m11"]),
    (1, [b"EXPIRE", b"m11", b"10"]),
    (1, [b"PERSIST", b"m11"]),
    (1, [b"RENAME", b"m11", b"x"]),
    (1, [b"APPEND", b"m12", b"x"]),
    (1, [b"SETRANGE", b"m13", b"1", b"x"]),
    (1, [b"INCRBYFLOAT", b"m14", b"1"]),
    (1, [b"CONFIG", b"SET", b"notify-keyspace-events", b"KEAnm"]),
    (1, [b"CONFIG", b"GET", b"notify-keyspace-events"]),
    (1, [b"GETSET", b"m15", b"v"]),
    (1, [b"FLUSHALL"]),
    (1, [b"CONFIG", b"SET", b"notify-keyspace-events", b""]),
    (1, [b"SET", b"k", b"1"]),
]


class DifferentialTests(SynchronousTestCase):
    """Keyspace events of a script are byte for byte those of a redis-server."""

    def test_script(self) -> None:
        """Every step's messages and replies match Redis's."""
        server = start_redis_or_skip()
        self.addCleanup(server.stop)
        expected = redis_transcript(server.port, 2, SCRIPT)
        got = kvstore_transcript(2, SCRIPT)
        for want, have in zip(expected, got):
            self.assertEqual(have, want, SCRIPT[want[0]])


class EvictedEventTests(SynchronousTestCase):
    """Evictions publish "evicted" events (class e) and do not break the writing command."""

    def test_evicted_event(self) -> None:
        """A SET over maxmemory evicts with allkeys-random and an "evicted" event is sent."""
        store = Store(Clock())
        listener = store.new_session()
        got = []
        listener.push = got.append
        listener.execute([b"SUBSCRIBE", b"__keyevent@0__:evicted"])
        writer = store.new_session()
        writer.push = lambda reply: None
        for key in range(20):
            writer.execute([b"SET", b"key:%d" % key, b"x" * 100])
        for args in ([b"notify-keyspace-events", b"Ee"], [b"maxmemory-policy", b"allkeys-random"],
                     [b"maxmemory", b"2000"]):
            self.assertEqual(writer.execute([b"CONFIG", b"SET"] + args), OK)
        self.assertEqual(writer.execute([b"SET", b"new", b"v"]), OK)
        evicted = [message[2] for message in got if message[0] == b"message"]
        self.assertTrue(evicted)
        self.assertEqual(len(evicted), store.evictor.evicted)
