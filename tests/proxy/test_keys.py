"""Tests for kvtwist.proxy.keys: each command's keys, as redis-server's COMMAND GETKEYS."""

from __future__ import annotations

import socket

from twisted.trial.unittest import SynchronousTestCase

from kvtwist.proxy.keys import KEYS, command_keys
from kvtwist.wire import respreply
from tests.proxy.test_commands import redis_commands
from tests.redisref import start_redis_or_skip

# Commands with keys, with arguments Redis accepts, covering every key-position form.
SAMPLES = [
    [b"GET", b"a"], [b"SET", b"a", b"1", b"EX", b"5"], [b"MGET", b"a", b"b", b"c"],
    [b"MSET", b"a", b"1", b"b", b"2"], [b"DEL", b"a", b"b"], [b"RENAME", b"a", b"b"],
    [b"BITOP", b"AND", b"d", b"a", b"b"], [b"BLPOP", b"a", b"b", b"0"],
    [b"EVAL", b"return 1", b"2", b"a", b"b", b"x"], [b"FCALL_RO", b"f", b"1", b"a", b"x"],
    [b"ZUNIONSTORE", b"d", b"2", b"a", b"b", b"WEIGHTS", b"1", b"2"],
    [b"ZINTER", b"2", b"a", b"b"], [b"SINTERCARD", b"2", b"a", b"b", b"LIMIT", b"1"],
    [b"LMPOP", b"2", b"a", b"b", b"LEFT"], [b"BZMPOP", b"0", b"2", b"a", b"b", b"MIN"],
    [b"SORT", b"a", b"BY", b"w", b"STORE", b"d"],
    [b"GEORADIUS", b"a", b"0", b"0", b"1", b"km", b"STORE", b"d"],
    [b"XREAD", b"COUNT", b"2", b"STREAMS", b"a", b"b", b"0", b"0"],
    [b"XREADGROUP", b"GROUP", b"g", b"c", b"STREAMS", b"a", b"0"],
    [b"OBJECT", b"ENCODING", b"a"], [b"MEMORY", b"USAGE", b"a"],
    [b"XINFO", b"STREAM", b"a"], [b"XGROUP", b"CREATE", b"a", b"g", b"$"],
    [b"COPY", b"a", b"b", b"DB", b"1"], [b"LCS", b"a", b"b"],
    [b"MIGRATE", b"h", b"1", b"", b"0", b"5", b"KEYS", b"a", b"b"],
]


class CommandKeysTests(SynchronousTestCase):
    """command_keys agrees with Redis 7.0."""

    def test_samples_match_getkeys(self) -> None:
        """For each sample, the keys are those COMMAND GETKEYS names."""
        server = start_redis_or_skip()
        self.addCleanup(server.stop)
        with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
            parser = respreply.ReplyParser()
            for argv in SAMPLES:
                sock.sendall(respreply.encode_command([b"COMMAND", b"GETKEYS"] + argv))
                reply = respreply.NEED_MORE
                while reply is respreply.NEED_MORE:
                    parser.feed(sock.recv(1 << 16))
                    reply = parser.next_reply()
                self.assertEqual(command_keys(argv[0], argv), reply, argv)

    def test_every_command_with_keys_is_known(self) -> None:
        """Every Redis command with key positions (or movable keys) has an extractor."""
        missing = []
        for entry in redis_commands():
            name = entry[0].upper()
            movable = any(flag.text == b"movablekeys" for flag in entry[2])
            if (entry[3] or movable) and name not in KEYS:
                missing.append(name)
        self.assertEqual(missing, [])

    def test_keyless(self) -> None:
        """A command with no keys (or unknown) has none."""
        self.assertEqual(command_keys(b"PING", [b"PING"]), [])
        self.assertEqual(command_keys(b"NOPE", [b"NOPE", b"x"]), [])
        self.assertEqual(command_keys(b"XGROUP", [b"XGROUP", b"HELP"]), [])
