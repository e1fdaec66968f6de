"""Tests for kvtwist.engine.objects: OBJECT and the keys' last-access times."""

from __future__ import annotations

from twisted.trial.unittest import SynchronousTestCase

from kvtwist.engine import objects
from kvtwist.engine.keyspace import SET
from kvtwist.wire.replies import Status
from tests.helpers import SessionMixin

LFU = ("ERR An LFU maxmemory policy is not selected, access frequency not tracked. Please note "
       "that when switching between policies at runtime LRU and LFU data will take some time "
       "to adjust.")


class EncodingTests(SessionMixin, SynchronousTestCase):
    def encoding(self, value: bytes) -> bytes:
        self.call("set", "k", value)
        return self.call("object", "encoding", "k")

    def test_string_encodings(self):
        """SET values are int when string2l takes them, embstr up to 44 bytes, else raw."""
        for value, expected in [(b"0", b"int"), (b"123", b"int"), (b"-5", b"int"),
                                (b"9223372036854775807", b"int"),
                                (b"-9223372036854775808", b"int"),
                                (b"9223372036854775808", b"embstr"),
                                (b"12345678901234567890", b"embstr"), (b"-0", b"embstr"),
                                (b" 1", b"embstr"), (b"01", b"embstr"), (b"+1", b"embstr"),
                                (b"1_0", b"embstr"), (b"", b"embstr"), (b"x" * 44, b"embstr"),
                                (b"x" * 45, b"raw"), (b"1" * 45, b"raw")]:
            self.assertEqual(self.encoding(value), expected, value)

    def test_append_and_setrange_make_raw(self):
        """APPEND or SETRANGE on an existing value leaves it raw, until it is set again."""
        self.call("set", "k", "12")
        self.call("append", "k", "3")
        self.assertEqual(self.call("object", "encoding", "k"), b"raw")
        self.call("expire", "k", "100")
        self.assertEqual(self.call("object", "encoding", "k"), b"raw")
        self.assertEqual(self.encoding(b"123"), b"int")
        self.call("setrange", "k", "0", "9")
        self.assertEqual(self.call("object", "encoding", "k"), b"raw")
        self.call("set", "k", "1234")
        self.call("setrange", "k", "0", "")
        self.assertEqual(self.call("object", "encoding", "k"), b"int")
        self.call("setrange", "new", "0", "1")
        self.assertEqual(self.call("object", "encoding", "new"), b"raw")

    def test_append_to_missing_key_is_like_set(self):
        """APPEND creating a key stores its argument as SET would (int here)."""
        self.call("append", "k", "42")
        self.assertEqual(self.call("object", "encoding", "k"), b"int")
        self.assertEqual(self.call("object", "refcount", "k"), 2 ** 31 - 1)

    def test_bit_commands_make_raw(self):
        """SETBIT, BITOP's destination and a writing BITFIELD leave raw values; a reading
        BITFIELD keeps the encoding."""
        self.call("set", "k", "1")
        self.call("setbit", "k", "0", "0")
        self.assertEqual(self.call("object", "encoding", "k"), b"raw")
        self.call("setbit", "n", "3", "1")
        self.assertEqual(self.call("object", "encoding", "n"), b"raw")
        self.call("set", "a", "1")
        self.call("bitop", "or", "d", "a", "a")
        self.assertEqual(self.call("object", "encoding", "d"), b"raw")
        self.assertEqual(self.call("object", "encoding", "a"), b"int")
        self.call("set", "b", "12")
        self.call("bitfield", "b", "get", "u8", "0")
        self.assertEqual(self.call("object", "encoding", "b"), b"int")
        self.call("bitfield", "b", "SET", "u8", "0", "49")
        self.assertEqual(self.call("object", "encoding", "b"), b"raw")

    def test_incr_and_incrbyfloat(self):
        """INCR results are int; an INCRBYFLOAT result is a string, never int."""
        self.call("incr", "i")
        self.assertEqual(self.call("object", "encoding", "i"), b"int")
        self.call("incrbyfloat", "f", "3")
        self.assertEqual(self.call("object", "encoding", "f"), b"embstr")
        self.assertEqual(self.call("object", "refcount", "f"), 1)
        self.call("incr", "f")
        self.assertEqual(self.call("object", "encoding", "f"), b"int")

    def test_refcount(self):
        """Shared integers 0..9999 have refcount INT_MAX, every other value 1."""
        for value, expected in [(b"0", 2 ** 31 - 1), (b"9999", 2 ** 31 - 1), (b"10000", 1),
                                (b"-1", 1), (b"abc", 1)]:
            self.call("set", "k", value)
            self.assertEqual(self.call("object", "refcount", "k"), expected, value)

    def test_missing_key_and_freq(self):
        """A missing key answers nil; FREQ refuses without an LFU policy (after the lookup)."""
        for sub in ("encoding", "refcount", "idletime", "freq"):
            self.assertIsNone(self.call("object", sub, "nokey"))
        self.call("set", "k", "v")
        self.assertEqual(self.error("object", "freq", "k"), LFU)

    def test_errors_and_help(self):
        """Unknown subcommands and wrong arities get Redis's errors; HELP lists subcommands."""
        self.assertEqual(self.error("object", "foo", "k"),
                         "ERR unknown subcommand 'foo'. Try OBJECT HELP.")
        self.assertEqual(self.error("object", "encoding"),
                         "ERR wrong number of arguments for 'object|encoding' command")
        self.assertEqual(self.error("object", "help", "x"),
                         "ERR wrong number of arguments for 'object|help' command")
        self.assertEqual(self.error("object"), "ERR wrong number of arguments for 'object' command")
        lines = self.call("object", "help")
        self.assertEqual(lines[0], Status(
            b"OBJECT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:"))
        self.assertEqual(lines[-2:], [Status(b"HELP"), Status(b"    Prints this help.")])
        self.assertEqual(len(lines), 15)

    def test_marks_are_pruned(self):
        """Marks of keys gone are forgotten once they outnumber the keys: memory stays bounded."""
        for index in range(300):
            key = b"k%d" % index
            self.call("set", key, "a")
            self.call("append", key, "b")
            self.call("del", key)
        self.assertLessEqual(len(objects._MARKS[self.store.keyspace]), 2 * 0 + 65)


