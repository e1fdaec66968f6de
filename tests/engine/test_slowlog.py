"""Tests for kvtwist.engine.slowlog: SLOWLOG and LATENCY."""

from __future__ import annotations

from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from kvtwist.engine.store import Store
from kvtwist.wire.replies import OK, Pairs, Status, to_resp
from tests.helpers import SessionMixin
from tests.redisref import RawConnection, start_redis_or_skip
from tests.respparse import parse_reply


class FakeTimer:
    """perf_counter_ns stand-in: each call advances by ``step`` nanoseconds."""

    def __init__(self, step: int) -> None:
        self.now = 0
        self.step = step

    def __call__(self) -> int:
        self.now += self.step
        return self.now


class SlowlogTests(SessionMixin, SynchronousTestCase):
    peer = "10.0.0.1:6000"

    def setUp(self):
        SessionMixin.setUp(self)
        self.call("config", "set", "slowlog-log-slower-than", "0")

    def test_entries(self):
        """An entry is id, unix time, duration in us, argv, client address and name."""
        self.call("client", "setname", "worker")
        self.call("set", "k", "v")
        entry = self.call("slowlog", "get", "1")[0]
        self.assertEqual(entry[0], 2)
        self.assertEqual(entry[1], int(self.start))
        self.assertIsInstance(entry[2], int)
        self.assertEqual(entry[3:], [[b"set", b"k", b"v"], b"10.0.0.1:6000", b"worker"])

    def test_get_count_len_reset(self):
        """GET defaults to 10 newest first, -1 is all; LEN counts; RESET empties."""
        for index in range(12):
            self.call("echo", b"%d" % index)
        self.assertEqual(len(self.call("slowlog", "get")), 10)
        self.assertEqual(self.call("slowlog", "get", "2")[1][3], [b"echo", b"11"])
        self.assertEqual(len(self.call("slowlog", "get", "-1")), 15)
        self.assertEqual(self.call("slowlog", "len"), 16)
        self.assertEqual(self.error("slowlog", "get", "-2"),
                         "ERR count should be greater than or equal to -1")
        self.assertEqual(self.call("slowlog", "reset"), OK)
        # RESET is logged once it has run (the threshold is 0), as in Redis.
        entries = self.call("slowlog", "get")
        self.assertEqual([entry[3] for entry in entries], [[b"slowlog", b"reset"]])

    def test_truncation(self):
        """argv keeps 32 arguments and 128 bytes of each, saying how much more there was."""
        self.call("mget", *["k%d" % index for index in range(40)])
        self.call("echo", "x" * 200)
        echo, mget = self.call("slowlog", "get", "2")
        self.assertEqual(len(mget[3]), 32)
        self.assertEqual(mget[3][-1], b"... (10 more arguments)")
        self.assertEqual(mget[3][30], b"k29")
        self.assertEqual(echo[3][1], b"x" * 128 + b"... (72 more bytes)")

    def test_threshold(self):
        """Only commands at least slowlog-log-slower-than microseconds long are logged."""
        from kvtwist.engine import store as store_module
        self.patch(store_module, "perf_counter_ns", FakeTimer(2000000))
        self.call("config", "set", "slowlog-log-slower-than", "3000")
        self.call("slowlog", "reset")
        self.call("ping")
        self.assertEqual(self.call("slowlog", "len"), 0)
        self.patch(store_module, "perf_counter_ns", FakeTimer(4000000))
        self.call("ping")
        self.assertEqual(self.call("slowlog", "get")[0][2], 4000)


class LatencyTests(SessionMixin, SynchronousTestCase):
    def test_monitor(self):
        """Commands over latency-monitor-threshold ms are sampled once a second per event."""
        from kvtwist.engine import store as store_module
        self.patch(store_module, "perf_counter_ns", FakeTimer(20000000))
        self.assertEqual(self.call("latency", "latest"), [])
        self.call("config", "set", "latency-monitor-threshold", "10")
        self.call("get", "k")
        self.call("get", "k")
        self.clock.advance(1)
        self.call("keys", "*")
        now = int(self.clock.seconds())
        self.assertEqual(sorted(self.call("latency", "latest")),
                         [[b"command", now, 20, 20], [b"fast-command", now - 1, 20, 20]])
        self.assertEqual(self.call("latency", "history", "fast-command"), [[now - 1, 20]])
        self.assertEqual(self.call("latency", "history", "nosuch"), [])
        self.assertIn(b"fast-command: 1 latency spikes", self.call("latency", "doctor"))
        self.assertEqual(self.call("latency", "reset", "COMMAND"), 1)
        # RESET COMMAND took 20 ms itself: a "command" sample again.
        self.assertEqual(self.call("latency", "reset"), 2)

    def test_histogram(self):
        """LATENCY HISTOGRAM: calls and cumulative counts per bucket, for all commands,
        named ones, a container's subcommands, or one subcommand; unknown names skipped."""
        from kvtwist.engine import store as store_module
        self.patch(store_module, "perf_counter_ns", FakeTimer(3000))
        self.call("config", "resetstat")
        self.call("set", "a", "b")
        self.call("set", "c", "d")
        self.call("client", "id")
        everything = dict(self.call("latency", "histogram").items)
        self.assertEqual(sorted(everything), [b"client|id", b"config|resetstat", b"set"])
        self.assertEqual(everything[b"set"], Pairs([(b"calls", 2), (b"histogram_usec",
                                                                    Pairs([(4, 2)]))]))
        self.assertEqual([name for name, _ in self.call("latency", "histogram", "blabla", "set",
                                                        "client").items],
                         [b"set", b"client|id"])
        self.assertEqual(len(self.call("latency", "histogram", "client|id").items), 1)
        self.assertEqual(self.call("latency", "histogram", "get").items, [])

    def test_disabled_by_default(self):
        """With latency-monitor-threshold 0 nothing is sampled."""
        from kvtwist.engine import store as store_module
        self.patch(store_module, "perf_counter_ns", FakeTimer(10 ** 9))
        self.call("ping")
        self.assertEqual(self.call("latency", "latest"), [])


