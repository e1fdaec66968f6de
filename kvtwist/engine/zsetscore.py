"""Sorted-set score text, as Redis 7.0 reads and writes it: glibc strtod's grammar
(string2d for ZADD scores, zslParseRange for "(1.5" bounds), addReplyDouble's "%.17g", and
ZRANGEBYLEX's "[a" / "(a" / "-" / "+" bounds with their comparisons. Pure functions."""

from __future__ import annotations

import re

INF = float("inf")


_NUMBER = re.compile(
    rb"[ \t\n\v\f\r]*([+-]?)(?:(inf(?:inity)?)|(nan(?:\([0-9a-z_]*\))?)"
    rb"|(0x(?:[0-9a-f]+\.?[0-9a-f]*|\.[0-9a-f]+)(?:p[+-]?[0-9]+)?)"
    rb"|((?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:e[+-]?[0-9]+)?))", re.I)
_MANTISSA_DIGITS = re.compile(rb"[1-9a-f]", re.I)


def strtod(text: bytes) -> tuple:
    """Return ``(value, consumed, out_of_range)`` as glibc's strtod reads ``text``.

    ``consumed`` is 0 when no number starts it; ``out_of_range`` is strtod's ERANGE for an
    overflow (to +-inf) or an underflow (to 0) of a finite number.
    """
    match = _NUMBER.match(text)
    if match is None:
        return 0.0, 0, False
    sign, infinity, nan, hexadecimal, decimal = match.groups()
    negative = sign == b"-"
    erange = False
    if infinity:
        value = INF
    elif nan:
        value = float("nan")
    elif hexadecimal:
        body = hexadecimal.lower()
        try:
            value = float.fromhex(body.decode())
        except OverflowError:
            value, erange = INF, True
        else:
            mantissa = body[2:].split(b"p")[0]
            erange = value == 0.0 and bool(_MANTISSA_DIGITS.search(mantissa))
    else:
        value = float(decimal)
        if value == INF:
            erange = True
        elif value == 0.0:
            erange = bool(_MANTISSA_DIGITS.search(decimal.lower().split(b"e")[0]))
    return (-value if negative else value), match.end(), erange


_PLAIN = re.compile(rb"-?[0-9]{1,15}(?:\.[0-9]{1,15})?\Z").match


def parse_score(text: bytes):
    """Return a score as Redis's string2d takes it (ZADD, ZINCRBY, WEIGHTS), or None."""
    if text.isdigit() and len(text) < 16:
        return float(text)  # a plain integer below 10**15: exact, and the cheapest test
    if _PLAIN(text) is not None:
        return float(text)  # the usual short decimal: float() reads it exactly as strtod
    if not text or text[0] in b" \t\n\v\f\r":
        return None
    value, consumed, erange = strtod(text)
    if consumed != len(text) or value != value:
        return None
    if erange and (value in (INF, -INF) or value == 0.0):
        return None
    return value


def format_score(score: float) -> bytes:
    """Return a score's text as Redis's addReplyDouble writes it ("%.17g", inf, -inf)."""
    if score == INF:
        return b"inf"
    if score == -INF:
        return b"-inf"
    return b"%.17g" % score


def parse_bound(text: bytes):
    """Return ``(score, exclusive)`` of a ZRANGEBYSCORE bound (zslParseRange), or None."""
    text = text.split(b"\0", 1)[0]  # strtod stops at a NUL
    exclusive = text[:1] == b"("
    if exclusive:
        text = text[1:]
    value, consumed, _ = strtod(text)
    if consumed != len(text) or value != value:
        return None
    return value, exclusive


# A lex bound: (member, exclusive), with MIN and MAX standing for "-" and "+".
MIN_STRING, MAX_STRING = object(), object()


def parse_lex(text: bytes):
    """Return ``(member, exclusive)`` of a ZRANGEBYLEX bound, or None (zslParseLexRangeItem)."""
    first = text[:1]
    if first in (b"+", b"-"):
        if text[1:2] not in (b"", b"\0"):
            return None
        return (MAX_STRING if first == b"+" else MIN_STRING), True
    if first == b"(":
        return text[1:], True
    if first == b"[":
        return text[1:], False
    return None


def _lex_cmp(member, bound) -> int:
    if member is bound:
        return 0
    if bound is MIN_STRING or member is MAX_STRING:
        return 1
    if bound is MAX_STRING or member is MIN_STRING:
        return -1
    return (member > bound) - (member < bound)


def lex_empty(low, high) -> bool:
    """Whether a lex range can hold nothing (min above max, or equal and exclusive)."""
    cmp = _lex_cmp(low[0], high[0])
    return cmp > 0 or (cmp == 0 and (low[1] or high[1]))


def lex_gte_min(member: bytes, low) -> bool:
    """Whether ``member`` is at or above a lex range's lower bound."""
    cmp = _lex_cmp(member, low[0])
    return cmp > 0 if low[1] else cmp >= 0


def lex_lte_max(member: bytes, high) -> bool:
    """Whether ``member`` is at or below a lex range's upper bound."""
    cmp = _lex_cmp(member, high[0])
    return cmp < 0 if high[1] else cmp <= 0
