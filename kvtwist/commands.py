"""The command table, the shared Store, per-connection Sessions and the dispatch hot path."""

from __future__ import annotations

from kvtwist.keyspace import Keyspace
from kvtwist.replies import Error, CommandError

LLONG_MIN = -(2 ** 63)
LLONG_MAX = 2 ** 63 - 1
MAX_STRING = 512 * 1024 * 1024

NOT_INTEGER = "ERR value is not an integer or out of range"
SYNTAX = "ERR syntax error"
TOO_BIG = "ERR string exceeds maximum allowed size (proto-max-bulk-len)"

DEFAULT_CONFIG = {
    "save": "",
    "appendonly": "no",
    "appendfsync": "everysec",
    "maxmemory": "0",
    "maxmemory-policy": "noeviction",
    "databases": "1",
    "maxclients": "10000",
    "timeout": "0",
    "proto-max-bulk-len": str(MAX_STRING),
    "hz": "10",
}


class Command:
    """One command-table entry: name, Redis arity, flags, key positions and handler."""

    __slots__ = ("name", "arity", "flags", "first_key", "last_key", "step", "handler", "write")

    def __init__(self, name: bytes, arity: int, flags, first_key: int, last_key: int,
                 step: int, handler) -> None:
        self.name = name
        self.arity = arity
        self.flags = tuple(flags)
        self.first_key = first_key
        self.last_key = last_key
        self.step = step
        self.handler = handler
        self.write = "write" in self.flags

    def __repr__(self) -> str:
        return "Command(%r, %d)" % (self.name, self.arity)


# name (lowercase bytes) -> Command; _LOOKUP adds upper-case spellings so most calls hit first.
TABLE: dict = {}
_LOOKUP: dict = {}


def register(name: str, arity: int, flags: str, first_key: int = 0, last_key: int = 0,
             step: int = 0, aliases: str = ""):
    """Return a decorator adding its handler(session, argv) under ``name`` and its aliases."""
    def decorate(handler):
        for each in [name] + aliases.split():
            entry = Command(each.encode(), arity, flags.split(), first_key, last_key, step, handler)
            TABLE[entry.name] = entry
            _LOOKUP[entry.name] = entry
            _LOOKUP[entry.name.upper()] = entry
        return handler
    return decorate


def arity_error(name) -> Error:
    """Return Redis's wrong-number-of-arguments error for a command (or 'cmd|sub') name."""
    if isinstance(name, bytes):
        name = name.decode("utf-8", "replace")
    return Error("ERR wrong number of arguments for '%s' command" % (name,))


def _c_str(value: bytes, limit: int) -> bytes:
    # Redis formats these with %.*s: stops at a NUL and at the byte limit.
    return value.split(b"\0", 1)[0][:limit]


def unknown_command(argv) -> Error:
    """Return Redis 7's exact unknown-command error for an argument vector."""
    args = b""
    for arg in argv[1:]:
        if len(args) >= 128:
            break
        args += b"'" + _c_str(arg, 128 - len(args)) + b"' "
    return Error("ERR unknown command '%s', with args beginning with: %s" % (
        _c_str(argv[0], 128).decode("utf-8", "replace"), args.decode("utf-8", "replace")))


def unknown_subcommand(argv) -> Error:
    """Return Redis's unknown-subcommand error, e.g. "Try CLIENT HELP."."""
    return Error("ERR unknown subcommand '%s'. Try %s HELP." % (
        _c_str(argv[1], 128).decode("utf-8", "replace"),
        argv[0].decode("utf-8", "replace").upper()))


def expire_time_error(name: str) -> CommandError:
    """Return Redis's invalid-expire-time error for a command name."""
    return CommandError("ERR invalid expire time in '%s' command" % (name,))


