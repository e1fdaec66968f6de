"""Replies rendered as redis-cli shows them to a person (the text dialect, for telnet users
and the CLI): ``to_text``, ``text_pieces`` for a Streamed reply, and ``quote``."""

from __future__ import annotations

from kvtwist.wire.replies import (
    NIL_ARRAY, NO_REPLY, Double, Error, Pairs, Raw, Status, Streamed, _one_line)

_REPR_ESCAPES = {
    0x5C: b"\\\\",
    0x22: b'\\"',
    0x0A: b"\\n",
    0x0D: b"\\r",
    0x09: b"\\t",
    0x07: b"\\a",
    0x08: b"\\b",
}


# Bytes sdscatrepr copies unchanged: printable ASCII except the two it escapes.
_REPR_PLAIN = bytes(byte for byte in range(0x20, 0x7F) if byte not in _REPR_ESCAPES)
# Each byte's rendering, for values that need escaping.
_REPR_TABLE = [
    _REPR_ESCAPES.get(byte) or (bytes((byte,)) if 0x20 <= byte < 0x7F else b"\\x%02x" % byte)
    for byte in range(256)
]


def quote(value: bytes) -> bytes:
    """Return ``value`` quoted as redis-cli shows it (sdscatrepr): printable ASCII kept,
    the rest escaped."""
    # Fast path for the usual all-plain value: one C-level pass deleting the plain bytes
    # (bytes.translate beats a regex search on both CPython and PyPy past a few bytes).
    if not value.translate(None, _REPR_PLAIN):
        return b'"' + value + b'"'
    return _quote_escaped(value)


def _quote_escaped(value: bytes) -> bytes:
    # The per-byte path, for values holding at least one byte that needs escaping.
    table = _REPR_TABLE
    return b'"' + b"".join([table[byte] for byte in value]) + b'"'


def to_text(reply) -> bytes:
    """Render one reply as redis-cli prints it, CRLF-terminated, for a telnet user."""
    if reply is NO_REPLY:
        return b""
    if reply.__class__ is Raw:
        return bytes(reply)
    return b"".join(line + b"\r\n" for line in _text_lines(reply))


def _text_lines(reply) -> list:
    if reply.__class__ is bytes:
        return [quote(reply)]
    if reply is None:
        return [b"(nil)"]
    if isinstance(reply, Status):
        return [reply.text]
    if isinstance(reply, Error):
        return [b"(error) " + _one_line(reply.message).encode("utf-8", "replace")]
    if isinstance(reply, bool):
        return [b"(integer) %d" % int(reply)]
    if isinstance(reply, int):
        return [b"(integer) %d" % reply]
    if reply is NIL_ARRAY:
        return [b"(nil)"]
    if reply.__class__ is Double:
        return [quote(reply.text)]
    if isinstance(reply, Pairs):
        lines = []
        for key, value in reply.items:
            rendered = _text_lines(value)
            lines.append(quote(key) + b" => " + rendered[0])
            lines.extend(b"    " + line for line in rendered[1:])
        count = len(reply.items)
        lines.append(b"(%d pair%s)" % (count, b"" if count == 1 else b"s"))
        return lines
    if isinstance(reply, (list, tuple)):
        if not reply:
            return [b"(empty array)"]
        width = len(str(len(reply)))
        lines = []
        for index, item in enumerate(reply, 1):
            label = b"%*d) " % (width, index)
            pad = b" " * len(label)
            for number, line in enumerate(_text_lines(item)):
                lines.append((label if number == 0 else pad) + line)
        return lines
    if isinstance(reply, (bytearray, memoryview)):
        return [quote(bytes(reply))]
    if isinstance(reply, Streamed):
        return _text_lines(reply.whole())
    raise TypeError("not a reply: %r" % (reply,))


def text_pieces(stream: Streamed):
    """Yield ``stream`` as redis-cli shows it, one bytes per slice; joined, ``to_text`` of it.

    An array is numbered lines padded to the width of the largest number; Pairs are one
    ``key => value`` line each, then ``(N pairs)``. O(bytes of the slice) per piece.
    """
    count = stream.count
    if stream.pairs:
        for piece in stream.slices:
            yield b"".join([quote(key) + b" => " + quote(value) + b"\r\n" for key, value in piece])
        yield b"(%d pair%s)\r\n" % (count, b"" if count == 1 else b"s")
        return
    if not count:
        yield b"(empty array)\r\n"
        return
    width = len(str(count))
    index = 0
    for piece in stream.slices:
        lines = []
        for key in piece:
            index += 1
            lines.append(b"%*d) %s\r\n" % (width, index, quote(key)))
        yield b"".join(lines)
