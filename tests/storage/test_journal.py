"""Tests for kvtwist.storage.journal: group commit, fsync policies, recovery, compaction, faults."""

from __future__ import annotations

import collections
import errno
import io
import json
import os
import shutil
import tempfile

from hypothesis import given, settings
from hypothesis import strategies as st
from twisted.internet import reactor
from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase, TestCase

from kvtwist.storage import datadir, fsck, records
from kvtwist.storage.journal import FileOps, Journal, JournalError
from kvtwist.engine.databases import DatabaseCountError
from kvtwist.engine.keyspace import DEL, EXPIRE_AT, FLUSH, PERSIST, SET
from kvtwist.engine.store import Store
from tests.engine.bagtype import ADD, TAKE, Bag


class FakeKeyspace:
    """A dict keyspace speaking the apply / snapshot_items / log / undo contract."""

    def __init__(self) -> None:
        self.state = fsck.MemoryState()
        self.log = None
        self.undo = None

    def apply(self, effect: tuple) -> None:
        self.state.apply(effect)

    def effect(self, effect: tuple) -> None:
        """Apply and log one effect, remembering what it replaced as Keyspace does."""
        if self.undo is not None:
            if effect[0] == FLUSH:
                self.undo.append((None, dict(self.state.data)))
            else:
                self.undo.append((effect[1], self.state.data.get(effect[1])))
        self.apply(effect)
        self.log(effect)

    def set(self, key: bytes, value: bytes, expire: int = 0) -> None:
        self.effect((SET, key, value, expire))

    def delete(self, key: bytes) -> None:
        self.effect((DEL, key))

    def track_undo(self) -> None:
        self.undo = collections.deque()

    def settle(self, count: int) -> None:
        for _ in range(count):
            self.undo.popleft()

    def rollback(self) -> list:
        changed = []
        while self.undo:
            key, prior = self.undo.pop()
            if key is None:
                self.state.data.update(prior)
                changed.append((FLUSH,))
                continue
            if prior is None:
                self.state.data.pop(key, None)
            else:
                self.state.data[key] = prior
            changed.append((DEL, key))
        return changed

    def snapshot_items(self) -> list:
        return [(k, v, e) for k, (v, e) in self.state.data.items()]

    def __len__(self) -> int:
        return len(self.state.data)


class ManualWorker:
    """A writer 'thread' the test runs by hand, so every step is deterministic."""

    def __init__(self) -> None:
        self.jobs = []
        self.started = False

    def start(self) -> None:
        self.started = True

    def submit(self, job, done) -> None:
        self.jobs.append((job, done))

    def run(self) -> int:
        count = 0
        while self.jobs:
            job, done = self.jobs.pop(0)
            try:
                value = job()
            except Exception as exc:
                done(False, exc)
            else:
                done(True, value)
            count += 1
        return count

    def stop(self):
        from twisted.internet.defer import succeed

        self.run()
        return succeed(None)


class Crash(Exception):
    """The simulated process death: no file operation runs after it."""


