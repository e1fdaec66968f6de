"""Database commands, as Redis's db.c has them: SELECT, MOVE, SWAPDB, COPY, FLUSHDB, FLUSHALL."""

from __future__ import annotations

from kvtwist.engine.table import SYNTAX, parse_int, register
from kvtwist.wire.replies import OK, CommandError

OUT_OF_RANGE = "ERR DB index is out of range"
SAME_OBJECT = "ERR source and destination objects are the same"


def _index(session, raw: bytes) -> int:
    """Return a database index argument in range; raise Redis's errors otherwise."""
    index = parse_int(raw)
    if not -2 ** 31 <= index < 2 ** 31:
        raise CommandError("ERR value is out of range, value must between -2147483648 and "
                           "2147483647")
    if not 0 <= index < session.store.databases.count:
        raise CommandError(OUT_OF_RANGE)
    return index


@register("select", 2, "loading stale fast", 0, 0, 0)
def cmd_select(session, argv):
    session.select(_index(session, argv[1]))
    return OK


@register("move", 3, "write fast", 1, 1, 1)
def cmd_move(session, argv):
    """MOVE key db: O(1). The key is written to the target before it leaves the source,
    so a crash between the two records can duplicate it but never lose it."""
    target = session.store.databases[_index(session, argv[2])]
    source, key = session.keyspace, argv[1]
    if target is source:
        raise CommandError(SAME_OBJECT)
    value = source.get(key)
    if value is None or target.exists(key):
        return 0
    target.set(key, value, source.expire_of(key))
    source.delete(key)
    return 1


@register("copy", -3, "write denyoom", 1, 2, 1)
def cmd_copy(session, argv):
    """COPY source destination [DB index] [REPLACE]: O(1) for a string (immutable, shared),
    O(n) for a typed value of n elements (copied)."""
    replace, target_db = False, session.db
    index = 3
    while index < len(argv):
        option = argv[index].lower()
        if option == b"replace":
            replace = True
        elif option == b"db" and index + 1 < len(argv):
            target_db = parse_int(argv[index + 1])
            if not 0 <= target_db < session.store.databases.count:
                raise CommandError(OUT_OF_RANGE)  # at once, before later options (as Redis)
            index += 1
        else:
            raise CommandError(SYNTAX)
        index += 1
    source, target = session.keyspace, session.store.databases[target_db]
    if target is source and argv[1] == argv[2]:
        raise CommandError(SAME_OBJECT)
    value = source.get(argv[1])
    if value is None:
        return 0
    if target.exists(argv[2]) and not replace:
        return 0
    if value.__class__ is not bytes:
        value = value.copy()  # strings are immutable and shared; typed values are not
    target.set(argv[2], value, source.expire_of(argv[1]))
    return 1


@register("swapdb", 3, "write fast", 0, 0, 0)
def cmd_swapdb(session, argv):
    """SWAPDB index index: O(1) plus the clients of the two databases (they follow)."""
    count = session.store.databases.count
    first = _swap_index(argv[1], "first")
    second = _swap_index(argv[2], "second")
    if not (0 <= first < count and 0 <= second < count):
        raise CommandError(OUT_OF_RANGE)
    if first != second:
        session.store.log_swap(first, second)
    return OK


def _swap_index(raw: bytes, which: str) -> int:
    try:
        index = parse_int(raw)
    except CommandError:
        raise CommandError("ERR invalid %s DB index" % (which,))
    if not -2 ** 31 <= index < 2 ** 31:
        raise CommandError("ERR invalid %s DB index" % (which,))
    return index


def _flush_mode(argv) -> None:
    if len(argv) > 2 or (len(argv) == 2 and argv[1].lower() not in (b"async", b"sync")):
        raise CommandError(SYNTAX)


@register("flushdb", -1, "write", 0, 0, 0)
def cmd_flushdb(session, argv):
    """FLUSHDB [ASYNC|SYNC]: empty the selected database (ASYNC is done at once too)."""
    _flush_mode(argv)
    session.keyspace.flush()
    return OK


@register("flushall", -1, "write", 0, 0, 0, aliases="flush")
def cmd_flushall(session, argv):
    """FLUSHALL [ASYNC|SYNC] (kvtwist's FLUSH too): empty every database, one FLUSH each."""
    _flush_mode(argv)
    flushed = False
    for keyspace in session.store.databases:
        if len(keyspace):
            keyspace.flush()
            flushed = True
    if not flushed:
        session.keyspace.flush()  # logged all the same: trackers hear of the FLUSHALL
    return OK
