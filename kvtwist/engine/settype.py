"""The set type: its value class, its logged operations and its RDB codec.

A set is a ``SetValue``: ``items``, a list of its members, and ``index``, a dict from each
member to its position in ``items``. Adding appends; removing moves the last member into
the hole (swap-remove). So membership, SADD, SREM and drawing a random member (SPOP,
SRANDMEMBER: ``items[randrange(n)]``) are all O(1), with no scan; members only ever move
to a lower position, which is what SSCAN's cursor relies on (``scan``). A Python ``set``
has no O(1) random draw (random.choice needs a sequence), which SPOP needs.

What OBJECT ENCODING answers follows Redis 7.0 (t_set.c): "intset" while every member is
an integer in string2ll's canonical form and there are at most ``set-max-intset-entries``
(512) of them, "hashtable" from the first member that breaks either rule on; like Redis,
a set never goes back to "intset" as it shrinks, but a set built anew (a STORE, a
RESTORE, a reload from disk, SPOP's rebuild of a set it takes most of) is judged afresh.
An "intset" set lists its members in ascending numeric order, as Redis's sorted intset.

Operations (type code 3, engine/types.py); their opcodes are part of the on-disk format
and never change:

    1 SADD  args: members not yet in the set (distinct), appended in order.
    2 SREM  args: members in the set (distinct), each swap-removed in order.
    3 SPOP  args: the members SPOP key count took (distinct, in the set), removed like
            SREM; when it left fewer than a fifth of what it took (Redis's rebuild of the
            remaining members into a new set), the encoding is judged afresh.

Each returns the number of members it changed; its inverse restores ``items`` exactly.

Memory (``nbytes``): each member costs its length plus ``PER_MEMBER`` bytes, measured
with tracemalloc under CPython 3.11 for a million 20-byte members: 33 bytes of bytes
object header, 78 of dict entry, list slot and position int.
"""

from __future__ import annotations

from functools import partial

from kvtwist.engine import rdb
from kvtwist.engine.types import SET, TypedValue, register_op, register_type

SADD, SREM, SPOP = 1, 2, 3

PER_MEMBER = 112
# set-max-intset-entries (t_set.py makes it a configuration parameter).
MAX_INTSET = [512]
# SPOP with a count rebuilds the set from what remains when remaining * 5 <= count.
SPOP_MOVE_STRATEGY_MUL = 5
_LLONG_MIN, _LLONG_MAX = -(2 ** 63), 2 ** 63 - 1
# export_commands writes at most this many members per SADD.
EXPORT_CHUNK = 100


def is_int(member: bytes) -> bool:
    """Whether ``member`` is an integer as Redis's string2ll takes it (canonical, 64-bit)."""
    if not member or len(member) > 20:
        return False
    try:
        number = int(member)
    except ValueError:
        return False
    return b"%d" % number == member and _LLONG_MIN <= number <= _LLONG_MAX


def intset_fits(members) -> bool:
    """Whether a set of ``members`` built anew is an intset: O(n)."""
    if len(members) > min(MAX_INTSET[0], 1 << 30):
        return False
    for member in members:
        if not is_int(member):
            return False
    return True


def _int_key(member: bytes) -> int:
    return int(member)


