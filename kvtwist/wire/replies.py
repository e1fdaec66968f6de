"""Reply values shared by every command, and their RESP2 and redis-cli text renderings."""

from __future__ import annotations

# A reply is one of:
#   bytes            bulk string
#   None             nil bulk string
#   int              integer (never bool)
#   list / tuple     array of replies (nested freely)
#   Status           simple string (+OK)
#   Error            error (-ERR ...)
#   NilArray         the nil array (*-1), as Redis sends for a BLPOP timeout
#   Pairs            key/value pairs: a flat array in RESP, one pair per line in text
# Handlers return these; the three dialects render them.


class Status:
    """A RESP simple string such as OK or PONG."""

    __slots__ = ("text",)

    def __init__(self, text: bytes) -> None:
        self.text = text

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Status) and other.text == self.text

    def __hash__(self) -> int:
        return hash((Status, self.text))

    def __repr__(self) -> str:
        return "Status(%r)" % (self.text,)


class Error:
    """A RESP error reply; ``message`` starts with its code, e.g. ``ERR syntax error``."""

    __slots__ = ("message",)

    def __init__(self, message: str) -> None:
        self.message = message

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Error) and other.message == self.message

    def __hash__(self) -> int:
        return hash((Error, self.message))

    def __repr__(self) -> str:
        return "Error(%r)" % (self.message,)


class _NilArray:
    __slots__ = ()

    def __repr__(self) -> str:
        return "NIL_ARRAY"


NIL_ARRAY = _NilArray()


class Pairs:
    """Key/value pairs in key order: DUMP's reply."""

    __slots__ = ("items",)

    def __init__(self, items: list) -> None:
        self.items = items

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Pairs) and other.items == self.items

    def __repr__(self) -> str:
        return "Pairs(%r)" % (self.items,)


class CommandError(Exception):
    """Raised by a handler to answer with an error reply; args[0] is the full message."""

    def __init__(self, message: str) -> None:
        Exception.__init__(self, message)
        self.message = message


OK = Status(b"OK")
PONG = Status(b"PONG")


# -- RESP2 -------------------------------------------------------------------

_OK_BYTES = b"+OK\r\n"
_NIL_BYTES = b"$-1\r\n"


def to_resp(reply) -> bytes:
    """Render one reply as the RESP2 bytes redis-server would send."""
    if reply.__class__ is bytes:
        return b"$%d\r\n%s\r\n" % (len(reply), reply)
    if reply is OK:
        return _OK_BYTES
    if reply is None:
        return _NIL_BYTES
    if reply.__class__ is int:
        return b":%d\r\n" % reply
    if isinstance(reply, Status):
        return b"+%s\r\n" % reply.text
    if isinstance(reply, Error):
        return b"-%s\r\n" % _one_line(reply.message).encode("utf-8", "replace")
    if isinstance(reply, (list, tuple)):
        parts = [b"*%d\r\n" % len(reply)]
        parts.extend(to_resp(item) for item in reply)
        return b"".join(parts)
    if isinstance(reply, Pairs):
        flat = []
        for key, value in reply.items:
            flat.append(key)
            flat.append(value)
        return to_resp(flat)
    if reply is NIL_ARRAY:
        return b"*-1\r\n"
    if isinstance(reply, int):  # int subclasses (IntEnum, bool) go the slow way
        return b":%d\r\n" % int(reply)
    if isinstance(reply, (bytearray, memoryview)):
        return to_resp(bytes(reply))
    raise TypeError("not a reply: %r" % (reply,))


def to_resp3(reply) -> bytes:
    """Render one reply as RESP3 (after HELLO 3): nulls are ``_`` and Pairs are maps."""
    if reply.__class__ is bytes:
        return b"$%d\r\n%s\r\n" % (len(reply), reply)
    if reply is None or reply is NIL_ARRAY:
        return b"_\r\n"
    if isinstance(reply, (list, tuple)):
        parts = [b"*%d\r\n" % len(reply)]
        parts.extend(to_resp3(item) for item in reply)
        return b"".join(parts)
    if isinstance(reply, Pairs):
        parts = [b"%%%d\r\n" % len(reply.items)]
        for key, value in reply.items:
            parts.append(to_resp3(key))
            parts.append(to_resp3(value))
        return b"".join(parts)
    return to_resp(reply)


def to_resp3_push(reply) -> bytes:
    """Render an out-of-band message (pub/sub, invalidation) as a RESP3 push."""
    if isinstance(reply, (list, tuple)):
        return b">%d\r\n" % len(reply) + b"".join(to_resp3(item) for item in reply)
    return to_resp3(reply)


def _one_line(message: str) -> str:
    # An error is one RESP line; a CR or LF inside would split the stream.
    return message.replace("\r", " ").replace("\n", " ")


# -- text, as redis-cli shows replies to a person --------------------------------

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
    raise TypeError("not a reply: %r" % (reply,))
