"""Tests for kvtwist.wire.inline: sdssplitargs-compatible splitting of inline requests."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st
from twisted.trial.unittest import SynchronousTestCase

from kvtwist.wire.inline import UnbalancedQuotes, split_args
from kvtwist.wire.replies import quote


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
