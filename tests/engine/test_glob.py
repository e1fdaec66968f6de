"""Tests for kvtwist.engine.glob: Redis 7.0's stringmatchlen without backtracking blow-up."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings, strategies as st
from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from kvtwist.engine import glob
from kvtwist.engine.glob import compile_glob
from kvtwist.engine.keyspace import Keyspace
from tests.redisref import RawConnection, start_redis_or_skip

# -- the reference: a direct port of Redis 7.0.15's stringmatchlen_impl (src/util.c) -------

_STAR, _QUESTION, _OPEN, _CLOSE, _CARET, _DASH, _BACKSLASH = b"*?[]^-\\"


def _char(byte: int) -> int:
    # C's char is signed on x86-64: bytes from 0x80 compare as negative numbers.
    return byte - 256 if byte >= 128 else byte


def _tolower(value: int) -> int:
    # tolower() in the C locale (redis-server sets only LC_COLLATE): ASCII letters only.
    return value + 32 if 65 <= value <= 90 else value


def redis_stringmatchlen(pattern: bytes, string: bytes, nocase: bool = False) -> bool:
    """Return Redis's stringmatchlen(pattern, string, nocase), computed as util.c does."""
    # The sds terminator is part of what the C code reads past the end of the pattern.
    return _impl(pattern + b"\0", 0, len(pattern), string + b"\0", 0, len(string), nocase,
                 [False])


def _impl(pat, p, plen, s, si, slen, nocase, skip_longer) -> bool:
    while plen and slen:
        c = pat[p]
        if c == _STAR:
            while plen and pat[p + 1] == _STAR:
                p += 1
                plen -= 1
            if plen == 1:
                return True
            while slen:
                if _impl(pat, p + 1, plen - 1, s, si, slen, nocase, skip_longer):
                    return True
                if skip_longer[0]:
                    return False
                si += 1
                slen -= 1
            skip_longer[0] = True
            return False
        elif c == _QUESTION:
            si += 1
            slen -= 1
        elif c == _OPEN:
            p += 1
            plen -= 1
            negate = pat[p] == _CARET
            if negate:
                p += 1
                plen -= 1
            match = False
            while True:
                if pat[p] == _BACKSLASH and plen >= 2:
                    p += 1
                    plen -= 1
                    if pat[p] == s[si]:
                        match = True
                elif pat[p] == _CLOSE:
                    break
                elif plen == 0:
                    p -= 1
                    plen += 1
                    break
                elif plen >= 3 and pat[p + 1] == _DASH:
                    start, end, ch = _char(pat[p]), _char(pat[p + 2]), _char(s[si])
                    if start > end:
                        start, end = end, start
                    if nocase:
                        start, end, ch = _tolower(start), _tolower(end), _tolower(ch)
                    p += 2
                    plen -= 2
                    if start <= ch <= end:
                        match = True
                elif not nocase:
                    if pat[p] == s[si]:
                        match = True
                elif _tolower(_char(pat[p])) == _tolower(_char(s[si])):
                    match = True
                p += 1
                plen -= 1
            if negate:
                match = not match
            if not match:
                return False
            si += 1
            slen -= 1
        else:
            if c == _BACKSLASH and plen >= 2:
                p += 1
                plen -= 1
            if not nocase:
                if pat[p] != s[si]:
                    return False
            elif _tolower(_char(pat[p])) != _tolower(_char(s[si])):
                return False
            si += 1
            slen -= 1
        p += 1
        plen -= 1
        if slen == 0:
            while pat[p] == _STAR:
                p += 1
                plen -= 1
            break
    return plen == 0 and slen == 0


# -- strategies -------------------------------------------------------------------

# Bytes with a meaning in patterns, a few letters of both cases, NUL and bytes above 0x7f.
_PATTERN_BYTES = b"**??[[]]^-\\aAbBz\x00\x7f\x80\xff"
_KEY_BYTES = b"aAbBz-]^[\\*?\x00\x7f\x80\xff"

patterns = st.binary(min_size=0, max_size=12).map(
    lambda raw: bytes(_PATTERN_BYTES[b % len(_PATTERN_BYTES)] for b in raw))
keys = st.binary(min_size=0, max_size=12).map(
    lambda raw: bytes(_KEY_BYTES[b % len(_KEY_BYTES)] for b in raw))


