"""Which proxied commands read, which write (and the keys they touch), which are refused.

The tables cover Redis 7.0's commands (and kvstore's own); a command in none of them is one
kvproxy does not know: it is forwarded as it is and leaves the cache alone.
"""

from __future__ import annotations

ALL = None  # "every key": what a flush (or a script, which may write any key) touches


def _first(argv):
    return argv[1:2]


def _second(argv):
    return argv[2:3]


def _rest(argv):
    return argv[1:]


def _after_second(argv):
    return argv[2:]


def _pairs(argv):
    return argv[1::2]


def _two(argv):
    return argv[1:3]


def all_keys(argv):
    return ALL


def no_keys(argv):
    return []


def _stored(argv):
    # SORT, GEORADIUS and GEORADIUSBYMEMBER write only the key after STORE / STOREDIST.
    keys = []
    for index in range(2, len(argv) - 1):
        if argv[index].upper() in (b"STORE", b"STOREDIST"):
            keys.append(argv[index + 1])
    return keys


def _counted(argv):
    # LMPOP / ZMPOP numkeys key [key ...] ...: the keys that numkeys counts.
    try:
        count = int(argv[1])
    except (IndexError, ValueError):
        return []
    return argv[2:2 + max(count, 0)]


def _migrated(argv):
    # MIGRATE host port key|"" db timeout [COPY] [REPLACE] [AUTH ...] [KEYS key ...]
    keys = [argv[3]] if len(argv) > 3 and argv[3] else []
    for index in range(6, len(argv)):
        if argv[index].upper() == b"KEYS":
            keys.extend(argv[index + 1:])
            break
    return keys


def _table(names, extractor):
    return dict((name.encode("ascii"), extractor) for name in names.split())


# Writes and the keys whose cached GET result they may change (a key's value, its
# existence or its type). Each extractor is O(len(argv)).
WRITES = {}
WRITES.update(_table(
    "SET SETNX SETEX PSETEX GETSET GETDEL GETEX APPEND INCR DECR INCRBY DECRBY "
    "INCRBYFLOAT SETRANGE SETBIT BITFIELD EXPIRE PEXPIRE EXPIREAT PEXPIREAT PERSIST PUT "
    "MOVE RESTORE RESTORE-ASKING "
    "LPUSH RPUSH LPUSHX RPUSHX LPOP RPOP LSET LREM LTRIM LINSERT "
    "HSET HSETNX HDEL HINCRBY HINCRBYFLOAT HMSET SADD SREM SPOP "
    "ZADD ZREM ZINCRBY ZPOPMIN ZPOPMAX ZREMRANGEBYLEX ZREMRANGEBYRANK ZREMRANGEBYSCORE "
    "ZDIFFSTORE ZINTERSTORE ZUNIONSTORE PFADD GEOADD "
    "XADD XACK XAUTOCLAIM XCLAIM XDEL XSETID XTRIM", _first))
WRITES.update(_table("DEL UNLINK DELETE REMOVE PFMERGE SDIFFSTORE SINTERSTORE SUNIONSTORE",
                     _rest))
WRITES.update(_table("BITOP", _after_second))
WRITES.update(_table("MSET MSETNX", _pairs))
WRITES.update(_table("RENAME RENAMENX COPY LMOVE RPOPLPUSH SMOVE GEOSEARCHSTORE ZRANGESTORE",
                     _two))
WRITES.update(_table("XGROUP", _second))
WRITES.update(_table("SORT GEORADIUS GEORADIUSBYMEMBER", _stored))
WRITES.update(_table("LMPOP ZMPOP", _counted))
WRITES.update(_table("MIGRATE", _migrated))
# Scripts may write keys they do not declare.
WRITES.update(_table("EVAL EVALSHA FCALL", all_keys))

