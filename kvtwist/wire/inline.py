"""Inline (telnet-typed) requests: framing lines, and the ``sdssplitargs`` splitting rules."""

from __future__ import annotations

__all__ = ["LineFramer", "UnbalancedQuotes", "split_args"]


class UnbalancedQuotes(ValueError):
    """A quoted argument is unterminated, or its closing quote is not followed by a space."""


# C isspace(): blanks skipped *between* arguments.
_SPACE = frozenset(b" \t\n\r\x0b\x0c")
# Inside an unquoted argument only these end it; sdssplitargs keeps \v and \f in the word.
_WORD_END = frozenset(b" \t\n\r")
_ESCAPES = {
    ord("n"): 0x0A,
    ord("r"): 0x0D,
    ord("t"): 0x09,
    ord("b"): 0x08,
    ord("a"): 0x07,
}
_HEX = frozenset(b"0123456789abcdefABCDEF")
_DQ, _SQ, _BS = ord('"'), ord("'"), ord("\\")


def split_args(line: bytes) -> list:
    """Split one inline request into its arguments.

    Returns a list of bytes (empty for a blank line).  Follows redis-server's
    ``sdssplitargs``: words split on spaces and tabs; "double quotes" take
    ``\\n \\r \\t \\b \\a \\xHH`` and ``\\<any>`` escapes; 'single quotes' are literal
    except ``\\'``; a closing quote must be followed by whitespace or the end.
    One deliberate difference: a NUL byte is an ordinary byte here (redis-server's C
    string handling makes a line containing NUL hang until its 64 KiB limit).

    Raises UnbalancedQuotes for an unterminated quote or a quote glued to what follows.
    """
    if (
        b'"' not in line
        and b"'" not in line
        and b"\x0b" not in line
        and b"\x0c" not in line
    ):
        # Common case (plain words): bytes.split() splits on exactly the remaining blanks.
        return line.split()
    return _split_slow(line)


def _split_slow(line: bytes) -> list:
    args = []
    end = len(line)
    p = 0
    while True:
        while p < end and line[p] in _SPACE:
            p += 1
        if p >= end:
            return args
        current = bytearray()
        in_dq = in_sq = False
        while True:
            c = line[p] if p < end else -1
            if in_dq:
                if c == -1:
                    raise UnbalancedQuotes("unterminated double quote")
                if (
                    c == _BS
                    and p + 3 < end
                    and line[p + 1] == 0x78  # x
                    and line[p + 2] in _HEX
                    and line[p + 3] in _HEX
                ):
                    current.append(int(line[p + 2 : p + 4], 16))
                    p += 4
                    continue
                if c == _BS and p + 1 < end:
                    nxt = line[p + 1]
                    current.append(_ESCAPES.get(nxt, nxt))
                    p += 2
                    continue
                if c == _DQ:
                    p += 1
                    if p < end and line[p] not in _SPACE:
                        raise UnbalancedQuotes("closing quote must be followed by a space")
                    break
                current.append(c)
                p += 1
            elif in_sq:
                if c == -1:
                    raise UnbalancedQuotes("unterminated single quote")
                if c == _BS and p + 1 < end and line[p + 1] == _SQ:
                    current.append(_SQ)
                    p += 2
                    continue
                if c == _SQ:
                    p += 1
                    if p < end and line[p] not in _SPACE:
                        raise UnbalancedQuotes("closing quote must be followed by a space")
                    break
                current.append(c)
                p += 1
            else:
                if c == -1 or c in _WORD_END:
                    break
                if c == _DQ:
                    in_dq = True
                elif c == _SQ:
                    in_sq = True
                else:
                    current.append(c)
                p += 1
        args.append(bytes(current))


class LineFramer:
    """Cut a received byte stream into LF-terminated lines, in time linear in its length.

    An unfinished line is held as the pieces it arrived in and joined once, when its LF
    comes; each feed scans only its own bytes. (Twisted's LineReceiver appends every read
    to one buffer and searches all of it again, so a line sent a byte at a time costs
    O(length**2).) A line of more than ``limit`` bytes (a CR before its LF included),
    complete or not yet, ends the stream: ``overflow`` is set and nothing more is framed.
    """

    __slots__ = ("limit", "overflow", "_pieces", "_room")

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.overflow = False
        self._pieces = []  # the unfinished line, as received
        self._room = limit  # how many more bytes it may grow by

    def feed(self, data: bytes):
        """Return the lines ``data`` completes, in order, without their LF (a CR is kept).

        A list, or an empty tuple when there is none. Cost: O(len(data)), plus one join of
        the unfinished line's pieces when it ends. On overflow, returns the lines before
        the long one and drops what is held.
        """
        if b"\n" not in data:
            room = self._room - len(data)
            if room >= 0:
                self._room = room
                self._pieces.append(data)
            elif not self.overflow:
                self._overflowed()
            return ()
        if self.overflow:
            return ()
        lines = data.split(b"\n")
        tail = lines.pop()
        pieces = self._pieces
        if pieces:
            pieces.append(lines[0])
            lines[0] = b"".join(pieces)
            self._pieces = []
        limit = self.limit
        if max(map(len, lines)) > limit:
            for index, line in enumerate(lines):
                if len(line) > limit:
                    del lines[index:]
                    break
            self._overflowed()
            return lines
        if len(tail) > limit:
            self._overflowed()
        elif tail:
            self._pieces.append(tail)
            self._room = limit - len(tail)
        else:
            self._room = limit
        return lines

    def held(self) -> list:
        """Return the pieces of the unfinished line as they were fed (the list itself)."""
        return self._pieces

    def clear(self) -> None:
        """Drop the unfinished line."""
        self._pieces = []
        self._room = -1 if self.overflow else self.limit

    def _overflowed(self) -> None:
        # Nothing is held from now on: every later feed finds no room.
        self.overflow = True
        self._pieces = []
        self._room = -1
