"""Tests for kvtwist.engine.zsettype: the sorted-set value, its operations and undo, and
its life in the journal, snapshots, exports and the generic key commands."""

from __future__ import annotations

import errno
import os
import random
import shutil
import subprocess
import tempfile

from hypothesis import given
from hypothesis import strategies as st
from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from kvtwist.engine.store import Store
from kvtwist.engine.types import OPS, ZSET
from kvtwist.engine.zsettype import (
    LIMITS, OP_ADD, OP_INCR, OP_POPMAX, OP_POPMIN, OP_REM, OP_REMRANK, PER_MEMBER, ZSet,
    rank_key, scan_step, score_prefix)
from kvtwist.storage import fsck
from tests.storage.test_fsck import pipe_into_redis
from tests.storage.test_journal import GroupCommitTests, StoreHarness


def state(value: ZSet) -> tuple:
    """Everything observable about a value."""
    return (dict(value.scores), list(value.ranked), value.items(0, len(value)), value.nbytes,
            value.big, len(value))


_SCORES = st.one_of(
    st.floats(allow_nan=False),
    st.sampled_from([0.0, -0.0, 5e-324, -5e-324, 1.0, float("inf"), float("-inf")]))


class RankKeyTests(SynchronousTestCase):
    @given(st.lists(st.tuples(_SCORES, st.binary(max_size=6)), max_size=40))
    def test_keys_sort_as_redis_skiplist(self, pairs):
        """Rank keys sort as (score, member) tuples do: score (-0 equal to 0), then member
        bytes by memcmp, then length."""
        by_tuple = sorted(pairs, key=lambda pair: (pair[0] + 0.0, pair[1]))
        by_key = sorted(pairs, key=lambda pair: rank_key(*pair))
        self.assertEqual([(s + 0.0, m) for s, m in by_key],
                         [(s + 0.0, m) for s, m in by_tuple])

    @given(_SCORES, _SCORES, st.binary(max_size=4))
    def test_score_bounds(self, score, bound, member):
        """A member with ``score`` starts at or after ``bound``'s first rank exactly when
        score >= bound, and after its last exactly when score > bound."""
        value = ZSet()
        OPS[(ZSET, OP_ADD)](value, (repr(score).encode(), member))
        self.assertEqual(value.score_start(bound, False), 0 if score >= bound else 1)
        self.assertEqual(value.score_start(bound, True), 0 if score > bound else 1)
        self.assertEqual(value.score_end(bound, False), 1 if score <= bound else 0)
        self.assertEqual(value.score_end(bound, True), 1 if score < bound else 0)

    def test_prefix_is_eight_bytes_and_zero_has_one(self):
        """Every score's prefix is 8 bytes, and -0.0 shares 0.0's."""
        self.assertEqual(score_prefix(-0.0), score_prefix(0.0))
        self.assertEqual({len(score_prefix(s)) for s in (float("-inf"), -1.5, 0.0, 1e308)},
                         {8})


