"""Tests for kvtwist.engine.transactions: MULTI/EXEC/DISCARD/WATCH/UNWATCH/RESET."""

from __future__ import annotations

import random
import shutil
import tempfile

from hypothesis import HealthCheck, given, settings, strategies as st
from twisted.internet.task import Clock
from twisted.trial.unittest import SkipTest, SynchronousTestCase

from kvtwist.engine.table import TABLE

from kvtwist.engine.store import NullJournal, Store
from kvtwist.wire.replies import NIL_ARRAY, OK, Error, Status, to_resp
from kvtwist.engine.transactions import EXECABORT, QUEUED

try:
    import redis
except ImportError:  # the PyPy environment may lack redis-py
    redis = None

from tests.procs import start_kvstore
from tests.redisref import RawConnection, start_redis_or_skip


def run(session, line: bytes):
    """Execute one space-separated command line on a session."""
    return session.execute(line.split())


class _Base(SynchronousTestCase):
    def setUp(self):
        self.clock = Clock()
        self.clock.advance(1000)
        self.store = Store(self.clock)
        self.one = self.store.new_session()
        self.two = self.store.new_session()


class MultiExecTests(_Base):
    def test_queue_and_exec(self):
        """Commands inside MULTI reply QUEUED and EXEC returns their replies in order."""
        self.assertEqual(run(self.one, b"MULTI"), OK)
        self.assertEqual(run(self.one, b"SET a 1"), QUEUED)
        self.assertEqual(run(self.one, b"INCR a"), QUEUED)
        self.assertEqual(run(self.one, b"GET a"), QUEUED)
        self.assertIsNone(self.store.keyspace.get(b"a"))
        self.assertEqual(run(self.one, b"EXEC"), [OK, 2, b"2"])
        self.assertEqual(run(self.one, b"GET a"), b"2")

    def test_runtime_errors_are_elements(self):
        """A command failing while EXEC runs is an error element; the others still run."""
        run(self.one, b"SET a x")
        run(self.one, b"MULTI")
        run(self.one, b"INCR a")
        run(self.one, b"SET b 1")
        self.assertEqual(run(self.one, b"EXEC"),
                         [Error("ERR value is not an integer or out of range"), OK])
        self.assertEqual(run(self.one, b"GET b"), b"1")

    def test_empty_exec(self):
        """EXEC right after MULTI returns an empty array."""
        run(self.one, b"MULTI")
        self.assertEqual(run(self.one, b"EXEC"), [])

    def test_without_multi(self):
        """EXEC and DISCARD outside MULTI reply Redis's errors."""
        self.assertEqual(run(self.one, b"EXEC"), Error("ERR EXEC without MULTI"))
        self.assertEqual(run(self.one, b"DISCARD"), Error("ERR DISCARD without MULTI"))

    def test_nested_multi(self):
        """A nested MULTI is an error that does not abort the transaction."""
        run(self.one, b"MULTI")
        self.assertEqual(run(self.one, b"MULTI"), Error("ERR MULTI calls can not be nested"))
        run(self.one, b"PING")
        self.assertEqual(run(self.one, b"EXEC"), [Status(b"PONG")])

    def test_watch_inside_multi(self):
        """WATCH inside MULTI is refused without aborting the transaction."""
        run(self.one, b"MULTI")
        self.assertEqual(run(self.one, b"WATCH a"), Error("ERR WATCH inside MULTI is not allowed"))
        self.assertEqual(run(self.one, b"EXEC"), [])

    def test_arity_error_aborts(self):
        """An arity error inside MULTI is replied at once and makes EXEC answer EXECABORT."""
        run(self.one, b"MULTI")
        self.assertEqual(run(self.one, b"SET a"),
                         Error("ERR wrong number of arguments for 'set' command"))
        run(self.one, b"SET b 1")
        self.assertEqual(run(self.one, b"EXEC"), Error(EXECABORT))
        self.assertIsNone(self.store.keyspace.get(b"b"))
        self.assertIsNone(self.one.multi)

    def test_unknown_command_aborts(self):
        """An unknown command inside MULTI makes EXEC answer EXECABORT."""
        run(self.one, b"MULTI")
        self.assertIsInstance(run(self.one, b"NOSUCH x"), Error)
        self.assertEqual(run(self.one, b"EXEC"), Error(EXECABORT))

    def test_discard(self):
        """DISCARD drops the queued commands and ends the transaction."""
        run(self.one, b"MULTI")
        run(self.one, b"SET a 1")
        self.assertEqual(run(self.one, b"DISCARD"), OK)
        self.assertIsNone(self.store.keyspace.get(b"a"))
        self.assertEqual(run(self.one, b"GET a"), None)

    def test_quit_runs_at_once(self):
        """QUIT inside MULTI is not queued: it replies OK and closes."""
        run(self.one, b"MULTI")
        self.assertEqual(run(self.one, b"QUIT"), OK)
        self.assertTrue(self.one.closing)

    def test_reset(self):
        """RESET inside MULTI discards it, drops watches and the name, and replies RESET."""
        run(self.one, b"WATCH a")
        run(self.one, b"CLIENT SETNAME me")
        run(self.one, b"MULTI")
        self.assertEqual(run(self.one, b"RESET"), Status(b"RESET"))
        self.assertIsNone(self.one.multi)
        self.assertIsNone(self.one.watching)
        self.assertIsNone(self.one.name)
        self.assertEqual(run(self.one, b"EXEC"), Error("ERR EXEC without MULTI"))

    def test_reset_logs_out(self):
        """RESET makes the client the default user again, unauthenticated if it has a password."""
        self.assertEqual(run(self.one, b"ACL SETUSER u on >pw +@all ~*"), OK)
        self.assertEqual(run(self.one, b"AUTH u pw"), OK)
        self.assertEqual(run(self.one, b"ACL WHOAMI"), b"u")
        run(self.one, b"RESET")
        self.assertEqual(run(self.one, b"ACL WHOAMI"), b"default")
        self.assertEqual(run(self.one, b"CONFIG SET requirepass secret"), OK)
        run(self.one, b"RESET")
        self.assertEqual(run(self.one, b"GET a"), Error("NOAUTH Authentication required."))

    def test_writes_appended_in_one_call(self):
        """EXEC appends all its writes to the journal within the one call that runs it."""
        run(self.one, b"MULTI")
        run(self.one, b"SET a 1")
        run(self.one, b"SET b 2")
        before = self.store.journal.appended
        run(self.one, b"EXEC")
        self.assertEqual(self.store.journal.appended, before + 2)

    def test_command_table(self):
        """The transaction commands are in the table with Redis's arity and key positions."""
        expected = {b"multi": 1, b"exec": 1, b"discard": 1, b"watch": -2, b"unwatch": 1,
                    b"reset": 1}
        for name, arity in expected.items():
            self.assertEqual(TABLE[name].arity, arity)
            self.assertFalse(TABLE[name].write)
        self.assertEqual((TABLE[b"watch"].first_key, TABLE[b"watch"].last_key), (1, -1))
        listed = run(self.one, b"HELP")
        self.assertIn(b"EXEC", listed)
        self.assertIn(b"WATCH key", listed)


