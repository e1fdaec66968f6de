"""Tests for kvtwist.proxy.lanes: large requests on connections of their own, in order."""

from __future__ import annotations

from twisted.internet.defer import Deferred
from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from kvtwist.proxy.cache import Cache
from kvtwist.proxy.lanes import IDLE, LANES, LARGE_BYTES, Lanes, large_write
from kvtwist.proxy.store import ProxyStore
from kvtwist.wire.replies import OK, PONG
from tests.proxy.fakes import FakeBackend, FakeListener, result_of

BIG = b"x" * LARGE_BYTES


class FakeLane(FakeBackend):
    """A lane: a FakeBackend that is started and stopped, idle while nothing awaits."""

    running = False

    def startService(self) -> None:
        self.running = True

    def stopService(self) -> None:
        self.running = False

    @property
    def idle(self) -> bool:
        return all(d.called for _, d in self.sent)


class LaneCase(SynchronousTestCase):
    """A ProxyStore over a FakeBackend whose lanes are FakeLanes (``self.lanes_made``)."""

    def setUp(self) -> None:
        self.clock = Clock()
        self.cache = Cache(self.clock, ttl=60, miss_ttl=5)
        self.addCleanup(self.cache.stop)
        self.backend = FakeBackend()
        self.proxy = ProxyStore(self.clock, self.cache, self.backend, FakeListener())
        self.lanes_made = []
        self.proxy.lanes = Lanes(self.clock, self._make)
        self.addCleanup(self.proxy.lanes.stop)
        self.session = self.proxy.new_session("peer")
        self.other = self.proxy.new_session("other")

    def _make(self):
        lane = FakeLane()
        self.lanes_made.append(lane)
        return lane

    def sent(self, backend) -> list:
        return [argv for argv, _ in backend.sent]

    def big_set(self, key: bytes = b"k"):
        """SET ``key`` to a large value; answer the barrier and the lane; the reply."""
        d = self.session.execute([b"SET", key, BIG])
        self.clock.advance(0)
        barrier = len(self.backend.sent) - 1
        self.assertEqual(self.sent(self.backend)[barrier], [b"PING"])
        self.backend.answer(barrier, PONG)
        lane = self.lanes_made[-1]
        lane.answer(len(lane.sent) - 1, OK)
        return result_of(d)


class LargeWriteTests(LaneCase):
    """A write whose arguments reach LARGE_BYTES goes on a lane."""

    def test_largeWrite(self) -> None:
        """large_write counts every argument's bytes."""
        self.assertTrue(large_write([b"SET", b"k", BIG]))
        self.assertFalse(large_write([b"SET", b"k", BIG[:-10]]))

    def test_largeSetWaitsForTheBarrierThenTakesALane(self) -> None:
        """A large SET sends a PING on the shared connection and, once it is answered
        (everything sent before it has run), the SET on a lane; its reply is relayed."""
        d = self.session.execute([b"SET", b"k", BIG])
        self.clock.advance(0)
        self.assertEqual(self.sent(self.backend), [[b"PING"]])
        self.assertEqual(self.lanes_made, [])
        self.backend.answer(0, PONG)
        [lane] = self.lanes_made
        self.assertTrue(lane.running)
        self.assertEqual(self.sent(lane), [[b"SET", b"k", BIG]])
        self.assertNoResult(d)
        lane.answer(0, OK)
        self.assertEqual(result_of(d), OK)
        self.assertEqual(self.proxy.lanes.requests, 1)

    def test_earlierMissesGoBeforeTheBarrier(self) -> None:
        """The client's GET miss batched in this turn is sent before the barrier."""
        self.session.execute([b"GET", b"a"])
        self.session.execute([b"SET", b"k", BIG])
        self.assertEqual(self.sent(self.backend), [[b"GET", b"a"], [b"PING"]])

    def test_theClientsLaterCommandsWaitForTheLane(self) -> None:
        """The client's commands after a large SET are held until the lane answers;
        another client's go on at once."""
        d = self.session.execute([b"SET", b"k", BIG])
        later = self.session.execute([b"GET", b"k"])
        others = self.other.execute([b"GET", b"y"])
        self.clock.advance(0)
        self.assertEqual(self.sent(self.backend), [[b"PING"], [b"GET", b"y"]])
        self.backend.answer(0, PONG)
        self.backend.answer(1, b"why")
        self.assertEqual(result_of(others), b"why")
        self.assertNoResult(later)
        self.lanes_made[0].answer(0, OK)
        self.assertEqual(result_of(d), OK)
        self.clock.advance(0)
        # The held GET of the key now known to be large goes on a lane too.
        self.assertEqual(self.sent(self.backend)[2:], [[b"PING"]])
        self.backend.answer(2, PONG)
        lane = self.lanes_made[0]
        self.assertEqual(self.sent(lane)[1:], [[b"GET", b"k"]])
        lane.answer(1, BIG)
        self.assertEqual(result_of(later), BIG)

    def test_theWriteDropsTheCachedValue(self) -> None:
        """A large write drops its key's cached value when sent and when answered."""
        self.cache.put(b"k", b"old")
        d = self.session.execute([b"SET", b"k", BIG])
        self.assertNotIn(b"k", self.cache)
        self.backend.answer(0, PONG)
        self.cache.put(b"k", b"raced")
        self.lanes_made[0].answer(0, OK)
        self.assertEqual(result_of(d), OK)
        self.assertNotIn(b"k", self.cache)


