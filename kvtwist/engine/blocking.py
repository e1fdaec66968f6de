"""Blocking commands (BLPOP, BLMOVE, BZPOPMIN...): clients waiting for keys, served in order.

The engine half of Redis's blocked.c; pure (the serve layer turns a ``Blocked`` into a
Deferred reply, kvtwist/serve/blocking.py). Any type family blocks on it:

    from kvtwist.engine.blocking import NOT_READY, blocking_for, can_block, parse_timeout

    deadline = parse_timeout(argv[-1])            # seconds (float), 0.0 = forever; Redis's
                                                  # errors for a bad or negative timeout
    ... try to serve at once; if nothing to pop:
    if not can_block(session):                    # inside MULTI/EXEC: answer as a timeout
        return NIL_ARRAY
    return blocking_for(session.store).block(
        session, keys, serve, deadline, timeout_reply=NIL_ARRAY, state=anything)

``serve(blocked, keyspace, key)`` is the family's "serve one woken client" function: it
runs when ``key`` (in ``keyspace``, the client's database) may have become ready and
either pops for the client, through ``keyspace.mutate`` like any command (so the pop is
journalled), returning the client's reply, or returns ``NOT_READY`` (the key is empty,
missing or of a type this client does not wait for): the client stays blocked. It may
read ``blocked.state`` (whatever the command passed: end, count, destination...).

How clients wake (Redis's signalKeyAsReady / handleClientsBlockedOnKeys):

- While anyone is blocked, the store's effects are observed (``Store.observe``): any
  logged effect on a key someone waits for (a push, a SET of a new value, RENAME or MOVE
  onto it, a FLUSH or SWAPDB of its database) marks the key ready. Nothing is observed
  while nobody is blocked, so other stores pay nothing per write.
- After each top-level command (``Session.execute``; after EXEC as a whole, never between
  a transaction's commands) ``serve_ready`` visits the ready keys in the order they became
  ready and, for each, its blocked clients in the order they blocked (Redis's fairness),
  calling their ``serve`` while it answers; a served client is removed from every key it
  waited on. Pushes made by a served client (BLMOVE's destination) make more keys ready,
  served in the same pass.
- A timeout (``deadline`` > 0) is a ``callLater`` on the store's clock: the client gets
  ``timeout_reply``. CLIENT UNBLOCK gives the same, or (ERROR) the -UNBLOCKED error. A
  client that disconnects is just removed (``cancel``): nothing was popped for it.

A ``Blocked`` tells its listeners (``add_callback``) its reply once; ``seq`` is then the
journal sequence number of the pop made for it (0 when nothing was written), so the
serve layer sends the reply only once that write is durable. ``session.blocked`` is the
client's Blocked while it waits (CLIENT LIST flags=b; the idle ``timeout`` must skip it),
and ``Blocking.count()`` is INFO's blocked_clients.

Costs: blocking on k keys O(k); a client's wake or timeout O(k); a ready key O(its
waiters); the observer O(1) per effect (O(waiting keys) for a FLUSH).
"""

from __future__ import annotations

import math

from kvtwist.engine.hooks import INTERRUPT
from kvtwist.engine.keyspace import FLUSH
from kvtwist.wire.replies import CommandError, Error

NOT_READY = object()
UNBLOCKED = "UNBLOCKED client unblocked via CLIENT UNBLOCK"
NOT_FLOAT = "ERR timeout is not a float or out of range"
NEGATIVE = "ERR timeout is negative"


def parse_timeout(raw: bytes) -> float:
    """Return a blocking command's timeout in seconds (0.0: forever), as Redis parses it.

    Redis reads a long double and takes ``ceil(seconds * 1000)`` milliseconds.
    """
    try:
        text = raw.decode("ascii")
        if not text or text[0].isspace() or text[-1].isspace() or "_" in text:
            raise ValueError
        if text.lstrip("+-")[:2].lower() == "0x":
            seconds = float.fromhex(text)  # strtold reads hexadecimal floats too
        else:
            seconds = float(text)
    except (UnicodeDecodeError, ValueError):
        raise CommandError(NOT_FLOAT)
    if math.isnan(seconds):
        raise CommandError(NOT_FLOAT)
    if math.isinf(seconds):
        # (long long) of an infinite long double is LLONG_MIN on x86: "negative".
        raise CommandError(NEGATIVE)
    milliseconds = math.ceil(seconds * 1000.0)
    if milliseconds < 0 or milliseconds >= 2 ** 63:
        raise CommandError(NEGATIVE)
    return milliseconds / 1000.0


def can_block(session) -> bool:
    """Return whether ``session`` may block now (not inside MULTI/EXEC: Redis's DENY_BLOCKING)."""
    return not session.in_exec


class Blocked:
    """One client's wait: its keys, how to serve it, and its reply once it has one."""

    __slots__ = ("session", "db", "keys", "serve", "state", "timeout_reply", "command",
                 "call", "callbacks", "reply", "done", "seq")

    def __init__(self, session, keys, serve, state, timeout_reply) -> None:
        self.session = session
        self.db = session.db
        self.keys = keys
        self.serve = serve
        self.state = state
        self.timeout_reply = timeout_reply
        self.command = session.last_command
        self.call = None  # the timeout's delayed call
        self.callbacks = []
        self.reply = None
        self.done = False
        self.seq = 0

    def add_callback(self, callback) -> None:
        """Call ``callback(blocked)`` once the reply is known (now, if it already is)."""
        if self.done:
            callback(self)
        else:
            self.callbacks.append(callback)

    def _resolve(self, reply) -> None:
        self.done = True
        self.reply = reply
        callbacks, self.callbacks = self.callbacks, []
        for callback in callbacks:
            callback(self)


