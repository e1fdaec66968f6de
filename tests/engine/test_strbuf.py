"""Tests for kvtwist.engine.strbuf: strings written in place (StringBuffer), their undo, and
every reader, writer, snapshot and replay that meets one."""

from __future__ import annotations

import random

from hypothesis import HealthCheck, given, settings, strategies as st
from twisted.trial.unittest import SynchronousTestCase

from kvtwist.engine import strbuf
from kvtwist.engine.keyspace import SETRANGE, Keyspace
from kvtwist.engine.strbuf import PROMOTE, StringBuffer, write_range
from kvtwist.storage import fsck
from kvtwist.wire.replies import to_resp
from tests.engine.test_keyspace import make
from tests.helpers import SessionMixin
from tests.redisref import DifferentialMixin

BIG = PROMOTE + 1000  # a length past the promotion threshold

_writes = st.tuples(st.integers(0, 40), st.binary(min_size=0, max_size=12))


class StringBufferTests(SynchronousTestCase):
    """The buffer itself: writes, their exact undo, pieces."""

    @settings(max_examples=200, deadline=None)
    @given(st.binary(max_size=30), st.lists(_writes, max_size=8))
    def test_restore_undoes_writes_newest_first(self, start, writes):
        """Each write's returned bytes and the old length restore the exact value before it."""
        buffer = StringBuffer(start)
        model = bytearray(start)
        states, undos = [], []
        for offset, patch in writes:
            states.append(bytes(buffer))
            size = len(buffer)
            undos.append((offset, buffer.write(offset, patch), size))
            if offset > len(model):
                model.extend(bytes(offset - len(model)))
            model[offset:offset + len(patch)] = patch
            self.assertEqual(bytes(buffer), bytes(model))
        for state, undo in zip(reversed(states), reversed(undos)):
            buffer.restore(*undo)
            self.assertEqual(bytes(buffer), state)

    def test_piece_and_identity(self):
        """piece copies a range to bytes; a buffer acts as a string for TYPE and OBJECT."""
        buffer = StringBuffer(b"hello world")
        self.assertEqual(buffer.piece(6, 11), b"world")
        self.assertIs(buffer.piece(0, 1).__class__, bytes)
        self.assertEqual(strbuf.piece(b"abc", 1, 2), b"b")
        self.assertEqual((buffer.type_name, buffer.encoding(), buffer.nbytes),
                         (b"string", b"raw", 11))
        buffer.extend(b"!")  # a piece leaves no export behind: the buffer can still grow
        self.assertEqual(buffer, b"hello world!")

    def test_write_range_promotes_at_the_threshold(self):
        """Short results stay bytes; a result of PROMOTE bytes becomes a buffer, then is kept."""
        value, overwritten = write_range(b"ab", 1, b"XY")
        self.assertEqual((value, value.__class__, overwritten), (b"aXY", bytes, None))
        value, _ = write_range(None, PROMOTE - 1, b"z")
        self.assertIs(value.__class__, StringBuffer)
        self.assertEqual(len(value), PROMOTE)
        again, overwritten = write_range(value, 0, b"\x01\x02")
        self.assertIs(again, value)
        self.assertEqual(overwritten, b"\0\0")


