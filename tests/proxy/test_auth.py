"""Tests for kvtwist.proxy.auth: kvproxy's own password, AUTH and HELLO, and its login to
the backend."""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
import time

try:
    import redis
except ImportError:  # the PyPy environment may lack redis-py
    redis = None
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.trial.unittest import SynchronousTestCase

from kvtwist.engine.store import Store
from kvtwist.engine.users import PENALTY
from kvtwist.proxy.auth import login_command
from kvtwist.proxy.backend import Backend
from kvtwist.proxy.cache import Cache
from kvtwist.proxy.invalidation import InvalidationListener
from kvtwist.proxy.store import BackendUnavailable, ProxyStore
from kvtwist.serve.factory import KVFactory
from kvtwist.wire.replies import OK, Error, Pairs
from tests.procs import start_kvproxy, start_kvstore
from tests.proxy.fakes import FakeBackend, FakeEndpoint, FakeListener, StoreBackend
from tests.redisref import start_redis_or_skip

NOAUTH = "NOAUTH Authentication required."
WRONGPASS = "WRONGPASS invalid username-password pair or user is disabled."
HELLO_NOAUTH = ("NOAUTH HELLO must be called with the client already authenticated, "
                "otherwise the HELLO AUTH <user> <pass> option can be used to authenticate "
                "the client and select the RESP protocol version at the same time")


class ProtectedCase(SynchronousTestCase):
    """A ProxyStore with requirepass ``secret`` over a FakeBackend, with one session."""

    requirepass = b"secret"

    def setUp(self) -> None:
        self.clock = Clock()
        self.clock.advance(1000)
        self.cache = Cache(self.clock, ttl=60)
        self.addCleanup(self.cache.stop)
        self.backend = FakeBackend()
        self.proxy = ProxyStore(self.clock, self.cache, self.backend, FakeListener(),
                                requirepass=self.requirepass)
        self.session = self.proxy.new_session("peer")

    def message(self, argv, session=None) -> str:
        """Run ``argv`` in the session; return its reply's error message."""
        reply = (session or self.session).execute(argv)
        self.assertIsInstance(reply, Error, argv)
        return reply.message


class RequirePassTests(ProtectedCase):
    """With requirepass, a client must log in before anything reaches the backend."""

    def test_noauthBeforeLogin(self) -> None:
        """GET, MGET, SET, PING, INFO, SELECT and CLIENT get Redis's NOAUTH; nothing is sent."""
        for argv in ([b"GET", b"k"], [b"MGET", b"a", b"b"], [b"SET", b"k", b"v"], [b"PING"],
                     [b"INFO"], [b"SELECT", b"1"], [b"CLIENT", b"ID"], [b"FLUSHALL"],
                     [b"whatever"], [b"auth2"]):
            self.assertEqual(self.message(argv), NOAUTH)
        self.assertEqual(self.backend.sent, [])

    def test_authLogsIn(self) -> None:
        """AUTH password logs in; then commands reach the backend."""
        self.assertEqual(self.session.execute([b"AUTH", b"secret"]), OK)
        self.session.execute([b"GET", b"k"])
        self.clock.advance(0)  # the turn's misses go out together
        self.assertEqual([argv for argv, _ in self.backend.sent], [[b"GET", b"k"]])

    def test_authDefaultUser(self) -> None:
        """AUTH default password logs in as well."""
        self.assertEqual(self.session.execute([b"auth", b"default", b"secret"]), OK)
        self.assertTrue(self.session.authenticated)

    def test_wrongPassword(self) -> None:
        """A wrong password, or another user, gets WRONGPASS and stays logged out."""
        self.assertEqual(self.message([b"AUTH", b"nope"]), WRONGPASS)
        self.clock.advance(PENALTY)
        self.assertEqual(self.message([b"AUTH", b"bob", b"secret"]), WRONGPASS)
        self.assertEqual(self.message([b"GET", b"k"]), NOAUTH)
        self.assertEqual(self.backend.sent, [])

    def test_arity(self) -> None:
        """AUTH alone and AUTH with three arguments get Redis's errors."""
        self.assertEqual(self.message([b"AUTH"]),
                         "ERR wrong number of arguments for 'auth' command")
        self.assertEqual(self.message([b"AUTH", b"a", b"b", b"c"]), "ERR syntax error")

    def test_quitBeforeLogin(self) -> None:
        """QUIT needs no login."""
        self.assertEqual(self.session.execute([b"QUIT"]), OK)
        self.assertTrue(self.session.closing)

    def test_penaltyPerConnection(self) -> None:
        """After a wrong password, even the right one fails on that connection for PENALTY
        seconds; another connection logs in meanwhile."""
        self.assertEqual(self.message([b"AUTH", b"guess"]), WRONGPASS)
        self.assertEqual(self.message([b"AUTH", b"secret"]), WRONGPASS)
        other = self.proxy.new_session("other")
        self.assertEqual(other.execute([b"AUTH", b"secret"]), OK)
        self.clock.advance(PENALTY - 0.01)
        self.assertEqual(self.message([b"AUTH", b"secret"]), WRONGPASS)
        self.clock.advance(PENALTY)
        self.assertEqual(self.session.execute([b"AUTH", b"secret"]), OK)

    def test_failuresCounted(self) -> None:
        """INFO counts the failed logins as acl_access_denied_auth, never shows the password."""
        self.message([b"AUTH", b"x"])
        self.message([b"HELLO", b"3", b"AUTH", b"default", b"y"])
        self.session.execute([b"AUTH", b"secret"])  # penalised: a third failure
        self.clock.advance(PENALTY)
        self.session.execute([b"AUTH", b"secret"])
        text = self.session.execute([b"INFO", b"proxy"]).decode()
        self.assertIn("\r\nacl_access_denied_auth:3\r\n", text)
        self.assertIn("\r\nrequirepass:yes\r\n", text)
        self.assertNotIn("secret", text)

    def test_digestForm(self) -> None:
        """A requirepass given as # and its SHA-256 digest takes the password it digests."""
        proxy = ProxyStore(self.clock, self.cache, self.backend, FakeListener(),
                           requirepass=b"#2bb80d537b1da3e38bd30361aa855686bde0eacd7162fef6a25"
                                       b"fe97bf527a25b")
        session = proxy.new_session()
        self.assertEqual(session.execute([b"AUTH", b"secret"]), OK)


