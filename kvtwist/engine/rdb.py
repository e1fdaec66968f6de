"""Redis 7.0's DUMP payload codec: RDB object encodings, LZF, and the CRC64 footer (pure).

A DUMP payload (cluster.c createDumpPayload) is::

    object type byte | object encoding | RDB version (2 bytes, LE) | CRC64 (8 bytes, LE)

The CRC64 (Jones polynomial, reflected, as Redis's crc64.c) covers everything before it,
the version included. ``dump_string`` writes a string value exactly as Redis 7.0 does with
``rdbcompression yes`` (rdb.c rdbSaveRawString): a canonical decimal integer of 32 bits as
INT8/16/32, a string over 20 bytes LZF-compressed when that saves at least 4 bytes, any
other verbatim after its length. ``load`` checks a payload as RESTORE does (verifyDumpPayload,
then rdbLoadObject) and returns ``(type, value)``.

Decoding is one ``Reader`` over the whole payload (footer included: Redis's rio reads may run
into it, and bytes left after the object are ignored, as in Redis) and a table of loaders,
``LOADERS``, by object type: the data types (list, set, zset, hash: quicklist, listpack,
ziplist, intset encodings) add theirs there, built on ``Reader.length`` and
``Reader.string``. Until then every object type but strings is "Bad data format".

Costs, all pure Python: the CRC64 is table-driven, O(n) with a few operations per byte
(see ``crc64``); the LZF compressor costs one hash and a table probe per literal byte
and one comparison per matched byte; the decompressor copies literal runs and back
references as slices, O(n) in the output. DUMP and RESTORE of an n-byte value cost O(n) in all.
"""

from __future__ import annotations

import collections
import struct
import sys

RDB_VERSION = 10  # Redis 7.0's

# Object types (rdb.h); rdbIsObjectType accepts 0..7 and 9..19.
TYPE_STRING = 0
TYPE_LIST = 1
TYPE_SET = 2
TYPE_ZSET = 3
TYPE_HASH = 4
TYPE_ZSET_2 = 5
TYPE_MODULE = 6
TYPE_MODULE_2 = 7
TYPE_HASH_ZIPMAP = 9
TYPE_LIST_ZIPLIST = 10
TYPE_SET_INTSET = 11
TYPE_ZSET_ZIPLIST = 12
TYPE_HASH_ZIPLIST = 13
TYPE_LIST_QUICKLIST = 14
TYPE_STREAM_LISTPACKS = 15
TYPE_HASH_LISTPACK = 16
TYPE_ZSET_LISTPACK = 17
TYPE_LIST_QUICKLIST_2 = 18
TYPE_STREAM_LISTPACKS_2 = 19
OBJECT_TYPES = frozenset(list(range(0, 8)) + list(range(9, 20)))

# Length encodings: the top two bits of the first byte (rdb.h).
LEN_6BIT, LEN_14BIT, LEN_32BIT, LEN_64BIT, ENCVAL = 0, 1, 0x80, 0x81, 3
ENC_INT8, ENC_INT16, ENC_INT32, ENC_LZF = 0, 1, 2, 3

VERSION_OR_CHECKSUM = "ERR DUMP payload version or checksum are wrong"
BAD_FORMAT = "ERR Bad data format"


class BadPayload(ValueError):
    """A payload RESTORE refuses; ``str()`` is Redis's error text."""


def _bad() -> BadPayload:
    return BadPayload(BAD_FORMAT)


# -- CRC64 -----------------------------------------------------------------------------

_CRC64_POLY = 0x95AC9329AC4BC9B5  # Jones, 0xad93d23594c935a9 bit-reversed
_PYPY = sys.implementation.name == "pypy"


def _crc_tables() -> list:
    # tables[0] is the byte-at-a-time table; tables[k] advances a byte through k more zero
    # bytes (slicing-by-8).
    first = []
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = (crc >> 1) ^ _CRC64_POLY if crc & 1 else crc >> 1
        first.append(crc)
    tables = [first]
    for _ in range(7):
        previous = tables[-1]
        tables.append([(value >> 8) ^ first[value & 0xFF] for value in previous])
    return tables


_CRC_TABLES = _crc_tables()
_CRC_TABLE = _CRC_TABLES[0]
# PyPy: the same table as signed 64-bit values, so the running CRC stays a machine word.
_CRC_SIGNED = [value - (1 << 64) if value >> 63 else value for value in _CRC_TABLE]
# CPython: the eight tables split into 32-bit halves (small ints), for slicing-by-8.
_CRC_LOW = [[value & 0xFFFFFFFF for value in table] for table in _CRC_TABLES]
_CRC_HIGH = [[value >> 32 for value in table] for table in _CRC_TABLES]
_WORDS_OK = sys.byteorder == "little" and struct.calcsize("I") == 4


