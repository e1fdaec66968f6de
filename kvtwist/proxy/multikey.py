"""Commands of a sharded kvproxy that span servers: multi-key commands split per server and
merged in the client's order, and keyless commands sent to every server and merged.

Split (``SPLIT``): MGET (through each server's cache reads), MSET, DEL, UNLINK, EXISTS,
TOUCH. Each server gets one command with its keys, in the client's order; the reply is
merged back into the client's order. The parts are not one atomic command: as nutcracker,
when a part fails the client gets that part's error (naming its server: for MSET, the
other parts were applied; for DEL, UNLINK and TOUCH the other parts ran), and for MGET,
EXISTS and the counts no partial answer.

Keyless (``KEYLESS``): ECHO is answered by kvproxy; DBSIZE is summed over the live
servers, KEYS concatenated, SCAN walks the servers one after the other with a cursor that
encodes the server (cursor = server cursor x servers + server index), RANDOMKEY asks the
live servers and answers the first key found. Server-wide commands (FLUSHALL, FLUSHDB,
SWAPDB, ... with --allow-admin) and SCRIPT / FUNCTION go to every live server
(``every``): the first error, else the first server's reply. Other keyless commands (TIME,
CONFIG GET, COMMAND, PUBLISH, EVAL with no keys, ...) go to the first live server.
"""

from __future__ import annotations

import random

from twisted.internet.defer import Deferred, succeed
from twisted.python.failure import Failure

from kvtwist.proxy.commands import WRITES, admin, admin_keys, scope
from kvtwist.wire.replies import OK, Error

def gather(parts: list, combine):
    """``combine(replies)`` once every part (a reply, or a Deferred of one) has answered;
    a Deferred unless every part was immediate. O(parts)."""
    pending = [index for index, part in enumerate(parts) if isinstance(part, Deferred)]
    if not pending:
        return combine(parts)
    results = list(parts)
    done = Deferred()
    left = [len(pending)]

    def answered(reply, index):
        if isinstance(reply, Failure):
            reply = Error("ERR %s" % (reply.getErrorMessage(),))
        results[index] = reply
        left[0] -= 1
        if not left[0]:
            done.callback(combine(results))

    for index in pending:
        parts[index].addBoth(answered, index)
    return done


def first_error(replies):
    """The first error among ``replies``, or None."""
    for reply in replies:
        if reply.__class__ is Error:
            return reply
    return None


def _groups(proxy, keys: list, stride: int = 1):
    """{shard index: [positions in ``keys``]} in first-seen order, or the Error when no
    server is live; every ``stride``-th key is routed (the others follow it). O(keys)."""
    index = proxy.shard_index
    groups = {}
    fixed = index(keys[0]) if proxy.random else None
    for position in range(0, len(keys), stride):
        where = fixed if proxy.random else index(keys[position])
        if where is None:
            return proxy.no_server()
        group = groups.get(where)
        if group is None:
            groups[where] = group = []
        group.extend(range(position, min(position + stride, len(keys))))
    return groups


def mget(proxy, argv, db):
    keys = argv[1:]
    groups = _groups(proxy, keys)
    if groups.__class__ is Error:
        return groups
    shards = proxy.shards
    if len(groups) == 1:
        return shards[next(iter(groups))].reads.mget(keys, db)
    proxy.fragments += len(groups)
    parts = [shards[where].reads.mget([keys[p] for p in positions], db)
             for where, positions in groups.items()]
    layout = list(groups.values())

    def combine(replies):
        merged = [None] * len(keys)
        for positions, reply in zip(layout, replies):
            if reply.__class__ is not list:
                return reply
            for position, value in zip(positions, reply):
                merged[position] = value
        return merged
    return gather(parts, combine)


def mset(proxy, argv, db):
    if len(argv) % 2 == 0:
        return Error("ERR wrong number of arguments for 'mset' command")
    pairs = argv[1:]
    groups = _groups(proxy, pairs, 2)
    if groups.__class__ is Error:
        return groups
    shards = proxy.shards
    parts = []
    for where, positions in groups.items():
        part = [b"MSET"] + [pairs[p] for p in positions]
        parts.append(shards[where].write(part, [(db, part[1::2])], db))
    if len(parts) == 1:
        return parts[0]
    proxy.fragments += len(parts)

    def combine(replies):
        error = first_error(replies)
        return OK if error is None else error
    return gather(parts, combine)


def _counting(write: bool):
    def split(proxy, argv, db):
        keys = argv[1:]
        groups = _groups(proxy, keys)
        if groups.__class__ is Error:
            return groups
        shards = proxy.shards
        parts = []
        for where, positions in groups.items():
            part = [argv[0]] + [keys[p] for p in positions]
            if write:
                parts.append(shards[where].write(part, [(db, part[1:])], db))
            else:
                parts.append(shards[where].forward(part, db=db))
        if len(parts) == 1:
            return parts[0]
        proxy.fragments += len(parts)
        return gather(parts, _sum)
    return split


