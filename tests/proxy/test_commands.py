"""Tests for kvtwist.proxy.commands: the keys each proxied write touches, and coverage."""

from __future__ import annotations

import socket

from twisted.trial.unittest import SynchronousTestCase

from kvtwist.proxy.commands import (
    ADMIN, ALL, CONTAINERS, EVERYWHERE, LOCAL, READ_ONLY, REFUSED, STREAM_READS, WRITES, admin,
    admin_keys, all_keys, blocks, scope)
from kvtwist.wire import respreply
from tests.redisref import start_redis_or_skip


class CommandTableTests(SynchronousTestCase):
    """What the proxy invalidates for each kind of write."""

    def test_single_key_writes(self) -> None:
        """SET, INCR and EXPIRE touch their first argument only."""
        for name in (b"SET", b"INCR", b"EXPIRE", b"PUT"):
            self.assertEqual(WRITES[name]([name, b"k", b"v"]), [b"k"])

    def test_multi_key_writes(self) -> None:
        """DEL touches every key, MSET every other argument, RENAME both names."""
        self.assertEqual(WRITES[b"DEL"]([b"DEL", b"a", b"b"]), [b"a", b"b"])
        self.assertEqual(WRITES[b"REMOVE"]([b"REMOVE", b"a"]), [b"a"])
        self.assertEqual(WRITES[b"MSET"]([b"MSET", b"a", b"1", b"b", b"2"]), [b"a", b"b"])
        self.assertEqual(WRITES[b"RENAME"]([b"RENAME", b"a", b"b"]), [b"a", b"b"])

    def test_option_keys(self) -> None:
        """SORT and GEORADIUS touch the key after STORE; LMPOP the keys numkeys counts;
        MIGRATE its key or the keys after KEYS; malformed ones touch nothing."""
        self.assertEqual(WRITES[b"SORT"]([b"SORT", b"s"]), [])
        self.assertEqual(WRITES[b"SORT"]([b"SORT", b"s", b"store", b"d"]), [b"d"])
        self.assertEqual(WRITES[b"LMPOP"]([b"LMPOP", b"2", b"a", b"b", b"LEFT"]), [b"a", b"b"])
        self.assertEqual(WRITES[b"ZMPOP"]([b"ZMPOP", b"x", b"a"]), [])
        self.assertEqual(WRITES[b"MIGRATE"]([b"MIGRATE", b"h", b"1", b"k", b"0", b"5"]), [b"k"])

    def test_everything(self) -> None:
        """Scripts, and the server-wide flushes, touch every key."""
        for name in (b"EVAL", b"EVALSHA", b"FCALL"):
            self.assertIs(WRITES[name]([name]), ALL)
        for name in (b"FLUSH", b"FLUSHDB", b"FLUSHALL", b"SWAPDB", b"REPLICAOF"):
            self.assertIs(admin_keys(name, [name]), ALL)
        self.assertEqual(admin_keys(b"CONFIG", [b"CONFIG", b"SET", b"a", b"b"]), [])
        self.assertIs(all_keys([b"SOMETHING", b"x"]), ALL)

    def test_admin_names(self) -> None:
        """Server-wide commands are named with their subcommand; inspecting ones are not."""
        self.assertEqual(admin(b"CONFIG", [b"config", b"set", b"x", b"1"]), "CONFIG SET")
        self.assertEqual(admin(b"ACL", [b"ACL", b"log", b"reset"]), "ACL LOG")
        self.assertEqual(admin(b"SHUTDOWN", [b"shutdown"]), "SHUTDOWN")
        for argv in ([b"CONFIG", b"GET", b"x"], [b"ACL", b"LOG"], [b"CONFIG"], [b"GET", b"k"]):
            self.assertEqual(admin(argv[0].upper(), argv), "")

    def test_blocking_stream_reads(self) -> None:
        """XREAD blocks with BLOCK before STREAMS only (a stream may be named BLOCK)."""
        self.assertTrue(blocks([b"XREAD", b"COUNT", b"1", b"block", b"0", b"STREAMS", b"s"]))
        self.assertFalse(blocks([b"XREAD", b"STREAMS", b"BLOCK", b"0"]))

    def test_tables_are_disjoint(self) -> None:
        """No command is in two of the tables."""
        tables = [set(WRITES), READ_ONLY, REFUSED, STREAM_READS, LOCAL, set(ADMIN),
                  set(CONTAINERS)]
        for index, table in enumerate(tables):
            for other in tables[index + 1:]:
                self.assertEqual(table & other, set())


