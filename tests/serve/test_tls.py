"""Tests for kvtwist.serve.tls: TLS listeners with Redis's tls-auth-clients."""

from __future__ import annotations

import datetime
import os
import shutil
import subprocess
import tempfile

import redis
from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from kvtwist.engine.store import Store
from kvtwist.serve import tls
from kvtwist.wire.replies import OK
from tests.procs import TwistdProcess
from tests.serve.test_tap import write_self_signed


def _write(path: str, data: bytes) -> str:
    with open(path, "wb") as handle:
        handle.write(data)
    return path


def write_ca_and_client(directory: str, name: str = "ca") -> tuple:
    """Write a CA certificate and a client key and certificate it signed; return the paths
    (ca, client key, client certificate)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = datetime.datetime.now(datetime.timezone.utc)

    def pem_key(key) -> bytes:
        return key.private_bytes(serialization.Encoding.PEM,
                                 serialization.PrivateFormat.TraditionalOpenSSL,
                                 serialization.NoEncryption())

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "kvtwist test " + name)])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name)
          .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
          .not_valid_before(now - datetime.timedelta(days=1))
          .not_valid_after(now + datetime.timedelta(days=1))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .sign(ca_key, hashes.SHA256()))
    client_key = ec.generate_private_key(ec.SECP256R1())
    client = (x509.CertificateBuilder()
              .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "client")]))
              .issuer_name(ca_name).public_key(client_key.public_key())
              .serial_number(x509.random_serial_number())
              .not_valid_before(now - datetime.timedelta(days=1))
              .not_valid_after(now + datetime.timedelta(days=1))
              .sign(ca_key, hashes.SHA256()))
    pem = serialization.Encoding.PEM
    return (_write(os.path.join(directory, name + ".pem"), ca.public_bytes(pem)),
            _write(os.path.join(directory, name + "-client.key"), pem_key(client_key)),
            _write(os.path.join(directory, name + "-client.pem"), client.public_bytes(pem)))


class Certificates:
    """A server key and certificate, a CA, a client signed by it and one signed by another."""

    def __init__(self, case: SynchronousTestCase) -> None:
        self.directory = tempfile.mkdtemp(prefix="kvtwist-tls-")
        case.addCleanup(shutil.rmtree, self.directory, True)
        self.key, self.cert = write_self_signed(self.directory)
        self.ca, self.client_key, self.client_cert = write_ca_and_client(self.directory)
        _, self.stranger_key, self.stranger_cert = write_ca_and_client(self.directory,
                                                                       "other")

    def listen(self) -> str:
        return "ssl:0:interface=127.0.0.1:privateKey=%s:certKey=%s" % (self.key, self.cert)


class ContextTests(SynchronousTestCase):
    """TLSContext follows tls-auth-clients and tls-ca-cert-file as Redis does."""

    def setUp(self) -> None:
        self.certs = Certificates(self)
        self.store = Store(Clock())

    def fields(self) -> dict:
        return tls.split_description(self.certs.listen())

    def test_description_fields(self) -> None:
        """The port and the fields kvstore takes; others are refused, naming them."""
        fields = tls.split_description("ssl:6380:interface=\\:\\:1:privateKey=k.pem")
        self.assertEqual(fields, {"port": 6380, "interface": "::1", "privateKey": "k.pem"})
        error = self.assertRaises(tls.TLSError, tls.split_description,
                                  "ssl:1:privateKey=k:sslmethod=TLSv1_METHOD")
        self.assertIn("not 'sslmethod=TLSv1_METHOD'", str(error))
        self.assertRaises(tls.TLSError, tls.split_description, "ssl:x:privateKey=k")

    def test_default_needs_a_ca(self) -> None:
        """tls-auth-clients is yes by default: without tls-ca-cert-file it is Redis's
        start-up error; no needs none."""
        self.assertEqual(self.store.config["tls-auth-clients"], "yes")
        error = self.assertRaises(tls.TLSError, tls.TLSContext, self.store, self.fields())
        self.assertEqual(str(error), tls.NEEDS_CA)
        self.store.config["tls-auth-clients"] = "no"
        tls.TLSContext(self.store, self.fields())

    def test_verify_modes(self) -> None:
        """yes: peer verified and required; optional: verified if given; no: not asked."""
        from OpenSSL import SSL

        self.store.config["tls-ca-cert-file"] = self.certs.ca
        context = tls.TLSContext(self.store, self.fields())
        required = SSL.VERIFY_PEER | SSL.VERIFY_FAIL_IF_NO_PEER_CERT
        self.assertEqual(context.getContext().get_verify_mode() & required, required)
        context.check(mode="optional")
        self.store.config["tls-auth-clients"] = "optional"
        mode = context.getContext().get_verify_mode()
        self.assertEqual((mode & SSL.VERIFY_PEER, mode & SSL.VERIFY_FAIL_IF_NO_PEER_CERT),
                         (SSL.VERIFY_PEER, 0))
        self.store.config["tls-auth-clients"] = "no"
        self.assertEqual(context.getContext().get_verify_mode(), SSL.VERIFY_NONE)

    def test_config_set_applies_or_is_refused(self) -> None:
        """CONFIG SET of either parameter reaches a listener's context; one it cannot apply
        (no CA, an unreadable file) is refused with Redis's text and changes nothing."""
        from kvtwist.engine.config import watch

        self.store.config["tls-ca-cert-file"] = self.certs.ca
        context = tls.TLSContext(self.store, self.fields())
        watch(self.store, "tls-auth-clients", lambda mode: context.check(mode=mode))
        watch(self.store, "tls-ca-cert-file", lambda ca: context.check(ca=ca))
        session = self.store.new_session()
        reply = session.execute([b"CONFIG", b"SET", b"tls-ca-cert-file", b"/nonexistent"])
        self.assertEqual(reply.message, "ERR CONFIG SET failed (possibly related to argument "
                         "'tls-ca-cert-file') - Unable to update TLS configuration. Check "
                         "server logs.")
        self.assertEqual(self.store.config["tls-ca-cert-file"], self.certs.ca)
        self.assertIn("must be one of the following: no, yes, optional", session.execute(
            [b"CONFIG", b"SET", b"tls-auth-clients", b"maybe"]).message)
        self.assertEqual(session.execute([b"CONFIG", b"SET", b"tls-auth-clients",
                                          b"OPTIONAL"]), OK)
        self.assertEqual(session.execute([b"CONFIG", b"GET", b"tls-auth-clients"]).items,
                         [(b"tls-auth-clients", b"optional")])


