"""MULTI / EXEC / DISCARD through kvproxy: a client's transaction is queued in the proxy and
sent at EXEC as one block (MULTI, its commands, EXEC) on the connection of the server that
holds its keys.

The block goes out back to back from the reactor thread on that server's one connection,
which runs a client's MULTI ... EXEC as one unit whatever other clients send around it: it
is pinned to that connection for the length of the transaction, and nothing of another
client's comes between its commands (Redis queues them and runs them atomically at EXEC).
So the transaction is atomic on the server, and in the ordering model it is one request
at its EXEC. Every key of the transaction must live on one server (a sharded pool: use a
hash tag); otherwise EXEC answers a CROSSSLOT error and nothing is sent.

Differences from Redis, by construction: a command's queue-time errors that only the server
sees (arity, unknown command) come back as EXEC's ``EXECABORT`` rather than in place of
its QUEUED. A command that would change the shared connection (SELECT, AUTH, HELLO,
CLIENT, RESET, SUBSCRIBE, ...) moves the client to a connection of its own
(``proxy.tunnel``), where the transaction is replayed and goes on; behind a sharded pool
such commands are refused inside MULTI, which aborts the transaction, as Redis does for a
queue-time error. A watching client's transaction goes on its own connection
(``proxy.watching``).
"""

from __future__ import annotations

from kvtwist.proxy.commands import ADMIN, REFUSED, WRITES, admin, admin_keys, scope
from kvtwist.proxy.databases import invalidate
from kvtwist.proxy.tunnel import opens
from kvtwist.wire.replies import OK, Error, Status

QUEUED = Status(b"QUEUED")
EXECABORT = Error("EXECABORT Transaction discarded because of previous errors.")

# Commands that change the state of the connection they run on: not sent in a block on
# a shared connection.
CONNECTION_STATE = frozenset(
    b"SELECT AUTH HELLO CLIENT RESET QUIT EXIT".split())


def transaction_scope(commands: list, db: int) -> list:
    """The union of the scopes of a transaction's writes (``commands.scope``); a command
    kvproxy does not know changes nothing it can name. O(total arguments)."""
    targets = []
    for argv in commands:
        name = argv[0].upper()
        extractor = WRITES.get(name)
        if extractor is not None:
            targets.extend(scope(name, argv, db, extractor(argv)))
        elif name in ADMIN or admin(name, argv):
            targets.extend(scope(name, argv, db, admin_keys(name, argv)))
    return targets


class Transacting:
    """The transaction part of a proxy session: MULTI queues the client's commands in the
    proxy until EXEC (or DISCARD)."""

    _queued = None  # while MULTI is open: the argvs queued
    _aborted = False  # a queue-time error: EXEC answers EXECABORT

    def _multi(self, argv):
        if len(argv) != 1:
            return Error("ERR wrong number of arguments for 'multi' command")
        self._queued = []
        self._aborted = False
        return OK

    def _queue(self, argv):
        """Queue one command of an open transaction (or end it); O(1)."""
        name = argv[0].upper()
        if name == b"EXEC":
            return self._exec(argv)
        if name == b"DISCARD":
            return self._discard(argv)
        if name == b"MULTI":
            return Error("ERR MULTI calls can not be nested")
        if name in (b"WATCH", b"UNWATCH"):
            if name == b"WATCH":
                return Error("ERR WATCH inside MULTI is not allowed")
            self._queued.append(argv)
            return QUEUED
        if self.proxy.tunnels and (name in CONNECTION_STATE or name in REFUSED
                                   or opens(name, argv, self.proxy.resp3_tunnel)):
            # The transaction goes on on a connection of the client's own (proxy.tunnel).
            return self._start_tunnel(argv)
        refusal = None
        if name in CONNECTION_STATE or name in REFUSED:
            refusal = ("ERR '%s' inside MULTI is not supported through kvproxy"
                       % (name.decode("ascii", "replace"),))
        else:
            server_wide = admin(name, argv)
            if server_wide and not self.proxy.allow_admin:
                refusal = ("ERR '%s' changes the backend for every client of kvproxy: "
                           "refused (start kvproxy with --allow-admin to forward it)"
                           % (server_wide,))
        if refusal is not None:
            self._aborted = True
            return Error(refusal)
        self._queued.append(argv)
        return QUEUED

    def _exec(self, argv):
        if self._queued is None:
            return Error("ERR EXEC without MULTI")
        commands, aborted = self._queued, self._aborted
        self._queued = None
        self._aborted = False
        if len(argv) != 1:
            return Error("ERR wrong number of arguments for 'exec' command")
        if aborted:
            return EXECABORT
        return self._transaction(commands)

    def _transaction(self, commands: list):
        return self.proxy.transaction(commands, self.db)

    def _discard(self, argv):
        if self._queued is None:
            return Error("ERR DISCARD without MULTI")
        self._queued = None
        self._aborted = False
        self.unpin()  # DISCARD unwatches, as EXEC does
        return OK

    def unpin(self) -> None:
        """Stop watching (``watching.Watching``); nothing to do without it."""


def send_transaction(store, commands: list, db: int, request=None):
    """Send MULTI, ``commands`` and EXEC back to back on ``store``'s backend connection
    (or with ``request``, a watching client's own connection) to run in database ``db``,
    dropping what they write from the cache as a write does; the Deferred delivers EXEC's
    reply. O(total arguments)."""
    targets = transaction_scope(commands, db)
    store.reads.before_write(targets)
    invalidate(store.cache, targets)
    store.forwarded += 1
    if request is None:
        request = store.backend.request
    request([b"MULTI"], db=db).addBoth(_discard)
    for argv in commands:
        request(argv, db=db).addBoth(_discard)
    d = request([b"EXEC"], db=db)
    d.addBoth(store._written, targets)
    return d


def _discard(result) -> None:
    """MULTI's and QUEUED replies: EXEC's says what happened (EXECABORT after an error)."""
    return None
