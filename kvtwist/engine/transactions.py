"""Redis transactions for kvstore: MULTI, EXEC, DISCARD, WATCH, UNWATCH and RESET."""

from __future__ import annotations

from kvtwist.engine.table import register, write_refused
from kvtwist.engine.keyspace import FLUSH
from kvtwist.engine.evict import OOM
from kvtwist.engine.users import auth_for
from kvtwist.wire.replies import NIL_ARRAY, OK, Error, Status

QUEUED = Status(b"QUEUED")
RESET = Status(b"RESET")
EXECABORT = "EXECABORT Transaction discarded because of previous errors."

# Inside MULTI these run at once; everything else is queued (Redis's processCommand list).
_IMMEDIATE = frozenset([b"exec", b"discard", b"multi", b"watch", b"quit", b"exit", b"reset"])


class Transaction:
    """One session's open MULTI: the queued commands and whether one was refused."""

    __slots__ = ("queued", "failed", "writes", "denyoom")

    def __init__(self) -> None:
        self.queued = []
        self.failed = False
        self.writes = False
        self.denyoom = False  # holds a command refused over maxmemory (checked at EXEC)

    def admit(self, session, command, argv):
        """Return QUEUED (queuing argv), an error (flagging the transaction), or None to run now."""
        if command.name in _IMMEDIATE:
            return None
        if "no_multi" in command.flags:  # SAVE, SHUTDOWN: refused now, dooming the EXEC
            self.failed = True
            return Error("ERR Command not allowed inside a transaction")
        if command.write:
            failure = session.store.journal.failure
            if failure is not None:
                # Redis refuses a write at queue time under MISCONF and so dooms the EXEC.
                self.failed = True
                return Error(write_refused(failure))
            self.writes = True
        if command.denyoom:
            self.denyoom = True
        self.queued.append(argv)
        return QUEUED


class Watches:
    """A store's watched keys: notes, per session, whether a watched key was modified.

    Only while some session watches a key does it observe the store's effects, so
    stores without WATCH pay nothing per write.
    """

    def __init__(self, store) -> None:
        self.store = store
        self.keys = {}  # (db, key) -> {id(watching): _Watching}

    def _log(self, effect, db: int) -> None:
        keys = self.keys
        if effect[0] == FLUSH:
            # A FLUSH (or a SWAPDB, logged to observers as a FLUSH of both databases)
            # dirties the watches of keys in that database that existed at WATCH time or
            # exist now, as Redis's touchAllWatchedKeysInDb does.
            keyspace = self.store.databases[db]
            for (key_db, key), watchers in list(keys.items()):
                if key_db == db:
                    exists_now = keyspace.exists(key)
                    for watching in list(watchers.values()):
                        watching.flushed((key_db, key), exists_now)
            return
        watchers = keys.get((db, effect[1]))
        if watchers:
            for watching in list(watchers.values()):
                watching.touch()

    def add(self, key: tuple, watching: "_Watching") -> None:
        """Register ``watching``'s interest in ``key``, a (db, key name) pair."""
        if not self.keys:
            self.store.observe(self._log)
        self.keys.setdefault(key, {})[id(watching)] = watching

    def remove(self, key: tuple, watching: "_Watching") -> None:
        """Drop ``watching``'s interest in ``key``; stop observing once nobody watches."""
        watchers = self.keys.get(key)
        if watchers is not None:
            watchers.pop(id(watching), None)
            if not watchers:
                del self.keys[key]
        if not self.keys:
            self.store.unobserve(self._log)


class _Watching:
    """One session's WATCHed (db, key) pairs, each with whether it was live when watched."""

    __slots__ = ("watches", "live", "dirty")

    def __init__(self, watches: Watches) -> None:
        self.watches = watches
        self.live = {}
        self.dirty = False

    def touch(self) -> None:
        self.dirty = True

    def flushed(self, key: tuple, exists_now: bool) -> None:
        if exists_now or self.live.get(key):
            self.dirty = True

    def expired(self, databases) -> bool:
        """Return whether a key live at WATCH has since expired (expiry is never logged)."""
        for (db, key), live in self.live.items():
            if live and not databases[db].exists(key):
                return True
        return False

    def clear(self) -> None:
        """Forget every watched key (UNWATCH, EXEC, DISCARD, RESET, disconnect)."""
        for key in self.live:
            self.watches.remove(key, self)
        self.live = {}
        self.dirty = False


