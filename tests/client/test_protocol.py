"""Tests for kvtwist.client.protocol: pipelining, batching, disconnects, timeouts, pub/sub."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from twisted.internet import defer
from twisted.internet.error import ConnectionDone, ConnectionLost
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.python import failure
from twisted.trial import unittest

from kvtwist import client
from kvtwist.wire import respreply
from kvtwist.wire.replies import Error, Status, to_resp


class CountingTransport(StringTransport):
    """A StringTransport that also counts write calls."""

    def __init__(self):
        StringTransport.__init__(self)
        self.writes = 0

        self.aborted = False

    def write(self, data):
        self.writes += 1
        StringTransport.write(self, data)

    def abortConnection(self):
        self.aborted = True
        StringTransport.abortConnection(self)


def connected(timeout=None):
    """Return (client, transport, clock) with the client connected to a fake transport."""
    clock = Clock()
    proto = client.KVClient(clock, timeout)
    transport = CountingTransport()
    proto.makeConnection(transport)
    return proto, transport, clock


def _keep(result, box):
    box.append(result)
    return result


def results(deferreds):
    """Return what each Deferred delivered: a value, or the Failure."""
    out = []
    for d in deferreds:
        box = []
        d.addBoth(_keep, box)
        out.append(box[0] if box else "pending")
    return out


class PipeliningTests(unittest.SynchronousTestCase):
    """Requests are batched into one write and replies matched in order."""

    def test_one_write_per_turn(self):
        """Commands issued in one reactor turn go out together in a single write."""
        proto, transport, clock = connected()
        proto.execute(b"SET", b"k", b"v")
        proto.execute(b"GET", b"k")
        proto.execute("INCR", "n")
        self.assertEqual(transport.value(), b"")
        clock.advance(0)
        self.assertEqual(transport.writes, 1)
        self.assertEqual(transport.value(), respreply.encode_command([b"SET", b"k", b"v"])
                         + respreply.encode_command([b"GET", b"k"])
                         + respreply.encode_command([b"INCR", b"n"]))

    def test_flush_writes_sends_now(self):
        """flush_writes sends queued commands immediately and cancels the end-of-turn write."""
        proto, transport, clock = connected()
        proto.execute(b"PING")
        proto.flush_writes()
        self.assertEqual(transport.value(), b"*1\r\n$4\r\nPING\r\n")
        self.assertEqual(clock.getDelayedCalls(), [])

    def test_replies_in_order(self):
        """Pipelined replies arriving in one chunk fire each Deferred with its own reply."""
        proto, transport, clock = connected()
        ds = [proto.execute(b"GET", b"a"), proto.execute(b"GET", b"b"),
              proto.execute(b"INCR", b"c"), proto.execute(b"MGET", b"a", b"b")]
        proto.dataReceived(b"$1\r\n1\r\n$-1\r\n:7\r\n*2\r\n$1\r\n1\r\n$-1\r\n")
        self.assertEqual(results(ds), [b"1", None, 7, [b"1", None]])

    def test_replies_byte_at_a_time(self):
        """Replies fed one byte at a time fire nothing early and everything in order."""
        proto, transport, clock = connected()
        ds = [proto.execute(b"GET", b"a"), proto.execute(b"PING")]
        data = b"$5\r\nhello\r\n+PONG\r\n"
        fired = []
        ds[0].addCallback(lambda v: fired.append(v) or v)
        for i in range(len(data)):
            proto.dataReceived(data[i:i + 1])
            if i < len(b"$5\r\nhello\r\n") - 1:
                self.assertEqual(fired, [])
        self.assertEqual(results(ds), [b"hello", Status(b"PONG")])

    def test_trailing_bytes_wait(self):
        """Bytes of a partial next reply stay buffered until the rest arrives."""
        proto, transport, clock = connected()
        ds = [proto.execute(b"GET", b"a"), proto.execute(b"GET", b"b")]
        proto.dataReceived(b"$1\r\nx\r\n$3\r\nab")
        self.assertEqual(results([ds[0]]), [b"x"])
        self.assertEqual(results([ds[1]]), ["pending"])
        proto.dataReceived(b"c\r\n")
        self.assertEqual(results([ds[1]]), [b"abc"])

    def test_error_reply(self):
        """An error reply fails its Deferred with ReplyError and later requests still work."""
        proto, transport, clock = connected()
        d1 = proto.execute(b"INCR", b"s")
        d2 = proto.execute(b"GET", b"s")
        proto.dataReceived(b"-ERR value is not an integer\r\n$1\r\ns\r\n")
        exc = self.failureResultOf(d1, client.ReplyError).value
        self.assertEqual(exc.message, "ERR value is not an integer")
        self.assertEqual(exc.reply, Error("ERR value is not an integer"))
        self.assertEqual(self.successResultOf(d2), b"s")

    def test_request_keeps_errors_as_values(self):
        """request() delivers an error reply as an Error value, for proxies relaying it."""
        proto, transport, clock = connected()
        d = proto.request([b"BOGUS"])
        proto.dataReceived(b"-ERR unknown command\r\n")
        self.assertEqual(self.successResultOf(d), Error("ERR unknown command"))

    def test_bad_argument_type(self):
        """An argument that cannot be encoded fails the call without sending anything."""
        proto, transport, clock = connected()
        self.failureResultOf(proto.execute(b"SET", b"k", object()), TypeError)
        clock.advance(0)
        self.assertEqual(transport.value(), b"")

    @settings(max_examples=60, deadline=None)
    @given(st.lists(st.one_of(st.binary(max_size=20), st.none(), st.integers(-2**63, 2**63 - 1),
                              st.lists(st.one_of(st.binary(max_size=5), st.none()), max_size=4)),
                    min_size=1, max_size=12),
           st.integers(min_value=1, max_value=17))
    def test_round_trip_any_split(self, replies, chunk):
        """Any sequence of replies, cut into chunks of any size, reaches the requests in order."""
        proto, transport, clock = connected()
        ds = [proto.execute(b"GET", b"%d" % i) for i in range(len(replies))]
        data = b"".join(to_resp(r) for r in replies)
        for start in range(0, len(data), chunk):
            proto.dataReceived(data[start:start + chunk])
        self.assertEqual(results(ds), replies)


class LargeArgumentTests(unittest.SynchronousTestCase):
    """A request with a large argument sends that argument as a write of its own."""

    def test_large_value_written_uncopied(self):
        """A 2 MB SET between two small requests: the bytes on the wire are the three
        requests in order, and the value object itself is handed to the transport."""
        proto, transport, clock = connected()
        handed = []
        write = transport.write
        transport.write = lambda data: handed.append(data) or write(data)
        big = b"v" * (respreply.LARGE_ARG + 1)
        proto.execute(b"PING")
        proto.execute(b"SET", b"k", big)
        proto.execute(b"GET", b"k")
        clock.advance(0)
        self.assertTrue(any(data is big for data in handed))
        self.assertEqual(transport.value(), respreply.encode_command([b"PING"])
                         + respreply.encode_command([b"SET", b"k", big])
                         + respreply.encode_command([b"GET", b"k"]))
        proto.execute(b"GET", b"k")
        clock.advance(0)
        self.assertEqual(handed[-1], respreply.encode_command([b"GET", b"k"]))


class DisconnectTests(unittest.SynchronousTestCase):
    """Every pending request fails clearly when the connection goes."""

    def test_pending_fail_on_disconnect(self):
        """All pending Deferreds fail with ClientDisconnected naming the lost connection."""
        proto, transport, clock = connected()
        ds = [proto.execute(b"GET", b"a"), proto.execute(b"GET", b"b")]
        proto.dataReceived(b"$1\r\n1\r\n")
        proto.connectionLost(failure.Failure(ConnectionLost("reset by peer")))
        self.assertEqual(self.successResultOf(ds[0]), b"1")
        exc = self.failureResultOf(ds[1], client.ClientDisconnected).value
        self.assertIn("lost", str(exc))
        self.assertIn("request not answered", str(exc))

    def test_disconnected_deferreds(self):
        """disconnected and every when_disconnected() Deferred fire with the reason."""
        proto, transport, clock = connected()
        early = [proto.when_disconnected(), proto.when_disconnected()]
        proto.connectionLost(failure.Failure(ConnectionDone()))
        late = proto.when_disconnected()
        for d in early + [late, proto.disconnected]:
            self.assertIsInstance(self.successResultOf(d), ConnectionDone)
        self.assertFalse(proto.is_connected)

    def test_execute_after_disconnect(self):
        """A request made after the connection closed fails at once."""
        proto, transport, clock = connected()
        proto.connectionLost(failure.Failure(ConnectionDone()))
        exc = self.failureResultOf(proto.get(b"k"), client.ClientDisconnected).value
        self.assertIn("closed by the server", str(exc))

    def test_unsent_writes_dropped(self):
        """Commands queued but not yet written are failed, and the pending write is cancelled."""
        proto, transport, clock = connected()
        d = proto.execute(b"PING")
        proto.connectionLost(failure.Failure(ConnectionDone()))
        self.failureResultOf(d, client.ClientDisconnected)
        self.assertEqual(clock.getDelayedCalls(), [])

    def test_close(self):
        """close() sends what is queued, closes the transport and fires once closed."""
        proto, transport, clock = connected()
        ping = proto.execute(b"PING")
        d = proto.close()
        self.assertEqual(transport.value(), b"*1\r\n$4\r\nPING\r\n")
        self.assertTrue(transport.disconnecting)
        self.assertNoResult(d)
        proto.connectionLost(failure.Failure(ConnectionDone()))
        self.successResultOf(d)
        self.failureResultOf(ping, client.ClientDisconnected)

    def test_invalid_resp_from_server(self):
        """Bytes that are not RESP fail the pending requests and abort the connection."""
        proto, transport, clock = connected()
        d = proto.execute(b"GET", b"a")
        proto.dataReceived(b"?what\r\n")
        exc = self.failureResultOf(d, client.ClientDisconnected).value
        self.assertIn("invalid RESP", str(exc))
        self.assertTrue(transport.aborted)

    def test_unrequested_reply(self):
        """A reply with no request waiting aborts the connection."""
        proto, transport, clock = connected()
        proto.dataReceived(b"+OK\r\n")
        self.assertTrue(transport.aborted)
        self.failureResultOf(proto.execute(b"PING"), client.ClientDisconnected)


class TimeoutTests(unittest.SynchronousTestCase):
    """A request timeout fails the request and closes the connection."""

    def test_timeout_fails_request_and_rest(self):
        """On timeout: RequestTimeout for it, ClientDisconnected for the rest, link closed."""
        proto, transport, clock = connected()
        slow = proto.execute(b"GET", b"a", timeout=5)
        other = proto.execute(b"GET", b"b")
        clock.advance(4.9)
        self.assertNoResult(slow)
        clock.advance(0.2)
        exc = self.failureResultOf(slow, client.RequestTimeout).value
        self.assertIn("GET", str(exc))
        lost = self.failureResultOf(other, client.ClientDisconnected).value
        self.assertIn("timed out", str(lost))
        self.assertTrue(transport.aborted)
        self.failureResultOf(proto.execute(b"PING"), client.ClientDisconnected)

    def test_reply_cancels_timer(self):
        """A reply in time cancels its timer, leaving no delayed call behind."""
        proto, transport, clock = connected()
        d = proto.execute(b"PING", timeout=5)
        clock.advance(0)
        proto.dataReceived(b"+PONG\r\n")
        self.assertEqual(self.successResultOf(d), Status(b"PONG"))
        self.assertEqual(clock.getDelayedCalls(), [])

    def test_default_timeout(self):
        """The client's default timeout applies to requests that give none."""
        proto, transport, clock = connected(timeout=2)
        d = proto.get(b"k")
        clock.advance(2)
        self.failureResultOf(d, client.RequestTimeout)

    def test_late_connection_loss_after_timeout(self):
        """connectionLost after a timeout does not fail anything twice."""
        proto, transport, clock = connected()
        d = proto.execute(b"GET", b"a", timeout=1)
        clock.advance(1)
        self.failureResultOf(d, client.RequestTimeout)
        proto.connectionLost(failure.Failure(ConnectionDone()))
        self.assertIsInstance(self.successResultOf(proto.disconnected), ConnectionDone)

    def test_cancel_keeps_order(self):
        """A cancelled request's late reply is discarded; the next request gets its own."""
        proto, transport, clock = connected()
        first = proto.execute(b"GET", b"a", timeout=5)
        second = proto.execute(b"GET", b"b")
        first.cancel()
        self.failureResultOf(first, defer.CancelledError)
        proto.dataReceived(b"$1\r\nA\r\n$1\r\nB\r\n")
        self.assertEqual(self.successResultOf(second), b"B")
        self.assertFalse(transport.aborted)
        clock.advance(0)
        self.assertEqual(clock.getDelayedCalls(), [])


