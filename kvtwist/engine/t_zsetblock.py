"""Blocking sorted-set pops: BZPOPMIN, BZPOPMAX and BZMPOP (Redis 7.0's t_zset.c
blockingGenericZpopCommand and blocked.c serveClientsBlockedOnSortedSetKey).

Each pops at once, as ZPOPMIN/ZPOPMAX/ZMPOP (engine/t_zsetops.py ``pop``), from the first
of its keys that exists (WRONGTYPE when that key is not a sorted set); answers the null
array at once inside MULTI/EXEC (Redis's CLIENT_DENY_BLOCKING); and otherwise blocks on
engine/blocking.py. A woken client is served from the ready key only if it then holds a
sorted set: a key that became a list or a string leaves it waiting (Redis 7.0 serves a
ready key's waiters of that key's type only). The woken pop is the same logged operation
(POPMIN/POPMAX) with the same keyspace events (zpopmin/zpopmax, del when emptied).

Replies: BZPOPMIN/BZPOPMAX ``[key, member, score]`` (the score a bulk string in RESP2, a
double in RESP3); BZMPOP ``[key, [[member, score]...]]`` as ZMPOP; a timeout or CLIENT
UNBLOCK the null array.
"""

from __future__ import annotations

from kvtwist.engine import events
from kvtwist.engine.blocking import NOT_READY, blocking_for, can_block, parse_timeout
from kvtwist.engine.table import register
from kvtwist.engine.t_zsetops import mpop_reply, parse_mpop, pop
from kvtwist.engine.types import ZSET
from kvtwist.engine.zsettype import OP_POPMAX, OP_POPMIN, ZSet, score_reply
from kvtwist.wire.replies import NIL_ARRAY


def _reply(found, nested: bool):
    # BZMPOP answers as ZMPOP; BZPOPMIN/BZPOPMAX flat: key, member, score.
    if nested:
        return mpop_reply(found)
    key, items = found
    score, member = items[0]
    return [key, member, score_reply(score)]


def _serve(blocked, keyspace, key):
    """Serve one woken client (state: (highest, count, nested)) from the ready ``key``:
    O(count log n)."""
    value = keyspace.get(key)
    if value is None or value.__class__ is not ZSet or not len(value):
        return NOT_READY  # gone again, or another type: keep waiting (Redis 7.0)
    highest, count, nested = blocked.state
    return _reply(pop(blocked.session, [key], highest, count), nested)


def _blocking_pop(session, keys, highest: bool, count: int, nested: bool, deadline: float):
    found = pop(session, keys, highest, count)
    if found is not None:
        return _reply(found, nested)
    if not can_block(session):
        return NIL_ARRAY
    return blocking_for(session.store).block(session, keys, _serve, deadline, NIL_ARRAY,
                                             (highest, count, nested))


@register("bzpopmin", -3, "write noscript blocking fast", 1, -2, 1)
def cmd_bzpopmin(session, argv):
    """BZPOPMIN key [key ...] timeout: O(keys + log n)."""
    deadline = parse_timeout(argv[-1])
    return _blocking_pop(session, argv[1:-1], False, 1, False, deadline)


@register("bzpopmax", -3, "write noscript blocking fast", 1, -2, 1)
def cmd_bzpopmax(session, argv):
    """BZPOPMAX key [key ...] timeout: O(keys + log n)."""
    deadline = parse_timeout(argv[-1])
    return _blocking_pop(session, argv[1:-1], True, 1, False, deadline)


@register("bzmpop", -5, "write blocking movablekeys", 0, 0, 0)
def cmd_bzmpop(session, argv):
    """BZMPOP timeout numkeys key [key ...] MIN|MAX [COUNT count]: O(keys + count log n)."""
    keys, highest, count = parse_mpop(argv, 2)  # Redis checks these before the timeout
    deadline = parse_timeout(argv[1])
    return _blocking_pop(session, keys, highest, count, True, deadline)


_Z = events.ZSET
events.declare(b"bzpopmin", ((ZSET, OP_POPMIN), _Z, "zpopmin"))
events.declare(b"bzpopmax", ((ZSET, OP_POPMAX), _Z, "zpopmax"))
events.declare(b"bzmpop", ((ZSET, OP_POPMIN), _Z, "zpopmin"), ((ZSET, OP_POPMAX), _Z, "zpopmax"))
