"""Journal and snapshot file format: a versioned header, then length-prefixed CRC32'd records."""

from __future__ import annotations

import struct
import zlib

from kvtwist.engine.databases import DBMAP, IN_DB, SELECT, SWAPDB
from kvtwist.engine.keyspace import DEL, EXPIRE_AT, FLUSH, MUTATE, PERSIST, SET, SETRANGE
from kvtwist.storage import typedrecords
from kvtwist.storage.checksums import crc32_combine, crc_of
from kvtwist.storage.typedrecords import SKIP, TYPED

# File layout:
#   header  = magic "KVTW" | u16 version | u8 kind | u8 flags (0) | u64 generation | u32 crc32
#   record  = u32 payload length | u32 crc32(payload) | payload
#   payload = u8 opcode | fields (all integers big-endian, byte strings u32-length-prefixed)
#     SET       u32 klen | u32 vlen | u64 expire_at_ms | key | value
#     DEL       u32 klen | key
#     EXPIRE_AT u32 klen | u64 at_ms | key
#     PERSIST   u32 klen | key
#     FLUSH     (nothing)
#     NOOP      (nothing; changes no key: the journal's probe of a disk that failed a write)
#     SETRANGE  u32 klen | u64 offset | key | patch   (patch: the rest of the payload)
#     IN_DB     u32 label | the payload of one of the records above, for database ``label``
#     SWAPDB    u32 index a | u32 index b | u32 label a | u32 label b  (labels before the swap)
#     SELECT    u32 label   (snapshots: the SET records after it are of database ``label``)
#     DBMAP     u32 count | count x u32 label   (snapshots: each index's label, see databases)
#     END       u64 record count   (last record of a snapshot: proves it is complete)
#     TYPED, MUTATE, SKIP: typed values, see storage/typedrecords.py
# Expiry is absolute milliseconds, so replaying a record at any later time gives the same state.
# Version 2 added IN_DB, SWAPDB, SELECT and DBMAP; version 3 TYPED, MUTATE and SKIP. Files of
# versions 1 (one database) and 2 still load.

MAGIC = b"KVTW"
VERSION = 3
READABLE_VERSIONS = (1, 2, 3)
JOURNAL, SNAPSHOT = 1, 2
END = 127
NOOP = 6
KIND_NAMES = {JOURNAL: "journal", SNAPSHOT: "snapshot"}

_HEADER = struct.Struct(">4sHBBQ")
HEADER_SIZE = _HEADER.size + 4
RECORD_HEAD = struct.Struct(">II")  # u32 payload length | u32 crc32(payload)
_SET = struct.Struct(">BIIQ")
_KEY = struct.Struct(">BI")
_EXPIRE = struct.Struct(">BIQ")
_END = struct.Struct(">BQ")
_SETRANGE = struct.Struct(">BIQ")
_U32 = struct.Struct(">I")
_IN_DB = struct.Struct(">BI")
_SWAPDB = struct.Struct(">BIIII")
_U64 = struct.Struct(">Q")
_FLUSH_PAYLOAD = bytes([FLUSH])

_crc32 = zlib.crc32
# SET records of values this long are framed with one copy of the value rather than two.
LARGE_VALUE = 1 << 20
_head_pack = RECORD_HEAD.pack
_set_pack = _SET.pack


class CorruptRecord(Exception):
    """A checksum or format failure; ``offset`` is where the bad record or header starts."""

    def __init__(self, path: str, offset: int, reason: str) -> None:
        Exception.__init__(self, "%s: offset %d: %s" % (path, offset, reason))
        self.path = path
        self.offset = offset
        self.reason = reason


class Header:
    """A parsed file header: ``kind`` (JOURNAL or SNAPSHOT) and ``generation``."""

    __slots__ = ("kind", "generation", "version")

    def __init__(self, kind: int, generation: int, version: int = VERSION) -> None:
        self.kind = kind
        self.generation = generation
        self.version = version

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, Header)
            and (other.kind, other.generation, other.version)
            == (self.kind, self.generation, self.version)
        )

    def __repr__(self) -> str:
        return "Header(%s, generation=%d)" % (KIND_NAMES.get(self.kind, self.kind), self.generation)


def encode_header(kind: int, generation: int) -> bytes:
    """Return the file header bytes for a journal or snapshot of ``generation``."""
    body = _HEADER.pack(MAGIC, VERSION, kind, 0, generation)
    return body + _U32.pack(_crc32(body))


