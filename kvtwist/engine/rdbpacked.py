"""RDB's packed encodings (pure): listpack (read and write), ziplist and zipmap (read).

Redis 7.0 DUMPs a small hash, sorted set or list node as a listpack; older payloads hold
ziplists (Redis 3.2 to 6.2) and zipmaps (before 2.6). Each reader takes the blob (an RDB
string's bytes) and returns its entries as a list of bytes (integers as their decimal
text), or raises rdb.BadPayload ("Bad data format") when the blob is malformed: the
checks are at least those of Redis's shallow integrity validation (header length, end
byte), plus each entry's bounds. All O(blob size).

    listpack  u32 total bytes | u16 count (65535: unknown) | entries | 0xFF
              entry: encoding+data | backlen (1..5 bytes: the entry's length)
    ziplist   u32 total bytes | u32 tail offset | u16 count | entries | 0xFF
              entry: prevlen (1 byte, or 0xFE + u32) | encoding+data
    zipmap    u8 count | (len key len free value free-bytes)* | 0xFF
              len: 1 byte < 254, or 254 + u32 (little-endian)
"""

from __future__ import annotations

import struct

from kvtwist.engine.rdb import BadPayload, BAD_FORMAT

_U16 = struct.Struct("<H")
_U32 = struct.Struct("<I")
_LISTPACK_HEADER = struct.Struct("<IH")
_INTS = {0xF1: 2, 0xF2: 3, 0xF3: 4, 0xF4: 8}  # listpack signed integer encodings: byte count


def _bad() -> BadPayload:
    return BadPayload(BAD_FORMAT)


def _backlen_size(length: int) -> int:
    if length <= 127:
        return 1
    if length < 16383:
        return 2
    if length < 2097151:
        return 3
    if length < 268435455:
        return 4
    return 5


def _backlen(length: int) -> bytes:
    # lpEncodeBacklen: the high 7-bit group first, every byte after the first with bit 7 set.
    size = _backlen_size(length)
    groups = [(length >> (7 * shift)) & 127 for shift in range(size - 1, -1, -1)]
    if size == 5:
        groups[0] = length >> 28
    return bytes([groups[0]] + [group | 128 for group in groups[1:]])


def read_listpack(blob) -> list:
    """Return the entries of a listpack; BadPayload when malformed. O(len(blob))."""
    blob = bytes(blob)
    size = len(blob)
    if size < 7:
        raise _bad()
    total, count = _LISTPACK_HEADER.unpack_from(blob)
    if total != size or blob[-1] != 0xFF:
        raise _bad()
    end = size - 1
    items = []
    append = items.append
    position = 6
    while position < end:
        first = blob[position]
        if first < 0x80:
            append(b"%d" % first)
            length = 1
        elif first < 0xC0:
            length = 1 + (first & 0x3F)
            append(blob[position + 1:position + length])
        elif first < 0xE0:
            if position + 2 > end:
                raise _bad()
            number = ((first & 0x1F) << 8) | blob[position + 1]
            append(b"%d" % (number - 8192 if number >= 4096 else number))
            length = 2
        elif first < 0xF0:
            if position + 2 > end:
                raise _bad()
            length = 2 + (((first & 0x0F) << 8) | blob[position + 1])
            append(blob[position + 2:position + length])
        elif first == 0xF0:
            if position + 5 > end:
                raise _bad()
            length = 5 + _U32.unpack_from(blob, position + 1)[0]
            append(blob[position + 5:position + length])
        elif first in _INTS:
            width = _INTS[first]
            length = 1 + width
            append(b"%d" % int.from_bytes(blob[position + 1:position + length], "little",
                                          signed=True))
        else:
            raise _bad()
        position += length + _backlen_size(length)
        if position > end:
            raise _bad()
    if position != end or (count != 65535 and count != len(items)):
        raise _bad()
    return items


