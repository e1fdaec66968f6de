"""Per-request reply deadlines for a pipelined connection, watched by one timer."""

from __future__ import annotations


class Deadlines:
    """The deadlines of a connection's pending requests, served by one timer.

    The timer is armed for the earliest deadline: a DelayedCall per request (heap push,
    cancel, heap rebuild) cost more than the request itself on a busy pipelined link.

    @param clock: provides C{seconds} and C{callLater} (a reactor or C{task.Clock}).
    @param pending: returns the requests still waiting; each has a C{deadline} (clock
        seconds, None when it has none or was settled) and a C{timeout} attribute.
    @param expired: called with the earliest overdue request; settling it (and whatever
        else should go) is the caller's job.
    """

    def __init__(self, clock, pending, expired) -> None:
        self._clock = clock
        self._pending = pending
        self._expired = expired
        self._timer = None
        self.count = 0  # pending requests with a deadline

    def arm(self, entry, timeout: float) -> None:
        """Give ``entry`` a deadline ``timeout`` seconds from now."""
        entry.timeout = timeout
        entry.deadline = self._clock.seconds() + timeout
        self.count += 1
        timer = self._timer
        if timer is None:
            self._timer = self._clock.callLater(timeout, self._fire)
        elif entry.deadline < timer.getTime():
            timer.reset(timeout)

    def settle(self, entry) -> None:
        """Drop ``entry``'s deadline (it must have one); the last one stops the timer."""
        entry.deadline = None
        self.count -= 1
        if self.count == 0 and self._timer is not None:
            if self._timer.active():
                self._timer.cancel()
            self._timer = None

    def _fire(self) -> None:
        # Runs about once per timeout period under load: the request it was armed for
        # has usually been answered, so find the earliest deadline still pending.
        self._timer = None
        earliest = None
        for entry in self._pending():
            deadline = entry.deadline
            if deadline is not None and (earliest is None or deadline < earliest.deadline):
                earliest = entry
        if earliest is None:
            return
        delay = earliest.deadline - self._clock.seconds()
        if delay <= 1e-9:  # float rounding must not re-arm a zero-delay loop
            self._expired(earliest)
        else:
            self._timer = self._clock.callLater(delay, self._fire)
