"""Tests for kvtwist.proxy.tap: options, backend connections, and kvproxy end to end."""

from __future__ import annotations

import gc
import os
import platform
from unittest import skipIf
import shutil
import signal
import socket
import tempfile
import time

try:
    import redis
except ImportError:  # the PyPy environment may lack redis-py
    redis = None
from twisted.internet import defer, reactor, task
from twisted.python import usage
from twisted.internet.testing import MemoryReactorClock
from twisted.trial.unittest import SynchronousTestCase, TestCase

from kvtwist import client

from kvtwist.proxy import tap as proxytap
from kvtwist.proxy.backend import Backend
from kvtwist.engine.store import Store
from kvtwist.wire import respreply
from kvtwist.wire.replies import Error, Status
from kvtwist.serve.factory import KVFactory
from tests.procs import TwistdProcess, free_port, start_kvproxy, start_kvstore
from tests.redisref import start_redis_or_skip


class OptionsTests(SynchronousTestCase):
    """``twistd kvproxy`` options."""

    def test_defaults(self) -> None:
        """The defaults are the documented ones."""
        options = proxytap.Options()
        options.parseOptions([])
        self.assertEqual(options["listen"], ["tcp:7380:interface=127.0.0.1"])
        self.assertEqual(options["backend"], "tcp:127.0.0.1:7379")
        self.assertEqual(options["ttl"], 60.0)
        self.assertEqual(options["max-entries"], 100000)
        self.assertFalse(options["no-tracking"])
        self.assertEqual((options["heartbeat"], options["heartbeat-timeout"]), (1.0, 2.0))
        self.assertFalse(options["allow-admin"])

    def test_values(self) -> None:
        """Every option is parsed into its type."""
        options = proxytap.Options()
        options.parseOptions(["--listen", "tcp:0", "-l", "unix:/tmp/x", "--backend",
                              "tls:host=h:port=1", "--ttl", "2.5", "--miss-ttl", "1",
                              "--max-entries", "10", "--timeout", "3", "--no-tracking",
                              "--heartbeat", "0.5", "--heartbeat-timeout", "4",
                              "--allow-admin"])
        self.assertEqual(options["listen"], ["tcp:0", "unix:/tmp/x"])
        self.assertEqual((options["ttl"], options["miss-ttl"], options["max-entries"],
                          options["timeout"]), (2.5, 1.0, 10, 3.0))
        self.assertTrue(options["no-tracking"])
        self.assertEqual((options["heartbeat"], options["heartbeat-timeout"]), (0.5, 4.0))
        self.assertTrue(options["allow-admin"])

    def test_inline_replies_and_resp3(self) -> None:
        """--inline-replies is text or resp (text by default); --resp3-cached is a flag."""
        options = proxytap.Options()
        options.parseOptions([])
        self.assertEqual(options["inline-replies"], "text")
        self.assertFalse(options["resp3-cached"])
        options = proxytap.Options()
        options.parseOptions(["--inline-replies", "resp", "--resp3-cached"])
        self.assertEqual(options["inline-replies"], "resp")
        self.assertTrue(options["resp3-cached"])
        self.assertRaises(usage.UsageError, proxytap.Options().parseOptions,
                          ["--inline-replies", "json"])

    def test_bad_numbers(self) -> None:
        """Non-numbers and negative numbers are usage errors."""
        for argv in (["--ttl", "soon"], ["--max-entries", "-1"], ["--timeout", "-2"],
                     ["--heartbeat", "-1"], ["--heartbeat-timeout", "0"]):
            self.assertRaises(usage.UsageError, proxytap.Options().parseOptions, argv)


