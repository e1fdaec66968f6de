"""The shared Store, per-connection Sessions and ``Session.execute``, the dispatch hot path."""

from __future__ import annotations

from time import perf_counter_ns

from kvtwist.engine import commands as _commands  # noqa: F401 (fills the table)
from kvtwist.engine.config import defaults
from kvtwist.engine.databases import DEFAULT_DATABASES, IN_DB, Databases
from kvtwist.engine.evict import OOM
from kvtwist.engine.keyspace import FLUSH
from kvtwist.engine.stats import Stats
from kvtwist.engine.table import _LOOKUP, TABLE, arity_error, unknown_command, write_refused
from kvtwist.engine.acl_check import NO_RANGE, denied as acl_denied
from kvtwist.engine.users import NOAUTH, auth_for
from kvtwist.engine.objects import touched
from kvtwist.wire.replies import CommandError, Error



class NullJournal:
    """The journal of an in-memory store: every append is acknowledged at once."""

    def __init__(self) -> None:
        self.appended = 0
        self.acked = 0
        self.failure = None

    def append(self, effect) -> None:
        """Count one effect; it is acknowledged immediately."""
        self.appended += 1
        self.acked = self.appended

    def failure_for(self, seq: int):
        """Return None: nothing is ever lost by a journal that never writes."""
        return None

    def on_acked(self, seq: int, callback, arg) -> None:
        """Call ``callback(failure_for, arg)`` now: every effect is already acknowledged."""
        callback(self.failure_for, arg)

    def info(self) -> dict:
        """Return INFO ``# Persistence`` fields."""
        return {"aof_enabled": 0, "journal": "none", "journal_appended": self.appended,
                "journal_acked": self.acked}


class Store:
    """State shared by every connection: keyspace, journal, clients, config and stats."""

    def __init__(self, clock, journal=None, config=None,
                 databases: int = DEFAULT_DATABASES) -> None:
        self.clock = clock
        self.databases = Databases(clock, databases)
        self.databases.on_swap.append(self._swapped)
        self._observers = []
        self.current = None  # the session whose command runs now: who caused each effect
        self.journal = None
        self.set_journal(journal if journal is not None else NullJournal())
        self.clients: dict = {}
        self.config = defaults()
        self.stats = Stats(clock)
        if config:
            self.config.update(config)
        self.started = clock.seconds()
        self.port = None
        self.commands_processed = 0
        self.connections_received = 0
        self._last_id = 0
        self.monitors = []  # MONITOR sessions (kvtwist.engine.monitor feeds them)
        self.pause_mode = None  # CLIENT PAUSE: b"write" or b"all" until pause_end
        self.pause_end = 0.0
        self.maxmemory = 0  # bytes (CONFIG maxmemory); 0: no limit (see engine/evict.py)
        self.evictor = None
        self.blocking = None  # blocked clients (engine/blocking.py), once one blocks

    def set_journal(self, journal) -> None:
        """Use ``journal`` from now on and log every keyspace effect to it.

        A journal that can roll effects back (``rollback_hooks``) reports what it undid,
        and observers hear of it as of any other change.
        """
        self.journal = journal
        self.databases.recount()  # a journal attached after loading: count what it loaded
        hooks = getattr(journal, "rollback_hooks", None)
        if hooks is not None:
            hooks.append(self._rolled_back)
        self._bind_log()

    @property
    def keyspace(self):
        """Return database 0 (the one a new connection starts in)."""
        return self.databases[0]

    def _swapped(self, a: int, b: int) -> None:
        # SWAPDB moved keyspace objects: sessions follow their database numbers.
        databases = self.databases
        for session in self.clients.values():
            if session.db == a or session.db == b:
                session.keyspace = databases[session.db]

    def _rolled_back(self, changes: list) -> None:
        for observer in tuple(self._observers):
            for keyspace, effect in changes:
                observer(effect, keyspace.index)

    def log_swap(self, a: int, b: int) -> None:
        """SWAPDB ``a`` ``b``: swap the two databases and log it (observers hear two FLUSHes)."""
        self.databases.swap(a, b, self.journal.append)
        for observer in tuple(self._observers):
            observer(FLUSH_EFFECT, a)
            observer(FLUSH_EFFECT, b)

    def observe(self, observer) -> None:
        """Call ``observer(effect, db)`` after each effect reaches the journal (tracking, WATCH).

        ``effect`` is the keyspace's effect tuple, ``db`` the index of the database it changed.
        """
        if observer not in self._observers:
            self._observers.append(observer)
            self._bind_log()

    def unobserve(self, observer) -> None:
        """Stop calling ``observer``; a store nobody observes logs straight to its journal."""
        if observer in self._observers:
            self._observers.remove(observer)
            self._bind_log()

    def _bind_log(self) -> None:
        append = self.journal.append
        observers = tuple(self._observers)
        for keyspace in self.databases:
            keyspace.log = _log_function(keyspace, append, observers)

    def new_session(self, peer: str = "") -> "Session":
        """Return a new registered Session for one connection."""
        self._last_id += 1
        self.connections_received += 1
        session = Session(self, self._last_id, peer)
        self.clients[session.id] = session
        return session

    def drop_session(self, session: "Session") -> None:
        """Forget a closed connection's Session."""
        self.clients.pop(session.id, None)
        if self.blocking is not None:  # a blocked client that goes away loses nothing
            self.blocking.cancel(session)
        pubsub = getattr(self, "pubsub", None)
        if pubsub is not None:  # a gone client's subscriptions end (NUMSUB, NUMPAT)
            pubsub.leave_all(session)
        watching = getattr(session, "watching", None)
        if watching is not None:  # a gone client's watches must not keep the store observed
            watching.clear()
            session.watching = None


