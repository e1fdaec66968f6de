"""Tests for kvtwist.engine.acl_log: grouping, order, max length and client-info."""

from __future__ import annotations

from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from kvtwist.engine.acl_log import AclLog, Entry, format_double, log_for
from kvtwist.engine.store import Store
from kvtwist.wire.replies import Pairs


class LogUnitTests(SynchronousTestCase):
    """ACL LOG's bookkeeping: grouping, order, max length and client-info."""

    def test_grouping_and_max_len(self):
        """Equal denials within 60 s share an entry; acllog-max-len trims the oldest."""
        clock = Clock()
        store = Store(clock)
        admin, user = store.new_session(), store.new_session()
        admin.execute([b"ACL", b"SETUSER", b"u", b"on", b"nopass", b"+get"])
        user.execute([b"AUTH", b"u", b"x"])
        user.execute([b"GET", b"k"])
        user.execute([b"GET", b"k"])
        log = log_for(store)
        self.assertEqual([entry.count for entry in log.entries], [2])
        clock.advance(61)
        user.execute([b"GET", b"k"])
        self.assertEqual([entry.count for entry in log.entries], [1, 2])
        for index in range(5):
            user.execute([b"GET", b"k%d" % index])
        admin.execute([b"CONFIG", b"SET", b"acllog-max-len", b"3"])
        self.assertEqual([entry.object for entry in log.entries], [b"k4", b"k3", b"k2"])
        reply = admin.execute([b"ACL", b"LOG", b"1"])
        self.assertEqual(len(reply), 1)
        fields = dict(reply[0].items)
        self.assertIsInstance(reply[0], Pairs)
        self.assertIn(b" user=u ", fields[b"client-info"])
        self.assertIn(b" cmd=get ", fields[b"client-info"])

    def test_similar(self):
        """Entries differing in reason, context, object, user or by over 60 s are apart."""
        base = Entry("key", "toplevel", b"k", b"u", 100.0, b"")
        self.assertTrue(base.similar(Entry("key", "toplevel", b"k", b"u", 160.0, b"x")))
        for other in (Entry("command", "toplevel", b"k", b"u", 100.0, b""),
                      Entry("key", "multi", b"k", b"u", 100.0, b""),
                      Entry("key", "toplevel", b"j", b"u", 100.0, b""),
                      Entry("key", "toplevel", b"k", b"v", 100.0, b""),
                      Entry("key", "toplevel", b"k", b"u", 160.5, b"")):
            self.assertFalse(base.similar(other))

    def test_only_ten_newest_grouped(self):
        """A repeat older than the 10 newest entries starts a new entry."""
        log = AclLog()
        log.add(Entry("key", "toplevel", b"old", b"u", 0.0, b""))
        for index in range(10):
            log.add(Entry("key", "toplevel", b"%d" % index, b"u", 0.0, b""))
        log.add(Entry("key", "toplevel", b"old", b"u", 0.0, b""))
        self.assertEqual([entry.object for entry in log.entries].count(b"old"), 2)
        self.assertEqual(log.denied["key"], 12)

    def test_format_double(self):
        """Ages are written as Redis's %.17g of whole milliseconds."""
        self.assertEqual(format_double(0.006), b"0.0060000000000000001")
        self.assertEqual(format_double(0.0), b"0")
        self.assertEqual(format_double(12.5), b"12.5")
