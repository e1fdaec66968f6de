"""A minimal typed value for the tests of the typed-value machinery (not a Redis type).

A Bag is a list of bytes; ADD appends its args, TAKE removes the last ``int(args[0])``
items and returns them. Neither is idempotent, which is what the journal tests need.
"""

from __future__ import annotations

from kvtwist.engine.types import TypedValue, register_op, register_type

ADD, TAKE = 1, 2


@register_type
class Bag(TypedValue):
    """A list of bytes; nbytes counts 10 per item plus the bytes."""

    __slots__ = ("items",)

    code = 250
    type_name = b"bag"

    def __init__(self, items=()) -> None:
        self.items = list(items)
        self.nbytes = sum(10 + len(item) for item in self.items)

    def __len__(self) -> int:
        return len(self.items)

    def encoding(self) -> bytes:
        return b"baglist"

    def copy(self) -> "Bag":
        return Bag(self.items)

    def frozen(self):
        return list(self.items)

    @classmethod
    def flatten(cls, frozen) -> list:
        return list(frozen)

    @classmethod
    def from_flat(cls, items: list) -> "Bag":
        if b"malformed" in items:
            raise ValueError("malformed bag")
        return Bag(items)

    def export_commands(self, key: bytes) -> list:
        return [[b"RPUSH", key] + self.items]


@register_op(Bag, ADD)
def add(bag: Bag, args: tuple):
    """Append every arg; return the new length."""
    bag.items.extend(args)
    bag.nbytes += sum(10 + len(item) for item in args)

    def inverse() -> None:
        del bag.items[len(bag.items) - len(args):]
        bag.nbytes -= sum(10 + len(item) for item in args)
    return len(bag.items), inverse


@register_op(Bag, TAKE)
def take(bag: Bag, args: tuple):
    """Remove and return the last ``int(args[0])`` items."""
    count = int(args[0])
    taken = bag.items[len(bag.items) - count:]
    del bag.items[len(bag.items) - count:]
    bag.nbytes -= sum(10 + len(item) for item in taken)

    def inverse() -> None:
        bag.items.extend(taken)
        bag.nbytes += sum(10 + len(item) for item in taken)
    return taken, inverse
