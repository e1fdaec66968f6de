"""Tests for kvtwist.engine.keys: expiry and whole-keyspace commands (KEYS, SCAN, RENAME...)."""

from __future__ import annotations

from twisted.trial.unittest import SynchronousTestCase

from kvtwist.engine.keyspace import DEL, EXPIRE_AT
from kvtwist.wire import replies
from kvtwist.wire.replies import OK, Status, Streamed
from tests.helpers import START, SessionMixin

KEYSPACE_START = 1700000000.25


class KeyspaceMixin(SessionMixin):
    start = KEYSPACE_START
    peer = "127.0.0.1:4000"


class ExpireCommandTests(SessionMixin, SynchronousTestCase):
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

    def test_expire_option_rules(self):
        """GT fails and LT succeeds on a key without TTL; a missing key answers 0 after the
        option checks; options are case-insensitive."""
        self.call("set", "k", "v")
        self.assertEqual(self.call("expire", "k", "100", "GT"), 0)
        self.assertEqual(self.call("ttl", "k"), -1)
        self.assertEqual(self.call("expire", "k", "100", "Lt"), 1)
        self.assertEqual(self.call("expire", "nokey", "100", "xx"), 0)
        self.assertEqual(self.error("expire", "nokey", "1", "gt", "lt"),
                         "ERR GT and LT options at the same time are not compatible")
        self.assertEqual(self.error("expire", "k", "abc", "foo"), "ERR Unsupported option foo")
        self.assertEqual(self.call("expire", "k", "100", "nx", "nx"), 0)

    def test_expiretime(self):
        """EXPIRETIME and PEXPIRETIME give the absolute expiry (seconds rounded), -1 or -2."""
        self.call("set", "k", "v")
        self.assertEqual(self.call("expiretime", "k"), -1)
        self.assertEqual(self.call("pexpiretime", "k"), -1)
        self.assertEqual(self.call("expiretime", "nokey"), -2)
        self.assertEqual(self.call("pexpiretime", "nokey"), -2)
        self.call("pexpireat", "k", "1800000000499")
        self.assertEqual(self.call("pexpiretime", "k"), 1800000000499)
        self.assertEqual(self.call("expiretime", "k"), 1800000000)
        self.call("pexpireat", "k", "1800000000500")
        self.assertEqual(self.call("expiretime", "k"), 1800000001)
        self.assertEqual(self.error("expiretime"),
                         "ERR wrong number of arguments for 'expiretime' command")

    def test_unlink_and_touch(self):
        """UNLINK deletes like DEL; TOUCH counts the live keys, repeats included."""
        self.call("set", "a", "1")
        self.call("set", "b", "2")
        self.assertEqual(self.call("touch", "a", "a", "nokey", "b"), 3)
        self.assertEqual(self.call("unlink", "a", "a", "nokey"), 1)
        self.assertEqual(self.call("exists", "a", "b"), 1)
        self.assertEqual(self.journal.effects[-1], (DEL, b"a"))
        self.assertEqual(self.error("unlink"), "ERR wrong number of arguments for 'unlink' command")


