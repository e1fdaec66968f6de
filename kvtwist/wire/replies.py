"""Reply values shared by every command, and their RESP2 and RESP3 renderings (the text
rendering redis-cli shows is in textreply.py)."""

from __future__ import annotations

import heapq
from itertools import islice

# A reply is one of:
#   bytes            bulk string
#   None             nil bulk string
#   int              integer (never bool)
#   list / tuple     array of replies (nested freely)
#   Status           simple string (+OK)
#   Error            error (-ERR ...)
#   NilArray         the nil array (*-1), as Redis sends for a BLPOP timeout
#   Push             an array that RESP3 sends as a push (pub/sub)
#   Pairs            key/value pairs: a flat array in RESP, one pair per line in text
#   Streamed         a large array of bulk strings, or Pairs, handed out a slice at a time
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


class Push(list):
    """An array Redis sends as a RESP3 push (``>``): pub/sub confirmations and messages.

    RESP2 and the text dialects render it as any array.
    """

    __slots__ = ()


class _NilArray:
    __slots__ = ()

    def __repr__(self) -> str:
        return "NIL_ARRAY"


NIL_ARRAY = _NilArray()


class _NoReply:
    __slots__ = ()

    def __repr__(self) -> str:
        return "NO_REPLY"


# A command that sends nothing back (CLIENT REPLY OFF and SKIP): renders as no bytes.
NO_REPLY = _NoReply()


class Raw(bytes):
    """A reply already in the protocol its client speaks (RESP2 or RESP3 bytes, as a server
    sent them): written as it is. kvproxy relays a pinned connection's replies so."""

    __slots__ = ()


class SetReply(list):
    """An array of distinct members (SMEMBERS): a RESP3 set (``~``), a RESP2 array."""

    __slots__ = ()


class Double:
    """A floating-point reply given as its text (Redis's "%.17g", or "inf"/"-inf"): a RESP3
    double (``,``), a RESP2 bulk string."""

    __slots__ = ("text",)

    def __init__(self, text: bytes) -> None:
        self.text = text

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Double) and other.text == self.text

    def __repr__(self) -> str:
        return "Double(%r)" % (self.text,)


class Pairs:
    """Key/value pairs in key order: DUMP's reply."""

    __slots__ = ("items",)

    def __init__(self, items: list) -> None:
        self.items = items

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Pairs) and other.items == self.items

    def __repr__(self) -> str:
        return "Pairs(%r)" % (self.items,)


# A reply with more entries than this is Streamed (KEYS, DUMP); a shorter one is plain.
STREAM_MIN = 1024
# A slice of a Streamed reply holds at most SLICE entries, and stops after the entry that
# takes it to SLICE_BYTES bytes: what the server writes in one reactor turn.
SLICE = 512
SLICE_BYTES = 256 * 1024
# sorted_pairs sorts its keys in runs of this many, one run per slice (about 1 ms each).
SORT_RUN = 4096


class Streamed:
    """A large array of bulk strings, or Pairs, produced a slice at a time.

    ``count`` entries (pairs, for ``pairs``) in all; ``slices`` is an iterator of lists of
    them (bytes, or ``(key, value)`` tuples), some possibly empty while work is done in
    between. The server writes one slice per reactor turn (``resp_pieces``, ``text_pieces``,
    ``jsonlines.stream_pieces``), so other clients are served meanwhile; any other
    rendering uses ``whole()``. It can be consumed once.
    """

    __slots__ = ("count", "slices", "pairs")

    def __init__(self, count: int, slices, pairs: bool = False) -> None:
        self.count = count
        self.slices = slices
        self.pairs = pairs

    def whole(self):
        """Return the plain reply, a list or Pairs, of every entry not yet taken: O(count)."""
        items = [item for piece in self.slices for item in piece]
        return Pairs(items) if self.pairs else items

    def __repr__(self) -> str:
        return "Streamed(%d%s)" % (self.count, " pairs" if self.pairs else "")


def stream_array(items: list):
    """Return the reply for a list of bulk strings: itself when short, else Streamed.

    Slices are copied from the list, which is not changed (nobody may change it later
    either): O(1) now, O(len(items)) in all over the slices.
    """
    if len(items) <= STREAM_MIN:
        return items
    return Streamed(len(items), _array_slices(items))


def _array_slices(items: list):
    for start in range(0, len(items), SLICE):
        piece = items[start:start + SLICE]
        if sum(map(len, piece)) <= SLICE_BYTES:
            yield piece
        else:
            yield from _bounded(piece, len)


