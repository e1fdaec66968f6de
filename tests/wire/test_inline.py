"""Tests for kvtwist.wire.inline: sdssplitargs-compatible splitting, and framing lines."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st
from twisted.trial.unittest import SynchronousTestCase

from kvtwist.wire.inline import LineFramer, UnbalancedQuotes, split_args
from kvtwist.wire.textreply import quote


class SplitArgsTests(SynchronousTestCase):
    """split_args follows redis-server's sdssplitargs (cases checked against redis-server 7)."""

    def test_words(self) -> None:
        """Plain words split on runs of spaces and tabs, ignoring leading/trailing blanks."""
        self.assertEqual(split_args(b"SET  key\tvalue "), [b"SET", b"key", b"value"])
        self.assertEqual(split_args(b"  PING"), [b"PING"])

    def test_blank(self) -> None:
        """A blank line has no arguments."""
        self.assertEqual(split_args(b""), [])
        self.assertEqual(split_args(b" \t \r\n"), [])

    def test_binary_unquoted(self) -> None:
        """Unquoted words keep any non-blank byte, high bytes included."""
        self.assertEqual(split_args(b"a\xffb \\x41"), [b"a\xffb", b"\\x41"])

    def test_vertical_tab_inside_word(self) -> None:
        """\\v and \\f are skipped between words but kept inside one, as in Redis."""
        self.assertEqual(split_args(b"\x0bECHO a\x0bb"), [b"ECHO", b"a\x0bb"])
        self.assertEqual(split_args(b"a\x0cb"), [b"a\x0cb"])

    def test_double_quote_escapes(self) -> None:
        """Double quotes take \\n \\r \\t \\b \\a \\" \\\\ and \\xHH escapes."""
        self.assertEqual(
            split_args(b'"a\\n\\r\\t\\b\\a\\"\\\\\\x41\\x4a"'),
            [b'a\n\r\t\x08\x07"\\AJ'],
        )

    def test_double_quote_other_escapes(self) -> None:
        """An unknown escape or an incomplete \\x yields the escaped character itself."""
        self.assertEqual(split_args(b'"\\q\\x4A"'), [b"qJ"])
        self.assertEqual(split_args(b'"\\x4g"'), [b"x4g"])
        self.assertEqual(split_args(b'"\\x4"'), [b"x4"])

    def test_double_quote_keeps_spaces(self) -> None:
        """Spaces inside quotes belong to the argument and an empty pair is an empty argument."""
        self.assertEqual(split_args(b'SET "a b" ""'), [b"SET", b"a b", b""])

    def test_quote_inside_word(self) -> None:
        """A quote opening in the middle of a word continues that word."""
        self.assertEqual(split_args(b'ECHO a"b c"'), [b"ECHO", b"ab c"])

    def test_single_quotes(self) -> None:
        """Single quotes are literal except for \\' ."""
        self.assertEqual(split_args(b"'a\\'b' 'a\\b' '\\n'"), [b"a'b", b"a\\b", b"\\n"])

    def test_closing_quote_then_blank(self) -> None:
        """A closing quote may be followed by any blank, \\f included."""
        self.assertEqual(split_args(b'"a"\x0cb'), [b"a", b"b"])
        self.assertEqual(split_args(b"'a'\tb"), [b"a", b"b"])

    def test_glued_closing_quote(self) -> None:
        """A closing quote followed by a non-blank is unbalanced."""
        self.assertRaises(UnbalancedQuotes, split_args, b'ECHO "ab"c')
        self.assertRaises(UnbalancedQuotes, split_args, b"ECHO 'ab'c")

    def test_unterminated(self) -> None:
        """An unterminated quote is unbalanced, also when it ends in a backslash."""
        self.assertRaises(UnbalancedQuotes, split_args, b'ECHO "x')
        self.assertRaises(UnbalancedQuotes, split_args, b"ECHO 'x")
        self.assertRaises(UnbalancedQuotes, split_args, b'ECHO "a\\"')

    def test_unbalanced_is_value_error(self) -> None:
        """UnbalancedQuotes is a ValueError, so generic handlers catch it."""
        self.assertTrue(issubclass(UnbalancedQuotes, ValueError))

    def test_nul_is_ordinary(self) -> None:
        """NUL bytes are ordinary bytes (redis-server would hang on them instead)."""
        self.assertEqual(split_args(b"a\x00b c"), [b"a\x00b", b"c"])
        self.assertEqual(split_args(b'"a\x00b"'), [b"a\x00b"])

    @given(st.lists(st.binary(), max_size=8))
    def test_quoted_round_trip(self, args) -> None:
        """Any arguments, quoted the way redis-cli prints them, split back unchanged."""
        line = b" ".join(quote(arg) for arg in args)
        self.assertEqual(split_args(line), args)

    @given(st.lists(st.binary(min_size=1).filter(lambda b: not set(b) & set(b" \t\r\n\"'\x0b\x0c")),
                    max_size=8))
    def test_plain_round_trip(self, words) -> None:
        """Words without blanks or quotes, joined by spaces, split back unchanged."""
        self.assertEqual(split_args(b" ".join(words)), words)

    @given(st.binary(max_size=40))
    def test_never_crashes(self, line) -> None:
        """Arbitrary bytes give a list of bytes or UnbalancedQuotes, nothing else."""
        try:
            result = split_args(line)
        except UnbalancedQuotes:
            return
        self.assertIsInstance(result, list)
        for arg in result:
            self.assertIsInstance(arg, bytes)


