"""Tests for kvtwist.engine.config: CONFIG GET/SET/RESETSTAT/REWRITE/HELP and its parameters."""

from __future__ import annotations

import os
import tempfile

from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from kvtwist.engine import config
from kvtwist.engine.store import Store
from kvtwist.engine.table import PARAMS, define_config
from kvtwist.wire.replies import OK, Pairs, Status, to_resp
from tests.engine.test_differential import same_reply
from tests.helpers import SessionMixin
from tests.redisref import RawConnection, start_redis_or_skip


class ConfigGetTests(SessionMixin, SynchronousTestCase):
    def test_exact_and_glob(self):
        """CONFIG GET takes several patterns, globs case-insensitively, and lists each once."""
        self.assertEqual(self.call("config", "get", "save"), Pairs([(b"save", b"")]))
        reply = self.call("config", "get", "slowlog*", "SLOWLOG-MAX-LEN", "hz")
        self.assertEqual(dict(reply.items), {b"slowlog-log-slower-than": b"10000",
                                             b"slowlog-max-len": b"128", b"hz": b"10"})
        self.assertEqual(len(reply.items), 3)
        self.assertEqual(self.call("config", "get", "nosuch"), Pairs([]))

    def test_exact_name_is_echoed_as_given(self):
        """An exact name comes back spelt as asked, once however its case varies (Redis 7)."""
        self.assertEqual(self.call("config", "get", "HZ", "hz"), Pairs([(b"HZ", b"10")]))

    def test_aliases(self):
        """A glob matches a parameter under its name or alias once; exact names list both."""
        define_config("test-new-name", "1", aliases=("test-old-name",))
        self.addCleanup(PARAMS.pop, "test-new-name")
        self.addCleanup(PARAMS.pop, "test-old-name")
        store = Store(Clock())
        session = store.new_session()
        self.assertEqual(len(session.execute([b"config", b"get", b"test-*"]).items), 1)
        self.assertEqual(session.execute([b"config", b"get", b"test-old-name",
                                          b"test-new-name"]),
                         Pairs([(b"test-old-name", b"1"), (b"test-new-name", b"1")]))

    def test_refused_parameters_are_absent(self):
        """Parameters kvstore does not implement (lua-time-limit, dbfilename) are absent."""
        for name in ("lua-time-limit", "active-defrag-cycle-min", "dbfilename"):
            self.assertEqual(self.call("config", "get", name), Pairs([]))
            self.assertEqual(
                self.error("config", "set", name, "1"),
                "ERR Unknown option or number of arguments for CONFIG SET - '%s'" % (name,))

    def test_fixed_values(self):
        """databases shows the store's real number of databases."""
        self.assertEqual(self.call("config", "get", "databases"), Pairs([(b"databases", b"16")]))


