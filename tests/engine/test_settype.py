"""Tests for kvtwist.engine.settype: the set value, its operations and undo, its RDB codec, and
its persistence (journal replay, compaction, rollback, check, export)."""

from __future__ import annotations

import errno
import random
import shutil
import subprocess
import tempfile

from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from kvtwist.engine import rdb, settype
from kvtwist.engine.settype import SADD, SPOP, SREM, SetValue
from kvtwist.engine.store import Store
from kvtwist.engine.types import OPS, SET, TYPES
from kvtwist.storage import fsck
from kvtwist.storage.typedrecords import decode_typed, typed_payload
from kvtwist.wire.replies import to_resp
from tests.redisref import RawConnection, start_redis_or_skip
from tests.respparse import parse_reply
from tests.storage.test_fsck import pipe_into_redis
from tests.storage.test_journal import StoreHarness


def apply(value, opcode, *members):
    """Run operation ``opcode`` on ``value``; return its (result, inverse)."""
    return OPS[(SET, opcode)](value, tuple(members))


def state(value) -> tuple:
    """Return everything a set holds, for exact before/after comparisons."""
    return (list(value.items), dict(value.index), value.nbytes, value.intset)


class ValueTests(SynchronousTestCase):
    """The value class: layout, encoding, copies and the flat record form."""

    def test_registered(self):
        """The set type is registered under code 3 with TYPE "set"."""
        self.assertIs(TYPES[SET], SetValue)
        self.assertEqual(SetValue.type_name, b"set")

    def test_is_int(self):
        """Only string2ll's canonical 64-bit integers count as intset members."""
        for good in (b"0", b"-1", b"42", b"9223372036854775807", b"-9223372036854775808"):
            self.assertTrue(settype.is_int(good), good)
        for bad in (b"", b"-0", b"01", b"+1", b" 1", b"1 ", b"1_0", b"1.0", b"a",
                    b"9223372036854775808", b"-9223372036854775809", b"0x10"):
            self.assertFalse(settype.is_int(bad), bad)

    def test_encoding_rules(self):
        """intset while all members are integers and at most 512; never back once hashtable."""
        value = SetValue()
        apply(value, SADD, *[b"%d" % i for i in range(512)])
        self.assertEqual(value.encoding(), b"intset")
        apply(value, SADD, b"512")
        self.assertEqual(value.encoding(), b"hashtable")
        apply(value, SREM, b"512", b"511")
        self.assertEqual(value.encoding(), b"hashtable")
        small = SetValue([b"1", b"2"])
        apply(small, SADD, b"x")
        apply(small, SREM, b"x")
        self.assertEqual(small.encoding(), b"hashtable")
        self.assertEqual(SetValue([b"1", b"2"]).encoding(), b"intset")

    def test_intset_members_in_numeric_order(self):
        """An intset lists its members in ascending numeric order, as Redis's intset."""
        value = SetValue([b"10", b"-3", b"2", b"100"])
        self.assertEqual(value.in_order(), [b"-3", b"2", b"10", b"100"])
        self.assertEqual(SetValue([b"b", b"a"]).in_order(), [b"b", b"a"])

    def test_nbytes(self):
        """nbytes is the members' bytes plus PER_MEMBER each, kept by every operation."""
        value = SetValue([b"abc", b"de"])
        self.assertEqual(value.nbytes, 5 + 2 * settype.PER_MEMBER)
        apply(value, SADD, b"xyzw")
        apply(value, SREM, b"abc")
        self.assertEqual(value.nbytes, 6 + 2 * settype.PER_MEMBER)

    def test_copy_keeps_encoding_and_is_independent(self):
        """COPY's copy keeps the encoding (even hashtable of integers) and shares nothing."""
        value = SetValue([b"1", b"x"])
        apply(value, SREM, b"x")
        twin = value.copy()
        self.assertEqual(twin.encoding(), b"hashtable")
        apply(twin, SADD, b"2")
        self.assertEqual(value.in_order(), [b"1"])

    def test_flat_round_trip(self):
        """flatten/from_flat round-trip through a TYPED record; empty or repeated are refused."""
        value = SetValue([b"a", b"\x00\xff", b"7"])
        effect = decode_typed(typed_payload(b"k", value, 5))
        self.assertEqual(effect[1:], (b"k", effect[2], 5))
        self.assertEqual(state(effect[2]), state(value))
        self.assertRaises(ValueError, SetValue.from_flat, [])
        self.assertRaises(ValueError, SetValue.from_flat, [b"a", b"a"])

    def test_export_commands_chunked(self):
        """export_commands writes SADDs of at most 100 members."""
        value = SetValue([b"%d" % i for i in range(250)])
        commands = value.export_commands(b"k")
        self.assertEqual([len(c) - 2 for c in commands], [100, 100, 50])
        self.assertEqual({m for c in commands for m in c[2:]}, set(value.items))

    def test_scan_returns_every_stable_member(self):
        """A scan walking down by position returns each member present throughout, even with
        members added and removed (swap-removes) between the steps."""
        rng = random.Random(3)
        value = SetValue([b"m%d" % i for i in range(500)])
        stable = set(value.items[::3])
        seen, cursor, removable = set(), 0, [m for m in value.items if m not in stable]
        extra = 0
        while True:
            cursor, members = value.scan(cursor, 17)
            seen.update(members)
            for _ in range(5):
                if removable:
                    apply(value, SREM, removable.pop(rng.randrange(len(removable))))
                apply(value, SADD, b"new%d" % extra)
                extra += 1
            if cursor == 0:
                break
        self.assertEqual(stable - seen, set())


