"""The journal writer process: its pipe framing and the loop that appends, syncs and rotates."""

from __future__ import annotations

import io
import os
import signal
import struct
import sys

from kvtwist.storage.datadir import FileOps, JournalError

# Requests (parent -> child) and replies (child -> parent) are one byte of kind, a 4-byte
# big-endian payload length, then the payload.
APPEND = b"A"  # payload: the records, written then fsynced; reply: the new size
APPEND_NOSYNC = b"a"  # the same without the fsync
SYNC = b"S"  # reply: b"\x01" if there was anything to sync
ROTATE = b"R"  # payload: the new generation (8 bytes); reply: the new journal's size
CLOSE = b"C"  # fsync and close; reply: empty
RESUME = b"U"  # accept appends again after a failed one; reply: empty
OK = b"K"
ERROR = b"E"  # payload: the reason, UTF-8
_KINDS = frozenset((APPEND, APPEND_NOSYNC, SYNC, ROTATE, CLOSE, RESUME, OK, ERROR))
_APPENDS = (APPEND, APPEND_NOSYNC)

_HEAD = struct.Struct(">cI")
_SIZE = struct.Struct(">Q")


def encode(kind: bytes, payload: bytes = b"") -> bytes:
    """Return one frame of ``kind`` carrying ``payload``."""
    return _HEAD.pack(kind, len(payload)) + payload


def encode_head(kind: bytes, length: int) -> bytes:
    """Return the 5-byte head of a frame of ``kind`` whose payload of ``length`` bytes follows."""
    return _HEAD.pack(kind, length)


def pack_size(size: int) -> bytes:
    """Return ``size`` as the 8-byte payload ``decode_size`` reads."""
    return _SIZE.pack(size)


def encode_size(kind: bytes, size: int) -> bytes:
    """Return one frame of ``kind`` carrying ``size`` as 8 bytes."""
    return encode(kind, pack_size(size))


def decode_size(payload: bytes) -> int:
    """Return the size an ``encode_size`` payload carries (ValueError if malformed)."""
    if len(payload) != _SIZE.size:
        raise ValueError("a size is 8 bytes, not %d" % len(payload))
    return _SIZE.unpack(payload)[0]


class FrameError(ValueError):
    """The pipe carried bytes that are not a frame: the two ends disagree, stop talking."""


