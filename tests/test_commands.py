"""Tests for kvtwist.commands: dispatch, Store/Session/NullJournal and the string commands."""

from __future__ import annotations

from hypothesis import given, settings, strategies as st
from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from kvtwist import commands
from kvtwist.commands import (
    TABLE, Command, NullJournal, Store, format_long_double, parse_int, parse_long_double,
)
from kvtwist.keyspace import DEL, EXPIRE_AT, SET
from kvtwist.replies import OK, CommandError, Error, to_resp

START = 1700000000.0


def session_for(clock=None, journal=None):
    if clock is None:
        clock = Clock()
        clock.advance(START)
    return Store(clock, journal).new_session("127.0.0.1:5000")


class RecordingJournal(NullJournal):
    """A NullJournal that also remembers each effect."""

    def __init__(self):
        NullJournal.__init__(self)
        self.effects = []

    def append(self, effect):
        NullJournal.append(self, effect)
        self.effects.append(effect)


class CallMixin:
    def setUp(self):
        self.clock = Clock()
        self.clock.advance(START)
        self.journal = RecordingJournal()
        self.session = session_for(self.clock, self.journal)

    def call(self, *args):
        return self.session.execute([a if isinstance(a, bytes) else a.encode() for a in args])

    def error(self, *args):
        reply = self.call(*args)
        self.assertIsInstance(reply, Error, args)
        return reply.message


class DispatchTests(CallMixin, SynchronousTestCase):
    def test_case_insensitive(self):
        """Command names match in any case."""
        self.assertEqual(self.call("SeT", "k", "v"), OK)
        self.assertEqual(self.call("GET", "k"), b"v")

    def test_unknown(self):
        """An unknown command gets Redis 7's exact error text, args quoted and truncated."""
        self.assertEqual(self.error("foo", "a", "b"),
                         "ERR unknown command 'foo', with args beginning with: 'a' 'b' ")
        self.assertEqual(self.error("foo"), "ERR unknown command 'foo', with args beginning with: ")
        long = self.error("foo", "x" * 200, "y")
        self.assertEqual(long, "ERR unknown command 'foo', with args beginning with: '%s' "
                         % ("x" * 128,))

    def test_arity(self):
        """Wrong argument counts get Redis's error for exact and minimum arities."""
        self.assertEqual(self.error("get"), "ERR wrong number of arguments for 'get' command")
        self.assertEqual(self.error("GET", "a", "b"),
                         "ERR wrong number of arguments for 'get' command")
        self.assertEqual(self.error("mset", "a"), "ERR wrong number of arguments for 'mset' command")
        self.assertEqual(self.error("mset", "a", "1", "b"),
                         "ERR wrong number of arguments for 'mset' command")

    def test_empty(self):
        """An empty argument vector is an error, not a crash."""
        self.assertIsInstance(self.session.execute([]), Error)

    def test_aliases(self):
        """PUT, DELETE and REMOVE are aliases of SET and DEL."""
        self.assertEqual(self.call("put", "k", "v"), OK)
        self.assertEqual(self.call("delete", "k", "x"), 1)
        self.call("put", "k", "v")
        self.assertEqual(self.call("REMOVE", "k"), 1)

    def test_table_shape(self):
        """Every table entry is a Command keyed by its lowercase name with flags and a handler."""
        for name, command in TABLE.items():
            self.assertIsInstance(command, Command)
            self.assertEqual(name, command.name)
            self.assertEqual(name, name.lower())
            self.assertTrue(callable(command.handler))
        self.assertEqual(TABLE[b"get"].arity, 2)
        self.assertIn("readonly", TABLE[b"get"].flags)
        self.assertTrue(TABLE[b"set"].write)

    def test_counts_commands(self):
        """Each executed command bumps the store's counter."""
        before = self.session.store.commands_processed
        self.call("ping")
        self.call("get", "x")
        self.assertEqual(self.session.store.commands_processed, before + 2)

    def test_write_refused_on_journal_failure(self):
        """Write commands are refused while the journal reports a failure; reads still work."""
        self.call("set", "k", "v")
        self.journal.failure = "disk full"
        self.assertEqual(
            self.error("set", "k", "w"),
            "ERR persistence failed: disk full; writes are refused until the disk recovers")
        self.assertEqual(self.call("get", "k"), b"v")
        self.journal.failure = None
        self.assertEqual(self.call("set", "k", "w"), OK)

    def test_command_error_mapped(self):
        """A CommandError raised by a handler becomes an Error reply."""
        self.assertEqual(self.error("incr", "x", "y"),
                         "ERR wrong number of arguments for 'incr' command")
        self.call("set", "x", "abc")
        self.assertEqual(self.error("incr", "x"), "ERR value is not an integer or out of range")


