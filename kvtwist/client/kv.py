"""The Twisted client API: connect() to kvstore, kvproxy or Redis and get Deferreds back.

The connection itself (pipelining, timeouts, pub/sub) is
L{kvtwist.client.protocol.RespClientProtocol}; this module adds one method per
common command, the factory and C{connect}.
"""

from __future__ import annotations

import re

from twisted.internet import defer, protocol
from twisted.internet.error import TimeoutError
from twisted.python import failure

from kvtwist.wire.replies import Status
from kvtwist.client.protocol import (
    ClientDisconnected, NotAnswered, ReplyError, RequestTimeout, RespClientProtocol,
    UnexpectedReply)

__all__ = [
    "ClientDisconnected",
    "KVClient",
    "NotAnswered",
    "ReplyError",
    "RequestTimeout",
    "RespClientFactory",
    "RespClientProtocol",
    "UnexpectedReply",
    "connect",
    "endpoint_from_string",
]


def _flag(ok) -> bool:
    return ok is not None and isinstance(ok, Status)


def _parse_info(text: bytes) -> dict:
    info = {}
    for line in text.decode("utf-8", "replace").splitlines():
        if not line or line.startswith("#") or ":" not in line:
            continue
        key, value = line.split(":", 1)
        info[key] = value
    return info


class KVClient(RespClientProtocol):
    """A RESP client with one method per common command, each returning a Deferred.

    Works against kvstore, kvproxy and redis-server alike. For commands
    without a method, use L{execute}.
    """

    def get(self, key) -> defer.Deferred:
        """Deferred fires with the value (bytes) or None when the key is missing."""
        return self.execute(b"GET", key)

    def set(self, key, value, ex: int | None = None, px: int | None = None,
            nx: bool = False, xx: bool = False) -> defer.Deferred:
        """Deferred fires with True when set, False when NX/XX prevented it."""
        args = [b"SET", key, value]
        if ex is not None:
            args += [b"EX", ex]
        if px is not None:
            args += [b"PX", px]
        if nx:
            args.append(b"NX")
        if xx:
            args.append(b"XX")
        return self.execute(*args).addCallback(_flag)

    def delete(self, *keys) -> defer.Deferred:
        """Deferred fires with the number of keys removed."""
        return self.execute(b"DEL", *keys)

    def exists(self, *keys) -> defer.Deferred:
        """Deferred fires with how many of the keys exist."""
        return self.execute(b"EXISTS", *keys)

    def mget(self, *keys) -> defer.Deferred:
        """Deferred fires with a list of values, None for missing keys."""
        return self.execute(b"MGET", *keys)

    def mset(self, mapping) -> defer.Deferred:
        """Set several keys from a dict or (key, value) pairs; Deferred fires with True."""
        items = mapping.items() if hasattr(mapping, "items") else mapping
        args = [b"MSET"]
        for key, value in items:
            args.append(key)
            args.append(value)
        return self.execute(*args).addCallback(_flag)

    def incr(self, key, amount: int = 1) -> defer.Deferred:
        """Deferred fires with the new integer value."""
        if amount == 1:
            return self.execute(b"INCR", key)
        return self.execute(b"INCRBY", key, amount)

    def decr(self, key, amount: int = 1) -> defer.Deferred:
        """Deferred fires with the new integer value."""
        if amount == 1:
            return self.execute(b"DECR", key)
        return self.execute(b"DECRBY", key, amount)

    def expire(self, key, seconds: int) -> defer.Deferred:
        """Deferred fires with True if the timeout was set, False if the key is missing."""
        return self.execute(b"EXPIRE", key, seconds).addCallback(bool)

    def ttl(self, key) -> defer.Deferred:
        """Deferred fires with seconds to live, -1 without expiry, -2 when missing."""
        return self.execute(b"TTL", key)

    def keys(self, pattern=b"*") -> defer.Deferred:
        """Deferred fires with the list of matching keys."""
        return self.execute(b"KEYS", pattern)

    def dbsize(self) -> defer.Deferred:
        """Deferred fires with the number of keys."""
        return self.execute(b"DBSIZE")

    def ping(self, message=None) -> defer.Deferred:
        """Deferred fires with b"PONG", or the message echoed back."""
        args = [b"PING"] if message is None else [b"PING", message]
        return self.execute(*args).addCallback(
            lambda reply: reply.text if isinstance(reply, Status) else reply)

    def info(self, section=None) -> defer.Deferred:
        """Deferred fires with INFO's fields as a dict of str to str."""
        args = [b"INFO"] if section is None else [b"INFO", section]
        return self.execute(*args).addCallback(_parse_info)

    def flush(self) -> defer.Deferred:
        """Remove every key (FLUSHDB); Deferred fires with True."""
        return self.execute(b"FLUSHDB").addCallback(_flag)

    def publish(self, channel, message) -> defer.Deferred:
        """Deferred fires with the number of subscribers that received the message."""
        return self.execute(b"PUBLISH", channel, message)

    def subscribe(self, *channels) -> defer.Deferred:
        """Deferred fires with the confirmations; messages then go to L{on_push} handlers."""
        return self.execute(b"SUBSCRIBE", *channels)

    def unsubscribe(self, *channels) -> defer.Deferred:
        """Deferred fires with the confirmations (all channels when none are named)."""
        return self.execute(b"UNSUBSCRIBE", *channels)

    def quit(self) -> defer.Deferred:
        """Say goodbye; Deferred fires with True once the server acknowledged."""
        return self.execute(b"QUIT").addCallback(_flag)


