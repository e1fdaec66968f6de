"""Tests for kvtwist.engine.bitops: SETBIT, GETBIT, BITCOUNT, BITPOS, BITOP, BITFIELD(_RO)."""

from __future__ import annotations

import random

from hypothesis import HealthCheck, given, settings, strategies as st
from twisted.trial.unittest import SynchronousTestCase

from kvtwist.engine import bitops
from kvtwist.engine.keyspace import SET, SETRANGE, Keyspace
from tests.helpers import SessionMixin
from tests.redisref import DifferentialMixin


class SetbitGetbitTests(SessionMixin, SynchronousTestCase):
    def test_setbit_returns_old_bit_and_pads(self):
        """SETBIT answers the old bit and zero-pads a short value up to the bit's byte."""
        self.assertEqual(self.call("setbit", "k", "7", "1"), 0)
        self.assertEqual(self.call("get", "k"), b"\x01")
        self.assertEqual(self.call("setbit", "k", "7", "0"), 1)
        self.assertEqual(self.call("setbit", "k", "17", "1"), 0)
        self.assertEqual(self.call("get", "k"), b"\x00\x00\x40")
        self.assertEqual(self.call("getbit", "k", "17"), 1)
        self.assertEqual(self.call("getbit", "k", "16"), 0)
        self.assertEqual(self.call("getbit", "k", "1000"), 0)
        self.assertEqual(self.call("getbit", "none", "3"), 0)

    def test_setbit_journals_one_byte(self):
        """SETBIT logs a one-byte SETRANGE, and nothing when the bit does not change."""
        self.call("set", "k", "x" * 1000)
        del self.journal.effects[:]
        self.call("setbit", "k", "8", "1")
        self.assertEqual(self.journal.effects, [(SETRANGE, b"k", 1, b"\xf8")])
        self.call("setbit", "k", "8", "1")
        self.assertEqual(len(self.journal.effects), 1)

    def test_setbit_keeps_ttl(self):
        """SETBIT on an existing key keeps its expiry."""
        self.call("set", "k", "a", "ex", "100")
        self.call("setbit", "k", "100", "1")
        self.assertEqual(self.call("ttl", "k"), 100)

    def test_errors(self):
        """Offsets and bit values out of range give Redis's two errors."""
        for offset in ("-1", "x", "4294967296", "#1", "1.0"):
            self.assertEqual(self.error("setbit", "k", offset, "1"), bitops.BIT_OFFSET_ERROR)
            self.assertEqual(self.error("getbit", "k", offset), bitops.BIT_OFFSET_ERROR)
        for bit in ("2", "-1", "x", ""):
            self.assertEqual(self.error("setbit", "k", "0", bit), bitops.BIT_VALUE_ERROR)

    def test_offset_limit_follows_proto_max_bulk_len(self):
        """The offset limit is proto-max-bulk-len bytes."""
        self.store.config["proto-max-bulk-len"] = "1kb"
        self.assertEqual(self.call("setbit", "k", str(1024 * 8 - 1), "1"), 0)
        self.assertEqual(self.error("setbit", "k", str(1024 * 8), "1"), bitops.BIT_OFFSET_ERROR)


class BitcountBitposTests(SessionMixin, SynchronousTestCase):
    def test_bitcount_ranges(self):
        """BITCOUNT counts a whole value, a byte range or a bit range."""
        self.call("set", "s", "foobar")
        self.assertEqual(self.call("bitcount", "s"), 26)
        self.assertEqual(self.call("bitcount", "s", "1", "1"), 6)
        self.assertEqual(self.call("bitcount", "s", "5", "30", "bit"), 17)
        self.assertEqual(self.call("bitcount", "s", "-1", "-2"), 0)
        self.assertEqual(self.call("bitcount", "none"), 0)
        self.assertEqual(self.error("bitcount", "s", "0"), "ERR syntax error")
        self.assertEqual(self.error("bitcount", "s", "0", "1", "bits"), "ERR syntax error")

    def test_popcount_matches_naive(self):
        """popcount agrees with a per-byte count, including across 64 KB slices."""
        data = random.Random(1).randbytes(200000)
        self.assertEqual(bitops.popcount(data), sum(bin(byte).count("1") for byte in data))
        self.assertEqual(bitops.popcount(data, 65530, 140000),
                         sum(bin(byte).count("1") for byte in data[65530:140000]))

    def test_bitpos(self):
        """BITPOS finds the first set or clear bit, in byte or bit ranges."""
        self.call("set", "k", b"\xff\xf0\x00")
        self.assertEqual(self.call("bitpos", "k", "0"), 12)
        self.assertEqual(self.call("bitpos", "k", "1", "2"), -1)
        self.assertEqual(self.call("bitpos", "k", "1", "5", "-1", "bit"), 5)
        self.assertEqual(self.call("bitpos", "k", "0", "0", "0"), -1)
        self.assertEqual(self.call("bitpos", "k", "0", "0"), 12)
        self.assertEqual(self.call("bitpos", "none", "0"), 0)
        self.assertEqual(self.call("bitpos", "none", "1"), -1)
        self.assertEqual(self.error("bitpos", "k", "2"), "ERR The bit argument must be 1 or 0.")

    def test_first_bit_across_slices(self):
        """first_bit finds a bit past many slices of zeros (or ones)."""
        data = bytes(200000) + b"\x10"
        self.assertEqual(bitops.first_bit(data, 0, len(data), 1), 200000 * 8 + 3)
        self.assertEqual(bitops.first_bit(b"\xff" * 70000, 0, 70000, 0), 70000 * 8)
        self.assertEqual(bitops.first_bit(bytes(70000), 0, 70000, 1), -1)


