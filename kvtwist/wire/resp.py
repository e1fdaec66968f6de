"""RESP2 server-side codec with no I/O: a push-style request parser (replies: respreply)."""

from __future__ import annotations

from kvtwist.wire.inline import UnbalancedQuotes, split_args
from kvtwist.wire.respcut import (
    BULK_HEADERS, COUNT_LINES, SPLIT_MAX, find_requests, split_requests)

__all__ = ["ProtocolError", "RequestParser"]


class ProtocolError(Exception):
    """Malformed RESP input; ``str(exc)`` is redis-server's text without the ``ERR `` prefix."""


_CRLF = b"\r\n"


class _Buffer:
    """Push-side buffering shared by RequestParser and respreply.ReplyParser.

    Bytes live in ``_buf`` (immutable) read from ``_pos``.  Fed chunks are only queued
    until they can make progress (a line terminator arrived, or enough bytes for the
    awaited bulk), then joined once with the unread tail: every byte is copied O(1)
    times however small the pieces, so large values arriving slowly stay linear.
    """

    __slots__ = ("_buf", "_pos", "_chunks", "_pending", "_ready", "_need", "_line", "_scan",
                 "_error")

    def __init__(self) -> None:
        self._buf = b""
        self._pos = 0
        self._chunks = []
        self._pending = 0
        self._ready = True
        # While not ready: progress needs `_need` unread bytes, or (when `_line`) a newline.
        self._need = 0
        self._line = False
        # Offset in _buf below which a line terminator was already searched for in vain.
        self._scan = 0
        self._error = None

    def feed(self, data: bytes) -> None:
        """Buffer received bytes; returns None.  Parse them with the next_* method."""
        if data.__class__ is not bytes:
            data = bytes(data)
        if not data:
            return
        self._chunks.append(data)
        self._pending += len(data)
        if not self._ready:
            if (self._line and b"\n" in data) or (
                len(self._buf) - self._pos + self._pending >= self._need
            ):
                self._ready = True

    def buffered(self) -> int:
        """Return how many received bytes are still unparsed (a partial request at the end)."""
        return len(self._buf) - self._pos + self._pending

    def _merge(self) -> None:
        chunks = self._chunks
        pos = self._pos
        if pos >= len(self._buf):
            self._buf = chunks[0] if len(chunks) == 1 else b"".join(chunks)
        else:
            chunks.insert(0, self._buf[pos:])
            self._buf = b"".join(chunks)
        self._scan = self._scan - pos if self._scan > pos else 0
        self._pos = 0
        self._chunks = []
        self._pending = 0

    def _wait_line(self, pos: int, end: int, limit: int) -> None:
        self._pos = pos
        # A CR as the last byte may be completed by an LF in the next chunk.
        self._scan = end - 1 if end > pos else pos
        self._ready = False
        self._line = True
        self._need = limit + 1

    def _wait_bytes(self, pos: int, need: int) -> None:
        self._pos = pos
        self._ready = False
        self._line = False
        self._need = need

    def _start(self) -> bool:
        """Return whether parsing can make progress now (joining queued chunks if so)."""
        if self._error is not None:
            raise self._error
        if not self._ready:
            return False
        if self._chunks:
            self._merge()
        return True

    def _done(self, pos: int, end: int) -> None:
        if pos >= end and not self._chunks:
            # Everything consumed: drop the buffer rather than keep a large one alive.
            self._buf = b""
            self._pos = 0
            self._scan = 0
        else:
            self._pos = pos

    def _cut(self, start: int, size: int) -> tuple:
        """Split what is buffered from ``_buf[start]`` on (``_buf``'s tail, then the queued
        chunks) after ``size`` bytes, which must all be there: return the pieces holding
        them and the pieces of what follows, a piece cut across as two memoryviews. Nothing
        is copied: O(number of pieces)."""
        pieces = self._chunks
        if start < len(self._buf):
            pieces.insert(0, memoryview(self._buf)[start:])
        parts = []
        need = size
        index = 0
        while need:
            piece = pieces[index]
            if len(piece) <= need:
                parts.append(piece)
                need -= len(piece)
                index += 1
            else:
                view = memoryview(piece)
                parts.append(view[:need])
                pieces[index] = view[need:]
                need = 0
        return parts, pieces[index:]

    def _fail(self, message: str):
        self._error = ProtocolError(message)
        return self._error


def _bad_length(text: bytes) -> bool:
    # redis-server's string2ll: digits only, no sign, no leading zero ("0" itself is fine).
    return not text.isdigit() or (text[0] == 48 and len(text) > 1)