# Commands that change no key: forwarded, the cache untouched.
READ_ONLY = frozenset(
    b"GET MGET EXISTS TTL PTTL EXPIRETIME PEXPIRETIME TYPE STRLEN GETRANGE SUBSTR KEYS "
    b"SCAN DBSIZE ECHO TIME LASTSAVE RANDOMKEY OBJECT DUMP TOUCH LCS GETBIT BITCOUNT BITPOS "
    b"BITFIELD_RO LLEN LRANGE LINDEX LPOS HGET HGETALL HMGET HKEYS HVALS HLEN HEXISTS "
    b"HSTRLEN HRANDFIELD HSCAN SMEMBERS SISMEMBER SMISMEMBER SCARD SRANDMEMBER SSCAN SDIFF "
    b"SINTER SINTERCARD SUNION ZRANGE ZRANGEBYLEX ZRANGEBYSCORE ZREVRANGE ZREVRANGEBYLEX "
    b"ZREVRANGEBYSCORE ZRANK ZREVRANK ZSCORE ZMSCORE ZCARD ZCOUNT ZLEXCOUNT ZRANDMEMBER "
    b"ZSCAN ZDIFF ZINTER ZINTERCARD ZUNION PFCOUNT GEODIST GEOHASH GEOPOS GEOSEARCH "
    b"GEORADIUS_RO GEORADIUSBYMEMBER_RO XLEN XRANGE XREVRANGE XPENDING XINFO SORT_RO "
    b"EVAL_RO EVALSHA_RO FCALL_RO PUBLISH SPUBLISH PUBSUB COMMAND MEMORY LOLWUT ROLE "
    b"PRINT HELP".split())

# Commands that would change the state of the shared backend connection, or block it
# for every client behind it (twemproxy refuses the same).
REFUSED = frozenset(
    b"SUBSCRIBE PSUBSCRIBE UNSUBSCRIBE PUNSUBSCRIBE SSUBSCRIBE SUNSUBSCRIBE MONITOR "
    b"RESET BLPOP BRPOP BLMOVE BRPOPLPUSH "
    b"BLMPOP BZPOPMIN BZPOPMAX BZMPOP WAIT WAITAOF SYNC PSYNC REPLCONF READONLY READWRITE "
    b"ASKING".split())

# Commands kvproxy handles itself (kvtwist.proxy.store and .auth have their handlers): SELECT is
# forwarded from there, and changes its client's database (kvtwist.proxy.databases); a
# transaction is queued in kvproxy and sent at EXEC (kvtwist.proxy.transactions).
LOCAL = frozenset(b"PING QUIT EXIT INFO SELECT CLIENT HELLO AUTH "
                  b"MULTI EXEC DISCARD WATCH UNWATCH".split())

# XREAD and XREADGROUP block the connection when given BLOCK; without it they answer at
# once (XREADGROUP updates its group's state, which no GET sees).
STREAM_READS = frozenset([b"XREAD", b"XREADGROUP"])


def blocks(argv) -> bool:
    """Whether an XREAD / XREADGROUP would block (it has a BLOCK option); O(len(argv))."""
    for arg in argv[1:]:
        upper = arg.upper()
        if upper == b"BLOCK":
            return True
        if upper == b"STREAMS":
            return False
    return False


# Server-wide commands: they change the backend for every client of the proxy, so kvproxy
# refuses them unless started with --allow-admin; then they are forwarded, and those that
# replace the data (flushes, SWAPDB, DEBUG RELOAD, becoming a replica) flush the cache.
ADMIN = {}
ADMIN.update(_table("FLUSHALL FLUSHDB FLUSH SWAPDB DEBUG REPLICAOF SLAVEOF", all_keys))
ADMIN.update(_table("SHUTDOWN FAILOVER SAVE BGSAVE BGREWRITEAOF COMPACT PFSELFTEST", no_keys))
ADMIN.update(_table("PFDEBUG", _second))

