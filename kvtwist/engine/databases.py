"""The numbered databases (SELECT 0..N-1): a list of keyspaces, their labels and SWAPDB.

Each keyspace carries a *label*, the number of the database it was created as. SWAPDB
swaps two keyspace objects in the list (labels travel with them), so a label names one
dataset for good while its index (the number clients SELECT) may change. Logged effects
name the dataset by label: an effect of label 0 is logged bare, as a single-database
journal always was, and one of label L as ``(IN_DB, L, effect)``. Replay is therefore
independent of where SWAPDBs moved datasets, and a SWAPDB record names the labels it
expects (``(SWAPDB, a, b, label_a, label_b)``), so replaying it twice swaps once: every
record stays a blind write, which is what lets a snapshot be taken while effects are
still pending (see storage/journal.py). See docs/design.md, "Databases".
"""

from __future__ import annotations

import collections

from kvtwist.engine.keyspace import FLUSH, Keyspace, Meter, rollback

# Effect opcodes beyond the keyspace's (records carry them too; see storage/records.py).
IN_DB = 8  # (IN_DB, label, effect): an effect on the dataset of that label
SWAPDB = 9  # (SWAPDB, index_a, index_b, label_a, label_b): labels expected before the swap
SELECT = 10  # (SELECT, label): snapshots only: the SET records that follow are of that label
DBMAP = 11  # (DBMAP, labels): snapshots only: the label of each index, when not the identity

DEFAULT_DATABASES = 16

_SWAPPED = object()


class DatabaseCountError(ValueError):
    """Data names a database the server was not started with enough databases for."""