class PubSubTests(unittest.SynchronousTestCase):
    """Pub/sub messages go to push handlers, never to pending requests."""

    def test_subscribe_and_push(self):
        """SUBSCRIBE fires with all confirmations; messages then reach on_push handlers."""
        proto, transport, clock = connected()
        pushed = []
        proto.on_push(pushed.append)
        d = proto.subscribe(b"a", b"b")
        proto.dataReceived(b"*3\r\n$9\r\nsubscribe\r\n$1\r\na\r\n:1\r\n")
        self.assertNoResult(d)
        proto.dataReceived(b"*3\r\n$9\r\nsubscribe\r\n$1\r\nb\r\n:2\r\n"
                           b"*3\r\n$7\r\nmessage\r\n$1\r\na\r\n$2\r\nhi\r\n")
        self.assertEqual(self.successResultOf(d),
                         [[b"subscribe", b"a", 1], [b"subscribe", b"b", 2]])
        self.assertEqual(pushed, [[b"message", b"a", b"hi"]])
        self.assertTrue(proto.subscribed)

    def test_message_between_requests(self):
        """A message arriving before a pending reply is pushed, and the reply still matches."""
        proto, transport, clock = connected()
        pushed = []
        proto.on_push(pushed.append)
        proto.subscribe(b"a")
        proto.dataReceived(b"*3\r\n$9\r\nsubscribe\r\n$1\r\na\r\n:1\r\n")
        d = proto.execute(b"PING")
        proto.dataReceived(b"*3\r\n$7\r\nmessage\r\n$1\r\na\r\n$1\r\nx\r\n"
                           b"*2\r\n$4\r\npong\r\n$0\r\n\r\n")
        self.assertEqual(pushed, [[b"message", b"a", b"x"]])
        self.assertEqual(self.successResultOf(d), [b"pong", b""])

    def test_unsubscribe_all(self):
        """UNSUBSCRIBE without channels waits for one confirmation per subscribed channel."""
        proto, transport, clock = connected()
        proto.subscribe(b"a", b"b")
        proto.dataReceived(b"*3\r\n$9\r\nsubscribe\r\n$1\r\na\r\n:1\r\n"
                           b"*3\r\n$9\r\nsubscribe\r\n$1\r\nb\r\n:2\r\n")
        d = proto.unsubscribe()
        proto.dataReceived(b"*3\r\n$11\r\nunsubscribe\r\n$1\r\na\r\n:1\r\n")
        self.assertNoResult(d)
        proto.dataReceived(b"*3\r\n$11\r\nunsubscribe\r\n$1\r\nb\r\n:0\r\n")
        self.assertEqual(len(self.successResultOf(d)), 2)
        self.assertFalse(proto.subscribed)

    def test_message_shape_not_pushed_when_not_subscribed(self):
        """Without a subscription, an array starting with "message" is an ordinary reply."""
        proto, transport, clock = connected()
        pushed = []
        proto.on_push(pushed.append)
        d = proto.execute(b"LRANGE", b"l", 0, -1)
        proto.dataReceived(b"*2\r\n$7\r\nmessage\r\n$1\r\nx\r\n")
        self.assertEqual(self.successResultOf(d), [b"message", b"x"])
        self.assertEqual(pushed, [])

    def test_failing_push_handler(self):
        """A push handler that raises is logged and does not break the connection."""
        proto, transport, clock = connected()
        got = []

        def broken(message):
            raise RuntimeError("handler bug")
        proto.on_push(broken)
        proto.on_push(got.append)
        proto.subscribe(b"a")
        proto.dataReceived(b"*3\r\n$9\r\nsubscribe\r\n$1\r\na\r\n:1\r\n"
                           b"*3\r\n$7\r\nmessage\r\n$1\r\na\r\n$1\r\nx\r\n")
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 1)
        self.assertEqual(got, [[b"message", b"a", b"x"]])
        self.assertFalse(transport.aborted)