def _bounded(entries, size):
    # Consecutive slices of at most SLICE entries, each ended by the entry that takes it
    # to SLICE_BYTES; ``size(entry)`` is an entry's byte count.
    piece = []
    total = 0
    for entry in entries:
        piece.append(entry)
        total += size(entry)
        if total >= SLICE_BYTES or len(piece) >= SLICE:
            yield piece
            piece = []
            total = 0
    if piece:
        yield piece


def sorted_pairs(keys: list, values: dict):
    """Return Pairs of ``(key, values[key])`` for ``keys`` sorted by key, Streamed when many.

    ``keys`` are distinct keys of ``values``; their values are read now (a snapshot: later
    changes to ``values`` are not seen), and the list is not kept. Few keys: one ``sorted``.
    Many: no sort of them all at once on the reactor (timsort of a million keys takes
    0.6 s, several seconds for pairs in random order). The snapshot is taken now
    (``dict.copy``, O(n) in C: about 25 ms per million keys); the keys are sorted in runs
    of SORT_RUN, one run per slice (about 1 ms each), then merged by ``heapq.merge`` (a
    heap of n / SORT_RUN runs, small enough to stay in cache), SLICE pairs per slice.
    About 2 s of CPU per million keys in all, over n / SORT_RUN + n / SLICE slices, none
    above a few ms. Popping every key from one heap of them all instead (``heapify`` is
    O(n) in C, but each pop costs O(log n) comparisons, a cache miss each) took 3 s for
    the pops alone. Memory: the runs and the snapshot, O(n), let go of as slices go out.
    """
    if len(keys) <= STREAM_MIN:
        return Pairs(sorted([(key, values[key]) for key in keys]))
    if len(keys) == len(values):
        snapshot = values.copy()
    else:
        snapshot = {key: values[key] for key in keys}
    return Streamed(len(keys), _sorted_slices(snapshot), pairs=True)


def _sorted_slices(snapshot: dict):
    # A list of a million keys is a container the cyclic garbage collector walks item by
    # item (a cache miss each: 25 to 50 ms) on each pass over the generation it is in.
    # So the runs are read from the snapshot (unchanged until they are all sorted), not
    # from a list of every key, and each sorted run is kept as the keys of a dict, which
    # holds only bytes and None and so is never tracked by the collector.
    runs = []
    keys = iter(snapshot)
    while True:
        run = list(islice(keys, SORT_RUN))
        if not run:
            break
        run.sort()
        runs.append(iter(dict.fromkeys(run)))  # an exhausted iterator lets go of its dict
        yield []
    del keys, run
    merged = heapq.merge(*runs) if len(runs) > 1 else runs[0]
    del runs
    # Popped as they go out: the snapshot is empty at the end, so freeing it costs nothing
    # then (a million entries let go at once would hold the reactor for about 25 ms).
    take = snapshot.pop
    while True:
        batch = list(islice(merged, SLICE))
        if not batch:
            return
        pairs = [(key, take(key)) for key in batch]
        if sum([len(value) for _, value in pairs]) < SLICE_BYTES:
            yield pairs
        else:
            yield from _bounded(pairs, _pair_size)


def _pair_size(pair) -> int:
    return len(pair[0]) + len(pair[1])


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


_CRLF = b"\r\n"
# The "$<length>\r\n" line of a bulk string shorter than this many bytes is looked up here.
_BULK_HEADS = [b"$%d\r\n" % size for size in range(1024)]
_bulk_head = _BULK_HEADS.__getitem__


def _bulks(first: bytes, items: list) -> bytes:
    """Return ``first`` followed by each of ``items`` (byte strings) as a bulk string.

    The pieces are laid out in one list by slice assignments and joined once, so there is
    no Python-level step per element: about 60 ns an element under CPython where
    formatting each bulk string (``b"$%d\r\n%s\r\n" % ...``) took 170 ns. O(bytes).
    An element that is not a byte string raises TypeError (``len`` of None or an int, or
    the join of a list), and the caller renders element by element instead.
    """
    parts = [_CRLF] * (3 * len(items) + 1)
    parts[0] = first
    try:
        parts[1::3] = map(_bulk_head, map(len, items))
    except IndexError:  # an element of 1024 bytes or more: its header is formatted
        parts[1::3] = [b"$%d\r\n" % len(item) for item in items]
    parts[2::3] = items
    return b"".join(parts)


