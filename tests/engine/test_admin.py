"""Tests for kvtwist.engine.admin: SHUTDOWN, SAVE, BGSAVE, LASTSAVE, WAIT, ROLE, MEMORY, DEBUG."""

from __future__ import annotations

from twisted.trial.unittest import SynchronousTestCase

from kvtwist.engine import admin
from kvtwist.engine.hooks import Hooks
from kvtwist.wire.replies import OK, Pairs, Status
from tests.helpers import SessionMixin


class RecordingHooks(Hooks):
    """Hooks that remember what the engine asked for."""

    def __init__(self):
        Hooks.__init__(self)
        self.calls = []

    def shutdown(self, session, save, now, force):
        self.calls.append(("shutdown", save, now, force))
        return None

    def save(self, session):
        self.calls.append(("save",))
        return OK

    def bgsave(self, session, schedule):
        self.calls.append(("bgsave", schedule))
        return Status(b"Background saving started")

    def later(self, seconds, reply):
        self.calls.append(("later", seconds, reply))
        return reply

    def sleep(self, seconds):
        self.calls.append(("sleep", seconds))


class AdminMixin(SessionMixin):
    def setUp(self):
        SessionMixin.setUp(self)
        self.hooks = self.store.hooks = RecordingHooks()


class ShutdownSaveTests(AdminMixin, SynchronousTestCase):
    def test_shutdown_options(self):
        """SHUTDOWN passes SAVE/NOW/FORCE to the hook; bad combinations are syntax errors."""
        self.assertIsNone(self.call("shutdown", "save", "now", "FORCE"))
        self.assertEqual(self.hooks.calls, [("shutdown", True, True, True)])
        self.assertEqual(self.error("shutdown", "nosave", "save"), "ERR syntax error")
        self.assertEqual(self.error("shutdown", "abort", "now"), "ERR syntax error")
        self.assertEqual(self.error("shutdown", "bogus"), "ERR syntax error")
        self.assertEqual(self.error("shutdown", "abort"), "ERR No shutdown in progress.")

    def test_not_in_multi(self):
        """SAVE and SHUTDOWN are refused inside MULTI and doom the EXEC, as Redis."""
        self.call("multi")
        self.assertEqual(self.error("save"), "ERR Command not allowed inside a transaction")
        self.assertEqual(self.error("shutdown"), "ERR Command not allowed inside a transaction")
        self.assertEqual(self.error("exec"),
                         "EXECABORT Transaction discarded because of previous errors.")
        self.assertEqual(self.hooks.calls, [])

    def test_bare_store_refuses(self):
        """Without a serve layer SHUTDOWN and SAVE say why they cannot run."""
        self.store.hooks = Hooks()
        self.assertEqual(self.error("shutdown"), "ERR Errors trying to SHUTDOWN. Check logs.")
        self.assertEqual(self.error("save"), "ERR no journal: this store does not persist")

    def test_save_bgsave_lastsave(self):
        """SAVE and BGSAVE [SCHEDULE] call the hooks; LASTSAVE is the start time by default."""
        self.assertEqual(self.call("save"), OK)
        self.assertEqual(self.call("bgsave", "schedule"), Status(b"Background saving started"))
        self.assertEqual(self.error("bgsave", "foo"), "ERR syntax error")
        self.assertEqual(self.hooks.calls, [("save",), ("bgsave", True)])
        self.assertEqual(self.call("lastsave"), int(self.store.started))
        self.hooks.last_save = 1234
        self.assertEqual(self.call("lastsave"), 1234)


class WaitRoleTests(AdminMixin, SynchronousTestCase):
    def test_wait(self):
        """WAIT answers 0 at once for 0 replicas, else after the timeout (0: never)."""
        self.assertEqual(self.call("wait", "0", "0"), 0)
        self.assertEqual(self.hooks.calls, [])
        self.assertEqual(self.call("wait", "1", "100"), 0)
        self.assertEqual(self.call("wait", "1", "0"), 0)
        self.assertEqual(self.hooks.calls, [("later", 0.1, 0), ("later", None, 0)])

    def test_wait_errors(self):
        """WAIT checks the timeout first, as Redis."""
        self.assertEqual(self.error("wait", "a", "0"),
                         "ERR value is not an integer or out of range")
        self.assertEqual(self.error("wait", "1", "-1"), "ERR timeout is negative")
        self.assertEqual(self.error("wait", "a", "x"),
                         "ERR timeout is not an integer or out of range")

    def test_role(self):
        """ROLE: a master with no replicas."""
        self.assertEqual(self.call("role"), [b"master", 0, []])