class ListenerTests(SynchronousTestCase):
    """twistd kvstore's ssl: listener with client certificates, end to end."""

    def start(self, *args: str) -> int:
        self.certs = getattr(self, "certs", None) or Certificates(self)
        proc = TwistdProcess("kvstore", [
            "--data", os.path.join(self.certs.directory, "data-%d" % len(args)),
            "--listen", self.certs.listen()] + list(args))
        self.addCleanup(proc.stop)
        return proc.wait_for_ports(1)[0]

    def cli(self, port: int, *extra: str) -> subprocess.CompletedProcess:
        return subprocess.run(["redis-cli", "--tls", "--cacert", self.certs.cert, "-p",
                               str(port)] + list(extra) + ["ping"],
                              capture_output=True, timeout=30)

    def test_required_client_certificate(self) -> None:
        """With the default (yes), redis-cli and redis-py get in with a certificate the CA
        signed; without one, or with another CA's, the handshake fails."""
        self.certs = Certificates(self)
        port = self.start("--tls-ca-cert-file", self.certs.ca)
        certs = self.certs
        ok = self.cli(port, "--cert", certs.client_cert, "--key", certs.client_key)
        self.assertEqual(ok.stdout.strip(), b"PONG")
        self.assertNotEqual(self.cli(port).stdout.strip(), b"PONG")
        stranger = self.cli(port, "--cert", certs.stranger_cert, "--key", certs.stranger_key)
        self.assertNotEqual(stranger.stdout.strip(), b"PONG")
        client = redis.Redis(host="127.0.0.1", port=port, ssl=True, ssl_ca_certs=certs.cert,
                             ssl_certfile=certs.client_cert, ssl_keyfile=certs.client_key,
                             socket_timeout=10)
        self.addCleanup(client.close)
        self.assertTrue(client.ping())
        bare = redis.Redis(host="127.0.0.1", port=port, ssl=True, ssl_ca_certs=certs.cert,
                           socket_timeout=10)
        self.addCleanup(bare.close)
        self.assertRaises(redis.exceptions.ConnectionError, bare.ping)

    def test_optional_client_certificate(self) -> None:
        """optional: a client without a certificate gets in, one with a foreign one not."""
        self.certs = Certificates(self)
        port = self.start("--tls-ca-cert-file", self.certs.ca, "--tls-auth-clients",
                          "optional")
        certs = self.certs
        self.assertEqual(self.cli(port).stdout.strip(), b"PONG")
        self.assertEqual(self.cli(port, "--cert", certs.client_cert, "--key",
                                  certs.client_key).stdout.strip(), b"PONG")
        stranger = self.cli(port, "--cert", certs.stranger_cert, "--key", certs.stranger_key)
        self.assertNotEqual(stranger.stdout.strip(), b"PONG")

    def test_no_ca_is_a_start_up_error(self) -> None:
        """An ssl: listener with tls-auth-clients yes and no CA does not start (Redis's
        message)."""
        certs = Certificates(self)
        proc = TwistdProcess("kvstore", [
            "--data", os.path.join(certs.directory, "data"), "--listen", certs.listen()])
        self.addCleanup(proc.stop)
        proc.wait_for_line("Either tls-ca-cert-file or tls-ca-cert-dir must be specified")
