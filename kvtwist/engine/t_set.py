"""Set commands, as Redis 7.0's t_set.c: SADD, SREM, SMEMBERS, SISMEMBER, SMISMEMBER, SCARD,
SPOP, SRANDMEMBER, SMOVE, SINTER, SINTERCARD, SUNION, SDIFF, the STORE forms, and SSCAN.

The value and its logged operations are in engine/settype.py. Each write checks its
arguments and types first, then changes the set through ``keyspace.mutate`` with only the
members it really adds or removes (no record, no event, when nothing changes); the STORE
forms write the whole result with ``keyspace.set`` (or delete the destination when the
result is empty). SPOP picks at random and logs the members it took. Replies list an
"intset" set's members in numeric order, as Redis's sorted intset does.
"""

from __future__ import annotations

import random

from kvtwist.engine import events
from kvtwist.engine.glob import compile_glob
from kvtwist.engine.keyspace import DEL, SET as SET_EFFECT
from kvtwist.engine.settype import (
    MAX_INTSET, SADD, SPOP, SREM, SPOP_MOVE_STRATEGY_MUL, SetValue, intset_fits)
from kvtwist.engine.table import SIZE_T
from kvtwist.engine.table import (
    LLONG_MAX, SYNTAX, define_config, parse_int, register)
from kvtwist.engine.types import SET
from kvtwist.wire.replies import CommandError, SetReply, stream_array

LONG_MAX = LLONG_MAX
# SRANDMEMBER with a negative count: more picks than this are refused (Redis would start
# sending them and close the connection at the client output buffer limit).
MAX_PICKS = 1 << 27


def set_reply(session, members: list):
    """Return ``members`` as a set reply: a RESP3 set, or a RESP2 array (Streamed if long)."""
    if session.protocol == 2:
        return stream_array(members)
    return SetReply(members)


def ordered(members: list) -> list:
    """Return a new set's members in Redis's reply order: numeric when it is an intset."""
    if intset_fits(members):
        return sorted(members, key=int)
    return members


def positive(raw: bytes, message: str = "ERR value is out of range, must be positive") -> int:
    """getPositiveLongFromObjectOrReply: a long >= 0, else ``message`` (not a number too)."""
    try:
        value = parse_int(raw)
    except CommandError:
        raise CommandError(message)
    if value < 0:
        raise CommandError(message)
    return value


def _sets(session, keys) -> list:
    """Look up ``keys`` as SINTER/SUNION/SDIFF do: a set or None each; WRONGTYPE on another
    type, even after a missing key."""
    get_typed = session.keyspace.get_typed
    return [get_typed(key, SetValue) for key in keys]


def _store(session, destination: bytes, members: list) -> int:
    """Write ``members`` to ``destination`` as a new set (no expiry), or delete it when
    there are none; return the count. O(n)."""
    keyspace = session.keyspace
    if members:
        keyspace.set(destination, SetValue(members), 0)
    else:
        keyspace.delete(destination)
    return len(members)


# -- single-set commands ----------------------------------------------------------------


@register("sadd", -3, "write denyoom fast", 1, 1, 1)
def cmd_sadd(session, argv):
    """SADD key member [member ...]: how many were new. O(N) in the members given."""
    keyspace, key = session.keyspace, argv[1]
    value = keyspace.get_typed(key, SetValue)
    if len(argv) == 3:  # the usual case, kept short
        if value is not None and argv[2] in value.index:
            return 0
        return keyspace.mutate(key, SetValue, SADD, (argv[2],))
    if value is None:
        new = tuple(dict.fromkeys(argv[2:]))
    else:
        index = value.index
        new = tuple(dict.fromkeys([member for member in argv[2:] if member not in index]))
        if not new:
            return 0
    return keyspace.mutate(key, SetValue, SADD, new)


