"""Sorted sets: the value type, its logged operations, ranks and ranges, and ZSCAN's order.

A ZSet holds ``scores`` (a dict member -> float score) and ``ranked`` (a sortedcontainers
SortedList of rank keys, ``rank_key(score, member)``: 8 bytes that order as the score
does, then the member). bytes compare by memcmp, then length, so the keys sort by score,
then by member bytes (memcmp, then length): exactly the order of Redis's skiplist. The
dict answers ZSCORE in O(1); the SortedList adds, removes, ranks and indexes in
O(log n). A rank key is one bytes object: each comparison of a search reads one object,
where a ``(score, member)`` tuple made it read three (the tuple, the float, the member),
which in a large set are cache misses: a ZADD that moves a member of a 100,000-member set
took about 6.5 us in the SortedList with tuples and 4 us with rank keys. (Why this
structure, and what it costs: see the docs notes.) ``items``, ``at`` and the iterators
give ``(score, member)`` tuples, the score from the dict (so ``-0`` keeps its sign).

Operations (type code 4; their numbers are part of the on-disk format, never renumbered):

    1 ADD      score, member, score, member...  set each member's score (adding it);
                                                a score is ``repr(float)`` (exact)
    2 REM      member...                        remove the members (all present)
    3 REMRANK  start, stop                      remove ranks start..stop (inclusive,
                                                0 <= start <= stop < len), ASCII
    4 INCR     score, member                    as ADD (ZINCRBY, ZADD INCR: the new score)
    5 POPMIN   start, stop                      as REMRANK (ZPOPMIN, ZMPOP MIN)
    6 POPMAX   start, stop                      as REMRANK (ZPOPMAX, ZMPOP MAX)

OBJECT ENCODING answers as Redis 7.0: "listpack" while the set has at most
``zset-max-listpack-entries`` members of at most ``zset-max-listpack-value`` bytes,
"skiplist" once it has exceeded either (and from then on: Redis does not convert back,
but a value built whole, by a STORE command, RESTORE or a reload, is judged afresh).
"""

from __future__ import annotations

from functools import partial
from struct import Struct
from zlib import crc32

from sortedcontainers import SortedList

from kvtwist.engine.types import ZSET, TypedValue, register_op, register_type
from kvtwist.engine.zsetscore import format_score, lex_empty, lex_gte_min, lex_lte_max
from kvtwist.wire.replies import Double, stream_array

OP_ADD, OP_REM, OP_REMRANK, OP_INCR, OP_POPMIN, OP_POPMAX = 1, 2, 3, 4, 5, 6

# Estimated bytes per member beyond its own bytes: the dict entry, the (score, member)
# tuple, the float, the SortedList slot and the bytes object's header (tracemalloc under
# CPython 3.11: about 117 bytes for the first four, 33 for the header).
PER_MEMBER = 150

# zset-max-listpack-entries and zset-max-listpack-value (engine/t_zset.py sets them).
LIMITS = {"entries": 128, "value": 64}

_DOUBLE = Struct(">d").pack
_BITS = Struct(">Q").unpack
_KEY = Struct(">Q").pack
_SIGN = 1 << 63
_ALL = (1 << 64) - 1


def score_prefix(score: float) -> bytes:
    """Return 8 bytes that compare as ``score`` does among scores (never NaN): its IEEE
    bits with the sign bit set for a positive number, all bits flipped for a negative one;
    -0.0 is taken as 0.0 (Redis compares them equal)."""
    bits, = _BITS(_DOUBLE(score + 0.0))
    return _KEY(bits ^ _ALL if bits & _SIGN else bits | _SIGN)


def _after(score: float) -> bytes:
    # The prefix of the next double up: every key with a score <= ``score`` sorts before it.
    bits, = _BITS(_DOUBLE(score + 0.0))
    return _KEY((bits ^ _ALL if bits & _SIGN else bits | _SIGN) + 1)


def rank_key(score: float, member: bytes) -> bytes:
    """Return the key that orders ``(score, member)`` in a ZSet's ``ranked`` list."""
    bits, = _BITS(_DOUBLE(score + 0.0))
    return _KEY(bits ^ _ALL if bits & _SIGN else bits | _SIGN) + member


