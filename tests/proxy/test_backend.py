"""Tests for kvtwist.proxy.backend: the backend link, its requests and its replacement."""

from __future__ import annotations

from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.trial.unittest import SynchronousTestCase

from kvtwist.client import ClientDisconnected, RespClientProtocol
from kvtwist.proxy.backend import MAX_REPLY_DEPTH, Backend, databases
from kvtwist.proxy.cache import Cache
from kvtwist.proxy.store import BackendUnavailable, ProxyStore
from kvtwist.serve.factory import KVFactory
from kvtwist.wire.replies import OK, Error
from tests.proxy.fakes import FakeEndpoint, FakeListener, result_of


class BackendCase(SynchronousTestCase):
    """A started Backend on a Clock and a FakeEndpoint; stopped after the test."""

    timeout = 5.0

    def setUp(self) -> None:
        self.clock = Clock()
        self.endpoint = FakeEndpoint()
        self.backend = Backend(self.clock, self.endpoint, "fake", timeout=self.timeout)
        self.backend.startService()
        self.addCleanup(self.backend.stopService)
        self.clock.advance(0)
        self.assertEqual(self.backend.state, "connected")

    def reply(self, data: bytes, index: int = -1) -> None:
        """Feed ``data`` to connection ``index`` as the server's replies."""
        self.clock.advance(0)  # the end of the turn: requests are written
        self.endpoint.connections[index][0].dataReceived(data)


class IdleTests(BackendCase):
    def test_idle(self) -> None:
        """The link is idle when no request awaits its reply, busy while one does."""
        self.assertTrue(self.backend.idle)
        d = self.backend.request([b"GET", b"k"])
        self.assertFalse(self.backend.idle)
        self.reply(b"$1\r\nv\r\n")
        self.assertEqual(self.successResultOf(d), b"v")
        self.assertTrue(self.backend.idle)


class ReplacementTests(BackendCase):
    """A dropped connection is replaced, and requests made meanwhile wait for it."""

    def test_requestWhileClosingWaitsForReplacement(self) -> None:
        """A request made after the link was dropped (not yet closed) goes on the next one."""
        self.reply(b"+unrequested\r\n")  # out of step: the client aborts its connection
        self.assertTrue(self.endpoint.connections[0][1].aborted)
        d = self.backend.request([b"GET", b"k"])
        self.assertNoResult(d)
        self.endpoint.close(0)
        self.clock.advance(0.1)
        self.assertEqual(len(self.endpoint.connections), 2)
        self.assertEqual(self.endpoint.written(1), [[b"GET", b"k"]])
        self.reply(b"$1\r\nv\r\n", 1)
        self.assertEqual(self.successResultOf(d), b"v")

    def test_waitingRequestsKeepTheirOrder(self) -> None:
        """Requests waiting for the replacement are sent in the order they were made."""
        self.reply(b"+unrequested\r\n")
        waiting = [self.backend.request([b"GET", b"%d" % i]) for i in range(3)]
        self.endpoint.close(0)
        self.clock.advance(0.1)
        self.assertEqual(self.endpoint.written(1), [[b"GET", b"0"], [b"GET", b"1"], [b"GET", b"2"]])
        self.reply(b"$1\r\na\r\n$1\r\nb\r\n$1\r\nc\r\n", 1)
        self.assertEqual([self.successResultOf(d) for d in waiting], [b"a", b"b", b"c"])

    def test_waitIsBoundedByTheTimeout(self) -> None:
        """A request waiting for a connection that does not come fails after the timeout."""
        self.endpoint.refuse = True
        self.reply(b"+unrequested\r\n")
        d = self.backend.request([b"GET", b"k"])
        self.endpoint.close(0)
        self.clock.advance(self.timeout)
        self.failureResultOf(d, BackendUnavailable)

    def test_failedAttemptFailsTheWaiting(self) -> None:
        """When the reconnection attempt fails, the waiting requests fail as unavailable."""
        self.endpoint.refuse = True
        self.reply(b"+unrequested\r\n")
        d = self.backend.request([b"GET", b"k"])
        self.endpoint.close(0)
        self.clock.advance(0.1)
        self.failureResultOf(d, BackendUnavailable)
        self.assertEqual(self.backend.state, "down")

    def test_lostRequestsFail(self) -> None:
        """Requests on a connection that closes fail; they are not sent again."""
        d = self.backend.request([b"SET", b"k", b"v"])
        self.clock.advance(0)
        self.endpoint.close(0)
        self.failureResultOf(d, ClientDisconnected)
        self.clock.advance(0.1)
        self.assertEqual(self.endpoint.written(1), [])