class StoreTests(SynchronousTestCase):
    def test_sessions(self):
        """new_session registers unique ids; drop_session forgets them."""
        store = Store(Clock())
        first, second = store.new_session("a"), store.new_session("b")
        self.assertNotEqual(first.id, second.id)
        self.assertEqual(set(store.clients), {first.id, second.id})
        store.drop_session(first)
        self.assertEqual(list(store.clients), [second.id])
        self.assertEqual(store.connections_received, 2)
        self.assertFalse(second.closing)

    def test_null_journal(self):
        """NullJournal acknowledges every append at once and its Deferred fires with None."""
        store = Store(Clock())
        session = store.new_session()
        session.execute([b"set", b"k", b"v"])
        session.execute([b"mset", b"a", b"1", b"b", b"2"])
        self.assertEqual(store.journal.appended, 3)
        self.assertEqual(store.journal.acked, 3)
        self.assertIsNone(self.successResultOf(store.journal.when_acked(3)))

    def test_set_journal(self):
        """set_journal routes later keyspace effects to the new journal."""
        store = Store(Clock())
        journal = RecordingJournal()
        store.set_journal(journal)
        store.new_session().execute([b"set", b"k", b"v"])
        self.assertEqual(journal.effects, [(SET, b"k", b"v", 0)])

    def test_config_merge(self):
        """Given config entries override the defaults."""
        store = Store(Clock(), config={"maxmemory": "100"})
        self.assertEqual(store.config["maxmemory"], "100")
        self.assertEqual(store.config["appendonly"], "no")