@register("srem", -3, "write fast", 1, 1, 1)
def cmd_srem(session, argv):
    """SREM key member [member ...]: how many were removed. O(N) in the members given."""
    keyspace, key = session.keyspace, argv[1]
    value = keyspace.get_typed(key, SetValue)
    if value is None:
        return 0
    index = value.index
    gone = tuple(dict.fromkeys([member for member in argv[2:] if member in index]))
    if not gone:
        return 0
    return keyspace.mutate(key, SetValue, SREM, gone)


@register("smembers", 2, "readonly", 1, 1, 1)
def cmd_smembers(session, argv):
    """SMEMBERS key: every member (a RESP3 set). O(N)."""
    value = session.keyspace.get_typed(argv[1], SetValue)
    return set_reply(session, [] if value is None else value.in_order())


@register("sismember", 3, "readonly fast", 1, 1, 1)
def cmd_sismember(session, argv):
    """SISMEMBER key member: 1 or 0. O(1)."""
    value = session.keyspace.get_typed(argv[1], SetValue)
    return 1 if value is not None and argv[2] in value.index else 0


@register("smismember", -3, "readonly fast", 1, 1, 1)
def cmd_smismember(session, argv):
    """SMISMEMBER key member [member ...]: 1 or 0 for each. O(N) in the members given."""
    value = session.keyspace.get_typed(argv[1], SetValue)
    if value is None:
        return [0] * (len(argv) - 2)
    index = value.index
    return [1 if member in index else 0 for member in argv[2:]]


@register("scard", 2, "readonly fast", 1, 1, 1)
def cmd_scard(session, argv):
    """SCARD key: the number of members. O(1)."""
    value = session.keyspace.get_typed(argv[1], SetValue)
    return 0 if value is None else len(value)


@register("spop", -2, "write fast", 1, 1, 1)
def cmd_spop(session, argv):
    """SPOP key [count]: remove and return random members (logged as the members taken).

    O(1) without a count; O(count) with one (O(N) when it takes the whole set).
    """
    if len(argv) > 3:
        raise CommandError(SYNTAX)
    keyspace, key = session.keyspace, argv[1]
    if len(argv) == 2:
        value = keyspace.get_typed(key, SetValue)
        if value is None:
            return None
        items = value.items
        member = items[random.randrange(len(items))]
        keyspace.mutate(key, SetValue, SREM, (member,))
        return member
    count = positive(argv[2])
    value = keyspace.get_typed(key, SetValue)
    if value is None or count == 0:
        return set_reply(session, [])
    size = len(value)
    if count >= size:
        taken = ordered(list(value.items))
    else:
        remaining = size - count
        items = value.items
        if remaining * SPOP_MOVE_STRATEGY_MUL > count:
            taken = random.sample(items, count)
        else:
            # Redis draws the members that stay, then sends the rest in set order.
            stay = set(random.sample(items, remaining))
            taken = [member for member in value.in_order() if member not in stay]
    keyspace.mutate(key, SetValue, SPOP, tuple(taken))
    return set_reply(session, taken)


@register("srandmember", -2, "readonly", 1, 1, 1)
def cmd_srandmember(session, argv):
    """SRANDMEMBER key [count]: random members; a negative count may repeat them.

    O(1) without a count, O(|count|) with one (O(N) when it asks for the whole set).
    """
    if len(argv) > 3:
        raise CommandError(SYNTAX)
    keyspace, key = session.keyspace, argv[1]
    if len(argv) == 2:
        value = keyspace.get_typed(key, SetValue)
        if value is None:
            return None
        items = value.items
        return items[random.randrange(len(items))]
    count = parse_int(argv[2])
    if count < -LONG_MAX:
        raise CommandError("ERR value is out of range, value must between %d and %d"
                           % (-LONG_MAX, LONG_MAX))
    value = keyspace.get_typed(key, SetValue)
    if value is None or count == 0:
        return []
    items = value.items
    if count < 0 or count == 1:
        picks = -count if count < 0 else 1
        if picks > MAX_PICKS:
            raise CommandError("ERR SRANDMEMBER count is too large: kvstore sends at most "
                               "%d random members" % (MAX_PICKS,))
        return stream_array(random.choices(items, k=picks))
    if count >= len(items):
        return stream_array(value.in_order())
    return stream_array(random.sample(items, count))


