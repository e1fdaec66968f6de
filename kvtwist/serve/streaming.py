"""Large values off the event loop: replies a piece per turn, arguments joined in a thread."""

from __future__ import annotations

import zlib

from zope.interface import implementer

from twisted.internet import defer, threads
from twisted.internet.interfaces import IPushProducer

from kvtwist.serve.lines import JSON, RESP
from kvtwist.storage import checksums
from kvtwist.wire import jsonlines
from kvtwist.wire.replies import Streamed, bulk_pieces, resp_pieces
from kvtwist.wire.textreply import text_pieces


@implementer(IPushProducer)
class ReplyStream:
    """Write ``pieces`` (an iterator of bytes) with ``write``, one piece per reactor turn.

    Registered on the transport as a streaming producer: the transport pauses it while its
    buffer holds more than its ``bufferSize`` and resumes it once drained, so a client
    that reads slowly holds at most a piece or two in the server, never the whole reply.
    Each piece is rendered and written in a call of its own (``call_later(0, ...)``), so
    the reactor polls and serves every other connection between two pieces. Once the
    iterator is exhausted, ``done()`` is called (the connection then unregisters it and
    goes on with the replies queued behind it). An empty piece writes nothing but still
    takes its turn (the work behind it, such as sorting a run of keys, is done).
    """

    def __init__(self, pieces, write, done, call_later) -> None:
        self._pieces = pieces  # None once finished or stopped
        self._write = write
        self._done = done
        self._call_later = call_later
        self._call = None  # the DelayedCall of the next piece
        self._paused = False

    def start(self) -> None:
        """Schedule the first piece."""
        self._schedule()

    def _schedule(self) -> None:
        if self._call is None and not self._paused and self._pieces is not None:
            self._call = self._call_later(0, self._step)

    def _step(self) -> None:
        self._call = None
        pieces = self._pieces
        if pieces is None:
            return
        piece = next(pieces, None)
        if piece is None:
            self._pieces = None
            self._done()
            return
        if piece:
            self._write(piece)  # may pause us (the transport's buffer is full)
        self._schedule()

    def pauseProducing(self) -> None:
        """Write nothing until resumeProducing (the transport's buffer is full)."""
        self._paused = True
        self._cancel()

    def resumeProducing(self) -> None:
        """Go on writing, a piece per turn."""
        self._paused = False
        self._schedule()

    def stopProducing(self) -> None:
        """Stop for good (the connection is gone) and let go of the rest of the reply."""
        self._pieces = None
        self._cancel()

    def _cancel(self) -> None:
        if self._call is not None:
            call, self._call = self._call, None
            call.cancel()