class OperationTests(SynchronousTestCase):
    def setUp(self):
        self.addCleanup(LIMITS.update, dict(LIMITS))

    def test_operations_and_their_inverses(self):
        """Each operation's inverse restores the value exactly (scores, order, size, encoding)."""
        rng = random.Random(3)
        value = ZSet()
        for step in range(400):
            before = state(value)
            members = [b"m%d" % rng.randrange(60) for _ in range(rng.randrange(1, 4))]
            kind = rng.randrange(4)
            if kind == 0 or not len(value):
                args = []
                for member in dict.fromkeys(members):
                    score = rng.choice([0.0, -0.0, 1.5, float("inf"), rng.random()])
                    args += [repr(score).encode(), member]
                opcode = rng.choice([OP_ADD, OP_INCR])
            elif kind == 1:
                opcode = OP_REM
                args = [member for member in dict.fromkeys(members) if member in value.scores]
            else:
                opcode = rng.choice([OP_REMRANK, OP_POPMIN, OP_POPMAX])
                start = rng.randrange(len(value))
                args = [b"%d" % start, b"%d" % rng.randrange(start, len(value))]
            _, inverse = OPS[(ZSET, opcode)](value, tuple(args))
            self.assertEqual(value.items(0, len(value)),
                             sorted((s, m) for m, s in value.scores.items()))
            if step % 3 == 0:
                inverse()
                self.assertEqual(state(value), before)

    def test_pop_at_an_end_keeps_no_positional_index(self):
        """Popping a few members at either end takes them off the ends (the SortedList
        builds no positional index, which every later add and remove would then update),
        and gives the same ranks, in the same order, as a cut of those ranks."""
        value = ZSet()
        args = []
        for index in range(5000):
            args += [b"%d" % (index % 7), b"m%04d" % index]
        OPS[(ZSET, OP_ADD)](value, tuple(args))
        expected = value.items(0, len(value))
        first, _ = OPS[(ZSET, OP_POPMIN)](value, (b"0", b"2"))
        last, inverse = OPS[(ZSET, OP_POPMAX)](value, (b"4993", b"4996"))
        self.assertEqual(first, expected[:3])
        self.assertEqual(last, expected[-4:])
        self.assertEqual(value.items(0, len(value)), expected[3:-4])
        self.assertGreater(len(value.ranked._lists), 1)
        self.assertFalse(value.ranked._index)
        inverse()
        self.assertEqual(value.items(0, len(value)), expected[3:])
        self.assertEqual(len(value.scores), len(expected) - 3)

    def test_equal_score_changes_nothing(self):
        """A score equal to the member's (even -0 for 0) leaves it as it was, as Redis's
        zsetAdd, and its inverse changes nothing either."""
        value = ZSet()
        value.big = True
        OPS[(ZSET, OP_ADD)](value, (b"0", b"a", b"2", b"b"))
        before = state(value)
        added, inverse = OPS[(ZSET, OP_ADD)](value, (b"-0.0", b"a", b"2", b"b"))
        self.assertEqual((added, state(value)), (0, before))
        self.assertEqual(repr(value.scores[b"a"]), "0.0")
        inverse()
        self.assertEqual(state(value), before)

    def test_nbytes_and_encoding(self):
        """nbytes counts member bytes plus PER_MEMBER; a long member or too many members
        make it a skiplist for good, and a listpack stores -0 as 0."""
        value = ZSet()
        OPS[(ZSET, OP_ADD)](value, (b"-0.0", b"ab", b"1.0", b"c"))
        self.assertEqual(value.nbytes, 3 + 2 * PER_MEMBER)
        self.assertEqual(repr(value.scores[b"ab"]), "0.0")
        self.assertEqual(value.encoding(), b"listpack")
        OPS[(ZSET, OP_ADD)](value, (b"-0.0", b"x" * 65))
        self.assertEqual(value.encoding(), b"skiplist")
        self.assertEqual(repr(value.scores[b"x" * 65]), "-0.0")
        OPS[(ZSET, OP_REM)](value, (b"x" * 65,))
        self.assertEqual(value.encoding(), b"skiplist")
        self.assertEqual(ZSet.from_pairs(value.scores.items()).encoding(), b"listpack")

    def test_flat_round_trip(self):
        """flatten gives member, score-text pairs that from_flat reads back exactly."""
        value = ZSet.from_pairs([(b"a", 0.1), (b"b", float("-inf")), (b"c", 1e300),
                                 (b"d" * 70, -0.0)])
        flat = ZSet.flatten(value.frozen())
        self.assertEqual(flat[:4], [b"a", b"0.1", b"b", b"-inf"])
        again = ZSet.from_flat(flat)
        self.assertEqual(state(again), state(value))
        for bad in ([b"a"], [b"a", b"x"], [b"a", b"nan"], [b"a", b"1", b"a", b"2"]):
            self.assertRaises(ValueError, ZSet.from_flat, bad)

    def test_export_commands_chunk(self):
        """export_commands writes ZADDs of at most 100 members."""
        value = ZSet.from_pairs([(b"m%d" % i, float(i)) for i in range(250)])
        commands = value.export_commands(b"k")
        self.assertEqual([len(argv) for argv in commands], [202, 202, 102])
        self.assertEqual(commands[0][:4], [b"ZADD", b"k", b"0.0", b"m0"])

    def test_copy_is_independent(self):
        """copy() shares nothing with the original."""
        value = ZSet.from_pairs([(b"a", 1.0)])
        other = value.copy()
        OPS[(ZSET, OP_ADD)](other, (b"2.0", b"b"))
        self.assertEqual(len(value), 1)
        self.assertEqual(len(other), 2)

    def test_scan_steps_cover_every_member(self):
        """ZSCAN steps over a large set return each member, with changes in between."""
        value = ZSet.from_pairs([(b"m%d" % i, float(i)) for i in range(1000)])
        seen, cursor = set(), 0
        while True:
            cursor, members = scan_step(value, cursor, 10)
            seen.update(members)
            OPS[(ZSET, OP_ADD)](value, (b"1.0", b"new%d" % len(seen)))
            if cursor == 0:
                break
        self.assertTrue({b"m%d" % i for i in range(1000)} <= seen)


