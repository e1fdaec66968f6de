"""RESP2 client-side codec with no I/O: a push-style reply parser and a request encoder."""

from __future__ import annotations

from kvtwist.wire.replies import NIL_ARRAY, Error, Status
from kvtwist.wire.resp import _CRLF, ProtocolError, _Buffer

__all__ = ["NEED_MORE", "ProtocolError", "ReplyParser", "coalesce", "encode_command",
           "encode_request"]


class _NeedMore:
    __slots__ = ()

    def __repr__(self) -> str:
        return "NEED_MORE"


NEED_MORE = _NeedMore()
"""Returned by ReplyParser.next_reply() when the buffered bytes hold no complete reply."""

_NO_LIMIT = 1 << 62
_NOTHING = object()  # next_reply: no value parsed yet in this pass of its loop


def _bad_integer(text: bytes) -> bool:
    return not (text.isdigit() or (text[:1] == b"-" and text[1:].isdigit()))


class ReplyParser(_Buffer):
    """Turns received bytes into reply values (bytes, None, int, list, Status, Error, NIL_ARRAY).

    Nested arrays are built with an explicit stack, never by recursion, so any depth
    parses; a partially received array keeps the elements already parsed, so cost is
    linear in the input however it is split. With ``max_depth``, a reply whose arrays
    nest deeper is still read to its end (the stream stays in step) but comes out as
    ``too_deep`` (by default an ``Error`` saying so): what renders replies recursively
    downstream is spared it.
    """

    __slots__ = ("_stack", "_max_depth", "_too_deep", "_deep", "_large")

    # An awaited bulk string at least this long is cut out of the received pieces directly.
    LARGE_BULK = 1 << 20

    def __init__(self, max_depth: int | None = None, too_deep=None) -> None:
        _Buffer.__init__(self)
        self._stack = []  # [list being filled, elements still missing] per open array
        self._max_depth = _NO_LIMIT if max_depth is None else max_depth
        if too_deep is None and max_depth is not None:
            too_deep = Error("ERR reply nested deeper than %d arrays" % (max_depth,))
        self._too_deep = too_deep
        self._deep = False  # the reply being parsed nests deeper than max_depth
        self._large = None  # (size, start in _buf) of an awaited large bulk string

    def next_reply(self):
        """Return the next complete reply value, or NEED_MORE.

        Raises ProtocolError for malformed input (and again on every later call).
        """
        stack = self._stack
        value = _NOTHING  # or a value cut out before the loop, which starts by placing it
        if self._large is not None and self._ready and self._error is None:
            value = self._take_large()
        elif not self._start():
            return NEED_MORE
        buf = self._buf
        pos = self._pos
        end = len(buf)
        while True:
            if value is _NOTHING:
                scan = self._scan
                nl = buf.find(_CRLF, scan if scan > pos else pos)
                if nl < 0:
                    self._wait_line(pos, end, _NO_LIMIT)
                    return NEED_MORE
                kind = buf[pos]
                text = buf[pos + 1:nl]
                if kind == 36:  # $ bulk string
                    if _bad_integer(text):
                        raise self._fail("Protocol error: invalid bulk length")
                    size = int(text)
                    if size < 0:
                        if size != -1:
                            raise self._fail("Protocol error: invalid bulk length")
                        value = None
                        pos = nl + 2
                    else:
                        start = nl + 2
                        stop = start + size
                        if stop + 2 > end:
                            # Header re-read on resume; the body is not scanned meanwhile. A
                            # large one is cut from the pieces once they are all here.
                            self._wait_bytes(pos, stop + 2 - pos)
                            if size >= self.LARGE_BULK:
                                self._large = (size, start)
                            return NEED_MORE
                        if buf[stop:stop + 2] != _CRLF:
                            raise self._fail(
                                "Protocol error: bulk string not followed by CRLF")
                        value = buf[start:stop]
                        pos = stop + 2
                elif kind == 42:  # * array
                    if _bad_integer(text):
                        raise self._fail("Protocol error: invalid multibulk length")
                    size = int(text)
                    pos = nl + 2
                    if len(stack) >= self._max_depth:
                        self._deep = True
                    if size > 0:
                        stack.append([[], size])
                        continue
                    if size == 0:
                        value = []
                    elif size == -1:
                        value = NIL_ARRAY
                    else:
                        raise self._fail("Protocol error: invalid multibulk length")
                elif kind == 43:  # + status
                    value = Status(text)
                    pos = nl + 2
                elif kind == 58:  # : integer
                    if _bad_integer(text):
                        raise self._fail("Protocol error: invalid integer %r" % (text,))
                    value = int(text)
                    pos = nl + 2
                elif kind == 45:  # - error
                    value = Error(text.decode("utf-8", "replace"))
                    pos = nl + 2
                else:
                    raise self._fail(
                        "Protocol error: unexpected reply type byte %r" % (chr(kind),))
            while stack:
                top = stack[-1]
                top[0].append(value)
                top[1] -= 1
                if top[1]:
                    break
                stack.pop()
                value = top[0]
            else:
                self._done(pos, end)
                if self._deep:
                    self._deep = False
                    return self._too_deep
                return value
            value = _NOTHING

    def _take_large(self):
        # The awaited large bulk string (all of it and its CRLF are buffered) is joined
        # straight from the received pieces: one copy of its bytes, where merging the
        # pieces and slicing the value out would make two. What follows its CRLF becomes
        # the buffer. O(size).
        size, start = self._large
        self._large = None
        parts, rest = self._cut(start, size)
        rest = b"".join(rest)
        self._chunks = []
        self._pending = 0
        self._scan = 0
        if rest[:2] != _CRLF:
            self._buf, self._pos = b"", 0
            raise self._fail("Protocol error: bulk string not followed by CRLF")
        self._buf = rest
        self._pos = 2
        return b"".join(parts)