@register_type
class ZSet(TypedValue):
    """A sorted set: members with float scores, ordered by (score, member)."""

    __slots__ = ("scores", "ranked", "big", "scan_index")

    code = ZSET
    type_name = b"zset"
    rdb_type = 5

    def __init__(self) -> None:
        self.scores = {}
        self.ranked = SortedList()  # rank keys (rank_key)
        self.nbytes = 0
        self.big = False  # converted to a skiplist (Redis's encoding)
        # ZSCAN's order, built on a first ZSCAN of a large set and kept up to date after.
        self.scan_index = None

    def __len__(self) -> int:
        return len(self.scores)

    def encoding(self) -> bytes:
        return b"skiplist" if self.big else b"listpack"

    @classmethod
    def from_pairs(cls, pairs) -> "ZSet":
        """Return a new set of ``(member, score)`` pairs (members distinct), its encoding
        judged from its content as Redis does for a value built whole: O(n log n)."""
        value = cls()
        scores = value.scores
        scores.update(pairs)
        value.big = len(scores) > LIMITS["entries"] or (
            bool(scores) and max(map(len, scores)) > LIMITS["value"])
        if not value.big:
            for member, score in scores.items():
                if score == 0.0:
                    scores[member] = 0.0  # a listpack's "-0" is the integer 0
        value.ranked = SortedList([rank_key(score, member) for member, score in scores.items()])
        value.nbytes = sum(map(len, scores)) + PER_MEMBER * len(scores)
        return value

    def copy(self) -> "ZSet":
        """Return an independent copy (COPY): O(n)."""
        value = ZSet()
        value.scores = self.scores.copy()
        value.ranked = self.ranked.copy()
        value.nbytes = self.nbytes
        value.big = self.big
        return value

    def frozen(self):
        """Return a copy of the score dict (a C-level copy, O(n))."""
        return self.scores.copy()

    @classmethod
    def flatten(cls, frozen) -> list:
        """Return member, score-text pairs (``repr``: the float exactly): O(n)."""
        items = []
        append = items.append
        for member, score in frozen.items():
            append(member)
            append(repr(score).encode())
        return items

    @classmethod
    def from_flat(cls, items: list) -> "ZSet":
        """Return the set ``flatten`` wrote; ValueError when malformed: O(n log n)."""
        if len(items) % 2:
            raise ValueError("odd number of sorted set items")
        members = items[0::2]
        scores = [float(text) for text in items[1::2]]
        if any(score != score for score in scores):
            raise ValueError("NaN score")
        if len(set(members)) != len(members):
            raise ValueError("repeated sorted set member")
        return cls.from_pairs(zip(members, scores))

    def export_commands(self, key: bytes) -> list:
        """Return ZADD commands of at most 100 members each."""
        commands = []
        pairs = list(self.scores.items())
        for start in range(0, len(pairs), 100):
            argv = [b"ZADD", key]
            for member, score in pairs[start:start + 100]:
                argv.append(repr(score).encode())
                argv.append(member)
            commands.append(argv)
        return commands

    # -- reading: ranks and ranges (O(log n) each unless said) ---------------------------

    def rank(self, member: bytes):
        """Return the member's 0-based rank by ascending score, or None."""
        score = self.scores.get(member)
        if score is None:
            return None
        return self.ranked.bisect_left(rank_key(score, member))

    def at(self, rank: int) -> tuple:
        """Return the ``(score, member)`` at a rank (negative: from the top): O(log n)."""
        member = self.ranked[rank][8:]
        return self.scores[member], member

    def members(self) -> list:
        """Return the members by ascending rank: O(n)."""
        return [key[8:] for key in self.ranked]

    def descending(self):
        """Yield ``(score, member)`` from the highest rank down: O(1) per item."""
        scores = self.scores
        for key in reversed(self.ranked):
            member = key[8:]
            yield scores[member], member

    def score_start(self, score: float, exclusive: bool) -> int:
        """Return the rank of the first member whose score is >= (> if exclusive) ``score``."""
        return self.ranked.bisect_left(_after(score) if exclusive else score_prefix(score))

    def score_end(self, score: float, exclusive: bool) -> int:
        """Return one past the rank of the last member with score <= (<) ``score``."""
        return self.ranked.bisect_left(score_prefix(score) if exclusive else _after(score))

    def score_span(self, low, high) -> tuple:
        """Return ``(start, end)`` ranks of the members in a score range (parse_range)."""
        start = self.score_start(low[0], low[1])
        end = self.score_end(high[0], high[1])
        return start, max(start, end)

    def lex_first(self, low, high):
        """Return the rank where a lex range starts, or None (zzlFirstInLexRange).

        Meaningful when all scores are equal, as Redis's. A listpack-sized set is scanned
        from the lowest rank, as Redis scans its listpack (so mixed scores give Redis's
        answer too): O(n); a larger one is binary searched, O(log^2 n).
        """
        ranked = self.ranked
        if not ranked or lex_empty(low, high) or not lex_gte_min(ranked[-1][8:], low) \
                or not lex_lte_max(ranked[0][8:], high):
            return None
        if self.big:
            index = _bisect(ranked, lambda member: not lex_gte_min(member, low))
        else:
            index = next((index for index, key in enumerate(ranked)
                          if lex_gte_min(key[8:], low)), len(ranked))
        if index == len(ranked) or not lex_lte_max(ranked[index][8:], high):
            return None
        return index

    def lex_last(self, low, high):
        """Return the rank where a lex range ends (inclusive), or None (zzlLastInLexRange):
        O(n) scanning down a listpack-sized set, O(log^2 n) otherwise."""
        ranked = self.ranked
        if not ranked or lex_empty(low, high) or not lex_gte_min(ranked[-1][8:], low) \
                or not lex_lte_max(ranked[0][8:], high):
            return None
        if self.big:
            index = _bisect(ranked, lambda member: lex_lte_max(member, high)) - 1
        else:
            index = next((len(ranked) - 1 - back for back, key in enumerate(reversed(ranked))
                          if lex_lte_max(key[8:], high)), -1)
        if index < 0 or not lex_gte_min(ranked[index][8:], low):
            return None
        return index

    def lex_walk(self, low, high, reverse: bool, offset: int = 0, limit: int = -1) -> list:
        """Return the ``(score, member)`` items of a lex range in reply order, as Redis
        walks it: from its first (last) member, ``offset`` skipped, then while in range,
        at most ``limit`` (negative: no limit). O(log^2 n + offset + m)."""
        if offset < 0 or limit == 0:
            return []
        if reverse:
            index = self.lex_last(low, high)
            if index is None or index - offset < 0:
                return []
            keys = self.ranked.islice(0, index - offset + 1, reverse=True)
            keep = lex_gte_min
            bound = low
        else:
            index = self.lex_first(low, high)
            if index is None:
                return []
            keys = self.ranked.islice(index + offset)
            keep = lex_lte_max
            bound = high
        found = []
        scores = self.scores
        for key in keys:
            member = key[8:]
            if not keep(member, bound):
                break
            found.append((scores[member], member))
            if len(found) == limit:
                break
        return found

    def items(self, start: int, end: int, reverse: bool = False) -> list:
        """Return ``(score, member)`` tuples of ranks start..end-1 (descending if
        ``reverse``): O(log n + (end - start))."""
        scores = self.scores
        return [(scores[member], member) for member in
                [key[8:] for key in self.ranked.islice(start, end, reverse=reverse)]]


