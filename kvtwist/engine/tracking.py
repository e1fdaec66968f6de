"""Redis client-side caching (tracking.c): CLIENT TRACKING, CACHING, GETREDIR, TRACKINGINFO.

Two modes, as in Redis 7.0:

- Default mode: the server remembers which clients read which keys (every key of every
  read-only command a tracking client runs, subject to OPTIN/OPTOUT and CLIENT CACHING)
  in ``Tracker.table`` (key -> client ids) and tells each of them once when the key
  changes; the entry is then dropped until the key is read again.
- BCAST mode: a client names key prefixes (none: every key) and is told of every change
  to a key with one of them.

Invalidations go to the client itself as a RESP3 push ``["invalidate", [key]]``, or to the
client named by REDIRECT, as that push if it speaks RESP3 or else as a pub/sub message on
``__redis__:invalidate`` if it is subscribed there (kvtwist.engine.pubsub keeps the
subscriptions, as ``store.pubsub``). A flush invalidates everything with a nil payload.
An invalidation for the client whose command caused it is sent after that command's
reply (``session.after_reply``), as Redis 7.0 does. Keys are names, whatever their
database, as in Redis. BCAST invalidations are gathered until the end of the reactor turn
and sent as one message per prefix, as Redis does at the end of its event-loop turn: that
is still before the writer's reply, which waits for the journal's commit (kvproxy relies
on hearing of a write before the writer hears its reply).
"""

from __future__ import annotations

import heapq

from kvtwist.engine.keyspace import EXPIRE_AT, FLUSH, SET
from kvtwist.engine.table import define_config, parse_int, subcommands
from kvtwist.wire.replies import OK, CommandError, Pairs, Push

CHANNEL = b"__redis__:invalidate"
SYNTAX = "ERR syntax error"


class _Tracking:
    """One session's CLIENT TRACKING settings and state."""

    __slots__ = ("redirect", "prefixes", "bcast", "optin", "optout", "noloop", "caching",
                 "broken")

    def __init__(self, redirect: int, prefixes: list, bcast: bool, optin: bool,
                 optout: bool, noloop: bool) -> None:
        self.redirect = redirect  # 0: none
        self.prefixes = prefixes
        self.bcast = bcast
        self.optin = optin
        self.optout = optout
        self.noloop = noloop
        self.caching = False  # CLIENT CACHING yes (OPTIN) / no (OPTOUT) for the next command
        self.broken = False  # the redirect target went away

    def flags(self) -> list:
        """Return the TRACKINGINFO flags, in Redis's order."""
        caching = self.caching
        flags = [b"on"]
        for on, flag in ((self.bcast, b"bcast"), (self.optin, b"optin"),
                         (self.optin and caching, b"caching-yes"), (self.optout, b"optout"),
                         (self.optout and caching, b"caching-no"), (self.noloop, b"noloop"),
                         (self.broken, b"broken_redirect")):
            if on:
                flags.append(flag)
        return flags