class MemoryTests(AdminMixin, SynchronousTestCase):
    def test_usage_matches_redis(self):
        """MEMORY USAGE gives redis-server 7.0's numbers for string values."""
        cases = [("foo", b"bar", 64), ("k1", b"12345", 48), ("k2", b"x" * 44, 96),
                 ("k3", b"x" * 45, 112), ("k4", b"x" * 300, 368), ("k5", b"-5", 48)]
        for key, value, expected in cases:
            self.call("set", key, value)
            self.assertEqual(self.call("memory", "usage", key), expected, key)
        self.assertIsNone(self.call("memory", "usage", "nokey"))
        self.assertEqual(self.call("memory", "usage", "foo", "samples", "0"), 64)
        self.assertEqual(self.error("memory", "usage", "foo", "samples", "x"),
                         "ERR value is not an integer or out of range")
        self.assertEqual(self.error("memory", "usage", "foo", "bogus"), "ERR syntax error")

    def test_size_classes(self):
        """malloc_size follows jemalloc's classes."""
        self.assertEqual([admin.malloc_size(n) for n in (1, 9, 17, 23, 129, 161, 306, 1025)],
                         [8, 16, 32, 32, 160, 192, 320, 1280])

    def test_stats_doctor_help(self):
        """STATS is Redis's field map; DOCTOR on a small dataset is Redis's empty text."""
        self.call("set", "a", "b")
        stats = self.call("memory", "stats")
        self.assertIsInstance(stats, Pairs)
        fields = dict(stats.items)
        self.assertEqual(fields[b"keys.count"], 1)
        self.assertEqual(fields[b"dataset.bytes"], admin.key_usage(b"a", b"b"))
        self.assertEqual(self.call("memory", "doctor"), admin.DOCTOR_EMPTY)
        self.assertEqual(self.call("memory", "help")[0],
                         Status(b"MEMORY <subcommand> [<arg> [value] [opt] ...]. Subcommands are:"))


class DebugTests(AdminMixin, SynchronousTestCase):
    def test_object(self):
        """DEBUG OBJECT reports encoding and serialized length as Redis does."""
        self.call("set", "foo", "bar")
        self.call("set", "n", "12345")
        line = self.call("debug", "object", "foo").text
        self.assertRegex(line.decode(), r"^Value at:0x[0-9a-f]+ refcount:1 encoding:embstr "
                                        r"serializedlength:4 lru:\d+ lru_seconds_idle:0$")
        self.assertIn(b"encoding:int serializedlength:3 ", self.call("debug", "object", "n").text)
        self.assertEqual(self.error("debug", "object", "nokey"), "ERR no such key")

    def test_sleep_and_active_expire(self):
        """DEBUG SLEEP blocks through the hook; SET-ACTIVE-EXPIRE switches the sweep."""
        self.assertEqual(self.call("debug", "sleep", "0.5"), OK)
        self.assertEqual(self.call("debug", "sleep", "0"), OK)
        self.assertEqual(self.hooks.calls, [("sleep", 0.5)])
        self.assertEqual(self.call("debug", "set-active-expire", "0"), OK)
        self.assertFalse(self.hooks.active_expire)
        self.assertEqual(self.call("debug", "change-repl-id"), OK)

    def test_unknown(self):
        """Unknown subcommands and wrong arities get Redis's one error; HELP is Redis's text."""
        self.assertEqual(self.error("debug", "bogus"),
                         "ERR unknown subcommand or wrong number of arguments for 'bogus'. "
                         "Try DEBUG HELP.")
        self.assertEqual(self.error("debug", "sleep"),
                         "ERR unknown subcommand or wrong number of arguments for 'sleep'. "
                         "Try DEBUG HELP.")
        help_lines = self.call("debug", "help")
        self.assertEqual(len(help_lines), 106)
        self.assertEqual(help_lines[-1], Status(b"    Prints this help."))


class DifferentialTests(SynchronousTestCase):
    """The same commands give redis-server 7.0's exact RESP bytes."""

    COMMANDS = [
        [b"set", b"foo", b"bar"], [b"set", b"n", b"-12"], [b"set", b"big", b"y" * 300],
        [b"memory", b"usage", b"foo"], [b"memory", b"usage", b"n"], [b"memory", b"usage", b"big"],
        [b"memory", b"usage", b"nokey"], [b"memory", b"usage", b"foo", b"samples", b"x"],
        [b"memory", b"usage", b"foo", b"bogus"], [b"memory", b"help"], [b"memory", b"bogus"],
        [b"memory"], [b"memory", b"doctor"], [b"role"], [b"wait", b"0", b"0"],
        [b"wait", b"a", b"0"], [b"wait", b"1", b"-1"], [b"wait", b"1", b"x"], [b"wait"],
        [b"bgsave", b"foo"], [b"shutdown", b"abort"], [b"shutdown", b"bogus"],
        [b"shutdown", b"nosave", b"save"], [b"shutdown", b"abort", b"now"],
        [b"debug", b"help"], [b"debug", b"bogus"], [b"debug", b"sleep"], [b"debug", b"sleep", b"0"],
        [b"debug", b"object", b"nokey"], [b"debug", b"set-active-expire", b"1"],
        [b"debug", b"change-repl-id"], [b"debug"], [b"lastsave", b"x"], [b"role", b"x"],
    ]

    def test_same_bytes(self):
        """Each command's reply is byte-identical to redis-server's."""
        from twisted.internet.task import Clock

        from kvtwist.engine.store import Store
        from kvtwist.wire.replies import to_resp
        from tests.redisref import RawConnection, start_redis_or_skip

        server = start_redis_or_skip("--enable-debug-command", "yes")
        self.addCleanup(server.stop)
        conn = RawConnection(server.port)
        self.addCleanup(conn.close)
        store = Store(Clock())
        store.hooks = RecordingHooks()
        session = store.new_session("127.0.0.1:1")
        for argv in self.COMMANDS:
            self.assertEqual(to_resp(session.execute(argv)), conn.call(argv), argv)
