"""Tests for kvtwist.engine.clients: CLIENT's subcommands and MONITOR."""

from __future__ import annotations

from kvtwist.engine import clients
from kvtwist.engine.hooks import INTERRUPT
from twisted.trial.unittest import SynchronousTestCase

from kvtwist.wire.replies import NO_REPLY, OK, Pairs
from tests.helpers import SessionMixin


class ClientMixin(SessionMixin):
    peer = "127.0.0.1:4000"

    def other(self, peer="127.0.0.1:4001"):
        """Return a second client's Session on the same store."""
        return self.store.new_session(peer)


class ClientTests(ClientMixin, SynchronousTestCase):
    def test_names(self):
        """CLIENT SETNAME/GETNAME store a name; spaces are refused; empty clears it."""
        self.assertIsNone(self.call("client", "getname"))
        self.assertEqual(self.call("client", "setname", "worker"), OK)
        self.assertEqual(self.call("client", "getname"), b"worker")
        self.assertEqual(self.error("client", "setname", "a b"),
                         "ERR Client names cannot contain spaces, newlines or special characters.")
        self.call("client", "setname", "")
        self.assertIsNone(self.call("client", "getname"))

    def test_id_info_list(self):
        """CLIENT ID, INFO and LIST describe sessions one line each."""
        other = self.store.new_session("10.0.0.1:1")
        other.execute([b"client", b"setname", b"two"])
        self.assertEqual(self.call("client", "id"), self.session.id)
        line = self.call("client", "info")
        self.assertTrue(line.startswith(b"id=%d addr=127.0.0.1:4000 " % self.session.id))
        self.assertTrue(line.endswith(b"\n"))
        listing = self.call("client", "list").splitlines()
        self.assertEqual(len(listing), 2)
        self.assertIn(b"name=two", listing[1])
        self.assertEqual(len(self.call("client", "list", "id", str(other.id)).splitlines()), 1)
        self.assertEqual(self.call("client", "list", "type", "pubsub"), b"")
        self.assertEqual(self.error("client", "list", "bogus"), "ERR syntax error")

    def test_setinfo_and_flags(self):
        """CLIENT SETINFO records library details; NO-EVICT and NO-TOUCH accept ON/OFF."""
        self.assertEqual(self.call("client", "setinfo", "LIB-NAME", "redis-py"), OK)
        self.assertEqual(self.call("client", "setinfo", "lib-ver", "5.0"), OK)
        self.assertIn(b"lib-name=redis-py lib-ver=5.0", self.call("client", "info"))
        self.assertEqual(self.error("client", "setinfo", "color", "x"),
                         "ERR Unrecognized option 'color'")
        self.assertEqual(self.call("client", "no-evict", "on"), OK)
        self.assertEqual(self.call("client", "no-touch", "off"), OK)
        self.assertEqual(self.error("client", "no-evict", "maybe"), "ERR syntax error")

    def test_errors(self):
        """CLIENT errors match Redis for unknown subcommands and arity."""
        self.assertEqual(self.error("CLIENT", "xx"),
                         "ERR unknown subcommand 'xx'. Try CLIENT HELP.")
        self.assertEqual(self.error("client"),
                         "ERR wrong number of arguments for 'client' command")
        self.assertEqual(self.error("client", "SETNAME"),
                         "ERR wrong number of arguments for 'client|setname' command")

    def test_extensible(self):
        """A subcommand added to CLIENT_SUBCOMMANDS is dispatched."""
        extended = dict(clients.CLIENT_SUBCOMMANDS)
        extended[b"tracking"] = (-3, lambda session, argv: OK)
        self.patch(clients, "CLIENT_SUBCOMMANDS", extended)
        self.assertEqual(self.call("client", "TRACKING", "on"), OK)


