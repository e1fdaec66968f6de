"""kvproxy's databases: each client's SELECT, and what a write's scope drops from the cache.

Every client has its own database (``ProxySession.db``, 0 at first); every request kvproxy
sends names it, and the backend link SELECTs it on the shared connection when the
connection is elsewhere (``proxy.backend.Selection``). The cache is keyed by (database,
key) (``proxy.cache``).
"""

from __future__ import annotations

from twisted.internet.defer import Deferred

from kvtwist.proxy.commands import ALL
from kvtwist.wire.replies import Status

_OK = Status(b"OK")


class Selecting:
    """The database part of ``ProxySession``: ``db``, SELECT, and the requests held behind a
    SELECT in flight.

    A client's SELECT is forwarded as it is (so the backend validates it, with its own
    errors), and its database changes only when the backend answers OK. Until then the
    requests the client pipelined after it are held: which database they belong to
    depends on that answer. They run when it comes, in order (one of them may be another
    SELECT, which holds the rest again). Only this client waits; other clients' requests
    go on meanwhile.
    """

    db = 0
    _held = None  # while a SELECT is in flight: [(argv, Deferred)] pipelined after it

    def _select(self, argv):
        d = self.proxy.forward(argv)  # no database: it runs wherever the connection is
        self._held = []
        d.addCallback(self._selected, argv)
        return d

    def _hold(self, argv) -> Deferred:
        waiter = Deferred()
        self._held.append((argv, waiter))
        return waiter

    def _selected(self, reply, argv):
        if reply == _OK and len(argv) == 2:
            try:
                self.db = int(argv[1])
            except ValueError:  # an OK to what Redis refuses: keep the database
                pass
        self._release()
        return reply

    def _release(self) -> None:
        """Run the requests held behind the SELECT that answered, until one of them is a
        SELECT in flight again; O(held)."""
        held, self._held = self._held, None
        for index, (argv, waiter) in enumerate(held):
            if self._held is not None:
                self._held.extend(held[index:])
                return
            result = self.execute(argv)
            if isinstance(result, Deferred):
                result.chainDeferred(waiter)
            else:
                waiter.callback(result)


def invalidate(cache, scope) -> None:
    """Drop what a write may change from ``cache``: ``scope`` is ``commands.scope``'s list
    of (database or None for every one, keys or ALL). O(keys), or O(entries) for a
    database dropped whole."""
    for db, keys in scope:
        if db is None:
            cache.invalidate_all()
        elif keys is ALL:
            cache.invalidate_db(db)
        else:
            for key in keys:
                cache.invalidate(key, db)
