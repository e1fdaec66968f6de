"""A TTL + LRU cache of GET results with one timer per entry and placeholders for fetches.

Entries are keyed by (database, key). A key of database 0 is its own slot (the bytes), one
of database n > 0 the tuple ``(n, key)``: database 0, the common case, costs nothing more.
"""

from __future__ import annotations

from collections import OrderedDict

# get() returns MISSING when the cache holds nothing for a key; None is a cached miss.
MISSING = object()


def slot(key: bytes, db: int = 0):
    """The cache's name for ``key`` of database ``db``: the key itself in database 0."""
    return key if db == 0 else (db, key)


def size(name, value) -> int:
    """What an entry costs the byte budget: its key's length plus its value's (O(1))."""
    key = name[1] if name.__class__ is tuple else name
    return len(key) if value is None else len(key) + len(value)


def slot_db(name) -> int:
    """The database of a slot made by ``slot``."""
    return name[0] if name.__class__ is tuple else 0


class Placeholder:
    """A fetch in flight for one key of database ``db`` (``slot``: its cache slot); ``live``
    turns False when the key is invalidated.

    ``waiters`` is None, or a list the proxy uses to coalesce concurrent misses on the
    key (made only when a second client asks: most fetches have a single waiter).
    ``fence`` is None, or the Deferred of a GET of the key the proxy sent before a write
    to it, while this fetch's MGET (whose nil may have to be re-read) was in flight.
    ``retried`` turns True when the fetch is sent again (at most once) because the
    backend link dropped it unanswered.
    """

    __slots__ = ("key", "db", "slot", "live", "waiters", "fence", "retried")

    def __init__(self, key: bytes, db: int = 0) -> None:
        self.key = key
        self.db = db
        self.slot = slot(key, db)
        self.live = True
        self.waiters = None
        self.fence = None
        self.retried = False

    def __repr__(self) -> str:
        return "Placeholder(%r, db=%d, live=%r)" % (self.key, self.db, self.live)


