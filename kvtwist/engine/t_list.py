"""List commands, as Redis 7.0's t_list.c: pushes, pops, ranges, LPOS, LMOVE, LMPOP.

The blocking forms (BLPOP, BRPOP, BLMOVE, BRPOPLPUSH, BLMPOP) are in engine/t_blist.py.
Every change is an operation of engine/listtype.py through ``keyspace.mutate``; each
command validates its arguments and the key's type before it changes anything.
"""

from __future__ import annotations

from kvtwist.engine import events, listtype
from kvtwist.engine.listtype import (
    INSERT_AT, POP_LEFT, POP_RIGHT, PUSH_LEFT, PUSH_RIGHT, REMOVE, ROTATE, SET_AT, TRIM,
    ListValue)
from kvtwist.engine.table import integer_parameter
from kvtwist.engine.table import (
    LLONG_MAX, SYNTAX, arity_error, define_config, parse_int, register)
from kvtwist.engine.types import LIST
from kvtwist.wire.replies import NIL_ARRAY, OK, CommandError

NO_SUCH_KEY = "ERR no such key"
OUT_OF_RANGE = "ERR index out of range"
POSITIVE = "ERR value is out of range, must be positive"


def get_list(session, key):
    """Return ``key``'s ListValue, None when missing; raise WRONGTYPE for another type."""
    return session.keyspace.get_typed(key, ListValue)


def parse_positive(raw: bytes, message: str = POSITIVE, not_integer: str = None) -> int:
    """Redis's getPositiveLongFromObjectOrReply: an integer >= 0, or ``message``."""
    try:
        number = parse_int(raw)
    except CommandError:
        raise CommandError(message if not_integer is None else not_integer)
    if number < 0:
        raise CommandError(message)
    return number


def parse_range(raw: bytes, message: str) -> int:
    """Redis's getRangeLongFromObjectOrReply(1, LONG_MAX, msg): ``message`` on any error."""
    try:
        number = parse_int(raw)
    except CommandError:
        raise CommandError(message)
    if number < 1 or number > LLONG_MAX:
        raise CommandError(message)
    return number


def parse_end(raw: bytes) -> bool:
    """LEFT or RIGHT (any case): True for LEFT; else a syntax error."""
    end = raw.lower()
    if end == b"left":
        return True
    if end == b"right":
        return False
    raise CommandError(SYNTAX)


def clamp(start: int, stop: int, size: int):
    """Redis's range arithmetic: return (start, stop) inside the list, or None when empty."""
    if start < 0:
        start += size
    if stop < 0:
        stop += size
    if start < 0:
        start = 0
    if start > stop or start >= size:
        return None
    if stop >= size:
        stop = size - 1
    return start, stop


_ONE = (b"1",)


def pop(keyspace, key, value: ListValue, left: bool, count: int) -> list:
    """Pop ``count`` (clamped to the length) elements from one end: logged. O(count)."""
    if count != 1:
        count = min(count, len(value.items))
    return keyspace.mutate(key, ListValue, POP_LEFT if left else POP_RIGHT,
                           _ONE if count == 1 else (b"%d" % count,))


def move(keyspace, source, value: ListValue, destination, left_from: bool, left_to: bool):
    """LMOVE's change once checked: push to the destination, then pop the source (Redis's
    order of events); the same key rotates in one operation. Returns the element."""
    if source == destination:
        return keyspace.mutate(source, ListValue, ROTATE,
                               (b"L" if left_from else b"R", b"L" if left_to else b"R"))
    element = value.items[0] if left_from else value.items[-1]
    keyspace.mutate(destination, ListValue, PUSH_LEFT if left_to else PUSH_RIGHT, (element,))
    pop(keyspace, source, value, left_from, 1)
    return element


# -- pushes -------------------------------------------------------------------------------


def _push(opcode: int, only_existing: bool):
    def handler(session, argv):
        """O(1) per element pushed."""
        key = argv[1]
        if only_existing and get_list(session, key) is None:
            return 0
        return session.keyspace.mutate(key, ListValue, opcode, tuple(argv[2:]))
    return handler


register("lpush", -3, "write denyoom fast", 1, 1, 1)(_push(PUSH_LEFT, False))
register("rpush", -3, "write denyoom fast", 1, 1, 1)(_push(PUSH_RIGHT, False))
register("lpushx", -3, "write denyoom fast", 1, 1, 1)(_push(PUSH_LEFT, True))
register("rpushx", -3, "write denyoom fast", 1, 1, 1)(_push(PUSH_RIGHT, True))


# -- pops ---------------------------------------------------------------------------------


def _pop(left: bool, name: str):
    def handler(session, argv):
        """LPOP/RPOP key [count]: O(count)."""
        if len(argv) > 3:
            raise CommandError(arity_error(name).message)
        counted = len(argv) == 3
        count = parse_positive(argv[2]) if counted else 1
        value = get_list(session, argv[1])
        if value is None:
            return NIL_ARRAY if counted else None
        if counted and not count:
            return []
        popped = pop(session.keyspace, argv[1], value, left, count)
        return popped if counted else popped[0]
    return handler


