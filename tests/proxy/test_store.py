"""Tests for kvtwist.proxy.store: sessions, coherence of writes, errors, local commands, INFO."""

from __future__ import annotations

from twisted.internet.defer import Deferred, fail
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.trial.unittest import SynchronousTestCase

from kvtwist import __version__
from kvtwist.proxy.cache import Cache
from kvtwist.client import ClientDisconnected, RequestTimeout
from kvtwist.engine.store import Store
from kvtwist.proxy.commands import LOCAL
from kvtwist.proxy.store import _LOCAL, BackendUnavailable, ProxyStore
from kvtwist.wire.replies import OK, PONG, Error, Status
from kvtwist.serve.factory import KVFactory
from tests.proxy.fakes import (
    FakeListener, ProtocolBackend, ProxyCase, StoreBackend, result_of)


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


    def test_unknownCommandLeavesTheCache(self) -> None:
        """A command kvproxy does not know is forwarded (checked: it may answer more or less
        than once) and leaves the cache alone."""
        self.cache.put(b"a", b"1")
        d = self.session.execute([b"SOMETHINGNEW", b"x"])
        self.assertEqual(self.backend.sent[-1][0], [b"SOMETHINGNEW", b"x"])
        self.assertEqual(self.backend.options[-1], {"checked": True})
        self.backend.sent[-1][1].callback(Error("ERR unknown command 'SOMETHINGNEW'"))
        self.assertEqual(result_of(d), Error("ERR unknown command 'SOMETHINGNEW'"))
        self.assertEqual(self.cache.get(b"a"), b"1")

    def test_writesTouchTheirKeysOnly(self) -> None:
        """Redis's other writes (stores, pops, stream groups, moves) drop the keys they write
        and keep the rest of the cache."""
        for argv, written in (
                ([b"BITOP", b"AND", b"dest", b"a", b"b"], [b"dest"]),
                ([b"SORT", b"src", b"BY", b"w", b"STORE", b"dst"], [b"dst"]),
                ([b"ZUNIONSTORE", b"dest", b"2", b"x", b"y"], [b"dest"]),
                ([b"LMPOP", b"2", b"l1", b"l2", b"LEFT"], [b"l1", b"l2"]),
                ([b"XGROUP", b"CREATE", b"s", b"g", b"$", b"MKSTREAM"], [b"s"]),
                ([b"GEORADIUS", b"src", b"0", b"0", b"1", b"km", b"store", b"dst"], [b"dst"]),
                ([b"MIGRATE", b"h", b"1", b"", b"0", b"9", b"KEYS", b"k1", b"k2"],
                 [b"k1", b"k2"]),
                ([b"GETEX", b"k", b"PERSIST"], [b"k"]),
                ([b"COPY", b"a", b"b"], [b"a", b"b"])):
            self.check_invalidates(argv, written, [b"kept"])

    def test_scriptsTouchEverything(self) -> None:
        """EVAL, EVALSHA and FCALL may write any key: the whole cache goes."""
        self.check_invalidates([b"EVAL", b"return 1", b"0"], [b"a", b"b"])
        self.check_invalidates([b"FCALL", b"f", b"0"], [b"a"])

    def test_otherKnownCommandsKeepTheCache(self) -> None:
        """PUBLISH, SCRIPT LOAD, OBJECT and other commands that write no key are forwarded
        without touching the cache."""
        self.cache.put(b"a", b"1")
        for argv in ([b"PUBLISH", b"c", b"m"], [b"SCRIPT", b"LOAD", b"return 1"],
                     [b"OBJECT", b"ENCODING", b"a"], [b"XREAD", b"STREAMS", b"s", b"0"]):
            self.session.execute(argv)
            self.assertEqual(self.backend.sent[-1][0], argv)
            self.assertEqual(self.backend.options[-1], {})
        self.assertEqual(self.cache.get(b"a"), b"1")

    def test_blockingStreamReadRefused(self) -> None:
        """XREAD and XREADGROUP with BLOCK would stall the shared connection: refused."""
        for argv in ([b"XREAD", b"BLOCK", b"0", b"STREAMS", b"s", b"$"],
                     [b"XREADGROUP", b"GROUP", b"g", b"c", b"block", b"5", b"STREAMS", b"s",
                      b">"]):
            self.assertIn("not supported through kvproxy", self.session.execute(argv).message)
        self.assertEqual(self.backend.sent, [])

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


ADMIN_COMMANDS = (
    [b"CONFIG", b"SET", b"maxmemory", b"1"], [b"config", b"resetstat"], [b"CONFIG", b"REWRITE"],
    [b"FLUSHALL"], [b"FLUSHDB", b"ASYNC"], [b"FLUSH"], [b"SWAPDB", b"0", b"1"],
    [b"SHUTDOWN", b"NOSAVE"], [b"DEBUG", b"SLEEP", b"0"], [b"SAVE"], [b"BGSAVE"],
    [b"BGREWRITEAOF"], [b"COMPACT"], [b"REPLICAOF", b"NO", b"ONE"], [b"SLAVEOF", b"h", b"1"],
    [b"FAILOVER"], [b"SLOWLOG", b"RESET"], [b"LATENCY", b"RESET"],
    [b"ACL", b"SETUSER", b"u", b"on"], [b"ACL", b"LOG", b"RESET"],
    [b"MODULE", b"LOAD", b"/x.so"], [b"SCRIPT", b"FLUSH"], [b"FUNCTION", b"FLUSH"],
    [b"CLUSTER", b"RESET"], [b"PFDEBUG", b"GETREG", b"k"])