class ListTests(ClientMixin, SynchronousTestCase):
    def test_redis_format(self):
        """CLIENT LIST has Redis 7.0's fields in order, with cmd naming the subcommand."""
        self.session.laddr = "127.0.0.1:6379"
        self.session.fd = 9
        line = self.call("client", "list")
        self.assertEqual(
            line,
            b"id=1 addr=127.0.0.1:4000 laddr=127.0.0.1:6379 fd=9 name= age=0 idle=0 flags=N "
            b"db=0 sub=0 psub=0 ssub=0 multi=-1 qbuf=26 qbuf-free=20448 argv-mem=10 "
            b"multi-mem=0 rbs=1024 rbp=1024 obl=0 oll=0 omem=0 tot-mem=2084 events=r "
            b"cmd=client|list user=default redir=-1 resp=2 lib-name= lib-ver=\n")

    def test_age_idle_flags(self):
        """age and idle count seconds; flags show MULTI (x) and a pending multi count."""
        other = self.other()
        self.clock.advance(5)
        other.last_interaction = self.clock.seconds() - 2
        other.execute([b"multi"])
        other.execute([b"get", b"k"])
        line = self.call("client", "list", "id", str(other.id))
        self.assertIn(b" age=5 idle=2 flags=x ", line)
        self.assertIn(b" multi=1 ", line)
        self.assertIn(b" cmd=multi ", line)

    def test_type_filter(self):
        """TYPE normal lists plain clients; pubsub lists subscribers; bad types are refused."""
        other = self.other()
        other.push = lambda reply: None
        other.execute([b"subscribe", b"ch"])
        self.assertEqual(len(self.call("client", "list", "type", "normal").splitlines()), 1)
        pubsub = self.call("client", "list", "type", "pubsub")
        self.assertIn(b"flags=P ", pubsub)
        self.assertIn(b" sub=1 ", pubsub)
        self.assertEqual(self.error("client", "list", "type", "x"), "ERR Unknown client type 'x'")

    def test_id_not_integer(self):
        """A non-integer ID is Redis's Invalid client ID error."""
        self.assertEqual(self.error("client", "list", "id", "x"), "ERR Invalid client ID")


class KillTests(ClientMixin, SynchronousTestCase):
    def setUp(self):
        ClientMixin.setUp(self)
        self.closed = []
        self.victim = self.other()
        self.victim.disconnect = lambda: self.closed.append(self.victim.id)

    def test_old_form(self):
        """CLIENT KILL addr closes that client (OK) or answers No such client."""
        self.assertEqual(self.call("client", "kill", "127.0.0.1:4001"), OK)
        self.assertEqual(self.closed, [self.victim.id])
        self.assertEqual(self.error("client", "kill", "1.1.1.1:1"), "ERR No such client")

    def test_old_form_kills_self(self):
        """The old form may name the caller, whose connection closes after the reply."""
        self.assertEqual(self.call("client", "kill", "127.0.0.1:4000"), OK)
        self.assertIs(self.session.closing, True)

    def test_filters(self):
        """ID, LADDR, TYPE, USER filters count the clients killed; SKIPME spares the caller."""
        self.victim.laddr = "127.0.0.1:7000"
        self.assertEqual(self.call("client", "kill", "laddr", "127.0.0.1:7001"), 0)
        self.assertEqual(self.call("client", "kill", "id", str(self.victim.id),
                                   "laddr", "127.0.0.1:7000", "user", "default"), 1)
        self.assertEqual(self.call("client", "kill", "type", "normal"), 0)  # gone already
        self.assertFalse(self.session.closing)
        self.assertEqual(self.call("client", "kill", "skipme", "no"), 1)  # the killed are gone
        self.assertIs(self.session.closing, True)

    def test_errors(self):
        """Bad options get Redis's errors."""
        self.assertEqual(self.error("client", "kill"),
                         "ERR wrong number of arguments for 'client|kill' command")
        self.assertEqual(self.error("client", "kill", "id", "10", "wrong_arg"), "ERR syntax error")
        for bad in ("str", "-1", "0"):
            self.assertEqual(self.error("client", "kill", "id", bad),
                             "ERR client-id should be greater than 0")
        self.assertEqual(self.error("client", "kill", "type", "wrong_type"),
                         "ERR Unknown client type 'wrong_type'")
        self.assertEqual(self.error("client", "kill", "user", "wrong_user"),
                         "ERR No such user 'wrong_user'")
        self.assertEqual(self.error("client", "kill", "skipme", "yes_or_no"), "ERR syntax error")


