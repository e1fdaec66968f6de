"""kvproxy's invalidation link: CLIENT TRACKING BCAST pushes that drop cache keys."""

from __future__ import annotations

from twisted.application import service
from twisted.internet import defer
from twisted.logger import Logger

from kvtwist.client import RequestTimeout
from kvtwist.proxy.backend import Backend
from kvtwist.proxy.store import BackendUnavailable

INVALIDATE_CHANNEL = b"__redis__:invalidate"

log = Logger()


class InvalidationListener(service.MultiService):
    """A connection receiving the backend's invalidation messages, dropping cache keys (each
    in every database: a message names a key, not its database).

    It sends ``CLIENT ID``, ``CLIENT TRACKING on REDIRECT <id> BCAST`` and
    ``SUBSCRIBE __redis__:invalidate`` (Redis's RESP2 client-side caching). ``state``
    is ``on``, ``unsupported`` (the backend lacks tracking: TTLs alone), or the
    connection's state while it is not established; ``link`` is ``up``, ``down`` or
    ``off`` (unsupported); ``caching`` says whether the cache may be read and filled.

    While the link is up a ``PING`` goes out every ``heartbeat`` seconds and must be
    answered within ``heartbeat_timeout`` (replies on the link arrive in order, so a
    reply also means every invalidation sent before it has arrived); a missed deadline
    closes the connection. The whole cache is dropped whenever the link goes down and
    again when it is back up, since invalidations may have been missed in between;
    while it is down nothing is cached, so reads go to the backend. The connection is
    replaced with ``Backend``'s backoff; ``reconnects`` counts the links made after
    the first. ``login`` (an AUTH argv, or None) is sent first on every connection
    (``Backend``).
    """

    def __init__(self, reactor, endpoint, cache, address: str = "", timeout=None,
                 clock=None, retry=None, heartbeat: float = 1.0,
                 heartbeat_timeout: float = 2.0, login=None) -> None:
        service.MultiService.__init__(self)
        self.clock = reactor if clock is None else clock
        self.cache = cache
        self.mode = None
        self.messages = 0
        self.heartbeat = heartbeat
        self.heartbeat_timeout = heartbeat_timeout
        self.reconnects = 0
        self._links = 0  # links made (handshakes completed)
        self._client = None  # the connection of the current (or coming) link
        self._link = None  # the same without ClientService's wrapper
        self._beat_call = None
        self.connection = Backend(reactor, endpoint, address, timeout, clock,
                                  prepare=self._handshake, on_lost=self._lost, retry=retry,
                                  login=login)
        self.connection.setServiceParent(self)

    @property
    def state(self) -> str:
        """``on``, ``unsupported``, ``connecting`` or ``down``."""
        if self.caching:
            return self.mode
        return "connecting" if self.connection.state == "connected" else self.connection.state

    @property
    def link(self) -> str:
        """``up`` (invalidations flow), ``down``, or ``off`` (the backend has no tracking)."""
        if not self.caching:
            return "down"
        return "up" if self.mode == "on" else "off"

    @property
    def caching(self) -> bool:
        """Whether cached values are kept coherent (or TTL-only by necessity) right now."""
        # The connection itself, not ClientService's wrapper (whose __getattr__ would
        # cost more than the rest of a miss's check).
        return self.mode is not None and self._link.is_connected

    def stopService(self):
        """Stop the heartbeat and disconnect; the Deferred fires once closed."""
        self._stop_beating()
        return service.MultiService.stopService(self)

    # -- the handshake -------------------------------------------------------------

    def _handshake(self, client) -> defer.Deferred:
        self.mode = None
        self._client = client
        self._link = getattr(client, "_protocol", client)
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
        self._made("on")
        log.info("kvproxy: invalidation tracking on with {address}",
                 address=self.connection.address)
        self._schedule_beat()

    def _unsupported(self, reply) -> None:
        self._made("unsupported")
        log.info("kvproxy: {address} has no invalidation tracking ({reply!r}); "
                 "cached values live until their TTL", address=self.connection.address,
                 reply=reply)

    def _made(self, mode: str) -> None:
        self.cache.invalidate_all()
        self.mode = mode
        self._links += 1
        if self._links > 1:
            self.reconnects += 1

    # -- invalidations ---------------------------------------------------------------

    def _pushed(self, message) -> None:
        if len(message) != 3 or message[0] != b"message" or message[1] != INVALIDATE_CHANNEL:
            return
        self.messages += 1
        keys = message[2]
        if keys.__class__ is list:
            # A message names keys, not their database (tracking has none): each key is
            # dropped in every database the cache holds.
            invalidate = self.cache.invalidate
            for key in keys:
                invalidate(key)
        else:  # nil: the backend was flushed
            self.cache.invalidate_all()

    # -- the heartbeat -------------------------------------------------------------

    def _schedule_beat(self) -> None:
        if self.heartbeat > 0:
            self._beat_call = self.clock.callLater(self.heartbeat, self._beat)

    def _stop_beating(self) -> None:
        if self._beat_call is not None and self._beat_call.active():
            self._beat_call.cancel()
        self._beat_call = None

    def _beat(self) -> None:
        self._beat_call = None
        client = self._client
        if self.mode != "on" or not client.is_connected:
            return
        d = client.request([b"PING"], timeout=self.heartbeat_timeout)
        d.addCallbacks(self._beat_answered, self._beat_missed,
                       callbackArgs=(client,), errbackArgs=(client,))

    def _beat_answered(self, reply, client) -> None:
        if client is self._client and self.mode == "on":
            self._schedule_beat()

    def _beat_missed(self, failure, client) -> None:
        # A timed-out request has closed its connection already (RespClientProtocol).
        if client is not self._client:
            return
        if failure.check(RequestTimeout) is not None:
            why = "no reply to PING within %g seconds" % (self.heartbeat_timeout,)
        else:
            why = failure.getErrorMessage()
        self._drop(why)
        client.close()

    # -- losing the link -------------------------------------------------------------

    def _drop(self, why: str) -> None:
        """The link is down: stop caching and flush, once per link."""
        self._stop_beating()
        if self.mode is None:
            return
        self.mode = None
        self.cache.invalidate_all()
        log.warn("kvproxy: invalidation link to {address} down ({why}); cache flushed, "
                 "reconnecting", address=self.connection.address, why=why)

    def _lost(self) -> None:
        self._drop("connection lost")
