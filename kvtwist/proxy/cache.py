"""A TTL + LRU cache of GET results with one timer per entry and placeholders for fetches."""

from __future__ import annotations

from collections import OrderedDict

# get() returns MISSING when the cache holds nothing for a key; None is a cached miss.
MISSING = object()


class Placeholder:
    """A fetch in flight for one key; ``live`` turns False when the key is invalidated.

    ``waiters`` is None, or a list the proxy uses to coalesce concurrent misses on the
    key (made only when a second client asks: most fetches have a single waiter).
    ``fence`` is None, or the Deferred of a GET of the key the proxy sent before a write
    to it, while this fetch's MGET (whose nil may have to be re-read) was in flight.
    ``retried`` turns True when the fetch is sent again (at most once) because the
    backend link dropped it unanswered.
    """

    __slots__ = ("key", "live", "waiters", "fence", "retried")

    def __init__(self, key: bytes) -> None:
        self.key = key
        self.live = True
        self.waiters = None
        self.fence = None
        self.retried = False

    def __repr__(self) -> str:
        return "Placeholder(%r, live=%r)" % (self.key, self.live)


class Cache:
    """GET results keyed by key, each expiring through ``clock.callLater`` after its TTL.

    A cached miss (value None) lives ``miss_ttl`` seconds, a value ``ttl`` seconds.
    At most ``max_entries`` entries are kept; the least recently used goes first.
    ``max_entries <= 0`` or ``ttl <= 0`` disables storing (everything is a miss).
    """

    def __init__(self, clock, ttl: float = 60.0, miss_ttl: float = 5.0,
                 max_entries: int = 100000) -> None:
        self.clock = clock
        self.ttl = float(ttl)
        self.miss_ttl = min(float(miss_ttl), self.ttl)
        self.max_entries = int(max_entries)
        # key -> its expiry DelayedCall, whose args are (key, value): the timer is the
        # entry, so an entry costs the garbage collector no container of its own.
        # Order is recency (last = most recent).
        self._entries = OrderedDict()
        self._pending = {}
        self.hits = 0
        self.misses = 0
        self.evictions = 0
        self.expirations = 0
        self.invalidations = 0
        self.flushes = 0

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, key: bytes) -> bool:
        return key in self._entries

    def get(self, key: bytes):
        """Return the cached value (None for a cached miss), or MISSING; counts a hit or miss."""
        entry = self._entries.get(key)
        if entry is None:
            self.misses += 1
            return MISSING
        self._entries.move_to_end(key)
        self.hits += 1
        return entry.args[1]

    def put(self, key: bytes, value) -> None:
        """Store ``value`` (bytes, or None for a miss) for ``key``, replacing any entry."""
        ttl = self.miss_ttl if value is None else self.ttl
        if ttl <= 0 or self.max_entries <= 0:
            return
        entries = self._entries
        old = entries.pop(key, None)
        if old is not None:
            old.cancel()
        entries[key] = self.clock.callLater(ttl, self._expire, key, value)
        if len(entries) > self.max_entries:
            _, evicted = entries.popitem(last=False)
            evicted.cancel()
            self.evictions += 1

    def _expire(self, key: bytes, value) -> None:
        # Only the current entry's timer can fire: replacing or dropping cancels the old one.
        if self._entries.pop(key, None) is not None:
            self.expirations += 1

    def reserve(self, key: bytes) -> Placeholder:
        """Return a new live placeholder for a fetch of ``key``, replacing any older one."""
        old = self._pending.get(key)
        if old is not None:
            old.live = False
        placeholder = self._pending[key] = Placeholder(key)
        return placeholder

    def pending(self, key: bytes):
        """Return the live placeholder of the fetch in flight for ``key``, or None."""
        return self._pending.get(key)

    def fill(self, placeholder: Placeholder, value) -> bool:
        """Store a fetch's result unless the key was invalidated since; return whether stored."""
        self.release(placeholder)
        if not placeholder.live:
            return False
        placeholder.live = False
        self.put(placeholder.key, value)
        return True

    def release(self, placeholder: Placeholder) -> None:
        """Forget ``placeholder`` (its fetch finished or failed) without storing anything."""
        if self._pending.get(placeholder.key) is placeholder:
            del self._pending[placeholder.key]

    def invalidate(self, key: bytes) -> bool:
        """Drop ``key`` and void a fetch in flight for it; return whether an entry was dropped."""
        placeholder = self._pending.pop(key, None)
        if placeholder is not None:
            placeholder.live = False
        entry = self._entries.pop(key, None)
        if entry is None:
            return False
        entry.cancel()
        self.invalidations += 1
        return True

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

    def stats(self) -> dict:
        """Return the counters as a dict: hits, misses, hit_ratio, entries, evictions, ..."""
        lookups = self.hits + self.misses
        return {
            "hits": self.hits,
            "misses": self.misses,
            "hit_ratio": (self.hits / lookups) if lookups else 0.0,
            "entries": len(self._entries),
            "max_entries": self.max_entries,
            "evictions": self.evictions,
            "expirations": self.expirations,
            "invalidations": self.invalidations,
            "flushes": self.flushes,
            "ttl": self.ttl,
            "miss_ttl": self.miss_ttl,
        }
