"""Blocked replies over the protocol (serve/blocking.py): held until durable, requests held."""

from __future__ import annotations

from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.trial.unittest import SynchronousTestCase

from kvtwist.engine.store import Store
from kvtwist.serve.factory import KVFactory
from tests.serve.test_protocol import FakeJournal


class Journal(FakeJournal):
    """FakeJournal with the failure attribute a real Store reads."""

    failure = None


def resp(*args: bytes) -> bytes:
    out = b"*%d\r\n" % len(args)
    for arg in args:
        out += b"$%d\r\n%s\r\n" % (len(arg), arg)
    return out


class BlockedReplyTests(SynchronousTestCase):
    """Real store, fake journal whose commits the test releases, StringTransports."""

    def setUp(self):
        self.clock = Clock()
        self.journal = Journal()
        self.store = Store(self.clock, self.journal)
        self.factory = KVFactory(self.store, max_bulk=1024)

    def connect(self):
        proto = self.factory.buildProtocol(None)
        transport = StringTransport()
        proto.makeConnection(transport)
        return proto, transport

    def test_reply_waits_for_the_pop_to_be_durable(self):
        """The woken client's reply is written only once its pop is acknowledged."""
        waiter, waiter_out = self.connect()
        pusher, pusher_out = self.connect()
        waiter.dataReceived(resp(b"BLPOP", b"q", b"0"))
        self.assertEqual(waiter_out.value(), b"")
        pusher.dataReceived(resp(b"RPUSH", b"q", b"job"))
        self.assertEqual((waiter_out.value(), pusher_out.value()), (b"", b""))
        self.journal.commit()
        self.assertEqual(pusher_out.value(), b":1\r\n")
        self.assertEqual(waiter_out.value(), b"*2\r\n$1\r\nq\r\n$3\r\njob\r\n")

    def test_failed_pop_is_an_error(self):
        """When the disk refuses the pop, the client gets an error, not the element (the
        journal's rollback puts it back: tests/engine/test_blocking.py)."""
        waiter, waiter_out = self.connect()
        pusher, pusher_out = self.connect()
        pusher.dataReceived(resp(b"RPUSH", b"other", b"x"))
        self.journal.commit()
        waiter.dataReceived(resp(b"BLPOP", b"q", b"0"))
        pusher.dataReceived(resp(b"RPUSH", b"q", b"job"))
        self.journal.commit("disk full")
        self.assertTrue(waiter_out.value().startswith(b"-ERR persistence failed: disk full"))

    def test_pipelined_requests_wait_for_the_blocked_one(self):
        """Requests after a blocking one are served only once it is answered, in order."""
        waiter, waiter_out = self.connect()
        pusher, _ = self.connect()
        waiter.dataReceived(resp(b"BLPOP", b"q", b"0") + resp(b"LLEN", b"q"))
        waiter.dataReceived(resp(b"PING"))
        self.assertEqual(waiter_out.value(), b"")
        pusher.dataReceived(resp(b"RPUSH", b"q", b"a", b"b"))
        self.journal.commit()
        self.clock.advance(0)  # the held requests run in the next turn
        self.journal.commit()
        self.assertEqual(waiter_out.value(),
                         b"*2\r\n$1\r\nq\r\n$1\r\na\r\n:1\r\n+PONG\r\n")

    def test_invalidation_after_the_woken_reply(self):
        """A tracking client woken by a push hears of the key its BLMOVE changed after the
        BLMOVE's reply, as Redis 7.0 sends it (unit/tracking's unblocked BLMOVE test)."""
        waiter, waiter_out = self.connect()
        pusher, _ = self.connect()
        pusher.dataReceived(resp(b"RPUSH", b"dst", b"a"))
        waiter.dataReceived(resp(b"HELLO", b"3") + resp(b"CLIENT", b"TRACKING", b"on")
                            + resp(b"LRANGE", b"dst", b"0", b"-1"))
        self.journal.commit()
        waiter_out.clear()
        waiter.dataReceived(resp(b"BLMOVE", b"src", b"dst", b"left", b"left", b"0"))
        pusher.dataReceived(resp(b"RPUSH", b"src", b"foo"))
        self.journal.commit()
        self.assertEqual(waiter_out.value(),
                         b"$3\r\nfoo\r\n>2\r\n$10\r\ninvalidate\r\n*1\r\n$3\r\ndst\r\n")

    def test_timeout_over_the_wire(self):
        """A timed-out BLPOP answers *-1 in RESP2."""
        waiter, waiter_out = self.connect()
        waiter.dataReceived(resp(b"BLPOP", b"q", b"0.5"))
        self.clock.advance(0.5)
        self.assertEqual(waiter_out.value(), b"*-1\r\n")

    def test_disconnect_while_blocked(self):
        """A blocked client that disconnects leaves the queue; the element goes to the next."""
        first, _ = self.connect()
        second, second_out = self.connect()
        pusher, _ = self.connect()
        first.dataReceived(resp(b"BLPOP", b"q", b"0"))
        second.dataReceived(resp(b"BLPOP", b"q", b"0"))
        first.connectionLost(None)
        pusher.dataReceived(resp(b"RPUSH", b"q", b"job"))
        self.journal.commit()
        self.assertEqual(second_out.value(), b"*2\r\n$1\r\nq\r\n$3\r\njob\r\n")

    def test_text_dialect(self):
        """The text dialect blocks and answers too."""
        waiter, waiter_out = self.connect()
        pusher, _ = self.connect()
        waiter.dataReceived(b"BLPOP q 0\r\nPING\r\n")
        pusher.dataReceived(resp(b"LPUSH", b"q", b"v"))
        self.journal.commit()
        self.clock.advance(0)
        self.journal.commit()
        self.assertIn(b"v", waiter_out.value())
        self.assertIn(b"PONG", waiter_out.value())

    def test_reply_off(self):
        """Under CLIENT REPLY OFF a blocked command's reply is silenced, and the requests
        after it still run once it is served."""
        waiter, waiter_out = self.connect()
        pusher, _ = self.connect()
        waiter.dataReceived(resp(b"CLIENT", b"REPLY", b"OFF") + resp(b"BLPOP", b"q", b"0")
                            + resp(b"CLIENT", b"REPLY", b"ON") + resp(b"PING"))
        pusher.dataReceived(resp(b"RPUSH", b"q", b"v"))
        self.journal.commit()
        self.clock.advance(0)
        self.journal.commit()
        self.assertEqual(waiter_out.value(), b"+OK\r\n+PONG\r\n")
