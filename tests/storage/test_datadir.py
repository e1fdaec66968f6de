"""Tests for kvtwist.storage.datadir: file layout, locking, and loading a data directory."""

from __future__ import annotations

import os
import shutil
import tempfile
from unittest import skipIf

from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from kvtwist.storage import datadir, records
from kvtwist.storage.fsck import MemoryState
from kvtwist.engine.keyspace import DEL, EXPIRE_AT, PERSIST, SET, Keyspace


def write_dir(directory: str, snapshot=None, journals=()) -> None:
    """Write a snapshot (SET items, generation 1) and journals (lists of effects, gens 1..)."""
    if snapshot is not None:
        with open(datadir.snapshot_path(directory, 1), "wb") as f:
            f.write(records.encode_header(records.SNAPSHOT, 1))
            for item in snapshot:  # (key, value, expiry) or a (SELECT|DBMAP, ...) marker
                f.write(records.encode_set(*item) if len(item) == 3
                        else records.encode_marker(item))
            f.write(records.encode_end(len(snapshot)))
    for gen, effects in enumerate(journals, 1):
        with open(datadir.journal_path(directory, gen), "wb") as f:
            f.write(records.encode_header(records.JOURNAL, gen))
            for effect in effects:
                f.write(records.encode_effect(effect))


class LoadTests(SynchronousTestCase):
    """datadir.load replays the newest snapshot and the journals after it."""

    def setUp(self) -> None:
        self.dir = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, self.dir, True)

    def load(self, **kwargs):
        state = MemoryState()
        result = datadir.load(self.dir, state.apply, **kwargs)
        return state.data, result

    def test_snapshot_then_journals(self) -> None:
        """Journal effects apply on top of the snapshot, in generation order."""
        write_dir(self.dir, [(b"a", b"1", 0), (b"b", b"2", 0)],
                  [[(DEL, b"a")], [(SET, b"c", b"3", 5)]])
        data, result = self.load()
        self.assertEqual(data, {b"b": (b"2", 0), b"c": (b"3", 5)})
        self.assertEqual((result.journal_generation, result.records), (2, 4))

    def test_batched_load_matches_one_by_one(self) -> None:
        """Loading with load_items equals applying every effect, for MemoryState and Keyspace."""
        write_dir(self.dir, [(b"a", b"1", 0), (b"b", b"2", 9), (b"c", b"3", 0)],
                  [[(SET, b"a", b"4", 8), (DEL, b"c"), (SET, b"c", b"5", 0), (EXPIRE_AT, b"c", 6)],
                   [(SET, b"b", b"6", 0), (PERSIST, b"a"), (SET, b"d", b"7", 0)]])
        plain, batched = MemoryState(), MemoryState()
        datadir.load(self.dir, plain.apply)
        result = datadir.load(self.dir, batched.apply, load_items=batched.load_items)
        self.assertEqual(batched.data, plain.data)
        self.assertEqual(batched.data[b"c"], (b"5", 6))
        self.assertEqual(result.records, 10)
        one, bulk = Keyspace(Clock()), Keyspace(Clock())
        datadir.load(self.dir, one.apply)
        datadir.load(self.dir, bulk.apply, load_items=bulk.load_items)
        self.assertEqual((bulk.data, bulk.expires), (one.data, one.expires))
        self.assertEqual(bulk.expires, {b"c": 6})

    def test_missing_journal_is_refused(self) -> None:
        """A gap in journal generations is refused unless repair drops what follows it."""
        write_dir(self.dir, None, [[(SET, b"a", b"1", 0)], [(SET, b"b", b"2", 0)],
                                   [(SET, b"c", b"3", 0)]])
        os.remove(datadir.journal_path(self.dir, 2))
        self.assertRaises(datadir.DataError, self.load)
        data, result = self.load(repair=True)
        self.assertEqual(data, {b"a": (b"1", 0)})
        self.assertEqual(len(result.repaired), 1)

    def test_incomplete_snapshot_is_corrupt(self) -> None:
        """A snapshot without its END record is refused, and repair keeps its complete records."""
        write_dir(self.dir, [(b"a", b"1", 0), (b"b", b"2", 0)], [[]])
        path = datadir.snapshot_path(self.dir, 1)
        with open(path, "r+b") as f:
            f.truncate(os.path.getsize(path) - 3)
        exc = self.assertRaises(datadir.DataError, self.load)
        self.assertIn(path, str(exc))
        data, _ = self.load(repair=True)
        self.assertEqual(data, {b"a": (b"1", 0), b"b": (b"2", 0)})
        self.assertEqual(self.load()[0], data)

    def test_wrong_generation_in_header(self) -> None:
        """A journal whose header names another generation than its file name is corrupt."""
        write_dir(self.dir, None, [[(SET, b"a", b"1", 0)]])
        os.rename(datadir.journal_path(self.dir, 1), datadir.journal_path(self.dir, 4))
        self.assertRaises(datadir.DataError, self.load)

    def test_stale_files_listed(self) -> None:
        """Journals older than the snapshot and temporary files are listed as stale, not loaded."""
        write_dir(self.dir, [(b"a", b"1", 0)], [[(SET, b"old", b"x", 0)]])
        os.rename(datadir.snapshot_path(self.dir, 1), datadir.snapshot_path(self.dir, 2))
        with open(datadir.snapshot_path(self.dir, 2), "r+b") as f:
            f.write(records.encode_header(records.SNAPSHOT, 2))
        open(os.path.join(self.dir, "snapshot-3.kvs.tmp"), "wb").close()
        data, result = self.load()
        self.assertEqual(data, {b"a": (b"1", 0)})
        self.assertEqual(len(result.stale), 2)


