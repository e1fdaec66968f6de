"""Key placement as twemproxy (nutcracker 0.5) does it: its hash functions, hash tags, and its
ketama, modula and random distributions, bit for bit, so that kvproxy and nutcracker put
every key on the same server for the same pool.

nutcracker's hash functions read the key as C ``char``, which is signed on the machines it
runs on (x86-64, ARM64 Linux is unsigned but Debian's nutcracker on x86-64 is the
reference): where a function adds or xors a byte without masking it, a byte of 0x80 or more
counts as a negative number, and so it does here (``_signed``). Each function is O(len(key)).

nutcracker sorts a pool's servers by name (shorter names first, then bytewise) before it
builds the continuum; the modula distribution depends on that order, so it is kept here.
"""

from __future__ import annotations

import binascii
import bisect
import hashlib
import random
import struct
import math
import zlib

_M32 = 0xFFFFFFFF
_M64 = 0xFFFFFFFFFFFFFFFF


def _signed(byte: int) -> int:
    # A C char holding ``byte``, converted to an unsigned 32-bit integer (sign-extended).
    return byte | 0xFFFFFF00 if byte & 0x80 else byte


def one_at_a_time(key: bytes) -> int:
    """Bob Jenkins's one-at-a-time hash (nc_one_at_a_time.c)."""
    value = 0
    for byte in key:
        value = (value + _signed(byte)) & _M32
        value = (value + (value << 10)) & _M32
        value ^= value >> 6
    value = (value + (value << 3)) & _M32
    value ^= value >> 11
    return (value + (value << 15)) & _M32


def md5(key: bytes) -> int:
    """The first four bytes of the MD5 digest, little-endian (nc_md5.c hash_md5)."""
    return struct.unpack_from("<I", hashlib.md5(key).digest())[0]


def crc16(key: bytes) -> int:
    """CRC16-CCITT (XMODEM) as nc_crc16.c computes it: in a 32-bit register never cut back to
    16 bits, so the higher bits carry on (what nutcracker really places keys by)."""
    table = _CRC16_TABLE
    crc = 0
    for byte in key:
        crc = ((crc << 8) ^ table[((crc >> 8) ^ byte) & 0xFF]) & _M32
    return crc


def crc32(key: bytes) -> int:
    """nc_crc32.c hash_crc32: bits 16-30 of the CRC-32 (libmemcached's)."""
    return (zlib.crc32(key) >> 16) & 0x7FFF


def crc32a(key: bytes) -> int:
    """nc_crc32.c hash_crc32a: the whole standard CRC-32."""
    return zlib.crc32(key) & _M32


def fnv1_64(key: bytes) -> int:
    """FNV-1 with the 64-bit constants, cut to 32 bits (nc_fnv.c)."""
    value = 0xCBF29CE484222325
    for byte in key:
        value = (value * 0x100000001B3) & _M64
        value ^= byte | 0xFFFFFFFFFFFFFF00 if byte & 0x80 else byte
    return value & _M32


def fnv1a_64(key: bytes) -> int:
    """nc_fnv.c's FNV-1a "64": the 64-bit constants cut to 32 bits, computed in 32 bits."""
    value = 0x84222325
    if key.isascii():  # no byte is negative as a C char: no _signed call a byte
        if len(key) <= 32:
            # Only the low 32 bits of a product depend on the low 32 bits of its factors
            # (and xor is bitwise): cut once, at the end (an int of at most 320 bits).
            for byte in key:
                value = (value ^ byte) * 0x1B3
            return value & _M32
        for byte in key:
            value = ((value ^ byte) * 0x1B3) & _M32
        return value
    for byte in key:
        value ^= _signed(byte)
        value = (value * 0x1B3) & _M32
    return value


def fnv1_32(key: bytes) -> int:
    """FNV-1, 32 bits (nc_fnv.c)."""
    value = 2166136261
    for byte in key:
        value = (value * 16777619) & _M32
        value ^= _signed(byte)
    return value


def fnv1a_32(key: bytes) -> int:
    """FNV-1a, 32 bits (nc_fnv.c)."""
    value = 2166136261
    for byte in key:
        value ^= _signed(byte)
        value = (value * 16777619) & _M32
    return value


