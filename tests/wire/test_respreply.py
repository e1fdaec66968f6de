"""Tests for kvtwist.wire.respreply: the RESP2 reply parser and the request encoder."""

from __future__ import annotations

import socket

from hypothesis import given
from hypothesis import strategies as st
from twisted.trial.unittest import SynchronousTestCase

from kvtwist.wire.replies import NIL_ARRAY, Error, Pairs, Status, to_resp
from kvtwist.wire.respreply import (
    LARGE_ARG, NEED_MORE, ProtocolError, ReplyParser, coalesce, encode_command, encode_request)
from tests.redisref import start_redis_or_skip


class ReplyParserTests(SynchronousTestCase):
    """ReplyParser turns RESP2 bytes into reply values."""

    def test_each_kind(self) -> None:
        """Every RESP2 reply kind becomes its reply value."""
        parser = ReplyParser()
        parser.feed(b"+OK\r\n-ERR bad\r\n:-7\r\n$3\r\nabc\r\n$-1\r\n*-1\r\n*0\r\n$0\r\n\r\n")
        expected = [Status(b"OK"), Error("ERR bad"), -7, b"abc", None, NIL_ARRAY, [], b""]
        for value in expected:
            self.assertEqual(parser.next_reply(), value)
        self.assertIs(parser.next_reply(), NEED_MORE)

    def test_nested_byte_at_a_time(self) -> None:
        """A nested array fed one byte at a time comes out only after its last byte."""
        wire = to_resp([b"a", [1, [None, b"\r\n"]], [], Status(b"PONG")])
        parser = ReplyParser()
        for index in range(len(wire) - 1):
            parser.feed(wire[index:index + 1])
            self.assertIs(parser.next_reply(), NEED_MORE)
        parser.feed(wire[-1:])
        self.assertEqual(parser.next_reply(), [b"a", [1, [None, b"\r\n"]], [], Status(b"PONG")])

    def test_trailing_bytes_stay_buffered(self) -> None:
        """Bytes after a complete reply stay buffered for the next one."""
        parser = ReplyParser()
        parser.feed(b":1\r\n$5\r\nhel")
        self.assertEqual(parser.next_reply(), 1)
        self.assertIs(parser.next_reply(), NEED_MORE)
        self.assertEqual(parser.buffered(), len(b"$5\r\nhel"))
        parser.feed(b"lo\r\n")
        self.assertEqual(parser.next_reply(), b"hello")

    def depth_of(self, reply) -> int:
        """How many arrays ``reply`` nests, each holding one element, down to the integer 1
        (walked with a loop: comparing such a reply would recurse)."""
        depth = 0
        while reply.__class__ is list:
            self.assertEqual(len(reply), 1)
            reply = reply[0]
            depth += 1
        self.assertEqual(reply, 1)
        return depth

    def test_deep_nesting(self) -> None:
        """A reply nested 100000 arrays deep parses (no recursion), whole or in pieces."""
        wire = b"*1\r\n" * 100000 + b":1\r\n" + b"+OK\r\n"
        parser = ReplyParser()
        parser.feed(wire)
        self.assertEqual(self.depth_of(parser.next_reply()), 100000)
        self.assertEqual(parser.next_reply(), Status(b"OK"))
        parser = ReplyParser()
        got = []
        for start in range(0, len(wire), 4093):
            parser.feed(wire[start:start + 4093])
            reply = parser.next_reply()
            while reply is not NEED_MORE:
                got.append(reply)
                reply = parser.next_reply()
        self.assertEqual((self.depth_of(got[0]), got[1:]), (100000, [Status(b"OK")]))

    def test_max_depth(self) -> None:
        """Past max_depth a reply is read to its end and comes out as too_deep; replies
        within it, and the ones after it, come out as they are."""
        parser = ReplyParser(max_depth=3)
        parser.feed(b"*1\r\n" * 3 + b":1\r\n" + b"*1\r\n" * 4 + b":1\r\n"
                    + b"*2\r\n*1\r\n*1\r\n*0\r\n:2\r\n" + b":3\r\n")
        self.assertEqual(self.depth_of(parser.next_reply()), 3)
        self.assertEqual(parser.next_reply(), Error("ERR reply nested deeper than 3 arrays"))
        self.assertEqual(parser.next_reply(), Error("ERR reply nested deeper than 3 arrays"))
        self.assertEqual(parser.next_reply(), 3)
        parser = ReplyParser(max_depth=1, too_deep="deep")
        parser.feed(b"*1\r\n*-1\r\n*1\r\n:1\r\n")
        self.assertEqual([parser.next_reply(), parser.next_reply()], ["deep", [1]])

    def test_many_pipelined(self) -> None:
        """Ten thousand pipelined replies fed in odd-sized pieces all come out in order."""
        wire = b"".join(to_resp([b"v%d" % i, i]) for i in range(10000))
        parser = ReplyParser()
        got = []
        for start in range(0, len(wire), 777):
            parser.feed(wire[start:start + 777])
            reply = parser.next_reply()
            while reply is not NEED_MORE:
                got.append(reply)
                reply = parser.next_reply()
        self.assertEqual(got, [[b"v%d" % i, i] for i in range(10000)])

    def test_large_array_in_pieces(self) -> None:
        """A partially received array keeps its parsed elements instead of re-reading them."""
        wire = to_resp([b"x" * 10] * 1000)
        parser = ReplyParser()
        for start in range(0, len(wire) - 100, 100):
            parser.feed(wire[start:start + 100])
            self.assertIs(parser.next_reply(), NEED_MORE)
            self.assertLess(parser.buffered(), 200)
        parser.feed(wire[start + 100:])
        self.assertEqual(parser.next_reply(), [b"x" * 10] * 1000)

    def test_malformed(self) -> None:
        """Malformed replies raise ProtocolError, and keep raising it."""
        for wire in (b"?x\r\n", b"$x\r\n", b"$-2\r\n", b"*-2\r\n", b"*x\r\n", b":1.5\r\n",
                     b"$1\r\nab\r\n", b"$\r\n"):
            parser = ReplyParser()
            parser.feed(wire)
            self.assertRaises(ProtocolError, parser.next_reply)
            self.assertRaises(ProtocolError, parser.next_reply)

    def test_error_text_decoding(self) -> None:
        """Error text is decoded as UTF-8, invalid bytes replaced rather than crashing."""
        parser = ReplyParser()
        parser.feed(b"-ERR caf\xc3\xa9 \xff\r\n")
        self.assertEqual(parser.next_reply(), Error("ERR caf\u00e9 \ufffd"))

    @given(st.recursive(
        st.one_of(st.binary(max_size=12), st.none(), st.integers(-2 ** 63, 2 ** 63 - 1),
                  st.binary(max_size=8).filter(
                      lambda b: b"\r" not in b and b"\n" not in b).map(Status),
                  st.text(max_size=8).filter(lambda t: "\r" not in t and "\n" not in t)
                  .map(lambda t: Error("ERR " + t)),
                  st.just(NIL_ARRAY)),
        lambda children: st.lists(children, max_size=4), max_leaves=20),
        st.integers(1, 7))
    def test_round_trip(self, reply, piece) -> None:
        """to_resp(reply) fed in pieces parses back to an equal reply."""
        wire = to_resp(reply) + b"+next\r\n"
        parser = ReplyParser()
        got = []
        for start in range(0, len(wire), piece):
            parser.feed(wire[start:start + piece])
            value = parser.next_reply()
            while value is not NEED_MORE:
                got.append(value)
                value = parser.next_reply()
        self.assertEqual(got, [reply, Status(b"next")])

    @given(st.lists(st.integers(1, 300000), min_size=1, max_size=12), st.booleans(),
           st.integers(0, 3))
    def test_large_bulk_any_split(self, cuts, nested, extra) -> None:
        """A bulk string over LARGE_BULK, alone or inside an array, with replies after it,
        parses the same however the bytes are cut (it is cut from the pieces directly)."""
        big = bytes(range(256)) * ((ReplyParser.LARGE_BULK >> 8) + 1) + b"x" * extra
        reply = [b"a", big, 5] if nested else big
        wire = to_resp(reply) + b"+next\r\n$1\r\nz\r\n"
        parser = ReplyParser()
        got = []
        start = 0
        for size in cuts + [len(wire)]:
            parser.feed(wire[start:start + size])
            start += size
            value = parser.next_reply()
            while value is not NEED_MORE:
                got.append(value)
                value = parser.next_reply()
        self.assertEqual(got, [reply, Status(b"next"), b"z"])

    def test_large_bulk_waits_for_its_end(self) -> None:
        """Until its last byte and CRLF arrive, a large bulk string is NEED_MORE; a large
        one not followed by CRLF is malformed, as a small one is."""
        big = b"v" * (ReplyParser.LARGE_BULK + 10)
        wire = to_resp(big)
        parser = ReplyParser()
        parser.feed(wire[:-1])
        self.assertIs(parser.next_reply(), NEED_MORE)
        parser.feed(wire[-1:])
        self.assertEqual(parser.next_reply(), big)
        self.assertEqual(parser.buffered(), 0)
        parser = ReplyParser()
        parser.feed(wire[:-2] + b"xx")
        self.assertRaises(ProtocolError, parser.next_reply)
        self.assertRaises(ProtocolError, parser.next_reply)

    def test_pairs_arrive_flat(self) -> None:
        """Pairs travel as a flat array and parse back as one."""
        parser = ReplyParser()
        parser.feed(to_resp(Pairs([(b"k", b"v")])))
        self.assertEqual(parser.next_reply(), [b"k", b"v"])


