"""The list type: a L{PackedDeque} of bytes, its logged operations and their inverses.

Storage (engine/quicklist.py, engine/packeddeque.py): like Redis's quicklist, the
elements live in chunks of at most 128 elements / 8 KB; the two end chunks are plain
Python lists (a push or pop at an end is a list append or pop), every other chunk is one
``bytes`` blob with the elements end to end (plus 4-byte offsets when their lengths
differ). Costs, as Redis's: a push or a pop at either end O(1) amortised; index ``i``
(LINDEX, LSET, LINSERT's position) O(min(i, n - i) / 128) to find its chunk, plus
O(chunk) to rewrite that chunk for a change; LRANGE O(start / 128 + elements returned),
a chunk of same-length elements unpacked by one C-level ``struct`` call.
Memory (CPython 3.11, 1,000,000 16-byte elements): about 17 bytes an element (a
``collections.deque`` of bytes objects took 72); 21 when element lengths differ. It is
counted as ``len(element) + PER_ELEMENT`` in ``nbytes``.

Operations (type code LIST = 2; ``args`` are bytes; never renumber):

    1 PUSH_LEFT   (element, ...)      push each in turn at the head   -> new length
    2 PUSH_RIGHT  (element, ...)      push each in turn at the tail   -> new length
    3 POP_LEFT    (count,)            pop count (<= length) from the head -> [elements]
    4 POP_RIGHT   (count,)            pop count (<= length) from the tail -> [elements]
    5 SET_AT      (index, element)    replace the element at index (0 <= index < length)
    6 INSERT_AT   (index, element)    insert before position index (0 <= index <= length)
    7 REMOVE      (count, element)    LREM: remove count matches from the head (count > 0),
                                      from the tail (count < 0) or all (0) -> removed count
    8 TRIM        (left, right)       drop ``left`` elements at the head, ``right`` at the tail
    9 ROTATE      (from, to)          pop at end ``from`` (b"L"/b"R") and push at end ``to``
                                      of the same list (LMOVE with source = destination)

Each returns its inverse: pops keep what they popped, TRIM what it dropped, REMOVE the
positions it removed from, SET_AT the old element, so an undo restores the exact list.
"""

from __future__ import annotations

from functools import partial
from itertools import islice

from kvtwist.engine import listpack, rdb
from kvtwist.engine.packeddeque import PackedDeque
from kvtwist.engine.quicklist import thawed
from kvtwist.engine.types import LIST, TypedValue, register_op, register_type

PUSH_LEFT, PUSH_RIGHT, POP_LEFT, POP_RIGHT, SET_AT, INSERT_AT, REMOVE, TRIM, ROTATE = range(1, 10)

# Estimated bytes per element beyond its own bytes (CPython, tracemalloc, 1,000,000
# elements: ~1 for same-length elements, ~5 for mixed lengths, their 4-byte offsets and
# their chunk's headers; the open end chunks' few elements cost ~60 each).
PER_ELEMENT = 5
# Elements per RPUSH in an export.
EXPORT_CHUNK = 100


def _size(elements) -> int:
    return sum(map(len, elements)) + PER_ELEMENT * len(elements)


@register_type
class ListValue(TypedValue):
    """A Redis list: ``items`` is a PackedDeque of bytes; ``nbytes`` its estimated memory."""

    __slots__ = ("items",)

    code = LIST
    type_name = b"list"
    rdb_type = 18  # RDB_TYPE_LIST_QUICKLIST_2

    def __init__(self, items=()) -> None:
        self.items = PackedDeque(items)
        self.nbytes = _size(self.items)

    def __len__(self) -> int:
        return len(self.items)

    def __repr__(self) -> str:
        return "ListValue(%r)" % (list(self.items),)

    def encoding(self) -> bytes:
        """Redis 7.0 keeps every list as a quicklist (listpack lists came in 7.2)."""
        return b"quicklist"

    def copy(self) -> "ListValue":
        """Return an independent copy (sharing the immutable packed chunks): O(n / 128)."""
        other = ListValue.__new__(ListValue)
        other.items = self.items.copy()
        other.nbytes = self.nbytes
        return other

    def frozen(self):
        """Return a snapshot of the chunks (packed ones shared, they never change): O(n / 128)."""
        return self.items.frozen()

    @classmethod
    def flatten(cls, frozen) -> list:
        """Return a snapshot's elements: O(n)."""
        return thawed(frozen)

    @classmethod
    def from_flat(cls, items: list) -> "ListValue":
        if not items or not all(item.__class__ is bytes for item in items):
            raise ValueError("a list record needs one or more byte-string elements")
        return cls(items)

    def export_commands(self, key: bytes) -> list:
        items = list(self.items)
        return [[b"RPUSH", key] + items[start:start + EXPORT_CHUNK]
                for start in range(0, len(items), EXPORT_CHUNK)]

    # -- reads (no operation needed) ---------------------------------------------------

    def range(self, start: int, stop: int) -> list:
        """Return elements ``start``..``stop`` inclusive (already clamped, 0 <= start <= stop
        < length): O(min(start, length - stop) / 128 + stop - start + 128), from the nearer
        end."""
        return self.items.range(start, stop + 1)


