"""Redis client-side caching for kvstore: CLIENT TRACKING BCAST and its invalidation messages.

The messages go to sessions subscribed to ``__redis__:invalidate`` through pub/sub
(kvtwist.engine.pubsub keeps the subscriptions, as ``store.pubsub``).
"""

from __future__ import annotations

import heapq

from kvtwist.engine.table import parse_int, subcommands
from kvtwist.engine.keyspace import EXPIRE_AT, FLUSH, SET
from kvtwist.wire.replies import OK, CommandError

CHANNEL = b"__redis__:invalidate"


class _Tracking:
    """One session's CLIENT TRACKING settings."""

    __slots__ = ("redirect", "prefixes", "noloop")

    def __init__(self, redirect: int, prefixes: list, noloop: bool) -> None:
        self.redirect = redirect
        self.prefixes = prefixes
        self.noloop = noloop


class Tracker:
    """A store's tracking clients; sends invalidation messages.

    While some session has tracking on, the tracker observes the store's effects: every
    effect, after going to the journal, sends the key it touched as the RESP2 message
    ``["message", "__redis__:invalidate", [key]]``, or one with a nil payload on a flush.
    A key reaching its expiry time is invalidated then too (expiry is not logged).
    """

    def __init__(self, store) -> None:
        self.store = store
        self.tracking = {}  # session id -> _Tracking
        self.messages = 0
        self._expiries = []  # heap of (expire_at_ms, key)
        self._expiry_call = None
        self._expiry_at = None

    # -- the log hook ------------------------------------------------------------------

    def update_log(self) -> None:
        """Observe the store's effects while anyone tracks; stop when nobody does."""
        if self.tracking:
            self.store.observe(self._log)
        else:
            self.store.unobserve(self._log)

    def _log(self, effect, db: int) -> None:
        # Invalidation names keys only, whatever their database, as Redis's tracking does.
        if not self.tracking:
            return
        op = effect[0]
        if op == FLUSH:
            self._send(None, None)
            return
        key = effect[1]
        if op == SET and effect[3]:
            self._expire_later(db, key, effect[3])
        elif op == EXPIRE_AT:
            self._expire_later(db, key, effect[2])
        self._send([key], self.store.current)

    def _expire_later(self, db: int, key: bytes, at_ms: int) -> None:
        heapq.heappush(self._expiries, (at_ms, db, key))
        if self._expiry_at is None or at_ms < self._expiry_at:
            if self._expiry_call is not None and self._expiry_call.active():
                self._expiry_call.cancel()
            self._schedule_expiry()

    def _schedule_expiry(self) -> None:
        self._expiry_call = None
        self._expiry_at = None
        if not self._expiries or not self.tracking:
            return
        at_ms = self._expiries[0][0]
        # A key is alive while now_ms <= at, so it is gone from at + 1 ms.
        delay = max(0.0, (at_ms + 1) / 1000.0 - self.store.clock.seconds())
        self._expiry_at = at_ms
        self._expiry_call = self.store.clock.callLater(delay, self._expired)

    def _expired(self) -> None:
        databases = self.store.databases
        now_ms = databases[0].now_ms()
        due = []
        while self._expiries and self._expiries[0][0] < now_ms:
            at_ms, db, key = heapq.heappop(self._expiries)
            # A key whose expiry moved since is invalidated by its own entry later.
            keyspace = databases[db]
            if keyspace.expires.get(key) in (None, at_ms):
                keyspace.exists(key)  # drops it now, as Redis's lazy expiry would
                due.append(key)
        if due:
            self._send(due, None)
        self._schedule_expiry()

    def _send(self, keys, writer) -> None:
        # Sent at once, not batched per turn: the message then leaves before the
        # writer's reply does, so a reader told "done" finds the proxy already told.
        clients = self.store.clients
        pubsub = getattr(self.store, "pubsub", None)
        subscribers = pubsub.channels.get(CHANNEL, {}) if pubsub is not None else {}
        for session_id, settings in list(self.tracking.items()):
            if session_id not in clients:  # the tracking client went away
                del self.tracking[session_id]
                continue
            # RESP2 can only deliver to a redirect target subscribed to the channel.
            target = subscribers.get(settings.redirect)
            if target is None or settings.redirect not in clients:
                continue
            if keys is None:
                self._deliver(target, None)
                continue
            if settings.noloop and writer is not None and writer.id == session_id:
                continue
            if settings.prefixes:
                chosen = [key for key in keys if _matches(key, settings.prefixes)]
                if chosen:
                    self._deliver(target, chosen)
            else:
                self._deliver(target, keys)
        if not self.tracking:
            self.update_log()

    def _deliver(self, target, payload) -> None:
        push = target.push
        if push is not None:
            self.messages += 1
            push([b"message", CHANNEL, payload])

    # -- commands ----------------------------------------------------------------------

    def enable(self, session, redirect: int, prefixes: list, noloop: bool) -> None:
        """Turn tracking on for ``session``, sending its invalidations to ``redirect``."""
        self.tracking[session.id] = _Tracking(redirect, prefixes, noloop)
        self.update_log()

    def disable(self, session) -> None:
        """Turn tracking off for ``session``."""
        self.tracking.pop(session.id, None)
        self.update_log()
        if not self.tracking:
            self._expiries = []
            if self._expiry_call is not None and self._expiry_call.active():
                self._expiry_call.cancel()
            self._expiry_call = self._expiry_at = None


def _matches(key: bytes, prefixes: list) -> bool:
    if not prefixes:
        return True
    for prefix in prefixes:
        if key.startswith(prefix):
            return True
    return False


def tracker_for(store) -> Tracker:
    """Return the store's Tracker, creating it on first use."""
    tracker = getattr(store, "tracker", None)
    if tracker is None:
        tracker = store.tracker = Tracker(store)
    return tracker


# -- CLIENT TRACKING --------------------------------------------------------------------


def _client_tracking(session, argv):
    state = argv[2].lower()
    if state not in (b"on", b"off"):
        raise CommandError("ERR syntax error")
    redirect = session.id
    has_redirect = False
    prefixes = []
    bcast = noloop = False
    index = 3
    while index < len(argv):
        option = argv[index].lower()
        more = index + 1 < len(argv)
        if option == b"redirect" and more:
            index += 1
            try:
                redirect = parse_int(argv[index])
            except CommandError:
                raise CommandError("ERR value is not an integer or out of range")
            has_redirect = True
        elif option == b"prefix" and more:
            index += 1
            prefixes.append(argv[index])
        elif option == b"bcast":
            bcast = True
        elif option == b"noloop":
            noloop = True
        elif option in (b"optin", b"optout"):
            raise CommandError("ERR kvstore supports CLIENT TRACKING in BCAST mode only")
        else:
            raise CommandError("ERR syntax error")
        index += 1
    tracker = tracker_for(session.store)
    if state == b"off":
        tracker.disable(session)
        return OK
    if not bcast:
        if prefixes:
            raise CommandError("ERR PREFIX option requires BCAST mode to be enabled")
        raise CommandError("ERR kvstore supports CLIENT TRACKING in BCAST mode only")
    if has_redirect and redirect not in session.store.clients:
        raise CommandError("ERR The client ID you want redirect to does not exist")
    tracker.enable(session, redirect, prefixes, noloop)
    return OK


subcommands("client")[b"tracking"] = (-3, _client_tracking)