class _FailedJournal(NullJournal):
    def __init__(self):
        NullJournal.__init__(self)
        self.failure = "disk full"


class PersistenceFailureTests(_Base):
    def test_write_queued_during_failure(self):
        """A write queued while the journal failed is refused and dooms the EXEC."""
        self.store.set_journal(_FailedJournal())
        run(self.one, b"MULTI")
        reply = run(self.one, b"SET a 1")
        self.assertIsInstance(reply, Error)
        self.assertEqual(reply.message, "MISCONF Errors writing to the AOF file: disk full")
        self.assertEqual(run(self.one, b"GET a"), QUEUED)
        self.assertEqual(run(self.one, b"EXEC"), Error(EXECABORT))

    def test_failure_before_exec(self):
        """Writes queued before the journal failed make EXEC refuse the whole transaction."""
        run(self.one, b"MULTI")
        run(self.one, b"SET a 1")
        run(self.one, b"GET a")
        self.store.set_journal(_FailedJournal())
        reply = run(self.one, b"EXEC")
        self.assertTrue(reply.message.startswith(
            "EXECABORT Transaction discarded because of: MISCONF Errors writing to the AOF "
            "file: disk full"))
        self.assertIsNone(self.store.keyspace.get(b"a"))

    def test_reads_run_during_failure(self):
        """A read-only transaction still runs while the journal refuses writes."""
        self.store.keyspace.set(b"a", b"1")
        self.store.set_journal(_FailedJournal())
        run(self.one, b"MULTI")
        run(self.one, b"GET a")
        self.assertEqual(run(self.one, b"EXEC"), [b"1"])


