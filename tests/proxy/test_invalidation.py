"""Tests for kvtwist.proxy.invalidation: the tracking handshake, pushes, the heartbeat."""

from __future__ import annotations

from twisted.internet.defer import Deferred
from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from kvtwist.proxy.cache import Cache
from kvtwist.proxy.invalidation import InvalidationListener
from kvtwist.proxy.store import ProxyStore
from tests.proxy.fakes import FakeBackend, FakeEndpoint, result_of

SUBSCRIBED = b"*3\r\n$9\r\nsubscribe\r\n$20\r\n__redis__:invalidate\r\n:1\r\n"


class ListenerCase(SynchronousTestCase):
    """A started InvalidationListener (default heartbeat) on a Clock and a FakeEndpoint,
    with a ProxyStore over it and a FakeBackend; everything stops after the test."""

    def setUp(self) -> None:
        self.clock = Clock()
        self.cache = Cache(self.clock, ttl=60)
        self.addCleanup(self.cache.stop)
        self.endpoint = FakeEndpoint()
        self.listener = InvalidationListener(self.clock, self.endpoint, self.cache, "fake",
                                             timeout=5, clock=self.clock)
        self.listener.startService()
        self.addCleanup(self.listener.stopService)
        self.backend = FakeBackend()
        self.proxy = ProxyStore(self.clock, self.cache, self.backend, self.listener)
        self.session = self.proxy.new_session()

    def server(self, index: int = -1):
        """The protocol of connection ``index``, to feed the server's replies to."""
        return self.endpoint.connections[index][0]

    def handshake(self, index: int = -1) -> None:
        """Answer CLIENT ID, CLIENT TRACKING and SUBSCRIBE on connection ``index``."""
        for reply in (b":7\r\n", b"+OK\r\n", SUBSCRIBED):
            self.clock.advance(0)
            self.server(index).dataReceived(reply)

    def info(self) -> dict:
        text = self.session.execute([b"INFO", b"proxy"]).decode()
        return dict(line.split(":", 1) for line in text.splitlines() if ":" in line)


class HandshakeTests(ListenerCase):
    """The link comes up through the tracking handshake and flushes the cache."""

    def test_handshake(self) -> None:
        """CLIENT ID, CLIENT TRACKING on REDIRECT id BCAST, SUBSCRIBE; then the link is up."""
        self.cache.put(b"k", b"from before")
        self.handshake()
        self.assertEqual(self.endpoint.written(0), [
            [b"CLIENT", b"ID"], [b"CLIENT", b"TRACKING", b"on", b"REDIRECT", b"7", b"BCAST"],
            [b"SUBSCRIBE", b"__redis__:invalidate"]])
        self.assertEqual((self.listener.state, self.listener.link), ("on", "up"))
        self.assertTrue(self.listener.caching)
        self.assertNotIn(b"k", self.cache)

    def test_pushesInvalidate(self) -> None:
        """An invalidation message drops its keys; a nil one (a flush) drops everything."""
        self.handshake()
        for key in (b"a", b"b", b"c"):
            self.cache.put(key, b"v")
        self.server().dataReceived(b"*3\r\n$7\r\nmessage\r\n$20\r\n__redis__:invalidate\r\n"
                                   b"*2\r\n$1\r\na\r\n$1\r\nb\r\n")
        self.assertEqual([key in self.cache for key in (b"a", b"b", b"c")], [False, False, True])
        self.server().dataReceived(b"*3\r\n$7\r\nmessage\r\n$20\r\n__redis__:invalidate\r\n"
                                   b"$-1\r\n")
        self.assertEqual(len(self.cache), 0)
        self.assertEqual(self.listener.messages, 2)

    def test_pushesInvalidateEveryDatabase(self) -> None:
        """A message names a key, not its database: the key goes in every database."""
        self.handshake()
        for db in (0, 3, 9):
            self.cache.put(b"a", b"v", db)
            self.cache.put(b"b", b"v", db)
        self.server().dataReceived(b"*3\r\n$7\r\nmessage\r\n$20\r\n__redis__:invalidate\r\n"
                                   b"*1\r\n$1\r\na\r\n")
        self.assertEqual(self.cache.counts(), {0: 1, 3: 1, 9: 1})
        self.assertNotIn(b"a", self.cache)
        self.assertNotIn((3, b"a"), self.cache)

    def test_noTracking(self) -> None:
        """A backend without CLIENT TRACKING: TTLs alone, the link is off, caching allowed."""
        self.clock.advance(0)
        self.server().dataReceived(b":7\r\n")
        self.clock.advance(0)
        self.server().dataReceived(b"-ERR unknown subcommand 'TRACKING'\r\n")
        self.assertEqual((self.listener.state, self.listener.link), ("unsupported", "off"))
        self.assertTrue(self.listener.caching)
        self.clock.advance(10)
        self.assertEqual(self.endpoint.written(0)[-1][0], b"CLIENT")  # no heartbeat


