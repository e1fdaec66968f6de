"""kvproxy's reads: GET and MGET through the cache, misses batched per turn, re-reads, fences."""

from __future__ import annotations

from twisted.internet.defer import Deferred
from twisted.python.failure import Failure

from kvtwist.client import NotAnswered
from kvtwist.loop.turns import at_turn_end
from kvtwist.proxy.cache import MISSING, slot, slot_db
from kvtwist.proxy.commands import ALL
from kvtwist.proxy.expiry import fits_pttl, life
from kvtwist.proxy.front import Reply, answer
from kvtwist.proxy.link import fetcher
from kvtwist.wire.replies import Error


def fits_get(reply) -> bool:
    """Whether ``reply`` can be GET's: a bulk string, nil or an error (O(1))."""
    cls = reply.__class__
    return cls is bytes or reply is None or cls is Error


class _FitsMget:
    """Whether a reply can be the answer to an MGET of ``count`` keys (O(1))."""

    __slots__ = ("count",)

    def __init__(self, count: int) -> None:
        self.count = count

    def __call__(self, reply) -> bool:
        cls = reply.__class__
        return (cls is list and len(reply) == self.count) or cls is Error


# A fetch's count of writes before it that marks it overtaken by one (a fence's).
_OVERTAKEN = -1

# ``_fetched``'s default: how long the value may be cached is still to be asked (PTTL).
_ASK = object()


def _discard(result) -> None:
    """Drop a reply (or failure) nobody needs."""
    return None


