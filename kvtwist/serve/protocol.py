"""The network front end: one protocol serving text, RESP2/RESP3 and JSON lines."""

from __future__ import annotations

from collections import deque

from twisted.internet import protocol
from twisted.internet.defer import Deferred
from twisted.python.failure import Failure

from kvtwist.loop.directwrite import reply_channel
from kvtwist.wire.inline import LineFramer
from kvtwist.wire.replies import BULK_SLICE, NO_REPLY, OK, Error, Streamed, to_resp, to_resp3
from kvtwist.wire.textreply import to_text
from kvtwist.wire.resp import RequestParser
from kvtwist.serve.streaming import StreamedReplies, forget_checksum
from kvtwist.serve.held import UNPAUSED as _UNPAUSED, HeldRequests
from kvtwist.serve.limits import READ_OUTPUT, LimitedOutput, OutputGate, close_over_query
from kvtwist.serve.lines import JSON, MAX_LINE, RESP, TEXT, LineDialects
from kvtwist.serve.blocking import Blocked, deferred_reply
from kvtwist.serve.keygate import reply_gate


# A client that does not read its replies must not make the server buffer without
# bound: past this many queued bytes we stop reading from it (Redis disconnects such
# clients; pausing is gentler and loses nothing).
HIGH_WATER = 4 * 1024 * 1024


class _Chunk:
    """Replies produced by one read, in order, waiting to be written together.

    A streamed reply (``Streamed``) ends a chunk: it is the chunk's ``stream``, written
    after its parts a piece per reactor turn, and the read's later replies open the next.
    """

    __slots__ = ("parts", "pending", "need", "gated", "writes", "close", "size", "stream",
                 "pushes")

    def __init__(self, parts: list) -> None:
        self.parts = parts
        self.size = -1  # bytes counted towards the connection's backlog once queued
        self.pending = 0  # replies still waiting on a Deferred (proxy sessions)
        # The journal number its replies may leave after (serve/keygate.py), or 0.
        self.need = 0
        self.gated = 0  # the journal sequence number it waits for to be durable, or 0
        self.writes = None  # [(index, last_seq)] of replies to writes, for fault reporting
        self.close = False  # QUIT or a framing error: close once written
        self.stream = None  # a streamed reply's rendered pieces (an iterator of bytes)
        self.pushes = False  # only pushes sent outside a read (pub/sub messages...)