class KeyspaceCommandTests(KeyspaceMixin, SynchronousTestCase):
    def test_type(self):
        """TYPE answers string for a live key and none otherwise."""
        self.call("set", "k", "v")
        self.assertEqual(self.call("type", "k"), Status(b"string"))
        self.assertEqual(self.call("type", "x"), Status(b"none"))

    def test_keys(self):
        """KEYS filters with a Redis glob."""
        self.call("mset", "user:1", "a", "user:2", "b", "x", "c")
        self.assertEqual(sorted(self.call("keys", "user:[12]")), [b"user:1", b"user:2"])
        self.assertEqual(self.call("keys", "nomatch*"), [])

    def test_scan_iterates_all(self):
        """SCAN with MATCH and COUNT walks every key and ends with cursor 0."""
        for index in range(50):
            self.call("set", "k%d" % index, "v")
        self.call("set", "other", "v")
        cursor, seen = b"0", []
        for _ in range(100):
            cursor, keys = self.call("scan", cursor, "MATCH", "k*", "COUNT", "7")
            seen.extend(keys)
            if cursor == b"0":
                break
        self.assertEqual(sorted(seen), sorted(b"k%d" % index for index in range(50)))

    def test_scan_errors(self):
        """SCAN rejects bad cursors, counts and options like Redis."""
        self.assertEqual(self.error("scan", "abc"), "ERR invalid cursor")
        self.assertEqual(self.error("scan", "0", "count", "0"), "ERR syntax error")
        self.assertEqual(self.error("scan", "0", "count", "x"),
                         "ERR value is not an integer or out of range")
        self.assertEqual(self.error("scan", "0", "bogus"), "ERR syntax error")

    def test_scan_type(self):
        """SCAN TYPE string keeps keys and any other type filters them all out."""
        self.call("set", "k", "v")
        self.assertEqual(self.call("scan", "0", "type", "string"), [b"0", [b"k"]])
        self.assertEqual(self.call("scan", "0", "type", "hash"), [b"0", []])

    def test_scan_cursor(self):
        """SCAN answers a decimal cursor counting down by COUNT; a too large one is clamped."""
        for index in range(5):
            self.call("set", "k%d" % index, "v")
        cursor, keys = self.call("scan", "0", "count", "2")
        self.assertEqual((cursor, len(keys)), (b"3", 2))
        cursor, keys = self.call("scan", cursor, "count", "2")
        self.assertEqual((cursor, len(keys)), (b"1", 2))
        for huge in ("18446744073709551615", "-1", "6"):
            cursor, keys = self.call("scan", huge, "count", "10")
            self.assertEqual((cursor, sorted(keys)), (b"0", [b"k%d" % i for i in range(5)]))

    def test_scan_match_with_many_stars(self):
        """SCAN MATCH uses the glob matcher: many stars over a long key answer at once."""
        self.call("set", "a" * 10000, "v")
        self.call("set", "a" * 10000 + "b", "v")
        self.assertEqual(self.call("scan", "0", "match", "*a" * 40 + "b"),
                         [b"0", [b"a" * 10000 + b"b"]])

    def test_randomkey(self):
        """RANDOMKEY returns nil when empty, else a key, and in time every key."""
        self.assertIsNone(self.call("randomkey"))
        self.call("set", "k", "v")
        self.assertEqual(self.call("randomkey"), b"k")
        for index in range(10):
            self.call("set", "k%d" % index, "v")
        self.call("del", "k")
        drawn = {self.call("randomkey") for _ in range(500)}
        self.assertEqual(drawn, {b"k%d" % index for index in range(10)})

    def test_rename(self):
        """RENAME moves value and TTL; RENAMENX refuses an existing target."""
        self.call("set", "a", "1", "ex", "100")
        self.assertEqual(self.call("rename", "a", "b"), OK)
        self.assertEqual(self.call("get", "b"), b"1")
        self.assertEqual(self.call("ttl", "b"), 100)
        self.assertEqual(self.call("exists", "a"), 0)
        self.assertEqual(self.error("rename", "a", "c"), "ERR no such key")
        self.call("set", "c", "2")
        self.assertEqual(self.call("renamenx", "b", "c"), 0)
        self.assertEqual(self.call("renamenx", "b", "d"), 1)
        self.assertEqual(self.call("rename", "d", "d"), OK)

    def test_large_keys_streams(self):
        """KEYS matching many keys streams them."""
        count = replies.STREAM_MIN + 500
        self.call("mset", *[b"k%05d" % i for i in range(count) for _ in (0, 1)])
        reply = self.call("keys", "*")
        self.assertIsInstance(reply, Streamed)
        self.assertEqual(sorted(reply.whole()), [b"k%05d" % i for i in range(count)])
        self.assertEqual(sorted(self.call("keys", "k0000?")), [b"k%05d" % i for i in range(10)])

    def test_flush_dbsize(self):
        """FLUSH variants accept ASYNC/SYNC, reject other options, and empty the store."""
        self.call("mset", "a", "1", "b", "2")
        self.assertEqual(self.call("dbsize"), 2)
        self.assertEqual(self.error("flushall", "now"), "ERR syntax error")
        self.assertEqual(self.call("flushdb", "ASYNC"), OK)
        self.assertEqual(self.call("dbsize"), 0)
        self.call("set", "a", "1")
        self.assertEqual(self.call("flush"), OK)
        self.assertEqual(self.call("dbsize"), 0)
