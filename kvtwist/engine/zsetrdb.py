"""The RDB codec of sorted sets (DUMP and RESTORE), as Redis 7.0's rdb.c.

DUMP writes RDB_TYPE_ZSET_2 (5): the member count, then each member (rdbSaveRawString)
and its score as 8 little-endian IEEE 754 bytes, from the highest to the lowest, as Redis
saves a skiplist; redis-server 7.0 RESTOREs it (as a listpack again when small).
RESTORE reads every encoding Redis 7.0 may have written for a sorted set:

    ZSET (3)           count, then member and score as text (rdbLoadDoubleValue:
                       a length byte, 253 nan, 254 inf, 255 -inf)
    ZSET_2 (5)         count, then member and binary score
    ZSET_ZIPLIST (12)  a string holding a ziplist of member, score, member, score...
    ZSET_LISTPACK (17) a string holding a listpack of the same

An empty set, a NaN score, a repeated member or a malformed ziplist/listpack is Redis's
"Bad data format". All O(n) in the payload, O(n log n) to order the members.
"""

from __future__ import annotations

import struct

from kvtwist.engine import rdb
from kvtwist.engine.rdb import BadPayload, Reader, encode_string
from kvtwist.engine.zsetscore import strtod
from kvtwist.engine.zsettype import LIMITS, ZSet

_DOUBLE = struct.Struct("<d")


def _bad() -> BadPayload:
    return BadPayload(rdb.BAD_FORMAT)


def dump_zset(value: ZSet) -> bytes:
    """Return the RDB object of a sorted set: type ZSET_2 and its body. O(n)."""
    parts = [bytes((rdb.TYPE_ZSET_2,)), rdb.encode_length(len(value))]
    pack = _DOUBLE.pack
    for score, member in value.descending():
        parts.append(encode_string(member))
        parts.append(pack(score))
    return b"".join(parts)


def _build(pairs, listpack: bool) -> ZSet:
    # Distinct members, no NaN, not empty; a listpack stays one unless it is too long.
    if not pairs:
        raise _bad()
    members = {}
    for member, score in pairs:
        if score != score or member in members:
            raise _bad()
        members[member] = score
    value = ZSet.from_pairs(members.items())
    if listpack:
        value.big = len(members) > LIMITS["entries"]
    return value


def _load_zset(reader: Reader, binary: bool) -> ZSet:
    count = reader.length()[0]
    pairs = []
    for _ in range(count):
        member = reader.string()
        if binary:
            score = _DOUBLE.unpack(reader.read(8))[0]
        else:
            size = reader.byte()
            if size == 255:
                score = float("-inf")
            elif size == 254:
                score = float("inf")
            elif size == 253:
                score = float("nan")
            else:
                score, consumed, _ = strtod(reader.read(size).split(b"\0", 1)[0])
                if not consumed:
                    raise _bad()
        pairs.append((member, score))
    return _build(pairs, False)


def _score_of(entry) -> float:
    # zzlGetScore: an integer entry, or the text's strtod prefix.
    if entry.__class__ is int:
        return float(entry)
    return strtod(entry[:127])[0]


def _pairs(entries: list) -> list:
    if len(entries) % 2:
        raise _bad()
    return [(entry if entry.__class__ is bytes else b"%d" % entry, _score_of(score))
            for entry, score in zip(entries[0::2], entries[1::2])]


