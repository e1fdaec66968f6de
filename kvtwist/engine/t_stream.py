"""Stream commands, as Redis 7.0's t_stream.c: XADD, XRANGE, XREVRANGE, XLEN, XDEL, XTRIM,
XSETID and XREAD (with BLOCK, on engine/blocking.py); XINFO STREAM is in t_streaminfo.py.

The value and its logged operations are in engine/streamtype.py. Each write parses and
checks everything first, then changes the stream through ``keyspace.mutate``: XADD logs
the ID it generated (so a replay adds the same entry), trimming logs how many entries it
removed from the head (exact or approximate alike), XDEL the IDs it removed. Consumer
groups (XGROUP, XREADGROUP, XACK, XPENDING, XCLAIM, XAUTOCLAIM) are not implemented: they
stay unknown commands.
"""

from __future__ import annotations

import re

from kvtwist.engine import events, streamrdb  # noqa: F401  (streamrdb: DUMP/RESTORE codec)
from kvtwist.engine.config import memory
from kvtwist.engine.blocking import NOT_READY, blocking_for, can_block
from kvtwist.engine.streamtype import (
    LISTPACK_MAX, MASK, MAX_ID, NODE_LIMITS, STREAM, TRIM, XADD, XDEL, XSETID, StreamValue,
    format_id)
from kvtwist.engine.table import (
    LLONG_MAX, SYNTAX, c_lower, define_config, integer_parameter, parse_int, register)
from kvtwist.wire.replies import NIL_ARRAY, OK, CommandError, Pairs

INVALID_ID = "ERR Invalid stream ID specified as stream command argument"
NOT_GREATER = "ERR The ID specified in XADD is equal or smaller than the target stream top item"
TOO_LARGE = "ERR Elements are too large to be stored"
BLOCKED_DEFAULT_COUNT = 1000  # XREAD_BLOCKED_DEFAULT_COUNT

_STRTOULL = re.compile(rb"[ \t\n\v\f\r]*([+-]?)([0-9]+)\Z")


def string2ull(text: bytes):
    """Redis's string2ull: string2ll (negative refused), else strtoull (leading spaces, a
    sign, leading zeros; '-' wraps around); None when it fails."""
    try:
        number = parse_int(text)
    except CommandError:
        number = None
    if number is not None:
        return number if number >= 0 else None
    match = _STRTOULL.match(text)
    if match is None:
        return None
    number = int(match.group(2))
    if number > MASK:
        return None
    return (-number) & MASK if match.group(1) == b"-" else number


def parse_id(raw: bytes, missing_seq: int = 0, strict: bool = False, auto_seq: bool = False):
    """streamGenericParseIDOrReply: return the ID (an int), or with ``auto_seq`` a pair
    (ID, seq_given) accepting "ms-*". "-" and "+" are the least and greatest IDs unless
    ``strict``. Raises Redis's invalid-ID error."""
    if len(raw) > 127:
        raise CommandError(INVALID_ID)
    text = raw.split(b"\0", 1)[0]
    if text in (b"-", b"+"):
        if strict:
            raise CommandError(INVALID_ID)
        ident = 0 if text == b"-" else MAX_ID
        return (ident, True) if auto_seq else ident
    ms_text, dash, seq_text = text.partition(b"-")
    ms = string2ull(ms_text)
    if ms is None:
        raise CommandError(INVALID_ID)
    seq_given = True
    if not dash:
        seq = missing_seq
    elif auto_seq and seq_text == b"*":
        seq, seq_given = 0, False
    else:
        seq = string2ull(seq_text)
        if seq is None:
            raise CommandError(INVALID_ID)
    ident = ms << 64 | seq
    return (ident, seq_given) if auto_seq else ident


def parse_interval(raw: bytes, missing_seq: int):
    """streamParseIntervalIDOrReply: (ID, exclusive) with "(" for an exclusive bound."""
    if len(raw) > 1 and raw[:1] == b"(":
        return parse_id(raw[1:], missing_seq, strict=True), True
    return parse_id(raw, missing_seq), False


def get_stream(session, key):
    """The stream at ``key`` (None when missing; WRONGTYPE for another type)."""
    return session.keyspace.get_typed(key, StreamValue)


def entries_reply(entries: list) -> tuple:
    """Redis's reply for entries: [id, [field, value, ...]] each. (Tuples for the nested
    arrays: the RESP encoders try a list as an array of strings first, and pay an
    exception for every nested one; a tuple goes straight to the element-wise path.)"""
    return tuple([(format_id(ident), list(items)) for ident, items in entries])


