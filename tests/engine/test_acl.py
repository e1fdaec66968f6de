"""Tests for kvtwist.engine.acl: the ACL command and NOPERM, differential against redis-server.

Each test runs the same script on a real redis-server (an admin connection and a user
connection) and on a Store (two sessions), comparing the reply bytes. Fields that depend on
the whole command table (descriptions of wide category mixes, ACL CAT lists) or on time
(age-seconds, client-info) are compared in tests/engine/test_acl_rules.py instead.
"""

from __future__ import annotations

from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from kvtwist.engine.store import Store
from kvtwist.wire.replies import Pairs, to_resp
from tests.redisref import RawConnection, start_redis_or_skip


class Pair:
    """Two connections to redis-server and two sessions on a Store, run side by side."""

    def __init__(self, case: SynchronousTestCase) -> None:
        server = start_redis_or_skip()
        case.addCleanup(server.stop)
        self.case = case
        self.theirs = [RawConnection(server.port), RawConnection(server.port)]
        for connection in self.theirs:
            case.addCleanup(connection.close)
        self.clock = Clock()
        self.clock.advance(1000)
        self.store = Store(self.clock)
        self.ours = [self.store.new_session(), self.store.new_session()]

    def run(self, which: int, argv) -> bytes:
        """Run ``argv`` on connection ``which`` of both; assert equal replies; return them."""
        argv = list(argv)
        theirs = self.theirs[which].call(argv)
        ours = to_resp(self.ours[which].execute(list(argv)))
        self.case.assertEqual(ours, theirs, argv)
        return theirs

    def admin(self, *argv) -> bytes:
        """Run on the first (admin) connection."""
        return self.run(0, argv)

    def user(self, *argv) -> bytes:
        """Run on the second (user) connection."""
        return self.run(1, argv)


