"""Tests for kvtwist.storage.typedrecords: TYPED, MUTATE and SKIP records."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st
from twisted.trial.unittest import SynchronousTestCase

from kvtwist.engine.keyspace import MUTATE, SET
from kvtwist.engine.types import Frozen
from kvtwist.storage import records, typedrecords
from kvtwist.storage.reader import RecordReader
from kvtwist.storage.records import JOURNAL, SNAPSHOT, CorruptRecord
from tests.engine.bagtype import ADD, Bag

items = st.lists(st.binary(max_size=20), min_size=1, max_size=10)


def read_all(kind: int, body: bytes) -> list:
    reader = RecordReader()
    reader.feed(records.encode_header(kind, 1) + body)
    found = []
    reader.apply_all(found.append)
    return found


class RoundTripTests(SynchronousTestCase):
    """Typed records decode to the effects they were encoded from."""

    @given(items, st.integers(0, 2 ** 63))
    def test_typed_set(self, values: list, at: int) -> None:
        """A SET of a typed value is a TYPED record decoding to an equal new value."""
        [effect] = read_all(JOURNAL, records.encode_effect((SET, b"k", Bag(values), at)))
        self.assertEqual((effect[0], effect[1], effect[2].items, effect[3]),
                         (SET, b"k", values, at))

    @given(items)
    def test_mutate(self, args: list) -> None:
        """A MUTATE record keeps key, type, opcode and arguments."""
        effect = (MUTATE, b"key", Bag.code, ADD, tuple(args))
        self.assertEqual(read_all(JOURNAL, records.encode_effect(effect)), [effect])

    def test_in_db(self) -> None:
        """Typed effects travel inside IN_DB records of other databases."""
        effect = (8, 3, (MUTATE, b"k", Bag.code, ADD, (b"a",)))
        self.assertEqual(read_all(JOURNAL, records.encode_effect(effect)), [effect])

    def test_snapshot_of_frozen_value_and_skip(self) -> None:
        """A snapshot holds a Frozen typed value and a SKIP count before its END."""
        body = (records.encode_set(b"k", Frozen(Bag.code, [b"x"]), 5)
                + records.encode_marker((typedrecords.SKIP, 7)) + records.encode_end(2))
        found = read_all(SNAPSHOT, body)
        self.assertEqual(found[0][2].items, [b"x"])
        self.assertEqual(found[1], (typedrecords.SKIP, 7))


class MalformedTests(SynchronousTestCase):
    """Malformed typed records are corrupt, never half-applied."""

    def check_bad(self, payload: bytes) -> None:
        self.assertRaises(ValueError, records.decode_payload, payload)

    def test_truncated_items(self) -> None:
        """An item count promising more than the record holds is refused."""
        payload = typedrecords.mutate_payload((MUTATE, b"k", Bag.code, ADD, (b"abc",)))
        self.check_bad(payload[:-1])
        self.check_bad(payload + b"x")

    def test_unknown_type_or_operation(self) -> None:
        """A type or operation this server does not know is refused."""
        self.check_bad(typedrecords.mutate_payload((MUTATE, b"k", Bag.code, 99, ())))
        payload = bytearray(typedrecords.typed_payload(b"k", Bag([b"a"]), 0))
        payload[5] = 200  # the type byte
        self.check_bad(bytes(payload))

    def test_value_the_type_refuses(self) -> None:
        """Items the type's from_flat refuses make the record corrupt."""
        self.check_bad(typedrecords.typed_payload(b"k", Bag([b"malformed"]), 0))

    def test_skip_only_in_snapshots(self) -> None:
        """A SKIP record in a journal is corrupt."""
        with self.assertRaises(CorruptRecord):
            read_all(JOURNAL, records.encode_marker((typedrecords.SKIP, 1)))
