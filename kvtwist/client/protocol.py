"""The RESP2 client connection: pipelined requests, timeouts and pub/sub routing."""

from __future__ import annotations

import os
from collections import deque

from twisted.internet import defer, protocol
from twisted.internet.error import ConnectionDone, ConnectionLost
from twisted.python import failure, log

from kvtwist.wire import respreply
from kvtwist.client.deadlines import Deadlines
from kvtwist.loop.directwrite import direct_writer
from kvtwist.wire.replies import Error

__all__ = ["ClientDisconnected", "NotAnswered", "ReplyError", "RequestTimeout",
           "RespClientProtocol", "UnexpectedReply"]


class ReplyError(Exception):
    """The server answered a request with an error reply.

    ``message`` is the reply text, e.g. ``ERR syntax error``; ``reply`` is the
    L{kvtwist.wire.replies.Error} value itself, ready to relay unchanged.
    """

    def __init__(self, reply: Error) -> None:
        Exception.__init__(self, reply.message)
        self.reply = reply
        self.message = reply.message


class ClientDisconnected(ConnectionLost):
    """The connection closed before the reply to a request arrived."""

    def __str__(self) -> str:
        # ConnectionLost prefixes a generic sentence; our message says it all.
        return str(self.args[0]) if self.args else "connection to the server lost"


class UnexpectedReply(ClientDisconnected):
    """The server sent a reply that fits no request (one nobody asked for, a second
    reply to a request, or a reply its request's check refused): the connection was
    closed and every request still waiting on it failed with this."""


class NotAnswered(ClientDisconnected):
    """Another request on the connection timed out, so the connection was closed before
    this request's reply came: the server may or may not have run it."""


class RequestTimeout(Exception):
    """No reply arrived within the request's timeout; the connection was closed."""


# Commands whose replies arrive once per channel argument, and whose replies
# change which out-of-band messages the connection may receive.
_SUBSCRIBE_COMMANDS = frozenset(
    [b"SUBSCRIBE", b"PSUBSCRIBE", b"UNSUBSCRIBE", b"PUNSUBSCRIBE"])
_PUSH_KINDS = frozenset([b"message", b"pmessage"])


class _Request:
    """One request waiting for its reply(ies), in send order."""

    __slots__ = ("deferred", "deadline", "timeout", "raw", "expect", "collected",
                 "abandoned", "command", "check")

    def __init__(self, deferred, raw, command, check=None):
        self.deferred = deferred
        # When the reply is overdue (clock seconds), or None: no timeout or settled.
        self.deadline = None
        self.timeout = None
        self.raw = raw
        # Replies still expected: 1 for ordinary commands, the number of
        # channels for (P)SUBSCRIBE, None for an argument-less (P)UNSUBSCRIBE,
        # resolved when its first reply arrives.
        self.expect = 1
        self.collected = None
        self.abandoned = False
        self.command = command
        # None, or a predicate the reply must satisfy; a reply it refuses means the
        # connection is out of step with its requests.
        self.check = check


class _Marker:
    """``check`` for the reply to a checked request's ECHO marker: the token, exactly."""

    __slots__ = ("token",)

    def __init__(self, token: bytes) -> None:
        self.token = token

    def __call__(self, reply) -> bool:
        return reply.__class__ is bytes and reply == self.token


class _NotMarker(_Marker):
    """``check`` for a checked request's own reply: anything but its marker's token."""

    __slots__ = ()

    def __call__(self, reply) -> bool:
        return not (reply.__class__ is bytes and reply == self.token)


