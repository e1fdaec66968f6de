"""The scan order of a keyspace: SCAN with a stable cursor and RANDOMKEY, with no sort.

``_order`` holds one entry per stored key, in insertion order. Removing a key leaves its
entry in place, dead, and remembers the key in ``_tombstones``; inserting it again revives
that entry (no new one). Once dead entries outnumber live ones by more than
``compact_floor``, a compaction pass starts: each later removal moves it on by
``compact_step`` entries, shifting live entries down (order kept) and dropping dead ones,
so entries only ever move to lower positions.
"""

from __future__ import annotations

import random

# RANDOMKEY gives up (None) after this many draws of keys that had expired (each removed).
_RANDOM_EXPIRED_TRIES = 100
# RANDOMKEY compacts a small scan order after this many draws of dead entries in a row.
_RANDOM_DEAD_TRIES = 8


class ScanOrder:
    """The scan-order half of Keyspace, which provides ``data``, ``expires`` and ``_alive``."""

    compact_floor = 1024
    compact_step = 32

    def random_key(self):
        """Return a random live key, or None when there is none.

        Draws positions of the scan order until one holds a live key, so every key is
        equally likely: O(1) expected, as at least a third of the entries are live once
        there are ``compact_floor`` keys (below that, a run of dead draws compacts the small
        order). Keys found expired are removed; after 100 of them the answer is None.
        """
        expired_left = _RANDOM_EXPIRED_TRIES
        dead_draws = 0
        data, expires, randrange = self.data, self.expires, random.randrange
        while data and expired_left:
            order = self._order
            key = order[randrange(len(order))]
            if key not in data:
                dead_draws += 1
                if dead_draws >= _RANDOM_DEAD_TRIES and len(data) < self.compact_floor:
                    self._compact()
                    dead_draws = 0
            elif key not in expires or self._alive(key):
                return key
            else:
                expired_left -= 1
        return None

    def scan(self, cursor: int, count: int):
        """Return ``(next_cursor, keys)`` for one SCAN step; ``next_cursor`` 0 means done.

        The scan order is walked downwards: cursor ``c`` > 0 means the entries below
        position ``c`` are still to visit; 0 starts at the top (a cursor past the top is
        clamped to it). A step visits ``count`` entries and returns their live keys:
        O(count). New keys are appended at the top (returned or not), and compaction only
        moves entries down, so a key present for the whole scan is returned at least once;
        one moved down past the cursor is returned again, as Redis allows.
        """
        order = self._order
        start = len(order) if cursor == 0 or cursor > len(order) else cursor
        end = max(0, start - count)
        data, expires = self.data, self.expires
        found = [key for key in order[end:start]
                 if key in data and (key not in expires or self._alive(key))]
        return end, found

    # -- the scan order -----------------------------------------------------------

    def _reset_order(self) -> None:
        self._order = []
        self._tombstones = set()
        # While a compaction pass runs: its read position (-1: none) and write position.
        self._pass_read = -1
        self._pass_write = 0

    def _inserted(self, key) -> None:
        """Note that ``key`` joined ``data``: its dead entry revives, or a new one goes on top."""
        tombstones = self._tombstones
        if tombstones and key in tombstones:
            tombstones.discard(key)  # its old entry is live again
        else:
            self._order.append(key)

    def _removed(self, key) -> None:
        """Note that ``key`` left ``data`` (its entry stays, dead) and move a compaction pass
        on, starting one when dead entries exceed live ones plus ``compact_floor``:
        O(compact_step), amortised O(1) per removal, as a pass visits O(live) entries."""
        self._tombstones.add(key)
        if self._pass_read < 0:
            if len(self._order) - 2 * len(self.data) <= self.compact_floor:
                return
            self._pass_read = self._pass_write = 0
        self._compact_step(self.compact_step)

    def _compact_step(self, budget: int) -> None:
        """Visit up to ``budget`` more entries of the running compaction pass: O(budget).

        Live entries are copied down to the write position (the vacated slot becomes None,
        read as dead), dead ones are dropped with their tombstone. Entries appended meanwhile
        are visited too; at the end the tail of Nones is cut off (O(its length), C-level).
        """
        order, data, tombstones = self._order, self.data, self._tombstones
        write = self._pass_write
        stop = min(len(order), self._pass_read + budget)
        for index in range(self._pass_read, stop):
            key = order[index]
            if key in data:
                if write != index:
                    order[write] = key
                    order[index] = None
                write += 1
            else:
                tombstones.discard(key)
                order[index] = None
        if stop == len(order):
            del order[write:]
            self._pass_read = -1
        else:
            self._pass_read, self._pass_write = stop, write

    def _compact(self) -> None:
        """Run a whole compaction pass now: O(len(_order))."""
        if self._pass_read < 0:
            self._pass_read = self._pass_write = 0
        self._compact_step(len(self._order))