class Blocking:
    """A store's blocked clients: (db, key) -> the clients waiting on it, in arrival order."""

    def __init__(self, store) -> None:
        self.store = store
        self.waiting = {}  # (db, key) -> {Blocked: None}, insertion-ordered
        self.ready = {}  # (db, key) -> None, in the order the keys became ready
        self.clients = {}  # session id -> Blocked
        self._serving = False
        store.unblock = self.unblock  # CLIENT UNBLOCK (engine/clients.py)

    def count(self) -> int:
        """Return how many clients are blocked (INFO blocked_clients)."""
        return len(self.clients)

    def block(self, session, keys, serve, deadline: float, timeout_reply, state=None):
        """Block ``session`` on ``keys`` (a list of key names in its database): O(keys).

        Returns the Blocked, which is the command's reply (the serve layer waits on it).
        """
        blocked = Blocked(session, list(dict.fromkeys(keys)), serve, state, timeout_reply)
        if not self.waiting:
            self.store.observe(self._observe)
        db = blocked.db
        waiting = self.waiting
        for key in blocked.keys:
            queue = waiting.get((db, key))
            if queue is None:
                queue = waiting[(db, key)] = {}
            queue[blocked] = None
        self.clients[session.id] = blocked
        session.blocked = blocked
        # The protocol stops serving this connection's pipelined requests (serve/held.py).
        session.closing = session.closing or INTERRUPT
        if deadline > 0:
            call_later = getattr(self.store.clock, "callLater", None)
            if call_later is not None:
                blocked.call = call_later(deadline, self._timed_out, blocked)
        return blocked

    def _remove(self, blocked: Blocked) -> None:
        waiting = self.waiting
        db = blocked.db
        for key in blocked.keys:
            queue = waiting.get((db, key))
            if queue is not None:
                queue.pop(blocked, None)
                if not queue:
                    del waiting[(db, key)]
                    self.ready.pop((db, key), None)
        session = blocked.session
        if self.clients.get(session.id) is blocked:
            del self.clients[session.id]
        if session.blocked is blocked:
            session.blocked = None
        call = blocked.call
        if call is not None:
            blocked.call = None
            if call.active():
                call.cancel()
        if not waiting:
            self.ready.clear()
            self.store.unobserve(self._observe)

    def _finish(self, blocked: Blocked, reply) -> None:
        self._remove(blocked)
        blocked._resolve(reply)

    def _timed_out(self, blocked: Blocked) -> None:
        blocked.call = None
        if not blocked.done and self.clients.get(blocked.session.id) is blocked:
            self._finish(blocked, blocked.timeout_reply)

    def unblock(self, session, error: bool) -> bool:
        """CLIENT UNBLOCK: wake ``session`` with its timeout reply, or the UNBLOCKED error."""
        blocked = self.clients.get(session.id)
        if blocked is None:
            return False
        self._finish(blocked, Error(UNBLOCKED) if error else blocked.timeout_reply)
        return True

    def cancel(self, session) -> None:
        """Forget a client that went away while blocked (nothing was popped for it)."""
        blocked = self.clients.get(session.id)
        if blocked is not None:
            self._remove(blocked)

    # -- waking ----------------------------------------------------------------------

    def _observe(self, effect, db: int) -> None:
        waiting = self.waiting
        if effect[0] == FLUSH:
            for pair in waiting:
                if pair[0] == db:
                    self.ready[pair] = None
            return
        if len(effect) > 1:
            pair = (db, effect[1])
            if pair in waiting:
                self.ready[pair] = None

    def serve_ready(self) -> None:
        """Serve the clients blocked on keys that became ready (Redis's
        handleClientsBlockedOnKeys): keys in the order they became ready, each key's
        clients in the order they blocked. O(ready keys x their waiters) plus the pops."""
        if self._serving:
            return
        self._serving = True
        store = self.store
        current = store.current
        try:
            ready = self.ready
            while ready:
                pair = next(iter(ready))
                del ready[pair]
                queue = self.waiting.get(pair)
                if not queue:
                    continue
                db, key = pair
                keyspace = store.databases[db]
                for blocked in list(queue):
                    if blocked.done or pair not in self.waiting:
                        continue
                    if blocked not in self.waiting[pair]:
                        continue
                    self._serve_one(blocked, keyspace, key)
        finally:
            store.current = current
            self._serving = False

    def _serve_one(self, blocked: Blocked, keyspace, key) -> None:
        store = self.store
        session = blocked.session
        store.current = session
        command, session.last_command = session.last_command, blocked.command
        journal = store.journal
        before = journal.appended
        try:
            reply = blocked.serve(blocked, keyspace, key)
        except CommandError as exc:
            reply = Error(exc.message)
        finally:
            session.last_command = command
        if reply is NOT_READY:
            return
        if journal.appended != before:
            blocked.seq = journal.appended
        self._finish(blocked, reply)


def blocking_for(store) -> Blocking:
    """Return the store's Blocking, creating it on first use."""
    blocking = getattr(store, "blocking", None)
    if blocking is None:
        blocking = store.blocking = Blocking(store)
    return blocking