@st.composite
def pattern_and_near_key(draw):
    """A pattern and a key made from it (stars filled, classes picked), edited a little."""
    pattern = draw(patterns)
    out = bytearray()
    for byte in pattern:
        if byte == _STAR:
            out += draw(keys)
        elif byte in (_OPEN, _CLOSE, _CARET, _BACKSLASH, _QUESTION) and draw(st.booleans()):
            out += draw(keys)[:1]
        else:
            out.append(byte)
    if draw(st.booleans()) and out:
        index = draw(st.integers(min_value=0, max_value=len(out) - 1))
        out[index] = draw(st.sampled_from(list(_KEY_BYTES)))
    return pattern, bytes(out)


def matches(pattern: bytes, key: bytes, nocase: bool = False) -> bool:
    """Return the answer of the glob under test."""
    return compile_glob(pattern, nocase)(key)


# -- tests ------------------------------------------------------------------------


class ReferenceTests(SynchronousTestCase):
    def check(self, pattern, yes, no, nocase=False):
        """Both the reference port and compile_glob accept ``yes`` and reject ``no``."""
        for key in yes:
            self.assertTrue(redis_stringmatchlen(pattern, key, nocase), (pattern, key, "ref"))
            self.assertTrue(matches(pattern, key, nocase), (pattern, key))
        for key in no:
            self.assertFalse(redis_stringmatchlen(pattern, key, nocase), (pattern, key, "ref"))
            self.assertFalse(matches(pattern, key, nocase), (pattern, key))

    def test_literals(self):
        """Plain bytes match themselves only; regex metacharacters are plain bytes."""
        self.check(b"abc", [b"abc"], [b"ab", b"abcd", b"abd", b"ABC", b""])
        self.check(b"a.b(|)+{1}$", [b"a.b(|)+{1}$"], [b"axb(|)+{1}$"])
        self.check(b"a\x00b", [b"a\x00b"], [b"a\x01b", b"a"])

    def test_star(self):
        """* matches any run of bytes, newlines included; runs of stars act as one."""
        self.check(b"a*z", [b"az", b"a\nz", b"abcz", b"azz"], [b"a", b"za", b"azb"])
        self.check(b"*", [b"x", b"\n"], [])
        self.check(b"a**b***", [b"ab", b"axxbyy"], [b"a", b"ba"])
        self.check(b"*ab*ab*", [b"abab", b"xabyabz"], [b"aba", b"ab"])
        self.check(b"*a*b", [b"ab", b"aab", b"abab", b"xaxb"], [b"ba", b"aba", b"b"])

    def test_empty_key_and_pattern(self):
        """An empty key matches only the empty pattern (even ** fails), as stringmatchlen does."""
        self.check(b"", [b""], [b"a"])
        self.check(b"**", [b"a", b"ab"], [b""])
        self.check(b"*", [b"a"], [b""])
        self.check(b"[^", [b"a"], [b""])

    def test_question(self):
        """? matches exactly one byte, any byte."""
        self.check(b"h?llo", [b"hello", b"hallo", b"h\xffllo", b"h\nllo"], [b"hllo", b"heello"])
        self.check(b"?*?", [b"ab", b"abc"], [b"a"])

    def test_classes(self):
        """Brackets match a set, ^ negates it, ranges include both ends."""
        self.check(b"h[ae]llo", [b"hallo", b"hello"], [b"hillo", b"hllo"])
        self.check(b"h[^e]llo", [b"hallo", b"h]llo"], [b"hello", b"hllo"])
        self.check(b"h[a-c]llo", [b"hallo", b"hbllo", b"hcllo"], [b"hdllo", b"h-llo"])
        self.check(b"[*?]", [b"*", b"?"], [b"a"])
        self.check(b"[a^]", [b"a", b"^"], [b"b"])

    def test_reversed_range(self):
        """A range with its bounds reversed is swapped, not empty."""
        self.check(b"h[c-a]llo", [b"hallo", b"hbllo", b"hcllo"], [b"hdllo"])

    def test_range_in_signed_char_order(self):
        """Ranges compare C's signed chars: bytes from 0x80 sort below 0x00."""
        self.check(b"[\x00-\xff]", [b"\x00", b"\xff"], [b"a", b"\x80", b"\x7f"])
        self.check(b"[\x80-\x7f]", [b"\x80", b"\xff", b"\x00", b"a", b"\x7f"], [])
        self.check(b"[a-\x80]", [b"\x80", b"\xff", b"\x00", b"a"], [b"b", b"\x7f"])

    def test_range_edges(self):
        """A dash right before ] makes ] the range's end; a leading ] closes an empty class."""
        # [a-]x] is the range ]..a plus x, closed by the second ].
        self.check(b"[a-]x]", [b"a", b"]", b"^", b"x"], [b"b", b"[", b"]x]"])
        self.check(b"[-a]", [b"-", b"a"], [b"b"])
        self.check(b"[a-]", [b"a", b"]", b"_"], [b"b"])
        self.check(b"[]a]", [], [b"a", b"]", b"]a]"])
        self.check(b"[^]a]", [b"xa]", b"]a]"], [b"a", b"x"])

    def test_escapes(self):
        """A backslash makes the next byte literal, inside and outside classes."""
        self.check(b"a\\*b", [b"a*b"], [b"axb", b"a\\xb"])
        self.check(b"\\?", [b"?"], [b"a"])
        self.check(b"\\a", [b"a"], [b"\\a"])
        self.check(b"[\\]]", [b"]"], [b"\\"])
        self.check(b"[\\-a]", [b"-", b"a"], [b"\\", b"]", b"b"])
        self.check(b"[\\^x]", [b"^", b"x"], [b"a"])

    def test_trailing_backslash(self):
        """A trailing backslash is a literal backslash, in a class too."""
        self.check(b"x\\", [b"x\\"], [b"x"])
        self.check(b"\\", [b"\\"], [b""])
        self.check(b"[x\\", [b"x", b"\\"], [b"["])

    def test_unterminated_class(self):
        """An unterminated class runs to the end of the pattern; a lone [ matches nothing."""
        self.check(b"a[bc", [b"ab", b"ac"], [b"a[bc", b"ad", b"abc"])
        self.check(b"a[", [], [b"a", b"a[", b"ab"])
        self.check(b"a[^", [b"ab", b"a["], [b"a", b"abc"])
        self.check(b"[a-", [b"a", b"-"], [b"b"])
        self.check(b"[*", [b"*"], [b"a", b"**"])

    def test_nocase(self):
        """nocase folds ASCII letters in literals and ranges (lowered after the swap)."""
        self.check(b"MAX*", [b"maxmemory", b"MaXx"], [b"mix"], nocase=True)
        self.check(b"[A-C]", [b"b", b"B"], [b"d"], nocase=True)
        # C..a (with _) lowered after the swap is c..a, an empty range.
        self.check(b"[C-a]", [b"C", b"D", b"_", b"a"], [b"b", b"B"])
        self.check(b"[C-a]", [], [b"c", b"C", b"_", b"a", b"b"], nocase=True)
        self.check(b"[a-Cx]", [b"x", b"X"], [b"a", b"b", b"c", b"_"], nocase=True)
        self.check(b"\xc9", [b"\xc9"], [b"\xe9"], nocase=True)

    def test_nocase_escape_in_class(self):
        """Inside a class an escaped byte is compared exactly, even with nocase."""
        self.check(b"[\\A]", [b"A"], [b"a"], nocase=True)
        self.check(b"\\A", [b"A", b"a"], [], nocase=True)

    def test_backtracking_patterns_answer(self):
        """Patterns whose backtracking search is exponential answer right on 10 kB keys."""
        key = b"a" * 10000
        self.assertTrue(matches(b"*a" * 40 + b"b", key + b"b"))
        self.assertFalse(matches(b"*a" * 40 + b"b", key))
        self.assertTrue(matches(b"*" + b"a*" * 30 + b"ab*", key[:5000] + b"b" + key[:5000]))
        self.assertFalse(matches(b"*" + b"a*" * 30 + b"ab*", key))
        self.assertTrue(matches(b"*[ab]?*" * 25 + b"c", key + b"c"))
        self.assertFalse(matches(b"*[ab]?*" * 25 + b"c", key))
        self.assertFalse(matches(b"*a*" * 500 + b"c", key))
        self.assertTrue(matches(b"*a*" * 500 + b"c", key + b"c"))

    @settings(max_examples=1500, deadline=None)
    @given(patterns, keys, st.booleans())
    def test_random_against_reference(self, pattern, key, nocase):
        """On random patterns and keys compile_glob answers as the stringmatchlen port."""
        self.assertEqual(matches(pattern, key, nocase),
                         redis_stringmatchlen(pattern, key, nocase))

    @settings(max_examples=1500, deadline=None)
    @given(pattern_and_near_key(), st.booleans())
    def test_near_keys_against_reference(self, case, nocase):
        """On keys built from the pattern (mostly matching) compile_glob agrees with the port."""
        pattern, key = case
        self.assertEqual(matches(pattern, key, nocase),
                         redis_stringmatchlen(pattern, key, nocase))