class SetTests(CallMixin, SynchronousTestCase):
    def test_nx_xx_get(self):
        """NX, XX and GET follow Redis: nil when refused, old value with GET."""
        self.assertIsNone(self.call("set", "k", "1", "xx"))
        self.assertEqual(self.call("set", "k", "1", "nx"), OK)
        self.assertIsNone(self.call("set", "k", "2", "nx"))
        self.assertEqual(self.call("set", "k", "3", "get"), b"1")
        self.assertEqual(self.call("set", "k", "4", "nx", "get"), b"3")
        self.assertEqual(self.call("get", "k"), b"3")
        self.assertIsNone(self.call("set", "new", "v", "get"))

    def test_option_errors(self):
        """Conflicting or malformed options produce Redis's three SET errors."""
        self.assertEqual(self.error("set", "k", "v", "nx", "xx"), "ERR syntax error")
        self.assertEqual(self.error("set", "k", "v", "ex", "1", "px", "1"), "ERR syntax error")
        self.assertEqual(self.error("set", "k", "v", "keepttl", "ex", "1"), "ERR syntax error")
        self.assertEqual(self.error("set", "k", "v", "ex"), "ERR syntax error")
        self.assertEqual(self.error("set", "k", "v", "bogus"), "ERR syntax error")
        self.assertEqual(self.error("set", "k", "v", "ex", "x"),
                         "ERR value is not an integer or out of range")
        self.assertEqual(self.error("set", "k", "v", "ex", "0"),
                         "ERR invalid expire time in 'set' command")
        self.assertEqual(self.error("set", "k", "v", "exat", "9223372036854775807"),
                         "ERR invalid expire time in 'set' command")
        self.assertEqual(self.error("setex", "k", "-1", "v"),
                         "ERR invalid expire time in 'setex' command")

    def test_expiry_options(self):
        """EX, PX, EXAT and PXAT set absolute expiry times; the last repeated EX wins."""
        now = int(START * 1000)
        self.call("set", "a", "v", "ex", "10")
        self.call("set", "b", "v", "px", "10")
        self.call("set", "c", "v", "exat", str(int(START) + 20))
        self.call("set", "d", "v", "pxat", str(now + 30))
        self.call("set", "e", "v", "ex", "1", "ex", "5")
        expires = self.session.keyspace.expires
        self.assertEqual(expires, {b"a": now + 10000, b"b": now + 10, b"c": now + 20000,
                                   b"d": now + 30, b"e": now + 5000})
        self.assertEqual(self.journal.effects[0], (SET, b"a", b"v", now + 10000))

    def test_keepttl(self):
        """KEEPTTL keeps the expiry; a plain SET clears it."""
        self.call("set", "k", "v", "ex", "100")
        self.call("set", "k", "w", "keepttl")
        self.assertEqual(self.call("ttl", "k"), 100)
        self.call("set", "k", "x")
        self.assertEqual(self.call("ttl", "k"), -1)

    def test_variants(self):
        """SETNX, SETEX, PSETEX and GETSET behave as in Redis."""
        self.assertEqual(self.call("setnx", "k", "1"), 1)
        self.assertEqual(self.call("setnx", "k", "2"), 0)
        self.assertEqual(self.call("setex", "k", "10", "3"), OK)
        self.assertEqual(self.call("pttl", "k"), 10000)
        self.assertEqual(self.call("psetex", "k", "1500", "4"), OK)
        self.assertEqual(self.call("ttl", "k"), 2)
        self.assertEqual(self.call("getset", "k", "5"), b"4")
        self.assertEqual(self.call("ttl", "k"), -1)

    def test_expiry_passes(self):
        """A key set with PX disappears once the clock passes its expiry."""
        self.call("set", "k", "v", "px", "100")
        self.clock.advance(0.1)
        self.assertEqual(self.call("get", "k"), b"v")
        # 2 ms rather than 1: float seconds near 1.7e9 cannot hold every millisecond exactly.
        self.clock.advance(0.002)
        self.assertIsNone(self.call("get", "k"))


class MultiKeyTests(CallMixin, SynchronousTestCase):
    def test_mset_mget(self):
        """MSET stores pairs and MGET returns values with None for missing keys."""
        self.assertEqual(self.call("mset", "a", "1", "b", "2"), OK)
        self.assertEqual(self.call("mget", "a", "x", "b"), [b"1", None, b"2"])

    def test_msetnx(self):
        """MSETNX sets nothing if any key exists."""
        self.assertEqual(self.call("msetnx", "a", "1", "b", "2"), 1)
        self.assertEqual(self.call("msetnx", "b", "3", "c", "4"), 0)
        self.assertIsNone(self.call("get", "c"))

    def test_del_exists(self):
        """DEL counts removed keys; EXISTS counts repeats."""
        self.call("mset", "a", "1", "b", "2")
        self.assertEqual(self.call("exists", "a", "a", "z"), 2)
        self.assertEqual(self.call("del", "a", "a", "b", "z"), 2)
        self.assertEqual(self.journal.effects[-2:], [(DEL, b"a"), (DEL, b"b")])

    def test_getdel(self):
        """GETDEL returns the value once and removes the key."""
        self.call("set", "k", "v")
        self.assertEqual(self.call("getdel", "k"), b"v")
        self.assertIsNone(self.call("getdel", "k"))


