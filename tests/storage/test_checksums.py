"""Tests for kvtwist.storage.checksums: CRC-32 combination and a large value's known CRC."""

from __future__ import annotations

import zlib

from hypothesis import given, settings
from hypothesis import strategies as st
from twisted.trial.unittest import SynchronousTestCase

from kvtwist.engine.keyspace import SET
from kvtwist.engine.databases import IN_DB
from kvtwist.storage import checksums, records


class CombineTests(SynchronousTestCase):
    """crc32_combine gives zlib.crc32 of a concatenation from the two parts' CRCs."""

    @settings(max_examples=200)
    @given(st.binary(max_size=300), st.binary(max_size=300))
    def test_matches_zlib(self, first: bytes, second: bytes) -> None:
        """crc32_combine(crc(a), crc(b), len(b)) == crc(a + b) for any a and b."""
        self.assertEqual(
            checksums.crc32_combine(zlib.crc32(first), zlib.crc32(second), len(second)),
            zlib.crc32(first + second))

    def test_long_second_part(self) -> None:
        """A second part of several MB combines as zlib computes it."""
        second = bytes(range(256)) * (3 * 2**20 // 256 + 7)
        self.assertEqual(
            checksums.crc32_combine(zlib.crc32(b"head"), zlib.crc32(second), len(second)),
            zlib.crc32(b"head" + second))


class KnownTests(SynchronousTestCase):
    """A value whose CRC was computed off the event loop is framed without a second pass."""

    def tearDown(self) -> None:
        checksums.forget()

    def test_remembered_crc_is_used(self) -> None:
        """While remembered, the value's CRC is taken as given, not recomputed."""
        value = b"v" * records.LARGE_VALUE
        honest = records.encode_effect((SET, b"key", value, 0))
        honest_in_db = records.encode_effect((IN_DB, 3, (SET, b"key", value, 0)))
        checksums.remember(value, zlib.crc32(value) ^ 1)  # wrong on purpose: shows it is used
        self.assertNotEqual(records.encode_effect((SET, b"key", value, 0))[0], honest[0])
        self.assertNotEqual(records.encode_effect((IN_DB, 3, (SET, b"key", value, 0)))[0],
                            honest_in_db[0])

    def test_only_the_same_object(self) -> None:
        """An equal value that is another object gets its CRC computed; forget drops it."""
        value = b"v" * records.LARGE_VALUE
        checksums.remember(value, 12345)
        other = bytes(bytearray(value))
        self.assertEqual(checksums.crc_of(other), zlib.crc32(other))
        self.assertEqual(checksums.crc_of(value), 12345)
        checksums.forget()
        self.assertEqual(checksums.crc_of(value), zlib.crc32(value))

    def test_record_with_a_known_crc_reads_back(self) -> None:
        """A record framed with a correctly remembered CRC is the same bytes and decodes."""
        value = bytes(range(256)) * (records.LARGE_VALUE // 256)
        plain = b"".join(records.encode_effect((SET, b"key", value, 9)))
        checksums.remember(value, zlib.crc32(value))
        self.assertEqual(b"".join(records.encode_effect((SET, b"key", value, 9))), plain)
        self.assertEqual(b"".join(records.encode_set(b"key", value, 9)), plain)
