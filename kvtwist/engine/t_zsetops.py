"""Sorted-set pops and algebra, as Redis 7.0's t_zset.c: ZPOPMIN, ZPOPMAX, ZMPOP, ZUNION,
ZINTER, ZDIFF, ZINTERCARD, ZUNIONSTORE, ZINTERSTORE and ZDIFFSTORE.

Plain sets are inputs too: each member with score 1, as Redis's zuiNext.
"""

from __future__ import annotations

from kvtwist.engine import events
from kvtwist.engine.keyspace import DEL, SET
from kvtwist.engine.table import LLONG_MAX, SYNTAX, parse_int, register
from kvtwist.engine.types import ZSET, wrongtype
from kvtwist.engine.zsetscore import parse_score
from kvtwist.engine.zsettype import (
    OP_POPMAX, OP_POPMIN, ZSet, score_reply, scored_reply)
from kvtwist.wire.replies import NIL_ARRAY, CommandError

UNION, INTER, DIFF = 1, 2, 3
SUM, MIN, MAX = 1, 2, 3


def _range_long(text: bytes, low: int, high: int, message: str) -> int:
    # getRangeLongFromObjectOrReply with a message: the same text for both failures.
    try:
        value = parse_int(text)
    except CommandError:
        raise CommandError(message)
    if not low <= value <= high:
        raise CommandError(message)
    return value


# -- ZPOPMIN, ZPOPMAX, ZMPOP ------------------------------------------------------------------


def pop(session, keys, highest: bool, count: int):
    """genericZpopCommand's work: pop from the first existing key of ``keys``; return
    ``(key, [(score, member)...])``, or None when none exists. O(count log n)."""
    keyspace = session.keyspace
    for key in keys:
        zset = keyspace.get_typed(key, ZSet)
        if zset is None:
            continue
        if count == 0:
            return key, []
        size = len(zset)
        count = min(count, size)
        if highest:
            first, opcode = size - count, OP_POPMAX
        else:
            first, opcode = 0, OP_POPMIN
        taken = keyspace.mutate(key, ZSet, opcode, (b"%d" % first, b"%d" % (first + count - 1)))
        return key, taken[::-1] if highest else taken
    return None


def _flat(items) -> list:
    reply = []
    for score, member in items:
        reply.append(member)
        reply.append(score_reply(score))
    return reply


def _zpop(session, argv, highest: bool):
    if len(argv) > 3:
        raise CommandError(SYNTAX)
    count = -1
    if len(argv) == 3:
        count = _range_long(argv[2], 0, LLONG_MAX, "ERR value is out of range, must be positive")
    found = pop(session, [argv[1]], highest, 1 if count == -1 else count)
    if found is None:
        return []
    items = found[1]
    if session.protocol > 2 and count != -1:
        return [[member, score_reply(score)] for score, member in items]
    return _flat(items)


@register("zpopmin", -2, "write fast", 1, 1, 1)
def cmd_zpopmin(session, argv):
    """ZPOPMIN key [count]: O(count log n)."""
    return _zpop(session, argv, False)


@register("zpopmax", -2, "write fast", 1, 1, 1)
def cmd_zpopmax(session, argv):
    """ZPOPMAX key [count]: O(count log n)."""
    return _zpop(session, argv, True)


def parse_mpop(argv, numkeys_index: int):
    """Parse ZMPOP's (BZMPOP's) arguments after ``numkeys_index``; return (keys, highest,
    count)."""
    numkeys = _range_long(argv[numkeys_index], 1, LLONG_MAX, "ERR numkeys should be greater than 0")
    where_index = numkeys_index + numkeys + 1
    if where_index >= len(argv):
        raise CommandError(SYNTAX)
    where = argv[where_index].lower()
    if where not in (b"min", b"max"):
        raise CommandError(SYNTAX)
    count = -1
    index = where_index + 1
    while index < len(argv):
        if count == -1 and argv[index].lower() == b"count" and index + 1 < len(argv):
            count = _range_long(argv[index + 1], 1, LLONG_MAX, "ERR count should be greater than 0")
            index += 2
        else:
            raise CommandError(SYNTAX)
    return argv[numkeys_index + 1:where_index], where == b"max", 1 if count == -1 else count


