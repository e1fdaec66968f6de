"""The journal appended to by a thread in this process: ThreadWorker and ThreadLog."""

from __future__ import annotations

import queue
import threading

from twisted.internet.defer import Deferred

from kvtwist.storage.writer import LogFile, rotate


class ThreadWorker:
    """One thread running submitted jobs in order; ``done(ok, value)`` is called on the reactor."""

    def __init__(self, reactor, name: str = "kvtwist-journal") -> None:
        self._reactor = reactor
        self._queue = queue.Queue()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._stopped = None

    def start(self) -> None:
        """Start the thread (jobs submitted earlier wait for it)."""
        self._thread.start()

    def submit(self, job, done) -> None:
        """Run ``job()`` in the thread after every earlier job."""
        self._queue.put((job, done))

    def stop(self) -> Deferred:
        """Return a Deferred firing (with None) once every submitted job ran and the thread ends."""
        if self._stopped is None:
            self._stopped = Deferred()
            self._queue.put(None)
            if not self._thread.is_alive() and self._thread.ident is None:
                self._thread.start()
        return self._stopped

    def _run(self) -> None:
        call = self._reactor.callFromThread
        while True:
            item = self._queue.get()
            if item is None:
                call(self._finished)
                return
            job, done = item
            try:
                value = job()
            except BaseException as exc:  # reported to the reactor, never lost in the thread
                call(done, False, exc)
            else:
                call(done, True, value)

    def _finished(self) -> None:
        self._thread.join()
        self._stopped.callback(None)


class ThreadLog:
    """The journal file, appended to by a ThreadWorker in this process.

    Each method queues one job; ``done(ok, value)`` is called on the reactor with the
    new size (append, rotate), whether anything was synced (sync), or the JournalError.
    Each append is its own write and fsync, so the journal sends one at a time.
    """

    pid = None  # no writer process
    pipelined = False

    def __init__(self, worker, ops, directory: str, file: LogFile) -> None:
        self._worker = worker
        self._ops = ops
        self._directory = directory
        self.file = file

    @property
    def path(self) -> str:
        """Return the path of the journal being appended to."""
        return self.file.path

    def start(self) -> None:
        """Start the thread."""
        self._worker.start()

    def append(self, data, fsync: bool, done) -> None:
        """Append ``data`` (and fsync it when asked) after every earlier request.

        ``data`` is bytes, or a list of pieces, joined in the writer thread.
        """
        if data.__class__ is list:
            self._worker.submit(lambda: self.file.append(b"".join(data), fsync), done)
        else:
            self._worker.submit(lambda: self.file.append(data, fsync), done)

    def sync(self, done) -> None:
        """Fsync what earlier appends wrote without fsync."""
        self._worker.submit(lambda: self.file.sync(), done)

    def rotate(self, generation: int, done) -> None:
        """Finish the current journal and continue in a new one of ``generation``."""
        self._worker.submit(lambda: self._rotate(generation), done)

    def _rotate(self, generation: int) -> int:
        self.file = rotate(self._ops, self.file, self._directory, generation)
        return self.file.size

    def close(self, done) -> None:
        """Fsync and close the journal."""
        self._worker.submit(lambda: self.file.close(), done)

    def stop(self) -> Deferred:
        """Return a Deferred firing (None) once every request ran and the thread ended."""
        return self._worker.stop()