class OperationTests(SynchronousTestCase):
    """Operations: results, and inverses that restore the value exactly."""

    def test_sadd_result_and_inverse(self):
        """SADD counts new members (once each); its inverse restores items and encoding."""
        value = SetValue([b"1", b"2"])
        before = state(value)
        result, inverse = apply(value, SADD, b"3", b"x", b"3", b"1")
        self.assertEqual(result, 2)
        self.assertEqual(value.encoding(), b"hashtable")
        inverse()
        self.assertEqual(state(value), before)

    def test_srem_inverse_restores_positions(self):
        """SREM swap-removes; its inverse puts every member back where it was."""
        rng = random.Random(1)
        for _ in range(50):
            value = SetValue([b"m%d" % i for i in range(rng.randrange(1, 30))])
            before = state(value)
            gone = rng.sample(value.items, rng.randrange(1, len(value.items) + 1))
            result, inverse = apply(value, SREM, *gone + [b"absent"])
            self.assertEqual(result, len(gone))
            self.assertEqual(sorted(value.items), sorted(set(before[0]) - set(gone)))
            self.assertEqual({m: i for i, m in enumerate(value.items)}, value.index)
            inverse()
            self.assertEqual(state(value), before)

    def test_spop_rebuild_rejudges_encoding(self):
        """SPOP taking at least five times what remains judges the encoding afresh (Redis
        rebuilds the set), a smaller SPOP does not; the inverse restores the old one."""
        value = SetValue([b"%d" % i for i in range(10)] + [b"x"])
        apply(value, SPOP, b"x")
        self.assertEqual(value.encoding(), b"hashtable")
        before = state(value)
        result, inverse = apply(value, SPOP, *[b"%d" % i for i in range(9)])
        self.assertEqual((result, value.encoding()), (9, b"intset"))
        inverse()
        self.assertEqual(state(value), before)
        apply(value, SPOP, b"0", b"1")
        self.assertEqual(value.encoding(), b"hashtable")