class HeartbeatTests(ListenerCase):
    """A PING every second, answered within two, or the link is dropped and replaced."""

    def test_pingsWhileUp(self) -> None:
        """Answered PINGs keep the link up; one is sent each interval."""
        self.handshake()
        for _ in range(3):
            self.clock.advance(1)
            self.assertEqual(self.endpoint.written(0)[-1], [b"PING"])
            self.server().dataReceived(b"*2\r\n$4\r\npong\r\n$0\r\n\r\n")
        self.assertEqual(len([argv for argv in self.endpoint.written(0) if argv == [b"PING"]]), 3)
        self.assertEqual(self.listener.link, "up")

    def test_silentLinkIsDropped(self) -> None:
        """A PING unanswered within its deadline drops the link: the cache is flushed, cached
        reads stop, INFO says so, and the connection is closed."""
        self.handshake()
        self.cache.put(b"k", b"maybe stale")
        self.clock.advance(1)
        self.clock.advance(2)
        self.assertEqual(len(self.cache), 0)
        self.assertFalse(self.listener.caching)
        self.assertEqual(self.info()["cache_invalidation_link"], "down")
        self.assertTrue(self.endpoint.connections[0][1].aborted)

    def test_noCachedReadWhileDown(self) -> None:
        """While the link is down, GETs go to the backend and their replies are not kept."""
        self.handshake()
        first = self.session.execute([b"GET", b"k"])
        self.clock.advance(0)
        self.backend.answer(0, b"v")
        self.assertEqual((result_of(first), self.session.execute([b"GET", b"k"])), (b"v", b"v"))
        self.clock.advance(1)
        self.clock.advance(2)  # the heartbeat went unanswered
        self.assertEqual(self.listener.link, "down")
        for attempt in (1, 2):
            d = self.session.execute([b"GET", b"k"])
            self.assertIsInstance(d, Deferred)
            self.clock.advance(0)
            self.backend.answer(attempt, b"new")
            self.assertEqual(result_of(d), b"new")
        self.assertEqual(len(self.cache), 0)

    def test_reconnectFlushesAndCounts(self) -> None:
        """The link is replaced; the cache is flushed again when it is back, and INFO counts
        the reconnection."""
        self.handshake()
        self.assertEqual(self.info()["cache_invalidation_reconnects"], "0")
        self.clock.advance(1)
        self.clock.advance(2)
        self.assertEqual(self.listener.link, "down")
        self.endpoint.close(0)
        self.clock.advance(0.1)
        self.assertEqual(len(self.endpoint.connections), 2)
        self.cache.put(b"k", b"filled while down")
        self.handshake(1)
        self.assertNotIn(b"k", self.cache)
        info = self.info()
        self.assertEqual((info["cache_invalidation_link"], info["cache_invalidation_reconnects"]),
                         ("up", "1"))
        self.clock.advance(1)
        self.assertEqual(self.endpoint.written(1)[-1], [b"PING"])

    def test_lostLinkFlushesAtOnce(self) -> None:
        """A link the backend closes is down at once, cache flushed, before any heartbeat."""
        self.handshake()
        self.cache.put(b"k", b"v")
        self.endpoint.close(0)
        self.assertEqual((len(self.cache), self.listener.link), (0, "down"))
