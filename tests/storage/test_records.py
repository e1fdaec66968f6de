"""Tests for kvtwist.storage.records: the journal and snapshot record format."""

from __future__ import annotations

from twisted.trial.unittest import SynchronousTestCase

from kvtwist.engine.databases import DBMAP, IN_DB, SELECT
from kvtwist.engine.keyspace import DEL, FLUSH, SET
from kvtwist.storage import records
from kvtwist.storage.reader import RecordReader
from kvtwist.storage.records import CorruptRecord
from tests.storage.recordio import apply_batched, read_all

class EncodeTests(SynchronousTestCase):
    """The encoders produce framed, checksummed records."""

    def test_header_roundtrip(self) -> None:
        """A header decodes to the kind and generation it was made with."""
        header = records.decode_header(records.encode_header(records.SNAPSHOT, 42))
        self.assertEqual(header, records.Header(records.SNAPSHOT, 42))

    def test_record_frame(self) -> None:
        """A record is u32 payload length, u32 CRC32 of the payload, then the payload."""
        import struct
        import zlib

        data = records.encode_effect((DEL, b"abc"))
        length, crc = struct.unpack(">II", data[:8])
        self.assertEqual(length, len(data) - 8)
        self.assertEqual(crc, zlib.crc32(data[8:]))

    def test_unknown_opcode(self) -> None:
        """Encoding an unknown effect raises ValueError rather than writing garbage."""
        self.assertRaises(ValueError, records.encode_effect, (99, b"k"))

    def test_encode_set_matches_effect(self) -> None:
        """encode_set writes the same bytes as encode_effect of a SET effect."""
        self.assertEqual(records.encode_set(b"k", b"v", 5),
                         records.encode_effect((SET, b"k", b"v", 5)))

    def test_bad_header(self) -> None:
        """A header with a wrong magic, checksum or version is rejected at offset 0."""
        good = records.encode_header(records.JOURNAL, 1)
        for bad in (b"XXXX" + good[4:], good[:-1] + bytes([good[-1] ^ 1])):
            exc = self.assertRaises(CorruptRecord, records.decode_header, bad, "f")
            self.assertEqual(exc.offset, 0)
            self.assertIn("f: offset 0", str(exc))


class LargeRecordTests(SynchronousTestCase):
    """A SET of a large value is framed as pieces that leave the value itself uncopied."""

    def test_pieces_hold_the_value_itself(self) -> None:
        """encode_effect and encode_set give the same pieces; the value is the last, as is."""
        value = b"v" * records.LARGE_VALUE
        pieces = records.encode_effect((SET, b"key", value, 77))
        self.assertIsInstance(pieces, list)
        self.assertIs(pieces[-1], value)
        self.assertEqual(records.encode_set(b"key", value, 77), pieces)
        self.assertIs(records.encode_set(b"key", value, 77)[-1], value)
        self.assertEqual(records.pieces([b"a", pieces, b"z"]), [b"a"] + pieces + [b"z"])
        self.assertEqual(records.pieces([b"a", b"z"]), [b"a", b"z"])

    def test_snapshot_record_of_a_large_value(self) -> None:
        """encode_set's pieces of a large value, joined, decode as a small value's record does."""
        value = b"w" * records.LARGE_VALUE
        record = b"".join(records.encode_set(b"key", value, 5))
        reader = RecordReader()
        reader.feed(records.encode_header(records.SNAPSHOT, 1) + record)
        self.assertTrue(reader.next_record() == (SET, b"key", value, 5), "decoded differently")


class DatabaseRecordTests(SynchronousTestCase):
    """Format version 2: records of other databases, SWAPDB, and the snapshot markers."""

    def test_large_set_in_another_database_is_pieces(self) -> None:
        """A large SET of database 4 is framed as pieces, its value uncopied, and reads back."""
        value = b"v" * records.LARGE_VALUE
        framed = records.encode_effect((IN_DB, 4, (SET, b"k", value, 9)))
        self.assertIsInstance(framed, list)
        self.assertIs(framed[-1], value)
        reader = RecordReader()
        reader.feed(records.encode_header(records.JOURNAL, 1) + b"".join(framed))
        self.assertEqual(read_all(reader), [(IN_DB, 4, (SET, b"k", value, 9))])

    def test_snapshot_markers(self) -> None:
        """A snapshot may hold DBMAP and SELECT records among its SETs; END counts them all."""
        items = [(DBMAP, [1, 0, 2]), (b"a", b"1", 0), (SELECT, 2), (b"b", b"2", 0), (SELECT, 0)]
        data = records.encode_header(records.SNAPSHOT, 1) + b"".join(
            records.encode_set(*item) if len(item) == 3 else records.encode_marker(item)
            for item in items) + records.encode_end(len(items))
        reader = RecordReader()
        reader.feed(data)
        self.assertEqual(apply_batched(reader), [(DBMAP, [1, 0, 2]), (SET, b"a", b"1", 0),
                                                 (SELECT, 2), (SET, b"b", b"2", 0), (SELECT, 0)])

    def test_nested_in_db_is_corrupt(self) -> None:
        """An IN_DB record wrapping another IN_DB is malformed."""
        inner = records.encode_effect((IN_DB, 1, (FLUSH,)))[8:]
        payload = b"\x08\x00\x00\x00\x02" + inner
        self.assertRaises(ValueError, records.decode_payload, payload)

    def test_version_1_header_is_read(self) -> None:
        """Files written in format version 1 (one database) are still read."""
        body = records._HEADER.pack(records.MAGIC, 1, records.JOURNAL, 0, 3)
        header = records.decode_header(body + records._U32.pack(records._crc32(body)))
        self.assertEqual((header.version, header.generation), (1, 3))
