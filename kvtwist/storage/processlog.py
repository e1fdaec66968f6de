"""The journal file appended to by a child process, fed group commits through a pipe."""

from __future__ import annotations

import collections
import fcntl
import os
import sys

from twisted.internet.defer import Deferred, succeed
from twisted.internet.error import ProcessExitedAlready
from twisted.internet.protocol import ProcessProtocol
from twisted.logger import Logger

import kvtwist
from kvtwist.storage import datadir, journalproc

from kvtwist.loop import directwrite
from kvtwist.storage.datadir import JournalError
from kvtwist.storage.writer import LogFile

log = Logger(namespace="kvtwist.storage.journal")

# Requests with a payload at least this long are written as two pieces (see _request).
LARGE_PAYLOAD = 1 << 20
# The pipe to the writer is widened to this (Linux caps it at /proc/sys/fs/pipe-max-size,
# 1 MB by default): with the default 64 kB a large record costs the reactor a poll round
# and the writer a wake-up per 64 kB (8192 of each for 512 MB), which took seconds.
PIPE_SIZE = 1 << 20
_F_SETPIPE_SZ = getattr(fcntl, "F_SETPIPE_SZ", 1031)  # PyPy 3.9's fcntl lacks the name


class ProcessLog:
    """The journal file, appended to by a child process (``journalproc``) over a pipe.

    Same methods as ThreadLog. The child has no share in this process's GIL, so handing
    it a group commit is one pipe write and its answer one readable pipe in the reactor's
    poll: no thread wake-ups. It holds the data directory's lock (passed as fd 3) as long
    as it runs, so a server started after a crash waits for it instead of recovering a
    journal it may still be appending to; it exits when its stdin closes. If it dies, the
    requests in flight fail and the next one starts a new child, which cuts the file back
    to the last length this side was told is good.

    Appends are pipelined: the journal sends each one without waiting for the answers
    to earlier ones, and the child writes and fsyncs all it has received in one go. An
    append that fails makes the child refuse the ones already sent after it, so the
    journal can send them all again in order; the first append after a failure goes
    behind a RESUME.
    """

    pipelined = True

    def __init__(self, reactor, directory: str, file: LogFile, lock_fd=None,
                 executable: str = sys.executable) -> None:
        self._reactor = reactor
        self._directory = directory
        self.path = file.path
        self.size = file.size
        self.generation = file.generation
        self._first = file
        self._lock_fd = lock_fd
        self._executable = executable
        self._protocol = None
        self._write = None  # directwrite.child_writer to the current child's stdin
        self._waiting = collections.deque()  # (on_ok, done) in request order
        self._stopping = None
        self._stopped = False  # stop() was called: no new writer is started after it
        self._stderr = b""
        self._resume = False  # a request failed: the child may refuse appends until RESUME
        self.pid = None
        self.started = 0

    def start(self) -> None:
        """Start the writer process; the file this side opened is handed over and closed."""
        if self._first is not None:
            try:
                self._first.ops.close(self._first.fd)
            except OSError:
                pass
            self._first = None
        self._spawn()

    def _spawn(self) -> None:
        package_root = os.path.dirname(os.path.dirname(os.path.abspath(kvtwist.__file__)))
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(
            [package_root] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p])
        child_fds = {0: "w", 1: "r", 2: "r"}
        if self._lock_fd is not None:
            child_fds[3] = self._lock_fd
        self._protocol = _WriterProtocol(self)
        self._stderr = b""
        self._reactor.spawnProcess(
            self._protocol, self._executable,
            [self._executable, "-m", "kvtwist.storage.journalproc", self._directory, self.path,
             str(self.size), str(self.generation)],
            env=env, childFDs=child_fds)
        self.pid = self._protocol.transport.pid
        _widen(self._protocol.transport.pipes.get(0))
        self._write = directwrite.child_writer(self._protocol.transport, 0, self._reactor)
        self.started += 1

    def append(self, data, fsync: bool, done) -> None:
        """Append ``data`` (bytes, or a list of pieces) after every earlier request; fsync it
        when asked.

        Once an append has failed, every append requested before that failure was
        reported fails too, and nothing after it is written before it.
        """
        if self._resume:
            self._resume = False
            self._request(journalproc.RESUME, b"", _ignore, _ignore)
        self._request(journalproc.APPEND if fsync else journalproc.APPEND_NOSYNC, data,
                      self._appended, done)

    def _appended(self, payload: bytes) -> int:
        self.size = journalproc.decode_size(payload)
        return self.size

    def sync(self, done) -> None:
        """Fsync what earlier appends wrote without fsync."""
        self._request(journalproc.SYNC, b"", lambda payload: payload == b"\x01", done)

    def rotate(self, generation: int, done) -> None:
        """Finish the current journal and continue in a new one of ``generation``."""

        def rotated(payload: bytes) -> int:
            self.size = journalproc.decode_size(payload)
            self.generation = generation
            self.path = datadir.journal_path(self._directory, generation)
            return self.size

        self._request(journalproc.ROTATE, journalproc.pack_size(generation), rotated, done)

    def close(self, done) -> None:
        """Fsync and close the journal; the process then ends."""
        self._request(journalproc.CLOSE, b"", lambda payload: None, done)

    def stop(self) -> Deferred:
        """Close the child's input; return a Deferred firing (None) once it has exited."""
        self._stopped = True
        if self._protocol is None:
            return succeed(None)
        if self._stopping is None:
            self._stopping = Deferred()
            self._protocol.transport.closeStdin()
        return self._stopping

    def _request(self, kind: bytes, payload: bytes, on_ok, done) -> None:
        if self._protocol is None:
            if self._stopped:
                done(False, JournalError("journal writer stopped"))
                return
            self.start()  # the first request of a log never started, or one whose writer died
        self._waiting.append((on_ok, done))
        if payload.__class__ is not list and len(payload) < LARGE_PAYLOAD:
            self._write(journalproc.encode(kind, payload))
            return
        # A large payload, or pieces (a large SET's record among them): written as they are
        # behind the head, never copied behind it; the pipe takes a large one in slices.
        pieces = payload if payload.__class__ is list else (payload,)
        self._write(journalproc.encode_head(kind, sum(map(len, pieces))))
        for piece in pieces:
            self._write(piece)

    def _replies(self, frames) -> None:
        for kind, payload in frames:
            if not self._waiting:
                raise journalproc.FrameError("a reply nobody asked for")
            on_ok, done = self._waiting.popleft()
            if kind == journalproc.OK:
                try:
                    value = on_ok(payload)
                except ValueError as exc:
                    raise journalproc.FrameError(str(exc)) from None
                done(True, value)
            elif kind == journalproc.ERROR:
                self._resume = True  # harmless after a failure that was not an append's
                done(False, JournalError(payload.decode("utf-8", "replace")))
            else:
                raise journalproc.FrameError("%r is not a reply" % (kind,))

    def _ended(self, reason) -> None:
        self._protocol = None
        self.pid = None
        waiting, self._waiting = self._waiting, collections.deque()
        stopping, self._stopping = self._stopping, None
        if waiting or stopping is None:
            last = self._stderr.strip().splitlines()[-1:] or [b""]
            detail = last[0].decode("utf-8", "replace")
            message = "journal writer exited (%s)%s" % (
                getattr(reason.value, "message", None) or reason.value,
                ": " + detail if detail else "")
            log.error("{message}", message=message)
            for _on_ok, done in waiting:
                done(False, JournalError(message))
        if stopping is not None:
            stopping.callback(None)