def marker_of(transport) -> bytes:
    """Return the token of the last ECHO marker the client wrote to ``transport``."""
    from kvtwist.wire.resp import RequestParser
    parser = RequestParser()
    parser.feed(transport.value())
    token = None
    while True:
        argv = parser.next_request()
        if argv is None:
            return token
        if argv[0] == b"ECHO":
            token = argv[1]


class UnexpectedReplyTests(unittest.SynchronousTestCase):
    """A reply that fits no request closes the connection instead of reaching a request."""

    def test_extra_reply_after_checked_request(self):
        """A checked request answered twice: the extra reply reaches no later request."""
        proto, transport, clock = connected()
        twice = proto.request([b"FOO"], checked=True)
        later = proto.request([b"GET", b"k"])
        clock.advance(0)
        proto.dataReceived(b"+first\r\n+second\r\n")
        self.assertEqual(self.successResultOf(twice), Status(b"first"))
        exc = self.failureResultOf(later, client.UnexpectedReply).value
        self.assertIn("FOO", str(exc))
        self.assertTrue(transport.aborted)
        self.assertFalse(proto.is_connected)

    def test_missing_reply_to_checked_request(self):
        """A checked request answered not at all fails instead of taking the next reply."""
        proto, transport, clock = connected()
        silent = proto.request([b"FOO"], checked=True)
        later = proto.request([b"GET", b"k"])
        clock.advance(0)
        token = marker_of(transport)
        proto.dataReceived(b"$%d\r\n%s\r\n$1\r\nv\r\n" % (len(token), token))
        self.failureResultOf(silent, client.UnexpectedReply)
        self.failureResultOf(later, client.UnexpectedReply)
        self.assertTrue(transport.aborted)

    def test_checked_request_answered_once(self):
        """A checked request answered once gets its reply; the marker's reply is consumed."""
        proto, transport, clock = connected()
        once = proto.request([b"FOO"], checked=True)
        later = proto.request([b"GET", b"k"])
        clock.advance(0)
        token = marker_of(transport)
        proto.dataReceived(b"+done\r\n$%d\r\n%s\r\n$1\r\nv\r\n" % (len(token), token))
        self.assertEqual(results([once, later]), [Status(b"done"), b"v"])
        self.assertFalse(transport.aborted)
        self.assertEqual(clock.getDelayedCalls(), [])

    def test_markers_differ(self):
        """Each checked request carries a marker of its own."""
        proto, transport, clock = connected()
        proto.request([b"FOO"], checked=True)
        clock.advance(0)
        first = marker_of(transport)
        proto.request([b"FOO"], checked=True)
        clock.advance(0)
        self.assertNotEqual(marker_of(transport), first)

    def test_reply_of_wrong_shape(self):
        """A reply its request's check rejects fails every pending request and closes."""
        proto, transport, clock = connected()
        fetch = proto.request([b"GET", b"k"], check=lambda reply: reply.__class__ is bytes)
        later = proto.request([b"GET", b"j"])
        proto.dataReceived(b":1\r\n$1\r\nv\r\n")
        exc = self.failureResultOf(fetch, client.UnexpectedReply).value
        self.assertIn("GET", str(exc))
        self.failureResultOf(later, client.UnexpectedReply)
        self.assertTrue(transport.aborted)

    def test_unrequested_reply_is_unexpected(self):
        """A reply with nothing pending is an UnexpectedReply too."""
        proto, transport, clock = connected()
        proto.dataReceived(b"+OK\r\n")
        self.failureResultOf(proto.execute(b"PING"), client.UnexpectedReply)