class TrimArgs:
    """The parsed MAXLEN/MINID [=|~] threshold [LIMIT count] of XADD and XTRIM."""

    __slots__ = ("maxlen", "minid", "approx", "limit", "nomkstream", "id", "seq_given")

    def __init__(self) -> None:
        self.maxlen = self.minid = self.id = None
        self.approx = False
        self.limit = 0
        self.nomkstream = False
        self.seq_given = True

    @property
    def strategy(self) -> bool:
        return self.maxlen is not None or self.minid is not None


_BOTH = "ERR syntax error, MAXLEN and MINID options at the same time are not compatible"


def parse_add_trim(argv, xadd: bool):
    """streamParseAddOrTrimArgsOrReply: return (TrimArgs, position of the ID for XADD)."""
    args = TrimArgs()
    limit_given = False
    i = 2
    argc = len(argv)
    while i < argc:
        more = argc - 1 - i
        opt = c_lower(argv[i])
        if xadd and argv[i] == b"*":
            break
        if opt in (b"maxlen", b"minid") and more:
            if args.strategy:
                raise CommandError(_BOTH)
            args.approx = False
            following = argv[i + 1]
            if more >= 2 and following in (b"~", b"="):
                args.approx = following == b"~"
                i += 1
            if opt == b"maxlen":
                maxlen = parse_int(argv[i + 1])
                if maxlen < 0:
                    raise CommandError("ERR The MAXLEN argument must be >= 0.")
                args.maxlen = maxlen
            else:
                args.minid = parse_id(argv[i + 1], strict=True)
            i += 1
        elif opt == b"limit" and more:
            limit = parse_int(argv[i + 1])
            if limit < 0:
                raise CommandError("ERR The LIMIT argument must be >= 0.")
            args.limit = limit
            limit_given = True
            i += 1
        elif xadd and opt == b"nomkstream":
            args.nomkstream = True
        elif xadd:
            args.id, args.seq_given = parse_id(argv[i], strict=True, auto_seq=True)
            break
        else:
            raise CommandError(SYNTAX)
        i += 1
    if args.limit and not args.strategy:
        raise CommandError("ERR syntax error, LIMIT cannot be used without specifying a "
                           "trimming strategy")
    if not xadd and not args.strategy:
        raise CommandError("ERR syntax error, XTRIM must be called with a trimming strategy")
    if limit_given:
        if not args.approx:
            raise CommandError("ERR syntax error, LIMIT cannot be used without the special "
                               "~ option")
    elif args.approx:
        limit = 100 * NODE_LIMITS[0]  # at most 100 nodes' worth, within [1, 1000000]
        args.limit = 10000 if limit <= 0 else min(limit, 1000000)
    return args, i


def trim(keyspace, key, value: StreamValue, args: TrimArgs) -> int:
    """Trim as streamTrim; return the count removed (logged as a TRIM of that many)."""
    count = value.trim_count(args.maxlen, args.minid, args.approx, args.limit)
    if count:
        keyspace.mutate(key, StreamValue, TRIM, (b"%d" % count,))
    return count


@register("xadd", -5, "write denyoom fast", 1, 1, 1)
def cmd_xadd(session, argv):
    """XADD key [NOMKSTREAM] [MAXLEN|MINID [=|~] threshold [LIMIT count]] *|id field value
    [field value ...]: the new entry's ID. O(fields) plus the trimming (O(entries
    removed / 100 + N / 100))."""
    args, idpos = parse_add_trim(argv, True)
    fields = len(argv) - idpos - 1
    if fields < 2 or fields % 2:
        raise CommandError("ERR wrong number of arguments for 'xadd' command")
    if args.id is not None and args.seq_given and args.id == 0:
        raise CommandError("ERR The ID specified in XADD must be greater than 0-0")
    keyspace, key = session.keyspace, argv[1]
    value = keyspace.get_typed(key, StreamValue)
    if value is None:
        if args.nomkstream:
            return None
        last = 0
    else:
        last = value.last_id
    if last == MAX_ID:
        raise CommandError("ERR The stream has exhausted the last possible ID, unable to add "
                           "more items")
    if args.id is None:
        ms = int(session.store.clock.seconds() * 1000)
        ident = ms << 64 if ms > last >> 64 else last + 1
    elif args.seq_given:
        ident = args.id
    elif args.id >> 64 == last >> 64:
        if last & MASK == MASK:  # (Redis 7.0 reports it with the errno of its last call)
            raise CommandError(TOO_LARGE)
        ident = last + 1
    else:
        ident = args.id
    if ident <= last:
        raise CommandError(NOT_GREATER)
    items = tuple(argv[idpos + 1:])
    if sum(map(len, items)) > LISTPACK_MAX:
        raise CommandError(TOO_LARGE)
    reply = format_id(ident)
    keyspace.mutate(key, StreamValue, XADD, (reply,) + items)
    if args.strategy:
        trim(keyspace, key, keyspace.get(key), args)
    return reply


