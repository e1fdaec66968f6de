"""Tests for kvtwist.proxy: cached reads, coalescing, coherence of writes, errors, INFO."""

from __future__ import annotations

from twisted.internet.defer import Deferred, fail, succeed
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.trial.unittest import SynchronousTestCase

from kvtwist import __version__
from kvtwist.cache import Cache
from kvtwist.client import ClientDisconnected, RequestTimeout
from kvtwist.commands import Store
from kvtwist.proxy import BackendUnavailable, ProxyStore
from kvtwist.replies import OK, PONG, Error
from kvtwist.server import KVFactory


class FakeBackend:
    """A backend whose replies the test hands out one request at a time."""

    state = "connected"
    address = "fake:backend"

    def __init__(self) -> None:
        self.sent = []  # [(argv, Deferred)]

    def request(self, argv):
        d = Deferred()
        self.sent.append((list(argv), d))
        return d

    def answer(self, index, reply):
        self.sent[index][1].callback(reply)


class StoreBackend:
    """A backend that is a real in-memory kvstore Store."""

    state = "connected"
    address = "memory"

    def __init__(self, store) -> None:
        self.session = store.new_session("proxy")
        self.requests = []

    def request(self, argv):
        self.requests.append(list(argv))
        return succeed(self.session.execute(list(argv)))


class FakeListener:
    """Stands in for the invalidation listener."""

    state = "on"
    caching = True
    messages = 0


def result_of(d):
    """Return a fired Deferred's result (the reply value)."""
    box = []
    d.addBoth(box.append)
    return box[0]