class SecurityOptionsTests(SynchronousTestCase):
    """``--requirepass``, ``--backend-password``/``--backend-user`` and ``--cache-bytes``."""

    def parse(self, *argv) -> proxytap.Options:
        options = proxytap.Options()
        options.parseOptions(list(argv))
        return options

    def secret_file(self, text: bytes) -> str:
        fd, path = tempfile.mkstemp(prefix="kvproxy-secret-")
        os.write(fd, text)
        os.close(fd)
        self.addCleanup(os.remove, path)
        return path

    def test_defaults(self) -> None:
        """No passwords and no byte budget by default."""
        options = self.parse()
        self.assertEqual((options["requirepass"], options["backend-password"],
                          options["backend-user"], options["cache-bytes"]),
                         (None, None, None, 0))

    def test_values(self) -> None:
        """Passwords are taken as given; --cache-bytes takes Redis's memory units."""
        options = self.parse("--requirepass", "front", "--backend-password", "back",
                             "--backend-user", "app", "--cache-bytes", "64mb")
        self.assertEqual((options["requirepass"], options["backend-password"],
                          options["backend-user"], options["cache-bytes"]),
                         ("front", "back", "app", 64 * 1024 * 1024))
        self.assertEqual(self.parse("--cache-bytes", "1000")["cache-bytes"], 1000)

    def test_passwordFiles(self) -> None:
        """A -file option reads its password from the file's first line."""
        options = self.parse("--requirepass-file", self.secret_file(b"front\n"),
                             "--backend-password-file", self.secret_file(b"b ack\r\nmore\n"))
        self.assertEqual((options["requirepass"], options["backend-password"]),
                         ("front", "b ack"))

    def test_usageErrors(self) -> None:
        """A user without a password, a password given twice, an unreadable file and a bad
        size are usage errors."""
        path = self.secret_file(b"x")
        for argv in (["--backend-user", "app"], ["--cache-bytes", "lots"],
                     ["--cache-bytes", "-1"],
                     ["--requirepass", "a", "--requirepass-file", path],
                     ["--backend-password", "a", "--backend-password-file", path],
                     ["--requirepass-file", path + ".missing"]):
            self.assertRaises(usage.UsageError, self.parse, *argv)

    def test_makeService(self) -> None:
        """The options reach the proxy: its password, both backend links' login and the
        cache's budget."""
        top = proxytap.makeService(
            {"listen": [], "backend": "tcp:127.0.0.1:1", "requirepass": "front",
             "backend-user": "app", "backend-password": "back", "cache-bytes": 5000},
            MemoryReactorClock())
        store = top.store
        self.assertTrue(store.auth.check(b"default", b"front"))
        self.assertEqual(store.backend.login, [b"AUTH", b"app", b"back"])
        self.assertEqual(store.listener.connection.login, [b"AUTH", b"app", b"back"])
        self.assertEqual(store.cache.max_bytes, 5000)
        open_proxy = proxytap.makeService({"listen": [], "backend": "tcp:127.0.0.1:1"},
                                          MemoryReactorClock()).store
        self.assertFalse(open_proxy.auth.required)
        self.assertIsNone(open_proxy.backend.login)


def wait_until(predicate, what: str, limit: float = 10.0) -> defer.Deferred:
    """Return a Deferred firing once ``predicate()`` is true, polling on the reactor."""
    deadline = time.monotonic() + limit

    def check(_=None):
        if predicate():
            return None
        if time.monotonic() > deadline:
            raise AssertionError("gave up waiting for " + what)
        return task.deferLater(reactor, 0.01, check)

    return defer.maybeDeferred(check)


class InProcessCase(TestCase):
    """kvproxy in front of a kvstore Store (``backend_store`` wraps it), both on loopback
    in this process; ``self.client`` talks to kvproxy, ``self.direct`` to the Store."""

    timeout = 60

    backend_store = None  # a wrapper of the Store, or None

    @defer.inlineCallbacks
    def setUp(self):
        self.store = Store(reactor)
        served = self.store if self.backend_store is None else self.backend_store(self.store)
        self.backend_port = reactor.listenTCP(0, KVFactory(served), interface="127.0.0.1")
        self.port_number = self.backend_port.getHost().port
        self.service = proxytap.makeService(
            {"listen": [], "backend": "tcp:127.0.0.1:%d" % self.port_number, "ttl": 30,
             "timeout": 2}, reactor)
        self.service.startService()
        self.proxy_port = reactor.listenTCP(0, KVFactory(self.service.store),
                                            interface="127.0.0.1")
        self.listener = self.service.store.listener
        yield wait_until(lambda: self.listener.state == "on", "tracking on")
        self.client = yield client.connect(
            reactor, "127.0.0.1:%d" % self.proxy_port.getHost().port, timeout=5)
        self.direct = yield client.connect(reactor, "127.0.0.1:%d" % self.port_number,
                                           timeout=5)

    @defer.inlineCallbacks
    def tearDown(self):
        for each in (self.client, self.direct):
            if each.is_connected:
                yield each.close()
        yield self.proxy_port.stopListening()
        yield self.service.stopService()
        if self.backend_port is not None:
            yield self.backend_port.stopListening()
        for session in list(self.store.clients.values()):
            protocol = getattr(session.push, "__self__", None)
            if protocol is not None and protocol.transport is not None:
                protocol.transport.abortConnection()
        self.assertEqual([call for call in reactor.getDelayedCalls()
                          if "Cache._sweep" in repr(call)], [])



