"""Tests for kvtwist.engine.table: the table, dispatch, Store, Session and NullJournal."""

from __future__ import annotations

from hypothesis import given, strategies as st
from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from kvtwist.engine import clients, server as admin, info, keys as keycmds, strings as strcmds
from kvtwist.engine.table import TABLE, Command, parse_int
from kvtwist.engine.store import NullJournal, Store
from kvtwist.engine.keyspace import SET
from kvtwist.wire.replies import OK, CommandError, Error
from tests.helpers import RecordingJournal, SessionMixin

class DispatchTests(SessionMixin, SynchronousTestCase):
    def test_case_insensitive(self):
        """Command names match in any case."""
        self.assertEqual(self.call("SeT", "k", "v"), OK)
        self.assertEqual(self.call("GET", "k"), b"v")

    def test_unknown(self):
        """An unknown command gets Redis 7's exact error text, args quoted and truncated."""
        self.assertEqual(self.error("foo", "a", "b"),
                         "ERR unknown command 'foo', with args beginning with: 'a' 'b' ")
        self.assertEqual(self.error("foo"), "ERR unknown command 'foo', with args beginning with: ")
        long = self.error("foo", "x" * 200, "y")
        self.assertEqual(long, "ERR unknown command 'foo', with args beginning with: '%s' "
                         % ("x" * 128,))

    def test_arity(self):
        """Wrong argument counts get Redis's error for exact and minimum arities."""
        self.assertEqual(self.error("get"), "ERR wrong number of arguments for 'get' command")
        self.assertEqual(self.error("GET", "a", "b"),
                         "ERR wrong number of arguments for 'get' command")
        self.assertEqual(self.error("mset", "a"),
                         "ERR wrong number of arguments for 'mset' command")
        self.assertEqual(self.error("mset", "a", "1", "b"),
                         "ERR wrong number of arguments for 'mset' command")

    def test_empty(self):
        """An empty argument vector is an error, not a crash."""
        self.assertIsInstance(self.session.execute([]), Error)

    def test_aliases(self):
        """PUT, DELETE and REMOVE are aliases of SET and DEL."""
        self.assertEqual(self.call("put", "k", "v"), OK)
        self.assertEqual(self.call("delete", "k", "x"), 1)
        self.call("put", "k", "v")
        self.assertEqual(self.call("REMOVE", "k"), 1)

    def test_table_shape(self):
        """Every table entry is a Command keyed by its lowercase name with flags and a handler."""
        for name, command in TABLE.items():
            self.assertIsInstance(command, Command)
            self.assertEqual(name, command.name)
            self.assertEqual(name, name.lower())
            self.assertTrue(callable(command.handler))
        self.assertEqual(TABLE[b"get"].arity, 2)
        self.assertIn("readonly", TABLE[b"get"].flags)
        self.assertTrue(TABLE[b"set"].write)

    def test_counts_commands(self):
        """Each executed command bumps the store's counter."""
        before = self.session.store.commands_processed
        self.call("ping")
        self.call("get", "x")
        self.assertEqual(self.session.store.commands_processed, before + 2)

    def test_counts_after_handler(self):
        """The counter is bumped after the handler ran, errors included but not arity errors."""
        store = self.session.store
        seen = []
        self.patch(TABLE[b"ping"], "handler",
                   lambda session, argv: seen.append(store.commands_processed) or OK)
        before = store.commands_processed
        self.call("ping")
        self.assertEqual(seen, [before])
        self.assertEqual(store.commands_processed, before + 1)
        self.call("incr", "x", "y")
        self.call("set", "x", "abc")
        self.call("incr", "x")
        self.assertEqual(store.commands_processed, before + 3)

    def test_write_refused_on_journal_failure(self):
        """Write commands are refused while the journal reports a failure; reads still work."""
        self.call("set", "k", "v")
        self.journal.failure = "disk full"
        self.assertEqual(
            self.error("set", "k", "w"),
            "MISCONF Errors writing to the AOF file: disk full")
        self.assertEqual(self.call("get", "k"), b"v")
        self.journal.failure = None
        self.assertEqual(self.call("set", "k", "w"), OK)

    def test_command_error_mapped(self):
        """A CommandError raised by a handler becomes an Error reply."""
        self.assertEqual(self.error("incr", "x", "y"),
                         "ERR wrong number of arguments for 'incr' command")
        self.call("set", "x", "abc")
        self.assertEqual(self.error("incr", "x"), "ERR value is not an integer or out of range")


