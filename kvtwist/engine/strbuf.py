"""Strings that APPEND, SETRANGE, SETBIT and BITFIELD change in place: StringBuffer.

A string value is ``bytes`` in the keyspace: immutable, so every reader may keep it (a
reply in a transport's buffer, the snapshot thread, an undo entry) and a write makes a
new one, one copy of the whole value. That copy is what made an APPEND of one byte to a
64 MB value cost about 40 ms, every client waiting.

So a write through ``Keyspace.setrange`` that leaves a string PROMOTE bytes long or more
turns it into a StringBuffer, a ``bytearray`` that later writes change in place: an
APPEND grows it with CPython's or PyPy's geometric over-allocation (amortised O(bytes
appended), as Redis's sdsMakeRoomFor), a SETRANGE inside it copies only the patch. The
first such write pays one copy of the value (its bytes become the buffer's).

Nothing outside the keyspace keeps a StringBuffer, so nothing can see it torn or changed
later: ``Keyspace.get`` (GET, MGET, GETEX, GETDEL, GETSET, DUMP, SORT, LCS, RENAME, COPY,
MOVE...) answers ``bytes(buffer)``, a copy owned by the caller (O(n), as Redis's GET
copies the value into the reply); snapshots take the same copy (``snapshot_items``).
A second such read with no write since stores its copy in place of the buffer (``read``):
a value read more than written is bytes again, read without copies, and the next write
pays the one copy back to a buffer.
Readers that need only a length, a byte or a piece take the buffer as it is through
``string_at`` and copy only what they return (STRLEN, GETRANGE, GETBIT, BITCOUNT,
BITPOS, BITFIELD, TYPE, OBJECT ENCODING: "raw", as Redis says after APPEND). The
journal logs the patch only ``(SETRANGE, key, offset, patch)``; an undo entry keeps the
bytes a patch overwrote and the old length (``write`` returns them, ``restore`` puts
them back), not the old value.
"""

from __future__ import annotations

from kvtwist.engine.types import wrongtype

# A write leaving a string at least this long makes it a StringBuffer. Below it the
# whole-value copy costs less than the command around it (64 KB: 1.5 us on CPython, 3.7 us
# on PyPy; 256 KB: 21 and 148 us, past malloc's mmap threshold), and readers of the value
# pay no copy.
PROMOTE = 1 << 16


class StringBuffer(bytearray):
    """A string value changed in place by writes (see the module docstring).

    A ``bytearray``: len, indexing and slicing (a bytearray copy of the slice) work as on
    bytes, and it compares equal to bytes of the same content. Never handed out as a
    reply: ``bytes(buffer)`` or ``piece`` copy what leaves.
    """

    __slots__ = ("reads",)  # copies given out since the last write (``read``)

    type_name = b"string"  # what TYPE answers (types.type_name)

    def __init__(self, *args) -> None:
        bytearray.__init__(self, *args)
        self.reads = 0

    @property
    def nbytes(self) -> int:
        """The estimated memory (types.size_of): the length, as for a bytes value."""
        return len(self)

    @staticmethod
    def encoding() -> bytes:
        """OBJECT ENCODING: a written string longer than 44 bytes is "raw" in Redis."""
        return b"raw"

    def piece(self, start: int, stop: int) -> bytes:
        """Return ``bytes(self[start:stop])`` with one copy: O(stop - start)."""
        with memoryview(self) as view:
            return view[start:stop].tobytes()

    def write(self, offset: int, patch: bytes) -> bytes:
        """Write ``patch`` at ``offset``, zero-filling any gap past the end; return the bytes
        it overwrote (for ``restore``). O(len(patch) + gap), amortised when it grows."""
        self.reads = 0
        size = len(self)
        if offset >= size:
            if offset > size:
                self.extend(bytes(offset - size))
            self.extend(patch)
            return b""
        stop = offset + len(patch)
        overwritten = self.piece(offset, stop)
        self[offset:stop] = patch
        return overwritten

    def restore(self, offset: int, overwritten: bytes, size: int) -> None:
        """Undo a ``write`` at ``offset`` that returned ``overwritten`` when the value was
        ``size`` bytes long: O(len(overwritten)) plus the bytes cut off."""
        self.reads = 0
        del self[size:]
        self[offset:offset + len(overwritten)] = overwritten


def patched(old, offset: int, patch: bytes) -> bytes:
    """Return ``old`` (None: empty) with ``patch`` written at ``offset``, zero-padded: one copy."""
    if old is None:
        old = b""
    size = len(old)
    if offset >= size:
        if offset == size:
            return old + patch
        return b"".join((old, bytes(offset - size), patch))
    view = memoryview(old)
    return b"".join((view[:offset], patch, view[offset + len(patch):]))


def write_range(old, offset: int, patch: bytes):
    """Return ``(value, overwritten)``: ``old`` (None, bytes or a StringBuffer) with
    ``patch`` written at ``offset`` (``Keyspace.setrange``).

    A StringBuffer is changed in place (``value is old``; ``overwritten`` as ``write``
    returns it): O(len(patch)) amortised. Otherwise ``value`` is new: bytes while shorter
    than PROMOTE, else a StringBuffer (``overwritten`` None): O(len(value)).
    """
    if old.__class__ is StringBuffer:
        return old, old.write(offset, patch)
    size = 0 if old is None else len(old)
    if max(size, offset + len(patch)) < PROMOTE:
        return patched(old, offset, patch), None
    value = StringBuffer(old or b"")
    value.write(offset, patch)
    return value, None


def read(data: dict, key, buffer: StringBuffer) -> bytes:
    """Return a copy of ``buffer``, the value of ``key`` in ``data`` (``Keyspace.get``): O(n).

    The second copy asked for with no write in between replaces the buffer in ``data``
    (same bytes, so the meter and every observer are unaffected; an undo entry that names
    the buffer puts it back first, see ``Keyspace._undo``).
    """
    copy = bytes(buffer)
    if buffer.reads:
        data[key] = copy
    else:
        buffer.reads = 1
    return copy


def string_at(keyspace, key):
    """Return a live key's string as held (bytes, or a StringBuffer to read at once, never
    to keep or reply with), None when missing; raise WRONGTYPE for another type. O(1).

    For readers of a length, a byte or a piece; ``keyspace.get_string`` copies a buffer.
    """
    value = keyspace.peek(key)
    if value is None or value.__class__ is bytes or value.__class__ is StringBuffer:
        return value
    raise wrongtype()


def piece(value, start: int, stop: int) -> bytes:
    """Return ``value[start:stop]`` as bytes, for bytes or a StringBuffer: O(stop - start)."""
    if value.__class__ is bytes:
        return value[start:stop]
    return value.piece(start, stop)
