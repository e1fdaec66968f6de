"""Tests for kvtwist.engine.monitor: MONITOR's lines, their escaping, and what it refuses."""

from __future__ import annotations

from twisted.trial.unittest import SynchronousTestCase

from kvtwist.engine import monitor
from kvtwist.wire.replies import OK, Error, Status
from tests.helpers import SessionMixin


class MonitorMixin(SessionMixin):
    peer = "127.0.0.1:4000"

    def other(self, peer="127.0.0.1:4001"):
        """Return a second client's Session on the same store."""
        return self.store.new_session(peer)


class MonitorTests(MonitorMixin, SynchronousTestCase):
    def test_lines(self):
        """A monitor gets each later command in Redis's escaped format; admin ones are hidden."""
        monitor = self.other("127.0.0.1:9")
        lines = []
        monitor.push = lines.append
        self.assertEqual(monitor.execute([b"monitor"]), OK)
        self.clock.advance(0.5)
        self.call("set", "k", 'a "b"\n\x01\\')
        self.call("client", "list")
        self.call("client", "id")
        self.assertEqual(lines, [
            Status(b'1700000000.500000 [0 127.0.0.1:4000] "set" "k" "a \\"b\\"\\n\\x01\\\\"'),
            Status(b'1700000000.500000 [0 127.0.0.1:4000] "client" "id"')])

    def test_multi(self):
        """MONITOR queued in MULTI fails at EXEC as Redis's DENY BLOCKING error."""
        self.call("multi")
        self.call("monitor")
        self.assertEqual(self.call("exec"),
                         [Error("ERR MONITOR isn't allowed for DENY BLOCKING client")])

    def test_redaction(self):
        """HELLO's AUTH password shows as (redacted)."""
        lines = []
        monitor = self.other()
        monitor.push = lines.append
        monitor.execute([b"monitor"])
        self.call("hello", "2", "auth", "u", "p")
        self.assertTrue(lines[0].text.endswith(b'"hello" "2" "auth" "(redacted)" "(redacted)"'))

    def test_monitor_refuses_keys(self):
        """A MONITOR client may not run key commands (checked by the serve layer)."""
        self.assertTrue(monitor.monitor_refuses(self.session, [b"get", b"k"]))
        self.assertFalse(monitor.monitor_refuses(self.session, [b"ping"]))

    def test_own_commands_after_the_reply(self):
        """A monitoring client's own command is left for the serve layer to send after its reply."""
        lines = []
        self.session.push = lines.append
        self.call("monitor")
        self.call("ping")
        self.assertEqual(lines, [])
        self.assertEqual(self.session.monitor_echo,
                         Status(b'1700000000.000000 [0 127.0.0.1:4000] "ping"'))
