"""OBJECT (ENCODING, REFCOUNT, IDLETIME, FREQ, HELP) and each key's last-access time.

Access times: ``keyspace.access`` maps a key to the clock time (float seconds) of its last
access. ``Session.execute`` calls ``touched`` after every command with key positions, which
stamps the command's keys still present, as Redis's key lookups stamp an object's LRU clock:
reads and writes alike, except the commands in ``NO_TOUCH`` (TYPE, TTL, EXISTS, OBJECT...)
and, for a client that sent CLIENT NO-TOUCH ON, every command but TOUCH. A key without an
entry (loaded at start-up) counts as accessed when its keyspace was made. The keyspace drops
a key's entry when the key goes (DEL, expiry, FLUSH, an undone write).

Encodings: a string is "int" when Redis's string2l takes it, "embstr" up to 44 bytes, "raw"
beyond, as Redis's tryObjectEncoding leaves a value a SET family command stored. Redis keeps a
value APPEND, SETRANGE, SETBIT, a writing BITFIELD or BITOP (its destination) changed "raw",
and an INCRBYFLOAT result never "int": ``touched``
remembers the value those commands left (``_MARKS``), until a command stores another value
there (the mark also names the value object, so a value stored some other way drops it).
"""

from __future__ import annotations

import weakref

from kvtwist.engine.evict import lfu_counter, lfu_set, lfu_touch
from kvtwist.engine.table import register, sub_dispatch, subcommands
from kvtwist.wire.replies import CommandError, Error, Status

# Keyed commands that leave the access time alone (Redis's LOOKUP_NOTOUCH lookups).
# RESTORE sets its key's access time itself (``restored``).
NO_TOUCH = frozenset([b"type", b"ttl", b"pttl", b"expiretime", b"pexpiretime", b"exists",
                      b"object", b"watch", b"restore"])
# Commands that stamp their keys even for a client in CLIENT NO-TOUCH mode.
ALWAYS_TOUCH = frozenset([b"touch"])

OBJ_SHARED_INTEGERS = 10000
OBJ_SHARED_REFCOUNT = 2 ** 31 - 1  # INT_MAX: what OBJECT REFCOUNT says of a shared integer
EMBSTR_SIZE_LIMIT = 44
LONG_MIN, LONG_MAX = -(2 ** 63), 2 ** 63 - 1

_RAW, _NOT_INT = "raw", "not-int"
# Commands whose result Redis stores in another shape than a SET of the same bytes would.
_SHAPES = {b"append": _RAW, b"setrange": _RAW, b"incrbyfloat": _NOT_INT, b"setbit": _RAW,
           b"bitop": _RAW, b"bitfield": _RAW}

# keyspace -> {key: (the value object a shaping command left, shape)}.
_MARKS: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()

# Write commands that keep the value object as it is (its encoding with it).
KEEP_VALUE = frozenset([b"expire", b"pexpire", b"expireat", b"pexpireat", b"persist", b"getex",
                        b"touch"])

# Command -> its touch plan (computed on first use): None (no stamp), or
# (first, last, step, always, shape, replaces): stamp even under NO-TOUCH; the shape its
# result takes; whether it stores new values (dropping the keys' marks).
_PLANS: dict = {}
_SINGLE = (1, 1, 1, False, None, False)
_SINGLE_WRITE = (1, 1, 1, False, None, True)
_UNPLANNED = object()
# Set once any value was marked: until then writes skip looking for marks.
_ANY_MARKS = False


def _plan(command):
    if command.first_key <= 0 or command.name in NO_TOUCH:
        return None
    shape = _SHAPES.get(command.name)
    fewest = command.arity if command.arity > 0 else -command.arity  # arguments, name included
    if fewest <= command.first_key and shape is None:
        # The keys may be missing (DUMP alone): the general path slices argv safely.
        return (command.first_key, command.last_key, command.step or 1,
                command.name in ALWAYS_TOUCH, None, False)
    plan = (command.first_key, command.last_key, command.step or 1,
            command.name in ALWAYS_TOUCH, shape,
            command.write and shape is None and command.name not in KEEP_VALUE)
    for common in (_SINGLE, _SINGLE_WRITE):
        if plan == common:
            return common
    return plan