# The inverses of the operations at the ends are partials of these functions, not
# closures: one object for the garbage collector to track where a closure makes one per
# captured variable too. An inverse lives in the journal's undo queue until its write is
# durable, long enough to be promoted, and the full collections that promotions bring
# walk every list (a LPUSH cost 4.8 us in-process with closures, 3.2 us with partials).


def _pop(value: ListValue, count: int, left: bool):
    items = value.items
    if count == 1:  # LPOP/RPOP/BLPOP: the common case
        popped = [items.popleft() if left else items.pop()]
        value.nbytes -= len(popped[0]) + PER_ELEMENT
    else:
        popped = items.popleft_many(count) if left else items.pop_many(count)
        value.nbytes -= _size(popped)
    return popped, partial(_unpop, value, popped, left)


def _unpop(value: ListValue, popped: list, left: bool) -> None:
    if left:
        value.items.extendleft(reversed(popped))
    else:
        value.items.extend(reversed(popped))
    value.nbytes += _size(popped)


def _unpush(value: ListValue, pushed: tuple, left: bool) -> None:
    items = value.items
    if left:
        items.popleft_many(len(pushed))
    else:
        items.pop_many(len(pushed))
    value.nbytes -= _size(pushed)


@register_op(ListValue, PUSH_LEFT)
def _push_left(value: ListValue, args: tuple):
    items = value.items
    items.extendleft(args)
    value.nbytes += _size(args)
    return len(items), partial(_unpush, value, args, True)


@register_op(ListValue, PUSH_RIGHT)
def _push_right(value: ListValue, args: tuple):
    items = value.items
    items.extend(args)
    value.nbytes += _size(args)
    return len(items), partial(_unpush, value, args, False)


@register_op(ListValue, POP_LEFT)
def _pop_left(value: ListValue, args: tuple):
    return _pop(value, int(args[0]), True)


@register_op(ListValue, POP_RIGHT)
def _pop_right(value: ListValue, args: tuple):
    return _pop(value, int(args[0]), False)


@register_op(ListValue, SET_AT)
def _set_at(value: ListValue, args: tuple):
    """O(min(index, length - index) / 128 + 128), the element's chunk rewritten."""
    index, element = int(args[0]), args[1]
    items = value.items
    old = items.swap(index, element)
    value.nbytes += len(element) - len(old)

    def inverse() -> None:
        items[index] = old
        value.nbytes += len(old) - len(element)
    return old, inverse


@register_op(ListValue, INSERT_AT)
def _insert_at(value: ListValue, args: tuple):
    """O(min(index, length - index) / 128 + 128), the element's chunk rewritten."""
    index, element = int(args[0]), args[1]
    items = value.items
    items.insert(index, element)
    value.nbytes += len(element) + PER_ELEMENT

    def inverse() -> None:
        del items[index]
        value.nbytes -= len(element) + PER_ELEMENT
    return len(items), inverse


@register_op(ListValue, REMOVE)
def _remove(value: ListValue, args: tuple):
    """O(n): one pass, then the list is rebuilt (packed again) from the kept elements."""
    count, element = int(args[0]), args[1]
    items = value.items
    size = len(items)
    limit = abs(count) or size
    positions = []  # where the removed elements were, ascending
    if count >= 0:
        for index, item in enumerate(items):
            if item == element:
                positions.append(index)
                if len(positions) == limit:
                    break
    else:
        for index, item in enumerate(reversed(items)):
            if item == element:
                positions.append(size - 1 - index)
                if len(positions) == limit:
                    break
        positions.reverse()
    if not positions:
        return 0, _nothing
    removed = set(positions)
    kept = [item for index, item in enumerate(items) if index not in removed]
    items.clear()
    items.extend(kept)
    value.nbytes -= (len(element) + PER_ELEMENT) * len(positions)

    def inverse() -> None:
        # Merge the removed elements back at their old positions: O(n).
        merged = []
        source = iter(kept)
        at = 0
        for position in positions:
            merged.extend(islice(source, position - at))
            merged.append(element)
            at = position + 1
        merged.extend(source)
        items.clear()
        items.extend(merged)
        value.nbytes += (len(element) + PER_ELEMENT) * len(positions)
    return len(positions), inverse