class KeyspaceTests(SynchronousTestCase):
    """The keyspace keeps a buffer to itself: get copies, undo restores, snapshots copy."""

    def test_get_copies_and_peek_holds(self):
        """get answers bytes a later write leaves alone; peek answers the buffer itself."""
        _, ks, _ = make()
        ks.set(b"k", b"a" * BIG)
        ks.setrange(b"k", BIG, b"b")
        held = ks.peek(b"k")
        self.assertIs(held.__class__, StringBuffer)
        got = ks.get(b"k")
        ks.setrange(b"k", 0, b"Z")
        self.assertIs(got.__class__, bytes)
        self.assertEqual(got, b"a" * BIG + b"b")
        self.assertIs(ks.peek(b"k"), held)
        self.assertEqual(ks.get(b"k")[:2], b"Za")
        self.assertIsNone(ks.peek(b"missing"))

    def test_rollback_restores_in_place_writes_exactly(self):
        """Undo restores overwritten bytes, cuts growth and gaps, and puts back a replaced
        buffer, newest first; the meter follows."""
        _, ks, _ = make()
        ks.set(b"k", b"a" * BIG, 9_000_000)
        ks.setrange(b"k", 5, b"first")  # promoted before tracking
        before = ks.get(b"k")
        ks.track_undo()
        ks.setrange(b"k", 10, b"middle")
        ks.setrange(b"k", BIG - 2, b"across the end")
        ks.setrange(b"k", BIG + 100, b"past a gap")
        ks.expire_at(b"k", 9_500_000)
        ks.setrange(b"k", 0, b"after expire")
        ks.set(b"k", b"replaced")
        ks.delete(b"k")
        ks.setrange(b"new", BIG, b"x")
        changed = ks.rollback()
        self.assertEqual(ks.get(b"k"), before)
        self.assertEqual(ks.expires, {b"k": 9_000_000})
        self.assertNotIn(b"new", ks.data)
        self.assertEqual(ks.meter.used, ks.size())
        self.assertIn((ks, (2, b"k")), changed)

    def test_a_value_read_twice_without_a_write_is_bytes_again(self):
        """The second copy with no write between replaces the buffer; the next write makes a
        buffer again; the meter does not move."""
        _, ks, _ = make()
        ks.setrange(b"k", BIG, b"x")
        used = ks.meter.used
        first = ks.get(b"k")
        self.assertIs(ks.data[b"k"].__class__, StringBuffer)
        ks.setrange(b"k", 0, b"y")  # a write between: no demotion
        ks.get(b"k")
        self.assertIs(ks.data[b"k"].__class__, StringBuffer)
        second = ks.get(b"k")
        self.assertIs(ks.data[b"k"], second)
        self.assertIs(ks.get(b"k"), second)  # bytes: no copy any more
        self.assertEqual((ks.meter.used, first[1:]), (used, second[1:]))
        ks.setrange(b"k", 1, b"z")
        self.assertIs(ks.data[b"k"].__class__, StringBuffer)

    def test_rollback_across_a_demotion(self):
        """Undo entries naming a buffer that reads turned back into bytes still restore it."""
        _, ks, _ = make()
        ks.setrange(b"k", BIG, b"x")
        before = ks.get(b"k")
        ks.track_undo()
        ks.setrange(b"k", 5, b"one")
        ks.setrange(b"k", BIG + 1, b"two")
        ks.get(b"k")
        ks.get(b"k")  # now bytes
        ks.setrange(b"k", 7, b"three")  # a new buffer
        ks.get(b"k")
        ks.get(b"k")
        ks.rollback()
        self.assertEqual(ks.get(b"k"), before)
        self.assertEqual(ks.meter.used, ks.size())

    def test_rollback_of_a_promotion_puts_back_the_bytes(self):
        """The write that made a buffer is undone by putting back the old bytes object."""
        _, ks, _ = make()
        old = b"q" * BIG
        ks.set(b"k", old)
        ks.track_undo()
        ks.setrange(b"k", 3, b"zz")
        self.assertIs(ks.data[b"k"].__class__, StringBuffer)
        ks.rollback()
        self.assertIs(ks.data[b"k"], old)

    def test_snapshot_items_copy_the_buffer(self):
        """A snapshot holds bytes as they were when taken, whatever is written after."""
        _, ks, _ = make()
        ks.setrange(b"k", BIG, b"x")
        ks.set(b"s", b"small")
        items = dict((key, value) for key, value, _ in ks.snapshot_items())
        ks.setrange(b"k", 0, b"changed")
        self.assertIs(items[b"k"].__class__, bytes)
        self.assertEqual(items[b"k"], bytes(BIG) + b"x")
        self.assertEqual(items[b"s"], b"small")

    def test_replay_writes_in_place_and_matches(self):
        """Replaying SETRANGE effects builds the same values, large ones as buffers."""
        clock, ks, log = make()
        ks.set(b"k", b"v" * BIG)
        for step in range(50):
            ks.setrange(b"k", BIG + step, b"%d" % (step % 10))
            ks.setrange(b"k", step * 7, b"patch")
        ks.setrange(b"small", 2, b"ab")
        replica = Keyspace(clock)
        for effect in log:
            replica.apply(effect)
        self.assertIs(replica.data[b"k"].__class__, StringBuffer)
        self.assertEqual(replica.data, ks.data)
        self.assertEqual(sorted(replica.snapshot_items()), sorted(ks.snapshot_items()))

    def test_meter_counts_the_length(self):
        """used_memory counts a buffer by its length, as a bytes value, through every change."""
        clock, ks, _ = make()
        ks.setrange(b"k", BIG, b"x")
        ks.setrange(b"k", BIG + 10, b"more")
        self.assertEqual(ks.meter.used, ks.size())
        self.assertEqual(ks.size(), len(b"k") + BIG + 14 + 120)
        ks.expire_at(b"k", ks.now_ms() + 5)
        clock.advance(1)
        self.assertIsNone(ks.peek(b"k"))
        self.assertEqual(ks.meter.used, 0)

    @settings(max_examples=60, deadline=None)
    @given(st.lists(st.tuples(st.integers(0, 6), st.sampled_from([b"a", b"b"]),
                              st.integers(0, 40), st.binary(max_size=10)),
                    max_size=40),
           st.integers(1, 30))
    def test_random_operations_match_a_bytes_model(self, ops, threshold):
        """With a low promotion threshold, random writes, reads, rollbacks and replays agree
        with a model of plain bytes (values, meter, snapshot, log replay)."""
        self.patch(strbuf, "PROMOTE", threshold)
        clock, ks, log = make()
        model: dict = {}
        ks.track_undo()
        saved = (dict(model), 0)
        for op, key, offset, patch in ops:
            if op <= 2:
                ks.setrange(key, offset, patch)
                value = bytearray(model.get(key, b""))
                if offset > len(value):
                    value.extend(bytes(offset - len(value)))
                value[offset:offset + len(patch)] = patch
                model[key] = bytes(value)
            elif op == 3:
                ks.set(key, patch)
                model[key] = patch
            elif op == 4:
                ks.delete(key)
                model.pop(key, None)
            elif op == 5:
                ks.settle(len(ks.undo))
                saved = (dict(model), len(log))
            else:
                ks.rollback()
                model = dict(saved[0])
                del log[saved[1]:]
            got = ks.get(key)
            self.assertEqual(got, model.get(key))
            self.assertTrue(got is None or got.__class__ is bytes)
            self.assertEqual(ks.meter.used, ks.size())
        self.assertEqual({key: value for key, value, _ in ks.snapshot_items()}, model)
        replica = Keyspace(clock)
        for effect in log:
            replica.apply(effect)
        self.assertEqual(replica.data, model)


