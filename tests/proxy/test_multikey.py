"""Tests for kvtwist.proxy.multikey: commands split per server and keyless commands merged."""

from __future__ import annotations

from twisted.internet.defer import Deferred

from kvtwist.wire.replies import OK, Error
from tests.proxy.fakes import ShardedCase, result_of


class SplitTests(ShardedCase):
    """MGET, MSET, DEL, EXISTS are split per server and merged in the client's order."""

    def keys(self):
        return [self.key_on(0), self.key_on(1), self.key_on(2)]

    def test_mget_merged_in_order(self) -> None:
        """An MGET over three servers sends one MGET per server; the values come back in the
        client's order."""
        a, b, c = self.keys()
        d = self.session.execute([b"MGET", c, a, b, a])
        self.assertIsInstance(d, Deferred)
        sent = {index: backend.sent for index, backend in enumerate(self.backends)}
        self.assertEqual(sent[0][0][0], [b"MGET", a])
        self.assertEqual(sent[1][0][0], [b"MGET", b])
        self.assertEqual(sent[2][0][0], [b"MGET", c])
        self.backends[1].answer(0, [b"vb"])
        self.backends[0].answer(0, [b"va"])
        self.assertFalse(d.called)
        self.backends[2].answer(0, [None])
        self.assertEqual(result_of(d), [None, b"va", b"vb", b"va"])

    def test_mget_error_names_the_server(self) -> None:
        """When one server fails, MGET answers its error, which names it."""
        from kvtwist.proxy.store import BackendUnavailable
        a, b, _ = self.keys()
        d = self.session.execute([b"MGET", a, b])
        self.backends[0].answer(0, [b"1"])
        self.backends[1].fail(0, BackendUnavailable("cannot connect to b:2"))
        reply = result_of(d)
        self.assertIsInstance(reply, Error)
        self.assertIn("server b:2", reply.message)

    def test_mset_ok_when_every_part_is(self) -> None:
        """MSET answers OK only when every server's part did; else the first error."""
        a, b, _ = self.keys()
        d = self.session.execute([b"MSET", a, b"1", b, b"2"])
        self.assertEqual(self.backends[0].sent[0][0], [b"MSET", a, b"1"])
        self.assertEqual(self.backends[1].sent[0][0], [b"MSET", b, b"2"])
        self.backends[0].answer(0, OK)
        self.backends[1].answer(0, OK)
        self.assertEqual(result_of(d), OK)
        d = self.session.execute([b"MSET", a, b"1", b, b"2"])
        self.backends[0].answer(1, OK)
        self.backends[1].answer(1, Error("OOM command not allowed"))
        self.assertEqual(result_of(d), Error("OOM command not allowed"))
        self.assertEqual(self.session.execute([b"MSET", a, b"1", b]).message,
                         "ERR wrong number of arguments for 'mset' command")

    def test_counts_summed(self) -> None:
        """DEL and EXISTS add the servers' counts; DEL drops its keys from the cache."""
        a, b, c = self.keys()
        self.cache.put(a, b"x")
        d = self.session.execute([b"DEL", a, b, c])
        self.assertNotIn(a, self.cache)
        for backend, count in zip(self.backends, (1, 0, 1)):
            backend.answer(0, count)
        self.assertEqual(result_of(d), 2)
        d = self.session.execute([b"EXISTS", a, a, c])
        self.assertEqual(self.backends[0].sent[1][0], [b"EXISTS", a, a])
        self.backends[0].answer(1, 2)
        self.backends[2].answer(1, 1)
        self.assertEqual(result_of(d), 3)

    def test_one_server_is_not_split(self) -> None:
        """Keys sharing a hash tag go as one command to their server."""
        d = self.session.execute([b"DEL", b"{u}1", b"{u}2"])
        where = self.pool.distribution.index(b"u")
        self.assertEqual(self.backends[where].sent[0][0], [b"DEL", b"{u}1", b"{u}2"])
        self.backends[where].answer(0, 2)
        self.assertEqual(result_of(d), 2)