class ProxyAdminTests(ProxyCase):
    """Server-wide commands are refused unless kvproxy was started with --allow-admin."""

    cache_options = {"ttl": 60}

    def test_refusedByDefault(self) -> None:
        """CONFIG SET, FLUSHALL, SHUTDOWN, DEBUG and their kind get a clear error; nothing
        is sent and the cache is kept."""
        self.cache.put(b"a", b"1")
        for argv in ADMIN_COMMANDS:
            reply = self.session.execute(argv)
            self.assertIsInstance(reply, Error, repr(argv))
            self.assertIn("--allow-admin", reply.message)
        self.assertIn("'CONFIG SET'", self.session.execute(ADMIN_COMMANDS[0]).message)
        self.assertEqual(self.backend.sent, [])
        self.assertEqual(self.cache.get(b"a"), b"1")

    def test_inspectingIsForwarded(self) -> None:
        """The subcommands that only look (CONFIG GET, SLOWLOG GET, ACL WHOAMI, ...) are
        forwarded."""
        for argv in ([b"CONFIG", b"GET", b"maxmemory"], [b"SLOWLOG", b"GET"],
                     [b"ACL", b"WHOAMI"], [b"ACL", b"LOG"], [b"LATENCY", b"LATEST"],
                     [b"CLUSTER", b"INFO"], [b"MODULE", b"LIST"], [b"SCRIPT", b"EXISTS", b"x"]):
            self.session.execute(argv)
            self.assertEqual(self.backend.sent[-1][0], argv)

    def test_allowedAdminIsForwarded(self) -> None:
        """With --allow-admin they are forwarded; the flushes flush the cache too, the others
        leave it alone."""
        self.proxy.allow_admin = True
        for argv in ([b"FLUSHALL"], [b"FLUSHDB"], [b"FLUSH"], [b"SWAPDB", b"0", b"1"],
                     [b"DEBUG", b"RELOAD"], [b"REPLICAOF", b"h", b"1"]):
            self.cache.put(b"a", b"1")
            d = self.session.execute(argv)
            self.assertEqual(self.backend.sent[-1][0], argv)
            self.assertNotIn(b"a", self.cache)
            self.cache.put(b"a", b"refetched before the reply")
            self.backend.sent[-1][1].callback(OK)
            self.assertEqual(result_of(d), OK)
            self.assertNotIn(b"a", self.cache)
        self.cache.put(b"a", b"1")
        d = self.session.execute([b"CONFIG", b"SET", b"maxmemory", b"1"])
        self.assertEqual(self.backend.sent[-1][0], [b"CONFIG", b"SET", b"maxmemory", b"1"])
        self.backend.sent[-1][1].callback(OK)
        self.assertEqual((result_of(d), self.cache.get(b"a")), (OK, b"1"))


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

    def test_exit(self) -> None:
        """EXIT (kvstore's QUIT) is answered by the proxy too: OK, this client closes, the
        shared backend connection is not asked."""
        self.assertEqual(self.session.execute([b"exit"]), OK)
        self.assertTrue(self.session.closing)
        self.assertEqual(self.backend.sent, [])

    def test_refused(self) -> None:
        """Connection-state and blocking commands are refused with a clear error."""
        for argv in ([b"SUBSCRIBE", b"c"], [b"MONITOR"], [b"BLPOP", b"l", b"0"]):
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
        text = self.session.execute([b"INFO", b"proxy"]).decode()
        for line in ("cache_hits:1", "cache_misses:1", "cache_hit_ratio:0.5000",
                     "cache_entries:1", "cache_evictions:0", "cache_expirations:0",
                     "cache_invalidations:0", "backend_state:connected",
                     "invalidation_state:off"):
            self.assertIn(line + "\r\n", text)
        self.cache.stop()

    def test_localCommandsAreTheTable(self) -> None:
        """The commands the session answers itself are those commands.LOCAL names."""
        self.assertEqual(set(_LOCAL), LOCAL)

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
                         [[b"SET", b"k", b"v"], [b"MGET", b"k", b"z"], [b"GET", b"k"],
                          [b"PTTL", b"k"]])  # asked before caching the value

    def test_twoClientsOneBatchRepliesInOrder(self) -> None:
        """Two pipelining clients' misses go as one GET each, and each client gets its
        replies in request order."""
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
                         [[b"GET", b"b"], [b"PTTL", b"b"], [b"GET", b"l"],
                          [b"GET", b"a"], [b"PTTL", b"a"], [b"GET", b"none"]])

    def test_exitClosesOnlyItsClient(self) -> None:
        """EXIT from one client closes that client's connection; the backend and the other
        clients carry on."""
        leaving, leaving_transport = self.connect()
        staying, staying_transport = self.connect()
        leaving.dataReceived(b"SET k v\r\nEXIT\r\nGET k\r\n")
        self.clock.advance(0)
        self.assertEqual(leaving_transport.value(), b"OK\r\nOK\r\n")
        self.assertTrue(leaving_transport.disconnecting)
        self.assertNotIn([b"EXIT"], self.backend.requests)
        staying.dataReceived(b"GET k\r\n")
        self.clock.advance(0)
        self.assertEqual(staying_transport.value(), b'"v"\r\n')
        self.assertFalse(staying_transport.disconnecting)

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


class MaintNotificationsTests(ProxyCase):
    def test_answered_as_redis_70(self):
        """redis-py 8's CLIENT MAINT_NOTIFICATIONS gets Redis 7.0's unknown-subcommand
        error from kvproxy itself: its RESP3 handshake opens no connection."""
        reply = self.session.execute([b"CLIENT", b"maint_notifications", b"ON"])
        self.assertEqual(reply, Error("ERR unknown subcommand 'maint_notifications'. Try "
                                      "CLIENT HELP."))
        self.assertEqual(self.backend.sent, [])