@register("smove", 4, "write fast", 1, 2, 1)
def cmd_smove(session, argv):
    """SMOVE source destination member: 1 if moved. O(1).

    The destination gains the member before the source loses it, so a crash between the
    two records may leave it in both, never in neither.
    """
    keyspace, source, destination, member = session.keyspace, argv[1], argv[2], argv[3]
    src = keyspace.get_typed(source, SetValue)
    if src is None:
        return 0
    dst = keyspace.get_typed(destination, SetValue)
    if source == destination:
        return 1 if member in src.index else 0
    if member not in src.index:
        return 0
    if dst is None or member not in dst.index:
        keyspace.mutate(destination, SetValue, SADD, (member,))
    keyspace.mutate(source, SetValue, SREM, (member,))
    return 1


# -- multi-set commands ----------------------------------------------------------------


def _intersection(session, keys, limit: int = 0, count_only: bool = False):
    """Return the members in every one of ``keys`` (their count for SINTERCARD), in the
    smallest set's order: O(N * M), N the smallest set's size, M the number of keys."""
    sets = _sets(session, keys)
    if any(value is None for value in sets):
        return 0 if count_only else []
    sets.sort(key=len)
    first, others = sets[0], [value.index for value in sets[1:] if value is not sets[0]]
    found = []
    cardinality = 0
    for member in first.in_order():
        for index in others:
            if member not in index:
                break
        else:
            if count_only:
                cardinality += 1
                if limit and cardinality >= limit:
                    break
            else:
                found.append(member)
    return cardinality if count_only else found


def _union(session, keys) -> list:
    """Return the members of any of ``keys``: O(N), N the members of all."""
    merged = {}
    for value in _sets(session, keys):
        if value is not None:
            merged.update(dict.fromkeys(value.items))
    return ordered(list(merged))


def _difference(session, keys) -> list:
    """Return the first set's members in none of the others: O(N * M), N the first set's
    size, M the number of keys."""
    sets = _sets(session, keys)
    first = sets[0]
    if first is None or any(value is first for value in sets[1:]):
        return []
    others = [value.index for value in sets[1:] if value is not None]
    found = [member for member in first.items
             if not any(member in index for index in others)]
    return ordered(found)


@register("sinter", -2, "readonly", 1, -1, 1)
def cmd_sinter(session, argv):
    """SINTER key [key ...]: the intersection (a RESP3 set). O(N * M)."""
    return set_reply(session, _intersection(session, argv[1:]))


@register("sintercard", -3, "readonly movablekeys", 0, 0, 0)
def cmd_sintercard(session, argv):
    """SINTERCARD numkeys key [key ...] [LIMIT limit]: the intersection's size, counting
    stops at ``limit`` (0: no limit). O(N * M)."""
    try:
        numkeys = parse_int(argv[1])
    except CommandError:
        numkeys = 0
    if numkeys < 1:
        raise CommandError("ERR numkeys should be greater than 0")
    if numkeys > len(argv) - 2:
        raise CommandError("ERR Number of keys can't be greater than number of args")
    limit = 0
    index = 2 + numkeys
    while index < len(argv):
        if argv[index].lower() == b"limit" and index + 1 < len(argv):
            limit = positive(argv[index + 1], "ERR LIMIT can't be negative")
            index += 2
        else:
            raise CommandError(SYNTAX)
    return _intersection(session, argv[2:2 + numkeys], limit, count_only=True)


@register("sinterstore", -3, "write denyoom", 1, -1, 1)
def cmd_sinterstore(session, argv):
    """SINTERSTORE destination key [key ...]: the intersection's size, stored. O(N * M)."""
    return _store(session, argv[1], _intersection(session, argv[2:]))