class Reads:
    """GET and MGET of a ProxyStore's clients, answered from its cache or fetched.

    The misses of one reactor turn (every client's) go to the backend together at its
    end, pipelined as one GET each on the shared link (one request and one reply per
    miss; a strings-only backend gets one MGET per database instead); concurrent misses
    on a key share one fetch. The store's ``write`` calls ``before_write`` first, so no
    write overtakes a read made before it (see the ordering model in docs/design.md).
    Every fetch is sent to run in its key's database (``Placeholder.db``).

    A fetched value is cached no longer than its key lives on the backend (whose
    invalidation comes only when it deletes the key, maybe long after its TTL): its
    client is answered at once, and ``PTTL key`` is asked before it is cached (``_keep``);
    a nil is cached at once (absence does not expire).
    """

    def __init__(self, store) -> None:
        self.store = store
        self.clock = store.clock
        self.cache = store.cache
        self.fetches = 0
        self.fetched_keys = 0
        self.rereads = 0
        self.coalesced = 0
        self.fences = 0
        self.retries = 0
        self.writes = 0  # writes sent: a fetch notes how many were before it
        self.ttl_checks = 0  # PTTLs asked before caching a fetched value
        self._batch = []  # placeholders of this turn's GET misses, sent at its end
        self._batch_due = False  # a call at the end of the turn will send the batch
        self._at_turn_end = at_turn_end(store.clock)
        # cache slot ((database, key)) -> placeholders of MGET fetches in flight whose nil
        # would be re-read with GET and that no write to the key has followed yet (see
        # ``_fence``).
        self._unfenced = {}

    @property
    def backend(self):
        """The store's backend (read on each use: tests and tools may swap it)."""
        return self.store.backend

    @property
    def batched(self) -> bool:
        """Whether misses wait to be sent at the end of this turn."""
        return bool(self._batch)

    def before_write(self, targets) -> None:
        """Called just before a write is sent; ``targets`` is its ``commands.scope``, a
        list of (database or None for every one, keys or ALL).

        The misses read before it are sent first (every database's), and so are the
        fences of the keys it writes; O(len(keys)) when there is nothing to send.
        """
        self.writes += 1
        if self._batch:
            self._send_batch()
        if self._unfenced:
            self._fence(targets)

    def join_or_reserve(self, key: bytes, db: int, waiter: Deferred):
        """Add ``waiter`` to the fetch of ``key`` in flight and return None; or, with none
        in flight, reserve the key's cache entry with ``waiter`` on it and return that
        placeholder for the caller to fetch; O(1)."""
        cache = self.cache
        placeholder = cache.pending(key, db)
        if placeholder is not None:
            # Joined only while no write to the key was acknowledged since the fetch
            # was sent, so its answer is as fresh as a fetch of our own.
            self.coalesced += 1
            if placeholder.waiters is None:
                placeholder.waiters = [waiter]
            else:
                placeholder.waiters.append(waiter)
            return None
        placeholder = cache.reserve(key, db)
        placeholder.waiters = [waiter]
        return placeholder

    def get(self, key: bytes, db: int = 0):
        """Return the cached value of ``key`` in database ``db``, or a Deferred of what GET
        key answers there on the backend.

        Misses are not sent one by one: those of one reactor turn (every client's) go
        to the backend together at the end of the turn (see ``_send_batch``).
        """
        cache = self.cache
        value = cache.get(key, db)
        if value is not MISSING:
            return value
        if not self.store.caching:
            return self.store.forward([b"GET", key], db=db)
        waiter = Reply()
        placeholder = self.join_or_reserve(key, db, waiter)
        if placeholder is None:
            return waiter
        self._batch.append(placeholder)
        if not self._batch_due:
            self._batch_due = True
            self._at_turn_end(self._turn_ended)
        return waiter

    def flush(self) -> None:
        """Send this turn's batched misses now (before a lane request)."""
        if self._batch:
            self._send_batch()

    def _turn_ended(self) -> None:
        self._batch_due = False
        self._send_batch()  # nothing left to send if a write sent the batch early

    def _send_batch(self) -> None:
        # One request per database for the turn's misses: one GET, or one MGET for
        # several keys. O(len(batch)).
        batch = self._batch
        if not batch:
            return
        self._batch = []
        db = batch[0].db
        for placeholder in batch:
            if placeholder.db != db:
                break
        else:
            self._send_group(batch, db)
            return
        groups = {}
        for placeholder in batch:
            group = groups.get(placeholder.db)
            if group is None:
                groups[placeholder.db] = [placeholder]
            else:
                group.append(placeholder)
        for db, group in groups.items():
            self._send_group(group, db)

    def _send_group(self, batch, db: int) -> None:
        # One GET per key, pipelined on the shared link: GET's answer is final (a nil is
        # a missing key, another type says WRONGTYPE), so no miss costs a second request.
        # Only a strings-only backend, whose MGET nil is as final, gets one MGET.
        # O(len(batch)).
        self.fetched_keys += len(batch)
        sent = self.writes
        backend = self.backend
        if len(batch) > 1 and backend.strings_only:
            self.fetches += 1
            argv = [b"MGET"]
            argv.extend([placeholder.key for placeholder in batch])
            fetcher(backend)(argv, db, _FitsMget(len(batch)), self._answer_batch, batch,
                             sent)
            return
        self.fetches += len(batch)
        fetch = fetcher(backend)
        fetched = self._fetched
        for placeholder in batch:
            fetch([b"GET", placeholder.key], db, fits_get, fetched, placeholder, sent)

    def _answer_batch(self, reply, batch, sent) -> None:
        if reply.__class__ is list and len(reply) == len(batch):
            keep = self._keep
            reread = self._reread
            trusted = self.backend.strings_only
            for placeholder, value in zip(batch, reply):
                if value.__class__ is bytes or (value is None and trusted):
                    keep(placeholder, value)  # first: a miss its answer causes joins
                    self._answer(placeholder, value)
                else:
                    # MGET answers nil for a key of another type where GET says
                    # WRONGTYPE: only GET's own answer may be cached or relayed.
                    reread(placeholder)
            return
        if isinstance(reply, Error):
            # What MGET refused, GET may not (a per-command ACL, say): ask key by key.
            for placeholder in batch:
                self._reread(placeholder)
            return
        if reply.__class__ is Failure and reply.check(NotAnswered) is not None:
            batch = self._retry(batch, sent)
            if not batch:
                return
        error = self._fetch_error(reply)
        release = self.cache.release
        for placeholder in batch:
            release(placeholder)
            self._answer(placeholder, error)

    def _retry(self, placeholders, sent: int) -> list:
        """Fetch again, in the next batch, the keys of a fetch the backend link dropped
        unanswered (a request ahead of it timed out); return the placeholders that may
        not be. ``sent`` is how many writes had been sent before the fetch.

        A fetch is asked again once at most, and only if no write to its key was sent
        after it: its placeholder is live (any write to the key voids it when sent), or
        no write at all was sent since. Otherwise the dropped link may have run that
        write, and asking again could show it to a read made before it.
        O(len(placeholders)).
        """
        refused = []
        writes = self.writes
        for placeholder in placeholders:
            if not placeholder.retried and (placeholder.live or sent == writes):
                placeholder.retried = True
                self.retries += 1
                self._batch.append(placeholder)
            else:
                refused.append(placeholder)
        if len(refused) < len(placeholders) and not self._batch_due:
            self._batch_due = True
            self._at_turn_end(self._turn_ended)
        return refused

    # -- fences: re-reads that a later write must not overtake -------------------------
    #
    # A nil in a client's MGET reply that a GET joined is re-read with GET (the GET is
    # owed GET's answer: MGET says nil for a key of another type), which runs on the
    # backend after whatever was sent after the MGET. Were a write to the key among
    # those, the re-read would answer a read made before the write with the write's
    # result. So a write to a key whose ambiguous MGET is in flight is preceded by a GET
    # of the key (its fence); the MGET's nil is then answered by that GET, which runs
    # after the MGET and before the write. Only a client MGET's fetches on a backend
    # that is not strings-only are tracked (a turn's misses are GETs there, final as
    # they come).

    def _track(self, placeholders) -> None:
        """Note MGET fetches whose nil would need a re-read (O(len(placeholders)))."""
        unfenced = self._unfenced
        for placeholder in placeholders:
            if placeholder is None:
                continue
            waiting = unfenced.get(placeholder.slot)
            if waiting is None:
                unfenced[placeholder.slot] = [placeholder]
            else:
                waiting.append(placeholder)

    def _fence(self, targets) -> None:
        """Send a GET (the fence), in its database, for each tracked fetch of the keys a
        write changes (``targets``: see ``before_write``).

        Called just before the write is sent; O(len(keys)) plus one request per fetch
        fenced, O(tracked fetches) for a database written whole.
        """
        unfenced = self._unfenced
        groups = []
        for db, keys in targets:
            if db is None:
                groups.extend(unfenced.values())
                unfenced.clear()
                break
            if keys is ALL:
                names = [name for name in unfenced if slot_db(name) == db]
            else:
                names = [slot(key, db) for key in keys]
            groups.extend([unfenced.pop(name) for name in names if name in unfenced])
        request = self.backend.request
        for group in groups:
            for placeholder in group:
                self.fences += 1
                self.fetches += 1
                placeholder.fence = request([b"GET", placeholder.key], db=placeholder.db,
                                            check=fits_get)

    def _untrack(self, placeholders) -> None:
        """Forget the tracked fetches of an MGET that answered (O(len(placeholders)))."""
        unfenced = self._unfenced
        for placeholder in placeholders:
            if placeholder is None or placeholder.fence is not None:
                continue  # a fenced fetch is no longer tracked
            waiting = unfenced.get(placeholder.slot)
            if waiting is not None and placeholder in waiting:
                waiting.remove(placeholder)
                if not waiting:
                    del unfenced[placeholder.slot]

    @staticmethod
    def _drop_fences(placeholders) -> None:
        """Discard the fences of an answered MGET that no re-read took."""
        for placeholder in placeholders:
            if placeholder is not None and placeholder.fence is not None:
                placeholder.fence.addBoth(_discard)
                placeholder.fence = None

    def _fetch_error(self, reply) -> Error:
        """Count a failed MGET fetch; return the error its waiting clients get."""
        if isinstance(reply, Failure):
            return self.store.failed(reply)
        self.store.backend_errors += 1
        return Error("ERR backend sent a malformed MGET reply")

    def _reread(self, placeholder) -> None:
        # Ask GET for the key; a fence already asked it, before any write to the key.
        self.rereads += 1
        fence = placeholder.fence
        if fence is not None:
            placeholder.fence = None
            fence.addBoth(self._fetched, placeholder, _OVERTAKEN)
            return
        self.fetches += 1
        fetcher(self.backend)([b"GET", placeholder.key], placeholder.db, fits_get,
                              self._fetched, placeholder, self.writes)

    def _timed_fetched(self, reply, ttls, at, placeholder, sent) -> None:
        """A fetch sent with its key's PTTL (``expiry.Timed``: a lane's) answered."""
        lifetime = life(reply, ttls[0], at, self.clock.seconds())
        self._fetched(reply, placeholder, sent, lifetime)

    def _fetched(self, reply, placeholder, sent, lifetime=_ASK) -> None:
        if reply is None or reply.__class__ is bytes:
            if lifetime is _ASK:
                self._keep(placeholder, reply)
                self._answer(placeholder, reply)
                return
            self.cache.fill(placeholder, reply, lifetime)
            self._noted(placeholder, reply)
        elif reply.__class__ is Failure:
            if reply.check(NotAnswered) is not None and not self._retry([placeholder], sent):
                return
            self.cache.release(placeholder)
            reply = self.store.failed(reply)
        else:
            self.cache.release(placeholder)
        self._answer(placeholder, reply)

    # -- keeping a fetched value no longer than its key lives ----------------------------

    def _keep(self, placeholder, value) -> None:
        """Cache what a fetch answered (its waiters are answered right after): a nil at
        once; a value once ``PTTL key``, asked now, says how long its key lives.

        Until then the key has a placeholder of its own, which later misses join: they
        are answered when the PTTL comes, with the value if the key still lives, else by
        another fetch. O(1) and, for a value, one more request.
        """
        if value is None:
            self.cache.fill(placeholder, None)
            return
        cache = self.cache
        cache.release(placeholder)
        if not placeholder.live:
            return  # invalidated: it would not be cached anyway
        placeholder.live = False
        self._noted(placeholder, value)
        checking = cache.reserve(placeholder.key, placeholder.db)
        self.ttl_checks += 1
        fetcher(self.backend)([b"PTTL", placeholder.key], placeholder.db, fits_pttl,
                              self._timed, checking, value, self.clock.seconds(),
                              self.writes)

    def _timed(self, reply, checking, value, at, sent) -> None:
        lifetime = life(value, reply, at, self.clock.seconds())
        if lifetime is None or lifetime > 0:
            # The key lives (as of the PTTL, run after every miss that joined): cache it
            # unless it was invalidated since, and answer who joined.
            self.cache.fill(checking, value, lifetime)
            self._answer(checking, value)
            return
        self.cache.release(checking)
        if checking.waiters is not None:
            # Gone (or unknown): who joined meanwhile gets a fetch of its own.
            self.fetches += 1
            fetcher(self.backend)([b"GET", checking.key], checking.db, fits_get,
                                  self._fetched, checking, sent, 0)

    def _noted(self, placeholder, value) -> None:
        lanes = self.store.lanes
        if lanes is not None and value is not None:
            lanes.note(placeholder.slot, len(value))

    @staticmethod
    def _answer(placeholder, reply) -> None:
        waiters = placeholder.waiters
        if waiters is not None:
            placeholder.waiters = None
            for waiter in waiters:
                answer(waiter, reply)

    def mget(self, keys: list, db: int = 0):
        """Return the values of ``keys`` in database ``db``, fetching only those the cache
        lacks in one MGET."""
        cache = self.cache
        values = []
        wanted = {}
        for key in keys:
            value = cache.get(key, db)
            values.append(value)
            if value is MISSING and key not in wanted:
                wanted[key] = None
        if not wanted:
            return values
        fetch = list(wanted)
        placeholders = None
        tracked = False
        if self.store.caching:
            # A key whose GET fetch is pending keeps it: that fetch fills the cache.
            pending = cache.pending
            placeholders = [None if pending(key, db) is not None else cache.reserve(key, db)
                            for key in fetch]
            tracked = not self.backend.strings_only
            if tracked:
                self._track(placeholders)
        self.fetches += 1
        self.fetched_keys += len(fetch)
        d = self.backend.request([b"MGET"] + fetch, db=db, check=_FitsMget(len(fetch)))
        d.addBoth(self._mget_fetched, keys, values, fetch, placeholders, tracked)
        return d

    def _mget_fetched(self, reply, keys, values, fetch, placeholders, tracked):
        cache = self.cache
        ok = reply.__class__ is list and len(reply) == len(fetch)
        if not ok:
            error = reply if isinstance(reply, Error) else self._fetch_error(reply)
        if tracked:
            self._untrack(placeholders)
        if placeholders is not None:
            trusted = ok and self.backend.strings_only
            for index, placeholder in enumerate(placeholders):
                if placeholder is None:
                    continue
                value = reply[index] if ok else error
                if value.__class__ is bytes or (value is None and trusted):
                    self._keep(placeholder, value)
                    self._answer(placeholder, value)
                elif ok and placeholder.waiters is not None:
                    # A GET joined this fetch; it is owed GET's answer, not MGET's nil.
                    self._reread(placeholder)
                else:
                    cache.release(placeholder)
                    self._answer(placeholder, value)
            if tracked:
                self._drop_fences(placeholders)
        if not ok:
            return error
        fetched = dict(zip(fetch, reply))
        return [fetched[key] if value is MISSING else value
                for key, value in zip(keys, values)]