def _sum(replies):
    error = first_error(replies)
    if error is not None:
        return error
    for reply in replies:
        if reply.__class__ is not int:
            return Error("ERR backend sent a malformed reply: %r" % (reply,))
    return sum(replies)


SPLIT = {b"MGET": mget, b"MSET": mset, b"DEL": _counting(True),
         b"UNLINK": _counting(True), b"EXISTS": _counting(False),
         b"TOUCH": _counting(False)}


# -- keyless commands ------------------------------------------------------------------

def _on_live(proxy, argv, db, combine):
    shards = proxy.live()
    if not shards:
        return proxy.no_server()
    return gather([shard.forward(argv, db=db) for shard in shards], combine)


def _echo(session, argv):
    if len(argv) != 2:
        return Error("ERR wrong number of arguments for 'echo' command")
    return argv[1]


def _dbsize(session, argv):
    if len(argv) != 1:
        return Error("ERR wrong number of arguments for 'dbsize' command")
    return _on_live(session.proxy, argv, session.db, _sum)


def _concatenated(replies):
    error = first_error(replies)
    if error is not None:
        return error
    merged = []
    for reply in replies:
        if reply.__class__ is not list:
            return Error("ERR backend sent a malformed reply: %r" % (reply,))
        merged.extend(reply)
    return merged


def _keys(session, argv):
    if len(argv) != 2:
        return Error("ERR wrong number of arguments for 'keys' command")
    return _on_live(session.proxy, argv, session.db, _concatenated)


def _scan(session, argv):
    """SCAN over the servers in pool order: the cursor is (server cursor x servers +
    server index); a server's 0 moves on to the next live one. O(1) per call beyond the
    server's own SCAN."""
    if len(argv) < 2:
        return Error("ERR wrong number of arguments for 'scan' command")
    proxy = session.proxy
    count = len(proxy.shards)
    try:
        cursor = int(argv[1])
        if cursor < 0:
            raise ValueError
    except ValueError:
        return Error("ERR invalid cursor")
    where, inner = cursor % count, cursor // count
    while where < count and proxy.shards[where].ejected:
        where, inner = where + 1, 0
    if where >= count:
        return [b"0", []]
    d = proxy.shards[where].forward([argv[0], b"%d" % (inner,)] + argv[2:], db=session.db)
    return d.addCallback(_scanned, proxy, where)


def _scanned(reply, proxy, where):
    if reply.__class__ is not list or len(reply) != 2:
        return reply
    count = len(proxy.shards)
    inner = int(reply[0])
    if inner == 0:
        where += 1
        while where < count and proxy.shards[where].ejected:
            where += 1
        if where >= count:
            return [b"0", reply[1]]
    return [b"%d" % (inner * count + where,), reply[1]]


def _randomkey(session, argv):
    if len(argv) != 1:
        return Error("ERR wrong number of arguments for 'randomkey' command")

    def combine(replies):
        error = first_error(replies)
        if error is not None:
            return error
        found = [reply for reply in replies if reply is not None]
        return random.choice(found) if found else None
    return _on_live(session.proxy, argv, session.db, combine)


KEYLESS = {b"ECHO": _echo, b"DBSIZE": _dbsize, b"KEYS": _keys, b"SCAN": _scan,
           b"RANDOMKEY": _randomkey}

# Keyless commands that must reach every server (scripts and functions are called by
# name on whichever server holds the keys).
EVERY_SERVER = frozenset([b"SCRIPT", b"FUNCTION"])


def _first_or_error(replies):
    error = first_error(replies)
    return replies[0] if error is None else error


def every(session, argv):
    """Send a keyless command to every live server, as a write where it is one (the
    cache drops what it may change); the first error, else the first server's reply."""
    proxy = session.proxy
    db = session.db
    name = argv[0].upper()
    shards = proxy.live()
    if not shards:
        return proxy.no_server()
    extractor = WRITES.get(name)
    if extractor is not None:
        targets = scope(name, argv, db, extractor(argv))
    elif admin(name, argv):
        targets = scope(name, argv, db, admin_keys(name, argv))
    else:
        targets = None
    if targets is None:
        parts = [shard.forward(argv, db=db) for shard in shards]
    else:
        parts = [shard.write(argv, targets, db) for shard in shards]
    return gather(parts, _first_or_error)


def broadcast(proxy, argv, db):
    """A client's SELECT on every live server (each connection's ``Selection`` then
    SELECTs the client's database again before its next request): OK only when every
    server said OK."""
    shards = proxy.live()
    if not shards:
        return succeed(proxy.no_server())
    d = gather([shard.forward(argv, db=db) for shard in shards], _first_or_error)
    if not isinstance(d, Deferred):
        d = succeed(d)
    return d
