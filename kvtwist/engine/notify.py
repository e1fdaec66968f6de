"""Keyspace notifications as Redis 7.0's notify.c: ``notify-keyspace-events`` and the
``__keyspace@<db>__:<key>`` / ``__keyevent@<db>__:<event>`` messages.

Events are derived, not emitted by each command: while notifications are on, the
L{Notifier} observes the store's effect stream and names each effect by the command that
logged it (``store.current.last_command``) as Redis's command would (``EVENTS``); keys
expiring come from each keyspace's ``on_expired`` hook, typed values emptied by a write
("del") from its ``on_emptied`` hook, new keys ("n") from a check the
notifier adds to each keyspace's ``set``/``setrange`` while that class is on, and key misses
("m") from one it adds to ``get``/``exists``, counted for read commands only. With
``notify-keyspace-events`` empty (or naming no event class, or neither K nor E, with which
Redis publishes nothing either) nothing is observed or wrapped: no cost at all.
"""

from __future__ import annotations

from kvtwist.engine.keyspace import DEL, EXPIRE_AT, MUTATE, PERSIST, SET, SETRANGE
from kvtwist.engine.table import TABLE, define_config

from kvtwist.engine.events import (  # noqa: F401 (the flags are this module's too)
    ALL, EVENTS, EVICTED, EXPIRED, GENERIC, HASH, KEY_MISS, KEYEVENT, KEYSPACE, LIST, MODULE,
    NEW, READS, SET_CLASS, STREAM, STRING, ZSET)

_LETTERS = {"A": ALL, "g": GENERIC, "$": STRING, "l": LIST, "s": SET_CLASS, "h": HASH,
            "z": ZSET, "x": EXPIRED, "e": EVICTED, "K": KEYSPACE, "E": KEYEVENT, "t": STREAM,
            "m": KEY_MISS, "d": MODULE, "n": NEW}
# keyspaceEventsFlagsToString's order.
_CLASS_ORDER = (("g", GENERIC), ("$", STRING), ("l", LIST), ("s", SET_CLASS), ("h", HASH),
                ("z", ZSET), ("x", EXPIRED), ("e", EVICTED), ("t", STREAM), ("d", MODULE),
                ("n", NEW))


def parse_flags(text: str) -> int:
    """Return the flags of a notify-keyspace-events value (keyspaceEventsStringToFlags)."""
    flags = 0
    for letter in text:
        flag = _LETTERS.get(letter)
        if flag is None:
            raise ValueError("Invalid event class character. Use 'Ag$lshzxeKEtmdn'.")
        flags |= flag
    return flags


def flags_text(flags: int) -> str:
    """Return the normalised text CONFIG GET shows (keyspaceEventsFlagsToString)."""
    if flags & ALL == ALL:
        text = "A"
    else:
        text = "".join(letter for letter, flag in _CLASS_ORDER if flags & flag)
    if flags & KEYSPACE:
        text += "K"
    if flags & KEYEVENT:
        text += "E"
    if flags & KEY_MISS:
        text += "m"
    return text


# -- what each command's effects are called -------------------------------------------

_G, _S = GENERIC, STRING


def _events(*pairs) -> dict:
    """Map opcodes to an event: ``(opcode, class, name)`` triples."""
    return {opcode: (flag, name) for opcode, flag, name in pairs}


_SETS = _events((SET, _S, "set"))
_DELS = _events((DEL, _G, "del"))
_EXPIRES = _events((EXPIRE_AT, _G, "expire"), (DEL, _G, "del"))
_RENAME = _events((DEL, _G, "rename_from"), (SET, _G, "rename_to"))
_SETBIT = _events((SET, _S, "setbit"), (SETRANGE, _S, "setbit"))

