"""DUMP and RESTORE: a key's value in Redis 7.0's DUMP serialization (see engine/rdb.py).

DUMP (and its alias PRINT) with no argument is kvstore's own: it lists every pair.
"""

from __future__ import annotations

from kvtwist.engine import objects, rdb
from kvtwist.engine.strbuf import StringBuffer
from kvtwist.engine.table import LLONG_MAX, SYNTAX, arity_error, parse_int, register
from kvtwist.wire.replies import OK, CommandError, sorted_pairs

BUSYKEY = "BUSYKEY Target key name already exists."
# IDLETIME sets the key's access time (OBJECT IDLETIME) unless the policy is LFU; FREQ sets its
# access counter (OBJECT FREQ) only under an LFU policy (engine/objects.py, restored).


@register("dump", -1, "readonly", 1, 1, 1, aliases="print")
def cmd_dump(session, argv):
    """DUMP key: the value's payload, or nil; DUMP alone: every live pair sorted by key.

    With a key, O(n) in the value's length (LZF and CRC64 in pure Python: see rdb.py).
    Alone, O(N log N) over the keyspace, Streamed from a snapshot (sorted_pairs).
    """
    if len(argv) == 1:
        keyspace = session.keyspace
        keys, data = keyspace.live_keys(), keyspace.data
        if keyspace.typed_keys:
            # A typed value is shown by its type, e.g. "<hash>", a StringBuffer copied: O(n) more.
            data = {key: value if value.__class__ is bytes else b"<%s>" % value.type_name
                    if value.__class__ is not StringBuffer else bytes(value)
                    for key, value in data.items()}
        return sorted_pairs(keys, data)
    if len(argv) > 2:
        return arity_error(argv[0].lower())
    value = session.keyspace.get(argv[1])
    if value is None:
        return None
    return rdb.dump_value(value)


def _restore_options(argv):
    """Parse RESTORE's options as restoreCommand does; return (replace, absttl, idle, freq)."""
    replace = absttl = False
    idle = freq = -1
    index = 4
    while index < len(argv):
        option = argv[index].lower()
        additional = len(argv) - index - 1
        if option == b"replace":
            replace = True
        elif option == b"absttl":
            absttl = True
        elif option == b"idletime" and additional >= 1 and freq == -1:
            idle = parse_int(argv[index + 1])
            if idle < 0:
                raise CommandError("ERR Invalid IDLETIME value, must be >= 0")
            index += 1
        elif option == b"freq" and additional >= 1 and idle == -1:
            freq = parse_int(argv[index + 1])
            if freq < 0 or freq > 255:
                raise CommandError("ERR Invalid FREQ value, must be >= 0 and <= 255")
            index += 1
        else:
            raise CommandError(SYNTAX)
        index += 1
    return replace, absttl, idle, freq


@register("restore", -4, "write denyoom", 1, 1, 1)
def cmd_restore(session, argv):
    """RESTORE key ttl payload [REPLACE] [ABSTTL] [IDLETIME s] [FREQ f], as Redis 7.0.

    Checks in Redis's order: options, the key's absence (BUSYKEY), the TTL, the payload's
    version and CRC64, its decoding. O(len(payload)) (see rdb.load).
    """
    replace, absttl, idle, freq = _restore_options(argv)
    keyspace, key = session.keyspace, argv[1]
    if not replace and keyspace.exists(key):
        raise CommandError(BUSYKEY)
    ttl = parse_int(argv[2])
    if ttl < 0:
        raise CommandError("ERR Invalid TTL value, must be >= 0")
    try:
        _kind, value = rdb.load(argv[3])
    except rdb.BadPayload as error:
        raise CommandError(str(error))
    now = keyspace.now_ms()
    if ttl and not absttl:
        ttl += now
        if ttl > LLONG_MAX:
            ttl -= 2 ** 64  # C's long long wraps: the time is then in the past
    if ttl and ttl <= now:
        # checkAlreadyExpired: nothing is created; REPLACE still removes the old key.
        if replace:
            keyspace.delete(key)
        return OK
    keyspace.set(key, value, ttl)
    objects.restored(keyspace, key, idle, freq)
    return OK