class ReplyPauseTests(ClientMixin, SynchronousTestCase):
    def test_reply_modes(self):
        """REPLY OFF and SKIP answer nothing and interrupt; ON answers OK; bad modes refused."""
        self.assertIs(self.call("client", "reply", "off"), NO_REPLY)
        self.assertEqual(self.session.reply_mode, b"off")
        self.assertEqual(self.session.closing, INTERRUPT)
        self.session.closing = False
        self.call("client", "reply", "skip")
        self.assertEqual(self.session.reply_mode, b"off")  # SKIP does not end OFF
        self.assertEqual(self.call("client", "reply", "on"), OK)
        self.call("client", "reply", "skip")
        self.assertEqual(self.session.reply_mode, b"skip")
        self.assertEqual(self.error("client", "reply", "maybe"), "ERR syntax error")

    def test_pause(self):
        """PAUSE records mode and end; WRITE holds writes and not reads; UNPAUSE ends it."""
        self.assertEqual(self.call("client", "pause", "1000", "write"), OK)
        self.assertEqual((self.store.pause_mode, self.store.pause_end),
                         (b"write", self.clock.seconds() + 1.0))
        applies = clients.pause_applies
        self.assertTrue(applies(self.store, self.session, [b"set", b"k", b"v"]))
        self.assertTrue(applies(self.store, self.session, [b"publish", b"c", b"m"]))
        self.assertFalse(applies(self.store, self.session, [b"get", b"k"]))
        self.clock.advance(1.0)
        self.assertFalse(applies(self.store, self.session, [b"set", b"k", b"v"]))
        self.assertIsNone(self.store.pause_mode)
        self.call("client", "pause", "1000")
        self.assertTrue(applies(self.store, self.session, [b"get", b"k"]))
        self.assertEqual(self.call("client", "unpause"), OK)
        self.assertIsNone(self.store.pause_mode)

    def test_pause_errors(self):
        """Bad timeouts and modes get Redis's errors."""
        self.assertEqual(self.error("client", "pause", "x"),
                         "ERR timeout is not an integer or out of range")
        self.assertEqual(self.error("client", "pause", "-1"), "ERR timeout is negative")
        self.assertEqual(self.error("client", "pause", "10", "read"),
                         "ERR CLIENT PAUSE mode must be WRITE or ALL")

    def test_small_ones(self):
        """UNBLOCK answers 0, GETREDIR -1 untracked, NO-TOUCH sets session.no_touch."""
        self.assertEqual(self.call("client", "unblock", "1"), 0)
        self.assertEqual(self.call("client", "unblock", "1", "error"), 0)
        self.assertEqual(self.error("client", "unblock", "1", "x"),
                         "ERR CLIENT UNBLOCK reason should be TIMEOUT or ERROR")
        self.assertEqual(self.call("client", "getredir"), -1)
        self.assertEqual(self.call("client", "no-touch", "on"), OK)
        self.assertTrue(self.session.no_touch)
        self.assertEqual(self.call("client", "trackinginfo"),
                         Pairs([(b"flags", [b"off"]), (b"redirect", -1), (b"prefixes", [])]))

    def test_unblock_hook(self):
        """A blocking family's store.unblock decides whether UNBLOCK woke someone."""
        other = self.other()
        self.store.unblock = lambda target, error: target is other and error
        self.assertEqual(self.call("client", "unblock", str(other.id), "error"), 1)

    def test_tracking_getredir(self):
        """With tracking on, GETREDIR and TRACKINGINFO report the redirect."""
        other = self.other()
        self.call("client", "tracking", "on", "bcast", "redirect", str(other.id))
        self.assertEqual(self.call("client", "getredir"), other.id)
        self.assertIn(b"flags=tB", self.call("client", "info"))


class DifferentialTests(SynchronousTestCase):
    """CLIENT's replies and errors are redis-server 7.0's exact RESP bytes."""

    COMMANDS = [
        [b"client", b"help"], [b"client", b"bogus"], [b"client"], [b"client", b"getname"],
        [b"client", b"setname", b"a b"], [b"client", b"setname", b"me"], [b"client", b"getname"],
        [b"client", b"list", b"type", b"x"], [b"client", b"list", b"id", b"x"],
        [b"client", b"list", b"bogus"], [b"client", b"list", b"id", b"99999"],
        [b"client", b"list", b"type", b"pubsub"], [b"client", b"kill"],
        [b"client", b"kill", b"id", b"10", b"wrong_arg"], [b"client", b"kill", b"id", b"str"],
        [b"client", b"kill", b"id", b"0"], [b"client", b"kill", b"type", b"wrong_type"],
        [b"client", b"kill", b"user", b"wrong_user"], [b"client", b"kill", b"skipme", b"x"],
        [b"client", b"kill", b"1.1.1.1:1"], [b"client", b"kill", b"id", b"99999"],
        [b"client", b"reply", b"maybe"], [b"client", b"pause"], [b"client", b"pause", b"x"],
        [b"client", b"pause", b"-1"], [b"client", b"pause", b"10", b"read"],
        [b"client", b"pause", b"10", b"write", b"x"], [b"client", b"unpause"],
        [b"client", b"unblock", b"1"], [b"client", b"unblock", b"x"],
        [b"client", b"unblock", b"1", b"x"], [b"client", b"unblock", b"1", b"timeout", b"x"],
        [b"client", b"getredir"], [b"client", b"trackinginfo"], [b"client", b"no-evict", b"x"],
        [b"client", b"no-evict", b"on"], [b"client", b"reply", b"on"],
    ]

    def test_same_bytes(self):
        """Each command's reply is byte-identical to redis-server's."""
        from twisted.internet.task import Clock

        from kvtwist.engine.store import Store
        from kvtwist.wire.replies import to_resp
        from tests.redisref import RawConnection, start_redis_or_skip

        server = start_redis_or_skip()
        self.addCleanup(server.stop)
        conn = RawConnection(server.port)
        self.addCleanup(conn.close)
        session = Store(Clock()).new_session("127.0.0.1:1")
        for argv in self.COMMANDS:
            self.assertEqual(to_resp(session.execute(argv)), conn.call(argv), argv)