class DeepReplyTests(SynchronousTestCase):
    """A reply nested deeper than the front end can render is relayed as an error."""

    def setUp(self) -> None:
        self.clock = Clock()
        self.endpoint = FakeEndpoint()
        self.backend = Backend(self.clock, self.endpoint, "fake", timeout=5)
        self.backend.startService()
        self.addCleanup(self.backend.stopService)
        self.clock.advance(0)
        self.cache = Cache(self.clock, ttl=60)
        self.addCleanup(self.cache.stop)
        proxy = ProxyStore(self.clock, self.cache, self.backend, FakeListener())
        self.front = KVFactory(proxy).buildProtocol(None)
        self.transport = StringTransport()
        self.front.makeConnection(self.transport)

    def test_deepReplyDoesNotWedgeTheClient(self) -> None:
        """A reply 500 arrays deep: the client gets an error for it (no RecursionError), and
        its next request is answered."""
        self.front.dataReceived(b"*4\r\n$6\r\nLRANGE\r\n$1\r\nl\r\n$1\r\n0\r\n$2\r\n-1\r\n"
                                b"*2\r\n$4\r\nECHO\r\n$2\r\nhi\r\n")
        self.clock.advance(0)
        server = self.endpoint.connections[0][0]
        server.dataReceived(b"*1\r\n" * 500 + b":1\r\n" + b"$2\r\nhi\r\n")
        self.assertEqual(self.transport.value(),
                         b"-ERR backend reply nested deeper than %d arrays\r\n$2\r\nhi\r\n"
                         % (MAX_REPLY_DEPTH,))

    def test_deepButRenderableReplyIsRelayed(self) -> None:
        """A reply as deep as the limit is relayed as it is."""
        self.front.dataReceived(b"*2\r\n$4\r\nEVAL\r\n$1\r\nx\r\n")
        self.clock.advance(0)
        wire = b"*1\r\n" * MAX_REPLY_DEPTH + b":1\r\n"
        self.endpoint.connections[0][0].dataReceived(wire)
        self.assertEqual(self.transport.value(), wire)


