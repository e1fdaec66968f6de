"""``twistd kvproxy``: options and the caching proxy's service tree."""

from __future__ import annotations

import gc

from twisted.application import service, strports
from twisted.internet import defer
from twisted.python import usage

from kvtwist.engine.config import memory
from kvtwist.serve.daemon import ServerOptions
from kvtwist.proxy.auth import login_command
from kvtwist.proxy.backend import Backend
from kvtwist.proxy.cache import Cache
from kvtwist.proxy.clustertap import cluster_seeds, cluster_store
from kvtwist.client import endpoint_from_string
from kvtwist.proxy.invalidation import InvalidationListener
from kvtwist.proxy.lanes import Lanes
from kvtwist.proxy.pool import (
    EndpointServer, Pool, PoolError, backend_server, listen_endpoint, parse_pool)
from kvtwist.proxy.router import ShardedStore
from kvtwist.proxy.shards import Shard, ShardBackend, ShardListener
from kvtwist.proxy.stats import StatsFactory
from kvtwist.proxy.store import ProxyStore
from kvtwist.proxy.front import ProxyFactory

DEFAULT_LISTEN = "tcp:7380:interface=127.0.0.1"
DEFAULT_BACKEND = "tcp:127.0.0.1:7379"
DEFAULTS = {"listen": [DEFAULT_LISTEN], "backend": DEFAULT_BACKEND, "ttl": 60.0,
            "miss-ttl": 5.0, "max-entries": 100000, "timeout": 5.0, "no-tracking": False,
            "heartbeat": 1.0, "heartbeat-timeout": 2.0, "allow-admin": False,
            "cache-bytes": 0, "requirepass": None, "backend-user": None,
            "backend-password": None, "backends": None, "pool": None, "serve-stale": 0.0,
            "stats": None, "cluster": None, "resp3-cached": False, "inline-replies": "text"}

# --cache-bytes takes Redis's memory units (64mb, 1gb, 100000).
parse_bytes = memory(0, 2 ** 63 - 1)

# Options naming a secret, and those naming a file holding it (its first line).
SECRETS = (("requirepass", "requirepass-file"), ("backend-password", "backend-password-file"))


def read_secret(path: str) -> str:
    """The first line of file ``path``, without its line end: a password kept out of ps."""
    try:
        with open(path, "rb") as f:
            line = f.readline()
    except OSError as e:
        raise usage.UsageError("cannot read %s: %s" % (path, e.strerror))
    return line.rstrip(b"\r\n").decode("utf-8", "surrogateescape")


def secret(text):
    """A password option's text as bytes (None stays None)."""
    return None if text is None else text.encode("utf-8", "surrogateescape")


