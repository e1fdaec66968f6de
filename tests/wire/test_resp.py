"""Tests for kvtwist.wire.resp: the RESP2 request parser."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st
from twisted.trial.unittest import SynchronousTestCase

from kvtwist.wire.replies import Error, Status
from kvtwist.wire.resp import ProtocolError, RequestParser
from kvtwist.wire.respreply import encode_command
from tests.redisref import start_redis_or_skip
from tests.wire.test_respreply import exchange

SET_AB = b"*3\r\n$3\r\nSET\r\n$1\r\na\r\n$1\r\nb\r\n"

# Values rich in the bytes that matter to a request cutter: CR, LF, "$", "*", digits.
_values = st.one_of(st.binary(max_size=20), st.lists(
    st.sampled_from([b"\r\n", b"\r", b"\n", b"$", b"*", b"0", b"1", b"x"]), max_size=8
).map(b"".join))
# Wire pieces: whole requests (valid or with junk bytes) to test equivalence on any input.
_wire_fragments = st.one_of(
    st.lists(_values, min_size=1, max_size=4).map(encode_command),
    st.sampled_from([b"*0\r\n", b"*-1\r\n", b"*01\r\n", b"$3\r\n", b"*1\r\n$03\r\nabc\r\n",
                     b"*1\r\n$-1\r\n", b"PING\r\n", b"\r\n", b"*2\r\n", b"*1\r\n$3\r\nabcXY"]),
    _values)


def _requests(data: bytes, parser=None) -> list:
    parser = parser or RequestParser()
    parser.feed(data)
    return parser.next_requests()


def _error(data: bytes, parser=None) -> str:
    parser = parser or RequestParser()
    parser.feed(data)
    try:
        while parser.next_request() is not None:
            pass
    except ProtocolError as exc:
        return str(exc)
    raise AssertionError("no ProtocolError for %r" % (data,))


def _reference(data: bytes, parser) -> tuple:
    """Return next_request()'s requests for ``data`` and its error text (or None)."""
    parser.feed(data)
    got = []
    try:
        while True:
            argv = parser.next_request()
            if argv is None:
                return got, None
            got.append(argv)
    except ProtocolError as exc:
        return got, str(exc)