class KeyCommandTests(SynchronousTestCase):
    def setUp(self):
        self.session = Store(Clock()).new_session()

    def call(self, *argv):
        return self.session.execute([a.encode() if isinstance(a, str) else a for a in argv])

    def test_generic_commands(self):
        """TYPE, OBJECT ENCODING, COPY, RENAME, MOVE, EXPIRE, DEL and SCAN TYPE see sorted sets."""
        self.call("zadd", "z", "1", "a", "2", "b")
        self.assertEqual(self.call("type", "z").text, b"zset")
        self.assertEqual(self.call("object", "encoding", "z"), b"listpack")
        self.assertEqual(self.call("copy", "z", "c"), 1)
        self.call("zadd", "c", "3", "c")
        self.assertEqual(self.call("zcard", "z"), 2)
        self.assertEqual(self.call("rename", "c", "r").text, b"OK")
        self.assertEqual(self.call("scan", "0", "type", "zset")[1], [b"z", b"r"])
        self.assertEqual(self.call("move", "r", "1"), 1)
        self.assertEqual(self.call("expire", "z", "100"), 1)
        self.assertEqual(self.call("get", "z").message[:9], "WRONGTYPE")
        self.assertEqual(self.call("del", "z"), 1)
        self.call("select", "1")
        self.assertEqual(self.call("zcard", "r"), 3)

    def test_emptied_set_disappears_with_its_expiry(self):
        """A set emptied by ZREM, ZPOPMIN or ZREMRANGEBYSCORE is removed."""
        for argv in (("zrem", "z", "a", "b"), ("zpopmin", "z", "5"),
                     ("zremrangebyscore", "z", "-inf", "+inf")):
            self.call("zadd", "z", "1", "a", "2", "b")
            self.call("expire", "z", "100")
            self.call(*argv)
            self.assertEqual(self.call("exists", "z"), 0)
            self.assertEqual(self.call("ttl", "z"), -2)


def contents(h) -> list:
    """Return each database's keys with their values' state and expiry."""
    found = []
    for keyspace in h.store.databases:
        for key in sorted(keyspace.data):
            value = keyspace.data[key]
            found.append((keyspace.index, key, state(value) if isinstance(value, ZSet) else value,
                          keyspace.expire_of(key)))
    return found


