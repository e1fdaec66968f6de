"""The data: a dict of bytes with expiry driven by an injected clock, logging every effect."""

from __future__ import annotations

import collections
from itertools import filterfalse

from kvtwist.engine.glob import compile_glob
from kvtwist.engine.scanorder import ScanOrder
from kvtwist.engine.strbuf import StringBuffer, read, write_range
from kvtwist.engine.typedkeys import MUTATE, MUTATED, TypedKeys
from kvtwist.engine.types import size_of

# Effect opcodes: what the keyspace logs for each mutation (see docs/design.md).
SET, DEL, EXPIRE_AT, PERSIST, FLUSH = 1, 2, 3, 4, 5
# (6 is the journal's NOOP record.) SETRANGE: bytes written into a value at an offset.
SETRANGE = 7
# (8-11: databases.py; 12: the records' typed SET.) MUTATE (13, from typedkeys): an
# operation on a typed value, ``(MUTATE, key, type code, opcode, args)`` (engine/types.py).

# Active expiry repeats a round while more than this share of the sample had expired (as Redis).
_SWEEP_REPEAT_RATIO = 0.25
_SWEEP_MAX_ROUNDS = 16

# The undo entry of a FLUSH: its key slot holds this marker, the two others the old dicts.
_FLUSHED = object()
# The value slot of a setrange's undo entry on a StringBuffer written in place; the expiry
# slot holds ``(buffer, offset, overwritten bytes, old length)`` (engine/strbuf.py).
_PATCHED = object()


# Estimated bytes a key costs beyond its key and value lengths (CPython: two bytes objects,
# a dict slot and a scan-order slot; sys.getsizeof is unavailable on PyPy).
PER_KEY = 120


class Meter:
    """The estimated bytes of a store's data, ``used``, shared by all its databases.

    Each key counts ``len(key) + len(value) + PER_KEY``; kept up to date by every change
    (O(1) each), recounted in full after loading (``Keyspace.recount``).
    """

    __slots__ = ("used",)

    def __init__(self) -> None:
        self.used = 0


def rollback(undo) -> list:
    """Undo the entries of an undo deque, newest first; return the ``(keyspace, effect)`` changes.

    Each entry's first element is the object that made it (a Keyspace, or the Databases of a
    SWAPDB) and knows how to undo it.
    """
    changed: list = []
    while undo:
        entry = undo.pop()
        entry[0]._undo(entry, changed)
    return changed


