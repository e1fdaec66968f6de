"""Tests for kvtwist.proxy.store: cached reads, coalescing, coherence of writes, errors, INFO."""

from __future__ import annotations

from twisted.internet.defer import Deferred, fail, succeed
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.trial.unittest import SynchronousTestCase

from kvtwist import __version__
from kvtwist.proxy.cache import Cache
from kvtwist.client import ClientDisconnected, RequestTimeout, RespClientProtocol
from kvtwist.engine.store import Store
from kvtwist.proxy.store import BackendUnavailable, ProxyStore
from kvtwist.wire.replies import OK, PONG, Error, Status
from kvtwist.serve.protocol import KVFactory
from kvtwist.wire.resp import RequestParser


class FakeBackend:
    """A backend whose replies the test hands out one request at a time."""

    state = "connected"
    address = "fake:backend"
    strings_only = False  # a Redis: MGET nils are re-read with GET

    def __init__(self) -> None:
        self.sent = []  # [(argv, Deferred)]

    def request(self, argv, **options):
        d = Deferred()
        self.sent.append((list(argv), d))
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


class PipelineBackend:
    """A pipelined Redis-like backend: a Store runs each request when it is sent, in send
    order, and the replies wait until ``deliver()`` hands them out, in that order."""

    state = "connected"
    address = "pipeline"
    strings_only = False  # MGET nils are re-read with GET, as in front of Redis

    def __init__(self, store) -> None:
        self.session = store.new_session("proxy")
        self.sent = []  # every argv, in send order
        self.replies = []  # [(reply, Deferred)] not delivered yet

    def request(self, argv, **options):
        self.sent.append(list(argv))
        d = Deferred()
        self.replies.append((self.session.execute(list(argv)), d))
        return d

    def deliver(self) -> int:
        """Fire every reply sent so far (and those their callbacks cause); return how many."""
        count = 0
        while self.replies:
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

    def request(self, argv, **options):
        return self.client.request(argv, **options)

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
    caching = True
    messages = 0


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


class ProxyReadTests(ProxyCase):
    """GET and MGET through the cache."""

    cache_options = {"ttl": 60, "miss_ttl": 5}

    def test_missThenHit(self) -> None:
        """A GET miss asks the backend once; the next GET is answered from the cache."""
        d = self.session.execute([b"GET", b"k"])
        self.clock.advance(0)
        self.assertEqual(self.backend.sent[0][0], [b"GET", b"k"])
        self.backend.answer(0, b"v")
        self.assertEqual(result_of(d), b"v")
        self.assertEqual(self.session.execute([b"get", b"k"]), b"v")
        self.assertEqual(len(self.backend.sent), 1)

    def test_nilIsCachedBriefly(self) -> None:
        """A nil GET reply is cached for the miss TTL only."""
        d = self.session.execute([b"GET", b"k"])
        self.clock.advance(0)
        self.backend.answer(0, None)
        self.assertIsNone(result_of(d))
        self.assertIsNone(self.session.execute([b"GET", b"k"]))
        self.clock.advance(5)
        self.assertIsInstance(self.session.execute([b"GET", b"k"]), Deferred)

    def test_errorReplyNotCached(self) -> None:
        """A WRONGTYPE error is relayed and not cached."""
        d = self.session.execute([b"GET", b"k"])
        self.clock.advance(0)
        self.backend.answer(0, Error("WRONGTYPE Operation against a key"))
        self.assertEqual(result_of(d), Error("WRONGTYPE Operation against a key"))
        self.assertNotIn(b"k", self.cache)

    def test_concurrentMissesCoalesce(self) -> None:
        """Concurrent misses on one key make one backend request and all get its reply."""
        d1 = self.session.execute([b"GET", b"k"])
        d2 = self.proxy.new_session().execute([b"GET", b"k"])
        self.clock.advance(0)
        self.assertEqual(len(self.backend.sent), 1)
        self.backend.answer(0, b"v")
        self.assertEqual((result_of(d1), result_of(d2)), (b"v", b"v"))
        self.assertEqual(self.proxy.coalesced, 1)

    def test_coalescedFailureAnswersEveryWaiter(self) -> None:
        """A failed fetch gives its client and a joined one the same error reply; nothing cached."""
        d1 = self.session.execute([b"GET", b"k"])
        d2 = self.proxy.new_session().execute([b"GET", b"k"])
        self.clock.advance(0)
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
        self.clock.advance(0)
        self.backend.answer(0, Error("WRONGTYPE Operation against a key"))
        wrong = Error("WRONGTYPE Operation against a key")
        self.assertEqual([result_of(d) for d in (d1, d2, d3)], [wrong, wrong, wrong])
        self.assertEqual(self.proxy.coalesced, 2)
        self.assertIsNone(self.cache.pending(b"k"))

    def test_fetchedValueThenHitWithoutBackend(self) -> None:
        """After a fetch completes its placeholder is gone and the next GET is a hit."""
        d = self.session.execute([b"GET", b"k"])
        self.clock.advance(0)
        self.backend.answer(0, b"v")
        self.assertEqual(result_of(d), b"v")
        self.assertIsNone(self.cache.pending(b"k"))
        self.assertEqual(self.session.execute([b"GET", b"k"]), b"v")
        self.assertEqual(len(self.backend.sent), 1)

    def test_invalidationDuringFetch(self) -> None:
        """A fetch raced by an invalidation answers its waiter but caches nothing."""
        d = self.session.execute([b"GET", b"k"])
        self.clock.advance(0)
        self.cache.invalidate(b"k")
        self.backend.answer(0, b"stale")
        self.assertEqual(result_of(d), b"stale")
        self.assertNotIn(b"k", self.cache)

    def test_readAfterInvalidationDoesNotJoinOldFetch(self) -> None:
        """A GET after an invalidation makes its own fetch instead of joining the old one."""
        self.session.execute([b"GET", b"k"])
        self.clock.advance(0)
        self.cache.invalidate(b"k")
        d = self.session.execute([b"GET", b"k"])
        self.clock.advance(0)
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
        self.clock.advance(0)
        self.backend.answer(0, b"v")
        self.assertEqual(result_of(d), b"v")
        self.assertNotIn(b"k", self.cache)


