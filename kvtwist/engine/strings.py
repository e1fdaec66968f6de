"""String commands (SET family, GET, GETEX, INCR family, INCRBYFLOAT, APPEND, ranges) over the
keyspace."""

from __future__ import annotations

import re
from fractions import Fraction

from kvtwist.engine.strbuf import piece, string_at
from kvtwist.engine.table import (
    LLONG_MAX, LLONG_MIN, SYNTAX, TOO_BIG, arity_error, c_lower, expire_time_error, max_bulk,
    parse_int, register)
from kvtwist.engine.types import wrongtype
from kvtwist.wire.replies import OK, CommandError

# -- string commands: thin handlers over set_generic and the keyspace -------------------

_NX, _XX, _GET, _KEEPTTL, _EX, _PX, _EXAT, _PXAT = 1, 2, 4, 8, 16, 32, 64, 128
_TIMES = _EX | _PX | _EXAT | _PXAT
_PERSIST = 256
# option -> (flag, milliseconds per unit, absolute?)
_TIME_OPTIONS = {b"ex": (_EX, 1000, False), b"px": (_PX, 1, False),
                 b"exat": (_EXAT, 1000, True), b"pxat": (_PXAT, 1, True)}


def set_generic(session, flags: int, key: bytes, value: bytes, expire, unit: int,
                absolute: bool, name: str, ok_reply=OK, abort_reply=None):
    """Redis's setGenericCommand: every SET variant; returns the reply.

    ``expire`` is the raw time argument or None; ``unit`` is ms per unit.
    """
    keyspace = session.keyspace
    at = 0
    if expire is not None:
        amount = parse_int(expire)
        if amount <= 0 or (unit == 1000 and amount > LLONG_MAX // 1000):
            raise expire_time_error(name)
        at = amount * unit
        if not absolute:
            at += keyspace.now_ms()
        if at > LLONG_MAX:
            raise expire_time_error(name)
    if flags & _GET:
        old = keyspace.get_string(key)
        found = old is not None
    else:
        found = keyspace.exists(key)
    if (flags & _NX and found) or (flags & _XX and not found):
        return old if flags & _GET else abort_reply
    if flags & _KEEPTTL:
        at = keyspace.expire_of(key)
    keyspace.set(key, value, at)
    return old if flags & _GET else ok_reply


@register("set", -3, "write denyoom", 1, 1, 1, aliases="put")
def cmd_set(session, argv):
    if len(argv) == 3:
        session.keyspace.set(argv[1], argv[2])
        return OK
    flags = 0
    expire = None
    unit, absolute = 1, False
    index, count = 3, len(argv)
    while index < count:
        option = argv[index].lower()
        if option == b"nx" and not flags & _XX:
            flags |= _NX
        elif option == b"xx" and not flags & _NX:
            flags |= _XX
        elif option == b"get":
            flags |= _GET
        elif option == b"keepttl" and not flags & _TIMES:
            flags |= _KEEPTTL
        else:
            timed = _TIME_OPTIONS.get(option)
            # Any other time option, or KEEPTTL, already given makes this a syntax error.
            if (timed is None or index + 1 >= count
                    or flags & (_KEEPTTL | (_TIMES & ~timed[0]))):
                raise CommandError(SYNTAX)
            flags |= timed[0]
            unit, absolute = timed[1], timed[2]
            index += 1
            expire = argv[index]
        index += 1
    return set_generic(session, flags, argv[1], argv[2], expire, unit, absolute, "set")


@register("setnx", 3, "write denyoom fast", 1, 1, 1)
def cmd_setnx(session, argv):
    return set_generic(session, _NX, argv[1], argv[2], None, 1, False, "setnx", 1, 0)


@register("setex", 4, "write denyoom", 1, 1, 1)
def cmd_setex(session, argv):
    return set_generic(session, 0, argv[1], argv[3], argv[2], 1000, False, "setex")


@register("psetex", 4, "write denyoom", 1, 1, 1)
def cmd_psetex(session, argv):
    return set_generic(session, 0, argv[1], argv[3], argv[2], 1, False, "psetex")


@register("getset", 3, "write denyoom fast", 1, 1, 1)
def cmd_getset(session, argv):
    return set_generic(session, _GET, argv[1], argv[2], None, 1, False, "getset")


@register("get", 2, "readonly fast", 1, 1, 1)
def cmd_get(session, argv):
    value = session.keyspace.get(argv[1])
    if value.__class__ is bytes or value is None:
        return value
    raise wrongtype()


@register("getex", -2, "write fast", 1, 1, 1)
def cmd_getex(session, argv):
    """GETEX key [EX s | PX ms | EXAT s | PXAT ms | PERSIST]: the value, then the new expiry
    (a time already past deletes the key), as Redis's getexCommand."""
    flags = 0
    expire = None
    unit, absolute = 1000, False
    index, count = 2, len(argv)
    while index < count:
        option = c_lower(argv[index])
        timed = _TIME_OPTIONS.get(option)
        if option == b"persist" and not flags & _TIMES:
            flags |= _PERSIST
        elif (timed is not None and index + 1 < count
              and not flags & (_PERSIST | (_TIMES & ~timed[0]))):
            flags |= timed[0]
            unit, absolute = timed[1], timed[2]
            index += 1
            expire = argv[index]
        else:
            raise CommandError(SYNTAX)
        index += 1
    keyspace, key = session.keyspace, argv[1]
    value = keyspace.get_string(key)
    if value is None:
        return None
    if expire is not None:
        amount = parse_int(expire)
        if amount <= 0 or (unit == 1000 and amount > LLONG_MAX // 1000):
            raise expire_time_error("getex")
        at = amount * unit + (0 if absolute else keyspace.now_ms())
        if at > LLONG_MAX:
            raise expire_time_error("getex")
        keyspace.expire_at(key, at)
    elif flags & _PERSIST:
        keyspace.persist(key)
    return value


@register("getdel", 2, "write fast", 1, 1, 1)
def cmd_getdel(session, argv):
    keyspace = session.keyspace
    if string_at(keyspace, argv[1]) is None:
        return None
    return keyspace.pop(argv[1])


@register("mget", -2, "readonly fast", 1, -1, 1)
def cmd_mget(session, argv):
    # A key of another type reads as nil here, as in Redis.
    get = session.keyspace.get
    values = [get(key) for key in argv[1:]]
    if session.keyspace.typed_keys:
        values = [value if value.__class__ is bytes else None for value in values]
    return values


@register("mset", -3, "write denyoom", 1, -1, 2)
def cmd_mset(session, argv):
    if len(argv) % 2 == 0:
        return arity_error("mset")
    set_ = session.keyspace.set
    for index in range(1, len(argv), 2):
        set_(argv[index], argv[index + 1])
    return OK


@register("msetnx", -3, "write denyoom", 1, -1, 2)
def cmd_msetnx(session, argv):
    if len(argv) % 2 == 0:
        return arity_error("msetnx")
    keyspace = session.keyspace
    if any(keyspace.exists(argv[index]) for index in range(1, len(argv), 2)):
        return 0
    for index in range(1, len(argv), 2):
        keyspace.set(argv[index], argv[index + 1])
    return 1


@register("del", -2, "write", 1, -1, 1, aliases="delete remove")
def cmd_del(session, argv):
    delete = session.keyspace.delete
    return sum(1 for key in argv[1:] if delete(key))


@register("exists", -2, "readonly fast", 1, -1, 1)
def cmd_exists(session, argv):
    exists = session.keyspace.exists
    return sum(1 for key in argv[1:] if exists(key))


def incr_generic(session, key: bytes, delta: int) -> int:
    """Add ``delta`` to an integer value (missing counts as 0), keeping its TTL; return it."""
    keyspace = session.keyspace
    value = string_at(keyspace, key)
    # A StringBuffer (strbuf.PROMOTE bytes at least) is too long to be a number: not copied.
    current = 0 if value is None else parse_int(value if value.__class__ is bytes else b"")
    result = current + delta
    if not LLONG_MIN <= result <= LLONG_MAX:
        raise CommandError("ERR increment or decrement would overflow")
    keyspace.set(key, b"%d" % result, keyspace.expire_of(key) if value is not None else 0)
    return result


@register("incr", 2, "write denyoom fast", 1, 1, 1)
def cmd_incr(session, argv):
    return incr_generic(session, argv[1], 1)


@register("decr", 2, "write denyoom fast", 1, 1, 1)
def cmd_decr(session, argv):
    return incr_generic(session, argv[1], -1)


@register("incrby", 3, "write denyoom fast", 1, 1, 1)
def cmd_incrby(session, argv):
    return incr_generic(session, argv[1], parse_int(argv[2]))


@register("decrby", 3, "write denyoom fast", 1, 1, 1)
def cmd_decrby(session, argv):
    delta = parse_int(argv[2])
    if delta == LLONG_MIN:
        raise CommandError("ERR decrement would overflow")
    return incr_generic(session, argv[1], -delta)


@register("incrbyfloat", 3, "write denyoom fast", 1, 1, 1)
def cmd_incrbyfloat(session, argv):
    keyspace = session.keyspace
    value = string_at(keyspace, argv[1])
    # A StringBuffer (strbuf.PROMOTE bytes at least) is too long to be a number: not copied.
    result = add_long_double(b"0" if value is None else value if value.__class__ is bytes
                             else b"", argv[2])
    keyspace.set(argv[1], result, keyspace.expire_of(argv[1]) if value is not None else 0)
    return result


@register("append", 3, "write denyoom", 1, 1, 1)
def cmd_append(session, argv):
    """APPEND key value: the new length. O(bytes appended) amortised once the string is a
    StringBuffer (strbuf), else one copy of the string (shorter than strbuf.PROMOTE)."""
    keyspace = session.keyspace
    value = string_at(keyspace, argv[1])
    size = 0 if value is None else len(value)
    if size + len(argv[2]) > max_bulk(session.store):
        raise CommandError(TOO_BIG)
    return keyspace.setrange(argv[1], size, argv[2])


@register("strlen", 2, "readonly fast", 1, 1, 1)
def cmd_strlen(session, argv):
    value = string_at(session.keyspace, argv[1])
    return 0 if value is None else len(value)


@register("getrange", 4, "readonly", 1, 1, 1, aliases="substr")
def cmd_getrange(session, argv):
    """GETRANGE key start end (SUBSTR): O(length of the range)."""
    start, end = parse_int(argv[2]), parse_int(argv[3])
    value = string_at(session.keyspace, argv[1])
    if value is None or (start < 0 and end < 0 and start > end):
        return b""
    size = len(value)
    if start < 0:
        start = max(0, size + start)
    if end < 0:
        end = max(0, size + end)
    end = min(end, size - 1)
    if start > end or size == 0:
        return b""
    return piece(value, start, end + 1)


@register("setrange", 4, "write denyoom", 1, 1, 1)
def cmd_setrange(session, argv):
    """SETRANGE key offset value: the new length. O(bytes written + any zero-filled gap)
    amortised once the string is a StringBuffer (strbuf), else one copy of the string."""
    offset = parse_int(argv[2])
    if offset < 0:
        raise CommandError("ERR offset is out of range")
    keyspace, key, patch = session.keyspace, argv[1], argv[3]
    value = string_at(keyspace, key)
    if not patch:
        return 0 if value is None else len(value)
    if offset + len(patch) > max_bulk(session.store):
        raise CommandError(TOO_BIG)
    return keyspace.setrange(key, offset, patch)


# -- INCRBYFLOAT: x87 80-bit long double arithmetic, as Redis does it, in exact fractions --

_FLOAT = re.compile(rb"([+-]?)([0-9]*)(?:\.([0-9]*))?(?:[eE]([+-]?[0-9]+))?\Z")
_HEX_FLOAT = re.compile(
    rb"([+-]?)0[xX]([0-9a-fA-F]*)(?:\.([0-9a-fA-F]*))?(?:[pP]([+-]?[0-9]+))?\Z")
_INFINITY = re.compile(rb"[+-]?inf(?:inity)?\Z", re.IGNORECASE)
_LD_LIMIT = Fraction(2) ** 16384
_LD_TINY = Fraction(1, 2 ** 16445)
NOT_FLOAT = "ERR value is not a valid float"


def _round_long_double(value: Fraction) -> Fraction:
    # Round to the nearest 64-bit-mantissa binary number (ties to even), as strtold and
    # long double addition do.
    if value == 0:
        return value
    magnitude = abs(value)
    shift = magnitude.numerator.bit_length() - magnitude.denominator.bit_length() - 63
    scaled = magnitude / Fraction(2) ** shift
    while scaled >= 2 ** 64:
        shift += 1
        scaled /= 2
    while scaled < 2 ** 63:
        shift -= 1
        scaled *= 2
    rounded = Fraction(round(scaled)) * Fraction(2) ** shift
    return rounded if value > 0 else -rounded


def parse_long_double(value: bytes):
    """Return ``value`` as strtold would read it (a Fraction, or +-inf as a float)."""
    if not value or len(value) >= 5 * 1024:
        raise CommandError(NOT_FLOAT)
    decimal = _FLOAT.match(value)
    hexadecimal = _HEX_FLOAT.match(value)
    if decimal is not None and (decimal.group(2) or decimal.group(3)):
        sign, whole, fraction, power = decimal.groups()
        fraction = fraction or b""
        power = int(power or b"0") - len(fraction)
        digits = _int(whole + fraction)
        # Bound the exponent before expanding 10**power (at most 5k digits remain).
        if abs(power) > 12000:
            if digits:
                raise CommandError(NOT_FLOAT)
            return Fraction(0)
        exact = digits * Fraction(10) ** power
        if sign == b"-":
            exact = -exact
    elif hexadecimal is not None and (hexadecimal.group(2) or hexadecimal.group(3)):
        sign, whole, fraction, power = hexadecimal.groups()
        fraction = fraction or b""
        if power and abs(int(power)) > 40000:
            if (whole + fraction).strip(b"0"):
                raise CommandError(NOT_FLOAT)
            return Fraction(0)
        exact = Fraction(_int(whole + fraction, 16), 16 ** len(fraction))
        exact *= Fraction(2) ** int(power or b"0")
        if sign == b"-":
            exact = -exact
    else:
        exact = None
    if exact is not None:
        number = _round_long_double(exact)
        if abs(number) >= _LD_LIMIT or (exact != 0 and abs(number) < _LD_TINY):
            raise CommandError(NOT_FLOAT)
        return number
    if _INFINITY.match(value):
        return float("-inf") if value.startswith(b"-") else float("inf")
    raise CommandError(NOT_FLOAT)


def _int(digits: bytes, base: int = 10) -> int:
    # Chunked, because CPython 3.11 refuses to parse ints over 4300 digits in one go.
    if len(digits) <= 4000:
        return int(digits or b"0", base)
    return _int(digits[:-4000], base) * base ** 4000 + int(digits[-4000:], base)


def _decimal(number: int) -> bytes:
    # Chunked, because CPython 3.11 refuses to print ints over 4300 digits in one go.
    if number < 10 ** 4000:
        return b"%d" % number
    high, low = divmod(number, 10 ** 4000)
    return _decimal(high) + b"%04000d" % low


def format_long_double(number: Fraction) -> bytes:
    """Return ``number`` as Redis prints it: ``%.17Lf`` without trailing zeros."""
    scaled = round(abs(number) * 10 ** 17)
    whole, fraction = divmod(scaled, 10 ** 17)
    text = (_decimal(whole) + b".%017d" % fraction).rstrip(b"0").rstrip(b".")
    if number < 0 and text != b"0":
        text = b"-" + text
    return text


def add_long_double(value: bytes, increment: bytes) -> bytes:
    """Return Redis's INCRBYFLOAT result for a stored value and an increment."""
    current, delta = parse_long_double(value), parse_long_double(increment)
    if isinstance(current, float) or isinstance(delta, float):
        raise CommandError("ERR increment would produce NaN or Infinity")
    total = _round_long_double(current + delta)
    if abs(total) >= _LD_LIMIT:
        raise CommandError("ERR increment would produce NaN or Infinity")
    return format_long_double(total)
