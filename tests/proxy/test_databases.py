"""Tests for kvtwist.proxy.databases: SELECT per client, and the cache kept per database.

Unit tests over the fakes, then kvproxy in front of a real redis-server (16 databases).
"""

from __future__ import annotations

import shutil
import socket
import tempfile

try:
    import redis
except ImportError:  # the PyPy environment may lack redis-py
    redis = None
from twisted.trial.unittest import SynchronousTestCase

from kvtwist.wire import respreply
from kvtwist.wire.replies import OK, PONG, Error
from tests.procs import start_kvproxy, start_kvstore
from tests.proxy.fakes import ProxyCase, result_of
from tests.redisref import start_redis_or_skip

OUT_OF_RANGE = Error("ERR DB index is out of range")
NOT_INTEGER = Error("ERR value is not an integer or out of range")


class SelectCase(ProxyCase):
    """A ProxyCase with helpers to switch a session's database."""

    cache_options = {"ttl": 60}

    def select(self, session, index: int) -> None:
        """SELECT ``index`` in ``session``, the backend accepting it."""
        d = session.execute([b"SELECT", b"%d" % (index,)])
        self.backend.answer(len(self.backend.sent) - 1, OK)
        self.assertEqual(result_of(d), OK)
        self.assertEqual(session.db, index)


class SelectTests(SelectCase):
    """SELECT is forwarded; the client's database changes when the backend accepts it."""

    def test_selectIsForwardedAsItIs(self) -> None:
        """SELECT goes to the backend to run wherever the connection is (no database of
        its own), and its reply is the client's."""
        d = self.session.execute([b"SELECT", b"5"])
        self.assertEqual((self.backend.sent[-1][0], self.backend.dbs[-1]),
                         ([b"SELECT", b"5"], None))
        self.backend.answer(0, OK)
        self.assertEqual((result_of(d), self.session.db), (OK, 5))

    def test_laterCommandsRunInTheSelectedDatabase(self) -> None:
        """After SELECT 5, reads, writes and forwarded commands carry database 5."""
        self.select(self.session, 5)
        self.session.execute([b"GET", b"k"])
        self.clock.advance(0)
        self.session.execute([b"SET", b"k", b"v"])
        self.session.execute([b"EXISTS", b"k"])
        self.session.execute([b"MGET", b"a", b"b"])
        self.assertEqual(self.backend.dbs[1:], [5, 5, 5, 5])

    def test_refusedSelectKeepsTheDatabase(self) -> None:
        """A SELECT the backend refuses leaves the client where it was; the error is its."""
        self.select(self.session, 2)
        for argv, error in (([b"SELECT", b"16"], OUT_OF_RANGE),
                            ([b"SELECT", b"x"], NOT_INTEGER)):
            d = self.session.execute(argv)
            self.backend.answer(len(self.backend.sent) - 1, error)
            self.assertEqual((result_of(d), self.session.db), (error, 2))

    def test_unreachableBackendKeepsTheDatabase(self) -> None:
        """A SELECT the backend did not answer leaves the database unchanged."""
        d = self.session.execute([b"SELECT", b"3"])
        self.backend.fail(0, ConnectionError("gone"))
        self.assertIn("backend", result_of(d).message)
        self.assertEqual(self.session.db, 0)

    def test_commandsAfterASelectWaitForItsReply(self) -> None:
        """Requests pipelined after a SELECT are held until it is answered, then run in the
        database it left the client in, in order (a second SELECT holds the rest again)."""
        self.cache.put(b"k", b"zero")
        first = self.session.execute([b"SELECT", b"3"])
        get = self.session.execute([b"GET", b"k"])
        ping = self.session.execute([b"PING"])
        second = self.session.execute([b"SELECT", b"99"])
        set_ = self.session.execute([b"SET", b"k", b"v"])
        self.assertEqual(len(self.backend.sent), 1)
        self.assertNoResult(get)
        self.assertNoResult(ping)
        self.backend.answer(0, OK)
        self.assertEqual((result_of(first), result_of(ping)), (OK, PONG))
        self.assertNoResult(get)  # a miss in database 3: the zero's value is not its
        self.assertEqual(self.backend.sent[-1][0], [b"SELECT", b"99"])
        self.assertNoResult(set_)
        self.backend.answer(len(self.backend.sent) - 1, OUT_OF_RANGE)
        self.assertEqual(result_of(second), OUT_OF_RANGE)
        # The held GET (a miss in database 3) is batched; the SET sends the batch first.
        self.assertEqual([(argv, db) for (argv, _), db in zip(self.backend.sent[-2:],
                                                              self.backend.dbs[-2:])],
                         [([b"GET", b"k"], 3), ([b"SET", b"k", b"v"], 3)])

    def test_sessionsHaveTheirOwnDatabases(self) -> None:
        """One client's SELECT does not move another."""
        other = self.proxy.new_session("other")
        self.select(self.session, 4)
        self.assertEqual(other.db, 0)


