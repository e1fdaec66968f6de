"""Tests for kvtwist.client: command methods, connect(), and sessions against real servers."""

from __future__ import annotations

import shutil
import tempfile

from twisted.internet import defer, endpoints, error
from twisted.internet.error import ConnectionDone, ConnectionLost
from twisted.internet.testing import MemoryReactorClock, StringTransport
from twisted.trial import unittest

from kvtwist import client
from kvtwist.wire import respreply
from kvtwist.wire.replies import NIL_ARRAY, OK, Status, to_resp
from tests.procs import start_kvstore
from tests.redisref import start_redis_or_skip
from tests.client.test_protocol import connected


class ConvenienceTests(unittest.SynchronousTestCase):
    """The command methods send the right argv and return natural Python values."""

    def check(self, call, reply, expected_argv, expected_value):
        """Run one method against a canned reply and compare what was sent and delivered."""
        proto, transport, clock = connected()
        d = call(proto)
        clock.advance(0)
        self.assertEqual(transport.value(), respreply.encode_command(expected_argv))
        proto.dataReceived(to_resp(reply))
        self.assertEqual(self.successResultOf(d), expected_value)

    def test_methods(self):
        """Each method's request and result conversion."""
        self.check(lambda c: c.get(b"k"), None, [b"GET", b"k"], None)
        self.check(lambda c: c.set(b"k", b"v", ex=10, nx=True), None,
                   [b"SET", b"k", b"v", b"EX", b"10", b"NX"], False)
        self.check(lambda c: c.set("k", "v", px=5, xx=True), OK,
                   [b"SET", b"k", b"v", b"PX", b"5", b"XX"], True)
        self.check(lambda c: c.delete(b"a", b"b"), 2, [b"DEL", b"a", b"b"], 2)
        self.check(lambda c: c.exists(b"a"), 1, [b"EXISTS", b"a"], 1)
        self.check(lambda c: c.mget(b"a", b"b"), [b"1", None], [b"MGET", b"a", b"b"], [b"1", None])
        self.check(lambda c: c.mset({b"a": b"1", b"b": 2}), OK,
                   [b"MSET", b"a", b"1", b"b", b"2"], True)
        self.check(lambda c: c.incr(b"n"), 1, [b"INCR", b"n"], 1)
        self.check(lambda c: c.incr(b"n", 5), 6, [b"INCRBY", b"n", b"5"], 6)
        self.check(lambda c: c.decr(b"n", 2), 4, [b"DECRBY", b"n", b"2"], 4)
        self.check(lambda c: c.expire(b"k", 9), 0, [b"EXPIRE", b"k", b"9"], False)
        self.check(lambda c: c.ttl(b"k"), -2, [b"TTL", b"k"], -2)
        self.check(lambda c: c.ping(), Status(b"PONG"), [b"PING"], b"PONG")
        self.check(lambda c: c.ping(b"hi"), b"hi", [b"PING", b"hi"], b"hi")
        self.check(lambda c: c.flush(), OK, [b"FLUSHDB"], True)
        self.check(lambda c: c.keys(), [b"a"], [b"KEYS", b"*"], [b"a"])
        self.check(lambda c: c.publish(b"ch", b"m"), 0, [b"PUBLISH", b"ch", b"m"], 0)
        self.check(lambda c: c.quit(), OK, [b"QUIT"], True)
        self.check(lambda c: c.info(), b"# Server\r\nredis_version:7.0.0\r\nuptime:5\r\n",
                   [b"INFO"], {"redis_version": "7.0.0", "uptime": "5"})

    def test_nil_array(self):
        """A nil array reply is delivered as NIL_ARRAY."""
        self.check(lambda c: c.execute(b"BLPOP", b"l", 1), NIL_ARRAY,
                   [b"BLPOP", b"l", b"1"], NIL_ARRAY)