class RdbTests(SynchronousTestCase):
    """DUMP payloads of sets, and RESTORE of every encoding Redis 7.0 writes for them."""

    def test_intset_blob_widths(self):
        """The intset blob uses the narrowest of 2, 4 and 8 bytes."""
        self.assertEqual(settype.intset_blob([1, 2])[:8], b"\x02\x00\x00\x00\x02\x00\x00\x00")
        self.assertEqual(settype.intset_blob([-40000, 2])[:4], b"\x04\x00\x00\x00")
        self.assertEqual(settype.intset_blob([2 ** 40])[:4], b"\x08\x00\x00\x00")

    def test_round_trips(self):
        """Intset and plain set payloads load back to the same members and encoding."""
        for members in ([b"3", b"1", b"-70000"], [b"a", b"1", b"\x00" * 40],
                        [b"%d" % i for i in range(600)]):
            value = SetValue(members)
            kind, loaded = rdb.load(rdb.dump_value(value))
            self.assertEqual(sorted(loaded.items), sorted(members))
            self.assertEqual(loaded.encoding(), value.encoding())

    def test_bad_payloads(self):
        """Empty sets, repeated members and malformed intsets are "Bad data format"."""
        def payload(body):
            return body + rdb.footer(body)
        blob = settype.intset_blob([1, 2])
        for body in (b"\x02\x00", b"\x02\x02\x01a\x01a",
                     b"\x0b" + rdb.encode_string(blob[:-1]),
                     b"\x0b" + rdb.encode_string(b"\x03" + blob[1:]),
                     b"\x0b" + rdb.encode_string(settype.intset_blob([])),
                     b"\x0b" + rdb.encode_string(settype.intset_blob([1, 1]))):
            self.assertRaises(rdb.BadPayload, rdb.load, payload(body))


class InteropTests(SynchronousTestCase):
    """Sets DUMPed by redis-server RESTORE into kvstore and back, and the other way."""

    CASES = [[b"1", b"2", b"3"], [b"-5", b"70000", b"9223372036854775807"],
             [b"a", b"b", b"c"], [b"%d" % i for i in range(512)],
             [b"%d" % i for i in range(513)], [b"member:%d" % i for i in range(2000)],
             [b"1", b"x" * 100, b"\x00\r\n"]]

    def setUp(self):
        server = start_redis_or_skip()
        self.addCleanup(server.stop)
        self.redis = RawConnection(server.port)
        self.addCleanup(self.redis.close)
        self.session = Store(Clock()).new_session()

    def ours(self, *argv):
        return to_resp(self.session.execute(list(argv)))

    def sorted_members(self, raw: bytes) -> list:
        return sorted(parse_reply(raw))

    def test_redis_dump_restores_into_kvstore(self):
        """Each set DUMPed by redis-server RESTOREs into kvstore with the same members and
        encoding; an intset DUMPs back byte for byte."""
        for members in self.CASES:
            self.redis.call([b"DEL", b"k"])
            self.redis.call([b"SADD", b"k"] + members)
            theirs = self.redis.call([b"DUMP", b"k"])
            payload = theirs.split(b"\r\n", 1)[1][:-2]
            self.assertEqual(self.ours(b"RESTORE", b"k", b"0", payload, b"REPLACE"), b"+OK\r\n")
            self.assertEqual(self.sorted_members(self.ours(b"SMEMBERS", b"k")),
                             self.sorted_members(self.redis.call([b"SMEMBERS", b"k"])))
            encoding = self.redis.call([b"OBJECT", b"ENCODING", b"k"])
            self.assertEqual(self.ours(b"OBJECT", b"ENCODING", b"k"), encoding)
            if encoding == b"$6\r\nintset\r\n":
                self.assertEqual(self.ours(b"DUMP", b"k"), theirs)

    def test_kvstore_dump_restores_into_redis(self):
        """Each set DUMPed by kvstore RESTOREs into redis-server with the same members."""
        for members in self.CASES:
            self.ours(b"DEL", b"k")
            self.ours(b"SADD", b"k", *members)
            payload = self.session.execute([b"DUMP", b"k"])
            self.assertEqual(self.redis.call([b"RESTORE", b"k", b"0", payload, b"REPLACE"]),
                             b"+OK\r\n")
            self.assertEqual(self.sorted_members(self.redis.call([b"SMEMBERS", b"k"])),
                             self.sorted_members(self.ours(b"SMEMBERS", b"k")))
            self.assertEqual(self.redis.call([b"OBJECT", b"ENCODING", b"k"]),
                             self.ours(b"OBJECT", b"ENCODING", b"k"))