class CacheTests(SynchronousTestCase):
    def test_cache_is_bounded(self):
        """Compiled patterns are reused, and the cache never grows past its bound."""
        first = compile_glob(b"cached:*")
        self.assertIs(compile_glob(b"cached:*"), first)
        self.assertIsNot(compile_glob(b"cached:*", nocase=True), first)
        for index in range(glob.CACHE_SIZE * 2):
            compile_glob(b"k%d*" % index)
        self.assertLessEqual(len(glob._cache), glob.CACHE_SIZE)
        self.assertTrue(compile_glob(b"k1*")(b"k1x"))

    def test_long_patterns_are_not_cached(self):
        """A pattern longer than the cacheable bound is compiled but not kept."""
        pattern = b"x" * (glob.CACHE_PATTERN_MAX + 1) + b"*"
        self.assertTrue(compile_glob(pattern)(pattern[:-1] + b"tail"))
        self.assertNotIn((pattern, False), glob._cache)


def _parse_keys_reply(raw: bytes) -> set:
    # KEYS answers an array of bulk strings, which may hold any byte.
    header, _, rest = raw.partition(b"\r\n")
    assert header[:1] == b"*", raw
    found = set()
    for _ in range(int(header[1:])):
        length_line, _, rest = rest.partition(b"\r\n")
        length = int(length_line[1:])
        found.add(rest[:length])
        rest = rest[length + 2:]
    return found


