"""The data directory: file layout and I/O, snapshot writing, locking, and recovery."""

from __future__ import annotations

import os
import re
import time

from kvtwist.storage import records
from kvtwist.storage.reader import RecordReader
from kvtwist.storage.records import CorruptRecord

CHUNK = 16 * 1024 * 1024
_WRITE_CHUNK = 1024 * 1024
# A snapshot being written is fdatasynced each time this much more of it is written, as
# Redis does with its RDB and AOF rewrites (rdb-save-incremental-fsync, REDIS_AUTOSYNC_BYTES).
SNAPSHOT_SYNC = 4 * 1024 * 1024
_NAME = re.compile(r"^(snapshot|journal)-(\d+)\.(kvs|kvj)$")
_datasync = getattr(os, "fdatasync", os.fsync)


def snapshot_path(directory: str, generation: int) -> str:
    """Return the path of snapshot ``generation`` in ``directory``."""
    return os.path.join(directory, "snapshot-%d.kvs" % (generation,))


def journal_path(directory: str, generation: int) -> str:
    """Return the path of journal ``generation`` in ``directory``."""
    return os.path.join(directory, "journal-%d.kvj" % (generation,))


def list_files(directory: str):
    """Return ``(snapshots, journals, temporaries)``: two dicts generation -> path, and a list."""
    snapshots, journals, temps = {}, {}, []
    for name in os.listdir(directory):
        match = _NAME.match(name)
        if match:
            kind, gen, ext = match.group(1), int(match.group(2)), match.group(3)
            if (kind == "snapshot") == (ext == "kvs"):
                (snapshots if kind == "snapshot" else journals)[gen] = os.path.join(directory, name)
        elif name.endswith(".tmp") and name.startswith(("snapshot-", "journal-")):
            temps.append(os.path.join(directory, name))
    return snapshots, journals, temps


class JournalError(Exception):
    """The journal cannot load or persist; the message names the file (and offset)."""


class FileOps:
    """The file-system calls the journal makes; tests substitute ones that fail."""

    def open(self, path: str) -> int:
        """Return a write descriptor for ``path``, created if missing, not truncated."""
        return os.open(path, os.O_WRONLY | os.O_CREAT, 0o644)

    def write(self, fd: int, data, offset: int) -> None:
        """Write all of ``data`` (bytes, or a list of pieces, one after the other) at ``offset``."""
        for piece in (data if data.__class__ is list else (data,)):
            view = memoryview(piece)
            while view:
                written = os.pwrite(fd, view, offset)
                view = view[written:]
                offset += written

    def fsync(self, fd: int) -> None:
        """Flush ``fd``'s data, and the size needed to read it, to stable storage.

        fdatasync where the OS has it, as Redis's appendfsync does: it skips flushing
        timestamps, which no recovery reads.
        """
        _datasync(fd)

    def truncate(self, fd: int, size: int) -> None:
        """Cut the file to ``size`` bytes."""
        os.ftruncate(fd, size)

    def close(self, fd: int) -> None:
        """Close ``fd``."""
        os.close(fd)

    def fsync_dir(self, directory: str) -> None:
        """Make renames, creations and removals in ``directory`` durable."""
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    def rename(self, source: str, target: str) -> None:
        """Atomically replace ``target`` by ``source``."""
        os.replace(source, target)

    def remove(self, path: str) -> None:
        """Remove ``path`` if it exists."""
        try:
            os.remove(path)
        except FileNotFoundError:
            pass


def describe(exc: BaseException, path: str) -> str:
    """Return the persistence-failure reason for an OSError while writing ``path``."""
    reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
    return "%s writing %s" % (reason, path)


def write_snapshot(ops: FileOps, directory: str, generation: int, items: list) -> int:
    """Write snapshot ``generation`` of ``items`` atomically; return its size in bytes.

    Temporary file, fsync, rename, fsync of the directory: a crash at any point leaves
    either no new snapshot or a complete one. Raises JournalError (naming the file).
    """
    size = write_snapshot_temp(ops, directory, generation, items)
    install_snapshot(ops, directory, generation)
    return size


