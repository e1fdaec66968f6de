"""Blocking list commands: BLPOP, BRPOP, BLMOVE, BRPOPLPUSH and BLMPOP (Redis 7.0's t_list.c).

Each serves at once when one of its lists has elements (as the non-blocking command),
answers at once inside MULTI/EXEC (nil, as Redis's CLIENT_DENY_BLOCKING), and otherwise
blocks on engine/blocking.py with a serve function that pops for the woken client.
"""

from __future__ import annotations

from kvtwist.engine.blocking import NOT_READY, blocking_for, can_block, parse_timeout
from kvtwist.engine.listtype import ListValue
from kvtwist.engine.t_list import get_list, move, parse_end, parse_mpop, pop
from kvtwist.engine.table import register
from kvtwist.engine.types import wrongtype
from kvtwist.wire.replies import NIL_ARRAY


def _waiting_list(keyspace, key):
    # A ready key's value, if it is a non-empty list (another type: not for us, stay blocked).
    value = keyspace.get(key)
    if value is None or value.__class__ is not ListValue or not len(value):
        return None
    return value


def _serve_pop(blocked, keyspace, key):
    """Serve a BLPOP/BRPOP (state: (left, None)) or a BLMPOP (state: (left, count))."""
    value = _waiting_list(keyspace, key)
    if value is None:
        return NOT_READY
    left, count = blocked.state
    if count is None:
        return [key, pop(keyspace, key, value, left, 1)[0]]
    return [key, pop(keyspace, key, value, left, count)]


def _serve_move(blocked, keyspace, key):
    """Serve a BLMOVE/BRPOPLPUSH (state: (destination, left_from, left_to))."""
    value = _waiting_list(keyspace, key)
    if value is None:
        return NOT_READY
    destination, left_from, left_to = blocked.state
    target = keyspace.get(destination)
    if target is not None and target.__class__ is not ListValue:
        raise wrongtype()  # the client gets WRONGTYPE, as Redis's serveClientBlockedOnList
    return move(keyspace, key, value, destination, left_from, left_to)


def _blocking_pop(session, keys, left: bool, count, deadline: float):
    keyspace = session.keyspace
    for key in keys:
        value = get_list(session, key)
        if value is not None and len(value):
            if count is None:
                return [key, pop(keyspace, key, value, left, 1)[0]]
            return [key, pop(keyspace, key, value, left, count)]
    if not can_block(session):
        return NIL_ARRAY
    return blocking_for(session.store).block(session, keys, _serve_pop, deadline, NIL_ARRAY,
                                             (left, count))


@register("blpop", -3, "write noscript blocking", 1, -2, 1)
def cmd_blpop(session, argv):
    """BLPOP key [key ...] timeout: O(keys)."""
    deadline = parse_timeout(argv[-1])
    return _blocking_pop(session, argv[1:-1], True, None, deadline)


@register("brpop", -3, "write noscript blocking", 1, -2, 1)
def cmd_brpop(session, argv):
    """BRPOP key [key ...] timeout: O(keys)."""
    deadline = parse_timeout(argv[-1])
    return _blocking_pop(session, argv[1:-1], False, None, deadline)


@register("blmpop", -5, "write blocking movablekeys", 0, 0, 0)
def cmd_blmpop(session, argv):
    """BLMPOP timeout numkeys key [key ...] LEFT|RIGHT [COUNT count]: O(keys + count)."""
    keys, left, count = parse_mpop(argv, 2)
    deadline = parse_timeout(argv[1])
    return _blocking_pop(session, keys, left, count, deadline)


def _blocking_move(session, source, destination, left_from, left_to, deadline):
    value = get_list(session, source)
    if value is None:
        if not can_block(session):
            return None
        return blocking_for(session.store).block(
            session, [source], _serve_move, deadline, NIL_ARRAY,
            (destination, left_from, left_to))
    get_list(session, destination)  # WRONGTYPE before anything changes
    return move(session.keyspace, source, value, destination, left_from, left_to)


@register("blmove", 6, "write denyoom noscript blocking", 1, 2, 1)
def cmd_blmove(session, argv):
    """BLMOVE source destination LEFT|RIGHT LEFT|RIGHT timeout: O(1)."""
    left_from, left_to = parse_end(argv[3]), parse_end(argv[4])
    deadline = parse_timeout(argv[5])
    return _blocking_move(session, argv[1], argv[2], left_from, left_to, deadline)


@register("brpoplpush", 4, "write denyoom noscript blocking", 1, 2, 1)
def cmd_brpoplpush(session, argv):
    """BRPOPLPUSH source destination timeout: O(1)."""
    deadline = parse_timeout(argv[3])
    return _blocking_move(session, argv[1], argv[2], False, True, deadline)