class Keyspace(TypedKeys, ScanOrder):
    """Keys to values (bytes, or a typed value: engine/types.py), absolute millisecond expiry
    times, and an optional effect log.

    A key with an expiry time ``at`` is alive while ``now_ms <= at`` (Redis's rule) and
    disappears on the first access after that, or when ``sweep`` samples it. SCAN and
    RANDOMKEY walk the scan order (engine/scanorder.py).
    """

    lfu = False  # the Evictor while maxmemory-policy is an LFU one (engine/evict.py)

    def __init__(self, clock, log=None, index: int = 0, meter=None) -> None:
        self.clock = clock
        self.meter = meter if meter is not None else Meter()
        self.log = log
        self.index = index  # the database number (SELECT) this keyspace is
        # Called with each key removed because its time ran out (keyspace notifications).
        self.on_expired = None
        self.data: dict = {}
        self.expires: dict = {}
        self.expired_keys = 0
        self._sweep_keys: list = []
        self._sweep_position = 0
        self._reset_order()
        # While a journal may still fail logged effects: (key, old value or None, old expiry)
        # for each, oldest first (see track_undo).
        self.undo = None
        # key -> clock time of its last access (OBJECT IDLETIME; stamped by objects.touched);
        # a key without one counts as accessed at access_epoch.
        self.access: dict = {}
        self.access_epoch = clock.seconds()

    def __len__(self) -> int:
        return len(self.data)

    def now_ms(self) -> int:
        """Return the clock's time in whole milliseconds."""
        return int(self.clock.seconds() * 1000)

    # -- reading ------------------------------------------------------------------

    def _alive(self, key) -> bool:
        # Only called for keys in self.expires.
        if self.now_ms() > self.expires[key]:
            self._expire_now(key)
            return False
        return True

    def get(self, key):
        """Return the value of a live key, or None. A StringBuffer is given as a bytes copy
        (O(n): the caller owns it, later writes leave it be; strbuf.read); see ``peek``."""
        if key in self.expires and not self._alive(key):
            return None
        value = self.data.get(key)
        if value.__class__ is StringBuffer:
            return read(self.data, key, value)
        return value

    def peek(self, key):
        """Return the value of a live key as it is held (a StringBuffer too, not copied: to
        read at once, never to keep), or None (found by ``get``, so a key-miss listener
        sees the miss). O(1)."""
        value = self.data.get(key)
        if value is None or key in self.expires and not self._alive(key):
            return self.get(key)
        return value

    def exists(self, key) -> bool:
        """Return whether the key is live."""
        if key in self.expires:
            return self._alive(key)
        return key in self.data

    def expire_of(self, key) -> int:
        """Return a live key's absolute expiry in ms, or 0 when it has none."""
        return self.expires.get(key, 0)

    def ttl_ms(self, key) -> int:
        """Return the remaining ms (at least 0), -1 with no expiry, -2 if the key is missing."""
        if not self.exists(key):
            return -2
        at = self.expires.get(key)
        if at is None:
            return -1
        return max(0, at - self.now_ms())

    # -- writing ------------------------------------------------------------------

    def set(self, key, value, expire_at_ms: int = 0) -> None:
        """Store a value; ``expire_at_ms`` 0 clears any expiry (pass the old one to keep it)."""
        data = self.data
        old = data.get(key)
        undo = self.undo
        if undo is not None:
            undo.append((self, key, old, self.expires.get(key, 0)))
        if old is None:
            self._inserted(key)
            self.meter.used += len(key) + size_of(value) + PER_KEY
        else:
            self.meter.used += size_of(value) - size_of(old)
        data[key] = value
        if value.__class__ is not bytes:
            self.typed_keys = True
        if expire_at_ms:
            self.expires[key] = expire_at_ms
        elif key in self.expires:
            del self.expires[key]
        if self.log is not None:
            self.log((SET, key, value, expire_at_ms))

    def setrange(self, key, offset: int, patch: bytes) -> int:
        """Write ``patch`` into a key's value at ``offset``; return the value's new length.

        A missing key is created (no expiry) and a gap is filled with zero bytes; an
        existing key keeps its expiry. The log gets ``(SETRANGE, key, offset, patch)``, in
        proportion to the change: APPEND is a SETRANGE at the value's end. A value shorter
        than strbuf.PROMOTE is rebuilt (one copy); a longer one becomes a StringBuffer,
        then written in place: O(len(patch)) amortised, the undo entry keeping only the
        bytes overwritten (strbuf.write_range).
        """
        data = self.data
        old = self.peek(key)
        old_size = 0 if old is None else len(old)
        value, overwritten = write_range(old, offset, patch)
        undo = self.undo
        if undo is not None:
            undo.append((self, key, old, self.expires.get(key, 0)) if value is not old
                        else (self, key, _PATCHED, (value, offset, overwritten, old_size)))
        if old is None:
            self._inserted(key)
            self.meter.used += len(key) + PER_KEY
        data[key] = value
        if value.__class__ is StringBuffer:
            self.typed_keys = True  # values are not all bytes: the generic paths look
        self.meter.used += len(value) - old_size
        if self.log is not None:
            self.log((SETRANGE, key, offset, patch))
        return len(value)

    def delete(self, key) -> bool:
        """Remove a live key; return whether it existed."""
        if not self.exists(key):
            return False
        value = self.data.pop(key)
        if self.undo is not None:
            self.undo.append((self, key, value, self.expires.get(key, 0)))
        self.meter.used -= len(key) + size_of(value) + PER_KEY
        self.expires.pop(key, None)
        self.access.pop(key, None)
        self._removed(key)
        if self.log is not None:
            self.log((DEL, key))
        return True

    def pop(self, key):
        """Remove a live key; return its value, or None when it was missing."""
        value = self.get(key)
        if value is not None:
            self.delete(key)
        return value

    def expire_at(self, key, at_ms: int) -> None:
        """Give a live key an absolute expiry; a time not in the future deletes it, as in Redis."""
        if at_ms <= self.now_ms():
            self.delete(key)
            return
        if self.undo is not None:
            self.undo.append((self, key, self.data.get(key), self.expires.get(key, 0)))
        self.expires[key] = at_ms
        if self.log is not None:
            self.log((EXPIRE_AT, key, at_ms))

    def persist(self, key) -> bool:
        """Remove a live key's expiry; return whether it had one."""
        if key not in self.expires or not self._alive(key):
            return False
        if self.undo is not None:
            self.undo.append((self, key, self.data[key], self.expires[key]))
        del self.expires[key]
        if self.log is not None:
            self.log((PERSIST, key))
        return True

    def flush(self) -> None:
        """Remove every key."""
        if self.undo is not None:
            self.undo.append((self, _FLUSHED, dict(self.data), dict(self.expires)))
        self.meter.used -= self.size()
        self.data.clear()
        self.expires.clear()
        self.access.clear()
        self._sweep_keys = []
        self._reset_order()
        if self.log is not None:
            self.log((FLUSH,))

    # -- undo: what a journal takes back when it cannot store a write ---------------

    def track_undo(self, undo=None) -> None:
        """From now on remember the state each logged effect replaced, until ``settle``.

        A journal calls this: it settles effects once durable and rolls back the rest when
        the disk refuses them. Costs one tuple per logged effect (a dict copy per FLUSH).
        Databases share one ``undo`` deque, so that effects are undone in the order logged.
        """
        self.undo = collections.deque() if undo is None else undo

    def settle(self, count: int) -> None:
        """Forget the replaced states of the oldest ``count`` logged effects (now durable)."""
        popleft = self.undo.popleft
        for _ in range(count):
            popleft()

    def rollback(self) -> list:
        """Undo every effect not settled yet, newest first, without logging.

        Returns the changes as ``(keyspace, effect)`` pairs for observers: ``(DEL, key)``
        for each key put back as it was, ``(FLUSH,)`` for an undone FLUSH. O(effects
        undone), plus the size of the keyspace an undone FLUSH held.
        """
        return rollback(self.undo)

    def _undo(self, entry: tuple, changed: list) -> None:
        """Put back what one undo entry ``(self, key, old value, old expiry)`` recorded."""
        _, key, value, at = entry
        data, expires = self.data, self.expires
        if value is MUTATED:
            self._undo_mutation(key, at, changed)
            return
        if value is _PATCHED:  # newer entries are undone: ``data[key]`` has this buffer's
            buffer, offset, overwritten, size = at  # bytes (it, or its copy: strbuf.read)
            data[key] = buffer
            self.meter.used += size - len(buffer)
            buffer.restore(offset, overwritten, size)
            changed.append((self, (DEL, key)))
            return
        if key is _FLUSHED:
            # Everything after the FLUSH is undone already: the keyspace is empty.
            data.update(value)
            self.meter.used += self.size()
            expires.update(at)
            self._reset_order()
            self._order = list(data)
            changed.append((self, (FLUSH,)))
            return
        current = data.get(key)
        if current is not None:
            self.meter.used -= len(key) + size_of(current) + PER_KEY
        if value is None:
            expires.pop(key, None)
            self.access.pop(key, None)
            if data.pop(key, None) is not None:
                self._removed(key)
        else:
            if key not in data:
                self._inserted(key)
            data[key] = value
            self.meter.used += len(key) + size_of(value) + PER_KEY
            if at:
                expires[key] = at
            else:
                expires.pop(key, None)
        changed.append((self, (DEL, key)))

    # -- replay and snapshots -----------------------------------------------------

    def apply(self, effect) -> None:
        """Replay one logged effect without logging it (journal recovery)."""
        op = effect[0]
        if op == SET:
            key, value, at = effect[1], effect[2], effect[3]
            data = self.data
            if key not in data:
                self._inserted(key)
            data[key] = value
            if value.__class__ is not bytes:
                self.typed_keys = True
            if at:
                self.expires[key] = at
            else:
                self.expires.pop(key, None)
        elif op == DEL:
            self.expires.pop(effect[1], None)
            self.access.pop(effect[1], None)
            if self.data.pop(effect[1], None) is not None:
                self._removed(effect[1])
        elif op == EXPIRE_AT:
            if effect[1] in self.data:
                self.expires[effect[1]] = effect[2]
        elif op == PERSIST:
            self.expires.pop(effect[1], None)
        elif op == FLUSH:
            self.data.clear()
            self.expires.clear()
            self.access.clear()
            self._reset_order()
        elif op == SETRANGE:
            key = effect[1]
            old = self.data.get(key)
            if old is None:
                self._inserted(key)
            self.data[key] = value = write_range(old, effect[2], effect[3])[0]
            if value.__class__ is StringBuffer:
                self.typed_keys = True
        elif op == MUTATE:
            self.apply_mutation(effect)
        else:
            raise ValueError("unknown effect opcode %r" % (op,))

    def load_items(self, keys: list, values: list, expire_ats: list) -> None:
        """Replay a batch of SET effects given as parallel lists, in order, without logging.

        The bulk form of ``apply`` for recovery: the dict is filled in one C-level update,
        and the new keys join the scan order in C-level passes too: O(batch).
        """
        data = self.data
        fresh = list(filterfalse(data.__contains__, keys))
        size = len(data)
        data.update(zip(keys, values))
        if fresh:
            if len(data) - size != len(fresh):
                fresh = list(dict.fromkeys(fresh))  # a new key twice in the batch
            tombstones = self._tombstones
            if tombstones:
                revived = tombstones.intersection(fresh)
                if revived:
                    tombstones -= revived
                    fresh = list(filterfalse(revived.__contains__, fresh))
            self._order.extend(fresh)
        expires = self.expires
        if any(expire_ats):
            for key, at in zip(keys, expire_ats):
                if at:
                    expires[key] = at
                elif key in expires:
                    del expires[key]
        elif expires:
            # Every key of the batch was set without expiry: drop the old ones in bulk.
            for key in expires.keys() & keys:
                del expires[key]

    def size(self) -> int:
        """Return the estimated bytes of this keyspace's keys and values: O(n), C-level."""
        data = self.data
        if self.typed_keys:
            return sum(map(len, data)) + sum(map(size_of, data.values())) + PER_KEY * len(data)
        return sum(map(len, data)) + sum(map(len, data.values())) + PER_KEY * len(data)

    def snapshot_items(self) -> list:
        """Return ``[(key, value, expire_at_ms), ...]`` for every stored key (a copy).

        A typed value is given as its frozen copy (types.Frozen), a StringBuffer as bytes:
        O(its size) here, its encoding left to the snapshot thread.
        """
        expires = self.expires
        items = [(key, value, expires.get(key, 0)) for key, value in self.data.items()]
        if self.typed_keys:
            items = [item if item[1].__class__ is bytes
                     else (item[0], bytes(item[1]), item[2]) if item[1].__class__ is StringBuffer
                     else self.frozen_item(item) for item in items]
        return items

    # -- iteration ----------------------------------------------------------------

    def live_keys(self) -> list:
        """Return every live key, expiring the dead ones found on the way."""
        if not self.expires:
            return list(self.data)
        now = self.now_ms()
        dead = [key for key, at in self.expires.items() if now > at]
        for key in dead:
            self._expire_now(key)
        return list(self.data)

    def keys(self, pattern: bytes) -> list:
        """Return the live keys matching a Redis glob pattern (``*`` alone: every key).

        O(n * len(key) * widest segment of the pattern) at worst: see glob.compile_glob.
        """
        if pattern == b"*":
            return self.live_keys()
        matches = compile_glob(pattern).matches
        return [key for key in self.live_keys() if matches(key)]

    # -- expiry -------------------------------------------------------------------

    def _expire_now(self, key) -> None:
        self.meter.used -= len(key) + size_of(self.data.pop(key)) + PER_KEY
        del self.expires[key]
        self.access.pop(key, None)
        self.expired_keys += 1
        self._removed(key)
        if self.on_expired is not None:
            self.on_expired(self, key)

    def sweep(self, limit: int = 20) -> int:
        """Active expiry: check ``limit`` keys with an expiry, repeating while over 25% had
        expired (bounded); return how many keys expired.

        Keys are visited round-robin over a snapshot of the expiring keys, refreshed after
        each pass, so each call costs O(limit) amortised and every key is eventually seen.
        """
        expired = 0
        now = self.now_ms()
        expires = self.expires
        for _ in range(_SWEEP_MAX_ROUNDS):
            if not expires:
                break
            if self._sweep_position >= len(self._sweep_keys):
                self._sweep_keys = list(expires)
                self._sweep_position = 0
            batch = self._sweep_keys[self._sweep_position:self._sweep_position + limit]
            self._sweep_position += limit
            hits = 0
            for key in batch:
                at = expires.get(key)
                if at is not None and now > at:
                    self._expire_now(key)
                    hits += 1
            expired += hits
            if hits <= len(batch) * _SWEEP_REPEAT_RATIO:
                break
        return expired