class SetUserTests(SynchronousTestCase):
    """ACL SETUSER's modifiers and errors match Redis's."""

    def setUp(self):
        self.pair = Pair(self)

    def test_errors(self):
        """Every refused modifier gets Redis's error text, and nothing is applied."""
        admin = self.pair.admin
        for ops in ([b"foo"], [b"+nosuchcommand"], [b"-nosuch"], [b"+@nosuchcategory"],
                    [b"~*", b"~x"], [b"&*", b"&x"], [b"<notthere"], [b"#short"],
                    [b"!" + b"A" * 64], [b"(~x"], [b"+get|x|y"], [b"+config|"],
                    [b"+config|get|x"], [b"-config|nosuch"], [b"%X~x"], [b"~a b"],
                    [b"on", b">p", b"bogus"], [b"%RR~x"]):
            admin(b"ACL", b"SETUSER", b"u", *ops)
        admin(b"ACL", b"SETUSER", b"with space")
        admin(b"ACL", b"USERS")
        admin(b"ACL", b"LIST")

    def test_simple_users_described(self):
        """ACL LIST and GETUSER describe users as Redis does."""
        admin = self.pair.admin
        for ops in ([], [b"reset"], [b"on", b">p", b">q", b"<q", b"~app:*", b"%R~r:*",
                                     b"%W~w:*", b"%R~w:*", b"&ch*", b"+get"],
                    [b"+@all", b"-get", b"allkeys", b"allchannels", b"nopass"],
                    [b"resetkeys", b"resetchannels", b"-@all", b"+@read"],
                    [b"+config|get", b"resetpass"], [b"-config|get", b"+select|0", b"+select|1"],
                    [b"#" + b"ab" * 32, b"!" + b"ab" * 32, b"off", b"nocommands"],
                    [b"allcommands", b"-config"], [b"nocommands", b"+config"],
                    [b"skip-sanitize-payload"]):
            admin(b"ACL", b"SETUSER", b"u", *ops)
            admin(b"ACL", b"LIST")
            admin(b"ACL", b"GETUSER", b"u")
        admin(b"ACL", b"GETUSER", b"nosuch")
        admin(b"ACL", b"GETUSER", b"default")

    def test_deluser_users_whoami(self):
        """DELUSER counts, refuses default; USERS sorts; WHOAMI names the user."""
        admin = self.pair.admin
        for name in (b"zed", b"alice", b"bob"):
            admin(b"ACL", b"SETUSER", name, b"on", b"nopass", b"+@all")
        admin(b"ACL", b"USERS")
        admin(b"ACL", b"WHOAMI")
        admin(b"ACL", b"DELUSER", b"default", b"bob")
        admin(b"ACL", b"DELUSER", b"bob", b"nosuch", b"zed")
        admin(b"ACL", b"USERS")
        self.pair.user(b"AUTH", b"alice", b"x")
        self.pair.user(b"ACL", b"WHOAMI")

    def test_subcommand_errors(self):
        """Arity and syntax errors of the subcommands are Redis's."""
        admin = self.pair.admin
        for argv in ([b"ACL"], [b"ACL", b"GETUSER"], [b"ACL", b"nosuch"],
                     [b"ACL", b"CAT", b"a", b"b"], [b"ACL", b"CAT", b"nosuch"],
                     [b"ACL", b"LOG", b"x"], [b"ACL", b"LOG", b"1", b"2"],
                     [b"ACL", b"GENPASS", b"0"], [b"ACL", b"GENPASS", b"5000"],
                     [b"ACL", b"GENPASS", b"x"], [b"ACL", b"LOAD"], [b"ACL", b"SAVE"],
                     [b"ACL", b"DRYRUN", b"nosuch", b"get", b"x"],
                     [b"ACL", b"DRYRUN", b"default", b"nosuch"],
                     [b"ACL", b"DRYRUN", b"default", b"get"],
                     [b"ACL", b"DRYRUN", b"default", b"get", b"x"],
                     [b"ACL", b"LIST", b"x"], [b"ACL", b"HELP"], [b"ACL", b"SETUSER"],
                     [b"ACL", b"CAT"], [b"CONFIG", b"SET", b"aclfile", b"/tmp/x"],
                     [b"CONFIG", b"GET", b"aclfile"], [b"CONFIG", b"GET", b"acllog-max-len"],
                     [b"CONFIG", b"GET", b"acl-pubsub-default"]):
            admin(*argv)

    def test_genpass_lengths(self):
        """GENPASS gives (bits + 3) / 4 hex characters."""
        session = self.pair.ours[0]
        for bits, length in ((None, 64), (b"1", 1), (b"5", 2), (b"4096", 1024)):
            argv = [b"ACL", b"GENPASS"] + ([bits] if bits else [])
            reply = session.execute(argv)
            self.assertEqual(len(reply), length)
            int(reply, 16)


