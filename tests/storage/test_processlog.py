"""Tests for kvtwist.storage.processlog: the journal appended to by a child process."""

from __future__ import annotations

import fcntl
import os
import resource
import shutil
import signal
import tempfile

from twisted.internet import reactor, task
from twisted.internet.defer import Deferred, inlineCallbacks
from twisted.trial.unittest import TestCase

from kvtwist.storage import datadir, processlog, records, writer
from kvtwist.storage.datadir import FileOps, JournalError
from kvtwist.storage.journal import Journal
from kvtwist.engine.keyspace import Keyspace
from kvtwist.storage.processlog import ProcessLog


def call(method, *args) -> Deferred:
    """Return a Deferred firing with ``(ok, value)`` of one ProcessLog request."""
    d = Deferred()
    method(*args, lambda ok, value: d.callback((ok, value)))
    return d


def new_log(case, directory=None, lock_fd=None) -> tuple:
    """Return ``(directory, file, log)``: a fresh journal-1 and an unstarted ProcessLog for it."""
    if directory is None:
        directory = tempfile.mkdtemp()
        case.addCleanup(shutil.rmtree, directory, True)
    file = writer.reopen(FileOps(), directory, datadir.journal_path(directory, 1), 0, 1, [])
    return directory, file, ProcessLog(reactor, directory, file, lock_fd=lock_fd)


def open_journal(directory: str) -> tuple:
    """Return ``(keyspace, journal)``: ``directory`` loaded, journaled by a writer process."""
    keyspace = Keyspace(reactor)
    journal = Journal.open(directory, keyspace, reactor, writer="process")
    keyspace.log = journal.append
    journal.start()
    return keyspace, journal


def _open_paths() -> set:
    """Return the paths of the files this process has open."""
    paths = set()
    for name in os.listdir("/proc/self/fd"):
        try:
            paths.add(os.readlink("/proc/self/fd/" + name))
        except OSError:
            pass  # the listing's own descriptor, closed by now
    return paths


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    with open("/proc/%d/stat" % pid, "rb") as stat:
        return stat.read().rsplit(b")", 1)[-1].split()[0] == b"Z"


class ProcessLogTests(TestCase):
    """ProcessLog hands appends, syncs, rotations and close to its writer process."""

    timeout = 60

    def setUp(self) -> None:
        self.dir, file, self.log = new_log(self)
        self.path = file.path
        self.log.start()
        self.addCleanup(self.log.stop)

    def contents(self, path=None) -> bytes:
        with open(path or self.path, "rb") as f:
            return f.read()[records.HEADER_SIZE:]

    @inlineCallbacks
    def test_append_rotate_close(self):
        """Appends answer the new length, a rotation moves on to journal-2, close ends it."""
        self.assertEqual((yield call(self.log.append, b"one", True)),
                         (True, records.HEADER_SIZE + 3))
        self.assertEqual((yield call(self.log.append, b"two", False)),
                         (True, records.HEADER_SIZE + 6))
        self.assertEqual((yield call(self.log.sync)), (True, True))
        self.assertEqual((yield call(self.log.rotate, 2)), (True, records.HEADER_SIZE))
        self.assertEqual(self.log.path, datadir.journal_path(self.dir, 2))
        yield call(self.log.append, b"three", True)
        self.assertEqual((yield call(self.log.close)), (True, None))
        yield self.log.stop()
        self.assertIsNone(self.log.pid)
        self.assertEqual(self.contents(), b"onetwo")
        self.assertEqual(self.contents(datadir.journal_path(self.dir, 2)), b"three")

    def test_pipe_to_the_writer_is_widened(self):
        """The pipe to the writer holds PIPE_SIZE bytes (or the system's most), not 64 kB."""
        pipe = self.log._protocol.transport.pipes[0]
        size = fcntl.fcntl(pipe.fileno(), 1032)  # F_GETPIPE_SZ
        with open("/proc/sys/fs/pipe-max-size") as limit:
            wanted = min(processlog.PIPE_SIZE, int(limit.read()))
        self.assertGreaterEqual(size, wanted)
        self.assertGreater(size, 64 * 1024)

    @inlineCallbacks
    def test_requests_are_answered_in_order(self):
        """Many appends in flight at once are each answered, in order, with their own length."""
        results = yield call(self.log.append, b"a", True)
        ds = [call(self.log.append, b"%d" % i, True) for i in range(10)]
        for i, d in enumerate(ds):
            self.assertEqual((yield d), (True, records.HEADER_SIZE + 1 + i + 1))
        self.assertEqual(results, (True, records.HEADER_SIZE + 1))
        self.assertEqual(self.contents(), b"a0123456789")

    @inlineCallbacks
    def test_dead_writer_fails_requests_and_is_replaced(self):
        """A killed writer fails what was in flight; the next request starts a new one."""
        yield call(self.log.append, b"kept", True)
        first = self.log.pid
        os.kill(first, signal.SIGKILL)
        ok, error = yield call(self.log.append, b"maybe", True)
        if ok:  # the append beat the signal; the next one cannot
            ok, error = yield call(self.log.append, b"lost", True)
        self.assertFalse(ok)
        self.assertIsInstance(error, JournalError)
        self.assertIn("journal writer exited", str(error))
        self.assertEqual((yield call(self.log.append, b"next", True)),
                         (True, self.log.size))
        self.assertNotEqual(self.log.pid, first)
        self.assertEqual(self.log.started, 2)
        self.assertTrue(self.contents().startswith(b"kept"))
        self.assertTrue(self.contents().endswith(b"next"))
        self.assertNotIn(b"lost", self.contents())

    @inlineCallbacks
    def test_failed_append_then_resume(self):
        """An append past a file-size limit fails with EFBIG; once lifted, the next append works."""
        yield call(self.log.append, b"kept", True)
        pid = self.log.pid
        soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
        resource.prlimit(pid, resource.RLIMIT_FSIZE, (self.log.size + 2, hard))
        ok, error = yield call(self.log.append, b"too long", True)
        self.assertFalse(ok)
        self.assertIn("File too large", str(error))
        resource.prlimit(pid, resource.RLIMIT_FSIZE, (soft, hard))
        # The writer refuses appends after a failed one until told to resume, which
        # ProcessLog does in front of the first append after the failure.
        self.assertEqual((yield call(self.log.append, b"next", True)), (True, self.log.size))
        self.assertEqual(self.log.pid, pid)
        self.assertEqual(self.contents(), b"keptnext")

    @inlineCallbacks
    def test_error_reply(self):
        """A request the writer cannot carry out fails with its reason; the journal carries on."""
        os.mkdir(datadir.journal_path(self.dir, 2))  # not even root can open a directory
        ok, error = yield call(self.log.rotate, 2)
        self.assertFalse(ok)
        self.assertIsInstance(error, JournalError)
        self.assertIn("journal-2", str(error))
        self.assertIn("Is a directory", str(error))
        self.assertEqual(self.log.path, self.path)
        yield call(self.log.append, b"still", True)
        self.assertEqual(self.contents(), b"still")

    @inlineCallbacks
    def test_stop_without_close_and_after(self):
        """Stopping ends the writer; a request after that fails instead of starting one."""
        pid = self.log.pid
        yield self.log.stop()
        self.assertTrue(_gone(pid))
        ok, error = yield call(self.log.append, b"late", True)
        self.assertEqual((ok, str(error)), (False, "journal writer stopped"))