def _crc64_signed(data, crc: int) -> int:
    table = _CRC_SIGNED
    if crc >> 63:
        crc -= 1 << 64
    for byte in data:
        crc = table[(crc ^ byte) & 0xFF] ^ ((crc >> 8) & 0xFFFFFFFFFFFFFF)
    return crc & 0xFFFFFFFFFFFFFFFF


def _crc64_sliced(data, crc: int) -> int:
    view = memoryview(data)
    whole = len(view) & ~7 if _WORDS_OK else 0
    if whole:
        low, high = crc & 0xFFFFFFFF, crc >> 32
        l0, l1, l2, l3, l4, l5, l6, l7 = _CRC_LOW
        h0, h1, h2, h3, h4, h5, h6, h7 = _CRC_HIGH
        words = iter(view[:whole].cast("I"))
        for first in words:
            first ^= low
            second = next(words) ^ high
            a, b, c, d = first & 0xFF, (first >> 8) & 0xFF, (first >> 16) & 0xFF, first >> 24
            e, f, g, h = second & 0xFF, (second >> 8) & 0xFF, (second >> 16) & 0xFF, second >> 24
            low = l7[a] ^ l6[b] ^ l5[c] ^ l4[d] ^ l3[e] ^ l2[f] ^ l1[g] ^ l0[h]
            high = h7[a] ^ h6[b] ^ h5[c] ^ h4[d] ^ h3[e] ^ h2[f] ^ h1[g] ^ h0[h]
        crc = (high << 32) | low
    table = _CRC_TABLE
    for byte in view[whole:]:
        crc = table[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    return crc


def crc64(data, crc: int = 0) -> int:
    """Return Redis's CRC64 of ``data`` (bytes-like), continuing from ``crc``.

    Table-driven, O(n): on PyPy a byte per step with the CRC kept a signed machine word;
    on CPython slicing-by-8 over 32-bit halves (small ints). Speeds: see the docs notes.
    """
    return _crc64_signed(data, crc) if _PYPY else _crc64_sliced(data, crc)


# -- LZF (liblzf 3.6 as Redis ships it: HLOG 16, VERY_FAST) ------------------------------

_MAX_LIT = 1 << 5
_MAX_OFF = 1 << 13
_MAX_REF = (1 << 8) + (1 << 3)


def lzf_compress(data: bytes, out_len: int):
    """Return ``data`` LZF-compressed in at most ``out_len`` bytes, or None (lzf_compress's 0).

    Mirrors Redis's lzf_c.c step for step, with a fresh hash table (Redis leaves its table
    uninitialised, which may only ever find extra, still valid, matches), so the output is
    byte for byte Redis's. O(n): a hash and a table probe per literal byte, one comparison
    per matched byte (speeds: see the docs notes).
    """
    in_len = len(data)
    if not in_len or not out_len:
        return None
    out = bytearray(out_len + 8)  # slack for the run byte reserved after the last step
    # The C's hash of the 3 bytes at ip, IDX(h) with h = d0 << 16 | d1 << 8 | d2, is
    # ((h >> 8) - 5 * h) mod 2**16, that is ((d0 << 8 | d1) - 5 * (d1 << 8 | d2)) mod 2**16.
    # Position + 1 of the last 3 bytes seen per slot (0: none): a list for long inputs, a
    # dict for short ones, where allocating 64k slots would cost more than the work.
    htab = [0] * 65536 if in_len > 4096 else collections.defaultdict(int)
    in_end = in_len
    op = 1  # start a literal run: its control byte goes at op - lit - 1
    lit = 0
    ip = 0
    while ip < in_end - 2:
        second = data[ip + 1]
        slot = (((data[ip] << 8) | second) - 5 * ((second << 8) | data[ip + 2])) & 0xFFFF
        ref = htab[slot] - 1
        htab[slot] = ip + 1
        if (ref > 0 and ip - ref - 1 < _MAX_OFF
                and data[ref + 2] == data[ip + 2] and data[ref] == data[ip]
                and data[ref + 1] == data[ip + 1]):
            off = ip - ref - 1
            maxlen = in_end - ip - 2
            if maxlen > _MAX_REF:
                maxlen = _MAX_REF
            if op + 4 >= out_len and op - (not lit) + 4 >= out_len:
                return None
            out[op - lit - 1] = (lit - 1) & 0xFF  # stop run
            if not lit:
                op -= 1  # undo a run of length zero
            # The C checks bytes 3..18 unrolled when maxlen > 16, then goes on while below
            # maxlen: the match ends at the first differing byte from 3 on, or there.
            length = 3
            if maxlen > 16:
                while length < 19 and data[ref + length] == data[ip + length]:
                    length += 1
                if length == 19:
                    while length < maxlen and data[ref + length] == data[ip + length]:
                        length += 1
            else:
                while length < maxlen and data[ref + length] == data[ip + length]:
                    length += 1
            length -= 2  # octets - 1
            ip += 1
            if length < 7:
                out[op] = (off >> 8) + (length << 5)
                op += 1
            else:
                out[op] = (off >> 8) + (7 << 5)
                out[op + 1] = length - 7
                op += 2
            out[op] = off & 0xFF
            op += 2  # the offset byte, then start a new run
            lit = 0
            ip += length + 1
            if ip >= in_end - 2:
                break
            # VERY_FAST: hash the two positions before the new ip.
            before, at = data[ip - 1], data[ip]
            htab[(((data[ip - 2] << 8) | before) - 5 * ((before << 8) | at)) & 0xFFFF] = ip - 1
            htab[(((before << 8) | at) - 5 * ((at << 8) | data[ip + 1])) & 0xFFFF] = ip
        else:
            if op >= out_len:
                return None
            lit += 1
            out[op] = data[ip]
            op += 1
            ip += 1
            if lit == _MAX_LIT:
                out[op - lit - 1] = lit - 1
                lit = 0
                op += 1
    if op + 3 > out_len:
        return None
    while ip < in_end:
        lit += 1
        out[op] = data[ip]
        op += 1
        ip += 1
        if lit == _MAX_LIT:
            out[op - lit - 1] = lit - 1
            lit = 0
            op += 1
    out[op - lit - 1] = (lit - 1) & 0xFF
    if not lit:
        op -= 1
    return bytes(out[:op])


def lzf_decompress(data, out_len: int):
    """Return ``data`` LZF-decompressed, or None where lzf_decompress fails (returns 0).

    Fails on truncated input, a back reference before the start, or output longer than
    ``out_len`` (never more is produced). O(input + output): runs copied as slices.
    """
    data = bytes(data)
    out = bytearray()
    ip = 0
    in_end = len(data)
    while ip < in_end:
        ctrl = data[ip]
        ip += 1
        if ctrl < 32:
            ctrl += 1
            if len(out) + ctrl > out_len or ip + ctrl > in_end:
                return None
            out += data[ip:ip + ctrl]
            ip += ctrl
            continue
        length = ctrl >> 5
        if ip >= in_end:
            return None
        if length == 7:
            length += data[ip]
            ip += 1
            if ip >= in_end:
                return None
        ref = len(out) - ((ctrl & 0x1F) << 8) - 1 - data[ip]
        ip += 1
        length += 2
        if len(out) + length > out_len or ref < 0:
            return None
        distance = len(out) - ref
        if distance >= length:
            out += out[ref:ref + length]
        else:
            # Overlapping: the last ``distance`` bytes repeat.
            chunk = out[ref:]
            out += (chunk * (length // distance + 1))[:length]
    return bytes(out)


# -- writing -----------------------------------------------------------------------------


def encode_length(length: int) -> bytes:
    """Return rdbSaveLen's encoding of a length: 1, 2, 5 or 9 bytes."""
    if length < 1 << 6:
        return bytes((length,))
    if length < 1 << 14:
        return bytes((0x40 | (length >> 8), length & 0xFF))
    if length <= 0xFFFFFFFF:
        return b"\x80" + length.to_bytes(4, "big")
    return b"\x81" + length.to_bytes(8, "big")


def _canonical_int(value: bytes):
    # string2ll: optional '-', no leading zeros, no '+' or spaces, fits in 64 bits.
    try:
        number = int(value)
    except ValueError:
        return None
    if b"%d" % number != value or not -(2 ** 63) <= number < 2 ** 63:
        return None
    return number


def encode_string(value: bytes, compress: bool = True) -> bytes:
    """Return rdbSaveRawString's encoding of a string (``compress``: rdbcompression).

    O(n); with compression, the LZF compressor's cost for values over 20 bytes.
    """
    size = len(value)
    if size <= 11:
        number = _canonical_int(value)
        if number is not None:
            if -(1 << 7) <= number < 1 << 7:
                return bytes((0xC0 | ENC_INT8, number & 0xFF))
            if -(1 << 15) <= number < 1 << 15:
                return bytes((0xC0 | ENC_INT16,)) + (number & 0xFFFF).to_bytes(2, "little")
            if -(1 << 31) <= number < 1 << 31:
                return bytes((0xC0 | ENC_INT32,)) + (number & 0xFFFFFFFF).to_bytes(4, "little")
    if compress and size > 20:
        packed = lzf_compress(value, size - 4)
        if packed is not None:
            return b"".join((bytes((0xC0 | ENC_LZF,)), encode_length(len(packed)),
                             encode_length(size), packed))
    return encode_length(size) + value


def footer(body: bytes) -> bytes:
    """Return the version and CRC64 that end a DUMP payload whose object part is ``body``."""
    versioned = bytes((RDB_VERSION & 0xFF, RDB_VERSION >> 8))
    return versioned + crc64(versioned, crc64(body)).to_bytes(8, "little")


def dump_string(value: bytes, compress: bool = True) -> bytes:
    """Return the DUMP payload of a string value, as Redis 7.0's DUMP gives it."""
    body = bytes((TYPE_STRING,)) + encode_string(value, compress)
    return body + footer(body)


# Typed value class -> function(value) returning its RDB object: the type byte and body.
# The data-type families register theirs (engine/types.py).
DUMPERS: dict = {}


def dump_value(value) -> bytes:
    """Return the DUMP payload of any stored value (a string, or a registered typed value)."""
    if value.__class__ is bytes:
        return dump_string(value)
    body = DUMPERS[value.__class__](value)
    return body + footer(body)


# -- reading -----------------------------------------------------------------------------


class Reader:
    """Reads RDB encodings from a buffer, from ``position`` on; running out is BadPayload."""

    __slots__ = ("data", "position")

    def __init__(self, data, position: int = 0) -> None:
        self.data = bytes(data)
        self.position = position

    def read(self, count: int) -> bytes:
        """Return the next ``count`` bytes (rioRead: all of them or an error)."""
        start = self.position
        end = start + count
        if end > len(self.data):
            raise _bad()
        self.position = end
        return self.data[start:end]

    def byte(self) -> int:
        """Return the next byte."""
        position = self.position
        if position >= len(self.data):
            raise _bad()
        self.position = position + 1
        return self.data[position]

    def length(self):
        """Return ``(value, encoded)`` as rdbLoadLenByRef: a length, or with ``encoded``
        true a special encoding number (ENC_INT8...ENC_LZF) from an 11xxxxxx byte."""
        first = self.byte()
        kind = first >> 6
        if kind == ENCVAL:
            return first & 0x3F, True
        if kind == LEN_6BIT:
            return first & 0x3F, False
        if kind == LEN_14BIT:
            return ((first & 0x3F) << 8) | self.byte(), False
        if first == LEN_32BIT:
            return int.from_bytes(self.read(4), "big"), False
        if first == LEN_64BIT:
            return int.from_bytes(self.read(8), "big"), False
        raise _bad()

    def string(self) -> bytes:
        """Return the next string (rdbGenericLoadStringObject): plain, integer or LZF."""
        length, encoded = self.length()
        if not encoded:
            return self.read(length)
        if length == ENC_INT8:
            return b"%d" % int.from_bytes(self.read(1), "little", signed=True)
        if length == ENC_INT16:
            return b"%d" % int.from_bytes(self.read(2), "little", signed=True)
        if length == ENC_INT32:
            return b"%d" % int.from_bytes(self.read(4), "little", signed=True)
        if length == ENC_LZF:
            packed_length = self.length()[0]
            size = self.length()[0]
            value = lzf_decompress(self.read(packed_length), size)
            # Redis compares lzf_decompress's count (0 on failure) with the length.
            if (len(value) if value is not None else 0) != size:
                raise _bad()
            return value if value is not None else b""
        raise _bad()


def _load_string(reader: Reader) -> bytes:
    return reader.string()


# Object type -> loader(reader) returning the value. Types absent here are refused as
# "Bad data format": the data-type families register theirs when they exist.
LOADERS: dict = {TYPE_STRING: _load_string}


def verify(payload) -> None:
    """Raise BadPayload unless the footer holds an RDB version <= ours and the right CRC64."""
    size = len(payload)
    if size < 10:
        raise BadPayload(VERSION_OR_CHECKSUM)
    version = payload[size - 10] | (payload[size - 9] << 8)
    if version > RDB_VERSION:
        raise BadPayload(VERSION_OR_CHECKSUM)
    if crc64(memoryview(payload)[:size - 8]) != int.from_bytes(payload[size - 8:], "little"):
        raise BadPayload(VERSION_OR_CHECKSUM)


def load(payload):
    """Return ``(object type, value)`` from a DUMP payload, or raise BadPayload as RESTORE.

    O(len(payload)) for a string: the CRC, then the decoding.
    """
    verify(payload)
    reader = Reader(payload)
    kind = reader.byte()
    loader = LOADERS.get(kind) if kind in OBJECT_TYPES else None
    if loader is None:
        raise _bad()
    return kind, loader(reader)