class PermissionTests(SynchronousTestCase):
    """NOPERM errors, ACL LOG entries and DRYRUN answers match Redis's."""

    def setUp(self):
        self.pair = Pair(self)
        self.pair.admin(b"ACL", b"SETUSER", b"u", b"on", b">p", b"~app:*", b"%R~r:*",
                        b"%W~w:*", b"&news.*", b"+@read", b"+@write", b"+@pubsub",
                        b"-@dangerous", b"+acl|whoami", b"+multi", b"+exec")
        self.pair.user(b"AUTH", b"u", b"p")

    def test_commands_keys_channels(self):
        """Commands, keys (read/write) and channels outside the rules get NOPERM."""
        user = self.pair.user
        for argv in ([b"GET", b"app:1"], [b"SET", b"app:1", b"v"], [b"GET", b"x"],
                     [b"FLUSHALL"], [b"CONFIG", b"GET", b"x"], [b"GET", b"r:1"],
                     [b"SET", b"r:1", b"v"], [b"SET", b"w:1", b"v"], [b"GET", b"w:1"],
                     [b"SET", b"w:1", b"v", b"GET"], [b"APPEND", b"w:1", b"v"],
                     [b"MGET", b"app:1", b"r:1", b"w:1"], [b"MGET", b"app:1", b"r:1"],
                     [b"MSET", b"app:1", b"1", b"w:1", b"2"], [b"MSET", b"app:1", b"1", b"r:1",
                                                              b"2"],
                     [b"RENAME", b"app:1", b"x"], [b"RENAME", b"app:1", b"app:2"],
                     [b"COPY", b"r:1", b"w:2"], [b"COPY", b"w:1", b"app:3"],
                     [b"DEL", b"r:1"], [b"EXISTS", b"r:1", b"w:1"],
                     [b"PUBLISH", b"news.today", b"m"], [b"PUBLISH", b"sport", b"m"],
                     [b"ACL", b"WHOAMI"], [b"ACL", b"LIST"], [b"KEYS", b"*"],
                     [b"BITFIELD", b"r:1", b"GET", b"u8", b"0"],
                     [b"BITFIELD", b"r:1", b"SET", b"u8", b"0", b"1"],
                     [b"GETEX", b"w:1"], [b"SUBSTR", b"r:1", b"0", b"1"],
                     [b"PING"], [b"nosuchcommand"], [b"GET"]):
            user(*argv)

    def test_subscribe_channels(self):
        """SUBSCRIBE/PSUBSCRIBE to a channel outside the rules is refused."""
        user = self.pair.user
        user(b"SUBSCRIBE", b"sport")
        user(b"PSUBSCRIBE", b"news.*x")
        user(b"SSUBSCRIBE", b"sport")

    def test_log_entries(self):
        """ACL LOG groups repeated denials and names reason, context, object and user."""
        user = self.pair.user
        user(b"GET", b"x")
        user(b"GET", b"x")
        user(b"FLUSHALL")
        user(b"PUBLISH", b"sport", b"m")
        user(b"AUTH", b"u", b"wrong")
        user(b"MULTI")
        user(b"GET", b"y")
        user(b"EXEC")
        self.assertEqual(self._log(self.pair.theirs[0].call([b"ACL", b"LOG"])),
                         self._log(to_resp(self.pair.ours[0].execute([b"ACL", b"LOG"]))))
        self.pair.admin(b"ACL", b"LOG", b"RESET")
        self.pair.admin(b"ACL", b"LOG")

    def _log(self, raw: bytes) -> list:
        # Every field but the values of age-seconds and client-info (per-server).
        words = [line for line in raw.split(b"\r\n")
                 if line and line[:1] not in (b"$", b"*")]
        entries = [words[index:index + 14] for index in range(0, len(words), 14)]
        return [entry[:11] for entry in entries]

    def test_dryrun(self):
        """DRYRUN answers OK or the reason as a bulk string, as Redis does."""
        admin = self.pair.admin
        for argv in ([b"GET", b"app:1"], [b"GET", b"x"], [b"FLUSHALL"],
                     [b"PUBLISH", b"sport", b"m"], [b"SET", b"r:1", b"v"],
                     [b"CONFIG", b"GET", b"x"], [b"CONFIG", b"nosuch"]):
            admin(b"ACL", b"DRYRUN", b"u", *argv)

    def test_multi_and_exec(self):
        """A denied command dooms the transaction; rules changed before EXEC are enforced."""
        user, admin = self.pair.user, self.pair.admin
        user(b"MULTI")
        user(b"FLUSHALL")
        user(b"EXEC")
        user(b"MULTI")
        user(b"GET", b"app:1")
        admin(b"ACL", b"SETUSER", b"u", b"resetkeys")
        user(b"EXEC")

    def test_auth(self):
        """AUTH with wrong, unknown, disabled and nopass users answers as Redis."""
        admin, user = self.pair.admin, self.pair.user
        admin(b"ACL", b"SETUSER", b"off", b"off", b">p", b"+@all")
        admin(b"ACL", b"SETUSER", b"free", b"on", b"nopass", b"+@all")
        for argv in ([b"AUTH", b"off", b"p"], [b"AUTH", b"nosuch", b"p"],
                     [b"AUTH", b"free", b"anything"], [b"ACL", b"WHOAMI"],
                     [b"HELLO", b"2", b"AUTH", b"u", b"wrong"]):
            self.pair.ours[1].auth_penalty_until = 0.0
            user(*argv)
        self.pair.ours[1].auth_penalty_until = 0.0
        ours = self.pair.ours[1].execute([b"HELLO", b"2", b"AUTH", b"u", b"p"])
        self.assertIsInstance(ours, Pairs)
        self.assertTrue(self.pair.theirs[1].call([b"HELLO", b"2", b"AUTH", b"u", b"p"])
                        .startswith(b"*14\r\n"))
        user(b"ACL", b"WHOAMI")

    def test_deluser_disconnects(self):
        """Deleting a user closes its connections, which fall back to the default user."""
        session = self.pair.ours[1]
        self.pair.admin(b"ACL", b"DELUSER", b"u")
        self.assertTrue(session.closing)
        self.assertEqual(session.user.name, b"default")
        self.assertFalse(session.authenticated is True and session.user.name != b"default")


