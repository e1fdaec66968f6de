"""Resource limits of the serve layer: admission, idle clients, buffers, back-pressure.

The values are the configuration parameters of kvtwist.engine.limits, read on each use
(CONFIG SET applies at once). What is enforced, as Redis 7.0 does it:

- admission (``Watchdog.admit``): over ``maxclients`` a new connection is sent
  ``-ERR max number of clients reached`` and closed; in protected mode (when the factory
  is ``protect``-ed, as ``twistd kvstore``'s is) a client from an address other than
  127.0.0.1 or ::1 is sent Redis's DENIED text and closed while the default user has no
  password. Both count in INFO's rejected_connections.
- ``tcp-keepalive``: SO_KEEPALIVE, TCP_KEEPIDLE (the value), TCP_KEEPINTVL (a third of it)
  and TCP_KEEPCNT 3 on each accepted socket, as Redis's anetKeepAlive.
- a once-a-second cron (Redis's clientsCron, over every connection: O(connections) a
  second): ``timeout`` closes clients idle longer than it, except subscribers, MONITOR
  clients and clients waiting on a reply (blocked); output buffer limits are checked.
- ``client-output-buffer-limit``: what a client has not read yet (the transport's buffer
  plus replies queued in the protocol) is checked against its class's hard and soft
  limits when replies are added and by the cron; over, it is closed at once without its
  pending output (the memory is released), logged and counted.
- back-pressure (``OutputGate``): registered as the transport's streaming producer, it
  stops reading from a client while the transport's buffer is over its bufferSize (64
  KB) or the protocol's queue is over HIGH_WATER, and resumes when both drained; the
  requests of a read whose replies pass READ_OUTPUT are held until then, so a client
  that pipelines requests and never reads holds the server to about READ_OUTPUT plus
  one reply and a read's requests, not to all its replies.
"""

from __future__ import annotations

import socket
from collections import deque

from zope.interface import implementer

from twisted.internet import task
from twisted.internet.address import IPv4Address, IPv6Address
from twisted.internet.interfaces import IPushProducer
from twisted.logger import Logger

from kvtwist.engine.clients import client_line
from kvtwist.engine.limits import client_eviction_limit, limits_of

log = Logger(namespace="kvtwist.serve.limits")

MAX_CLIENTS = b"-ERR max number of clients reached\r\n"
DENIED = (
    b"-DENIED Redis is running in protected mode because protected "
    b"mode is enabled and no password is set for the default user. "
    b"In this mode connections are only accepted from the loopback interface. "
    b"If you want to connect from external computers to Redis you "
    b"may adopt one of the following solutions: "
    b"1) Just disable protected mode sending the command "
    b"'CONFIG SET protected-mode no' from the loopback interface "
    b"by connecting to Redis from the same host the server is "
    b"running, however MAKE SURE Redis is not publicly accessible "
    b"from internet if you do so. Use CONFIG REWRITE to make this "
    b"change permanent. "
    b"2) Alternatively you can just disable the protected mode by "
    b"editing the Redis configuration file, and setting the protected "
    b"mode option to 'no', and then restarting the server. "
    b"3) If you started the server manually just for testing, restart "
    b"it with the '--protected-mode no' option. "
    b"4) Setup a an authentication password for the default user. "
    b"NOTE: You only need to do one of the above things in order for "
    b"the server to start accepting connections from the outside.\r\n")

# Replies of one read past this many bytes hold the read's remaining requests until the
# client has taken them (small replies are counted from 4 KB on: see KVProtocol).
READ_OUTPUT = 1024 * 1024
CRON_INTERVAL = 1.0
# Seconds per connection between two measures of what clients hold (see clients_memory).
MEASURE_EVERY = 1e-5


def is_loopback(address) -> bool:
    """Whether a peer address is local as Redis's islocalClient: 127.0.0.1, ::1 or no IP."""
    if isinstance(address, (IPv4Address, IPv6Address)):
        return address.host in ("127.0.0.1", "::1")
    return True  # a Unix socket (or a test's transport without an IP address)


def buffered(transport) -> int:
    """Bytes written to ``transport`` that it has not sent yet (0 if it cannot tell)."""
    data = getattr(transport, "dataBuffer", None)
    if data is None:
        return 0
    return len(data) - getattr(transport, "offset", 0) + getattr(transport, "_tempDataLen", 0)