def _bulk_array(items: list) -> bytes:
    # An array of byte strings (LRANGE, HGETALL, SMEMBERS...), the same in RESP2 and RESP3.
    return _bulks(b"*%d\r\n" % len(items), items)


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
    if reply.__class__ is list and reply and reply[-1].__class__ is bytes:
        # (A reply ending in a Double, as ZPOPMIN's and WITHSCORES', is not tried: the
        # TypeError costs about 2 us, more than rendering a short reply element-wise.)
        try:
            return _bulk_array(reply)
        except TypeError:
            pass  # not only byte strings: element by element
    if isinstance(reply, (list, tuple)):
        # Bulk strings and Doubles (ZRANGE WITHSCORES, ZPOPMIN) are rendered in place.
        parts = [b"*%d\r\n" % len(reply)]
        append = parts.append
        for item in reply:
            if item.__class__ is bytes:
                append(b"$%d\r\n%s\r\n" % (len(item), item))
            elif item.__class__ is Double:
                append(b"$%d\r\n%s\r\n" % (len(item.text), item.text))
            else:
                append(to_resp(item))
        return b"".join(parts)
    if isinstance(reply, Pairs):
        flat = []
        for key, value in reply.items:
            flat.append(key)
            flat.append(value)
        return to_resp(flat)
    if reply is NIL_ARRAY:
        return b"*-1\r\n"
    if reply.__class__ is Double:
        return b"$%d\r\n%s\r\n" % (len(reply.text), reply.text)
    if reply is NO_REPLY:
        return b""
    if isinstance(reply, int):  # int subclasses (IntEnum, bool) go the slow way
        return b":%d\r\n" % int(reply)
    if isinstance(reply, (bytearray, memoryview)):
        return to_resp(bytes(reply))
    if isinstance(reply, Streamed):  # not at the top of a reply (EXEC's array)
        return to_resp(reply.whole())
    if reply.__class__ is Raw:
        return bytes(reply)
    raise TypeError("not a reply: %r" % (reply,))


def to_resp3(reply) -> bytes:
    """Render one reply as RESP3 (after HELLO 3): nulls are ``_`` and Pairs are maps."""
    if reply.__class__ is bytes:
        return b"$%d\r\n%s\r\n" % (len(reply), reply)
    if reply is None or reply is NIL_ARRAY:
        return b"_\r\n"
    if reply.__class__ is Push:
        return to_resp3_push(reply)
    if reply.__class__ is Double:
        return b",%s\r\n" % reply.text
    if reply.__class__ is list and reply and reply[-1].__class__ is bytes:
        try:
            return _bulk_array(reply)
        except TypeError:
            pass  # not only byte strings: element by element
    if isinstance(reply, (list, tuple)):
        parts = [b"%s%d\r\n" % (b"~" if reply.__class__ is SetReply else b"*", len(reply))]
        parts.extend(to_resp3(item) for item in reply)
        return b"".join(parts)
    if isinstance(reply, Pairs):
        parts = [b"%%%d\r\n" % len(reply.items)]
        for key, value in reply.items:
            parts.append(to_resp3(key))
            parts.append(to_resp3(value))
        return b"".join(parts)
    if isinstance(reply, Streamed):
        return to_resp3(reply.whole())
    return to_resp(reply)


def resp_pieces(stream: Streamed, resp3: bool = False):
    """Yield ``stream`` rendered as RESP2 (RESP3 when ``resp3``), one bytes per slice.

    Joined, the pieces are ``to_resp`` (``to_resp3``) of its whole value; the first piece
    is the array's or map's header. O(bytes of the slice) per piece.
    """
    count = stream.count
    if not stream.pairs:
        yield b"*%d\r\n" % count
        for piece in stream.slices:
            yield _bulks(b"", piece)
        return
    yield b"%%%d\r\n" % count if resp3 else b"*%d\r\n" % (2 * count)
    for piece in stream.slices:
        yield b"".join([b"$%d\r\n%s\r\n$%d\r\n%s\r\n" % (len(key), key, len(value), value)
                        for key, value in piece])


# A bulk string reply longer than this is written a slice of this size at a time.
BULK_SLICE = 1 << 20


def bulk_pieces(value: bytes, size: int = BULK_SLICE):
    """Yield the RESP bulk string of ``value`` (the same bytes in RESP2 and RESP3) in
    pieces of about ``size`` bytes: the header with the first slice, the last slice with
    the CRLF. Joined, they are ``to_resp(value)``. Each piece copies its slice only, so
    a 16 MB GET reply is never copied whole: O(size) per piece, O(len(value)) in all."""
    end = len(value)
    start = min(size, end)
    piece = b"$%d\r\n" % end + value[:start]
    while start < end:
        yield piece
        piece = value[start:start + size]
        start += size
    yield piece + _CRLF


def to_resp3_push(reply) -> bytes:
    """Render an out-of-band message (pub/sub, invalidation) as a RESP3 push."""
    if isinstance(reply, (list, tuple)):
        return b">%d\r\n" % len(reply) + b"".join(to_resp3(item) for item in reply)
    return to_resp3(reply)


def _one_line(message: str) -> str:
    # An error is one RESP line; a CR or LF inside would split the stream.
    return message.replace("\r", " ").replace("\n", " ")