def encode_effect(effect: tuple):
    """Return one framed record for a keyspace effect tuple (the per-write hot path).

    Bytes, except for a SET of a value of LARGE_VALUE bytes or more: then a list of
    pieces whose last is the value itself, so the record is never copied whole on the
    reactor thread (``pieces`` flattens a list of records that holds such lists).
    """
    op = effect[0]
    if op == SET:
        key = effect[1]
        value = effect[2]
        if value.__class__ is not bytes:
            payload = typedrecords.typed_payload(key, value, effect[3])
        elif len(value) >= LARGE_VALUE:
            return large_set_pieces(key, value, effect[3])
        else:
            payload = _set_pack(SET, len(key), len(value), effect[3]) + key + value
    elif op == IN_DB:
        return _encode_in_db(effect[1], effect[2])
    else:
        payload = _payload(effect)
    return _head_pack(len(payload), _crc32(payload)) + payload


def _payload(effect: tuple) -> bytes:
    # The payload of any effect but a large SET and IN_DB.
    op = effect[0]
    if op == SET:
        key, value = effect[1], effect[2]
        if value.__class__ is not bytes:
            return typedrecords.typed_payload(key, value, effect[3])
        payload = _set_pack(SET, len(key), len(value), effect[3]) + key + value
    elif op == MUTATE:
        payload = typedrecords.mutate_payload(effect)
    elif op == DEL or op == PERSIST:
        key = effect[1]
        payload = _KEY.pack(op, len(key)) + key
    elif op == EXPIRE_AT:
        key = effect[1]
        payload = _EXPIRE.pack(EXPIRE_AT, len(key), effect[2]) + key
    elif op == FLUSH:
        payload = _FLUSH_PAYLOAD
    elif op == SETRANGE:
        key = effect[1]
        payload = _SETRANGE.pack(SETRANGE, len(key), effect[2]) + key + effect[3]
    elif op == SWAPDB:
        payload = _SWAPDB.pack(*effect)
    elif op == SELECT:
        payload = _IN_DB.pack(SELECT, effect[1])
    elif op == DBMAP:
        labels = effect[1]
        payload = _IN_DB.pack(DBMAP, len(labels)) + struct.pack(">%dI" % len(labels), *labels)
    elif op == SKIP:
        payload = typedrecords.skip_payload(effect[1])
    else:
        raise ValueError("unknown effect opcode: %r" % (op,))
    return payload


def _encode_in_db(label: int, effect: tuple):
    # IN_DB around an effect; a large SET stays in pieces, its value uncopied.
    prefix = _IN_DB.pack(IN_DB, label)
    if effect[0] == SET and effect[2].__class__ is bytes and len(effect[2]) >= LARGE_VALUE:
        key, value = effect[1], effect[2]
        head = prefix + _set_pack(SET, len(key), len(value), effect[3]) + key
        crc = crc32_combine(_crc32(head), crc_of(value), len(value))
        return [_head_pack(len(head) + len(value), crc) + head, value]
    payload = prefix + _payload(effect)
    return _head_pack(len(payload), _crc32(payload)) + payload


def encode_marker(marker: tuple) -> bytes:
    """Return the framed SELECT, DBMAP or SKIP record of a snapshot (Databases.snapshot_items)."""
    payload = _payload(marker)
    return _head_pack(len(payload), _crc32(payload)) + payload


def large_set_pieces(key: bytes, value: bytes, expire_at_ms: int) -> list:
    """Return the SET record of a large ``value`` as two pieces: its head and fields, then
    the value itself, uncopied (checksummed only: O(len(value)), or O(log) when its CRC
    is remembered, see checksums)."""
    prefix = _set_pack(SET, len(key), len(value), expire_at_ms) + key
    crc = crc32_combine(_crc32(prefix), crc_of(value), len(value))
    return [_head_pack(len(prefix) + len(value), crc) + prefix, value]


def pieces(records: list) -> list:
    """Return ``records`` (bytes, and lists of pieces from encode_effect) as one flat list."""
    flat = []
    for record in records:
        if record.__class__ is list:
            flat.extend(record)
        else:
            flat.append(record)
    return flat


def encode_set(key: bytes, value: bytes, expire_at_ms: int):
    """Return one framed SET record (snapshot writing: avoids building a tuple per key).

    As ``encode_effect``: bytes, or for a large value the two pieces of
    ``large_set_pieces``, the value last and uncopied. A typed value (types.Frozen in a
    snapshot) is a TYPED record.
    """
    if value.__class__ is not bytes:
        payload = typedrecords.typed_payload(key, value, expire_at_ms)
        return _head_pack(len(payload), _crc32(payload)) + payload
    if len(value) >= LARGE_VALUE:
        return large_set_pieces(key, value, expire_at_ms)
    payload = _set_pack(SET, len(key), len(value), expire_at_ms) + key + value
    return _head_pack(len(payload), _crc32(payload)) + payload


