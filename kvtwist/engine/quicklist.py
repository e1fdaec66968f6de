"""PackedDeque: a deque of byte strings stored like Redis's quicklist, in packed chunks.

A list of a million short elements kept as a ``collections.deque`` of ``bytes`` costs
about 72 bytes an element under CPython (a 16-byte element is a 49-byte object rounded to
64 by pymalloc, plus its 8-byte deque slot), four times redis-server's 18. A PackedDeque
keeps its elements in *chunks* held by a ``collections.deque``:

- the two end chunks may be *open*: plain Python lists of ``bytes`` (at most ``LIMIT``
  elements each), so a push or a pop at an end is a list append/pop;
- every other chunk is *packed*: a L{Packed}, one ``bytes`` blob holding its elements end
  to end, plus either one element size (every element of the chunk has the same length:
  element ``i`` is ``blob[i * size:(i + 1) * size]``, nothing more per element) or an
  ``array('I')`` of offsets (4 bytes an element). ``start``/``stop`` bound the live
  elements, so a pop at an end of a packed chunk moves an index and copies nothing.

An open end chunk is packed when it is full and a push needs room at that end; a packed
end chunk reduced by pops to fewer than ``LIMIT // 2`` live elements is opened again by
the next push there (O(chunk), paid for by the pops before it), so pushes and pops at
the ends are O(1) amortised however they alternate. A change in the middle (set,
insert, delete of one element) unpacks one chunk, changes it and packs it again:
O(LIMIT + its bytes), as Redis rewrites one listpack. Finding index ``i`` walks the
chunk lengths from the nearer end: O(min(i, n - i) / LIMIT), as Redis walks its nodes.

A packed chunk holds at most ``LIMIT`` elements and stops at ``CHUNK_BYTES`` bytes (an
element larger than that is a chunk of its own, its blob the element itself). Its blob
and offsets are never changed once made (only ``start``/``stop`` are), so a snapshot
(L{PackedDeque.frozen}) shares them: O(chunks), not O(n).

Memory (CPython 3.11, 1,000,000 16-byte elements): about 17 bytes an element (the
element's bytes and ~1 byte of its chunk's headers); 21 for elements of mixed lengths
(their offsets). Reading: a uniform chunk is unpacked by one precompiled ``struct``
(~15 ns an element, C-level), a mixed one by slicing (~100 ns an element).
"""

from __future__ import annotations

import platform
import struct
from array import array
from bisect import bisect_right
from functools import lru_cache
from itertools import accumulate

# Elements in a chunk at most; a packed end chunk with fewer live elements than THAW is
# opened again by a push at its end.
LIMIT = 128
THAW = LIMIT // 2
# A packed chunk's blob stops growing at the element that takes it past this many bytes
# (Redis's list-max-listpack-size -2: 8 KB listpacks).
CHUNK_BYTES = 8192

_PYPY = platform.python_implementation() == "PyPy"


class Packed:
    """A packed chunk: elements ``start`` to ``stop - 1`` of ``blob``.

    ``offsets`` is None when every element is ``size`` bytes long; otherwise element ``i``
    is ``blob[offsets[i]:offsets[i + 1]]``. ``blob`` and ``offsets`` never change.
    """

    __slots__ = ("blob", "offsets", "size", "start", "stop")

    def __init__(self, blob: bytes, offsets, size: int, start: int, stop: int) -> None:
        self.blob = blob
        self.offsets = offsets
        self.size = size
        self.start = start
        self.stop = stop

    def __repr__(self) -> str:
        return "Packed(%r)" % (unpack(self),)


@lru_cache(maxsize=256)
def _struct(size: int, count: int) -> struct.Struct:
    # Unpacks ``count`` (<= LIMIT) elements of ``size`` bytes each (~4 KB a Struct).
    return struct.Struct(("%ds" % size) * count)


def element_at(chunk: Packed, index: int) -> bytes:
    """Element ``index`` (absolute in the blob) of a packed chunk: O(its length)."""
    offsets = chunk.offsets
    if offsets is None:
        size = chunk.size
        return chunk.blob[index * size:index * size + size]
    return chunk.blob[offsets[index]:offsets[index + 1]]


