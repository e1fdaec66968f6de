"""Tests for kvtwist.proxy.tap's pool options: --backend repeated, --pool, --serve-stale
(test_tap.py holds the rest of tap's tests)."""

from __future__ import annotations

import os
import tempfile

from twisted.internet.testing import MemoryReactorClock
from twisted.python import usage
from twisted.trial.unittest import SynchronousTestCase

from kvtwist.proxy import tap as proxytap
from kvtwist.proxy.router import ShardedStore
from kvtwist.proxy.store import ProxyStore

POOL = """alpha:
  listen: 127.0.0.1:22121
  hash: murmur
  distribution: modula
  hash_tag: "{}"
  timeout: 400
  redis: true
  redis_auth: sekret
  auto_eject_hosts: true
  servers:
   - 127.0.0.1:6379:1
   - 127.0.0.1:6380:2 beta
"""


class PoolOptionsTests(SynchronousTestCase):
    """Options that make kvproxy front a pool of servers."""

    def parse(self, *argv) -> proxytap.Options:
        options = proxytap.Options()
        options.parseOptions(list(argv))
        return options

    def pool_file(self, text: str = POOL) -> str:
        handle, path = tempfile.mkstemp(suffix=".yml")
        os.write(handle, text.encode())
        os.close(handle)
        self.addCleanup(os.remove, path)
        return path

    def test_backend_repeated(self) -> None:
        """--backend repeats; endpoint strings and host:port[:weight] [name] both go."""
        options = self.parse("--backend", "tcp:127.0.0.1:1", "-b", "127.0.0.1:2:3 c")
        self.assertEqual(options["backends"], ["tcp:127.0.0.1:1", "127.0.0.1:2:3 c"])
        self.assertEqual(options["backend"], "tcp:127.0.0.1:1")
        self.assertRaises(usage.UsageError, self.parse, "--backend", "127.0.0.1:x")

    def test_pool_file(self) -> None:
        """--pool reads nutcracker's YAML: its listen (with backlog), timeout and
        redis_auth become kvproxy's."""
        options = self.parse("--pool", self.pool_file())
        self.assertEqual(options["listen"], ["tcp:22121:interface=127.0.0.1:backlog=512"])
        self.assertEqual(options["timeout"], 0.4)
        self.assertEqual(options["backend-password"], "sekret")
        self.assertEqual(options["pool"].name, "alpha")
        options = self.parse("--pool", self.pool_file(), "--listen", "tcp:0")
        self.assertEqual(options["listen"], ["tcp:0"])

    def test_pool_errors(self) -> None:
        """A bad pool file, or --pool with --backend, is a usage error naming the problem."""
        self.assertRaises(usage.UsageError, self.parse, "--pool", self.pool_file("x: 1\n"))
        self.assertRaises(usage.UsageError, self.parse, "--pool", "/nonexistent.yml")
        self.assertRaises(usage.UsageError, self.parse, "--pool", self.pool_file(),
                          "--backend", "127.0.0.1:1")
        self.assertRaises(usage.UsageError, self.parse, "--serve-stale", "-1")

    def test_make_service(self) -> None:
        """One backend serves as before (a ProxyStore); several, a pool, --serve-stale or
        --stats make a ShardedStore with a backend (and an invalidation link) per server."""
        reactor = MemoryReactorClock()
        top = proxytap.makeService(self.parse("--listen", "tcp:0", "-b", "127.0.0.1:1"),
                                   reactor)
        self.assertIs(type(top.store), ProxyStore)
        top = proxytap.makeService(self.parse("--listen", "tcp:0", "-b", "127.0.0.1:1",
                                              "-b", "127.0.0.1:2"), reactor)
        self.assertIsInstance(top.store, ShardedStore)
        self.assertEqual(len(top.store.shards), 2)
        self.assertEqual(len(list(top)), 5)  # 2 x (backend, listener) + the port
        top = proxytap.makeService(self.parse("--pool", self.pool_file(), "--no-tracking",
                                              "--listen", "tcp:0"), reactor)
        self.assertEqual([shard.label for shard in top.store.shards],
                         ["127.0.0.1:6379", "beta"])
        self.assertEqual(top.store.shards[1].backend.login, [b"AUTH", b"sekret"])
        top = proxytap.makeService(self.parse("--listen", "tcp:0", "-b", "127.0.0.1:1",
                                              "--serve-stale", "5"), reactor)
        self.assertEqual(top.store.shards[0].serve_stale, 5.0)
        top = proxytap.makeService(self.parse("--listen", "tcp:0", "-b", "127.0.0.1:1",
                                              "--stats", "tcp:0"), reactor)
        self.assertIsInstance(top.store, ShardedStore)
        self.assertEqual(len(list(top)), 4)  # backend, listener, port, stats port