class CacheByDatabaseTests(SelectCase):
    """What one database's clients read and write never answers another's."""

    def setUp(self) -> None:
        SelectCase.setUp(self)
        self.three = self.proxy.new_session("three")
        self.select(self.three, 3)

    def test_readsAreCachedPerDatabase(self) -> None:
        """A value cached for database 0 is a miss for a client in database 3, which
        fetches it from database 3 and caches it there."""
        self.cache.put(b"k", b"zero")
        self.assertEqual(self.session.execute([b"GET", b"k"]), b"zero")
        d = self.three.execute([b"GET", b"k"])
        self.clock.advance(0)
        self.assertEqual((self.backend.sent[-1][0], self.backend.dbs[-1]), ([b"GET", b"k"], 3))
        self.backend.answer(len(self.backend.sent) - 1, b"three")
        self.assertEqual(result_of(d), b"three")
        self.assertEqual(self.three.execute([b"GET", b"k"]), b"three")
        self.assertEqual(self.session.execute([b"GET", b"k"]), b"zero")
        self.assertEqual(self.three.execute([b"MGET", b"k"]), [b"three"])

    def test_aTurnsMissesAreFetchedPerDatabase(self) -> None:
        """The misses of one turn go, from a strings-only backend, as one MGET per
        database, each in its database."""
        self.backend.strings_only = True
        results = [self.session.execute([b"GET", b"a"]), self.three.execute([b"GET", b"a"]),
                   self.session.execute([b"GET", b"b"]), self.three.execute([b"GET", b"c"])]
        self.clock.advance(0)
        sent = sorted((db, argv) for (argv, _), db in zip(self.backend.sent[1:],
                                                          self.backend.dbs[1:]))
        self.assertEqual(sent, [(0, [b"MGET", b"a", b"b"]), (3, [b"MGET", b"a", b"c"])])
        for index, (argv, _) in enumerate(self.backend.sent[1:], 1):
            self.backend.answer(index, [argv[1] + b"@%d" % self.backend.dbs[index],
                                        argv[2] + b"@%d" % self.backend.dbs[index]])
        self.assertEqual([result_of(d) for d in results], [b"a@0", b"a@3", b"b@0", b"c@3"])

    def test_aTurnsMissesAreGetsInTheirDatabases(self) -> None:
        """The misses of one turn go as one GET each, each in its database."""
        results = [self.session.execute([b"GET", b"a"]), self.three.execute([b"GET", b"a"]),
                   self.session.execute([b"GET", b"b"]), self.three.execute([b"GET", b"c"])]
        self.clock.advance(0)
        sent = sorted((db, argv) for (argv, _), db in zip(self.backend.sent[1:],
                                                          self.backend.dbs[1:]))
        self.assertEqual(sent, [(0, [b"GET", b"a"]), (0, [b"GET", b"b"]),
                                (3, [b"GET", b"a"]), (3, [b"GET", b"c"])])
        for index, (argv, _) in enumerate(self.backend.sent[1:], 1):
            self.backend.answer(index, argv[1] + b"@%d" % self.backend.dbs[index])
        self.assertEqual([result_of(d) for d in results], [b"a@0", b"a@3", b"b@0", b"c@3"])

    def test_writesInvalidateTheirDatabaseOnly(self) -> None:
        """A SET in database 3 drops the key of database 3 and keeps database 0's."""
        self.cache.put(b"k", b"zero")
        self.cache.put(b"k", b"three", 3)
        d = self.three.execute([b"SET", b"k", b"new"])
        self.assertEqual(self.backend.dbs[-1], 3)
        self.assertEqual((self.cache.get(b"k"), self.cache.get(b"k", 3) is not None),
                         (b"zero", True))
        self.assertNotIn((3, b"k"), self.cache)
        self.backend.answer(len(self.backend.sent) - 1, OK)
        self.assertEqual(result_of(d), OK)
        self.assertEqual(self.session.execute([b"GET", b"k"]), b"zero")

    def test_moveAndCopyInvalidateTheTarget(self) -> None:
        """MOVE k 3 from database 0 drops k in 0 and in 3; COPY ... DB 5 drops the copy's
        key in database 5."""
        for db in (0, 3, 5):
            self.cache.put(b"k", b"v", db)
            self.cache.put(b"d", b"v", db)
        self.session.execute([b"MOVE", b"k", b"3"])
        self.assertEqual([(db, b"k") in self.cache or (db == 0 and b"k" in self.cache)
                          for db in (0, 3, 5)], [False, False, True])
        self.three.execute([b"COPY", b"k", b"d", b"DB", b"5"])
        self.assertNotIn((5, b"d"), self.cache)
        self.assertIn((3, b"d"), self.cache)
        self.assertIn(b"d", self.cache)

    def test_flushdbSwapdbFlushall(self) -> None:
        """With --allow-admin, FLUSHDB drops its database's cache, SWAPDB both databases',
        FLUSHALL everything."""
        self.proxy.allow_admin = True
        for db in (0, 3, 5, 7):
            self.cache.put(b"k", b"v", db)
        self.three.execute([b"FLUSHDB"])
        self.assertEqual(self.cache.counts(), {0: 1, 5: 1, 7: 1})
        self.session.execute([b"SWAPDB", b"5", b"3"])
        self.assertEqual(self.cache.counts(), {0: 1, 7: 1})
        self.session.execute([b"FLUSHALL"])
        self.assertEqual(self.cache.counts(), {})

    def test_fencesArePerDatabase(self) -> None:
        """A write to k in database 3 fences database 3's MGET of k, not database 0's."""
        self.session.execute([b"MGET", b"k", b"x"])
        self.three.execute([b"MGET", b"k", b"y"])
        sent = len(self.backend.sent)
        self.three.execute([b"SET", b"k", b"v"])
        self.assertEqual([(argv, db) for (argv, _), db in zip(self.backend.sent[sent:],
                                                              self.backend.dbs[sent:])],
                         [([b"GET", b"k"], 3), ([b"SET", b"k", b"v"], 3)])

    def test_infoCountsEntriesPerDatabase(self) -> None:
        """INFO's cache section has a line per database holding entries."""
        self.cache.put(b"a", b"1")
        self.cache.put(b"a", b"1", 3)
        self.cache.put(b"b", b"1", 3)
        text = self.session.execute([b"INFO", b"proxy"]).decode()
        self.assertIn("\r\ncache_db0:entries=1\r\ncache_db3:entries=2\r\n", text)