def write_snapshot_temp(ops: FileOps, directory: str, generation: int, items: list) -> int:
    """Write and fsync snapshot ``generation`` of ``items`` under its temporary name.

    Returns its size; ``install_snapshot`` makes it the snapshot, ``discard_snapshot``
    removes it. Raises JournalError (naming the file), leaving no temporary file.

    The file is fdatasynced every SNAPSHOT_SYNC bytes as it is written (``_SyncedFile``):
    a final fsync of a 145 MB snapshot had the journal's own fsyncs, which share the
    disk and the file system's journal with it, take up to 91 ms, and every write wait
    for them.
    """
    temp = snapshot_path(directory, generation) + ".tmp"
    fd = None
    try:
        ops.remove(temp)
        fd = ops.open(temp)
        out = _SyncedFile(ops, fd)
        parts = [records.encode_header(records.SNAPSHOT, generation)]
        size = len(parts[0])
        encode_set, encode_marker = records.encode_set, records.encode_marker
        for item in items:
            # (key, value, expire_at_ms), or a (SELECT|DBMAP, ...) marker between databases
            record = encode_set(*item) if len(item) == 3 else encode_marker(item)
            if record.__class__ is list:
                # A large value's head and the value itself: the value is written as it
                # is, behind what was gathered before it, with no copy (under PyPy a copy
                # holds the GIL, and so the reactor, for its whole length).
                head, value = record
                parts.append(head)
                out.write(b"".join(parts))
                out.write(value)
                parts, size = [], 0
                continue
            parts.append(record)
            size += len(record)
            if size >= _WRITE_CHUNK:
                out.write(b"".join(parts))
                parts, size = [], 0
        parts.append(records.encode_end(len(items)))
        out.write(b"".join(parts))
        ops.fsync(fd)
        ops.close(fd)
        fd = None
    except OSError as exc:
        try:
            if fd is not None:
                ops.close(fd)
            ops.remove(temp)
        except OSError:
            pass
        raise JournalError(describe(exc, temp)) from None
    return out.offset


class _SyncedFile:
    """Appends to a new file, fdatasyncing it each time SNAPSHOT_SYNC more bytes are written.

    A write crossing that mark is cut there (views of it: nothing is copied), so no
    fdatasync flushes more than SNAPSHOT_SYNC. O(len(data)) a write, one fdatasync per
    SNAPSHOT_SYNC bytes.
    """

    def __init__(self, ops: FileOps, fd: int) -> None:
        self.ops = ops
        self.fd = fd
        self.offset = 0  # bytes written
        self.unsynced = 0  # of them, written since the last fdatasync

    def write(self, data: bytes) -> None:
        """Write ``data`` after what was written (raises OSError)."""
        room = SNAPSHOT_SYNC - self.unsynced
        if len(data) < room:
            self.ops.write(self.fd, data, self.offset)
            self.offset += len(data)
            self.unsynced += len(data)
            return
        view = memoryview(data)
        while len(view) >= room:
            self.ops.write(self.fd, view[:room], self.offset)
            self.offset += room
            self.ops.fsync(self.fd)
            view, self.unsynced, room = view[room:], 0, SNAPSHOT_SYNC
        if view:
            self.ops.write(self.fd, view, self.offset)
            self.offset += len(view)
            self.unsynced = len(view)


def install_snapshot(ops: FileOps, directory: str, generation: int) -> None:
    """Rename the written temporary snapshot ``generation`` into place and fsync the directory.

    Raises JournalError (naming the file); the temporary file is then removed.
    """
    final = snapshot_path(directory, generation)
    temp = final + ".tmp"
    try:
        ops.rename(temp, final)
        ops.fsync_dir(directory)
    except OSError as exc:
        discard_snapshot(ops, directory, generation)
        raise JournalError(describe(exc, temp)) from None


def discard_snapshot(ops: FileOps, directory: str, generation: int) -> None:
    """Remove the temporary snapshot ``generation`` if it is there (errors are ignored)."""
    try:
        ops.remove(snapshot_path(directory, generation) + ".tmp")
    except OSError:
        pass


