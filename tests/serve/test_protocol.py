"""Tests for kvtwist.serve.protocol: dialect detection, pipelining, durability gating, bad input."""

from __future__ import annotations

import json
import shutil
import tempfile

from twisted.internet import protocol, reactor
from twisted.internet.defer import Deferred, inlineCallbacks
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.trial.unittest import SynchronousTestCase, TestCase

from kvtwist.engine.dump import cmd_dump
from kvtwist.engine.keys import cmd_keys
from kvtwist.wire import jsonlines
from kvtwist.wire.replies import OK, Error, Pairs, Status, to_resp, to_resp3
from kvtwist.wire.textreply import to_text
from kvtwist.engine.store import Store
from kvtwist.serve.factory import KVFactory
from kvtwist.serve.protocol import HIGH_WATER
from kvtwist.wire.replies import BULK_SLICE


class FakeJournal:
    """A journal whose commits complete only when a test says so."""

    def __init__(self) -> None:
        self.appended = 0
        self.acked = 0
        self.failed = {}
        self.waiters = []
        self.release_hooks = []

    def append(self, effect) -> None:
        self.appended += 1

    def on_acked(self, seq: int, callback, arg) -> None:
        self.waiters.append((seq, callback, arg))

    def commit(self, fail_reason=None) -> None:
        """Acknowledge everything appended so far (or fail it with a reason)."""
        if fail_reason is not None:
            for seq in range(self.acked + 1, self.appended + 1):
                self.failed[seq] = fail_reason
        else:
            self.acked = self.appended  # as the real journal: acked means durable
        for hook in self.release_hooks:  # as the real journal: before the waiters
            hook()
        waiters, self.waiters = self.waiters, []
        for _seq, callback, arg in waiters:
            callback(self.failed.get, arg)


class FakeKeyspace:
    """What DUMP and KEYS read of a keyspace, over a plain dict with no expiry."""

    typed_keys = False  # strings only

    def __init__(self, data: dict) -> None:
        self.data = data

    def live_keys(self) -> list:
        return list(self.data)

    def keys(self, pattern: bytes) -> list:
        return list(self.data)


class FakeSession:
    """A session over a dict, implementing just enough commands to drive the protocol."""

    def __init__(self, store) -> None:
        self.store = store
        self.keyspace = FakeKeyspace(store.data)
        self.closing = False
        self.push = None
        self.after_reply = []

    def execute(self, argv):
        name = argv[0].upper()
        if name == b"GET":
            return self.store.data.get(argv[1])
        if name == b"SET":
            self.store.data[argv[1]] = argv[2]
            self.store.journal.append(("set",))
            return OK
        if name == b"SLOWGET":
            d = Deferred()
            self.store.slow.append((d, self.store.data.get(argv[1])))
            return d
        if name == b"QUIT":
            self.closing = True
            return OK
        if name == b"PING":
            return Status(b"PONG")
        if name == b"DUMP":  # the real handlers, over the dict
            return cmd_dump(self, argv)
        if name == b"KEYS":
            return cmd_keys(self, argv)
        return Error("ERR unknown command '%s'" % argv[0].decode())


class FakeStore:
    def __init__(self) -> None:
        self.data = {}
        self.journal = FakeJournal()
        self.journal.appended = self.journal.acked = 0
        self.sessions = []
        self.dropped = []
        self.slow = []

    def new_session(self, peer):
        session = FakeSession(self)
        self.sessions.append(session)
        return session

    def drop_session(self, session):
        self.dropped.append(session)