class ProxyWriteTests(ProxyCase):
    """Writes go to the backend and invalidate the keys they touch."""

    cache_options = {"ttl": 60}

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
        self.clock.advance(0)
        self.assertEqual([argv for argv, _ in self.backend.sent],
                         [[b"SET", b"k", b"new"], [b"GET", b"k"]])
        self.backend.answer(0, OK)
        self.backend.answer(1, b"new")
        self.assertEqual(result_of(d), b"new")


class ProxyFailureTests(ProxyCase):
    """Backend failures become clear error replies."""

    listener = None

    def test_unavailable(self) -> None:
        """An unreachable backend gives 'backend unavailable' and caches nothing."""
        d = self.session.execute([b"GET", b"k"])
        self.clock.advance(0)
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
        self.backend.request = lambda argv, **options: fail(BackendUnavailable("down"))
        self.assertIsInstance(result_of(self.session.execute([b"DBSIZE"])), Error)
        self.assertEqual(self.proxy.backend_errors, 1)


class ProxyLocalCommandTests(ProxyCase):
    """Commands the proxy answers itself."""

    listener = None

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


class ProxyUnexpectedReplyTests(SynchronousTestCase):
    """A reply from the backend that fits no request never reaches another client."""

    def setUp(self) -> None:
        self.clock = Clock()
        self.cache = Cache(self.clock, ttl=60)
        self.addCleanup(self.cache.stop)
        self.backend = ProtocolBackend(self.clock)
        self.proxy = ProxyStore(self.clock, self.cache, self.backend, FakeListener())

    def test_extraReplyIsNotHandedToTheNextClient(self) -> None:
        """A command that answers twice: the next client's GET fails, it is not answered
        with the extra reply, and the connection is closed."""
        odd = self.proxy.new_session().execute([b"FOO", b"x"])
        fetch = self.proxy.new_session().execute([b"GET", b"k"])
        self.clock.advance(0)
        self.assertEqual([argv[0] for argv in self.backend.written()], [b"FOO", b"ECHO", b"GET"])
        self.backend.client.dataReceived(b"+first\r\n+second\r\n$5\r\nvalue\r\n")
        self.assertEqual(result_of(odd), Status(b"first"))
        reply = result_of(fetch)
        self.assertIsInstance(reply, Error)
        self.assertIn("does not fit", reply.message)
        self.assertTrue(self.backend.transport.disconnecting)
        self.assertNotIn(b"k", self.cache)

    def test_fetchReplyOfWrongShapeClosesTheConnection(self) -> None:
        """A GET fetch answered with an integer (a shifted reply) closes the connection and
        flushes the cache, since replies before it may have gone to the wrong fetch."""
        self.cache.put(b"cached", b"maybe wrong")
        fetch = self.proxy.new_session().execute([b"GET", b"k"])
        later = self.proxy.new_session().execute([b"INCR", b"n"])
        self.clock.advance(0)
        self.backend.client.dataReceived(b":1\r\n:2\r\n")
        self.assertIn("does not fit", result_of(fetch).message)
        self.assertIsInstance(result_of(later), Error)
        self.assertEqual(len(self.cache), 0)


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

    def call(self, session, argv):
        """Execute ``argv`` in ``session``, end the reactor turn, return the reply."""
        reply = session.execute(argv)
        self.clock.advance(0)
        return result_of(reply) if isinstance(reply, Deferred) else reply

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
        self.clock.advance(0)
        self.assertEqual(transport.value(),
                         b"+OK\r\n$1\r\nv\r\n$1\r\nv\r\n*2\r\n$1\r\nv\r\n$-1\r\n")
        self.assertEqual(self.backend.requests,
                         [[b"SET", b"k", b"v"], [b"MGET", b"k", b"z"], [b"GET", b"k"]])

    def test_twoClientsOneBatchRepliesInOrder(self) -> None:
        """Two pipelining clients share one MGET and each gets its replies in request order."""
        writer = self.store.new_session()
        writer.execute([b"SET", b"a", b"1"])
        writer.execute([b"SET", b"b", b"2"])
        p1, t1 = self.connect()
        p2, t2 = self.connect()
        p1.dataReceived(b"GET b\r\nGET l\r\nGET a\r\n")
        p2.dataReceived(b"*2\r\n$3\r\nGET\r\n$1\r\na\r\n*2\r\n$3\r\nGET\r\n$4\r\nnone\r\n")
        self.assertEqual((t1.value(), t2.value()), (b"", b""))
        self.clock.advance(0)
        self.assertEqual(t1.value(), b'"2"\r\n(nil)\r\n"1"\r\n')
        self.assertEqual(t2.value(), b"$1\r\n1\r\n$-1\r\n")
        self.assertEqual(self.backend.requests,
                         [[b"MGET", b"b", b"l", b"a", b"none"], [b"GET", b"l"],
                          [b"GET", b"none"]])

    def test_telnet(self) -> None:
        """A telnet client gets redis-cli style replies through the proxy."""
        protocol, transport = self.connect()
        protocol.dataReceived(b"SET k \"a b\"\r\nGET k\r\nINCR n\r\nGET nope\r\n")
        self.clock.advance(0)
        self.assertEqual(transport.value(), b"OK\r\n\"a b\"\r\n(integer) 1\r\n(nil)\r\n")

    def test_json(self) -> None:
        """A JSON-lines client is served through the same front end."""
        protocol, transport = self.connect()
        protocol.dataReceived(b'{"type": "SET", "args": ["k", "v"]}\n')
        protocol.dataReceived(b'{"type": "GET", "args": ["k"]}\n')
        self.clock.advance(0)
        protocol.dataReceived(b'{"type": "GET", "args": ["k"]}\n')
        lines = transport.value().splitlines()
        self.assertEqual(len(lines), 3)
        self.assertNotIn(b"error", transport.value())
        self.assertEqual(lines[1], lines[2])
        self.assertIn(b'"v"', lines[2])

    def test_writeBypassingProxyNeedsInvalidation(self) -> None:
        """A write straight to the store is seen once the key is invalidated."""
        session = self.proxy.new_session()
        self.call(session, [b"SET", b"k", b"1"])
        self.assertEqual(self.call(session, [b"GET", b"k"]), b"1")
        self.store.new_session().execute([b"SET", b"k", b"2"])
        self.assertEqual(session.execute([b"GET", b"k"]), b"1")
        self.cache.invalidate(b"k")
        self.assertEqual(self.call(session, [b"GET", b"k"]), b"2")

    def test_expiryAfterTTL(self) -> None:
        """A cached value is served until the TTL, then fetched again."""
        session = self.proxy.new_session()
        self.call(session, [b"SET", b"k", b"1"])
        self.call(session, [b"GET", b"k"])
        self.store.new_session().execute([b"SET", b"k", b"2"])
        self.clock.advance(59.9)
        self.assertEqual(session.execute([b"GET", b"k"]), b"1")
        self.clock.advance(0.1)
        self.assertEqual(self.call(session, [b"GET", b"k"]), b"2")


