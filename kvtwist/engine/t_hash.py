"""Hash commands (Redis's t_hash.c): HSET, HGET, HDEL, HINCRBY..., HRANDFIELD, HSCAN.

Every change goes through ``keyspace.mutate`` with an operation of engine/hashtype.py;
arguments, WRONGTYPE and numbers are checked first, in Redis's order, so that an operation
never fails halfway. Costs: single-field commands O(1); multi-field ones O(fields named);
whole-hash reads O(n) (a big reply is Streamed a slice per reactor turn).
"""

from __future__ import annotations

import random

from kvtwist.engine import events
from kvtwist.engine.glob import compile_glob
from kvtwist.engine.hashtype import LIMITS, OP_HDEL, OP_HPUT, OP_HSET, Hash
from kvtwist.engine.strings import add_long_double, parse_long_double
from kvtwist.engine.table import SIZE_T
from kvtwist.engine.table import (
    LLONG_MAX, LLONG_MIN, SYNTAX, arity_error, c_lower, define_config, parse_int,
    register)
from kvtwist.engine.types import HASH
from kvtwist.wire.replies import (
    OK, SLICE, STREAM_MIN, CommandError, Pairs, Streamed, stream_array)

# HRANDFIELD with a count: below this share of the hash, pick at random until enough
# distinct fields (Redis's HRANDFIELD_SUB_STRATEGY_MUL); above it, sample the whole hash.
_SUB_STRATEGY_MUL = 3

# The most fields a negative count may ask for (its reply is built whole).
MAX_PICKS = 1 << 27


def _get(session, key):
    return session.keyspace.get_typed(key, Hash)


@register("hset", -4, "write denyoom fast", 1, 1, 1)
def cmd_hset(session, argv):
    """HSET key field value [field value ...]: how many fields are new. O(pairs)."""
    if len(argv) % 2:
        return arity_error(b"hset")
    return session.keyspace.mutate(argv[1], Hash, OP_HSET, tuple(argv[2:]))


@register("hmset", -4, "write denyoom fast", 1, 1, 1)
def cmd_hmset(session, argv):
    """HMSET key field value [field value ...]: OK. O(pairs)."""
    if len(argv) % 2:
        return arity_error(b"hmset")
    session.keyspace.mutate(argv[1], Hash, OP_HSET, tuple(argv[2:]))
    return OK


@register("hsetnx", 4, "write denyoom fast", 1, 1, 1)
def cmd_hsetnx(session, argv):
    """HSETNX key field value: 1 if set, 0 if the field existed. O(1)."""
    value = _get(session, argv[1])
    if value is not None and argv[2] in value.fields:
        return 0
    session.keyspace.mutate(argv[1], Hash, OP_HSET, (argv[2], argv[3]))
    return 1


@register("hget", 3, "readonly fast", 1, 1, 1)
def cmd_hget(session, argv):
    value = _get(session, argv[1])
    return None if value is None else value.fields.get(argv[2])


@register("hmget", -3, "readonly fast", 1, 1, 1)
def cmd_hmget(session, argv):
    """HMGET key field [field ...]: O(fields)."""
    value = _get(session, argv[1])
    if value is None:
        return [None] * (len(argv) - 2)
    get = value.fields.get
    return [get(field) for field in argv[2:]]


@register("hdel", -3, "write fast", 1, 1, 1)
def cmd_hdel(session, argv):
    """HDEL key field [field ...]: how many existed; the emptied hash goes. O(fields)."""
    keyspace, key = session.keyspace, argv[1]
    value = _get(session, key)
    if value is None:
        return 0
    fields = value.fields
    if not any(field in fields for field in argv[2:]):
        return 0
    return keyspace.mutate(key, Hash, OP_HDEL, tuple(argv[2:]))


@register("hexists", 3, "readonly fast", 1, 1, 1)
def cmd_hexists(session, argv):
    value = _get(session, argv[1])
    return 1 if value is not None and argv[2] in value.fields else 0


@register("hlen", 2, "readonly fast", 1, 1, 1)
def cmd_hlen(session, argv):
    value = _get(session, argv[1])
    return 0 if value is None else len(value.fields)


@register("hstrlen", 3, "readonly fast", 1, 1, 1)
def cmd_hstrlen(session, argv):
    value = _get(session, argv[1])
    found = None if value is None else value.fields.get(argv[2])
    return 0 if found is None else len(found)