def touched(session, command, argv, reply) -> None:
    """Stamp the access time of ``command``'s keys still present (after it ran).

    O(number of key arguments). Session.execute calls it for commands with key positions.
    """
    plan = _PLANS.get(command, _UNPLANNED)
    if plan is _SINGLE:  # the common case first: GET, EXPIRE...
        if not session.no_touch:
            keyspace = session.keyspace
            key = argv[1]
            if key in keyspace.data:
                if keyspace.lfu:
                    lfu_touch(keyspace, key, keyspace.lfu.store)
                else:
                    keyspace.access[key] = keyspace.clock.seconds()
        return
    if plan is _UNPLANNED:
        plan = _PLANS[command] = _plan(command)
    if plan is None:
        return
    keyspace = session.keyspace
    if plan is _SINGLE or plan is _SINGLE_WRITE:
        key = argv[1]
        if not session.no_touch and key in keyspace.data:
            if keyspace.lfu:
                lfu_touch(keyspace, key, keyspace.lfu.store)
            else:
                keyspace.access[key] = keyspace.clock.seconds()
        if _ANY_MARKS and plan is _SINGLE_WRITE:
            _unmark(keyspace, (key,))
        return
    first, last, step, always, shape, replaces = plan
    if last < 0:
        last += len(argv)
    keys = argv[first:last + 1:step]
    if always or not session.no_touch:
        data = keyspace.data
        now = keyspace.clock.seconds()
        access = keyspace.access
        for key in keys:
            if key in data:
                if keyspace.lfu:
                    lfu_touch(keyspace, key, keyspace.lfu.store)
                else:
                    access[key] = now
    if shape is not None:
        _mark(keyspace, command.name, argv, reply, shape)
    elif replaces and _ANY_MARKS:
        _unmark(keyspace, keys)


def _unmark(keyspace, keys) -> None:
    marks = _MARKS.get(keyspace)
    if marks:
        for key in keys:
            marks.pop(key, None)


def _mark(keyspace, name: bytes, argv, reply, shape) -> None:
    key = argv[2] if name == b"bitop" else argv[1]  # BITOP op destkey key...
    value = keyspace.data.get(key)
    if value is None or reply.__class__ is Error:
        return  # the command failed (or deleted the key)
    if name == b"append" and reply == len(argv[2]):
        return  # APPEND to a missing key stores its argument as SET would
    if name == b"setrange" and not argv[3]:
        return  # an empty SETRANGE changes nothing
    if name == b"bitfield" and not any(arg.lower() in (b"set", b"incrby") for arg in argv[2:]):
        return  # a BITFIELD that only reads leaves the value as it was
    global _ANY_MARKS
    _ANY_MARKS = True
    marks = _MARKS.get(keyspace)
    if marks is None:
        marks = _MARKS[keyspace] = {}
    marks[key] = (value, shape)
    if len(marks) > 2 * len(keyspace.data) + 64:
        _prune(keyspace, marks)


def _prune(keyspace, marks: dict) -> None:
    """Forget marks of keys gone or rewritten since: O(len(marks)), amortised O(1) a mark."""
    data = keyspace.data
    for key in [key for key, (value, _) in marks.items() if data.get(key) is not value]:
        del marks[key]


def _shape(keyspace, key, value):
    marks = _MARKS.get(keyspace)
    if not marks:
        return None
    mark = marks.get(key)
    if mark is None:
        return None
    if mark[0] is not value:
        del marks[key]
        return None
    return mark[1]


def string2l(value: bytes):
    """Return the integer Redis's string2l reads in ``value`` (strict form, fits a long), or
    None."""
    if not 0 < len(value) <= 20:
        return None
    try:
        number = int(value)
    except ValueError:
        return None
    if b"%d" % number != value or not LONG_MIN <= number <= LONG_MAX:
        return None
    return number


def encoding(keyspace, key, value) -> bytes:
    """Return the encoding Redis 7.0 would report for a value stored at ``key``."""
    if value.__class__ is not bytes:
        return value.encoding()
    shape = _shape(keyspace, key, value)
    if shape is _RAW:
        return b"raw"
    if shape is None and string2l(value) is not None:
        return b"int"
    return b"embstr" if len(value) <= EMBSTR_SIZE_LIMIT else b"raw"


