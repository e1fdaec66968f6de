"""Tests for kvtwist.engine.lcs: LCS with LEN, IDX, MINMATCHLEN and WITHMATCHLEN."""

from __future__ import annotations

import random

from hypothesis import HealthCheck, given, settings, strategies as st
from twisted.trial.unittest import SynchronousTestCase

from kvtwist.engine import lcs
from kvtwist.wire.replies import Pairs
from tests.helpers import SessionMixin
from tests.redisref import DifferentialMixin


def naive_walk(a: bytes, b: bytes, minimum: int, lengths: bool):
    """lcsCommand transcribed cell by cell: the whole table, then the walk back."""
    table = [[0] * (len(b) + 1) for _ in range(len(a) + 1)]
    for i in range(1, len(a) + 1):
        for j in range(1, len(b) + 1):
            if a[i - 1] == b[j - 1]:
                table[i][j] = table[i - 1][j - 1] + 1
            else:
                table[i][j] = max(table[i - 1][j], table[i][j - 1])
    alen = len(a)
    i, j = len(a), len(b)
    text, ranges = [], []
    a_start, a_end, b_start, b_end = alen, 0, 0, 0
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
        else:
            if table[i - 1][j] > table[i][j - 1]:
                i -= 1
            else:
                j -= 1
            if a_start != alen:
                emit = True
        if emit:
            size = a_end - a_start + 1
            if minimum == 0 or size >= minimum:
                ranges.append([[a_start, a_end], [b_start, b_end]] + ([size] if lengths else []))
            a_start = alen
    return bytes(reversed(text)), ranges, table[len(a)][len(b)]


class LcsTests(SessionMixin, SynchronousTestCase):
    def test_redis_example(self):
        """The example of Redis's documentation: text, LEN and IDX replies."""
        self.call("mset", "key1", "ohmytext", "key2", "mynewtext")
        self.assertEqual(self.call("lcs", "key1", "key2"), b"mytext")
        self.assertEqual(self.call("lcs", "key1", "key2", "len"), 6)
        self.assertEqual(self.call("lcs", "key1", "key2", "idx", "minmatchlen", "4",
                                   "withmatchlen"),
                         Pairs([(b"matches", [[[4, 7], [5, 8], 4]]), (b"len", 6)]))
        self.assertEqual(self.call("lcs", "key1", "key2", "IDX"),
                         Pairs([(b"matches", [[[4, 7], [5, 8]], [[2, 3], [0, 1]]]),
                                (b"len", 6)]))

    def test_missing_keys_are_empty(self):
        """A missing key counts as an empty string."""
        self.assertEqual(self.call("lcs", "a", "b"), b"")
        self.assertEqual(self.call("lcs", "a", "b", "idx"),
                         Pairs([(b"matches", []), (b"len", 0)]))

    def test_errors(self):
        """LEN with IDX, bad options and a table past proto-max-bulk-len are refused."""
        self.call("mset", "a", "x" * 100, "b", "y" * 100)
        self.assertEqual(self.error("lcs", "a", "b", "len", "idx"),
                         "ERR If you want both the length and indexes, please just use IDX.")
        self.assertEqual(self.error("lcs", "a", "b", "minmatchlen"), "ERR syntax error")
        self.assertEqual(self.error("lcs", "a", "b", "minmatchlen", "x"),
                         "ERR value is not an integer or out of range")
        self.store.config["proto-max-bulk-len"] = "40000"
        self.assertEqual(self.error("lcs", "a", "b", "len"),
                         "ERR Insufficient memory, transient memory for LCS exceeds "
                         "proto-max-bulk-len")
        self.store.config["proto-max-bulk-len"] = str(101 * 101 * 4)
        self.assertEqual(self.call("lcs", "a", "b", "len"), 0)

    @settings(max_examples=300, deadline=None)
    @given(st.binary(max_size=40), st.binary(max_size=40), st.integers(0, 4), st.booleans(),
           st.sampled_from([b"ab", b"abc", b"\x00\x01\x02\x03"]))
    def test_matches_the_cell_by_cell_table(self, a, b, minimum, lengths, alphabet):
        """The bit-parallel walk gives exactly what the cell-by-cell table gives."""
        a = bytes(alphabet[byte % len(alphabet)] for byte in a)
        b = bytes(alphabet[byte % len(alphabet)] for byte in b)
        self.assertEqual(lcs.lcs_walk(a, b, minimum, lengths), naive_walk(a, b, minimum, lengths))

    def test_long_strings(self):
        """Long, lopsided strings agree with the table too (runs skipped in one step)."""
        rng = random.Random(7)
        for alen, blen in ((300, 7), (7, 300), (200, 200), (1, 500), (500, 1)):
            a = bytes(rng.choice(b"abcd") for _ in range(alen))
            b = bytes(rng.choice(b"abcd") for _ in range(blen))
            self.assertEqual(lcs.lcs_walk(a, b, 0, True), naive_walk(a, b, 0, True))


class LcsDifferentialTests(DifferentialMixin, SynchronousTestCase):
    @settings(max_examples=150, deadline=None,
              suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
    @given(st.binary(max_size=30), st.binary(max_size=30),
           st.sampled_from([b"ab", b"abc", b"abcdefgh"]),
           st.lists(st.sampled_from([b"LEN", b"idx", b"WITHMATCHLEN", b"minmatchlen",
                                     b"2", b"0", b"-3", b"x", b"bogus"]), max_size=4))
    def test_lcs(self, a, b, alphabet, options):
        """LCS of generated strings and options answers as redis-server, RESP2 and RESP3."""
        self.reset()
        a = bytes(alphabet[byte % len(alphabet)] for byte in a)
        b = bytes(alphabet[byte % len(alphabet)] for byte in b)
        self.compare([b"mset", b"a", a, b"b", b])
        self.compare([b"lcs", b"a", b"b"] + options)
        self.compare([b"lcs", b"a", b"b", b"idx", b"withmatchlen"] + options)

    def test_resp3_map(self):
        """In RESP3 the IDX reply is a map, as redis-server sends it."""
        self.redis.call([b"HELLO", b"3"])
        self.session.execute([b"HELLO", b"3"])
        self.compare([b"mset", b"a", b"ohmytext", b"b", b"mynewtext"], resp3=True)
        self.compare([b"lcs", b"a", b"b", b"idx", b"withmatchlen"], resp3=True)
        self.compare([b"lcs", b"a", b"nokey", b"idx"], resp3=True)

    def test_memory_error(self):
        """The table-size error follows proto-max-bulk-len on both servers."""
        self.compare([b"config", b"set", b"proto-max-bulk-len", b"1mb"])
        self.session.store.config["proto-max-bulk-len"] = "1048576"
        self.compare([b"set", b"a", b"x" * 600])
        self.compare([b"set", b"b", b"y" * 600])
        self.compare([b"lcs", b"a", b"b", b"len"])
        self.compare([b"set", b"b", b"y" * 300])
        self.compare([b"lcs", b"a", b"b", b"len"])