class Tracker:
    """A store's tracking clients, the table of keys they read, and the invalidations.

    While some session tracks, the tracker observes the store's effects; a key reaching
    its expiry time is invalidated then too (a timer on the injected clock: expiry is not
    logged). Costs: remembering a read is O(keys of the command); a change is O(clients
    told + BCAST clients), a flush O(tracking clients) plus freeing the table.
    """

    def __init__(self, store) -> None:
        self.store = store
        self.tracking = {}  # session id -> _Tracking
        self.table = {}  # key -> {session id: None} (default mode)
        self.messages = 0
        self.max_keys = int(store.config.get("tracking-table-max-keys", "1000000"))
        self._expiries = []  # heap of (expire_at_ms, db, key)
        self.bcasting = 0  # how many clients track in BCAST mode
        self._changed = {}  # key -> id of the client that changed it (BCAST, this turn)
        self._broadcast_due = False
        clock = store.clock
        # A reactor with callAtTurnEnd (loop/epoll.py) runs it as this turn ends.
        self._at_turn_end = getattr(clock, "callAtTurnEnd", None) or (
            lambda f: clock.callLater(0, f))
        self._expiry_call = None
        self._expiry_at = None

    # -- the log hook ------------------------------------------------------------------

    def update_log(self) -> None:
        """Observe the store's effects while anyone tracks; stop when nobody does."""
        if self.tracking:
            self.store.observe(self._log)
        else:
            self.store.unobserve(self._log)

    def _log(self, effect, db: int = 0) -> None:
        if not self.tracking:
            return
        op = effect[0]
        if op == FLUSH:
            self.invalidate_all()
            return
        key = effect[1]
        if op == SET and effect[3]:
            self._expire_later(db, key, effect[3])
        elif op == EXPIRE_AT:
            self._expire_later(db, key, effect[2])
        self.invalidate(key, self.store.current)

    # -- remembering reads ---------------------------------------------------------------

    def after_command(self, session, command, argv) -> None:
        """After ``session`` (tracking) ran a command: remember the keys a read fetched.

        Redis's trackingRememberKeys, plus its CLIENT CACHING rule: the flag covers the
        next command only (the whole transaction inside MULTI).
        """
        settings = session.tracking
        if "readonly" in command.flags and not settings.bcast and command.first_key > 0:
            if not ((settings.optin and not settings.caching)
                    or (settings.optout and settings.caching)):
                table, sid = self.table, session.id
                for key in _command_keys(command, argv):
                    readers = table.get(key)
                    if readers is None:
                        readers = table[key] = {}
                    readers[sid] = None
                if len(table) > self.max_keys > 0:
                    self.limit_table()
        if (settings.caching and session.multi is None and not session.in_exec
                and command.name != b"client"):
            settings.caching = False

    def limit_table(self) -> None:
        """Forget keys (oldest remembered first) until the table is within its limit,
        telling their readers as if the keys had changed: O(keys forgotten)."""
        table = self.table
        while len(table) > self.max_keys > 0:
            self.invalidate(next(iter(table)), None, bcast=False)

    # -- invalidating -------------------------------------------------------------------

    def invalidate(self, key: bytes, writer, bcast: bool = True) -> None:
        """Tell the clients that read ``key`` (and BCAST clients of its prefixes) it changed."""
        readers = self.table.pop(key, None)
        tracking = self.tracking
        if readers:
            for sid in readers:
                settings = tracking.get(sid)
                if settings is None or settings.bcast:
                    continue
                if settings.noloop and writer is not None and writer.id == sid:
                    continue
                self._send(sid, settings, [key], writer)
        if bcast and self.bcasting:
            self._changed[key] = writer.id if writer is not None else None
            if not self._broadcast_due:
                self._broadcast_due = True
                self._at_turn_end(self._broadcast)

    def _broadcast(self) -> None:
        """At the end of the turn: tell BCAST clients the keys changed, a message per prefix.

        As Redis's trackingBroadcastInvalidationMessages: keys sorted, a NOLOOP client's
        own changes left out. O(BCAST prefixes x keys changed in the turn).
        """
        self._broadcast_due = False
        changed, self._changed = self._changed, {}
        for sid, settings in list(self.tracking.items()):
            if not settings.bcast:
                continue
            for prefix in sorted(settings.prefixes):
                keys = sorted(key for key, writer in changed.items()
                              if key.startswith(prefix)
                              and not (settings.noloop and writer == sid))
                if keys:
                    self._send(sid, settings, keys, None)

    def invalidate_all(self) -> None:
        """A flush: tell every tracking client that every key changed (a nil payload)."""
        writer = self.store.current
        for sid, settings in list(self.tracking.items()):
            self._send(sid, settings, None, writer)
        self.table = {}

    def _send(self, sid: int, settings: _Tracking, keys, writer) -> None:
        # Redis's sendTrackingMessage, deferred past the reply for the client running now.
        clients = self.store.clients
        session = clients.get(sid)
        if session is None:  # the tracking client went away
            self.tracking.pop(sid, None)
            self._count_bcast()
            if not self.tracking:
                self._stop()
            return
        if settings.redirect:
            target = clients.get(settings.redirect)
            # A target that has quit (its connection closes once its replies are out) is
            # gone already, as Redis frees it right after writing them.
            if target is None or target.closing is True:
                settings.broken = True
                if session.protocol == 3:
                    self._deliver(session, Push([b"tracking-redir-broken", settings.redirect]),
                                  session is writer)
                return
        else:
            target = session
        if target.protocol == 3:
            message = Push([b"invalidate", keys])
        elif settings.redirect and _subscribed(self.store, target):
            message = Push([b"message", CHANNEL, keys])
        else:
            return  # RESP2 has no way to tell a client on its own connection
        self._deliver(target, message, target is writer)

    def _deliver(self, target, message, deferred: bool) -> None:
        self.messages += 1
        if deferred:
            target.after_reply.append(message)
        else:
            # An invalidation shows no value (a read after it waits for the key's write):
            # it leaves before the write is durable, so a cache in front drops the old
            # value before the writer's OK sends anyone to read through it.
            push = getattr(target, "push_early", None) or target.push
            if push is not None:
                push(message)

    # -- expiry -------------------------------------------------------------------------

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
        for key in due:
            self.invalidate(key, None)
        self._schedule_expiry()

    # -- enabling -----------------------------------------------------------------------

    def enable(self, session, settings: _Tracking) -> None:
        """Turn tracking on for ``session`` with ``settings``."""
        self.tracking[session.id] = settings
        session.tracking = settings
        self._count_bcast()
        self.update_log()

    def disable(self, session) -> None:
        """Turn tracking off for ``session`` (its entries in the table go lazily, as Redis's)."""
        self.tracking.pop(session.id, None)
        session.tracking = None
        self._count_bcast()
        self.update_log()
        if not self.tracking:
            self._stop()

    def _count_bcast(self) -> None:
        self.bcasting = sum(1 for settings in self.tracking.values() if settings.bcast)

    def _stop(self) -> None:
        # Nobody tracks: writes are no longer observed, so what the table remembers would go
        # stale (a FLUSHALL would not even clear it). Redis's FLUSHALL always frees it.
        self.table = {}
        self.update_log()
        self._expiries = []
        if self._expiry_call is not None and self._expiry_call.active():
            self._expiry_call.cancel()
        self._expiry_call = self._expiry_at = None