class EncodeCommandTests(SynchronousTestCase):
    """encode_command builds multibulk requests."""

    def test_types(self) -> None:
        """bytes, str (UTF-8), int and float arguments become bulk strings."""
        self.assertEqual(
            encode_command([b"SET", "k\u00e9", 12, 1.5]),
            b"*4\r\n$3\r\nSET\r\n$3\r\nk\xc3\xa9\r\n$2\r\n12\r\n$3\r\n1.5\r\n",
        )

    def test_empty(self) -> None:
        """No arguments give *0, and a generator is accepted."""
        self.assertEqual(encode_command([]), b"*0\r\n")
        self.assertEqual(encode_command(x for x in [b"PING"]), b"*1\r\n$4\r\nPING\r\n")

    def test_bad_types(self) -> None:
        """bool, None and other objects are TypeErrors."""
        for bad in (True, None, object(), [b"x"]):
            self.assertRaises(TypeError, encode_command, [b"SET", bad])


class EncodeRequestTests(SynchronousTestCase):
    """encode_request keeps a large argument uncopied among the request's pieces."""

    @given(st.lists(st.sampled_from([b"", b"k", b"\r\n", None]), min_size=1, max_size=6))
    def test_joins_to_encode_command(self, shape) -> None:
        """Large or not, the pieces join to encode_command's bytes; small only: bytes."""
        large = b"L" * (LARGE_ARG + 1)
        argv = [large if arg is None else arg for arg in shape]
        data = encode_request(argv)
        if None in shape:
            self.assertIsInstance(data, list)
            self.assertTrue(any(piece is large for piece in data))
            self.assertEqual(b"".join(data), encode_command(argv))
        else:
            self.assertEqual(data, encode_command(argv))

    def test_coalesce(self) -> None:
        """Short pieces are joined into runs; a large one is yielded alone, the same object."""
        large = b"L" * (LARGE_ARG + 1)
        self.assertEqual(list(coalesce([b"a", b"b"])), [b"ab"])
        out = list(coalesce([b"*3\r\n", b"$1\r\nk\r\n", large, b"\r\n", b"x"]))
        self.assertEqual(out[0], b"*3\r\n$1\r\nk\r\n")
        self.assertIs(out[1], large)
        self.assertEqual(out[2:], [b"\r\nx"])
        self.assertEqual(list(coalesce([large])), [large])