class ProxyReadTests(SynchronousTestCase):
    """GET and MGET through the cache."""

    def setUp(self) -> None:
        self.clock = Clock()
        self.cache = Cache(self.clock, ttl=60, miss_ttl=5)
        self.backend = FakeBackend()
        self.proxy = ProxyStore(self.clock, self.cache, self.backend, FakeListener())
        self.session = self.proxy.new_session("peer")

    def tearDown(self) -> None:
        self.cache.stop()

    def test_missThenHit(self) -> None:
        """A GET miss asks the backend once; the next GET is answered from the cache."""
        d = self.session.execute([b"GET", b"k"])
        self.assertEqual(self.backend.sent[0][0], [b"GET", b"k"])
        self.backend.answer(0, b"v")
        self.assertEqual(result_of(d), b"v")
        self.assertEqual(self.session.execute([b"get", b"k"]), b"v")
        self.assertEqual(len(self.backend.sent), 1)

    def test_nilIsCachedBriefly(self) -> None:
        """A nil GET reply is cached for the miss TTL only."""
        d = self.session.execute([b"GET", b"k"])
        self.backend.answer(0, None)
        self.assertIsNone(result_of(d))
        self.assertIsNone(self.session.execute([b"GET", b"k"]))
        self.clock.advance(5)
        self.assertIsInstance(self.session.execute([b"GET", b"k"]), Deferred)

    def test_errorReplyNotCached(self) -> None:
        """A WRONGTYPE error is relayed and not cached."""
        d = self.session.execute([b"GET", b"k"])
        self.backend.answer(0, Error("WRONGTYPE Operation against a key"))
        self.assertEqual(result_of(d), Error("WRONGTYPE Operation against a key"))
        self.assertNotIn(b"k", self.cache)

    def test_concurrentMissesCoalesce(self) -> None:
        """Concurrent misses on one key make one backend request and all get its reply."""
        d1 = self.session.execute([b"GET", b"k"])
        d2 = self.proxy.new_session().execute([b"GET", b"k"])
        self.assertEqual(len(self.backend.sent), 1)
        self.backend.answer(0, b"v")
        self.assertEqual((result_of(d1), result_of(d2)), (b"v", b"v"))
        self.assertEqual(self.proxy.coalesced, 1)

    def test_coalescedFailureAnswersEveryWaiter(self) -> None:
        """A failed fetch gives its client and a joined one the same error reply; nothing cached."""
        d1 = self.session.execute([b"GET", b"k"])
        d2 = self.proxy.new_session().execute([b"GET", b"k"])
        self.backend.sent[0][1].errback(RequestTimeout("no reply to GET within 5 seconds"))
        expected = Error("ERR backend timeout: no reply to GET within 5 seconds")
        self.assertEqual((result_of(d1), result_of(d2)), (expected, expected))
        self.assertEqual(self.proxy.backend_errors, 1)
        self.assertNotIn(b"k", self.cache)
        self.assertIsNone(self.cache.pending(b"k"))

    def test_coalescedErrorReplyAnswersEveryWaiter(self) -> None:
        """An error reply to a fetch reaches its client and every joined client."""
        d1 = self.session.execute([b"GET", b"k"])
        d2 = self.session.execute([b"GET", b"k"])
        d3 = self.proxy.new_session().execute([b"GET", b"k"])
        self.backend.answer(0, Error("WRONGTYPE Operation against a key"))
        wrong = Error("WRONGTYPE Operation against a key")
        self.assertEqual([result_of(d) for d in (d1, d2, d3)], [wrong, wrong, wrong])
        self.assertEqual(self.proxy.coalesced, 2)
        self.assertIsNone(self.cache.pending(b"k"))

    def test_fetchedValueThenHitWithoutBackend(self) -> None:
        """After a fetch completes its placeholder is gone and the next GET is a hit."""
        d = self.session.execute([b"GET", b"k"])
        self.backend.answer(0, b"v")
        self.assertEqual(result_of(d), b"v")
        self.assertIsNone(self.cache.pending(b"k"))
        self.assertEqual(self.session.execute([b"GET", b"k"]), b"v")
        self.assertEqual(len(self.backend.sent), 1)

    def test_invalidationDuringFetch(self) -> None:
        """A fetch raced by an invalidation answers its waiter but caches nothing."""
        d = self.session.execute([b"GET", b"k"])
        self.cache.invalidate(b"k")
        self.backend.answer(0, b"stale")
        self.assertEqual(result_of(d), b"stale")
        self.assertNotIn(b"k", self.cache)

    def test_readAfterInvalidationDoesNotJoinOldFetch(self) -> None:
        """A GET after an invalidation makes its own fetch instead of joining the old one."""
        self.session.execute([b"GET", b"k"])
        self.cache.invalidate(b"k")
        d = self.session.execute([b"GET", b"k"])
        self.assertEqual(len(self.backend.sent), 2)
        self.backend.answer(0, b"old")
        self.backend.answer(1, b"new")
        self.assertEqual(result_of(d), b"new")
        self.assertEqual(self.cache.get(b"k"), b"new")

    def test_mgetFetchesOnlyMissing(self) -> None:
        """MGET takes cached keys from the cache and asks for the rest in one MGET."""
        self.cache.put(b"a", b"1")
        d = self.session.execute([b"MGET", b"a", b"b", b"c", b"b"])
        self.assertEqual(self.backend.sent[0][0], [b"MGET", b"b", b"c"])
        self.backend.answer(0, [b"2", None])
        self.assertEqual(result_of(d), [b"1", b"2", None, b"2"])
        self.assertEqual(self.cache.get(b"b"), b"2")
        self.assertNotIn(b"c", self.cache)

    def test_mgetAllCached(self) -> None:
        """An MGET of cached keys needs no backend request."""
        self.cache.put(b"a", b"1")
        self.cache.put(b"b", None)
        self.assertEqual(self.session.execute([b"MGET", b"a", b"b"]), [b"1", None])
        self.assertEqual(self.backend.sent, [])

    def test_mgetError(self) -> None:
        """An MGET error reply is relayed and nothing is cached."""
        d = self.session.execute([b"MGET", b"a"])
        self.backend.answer(0, Error("ERR boom"))
        self.assertEqual(result_of(d), Error("ERR boom"))
        self.assertEqual(len(self.cache), 0)

    def test_noCachingWhileListenerDown(self) -> None:
        """While invalidations are not flowing, GETs are forwarded and nothing is cached."""
        self.proxy.listener.caching = False
        d = self.session.execute([b"GET", b"k"])
        self.backend.answer(0, b"v")
        self.assertEqual(result_of(d), b"v")
        self.assertNotIn(b"k", self.cache)