class TimeoutTests(SynchronousTestCase):
    """A request that times out fails alone; its connection is replaced, and what was
    queued behind it is retried (the proxy's own reads) or failed with a clear error."""

    def setUp(self) -> None:
        self.clock = Clock()
        self.ends = []  # the turn's end is the test's to call (as KVEPollReactor's)
        self.clock.callAtTurnEnd = self.ends.append
        self.endpoint = FakeEndpoint()
        self.backend = Backend(self.clock, self.endpoint, "fake", timeout=5)
        self.backend.startService()
        self.addCleanup(self.backend.stopService)
        self.clock.advance(0)
        self.cache = Cache(self.clock, ttl=60)
        self.addCleanup(self.cache.stop)
        self.proxy = ProxyStore(self.clock, self.cache, self.backend, FakeListener())

    def turn(self) -> None:
        """End the reactor turn: batched reads go out, then queued writes."""
        while self.ends:
            self.ends.pop(0)()
        self.clock.advance(0)

    def replace(self) -> None:
        """Let the reactor close the dropped connection and the backend reconnect."""
        self.assertTrue(self.endpoint.connections[0][1].aborted)
        self.endpoint.close(0)
        self.turn()
        self.clock.advance(0.1)
        self.assertEqual(len(self.endpoint.connections), 2)

    def test_readsBehindAreRetried(self) -> None:
        """The slow command fails with a timeout; a GET queued behind it is asked again on
        the new connection and answered; a write behind it fails, saying it may have run."""
        slow = self.proxy.new_session().execute([b"KEYS", b"*"])
        read = self.proxy.new_session().execute([b"GET", b"k"])
        self.turn()
        write = self.proxy.new_session().execute([b"SET", b"x", b"1"])
        self.turn()
        self.clock.advance(5)
        self.assertIn("backend timeout", result_of(slow).message)
        message = result_of(write).message
        self.assertIn("timed out", message)
        self.assertIn("may have run", message)
        self.assertNoResult(read)
        self.replace()
        self.assertEqual(self.endpoint.written(1), [[b"GET", b"k"]])
        self.endpoint.connections[1][0].dataReceived(b"$1\r\nv\r\n")
        self.assertEqual(result_of(read), b"v")
        self.turn()  # the PTTL asked before caching the value
        self.endpoint.connections[1][0].dataReceived(b":-1\r\n")
        self.assertEqual(self.cache.get(b"k"), b"v")

    def test_readOfAKeyWrittenBehindItFails(self) -> None:
        """A GET of a key that a write queued after it touches is not asked again (it could
        see that write, which may have run): it fails."""
        self.proxy.new_session().execute([b"KEYS", b"*"])
        session = self.proxy.new_session()
        read = session.execute([b"GET", b"k"])
        self.turn()
        session.execute([b"SET", b"k", b"new"])
        self.turn()
        self.clock.advance(5)
        self.assertIn("timed out", result_of(read).message)
        self.replace()
        self.assertEqual(self.endpoint.written(1), [])

    def test_readBehindATimedOutScriptIsRetried(self) -> None:
        """A GET behind a script that timed out (which may have written any key, so the
        cache and its fetches were voided) is asked again: nothing was written after it."""
        slow = self.proxy.new_session().execute([b"EVAL", b"while 1 do end", b"0"])
        read = self.proxy.new_session().execute([b"GET", b"k"])
        self.turn()
        self.clock.advance(5)
        self.assertIn("backend timeout", result_of(slow).message)
        self.replace()
        self.assertEqual(self.endpoint.written(1), [[b"GET", b"k"]])
        self.endpoint.connections[1][0].dataReceived(b"$1\r\nv\r\n")
        self.assertEqual(result_of(read), b"v")
        self.assertNotIn(b"k", self.cache)  # voided: answered, not kept

    def test_retriedOnce(self) -> None:
        """A read that finds itself behind a timed-out request a second time fails."""
        self.proxy.new_session().execute([b"KEYS", b"*"])
        read = self.proxy.new_session().execute([b"GET", b"k"])
        self.turn()
        self.clock.advance(5)
        # Made before the end of the turn that retries the read: it goes first.
        self.proxy.new_session().execute([b"KEYS", b"*"])
        self.replace()
        self.assertEqual(self.endpoint.written(1), [[b"KEYS", b"*"], [b"GET", b"k"]])
        self.clock.advance(5)
        self.assertIn("timed out", result_of(read).message)
        self.assertEqual(self.proxy.reads.retries, 1)