class WatchTests(_Base):
    def conflict(self, session=None):
        session = session or self.one
        run(session, b"MULTI")
        run(session, b"SET out 1")
        return run(session, b"EXEC")

    def test_untouched_watch_executes(self):
        """EXEC runs when no watched key changed, even if other keys did."""
        run(self.one, b"WATCH a")
        run(self.two, b"SET b 1")
        run(self.two, b"DEL missing")
        self.assertEqual(self.conflict(), [OK])

    def test_other_client_write(self):
        """Another client's write to a watched key makes EXEC reply the nil array."""
        run(self.one, b"WATCH a b")
        run(self.two, b"SET b 1")
        self.assertIs(self.conflict(), NIL_ARRAY)
        self.assertIsNone(self.store.keyspace.get(b"out"))

    def test_own_write(self):
        """The watching client's own write to the key counts as a modification."""
        run(self.one, b"WATCH a")
        run(self.one, b"SET a 1")
        self.assertIs(self.conflict(), NIL_ARRAY)

    def test_expiry_change(self):
        """EXPIRE and PERSIST on a watched key are modifications."""
        run(self.one, b"SET a 1")
        run(self.one, b"WATCH a")
        run(self.two, b"EXPIRE a 100")
        self.assertIs(self.conflict(), NIL_ARRAY)
        run(self.one, b"WATCH a")
        run(self.two, b"PERSIST a")
        self.assertIs(self.conflict(), NIL_ARRAY)

    def test_flush(self):
        """FLUSH dirties a watched key that existed, not one that was missing."""
        run(self.one, b"SET a 1")
        run(self.one, b"WATCH a")
        run(self.two, b"FLUSHALL")
        self.assertIs(self.conflict(), NIL_ARRAY)
        run(self.one, b"WATCH missing")
        run(self.two, b"FLUSHALL")
        self.assertEqual(self.conflict(), [OK])

    def test_expired_key(self):
        """A watched key that expires before EXEC makes EXEC reply the nil array."""
        run(self.one, b"SET a 1 PX 100")
        run(self.one, b"WATCH a")
        self.clock.advance(0.2)
        self.assertIs(self.conflict(), NIL_ARRAY)

    def test_already_expired_key(self):
        """A key already expired when watched is not a conflict when it is removed."""
        run(self.one, b"SET a 1 PX 100")
        self.clock.advance(0.2)
        run(self.one, b"WATCH a")
        self.assertEqual(run(self.two, b"EXISTS a"), 0)
        self.assertEqual(self.conflict(), [OK])

    def test_exec_clears_watches(self):
        """After EXEC (even a failed one) the keys are no longer watched."""
        run(self.one, b"WATCH a")
        run(self.two, b"SET a 1")
        self.assertIs(self.conflict(), NIL_ARRAY)
        run(self.two, b"SET a 2")
        self.assertEqual(self.conflict(), [OK])
        self.assertEqual(self.store.keyspace.log, self.store.journal.append)

    def test_discard_and_unwatch_clear(self):
        """DISCARD and UNWATCH both forget the watched keys."""
        run(self.one, b"WATCH a")
        run(self.one, b"MULTI")
        run(self.one, b"DISCARD")
        run(self.two, b"SET a 1")
        self.assertEqual(self.conflict(), [OK])
        run(self.one, b"WATCH a")
        self.assertEqual(run(self.one, b"UNWATCH"), OK)
        run(self.two, b"SET a 2")
        self.assertEqual(self.conflict(), [OK])

    def test_dropped_session_unwatches(self):
        """A closed connection's watches are forgotten and the log unwrapped."""
        run(self.one, b"WATCH a")
        self.assertNotEqual(self.store.keyspace.log, self.store.journal.append)
        self.store.drop_session(self.one)
        self.assertEqual(self.store.watches.keys, {})
        self.assertEqual(self.store.keyspace.log, self.store.journal.append)

    def test_log_still_reaches_journal(self):
        """While keys are watched every effect still reaches the journal."""
        run(self.one, b"WATCH a")
        before = self.store.journal.appended
        run(self.two, b"SET z 1")
        self.assertEqual(self.store.journal.appended, before + 1)

    def test_tracking_turned_on_while_watching(self):
        """Turning tracking on while a key is watched does not hide a write from WATCH."""
        run(self.one, b"WATCH a")
        watcher = self.store.new_session()
        watcher.push = lambda reply: None
        run(watcher, b"SUBSCRIBE __redis__:invalidate")
        run(self.two, b"CLIENT TRACKING on BCAST REDIRECT %d" % watcher.id)
        run(self.two, b"SET a 1")
        self.assertIs(self.conflict(), NIL_ARRAY)

    def test_tracking_before_watch(self):
        """With tracking already on, watches see writes and invalidations still flow."""
        watcher = self.store.new_session()
        pushed = []
        watcher.push = pushed.append
        run(watcher, b"SUBSCRIBE __redis__:invalidate")
        run(self.two, b"CLIENT TRACKING on BCAST REDIRECT %d" % watcher.id)
        run(self.one, b"WATCH a")
        run(self.two, b"SET b 1")
        self.assertEqual(self.conflict(), [OK])
        run(self.one, b"WATCH a")
        run(self.two, b"SET a 1")
        self.assertIs(self.conflict(), NIL_ARRAY)
        self.clock.advance(0)  # BCAST invalidations go out as the turn ends, keys sorted
        self.assertEqual(pushed[-1][:2], [b"message", b"__redis__:invalidate"])
        self.assertIn(b"a", pushed[-1][2])

    def test_journal_swap_keeps_watch(self):
        """Attaching a new journal keeps watched keys observed."""
        run(self.one, b"WATCH a")
        self.store.set_journal(NullJournal())
        run(self.two, b"SET a 1")
        self.assertIs(self.conflict(), NIL_ARRAY)


