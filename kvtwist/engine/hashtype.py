"""Hashes: the value class, its logged operations and its DUMP/RESTORE codec.

A hash is a ``dict`` of field -> value (bytes). A dict keeps insertion order, which is the
order of Redis's listpack encoding, so a small hash lists its fields (HGETALL, HKEYS,
HSCAN, DUMP) in the order Redis 7.0 does, byte for byte; a big one in insertion order
(Redis: hash-table order, which clients must not rely on). Every single-field operation
is O(1) (a dict probe); whole-hash reads are O(n).

``order`` (a ``FieldOrder``, made on first need) is the scan order of a big hash: HSCAN's
stable cursor and HRANDFIELD's O(1) random picks. It is the keyspace's own structure
(engine/scanorder.py) over the fields: one list slot per field (8 bytes), a removed field
leaves a dead entry until an incremental compaction pass (amortised O(1) per removal)
moves the live ones down. Once made it is kept up to date by every change, O(1) each.

Operations (opcodes are part of the on-disk format: never renumber):

    1 HSET   args: field, value, field, value...  result: how many fields are new.
             Converts to "hashtable" (OBJECT ENCODING) past hash-max-listpack-entries
             fields or with a field or value longer than hash-max-listpack-value, as
             HSET's hashTypeTryConversion. O(pairs).
    2 HDEL   args: field...  result: how many existed. O(fields), plus O(n) for a small
             hash (up to hash-max-listpack-entries fields) whose order the undo keeps.
    3 HPUT   args: field, value: HINCRBY's and HINCRBYFLOAT's computed value (logged as
             the result, as Redis propagates an HSET); converts as HSET (hashTypeSet's
             own check). O(1).

Encoding: "listpack" until a conversion, "hashtable" after (never back, as Redis); a
value built whole (RESTORE, a snapshot's load) is judged by its content, as Redis loads.
"""

from __future__ import annotations

import itertools
from functools import partial

from kvtwist.engine import rdb
from kvtwist.engine.rdbpacked import read_listpack, read_ziplist, read_zipmap, write_listpack
from kvtwist.engine.scanorder import ScanOrder
from kvtwist.engine.types import HASH, TypedValue, register_op, register_type

OP_HSET, OP_HDEL, OP_HPUT = 1, 2, 3

# Estimated bytes a field costs beyond its field and value bytes, measured with tracemalloc
# under CPython 3.11: two bytes objects (33 bytes of header each) and a dict slot (about
# 50 bytes with the table's growth slack), 118 in all; plus a scan-order slot when made.
PER_FIELD = 120
# The export writes at most this many pairs per HSET.
EXPORT_CHUNK = 100

# hash-max-listpack-entries and hash-max-listpack-value (t_hash.py's configuration sets them,
# as Redis's server globals: they decide encodings, never content).
LIMITS = {"entries": 512, "value": 64}

_NO_EXPIRES: dict = {}


class FieldOrder(ScanOrder):
    """The scan order of one hash's fields (see engine/scanorder.py): no expiry."""

    compact_floor = 64
    expires = _NO_EXPIRES

    def __init__(self, fields: dict) -> None:
        self.data = fields
        self._reset_order()
        self._order = list(fields)

    def _alive(self, key) -> bool:
        return True


def _fits(items) -> bool:
    limit = LIMITS["value"]
    return all(len(item) <= limit for item in items)


