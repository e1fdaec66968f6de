"""Tests for kvtwist.wire.jsonlines: JSON request objects to argv, replies to JSON lines."""

from __future__ import annotations

import json

from hypothesis import given
from hypothesis import strategies as st
from twisted.trial.unittest import SynchronousTestCase

from kvtwist.wire.jsonlines import (
    JsonRequestError,
    decode_request,
    encode_error,
    render,
    stream_pieces,
)
from kvtwist.wire.replies import NIL_ARRAY, OK, Error, Pairs, Status, Streamed


def _decode(obj):
    return decode_request(json.dumps(obj).encode("utf-8"))


class SeedRequestTests(SynchronousTestCase):
    """The six request shapes of the seed gevent server map to commands and reply shapes."""

    def test_set(self) -> None:
        """SET becomes [SET, key, value] and its OK renders as the string "OK"."""
        argv, reply = _decode({"type": "SET", "key": "foo", "value": "bar"})
        self.assertEqual(argv, [b"SET", b"foo", b"bar"])
        self.assertEqual(reply(OK), b'"OK"\n')

    def test_get(self) -> None:
        """GET renders the value, or null for a missing key."""
        argv, reply = _decode({"type": "GET", "key": "foo"})
        self.assertEqual(argv, [b"GET", b"foo"])
        self.assertEqual(reply(b"bar"), b'"bar"\n')
        self.assertEqual(reply(None), b"null\n")

    def test_delete(self) -> None:
        """DELETE becomes GETDEL, rendering the removed value or null."""
        argv, reply = _decode({"type": "DELETE", "key": "foo"})
        self.assertEqual(argv, [b"GETDEL", b"foo"])
        self.assertEqual(reply(b"bar"), b'"bar"\n')
        self.assertEqual(reply(None), b"null\n")

    def test_flush(self) -> None:
        """FLUSH becomes FLUSHDB."""
        argv, reply = _decode({"type": "FLUSH"})
        self.assertEqual(argv, [b"FLUSHDB"])
        self.assertEqual(reply(OK), b'"OK"\n')

    def test_mget(self) -> None:
        """MGET takes a key list and renders an object of key to value or null."""
        argv, reply = _decode({"type": "MGET", "key": ["k1", "k2"]})
        self.assertEqual(argv, [b"MGET", b"k1", b"k2"])
        self.assertEqual(reply([b"v1", None]), b'{"k1":"v1","k2":null}\n')

    def test_mget_error(self) -> None:
        """An error reply to MGET renders as an error object, not a key map."""
        _, reply = _decode({"type": "MGET", "key": ["k1"]})
        self.assertEqual(reply(Error("ERR down")), b'{"error":"ERR down"}\n')

    def test_mset(self) -> None:
        """MSET takes an object of pairs, in order."""
        argv, reply = _decode({"type": "MSET", "value": {"a": "1", "b": 2}})
        self.assertEqual(argv, [b"MSET", b"a", b"1", b"b", b"2"])
        self.assertEqual(reply(OK), b'"OK"\n')

    def test_type_case_insensitive(self) -> None:
        """The type name is matched case-insensitively."""
        argv, _ = _decode({"type": "set", "key": "k", "value": "v"})
        self.assertEqual(argv, [b"SET", b"k", b"v"])

    def test_numbers(self) -> None:
        """Numeric keys and values become their decimal text."""
        argv, _ = _decode({"type": "SET", "key": 7, "value": -1.5})
        self.assertEqual(argv, [b"SET", b"7", b"-1.5"])

    def test_unicode(self) -> None:
        """Strings are sent as UTF-8 and non-ASCII values come back intact."""
        argv, reply = _decode({"type": "SET", "key": "caf\u00e9", "value": "\u2603"})
        self.assertEqual(argv, [b"SET", b"caf\xc3\xa9", b"\xe2\x98\x83"])
        self.assertEqual(json.loads(reply(b"\xe2\x98\x83")), "\u2603")

    def test_seed_client_bytes(self) -> None:
        """The seed client's exact line (json.dumps with default separators) is accepted."""
        argv, _ = decode_request(b'{"type": "SET", "key": "foo", "value": "bar"}\n')
        self.assertEqual(argv, [b"SET", b"foo", b"bar"])


class AuthRequestTests(SynchronousTestCase):
    """The AUTH request type: a password, and optionally a user."""

    def test_auth(self):
        """{"type": "AUTH"} becomes AUTH [user] password; the password is required."""
        self.assertEqual(_decode({"type": "AUTH", "password": "pw"})[0], [b"AUTH", b"pw"])
        self.assertEqual(_decode({"type": "auth", "user": "default", "password": "pw"})[0],
                         [b"AUTH", b"default", b"pw"])
        with self.assertRaises(JsonRequestError) as raised:
            _decode({"type": "AUTH"})
        self.assertEqual(raised.exception.message, 'ERR AUTH request needs a "password" field')


