"""Tests for kvtwist.engine.acl_check: the per-command check, channels and subscribers."""

from __future__ import annotations

from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from kvtwist.engine.acl_check import channel_allowed
from kvtwist.engine.glob import compile_glob
from kvtwist.engine.store import Store
from kvtwist.engine.table import TABLE


def _setup(*rules):
    store = Store(Clock())
    admin, user = store.new_session(), store.new_session()
    admin.execute([b"ACL", b"SETUSER", b"u", b"on", b"nopass"] + list(rules))
    user.execute([b"AUTH", b"u", b"x"])
    return store, admin, user


class CheckTests(SynchronousTestCase):
    """What a restricted user may run."""

    def test_unrestricted_user_skips_the_check(self):
        """The default user's sessions are flagged allowed-everything."""
        store = Store(Clock())
        self.assertTrue(store.new_session().user.all_allowed)

    def test_first_args(self):
        """+select|0 allows SELECT 0 only."""
        _, _, user = _setup(b"+select|0")
        self.assertEqual(user.execute([b"SELECT", b"0"]).text, b"OK")
        self.assertIn("NOPERM", user.execute([b"SELECT", b"1"]).message)

    def test_unknown_subcommand_answered_by_command(self):
        """A container's unknown subcommand gets its own error, not NOPERM."""
        _, _, user = _setup(b"+get")
        self.assertIn("unknown subcommand", user.execute([b"CONFIG", b"nosuch"]).message)

    def test_channel_patterns(self):
        """Channels match ACL patterns; PSUBSCRIBE patterns must equal one."""
        channels = [[b"news.*", compile_glob(b"news.*")]]
        self.assertTrue(channel_allowed(channels, b"news.x", False))
        self.assertFalse(channel_allowed(channels, b"news.x", True))
        self.assertTrue(channel_allowed(channels, b"news.*", True))

    def test_subscribers_closed_when_channels_revoked(self):
        """A subscriber whose channel is no longer allowed is disconnected; others stay."""
        store, admin, user = _setup(b"+@all", b"~*", b"&news", b"&sport")
        other = store.new_session()
        other.execute([b"AUTH", b"u", b"x"])
        user.execute([b"SUBSCRIBE", b"news"])
        other.execute([b"SUBSCRIBE", b"sport"])
        admin.execute([b"ACL", b"SETUSER", b"u", b"&more"])  # a superset: nobody closed
        self.assertFalse(user.closing or other.closing)
        admin.execute([b"ACL", b"SETUSER", b"u", b"resetchannels", b"&news"])
        self.assertFalse(user.closing)
        self.assertTrue(other.closing)

    def test_exec_rechecks(self):
        """Rules changed after queuing refuse the command at EXEC with Redis's text."""
        _, admin, user = _setup(b"+@all", b"~*")
        user.execute([b"MULTI"])
        user.execute([b"GET", b"k"])
        admin.execute([b"ACL", b"SETUSER", b"u", b"-get"])
        reply = user.execute([b"EXEC"])
        self.assertTrue(reply[0].message.startswith("NOPERM ACLs rules changed"))

    def test_plans_follow_changes(self):
        """A call allowed once is refused after the rules change, and a plan never lets
        another key or first argument through."""
        _, admin, user = _setup(b"+get", b"+set", b"~a*", b"%R~r*")
        self.assertIsNone(user.execute([b"GET", b"a1"]))
        self.assertIn("NOPERM", user.execute([b"GET", b"b1"]).message)
        self.assertIsNone(user.execute([b"GET", b"r1"]))
        self.assertEqual(user.execute([b"SET", b"a1", b"v"]).text, b"OK")
        self.assertIn("NOPERM", user.execute([b"SET", b"r1", b"v"]).message)
        self.assertIn("NOPERM", user.execute([b"GET", b""]).message)
        admin.execute([b"ACL", b"SETUSER", b"u", b"resetkeys", b"~b*"])
        self.assertIn("NOPERM", user.execute([b"GET", b"a1"]).message)
        self.assertIsNone(user.execute([b"GET", b"b1"]))
        admin.execute([b"ACL", b"SETUSER", b"u", b"-get"])
        self.assertIn("NOPERM", user.execute([b"GET", b"b1"]).message)