@register_type
class Hash(TypedValue):
    """A hash value: ``fields`` (field -> value), ``big`` (encoding hashtable), ``order``."""

    __slots__ = ("fields", "big", "order")

    code = HASH
    type_name = b"hash"
    rdb_type = rdb.TYPE_HASH

    def __init__(self, fields=None) -> None:
        self.fields = {} if fields is None else fields
        self.order = None
        self.big = False
        self.nbytes = 0
        if fields:
            self.nbytes = (sum(map(len, fields)) + sum(map(len, fields.values()))
                           + PER_FIELD * len(fields))
            self.big = len(fields) > LIMITS["entries"] or not (
                _fits(fields) and _fits(fields.values()))

    def __len__(self) -> int:
        return len(self.fields)

    def encoding(self) -> bytes:
        return b"hashtable" if self.big else b"listpack"

    def copy(self) -> "Hash":
        """Return an independent copy, encoding kept (Redis's dupHashObject): O(n)."""
        other = Hash(dict(self.fields))
        other.big = self.big
        return other

    def frozen(self) -> dict:
        """Return a C-level copy of the fields: O(n)."""
        return dict(self.fields)

    @classmethod
    def flatten(cls, frozen: dict) -> list:
        """Return field, value, field, value... in order: O(n)."""
        return list(itertools.chain.from_iterable(frozen.items()))

    @classmethod
    def from_flat(cls, items: list) -> "Hash":
        """Return a hash from alternating fields and values: ValueError if odd, empty or
        repeating a field. O(n)."""
        if not items or len(items) % 2:
            raise ValueError("a hash needs field/value pairs")
        fields = dict(zip(items[::2], items[1::2]))
        if len(fields) * 2 != len(items):
            raise ValueError("a hash field is repeated")
        return cls(fields)

    def export_commands(self, key: bytes) -> list:
        """Return HSET commands of at most EXPORT_CHUNK pairs each: O(n)."""
        flat = self.flatten(self.fields)
        step = 2 * EXPORT_CHUNK
        return [[b"HSET", key] + flat[start:start + step] for start in range(0, len(flat), step)]

    # -- changes (only through the operations below) ----------------------------------

    def put(self, field: bytes, value: bytes):
        """Set one field; return its old value or None. O(1)."""
        fields = self.fields
        old = fields.get(field)
        fields[field] = value
        if old is None:
            self.nbytes += len(field) + len(value) + PER_FIELD
            if self.order is not None:
                self.order._inserted(field)
        else:
            self.nbytes += len(value) - len(old)
        return old

    def drop(self, field: bytes):
        """Remove one field; return its old value or None. O(1) amortised."""
        old = self.fields.pop(field, None)
        if old is not None:
            self.nbytes -= len(field) + len(old) + PER_FIELD
            if self.order is not None:
                self.order._removed(field)
        return old

    def scan_order(self) -> FieldOrder:
        """Return the scan order, made now if it was not: O(n) once, O(1) after."""
        if self.order is None:
            self.order = FieldOrder(self.fields)
        return self.order

    def _restore(self, saved: dict) -> None:
        # Put back a small hash's fields in their old order (undo of an HDEL). Only used
        # while there is no scan order (whose positions a rebuild would move).
        fields = self.fields
        fields.clear()
        fields.update(saved)
        self.nbytes = sum(map(len, saved)) + sum(map(len, saved.values())) + PER_FIELD * len(saved)


def _undo_puts(value: Hash, changes: list):
    # The inverse of a series of puts: each (field, old value or None), newest undone first.
    def inverse() -> None:
        for field, old in reversed(changes):
            if old is None:
                value.drop(field)
            else:
                value.put(field, old)
    return inverse


@register_op(Hash, OP_HSET)
def op_hset(value: Hash, args: tuple):
    """HSET field value [field value ...]: O(pairs)."""
    if len(args) == 2:
        # The usual single pair, inlined (redis-benchmark's HSET): no lists, no closure.
        field, item = args
        fields = value.fields
        old = fields.get(field)
        fields[field] = item
        if not value.big:
            limit = LIMITS["value"]
            if len(field) > limit or len(item) > limit or len(fields) > LIMITS["entries"]:
                value.big = True
        if old is None:
            value.nbytes += len(field) + len(item) + PER_FIELD
            if value.order is not None:
                value.order._inserted(field)
            return 1, partial(value.drop, field)
        value.nbytes += len(item) - len(old)
        return 0, partial(value.put, field, old)
    put = value.put
    changes = [(args[index], put(args[index], args[index + 1]))
               for index in range(0, len(args), 2)]
    if not value.big and (len(value.fields) > LIMITS["entries"] or not _fits(args)):
        value.big = True
    return sum(1 for _, old in changes if old is None), _undo_puts(value, changes)