class SelectionTests(BackendCase):
    """A request carries its database: the link SELECTs it first when it is elsewhere."""

    def test_selectOnlyWhenTheDatabaseChanges(self) -> None:
        """Requests in database 0 go as they are; the first in database 3 follows SELECT 3,
        the next ones in 3 do not, and one back in 0 follows SELECT 0."""
        d0 = self.backend.request([b"GET", b"a"], db=0)
        d3 = self.backend.request([b"GET", b"b"], db=3)
        d3b = self.backend.request([b"SET", b"c", b"1"], db=3)
        back = self.backend.request([b"GET", b"a"], db=0)
        self.clock.advance(0)
        self.assertEqual(self.endpoint.written(), [
            [b"GET", b"a"], [b"SELECT", b"3"], [b"GET", b"b"], [b"SET", b"c", b"1"],
            [b"SELECT", b"0"], [b"GET", b"a"]])
        self.reply(b"$1\r\n0\r\n+OK\r\n$1\r\n3\r\n+OK\r\n+OK\r\n$-1\r\n")
        self.assertEqual([self.successResultOf(d) for d in (d0, d3, d3b, back)],
                         [b"0", b"3", OK, None])

    def test_aClientSelectLeavesTheDatabaseUnknown(self) -> None:
        """After a SELECT sent as it is (a client's), the next request SELECTs its own."""
        self.backend.request([b"GET", b"a"], db=2)
        self.backend.request([b"SELECT", b"5"])
        self.backend.request([b"GET", b"a"], db=2)
        self.clock.advance(0)
        self.assertEqual(self.endpoint.written(), [
            [b"SELECT", b"2"], [b"GET", b"a"], [b"SELECT", b"5"], [b"SELECT", b"2"],
            [b"GET", b"a"]])

    def test_aNewConnectionStartsInDatabaseZero(self) -> None:
        """Requests waiting for a replacement connection SELECT again on it."""
        self.backend.request([b"GET", b"a"], db=4)
        self.reply(b"+OK\r\n$-1\r\n+unrequested\r\n")
        waiting = self.backend.request([b"GET", b"b"], db=4)
        zero = self.backend.request([b"GET", b"c"], db=0)
        self.endpoint.close(0)
        self.clock.advance(0.1)
        self.clock.advance(0)
        self.assertEqual(self.endpoint.written(1), [
            [b"SELECT", b"4"], [b"GET", b"b"], [b"SELECT", b"0"], [b"GET", b"c"]])
        self.reply(b"+OK\r\n$1\r\nb\r\n+OK\r\n$1\r\nc\r\n", 1)
        self.assertEqual((self.successResultOf(waiting), self.successResultOf(zero)),
                         (b"b", b"c"))

    def test_aRefusedSelectClosesTheConnection(self) -> None:
        """A SELECT the backend refuses (it lost that database) closes the link: the
        request behind it fails, not answered from another database."""
        d = self.backend.request([b"GET", b"a"], db=9)
        self.reply(b"-ERR DB index is out of range\r\n$1\r\nv\r\n")
        self.failureResultOf(d, ClientDisconnected)
        self.assertTrue(self.endpoint.connections[0][1].aborted)

    def test_databaseBeyondTheBackendsCount(self) -> None:
        """A request for a database the backend says it lacks (CONFIG GET databases) is
        answered "ERR DB index is out of range" without being sent."""
        self.backend.databases = 4
        self.endpoint.close(0)
        self.clock.advance(0.1)
        d = self.backend.request([b"GET", b"a"], db=4)
        self.assertEqual(self.successResultOf(d), Error("ERR DB index is out of range"))
        self.clock.advance(0)
        self.assertEqual(self.endpoint.written(1), [])
        self.backend.request([b"GET", b"a"], db=3)
        self.clock.advance(0)
        self.assertEqual(self.endpoint.written(1), [[b"SELECT", b"3"], [b"GET", b"a"]])


class DatabasesTests(SynchronousTestCase):
    """``databases(client)`` learns the backend's database count from CONFIG GET."""

    def ask(self, reply):
        clock = Clock()
        client = RespClientProtocol(clock, None)
        transport = StringTransport()
        client.makeConnection(transport)
        d = databases(client)
        clock.advance(0)
        self.assertIn(b"CONFIG", transport.value())
        client.dataReceived(reply)
        return self.successResultOf(d)

    def test_redis(self) -> None:
        """redis-server's answer gives its count."""
        self.assertEqual(self.ask(b"*2\r\n$9\r\ndatabases\r\n$2\r\n16\r\n"), 16)

    def test_unknown(self) -> None:
        """An error, or an empty answer, gives None (unknown: SELECTs are not checked)."""
        self.assertIsNone(self.ask(b"-ERR unknown command\r\n"))
        self.assertIsNone(self.ask(b"*0\r\n"))