class ProxyWriteTests(SynchronousTestCase):
    """Writes go to the backend and invalidate the keys they touch."""

    def setUp(self) -> None:
        self.clock = Clock()
        self.cache = Cache(self.clock, ttl=60)
        self.backend = FakeBackend()
        self.proxy = ProxyStore(self.clock, self.cache, self.backend, FakeListener())
        self.session = self.proxy.new_session("peer")

    def tearDown(self) -> None:
        self.cache.stop()

    def check_invalidates(self, argv, cached, kept=()) -> None:
        for key in list(cached) + list(kept):
            self.cache.put(key, b"old")
        d = self.session.execute(argv)
        self.assertEqual(self.backend.sent[-1][0], argv)
        for key in cached:
            self.assertNotIn(key, self.cache)
            self.cache.put(key, b"refetched-before-ack")
        self.backend.sent[-1][1].callback(OK)
        self.assertEqual(result_of(d), OK)
        for key in cached:
            self.assertNotIn(key, self.cache)
        for key in kept:
            self.assertIn(key, self.cache)

    def test_set(self) -> None:
        """SET invalidates its key when sent and when acknowledged."""
        self.check_invalidates([b"SET", b"k", b"v"], [b"k"], [b"other"])

    def test_del(self) -> None:
        """DEL and its kvtwist aliases invalidate every key named."""
        self.check_invalidates([b"DEL", b"a", b"b"], [b"a", b"b"], [b"c"])
        self.check_invalidates([b"delete", b"a"], [b"a"])
        self.check_invalidates([b"REMOVE", b"a"], [b"a"])

    def test_mset(self) -> None:
        """MSET invalidates its keys, not its values."""
        self.check_invalidates([b"MSET", b"a", b"1", b"b", b"2"], [b"a", b"b"], [b"1", b"2"])

    def test_otherWrites(self) -> None:
        """INCR, APPEND, GETDEL, EXPIRE, PUT and RENAME invalidate the keys they touch."""
        self.check_invalidates([b"INCR", b"n"], [b"n"])
        self.check_invalidates([b"APPEND", b"k", b"x"], [b"k"])
        self.check_invalidates([b"GETDEL", b"k"], [b"k"])
        self.check_invalidates([b"EXPIRE", b"k", b"10"], [b"k"])
        self.check_invalidates([b"PUT", b"k", b"v"], [b"k"])
        self.check_invalidates([b"RENAME", b"a", b"b"], [b"a", b"b"], [b"c"])

    def test_flush(self) -> None:
        """FLUSHALL and FLUSH drop the whole cache."""
        self.check_invalidates([b"FLUSHALL"], [b"a", b"b"])
        self.check_invalidates([b"FLUSH"], [b"a"])

    def test_unknownCommandFlushes(self) -> None:
        """A command the proxy cannot attribute to keys drops the whole cache."""
        self.check_invalidates([b"SOMETHINGNEW", b"x"], [b"a"])

    def test_readOnlyKeepsCache(self) -> None:
        """A read-only command leaves the cache alone."""
        self.cache.put(b"a", b"1")
        d = self.session.execute([b"EXISTS", b"a"])
        self.backend.answer(0, 1)
        self.assertEqual(result_of(d), 1)
        self.assertIn(b"a", self.cache)

    def test_pipelinedGetAfterSetIsFetched(self) -> None:
        """A GET pipelined right after a SET of its key is not served the old cached value."""
        self.cache.put(b"k", b"old")
        self.session.execute([b"SET", b"k", b"new"])
        d = self.session.execute([b"GET", b"k"])
        self.assertEqual([argv for argv, _ in self.backend.sent],
                         [[b"SET", b"k", b"new"], [b"GET", b"k"]])
        self.backend.answer(0, OK)
        self.backend.answer(1, b"new")
        self.assertEqual(result_of(d), b"new")


