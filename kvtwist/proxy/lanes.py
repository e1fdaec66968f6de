"""kvproxy's large-request lanes: backend connections of their own for large transfers.

The shared backend connection runs its requests one after the other: a 16 MB SET or GET
on it (0.2-1.7 s under load) delays every small request queued behind it. So a write
whose arguments reach ``LARGE_BYTES``, and a GET miss of a key kvproxy knows to hold a
large value (it saw a large write to it, or a fetch of it that answered a large value),
go on a lane: one of a few connections (``Lanes.size``), opened when first needed and
closed after ``idle`` seconds unused.

The ordering model holds: a client's replies leave in its request order, and its
requests take effect in that order. The client's commands after a lane request are held
until the lane answers (as behind a SELECT in flight, ``databases.Selecting``), and the
lane request itself is sent only once a ``PING`` sent on the shared connection after
everything before it (this turn's batched misses included) is answered: the backend has
run the client's earlier requests by then. Only that client waits; the others' requests
keep flowing on the shared connection. A write on a lane drops what it changes from the
cache when it is sent and again when it is answered, as on the shared connection, so a
fetch that raced it is not kept.
"""

from __future__ import annotations

from twisted.internet.defer import Deferred
from twisted.python.failure import Failure

from kvtwist.proxy.cache import MISSING, slot
from kvtwist.proxy.databases import invalidate
from kvtwist.proxy.expiry import Timed
from kvtwist.proxy.reads import fits_get

LARGE_BYTES = 1 << 20  # a request's argument bytes (or a value) from which it takes a lane
LANES = 4  # most lane connections open at once
IDLE = 30.0  # seconds a lane may stay unused before it is closed
KNOWN_LIMIT = 10000  # most keys remembered as holding a large value


def large_write(argv: list) -> bool:
    """Whether a write's arguments reach ``LARGE_BYTES``: O(len(argv))."""
    return sum(map(len, argv)) >= LARGE_BYTES


def _relay(result, d: Deferred) -> None:
    if isinstance(result, Failure):
        d.errback(result)
    else:
        d.callback(result)


class Lanes:
    """At most ``size`` lane connections (``make()`` builds a started-on-demand link with
    ``request(argv, db=...)``, ``idle``, ``startService`` and ``stopService``: a
    ``backend.Backend``), and the keys known to hold large values (``large``: cache slot
    -> size)."""

    def __init__(self, clock, make, size: int = LANES, idle: float = IDLE) -> None:
        self.clock = clock
        self.make = make
        self.size = size
        self.idle = idle
        self.links = []  # [link, last use (clock seconds)]
        self.large = {}
        self.requests = 0  # requests sent on lanes
        self.opened = 0  # lane connections opened
        self._reaper = None

    def note(self, name, size: int) -> None:
        """Remember that cache slot ``name`` holds ``size`` bytes when that is large, and
        forget it when it is not; O(1) (the memory is emptied when it is full)."""
        large = self.large
        if size >= LARGE_BYTES:
            if len(large) >= KNOWN_LIMIT and name not in large:
                large.clear()
            large[name] = size
        elif large:
            large.pop(name, None)

    def request(self, argv: list, db):
        """Send ``argv`` on a lane (``pick``); its Deferred delivers the reply."""
        return self.pick().request(argv, db=db)

    def pick(self):
        """The lane for the next request: an idle one, else a new one while fewer than
        ``size`` are open, else the least busy; O(size)."""
        self.requests += 1
        now = self.clock.seconds()
        chosen = None
        for entry in self.links:
            if entry[0].idle:
                chosen = entry
                break
        if chosen is None:
            if len(self.links) < self.size:
                link = self.make()
                link.startService()
                self.opened += 1
                chosen = [link, now]
                self.links.append(chosen)
                if self._reaper is None:
                    self._reaper = self.clock.callLater(self.idle, self._reap)
            else:
                chosen = min(self.links, key=lambda entry: len(
                    getattr(getattr(entry[0], "client", None), "_pending", ()) or ()))
        chosen[1] = now
        return chosen[0]

    def _reap(self) -> None:
        """Close the lanes unused for ``idle`` seconds; O(size)."""
        self._reaper = None
        now = self.clock.seconds()
        kept = []
        for entry in self.links:
            if entry[0].idle and now - entry[1] >= self.idle:
                entry[0].stopService()
            else:
                kept.append(entry)
        self.links = kept
        if kept:
            self._reaper = self.clock.callLater(self.idle, self._reap)

    def stop(self) -> None:
        """Close every lane (kvproxy is stopping)."""
        if self._reaper is not None and self._reaper.active():
            self._reaper.cancel()
        self._reaper = None
        links, self.links = self.links, []
        for entry in links:
            entry[0].stopService()


def lane_barrier(store) -> Deferred:
    """A Deferred firing (never failing) once the backend has run every request sent so
    far on ``store``'s shared connection: this turn's batched misses are sent first, then
    a PING behind them all."""
    store.reads.flush()
    return store.backend.request([b"PING"]).addErrback(lambda failure: None)


def lane_write(store, argv: list, targets, db: int) -> Deferred:
    """Send a large write on a lane behind the barrier (see the module's docstring);
    ``targets`` is its ``commands.scope``. The Deferred delivers its reply after the
    cache dropped what it changed."""
    store.reads.before_write(targets)
    invalidate(store.cache, targets)
    store.forwarded += 1
    lanes = store.lanes
    for target_db, keys in targets:
        if target_db is not None and keys:
            for key in keys:
                lanes.note(slot(key, target_db), LARGE_BYTES)
    d = Deferred()
    lane_barrier(store).addCallback(_send_write, store, argv, db, d)
    d.addBoth(store._written, targets)
    return d


def _send_write(ignored, store, argv, db, d) -> None:
    store.lanes.request(argv, db).addBoth(_relay, d)


def lane_get(store, key: bytes, db: int):
    """GET ``key`` (known to hold a large value): from the cache, else by joining a fetch
    of it in flight, else on a lane behind the barrier with its PTTL (the value fills the
    cache as a shared fetch's would); O(1)."""
    reads = store.reads
    cache = store.cache
    value = cache.get(key, db)
    if value is not MISSING:
        return value
    waiter = Deferred()
    if not store.caching:
        lane_barrier(store).addCallback(_send_plain, store, [b"GET", key], db, waiter)
        return waiter
    placeholder = reads.join_or_reserve(key, db, waiter)
    if placeholder is None:
        return waiter
    reads.fetches += 1
    reads.fetched_keys += 1
    sent = reads.writes
    lane_barrier(store).addCallback(_send_get, store, placeholder, sent)
    return waiter


def _send_plain(ignored, store, argv, db, d) -> None:
    store.lanes.request(argv, db).addErrback(store.failed).addBoth(_relay, d)


def _send_get(ignored, store, placeholder, sent) -> None:
    reads = store.reads
    key = placeholder.key
    # The GET and its PTTL go on the same lane, one behind the other.
    Timed(store.lanes.pick(), store.clock, [b"GET", key], [key], placeholder.db,
          fits_get, reads._timed_fetched, placeholder, sent)