def set_keepalive(transport, seconds: int) -> None:
    """Turn TCP keepalive on for an accepted socket, probing after ``seconds`` idle."""
    sock = getattr(transport, "socket", None)
    if seconds <= 0 or sock is None or not hasattr(transport, "setTcpKeepAlive"):
        return
    try:
        transport.setTcpKeepAlive(True)
        for name, value in (("TCP_KEEPIDLE", seconds), ("TCP_KEEPINTVL", max(1, seconds // 3)),
                            ("TCP_KEEPCNT", 3)):
            option = getattr(socket, name, None)
            if option is not None:
                sock.setsockopt(socket.IPPROTO_TCP, option, value)
    except OSError:
        pass  # not a TCP socket after all, or the platform refuses: keepalive is best effort


def client_class(protocol) -> str:
    """The client-output-buffer-limit class of a connection: pubsub while subscribed."""
    session = protocol.session
    pubsub = getattr(protocol._store, "pubsub", None)
    if pubsub is not None and session is not None:
        state = pubsub.clients.get(session.id)
        if state is not None and state.count():
            return "pubsub"
    return "normal"


def output_size(protocol) -> int:
    """What a connection holds for its client: unsent transport bytes and queued replies."""
    return buffered(protocol.transport) + protocol._queued_bytes


def over_output_limit(protocol, limits, now: float, extra: int = 0) -> bool:
    """Whether the connection is over its class's hard limit, or its soft one for too long.

    ``extra``: bytes about to be added. Starts or resets the soft limit's clock, as
    Redis's checkClientOutputBufferLimits.
    """
    hard, soft, seconds = limits.output.get(client_class(protocol), (0, 0, 0))
    if not hard and not soft:
        return False
    used = output_size(protocol) + extra
    if hard and used >= hard:
        return True
    if soft and used >= soft:
        since = protocol._soft_since
        if since is None:
            protocol._soft_since = now
            return False
        return now - since > seconds
    protocol._soft_since = None
    return False


def abort(protocol, drop: bool = True) -> None:
    """Close a connection now, dropping what it had not sent (the memory is released).

    With ``drop`` the socket is aborted (Twisted's abortConnection: a reset), the only
    way to let go of the transport's buffer; else closed in order (nothing is pending).
    """
    protocol._closing = True
    protocol._queue.clear()
    protocol._queued_bytes = 0
    protocol._held = None
    if protocol._chunk is not None:
        del protocol._chunk.parts[:]
        protocol._chunk.close = False
    transport = protocol.transport
    if drop and hasattr(transport, "abortConnection"):
        transport.abortConnection()
    else:
        transport.loseConnection()


def close_over_output(protocol, limits) -> None:
    """Close a connection over its output buffer limit: logged, counted, memory released."""
    limits.output_buffer_disconnections += 1
    log.warn("Client {client} closed for overcoming of output buffer limits.",
             client=client_line(protocol.session).decode("utf-8", "replace"))
    abort(protocol)


def close_over_query(protocol, limits, head: bytes) -> None:
    """Close a connection whose unparsed request passed client-query-buffer-limit."""
    limits.query_buffer_disconnections += 1
    log.warn("Closing client that reached max query buffer length: {client} "
             "(qbuf initial bytes: {head!r})",
             client=client_line(protocol.session).decode("utf-8", "replace"), head=head[:64])
    abort(protocol)


class Watchdog:
    """One factory's admission control and once-a-second cron over its connections."""

    def __init__(self, store, clock) -> None:
        self.store = store
        self.limits = limits_of(store)
        self.clock = clock
        self.connections = set()
        self.protect = False  # protected mode applies (twistd kvstore's listeners)
        self._cron = task.LoopingCall(self.cron)
        self._cron.clock = clock
        self._measured = None  # (when, bytes) of the last measure of the clients' buffers
        # The engine's eviction and INFO used_memory count the clients' buffers too.
        store.clients_memory = self.clients_memory

    def start(self) -> None:
        """Run the cron every CRON_INTERVAL seconds."""
        if not self._cron.running:
            self._cron.start(CRON_INTERVAL, now=False)

    def stop(self) -> None:
        """Stop the cron."""
        if self._cron.running:
            self._cron.stop()

    def admit(self, transport):
        """Return the error to send a new connection before closing it, or None to serve it.

        Counted in store.clients before its session exists, so ``maxclients`` connected
        clients are served and the next is refused, as Redis's acceptCommonHandler.
        """
        limits = self.limits
        if len(self.store.clients) >= limits.maxclients:
            limits.rejected_connections += 1
            return MAX_CLIENTS
        if (self.protect and limits.protected_mode and not is_loopback(transport.getPeer())
                and not _has_password(self.store)):
            limits.rejected_connections += 1
            return DENIED
        set_keepalive(transport, limits.keepalive)
        return None

    def clients_memory(self) -> int:
        """Bytes the clients hold in query and output buffers, measured again when the last
        measure is older than MEASURE_EVERY seconds per client (at least 10 ms): the
        engine asks before each command while ``maxmemory`` is set. Measuring is
        O(clients) and closes clients over ``maxmemory-clients``."""
        now = self.clock.seconds()
        measured = self._measured
        if measured is not None and now - measured[0] < max(
                0.01, MEASURE_EVERY * len(self.connections)):
            return measured[1]
        return self.measure(now)

    def measure(self, now: float) -> int:
        """Measure what every client holds (and evict clients over maxmemory-clients)."""
        sizes = []
        for protocol in self.connections:
            if protocol._closing or protocol.session is None:
                continue
            sizes.append((client_memory(protocol), protocol))
        total = sum(size for size, _ in sizes)
        limit = client_eviction_limit(self.store)
        if limit and total > limit:
            total = self._evict_clients(sizes, total, limit)
        self._measured = (now, total)
        return total

    def _evict_clients(self, sizes: list, total: int, limit: int) -> int:
        # evictClients: the clients holding most go first until the rest fit; never those
        # with CLIENT NO-EVICT on. O(clients log clients).
        for size, protocol in sorted(sizes, key=_first, reverse=True):
            if total <= limit:
                break
            if protocol.session.no_evict or not size:
                continue
            self.limits.evicted_clients += 1
            log.info("Evicting client: {client}",
                     client=client_line(protocol.session).decode("utf-8", "replace"))
            abort(protocol)
            total -= size
        return total

    def cron(self) -> None:
        """Close idle clients (``timeout``) and clients over their output limits, measure
        the clients' buffers (client eviction): O(clients)."""
        limits = self.limits
        now = self.clock.seconds()
        self.measure(now)
        idle = limits.timeout
        for protocol in list(self.connections):
            if protocol._closing or protocol.session is None:
                continue
            if idle and now - protocol.session.last_interaction > idle and \
                    _may_time_out(protocol):
                log.info("Closing idle client")
                abort(protocol, drop=False)
                continue
            if over_output_limit(protocol, limits, now):
                close_over_output(protocol, limits)


def client_memory(protocol) -> int:
    """What a connection holds for its client: its output (see output_size) and its query
    buffer (a partly received request)."""
    parser = getattr(protocol, "_parser", None)
    if parser is not None:
        held = parser.memory()
    else:
        framer = protocol._lines  # a line dialect's unfinished line
        held = framer.limit - framer._room if framer is not None else 0
    return output_size(protocol) + held


def _first(pair):
    return pair[0]


def _has_password(store) -> bool:
    # Redis tests the default user's nopass flag only (a disabled default user counts).
    auth = getattr(store, "auth", None)
    return auth is not None and not auth.default.nopass


def _may_time_out(protocol) -> bool:
    # Not subscribers, MONITOR clients nor clients waiting on a reply (Redis's blocked).
    if client_class(protocol) == "pubsub":
        return False
    if protocol.session in getattr(protocol._store, "monitors", ()):
        return False
    if getattr(protocol.session, "blocked", None) is not None:  # BLPOP and the like
        return False
    return not any(chunk.pending for chunk in protocol._queue)


@implementer(IPushProducer)
class OutputGate:
    """A connection's streaming producer: reading stops while its output is not taken.

    Twisted pauses it when the transport's buffer passes bufferSize and resumes it when
    the buffer is empty; the protocol ``hold``s it while its reply queue is too long. A
    streamed reply (ReplyStream) ``attach``-ed to it is paused and resumed with it.
    """

    def __init__(self, protocol, call_later) -> None:
        self.protocol = protocol
        self.call_later = call_later
        self.full = False  # the transport's buffer is over its bufferSize
        self.backlog = False  # the protocol's queued replies are over HIGH_WATER
        self.stream = None
        self._reading = True
        self._wake = None  # the DelayedCall looking at held requests again

    def attach(self, stream) -> None:
        """Pace ``stream`` (an IPushProducer) with the transport from now on."""
        self.stream = stream
        if self.full:
            stream.pauseProducing()

    def detach(self) -> None:
        """The streamed reply ended."""
        self.stream = None

    def pauseProducing(self) -> None:
        """The transport's buffer is full: stop reading (and streaming)."""
        self.full = True
        self._update()
        if self.stream is not None:
            self.stream.pauseProducing()

    def resumeProducing(self) -> None:
        """The transport's buffer drained: read again, serve held requests."""
        self.full = False
        self._update()
        if self.stream is not None:
            self.stream.resumeProducing()
        self.protocol.resume()

    def stopProducing(self) -> None:
        """The connection is gone."""
        if self.stream is not None:
            self.stream.stopProducing()
            self.stream = None
        if self._wake is not None and self._wake.active():
            self._wake.cancel()
        self._wake = None

    def hold(self, backlog: bool) -> None:
        """Note whether the protocol's queue is over its high water mark."""
        self.backlog = backlog
        self._update()
        if not backlog:
            self.wake_later()

    def wake_later(self) -> None:
        """Look at held requests again next turn, once this turn's replies were written."""
        if self._wake is None or not self._wake.active():
            self._wake = self.call_later(0, self._woken)

    def _woken(self) -> None:
        self._wake = None
        if not (self.full or self.backlog):  # else the one ending it wakes it
            self.protocol.resume()

    def _update(self) -> None:
        transport = self.protocol.transport
        reading = not (self.full or self.backlog)
        if reading == self._reading or transport is None:
            return
        self._reading = reading
        if reading:
            transport.resumeProducing()
        else:
            transport.pauseProducing()


class LimitedOutput:
    """Mixed into KVProtocol: output limits and requests held until replies are taken."""

    def _output_memory(self) -> int:
        return output_size(self)

    def _over_limit(self, parts: list) -> bool:
        # Redis adds a read's replies to the client's buffers before writing any: over
        # the limit, none of them is written. O(replies of the read).
        limits = self._watchdog.limits
        if over_output_limit(self, limits, self._seconds(),
                             sum(len(part) for part in parts if part is not None)):
            close_over_output(self, limits)
            return True
        return False

    def _hold_output(self, requests: list, argv, error) -> None:
        # The read's replies passed READ_OUTPUT after ``argv``: its later requests wait
        # (held, as during a pause) until the transport took the replies.
        held = self._held
        if held is None:
            held = self._held = deque()
        index = 0
        while requests[index] is not argv:
            index += 1
        held.extend((each, None) for each in requests[index + 1:])
        if error is not None:
            held.append((None, error))  # reported after them, then closed
        self._slow = True
        self._wake_for_output()

    def _wake_for_output(self) -> None:
        self._outgate.wake_later()

    def _output_full(self) -> bool:
        """Whether requests must wait for the client to take replies (see _hold_output)."""
        gate = self._outgate
        return self._read_out > READ_OUTPUT or (
            gate is not None and (gate.full or gate.backlog))

    def _stream_writer(self):
        """The write of a streamed reply (KEYS, DUMP): counted against the output limit.

        Redis builds such a reply whole before writing it, so a client whose limit is
        smaller than the reply is closed mid-run; here the bytes streamed so far count as
        if still unsent. Without a normal-class limit, the plain write.
        """
        limits = self._limits
        if limits is None or not limits.normal_limited:
            return self._write
        write = self._write
        streamed = [0]
        hard = limits.output.get(client_class(self), (0, 0, 0))[0]
        if hard:
            return self._held_stream(limits, hard)

        def limited(piece: bytes) -> None:
            streamed[0] += len(piece)
            if self._closing:
                return
            if over_output_limit(self, limits, self._seconds(), streamed[0]):
                stream = self._stream
                close_over_output(self, limits)
                if stream is not None:
                    stream.stopProducing()
                return
            write(piece)
        return limited

    def _held_stream(self, limits, hard: int):
        # With a hard limit, as Redis (which builds a reply whole before writing any of
        # it), nothing is written until the reply is complete: a client whose reply passes
        # its hard limit is closed having received none of it. At most ``hard`` bytes are
        # held. ``finish`` (called when the stream ends) writes them.
        held = []
        size = [0]

        def holding(piece: bytes) -> None:
            if self._closing:
                return
            size[0] += len(piece)
            if over_output_limit(self, limits, self._seconds(), size[0]):
                del held[:]
                stream = self._stream
                close_over_output(self, limits)
                if stream is not None:
                    stream.stopProducing()
                return
            held.append(piece)

        def finish() -> None:
            if held and not self._closing:
                self._write(b"".join(held))
            del held[:]
        holding.finish = finish
        return holding
