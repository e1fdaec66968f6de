"""The soak test's bookkeeping: checkable values, per-key write models and a streaming reader."""

from __future__ import annotations

import os
import zlib

from kvtwist.wire.replies import Error, Status

# Every value starts with ``v:<client>:<key>:<seq>:`` padded with ``-`` to HEADER bytes.
HEADER = 48
# Bulk replies of this size or more are checked as they arrive (head kept, body CRC-32'd),
# never held whole: the load generator holds no copy of a big value.
STREAM_MIN = 1 << 20
# Small values are HEADER plus 0..SMALL_SPREAD-1 bytes, depending on key and sequence.
SMALL_SPREAD = 160
# Values take their body from a shared random block, at one of SPREAD offsets.
SPREAD = 1 << 16
# A big value's body starts at one of BIG_OFFSETS offsets (by sequence number), so
# consecutive writes differ throughout and only that many body CRCs are ever computed.
BIG_OFFSETS = 8
BIG_STEP = 4099


class ProtocolError(Exception):
    """The bytes received are not RESP2 replies."""


class Streamed:
    """A big bulk reply as received: its length, first HEADER bytes and the body's CRC-32.

    ``crc`` covers the bytes after the header only.
    """

    __slots__ = ("length", "head", "crc", "received")

    def __init__(self, length: int) -> None:
        self.length = length
        self.head = b""
        self.crc = 0
        self.received = 0

    def absorb(self, piece: bytes) -> None:
        """Account for the next ``piece`` of the body; O(len(piece))."""
        missing = HEADER - self.received
        self.received += len(piece)
        if missing > 0:
            self.head += piece[:missing]
            piece = piece[missing:]
        if piece:
            self.crc = zlib.crc32(piece, self.crc)

    def __repr__(self) -> str:
        return "Streamed(%d bytes, head %r)" % (self.length, self.head)


class ReplyReader:
    """Turns received bytes into replies: bytes, None, int, Status, Error, list or Streamed.

    ``feed`` returns the replies the bytes complete. Bytes waiting for a known length are
    queued and joined once, so the cost is linear in the input however it is split;
    bulks of ``stream_min`` bytes or more become ``Streamed`` and are never joined.
    """

    def __init__(self, stream_min: int = STREAM_MIN) -> None:
        self.stream_min = stream_min
        self._buf = b""
        self._chunks = []  # while _need: the unparsed bytes, joined once _have >= _need
        self._have = 0
        self._need = 0
        self._big = None  # the Streamed being received
        self._body_left = 0
        self._tail = b""  # the part of its closing CRLF received
        self._stack = []  # [items, missing] per array being filled
        self._out = []

    def feed(self, data: bytes) -> list:
        """Return the replies completed by ``data``. Raises ProtocolError for bad input."""
        out = self._out = []
        if self._big is not None:
            data = self._stream(data)
            if data is None:
                return out
        if self._need:
            self._chunks.append(data)
            self._have += len(data)
            if self._have < self._need:
                return out
            data = b"".join(self._chunks)
            self._chunks = []
            self._need = self._have = 0
        elif self._buf:
            data = self._buf + data
        self._buf = b""
        self._parse(data)
        return out

    def _parse(self, buf: bytes) -> None:
        pos = 0
        end = len(buf)
        while pos < end:
            nl = buf.find(b"\r\n", pos)
            if nl < 0:
                if end - pos > 64:
                    raise ProtocolError("no line end in %r" % (buf[pos:pos + 64],))
                break
            kind = buf[pos]
            text = buf[pos + 1:nl]
            if kind == 36:  # $ bulk
                size = _integer(text)
                if size < 0:
                    value = None
                    pos = nl + 2
                elif size >= self.stream_min:
                    self._big = Streamed(size)
                    self._body_left = size
                    rest = self._stream(buf[nl + 2:])
                    if rest is None:
                        return
                    buf, pos, end = rest, 0, len(rest)
                    continue
                else:
                    stop = nl + 2 + size
                    if stop + 2 > end:
                        self._chunks = [buf[pos:]]
                        self._have = end - pos
                        self._need = stop + 2 - pos
                        return
                    if buf[stop:stop + 2] != b"\r\n":
                        raise ProtocolError("bulk not followed by CRLF")
                    value = buf[nl + 2:stop]
                    pos = stop + 2
            elif kind == 42:  # * array
                size = _integer(text)
                pos = nl + 2
                if size > 0:
                    self._stack.append([[], size])
                    continue
                value = [] if size == 0 else None
            elif kind == 43:  # + status
                value = Status(text)
                pos = nl + 2
            elif kind == 45:  # - error
                value = Error(text.decode("utf-8", "replace"))
                pos = nl + 2
            elif kind == 58:  # : integer
                value = _integer(text)
                pos = nl + 2
            else:
                raise ProtocolError("unexpected reply type byte %r" % (buf[pos:pos + 1],))
            self._emit(value)
        self._buf = buf[pos:]

    def _stream(self, data: bytes):
        """Feed a Streamed; return the bytes after its CRLF once complete, else None."""
        big = self._big
        left = self._body_left
        if left:
            if len(data) <= left:
                big.absorb(data)
                self._body_left = left - len(data)
                return None
            big.absorb(data[:left])
            self._body_left = 0
            data = data[left:]
        tail = self._tail + data[:2 - len(self._tail)]
        data = data[2 - len(self._tail):]
        if len(tail) < 2:
            self._tail = tail
            return None
        if tail != b"\r\n":
            raise ProtocolError("big bulk not followed by CRLF")
        self._big = None
        self._tail = b""
        self._emit(big)
        return data

    def _emit(self, value) -> None:
        stack = self._stack
        while stack:
            top = stack[-1]
            top[0].append(value)
            top[1] -= 1
            if top[1]:
                return
            stack.pop()
            value = top[0]
        self._out.append(value)


