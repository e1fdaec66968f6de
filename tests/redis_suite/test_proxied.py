"""Tests of tests/redis_suite/proxied.py: kvproxy as the runner's candidate."""

from __future__ import annotations

from twisted.trial.unittest import SynchronousTestCase

from tests.redis_suite.proxied import PROXY, proxied, proxy_command


class ProxiedTests(SynchronousTestCase):
    def test_names_and_command(self):
        """The candidate is kvstore or kvproxy-<backend>; kvproxy listens on loopback in
        front of the backend's loopback port with the given arguments."""
        self.assertEqual(proxied(None), "kvstore")
        self.assertEqual(proxied("redis"), PROXY + "redis")
        self.assertRaises(ValueError, proxied, "memcached")
        self.assertEqual(proxy_command(7000, 7001, ["--allow-admin"]), [
            "--listen", "tcp:7000:interface=127.0.0.1", "--backend", "tcp:127.0.0.1:7001",
            "--allow-admin"])

