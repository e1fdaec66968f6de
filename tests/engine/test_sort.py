"""Tests for kvtwist.engine.sort: SORT and SORT_RO against a real redis-server, byte for byte."""

from __future__ import annotations

import random

from twisted.trial.unittest import SynchronousTestCase

from kvtwist.engine import sort
from kvtwist.wire.replies import to_resp
from tests.redisref import DifferentialMixin
from tests.respparse import parse_reply


class StrtodTests(SynchronousTestCase):
    """strtod reads numbers as C's strtod, and refuses what Redis refuses."""

    def test_accepted(self):
        """Decimal, hex, inf, leading spaces, empty text and text after a NUL byte."""
        for text, number in [(b"1.5", 1.5), (b"-3", -3.0), (b"+.5", 0.5), (b"1e3", 1000.0),
                             (b"0x1A", 26.0), (b"0x1p4", 16.0), (b"inf", float("inf")),
                             (b"-Infinity", float("-inf")), (b" 5", 5.0), (b"", 0.0),
                             (b"7\x00junk", 7.0), (b"0", 0.0), (b"0e5", 0.0), (b"5.", 5.0)]:
            self.assertEqual(sort.strtod(text), number, text)

    def test_refused(self):
        """Trailing text, NaN, overflow, underflow (to zero or subnormal), spaces alone."""
        for text in (b"5 ", b" ", b"nan", b"1_0", b"1e", b"0x", b"infinit", b"1e400",
                     b"1e-400", b"1e-310", b"abc", b"0x1p99999"):
            self.assertIsNone(sort.strtod(text), text)


