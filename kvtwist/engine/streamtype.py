"""The stream type: its value class and its logged operations (RDB codec: streamrdb.py).

A stream is a ``StreamValue``: entries ordered by ID, an ID being ``(ms, seq)`` held as one
int ``ms << 64 | seq`` (one C-level comparison). The entries live in *nodes*, as Redis's
listpacks in its radix tree (t_stream.c): ``nodes`` is a list of ``Node`` in ID order and
``starts`` the parallel list of their master IDs, so finding an ID is a bisect over the
nodes and another inside one. A node holds at most stream-node-max-entries (100) entries,
live or deleted, and closes when its listpack would reach stream-node-max-bytes (4096): the
node layout is Redis's, byte sizes included (``Node.base`` counts the listpack bytes as
streamAppendItem would), so that approximate trimming (``MAXLEN ~``, which only removes
whole nodes) trims exactly what redis-server trims, and DUMP writes Redis's listpacks.
A deleted entry (XDEL, trimming inside a node) leaves the node's lists but is counted in
``Node.deleted``, as Redis's tombstones count for the node's size.

Costs: appending O(1); a range read by ID O(log n + k) for k entries returned; XDEL
O(log n + 100) an ID (plus O(n / 100) to unlink a node it empties); trimming k entries
O(k / 100 + n / 100) (whole nodes are cut off the head of ``nodes``, a C-level memmove).

The stream keeps Redis's metadata: ``last_id`` (the top ID ever generated), ``first_id``
(the recorded first entry ID), ``max_deleted`` (the highest ID XDEL removed),
``entries_added`` (every entry ever added) and ``length`` (live entries). A stream is not
removed when its last entry goes (Redis keeps an empty stream): its truth is always true,
so the keyspace, which removes a typed value whose truth is false, keeps it.

Operations (type code 5, engine/types.py); their opcodes are part of the on-disk format
and never change:

    1 XADD   args: id ("ms-seq", greater than last_id), then field, value, ... (at least
             one pair): the entry is appended (in the tail node or a new one), last_id
             becomes id, entries_added grows by one.
    2 TRIM   args: count: the first ``count`` live entries are removed, whole nodes while
             they fit, then inside the next node (its entries become deleted ones): what
             XTRIM/XADD's MAXLEN or MINID trimmed, exact or approximate.
    3 XDEL   args: ids ("ms-seq", distinct, each a live entry) removed; max_deleted grows.
    4 XSETID args: last_id, entries_added, max_deleted ("ms-seq", decimal, "ms-seq").

Each returns the number of entries it changed (XADD: the ID); its inverse restores the
value exactly (nodes, counters and metadata). The contents a replay gives never depend on
the configuration; the node layout does (stream-node-max-entries/-bytes when replayed).

Memory (``nbytes``): each entry costs its fields' and values' bytes plus ``PER_ENTRY`` and
``PER_ITEM`` per field and value, measured with tracemalloc under CPython 3.11 for 200,000
entries of one field: 112 bytes of items tuple, ID int and list slots, and 34 of bytes
object header per field and value (redis-server: about 32 bytes an entry in total).
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right

from kvtwist.engine.streamnode import (  # noqa: F401  (the names other modules import)
    FLAG_SAMEFIELDS, LISTPACK_MAX, MASK, MAX_ID, NODE_LIMITS, NODE_MAX_BYTES, NODE_MAX_ENTRIES,
    PER_ENTRY, Node, entry_cost, format_id, int_size, parse_id, signed64, str_size)
from kvtwist.engine.types import TypedValue, register_op, register_type

STREAM = 5
XADD, TRIM, XDEL, XSETID = 1, 2, 3, 4


@register_type
class StreamValue(TypedValue):
    """A stream (see the module docstring for the layout and its costs)."""

    __slots__ = ("nodes", "starts", "length", "last_id", "first_id", "max_deleted",
                 "entries_added")

    code = STREAM
    type_name = b"stream"

    def __init__(self) -> None:
        self.nodes = []
        self.starts = []
        self.length = 0
        self.last_id = 0
        self.first_id = 0
        self.max_deleted = 0
        self.entries_added = 0
        self.nbytes = PER_ENTRY

    def __len__(self) -> int:
        return self.length

    def __bool__(self) -> bool:
        return True  # an empty stream stays (see the module docstring)

    def encoding(self) -> bytes:
        return b"stream"

    # -- reading ---------------------------------------------------------------------

    def range(self, low: int, high: int, count: int = 0, reverse: bool = False) -> list:
        """Return the entries ``(id, items)`` with low <= id <= high, at most ``count`` (0:
        all), in ID order or reversed: O(log n + k)."""
        out = []
        if low > high or not self.nodes:
            return out
        append = out.append
        nodes = self.nodes
        if not reverse:
            index = max(0, bisect_right(self.starts, low) - 1)
            at = bisect_left(nodes[index].ids, low)
            while index < len(nodes):
                node = nodes[index]
                ids, items = node.ids, node.items
                for position in range(at, len(ids)):
                    ident = ids[position]
                    if ident > high:
                        return out
                    append((ident, items[position]))
                    if len(out) == count:
                        return out
                index += 1
                at = 0
            return out
        index = bisect_right(self.starts, high) - 1
        while index >= 0:
            node = nodes[index]
            ids, items = node.ids, node.items
            at = bisect_right(ids, high)
            for position in range(at - 1, -1, -1):
                ident = ids[position]
                if ident < low:
                    return out
                append((ident, items[position]))
                if len(out) == count:
                    return out
            index -= 1
        return out

    def first_live(self) -> int:
        """The first live entry's ID (0 when empty)."""
        return self.nodes[0].ids[0] if self.nodes else 0

    def top_id(self) -> int:
        """The last live entry's ID (0 when empty): streamLastValidID."""
        return self.nodes[-1].ids[-1] if self.nodes else 0

    def locate(self, ident: int):
        """Return ``(node index, position)`` of a live entry, or None: O(log n)."""
        index = bisect_right(self.starts, ident) - 1
        if index < 0:
            return None
        ids = self.nodes[index].ids
        position = bisect_left(ids, ident)
        if position < len(ids) and ids[position] == ident:
            return index, position
        return None

    def trim_count(self, maxlen=None, minid=None, approx=False, limit=0) -> int:
        """Return how many entries streamTrim would remove (MAXLEN or MINID, exact or
        approximate, LIMIT): O(nodes removed + log n)."""
        length = self.length
        deleted = 0
        for node in self.nodes:
            if maxlen is not None and length <= maxlen:
                break
            entries = len(node.ids)
            if limit and deleted + entries > limit:
                break
            if maxlen is not None:
                remove = length - entries >= maxlen
            else:
                remove = node.last < minid
            if remove:
                length -= entries
                deleted += entries
                continue
            if approx:
                break
            if maxlen is not None:
                deleted += length - maxlen
            else:
                deleted += bisect_left(node.ids, minid)
            break
        return deleted

    # -- the contract ----------------------------------------------------------------

    def copy(self) -> "StreamValue":
        """Return an independent copy (COPY): O(n)."""
        twin = StreamValue.__new__(StreamValue)
        twin.nodes = [node.clone() for node in self.nodes]
        twin.starts = list(self.starts)
        for name in ("length", "last_id", "first_id", "max_deleted", "entries_added",
                     "nbytes"):
            setattr(twin, name, getattr(self, name))
        return twin

    def frozen(self):
        return ((self.last_id, self.first_id, self.max_deleted, self.entries_added),
                [(node.master, node.mfields, node.deleted, node.last, node.base,
                  list(node.ids), list(node.items)) for node in self.nodes])

    @classmethod
    def flatten(cls, frozen) -> list:
        """Flat items: last_id, first_id, max_deleted, entries_added, node count; each node:
        master id, deleted, last id, base bytes, master field count, the fields, entry
        count; each entry: id, item count, items."""
        (last_id, first_id, max_deleted, entries_added), nodes = frozen
        out = [format_id(last_id), format_id(first_id), format_id(max_deleted),
               b"%d" % entries_added, b"%d" % len(nodes)]
        extend, append = out.extend, out.append
        for master, mfields, deleted, last, base, ids, items in nodes:
            extend((format_id(master), b"%d" % deleted, format_id(last), b"%d" % base,
                    b"%d" % len(mfields)))
            extend(mfields)
            append(b"%d" % len(ids))
            for ident, entry in zip(ids, items):
                append(format_id(ident))
                append(b"%d" % len(entry))
                extend(entry)
        return out

    @classmethod
    def from_flat(cls, items: list) -> "StreamValue":
        value = cls()
        try:
            value.last_id, value.first_id, value.max_deleted = map(parse_id, items[:3])
            value.entries_added = _count(items[3])
            at = 5
            previous = -1
            for _ in range(_count(items[4])):
                node = Node(parse_id(items[at]), ())
                node.deleted, node.last = _count(items[at + 1]), parse_id(items[at + 2])
                node.base = _count(items[at + 3])
                nfields = _count(items[at + 4])
                node.mfields = tuple(items[at + 5:at + 5 + nfields])
                entries = _count(items[at + 5 + nfields])
                at += 6 + nfields
                for _ in range(entries):
                    ident, size = parse_id(items[at]), _count(items[at + 1])
                    entry = tuple(items[at + 2:at + 2 + size])
                    if ident <= previous or not size or size % 2 or len(entry) != size:
                        raise ValueError("bad stream entry")
                    previous = ident
                    node.ids.append(ident)
                    node.items.append(entry)
                    value.nbytes += entry_cost(entry)
                    at += 2 + size
                if not node.ids or len(node.mfields) != nfields:
                    raise ValueError("bad stream node")
                value.nodes.append(node)
                value.starts.append(node.master)
                value.length += len(node.ids)
        except IndexError:
            raise ValueError("short stream record") from None
        if at != len(items) or (value.nodes and value.top_id() > value.last_id):
            raise ValueError("bad stream record")
        return value

    def export_commands(self, key: bytes) -> list:
        """XADD with explicit IDs (one entry a command), then XSETID for the metadata."""
        commands = []
        for node in self.nodes:
            for ident, items in zip(node.ids, node.items):
                commands.append([b"XADD", key, format_id(ident)] + list(items))
        if not commands:
            commands.append([b"XADD", key, b"MAXLEN", b"0", b"0-1", b"x", b""])
        commands.append([b"XSETID", key, format_id(self.last_id), b"ENTRIESADDED",
                         b"%d" % self.entries_added, b"MAXDELETEDID",
                         format_id(self.max_deleted)])
        return commands

    # -- changes (through the operations below) --------------------------------------

    def append(self, ident: int, items: tuple) -> bool:
        """Append an entry as streamAppendItem; return whether it opened a node: O(1)."""
        nodes = self.nodes
        node = nodes[-1] if nodes else None
        if node is not None:
            max_entries, max_bytes = NODE_LIMITS
            if max_bytes == 0 or max_bytes > LISTPACK_MAX:
                max_bytes = LISTPACK_MAX
            if node.lp_bytes() + sum(map(len, items)) >= max_bytes or (
                    max_entries and len(node.ids) + node.deleted >= max_entries):
                node = None
        created = node is None
        if created:
            node = Node(ident, items[0::2])
            nodes.append(node)
            self.starts.append(ident)
        node.base += node.entry_size(ident, items)
        node.ids.append(ident)
        node.items.append(items)
        node.last = ident
        self.length += 1
        self.entries_added += 1
        self.last_id = ident
        if self.length == 1:
            self.first_id = ident
        self.nbytes += entry_cost(items)
        return created

    def trim_head(self, count: int):
        """Remove the first ``count`` live entries; return what the inverse needs."""
        nodes = self.nodes
        whole = 0
        left = count
        while whole < len(nodes) and len(nodes[whole].ids) <= left:
            left -= len(nodes[whole].ids)
            whole += 1
        removed_nodes = nodes[:whole]
        del nodes[:whole]
        del self.starts[:whole]
        partial = None
        if left:
            node = nodes[0]
            partial = (node.ids[:left], node.items[:left])
            del node.ids[:left]
            del node.items[:left]
            node.deleted += left
        freed = sum(entry_cost(items) for node in removed_nodes for items in node.items)
        if partial is not None:
            freed += sum(map(entry_cost, partial[1]))
        self.nbytes -= freed
        self.length -= count
        first = self.first_id
        self.first_id = self.first_live()
        return removed_nodes, partial, first, freed


