"""The ACL log, as Redis 7.0's: denied commands, keys, channels and failed logins.

An entry is grouped with a similar recent one (same reason, context, object and user,
within 60 s, among the 10 newest) by bumping its count; the newest entries come first and
the log keeps ``acllog-max-len`` of them. Each denial is also counted for INFO
(``acl_access_denied_*``).
"""

from __future__ import annotations

from kvtwist.engine.config import integer
from kvtwist.engine.table import define_config
from kvtwist.wire.replies import Pairs

COMMAND, KEY, CHANNEL, AUTH = "command", "key", "channel", "auth"
GROUPING_SECONDS = 60.0
SCAN = 10  # entries looked at for one to group with


class Entry:
    """One ACL LOG entry."""

    __slots__ = ("count", "reason", "context", "object", "username", "time", "client_info")

    def __init__(self, reason: str, context: str, obj: bytes, username: bytes, time: float,
                 client_info: bytes) -> None:
        self.count = 1
        self.reason = reason
        self.context = context
        self.object = obj
        self.username = username
        self.time = time
        self.client_info = client_info

    def similar(self, other: "Entry") -> bool:
        """ACLLogMatchEntry: whether ``other`` is the same event again."""
        return (self.reason == other.reason and self.context == other.context
                and abs(self.time - other.time) <= GROUPING_SECONDS
                and self.object == other.object and self.username == other.username)


class AclLog:
    """The entries (newest first) and the denial counters INFO shows."""

    def __init__(self) -> None:
        self.entries = []
        self.max_len = 128
        self.denied = {COMMAND: 0, KEY: 0, CHANNEL: 0, AUTH: 0}

    def add(self, entry: Entry) -> None:
        """Record ``entry``, grouping it with a similar recent one: O(SCAN)."""
        self.denied[entry.reason] += 1
        for index, current in enumerate(self.entries[:SCAN]):
            if current.similar(entry):
                del self.entries[index]
                current.client_info = entry.client_info
                current.time = entry.time
                current.count += 1
                self.entries.insert(0, current)
                return
        self.entries.insert(0, entry)
        del self.entries[self.max_len:]

    def reset(self) -> None:
        """ACL LOG RESET."""
        self.entries = []

    def reply(self, count: int, now: float) -> list:
        """ACL LOG [count]: the ``count`` newest entries as Redis's 7-field maps."""
        return [Pairs([(b"count", entry.count), (b"reason", entry.reason.encode()),
                       (b"context", entry.context.encode()), (b"object", entry.object),
                       (b"username", entry.username),
                       (b"age-seconds", format_double((now - entry.time))),
                       (b"client-info", entry.client_info)])
                for entry in self.entries[:max(count, 0)]]


def format_double(value: float) -> bytes:
    """Return a double as Redis's addReplyDouble writes it in RESP2 (%.17g)."""
    # Redis measures whole milliseconds.
    value = int(round(value * 1000)) / 1000.0
    text = b"%.17g" % (value,)
    return text


def log_for(store) -> AclLog:
    """Return the store's ACL log, made on first use."""
    log = getattr(store, "acl_log", None)
    if log is None:
        log = store.acl_log = AclLog()
        log.max_len = int(store.config.get("acllog-max-len", "128"))
    return log


def client_info(session, argv=None) -> bytes:
    """Return CLIENT LIST's line for ``session`` running ``argv`` (its current command by
    default)."""
    from kvtwist.engine.clients import client_line

    store = session.store
    saved = session.last_argv, store.current
    if argv is not None:  # a refused command: describe it as the one in hand, as Redis does
        session.last_argv, store.current = argv, session
    try:
        line = client_line(session)
    finally:
        session.last_argv, store.current = saved
    return line


def record(session, reason: str, obj: bytes, username=None, argv=None) -> None:
    """Log a denial by ``session`` (context: multi inside MULTI/EXEC, else toplevel)."""
    store = session.store
    context = "multi" if (session.multi is not None or session.in_exec) else "toplevel"
    log_for(store).add(Entry(reason, context, obj,
                             session.user.name if username is None else username,
                             store.clock.seconds(), client_info(session, argv)))


def _set_max_len(store, value: int) -> None:
    log = log_for(store)
    log.max_len = value
    del log.entries[value:]


define_config("acllog-max-len", "128", integer(0, 2 ** 63 - 1), _set_max_len)