class RequestParser(_Buffer):
    """Turns received bytes into argument vectors, as redis-server reads its query buffer.

    Requests starting with ``*`` are multibulk; anything else is an inline (telnet) line
    ending in LF (a CR before it is dropped) split with ``inline.split_args``.  Empty
    requests (``*0``, ``*-1``, blank lines) are skipped.  Cost is linear in the input.
    """

    __slots__ = ("max_bulk", "max_args", "max_inline", "_args", "_left", "_bulk", "_quick",
                 "defer_large", "joining", "_unauthenticated")

    # redis-server's limits on a client that must still AUTH (processMultibulkBuffer).
    UNAUTHENTICATED_ARGS = 10
    UNAUTHENTICATED_BULK = 16384

    def __init__(self, max_bulk: int = 512 * 1024 * 1024, max_args: int = 1024 * 1024,
                 max_inline: int = 64 * 1024, defer_large: bool = False) -> None:
        _Buffer.__init__(self)
        # With defer_large, a large argument is not joined here: its pieces wait in
        # ``joining`` (parsing stops) until the caller hands the joined bytes to ``joined``:
        # a server joins them off its event loop.
        self.defer_large = defer_large
        self.joining = None
        self.max_bulk = max_bulk
        self.max_args = max_args
        self.max_inline = max_inline
        self._args = None  # arguments of a partially received multibulk request
        self._left = 0  # arguments still to come for it
        self._bulk = -1  # length of the next argument once its $ line was read
        # The most arguments a request cut by drain's one-request check may have: its
        # headers are at most "*255" and "$255", so the limits must allow those.
        self._quick = min(max_args, 255) if max_bulk >= 255 and max_inline >= 4 else 0
        self._unauthenticated = None  # the limits it had while the client must AUTH

    def unauthenticated(self, must_auth: bool, max_bulk: int) -> None:
        """Apply redis-server's limits on a client that must still AUTH (at most 10
        arguments of 16384 bytes, refused as "unauthenticated multibulk/bulk length"),
        or once it need not, the limits ``max_args`` and ``max_bulk`` again."""
        if must_auth:
            if self._unauthenticated is None:
                self._unauthenticated = self.max_args
                self.max_args = min(self.max_args, self.UNAUTHENTICATED_ARGS)
            self.max_bulk = min(max_bulk, self.UNAUTHENTICATED_BULK)
        else:
            if self._unauthenticated is not None:
                self.max_args = self._unauthenticated
                self._unauthenticated = None
            self.max_bulk = max_bulk
        self._quick = (min(self.max_args, 255)
                       if self.max_bulk >= 255 and self.max_inline >= 4 else 0)

    def memory(self) -> int:
        """Bytes held for requests not complete yet: unparsed input and the arguments of a
        partly received request (Redis's query buffer and argv). O(its arguments)."""
        args = self._args
        return self.buffered() + (sum(map(len, args)) if args else 0)

    def _too_many(self, what: str) -> str:
        if self._unauthenticated is not None:
            return "Protocol error: unauthenticated %s length" % (what,)
        return "Protocol error: invalid %s length" % (what,)

    # An awaited argument at least this long is cut out of the received pieces directly.
    LARGE_BULK = 1 << 20

    def next_request(self):
        """Return the next complete request as a list of bytes, or None if more bytes are needed.

        Raises ProtocolError for malformed input (and again on every later call).
        """
        if self.joining is not None:
            return None
        if self._bulk >= self.LARGE_BULK and self._ready and self._chunks and self._error is None:
            self._take_large_bulk()
            if self.joining is not None:
                return None
        if not self._start():
            return None
        buf = self._buf
        pos = self._pos
        end = len(buf)
        args = self._args
        while args is None:
            if pos >= end:
                self._wait_line(pos, end, self.max_inline)
                return None
            scan = self._scan
            if buf[pos] != 42:  # not "*": an inline request
                nl = buf.find(b"\n", scan if scan > pos else pos)
                if nl < 0 or nl - pos > self.max_inline:
                    if end - pos > self.max_inline:
                        raise self._fail("Protocol error: too big inline request")
                    self._wait_line(pos, end, self.max_inline)
                    return None
                line = buf[pos:nl - 1] if nl > pos and buf[nl - 1] == 13 else buf[pos:nl]
                pos = nl + 1
                try:
                    argv = split_args(line)
                except UnbalancedQuotes:
                    raise self._fail("Protocol error: unbalanced quotes in request")
                if argv:
                    self._done(pos, end)
                    return argv
                continue
            nl = buf.find(_CRLF, scan if scan > pos else pos)
            if nl < 0 or nl - pos > self.max_inline:
                if end - pos > self.max_inline:
                    raise self._fail("Protocol error: too big mbulk count string")
                self._wait_line(pos, end, self.max_inline)
                return None
            text = buf[pos + 1:nl]
            pos = nl + 2
            if _bad_length(text):
                # Negative counts are legal and mean "no request", like *0.
                if text[:1] == b"-" and text[1:2] != b"0" and not _bad_length(text[1:]):
                    continue
                raise self._fail("Protocol error: invalid multibulk length")
            count = int(text)
            if count > self.max_args:
                raise self._fail(self._too_many("multibulk"))
            if count:
                args = []
                self._left = count
                self._bulk = -1
        left = self._left
        bulk = self._bulk
        max_bulk = self.max_bulk
        max_inline = self.max_inline
        scan = self._scan
        find = buf.find
        while left:
            if bulk < 0:
                nl = find(_CRLF, scan if scan > pos else pos)
                if nl < 0 or nl - pos > max_inline:
                    if end - pos > max_inline:
                        raise self._fail("Protocol error: too big bulk count string")
                    self._save(args, left, bulk)
                    self._wait_line(pos, end, max_inline)
                    return None
                if buf[pos] != 36:  # "$"
                    raise self._fail("Protocol error: expected '$', got '%s'" % chr(buf[pos]))
                text = buf[pos + 1:nl]
                # Inlined _bad_length(): this runs once per argument.
                if not text.isdigit() or (text[0] == 48 and len(text) > 1):
                    raise self._fail("Protocol error: invalid bulk length")
                bulk = int(text)
                if bulk > max_bulk:
                    raise self._fail(self._too_many("bulk"))
                pos = nl + 2
            stop = pos + bulk
            if stop + 2 > end:
                self._save(args, left, bulk)
                self._wait_bytes(pos, bulk + 2)
                return None
            args.append(buf[pos:stop])
            # Like redis-server, the two bytes after the bulk are skipped unchecked.
            pos = stop + 2
            bulk = -1
            left -= 1
        self._args = None
        self._done(pos, end)
        return args

    def next_requests(self) -> list:
        """Return every complete buffered request (a list of argvs, possibly empty).

        Raises ProtocolError like next_request(); requests before the bad one are lost,
        so a server wanting to answer them first should use next_request().
        """
        out = []
        append = out.append
        nxt = self.next_request
        while True:
            argv = nxt()
            if argv is None:
                return out
            append(argv)

    def drain(self, data: bytes):
        """Feed ``data``; return ``(requests, error)``: every complete request, in order,
        and the ProtocolError that stopped parsing after them (else None).

        The server's hot path. With nothing buffered from earlier reads, whole
        well-formed multibulk requests are cut straight out of ``data`` in one tight
        loop; anything else (a partial request, an inline line, a malformed header)
        goes through next_request(), so results and errors are exactly the same.
        """
        out = []
        # Nothing buffered (a consumed buffer may linger until the next general parse).
        if (not self._buf and self._args is None and not self._chunks and self._error is None
                and data.__class__ is bytes):
            size = len(data)
            pos = 0
            if size <= SPLIT_MAX:
                tokens = data.split(_CRLF)
                last = len(tokens) - 1
                count = last >> 1  # what exactly one request in these tokens would carry
                if (last & 1 and 0 < count <= self._quick and not tokens[last]
                        and tokens[0] == COUNT_LINES[count]):
                    # Exactly one request with values under 256 bytes (a client waiting
                    # for each reply): each "$<len>" header must be the canonical one.
                    headers = BULK_HEADERS
                    args = []
                    index = 2
                    try:
                        while index < last:
                            value = tokens[index]
                            if tokens[index - 1] != headers[len(value)]:
                                break
                            args.append(value)
                            index += 2
                        else:
                            out.append(args)
                            return out, None
                    except IndexError:  # a value of 256 bytes or more: cut below
                        pass
                pos = split_requests(data, out, self.max_bulk, self.max_args, self.max_inline,
                                      tokens)
            if pos < size:
                pos = find_requests(data, out, self.max_bulk, self.max_args, self.max_inline,
                                     pos)
            if pos == size:
                self._buf = b""
                self._pos = self._scan = 0
                self._ready = True
                return out, None
            data = data[pos:]
        self.feed(data)
        try:
            while True:
                argv = self.next_request()
                if argv is None:
                    return out, None
                out.append(argv)
        except ProtocolError as e:
            return out, e

    def _take_large_bulk(self) -> None:
        # The awaited argument (all of it and its CRLF are buffered) is joined straight from
        # the received pieces: one copy of its bytes, where merging the pieces and slicing
        # the argument out would make two. What follows it becomes the buffer.
        parts, rest = self._cut(self._pos, self._bulk)
        if self.defer_large:
            self.joining = parts
        else:
            self._args.append(b"".join(parts))
        self._buf = b"".join(rest)
        self._pos = 2  # the CRLF after a bulk is skipped unchecked, as redis-server does
        self._chunks = []
        self._pending = 0
        self._scan = 0
        self._left -= 1
        self._bulk = -1

    def joined(self, value: bytes) -> None:
        """Take the joined bytes of ``joining`` as its argument; parsing goes on next call."""
        self._args.append(value)
        self.joining = None

    def _save(self, args, left: int, bulk: int) -> None:
        self._args = args
        self._left = left
        self._bulk = bulk
