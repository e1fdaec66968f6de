"""Write at once when a Twisted transport's buffer is empty, as Redis does; else via Twisted."""

from __future__ import annotations

import os
import select

from twisted.internet import tcp
from twisted.logger import Logger

from kvtwist.loop.turns import at_turn_end

log = Logger(namespace="kvtwist.loop.directwrite")

# Bigger writes take Twisted's path: a partial send would copy the rest anyway.
DIRECT_LIMIT = 64 * 1024
# A child's pipe is fed writes bigger than this a slice at a time (see child_writer).
CHILD_SLICE = 1024 * 1024


def direct_writer(transport):
    """Return a ``write(data)`` for ``transport`` that sends at once when nothing is queued.

    Twisted buffers every write until the reactor next polls the socket for writability:
    two epoll_ctl calls and a pass of the reactor loop per reply, which at one request per
    read costs about as much as serving the request. Redis writes replies straight away
    and waits for writability only when the kernel's buffer is full; for a TCP (or Unix
    stream) connection whose buffer is empty this does the same, and anything it cannot
    send (the kernel buffer is full, the peer is gone) goes to ``transport.write``, which
    then owns ordering, flow control and reporting the loss. Returns None for any other
    transport (TLS, tests' string transports): use its ``write``. A connection that
    starts TLS later must not use it.
    """
    if not isinstance(transport, tcp.Connection) or transport.TLS:
        return None
    # Twisted sets these on the instance once they change; until then they are class
    # defaults, which CPython 3.11 reads through an instance several times slower than
    # instance values, and every reply reads them.
    transport.dataBuffer = transport.dataBuffer
    transport.disconnecting = transport.disconnecting
    # A bound method, not a closure or a partial: CPython calls it without a C frame.
    return _Direct(transport, transport.socket.send, transport.write).write


def child_writer(transport, child_fd: int, reactor=None):
    """Return a ``write(data)`` to a child process's pipe that writes at once when it can.

    The same reasoning as ``direct_writer``, for ``reactor.spawnProcess`` transports: an
    empty pipe takes the bytes now instead of at the reactor's next poll. A write larger
    than CHILD_SLICE is fed to the pipe a slice at a time, and writes made meanwhile wait
    their turn behind it: Twisted's buffer never holds more than a slice, so each partial
    write costs O(slice) (PyPy's ``os.write`` copies a view that starts inside its object,
    and Twisted hands it the rest of its buffer after each partial write: a whole large
    buffer there was quadratic). Given the ``reactor``, a thread of its
    pool writes all of it once Twisted's buffer is empty, as fast as the child reads
    (``_feed``); else Twisted feeds it, a slice each time its buffer drains, which under
    load is one slice per reactor turn. Once the pipe is gone (the child is exiting) data is
    dropped: ``processEnded`` is on its way.
    """
    return _ChildFeed(transport, child_fd, reactor).write


