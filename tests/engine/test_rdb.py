"""Tests for kvtwist.engine.rdb: Redis 7.0's DUMP payload codec (CRC64, LZF, lengths, strings)."""

from __future__ import annotations

import hashlib
import random

from hypothesis import given, settings, strategies as st
from twisted.trial.unittest import SynchronousTestCase

from kvtwist.engine import rdb

# (value, the DUMP payload redis-server 7.0.15 gave for it after SET, in hex).
VECTORS = [
    (b"0", "00c0000a009840a778f8500308"),
    (b"1", "00c0010a002678e7b6d10111fc"),
    (b"-1", "00c0ff0a000c937e2485089dc5"),
    (b"127", "00c07f0a000db5eb315254c514"),
    (b"-128", "00c0800a009966326d2f0c5bd9"),
    (b"128", "00c180000a00eb7ab3b510cf4b65"),
    (b"-129", "00c17fff0a001760822854808480"),
    (b"32767", "00c1ff7f0a00495a37da17f4d52b"),
    (b"-32768", "00c100800a00b540064753bb1ace"),
    (b"32768", "00c2008000000a0045d82eedd5bda910"),
    (b"-32769", "00c2ff7fffff0a00aee34c4d06c68536"),
    (b"2147483647", "00c2ffffff7f0a002c74e59ee02eada1"),
    (b"-2147483648", "00c2000000800a00c74f873e33558187"),
    (b"2147483648", "000a323134373438333634380a00e7b129a34c1d76ee"),
    (b"-2147483649", "000b2d323134373438333634390a00c261377908f2028c"),
    (b"9223372036854775807", "0013393232333337323033363835343737353830370a003a657e9481e85f22"),
    (b"-9223372036854775808",
     "00142d393232333337323033363835343737353830380a00ede2b956eb709e81"),
    (b"9223372036854775808", "0013393232333337323033363835343737353830380a0037d576b70c698fc8"),
    (b"-9223372036854775809",
     "00142d393232333337323033363835343737353830390a0053daf998c2218c75"),
    (b"18446744073709551615",
     "001431383434363734343037333730393535313631350a000f1076f35a8635f4"),
    (b"10000", "00c110270a00e4b7ca6c864325d1"),
    (b"007", "00033030370a007258e27b4c69bad9"),
    (b"-0", "00022d300a00d5411fd9d6d050cc"),
    (b"+1", "00022b310a00c286f0d7439aee6f"),
    (b" 1", "000220310a003fe5791ae5defb1b"),
    (b"1 ", "000231200a0016fd33f0b380b43c"),
    (b"1.5", "0003312e350a001df5d4bedb5b860d"),
    (b"123456789012", "000c3132333435363738393031320a00911001b1d116e7ac"),
    (b"", "00000a005d9b5c400f7fa2da"),
    (b"a", "0001610a00bffeef9b8f367db4"),
    (b"bar", "00036261720a00e6be4960ee66fd17"),
    (b"hello world", "000b68656c6c6f20776f726c640a000bfc49b9a6c7a034"),
    (b"\x00\xff\r\n", "000400ff0d0a0a008d10d19e4216ec65"),
    (b"a" * 20, "001461616161616161616161616161616161616161610a0083b46b5e1b11acf1"),
    (b"a" * 21, "00c30615016161e00a000a00fd0cb36807413f68"),
    (b"ab" * 50, "00c30a406402616261e056010161620a0017383d942096d863"),
    (b"x" * 1000, "00c31243e8017878e0ff00e0ff00e0ff00e0c3000178780a009219e2966d932c99"),
    (b"abcdefghijklmnopqrstuvwxyz",
     "001a6162636465666768696a6b6c6d6e6f707172737475767778797a0a009e1b3f34abfc5f79"),
    (b"The quick brown fox jumps over the lazy dog. " * 3,
     "00c33740871f54686520717569636b2062726f776e20666f78206a756d7073206f7665722074201e0a6c617a"
     "7920646f672e2054200de04b2c012e200a00eb396db124addced"),
    (b"a" * 263, "00c3094107016161e0fa000161610a00f16cb87f9eab9d56"),
    (bytes(range(64)),
     "004040000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f202122232425262728"
     "292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f0a008c0c07acf508b445"),
    (bytes(range(256)) * 2,
     "00c3411042001f000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f1f20212223"
     "2425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f1f404142434445464748494a4b4c4d4e"
     "4f505152535455565758595a5b5c5d5e5f1f606162636465666768696a6b6c6d6e6f70717273747576777879"
     "7a7b7c7d7e7f1f808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9f1fa0a1a2a3"
     "a4a5a6a7a8a9aaabacadaeafb0b1b2b3b4b5b6b7b8b9babbbcbdbebf1fc0c1c2c3c4c5c6c7c8c9cacbcccdce"
     "cfd0d1d2d3d4d5d6d7d8d9dadbdcdddedf1fe0e1e2e3e4e5e6e7e8e9eaebecedeeeff0f1f2f3f4f5f6f7f8f9"
     "fafbfcfdfeff0000e0f4ff01feff0a00084dd41d67e5d330"),
]