@register("hkeys", 2, "readonly", 1, 1, 1)
def cmd_hkeys(session, argv):
    """HKEYS key: O(n), Streamed when long."""
    value = _get(session, argv[1])
    return [] if value is None else stream_array(list(value.fields))


@register("hvals", 2, "readonly", 1, 1, 1)
def cmd_hvals(session, argv):
    """HVALS key: O(n), Streamed when long."""
    value = _get(session, argv[1])
    return [] if value is None else stream_array(list(value.fields.values()))


def _pair_slices(items: list):
    for start in range(0, len(items), SLICE):
        yield items[start:start + SLICE]


@register("hgetall", 2, "readonly", 1, 1, 1)
def cmd_hgetall(session, argv):
    """HGETALL key: Pairs (a RESP3 map). O(n); a snapshot Streamed when long."""
    value = _get(session, argv[1])
    if value is None:
        return Pairs([])
    items = list(value.fields.items())
    if len(items) <= STREAM_MIN:
        return Pairs(items)
    return Streamed(len(items), _pair_slices(items), pairs=True)


@register("hincrby", 4, "write denyoom fast", 1, 1, 1)
def cmd_hincrby(session, argv):
    """HINCRBY key field increment: the new value, logged as the value itself. O(1)."""
    increment = parse_int(argv[3])
    value = _get(session, argv[1])
    old = None if value is None else value.fields.get(argv[2])
    current = 0
    if old is not None:
        try:
            current = parse_int(old)
        except CommandError:
            raise CommandError("ERR hash value is not an integer")
    result = current + increment
    if not LLONG_MIN <= result <= LLONG_MAX:
        raise CommandError("ERR increment or decrement would overflow")
    session.keyspace.mutate(argv[1], Hash, OP_HPUT, (argv[2], b"%d" % result))
    return result


@register("hincrbyfloat", 4, "write denyoom fast", 1, 1, 1)
def cmd_hincrbyfloat(session, argv):
    """HINCRBYFLOAT key field increment: long double arithmetic and text as Redis
    (strings.add_long_double); the resulting value is what is logged (Redis propagates an
    HSET). O(digits)."""
    if isinstance(parse_long_double(argv[3]), float):
        raise CommandError("ERR value is NaN or Infinity")
    value = _get(session, argv[1])
    old = None if value is None else value.fields.get(argv[2])
    if old is not None:
        try:
            parse_long_double(old)
        except CommandError:
            raise CommandError("ERR hash value is not a float")
    result = add_long_double(b"0" if old is None else old, argv[3])
    session.keyspace.mutate(argv[1], Hash, OP_HPUT, (argv[2], result))
    return result


# -- HRANDFIELD --------------------------------------------------------------------------


def _random_field(value: Hash, fields: list):
    # One field drawn uniformly: from the list when given, else the scan order (O(1) expected).
    if fields is not None:
        return fields[random.randrange(len(fields))]
    return value.scan_order().random_key()