# command name -> {opcode: (class, event)}; from the notifyKeyspaceEvent calls of Redis
# 7.0's t_string.c, db.c, expire.c, bitops.c and cluster.c (RESTORE). A command or effect
# not listed here notifies nothing (FLUSHDB, FLUSHALL, SWAPDB, TOUCH: as Redis). The type
# families declare theirs in engine/events.py.
EVENTS.update({
    b"set": _SETS, b"put": _SETS, b"setnx": _SETS, b"getset": _SETS, b"mset": _SETS,
    b"msetnx": _SETS, b"setex": _SETS, b"psetex": _SETS,
    b"incr": _events((SET, _S, "incrby")), b"decr": _events((SET, _S, "incrby")),
    b"incrby": _events((SET, _S, "incrby")), b"decrby": _events((SET, _S, "incrby")),
    b"incrbyfloat": _events((SET, _S, "incrbyfloat")),
    b"append": _events((SETRANGE, _S, "append"), (SET, _S, "append")),
    b"setrange": _events((SETRANGE, _S, "setrange"), (SET, _S, "setrange")),
    b"del": _DELS, b"delete": _DELS, b"remove": _DELS, b"unlink": _DELS, b"getdel": _DELS,
    b"expire": _EXPIRES, b"pexpire": _EXPIRES, b"expireat": _EXPIRES, b"pexpireat": _EXPIRES,
    b"getex": _events((EXPIRE_AT, _G, "expire"), (PERSIST, _G, "persist"), (DEL, _G, "del")),
    b"persist": _events((PERSIST, _G, "persist")),
    b"rename": _RENAME, b"renamenx": _RENAME,
    b"copy": _events((SET, _G, "copy_to")),
    b"move": _events((DEL, _G, "move_from"), (SET, _G, "move_to")),
    b"restore": _events((SET, _G, "restore"), (DEL, _G, "del")),
    b"setbit": _SETBIT, b"bitfield": _SETBIT,
    b"bitop": _events((SET, _S, "set"), (DEL, _G, "del")),
})
# These SETs also set a time to live: Redis adds an "expire" event after "set". (SET's own
# KEEPTTL keeps the old one and so is told apart by the options it was given.)
# The commands whose keyspace.get (or keyspace.exists) is a read lookup, one that sends
# "keymiss" on a missing key (lookupKeyRead); the other lookups are writes' (lookupKeyWrite).
# (The type families add theirs to READS: events.declare_reads.)
_MISS_GET = READS
_MISS_GET.update([b"get", b"mget", b"getrange", b"substr", b"strlen", b"getset",
                  b"getdel", b"getex", b"lcs", b"getbit", b"bitcount", b"bitpos",
                  b"bitfield_ro", b"dump", b"set", b"put", b"type"])
_MISS_EXISTS = frozenset([b"exists", b"ttl", b"pttl", b"expiretime",
                          b"pexpiretime"])
# RENAME and MOVE write the target (SET) before removing the source (DEL), so that a crash
# between the two can never lose the key; Redis tells "*_from" first, so "*_to" waits.
_HELD = frozenset(["rename_to", "move_to"])
_SET_EXPIRES = frozenset([b"set", b"put", b"setex", b"psetex"])


