"""Tests for kvtwist.wire.textreply: replies rendered as redis-cli shows them."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st
from twisted.trial.unittest import SynchronousTestCase

from kvtwist.wire import textreply
from kvtwist.wire.replies import NIL_ARRAY, OK, Error, Pairs, Streamed
from kvtwist.wire.textreply import quote, text_pieces, to_text
from tests.wire.test_replies import _CUTS, _KEYS, _PAIRS, cut


class QuoteTests(SynchronousTestCase):
    """quote() escapes bytes exactly as redis-cli's sdscatrepr."""

    def test_quote(self) -> None:
        """Printable ASCII is kept, the named escapes are used, the rest is \\xHH."""
        self.assertEqual(quote(b"abc"), b'"abc"')
        self.assertEqual(quote(b'q"\\'), b'"q\\"\\\\"')
        self.assertEqual(quote(b"\n\r\t\x07\x08"), b'"\\n\\r\\t\\a\\b"')
        self.assertEqual(quote(b"\x00\x7f\xff"), b'"\\x00\\x7f\\xff"')
        self.assertEqual(quote(b""), b'""')

    def test_every_byte(self) -> None:
        """Each of the 256 byte values, alone and among plain text, renders as sdscatrepr does."""
        for byte in range(256):
            value = bytes([byte])
            self.assertEqual(quote(value), _sdscatrepr(value), byte)
            self.assertEqual(quote(b"ab" + value + b"cd"), _sdscatrepr(b"ab" + value + b"cd"),
                             byte)

    def test_plain_value_not_copied_per_byte(self) -> None:
        """A value with only plain printable bytes skips the per-byte path entirely."""
        calls = []
        original = textreply._quote_escaped
        self.patch(textreply, "_quote_escaped",
                   lambda value: calls.append(value) or original(value))
        self.assertEqual(quote(b"hello world ~!#$[]{}"), b'"hello world ~!#$[]{}"')
        self.assertEqual(calls, [])
        self.assertEqual(quote(b"tab\there"), b'"tab\\there"')
        self.assertEqual(calls, [b"tab\there"])

    @given(st.binary(max_size=64))
    def test_fast_path_matches_byte_loop(self, value) -> None:
        """quote() (fast path or not) equals the per-byte rendering and sdscatrepr for any bytes."""
        self.assertEqual(quote(value), textreply._quote_escaped(value))
        self.assertEqual(quote(value), _sdscatrepr(value))

    @given(st.lists(st.integers(0x1F, 0x80), max_size=64).map(bytes))
    def test_near_printable(self, value) -> None:
        """Bytes around the printable range, where the fast path decides, match sdscatrepr."""
        self.assertEqual(quote(value), textreply._quote_escaped(value))
        self.assertEqual(quote(value), _sdscatrepr(value))


def _sdscatrepr(value: bytes) -> bytes:
    # An independent transcription of redis's sdscatrepr switch, as the reference.
    out = b'"'
    for byte in value:
        char = bytes([byte])
        if char in (b"\\", b'"'):
            out += b"\\" + char
        elif char == b"\n":
            out += b"\\n"
        elif char == b"\r":
            out += b"\\r"
        elif char == b"\t":
            out += b"\\t"
        elif char == b"\a":
            out += b"\\a"
        elif char == b"\b":
            out += b"\\b"
        elif char.isalnum() or char in b" !#$%&'()*+,-./:;<=>?@[]^_`{|}~":
            out += char
        else:
            out += b"\\x%02x" % byte
    return out + b'"'


class ToTextTests(SynchronousTestCase):
    """to_text renders replies as redis-cli prints them (checked against redis-cli --no-raw)."""

    def test_status(self) -> None:
        """A status is its bare text."""
        self.assertEqual(to_text(OK), b"OK\r\n")

    def test_bulk(self) -> None:
        """A bulk string is quoted with escapes."""
        self.assertEqual(to_text(b'q"\n'), b'"q\\"\\n"\r\n')

    def test_nil(self) -> None:
        """None and NIL_ARRAY both print (nil)."""
        self.assertEqual(to_text(None), b"(nil)\r\n")
        self.assertEqual(to_text(NIL_ARRAY), b"(nil)\r\n")

    def test_integer(self) -> None:
        """Integers print as (integer) N, bools as 0/1."""
        self.assertEqual(to_text(3), b"(integer) 3\r\n")
        self.assertEqual(to_text(-1), b"(integer) -1\r\n")
        self.assertEqual(to_text(False), b"(integer) 0\r\n")

    def test_error(self) -> None:
        """Errors print as (error) MESSAGE on one line."""
        self.assertEqual(to_text(Error("ERR x")), b"(error) ERR x\r\n")
        self.assertEqual(to_text(Error("ERR a\nb")), b"(error) ERR a b\r\n")

    def test_empty_array(self) -> None:
        """An empty array prints (empty array)."""
        self.assertEqual(to_text([]), b"(empty array)\r\n")

    def test_array(self) -> None:
        """Array items are numbered 1) 2) ..., nils included."""
        self.assertEqual(to_text([b"a", None, b"c"]), b'1) "a"\r\n2) (nil)\r\n3) "c"\r\n')

    def test_nested_array(self) -> None:
        """Nested arrays indent like redis-cli, with numbers right-aligned for 10+ items."""
        reply = [1, [b"a", b"b"], [], [[b"x"]], b'q"\n', 5, 6, 7, 8, 9, 10]
        expected = (
            b" 1) (integer) 1\r\n"
            b' 2) 1) "a"\r\n'
            b'    2) "b"\r\n'
            b" 3) (empty array)\r\n"
            b' 4) 1) 1) "x"\r\n'
            b' 5) "q\\"\\n"\r\n'
            b" 6) (integer) 5\r\n"
            b" 7) (integer) 6\r\n"
            b" 8) (integer) 7\r\n"
            b" 9) (integer) 8\r\n"
            b"10) (integer) 9\r\n"
            b"11) (integer) 10\r\n"
        )
        self.assertEqual(to_text(reply), expected)

    def test_pairs(self) -> None:
        """Pairs print one key => value line each and a closing count line."""
        self.assertEqual(
            to_text(Pairs([(b"a", b"1"), (b"b\n", b"")])),
            b'"a" => "1"\r\n"b\\n" => ""\r\n(2 pairs)\r\n',
        )
        self.assertEqual(to_text(Pairs([(b"a", b"1")])), b'"a" => "1"\r\n(1 pair)\r\n')
        self.assertEqual(to_text(Pairs([])), b"(0 pairs)\r\n")

    def test_not_a_reply(self) -> None:
        """Anything else is a TypeError."""
        self.assertRaises(TypeError, to_text, "text")


class StreamedTextTests(SynchronousTestCase):
    """Streamed replies in the text dialect: rendered a slice at a time, as their whole value."""

    @given(_KEYS, _CUTS)
    def test_text_array(self, keys, cuts) -> None:
        """An array's text pieces are redis-cli's numbered lines, "(empty array)" for none."""
        stream = Streamed(len(keys), iter(cut(keys, cuts)))
        self.assertEqual(b"".join(text_pieces(stream)), to_text(keys))

    @given(_PAIRS, _CUTS)
    def test_text_pairs(self, data, cuts) -> None:
        """Pairs' text pieces are one line a pair and the final "(N pairs)" line."""
        items = sorted(data.items())
        stream = Streamed(len(items), iter(cut(items, cuts)), pairs=True)
        self.assertEqual(b"".join(text_pieces(stream)), to_text(Pairs(items)))