class RequestParserTests(SynchronousTestCase):
    """RequestParser reads multibulk and inline requests as redis-server does."""

    def test_multibulk_whole(self) -> None:
        """A whole multibulk request comes out as its argv, then None."""
        parser = RequestParser()
        parser.feed(SET_AB)
        self.assertEqual(parser.next_request(), [b"SET", b"a", b"b"])
        self.assertIsNone(parser.next_request())
        self.assertEqual(parser.buffered(), 0)

    def test_multibulk_byte_at_a_time(self) -> None:
        """Fed one byte at a time, nothing comes out before the last byte."""
        parser = RequestParser()
        for index in range(len(SET_AB) - 1):
            parser.feed(SET_AB[index:index + 1])
            self.assertIsNone(parser.next_request())
        parser.feed(SET_AB[-1:])
        self.assertEqual(parser.next_request(), [b"SET", b"a", b"b"])

    def test_trailing_bytes_stay_buffered(self) -> None:
        """Bytes after a complete request stay buffered for the next one."""
        parser = RequestParser()
        parser.feed(SET_AB + b"*1\r\n$4\r\nPI")
        self.assertEqual(parser.next_request(), [b"SET", b"a", b"b"])
        self.assertIsNone(parser.next_request())
        # The complete header lines are already parsed; the partial argument is kept.
        self.assertEqual(parser.buffered(), len(b"PI"))
        parser.feed(b"NG\r\n")
        self.assertEqual(parser.next_request(), [b"PING"])

    def test_pipelined(self) -> None:
        """Many requests in one feed come out in order from next_requests()."""
        data = b"".join(encode_command([b"INCR", b"k%d" % i]) for i in range(50))
        self.assertEqual(_requests(data), [[b"INCR", b"k%d" % i] for i in range(50)])

    def test_binary_bulk(self) -> None:
        """Bulk arguments are binary-safe, CRLF and empty values included."""
        data = encode_command([b"SET", b"\r\n", b"", b"\x00\xff"])
        self.assertEqual(_requests(data), [[b"SET", b"\r\n", b"", b"\x00\xff"]])

    def test_empty_multibulk_skipped(self) -> None:
        """*0, *-1 and other negative counts are skipped like redis-server does."""
        self.assertEqual(_requests(b"*0\r\n*-1\r\n*-5\r\n" + SET_AB), [[b"SET", b"a", b"b"]])

    def test_inline(self) -> None:
        """Inline requests end at CRLF or bare LF and are split with split_args."""
        self.assertEqual(
            _requests(b'SET k "a b"\r\nGET k\nPING\r'),
            [[b"SET", b"k", b"a b"], [b"GET", b"k"]],
        )

    def test_inline_byte_at_a_time(self) -> None:
        """An inline request fed byte by byte comes out only at its newline."""
        parser = RequestParser()
        for byte in b"GET key\r":
            parser.feed(bytes([byte]))
            self.assertIsNone(parser.next_request())
        parser.feed(b"\n")
        self.assertEqual(parser.next_request(), [b"GET", b"key"])

    def test_inline_strips_one_cr(self) -> None:
        """Only the CR right before LF is the terminator; a lone CR elsewhere separates words."""
        self.assertEqual(_requests(b"ECHO\r\r\n"), [[b"ECHO"]])
        self.assertEqual(_requests(b"a\rb\n"), [[b"a", b"b"]])

    def test_blank_inline_skipped(self) -> None:
        """Blank lines between requests are skipped."""
        self.assertEqual(_requests(b"\r\n\n  \r\nPING\n"), [[b"PING"]])

    def test_inline_then_multibulk(self) -> None:
        """Inline and multibulk requests may alternate on one connection."""
        self.assertEqual(_requests(b"PING\r\n" + SET_AB + b"PING\n"),
                         [[b"PING"], [b"SET", b"a", b"b"], [b"PING"]])

    def test_unbalanced_quotes(self) -> None:
        """An unbalanced inline request is a protocol error with Redis's text."""
        self.assertEqual(_error(b'ECHO "x\r\n'), "Protocol error: unbalanced quotes in request")

    def test_invalid_multibulk_length(self) -> None:
        """Counts that are not plain decimal numbers are invalid, as string2ll rejects them."""
        for header in (b"*\r\n", b"*x\r\n", b"*01\r\n", b"*+1\r\n", b"*1 \r\n", b"*-0\r\n",
                       b"*1_0\r\n"):
            self.assertEqual(_error(header), "Protocol error: invalid multibulk length", header)

    def test_too_many_args(self) -> None:
        """A count above max_args is an invalid multibulk length."""
        self.assertEqual(_error(b"*4\r\n", RequestParser(max_args=3)),
                         "Protocol error: invalid multibulk length")
        self.assertEqual(_requests(b"*3\r\n$1\r\na\r\n$1\r\nb\r\n$1\r\nc\r\n",
                                   RequestParser(max_args=3)),
                         [[b"a", b"b", b"c"]])

    def test_unauthenticated_limits(self) -> None:
        """Before AUTH, more than 10 arguments or one over 16384 bytes are refused with
        redis-server's "unauthenticated" texts; after it the usual limits are back."""
        def restricted():
            parser = RequestParser()
            parser.unauthenticated(True, 512 * 1024 * 1024)
            return parser
        self.assertEqual(_error(b"*100\r\n", restricted()),
                         "Protocol error: unauthenticated multibulk length")
        self.assertEqual(_error(b"*1\r\n$100000000\r\n", restricted()),
                         "Protocol error: unauthenticated bulk length")
        self.assertEqual(_requests(b"*2\r\n$4\r\nAUTH\r\n$16384\r\n" + b"p" * 16384
                                   + b"\r\n", restricted()), [[b"AUTH", b"p" * 16384]])
        parser = restricted()
        parser.unauthenticated(False, 512 * 1024 * 1024)
        self.assertEqual(_requests(b"*11\r\n" + b"$1\r\na\r\n" * 11, parser), [[b"a"] * 11])

    def test_expected_dollar(self) -> None:
        """An argument not starting with $ names the offending byte."""
        self.assertEqual(_error(b"*1\r\nx\r\n"), "Protocol error: expected '$', got 'x'")

    def test_invalid_bulk_length(self) -> None:
        """Negative, signed, zero-padded or malformed bulk lengths are invalid."""
        for header in (b"$-1", b"$", b"$+4", b"$04", b"$4x", b"$ 4"):
            data = b"*1\r\n" + header + b"\r\nPING\r\n"
            self.assertEqual(_error(data), "Protocol error: invalid bulk length", header)

    def test_bulk_over_limit(self) -> None:
        """A bulk longer than max_bulk is refused before its body arrives."""
        parser = RequestParser(max_bulk=10)
        self.assertEqual(_error(b"*1\r\n$11\r\n", parser), "Protocol error: invalid bulk length")
        self.assertEqual(_requests(b"*1\r\n$10\r\n0123456789\r\n", RequestParser(max_bulk=10)),
                         [[b"0123456789"]])

    def test_too_big_inline(self) -> None:
        """An inline line longer than max_inline is refused, with or without its newline."""
        parser = RequestParser(max_inline=16)
        parser.feed(b"x" * 16)
        self.assertIsNone(parser.next_request())
        self.assertEqual(_error(b"x", parser), "Protocol error: too big inline request")
        self.assertEqual(_error(b"x" * 17 + b"\n", RequestParser(max_inline=16)),
                         "Protocol error: too big inline request")
        self.assertEqual(_requests(b"x" * 16 + b"\n", RequestParser(max_inline=16)), [[b"x" * 16]])

    def test_too_big_count_strings(self) -> None:
        """Unterminated count lines beyond max_inline give the 'too big' errors."""
        self.assertEqual(_error(b"*" + b"1" * 20, RequestParser(max_inline=16)),
                         "Protocol error: too big mbulk count string")
        self.assertEqual(_error(b"*1\r\n$" + b"1" * 20, RequestParser(max_inline=16)),
                         "Protocol error: too big bulk count string")

    def test_error_is_sticky(self) -> None:
        """After a protocol error every later call raises it again."""
        parser = RequestParser()
        _error(b"*x\r\n", parser)
        parser.feed(SET_AB)
        self.assertRaises(ProtocolError, parser.next_request)

    def test_large_bulk_in_small_pieces(self) -> None:
        """A large bulk fed in small pieces is queued, not re-joined per piece, and is intact."""
        value = bytes(range(256)) * 4096
        data = encode_command([b"SET", b"k", value])
        parser = RequestParser()
        for start in range(0, len(data) - 1000, 1000):
            parser.feed(data[start:start + 1000])
            self.assertIsNone(parser.next_request())
            # Linear cost: the unparsed tail is not copied into the buffer on every feed.
            self.assertLess(len(parser._buf), 2000)
        parser.feed(data[start + 1000:])
        self.assertEqual(parser.next_request(), [b"SET", b"k", value])

    def test_large_bulk_cut_from_pieces(self) -> None:
        """A bulk past LARGE_BULK comes out intact, with requests pipelined around it.

        Whole, byte by byte and with trailing bytes: it is joined straight from the pieces
        it arrived in, and what followed it stays buffered for the next request.
        """
        self.patch(RequestParser, "LARGE_BULK", 16)
        value = bytes(range(200)) * 3
        data = (encode_command([b"PING"]) + encode_command([b"SET", value, value])
                + encode_command([b"GET", b"k"]))
        expected = [[b"PING"], [b"SET", value, value], [b"GET", b"k"]]
        for step in (len(data), 1, 7, 100):
            parser = RequestParser()
            got = []
            for start in range(0, len(data), step):
                parser.feed(data[start:start + step])
                request = parser.next_request()
                while request is not None:
                    got.append(request)
                    request = parser.next_request()
            self.assertEqual(got, expected, step)
            self.assertEqual(parser.buffered(), 0)
        parser = RequestParser()
        parser.feed(data[:-3])
        self.assertEqual([parser.next_request(), parser.next_request()], expected[:2])
        self.assertIsNone(parser.next_request())
        parser.feed(data[-3:])
        self.assertEqual(parser.next_request(), expected[2])

    def test_large_bulk_left_to_join(self) -> None:
        """With defer_large, a large argument's pieces wait in ``joining`` for the caller to join.

        The requests before it come out at once; nothing after it is parsed until
        ``joined`` hands the value back, whole, byte by byte or with trailing bytes.
        """
        self.patch(RequestParser, "LARGE_BULK", 16)
        value = bytes(range(200)) * 3
        data = (encode_command([b"PING"]) + encode_command([b"SET", b"k", value])
                + encode_command([b"GET", b"k"]))
        for step in (len(data), 1, 7):
            parser = RequestParser(defer_large=True)
            got, joins = [], 0
            for start in range(0, len(data), step):
                requests, error = parser.drain(data[start:start + step])
                got += requests
                while parser.joining is not None:
                    joins += 1
                    parser.joined(b"".join(parser.joining))
                    requests, error = parser.drain(b"")
                    got += requests
                self.assertIsNone(error)
            self.assertEqual(got, [[b"PING"], [b"SET", b"k", value], [b"GET", b"k"]], step)
            # Read whole, the request is cut straight out of the read (one copy, no join).
            self.assertEqual(joins, 0 if step == len(data) else 1)
        parser = RequestParser(defer_large=True)
        requests, error = parser.drain(data[:40])
        requests += parser.drain(data[40:])[0]
        self.assertEqual(requests, [[b"PING"]])
        self.assertEqual(parser.drain(b"more")[0], [])  # held: nothing parsed while joining

    def test_partial_line_not_rescanned(self) -> None:
        """Pieces of a line without a newline are queued rather than joined and searched again."""
        parser = RequestParser()
        parser.feed(b"GET ")
        self.assertIsNone(parser.next_request())
        for _ in range(100):
            parser.feed(b"k")
            self.assertIsNone(parser.next_request())
        self.assertLess(len(parser._buf), 10)
        parser.feed(b"\r\n")
        self.assertEqual(parser.next_request(), [b"GET", b"k" * 100])

    def test_feed_accepts_buffers(self) -> None:
        """bytearray and memoryview input is accepted like bytes."""
        parser = RequestParser()
        parser.feed(bytearray(SET_AB[:5]))
        parser.feed(memoryview(SET_AB[5:]))
        parser.feed(b"")
        self.assertEqual(parser.next_request(), [b"SET", b"a", b"b"])

    @given(st.lists(st.lists(st.binary(max_size=20), min_size=1, max_size=6), max_size=6),
           st.data())
    def test_round_trip(self, requests, data) -> None:
        """encode_command output, split anywhere, parses back to the same argvs."""
        wire = b"".join(encode_command(argv) for argv in requests)
        cuts = sorted(data.draw(st.lists(st.integers(0, len(wire)), max_size=8)))
        parser = RequestParser()
        got = []
        previous = 0
        for cut in cuts + [len(wire)]:
            parser.feed(wire[previous:cut])
            previous = cut
            got.extend(parser.next_requests())
        self.assertEqual(got, requests)
        self.assertEqual(parser.buffered(), 0)

    @given(st.binary(max_size=60))
    def test_arbitrary_input(self, wire) -> None:
        """Arbitrary bytes yield argvs of bytes or a ProtocolError, never another exception."""
        parser = RequestParser(max_inline=32, max_bulk=32)
        parser.feed(wire)
        try:
            for argv in parser.next_requests():
                self.assertTrue(argv)
                self.assertTrue(all(isinstance(arg, bytes) for arg in argv))
        except ProtocolError:
            pass