class DifferentialSlowlogTests(SynchronousTestCase):
    def test_reply_shapes(self):
        """SLOWLOG and LATENCY replies and errors match redis-server's."""
        server = start_redis_or_skip()
        self.addCleanup(server.stop)
        redis = RawConnection(server.port)
        self.addCleanup(redis.close)
        session = Store(Clock()).new_session()
        for argv in ([b"slowlog", b"reset"], [b"slowlog", b"len"], [b"slowlog", b"get"],
                     [b"slowlog", b"get", b"-2"], [b"slowlog", b"get", b"x"],
                     [b"slowlog", b"get", b"1", b"2"], [b"slowlog", b"len", b"x"],
                     [b"slowlog", b"foo"], [b"slowlog"], [b"slowlog", b"help"],
                     [b"latency", b"latest"], [b"latency", b"history", b"command"],
                     [b"latency", b"history"], [b"latency", b"reset"], [b"latency", b"foo"],
                     [b"latency", b"reset", b"a", b"b"]):
            theirs = redis.call(argv)
            ours = to_resp(session.execute(list(argv)))
            self.assertEqual(ours, theirs, argv)
        self.assertEqual(session.execute([b"latency", b"help"])[0],
                         Status(b"LATENCY <subcommand> [<arg> [value] [opt] ...]. "
                                b"Subcommands are:"))
        # An entry's shape: six fields, the argv an array.
        redis.call([b"config", b"set", b"slowlog-log-slower-than", b"0"])
        session.execute([b"config", b"set", b"slowlog-log-slower-than", b"0"])
        redis.call([b"echo", b"hi"])
        session.execute([b"echo", b"hi"])
        theirs = redis.call([b"slowlog", b"get", b"1"])
        ours = to_resp(session.execute([b"slowlog", b"get", b"1"]))
        self.assertEqual(ours.split(b"\r\n")[:2], theirs.split(b"\r\n")[:2])
        self.assertEqual(ours.split(b"\r\n")[5:10], theirs.split(b"\r\n")[5:10])


class RedactionTests(SynchronousTestCase):
    """SLOWLOG and MONITOR redact credentials as redis-server 7.0 does."""

    COMMANDS = ([b"acl", b"setuser", b"bob", b"on", b">pw", b"~*", b"+@all"],
                [b"auth", b"bob", b"pw"], [b"auth", b"pw"], [b"auth", b"a", b"b", b"c"],
                [b"hello", b"2", b"auth", b"bob", b"pw", b"setname", b"n"],
                [b"hello", b"3", b"AUTH", b"bob", b"wrong"], [b"hello", b"9", b"auth", b"x", b"y"],
                [b"config", b"set", b"requirepass", b"foo"], [b"auth", b"foo"],
                [b"config", b"set", b"requirepass", b"", b"maxmemory-samples", b"5"],
                [b"acl", b"whoami"], [b"set", b"x", b"y"])

    def test_slowlog_arguments_match_redis(self):
        """The arguments SLOWLOG keeps of AUTH, HELLO AUTH, ACL SETUSER and CONFIG SET
        requirepass are redis-server's, passwords as (redacted)."""
        server = start_redis_or_skip()
        self.addCleanup(server.stop)
        redis = RawConnection(server.port)
        self.addCleanup(redis.close)
        session = Store(Clock()).new_session()
        for argv in [[b"config", b"set", b"slowlog-log-slower-than", b"0"]] + list(
                self.COMMANDS):
            redis.call(list(argv))
            session.execute(list(argv))
        theirs = redis.call([b"slowlog", b"get", b"-1"])
        ours = to_resp(session.execute([b"slowlog", b"get", b"-1"]))

        def arguments(reply):
            return [entry[3] for entry in parse_reply(reply)]
        self.assertEqual(arguments(ours), arguments(theirs))
        self.assertIn(b"(redacted)", ours)
        self.assertNotIn(b">pw", ours)

    def test_monitor_lines_match_redis(self):
        """MONITOR shows AUTH and HELLO with (redacted) credentials and hides the admin ACL
        SETUSER and CONFIG SET, as redis-server 7.0."""
        server = start_redis_or_skip()
        self.addCleanup(server.stop)
        watcher, redis = RawConnection(server.port), RawConnection(server.port)
        self.addCleanup(watcher.close)
        self.addCleanup(redis.close)
        watcher.call([b"monitor"])
        store = Store(Clock())
        monitor, session = store.new_session(), store.new_session()
        lines = []
        monitor.push = lines.append
        monitor.execute([b"monitor"])
        for argv in self.COMMANDS:
            redis.call(list(argv))
            session.execute(list(argv))
        received = watcher.buffer
        while received.count(b"\r\n") < 9:
            received += watcher.sock.recv(65536)
        theirs = [line.split(b"] ", 1)[1] for line in received.split(b"\r\n")[:9]]
        ours = [line.text.split(b"] ", 1)[1] for line in lines]
        self.assertEqual(ours, theirs)