class CommandTests(SessionMixin, SynchronousTestCase):
    """Commands over a buffer: replies are bytes of the value as it was when they ran."""

    def setUp(self):
        SessionMixin.setUp(self)
        self.value = bytearray(random.Random(7).randbytes(BIG))
        self.call("set", "k", bytes(self.value))
        self.call("append", "k", "tail")
        self.value += b"tail"
        self.assertIs(self.store.keyspace.data[b"k"].__class__, StringBuffer)

    def test_readers(self):
        """STRLEN, GETRANGE, GETBIT, BITCOUNT, BITPOS, TYPE, OBJECT ENCODING, EXISTS read it."""
        value = bytes(self.value)
        self.assertEqual(self.call("strlen", "k"), len(value))
        self.assertEqual(self.call("getrange", "k", "-4", "-1"), b"tail")
        self.assertEqual(self.call("substr", "k", "10", "19"), value[10:20])
        self.assertEqual(self.call("getbit", "k", "9"), (value[1] >> 6) & 1)
        self.assertEqual(self.call("bitcount", "k"), sum(bin(b).count("1") for b in value))
        self.assertEqual(self.call("bitcount", "k", "1", "1"), bin(value[1]).count("1"))
        self.assertEqual(self.call("bitpos", "k", "1", "-4"), (len(value) - 4) * 8 + 1)
        self.assertEqual(to_resp(self.call("type", "k")), b"+string\r\n")
        self.assertEqual(self.call("object", "encoding", "k"), b"raw")
        self.assertEqual(self.call("exists", "k"), 1)
        self.call("set", "s", "tail")
        self.assertEqual(self.call("lcs", "k", "s", "len"), 4)

    def test_bit_writers(self):
        """SETBIT and BITFIELD write into the buffer and read back what they wrote."""
        held = self.store.keyspace.data[b"k"]
        old = (self.value[0] >> 7) & 1
        self.assertEqual(self.call("setbit", "k", "0", str(1 - old)), old)
        self.assertEqual(self.call("getbit", "k", "0"), 1 - old)
        self.assertEqual(self.call("bitfield", "k", "set", "u8", "#5", "200", "get", "u8", "#5"),
                         [self.value[5], 200])
        self.assertEqual(self.call("bitfield", "k", "incrby", "i16", str(8 * (BIG + 4)), "7"),
                         [7])
        self.assertIs(self.store.keyspace.data[b"k"], held)
        self.assertEqual(self.call("getrange", "k", "5", "5"), b"\xc8")
        self.assertEqual(self.call("getrange", "k", "-6", "-1"), b"tail\x00\x07")

    def test_replies_own_their_bytes(self):
        """GET, MGET, GETEX, GETSET, GETDEL, SET GET and DUMP replies are bytes, not changed by
        the writes that follow."""
        value = bytes(self.value)
        got, many, getex = (self.call("get", "k"), self.call("mget", "k", "nope"),
                            self.call("getex", "k", "persist"))
        payload = self.call("dump", "k")
        self.call("setrange", "k", "0", "XXXX")
        self.call("append", "k", "more")
        for reply in (got, many[0], getex):
            self.assertIs(reply.__class__, bytes)
            self.assertTrue(reply == value)
        self.assertIsNone(many[1])
        self.call("restore", "r", "0", payload)
        self.assertTrue(self.call("get", "r") == value)
        changed = b"XXXX" + value[4:] + b"more"
        self.assertTrue(self.call("set", "k", "x", "get") == changed)
        self.call("append", "k", "y" * BIG)
        self.assertTrue(self.call("getset", "k", "z") == b"x" + b"y" * BIG)
        self.call("setrange", "k", str(BIG), "w")
        self.assertTrue(self.call("getdel", "k") == b"z" + bytes(BIG - 1) + b"w")
        self.assertEqual(self.call("exists", "k"), 0)

    def test_copy_rename_move_take_a_copy(self):
        """COPY, RENAME and MOVE store bytes: writes to one key leave the other as it was."""
        value = bytes(self.value)
        self.assertEqual(self.call("copy", "k", "c"), 1)
        self.assertIs(self.store.keyspace.data[b"c"].__class__, bytes)
        self.call("append", "k", "!")
        self.assertTrue(self.call("get", "c") == value)
        self.call("rename", "k", "r")
        self.call("append", "c", "?")
        self.assertTrue(self.call("get", "r") == value + b"!")
        self.call("append", "r", "#")
        self.assertEqual(self.call("move", "r", "1"), 1)
        self.call("select", "1")
        self.assertTrue(self.call("get", "r") == value + b"!#")

    def test_numbers_and_wrong_types(self):
        """INCR and INCRBYFLOAT refuse a buffer as Redis refuses a long string; LPUSH and
        HSET on it are WRONGTYPE; SORT, DUMP alone and the journal see bytes."""
        self.assertEqual(self.error("incr", "k"), "ERR value is not an integer or out of range")
        self.assertEqual(self.error("incrbyfloat", "k", "1"), "ERR value is not a valid float")
        self.assertEqual(self.error("lpush", "k", "x"),
                         "WRONGTYPE Operation against a key holding the wrong kind of value")
        self.assertEqual(self.error("hget", "k", "f"),
                         "WRONGTYPE Operation against a key holding the wrong kind of value")
        self.call("rpush", "list", "k")
        self.assertEqual(self.call("sort", "list", "by", "nosort", "get", "*"), [bytes(self.value)])
        everything = to_resp(self.call("dump"))
        self.assertIn(b"$%d\r\n%s\r\n" % (len(self.value), bytes(self.value)), everything)


