"""SORT and SORT_RO, as Redis 7.0's sort.c: sort a list's, set's or sorted set's elements
numerically or lexicographically (ALPHA), by themselves or by the values of other keys
(BY pattern, ``*`` standing for the element, ``->field`` reading a hash field), with
LIMIT, ASC/DESC, GET patterns (``#``: the element itself), and STORE (a list).

Numbers are read as C's strtod reads them (hex, inf, leading spaces; not NaN, nor an
overflow or underflow: "ERR One or more scores can't be converted into double"); equal
scores are ordered by the elements' bytes. ALPHA compares bytes (Redis's strcoll in the C
locale; up to a NUL byte, as strcoll, unless STORE). A BY pattern with no ``*`` sorts
nothing: the elements keep their native order (a set's is its iteration order; with
STORE a set is sorted ALPHA instead, as Redis does for replication).

Cost: O(N log N) to sort N elements, plus O(N) lookups for BY and O(K) per GET pattern
for the K elements returned; BY nosort over a list or sorted set visits only the LIMIT
range.
"""

from __future__ import annotations

import re

from kvtwist.engine import events
from kvtwist.engine.acl_check import unrestricted_key_access
from kvtwist.engine.keyspace import DEL, SET as SET_EFFECT
from kvtwist.engine.listtype import ListValue
from kvtwist.engine.table import SYNTAX, c_lower, parse_int, register
from kvtwist.engine.types import wrongtype
from kvtwist.wire.replies import CommandError

NOT_DOUBLE = "ERR One or more scores can't be converted into double"
_DBL_MIN = 2.2250738585072014e-308

# What C's strtod consumes: spaces, a sign, then a hex float, a decimal one, inf or nan.
_STRTOD = re.compile(
    rb"[ \t\n\v\f\r]*([+-]?)(?:"
    rb"(0x(?:[0-9a-f]+\.?[0-9a-f]*|\.[0-9a-f]+)(?:p[+-]?[0-9]+)?)"
    rb"|((?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:e[+-]?[0-9]+)?)"
    rb"|(inf(?:inity)?)|(nan(?:\([0-9a-z_]*\))?))", re.I)


def strtod(value: bytes):
    """Return the double SORT reads from ``value``, or None where Redis reports an error
    (text after the number, NaN, ERANGE). Empty is 0, as strtod converting nothing."""
    text = value.split(b"\0", 1)[0]
    match = _STRTOD.match(text)
    if match is None:
        return 0.0 if not text else None
    if match.end() != len(text):
        return None
    sign, hexed, decimal, infinite, _nan = match.groups()
    if infinite is not None:
        return float("-inf") if sign == b"-" else float("inf")
    if hexed is not None:
        try:
            number = float.fromhex((sign + hexed).decode())
        except OverflowError:
            return None
        mantissa = hexed[2:].split(b"p")[0].split(b"P")[0]
    elif decimal is not None:
        number = float(sign + decimal)
        mantissa = re.split(rb"[eE]", decimal)[0]
    else:
        return None  # NaN
    if number in (float("inf"), float("-inf")):
        return None  # overflow
    if (number == 0 and mantissa.strip(b"0.")) or 0 < abs(number) < _DBL_MIN:
        return None  # underflow
    return number


# -- patterns ---------------------------------------------------------------------------


def lookup(keyspace, pattern: bytes, element: bytes):
    """lookupKeyByPattern: ``#`` is the element; the first ``*`` becomes the element and the
    key so named is read: a string's value, or with ``->field`` after the ``*`` a hash's
    field; None when missing, of another type, or when the pattern has no ``*``."""
    if pattern[:1] == b"#" and pattern[1:2] in (b"", b"\0"):
        return element
    cstring = pattern.split(b"\0", 1)[0]
    star = cstring.find(b"*")
    if star < 0:
        return None
    arrow = cstring.find(b"->", star + 1)
    field = None
    if arrow >= 0 and arrow + 2 < len(cstring):
        field = pattern[arrow + 2:]
        key = pattern[:star] + element + pattern[star + 1:arrow]
    else:
        key = pattern[:star] + element + pattern[star + 1:]
    value = keyspace.get(key)
    if value is None:
        return None
    if field is None:
        return value if value.__class__ is bytes else None
    return hash_field(value, field)


def hash_field(value, field: bytes):
    """Return ``field`` of a hash value, None when missing or when ``value`` is no hash."""
    if value.__class__ is bytes or value.type_name != b"hash":
        return None
    return value.fields.get(field)


# -- the elements of each sortable type ---------------------------------------------------


def elements(value, dontsort: bool, desc: bool, start: int, end: int):
    """Return ``(vector, start, end)``: the elements to sort, in the type's native order
    (a set's iteration order, a list's, a sorted set's members in any order); for BY
    nosort over a list or a sorted set, only the LIMIT range in ASC/DESC order, with
    ``start``/``end`` moved to index that vector. O(N), or O(range) (plus O(log N) for a
    sorted set) for BY nosort over a list or sorted set."""
    kind = value.type_name
    if kind == b"set":
        return value.in_order(), start, end
    length = len(value)
    if kind == b"list":
        if not dontsort:
            return list(value.items), start, end
        if end < start:
            return [], 0, end - start
        if desc:  # from index length - 1 - start towards the head
            vector = value.range(length - 1 - end, length - 1 - start)
            vector.reverse()
        else:
            vector = value.range(start, end)
        return vector, 0, end - start
    if kind == b"zset":
        if not dontsort:
            return list(value.scores), start, end
        if end < start:
            return [], 0, end - start
        if desc:
            pairs = value.items(length - 1 - end, length - start)
            pairs.reverse()
        else:
            pairs = value.items(start, end + 1)
        return [member for _, member in pairs], 0, end - start
    raise wrongtype()


