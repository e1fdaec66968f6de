"""Typed values (hashes, lists, sets, sorted sets): the contract every type keeps, and the
registries the keyspace, the records and the commands find them through.

A string is a ``bytes`` object in the keyspace; every other type is an instance of a
L{TypedValue} subclass, registered once with a small type ``code`` (the record format's)
by its family module (engine/t_hash.py, t_list.py, t_set.py, t_zset.py).

A change to a typed value is an *operation*: ``(code, opcode, args)`` with ``args`` a tuple
of bytes. ``register_op`` names the function that applies it; the keyspace calls it for
the command (``Keyspace.mutate``), logs ``(MUTATE, key, code, opcode, args)``, and the
journal's replay calls the same function, so a replayed operation does exactly what the
command did. An operation function validates nothing (the command parsed its arguments
first) and returns ``(result, inverse)``: the command's result and a function of no
arguments that takes the change back (the journal's rollback of writes the disk refused).
Operations must be deterministic: a command that picks at random (SPOP, SRANDMEMBER)
logs what it picked (an SREM of those members), INCRBYFLOAT-like ones log the new value.
An operation is not idempotent (LPUSH twice pushes twice); the journal keeps that safe by
skipping, after a compaction, the records its snapshot already holds (storage/journal.py).
"""

from __future__ import annotations

from kvtwist.wire.replies import CommandError

WRONGTYPE = "WRONGTYPE Operation against a key holding the wrong kind of value"

# Record type codes (storage/records.py writes them; they never change meaning).
HASH, LIST, SET, ZSET = 1, 2, 3, 4

# Estimated bytes one element costs beyond its own bytes (a dict/set slot, object headers);
# used for INFO's used_memory and maxmemory. Types may use their own figure.
PER_ELEMENT = 64


class TypedValue:
    """The contract of a typed value; subclasses hold the data and keep ``nbytes``.

    ``nbytes`` is the estimated memory of the value (kept up to date by its operations,
    O(1) each); ``len()`` its element count. A value whose truth is false (by default: no
    elements) is removed by the keyspace; a type that outlives its last element (a stream)
    defines ``__bool__``.
    """

    __slots__ = ("nbytes",)

    code = 0  # the record type code
    type_name = b"none"  # what TYPE answers
    rdb_type = -1  # the RDB object type DUMP writes (rdb.py)

    def __len__(self) -> int:
        raise NotImplementedError

    def encoding(self) -> bytes:
        """Return what OBJECT ENCODING answers for this value."""
        raise NotImplementedError

    def copy(self) -> "TypedValue":
        """Return an independent copy (COPY): O(n)."""
        raise NotImplementedError

    def frozen(self):
        """Return a copy that later operations do not change, cheap enough for the reactor
        thread (a C-level copy of a dict, list or set); ``flatten`` encodes it elsewhere."""
        raise NotImplementedError

    @classmethod
    def flatten(cls, frozen) -> list:
        """Return a frozen copy as a flat list of bytes (the record format's items)."""
        raise NotImplementedError

    @classmethod
    def from_flat(cls, items: list) -> "TypedValue":
        """Return a new value from ``flatten``'s items; ValueError when they are malformed."""
        raise NotImplementedError

    def export_commands(self, key: bytes) -> list:
        """Return argument vectors that recreate this value in redis-server (kvtwist export),
        each of bounded size (long values are written in several commands)."""
        raise NotImplementedError


class Frozen:
    """A typed value's snapshot copy: its type and the frozen data (see TypedValue.frozen)."""

    __slots__ = ("code", "data")

    def __init__(self, code: int, data) -> None:
        self.code = code
        self.data = data

    def flat(self) -> list:
        """Return the flat items of this copy (snapshot thread)."""
        return TYPES[self.code].flatten(self.data)


# code -> TypedValue subclass; (code, opcode) -> operation function.
TYPES: dict = {}
OPS: dict = {}


def register_type(cls):
    """Class decorator: make ``cls`` the type of its ``code``."""
    if cls.code in TYPES and TYPES[cls.code] is not cls:
        raise ValueError("type code %d is taken by %r" % (cls.code, TYPES[cls.code]))
    TYPES[cls.code] = cls
    return cls


def register_op(cls, opcode: int):
    """Decorator: ``function(value, args) -> (result, inverse)`` applies ``opcode`` to a ``cls``."""
    def decorate(function):
        OPS[(cls.code, opcode)] = function
        return function
    return decorate


def wrongtype() -> CommandError:
    """Return the WRONGTYPE error to raise."""
    return CommandError(WRONGTYPE)


def type_name(value) -> bytes:
    """Return what TYPE answers for a stored value (``bytes``: a string)."""
    if value.__class__ is bytes:
        return b"string"
    return value.type_name


def size_of(value) -> int:
    """Return the estimated bytes of a stored value (its length for a string)."""
    if value.__class__ is bytes:
        return len(value)
    return value.nbytes
