"""The backend connection of kvproxy: one pipelined, reconnecting RESP link (ClientService)."""

from __future__ import annotations

import random
from collections import deque

from twisted.application import service
from twisted.application.internet import ClientService
from twisted.internet import defer
from twisted.logger import Logger
from twisted.python.failure import Failure

from kvtwist.client import RespClientFactory
from kvtwist.proxy.store import BackendUnavailable
from kvtwist.wire.replies import Error

log = Logger()

# The deepest reply kvproxy relays. Its front end renders replies recursively (two Python
# frames per array level in RESP), so a deeper one would raise RecursionError there and
# leave its client waiting; it is answered with an error instead.
MAX_REPLY_DEPTH = 128
TOO_DEEP = Error("ERR backend reply nested deeper than %d arrays" % (MAX_REPLY_DEPTH,))


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

    __slots__ = ("argv", "options", "deferred", "timer")

    def __init__(self, argv, options) -> None:
        self.argv = argv
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


class Backend(service.MultiService):
    """One persistent, pipelined, reconnecting RESP connection to the backend.

    ``state`` is ``connecting`` (an attempt is under way), ``connected`` or ``down``
    (the last attempt failed: requests fail at once until one succeeds). Requests made
    while connecting (also while a connection kvproxy dropped is closing) wait for the
    next connection, in order, at most ``timeout`` seconds.
    ``prepare(client)`` (optional) runs on each new connection before it is used.
    ``on_lost()`` (optional) is called when an established connection ends.
    With ``identify`` (instead of ``prepare``), each new connection first learns
    ``strings_only`` (see ``identify``).
    """

    def __init__(self, reactor, endpoint, address: str = "", timeout=None, clock=None,
                 prepare=None, on_lost=None, retry=None, identify=False) -> None:
        service.MultiService.__init__(self)
        self.clock = reactor if clock is None else clock
        self.address = address
        self.timeout = timeout
        self.state = "connecting"
        self.client = None
        self.strings_only = False  # what the current connection's backend said
        self._on_lost = on_lost
        if identify:
            if prepare is not None:
                raise ValueError("Backend takes prepare or identify, not both")
            prepare = self._identify
        factory = RespClientFactory(self.clock, timeout, MAX_REPLY_DEPTH, TOO_DEEP)
        self._watch_call = None
        self._waiting = deque()  # _Waiting requests, for the next connection
        self.service = ClientService(
            endpoint, factory, clock=self.clock, prepareConnection=prepare,
            retryPolicy=retry or reconnect_delay)
        self.service.setServiceParent(self)

    def _identify(self, client) -> defer.Deferred:
        self.strings_only = False
        return identify(client).addCallback(self._identified)

    def _identified(self, strings_only: bool) -> None:
        self.strings_only = strings_only

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
        self.state = "connected"
        client.when_disconnected().addCallback(self._lost, client)
        waiting, self._waiting = self._waiting, deque()
        for entry in waiting:
            if entry.timer is not None:
                entry.timer.cancel()
            client.request(entry.argv, **entry.options).addBoth(_relay, entry.deferred)

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
        log.warn("kvproxy: cannot reach {address}: {reason}", address=self.address,
                 reason=failure.getErrorMessage())
        self._fail_waiting(failure.getErrorMessage())
        # Not from inside ClientService's own callback: its state machine is not reentrant.
        self._watch_call = self.clock.callLater(0, self._watch)

    def request(self, argv: list, **options) -> defer.Deferred:
        """Send ``argv``; the Deferred delivers the reply (errors as ``Error`` values).

        ``options`` (``check``, ``checked``) go to ``RespClientProtocol.request``.
        It fails with ``BackendUnavailable`` when there is no connection, and with the
        client's ``RequestTimeout`` / ``ClientDisconnected`` when no reply comes.
        """
        client = self.client
        if client is not None and client.is_connected:
            return client.request(argv, **options)
        if self.state == "down" or not self.running:
            return defer.fail(BackendUnavailable("cannot connect to %s" % (self.address,)))
        entry = _Waiting(argv, options)
        entry.deferred = defer.Deferred(lambda d: self._forget(entry))
        if self.timeout:
            entry.timer = self.clock.callLater(self.timeout, self._wait_expired, entry)
        self._waiting.append(entry)
        return entry.deferred

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
