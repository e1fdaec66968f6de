"""The data: a dict of bytes with expiry driven by an injected clock, logging every effect."""

from __future__ import annotations

import bisect
import random
import zlib

from kvtwist.engine.glob import compile_glob

# Effect opcodes: what the keyspace logs for each mutation (see docs/design.md).
SET, DEL, EXPIRE_AT, PERSIST, FLUSH = 1, 2, 3, 4, 5

# Active expiry repeats a round while more than this share of the sample had expired (as Redis).
_SWEEP_REPEAT_RATIO = 0.25
_SWEEP_MAX_ROUNDS = 16


class Keyspace:
    """Keys to bytes values, absolute millisecond expiry times, and an optional effect log.

    A key with an expiry time ``at`` is alive while ``now_ms <= at`` (Redis's rule) and
    disappears on the first access after that, or when ``sweep`` samples it.
    """

    def __init__(self, clock, log=None) -> None:
        self.clock = clock
        self.log = log
        self.data: dict = {}
        self.expires: dict = {}
        self.expired_keys = 0
        self._sweep_keys: list = []
        self._sweep_position = 0
        self._scan_order = None

    def __len__(self) -> int:
        return len(self.data)

    def now_ms(self) -> int:
        """Return the clock's time in whole milliseconds."""
        return int(self.clock.seconds() * 1000)

    # -- reading ------------------------------------------------------------------

    def _alive(self, key) -> bool:
        # Only called for keys in self.expires.
        if self.now_ms() > self.expires[key]:
            del self.data[key]
            del self.expires[key]
            self.expired_keys += 1
            return False
        return True

    def get(self, key):
        """Return the value of a live key, or None."""
        if key in self.expires and not self._alive(key):
            return None
        return self.data.get(key)

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
        self.data[key] = value
        if expire_at_ms:
            self.expires[key] = expire_at_ms
        elif key in self.expires:
            del self.expires[key]
        if self.log is not None:
            self.log((SET, key, value, expire_at_ms))

    def delete(self, key) -> bool:
        """Remove a live key; return whether it existed."""
        if not self.exists(key):
            return False
        del self.data[key]
        self.expires.pop(key, None)
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
        self.expires[key] = at_ms
        if self.log is not None:
            self.log((EXPIRE_AT, key, at_ms))

    def persist(self, key) -> bool:
        """Remove a live key's expiry; return whether it had one."""
        if key not in self.expires or not self._alive(key):
            return False
        del self.expires[key]
        if self.log is not None:
            self.log((PERSIST, key))
        return True

    def flush(self) -> None:
        """Remove every key."""
        self.data.clear()
        self.expires.clear()
        self._sweep_keys = []
        self._scan_order = None
        if self.log is not None:
            self.log((FLUSH,))

    # -- replay and snapshots -----------------------------------------------------

    def apply(self, effect) -> None:
        """Replay one logged effect without logging it (journal recovery)."""
        op = effect[0]
        if op == SET:
            key, value, at = effect[1], effect[2], effect[3]
            self.data[key] = value
            if at:
                self.expires[key] = at
            else:
                self.expires.pop(key, None)
        elif op == DEL:
            self.data.pop(effect[1], None)
            self.expires.pop(effect[1], None)
        elif op == EXPIRE_AT:
            if effect[1] in self.data:
                self.expires[effect[1]] = effect[2]
        elif op == PERSIST:
            self.expires.pop(effect[1], None)
        elif op == FLUSH:
            self.data.clear()
            self.expires.clear()
        else:
            raise ValueError("unknown effect opcode %r" % (op,))

    def load_items(self, keys: list, values: list, expire_ats: list) -> None:
        """Replay a batch of SET effects given as parallel lists, in order, without logging.

        The bulk form of ``apply`` for recovery: the dict is filled in one C-level update.
        """
        self.data.update(zip(keys, values))
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

    def snapshot_items(self) -> list:
        """Return ``[(key, value, expire_at_ms), ...]`` for every stored key (a copy)."""
        expires = self.expires
        return [(key, value, expires.get(key, 0)) for key, value in self.data.items()]

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

    def random_key(self):
        """Return a random live key, or None when there is none."""
        # Like Redis, retry a bounded number of times when the draw is an expired key.
        for _ in range(100):
            if not self.data:
                return None
            key = _sample_one(self.data)
            if self.exists(key):
                return key
        return None

    def scan(self, cursor: int, count: int):
        """Return ``(next_cursor, keys)`` for one SCAN step; ``next_cursor`` 0 means done.

        Keys are visited in crc32 order and the cursor is the next crc32 (+1), so every key
        live for the whole iteration is returned at least once, whatever changes meanwhile.
        The sorted order is cached from the step with cursor 0: O(count + log n) per step.
        """
        if cursor == 0 or self._scan_order is None:
            pairs = sorted((zlib.crc32(key) + 1, key) for key in self.data)
            self._scan_order = ([h for h, _ in pairs], [key for _, key in pairs])
        hashes, ordered = self._scan_order
        start = bisect.bisect_left(hashes, cursor)
        end = min(start + count, len(ordered))
        # Never split one hash value across steps, or the cursor could not move past it.
        while 0 < end < len(ordered) and hashes[end] == hashes[end - 1]:
            end += 1
        found = [key for key in ordered[start:end] if self.exists(key)]
        return (hashes[end] if end < len(ordered) else 0), found

    # -- expiry -------------------------------------------------------------------

    def _expire_now(self, key) -> None:
        del self.data[key]
        del self.expires[key]
        self.expired_keys += 1

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


def _sample_one(data: dict):
    # O(n): dicts have no random access, and RANDOMKEY is rare enough not to index for it.
    skip = random.randrange(len(data))
    for index, key in enumerate(data):
        if index == skip:
            return key
    return None