def _count(raw: bytes) -> int:
    if not raw.isdigit():
        raise ValueError("bad count in a stream record")
    return int(raw)


@register_op(StreamValue, XADD)
def op_xadd(value: StreamValue, args: tuple):
    """Append an entry with the given ID: O(1)."""
    ident, items = parse_id(args[0]), tuple(args[1:])
    saved = (value.last_id, value.first_id, value.entries_added)
    nodes = value.nodes
    base = nodes[-1].base if nodes else 0
    last = nodes[-1].last if nodes else 0
    created = value.append(ident, items)

    def inverse() -> None:
        if created:
            nodes.pop()
            value.starts.pop()
        else:
            node = nodes[-1]
            node.ids.pop()
            node.items.pop()
            node.base, node.last = base, last
        value.length -= 1
        value.nbytes -= entry_cost(items)
        value.last_id, value.first_id, value.entries_added = saved
    return args[0], inverse


@register_op(StreamValue, TRIM)
def op_trim(value: StreamValue, args: tuple):
    """Remove the first ``count`` live entries: O(count / 100 + n / 100)."""
    count = int(args[0])
    removed_nodes, partial, first, freed = value.trim_head(count)

    def inverse() -> None:
        if partial is not None:
            node = value.nodes[0]
            node.ids[0:0] = partial[0]
            node.items[0:0] = partial[1]
            node.deleted -= len(partial[0])
        value.nodes[0:0] = removed_nodes
        value.starts[0:0] = [node.master for node in removed_nodes]
        value.length += count
        value.nbytes += freed
        value.first_id = first
    return count, inverse