def remove_older(ops: FileOps, directory: str, generation: int) -> list:
    """Remove snapshots and journals older than ``generation``; return ``[(path, error)]``."""
    snapshots, journals, _ = list_files(directory)
    failed = []
    for gen, path in list(snapshots.items()) + list(journals.items()):
        if gen < generation:
            try:
                ops.remove(path)
            except OSError as exc:
                failed.append((path, exc))
    return failed


def lock_directory(directory: str, wait: float = 10.0, sleep=time.sleep) -> int:
    """Take the data directory's exclusive lock; return its fd (closing it releases the lock).

    Two writers appending to one journal would interleave records and lose data, so a
    second kvstore (or a repair) on a directory in use is refused. The kernel drops the
    lock when its last holder dies, even by SIGKILL, so a crash never leaves it stale.
    The holders are a server and its journal writer process, which outlives a killed
    server for as long as it takes to finish a write; when the server named in the lock
    file is dead, this waits up to ``wait`` seconds for the writer to let go.
    """
    import fcntl

    path = os.path.join(directory, "LOCK")
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    deadline = None
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            break
        except OSError:
            holder = os.pread(fd, 32, 0).decode("ascii", "replace").strip() or "unknown"
            if deadline is None:
                deadline = time.monotonic() + wait
            alive = _alive(holder)
            if alive or time.monotonic() >= deadline:
                os.close(fd)
                raise DataError("%s is in use by another process (pid %s%s)" % (
                    directory, holder, "" if alive else ", or its journal writer"))
            sleep(0.05)
    os.ftruncate(fd, 0)
    os.pwrite(fd, b"%d\n" % os.getpid(), 0)
    return fd


def _alive(pid: str) -> bool:
    # Unknown holders count as alive: waiting is only for a server known to be dead.
    try:
        os.kill(int(pid), 0)
    except (ValueError, OverflowError):
        return True
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open("/proc/%d/stat" % int(pid), "rb") as stat:
            # A zombie has exited; its parent just has not collected it yet.
            return stat.read().rsplit(b")", 1)[-1].split()[0] != b"Z"
    except (OSError, IndexError):
        return True


class DataError(Exception):
    """The data directory cannot load without losing data; the message names file and offset."""


class LoadResult:
    """What a load found: generations, sizes, record counts, torn tails and repairs."""

    def __init__(self) -> None:
        self.snapshot_generation = 0
        self.snapshot_bytes = 0
        self.journal_generation = 0
        self.journal_path = None
        self.journal_valid = 0  # valid prefix length of the newest journal (0: rewrite header)
        self.journal_bytes = 0
        self.records = 0
        self.torn = []  # (path, offset, bytes dropped)
        self.repaired = []  # (path, offset, bytes dropped, reason)
        self.stale = []  # files superseded by the newest snapshot


def _read_file(path: str, kind: int, generation: int, apply, load_items, result: LoadResult,
               repair: bool):
    # Returns (valid_prefix_length, size, complete, end_seen, applied) for one file,
    # applying each record; a repair keeps what was applied before the bad record.
    reader = RecordReader(path)
    size = 0
    applied = 0
    error = None
    with open(path, "rb") as handle:
        while error is None:
            chunk = handle.read(CHUNK)
            if not chunk:
                break
            size += len(chunk)
            reader.feed(chunk)
            try:
                applied += reader.apply_all(apply, load_items)
            except CorruptRecord as exc:
                error = exc
    end_count = reader.end_count
    applied = reader.records - (end_count is not None)
    if error is None and reader.header is not None:
        header = reader.header
        if header.kind != kind or header.generation != generation:
            error = CorruptRecord(path, 0, "header says %r, file name says %s %d" % (
                header, records.KIND_NAMES[kind], generation))
    if error is None and kind == records.SNAPSHOT and end_count is None:
        error = CorruptRecord(path, reader.offset, "snapshot is incomplete (no END record)")
    valid = reader.offset
    result.records += applied
    if error is not None:
        if not repair:
            raise DataError("%s (use --repair to keep the longest valid prefix,"
                            " losing %d bytes)" % (error, size - error.offset))
        result.repaired.append((path, error.offset, size - error.offset, error.reason))
        return error.offset, size, False, end_count is not None, applied
    torn = reader.finish()
    if torn:
        result.torn.append((path, valid, torn))
    return valid, size, True, end_count is not None, applied


