"""Expiry and keyspace commands: EXPIRE family, TTL, EXPIRETIME, PERSIST, TYPE, TOUCH, UNLINK,
KEYS, SCAN, RENAME, FLUSH...

OBJECT, and the access-time tracking TOUCH relies on, are in kvtwist.engine.objects."""

from __future__ import annotations

from kvtwist.engine.table import LLONG_MAX, SYNTAX, expire_time_error, parse_int, register, _c_str
from kvtwist.engine.glob import compile_glob
from kvtwist.engine.types import type_name
from kvtwist.wire.replies import OK, CommandError, Status, stream_array

# -- expiry commands ------------------------------------------------------------

_EXPIRE_OPTIONS = (b"nx", b"xx", b"gt", b"lt")


def expire_generic(session, argv, unit: int, absolute: bool, name: str) -> int:
    """Redis's expireGenericCommand for EXPIRE/PEXPIRE/EXPIREAT/PEXPIREAT; returns 1 or 0."""
    options = set()
    for option in argv[3:]:
        lowered = option.lower()
        if lowered not in _EXPIRE_OPTIONS:
            raise CommandError("ERR Unsupported option %s" % (
                _c_str(option, len(option)).decode("utf-8", "replace"),))
        options.add(lowered)
    if b"nx" in options and len(options) > 1:
        raise CommandError("ERR NX and XX, GT or LT options at the same time are not compatible")
    if b"gt" in options and b"lt" in options:
        raise CommandError("ERR GT and LT options at the same time are not compatible")
    when = parse_int(argv[2])
    keyspace = session.keyspace
    if unit == 1000:
        # C's LLONG_MIN / 1000 truncates towards zero.
        if when > LLONG_MAX // 1000 or when < -(LLONG_MAX // 1000):
            raise expire_time_error(name)
        when *= 1000
    base = 0 if absolute else keyspace.now_ms()
    if when > LLONG_MAX - base:
        raise expire_time_error(name)
    when += base
    key = argv[1]
    if not keyspace.exists(key):
        return 0
    if options:
        current = keyspace.expires.get(key, -1)
        if b"nx" in options and current != -1:
            return 0
        if b"xx" in options and current == -1:
            return 0
        if b"gt" in options and (when <= current or current == -1):
            return 0
        if b"lt" in options and current != -1 and when >= current:
            return 0
    keyspace.expire_at(key, when)
    return 1


@register("expire", -3, "write fast", 1, 1, 1)
def cmd_expire(session, argv):
    return expire_generic(session, argv, 1000, False, "expire")


@register("pexpire", -3, "write fast", 1, 1, 1)
def cmd_pexpire(session, argv):
    return expire_generic(session, argv, 1, False, "pexpire")


@register("expireat", -3, "write fast", 1, 1, 1)
def cmd_expireat(session, argv):
    return expire_generic(session, argv, 1000, True, "expireat")


@register("pexpireat", -3, "write fast", 1, 1, 1)
def cmd_pexpireat(session, argv):
    return expire_generic(session, argv, 1, True, "pexpireat")


@register("ttl", 2, "readonly fast", 1, 1, 1)
def cmd_ttl(session, argv):
    ttl = session.keyspace.ttl_ms(argv[1])
    return ttl if ttl < 0 else (ttl + 500) // 1000


@register("pttl", 2, "readonly fast", 1, 1, 1)
def cmd_pttl(session, argv):
    return session.keyspace.ttl_ms(argv[1])


@register("expiretime", 2, "readonly fast", 1, 1, 1)
def cmd_expiretime(session, argv):
    """The absolute Unix time in seconds (rounded) at which the key expires; -1, -2."""
    keyspace = session.keyspace
    if not keyspace.exists(argv[1]):
        return -2
    at = keyspace.expires.get(argv[1])
    return -1 if at is None else (max(at, 0) + 500) // 1000


