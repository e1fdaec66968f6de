"""Record payloads of typed values (format version 3): a whole typed value, an operation on
one, and a snapshot's SKIP count. See storage/records.py for the framing.

    TYPED   u32 klen | u8 type | u64 expire_at_ms | key | u32 n | n x (u32 len | item)
    MUTATE  u32 klen | u8 type | u8 opcode | key | u32 argc | argc x (u32 len | arg)
    SKIP    u64 count  (snapshots: how many records at the head of the journal of the same
                        generation the snapshot already holds; recovery skips them)

A TYPED record decodes to the effect ``(SET, key, value, expire_at_ms)`` with ``value`` a new
typed value (engine/types.py), so whoever applies effects treats it as any SET.
"""

from __future__ import annotations

import struct

import kvtwist.engine.alltypes  # noqa: F401  (registers the types records can name)
from kvtwist.engine.keyspace import SET
from kvtwist.engine.typedkeys import MUTATE
from kvtwist.engine.types import OPS, TYPES, Frozen

TYPED, SKIP = 12, 14

_TYPED = struct.Struct(">BIBQ")
_MUTATE = struct.Struct(">BIBB")
_SKIP = struct.Struct(">BQ")
_U32 = struct.Struct(">I")
_u32_pack = _U32.pack


def _items(items) -> list:
    # The count, then each item length-prefixed: O(total size), one join by the caller.
    parts = [_u32_pack(len(items))]
    append = parts.append
    for item in items:
        append(_u32_pack(len(item)))
        append(item)
    return parts


def typed_payload(key: bytes, value, expire_at_ms: int) -> bytes:
    """Return the TYPED payload of a typed value or of its Frozen snapshot copy: O(its size)."""
    if value.__class__ is Frozen:
        code, flat = value.code, value.flat()
    else:
        code = value.code
        flat = TYPES[code].flatten(value.frozen())
    parts = _items(flat)
    parts.insert(0, _TYPED.pack(TYPED, len(key), code, expire_at_ms) + key)
    return b"".join(parts)


def mutate_payload(effect: tuple) -> bytes:
    """Return the MUTATE payload of ``(MUTATE, key, code, opcode, args)``."""
    _, key, code, opcode, args = effect
    parts = _items(args)
    parts.insert(0, _MUTATE.pack(MUTATE, len(key), code, opcode) + key)
    return b"".join(parts)


def skip_payload(count: int) -> bytes:
    """Return the SKIP payload of a snapshot."""
    return _SKIP.pack(SKIP, count)


def _read_items(payload, offset: int) -> list:
    # The items from ``offset`` to the payload's end; ValueError unless they fill it exactly.
    size = len(payload)
    if offset + 4 > size:
        raise ValueError("short item count")
    count = _U32.unpack_from(payload, offset)[0]
    offset += 4
    items = []
    append_item = items.append
    for _ in range(count):
        if offset + 4 > size:
            raise ValueError("short item length")
        length = _U32.unpack_from(payload, offset)[0]
        offset += 4
        end = offset + length
        if end > size:
            raise ValueError("item longer than its record")
        append_item(bytes(payload[offset:end]))
        offset = end
    if offset != size:
        raise ValueError("bytes after the last item")
    return items


def decode_typed(payload) -> tuple:
    """Return ``(SET, key, value, expire_at_ms)`` of a TYPED payload; ValueError if malformed."""
    if len(payload) < _TYPED.size:
        raise ValueError("short TYPED record")
    _, klen, code, at = _TYPED.unpack_from(payload)
    start = _TYPED.size
    cls = TYPES.get(code)
    if cls is None:
        raise ValueError("unknown value type %d" % (code,))
    if start + klen > len(payload):
        raise ValueError("TYPED record length mismatch")
    key = bytes(payload[start:start + klen])
    return (SET, key, cls.from_flat(_read_items(payload, start + klen)), at)


def decode_mutate(payload) -> tuple:
    """Return ``(MUTATE, key, code, opcode, args)`` of a MUTATE payload; ValueError if malformed."""
    if len(payload) < _MUTATE.size:
        raise ValueError("short MUTATE record")
    _, klen, code, opcode = _MUTATE.unpack_from(payload)
    start = _MUTATE.size
    if (code, opcode) not in OPS:
        raise ValueError("unknown operation %d of value type %d" % (opcode, code))
    if start + klen > len(payload):
        raise ValueError("MUTATE record length mismatch")
    key = bytes(payload[start:start + klen])
    return (MUTATE, key, code, opcode, tuple(_read_items(payload, start + klen)))


def decode_skip(payload) -> tuple:
    """Return ``(SKIP, count)`` of a SKIP payload; ValueError if malformed."""
    if len(payload) != _SKIP.size:
        raise ValueError("bad SKIP record")
    return _SKIP.unpack(payload)
