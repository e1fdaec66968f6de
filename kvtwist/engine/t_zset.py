"""Sorted-set commands, as Redis 7.0's t_zset.c: adding, removing and reading members.

ZADD, ZINCRBY, ZREM, ZCARD, ZSCORE, ZMSCORE, ZRANK, ZREVRANK, ZCOUNT, ZLEXCOUNT, ZSCAN,
ZRANDMEMBER and the zset-max-listpack-* parameters. Ranges and their removal are in
t_zsetrange.py; pops and the set algebra in t_zsetops.py; the value in zsettype.py.
"""

from __future__ import annotations

import random

from kvtwist.engine import events, zsetrdb  # noqa: F401  (zsetrdb: DUMP/RESTORE codec)
from kvtwist.engine.config import memory
from kvtwist.engine.glob import compile_glob
from kvtwist.engine.table import SIZE_T, LLONG_MAX, SYNTAX, define_config, parse_int, register
from kvtwist.engine.types import ZSET
from kvtwist.engine.zsetscore import parse_bound, parse_lex, parse_score
from kvtwist.engine.zsettype import (
    LIMITS, OP_ADD, OP_INCR, OP_REM, ZSet, scan_step, score_reply, scored_reply)
from kvtwist.wire.replies import CommandError

NOT_FLOAT = "ERR value is not a valid float"
NAN_RESULT = "ERR resulting score is not a number (NaN)"
RANGE_NOT_FLOAT = "ERR min or max is not a float"
RANGE_NOT_LEX = "ERR min or max not valid string range item"
LONG_MAX = LLONG_MAX

# The most members a negative count may ask for (its reply is built whole).
MAX_PICKS = 1 << 27


def parse_range_long(text: bytes, low: int, high: int, message=None) -> int:
    """Return an integer as getRangeLongFromObjectOrReply: ``message`` (when given) for
    both a bad integer and one out of ``low..high``."""
    try:
        value = parse_int(text)
    except CommandError:
        if message is not None:
            raise CommandError(message)
        raise
    if not low <= value <= high:
        raise CommandError(message or "ERR value is out of range, value must between %d and %d"
                           % (low, high))
    return value


def parse_positive(text: bytes, message=None) -> int:
    """Return a count as getPositiveLongFromObjectOrReply (0..LONG_MAX)."""
    return parse_range_long(text, 0, LONG_MAX,
                            message or "ERR value is out of range, must be positive")


# -- ZADD, ZINCRBY ----------------------------------------------------------------------


@register("zadd", -4, "write denyoom fast", 1, 1, 1)
def cmd_zadd(session, argv):
    """ZADD key [NX|XX] [GT|LT] [CH] [INCR] score member [score member ...]: O(k log n)."""
    return _zadd(session, argv, False)


@register("zincrby", 4, "write denyoom fast", 1, 1, 1)
def cmd_zincrby(session, argv):
    """ZINCRBY key increment member: the new score. O(log n)."""
    return _zadd(session, argv, True)


# The first bytes of ZADD's options (no score starts with one but inf and nan).
_OPTION_START = frozenset(bytes((byte,)) for byte in b"nxcigltNXCIGLT")


def _zadd(session, argv, incr: bool):
    if len(argv) == 4 and not incr and argv[2][:1] not in _OPTION_START:
        # The usual ZADD key score member: no options, one pair.
        score = parse_score(argv[2])
        if score is None:
            raise CommandError(NOT_FLOAT)
        keyspace, key, member = session.keyspace, argv[1], argv[3]
        zset = keyspace.get_typed(key, ZSet)
        old = zset.scores.get(member) if zset is not None else None
        if old is None or score != old:
            keyspace.mutate(key, ZSet, OP_ADD, (repr(score).encode(), member))
        return 1 if old is None else 0
    nx = xx = gt = lt = ch = False
    index = 2
    while index < len(argv):
        option = argv[index].lower()
        if option == b"nx":
            nx = True
        elif option == b"xx":
            xx = True
        elif option == b"ch":
            ch = True
        elif option == b"incr":
            incr = True
        elif option == b"gt":
            gt = True
        elif option == b"lt":
            lt = True
        else:
            break
        index += 1
    elements = len(argv) - index
    if elements % 2 or not elements:
        raise CommandError(SYNTAX)
    if nx and xx:
        raise CommandError("ERR XX and NX options at the same time are not compatible")
    if (gt and nx) or (lt and nx) or (gt and lt):
        raise CommandError("ERR GT, LT, and/or NX options at the same time are not compatible")
    if incr and elements > 2:
        raise CommandError("ERR INCR option supports a single increment-element pair")
    pairs = []
    for position in range(index, len(argv), 2):
        score = parse_score(argv[position])
        if score is None:
            raise CommandError(NOT_FLOAT)
        pairs.append((score, argv[position + 1]))
    keyspace, key = session.keyspace, argv[1]
    zset = keyspace.get_typed(key, ZSet)
    if zset is None and xx:
        return None if incr else 0
    current = zset.scores if zset is not None else {}
    changed = {}  # member -> new score, in the order first changed
    added = updated = processed = 0
    score = 0.0
    for score, member in pairs:
        old = changed.get(member, current.get(member))
        if old is None:
            if xx:
                continue
            changed[member] = score
            added += 1
            processed += 1
            continue
        if nx:
            continue
        if incr:
            score += old
            if score != score:
                raise CommandError(NAN_RESULT)
        if (lt and score >= old) or (gt and score <= old):
            continue
        processed += 1
        if score != old:
            changed[member] = score
            updated += 1
    if changed:
        args = []
        for member, new in changed.items():
            args.append(repr(new).encode())
            args.append(member)
        keyspace.mutate(key, ZSet, OP_INCR if incr else OP_ADD, tuple(args))
    if incr:
        return score_reply(score) if processed else None
    return added + updated if ch else added


