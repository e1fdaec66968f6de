"""A linearizability check of GET/MGET/SET/DEL/INCR/SELECT histories against a dict model.

The model has 16 databases, as redis-server: its state maps (database, key) to a value, and
each client's database is the one its last SELECT answered OK to named (0 at first).
"""

from __future__ import annotations

from kvtwist.wire.replies import OK, Error

NOT_INTEGER = Error("ERR value is not an integer or out of range")
OUT_OF_RANGE = Error("ERR DB index is out of range")
DATABASES = 16


class Op:
    """One request of a history: its client, argv, the reply it got, and when.

    ``called`` and ``returned`` are instants on one clock; ``returned`` is when the
    client could see the reply (after its earlier requests' replies, which leave first).
    ``db`` is the database it ran in (set by ``linearization`` from the client's SELECTs).
    """

    __slots__ = ("client", "argv", "reply", "called", "returned", "db")

    def __init__(self, client: int, argv: list, called: int) -> None:
        self.client = client
        self.argv = argv
        self.reply = None
        self.called = called
        self.returned = None
        self.db = 0

    def __repr__(self) -> str:
        return "Op(client=%d, db=%d, %r -> %r, %s..%s)" % (
            self.client, self.db, b" ".join(self.argv), self.reply, self.called,
            self.returned)


def _index(text: bytes):
    """SELECT's argument as Redis 7 reads it: a canonical decimal, or None."""
    try:
        number = int(text)
    except ValueError:
        return None
    return number if b"%d" % number == text else None


def databases(ops: list) -> None:
    """Set each op's ``db``: 0, then whatever its client's last SELECT answered OK named
    (``ops`` in the order they were made)."""
    current = {}
    for op in ops:
        op.db = current.get(op.client, 0)
        if op.argv[0] == b"SELECT" and op.reply == OK:
            current[op.client] = _index(op.argv[1])


def apply(state: dict, argv: list, db: int = 0):
    """Return (reply, state after) of ``argv`` run in database ``db`` on ``state``
    ((database, key) to bytes), as Redis 7 does.

    ``state`` is not modified; a write returns a new dict. O(len(state)) for a write.
    """
    name = argv[0]
    if name == b"GET":
        return state.get((db, argv[1])), state
    if name == b"MGET":
        return [state.get((db, key)) for key in argv[1:]], state
    if name == b"SELECT":
        index = _index(argv[1])
        if index is None:
            return NOT_INTEGER, state
        return (OK if 0 <= index < DATABASES else OUT_OF_RANGE), state
    if name == b"SET":
        after = dict(state)
        after[(db, argv[1])] = argv[2]
        return OK, after
    if name == b"DEL":
        after = dict(state)
        count = 0
        for key in argv[1:]:
            if after.pop((db, key), None) is not None:
                count += 1
        return count, after
    if name == b"INCR":
        text = state.get((db, argv[1]), b"0")
        try:
            number = int(text)
        except ValueError:
            return NOT_INTEGER, state
        if b"%d" % number != text:  # Redis takes canonical integers only
            return NOT_INTEGER, state
        after = dict(state)
        after[(db, argv[1])] = b"%d" % (number + 1)
        return number + 1, after
    raise ValueError("no model for %r" % (argv,))


def linearization(ops: list, initial=None):
    """Return an order of ``ops`` that explains every reply, or None if there is none.

    The order keeps each client's requests in the order it made them, and puts a
    request after every request whose reply had been seen before it was made
    (linearizability over per-client sessions). Depth-first search over (requests
    done, state), memoized; exponential in the worst case, quick for the short
    histories the tests make. ``initial`` maps (database, key) to a value.
    """
    databases(ops)
    by_client = {}
    for op in ops:
        by_client.setdefault(op.client, []).append(op)
    sessions = list(by_client.values())
    index = {id(op): number for number, op in enumerate(ops)}
    before = []
    for op in ops:
        mask = 0
        for other in ops:
            if other.returned is not None and other.returned < op.called:
                mask |= 1 << index[id(other)]
        before.append(mask)
    full = (1 << len(ops)) - 1
    seen = set()
    order = []

    def search(done: int, state: dict, positions: list) -> bool:
        if done == full:
            return True
        memo = (done, tuple(sorted(state.items())))
        if memo in seen:
            return False
        seen.add(memo)
        for number, session in enumerate(sessions):
            position = positions[number]
            if position == len(session):
                continue
            op = session[position]
            bit = index[id(op)]
            if before[bit] & ~done:
                continue
            reply, after = apply(state, op.argv, op.db)
            if reply != op.reply:
                continue
            positions[number] += 1
            order.append(op)
            if search(done | (1 << bit), after, positions):
                return True
            order.pop()
            positions[number] -= 1
        return False

    if search(0, dict(initial or {}), [0] * len(sessions)):
        return order
    return None