class RedisDifferentialTests(SynchronousTestCase):
    @classmethod
    def setUpClass(cls):
        cls.server = start_redis_or_skip()
        cls.redis = RawConnection(cls.server.port)

    @classmethod
    def tearDownClass(cls):
        cls.redis.close()
        cls.server.stop()

    @settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(st.lists(keys, min_size=1, max_size=20, unique=True),
           st.lists(st.one_of(patterns, pattern_and_near_key().map(lambda case: case[0])),
                    min_size=1, max_size=8))
    def test_keys_like_redis(self, stored, globs):
        """KEYS with generated patterns over generated keys returns redis-server's key set."""
        self.assertEqual(self.redis.call([b"FLUSHALL"]), b"+OK\r\n")
        mset = [b"MSET"]
        for key in stored:
            mset.extend([key, b"v"])
        self.assertEqual(self.redis.call(mset), b"+OK\r\n")
        keyspace = Keyspace(Clock())
        for key in stored:
            keyspace.set(key, b"v")
        for pattern in globs:
            theirs = _parse_keys_reply(self.redis.call([b"KEYS", pattern]))
            self.assertEqual(set(keyspace.keys(pattern)), theirs, pattern)

    def test_hand_picked_like_redis(self):
        """The syntax corner cases answer as redis-server's KEYS does."""
        stored = [b"", b"a", b"]", b"\\", b"-", b"^", b"\x00", b"\x7f", b"\x80", b"\xff", b"ab",
                  b"a*b", b"A", b"x\\", b"[", b"*", b"aab"]
        self.assertEqual(self.redis.call([b"FLUSHALL"]), b"+OK\r\n")
        keyspace = Keyspace(Clock())
        for key in stored:
            self.assertEqual(self.redis.call([b"SET", key, b"v"]), b"+OK\r\n")
            keyspace.set(key, b"v")
        for pattern in [b"**", b"*", b"", b"[a-]", b"[a-]x]", b"[\x00-\xff]", b"[\x80-\x7f]",
                        b"[]a]", b"[^]", b"[^", b"a[", b"x\\", b"\\", b"[\\", b"[\\]]",
                        b"a\\*b", b"[c-a]", b"?", b"*a*b", b"[*", b"[a-\x80]"]:
            theirs = _parse_keys_reply(self.redis.call([b"KEYS", pattern]))
            self.assertEqual(set(keyspace.keys(pattern)), theirs, pattern)