# (kind, length, seed, payload length, sha256 of the payload) from redis-server 7.0.15.
BIG_VECTORS = [
    ("random", 63, 0, 75,
     "e0168d84c7b744accc6995cefd1721ffa5a990b158aab850ddb3a31793efca96"),
    ("random", 64, 1, 77,
     "84efa7f27e0b7f5ff51f90422f054dd598a4a45e38867132a9cf393ee82eef8e"),
    ("random", 16383, 2, 16396,
     "be08407e035503bbcdb4c7fb2d2b8f7b276a933c80a7d5a88e1b0c6d6f4ae6da"),
    ("random", 16384, 3, 16400,
     "0dec751f739ad1e271e71e90b6d93bc3dacb86446cb00676b7beecb0ddfebe00"),
    ("random", 70000, 4, 70016,
     "38f70a90a2bc6a56efcc4c13ab9e7746a9172aa156a8cd1f8504e6c2c06e506a"),
    ("repeat", 9000, 5, 136,
     "04859ef5fabc7fee1c6445e4e6b1d9a582c494e3aa6261c002a0a0feee2fb9c3"),
    ("text", 100000, 6, 34599,
     "2dac448f9d251ef4efd4428e5f3ccf071ce0a9cc5b2dbe6893bd04a13251aa2f"),
    ("zeros", 1048576, 7, 11941,
     "db191912f3800204762b5ce19cff50831d64d836a2a3eb5c53f0ce7f6f82de05"),
]

WORDS = [b"alpha", b"beta", b"gamma", b"delta", b"kv", b"twist", b"redis", b"dump"]


