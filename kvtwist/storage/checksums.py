"""CRC-32 arithmetic for records: combining two parts' CRCs, and a large value's known CRC.

A large SET's record is checksummed over its head and then its value. Computing the
value's CRC takes about 0.25 s per 512 MB (zlib releases the GIL, but the thread that
calls it waits): the server computes it in the thread pool that joins the value's pieces
(serve.streaming), remembers it here for the one value being executed, and the record's
CRC is then combined from the head's CRC and the value's in O(log(len)) steps.
"""

from __future__ import annotations

import zlib

_POLY = 0xEDB88320  # the reflected CRC-32 polynomial zlib uses


def _multmodp(a: int, b: int) -> int:
    # a * b modulo the CRC polynomial, in zlib's reflected representation.
    m = 1 << 31
    p = 0
    while True:
        if a & m:
            p ^= b
            if not a & (m - 1):
                return p
        m >>= 1
        b = (b >> 1) ^ _POLY if b & 1 else b >> 1


def _table() -> list:
    # x^(2^n) modulo the polynomial, for n in 0..31 (zlib's x2n_table).
    p = 1 << 30  # x^1
    table = [p]
    for _ in range(31):
        p = _multmodp(p, p)
        table.append(p)
    return table


_X2N = _table()


def crc32_combine(crc1: int, crc2: int, len2: int) -> int:
    """Return the CRC-32 of ``A + B`` from ``crc1`` of A, ``crc2`` of B and B's length.

    zlib's crc32_combine (not exposed by Python's zlib): O(log len2) steps of 32.
    """
    p = 1 << 31  # x^0
    n, k = len2, 3  # x^(8 * len2): a byte is 2^3 bits
    while n:
        if n & 1:
            p = _multmodp(_X2N[k & 31], p)
        n >>= 1
        k += 1
    return _multmodp(p, crc1) ^ crc2


# (value, its CRC-32) for the one large value being executed, or None.
_known = None


def remember(value: bytes, crc: int) -> None:
    """Say that ``zlib.crc32(value)`` is ``crc`` until ``forget`` (the same object only)."""
    global _known
    _known = (value, crc)


def forget() -> None:
    """Drop the remembered value (and the reference to it)."""
    global _known
    _known = None


def crc_of(value: bytes) -> int:
    """Return ``zlib.crc32(value)``: the remembered CRC if ``value`` is that object, else computed.

    Safe from any thread: bytes are immutable, so a CRC remembered for the very object is
    right wherever it is used.
    """
    known = _known
    if known is not None and known[0] is value:
        return known[1]
    return zlib.crc32(value)
