"""Sorted-set ranges, as Redis 7.0's t_zset.c zrangeGenericCommand and zremrangeGeneric:
ZRANGE (BYSCORE, BYLEX, REV, LIMIT, WITHSCORES), ZRANGESTORE, ZREVRANGE, ZRANGEBYSCORE,
ZREVRANGEBYSCORE, ZRANGEBYLEX, ZREVRANGEBYLEX, ZREMRANGEBYRANK, ZREMRANGEBYSCORE,
ZREMRANGEBYLEX.

A range costs O(log n + m) for m members returned (O(log^2 n + m) by lex); the STORE form
O(m log m) more to build the destination; a removal O(m log n).
"""

from __future__ import annotations

from kvtwist.engine import events
from kvtwist.engine.keyspace import DEL, SET
from kvtwist.engine.table import SYNTAX, parse_int, register
from kvtwist.engine.types import ZSET
from kvtwist.engine.zsetscore import parse_bound, parse_lex
from kvtwist.engine.zsettype import OP_REMRANK, ZSet, scored_reply
from kvtwist.wire.replies import CommandError

RANK, SCORE, LEX = 1, 2, 3
RANGE_NOT_FLOAT = "ERR min or max is not a float"
RANGE_NOT_LEX = "ERR min or max not valid string range item"
LIMIT_NEEDS_BY = ("ERR syntax error, LIMIT is only supported in combination with either "
                  "BYSCORE or BYLEX")
WITHSCORES_BYLEX = "ERR syntax error, WITHSCORES not supported in combination with BYLEX"


def _parse_range(kind: int, low: bytes, high: bytes):
    if kind == RANK:
        return parse_int(low), parse_int(high)
    if kind == SCORE:
        first, second = parse_bound(low), parse_bound(high)
        if first is None or second is None:
            raise CommandError(RANGE_NOT_FLOAT)
        return first, second
    first, second = parse_lex(low), parse_lex(high)
    if first is None or second is None:
        raise CommandError(RANGE_NOT_LEX)
    return first, second


def rank_span(size: int, start: int, end: int):
    """Return ``(start, end + 1)`` of a rank range clamped as Redis, or None when empty."""
    if start < 0:
        start += size
    if end < 0:
        end += size
    if start < 0:
        start = 0
    if start > end or start >= size:
        return None
    return start, min(end, size - 1) + 1


def _select(zset: ZSet, kind: int, bounds, reverse: bool, offset: int, limit: int) -> list:
    # The (score, member) items of a range, in reply order.
    size = len(zset)
    if kind == RANK:
        span = rank_span(size, bounds[0], bounds[1])
        if span is None:
            return []
        start, end = span
        if reverse:
            return zset.items(size - end, size - start, reverse=True)
        return zset.items(start, end)
    if offset < 0 or (offset > 0 and offset >= size):
        return []
    if kind == LEX:
        return zset.lex_walk(bounds[0], bounds[1], reverse, offset, limit)
    start, end = zset.score_span(bounds[0], bounds[1])
    if reverse:
        top = end - offset
        bottom = start if limit < 0 else max(start, top - limit)
        return zset.items(bottom, top, reverse=True) if top > bottom else []
    first = start + offset
    last = end if limit < 0 else min(end, first + limit)
    return zset.items(first, last) if last > first else []


def zrange_generic(session, argv, start: int, destination, kind: int, reverse):
    """zrangeGenericCommand: ``argv[start]`` is the source key, then min and max, then
    options; ``kind`` 0 and ``reverse`` None are decided by the options (ZRANGE)."""
    withscores = False
    offset, limit = 0, -1
    index = start + 3
    while index < len(argv):
        option = argv[index].lower()
        left = len(argv) - index - 1
        if destination is None and option == b"withscores":
            withscores = True
        elif option == b"limit" and left >= 2:
            offset = parse_int(argv[index + 1])
            limit = parse_int(argv[index + 2])
            index += 2
        elif reverse is None and option == b"rev":
            reverse = True
        elif kind == 0 and option == b"bylex":
            kind = LEX
        elif kind == 0 and option == b"byscore":
            kind = SCORE
        else:
            raise CommandError(SYNTAX)
        index += 1
    reverse = bool(reverse)
    kind = kind or RANK
    if limit != -1 and kind == RANK:
        raise CommandError(LIMIT_NEEDS_BY)
    if withscores and kind == LEX:
        raise CommandError(WITHSCORES_BYLEX)
    low, high = argv[start + 1], argv[start + 2]
    if reverse and kind != RANK:
        low, high = high, low
    bounds = _parse_range(kind, low, high)
    keyspace = session.keyspace
    zset = keyspace.get_typed(argv[start], ZSet)
    items = _select(zset, kind, bounds, reverse, offset, limit) if zset is not None else []
    if destination is None:
        return scored_reply(session, items, withscores)
    if not items:
        keyspace.delete(destination)
        return 0
    keyspace.set(destination, ZSet.from_pairs([(member, score) for score, member in items]))
    return len(items)


