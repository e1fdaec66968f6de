"""Tests for kvtwist.wire.replies: reply values and their RESP2 and redis-cli renderings."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st
from twisted.trial.unittest import SynchronousTestCase

from kvtwist.wire import replies
from kvtwist.wire.replies import (
    NIL_ARRAY,
    OK,
    PONG,
    CommandError,
    Error,
    Pairs,
    Status,
    quote,
    to_resp,
    to_text,
)


class ReplyValueTests(SynchronousTestCase):
    """The reply value classes compare, hash and print by content."""

    def test_status_equality(self) -> None:
        """Status values are equal exactly when their texts are equal, and hash alike."""
        self.assertEqual(Status(b"OK"), OK)
        self.assertNotEqual(Status(b"OK"), Status(b"PONG"))
        self.assertNotEqual(Status(b"OK"), b"OK")
        self.assertEqual(hash(Status(b"PONG")), hash(PONG))

    def test_error_equality(self) -> None:
        """Error values are equal exactly when their messages are equal, and hash alike."""
        self.assertEqual(Error("ERR x"), Error("ERR x"))
        self.assertNotEqual(Error("ERR x"), Error("ERR y"))
        self.assertNotEqual(Error("ERR x"), "ERR x")
        self.assertEqual(hash(Error("ERR x")), hash(Error("ERR x")))

    def test_pairs_equality(self) -> None:
        """Pairs compare by their item lists."""
        self.assertEqual(Pairs([(b"a", b"1")]), Pairs([(b"a", b"1")]))
        self.assertNotEqual(Pairs([(b"a", b"1")]), Pairs([(b"a", b"2")]))

    def test_reprs(self) -> None:
        """Each value's repr names its kind and content."""
        self.assertEqual(repr(Status(b"OK")), "Status(b'OK')")
        self.assertEqual(repr(Error("ERR x")), "Error('ERR x')")
        self.assertEqual(repr(NIL_ARRAY), "NIL_ARRAY")
        self.assertEqual(repr(Pairs([])), "Pairs([])")

    def test_command_error_message(self) -> None:
        """CommandError keeps its full message both as args[0] and .message."""
        exc = CommandError("ERR syntax error")
        self.assertEqual(exc.args[0], "ERR syntax error")
        self.assertEqual(exc.message, "ERR syntax error")


class ToRespTests(SynchronousTestCase):
    """to_resp renders each reply kind byte-exactly as redis-server does."""

    def test_bulk(self) -> None:
        """Bytes become a length-prefixed bulk string, binary and empty ones included."""
        self.assertEqual(to_resp(b"hello"), b"$5\r\nhello\r\n")
        self.assertEqual(to_resp(b""), b"$0\r\n\r\n")
        self.assertEqual(to_resp(b"a\r\nb\x00"), b"$5\r\na\r\nb\x00\r\n")

    def test_nil(self) -> None:
        """None becomes the nil bulk string."""
        self.assertEqual(to_resp(None), b"$-1\r\n")

    def test_integer(self) -> None:
        """Integers (negative, big, and int subclasses like bool) become :N lines."""
        self.assertEqual(to_resp(3), b":3\r\n")
        self.assertEqual(to_resp(-42), b":-42\r\n")
        self.assertEqual(to_resp(2 ** 63 - 1), b":9223372036854775807\r\n")
        self.assertEqual(to_resp(True), b":1\r\n")

    def test_status(self) -> None:
        """Status values become simple strings, OK through its shared constant too."""
        self.assertEqual(to_resp(OK), b"+OK\r\n")
        self.assertEqual(to_resp(Status(b"OK")), b"+OK\r\n")
        self.assertEqual(to_resp(PONG), b"+PONG\r\n")

    def test_error(self) -> None:
        """Errors become one -line; CR and LF in the message turn into spaces."""
        self.assertEqual(to_resp(Error("ERR bad")), b"-ERR bad\r\n")
        self.assertEqual(to_resp(Error("ERR a\r\nb\nc")), b"-ERR a  b c\r\n")

    def test_error_non_ascii(self) -> None:
        """Error text is sent as UTF-8."""
        self.assertEqual(to_resp(Error("ERR caf\u00e9")), b"-ERR caf\xc3\xa9\r\n")

    def test_arrays(self) -> None:
        """Lists and tuples become arrays, nested freely, empty ones as *0."""
        self.assertEqual(to_resp([]), b"*0\r\n")
        self.assertEqual(to_resp((b"a", 1)), b"*2\r\n$1\r\na\r\n:1\r\n")
        self.assertEqual(
            to_resp([b"a", [None, [Error("ERR x"), []]], OK]),
            b"*3\r\n$1\r\na\r\n*2\r\n$-1\r\n*2\r\n-ERR x\r\n*0\r\n+OK\r\n",
        )

    def test_nil_array(self) -> None:
        """NIL_ARRAY becomes *-1."""
        self.assertEqual(to_resp(NIL_ARRAY), b"*-1\r\n")

    def test_pairs(self) -> None:
        """Pairs become one flat array of key, value, key, value."""
        self.assertEqual(
            to_resp(Pairs([(b"k1", b"v1"), (b"k2", b"v2")])),
            b"*4\r\n$2\r\nk1\r\n$2\r\nv1\r\n$2\r\nk2\r\n$2\r\nv2\r\n",
        )

    def test_buffer_types(self) -> None:
        """bytearray and memoryview render like the bytes they hold."""
        self.assertEqual(to_resp(bytearray(b"ab")), b"$2\r\nab\r\n")
        self.assertEqual(to_resp(memoryview(b"ab")), b"$2\r\nab\r\n")

    def test_not_a_reply(self) -> None:
        """Anything else is a TypeError, not garbage on the wire."""
        self.assertRaises(TypeError, to_resp, "text")
        self.assertRaises(TypeError, to_resp, 1.5)
        self.assertRaises(TypeError, to_resp, [object()])


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
        original = replies._quote_escaped
        self.patch(replies, "_quote_escaped", lambda value: calls.append(value) or original(value))
        self.assertEqual(quote(b"hello world ~!#$[]{}"), b'"hello world ~!#$[]{}"')
        self.assertEqual(calls, [])
        self.assertEqual(quote(b"tab\there"), b'"tab\\there"')
        self.assertEqual(calls, [b"tab\there"])

    @given(st.binary(max_size=64))
    def test_fast_path_matches_byte_loop(self, value) -> None:
        """quote() (fast path or not) equals the per-byte rendering and sdscatrepr for any bytes."""
        self.assertEqual(quote(value), replies._quote_escaped(value))
        self.assertEqual(quote(value), _sdscatrepr(value))

    @given(st.lists(st.integers(0x1F, 0x80), max_size=64).map(bytes))
    def test_near_printable(self, value) -> None:
        """Bytes around the printable range, where the fast path decides, match sdscatrepr."""
        self.assertEqual(quote(value), replies._quote_escaped(value))
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