class LargeReadTests(LaneCase):
    """A GET miss of a key known to hold a large value goes on a lane."""

    def test_getOfAKeyWrittenLargeTakesALaneAndFillsTheCache(self) -> None:
        """After a large SET, a GET miss of its key goes (with its PTTL) on a lane behind
        a barrier; the value is cached, so the next GET is a hit."""
        self.big_set()
        d = self.session.execute([b"GET", b"k"])
        self.clock.advance(0)
        self.assertEqual(self.sent(self.backend)[-1], [b"PING"])
        self.backend.answer(len(self.backend.sent) - 1, PONG)
        lane = self.lanes_made[0]
        self.assertEqual(self.sent(lane)[-1], [b"GET", b"k"])
        self.assertEqual(lane.ttl_requests, [([b"PTTL", b"k"], 0)])
        lane.answer(len(lane.sent) - 1, BIG)
        self.assertEqual(result_of(d), BIG)
        self.assertEqual(self.session.execute([b"GET", b"k"]), BIG)

    def test_aFetchAnsweringALargeValueMarksItsKey(self) -> None:
        """A shared GET miss that answers a large value marks its key: once the value
        is dropped, the next GET miss takes a lane; a small value unmarks it."""
        d = self.session.execute([b"GET", b"k"])
        self.clock.advance(0)
        self.backend.answer(0, BIG)
        self.assertEqual(result_of(d), BIG)
        self.assertIn(b"k", self.proxy.lanes.large)
        self.cache.invalidate(b"k")
        d = self.session.execute([b"GET", b"k"])
        self.clock.advance(0)
        self.assertEqual(self.sent(self.backend)[-1], [b"PING"])
        self.backend.answer(1, PONG)
        self.lanes_made[0].answer(0, b"small")
        self.assertEqual(result_of(d), b"small")
        self.assertNotIn(b"k", self.proxy.lanes.large)

    def test_aSecondReaderJoinsTheLaneFetch(self) -> None:
        """Another client's GET of the key while the lane fetch is in flight joins it."""
        self.big_set()
        d1 = self.session.execute([b"GET", b"k"])
        d2 = self.other.execute([b"GET", b"k"])
        self.assertIsInstance(d2, Deferred)
        self.clock.advance(0)
        self.backend.answer(len(self.backend.sent) - 1, PONG)
        lane = self.lanes_made[0]
        lane.answer(len(lane.sent) - 1, BIG)
        self.assertEqual((result_of(d1), result_of(d2)), (BIG, BIG))
        self.assertEqual(self.proxy.reads.coalesced, 1)


class PoolTests(LaneCase):
    """Lanes are opened when needed, at most LANES, and closed when idle."""

    def test_atMostLanesConnections(self) -> None:
        """Concurrent large writes open up to LANES lanes, then share them."""
        for index in range(LANES + 2):
            self.proxy.new_session().execute([b"SET", b"k%d" % (index,), BIG])
        self.clock.advance(0)
        self.backend.answer(0, PONG)
        for index in range(1, LANES + 2):
            self.backend.answer(index, PONG)
        self.assertEqual(len(self.lanes_made), LANES)
        self.assertEqual(sum(len(lane.sent) for lane in self.lanes_made), LANES + 2)

    def test_anIdleLaneIsReusedThenClosed(self) -> None:
        """A lane that answered is reused by the next large request, and closed once
        unused for IDLE seconds."""
        self.big_set(b"a")
        self.big_set(b"b")
        self.assertEqual(len(self.lanes_made), 1)
        self.clock.advance(IDLE)
        self.assertFalse(self.lanes_made[0].running)
        self.assertEqual(self.proxy.lanes.links, [])
        self.assertEqual(self.clock.getDelayedCalls(), [])


def read_reply(connection) -> bytes:
    """Read one whole reply's bytes from a RawConnection (nothing sent)."""
    end = connection._reply_end(0)
    while end is None:
        chunk = connection.sock.recv(1 << 20)
        if not chunk:
            raise ConnectionError("kvproxy closed the connection")
        connection.buffer += chunk
        end = connection._reply_end(0)
    reply, connection.buffer = connection.buffer[:end], connection.buffer[end:]
    return reply


class KvstoreTests(SynchronousTestCase):
    """Through a real ``twistd kvproxy`` in front of a real kvstore."""

    def test_largeRequestsTakeALaneInOrder(self) -> None:
        """A client's pipelined large SET, GET, small SET and GET of one key are answered
        in order with what each should see; the large ones went on a lane."""
        import shutil
        import tempfile

        from tests.procs import start_kvproxy, start_kvstore
        from tests.redisref import RawConnection

        data = tempfile.mkdtemp(prefix="kvtwist-lanes-")
        self.addCleanup(shutil.rmtree, data, True)
        store = start_kvstore(data)
        self.addCleanup(store.stop)
        proxy = start_kvproxy(store.port)
        self.addCleanup(proxy.stop)
        proxy.wait_for_line("invalidation tracking on")
        client = RawConnection(proxy.port)
        self.addCleanup(client.close)
        big = b"v" * (2 * LARGE_BYTES)
        pipeline = [[b"SET", b"k", big], [b"GET", b"k"], [b"SET", b"k", b"small"],
                    [b"GET", b"k"], [b"DEL", b"k"], [b"SET", b"k", big], [b"GET", b"k"]]
        client.sock.sendall(b"".join(
            b"*%d\r\n" % len(argv) + b"".join(b"$%d\r\n%s\r\n" % (len(arg), arg)
                                              for arg in argv) for argv in pipeline))
        replies = [read_reply(client) for _ in pipeline]
        bulk = b"$%d\r\n%s\r\n" % (len(big), big)
        self.assertEqual(replies, [b"+OK\r\n", bulk, b"+OK\r\n", b"$5\r\nsmall\r\n", b":1\r\n",
                                   b"+OK\r\n", bulk])
        info = client.call([b"INFO", b"proxy"]).decode("ascii", "replace")
        self.assertIn("lane_requests:", info)
        self.assertNotIn("lane_requests:0\r", info)
