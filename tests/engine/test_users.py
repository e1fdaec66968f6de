"""Tests for kvtwist.engine.users: requirepass, AUTH, HELLO AUTH and the NOAUTH gate."""

from __future__ import annotations

import hashlib

from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from kvtwist.engine import users
from kvtwist.engine.store import Store
from kvtwist.engine.users import NOAUTH, WRONGPASS, Auth, auth_for
from kvtwist.wire.replies import OK, PONG, Error, to_resp
from tests.helpers import SessionMixin
from tests.redisref import RawConnection, start_redis_or_skip


class AuthTests(SynchronousTestCase):
    """The password is kept as a digest and checked for the default user only."""

    def test_digest_only(self):
        """Only a SHA-256 digest of the password is kept."""
        auth = Auth()
        auth.set_password(b"s3cret")
        self.assertNotIn(b"s3cret", repr(vars(auth)).encode())
        self.assertTrue(auth.check(b"default", b"s3cret"))
        self.assertFalse(auth.check(b"default", b"S3cret"))
        self.assertFalse(auth.check(b"other", b"s3cret"))

    def test_empty_password_is_nopass(self):
        """An empty requirepass means no password is needed."""
        auth = Auth()
        auth.set_password(b"x")
        auth.set_password(b"")
        self.assertFalse(auth.required)
        self.assertTrue(auth.check(b"default", b"anything"))


class ConfigTests(SessionMixin, SynchronousTestCase):
    """CONFIG SET requirepass takes effect; CONFIG GET shows the digest, never the password."""

    def test_config_set_and_get(self):
        """The digest form round-trips: set from CONFIG GET's answer, the same password works."""
        self.assertEqual(self.call("config", "set", "requirepass", "pw"), OK)
        shown = dict(self.call("config", "get", "requirepass").items)[b"requirepass"]
        self.assertEqual(shown, b"#" + hashlib.sha256(b"pw").hexdigest().encode())
        auth_for(self.store).set_password(b"")
        self.assertEqual(self.call("config", "set", "requirepass", shown), OK)
        other = self.store.new_session()
        self.assertEqual(other.execute([b"PING"]), Error(NOAUTH))
        self.assertEqual(other.execute([b"AUTH", b"pw"]), OK)


class GateTests(SessionMixin, SynchronousTestCase):
    """With a password set, commands wait for AUTH; AUTH and HELLO log in."""

    def setUp(self):
        SessionMixin.setUp(self)
        auth_for(self.store).set_password(b"pw")
        self.session = self.store.new_session("127.0.0.1:6000")

    def test_commands_need_auth(self):
        """Before AUTH every command but AUTH, HELLO, QUIT and RESET gets NOAUTH."""
        self.assertEqual(self.call("get", "k"), Error(NOAUTH))
        self.assertEqual(self.call("ping"), Error(NOAUTH))
        self.assertEqual(self.call("nosuchcommand"),
                         Error("ERR unknown command 'nosuchcommand', with args beginning with: "))
        self.assertEqual(self.call("auth", "pw"), OK)
        self.assertEqual(self.call("ping"), PONG)

    def test_sessions_before_the_password_stay_logged_in(self):
        """A connection made while no password was set stays authenticated, as in Redis."""
        store = self.store
        auth_for(store).set_password(b"")
        early = store.new_session()
        auth_for(store).set_password(b"pw")
        self.assertEqual(early.execute([b"PING"]), PONG)

    def test_wrongpass_and_penalty(self):
        """Wrong passwords are refused and counted; after FREE_FAILURES in a row AUTH fails
        unchecked for PENALTY seconds."""
        self.assertEqual(self.error("auth", "nope"), WRONGPASS)
        self.assertEqual(self.call("auth", "pw"), OK)  # a retry after a mistake is checked
        for _ in range(users.FREE_FAILURES):
            self.assertEqual(self.error("auth", "nope"), WRONGPASS)
        self.assertEqual(self.error("auth", "pw"), WRONGPASS)  # inside the penalty
        self.assertEqual(auth_for(self.store).denied, 5)
        self.clock.advance(users.PENALTY)
        self.assertEqual(self.call("auth", "default", "pw"), OK)

    def test_other_connections_are_not_penalised(self):
        """One connection's failures do not delay another's login."""
        self.assertEqual(self.error("auth", "nope"), WRONGPASS)
        other = self.store.new_session()
        self.assertEqual(other.execute([b"AUTH", b"pw"]), OK)

    def test_hello_auth(self):
        """HELLO 3 AUTH default pw logs in and switches protocol; without AUTH it is refused."""
        self.assertTrue(self.error("hello", "3").startswith("NOAUTH HELLO must be called"))
        self.assertEqual(self.session.protocol, 2)
        self.assertEqual(self.error("hello", "3", "auth", "default", "bad"), WRONGPASS)
        self.clock.advance(users.PENALTY)
        reply = self.call("hello", "3", "auth", "default", "pw", "setname", "me")
        self.assertEqual(dict(reply.items)[b"proto"], 3)
        self.assertEqual(self.session.name, b"me")

    def test_multi_before_auth_fails_exec(self):
        """A command refused for NOAUTH inside MULTI dooms the transaction, as other errors do."""
        self.assertEqual(self.call("multi"), Error(NOAUTH))

    def test_auth_errors(self):
        """AUTH's syntax and no-password errors are Redis's."""
        self.assertEqual(self.error("auth", "a", "b", "c"), "ERR syntax error")
        auth_for(self.store).set_password(b"")
        self.assertTrue(self.error("auth", "x").startswith(
            "ERR AUTH <password> called without any password configured"))
        self.assertEqual(self.call("auth", "default", "anything"), OK)