def encode_end(count: int) -> bytes:
    """Return the END record that closes a snapshot of ``count`` SET records."""
    payload = _END.pack(END, count)
    return _head_pack(len(payload), _crc32(payload)) + payload


# A record that changes nothing when replayed (see NOOP).
NOOP_RECORD = _head_pack(1, _crc32(bytes([NOOP]))) + bytes([NOOP])


def decode_payload(payload) -> tuple:
    """Return the effect tuple (or ``(END, count)``) of one payload; ValueError if malformed."""
    size = len(payload)
    if size == 0:
        raise ValueError("empty record")
    op = payload[0]
    if op == SET:
        if size < 17:
            raise ValueError("short SET record")
        _, klen, vlen, expire = _SET.unpack_from(payload)
        if 17 + klen + vlen != size:
            raise ValueError("SET record length mismatch")
        return (SET, bytes(payload[17 : 17 + klen]), bytes(payload[17 + klen :]), expire)
    if op == DEL or op == PERSIST:
        if size < 5 or 5 + _KEY.unpack_from(payload)[1] != size:
            raise ValueError("bad key record")
        return (op, bytes(payload[5:]))
    if op == EXPIRE_AT:
        if size < 13:
            raise ValueError("short EXPIRE_AT record")
        _, klen, at = _EXPIRE.unpack_from(payload)
        if 13 + klen != size:
            raise ValueError("EXPIRE_AT record length mismatch")
        return (EXPIRE_AT, bytes(payload[13:]), at)
    if op == FLUSH:
        if size != 1:
            raise ValueError("bad FLUSH record")
        return (FLUSH,)
    if op == SETRANGE:
        if size < 13:
            raise ValueError("short SETRANGE record")
        _, klen, offset = _SETRANGE.unpack_from(payload)
        if 13 + klen > size:
            raise ValueError("SETRANGE record length mismatch")
        return (SETRANGE, bytes(payload[13:13 + klen]), offset, bytes(payload[13 + klen:]))
    if op == NOOP:
        if size != 1:
            raise ValueError("bad NOOP record")
        return (NOOP,)
    if op == IN_DB:
        if size < 6:
            raise ValueError("short IN_DB record")
        inner = payload[5:]
        if inner[0] in (IN_DB, SWAPDB, SELECT, DBMAP, END, NOOP, SKIP):
            raise ValueError("bad record inside IN_DB")
        return (IN_DB, _U32.unpack_from(payload, 1)[0], decode_payload(inner))
    if op == SWAPDB:
        if size != _SWAPDB.size:
            raise ValueError("bad SWAPDB record")
        return _SWAPDB.unpack(payload)
    if op == SELECT:
        if size != 5:
            raise ValueError("bad SELECT record")
        return (SELECT, _U32.unpack_from(payload, 1)[0])
    if op == DBMAP:
        if size < 5:
            raise ValueError("short DBMAP record")
        count = _U32.unpack_from(payload, 1)[0]
        if size != 5 + 4 * count:
            raise ValueError("DBMAP record length mismatch")
        return (DBMAP, list(struct.unpack_from(">%dI" % count, payload, 5)))
    if op == END:
        if size != 9:
            raise ValueError("bad END record")
        return (END, _U64.unpack_from(payload, 1)[0])
    if op == TYPED:
        return typedrecords.decode_typed(payload)
    if op == MUTATE:
        return typedrecords.decode_mutate(payload)
    if op == SKIP:
        return typedrecords.decode_skip(payload)
    raise ValueError("unknown opcode %d" % (op,))


def decode_header(data, path: str = "<stream>") -> Header:
    """Return the Header in the first HEADER_SIZE bytes of ``data``; raise CorruptRecord."""
    body = bytes(data[: _HEADER.size])
    (crc,) = _U32.unpack_from(data, _HEADER.size)
    magic, version, kind, _flags, generation = _HEADER.unpack(body)
    if magic != MAGIC:
        raise CorruptRecord(path, 0, "not a kvtwist file (bad magic %r)" % (magic,))
    if _crc32(body) != crc:
        raise CorruptRecord(path, 0, "header checksum mismatch")
    if version not in READABLE_VERSIONS:
        raise CorruptRecord(path, 0, "unsupported format version %d" % (version,))
    if kind not in KIND_NAMES:
        raise CorruptRecord(path, 0, "unknown file kind %d" % (kind,))
    return Header(kind, generation, version)
