"""Tests for kvtwist.wire.replies: reply values and their RESP2 and RESP3 renderings."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st
from twisted.trial.unittest import SynchronousTestCase

from kvtwist.wire import jsonlines, replies
from kvtwist.wire.replies import (
    NIL_ARRAY,
    OK,
    PONG,
    CommandError,
    Double,
    Error,
    Pairs,
    SetReply,
    Status,
    Streamed,
    bulk_pieces,
    resp_pieces,
    sorted_pairs,
    stream_array,
    to_resp,
    to_resp3,
)
from kvtwist.wire.textreply import to_text


def cut(items: list, cuts: list) -> list:
    """``items`` cut into consecutive slices at the offsets ``cuts`` (empty slices included)."""
    slices = []
    start = 0
    for end in sorted(cuts) + [len(items)]:
        end = min(max(end, start), len(items))
        slices.append(items[start:end])
        start = end
    return slices


_KEYS = st.lists(st.binary(max_size=6), max_size=30)
_PAIRS = st.dictionaries(st.binary(max_size=6), st.binary(max_size=6), max_size=30)
_CUTS = st.lists(st.integers(0, 30), max_size=6)


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

    @given(st.lists(st.one_of(st.binary(max_size=8), st.binary(min_size=1020, max_size=1030)),
                    max_size=12), st.booleans())
    def test_flat_array_any_lengths(self, items, resp3) -> None:
        """A flat list of byte strings, short or long (past the header table), renders as
        each element's bulk string after the count, in RESP2 and RESP3 alike."""
        expected = b"*%d\r\n" % len(items) + b"".join(
            b"$%d\r\n%s\r\n" % (len(item), item) for item in items)
        self.assertEqual((to_resp3 if resp3 else to_resp)(items), expected)

    def test_flat_array_fast_path(self) -> None:
        """A list of byte strings is joined at once, not rendered element by element."""
        calls = []
        original = replies.to_resp
        self.patch(replies, "to_resp", lambda reply: calls.append(reply) or original(reply))
        self.assertEqual(replies.to_resp([b"a", b"bc"]), b"*2\r\n$1\r\na\r\n$2\r\nbc\r\n")
        self.assertEqual(calls, [[b"a", b"bc"]])

    def test_flat_array_of_other_elements(self) -> None:
        """Elements that are not byte strings (sized or not) go element by element."""
        self.assertEqual(to_resp([b"a", [b"b"], b"c"]),
                         b"*3\r\n$1\r\na\r\n*1\r\n$1\r\nb\r\n$1\r\nc\r\n")
        self.assertEqual(to_resp([b"a", None, 7]),
                         b"*3\r\n$1\r\na\r\n$-1\r\n:7\r\n")
        self.assertEqual(to_resp([b"x" * 2000, [b"y" * 1500]]),
                         b"*2\r\n$2000\r\n" + b"x" * 2000 + b"\r\n*1\r\n$1500\r\n"
                         + b"y" * 1500 + b"\r\n")
        self.assertEqual(to_resp([bytearray(b"ab"), memoryview(b"c")]),
                         b"*2\r\n$2\r\nab\r\n$1\r\nc\r\n")
        self.assertRaises(TypeError, to_resp, [b"a", "text"])

    def test_mixed_array_element_by_element(self) -> None:
        """An array mixing bulk strings, Doubles (RESP2 bulk strings), ints, nils and nested
        arrays renders as its count and each element's own rendering."""
        reply = [b"m", Double(b"1.5"), 3, None, [b"x", Double(b"inf")], (b"t",), OK]
        expected = b"*7\r\n" + b"".join(to_resp(item) for item in reply)
        self.assertEqual(to_resp(reply), expected)
        self.assertIn(b"$3\r\n1.5\r\n", expected)

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


