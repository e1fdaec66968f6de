"""The backend connection of kvproxy: one pipelined, reconnecting RESP link (ClientService)."""

from __future__ import annotations

import random
from collections import deque

from twisted.application import service
from twisted.application.internet import ClientService
from twisted.internet import defer
from twisted.logger import Logger
from twisted.python.failure import Failure

from kvtwist.proxy.link import LinkFactory, Slot
from kvtwist.proxy.store import BackendUnavailable
from kvtwist.wire.replies import Error

log = Logger()

# The deepest reply kvproxy relays. Its front end renders replies recursively (two Python
# frames per array level in RESP), so a deeper one would raise RecursionError there and
# leave its client waiting; it is answered with an error instead.
MAX_REPLY_DEPTH = 128
TOO_DEEP = Error("ERR backend reply nested deeper than %d arrays" % (MAX_REPLY_DEPTH,))
OUT_OF_RANGE = Error("ERR DB index is out of range")


def _selected(reply) -> bool:
    """Whether ``reply`` is SELECT's OK: any other closes the connection (O(1))."""
    return getattr(reply, "text", None) == b"OK"


def _discard(result) -> None:
    """Drop the outcome of a SELECT kvproxy sent for itself (a failure fails the request
    behind it too, which reports it)."""
    return None


class Selection:
    """The database one backend connection runs its next request in, as the requests sent
    on it so far leave it; ``send`` puts a ``SELECT n`` before a request for database n
    when the connection is in another.

    A connection starts in database 0. A request sent with no database (a client's own
    SELECT, say) runs wherever the connection is; after a SELECT sent so, the database is
    unknown until the next request with one SELECTs it. The SELECT and its request go out
    one after the other on the one connection, which runs them in that order, so the
    request runs in its database whatever other clients send around it. ``databases`` (the
    backend's count, or None if unknown) refuses a database the backend lacks without
    sending anything; a SELECT the backend refuses all the same (it lost the database)
    fails its check, which closes the connection: the requests behind it fail rather than
    being answered from another database.
    """

    __slots__ = ("db", "databases")

    def __init__(self, databases=None) -> None:
        self.db = 0
        self.databases = databases

    def send(self, request, argv: list, db, options: dict) -> defer.Deferred:
        """Send ``argv`` to run in database ``db`` (None: wherever the connection is) with
        ``request(argv, **options)``; O(1)."""
        if db is None:
            if argv and argv[0].upper() == b"SELECT":
                self.db = None
            return request(argv, **options)
        if db != self.db:
            databases = self.databases
            if databases is not None and db >= databases:
                return defer.succeed(OUT_OF_RANGE)
            request([b"SELECT", b"%d" % (db,)], check=_selected).addBoth(_discard)
            self.db = db
        return request(argv, **options)


class LoginRefused(Exception):
    """The backend refused the AUTH kvproxy sent on a new connection."""


def _unreported(reason) -> None:
    """Stands in for ClientService's notification of a rejected connection's loss."""


def _reject(failure, client):
    """Close a connection whose preparation failed, and pass the failure on.

    ClientService leaves such a connection open, and has no transition for its loss once
    it has moved on (Twisted 26.10 raises NoTransition from connectionLost), so the loss
    is not reported to it: its wrapper's notification is replaced first.
    """
    if hasattr(client, "_lostNotification"):
        client._lostNotification = _unreported
    client.close()
    return failure


def reconnect_delay(attempt: int) -> float:
    """Seconds before connection attempt ``attempt`` (1: the first since a connection was
    lost or made): 10-50 ms for the first, so a link kvproxy dropped is replaced at once;
    then 0.15 s growing 1.5 times per attempt up to 2 s, each plus up to half again."""
    if attempt <= 1:
        return 0.01 + random.random() * 0.04
    delay = min(0.1 * 1.5 ** min(attempt, 100), 2.0)
    return delay + random.random() * delay * 0.5


def _relay(result, d: defer.Deferred) -> None:
    """Pass a request's outcome on to the Deferred its caller holds (unless cancelled)."""
    if not d.called:
        if isinstance(result, Failure):
            d.errback(result)
        else:
            d.callback(result)


class _Waiting:
    """A request made while there was no connection to send it on."""

    __slots__ = ("argv", "db", "options", "deferred", "timer")

    def __init__(self, argv, db, options) -> None:
        self.argv = argv
        self.db = db
        self.options = options
        self.deferred = None
        self.timer = None


