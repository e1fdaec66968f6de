"""Tests for kvtwist.engine.strings: SET family, GET, INCR family, INCRBYFLOAT, APPEND, ranges."""

from __future__ import annotations

from unittest import SkipTest

from hypothesis import HealthCheck, given, settings, strategies as st
from twisted.trial.unittest import SynchronousTestCase

from kvtwist.engine.keyspace import DEL, PERSIST, SET, SETRANGE
from kvtwist.wire.replies import OK, to_resp
from kvtwist.engine.strings import format_long_double, parse_long_double
from tests.helpers import START, SessionMixin
from tests.redisref import DifferentialMixin


class SetTests(SessionMixin, SynchronousTestCase):
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


class GetexTests(SessionMixin, SynchronousTestCase):
    def test_sets_and_removes_expiry(self):
        """GETEX answers the value and sets EX/PX/EXAT/PXAT expiry or removes it (PERSIST)."""
        now = int(START * 1000)
        self.call("set", "k", "v")
        self.assertEqual(self.call("getex", "k"), b"v")
        self.assertEqual(self.call("ttl", "k"), -1)
        self.assertEqual(self.call("getex", "k", "ex", "10"), b"v")
        self.assertEqual(self.session.keyspace.expire_of(b"k"), now + 10000)
        self.assertEqual(self.call("getex", "k", "px", "20"), b"v")
        self.assertEqual(self.session.keyspace.expire_of(b"k"), now + 20)
        self.assertEqual(self.call("getex", "k", "exat", str(int(START) + 30)), b"v")
        self.assertEqual(self.session.keyspace.expire_of(b"k"), now + 30000)
        self.assertEqual(self.call("getex", "k", "PXAT", str(now + 40)), b"v")
        self.assertEqual(self.session.keyspace.expire_of(b"k"), now + 40)
        self.assertEqual(self.call("getex", "k", "persist"), b"v")
        self.assertEqual(self.call("ttl", "k"), -1)
        self.assertEqual(self.journal.effects[-1], (PERSIST, b"k"))

    def test_past_time_deletes(self):
        """An EXAT/PXAT time already past deletes the key after answering its value."""
        self.call("set", "k", "v")
        self.assertEqual(self.call("getex", "k", "exat", "1"), b"v")
        self.assertEqual(self.call("exists", "k"), 0)
        self.assertEqual(self.journal.effects[-1], (DEL, b"k"))

    def test_errors(self):
        """Conflicting options are syntax errors; bad times are checked only for a live key."""
        self.call("set", "k", "v")
        for options in (["ex", "1", "px", "1"], ["persist", "ex", "1"], ["ex", "1", "persist"],
                        ["ex"], ["nx"], ["keepttl"], ["get"], ["bogus"]):
            self.assertEqual(self.error("getex", "k", *options), "ERR syntax error")
        self.assertEqual(self.error("getex", "k", "ex", "0"),
                         "ERR invalid expire time in 'getex' command")
        self.assertEqual(self.error("getex", "k", "px", "9223372036854775807"),
                         "ERR invalid expire time in 'getex' command")
        self.assertEqual(self.error("getex", "k", "ex", "x"),
                         "ERR value is not an integer or out of range")
        self.assertIsNone(self.call("getex", "missing", "ex", "x"))


class MultiKeyTests(SessionMixin, SynchronousTestCase):
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


class IntegerTests(SessionMixin, SynchronousTestCase):
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


class FloatTests(SessionMixin, SynchronousTestCase):
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


class StringTests(SessionMixin, SynchronousTestCase):
    def test_append_strlen(self):
        """APPEND returns the new length and STRLEN measures values."""
        self.assertEqual(self.call("append", "k", "ab"), 2)
        self.assertEqual(self.call("append", "k", "cd"), 4)
        self.assertEqual(self.call("strlen", "k"), 4)
        self.assertEqual(self.call("strlen", "nope"), 0)

    def test_size_limit(self):
        """APPEND and SETRANGE refuse to grow a value past proto-max-bulk-len (512 MB)."""
        self.store.config["proto-max-bulk-len"] = "8"
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

    def test_append_and_setrange_journal_only_the_change(self):
        """APPEND and SETRANGE log the bytes they write, not the whole value (which may be large).

        Before, each logged a SET of the whole value: an APPEND of one byte to a 64 MB
        value wrote 64 MB to the journal.
        """
        self.call("set", "k", "x" * 1000)
        self.call("append", "k", "ab")
        self.call("setrange", "k", "5", "Z")
        self.assertEqual(self.journal.effects[-2:],
                         [(SETRANGE, b"k", 1000, b"ab"), (SETRANGE, b"k", 5, b"Z")])
        self.assertEqual(self.call("get", "k"), b"x" * 5 + b"Z" + b"x" * 994 + b"ab")

    def test_binary_safe(self):
        """Values round-trip arbitrary bytes, CR, LF and NUL included."""
        value = bytes(range(256))
        self.call("set", b"\r\n\0", value)
        self.assertEqual(self.call("get", b"\r\n\0"), value)
        self.assertEqual(to_resp(self.call("get", b"\r\n\0")),
                         b"$256\r\n" + value + b"\r\n")