def watches_for(store) -> Watches:
    """Return the store's Watches, creating it on first use."""
    watches = getattr(store, "watches", None)
    if watches is None:
        watches = store.watches = Watches(store)
    return watches


def unwatch(session) -> None:
    """Drop all of ``session``'s watches."""
    watching = session.watching
    if watching is not None:
        watching.clear()
        session.watching = None


@register("multi", 1, "noscript loading stale fast allow_busy", 0, 0, 0)
def cmd_multi(session, argv):
    if session.multi is not None:
        return Error("ERR MULTI calls can not be nested")
    session.multi = Transaction()
    return OK


@register("discard", 1, "noscript loading stale fast allow_busy", 0, 0, 0)
def cmd_discard(session, argv):
    if session.multi is None:
        return Error("ERR DISCARD without MULTI")
    session.multi = None
    unwatch(session)
    return OK


@register("exec", 1, "noscript loading stale skip_slowlog", 0, 0, 0)
def cmd_exec(session, argv):
    """Run the queued commands; return their replies, NIL_ARRAY on a WATCH conflict, or an error."""
    transaction = session.multi
    if transaction is None:
        return Error("ERR EXEC without MULTI")
    session.multi = None
    failure = session.store.journal.failure
    if transaction.writes and failure is not None:
        # Redis refuses an EXEC holding writes as a whole under MISCONF: atomicity first.
        unwatch(session)
        return Error("EXECABORT Transaction discarded because of: " + write_refused(failure))
    store = session.store
    if (transaction.denyoom and store.maxmemory
            and store.databases.meter.used > store.maxmemory
            and not store.evictor.make_room()):
        # Redis rejects such an EXEC as a whole when over maxmemory (execCommandAbort).
        unwatch(session)
        return Error("EXECABORT Transaction discarded because of: " + OOM)
    watching = session.watching
    dirty = False
    if watching is not None:
        dirty = watching.dirty or watching.expired(session.store.databases)
        unwatch(session)
    if transaction.failed:
        return Error(EXECABORT)
    if dirty:
        return NIL_ARRAY
    # The commands run back to back in this reactor turn, so their journal effects are
    # appended together and commit in one group: nothing else is needed for atomicity.
    execute = session.execute
    session.in_exec = True  # MONITOR and WAIT answer differently inside a transaction
    try:
        return [execute(queued) for queued in transaction.queued]
    finally:
        session.in_exec = False


@register("watch", -2, "noscript loading stale fast allow_busy", 1, -1, 1)
def cmd_watch(session, argv):
    if session.multi is not None:
        return Error("ERR WATCH inside MULTI is not allowed")
    watching = session.watching
    if watching is None:
        watching = session.watching = _Watching(watches_for(session.store))
    keyspace, db = session.keyspace, session.db
    for name in argv[1:]:
        key = (db, name)
        if key not in watching.live:
            watching.watches.add(key, watching)
            watching.live[key] = keyspace.exists(name)
    return OK


@register("unwatch", 1, "noscript loading stale fast allow_busy", 0, 0, 0)
def cmd_unwatch(session, argv):
    unwatch(session)
    return OK


@register("reset", 1, "noscript loading stale fast no_auth allow_busy", 0, 0, 0)
def cmd_reset(session, argv):
    """Return the connection to its initial state, as Redis's RESET does."""
    session.multi = None
    unwatch(session)
    session.name = None
    session.protocol = 2
    session.select(0)
    session.reply_mode = b"on"  # CLIENT REPLY ON, and MONITOR ends, as Redis's RESET
    if session in session.store.monitors:
        session.store.monitors.remove(session)
    tracker = getattr(session.store, "tracker", None)
    if tracker is not None:
        if session.id in tracker.tracking:
            tracker.disable(session)
    pubsub = getattr(session.store, "pubsub", None)
    if pubsub is not None:
        pubsub.leave_all(session)
    # Logged out: the default user, authenticated only if it needs no password.
    auth = auth_for(session.store)
    session.user = auth.default
    session.authenticated = not auth.required
    return RESET