class GenericRequestTests(SynchronousTestCase):
    """Any other command travels as {"type": NAME, "args": [...]}."""

    def test_args(self) -> None:
        """args items become arguments after the name; numbers as decimal text."""
        argv, reply = _decode({"type": "EXPIRE", "args": ["k", 10]})
        self.assertEqual(argv, [b"EXPIRE", b"k", b"10"])
        self.assertEqual(reply(1), b"1\n")

    def test_no_args(self) -> None:
        """A bare type is a command without arguments."""
        argv, reply = _decode({"type": "PING"})
        self.assertEqual(argv, [b"PING"])
        self.assertEqual(reply(Status(b"PONG")), b'"PONG"\n')

    def test_args_win_for_seed_names(self) -> None:
        """With args, even a seed name is sent as given (so SET can take EX)."""
        argv, _ = _decode({"type": "SET", "args": ["k", "v", "EX", 5]})
        self.assertEqual(argv, [b"SET", b"k", b"v", b"EX", b"5"])


class BadRequestTests(SynchronousTestCase):
    """Bad requests raise JsonRequestError with a clear ERR message."""

    def assertRejected(self, line: bytes, fragment: str) -> None:
        with self.assertRaises(JsonRequestError) as caught:
            decode_request(line)
        self.assertTrue(caught.exception.message.startswith("ERR "), caught.exception.message)
        self.assertIn(fragment, caught.exception.message)

    def test_invalid_json(self) -> None:
        """Text that is not JSON is rejected as invalid JSON."""
        self.assertRejected(b"{nope", "invalid JSON")
        self.assertRejected(b"", "invalid JSON")

    def test_invalid_utf8(self) -> None:
        """Bytes that are not UTF-8 are rejected."""
        self.assertRejected(b'{"type": "GET", "key": "\xff"}', "UTF-8")

    def test_nan(self) -> None:
        """NaN and Infinity literals are rejected."""
        self.assertRejected(b'{"type": "SET", "key": "k", "value": NaN}', "NaN")

    def test_deep_nesting(self) -> None:
        """Absurdly nested JSON is rejected instead of crashing."""
        self.assertRejected(b"[" * 100000 + b"]" * 100000, "invalid JSON")

    def test_not_object(self) -> None:
        """A JSON value that is not an object is rejected."""
        self.assertRejected(b'["GET", "k"]', "must be a JSON object")

    def test_missing_type(self) -> None:
        """A missing or non-string type is rejected."""
        self.assertRejected(b'{"key": "k"}', '"type"')
        self.assertRejected(b'{"type": 3}', '"type"')
        self.assertRejected(b'{"type": ""}', '"type"')

    def test_missing_fields(self) -> None:
        """Seed requests without their key/value fields are rejected naming the field."""
        self.assertRejected(b'{"type": "GET"}', '"key"')
        self.assertRejected(b'{"type": "SET", "key": "k"}', '"value"')
        self.assertRejected(b'{"type": "MSET"}', '"value"')

    def test_ill_typed_fields(self) -> None:
        """Keys and values that are not strings or numbers are rejected."""
        self.assertRejected(b'{"type": "GET", "key": null}', "null")
        self.assertRejected(b'{"type": "GET", "key": true}', "boolean")
        self.assertRejected(b'{"type": "SET", "key": "k", "value": [1]}', "array")
        self.assertRejected(b'{"type": "MGET", "key": "k"}', "array")
        self.assertRejected(b'{"type": "MGET", "key": []}', "array")
        self.assertRejected(b'{"type": "MSET", "value": []}', "object")
        self.assertRejected(b'{"type": "X", "args": "a"}', "array")
        self.assertRejected(b'{"type": "X", "args": [{}]}', "object")

    def test_duplicate_key(self) -> None:
        """An object naming a key twice is refused rather than the last one silently winning."""
        with self.assertRaises(JsonRequestError) as caught:
            decode_request(b'{"type": "GET", "key": "a", "key": "b"}')
        self.assertEqual(caught.exception.message, "ERR invalid JSON: duplicate key 'key'")
        self.assertRejected(b'{"type": "MSET", "value": {"k": "1", "k": "2"}}',
                            "duplicate key 'k'")
        self.assertRejected(b'{"type": "X", "type": "GET", "key": "a"}', "duplicate key 'type'")

    def test_equal_keys_in_different_objects(self) -> None:
        """The same key in two different objects is no duplicate."""
        argv, _ = decode_request(
            b'{"type": "X", "args": ["a"], "extra": {"type": 1, "args": 2}}')
        self.assertEqual(argv, [b"X", b"a"])

    def test_unpaired_surrogate(self) -> None:
        """A surrogate escape that does not stand for a byte is rejected."""
        self.assertRejected(b'{"type": "GET", "key": "\\ud800"}', "surrogate")

    @given(st.binary(max_size=40))
    def test_arbitrary_bytes(self, line) -> None:
        """Arbitrary input gives an argv of bytes or JsonRequestError, nothing else."""
        try:
            argv, reply = decode_request(line)
        except JsonRequestError:
            return
        self.assertTrue(all(isinstance(arg, bytes) for arg in argv))


