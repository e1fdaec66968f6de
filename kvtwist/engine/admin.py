"""Server administration as Redis 7.0: SHUTDOWN, SAVE, BGSAVE, LASTSAVE, WAIT, ROLE, MEMORY, DEBUG.

What needs the reactor or the journal (stopping, snapshots, reloading, the expiry sweep,
blocking the server) is done by hooks the serve layer installs on the store
(kvtwist.engine.hooks); the engine parses, checks and answers as Redis does.
"""

from __future__ import annotations

from kvtwist.engine.hooks import hooks_for
from kvtwist.engine.table import SYNTAX, parse_int, register, sub_dispatch
from kvtwist.wire.replies import OK, CommandError, Error, Pairs, Status

# -- SHUTDOWN, SAVE, BGSAVE, LASTSAVE -------------------------------------------------------


@register("shutdown", -1, "admin noscript loading stale no_multi allow_busy", 0, 0, 0)
def cmd_shutdown(session, argv):
    """SHUTDOWN [NOSAVE|SAVE] [NOW] [FORCE] [ABORT]: commit the journal and stop, no reply.

    SAVE also writes a snapshot first; NOSAVE and the default only commit the journal,
    which holds every acknowledged write anyway. FORCE stops even if the snapshot fails.
    There are no replicas to wait for, so NOW changes nothing and ABORT never finds a
    shutdown to abort.
    """
    options = set()
    for arg in argv[1:]:
        option = arg.lower()
        if option not in (b"nosave", b"save", b"now", b"force", b"abort"):
            raise CommandError(SYNTAX)
        options.add(option)
    if (b"abort" in options and len(options) > 1) or {b"save", b"nosave"} <= options:
        raise CommandError(SYNTAX)
    if b"abort" in options:
        raise CommandError("ERR No shutdown in progress.")
    reply = hooks_for(session.store).shutdown(session, save=b"save" in options,
                                              now=b"now" in options,
                                              force=b"force" in options)
    return reply


def _compacting(store) -> bool:
    return bool(getattr(store.journal, "compacting", False))


@register("save", 1, "no_async_loading admin noscript no_multi", 0, 0, 0)
def cmd_save(session, argv):
    """SAVE: write a snapshot (a journal compaction) and answer OK once it is on disk."""
    if _compacting(session.store):
        raise CommandError("ERR Background save already in progress")
    return hooks_for(session.store).save(session)


@register("bgsave", -1, "no_async_loading admin noscript", 0, 0, 0)
def cmd_bgsave(session, argv):
    """BGSAVE [SCHEDULE]: start a snapshot in the background and answer at once."""
    schedule = False
    if len(argv) > 1:
        if len(argv) == 2 and argv[1].lower() == b"schedule":
            schedule = True
        else:
            raise CommandError(SYNTAX)
    return hooks_for(session.store).bgsave(session, schedule)


@register("lastsave", 1, "loading stale fast", 0, 0, 0)
def cmd_lastsave(session, argv):
    """LASTSAVE: the unix time of the last successful snapshot (or of the start)."""
    hooks = hooks_for(session.store)
    return int(hooks.last_save or session.store.started)


# -- WAIT, ROLE ------------------------------------------------------------------------------


@register("wait", 3, "noscript", 0, 0, 0)
def cmd_wait(session, argv):
    """WAIT numreplicas timeout: there are no replicas, so 0 once the timeout passes.

    As Redis with too few replicas: 0 at once when none is asked for (or inside MULTI),
    else the client waits ``timeout`` ms (0: for ever) and gets 0.
    """
    try:
        timeout = parse_int(argv[2])
    except CommandError:
        raise CommandError("ERR timeout is not an integer or out of range")
    if timeout < 0:
        raise CommandError("ERR timeout is negative")
    wanted = parse_int(argv[1])
    if wanted <= 0 or getattr(session, "in_exec", False):
        return 0
    return hooks_for(session.store).later(timeout / 1000.0 if timeout else None, 0)


@register("role", 1, "noscript loading stale fast", 0, 0, 0)
def cmd_role(session, argv):
    return [b"master", 0, []]


# -- MEMORY -----------------------------------------------------------------------------------

_DICT_ENTRY = 24
_ROBJ = 16


def malloc_size(size: int) -> int:
    """Return the jemalloc size class holding ``size`` bytes (what zmalloc_size reports)."""
    if size <= 8:
        return 8
    if size <= 128:
        return (size + 15) // 16 * 16
    step = 1 << (size - 1).bit_length() - 3  # four classes per doubling past 128
    return (size + step - 1) // step * step


