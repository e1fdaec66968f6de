"""The writes a journal holds that are not durable yet, by key: what a reply must wait for.

A reply may leave once every write it could reveal is durable. For a read of some keys
that is the last write to each of them, so the journal notes, for each effect it is
handed, which key (or database) it changes and its sequence number, and forgets the
entry once that number is durable (or rolled back). ``gate`` answers a read of some
keys with the highest sequence number among them: the protocol holds that read's reply
until the journal acknowledged it (serve/keygate.py decides which requests are such
reads; everything else waits for every write appended before it).

Databases are named by *label* (engine/databases.py), the dataset's number for good,
which SWAPDB does not change; a session's keyspace carries its label. An effect on one
key (SET, DEL, EXPIRE_AT, PERSIST, SETRANGE, MUTATE) is noted under that key; a FLUSH
under its whole database, a SWAPDB under both its databases (a read there sees another
dataset until it is durable); an effect this does not know under everything.

Memory: one entry per key (or database) with a write not durable yet, plus the keys of
the commits in flight, so it is bounded by the writes a journal holds anyway (its
pending records, the keyspace's undo deque).
"""

from __future__ import annotations

import collections

from kvtwist.engine.databases import IN_DB, SWAPDB
from kvtwist.engine.keyspace import DEL, EXPIRE_AT, FLUSH, PERSIST, SET, SETRANGE
from kvtwist.engine.typedkeys import MUTATE

# Effects on the key in their second field.
KEYED = frozenset((SET, DEL, EXPIRE_AT, PERSIST, SETRANGE, MUTATE))


class PendingWrites:
    """Per key and per database, the sequence number of its last write not yet durable.

    ``keys`` maps a key of database label 0 (bytes) or ``(label, key)`` to that number;
    ``dbs`` maps a label to the number of its last FLUSH or SWAPDB; ``everything`` is the
    number of the last effect of a kind not known here (0: none), which every read waits
    for. The journal calls ``note`` for each effect it appends (O(1)), ``sent`` when it
    hands the appended records to its log, ``settle`` when a commit is durable and
    ``clear`` when it rolled everything pending back.
    """

    __slots__ = ("keys", "dbs", "everything", "noted", "_batches")

    def __init__(self) -> None:
        self.keys: dict = {}
        self.dbs: dict = {}
        self.everything = 0
        # The slots noted since the last ``sent``. ``keys`` and ``noted`` stay the same
        # objects for good: Journal.append notes a key's write itself (one call less).
        self.noted: list = []
        self._batches = collections.deque()  # (last sequence number, slots) per commit

    def __len__(self) -> int:
        """Return how many keys and databases have a write not durable yet."""
        return len(self.keys) + len(self.dbs)

    def note(self, effect: tuple, seq: int) -> None:
        """Remember that ``effect``, the journal's effect number ``seq``, is not durable. O(1)."""
        op = effect[0]
        if op in KEYED:
            slot = effect[1]
            self.keys[slot] = seq
            self.noted.append(slot)
            return
        if op == IN_DB:
            label = effect[1]
            effect = effect[2]
            op = effect[0]
            if op in KEYED:
                slot = (label, effect[1])
                self.keys[slot] = seq
                self.noted.append(slot)
                return
            labels = (label,)
        elif op == SWAPDB:
            labels = (effect[3], effect[4])
        else:
            labels = (0,)
        if op == FLUSH or op == SWAPDB:
            for label in labels:
                self.dbs[label] = seq
                self.noted.append(label)  # an int: a database's slot, not a key's
        else:
            self.everything = seq

    def sent(self, upto: int) -> None:
        """The effects noted since the last call, up to number ``upto``, went to the log."""
        noted = self.noted
        if noted:
            self._batches.append((upto, noted[:]))
            noted.clear()

    def settle(self, upto: int) -> None:
        """Forget every write numbered ``upto`` or less: they are durable.

        O(writes sent up to ``upto``), each counted once over the journal's life.
        """
        batches = self._batches
        keys, dbs = self.keys, self.dbs
        later = upto + 1
        while batches and batches[0][0] <= upto:
            for slot in batches.popleft()[1]:
                table = dbs if slot.__class__ is int else keys
                if table.get(slot, later) <= upto:
                    del table[slot]
        if self.everything <= upto:
            self.everything = 0

    def clear(self) -> None:
        """Forget everything: the journal rolled back every write not durable."""
        self.keys.clear()
        self.dbs.clear()
        self.everything = 0
        self.noted.clear()
        self._batches.clear()

    def gate(self, label: int, argv, first: int, stop: int, step: int) -> int:
        """Return the number a read of keys ``argv[first:stop:step]`` in database ``label``
        waits for: the last write not durable to any of them, to their database, or of a
        kind not known here; 0 when there is none. O(keys read)."""
        need = self.everything
        dbs = self.dbs
        if dbs:
            need = max(need, dbs.get(label, 0))
        keys = self.keys
        if not keys:
            return need
        get = keys.get
        if label == 0:
            for index in range(first, stop, step):
                seq = get(argv[index], 0)
                if seq > need:
                    need = seq
        else:
            for index in range(first, stop, step):
                seq = get((label, argv[index]), 0)
                if seq > need:
                    need = seq
        return need