class ConfigSetTests(SessionMixin, SynchronousTestCase):
    def test_errors(self):
        """CONFIG SET gives Redis 7's unknown, immutable, duplicate, parse and syntax errors."""
        self.assertEqual(self.error("config", "set", "foo", "bar"),
                         "ERR Unknown option or number of arguments for CONFIG SET - 'foo'")
        self.assertEqual(self.error("config", "set", "databases", "3"),
                         "ERR CONFIG SET failed (possibly related to argument 'databases') - "
                         "can't set immutable config")
        self.assertEqual(self.error("config", "set", "hz", "5", "HZ", "6"),
                         "ERR CONFIG SET failed (possibly related to argument 'HZ') - "
                         "duplicate parameter")
        self.assertEqual(self.error("config", "set", "Hz", "x"),
                         "ERR CONFIG SET failed (possibly related to argument 'hz') - "
                         "argument couldn't be parsed into an integer")
        self.assertEqual(self.error("config", "set", "hz", "1", "slowlog-max-len"),
                         "ERR syntax error")
        self.assertEqual(self.error("config", "set", "port", "1", "foo", "1"),
                         "ERR CONFIG SET failed (possibly related to argument 'port') - "
                         "can't set immutable config")

    def test_fixed_parameters_accept_their_value(self):
        """port, dir, appendfsync... (settable in Redis, fixed here) accept only their value."""
        store = Store(Clock(), config={"port": "7001", "appendfsync": "everysec"})
        session = store.new_session()
        self.assertEqual(session.execute([b"config", b"set", b"port", b"7001", b"appendfsync",
                                          b"EVERYSEC", b"hz", b"20"]), OK)
        self.assertEqual(store.config["hz"], "20")
        self.assertEqual(session.execute([b"config", b"set", b"port", b"7002"]).message,
                         "ERR CONFIG SET failed (possibly related to argument 'port') - "
                         "can't set immutable config")

    def test_all_or_nothing(self):
        """A refused value leaves every parameter of the CONFIG SET unchanged."""
        reply = self.call("config", "set", "slowlog-max-len", "5", "proto-max-bulk-len", "1k")
        self.assertIn("proto-max-bulk-len", reply.message)
        self.assertEqual(self.call("config", "get", "slowlog-max-len"),
                         Pairs([(b"slowlog-max-len", b"128")]))
        self.assertEqual(self.store.stats.slowlog.max_len, 128)

    def test_rollback_when_an_apply_refuses(self):
        """An apply that refuses restores every parameter already applied, as Redis 7 does."""
        applied = []
        config.watch(self.store, "hz", applied.append)

        def refuse(value):
            raise ValueError("refused here")
        config.watch(self.store, "proto-max-bulk-len", refuse)
        self.assertEqual(self.error("config", "set", "hz", "50", "proto-max-bulk-len", "2mb"),
                         "ERR CONFIG SET failed (possibly related to argument "
                         "'proto-max-bulk-len') - refused here")
        self.assertEqual(applied, [50, 10])
        self.assertEqual(self.store.config["hz"], "10")

    def test_values_normalised(self):
        """Values are shown as Redis shows them: memory in bytes, hz clamped, yes/no lowered."""
        self.assertEqual(self.call("config", "set", "proto-max-bulk-len", "2mb", "hz", "1000",
                                   "latency-tracking", "NO"), OK)
        self.assertEqual(dict(self.call("config", "get", "proto*", "hz", "latency-tracking")
                              .items),
                         {b"proto-max-bulk-len": b"2097152", b"hz": b"500",
                          b"latency-tracking": b"no"})
        self.assertEqual(self.call("config", "set", "hz", "0"), OK)
        self.assertEqual(self.store.config["hz"], "1")

    def test_slowlog_parameters_take_effect(self):
        """slowlog-log-slower-than and slowlog-max-len change what the slow log keeps."""
        self.assertEqual(self.call("config", "set", "slowlog-log-slower-than", "0"), OK)
        for _ in range(5):
            self.call("ping")
        self.assertEqual(self.call("slowlog", "len"), 6)
        self.assertEqual(self.call("config", "set", "slowlog-max-len", "2"), OK)
        self.assertEqual(self.call("slowlog", "len"), 2)
        self.assertEqual(self.call("config", "set", "slowlog-log-slower-than", "-1"), OK)
        self.call("slowlog", "reset")
        self.call("ping")
        self.assertEqual(self.call("slowlog", "len"), 0)

    def test_latency_parameters_take_effect(self):
        """latency-tracking turns latencystats off; the percentiles are configurable."""
        self.call("get", "k")
        self.assertIn(b"latency_percentiles_usec_get:p50=", self.call("info", "latencystats"))
        self.call("config", "set", "latency-tracking-info-percentiles", "0 50 100")
        self.assertRegex(self.call("info", "latencystats"),
                         rb"latency_percentiles_usec_get:p0=[0-9.]+,p50=[0-9.]+,p100=")
        self.assertEqual(self.call("config", "get", "latency-tracking-info-percentiles"),
                         Pairs([(b"latency-tracking-info-percentiles", b"0 50 100")]))
        self.assertIn("should sit between", self.error(
            "config", "set", "latency-tracking-info-percentiles", "101"))
        self.call("config", "set", "latency-tracking", "no")
        self.assertEqual(self.call("info", "latencystats"), b"# Latencystats\r\n")

    def test_save_only_empty(self):
        """save accepts only "" (kvstore takes no RDB snapshots) and refuses a schedule."""
        self.assertEqual(self.call("config", "set", "save", ""), OK)
        self.assertIn("no RDB snapshots", self.error("config", "set", "save", "900 1"))