def identify(client) -> defer.Deferred:
    """Ask a backend connection's ``INFO server``; the Deferred delivers (never fails) whether
    the backend holds strings only.

    A kvstore says so (``kvtwist_value_types:string``): there an MGET nil means the key is
    absent, so kvproxy caches it without re-reading it with GET, which it must do on Redis
    (where MGET also answers nil for a key of another type).
    """
    return client.request([b"INFO", b"server"]).addCallbacks(
        lambda reply: (reply.__class__ is bytes
                       and b"\nkvtwist_value_types:string\r" in reply),
        lambda failure: False)


def _count(reply):
    if reply.__class__ is list and len(reply) == 2 and reply[1].__class__ is bytes:
        try:
            return int(reply[1])
        except ValueError:
            return None
    return None


def databases(client) -> defer.Deferred:
    """Ask a backend connection's ``CONFIG GET databases``; the Deferred delivers (never
    fails) its database count, or None when it does not say."""
    return client.request([b"CONFIG", b"GET", b"databases"]).addCallbacks(
        _count, lambda failure: None)


class Backend(service.MultiService):
    """One persistent, pipelined, reconnecting RESP connection to the backend.

    ``state`` is ``connecting`` (an attempt is under way), ``connected`` or ``down``
    (the last attempt failed: requests fail at once until one succeeds). Requests made
    while connecting (also while a connection kvproxy dropped is closing) wait for the
    next connection, in order, at most ``timeout`` seconds.
    ``prepare(client)`` (optional) runs on each new connection before it is used.
    ``on_lost()`` (optional) is called when an established connection ends.
    With ``identify`` (instead of ``prepare``), each new connection first learns
    ``strings_only`` (see ``identify``) and ``databases`` (see ``databases``).
    ``login`` (an AUTH argv, see ``auth.login_command``; None: none) is sent first on each
    new connection, before ``prepare``: a refusal (``LoginRefused``), like any failure of
    ``prepare``, closes that connection and counts as a failed attempt (the link is
    ``down``, requests fail at once saying why, and attempts back off).

    Each request names the database it runs in (``db``; None: wherever the connection
    is): the connection's ``Selection`` SELECTs it first when needed.
    """

    factory_class = LinkFactory
    shard = None  # the shards.Shard counting its requests (a ShardBackend's)

    def __init__(self, reactor, endpoint, address: str = "", timeout=None, clock=None,
                 prepare=None, on_lost=None, retry=None, identify=False,
                 login=None) -> None:
        service.MultiService.__init__(self)
        self.clock = reactor if clock is None else clock
        self.endpoint = endpoint  # also for connections of a client's own (WATCH)
        self.address = address
        self.timeout = timeout
        self.state = "connecting"
        self.client = None
        self.strings_only = False  # what the current connection's backend said
        self.databases = None  # the backend's database count, if it said
        self._selection = None  # the current connection's Selection
        self.why_down = ""  # why the last attempt failed, while down
        self.login = login
        self._on_lost = on_lost
        if identify:
            if prepare is not None:
                raise ValueError("Backend takes prepare or identify, not both")
            prepare = self._identify
        self._prepare = prepare
        self.factory = factory = self.factory_class(self.clock, timeout, MAX_REPLY_DEPTH,
                                                    TOO_DEEP)
        self._watch_call = None
        self._waiting = deque()  # _Waiting requests, for the next connection
        self.service = ClientService(
            endpoint, factory, clock=self.clock,
            prepareConnection=None if prepare is None and login is None else self._ready,
            retryPolicy=retry or reconnect_delay)
        self.service.setServiceParent(self)

    def _ready(self, client) -> defer.Deferred:
        """ClientService's prepareConnection: log in, then ``prepare``; O(1)."""
        if self.login is None:
            d = defer.maybeDeferred(self._prepare, client)
        else:
            d = client.request(self.login)
            d.addCallback(self._logged_in, client)
        return d.addErrback(_reject, client)

    def _logged_in(self, reply, client):
        if reply.__class__ is Error:
            raise LoginRefused("the backend refused kvproxy's login: %s" % (reply.message,))
        if self._prepare is not None:
            return self._prepare(client)
        return None

    def _identify(self, client) -> defer.Deferred:
        self.strings_only = False
        self.databases = None
        asked = databases(client)
        return identify(client).addCallback(self._identified, asked)

    def _identified(self, strings_only: bool, asked) -> defer.Deferred:
        self.strings_only = strings_only
        return asked.addCallback(self._counted)

    def _counted(self, count) -> None:
        self.databases = count

    def startService(self) -> None:
        service.MultiService.startService(self)
        self._watch()

    def stopService(self):
        """Disconnect; the Deferred fires once the connection is closed."""
        if self._watch_call is not None and self._watch_call.active():
            self._watch_call.cancel()
        self._watch_call = None
        self._fail_waiting("kvproxy is stopping")
        return service.MultiService.stopService(self)

    def _watch(self) -> None:
        self._watch_call = None
        if not self.running:
            return
        self.service.whenConnected(failAfterFailures=1).addCallbacks(
            self._up, self._attempt_failed)

    def _up(self, client) -> None:
        self.client = client
        self._selection = selection = Selection(self.databases)
        self.state = "connected"
        self.why_down = ""
        client.when_disconnected().addCallback(self._lost, client)
        waiting, self._waiting = self._waiting, deque()
        for entry in waiting:
            if entry.timer is not None:
                entry.timer.cancel()
            selection.send(client.request, entry.argv, entry.db, entry.options).addBoth(
                _relay, entry.deferred)

    def _lost(self, reason, client) -> None:
        if self.client is client:
            self.client = None
            self.strings_only = False
        self.state = "connecting"
        if self._on_lost is not None:
            self._on_lost()
        # ClientService learns of the loss just after its protocol does.
        self._watch_call = self.clock.callLater(0, self._watch)

    def _attempt_failed(self, failure) -> None:
        if not self.running:
            return
        self.state = "down"
        self.why_down = failure.getErrorMessage()
        if failure.check(LoginRefused) is not None:
            log.error("kvproxy: {address}: {reason} (check --backend-password and "
                      "--backend-user)", address=self.address, reason=self.why_down)
        else:
            log.warn("kvproxy: cannot reach {address}: {reason}", address=self.address,
                     reason=self.why_down)
        self._fail_waiting(failure.getErrorMessage())
        # Not from inside ClientService's own callback: its state machine is not reentrant.
        self._watch_call = self.clock.callLater(0, self._watch)

    @property
    def idle(self) -> bool:
        """Whether no request awaits its reply (nor a connection to be sent on)."""
        client = self.client
        return not self._waiting and (client is None or not getattr(client, "_pending", ()))

    def request(self, argv: list, db=None, **options) -> defer.Deferred:
        """Send ``argv`` to run in database ``db`` (None: wherever the connection is); the
        Deferred delivers the reply (errors as ``Error`` values).

        ``options`` (``check``, ``checked``) go to ``RespClientProtocol.request``.
        It fails with ``BackendUnavailable`` when there is no connection, and with the
        client's ``RequestTimeout`` / ``ClientDisconnected`` when no reply comes.
        """
        client = self.client
        if client is not None and client.is_connected:
            selection = self._selection
            if db is not None and db == selection.db:
                return client.request(argv, **options)  # the usual case: no SELECT
            return selection.send(client.request, argv, db, options)
        if self.state == "down" or not self.running:
            why = ": " + self.why_down if self.why_down and self.running else ""
            return defer.fail(BackendUnavailable("cannot connect to %s%s"
                                                 % (self.address, why)))
        entry = _Waiting(argv, db, options)
        entry.deferred = defer.Deferred(lambda d: self._forget(entry))
        if self.timeout:
            entry.timer = self.clock.callLater(self.timeout, self._wait_expired, entry)
        self._waiting.append(entry)
        return entry.deferred

    def fetch(self, argv: list, db, check, done, *args) -> None:
        """Send ``argv`` to run in database ``db``, as ``request`` does (``check``: its
        reply check, or None), and call ``done(result, *args)`` with its outcome: the
        reply (errors as ``Error`` values) or a Failure.

        The usual case (connected, in ``db`` already) costs no Deferred: the request
        waits on the link as a ``link.Slot``; any other goes through ``request``. O(1).
        """
        client = self.client
        if (client is not None and db == self._selection.db
                and client.transport is not None and client._closed_reason is None):
            send = getattr(client, "send_slot", None)
            if send is not None:
                shard = self.shard
                if shard is not None:
                    shard.requests += 1
                    shard.in_flight += 1
                send(argv, Slot(argv[0], check, done, args, shard))
                return
        self.request(argv, db=db, check=check).addBoth(done, *args)

    def _forget(self, entry: _Waiting) -> None:
        # Cancelled by its caller before a connection came: it is never sent.
        if entry in self._waiting:
            self._waiting.remove(entry)
        if entry.timer is not None and entry.timer.active():
            entry.timer.cancel()

    def _wait_expired(self, entry: _Waiting) -> None:
        entry.timer = None
        self._waiting.remove(entry)
        entry.deferred.errback(BackendUnavailable(
            "no connection to %s within %g seconds" % (self.address, self.timeout)))

    def _fail_waiting(self, why: str) -> None:
        waiting, self._waiting = self._waiting, deque()
        for entry in waiting:
            if entry.timer is not None and entry.timer.active():
                entry.timer.cancel()
            entry.deferred.errback(
                BackendUnavailable("cannot connect to %s: %s" % (self.address, why)))
