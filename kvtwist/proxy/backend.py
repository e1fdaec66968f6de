"""The backend connection of kvproxy: one pipelined, reconnecting RESP link (ClientService)."""

from __future__ import annotations

from twisted.application import service
from twisted.application.internet import ClientService, backoffPolicy
from twisted.internet import defer
from twisted.logger import Logger

from kvtwist.client import RespClientFactory
from kvtwist.proxy.store import BackendUnavailable

log = Logger()


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
    (the last attempt failed: requests fail at once until one succeeds).
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
        factory = RespClientFactory(self.clock, timeout)
        self._watch_call = None
        self.service = ClientService(
            endpoint, factory, clock=self.clock, prepareConnection=prepare,
            retryPolicy=retry or backoffPolicy(initialDelay=0.1, maxDelay=2.0))
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
        d = self.service.whenConnected(failAfterFailures=1)
        if self.timeout:
            d.addTimeout(self.timeout, self.clock)
        return d.addCallbacks(lambda connected: connected.request(argv, **options),
                              self._unavailable)

    def _unavailable(self, failure):
        raise BackendUnavailable("cannot connect to %s: %s"
                                 % (self.address, failure.getErrorMessage()))