def big_value(kind: str, length: int, seed: int) -> bytes:
    """Return the value a BIG_VECTORS row was made from (the collector's generator)."""
    rng = random.Random(seed)
    if kind == "random":
        return bytes(rng.getrandbits(8) for _ in range(length))
    if kind == "repeat":
        return (b"pattern-%d-" % seed * (length // 10 + 1))[:length]
    if kind == "text":
        out: list = []
        while sum(map(len, out)) < length:
            out.append(WORDS[rng.randrange(len(WORDS))])
        return b" ".join(out)[:length]
    return bytes(length)


def bitwise_crc64(data: bytes) -> int:
    """Redis's CRC-64/Jones, bit by bit: the reference the table-driven one must equal."""
    poly = 0x95AC9329AC4BC9B5  # 0xad93d23594c935a9 reflected
    crc = 0
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ poly if crc & 1 else crc >> 1
    return crc


def payload(body: bytes, version: int = rdb.RDB_VERSION) -> bytes:
    """Return ``body`` with a version and a correct CRC64 footer appended."""
    head = body + bytes([version & 0xFF, version >> 8])
    return head + rdb.crc64(head).to_bytes(8, "little")


class Crc64Tests(SynchronousTestCase):
    def test_check_value(self):
        """The CRC of "123456789" is Redis's crc64 test value (crc64.c's self-test)."""
        self.assertEqual(rdb.crc64(b"123456789"), 0xE9C6D914C4B8D9CA)
        self.assertEqual(rdb.crc64(b""), 0)

    @given(st.binary(max_size=300), st.binary(max_size=300))
    def test_matches_bitwise_and_continues(self, first, second):
        """The table-driven CRC equals the bitwise one and can be continued over pieces."""
        self.assertEqual(rdb.crc64(first + second), bitwise_crc64(first + second))
        self.assertEqual(rdb.crc64(second, rdb.crc64(first)), rdb.crc64(first + second))

    def test_long_input(self):
        """Inputs longer than the unrolled step and not a multiple of it are summed whole."""
        rng = random.Random(5)
        data = bytes(rng.getrandbits(8) for _ in range(1003))
        self.assertEqual(rdb.crc64(data), bitwise_crc64(data))

    @given(st.binary(max_size=100), st.integers(min_value=0, max_value=2 ** 64 - 1))
    def test_both_implementations(self, data, start):
        """The PyPy (signed word) and CPython (slicing-by-8) variants agree from any start."""
        expected = rdb._crc64_sliced(data, start)
        self.assertEqual(rdb._crc64_signed(data, start), expected)
        self.assertEqual(rdb._crc64_sliced(memoryview(data), start), expected)
        self.assertEqual(rdb.crc64(data[:37], start), rdb._crc64_signed(data[:37], start))


class LzfTests(SynchronousTestCase):
    @settings(max_examples=200)
    @given(st.one_of(st.binary(max_size=2000),
                     st.lists(st.sampled_from([b"a", b"b", b"ab", b"xyz", b"\0"]),
                              max_size=600).map(b"".join)))
    def test_round_trip(self, data):
        """Whatever the compressor emits decompresses back to the input."""
        packed = rdb.lzf_compress(data, len(data) + 64)
        if data:
            self.assertEqual(rdb.lzf_decompress(packed, len(data)), data)
        else:
            self.assertIsNone(packed)

    def test_output_limit(self):
        """The compressor gives up (None) when the output would not fit in the limit."""
        data = bytes(range(200))
        self.assertIsNone(rdb.lzf_compress(data, len(data) - 4))
        self.assertIsNotNone(rdb.lzf_compress(b"a" * 200, 10))

    def test_decompress_errors(self):
        """Truncated input, a back reference before the start or too much output is None."""
        self.assertIsNone(rdb.lzf_decompress(b"\x05abc", 6))  # literal run cut short
        self.assertIsNone(rdb.lzf_decompress(b"\x00a\x20", 5))  # back reference cut short
        self.assertIsNone(rdb.lzf_decompress(b"\x00a\x20\x05", 5))  # before the start
        self.assertIsNone(rdb.lzf_decompress(b"\x02abc", 2))  # more than the room
        self.assertEqual(rdb.lzf_decompress(b"\x00a\xe0\x05\x00", 20), b"a" * 15)
        self.assertEqual(rdb.lzf_decompress(b"", 0), b"")


class LengthTests(SynchronousTestCase):
    def test_encodings(self):
        """Lengths take 1, 2, 5 or 9 bytes at Redis's 6/14/32/64-bit boundaries."""
        self.assertEqual(rdb.encode_length(63), b"\x3f")
        self.assertEqual(rdb.encode_length(64), b"\x40\x40")
        self.assertEqual(rdb.encode_length(16383), b"\x7f\xff")
        self.assertEqual(rdb.encode_length(16384), b"\x80\x00\x00\x40\x00")
        self.assertEqual(rdb.encode_length(2 ** 32 - 1), b"\x80\xff\xff\xff\xff")
        self.assertEqual(rdb.encode_length(2 ** 32), b"\x81" + (2 ** 32).to_bytes(8, "big"))

    @given(st.integers(min_value=0, max_value=2 ** 64 - 2))
    def test_round_trip(self, length):
        """Every length reads back as written, not flagged as an encoding."""
        reader = rdb.Reader(rdb.encode_length(length))
        self.assertEqual(reader.length(), (length, False))
        self.assertEqual(reader.position, len(rdb.encode_length(length)))

    def test_bad_length_byte(self):
        """First bytes 0x82..0xbf are no length encoding: the payload is bad."""
        for first in (0x82, 0xBF):
            self.assertRaises(rdb.BadPayload, rdb.Reader(bytes([first]) + bytes(9)).length)
        self.assertRaises(rdb.BadPayload, rdb.Reader(b"\x80\x00").length)


class DumpStringTests(SynchronousTestCase):
    def test_redis_vectors(self):
        """DUMP payloads equal redis-server's byte for byte, and load back to the value."""
        for value, expected in VECTORS:
            self.assertEqual(rdb.dump_string(value).hex(), expected, value)
            self.assertEqual(rdb.load(bytes.fromhex(expected)), (rdb.TYPE_STRING, value))

    def test_big_redis_vectors(self):
        """Large payloads (every length encoding, LZF) equal redis-server's, and load back."""
        for kind, length, seed, size, digest in BIG_VECTORS:
            value = big_value(kind, length, seed)
            dumped = rdb.dump_string(value)
            self.assertEqual((len(dumped), hashlib.sha256(dumped).hexdigest()), (size, digest))
            self.assertEqual(rdb.load(dumped), (rdb.TYPE_STRING, value))

    @settings(max_examples=300)
    @given(st.one_of(st.binary(max_size=3000), st.integers(-2 ** 64, 2 ** 64).map(b"%d".__mod__),
                     st.lists(st.sampled_from([b"ab", b"c", b"0"]), max_size=200).map(b"".join)))
    def test_round_trip(self, value):
        """Any value DUMPed loads back to itself as a string."""
        self.assertEqual(rdb.load(rdb.dump_string(value)), (rdb.TYPE_STRING, value))

    def test_integer_encoding_only_for_canonical_int32(self):
        """Only canonical decimal integers within 32 bits become INT8/16/32 encodings."""
        self.assertEqual(rdb.encode_string(b"-128"), b"\xc0\x80")
        self.assertEqual(rdb.encode_string(b"-129"), b"\xc1\x7f\xff")
        self.assertEqual(rdb.encode_string(b"65536"), b"\xc2\x00\x00\x01\x00")
        for raw in (b"01", b"-0", b"+5", b"1_0", b" 7", b"2147483648", b"\xd9\xa1"):
            self.assertEqual(rdb.encode_string(raw), bytes([len(raw)]) + raw)

    def test_compression_threshold(self):
        """Strings of 20 bytes or less, or that LZF cannot shrink by 4 bytes, are stored plain."""
        self.assertEqual(rdb.encode_string(b"a" * 20), b"\x14" + b"a" * 20)
        self.assertEqual(rdb.encode_string(b"a" * 21)[:1], b"\xc3")
        self.assertEqual(rdb.encode_string(b"a" * 21, compress=False), b"\x15" + b"a" * 21)
        text = bytes(range(21, 63))
        self.assertEqual(rdb.encode_string(text), bytes([len(text)]) + text)


class LoadTests(SynchronousTestCase):
    def test_version_and_checksum(self):
        """A short payload, a newer RDB version or a wrong CRC is refused; older versions load."""
        good = rdb.dump_string(b"bar")
        for bad in (b"", good[:9], good[:-1] + b"\x00", payload(b"\x00\x03bar", 11)):
            error = self.assertRaises(rdb.BadPayload, rdb.load, bad)
            self.assertEqual(str(error), "ERR DUMP payload version or checksum are wrong")
        for version in (0, 9):
            self.assertEqual(rdb.load(payload(b"\x00\x03bar", version)), (0, b"bar"))

    def test_bad_format(self):
        """Well-checksummed payloads that do not decode are "Bad data format" (reads may run
        into the 10-byte footer, as in Redis, but not past it)."""
        for body in (b"\x08", b"\x14\x01a", b"\xff", b"\x00\xc4", b"\x00\xc3\x03\x05\x00a\xff",
                     b"\x00\x82", b"\x00\x3f", b"\x00\xc3\x05\x05\x00a",
                     b"\x00\xc3\x40\x00", b"\x00\x80\x00\x00\x00\x0b"):
            error = self.assertRaises(rdb.BadPayload, rdb.load, payload(body))
            self.assertEqual(str(error), "ERR Bad data format", body)

    def test_redis_quirks(self):
        """As in Redis: bytes after the value are ignored, a string may read into the footer,
        and an LZF string of declared length 0 is empty whatever its compressed bytes."""
        self.assertEqual(rdb.load(payload(b"\x00\x03barjunk")), (0, b"bar"))
        tail = payload(b"\x00\x0a")
        self.assertEqual(rdb.load(tail), (0, tail[2:]))
        self.assertEqual(rdb.load(payload(b"\x00\xc3\x02\x00\x00a")), (0, b""))
        self.assertEqual(rdb.load(payload(b"\x00\xc3\x00\x00")), (0, b""))

    def test_integer_encodings_load_as_decimal(self):
        """INT8/16/32 encodings load as the decimal text of the signed value."""
        self.assertEqual(rdb.load(payload(b"\x00\xc0\xff")), (0, b"-1"))
        self.assertEqual(rdb.load(payload(b"\x00\xc1\x00\x80")), (0, b"-32768"))
        self.assertEqual(rdb.load(payload(b"\x00\xc2\xff\xff\xff\x7f")), (0, b"2147483647"))
