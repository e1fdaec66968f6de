"""Tests for kvtwist.engine.limits: the limits' parameters in CONFIG, as redis-server has them."""

from __future__ import annotations

from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from kvtwist.engine import config
from kvtwist.engine.limits import limits_of, parse_output_limits
from kvtwist.engine.store import Store
from kvtwist.wire.replies import OK, Error, Pairs
from tests.redisref import DifferentialMixin


class LimitsConfigTests(SynchronousTestCase):
    """CONFIG GET/SET of the limits on a Store."""

    def setUp(self) -> None:
        self.store = Store(Clock())
        self.session = self.store.new_session("127.0.0.1:5000")

    def call(self, *argv: bytes):
        return self.session.execute(list(argv))

    def test_defaults_are_redis(self) -> None:
        """CONFIG GET shows Redis 7.0's defaults for every limit."""
        for name, value in [
                (b"maxclients", b"10000"), (b"timeout", b"0"), (b"tcp-keepalive", b"300"),
                (b"tcp-backlog", b"511"), (b"client-query-buffer-limit", b"1073741824"),
                (b"proto-max-bulk-len", b"536870912"), (b"protected-mode", b"yes"),
                (b"enable-protected-configs", b"no"),
                (b"client-output-buffer-limit",
                 b"normal 0 0 0 slave 268435456 67108864 60 pubsub 33554432 8388608 60")]:
            self.assertEqual(self.call(b"CONFIG", b"GET", name), Pairs([(name, value)]))

    def test_set_takes_effect(self) -> None:
        """CONFIG SET changes the values the serve layer reads."""
        limits = limits_of(self.store)
        self.call(b"CONFIG", b"SET", b"maxclients", b"5", b"timeout", b"30",
                  b"client-query-buffer-limit", b"2mb", b"tcp-keepalive", b"60",
                  b"protected-mode", b"no")
        self.assertEqual((limits.maxclients, limits.timeout, limits.query_buffer,
                          limits.keepalive, limits.protected_mode),
                         (5, 30, 2 * 1024 * 1024, 60, False))

    def test_output_limits_per_class(self) -> None:
        """Setting one class's output limits keeps the others; replica is slave."""
        self.call(b"CONFIG", b"SET", b"client-output-buffer-limit", b"pubsub 1mb 512kb 10")
        self.call(b"CONFIG", b"SET", b"client-output-buffer-limit", b"replica 1gb 1gb 0")
        self.assertEqual(
            self.call(b"CONFIG", b"GET", b"client-output-buffer-limit"),
            Pairs([(b"client-output-buffer-limit",
                    b"normal 0 0 0 slave 1073741824 1073741824 0 pubsub 1048576 524288 10")]))
        limits = limits_of(self.store)
        self.assertEqual(limits.output["pubsub"], (1048576, 524288, 10))
        self.assertFalse(limits.normal_limited)
        self.call(b"CONFIG", b"SET", b"client-output-buffer-limit", b"normal 1 0 0")
        self.assertTrue(limits.normal_limited)

    def test_output_limits_in_a_config_file_line(self) -> None:
        """A config file gives client-output-buffer-limit as several words on one line."""
        self.assertIn("client-output-buffer-limit", config.MULTI_ARG)
        config.configure(self.store, [("client-output-buffer-limit", "normal 10mb 5mb 30")])
        self.assertEqual(limits_of(self.store).output["normal"], (10485760, 5242880, 30))

    def test_output_limit_parse_errors(self) -> None:
        """Each malformed form is refused with Redis's reason."""
        for text, reason in [
                ("wrong number", "Wrong number of arguments in buffer limit configuration."),
                ("master 10mb 10mb 60", "Invalid client class specified in buffer limit "
                                        "configuration."),
                ("normal 10mbs 10mb 60", "Error in hard, soft or soft_seconds setting in "
                                         "buffer limit configuration."),
                ("pubsub 10mb 10mb 60s", "Error in hard, soft or soft_seconds setting in "
                                         "buffer limit configuration."),
                ("pubsub 10mb 10mb -1", "Error in hard, soft or soft_seconds setting in "
                                        "buffer limit configuration.")]:
            error = self.assertRaises(ValueError, parse_output_limits, text)
            self.assertEqual(str(error), reason)

    def test_protected_configs_refused(self) -> None:
        """CONFIG SET dir is refused as a protected config, even to its own value."""
        current = self.call(b"CONFIG", b"GET", b"dir").items[0][1]
        reply = self.call(b"CONFIG", b"SET", b"dir", current)
        self.assertEqual(reply, Error("ERR CONFIG SET failed (possibly related to argument "
                                      "'dir') - can't set protected config"))

    def test_protected_configs_local(self) -> None:
        """enable-protected-configs local lets loopback clients set dir (to its own value)."""
        config.configure(self.store, [("enable-protected-configs", "local")])
        current = self.call(b"CONFIG", b"GET", b"dir").items[0][1]
        self.assertIs(self.call(b"CONFIG", b"SET", b"dir", current), OK)
        remote = self.store.new_session("10.1.1.1:5000")
        self.assertIsInstance(remote.execute([b"CONFIG", b"SET", b"dir", current]), Error)

    def test_start_only_parameters(self) -> None:
        """tcp-backlog and enable-protected-configs are immutable at run time."""
        for name, value in [(b"tcp-backlog", b"100"), (b"enable-protected-configs", b"yes")]:
            self.assertEqual(
                self.call(b"CONFIG", b"SET", name, value),
                Error("ERR CONFIG SET failed (possibly related to argument '%s') - can't set "
                      "immutable config" % (name.decode(),)))