class SelectorTests(SynchronousTestCase):
    """Redis 7.0's selectors: a call is allowed when any selector allows it."""

    def setUp(self):
        self.pair = Pair(self)

    def test_selectors(self):
        """Selectors given in one or several arguments are described and enforced as Redis."""
        admin = self.pair.admin
        admin(b"ACL", b"SETUSER", b"s", b"on", b"nopass", b"+get", b"~a*",
              b"(+set ~b*)", b"(+get", b"%R~c*", b"&x)")
        admin(b"ACL", b"LIST")
        admin(b"ACL", b"GETUSER", b"s")
        for call in ([b"GET", b"a1"], [b"GET", b"b1"], [b"SET", b"b1", b"v"],
                     [b"SET", b"a1", b"v"], [b"GET", b"c1"], [b"PUBLISH", b"x", b"m"],
                     [b"DEL", b"a1"]):
            admin(b"ACL", b"DRYRUN", b"s", *call)
        self.pair.user(b"AUTH", b"s", b"p")
        self.pair.user(b"SET", b"a1", b"v")
        self.pair.user(b"SET", b"b1", b"v")
        admin(b"ACL", b"SETUSER", b"s", b"(bogus)")
        admin(b"ACL", b"SETUSER", b"s", b"clearselectors")
        admin(b"ACL", b"LIST")


class RedisOnlyCommandTests(SynchronousTestCase):
    """Rules and DRYRUN name Redis commands kvstore lacks; SORT's BY and GET need full
    read access."""

    def setUp(self):
        self.pair = Pair(self)

    def test_rules_for_commands_kvstore_lacks(self):
        """+eval, -@scripting, +xadd are accepted and DRYRUN checks them, as in Redis."""
        admin = self.pair.admin
        admin(b"ACL", b"SETUSER", b"one", b"+eval")
        admin(b"ACL", b"GETUSER", b"one")  # (with more, the order is Redis's hash order)
        admin(b"ACL", b"SETUSER", b"u", b"on", b"nopass", b"+eval", b"+xlen", b"%R~r*",
              b"+pfcount", b"+migrate")
        for argv in ([b"EVAL", b"return 1", b"0"], [b"XLEN", b"r1"], [b"XLEN", b"w1"],
                     [b"PFCOUNT", b"r1", b"w"], [b"MIGRATE", b"h", b"1", b"r", b"0", b"5"],
                     [b"XADD", b"r", b"*", b"f", b"v"], [b"XLEN"], [b"NOSUCH"]):
            admin(b"ACL", b"DRYRUN", b"u", *argv)

    def test_sort_by_and_get_need_full_read_access(self):
        """SORT BY a pattern and GET are refused without read access to every key."""
        admin, user = self.pair.admin, self.pair.user
        admin(b"RPUSH", b"mylist", b"1")
        admin(b"SET", b"v1", b"1")
        for rules in ([b"(+sort ~mylist)"], [b"(+sort ~mylist ~v*)"],
                      [b"(+sort ~mylist %W~*)"], [b"(+sort ~mylist %R~*)"]):
            admin(b"ACL", b"SETUSER", b"s", b"reset", b"on", b"nopass", *rules)
            user(b"AUTH", b"s", b"x")
            user(b"SORT", b"mylist", b"BY", b"v*")
            user(b"SORT", b"mylist", b"BY", b"nosort")
            user(b"SORT", b"mylist", b"GET", b"v*")
