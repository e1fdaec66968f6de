"""Redis glob patterns (7.0's stringmatchlen) matched without backtracking across stars."""

from __future__ import annotations

import re

# Compiled matchers kept, oldest dropped first; longer patterns are compiled every time.
CACHE_SIZE = 256
CACHE_PATTERN_MAX = 1024

_cache: dict = {}

_STAR, _QUESTION, _OPEN, _CLOSE, _CARET, _DASH, _BACKSLASH = b"*?[]^-\\"
_ALL = frozenset(range(256))
# The longest run of one atom written as a single repeat (sre counts to 65535 at least).
_RUN_MAX = 65535


def _char(byte: int) -> int:
    # Redis compares C chars, signed on its platforms: bytes from 0x80 order below 0x00.
    return byte - 256 if byte >= 128 else byte


def _tolower(value: int) -> int:
    # tolower() in the C locale (redis-server only sets LC_COLLATE): ASCII letters only.
    return value + 32 if 65 <= value <= 90 else value


def _literal(byte: int, nocase: bool) -> frozenset:
    if nocase and _tolower(byte) != byte:
        return frozenset((byte, byte + 32))
    if nocase and 97 <= byte <= 122:
        return frozenset((byte, byte - 32))
    return frozenset((byte,))


def _signed_range(start: int, end: int) -> set:
    # The bytes whose signed value lies in start..end (-128 <= start, end <= 127).
    if end < start:
        return set()
    if start >= 0 or end < 0:
        return set(range(start % 256, end % 256 + 1))
    return set(range(start + 256, 256)) | set(range(0, end + 1))


def _range(first: int, last: int, nocase: bool) -> set:
    start, end = _char(first), _char(last)
    if start > end:
        start, end = end, start
    if not nocase:
        return _signed_range(start, end)
    # As util.c: the bounds are lowered after the swap (so the range may become empty), and
    # a byte is in when its lowered value is.
    start, end = _tolower(start), _tolower(end)
    members = _signed_range(start, end) - set(range(65, 91))
    members.update(upper for upper in range(65, 91) if start <= upper + 32 <= end)
    return members


def parse(pattern: bytes, nocase: bool = False) -> list:
    """Split a pattern into its atoms, in order: None for a run of stars, else the frozenset
    of bytes that atom matches (each non-star atom matches exactly one byte).

    The scan follows stringmatchlen_impl step by step: ``\\`` escapes the next byte (a
    trailing one is literal); a class runs to ``]`` or, unterminated, to the pattern's end;
    in a class ``x-y`` is a range (bounds swapped if reversed, even when ``y`` is ``]``), an
    escaped byte is compared exactly even with nocase, and a leading ``^`` negates.
    O(len(pattern) * 256) at worst (for ranges).
    """
    atoms: list = []
    i, n = 0, len(pattern)
    while i < n:
        c = pattern[i]
        if c == _STAR:
            while i < n and pattern[i] == _STAR:
                i += 1
            atoms.append(None)
            continue
        if c == _QUESTION:
            atom = _ALL
            i += 1
        elif c == _OPEN:
            i += 1
            negate = i < n and pattern[i] == _CARET
            if negate:
                i += 1
            members: set = set()
            while i < n:
                c = pattern[i]
                if c == _BACKSLASH and n - i >= 2:
                    members.add(pattern[i + 1])
                    i += 2
                elif c == _CLOSE:
                    i += 1
                    break
                elif n - i >= 3 and pattern[i + 1] == _DASH:
                    members |= _range(c, pattern[i + 2], nocase)
                    i += 3
                else:
                    members |= _literal(c, nocase)
                    i += 1
            atom = _ALL - members if negate else frozenset(members)
        else:
            if c == _BACKSLASH and n - i >= 2:
                i += 1
            atom = _literal(pattern[i], nocase)
            i += 1
        atoms.append(atom)
    return atoms


def _class(atom: frozenset) -> bytes:
    # A regex character class of the atom's bytes, written as \xHH ranges.
    parts = []
    members = sorted(atom)
    start = previous = members[0]
    for byte in members[1:] + [-2]:
        if byte != previous + 1:
            if previous == start:
                parts.append(b"\\x%02x" % start)
            else:
                parts.append(b"\\x%02x-\\x%02x" % (start, previous))
            start = byte
        previous = byte
    return b"[" + b"".join(parts) + b"]"