class InProcessTests(InProcessCase):
    """kvproxy in front of a kvstore Store, both on loopback in this process."""

    @defer.inlineCallbacks
    def test_coherenceWithDirectWrites(self):
        """Writes straight to the backend are seen through the proxy once invalidated."""
        yield self.client.set(b"k", b"1")
        self.assertEqual((yield self.client.get(b"k")), b"1")
        self.assertEqual((yield self.client.get(b"k")), b"1")
        hits = self.service.store.cache.hits
        self.assertEqual(hits, 1)
        yield self.direct.set(b"k", b"2")
        yield wait_until(lambda: b"k" not in self.service.store.cache, "invalidation")
        self.assertEqual((yield self.client.get(b"k")), b"2")
        yield self.direct.delete(b"k")
        yield wait_until(lambda: b"k" not in self.service.store.cache, "invalidation")
        self.assertIsNone((yield self.client.get(b"k")))
        yield self.direct.execute(b"FLUSHALL")
        yield wait_until(lambda: len(self.service.store.cache) == 0, "flush")
        info = yield self.client.info()
        self.assertEqual(info["invalidation_state"], "on")
        self.assertGreaterEqual(int(info["invalidation_messages"]), 3)

    @defer.inlineCallbacks
    def test_typedBackendNilsAreReread(self):
        """A kvstore backend holds hashes too, so an MGET nil is re-read with GET: a GET of a
        hash through the proxy answers WRONGTYPE, never a cached nil."""
        yield self.client.execute(b"HSET", b"h", b"f", b"v")
        self.assertEqual((yield self.client.mget(b"h", b"y")), [None, None])
        self.assertFalse(self.service.store.backend.strings_only)
        failure = yield self.assertFailure(self.client.get(b"h"), Exception)
        self.assertIn("WRONGTYPE", str(failure))
        info = yield self.client.info()
        self.assertEqual(info["backend_strings_only"], "0")

    @defer.inlineCallbacks
    def test_writesThroughProxyReadBack(self):
        """Every write through the proxy is read back by the next GET, MGET included."""
        for argv, key, expected in (
                ([b"SET", b"a", b"1"], b"a", b"1"),
                ([b"INCR", b"a"], b"a", b"2"),
                ([b"APPEND", b"a", b"x"], b"a", b"2x"),
                ([b"MSET", b"a", b"m", b"b", b"n"], b"b", b"n"),
                ([b"GETDEL", b"b"], b"b", None),
                ([b"DEL", b"a"], b"a", None)):
            yield self.client.get(key)
            yield self.client.execute(*argv)
            self.assertEqual((yield self.client.get(key)), expected, argv)
        yield self.client.mset({b"x": b"1", b"y": b"2"})
        self.assertEqual((yield self.client.mget(b"x", b"y", b"z")), [b"1", b"2", None])

    @defer.inlineCallbacks
    def test_backendDownAndBack(self):
        """With the backend gone requests fail fast with a clear error; it reconnects later."""
        yield self.client.set(b"k", b"v")
        yield self.backend_port.stopListening()
        self.backend_port = None
        for session in list(self.store.clients.values()):
            session.push.__self__.transport.loseConnection()
        backend = self.service.store.backend
        yield wait_until(lambda: backend.state == "down", "backend down")
        error = yield self.assertFailure(self.client.get(b"k"), client.ReplyError)
        self.assertIn("backend unavailable", error.message)
        error = yield self.assertFailure(self.client.set(b"k", b"w"), client.ReplyError)
        self.assertIn("backend", error.message)
        self.assertEqual(len(self.service.store.cache), 0)
        self.backend_port = reactor.listenTCP(self.port_number, KVFactory(self.store),
                                              interface="127.0.0.1")
        yield wait_until(lambda: backend.state == "connected" and self.listener.state == "on",
                         "reconnection", limit=20)
        self.assertEqual((yield self.client.get(b"k")), b"v")

    @defer.inlineCallbacks
    def test_slowBackendTimesOut(self):
        """A backend that does not answer gives a timeout error, never a wrong reply."""
        server_side = []
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        sock.listen(1)
        self.addCleanup(sock.close)
        store = self.service.store
        silent = Backend(reactor, client.endpoint_from_string(
            reactor, "127.0.0.1:%d" % sock.getsockname()[1]), "silent", timeout=0.2)
        silent.startService()
        self.addCleanup(silent.stopService)
        self.addCleanup(lambda: [each.close() for each in server_side])
        yield wait_until(lambda: silent.state == "connected", "silent connection")
        server_side.append(sock.accept()[0])
        store.backend, saved = silent, store.backend
        self.addCleanup(setattr, store, "backend", saved)
        reply = yield store.new_session().execute([b"GET", b"nothing"])
        self.assertIsInstance(reply, Error)
        self.assertIn("backend timeout", reply.message)


