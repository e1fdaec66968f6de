"""Tests for kvtwist.proxy.pool: nutcracker pool files and --backend server lines."""

from __future__ import annotations

from twisted.trial.unittest import SynchronousTestCase

from kvtwist.proxy.pool import Pool, PoolError, Server, listen_endpoint, parse_pool, parse_server

FILE = """
alpha:
  listen: 127.0.0.1:22121
  hash: fnv1a_64
  hash_tag: "{}"
  distribution: ketama
  auto_eject_hosts: true
  redis: true
  timeout: 400
  server_retry_timeout: 2000
  server_failure_limit: 1
  redis_db: 2
  servers:
   - 127.0.0.1:6379:1
   - 127.0.0.1:6380:2 beta
"""


class ServerTests(SynchronousTestCase):
    """Server lines as nutcracker writes them."""

    def test_parse(self) -> None:
        """host:port:weight name gives each part; the weight defaults to 1."""
        server = parse_server("10.0.0.1:6379:3 cache-a")
        self.assertEqual((server.host, server.port, server.weight, server.name),
                         ("10.0.0.1", 6379, 3, "cache-a"))
        self.assertEqual(parse_server("h:1").weight, 1)

    def test_default_name(self) -> None:
        """An unnamed server is named host:port, or host alone on port 11211 (as nutcracker)."""
        self.assertEqual(parse_server("h:6379:1").name, "h:6379")
        self.assertEqual(parse_server("h:11211:1").name, "h")

    def test_bad_lines(self) -> None:
        """Lines without a port, with a zero weight or a port out of range are refused."""
        for line in ("host", "h:0:1", "h:70000", "h:1:0", "h:x:1"):
            self.assertRaises(PoolError, parse_server, line)

    def test_endpoint(self) -> None:
        """A server gives a Twisted client endpoint string."""
        self.assertEqual(Server("127.0.0.1", 7379).endpoint(), "tcp:127.0.0.1:7379")
        self.assertEqual(Server("[::1]", 7379).endpoint(), "tcp:\\:\\:1:7379")


class PoolFileTests(SynchronousTestCase):
    """A nutcracker YAML pool becomes a Pool with nutcracker's units and defaults."""

    def test_parse(self) -> None:
        """Every key is read, times in milliseconds become seconds."""
        pool = parse_pool(FILE)
        self.assertEqual(pool.name, "alpha")
        self.assertEqual([s.name for s in pool.servers], ["127.0.0.1:6379", "beta"])
        self.assertEqual((pool.hash, pool.hash_tag, pool.timeout, pool.server_retry_timeout,
                          pool.server_failure_limit, pool.auto_eject_hosts, pool.redis_db),
                         ("fnv1a_64", "{}", 0.4, 2.0, 1, True, 2))
        self.assertEqual(pool.distribution.index(b"{a}1"), pool.distribution.index(b"{a}2"))

    def test_defaults(self) -> None:
        """Missing keys take nutcracker's defaults."""
        pool = parse_pool("p:\n  redis: true\n  servers:\n   - h:1:1\n")
        self.assertEqual((pool.hash, pool.distribution.distribution, pool.timeout,
                          pool.server_retry_timeout, pool.server_failure_limit, pool.backlog),
                         ("fnv1a_64", "ketama", None, 30.0, 2, 512))

    def test_refusals(self) -> None:
        """Unsupported or unknown keys, memcache pools and bad values are refused by name."""
        cases = {
            "p:\n  servers:\n   - h:1:1\n": "redis: true",
            "p:\n  redis: true\n  server_connections: 2\n  servers:\n   - h:1:1\n":
                "server_connections",
            "p:\n  redis: true\n  colour: red\n  servers:\n   - h:1:1\n": "colour",
            "p:\n  redis: true\n  hash: sha1\n  servers:\n   - h:1:1\n": "sha1",
            "p:\n  redis: true\n  distribution: round\n  servers:\n   - h:1:1\n": "round",
            "p:\n  redis: true\n  hash_tag: '{'\n  servers:\n   - h:1:1\n": "hash_tag",
            "p:\n  redis: true\n  timeout: -1\n  servers:\n   - h:1:1\n": "timeout",
            "p:\n  redis: true\n  servers: []\n": "servers",
            "p:\n  redis: true\n  servers:\n   - h:1:1 a\n   - h:2:1 a\n": "same name",
            "a:\n  redis: true\nb:\n  redis: true\n": "one pool",
            "p: [": "YAML",
        }
        for text, words in cases.items():
            with self.assertRaises(PoolError) as raised:
                parse_pool(text)
            self.assertIn(words, str(raised.exception), text)

    def test_pool_needs_servers(self) -> None:
        """A Pool without servers is refused."""
        self.assertRaises(PoolError, Pool, [])

    def test_listen_endpoint(self) -> None:
        """A pool's listen address becomes a Twisted server endpoint string."""
        self.assertEqual(listen_endpoint("127.0.0.1:22121"),
                         "tcp:22121:interface=127.0.0.1")
        self.assertRaises(PoolError, listen_endpoint, "22121")