class AgainstRedisTests(SynchronousTestCase):
    """The parsers agree with a real redis-server 7 on the same bytes."""

    def setUp(self) -> None:
        server = start_redis_or_skip()
        self.addCleanup(server.stop)
        self.port = server.port

    def test_protocol_errors(self) -> None:
        """Each malformed request gets the same error text from redis-server and from us."""
        cases = [
            b"*x\r\n", b"*01\r\n", b"*+1\r\n", b"*\r\n", b"*1 \r\n", b"*3000000000\r\n", b"*-0\r\n",
            b"*1\r\nx\r\n", b"*1\r\n$-1\r\n", b"*1\r\n$04\r\nPING\r\n", b"*1\r\n$+4\r\nPING\r\n",
            b'ECHO "x\r\n', b"ECHO 'a'b\r\n", b"*1\r\n$600000000\r\n",
            b"x" * 70000, b"*" + b"1" * 70000, b"*1\r\n$" + b"1" * 70000,
        ]
        for data in cases:
            replies = exchange(self.port, data)
            self.assertEqual(len(replies), 1, data[:40])
            self.assertEqual(replies[0], Error("ERR " + _error(data)), data[:40])

    def test_inline_splitting(self) -> None:
        """Inline arguments, as redis-server stores them via RPUSH, match split_args."""
        payloads = [
            b'"a\\x41b" \'c\\\'d\' e"f g"', b'"\\n\\r\\t\\b\\a\\q\\x4g\\x4"', b"a\x0bb \x0c c",
            b"'a\\b' \"\\\\\"", b"\xff\xfe plain\ttab",
        ]
        for payload in payloads:
            replies = exchange(
                self.port, b"DEL k\r\nRPUSH k " + payload + b"\r\nLRANGE k 0 -1\r\nQUIT\r\n")
            mine = RequestParser()
            mine.feed(b"RPUSH k " + payload + b"\r\n")
            self.assertEqual(replies[2], mine.next_request()[2:], payload)

    def test_skipped_requests(self) -> None:
        """Empty multibulk requests and blank lines get no reply from either side."""
        data = b"*0\r\n*-1\r\n*-5\r\n\r\n\n  \r\n*1\r\n$4\r\nPING\r\nPING\nQUIT\r\n"
        self.assertEqual(exchange(self.port, data), [Status(b"PONG")] * 2 + [Status(b"OK")])
        self.assertEqual(_requests(data), [[b"PING"], [b"PING"], [b"QUIT"]])