def chunk_slice(chunk: Packed, first: int, last: int):
    """Return elements ``first`` to ``last - 1`` (absolute) of a packed chunk as a new tuple
    or list: O(its elements + bytes). A uniform chunk's elements are cut by one C-level
    ``struct`` call (~15 ns an element; a ``Struct`` per size and count, cached)."""
    offsets = chunk.offsets
    blob = chunk.blob
    if offsets is None:
        size = chunk.size
        if not size:
            return [b""] * (last - first)
        if _PYPY:
            return [blob[i:i + size] for i in range(first * size, last * size, size)]
        return _struct(size, last - first).unpack_from(blob, first * size)
    return [blob[offsets[i]:offsets[i + 1]] for i in range(first, last)]


def unpack(chunk: Packed, first: int = -1, last: int = -1) -> list:
    """Return a new list of elements ``first`` to ``last - 1`` (absolute; default: the live
    ones) of a packed chunk: O(its elements + bytes)."""
    if first < 0:
        first, last = chunk.start, chunk.stop
    found = chunk_slice(chunk, first, last)
    return found if found.__class__ is list else list(found)


def pack_one(elements: list) -> Packed:
    # Pack a non-empty list of elements into one chunk (no size limits checked).
    count = len(elements)
    size = len(elements[0])
    if count == 1 or list(map(len, elements)).count(size) == count:
        return Packed(b"".join(elements), None, size, 0, count)
    return Packed(b"".join(elements), array("I", accumulate(map(len, elements), initial=0)),
                  -1, 0, count)


def pack(elements: list) -> list:
    """Return packed chunks holding ``elements`` (non-empty) in order, each of at most
    LIMIT elements (the count split evenly) and CHUNK_BYTES bytes (or one element):
    O(elements + bytes)."""
    count = len(elements)
    pieces = -(-count // LIMIT)
    per = -(-count // pieces)
    chunks = []
    for at in range(0, count, per):
        part = elements[at:at + per]
        total = sum(map(len, part))
        if total <= CHUNK_BYTES or len(part) == 1:
            chunks.append(pack_one(part))
            continue
        # Too many bytes: cut where each piece reaches CHUNK_BYTES.
        ends = list(accumulate(map(len, part), initial=0))
        first = 0
        while first < len(part):
            last = bisect_right(ends, ends[first] + CHUNK_BYTES, first + 1) - 1
            if last == first:
                last += 1  # one element larger than CHUNK_BYTES: alone
            chunks.append(pack_one(part[first:last]))
            first = last
    return chunks


def length(chunk) -> int:
    return len(chunk) if chunk.__class__ is list else chunk.stop - chunk.start


def live(chunk) -> list:
    # The elements of a chunk, as a list (an open chunk itself: do not change it).
    return chunk if chunk.__class__ is list else unpack(chunk)


def find(chunk, element: bytes) -> int:
    """Index of the first ``element`` among a chunk's live elements, or -1: O(chunk bytes),
    with a C-level search of the blob before anything is unpacked."""
    if chunk.__class__ is list:
        try:
            return chunk.index(element)
        except ValueError:
            return -1
    blob = chunk.blob
    offsets = chunk.offsets
    if offsets is None:
        size = chunk.size
        if len(element) != size:
            return -1
        if not size:
            return 0
        end = chunk.stop * size
        at = blob.find(element, chunk.start * size, end)
        while at != -1:
            if at % size == 0:
                return at // size - chunk.start
            at = blob.find(element, at + 1, end)
        return -1
    if blob.find(element, offsets[chunk.start], offsets[chunk.stop]) == -1:
        return -1
    try:
        return unpack(chunk).index(element)
    except ValueError:
        return -1


def thawed(frozen: list) -> list:
    """Return the elements of a ``PackedDeque.frozen`` snapshot as one list: O(n)."""
    elements = []
    for part in frozen:
        if part.__class__ is tuple:
            elements += unpack(Packed(*part))
        else:
            elements += part
    return elements
