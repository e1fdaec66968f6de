"""Tests for kvtwist.engine.acl_check: the per-command check, channels and subscribers."""

from __future__ import annotations

from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from kvtwist.engine.acl_check import channel_allowed
from kvtwist.engine.glob import compile_glob
from kvtwist.engine.store import Store


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