def hsieh(key: bytes) -> int:
    """Paul Hsieh's SuperFastHash (nc_hsieh.c, little-endian 16-bit reads)."""
    size = len(key)
    if size == 0:
        return 0
    value = 0
    rem = size & 3
    position = 0
    for _ in range(size >> 2):
        value = (value + (key[position] | key[position + 1] << 8)) & _M32
        tmp = (((key[position + 2] | key[position + 3] << 8) << 11) ^ value) & _M32
        value = ((value << 16) ^ tmp) & _M32
        position += 4
        value = (value + (value >> 11)) & _M32
    if rem == 3:
        value = (value + (key[position] | key[position + 1] << 8)) & _M32
        value ^= (value << 16) & _M32
        value ^= (_signed(key[position + 2]) << 18) & _M32
        value = (value + (value >> 11)) & _M32
    elif rem == 2:
        value = (value + (key[position] | key[position + 1] << 8)) & _M32
        value ^= (value << 11) & _M32
        value = (value + (value >> 17)) & _M32
    elif rem == 1:
        value = (value + key[position]) & _M32
        value ^= (value << 10) & _M32
        value = (value + (value >> 1)) & _M32
    value ^= (value << 3) & _M32
    value = (value + (value >> 5)) & _M32
    value ^= (value << 4) & _M32
    value = (value + (value >> 17)) & _M32
    value ^= (value << 25) & _M32
    return (value + (value >> 6)) & _M32


def murmur(key: bytes) -> int:
    """MurmurHash2 with nutcracker's seed (0xdeadbeef times the length) (nc_murmur.c)."""
    m = 0x5BD1E995
    size = len(key)
    value = ((0xDEADBEEF * size) & _M32) ^ size
    whole = size & ~3
    for (k,) in struct.iter_unpack("<I", key[:whole]):
        k = (k * m) & _M32
        k ^= k >> 24
        k = (k * m) & _M32
        value = ((value * m) & _M32) ^ k
    rest = size - whole
    if rest == 3:
        value ^= key[whole + 2] << 16
    if rest >= 2:
        value ^= key[whole + 1] << 8
    if rest >= 1:
        value ^= key[whole]
        value = (value * m) & _M32
    value ^= value >> 13
    value = (value * m) & _M32
    return value ^ (value >> 15)


def _rot(x: int, k: int) -> int:
    return ((x << k) | (x >> (32 - k))) & _M32


def jenkins(key: bytes) -> int:
    """Bob Jenkins's lookup3 hashlittle with initval 13 (nc_jenkins.c; its aligned paths give
    the same value on a little-endian machine)."""
    size = len(key)
    a = b = c = (0xDEADBEEF + size + 13) & _M32
    position = 0
    while size > 12:
        a = (a + int.from_bytes(key[position:position + 4], "little")) & _M32
        b = (b + int.from_bytes(key[position + 4:position + 8], "little")) & _M32
        c = (c + int.from_bytes(key[position + 8:position + 12], "little")) & _M32
        a = (a - c) & _M32; a ^= _rot(c, 4); c = (c + b) & _M32  # noqa: E702
        b = (b - a) & _M32; b ^= _rot(a, 6); a = (a + c) & _M32  # noqa: E702
        c = (c - b) & _M32; c ^= _rot(b, 8); b = (b + a) & _M32  # noqa: E702
        a = (a - c) & _M32; a ^= _rot(c, 16); c = (c + b) & _M32  # noqa: E702
        b = (b - a) & _M32; b ^= _rot(a, 19); a = (a + c) & _M32  # noqa: E702
        c = (c - b) & _M32; c ^= _rot(b, 4); b = (b + a) & _M32  # noqa: E702
        size -= 12
        position += 12
    if size == 0:
        return c
    tail = key[position:] + bytes(12 - size)
    a = (a + int.from_bytes(tail[0:4], "little")) & _M32
    b = (b + int.from_bytes(tail[4:8], "little")) & _M32
    c = (c + int.from_bytes(tail[8:12], "little")) & _M32
    c ^= b; c = (c - _rot(b, 14)) & _M32  # noqa: E702
    a ^= c; a = (a - _rot(c, 11)) & _M32  # noqa: E702
    b ^= a; b = (b - _rot(a, 25)) & _M32  # noqa: E702
    c ^= b; c = (c - _rot(b, 16)) & _M32  # noqa: E702
    a ^= c; a = (a - _rot(c, 4)) & _M32  # noqa: E702
    b ^= a; b = (b - _rot(a, 14)) & _M32  # noqa: E702
    c ^= b; c = (c - _rot(b, 24)) & _M32  # noqa: E702
    return c


HASHES = {
    "one_at_a_time": one_at_a_time, "md5": md5, "crc16": crc16, "crc32": crc32,
    "crc32a": crc32a, "fnv1_64": fnv1_64, "fnv1a_64": fnv1a_64, "fnv1_32": fnv1_32,
    "fnv1a_32": fnv1a_32, "hsieh": hsieh, "murmur": murmur, "jenkins": jenkins,
}
DISTRIBUTIONS = ("ketama", "modula", "random")