def exchange(port: int, data: bytes) -> list:
    """Send data to loopback ``port``, read replies until it closes; return them parsed."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    try:
        sock.sendall(data)
        parser = ReplyParser()
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                break
            parser.feed(chunk)
    finally:
        sock.close()
    replies = []
    reply = parser.next_reply()
    while reply is not NEED_MORE:
        replies.append(reply)
        reply = parser.next_reply()
    return replies


class AgainstRedisTests(SynchronousTestCase):
    """ReplyParser reads what a real redis-server 7 sends."""

    def setUp(self) -> None:
        server = start_redis_or_skip()
        self.addCleanup(server.stop)
        self.port = server.port

    def test_reply_parser_on_real_replies(self) -> None:
        """ReplyParser reads what redis-server sends for every reply kind."""
        wire = b"".join(encode_command(argv) for argv in [
            [b"SET", b"k", b"v\r\n"], [b"GET", b"k"], [b"GET", b"missing"], [b"INCR", b"n"],
            [b"LPUSH", b"l", b"a", b"b"], [b"LRANGE", b"l", 0, -1], [b"LRANGE", b"none", 0, -1],
            [b"INCR", b"k"], [b"BLPOP", b"none", 0.01], [b"QUIT"],
        ])
        self.assertEqual(exchange(self.port, wire), [
            Status(b"OK"), b"v\r\n", None, 1, 2, [b"b", b"a"], [],
            Error("ERR value is not an integer or out of range"), NIL_ARRAY, Status(b"OK"),
        ])