def _range(session, argv, reverse: bool):
    start_raw, end_raw = (argv[3], argv[2]) if reverse else (argv[2], argv[3])
    low, exclusive = parse_interval(start_raw, 0)
    if exclusive:
        if low == MAX_ID:
            raise CommandError("ERR invalid start ID for the interval")
        low += 1
    high, exclusive = parse_interval(end_raw, MASK)
    if exclusive:
        if high == 0:
            raise CommandError("ERR invalid end ID for the interval")
        high -= 1
    count = -1
    j = 4
    while j < len(argv):
        if c_lower(argv[j]) == b"count" and j + 1 < len(argv):
            count = max(0, parse_int(argv[j + 1]))
            j += 2
        else:
            raise CommandError(SYNTAX)
    value = get_stream(session, argv[1])
    if value is None:
        return []
    if count == 0:
        return NIL_ARRAY
    return entries_reply(value.range(low, high, max(count, 0), reverse))


@register("xrange", -4, "readonly", 1, 1, 1)
def cmd_xrange(session, argv):
    """XRANGE key start end [COUNT count]: the entries in the range. O(log N + count)."""
    return _range(session, argv, False)


@register("xrevrange", -4, "readonly", 1, 1, 1)
def cmd_xrevrange(session, argv):
    """XREVRANGE key end start [COUNT count]: the entries, newest first. O(log N + count)."""
    return _range(session, argv, True)


@register("xlen", 2, "readonly fast", 1, 1, 1)
def cmd_xlen(session, argv):
    """XLEN key: the number of entries. O(1)."""
    value = get_stream(session, argv[1])
    return 0 if value is None else value.length


@register("xdel", -3, "write fast", 1, 1, 1)
def cmd_xdel(session, argv):
    """XDEL key id [id ...]: how many entries were removed. O(log N + 100) per ID."""
    keyspace, key = session.keyspace, argv[1]
    value = keyspace.get_typed(key, StreamValue)
    if value is None:
        return 0
    idents = [parse_id(raw, strict=True) for raw in argv[2:]]
    present = [ident for ident in dict.fromkeys(idents) if value.locate(ident) is not None]
    if not present:
        return 0
    return keyspace.mutate(key, StreamValue, XDEL, tuple(map(format_id, present)))


@register("xtrim", -4, "write", 1, 1, 1)
def cmd_xtrim(session, argv):
    """XTRIM key MAXLEN|MINID [=|~] threshold [LIMIT count]: how many entries were removed.
    O(entries removed / 100 + N / 100)."""
    args, _ = parse_add_trim(argv, False)
    keyspace, key = session.keyspace, argv[1]
    value = keyspace.get_typed(key, StreamValue)
    if value is None:
        return 0
    return trim(keyspace, key, value, args)


@register("xsetid", -3, "write denyoom fast", 1, 1, 1)
def cmd_xsetid(session, argv):
    """XSETID key last-id [ENTRIESADDED entries-added] [MAXDELETEDID max-deleted-id]. O(1)."""
    ident = parse_id(argv[2], strict=True)
    entries_added, max_deleted = -1, 0
    i = 3
    while i < len(argv):
        more = len(argv) - 1 - i
        opt = c_lower(argv[i])
        if opt == b"entriesadded" and more:
            entries_added = parse_int(argv[i + 1])
            if entries_added < 0:
                raise CommandError("ERR entries_added must be positive")
        elif opt == b"maxdeletedid" and more:
            max_deleted = parse_id(argv[i + 1], strict=True)
            if ident < max_deleted:
                raise CommandError("ERR The ID specified in XSETID is smaller than the "
                                   "provided max_deleted_entry_id")
        else:
            raise CommandError(SYNTAX)
        i += 2
    keyspace, key = session.keyspace, argv[1]
    value = keyspace.get_typed(key, StreamValue)
    if value is None:
        raise CommandError("ERR no such key")
    if value.length:
        if ident < value.top_id():
            raise CommandError("ERR The ID specified in XSETID is smaller than the target "
                               "stream top item")
        if entries_added != -1 and value.length > entries_added:
            raise CommandError("ERR The entries_added specified in XSETID is smaller than "
                               "the target stream length")
    keyspace.mutate(key, StreamValue, XSETID, (
        format_id(ident),
        b"%d" % (value.entries_added if entries_added == -1 else entries_added),
        format_id(max_deleted if max_deleted else value.max_deleted)))
    return OK


# -- XREAD ------------------------------------------------------------------------------


