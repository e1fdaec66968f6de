"""Tests for kvtwist.engine.info: the INFO command's sections and their counts."""

from __future__ import annotations

from twisted.trial.unittest import SynchronousTestCase

from kvtwist.engine.store import NullJournal, Store
from tests.helpers import SessionMixin


class InfoTests(SessionMixin, SynchronousTestCase):
    def test_sections(self):
        """INFO has each section in Redis's format with live counts."""
        self.call("set", "a", "1", "ex", "10")
        self.call("set", "b", "2")
        self.store.port = 6399
        self.clock.advance(5)
        text = self.call("info")
        self.assertIsInstance(text, bytes)
        for title in (b"# Server", b"# Clients", b"# Memory", b"# Stats", b"# Persistence",
                      b"# Keyspace"):
            self.assertIn(title + b"\r\n", text)
        for line in (b"redis_version:7.0.0", b"tcp_port:6399", b"uptime_in_seconds:5",
                     b"connected_clients:1", b"total_connections_received:1",
                     b"total_commands_processed:2", b"db0:keys=2,expires=1,avg_ttl=0",
                     b"journal_appended:2"):
            self.assertIn(line + b"\r\n", text)
        self.assertTrue(text.endswith(b"\r\n"))

    def test_commands_counted_after_running(self):
        """INFO does not count itself, and CONFIG RESETSTAT then INFO shows 1, as in Redis."""
        self.call("ping")
        self.assertIn(b"total_commands_processed:1\r\n", self.call("info", "stats"))
        self.call("config", "resetstat")
        self.assertIn(b"total_commands_processed:1\r\n", self.call("info", "stats"))
        self.assertEqual(self.store.commands_processed, 2)

    def test_tcp_port_from_config(self):
        """tcp_port comes from the store's config port (as tap passes it), else store.port."""
        self.assertNotIn(b"tcp_port:", self.call("info", "server"))
        store = Store(self.clock, config={"port": "7001"})
        store.port = 6399
        text = store.new_session().execute([b"info", b"server"])
        self.assertIn(b"tcp_port:7001\r\n", text)
        self.assertNotIn(b"tcp_port:6399", text)

    def test_one_section(self):
        """INFO with a section name returns only that section; unknown names are empty."""
        self.assertEqual(self.call("info", "KEYSPACE"), b"# Keyspace\r\n")
        self.call("select", "3")
        self.call("set", "k", "v")
        self.assertEqual(self.call("info", "KEYSPACE"),
                         b"# Keyspace\r\ndb3:keys=1,expires=0,avg_ttl=0\r\n")
        self.assertEqual(self.call("info", "nosuch"), b"")

    def test_journal_info(self):
        """The Persistence section shows journal.info() when the journal has it."""
        class Journal(NullJournal):
            def info(self):
                return {"journal_fsync": "always", "journal_bytes": 42}
        self.store.set_journal(Journal())
        text = self.call("info", "persistence")
        self.assertIn(b"journal_fsync:always\r\n", text)
        self.assertIn(b"journal_bytes:42\r\n", text)
