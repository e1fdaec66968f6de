"""How long a fetched value may be cached: no longer than its key lives on the backend.

A backend tells kvproxy's invalidation link that a key expired only when it deletes the
key, lazily (a client touches it) or when its active-expire cycle samples it, which may
be long after the key's TTL. So kvproxy asks ``PTTL key`` before it caches a fetched
value, and the entry lives at most as long as the key's remaining TTL, counted from when
the PTTL was sent (the backend read the TTL later than that, so the entry never outlives
the key). On the shared connection the PTTL follows the value's reply (``reads.Reads._keep``:
a nil needs none, and the client is not kept waiting); a lane sends it right behind its
GET (``Timed``), one round trip for both.
"""

from __future__ import annotations

from kvtwist.wire.replies import Error

# A PTTL reply kvproxy did not get (the request failed) or cannot use (an error reply).
UNKNOWN = object()


def fits_pttl(reply) -> bool:
    """Whether ``reply`` can be PTTL's: an integer or an error (O(1))."""
    cls = reply.__class__
    return cls is int or cls is Error


def life(value, pttl, sent: float, now: float):
    """How long a fetched ``value`` may be cached (seconds; None: the cache's own TTL;
    0: not at all), from its key's ``pttl`` reply (an int, else unknown), asked at
    ``sent``; O(1).

    A nil keeps the cache's (miss) TTL whatever ``pttl`` says: absence does not expire,
    and a key written between the two replies is invalidated like any write. A value
    with no expiry (-1) keeps the cache's TTL; one whose key has ``pttl`` ms left lives
    until ``sent`` plus that; one whose key is already gone (-2) or whose TTL is
    unknown is not cached.
    """
    if value is None:
        return None
    if pttl.__class__ is not int:
        return 0
    if pttl == -1:
        return None
    if pttl < 0:
        return 0
    return sent + pttl / 1000.0 - now


class Timed:
    """One fetch (``argv``: a GET or an MGET) sent with the PTTL of each of ``keys`` right
    behind it; once every reply is in (in any order, failures included), calls
    ``done(reply, ttls, sent, *args)``: the fetch's reply (or Failure), each key's PTTL
    reply (or ``UNKNOWN``), and the clock's time when they were sent. O(len(keys)).
    """

    __slots__ = ("reply", "ttls", "left", "sent", "done", "args")

    def __init__(self, backend, clock, argv: list, keys: list, db, check, done,
                 *args) -> None:
        self.reply = None
        self.ttls = [UNKNOWN] * len(keys)
        self.left = 1 + len(keys)
        self.sent = clock.seconds()
        self.done = done
        self.args = args
        request = backend.request
        request(argv, db=db, check=check).addBoth(self._replied)
        for index, key in enumerate(keys):
            request([b"PTTL", key], db=db, check=fits_pttl).addBoth(self._timed, index)

    def _replied(self, reply) -> None:
        self.reply = reply
        self._arrived()

    def _timed(self, reply, index: int) -> None:
        if reply.__class__ is int:
            self.ttls[index] = reply
        self._arrived()

    def _arrived(self) -> None:
        self.left -= 1
        if self.left == 0:
            self.done(self.reply, self.ttls, self.sent, *self.args)
