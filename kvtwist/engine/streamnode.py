"""Stream IDs and nodes: the pieces of engine/streamtype.py's stream value.

An ID ``(ms, seq)`` is one int ``ms << 64 | seq``. A ``Node`` is one of Redis's stream
listpacks (t_stream.c): its master entry and entries; its ``base`` counts the listpack's
bytes exactly as streamAppendItem would lay them out (``int_size``, ``str_size``: the sizes
of listpack elements, listpack.c), which decides where Redis starts a new node.
"""

from __future__ import annotations

MASK = (1 << 64) - 1
MAX_ID = (1 << 128) - 1
NODE_MAX_ENTRIES = 100  # stream-node-max-entries, the default
NODE_MAX_BYTES = 4096  # stream-node-max-bytes, the default
# The current [stream-node-max-entries, stream-node-max-bytes] (t_stream.py makes them
# configuration parameters; 0 means no limit).
NODE_LIMITS = [NODE_MAX_ENTRIES, NODE_MAX_BYTES]
LISTPACK_MAX = 1 << 30  # STREAM_LISTPACK_MAX_SIZE
PER_ENTRY = 112
PER_ITEM = 34
FLAG_SAMEFIELDS = 2


def format_id(number: int) -> bytes:
    """Return an ID as Redis writes it: b"ms-seq"."""
    return b"%d-%d" % (number >> 64, number & MASK)


def parse_id(raw: bytes) -> int:
    """Return the ID of b"ms-seq" (both parts decimal, 64-bit); ValueError otherwise."""
    ms, dash, seq = raw.partition(b"-")
    if not dash or not ms.isdigit() or not seq.isdigit():
        raise ValueError("bad stream ID %r" % (raw,))
    ms, seq = int(ms), int(seq)
    if ms > MASK or seq > MASK:
        raise ValueError("stream ID out of range")
    return ms << 64 | seq


def _backlen_size(size: int) -> int:
    return 1 if size <= 127 else 2 if size < 16383 else 3 if size < 2097151 else (
        4 if size < 268435455 else 5)


def int_size(number: int) -> int:
    """Bytes of a listpack element holding integer ``number`` (int64), backlen included."""
    if 0 <= number <= 127:
        return 2
    if -4096 <= number <= 4095:
        return 3
    if -(1 << 15) <= number < 1 << 15:
        return 4
    if -(1 << 23) <= number < 1 << 23:
        return 5
    if -(1 << 31) <= number < 1 << 31:
        return 6
    return 10


def str_size(value: bytes) -> int:
    """Bytes of a listpack element holding ``value`` (lpAppend: integers as integers)."""
    size = len(value)
    if 0 < size <= 20 and (value[0] in b"-0123456789"):
        try:
            number = int(value)
        except ValueError:
            number = None
        if number is not None and b"%d" % number == value and -(1 << 63) <= number < 1 << 63:
            return int_size(number)
    body = size + (1 if size < 64 else 2 if size < 4096 else 5)
    return body + _backlen_size(body)


def signed64(number: int) -> int:
    """Return a uint64 difference as the int64 Redis stores it."""
    number &= MASK
    return number - (1 << 64) if number >> 63 else number


class Node:
    """One listpack of Redis's stream: the entries after its master entry.

    ``master`` is the master ID (the node's radix-tree key), ``mfields`` the master
    fields, ``ids`` and ``items`` the live entries (items: tuples field, value, ...),
    ``deleted`` the count of deleted entries still in the listpack, ``last`` the highest ID
    the listpack holds (deleted ones included), ``base`` its bytes but the count and
    deleted elements (see ``lp_bytes``).
    """

    __slots__ = ("master", "mfields", "ids", "items", "deleted", "last", "base")

    def __init__(self, master: int, mfields: tuple) -> None:
        self.master = master
        self.mfields = mfields
        self.ids = []
        self.items = []
        self.deleted = 0
        self.last = master
        # header (6) + num-fields + fields + the master terminator 0 (2) + end byte (1)
        self.base = 6 + int_size(len(mfields)) + sum(map(str_size, mfields)) + 2 + 1

    def lp_bytes(self) -> int:
        """Return the listpack's size as Redis's lpBytes: O(1)."""
        return self.base + int_size(len(self.ids)) + int_size(self.deleted)

    def entry_size(self, ident: int, items: tuple) -> int:
        """Return the bytes the entry ``ident`` with ``items`` adds to this listpack."""
        fields = items[0::2]
        size = 2 + int_size(signed64((ident >> 64) - (self.master >> 64)))
        size += int_size(signed64((ident & MASK) - (self.master & MASK)))
        numfields = len(fields)
        if fields == self.mfields:
            size += sum(map(str_size, items[1::2]))
            size += int_size(numfields + 3)
        else:
            size += int_size(numfields) + sum(map(str_size, items))
            size += int_size(2 * numfields + 4)
        return size

    def clone(self) -> "Node":
        twin = Node.__new__(Node)
        twin.master, twin.mfields = self.master, self.mfields
        twin.ids, twin.items = list(self.ids), list(self.items)
        twin.deleted, twin.last, twin.base = self.deleted, self.last, self.base
        return twin


def entry_cost(items: tuple) -> int:
    """Estimated memory of one entry."""
    return PER_ENTRY + PER_ITEM * len(items) + sum(map(len, items))