def parse_int(value: bytes) -> int:
    """Return a signed 64-bit integer in Redis's strict form; raise CommandError otherwise."""
    try:
        number = int(value)
    except ValueError:
        raise CommandError(NOT_INTEGER)
    # int() also takes spaces, '+', '_' and leading zeros; string2ll takes none of them.
    if b"%d" % number != value or not LLONG_MIN <= number <= LLONG_MAX:
        raise CommandError(NOT_INTEGER)
    return number


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

    def when_acked(self, seq: int):
        """Return a Deferred already fired with None (no persistence failure)."""
        from twisted.internet import defer  # deferred import keeps this module reactor-free
        return defer.succeed(None)

    def info(self) -> dict:
        """Return INFO ``# Persistence`` fields."""
        return {"aof_enabled": 0, "journal": "none", "journal_appended": self.appended,
                "journal_acked": self.acked}


class Store:
    """State shared by every connection: keyspace, journal, clients, config and stats."""

    def __init__(self, clock, journal=None, config=None) -> None:
        self.clock = clock
        self.keyspace = Keyspace(clock)
        self._observers = []
        self.current = None  # the session whose command runs now: who caused each effect
        self.journal = None
        self.set_journal(journal if journal is not None else NullJournal())
        self.clients: dict = {}
        self.config = dict(DEFAULT_CONFIG)
        if config:
            self.config.update(config)
        self.started = clock.seconds()
        self.port = None
        self.commands_processed = 0
        self.connections_received = 0
        self._last_id = 0

    def set_journal(self, journal) -> None:
        """Use ``journal`` from now on and log every keyspace effect to it."""
        self.journal = journal
        self._bind_log()

    def observe(self, observer) -> None:
        """Call ``observer(effect)`` after each effect reaches the journal (tracking, WATCH)."""
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
        if not observers:
            # The common case pays nothing per write for features nobody is using.
            self.keyspace.log = append
            return

        def log(effect) -> None:
            append(effect)
            for observer in observers:
                observer(effect)

        self.keyspace.log = log

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
        watching = getattr(session, "watching", None)
        if watching is not None:  # a gone client's watches must not keep the store observed
            watching.clear()
            session.watching = None


class Session:
    """One client's view: identity, name, and ``execute``, the per-command hot path."""

    table = TABLE

    def __init__(self, store: Store, id: int = 0, peer: str = "") -> None:
        self.store = store
        self.keyspace = store.keyspace
        self.id = id
        self.peer = peer
        self.name = None
        self.lib_name = b""
        self.lib_ver = b""
        self.created = store.clock.seconds()
        self.closing = False
        self.protocol = 2  # HELLO 3 switches the connection's replies to RESP3
        self.push = None
        self.last_command = b""
        self.multi = None  # a transactions.Transaction while MULTI is open
        self.watching = None  # WATCHed keys (transactions._Watching)

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
                return unknown_command(argv)
        arity = command.arity
        if (len(argv) != arity) if arity > 0 else (len(argv) < -arity):
            if self.multi is not None:
                self.multi.failed = True
            return arity_error(command.name)
        if self.multi is not None:
            reply = self.multi.admit(self, command, argv)
            if reply is not None:
                return reply
        store = self.store
        if command.write and store.journal.failure is not None:
            return Error("ERR persistence failed: %s; writes are refused until the journal "
                         "writes again" % (store.journal.failure,))
        self.last_command = command.name
        store.current = self
        try:
            reply = command.handler(self, argv)
        except CommandError as exc:
            reply = Error(exc.message)
        # Counted after the handler, as Redis's call() does: CONFIG RESETSTAT counts itself.
        store.commands_processed += 1
        return reply


# Each command module registers into TABLE on import and imports its helpers from here, so
# they come last: whichever kvtwist module is imported first, the whole table ends up
# registered (admin imports tracking, which adds pub/sub and CLIENT TRACKING).
from kvtwist import strcmds as _strcmds  # noqa: E402,F401
from kvtwist import keycmds as _keycmds  # noqa: E402,F401
from kvtwist import admin as _admin  # noqa: E402,F401
from kvtwist import transactions as _transactions  # noqa: E402,F401