class RecordingOps(datadir.FileOps):
    """FileOps that also keeps every piece it was asked to write, and the calls in order
    (``("write", length)``, ``("fsync",)``)."""

    def __init__(self) -> None:
        self.pieces = []
        self.calls = []

    def write(self, fd: int, data, offset: int) -> None:
        self.pieces.extend(data if data.__class__ is list else [data])
        self.calls.append(("write", sum(map(len, data)) if data.__class__ is list else len(data)))
        datadir.FileOps.write(self, fd, data, offset)

    def fsync(self, fd: int) -> None:
        self.calls.append(("fsync",))
        datadir.FileOps.fsync(self, fd)


def is_or_views(piece, value: bytes) -> bool:
    """Whether ``piece`` is ``value`` itself or a view of it (not a copy)."""
    return piece is value or (piece.__class__ is memoryview and piece.obj is value)


class SnapshotWriteTests(SynchronousTestCase):
    """write_snapshot_temp writes what load reads back, large values without a copy."""

    def setUp(self) -> None:
        self.dir = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, self.dir, True)

    def test_large_values_are_written_uncopied(self) -> None:
        """A large value goes to the file as the very bytes object the keyspace holds.

        Before: each was framed with a join and joined again into its write chunk, two
        copies of the value; under PyPy each copy held the GIL (the reactor) for 10-20 ms
        per 16 MB, and a compaction after a restart stalled every client for 0.3-0.4 s.
        """
        big = b"x" * records.LARGE_VALUE + b"y"
        other = b"z" * (2 * records.LARGE_VALUE)
        items = [(b"a", b"1", 0), (b"big", big, 0), (b"b", b"2", 7), (b"other", other, 9),
                 (b"c", b"3", 0)]
        ops = RecordingOps()
        size = datadir.write_snapshot_temp(ops, self.dir, 1, items)
        self.assertTrue(any(is_or_views(piece, big) for piece in ops.pieces),
                        "the value was copied")
        self.assertTrue(any(is_or_views(piece, other) for piece in ops.pieces),
                        "the value was copied")
        datadir.install_snapshot(ops, self.dir, 1)
        self.assertEqual(os.path.getsize(datadir.snapshot_path(self.dir, 1)), size)
        with open(datadir.journal_path(self.dir, 1), "wb") as f:
            f.write(records.encode_header(records.JOURNAL, 1))
        state = MemoryState()
        datadir.load(self.dir, state.apply)
        self.assertEqual(state.data, {b"a": (b"1", 0), b"big": (big, 0), b"b": (b"2", 7),
                                      b"other": (other, 9), b"c": (b"3", 0)})

    def test_snapshot_is_synced_as_it_is_written(self) -> None:
        """No more than SNAPSHOT_SYNC bytes are written between two fdatasyncs, large values
        are cut at the mark as views, and the snapshot reads back whole.

        Before: one fsync at the end flushed the whole snapshot (hundreds of MB in the
        soak), and the journal's fsyncs behind it took 60-100 ms, every write waiting.
        """
        self.patch(datadir, "SNAPSHOT_SYNC", 256 * 1024)
        big = bytes(range(256)) * (3 * records.LARGE_VALUE // 256) + b"tail"
        items = [(b"k%05d" % n, b"v" * 200, 0) for n in range(4000)]
        items[1000:1000] = [(b"big", big, 0)]
        ops = RecordingOps()
        size = datadir.write_snapshot_temp(ops, self.dir, 1, items)
        unsynced, written = 0, 0
        for call in ops.calls:
            if call[0] == "fsync":
                unsynced = 0
            else:
                unsynced += call[1]
                written += call[1]
                self.assertLessEqual(unsynced, 256 * 1024)
        self.assertEqual(written, size)
        self.assertGreater(ops.calls.count(("fsync",)), size // (256 * 1024))
        self.assertTrue(any(is_or_views(piece, big) and len(piece) < len(big)
                            for piece in ops.pieces))
        datadir.install_snapshot(ops, self.dir, 1)
        with open(datadir.journal_path(self.dir, 1), "wb") as f:
            f.write(records.encode_header(records.JOURNAL, 1))
        state = MemoryState()
        datadir.load(self.dir, state.apply)
        self.assertEqual(len(state.data), 4001)
        self.assertEqual(state.data[b"big"], (big, 0))

    def test_small_records_share_a_write(self) -> None:
        """Small records are joined into chunks, not written one system call each."""
        items = [(b"k%d" % n, b"v", 0) for n in range(1000)]
        ops = RecordingOps()
        datadir.write_snapshot_temp(ops, self.dir, 1, items)
        self.assertEqual(len(ops.pieces), 1)


class LockTests(SynchronousTestCase):
    """lock_directory keeps a second process off a data directory."""

    def setUp(self) -> None:
        self.dir = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, self.dir, True)

    def test_lock_released_on_close(self) -> None:
        """Closing the lock's descriptor lets the next holder take it."""
        os.close(datadir.lock_directory(self.dir))
        os.close(datadir.lock_directory(self.dir))

    def _held_by(self, pid: int) -> int:
        # Another open file description: its flock conflicts even within this process.
        fd = datadir.lock_directory(self.dir)
        os.ftruncate(fd, 0)  # (a pid shorter than this process's must not leave digits)
        os.pwrite(fd, b"%d\n" % pid, 0)
        return fd

    def _dead_pid(self) -> int:
        pid = os.fork()
        if pid == 0:
            os._exit(0)
        os.waitpid(pid, 0)
        return pid

    def test_live_holder_is_refused_at_once(self) -> None:
        """A directory held by a running server is refused without waiting, naming its pid."""
        held = self._held_by(os.getpid())
        self.addCleanup(os.close, held)
        sleeps = []
        error = self.assertRaises(datadir.DataError, datadir.lock_directory, self.dir, 10.0,
                                  sleeps.append)
        self.assertIn("pid %d" % os.getpid(), str(error))
        self.assertEqual(sleeps, [])

    def test_dead_holders_writer_is_waited_for(self) -> None:
        """When the named server is dead, its journal writer is given time to let go."""
        held = [self._held_by(self._dead_pid())]

        def sleep(seconds):
            if len(sleeps) == 2:
                os.close(held.pop())
            sleeps.append(seconds)

        sleeps = []
        os.close(datadir.lock_directory(self.dir, 10.0, sleep))
        self.assertEqual(len(sleeps), 3)

    def test_dead_holders_writer_that_never_lets_go(self) -> None:
        """A lock still held after the wait is refused, saying who may hold it."""
        dead = self._dead_pid()
        held = self._held_by(dead)
        self.addCleanup(os.close, held)
        error = self.assertRaises(datadir.DataError, datadir.lock_directory, self.dir, 0.0,
                                  lambda seconds: None)
        self.assertIn("pid %d, or its journal writer" % dead, str(error))

    @skipIf(not hasattr(os, "waitid"), "needs os.waitid (PyPy 3.9 lacks it)")
    def test_zombie_holder_counts_as_dead(self) -> None:
        """A server that exited but was not yet collected by its parent is not waited on as live."""
        pid = os.fork()
        if pid == 0:
            os._exit(0)
        self.addCleanup(os.waitpid, pid, 0)
        os.waitid(os.P_PID, pid, os.WEXITED | os.WNOWAIT)  # exited, left uncollected
        self.assertFalse(datadir._alive(str(pid)))
        self.assertTrue(datadir._alive(str(os.getpid())))
        self.assertTrue(datadir._alive("not-a-pid"))