class FrameParser:
    """Push-style: ``feed(data)`` returns the frames ``(kind, payload)`` completed so far.

    Linear in its input: a payload that spans several feeds is kept as the pieces it came
    in and joined once when complete, so each byte is copied at most twice (once when
    its piece is cut from a read, once by that join) whatever the payload's size. With
    ``keep_pieces`` an append's payload is not joined: it is handed on as the list of its
    pieces (the writer writes them as they are).

    ``data`` may be a memoryview of a buffer that is read into again later (``serve``):
    pieces and payloads are then views of it, and ``holding`` says which of them the
    parser still keeps (an unfinished payload's); a frame head cut across two feeds is
    copied (at most 4 bytes).
    """

    def __init__(self, keep_pieces: bool = False) -> None:
        self._keep = _APPENDS if keep_pieces else ()
        self._head = b""  # the first bytes (fewer than 5) of a frame whose head is unfinished
        self._kind = None  # the kind of the frame whose payload is being collected
        self._missing = 0  # payload bytes that frame still needs
        self._pieces = []  # its payload so far
        self._held = 0  # bytes of the unfinished frame held, its head included
        self._offset = 0  # stream offset of the next byte fed (for error messages)

    def feed(self, data: bytes) -> list:
        """Add ``data``; return every complete frame in order (raises FrameError).

        Cost: O(len(data)) plus, for a payload completed by this call, O(its length).
        """
        frames = []
        pos, end = 0, len(data)
        if self._head:
            need = 5 - len(self._head)
            if end < need:
                self._head += data
                self._held += end
                self._offset += end
                return frames
            head, self._head = self._head + data[:need], b""
            self._begin(head, 0, self._offset - self._held, frames)
            pos = need
        while True:
            if self._kind is not None:
                pos = self._collect(data, pos, end, frames)
                if self._kind is not None:
                    break
            if end - pos < 5:
                if pos < end:
                    self._head = bytes(data[pos:])
                    self._held = end - pos
                break
            self._begin(data, pos, self._offset + pos, frames)
            pos += 5
        self._offset += end
        return frames

    def _begin(self, data, pos: int, offset: int, frames: list) -> None:
        # A frame's 5-byte head is at data[pos:pos + 5]: start collecting its payload.
        kind, length = _HEAD.unpack_from(data, pos)
        if kind not in _KINDS:
            raise FrameError("unknown frame kind %r at byte %d" % (kind, offset))
        self._kind, self._missing, self._pieces, self._held = kind, length, [], 5
        if not length:
            frames.append((kind, b""))
            self._kind, self._held = None, 0

    def _collect(self, data, pos: int, end: int, frames: list) -> int:
        # Take what the current payload still needs from data[pos:end]; return the new pos.
        take = min(self._missing, end - pos)
        if take:
            self._pieces.append(data if take == end and pos == 0 else data[pos:pos + take])
            self._missing -= take
            self._held += take
        if not self._missing:
            pieces = self._pieces
            if len(pieces) == 1:
                payload = pieces[0]
            elif self._kind in self._keep:
                payload = pieces
            else:
                payload = b"".join(pieces)
            frames.append((self._kind, payload))
            self._kind, self._pieces, self._held = None, [], 0
        return pos + take

    @property
    def pending(self) -> int:
        """Return how many bytes of an incomplete frame are held."""
        return self._held

    def holding(self) -> list:
        """Return the pieces of the unfinished payload, as fed (views of the buffers they
        were read into: see ``serve``)."""
        return self._pieces

    def unfinished_append(self) -> list:
        """Return the pieces so far of an append whose payload is still being read, or []."""
        return self._pieces if self._kind in _APPENDS else []


# The writer reads its pipe into buffers of this size (the pipe's width, PIPE_SIZE in
# processlog), each read into again once what was read into it is written.
READ_SIZE = 1 << 20
# Free buffers kept for reuse: what a 16 MB record needs. A larger payload takes more
# while it is read; those beyond this go back to the allocator after it.
KEEP_BUFFERS = 16
# An append still being read is written ahead once this much of it is read and unwritten.
WRITE_AHEAD = 256 * 1024


class ReadBuffers:
    """The buffers ``serve`` reads the pipe into, reused once nothing read into them is held.

    A fresh bytes per read made the kernel fault in every page of it: 4,100 page faults
    and about half the writer's CPU for a 16 MB record. A buffer goes back to the free
    list (at most ``keep`` are kept) when ``release`` is told nothing views it. O(1) per
    read; ``release`` is O(buffers read into since the last release + held pieces).
    """

    def __init__(self, size: int = READ_SIZE, keep: int = KEEP_BUFFERS) -> None:
        self.size = size
        self.keep = keep
        self.allocated = 0  # buffers made so far
        self._free = []
        self._used = []  # buffers read into since the last release

    def read(self, readinto) -> memoryview:
        """Read with ``readinto(buffer)`` into a free buffer; return a view of the bytes
        read (empty at end of input)."""
        if self._free:
            buffer = self._free.pop()
        else:
            buffer = bytearray(self.size)
            self.allocated += 1
        self._used.append(buffer)
        return memoryview(buffer)[:readinto(buffer) or 0]

    def release(self, holding: list) -> None:
        """Free the buffers read into except those the views in ``holding`` are of: the
        bytes read into the others were written (or refused) and are not read again."""
        held = {id(piece.obj) for piece in holding if piece.__class__ is memoryview}
        kept = []
        free = self._free
        for buffer in self._used:
            if id(buffer) in held:
                kept.append(buffer)
            elif len(free) < self.keep:
                free.append(buffer)
        self._used = kept