def _widen(pipe) -> None:
    # PIPE_SIZE, or the most an unprivileged process may ask for; a system without
    # F_SETPIPE_SZ keeps its default (slower for large records, still correct).
    if pipe is None or not sys.platform.startswith("linux"):
        return
    size = PIPE_SIZE
    try:
        with open("/proc/sys/fs/pipe-max-size") as limit:
            size = min(size, int(limit.read()))
    except (OSError, ValueError):
        pass
    try:
        fcntl.fcntl(pipe.fileno(), _F_SETPIPE_SZ, size)
    except OSError:
        pass


def _ignore(*args) -> None:
    pass


class _WriterProtocol(ProcessProtocol):
    def __init__(self, owner: ProcessLog) -> None:
        self._owner = owner
        self._parser = journalproc.FrameParser()

    def childDataReceived(self, fd: int, data: bytes) -> None:
        if fd == 2:
            self._owner._stderr = (self._owner._stderr + data)[-4096:]
            return
        try:
            self._owner._replies(self._parser.feed(data))
        except journalproc.FrameError as exc:
            log.error("journal writer sent garbage ({error}); stopping it", error=exc)
            try:
                self.transport.signalProcess("KILL")
            except ProcessExitedAlready:
                pass

    def processEnded(self, reason) -> None:
        self._owner._ended(reason)
