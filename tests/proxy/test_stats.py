"""Tests for kvtwist.proxy.stats: the stats port's JSON document, in memory and from a real
kvproxy with --stats in front of two kvstores."""

from __future__ import annotations

import json
import socket
import tempfile

from twisted.internet.testing import StringTransport
from twisted.trial.unittest import SynchronousTestCase

from kvtwist.proxy.stats import StatsFactory, stats_document
from kvtwist.wire.replies import OK
from tests.procs import TwistdProcess, free_port, start_kvstore
from tests.proxy.fakes import ShardedCase
from tests.redisref import RawConnection


class DocumentTests(ShardedCase):
    """The document holds the pool's and each server's counters."""

    def test_document(self) -> None:
        """Requests, fragments and per-server counters appear under the pool's name."""
        self.shards[0].requests = 3
        self.shards[0].bytes_out = 40
        self.session.execute([b"MSET", self.key_on(0), b"1", self.key_on(1), b"2"])
        document = stats_document(self.proxy)
        self.assertEqual(document["service"], "kvproxy")
        self.assertEqual(document["curr_connections"], 1)
        pool = document[self.pool.name]
        self.assertEqual(pool["fragments"], 2)
        self.assertEqual(pool["a:1"], {"address": "a:1", "status": "up", "requests": 3,
                                       "errors": 0, "ejections": 0, "in_flight": 0,
                                       "request_bytes": 40, "response_bytes": 0})
        self.assertEqual(sorted(name for name in pool if ":" in name), ["a:1", "b:2", "c:3"])
        self.backends[0].answer(0, OK)
        self.backends[1].answer(0, OK)

    def test_protocol_writes_and_closes(self) -> None:
        """Each connection gets one JSON line, then is closed."""
        protocol = StatsFactory(self.proxy).buildProtocol(None)
        transport = StringTransport()
        protocol.makeConnection(transport)
        self.assertTrue(transport.disconnecting)
        document = json.loads(transport.value())
        self.assertIn(self.pool.name, document)


class StatsPortTests(SynchronousTestCase):
    """A real kvproxy with --stats."""

    def test_stats_port(self) -> None:
        """After some traffic, the stats port reports requests and bytes per server."""
        stores = []
        for _ in range(2):
            store = start_kvstore(tempfile.mkdtemp(prefix="kvtwist-stats-"))
            self.addCleanup(store.stop)
            stores.append(store)
        stats_port = free_port()
        args = ["--listen", "tcp:0:interface=127.0.0.1",
                "--stats", "tcp:%d:interface=127.0.0.1" % (stats_port,)]
        for store in stores:
            args += ["--backend", "127.0.0.1:%d" % (store.port,)]
        proxy = TwistdProcess("kvproxy", args)
        self.addCleanup(proxy.stop)
        port = proxy.wait_for_ports(2)[0]
        conn = RawConnection(port)
        for number in range(20):
            self.assertEqual(conn.call([b"SET", b"key:%d" % number, b"v"]), b"+OK\r\n")
        conn.close()
        with socket.create_connection(("127.0.0.1", stats_port), timeout=10) as sock:
            data = b""
            while True:
                chunk = sock.recv(65536)
                if not chunk:
                    break
                data += chunk
        pool = json.loads(data)["kvproxy"]
        servers = [value for value in pool.values() if isinstance(value, dict)]
        self.assertEqual(len(servers), 2)
        self.assertEqual(sum(server["requests"] for server in servers) >= 20, True)
        for server in servers:
            self.assertEqual(server["status"], "up")
            self.assertGreater(server["request_bytes"], 0)
            self.assertGreater(server["response_bytes"], 0)
