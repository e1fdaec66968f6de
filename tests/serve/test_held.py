"""Tests for kvtwist.serve.held: CLIENT PAUSE, REPLY OFF/SKIP, KILL and MONITOR on the wire."""

from __future__ import annotations

from twisted.internet.address import IPv4Address
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.trial.unittest import SynchronousTestCase

from kvtwist.engine.store import Store
from kvtwist.serve.factory import KVFactory

START = 1700000000.0


def resp(*argv: bytes) -> bytes:
    """Encode one RESP request."""
    return b"*%d\r\n" % len(argv) + b"".join(b"$%d\r\n%s\r\n" % (len(a), a) for a in argv)


class HeldTests(SynchronousTestCase):
    """A real Store behind KVProtocol over StringTransports, on a task.Clock."""

    def setUp(self) -> None:
        self.clock = Clock()
        self.clock.advance(START)
        self.store = Store(self.clock)
        self.factory = KVFactory(self.store, reactor=self.clock)
        self.factory.outbox = None  # replies written at once: no reactor turns to run

    def connect(self, port: int = 5000):
        proto = self.factory.buildProtocol(None)
        transport = StringTransport(hostAddress=IPv4Address("TCP", "10.0.0.1", 6379),
                                    peerAddress=IPv4Address("TCP", "127.0.0.1", port))
        proto.makeConnection(transport)
        proto._write = transport.write
        proto._close = transport.loseConnection
        return proto, transport

    def test_pause_write_holds_writes_only(self) -> None:
        """During CLIENT PAUSE WRITE a write and what follows it wait; reads before it run."""
        admin, admin_out = self.connect()
        admin.dataReceived(resp(b"CLIENT", b"PAUSE", b"500", b"WRITE"))
        self.assertEqual(admin_out.value(), b"+OK\r\n")
        client, out = self.connect(5001)
        client.dataReceived(resp(b"GET", b"k") + resp(b"SET", b"k", b"v") + resp(b"GET", b"k"))
        self.assertEqual(out.value(), b"$-1\r\n")
        client.dataReceived(resp(b"PING"))  # behind the held write, in order
        self.assertEqual(out.value(), b"$-1\r\n")
        self.clock.advance(0.5)
        self.assertEqual(out.value(), b"$-1\r\n+OK\r\n$1\r\nv\r\n+PONG\r\n")
        self.assertIsNone(self.store.pause_mode)

    def test_pause_all_and_unpause(self) -> None:
        """PAUSE ALL holds reads too (the caller's next commands included); UNPAUSE frees them."""
        admin, admin_out = self.connect()
        admin.dataReceived(resp(b"CLIENT", b"PAUSE", b"100000") + resp(b"PING"))
        self.assertEqual(admin_out.value(), b"+OK\r\n")
        other, other_out = self.connect(5001)
        other.dataReceived(b"*1\r\n$4\r\nPING\r\n")
        self.assertEqual(other_out.value(), b"")
        self.store.pause_mode = None  # as CLIENT UNPAUSE from a third client
        self.store.hooks.paused(self.store)
        self.assertEqual(admin_out.value(), b"+OK\r\n+PONG\r\n")
        self.assertEqual(other_out.value(), b"+PONG\r\n")

    def test_reply_off_skip_on(self) -> None:
        """REPLY OFF silences until ON; SKIP silences one reply; all in one read, as Redis."""
        proto, out = self.connect()
        proto.dataReceived(resp(b"CLIENT", b"REPLY", b"OFF") + resp(b"PING", b"a")
                           + resp(b"CLIENT", b"REPLY", b"ON") + resp(b"PING", b"b")
                           + resp(b"CLIENT", b"REPLY", b"SKIP") + resp(b"PING", b"c")
                           + resp(b"PING", b"d"))
        self.assertEqual(out.value(), b"+OK\r\n$1\r\nb\r\n$1\r\nd\r\n")

    def test_reply_off_keeps_pubsub_pushes(self) -> None:
        """With REPLY OFF, SUBSCRIBE's confirmation and messages still arrive (RESP3 pushes)."""
        proto, out = self.connect()
        proto.dataReceived(resp(b"HELLO", b"3"))
        out.clear()
        proto.dataReceived(resp(b"CLIENT", b"REPLY", b"OFF") + resp(b"SUBSCRIBE", b"ch")
                           + resp(b"PING"))
        publisher, _ = self.connect(5002)
        publisher.dataReceived(resp(b"PUBLISH", b"ch", b"hi"))
        self.assertEqual(out.value(), b">3\r\n$9\r\nsubscribe\r\n$2\r\nch\r\n:1\r\n"
                                      b">3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$2\r\nhi\r\n")

    def test_kill_other_after_pending_replies(self) -> None:
        """CLIENT KILL closes another connection, its replies written first."""
        victim, victim_out = self.connect(5001)
        victim.dataReceived(resp(b"PING"))
        killer, killer_out = self.connect()
        killer.dataReceived(resp(b"CLIENT", b"KILL", b"127.0.0.1:5001"))
        self.assertEqual(killer_out.value(), b"+OK\r\n")
        self.assertEqual(victim_out.value(), b"+PONG\r\n")
        self.assertTrue(victim_out.disconnecting)
        victim.dataReceived(resp(b"PING"))  # nothing more is served
        self.assertEqual(victim_out.value(), b"+PONG\r\n")

    def test_kill_self(self) -> None:
        """Killing yourself answers, then closes; later pipelined commands do not run."""
        proto, out = self.connect()
        proto.dataReceived(resp(b"CLIENT", b"KILL", b"SKIPME", b"NO") + resp(b"SET", b"k", b"v"))
        self.assertEqual(out.value(), b":1\r\n")
        self.assertTrue(out.disconnecting)
        self.assertIsNone(self.store.keyspace.get(b"k"))

    def test_monitor(self) -> None:
        """A MONITOR client sees others' commands and may not touch keys itself."""
        monitor, monitor_out = self.connect()
        monitor.dataReceived(b"MONITOR\r\nGET k\r\nPING\r\n")
        client, _ = self.connect(5001)
        client.dataReceived(resp(b"SET", b"k", b"v"))
        self.assertEqual(monitor_out.value(),
                         b"OK\r\n(error) ERR Replica can't interact with the keyspace\r\n"
                         b"PONG\r\n"
                         b'1700000000.000000 [0 127.0.0.1:5000] "PING"\r\n'
                         b'1700000000.000000 [0 127.0.0.1:5001] "SET" "k" "v"\r\n')

    def test_inline_replies_resp(self) -> None:
        """With inline-replies resp an inline client gets redis-server's RESP bytes."""
        self.store.config["inline-replies"] = "resp"
        proto, out = self.connect()
        proto.dataReceived(b'\r\nPING\r\nECHO "a\\x41"\r\n*1\r\n$4\r\nPING\r\nGET nokey\r\n')
        self.assertEqual(out.value(), b"+PONG\r\n$2\r\naA\r\n+PONG\r\n$-1\r\n")
        proto.dataReceived(b'"unbalanced\r\n')
        self.assertTrue(out.value().endswith(
            b"-ERR Protocol error: unbalanced quotes in request\r\n"))
        self.assertTrue(out.disconnecting)

    def test_inline_replies_text_default(self) -> None:
        """By default an inline client gets the readable text replies."""
        proto, out = self.connect()
        proto.dataReceived(b"PING\r\n")
        self.assertEqual(out.value(), b"PONG\r\n")

    def test_client_list_connection_fields(self) -> None:
        """CLIENT LIST shows the connection's local address and idle time set by the protocol."""
        proto, out = self.connect()
        self.clock.advance(3)
        other, other_out = self.connect(5001)
        other.dataReceived(resp(b"CLIENT", b"LIST", b"ID", b"1"))
        self.assertIn(b" laddr=10.0.0.1:6379 fd=-1 name= age=3 idle=3 ", other_out.value())

    def test_killed_while_held(self) -> None:
        """A client killed while its requests are held is dropped from the waiting set."""
        admin, _ = self.connect()
        admin.dataReceived(resp(b"CLIENT", b"PAUSE", b"1000"))
        victim, victim_out = self.connect(5001)
        victim.dataReceived(resp(b"PING"))
        self.assertEqual(len(self.store.hooks.waiting), 1)
        victim._disconnect()
        self.clock.advance(1)
        self.assertEqual(self.store.hooks.waiting, set())
        self.assertEqual(victim_out.value(), b"")

    def test_reset_ends_monitor_and_reply_off(self) -> None:
        """RESET turns replies back on and ends MONITOR, as Redis's."""
        proto, out = self.connect()
        proto.dataReceived(b"MONITOR\r\nCLIENT REPLY OFF\r\nRESET\r\nGET k\r\n")
        self.assertEqual(out.value(), b"OK\r\nRESET\r\n(nil)\r\n")
        self.assertEqual(self.store.monitors, [])