class _ChildFeed:
    """The ordered writer of one child pipe: small writes now, large ones sliced (see above)."""

    __slots__ = ("transport", "child_fd", "reactor", "payload", "offset", "waiting", "feeding")

    def __init__(self, transport, child_fd: int, reactor=None) -> None:
        self.transport = transport
        self.child_fd = child_fd
        self.reactor = reactor  # with one, a thread feeds large writes (see child_writer)
        self.payload = None  # the large write being fed
        self.offset = 0
        self.waiting = []  # writes made while it is fed
        self.feeding = None  # the _Feeding a thread is writing, if any

    def write(self, data: bytes) -> None:
        """Write ``data`` after every earlier write (dropped once the pipe is closing)."""
        if self.payload is not None:
            self.waiting.append(data)
            return
        pipe = self.transport.pipes.get(self.child_fd)
        if pipe is not None and not pipe.disconnecting:
            self._send(pipe, data)

    def _send(self, pipe, data: bytes) -> None:
        if len(data) > CHILD_SLICE:
            self.payload, self.offset = data, 0
            pipe.registerProducer(self, False)  # a pull producer: resumeProducing runs now
        elif pipe.disconnecting:
            pipe.write(data)  # written before the pipe closes, like everything in its buffer
        else:
            fd = pipe.fileno()
            _Direct(pipe, lambda chunk: os.write(fd, chunk), pipe.write).write(data)

    def resumeProducing(self) -> None:
        """Twisted's buffer for the pipe drained: hand on the next slice, or finish."""
        pipe = self.transport.pipes.get(self.child_fd)
        data = self.payload
        if data is None or pipe is None or self.feeding is not None:
            return
        if self.offset < len(data):
            if self.reactor is not None and not pipe.disconnecting:
                if pipe.dataBuffer or pipe._tempDataBuffer:
                    return  # Twisted calls again once what is queued before it is written
                # A thread writes all of it straight to the pipe, through a descriptor of
                # its own (Twisted may close the pipe's meanwhile). Whole: PyPy's os.write
                # copies a view that starts inside its object, not one of all of it.
                self.feeding = _Feeding(own_descriptor(pipe.fileno()), memoryview(data))
                self.offset = len(data)
                self.reactor.callInThread(self._feed, self.feeding)
                return
            pipe.write(data[self.offset:self.offset + CHILD_SLICE])
            self.offset += CHILD_SLICE
            return
        self._finish(pipe)

    def _feed(self, feeding) -> None:
        # In a pool thread: write it all (or stop at an error or stopProducing), then
        # finish in the reactor's thread.
        feeding.run()
        self.reactor.callFromThread(self._fed, feeding)

    def _fed(self, feeding) -> None:
        if feeding is not self.feeding:
            return  # stopProducing dropped it meanwhile
        self.feeding = None
        pipe = self.transport.pipes.get(self.child_fd)
        if pipe is None or feeding.error is not None:
            # The child is gone (processEnded is on its way): so is what was for it.
            self.stopProducing()
            if pipe is not None:
                pipe.unregisterProducer()
            return
        self._finish(pipe)

    def _finish(self, pipe) -> None:
        self.payload = None
        pipe.unregisterProducer()
        # Writes made while it was fed go now, even if the pipe began closing meanwhile.
        waiting, self.waiting = self.waiting, []
        for index, queued in enumerate(waiting):
            self._send(pipe, queued)
            if self.payload is not None:  # another large one: the rest waits behind it
                self.waiting = waiting[index + 1:] + self.waiting
                return

    def stopProducing(self) -> None:
        """The pipe is gone: drop what was left to write."""
        if self.feeding is not None:
            self.feeding.stopped = True
            self.feeding = None
        self.payload = None
        self.waiting = []

    def pauseProducing(self) -> None:
        """Not called for a pull producer."""


def own_descriptor(fd: int) -> int:
    """Return a new descriptor for the write end of pipe ``fd``, blocking, with a file
    description of its own (O_NONBLOCK belongs to the description: a ``dup`` shares it
    with Twisted's, which must stay non-blocking); a non-blocking ``dup`` where
    /proc/self/fd cannot reopen it, or nobody reads the pipe (ENXIO). O(1)."""
    try:
        own = os.open("/proc/self/fd/%d" % fd, os.O_WRONLY | os.O_NONBLOCK)
    except OSError:
        return os.dup(fd)
    os.set_blocking(own, True)
    return own


class _Feeding:
    """A large write, written by a thread (``run``) to a pipe through ``fd``, which it
    closes.

    On a blocking ``fd`` (``own_descriptor``) the whole view goes in one ``os.write``: the
    kernel returns once the child has read all but the pipe's last buffer, and the thread
    takes the GIL back once. Slices of a non-blocking one each cost two: with the reactor
    busy, each waits for it to let go (up to the switch interval, and longer under PyPy),
    which made a 16 MB feed take 90 ms under CPython and 200-300 ms under PyPy, against
    13-21 ms written whole.
    """

    # How long a thread waits for a non-blocking pipe at a time before looking at
    # ``stopped`` again.
    POLL_MS = 100

    def __init__(self, fd: int, view: memoryview) -> None:
        self.fd = fd
        self.view = view
        self.stopped = False  # set from the reactor's thread: give up
        self.error = None  # the OSError that ended it early

    def run(self) -> None:
        """Write the view, whole on a blocking descriptor, else a slice at a time waiting
        for room (CPU: O(its length)); a blocking write returns early only on a signal or
        an error (EPIPE: the child is gone)."""
        view, fd = self.view, self.fd
        whole = os.get_blocking(fd)
        poller = None
        try:
            while view and not self.stopped:
                try:
                    view = view[os.write(fd, view if whole else view[:CHILD_SLICE]):]
                except (BlockingIOError, InterruptedError):
                    if poller is None:
                        poller = select.poll()
                        poller.register(fd, select.POLLOUT)
                    poller.poll(self.POLL_MS)
        except OSError as exc:  # EPIPE: the child is gone
            self.error = exc
        finally:
            os.close(fd)
            self.view = None


