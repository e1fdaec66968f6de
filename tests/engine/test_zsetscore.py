"""Tests for kvtwist.engine.zsetscore: Redis's score text (strtod, %.17g) and range bounds."""

from __future__ import annotations

from twisted.trial.unittest import SynchronousTestCase

from kvtwist.engine.zsetscore import (
    format_score, lex_empty, parse_bound, parse_lex, parse_score, strtod)


class ScoreTextTests(SynchronousTestCase):
    def test_parse_score_as_string2d(self):
        """Scores parse as Redis's strtod-based string2d: hex, inf, no spaces, no NaN, no
        overflow or underflow to zero."""
        good = {b"1": 1.0, b"-1.5": -1.5, b"+inf": float("inf"), b"-Infinity": float("-inf"),
                b"0x10": 16.0, b"0x1p-2": 0.25, b".5": 0.5, b"5.": 5.0, b"1e3": 1000.0,
                b"4.9e-324": 5e-324, b"-0": -0.0, b"1e308": 1e308}
        for text, value in good.items():
            self.assertEqual(parse_score(text), value, text)
        for text in (b"", b" 1", b"1 ", b"nan", b"abc", b"1e400", b"1e-400", b"1_0", b"0x",
                     b"1e", b"\x001", b"1\x00", b"--1", b"inf(", b"0x1p99999"):
            self.assertIsNone(parse_score(text), text)

    def test_strtod_prefixes(self):
        """strtod reads the longest number at the start and says how much it used."""
        self.assertEqual(strtod(b"  12abc")[:2], (12.0, 4))
        self.assertEqual(strtod(b"0x")[:2], (0.0, 1))
        self.assertEqual(strtod(b"1e+")[:2], (1.0, 1))
        self.assertEqual(strtod(b"x")[:2], (0.0, 0))
        self.assertTrue(strtod(b"1e999")[2])

    def test_format_score(self):
        """Scores print as %.17g, inf and -inf."""
        self.assertEqual(format_score(1.1), b"1.1000000000000001")
        self.assertEqual(format_score(-0.0), b"-0")
        self.assertEqual(format_score(float("inf")), b"inf")
        self.assertEqual(format_score(float("-inf")), b"-inf")
        self.assertEqual(format_score(1e20), b"1e+20")

    def test_bounds(self):
        """Range bounds take "(" for exclusive, stop at a NUL, refuse NaN; lex bounds need
        "[", "(", "-" or "+"."""
        self.assertEqual(parse_bound(b"(1.5"), (1.5, True))
        self.assertEqual(parse_bound(b""), (0.0, False))
        self.assertEqual(parse_bound(b"2\x00junk"), (2.0, False))
        self.assertIsNone(parse_bound(b"nan"))
        self.assertIsNone(parse_bound(b"1x"))
        self.assertEqual(parse_lex(b"[a")[0], b"a")
        self.assertTrue(parse_lex(b"(a")[1])
        self.assertIsNone(parse_lex(b"a"))
        self.assertIsNone(parse_lex(b"+a"))

    def test_lex_empty(self):
        """A lex range is empty when min is above max, or equal with an exclusive end."""
        self.assertTrue(lex_empty(parse_lex(b"[b"), parse_lex(b"[a")))
        self.assertTrue(lex_empty(parse_lex(b"(a"), parse_lex(b"[a")))
        self.assertFalse(lex_empty(parse_lex(b"[a"), parse_lex(b"[a")))
        self.assertTrue(lex_empty(parse_lex(b"+"), parse_lex(b"-")))
        self.assertFalse(lex_empty(parse_lex(b"-"), parse_lex(b"+")))