class ProxyFailureTests(SynchronousTestCase):
    """Backend failures become clear error replies."""

    def setUp(self) -> None:
        self.clock = Clock()
        self.cache = Cache(self.clock)
        self.backend = FakeBackend()
        self.proxy = ProxyStore(self.clock, self.cache, self.backend)
        self.session = self.proxy.new_session()

    def tearDown(self) -> None:
        self.cache.stop()

    def test_unavailable(self) -> None:
        """An unreachable backend gives 'backend unavailable' and caches nothing."""
        d = self.session.execute([b"GET", b"k"])
        self.backend.sent[0][1].errback(BackendUnavailable("cannot connect to x"))
        reply = result_of(d)
        self.assertIsInstance(reply, Error)
        self.assertTrue(reply.message.startswith("ERR backend unavailable"), reply.message)
        self.assertNotIn(b"k", self.cache)
        self.assertIsNone(self.cache.pending(b"k"))

    def test_timeout(self) -> None:
        """A slow backend gives 'backend timeout'."""
        d = self.session.execute([b"SET", b"k", b"v"])
        self.backend.sent[0][1].errback(RequestTimeout("no reply to SET within 1 seconds"))
        self.assertTrue(result_of(d).message.startswith("ERR backend timeout"))

    def test_disconnectDuringWrite(self) -> None:
        """A write cut off by a disconnect errs and still invalidates its key."""
        self.cache.put(b"k", b"old")
        d = self.session.execute([b"SET", b"k", b"v"])
        self.cache.put(b"k", b"old")
        self.backend.sent[0][1].errback(ClientDisconnected("connection lost"))
        self.assertTrue(result_of(d).message.startswith("ERR backend connection lost"))
        self.assertNotIn(b"k", self.cache)

    def test_mgetFailure(self) -> None:
        """A failed MGET gives an error and releases its placeholders."""
        d = self.session.execute([b"MGET", b"a", b"b"])
        self.backend.sent[0][1].errback(ClientDisconnected("connection lost"))
        self.assertIsInstance(result_of(d), Error)
        self.assertIsNone(self.cache.pending(b"a"))

    def test_forwardFailure(self) -> None:
        """A failed read-only command gives an error reply."""
        self.backend.request = lambda argv: fail(BackendUnavailable("down"))
        self.assertIsInstance(result_of(self.session.execute([b"DBSIZE"])), Error)
        self.assertEqual(self.proxy.backend_errors, 1)


class ProxyLocalCommandTests(SynchronousTestCase):
    """Commands the proxy answers itself."""

    def setUp(self) -> None:
        self.clock = Clock()
        self.cache = Cache(self.clock)
        self.backend = FakeBackend()
        self.proxy = ProxyStore(self.clock, self.cache, self.backend)
        self.session = self.proxy.new_session()

    def test_ping(self) -> None:
        """PING answers PONG or echoes its argument without the backend."""
        self.assertEqual(self.session.execute([b"PING"]), PONG)
        self.assertEqual(self.session.execute([b"ping", b"hi"]), b"hi")
        self.assertEqual(self.backend.sent, [])

    def test_emptyCommand(self) -> None:
        """An empty argument vector gets an error, not a crash."""
        self.assertEqual(self.session.execute([]), Error("ERR empty command"))

    def test_quit(self) -> None:
        """QUIT answers OK and marks the session closing."""
        self.assertEqual(self.session.execute([b"QUIT"]), OK)
        self.assertTrue(self.session.closing)

    def test_refused(self) -> None:
        """Connection-state and blocking commands are refused with a clear error."""
        for argv in ([b"SUBSCRIBE", b"c"], [b"MULTI"], [b"BLPOP", b"l", b"0"]):
            reply = self.session.execute(argv)
            self.assertIn("not supported through kvproxy", reply.message)
        self.assertEqual(self.backend.sent, [])

    def test_hello(self) -> None:
        """HELLO 2 and 3 are answered locally and set the client's protocol; 4 is refused."""
        reply = self.session.execute([b"HELLO", b"2"])
        self.assertEqual(reply.items[:2],
                         [(b"server", b"kvproxy"), (b"version", __version__.encode())])
        self.assertEqual(self.session.protocol, 2)
        reply = self.session.execute([b"HELLO", b"3"])
        self.assertIn((b"proto", 3), reply.items)
        self.assertEqual(self.session.protocol, 3)
        self.assertEqual(self.session.execute([b"HELLO", b"4"]).message,
                         "NOPROTO unsupported protocol version")
        self.assertEqual(self.backend.sent, [])

    def test_client(self) -> None:
        """CLIENT ID, SETNAME, GETNAME and SETINFO are answered locally."""
        self.assertEqual(self.session.execute([b"CLIENT", b"ID"]), self.session.id)
        self.assertEqual(self.session.execute([b"CLIENT", b"SETNAME", b"me"]), OK)
        self.assertEqual(self.session.execute([b"CLIENT", b"GETNAME"]), b"me")
        self.assertEqual(self.session.execute([b"CLIENT", b"SETINFO", b"LIB-NAME", b"x"]), OK)
        self.assertIsInstance(self.session.execute([b"CLIENT", b"KILL", b"x"]), Error)

    def test_info(self) -> None:
        """INFO reports hits, misses, hit ratio, entries, evictions and the backend state."""
        self.cache.put(b"a", b"1")
        self.session.execute([b"GET", b"a"])
        self.session.execute([b"GET", b"b"])
        text = self.session.execute([b"INFO"]).decode()
        for line in ("cache_hits:1", "cache_misses:1", "cache_hit_ratio:0.5000",
                     "cache_entries:1", "cache_evictions:0", "cache_expirations:0",
                     "cache_invalidations:0", "backend_state:connected",
                     "invalidation_state:off"):
            self.assertIn(line + "\r\n", text)
        self.cache.stop()

    def test_sessions(self) -> None:
        """Sessions are registered until dropped."""
        other = self.proxy.new_session()
        self.assertEqual(len(self.proxy.clients), 2)
        self.proxy.drop_session(other)
        self.assertEqual(list(self.proxy.clients), [self.session.id])