register("lpop", -2, "write fast", 1, 1, 1)(_pop(True, "lpop"))
register("rpop", -2, "write fast", 1, 1, 1)(_pop(False, "rpop"))


def parse_mpop(argv, numkeys_index: int):
    """Parse LMPOP/BLMPOP's ``numkeys key... LEFT|RIGHT [COUNT n]``: (keys, left, count)."""
    numkeys = parse_range(argv[numkeys_index], "ERR numkeys should be greater than 0")
    where = numkeys_index + numkeys + 1
    if where >= len(argv):
        raise CommandError(SYNTAX)
    left = parse_end(argv[where])
    count = -1
    index = where + 1
    while index < len(argv):
        if count == -1 and argv[index].lower() == b"count" and index + 1 < len(argv):
            count = parse_range(argv[index + 1], "ERR count should be greater than 0")
            index += 2
        else:
            raise CommandError(SYNTAX)
    return argv[numkeys_index + 1:where], left, (1 if count == -1 else count)


def mpop_first(session, keys, left: bool, count: int):
    """Pop from the first non-empty list of ``keys``: [key, elements], or None."""
    keyspace = session.keyspace
    for key in keys:
        value = get_list(session, key)
        if value is not None and len(value):
            return [key, pop(keyspace, key, value, left, count)]
    return None


@register("lmpop", -4, "write movablekeys", 0, 0, 0)
def cmd_lmpop(session, argv):
    """LMPOP numkeys key [key ...] LEFT|RIGHT [COUNT count]: O(keys + count)."""
    keys, left, count = parse_mpop(argv, 1)
    result = mpop_first(session, keys, left, count)
    return NIL_ARRAY if result is None else result


# -- reads --------------------------------------------------------------------------------


@register("llen", 2, "readonly fast", 1, 1, 1)
def cmd_llen(session, argv):
    value = get_list(session, argv[1])
    return 0 if value is None else len(value)


@register("lrange", 4, "readonly", 1, 1, 1)
def cmd_lrange(session, argv):
    """O(min(start, length - stop) + elements returned)."""
    start, stop = parse_int(argv[2]), parse_int(argv[3])
    value = get_list(session, argv[1])
    if value is None:
        return []
    bounds = clamp(start, stop, len(value))
    if bounds is None:
        return []
    return value.range(*bounds)


@register("lindex", 3, "readonly", 1, 1, 1)
def cmd_lindex(session, argv):
    """O(min(index, length - index))."""
    value = get_list(session, argv[1])
    if value is None:
        return None
    index = parse_int(argv[2])
    size = len(value)
    if index < 0:
        index += size
    if not 0 <= index < size:
        return None
    return value.items[index]


@register("lpos", -3, "readonly", 1, 1, 1)
def cmd_lpos(session, argv):
    """LPOS key element [RANK r] [COUNT n] [MAXLEN m]: O(length) at worst (O(maxlen))."""
    rank, count, maxlen = 1, -1, 0
    index = 3
    while index < len(argv):
        option = argv[index].lower()
        more = index + 1 < len(argv)
        if option == b"rank" and more:
            rank = parse_int(argv[index + 1])
            if rank == 0:
                raise CommandError(
                    "ERR RANK can't be zero: use 1 to start from the first match, 2 from the "
                    "second ... or use negative to start from the end of the list")
        elif option == b"count" and more:
            count = parse_positive(argv[index + 1], "ERR COUNT can't be negative",
                                   "ERR COUNT can't be negative")
        elif option == b"maxlen" and more:
            maxlen = parse_positive(argv[index + 1], "ERR MAXLEN can't be negative",
                                    "ERR MAXLEN can't be negative")
        else:
            raise CommandError(SYNTAX)
        index += 2
    value = get_list(session, argv[1])
    if value is None:
        return [] if count != -1 else None
    element = argv[2]
    items = value.items
    size = len(items)
    backwards = rank < 0
    rank = abs(rank)
    found = []
    matches = 0
    scanned = enumerate(reversed(items) if backwards else items)
    for position, item in scanned:
        if maxlen and position >= maxlen:
            break
        if item == element:
            matches += 1
            if matches >= rank:
                found.append(size - 1 - position if backwards else position)
                if count == -1 or (count and len(found) >= count):
                    break
    if count != -1:
        return found
    return found[0] if found else None


# -- changes in place ---------------------------------------------------------------------


@register("lset", 4, "write denyoom", 1, 1, 1)
def cmd_lset(session, argv):
    """O(min(index, length - index))."""
    value = get_list(session, argv[1])
    if value is None:
        raise CommandError(NO_SUCH_KEY)
    index = parse_int(argv[2])
    size = len(value)
    if index < 0:
        index += size
    if not 0 <= index < size:
        raise CommandError(OUT_OF_RANGE)
    session.keyspace.mutate(argv[1], ListValue, SET_AT, (b"%d" % index, argv[3]))
    return OK