def command(sock, *argv: bytes):
    """Send one command on a raw socket and return its reply."""
    sock.sendall(respreply.encode_command(list(argv)))
    parser = respreply.ReplyParser()
    while True:
        reply = parser.next_reply()
        if reply is not respreply.NEED_MORE:
            return reply
        data = sock.recv(65536)
        if not data:
            raise AssertionError("connection closed")
        parser.feed(data)


class RedisBackendCase(SynchronousTestCase):
    """kvproxy (caching on, invalidations on) in front of a real redis-server."""

    proxy_args: tuple = ()

    def start_backend(self):
        """Start the backend server (``.port``, ``.stop()``)."""
        return start_redis_or_skip()

    def setUp(self) -> None:
        self.server = self.start_backend()
        self.addCleanup(self.server.stop)
        self.proxy = start_kvproxy(self.server.port, "--timeout", "10", *self.proxy_args)
        self.addCleanup(self.proxy.stop)
        self.proxy.wait_for_line("invalidation tracking on")

    def connect(self, port=None):
        sock = socket.create_connection(("127.0.0.1", port or self.proxy.port), timeout=10)
        self.addCleanup(sock.close)
        return sock


class KVStoreBackend:
    """Runs a RedisBackendCase against kvstore instead; skipped until kvstore has databases
    (until ``SELECT 15`` succeeds on it)."""

    def start_backend(self):
        data = tempfile.mkdtemp(prefix="kvproxydb-")
        self.addCleanup(shutil.rmtree, data, True)
        server = start_kvstore(data)
        sock = socket.create_connection(("127.0.0.1", server.port), timeout=10)
        try:
            reply = command(sock, b"SELECT", b"15")
        finally:
            sock.close()
        if reply != OK:
            server.stop()
            self.skipTest("kvstore has no databases yet: %r" % (reply,))
        return server


