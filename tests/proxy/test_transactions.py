"""Tests for kvtwist.proxy.transactions: MULTI/EXEC queued in kvproxy and sent as one block
on the server of its keys; redis-py's default pipeline through kvproxy."""

from __future__ import annotations

from kvtwist.wire.replies import OK, Error
from tests.proxy.fakes import ProxyCase, ShardedCase, result_of
from tests.proxy.realproxy import RealProxyCase, redis


class OneBackendTests(ProxyCase):
    """A transaction in front of one backend."""

    def test_block_sent_at_exec(self) -> None:
        """MULTI and the commands are answered by kvproxy; EXEC sends them as one block and
        answers the backend's EXEC reply; the writes leave the cache."""
        self.cache.put(b"a", b"old")
        self.assertEqual(self.session.execute([b"MULTI"]), OK)
        self.assertEqual(self.session.execute([b"SET", b"a", b"1"]).text, b"QUEUED")
        self.assertEqual(self.session.execute([b"GET", b"a"]).text, b"QUEUED")
        self.assertEqual(self.backend.sent, [])
        d = self.session.execute([b"EXEC"])
        self.assertEqual([argv for argv, _ in self.backend.sent],
                         [[b"MULTI"], [b"SET", b"a", b"1"], [b"GET", b"a"], [b"EXEC"]])
        self.assertNotIn(b"a", self.cache)
        self.backend.answer(0, OK)
        self.backend.answer(1, Error("QUEUED"))
        self.backend.answer(2, Error("QUEUED"))
        self.backend.answer(3, [OK, b"1"])
        self.assertEqual(result_of(d), [OK, b"1"])

    def test_errors(self) -> None:
        """EXEC/DISCARD without MULTI, nested MULTI, WATCH inside MULTI, and a refused
        command (which aborts the transaction) answer Redis's errors."""
        self.assertEqual(self.session.execute([b"EXEC"]).message, "ERR EXEC without MULTI")
        self.assertEqual(self.session.execute([b"DISCARD"]).message,
                         "ERR DISCARD without MULTI")
        self.session.execute([b"MULTI"])
        self.assertEqual(self.session.execute([b"MULTI"]).message,
                         "ERR MULTI calls can not be nested")
        self.assertEqual(self.session.execute([b"WATCH", b"k"]).message,
                         "ERR WATCH inside MULTI is not allowed")
        self.assertIn("not supported", self.session.execute([b"SELECT", b"1"]).message)
        self.assertEqual(self.session.execute([b"EXEC"]).message,
                         "EXECABORT Transaction discarded because of previous errors.")
        self.session.execute([b"MULTI"])
        self.session.execute([b"INCR", b"k"])
        self.assertEqual(self.session.execute([b"DISCARD"]), OK)
        self.assertEqual(self.backend.sent, [])

    def test_watch_arity_and_unwatch(self) -> None:
        """WATCH without a key is an arity error; UNWATCH with nothing watched is OK."""
        self.assertEqual(self.session.execute([b"WATCH"]).message,
                         "ERR wrong number of arguments for 'watch' command")
        self.assertEqual(self.session.execute([b"UNWATCH"]), OK)


class ShardedTransactionTests(ShardedCase):
    """A transaction over a pool goes to the one server of its keys."""

    def test_one_server(self) -> None:
        """Keys sharing a hash tag: the block goes to their server."""
        self.session.execute([b"MULTI"])
        self.session.execute([b"SET", b"{u}a", b"1"])
        self.session.execute([b"INCR", b"{u}b"])
        self.session.execute([b"EXEC"])
        where = self.pool.distribution.index(b"u")
        self.assertEqual([argv[0] for argv, _ in self.backends[where].sent],
                         [b"MULTI", b"SET", b"INCR", b"EXEC"])

    def test_crossslot(self) -> None:
        """Keys on two servers: EXEC answers a CROSSSLOT error naming them, sends nothing."""
        self.session.execute([b"MULTI"])
        self.session.execute([b"SET", self.key_on(0), b"1"])
        self.session.execute([b"SET", self.key_on(1), b"1"])
        reply = self.session.execute([b"EXEC"])
        self.assertEqual(reply.message, "ERR CROSSSLOT keys of this transaction live on "
                                        "different servers (a:1, b:2): use a hash tag")
        self.assertEqual([backend.sent for backend in self.backends], [[], [], []])


class PipelineTests(RealProxyCase):
    """redis-py's default pipeline (MULTI ... EXEC) through a real kvproxy."""

    prefix = "kvtwist-tx-"

    def check_pipeline(self, port: int, tag: bytes) -> None:
        client = self.client(port)
        pipe = client.pipeline()
        pipe.set(tag + b"a", b"1").incr(tag + b"b").get(tag + b"a").mget(tag + b"a", tag + b"b")
        self.assertEqual(pipe.execute(), [True, 1, b"1", [b"1", b"1"]])
        self.assertEqual(client.get(tag + b"a"), b"1")
        with self.assertRaises(redis.ResponseError):
            client.pipeline().set(tag + b"c", b"x").incr(tag + b"c").execute()

    def test_one_backend(self) -> None:
        """Against one kvstore."""
        self.check_pipeline(self.proxy_of_one(), b"")

    def test_sharded_pool(self) -> None:
        """Against three kvstores, the transaction's keys sharing a hash tag; without one,
        EXEC fails with the CROSSSLOT error."""
        port = self.proxy_of_pool()
        self.check_pipeline(port, b"{user1}")
        client = self.client(port)
        keys = [b"key:%d" % i for i in range(30)]
        pipe = client.pipeline()
        for key in keys:
            pipe.set(key, b"1")
        with self.assertRaises(redis.ResponseError) as caught:
            pipe.execute()
        self.assertIn("CROSSSLOT", str(caught.exception))