class ProtocolTests(SynchronousTestCase):
    """The protocol over StringTransport with a fake store and journal."""

    def setUp(self) -> None:
        self.store = FakeStore()
        self.journal = self.store.journal
        self.factory = KVFactory(self.store, max_bulk=1024)

    def connect(self):
        proto = self.factory.buildProtocol(None)
        transport = StringTransport()
        proto.makeConnection(transport)
        return proto, transport

    def ack_all(self) -> None:
        self.journal.commit()

    def test_resp_dialect(self) -> None:
        """A connection whose first byte is * gets RESP2 replies."""
        proto, transport = self.connect()
        proto.dataReceived(b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$2\r\nv1\r\n")
        self.ack_all()
        proto.dataReceived(b"*2\r\n$3\r\nGET\r\n$1\r\nk\r\n*2\r\n$3\r\nGET\r\n$1\r\nx\r\n")
        self.assertEqual(transport.value(), b"+OK\r\n$2\r\nv1\r\n$-1\r\n")

    def test_text_dialect(self) -> None:
        """A telnet user gets redis-cli style replies, with CRLF or bare LF line ends."""
        proto, transport = self.connect()
        proto.dataReceived(b'SET greeting "hello world"\r\n')
        self.ack_all()
        proto.dataReceived(b"GET greeting\nGET nothing\r\nPING\n")
        self.assertEqual(transport.value(), b'OK\r\n"hello world"\r\n(nil)\r\nPONG\r\n')

    def test_json_dialect(self) -> None:
        """A connection whose first byte is { speaks one JSON object per line."""
        proto, transport = self.connect()
        proto.dataReceived(b'{"type": "SET", "key": "a", "value": "1"}\n')
        self.ack_all()
        proto.dataReceived(b'{"type": "GET", "key": "a"}\n{"type": "GET", "key": "b"}\n')
        lines = transport.value().splitlines()
        self.assertEqual([json.loads(line) for line in lines], ["OK", "1", None])

    def test_json_error_keeps_connection(self) -> None:
        """Invalid JSON gets an error object and later requests are still served."""
        proto, transport = self.connect()
        proto.dataReceived(b'{"type": "GET", "key": "a"}\n{not json\n{"type": "GET", "key": "a"}\n')
        lines = [json.loads(line) for line in transport.value().splitlines()]
        self.assertEqual(lines[0], None)
        self.assertIn("error", lines[1])
        self.assertEqual(lines[2], None)
        self.assertFalse(transport.disconnecting)

    def test_json_duplicate_key_keeps_connection(self) -> None:
        """A JSON line with a duplicate key gets an error object and the session goes on."""
        proto, transport = self.connect()
        proto.dataReceived(b'{"type": "GET", "key": "a", "key": "b"}\n{"type": "PING"}\n')
        self.assertEqual(transport.value(),
                         b'{"error":"ERR invalid JSON: duplicate key \'key\'"}\n"PONG"\n')
        self.assertFalse(transport.disconnecting)

    def test_pipelined_replies_in_one_write(self) -> None:
        """All replies produced by one read go out in a single transport write."""
        proto, transport = self.connect()
        writes = []
        transport.write = writes.append
        proto.dataReceived(b"*1\r\n$4\r\nPING\r\n" * 5)
        self.assertEqual(writes, [b"+PONG\r\n" * 5])

    def test_request_split_across_reads(self) -> None:
        """A request arriving one byte at a time is answered once, when complete."""
        proto, transport = self.connect()
        request = b"*2\r\n$3\r\nGET\r\n$3\r\nkey\r\n"
        for i in range(len(request)):
            proto.dataReceived(request[i:i + 1])
            if i < len(request) - 1:
                self.assertEqual(transport.value(), b"")
        self.assertEqual(transport.value(), b"$-1\r\n")

    def test_write_reply_waits_for_journal(self) -> None:
        """A write's reply is held until the journal acknowledges the write."""
        proto, transport = self.connect()
        proto.dataReceived(b"SET k v\r\n")
        self.assertEqual(transport.value(), b"")
        self.journal.commit()
        self.assertEqual(transport.value(), b"OK\r\n")

    def test_reader_waits_for_other_clients_write(self) -> None:
        """No client sees a value before the write that made it is durable."""
        writer, _ = self.connect()
        reader, reader_transport = self.connect()
        writer.dataReceived(b"SET k v\r\n")
        reader.dataReceived(b"GET k\r\n")
        self.assertEqual(reader_transport.value(), b"")
        self.journal.commit()
        self.assertEqual(reader_transport.value(), b'"v"\r\n')

    def test_ping_does_not_wait_for_other_clients_write(self) -> None:
        """PINGs reveal no data: another client's pending write does not hold their replies.

        Before, every reply waited for every pending write: a 512 MB SET being made durable
        held all clients' PINGs for seconds.
        """
        writer, _ = self.connect()
        pinger, pinger_transport = self.connect()
        writer.dataReceived(b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\nv\r\n")
        pinger.dataReceived(b"*1\r\n$4\r\nPING\r\n*2\r\n$4\r\nping\r\n$2\r\nhi\r\n")
        self.assertEqual(pinger_transport.value(), b"+PONG\r\n+PONG\r\n")

    def test_ping_beside_a_read_waits(self) -> None:
        """A PING read together with a GET waits, as the GET may show the pending write."""
        writer, _ = self.connect()
        reader, reader_transport = self.connect()
        writer.dataReceived(b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\nv\r\n")
        reader.dataReceived(b"*1\r\n$4\r\nPING\r\n*2\r\n$3\r\nGET\r\n$1\r\nk\r\n")
        self.assertEqual(reader_transport.value(), b"")
        self.journal.commit()
        self.assertEqual(reader_transport.value(), b"+PONG\r\n$1\r\nv\r\n")

    def test_ping_after_own_write_waits_its_turn(self) -> None:
        """A PING behind its own client's pending write is answered after that write's reply."""
        proto, transport = self.connect()
        proto.dataReceived(b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\nv\r\n")
        proto.dataReceived(b"*1\r\n$4\r\nPING\r\n")
        self.assertEqual(transport.value(), b"")
        self.journal.commit()
        self.assertEqual(transport.value(), b"+OK\r\n+PONG\r\n")

    def test_replies_stay_in_order_across_gates(self) -> None:
        """A read sent after a pending write is answered after it, not before."""
        proto, transport = self.connect()
        proto.dataReceived(b"SET k v\r\n")
        self.journal.commit()
        proto.dataReceived(b"SET k w\r\n")
        proto.dataReceived(b"PING\r\n")
        self.assertEqual(transport.value(), b"OK\r\n")
        self.journal.commit()
        self.assertEqual(transport.value(), b"OK\r\nOK\r\nPONG\r\n")

    def test_failed_persistence_turns_write_reply_into_error(self) -> None:
        """When the journal cannot persist a write, its reply and the read's beside it are errors.

        The read in the same chunk may have seen the write that was rolled back, so it is
        refused too (before: "+PONG" went out and a GET there would show the lost value).
        """
        proto, transport = self.connect()
        proto.dataReceived(b"*1\r\n$4\r\nPING\r\n*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\nv\r\n")
        self.journal.commit(fail_reason="No space left on device")
        self.assertEqual(
            transport.value(),
            b"-ERR persistence failed: No space left on device; this reply may have seen writes "
            b"that were rolled back\r\n-ERR persistence failed: No space left on device\r\n")

    def test_quit_replies_then_closes(self) -> None:
        """QUIT is answered with OK, later pipelined commands are ignored, then it closes."""
        proto, transport = self.connect()
        proto.dataReceived(b"PING\r\nQUIT\r\nPING\r\n")
        self.assertEqual(transport.value(), b"PONG\r\nOK\r\n")
        self.assertTrue(transport.disconnecting)

    def test_quit_waits_for_pending_write(self) -> None:
        """QUIT after a write closes only once the write's reply has gone out."""
        proto, transport = self.connect()
        proto.dataReceived(b"SET a b\r\nQUIT\r\n")
        self.assertFalse(transport.disconnecting)
        self.journal.commit()
        self.assertEqual(transport.value(), b"OK\r\nOK\r\n")
        self.assertTrue(transport.disconnecting)

    def test_resp_framing_error_closes(self) -> None:
        """A malformed RESP header gets Redis's protocol error and the connection closes."""
        proto, transport = self.connect()
        proto.dataReceived(b"*1\r\n$4\r\nPING\r\n*x\r\n")
        self.assertEqual(transport.value(),
                         b"+PONG\r\n-ERR Protocol error: invalid multibulk length\r\n")
        self.assertTrue(transport.disconnecting)

    def test_resp_bulk_over_limit(self) -> None:
        """A bulk longer than --max-bulk is refused before its bytes are buffered."""
        proto, transport = self.connect()
        proto.dataReceived(b"*2\r\n$3\r\nGET\r\n$99999\r\n")
        self.assertEqual(transport.value(), b"-ERR Protocol error: invalid bulk length\r\n")
        self.assertTrue(transport.disconnecting)

    def test_max_bulk_changed_for_open_connections(self) -> None:
        """A new factory.max_bulk (CONFIG SET proto-max-bulk-len) applies to the next
        request of a connection already open."""
        proto, transport = self.connect()
        proto.dataReceived(b"*2\r\n$4\r\nECHO\r\n$2000\r\n" + b"x" * 2000 + b"\r\n")
        self.assertEqual(transport.value(), b"-ERR Protocol error: invalid bulk length\r\n")
        self.factory.max_bulk = 4096
        proto, transport = self.connect()
        proto.dataReceived(b"*1\r\n$4\r\nPING\r\n")
        self.factory.max_bulk = 1024 * 1024
        proto.dataReceived(b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$5000\r\n" + b"x" * 5000 + b"\r\n")
        self.assertFalse(transport.disconnecting)
        self.assertEqual(self.store.data[b"k"], b"x" * 5000)

    def test_text_line_too_long(self) -> None:
        """A text line over 64 KiB gets an error and the connection closes."""
        proto, transport = self.connect()
        proto.dataReceived(b"GET " + b"x" * (70 * 1024))
        self.assertEqual(transport.value(),
                         b"(error) ERR Protocol error: too big inline request\r\n")
        self.assertTrue(transport.disconnecting)

    def test_text_line_at_the_limit(self) -> None:
        """A text line of exactly 64 KiB is served, even when it arrives a byte at a time."""
        proto, transport = self.connect()
        line = b"GET " + b"k" * (64 * 1024 - 4)
        for index in range(0, len(line), 997):
            proto.dataReceived(line[index:index + 997])
        proto.dataReceived(b"\nPING\n")
        self.assertEqual(transport.value(), b"(nil)\r\nPONG\r\n")

    def test_json_line_too_long(self) -> None:
        """An unfinished JSON line over 64 KiB gets an error naming the JSON limit, then closes."""
        proto, transport = self.connect()
        proto.dataReceived(b'{"type": "GET", "key": "a"}\n{"type": "SET", "key": "k", "value": "')
        for _ in range(70):
            proto.dataReceived(b"x" * 1024)
        self.assertEqual(
            [json.loads(line) for line in transport.value().splitlines()],
            [None, {"error": "ERR Protocol error: too big JSON request "
                             "(a request line is limited to 65536 bytes)"}])
        self.assertTrue(transport.disconnecting)

    def test_unfinished_line_held_as_received(self) -> None:
        """A text or JSON line arriving a byte per read is held as its pieces, not re-joined."""
        for request in (b"SET key " + b"v" * 3000, b'{"type": "SET", "key": "k", "value": "'):
            proto, transport = self.connect()
            pieces = [request[index:index + 1] for index in range(len(request))]
            for piece in pieces:
                proto.dataReceived(piece)
            held = proto._lines.held()
            self.assertEqual(b"".join(held), request)
            self.assertEqual(len(held), len(pieces))

    def test_byte_at_a_time_same_replies(self) -> None:
        """Requests fed one byte per read get the bytes they get when fed whole, in each dialect."""
        requests = [
            b"SET k v\r\nGET k\nPING\r\nGET nothing\r\n",
            b'{"type": "SET", "key": "k", "value": "v"}\n{"type": "GET", "key": "k"}\n\n'
            b'{"oops\n{"type": "GET", "key": "k"}\n',
            b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\nv\r\n*2\r\n$3\r\nGET\r\n$1\r\nk\r\n",
        ]
        for request in requests:
            whole, whole_transport = self.connect()
            whole.dataReceived(request)
            self.ack_all()
            slow, slow_transport = self.connect()
            for index in range(len(request)):
                slow.dataReceived(request[index:index + 1])
                self.ack_all()
            self.assertEqual(slow_transport.value(), whole_transport.value())
            self.assertTrue(whole_transport.value())

    def test_unbalanced_quotes_keep_text_session(self) -> None:
        """Unbalanced quotes on a telnet line get an error but the session goes on."""
        proto, transport = self.connect()
        proto.dataReceived(b'GET "open\r\nPING\r\n')
        self.assertEqual(
            transport.value(),
            b"(error) ERR Protocol error: unbalanced quotes in request\r\nPONG\r\n")
        self.assertFalse(transport.disconnecting)

    def test_blank_lines_are_ignored(self) -> None:
        """Empty telnet lines produce no reply, as redis-server's inline parser does."""
        proto, transport = self.connect()
        proto.dataReceived(b"\r\n\r\nPING\r\n")
        self.assertEqual(transport.value(), b"PONG\r\n")

    def test_deferred_replies_answer_in_order(self) -> None:
        """A reply that is a Deferred holds back later replies until it fires."""
        self.store.data[b"k"] = b"v"
        proto, transport = self.connect()
        proto.dataReceived(b"SLOWGET k\r\nPING\r\n")
        self.assertEqual(transport.value(), b"")
        proto.dataReceived(b"PING\r\n")
        d, value = self.store.slow[0]
        d.callback(value)
        self.assertEqual(transport.value(), b'"v"\r\nPONG\r\nPONG\r\n')

    def test_deferred_failure_becomes_error_reply(self) -> None:
        """A failed Deferred reply is answered with an error, not dropped."""
        proto, transport = self.connect()
        proto.dataReceived(b"*2\r\n$7\r\nSLOWGET\r\n$1\r\nk\r\n")
        d, _ = self.store.slow[0]
        d.errback(RuntimeError("backend unavailable"))
        self.assertEqual(transport.value(), b"-ERR backend unavailable\r\n")

    def test_push_after_queued_replies(self) -> None:
        """An out-of-band push is written after replies already queued."""
        proto, transport = self.connect()
        proto.dataReceived(b"*2\r\n$7\r\nSLOWGET\r\n$1\r\nk\r\n")
        proto.session.push([b"message", b"ch", b"x"])
        self.store.slow[0][0].callback(None)
        self.assertEqual(transport.value(),
                         b"$-1\r\n*3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$1\r\nx\r\n")

    def test_backpressure_pauses_reading(self) -> None:
        """A client whose replies pile up past the high-water mark stops being read."""
        clock = Clock()
        self.factory = KVFactory(self.store, max_bulk=1024, reactor=clock)
        self.store.data[b"k"] = b"x" * 1000
        proto, transport = self.connect()
        proto.dataReceived(b"SET a b\r\n")
        count = HIGH_WATER // 1000 + 10
        proto.dataReceived(b"GET k\r\n" * count)
        # A read's replies past READ_OUTPUT hold its other requests a turn at a time.
        while clock.calls and transport.producerState != "paused":
            clock.advance(0)
        self.assertEqual(transport.producerState, "paused")
        self.journal.commit()
        self.assertEqual(transport.producerState, "producing")
        while clock.calls:
            clock.advance(0)
        self.assertEqual(transport.value().count(b"x" * 1000), count)

    def test_held_head_not_counted(self) -> None:
        """The replies of the read at the queue's head do not count towards the high-water mark."""
        self.store.data[b"k"] = b"x" * (HIGH_WATER + 1)
        proto, transport = self.connect()
        proto.dataReceived(b"SET a b\r\nGET k\r\n")
        self.assertEqual(transport.producerState, "producing")
        proto.dataReceived(b"GET k\r\n")
        self.assertEqual(transport.producerState, "paused")
        self.journal.commit()
        self.assertEqual(transport.producerState, "producing")
        self.assertEqual(proto._queued_bytes, 0)

    def test_session_dropped_on_disconnect(self) -> None:
        """The store forgets a session when its connection is lost."""
        proto, transport = self.connect()
        proto.connectionLost(None)
        self.assertEqual(self.store.dropped, [proto.session])

    def test_backlog_accounting_returns_to_zero(self) -> None:
        """Queued-byte accounting drops back to zero once every held reply is written."""
        proto, transport = self.connect()
        proto.dataReceived(b"SET a b\r\nSLOWGET a\r\n")
        proto.dataReceived(b"PING\r\n")
        self.assertGreater(proto._queued_bytes, 0)
        self.journal.commit(fail_reason="disk full")
        self.store.slow[0][0].callback(b"b")
        self.assertEqual(proto._queued_bytes, 0)
        # The PING, read apart, reveals no write: it is answered as it was made.
        self.assertEqual(transport.value(),
                         b'(error) ERR persistence failed: disk full\r\n"b"\r\nPONG\r\n')


def run_one(clock: Clock) -> None:
    """Run only the earliest call pending on ``clock`` (advance(0) would run new ones too)."""
    call = clock.calls.pop(0)
    call.called = 1
    call.func(*call.args, **call.kw)


class DatabaseFieldTests(SynchronousTestCase):
    """The JSON dialect's "db" field, over a real Store."""

    def test_json_db_field(self) -> None:
        """A JSON request's "db" runs it in that database only; bad numbers get an error."""
        proto = KVFactory(Store(Clock()), max_bulk=1024).buildProtocol(None)
        transport = StringTransport()
        proto.makeConnection(transport)
        proto.dataReceived(b'{"type": "SET", "key": "a", "value": "3", "db": 3}\n')
        proto.dataReceived(b'{"type": "GET", "key": "a"}\n{"type": "GET", "key": "a", "db": 3}\n'
                           b'{"type": "GET", "key": "a", "db": 16}\n'
                           b'{"type": "GET", "key": "a", "db": "3"}\n')
        lines = [json.loads(line) for line in transport.value().splitlines()]
        self.assertEqual(lines[:3], ["OK", None, "3"])
        self.assertEqual(lines[3], {"error": "ERR DB index is out of range"})
        self.assertEqual(lines[4], {"error": 'ERR "db" must be a database number, not str'})


class ClockedCase(SynchronousTestCase):
    """A KVFactory over a FakeStore on a task.Clock; connect() gives a protocol and its
    StringTransport."""

    def setUp(self) -> None:
        self.store = FakeStore()
        self.journal = self.store.journal
        self.clock = Clock()
        self.factory = KVFactory(self.store, reactor=self.clock)

    def connect(self):
        proto = self.factory.buildProtocol(None)
        transport = StringTransport()
        proto.makeConnection(transport)
        return proto, transport


class StreamedReplyTests(ClockedCase):
    """Large replies (DUMP, KEYS) go out a slice per reactor turn, in order, behind the gate."""

    KEYS = 5000

    def setUp(self) -> None:
        ClockedCase.setUp(self)
        for i in range(self.KEYS):
            self.store.data[b"key:%05d" % ((i * 7919) % self.KEYS)] = b"value %d" % i
        self.pairs = Pairs(sorted(self.store.data.items()))

    def finish(self, transport) -> int:
        """Run the clock's calls one at a time until none is left; return how many ran."""
        turns = 0
        while self.clock.calls:
            run_one(self.clock)
            turns += 1
            self.assertLess(turns, 10000)
        return turns

    def test_dump_written_a_slice_per_turn(self) -> None:
        """DUMP of many keys is written in slices, one per reactor turn, adding up to the whole."""
        proto, transport = self.connect()
        proto.dataReceived(b"*1\r\n$4\r\nDUMP\r\n")
        expected = to_resp(self.pairs)
        self.assertLess(len(transport.value()), len(expected) // 4)
        self.assertIs(transport.producer.stream, proto._stream)
        sizes = []
        while self.clock.calls:
            before = len(transport.value())
            run_one(self.clock)
            sizes.append(len(transport.value()) - before)
        self.assertGreater(len(sizes), 10)
        self.assertLess(max(sizes), len(expected) // 5)
        self.assertEqual(transport.value(), expected)
        self.assertIsNone(transport.producer.stream)

    def test_other_clients_served_between_slices(self) -> None:
        """While one client's DUMP is being written, another client's PING is answered at once."""
        dumper, dumper_transport = self.connect()
        pinger, pinger_transport = self.connect()
        dumper.dataReceived(b"DUMP\r\n")
        run_one(self.clock)
        pinger.dataReceived(b"PING\r\n")
        self.assertEqual(pinger_transport.value(), b"PONG\r\n")
        self.finish(dumper_transport)
        self.assertEqual(dumper_transport.value(), to_text(self.pairs))

    def test_later_replies_wait_for_the_stream(self) -> None:
        """Replies pipelined after a streamed one, in its read or later ones, follow all of it."""
        keys = list(self.store.data)
        message = [b"message", b"ch", b"x"]
        for first, later, expected in [
            (b"PING\r\nKEYS *\r\nPING\r\n", b"GET nothing\r\n",
             b"PONG\r\n" + to_text(keys) + b"PONG\r\n(nil)\r\n" + to_text(message)),
            (b"*1\r\n$4\r\nPING\r\n*2\r\n$4\r\nKEYS\r\n$1\r\n*\r\n*1\r\n$4\r\nPING\r\n",
             b"*2\r\n$3\r\nGET\r\n$7\r\nnothing\r\n",
             b"+PONG\r\n" + to_resp(keys) + b"+PONG\r\n$-1\r\n" + to_resp(message)),
        ]:
            proto, transport = self.connect()
            proto.dataReceived(first)
            proto.dataReceived(later)
            proto.session.push(message)
            self.finish(transport)
            self.assertEqual(transport.value(), expected)

    def test_write_after_stream_in_one_read(self) -> None:
        """A write after a streamed reply in its read does not hold the stream back; its reply
        follows the stream."""
        proto, transport = self.connect()
        proto.dataReceived(b"*1\r\n$4\r\nDUMP\r\n*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\nv\r\n")
        self.finish(transport)
        self.assertEqual(transport.value(), to_resp(self.pairs))
        self.journal.commit()
        self.assertEqual(transport.value(), to_resp(self.pairs) + b"+OK\r\n")

    def test_stream_waits_for_the_gate(self) -> None:
        """A streamed reply that may have seen a write goes out only once the write is durable."""
        proto, transport = self.connect()
        proto.dataReceived(b"SET key:00000 new\r\nDUMP\r\nPING\r\n")
        self.finish(transport)
        self.assertEqual(transport.value(), b"")
        self.journal.commit()
        self.finish(transport)
        data = dict(self.pairs.items)
        data[b"key:00000"] = b"new"
        pairs = Pairs(sorted(data.items()))
        self.assertEqual(transport.value(), b"OK\r\n" + to_text(pairs) + b"PONG\r\n")

    def test_failed_gate_refuses_the_stream(self) -> None:
        """When the write a streamed reply may have seen is lost, the reply becomes an error.

        The PING after it, which reveals no write, is answered PONG.
        """
        proto, transport = self.connect()
        proto.dataReceived(b"SET a b\r\nKEYS *\r\nPING\r\n")
        self.journal.commit(fail_reason="disk full")
        self.finish(transport)
        seen = (b"(error) ERR persistence failed: disk full; this reply may have seen writes "
                b"that were rolled back\r\n")
        self.assertEqual(transport.value(),
                         b"(error) ERR persistence failed: disk full\r\n" + seen + b"PONG\r\n")
        self.assertIsNone(transport.producer.stream)

    def test_paused_stream_writes_nothing(self) -> None:
        """While the transport has paused the stream, turns pass without writing."""
        proto, transport = self.connect()
        proto.dataReceived(b"DUMP\r\n")
        run_one(self.clock)
        transport.producer.pauseProducing()
        written = transport.value()
        self.finish(transport)
        self.assertEqual(transport.value(), written)
        transport.producer.resumeProducing()
        self.finish(transport)
        self.assertEqual(transport.value(), to_text(self.pairs))

    def test_lost_connection_stops_the_stream(self) -> None:
        """A connection lost mid-stream stops it: nothing more is scheduled or written."""
        proto, transport = self.connect()
        proto.dataReceived(b"DUMP\r\n")
        run_one(self.clock)
        written = transport.value()
        proto.connectionLost(None)
        self.finish(transport)
        self.assertEqual(transport.value(), written)

    def test_quit_after_stream_closes_after_it(self) -> None:
        """QUIT pipelined after a streamed reply closes the connection once the stream is out."""
        proto, transport = self.connect()
        proto.dataReceived(b"KEYS *\r\nQUIT\r\n")
        self.assertFalse(transport.disconnecting)
        self.finish(transport)
        self.assertEqual(transport.value(), to_text(list(self.store.data)) + b"OK\r\n")
        self.assertTrue(transport.disconnecting)

    def test_every_dialect_renders_streams_as_whole_replies(self) -> None:
        """RESP2, RESP3, text and JSON send a streamed reply byte for byte as its whole value."""
        keys = list(self.store.data)
        cases = [
            (b"*1\r\n$4\r\nDUMP\r\n", 2, to_resp(self.pairs)),
            (b"*1\r\n$4\r\nDUMP\r\n", 3, to_resp3(self.pairs)),
            (b"*2\r\n$4\r\nKEYS\r\n$1\r\n*\r\n", 2, to_resp(keys)),
            (b"*2\r\n$4\r\nKEYS\r\n$1\r\n*\r\n", 3, to_resp3(keys)),
            (b"DUMP\r\n", 2, to_text(self.pairs)),
            (b"KEYS *\r\n", 2, to_text(keys)),
            (b'{"type": "DUMP"}\n', 2, jsonlines.render(self.pairs)),
            (b'{"type": "KEYS", "args": ["*"]}\n', 2, jsonlines.render(keys)),
        ]
        for request, version, expected in cases:
            proto, transport = self.connect()
            proto.dataReceived(request[:1])
            proto.session.protocol = version
            proto.dataReceived(request[1:])
            self.finish(transport)
            self.assertEqual(transport.value(), expected, (request, version))


class LargeValueReplyTests(ClockedCase):
    """A GET of a value over BULK_SLICE goes out a slice per reactor turn, never copied whole."""

    def setUp(self) -> None:
        ClockedCase.setUp(self)
        self.big = bytes(range(256)) * (BULK_SLICE // 256) * 3 + b"tail"
        self.store.data[b"big"] = self.big
        self.store.data[b"small"] = b"v"

    def writes(self, transport) -> list:
        """Run the clock's calls one at a time; return how much each wrote."""
        sizes = []
        while self.clock.calls:
            before = len(transport.value())
            run_one(self.clock)
            sizes.append(len(transport.value()) - before)
        return sizes

    def test_sliced_and_whole(self) -> None:
        """The reply is written a slice per turn and adds up to the whole bulk string."""
        proto, transport = self.connect()
        proto.dataReceived(b"*2\r\n$3\r\nGET\r\n$3\r\nbig\r\n")
        first = len(transport.value())
        self.assertLessEqual(first, BULK_SLICE + 16)
        sizes = [first] + self.writes(transport)
        self.assertEqual(transport.value(), to_resp(self.big))
        self.assertGreaterEqual(len([size for size in sizes if size]), 4)
        self.assertLessEqual(max(sizes), BULK_SLICE + 16)

    def test_pipelined_replies_follow_it(self) -> None:
        """Replies pipelined after it, in its read and later, come after all of it, and
        another client is answered between its slices."""
        proto, transport = self.connect()
        other, other_transport = self.connect()
        proto.dataReceived(b"*2\r\n$3\r\nGET\r\n$3\r\nbig\r\n*1\r\n$4\r\nPING\r\n")
        proto.dataReceived(b"*2\r\n$3\r\nGET\r\n$5\r\nsmall\r\n")
        other.dataReceived(b"*1\r\n$4\r\nPING\r\n")
        self.assertEqual(other_transport.value(), b"+PONG\r\n")
        self.writes(transport)
        self.assertEqual(transport.value(), to_resp(self.big) + b"+PONG\r\n$1\r\nv\r\n")

    def test_waits_for_the_clients_own_write(self) -> None:
        """Behind the client's own pending SET, nothing of it is written before the commit."""
        proto, transport = self.connect()
        proto.dataReceived(b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\nv\r\n"
                           b"*2\r\n$3\r\nGET\r\n$3\r\nbig\r\n")
        self.writes(transport)
        self.assertEqual(transport.value(), b"")
        self.journal.commit()
        self.writes(transport)
        self.assertEqual(transport.value(), b"+OK\r\n" + to_resp(self.big))

    def test_deferred_reply_streamed(self) -> None:
        """A large value a Deferred answers (kvproxy's GET), last of its read, is streamed
        too, behind the read's earlier replies and before later reads' replies."""
        proto, transport = self.connect()
        proto.dataReceived(b"*1\r\n$4\r\nPING\r\n*2\r\n$7\r\nSLOWGET\r\n$3\r\nbig\r\n")
        proto.dataReceived(b"*2\r\n$3\r\nGET\r\n$5\r\nsmall\r\n")
        d, value = self.store.slow.pop()
        d.callback(value)
        first = len(transport.value())
        self.assertLessEqual(first, len(b"+PONG\r\n") + BULK_SLICE + 16)
        sizes = self.writes(transport)
        self.assertGreaterEqual(len([size for size in sizes if size]), 3)
        self.assertEqual(transport.value(),
                         b"+PONG\r\n" + to_resp(self.big) + b"$1\r\nv\r\n")

    def test_deferred_reply_not_last_is_whole(self) -> None:
        """Followed by another reply of its read, the large value is rendered whole, in order."""
        proto, transport = self.connect()
        proto.dataReceived(b"*2\r\n$7\r\nSLOWGET\r\n$3\r\nbig\r\n*1\r\n$4\r\nPING\r\n")
        d, value = self.store.slow.pop()
        d.callback(value)
        self.assertEqual(transport.value(), to_resp(self.big) + b"+PONG\r\n")

    def test_text_dialect_unchanged(self) -> None:
        """The text dialect answers it whole, as before."""
        proto, transport = self.connect()
        proto.dataReceived(b"GET big\r\n")
        self.writes(transport)
        self.assertEqual(transport.value(), to_text(self.big))


class _Reader(protocol.Protocol):
    """A raw client: keeps what arrives; ``lost`` fires with all of it on disconnect."""

    def __init__(self) -> None:
        self.data = b""
        self.lost = Deferred()

    def dataReceived(self, data: bytes) -> None:
        self.data += data

    def connectionLost(self, reason=protocol.connectionDone) -> None:
        self.lost.callback(self.data)


class OutboxTCPTests(TestCase):
    """Over loopback TCP with a real journal and writer thread, replies keep their order."""

    timeout = 30

    @inlineCallbacks
    def test_released_reply_follows_what_the_outbox_holds(self) -> None:
        """A reply a commit releases is sent after one the same turn left in the outbox."""
        store = FakeStore()
        store.data[b"k"] = b"v"
        factory = KVFactory(store, reactor=reactor)
        connected = Deferred()
        factory.buildProtocol = lambda addr: connected.callback(KVFactory.buildProtocol(
            factory, addr)) or connected.result
        port = reactor.listenTCP(0, factory, interface="127.0.0.1")
        self.addCleanup(port.stopListening)
        client = yield protocol.ClientCreator(reactor, _Reader).connectTCP(
            "127.0.0.1", port.getHost().port)
        server = yield connected
        # One reactor turn: a GET answered through the outbox, a SET held for its
        # commit, then the commit (the journal flushes the outbox, then releases).
        server.dataReceived(b"*2\r\n$3\r\nGET\r\n$1\r\nk\r\n")
        self.assertEqual(len(factory.outbox), 1)
        server.dataReceived(b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\nw\r\n")
        store.journal.commit()
        server.dataReceived(b"*1\r\n$4\r\nQUIT\r\n")
        data = yield client.lost
        self.assertEqual(data, b"$1\r\nv\r\n+OK\r\n+OK\r\n")

    @inlineCallbacks
    def test_held_replies_and_quit_in_order(self) -> None:
        """A held SET reply, the GET behind it and QUIT's reply all arrive, in order, then EOF."""
        from kvtwist.engine.store import Store
        from kvtwist.storage.journal import Journal

        directory = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, directory, True)
        store = Store(reactor)
        journal = Journal.open(directory, store.keyspace, reactor, fsync="always")
        store.set_journal(journal)
        journal.start()
        self.addCleanup(journal.stop)
        port = reactor.listenTCP(0, KVFactory(store, reactor=reactor), interface="127.0.0.1")
        self.addCleanup(port.stopListening)
        client = yield protocol.ClientCreator(reactor, _Reader).connectTCP(
            "127.0.0.1", port.getHost().port)
        client.transport.write(b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\nv\r\n"
                               b"*2\r\n$3\r\nGET\r\n$1\r\nk\r\n"
                               b"*1\r\n$4\r\nQUIT\r\n")
        data = yield client.lost
        self.assertEqual(data, b"+OK\r\n$1\r\nv\r\n+OK\r\n")
        self.assertEqual(journal.acked, 1)

    @inlineCallbacks
    def test_streamed_reply_over_tcp(self) -> None:
        """Over TCP, a DUMP streams whole and in order while a client that stops reading
        holds it back, and another client is answered meanwhile."""
        from kvtwist.engine.store import Store

        store = Store(reactor)
        data = {b"key:%06d" % ((i * 7919) % 100000): b"value:%d" % i for i in range(100000)}
        store.keyspace.data.update(data)
        port = reactor.listenTCP(0, KVFactory(store, reactor=reactor), interface="127.0.0.1")
        self.addCleanup(port.stopListening)
        creator = protocol.ClientCreator(reactor, _Reader)
        dumper = yield creator.connectTCP("127.0.0.1", port.getHost().port)
        pinger = yield creator.connectTCP("127.0.0.1", port.getHost().port)
        dumper.transport.pauseProducing()  # reads nothing until the PING is answered
        dumper.transport.write(b"*1\r\n$4\r\nDUMP\r\n*1\r\n$4\r\nQUIT\r\n")
        pinger.transport.write(b"*1\r\n$4\r\nPING\r\n*1\r\n$4\r\nQUIT\r\n")
        answered = yield pinger.lost
        self.assertEqual(answered, b"+PONG\r\n+OK\r\n")
        dumper.transport.resumeProducing()
        dumped = yield dumper.lost
        self.assertEqual(dumped, to_resp(Pairs(sorted(data.items()))) + b"+OK\r\n")


class LargeArgumentTests(SynchronousTestCase):
    """A large argument is joined off the event loop; the connection's later requests wait."""

    def test_requests_after_a_large_argument_wait_for_its_join(self) -> None:
        """PING before it is answered at once; the SET and what follows run once it is joined.

        Before, the pieces were joined in the reactor thread as the last one arrived (a 128 MB
        SET held every other client about half a second for that join alone).
        """
        from twisted.internet.defer import Deferred

        from kvtwist.engine.store import Store
        from kvtwist.serve.streaming import join_pieces
        from kvtwist.storage import checksums
        from kvtwist.wire.resp import RequestParser

        self.patch(RequestParser, "LARGE_BULK", 16)
        store = Store(Clock())
        factory = KVFactory(store)
        joins = []

        def join_large(parts):
            joins.append(Deferred())
            joins[-1].parts = parts
            return joins[-1]

        factory.join_large = join_large
        proto = factory.buildProtocol(None)
        transport = StringTransport()
        proto.makeConnection(transport)
        value = b"v" * 100
        data = (b"*1\r\n$4\r\nPING\r\n*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$100\r\n" + value
                + b"\r\n*2\r\n$3\r\nGET\r\n$1\r\nk\r\n")
        for start in range(0, len(data), 30):
            proto.dataReceived(data[start:start + 30])
        self.assertEqual(transport.value(), b"+PONG\r\n")
        self.assertEqual(len(joins), 1)
        joins[0].callback(join_pieces(joins[0].parts, checksum=True))
        self.assertEqual(transport.value(), b"+PONG\r\n+OK\r\n$100\r\n" + value + b"\r\n")
        self.assertEqual(store.keyspace.get(b"k"), value)
        # The value's CRC, computed with the join, is not kept once its SET ran.
        self.assertIsNone(checksums._known)