class KeylessTests(ShardedCase):
    """Keyless commands: answered locally, merged over the servers, or refused."""

    def test_dbsize_summed_keys_concatenated(self) -> None:
        """DBSIZE adds the servers' sizes; KEYS concatenates their lists."""
        d = self.session.execute([b"DBSIZE"])
        for index, backend in enumerate(self.backends):
            backend.answer(0, index + 1)
        self.assertEqual(result_of(d), 6)
        d = self.session.execute([b"KEYS", b"*"])
        for index, backend in enumerate(self.backends):
            backend.answer(1, [b"k%d" % index])
        self.assertEqual(result_of(d), [b"k0", b"k1", b"k2"])

    def test_scan_walks_the_servers(self) -> None:
        """SCAN's cursor encodes the server: each server is scanned to its end in turn."""
        d = self.session.execute([b"SCAN", b"0", b"COUNT", b"5"])
        self.assertEqual(self.backends[0].sent[0][0], [b"SCAN", b"0", b"COUNT", b"5"])
        self.backends[0].answer(0, [b"7", [b"x"]])
        self.assertEqual(result_of(d), [b"21", [b"x"]])  # 7 x 3 + 0
        d = self.session.execute([b"SCAN", b"21"])
        self.assertEqual(self.backends[0].sent[1][0], [b"SCAN", b"7"])
        self.backends[0].answer(1, [b"0", []])
        self.assertEqual(result_of(d), [b"1", []])  # server 1 from its start
        d = self.session.execute([b"SCAN", b"1"])
        self.assertEqual(self.backends[1].sent[0][0], [b"SCAN", b"0"])
        self.backends[1].answer(0, [b"0", [b"y"]])
        self.assertEqual(result_of(d), [b"2", [b"y"]])
        d = self.session.execute([b"SCAN", b"2"])
        self.backends[2].answer(0, [b"0", [b"z"]])
        self.assertEqual(result_of(d), [b"0", [b"z"]])
        self.assertEqual(self.session.execute([b"SCAN", b"x"]).message, "ERR invalid cursor")

    def test_echo_ping_local(self) -> None:
        """ECHO and PING are answered by kvproxy."""
        self.assertEqual(self.session.execute([b"ECHO", b"hi"]), b"hi")
        self.assertEqual(self.session.execute([b"PING"]).text, b"PONG")
        self.assertEqual([backend.sent for backend in self.backends], [[], [], []])

    def test_flushall_needs_allow_admin_and_goes_everywhere(self) -> None:
        """FLUSHALL is refused without --allow-admin; with it every server gets it."""
        self.assertIn("--allow-admin", self.session.execute([b"FLUSHALL"]).message)
        self.proxy.allow_admin = True
        self.cache.put(b"k", b"v")
        d = self.session.execute([b"FLUSHALL"])
        self.assertNotIn(b"k", self.cache)
        for backend in self.backends:
            self.assertEqual(backend.sent[0][0], [b"FLUSHALL"])
            backend.answer(0, OK)
        self.assertEqual(result_of(d), OK)

    def test_other_keyless_to_the_first_server(self) -> None:
        """A keyless command with no merged meaning (TIME) goes to the first live server."""
        d = self.session.execute([b"TIME"])
        self.backends[0].answer(0, [b"1", b"2"])
        self.assertEqual(result_of(d), [b"1", b"2"])

    def test_select_on_every_server(self) -> None:
        """SELECT goes to every server; the client's database changes on OK."""
        d = self.session.execute([b"SELECT", b"2"])
        for backend in self.backends:
            self.assertEqual(backend.sent[0][0], [b"SELECT", b"2"])
            backend.answer(0, OK)
        self.assertEqual(result_of(d), OK)
        self.assertEqual(self.session.db, 2)