FLUSH_EFFECT = (FLUSH,)


def _log_function(keyspace, append, observers: tuple):
    """Return the function a keyspace logs its effects with: to the journal, then observers."""
    label = keyspace.label
    if not observers:
        if label == 0:
            # The common case pays nothing per write for features nobody is using.
            return append

        def log_labelled(effect) -> None:
            append((IN_DB, label, effect))
        return log_labelled

    def log(effect) -> None:
        append(effect if label == 0 else (IN_DB, label, effect))
        index = keyspace.index
        for observer in observers:
            observer(effect, index)
    return log


class Session:
    """One client's view: identity, name, and ``execute``, the per-command hot path."""

    table = TABLE
    no_touch = False  # CLIENT NO-TOUCH ON: reads leave keys' access times alone (objects.py)
    blocked = None  # the blocking.Blocked this client waits on (BLPOP...), if any

    def __init__(self, store: Store, id: int = 0, peer: str = "") -> None:
        self.store = store
        self.keyspace = store.keyspace
        self.db = 0  # the selected database number; self.keyspace is that database
        self.id = id
        self.peer = peer
        self.name = None
        self.lib_name = b""
        self.lib_ver = b""
        self.created = store.clock.seconds()
        self.closing = False
        self.protocol = 2  # HELLO 3 switches the connection's replies to RESP3
        self.push = None
        # The serve layer's push that waits for no pending write (invalidations), if any.
        self.push_early = None
        self.last_command = b""
        self.last_argv = ()  # CLIENT LIST's cmd and qbuf fields
        # Set by the serve layer: local address, file descriptor, time of the last read.
        self.laddr = ""
        self.fd = -1
        self.last_interaction = self.created
        self.disconnect = None  # the serve layer's "close after pending replies"
        self.no_evict = self.no_touch = False  # CLIENT NO-EVICT / NO-TOUCH
        self.reply_mode = b"on"  # CLIENT REPLY: on, off, skip (the next command)
        self.multi = None  # a transactions.Transaction while MULTI is open
        self.watching = None  # WATCHed keys (transactions._Watching)
        self.tracking = None  # CLIENT TRACKING settings (tracking._Tracking) while on
        self.in_exec = False  # running a transaction's queued commands
        # Pushes for this client that must follow the reply of the command running now
        # (invalidations its own command caused); the protocol sends them after it.
        self.after_reply = []
        # Logged in: at once when the default user has no password (Redis's nopass).
        auth = auth_for(store)
        self.authenticated = not auth.required
        self.user = auth.default  # the ACL user (engine/users.py); AUTH changes it
        self.auth_penalty_until = 0.0

    def select(self, index: int) -> None:
        """Make database ``index`` (in range) the one this client has selected."""
        self.db = index
        self.keyspace = self.store.databases[index]

    def execute(self, argv):
        """Run one command; return its reply value (errors included, never raises for input)."""
        if not argv:
            return Error("ERR empty command")
        try:
            command = _LOOKUP[argv[0]]
        except KeyError:
            command = _LOOKUP.get(argv[0].lower())
            if command is None:
                if self.multi is not None:
                    self.multi.failed = True
                return self.store.stats.rejected(None, unknown_command(argv))
        arity = command.arity
        if (len(argv) != arity) if arity > 0 else (len(argv) < -arity):
            if self.multi is not None:
                self.multi.failed = True
            return self.store.stats.rejected(command, arity_error(command.name))
        if not self.authenticated and not command.no_auth and self.store.auth.required:
            if self.multi is not None:
                self.multi.failed = True
            return self.store.stats.rejected(command, Error(NOAUTH))
        if not self.user.all_allowed:  # ACL users (engine/acl_check.py)
            # An allowed command's key range, tested inline (no call, no allocation).
            position, low, high = self.user.ranges.get(command, NO_RANGE)
            if not low <= argv[position] < high:
                refused = acl_denied(self, command, argv)
                if refused is not None:
                    if self.multi is not None:
                        self.multi.failed = True
                    return self.store.stats.rejected(command, refused)
        store = self.store
        if store.maxmemory and store.evictor.over():
            # Redis's performEvictions, before any command; only denyoom ones are refused.
            if not store.evictor.make_room() and command.denyoom:
                if self.multi is not None:
                    self.multi.failed = True
                return store.stats.rejected(command, Error(OOM))
        if self.multi is not None:
            reply = self.multi.admit(self, command, argv)
            if reply is not None:
                return reply
        if command.write and store.journal.failure is not None:
            return store.stats.rejected(command, Error(write_refused(store.journal.failure)))
        self.last_command = command.name
        self.last_argv = argv
        store.current = self
        started = perf_counter_ns()
        try:
            reply = command.handler(self, argv)
        except CommandError as exc:
            reply = Error(exc.message)
        if command.first_key:  # stamp its keys' access time (OBJECT IDLETIME)
            touched(self, command, argv, reply)
        # Counted after the handler, as Redis's call() does: CONFIG RESETSTAT counts itself.
        store.commands_processed += 1
        store.stats.called(self, command, argv, reply, perf_counter_ns() - started)
        if self.tracking is not None:
            store.tracker.after_command(self, command, argv)
        if store.monitors:  # MONITOR sees each command after it ran, as Redis's call()
            store.feed_monitors(self, command, argv)
        if store.blocking is not None and store.blocking.ready and not self.in_exec:
            store.blocking.serve_ready()  # after the command (EXEC: after all), as Redis
        return reply