class Child:
    """The writer process's state: the journal being appended to and how requests change it.

    Appends may arrive while earlier ones are still being written (the server does not
    wait for answers), so two rules keep the file in the server's order: the appends
    that arrived together are written with one write and one fsync, and once an append
    has failed every later one is refused, whatever the disk does meanwhile, until a
    RESUME says the server has taken them all back to send again in order.
    """

    def __init__(self, ops, directory: str, path: str, size: int, generation: int) -> None:
        from kvtwist.storage import writer

        self._writer = writer
        self.ops = ops
        self.directory = directory
        # Opened by path; whatever follows the good length (a write the last writer did
        # not finish, or did not report) is cut before the first append.
        self.file = writer.LogFile(ops, path, ops.open(path), size, generation)
        self.file.dirty = True
        self.closed = False
        self.refusing = None  # why appends are refused until RESUME (a failed append)
        self.write_ahead_min = WRITE_AHEAD
        self._ahead = 0  # bytes of the append being read written ahead (write_ahead)
        self._ahead_pieces = 0  # how many of its pieces they are
        self._ahead_failure = None  # why writing it ahead failed

    def write_ahead(self, pieces: list) -> None:
        """Write the pieces read so far of an append still being read, behind the good length.

        A large record is then written while the rest of it comes down the pipe rather
        than after: the append that completes it writes only what follows (``_append_run``)
        and fsyncs. Called with the pieces of that one unfinished append, in order, after
        every frame before it was carried out; writes once ``write_ahead_min`` bytes of
        them are unwritten. A failed write fails the append (and the others written with it)
        and refuses later ones, as a failed append does. O(unwritten pieces).
        """
        if self.refusing is not None or self.closed:
            return
        fresh = pieces[self._ahead_pieces:]
        size = sum(map(len, fresh))
        if size < self.write_ahead_min:
            return
        try:
            self.file.write_ahead(fresh, self._ahead)
        except JournalError as exc:
            self.refusing = self._ahead_failure = str(exc)
            self._ahead = self._ahead_pieces = 0
            return
        self._ahead += size
        self._ahead_pieces = len(pieces)

    def handle_all(self, frames: list) -> list:
        """Carry out ``frames`` in order; return their reply frames, one per request.

        A run of consecutive appends is one group commit: one write, then one fsync if
        any of them asked for it.
        """
        replies = []
        index, count = 0, len(frames)
        while index < count:
            end = index
            while end < count and frames[end][0] in _APPENDS:
                end += 1
            if end > index:
                replies.extend(self._append_run(frames[index:end]))
                index = end
            else:
                replies.append(self.handle(*frames[index]))
                index += 1
        return replies

    def _append_run(self, run: list) -> list:
        size = self.file.size
        # The first append may have been written ahead: only the rest of it is written.
        ahead, skip = self._ahead, self._ahead_pieces
        self._ahead = self._ahead_pieces = 0
        # A failed write ahead fails the run, as its failed merged write would.
        reason, self._ahead_failure = self._ahead_failure, None
        if reason is None and self.refusing is not None:
            reason = "not written: an earlier append failed (%s)" % (self.refusing,)
        elif reason is None:
            rest = [(run[0][0], run[0][1][skip:])] + run[1:] if skip else run
            try:
                self.file.append(_merged(rest), any(kind == APPEND for kind, _ in run), ahead)
                reason = None
            except JournalError as exc:
                reason = self.refusing = str(exc)
        if reason is not None:
            return [encode(ERROR, reason.encode("utf-8", "replace"))] * len(run)
        replies = []
        for _kind, payload in run:
            size += len(payload) if payload.__class__ is not list else sum(map(len, payload))
            replies.append(encode_size(OK, size))
        return replies

    def handle(self, kind: bytes, payload: bytes) -> bytes:
        """Carry out one request; return its reply frame (errors become ERROR frames)."""
        try:
            if kind == APPEND or kind == APPEND_NOSYNC:
                return self._append_run([(kind, payload)])[0]
            if kind == SYNC:
                return encode(OK, b"\x01" if self.file.sync() else b"\x00")
            if kind == ROTATE:
                generation = decode_size(payload)
                self.file = self._writer.rotate(self.ops, self.file, self.directory, generation)
                return encode_size(OK, self.file.size)
            if kind == CLOSE:
                self.closed = True
                try:
                    self.file.close()
                except OSError as exc:
                    raise JournalError("closing %s: %s" % (self.file.path, exc)) from None
                return encode(OK)
            if kind == RESUME:
                self.refusing = None
                return encode(OK)
            raise FrameError("a writer cannot carry out %r" % (kind,))
        except JournalError as exc:
            return encode(ERROR, str(exc).encode("utf-8", "replace"))


