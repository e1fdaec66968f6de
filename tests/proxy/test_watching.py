"""Tests for kvtwist.proxy.watching: WATCH on a backend connection of the client's own,
through a real kvproxy in front of one kvstore and in front of a pool of three."""

from __future__ import annotations

from tests.proxy.realproxy import RealProxyCase, redis


class WatchTests(RealProxyCase):
    """redis-py's optimistic transactions (WATCH, reads, MULTI ... EXEC) through kvproxy."""

    prefix = "kvtwist-watch-"

    def check_watch(self, port: int, tag: bytes) -> None:
        client, other = self.client(port), self.client(port)
        key, second = tag + b"counter", tag + b"other"
        client.set(key, b"1")
        with client.pipeline() as pipe:  # no conflict: it commits
            pipe.watch(key)
            value = int(pipe.get(key))
            pipe.multi()
            pipe.set(key, value + 1).set(second, b"x")
            self.assertEqual(pipe.execute(), [True, True])
        self.assertEqual(client.get(key), b"2")
        with client.pipeline() as pipe:  # another client writes the key: EXEC fails
            pipe.watch(key)
            pipe.get(key)
            other.set(key, b"10")
            pipe.multi()
            pipe.set(key, b"3")
            self.assertRaises(redis.WatchError, pipe.execute)
        self.assertEqual(client.get(key), b"10")
        with client.pipeline() as pipe:  # UNWATCH (reset) then a plain transaction
            pipe.watch(key)
            pipe.unwatch()
            other.set(key, b"11")
            pipe.multi()
            pipe.incr(key)
            self.assertEqual(pipe.execute(), [12])

    def test_one_backend(self) -> None:
        """In front of one kvstore."""
        self.check_watch(self.proxy_of_one(), b"")

    def test_pool(self) -> None:
        """In front of three kvstores, the keys sharing a hash tag; WATCH of keys on two
        servers is refused naming them."""
        port = self.proxy_of_pool()
        self.check_watch(port, b"{user7}")
        client = self.client(port)
        with self.assertRaises(redis.ResponseError) as caught:
            client.execute_command("WATCH", *[b"key:%d" % i for i in range(30)])
        self.assertIn("CROSSSLOT", str(caught.exception))
