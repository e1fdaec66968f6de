"""A linearizability check of GET/MGET/SET/DEL/INCR histories against a dict model."""

from __future__ import annotations

from kvtwist.wire.replies import OK, Error

NOT_INTEGER = Error("ERR value is not an integer or out of range")


class Op:
    """One request of a history: its client, argv, the reply it got, and when.

    ``called`` and ``returned`` are instants on one clock; ``returned`` is when the
    client could see the reply (after its earlier requests' replies, which leave first).
    """

    __slots__ = ("client", "argv", "reply", "called", "returned")

    def __init__(self, client: int, argv: list, called: int) -> None:
        self.client = client
        self.argv = argv
        self.reply = None
        self.called = called
        self.returned = None

    def __repr__(self) -> str:
        return "Op(client=%d, %r -> %r, %s..%s)" % (
            self.client, b" ".join(self.argv), self.reply, self.called, self.returned)


def apply(state: dict, argv: list):
    """Return (reply, state after) of ``argv`` on ``state`` (keys to bytes), as Redis 7 does.

    ``state`` is not modified; a write returns a new dict. O(len(state)) for a write.
    """
    name = argv[0]
    if name == b"GET":
        return state.get(argv[1]), state
    if name == b"MGET":
        return [state.get(key) for key in argv[1:]], state
    if name == b"SET":
        after = dict(state)
        after[argv[1]] = argv[2]
        return OK, after
    if name == b"DEL":
        after = dict(state)
        count = 0
        for key in argv[1:]:
            if after.pop(key, None) is not None:
                count += 1
        return count, after
    if name == b"INCR":
        text = state.get(argv[1], b"0")
        try:
            number = int(text)
        except ValueError:
            return NOT_INTEGER, state
        if b"%d" % number != text:  # Redis takes canonical integers only
            return NOT_INTEGER, state
        after = dict(state)
        after[argv[1]] = b"%d" % (number + 1)
        return number + 1, after
    raise ValueError("no model for %r" % (argv,))


def linearization(ops: list, initial=None):
    """Return an order of ``ops`` that explains every reply, or None if there is none.

    The order keeps each client's requests in the order it made them, and puts a
    request after every request whose reply had been seen before it was made
    (linearizability over per-client sessions). Depth-first search over (requests
    done, state), memoized; exponential in the worst case, quick for the short
    histories the tests make.
    """
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
            reply, after = apply(state, op.argv)
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
