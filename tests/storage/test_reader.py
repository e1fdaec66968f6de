"""Tests for kvtwist.storage.reader: the push-style reader of journal and snapshot files."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from twisted.trial.unittest import SynchronousTestCase

from kvtwist.engine.databases import IN_DB, SELECT, SWAPDB
from kvtwist.engine.keyspace import DEL, EXPIRE_AT, FLUSH, PERSIST, SET, SETRANGE
from kvtwist.storage import records
from kvtwist.storage.reader import RecordReader
from kvtwist.storage.records import END, CorruptRecord
from tests.storage.recordio import apply_all, apply_batched, read_all

EFFECTS = [
    (SET, b"k1", b"v1", 0),
    (SET, b"bin\x00\r\n", b"\xff" * 300, 1700000000123),
    (DEL, b"k1"),
    (EXPIRE_AT, b"bin\x00\r\n", 2**63),
    (PERSIST, b"bin\x00\r\n"),
    (FLUSH,),
    (SET, b"", b"", 0),
    (SETRANGE, b"bin\x00\r\n", 7, b"patch\x00"),
    (SETRANGE, b"", 0, b""),
    (IN_DB, 3, (SET, b"k", b"in three", 5)),
    (IN_DB, 15, (SETRANGE, b"k", 2, b"xy")),
    (IN_DB, 2**32 - 1, (FLUSH,)),
    (SWAPDB, 0, 3, 0, 3),
    (SWAPDB, 7, 1, 1, 7),
]

keys = st.binary(max_size=40)
effects = st.one_of(
    st.tuples(st.just(SET), keys, st.binary(max_size=200), st.integers(0, 2**64 - 1)),
    st.tuples(st.just(DEL), keys),
    st.tuples(st.just(EXPIRE_AT), keys, st.integers(0, 2**64 - 1)),
    st.tuples(st.just(PERSIST), keys),
    st.just((FLUSH,)),
    st.tuples(st.just(IN_DB), st.integers(0, 2**32 - 1),
              st.tuples(st.just(SET), keys, st.binary(max_size=50), st.integers(0, 2**64 - 1))),
    st.tuples(st.just(SWAPDB), *[st.integers(0, 2**32 - 1)] * 4),
)


def journal_bytes(effect_list, generation=7) -> bytes:
    return records.encode_header(records.JOURNAL, generation) + b"".join(
        records.encode_effect(e) for e in effect_list)


class ReaderTests(SynchronousTestCase):
    """RecordReader yields records whole, byte by byte, and keeps trailing bytes."""

    def test_whole(self) -> None:
        """Fed a whole journal at once, the reader returns every effect in order."""
        reader = RecordReader()
        reader.feed(journal_bytes(EFFECTS))
        self.assertEqual(read_all(reader), EFFECTS)
        self.assertEqual(reader.header, records.Header(records.JOURNAL, 7))
        self.assertEqual(reader.finish(), 0)

    def test_noop_records_are_read_and_skipped_on_load(self) -> None:
        """A NOOP record (the journal's disk probe) reads back as (NOOP,) and replays as nothing."""
        data = journal_bytes(EFFECTS[:1]) + records.NOOP_RECORD + records.encode_effect(EFFECTS[1])
        reader = RecordReader()
        reader.feed(data)
        self.assertEqual(read_all(reader), [EFFECTS[0], (records.NOOP,), EFFECTS[1]])
        applied = []
        reader = RecordReader()
        reader.feed(data)
        reader.apply_all(applied.append)
        self.assertEqual(applied, EFFECTS[:2])

    def test_byte_by_byte(self) -> None:
        """Fed one byte at a time, each record appears only once its last byte arrives."""
        data = journal_bytes(EFFECTS)
        ends = []
        offset = records.HEADER_SIZE
        for effect in EFFECTS:
            offset += len(records.encode_effect(effect))
            ends.append(offset)
        reader = RecordReader()
        got = []
        for index in range(len(data)):
            reader.feed(data[index : index + 1])
            new = read_all(reader)
            if new:
                self.assertEqual(index + 1, ends[len(got)])
            got.extend(new)
            self.assertEqual(reader.offset + reader.buffered, index + 1)
        self.assertEqual(got, EFFECTS)

    def test_trailing_bytes_stay_buffered(self) -> None:
        """An incomplete record after complete ones stays buffered and counts as a torn tail."""
        extra = records.encode_effect((SET, b"x", b"y", 0))[:5]
        reader = RecordReader()
        reader.feed(journal_bytes(EFFECTS) + extra)
        self.assertEqual(read_all(reader), EFFECTS)
        self.assertEqual(reader.buffered, 5)
        self.assertEqual(reader.finish(), 5)
        self.assertEqual(reader.offset, len(journal_bytes(EFFECTS)))

    def test_apply_all_matches_next_record(self) -> None:
        """The bulk path applies the same effects as the careful path, whole and byte by byte."""
        data = journal_bytes(EFFECTS)
        reader = RecordReader()
        reader.feed(data)
        self.assertEqual(apply_all(reader), EFFECTS)
        reader = RecordReader()
        got = []
        for index in range(len(data)):
            reader.feed(data[index : index + 1])
            reader.apply_all(got.append)
        self.assertEqual(got, EFFECTS)
        self.assertEqual(reader.offset, len(data))

    def test_batched_sets_keep_their_order(self) -> None:
        """SET records go to load_items in batches, each handed over before the next non-SET."""
        effect_list = [(SET, b"a", b"1", 0), (SET, b"b", b"2", 5), (DEL, b"a"),
                       (SET, b"a", b"3", 0), (FLUSH,), (SET, b"c", b"4", 0)]
        calls = []
        reader = RecordReader()
        reader.feed(journal_bytes(effect_list))
        count = reader.apply_all(lambda e: calls.append(("apply", e)),
                                 lambda k, v, a: calls.append(("batch", list(k), list(v), list(a))))
        self.assertEqual(count, 6)
        self.assertEqual(calls, [
            ("batch", [b"a", b"b"], [b"1", b"2"], [0, 5]),
            ("apply", (DEL, b"a")),
            ("batch", [b"a"], [b"3"], [0]),
            ("apply", (FLUSH,)),
            ("batch", [b"c"], [b"4"], [0]),
        ])

    def test_batched_byte_by_byte(self) -> None:
        """The batched path gives the same effects fed byte by byte and with trailing bytes."""
        data = journal_bytes(EFFECTS)
        reader = RecordReader()
        got = []
        for index in range(len(data)):
            reader.feed(data[index : index + 1])
            got.extend(apply_batched(reader))
        self.assertEqual(got, EFFECTS)
        extra = records.encode_effect((SET, b"x", b"y", 0))[:7]
        reader = RecordReader()
        reader.feed(data + extra)
        self.assertEqual(apply_batched(reader), EFFECTS)
        self.assertEqual(reader.finish(), 7)

    @settings(max_examples=200, deadline=None)
    @given(st.lists(effects, max_size=20), st.integers(1, 50))
    def test_roundtrip(self, effect_list, step) -> None:
        """Any effect list survives encoding and reading in chunks of any size, by both paths."""
        data = journal_bytes(effect_list)
        for method in (read_all, apply_all, apply_batched):
            reader = RecordReader()
            got = []
            for start in range(0, len(data), step):
                reader.feed(data[start : start + step])
                got.extend(method(reader))
            self.assertEqual(got, effect_list)
            self.assertEqual(reader.finish(), 0)

    def test_snapshot_structure(self) -> None:
        """A snapshot reads as SET records then END with the right count."""
        data = (records.encode_header(records.SNAPSHOT, 3) + records.encode_set(b"a", b"1", 0)
                + records.encode_set(b"b", b"2", 9) + records.encode_end(2))
        reader = RecordReader()
        reader.feed(data)
        self.assertEqual(apply_all(reader), [(SET, b"a", b"1", 0), (SET, b"b", b"2", 9)])
        self.assertEqual(reader.end_count, 2)
        reader = RecordReader()
        reader.feed(data)
        self.assertEqual(read_all(reader)[-1], (END, 2))

    def test_snapshot_rules(self) -> None:
        """Non-SETs in snapshots, bad END counts, data after END and END in journals are corrupt."""
        snap = records.encode_header(records.SNAPSHOT, 3)
        cases = [
            snap + records.encode_effect((DEL, b"a")),
            snap + records.encode_set(b"a", b"1", 0) + records.encode_end(5),
            snap + records.encode_end(0) + records.encode_set(b"a", b"1", 0),
            records.encode_header(records.JOURNAL, 3) + records.encode_end(0),
        ]
        for data in cases:
            for reader_method in (read_all, apply_all, apply_batched):
                reader = RecordReader()
                reader.feed(data)
                self.assertRaises(CorruptRecord, reader_method, reader)

    def test_select_in_a_journal_is_corrupt(self) -> None:
        """SELECT belongs to snapshots: in a journal it is reported as corruption."""
        reader = RecordReader()
        reader.feed(records.encode_header(records.JOURNAL, 1) + records.encode_marker((SELECT, 1)))
        self.assertRaises(CorruptRecord, read_all, reader)


class DamageTests(SynchronousTestCase):
    """Torn tails are told apart from corruption before the tail."""

    def test_torn_tail_at_every_offset(self) -> None:
        """Cutting the file inside its last records keeps exactly the complete records before it."""
        data = journal_bytes(EFFECTS)
        starts = []
        offset = records.HEADER_SIZE
        for effect in EFFECTS:
            starts.append(offset)
            offset += len(records.encode_effect(effect))
        starts.append(offset)
        for cut in range(0, len(data) + 1):
            complete = sum(1 for s in starts[1:] if s <= cut)
            for method in (read_all, apply_all, apply_batched):
                reader = RecordReader()
                reader.feed(data[:cut])
                self.assertEqual(method(reader), EFFECTS[:complete], "cut at %d" % cut)
                valid = starts[complete] if cut >= records.HEADER_SIZE else 0
                self.assertEqual(reader.offset, valid)
                self.assertEqual(reader.finish(), cut - valid)

    def test_bit_flip_before_tail(self) -> None:
        """A bit flip in any record but the last raises CorruptRecord at its offset or earlier."""
        data = journal_bytes(EFFECTS)
        last = len(data) - len(records.encode_effect(EFFECTS[-1]))
        for position in range(records.HEADER_SIZE, last):
            for bit in (0, 7):
                damaged = bytearray(data)
                damaged[position] ^= 1 << bit
                for method in (read_all, apply_all, apply_batched):
                    reader = RecordReader("j")
                    reader.feed(bytes(damaged))
                    try:
                        method(reader)
                    except CorruptRecord as exc:
                        self.assertLessEqual(exc.offset, position)
                        self.assertGreaterEqual(exc.offset, records.HEADER_SIZE)
                    else:
                        # Only a length flip that reaches past EOF can look torn.
                        self.assertGreater(reader.finish(), 0,
                                           "flip at %d bit %d" % (position, bit))

    def test_header_flip(self) -> None:
        """Any bit flip in the file header raises CorruptRecord at offset 0."""
        data = journal_bytes(EFFECTS)
        for position in range(records.HEADER_SIZE):
            damaged = bytearray(data)
            damaged[position] ^= 0x10
            reader = RecordReader()
            reader.feed(bytes(damaged))
            exc = self.assertRaises(CorruptRecord, read_all, reader)
            self.assertEqual(exc.offset, 0)

    def test_zero_filled_tail(self) -> None:
        """Zero bytes at the end read as a torn tail; a non-zero byte after them is corruption."""
        data = journal_bytes(EFFECTS)
        reader = RecordReader()
        reader.feed(data + b"\0" * 100)
        self.assertEqual(apply_all(reader), EFFECTS)
        self.assertEqual(reader.finish(), 100)
        reader.feed(b"\x01")
        self.assertRaises(CorruptRecord, read_all, reader)

    def test_huge_length_is_corrupt(self) -> None:
        """A length beyond the maximum record size is corruption, not a torn tail."""
        data = journal_bytes(EFFECTS[:1]) + b"\xff\xff\xff\xff\x00\x00\x00\x00xyz"
        reader = RecordReader()
        reader.feed(data)
        self.assertRaises(CorruptRecord, read_all, reader)