@register("hrandfield", -2, "readonly", 1, 1, 1)
def cmd_hrandfield(session, argv):
    """HRANDFIELD key [count [WITHVALUES]], as Redis 7.0: a negative count may repeat fields.

    O(|count|) for a count far below the hash's size (random picks from the scan order);
    O(n) otherwise (the whole hash, or a sample of its field list).
    """
    if len(argv) == 2:
        value = _get(session, argv[1])
        if value is None:
            return None
        fields = value.fields
        return _random_field(value, list(fields) if len(fields) <= STREAM_MIN else None)
    count = parse_int(argv[2])
    if count == LLONG_MIN:
        raise CommandError("ERR value is out of range, value must between %d and %d"
                           % (-LLONG_MAX, LLONG_MAX))
    withvalues = False
    if len(argv) > 4 or (len(argv) == 4 and c_lower(argv[3]) != b"withvalues"):
        raise CommandError(SYNTAX)
    if len(argv) == 4:
        withvalues = True
        if not -(LLONG_MAX // 2) <= count <= LLONG_MAX // 2:
            raise CommandError("ERR value is out of range")
    value = _get(session, argv[1])
    if value is None or count == 0:
        return []
    fields = value.fields
    size = len(fields)
    if count < 0 and -count > STREAM_MIN and not (withvalues and session.protocol == 3):
        return _streamed_picks(fields, -count, withvalues)
    if count < 0 or count == 1:
        count = abs(count)
        if count > MAX_PICKS:  # Redis would stream them; a list of them all would not fit
            raise CommandError("ERR HRANDFIELD count is too large: kvstore sends at most "
                               "%d random fields" % (MAX_PICKS,))
        listed = list(fields) if size <= STREAM_MIN or count >= size else None
        picked = [_random_field(value, listed) for _ in range(count)]
    elif count >= size:
        picked = list(fields)
    elif count * _SUB_STRATEGY_MUL > size:
        picked = random.sample(list(fields), count)
    else:
        chosen: dict = {}
        listed = list(fields) if size <= STREAM_MIN else None
        while len(chosen) < count:
            chosen[_random_field(value, listed)] = None
        picked = list(chosen)
    if not withvalues:
        return picked
    if session.protocol == 3:
        return [[field, fields[field]] for field in picked]
    return [item for field in picked for item in (field, fields[field])]


def _streamed_picks(fields: dict, count: int, withvalues: bool) -> Streamed:
    # A negative count's picks (repeats allowed), made a slice at a time from a snapshot
    # of the hash taken now (O(n)): as Redis, which builds the whole reply, a client with an
    # output buffer limit under its size is closed mid-run; without one it is all sent,
    # paced by what the client reads.
    snapshot = list(fields.items()) if withvalues else list(fields)

    def slices():
        left = count
        choice = random.choice
        while left:
            step = min(left, SLICE)
            left -= step
            yield [choice(snapshot) for _ in range(step)]
    return Streamed(count, slices(), pairs=withvalues)


# -- HSCAN -------------------------------------------------------------------------------


def _parse_cursor(raw: bytes) -> int:
    # strtoul as parseScanCursorOrReply: optional sign, decimal digits, a minus wraps.
    body = raw[1:] if raw[:1] in (b"+", b"-") else raw
    if not body or not body.isdigit() or int(body) >= 2 ** 64:
        raise CommandError("ERR invalid cursor")
    return (2 ** 64 - int(body)) % 2 ** 64 if raw[:1] == b"-" else int(body)


@register("hscan", -3, "readonly", 1, 1, 1)
def cmd_hscan(session, argv):
    """HSCAN key cursor [MATCH pattern] [COUNT count].

    A small hash (encoding listpack) is returned whole with cursor 0, as Redis does. A big
    one is walked in its scan order (hashtype.FieldOrder), COUNT entries per call: every
    field present for the whole iteration is returned at least once, whatever fields are
    added or removed between calls. O(COUNT) per call (O(n) once, on the first HSCAN or
    HRANDFIELD of a big hash, to make the scan order), plus the pattern's matching.
    """
    cursor = _parse_cursor(argv[2])
    value = _get(session, argv[1])
    if value is None:
        return [b"0", []]
    count, pattern = 10, None
    index = 3
    while index < len(argv):
        option = c_lower(argv[index])
        if index + 1 >= len(argv) or option not in (b"count", b"match"):
            raise CommandError(SYNTAX)
        if option == b"count":
            count = parse_int(argv[index + 1])
            if count < 1:
                raise CommandError(SYNTAX)
        else:
            raw = argv[index + 1]
            pattern = None if raw == b"*" else compile_glob(raw).matches
        index += 2
    fields = value.fields
    if value.big:
        cursor, found = value.scan_order().scan(cursor, count)
    else:
        cursor, found = 0, list(fields)
    if pattern is not None:
        found = [field for field in found if pattern(field)]
    return [b"%d" % cursor, [item for field in found for item in (field, fields[field])]]


# -- configuration: the encoding thresholds ------------------------------------------------


def _limit(name: str):
    def apply(store, number: int) -> None:
        LIMITS[name] = number
    return apply


define_config("hash-max-listpack-entries", "512", SIZE_T, _limit("entries"),
              aliases=("hash-max-ziplist-entries",), show=str)
define_config("hash-max-listpack-value", "64", SIZE_T, _limit("value"),
              aliases=("hash-max-ziplist-value",), show=str)

# -- keyspace notifications ------------------------------------------------------------------

for _command in (b"hset", b"hmset", b"hsetnx"):
    events.declare(_command, ((HASH, OP_HSET), events.HASH, "hset"))
events.declare(b"hdel", ((HASH, OP_HDEL), events.HASH, "hdel"))
events.declare(b"hincrby", ((HASH, OP_HPUT), events.HASH, "hincrby"))
events.declare(b"hincrbyfloat", ((HASH, OP_HPUT), events.HASH, "hincrbyfloat"))
events.declare_reads(b"hget", b"hmget", b"hexists", b"hlen", b"hstrlen", b"hkeys", b"hvals",
                     b"hgetall", b"hrandfield", b"hscan")
del _command