@register("pexpiretime", 2, "readonly fast", 1, 1, 1)
def cmd_pexpiretime(session, argv):
    """The absolute Unix time in milliseconds at which the key expires; -1, -2."""
    keyspace = session.keyspace
    if not keyspace.exists(argv[1]):
        return -2
    at = keyspace.expires.get(argv[1])
    return -1 if at is None else max(at, 0)


@register("persist", 2, "write fast", 1, 1, 1)
def cmd_persist(session, argv):
    return 1 if session.keyspace.persist(argv[1]) else 0


# -- whole-keyspace commands ------------------------------------------------------


@register("type", 2, "readonly fast", 1, 1, 1)
def cmd_type(session, argv):
    value = session.keyspace.peek(argv[1])
    return Status(b"none" if value is None else type_name(value))


@register("touch", -2, "readonly fast", 1, -1, 1)
def cmd_touch(session, argv):
    """Count the live keys among the arguments; Session.execute updates their access time
    (even under CLIENT NO-TOUCH, as in Redis). O(number of keys)."""
    exists = session.keyspace.exists
    return sum(1 for key in argv[1:] if exists(key))


@register("unlink", -2, "write fast", 1, -1, 1)
def cmd_unlink(session, argv):
    """DEL: values are freed at once here (there is no lazy-free thread). O(number of keys)."""
    delete = session.keyspace.delete
    return sum(1 for key in argv[1:] if delete(key))


@register("keys", 2, "readonly", 0, 0, 0)
def cmd_keys(session, argv):
    # Many keys are Streamed: the server writes them a slice per reactor turn.
    return stream_array(session.keyspace.keys(argv[1]))


def _parse_cursor(raw: bytes) -> int:
    # strtoul: optional sign, decimal digits, a minus wraps around 2**64.
    body = raw[1:] if raw[:1] in (b"+", b"-") else raw
    if not body or not body.isdigit() or int(body) >= 2 ** 64:
        raise CommandError("ERR invalid cursor")
    return (2 ** 64 - int(body)) % 2 ** 64 if raw[:1] == b"-" else int(body)


@register("scan", -2, "readonly", 0, 0, 0)
def cmd_scan(session, argv):
    cursor = _parse_cursor(argv[1])
    count, pattern, kind = 10, None, None
    index = 2
    while index < len(argv):
        option = argv[index].lower()
        if index + 1 >= len(argv) or option not in (b"count", b"match", b"type"):
            raise CommandError(SYNTAX)
        value = argv[index + 1]
        if option == b"count":
            count = parse_int(value)
            if count < 1:
                raise CommandError(SYNTAX)
        elif option == b"match":
            pattern = None if value == b"*" else compile_glob(value).matches
        else:
            kind = value.lower()
        index += 2
    next_cursor, keys = session.keyspace.scan(cursor, count)
    if pattern is not None:
        keys = [key for key in keys if pattern(key)]
    if kind is not None:
        # SCAN ... TYPE filters after the walk, as Redis: O(keys returned).
        data = session.keyspace.data
        keys = [key for key in keys if key in data and type_name(data[key]) == kind]
    return [b"%d" % next_cursor, keys]


@register("randomkey", 1, "readonly", 0, 0, 0)
def cmd_randomkey(session, argv):
    return session.keyspace.random_key()


def _rename(session, argv, nx: bool):
    keyspace, source, target = session.keyspace, argv[1], argv[2]
    value = keyspace.get(source)
    if value is None:
        raise CommandError("ERR no such key")
    if source == target:
        return 0 if nx else OK
    if nx and keyspace.exists(target):
        return 0
    # Written under the new name before the old one goes: a crash between the two records
    # can leave both, never neither.
    keyspace.set(target, value, keyspace.expire_of(source))
    keyspace.delete(source)
    return 1 if nx else OK


@register("rename", 3, "write", 1, 2, 1)
def cmd_rename(session, argv):
    return _rename(session, argv, False)


@register("renamenx", 3, "write fast", 1, 2, 1)
def cmd_renamenx(session, argv):
    return _rename(session, argv, True)


@register("dbsize", 1, "readonly fast", 0, 0, 0)
def cmd_dbsize(session, argv):
    return len(session.keyspace)