def _command_keys(command, argv) -> list:
    """Return the key arguments of ``argv`` by the table's first/last/step positions."""
    last = command.last_key
    if last < 0:
        last = len(argv) + last
    return argv[command.first_key:last + 1:command.step or 1]


def _matches(key: bytes, prefixes: list) -> bool:
    if not prefixes:
        return True
    for prefix in prefixes:
        if key.startswith(prefix):
            return True
    return False


def _subscribed(store, session) -> bool:
    pubsub = getattr(store, "pubsub", None)
    return pubsub is not None and session.id in pubsub.channels.get(CHANNEL, ())


def tracker_for(store) -> Tracker:
    """Return the store's Tracker, creating it on first use."""
    tracker = getattr(store, "tracker", None)
    if tracker is None:
        tracker = store.tracker = Tracker(store)
    return tracker


def _set_max_keys(store, value: int) -> None:
    tracker = tracker_for(store)
    tracker.max_keys = value
    tracker.limit_table()


def _non_negative(text: str) -> int:
    value = int(text)
    if value < 0:
        raise ValueError("argument must be a non-negative integer")
    return value


define_config("tracking-table-max-keys", "1000000", _non_negative, _set_max_keys)


# -- CLIENT TRACKING, CACHING, GETREDIR, TRACKINGINFO -----------------------------------