class SortDifferentialTests(DifferentialMixin, SynchronousTestCase):
    """SORT's replies and errors match redis-server 7.0's."""

    def run_both(self, argv, unordered: bool = False) -> None:
        theirs = self.redis.call(list(argv))
        ours = to_resp(self.session.execute(list(argv)))
        if unordered and ours != theirs:
            self.assertEqual(sorted(parse_reply(ours), key=repr),
                             sorted(parse_reply(theirs), key=repr), argv)
        else:
            self.assertEqual(ours, theirs, argv)

    def setup_data(self) -> None:
        steps = [[b"sadd", b"nums", b"3", b"1", b"-2", b"10", b"2.5", b"0x10", b"1e2"],
                 [b"sadd", b"ints", b"5", b"3", b"9", b"1"],
                 [b"sadd", b"words", b"pear", b"apple", b"fig", b"Banana", b"a\x00z"],
                 [b"sadd", b"bad", b"1", b"x", b"2"],
                 [b"sadd", b"big", b"1e400", b"2"],
                 [b"set", b"str", b"v"],
                 [b"set", b"w_3", b"30"], [b"set", b"w_1", b"10"], [b"set", b"w_-2", b"-5"],
                 [b"set", b"w_10", b"x"], [b"set", b"v_5", b"50"], [b"set", b"v_3", b"1.5"],
                 [b"set", b"v_9", b"-1"], [b"sadd", b"v_1", b"notastring"],
                 [b"set", b"n_pear", b"b"], [b"set", b"n_fig", b"a"], [b"set", b"n_apple", b"c"],
                 [b"set", b"t_5", b"same"], [b"set", b"t_3", b"same"]]
        for argv in steps:
            self.run_both(argv)

    def test_errors(self):
        """Syntax, LIMIT, WRONGTYPE, conversion errors and SORT_RO's refusal of STORE."""
        self.setup_data()
        for argv in ([b"sort", b"str"], [b"sort", b"nums", b"limit", b"1"],
                     [b"sort", b"nums", b"limit", b"x", b"1"],
                     [b"sort", b"nums", b"limit", b"0", b"1.5"], [b"sort", b"nums", b"bogus"],
                     [b"sort", b"nums", b"by"], [b"sort", b"nums", b"get"],
                     [b"sort", b"nums", b"store"], [b"sort_ro", b"nums", b"store", b"d"],
                     [b"sort", b"bad"], [b"sort", b"big"], [b"sort", b"bad", b"limit", b"0",
                                                                b"1"],
                     [b"sort", b"ints", b"by", b"w_*"], [b"sort", b"str", b"bogus"],
                     [b"sort", b"nums", b"by", b"w_*", b"limit", b"x", b"y"],
                     [b"sort", b"bad", b"store", b"d"], [b"exists", b"d"], [b"sort"],
                     [b"sort_ro", b"str"]):
            self.run_both(argv)

    def test_sorting(self):
        """Numeric, ALPHA, DESC, LIMIT edges, BY (strings, missing keys, other types),
        GET (#, missing, no star), STORE refusing nothing but the list type."""
        self.setup_data()
        cases = [[b"sort", b"nums"], [b"sort", b"nums", b"desc"], [b"sort", b"ints"],
                 [b"sort", b"words", b"alpha"], [b"sort", b"words", b"alpha", b"desc"],
                 [b"sort", b"nums", b"alpha"], [b"sort", b"none"], [b"sort_ro", b"none"],
                 [b"sort", b"nums", b"limit", b"2", b"3"],
                 [b"sort", b"nums", b"limit", b"-5", b"2"],
                 [b"sort", b"nums", b"limit", b"2", b"-1"], [b"sort", b"nums", b"limit", b"7",
                                                            b"1"],
                 [b"sort", b"nums", b"limit", b"100", b"1"], [b"sort", b"nums", b"limit", b"0",
                                                              b"0"],
                 [b"sort", b"nums", b"desc", b"limit", b"1", b"100"],
                 [b"sort", b"nums", b"LIMIT", b"9223372036854775807", b"9223372036854775807"],
                 [b"sort", b"nums", b"limit", b"-9223372036854775808", b"3"],
                 [b"sort", b"ints", b"by", b"v_*"], [b"sort", b"ints", b"by", b"v_*", b"desc"],
                 [b"sort", b"ints", b"by", b"v_*", b"get", b"#", b"get", b"v_*"],
                 [b"sort", b"ints", b"by", b"t_*", b"desc"],
                 [b"sort", b"ints", b"get", b"v_*", b"get", b"nostar", b"get", b"#"],
                 [b"sort", b"ints", b"get", b"#\x00x"], [b"sort", b"ints", b"get", b"v_*->f"],
                 [b"sort", b"words", b"by", b"n_*", b"alpha"],
                 [b"sort", b"words", b"by", b"n_*", b"alpha", b"desc", b"limit", b"1", b"3"],
                 [b"sort", b"ints", b"by", b"v_*", b"alpha"], [b"sort", b"ints", b"ASC", b"desc",
                                                               b"asc"],
                 [b"sort_ro", b"ints"],
                 [b"sort", b"ints", b"by", b"nosort", b"limit", b"1", b"2"],
                 [b"sort", b"ints", b"by", b"nosort", b"desc"],
                 [b"sort", b"none", b"store", b"d"], [b"sort", b"ints", b"limit", b"9", b"9",
                                                      b"store", b"d"], [b"exists", b"d"],
                 [b"sort", b"ints", b"by", b"nosort", b"get", b"v_*"],
                 [b"sort", b"ints", b"by", b"nosort", b"store", b"d"],
                 [b"lrange", b"d", b"0", b"-1"]]
        for argv in cases:
            self.run_both(argv)

    def test_hash_fields(self):
        """BY and GET read hash fields with ``->``; a missing field, a non-hash key, a pattern
        ending in ``->`` and a string where a hash is expected read nothing."""
        self.setup_data()
        for argv in ([b"hset", b"h_5", b"w", b"9", b"name", b"five"],
                     [b"hset", b"h_3", b"w", b"4"], [b"hset", b"h_9", b"w", b"x"],
                     [b"hset", b"h_1", b"name", b"one"], [b"set", b"s_9", b"str"],
                     [b"sort", b"ints", b"by", b"h_*->w", b"get", b"#", b"get", b"h_*->name"],
                     [b"sort", b"ints", b"by", b"h_*->name", b"alpha", b"desc"],
                     [b"sort", b"ints", b"get", b"h_*->", b"get", b"s_*->w", b"get", b"h_*"],
                     [b"sort", b"ints", b"by", b"h_*->w", b"limit", b"0", b"2"],
                     [b"sort", b"ints", b"by", b"h_*->w", b"desc", b"limit", b"1", b"9"]):
            self.run_both(argv)

    def test_nosort_hashtable_order(self):
        """BY nosort over a hashtable set gives its members in some order, as Redis."""
        self.setup_data()
        self.run_both([b"sort", b"words", b"by", b"nosort"], unordered=True)

    def test_random_sorts(self):
        """Random SORTs of integer and mixed sets with weights give the same replies."""
        rng = random.Random(5)
        for _ in range(10):
            self.reset()
            members = [b"%d" % rng.randrange(-50, 50) for _ in range(30)]
            self.run_both([b"sadd", b"s"] + members)
            weights = rng.sample(range(1000), len(set(members)))
            alpha = rng.random() < 0.3  # ALPHA BY weights: every member has a distinct one
            for member, weight in zip(sorted(set(members)), weights):
                if alpha or rng.random() < 0.7:
                    self.run_both([b"set", b"w_" + member, b"%d" % weight])
            for _ in range(10):
                argv = [b"sort", b"s"]
                if rng.random() < 0.5:
                    argv += [b"by", b"w_*"]
                if alpha:
                    argv += [b"alpha"]
                if rng.random() < 0.5:
                    argv += [b"desc"]
                if rng.random() < 0.5:
                    argv += [b"limit", b"%d" % rng.randrange(-2, 20),
                             b"%d" % rng.randrange(-2, 20)]
                if rng.random() < 0.5:
                    argv += [b"get", b"#", b"get", b"w_*"]
                self.run_both(argv)

    def test_getkeys(self):
        """COMMAND GETKEYS finds SORT's key and its last STORE destination, as sortGetKeys."""
        for text in (b"sort abc store def", b"sort_ro abc", b"sort abc store", b"sort abc by x",
                     b"sort abc store invalid store stillbad store def",
                     b"sort abc limit 0 1 store x by y get z store def",
                     b"sort abc get store store def", b"sort abc limit store x y"):
            self.run_both([b"command", b"getkeys"] + text.split())
            self.run_both([b"command", b"getkeysandflags"] + text.split())

    def test_sorted_sets(self):
        """A sorted set sorts by its members; BY nosort keeps score order (ASC/DESC, LIMIT);
        BY and GET read hash fields for its members."""
        for argv in ([b"zadd", b"z", b"1", b"a", b"5", b"b", b"2", b"c", b"10", b"d", b"3", b"e"],
                     [b"zadd", b"zn", b"5", b"10", b"1", b"30", b"3", b"2", b"-inf", b"7"],
                     [b"hset", b"h_a", b"w", b"2"], [b"hset", b"h_b", b"w", b"1"],
                     [b"sort", b"z", b"alpha"], [b"sort", b"z"], [b"sort", b"z", b"by", b"nosort"],
                     [b"sort", b"z", b"by", b"nosort", b"desc"],
                     [b"sort", b"z", b"by", b"nosort", b"limit", b"1", b"2"],
                     [b"sort", b"z", b"by", b"nosort", b"desc", b"limit", b"1", b"2"],
                     [b"sort", b"z", b"by", b"nosort", b"limit", b"4", b"9"],
                     [b"sort", b"z", b"by", b"nosort", b"limit", b"5", b"9"],
                     [b"sort", b"z", b"by", b"nosort", b"limit", b"-10", b"100"],
                     [b"sort", b"z", b"by", b"nosort", b"limit", b"0", b"0"],
                     [b"sort", b"zn"], [b"sort", b"zn", b"desc", b"limit", b"1", b"2"],
                     [b"sort", b"z", b"by", b"h_*->w", b"get", b"#", b"get", b"h_*->w"],
                     [b"sort_ro", b"z", b"by", b"nosort", b"get", b"h_*->w"]):
            self.run_both(argv)