class Options(ServerOptions):
    """Options for ``twistd kvproxy``."""

    default_listen = DEFAULT_LISTEN

    synopsis = ("[--listen ENDPOINT]... [--backend ENDPOINT|host:port[:weight] [name]]... "
                "[--pool FILE] [--ttl SECONDS] [--requirepass PASSWORD] "
                "[--backend-password PASSWORD]")
    longdesc = ("A caching proxy in front of kvstore or any Redis server: GET results are "
                "cached and kept coherent through the backend's invalidation messages "
                "(CLIENT TRACKING BCAST) where it has them, by TTL alone otherwise.")

    def __init__(self) -> None:
        ServerOptions.__init__(self)
        self["backends"] = []
        self["backend"] = DEFAULT_BACKEND
        self["cluster"] = []

    def opt_cluster(self, text: str) -> None:
        """a Redis Cluster node (host:port or tcp:host:port) to read the slot map from;
        repeat it for more seeds: kvproxy then fronts the whole cluster"""
        self["cluster"].append(text)

    def opt_backend(self, text: str) -> None:
        """a backend: a client endpoint (tcp:, tls:, unix:) or host:port[:weight] [name];
        repeat it for a pool of servers keys are sharded over, as nutcracker's"""
        self["backends"].append(text)
        self["backend"] = self["backends"][0]

    opt_b = opt_backend

    optParameters = [
        ["pool", None, None,
         "a nutcracker YAML file describing the pool of servers (one pool; its listen is "
         "kvproxy's unless --listen is given, its redis_auth the backend password)"],
        ["stats", None, None,
         "a server endpoint (tcp:22222:interface=127.0.0.1) where each connection gets a "
         "JSON document of the pool's and every server's counters, as nutcracker's"],
        ["serve-stale", None, "0",
         "seconds a cached GET may still be answered while its server is unreachable"],
        ["ttl", None, "60", "seconds a cached value lives"],
        ["miss-ttl", None, "5", "seconds a cached miss (nil) lives; at most --ttl"],
        ["max-entries", None, "100000", "most entries cached (least recently used go first)"],
        ["cache-bytes", None, "0",
         "most bytes cached, keys and values summed (64mb, 1gb; 0: no limit besides "
         "--max-entries; least recently used go first)"],
        ["requirepass", None, None,
         "the password kvproxy's clients must AUTH with (default: none)"],
        ["requirepass-file", None, None, "read --requirepass from the first line of a file"],
        ["backend-password", None, None,
         "the password kvproxy sends (AUTH) on every backend connection it opens"],
        ["backend-password-file", None, None,
         "read --backend-password from the first line of a file"],
        ["backend-user", None, None,
         "the ACL user kvproxy logs in to the backend as (needs --backend-password)"],
        ["timeout", None, "5", "seconds to wait for a backend reply (0: no limit)"],
        ["heartbeat", None, "1", "seconds between PINGs on the invalidation link (0: none)"],
        ["inline-replies", None, "text",
         "how inline (telnet) commands are answered: text, as redis-cli shows them, or resp, "
         "as redis-server answers them"],
        ["heartbeat-timeout", None, "2",
         "seconds a heartbeat PING may take before the invalidation link is dropped"],
    ]
    optFlags = [
        ["no-tracking", None, "do not subscribe to invalidations: rely on TTLs alone"],
        ["allow-admin", None, "forward server-wide commands (CONFIG SET, FLUSHALL, SHUTDOWN, "
                              "DEBUG, ...), which kvproxy refuses by default"],
        ["resp3-cached", None, "answer HELLO 3 in kvproxy, RESP3 rendered from the shared "
                               "connection's replies (cached GETs, RESP2 shapes), rather than "
                               "give RESP3 clients a backend connection of their own"],
    ]

    def postOptions(self) -> None:
        if self["pool"] is not None:
            self._read_pool()
        ServerOptions.postOptions(self)
        try:
            for name in ("ttl", "miss-ttl", "timeout", "heartbeat", "heartbeat-timeout",
                         "serve-stale"):
                self[name] = float(self[name])
            self["max-entries"] = int(self["max-entries"])
        except ValueError as e:
            raise usage.UsageError("bad number: %s" % (e,))
        try:
            self["cache-bytes"] = parse_bytes(str(self["cache-bytes"]))
        except ValueError:
            raise usage.UsageError("--cache-bytes must be a size such as 1000000 or 64mb")
        for name, file_option in SECRETS:
            if self[file_option] is not None:
                if self[name] is not None:
                    raise usage.UsageError("give --%s or --%s, not both" % (name, file_option))
                self[name] = read_secret(self[file_option])
        if self["backend-user"] is not None and self["backend-password"] is None:
            raise usage.UsageError("--backend-user needs --backend-password")
        for name in ("ttl", "miss-ttl", "timeout", "max-entries", "heartbeat", "serve-stale"):
            if self[name] < 0:
                raise usage.UsageError("--%s must not be negative" % (name,))
        if self["inline-replies"] not in ("text", "resp"):
            raise usage.UsageError("--inline-replies must be text or resp")
        if self["heartbeat-timeout"] <= 0:
            raise usage.UsageError("--heartbeat-timeout must be positive")
        try:
            for text in self["backends"]:
                backend_server(text)
        except PoolError as e:
            raise usage.UsageError(str(e))
        if self["cluster"]:
            self["cluster"] = cluster_seeds(self)

    def _read_pool(self) -> None:
        if self["backends"]:
            raise usage.UsageError("give --pool or --backend, not both")
        try:
            with open(self["pool"], "r", encoding="utf-8") as f:
                pool = parse_pool(f.read())
            listen = listen_endpoint(pool.listen) if pool.listen else None
        except OSError as e:
            raise usage.UsageError("cannot read %s: %s" % (self["pool"], e.strerror))
        except PoolError as e:
            raise usage.UsageError("%s: %s" % (self["pool"], e))
        self["pool"] = pool
        if listen is not None and not self["listen"]:
            self["listen"] = ["%s:backlog=%d" % (listen, pool.backlog)]
        if pool.redis_auth:
            if self["backend-password"] is not None or self["backend-password-file"]:
                raise usage.UsageError("the pool's redis_auth is its backend password: "
                                       "give it there or with --backend-password, not both")
            self["backend-password"] = pool.redis_auth
        if pool.timeout is not None:
            self["timeout"] = pool.timeout


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
        stop = getattr(self.store, "stop", None)
        if stop is not None:
            stop()
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
    cache = Cache(reactor, ttl=float(settings["ttl"]), miss_ttl=float(settings["miss-ttl"]),
                  max_entries=int(settings["max-entries"]),
                  max_bytes=int(settings["cache-bytes"]))
    login = login_command(secret(settings["backend-user"]),
                          secret(settings["backend-password"]))
    pool = settings["pool"]
    backends = settings["backends"] or [settings["backend"]]
    serve_stale = float(settings["serve-stale"])
    if settings["cluster"]:
        store = cluster_store(reactor, settings, cache, login, timeout,
                              secret(settings["requirepass"]) or b"")
        children = [store.service]
    elif pool is None and len(backends) == 1 and not serve_stale and not settings["stats"]:
        server = backend_server(backends[0])
        # An endpoint string, or host:port, is used as given (today's backend_address).
        address = (backends[0] if server.__class__ is EndpointServer
                   or backends[0].strip() == server.address else server.endpoint())
        backend = Backend(reactor, endpoint_from_string(reactor, address), address, timeout,
                          identify=True, login=login)
        listener = None
        if not settings["no-tracking"]:
            listener = InvalidationListener(
                reactor, endpoint_from_string(reactor, address), cache, address, timeout,
                heartbeat=float(settings["heartbeat"]),
                heartbeat_timeout=float(settings["heartbeat-timeout"]), login=login)
        store = ProxyStore(reactor, cache, backend, listener,
                           allow_admin=bool(settings["allow-admin"]),
                           requirepass=secret(settings["requirepass"]) or b"",
                           resp3_cached=bool(settings["resp3-cached"]))
        store.lanes = Lanes(reactor, lambda: Backend(
            reactor, endpoint_from_string(reactor, address), address, timeout, login=login))
        children = [backend] if listener is None else [listener, backend]
    else:
        if pool is None:
            pool = Pool([backend_server(text) for text in backends], timeout=timeout)
        store, children = sharded_store(reactor, settings, pool, cache, login, timeout)
    store.config = {"inline-replies": settings["inline-replies"]}  # the front end's dialect
    top = ProxyService(store)
    for child in children:
        child.setServiceParent(top)
    factory = ProxyFactory(store, reactor=reactor)
    for description in settings["listen"]:
        strports.service(description, factory, reactor=reactor).setServiceParent(top)
    if settings["stats"]:
        strports.service(settings["stats"], StatsFactory(store),
                         reactor=reactor).setServiceParent(top)
    return top


def sharded_store(reactor, settings: dict, pool: Pool, cache, login, timeout):
    """A ShardedStore over ``pool``'s servers, and the services to start (each server's
    backend link and invalidation link)."""
    shards = []
    children = []
    for index, server in enumerate(pool.servers):
        address = server.endpoint()
        backend = ShardBackend(reactor, endpoint_from_string(reactor, address), address,
                               timeout, identify=True, login=login)
        listener = None
        if not settings["no-tracking"]:
            listener = ShardListener(
                reactor, endpoint_from_string(reactor, address), cache, address, timeout,
                heartbeat=float(settings["heartbeat"]),
                heartbeat_timeout=float(settings["heartbeat-timeout"]), login=login)
            children.append(listener)
        children.append(backend)
        shards.append(Shard(reactor, cache, backend, listener, server, index,
                            pool.server_failure_limit, float(settings["serve-stale"])))
    store = ShardedStore(reactor, cache, pool, shards,
                         allow_admin=bool(settings["allow-admin"]),
                         requirepass=secret(settings["requirepass"]) or b"")
    return store, children