class DifferentialLimitsTests(DifferentialMixin, SynchronousTestCase):
    """The limits' CONFIG replies and errors are redis-server's bytes."""

    def test_config_replies_match(self) -> None:
        """CONFIG SET/GET of each limit answers as redis-server does."""
        for argv in [
                [b"CONFIG", b"GET", b"maxclients"], [b"CONFIG", b"GET", b"timeout"],
                [b"CONFIG", b"GET", b"tcp-keepalive"], [b"CONFIG", b"GET", b"tcp-backlog"],
                [b"CONFIG", b"GET", b"client-query-buffer-limit"],
                [b"CONFIG", b"GET", b"client-output-buffer-limit"],
                [b"CONFIG", b"GET", b"protected-mode"],
                [b"CONFIG", b"GET", b"enable-protected-configs"],
                [b"CONFIG", b"SET", b"maxclients", b"0"],
                [b"CONFIG", b"SET", b"maxclients", b"abc"],
                [b"CONFIG", b"SET", b"timeout", b"-1"],
                [b"CONFIG", b"SET", b"timeout", b"30"], [b"CONFIG", b"GET", b"timeout"],
                [b"CONFIG", b"SET", b"tcp-keepalive", b"60"],
                [b"CONFIG", b"SET", b"tcp-backlog", b"100"],
                [b"CONFIG", b"SET", b"client-query-buffer-limit", b"100"],
                [b"CONFIG", b"SET", b"client-query-buffer-limit", b"2mb"],
                [b"CONFIG", b"GET", b"client-query-buffer-limit"],
                [b"CONFIG", b"SET", b"proto-max-bulk-len", b"1000"],
                [b"CONFIG", b"SET", b"client-output-buffer-limit", b"wrong number"],
                [b"CONFIG", b"SET", b"client-output-buffer-limit", b"invalid_class 1 1 1"],
                [b"CONFIG", b"SET", b"client-output-buffer-limit", b"master 10mb 10mb 60"],
                [b"CONFIG", b"SET", b"client-output-buffer-limit", b"normal 10mbs 10mb 60"],
                [b"CONFIG", b"SET", b"client-output-buffer-limit",
                 b"normal 1mb 2mb 60 replica 3mb 4mb 70 pubsub 5mb 6mb 80"],
                [b"CONFIG", b"GET", b"client-output-buffer-limit"],
                [b"CONFIG", b"SET", b"client-output-buffer-limit", b"pubsub 1mb 2mb 3"],
                [b"CONFIG", b"GET", b"client-output-buffer-limit"],
                [b"CONFIG", b"SET", b"protected-mode", b"maybe"],
                [b"CONFIG", b"SET", b"protected-mode", b"no"],
                [b"CONFIG", b"GET", b"protected-mode"],
                [b"CONFIG", b"SET", b"enable-protected-configs", b"yes"],
                [b"CONFIG", b"SET", b"dir", b"/tmp"]]:
            self.compare(argv)