class LineFramerTests(SynchronousTestCase):
    """LineFramer cuts a stream into LF-terminated lines in time linear in its length."""

    def test_lines_in_one_feed(self) -> None:
        """Every complete line of a feed comes back in order, CR kept, the tail held."""
        framer = LineFramer(100)
        self.assertEqual(list(framer.feed(b"PING\r\nGET a\n\nSET")), [b"PING\r", b"GET a", b""])
        self.assertEqual(list(framer.feed(b" k v\n")), [b"SET k v"])
        self.assertEqual(framer.held(), [])

    def test_unfinished_line_held_as_its_pieces(self) -> None:
        """Pieces of an unfinished line are kept as they were fed, not joined on every feed."""
        framer = LineFramer(100000)
        pieces = [bytes([65 + i % 26]) for i in range(5000)]
        for piece in pieces:
            self.assertEqual(list(framer.feed(piece)), [])
        held = framer.held()
        self.assertEqual(len(held), len(pieces))
        self.assertTrue(all(a is b for a, b in zip(held, pieces)))
        self.assertEqual(list(framer.feed(b"\n")), [b"".join(pieces)])

    def test_line_at_the_limit(self) -> None:
        """A line of exactly ``limit`` bytes is accepted, however it arrives."""
        framer = LineFramer(10)
        self.assertEqual(list(framer.feed(b"0123456789")), [])
        self.assertEqual(list(framer.feed(b"\n0123456789\n")), [b"0123456789", b"0123456789"])
        self.assertFalse(framer.overflow)

    def test_unfinished_line_over_the_limit(self) -> None:
        """Holding more than ``limit`` bytes of one line sets overflow and drops them."""
        framer = LineFramer(10)
        self.assertEqual(list(framer.feed(b"PING\n01234")), [b"PING"])
        self.assertEqual(list(framer.feed(b"56789")), [])
        self.assertFalse(framer.overflow)
        self.assertEqual(list(framer.feed(b"x")), [])
        self.assertTrue(framer.overflow)
        self.assertEqual(framer.held(), [])
        self.assertEqual(list(framer.feed(b"\nPING\n")), [])

    def test_complete_line_over_the_limit(self) -> None:
        """A complete line longer than ``limit`` ends the stream after the lines before it."""
        framer = LineFramer(4)
        self.assertEqual(list(framer.feed(b"PING\nLONGER\nPING\n")), [b"PING"])
        self.assertTrue(framer.overflow)
        framer = LineFramer(4)
        self.assertEqual(list(framer.feed(b"PI")), [])
        self.assertEqual(list(framer.feed(b"NGS\nPING\n")), [])
        self.assertTrue(framer.overflow)

    def test_tail_over_the_limit(self) -> None:
        """An unfinished tail longer than ``limit`` overflows after the complete lines."""
        framer = LineFramer(4)
        self.assertEqual(list(framer.feed(b"PING\nPINGPING")), [b"PING"])
        self.assertTrue(framer.overflow)

    def test_clear(self) -> None:
        """clear() drops the unfinished line."""
        framer = LineFramer(10)
        framer.feed(b"abc")
        framer.clear()
        self.assertEqual(list(framer.feed(b"d\n")), [b"d"])

    @given(st.binary(max_size=200), st.lists(st.integers(0, 200), max_size=20))
    def test_any_split(self, stream, cuts) -> None:
        """However the stream is cut into reads, the lines are those of one bytes.split."""
        framer = LineFramer(1000)
        lines = []
        start = 0
        for cut in sorted(cuts) + [len(stream)]:
            lines += framer.feed(stream[start:cut])
            start = max(start, cut)
        self.assertEqual(lines, stream.split(b"\n")[:-1])
        self.assertEqual(b"".join(framer.held()), stream.split(b"\n")[-1])

    @given(st.lists(st.binary(max_size=12).filter(lambda b: b"\n" not in b), max_size=8),
           st.integers(1, 8))
    def test_overflow_matches_whole_stream(self, lines, step) -> None:
        """Lines are served up to the first over ``limit`` bytes, whatever the read size."""
        limit = 6
        stream = b"\n".join(lines)
        framer = LineFramer(limit)
        got = []
        for start in range(0, len(stream), step):
            got += framer.feed(stream[start:start + step])
        pieces = stream.split(b"\n")
        expected = []
        for index, line in enumerate(pieces):
            if len(line) > limit:
                break
            if index < len(pieces) - 1:
                expected.append(line)
        self.assertEqual(got, expected)
        self.assertEqual(framer.overflow, any(len(line) > limit for line in pieces))