class HelloTests(ProtectedCase):
    """HELLO [protover [AUTH user pass] [SETNAME name]] as Redis 7.0 answers it."""

    def test_helloAuth(self) -> None:
        """HELLO 3 AUTH default password logs in, switches to RESP3 and names the client."""
        reply = self.session.execute([b"HELLO", b"3", b"AUTH", b"default", b"secret",
                                      b"SETNAME", b"me"])
        self.assertIsInstance(reply, Pairs)
        self.assertIn((b"proto", 3), reply.items)
        self.assertEqual((self.session.protocol, self.session.name), (3, b"me"))
        self.assertTrue(self.session.authenticated)
        self.assertEqual(self.backend.sent, [])

    def test_helloBeforeLogin(self) -> None:
        """HELLO without AUTH before login gets Redis's NOAUTH text and changes nothing."""
        for argv in ([b"HELLO"], [b"HELLO", b"3"], [b"HELLO", b"2", b"SETNAME", b"x"]):
            self.assertEqual(self.message(argv), HELLO_NOAUTH)
        self.assertEqual((self.session.protocol, self.session.name), (2, b""))

    def test_helloWrongPassword(self) -> None:
        """HELLO ... AUTH with a wrong password gets WRONGPASS and keeps the protocol."""
        self.assertEqual(self.message([b"HELLO", b"3", b"AUTH", b"default", b"no"]),
                         WRONGPASS)
        self.assertEqual(self.session.protocol, 2)

    def test_helloErrors(self) -> None:
        """A bad version, a bad option and a short AUTH get Redis's errors."""
        for argv, message in (
                ([b"HELLO", b"x"], "ERR Protocol version is not an integer or out of range"),
                ([b"HELLO", b"4"], "NOPROTO unsupported protocol version"),
                ([b"HELLO", b"3", b"FOO"], "ERR Syntax error in HELLO option 'FOO'"),
                ([b"HELLO", b"3", b"AUTH", b"default"],
                 "ERR Syntax error in HELLO option 'AUTH'"),
                ([b"HELLO", b"2", b"SETNAME", b"a", b"b"],
                 "ERR Syntax error in HELLO option 'b'")):
            self.assertEqual(self.message(argv), message)

    def test_helloSetnameChecked(self) -> None:
        """A name with a space is refused once logged in."""
        self.session.execute([b"AUTH", b"secret"])
        self.assertEqual(self.message([b"HELLO", b"2", b"SETNAME", b"a b"]),
                         "ERR Client names cannot contain spaces, newlines or special "
                         "characters.")


