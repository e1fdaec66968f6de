"""Redis's listpack and ziplist blobs (listpack.c, ziplist.c), as RDB payloads hold them: pure.

``encode(elements)`` writes a listpack as Redis 7.0 would (canonical integers in the
integer encodings, other strings in the 6/12/32-bit string encodings); ``decode(blob)``
and ``decode_ziplist(blob)`` return the elements as bytes (integers as decimal text).
Malformed input raises ValueError. Each costs O(size of the blob).
"""

from __future__ import annotations

import struct

_LP_END = 0xFF


def _int_of(value: bytes):
    # Redis's lpStringToInt64 / string2ll: canonical decimal, 64-bit, at most 20 bytes.
    if not value or len(value) > 20:
        return None
    try:
        number = int(value)
    except ValueError:
        return None
    if b"%d" % number != value or not -(2 ** 63) <= number < 2 ** 63:
        return None
    return number


def _backlen(size: int) -> bytes:
    # lpEncodeBacklen: the entry's size, 7 bits a byte, read from its end backwards.
    # (Redis's thresholds are one short of the powers of 128: 16383 takes three bytes.)
    count = 1 if size <= 127 else 2 if size < 16383 else 3 if size < 2097151 else (
        4 if size < 268435455 else 5)
    groups = [(size >> (7 * shift)) & 127 for shift in range(count - 1, -1, -1)]
    # The first byte holds the highest bits; each later one has the continuation bit.
    return bytes([groups[0]] + [group | 128 for group in groups[1:]])


def _entry(value: bytes) -> bytes:
    number = _int_of(value)
    if number is not None:
        if 0 <= number <= 127:
            body = bytes((number,))
        elif -4096 <= number <= 4095:
            unsigned = number & 0x1FFF
            body = bytes((0xC0 | (unsigned >> 8), unsigned & 0xFF))
        elif -(1 << 15) <= number < 1 << 15:
            body = b"\xf1" + (number & 0xFFFF).to_bytes(2, "little")
        elif -(1 << 23) <= number < 1 << 23:
            body = b"\xf2" + (number & 0xFFFFFF).to_bytes(3, "little")
        elif -(1 << 31) <= number < 1 << 31:
            body = b"\xf3" + (number & 0xFFFFFFFF).to_bytes(4, "little")
        else:
            body = b"\xf4" + (number & 0xFFFFFFFFFFFFFFFF).to_bytes(8, "little")
    else:
        size = len(value)
        if size < 64:
            body = bytes((0x80 | size,)) + value
        elif size < 4096:
            body = bytes((0xE0 | (size >> 8), size & 0xFF)) + value
        else:
            body = b"\xf0" + size.to_bytes(4, "little") + value
    return body + _backlen(len(body))


def encode(elements) -> bytes:
    """Return a listpack holding ``elements`` (bytes) in order."""
    entries = b"".join(map(_entry, elements))
    total = 4 + 2 + len(entries) + 1
    count = len(elements) if len(elements) < 65535 else 65535
    return struct.pack("<IH", total, count) + entries + bytes((_LP_END,))


def _signed(raw: bytes) -> int:
    return int.from_bytes(raw, "little", signed=True)


def decode(blob: bytes) -> list:
    """Return the elements of a listpack blob; ValueError when it is malformed."""
    if len(blob) < 7 or struct.unpack_from("<I", blob)[0] != len(blob) or blob[-1] != _LP_END:
        raise ValueError("bad listpack header")
    count = struct.unpack_from("<H", blob, 4)[0]
    out = []
    position, end = 6, len(blob) - 1
    while position < end:
        first = blob[position]
        if first < 0x80:
            value, size = b"%d" % first, 1
        elif first & 0xC0 == 0x80:
            length = first & 0x3F
            value, size = blob[position + 1:position + 1 + length], 1 + length
        elif first & 0xE0 == 0xC0:
            unsigned = ((first & 0x1F) << 8) | blob[position + 1]
            value, size = b"%d" % (unsigned - (1 << 13) if unsigned >= 1 << 12 else unsigned), 2
        elif first & 0xF0 == 0xE0:
            length = ((first & 0x0F) << 8) | blob[position + 1]
            value, size = blob[position + 2:position + 2 + length], 2 + length
        elif first in (0xF1, 0xF2, 0xF3, 0xF4):
            width = {0xF1: 2, 0xF2: 3, 0xF3: 4, 0xF4: 8}[first]
            value, size = b"%d" % _signed(blob[position + 1:position + 1 + width]), 1 + width
        elif first == 0xF0:
            length = int.from_bytes(blob[position + 1:position + 5], "little")
            value, size = blob[position + 5:position + 5 + length], 5 + length
        else:
            raise ValueError("bad listpack entry encoding")
        if position + size > end:
            raise ValueError("listpack entry past the end")
        back = _backlen(size)
        if blob[position + size:position + size + len(back)] != back:
            raise ValueError("bad listpack entry back length")
        position += size + len(back)
        out.append(bytes(value))
    if position != end or (count != 65535 and count != len(out)):
        raise ValueError("listpack count mismatch")
    return out


def decode_ziplist(blob: bytes) -> list:
    """Return the elements of a ziplist blob (RDB type 10, quicklist v1 nodes)."""
    if len(blob) < 11 or struct.unpack_from("<I", blob)[0] != len(blob) or blob[-1] != 0xFF:
        raise ValueError("bad ziplist header")
    count = struct.unpack_from("<H", blob, 8)[0]
    out = []
    position, end = 10, len(blob) - 1
    while position < end:
        position += 5 if blob[position] == 0xFE else 1  # the previous entry's length
        first = blob[position]
        kind = first >> 6
        if kind == 0:
            length, header = first & 0x3F, 1
        elif kind == 1:
            length, header = ((first & 0x3F) << 8) | blob[position + 1], 2
        elif first == 0x80:
            length, header = int.from_bytes(blob[position + 1:position + 5], "big"), 5
        else:
            widths = {0xC0: 2, 0xD0: 4, 0xE0: 8, 0xF0: 3, 0xFE: 1}
            if first in widths:
                width = widths[first]
                out.append(b"%d" % _signed(blob[position + 1:position + 1 + width]))
                position += 1 + width
                continue
            if 0xF1 <= first <= 0xFD:
                out.append(b"%d" % ((first & 0x0F) - 1))
                position += 1
                continue
            raise ValueError("bad ziplist entry encoding")
        start = position + header
        if start + length > end:
            raise ValueError("ziplist entry past the end")
        out.append(bytes(blob[start:start + length]))
        position = start + length
    if position != end or (count != 65535 and count != len(out)):
        raise ValueError("ziplist count mismatch")
    return out
