"""The harness of the redis-py tests through a real kvproxy (test_transactions.py's pipelines,
test_watching.py): three kvstores for each test, and a kvproxy in front of the first of them
or of a pool of all three."""

from __future__ import annotations

import os
import tempfile

try:
    import redis
except ImportError:  # the PyPy environment may lack redis-py
    redis = None
from unittest import SkipTest

from twisted.trial.unittest import SynchronousTestCase

from tests.procs import start_kvproxy, start_kvproxy_pool, start_kvstore


class RealProxyCase(SynchronousTestCase):
    """Starts three kvstores for each test, their data directories named ``prefix``...; skips
    the test when redis-py is not installed. Whatever it starts stops at cleanup."""

    prefix = "kvtwist-"

    def setUp(self) -> None:
        if redis is None:
            raise SkipTest("redis-py is not installed")
        self.stores = []
        for _ in range(3):
            store = start_kvstore(tempfile.mkdtemp(prefix=self.prefix))
            self.addCleanup(store.stop)
            self.stores.append(store)

    def client(self, port: int):
        """Return a redis-py client of ``port``."""
        client = redis.Redis(port=port)
        self.addCleanup(client.close)
        return client

    def proxy_of_one(self) -> int:
        """Start a kvproxy in front of the first kvstore; return its port."""
        proxy = start_kvproxy(self.stores[0].port)
        self.addCleanup(proxy.stop)
        return proxy.port

    def proxy_of_pool(self) -> int:
        """Start a kvproxy in front of a pool of the three kvstores (md5, hash tag "{}");
        return its port."""
        path = os.path.join(tempfile.mkdtemp(prefix=self.prefix), "pool.yml")
        with open(path, "w") as handle:
            handle.write("\n".join(["pool:", "  redis: true", "  hash: md5",
                                    "  hash_tag: \"{}\"",
                                    "  servers:"] + ["   - 127.0.0.1:%d:1" % store.port
                                                     for store in self.stores]) + "\n")
        proxy = start_kvproxy_pool(path)
        self.addCleanup(proxy.stop)
        return proxy.port