# -- against redis-server ------------------------------------------------------------

SEQUENCE = [
    (1, b"WATCH nokey"), (2, b"FLUSHALL"), (1, b"MULTI"), (1, b"EXEC"), (1, b"SET a 1"),
    (1, b"WATCH a"), (2, b"FLUSHALL"), (1, b"MULTI"), (1, b"EXEC"), (1, b"MULTI"), (1, b"SET x"),
    (1, b"EXEC"), (1, b"MULTI"), (1, b"MULTI"), (1, b"WATCH a"), (1, b"FOO bar"), (1, b"DISCARD"),
    (1, b"EXEC"), (1, b"DISCARD"), (1, b"MULTI"), (1, b"SET a 1"), (1, b"INCR a"),
    (1, b"INCRBYFLOAT a x"), (1, b"GET a"), (1, b"UNWATCH"), (1, b"EXEC"), (1, b"WATCH a b"),
    (2, b"SET b 2"), (1, b"MULTI"), (1, b"GET a"), (1, b"EXEC"), (1, b"WATCH a"), (1, b"SET a 3"),
    (1, b"MULTI"), (1, b"EXEC"), (1, b"WATCH a"), (2, b"DEL nokey"), (1, b"MULTI"), (1, b"EXEC"),
    (1, b"WATCH"), (1, b"MULTI"), (1, b"UNWATCH"), (1, b"PING"), (1, b"EXEC"), (1, b"MULTI"),
    (1, b"RESET"), (1, b"EXEC"), (1, b"WATCH a"), (1, b"RESET"), (2, b"SET a 9"), (1, b"MULTI"),
    (1, b"EXEC"), (1, b"MULTI"), (1, b"GET"), (1, b"GET a"), (1, b"EXEC"), (1, b"WATCH a"),
    (2, b"EXPIRE a 100"), (1, b"MULTI"), (1, b"EXEC"), (1, b"WATCH a"), (2, b"PERSIST a"),
    (1, b"MULTI"), (1, b"EXEC"), (1, b"WATCH a"), (2, b"EXPIRE nokey 5"), (1, b"MULTI"),
    (1, b"EXEC"), (1, b"exec"), (1, b"MULTI"), (1, b"multi"), (1, b"QUIT"),
]