def _segment(atoms: list):
    """Return a fixed-width segment as bytes when every atom is one byte, else a regex of
    one byte per atom (runs of equal atoms as ``x{k}``: fixed counts, nothing to retry)."""
    if all(len(atom) == 1 for atom in atoms):
        return bytes(next(iter(atom)) for atom in atoms)
    parts = []
    index = 0
    while index < len(atoms):
        atom = atoms[index]
        run = index + 1
        while run < len(atoms) and run - index < _RUN_MAX and (atoms[run] is atom
                                                                or atoms[run] == atom):
            run += 1
        parts.append(re.escape(bytes(atom)) if len(atom) == 1 else _class(atom))
        if run - index > 1:
            parts.append(b"{%d}" % (run - index))
        index = run
    return re.compile(b"".join(parts))


def _never(key) -> bool:
    return False


def _build(pattern: bytes, nocase: bool):
    """Return the function ``key -> bool`` for a pattern, shaped by its segments."""
    atoms = parse(pattern, nocase)
    if any(atom is not None and not atom for atom in atoms):
        return _never  # an empty class matches no byte
    segments = [[]]
    for atom in atoms:
        if atom is None:
            segments.append([])
        else:
            segments[-1].append(atom)
    widths = [len(segment) for segment in segments]
    compiled = [_segment(segment) for segment in segments]
    if len(segments) == 1:
        whole = compiled[0]
        if isinstance(whole, bytes):
            return lambda key: key == whole
        fullmatch = whole.fullmatch
        return lambda key: fullmatch(key) is not None
    first, last = compiled[0], compiled[-1]
    first_width, last_width = widths[0], widths[-1]
    # At least one byte: stringmatchlen matches an empty key only with the empty pattern.
    shortest = max(1, sum(widths))
    if len(segments) == 2 and isinstance(first, bytes) and isinstance(last, bytes):
        # prefix*, *suffix, prefix*suffix and * itself.
        return lambda key: (len(key) >= shortest and key.startswith(first)
                            and key.endswith(last))
    middles = list(zip(compiled[1:-1], widths[1:-1]))

    def match(key) -> bool:
        size = len(key)
        if size < shortest:
            return False
        if isinstance(first, bytes):
            if not key.startswith(first):
                return False
        elif first.match(key) is None:
            return False
        position, end = first_width, size - last_width
        # Leftmost placement of each middle segment leaves the most room for the rest.
        for segment, width in middles:
            if isinstance(segment, bytes):
                found = key.find(segment, position, end)
                if found < 0:
                    return False
                position = found + width
            else:
                found = segment.search(key, position, end)
                if found is None:
                    return False
                position = found.end()
        if isinstance(last, bytes):
            return key.endswith(last)
        return last.match(key, end) is not None

    return match


class Glob:
    """A compiled pattern: ``matches(key) -> bool`` is Redis's ``stringmatchlen``.

    Calling the object is ``matches``; ``fullmatch`` answers like a compiled regex's
    (something or None) for callers written against one.
    """

    __slots__ = ("pattern", "nocase", "matches")

    def __init__(self, pattern: bytes, nocase: bool) -> None:
        self.pattern = pattern
        self.nocase = nocase
        self.matches = _build(pattern, nocase)

    def __call__(self, key) -> bool:
        return self.matches(key)

    def fullmatch(self, key):
        """Return True when the whole key matches, else None."""
        return True if self.matches(key) else None


def compile_glob(pattern: bytes, nocase: bool = False) -> Glob:
    """Return the L{Glob} answering Redis 7.0's ``stringmatchlen`` for ``pattern``.

    The pattern is cut at its stars into fixed-width segments: the first must match at the
    start, the last at the end, and each middle one is placed at its leftmost match after
    the previous one (optimal for a glob, so nothing is retried). One match costs
    O(len(key) * widest segment) in C string searches, whatever the number of stars;
    compiling costs O(len(pattern)) and is cached for short patterns.
    """
    cache_key = (pattern, nocase)
    compiled = _cache.get(cache_key)
    if compiled is not None:
        return compiled
    compiled = Glob(pattern, nocase)
    if len(pattern) <= CACHE_PATTERN_MAX:
        if len(_cache) >= CACHE_SIZE:
            del _cache[next(iter(_cache))]
        _cache[cache_key] = compiled
    return compiled