class StoreTests(SynchronousTestCase):
    def test_sessions(self):
        """new_session registers unique ids; drop_session forgets them."""
        store = Store(Clock())
        first, second = store.new_session("a"), store.new_session("b")
        self.assertNotEqual(first.id, second.id)
        self.assertEqual(set(store.clients), {first.id, second.id})
        store.drop_session(first)
        self.assertEqual(list(store.clients), [second.id])
        self.assertEqual(store.connections_received, 2)
        self.assertFalse(second.closing)

    def test_null_journal(self):
        """NullJournal acknowledges every append at once and its Deferred fires with None."""
        store = Store(Clock())
        session = store.new_session()
        session.execute([b"set", b"k", b"v"])
        session.execute([b"mset", b"a", b"1", b"b", b"2"])
        self.assertEqual(store.journal.appended, 3)
        self.assertEqual(store.journal.acked, 3)

    def test_set_journal(self):
        """set_journal routes later keyspace effects to the new journal."""
        store = Store(Clock())
        journal = RecordingJournal()
        store.set_journal(journal)
        store.new_session().execute([b"set", b"k", b"v"])
        self.assertEqual(journal.effects, [(SET, b"k", b"v", 0)])

    def test_config_merge(self):
        """A store's config starts from the registered parameters' defaults; given entries
        override them."""
        store = Store(Clock(), config={"port": "7001"})
        self.assertEqual(store.config["port"], "7001")
        self.assertEqual(store.config["appendonly"], "no")
        self.assertNotIn("lua-time-limit", store.config)

    def test_stats_hook_cost_is_per_command(self):
        """Every executed command is counted once in store.stats, with its duration."""
        store = Store(Clock())
        session = store.new_session()
        session.execute([b"set", b"k", b"v"])
        session.execute([b"get", b"k"])
        counted = {stat.name: stat.calls for stat in store.stats.commands.values()}
        self.assertEqual(counted, {b"set": 1, b"get": 1})


class ParseIntTests(SynchronousTestCase):
    @given(st.integers(min_value=-2 ** 63, max_value=2 ** 63 - 1))
    def test_parse_int_roundtrip(self, number):
        """parse_int reads back every signed 64-bit integer Redis prints."""
        self.assertEqual(parse_int(b"%d" % number), number)

    @given(st.binary(max_size=24))
    def test_parse_int_strict(self, raw):
        """parse_int accepts exactly the canonical decimal spellings of 64-bit integers."""
        try:
            number = parse_int(raw)
        except CommandError:
            return
        self.assertEqual(b"%d" % number, raw)


class RegistrationTests(SynchronousTestCase):
    def test_whole_table(self):
        """Importing kvtwist.engine.table registers every command module's commands."""
        for module, name in ((strcmds, b"incrbyfloat"), (keycmds, b"expire"), (info, b"info"),
                             (admin, b"compact")):
            self.assertIn(name, TABLE, module.__name__)
        self.assertIn(b"subscribe", TABLE)
        self.assertIn(b"tracking", clients.CLIENT_SUBCOMMANDS)



class StoreObserverTests(SynchronousTestCase):
    """Store.observe: features that need every effect see it after the journal does."""

    def test_observers_see_effects_after_the_journal(self) -> None:
        """An observer is called with each effect once the journal has counted it."""
        store = Store(Clock())
        seen = []
        store.observe(lambda effect, db: seen.append((effect, db, store.journal.appended)))
        store.new_session().execute([b"SET", b"k", b"v"])
        self.assertEqual(seen, [((SET, b"k", b"v", 0), 0, 1)])

    def test_unobserved_store_logs_straight_to_journal(self) -> None:
        """With no observers left, keyspace.log is the journal's append itself."""
        store = Store(Clock())
        def observer(effect, db):
            pass
        store.observe(observer)
        self.assertNotEqual(store.keyspace.log, store.journal.append)
        store.unobserve(observer)
        self.assertEqual(store.keyspace.log, store.journal.append)

    def test_observers_survive_a_new_journal(self) -> None:
        """Attaching a journal keeps the observers registered before it."""
        store = Store(Clock())
        seen = []
        store.observe(lambda effect, db: seen.append(effect))
        journal = NullJournal()
        store.set_journal(journal)
        store.new_session().execute([b"DEL", b"k", b"j"])
        store.new_session().execute([b"SET", b"k", b"v"])
        self.assertEqual((journal.appended, len(seen)), (1, 1))