def _client_tracking(session, argv):
    """CLIENT TRACKING on|off [REDIRECT id] [BCAST] [PREFIX p]... [OPTIN] [OPTOUT] [NOLOOP]."""
    redirect, prefixes = 0, []
    bcast = optin = optout = noloop = False
    clients = session.store.clients
    index = 3
    while index < len(argv):
        option = argv[index].lower()
        more = index + 1 < len(argv)
        if option == b"redirect" and more:
            index += 1
            if redirect != 0:
                raise CommandError("ERR A client can only redirect to a single other client")
            redirect = parse_int(argv[index])
            if redirect not in clients:
                raise CommandError("ERR The client ID you want redirect to does not exist")
        elif option == b"bcast":
            bcast = True
        elif option == b"optin":
            optin = True
        elif option == b"optout":
            optout = True
        elif option == b"noloop":
            noloop = True
        elif option == b"prefix" and more:
            index += 1
            prefixes.append(argv[index])
        else:
            raise CommandError(SYNTAX)
        index += 1
    state = argv[2].lower()
    tracker = tracker_for(session.store)
    if state == b"off":
        tracker.disable(session)
        return OK
    if state != b"on":
        raise CommandError(SYNTAX)
    current = session.tracking
    if not bcast and prefixes:
        raise CommandError("ERR PREFIX option requires BCAST mode to be enabled")
    if current is not None and current.bcast != bcast:
        raise CommandError("ERR You can't switch BCAST mode on/off before disabling tracking "
                           "for this client, and then re-enabling it with a different mode.")
    if bcast and (optin or optout):
        raise CommandError("ERR OPTIN and OPTOUT are not compatible with BCAST")
    if optin and optout:
        raise CommandError("ERR You can't specify both OPTIN mode and OPTOUT mode")
    if current is not None and ((optin and current.optout) or (optout and current.optin)):
        raise CommandError("ERR You can't switch OPTIN/OPTOUT mode before disabling tracking "
                           "for this client, and then re-enabling it with a different mode.")
    if bcast:
        _check_prefixes(current.prefixes if current is not None else [], prefixes)
        # Redis adds the new prefixes to those the client had; none means every key.
        prefixes = (current.prefixes if current is not None else []) + (prefixes or [b""])
    tracker.enable(session, _Tracking(redirect, prefixes, bcast, optin, optout, noloop))
    return OK


def _overlap(a: bytes, b: bytes) -> bool:
    shorter = min(len(a), len(b))
    return a[:shorter] == b[:shorter]


def _check_prefixes(existing: list, new: list) -> None:
    # Redis's checkPrefixCollisionsOrReply.
    for i, prefix in enumerate(new):
        for old in existing:
            if _overlap(old, prefix):
                raise CommandError(
                    "ERR Prefix '%s' overlaps with an existing prefix '%s'. Prefixes for a "
                    "single client must not overlap." % (_text(prefix), _text(old)))
        for other in new[i + 1:]:
            if _overlap(prefix, other):
                raise CommandError(
                    "ERR Prefix '%s' overlaps with another provided prefix '%s'. Prefixes "
                    "for a single client must not overlap." % (_text(prefix), _text(other)))


def _text(value: bytes) -> str:
    return value.split(b"\0", 1)[0].decode("utf-8", "replace")


def _client_caching(session, argv):
    """CLIENT CACHING yes|no: whether the next command's reads are tracked (OPTIN/OPTOUT)."""
    settings = session.tracking
    if settings is None:
        raise CommandError("ERR CLIENT CACHING can be called only when the client is in "
                           "tracking mode with OPTIN or OPTOUT mode enabled")
    answer = argv[2].lower()
    if answer == b"yes":
        if not settings.optin:
            raise CommandError("ERR CLIENT CACHING YES is only valid when tracking is enabled "
                               "in OPTIN mode.")
    elif answer == b"no":
        if not settings.optout:
            raise CommandError("ERR CLIENT CACHING NO is only valid when tracking is enabled "
                               "in OPTOUT mode.")
    else:
        raise CommandError(SYNTAX)
    settings.caching = True
    return OK


def _client_getredir(session, argv):
    settings = session.tracking
    return -1 if settings is None else settings.redirect


def _client_trackinginfo(session, argv):
    settings = session.tracking
    if settings is None:
        return Pairs([(b"flags", [b"off"]), (b"redirect", -1), (b"prefixes", [])])
    prefixes = sorted(settings.prefixes) if settings.bcast else []
    return Pairs([(b"flags", settings.flags()), (b"redirect", settings.redirect),
                  (b"prefixes", prefixes)])


_CLIENT = subcommands("client")
_CLIENT[b"tracking"] = (-3, _client_tracking)
_CLIENT[b"caching"] = (3, _client_caching)
_CLIENT[b"getredir"] = (2, _client_getredir)
_CLIENT[b"trackinginfo"] = (2, _client_trackinginfo)