class PersistenceTests(SynchronousTestCase):
    mktemp = GroupCommitTests.mktemp

    def fill(self, h) -> None:
        h.run("zadd", "z", "1", "a", "2.5", "b", "-inf", "c", "-0", "d")
        h.run("zincrby", "z", "0.1", "a")
        h.run("zadd", "big", *[x for i in range(300) for x in ("%d" % i, "m%d" % i)])
        h.run("zrem", "big", "m5", "m7")
        h.run("zpopmax", "big", "3")
        h.run("zremrangebyscore", "big", "10", "(20")
        h.run("zunionstore", "u", "2", "z", "big", "weights", "2", "1")
        h.run("zrangestore", "r", "big", "0", "4")
        h.run("pexpireat", "r", "4102444800000")
        h.run("zpopmin", "gone")

    def test_replay(self):
        """Sorted-set writes replay from the journal to the same state."""
        h = StoreHarness(self)
        self.fill(h)
        h.turn()
        expected = contents(h)
        again = h.reload()
        self.assertEqual(contents(again), expected)
        self.assertEqual(again.run("zscore", "z", "a").text, b"1.1000000000000001")
        self.assertEqual(again.run("object", "encoding", "big"), b"skiplist")

    def test_compaction(self):
        """A snapshot taken with sorted-set writes pending reloads to the same state."""
        h = StoreHarness(self)
        self.fill(h)
        h.turn()
        h.run("zadd", "z", "9", "pending")
        d = h.journal.compact()
        h.run("zrem", "z", "b")
        h.turn()
        self.assertGreater(self.successResultOf(d), 0)
        expected = contents(h)
        again = h.reload()
        self.assertEqual(contents(again), expected)
        self.assertEqual(contents(again.reload()), expected)

    def test_rollback(self):
        """A sorted-set write the disk refuses leaves the value exactly as before."""
        h = StoreHarness(self)
        self.fill(h)
        h.turn()
        before = {key: state(h.store.keyspace.data[key]) for key in (b"z", b"big")}
        h.ops.fault, h.ops.only = errno.ENOSPC, "write"
        h.run("zadd", "z", "5", "new", "7", "a")
        h.run("zpopmin", "z", "10")
        h.run("zremrangebyrank", "big", "0", "-1")
        h.run("zincrby", "big", "1", "m100")
        h.turn()
        h.ops.fault = None
        after = {key: state(h.store.keyspace.data[key]) for key in (b"z", b"big")}
        self.assertEqual(after, before)

    @staticmethod
    def text(reply) -> bytes:
        """Return a ZRANGE WITHSCORES reply as redis-cli prints it raw."""
        return b"".join((item if item.__class__ is bytes else item.text) + b"\n"
                        for item in reply)

    def test_check_and_export(self):
        """kvtwist check counts sorted sets; the RESP export loads into redis-server equal."""
        h = StoreHarness(self, databases=16)
        self.fill(h)
        h.turn()
        expected = {key: self.text(h.run("zrange", key, "0", "-1", "withscores"))
                    for key in (b"z", b"big", b"u", b"r")}
        h.stop()
        directory = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, directory, True)
        for name in os.listdir(h.directory):
            if name != "LOCK":
                shutil.copy(os.path.join(h.directory, name), directory)
        self.assertIn("4 keys: OK", fsck.check(directory).lines[-1])
        sock, piped = pipe_into_redis(self, directory)
        self.assertIn(b"errors: 0", piped.stdout)
        for key in (b"z", b"big", b"u", b"r"):
            theirs = subprocess.run(["redis-cli", "-s", sock, "zrange", key, "0", "-1",
                                     "withscores"], capture_output=True).stdout
            self.assertEqual(theirs, expected[key], key)
        ttl = subprocess.run(["redis-cli", "-s", sock, "ttl", "r"], capture_output=True).stdout
        self.assertGreater(int(ttl), 0)


class ReplyTests(SynchronousTestCase):
    def test_long_member_list_is_streamed(self):
        """ZRANGE of more than STREAM_MIN members (no scores) is a Streamed reply."""
        from kvtwist.wire.replies import STREAM_MIN, Streamed
        session = Store(Clock()).new_session()
        members = [x for i in range(STREAM_MIN + 1) for x in (b"%d" % i, b"m%d" % i)]
        session.execute([b"zadd", b"z"] + members)
        reply = session.execute([b"zrange", b"z", b"0", b"-1"])
        self.assertIsInstance(reply, Streamed)
        self.assertEqual(reply.whole()[:2], [b"m0", b"m1"])