class _Direct:
    """Write to a Twisted FileDescriptor's file around it while it is open with nothing queued."""

    __slots__ = ("descriptor", "send", "fallback")

    def __init__(self, descriptor, send, fallback) -> None:
        self.descriptor = descriptor
        self.send = send  # the system call: returns how many bytes it took
        self.fallback = fallback  # the descriptor's write, which also reports a lost connection

    def write(self, data: bytes) -> None:
        """Send ``data`` now, or whatever ``send`` does not take through ``fallback``."""
        descriptor = self.descriptor
        if (descriptor.dataBuffer or descriptor._tempDataBuffer or len(data) > DIRECT_LIMIT
                or not descriptor.connected or descriptor.disconnecting):
            self.fallback(data)
            return
        try:
            sent = self.send(data)
        except (BlockingIOError, InterruptedError):
            sent = 0
        except OSError:
            self.fallback(data)  # Twisted's next write attempt reports the lost connection
            return
        if sent < len(data):
            self.fallback(data[sent:])


def reply_channel(transport, outbox=None):
    """Return ``(write, close, write_now, close_now)`` for a server's replies on ``transport``.

    ``write_now(data)`` sends through ``direct_writer`` when the transport allows it, else
    through ``transport.write``; ``close_now()`` closes the connection after everything
    written before it. ``write`` and ``close`` do the same through ``outbox`` (back to
    back at the end of the reactor turn) when one is given and the transport is direct;
    otherwise they are the same two. A connection must not use the ``_now`` pair while
    it may have something in the outbox: the kvstore protocol uses it for replies a
    journal commit released, after the outbox was flushed. TCP_NODELAY is set: replies
    go out as soon as they are ready, as Redis's do, and Nagle would hold a small reply
    back until the previous one was acked.
    """
    if hasattr(transport, "setTcpNoDelay"):
        transport.setTcpNoDelay(True)
    direct = direct_writer(transport)
    if direct is None:
        # Looked up on each call: tests (and wrappers) may replace the transport's methods.
        write, close = (lambda data: transport.write(data)), (lambda: transport.loseConnection())
        return write, close, write, close
    if outbox is None:
        return direct, transport.loseConnection, direct, transport.loseConnection
    later = _Later(outbox, direct, transport.loseConnection)
    return later.write, later.close, direct, transport.loseConnection


class _Later:
    """One connection's writes and close through an Outbox (bound methods: no C frame)."""

    __slots__ = ("put", "direct", "lose")

    def __init__(self, outbox, direct, lose) -> None:
        self.put = outbox.put
        self.direct = direct
        self.lose = lose

    def write(self, data: bytes) -> None:
        self.put(self.direct, data)

    def close(self) -> None:
        self.put(_call, self.lose)


def _call(function) -> None:
    function()


class Outbox:
    """Replies ready to go, sent back to back once per reactor turn, as Redis's beforeSleep does.

    Sending them together matters on loopback: each send may wake the client's process,
    and a client woken by the first send of a burst is still awake for the rest of it.
    ``flush`` sends at once (before a journal commit releases replies); otherwise what
    was put is sent at the end of the reactor turn.
    """

    def __init__(self, reactor) -> None:
        self._at_turn_end = at_turn_end(reactor)
        self._items = []
        self._scheduled = False

    def put(self, write, data) -> None:
        """Queue ``write(data)`` after everything already queued."""
        self._items.append((write, data))
        if not self._scheduled:
            self._scheduled = True
            self._at_turn_end(self._due)

    def _due(self) -> None:
        self._scheduled = False
        self.flush()

    def flush(self) -> None:
        """Make every queued write now, in order."""
        items = self._items
        if items:
            self._items = []
            for write, data in items:
                try:
                    write(data)
                except Exception:
                    # One connection's broken write must not cost the others their replies.
                    log.failure("Writing a reply failed")

    def __len__(self) -> int:
        return len(self._items)