class IdleTimeTests(SessionMixin, SynchronousTestCase):
    def idle(self, key="k"):
        return self.call("object", "idletime", key)

    def test_reads_and_writes_stamp(self):
        """GET and SET reset the idle time; it counts whole seconds of the clock."""
        self.call("set", "k", "v")
        self.clock.advance(10)
        self.assertEqual(self.idle(), 10)
        self.call("get", "k")
        self.assertEqual(self.idle(), 0)
        self.clock.advance(5)
        self.call("mset", "a", "1", "k", "2")
        self.assertEqual(self.idle(), 0)
        self.clock.advance(3)
        self.call("mget", "a", "k")
        self.assertEqual(self.idle("a"), 0)

    def test_notouch_commands(self):
        """TTL, PTTL, TYPE, EXISTS, EXPIRETIME, OBJECT and WATCH leave the access time alone;
        TOUCH resets it."""
        self.call("set", "k", "v")
        self.clock.advance(3)
        for argv in (["ttl", "k"], ["pttl", "k"], ["type", "k"], ["exists", "k"],
                     ["expiretime", "k"], ["pexpiretime", "k"], ["object", "encoding", "k"],
                     ["watch", "k"]):
            self.call(*argv)
        self.assertEqual(self.idle(), 3)
        self.call("touch", "k")
        self.assertEqual(self.idle(), 0)

    def test_client_no_touch(self):
        """With session.no_touch set, reads do not stamp keys, but TOUCH still does."""
        self.call("set", "k", "v")
        self.session.no_touch = True
        self.clock.advance(4)
        self.call("get", "k")
        self.call("mget", "k", "k")
        self.assertEqual(self.idle(), 4)
        self.call("touch", "k")
        self.assertEqual(self.idle(), 0)

    def test_optional_key(self):
        """A command whose key is optional (DUMP alone) runs without one."""
        self.call("set", "k", "v")
        self.clock.advance(2)
        self.assertEqual(self.call("print"), self.call("print"))
        self.assertEqual(self.idle(), 2)

    def test_exec_stamps(self):
        """Commands queued in MULTI stamp their keys when EXEC runs them."""
        self.call("set", "k", "v")
        self.clock.advance(7)
        self.call("multi")
        self.call("get", "k")
        self.assertEqual(self.store.keyspace.access[b"k"], self.clock.seconds() - 7)
        self.call("exec")
        self.assertEqual(self.idle(), 0)

    def test_entries_follow_the_keys(self):
        """A missing key gets no entry; DEL, expiry and FLUSH drop entries."""
        access = self.store.keyspace.access
        self.call("get", "nokey")
        self.assertNotIn(b"nokey", access)
        self.call("set", "a", "1")
        self.call("set", "b", "1")
        self.call("set", "c", "1", "px", "10")
        self.call("del", "a")
        self.assertEqual(set(access), {b"b", b"c"})
        self.clock.advance(1)
        self.assertIsNone(self.call("get", "c"))
        self.assertEqual(set(access), {b"b"})
        self.call("flushall")
        self.assertEqual(access, {})

    def test_key_without_entry(self):
        """A key loaded without a command (recovery) counts as accessed at start-up."""
        keyspace = self.store.keyspace
        self.clock.advance(20)
        keyspace.apply((SET, b"r", b"v", 0))
        self.assertEqual(objects.idle_seconds(keyspace, b"r"), 20)
        self.assertEqual(self.idle("r"), 20)

    def test_idle_seconds_truncates_clock(self):
        """Idle time is the difference of whole seconds, as Redis's LRU clock counts."""
        self.clock.advance(0.5)  # at .75
        self.call("set", "k", "v")
        self.clock.advance(0.5)  # at .25 of the next second
        self.assertEqual(objects.idle_seconds(self.store.keyspace, b"k"), 1)
