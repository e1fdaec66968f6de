"""LCS: the longest common subsequence of two string values, as Redis 7.0's lcsCommand.

Redis fills the whole dynamic-programming table T(i, j) = LCS length of a[:i] and b[:j]
(4 bytes a cell, refused past proto-max-bulk-len bytes), then walks back from
T(len a, len b): on equal bytes diagonally, else up (i - 1) when T(i - 1, j) > T(i, j - 1),
else left. The walk, its ranges and its ties decide the reply, so any method giving the
same T gives the same reply. Here T is computed bit-parallel (Hyyro's algorithm): the table
is kept as one big integer per row of the shorter string, bit l - 1 of row k set when
T(k, l) - T(k, l - 1) = 1, so T(k, l) is a popcount. That is O(len a * len b / 64) in C-level
big-integer operations and len a * len b / 8 bytes, instead of a Python loop over every
cell. The walk takes O(min(len a, len b)) Python steps: a run of moves along the longer
string is one step (the next stop is found with bit operations), each step O(max / 64).
Building the bit masks of the longer string costs O(its length) per distinct byte of the
shorter one (10 M x 8 bytes: about 0.85 s on CPython; 11000 x 11000: 0.12 s for IDX).
"""

from __future__ import annotations

import sys

from kvtwist.engine.table import SYNTAX, c_lower, max_bulk, parse_int, register
from kvtwist.wire.replies import CommandError, Pairs

_UINT32_MAX = 2 ** 32 - 1
_USE_BIT_COUNT = hasattr(int, "bit_count") and sys.implementation.name != "pypy"


def _popcount(number: int) -> int:
    return number.bit_count() if _USE_BIT_COUNT else bin(number).count("1")


def char_masks(text: bytes, chars) -> dict:
    """Return ``{char: int}`` for each byte value in ``chars``: bit p set where
    ``text[p] == char``. O(len(text)) per char, in C (translate, then base-2 parsing)."""
    masks = {}
    if not text:
        return dict.fromkeys(chars, 0)
    for char in chars:
        table = bytearray(b"0" * 256)
        table[char] = ord("1")
        masks[char] = int(text.translate(bytes(table))[::-1], 2)
    return masks


def lcs_rows(x: bytes, y: bytes, keep: bool = True):
    """Return ``(rows, masks)`` for strings ``x`` and ``y``: ``rows[k]`` (k = 0..len x) has bit
    l - 1 set when T(k, l) - T(k, l - 1) = 1, T being the LCS table of x[:k] and y[:l]; so
    T(k, l) is the popcount of its low l bits. ``masks`` is ``char_masks(y, set(x))``.
    Without ``keep`` only the last row is returned (in a one-item list).

    O(len x * len y / 64) in big-integer operations; memory len x * len y / 8 bytes (keep).
    """
    full = (1 << len(y)) - 1
    masks = char_masks(y, set(x))
    vector = full  # the complement of a row: Hyyro's V
    rows = [0]
    for char in x:
        match = vector & masks[char]
        vector = ((vector + match) | (vector - match)) & full
        if keep:
            rows.append(full ^ vector)
    if not keep:
        rows = [full ^ vector]
    return rows, masks


def lcs_walk(a: bytes, b: bytes, minimum: int, lengths: bool):
    """Walk back through the table as lcsCommand does; return ``(text, ranges, length)``:
    the LCS bytes, and the ranges ``[[a_start, a_end], [b_start, b_end](, length)]`` of
    at least ``minimum`` bytes (0: all). O(len a * len b / 64), see the module docstring."""
    alen, blen = len(a), len(b)
    by_rows = alen <= blen
    rows, masks = lcs_rows(a, b) if by_rows else lcs_rows(b, a)
    i, j = alen, blen
    total = level = _popcount(rows[-1])
    text = []
    ranges = []
    a_start = alen  # alen: no range under way
    a_end = b_start = b_end = 0
    while i > 0 and j > 0:
        emit = False
        if a[i - 1] == b[j - 1]:
            text.append(a[i - 1])
            if a_start == alen:
                a_start = a_end = i - 1
                b_start = b_end = j - 1
            elif a_start == i and b_start == j:
                a_start -= 1
                b_start -= 1
            else:
                emit = True
            if a_start == 0 or b_start == 0:
                emit = True
            i -= 1
            j -= 1
            level -= 1
        else:
            if a_start != alen:
                emit = True
            if by_rows:
                # rows[i] holds T(i, .) over b: step left while T(i, j - 1) == T(i, j).
                row = rows[i]
                if not (row >> (j - 1)) & 1:
                    j = ((row | masks[a[i - 1]]) & ((1 << (j - 1)) - 1)).bit_length()
                elif _popcount(rows[i - 1] & ((1 << j) - 1)) == level:
                    i -= 1
                else:
                    j -= 1
                    level -= 1
            else:
                # rows[j] holds T(., j) over a: T(i - 1, j) == T(i, j) when its bit is clear.
                column = rows[j]
                if (column >> (i - 1)) & 1:
                    j -= 1
                    level = _popcount(rows[j] & ((1 << i) - 1))
                elif _popcount(rows[j - 1] & ((1 << i) - 1)) < level:
                    # Up, and up again while T(., j) stays and no byte matches.
                    i = ((column | masks[b[j - 1]]) & ((1 << (i - 1)) - 1)).bit_length()
                else:
                    j -= 1
        if emit:
            size = a_end - a_start + 1
            if minimum == 0 or size >= minimum:
                found = [[a_start, a_end], [b_start, b_end]]
                if lengths:
                    found.append(size)
                ranges.append(found)
            a_start = alen
    text.reverse()
    return bytes(text), ranges, total


@register("lcs", -3, "readonly", 1, 2, 1)
def cmd_lcs(session, argv):
    """LCS key1 key2 [LEN] [IDX] [MINMATCHLEN len] [WITHMATCHLEN]. Refused when Redis's
    table, 4 * (len a + 1) * (len b + 1) bytes, exceeds proto-max-bulk-len; otherwise
    O(len a * len b / 64) time and len a * len b / 8 bytes here (module docstring)."""
    keyspace = session.keyspace
    a = keyspace.get_string(argv[1]) or b""
    b = keyspace.get_string(argv[2]) or b""
    want_len = want_idx = lengths = False
    minimum = 0
    index, count = 3, len(argv)
    while index < count:
        option = c_lower(argv[index])
        if option == b"idx":
            want_idx = True
        elif option == b"len":
            want_len = True
        elif option == b"withmatchlen":
            lengths = True
        elif option == b"minmatchlen" and index + 1 < count:
            minimum = max(0, parse_int(argv[index + 1]))
            index += 1
        else:
            raise CommandError(SYNTAX)
        index += 1
    if want_len and want_idx:
        raise CommandError("ERR If you want both the length and indexes, please just use IDX.")
    if len(a) >= _UINT32_MAX - 1 or len(b) >= _UINT32_MAX - 1:
        raise CommandError("ERR String too long for LCS")
    if (len(a) + 1) * (len(b) + 1) * 4 > max_bulk(session.store):
        raise CommandError("ERR Insufficient memory, transient memory for LCS exceeds "
                           "proto-max-bulk-len")
    if want_len and not want_idx:
        rows, _ = lcs_rows(a, b, keep=False) if len(a) <= len(b) else lcs_rows(b, a, keep=False)
        return _popcount(rows[-1])
    text, ranges, total = lcs_walk(a, b, minimum, lengths)
    if want_idx:
        return Pairs([(b"matches", ranges), (b"len", total)])
    return text