def refcount(keyspace, key, value) -> int:
    """Return OBJECT REFCOUNT's answer: INT_MAX for Redis's shared integers 0..9999, else 1."""
    if value.__class__ is bytes and _shape(keyspace, key, value) is None:
        number = string2l(value)
        if number is not None and 0 <= number < OBJ_SHARED_INTEGERS:
            return OBJ_SHARED_REFCOUNT
    return 1


def restored(keyspace, key, idle: int, freq: int = -1) -> None:
    """RESTORE stored a new value at ``key``, as Redis's objectSetLRUOrLFU: under an LFU
    policy its counter is ``freq`` (FREQ) or a new key's; otherwise it was accessed ``idle``
    seconds ago (IDLETIME) or now (-1)."""
    if keyspace.lfu and freq >= 0:
        lfu_set(keyspace, key, freq)
    else:
        keyspace.access[key] = keyspace.clock.seconds() - max(idle, 0)
    if _ANY_MARKS:
        _unmark(keyspace, (key,))


def idle_seconds(keyspace, key) -> int:
    """Return the whole seconds since a stored key was last accessed (OBJECT IDLETIME)."""
    last = keyspace.access.get(key)
    if last is None:
        last = keyspace.access_epoch
    return max(0, int(keyspace.clock.seconds()) - int(last))


# -- OBJECT ---------------------------------------------------------------------------

LFU_NOT_SELECTED = ("ERR An LFU maxmemory policy is not selected, access frequency not "
                    "tracked. Please note that when switching between policies at runtime LRU "
                    "and LFU data will take some time to adjust.")

_HELP = [
    "ENCODING <key>",
    "    Return the kind of internal representation used in order to store the value",
    "    associated with a <key>.",
    "FREQ <key>",
    "    Return the access frequency index of the <key>. The returned integer is",
    "    proportional to the logarithm of the recent access frequency of the key.",
    "IDLETIME <key>",
    "    Return the idle time of the <key>, that is the approximated number of",
    "    seconds elapsed since the last access to the key.",
    "REFCOUNT <key>",
    "    Return the number of references of the value associated with the specified",
    "    <key>.",
    "HELP",
    "    Prints this help.",
]


def _object_key(method):
    """Wrap ``method(keyspace, key, value)`` as a subcommand replying nil for a missing key."""
    def handler(session, argv):
        keyspace = session.keyspace
        value = keyspace.peek(argv[2])
        if value is None:
            return None
        return method(keyspace, argv[2], value)
    return handler


LFU_SELECTED = ("ERR An LFU maxmemory policy is selected, idle time not tracked. Please "
                "note that when switching between policies at runtime LRU and LFU data will "
                "take some time to adjust.")


def _freq(keyspace, key, value):
    # OBJECT FREQ: the decayed LFU counter, only under an LFU maxmemory-policy.
    if not keyspace.lfu:
        raise CommandError(LFU_NOT_SELECTED)
    return lfu_counter(keyspace, key, keyspace.lfu.store)


def _refcount(session, argv):
    # With maxmemory and an LRU or LFU policy Redis shares no integers (each value needs its
    # own access data): decided here when asked, where Redis decides when storing.
    value = session.keyspace.get(argv[2])
    if value is None:
        return None
    store = session.store
    evictor = getattr(store, "evictor", None)
    if store.maxmemory and evictor is not None and evictor.policy[-3:] in ("lru", "lfu"):
        return 1
    return refcount(session.keyspace, argv[2], value)


def _idletime(keyspace, key, value):
    if keyspace.lfu:
        raise CommandError(LFU_SELECTED)
    return idle_seconds(keyspace, key)


OBJECT_SUBCOMMANDS = subcommands("object")
OBJECT_SUBCOMMANDS.update({
    b"encoding": (3, _object_key(encoding)),
    b"refcount": (3, lambda session, argv: _refcount(session, argv)),
    b"idletime": (3, _object_key(_idletime)),
    b"freq": (3, _object_key(_freq)),
    b"help": (2, lambda session, argv: [Status(line.encode()) for line in [
        "OBJECT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:"] + _HELP]),
})


@register("object", -2, "readonly", 0, 0, 0)
def cmd_object(session, argv):
    """OBJECT ENCODING|REFCOUNT|IDLETIME|FREQ <key>, OBJECT HELP: O(1) (ENCODING of an
    integer-looking value: O(its length), at most 20 bytes parsed)."""
    return sub_dispatch(OBJECT_SUBCOMMANDS, argv, session)
