"""Test doubles for the proxy: backends (scripted, in memory, pipelined, on the wire)."""

from __future__ import annotations

from twisted.internet.defer import Deferred, fail, succeed
from twisted.internet.error import ConnectionDone, ConnectionRefusedError
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase

from kvtwist.client import RespClientProtocol
from kvtwist.engine.store import Store
from kvtwist.proxy.backend import Selection
from kvtwist.proxy.cache import Cache
from kvtwist.proxy.store import ProxyStore
from kvtwist.wire.replies import OK, Error
from kvtwist.wire.resp import RequestParser


class FakeBackend:
    """A backend whose replies the test hands out one request at a time.

    The PTTL kvproxy sends behind each fetch (``proxy.expiry``) is answered at once with
    ``ttl`` (-1: no expiry) and kept in ``ttl_requests``, not in ``sent``, unless
    ``manual_ttls`` is set: then it is a request like the others.
    """

    state = "connected"
    address = "fake:backend"
    strings_only = False  # a Redis: MGET nils are re-read with GET
    manual_ttls = False
    ttl = -1

    def __init__(self) -> None:
        self.sent = []  # [(argv, Deferred)]
        self.options = []  # each request's keyword options (check functions and db left out)
        self.dbs = []  # each request's database (None: wherever the connection is)
        self.ttl_requests = []  # PTTLs answered at once: [(argv, db)]

    def request(self, argv, **options):
        if not self.manual_ttls and argv[0] == b"PTTL":
            self.ttl_requests.append((list(argv), options.get("db")))
            return succeed(self.ttl)
        d = Deferred()
        self.sent.append((list(argv), d))
        options.pop("check", None)
        self.dbs.append(options.pop("db", None))
        self.options.append(options)
        return d

    def answer(self, index, reply):
        self.sent[index][1].callback(reply)

    def fail(self, index, exc):
        self.sent[index][1].errback(exc)


class StoreBackend:
    """A backend that is a real in-memory kvstore Store."""

    state = "connected"
    address = "memory"
    strings_only = False

    def __init__(self, store) -> None:
        self.session = store.new_session("proxy")
        self.requests = []

    def request(self, argv, **options):
        self.requests.append(list(argv))
        return succeed(self.session.execute(list(argv)))


class Databases:
    """A backend connection's session over ``count`` in-memory Stores, one per database
    (made when first used), with SELECT as Redis 7.0 answers it."""

    def __init__(self, clock, count: int = 16) -> None:
        self.clock = clock
        self.count = count
        self.sessions = {}
        self.db = 0

    def execute(self, argv):
        if argv[0].upper() == b"SELECT":
            if len(argv) != 2:
                return Error("ERR wrong number of arguments for 'select' command")
            try:
                index = int(argv[1])
            except ValueError:
                index = None
            if index is None or b"%d" % (index,) != argv[1]:
                return Error("ERR value is not an integer or out of range")
            if not 0 <= index < self.count:
                return Error("ERR DB index is out of range")
            self.db = index
            return OK
        session = self.sessions.get(self.db)
        if session is None:
            session = self.sessions[self.db] = Store(self.clock).new_session("proxy")
        return session.execute(argv)


class PipelineBackend:
    """A pipelined Redis-like backend: a Store (or ``Databases``) runs each request when it
    is sent, in send order, and the replies wait until ``deliver()`` hands them out, in that
    order. A request's database is SELECTed as ``Backend`` does (``Selection``)."""

    state = "connected"
    address = "pipeline"
    strings_only = False  # MGET nils are re-read with GET, as in front of Redis

    def __init__(self, store) -> None:
        self.session = store if isinstance(store, Databases) else store.new_session("proxy")
        self.selection = Selection()
        self.sent = []  # every argv, in send order
        self.replies = []  # [(reply, Deferred)] not delivered yet

    def request(self, argv, db=None, **options):
        return self.selection.send(self._send, argv, db, options)

    def _send(self, argv, **options):
        self.sent.append(list(argv))
        d = Deferred()
        self.replies.append((self.session.execute(list(argv)), d))
        return d

    def deliver(self, limit: int = -1) -> int:
        """Fire the replies sent so far (and those their callbacks cause), at most ``limit``
        of them (-1: all); return how many."""
        count = 0
        while self.replies and count != limit:
            reply, d = self.replies.pop(0)
            d.callback(reply)
            count += 1
        return count