@register("linsert", 5, "write denyoom", 1, 1, 1)
def cmd_linsert(session, argv):
    """LINSERT key BEFORE|AFTER pivot element: O(position of the pivot)."""
    where = argv[2].lower()
    if where not in (b"before", b"after"):
        raise CommandError(SYNTAX)
    value = get_list(session, argv[1])
    if value is None:
        return 0
    try:
        position = value.items.index(argv[3])
    except ValueError:
        return -1
    if where == b"after":
        position += 1
    return session.keyspace.mutate(argv[1], ListValue, INSERT_AT, (b"%d" % position, argv[4]))


@register("lrem", 4, "write", 1, 1, 1)
def cmd_lrem(session, argv):
    """LREM key count element: O(length)."""
    count = parse_int(argv[2])
    value = get_list(session, argv[1])
    if value is None or argv[3] not in value.items:
        return 0  # nothing removed: nothing logged, no event (a C-level scan first)
    return session.keyspace.mutate(argv[1], ListValue, REMOVE, (b"%d" % count, argv[3]))


@register("ltrim", 4, "write", 1, 1, 1)
def cmd_ltrim(session, argv):
    """LTRIM key start stop: O(elements removed)."""
    start, stop = parse_int(argv[2]), parse_int(argv[3])
    value = get_list(session, argv[1])
    if value is None:
        return OK
    size = len(value)
    bounds = clamp(start, stop, size)
    if bounds is None:
        left, right = size, 0
    else:
        left, right = bounds[0], size - 1 - bounds[1]
    # Logged even when nothing goes: Redis sends its "ltrim" event all the same.
    session.keyspace.mutate(argv[1], ListValue, TRIM, (b"%d" % left, b"%d" % right))
    return OK


# -- moves --------------------------------------------------------------------------------


def lmove(session, source, destination, left_from: bool, left_to: bool):
    """LMOVE's checks and change: the element, or None when the source is missing. O(1)."""
    value = get_list(session, source)
    if value is None:
        return None
    get_list(session, destination)  # WRONGTYPE before anything changes
    return move(session.keyspace, source, value, destination, left_from, left_to)


@register("lmove", 5, "write denyoom", 1, 2, 1)
def cmd_lmove(session, argv):
    left_from, left_to = parse_end(argv[3]), parse_end(argv[4])
    return lmove(session, argv[1], argv[2], left_from, left_to)


@register("rpoplpush", 3, "write denyoom", 1, 2, 1)
def cmd_rpoplpush(session, argv):
    return lmove(session, argv[1], argv[2], False, True)


# -- keyspace notifications ---------------------------------------------------------------

_PUSH_LEFT = ((LIST, PUSH_LEFT), events.LIST, "lpush")
_PUSH_RIGHT = ((LIST, PUSH_RIGHT), events.LIST, "rpush")
_POP_LEFT = ((LIST, POP_LEFT), events.LIST, "lpop")
_POP_RIGHT = ((LIST, POP_RIGHT), events.LIST, "rpop")
events.declare(b"lpush", _PUSH_LEFT)
events.declare(b"lpushx", _PUSH_LEFT)
events.declare(b"rpush", _PUSH_RIGHT)
events.declare(b"rpushx", _PUSH_RIGHT)
for _name in (b"lpop", b"rpop", b"lmpop", b"blpop", b"brpop", b"blmpop"):
    events.declare(_name, _POP_LEFT, _POP_RIGHT)
for _name in (b"lmove", b"rpoplpush", b"blmove", b"brpoplpush"):
    events.declare(_name, _PUSH_LEFT, _PUSH_RIGHT, _POP_LEFT, _POP_RIGHT,
                   ((LIST, ROTATE), events.LIST, "lpush"))
events.declare(b"lset", ((LIST, SET_AT), events.LIST, "lset"))
events.declare(b"linsert", ((LIST, INSERT_AT), events.LIST, "linsert"))
events.declare(b"lrem", ((LIST, REMOVE), events.LIST, "lrem"))
events.declare(b"ltrim", ((LIST, TRIM), events.LIST, "ltrim"))
events.declare_reads(b"llen", b"lrange", b"lindex", b"lpos")


# -- configuration --------------------------------------------------------------------------


def _node_fill(store, value: int) -> None:
    listtype.NODE_FILL = value


# How many elements (positive) or bytes (-1..-5: 4 to 64 KB) one quicklist node holds:
# the nodes DUMP writes. Redis 7.0 answers OBJECT ENCODING quicklist for every list.
define_config("list-max-listpack-size", "-2", integer_parameter(-2 ** 31, 2 ** 31 - 1),
              _node_fill, show=str, aliases=("list-max-ziplist-size",))
# Redis compresses inner quicklist nodes to save memory; its only effect is on memory
# (a DUMP is the same bytes either way). kvstore keeps lists uncompressed: the value is
# kept and shown, and changes nothing.
define_config("list-compress-depth", "0", integer_parameter(0, 2 ** 31 - 1), show=str)