class ConnectTests(unittest.SynchronousTestCase):
    """connect() builds clients from endpoints or strings."""

    def test_host_port_string(self):
        """A host:port string means a TCP connection to that address."""
        reactor = MemoryReactorClock()
        endpoint = client.endpoint_from_string(reactor, "127.0.0.1:7379")
        self.assertIsInstance(endpoint, endpoints.TCP4ClientEndpoint)
        endpoint = client.endpoint_from_string(reactor, "[::1]:7379")
        self.assertIsInstance(endpoint, endpoints.TCP6ClientEndpoint)
        endpoint = client.endpoint_from_string(reactor, "unix:path=/tmp/kv.sock")
        self.assertIsInstance(endpoint, endpoints.UNIXClientEndpoint)

    def test_connect_fires_with_client(self):
        """The Deferred fires with a connected KVClient once the connection is made."""
        reactor = MemoryReactorClock()
        d = client.connect(reactor, "127.0.0.1:7379", timeout=3)
        host, port, factory, _, _ = reactor.tcpClients[0]
        self.assertEqual((host, port), ("127.0.0.1", 7379))
        proto = factory.buildProtocol(None)
        proto.makeConnection(StringTransport())
        kv = self.successResultOf(d)
        self.assertIsInstance(kv, client.KVClient)
        self.assertEqual(kv.timeout, 3)
        self.assertTrue(kv.is_connected)

    def test_connect_timeout(self):
        """A connection attempt that does not complete in time fails with a TimeoutError."""
        reactor = MemoryReactorClock()
        d = client.connect(reactor, "127.0.0.1:7379", timeout=3)
        reactor.advance(2.9)
        self.assertNoResult(d)
        reactor.advance(0.1)
        exc = self.failureResultOf(d, error.TimeoutError).value
        self.assertIn("could not connect within 3 seconds", str(exc))


class RealServerMixin:
    """The client against a real server process on a loopback port."""

    start = None

    def setUp(self):
        from twisted.internet import reactor

        self.reactor = reactor
        self.tmpdir = tempfile.mkdtemp(prefix="kvtwist-client-")
        self.addCleanup(shutil.rmtree, self.tmpdir, True)
        self.process = self.start(self.tmpdir)
        self.addCleanup(self.process.stop)
        self.port = self.process.port

    @defer.inlineCallbacks
    def test_session(self):
        """Pipelined commands, an error reply and QUIT behave as against Redis."""
        kv = yield client.connect(self.reactor, "127.0.0.1:%d" % (self.port,), timeout=10)
        pending = [kv.set(b"k", b"v"), kv.get(b"k"), kv.mset({b"a": b"1", b"b": b"2"}),
                   kv.mget(b"a", b"b", b"nope"), kv.incr(b"n", 5), kv.exists(b"a", b"zz")]
        values = yield defer.gatherResults(pending, consumeErrors=True)
        self.assertEqual(values, [True, b"v", True, [b"1", b"2", None], 5, 1])
        try:
            yield kv.incr(b"k")
        except client.ReplyError as exc:
            self.assertTrue(exc.message.startswith("ERR"), exc.message)
        else:
            self.fail("INCR of a non-integer succeeded")
        self.assertEqual((yield kv.delete(b"k", b"a")), 2)
        self.assertTrue((yield kv.quit()))
        reason = yield kv.when_disconnected()
        self.assertIsInstance(reason, (ConnectionDone, ConnectionLost))

    @defer.inlineCallbacks
    def test_server_goes_away(self):
        """Killing the server fails a pending request with ClientDisconnected."""
        kv = yield client.connect(self.reactor, "127.0.0.1:%d" % (self.port,), timeout=10)
        self.assertEqual((yield kv.ping()), b"PONG")
        lost = kv.when_disconnected()
        self.process.kill()
        yield lost
        try:
            yield kv.get(b"k")
        except client.ClientDisconnected:
            pass
        else:
            self.fail("request on a dead connection succeeded")


class KVStoreTests(RealServerMixin, unittest.TestCase):
    """The client against kvstore."""

    start = staticmethod(start_kvstore)


class RedisServerTests(RealServerMixin, unittest.TestCase):
    """The client against redis-server, the reference."""

    start = staticmethod(lambda tmpdir: start_redis_or_skip())