def _sds_size(length: int) -> int:
    # The sds header a string of ``length`` bytes gets (sdsReqType), its bytes and the NUL.
    if length < 1 << 8:
        header = 3
    elif length < 1 << 16:
        header = 5
    elif length < 1 << 32:
        header = 9
    else:
        header = 17
    return malloc_size(header + length + 1)


def _as_long(value: bytes):
    if len(value) > 20 or not value:
        return None
    try:
        number = parse_int(value)
    except CommandError:
        return None
    return number


def encoding(value: bytes) -> bytes:
    """Return the encoding Redis would give a string value: int, embstr or raw."""
    if _as_long(value) is not None:
        return b"int"
    return b"embstr" if len(value) <= 44 else b"raw"


def value_usage(value: bytes) -> int:
    """Return the bytes Redis 7.0's objectComputeSize counts for a string value."""
    kind = encoding(value)
    if kind == b"int":
        return _ROBJ
    if kind == b"embstr":
        return malloc_size(_ROBJ + 3 + len(value) + 1)
    return _ROBJ + _sds_size(len(value))


def key_usage(key: bytes, value) -> int:
    """Return MEMORY USAGE for a key: its value (a typed value's own estimate, O(1)), its key
    and its dict entry."""
    if value.__class__ is not bytes:
        return value.nbytes + _sds_size(len(key)) + _DICT_ENTRY
    return value_usage(value) + _sds_size(len(key)) + _DICT_ENTRY


def _memory_usage(session, argv):
    """MEMORY USAGE key [SAMPLES count]: O(1) for a string value."""
    index = 3
    while index < len(argv):
        if argv[index].lower() == b"samples" and index + 1 < len(argv):
            if parse_int(argv[index + 1]) < 0:
                raise CommandError(SYNTAX)
            index += 2
        else:
            raise CommandError(SYNTAX)
    value = session.keyspace.get(argv[2])
    if value is None:
        return None
    return key_usage(argv[2], value)


def _databases(store) -> list:
    return getattr(store, "databases", [store.keyspace])


def _dataset(store) -> tuple:
    keys = used = 0
    for keyspace in _databases(store):
        keys += len(keyspace)
        # Costs O(keys): MEMORY STATS walks the data as Redis's does its dicts' sizes.
        for key, value in list(keyspace.data.items()):
            used += key_usage(key, value)
    return keys, used


_STARTUP = 876144  # what an empty redis-server 7.0 reports as startup.allocated


