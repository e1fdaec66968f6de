"""``twistd kvproxy``: options, the backend connections and the caching proxy's service."""

from __future__ import annotations

import gc

from twisted.application import service, strports
from twisted.application.internet import ClientService, backoffPolicy
from twisted.internet import defer
from twisted.logger import Logger
from twisted.python import usage

from kvtwist.serve.daemon import ServerOptions
from kvtwist.proxy.cache import Cache
from kvtwist.client import RespClientFactory, endpoint_from_string
from kvtwist.proxy.store import BackendUnavailable, ProxyStore
from kvtwist.serve.protocol import KVFactory

DEFAULT_LISTEN = "tcp:7380:interface=127.0.0.1"
DEFAULT_BACKEND = "tcp:127.0.0.1:7379"
INVALIDATE_CHANNEL = b"__redis__:invalidate"
DEFAULTS = {"listen": [DEFAULT_LISTEN], "backend": DEFAULT_BACKEND, "ttl": 60.0,
            "miss-ttl": 5.0, "max-entries": 100000, "timeout": 5.0, "no-tracking": False}

log = Logger()


class Options(ServerOptions):
    """Options for ``twistd kvproxy``."""

    default_listen = DEFAULT_LISTEN

    synopsis = "[--listen ENDPOINT]... [--backend ENDPOINT] [--ttl SECONDS]"
    longdesc = ("A caching proxy in front of kvstore or any Redis server: GET results are "
                "cached and kept coherent through the backend's invalidation messages "
                "(CLIENT TRACKING BCAST) where it has them, by TTL alone otherwise.")

    optParameters = [
        ["backend", "b", DEFAULT_BACKEND, "client endpoint of the backend (tcp:, tls:, unix:)"],
        ["ttl", None, "60", "seconds a cached value lives"],
        ["miss-ttl", None, "5", "seconds a cached miss (nil) lives; at most --ttl"],
        ["max-entries", None, "100000", "most entries cached (least recently used go first)"],
        ["timeout", None, "5", "seconds to wait for a backend reply (0: no limit)"],
    ]
    optFlags = [
        ["no-tracking", None, "do not subscribe to invalidations: rely on TTLs alone"],
    ]

    def postOptions(self) -> None:
        ServerOptions.postOptions(self)
        try:
            for name in ("ttl", "miss-ttl", "timeout"):
                self[name] = float(self[name])
            self["max-entries"] = int(self["max-entries"])
        except ValueError as e:
            raise usage.UsageError("bad number: %s" % (e,))
        for name in ("ttl", "miss-ttl", "timeout", "max-entries"):
            if self[name] < 0:
                raise usage.UsageError("--%s must not be negative" % (name,))


def identify(client) -> defer.Deferred:
    """Ask a backend connection's ``INFO server``; the Deferred delivers (never fails) whether
    the backend holds strings only.

    A kvstore says so (``kvtwist_value_types:string``): there an MGET nil means the key is
    absent, so kvproxy caches it without re-reading it with GET, which it must do on Redis
    (where MGET also answers nil for a key of another type).
    """
    return client.request([b"INFO", b"server"]).addCallbacks(
        lambda reply: (reply.__class__ is bytes
                       and b"\nkvtwist_value_types:string\r" in reply),
        lambda failure: False)