class RespClientFactory(protocol.ClientFactory):
    """Builds L{KVClient} connections sharing one clock, default timeout and reply depth
    limit (see L{RespClientProtocol})."""

    protocol = KVClient

    def __init__(self, clock=None, timeout: float | None = None, max_depth: int | None = None,
                 too_deep=None) -> None:
        self.clock = clock
        self.timeout = timeout
        self.max_depth = max_depth
        self.too_deep = too_deep

    def buildProtocol(self, addr):
        """Return a new client protocol for one connection."""
        proto = self.protocol(self.clock, self.timeout, self.max_depth, self.too_deep)
        proto.factory = self
        return proto


_HOST_PORT = re.compile(r"^\[?([^\[\]]*?)\]?:(\d+)$")


def endpoint_from_string(reactor, description: str):
    """Return a client endpoint for C{host:port} or a Twisted endpoint description.

    C{"127.0.0.1:7379"} means TCP; anything else goes to
    L{twisted.internet.endpoints.clientFromString} (C{"tcp:host=h:port=p"},
    C{"tls:host=h:port=p"}, C{"unix:path=/run/kv.sock"}).
    """
    from twisted.internet import endpoints

    match = _HOST_PORT.match(description)
    if match is not None and not description.startswith(("tcp:", "tls:", "unix:", "ssl:")):
        return endpoints.TCP4ClientEndpoint(reactor, match.group(1), int(match.group(2))) \
            if ":" not in match.group(1) else \
            endpoints.TCP6ClientEndpoint(reactor, match.group(1), int(match.group(2)))
    return endpoints.clientFromString(reactor, description)


def connect(reactor, endpoint, timeout: float | None = None, clock=None) -> defer.Deferred:
    """Connect to a RESP server; the Deferred fires with a connected L{KVClient}.

    @param endpoint: an C{IStreamClientEndpoint}, or a string for
        L{endpoint_from_string}.
    @param timeout: seconds allowed for the connection attempt (else the
        Deferred fails with L{twisted.internet.error.TimeoutError}) and, by
        default, for each request (None: no limit).
    @param clock: for timers (defaults to C{reactor}); a C{task.Clock} in tests.
    """
    if isinstance(endpoint, str):
        endpoint = endpoint_from_string(reactor, endpoint)
    clock = reactor if clock is None else clock
    d = endpoint.connect(RespClientFactory(clock, timeout))
    if timeout is None:
        return d
    expired = []

    def expire():
        expired.append(True)
        d.cancel()

    timer = clock.callLater(timeout, expire)

    def settle(result):
        if timer.active():
            timer.cancel()
        if expired and isinstance(result, failure.Failure):
            return failure.Failure(TimeoutError(
                string="could not connect within %g seconds" % (timeout,)))
        return result

    return d.addBoth(settle)