class FaultyOps(FileOps):
    """Real file operations that raise a chosen OSError while ``fault`` is set, or crash."""

    def __init__(self) -> None:
        self.fault = None
        self.only = None  # restrict the fault to one operation name
        self.calls = []
        self.crash_after = None
        self.crashed = False

    def _maybe_fail(self, name: str) -> None:
        if self.crash_after is not None and len(self.calls) >= self.crash_after:
            self.crashed = True
            raise Crash(name)
        self.calls.append(name)
        if self.fault is not None and self.only in (None, name):
            raise OSError(self.fault, os.strerror(self.fault))

    def truncate(self, fd, size):
        self._maybe_fail("truncate")
        FileOps.truncate(self, fd, size)

    def close(self, fd):
        self._maybe_fail("close")
        FileOps.close(self, fd)

    def fsync_dir(self, directory):
        self._maybe_fail("fsync_dir")
        FileOps.fsync_dir(self, directory)

    def remove(self, path):
        self._maybe_fail("remove")
        FileOps.remove(self, path)

    def write(self, fd, data, offset):
        if self.crash_after is not None and len(self.calls) >= self.crash_after:
            # Dying mid-write leaves part of the data behind.
            FileOps.write(self, fd, data[: len(data) // 2], offset)
        if self.fault is not None and self.only in (None, "write"):
            # A partial write first, as a full disk does.
            FileOps.write(self, fd, data[: len(data) // 2], offset)
        self._maybe_fail("write")
        FileOps.write(self, fd, data, offset)

    def fsync(self, fd):
        self._maybe_fail("fsync")
        FileOps.fsync(self, fd)

    def open(self, path):
        self._maybe_fail("open")
        return FileOps.open(self, path)

    def rename(self, source, target):
        self._maybe_fail("rename")
        FileOps.rename(self, source, target)


class Harness:
    """A journal on a temporary directory with a Clock, manual workers and faulty ops."""

    def __init__(self, case, directory=None, fsync="always", **kwargs) -> None:
        self.directory = directory or case.mktemp()
        self.clock = Clock()
        self.ops = FaultyOps()
        self.worker = ManualWorker()
        self.snapper = ManualWorker()
        self.keyspace = FakeKeyspace()
        self.journal = Journal.open(self.directory, self.keyspace, self.clock, fsync=fsync,
                                    fileops=self.ops, worker=self.worker,
                                    snapshot_worker=self.snapper, **kwargs)
        self.keyspace.log = self.journal.append
        self.journal.start()

    def turn(self) -> None:
        """End the reactor turn and let the writer finish everything."""
        self.clock.advance(0)
        while self.worker.run() or self.snapper.run():
            self.clock.advance(0)

    def reload(self, **kwargs) -> "Harness":
        self.stop()
        return Harness(None, self.directory, **kwargs)

    def stop(self) -> None:
        d = self.journal.stop()
        self.turn()
        self.worker.run()
        self.snapper.run()
        assert d.called


class GroupCommitTests(SynchronousTestCase):
    """Writes of one reactor turn are committed together and acknowledged in order."""

    def mktemp(self) -> str:
        directory = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, directory, True)
        return directory

    def test_one_commit_per_turn(self) -> None:
        """Many appends in one turn produce one write job and one fsync; acked follows."""
        h = Harness(self)
        for i in range(10):
            h.keyspace.set(b"k%d" % i, b"v")
        self.assertEqual((h.journal.appended, h.journal.acked), (10, 0))
        self.assertEqual(h.worker.jobs, [])
        h.clock.advance(0)
        self.assertEqual(len(h.worker.jobs), 1)
        h.worker.run()
        self.assertEqual(h.journal.acked, 10)
        self.assertEqual(h.ops.calls.count("fsync"), 1 + 1)  # one at load, one per commit

    def test_writes_during_commit_go_together(self) -> None:
        """Appends made while a commit is in flight wait, then go in one next commit."""
        h = Harness(self)
        h.keyspace.set(b"a", b"1")
        h.clock.advance(0)
        d = h.journal.when_acked(1)
        h.keyspace.set(b"b", b"2")
        h.clock.advance(0)
        h.keyspace.set(b"c", b"3")
        h.clock.advance(0)
        self.assertEqual(len(h.worker.jobs), 1)
        self.assertNoResult(d)
        job, done = h.worker.jobs.pop(0)
        done(True, job())
        self.assertIsNone(self.successResultOf(d)(1))
        self.assertEqual(h.journal.acked, 1)
        self.assertEqual(len(h.worker.jobs), 1)
        h.worker.run()
        self.assertEqual(h.journal.acked, 3)

    def test_waiters_fire_in_order(self) -> None:
        """when_acked Deferreds fire once their sequence number is acked, in sequence order."""
        h = Harness(self)
        fired = []
        for i in range(1, 4):
            h.keyspace.set(b"k", b"%d" % i)
        for seq in (3, 1, 2):
            h.journal.when_acked(seq).addCallback(lambda r, s=seq: fired.append((s, r(s))))
        h.turn()
        self.assertEqual(fired, [(1, None), (2, None), (3, None)])
        self.assertIsNone(self.successResultOf(h.journal.when_acked(2))(2))

    def test_early_waiters_fire_in_order_without_a_scan(self) -> None:
        """Waiters for numbers below the last one's (reads of older writes) are kept in a
        heap: registering one does not walk the others, and all fire in number order.

        Before, each was inserted into the deque after a backwards scan: with thousands
        of replies waiting behind a large commit, per-key gates (mostly older numbers)
        made that quadratic and stalled the reactor for hundreds of milliseconds.
        """
        h = Harness(self)
        fired = []
        for i in range(1, 2001):
            h.keyspace.set(b"k%d" % i, b"v")
        h.journal.on_acked(2000, lambda failure_for, arg: fired.append(arg), 2000)
        for seq in range(1999, 0, -1):
            h.journal.on_acked(seq, lambda failure_for, arg: fired.append(arg), seq)
        self.assertEqual((len(h.journal._waiters), len(h.journal._early)), (1, 1999))
        h.turn()
        self.assertEqual(fired, list(range(1, 2001)))

    def test_release_hooks_run_before_the_waiters(self) -> None:
        """Each batch's release hooks run before its waiters are called (the outbox goes first)."""
        h = Harness(self)
        calls = []
        h.journal.release_hooks.append(lambda: calls.append("hook"))
        h.keyspace.set(b"k", b"v")
        h.journal.on_acked(1, lambda failure_for, arg: calls.append(arg), "waiter")
        h.turn()
        self.assertEqual(calls, ["hook", "waiter"])

    def test_bad_policy(self) -> None:
        """An unknown fsync policy is refused with ValueError."""
        self.assertRaises(ValueError, Journal, "/nonexistent", FakeKeyspace(), Clock(),
                          fsync="sometimes")


class PipeLog:
    """A pipelined log the test answers by hand: it records each append and its callback."""

    pipelined = True
    path = "pipe"
    pid = None

    def __init__(self) -> None:
        self.appends = []  # [data, done] in the order sent

    def append(self, data: bytes, fsync: bool, done) -> None:
        self.appends.append((data, done))

    def answer(self, ok: bool, value=None) -> bytes:
        """Answer the oldest append; return its data."""
        data, done = self.appends.pop(0)
        done(ok, value if value is not None else len(data))
        return data


class PipelineTests(SynchronousTestCase):
    """With a pipelined log, commits go out each turn and a failure puts them back in order."""

    mktemp = GroupCommitTests.mktemp

    def harness(self) -> tuple:
        h = Harness(self)
        pipe = PipeLog()
        h.journal._log = pipe
        return h, pipe

    def records_of(self, *keys) -> bytes:
        return b"".join(records.encode_effect((SET, key, b"v", 0)) for key in keys)

    def test_commits_do_not_wait_for_earlier_ones(self) -> None:
        """Each turn's appends are sent at its end while earlier commits are unanswered."""
        h, pipe = self.harness()
        h.keyspace.set(b"a", b"v")
        h.clock.advance(0)
        h.keyspace.set(b"b", b"v")
        h.keyspace.set(b"c", b"v")
        h.clock.advance(0)
        self.assertEqual([data for data, _ in pipe.appends],
                         [self.records_of(b"a"), self.records_of(b"b", b"c")])
        pipe.answer(True)
        self.assertEqual(h.journal.acked, 1)
        pipe.answer(True)
        self.assertEqual((h.journal.acked, h.journal.info()["pending"]), (3, 0))

    def test_large_value_goes_to_the_log_as_pieces(self) -> None:
        """A commit holding a large SET hands the log pieces, the value among them uncopied."""
        h, pipe = self.harness()
        value = b"v" * records.LARGE_VALUE
        h.keyspace.set(b"a", b"1")
        h.keyspace.set(b"big", value)
        h.clock.advance(0)
        data = pipe.appends[0][0]
        self.assertIsInstance(data, list)
        self.assertTrue(any(piece is value for piece in data))
        expected = records.encode_effect((SET, b"a", b"1", 0)) + b"".join(
            records.encode_effect((SET, b"big", value, 0)))
        self.assertTrue(b"".join(data) == expected, "the commit's bytes differ")

    def test_failure_rolls_back_every_commit_in_flight(self) -> None:
        """A failed commit undoes its effects and every later one; refused answers change nothing.

        Before: the failed commits were kept and retried, so a write answered with an error
        was visible at once and stored once the disk recovered (an INCR retried after the
        error counted twice).
        """
        h, pipe = self.harness()
        for key in (b"a", b"b", b"c"):
            h.keyspace.set(key, b"v")
            h.clock.advance(0)
        h.keyspace.set(b"a", b"new")  # pending, not sent yet
        d = h.journal.when_acked(4)
        pipe.answer(True)
        pipe.answer(False, JournalError("disk full"))
        self.assertEqual(self.successResultOf(d)(4), "disk full")
        self.assertEqual(h.keyspace.state.data, {b"a": (b"v", 0)})
        self.assertEqual((h.journal.appended, h.journal.acked), (1, 1))
        pipe.answer(False, JournalError("not written: an earlier append failed (disk full)"))
        self.assertEqual(h.journal.failure, "disk full")
        self.assertEqual(h.keyspace.state.data, {b"a": (b"v", 0)})
        self.assertEqual(pipe.appends, [])

    def test_probe_clears_the_failure(self) -> None:
        """Once a second a no-op record probes the disk; the first one stored ends the failure."""
        h, pipe = self.harness()
        h.keyspace.set(b"a", b"v")
        h.clock.advance(0)
        pipe.answer(False, JournalError("disk full"))
        h.clock.advance(1)
        self.assertEqual([data for data, _ in pipe.appends], [records.NOOP_RECORD])
        pipe.answer(False, JournalError("disk full"))
        self.assertEqual(h.journal.failure, "disk full")
        h.clock.advance(1)
        pipe.answer(True)
        self.assertIsNone(h.journal.failure)
        h.keyspace.set(b"b", b"v")
        h.clock.advance(0)
        self.assertEqual([data for data, _ in pipe.appends], [self.records_of(b"b")])
        pipe.answer(True)
        self.assertEqual((h.journal.acked, h.keyspace.state.data), (1, {b"b": (b"v", 0)}))

    def test_rollback_hooks_get_the_undone_keys(self) -> None:
        """Hooks learn which keys a rollback changed, so caches and WATCHes can drop them."""
        h, pipe = self.harness()
        seen = []
        h.journal.rollback_hooks.append(seen.extend)
        h.keyspace.set(b"a", b"v")
        h.keyspace.set(b"b", b"v")
        h.clock.advance(0)
        pipe.answer(False, JournalError("disk full"))
        self.assertEqual(sorted(seen), [(DEL, b"a"), (DEL, b"b")])


class PendingKeysTests(SynchronousTestCase):
    """The journal notes which keys have a write not durable yet (storage/pending.py)."""

    mktemp = GroupCommitTests.mktemp
    harness = PipelineTests.harness

    def test_keys_noted_until_durable(self) -> None:
        """A key's gate is its last pending write, dropped once the commit holding it is durable."""
        h, pipe = self.harness()
        gate = h.journal.pending.gate
        h.keyspace.set(b"a", b"1")
        h.clock.advance(0)
        h.keyspace.set(b"b", b"1")
        h.clock.advance(0)
        h.keyspace.set(b"b", b"2")  # not sent yet
        self.assertEqual([gate(0, [k], 0, 1, 1) for k in (b"a", b"b", b"c")], [1, 3, 0])
        pipe.answer(True)
        self.assertEqual([gate(0, [k], 0, 1, 1) for k in (b"a", b"b")], [0, 3])
        pipe.answer(True)
        h.clock.advance(0)
        pipe.answer(True)
        self.assertEqual((len(h.journal.pending), h.journal.acked), (0, 3))

    def test_rollback_clears_the_notes(self) -> None:
        """After a rollback no key waits: its writes are undone and numbers are used again."""
        h, pipe = self.harness()
        h.keyspace.set(b"a", b"1")
        h.clock.advance(0)
        h.keyspace.set(b"b", b"1")
        pipe.answer(False, JournalError("disk full"))
        self.assertEqual(len(h.journal.pending), 0)
        self.assertEqual(h.journal.pending.gate(0, [b"a"], 0, 1, 1), 0)


class PolicyTests(SynchronousTestCase):
    """everysec fsyncs once a second; no never fsyncs on its own."""

    mktemp = GroupCommitTests.mktemp

    def test_everysec(self) -> None:
        """Under everysec a commit is acked after the write alone; the fsync follows within 1 s."""
        h = Harness(self, fsync="everysec")
        before = h.ops.calls.count("fsync")
        h.keyspace.set(b"a", b"1")
        h.turn()
        self.assertEqual(h.journal.acked, 1)
        self.assertEqual(h.ops.calls.count("fsync"), before)
        h.clock.advance(1)
        h.turn()
        self.assertEqual(h.ops.calls.count("fsync"), before + 1)
        self.assertEqual(h.journal.info()["last_fsync"], 1)

    def test_no(self) -> None:
        """Under no, commits never fsync until the journal is stopped."""
        h = Harness(self, fsync="no")
        before = h.ops.calls.count("fsync")
        h.keyspace.set(b"a", b"1")
        h.turn()
        h.clock.advance(5)
        h.turn()
        self.assertEqual((h.journal.acked, h.ops.calls.count("fsync")), (1, before))
        h.stop()
        self.assertEqual(h.ops.calls.count("fsync"), before + 1)


class RecoveryTests(SynchronousTestCase):
    """A reopened journal restores exactly the committed state."""

    mktemp = GroupCommitTests.mktemp

    def test_reload(self) -> None:
        """Every effect committed before stop is replayed on open."""
        h = Harness(self)
        h.keyspace.set(b"a", b"1")
        h.keyspace.set(b"b", b"2", 99)
        h.keyspace.delete(b"a")
        h.keyspace.effect((EXPIRE_AT, b"b", 123))
        h.keyspace.effect((PERSIST, b"b"))
        h.turn()
        h2 = h.reload()
        self.assertEqual(h2.keyspace.state.data, {b"b": (b"2", 0)})
        self.assertEqual(h2.journal.info()["last_load_keys"], 1)

    def test_torn_tail_is_cut(self) -> None:
        """A partial last record is dropped with a warning and the journal appends after the cut."""
        h = Harness(self)
        h.keyspace.set(b"a", b"1")
        h.turn()
        h.stop()
        path = datadir.journal_path(h.directory, 1)
        good = os.path.getsize(path)
        with open(path, "ab") as f:
            f.write(records.encode_effect((SET, b"b", b"2", 0))[:7])
        h2 = Harness(None, h.directory)
        self.assertEqual(os.path.getsize(path), good)
        h2.keyspace.set(b"c", b"3")
        h2.turn()
        h3 = h2.reload()
        self.assertEqual(h3.keyspace.state.data, {b"a": (b"1", 0), b"c": (b"3", 0)})

    def test_startup_log(self) -> None:
        """Opening logs how many keys were loaded and how long it took."""
        from kvtwist.storage import journal as journal_module

        h = Harness(self)
        h.keyspace.set(b"a", b"1")
        h.keyspace.set(b"b", b"2")
        h.turn()
        h.stop()
        events = []
        self.patch(journal_module.log, "observer", events.append)
        Harness(None, h.directory).stop()
        loaded = [e for e in events if e.get("log_format", "").startswith("Loaded")]
        self.assertEqual(loaded[0]["keys"], 2)
        self.assertGreaterEqual(loaded[0]["seconds"], 0.0)

    def test_torn_tail_every_offset(self) -> None:
        """Cutting inside the last two records warns, naming the file, offset and bytes dropped."""
        from kvtwist.storage import journal as journal_module

        h = Harness(self)
        h.keyspace.set(b"a", b"1")
        h.turn()
        h.keyspace.set(b"b", b"2" * 10)
        h.keyspace.set(b"c", b"3")
        h.turn()
        h.stop()
        path = datadir.journal_path(h.directory, 1)
        with open(path, "rb") as f:
            data = f.read()
        second = len(data) - len(records.encode_effect((SET, b"c", b"3", 0)))
        first = second - len(records.encode_effect((SET, b"b", b"2" * 10, 0)))
        for cut in range(first, len(data)):
            with open(path, "wb") as f:
                f.write(data[:cut])
            events = []
            self.patch(journal_module.log, "observer", events.append)
            h2 = Harness(None, h.directory)
            expected = {b"a": (b"1", 0)}
            if cut >= second:
                expected[b"b"] = (b"2" * 10, 0)
            self.assertEqual(h2.keyspace.state.data, expected)
            valid = second if cut >= second else first
            warnings = [e for e in events if e.get("log_format", "").startswith("Torn tail")]
            if cut == valid:
                self.assertEqual(warnings, [])
            else:
                warning = warnings[0]
                self.assertEqual((warning["path"], warning["offset"], warning["dropped"]),
                                 (path, valid, cut - valid))
            self.assertEqual(os.path.getsize(path), valid)
            h2.stop()

    def test_corruption_refuses_start(self) -> None:
        """A checksum failure before the tail raises JournalError (file, offset) unless repair."""
        h = Harness(self)
        h.keyspace.set(b"a", b"1")
        h.keyspace.set(b"b", b"2")
        h.turn()
        h.stop()
        path = datadir.journal_path(h.directory, 1)
        with open(path, "r+b") as f:
            f.seek(records.HEADER_SIZE + 10)
            f.write(b"X")
        exc = self.assertRaises(JournalError, Harness, None, h.directory)
        self.assertIn(path, str(exc))
        self.assertIn("offset %d" % records.HEADER_SIZE, str(exc))
        h2 = Harness(None, h.directory, repair=True)
        self.assertEqual(h2.keyspace.state.data, {})
        h2.keyspace.set(b"c", b"3")
        h2.turn()
        self.assertEqual(h2.reload().keyspace.state.data, {b"c": (b"3", 0)})

    def test_flush_replays(self) -> None:
        """A FLUSH record empties the keyspace on replay."""
        h = Harness(self)
        h.keyspace.set(b"a", b"1")
        h.keyspace.effect((FLUSH,))
        h.keyspace.set(b"z", b"9")
        h.turn()
        self.assertEqual(h.reload().keyspace.state.data, {b"z": (b"9", 0)})


_key = st.sampled_from([b"a", b"b", b"c\x00"])
_steps = st.lists(st.one_of(
    st.tuples(st.just(SET), _key, st.binary(max_size=8), st.sampled_from([0, 5, 2**40])),
    st.tuples(st.just(DEL), _key),
    st.tuples(st.just(EXPIRE_AT), _key, st.integers(1, 2**40)),
    st.tuples(st.just(PERSIST), _key),
    st.just((FLUSH,)),
    st.just(("turn",)),
    st.just(("compact",)),
), max_size=40)


class ReplayPropertyTests(SynchronousTestCase):
    """Any history of effects, commits and compactions reloads to the same state."""

    mktemp = GroupCommitTests.mktemp

    @settings(max_examples=40, deadline=None)
    @given(_steps)
    def test_reload_matches_memory(self, steps) -> None:
        """After any mix of effects, turns and compactions, a reload equals the in-memory state."""
        h = Harness(self)
        for step in steps:
            if step[0] == "turn":
                h.turn()
            elif step[0] == "compact":
                h.journal.compact().addErrback(lambda f: None)
            else:
                h.keyspace.effect(step)
        h.turn()
        expected = dict(h.keyspace.state.data)
        reloaded = h.reload()
        self.assertEqual(reloaded.keyspace.state.data, expected)
        reloaded.stop()


class CompactionTests(SynchronousTestCase):
    """Compaction writes a snapshot atomically and starts a new journal."""

    mktemp = GroupCommitTests.mktemp

    def test_compact(self) -> None:
        """Compaction leaves only the new snapshot and journal, and reload gives the same state."""
        h = Harness(self)
        for i in range(50):
            h.keyspace.set(b"k%d" % (i % 5), b"v%d" % i)
        h.turn()
        d = h.journal.compact()
        h.keyspace.set(b"after", b"x")
        h.turn()
        self.assertGreater(self.successResultOf(d), 0)
        self.assertEqual(sorted(os.listdir(h.directory)),
                         ["LOCK", "journal-2.kvj", "snapshot-2.kvs"])
        expected = dict(h.keyspace.state.data)
        self.assertEqual(h.reload().keyspace.state.data, expected)

    def test_crash_at_each_operation(self) -> None:
        """A crash after any file operation of a compaction leaves every acked write loadable."""
        steps = 0
        while True:
            h = Harness(self)
            for i in range(20):
                h.keyspace.set(b"k%d" % i, b"v%d" % i)
            h.turn()
            h.ops.crash_after = len(h.ops.calls) + steps
            h.journal.compact().addErrback(lambda f: f.trap(JournalError))
            h.keyspace.set(b"late", b"1")
            h.keyspace.delete(b"k0")
            h.turn()
            acked = h.journal.acked
            crashed = h.ops.crashed
            loaded = FakeKeyspace()
            datadir.load(h.directory, loaded.apply)
            base = {b"k%d" % i: (b"v%d" % i, 0) for i in range(20)}
            with_late = dict(base)
            with_late[b"late"] = (b"1", 0)
            final = dict(with_late)
            del final[b"k0"]
            # Acked writes must be there; unacked ones may or may not be, in log order.
            allowed = [final] if acked == 22 else [base, with_late, final]
            self.assertIn(loaded.state.data, allowed, "crash after %d operations" % steps)
            if not crashed:
                break
            steps += 1
        self.assertGreater(steps, 8)

    def test_snapshot_holding_a_rolled_back_write_is_dropped(self) -> None:
        """A snapshot taken while a write was pending is not installed if that write fails.

        Before: the snapshot (with the write the disk refused) replaced the journal, so the
        failed write came back at the next start.
        """
        h = Harness(self)
        h.keyspace.set(b"a", b"1")
        h.turn()
        h.keyspace.set(b"b", b"2")  # pending: part of the snapshot's view
        d = h.journal.compact()
        h.worker.run()  # the rotation
        h.ops.fault, h.ops.only = errno.ENOSPC, "write"
        h.clock.advance(0)
        h.worker.run()  # b's commit fails and is rolled back
        self.assertEqual(h.keyspace.state.data, {b"a": (b"1", 0)})
        h.ops.fault = None
        h.turn()  # the snapshot is written, then dropped
        self.failureResultOf(d, JournalError)
        self.assertFalse([n for n in os.listdir(h.directory) if n.endswith(".tmp")])
        h.clock.advance(1)
        h.turn()  # the probe ends the failure
        self.assertEqual(h.reload().keyspace.state.data, {b"a": (b"1", 0)})

    def test_auto_compaction(self) -> None:
        """The journal compacts by itself once it outgrows max(min bytes, ratio x snapshot)."""
        h = Harness(self, compact_min_bytes=1000, compact_ratio=2.0)
        for _ in range(100):
            h.keyspace.set(b"key", b"x" * 20)
        h.turn()
        self.assertEqual(h.journal.info()["compactions"], 1)
        self.assertLess(h.journal.info()["journal_bytes"], 1000)


class FaultTests(SynchronousTestCase):
    """Disk faults fail the affected writes clearly and heal when the disk does."""

    mktemp = GroupCommitTests.mktemp

    def check_fault(self, code: int, only=None, fsync="always") -> None:
        h = Harness(self, fsync=fsync)
        h.keyspace.set(b"ok", b"1")
        h.turn()
        h.ops.fault, h.ops.only = code, only
        h.keyspace.set(b"bad", b"2")
        d = h.journal.when_acked(2)
        h.turn()
        reason = self.successResultOf(d)(2)
        self.assertIn(os.strerror(code), reason)
        self.assertIn("journal-1.kvj", reason)
        self.assertEqual(h.journal.failure, reason)
        self.assertEqual(h.journal.acked, 1)
        # The failed write is undone in memory, as it is absent on disk.
        self.assertEqual(h.keyspace.state.data, {b"ok": (b"1", 0)})
        loaded = FakeKeyspace()
        result = datadir.load(h.directory, loaded.apply)
        self.assertEqual(loaded.state.data, {b"ok": (b"1", 0)})
        self.assertEqual(bool(result.torn), only is None)
        h.clock.advance(1)
        h.turn()
        self.assertEqual(h.journal.failure is not None, True)  # the probe failed too
        h.ops.fault = None
        h.clock.advance(1)
        h.turn()
        self.assertEqual((h.journal.acked, h.journal.failure), (1, None))
        h.keyspace.set(b"later", b"3")
        h.turn()
        self.assertEqual(datadir.load(h.directory, FakeKeyspace().apply).torn, [])
        self.assertEqual(set(h.reload().keyspace.state.data), {b"ok", b"later"})

    def test_enospc(self) -> None:
        """A full disk fails writes with 'No space left on device' until space returns."""
        self.check_fault(errno.ENOSPC, "write")

    def test_eio_on_fsync(self) -> None:
        """An fsync EIO fails the commit, which is undone; writes work again once the disk does."""
        self.check_fault(errno.EIO, "fsync")

    def test_read_only(self) -> None:
        """EROFS on every operation fails writes, which recover once the file system is writable."""
        self.check_fault(errno.EROFS)

    def test_everysec_fsync_fault(self) -> None:
        """Under everysec a failing background fsync sets the failure until an fsync succeeds."""
        h = Harness(self, fsync="everysec")
        h.keyspace.set(b"a", b"1")
        h.turn()
        self.assertEqual(h.journal.acked, 1)
        h.ops.fault, h.ops.only = errno.EIO, "fsync"
        h.clock.advance(1)
        h.turn()
        self.assertIn("Input/output error writing", h.journal.failure)
        h.ops.fault = None
        h.keyspace.set(b"b", b"2")  # written once the failure clears
        h.clock.advance(1)
        h.turn()
        self.assertIsNone(h.journal.failure)
        self.assertEqual(h.journal.acked, 2)

    def test_compaction_fault(self) -> None:
        """An unrenamable snapshot fails compaction with JournalError; the data stays loadable."""
        h = Harness(self)
        h.keyspace.set(b"a", b"1")
        h.turn()
        h.ops.fault, h.ops.only = errno.ENOSPC, "rename"
        d = h.journal.compact()
        h.turn()
        self.failureResultOf(d, JournalError)
        self.assertIsNone(h.journal.failure)
        h.ops.fault = None
        h.keyspace.set(b"b", b"2")
        h.turn()
        self.assertFalse([n for n in os.listdir(h.directory) if n.endswith(".tmp")])
        self.assertEqual(set(h.reload().keyspace.state.data), {b"a", b"b"})


class ServerContractTests(SynchronousTestCase):
    """The server's durability gate with this journal: replies await commits, faults are errors."""

    mktemp = GroupCommitTests.mktemp

    def test_gate_and_fault(self) -> None:
        """A SET reply awaits its commit; ENOSPC makes it an error, reads work, writes recover."""
        from twisted.internet.testing import StringTransport

        from kvtwist.engine.store import Store
        from kvtwist.serve.factory import KVFactory

        clock = Clock()
        store = Store(clock)
        ops, worker = FaultyOps(), ManualWorker()
        journal = Journal.open(self.mktemp(), store.keyspace, clock, fileops=ops, worker=worker,
                               snapshot_worker=ManualWorker())
        store.set_journal(journal)
        journal.start()
        proto = KVFactory(store).buildProtocol(None)
        transport = StringTransport()
        proto.makeConnection(transport)

        def run() -> bytes:
            clock.advance(0)
            worker.run()
            out = transport.value()
            transport.clear()
            return out

        proto.dataReceived(b"*3\r\n$3\r\nSET\r\n$1\r\na\r\n$1\r\n1\r\n")
        self.assertEqual(transport.value(), b"")  # not durable yet: no reply
        self.assertEqual(run(), b"+OK\r\n")
        ops.fault, ops.only = errno.ENOSPC, "write"
        proto.dataReceived(b"*3\r\n$3\r\nSET\r\n$1\r\nb\r\n$1\r\n2\r\n")
        reply = run()
        self.assertTrue(reply.startswith(b"-ERR persistence failed"), reply)
        self.assertIn(b"No space left on device", reply)
        proto.dataReceived(b"*2\r\n$3\r\nGET\r\n$1\r\na\r\n")
        self.assertEqual(run(), b"$1\r\n1\r\n")
        ops.fault = None
        clock.advance(1)
        run()
        self.assertIsNone(journal.failure)
        proto.dataReceived(b"*3\r\n$3\r\nSET\r\n$1\r\nc\r\n$1\r\n3\r\n")
        self.assertEqual(run(), b"+OK\r\n")


    def test_failed_write_is_never_seen(self) -> None:
        """A write the disk refused is undone: a reader in its turn errs, a retry counts once.

        Before: the failed INCR stayed applied (another client read 2, then the retried
        INCR made it 3) and was written to the journal once the disk recovered.
        """
        from twisted.internet.testing import StringTransport

        from kvtwist.engine.store import Store
        from kvtwist.serve.factory import KVFactory

        clock = Clock()
        store = Store(clock)
        ops, worker = FaultyOps(), ManualWorker()
        directory = self.mktemp()
        journal = Journal.open(directory, store.keyspace, clock, fileops=ops, worker=worker,
                               snapshot_worker=ManualWorker())
        store.set_journal(journal)
        journal.start()
        factory = KVFactory(store)
        writer, reader = factory.buildProtocol(None), factory.buildProtocol(None)
        out = {}
        for proto in (writer, reader):
            out[proto] = StringTransport()
            proto.makeConnection(out[proto])

        def run(proto) -> bytes:
            clock.advance(0)
            worker.run()
            value = out[proto].value()
            out[proto].clear()
            return value

        incr, get = b"INCR n\r\n", b"GET n\r\n"
        writer.dataReceived(incr)
        self.assertEqual(run(writer), b"(integer) 1\r\n")
        ops.fault, ops.only = errno.ENOSPC, "write"
        writer.dataReceived(incr)
        reader.dataReceived(get)  # same turn: it saw the INCR that is about to fail
        self.assertIn(b"persistence failed", run(writer))
        self.assertIn(b"persistence failed", run(reader))
        reader.dataReceived(get)
        self.assertEqual(run(reader), b'"1"\r\n')
        writer.dataReceived(incr)  # refused outright while the disk is failing
        self.assertIn(b"MISCONF", run(writer))
        ops.fault = None
        clock.advance(1)
        run(writer)
        self.assertIsNone(journal.failure)
        writer.dataReceived(incr)
        self.assertEqual(run(writer), b"(integer) 2\r\n")
        d = journal.stop()
        worker.run()
        self.successResultOf(d)
        reloaded = Store(Clock())
        again = Journal.open(directory, reloaded.keyspace, Clock(), worker=ManualWorker(),
                             snapshot_worker=ManualWorker())
        self.assertEqual(reloaded.keyspace.get(b"n"), b"2")
        again._unlock()


class ThreadTests(TestCase):
    """With the real reactor and writer thread, writes commit off the reactor thread."""

    def test_real_thread(self) -> None:
        """Appends are written and fsynced in the writer thread, not the reactor's, and reload."""
        import threading

        directory = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, directory, True)
        keyspace = FakeKeyspace()
        threads = []

        class RecordingOps(FileOps):
            def write(self, fd, data, offset):
                threads.append(threading.current_thread())
                FileOps.write(self, fd, data, offset)

        journal = Journal.open(directory, keyspace, reactor, fsync="always", fileops=RecordingOps())
        del threads[:]  # the synchronous load writes the header on the reactor thread
        keyspace.log = journal.append
        journal.start()
        for i in range(100):
            keyspace.set(b"k%d" % i, b"v%d" % i)
        d = journal.when_acked(100)

        def acked(failure_for):
            self.assertIsNone(failure_for(100))
            self.assertEqual(journal.acked, 100)
            return journal.compact()

        def reopen(_):
            keyspace.set(b"after", b"1")
            return journal.stop()

        def check(_):
            self.assertTrue(threads)
            self.assertNotIn(threading.main_thread(), threads)
            again = FakeKeyspace()
            Journal.open(directory, again, reactor).stop()
            self.assertEqual(again.state.data, keyspace.state.data)

        return d.addCallback(acked).addCallback(reopen).addCallback(check)


class DirectoryLockTests(SynchronousTestCase):
    """One process at a time appends to a data directory."""

    def mktemp(self) -> str:
        directory = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, directory, True)
        return directory

    def test_second_open_refused_until_stop(self) -> None:
        """A second journal on a directory in use is refused, naming the holder, until stop."""
        h = Harness(self)
        error = self.assertRaises(JournalError, Harness, None, h.directory)
        self.assertIn("in use by another process (pid %d)" % (os.getpid(),), str(error))
        h.reload().stop()


class StoreHarness(Harness):
    """A Harness journalling a real Store of several databases (engine.databases)."""

    def __init__(self, case, directory=None, databases=16, **kwargs) -> None:
        self.directory = directory or case.mktemp()
        self.clock = Clock()
        self.ops = FaultyOps()
        self.worker = ManualWorker()
        self.snapper = ManualWorker()
        self.store = Store(self.clock, databases=databases)
        self.journal = Journal.open(self.directory, self.store.databases, self.clock,
                                    fileops=self.ops, worker=self.worker,
                                    snapshot_worker=self.snapper, **kwargs)
        self.store.set_journal(self.journal)
        self.journal.start()
        self.session = self.store.new_session()

    def run(self, *args):
        """Run one command on the harness's session; return its reply."""
        return self.session.execute([a.encode() if isinstance(a, str) else a for a in args])

    def reload(self, **kwargs) -> "StoreHarness":
        self.stop()
        return StoreHarness(None, self.directory, **kwargs)

    def contents(self) -> list:
        """Return each database's (index, sorted (key, value, expiry)) that holds keys."""
        return [(keyspace.index, sorted(keyspace.snapshot_items()))
                for keyspace in self.store.databases if len(keyspace)]


class DatabasesTests(SynchronousTestCase):
    """The journal and snapshots keep every database, and SWAPDB, across restarts."""

    mktemp = GroupCommitTests.mktemp

    def fill(self, h) -> None:
        h.run("set", "a", "zero")
        h.run("select", "3")
        h.run("set", "a", "three", "pxat", "4102444800000")
        h.run("select", "15")
        h.run("set", "b", "fifteen")
        h.run("append", "b", "!")
        h.run("select", "0")

    def test_databases_survive_a_restart(self) -> None:
        """Keys of databases 0, 3 and 15 (with expiry, SETRANGE and SWAPDB) load back in place."""
        h = StoreHarness(self)
        self.fill(h)
        h.run("swapdb", "0", "3")
        h.run("set", "after-swap", "x")
        h.turn()
        expected = h.contents()
        self.assertEqual([index for index, _ in expected], [0, 3, 15])
        self.assertEqual(h.reload().contents(), expected)

    def test_compaction_keeps_databases_and_swaps(self) -> None:
        """A snapshot taken with a SWAPDB and writes still pending reloads to the same state."""
        h = StoreHarness(self)
        self.fill(h)
        h.turn()
        h.run("select", "1")
        h.run("set", "pending", "1")
        h.run("swapdb", "1", "2")  # pending while the snapshot is taken: replayed over it
        d = h.journal.compact()
        h.run("set", "later", "2")
        h.turn()
        self.assertGreater(self.successResultOf(d), 0)
        expected = h.contents()
        again = h.reload()
        self.assertEqual(again.contents(), expected)
        self.assertEqual(again.reload().contents(), expected)

    def test_too_few_databases_refuses_to_start(self) -> None:
        """Data in database 15 cannot load into a server of 4 databases: a clear error."""
        h = StoreHarness(self)
        self.fill(h)
        h.turn()
        h.stop()
        with self.assertRaises(DatabaseCountError) as raised:
            StoreHarness(None, h.directory, databases=4)
        self.assertIn("--databases 16", str(raised.exception))

    def test_version_1_directory_loads(self) -> None:
        """A data directory written before databases existed loads into database 0, and grows."""
        directory = os.path.join(self.mktemp(), "v1")
        shutil.copytree(os.path.join(os.path.dirname(__file__), "data", "v1"), directory)
        h = StoreHarness(None, directory)
        self.assertEqual(h.run("get", "greeting"), b"hello world!")
        self.assertEqual(h.run("get", "counter"), b"42")
        self.assertEqual(h.run("get", "bin"), b"a\tb")
        self.assertIsNone(h.run("get", "gone"))
        self.assertEqual(h.run("ttl", "forever"), -1)
        self.assertEqual(h.store.keyspace.expire_of(b"tmp"), 4102444800000)
        h.run("select", "2")
        h.run("set", "new", "v")
        h.turn()
        self.assertEqual(h.reload().contents()[-1], (2, [(b"new", b"v", 0)]))


class TypedValueTests(SynchronousTestCase):
    """Operations on typed values (not idempotent) survive replay and compaction exactly once."""

    mktemp = GroupCommitTests.mktemp

    def test_operations_survive_a_restart(self) -> None:
        """Adds and takes on typed values, in several databases, reload to the same values."""
        h = StoreHarness(self)
        ks = h.store.databases[0]
        ks.mutate(b"bag", Bag, ADD, (b"a", b"b", b"c"))
        ks.mutate(b"bag", Bag, TAKE, (b"1",))
        h.store.databases[4].mutate(b"bag", Bag, ADD, (b"x",))
        ks.set(b"whole", Bag([b"w"]), 4102444800000)
        h.turn()
        expected = self.values(h)
        self.assertEqual(self.values(h.reload()), expected)

    def test_compaction_with_pending_operations(self) -> None:
        """Operations still pending when a snapshot is taken are not replayed twice over it.

        They are in the snapshot and also the first records of the new journal: the
        snapshot's SKIP count makes recovery pass over them.
        """
        h = StoreHarness(self)
        ks = h.store.databases[0]
        ks.mutate(b"bag", Bag, ADD, (b"a",))
        h.turn()
        ks.mutate(b"bag", Bag, ADD, (b"pending",))  # in the snapshot's view, not yet written
        h.store.databases[2].mutate(b"other", Bag, ADD, (b"p2",))
        d = h.journal.compact()
        ks.mutate(b"bag", Bag, ADD, (b"after",))
        h.turn()
        self.assertGreater(self.successResultOf(d), 0)
        expected = self.values(h)
        self.assertEqual(expected[(0, b"bag")], [b"a", b"pending", b"after"])
        again = h.reload()
        self.assertEqual(self.values(again), expected)
        self.assertEqual(self.values(again.reload()), expected)

    def test_rolled_back_operation_is_gone(self) -> None:
        """An operation the disk refused is taken back in memory and absent after a restart."""
        h = StoreHarness(self)
        ks = h.store.databases[0]
        ks.mutate(b"bag", Bag, ADD, (b"a",))
        h.turn()
        h.ops.fault, h.ops.only = errno.ENOSPC, "write"
        ks.mutate(b"bag", Bag, TAKE, (b"1",))
        ks.mutate(b"new", Bag, ADD, (b"n",))
        h.turn()
        self.assertEqual(self.values(h), {(0, b"bag"): [b"a"]})
        h.ops.fault = None
        h.clock.advance(1)
        h.turn()
        self.assertEqual(self.values(h.reload()), {(0, b"bag"): [b"a"]})

    def test_check_and_export_read_operations(self) -> None:
        """kvtwist check counts typed keys; export writes their commands and typed JSON."""
        h = StoreHarness(self)
        ks = h.store.databases[0]
        ks.mutate(b"bag", Bag, ADD, (b"a", b"b"))
        ks.mutate(b"bag", Bag, TAKE, (b"1",))
        ks.expire_at(b"bag", 4102444800000)
        h.turn()
        h.stop()
        report = fsck.check(h.directory)
        self.assertTrue(report.ok, report.lines)
        self.assertIn("1 keys", report.lines[-1])
        out = io.BytesIO()
        fsck.export(h.directory, "resp", out)
        self.assertEqual(out.getvalue(),
                         b"*3\r\n$5\r\nRPUSH\r\n$3\r\nbag\r\n$1\r\na\r\n"
                         b"*3\r\n$9\r\nPEXPIREAT\r\n$3\r\nbag\r\n$13\r\n4102444800000\r\n")
        out = io.BytesIO()
        fsck.export(h.directory, "json", out)
        self.assertEqual(json.loads(out.getvalue()), {
            "key": "bag", "type": "bag", "items": ["a"], "expire_at_ms": 4102444800000})

    @staticmethod
    def values(h) -> dict:
        return {(keyspace.index, key): value.items if value.__class__ is Bag else value
                for keyspace in h.store.databases for key, value in keyspace.data.items()}