def _bisect(ranked, before) -> int:
    # The first index whose member is not ``before`` (``before`` holds for a prefix).
    low, high = 0, len(ranked)
    while low < high:
        middle = (low + high) // 2
        if before(ranked[middle][8:]):
            low = middle + 1
        else:
            high = middle
    return low


# -- operations -------------------------------------------------------------------------


def _insert(value: ZSet, member: bytes, score: float) -> None:
    # Add a member not in the set.
    value.scores[member] = score
    value.ranked.add(rank_key(score, member))
    value.nbytes += len(member) + PER_MEMBER
    if value.scan_index is not None:
        value.scan_index.add((crc32(member), member))


def _discard(value: ZSet, member: bytes) -> float:
    # Remove a member in the set; return its score.
    score = _forget(value, member)
    value.ranked.remove(rank_key(score, member))
    return score


def _forget(value: ZSet, member: bytes) -> float:
    # Remove a member from all but the order (its caller's to do); return its score.
    score = value.scores.pop(member)
    value.nbytes -= len(member) + PER_MEMBER
    if value.scan_index is not None:
        value.scan_index.remove((crc32(member), member))
    return score


@register_op(ZSet, OP_ADD)
def op_add(value: ZSet, args: tuple):
    """Set scores (adding members): O(k log n). Returns the number of members added.

    As Redis's zsetAdd: a member that would take a listpack past its limits converts the
    set to a skiplist first; a score written into a listpack loses the sign of a zero
    (its text "-0" is stored as the integer 0).
    """
    scores, ranked = value.scores, value.ranked
    was_big = value.big
    if len(args) == 2 and was_big:
        # The usual ZADD of one member to a skiplist: no conversion, no listpack zero.
        score, member = float(args[0]), args[1]
        old = scores.get(member)
        if old is not None:
            if old == score:  # (an equal score stays as it is, as in Redis's zsetAdd)
                return 0, partial(_unadd, value, [], True)
            ranked.remove(rank_key(old, member))
            scores[member] = score
            ranked.add(rank_key(score, member))
            return 0, partial(_unadd, value, [(member, old)], True)
    undo = []
    added = 0
    entries, limit = LIMITS["entries"], LIMITS["value"]
    for index in range(0, len(args), 2):
        score = float(args[index])
        member = args[index + 1]
        old = scores.get(member)
        if old is None and not value.big and (len(scores) + 1 > entries or len(member) > limit):
            value.big = True
        if score == 0.0 and not value.big:
            score = 0.0
        if old is None:
            _insert(value, member, score)
            undo.append((member, None))
            added += 1
        elif old != score:  # (an equal score stays as it is, as in Redis's zsetAdd)
            ranked.remove(rank_key(old, member))
            scores[member] = score
            ranked.add(rank_key(score, member))
            undo.append((member, old))
    # (Inverses are partials, not closures: see listtype.py on the garbage collector.)
    return added, partial(_unadd, value, undo, was_big)