@register_type
class SetValue(TypedValue):
    """A set of bytes members (see the module docstring for the layout and its costs)."""

    __slots__ = ("items", "index", "intset")

    code = SET
    type_name = b"set"
    rdb_type = rdb.TYPE_SET

    def __init__(self, members=()) -> None:
        """Make a set of ``members`` (distinct), judging its encoding afresh: O(n)."""
        self.items = list(members)
        self.index = {member: position for position, member in enumerate(self.items)}
        self.nbytes = sum(map(len, self.items)) + PER_MEMBER * len(self.items)
        self.intset = intset_fits(self.items)

    def __len__(self) -> int:
        return len(self.items)

    def __contains__(self, member) -> bool:
        return member in self.index

    def encoding(self) -> bytes:
        return b"intset" if self.intset else b"hashtable"

    @property
    def members(self):
        """The members, in no particular order (a live view of ``index``'s keys): O(1).
        (ZUNION and the other sorted-set algebra read a set through it.)"""
        return self.index.keys()

    def in_order(self) -> list:
        """Return the members in Redis's iteration order (numeric for an intset): a new
        list, O(n) (O(n log n) for an intset, which has at most 512)."""
        if self.intset:
            return sorted(self.items, key=_int_key)
        return list(self.items)

    def copy(self) -> "SetValue":
        """Return an independent copy with the same encoding (COPY): O(n)."""
        twin = SetValue.__new__(SetValue)
        twin.items = list(self.items)
        twin.index = dict(self.index)
        twin.nbytes = self.nbytes
        twin.intset = self.intset
        return twin

    def frozen(self) -> list:
        return list(self.items)

    @classmethod
    def flatten(cls, frozen) -> list:
        return frozen

    @classmethod
    def from_flat(cls, items: list) -> "SetValue":
        value = cls(items)
        if not items or len(value.index) != len(items):
            raise ValueError("a set record holds no member or a member twice")
        return value

    def export_commands(self, key: bytes) -> list:
        items = self.items
        return [[b"SADD", key] + items[start:start + EXPORT_CHUNK]
                for start in range(0, len(items), EXPORT_CHUNK)]

    # -- the changes operations make ----------------------------------------------------

    def _add(self, member: bytes) -> None:
        items = self.items
        self.index[member] = len(items)
        items.append(member)
        self.nbytes += len(member) + PER_MEMBER
        if self.intset and (len(items) > min(MAX_INTSET[0], 1 << 30) or not is_int(member)):
            self.intset = False

    def _remove(self, member: bytes) -> int:
        """Swap-remove ``member``; return the position it had."""
        items, index = self.items, self.index
        position = index.pop(member)
        last = items.pop()
        if position != len(items):
            items[position] = last
            index[last] = position
        self.nbytes -= len(member) + PER_MEMBER
        return position

    def _put_back(self, member: bytes, position: int) -> None:
        """Undo ``_remove``: ``member`` goes back to ``position``, the member there to the end."""
        items, index = self.items, self.index
        if position == len(items):
            items.append(member)
        else:
            moved = items[position]
            index[moved] = len(items)
            items.append(moved)
            items[position] = member
        index[member] = position
        self.nbytes += len(member) + PER_MEMBER

    def scan(self, cursor: int, count: int):
        """Return ``(next_cursor, members)`` for one SSCAN step over ``items``: O(count).

        Walks ``items`` downwards: cursor ``c`` > 0 means the positions below ``c`` are
        still to visit, 0 starts at the top (a cursor past the top is clamped to it).
        Members only move down (swap-remove) and new ones go on top, so a member present
        for the whole scan is returned at least once (one moved down past the cursor may
        come twice, as Redis allows).
        """
        items = self.items
        start = len(items) if cursor == 0 or cursor > len(items) else cursor
        end = max(0, start - count)
        return end, items[end:start]


@register_op(SetValue, SADD)
def op_sadd(value: SetValue, args: tuple):
    """Add the members not yet in the set: O(len(args))."""
    index = value.index
    intset = value.intset
    added = 0
    for member in args:
        if member not in index:  # (a member given twice is added once)
            value._add(member)
            added += 1
    # (Inverses are partials, not closures: see listtype.py on the garbage collector.)
    return added, partial(_unadd, value, len(value.items) - added, intset)


def _unadd(value: SetValue, kept: int, intset) -> None:
    # The added members are the last ones, in order: pop them back off.
    items = value.items
    while len(items) > kept:
        member = items.pop()
        del value.index[member]
        value.nbytes -= len(member) + PER_MEMBER
    value.intset = intset


def _remove_all(value: SetValue, args: tuple) -> list:
    # Swap-remove each present member; return [(member, its old position)].
    index = value.index
    return [(member, value._remove(member)) for member in args if member in index]


def _put_all_back(value: SetValue, removed: list, intset) -> None:
    for member, position in reversed(removed):
        value._put_back(member, position)
    value.intset = intset