def _memory_stats(session, argv):
    """MEMORY STATS: Redis's fields, from the sizes a Redis would use for this data. O(keys)."""
    store = session.store
    keys, dataset = _dataset(store)
    overhead = _STARTUP
    databases = []
    for keyspace in _databases(store):
        if len(keyspace):
            main = malloc_size(8 * len(keyspace)) + 24 * len(keyspace)
            expires = malloc_size(8 * len(keyspace.expires)) + 24 * len(keyspace.expires)
            overhead += main + expires
            databases.append((b"db.%d" % keyspace.index if hasattr(keyspace, "index") else b"db.0",
                              Pairs([(b"overhead.hashtable.main", main),
                                     (b"overhead.hashtable.expires", expires),
                                     (b"overhead.hashtable.slot-to-keys", 0)])))
    total = overhead + dataset
    items = [(b"peak.allocated", total), (b"total.allocated", total),
             (b"startup.allocated", _STARTUP), (b"replication.backlog", 0),
             (b"clients.slaves", 0), (b"clients.normal", 0), (b"cluster.links", 0),
             (b"aof.buffer", 0), (b"lua.caches", 0), (b"functions.caches", 0)]
    items += databases
    items += [(b"overhead.total", overhead), (b"keys.count", keys),
              (b"keys.bytes-per-key", (total - _STARTUP) // keys if keys else 0),
              (b"dataset.bytes", dataset),
              (b"dataset.percentage", b"%.17g" % (100.0 * dataset / total)),
              (b"peak.percentage", b"100")]
    return Pairs(items)


DOCTOR_EMPTY = (b"Hi Sam, this instance is empty or is using very little memory, my issues "
                b"detector can't be used in these conditions. Please, leave for your mission "
                b"on Earth and fill it with some data. The new Sam and I will be back to our "
                b"programming as soon as I finished rebooting.\n")
DOCTOR_OK = (b"Hi Sam, I can't find any memory issue in your instance. I can only account "
             b"for what occurs on this base.\n")


def _memory_doctor(session, argv):
    _, dataset = _dataset(session.store)
    return DOCTOR_EMPTY if dataset + _STARTUP < 5 * 1024 * 1024 else DOCTOR_OK


MEMORY_HELP = [
    "MEMORY <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "DOCTOR", "    Return memory problems reports.",
    "MALLOC-STATS", "    Return internal statistics report from the memory allocator.",
    "PURGE", "    Attempt to purge dirty pages for reclamation by the allocator.",
    "STATS", "    Return information about the memory usage of the server.",
    "USAGE <key> [SAMPLES <count>]",
    "    Return memory in bytes used by <key> and its value. Nested values are",
    "    sampled up to <count> times (default: 5, 0 means sample all).",
    "HELP", "    Prints this help.",
]

MEMORY_SUBCOMMANDS = {
    b"usage": (-3, _memory_usage),
    b"stats": (2, _memory_stats),
    b"doctor": (2, _memory_doctor),
    # As a Redis built without jemalloc (libc malloc) answers.
    b"malloc-stats": (2, lambda session, argv: b"Stats not supported for the current allocator"),
    b"purge": (2, lambda session, argv: OK),
    b"help": (2, lambda session, argv: [Status(line.encode()) for line in MEMORY_HELP]),
}


@register("memory", -2, "", 0, 0, 0)
def cmd_memory(session, argv):
    return sub_dispatch(MEMORY_SUBCOMMANDS, argv, session)


# -- DEBUG ----------------------------------------------------------------------------------


def _rdb_length(value: bytes) -> int:
    # rdbSaveStringObject without LZF: an integer as 1, 2 or 4 bytes, else length + bytes.
    number = _as_long(value)
    if number is not None:
        if -(1 << 7) <= number < 1 << 7:
            return 2
        if -(1 << 15) <= number < 1 << 15:
            return 3
        if -(1 << 31) <= number < 1 << 31:
            return 5
    length = len(value)
    if length < 1 << 6:
        return 1 + length
    if length < 1 << 14:
        return 2 + length
    return (5 if length <= 0xFFFFFFFF else 9) + length


def debug_object(session, key: bytes) -> Status:
    """DEBUG OBJECT key: Redis's line; lru is the 24-bit LRU clock, idle from the keyspace."""
    keyspace = session.keyspace
    value = keyspace.get(key)
    if value is None:
        raise CommandError("ERR no such key")
    now = session.store.clock.seconds()
    idle_of = getattr(keyspace, "idle_seconds", None)
    idle = int(idle_of(key)) if idle_of is not None else 0
    lru = int(now - idle) & ((1 << 24) - 1)
    if value.__class__ is bytes:
        kind, length = encoding(value), _rdb_length(value)
    else:
        kind, length = value.encoding(), value.nbytes
    return Status(b"Value at:0x%x refcount:1 encoding:%s serializedlength:%d lru:%d "
                  b"lru_seconds_idle:%d" % (id(value), kind, length, lru, idle))


def _debug_sleep(session, argv):
    try:
        seconds = float(argv[2])  # strtod: a bad number sleeps 0 s
    except ValueError:
        seconds = 0.0
    if seconds > 0:
        hooks_for(session.store).sleep(seconds)
    return OK


def _debug_active_expire(session, argv):
    try:
        on = int(argv[2]) != 0  # atoi
    except ValueError:
        on = False
    hooks_for(session.store).set_active_expire(on)
    return OK


def _debug_reload(session, argv):
    for option in argv[2:]:
        if option.lower() not in (b"merge", b"noflush", b"nosave"):
            raise CommandError("ERR DEBUG RELOAD only supports the MERGE, NOFLUSH and "
                               "NOSAVE options.")
    return hooks_for(session.store).reload(session)


from kvtwist.engine.admin_help import DEBUG_HELP  # noqa: E402 (a long text, kept apart)

# name -> (exact argc or -minimum, handler)
DEBUG_SUBCOMMANDS = {
    b"help": (2, lambda session, argv: [Status(line.encode()) for line in DEBUG_HELP]),
    b"sleep": (3, _debug_sleep),
    b"reload": (-2, _debug_reload),
    b"object": (3, lambda session, argv: debug_object(session, argv[2])),
    b"set-active-expire": (3, _debug_active_expire),
    b"change-repl-id": (2, lambda session, argv: OK),
}


@register("debug", -2, "admin noscript loading stale protected", 0, 0, 0)
def cmd_debug(session, argv):
    entry = DEBUG_SUBCOMMANDS.get(argv[1].lower())
    if entry is not None:
        arity, handler = entry
        if (len(argv) == arity) if arity > 0 else (len(argv) >= -arity):
            return handler(session, argv)
    return Error("ERR unknown subcommand or wrong number of arguments for '%s'. Try DEBUG HELP."
                 % (argv[1][:128].decode("utf-8", "replace"),))


__all__ = ["debug_object", "encoding", "key_usage", "malloc_size"]
