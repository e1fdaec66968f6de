"""kvproxy's front end: the kvstore protocol, with forwarded replies handed to their slot.

A reply kvproxy forwards (a miss's value, a write's OK) is a ``Reply``: a Deferred the
front end does not add a callback to. ``ProxyProtocol`` gives it the place its rendered
bytes go in the client's replies (the read's chunk and index), and ``answer`` fills that
place directly: no callback chain runs per forwarded request. A Reply someone else has
added callbacks to (a stale read's fallback, a lane's hold), or one served by a plain
``KVProtocol``, is an ordinary Deferred: ``answer`` then fires it.
"""

from __future__ import annotations

from twisted.internet.defer import Deferred

from kvtwist.serve.factory import KVFactory
from kvtwist.serve.protocol import KVProtocol


def _chaining(add):
    """Return Deferred's ``add`` method as one that first marks its Reply ``chained``."""

    def chaining(self, *args, **kwargs):
        self.chained = True
        return add(self, *args, **kwargs)

    chaining.__name__ = add.__name__
    chaining.__doc__ = add.__doc__
    return chaining


class Reply(Deferred):
    """A forwarded request's reply to come; ``answer(result)`` delivers it (O(1)).

    Adding a callback (any of Deferred's four ways) marks it ``chained``: a front end then
    treats it as an ordinary Deferred. Callbacks added after a front end took its place
    run after the place is filled, with the same result, as they would have run after the
    front end's own callback.
    """

    sink = None  # (fill, chunk, index, render) once a ProxyProtocol holds its place
    chained = False  # a callback was added

    # Each of Deferred's four ways to add a callback, marking the Reply chained first
    # (Twisted's add* methods do not call one another).
    addCallbacks = _chaining(Deferred.addCallbacks)
    addCallback = _chaining(Deferred.addCallback)
    addErrback = _chaining(Deferred.addErrback)
    addBoth = _chaining(Deferred.addBoth)

    def answer(self, result) -> None:
        """Deliver ``result`` (a reply value) to the client's place, or fire the Deferred."""
        sink = self.sink
        if sink is None:
            self.callback(result)
            return
        self.sink = None
        fill, chunk, index, render = sink
        fill(result, chunk, index, render)
        if self.chained:
            self.callback(result)
        else:
            self.called = True
            self.result = result


def answer(waiter, result) -> None:
    """Deliver ``result`` to ``waiter``: a Reply's ``answer``, or a Deferred's callback."""
    if waiter.__class__ is Reply:
        waiter.answer(result)
    else:
        waiter.callback(result)


class ProxyProtocol(KVProtocol):
    """The kvstore protocol whose forwarded replies (``Reply``) fill their place directly,
    and whose session knows its output gate (a tunnel reads its backend at the pace the
    client takes what it relays: proxy.tunnel)."""

    def connectionMade(self) -> None:
        KVProtocol.connectionMade(self)
        if self.session is not None and self._outgate is not None:
            self.session.output_gate = self._outgate

    def _add_deferred(self, d: Deferred, render) -> None:
        if d.__class__ is Reply and not d.called and not d.chained:
            chunk = self._chunk
            parts = chunk.parts
            parts.append(None)
            chunk.pending += 1
            d.sink = (self._fill, chunk, len(parts) - 1, render)
            return
        KVProtocol._add_deferred(self, d, render)


class ProxyFactory(KVFactory):
    """KVFactory building ProxyProtocols."""

    protocol = ProxyProtocol