def _integer(text: bytes) -> int:
    try:
        return int(text)
    except ValueError:
        raise ProtocolError("bad integer %r" % (text,))


def encode(*args: bytes) -> bytes:
    """The RESP2 request for ``args`` (bytes)."""
    parts = [b"*%d\r\n" % (len(args),)]
    for arg in args:
        parts.append(b"$%d\r\n%s\r\n" % (len(arg), arg))
    return b"".join(parts)


class Key:
    """One key a client owns, and what it knows of the key's value.

    Writes carry sequence numbers 1, 2, ... (0 stands for "absent"). ``acked`` is the
    latest write answered +OK; ``unsure`` the writes sent after it that are in flight
    or failed (their fate is unknown); ``sent`` the latest write sent. ``size`` is the
    size of every value (None: small values of varying size).
    """

    __slots__ = ("name", "index", "size", "sent", "acked", "unsure")

    def __init__(self, client: int, index: int, size=None) -> None:
        self.name = b"soak:%d:%d" % (client, index)
        self.index = index
        self.size = size
        self.sent = 0
        self.acked = 0
        self.unsure = []

    def size_of(self, seq: int) -> int:
        """The size of this key's value number ``seq``."""
        if self.size is None:
            return HEADER + (seq * 37 + self.index * 11) % SMALL_SPREAD
        return self.size

    def write(self) -> int:
        """Return the sequence number of a new write, now in flight."""
        self.sent += 1
        self.unsure.append(self.sent)
        return self.sent

    def acknowledge(self, seq: int) -> None:
        """Write ``seq`` was answered +OK: it and every earlier write are settled."""
        if seq > self.acked:
            self.acked = seq
            self.unsure = [each for each in self.unsure if each > seq]

    def accepts(self, seq: int, sent_before: int) -> bool:
        """Whether a read sent after write ``sent_before`` may see write ``seq``."""
        return seq == self.acked or (seq <= sent_before and seq in self.unsure)


