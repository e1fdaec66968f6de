"""Tests for kvtwist.loop.directwrite: direct sends on real TCP, buffer ordering, Outbox turns."""

from __future__ import annotations

import os
import sys
import threading

from twisted.internet import defer, protocol, reactor, tcp
from twisted.internet.task import Clock, deferLater
from twisted.internet.testing import StringTransport
from twisted.trial import unittest

from kvtwist.loop.directwrite import (
    CHILD_SLICE, DIRECT_LIMIT, Outbox, _Feeding, child_writer, direct_writer, own_descriptor,
    reply_channel)


class Peer(protocol.Protocol):
    """Records what arrives and fires Deferreds on connect, on enough bytes, and on loss."""

    def __init__(self) -> None:
        self.made = defer.Deferred()
        self.lost = defer.Deferred()
        self.data = b""
        self.waiting = []

    def connectionMade(self) -> None:
        self.made.callback(self)

    def dataReceived(self, data: bytes) -> None:
        self.data += data
        waiting, self.waiting = self.waiting, []
        for size, d in waiting:
            if len(self.data) >= size:
                d.callback(self.data)
            else:
                self.waiting.append((size, d))

    def received(self, size: int) -> defer.Deferred:
        """A Deferred firing with everything received once at least ``size`` bytes arrived."""
        d = defer.Deferred()
        self.waiting.append((size, d))
        self.dataReceived(b"")
        return d

    def connectionLost(self, reason=protocol.connectionDone) -> None:
        self.lost.callback(None)


class DirectWriterTCPTests(unittest.TestCase):
    """direct_writer on a real loopback TCP connection."""

    timeout = 30

    @defer.inlineCallbacks
    def setUp(self):
        self.server = Peer()
        factory = protocol.Factory.forProtocol(lambda: self.server)
        self.port = reactor.listenTCP(0, factory, interface="127.0.0.1")
        self.addCleanup(self.port.stopListening)
        self.client = yield protocol.ClientCreator(reactor, Peer).connectTCP(
            "127.0.0.1", self.port.getHost().port)
        yield self.server.made
        self.transport = self.server.transport
        self.assertIsInstance(self.transport, tcp.Server)
        self.write = direct_writer(self.transport)

    @defer.inlineCallbacks
    def tearDown(self):
        self.transport.loseConnection()
        yield defer.gatherResults([self.server.lost, self.client.lost])

    @defer.inlineCallbacks
    def test_reply_channel_pairs(self):
        """reply_channel's write waits for the outbox's flush; write_now sends at once."""
        outbox = Outbox(Clock())
        write, close, write_now, close_now = reply_channel(self.transport, outbox)
        write(b"later ")
        write_now(b"now ")
        self.assertEqual((len(outbox), self.transport.getTcpNoDelay()), (1, True))
        self.assertEqual((yield self.client.received(4)), b"now ")
        outbox.flush()
        self.assertEqual((yield self.client.received(10)), b"now later ")

    @defer.inlineCallbacks
    def test_empty_buffer_sends_at_once(self):
        """With nothing buffered, a write goes to the kernel at once, bypassing Twisted's buffer."""
        self.write(b"hello")
        self.assertEqual((self.transport.dataBuffer, self.transport._tempDataBuffer), (b"", []))
        self.assertEqual((yield self.client.received(5)), b"hello")

    @defer.inlineCallbacks
    def test_queues_behind_buffered_data(self):
        """With data in Twisted's buffer, a write is buffered behind it and arrives in order."""
        self.transport.write(b"first")
        self.write(b"second")
        self.assertEqual(self.transport._tempDataBuffer, [b"first", b"second"])
        self.assertEqual((yield self.client.received(11)), b"firstsecond")

    @defer.inlineCallbacks
    def test_large_write_buffered(self):
        """A write longer than DIRECT_LIMIT goes through transport.write and arrives whole."""
        data = b"x" * (DIRECT_LIMIT + 1)
        self.write(data)
        self.assertEqual(self.transport._tempDataBuffer, [data])
        self.assertEqual((yield self.client.received(len(data))), data)


class Echo(protocol.ProcessProtocol):
    """Collects a child's stdout; ``ended`` fires with it when the child exits."""

    def __init__(self) -> None:
        self.out = b""
        self.ended = defer.Deferred()

    def outReceived(self, data: bytes) -> None:
        self.out += data

    def processEnded(self, reason) -> None:
        self.ended.callback(self.out)