class DepthTests(unittest.SynchronousTestCase):
    """A client given max_depth delivers deeper replies as its too_deep value."""

    def test_too_deep_reply(self):
        """A reply nested past max_depth reaches its request as an Error; the next is intact."""
        proto = client.KVClient(Clock(), None, 2)
        proto.makeConnection(CountingTransport())
        deep = proto.request([b"EVAL", b"x", b"0"])
        later = proto.execute(b"GET", b"k")
        proto.dataReceived(b"*1\r\n*1\r\n*1\r\n:1\r\n$1\r\nv\r\n")
        self.assertEqual(results([deep, later]),
                         [Error("ERR reply nested deeper than 2 arrays"), b"v"])


class NotAnsweredTests(unittest.SynchronousTestCase):
    """Requests behind a timed-out one fail with NotAnswered, which says they may have run."""

    def test_behind_a_timeout(self):
        """Only the late request times out; the others are NotAnswered, naming it."""
        proto, transport, clock = connected()
        slow = proto.execute(b"KEYS", b"*", timeout=5)
        behind = [proto.execute(b"SET", b"k", b"v"), proto.request([b"GET", b"k"])]
        clock.advance(5)
        self.failureResultOf(slow, client.RequestTimeout)
        for d in behind:
            exc = self.failureResultOf(d, client.NotAnswered).value
            self.assertIn("KEYS ahead of it", str(exc))
            self.assertIn("may have run", str(exc))