@register("zrange", -4, "readonly", 1, 1, 1)
def cmd_zrange(session, argv):
    """ZRANGE key min max [BYSCORE|BYLEX] [REV] [LIMIT offset count] [WITHSCORES]."""
    return zrange_generic(session, argv, 1, None, 0, None)


@register("zrangestore", -5, "write denyoom", 1, 2, 1)
def cmd_zrangestore(session, argv):
    """ZRANGESTORE dst src min max [BYSCORE|BYLEX] [REV] [LIMIT offset count]."""
    return zrange_generic(session, argv, 2, argv[1], 0, None)


@register("zrevrange", -4, "readonly", 1, 1, 1)
def cmd_zrevrange(session, argv):
    """ZREVRANGE key start stop [WITHSCORES]."""
    return zrange_generic(session, argv, 1, None, RANK, True)


@register("zrangebyscore", -4, "readonly", 1, 1, 1)
def cmd_zrangebyscore(session, argv):
    """ZRANGEBYSCORE key min max [WITHSCORES] [LIMIT offset count]."""
    return zrange_generic(session, argv, 1, None, SCORE, False)


@register("zrevrangebyscore", -4, "readonly", 1, 1, 1)
def cmd_zrevrangebyscore(session, argv):
    """ZREVRANGEBYSCORE key max min [WITHSCORES] [LIMIT offset count]."""
    return zrange_generic(session, argv, 1, None, SCORE, True)


@register("zrangebylex", -4, "readonly", 1, 1, 1)
def cmd_zrangebylex(session, argv):
    """ZRANGEBYLEX key min max [LIMIT offset count]."""
    return zrange_generic(session, argv, 1, None, LEX, False)


@register("zrevrangebylex", -4, "readonly", 1, 1, 1)
def cmd_zrevrangebylex(session, argv):
    """ZREVRANGEBYLEX key max min [LIMIT offset count]."""
    return zrange_generic(session, argv, 1, None, LEX, True)


# -- removal by range ---------------------------------------------------------------------


def _remrange(session, argv, kind: int) -> int:
    bounds = _parse_range(kind, argv[2], argv[3])
    keyspace, key = session.keyspace, argv[1]
    zset = keyspace.get_typed(key, ZSet)
    if zset is None:
        return 0
    if kind == RANK:
        span = rank_span(len(zset), bounds[0], bounds[1])
        if span is None:
            return 0
        start, end = span
    elif kind == SCORE:
        start, end = zset.score_span(bounds[0], bounds[1])
    else:
        start = zset.lex_first(bounds[0], bounds[1])
        if start is None:
            return 0
        end = start + len(zset.lex_walk(bounds[0], bounds[1], False))
    if end <= start:
        return 0
    keyspace.mutate(key, ZSet, OP_REMRANK, (b"%d" % start, b"%d" % (end - 1)))
    return end - start


@register("zremrangebyrank", 4, "write", 1, 1, 1)
def cmd_zremrangebyrank(session, argv):
    """ZREMRANGEBYRANK key start stop: the number removed."""
    return _remrange(session, argv, RANK)


@register("zremrangebyscore", 4, "write", 1, 1, 1)
def cmd_zremrangebyscore(session, argv):
    """ZREMRANGEBYSCORE key min max: the number removed."""
    return _remrange(session, argv, SCORE)


@register("zremrangebylex", 4, "write", 1, 1, 1)
def cmd_zremrangebylex(session, argv):
    """ZREMRANGEBYLEX key min max: the number removed."""
    return _remrange(session, argv, LEX)


_Z, _G = events.ZSET, events.GENERIC
for _name in ("zremrangebyrank", "zremrangebyscore", "zremrangebylex"):
    events.declare(_name.encode(), ((ZSET, OP_REMRANK), _Z, _name))
events.declare(b"zrangestore", (SET, _Z, "zrangestore"), (DEL, _G, "del"))
events.declare_reads(b"zrange", b"zrevrange", b"zrangebyscore", b"zrevrangebyscore",
                     b"zrangebylex", b"zrevrangebylex", b"zrangestore")
