"""The keyspace's side of typed values: type checks, logged operations and their undo.

A base class of Keyspace (engine/keyspace.py), kept apart so that the string hot path there
stays short. See engine/types.py for the operation contract.
"""

from __future__ import annotations

from kvtwist.engine.types import OPS, TYPES, Frozen, wrongtype

# The opcode of a logged operation (also engine/keyspace.MUTATE, which imports this module).
MUTATE = 13
# An undo entry's value slot for an operation: ``(keyspace, key, MUTATED, (value, inverse,
# old expiry, existed))``.
MUTATED = object()
# Estimated bytes a key costs beyond its key and value (engine/keyspace.PER_KEY).
_PER_KEY = 120


class TypedKeys:
    """Typed-value methods of a Keyspace (which provides data, expires, meter, log, undo)."""

    # Whether this keyspace ever held a typed value (so string-only paths stay C-level).
    typed_keys = False
    # Called as ``on_emptied(keyspace, key)`` after an operation emptied (so removed) ``key``
    # and was logged: the notifier's generic "del" event, which Redis tells after the
    # command's own. None (no cost) while nobody listens.
    on_emptied = None

    def get_string(self, key):
        """Return a live key's string value, None when missing; raise WRONGTYPE otherwise."""
        value = self.get(key)
        if value is None or value.__class__ is bytes:
            return value
        raise wrongtype()

    def get_typed(self, key, cls):
        """Return a live key's value when it is a ``cls``, None when missing; raise WRONGTYPE."""
        value = self.peek(key)
        if value is None or value.__class__ is cls:
            return value
        raise wrongtype()

    def mutate(self, key, cls, opcode: int, args: tuple):
        """Apply operation ``opcode`` with ``args`` to ``key``'s ``cls`` value; return its result.

        A missing key starts as an empty ``cls`` (kept only if the operation adds to it);
        another type raises WRONGTYPE; a value the operation empties is removed (with its
        expiry). The operation is logged as ``(MUTATE, key, code, opcode, args)`` and, while
        the journal tracks undo, remembered with its inverse. Costs the operation's own.
        """
        data = self.data
        value = self.peek(key)
        existed = value is not None
        if not existed:
            value = cls()
        elif value.__class__ is not cls:
            raise wrongtype()
        before = value.nbytes
        result, inverse = OPS[(cls.code, opcode)](value, args)
        meter = self.meter
        emptied = False
        if not existed:
            if not value:
                return result
            self._inserted(key)
            data[key] = value
            self.typed_keys = True
            meter.used += len(key) + _PER_KEY + value.nbytes
            at = 0
        else:
            at = self.expires.get(key, 0)
            meter.used += value.nbytes - before
            if not value:
                self._remove_emptied(key, value)
                emptied = True
        if self.undo is not None:
            self.undo.append((self, key, MUTATED, (value, inverse, at, existed)))
        if self.log is not None:
            self.log((MUTATE, key, cls.code, opcode, args))
        if emptied and self.on_emptied is not None:
            self.on_emptied(self, key)
        return result

    def _remove_emptied(self, key, value) -> None:
        # A collection emptied by an operation disappears, expiry and all (not logged: the
        # replayed operation empties it again).
        del self.data[key]
        self.expires.pop(key, None)
        self.access.pop(key, None)
        self.meter.used -= len(key) + _PER_KEY + value.nbytes
        self._removed(key)

    def _undo_mutation(self, key, entry: tuple, changed: list) -> None:
        """Take one operation back: put its value back if it was emptied, run the inverse."""
        value, inverse, at, existed = entry
        data, meter = self.data, self.meter
        if data.get(key) is not value:
            # The operation emptied it (newer entries are undone already, so the key is free).
            self._inserted(key)
            data[key] = value
            meter.used += len(key) + _PER_KEY + value.nbytes
            if at:
                self.expires[key] = at
        before = value.nbytes
        inverse()
        meter.used += value.nbytes - before
        if not existed or not value:
            self._remove_emptied(key, value)
        changed.append((self, (2, key)))  # DEL: observers forget the key

    def apply_mutation(self, effect: tuple) -> None:
        """Replay ``(MUTATE, key, code, opcode, args)`` without logging (journal recovery)."""
        _, key, code, opcode, args = effect
        data = self.data
        value = data.get(key)
        cls = TYPES[code]
        if value is None:
            value = cls()
            OPS[(code, opcode)](value, args)
            if value:
                self._inserted(key)
                data[key] = value
                self.typed_keys = True
            return
        if value.__class__ is not cls:
            raise ValueError("operation on a key of another type")
        OPS[(code, opcode)](value, args)
        if not value:
            del data[key]
            self.expires.pop(key, None)
            self.access.pop(key, None)
            self._removed(key)

    @staticmethod
    def frozen_item(item: tuple) -> tuple:
        """Return a snapshot item ``(key, value, at)`` with its typed value frozen."""
        key, value, at = item
        return (key, Frozen(value.code, value.frozen()), at)
