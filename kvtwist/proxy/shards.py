"""One server of a sharded pool: its backend link, its invalidation link, its reads, and
nutcracker's failure accounting (``server_failure_limit``, auto-ejection, retry).

A ``Shard`` is a ``ProxyStore`` over its own server that serves no clients itself: the
pool's router (``proxy.router``) sends each key's requests to its shard's ``reads``,
``forward`` and ``write``, so the ordering model holds per server as it does for one
backend (every key lives on one server, whose one connection runs its requests in order).
The cache is shared by every shard: an invalidation drops a key whatever server sent it.
"""

from __future__ import annotations

from twisted.python.failure import Failure

from kvtwist.client import ClientDisconnected, RequestTimeout
from kvtwist.proxy.backend import Backend
from kvtwist.proxy.link import BackendLink, LinkFactory
from kvtwist.proxy.cache import slot
from kvtwist.proxy.invalidation import InvalidationListener
from kvtwist.proxy.store import BackendUnavailable, ProxyStore
from kvtwist.wire.replies import Error

# Failures that count against a server (nutcracker's server_failure): it could not be
# reached, or did not answer in time, or dropped the connection.
SERVER_FAILURES = (BackendUnavailable, RequestTimeout, ClientDisconnected)


class CountingClient(BackendLink):
    """A backend connection counting the bytes it receives and sends (``counter``: its
    Shard's ``bytes_in`` / ``bytes_out``); O(1) per read, O(requests) per write."""

    counter = None

    def dataReceived(self, data: bytes) -> None:
        self.counter.bytes_in += len(data)
        BackendLink.dataReceived(self, data)

    def flush_writes(self) -> None:
        if self._outgoing and self.transport is not None:
            self.counter.bytes_out += sum(map(len, self._outgoing))
        BackendLink.flush_writes(self)


class CountingFactory(LinkFactory):
    """Builds CountingClients for one Shard (``shard``)."""

    protocol = CountingClient
    shard = None

    def buildProtocol(self, addr):
        proto = LinkFactory.buildProtocol(self, addr)
        proto.counter = self.shard
        return proto


class ShardBackend(Backend):
    """A Backend that reports each request's outcome and each failed connection attempt to
    its shard (requests, errors, in-flight, consecutive failures, bytes); O(1) per
    request."""

    shard = None
    factory_class = CountingFactory

    def request(self, argv: list, db=None, **options):
        shard = self.shard
        shard.requests += 1
        shard.in_flight += 1
        return Backend.request(self, argv, db, **options).addBoth(shard.answered)

    def _attempt_failed(self, failure) -> None:
        Backend._attempt_failed(self, failure)
        if self.running:
            self.shard.server_failed()


class ShardListener(InvalidationListener):
    """An invalidation link that keeps its shard's cached values aside (``--serve-stale``)
    before the cache is flushed for a link going down, and forgets them when it is back."""

    shard = None

    def _drop(self, why: str) -> None:
        if self.mode is not None:
            self.shard.keep_stale()
        InvalidationListener._drop(self, why)

    def _made(self, mode: str) -> None:
        InvalidationListener._made(self, mode)
        self.shard.stale = None


class Shard(ProxyStore):
    """One server of the pool (``server``: a ``pool.Server``; ``index``: its place in the
    pool's list).

    ``status`` is ``up``, ``ejected`` (auto-ejected: its keys live on the other servers
    until ``retry_at``), ``down`` or ``connecting``. Counters: ``requests``, ``errors``
    (requests that failed on the server's side), ``ejections``, ``in_flight``,
    ``failures`` (consecutive failures; a reply resets it), ``stale_served``.
    ``ring`` is the router that ejects and readmits it (set by the router).
    """

    def __init__(self, clock, cache, backend, listener, server, index: int,
                 failure_limit: int = 2, serve_stale: float = 0.0) -> None:
        ProxyStore.__init__(self, clock, cache, backend, listener)
        self.server = server
        self.index = index
        self.label = server.name
        self.failure_limit = failure_limit
        self.serve_stale = serve_stale
        self.requests = 0
        self.errors = 0
        self.ejections = 0
        self.in_flight = 0
        self.failures = 0
        self.ejected = False
        self.retry_at = 0.0
        self.ring = None
        self.stale = None  # slot -> value kept when the link went down (--serve-stale)
        self.stale_until = 0.0
        self.stale_served = 0
        self.bytes_in = 0  # bytes received from the server (a ShardBackend counts them)
        self.bytes_out = 0  # bytes sent to it
        backend.shard = self
        factory = getattr(backend, "factory", None)
        if factory is not None and factory.__class__ is CountingFactory:
            factory.shard = self
        if listener is not None:
            listener.shard = self

    @property
    def status(self) -> str:
        """``up``, ``ejected``, ``down`` or ``connecting``."""
        if self.ejected:
            return "ejected"
        state = self.backend.state
        return "up" if state == "connected" else state

    # -- failure accounting (nutcracker's server_ok / server_failure) -----------------

    def answered(self, result):
        """Count a request's outcome; pass it on."""
        self.in_flight -= 1
        if result.__class__ is Failure:
            if result.check(*SERVER_FAILURES) is not None:
                self.errors += 1
                self.server_failed()
        else:
            self.failures = 0
        return result

    def server_failed(self) -> None:
        """One more consecutive failure: at ``failure_limit`` the router may eject it."""
        self.failures += 1
        if self.failures >= self.failure_limit and not self.ejected and self.ring is not None:
            self.ring.failed_too_often(self)

    def failed(self, failure) -> Error:
        """The error a client gets for a request this server did not answer: it names the
        server."""
        error = ProxyStore.failed(self, failure)
        return Error("ERR server %s: %s" % (self.label, error.message[4:]))

    # -- --serve-stale -------------------------------------------------------------

    def keep_stale(self) -> None:
        """Keep this server's cached values aside for ``serve_stale`` seconds before the
        cache is flushed; O(entries) (each key is routed)."""
        if self.serve_stale <= 0 or self.ring is None:
            return
        owner = self.ring.shard_index
        kept = {}
        for name, entry in self.cache._entries.items():
            if name.__class__ is tuple:
                key = name[1]
            else:
                key = name
            if owner(key) == self.index:
                kept[name] = entry[0]
        self.stale = kept
        self.stale_until = self.clock.seconds() + self.serve_stale

    def get(self, key: bytes, db: int):
        """GET ``key`` through the cache; with values kept aside while the link is down,
        one of them answers when the server cannot (O(1))."""
        stale = self.stale
        if stale is None:
            return self.reads.get(key, db)
        if self.clock.seconds() > self.stale_until:
            self.stale = None
            return self.reads.get(key, db)
        name = slot(key, db)
        if name not in stale:
            return self.reads.get(key, db)
        if self.backend.state != "connected":
            self.stale_served += 1
            return stale[name]
        result = self.reads.get(key, db)
        if result.__class__ is Error or not hasattr(result, "addCallback"):
            return self._or_stale(result, name)
        return result.addCallback(self._or_stale, name)

    def _or_stale(self, reply, name):
        stale = self.stale
        if (reply.__class__ is Error and stale is not None and name in stale
                and self.clock.seconds() <= self.stale_until):
            self.stale_served += 1
            return stale[name]
        return reply