class ResetRewriteHelpTests(SessionMixin, SynchronousTestCase):
    def test_resetstat(self):
        """CONFIG RESETSTAT zeroes commands, connections, expiries, hits, errors and stats."""
        self.call("set", "k", "v", "px", "1")
        self.clock.advance(1)
        self.call("get", "k")
        self.call("get", "nosuchcommand", "x")
        self.call("nosuch")
        self.assertEqual(self.call("config", "resetstat"), OK)
        text = self.call("info", "everything")
        for line in (b"total_commands_processed:1", b"total_connections_received:0",
                     b"expired_keys:0", b"keyspace_hits:0", b"keyspace_misses:0",
                     b"total_error_replies:0"):
            self.assertIn(line + b"\r\n", text)
        self.assertNotIn(b"errorstat_", text)
        self.assertNotIn(b"cmdstat_get", text)
        self.assertIn(b"cmdstat_config|resetstat:calls=1,", text)

    def test_rewrite_without_file(self):
        """CONFIG REWRITE without a config file is Redis's error."""
        self.assertEqual(self.error("config", "rewrite"),
                         "ERR The server is running without a config file")

    def test_rewrite_keeps_lines(self):
        """REWRITE keeps comments and unknown lines, replaces changed directives, appends new
        ones and the users (as Redis does without an ACL file)."""
        directory = tempfile.mkdtemp()
        path = os.path.join(directory, "kv.conf")
        with open(path, "w") as f:
            f.write("# my settings\nhz 20\nunknown-thing 1\nhz 30\n\nslowlog-max-len 64\n")
        self.store.config_file = path
        self.call("config", "set", "hz", "40", "latency-monitor-threshold", "5",
                  "slowlog-max-len", "128")
        self.assertEqual(self.call("config", "rewrite"), OK)
        with open(path) as f:
            self.assertEqual(f.read(), "# my settings\nhz 40\nunknown-thing 1\n\n"
                             "slowlog-max-len 128\n# Generated by CONFIG REWRITE\n"
                             "latency-monitor-threshold 5\n"
                             "user default on nopass ~* &* +@all\n")
        os.remove(path)
        os.rmdir(directory)

    def test_help(self):
        """CONFIG HELP lists the subcommands as Redis's does."""
        lines = self.call("config", "help")
        self.assertEqual(lines[0].text, b"CONFIG <subcommand> [<arg> [value] [opt] ...]. "
                                   b"Subcommands are:")
        self.assertIn(Status(b"REWRITE"), lines)
        self.assertEqual(lines[-1], Status(b"    Prints this help."))


class ConfigureTests(SynchronousTestCase):
    def test_startup_values(self):
        """configure() sets parameters (immutable ones too) and names the place of a refusal."""
        store = Store(Clock())
        config.configure(store, [("hz", "20"), ("appendfsync", "everysec", "f:2")])
        self.assertEqual((store.config["hz"], store.config["appendfsync"]), ("20", "everysec"))
        with self.assertRaises(config.ConfigError) as caught:
            config.configure(store, [("databases", "4", "kv.conf:3")])
        self.assertEqual(str(caught.exception),
                         "kv.conf:3: 'databases 4': this kvstore has 16 databases")
        with self.assertRaises(config.ConfigError):
            config.configure(store, [("no-such-parameter", "1")])


def _pairs(reply: bytes):
    # A CONFIG GET reply's name/value pairs, in any order (redis-server lists them in its
    # hash table's order).
    lines = reply.split(b"\r\n")[1:-1][1::2]
    return sorted(zip(lines[0::2], lines[1::2]))


class DifferentialConfigTests(SynchronousTestCase):
    """CONFIG replies match a real redis-server's byte for byte."""

    def test_replies(self):
        """CONFIG GET shapes, CONFIG SET errors and HELP match redis-server."""
        server = start_redis_or_skip()
        self.addCleanup(server.stop)
        redis = RawConnection(server.port)
        self.addCleanup(redis.close)
        session = Store(Clock()).new_session()
        for argv in ([b"config", b"get", b"slowlog-max-len"], [b"config", b"get", b"HZ", b"hz"],
                     [b"config", b"get", b"nosuch"], [b"config", b"get", b"latency-track*"],
                     [b"config", b"set", b"foo", b"bar"], [b"config", b"set", b"hz"],
                     [b"config", b"set", b"hz", b"1", b"foo"],
                     [b"config", b"set", b"hz", b"x"], [b"config", b"set", b"hz", b"-1"],
                     [b"config", b"set", b"hz", b"10", b"HZ", b"11"],
                     [b"config", b"set", b"databases", b"2"],
                     [b"config", b"set", b"proto-max-bulk-len", b"1000"],
                     [b"config", b"set", b"proto-max-bulk-len", b"2mb"],
                     [b"config", b"get", b"proto-max-bulk-len"],
                     [b"config", b"set", b"latency-tracking", b"maybe"],
                     [b"config", b"set", b"latency-tracking-info-percentiles", b"x"],
                     [b"config", b"set", b"slowlog-log-slower-than", b"-2"],
                     [b"config", b"set", b"hz", b"1000"], [b"config", b"get", b"hz"],
                     [b"config", b"set", b"hz", b"10"], [b"config", b"help"],
                     [b"config", b"nosuch"], [b"config"], [b"config", b"resetstat", b"x"]):
            theirs = redis.call(argv)
            ours = to_resp(session.execute(list(argv)))
            if argv[1:2] == [b"get"]:
                ours, theirs = _pairs(ours), _pairs(theirs)
            self.assertTrue(ours == theirs or same_reply(ours, theirs, argv),
                            "%r: ours %r, redis %r" % (argv, ours, theirs))