class Backend(service.MultiService):
    """One persistent, pipelined, reconnecting RESP connection to the backend.

    ``state`` is ``connecting`` (an attempt is under way), ``connected`` or ``down``
    (the last attempt failed: requests fail at once until one succeeds).
    ``prepare(client)`` (optional) runs on each new connection before it is used.
    ``on_lost()`` (optional) is called when an established connection ends.
    With ``identify`` (instead of ``prepare``), each new connection first learns
    ``strings_only`` (see ``identify``).
    """

    def __init__(self, reactor, endpoint, address: str = "", timeout=None, clock=None,
                 prepare=None, on_lost=None, retry=None, identify=False) -> None:
        service.MultiService.__init__(self)
        self.clock = reactor if clock is None else clock
        self.address = address
        self.timeout = timeout
        self.state = "connecting"
        self.client = None
        self.strings_only = False  # what the current connection's backend said
        self._on_lost = on_lost
        if identify:
            if prepare is not None:
                raise ValueError("Backend takes prepare or identify, not both")
            prepare = self._identify
        factory = RespClientFactory(self.clock, timeout)
        self._watch_call = None
        self.service = ClientService(
            endpoint, factory, clock=self.clock, prepareConnection=prepare,
            retryPolicy=retry or backoffPolicy(initialDelay=0.1, maxDelay=2.0))
        self.service.setServiceParent(self)

    def _identify(self, client) -> defer.Deferred:
        self.strings_only = False
        return identify(client).addCallback(self._identified)

    def _identified(self, strings_only: bool) -> None:
        self.strings_only = strings_only

    def startService(self) -> None:
        service.MultiService.startService(self)
        self._watch()

    def stopService(self):
        """Disconnect; the Deferred fires once the connection is closed."""
        if self._watch_call is not None and self._watch_call.active():
            self._watch_call.cancel()
        self._watch_call = None
        return service.MultiService.stopService(self)

    def _watch(self) -> None:
        self._watch_call = None
        if not self.running:
            return
        self.service.whenConnected(failAfterFailures=1).addCallbacks(
            self._up, self._attempt_failed)

    def _up(self, client) -> None:
        self.client = client
        self.state = "connected"
        client.when_disconnected().addCallback(self._lost, client)

    def _lost(self, reason, client) -> None:
        if self.client is client:
            self.client = None
            self.strings_only = False
        self.state = "connecting"
        if self._on_lost is not None:
            self._on_lost()
        # ClientService learns of the loss just after its protocol does.
        self._watch_call = self.clock.callLater(0, self._watch)

    def _attempt_failed(self, failure) -> None:
        if not self.running:
            return
        self.state = "down"
        log.warn("kvproxy: cannot reach {address}: {reason}", address=self.address,
                 reason=failure.getErrorMessage())
        # Not from inside ClientService's own callback: its state machine is not reentrant.
        self._watch_call = self.clock.callLater(0, self._watch)

    def request(self, argv: list, **options) -> defer.Deferred:
        """Send ``argv``; the Deferred delivers the reply (errors as ``Error`` values).

        ``options`` (``check``, ``checked``) go to ``RespClientProtocol.request``.
        It fails with ``BackendUnavailable`` when there is no connection, and with the
        client's ``RequestTimeout`` / ``ClientDisconnected`` when no reply comes.
        """
        client = self.client
        if client is not None and client.is_connected:
            return client.request(argv, **options)
        if self.state == "down" or not self.running:
            return defer.fail(BackendUnavailable("cannot connect to %s" % (self.address,)))
        d = self.service.whenConnected(failAfterFailures=1)
        if self.timeout:
            d.addTimeout(self.timeout, self.clock)
        return d.addCallbacks(lambda connected: connected.request(argv, **options),
                              self._unavailable)

    def _unavailable(self, failure):
        raise BackendUnavailable("cannot connect to %s: %s"
                                 % (self.address, failure.getErrorMessage()))


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


# CPython's cyclic collector scans every tracked object on a full (oldest-generation)
# collection, and each cache entry keeps several alive (its DelayedCall and the bound
# methods it holds): with 100k entries that is a 100+ ms pause, and the default
# thresholds start one whenever the long-lived objects grew by 25%, i.e. every few
# seconds while misses fill the cache. Entries hold no reference cycles, so reference
# counting frees them on expiry, replacement and eviction whatever the collector does
# (--max-entries bounds memory); the collector only has garbage cycles to find, and
# the young generations still find those that die young. So full collections are made
# 100x rarer (threshold2 10 -> 1000) and the young generation is collected every 10k
# net allocations rather than 700 (each pass is cheap: it scans only the survivors).
GC_THRESHOLDS = (10000, 10, 1000)


class ProxyService(service.MultiService):
    """The proxy's services: backend connections and listening ports; stops the cache last.

    While running it applies the garbage collector policy above (CPython only: PyPy's
    collector is incremental and has no such pauses) and restores the old one on stop.
    """

    def __init__(self, store: ProxyStore) -> None:
        service.MultiService.__init__(self)
        self.store = store
        self.saved_gc_thresholds = None

    def startService(self) -> None:
        if hasattr(gc, "freeze"):
            self.saved_gc_thresholds = gc.get_threshold()
            # Modules, plugins and the service tree live as long as the process: moved
            # out of the collector's sight once, no full collection rescans them.
            gc.collect()
            gc.freeze()
            gc.set_threshold(*GC_THRESHOLDS)
        service.MultiService.startService(self)

    def stopService(self):
        """Stop listening and disconnect; the Deferred fires once no timer is left."""
        d = defer.maybeDeferred(service.MultiService.stopService, self)
        d.addBoth(self._stopped)
        return d

    def _stopped(self, result):
        self.store.cache.stop()
        if self.saved_gc_thresholds is not None:
            gc.set_threshold(*self.saved_gc_thresholds)
            gc.unfreeze()
            self.saved_gc_thresholds = None
        return result


def makeService(options, reactor=None) -> ProxyService:
    """Build the kvproxy service tree from ``Options`` (or a dict of the same keys)."""
    if reactor is None:
        from twisted.internet import reactor
    settings = dict(DEFAULTS)
    settings.update(options)
    if isinstance(settings["listen"], str):
        settings["listen"] = [settings["listen"]]
    timeout = float(settings["timeout"]) or None
    address = settings["backend"]
    cache = Cache(reactor, ttl=float(settings["ttl"]), miss_ttl=float(settings["miss-ttl"]),
                  max_entries=int(settings["max-entries"]))
    backend = Backend(reactor, endpoint_from_string(reactor, address), address, timeout,
                      identify=True)
    listener = None
    if not settings["no-tracking"]:
        listener = InvalidationListener(reactor, endpoint_from_string(reactor, address),
                                        cache, address, timeout)
    store = ProxyStore(reactor, cache, backend, listener)
    top = ProxyService(store)
    if listener is not None:
        listener.setServiceParent(top)
    backend.setServiceParent(top)
    factory = KVFactory(store, reactor=reactor)
    for description in settings["listen"]:
        strports.service(description, factory, reactor=reactor).setServiceParent(top)
    return top