def pipeline(port: int, *commands) -> list:
    """Send ``commands`` (argv lists) to loopback ``port`` in one write; return the replies."""
    parser = respreply.ReplyParser()
    replies = []
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(b"".join(respreply.encode_command(argv) for argv in commands))
        while len(replies) < len(commands):
            data = sock.recv(65536)
            if not data:
                raise AssertionError("connection closed after %r" % (replies,))
            parser.feed(data)
            while True:
                reply = parser.next_reply()
                if reply is respreply.NEED_MORE:
                    break
                replies.append(reply)
    return replies


class _TwiceSession:
    """A kvstore session that answers TWICE with two replies, as a misbehaving backend."""

    def __init__(self, inner) -> None:
        object.__setattr__(self, "inner", inner)

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def __setattr__(self, name, value):
        setattr(self.inner, name, value)

    def execute(self, argv):
        if argv and argv[0].upper() == b"TWICE":
            self.inner.push(Status(b"first"))
            return Status(b"second")
        return self.inner.execute(argv)


class TwiceStore:
    """A kvstore Store whose sessions answer TWICE twice."""

    def __init__(self, store) -> None:
        self.store = store
        self.clients = store.clients

    @property
    def journal(self):
        return getattr(self.store, "journal", None)

    def new_session(self, peer: str = ""):
        return _TwiceSession(self.store.new_session(peer))

    def drop_session(self, session) -> None:
        self.store.drop_session(session.inner)


class ExtraReplyTests(InProcessCase):
    """kvproxy in front of a backend that answers one command twice."""

    backend_store = TwiceStore

    @defer.inlineCallbacks
    def test_extraReplyReachesNoOtherClient(self):
        """The second reply to TWICE goes to no other client: its GET, if it was on the same
        backend connection, fails; the next one is answered."""
        yield self.direct.set(b"k", b"v")
        other = yield client.connect(
            reactor, "127.0.0.1:%d" % self.proxy_port.getHost().port, timeout=5)
        self.addCleanup(other.close)
        twice = self.client.request([b"TWICE"])
        fetch = other.request([b"GET", b"k"])
        self.assertEqual((yield twice), Status(b"first"))
        reply = yield fetch
        if reply != b"v":
            self.assertIsInstance(reply, Error)
            self.assertIn("does not fit", reply.message)
        self.assertEqual((yield other.get(b"k")), b"v")


# A script keeping redis-server busy for two seconds.
BUSY_SCRIPT = (b"local t = redis.call('TIME') "
               b"while true do local n = redis.call('TIME') "
               b"if (n[1] - t[1]) * 1000000 + (n[2] - t[2]) > 2000000 then break end end "
               b"return 1")


def eventually(read, expected, limit: float = 10.0):
    """Read until ``read()`` returns ``expected`` (invalidations are asynchronous)."""
    deadline = time.monotonic() + limit
    while True:
        value = read()
        if value == expected or time.monotonic() > deadline:
            return value