class ChildWriterTests(unittest.TestCase):
    """child_writer writes into a child's stdin pipe at once, in order with Twisted's buffer."""

    timeout = 60

    def spawn(self) -> Echo:
        echo = Echo()
        reactor.spawnProcess(echo, sys.executable, [
            sys.executable, "-c", "import sys; sys.stdout.buffer.write(sys.stdin.buffer.read())"])
        return echo

    def test_empty_pipe_takes_it_at_once_and_order_holds(self):
        """A small write bypasses Twisted's buffer; a big one queues; all arrive in order."""
        echo = self.spawn()
        write = child_writer(echo.transport, 0)
        pipe = echo.transport.pipes[0]
        write(b"first ")
        self.assertEqual((pipe.dataBuffer, pipe._tempDataBuffer), (b"", []))
        big = b"x" * (DIRECT_LIMIT + 1)
        write(big)
        self.assertTrue(pipe.dataBuffer or pipe._tempDataBuffer)
        write(b" last")
        echo.transport.closeStdin()
        return echo.ended.addCallback(self.assertEqual, b"first " + big + b" last")

    def test_large_write_is_fed_a_slice_at_a_time(self):
        """A large write reaches the pipe's buffer one slice at a time; later writes follow it.

        Before, the whole payload sat in Twisted's buffer, and each partial write of it
        copied all that remained on PyPy (a 16 MB journal append took 1.7 s there).
        """
        echo = self.spawn()
        write = child_writer(echo.transport, 0)
        pipe = echo.transport.pipes[0]
        big = bytes(range(256)) * (3 * 2**20 // 256)
        write(b"first ")
        write(big)
        write(b" middle ")
        write(big[::-1])
        self.assertLessEqual(len(pipe.dataBuffer) + pipe._tempDataLen, CHILD_SLICE)
        write(b" last")
        echo.transport.closeStdin()
        return echo.ended.addCallback(
            self.assertEqual, b"first " + big + b" middle " + big[::-1] + b" last")

    def test_large_write_is_fed_by_a_thread(self):
        """Given the reactor, a thread writes a large write once nothing is queued before it,
        and the writes made meanwhile follow it in order.

        Before, Twisted fed it a slice each time its buffer drained: under load one slice
        per reactor turn, so a 16 MB journal append took 16 turns to reach the writer.
        """
        echo = self.spawn()
        write = child_writer(echo.transport, 0, reactor)
        big = bytes(range(256)) * (3 * 2**20 // 256)
        write(b"first ")
        write(big)
        self.assertIsNotNone(write.__self__.feeding)
        write(b" middle ")
        write(big[::-1])
        write(b" last")
        self.assertEqual(write.__self__.waiting, [b" middle ", big[::-1], b" last"])
        echo.transport.closeStdin()
        return echo.ended.addCallback(
            self.assertEqual, b"first " + big + b" middle " + big[::-1] + b" last")

    def test_thread_writes_through_a_blocking_descriptor_of_its_own(self):
        """The feeding thread writes through a blocking descriptor, so the rest goes in one
        write and the thread takes the GIL back once; Twisted's stays non-blocking.

        Before, it wrote a 1 MB slice at a time through a dup sharing Twisted's
        non-blocking flag: two GIL hand-overs per slice, 90 ms per 16 MB under CPython
        and 200-300 ms under PyPy while the reactor was busy.
        """
        echo = self.spawn()
        write = child_writer(echo.transport, 0, reactor)
        pipe = echo.transport.pipes[0]
        big = os.urandom(3 * CHILD_SLICE)
        seen = []
        run = _Feeding.run

        def watched(feeding):
            seen.append((os.get_blocking(feeding.fd), os.get_blocking(pipe.fileno())))
            run(feeding)
        self.patch(_Feeding, "run", watched)
        write(big)
        write(b" last")
        echo.transport.closeStdin()

        def ended(got):
            self.assertEqual((got, seen), (big + b" last", [(True, False)]))
        return echo.ended.addCallback(ended)

    def test_large_write_behind_queued_bytes_goes_whole_once_they_are_written(self):
        """A large write behind bytes Twisted still holds waits for them to be written, then
        goes whole to the thread: the view it gets is all of the object.

        Before, Twisted took its first 1 MB and the thread a view starting inside the
        object, which PyPy's os.write copies whole (7 ms and 15 MB per 16 MB write).
        """
        echo = self.spawn()
        write = child_writer(echo.transport, 0, reactor)
        queued = b"q" * (DIRECT_LIMIT + 1)  # above the direct limit: Twisted buffers it
        big = os.urandom(3 * CHILD_SLICE)
        views = []
        run = _Feeding.run

        def watched(feeding):
            views.append((feeding.view.obj is big, len(feeding.view)))
            run(feeding)
        self.patch(_Feeding, "run", watched)
        write(queued)
        write(big)
        self.assertIsNone(write.__self__.feeding)  # not yet: Twisted holds ``queued``
        write(b" last")

        def fed():
            if write.__self__.payload is not None:
                return deferLater(reactor, 0.01, fed)
            echo.transport.closeStdin()
            return echo.ended
        d = deferLater(reactor, 0, fed)
        d.addCallback(lambda got: self.assertEqual(
            (got, views), (queued + big + b" last", [(True, len(big))])))
        return d

    def test_closed_pipe_drops(self):
        """Once the child's stdin is closed, writes are dropped instead of raising."""
        echo = self.spawn()
        write = child_writer(echo.transport, 0)
        write(b"kept")
        echo.transport.closeStdin()
        write(b"dropped")
        return echo.ended.addCallback(self.assertEqual, b"kept")


class FeedingTests(unittest.SynchronousTestCase):
    """_Feeding writes a view to a non-blocking pipe, waiting for room, then closes its fd."""

    def pipe(self) -> tuple:
        read_fd, write_fd = os.pipe()
        os.set_blocking(write_fd, False)
        self.addCleanup(os.close, read_fd)
        return read_fd, write_fd

    def drain(self, fd: int, into: list) -> threading.Thread:
        def run() -> None:
            while True:
                chunk = os.read(fd, 65536)
                if not chunk:
                    return
                into.append(chunk)
        thread = threading.Thread(target=run)
        thread.start()
        return thread

    def test_writes_it_all_as_the_reader_reads(self):
        """More than the pipe holds arrives whole, and the descriptor is closed after it."""
        read_fd, write_fd = self.pipe()
        data = os.urandom(3 * CHILD_SLICE + 5)
        got = []
        reader = self.drain(read_fd, got)
        feeding = _Feeding(write_fd, memoryview(data))
        feeding.run()
        reader.join()  # it ends at end of input: the feeding closed the only write end
        self.assertEqual((b"".join(got), feeding.error), (data, None))

    def test_blocking_descriptor_takes_it_in_one_write(self):
        """On a blocking descriptor the whole view goes to one os.write, however large."""
        read_fd, write_fd = os.pipe()
        self.addCleanup(os.close, read_fd)
        data = os.urandom(3 * CHILD_SLICE + 5)
        got = []
        reader = self.drain(read_fd, got)
        sizes = []
        write = os.write
        self.patch(os, "write", lambda fd, view: sizes.append(len(view)) or write(fd, view))
        _Feeding(write_fd, memoryview(data)).run()
        reader.join()
        self.assertEqual((b"".join(got), sizes), (data, [len(data)]))

    def test_own_descriptor_has_its_own_blocking_flag(self):
        """own_descriptor reopens a non-blocking pipe's write end as a blocking descriptor
        that writes into the same pipe, leaving the original non-blocking."""
        read_fd, write_fd = self.pipe()
        self.addCleanup(os.close, write_fd)
        own = own_descriptor(write_fd)
        self.addCleanup(os.close, own)
        os.write(own, b"through its own")
        self.assertEqual((os.get_blocking(own), os.get_blocking(write_fd),
                          os.read(read_fd, 100)), (True, False, b"through its own"))

    def test_own_descriptor_of_an_unread_pipe_is_a_dup(self):
        """With nobody reading the pipe, reopening it would fail (ENXIO), so own_descriptor
        returns a plain dup, and writing through it reports the broken pipe."""
        read_fd, write_fd = os.pipe()
        os.set_blocking(write_fd, False)
        os.close(read_fd)
        self.addCleanup(os.close, write_fd)
        feeding = _Feeding(own_descriptor(write_fd), memoryview(b"x" * 100))
        feeding.run()
        self.assertIsInstance(feeding.error, BrokenPipeError)

    def test_stopped_gives_up(self):
        """A feeding told to stop writes nothing more."""
        read_fd, write_fd = self.pipe()
        feeding = _Feeding(write_fd, memoryview(b"x" * 100))
        feeding.stopped = True
        feeding.run()
        self.assertEqual(os.read(read_fd, 200), b"")

    def test_reader_gone_is_an_error(self):
        """When nobody reads the pipe any more, the feeding ends with the error."""
        read_fd, write_fd = os.pipe()
        os.set_blocking(write_fd, False)
        os.close(read_fd)
        feeding = _Feeding(write_fd, memoryview(b"x" * 100))
        feeding.run()
        self.assertIsInstance(feeding.error, BrokenPipeError)
        self.assertRaises(OSError, os.fstat, write_fd)


class DirectWriterOtherTransportTests(unittest.SynchronousTestCase):
    """direct_writer declines transports that are not TCP connections."""

    def test_string_transport(self):
        """A StringTransport gets no direct writer."""
        self.assertIsNone(direct_writer(StringTransport()))


class OutboxTests(unittest.SynchronousTestCase):
    """Outbox sends what was put once per reactor turn, or at once on flush."""

    def setUp(self):
        self.clock = Clock()
        self.outbox = Outbox(self.clock)
        self.sent = []

    def writer(self, name):
        """A write function recording ``(name, data)``."""
        return lambda data: self.sent.append((name, data))

    def test_sent_at_end_of_turn_in_order(self):
        """Nothing is written until the turn ends, then every write is made in the order put."""
        a, b = self.writer("a"), self.writer("b")
        self.outbox.put(a, b"1")
        self.outbox.put(b, b"2")
        self.outbox.put(a, b"3")
        self.assertEqual(self.sent, [])
        self.clock.advance(0)
        self.assertEqual(self.sent, [("a", b"1"), ("b", b"2"), ("a", b"3")])

    def test_flush_sends_at_once_and_only_once(self):
        """flush writes everything queued at once; the scheduled call then writes nothing again."""
        self.outbox.put(self.writer("a"), b"1")
        self.outbox.flush()
        self.assertEqual(self.sent, [("a", b"1")])
        self.clock.advance(0)
        self.assertEqual(self.sent, [("a", b"1")])

    def test_one_delayed_call_per_turn(self):
        """However many puts happen in a turn, one DelayedCall is pending, and none once it ran."""
        for data in (b"1", b"2", b"3"):
            self.outbox.put(self.writer("a"), data)
        self.assertEqual(len(self.clock.getDelayedCalls()), 1)
        self.clock.advance(0)
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_next_turn_scheduled_again(self):
        """A put after a turn has run is sent at the end of the next turn."""
        self.outbox.put(self.writer("a"), b"1")
        self.clock.advance(0)
        self.outbox.put(self.writer("a"), b"2")
        self.assertEqual(self.sent, [("a", b"1")])
        self.clock.advance(0)
        self.assertEqual(self.sent, [("a", b"1"), ("a", b"2")])

    def test_len_counts_queued(self):
        """len(outbox) is the number of writes queued and not yet made."""
        self.assertEqual(len(self.outbox), 0)
        self.outbox.put(self.writer("a"), b"1")
        self.outbox.put(self.writer("a"), b"2")
        self.assertEqual(len(self.outbox), 2)
        self.clock.advance(0)
        self.assertEqual(len(self.outbox), 0)

    def test_failed_write_spares_the_rest(self):
        """A write that raises is logged and the writes queued after it are still made."""

        def broken(data):
            raise OSError("gone")

        self.outbox.put(broken, b"1")
        self.outbox.put(self.writer("b"), b"2")
        self.outbox.flush()
        self.assertEqual(self.sent, [("b", b"2")])
        self.assertEqual(len(self.flushLoggedErrors(OSError)), 1)


class ReplyChannelTests(unittest.SynchronousTestCase):
    """reply_channel picks how a server writes replies and closes."""

    def test_plain_transport_is_looked_up_on_each_call(self):
        """Without a TCP socket, writes and close go to the transport's current methods."""
        transport = StringTransport()
        write, close, write_now, close_now = reply_channel(transport, Outbox(Clock()))
        write(b"a")
        seen = []
        transport.write = seen.append
        write(b"b")
        write_now(b"c")
        close()
        self.assertEqual((transport.value(), seen, transport.disconnecting),
                         (b"a", [b"b", b"c"], True))