class Notifier:
    """Publishes a store's keyspace events while ``notify-keyspace-events`` asks for any."""

    def __init__(self, store) -> None:
        self.store = store
        self.flags = 0
        self.active = False
        self._wrapped = []  # keyspaces given a new-key check ("n")
        # RENAME's and MOVE's "*_to", held until their "*_from" has been told.
        self._held = None

    def configure(self, flags: int) -> None:
        """Use ``flags`` from now on; observe the store only while they can publish."""
        self.flags = flags
        store = self.store
        databases = getattr(store, "databases", None)
        if databases is None:  # (len(databases) counts keys: no databases is not "empty")
            databases = [store.keyspace]
        active = bool(flags & (KEYSPACE | KEYEVENT)) and bool(flags & ~(KEYSPACE | KEYEVENT))
        if active:
            store.observe(self._effect)
        else:
            store.unobserve(self._effect)
        if active != self.active:
            _watch_set_options(active)
        for keyspace in databases:
            if active and flags & EXPIRED:
                keyspace.on_expired = self._expired
            elif keyspace.on_expired == self._expired:
                keyspace.on_expired = None
            keyspace.on_emptied = self._emptied if active and flags & GENERIC else None
        self._unwrap()
        if active and flags & (NEW | KEY_MISS):
            for keyspace in databases:
                self._wrap(keyspace, bool(flags & NEW), bool(flags & KEY_MISS))
        self.active = active

    # -- publishing ---------------------------------------------------------------------

    def notify(self, flag: int, event: str, key: bytes, db: int) -> None:
        """Redis's notifyKeyspaceEvent: publish ``event`` on ``key`` if its class is on."""
        flags = self.flags
        if not flags & flag:
            return
        pubsub = getattr(self.store, "pubsub", None)
        if pubsub is None:
            return  # nobody ever subscribed: nobody to tell
        name = event.encode()
        if flags & KEYSPACE:
            pubsub.publish(b"__keyspace@%d__:%s" % (db, key), name)
        if flags & KEYEVENT:
            pubsub.publish(b"__keyevent@%d__:%s" % (db, name), key)

    def _effect(self, effect, db=None) -> None:
        # Called for every logged effect: with its database when the store names it,
        # otherwise that of the session whose command logged it.
        session = self.store.current
        if session is None:
            return
        if db is None:
            db = session.db
        command = session.last_command
        events = EVENTS.get(command)
        if events is None:
            return
        op = effect[0]
        # An operation on a typed value is named by its (type code, opcode).
        entry = events.get(op if op != MUTATE else (effect[2], effect[3]))
        if entry is None:
            return
        key = effect[1]
        if entry[1] in _HELD:
            if self._held is not None:
                self._release()
            self._held = (entry[0], entry[1], key, db)
            return
        self.notify(entry[0], entry[1], key, db)
        if self._held is not None:
            self._release()
        if op == SET and effect[3] and command in _SET_EXPIRES and not _keeps_ttl(session):
            self.notify(GENERIC, "expire", key, db)

    def _release(self) -> None:
        held, self._held = self._held, None
        self.notify(*held)

    def _expired(self, keyspace, key: bytes) -> None:
        self.notify(EXPIRED, "expired", key, keyspace.index)

    def _emptied(self, keyspace, key: bytes) -> None:
        # A typed-value write emptied (so removed) the key: Redis tells "del" after the
        # command's own event (engine/typedkeys.py).
        self.notify(GENERIC, "del", key, keyspace.index)

    # -- new keys ("n"): told before the write that creates them, as Redis's dbAdd -------

    def _wrap(self, keyspace, new: bool, miss: bool) -> None:
        notify = self.notify
        cls = type(keyspace)
        exists = cls.exists.__get__(keyspace)
        plain_set, plain_setrange = cls.set.__get__(keyspace), cls.setrange.__get__(keyspace)
        plain_get = cls.get.__get__(keyspace)
        plain_mutate = cls.mutate.__get__(keyspace)

        def set(key, value, expire_at_ms: int = 0) -> None:
            if not exists(key):
                notify(NEW, "new", key, keyspace.index)
            if self._held is not None:
                self._release()
            plain_set(key, value, expire_at_ms)

        def setrange(key, offset: int, patch: bytes) -> int:
            if not exists(key):
                notify(NEW, "new", key, keyspace.index)
            return plain_setrange(key, offset, patch)

        def mutate(key, value_class, opcode: int, args: tuple):
            if not exists(key):
                notify(NEW, "new", key, keyspace.index)
            return plain_mutate(key, value_class, opcode, args)

        # Key misses ("m"): a read lookup finding nothing, as Redis's lookupKeyRead. Which
        # lookups are reads depends on the command: its get or its exists (_MISS_*).
        def get(key):
            value = plain_get(key)
            if value is None and self._reads(_MISS_GET):
                notify(KEY_MISS, "keymiss", key, keyspace.index)
            return value

        def exists_or_miss(key) -> bool:
            found = exists(key)
            if not found and self._reads(_MISS_EXISTS):
                notify(KEY_MISS, "keymiss", key, keyspace.index)
            return found

        if new:
            keyspace.set = set
            keyspace.setrange = setrange
            keyspace.mutate = mutate
        if miss:
            keyspace.get = get
            keyspace.exists = exists_or_miss
        self._wrapped.append(keyspace)

    def _reads(self, commands: frozenset) -> bool:
        session = self.store.current
        if session is None:
            return False
        command = session.last_command
        if command in (b"set", b"put"):  # SET ... GET reads the old value
            argv = session.__dict__.get("set_argv")
            return commands is _MISS_GET and argv is not None and any(
                arg.lower() == b"get" for arg in argv[3:])
        return command in commands

    def _unwrap(self) -> None:
        for keyspace in self._wrapped:
            for name in ("set", "setrange", "mutate", "get", "exists"):
                keyspace.__dict__.pop(name, None)
        self._wrapped = []


def _keeps_ttl(session) -> bool:
    argv = session.__dict__.get("set_argv")
    return argv is not None and any(arg.lower() == b"keepttl" for arg in argv[3:])


# While any store notifies, these commands' handlers are wrapped: the wrapper leaves the
# argv on the session (so that SET ... KEEPTTL, whose effect carries the kept expiry, is
# not told as an "expire", and SET ... GET's lookup is a read) and, once the command is
# done, sends any "*_from" event still held. Nothing is wrapped while nobody notifies.
_WRAPPED = (b"set", b"put", b"rename", b"renamenx", b"move", b"copy")
_handlers = {}


def _watch_set_options(on: bool) -> None:
    if on:
        if not _handlers:
            for name in _WRAPPED:
                entry = TABLE.get(name)
                if entry is not None:
                    _handlers[name] = entry.handler
                    entry.handler = _remembering(entry.handler)
        _handlers[None] = _handlers.get(None, 0) + 1
        return
    _handlers[None] -= 1
    if _handlers[None] == 0:
        del _handlers[None]
        for name, handler in list(_handlers.items()):
            TABLE[name].handler = handler
        _handlers.clear()


def _remembering(handler):
    def with_argv(session, argv):
        session.set_argv = argv
        try:
            return handler(session, argv)
        finally:
            session.set_argv = None
            notifier = getattr(session.store, "notifier", None)
            if notifier is not None and notifier._held is not None:
                notifier._release()
    return with_argv


def notifier_for(store) -> Notifier:
    """Return the store's Notifier, creating it on first use."""
    notifier = getattr(store, "notifier", None)
    if notifier is None:
        notifier = store.notifier = Notifier(store)
    return notifier


def _apply(store, flags: int) -> None:
    store.config["notify-keyspace-events"] = flags_text(flags)
    notifier_for(store).configure(flags)


define_config("notify-keyspace-events", "", parse_flags, _apply)