class _Skip:
    """The SKIP count of a snapshot: the first records of the journal of its generation
    that it already holds (taken while they were still being written) are not replayed."""

    def __init__(self, apply) -> None:
        self.apply = apply
        self.count = 0

    def snapshot_apply(self, effect: tuple) -> None:
        if effect[0] == records.SKIP:
            self.count = effect[1]
        else:
            self.apply(effect)

    def journal_apply(self, effect: tuple) -> None:
        if self.count:
            self.count -= 1
        else:
            self.apply(effect)


def load(directory: str, apply, repair: bool = False, load_items=None) -> LoadResult:
    """Replay the newest snapshot and the journals after it into ``apply``; return a LoadResult.

    With ``load_items`` (like ``Keyspace.load_items``), SET records go to it in ordered
    batches of parallel lists ``(keys, values, expire_ats)``, other effects to ``apply``.

    Raises DataError (naming file and offset) on a checksum or format failure before a
    file's tail unless ``repair``; with ``repair`` the bad files are truncated to their
    longest valid prefix (later journals are emptied) and ``result.repaired`` says what was lost.
    Torn tails are tolerated and listed in ``result.torn``; files are not modified for them.
    """
    result = LoadResult()
    snapshots, journals, temps = list_files(directory)
    result.stale.extend(temps)
    snap_gen = max(snapshots) if snapshots else 0
    skip = _Skip(apply)
    if snapshots:
        path = snapshots[snap_gen]
        valid, size, complete, end_seen, applied = _read_file(
            path, records.SNAPSHOT, snap_gen, skip.snapshot_apply, load_items, result, repair)
        result.snapshot_bytes = size
        if not complete:
            truncate_file(path, valid)
            if valid < records.HEADER_SIZE:
                _write_all(path, records.encode_header(records.SNAPSHOT, snap_gen))
            if not end_seen:
                _write_all(path, records.encode_end(applied))
        result.snapshot_generation = snap_gen
    result.stale.extend(p for g, p in snapshots.items() if g < snap_gen)
    result.stale.extend(p for g, p in journals.items() if g < snap_gen)
    gens = sorted(g for g in journals if g >= snap_gen)
    expected = snap_gen if snapshots else (gens[0] if gens else 1)
    stopped = False
    for gen in gens:
        path = journals[gen]
        if stopped:
            dropped = os.path.getsize(path)
            result.repaired.append((path, 0, dropped, "after a repaired journal"))
            os.remove(path)
            continue
        if gen != expected:
            missing = journal_path(directory, expected)
            if not repair:
                raise DataError("%s is missing but %s exists "
                                "(use --repair to drop what follows the gap)" % (missing, path))
            result.repaired.append((missing, 0, os.path.getsize(path), "missing journal"))
            os.remove(path)
            stopped = True
            continue
        expected += 1
        if gen == snap_gen and skip.count:
            # Its first records are in the snapshot already: each goes to ``skip`` alone.
            valid, size, complete, _, _ = _read_file(path, records.JOURNAL, gen,
                                                     skip.journal_apply, None, result, repair)
        else:
            valid, size, complete, _, _ = _read_file(path, records.JOURNAL, gen, apply,
                                                     load_items, result, repair)
        result.journal_bytes += size
        result.journal_generation = gen
        result.journal_path = path
        result.journal_valid = valid
        if not complete:
            truncate_file(path, valid)
            stopped = True
    if result.journal_path is None:
        result.journal_generation = snap_gen or 1
        result.journal_path = journal_path(directory, result.journal_generation)
    return result


def truncate_file(path: str, size: int) -> None:
    """Cut the file at ``path`` to ``size`` bytes and fsync it."""
    with open(path, "r+b") as handle:
        handle.truncate(size)
        handle.flush()
        os.fsync(handle.fileno())


def _write_all(path: str, data: bytes) -> None:
    with open(path, "ab") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