def redis_commands() -> list:
    """Return redis-server's COMMAND reply: [name, arity, flags, first, last, step, ...]."""
    server = start_redis_or_skip()
    try:
        with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
            sock.sendall(respreply.encode_command([b"COMMAND"]))
            parser = respreply.ReplyParser()
            while True:
                parser.feed(sock.recv(1 << 20))
                reply = parser.next_reply()
                if reply is not respreply.NEED_MORE:
                    return reply
    finally:
        server.stop()


class CoverageTests(SynchronousTestCase):
    """Every command of redis-server is known to kvproxy, and every write as a write."""

    def test_every_redis_command_is_known(self) -> None:
        """Each command COMMAND lists is read-only, a write, refused, server-wide, or
        answered locally."""
        known = (set(WRITES) | READ_ONLY | REFUSED | STREAM_READS | LOCAL | set(ADMIN)
                 | set(CONTAINERS))
        names = [entry[0].upper() for entry in redis_commands()]
        self.assertGreater(len(names), 200)
        self.assertEqual(sorted(name for name in names if name not in known), [])

    def test_every_redis_write_is_a_write(self) -> None:
        """A command Redis flags write is never forwarded as if it changed nothing."""
        forwarded = READ_ONLY | LOCAL
        writes = [entry[0].upper() for entry in redis_commands()
                  if any(flag.text == b"write" for flag in entry[2])]
        self.assertEqual(sorted(name for name in writes if name in forwarded), [])


class ScopeTests(SynchronousTestCase):
    """``scope``: the (database, keys) a write in a client's database may change."""

    def test_keysInTheClientsDatabase(self) -> None:
        """An ordinary write's keys are those of the client's database."""
        argv = [b"SET", b"k", b"v"]
        self.assertEqual(scope(b"SET", argv, 3, WRITES[b"SET"](argv)), [(3, [b"k"])])

    def test_everything(self) -> None:
        """A script (ALL) may write any key of any database; so do FLUSHALL, DEBUG and
        REPLICAOF."""
        argv = [b"EVAL", b"return 1", b"0"]
        self.assertEqual(scope(b"EVAL", argv, 2, WRITES[b"EVAL"](argv)), EVERYWHERE)
        for name in (b"FLUSHALL", b"FLUSH", b"DEBUG", b"REPLICAOF", b"SLAVEOF"):
            self.assertEqual(scope(name, [name], 2, admin_keys(name, [name])), EVERYWHERE)

    def test_flushdb(self) -> None:
        """FLUSHDB changes every key of the client's database only."""
        self.assertEqual(scope(b"FLUSHDB", [b"FLUSHDB"], 4, ALL), [(4, ALL)])
        self.assertEqual(scope(b"FLUSHDB", [b"FLUSHDB", b"ASYNC"], 0, ALL), [(0, ALL)])

    def test_swapdb(self) -> None:
        """SWAPDB a b changes both databases wholesale; unparsable indexes, everything."""
        self.assertEqual(scope(b"SWAPDB", [b"SWAPDB", b"1", b"7"], 0, ALL),
                         [(1, ALL), (7, ALL)])
        self.assertEqual(scope(b"SWAPDB", [b"SWAPDB", b"x", b"7"], 0, ALL), EVERYWHERE)
        self.assertEqual(scope(b"SWAPDB", [b"SWAPDB", b"1"], 0, ALL), EVERYWHERE)

    def test_move(self) -> None:
        """MOVE key n changes the key in the client's database and in database n."""
        argv = [b"MOVE", b"k", b"5"]
        self.assertEqual(scope(b"MOVE", argv, 2, WRITES[b"MOVE"](argv)),
                         [(2, [b"k"]), (5, [b"k"])])
        argv = [b"MOVE", b"k", b"x"]
        self.assertEqual(scope(b"MOVE", argv, 2, WRITES[b"MOVE"](argv)), [(2, [b"k"])])

    def test_copy(self) -> None:
        """COPY src dst changes dst in the client's database, or in database n with DB n."""
        argv = [b"COPY", b"s", b"d"]
        self.assertEqual(scope(b"COPY", argv, 2, WRITES[b"COPY"](argv)), [(2, [b"s", b"d"])])
        argv = [b"COPY", b"s", b"d", b"REPLACE", b"db", b"9"]
        self.assertEqual(scope(b"COPY", argv, 2, WRITES[b"COPY"](argv)),
                         [(2, [b"s"]), (9, [b"d"])])
        argv = [b"COPY", b"s", b"d", b"DB", b"nine"]
        self.assertEqual(scope(b"COPY", argv, 2, WRITES[b"COPY"](argv)), [(2, [b"s", b"d"])])
