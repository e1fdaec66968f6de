"""The fast path of RequestParser.drain: whole, well-formed multibulk requests cut straight
out of one read (no buffering), stopping at the first byte the general parser must see."""

from __future__ import annotations

import sys

_CRLF = b"\r\n"


def find_requests(data: bytes, out: list, max_bulk: int, max_args: int,
                   max_inline: int, pos: int = 0) -> int:
    """Append the complete, well-formed multibulk requests at ``data[pos:]``'s start to
    ``out``; return the offset of the first byte it left for the general parser."""
    find = data.find
    end = len(data)
    while pos < end and data[pos] == 42:  # "*"
        nl = find(_CRLF, pos)
        if nl < 0 or nl - pos > max_inline:
            break
        text = data[pos + 1:nl]
        if not text.isdigit() or (text[0] == 48 and len(text) > 1):
            break
        count = int(text)
        if not 0 < count <= max_args:
            break
        p = nl + 2
        args = []
        while count:
            if p >= end or data[p] != 36:  # "$"
                break
            nl = find(_CRLF, p)
            if nl < 0 or nl - p > max_inline:
                break
            text = data[p + 1:nl]
            if not text.isdigit() or (text[0] == 48 and len(text) > 1):
                break
            size = int(text)
            p = nl + 2
            stop = p + size
            if size > max_bulk or stop + 2 > end:
                break
            args.append(data[p:stop])
            p = stop + 2  # the CRLF after a bulk is skipped unchecked, as redis-server does
            count -= 1
        if count:
            break
        out.append(args)
        pos = p
    return pos


# Canonical "$<len>" headers for short values: one list index and one bytes compare
# check a header's "$", its digits, its lack of leading zeros and the value's length.
BULK_HEADERS = [b"$%d" % n for n in range(256)]
# Canonical "*<count>" lines of short requests, by count.
COUNT_LINES = [b"*%d" % n for n in range(256)]


def split_requests(data: bytes, out: list, max_bulk: int, max_args: int,
                    max_inline: int, tokens=None) -> int:
    """Append the complete, well-formed multibulk requests at the start of ``data`` to
    ``out``; return the offset of the first byte it left for the general parser.

    One C-level split cuts every line; a value token is trusted only when its length
    is the declared one (so it held no CRLF and a CRLF follows it), else the walk stops
    and that request is left, from its first byte, to next_request(). ``tokens`` is
    ``data.split(b"\r\n")`` when the caller has it already.
    """
    if data[:1] != b"*":
        return 0
    if tokens is None:
        tokens = data.split(_CRLF)
    last = len(tokens) - 1  # the last token has no CRLF after it: never part of a request
    # The longest value whose "$<len>" header line still fits in max_inline.
    if max_inline > 20:
        limit = max_bulk
    else:
        limit = min(max_bulk, 10 ** (max_inline - 1) - 1) if max_inline > 1 else -1
    headers = BULK_HEADERS
    append = out.append
    i = 0
    while i < last:
        head = tokens[i]
        text = head[1:]
        if (head[:1] != b"*" or not text.isdigit() or (text[0] == 48 and len(text) > 1)
                or len(head) > max_inline):
            break
        count = int(text)
        stop = i + 1 + 2 * count
        if not 0 < count <= max_args or stop > last:
            break
        args = []
        j = i + 1
        while j < stop:
            value = tokens[j + 1]
            size = len(value)
            if size > limit or tokens[j] != (headers[size] if size < 256 else b"$%d" % size):
                break
            args.append(value)
            j += 2
        if j < stop:
            break
        append(args)
        i = stop
    if i == last:
        return len(data) - len(tokens[last])
    return len(data) - sum(map(len, tokens[i:])) - 2 * (last - i)


# CPython's bytes.split is one C call, far cheaper than a find/slice/int per line, but
# it scans values the find loop jumps over: worth it only for reads of small requests.
# PyPy's JIT already compiles the find loop well, and there the split's list costs more.
SPLIT_MAX = 0 if sys.implementation.name == "pypy" else 4096