class SortTypesDifferentialTests(DifferentialMixin, SynchronousTestCase):
    """SORT over lists and sorted sets, BY/GET on hash fields, STORE writing a list."""

    run_both = SortDifferentialTests.run_both

    def test_lists_zsets_hashes_store(self):
        """Native orders with BY nosort (ASC/DESC, LIMIT), sorted sets by member, hash fields
        in BY and GET, and STORE's list (GET misses stored as empty strings)."""
        setup = [[b"rpush", b"l", b"3", b"1", b"20", b"-4", b"1", b"0x8"],
                 [b"zadd", b"z", b"1", b"a", b"5", b"b", b"2", b"c", b"10", b"d", b"3", b"e"],
                 [b"zadd", b"zn", b"5", b"10", b"1", b"30", b"3", b"2"],
                 [b"hset", b"h_3", b"w", b"9", b"name", b"three"],
                 [b"hset", b"h_1", b"w", b"4"], [b"hset", b"h_20", b"w", b"x"],
                 [b"set", b"s_-4", b"1"], [b"hset", b"h_a", b"w", b"2"],
                 [b"hset", b"h_b", b"w", b"1"]]
        cases = [[b"sort", b"l"], [b"sort", b"l", b"desc"], [b"sort", b"l", b"alpha"],
                 [b"sort", b"l", b"by", b"nosort"], [b"sort", b"l", b"by", b"nosort", b"desc"],
                 [b"sort", b"l", b"by", b"nosort", b"limit", b"1", b"3"],
                 [b"sort", b"l", b"by", b"nosort", b"desc", b"limit", b"1", b"3"],
                 [b"sort", b"l", b"by", b"nosort", b"limit", b"9", b"3"],
                 [b"sort", b"l", b"by", b"nosort", b"limit", b"-3", b"2"],
                 [b"sort", b"z", b"alpha"], [b"sort", b"z", b"by", b"nosort"],
                 [b"sort", b"z", b"by", b"nosort", b"desc"],
                 [b"sort", b"z", b"by", b"nosort", b"limit", b"1", b"2"],
                 [b"sort", b"z", b"by", b"nosort", b"desc", b"limit", b"1", b"2"],
                 [b"sort", b"z", b"by", b"nosort", b"limit", b"4", b"9"], [b"sort", b"zn"],
                 [b"sort", b"zn", b"desc"], [b"sort", b"z"],
                 [b"sort", b"l", b"by", b"h_*->w"], [b"sort", b"l", b"by", b"h_*->w", b"alpha"],
                 [b"sort", b"l", b"by", b"h_*->w", b"get", b"#", b"get", b"h_*->name",
                  b"get", b"h_*->", b"get", b"s_*"],
                 [b"sort", b"z", b"by", b"h_*->w", b"get", b"h_*->w"],
                 [b"sort", b"l", b"by", b"h_*"], [b"sort", b"l", b"get", b"h_*"],
                 [b"sort", b"l", b"store", b"dst"], [b"lrange", b"dst", b"0", b"-1"],
                 [b"type", b"dst"], [b"sort", b"l", b"get", b"h_*->name", b"store", b"dst"],
                 [b"lrange", b"dst", b"0", b"-1"], [b"sort", b"z", b"by", b"nosort",
                                                    b"store", b"dst"],
                 [b"lrange", b"dst", b"0", b"-1"], [b"sadd", b"st", b"b", b"a", b"c"],
                 [b"sort", b"st", b"by", b"nosort", b"store", b"dst"],
                 [b"lrange", b"dst", b"0", b"-1"], [b"sort", b"nothing", b"store", b"dst"],
                 [b"exists", b"dst"], [b"sort", b"l", b"store", b"dst"],
                 [b"expire", b"dst", b"100"], [b"sort", b"l", b"store", b"dst"],
                 [b"ttl", b"dst"], [b"sort", b"h_3"]]
        for argv in setup + cases:
            self.run_both(argv)