def mpop_reply(found):
    """Return ZMPOP's reply: [key, [[member, score]...]], or the null array."""
    if found is None:
        return NIL_ARRAY
    key, items = found
    return [key, [[member, score_reply(score)] for score, member in items]]


@register("zmpop", -4, "write movablekeys", 0, 0, 0)
def cmd_zmpop(session, argv):
    """ZMPOP numkeys key [key ...] MIN|MAX [COUNT count]: O(k + count log n)."""
    keys, highest, count = parse_mpop(argv, 1)
    return mpop_reply(pop(session, keys, highest, count))


# -- ZUNION, ZINTER, ZDIFF and their STORE forms, ZINTERCARD ----------------------------------


def _scores_of(value) -> dict:
    # A source's member -> score: a sorted set's own dict, a plain set's members with 1.
    if value.__class__ is ZSet:
        return value.scores
    members = getattr(value, "members", value)
    return dict.fromkeys(members, 1.0)


def _aggregate(target: float, value: float, how: int) -> float:
    # zunionInterAggregate.
    if how == SUM:
        target = target + value
        return 0.0 if target != target else target
    if how == MIN:
        return value if value < target else target
    return value if value > target else target


def _algebra(session, argv, numkeys_index: int, op: int, store, cardinality: bool):
    """zunionInterDiffGenericCommand: returns the reply.

    O(sum of the inputs' sizes) for a union, O(smallest * k) for an intersection,
    O(first * k) for a difference, then O(m log m) to order the m members of the result.
    """
    name = argv[0].lower().decode("utf-8", "replace")
    setnum = parse_int(argv[numkeys_index])
    if setnum < 1:
        raise CommandError("ERR at least 1 input key is needed for '%s' command" % (name,))
    if setnum > len(argv) - (numkeys_index + 1):
        raise CommandError(SYNTAX)
    keyspace = session.keyspace
    sources = []
    for key in argv[numkeys_index + 1:numkeys_index + 1 + setnum]:
        value = keyspace.get(key)
        if value is not None and getattr(value, "type_name", None) not in (b"zset", b"set"):
            raise wrongtype()
        sources.append([value, 1.0])
    how, withscores, limit = SUM, False, 0
    index = numkeys_index + 1 + setnum
    while index < len(argv):
        option = argv[index].lower()
        remaining = len(argv) - index
        if op != DIFF and not cardinality and remaining >= setnum + 1 and option == b"weights":
            for source, text in zip(sources, argv[index + 1:index + 1 + setnum]):
                weight = parse_score(text)
                if weight is None:
                    raise CommandError("ERR weight value is not a float")
                source[1] = weight
            index += setnum + 1
        elif op != DIFF and not cardinality and remaining >= 2 and option == b"aggregate":
            kind = argv[index + 1].lower()
            if kind not in (b"sum", b"min", b"max"):
                raise CommandError(SYNTAX)
            how = {b"sum": SUM, b"min": MIN, b"max": MAX}[kind]
            index += 2
        elif store is None and not cardinality and option == b"withscores":
            withscores = True
            index += 1
        elif cardinality and remaining >= 2 and option == b"limit":
            limit = _range_long(argv[index + 1], 0, LLONG_MAX, "ERR LIMIT can't be negative")
            index += 2
        else:
            raise CommandError(SYNTAX)
    inputs = [(value, _scores_of(value) if value is not None else {}, weight)
              for value, weight in sources]
    if op != DIFF:
        inputs.sort(key=lambda entry: len(entry[1]))
    result = {}
    if op == INTER:
        first_value, first, first_weight = inputs[0]
        found = 0
        for member, base in first.items():
            score = first_weight * base
            if score != score:
                score = 0.0
            for value, scores, weight in inputs[1:]:
                if value is first_value:
                    score = _aggregate(score, base * weight, how)
                    continue
                other = scores.get(member)
                if other is None:
                    break
                score = _aggregate(score, other * weight, how)
            else:
                if cardinality:
                    found += 1
                    if limit and found >= limit:
                        break
                else:
                    result[member] = score
        if cardinality:
            return found
    elif op == UNION:
        for _, scores, weight in inputs:
            for member, base in scores.items():
                score = weight * base
                if score != score:
                    score = 0.0
                old = result.get(member)
                result[member] = score if old is None else _aggregate(old, score, how)
    else:
        others = [scores for _, scores, _ in inputs[1:]]
        result = {member: score for member, score in inputs[0][1].items()
                  if not any(member in scores for scores in others)}
    if store is not None:
        if not result:
            keyspace.delete(store)
            return 0
        keyspace.set(store, ZSet.from_pairs(result.items()))
        return len(result)
    items = sorted([(score, member) for member, score in result.items()])
    return scored_reply(session, items, withscores)


