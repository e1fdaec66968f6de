"""Key patterns of an ACL selector compiled for the check (engine/acl_check.py): a matcher
per permission need, and the byte range a single literal or ``prefix*`` pattern is.

Both are cached in the selector (``matchers``, ``prefixes``, ``ranges``) and dropped by
every modifier it takes (acl_rules.Selector.apply).
"""

from __future__ import annotations

_GLOB = frozenset(b"*?[]\\")


def key_matcher(selector, need: int):
    """Return a function ``key -> bool``: whether a pattern of ``selector`` granting ``need``
    matches (kept in ``selector.matchers``).

    Patterns that are a plain prefix and a star (``app:*``, the usual kind) are tested
    with one ``bytes.startswith`` of them all; others with their globs. O(patterns)."""
    prefixes, globs = [], []
    for pattern, flags, glob in selector.patterns:
        if flags & need != need:
            continue
        stem = pattern[:-1]
        if pattern.endswith(b"*") and not any(char in stem for char in b"*?[]\\"):
            prefixes.append(stem)
        else:
            globs.append(glob.matches)
    prefixes = tuple(prefixes)
    selector.prefixes[need] = prefixes if not globs else None
    if not globs:
        def matcher(key) -> bool:
            return key.startswith(prefixes) and key != b""
    else:
        def matcher(key) -> bool:
            if key.startswith(prefixes) and key != b"":
                return True
            for matches in globs:
                if matches(key):
                    return True
            return False
    selector.matchers[need] = matcher
    return matcher


def key_range(selector, need: int):
    """Return ``(low, high)`` such that a pattern granting ``need`` matches a key
    exactly when ``low <= key < high``, or None when the patterns are not that simple.

    That is when one pattern grants ``need`` and it is a literal (``[literal, literal +
    NUL)``) or a non-empty literal prefix and a star (``[prefix, successor)``, the
    successor being the prefix with its last byte below 0xff incremented and what
    follows dropped; a prefix of 0xff bytes only has none). Bytes compare as unsigned
    bytes, as memcmp, so two comparisons decide. Cached until the next modifier.
    O(patterns x their length) the first time."""
    try:
        return selector.ranges[need]
    except KeyError:
        pass
    granting = [entry[0] for entry in selector.patterns if entry[1] & need == need]
    bounds = None
    if len(granting) == 1:
        pattern = granting[0]
        stem = pattern[:-1] if pattern.endswith(b"*") else None
        if stem is None:
            if not _has_glob(pattern):
                bounds = (pattern, pattern + b"\0")
        elif not _has_glob(stem):
            stripped = stem.rstrip(b"\xff")
            if stripped:
                bounds = (stem, stripped[:-1] + bytes((stripped[-1] + 1,)))
    selector.ranges[need] = bounds
    return bounds


def _has_glob(text: bytes) -> bool:
    # Whether stringmatchlen would read a byte of ``text`` as other than itself.
    return any(char in _GLOB for char in text)