# XMODEM's table: crc16 of each byte value.
_CRC16_TABLE = [binascii.crc_hqx(bytes([byte]), 0) for byte in range(256)]


def hashed_part(key: bytes, hash_tag: bytes) -> bytes:
    """Return the part of ``key`` that is hashed: what lies between the first opening
    character of ``hash_tag`` (two characters, e.g. b"{}") and the next closing one, when
    that is not empty; otherwise the whole key (server_pool_idx)."""
    if not hash_tag:
        return key
    start = key.find(hash_tag[0:1])
    if start < 0:
        return key
    end = key.find(hash_tag[1:2], start + 1)
    if end < 0 or end - start <= 1:
        return key
    return key[start + 1:end]


def _float32(value: float) -> float:
    return struct.unpack("f", struct.pack("f", value))[0]


class Distribution:
    """Where each key goes among a pool's servers, as nutcracker's continuum.

    ``servers`` is a list of ``(name, weight)`` (names unique: nutcracker's server name, or
    "host:port"); ``update(live)`` rebuilds for the servers whose indexes are in ``live`` (all
    of them at first): O(servers x 160 x log) for ketama. ``index(key)`` returns the index in
    ``servers`` of the key's server: O(len(key) + log points).
    """

    def __init__(self, servers: list, distribution: str = "ketama", hash: str = "fnv1a_64",
                 hash_tag: bytes = b"", rng=None) -> None:
        if distribution not in DISTRIBUTIONS:
            raise ValueError("unknown distribution %r (use %s)" % (
                distribution, ", ".join(DISTRIBUTIONS)))
        if hash not in HASHES:
            raise ValueError("unknown hash %r (use %s)" % (hash, ", ".join(sorted(HASHES))))
        if hash_tag and len(hash_tag) != 2:
            raise ValueError("hash_tag must be two characters, e.g. \"{}\"")
        for _, weight in servers:
            if weight < 1:
                raise ValueError("a server weight must be a positive integer")
        names = [_bytes(name) for name, _ in servers]
        if len(set(names)) != len(names):
            raise ValueError("two servers of the pool have the same name")
        self.servers = list(servers)
        # nutcracker's order (conf_server_name_cmp): by name length, then by bytes.
        self._order = sorted(range(len(names)), key=lambda index: (len(names[index]),
                                                                    names[index]))
        self.distribution = distribution
        self.hash = HASHES[hash]
        self.hash_tag = hash_tag
        self._random = rng or random.Random()
        self.update(range(len(self.servers)))

    def update(self, live) -> None:
        """Place keys on the servers whose indexes are in ``live`` only (auto-ejection)."""
        wanted = set(live)
        live = [index for index in self._order if index in wanted]
        self.live = sorted(live)
        if self.distribution == "ketama":
            self._points, self._owners = _ketama(self.servers, live)
        elif self.distribution == "modula":
            self._owners = [index for index in live for _ in range(self.servers[index][1])]
        else:
            self._owners = list(live)

    def index(self, key: bytes):
        """Return the index of the server ``key`` lives on, or None when none is live."""
        if len(self.servers) == 1:
            return 0
        owners = self._owners
        if not owners:
            return None
        if self.distribution == "random":
            return owners[self._random.randrange(len(owners))]
        part = hashed_part(key, self.hash_tag)
        value = self.hash(part) if part else 0
        if self.distribution == "modula":
            return owners[value % len(owners)]
        position = bisect.bisect_left(self._points, value)
        if position == len(self._points):
            position = 0
        return owners[position]


def _ketama(servers: list, live: list):
    # ketama_update: 160 points per server scaled by weight (float arithmetic as in C),
    # four from each MD5 of "name-i", sorted by value.
    if not live:
        return [], []
    total = sum(servers[index][1] for index in live)
    count = len(live)
    points = []
    for index in live:
        name, weight = servers[index]
        pct = _float32(_float32(weight) / _float32(total))
        scaled = _float32(_float32(_float32(pct * 160.0) / 4.0) * float(count))
        per_server = int(_float32_floor(scaled + 0.0000000001)) * 4
        encoded = _bytes(name)
        for pointer in range(per_server // 4):
            digest = hashlib.md5(b"%s-%d" % (encoded, pointer)).digest()
            for value in struct.unpack("<4I", digest):
                points.append((value, index))
    points.sort(key=lambda point: point[0])
    return [value for value, _ in points], [index for _, index in points]


def _bytes(name) -> bytes:
    return name.encode() if isinstance(name, str) else name


def _float32_floor(value: float) -> float:
    # floorf((float) value): the double is rounded to a float first.
    return math.floor(_float32(value))