def parse_block_timeout(raw: bytes) -> int:
    """getTimeoutFromObjectOrReply in milliseconds: an integer >= 0."""
    try:
        timeout = parse_int(raw)
    except CommandError:
        raise CommandError("ERR timeout is not an integer or out of range")
    if timeout < 0:
        raise CommandError("ERR timeout is negative")
    return timeout


def _xread_reply(session, served: list):
    if session.protocol == 2:
        return tuple([(key, entries) for key, entries in served])
    return Pairs(served)


def _serve_blocked(blocked, keyspace, key):
    """Serve a blocked XREAD when ``key`` has an ID above the client's (Redis compares the
    stream's last generated ID, so the entries may be none if they were deleted)."""
    value = keyspace.get(key)
    if value is None or value.__class__ is not StreamValue:
        return NOT_READY
    after, count = blocked.state
    since = after[key]
    if value.last_id <= since:
        return NOT_READY
    entries = entries_reply(value.range(since + 1, MAX_ID, count))
    return _xread_reply(blocked.session, [(key, entries)])


@register("xread", -4, "readonly blocking movablekeys", 0, 0, 0)
def cmd_xread(session, argv):
    """XREAD [COUNT count] [BLOCK milliseconds] STREAMS key [key ...] id [id ...]: the
    entries above each ID. O(keys x log N + entries returned)."""
    timeout, count, streams_at = -1, 0, 0
    i = 1
    argc = len(argv)
    while i < argc:
        more = argc - i - 1
        opt = c_lower(argv[i])
        if opt == b"block" and more:
            i += 1
            timeout = parse_block_timeout(argv[i])
        elif opt == b"count" and more:
            i += 1
            count = max(0, parse_int(argv[i]))
        elif opt == b"streams" and more:
            streams_at = i + 1
            if (argc - streams_at) % 2:
                raise CommandError("ERR Unbalanced XREAD list of streams: for each stream key "
                                   "an ID or '$' must be specified.")
            break
        elif opt == b"group" and more >= 2:
            raise CommandError("ERR The GROUP option is only supported by XREADGROUP. You "
                               "called XREAD instead.")
        elif opt == b"noack":
            raise CommandError("ERR The NOACK option is only supported by XREADGROUP. You "
                               "called XREAD instead.")
        else:
            raise CommandError(SYNTAX)
        i += 1
    if not streams_at:
        raise CommandError(SYNTAX)
    nkeys = (argc - streams_at) // 2
    keys = argv[streams_at:streams_at + nkeys]
    after = []
    for key, raw in zip(keys, argv[streams_at + nkeys:]):
        value = get_stream(session, key)
        if raw == b"$":
            after.append(0 if value is None else value.last_id)
        elif raw == b">":
            raise CommandError("ERR The > ID can be specified only when calling XREADGROUP "
                               "using the GROUP <group> <consumer> option.")
        else:
            after.append(parse_id(raw, strict=True))
    served = []
    for key, since in zip(keys, after):
        value = get_stream(session, key)
        if value is None or not value.length or value.top_id() <= since:
            continue
        served.append((key, entries_reply(value.range(since + 1, MAX_ID, count))))
    if served:
        return _xread_reply(session, served)
    if timeout == -1 or not can_block(session):
        return NIL_ARRAY
    since = {}
    for key, ident in zip(keys, after):
        since.setdefault(key, ident)  # a key given twice waits from its first ID (blockForKeys)
    state = (since, count or BLOCKED_DEFAULT_COUNT)
    return blocking_for(session.store).block(session, keys, _serve_blocked, timeout / 1000.0,
                                             NIL_ARRAY, state)


# A memory parameter ("64", "4kb"), as Redis's memtoull: 0 to LLONG_MAX.
_memory = memory(0, LLONG_MAX)


def _apply_limit(index: int):
    def apply(store, value: int) -> None:
        # Process-wide: the node rule lives with the values (engine/streamtype.py).
        NODE_LIMITS[index] = value
    return apply


define_config("stream-node-max-entries", "100", integer_parameter(0, LLONG_MAX),
              _apply_limit(0), show=str)
define_config("stream-node-max-bytes", "4096", _memory, _apply_limit(1), show=str)

_X = events.STREAM
events.declare(b"xadd", ((STREAM, XADD), _X, "xadd"), ((STREAM, TRIM), _X, "xtrim"))
events.declare(b"xtrim", ((STREAM, TRIM), _X, "xtrim"))
events.declare(b"xdel", ((STREAM, XDEL), _X, "xdel"))
events.declare(b"xsetid", ((STREAM, XSETID), _X, "xsetid"))
events.declare_reads(b"xrange", b"xrevrange", b"xlen", b"xread")