class RenderTests(SynchronousTestCase):
    """render() turns every reply kind into one compact JSON line."""

    def test_kinds(self) -> None:
        """Each reply kind has its JSON form."""
        self.assertEqual(render(b"v"), b'"v"\n')
        self.assertEqual(render(None), b"null\n")
        self.assertEqual(render(NIL_ARRAY), b"null\n")
        self.assertEqual(render(-3), b"-3\n")
        self.assertEqual(render(True), b"1\n")
        self.assertEqual(render(OK), b'"OK"\n')
        self.assertEqual(render(Error("ERR x")), b'{"error":"ERR x"}\n')
        self.assertEqual(render([b"a", [None, 1], []]), b'["a",[null,1],[]]\n')
        self.assertEqual(render(Pairs([(b"k", b"v")])), b'{"k":"v"}\n')

    def test_one_line(self) -> None:
        """Newlines inside values are escaped, so a reply is always exactly one line."""
        line = render([b"a\nb", Error("ERR x\ny")])
        self.assertEqual(line.count(b"\n"), 1)
        self.assertEqual(json.loads(line), ["a\nb", {"error": "ERR x\ny"}])

    def test_undecodable_bytes(self) -> None:
        """Non-UTF-8 bytes are escaped as surrogates, not replaced."""
        self.assertEqual(render(b"\xff"), b'"\\udcff"\n')

    def test_encode_error(self) -> None:
        """encode_error gives an error object line."""
        self.assertEqual(encode_error('ERR bad "x"'), b'{"error":"ERR bad \\"x\\""}\n')
        self.assertEqual(json.loads(encode_error("ERR a\nb")), {"error": "ERR a\nb"})

    def test_not_a_reply(self) -> None:
        """Anything else is a TypeError."""
        self.assertRaises(TypeError, render, object())

    @given(st.binary(max_size=30), st.binary(max_size=30))
    def test_bytes_round_trip(self, key, value) -> None:
        """Any bytes rendered in a reply can be sent back in a request and arrive unchanged."""
        line = b'{"type":"SET","key":' + render(key)[:-1] + b',"value":' + render(value)[:-1] + b"}"
        argv, _ = decode_request(line)
        self.assertEqual(argv, [b"SET", key, value])

    @given(st.lists(st.text(max_size=10), min_size=1, max_size=5),
           st.lists(st.one_of(st.none(), st.binary(max_size=10)), min_size=5, max_size=5))
    def test_mget_round_trip(self, keys, values) -> None:
        """An MGET reply parses back to the key map of the reply values."""
        argv, reply = _decode({"type": "MGET", "key": keys})
        values = values[:len(keys)]
        decoded = json.loads(reply(values))
        expected = {}
        for key, value in zip(keys, values):
            expected[key] = None if value is None else value.decode("utf-8", "surrogateescape")
        self.assertEqual(decoded, expected)


def _cut(items: list, cuts: list) -> list:
    slices = []
    start = 0
    for end in sorted(cuts) + [len(items)]:
        end = min(max(end, start), len(items))
        slices.append(items[start:end])
        start = end
    return slices


class StreamTests(SynchronousTestCase):
    """stream_pieces renders a Streamed reply a slice at a time as the one line render() makes."""

    @given(st.lists(st.binary(max_size=6), max_size=20), st.lists(st.integers(0, 20), max_size=5))
    def test_array(self, keys, cuts) -> None:
        """An array's pieces join to render() of the whole list."""
        stream = Streamed(len(keys), iter(_cut(keys, cuts)))
        self.assertEqual(b"".join(stream_pieces(stream)), render(keys))

    @given(st.dictionaries(st.binary(max_size=6), st.binary(max_size=6), max_size=20),
           st.lists(st.integers(0, 20), max_size=5))
    def test_pairs(self, data, cuts) -> None:
        """Pairs' pieces join to render() of the whole Pairs: one object, in key order."""
        items = sorted(data.items())
        stream = Streamed(len(items), iter(_cut(items, cuts)), pairs=True)
        self.assertEqual(b"".join(stream_pieces(stream)), render(Pairs(items)))

    def test_rendered_whole_where_not_streamed(self) -> None:
        """render() of a Streamed, or of an array holding one, renders its whole value."""
        stream = Streamed(2, iter([[(b"a", b"1")], [(b"b", b"\xff")]]), pairs=True)
        self.assertEqual(render([stream]), b'[{"a":"1","b":"\\udcff"}]\n')