class StreamedReplies:
    """Mixed into KVProtocol: a streamed reply (KEYS, DUMP) in order with the others."""

    def _seal(self, reply):
        """End the open chunk with streamed ``reply`` (a Streamed, or the bytes of a large
        bulk string); open the next chunk and return it.

        The sealed chunk is held, written or queued as a read's chunk is (dataReceived):
        its reply starts once every reply before it is written and no write it may have
        seen can still fail, and every reply after it waits for its end. A streamed reply
        comes from a read-only command (KEYS, DUMP, a GET of a large value), so no write is
        noted against it. A Streamed array may show any write: it waits for all; a bulk
        string waits for what its command's gate asked, already in the chunk's ``need``.
        """
        chunk = self._chunk
        chunk.stream = self._pieces(reply)
        journal = self._journal
        need = chunk.need if reply.__class__ is bytes else journal.appended
        if need > journal.acked:
            self._gate(chunk, need)
        queue = self._queue
        if queue:
            self._enqueue(chunk)
        else:
            chunk.size = 0
            queue.append(chunk)
            if not chunk.gated and not chunk.pending:
                self._flush(self._write, self._close)
        self._apply_backpressure()  # pauses reading past the high-water mark
        chunk = self._chunk = self.chunk_type([])
        return chunk

    def _stream_last(self, value: bytes, chunk, index: int) -> bool:
        """Make the large bulk string ``value``, the reply a Deferred gave for place
        ``index`` of a held ``chunk``, that chunk's streamed reply; return whether it did.

        Only the last reply of its read (kvproxy's GET, a BLMOVE waiting alone) in RESP can
        be: it then goes out a slice per turn after the chunk's other replies, as a GET's
        large value does from dataReceived, rather than copied whole into the reply. A
        chunk still being read, closing or streaming already keeps it rendered whole.
        """
        if (self.dialect is not RESP or index != len(chunk.parts) - 1
                or chunk is self._chunk or chunk.stream is not None or chunk.close):
            return False
        chunk.parts[index] = b""
        chunk.stream = bulk_pieces(value)
        return True

    def _pieces(self, reply: Streamed):
        # The streamed reply rendered in this connection's dialect, a bytes per slice.
        if reply.__class__ is bytes:  # only the RESP dialect streams a bulk string
            return bulk_pieces(reply)
        if self.dialect is RESP:
            return resp_pieces(reply, getattr(self.session, "protocol", 2) == 3)
        if self.dialect is JSON:
            return jsonlines.stream_pieces(reply)
        return text_pieces(reply)

    def _start_stream(self, chunk) -> None:
        # The queue's head ``chunk`` is ready and its parts written: stream its reply.
        pieces, chunk.stream = chunk.stream, None
        reactor = self.factory.reactor
        if reactor is None:
            from twisted.internet import reactor
        # Pieces go through the outbox like every reply, so they follow what is queued
        # there; the next piece is rendered only in a later turn.
        writer = self._stream_writer()
        done = self._stream_done
        finish = getattr(writer, "finish", None)  # a writer holding the reply until its end
        if finish is not None:
            def done():
                finish()
                self._stream_done()
        self._stream = ReplyStream(pieces, writer, done, reactor.callLater)
        self._outgate.attach(self._stream)  # the transport's producer paces it
        self._stream.start()

    def _stream_done(self) -> None:
        self._stream = None
        self._outgate.detach()
        self._queue.popleft()  # the streamed chunk, kept at the head until now
        self._flush(self._write, self._close)


def join_off_loop(reactor, parts: list, checksum: bool = False):
    """Return a Deferred firing with ``b"".join(parts)``, done in ``reactor``'s thread pool.

    A large request argument arrives as many pieces; joining them is one copy of its
    bytes into fresh memory (about 3.5 ms per MB here, as the pages are first touched),
    which CPython's bytes.join does without the GIL (see join_pieces), so the reactor
    serves other connections meanwhile. With ``checksum`` the value's CRC-32 is computed
    there too, for the journal (join_pieces). The global reactor when ``reactor`` is None;
    one without a thread pool (a test's Clock) gets them joined at once.
    """
    if reactor is None:
        from twisted.internet import reactor
    if not hasattr(reactor, "getThreadPool"):
        return defer.succeed(join_pieces(parts, checksum))
    return threads.deferToThreadPool(reactor, reactor.getThreadPool(), join_pieces, parts,
                                     checksum)


def joinable(parts: list) -> list:
    """Return ``parts`` with every piece that is not exact bytes (a memoryview) copied to bytes.

    CPython's bytes.join releases the GIL for its copy only when every piece is exact
    bytes: one memoryview among them (the parser cuts a large argument's last piece as
    one) kept the GIL, and the reactor, for the whole copy (0.3-1.7 s for 512 MB). The
    copied pieces are the parser's read-sized ends: O(64 kB) each.
    """
    return [part if part.__class__ is bytes else bytes(part) for part in parts]


def join_pieces(parts: list, checksum: bool = False) -> bytes:
    """Return ``b"".join(parts)`` (in a thread: see join_off_loop); O(total length).

    With ``checksum``, its CRC-32 is computed too (zlib releases the GIL) and remembered
    (storage.checksums) for the journal record of the request that carries it: the
    reactor then frames that record without a pass over the value. The protocol calls
    ``forget_checksum`` once the request was executed.
    """
    value = b"".join(joinable(parts))
    if checksum:
        checksums.remember(value, zlib.crc32(value))
    return value


forget_checksum = checksums.forget