class ProxyBatchTests(ProxyCase):
    """The GET misses of one reactor turn are fetched together at its end."""

    cache_options = {"ttl": 60, "miss_ttl": 5}

    def setUp(self) -> None:
        ProxyCase.setUp(self)
        self.one = self.session
        self.two = self.proxy.new_session()

    def test_missesOfOneTurnAreOneMget(self) -> None:
        """Misses from several clients in one turn go to the backend as one MGET."""
        d1 = self.one.execute([b"GET", b"a"])
        d2 = self.two.execute([b"GET", b"b"])
        d3 = self.one.execute([b"GET", b"c"])
        self.assertEqual(self.backend.sent, [])
        self.clock.advance(0)
        self.assertEqual([argv for argv, _ in self.backend.sent], [[b"MGET", b"a", b"b", b"c"]])
        self.backend.answer(0, [b"1", b"2", b"3"])
        self.assertEqual([result_of(d) for d in (d1, d2, d3)], [b"1", b"2", b"3"])
        self.assertEqual([self.cache.get(key) for key in (b"a", b"b", b"c")],
                         [b"1", b"2", b"3"])
        self.assertEqual((self.proxy.fetches, self.proxy.fetched_keys), (1, 3))

    def test_nextTurnIsAnotherBatch(self) -> None:
        """Misses after the batch was sent wait for the next turn's batch."""
        self.one.execute([b"GET", b"a"])
        self.clock.advance(0)
        self.one.execute([b"GET", b"b"])
        self.two.execute([b"GET", b"c"])
        self.clock.advance(0)
        self.assertEqual([argv for argv, _ in self.backend.sent],
                         [[b"GET", b"a"], [b"MGET", b"b", b"c"]])

    def test_missAfterWriteWaitsForTurnEnd(self) -> None:
        """A write sends the misses before it; a miss after it goes at the end of the turn."""
        self.one.execute([b"GET", b"a"])
        self.two.execute([b"SET", b"x", b"1"])
        self.one.execute([b"GET", b"b"])
        self.assertEqual([argv for argv, _ in self.backend.sent],
                         [[b"GET", b"a"], [b"SET", b"x", b"1"]])
        self.clock.advance(0)
        self.assertEqual([argv for argv, _ in self.backend.sent][2:], [[b"GET", b"b"]])
        self.clock.advance(0)
        self.assertEqual(len(self.backend.sent), 3)
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_usesReactorTurnEnd(self) -> None:
        """With a reactor that calls at the end of its turn, the batch goes out through that."""
        ends = []
        self.clock.callAtTurnEnd = ends.append
        proxy = ProxyStore(self.clock, self.cache, self.backend, FakeListener())
        session = proxy.new_session()
        session.execute([b"GET", b"a"])
        session.execute([b"GET", b"b"])
        self.assertEqual((len(ends), self.clock.getDelayedCalls()), (1, []))
        ends.pop()()
        self.assertEqual([argv for argv, _ in self.backend.sent], [[b"MGET", b"a", b"b"]])

    def test_sameKeyTwiceInOneTurnIsFetchedOnce(self) -> None:
        """Concurrent misses on one key put it in the batch once; every waiter gets it."""
        d1 = self.one.execute([b"GET", b"a"])
        d2 = self.two.execute([b"GET", b"a"])
        d3 = self.two.execute([b"GET", b"b"])
        self.clock.advance(0)
        self.assertEqual(self.backend.sent[0][0], [b"MGET", b"a", b"b"])
        self.backend.answer(0, [b"1", b"2"])
        self.assertEqual([result_of(d) for d in (d1, d2, d3)], [b"1", b"1", b"2"])
        self.assertEqual(self.proxy.coalesced, 1)

    def test_joinWhileBatchInFlight(self) -> None:
        """A miss on a key whose batch is in flight joins it instead of a new request."""
        d1 = self.one.execute([b"GET", b"a"])
        self.two.execute([b"GET", b"b"])
        self.clock.advance(0)
        d2 = self.two.execute([b"GET", b"a"])
        self.clock.advance(0)
        self.assertEqual(len(self.backend.sent), 1)
        self.backend.answer(0, [b"1", b"2"])
        self.assertEqual((result_of(d1), result_of(d2)), (b"1", b"1"))

    def test_nilFromMgetIsRereadWithGet(self) -> None:
        """A nil from MGET is re-read with GET, whose answer the client gets and the cache keeps."""
        d1 = self.one.execute([b"GET", b"list"])
        d2 = self.two.execute([b"GET", b"gone"])
        d3 = self.two.execute([b"GET", b"k"])
        self.clock.advance(0)
        self.backend.answer(0, [None, None, b"v"])
        self.assertEqual(result_of(d3), b"v")
        self.assertEqual([argv for argv, _ in self.backend.sent[1:]],
                         [[b"GET", b"list"], [b"GET", b"gone"]])
        self.assertNoResult(d1)
        self.assertNoResult(d2)
        wrong = Error("WRONGTYPE Operation against a key holding the wrong kind of value")
        self.backend.answer(1, wrong)
        self.backend.answer(2, None)
        self.assertEqual((result_of(d1), result_of(d2)), (wrong, None))
        self.assertNotIn(b"list", self.cache)
        self.assertIsNone(self.cache.get(b"gone"))
        self.assertIsNone(self.cache.pending(b"list"))
        self.assertEqual((self.proxy.fetches, self.proxy.rereads), (3, 2))

    def test_nilFromStringsOnlyBackendIsAMiss(self) -> None:
        """From a backend holding strings only, an MGET nil is cached as a miss with no GET."""
        self.backend.strings_only = True
        d1 = self.one.execute([b"GET", b"gone"])
        d2 = self.two.execute([b"GET", b"none"])
        d3 = self.two.execute([b"MGET", b"k", b"also-gone"])
        self.clock.advance(0)
        self.assertEqual([argv for argv, _ in self.backend.sent],
                         [[b"MGET", b"k", b"also-gone"], [b"MGET", b"gone", b"none"]])
        self.backend.answer(0, [b"v", None])
        self.backend.answer(1, [None, None])
        self.assertEqual([result_of(d) for d in (d1, d2, d3)], [None, None, [b"v", None]])
        self.assertEqual(len(self.backend.sent), 2)
        self.assertEqual([self.cache.get(key) for key in (b"gone", b"none", b"k", b"also-gone")],
                         [None, None, b"v", None])
        self.assertEqual(self.proxy.rereads, 0)

    def test_missDuringRereadJoinsIt(self) -> None:
        """While a nil is being re-read, a miss on that key joins the re-read."""
        self.one.execute([b"GET", b"a"])
        self.one.execute([b"GET", b"b"])
        self.clock.advance(0)
        self.backend.answer(0, [None, b"2"])
        d = self.two.execute([b"GET", b"a"])
        self.clock.advance(0)
        self.assertEqual(len(self.backend.sent), 2)
        self.backend.answer(1, b"late")
        self.assertEqual(result_of(d), b"late")

    def test_invalidationDuringBatchKeepsValueOut(self) -> None:
        """An invalidation while the batch is in flight keeps that key's value out of the cache."""
        d1 = self.one.execute([b"GET", b"a"])
        d2 = self.two.execute([b"GET", b"b"])
        self.clock.advance(0)
        self.cache.invalidate(b"a")
        self.backend.answer(0, [b"stale", b"2"])
        self.assertEqual((result_of(d1), result_of(d2)), (b"stale", b"2"))
        self.assertNotIn(b"a", self.cache)
        self.assertEqual(self.cache.get(b"b"), b"2")

    def test_invalidationDuringRereadKeepsValueOut(self) -> None:
        """An invalidation while a nil is re-read keeps the re-read's answer out of the cache."""
        self.one.execute([b"GET", b"a"])
        self.one.execute([b"GET", b"b"])
        self.clock.advance(0)
        self.backend.answer(0, [None, b"2"])
        self.cache.invalidate(b"a")
        self.backend.answer(1, None)
        self.assertNotIn(b"a", self.cache)

    def test_failureReachesEveryWaiter(self) -> None:
        """A failed batch gives every waiting client the error and caches nothing."""
        waiting = [self.one.execute([b"GET", b"a"]), self.two.execute([b"GET", b"a"]),
                   self.two.execute([b"GET", b"b"])]
        self.clock.advance(0)
        self.backend.fail(0, ClientDisconnected("connection lost"))
        expected = Error("ERR backend connection lost: connection lost")
        self.assertEqual([result_of(d) for d in waiting], [expected] * 3)
        self.assertEqual(len(self.cache), 0)
        self.assertIsNone(self.cache.pending(b"a"))
        self.assertEqual(self.proxy.backend_errors, 1)

    def test_timeoutReachesEveryWaiter(self) -> None:
        """A timed-out batch answers every waiting client with a backend timeout error."""
        waiting = [self.one.execute([b"GET", b"a"]), self.two.execute([b"GET", b"b"])]
        self.clock.advance(0)
        self.backend.fail(0, RequestTimeout("no reply to MGET within 5 seconds"))
        for d in waiting:
            self.assertTrue(result_of(d).message.startswith("ERR backend timeout"))

    def test_unavailableBackendFailsAtOnce(self) -> None:
        """A backend that fails the batch synchronously still answers every waiter."""
        self.backend.request = lambda argv, **options: fail(
            BackendUnavailable("cannot connect to x"))
        waiting = [self.one.execute([b"GET", b"a"]), self.two.execute([b"GET", b"b"])]
        self.clock.advance(0)
        for d in waiting:
            self.assertTrue(result_of(d).message.startswith("ERR backend unavailable"))
        self.assertIsNone(self.cache.pending(b"b"))

    def test_mgetErrorReplyFallsBackToGets(self) -> None:
        """An error reply to the batch's MGET makes each key ask with its own GET."""
        d1 = self.one.execute([b"GET", b"a"])
        d2 = self.two.execute([b"GET", b"b"])
        self.clock.advance(0)
        self.backend.answer(0, Error("NOPERM no MGET for you"))
        self.assertEqual([argv for argv, _ in self.backend.sent[1:]],
                         [[b"GET", b"a"], [b"GET", b"b"]])
        self.backend.answer(1, b"1")
        self.backend.answer(2, Error("NOPERM no GET either"))
        self.assertEqual((result_of(d1), result_of(d2)), (b"1", Error("NOPERM no GET either")))
        self.assertEqual(self.cache.get(b"a"), b"1")

    def test_malformedReplyIsAnError(self) -> None:
        """A batch reply of the wrong length answers every waiter with an error."""
        waiting = [self.one.execute([b"GET", b"a"]), self.two.execute([b"GET", b"b"])]
        self.clock.advance(0)
        self.backend.answer(0, [b"only one"])
        expected = Error("ERR backend sent a malformed MGET reply")
        self.assertEqual([result_of(d) for d in waiting], [expected, expected])
        self.assertIsNone(self.cache.pending(b"a"))

    def test_writeSendsPendingBatchFirst(self) -> None:
        """A write sends the misses read before it first, so they do not see it, and
        fences the key it writes with a GET (the MGET's nil would need one)."""
        self.one.execute([b"GET", b"a"])
        self.one.execute([b"GET", b"b"])
        self.two.execute([b"SET", b"a", b"new"])
        self.one.execute([b"GET", b"c"])
        self.clock.advance(0)
        self.assertEqual([argv for argv, _ in self.backend.sent],
                         [[b"MGET", b"a", b"b"], [b"GET", b"a"], [b"SET", b"a", b"new"],
                          [b"GET", b"c"]])
        self.backend.answer(0, [b"old", b"2"])
        self.assertNotIn(b"a", self.cache)
        self.backend.answer(1, b"old")  # the unused fence's reply is dropped
        self.assertEqual(self.proxy.fences, 1)

    def test_fenceAnswersTheNil(self) -> None:
        """The fence sent before a write answers the MGET's nil; no GET goes after the write."""
        first = self.one.execute([b"GET", b"a"])
        self.one.execute([b"GET", b"b"])
        self.clock.advance(0)
        self.two.execute([b"DEL", b"x", b"a"])
        self.assertEqual([argv for argv, _ in self.backend.sent][1:],
                         [[b"GET", b"a"], [b"DEL", b"x", b"a"]])
        self.backend.answer(0, [None, b"2"])
        self.assertNoResult(first)
        wrong = Error("WRONGTYPE Operation against a key holding the wrong kind of value")
        self.backend.answer(1, wrong)
        self.assertEqual(result_of(first), wrong)
        self.assertEqual(len(self.backend.sent), 3)
        self.assertEqual(self.proxy._unfenced, {})

    def test_flushFencesEveryTrackedFetch(self) -> None:
        """A write of every key (a flush) fences every fetch whose MGET is in flight."""
        self.one.execute([b"GET", b"a"])
        self.two.execute([b"GET", b"b"])
        self.clock.advance(0)
        self.one.execute([b"FLUSHALL"])
        self.assertEqual(sorted(argv[1] for argv, _ in self.backend.sent[1:3]), [b"a", b"b"])
        self.assertEqual(self.backend.sent[3][0], [b"FLUSHALL"])

    def test_stringsOnlyBackendNeedsNoFence(self) -> None:
        """In front of a strings-only backend an MGET nil is final, so writes need no fence."""
        self.backend.strings_only = True
        self.one.execute([b"GET", b"a"])
        self.one.execute([b"GET", b"b"])
        self.clock.advance(0)
        self.two.execute([b"SET", b"a", b"new"])
        self.assertEqual([argv for argv, _ in self.backend.sent],
                         [[b"MGET", b"a", b"b"], [b"SET", b"a", b"new"]])
        self.assertEqual(self.proxy._unfenced, {})

    def pipeline(self, *requests):
        """Run ``requests`` (argvs) in one session over a PipelineBackend; return the replies."""
        self.backend = PipelineBackend(Store(self.clock))
        self.proxy = ProxyStore(self.clock, self.cache, self.backend, FakeListener())
        session = self.proxy.new_session()
        pending = [session.execute(argv) for argv in requests]
        self.clock.advance(0)
        while self.backend.deliver():
            self.clock.advance(0)
        return [result_of(d) if isinstance(d, Deferred) else d for d in pending]

    def test_rereadIsNotOvertakenByLaterWrite(self) -> None:
        """A GET whose batched MGET answered nil is not answered by a write pipelined after it."""
        replies = self.pipeline([b"GET", b"a"], [b"GET", b"b"], [b"SET", b"a", b"new"],
                                [b"GET", b"a"])
        self.assertEqual(replies, [None, None, OK, b"new"])

    def test_rereadAfterInvalidationIsNotOvertaken(self) -> None:
        """A nil's re-read still goes before a later write when an invalidation voided the fetch."""
        self.backend = PipelineBackend(Store(self.clock))
        self.proxy = ProxyStore(self.clock, self.cache, self.backend, FakeListener())
        session = self.proxy.new_session()
        first = session.execute([b"GET", b"a"])
        session.execute([b"GET", b"b"])
        self.clock.advance(0)
        self.cache.invalidate(b"a")  # someone else's write, announced by the backend
        session.execute([b"SET", b"a", b"new"])
        while self.backend.deliver():
            self.clock.advance(0)
        self.assertIsNone(result_of(first))

    def test_clientMgetJoinerIsNotOvertakenByLaterWrite(self) -> None:
        """A GET that joined a client's MGET fetch, then wrote the key, reads the old state."""
        self.backend = PipelineBackend(Store(self.clock))
        self.proxy = ProxyStore(self.clock, self.cache, self.backend, FakeListener())
        reader = self.proxy.new_session().execute([b"MGET", b"a", b"b"])
        session = self.proxy.new_session()
        joined = session.execute([b"GET", b"a"])
        session.execute([b"SET", b"a", b"new"])
        self.clock.advance(0)
        while self.backend.deliver():
            self.clock.advance(0)
        self.assertEqual((result_of(reader), result_of(joined)), ([None, None], None))

    def test_getJoiningClientMgetIsAnswered(self) -> None:
        """A GET that joins a client MGET's fetch gets GET's answer, even for a nil."""
        m = self.one.execute([b"MGET", b"a", b"b"])
        d1 = self.two.execute([b"GET", b"a"])
        d2 = self.two.execute([b"GET", b"b"])
        self.clock.advance(0)
        self.assertEqual(len(self.backend.sent), 1)
        self.backend.answer(0, [b"1", None])
        self.assertEqual((result_of(m), result_of(d1)), ([b"1", None], b"1"))
        self.assertEqual(self.backend.sent[1][0], [b"GET", b"b"])
        self.backend.answer(1, Error("WRONGTYPE Operation against a key"))
        self.assertEqual(result_of(d2), Error("WRONGTYPE Operation against a key"))

    def test_info(self) -> None:
        """INFO counts fetch requests, the keys they carried and the nil re-reads."""
        self.one.execute([b"GET", b"a"])
        self.two.execute([b"GET", b"b"])
        self.clock.advance(0)
        self.backend.answer(0, [None, b"2"])
        text = self.one.execute([b"INFO"]).decode()
        for line in ("backend_fetches:2", "backend_fetched_keys:2", "backend_rereads:1",
                     "cache_misses:2"):
            self.assertIn(line + "\r\n", text)