class ProtocolBackend:
    """A backend that is a real RespClientProtocol over a StringTransport: the test plays
    the server, reading the requests written and feeding replies."""

    state = "connected"
    address = "wire"
    strings_only = False

    def __init__(self, clock, timeout=None) -> None:
        self.clock = clock
        self.client = RespClientProtocol(clock, timeout)
        self.transport = StringTransport()
        self.client.makeConnection(self.transport)
        self.selection = Selection()

    def request(self, argv, db=None, **options):
        return self.selection.send(self.client.request, argv, db, options)

    def written(self) -> list:
        """Return the argvs the client wrote so far (and forget them)."""
        parser = RequestParser()
        parser.feed(self.transport.value())
        self.transport.clear()
        sent = []
        while True:
            argv = parser.next_request()
            if argv is None:
                return sent
            sent.append(argv)


class FakeListener:
    """Stands in for the invalidation listener."""

    state = "on"
    link = "up"
    caching = True
    messages = 0
    reconnects = 0


def result_of(d):
    """Return a fired Deferred's result (the reply value)."""
    box = []
    d.addBoth(box.append)
    return box[0]


class ProxyCase(SynchronousTestCase):
    """A ProxyStore over a FakeBackend on a Clock with one session; the cache stops after."""

    cache_options: dict = {}
    listener = FakeListener  # None: no invalidation listener, TTLs alone

    def setUp(self) -> None:
        self.clock = Clock()
        self.cache = Cache(self.clock, **self.cache_options)
        self.addCleanup(self.cache.stop)
        self.backend = FakeBackend()
        listener = self.listener() if self.listener is not None else None
        self.proxy = ProxyStore(self.clock, self.cache, self.backend, listener)
        self.session = self.proxy.new_session("peer")


class AbortableTransport(StringTransport):
    """A StringTransport that records an abort."""

    aborted = False

    def abortConnection(self):
        self.aborted = True
        StringTransport.abortConnection(self)


class FakeEndpoint:
    """Connects each attempt at once to a fresh transport; ``refuse`` makes attempts fail."""

    def __init__(self) -> None:
        self.connections = []  # [(protocol, transport)]
        self.refuse = False

    def connect(self, factory):
        if self.refuse:
            return fail(ConnectionRefusedError())
        protocol = factory.buildProtocol(None)
        transport = AbortableTransport()
        protocol.makeConnection(transport)
        self.connections.append((protocol, transport))
        return succeed(protocol)

    def written(self, index: int = -1) -> list:
        """Return the argvs written on connection ``index`` so far."""
        parser = RequestParser()
        parser.feed(self.connections[index][1].value())
        sent = []
        while True:
            argv = parser.next_request()
            if argv is None:
                return sent
            sent.append(argv)

    def close(self, index: int = -1) -> None:
        """End connection ``index`` as the reactor would once its transport closed."""
        self.connections[index][0].connectionLost(Failure(ConnectionDone()))


class ShardedCase(SynchronousTestCase):
    """A ShardedStore over three FakeBackends (servers a:1, b:2, c:3, ketama fnv1a_64 with
    hash tags "{}") on a Clock, with one session; the cache stops after."""

    pool_options: dict = {}
    serve_stale = 0.0

    def setUp(self) -> None:
        from kvtwist.proxy.pool import Pool, Server
        from kvtwist.proxy.router import ShardedStore
        from kvtwist.proxy.shards import Shard

        self.clock = Clock()
        self.cache = Cache(self.clock)
        self.addCleanup(self.cache.stop)
        servers = [Server("a", 1), Server("b", 2), Server("c", 3)]
        options = dict(hash_tag="{}")
        options.update(self.pool_options)
        self.pool = Pool(servers, **options)
        self.backends = [FakeBackend() for _ in servers]
        for backend, server in zip(self.backends, servers):
            backend.address = server.address
        self.shards = [Shard(self.clock, self.cache, backend, FakeListener(), server, index,
                             self.pool.server_failure_limit, self.serve_stale)
                       for index, (backend, server) in enumerate(zip(self.backends, servers))]
        self.proxy = ShardedStore(self.clock, self.cache, self.pool, self.shards)
        self.addCleanup(self.proxy.stop)
        self.session = self.proxy.new_session("peer")

    def key_on(self, index: int, prefix: bytes = b"k") -> bytes:
        """A key the pool places on server ``index``."""
        for number in range(1000):
            key = b"%s%d" % (prefix, number)
            if self.pool.distribution.index(key) == index:
                return key
        raise AssertionError("no key for server %d" % (index,))