class Databases:
    """The databases of a store: ``databases[i]`` is the Keyspace SELECT i reaches.

    Iterating gives the keyspaces in index order; ``len()`` is the number of keys in all of
    them (what a journal reports as loaded). One undo deque is shared by all.
    """

    def __init__(self, clock, count: int = DEFAULT_DATABASES) -> None:
        if count < 1:
            raise ValueError("there must be at least one database")
        self.clock = clock
        self.count = count
        self.meter = Meter()  # the estimated bytes of every database's data
        self._dbs = [Keyspace(clock, index=index, meter=self.meter) for index in range(count)]
        for keyspace in self._dbs:
            keyspace.label = keyspace.index
        self._by_label = list(self._dbs)
        self.undo = None
        # Called with (index_a, index_b) after each SWAPDB (sessions re-point, caches drop).
        self.on_swap = []
        self._loading_label = 0

    def __getitem__(self, index: int) -> Keyspace:
        return self._dbs[index]

    def __iter__(self):
        return iter(list(self._dbs))

    def __len__(self) -> int:
        return sum(len(keyspace) for keyspace in self._dbs)

    def by_label(self, label: int) -> Keyspace:
        """Return the keyspace of dataset ``label``; DatabaseCountError if there is none."""
        if not 0 <= label < self.count:
            raise DatabaseCountError(
                "the data holds database %d, but the server has %d databases (start it with "
                "--databases %d or more)" % (label, self.count, label + 1))
        return self._by_label[label]

    def recount(self) -> int:
        """Recount the meter from the data (after loading, which leaves it be): O(keys)."""
        self.meter.used = sum(keyspace.size() for keyspace in self._dbs)
        return self.meter.used

    def labels(self) -> list:
        """Return the label of each index, in index order."""
        return [keyspace.label for keyspace in self._dbs]

    # -- SWAPDB --------------------------------------------------------------------

    def swap(self, a: int, b: int, log=None) -> None:
        """Swap databases ``a`` and ``b``: O(1) plus the ``on_swap`` listeners.

        ``log`` (the journal's append) gets ``(SWAPDB, a, b, label_a, label_b)``.
        """
        dbs = self._dbs
        effect = (SWAPDB, a, b, dbs[a].label, dbs[b].label)
        if self.undo is not None:
            self.undo.append((self, _SWAPPED, a, b))
        self._swap(a, b)
        if log is not None:
            log(effect)

    def _swap(self, a: int, b: int) -> None:
        dbs = self._dbs
        dbs[a], dbs[b] = dbs[b], dbs[a]
        dbs[a].index, dbs[b].index = a, b
        for listener in tuple(self.on_swap):
            listener(a, b)

    # -- undo (shared by every keyspace) ---------------------------------------------

    def track_undo(self) -> None:
        """Keep undo entries for every database in one deque (see Keyspace.track_undo)."""
        self.undo = collections.deque()
        for keyspace in self._dbs:
            keyspace.track_undo(self.undo)

    def settle(self, count: int) -> None:
        """Forget the undo entries of the oldest ``count`` logged effects (now durable)."""
        popleft = self.undo.popleft
        for _ in range(count):
            popleft()

    def rollback(self) -> list:
        """Undo every effect not settled yet, newest first; return ``(keyspace, effect)`` pairs."""
        return rollback(self.undo)

    def _undo(self, entry: tuple, changed: list) -> None:
        _, _, a, b = entry
        self._swap(a, b)
        changed.append((self._dbs[a], (FLUSH,)))
        changed.append((self._dbs[b], (FLUSH,)))

    # -- replay and snapshots -----------------------------------------------------

    def apply(self, effect: tuple) -> None:
        """Replay one logged or snapshot effect without logging it."""
        op = effect[0]
        if op == IN_DB:
            self.by_label(effect[1]).apply(effect[2])
        elif op == SWAPDB:
            _, a, b, label_a, label_b = effect
            if max(a, b) >= self.count:
                raise DatabaseCountError(
                    "the data swaps database %d, but the server has %d databases"
                    % (max(a, b), self.count))
            dbs = self._dbs
            # Already applied (a snapshot taken after it) when the labels do not match.
            if dbs[a].label == label_a and dbs[b].label == label_b:
                self._swap(a, b)
        elif op == SELECT:
            self.by_label(effect[1])
            self._loading_label = effect[1]
        elif op == DBMAP:
            labels = effect[1]
            if len(labels) > self.count or sorted(labels) != list(range(len(labels))):
                raise DatabaseCountError(
                    "the data holds %d databases, but the server has %d (start it with "
                    "--databases %d or more)" % (len(labels), self.count, len(labels)))
            by_label = self._by_label
            for index, label in enumerate(labels):
                self._dbs[index] = by_label[label]
                by_label[label].index = index
        else:
            self._by_label[self._loading_label].apply(effect)

    def load_items(self, keys: list, values: list, expire_ats: list) -> None:
        """Bulk-replay SET effects into the dataset being loaded (label 0 outside snapshots)."""
        self._by_label[self._loading_label].load_items(keys, values, expire_ats)

    def snapshot_items(self) -> list:
        """Return the snapshot of every database as a list of records' contents.

        ``(key, value, expire_at_ms)`` for each key, preceded by ``(DBMAP, labels)`` when
        SWAPDB moved datasets, and by ``(SELECT, label)`` before the keys of any label but 0
        (ending with ``(SELECT, 0)``, so that whatever follows a snapshot is of label 0).
        O(keys), a copy.
        """
        items: list = []
        labels = self.labels()
        if labels != sorted(labels):
            items.append((DBMAP, labels))
        selected = 0
        for keyspace in sorted(self._dbs, key=lambda each: each.label):
            if not len(keyspace):
                continue
            if keyspace.label != selected:
                items.append((SELECT, keyspace.label))
                selected = keyspace.label
            items.extend(keyspace.snapshot_items())
        if selected != 0:
            items.append((SELECT, 0))
        return items

    # -- expiry -------------------------------------------------------------------

    def sweep(self, limit: int = 20) -> int:
        """Active expiry over every database with expiring keys (see Keyspace.sweep)."""
        return sum(keyspace.sweep(limit) for keyspace in self._dbs if keyspace.expires)

    @property
    def expired_keys(self) -> int:
        """Return how many keys expired, in every database."""
        return sum(keyspace.expired_keys for keyspace in self._dbs)

    def reset_stats(self) -> None:
        """Zero the counters CONFIG RESETSTAT resets."""
        for keyspace in self._dbs:
            keyspace.expired_keys = 0