class StreamedTests(SynchronousTestCase):
    """Streamed replies: rendered a slice at a time, byte for byte as their whole value."""

    def test_whole(self) -> None:
        """whole() gives the plain list, or Pairs, of every slice's entries."""
        array = Streamed(3, iter([[b"a"], [], [b"b", b"c"]]))
        self.assertEqual(array.whole(), [b"a", b"b", b"c"])
        pairs = Streamed(2, iter([[(b"a", b"1")], [(b"b", b"2")]]), pairs=True)
        self.assertEqual(pairs.whole(), Pairs([(b"a", b"1"), (b"b", b"2")]))
        self.assertEqual(repr(Streamed(7, iter([]), pairs=True)), "Streamed(7 pairs)")

    @given(_KEYS, _CUTS, st.booleans())
    def test_resp_array(self, keys, cuts, resp3) -> None:
        """An array's RESP2/RESP3 pieces join to the whole array's rendering."""
        stream = Streamed(len(keys), iter(cut(keys, cuts)))
        render = to_resp3 if resp3 else to_resp
        self.assertEqual(b"".join(resp_pieces(stream, resp3)), render(keys))

    @given(_PAIRS, _CUTS, st.booleans())
    def test_resp_pairs(self, data, cuts, resp3) -> None:
        """Pairs' RESP2 pieces join to a flat array, RESP3's to a map, as the whole Pairs."""
        items = sorted(data.items())
        stream = Streamed(len(items), iter(cut(items, cuts)), pairs=True)
        render = to_resp3 if resp3 else to_resp
        self.assertEqual(b"".join(resp_pieces(stream, resp3)), render(Pairs(items)))

    @given(st.binary(max_size=300), st.integers(1, 64), st.booleans())
    def test_bulk_pieces(self, value, size, resp3) -> None:
        """A bulk string's pieces join to its rendering, in RESP2 and RESP3 alike."""
        render = to_resp3 if resp3 else to_resp
        self.assertEqual(b"".join(bulk_pieces(value, size)), render(value))

    def test_bulk_pieces_are_slices(self) -> None:
        """Each piece carries one slice of the value: the header rides with the first, the
        CRLF with the last, so no piece holds more than a slice and a few bytes."""
        value = bytes(range(256)) * 40  # 10240 bytes
        pieces = list(bulk_pieces(value, 4096))
        self.assertEqual([len(piece) for piece in pieces], [4096 + 8, 4096, 2048 + 2])
        self.assertEqual(pieces[0][:8], b"$10240\r\n")
        self.assertEqual(list(bulk_pieces(b"ab", 4096)), [b"$2\r\nab\r\n"])

    def test_rendered_whole_where_not_streamed(self) -> None:
        """Anywhere but the top of a reply (EXEC's array), a Streamed renders as its whole value."""
        def streams():
            return [Streamed(2, iter([[b"a"], [b"b"]])),
                    Streamed(1, iter([[(b"k", b"v")]]), pairs=True)]
        whole = [[b"a", b"b"], Pairs([(b"k", b"v")])]
        self.assertEqual(to_resp(streams()), to_resp(whole))
        self.assertEqual(to_resp3(streams()), to_resp3(whole))
        self.assertEqual(to_text(streams()), to_text(whole))
        self.assertEqual(to_resp(streams()[1]), to_resp(whole[1]))

    def test_stream_array(self) -> None:
        """A short list is its own reply; a long one streams in slices of bounded size."""
        short = [b"k%d" % i for i in range(replies.STREAM_MIN)]
        self.assertIs(stream_array(short), short)
        keys = [b"k%d" % i for i in range(3 * replies.STREAM_MIN)]
        keys[5] = b"x" * (2 * replies.SLICE_BYTES)
        stream = stream_array(keys)
        self.assertIsInstance(stream, Streamed)
        self.assertEqual(stream.count, len(keys))
        slices = list(stream.slices)
        self.assertEqual([key for piece in slices for key in piece], keys)
        for piece in slices:
            self.assertLessEqual(len(piece), replies.SLICE)
            self.assertLess(sum(map(len, piece[:-1])), replies.SLICE_BYTES)
        self.assertGreater(len(slices), len(keys) // replies.SLICE)

    def test_sorted_pairs_short(self) -> None:
        """Few keys give plain Pairs sorted by key."""
        values = {b"b": b"2", b"a": b"1"}
        self.assertEqual(sorted_pairs(list(values), values), Pairs([(b"a", b"1"), (b"b", b"2")]))

    def test_sorted_pairs_streamed(self) -> None:
        """Many keys stream sorted by key, in bounded slices, as the values were when called."""
        count = 2 * replies.SORT_RUN + 1234
        values = {b"key:%06d" % ((i * 7919) % count): b"v%d" % i for i in range(count)}
        values[b"key:000017"] = b"y" * replies.SLICE_BYTES
        expected = sorted(values.items())
        stream = sorted_pairs(list(values), values)
        self.assertIsInstance(stream, Streamed)
        self.assertEqual(stream.count, count)
        values[b"key:000001"] = b"changed"
        del values[b"key:000002"]
        values[b"new"] = b"x"
        slices = list(stream.slices)
        self.assertEqual([pair for piece in slices for pair in piece], expected)
        for piece in slices:
            self.assertLessEqual(len(piece), replies.SLICE)
            self.assertTrue(len(piece) <= 1 or
                            sum(len(k) + len(v) for k, v in piece[:-1]) < replies.SLICE_BYTES)
        # Sorting is spread over turns too: the first slices are empty while runs are sorted.
        self.assertEqual(slices[:3], [[], [], []])

    def test_not_streamed_when_subset(self) -> None:
        """sorted_pairs reads only the keys given, not every key of the mapping."""
        values = {b"k%05d" % i: b"v" for i in range(3 * replies.STREAM_MIN)}
        keys = [b"k%05d" % i for i in range(0, 3 * replies.STREAM_MIN, 2)]
        stream = sorted_pairs(list(keys), values)
        self.assertEqual(stream.whole(), Pairs([(key, b"v") for key in keys]))


class PushTests(SynchronousTestCase):
    """Push: an array RESP3 sends as a push, every other rendering as a plain array."""

    def test_renderings(self) -> None:
        """RESP3 renders a Push with ``>``, also inside an array; RESP2 with ``*``."""
        push = replies.Push([b"message", b"ch", None])
        self.assertEqual(push, [b"message", b"ch", None])
        self.assertEqual(replies.to_resp3(push), b">3\r\n$7\r\nmessage\r\n$2\r\nch\r\n_\r\n")
        self.assertEqual(replies.to_resp(push), b"*3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$-1\r\n")
        self.assertEqual(replies.to_resp3([push]), b"*1\r\n" + replies.to_resp3(push))


class TypedReplyTests(SynchronousTestCase):
    """SetReply and Double: RESP3's set and double types, RESP2's array and bulk string."""

    def test_set_reply_is_an_array_in_resp2(self):
        """A SetReply renders as a plain RESP2 array."""
        self.assertEqual(to_resp(SetReply([b"a", b"b"])), b"*2\r\n$1\r\na\r\n$1\r\nb\r\n")

    def test_set_reply_is_a_set_in_resp3(self):
        """A SetReply renders as a RESP3 set (``~``)."""
        self.assertEqual(to_resp3(SetReply([b"a"])), b"~1\r\n$1\r\na\r\n")

    def test_double_is_a_bulk_string_in_resp2(self):
        """A Double renders as a bulk string of its text in RESP2."""
        self.assertEqual(to_resp(Double(b"1.5")), b"$3\r\n1.5\r\n")

    def test_double_is_a_double_in_resp3(self):
        """A Double renders as a RESP3 double, inside arrays too."""
        self.assertEqual(to_resp3([Double(b"-inf")]), b"*1\r\n,-inf\r\n")

    def test_double_text_and_json(self):
        """The text dialect quotes a Double as redis-cli does; JSON gives its text."""
        self.assertEqual(to_text(Double(b"2")), b'"2"\r\n')
        self.assertEqual(jsonlines.render([Double(b"inf")]), b'["inf"]\n')


class RawTests(SynchronousTestCase):
    def test_written_as_it_is(self):
        """A Raw reply (bytes a server sent, kvproxy's relay) renders as those very bytes
        in RESP2, RESP3, as a push and in the text dialect."""
        raw = replies.Raw(b">2\r\n$10\r\ninvalidate\r\n*1\r\n$1\r\nk\r\n")
        for render in (replies.to_resp, replies.to_resp3, replies.to_resp3_push,
                       to_text):
            self.assertEqual(render(raw), bytes(raw))
            self.assertIs(render(raw).__class__, bytes)
