"""Calling a function at the end of the reactor's current turn, cheaply where the reactor can."""

from __future__ import annotations

from functools import partial


def at_turn_end(reactor):
    """Return ``call(f)``: run ``f()`` once the events being handled now are all handled.

    ``KVEPollReactor.callAtTurnEnd`` does it without a DelayedCall (a heap entry and a
    pass through ``runUntilCurrent``, which at a few requests per turn cost about as much
    as a request); any other reactor (or ``task.Clock``) gets ``callLater(0, f)``, which
    runs at the same point of its loop.
    """
    call = getattr(reactor, "callAtTurnEnd", None)
    if call is not None:
        return call
    return partial(reactor.callLater, 0)
