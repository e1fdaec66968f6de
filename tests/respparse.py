"""Parse RESP2/RESP3 reply bytes into Python values, for tests that compare replies whose
element order is unspecified (sets)."""

from __future__ import annotations


class ReplyError(str):
    """An error reply's text."""


def parse_reply(data: bytes):
    """Return the value of one whole reply: bytes, int, None, ReplyError, or a list (a
    RESP3 set or map as a list too); ValueError when bytes are left over."""
    value, end = _parse(data, 0)
    if end != len(data):
        raise ValueError("bytes after the reply")
    return value


def _parse(data: bytes, position: int):
    line_end = data.index(b"\r\n", position)
    kind, text = data[position:position + 1], data[position + 1:line_end]
    after = line_end + 2
    if kind == b"+":
        return text, after
    if kind == b"-":
        return ReplyError(text.decode("utf-8", "replace")), after
    if kind == b":":
        return int(text), after
    if kind == b"_":
        return None, after
    if kind == b",":
        return text, after
    if kind == b"$":
        length = int(text)
        if length < 0:
            return None, after
        return data[after:after + length], after + length + 2
    if kind in (b"*", b"~", b"%", b">"):
        count = int(text)
        if count < 0:
            return None, after
        if kind == b"%":
            count *= 2
        items = []
        for _ in range(count):
            item, after = _parse(data, after)
            items.append(item)
        return items, after
    raise ValueError("unknown reply type %r" % (kind,))