def _unadd(value: ZSet, undo: list, was_big: bool) -> None:
    scores, ranked = value.scores, value.ranked
    for member, old in reversed(undo):
        if old is None:
            _discard(value, member)
        else:
            ranked.remove(rank_key(scores[member], member))
            scores[member] = old
            ranked.add(rank_key(old, member))
    value.big = was_big


register_op(ZSet, OP_INCR)(op_add)


@register_op(ZSet, OP_REM)
def op_rem(value: ZSet, args: tuple):
    """Remove members (each present): O(k log n). Returns the number removed."""
    removed = [(_discard(value, member), member) for member in args]
    return len(removed), partial(_reinsert, value, removed)


def _reinsert(value: ZSet, removed: list) -> None:
    # Put back removed ``(score, member)``s, newest first.
    for score, member in reversed(removed):
        _insert(value, member, score)


# At most this many ranks at an end of the set (ZPOPMIN, ZPOPMAX) are taken off it one by
# one with SortedList.pop(0) / pop(): no positional index is needed for that, where cutting
# a slice builds one, and every later add and remove then keeps it up to date (ZADD's
# insertions cost about 0.5 us more each while it is kept). A longer cut goes as one slice.
POP_ONE_BY_ONE = 16


@register_op(ZSet, OP_REMRANK)
def op_remrank(value: ZSet, args: tuple):
    """Remove ranks start..stop: O(k log n). Returns the removed ``(score, member)``s."""
    start, stop = int(args[0]), int(args[1])
    ranked = value.ranked
    size = len(ranked)
    if stop - start < POP_ONE_BY_ONE and stop - start + 1 < size and (
            start == 0 or stop == size - 1):
        pop = ranked.pop
        end = 0 if start == 0 else -1
        keys = [pop(end) for _ in range(stop - start + 1)]
        if end:
            keys.reverse()  # ascending ranks, as the slice gives them
        taken = []
        for key in keys:
            member = key[8:]
            taken.append((_forget(value, member), member))
        return taken, partial(_reinsert, value, taken)
    scores = value.scores
    taken = [(scores[member], member) for member in
             [key[8:] for key in ranked.islice(start, stop + 1)]]
    if len(taken) == len(scores):
        scores.clear()
        ranked.clear()
        value.nbytes = 0
        if value.scan_index is not None:
            value.scan_index.clear()
    else:
        del ranked[start:stop + 1]  # (one cut: cheaper than removing each by value)
        for _, member in taken:
            _forget(value, member)
    return taken, partial(_reinsert, value, taken)


register_op(ZSet, OP_POPMIN)(op_remrank)
register_op(ZSet, OP_POPMAX)(op_remrank)


def scan_step(value: ZSet, cursor: int, count: int) -> tuple:
    """Return ``(next cursor, members)`` of one ZSCAN step over a large set.

    The members are walked in the order of their CRC-32 (plus one: 0 is the start and
    the end); the cursor is the CRC to go on from. Members present for the whole scan are
    returned at least once, whatever else is added or removed. The first step builds the
    index, O(n log n); each step then costs O(log n + count), and every later change to
    the set O(log n) more while the index is kept.
    """
    index = value.scan_index
    if index is None:
        index = value.scan_index = SortedList(
            [(crc32(member), member) for member in value.scores])
    position = index.bisect_left((cursor - 1,)) if cursor > 0 else 0
    found = list(index.islice(position, position + count))
    position += len(found)
    # Members sharing the last one's CRC go in the same step (the cursor cannot split them).
    while found and position < len(index) and index[position][0] == found[-1][0]:
        found.append(index[position])
        position += 1
    next_cursor = index[position][0] + 1 if position < len(index) else 0
    return next_cursor, [member for _, member in found]


# -- replies ----------------------------------------------------------------------------


def score_reply(score: float) -> Double:
    """Return a score as a reply: a RESP3 double, a RESP2 bulk string."""
    return Double(format_score(score))


def scored_reply(session, items, withscores: bool) -> list:
    """Return ``(score, member)`` items as Redis replies them: members only, or with their
    scores flat in RESP2 and as [member, score] pairs in RESP3: O(len(items)). Members
    alone, when many, are Streamed (written a slice per reactor turn)."""
    if not withscores:
        return stream_array([member for _, member in items])
    if session.protocol == 2:
        reply = []
        append = reply.append
        for score, member in items:
            append(member)
            append(Double(format_score(score)))
        return reply
    return [[member, Double(format_score(score))] for score, member in items]