class RespClientProtocol(protocol.Protocol):
    """The connection: sends requests pipelined, matches replies in order.

    Requests issued during one reactor turn are written together in a single
    C{transport.write} at the end of the turn, so a burst of commands costs one
    packet. Replies are matched to requests strictly in order, which is how
    RESP pipelining works.

    @param clock: provides C{callLater} for batching and timeouts; the global
        reactor when None.
    @param timeout: default per-request timeout in seconds (None: wait forever).
    @param max_depth: replies whose arrays nest deeper are delivered as C{too_deep}
        (an L{Error} saying so by default), see L{respreply.ReplyParser}.
    """

    def __init__(self, clock=None, timeout: float | None = None, max_depth: int | None = None,
                 too_deep=None) -> None:
        if clock is None:
            from twisted.internet import reactor as clock
        self._clock = clock
        self.timeout = timeout
        self._parser = respreply.ReplyParser(max_depth, too_deep)
        self._pending: deque = deque()
        self._outgoing: list = []
        self._large_out = False  # _outgoing holds a piece over respreply.LARGE_ARG
        self._direct = None  # direct_writer of a TCP transport, once connected
        self._flush_call = None
        self._deadlines = Deadlines(clock, lambda: self._pending, self._timed_out)
        self._push_handlers: list = []
        self._watchers: list = []
        self._channels: set = set()
        self._patterns: set = set()
        # Why further requests must fail right away, once the connection is
        # going down (set before connectionLost when we close it ourselves).
        self._closed_reason: Exception | None = None
        self.connected_peer = None
        self._lost_reason = None
        self.disconnected = defer.Deferred()
        self._markers = 0  # checked requests sent; their tokens are _token + a count
        self._token = None

    # -- public API ------------------------------------------------------------

    def execute(self, *args, timeout: float | None = None) -> defer.Deferred:
        """Send one command; the Deferred fires with its reply value.

        The value is a L{kvtwist.wire.replies} reply (bytes, None, int, list,
        Status). An error reply fails the Deferred with L{ReplyError}; a lost
        connection with L{ClientDisconnected}; no reply within C{timeout}
        seconds (default: the client's timeout) with L{RequestTimeout}.
        """
        return self._send(args, False, timeout)

    def request(self, argv, timeout: float | None = None, check=None,
                checked: bool = False) -> defer.Deferred:
        """Send one argv; the Deferred fires with the reply value, error replies included.

        Unlike L{execute}, an error reply is delivered as a
        L{kvtwist.wire.replies.Error} value rather than a failure, which is what a
        proxy relaying replies verbatim wants. Disconnects and timeouts still
        fail the Deferred.

        C{check} (a predicate) must accept the reply; if it refuses it, the
        connection is out of step: it is closed and this request and every other
        one waiting fail with L{UnexpectedReply}. With C{checked}, the request is
        followed by C{ECHO <token>} (a marker): a command that answers twice or
        not at all (one the caller does not know) is caught the same way, before
        a later request can be given a reply that is not its own.
        """
        if not checked:
            return self._send(argv, True, timeout, check)
        if self._token is None:
            self._token = b"kvtwist-sync-" + os.urandom(8).hex().encode("ascii") + b"-"
        self._markers += 1
        token = b"%s%d" % (self._token, self._markers)
        d = self._send(argv, True, timeout, _NotMarker(token))
        if self._closed_reason is None and self.transport is not None:
            marker = self._send([b"ECHO", token], True, timeout, _Marker(token))
            marker.addErrback(lambda failure: None)  # its request reports the failure
            self._pending[-1].command = self._pending[-2].command
        return d

    def on_push(self, handler) -> None:
        """Call C{handler(reply)} for every pub/sub message pushed to this connection.

        While subscribed, arrays of the form C{[b"message", channel, payload]}
        or C{[b"pmessage", pattern, channel, payload]} are out-of-band: they go
        to the push handlers, never to a pending request.
        """
        self._push_handlers.append(handler)

    def when_disconnected(self) -> defer.Deferred:
        """Return a Deferred firing with the exception that ended the connection.

        Each call returns a new Deferred, so any number of observers can wait.
        """
        d = defer.Deferred()
        if self._watchers is None:
            d.callback(self._lost_reason)
        else:
            self._watchers.append(d)
        return d

    @property
    def is_connected(self) -> bool:
        """True while requests can still be sent."""
        return self.transport is not None and self._closed_reason is None

    @property
    def subscribed(self) -> bool:
        """True while subscribed to at least one channel or pattern."""
        return bool(self._channels or self._patterns)

    def flush_writes(self) -> None:
        """Write the requests queued during this reactor turn now, not at its end."""
        if self._flush_call is not None:
            if self._flush_call.active():
                self._flush_call.cancel()
            self._flush_call = None
        if self._outgoing and self.transport is not None:
            outgoing = self._outgoing
            self._outgoing = []
            write = self._direct if self._direct is not None else self.transport.write
            if self._large_out:  # a large argument goes as itself, never joined
                self._large_out = False
                for data in respreply.coalesce(outgoing):
                    write(data)
                return
            write(outgoing[0] if len(outgoing) == 1 else b"".join(outgoing))

    def queue_request(self, data) -> None:
        """Queue an encoded request (``encode_request``'s bytes or pieces) for the next
        flush, after those already queued."""
        if data.__class__ is bytes:
            self._outgoing.append(data)
        else:
            self._outgoing += data
            self._large_out = True

    def close(self) -> defer.Deferred:
        """Close the connection; the Deferred fires once it is closed.

        Requests still waiting fail with L{ClientDisconnected}.
        """
        d = self.when_disconnected()
        if self.transport is not None and self._watchers is not None:
            self.flush_writes()
            self.transport.loseConnection()
        return d

    # -- sending -----------------------------------------------------------------

    def _send(self, argv, raw: bool, timeout, check=None) -> defer.Deferred:
        if self._closed_reason is not None or self.transport is None:
            reason = self._closed_reason or ClientDisconnected("not connected to the server")
            return defer.fail(reason)
        try:
            data = respreply.encode_request(argv)  # a list when an argument is large
        except (TypeError, ValueError) as exc:
            return defer.fail(exc)
        command = argv[0] if argv else b""
        if command.__class__ is not bytes:
            command = str(command).encode("utf-8")
        entry = _Request(None, raw, command, check)
        entry.deferred = defer.Deferred(lambda d: self._cancel(entry))
        upper = command.upper()
        if upper in _SUBSCRIBE_COMMANDS:
            entry.collected = []
            entry.expect = len(argv) - 1 if len(argv) > 1 else None
        self._pending.append(entry)
        self.queue_request(data)
        if self._flush_call is None:
            self._flush_call = self._clock.callLater(0, self._scheduled_flush)
        if timeout is None:
            timeout = self.timeout
        if timeout is not None:
            self._deadlines.arm(entry, timeout)
        return entry.deferred

    def _scheduled_flush(self) -> None:
        self._flush_call = None
        self.flush_writes()

    def _cancel(self, entry: _Request) -> None:
        # The reply will still arrive in its slot; keeping the entry queued
        # (marked abandoned) discards it there, so later replies stay matched.
        entry.abandoned = True
        if entry.deadline is not None:
            self._deadlines.settle(entry)

    def _timed_out(self, entry: _Request) -> None:
        # A late reply would be read as the answer to the *next* request if we
        # merely skipped this one, and a server that stalls on one request
        # stalls every request behind it. Like redis-py and hiredis, we give up
        # on the connection: this request fails with RequestTimeout and every
        # other pending one with NotAnswered (whoever made it may ask again on
        # another connection, if running it twice is harmless).
        self._deadlines.settle(entry)
        entry.abandoned = True
        name = entry.command.decode("utf-8", "replace").upper()
        entry.deferred.errback(RequestTimeout(
            "no reply to %s within %g seconds; connection closed" % (name, entry.timeout)))
        self._abort(NotAnswered(
            "%s ahead of it on the connection timed out, so the connection was closed; "
            "the server may have run it" % (name,)))

    def _abort(self, reason: Exception) -> None:
        if self._closed_reason is None:
            self._closed_reason = reason
        self._fail_pending(reason)
        if self.transport is not None:
            abort = getattr(self.transport, "abortConnection", None)
            if abort is not None:
                abort()
            else:
                self.transport.loseConnection()

    def _fail_pending(self, reason: Exception) -> None:
        if self._flush_call is not None:
            if self._flush_call.active():
                self._flush_call.cancel()
            self._flush_call = None
        self._outgoing = []
        pending, self._pending = self._pending, deque()
        for entry in pending:
            if entry.deadline is not None:
                self._deadlines.settle(entry)
            if not entry.abandoned:
                entry.abandoned = True
                entry.deferred.errback(failure.Failure(reason))

    # -- receiving ---------------------------------------------------------------

    def dataReceived(self, data: bytes) -> None:
        """Feed bytes to the reply parser and deliver every complete reply."""
        parser = self._parser
        parser.feed(data)
        need_more = respreply.NEED_MORE
        while True:
            try:
                reply = parser.next_reply()
            except respreply.ProtocolError as exc:
                self._abort(ClientDisconnected(
                    "connection closed: the server sent invalid RESP (%s)" % (exc,)))
                return
            if reply is need_more:
                return
            self._deliver(reply)
            if self._closed_reason is not None:
                return

    def _deliver(self, reply) -> None:
        if (self._channels or self._patterns or self._subscribing()) \
                and reply.__class__ is list and reply and reply[0] in _PUSH_KINDS:
            for handler in list(self._push_handlers):
                try:
                    handler(reply)
                except Exception:
                    log.err(None, "kvtwist client push handler failed")
            return
        if not self._pending:
            self._abort(UnexpectedReply(
                "connection closed: the server sent a reply nobody asked for"))
            return
        entry = self._pending[0]
        if entry.collected is not None:
            self._collect(entry, reply)
            return
        self._pending.popleft()
        self._resolve(entry, reply)

    def _subscribing(self) -> bool:
        return bool(self._pending) and self._pending[0].collected is not None

    def _collect(self, entry: _Request, reply) -> None:
        # (P)SUBSCRIBE and (P)UNSUBSCRIBE answer once per channel; the request
        # fires with the list of confirmations once they have all arrived.
        if isinstance(reply, Error):
            self._pending.popleft()
            self._resolve(entry, reply)
            return
        if entry.expect is None:
            if entry.command.upper() == b"UNSUBSCRIBE":
                entry.expect = max(1, len(self._channels))
            else:
                entry.expect = max(1, len(self._patterns))
        if reply.__class__ is list and len(reply) == 3:
            kind, name = reply[0], reply[1]
            if kind == b"subscribe":
                self._channels.add(name)
            elif kind == b"psubscribe":
                self._patterns.add(name)
            elif kind == b"unsubscribe":
                self._channels.discard(name)
            elif kind == b"punsubscribe":
                self._patterns.discard(name)
        entry.collected.append(reply)
        if len(entry.collected) >= entry.expect:
            self._pending.popleft()
            self._resolve(entry, entry.collected)

    def _resolve(self, entry: _Request, reply) -> None:
        if entry.deadline is not None:
            self._deadlines.settle(entry)
        if entry.check is not None and not entry.check(reply):
            self._out_of_step(entry)
            return
        if entry.abandoned:
            return
        entry.abandoned = True
        if reply.__class__ is Error and not entry.raw:
            entry.deferred.errback(ReplyError(reply))
        else:
            entry.deferred.callback(reply)

    def _out_of_step(self, entry: _Request) -> None:
        # Replies no longer line up with requests: nothing more read here can be
        # trusted to belong to the request it would be matched with.
        name = entry.command.decode("utf-8", "replace").upper()
        reason = UnexpectedReply(
            "connection closed: the server's reply does not fit the request (%s, or a "
            "command before it, answered more or less than once)" % (name,))
        if not entry.abandoned:
            entry.abandoned = True
            entry.deferred.errback(failure.Failure(reason))
        self._abort(reason)

    # -- connection --------------------------------------------------------------

    def connectionMade(self) -> None:
        """Remember the peer, for error messages."""
        # Requests of a turn are already joined; send them without a reactor pass.
        self._direct = direct_writer(self.transport)
        try:
            peer = self.transport.getPeer()
            self.connected_peer = "%s:%s" % (peer.host, peer.port)
        except Exception:
            self.connected_peer = None

    def connectionLost(self, reason=protocol.connectionDone) -> None:
        """Fail every pending request and tell the disconnect observers."""
        where = " to %s" % (self.connected_peer,) if self.connected_peer else ""
        if reason.check(ConnectionDone):
            text = "connection%s closed by the server" % (where,)
        else:
            text = "connection%s lost: %s" % (where, reason.getErrorMessage())
        if self._closed_reason is None:
            self._closed_reason = ClientDisconnected(text)
        self._fail_pending(ClientDisconnected(text + "; request not answered"))
        self.transport = None
        self._lost_reason = reason.value
        watchers, self._watchers = self._watchers, None
        self.disconnected.callback(reason.value)
        for d in watchers:
            d.callback(reason.value)
