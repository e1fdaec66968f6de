"""Tests for kvtwist.engine.types: the typed-value registries and helpers."""

from __future__ import annotations

from twisted.trial.unittest import SynchronousTestCase

from kvtwist.engine import types
from kvtwist.engine.types import TYPES, Frozen, TypedValue, register_type
from kvtwist.wire.replies import CommandError
from tests.engine.bagtype import Bag


class RegistryTests(SynchronousTestCase):
    """Types register by code, once."""

    def test_registered_by_code(self) -> None:
        """A registered type is found by its code."""
        self.assertIs(TYPES[Bag.code], Bag)

    def test_code_taken(self) -> None:
        """A second class with a taken code is refused."""
        class Other(TypedValue):
            code = Bag.code
        with self.assertRaises(ValueError):
            register_type(Other)


class HelperTests(SynchronousTestCase):
    """type_name, size_of, wrongtype and Frozen."""

    def test_type_name(self) -> None:
        """Strings are "string"; typed values answer their own name."""
        self.assertEqual(types.type_name(b"x"), b"string")
        self.assertEqual(types.type_name(Bag([b"a"])), b"bag")

    def test_size_of(self) -> None:
        """A string's size is its length; a typed value's its nbytes."""
        self.assertEqual(types.size_of(b"abc"), 3)
        self.assertEqual(types.size_of(Bag([b"ab"])), 12)

    def test_wrongtype(self) -> None:
        """wrongtype() is Redis's WRONGTYPE error."""
        error = types.wrongtype()
        self.assertIsInstance(error, CommandError)
        self.assertEqual(error.message,
                         "WRONGTYPE Operation against a key holding the wrong kind of value")

    def test_frozen_flat(self) -> None:
        """A Frozen copy flattens through its type, unaffected by later changes."""
        bag = Bag([b"a"])
        frozen = Frozen(Bag.code, bag.frozen())
        bag.items.append(b"b")
        self.assertEqual(frozen.flat(), [b"a"])