@register_op(ListValue, TRIM)
def _trim(value: ListValue, args: tuple):
    """O(left + right): the dropped elements are kept for the inverse."""
    left, right = int(args[0]), int(args[1])
    head, _ = _pop(value, left, True)
    tail, _ = _pop(value, right, False)
    items = value.items

    def inverse() -> None:
        items.extendleft(reversed(head))
        items.extend(reversed(tail))
        value.nbytes += _size(head) + _size(tail)
    return None, inverse


@register_op(ListValue, ROTATE)
def _rotate(value: ListValue, args: tuple):
    from_left, to_left = args[0] == b"L", args[1] == b"L"
    items = value.items
    element = items.popleft() if from_left else items.pop()
    if to_left:
        items.appendleft(element)
    else:
        items.append(element)

    def inverse() -> None:
        moved = items.popleft() if to_left else items.pop()
        if from_left:
            items.appendleft(moved)
        else:
            items.append(moved)
    return element, inverse


def _nothing() -> None:
    pass


# -- DUMP / RESTORE: Redis 7.0's RDB encodings of a list ------------------------------------

# list-max-listpack-size: a quicklist node's listpack holds at most this many elements
# (positive) or 4 KB << (-fill - 1) bytes (-1..-5, lower counts as -5); set by t_list.py.
NODE_FILL = -2
# Redis's SIZE_SAFETY_LIMIT: a positive fill still stops a node at 8 KB.
SAFETY_BYTES = 8192
_PLAIN, _PACKED = 1, 2  # quicklist node containers


def _nodes(items) -> list:
    # Split the elements into listpacks of at most NODE_BYTES, as Redis's quicklist does.
    fill = NODE_FILL
    limit = SAFETY_BYTES if fill >= 0 else 4096 << (min(-fill, 5) - 1)
    count = fill if fill > 0 else 1 << 62
    nodes, node, size = [], [], 0
    for item in items:
        cost = len(item) + 11  # an entry's worst-case header and back length
        if node and (size + cost > limit or len(node) >= count):
            nodes.append(node)
            node, size = [], 0
        node.append(item)
        size += cost
    if node:
        nodes.append(node)
    return nodes


def dump_list(value: ListValue) -> bytes:
    """Return a list's RDB object: RDB_TYPE_LIST_QUICKLIST_2, listpack nodes. O(n)."""
    nodes = _nodes(value.items)
    parts = [bytes((rdb.TYPE_LIST_QUICKLIST_2,)), rdb.encode_length(len(nodes))]
    for node in nodes:
        parts.append(rdb.encode_length(_PACKED))
        parts.append(rdb.encode_string(listpack.encode(node)))
    return b"".join(parts)


def _checked(items: list) -> ListValue:
    if not items:
        raise rdb.BadPayload(rdb.BAD_FORMAT)  # Redis refuses an empty list
    return ListValue(items)


def _load_quicklist_2(reader) -> ListValue:
    items = []
    for _ in range(reader.length()[0]):
        container = reader.length()[0]
        blob = reader.string()
        if container == _PLAIN:
            items.append(blob)
        elif container == _PACKED:
            try:
                node = listpack.decode(blob)
            except ValueError:
                raise rdb.BadPayload(rdb.BAD_FORMAT)
            if not node:
                raise rdb.BadPayload(rdb.BAD_FORMAT)
            items.extend(node)
        else:
            raise rdb.BadPayload(rdb.BAD_FORMAT)
    return _checked(items)


def _load_ziplists(reader, nodes: int) -> ListValue:
    items = []
    for _ in range(nodes):
        try:
            items.extend(listpack.decode_ziplist(reader.string()))
        except ValueError:
            raise rdb.BadPayload(rdb.BAD_FORMAT)
    return _checked(items)


def _load_plain(reader) -> ListValue:
    return _checked([reader.string() for _ in range(reader.length()[0])])


rdb.DUMPERS[ListValue] = dump_list
rdb.LOADERS[rdb.TYPE_LIST_QUICKLIST_2] = _load_quicklist_2
rdb.LOADERS[rdb.TYPE_LIST_QUICKLIST] = lambda reader: _load_ziplists(reader, reader.length()[0])
rdb.LOADERS[rdb.TYPE_LIST_ZIPLIST] = lambda reader: _load_ziplists(reader, 1)
rdb.LOADERS[rdb.TYPE_LIST] = _load_plain