def _merged(run: list):
    # The payloads of a run of appends as one write: bytes, or a list of pieces when a
    # payload came as pieces (a large record: written without joining it, O(pieces)).
    if all(payload.__class__ is not list for _, payload in run):
        return b"".join(payload for _, payload in run)
    pieces = []
    for _, payload in run:
        if payload.__class__ is list:
            pieces.extend(payload)
        else:
            pieces.append(payload)
    return pieces


class FreshReads:
    """Reads as new bytes each (``read(n)``, as ``os.read``), for PyPy: its ``readinto`` a
    bytearray and its ``os.pwrite`` of a view of one each copy through a buffer of their
    own, so reused buffers cost the writer more CPU per 16 MB record (23-29 ms) than
    fresh reads (18-20 ms). Same methods as ReadBuffers."""

    def __init__(self, size: int = READ_SIZE) -> None:
        self.size = size

    def read(self, read) -> bytes:
        """Return ``read(size)``: up to ``size`` new bytes (empty at end of input)."""
        return read(self.size)

    def release(self, holding: list) -> None:
        """Nothing to do: every read is its own bytes."""


def serve(child: Child, read, write, buffers=None) -> None:
    """Answer requests read through ``buffers`` with ``read`` through ``write(data)`` until
    end of input or CLOSE.

    Every request read in one go is carried out (its appends as one group commit, see
    Child) before the replies go back in one write, so a burst costs one wake-up of the
    parent; then what was read of an append still being read is written ahead
    (``Child.write_ahead``). ``buffers`` is a ReadBuffers (the default; ``read`` is then a
    ``readinto``), whose buffers are each reused once the frames read into them are
    carried out and no unfinished payload still holds a piece of one, or FreshReads
    (``read(n)``).
    """
    parser = FrameParser(keep_pieces=True)
    if buffers is None:
        buffers = ReadBuffers()
    while not child.closed:
        data = buffers.read(read)
        if not data:
            return  # the server is gone: nothing read later can be acknowledged anyway
        replies = child.handle_all(parser.feed(data))
        if replies:
            write(b"".join(replies))
        unfinished = parser.unfinished_append()
        if unfinished:
            child.write_ahead(unfinished)
        buffers.release(parser.holding())


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def main(argv=None) -> int:
    """Run as ``python -m kvtwist.storage.journalproc DIRECTORY PATH SIZE GENERATION``; return 0."""
    directory, path, size, generation = (argv or sys.argv[1:])[:4]
    # A terminal's Ctrl-C, or a supervisor signalling the whole process group, is meant
    # for the server: it commits what is pending through this process, then closes our
    # stdin, which is when we exit.
    for name in ("SIGINT", "SIGTERM", "SIGHUP"):
        signal.signal(getattr(signal, name), signal.SIG_IGN)
    try:
        child = Child(FileOps(), directory, path, int(size), int(generation))
    except OSError as exc:
        sys.stderr.write("kvtwist journal writer: cannot open %s: %s\n" % (path, exc.strerror))
        return 1
    try:
        if sys.implementation.name == "pypy":
            read, buffers = (lambda n: os.read(0, n)), FreshReads()
        else:
            read, buffers = io.FileIO(0, "r", closefd=False).readinto, ReadBuffers()
        serve(child, read, lambda data: _write_all(1, data), buffers)
    except BrokenPipeError:
        pass  # the server died between our read and our reply
    return 0


if __name__ == "__main__":
    sys.exit(main())


__all__ = ["encode", "encode_head", "pack_size", "encode_size", "decode_size", "FrameParser",
           "FrameError", "ReadBuffers", "FreshReads", "Child", "serve", "main"]