class NoPasswordTests(ProtectedCase):
    """Without requirepass every client starts logged in, as Redis's nopass default user."""

    requirepass = b""

    def test_openByDefault(self) -> None:
        """Commands work at once; AUTH password gets Redis's no-password error; AUTH
        default anything is OK; another user is WRONGPASS; nothing is forwarded."""
        self.session.execute([b"GET", b"k"])
        self.clock.advance(0)  # the turn's misses go out together
        self.assertEqual(len(self.backend.sent), 1)
        self.assertEqual(self.message([b"AUTH", b"x"]),
                         "ERR AUTH <password> called without any password configured for "
                         "the default user. Are you sure your configuration is correct?")
        self.assertEqual(self.session.execute([b"AUTH", b"default", b"x"]), OK)
        self.clock.advance(PENALTY)
        self.assertEqual(self.message([b"AUTH", b"bob", b"x"]), WRONGPASS)
        self.assertEqual(len(self.backend.sent), 1)
        text = self.session.execute([b"INFO", b"proxy"]).decode()
        self.assertIn("\r\nrequirepass:no\r\n", text)


class DialectTests(SynchronousTestCase):
    """NOAUTH and AUTH work in every dialect the front end speaks."""

    def setUp(self) -> None:
        self.clock = Clock()
        self.store = Store(self.clock)
        self.cache = Cache(self.clock, ttl=60)
        self.addCleanup(self.cache.stop)
        self.proxy = ProxyStore(self.clock, self.cache, StoreBackend(self.store),
                                FakeListener(), requirepass=b"pw")
        self.factory = KVFactory(self.proxy)

    def talk(self, data: bytes) -> bytes:
        protocol = self.factory.buildProtocol(None)
        transport = StringTransport()
        protocol.makeConnection(transport)
        protocol.dataReceived(data)
        self.clock.advance(0)
        return transport.value()

    def test_resp(self) -> None:
        """RESP: NOAUTH, then AUTH, then the command runs."""
        self.assertEqual(
            self.talk(b"*2\r\n$3\r\nGET\r\n$1\r\nk\r\n*2\r\n$4\r\nAUTH\r\n$2\r\npw\r\n"
                      b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\nv\r\n"),
            b"-" + NOAUTH.encode() + b"\r\n+OK\r\n+OK\r\n")

    def test_inline(self) -> None:
        """Inline (telnet): the same, in redis-cli's words."""
        self.assertEqual(self.talk(b"GET k\r\nAUTH pw\r\nGET k\r\n"),
                         b"(error) " + NOAUTH.encode() + b"\r\nOK\r\n(nil)\r\n")

    def test_json(self) -> None:
        """JSON lines: the AUTH type logs in."""
        lines = self.talk(b'{"type": "GET", "key": "k"}\n{"type": "AUTH", "password": "pw"}\n'
                          b'{"type": "GET", "key": "k"}\n').splitlines()
        self.assertEqual([json.loads(line) for line in lines],
                         [{"error": NOAUTH}, "OK", None])


class LoginCommandTests(SynchronousTestCase):
    """The AUTH kvproxy sends its backend."""

    def test_forms(self) -> None:
        """No password: none; a password: AUTH password; a user too: AUTH user password."""
        self.assertIsNone(login_command(None, None))
        self.assertEqual(login_command(None, b"pw"), [b"AUTH", b"pw"])
        self.assertEqual(login_command(b"app", b"pw"), [b"AUTH", b"app", b"pw"])


class BackendLoginTests(SynchronousTestCase):
    """Every backend connection kvproxy opens logs in first."""

    def setUp(self) -> None:
        self.clock = Clock()
        self.endpoint = FakeEndpoint()

    def start(self, service) -> None:
        service.startService()
        self.addCleanup(service.stopService)
        self.clock.advance(0)

    def test_loginBeforeIdentify(self) -> None:
        """The request link sends AUTH, then (once OK) its INFO and CONFIG GET; a request
        made meanwhile waits; reconnections log in again."""
        backend = Backend(self.clock, self.endpoint, "fake", timeout=5, identify=True,
                          login=[b"AUTH", b"app", b"pw"])
        self.start(backend)
        self.assertEqual(self.endpoint.written(0), [[b"AUTH", b"app", b"pw"]])
        d = backend.request([b"GET", b"k"])
        self.endpoint.connections[0][0].dataReceived(b"+OK\r\n")
        self.clock.advance(0)
        self.assertEqual(self.endpoint.written(0)[1:],
                         [[b"CONFIG", b"GET", b"databases"], [b"INFO", b"server"]])
        self.endpoint.connections[0][0].dataReceived(b"*0\r\n$1\r\nx\r\n")
        self.clock.advance(0)
        self.assertEqual(self.endpoint.written(0)[3:], [[b"GET", b"k"]])
        self.endpoint.connections[0][0].dataReceived(b"$1\r\nv\r\n")
        self.assertEqual(self.successResultOf(d), b"v")
        self.endpoint.close(0)
        self.clock.advance(0.1)
        self.assertEqual(self.endpoint.written(1), [[b"AUTH", b"app", b"pw"]])

    def test_refusedLogin(self) -> None:
        """A refused AUTH closes that connection and makes the link down: requests fail at
        once with the backend's reason, and the next attempt comes with backoff."""
        backend = Backend(self.clock, self.endpoint, "fake", timeout=5, identify=True,
                          login=[b"AUTH", b"bad"])
        self.start(backend)
        waiting = backend.request([b"GET", b"k"])
        self.endpoint.connections[0][0].dataReceived(b"-" + WRONGPASS.encode() + b"\r\n")
        self.assertEqual(backend.state, "down")
        self.assertTrue(self.endpoint.connections[0][1].disconnecting)
        self.endpoint.close(0)  # ClientService is not told: it has moved on
        failure = self.failureResultOf(waiting, BackendUnavailable)
        self.assertIn("refused kvproxy's login: " + WRONGPASS, str(failure.value))
        failure = self.failureResultOf(backend.request([b"GET", b"k"]), BackendUnavailable)
        self.assertIn(WRONGPASS, str(failure.value))
        self.assertEqual(self.endpoint.written(0), [[b"AUTH", b"bad"]])
        # Refusals back off like failed connections: 3 s hold at most 7 attempts (they
        # would be 30 if each came 10-50 ms after the last).
        for _ in range(30):
            self.clock.advance(0.1)
            connection = self.endpoint.connections[-1]
            if not connection[1].disconnecting:
                connection[0].dataReceived(b"-" + WRONGPASS.encode() + b"\r\n")
                self.endpoint.close()
        self.assertLessEqual(len(self.endpoint.connections), 8)
        self.assertGreaterEqual(len(self.endpoint.connections), 4)

    def test_listenerLogsIn(self) -> None:
        """The invalidation link sends AUTH before CLIENT ID, on every connection."""
        cache = Cache(self.clock, ttl=60)
        self.addCleanup(cache.stop)
        listener = InvalidationListener(self.clock, self.endpoint, cache, "fake", timeout=5,
                                        clock=self.clock, login=[b"AUTH", b"pw"])
        self.start(listener)
        self.assertEqual(self.endpoint.written(0), [[b"AUTH", b"pw"]])
        server = self.endpoint.connections[0][0]
        for reply in (b"+OK\r\n", b":7\r\n", b"+OK\r\n",
                      b"*3\r\n$9\r\nsubscribe\r\n$20\r\n__redis__:invalidate\r\n:1\r\n"):
            server.dataReceived(reply)
            self.clock.advance(0)
        self.assertEqual(self.endpoint.written(0)[1], [b"CLIENT", b"ID"])
        self.assertEqual(listener.state, "on")
        self.endpoint.close(0)
        self.clock.advance(0.1)
        self.assertEqual(self.endpoint.written(1), [[b"AUTH", b"pw"]])

    def test_listenerRefused(self) -> None:
        """A refused AUTH on the invalidation link leaves it down: nothing is cached."""
        cache = Cache(self.clock, ttl=60)
        self.addCleanup(cache.stop)
        listener = InvalidationListener(self.clock, self.endpoint, cache, "fake", timeout=5,
                                        clock=self.clock, login=[b"AUTH", b"pw"])
        self.start(listener)
        self.endpoint.connections[0][0].dataReceived(b"-" + WRONGPASS.encode() + b"\r\n")
        self.assertEqual((listener.state, listener.link, listener.caching),
                         ("down", "down", False))
        self.assertEqual(self.endpoint.written(0), [[b"AUTH", b"pw"]])


def eventually(read, expected, limit: float = 10.0):
    """Read until ``read()`` returns ``expected`` (invalidations are asynchronous)."""
    deadline = time.monotonic() + limit
    while True:
        value = read()
        if value == expected or time.monotonic() > deadline:
            return value


def cli(port: int, *argv: str, password=None) -> bytes:
    """Run redis-cli against loopback ``port``; return its output, stripped."""
    command = ["redis-cli", "-p", str(port)]
    if password is not None:
        command += ["--no-auth-warning", "-a", password]
    done = subprocess.run(command + list(argv), capture_output=True, timeout=30)
    return done.stdout.strip()


class TwistdTests(SynchronousTestCase):
    """twistd kvproxy with passwords, in front of twistd kvstore and redis-server with
    theirs."""

    if redis is None:
        skip = "redis-py is not installed"

    def client(self, port: int, **options):
        connection = redis.Redis(port=port, socket_timeout=10, **options)
        self.addCleanup(connection.close)
        return connection

    def check(self, proxy, backend_port: int, front: str, **backend) -> None:
        """Through ``proxy`` (whose clients' password is ``front``): clients without it
        are refused, redis-py (RESP2 AUTH, RESP3 HELLO AUTH) and redis-cli -a read and write,
        and a write straight to the backend (logged in with ``backend``) is seen once its
        invalidation arrives, so the invalidation link logged in too."""
        self.assertRaises(redis.AuthenticationError, self.client(proxy.port).get, "k")
        self.assertRaises(redis.AuthenticationError,
                          self.client(proxy.port, password="nope").get, "k")
        self.assertEqual(cli(proxy.port, "get", "k"), b"NOAUTH Authentication required.")
        via = self.client(proxy.port, password=front, protocol=2)
        resp3 = self.client(proxy.port, password=front, protocol=3)
        direct = self.client(backend_port, protocol=2, **backend)
        via.set("k", "1")
        self.assertEqual(via.get("k"), b"1")
        self.assertEqual(resp3.get("k"), b"1")
        for value in (b"2", b"3"):
            direct.set("k", value)
            self.assertEqual(eventually(lambda: via.get("k"), value), value)
        self.assertEqual(cli(proxy.port, "get", "k", password=front), b"3")
        self.assertEqual(cli(proxy.port, "set", "k", "4", password=front), b"OK")
        self.assertEqual(direct.get("k"), b"4")
        info = via.info()
        self.assertEqual((info["invalidation_state"], info["backend_state"]), ("on", "connected"))
        self.assertGreater(info["cache_hits"], 0)
        self.assertGreaterEqual(info["acl_access_denied_auth"], 1)
        for secret in [front] + list(backend.values()):
            self.assertNotIn(secret, proxy.log)

    def test_kvstoreBackend(self) -> None:
        """kvproxy --requirepass --backend-password before kvstore --requirepass."""
        data = tempfile.mkdtemp(prefix="kvproxy-auth-")
        self.addCleanup(shutil.rmtree, data, True)
        store = start_kvstore(data, "--fsync", "no", "--requirepass", "back-secret")
        self.addCleanup(store.stop)
        proxy = start_kvproxy(store.port, "--timeout", "2", "--requirepass", "front-secret",
                              "--backend-password", "back-secret")
        self.addCleanup(proxy.stop)
        proxy.wait_for_line("invalidation tracking on")
        self.check(proxy, store.port, "front-secret", password="back-secret")

    def test_redisBackendAclUser(self) -> None:
        """kvproxy --backend-user --backend-password before redis-server with requirepass
        and an ACL user."""
        server = start_redis_or_skip()
        self.addCleanup(server.stop)
        admin = self.client(server.port, protocol=2)
        admin.acl_setuser("app", enabled=True, passwords=["+app-secret"], keys=["*"],
                          channels=["*"], commands=["+@all"])
        admin.config_set("requirepass", "root-secret")
        proxy = start_kvproxy(server.port, "--timeout", "2", "--requirepass", "front-secret",
                              "--backend-user", "app", "--backend-password", "app-secret")
        self.addCleanup(proxy.stop)
        proxy.wait_for_line("invalidation tracking on")
        self.check(proxy, server.port, "front-secret", password="root-secret")
        clients = admin.client_list()
        self.assertGreaterEqual(len([each for each in clients if each["user"] == "app"]), 2)

    def test_wrongBackendPassword(self) -> None:
        """A wrong --backend-password is logged as the backend's refusal, and clients get an
        error at once saying so (they do not hang)."""
        server = start_redis_or_skip()
        self.addCleanup(server.stop)
        self.client(server.port, protocol=2).config_set("requirepass", "right")
        proxy = start_kvproxy(server.port, "--timeout", "2", "--backend-password", "wrong")
        self.addCleanup(proxy.stop)
        line = proxy.wait_for_line("refused kvproxy's login")
        self.assertIn("WRONGPASS invalid username-password pair or user is disabled.", line)
        via = self.client(proxy.port, protocol=2)
        started = time.monotonic()
        with self.assertRaises(redis.ResponseError) as caught:
            via.get("k")
        self.assertLess(time.monotonic() - started, 2)
        self.assertIn("backend unavailable", str(caught.exception))
        self.assertIn("WRONGPASS", str(caught.exception))
        self.assertNotIn("wrong", proxy.log.replace("WRONGPASS", ""))
