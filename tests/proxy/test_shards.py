"""Tests for kvtwist.proxy.shards: per-server accounting, --serve-stale, and (with real
kvstores) one server of three killed: only its keys fail, and with auto-ejection none."""

from __future__ import annotations

import os
import tempfile
import select
import time

from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase

from kvtwist.client import RequestTimeout
from kvtwist.proxy.store import BackendUnavailable
from kvtwist.wire.replies import Error
from tests.procs import TwistdProcess, start_kvstore
from tests.proxy.fakes import ShardedCase, result_of
from tests.redisref import RawConnection


class AccountingTests(ShardedCase):
    """A shard counts requests' outcomes as nutcracker does."""

    def test_counters(self) -> None:
        """Server-side failures count as errors and consecutive failures; replies reset."""
        shard = self.shards[0]
        shard.in_flight = 3
        shard.answered(Failure(RequestTimeout("slow")))
        shard.answered(Failure(ValueError("not the server's")))
        self.assertEqual((shard.errors, shard.failures, shard.in_flight), (1, 1, 1))
        shard.answered(b"v")
        self.assertEqual((shard.failures, shard.in_flight), (0, 0))

    def test_error_names_the_server(self) -> None:
        """A request the server could not answer fails with an error naming it."""
        key = self.key_on(2)
        d = self.session.execute([b"SET", key, b"v"])
        self.backends[2].fail(0, BackendUnavailable("cannot connect to c:3"))
        self.assertEqual(result_of(d).message, "ERR server c:3: backend unavailable: cannot "
                                               "connect to c:3")

    def test_status(self) -> None:
        """status follows the backend's state, or says ejected."""
        shard = self.shards[0]
        self.assertEqual(shard.status, "up")
        self.backends[0].state = "down"
        self.assertEqual(shard.status, "down")
        shard.ejected = True
        self.assertEqual(shard.status, "ejected")


class ServeStaleTests(ShardedCase):
    """--serve-stale: a cached GET answers while its server is unreachable, for a while."""

    serve_stale = 10.0

    def test_stale_while_down(self) -> None:
        """Values kept when the link went down answer GETs while the server is down, until
        --serve-stale seconds have passed; INFO counts them."""
        key = self.key_on(1)
        self.cache.put(key, b"old")
        self.shards[1].keep_stale()
        self.cache.invalidate_all()
        self.backends[1].state = "down"
        self.assertEqual(self.session.execute([b"GET", key]), b"old")
        self.assertIn("stale_served:1\r\n", self.session.execute([b"INFO"]).decode())
        self.clock.advance(11)
        d = self.session.execute([b"GET", key])
        self.clock.advance(0)
        self.backends[1].answer(0, Error("ERR server b:2: backend unavailable"))
        self.assertIsInstance(result_of(d), Error)

    def test_stale_when_the_fetch_fails(self) -> None:
        """While connecting, a GET is tried on the server and a failure answers stale."""
        key = self.key_on(1)
        self.cache.put(key, b"old")
        self.shards[1].keep_stale()
        self.cache.invalidate_all()
        d = self.session.execute([b"GET", key])
        self.clock.advance(0)
        self.backends[1].fail(0, BackendUnavailable("no connection"))
        self.assertEqual(result_of(d), b"old")

    def test_only_its_own_keys(self) -> None:
        """A shard keeps aside only the values of keys it holds."""
        self.cache.put(self.key_on(0), b"x")
        self.cache.put(self.key_on(1), b"y")
        self.shards[1].keep_stale()
        self.assertEqual(list(self.shards[1].stale), [self.key_on(1)])