@register("sunion", -2, "readonly", 1, -1, 1)
def cmd_sunion(session, argv):
    """SUNION key [key ...]: the union (a RESP3 set). O(N), N the members of all."""
    return set_reply(session, _union(session, argv[1:]))


@register("sunionstore", -3, "write denyoom", 1, -1, 1)
def cmd_sunionstore(session, argv):
    """SUNIONSTORE destination key [key ...]: the union's size, stored. O(N)."""
    return _store(session, argv[1], _union(session, argv[2:]))


@register("sdiff", -2, "readonly", 1, -1, 1)
def cmd_sdiff(session, argv):
    """SDIFF key [key ...]: the first set less the others (a RESP3 set). O(N * M)."""
    return set_reply(session, _difference(session, argv[1:]))


@register("sdiffstore", -3, "write denyoom", 1, -1, 1)
def cmd_sdiffstore(session, argv):
    """SDIFFSTORE destination key [key ...]: the difference's size, stored. O(N * M)."""
    return _store(session, argv[1], _difference(session, argv[2:]))


# -- SSCAN -------------------------------------------------------------------------------


def parse_cursor(raw: bytes) -> int:
    """parseScanCursorOrReply: strtoul's decimal, a minus wrapping around 2**64."""
    body = raw[1:] if raw[:1] in (b"+", b"-") else raw
    if not body or not body.isdigit() or int(body) >= 2 ** 64:
        raise CommandError("ERR invalid cursor")
    return (2 ** 64 - int(body)) % 2 ** 64 if raw[:1] == b"-" else int(body)


@register("sscan", -3, "readonly", 1, 1, 1)
def cmd_sscan(session, argv):
    """SSCAN key cursor [MATCH pattern] [COUNT count]: one step of a scan of the members.

    An "intset" set comes whole with cursor 0, as in Redis; a larger one is walked by
    position (SetValue.scan): every member present for the whole scan is returned at
    least once. O(count) per call (O(N) for an intset, N <= 512).
    """
    cursor = parse_cursor(argv[2])
    value = session.keyspace.get_typed(argv[1], SetValue)
    if value is None:
        return [b"0", []]
    count, pattern = 10, None
    index = 3
    while index < len(argv):
        option = argv[index].lower()
        if index + 1 >= len(argv) or option not in (b"count", b"match"):
            raise CommandError(SYNTAX)
        if option == b"count":
            count = parse_int(argv[index + 1])
            if count < 1:
                raise CommandError(SYNTAX)
        else:
            pattern = None if argv[index + 1] == b"*" else compile_glob(argv[index + 1]).matches
        index += 2
    if value.intset:
        cursor, members = 0, value.in_order()
    else:
        cursor, members = value.scan(cursor, count)
    if pattern is not None:
        members = [member for member in members if pattern(member)]
    return [b"%d" % cursor, members]


# -- configuration, events -----------------------------------------------------------------


def _apply_intset_entries(store, value: int) -> None:
    # Process-wide: the encoding rule lives with the values (engine/settype.py).
    MAX_INTSET[0] = value


define_config("set-max-intset-entries", "512", SIZE_T, _apply_intset_entries,
              show=str)

_S = events.SET_CLASS
events.declare(b"sadd", ((SET, SADD), _S, "sadd"))
events.declare(b"srem", ((SET, SREM), _S, "srem"))
events.declare(b"spop", ((SET, SREM), _S, "spop"), ((SET, SPOP), _S, "spop"))
events.declare(b"smove", ((SET, SADD), _S, "sadd"), ((SET, SREM), _S, "srem"))
for _name in (b"sinterstore", b"sunionstore", b"sdiffstore"):
    events.declare(_name, (SET_EFFECT, _S, _name.decode()), (DEL, events.GENERIC, "del"))
events.declare_reads(b"smembers", b"sismember", b"smismember", b"scard", b"srandmember",
                     b"sinter", b"sintercard", b"sunion", b"sdiff", b"sinterstore",
                     b"sunionstore", b"sdiffstore", b"sscan")
