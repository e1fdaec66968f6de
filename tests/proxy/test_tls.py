"""kvproxy over TLS, end to end: an ssl: listener, a tls: backend endpoint."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile

try:
    import redis
except ImportError:  # the PyPy environment may lack redis-py
    redis = None
from twisted.trial.unittest import SynchronousTestCase

from tests.procs import TwistdProcess
from tests.proxy.test_auth import eventually
from tests.serve.test_tap import write_self_signed


class TLSTests(SynchronousTestCase):
    """kvproxy listens with TLS (an ssl: endpoint) and reaches its backend with TLS (a tls:
    client endpoint whose trustRoots directory holds the backend's CA certificate)."""

    if redis is None:
        skip = "redis-py is not installed"

    def setUp(self) -> None:
        self.directory = tempfile.mkdtemp(prefix="kvproxy-tls-")
        self.addCleanup(shutil.rmtree, self.directory, True)
        self.key, self.cert = write_self_signed(self.directory)
        # trustRoots loads every *.pem of its directory as a certificate: the CA's alone.
        self.trusted = os.path.join(self.directory, "ca")
        os.mkdir(self.trusted)
        shutil.copy(self.cert, self.trusted)
        self.listen = "ssl:0:interface=127.0.0.1:privateKey=%s:certKey=%s" % (self.key,
                                                                             self.cert)
        self.store = TwistdProcess("kvstore", [
            "--data", os.path.join(self.directory, "data"), "--fsync", "no",
            "--listen", self.listen, "--requirepass", "back", "--tls-auth-clients", "no"])
        self.addCleanup(self.store.stop)
        self.store_port = self.store.wait_for_ports(1)[0]

    def start_proxy(self, backend: str) -> TwistdProcess:
        proxy = TwistdProcess("kvproxy", [
            "--listen", self.listen, "--backend", backend, "--backend-password", "back",
            "--requirepass", "front", "--timeout", "2"])
        self.addCleanup(proxy.stop)
        proxy.port = proxy.wait_for_ports(1)[0]
        return proxy

    def client(self, port: int, password: str):
        connection = redis.Redis(host="127.0.0.1", port=port, ssl=True, ssl_ca_certs=self.cert,
                                 password=password, protocol=2, socket_timeout=10)
        self.addCleanup(connection.close)
        return connection

    def test_tlsBothWays(self) -> None:
        """Through TLS on both sides (and passwords), redis-py ssl=True and redis-cli --tls
        read and write, and a direct write to the backend invalidates the cached value."""
        proxy = self.start_proxy("tls:127.0.0.1:%d:trustRoots=%s" % (self.store_port,
                                                                    self.trusted))
        proxy.wait_for_line("invalidation tracking on")
        via = self.client(proxy.port, "front")
        direct = self.client(self.store_port, "back")
        via.set("k", "1")
        self.assertEqual(via.get("k"), b"1")
        self.assertEqual(via.get("k"), b"1")  # maybe waiting for the first value's PTTL
        self.assertEqual(via.get("k"), b"1")  # from the cache
        direct.set("k", "2")
        self.assertEqual(eventually(lambda: via.get("k"), b"2"), b"2")
        self.assertGreater(via.info()["cache_hits"], 0)
        cli = subprocess.run(["redis-cli", "--tls", "--cacert", self.cert, "-p",
                              str(proxy.port), "--no-auth-warning", "-a", "front", "get", "k"],
                             capture_output=True, timeout=30)
        self.assertEqual(cli.stdout.strip(), b"2")

    def test_untrustedBackend(self) -> None:
        """A backend whose certificate kvproxy does not trust (no trustRoots: the system's
        CAs) is not used: clients get an error at once, and the log says why."""
        proxy = self.start_proxy("tls:127.0.0.1:%d" % (self.store_port,))
        proxy.wait_for_line("cannot reach .*certificate verify failed")
        with self.assertRaises(redis.ResponseError) as caught:
            self.client(proxy.port, "front").get("k")
        self.assertIn("backend unavailable", str(caught.exception))
