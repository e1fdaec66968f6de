"""A TTL + LRU cache of GET results, expired by one timer, and placeholders for fetches.

Entries are keyed by (database, key). A key of database 0 is its own slot (the bytes), one
of database n > 0 the tuple ``(n, key)``: database 0, the common case, costs nothing more.
"""

from __future__ import annotations

from collections import OrderedDict, deque
from heapq import heapify, heappop, heappush

# Records of replaced or dropped entries tolerated in the deadline queues beyond twice
# the entries before they are compacted.
COMPACT_SLACK = 1024

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
    """GET results keyed by (database, key), each expiring after its TTL. Every method's
    ``db`` defaults to 0.

    A cached miss (value None) lives ``miss_ttl`` seconds, a value ``ttl`` seconds.
    At most ``max_entries`` entries are kept, and with ``max_bytes`` > 0 the sum of their
    sizes (``size``: key plus value, counted in ``bytes``) is at most ``max_bytes``; the
    least recently used go first. An entry larger than ``max_bytes`` alone is not kept.
    ``max_entries <= 0`` or ``ttl <= 0`` disables storing (everything is a miss).

    Expiry costs no timer per entry (a DelayedCall each made every miss push onto, and
    every eviction cancel from, a reactor heap of up to ``max_entries`` timers compared in
    Python). An entry is a tuple ``(value, deadline, slot)``: a read past its deadline
    finds it gone (so no entry is ever served after its life), and one timer, armed for
    the earliest deadline, drops the entries whose life is over. The entries' deadlines
    wait in two FIFO queues, one per TTL (each fills in deadline order), and a heap for
    lives bounded below the TTL; a record whose entry was replaced or dropped is skipped
    when its deadline comes, and the queues are compacted when such records outnumber
    the entries.
    """

    def __init__(self, clock, ttl: float = 60.0, miss_ttl: float = 5.0,
                 max_entries: int = 100000, max_bytes: int = 0) -> None:
        self.clock = clock
        self.ttl = float(ttl)
        self.miss_ttl = min(float(miss_ttl), self.ttl)
        self.max_entries = int(max_entries)
        self.max_bytes = int(max_bytes)  # 0: no byte budget
        self.bytes = 0  # the sum of the entries' sizes
        # slot -> (value, deadline, slot); order is recency (last = most recent).
        self._entries = OrderedDict()
        self._pending = {}  # slot -> Placeholder
        self._values = deque()  # entries with the value TTL, in deadline order
        self._misses = deque()  # entries with the miss TTL, in deadline order
        self._bounded = []  # heap of (deadline, sequence, entry) for bounded lives
        self._sequence = 0  # ties in _bounded never compare entries
        self._timer = None  # the DelayedCall of the next sweep, or None
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
        """Return the cached value (None for a cached miss), or MISSING; counts a hit or
        miss. An entry whose life is over is a miss, whether or not the sweep ran yet."""
        name = key if db == 0 else (db, key)
        entries = self._entries
        entry = entries.get(name)
        if entry is None:
            self.misses += 1
            return MISSING
        if entry[1] <= self.clock.seconds():
            self.expirations += self._drop(entry)
            self.misses += 1
            if not entries:
                self._clear_deadlines()
            return MISSING
        entries.move_to_end(name)
        self.hits += 1
        return entry[0]

    def value(self, name):
        """The value of the entry of slot ``name`` (MISSING: none), whatever its life;
        counts nothing (O(1))."""
        entry = self._entries.get(name)
        return MISSING if entry is None else entry[0]

    def put(self, key: bytes, value, db: int = 0, life=None) -> None:
        """Store ``value`` (bytes, or None for a miss) for ``key``, replacing any entry;
        ``life`` (seconds, or None) bounds its TTL (see ``_put``)."""
        self._put(slot(key, db), value, life)

    def _put(self, name, value, life=None) -> None:
        """Store an entry, evicting the least recently used ones while over a bound:
        O(1) amortized (O(log bounded entries) for a bounded life), or O(evicted) under
        a byte budget.

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
            self.bytes -= size(name, old[0])
        if (max_bytes and cost > max_bytes) or (bounded and life <= 0):
            # It could never fit (dropping others for it would not help), or its life
            # is spent.
            if not entries:
                self._clear_deadlines()
            return
        if name.__class__ is tuple:
            self.databases.add(name[0])
        if bounded:
            ttl = life
        deadline = self.clock.seconds() + ttl
        entries[name] = entry = (value, deadline, name)
        if bounded:
            self._sequence += 1
            heappush(self._bounded, (deadline, self._sequence, entry))
        elif value is None:
            self._misses.append(entry)
        else:
            self._values.append(entry)
        timer = self._timer
        if timer is None:
            self._timer = self.clock.callLater(ttl, self._sweep)
        elif deadline < timer.time:
            timer.reset(ttl)
        self.bytes += cost
        if len(entries) > self.max_entries:
            self._evict()
        if max_bytes:
            while self.bytes > max_bytes:
                self._evict()
        if len(self._values) + len(self._misses) + len(self._bounded) > \
                2 * len(entries) + COMPACT_SLACK:
            self._compact()

    def _evict(self) -> None:
        evicted_name, evicted = self._entries.popitem(last=False)
        self.bytes -= size(evicted_name, evicted[0])
        self.evictions += 1
        # The least recently used entry is often the oldest put too (a miss nobody read
        # again): its deadline record goes with it rather than wait for a compaction.
        # Records of entries gone before it at the head go too (each record once).
        queue = self._misses if evicted[0] is None else self._values
        entries = self._entries
        while queue:
            head = queue[0]
            if head is not evicted and entries.get(head[2]) is head:
                break
            queue.popleft()

    def _sweep(self) -> None:
        """The timer: drop the entries whose life is over, and arm it again for the next
        deadline; O(records due)."""
        self._timer = None
        now = self.clock.seconds()
        drop = self._drop
        expired = 0
        for queue in (self._values, self._misses):
            while queue and queue[0][1] <= now:
                expired += drop(queue.popleft())
        bounded = self._bounded
        while bounded and bounded[0][0] <= now:
            expired += drop(heappop(bounded)[2])
        self.expirations += expired
        if not self._entries:
            self._clear_deadlines()
            return
        self._arm(now)

    def _drop(self, entry) -> int:
        """Drop ``entry`` if it is still its slot's entry; return 1 if so, else 0. O(1)."""
        name = entry[2]
        entries = self._entries
        if entries.get(name) is not entry:
            return 0
        del entries[name]
        self.bytes -= size(name, entry[0])
        return 1

    def _arm(self, now: float) -> None:
        """Arm the timer for the earliest deadline waiting (none: no timer)."""
        deadlines = []
        if self._values:
            deadlines.append(self._values[0][1])
        if self._misses:
            deadlines.append(self._misses[0][1])
        if self._bounded:
            deadlines.append(self._bounded[0][0])
        if deadlines:
            self._timer = self.clock.callLater(max(0.0, min(deadlines) - now), self._sweep)

    def _compact(self) -> None:
        """Forget the deadlines of entries replaced or dropped since they were put:
        O(records), once per at least ``len(entries) + COMPACT_SLACK`` puts."""
        entries = self._entries
        self._values = deque([entry for entry in self._values
                              if entries.get(entry[2]) is entry])
        self._misses = deque([entry for entry in self._misses
                              if entries.get(entry[2]) is entry])
        bounded = [record for record in self._bounded
                   if entries.get(record[2][2]) is record[2]]
        heapify(bounded)
        self._bounded = bounded

    def _clear_deadlines(self) -> None:
        """The cache is empty: forget every deadline and stop the timer (O(records))."""
        self._values.clear()
        self._misses.clear()
        del self._bounded[:]
        timer = self._timer
        if timer is not None:
            self._timer = None
            if timer.active():
                timer.cancel()

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
        entries = self._entries
        entry = entries.pop(name, None)
        if entry is None:
            return False
        self.bytes -= size(name, entry[0])
        self.invalidations += 1
        if not entries:
            self._clear_deadlines()
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
            self.bytes -= size(name, entry[0])
        if not entries:
            self._clear_deadlines()
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
        entries.clear()
        self._clear_deadlines()
        self.bytes = 0
        self.invalidations += count
        self.flushes += 1
        return count

    def stop(self) -> None:
        """Cancel every timer and drop everything (at shutdown); counters are kept."""
        for placeholder in self._pending.values():
            placeholder.live = False
        self._pending.clear()
        self._entries.clear()
        self._clear_deadlines()
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
