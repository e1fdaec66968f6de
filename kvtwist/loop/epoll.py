"""An epoll reactor: plain reads skip the per-event log context; end-of-turn calls skip the heap."""

from __future__ import annotations

import errno
import sys

from twisted.internet import epollreactor, main, posixbase
from twisted.logger import Logger
from twisted.python import log

_log = Logger(namespace="kvtwist.loop.epoll")

NAME = "kvepoll"  # the name twistd's --reactor knows it by (twisted/plugins/kvtwist_reactors.py)


class KVEPollReactor(epollreactor.EPollReactor):
    """``EPollReactor``, except that a plain read event skips ``log.callWithLogger``.

    Twisted wraps every event in ``callWithLogger``: a ``logPrefix()`` call and a copied
    context dict, so that legacy ``twisted.python.log`` messages emitted while handling
    it carry the connection's prefix as their system. On a server answering one small
    request per read that wrapper costs about a fifth of the reactor thread's time
    (benchmarks/README.md). Here a read-only event of a live descriptor calls
    ``doRead`` directly; an exception from it is still logged with the prefix, and every
    other event (writes, hang-ups, errors) takes ``EPollReactor``'s path unchanged. The
    one difference left: legacy log messages emitted during a successful read show the
    system ``-``. kvtwist's own logging (``twisted.logger``) never used that context.

    It adds ``callAtTurnEnd`` (see kvtwist.loop.turns), what the journal's group commit and
    the reply outbox ask for once per turn instead of ``callLater(0)``.
    """

    def __init__(self) -> None:
        self._turn_end = None  # a list while a poll's events are dispatched
        epollreactor.EPollReactor.__init__(self)

    def callAtTurnEnd(self, f) -> None:
        """Call ``f()`` once every event of this poll was dispatched, before the next poll.

        Outside a poll's dispatch (in a timed or thread call) it is ``callLater(0, f)``.
        An exception from ``f`` is logged, as ``callLater`` logs one.
        """
        if self._turn_end is None:
            self.callLater(0, f)
        else:
            self._turn_end.append(f)

    def doPoll(self, timeout):
        """Poll once (``timeout`` seconds, None for no limit) and dispatch the events."""
        if timeout is None:
            timeout = -1
        try:
            events = self._poller.poll(timeout, len(self._selectables))
        except OSError as err:
            if err.errno == errno.EINTR:
                return
            raise
        selectables = self._selectables
        self._turn_end = due = []
        try:
            for fd, event in events:
                selectable = selectables.get(fd)
                if selectable is None:
                    continue
                if event == _IN:
                    self._read(selectable)
                else:
                    log.callWithLogger(selectable, self._doReadOrWrite, selectable, fd, event)
            while due:  # a call may ask for another
                f = due.pop(0)
                try:
                    f()
                except BaseException:
                    _log.failure("While calling {f!r} at the end of a reactor turn", f=f)
        finally:
            self._turn_end = None

    doIteration = doPoll

    def _read(self, selectable) -> None:
        # EPollReactor._doReadOrWrite's read branch, for an event that is EPOLLIN alone.
        try:
            if selectable.fileno() == -1:
                why = posixbase._NO_FILEDESC
            else:
                why = selectable.doRead()
        except BaseException:
            why = sys.exc_info()[1]
            log.callWithLogger(selectable, log.err)  # labelled as EPollReactor labels it
        if why:
            self._disconnectSelectable(selectable, why, True)


_IN = KVEPollReactor._POLL_IN


def install() -> KVEPollReactor:
    """Install a ``KVEPollReactor`` as the global reactor and return it."""
    reactor = KVEPollReactor()
    main.installReactor(reactor)
    return reactor


def install_default() -> bool:
    """Install ``KVEPollReactor`` unless a reactor is already installed (``twistd --reactor``
    or an earlier import of ``twisted.internet.reactor``); return whether it did."""
    if "twisted.internet.reactor" in sys.modules:
        return False
    install()
    return True