class DrainTests(SynchronousTestCase):
    """RequestParser.drain: the server's fast path gives what next_request() gives."""

    def drain_all(self, chunks, parser=None):
        parser = parser or RequestParser(max_bulk=64)
        got, error = [], None
        for chunk in chunks:
            requests, error = parser.drain(chunk)
            got.extend(requests)
            if error is not None:
                break
        return got, error

    def test_whole_pipeline(self) -> None:
        """Complete requests in one read all come out, in order, with no error."""
        data = encode_command([b"SET", b"k", b"v"]) + encode_command([b"GET", b"k"])
        self.assertEqual(self.drain_all([data]), ([[b"SET", b"k", b"v"], [b"GET", b"k"]], None))

    def test_one_byte_at_a_time(self) -> None:
        """A request split into single bytes comes out once, when its last byte arrives."""
        data = encode_command([b"SET", b"key", b"value"]) + b"PING\r\n"
        parser = RequestParser()
        seen = []
        for i in range(len(data)):
            requests, error = parser.drain(data[i:i + 1])
            self.assertIsNone(error)
            seen.append((i, requests))
        self.assertEqual([(i, r) for i, r in seen if r],
                         [(len(data) - 7, [[b"SET", b"key", b"value"]]),
                          (len(data) - 1, [[b"PING"]])])

    def test_trailing_partial_kept(self) -> None:
        """A partial request after complete ones stays buffered for the next read."""
        whole = encode_command([b"GET", b"a"])
        second = encode_command([b"GET", b"bb"])
        got, error = self.drain_all([whole + second[:7], second[7:]])
        self.assertEqual((got, error), ([[b"GET", b"a"], [b"GET", b"bb"]], None))

    def test_error_after_good_requests(self) -> None:
        """Requests before a malformed one are returned together with its error."""
        data = encode_command([b"PING"]) + b"*2\r\n$3\r\nGET\r\n$999\r\n"
        got, error = self.drain_all([data])
        self.assertEqual(got, [[b"PING"]])
        self.assertEqual(str(error), "Protocol error: invalid bulk length")

    def test_inline_mixed_with_multibulk(self) -> None:
        """Inline requests between multibulk ones go through the general parser, in order."""
        data = encode_command([b"PING"]) + b"ECHO hi\r\n" + encode_command([b"GET", b"k"])
        self.assertEqual(self.drain_all([data]),
                         ([[b"PING"], [b"ECHO", b"hi"], [b"GET", b"k"]], None))

    @given(st.lists(st.lists(_values, min_size=1, max_size=4), max_size=8),
           st.integers(min_value=1, max_value=40))
    def test_any_split_matches_next_request(self, argvs, size) -> None:
        """However the bytes are split into reads, drain yields the encoded requests."""
        data = b"".join(encode_command(argv) for argv in argvs)
        chunks = [data[i:i + size] for i in range(0, len(data), size)]
        # The server's limits turn on the one-request check, the small ones keep it off.
        for parser in (RequestParser(), RequestParser(max_bulk=64)):
            self.assertEqual(self.drain_all(chunks, parser), (argvs, None))

    def test_values_with_crlf_and_markers(self) -> None:
        """Values holding CRLF, "$" and "*" bytes, and requests after them, come out intact."""
        argvs = [[b"SET", b"k", b"a\r\nb"], [b"GET", b"*1\r\n$1\r\nx"], [b"ECHO", b"$3"],
                 [b"SET", b"\r\n", b"\r"], [b"GET", b"k"], [b"ECHO", b"*"]]
        data = b"".join(encode_command(argv) for argv in argvs)
        self.assertEqual(self.drain_all([data]), (argvs, None))
        self.assertEqual(_requests(data), argvs)

    def test_large_read(self) -> None:
        """A read too big for the split cutter, with CRLF-bearing values, matches next_request."""
        argvs = [[b"SET", b"k%d" % i, b"v\r\n" * (i % 7)] for i in range(300)]
        argvs.append([b"SET", b"big", b"\r\n$3\r\n" * 2000])
        data = b"".join(encode_command(argv) for argv in argvs)
        self.assertGreater(len(data), 16384)
        self.assertEqual(RequestParser().drain(data), (argvs, None))
        self.assertEqual(_requests(data), argvs)

    def test_empty_values(self) -> None:
        """Empty values, alone, first, last or all of a request, come out as b""."""
        argvs = [[b""], [b"", b"x"], [b"SET", b"k", b""], [b"", b"", b""], [b"GET", b"k"]]
        data = b"".join(encode_command(argv) for argv in argvs)
        self.assertEqual(self.drain_all([data]), (argvs, None))

    def test_bad_trailer_goes_to_general_path(self) -> None:
        """Two bytes other than CRLF after a value are skipped unchecked, as next_request does."""
        data = b"*2\r\n$3\r\nGET\r\n$1\r\nkXY*1\r\n$4\r\nPING\r\n"
        self.assertEqual(self.drain_all([data]), ([[b"GET", b"k"], [b"PING"]], None))
        self.assertEqual(_requests(data), [[b"GET", b"k"], [b"PING"]])

    def test_small_limits_match_next_request(self) -> None:
        """With tiny max_inline and max_bulk, drain raises what next_request raises."""
        good = encode_command([b"GET", b"k"])
        for data, limits in [(good + b"*1\r\n$10\r\n0123456789\r\n", {"max_inline": 2}),
                             (good + b"*1\r\n$5\r\nhello\r\n", {"max_bulk": 4}),
                             (good + b"*3\r\n$1\r\na\r\n", {"max_args": 2}),
                             (good + encode_command([b"PING"]), {"max_inline": 1})]:
            requests, error = RequestParser(**limits).drain(data)
            self.assertIsNotNone(error)
            self.assertEqual((requests, str(error)), _reference(data, RequestParser(**limits)))

    @given(st.lists(_wire_fragments, max_size=12), st.integers(min_value=1, max_value=40))
    def test_any_input_matches_next_request(self, fragments, size) -> None:
        """On any bytes, split anyhow, drain yields next_request()'s requests and error."""
        data = b"".join(fragments)
        expected, expected_error = _reference(data, RequestParser(max_bulk=64, max_inline=32))
        for chunks in ([data], [data[i:i + size] for i in range(0, len(data), size)]):
            got, error = self.drain_all(chunks, RequestParser(max_bulk=64, max_inline=32))
            self.assertEqual((got, error and str(error)), (expected, expected_error))

    @given(st.lists(_values, min_size=1, max_size=6))
    def test_one_request_per_read(self, argv) -> None:
        """A read holding exactly one request, whatever bytes its values hold, yields it alone."""
        self.assertEqual(RequestParser().drain(encode_command(argv)), ([argv], None))

    @given(st.lists(_wire_fragments, min_size=1, max_size=3))
    def test_server_limits_match_next_request(self, fragments) -> None:
        """With the server's limits (the one-request check on), drain matches next_request()."""
        data = b"".join(fragments)
        requests, error = RequestParser().drain(data)
        self.assertEqual((requests, error and str(error)), _reference(data, RequestParser()))

    def test_one_request_edge_cases(self) -> None:
        """Near misses of the one-request shape are cut as next_request() cuts them."""
        long_value = b"v" * 300
        for data in [b"*1\r\n$04\r\nPING\r\n", b"*01\r\n$4\r\nPING\r\n",
                     b"*2\r\n$3\r\nGET\r\n$300\r\n" + long_value + b"\r\n",
                     b"*1\r\n$4\r\nPING\r\n*", b"*2\r\n$4\r\nPING\r\n",
                     b"*1\r\n$4\r\nPI\r\n\r\n", b"*1\r\n$2\r\nPING\r\n",
                     b"*1\r\n4\r\nPING\r\n", b"*1\r\n$4\r\nPING\r\nX\r\n"]:
            requests, error = RequestParser().drain(data)
            self.assertEqual((requests, error and str(error)), _reference(data, RequestParser()),
                             data)
        # Limits too small for "$255" or "*255" headers turn the check off.
        for limits in [{"max_bulk": 3}, {"max_args": 1}, {"max_inline": 3}]:
            data = encode_command([b"ECHO", b"abcd"])
            requests, error = RequestParser(**limits).drain(data)
            self.assertEqual((requests, error and str(error)),
                             _reference(data, RequestParser(**limits)), limits)

    def test_one_request_reads_among_others(self) -> None:
        """One-request reads keep their order among pipelined, partial and inline reads."""
        one, two = encode_command([b"SET", b"k", b"v"]), encode_command([b"GET", b"k"])
        reads = [one + two, one, two[:5], two[5:], one, b"PING\r\n", two, one + two[:3],
                 two[3:], one]
        got, error = self.drain_all(reads, RequestParser())
        set_, get = [b"SET", b"k", b"v"], [b"GET", b"k"]
        self.assertEqual((got, error), ([set_, get, set_, get, set_, [b"PING"], get, set_, get,
                                         set_], None))

    def test_one_request_skips_pipeline_cutter(self) -> None:
        """A read of one short request is cut without the loop that walks a pipeline."""
        import kvtwist.wire.resp as resp

        def refuse(*args):
            raise AssertionError("the pipeline cutter ran")

        self.patch(resp, "split_requests", refuse)
        argv = [b"SET", b"key:1", b"*$0"]
        self.assertEqual(RequestParser().drain(encode_command(argv)), ([argv], None))