def listpack_entries(blob: bytes) -> list:
    """Return the entries of a listpack (bytes or int each); BadPayload when malformed."""
    size = len(blob)
    if size < 7 or int.from_bytes(blob[0:4], "little") != size or blob[-1] != 0xFF:
        raise _bad()
    declared = int.from_bytes(blob[4:6], "little")
    entries = []
    position = 6
    while True:
        if position >= size:
            raise _bad()
        first = blob[position]
        if first == 0xFF:
            break
        start = position
        if first < 0x80:
            value, position = first, position + 1
        elif first < 0xC0:
            length = first & 0x3F
            value, position = blob[position + 1:position + 1 + length], position + 1 + length
        elif first < 0xE0:
            value = ((first & 0x1F) << 8) | blob[position + 1]
            value = value - (1 << 13) if value >= 1 << 12 else value
            position += 2
        elif first < 0xF0:
            length = ((first & 0x0F) << 8) | blob[position + 1]
            value, position = blob[position + 2:position + 2 + length], position + 2 + length
        elif first == 0xF0:
            length = int.from_bytes(blob[position + 1:position + 5], "little")
            value, position = blob[position + 5:position + 5 + length], position + 5 + length
        elif 0xF1 <= first <= 0xF4:
            width = (2, 3, 4, 8)[first - 0xF1]
            value = int.from_bytes(blob[position + 1:position + 1 + width], "little", signed=True)
            position += 1 + width
        else:
            raise _bad()
        if position > size - 1:
            raise _bad()
        encoded = position - start
        backlen = 1 if encoded < 128 else 2 if encoded < 16384 else 3 if encoded < 2097152 \
            else 4 if encoded < 268435456 else 5
        if _backlen(blob, position + backlen - 1) != encoded:
            raise _bad()
        position += backlen
        entries.append(value)
    if position != size - 1 or (declared != 0xFFFF and declared != len(entries)):
        raise _bad()
    return entries


def _backlen(blob: bytes, end: int) -> int:
    # lpDecodeBacklen: 7 bits a byte read from the end backwards, the high bit "more".
    value, shift = 0, 0
    while True:
        if end < 0 or end >= len(blob):
            raise _bad()
        byte = blob[end]
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value
        shift += 7
        end -= 1


def ziplist_entries(blob: bytes) -> list:
    """Return the entries of a ziplist (bytes or int each); BadPayload when malformed."""
    size = len(blob)
    if size < 11 or int.from_bytes(blob[0:4], "little") != size or blob[-1] != 0xFF:
        raise _bad()
    declared = int.from_bytes(blob[8:10], "little")
    tail = int.from_bytes(blob[4:8], "little")
    entries = []
    position = 10
    last = 10
    previous = 0
    while True:
        if position >= size:
            raise _bad()
        if blob[position] == 0xFF:
            break
        last = position
        if blob[position] == 0xFE:
            prevlen = int.from_bytes(blob[position + 1:position + 5], "little")
            position += 5
        else:
            prevlen = blob[position]
            position += 1
        if prevlen != previous:
            raise _bad()
        if position >= size:
            raise _bad()
        first = blob[position]
        kind = first >> 6
        if kind == 0:
            length, position = first & 0x3F, position + 1
        elif kind == 1:
            length, position = ((first & 0x3F) << 8) | blob[position + 1], position + 2
        elif first == 0x80:
            length = int.from_bytes(blob[position + 1:position + 5], "big")
            position += 5
        elif kind == 2:
            raise _bad()
        else:
            length = None
            widths = {0xC0: 2, 0xD0: 4, 0xE0: 8, 0xF0: 3, 0xFE: 1}
            if first in widths:
                width = widths[first]
                value = int.from_bytes(blob[position + 1:position + 1 + width], "little",
                                       signed=True)
                position += 1 + width
            elif 0xF1 <= first <= 0xFD:
                value, position = (first & 0x0F) - 1, position + 1
            else:
                raise _bad()
        if length is not None:
            value, position = blob[position:position + length], position + length
        if position > size - 1:
            raise _bad()
        previous = position - last
        entries.append(value)
    if position != size - 1 or tail != last or (declared != 0xFFFF
                                                 and declared != len(entries)):
        raise _bad()
    return entries


def _load_listpack(reader: Reader) -> ZSet:
    return _build(_pairs(listpack_entries(reader.string())), True)


def _load_ziplist(reader: Reader) -> ZSet:
    return _build(_pairs(ziplist_entries(reader.string())), True)


rdb.DUMPERS[ZSet] = dump_zset
rdb.LOADERS[rdb.TYPE_ZSET] = lambda reader: _load_zset(reader, False)
rdb.LOADERS[rdb.TYPE_ZSET_2] = lambda reader: _load_zset(reader, True)
rdb.LOADERS[rdb.TYPE_ZSET_ZIPLIST] = _load_ziplist
rdb.LOADERS[rdb.TYPE_ZSET_LISTPACK] = _load_listpack