# Commands with subcommands, and those of their subcommands that are server-wide; the
# others (CONFIG GET, SLOWLOG GET, ACL WHOAMI, ...) are forwarded like reads.
CONTAINERS = dict((name.encode("ascii"), frozenset(subs.encode("ascii").split()))
                  for name, subs in (
    ("CONFIG", "SET RESETSTAT REWRITE"),
    ("SLOWLOG", "RESET"),
    ("LATENCY", "RESET"),
    ("ACL", "SETUSER DELUSER LOAD SAVE"),  # and ACL LOG RESET
    ("MODULE", "LOAD LOADEX UNLOAD"),
    ("SCRIPT", "FLUSH KILL DEBUG"),
    ("FUNCTION", "FLUSH KILL"),
    ("CLUSTER", "ADDSLOTS ADDSLOTSRANGE BUMPEPOCH DELSLOTS DELSLOTSRANGE FAILOVER FLUSHSLOTS "
                "FORGET MEET REPLICATE RESET SAVECONFIG SET-CONFIG-EPOCH SETSLOT"),
))


def admin(name: bytes, argv) -> str:
    """Return how to name a server-wide command (``'CONFIG SET'``), or "" if it is not one.

    ``name`` is ``argv[0]`` upper-cased; O(1) beyond the upper-casing of a subcommand.
    """
    if name in ADMIN:
        return name.decode("ascii")
    subcommands = CONTAINERS.get(name)
    if subcommands is None or len(argv) < 2:
        return ""
    sub = argv[1].upper()
    if sub in subcommands or (name == b"ACL" and sub == b"LOG" and len(argv) > 2
                              and argv[2].upper() == b"RESET"):
        return "%s %s" % (name.decode("ascii"), sub.decode("ascii", "replace"))
    return ""


def admin_keys(name: bytes, argv):
    """The keys a server-wide command touches (ALL for those replacing the data)."""
    extractor = ADMIN.get(name)
    return no_keys(argv) if extractor is None else extractor(argv)


# -- databases ---------------------------------------------------------------------------
#
# A write's scope is a list of (db, keys): the keys (ALL: every key) of database db (None:
# every database) whose cached GET results it may change. Most writes change keys of the
# client's database; a few reach into others.

EVERYWHERE = [(None, ALL)]


def _index(arg: bytes):
    """A database index argument as an int, or None if it is not one (O(len(arg))).

    Whatever Redis accepts (a canonical decimal) parses to the same number here; what it
    refuses makes the command fail, so a scope made of it changes nothing wrongly.
    """
    try:
        return int(arg)
    except ValueError:
        return None


def _flushed(argv, db):
    return [(db, ALL)]


def _swapped(argv, db):
    # SWAPDB a b: both databases change wholesale.
    if len(argv) != 3:
        return EVERYWHERE
    first, second = _index(argv[1]), _index(argv[2])
    if first is None or second is None:
        return EVERYWHERE
    return [(first, ALL), (second, ALL)]


def _moved(argv, db):
    # MOVE key n: the key leaves the client's database for database n.
    target = _index(argv[2]) if len(argv) > 2 else None
    if target is None:
        return [(db, argv[1:2])]
    return [(db, argv[1:2]), (target, argv[1:2])]


def _copied(argv, db):
    # COPY source destination [DB n] [REPLACE]: the destination is in database n.
    target = None
    for index in range(3, len(argv) - 1):
        if argv[index].upper() == b"DB":
            target = _index(argv[index + 1])
            break
    if target is None:
        return [(db, argv[1:3])]
    return [(db, argv[1:2]), (target, argv[2:3])]


# Commands whose scope is not "these keys of the client's database".
ACROSS = {b"FLUSHDB": _flushed, b"SWAPDB": _swapped, b"MOVE": _moved, b"COPY": _copied}


def scope(name: bytes, argv, db: int, keys) -> list:
    """The scope of a write (see above) sent from database ``db``, whose key extractor
    (``WRITES`` or ``admin_keys``) gave ``keys``; O(len(argv))."""
    across = ACROSS.get(name)
    if across is not None:
        return across(argv, db)
    if keys is ALL:
        return EVERYWHERE
    return [(db, keys)]
