"""kvproxy's invalidation link: CLIENT TRACKING BCAST pushes that drop cache keys."""

from __future__ import annotations

from twisted.application import service
from twisted.internet import defer
from twisted.logger import Logger

from kvtwist.proxy.backend import Backend
from kvtwist.proxy.store import BackendUnavailable

INVALIDATE_CHANNEL = b"__redis__:invalidate"

log = Logger()


class InvalidationListener(service.MultiService):
    """A connection receiving the backend's invalidation messages, dropping cache keys.

    It sends ``CLIENT ID``, ``CLIENT TRACKING on REDIRECT <id> BCAST`` and
    ``SUBSCRIBE __redis__:invalidate`` (Redis's RESP2 client-side caching). ``state``
    is ``on``, ``unsupported`` (the backend lacks tracking: TTLs alone), or the
    connection's state while it is not established; ``caching`` says whether the
    cache may be filled now. The whole cache is dropped whenever the connection is
    made or lost, since invalidations may have been missed in between.
    """

    def __init__(self, reactor, endpoint, cache, address: str = "", timeout=None,
                 clock=None, retry=None) -> None:
        service.MultiService.__init__(self)
        self.cache = cache
        self.mode = None
        self.messages = 0
        self.connection = Backend(reactor, endpoint, address, timeout, clock,
                                  prepare=self._handshake, on_lost=self._lost, retry=retry)
        self.connection.setServiceParent(self)

    @property
    def state(self) -> str:
        """``on``, ``unsupported``, ``connecting`` or ``down``."""
        if self.connection.state == "connected" and self.mode is not None:
            return self.mode
        return "connecting" if self.connection.state == "connected" else self.connection.state

    @property
    def caching(self) -> bool:
        """Whether cached values are kept coherent (or TTL-only by necessity) right now."""
        return self.connection.state == "connected" and self.mode is not None

    def _handshake(self, client) -> defer.Deferred:
        self.mode = None
        client.on_push(self._pushed)
        d = client.request([b"CLIENT", b"ID"])
        d.addCallback(self._got_id, client)
        return d

    def _got_id(self, client_id, client):
        if client_id.__class__ is not int:
            return self._unsupported(client_id)
        d = client.request([b"CLIENT", b"TRACKING", b"on", b"REDIRECT",
                            b"%d" % (client_id,), b"BCAST"])
        d.addCallback(self._tracking_on, client)
        return d

    def _tracking_on(self, reply, client):
        if not hasattr(reply, "text"):
            return self._unsupported(reply)
        d = client.request([b"SUBSCRIBE", INVALIDATE_CHANNEL])
        d.addCallback(self._subscribed)
        return d

    def _subscribed(self, reply) -> None:
        if reply.__class__ is not list:
            raise BackendUnavailable("SUBSCRIBE %s failed: %r" % (INVALIDATE_CHANNEL, reply))
        self.cache.invalidate_all()
        self.mode = "on"
        log.info("kvproxy: invalidation tracking on with {address}",
                 address=self.connection.address)

    def _unsupported(self, reply) -> None:
        self.cache.invalidate_all()
        self.mode = "unsupported"
        log.info("kvproxy: {address} has no invalidation tracking ({reply!r}); "
                 "cached values live until their TTL", address=self.connection.address,
                 reply=reply)

    def _pushed(self, message) -> None:
        if len(message) != 3 or message[0] != b"message" or message[1] != INVALIDATE_CHANNEL:
            return
        self.messages += 1
        keys = message[2]
        if keys.__class__ is list:
            invalidate = self.cache.invalidate
            for key in keys:
                invalidate(key)
        else:  # nil: the backend was flushed
            self.cache.invalidate_all()

    def _lost(self) -> None:
        self.mode = None
        self.cache.invalidate_all()