class IntegerTests(CallMixin, SynchronousTestCase):
    def test_incr_family(self):
        """INCR, DECR, INCRBY and DECRBY update the decimal value."""
        self.assertEqual(self.call("incr", "n"), 1)
        self.assertEqual(self.call("incrby", "n", "41"), 42)
        self.assertEqual(self.call("decr", "n"), 41)
        self.assertEqual(self.call("decrby", "n", "-9"), 50)
        self.assertEqual(self.call("get", "n"), b"50")

    def test_incr_keeps_ttl(self):
        """INCR logs a SET that keeps the key's expiry."""
        now = int(START * 1000)
        self.call("set", "n", "1", "ex", "100")
        self.call("incr", "n")
        self.assertEqual(self.journal.effects[-1], (SET, b"n", b"2", now + 100000))

    def test_errors(self):
        """Non-integers, overflow and LLONG_MIN decrements get Redis's errors."""
        self.call("set", "n", "9223372036854775807")
        self.assertEqual(self.error("incr", "n"), "ERR increment or decrement would overflow")
        for bad in ("1.5", " 1", "+1", "01", "-0", "1_0", "", "9223372036854775808"):
            self.assertEqual(self.error("incrby", "m", bad),
                             "ERR value is not an integer or out of range", bad)
        self.assertEqual(self.error("decrby", "m", "-9223372036854775808"),
                         "ERR decrement would overflow")

    @given(st.integers(min_value=-2 ** 63, max_value=2 ** 63 - 1))
    def test_parse_int_roundtrip(self, number):
        """parse_int reads back every signed 64-bit integer Redis prints."""
        self.assertEqual(parse_int(b"%d" % number), number)

    @given(st.binary(max_size=24))
    def test_parse_int_strict(self, raw):
        """parse_int accepts exactly the canonical decimal spellings of 64-bit integers."""
        try:
            number = parse_int(raw)
        except CommandError:
            return
        self.assertEqual(b"%d" % number, raw)


class FloatTests(CallMixin, SynchronousTestCase):
    def test_incrbyfloat(self):
        """INCRBYFLOAT prints long double results the way Redis does."""
        self.call("set", "f", "10.50")
        self.assertEqual(self.call("incrbyfloat", "f", "0.1"), b"10.6")
        self.assertEqual(self.call("incrbyfloat", "f", "-5.0e3"), b"-4989.39999999999999991")
        self.call("set", "g", "10000000000")
        self.assertEqual(self.call("incrbyfloat", "g", "0.1"), b"10000000000.09999999962747097")
        self.assertEqual(self.call("incrbyfloat", "h", "3"), b"3")

    def test_float_errors(self):
        """Bad floats and infinite results are rejected with Redis's errors."""
        self.assertEqual(self.error("incrbyfloat", "f", "abc"), "ERR value is not a valid float")
        self.assertEqual(self.error("incrbyfloat", "f", "1e5000"), "ERR value is not a valid float")
        self.assertEqual(self.error("incrbyfloat", "f", "inf"),
                         "ERR increment would produce NaN or Infinity")

    @settings(max_examples=50)
    @given(st.integers(min_value=-10 ** 15, max_value=10 ** 15))
    def test_integers_exact(self, number):
        """Integers well inside the long double mantissa print exactly."""
        self.assertEqual(format_long_double(parse_long_double(b"%d" % number)), b"%d" % number)