SORTABLE = (b"set", b"list", b"zset")
ACL_DENIED = "ERR %s option of SORT denied due to insufficient ACL permissions."


def _parse(argv, readonly: bool, session=None):
    """Parse SORT's options in Redis's order; return them as a dict. BY with a pattern and
    GET need the user's read access to every key (Redis's ACL rule)."""
    full_access = session is None or session.user.all_allowed or \
        unrestricted_key_access(session.user, argv)
    options = {"desc": False, "alpha": False, "start": 0, "count": -1, "store": None,
               "by": None, "dontsort": False, "gets": []}
    index = 2
    while index < len(argv):
        option = c_lower(argv[index])
        left = len(argv) - index - 1
        if option == b"asc":
            options["desc"] = False
        elif option == b"desc":
            options["desc"] = True
        elif option == b"alpha":
            options["alpha"] = True
        elif option == b"limit" and left >= 2:
            options["start"] = parse_int(argv[index + 1])
            options["count"] = parse_int(argv[index + 2])
            index += 2
        elif not readonly and option == b"store" and left >= 1:
            options["store"] = argv[index + 1]
            index += 1
        elif option == b"by" and left >= 1:
            options["by"] = argv[index + 1]
            options["dontsort"] = b"*" not in argv[index + 1].split(b"\0", 1)[0]
            if not options["dontsort"] and not full_access:
                raise CommandError(ACL_DENIED % ("BY",))
            index += 1
        elif option == b"get" and left >= 1:
            if not full_access:
                raise CommandError(ACL_DENIED % ("GET",))
            options["gets"].append(argv[index + 1])
            index += 1
        else:
            raise CommandError(SYNTAX)
        index += 1
    return options


def _sorted(keyspace, vector: list, options: dict, start: int, end: int):
    """Sort ``vector`` as sortCompare orders it; return it, or None on a conversion error."""
    by, alpha, desc, store = options["by"], options["alpha"], options["desc"], options["store"]
    if alpha:
        if by is None:
            if store is None:
                keyed = [(element.split(b"\0", 1)[0], element) for element in vector]
                keyed.sort(key=_first, reverse=desc)
                return [element for _, element in keyed]
            return sorted(vector, reverse=desc)
        keyed = []
        for element in vector:
            other = lookup(keyspace, by, element)
            if other is None:
                keyed.append(((0, b""), element))
            else:
                keyed.append(((1, other if store is not None else
                               other.split(b"\0", 1)[0]), element))
        keyed.sort(key=_first, reverse=desc)
        return [element for _, element in keyed]
    keyed = []
    failed = False
    for element in vector:
        if by is not None:
            other = lookup(keyspace, by, element)
            score = 0.0 if other is None else strtod(other)
        else:
            score = strtod(element)
        if score is None:
            failed = True
            score = 0.0
        keyed.append((score, element))
    if failed:
        return None
    keyed.sort(reverse=desc)
    return [element for _, element in keyed]


def _first(pair):
    return pair[0]


def sort_generic(session, argv, readonly: bool):
    """SORT/SORT_RO key [BY pattern] [LIMIT offset count] [GET pattern ...] [ASC|DESC]
    [ALPHA] [STORE destination] (see the module docstring for the cost)."""
    options = _parse(argv, readonly, session)
    keyspace = session.keyspace
    value = keyspace.get(argv[1])
    if value is not None and (value.__class__ is bytes or value.type_name not in SORTABLE):
        raise wrongtype()
    store, dontsort = options["store"], options["dontsort"]
    if dontsort and store is not None and value is not None and value.type_name == b"set":
        # Redis sorts a set ALPHA when it stores (a stable result for its replicas).
        dontsort, options["alpha"], options["by"] = False, True, None
    length = 0 if value is None else len(value)
    start = min(max(options["start"], 0), length)
    count = min(max(options["count"], -1), length)
    end = length - 1 if count < 0 else start + count - 1
    if start >= length:
        start, end = length - 1, length - 2
    if end >= length:
        end = length - 1
    if value is None:
        vector = []
    else:
        vector, start, end = elements(value, dontsort, options["desc"], start, end)
    if not dontsort:
        vector = _sorted(keyspace, vector, options, start, end)
        if vector is None:
            raise CommandError(NOT_DOUBLE)
    chosen = vector[start:end + 1] if end >= start else []
    gets = options["gets"]
    if gets:
        output = [lookup(keyspace, pattern, element)
                  for element in chosen for pattern in gets]
    else:
        output = list(chosen)
    if store is None:
        return output
    return store_list(keyspace, store, [b"" if item is None else item for item in output])


def store_list(keyspace, destination: bytes, items: list) -> int:
    """Write ``items`` to ``destination`` as a new list (no expiry), or delete it when there
    are none; return how many. O(len(items))."""
    if not items:
        keyspace.delete(destination)
        return 0
    keyspace.set(destination, ListValue(items), 0)
    return len(items)


@register("sort", -2, "write denyoom movablekeys", 1, 1, 1)
def cmd_sort(session, argv):
    """SORT key [options...] (see sort_generic)."""
    return sort_generic(session, argv, False)


@register("sort_ro", -2, "readonly movablekeys", 1, 1, 1)
def cmd_sort_ro(session, argv):
    """SORT_RO key [options...]: SORT without STORE."""
    return sort_generic(session, argv, True)


events.declare(b"sort", (SET_EFFECT, events.LIST, "sortstore"), (DEL, events.GENERIC, "del"))
events.declare_reads(b"sort", b"sort_ro")
