"""The journal file's blocking operations (append, fsync, reopen, rotate); no reactor here."""

from __future__ import annotations

from kvtwist.storage import datadir, records
from kvtwist.storage.datadir import JournalError, describe


class LogFile:
    """Writer-thread state of the journal being appended to; ``size`` is its good length.

    Its methods do blocking I/O: call them only in the writer thread (or before it starts).
    """

    def __init__(self, ops, path: str, fd: int, size: int, generation: int) -> None:
        self.ops = ops
        self.path = path
        self.fd = fd
        self.size = size
        self.generation = generation
        self.dirty = False  # bytes past ``size`` may remain from a failed write
        self.unsynced = False

    def append(self, data, fsync: bool, ahead: int = 0) -> int:
        """Write ``data`` at the good length (and fsync it when asked); return the new good length.

        ``data`` is bytes, or a list of pieces written one after the other (not joined).
        ``ahead`` bytes of it were already written there by ``write_ahead``: ``data`` is
        what follows them.

        On any error the file is cut back to the good length, so no torn record is ever
        followed by good ones; raises JournalError naming the file.
        """
        ops = self.ops
        try:
            self._clean()
            ops.write(self.fd, data, self.size + ahead)
            if fsync:
                ops.fsync(self.fd)
            else:
                self.unsynced = True
        except OSError as exc:
            raise self._failed(exc) from None
        self.size += ahead + (len(data) if data.__class__ is not list else sum(map(len, data)))
        return self.size

    def write_ahead(self, pieces: list, offset: int) -> None:
        """Write ``pieces`` ``offset`` bytes past the good length, which stays where it is.

        The start of an append still being received: ``append(rest, fsync, ahead=...)``
        writes the rest behind it and moves the good length over both. Until then the
        bytes are a torn tail, which recovery and the next writer cut. On any error the
        file is cut back to the good length; raises JournalError naming the file.
        """
        try:
            self._clean()
            self.ops.write(self.fd, pieces, self.size + offset)
        except OSError as exc:
            raise self._failed(exc) from None

    def _clean(self) -> None:
        # Cut what a failed write may have left past the good length (raises OSError).
        if self.dirty:
            self.ops.truncate(self.fd, self.size)
            self.dirty = False

    def _failed(self, exc: OSError) -> JournalError:
        # A write failed: cut the file back to the good length, or note that it must be.
        try:
            self.ops.truncate(self.fd, self.size)
        except OSError:
            self.dirty = True
        return JournalError(describe(exc, self.path))

    def sync(self) -> bool:
        """Fsync what ``append`` wrote without fsync; return whether there was anything to sync.

        Raises JournalError naming the file.
        """
        if not self.unsynced:
            return False
        self.unsynced = False
        try:
            self.ops.fsync(self.fd)
        except OSError as exc:
            self.unsynced = True
            raise JournalError(describe(exc, self.path)) from None
        return True

    def close(self) -> None:
        """Fsync and close the file (raises OSError)."""
        try:
            self.ops.fsync(self.fd)
        finally:
            self.ops.close(self.fd)


def reopen(ops, directory: str, path: str, valid: int, generation: int, stale) -> LogFile:
    """Return the recovered journal ``path`` opened for appending (at start, before listening).

    It is cut to its ``valid`` length (or started afresh with a header when not even that
    is valid), fsynced with its directory, and the ``stale`` files recovery superseded are
    removed. Raises JournalError naming the file.
    """
    try:
        fd = ops.open(path)
        if valid < records.HEADER_SIZE:
            ops.truncate(fd, 0)
            ops.write(fd, records.encode_header(records.JOURNAL, generation), 0)
            valid = records.HEADER_SIZE
        else:
            ops.truncate(fd, valid)
        ops.fsync(fd)
        ops.fsync_dir(directory)
    except OSError as exc:
        raise JournalError(describe(exc, path)) from None
    for old in stale:
        try:
            ops.remove(old)
        except OSError:
            pass  # removed again after the next compaction
    return LogFile(ops, path, fd, valid, generation)


def rotate(ops, old: LogFile, directory: str, generation: int) -> LogFile:
    """Finish ``old`` (cut to its good length, fsync) and return a new empty journal ``generation``.

    Raises JournalError naming the new file; then ``old`` stays open and current.
    """
    path = datadir.journal_path(directory, generation)
    fd = None
    try:
        if old.dirty:
            ops.truncate(old.fd, old.size)
            old.dirty = False
        ops.fsync(old.fd)
        old.unsynced = False
        fd = ops.open(path)
        ops.truncate(fd, 0)
        ops.write(fd, records.encode_header(records.JOURNAL, generation), 0)
        ops.fsync(fd)
        ops.fsync_dir(directory)
    except OSError as exc:
        if fd is not None:
            try:
                ops.close(fd)
                ops.remove(path)
            except OSError:
                pass  # an empty journal-<generation> is valid; recovery replays it last
        raise JournalError(describe(exc, path)) from None
    try:
        ops.close(old.fd)
    except OSError:
        pass
    return LogFile(ops, path, fd, records.HEADER_SIZE, generation)