# -- ZREM, ZCARD, ZSCORE, ZMSCORE, ZRANK ----------------------------------------------------


@register("zrem", -3, "write fast", 1, 1, 1)
def cmd_zrem(session, argv):
    """ZREM key member [member ...]: the number removed. O(k log n)."""
    keyspace, key = session.keyspace, argv[1]
    zset = keyspace.get_typed(key, ZSet)
    if zset is None:
        return 0
    scores = zset.scores
    present = tuple(dict.fromkeys(member for member in argv[2:] if member in scores))
    if not present:
        return 0
    return keyspace.mutate(key, ZSet, OP_REM, present)


@register("zcard", 2, "readonly fast", 1, 1, 1)
def cmd_zcard(session, argv):
    """ZCARD key."""
    zset = session.keyspace.get_typed(argv[1], ZSet)
    return len(zset) if zset is not None else 0


@register("zscore", 3, "readonly fast", 1, 1, 1)
def cmd_zscore(session, argv):
    """ZSCORE key member."""
    zset = session.keyspace.get_typed(argv[1], ZSet)
    if zset is None:
        return None
    score = zset.scores.get(argv[2])
    return None if score is None else score_reply(score)


@register("zmscore", -3, "readonly fast", 1, 1, 1)
def cmd_zmscore(session, argv):
    """ZMSCORE key member [member ...]: O(k)."""
    zset = session.keyspace.get_typed(argv[1], ZSet)
    scores = zset.scores if zset is not None else {}
    reply = []
    for member in argv[2:]:
        score = scores.get(member)
        reply.append(None if score is None else score_reply(score))
    return reply


@register("zrank", 3, "readonly fast", 1, 1, 1)
def cmd_zrank(session, argv):
    """ZRANK key member: O(log n)."""
    zset = session.keyspace.get_typed(argv[1], ZSet)
    return None if zset is None else zset.rank(argv[2])


@register("zrevrank", 3, "readonly fast", 1, 1, 1)
def cmd_zrevrank(session, argv):
    """ZREVRANK key member: O(log n)."""
    zset = session.keyspace.get_typed(argv[1], ZSet)
    if zset is None:
        return None
    rank = zset.rank(argv[2])
    return None if rank is None else len(zset) - 1 - rank


# -- ZCOUNT, ZLEXCOUNT ---------------------------------------------------------------------


def score_range(low: bytes, high: bytes) -> tuple:
    """Return the parsed bounds of a score range, or raise Redis's error."""
    first, second = parse_bound(low), parse_bound(high)
    if first is None or second is None:
        raise CommandError(RANGE_NOT_FLOAT)
    return first, second


def lex_range(low: bytes, high: bytes) -> tuple:
    """Return the parsed bounds of a lex range, or raise Redis's error."""
    first, second = parse_lex(low), parse_lex(high)
    if first is None or second is None:
        raise CommandError(RANGE_NOT_LEX)
    return first, second


@register("zcount", 4, "readonly fast", 1, 1, 1)
def cmd_zcount(session, argv):
    """ZCOUNT key min max: O(log n)."""
    low, high = score_range(argv[2], argv[3])
    zset = session.keyspace.get_typed(argv[1], ZSet)
    if zset is None:
        return 0
    start, end = zset.score_span(low, high)
    return end - start


@register("zlexcount", 4, "readonly fast", 1, 1, 1)
def cmd_zlexcount(session, argv):
    """ZLEXCOUNT key min max: O(log^2 n) (O(n) for a listpack-sized set, as Redis)."""
    low, high = lex_range(argv[2], argv[3])
    zset = session.keyspace.get_typed(argv[1], ZSet)
    if zset is None:
        return 0
    if not zset.big:
        return len(zset.lex_walk(low, high, False))
    first = zset.lex_first(low, high)
    if first is None:
        return 0
    last = zset.lex_last(low, high)
    return len(zset) - first if last is None else last - first + 1


# -- ZSCAN ----------------------------------------------------------------------------------


def _parse_cursor(raw: bytes) -> int:
    # strtoul: optional sign, decimal digits, a minus wraps around 2**64.
    body = raw[1:] if raw[:1] in (b"+", b"-") else raw
    if not body or not body.isdigit() or int(body) >= 2 ** 64:
        raise CommandError("ERR invalid cursor")
    return (2 ** 64 - int(body)) % 2 ** 64 if raw[:1] == b"-" else int(body)


