"""WATCH through kvproxy: a backend connection of the client's own while it watches.

WATCH is state of the connection it runs on, and EXEC (any client's) ends it, so it cannot
run on a shared connection. A client's first WATCH opens a connection of its own (a
``Pin``) to the server of the watched keys (one server: a CROSSSLOT error otherwise),
logged in and in the client's database; from then until its EXEC, DISCARD or UNWATCH
(or its disconnection) its commands on that server's keys go there, past the cache (its
writes still drop what they change from it, when sent and when answered), and its
transaction's block (``transactions``) is sent there at EXEC; then the connection is
closed. Commands on other servers' keys and keyless ones go the usual way.

Order: before WATCH is sent on the new connection, a PING goes on the server's shared
connection and must be answered: the client's writes sent before its WATCH have run by
then, so they do not make its own transaction fail. Its requests made while the
connection opens wait for it (only this client waits). Cost: one connection (with its
login and SELECT) per watching client, and its round trips.
"""

from __future__ import annotations

from twisted.internet import defer

from kvtwist.client import connect
from kvtwist.proxy.commands import ADMIN, WRITES, admin, admin_keys, scope
from kvtwist.proxy.databases import invalidate
from kvtwist.proxy.keys import command_keys
from kvtwist.proxy.transactions import send_transaction
from kvtwist.wire.replies import OK, Error

LOST = Error("ERR kvproxy lost the backend connection of this client's WATCH")

# Commands that stay kvproxy's own while a client watches (it answers or routes them).
NOT_PINNED = frozenset(
    b"PING ECHO QUIT EXIT INFO HELLO AUTH CLIENT MULTI EXEC DISCARD WATCH UNWATCH".split())


class Pin:
    """A connection of one client's own to ``store``'s server (``store``: the
    ``ProxyStore`` of one backend, or a pool's ``Shard``), in database ``db``."""

    def __init__(self, store, db: int) -> None:
        self.store = store
        self.db = db
        self.client = None
        self.closed = False

    def open(self) -> defer.Deferred:
        """Connect, log in, SELECT, and wait for a PING on the shared connection; the
        Deferred fires (with None) when requests may be sent."""
        backend = self.store.backend
        fence = backend.request([b"PING"])
        d = connect(None, backend.endpoint, backend.timeout, backend.clock)
        d.addCallback(self._connected, backend.login)
        return defer.gatherResults([d, fence], consumeErrors=True)

    def _connected(self, client, login):
        self.client = client
        if self.closed:
            client.close()
            return None
        steps = []
        if login is not None:
            steps.append(login)
        if self.db:
            steps.append([b"SELECT", b"%d" % (self.db,)])
        replies = [client.request(argv) for argv in steps]
        return defer.gatherResults(replies).addCallback(self._prepared)

    def _prepared(self, replies) -> None:
        for reply in replies:
            if reply.__class__ is Error:
                raise ValueError(reply.message)

    def request(self, argv: list, db=None, **options) -> defer.Deferred:
        """Send ``argv`` on the client's connection (``db`` and options are ignored: the
        connection is in the client's database)."""
        client = self.client
        if client is None or not client.is_connected:
            return defer.succeed(LOST)
        return client.request(argv)

    def close(self) -> None:
        """Close the connection (the server forgets what it watched)."""
        self.closed = True
        if self.client is not None and self.client.is_connected:
            self.client.close()


class Watching:
    """The WATCH part of a proxy session (``_pinned``: its Pin while it watches)."""

    _pinned = None

    def _watch(self, argv):
        if len(argv) < 2:
            return Error("ERR wrong number of arguments for 'watch' command")
        target = self.proxy.pin_target(argv[1:])
        if target.__class__ is Error:
            return target
        pin = self._pinned
        if pin is not None:
            if pin.store is not target:
                return self.proxy.pin_crossslot([pin.store, target])
            return pin.request(argv).addErrback(pin.store.failed)
        pin = self._pinned = Pin(target, self.db)
        self._held = []  # this client's next requests wait for the connection
        d = pin.open()
        d.addCallback(lambda _: pin.request(argv))
        d.addErrback(self._not_pinned, pin)
        d.addBoth(self._pin_opened)
        return d

    def _not_pinned(self, failure, pin):
        pin.close()
        if self._pinned is pin:
            self._pinned = None
        failure = getattr(failure.value, "subFailure", failure)
        return Error("ERR cannot open a backend connection for WATCH: %s"
                     % (failure.getErrorMessage(),))

    def _pin_opened(self, reply):
        self._release()
        return reply

    def _unwatch(self, argv):
        self.unpin()
        return OK

    def unpin(self) -> None:
        """Stop watching: close the client's connection (also when it disconnects)."""
        pin, self._pinned = self._pinned, None
        if pin is not None:
            pin.close()

    def _pinned_execute(self, argv, name: bytes):
        """Send a command of a watching client on its connection when its keys live on
        that server; None when it goes the usual way. O(len(argv))."""
        if name in NOT_PINNED:
            return None
        if name == b"SELECT":
            return Error("ERR SELECT while WATCHing is not supported through kvproxy")
        pin = self._pinned
        if not self.proxy.pinned_here(pin.store, command_keys(name, argv)):
            return None
        store = pin.store
        extractor = WRITES.get(name)
        if extractor is not None:
            targets = scope(name, argv, self.db, extractor(argv))
        elif name in ADMIN or admin(name, argv):
            if not self.proxy.allow_admin:
                return None  # refused the usual way
            targets = scope(name, argv, self.db, admin_keys(name, argv))
        else:
            return pin.request(argv).addErrback(store.failed)
        store.reads.before_write(targets)
        invalidate(store.cache, targets)
        return pin.request(argv).addBoth(store._written, targets)

    def _transaction(self, commands: list):
        """Send a transaction: on the client's own connection while it watches (then
        closed), else as ``proxy.transaction``."""
        pin = self._pinned
        if pin is None:
            return self.proxy.transaction(commands, self.db)
        self._pinned = None
        keys = []
        for argv in commands:
            keys.extend(command_keys(argv[0].upper(), argv))
        if keys and not self.proxy.pinned_here(pin.store, keys):
            pin.close()
            return self.proxy.pin_crossslot([pin.store] + [
                self.proxy.pin_target([key]) for key in keys])
        d = send_transaction(pin.store, commands, self.db, pin.request)
        d.addBoth(_closing, pin)
        return d


def _closing(result, pin):
    pin.close()
    return result
