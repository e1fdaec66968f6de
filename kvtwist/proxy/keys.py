"""The keys of a command, for routing it to the server that holds them (a sharded pool).

Key positions are Redis 7.0's (``COMMAND``'s first key, last key and step, and the
``movablekeys`` commands worked out as ``COMMAND GETKEYS`` does); kvstore's own commands
are added. ``command_keys(name, argv)`` returns the list of keys (empty for a command with
none) in O(len(argv)).
"""

from __future__ import annotations


def _spec(first: int, last: int, step: int):
    def keys(argv):
        end = len(argv) + last + 1 if last < 0 else last + 1
        return argv[first:end:step]
    return keys


def _numkeys(position: int, before=()):
    # numkeys at ``position``, the keys right after it; ``before``: fixed key positions.
    def keys(argv):
        found = [argv[index] for index in before if index < len(argv)]
        try:
            count = int(argv[position])
        except (IndexError, ValueError):
            return found
        return found + argv[position + 1:position + 1 + max(count, 0)]
    return keys


def _stored(argv):
    # SORT / GEORADIUS key ... [STORE dst] [STOREDIST dst]
    keys = argv[1:2]
    for index in range(2, len(argv) - 1):
        if argv[index].upper() in (b"STORE", b"STOREDIST"):
            keys.append(argv[index + 1])
    return keys


def _streams(argv):
    # XREAD / XREADGROUP ... STREAMS key [key ...] id [id ...]
    for index in range(1, len(argv)):
        if argv[index].upper() == b"STREAMS":
            rest = argv[index + 1:]
            return rest[:len(rest) // 2]
    return []


def _migrated(argv):
    keys = [argv[3]] if len(argv) > 3 and argv[3] else []
    for index in range(6, len(argv)):
        if argv[index].upper() == b"KEYS":
            keys.extend(argv[index + 1:])
            break
    return keys


def _subcommand(argv):
    # OBJECT / MEMORY USAGE / XINFO / XGROUP: the key follows the subcommand; XGROUP HELP
    # and the like have none.
    if len(argv) < 3 or argv[1].upper() == b"HELP":
        return []
    if argv[0].upper() == b"MEMORY" and argv[1].upper() != b"USAGE":
        return []
    return argv[2:3]


def _table(names: str, extractor) -> dict:
    return dict((name.encode("ascii"), extractor) for name in names.split())


KEYS = {}
KEYS.update(_table(
    "APPEND BITCOUNT BITFIELD BITFIELD_RO BITPOS DECR DECRBY DUMP EXPIRE EXPIREAT "
    "EXPIRETIME GEOADD GEODIST GEOHASH GEOPOS GEORADIUSBYMEMBER_RO GEORADIUS_RO GEOSEARCH GET "
    "GETBIT GETDEL GETEX GETRANGE GETSET HDEL HEXISTS HGET HGETALL HINCRBY HINCRBYFLOAT HKEYS "
    "HLEN HMGET HMSET HRANDFIELD HSCAN HSET HSETNX HSTRLEN HVALS INCR INCRBY INCRBYFLOAT "
    "LINDEX LINSERT LLEN LPOP LPOS LPUSH LPUSHX LRANGE LREM LSET LTRIM MOVE PERSIST PEXPIRE "
    "PEXPIREAT PEXPIRETIME PFADD PSETEX PTTL RESTORE RESTORE-ASKING RPOP RPUSH RPUSHX SADD "
    "SCARD SET SETBIT SETEX SETNX SETRANGE SISMEMBER SMEMBERS SMISMEMBER SPOP SPUBLISH "
    "SRANDMEMBER SREM SSCAN STRLEN SUBSTR TTL TYPE XACK XADD XAUTOCLAIM XCLAIM XDEL XLEN "
    "XPENDING XRANGE XREVRANGE XSETID XTRIM ZADD ZCARD ZCOUNT ZINCRBY ZLEXCOUNT ZMSCORE "
    "ZPOPMAX ZPOPMIN ZRANDMEMBER ZRANGE ZRANGEBYLEX ZRANGEBYSCORE ZRANK ZREM ZREMRANGEBYLEX "
    "ZREMRANGEBYRANK ZREMRANGEBYSCORE ZREVRANGE ZREVRANGEBYLEX ZREVRANGEBYSCORE ZREVRANK "
    "ZSCAN ZSCORE PUT", _spec(1, 1, 1)))
KEYS.update(_table("BLPOP BRPOP BZPOPMAX BZPOPMIN", _spec(1, -2, 1)))
KEYS.update(_table(
    "DEL EXISTS MGET PFCOUNT PFMERGE SDIFF SDIFFSTORE SINTER SINTERSTORE SSUBSCRIBE SUNION "
    "SUNIONSTORE SUNSUBSCRIBE TOUCH UNLINK WATCH DELETE REMOVE", _spec(1, -1, 1)))
KEYS.update(_table("MSET MSETNX", _spec(1, -1, 2)))
KEYS.update(_table("BLMOVE BRPOPLPUSH COPY GEOSEARCHSTORE LCS LMOVE RENAME RENAMENX "
                   "RPOPLPUSH SMOVE ZRANGESTORE", _spec(1, 2, 1)))
KEYS.update(_table("BITOP", _spec(2, -1, 1)))
KEYS.update(_table("PFDEBUG", _spec(2, 2, 1)))
KEYS.update(_table("EVAL EVALSHA EVAL_RO EVALSHA_RO FCALL FCALL_RO BLMPOP BZMPOP",
                   _numkeys(2)))
KEYS.update(_table("ZUNIONSTORE ZINTERSTORE ZDIFFSTORE", _numkeys(2, (1,))))
KEYS.update(_table("ZDIFF ZINTER ZUNION ZINTERCARD SINTERCARD LMPOP ZMPOP", _numkeys(1)))
KEYS.update(_table("SORT SORT_RO GEORADIUS GEORADIUSBYMEMBER", _stored))
KEYS.update(_table("XREAD XREADGROUP", _streams))
KEYS.update(_table("MIGRATE", _migrated))
KEYS.update(_table("OBJECT MEMORY XINFO XGROUP", _subcommand))


def _none(argv):
    return []


def command_keys(name: bytes, argv) -> list:
    """Return the keys of ``argv`` (``name``: its upper-cased command name); [] for a
    command with none or one kvproxy does not know. O(len(argv))."""
    return KEYS.get(name, _none)(argv)