@register_op(Hash, OP_HPUT)
def op_hput(value: Hash, args: tuple):
    """One computed field value (HINCRBY, HINCRBYFLOAT): O(1)."""
    field = args[0]
    old = value.put(field, args[1])
    if not value.big and (len(value.fields) > LIMITS["entries"] or not _fits(args)):
        value.big = True
    return (1 if old is None else 0), _undo_puts(value, [(field, old)])


@register_op(Hash, OP_HDEL)
def op_hdel(value: Hash, args: tuple):
    """HDEL field [field ...]: O(fields); a small hash's order is saved for the undo, O(n)."""
    fields = value.fields
    saved = dict(fields) if value.order is None and len(fields) <= LIMITS["entries"] else None
    drop = value.drop
    removed = [(field, old) for field, old in ((field, drop(field)) for field in args)
               if old is not None]

    def inverse() -> None:
        if saved is not None and value.order is None:  # (one made since must see the puts)
            value._restore(saved)
            return
        for field, old in reversed(removed):
            value.put(field, old)
    return len(removed), inverse


# -- DUMP and RESTORE (engine/rdb.py) -----------------------------------------------------


def dump_hash(value: Hash) -> bytes:
    """Return the RDB object of a hash as Redis 7.0 writes it: a small one as a listpack
    (RDB_TYPE_HASH_LISTPACK), byte for byte Redis's, a big one as RDB_TYPE_HASH. O(n)."""
    fields = value.fields
    if not value.big:
        packed = write_listpack(Hash.flatten(fields))
        return bytes((rdb.TYPE_HASH_LISTPACK,)) + rdb.encode_string(packed)
    encode = rdb.encode_string
    parts = [bytes((rdb.TYPE_HASH,)), rdb.encode_length(len(fields))]
    for field, item in fields.items():
        parts.append(encode(field))
        parts.append(encode(item))
    return b"".join(parts)


def _from_pairs(items: list, by_count: bool = False) -> Hash:
    # A repeated field is refused (Redis refuses it when it checks, or keeps a corrupt
    # value); ``by_count``: converted by field count only, as Redis loads a listpack or
    # ziplist (a long value stays in it).
    try:
        value = Hash.from_flat(items)
    except ValueError:
        raise rdb.BadPayload(rdb.BAD_FORMAT)
    if by_count:
        value.big = len(value.fields) > LIMITS["entries"]
    return value


def load_hash(reader) -> Hash:
    """RDB_TYPE_HASH: a length, then that many field and value strings. O(n)."""
    count = reader.length()[0]
    items = []
    append = items.append
    for _ in range(count):
        append(reader.string())
        append(reader.string())
    return _from_pairs(items)


def load_listpack(reader) -> Hash:
    """RDB_TYPE_HASH_LISTPACK: a string holding a listpack of fields and values."""
    return _from_pairs(read_listpack(reader.string()), by_count=True)


def load_ziplist(reader) -> Hash:
    """RDB_TYPE_HASH_ZIPLIST (Redis 3.2 to 6.2): a string holding a ziplist."""
    return _from_pairs(read_ziplist(reader.string()), by_count=True)


def load_zipmap(reader) -> Hash:
    """RDB_TYPE_HASH_ZIPMAP (before Redis 2.6): a string holding a zipmap."""
    return _from_pairs(read_zipmap(reader.string()))


rdb.DUMPERS[Hash] = dump_hash
rdb.LOADERS[rdb.TYPE_HASH] = load_hash
rdb.LOADERS[rdb.TYPE_HASH_LISTPACK] = load_listpack
rdb.LOADERS[rdb.TYPE_HASH_ZIPLIST] = load_ziplist
rdb.LOADERS[rdb.TYPE_HASH_ZIPMAP] = load_zipmap