class NeverStartedTests(TestCase):
    """A ProcessLog whose server never started still closes its journal properly."""

    timeout = 60

    @inlineCallbacks
    def test_close_without_start(self):
        """Close starts the writer to fsync and close the file, and this side's descriptor goes."""
        directory, file, log = new_log(self)
        self.assertEqual((yield call(log.close)), (True, None))
        yield log.stop()
        self.assertNotIn(file.path, _open_paths())


class LockTests(TestCase):
    """The writer process holds the data directory's lock while it lives."""

    timeout = 60

    @inlineCallbacks
    def test_writer_keeps_the_lock(self):
        """With the server's lock fd closed, the directory stays locked until the writer exits."""
        directory = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, directory, True)
        lock = datadir.lock_directory(directory)
        directory, file, log = new_log(self, directory, lock)
        log.start()
        self.addCleanup(log.stop)
        yield call(log.append, b"x", True)
        os.close(lock)
        # The recorded holder is this live process, so the refusal is immediate.
        self.assertRaises(datadir.DataError, datadir.lock_directory, directory, 0)
        yield call(log.close)
        yield log.stop()
        os.close(datadir.lock_directory(directory, 0))


class JournalProcessTests(TestCase):
    """Journal(writer="process") commits through the writer process, end to end."""

    timeout = 60

    @inlineCallbacks
    def test_commit_and_reload(self):
        """Writes are acknowledged once the writer has them on disk and load again after stop."""
        directory = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, directory, True)
        keyspace, journal = open_journal(directory)
        self.addCleanup(journal.stop)
        info = journal.info()
        self.assertEqual(info["journal_writer"], "process")
        self.assertGreater(info["journal_writer_pid"], 0)
        keyspace.set(b"k", b"v")
        failure_for = yield journal.when_acked(journal.appended)
        self.assertIsNone(failure_for(journal.appended))
        size = yield journal.compact()
        self.assertGreater(size, 0)
        keyspace.set(b"k2", b"v2")
        yield journal.when_acked(journal.appended)
        yield journal.stop()
        again, reloaded = open_journal(directory)
        self.addCleanup(reloaded.stop)
        self.assertEqual((again.get(b"k"), again.get(b"k2")), (b"v", b"v2"))

    @inlineCallbacks
    def test_dead_writer_is_a_persistence_failure_until_replaced(self):
        """A commit in flight when the writer dies fails and is undone; a new writer takes over."""
        directory = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, directory, True)
        keyspace, journal = open_journal(directory)
        self.addCleanup(journal.stop)
        first = journal.info()["journal_writer_pid"]
        os.kill(first, signal.SIGSTOP)  # so it cannot carry out the commit before it dies
        keyspace.set(b"during", b"1")
        seq = journal.appended
        reactor.callLater(0.1, os.kill, first, signal.SIGKILL)
        failure_for = yield journal.when_acked(seq)
        self.assertIn("journal writer exited", failure_for(seq))
        self.assertIsNone(keyspace.get(b"during"))
        # The journal probes the disk once a second; the probe starts a new writer.
        for _ in range(100):
            if journal.failure is None:
                break
            yield task.deferLater(reactor, 0.1, lambda: None)
        keyspace.set(b"after", b"2")
        seq = journal.appended
        failure_for = yield journal.when_acked(seq)
        self.assertIsNone(failure_for(seq))
        self.assertIsNone(journal.failure)
        self.assertNotEqual(journal.info()["journal_writer_pid"], first)
        yield journal.stop()
        again, reloaded = open_journal(directory)
        self.addCleanup(reloaded.stop)
        self.assertEqual((again.get(b"during"), again.get(b"after")), (None, b"2"))

    def test_process_writer_takes_no_fileops(self):
        """Injected file operations only apply to the thread writer, so they are refused."""
        self.assertRaises(ValueError, Journal, "unused", None, reactor, writer="process",
                          fileops=FileOps())
        self.assertRaises(ValueError, Journal, "unused", None, reactor, writer="fork")