_RANDOM_STEPS = [b"MULTI", b"EXEC", b"DISCARD", b"WATCH k1", b"WATCH k1 k2", b"UNWATCH",
                 b"SET k1 v", b"SET k2 7", b"INCR k2", b"INCR k1", b"DEL k1", b"GET k1",
                 b"GET", b"NOSUCH", b"FLUSHALL", b"EXISTS k1 k2", b"SETNX k2 1"]


class RedisDifferentialTests(SynchronousTestCase):
    def setUp(self):
        server = start_redis_or_skip()
        self.addCleanup(server.stop)
        port = server.port
        self.port = port

    def connections(self):
        redis_one, redis_two = RawConnection(self.port), RawConnection(self.port)
        self.addCleanup(redis_one.close)
        self.addCleanup(redis_two.close)
        self.assertEqual(redis_one.call([b"FLUSHALL"]), b"+OK\r\n")
        store = Store(Clock())
        return {1: (redis_one, store.new_session()), 2: (redis_two, store.new_session())}

    def play(self, steps):
        pairs = self.connections()
        for who, line in steps:
            connection, session = pairs[who]
            argv = line.split()
            theirs = connection.call(argv)
            ours = to_resp(session.execute(argv))
            self.assertEqual(ours, theirs, "%r: ours %r, redis %r" % (line, ours, theirs))

    def test_sequence(self):
        """A hand-written two-client transaction script gives redis-server's exact bytes."""
        self.play(SEQUENCE)

    @settings(max_examples=30, deadline=None,
              suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
    @given(st.integers(min_value=0, max_value=2 ** 32))
    def test_random_sequences(self, seed):
        """Random two-client transaction scripts match redis-server byte for byte."""
        rng = random.Random(seed)
        steps = [(rng.choice((1, 1, 2)), rng.choice(_RANDOM_STEPS)) for _ in range(40)]
        self.play(steps)


class RedisPyTests(SynchronousTestCase):
    def setUp(self):
        if redis is None:
            raise SkipTest("redis-py is not installed")
        data = tempfile.mkdtemp(prefix="kvtwist-tx-")
        self.addCleanup(shutil.rmtree, data, True)
        process = start_kvstore(data)
        self.addCleanup(process.stop)
        self.client = redis.Redis(host="127.0.0.1", port=process.port)
        self.addCleanup(self.client.close)

    def test_pipeline_transaction(self):
        """redis-py's default pipeline wraps its commands in MULTI/EXEC and gets each reply."""
        pipe = self.client.pipeline()
        pipe.set("a", "1").incr("a").get("a")
        self.assertEqual(pipe.execute(), [True, 2, b"2"])

    def test_watch_error(self):
        """A watched key changed by another client makes redis-py raise WatchError."""
        other = redis.Redis(host="127.0.0.1", port=self.client.connection_pool
                            .connection_kwargs["port"])
        self.addCleanup(other.close)
        self.client.set("balance", 10)
        with self.client.pipeline() as pipe:
            pipe.watch("balance")
            other.set("balance", 20)
            pipe.multi()
            pipe.set("balance", 11)
            self.assertRaises(redis.WatchError, pipe.execute)
        self.assertEqual(self.client.get("balance"), b"20")