class ToolsTests(SynchronousTestCase):
    """kvtwist check / export replay appends in place and write bytes out."""

    def test_export_replays_in_place_and_writes_bytes(self):
        """MemoryState builds a large APPENDed value as a buffer; export writes its bytes."""
        state = fsck.MemoryState()
        state.apply((1, b"k", b"v" * BIG, 0))
        for step in range(10):
            state.apply((SETRANGE, b"k", BIG + step, b"%d" % step))
        self.assertIs(state.data[b"k"][0].__class__, StringBuffer)
        self.assertEqual(state.data[b"k"][0], b"v" * BIG + b"0123456789")


class LargeValueDifferentialTests(DifferentialMixin, SynchronousTestCase):
    """APPEND, SETRANGE, GETRANGE, SETBIT, BITFIELD, INCR sequences on large and small values
    answer what redis-server answers, byte for byte."""

    def random_command(self, rng, keys) -> list:
        key = rng.choice(keys)
        kind = rng.randrange(12)
        size = rng.choice([3, 100, PROMOTE - 5, PROMOTE + 50])
        if kind == 0:
            return [b"SET", key, rng.randbytes(rng.choice([0, 5, PROMOTE - 2, BIG]))]
        if kind <= 2:
            return [b"APPEND", key, rng.randbytes(rng.choice([1, 7, 300]))]
        if kind <= 4:
            return [b"SETRANGE", key, b"%d" % rng.randrange(size), rng.randbytes(rng.randrange(20))]
        if kind == 5:
            start = rng.randrange(-size, size)
            return [b"GETRANGE", key, b"%d" % start, b"%d" % (start + rng.randrange(40))]
        if kind == 6:
            return [b"SETBIT", key, b"%d" % rng.randrange(size * 8), b"%d" % rng.randrange(2)]
        if kind == 7:
            return [b"BITFIELD", key, b"INCRBY", rng.choice([b"u8", b"i16", b"u3"]),
                    b"%d" % rng.randrange(size * 8), b"%d" % rng.randrange(-300, 300),
                    b"GET", b"u4", b"%d" % rng.randrange(size * 8)]
        if kind == 8:
            return [b"INCR", key] if rng.random() < 0.5 else [b"INCRBYFLOAT", key, b"1.5"]
        if kind == 9:
            return [rng.choice([b"STRLEN", b"GET", b"BITCOUNT", b"TYPE"]), key]
        if kind == 10:
            return [b"BITPOS", key, b"%d" % rng.randrange(2), b"%d" % rng.randrange(-size, size)]
        return [b"GETBIT", key, b"%d" % rng.randrange(size * 8)]

    def test_random_sequences(self):
        """Seeded random sequences over two keys give the same replies and final values."""
        keys = [b"big", b"small"]
        for seed in range(3):
            rng = random.Random(seed)
            self.reset()
            for _ in range(250):
                self.compare(self.random_command(rng, keys))
            for key in keys:
                self.compare([b"GET", key])
                self.compare([b"OBJECT", b"ENCODING", key])

    def test_suite_style_growth(self):
        """A thousand APPENDs growing a value past the threshold, then SETRANGE and GET."""
        self.compare([b"SET", b"k", b"x" * (PROMOTE - 500)])
        for step in range(1000):
            self.compare([b"APPEND", b"k", b"%d," % step])
        self.compare([b"SETRANGE", b"k", b"%d" % (PROMOTE // 2), b"0123456789"])
        self.compare([b"GET", b"k"])
        self.compare([b"STRLEN", b"k"])
        self.compare([b"GETRANGE", b"k", b"-20", b"-1"])


class RandomHypothesisDifferential(DifferentialMixin, SynchronousTestCase):
    """Hypothesis-chosen seeds, so a failing sequence shrinks to a short one."""

    @settings(max_examples=15, deadline=None,
              suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
    @given(st.lists(st.integers(0, 2 ** 32), min_size=1, max_size=25))
    def test_sequences(self, seeds):
        """Each seed draws one command; replies and final values match redis-server."""
        self.reset()
        draw = LargeValueDifferentialTests.random_command
        for seed in seeds:
            self.compare(draw(self, random.Random(seed), [b"big", b"small"]))
        self.compare([b"GET", b"big"])
        self.compare([b"GET", b"small"])