def _arg_bytes(arg) -> bytes:
    cls = arg.__class__
    if cls is str:
        return arg.encode("utf-8")
    if cls is int:
        return b"%d" % arg
    if cls is float:
        return repr(arg).encode("ascii")
    if isinstance(arg, (bytes, bytearray, memoryview)):
        return bytes(arg)
    if isinstance(arg, bool):
        raise TypeError("a command argument cannot be a bool: %r" % (arg,))
    if isinstance(arg, int):
        return b"%d" % int(arg)
    if isinstance(arg, float):
        return repr(float(arg)).encode("ascii")
    if isinstance(arg, str):
        return str(arg).encode("utf-8")
    raise TypeError("a command argument must be bytes, str, int or float, not %r" % (arg,))


# A request argument longer than this is sent as a piece of its own (encode_request).
LARGE_ARG = 1 << 20


def encode_command(args) -> bytes:
    """Return the RESP2 multibulk request for ``args`` (bytes, str as UTF-8, int, float).

    Raises TypeError for any other argument type (bool included, as redis-py does).
    """
    data = encode_request(args)
    return data if data.__class__ is bytes else b"".join(data)


def encode_request(args):
    """Return ``encode_command(args)``; but when an argument is longer than LARGE_ARG,
    the request's pieces instead, a list in which each such argument is itself, uncopied
    (their join is the request): a 16 MB SET is sent without being copied into one.
    O(number of arguments) plus the bytes of the small ones."""
    parts = [b""]
    count = 0
    large = False
    for arg in args:
        if arg.__class__ is not bytes:
            arg = _arg_bytes(arg)
        size = len(arg)
        count += 1
        if size > LARGE_ARG:
            parts += (b"$%d\r\n" % size, arg, _CRLF)
            large = True
        else:
            parts.append(b"$%d\r\n%s\r\n" % (size, arg))
    parts[0] = b"*%d\r\n" % count
    return parts if large else b"".join(parts)


def coalesce(pieces: list):
    """Yield ``pieces`` (bytes) as few writes: each run of pieces up to LARGE_ARG long
    joined, each longer one alone and uncopied. O(total length of the short ones)."""
    run = []
    for piece in pieces:
        if len(piece) > LARGE_ARG:
            if run:
                yield b"".join(run)
                run = []
            yield piece
        else:
            run.append(piece)
    if run:
        yield b"".join(run)