@register_op(SetValue, SREM)
def op_srem(value: SetValue, args: tuple):
    """Remove the members in the set: O(len(args))."""
    intset = value.intset
    removed = _remove_all(value, args)
    return len(removed), partial(_put_all_back, value, removed, intset)


@register_op(SetValue, SPOP)
def op_spop(value: SetValue, args: tuple):
    """Remove SPOP's members; when Redis would rebuild the set from the few remaining,
    judge the encoding afresh: O(len(args))."""
    size, intset = len(value.items), value.intset
    removed = _remove_all(value, args)
    count = len(removed)
    remaining = size - count
    if remaining and remaining * SPOP_MOVE_STRATEGY_MUL <= count:
        value.intset = intset_fits(value.items)
    return count, partial(_put_all_back, value, removed, intset)


# -- RDB codec (DUMP and RESTORE) ---------------------------------------------------------

_WIDTHS = ((2, -(1 << 15), 1 << 15), (4, -(1 << 31), 1 << 31), (8, _LLONG_MIN, 1 << 63))


def intset_blob(numbers: list) -> bytes:
    """Return Redis's intset of sorted distinct ``numbers``: the narrowest encoding (2, 4 or
    8 bytes, little-endian), the count, then the numbers: O(n)."""
    low, high = (numbers[0], numbers[-1]) if numbers else (0, 0)
    width = next(size for size, floor, ceiling in _WIDTHS if low >= floor and high < ceiling)
    body = b"".join([number.to_bytes(width, "little", signed=True) for number in numbers])
    return width.to_bytes(4, "little") + len(numbers).to_bytes(4, "little") + body


def dump_set(value: SetValue) -> bytes:
    """Return a set's RDB object as Redis 7.0 writes it: an intset as RDB_TYPE_SET_INTSET
    (the blob saved as a string, so LZF-compressed when that pays), any other as
    RDB_TYPE_SET (the count, then each member): O(total size)."""
    if value.intset:
        numbers = sorted(map(int, value.items))
        return bytes((rdb.TYPE_SET_INTSET,)) + rdb.encode_string(intset_blob(numbers))
    parts = [bytes((rdb.TYPE_SET,)), rdb.encode_length(len(value.items))]
    parts.extend(rdb.encode_string(member) for member in value.items)
    return b"".join(parts)


def load_set(reader) -> SetValue:
    """Read an RDB_TYPE_SET body as rdbLoadObject: the count, then the members; an empty or
    duplicated set is bad data. Encoding judged afresh: O(total size)."""
    count, encoded = reader.length()
    if encoded or count == 0:
        raise rdb.BadPayload(rdb.BAD_FORMAT)
    members = [reader.string() for _ in range(count)]
    value = SetValue(members)
    if len(value.index) != count:
        raise rdb.BadPayload(rdb.BAD_FORMAT)  # "Duplicate set members detected"
    return value


def load_intset(reader) -> SetValue:
    """Read an RDB_TYPE_SET_INTSET body: a string holding an intset, checked as
    intsetValidateIntegrity (encoding 2, 4 or 8, size, not empty) and refused when it holds
    a number twice; "hashtable" past set-max-intset-entries: O(n)."""
    blob = reader.string()
    if len(blob) < 8:
        raise rdb.BadPayload(rdb.BAD_FORMAT)
    width = int.from_bytes(blob[:4], "little")
    count = int.from_bytes(blob[4:8], "little")
    if width not in (2, 4, 8) or 8 + count * width != len(blob) or count == 0:
        raise rdb.BadPayload(rdb.BAD_FORMAT)
    members = [b"%d" % int.from_bytes(blob[at:at + width], "little", signed=True)
               for at in range(8, len(blob), width)]
    value = SetValue(members)
    if len(value.index) != count:
        raise rdb.BadPayload(rdb.BAD_FORMAT)
    return value


rdb.DUMPERS[SetValue] = dump_set
rdb.LOADERS[rdb.TYPE_SET] = load_set
rdb.LOADERS[rdb.TYPE_SET_INTSET] = load_intset
