"""Tests for kvtwist.proxy.watching: WATCH on a backend connection of the client's own,
through a real kvproxy in front of one kvstore and in front of a pool of three."""

from __future__ import annotations

import os
import tempfile

try:
    import redis
except ImportError:  # the PyPy environment may lack redis-py
    redis = None
from unittest import SkipTest

from twisted.trial.unittest import SynchronousTestCase

from tests.procs import TwistdProcess, start_kvproxy, start_kvstore


class WatchTests(SynchronousTestCase):
    """redis-py's optimistic transactions (WATCH, reads, MULTI ... EXEC) through kvproxy."""

    def setUp(self) -> None:
        if redis is None:
            raise SkipTest("redis-py is not installed")
        self.stores = []
        for _ in range(3):
            store = start_kvstore(tempfile.mkdtemp(prefix="kvtwist-watch-"))
            self.addCleanup(store.stop)
            self.stores.append(store)

    def client(self, port: int):
        client = redis.Redis(port=port)
        self.addCleanup(client.close)
        return client

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
        proxy = start_kvproxy(self.stores[0].port)
        self.addCleanup(proxy.stop)
        self.check_watch(proxy.port, b"")

    def test_pool(self) -> None:
        """In front of three kvstores, the keys sharing a hash tag; WATCH of keys on two
        servers is refused naming them."""
        path = os.path.join(tempfile.mkdtemp(prefix="kvtwist-watch-"), "pool.yml")
        with open(path, "w") as handle:
            handle.write("\n".join(["pool:", "  redis: true", "  hash: md5",
                                    "  hash_tag: \"{}\"",
                                    "  servers:"] + ["   - 127.0.0.1:%d:1" % store.port
                                                     for store in self.stores]) + "\n")
        proxy = TwistdProcess("kvproxy", ["--pool", path, "--listen",
                                          "tcp:0:interface=127.0.0.1"])
        self.addCleanup(proxy.stop)
        port = proxy.wait_for_ports(1)[0]
        self.check_watch(port, b"{user7}")
        client = self.client(port)
        with self.assertRaises(redis.ResponseError) as caught:
            client.execute_command("WATCH", *[b"key:%d" % i for i in range(30)])
        self.assertIn("CROSSSLOT", str(caught.exception))