class BitopTests(SessionMixin, SynchronousTestCase):
    def test_operations(self):
        """AND, OR, XOR pad shorter values with zeros; NOT inverts; the result is SET."""
        self.call("set", "a", b"\xf0\x0f\xff")
        self.call("set", "b", b"\x3c")
        self.assertEqual(self.call("bitop", "and", "d", "a", "b"), 3)
        self.assertEqual(self.call("get", "d"), b"\x30\x00\x00")
        self.assertEqual(self.call("bitop", "OR", "d", "a", "b"), 3)
        self.assertEqual(self.call("get", "d"), b"\xfc\x0f\xff")
        self.assertEqual(self.call("bitop", "xor", "d", "a", "b", "none"), 3)
        self.assertEqual(self.call("get", "d"), b"\xcc\x0f\xff")
        self.assertEqual(self.call("bitop", "not", "d", "b"), 1)
        self.assertEqual(self.call("get", "d"), b"\xc3")
        self.assertEqual(self.journal.effects[-1], (SET, b"d", b"\xc3", 0))

    def test_empty_sources_delete_destination(self):
        """When every source is empty or missing the destination is deleted."""
        self.call("set", "d", "x")
        self.assertEqual(self.call("bitop", "or", "d", "none", "other"), 0)
        self.assertEqual(self.call("exists", "d"), 0)

    def test_errors(self):
        """An unknown operation is a syntax error; NOT takes exactly one source."""
        self.assertEqual(self.error("bitop", "nand", "d", "a"), "ERR syntax error")
        self.assertEqual(self.error("bitop", "not", "d", "a", "b"),
                         "ERR BITOP NOT must be called with a single source key.")


class BitfieldTests(SessionMixin, SynchronousTestCase):
    def test_set_get_incrby(self):
        """SET answers the old value, INCRBY the new one, GET reads signed or unsigned."""
        self.assertEqual(self.call("bitfield", "k", "set", "u8", "0", "255", "get", "i8", "0",
                                   "incrby", "u8", "0", "10"), [0, -1, 9])
        self.assertEqual(self.call("bitfield", "k", "set", "i5", "#1", "-3", "get", "u5", "#1"),
                         [4, 29])

    def test_overflow_modes(self):
        """WRAP wraps, SAT saturates and FAIL answers nil without writing."""
        self.call("bitfield", "k", "set", "u8", "0", "250")
        self.assertEqual(self.call("bitfield", "k", "incrby", "u8", "0", "10",
                                   "overflow", "sat", "incrby", "u8", "0", "300",
                                   "overflow", "fail", "incrby", "u8", "0", "1",
                                   "get", "u8", "0"), [4, 255, None, 255])
        self.assertEqual(self.call("bitfield", "k", "overflow", "sat", "incrby", "i8", "0",
                                   "-1000"), [-128])

    def test_overflow_checks_match_c(self):
        """The overflow checks reproduce the C functions on 64-bit edges."""
        top, bottom = 2 ** 63 - 1, -2 ** 63
        self.assertEqual(bitops.signed_overflow(top, 1, 64, 0), (True, bottom))
        self.assertEqual(bitops.signed_overflow(bottom, -1, 64, 1), (True, bottom))
        self.assertEqual(bitops.signed_overflow(-5, 3, 64, 0), (False, None))
        self.assertEqual(bitops.unsigned_overflow(2 ** 64 - 1, 0, 8, 0), (True, 255))
        self.assertEqual(bitops.unsigned_overflow(3, -4, 8, 1), (True, 0))

    def test_journals_changed_bytes_only(self):
        """Writes into an existing value journal only the bytes they change."""
        self.call("set", "k", bytes(1000))
        del self.journal.effects[:]
        self.call("bitfield", "k", "set", "u8", "#10", "1", "set", "u16", "#300", "2",
                  "set", "u8", "#20", "0")
        self.assertEqual(self.journal.effects, [(SETRANGE, b"k", 10, b"\x01"),
                                                (SETRANGE, b"k", 601, b"\x02")])

    def test_grows_value_even_when_writes_fail(self):
        """The value grows to the farthest write (created when missing), even on FAIL."""
        self.assertEqual(self.call("bitfield", "k", "overflow", "fail", "incrby", "u8", "#9",
                                   "1000"), [None])
        self.assertEqual(self.call("get", "k"), bytes(10))

    def test_errors(self):
        """Bad types, offsets, subcommands and BITFIELD_RO writes give Redis's errors."""
        for kind in ("u64", "i65", "x8", "u0", "i", "I8"):
            self.assertEqual(self.error("bitfield", "k", "get", kind, "0"),
                             bitops.BITFIELD_TYPE_ERROR)
        self.assertEqual(self.error("bitfield", "k", "get", "u8", "#-1"),
                         bitops.BIT_OFFSET_ERROR)
        self.assertEqual(self.error("bitfield", "k", "get", "u8"), "ERR syntax error")
        self.assertEqual(self.error("bitfield", "k", "overflow", "up"),
                         "ERR Invalid OVERFLOW type specified")
        self.assertEqual(self.error("bitfield", "k", "set", "u8", "0", "x"),
                         "ERR value is not an integer or out of range")
        self.assertEqual(self.error("bitfield_ro", "k", "get", "u8", "0", "set", "u8", "0", "1"),
                         "ERR BITFIELD_RO only supports the GET subcommand")
        self.assertEqual(self.call("bitfield_ro", "k", "get", "u8", "0"), [0])
        self.assertEqual(self.call("exists", "k"), 0)