@register("zscan", -3, "readonly", 1, 1, 1)
def cmd_zscan(session, argv):
    """ZSCAN key cursor [MATCH pattern] [COUNT count].

    A set of listpack encoding is returned whole (cursor 0), as Redis; a larger one in
    CRC-32 order, about COUNT members a step (zsettype.scan_step: O(log n + count) a
    step once indexed, O(n log n) for the first step).
    """
    cursor = _parse_cursor(argv[2])
    zset = session.keyspace.get_typed(argv[1], ZSet)
    if zset is None:
        return [b"0", []]
    count, pattern = 10, None
    index = 3
    while index < len(argv):
        option = argv[index].lower()
        if option == b"count" and index + 1 < len(argv):
            count = parse_int(argv[index + 1])
            if count < 1:
                raise CommandError(SYNTAX)
        elif option == b"match" and index + 1 < len(argv):
            pattern = argv[index + 1]
        else:
            raise CommandError(SYNTAX)
        index += 2
    if not zset.big:
        next_cursor, members = 0, zset.members()
    else:
        next_cursor, members = scan_step(zset, cursor, count)
    if pattern is not None and pattern != b"*":
        matches = compile_glob(pattern).matches
        members = [member for member in members if matches(member)]
    scores = zset.scores
    text = score_reply if zset.big else _listpack_text
    reply = []
    for member in members:
        reply.append(member)
        reply.append(text(scores[member]).text)
    return [b"%d" % next_cursor, reply]


class _Text:
    __slots__ = ("text",)

    def __init__(self, text: bytes) -> None:
        self.text = text


_HALF_LLONG = float(LONG_MAX // 2)


def _listpack_text(score: float) -> _Text:
    # A score as a listpack holds it (d2string): an integral one within +-LLONG_MAX/2 as
    # an integer, any other as %.17g (inf, -inf).
    if -_HALF_LLONG <= score <= _HALF_LLONG and score == int(score):
        return _Text(b"%d" % int(score))
    return score_reply(score)


# -- ZRANDMEMBER -------------------------------------------------------------------------


@register("zrandmember", -2, "readonly", 1, 1, 1)
def cmd_zrandmember(session, argv):
    """ZRANDMEMBER key [count [WITHSCORES]]: O(count + n) at worst."""
    if len(argv) >= 3:
        count = parse_range_long(argv[2], -LONG_MAX, LONG_MAX)
        withscores = False
        if len(argv) > 4 or (len(argv) == 4 and argv[3].lower() != b"withscores"):
            raise CommandError(SYNTAX)
        if len(argv) == 4:
            withscores = True
            if count < -LONG_MAX // 2 or count > LONG_MAX // 2:
                raise CommandError("ERR value is out of range")
        return _random_members(session, argv[1], count, withscores)
    zset = session.keyspace.get_typed(argv[1], ZSet)
    if zset is None:
        return None
    return zset.at(random.randrange(len(zset)))[1]


def _random_members(session, key: bytes, count: int, withscores: bool):
    # Negative counts (and 1) may repeat members, in random order; a count at least the
    # set's size is the whole set from the highest score down (zuiNext's order); a smaller
    # one distinct members at random.
    zset = session.keyspace.get_typed(key, ZSet)
    if zset is None or count == 0:
        return []
    size = len(zset)
    if count < 0 or count == 1:
        count = abs(count)
        if count > MAX_PICKS:  # Redis would stream them; a list of them all would not fit
            raise CommandError("ERR ZRANDMEMBER count is too large: kvstore sends at most "
                               "%d random members" % (MAX_PICKS,))
        if count < 64:
            picks = [zset.at(random.randrange(size)) for _ in range(count)]
        else:
            picks = random.choices(zset.items(0, size), k=count)
        return scored_reply(session, picks, withscores)
    if count >= size:
        return scored_reply(session, list(zset.descending()), withscores)
    return scored_reply(session, random.sample(zset.items(0, size), count), withscores)


# -- configuration -------------------------------------------------------------------------


# A memory parameter ("64", "4kb"), as Redis's memtoull: 0 to LONG_MAX.
_memory = memory(0, LONG_MAX)


def _limit(name: str):
    def apply(store, value: int) -> None:
        LIMITS[name] = value
    return apply


define_config("zset-max-listpack-entries", "128", SIZE_T, _limit("entries"),
              aliases=("zset-max-ziplist-entries",), show=str)
define_config("zset-max-listpack-value", "64", _memory, _limit("value"),
              aliases=("zset-max-ziplist-value",), show=str)


# -- keyspace events -------------------------------------------------------------------------

_Z = events.ZSET
events.declare(b"zadd", ((ZSET, OP_ADD), _Z, "zadd"), ((ZSET, OP_INCR), _Z, "zincr"))
events.declare(b"zincrby", ((ZSET, OP_INCR), _Z, "zincr"))
events.declare(b"zrem", ((ZSET, OP_REM), _Z, "zrem"))
events.declare_reads(b"zcard", b"zscore", b"zmscore", b"zrank", b"zrevrank", b"zcount",
                     b"zlexcount", b"zscan", b"zrandmember")