class Values:
    """Makes and checks values: each names its client, key and sequence number.

    A value is its header then bytes of a shared random block from an offset chosen by
    (client, key, seq), so a stale, foreign or torn value differs from the expected one.
    Small values are built and compared whole (O(size)); big ones (``STREAM_MIN`` or
    more) are sent as slices of the block and checked by the CRC-32 of their body,
    computed once per offset (at most ``BIG_OFFSETS`` of them, O(size) each).
    """

    def __init__(self, largest: int, block=None) -> None:
        self.block = block if block is not None else os.urandom(max(largest, HEADER) + SPREAD)
        if len(self.block) < largest + SPREAD - HEADER:
            raise ValueError("block too small for %d-byte values" % (largest,))
        self._crcs = {}

    @staticmethod
    def head(client: int, index: int, seq: int) -> bytes:
        """The first HEADER bytes of the value."""
        return (b"v:%d:%d:%d:" % (client, index, seq)).ljust(HEADER, b"-")

    @staticmethod
    def offset(client: int, index: int, seq: int, size: int) -> int:
        """Where in the block the body of the value starts."""
        if size >= STREAM_MIN:
            return (seq % BIG_OFFSETS) * BIG_STEP
        return (client * 7919 + index * 104729 + seq * 4099) % SPREAD

    def make(self, client: int, index: int, seq: int, size: int) -> bytes:
        """The whole value (built in O(size): meant for small ones)."""
        start = self.offset(client, index, seq, size)
        return self.head(client, index, seq) + self.block[start:start + size - HEADER]

    def prepare(self, size: int) -> None:
        """Compute now the body CRCs of every ``size``-byte big value (O(BIG_OFFSETS * size)),
        so checking them later costs nothing."""
        if size >= STREAM_MIN:
            for seq in range(BIG_OFFSETS):
                self.body_crc(self.offset(0, 0, seq, size), size - HEADER)

    def body_crc(self, start: int, length: int) -> int:
        """CRC-32 of ``length`` block bytes from ``start`` (memoized)."""
        crc = self._crcs.get((start, length))
        if crc is None:
            crc = self._crcs[(start, length)] = zlib.crc32(
                memoryview(self.block)[start:start + length])
        return crc

    def check(self, client: int, key: Key, reply, sent_before: int):
        """Check a GET reply for ``key`` sent after its write ``sent_before``.

        Returns None when the reply is what the model allows, else (kind, detail):
        ``foreign`` (not a value of this key), ``stale`` (a write the model rules out),
        ``corrupt`` (the right header, the wrong bytes).
        """
        if reply is None:
            seq = 0
        else:
            if reply.__class__ is bytes:
                head = reply[:HEADER]
            elif reply.__class__ is Streamed:
                head = reply.head
            else:
                return ("foreign", "GET %s answered %s" % (key.name, brief(reply)))
            seq = _seq_of(head, client, key.index)
            if seq is None:
                return ("foreign", "GET %s answered %s" % (key.name, brief(reply)))
        if not key.accepts(seq, sent_before):
            return ("stale", "GET %s answered write %d; acknowledged %d, unsure %s, sent %d"
                    % (key.name, seq, key.acked, key.unsure, sent_before))
        if seq and not self._intact(client, key, seq, reply):
            return ("corrupt", "GET %s: write %d has the wrong bytes (%s)"
                    % (key.name, seq, brief(reply)))
        return None

    def _intact(self, client: int, key: Key, seq: int, reply) -> bool:
        size = key.size_of(seq)
        if reply.__class__ is bytes:
            return len(reply) == size and reply == self.make(client, key.index, seq, size)
        start = self.offset(client, key.index, seq, size)
        return reply.length == size and reply.crc == self.body_crc(start, size - HEADER)


def _seq_of(head: bytes, client: int, index: int):
    parts = head.split(b":", 4)
    if len(parts) < 5 or parts[0] != b"v":
        return None
    try:
        owner, number, seq = int(parts[1]), int(parts[2]), int(parts[3])
    except ValueError:
        return None
    if (owner, number) != (client, index) or seq < 1:
        return None
    return seq


def brief(reply) -> str:
    """A short description of a reply, for failure messages."""
    if reply.__class__ is bytes:
        return "%d bytes %r" % (len(reply), reply[:HEADER + 8])
    if reply.__class__ is list:
        return "[%s]" % (", ".join(brief(each) for each in reply[:4]),)
    return repr(reply)[:120]
