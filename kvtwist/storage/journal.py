"""The journal: group commit off the reactor thread, fsync policies, recovery and compaction."""

from __future__ import annotations

import collections
import heapq
import itertools
import os
import time

from twisted.internet.defer import Deferred, fail, succeed
from twisted.logger import Logger

from kvtwist.storage import datadir, writer
from kvtwist.storage.datadir import FileOps, JournalError, describe
from kvtwist.storage.pending import KEYED, PendingWrites
from kvtwist.storage.records import NOOP_RECORD, SKIP, encode_effect, pieces
from kvtwist.storage.processlog import ProcessLog
from kvtwist.storage.threadlog import ThreadLog, ThreadWorker
from kvtwist.loop.turns import at_turn_end

POLICIES = ("always", "everysec", "no")
WRITERS = ("process", "thread")
RETRY_SECONDS = 1.0
COMPACT_BACKOFF_SECONDS = 60.0

log = Logger(namespace="kvtwist.storage.journal")


class Journal:
    """The journal of one data directory; see docs/design.md for the server's contract."""

    def __init__(self, directory, keyspace, reactor, fsync="always", compact_min_bytes=64 * 2**20,
                 compact_ratio=2.0, fileops=None, worker=None, snapshot_worker=None,
                 writer="thread") -> None:
        if fsync not in POLICIES:
            raise ValueError("fsync policy must be always, everysec or no, not %r" % (fsync,))
        if writer not in WRITERS:
            raise ValueError("journal writer must be process or thread, not %r" % (writer,))
        if writer == "process" and (fileops is not None or worker is not None):
            raise ValueError("fileops and worker apply to the thread writer only")
        self.writer = writer
        self.directory = directory
        self.keyspace = keyspace
        self.policy = fsync
        self._lock = None  # fd holding the data directory's lock (datadir.lock_directory)
        self.compact_min_bytes = compact_min_bytes
        self.compact_ratio = compact_ratio
        self._reactor = reactor
        self._at_turn_end = at_turn_end(reactor)
        self._ops = fileops or FileOps()
        self._worker = worker or (ThreadWorker(reactor) if writer == "thread" else None)
        self._snapshot_worker = snapshot_worker or ThreadWorker(reactor, "kvtwist-snapshot")
        self.appended = 0
        self.acked = 0
        self.failure = None
        self._pending = []
        # Per key, the last write not durable yet: what a read of it waits for (pending.py).
        self.pending = PendingWrites()
        self._note = self.pending.note
        self._noted_keys = self.pending.keys
        self._noted = self.pending.noted
        self._waiters = collections.deque()  # (seq, callback, arg), in seq order
        # Waiters for a number below the last waiter's (a read waits for its keys' last
        # write, often older): a heap of (seq, tie, callback, arg), O(log n) each.
        self._early: list = []
        self._tie = itertools.count()
        self.release_hooks = []  # called before each batch of waiters is released
        # Called with the changes (effects: DEL key, FLUSH) a rollback made to the keyspace.
        self.rollback_hooks = []
        self._scheduled = False
        self._inflight = 0  # commits sent to the log and not answered yet
        self._epoch = 0  # bumped by each rollback: answers to commits sent before it are moot
        self._retry_call = None
        self._fsync_call = None
        self._fsync_failed = False
        self._compacting = None
        self._compact_not_before = 0.0
        self._stopping = None
        self._log = None  # ThreadLog or ProcessLog: who appends to the journal file
        self.generation = 0
        self.journal_bytes = 0
        self.snapshot_bytes = 0
        self.compactions = 0
        self.last_commit = 0.0
        self.last_fsync = 0.0
        self.last_load_keys = 0
        self.last_load_seconds = 0.0

    @classmethod
    def open(cls, directory, keyspace, reactor, fsync="always", repair=False,
             **kwargs) -> "Journal":
        """Load ``directory`` into ``keyspace`` synchronously; return a Journal appending to it.

        Raises JournalError, naming file and offset, when the files are corrupt and not
        ``repair``, or when another process holds the directory.
        """
        journal = cls(directory, keyspace, reactor, fsync=fsync, **kwargs)
        try:
            journal._load(repair)
        except BaseException:
            journal._unlock()
            raise
        keyspace.track_undo()
        return journal

    def _load(self, repair: bool) -> None:
        started = self._reactor.seconds()
        wall = time.monotonic()
        try:
            os.makedirs(self.directory, exist_ok=True)
            self._lock = datadir.lock_directory(self.directory)
            result = datadir.load(self.directory, self.keyspace.apply, repair=repair,
                                  load_items=getattr(self.keyspace, "load_items", None))
        except datadir.DataError as exc:
            raise JournalError(str(exc)) from None
        except OSError as exc:
            raise JournalError("cannot load %s: %s"
                               % (self.directory, exc.strerror or exc)) from None
        for path, offset, dropped in result.torn:
            log.warn("Torn tail in {path} at offset {offset}: {dropped} bytes dropped",
                     path=path, offset=offset, dropped=dropped)
        for path, offset, dropped, reason in result.repaired:
            log.warn("Repaired {path}: {reason} at offset {offset}; {dropped} bytes dropped",
                     path=path, reason=reason, offset=offset, dropped=dropped)
        file = writer.reopen(self._ops, self.directory, result.journal_path,
                             result.journal_valid, result.journal_generation, result.stale)
        if self.writer == "process":
            self._log = ProcessLog(self._reactor, self.directory, file, lock_fd=self._lock)
        else:
            self._log = ThreadLog(self._worker, self._ops, self.directory, file)
        self.generation = result.journal_generation
        self.journal_bytes = file.size
        self.snapshot_bytes = result.snapshot_bytes
        try:
            self.last_load_keys = len(self.keyspace)
        except TypeError:
            self.last_load_keys = result.records
        self.last_load_seconds = max(time.monotonic() - wall,
                                     self._reactor.seconds() - started, 0.0)
        log.info("Loaded {keys} keys ({records} records) from {directory} in {seconds:.3f} s",
                 keys=self.last_load_keys, records=result.records, directory=self.directory,
                 seconds=self.last_load_seconds)

    def start(self) -> None:
        """Start the journal writer and, for ``everysec``, the once-a-second fsync."""
        self._log.start()
        self._snapshot_worker.start()
        if self.policy == "everysec":
            self._fsync_call = self._reactor.callLater(1.0, self._everysec)

    # -- the server's contract -------------------------------------------------

    def append(self, effect: tuple) -> None:
        """Queue one effect for the next group commit (reactor thread; cheap)."""
        self._pending.append(encode_effect(effect))
        self.appended += 1
        if effect[0] in KEYED:  # pending.note's common case, inlined (a call less per write)
            key = effect[1]
            self._noted_keys[key] = self.appended
            self._noted.append(key)
        else:
            self._note(effect, self.appended)
        if (not self._scheduled and self.failure is None
                and (self._log.pipelined or not self._inflight)):
            self._scheduled = True
            # At the end of this reactor turn: every connection's writes of one poll round
            # share one write (and a pipelined log merges the turns it gets during an fsync).
            self._at_turn_end(self._commit)

    def when_acked(self, seq: int) -> Deferred:
        """Return a Deferred firing once effect ``seq`` was committed or failed (never errbacks).

        Its result is the ``failure_for`` method: call it with any sequence number up to
        ``seq`` for that effect's failure reason (None when durable).
        """
        d = Deferred()
        self.on_acked(seq, _fire, d)
        return d

    def on_acked(self, seq: int, callback, arg) -> None:
        """Call ``callback(failure_for, arg)`` once effect ``seq`` was committed or failed.

        ``when_acked`` without a Deferred: the server gates every reply on this, so it
        costs one tuple per waiter: O(1) for a number at least the last waiter's (every
        write's reply), O(log waiters) for an earlier one (a read of a key written before).
        Waiters are called in the order of their numbers.
        """
        if seq <= self.acked:
            callback(self.failure_for, arg)
            return
        waiters = self._waiters
        if not waiters or waiters[-1][0] <= seq:
            waiters.append((seq, callback, arg))
        else:
            heapq.heappush(self._early, (seq, next(self._tie), callback, arg))

    def failure_for(self, seq: int):
        """Return None if effect ``seq`` is durable, else the reason it is not.

        Waiters are released with this; after a rollback it answers for the effects undone.
        """
        if seq <= self.acked:
            return None
        return self.failure or "journal closed before the write was stored"

    # -- group commit ----------------------------------------------------------

    def _commit(self) -> None:
        self._scheduled = False
        if not self._pending or (self._inflight and not self._log.pipelined):
            return
        try:
            data = b"".join(self._pending)
        except TypeError:
            # A large SET's record is a list of pieces: they go to the log as they are.
            data = pieces(self._pending)
        self._pending = []
        upto = self.appended
        self.pending.sent(upto)
        epoch = self._epoch
        self._inflight += 1
        self._log.append(data, self.policy == "always",
                         lambda ok, value: self._committed(ok, value, upto, epoch))

    def _committed(self, ok: bool, value, upto: int, epoch: int) -> None:
        self._inflight -= 1
        if epoch != self._epoch:
            # Sent before a rollback: the log refuses every append after a failed one
            # (its contract), so this is that refusal, and its effects are undone already.
            if ok:
                log.critical("A commit sent before a failed one was stored: {upto}", upto=upto)
        elif ok:
            self.keyspace.settle(upto - self.acked)
            self.acked = upto
            self.pending.settle(upto)
            self.journal_bytes = value
            self.last_commit = self._reactor.seconds()
            if self.policy == "always":
                self.last_fsync = self.last_commit
            if not self._fsync_failed:
                self.failure = None
            self._release(upto)
        else:
            self._rollback(str(value) if isinstance(value, JournalError)
                           else describe(value, "journal"))
            return
        if self._pending and not self._scheduled:
            self._commit()  # appends that waited for this answer, or the failure's probe
        elif self._stopping is None and self.failure is None:
            self._maybe_compact()

    def _rollback(self, reason: str) -> None:
        # The disk refused a commit: its effects and every later one (in flight, or still
        # pending) are undone in memory, their waiters learn it, and writes stay refused
        # (Session.execute) until a probe record is stored. No client ever sees a write
        # the journal does not hold: replies that might have (read in the same turns) are
        # turned into errors by the server when the failure releases them.
        if self.failure is None:
            log.error("{reason}; writes are refused and the disk is probed every second",
                      reason=reason)
        self.failure = reason
        self._epoch += 1
        self._pending = []
        changed = self.keyspace.rollback()
        undone, self.appended = self.appended, self.acked
        self.pending.clear()
        if self._retry_call is None:
            self._retry_call = self._reactor.callLater(RETRY_SECONDS, self._retry)
        # The state is consistent before anyone is told: a hook or a waiter may write.
        for hook in self.rollback_hooks:
            hook(changed)
        self._release(undone)

    def _release(self, upto: int) -> None:
        waiters, early = self._waiters, self._early
        if (not waiters or waiters[0][0] > upto) and (not early or early[0][0] > upto):
            return
        for hook in self.release_hooks:
            hook()
        failure_for = self.failure_for
        heappop = heapq.heappop
        while True:  # both in number order, merged (a callback may add waiters)
            if early and early[0][0] <= upto and (not waiters or early[0][0] <= waiters[0][0]):
                callback, arg = heappop(early)[2:]
            elif waiters and waiters[0][0] <= upto:
                callback, arg = waiters.popleft()[1:]
            else:
                break
            callback(failure_for, arg)

    def _retry(self) -> None:
        self._retry_call = None
        if self._fsync_failed:
            self._everysec(reschedule=False)
        else:
            # Probe the disk with a record that changes nothing; stored, it ends the failure.
            self._pending.append(NOOP_RECORD)
            self._commit()

    def _everysec(self, reschedule: bool = True) -> None:
        if reschedule:
            self._fsync_call = self._reactor.callLater(1.0, self._everysec)
        self._log.sync(self._synced)

    def _synced(self, ok: bool, value) -> None:
        if ok:
            if value:
                self.last_fsync = self._reactor.seconds()
            if self._fsync_failed:
                self._fsync_failed = False
                self.failure = None
                self._commit()
            return
        self._fsync_failed = True
        self.failure = str(value)
        log.error("{reason}", reason=self.failure)
        if self._retry_call is None:
            self._retry_call = self._reactor.callLater(RETRY_SECONDS, self._retry)

    # -- compaction -------------------------------------------------------------

    def _maybe_compact(self) -> None:
        limit = max(self.compact_min_bytes, self.compact_ratio * self.snapshot_bytes)
        if (self._compacting is None and self.journal_bytes > limit
                and self._reactor.seconds() >= self._compact_not_before):
            self.compact().addErrback(lambda f: None)

    def compact(self) -> Deferred:
        """Write a new snapshot in the background; return a Deferred firing with its size in bytes.

        Errbacks with JournalError if it could not be written (the old files stay valid).
        """
        if self._stopping is not None:
            return fail(JournalError("journal is stopping"))
        if self._compacting is not None:
            d = Deferred()
            self._compacting.append(d)
            return d
        if self.failure is not None:
            return fail(JournalError(self.failure))
        generation = self.generation + 1
        # The consistent view: the state after effect ``appended``. Effects up to it that are
        # still pending are written after the rotation, so they are the first records of the
        # new journal; the snapshot says how many (SKIP), and recovery does not replay them
        # over it (an operation on a typed value, such as LPUSH, is not idempotent).
        items = self.keyspace.snapshot_items()
        items.append((SKIP, sum(1 for record in self._pending if record is not NOOP_RECORD)))
        upto, epoch = self.appended, self._epoch
        d = Deferred()
        self._compacting = [d]
        log.info("Compaction to generation {generation} started ({keys} keys)",
                 generation=generation, keys=len(items))
        # From the rotation on, commits go to journal-<generation>.
        self._log.rotate(generation, lambda ok, value: self._rotated(
            ok, value, generation, items, upto, epoch))
        return d

    def _rotated(self, ok: bool, value, generation: int, items: list, upto: int,
                 epoch: int) -> None:
        if not ok:
            self._compacted(False, value)
            return
        self.generation = generation
        self.journal_bytes = value
        self._snapshot_worker.submit(
            lambda: datadir.write_snapshot_temp(self._ops, self.directory, generation, items),
            lambda ok, value: self._snapshot_written(ok, value, generation, upto, epoch))

    def _snapshot_written(self, ok: bool, value, generation: int, upto: int,
                          epoch: int) -> None:
        # The snapshot holds every effect up to ``upto``, some maybe not durable when it was
        # taken. It replaces older files only once they all are: one holding an effect the
        # disk refused (rolled back since) would bring that write back at the next start.
        if not ok:
            self._compacted(False, value)
        elif epoch != self._epoch:
            self._drop_snapshot(generation)
        elif upto <= self.acked:
            self._install_snapshot(generation, value)
        else:
            # Released once durable, or by the rollback that undoes it (a new epoch).
            self.on_acked(upto, lambda failure_for, size: self._snapshot_written(
                True, size, generation, upto, epoch), value)

    def _install_snapshot(self, generation: int, size: int) -> None:
        def install() -> int:
            # Snapshot thread: only once the new snapshot is in place are older files removed.
            datadir.install_snapshot(self._ops, self.directory, generation)
            for path, exc in datadir.remove_older(self._ops, self.directory, generation):
                log.warn("Could not remove {path}: {error}", path=path, error=exc)
            return size

        self._snapshot_worker.submit(install, self._compacted)

    def _drop_snapshot(self, generation: int) -> None:
        error = JournalError("compaction abandoned: its snapshot holds writes that were "
                             "rolled back")
        self._snapshot_worker.submit(
            lambda: datadir.discard_snapshot(self._ops, self.directory, generation),
            lambda ok, value: self._compacted(False, error))

    def _compacted(self, ok: bool, value) -> None:
        waiting, self._compacting = self._compacting, None
        if ok:
            self.compactions += 1
            self.snapshot_bytes = value
            log.info("Compaction done: snapshot {generation} is {size} bytes",
                     generation=self.generation, size=value)
            for d in waiting:
                d.callback(value)
            return
        self._compact_not_before = self._reactor.seconds() + COMPACT_BACKOFF_SECONDS
        log.error("Compaction failed: {error}", error=value)
        error = value if isinstance(value, JournalError) else JournalError(str(value))
        for d in waiting:
            d.errback(error)

    # -- shutdown and status --------------------------------------------------------

    def stop(self) -> Deferred:
        """Commit what is pending, fsync, stop the threads, close the file; Deferred fires None."""
        if self._stopping is not None:
            return self._stopping
        self._stopping = Deferred()
        for call in (self._fsync_call, self._retry_call):
            if call is not None and call.active():
                call.cancel()
        self._fsync_call = self._retry_call = None
        if self._compacting is not None:
            d = Deferred()
            self._compacting.append(d)
            d.addErrback(lambda f: None)
        else:
            d = succeed(None)
        d.addCallback(lambda _: self._drain())
        d.addCallback(lambda _: self._close())
        d.addBoth(self._stopping.callback)
        return self._stopping

    def _drain(self) -> Deferred:
        if self.failure is not None and not self._inflight:
            return succeed(None)  # the disk is failing: do not hang shutdown on it
        self._commit()
        return self.when_acked(self.appended)

    def _close(self) -> Deferred:
        done = Deferred()

        def closed(ok: bool, value) -> None:
            if not ok:
                log.error("Closing {path}: {error}", path=self._log.path, error=value)
            done.callback(None)

        self._log.close(closed)
        done.addCallback(lambda _: self._log.stop())
        done.addCallback(lambda _: self._snapshot_worker.stop())
        done.addCallback(lambda _: self._unlock())
        return done

    def _unlock(self) -> None:
        if self._lock is not None:
            os.close(self._lock)
            self._lock = None

    @property
    def compacting(self) -> bool:
        """Return whether a compaction is running."""
        return self._compacting is not None

    def info(self) -> dict:
        """Return the journal's status for INFO (policy, counters, sizes, times, failure)."""
        return {
            "fsync": self.policy,
            "journal_writer": self.writer,
            "journal_writer_pid": self._log.pid or 0,
            "appended": self.appended,
            "acked": self.acked,
            "pending": self.appended - self.acked,
            "last_commit": self.last_commit,
            "last_fsync": self.last_fsync,
            "generation": self.generation,
            "journal_bytes": self.journal_bytes,
            "snapshot_bytes": self.snapshot_bytes,
            "compactions": self.compactions,
            "compacting": self.compacting,
            "failure": self.failure,
            "last_load_keys": self.last_load_keys,
            "last_load_seconds": self.last_load_seconds,
        }


def _fire(failure_for, d: Deferred) -> None:
    d.callback(failure_for)


__all__ = ["Journal", "JournalError", "FileOps", "ThreadWorker", "POLICIES"]