class InPlaceWriteTests(SessionMixin, SynchronousTestCase):
    """APPEND and SETRANGE on a large value cost in proportion to what they write (issue 21 R1).

    Before, each rebuilt the whole value (bytes are immutable): one full copy per write,
    about 40 ms per APPEND of one byte to a 64 MB value, every client waiting. These tests
    failed then: the stored object changed at every write, and 200 small writes to a 4 MB
    value allocated 4 MB each.
    """

    def test_append_and_setrange_change_the_stored_value_in_place(self):
        """After the first write, APPEND and SETRANGE keep the same stored object, changed."""
        model = bytearray(b"v" * 300000)
        self.call("set", "k", bytes(model))
        self.call("append", "k", "!")
        model += b"!"
        held = self.store.keyspace.data[b"k"]
        for step in range(100):
            self.assertEqual(self.call("append", "k", b"%d" % step), len(model) + len(b"%d" % step))
            model += b"%d" % step
            self.call("setrange", "k", str(1000 + step), "XY")
            model[1000 + step:1002 + step] = b"XY"
            self.assertTrue(self.store.keyspace.data[b"k"] is held, "a new value at step %d" % step)
        self.assertEqual(self.call("get", "k"), bytes(model))
        self.assertEqual(self.call("strlen", "k"), len(model))

    def test_small_writes_allocate_in_proportion_to_the_change(self):
        """200 APPENDs and SETRANGEs of a few bytes to a 4 MB value allocate far less than it."""
        try:
            import tracemalloc
        except ImportError:
            tracemalloc = None
        if tracemalloc is None or not hasattr(tracemalloc, "get_traced_memory"):
            raise SkipTest("no tracemalloc (PyPy): the in-place test above covers it")
        size = 4 << 20
        self.call("set", "k", b"x" * size)
        self.call("append", "k", "first")  # the one copy: a 4 MB bytes becomes a buffer
        tracemalloc.start()
        try:
            for step in range(100):
                self.call("append", "k", "0123456789")
                self.call("setrange", "k", str(size // 2 + step), "abcdefghij")
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        self.assertLess(peak, size // 8)
        value = self.call("get", "k")
        self.assertEqual(len(value), size + 5 + 1000)
        self.assertEqual(value[size // 2 + 99:size // 2 + 109], b"abcdefghij")

    def test_a_reply_is_not_changed_by_later_writes(self):
        """GET, GETRANGE, GETSET and MGET reply with bytes that later writes leave as they were."""
        self.call("set", "k", b"a" * 200000)
        self.call("append", "k", "b")
        got = self.call("get", "k")
        part = self.call("getrange", "k", "199990", "-1")
        many = self.call("mget", "k", "k")
        self.call("setrange", "k", "199995", "ZZZZZZ")
        self.call("append", "k", "c")
        self.assertIs(got.__class__, bytes)
        self.assertIs(part.__class__, bytes)
        self.assertEqual(got, b"a" * 200000 + b"b")
        self.assertEqual(part, b"a" * 10 + b"b")
        self.assertEqual(many, [got, got])
        self.assertEqual(self.call("getset", "k", "new"),
                         b"a" * 199995 + b"ZZZZZZ" + b"c")


class GetexDifferentialTests(DifferentialMixin, SynchronousTestCase):
    @settings(max_examples=80, deadline=None,
              suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
    @given(st.lists(st.sampled_from([b"ex", b"PX", b"exat", b"pxat", b"persist", b"nx",
                                     b"keepttl", b"get", b"3600", b"-1", b"0", b"x",
                                     b"9223372036854775807", b"NOW", b"NOWMS"]),
                    max_size=4), st.booleans(), st.booleans())
    def test_getex(self, options, exists, ttl):
        """GETEX with generated options gives the reply, TTL and existence redis-server gives."""
        self.reset()
        if exists:
            self.compare([b"set", b"k", b"v"] + ([b"ex", b"100"] if ttl else []))
        now = int(self.clock.seconds())
        times = {b"NOW": b"%d" % (now + 7200), b"NOWMS": b"%d" % (now * 1000 + 7200000)}
        self.compare([b"getex", b"k"] + [times.get(option, option) for option in options])
        self.compare([b"exists", b"k"])
        ours = self.session.execute([b"ttl", b"k"])
        theirs = int(self.redis.call([b"ttl", b"k"])[1:-2])
        self.assertLessEqual(abs(ours - theirs), 1, (options, ours, theirs))