class TwistdTests(SynchronousTestCase):
    """Real ``twistd kvproxy`` processes in front of twistd kvstore and redis-server."""

    if redis is None:
        skip = "redis-py is not installed"

    def start_proxy(self, backend_port: int, *extra) -> TwistdProcess:
        """Start kvproxy (2 s backend timeout) before ``backend_port``; return it, stopped later."""
        proxy = start_kvproxy(backend_port, "--timeout", "2", *extra)
        self.addCleanup(proxy.stop)
        return proxy

    def check_coherence(self, proxy_port: int, backend_port: int) -> None:
        # RESP2: a RESP3 client (redis-py 8's default) gets a connection of its own.
        via = redis.Redis(port=proxy_port, protocol=2, socket_timeout=10)
        direct = redis.Redis(port=backend_port, protocol=2, socket_timeout=10)
        self.addCleanup(via.close)
        self.addCleanup(direct.close)
        via.set("k", "1")
        # The second GET may wait for the first value's PTTL; the third is a hit.
        for _ in range(3):
            self.assertEqual(via.get("k"), b"1")
        for value in (b"2", b"3", b"4"):
            direct.set("k", value)
            self.assertEqual(eventually(lambda: via.get("k"), value), value)
            self.assertEqual(via.get("k"), value)
        direct.delete("k")
        self.assertIsNone(eventually(lambda: via.get("k"), None))
        via.set("k", "5")
        self.assertEqual(via.get("k"), b"5")
        direct.flushall()
        self.assertIsNone(eventually(lambda: via.get("k"), None))
        info = via.info()
        self.assertEqual(info["invalidation_state"], "on")
        self.assertGreater(info["cache_hits"], 0)
        telnet = socket.create_connection(("127.0.0.1", proxy_port), timeout=10)
        self.addCleanup(telnet.close)
        telnet.sendall(b"SET t \"x y\"\r\nGET t\r\nQUIT\r\n")
        received = b""
        while True:
            chunk = telnet.recv(4096)
            if not chunk:
                break
            received += chunk
        self.assertEqual(received, b'OK\r\n"x y"\r\nOK\r\n')

    def test_kvstoreBackend(self) -> None:
        """Through kvproxy, redis-py and telnet read kvstore's latest values, direct writes too."""
        data = tempfile.mkdtemp(prefix="kvproxy-test-")
        self.addCleanup(shutil.rmtree, data, True)
        store = start_kvstore(data, "--fsync", "no")
        self.addCleanup(store.stop)
        proxy = self.start_proxy(store.port)
        proxy.wait_for_line("invalidation tracking on")
        self.check_coherence(proxy.port, store.port)

    def test_redisBackend(self) -> None:
        """Through kvproxy, clients read redis-server's latest values, direct writes too."""
        server = start_redis_or_skip()
        self.addCleanup(server.stop)
        proxy = self.start_proxy(server.port)
        proxy.wait_for_line("invalidation tracking on")
        self.check_coherence(proxy.port, server.port)
        via = redis.Redis(port=proxy.port, protocol=2, socket_timeout=10)
        self.addCleanup(via.close)
        self.assertEqual(via.info()["backend_strings_only"], 0)

    def test_resp3Cached(self) -> None:
        """A RESP3 client (redis-py's default) gets its own backend connection, the
        backend's INFO and no cache; with --resp3-cached kvproxy answers its HELLO 3 and
        serves it from the cache."""
        server = start_redis_or_skip()
        self.addCleanup(server.stop)
        tunnelled = self.start_proxy(server.port)
        cached = self.start_proxy(server.port, "--resp3-cached")
        for proxy in (tunnelled, cached):
            proxy.wait_for_line("invalidation tracking on")
        via = redis.Redis(port=tunnelled.port, protocol=3, socket_timeout=10)
        self.addCleanup(via.close)
        via.set("r", "1")
        self.assertEqual(via.get("r"), b"1")
        self.assertNotIn("cache_hits", via.info())
        via = redis.Redis(port=cached.port, protocol=3, socket_timeout=10)
        self.addCleanup(via.close)
        self.assertEqual(eventually(lambda: via.get("r"), b"1"), b"1")
        # A GET made while the first value's PTTL is out waits for it: the next is a hit.
        self.assertEqual(via.get("r"), b"1")
        self.assertEqual(via.get("r"), b"1")
        self.assertGreater(via.info()["cache_hits"], 0)

    def test_inlineRepliesResp(self) -> None:
        """With --inline-replies resp, inline commands are answered in RESP, as
        redis-server answers them; by default as redis-cli shows them."""
        server = start_redis_or_skip()
        self.addCleanup(server.stop)
        for extra, expected in ((["--inline-replies", "resp"], b"+PONG\r\n$1\r\nx\r\n"),
                                ([], b"PONG\r\n\"x\"\r\n")):
            proxy = self.start_proxy(server.port, *extra)
            telnet = socket.create_connection(("127.0.0.1", proxy.port), timeout=10)
            self.addCleanup(telnet.close)
            telnet.sendall(b"PING\r\nECHO x\r\n")
            received = b""
            while len(received) < len(expected):
                chunk = telnet.recv(4096)
                if not chunk:
                    break
                received += chunk
            self.assertEqual(received, expected)

    def test_redisPipelineReadsBeforeItsWrite(self) -> None:
        """In front of redis-server, a GET pipelined before a SET of its key never sees it."""
        server = start_redis_or_skip()
        self.addCleanup(server.stop)
        proxy = self.start_proxy(server.port)
        proxy.wait_for_line("invalidation tracking on")
        for attempt in range(20):
            a, b = b"a%d" % attempt, b"b%d" % attempt
            replies = pipeline(proxy.port, [b"GET", a], [b"GET", b], [b"SET", a, b"new"],
                               [b"GET", a])
            self.assertEqual(replies, [None, None, Status(b"OK"), b"new"], attempt)

    def test_adminRefusedUnlessAllowed(self) -> None:
        """CONFIG SET and FLUSHALL through kvproxy are refused and redis-server keeps its
        settings; with --allow-admin they are forwarded and FLUSHALL flushes the cache."""
        server = start_redis_or_skip()
        self.addCleanup(server.stop)
        direct = redis.Redis(port=server.port, protocol=2, socket_timeout=10)
        self.addCleanup(direct.close)
        policy = direct.config_get("maxmemory-policy")["maxmemory-policy"]
        proxy = self.start_proxy(server.port)
        via = redis.Redis(port=proxy.port, protocol=2, socket_timeout=10)
        self.addCleanup(via.close)
        for command in (lambda: via.config_set("maxmemory-policy", "allkeys-lru"),
                        via.flushall, lambda: via.execute_command("DEBUG", "SLEEP", "0")):
            with self.assertRaises(redis.ResponseError) as caught:
                command()
            self.assertIn("--allow-admin", str(caught.exception))
        self.assertEqual(direct.config_get("maxmemory-policy")["maxmemory-policy"], policy)
        self.assertEqual(via.config_get("maxmemory-policy")["maxmemory-policy"], policy)
        admin = self.start_proxy(server.port, "--allow-admin")
        admin.wait_for_line("invalidation tracking on")
        allowed = redis.Redis(port=admin.port, protocol=2, socket_timeout=10)
        self.addCleanup(allowed.close)
        allowed.set("k", "1")
        self.assertEqual(allowed.get("k"), b"1")
        self.assertTrue(allowed.flushall())
        self.assertIsNone(allowed.get("k"))
        self.assertTrue(allowed.config_set("maxmemory-policy", "allkeys-lru"))
        self.assertEqual(direct.config_get("maxmemory-policy")["maxmemory-policy"],
                         "allkeys-lru")

    def test_slowCommandFailsAlone(self) -> None:
        """A command slower than --timeout fails with a timeout; a GET that queued behind it
        is answered all the same (asked again on the replacement connection)."""
        server = start_redis_or_skip()
        self.addCleanup(server.stop)
        direct = redis.Redis(port=server.port, protocol=2, socket_timeout=10)
        self.addCleanup(direct.close)
        direct.set("k", "v")
        # The script runs 2 s: the timeout is passed, and a replacement connection (its
        # INFO answered once the script is done) comes well within another.
        proxy = start_kvproxy(server.port, "--timeout", "1.5")
        self.addCleanup(proxy.stop)
        proxy.wait_for_line("invalidation tracking on")
        slow = socket.create_connection(("127.0.0.1", proxy.port), timeout=10)
        self.addCleanup(slow.close)
        slow.sendall(respreply.encode_command([b"EVAL", BUSY_SCRIPT, b"0"]))
        self.assertEqual(pipeline(proxy.port, [b"GET", b"k"]), [b"v"])
        answer = slow.recv(4096)
        self.assertTrue(answer.startswith(b"-ERR backend timeout: no reply to EVAL"), answer)

    def test_silentBackendDropsTheLink(self) -> None:
        """A backend that stops answering without closing (SIGSTOP): the heartbeat drops the
        invalidation link, INFO says so and nothing stays cached; when it answers again the
        link is back up and counted as a reconnection."""
        server = start_redis_or_skip()
        self.addCleanup(server.stop)
        proxy = start_kvproxy(server.port, "--timeout", "1", "--heartbeat", "0.2",
                              "--heartbeat-timeout", "0.5")
        self.addCleanup(proxy.stop)
        proxy.wait_for_line("invalidation tracking on")
        via = redis.Redis(port=proxy.port, protocol=2, socket_timeout=10)
        self.addCleanup(via.close)
        via.set("k", "1")
        self.assertEqual(eventually(lambda: via.get("k"), b"1"), b"1")
        self.assertEqual(via.info()["cache_entries"], 1)
        os.kill(server.pid, signal.SIGSTOP)
        self.addCleanup(os.kill, server.pid, signal.SIGCONT)
        link = eventually(lambda: via.info()["cache_invalidation_link"], "down", limit=30)
        self.assertEqual(link, "down")
        self.assertEqual(via.info()["cache_entries"], 0)
        os.kill(server.pid, signal.SIGCONT)
        link = eventually(lambda: via.info()["cache_invalidation_link"], "up", limit=30)
        self.assertEqual(link, "up")
        info = via.info()
        self.assertGreaterEqual(info["cache_invalidation_reconnects"], 1)
        self.assertEqual(via.get("k"), b"1")

    def test_backendRestart(self) -> None:
        """A killed backend gives clear errors, and the proxy reconnects when it returns."""
        data = tempfile.mkdtemp(prefix="kvproxy-test-")
        self.addCleanup(shutil.rmtree, data, True)
        port = free_port()
        store = start_kvstore(data, "--fsync", "always", port=port)
        self.addCleanup(store.stop)
        proxy = self.start_proxy(port)
        proxy.wait_for_line("invalidation tracking on")
        via = redis.Redis(port=proxy.port, protocol=2, socket_timeout=10)
        self.addCleanup(via.close)
        via.set("k", "before")
        self.assertEqual(via.get("k"), b"before")
        store.kill()
        with self.assertRaises(redis.ResponseError) as caught:
            eventually(lambda: via.get("k"), "an error")
            via.get("k")
        self.assertIn("backend", str(caught.exception))
        store = start_kvstore(data, "--fsync", "always", port=port)
        self.addCleanup(store.stop)

        def read():
            try:
                return via.get("k")
            except redis.ResponseError:
                return None

        self.assertEqual(eventually(read, b"before", limit=30), b"before")
        self.assertEqual(eventually(lambda: via.info()["invalidation_state"], "on", limit=30),
                         "on")
        self.assertTrue(os.path.isdir(data))


class GarbageCollectorPolicyTests(SynchronousTestCase):
    """The proxy service sets its collector policy while running and restores it on stop."""

    @skipIf(platform.python_implementation() != "CPython", "CPython's collector only")
    def test_policyAppliedAndRestored(self) -> None:
        """startService freezes start-up objects and raises thresholds; stop undoes both."""
        before = gc.get_threshold()
        self.addCleanup(gc.set_threshold, *before)
        self.addCleanup(gc.unfreeze)
        top = proxytap.makeService({"listen": [], "backend": "tcp:127.0.0.1:1"},
                                   MemoryReactorClock())
        top.startService()
        self.assertEqual(gc.get_threshold(), proxytap.GC_THRESHOLDS)
        self.assertGreater(gc.get_freeze_count(), 0)
        self.successResultOf(top.stopService())
        self.assertEqual(gc.get_threshold(), before)
        self.assertEqual(gc.get_freeze_count(), 0)