class RedisBackendTests(RedisBackendCase):
    """Databases through kvproxy behave as they do on redis-server itself."""

    def test_twoClientsSameKeyDifferentDatabases(self) -> None:
        """Clients in databases 0 and 3 write and read the same key name through the
        caching proxy and never see each other's value."""
        zero, three = self.connect(), self.connect()
        self.assertEqual(command(three, b"SELECT", b"3"), OK)
        for round_ in range(3):
            mine, theirs = b"zero%d" % round_, b"three%d" % round_
            self.assertEqual(command(zero, b"SET", b"shared", mine), OK)
            self.assertEqual(command(zero, b"GET", b"shared"), mine)
            self.assertEqual(command(three, b"GET", b"shared"), None if round_ == 0
                             else b"three%d" % (round_ - 1))
            self.assertEqual(command(three, b"SET", b"shared", theirs), OK)
            for _ in range(2):  # the second read is a cache hit
                self.assertEqual(command(three, b"GET", b"shared"), theirs)
                self.assertEqual(command(zero, b"GET", b"shared"), mine)
                self.assertEqual(command(three, b"MGET", b"shared"), [theirs])
        direct = self.connect(self.server.port)
        self.assertEqual(command(direct, b"GET", b"shared"), b"zero2")
        command(direct, b"SELECT", b"3")
        self.assertEqual(command(direct, b"GET", b"shared"), b"three2")

    def test_selectErrorsAreRedis(self) -> None:
        """SELECT's errors through kvproxy are redis-server's, and leave the database."""
        proxied, direct = self.connect(), self.connect(self.server.port)
        command(proxied, b"SET", b"k", b"zero")
        for argv in ([b"SELECT", b"16"], [b"SELECT", b"-1"], [b"SELECT", b"x"],
                     [b"SELECT", b"03"], [b"SELECT"], [b"SELECT", b"1", b"2"]):
            reply = command(proxied, *argv)
            self.assertIsInstance(reply, Error)
            self.assertEqual(reply, command(direct, *argv))
            self.assertEqual(command(proxied, b"GET", b"k"), b"zero")

    def test_directWritesInvalidateEveryDatabase(self) -> None:
        """A write straight to redis-server in database 3 reaches the proxy's cache of
        database 3 (the invalidation names the key; every database's copy is dropped)."""
        proxied, direct = self.connect(), self.connect(self.server.port)
        command(proxied, b"SELECT", b"3")
        command(direct, b"SELECT", b"3")
        command(direct, b"SET", b"k", b"old")
        self.assertEqual(command(proxied, b"GET", b"k"), b"old")
        self.assertEqual(command(proxied, b"GET", b"k"), b"old")
        command(direct, b"SET", b"k", b"new")
        for _ in range(200):  # the invalidation arrives asynchronously
            if command(proxied, b"GET", b"k") == b"new":
                break
            command(self.connect(), b"PING")
        self.assertEqual(command(proxied, b"GET", b"k"), b"new")

    def test_moveAndCopyBetweenDatabases(self) -> None:
        """MOVE and COPY ... DB through kvproxy: the cached target is dropped."""
        zero, five = self.connect(), self.connect()
        command(five, b"SELECT", b"5")
        self.assertEqual(command(five, b"GET", b"k"), None)  # a cached miss in 5
        self.assertEqual(command(five, b"GET", b"c"), None)
        command(zero, b"SET", b"k", b"moved")
        self.assertEqual(command(zero, b"MOVE", b"k", b"5"), 1)
        self.assertEqual(command(zero, b"GET", b"k"), None)
        self.assertEqual(command(five, b"GET", b"k"), b"moved")
        self.assertEqual(command(five, b"COPY", b"k", b"c", b"DB", b"0"), 1)
        self.assertEqual(command(zero, b"GET", b"c"), b"moved")
        self.assertEqual(command(five, b"GET", b"c"), None)
        self.assertEqual(command(zero, b"MOVE", b"c", b"16"), OUT_OF_RANGE)

    def test_redisPyWithADatabase(self) -> None:
        """redis-py with db=5 through kvproxy reads and writes database 5."""
        if redis is None:
            self.skipTest("redis-py is not installed")
        five = redis.Redis(host="127.0.0.1", port=self.proxy.port, db=5)
        zero = redis.Redis(host="127.0.0.1", port=self.proxy.port)
        self.addCleanup(five.close)
        self.addCleanup(zero.close)
        five.set("k", "five")
        zero.set("k", "zero")
        self.assertEqual((five.get("k"), five.get("k"), zero.get("k")),
                         (b"five", b"five", b"zero"))
        self.assertEqual(five.mget(["k", "nothing"]), [b"five", None])
        direct = redis.Redis(host="127.0.0.1", port=self.server.port, db=5)
        self.addCleanup(direct.close)
        self.assertEqual(direct.get("k"), b"five")
        self.assertEqual(five.dbsize(), 1)