class DifferentialTests(SynchronousTestCase):
    """Replies before and after AUTH match a redis-server started with requirepass."""

    def test_against_redis(self):
        """The same session of AUTH, HELLO and commands gives the same bytes."""
        server = start_redis_or_skip()
        self.addCleanup(server.stop)
        admin = RawConnection(server.port)
        self.addCleanup(admin.close)
        self.assertEqual(admin.call([b"CONFIG", b"SET", b"requirepass", b"pw"]), b"+OK\r\n")
        theirs = RawConnection(server.port)
        self.addCleanup(theirs.close)
        mixin = SessionMixin()
        mixin.setUp()
        auth_for(mixin.store).set_password(b"pw")
        ours = mixin.store.new_session()
        for argv in ([b"GET", b"k"], [b"HELLO", b"3"], [b"AUTH", b"a", b"b", b"c"],
                     [b"AUTH", b"wrong"], [b"FOO"], [b"GET"], [b"AUTH", b"other", b"pw"]):
            self.assertEqual(to_resp(ours.execute(argv)), theirs.call(argv), argv)
        mixin.clock.advance(users.PENALTY)
        for argv in ([b"AUTH", b"default", b"pw"], [b"SET", b"k", b"v"], [b"GET", b"k"]):
            self.assertEqual(to_resp(ours.execute(argv)), theirs.call(argv), argv)


class AclUserTests(SessionMixin, SynchronousTestCase):
    """requirepass is the default user's password; AUTH logs ACL users in."""

    def test_requirepass_is_default_password(self):
        """Setting requirepass replaces the default user's passwords; empty means nopass."""
        auth = auth_for(self.store)
        auth.set_password(b"pw")
        self.assertEqual(auth.default.passwords, [hashlib.sha256(b"pw").hexdigest()])
        self.assertFalse(auth.default.nopass)
        auth.set_password(b"")
        self.assertTrue(auth.default.nopass)
        self.assertEqual(auth.default.passwords, [])

    def test_password_removed_lets_waiting_clients_in(self):
        """An unauthenticated client may run commands once the default user is nopass."""
        auth_for(self.store).set_password(b"pw")
        session = self.store.new_session()
        self.assertEqual(session.execute([b"GET", b"k"]), Error(NOAUTH))
        self.call("config", "set", "requirepass", "")
        self.assertIsNone(session.execute([b"GET", b"k"]))

    def test_auth_acl_user(self):
        """AUTH user pass logs in as that user; a failure is logged with reason auth."""
        self.call("acl", "setuser", "alice", "on", ">pw", "+@all", "~*")
        session = self.store.new_session()
        self.assertEqual(session.execute([b"AUTH", b"alice", b"bad"]), Error(WRONGPASS))
        self.clock.advance(users.PENALTY)
        self.assertEqual(session.execute([b"AUTH", b"alice", b"pw"]), OK)
        self.assertEqual(session.user.name, b"alice")
        entry = self.store.acl_log.entries[0]
        self.assertEqual((entry.reason, entry.object, entry.username),
                         ("auth", b"AUTH", b"alice"))
        self.assertEqual(auth_for(self.store).denied, 1)

    def test_disabled_default_user_requires_auth(self):
        """With the default user off, new connections must log in as another user."""
        self.call("acl", "setuser", "default", "off")
        session = self.store.new_session()
        self.assertEqual(session.execute([b"PING"]), Error(NOAUTH))


class ClientUserTests(SessionMixin, SynchronousTestCase):
    """CLIENT LIST and CLIENT INFO name the user each connection is logged in as."""

    def test_user_field(self):
        """``user=`` is default, then the user AUTH logged in as, for that connection only."""
        self.call("acl", "setuser", "app", "on", ">pw", "+@all", "~*")
        other = self.store.new_session()
        self.assertIn(b" user=default ", self.call("client", "info"))
        self.assertEqual(other.execute([b"AUTH", b"app", b"pw"]), OK)
        self.assertIn(b" user=app ", other.execute([b"CLIENT", b"INFO"]))
        listing = self.call("client", "list").splitlines()
        self.assertEqual([line.split(b" user=")[1].split(b" ")[0] for line in listing],
                         [b"default", b"app"])


class LayoutTests(SynchronousTestCase):
    """Logging in leaves a session's attributes as they were made."""

    def test_auth_adds_no_attribute(self):
        """A successful AUTH sets no attribute the session was made without (a new one
        would give it a dict of its own, slowing every attribute read on CPython)."""
        store = Store(Clock())
        store.new_session().execute([b"CONFIG", b"SET", b"requirepass", b"pw"])
        session = store.new_session()
        before = set(vars(session))
        self.assertEqual(session.execute([b"AUTH", b"pw"]), OK)
        self.assertEqual(set(vars(session)), before)
