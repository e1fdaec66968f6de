"""``twistd kvproxy``: options and the caching proxy's service tree."""

from __future__ import annotations

import gc

from twisted.application import service, strports
from twisted.internet import defer
from twisted.python import usage

from kvtwist.serve.daemon import ServerOptions
from kvtwist.proxy.backend import Backend
from kvtwist.proxy.cache import Cache
from kvtwist.client import endpoint_from_string
from kvtwist.proxy.invalidation import InvalidationListener
from kvtwist.proxy.store import ProxyStore
from kvtwist.serve.factory import KVFactory

DEFAULT_LISTEN = "tcp:7380:interface=127.0.0.1"
DEFAULT_BACKEND = "tcp:127.0.0.1:7379"
DEFAULTS = {"listen": [DEFAULT_LISTEN], "backend": DEFAULT_BACKEND, "ttl": 60.0,
            "miss-ttl": 5.0, "max-entries": 100000, "timeout": 5.0, "no-tracking": False,
            "heartbeat": 1.0, "heartbeat-timeout": 2.0, "allow-admin": False}


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
        ["heartbeat", None, "1", "seconds between PINGs on the invalidation link (0: none)"],
        ["heartbeat-timeout", None, "2",
         "seconds a heartbeat PING may take before the invalidation link is dropped"],
    ]
    optFlags = [
        ["no-tracking", None, "do not subscribe to invalidations: rely on TTLs alone"],
        ["allow-admin", None, "forward server-wide commands (CONFIG SET, FLUSHALL, SHUTDOWN, "
                              "DEBUG, ...), which kvproxy refuses by default"],
    ]

    def postOptions(self) -> None:
        ServerOptions.postOptions(self)
        try:
            for name in ("ttl", "miss-ttl", "timeout", "heartbeat", "heartbeat-timeout"):
                self[name] = float(self[name])
            self["max-entries"] = int(self["max-entries"])
        except ValueError as e:
            raise usage.UsageError("bad number: %s" % (e,))
        for name in ("ttl", "miss-ttl", "timeout", "max-entries", "heartbeat"):
            if self[name] < 0:
                raise usage.UsageError("--%s must not be negative" % (name,))
        if self["heartbeat-timeout"] <= 0:
            raise usage.UsageError("--heartbeat-timeout must be positive")


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
        listener = InvalidationListener(
            reactor, endpoint_from_string(reactor, address), cache, address, timeout,
            heartbeat=float(settings["heartbeat"]),
            heartbeat_timeout=float(settings["heartbeat-timeout"]))
    store = ProxyStore(reactor, cache, backend, listener,
                       allow_admin=bool(settings["allow-admin"]))
    top = ProxyService(store)
    if listener is not None:
        listener.setServiceParent(top)
    backend.setServiceParent(top)
    factory = KVFactory(store, reactor=reactor)
    for description in settings["listen"]:
        strports.service(description, factory, reactor=reactor).setServiceParent(top)
    return top