class KVProtocol(LimitedOutput, LineDialects, StreamedReplies, HeldRequests,
                 protocol.Protocol):
    """Serve one client; its first byte picks the dialect (``*`` RESP2, ``{`` JSON, else text)."""

    chunk_type = _Chunk

    def __init__(self) -> None:
        self.dialect = None
        self._lines = None  # the text and JSON dialects' LineFramer
        self.session = None
        self._queue = deque()
        self._queued_bytes = 0  # rendered reply bytes waiting in _queue
        self._render = None
        self._chunk = None  # the replies of the read being handled
        self._closing = False
        self._paused = False
        self._journal = None
        self._notes = None  # the journal's PendingWrites (storage/pending.py), if it keeps them
        self._write = self._close = None  # at the end of the reactor turn (outbox)
        self._send = self._shut = None  # at once
        self._stream = None  # the ReplyStream writing the queue head's streamed reply
        self._joining = False  # a large argument's pieces are being joined
        self._store = None
        self._held = None  # requests waiting (CLIENT PAUSE), see HeldRequests
        self._slow = False  # serve each request through HeldRequests._serve
        self._watchdog = None  # the factory's limits (kvtwist.serve.limits), for a Store
        self._limits = None  # its Limits (kvtwist.engine.limits), read on each use
        self._outgate = None  # the OutputGate: reading stops while replies are not taken
        self._soft_since = None  # when the output passed its soft limit (None: under it)
        self._read_out = 0  # reply bytes of the read being handled (the slow path's count)

    # -- connection life cycle -------------------------------------------------

    def connectionMade(self) -> None:
        watchdog = self.factory.watchdog
        if watchdog is not None:
            refused = watchdog.admit(self.transport)
            if refused is not None:  # written, then closed, as Redis does
                self._closing = True
                self.transport.write(refused)
                self.transport.loseConnection()
                return
            self._watchdog = watchdog
            self._limits = watchdog.limits
            watchdog.connections.add(self)
        reactor = self.factory.reactor
        if reactor is None:
            from twisted.internet import reactor
        self._outgate = OutputGate(self, reactor.callLater)
        self.transport.registerProducer(self._outgate, True)
        peer = self.transport.getPeer()
        address = "%s:%s" % (getattr(peer, "host", "?"), getattr(peer, "port", "?"))
        store = self._store = self.factory.store
        # A store without pauses and monitors (kvproxy's) is served as one never paused.
        self._control = store if hasattr(store, "pause_mode") else _UNPAUSED
        clock = getattr(store, "clock", None) or self.factory.reactor
        if clock is None:
            from twisted.internet import reactor as clock
        self._seconds = clock.seconds
        self.session = store.new_session(address)
        self.session.push = self.push
        self.session.push_early = self.push_early
        self.session.output_memory = self._output_memory
        self._describe_connection()
        # Read once: a store's journal is attached before it starts listening.
        self._journal = self.factory.journal
        self._notes = getattr(self._journal, "pending", None)
        self._write, self._close, self._send, self._shut = reply_channel(
            self.transport, self.factory.outbox)

    def connectionLost(self, reason=protocol.connectionDone) -> None:
        self._closing = True
        self._queue.clear()
        self._queued_bytes = 0
        if self._stream is not None:
            self._stream.stopProducing()
            self._stream = None
        self._held = None
        if self._watchdog is not None:
            self._watchdog.connections.discard(self)
        if self.session is not None:
            self.factory.store.drop_session(self.session)

    def dataReceived(self, data: bytes) -> None:
        if self._closing:
            return
        if self.dialect is None:
            if not data:
                return
            self._choose_dialect(data[:1])
        session = self.session
        session.last_interaction = self._seconds()
        if self.dialect is RESP:
            parts = []
            chunk = self._chunk = _Chunk(parts)
            # RESP, the dialect of every client library, is handled here rather than in
            # a method of its own, and so is the end of the read: two calls less per read.
            parser = self._parser
            must_auth = not getattr(session, "authenticated", True)
            if must_auth or parser.max_bulk != self.factory.max_bulk:
                # Before AUTH, or CONFIG SET proto-max-bulk-len since the last read.
                parser.unauthenticated(must_auth, self.factory.max_bulk)
            requests, error = parser.drain(data)
            # Only a read completing no request can grow an unfinished one much (a read
            # holds at most 64 KB), so the query buffer is measured then.
            if not requests and self._limits is not None and \
                    parser.buffered() > self._limits.query_buffer:
                close_over_query(self, self._limits, data)
                return
            size = 0
            limit = READ_OUTPUT
            if self._slow or self._control.pause_mode is not None:
                self._read_out = 0
                requests, error = self._serve_all(requests, error)
            journal = self._journal
            execute = session.execute
            seq = journal.appended
            for argv in requests:
                reply = execute(argv)
                appended = journal.appended
                if appended != journal.acked:  # a write is not durable yet
                    # A write waits for its own effects; a read for what it may reveal.
                    need = appended if appended != seq else reply_gate(
                        session, argv, journal, self._notes)
                    if need > chunk.need:
                        chunk.need = need
                if reply.__class__ is bytes:  # the common GET reply, rendered inline
                    length = len(reply)
                    if length > BULK_SLICE and journal.appended == seq:
                        # A large value a read returned (not GETDEL's): streamed a slice
                        # per turn, not copied whole into the reply (that held the reactor).
                        chunk = self._seal(reply)
                        parts = chunk.parts
                    else:
                        parts.append(b"$%d\r\n%s\r\n" % (length, reply))
                        if length > 4096:  # a read's small replies are bounded by its size
                            size += length
                elif reply is OK:
                    parts.append(b"+OK\r\n")
                else:
                    # HELLO may switch the session to RESP3 mid-read, so ask each time.
                    render = to_resp3 if getattr(session, "protocol", 2) == 3 else to_resp
                    if reply.__class__ is Blocked:  # BLPOP... waits (serve/blocking.py)
                        reply = deferred_reply(self, reply)
                    if isinstance(reply, Deferred):
                        self._add_deferred(reply, render)
                    elif reply.__class__ is Streamed:
                        chunk = self._seal(reply)
                        parts = chunk.parts
                    else:
                        part = render(reply)
                        parts.append(part)
                        size += len(part)
                if journal.appended != seq:
                    # _note_write, inlined: a call per write costs 1.8 % of a SET.
                    seq = journal.appended
                    if seq != journal.acked:
                        if chunk.writes is None:
                            chunk.writes = []
                        chunk.writes.append((len(parts) - 1, seq))
                if session.after_reply:
                    self._push_after_reply()
                if session.closing:
                    if session.closing is True:
                        self._close_after_chunk()
                    else:  # CLIENT REPLY, PAUSE, MONITOR: the rest is served one by one
                        self._interrupted(requests, argv, error)
                        chunk = self._chunk
                        parts = chunk.parts
                    break
                if size > limit:  # the rest waits until the client took these
                    self._hold_output(requests, argv, error)
                    break
            else:
                if error is not None:
                    parts.append(b"-ERR %s\r\n" % str(error).encode("utf-8"))
                    self._close_after_chunk()
                elif self._parser.joining is not None and not self._joining:
                    self._join_large()
        else:
            self._read_out = 0
            framer = self._lines
            lines = framer.feed(data)
            if not lines and not framer.overflow and not self._held:
                return  # a piece of a line: nothing to answer yet
            parts = []
            chunk = self._chunk = _Chunk(parts)
            if self._held:
                self._drain_held()
            for line in lines:
                if self._closing:
                    break
                self.lineReceived(line)
            if framer.overflow and not self._closing:
                self.lineLengthExceeded()
            chunk = self._chunk  # a streamed reply sealed the first and opened another
            parts = chunk.parts
        # The read's replies, in order: written now, or queued behind earlier ones.
        self._chunk = None
        if not parts and not chunk.close:
            return
        limits = self._limits
        if limits is not None and limits.normal_limited and self._over_limit(parts):
            return
        if chunk.need > self._journal.acked:
            self._gate(chunk, chunk.need)
        queue = self._queue
        if not queue:
            if not chunk.gated and not chunk.pending:
                if parts:
                    self._write(b"".join(parts))
                if chunk.close:
                    self._close()
                return
            # The head of the queue is not counted in the backlog (only replies filled in
            # later are): not reading from the client cannot shrink what it already made.
            chunk.size = 0
            queue.append(chunk)
            return
        # The queue's head is always blocked (a ready head is written at once), so a chunk
        # joining it sends nothing yet; only the backlog grew.
        self._enqueue(chunk)
        if self._queued_bytes > HIGH_WATER and not self._paused:
            self._apply_backpressure()

    def _choose_dialect(self, first: bytes) -> None:
        if first != b"{" and getattr(self._store, "config", {}).get("inline-replies") == "resp":
            first = b"*"  # inline requests answered in RESP, as redis-server does
        if first == b"*":
            self.dialect = RESP
            self._parser = RequestParser(max_bulk=self.factory.max_bulk, defer_large=True)
        elif first == b"{":
            self.dialect = JSON
            self._lines = LineFramer(MAX_LINE)
        else:
            self.dialect = TEXT
            self._render = to_text
            self._lines = LineFramer(MAX_LINE)

    def _join_large(self) -> None:
        # The parser holds a large argument's pieces: they are joined off the event loop
        # (factory.join_large), and parsing goes on once the bytes are back.
        self._joining = True
        self.factory.join_large(self._parser.joining).addCallback(self._joined)

    def _joined(self, value: bytes) -> None:
        self._joining = False
        if not self._closing:
            self._parser.joined(value)
            try:
                self.dataReceived(b"")
            finally:
                forget_checksum()  # its request was executed (or waits): not kept alive

    def _run(self, argv: list, render) -> None:
        journal = self._journal
        before = journal.appended
        session = self.session
        reply = self._execute(session, argv)
        appended = journal.appended
        if appended != journal.acked:  # as in dataReceived's loop
            need = appended if appended != before else reply_gate(
                session, argv, journal, self._notes)
            if need > self._chunk.need:
                self._chunk.need = need
        if reply.__class__ is Blocked:
            reply = deferred_reply(self, reply)
        if reply is NO_REPLY:
            pass
        elif isinstance(reply, Deferred):
            self._add_deferred(reply, render)
        elif reply.__class__ is Streamed:
            self._seal(reply)
        else:
            part = render(reply)
            self._read_out += len(part)
            self._chunk.parts.append(part)
        if self.session.after_reply:
            self._push_after_reply()
        if journal.appended != before:
            self._note_write(self._chunk, journal)
        echo = getattr(session, "monitor_echo", None)
        if echo is not None:  # a MONITOR client's own command: shown after its reply
            session.monitor_echo = None
            self.push(echo)
        if session.closing:
            if session.closing is True:
                self._close_after_chunk()
            else:
                session.closing = False

    # -- replies: ordering, durability gating, one write per read -------------

    def _note_write(self, chunk: _Chunk, journal) -> None:
        # Only a write the journal has not acknowledged yet can still fail; remember
        # which reply answers it, so a persistence failure can replace that reply.
        # (dataReceived's RESP loop has these lines inline.)
        seq = journal.appended
        if seq != journal.acked:
            if chunk.writes is None:
                chunk.writes = []
            chunk.writes.append((len(chunk.parts) - 1, seq))

    def _close_after_chunk(self) -> None:
        self._chunk.close = True
        self._closing = True
        if self._lines is not None:
            self._lines.clear()

    def _add_deferred(self, d: Deferred, render) -> None:
        chunk = self._chunk
        chunk.parts.append(None)
        chunk.pending += 1
        d.addBoth(self._fill, chunk, len(chunk.parts) - 1, render)

    def _fill(self, result, chunk: _Chunk, index: int, render) -> None:
        if isinstance(result, Failure):
            message = getattr(result.value, "message", None) or str(result.value)
            if not message.split(" ", 1)[0].isupper():
                message = "ERR " + message
            result = Error(message)
        elif (result.__class__ is bytes and len(result) > BULK_SLICE
              and self._stream_last(result, chunk, index)):
            chunk.pending -= 1
            if chunk.pending == 0:
                self._flush(self._write, self._close)
            return
        part = chunk.parts[index] = render(result)
        if chunk.size >= 0:
            chunk.size += len(part)
            self._queued_bytes += len(part)
        chunk.pending -= 1
        if chunk.pending == 0:
            self._flush(self._write, self._close)

    def _gate(self, chunk: _Chunk, seq: int) -> None:
        # Someone's write (ours or another client's) that this chunk may reveal, number
        # ``seq`` (serve/keygate.py), is not durable yet: nothing in the chunk may be seen
        # before it is (or before it fails).
        chunk.gated = seq
        self._journal.on_acked(seq, self._gate_opened, chunk)

    def _gate_opened(self, failure_for, chunk: _Chunk) -> None:
        gate, chunk.gated = chunk.gated, 0
        reason = failure_for(gate)
        if reason is not None and chunk.pushes:
            # Messages that may tell of writes the disk refused (a keyspace notification,
            # an invalidation, a publisher's news) are dropped: they answer no request.
            if chunk.size > 0:
                self._queued_bytes -= chunk.size
                chunk.size = 0
            chunk.parts = []
        elif reason is not None:
            # The disk refused writes this chunk's replies may have seen, and they were
            # rolled back: none of its replies may reach the client as it is. A write's
            # reply says it failed; any other reply (it may show a rolled-back value)
            # becomes an error too, so the client asks again.
            failed = dict(chunk.writes or ())
            for index, part in enumerate(chunk.parts):
                if part is None:
                    continue  # a Deferred's reply, rendered when it fires
                if index in failed:
                    message = "ERR persistence failed: %s" % (failure_for(failed[index]),)
                else:
                    message = ("ERR persistence failed: %s; this reply may have seen writes "
                               "that were rolled back" % (reason,))
                part = self._render_error(message)
                if chunk.size >= 0:
                    delta = len(part) - len(chunk.parts[index])
                    chunk.size += delta
                    self._queued_bytes += delta
                chunk.parts[index] = part
            if chunk.stream is not None:
                # A streamed reply (it has not started: its chunk was held) is refused too.
                chunk.stream = None
                part = self._render_error(
                    "ERR persistence failed: %s; this reply may have seen writes that were "
                    "rolled back" % (reason,))
                chunk.parts.append(part)
                if chunk.size >= 0:
                    chunk.size += len(part)
                    self._queued_bytes += len(part)
        # Sent at once: only a journal release, which flushes the outbox first, can
        # unblock the queue's head here (an immediate callback finds the head blocked).
        self._flush(self._send, self._shut)

    def _flush(self, write, close_connection) -> None:
        if self._stream is not None:
            return  # the queue's head is being streamed: the rest waits for its end
        queue = self._queue
        out = None  # the first ready chunk's parts, then the others' added to them
        close = False
        start = None  # a ready chunk with a streamed reply: it stays at the head
        while queue:
            chunk = queue[0]
            if chunk.gated or chunk.pending:
                break
            if chunk.stream is not None:
                start = chunk
                self._queued_bytes -= chunk.size
                chunk.size = 0
                if out is None:
                    out = chunk.parts
                else:
                    out += chunk.parts
                chunk.parts = []
                break
            queue.popleft()
            self._queued_bytes -= chunk.size
            if out is None:
                out = chunk.parts  # the chunk is done with: its list can be reused
            else:
                out += chunk.parts
            if chunk.close:
                close = True
                queue.clear()
                self._queued_bytes = 0
                break
        if self.transport is None or not self.connected:
            return
        if out:
            write(b"".join(out))
        if start is not None:
            self._start_stream(start)
        if close:
            close_connection()
        if self._paused:
            self._apply_backpressure()

    def _enqueue(self, chunk: _Chunk) -> None:
        parts = chunk.parts
        if chunk.pending:  # a reply still awaited is a None placeholder
            parts = [part for part in parts if part is not None]
        chunk.size = sum(map(len, parts))
        self._queued_bytes += chunk.size
        self._queue.append(chunk)

    def _apply_backpressure(self) -> None:
        waiting = self._queued_bytes
        if waiting > HIGH_WATER and not self._paused:
            self._paused = True
            self._outgate.hold(True)
        elif waiting <= HIGH_WATER and self._paused:
            self._paused = False
            self._outgate.hold(False)