@register("zunion", -3, "readonly movablekeys", 0, 0, 0)
def cmd_zunion(session, argv):
    """ZUNION numkeys key [key ...] [WEIGHTS w...] [AGGREGATE SUM|MIN|MAX] [WITHSCORES]."""
    return _algebra(session, argv, 1, UNION, None, False)


@register("zinter", -3, "readonly movablekeys", 0, 0, 0)
def cmd_zinter(session, argv):
    """ZINTER numkeys key [key ...] [WEIGHTS w...] [AGGREGATE SUM|MIN|MAX] [WITHSCORES]."""
    return _algebra(session, argv, 1, INTER, None, False)


@register("zdiff", -3, "readonly movablekeys", 0, 0, 0)
def cmd_zdiff(session, argv):
    """ZDIFF numkeys key [key ...] [WITHSCORES]."""
    return _algebra(session, argv, 1, DIFF, None, False)


@register("zintercard", -3, "readonly movablekeys", 0, 0, 0)
def cmd_zintercard(session, argv):
    """ZINTERCARD numkeys key [key ...] [LIMIT limit]."""
    return _algebra(session, argv, 1, INTER, None, True)


@register("zunionstore", -4, "write denyoom movablekeys", 1, 1, 1)
def cmd_zunionstore(session, argv):
    """ZUNIONSTORE destination numkeys key [key ...] [WEIGHTS w...] [AGGREGATE ...]."""
    return _algebra(session, argv, 2, UNION, argv[1], False)


@register("zinterstore", -4, "write denyoom movablekeys", 1, 1, 1)
def cmd_zinterstore(session, argv):
    """ZINTERSTORE destination numkeys key [key ...] [WEIGHTS w...] [AGGREGATE ...]."""
    return _algebra(session, argv, 2, INTER, argv[1], False)


@register("zdiffstore", -4, "write denyoom movablekeys", 1, 1, 1)
def cmd_zdiffstore(session, argv):
    """ZDIFFSTORE destination numkeys key [key ...]."""
    return _algebra(session, argv, 2, DIFF, argv[1], False)


_Z, _G = events.ZSET, events.GENERIC
events.declare(b"zpopmin", ((ZSET, OP_POPMIN), _Z, "zpopmin"))
events.declare(b"zpopmax", ((ZSET, OP_POPMAX), _Z, "zpopmax"))
events.declare(b"zmpop", ((ZSET, OP_POPMIN), _Z, "zpopmin"), ((ZSET, OP_POPMAX), _Z, "zpopmax"))
for _name in ("zunionstore", "zinterstore", "zdiffstore"):
    events.declare(_name.encode(), (SET, _Z, _name), (DEL, _G, "del"))
events.declare_reads(b"zunion", b"zinter", b"zdiff", b"zintercard", b"zunionstore",
                     b"zinterstore", b"zdiffstore")