class RedisAdminTests(RedisBackendCase):
    """FLUSHDB, SWAPDB and FLUSHALL through kvproxy --allow-admin."""

    proxy_args = ("--allow-admin",)

    def test_flushdbSwapdbFlushall(self) -> None:
        """FLUSHDB empties its database only; SWAPDB swaps what clients read (cached values
        included); FLUSHALL empties all."""
        zero, two = self.connect(), self.connect()
        command(two, b"SELECT", b"2")
        command(zero, b"SET", b"k", b"zero")
        command(two, b"SET", b"k", b"two")
        self.assertEqual((command(zero, b"GET", b"k"), command(two, b"GET", b"k")),
                         (b"zero", b"two"))
        self.assertEqual(command(zero, b"SWAPDB", b"0", b"2"), OK)
        self.assertEqual((command(zero, b"GET", b"k"), command(two, b"GET", b"k")),
                         (b"two", b"zero"))
        self.assertEqual(command(two, b"FLUSHDB"), OK)
        self.assertEqual((command(zero, b"GET", b"k"), command(two, b"GET", b"k")),
                         (b"two", None))
        self.assertEqual(command(two, b"FLUSHALL"), OK)
        self.assertEqual(command(zero, b"GET", b"k"), None)


class HeldTests(SynchronousTestCase):
    """Requests pipelined behind a SELECT in one write reach the right database."""

    def test_pipelinedSelect(self) -> None:
        """SET, SELECT 7, SET, GET, SELECT 0, GET in one write: each runs where it should."""
        server = start_redis_or_skip()
        self.addCleanup(server.stop)
        proxy = start_kvproxy(server.port, "--timeout", "10")
        self.addCleanup(proxy.stop)
        sock = socket.create_connection(("127.0.0.1", proxy.port), timeout=10)
        self.addCleanup(sock.close)
        pipeline = [[b"SET", b"p", b"zero"], [b"SELECT", b"7"], [b"SET", b"p", b"seven"],
                    [b"GET", b"p"], [b"SELECT", b"99"], [b"GET", b"p"], [b"SELECT", b"0"],
                    [b"GET", b"p"]]
        sock.sendall(b"".join(respreply.encode_command(argv) for argv in pipeline))
        parser = respreply.ReplyParser()
        replies = []
        while len(replies) < len(pipeline):
            data = sock.recv(65536)
            self.assertTrue(data)
            parser.feed(data)
            reply = parser.next_reply()
            while reply is not respreply.NEED_MORE:
                replies.append(reply)
                reply = parser.next_reply()
        self.assertEqual(replies, [OK, OK, OK, b"seven", OUT_OF_RANGE, b"seven", OK, b"zero"])


class KVStoreBackendTests(KVStoreBackend, RedisBackendTests):
    """The same, in front of kvstore (once it has databases)."""


class KVStoreAdminTests(KVStoreBackend, RedisAdminTests):
    """The same, in front of kvstore (once it has databases)."""