def _entry(item: bytes) -> bytes:
    # lpEncodeGetType: a canonical 64-bit integer of up to 20 characters is stored as one.
    number = _canonical_int(item) if len(item) <= 20 else None
    if number is not None:
        if 0 <= number <= 127:
            return bytes((number,))
        if -4096 <= number <= 4095:
            number &= 0x1FFF
            return bytes((0xC0 | (number >> 8), number & 0xFF))
        for code, width in ((0xF1, 2), (0xF2, 3), (0xF3, 4), (0xF4, 8)):
            if -(1 << (8 * width - 1)) <= number < 1 << (8 * width - 1):
                return bytes((code,)) + number.to_bytes(width, "little", signed=True)
    length = len(item)
    if length < 64:
        return bytes((0x80 | length,)) + item
    if length < 4096:
        return bytes((0xE0 | (length >> 8), length & 0xFF)) + item
    return b"\xf0" + _U32.pack(length) + item


def _canonical_int(value: bytes):
    # string2ll: optional '-', no leading zeros, no '+' or spaces, fits in 64 bits.
    if not value or not value.lstrip(b"-").isdigit():
        return None
    number = int(value)
    if b"%d" % number != value or not -(2 ** 63) <= number < 2 ** 63:
        return None
    return number


def write_listpack(items) -> bytes:
    """Return the listpack Redis 7.0 builds by appending ``items`` in order. O(their size)."""
    parts = []
    append = parts.append
    for item in items:
        entry = _entry(item)
        append(entry)
        append(_backlen(len(entry)))
    body = b"".join(parts)
    count = len(items) if len(items) < 65535 else 65535
    return _LISTPACK_HEADER.pack(6 + len(body) + 1, count) + body + b"\xff"


_ZIPLIST_INTS = {0xC0: 2, 0xD0: 4, 0xE0: 8, 0xF0: 3, 0xFE: 1}


def read_ziplist(blob) -> list:
    """Return the entries of a ziplist; BadPayload when malformed. O(len(blob))."""
    blob = bytes(blob)
    size = len(blob)
    if size < 11 or _U32.unpack_from(blob)[0] != size or blob[-1] != 0xFF:
        raise _bad()
    count = _U16.unpack_from(blob, 8)[0]
    end = size - 1
    items = []
    append = items.append
    position = 10
    while position < end:
        position += 1 if blob[position] < 254 else 5
        if position >= end:
            raise _bad()
        encoding = blob[position]
        kind = encoding >> 6
        if kind == 0:
            start, length = position + 1, encoding & 0x3F
        elif kind == 1:
            start, length = position + 2, ((encoding & 0x3F) << 8) | blob[position + 1]
        elif encoding == 0x80:
            start, length = position + 5, int.from_bytes(blob[position + 1:position + 5], "big")
        elif encoding in _ZIPLIST_INTS:
            start, length = position + 1, _ZIPLIST_INTS[encoding]
            if start + length > end:
                raise _bad()
            append(b"%d" % int.from_bytes(blob[start:start + length], "little", signed=True))
            position = start + length
            continue
        elif 0xF1 <= encoding <= 0xFD:
            append(b"%d" % ((encoding & 0x0F) - 1))
            position += 1
            continue
        else:
            raise _bad()
        if start + length > end:
            raise _bad()
        append(blob[start:start + length])
        position = start + length
    if position != end or (count != 65535 and count != len(items)):
        raise _bad()
    return items


def read_zipmap(blob) -> list:
    """Return the keys and values of a zipmap, alternating; BadPayload when malformed."""
    blob = bytes(blob)
    size = len(blob)
    if size < 2 or blob[-1] != 0xFF:
        raise _bad()
    items = []
    position = 1
    while blob[position] != 0xFF:
        for is_value in (False, True):
            first = blob[position]
            if first < 254:
                length, position = first, position + 1
            elif first == 254 and position + 5 <= size:
                length, position = _U32.unpack_from(blob, position + 1)[0], position + 5
            else:
                raise _bad()
            free = 0
            if is_value:
                if position >= size:
                    raise _bad()
                free = blob[position]
                position += 1
            if position + length + free >= size:
                raise _bad()
            items.append(blob[position:position + length])
            position += length + free
    if position != size - 1:
        raise _bad()
    return items