class StringTests(CallMixin, SynchronousTestCase):
    def test_append_strlen(self):
        """APPEND returns the new length and STRLEN measures values."""
        self.assertEqual(self.call("append", "k", "ab"), 2)
        self.assertEqual(self.call("append", "k", "cd"), 4)
        self.assertEqual(self.call("strlen", "k"), 4)
        self.assertEqual(self.call("strlen", "nope"), 0)

    def test_size_limit(self):
        """APPEND and SETRANGE refuse to grow a value past 512 MB."""
        self.patch(commands, "MAX_STRING", 8)
        self.call("set", "k", "12345")
        self.assertEqual(self.error("append", "k", "6789"),
                         "ERR string exceeds maximum allowed size (proto-max-bulk-len)")
        self.assertEqual(self.error("setrange", "k", "7", "ab"),
                         "ERR string exceeds maximum allowed size (proto-max-bulk-len)")

    def test_getrange(self):
        """GETRANGE clamps indexes like Redis, negative ones included."""
        self.call("set", "k", "Hello World")
        self.assertEqual(self.call("getrange", "k", "0", "4"), b"Hello")
        self.assertEqual(self.call("getrange", "k", "-5", "-1"), b"World")
        self.assertEqual(self.call("getrange", "k", "-1", "-5"), b"")
        self.assertEqual(self.call("getrange", "k", "5", "100"), b" World")
        self.assertEqual(self.call("getrange", "missing", "0", "1"), b"")

    def test_setrange(self):
        """SETRANGE pads with zero bytes and overwrites in place."""
        self.assertEqual(self.call("setrange", "k", "3", "ab"), 5)
        self.assertEqual(self.call("get", "k"), b"\0\0\0ab")
        self.assertEqual(self.call("setrange", "k", "0", "XY"), 5)
        self.assertEqual(self.call("get", "k"), b"XY\0ab")
        self.assertEqual(self.error("setrange", "k", "-1", "a"), "ERR offset is out of range")

    def test_binary_safe(self):
        """Values round-trip arbitrary bytes, CR, LF and NUL included."""
        value = bytes(range(256))
        self.call("set", b"\r\n\0", value)
        self.assertEqual(self.call("get", b"\r\n\0"), value)
        self.assertEqual(to_resp(self.call("get", b"\r\n\0")),
                         b"$256\r\n" + value + b"\r\n")


class ExpireCommandTests(CallMixin, SynchronousTestCase):
    def test_expire_options(self):
        """NX, XX, GT and LT gate EXPIRE as Redis does."""
        self.call("set", "k", "v")
        self.assertEqual(self.call("expire", "k", "100", "xx"), 0)
        self.assertEqual(self.call("expire", "k", "100", "gt"), 0)
        self.assertEqual(self.call("expire", "k", "100", "nx"), 1)
        self.assertEqual(self.call("expire", "k", "50", "gt"), 0)
        self.assertEqual(self.call("expire", "k", "200", "gt"), 1)
        self.assertEqual(self.call("expire", "k", "300", "lt"), 0)
        self.assertEqual(self.call("pexpire", "k", "1000", "lt"), 1)
        self.assertEqual(self.call("pttl", "k"), 1000)
        self.assertEqual(self.error("expire", "k", "1", "nx", "xx"),
                         "ERR NX and XX, GT or LT options at the same time are not compatible")
        self.assertEqual(self.error("expire", "k", "1", "gt", "lt"),
                         "ERR GT and LT options at the same time are not compatible")
        self.assertEqual(self.error("expire", "k", "1", "zz"), "ERR Unsupported option zz")

    def test_expire_past_deletes(self):
        """EXPIRE with a past time deletes the key and logs DEL."""
        self.call("set", "k", "v")
        self.assertEqual(self.call("expire", "k", "-1"), 1)
        self.assertEqual(self.call("exists", "k"), 0)
        self.assertEqual(self.journal.effects[-1], (DEL, b"k"))

    def test_expireat_ttl_persist(self):
        """EXPIREAT logs EXPIRE_AT; TTL rounds; PERSIST clears once."""
        self.call("set", "k", "v")
        self.assertEqual(self.call("expireat", "k", str(int(START) + 60)), 1)
        self.assertEqual(self.journal.effects[-1], (EXPIRE_AT, b"k", int(START * 1000) + 60000))
        self.clock.advance(0.4)
        self.assertEqual(self.call("ttl", "k"), 60)
        self.assertEqual(self.call("pttl", "k"), 59600)
        self.assertEqual(self.call("persist", "k"), 1)
        self.assertEqual(self.call("persist", "k"), 0)
        self.assertEqual(self.call("ttl", "k"), -1)
        self.assertEqual(self.call("ttl", "nope"), -2)
        self.assertEqual(self.call("expire", "nope", "10"), 0)

    def test_expire_overflow(self):
        """Expiry times that overflow 64-bit milliseconds are rejected."""
        self.call("set", "k", "v")
        self.assertEqual(self.error("expire", "k", "9223372036854776"),
                         "ERR invalid expire time in 'expire' command")
        self.assertEqual(self.error("pexpire", "k", "9223372036854775807"),
                         "ERR invalid expire time in 'pexpire' command")