class JournalReplayTests(SessionMixin, SynchronousTestCase):
    def test_replayed_effects_rebuild_the_values(self):
        """Replaying the journalled effects of random bit commands rebuilds the same values."""
        rng = random.Random(5)
        for _ in range(2000):
            self.call(*random_bit_command(rng))
        replayed = Keyspace(self.clock)
        for effect in self.journal.effects:
            replayed.apply(effect)
        self.assertEqual(replayed.data, self.session.keyspace.data)


# -- differential: the same commands on a real redis-server --------------------------------

KEYS = [b"a", b"b", b"c"]
VALUES = [b"", b"\x00", b"\xff", b"foobar", b"\xff\xf0\x00", b"\x00\x00\x01", b"123",
          b"\xff" * 9, b"\x00" * 9 + b"\x80"]
SMALL = [b"0", b"1", b"2", b"7", b"8", b"9", b"15", b"16", b"23", b"63", b"64", b"100",
         b"-1", b"-2", b"-8", b"-9", b"-100", b"x", b""]
TYPES = [b"u1", b"u3", b"u8", b"u16", b"u63", b"i1", b"i5", b"i8", b"i32", b"i63", b"i64",
         b"u64", b"i0", b"x8", b"U8"]
OFFSETS = [b"0", b"1", b"3", b"7", b"8", b"13", b"64", b"70", b"#0", b"#1", b"#3", b"-1", b"x",
           b"4294967295", b"4294967296", b"#4611686018427387904", b"#2305843009213693952"]
NUMBERS = [b"0", b"1", b"-1", b"5", b"100", b"127", b"128", b"255", b"256", b"-128", b"-129",
           b"1000", b"-1000", b"9223372036854775807", b"-9223372036854775808", b"x"]


def _pick(rng, items):
    return items[rng.randrange(len(items))]


def random_bit_command(rng) -> list:
    """Return one random bit command, valid or not."""
    key = _pick(rng, KEYS)
    kind = rng.randrange(9)
    if kind == 0:
        return [b"set", key, _pick(rng, VALUES)]
    if kind == 1:
        return [b"setbit", key, _pick(rng, SMALL + [b"4294967296"]),
                _pick(rng, [b"0", b"1", b"1", b"2", b"-1", b"x"])]
    if kind == 2:
        return [b"getbit", key, _pick(rng, SMALL)]
    if kind == 3:
        argv = [b"bitcount", key]
        if rng.random() < 0.7:
            argv += [_pick(rng, SMALL), _pick(rng, SMALL)][:rng.randrange(1, 3)]
            if rng.random() < 0.5:
                argv.append(_pick(rng, [b"bit", b"BYTE", b"bits"]))
        return argv
    if kind == 4:
        argv = [b"bitpos", key, _pick(rng, [b"0", b"1", b"1", b"0", b"2", b"x"])]
        argv += [_pick(rng, SMALL) for _ in range(rng.randrange(3))]
        if len(argv) == 5 and rng.random() < 0.6:
            argv.append(_pick(rng, [b"bit", b"byte", b"BIT", b"nope"]))
        return argv
    if kind == 5:
        op = _pick(rng, [b"and", b"OR", b"xor", b"not", b"nand"])
        count = 1 if op == b"not" and rng.random() < 0.8 else rng.randrange(1, 4)
        return [b"bitop", op, _pick(rng, KEYS)] + [_pick(rng, KEYS + [b"none"])
                                                    for _ in range(count)]
    if kind in (6, 7):
        argv = [_pick(rng, [b"bitfield", b"bitfield", b"bitfield_ro"]), key]
        for _ in range(rng.randrange(1, 5)):
            sub = rng.randrange(5)
            if sub == 0:
                argv += [b"overflow", _pick(rng, [b"wrap", b"SAT", b"fail", b"bogus"])]
            elif sub == 1:
                argv += [b"get", _pick(rng, TYPES), _pick(rng, OFFSETS)]
            else:
                argv += [_pick(rng, [b"set", b"incrby"]), _pick(rng, TYPES[:11]),
                         _pick(rng, OFFSETS[:11]), _pick(rng, NUMBERS)]
        if rng.random() < 0.05:
            argv = argv[:-1]
        return argv
    return [b"get", key]