class PersistenceTests(SynchronousTestCase):
    """Set operations survive replay and compaction; a refused write vanishes exactly."""

    def mktemp(self) -> str:
        directory = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, directory, True)
        return directory

    def fill(self, h) -> None:
        h.run("sadd", "ints", "1", "2", "3", "4", "5", "6", "7", "8", "9", "10")
        h.run("sadd", "words", "a", "b", "c", "d")
        h.run("srem", "words", "b")
        h.run("spop", "ints")
        h.run("spop", "ints", "3")
        h.run("smove", "words", "moved", "a")
        h.run("sadd", "gone", "x")
        h.run("srem", "gone", "x")
        h.run("sunionstore", "union", "ints", "words")
        h.run("sadd", "ttl", "t")
        h.run("pexpireat", "ttl", "4102444800000")
        h.run("spop", "union", "100")

    def members(self, h) -> dict:
        keyspace = h.store.keyspace
        return {key: (sorted(value.items), value.encoding(), keyspace.expire_of(key))
                for key, value in keyspace.data.items()}

    def test_replay(self):
        """Every set operation (random SPOPs included) replays from the journal to the same sets."""
        h = StoreHarness(self)
        self.fill(h)
        h.turn()
        expected = self.members(h)
        self.assertEqual(sorted(expected), [b"ints", b"moved", b"ttl", b"words"])
        self.assertEqual(self.members(h.reload()), expected)

    def test_compaction(self):
        """A snapshot taken with set operations pending reloads to the same sets."""
        h = StoreHarness(self)
        self.fill(h)
        h.turn()
        h.run("sadd", "pending", "p1", "p2")
        d = h.journal.compact()
        h.run("srem", "pending", "p1")
        h.run("sadd", "later", "1")
        h.turn()
        self.assertGreater(self.successResultOf(d), 0)
        expected = self.members(h)
        again = h.reload()
        self.assertEqual(self.members(again), expected)
        self.assertEqual(self.members(again.reload()), expected)

    def test_rollback(self):
        """Set writes the disk refuses are undone: every set is exactly as before them."""
        h = StoreHarness(self)
        h.run("sadd", "s", *[b"m%d" % i for i in range(20)])
        h.run("sadd", "i", "1", "2", "3")
        h.turn()
        keyspace = h.store.keyspace
        before = {key: state(value) for key, value in keyspace.data.items()}
        h.ops.fault, h.ops.only = errno.ENOSPC, "write"
        h.run("srem", "s", "m3", "m7", "m0")
        h.run("sadd", "s", "new", "m1")
        h.run("spop", "s", "4")
        h.run("sadd", "i", "x")
        h.run("spop", "i", "10")
        h.run("smove", "s", "fresh", "m5")
        h.run("sinterstore", "s", "s", "s")
        h.clock.advance(0)
        h.worker.run()
        self.assertEqual({key: state(value) for key, value in keyspace.data.items()}, before)

    def test_check_and_export(self):
        """kvtwist check counts set records; the RESP export loads into redis-server equal."""
        h = StoreHarness(self)
        self.fill(h)
        h.turn()
        expected = self.members(h)
        h.stop()
        report = fsck.check(h.directory)
        self.assertTrue(report.ok, report.lines)
        sock, piped = pipe_into_redis(self, h.directory)
        self.assertIn(b"errors: 0", piped.stdout)
        for key, (members, _encoding, expire) in expected.items():
            got = subprocess.run(["redis-cli", "-s", sock, "smembers", key],
                                 capture_output=True).stdout.split()
            self.assertEqual(sorted(got), members)
            at = subprocess.run(["redis-cli", "-s", sock, "pexpiretime", key],
                                capture_output=True).stdout.strip()
            self.assertEqual(int(at), expire or -1)


class MembersViewTests(SynchronousTestCase):
    """The members view the sorted-set algebra reads."""

    def test_members_view(self):
        """``members`` is a live view of the members."""
        value = SetValue([b"a", b"b"])
        view = value.members
        apply(value, SADD, b"c")
        self.assertEqual(sorted(view), [b"a", b"b", b"c"])