class Cache:
    """GET results keyed by (database, key), each expiring through ``clock.callLater`` after
    its TTL. Every method's ``db`` defaults to 0.

    A cached miss (value None) lives ``miss_ttl`` seconds, a value ``ttl`` seconds.
    At most ``max_entries`` entries are kept, and with ``max_bytes`` > 0 the sum of their
    sizes (``size``: key plus value, counted in ``bytes``) is at most ``max_bytes``; the
    least recently used go first. An entry larger than ``max_bytes`` alone is not kept.
    ``max_entries <= 0`` or ``ttl <= 0`` disables storing (everything is a miss).
    """

    def __init__(self, clock, ttl: float = 60.0, miss_ttl: float = 5.0,
                 max_entries: int = 100000, max_bytes: int = 0) -> None:
        self.clock = clock
        self.ttl = float(ttl)
        self.miss_ttl = min(float(miss_ttl), self.ttl)
        self.max_entries = int(max_entries)
        self.max_bytes = int(max_bytes)  # 0: no byte budget
        self.bytes = 0  # the sum of the entries' sizes
        # slot -> its expiry DelayedCall, whose args are (slot, value): the timer is the
        # entry, so an entry costs the garbage collector no container of its own.
        # Order is recency (last = most recent).
        self._entries = OrderedDict()
        self._pending = {}  # slot -> Placeholder
        # Databases other than 0 that ever had an entry or a fetch (at most the backend's
        # database count): where invalidate(key) without a database looks.
        self.databases = set()
        self.hits = 0
        self.misses = 0
        self.evictions = 0
        self.expirations = 0
        self.invalidations = 0
        self.flushes = 0

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, key) -> bool:
        """Whether a slot (a key of database 0, or ``(db, key)``) has an entry."""
        return key in self._entries

    def get(self, key: bytes, db: int = 0):
        """Return the cached value (None for a cached miss), or MISSING; counts a hit or miss."""
        name = key if db == 0 else (db, key)
        entry = self._entries.get(name)
        if entry is None:
            self.misses += 1
            return MISSING
        args = entry.args
        if len(args) > 2 and entry.time <= self.clock.seconds():
            # A life bounded by the key's TTL is over, though the reactor has not run
            # the entry's timer yet (a read handled in the same iteration).
            entry.cancel()
            self._expire(name, args[1])
            self.misses += 1
            return MISSING
        self._entries.move_to_end(name)
        self.hits += 1
        return args[1]

    def put(self, key: bytes, value, db: int = 0, life=None) -> None:
        """Store ``value`` (bytes, or None for a miss) for ``key``, replacing any entry;
        ``life`` (seconds, or None) bounds its TTL (see ``_put``)."""
        self._put(slot(key, db), value, life)

    def _put(self, name, value, life=None) -> None:
        """Store an entry, evicting the least recently used ones while over a bound:
        O(1), or O(evicted) under a byte budget.

        ``life`` (None: no bound) is at most how long the entry may live (its key's
        remaining TTL on the backend): it lives min(TTL, life) seconds, and a life of
        0 or less stores nothing (and drops the entry it would have replaced).
        """
        ttl = self.miss_ttl if value is None else self.ttl
        if ttl <= 0 or self.max_entries <= 0:
            return
        bounded = life is not None and life < ttl
        cost = size(name, value)
        max_bytes = self.max_bytes
        entries = self._entries
        old = entries.pop(name, None)
        if old is not None:
            self.bytes -= size(name, old.args[1])  # read before cancel() drops args
            old.cancel()
        if max_bytes and cost > max_bytes:
            return  # it could never fit: dropping others for it would not help
        if bounded and life <= 0:
            return
        if name.__class__ is tuple:
            self.databases.add(name[0])
        if bounded:
            # A third argument marks the entry as bounded: get() checks its deadline.
            entries[name] = self.clock.callLater(life, self._expire, name, value, True)
        else:
            entries[name] = self.clock.callLater(ttl, self._expire, name, value)
        self.bytes += cost
        if len(entries) > self.max_entries:
            self._evict()
        if max_bytes:
            while self.bytes > max_bytes:
                self._evict()

    def _evict(self) -> None:
        evicted_name, evicted = self._entries.popitem(last=False)
        self.bytes -= size(evicted_name, evicted.args[1])
        evicted.cancel()
        self.evictions += 1

    def _expire(self, name, value, bounded: bool = False) -> None:
        # Only the current entry's timer can fire: replacing or dropping cancels the old one.
        if self._entries.pop(name, None) is not None:
            self.bytes -= size(name, value)
            self.expirations += 1

    def reserve(self, key: bytes, db: int = 0) -> Placeholder:
        """Return a new live placeholder for a fetch of ``key``, replacing any older one."""
        placeholder = Placeholder(key, db)
        if db:
            self.databases.add(db)
        old = self._pending.get(placeholder.slot)
        if old is not None:
            old.live = False
        self._pending[placeholder.slot] = placeholder
        return placeholder

    def pending(self, key: bytes, db: int = 0):
        """Return the live placeholder of the fetch in flight for ``key``, or None."""
        return self._pending.get(key if db == 0 else (db, key))

    def fill(self, placeholder: Placeholder, value, life=None) -> bool:
        """Store a fetch's result (``life``: as ``_put``'s) unless the key was invalidated
        since; return whether it was let in (a spent ``life`` then stores nothing)."""
        self.release(placeholder)
        if not placeholder.live:
            return False
        placeholder.live = False
        self._put(placeholder.slot, value, life)
        return True

    def release(self, placeholder: Placeholder) -> None:
        """Forget ``placeholder`` (its fetch finished or failed) without storing anything."""
        if self._pending.get(placeholder.slot) is placeholder:
            del self._pending[placeholder.slot]

    def invalidate(self, key: bytes, db=None) -> bool:
        """Drop ``key`` of database ``db`` and void a fetch in flight for it; return whether an
        entry was dropped.

        ``db`` None means every database: a backend's invalidation message names a key,
        not its database. O(databases used) then.
        """
        if db is not None:
            return self._invalidate(key if db == 0 else (db, key))
        dropped = self._invalidate(key)
        for number in self.databases:
            if self._invalidate((number, key)):
                dropped = True
        return dropped

    def _invalidate(self, name) -> bool:
        placeholder = self._pending.pop(name, None)
        if placeholder is not None:
            placeholder.live = False
        entry = self._entries.pop(name, None)
        if entry is None:
            return False
        self.bytes -= size(name, entry.args[1])
        entry.cancel()
        self.invalidations += 1
        return True

    def invalidate_db(self, db: int) -> int:
        """Drop every entry of database ``db`` and void its fetches; return how many entries
        were dropped. O(entries + fetches in flight)."""
        for name in [name for name in self._pending if slot_db(name) == db]:
            self._pending.pop(name).live = False
        dropped = [name for name in self._entries if slot_db(name) == db]
        entries = self._entries
        for name in dropped:
            entry = entries.pop(name)
            self.bytes -= size(name, entry.args[1])
            entry.cancel()
        self.invalidations += len(dropped)
        self.flushes += 1
        return len(dropped)

    def invalidate_all(self) -> int:
        """Drop every entry and void every fetch in flight; return how many entries were dropped."""
        for placeholder in self._pending.values():
            placeholder.live = False
        self._pending.clear()
        entries = self._entries
        count = len(entries)
        for entry in entries.values():
            entry.cancel()
        entries.clear()
        self.bytes = 0
        self.invalidations += count
        self.flushes += 1
        return count

    def stop(self) -> None:
        """Cancel every timer and drop everything (at shutdown); counters are kept."""
        for placeholder in self._pending.values():
            placeholder.live = False
        self._pending.clear()
        for entry in self._entries.values():
            entry.cancel()
        self._entries.clear()
        self.bytes = 0

    def counts(self) -> dict:
        """Return {database: entries} for the databases holding entries.

        O(1) while only database 0 was used, O(entries) otherwise.
        """
        if not self._entries:
            return {}
        if not self.databases:
            return {0: len(self._entries)}
        counts = {}
        for name in self._entries:
            db = name[0] if name.__class__ is tuple else 0
            counts[db] = counts.get(db, 0) + 1
        return dict(sorted(counts.items()))

    def stats(self) -> dict:
        """Return the counters as a dict: hits, misses, hit_ratio, entries, evictions, ...,
        and ``databases``, the entries per database (see ``counts``)."""
        lookups = self.hits + self.misses
        return {
            "hits": self.hits,
            "misses": self.misses,
            "hit_ratio": (self.hits / lookups) if lookups else 0.0,
            "entries": len(self._entries),
            "max_entries": self.max_entries,
            "bytes": self.bytes,
            "max_bytes": self.max_bytes,
            "evictions": self.evictions,
            "expirations": self.expirations,
            "invalidations": self.invalidations,
            "flushes": self.flushes,
            "ttl": self.ttl,
            "miss_ttl": self.miss_ttl,
            "databases": self.counts(),
        }