class BitopsDifferentialTests(DifferentialMixin, SynchronousTestCase):
    def test_seeded_sequences(self):
        """Thousands of random bit commands give byte-identical replies and values."""
        for seed in range(3):
            rng = random.Random(seed)
            self.reset()
            for _ in range(800):
                self.compare(random_bit_command(rng))
            for key in KEYS:
                self.compare([b"get", key])

    @settings(max_examples=60, deadline=None,
              suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
    @given(st.lists(st.binary(max_size=12), min_size=1, max_size=3),
           st.integers(-40, 120), st.integers(-40, 120), st.sampled_from([b"bit", b"byte"]),
           st.sampled_from([b"0", b"1"]))
    def test_ranges(self, values, start, end, unit, bit):
        """BITCOUNT, BITPOS and BITOP over generated values and ranges match redis-server."""
        self.reset()
        keys = [b"k%d" % index for index in range(len(values))]
        for key, value in zip(keys, values):
            self.compare([b"set", key, value])
        first, last = b"%d" % start, b"%d" % end
        self.compare([b"bitcount", keys[0], first, last, unit])
        self.compare([b"bitpos", keys[0], bit, first, last, unit])
        self.compare([b"bitpos", keys[0], bit, first])
        for op in (b"and", b"or", b"xor"):
            self.compare([b"bitop", op, b"dest"] + keys)
            self.compare([b"get", b"dest"])

    @settings(max_examples=60, deadline=None,
              suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
    @given(st.lists(st.tuples(st.sampled_from([b"get", b"set", b"incrby"]),
                              st.booleans(), st.integers(1, 64), st.integers(0, 100),
                              st.integers(-2 ** 63, 2 ** 63 - 1),
                              st.sampled_from([b"wrap", b"sat", b"fail"])),
                    min_size=1, max_size=6))
    def test_bitfield_fields(self, ops):
        """BITFIELD with generated types, offsets, values and overflow modes matches."""
        self.reset()
        argv = [b"bitfield", b"bf"]
        for name, signed, bits, offset, number, overflow in ops:
            kind = (b"i%d" if signed or bits == 64 else b"u%d") % bits
            argv += [b"overflow", overflow, name, kind, b"%d" % offset]
            if name != b"get":
                argv.append(b"%d" % number)
        self.compare(argv)
        self.compare([b"get", b"bf"])

    def test_error_texts(self):
        """Hand-picked errors of every bit command match byte for byte."""
        for argv in ([b"setbit", b"k"], [b"getbit", b"k"], [b"bitcount"], [b"bitpos", b"k"],
                     [b"bitop", b"and", b"d"], [b"bitfield"], [b"bitfield_ro"],
                     [b"setbit", b"k", b"1", b"1"], [b"bitcount", b"k", b"1"],
                     [b"bitcount", b"k", b"a", b"b"], [b"bitcount", b"nokey", b"a", b"b"],
                     [b"bitpos", b"k", b"1", b"0", b"1", b"bit", b"x"],
                     [b"bitpos", b"nokey", b"1", b"0", b"1", b"bit", b"x"],
                     [b"bitpos", b"k", b"1", b"0", b"x", b"nope"],
                     [b"bitop", b"not", b"d", b"k", b"k"], [b"bitop", b"and\x00x", b"d", b"k"],
                     [b"bitfield", b"k", b"get", b"u8\x00z", b"0"],
                     [b"bitfield", b"k", b"overflow", b"wrap", b"get"],
                     [b"bitfield", b"k", b"incrby", b"i8", b"0"]):
            self.compare(argv)