@register_op(StreamValue, XDEL)
def op_xdel(value: StreamValue, args: tuple):
    """Remove the given live entries (streamDeleteItem): O(log n + 100) each, plus
    O(n / 100) for each node it empties."""
    saved = (value.first_id, value.max_deleted)
    undo = []
    first_deleted = False
    for raw in args:
        ident = parse_id(raw)
        index, position = value.locate(ident)
        node = value.nodes[index]
        items = node.items[position]
        emptied = len(node.ids) == 1
        if emptied:
            del value.nodes[index]
            del value.starts[index]
        else:
            del node.ids[position]
            del node.items[position]
            node.deleted += 1
        undo.append((index, position, node, ident, items, emptied))
        value.length -= 1
        value.nbytes -= entry_cost(items)
        if ident == value.first_id:
            first_deleted = True
        if ident > value.max_deleted:
            value.max_deleted = ident
    if value.length == 0:
        value.first_id = 0
    elif first_deleted:
        value.first_id = value.first_live()

    def inverse() -> None:
        for index, position, node, ident, items, emptied in reversed(undo):
            if emptied:
                value.nodes.insert(index, node)
                value.starts.insert(index, node.master)
            else:
                node.ids.insert(position, ident)
                node.items.insert(position, items)
                node.deleted -= 1
            value.length += 1
            value.nbytes += entry_cost(items)
        value.first_id, value.max_deleted = saved
    return len(args), inverse


@register_op(StreamValue, XSETID)
def op_xsetid(value: StreamValue, args: tuple):
    """Set last_id, entries_added and max_deleted: O(1)."""
    saved = (value.last_id, value.entries_added, value.max_deleted)
    value.last_id = parse_id(args[0])
    value.entries_added = int(args[1])
    value.max_deleted = parse_id(args[2])

    def inverse() -> None:
        value.last_id, value.entries_added, value.max_deleted = saved
    return 1, inverse