class ProxyOverStoreTests(SynchronousTestCase):
    """The proxy and a kvstore Store wired together in memory, served by KVFactory."""

    def setUp(self) -> None:
        self.clock = Clock()
        self.store = Store(self.clock)
        self.backend = StoreBackend(self.store)
        self.cache = Cache(self.clock, ttl=60)
        self.proxy = ProxyStore(self.clock, self.cache, self.backend, FakeListener())
        self.factory = KVFactory(self.proxy)

    def tearDown(self) -> None:
        self.cache.stop()

    def connect(self):
        protocol = self.factory.buildProtocol(None)
        transport = StringTransport()
        protocol.makeConnection(transport)
        return protocol, transport

    def test_respPipeline(self) -> None:
        """A pipelined RESP burst gets every reply in order; the second GET is a hit."""
        protocol, transport = self.connect()
        protocol.dataReceived(b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\nv\r\n"
                              b"*2\r\n$3\r\nGET\r\n$1\r\nk\r\n*2\r\n$3\r\nGET\r\n$1\r\nk\r\n"
                              b"*3\r\n$4\r\nMGET\r\n$1\r\nk\r\n$1\r\nz\r\n")
        self.assertEqual(transport.value(),
                         b"+OK\r\n$1\r\nv\r\n$1\r\nv\r\n*2\r\n$1\r\nv\r\n$-1\r\n")
        self.assertEqual(self.backend.requests,
                         [[b"SET", b"k", b"v"], [b"GET", b"k"], [b"MGET", b"z"]])

    def test_telnet(self) -> None:
        """A telnet client gets redis-cli style replies through the proxy."""
        protocol, transport = self.connect()
        protocol.dataReceived(b"SET k \"a b\"\r\nGET k\r\nINCR n\r\nGET nope\r\n")
        self.assertEqual(transport.value(), b"OK\r\n\"a b\"\r\n(integer) 1\r\n(nil)\r\n")

    def test_json(self) -> None:
        """A JSON-lines client is served through the same front end."""
        protocol, transport = self.connect()
        protocol.dataReceived(b'{"type": "SET", "args": ["k", "v"]}\n')
        protocol.dataReceived(b'{"type": "GET", "args": ["k"]}\n')
        protocol.dataReceived(b'{"type": "GET", "args": ["k"]}\n')
        lines = transport.value().splitlines()
        self.assertEqual(len(lines), 3)
        self.assertNotIn(b"error", transport.value())
        self.assertEqual(lines[1], lines[2])
        self.assertIn(b'"v"', lines[2])

    def test_writeBypassingProxyNeedsInvalidation(self) -> None:
        """A write straight to the store is seen once the key is invalidated."""
        session = self.proxy.new_session()
        result_of(session.execute([b"SET", b"k", b"1"]))
        self.assertEqual(result_of(session.execute([b"GET", b"k"])), b"1")
        self.store.new_session().execute([b"SET", b"k", b"2"])
        self.assertEqual(session.execute([b"GET", b"k"]), b"1")
        self.cache.invalidate(b"k")
        self.assertEqual(result_of(session.execute([b"GET", b"k"])), b"2")

    def test_expiryAfterTTL(self) -> None:
        """A cached value is served until the TTL, then fetched again."""
        session = self.proxy.new_session()
        result_of(session.execute([b"SET", b"k", b"1"]))
        result_of(session.execute([b"GET", b"k"]))
        self.store.new_session().execute([b"SET", b"k", b"2"])
        self.clock.advance(59.9)
        self.assertEqual(session.execute([b"GET", b"k"]), b"1")
        self.clock.advance(0.1)
        self.assertEqual(result_of(session.execute([b"GET", b"k"])), b"2")
