"""PackedDeque: a ``collections.deque`` of byte strings kept in packed chunks (quicklist.py).

The chunk layout, its memory and costs are described in engine/quicklist.py; this module
is the deque on top: pushes and pops at both ends, access by index, search, ranges and
snapshots. listtype.py keeps every list's elements in one.
"""

from __future__ import annotations

from collections import deque
from itertools import chain, islice

from kvtwist.engine.quicklist import (
    LIMIT, THAW, Packed, chunk_slice, element_at, find, length, live, pack, unpack)


class PackedDeque:
    """A deque of ``bytes`` in packed chunks (see the module docstring).

    It offers the ``collections.deque`` operations the list type uses, with the same
    results; each method gives its worst-case cost (n elements, C = LIMIT).
    """

    __slots__ = ("_chunks", "_len")

    def __init__(self, elements=()) -> None:
        """O(n): the elements are packed as they come."""
        self._chunks = deque()
        self._len = 0
        if elements:
            self.extend(elements)

    def __len__(self) -> int:
        return self._len

    def __repr__(self) -> str:
        return "PackedDeque(%r)" % (list(self),)

    def __eq__(self, other) -> bool:
        """O(n)."""
        if isinstance(other, PackedDeque):
            return len(self) == len(other) and list(self) == list(other)
        if isinstance(other, (deque, list, tuple)):
            return list(self) == list(other)
        return NotImplemented

    __hash__ = None

    # -- the ends ------------------------------------------------------------------------

    def _open_right(self) -> list:
        # The open chunk at the right end, with room for one element: O(C) amortised.
        chunks = self._chunks
        if chunks:
            tail = chunks[-1]
            if tail.__class__ is list:
                if len(tail) < LIMIT:
                    return tail
                chunks.pop()
                chunks.extend(pack(tail))
            elif tail.stop - tail.start < THAW:
                chunks[-1] = tail = unpack(tail)
                return tail
        tail = []
        chunks.append(tail)
        return tail

    def _open_left(self) -> list:
        chunks = self._chunks
        if chunks:
            head = chunks[0]
            if head.__class__ is list:
                if len(head) < LIMIT:
                    return head
                chunks.popleft()
                chunks.extendleft(reversed(pack(head)))
            elif head.stop - head.start < THAW:
                chunks[0] = head = unpack(head)
                return head
        head = []
        chunks.appendleft(head)
        return head

    def append(self, element: bytes) -> None:
        """Push at the right end: O(1) amortised (O(C + chunk bytes) when a chunk is
        packed or opened)."""
        chunks = self._chunks
        if chunks:
            tail = chunks[-1]
            if tail.__class__ is list and len(tail) < LIMIT:
                tail.append(element)
                self._len += 1
                return
        self._open_right().append(element)
        self._len += 1

    def appendleft(self, element: bytes) -> None:
        """Push at the left end: O(C) (a list insert at 0 of an open chunk), O(1) amortised
        otherwise as ``append``."""
        chunks = self._chunks
        if chunks:
            head = chunks[0]
            if head.__class__ is list and len(head) < LIMIT:
                head.insert(0, element)
                self._len += 1
                return
        self._open_left().insert(0, element)
        self._len += 1

    def extend(self, elements) -> None:
        """Push each element at the right end in turn: O(len(elements)) amortised."""
        if elements.__class__ is not list and elements.__class__ is not tuple:
            elements = list(elements)
        count = len(elements)
        chunks = self._chunks
        if chunks:
            tail = chunks[-1]
            if tail.__class__ is list and len(tail) + count <= LIMIT:
                tail.extend(elements)
                self._len += count
                return
        if not count:
            return
        self._len += count
        tail = self._open_right()
        at = LIMIT - len(tail)
        tail.extend(elements[:at])
        while at < count:
            chunks.pop()
            chunks.extend(pack(tail))
            tail = list(elements[at:at + LIMIT])
            chunks.append(tail)
            at += LIMIT

    def extendleft(self, elements) -> None:
        """Push each element at the left end in turn (so they end up reversed), as
        ``deque.extendleft``: O(len(elements) + C) amortised."""
        if elements.__class__ is not list and elements.__class__ is not tuple:
            elements = list(elements)
        count = len(elements)
        chunks = self._chunks
        if chunks:
            head = chunks[0]
            if head.__class__ is list and len(head) + count <= LIMIT:
                if count == 1:
                    head.insert(0, elements[0])
                else:
                    head[0:0] = elements[::-1]
                self._len += count
                return
        if not count:
            return
        self._len += count
        head = self._open_left()
        at = LIMIT - len(head)
        head[0:0] = elements[:at][::-1]
        while at < count:
            chunks.popleft()
            chunks.extendleft(reversed(pack(head)))
            head = list(elements[at:at + LIMIT])
            head.reverse()
            chunks.appendleft(head)
            at += LIMIT

    def pop(self) -> bytes:
        """Pop at the right end: O(1) (IndexError when empty)."""
        chunks = self._chunks
        tail = chunks[-1]
        if tail.__class__ is list:
            element = tail.pop()
            if not tail:
                chunks.pop()
        else:
            tail.stop = stop = tail.stop - 1
            element = element_at(tail, stop)
            if stop == tail.start:
                chunks.pop()
        self._len -= 1
        return element

    def popleft(self) -> bytes:
        """Pop at the left end: O(C) for an open chunk (a list pop at 0), else O(1)."""
        chunks = self._chunks
        head = chunks[0]
        if head.__class__ is list:
            element = head.pop(0)
            if not head:
                chunks.popleft()
        else:
            start = head.start
            element = element_at(head, start)
            head.start = start = start + 1
            if start == head.stop:
                chunks.popleft()
        self._len -= 1
        return element

    def pop_many(self, count: int) -> list:
        """Pop ``count`` (<= length) elements at the right end; return them in the order
        popped: O(count + C)."""
        chunks = self._chunks
        popped = []
        left = count
        while left:
            tail = chunks[-1]
            size = length(tail)
            take = min(left, size)
            if tail.__class__ is list:
                piece = tail[size - take:]
                del tail[size - take:]
            else:
                piece = unpack(tail, tail.stop - take, tail.stop)
                tail.stop -= take
            piece.reverse()
            popped += piece
            if take == size:
                chunks.pop()
            left -= take
        self._len -= count
        return popped

    def popleft_many(self, count: int) -> list:
        """Pop ``count`` (<= length) elements at the left end; return them in the order
        popped: O(count + C)."""
        chunks = self._chunks
        popped = []
        left = count
        while left:
            head = chunks[0]
            size = length(head)
            take = min(left, size)
            if head.__class__ is list:
                popped += head[:take]
                del head[:take]
            else:
                popped += unpack(head, head.start, head.start + take)
                head.start += take
            if take == size:
                chunks.popleft()
            left -= take
        self._len -= count
        return popped

    def clear(self) -> None:
        """Remove every element: O(chunks)."""
        self._chunks.clear()
        self._len = 0

    # -- by index ------------------------------------------------------------------------

    def _locate(self, index: int):
        """Return ``(position, chunk, offset)`` of element ``index`` (0 <= index < length):
        its chunk's position in the chunk deque and its offset among the chunk's live
        elements. O(min(index, n - index) / C), walking from the nearer end."""
        chunks = self._chunks
        if index <= self._len - 1 - index:
            position = 0
            for chunk in chunks:
                size = len(chunk) if chunk.__class__ is list else chunk.stop - chunk.start
                if index < size:
                    return position, chunk, index
                index -= size
                position += 1
        else:
            index = self._len - 1 - index  # counted from the right end
            position = len(chunks) - 1
            for chunk in reversed(chunks):
                size = len(chunk) if chunk.__class__ is list else chunk.stop - chunk.start
                if index < size:
                    return position, chunk, size - 1 - index
                index -= size
                position -= 1
        raise AssertionError("PackedDeque lengths out of step")

    def _index(self, index: int) -> int:
        if index < 0:
            index += self._len
        if not 0 <= index < self._len:
            raise IndexError("deque index out of range")
        return index

    def __getitem__(self, index: int) -> bytes:
        """Element ``index`` (negative from the right): O(1) at the ends, else
        O(min(index, n - index) / C)."""
        if index == 0 or index == -1:
            chunk = self._chunks[index]
            if chunk.__class__ is list:
                return chunk[index]
            return element_at(chunk, chunk.start if index == 0 else chunk.stop - 1)
        _, chunk, offset = self._locate(self._index(index))
        if chunk.__class__ is list:
            return chunk[offset]
        return element_at(chunk, chunk.start + offset)

    def _replace(self, position: int, elements: list) -> None:
        # Put ``elements`` in place of the chunk at ``position``: packed (an open end chunk
        # within LIMIT stays open), nothing when empty. O(C + chunk bytes + chunks).
        chunks = self._chunks
        old = chunks[position]
        if not elements:
            del chunks[position]
        elif old.__class__ is list and len(elements) <= LIMIT:
            if elements is not old:
                old[:] = elements
        else:
            pieces = pack(elements)
            chunks[position] = pieces[0]
            for offset in range(1, len(pieces)):
                chunks.insert(position + offset, pieces[offset])

    def __setitem__(self, index: int, element: bytes) -> None:
        """Replace element ``index``: O(min(index, n - index) / C + C + chunk bytes)."""
        self.swap(index, element)

    def swap(self, index: int, element: bytes) -> bytes:
        """Replace element ``index`` and return the old one (one walk for both):
        O(min(index, n - index) / C + C + chunk bytes)."""
        position, chunk, offset = self._locate(self._index(index))
        if chunk.__class__ is list:
            old = chunk[offset]
            chunk[offset] = element
            return old
        elements = unpack(chunk)
        old = elements[offset]
        elements[offset] = element
        self._replace(position, elements)
        return old

    def insert(self, index: int, element: bytes) -> None:
        """Insert before position ``index`` (clamped to 0..length, negative from the right,
        as ``deque.insert``): O(min(index, n - index) / C + C + chunk bytes)."""
        if index < 0:
            index = max(0, index + self._len)
        if index >= self._len:
            self.append(element)
            return
        if index == 0:
            self.appendleft(element)
            return
        position, chunk, offset = self._locate(index)
        elements = live(chunk)
        elements.insert(offset, element)
        self._replace(position, elements)
        self._len += 1

    def __delitem__(self, index: int) -> None:
        """Remove element ``index``: O(1) at the edge of a chunk, else
        O(min(index, n - index) / C + C + chunk bytes)."""
        position, chunk, offset = self._locate(self._index(index))
        if chunk.__class__ is list:
            del chunk[offset]
            if not chunk:
                del self._chunks[position]
        elif offset == 0 or offset == chunk.stop - chunk.start - 1:
            if offset == 0:
                chunk.start += 1
            else:
                chunk.stop -= 1
            if chunk.start == chunk.stop:
                del self._chunks[position]
        else:
            elements = unpack(chunk)
            del elements[offset]
            self._replace(position, elements)
        self._len -= 1

    # -- reads ---------------------------------------------------------------------------

    def __iter__(self):
        """Iterate from the left: O(n) in all, one chunk unpacked at a time."""
        return chain.from_iterable(map(live, self._chunks))

    def __reversed__(self):
        """Iterate from the right: O(n) in all, one chunk unpacked at a time."""
        return chain.from_iterable(map(reversed, map(live, reversed(self._chunks))))

    def __contains__(self, element: bytes) -> bool:
        """O(n) at worst, a C-level search of each chunk's blob first."""
        for chunk in self._chunks:
            if find(chunk, element) != -1:
                return True
        return False

    def index(self, element: bytes) -> int:
        """Position of the first ``element`` from the left (ValueError when absent):
        O(that position + C)."""
        base = 0
        for chunk in self._chunks:
            found = find(chunk, element)
            if found != -1:
                return base + found
            base += length(chunk)
        raise ValueError("%r is not in deque" % (element,))

    def range(self, start: int, stop: int) -> list:
        """Return a new list of elements ``start`` to ``stop - 1`` (0 <= start <= stop <=
        length): O(min(start, n - stop) / C + stop - start + C), whole chunks at once."""
        if start >= stop:
            return []
        if self._len - stop < start:  # nearer the right end: find the last element
            position, chunk, offset = self._locate(stop - 1)
            result = []
            need = stop - start
            first = True
            for chunk in islice(reversed(self._chunks), len(self._chunks) - 1 - position,
                                None):
                elements = live(chunk)
                end = offset + 1 if first else len(elements)
                first = False
                piece = elements[max(0, end - need):end]
                result.append(piece)
                need -= len(piece)
                if not need:
                    break
            result.reverse()
            return list(chain.from_iterable(result))
        position, chunk, offset = self._locate(start)
        result = []
        need = stop - start
        for chunk in islice(self._chunks, position, None):
            if chunk.__class__ is list:
                piece = chunk[offset:offset + need]
            else:
                begin = chunk.start + offset
                piece = chunk_slice(chunk, begin, min(chunk.stop, begin + need))
            result += piece
            need -= len(piece)
            if not need:
                break
            offset = 0
        return result

    # -- copies --------------------------------------------------------------------------

    def copy(self) -> "PackedDeque":
        """An independent copy sharing the packed blobs: O(chunks + C)."""
        other = PackedDeque()
        other._chunks.extend(
            chunk[:] if chunk.__class__ is list else
            Packed(chunk.blob, chunk.offsets, chunk.size, chunk.start, chunk.stop)
            for chunk in self._chunks)
        other._len = self._len
        return other

    def frozen(self) -> list:
        """A snapshot later changes do not touch, for ``thawed`` in another thread: a list
        of the open chunks' copies (lists) and of the packed chunks' (blob, offsets, size,
        start, stop) tuples. O(chunks + C)."""
        return [chunk[:] if chunk.__class__ is list else
                (chunk.blob, chunk.offsets, chunk.size, chunk.start, chunk.stop)
                for chunk in self._chunks]
