"""The RDB codec of streams (DUMP and RESTORE), as Redis 7.0's rdb.c and t_stream.c.

DUMP writes RDB_TYPE_STREAM_LISTPACKS_2 (19): the node count; for each node its master ID
(16 bytes, ms and seq big-endian: the radix-tree key) and its listpack; then the length,
the last ID (ms, seq), the recorded first ID, the greatest deleted ID, entries-added and
the consumer-group count (always 0). Each listpack is Redis's:

    master entry: count | deleted | num-fields | field ... | 0
    each entry:   flags | ms-diff | seq-diff | [num-fields | field value ...] or
                  [value ...] (flags & SAMEFIELDS: the master's fields) | lp-count

kvstore writes only the live entries (deleted = 0). RESTORE reads types 15 and 19, skips
the entries flagged deleted (counting them in the node, as Redis does), and refuses a
stream with consumer groups (kvstore has none) or a malformed one: Redis's "Bad data
format". All O(size of the payload).
"""

from __future__ import annotations

from kvtwist.engine import listpack, rdb
from kvtwist.engine.rdb import BadPayload, encode_length, encode_string
from kvtwist.engine.streamtype import (
    FLAG_SAMEFIELDS, MASK, Node, StreamValue, entry_cost, int_size, signed64)

TYPE_STREAM_LISTPACKS = 15
TYPE_STREAM_LISTPACKS_2 = 19
FLAG_DELETED = 1
GROUPS_REFUSED = "ERR Bad data format (stream consumer groups are not supported)"


def _bad() -> BadPayload:
    return BadPayload(rdb.BAD_FORMAT)


def node_listpack(node: Node) -> bytes:
    """Return a node's listpack as Redis writes it (live entries only): O(its size)."""
    master_ms, master_seq = node.master >> 64, node.master & MASK
    mfields = node.mfields
    elements = [b"%d" % len(node.ids), b"0", b"%d" % len(mfields)]
    elements.extend(mfields)
    elements.append(b"0")
    append, extend = elements.append, elements.extend
    for ident, items in zip(node.ids, node.items):
        fields = items[0::2]
        same = fields == mfields
        append(b"%d" % (FLAG_SAMEFIELDS if same else 0))
        append(b"%d" % signed64((ident >> 64) - master_ms))
        append(b"%d" % signed64((ident & MASK) - master_seq))
        if same:
            extend(items[1::2])
            append(b"%d" % (len(fields) + 3))
        else:
            append(b"%d" % len(fields))
            extend(items)
            append(b"%d" % (2 * len(fields) + 4))
    return listpack.encode(elements)


def dump_stream(value: StreamValue) -> bytes:
    """Return the RDB object of a stream: type STREAM_LISTPACKS_2 and its body. O(n)."""
    parts = [bytes((TYPE_STREAM_LISTPACKS_2,)), encode_length(len(value.nodes))]
    for node in value.nodes:
        parts.append(encode_string(node.master.to_bytes(16, "big")))
        parts.append(encode_string(node_listpack(node)))
    for number in (value.length, value.last_id >> 64, value.last_id & MASK,
                   value.first_id >> 64, value.first_id & MASK, value.max_deleted >> 64,
                   value.max_deleted & MASK, value.entries_added, 0):
        parts.append(encode_length(number))
    return b"".join(parts)


def _integer(element: bytes) -> int:
    try:
        return int(element)
    except ValueError:
        raise _bad() from None


def load_node(key: bytes, blob: bytes) -> Node:
    """Return the Node of a radix-tree key and its listpack; BadPayload when malformed."""
    if len(key) != 16:
        raise _bad()
    try:
        elements = listpack.decode(blob)
    except ValueError:
        raise _bad() from None
    if not elements:
        raise _bad()
    master = int.from_bytes(key, "big")
    master_ms, master_seq = master >> 64, master & MASK
    try:
        count, deleted, nfields = map(_integer, elements[:3])
        mfields = tuple(elements[3:3 + nfields])
        if len(mfields) != nfields or nfields < 0 or elements[3 + nfields] != b"0":
            raise _bad()
        node = Node(master, mfields)
        at = 4 + nfields
        seen = 0
        previous = -1
        while at < len(elements):
            flags = _integer(elements[at])
            ms = (master_ms + _integer(elements[at + 1])) & MASK
            seq = (master_seq + _integer(elements[at + 2])) & MASK
            at += 3
            if flags & FLAG_SAMEFIELDS:
                values = elements[at:at + nfields]
                items = tuple(item for pair in zip(mfields, values) for item in pair)
                at += nfields
                size = nfields
            else:
                size = _integer(elements[at])
                items = tuple(elements[at + 1:at + 1 + 2 * size])
                at += 1 + 2 * size
            if len(items) != 2 * size or not size or at >= len(elements):
                raise _bad()
            at += 1  # lp-count
            ident = ms << 64 | seq
            if ident <= previous:
                raise _bad()
            previous = ident
            node.last = ident
            seen += 1
            if flags & FLAG_DELETED:
                continue
            node.ids.append(ident)
            node.items.append(items)
    except IndexError:
        raise _bad() from None
    if count != len(node.ids) or count + deleted != seen or not count:
        raise _bad()
    node.deleted = deleted
    node.base = len(blob) - int_size(count) - int_size(deleted)
    return node


def _load(reader, version_2: bool) -> StreamValue:
    value = StreamValue()
    nodes, encoded = reader.length()
    if encoded:
        raise _bad()
    previous = -1
    for _ in range(nodes):
        node = load_node(reader.string(), reader.string())
        if node.master <= previous or (value.nodes and node.ids[0] <= value.nodes[-1].last):
            raise _bad()
        previous = node.master
        value.nodes.append(node)
        value.starts.append(node.master)
        value.length += len(node.ids)
        value.nbytes += sum(map(entry_cost, node.items))

    def number() -> int:
        got, special = reader.length()
        if special:
            raise _bad()
        return got
    length = number()
    value.last_id = number() << 64 | number()
    if version_2:
        value.first_id = number() << 64 | number()
        value.max_deleted = number() << 64 | number()
        value.entries_added = number()
    else:
        value.first_id = value.first_live()
        value.entries_added = length
    if number():
        raise BadPayload(GROUPS_REFUSED)
    if length != value.length or value.top_id() > value.last_id:
        raise _bad()
    return value


rdb.DUMPERS[StreamValue] = dump_stream
rdb.LOADERS[TYPE_STREAM_LISTPACKS] = lambda reader: _load(reader, False)
rdb.LOADERS[TYPE_STREAM_LISTPACKS_2] = lambda reader: _load(reader, True)
