"""RESP2 client-side codec with no I/O: a push-style reply parser and a request encoder."""

from __future__ import annotations

from kvtwist.wire.replies import NIL_ARRAY, Error, Status
from kvtwist.wire.resp import _CRLF, ProtocolError, _Buffer

__all__ = ["NEED_MORE", "ProtocolError", "ReplyParser", "encode_command"]


class _NeedMore:
    __slots__ = ()

    def __repr__(self) -> str:
        return "NEED_MORE"


NEED_MORE = _NeedMore()
"""Returned by ReplyParser.next_reply() when the buffered bytes hold no complete reply."""

_NO_LIMIT = 1 << 62


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

    __slots__ = ("_stack", "_max_depth", "_too_deep", "_deep")

    def __init__(self, max_depth: int | None = None, too_deep=None) -> None:
        _Buffer.__init__(self)
        self._stack = []  # [list being filled, elements still missing] per open array
        self._max_depth = _NO_LIMIT if max_depth is None else max_depth
        if too_deep is None and max_depth is not None:
            too_deep = Error("ERR reply nested deeper than %d arrays" % (max_depth,))
        self._too_deep = too_deep
        self._deep = False  # the reply being parsed nests deeper than max_depth

    def next_reply(self):
        """Return the next complete reply value, or NEED_MORE.

        Raises ProtocolError for malformed input (and again on every later call).
        """
        if not self._start():
            return NEED_MORE
        buf = self._buf
        pos = self._pos
        end = len(buf)
        stack = self._stack
        while True:
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
                        # Header re-read on resume; the body is not scanned meanwhile.
                        self._wait_bytes(pos, stop + 2 - pos)
                        return NEED_MORE
                    if buf[stop:stop + 2] != _CRLF:
                        raise self._fail("Protocol error: bulk string not followed by CRLF")
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
                raise self._fail("Protocol error: unexpected reply type byte %r" % (chr(kind),))
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


def encode_command(args) -> bytes:
    """Return the RESP2 multibulk request for ``args`` (bytes, str as UTF-8, int, float).

    Raises TypeError for any other argument type (bool included, as redis-py does).
    """
    parts = [b""]
    for arg in args:
        if arg.__class__ is not bytes:
            arg = _arg_bytes(arg)
        parts.append(b"$%d\r\n%s\r\n" % (len(arg), arg))
    parts[0] = b"*%d\r\n" % (len(parts) - 1)
    return b"".join(parts)