class RangeTests(SynchronousTestCase):
    """The inline plan of Session.execute: an allowed command's key as a byte range."""

    def _count_slow_checks(self, user):
        # Count the calls that reach acl_check.denied (the path past the inline test).
        from kvtwist.engine import store as store_module

        calls = []
        real = store_module.acl_denied

        def counting(session, command, argv):
            calls.append(argv)
            return real(session, command, argv)
        self.patch(store_module, "acl_denied", counting)
        return calls

    def test_prefix_user_checks_inline(self):
        """After one allowed GET, GETs of keys under the prefix skip the slow check; keys
        outside it still get NOPERM and an ACL LOG entry."""
        store, admin, user = _setup(b"~key:*", b"+@read", b"+@write")
        calls = self._count_slow_checks(user)
        self.assertIsNone(user.execute([b"GET", b"key:1"]))
        self.assertEqual(user.user.ranges[TABLE[b"get"]],
                         (1, b"key:", b"key;"))
        for key in (b"key:2", b"key:", b"key:\xff\xff"):
            self.assertIsNone(user.execute([b"GET", key]))
        self.assertEqual(len(calls), 1)
        for key in (b"key;", b"key", b"", b"other"):
            self.assertIn("NOPERM", user.execute([b"GET", key]).message)
        self.assertEqual(len(admin.execute([b"ACL", b"LOG"])), 4)

    def test_literal_and_allkeys_ranges(self):
        """A literal pattern admits only its key; allkeys admits every allowed command
        whatever its keys, and a denied command is still denied."""
        store, admin, user = _setup(b"~only", b"+get")
        user.execute([b"GET", b"only"])
        self.assertIsNone(user.execute([b"GET", b"only"]))
        self.assertIn("NOPERM", user.execute([b"GET", b"only\0"]).message)
        self.assertIn("NOPERM", user.execute([b"GET", b"onl"]).message)
        admin.execute([b"ACL", b"SETUSER", b"u", b"allkeys", b"+mget"])
        self.assertEqual(user.user.ranges, {})
        user.execute([b"MGET", b"a", b"b"])
        self.assertEqual(user.user.ranges[TABLE[b"mget"]], (0, b"", b"\xff"))
        self.assertEqual(user.execute([b"MGET", b"c", b"d", b"e"]), [None, None, None])
        self.assertIn("NOPERM", user.execute([b"SET", b"a", b"b"]).message)

    def test_read_and_write_patterns(self):
        """%R~ and %W~ patterns are resolved per need: GET reads through two patterns (no
        range), SET's range is the one pattern granting read and write, and a SET only
        the write pattern allows is still allowed (the range is sufficient, not
        necessary)."""
        _, _, user = _setup(b"%R~r:*", b"%W~w:*", b"~rw:*", b"+get", b"+set")
        self.assertIsNone(user.execute([b"GET", b"r:1"]))
        self.assertEqual(user.execute([b"SET", b"rw:1", b"v"]).text, b"OK")
        ranges = user.user.ranges
        self.assertNotIn(TABLE[b"get"], ranges)  # r:* and rw:*: two patterns
        self.assertEqual(ranges[TABLE[b"set"]], (1, b"rw:", b"rw;"))
        self.assertEqual(user.execute([b"GET", b"rw:1"]), b"v")
        self.assertIn("NOPERM", user.execute([b"GET", b"w:1"]).message)
        self.assertIn("NOPERM", user.execute([b"SET", b"r:1", b"v"]).message)
        self.assertEqual(user.execute([b"SET", b"w:1", b"v"]).text, b"OK")
        self.assertIn("NOPERM", user.execute([b"SET", b"w:1", b"v", b"GET"]).message)

    def test_no_range_without_a_fixed_key(self):
        """First-arg rules, channel commands and users with selectors get no range."""
        store, admin, user = _setup(b"+select|0", b"+publish", b"&news", b"~k*")
        user.execute([b"SELECT", b"0"])
        user.execute([b"PUBLISH", b"news", b"x"])
        self.assertEqual(user.user.ranges, {})
        self.assertIn("NOPERM", user.execute([b"SELECT", b"1"]).message)
        self.assertIn("NOPERM", user.execute([b"PUBLISH", b"sport", b"x"]).message)
        admin.execute([b"ACL", b"SETUSER", b"u", b"+get", b"(+set ~s*)"])
        self.assertIsNone(user.execute([b"GET", b"k1"]))
        self.assertEqual(user.user.ranges, {})
        self.assertEqual(user.execute([b"SET", b"s1", b"v"]).text, b"OK")
        self.assertIn("NOPERM", user.execute([b"SET", b"k1", b"v"]).message)

    def test_ranges_dropped_on_every_change(self):
        """ACL SETUSER, ACL LOAD-style copies and requirepass all drop the ranges."""
        store, admin, user = _setup(b"~k*", b"+get")
        user.execute([b"GET", b"k1"])
        self.assertTrue(user.user.ranges)
        admin.execute([b"ACL", b"SETUSER", b"u", b"resetkeys", b"~j*"])
        self.assertEqual(user.user.ranges, {})
        self.assertIn("NOPERM", user.execute([b"GET", b"k1"]).message)
        user.execute([b"GET", b"j1"])
        user.user.copy_from(user.user.copy())
        self.assertEqual(user.user.ranges, {})
