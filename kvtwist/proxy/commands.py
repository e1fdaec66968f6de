"""Which proxied commands read, which write (and the keys they touch), which are refused."""

from __future__ import annotations

ALL = None  # "every key": what a flush (or a write we cannot attribute to keys) touches


def _first(argv):
    return argv[1:2]


def _rest(argv):
    return argv[1:]


def _pairs(argv):
    return argv[1::2]


def _two(argv):
    return argv[1:3]


def all_keys(argv):
    return ALL


def _table(names, extractor):
    return dict((name.encode("ascii"), extractor) for name in names.split())


# Writes and the keys whose cached GET result they change. A command that is neither
# here nor in READ_ONLY flushes the whole cache when acknowledged: correct, if costly.
WRITES = {}
WRITES.update(_table(
    "SET SETNX SETEX PSETEX GETSET GETDEL GETEX APPEND INCR DECR INCRBY DECRBY "
    "INCRBYFLOAT SETRANGE EXPIRE PEXPIRE EXPIREAT PEXPIREAT PERSIST PUT MOVE "
    "LPUSH RPUSH LPUSHX RPUSHX LPOP RPOP LSET LREM LTRIM LINSERT HSET HSETNX HDEL "
    "HINCRBY HINCRBYFLOAT HMSET SADD SREM SPOP ZADD ZREM ZINCRBY ZPOPMIN ZPOPMAX "
    "PFADD SETBIT RESTORE", _first))
WRITES.update(_table("DEL UNLINK DELETE REMOVE", _rest))
WRITES.update(_table("MSET MSETNX", _pairs))
WRITES.update(_table("RENAME RENAMENX COPY LMOVE RPOPLPUSH SMOVE", _two))
WRITES.update(_table("FLUSHDB FLUSHALL FLUSH SWAPDB DEBUG", all_keys))

READ_ONLY = frozenset(
    b"GET MGET EXISTS TTL PTTL EXPIRETIME PEXPIRETIME TYPE STRLEN GETRANGE SUBSTR KEYS "
    b"SCAN DBSIZE ECHO TIME LASTSAVE RANDOMKEY OBJECT DUMP LLEN LRANGE LINDEX HGET "
    b"HGETALL HMGET HKEYS HVALS HLEN HEXISTS SMEMBERS SISMEMBER SCARD ZRANGE ZSCORE "
    b"ZCARD ZRANK GETBIT BITCOUNT PFCOUNT COMMAND CONFIG SAVE BGSAVE BGREWRITEAOF "
    b"MEMORY LATENCY SLOWLOG LOLWUT".split())

# Commands that would change the state of the shared backend connection, or block it
# for every client behind it (twemproxy refuses the same).
REFUSED = frozenset(
    b"SUBSCRIBE PSUBSCRIBE UNSUBSCRIBE PUNSUBSCRIBE SSUBSCRIBE SUNSUBSCRIBE MONITOR "
    b"MULTI EXEC DISCARD WATCH UNWATCH AUTH RESET BLPOP BRPOP BLMOVE BRPOPLPUSH "
    b"BLMPOP BZPOPMIN BZPOPMAX BZMPOP WAIT WAITAOF SYNC PSYNC REPLICAOF SLAVEOF "
    b"SHUTDOWN READONLY READWRITE".split())