def wait_for(predicate, timeout: float = 15.0, what: str = "condition"):
    """Poll a real process's state until ``predicate()`` is true (at most ``timeout`` s)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = predicate()
        if result:
            return result
        select.select([], [], [], 0.05)  # as tests/redisref.py waits on a child process
    raise AssertionError("timed out waiting for %s" % (what,))


def call(port: int, *argv) -> bytes:
    conn = RawConnection(port)
    try:
        return conn.call(list(argv))
    finally:
        conn.close()


class KilledServerTests(SynchronousTestCase):
    """Three kvstores behind kvproxy; one is killed by its PID."""

    def setUp(self) -> None:
        self.stores = []
        for _ in range(3):
            data = tempfile.mkdtemp(prefix="kvtwist-shard-")
            store = start_kvstore(data)
            store.data = data
            self.stores.append(store)
            self.addCleanup(store.stop)

    def start_proxy(self, eject: bool, retry_ms: int = 30000) -> int:
        path = os.path.join(self.stores[0].data, "pool-%s.yml" % (eject,))
        with open(path, "w") as handle:
            handle.write("\n".join([
                "pool:", "  listen: 127.0.0.1:1", "  redis: true", "  hash: md5",
                "  distribution: ketama", "  timeout: 2000",
                "  auto_eject_hosts: %s" % ("true" if eject else "false"),
                "  server_failure_limit: 2", "  server_retry_timeout: %d" % (retry_ms,),
                "  servers:"] + ["   - 127.0.0.1:%d:1" % store.port
                                 for store in self.stores]) + "\n")
        proxy = TwistdProcess("kvproxy", ["--pool", path, "--listen",
                                          "tcp:0:interface=127.0.0.1"])
        self.addCleanup(proxy.stop)
        return proxy.wait_for_ports(1)[0]

    def placed(self, port: int, count: int = 120) -> dict:
        """SET k0..k<count> through kvproxy; key -> index of the kvstore holding it."""
        keys = [b"k%d" % i for i in range(count)]
        for key in keys:
            self.assertEqual(call(port, b"SET", key, b"v"), b"+OK\r\n")
        where = {}
        for index, store in enumerate(self.stores):
            for key in keys:
                if call(store.port, b"EXISTS", key) == b":1\r\n":
                    where[key] = index
        self.assertEqual(len(where), count)
        self.assertEqual(set(where.values()), {0, 1, 2})
        return where

    def test_only_the_dead_servers_keys_fail(self) -> None:
        """Without auto-ejection, the killed server's keys fail fast with an error naming
        it; every other key keeps working."""
        port = self.start_proxy(eject=False)
        where = self.placed(port)
        self.stores[1].kill()
        dead = "127.0.0.1:%d" % (self.stores[1].port,)
        wait_for(lambda: b"server1_status:up" not in call(port, b"INFO"), what="down")
        for key, index in sorted(where.items()):
            started = time.monotonic()
            reply = call(port, b"GET", key)
            if index == 1:
                self.assertTrue(reply.startswith(b"-ERR server " + dead.encode()), reply)
                self.assertLess(time.monotonic() - started, 1.0)
            else:
                self.assertEqual(reply, b"$1\r\nv\r\n")
        info = call(port, b"INFO").decode()
        self.assertIn("server1_errors:", info)
        self.assertNotIn("server1_errors:0\r\n", info)

    def test_auto_ejection_keeps_every_key_working(self) -> None:
        """With auto_eject_hosts, once the dead server is ejected every key works again
        with no client error (its keys on the other servers); after the retry timeout,
        and the server back, its keys return to it."""
        # The keys are all written and read back well within the retry timeout, on one
        # connection: once the timeout passes, the proxy tries the dead server again.
        port = self.start_proxy(eject=True, retry_ms=6000)
        where = self.placed(port)
        dead_port = self.stores[1].port
        self.stores[1].kill()
        wait_for(lambda: b"server1_status:ejected" in call(port, b"INFO"), what="ejection")
        conn = RawConnection(port)
        try:
            for key in sorted(where):
                self.assertEqual(conn.call([b"SET", key, b"w"]), b"+OK\r\n")
                self.assertEqual(conn.call([b"GET", key]), b"$1\r\nw\r\n")
        finally:
            conn.close()
        info = call(port, b"INFO").decode()
        self.assertIn("server1_ejections:1\r\n", info)
        self.assertIn("pool_live_servers:2\r\n", info)
        self.stores[1] = start_kvstore(self.stores[1].data, port=dead_port)
        self.addCleanup(self.stores[1].stop)
        key = next(key for key, index in sorted(where.items()) if index == 1)

        def back():
            call(port, b"SET", key, b"back")
            return call(dead_port, b"GET", key) == b"$4\r\nback\r\n"
        wait_for(back, timeout=30.0, what="readmission")
