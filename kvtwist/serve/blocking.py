"""Blocked clients in the serve layer: a blocking command's reply as a Deferred, held until
the pop made for the client is durable, and the client's later requests held meanwhile.

The engine (kvtwist/engine/blocking.py) answers a blocking command that must wait with a
``Blocked``; the protocol hands it to ``deferred_reply``, which returns the Deferred it
waits on as on any other deferred reply (serve/protocol.py keeps replies in order). When
the engine serves the client (a push woke it, its timeout ran out, CLIENT UNBLOCK), the
reply is sent only once the journal has acknowledged every write appended until then
(the pop made for it, ``Blocked.seq``, and the writes before it, the push that woke it
among them: serve/keygate.py's rule for replies that may reveal any write; a timeout's
nil too, as it may show a list another client's pending pop emptied); if the disk
refused one of them, it was rolled back (a pop's element is in the list again) and the
client gets the "persistence failed" error instead. Requests the client sent after the
blocking command wait in the connection's held queue (serve/held.py) while
``session.blocked`` is set, and are served once it is not, in the next reactor turn, as
Redis serves an unblocked client's pending input.
"""

from __future__ import annotations

from twisted.internet.defer import Deferred

from kvtwist.engine.blocking import Blocked
from kvtwist.wire.replies import Error

__all__ = ["Blocked", "deferred_reply"]


def deferred_reply(protocol, blocked: Blocked) -> Deferred:
    """Return the Deferred reply of ``blocked`` for ``protocol``'s connection."""
    d = Deferred()
    journal = protocol._journal

    def answer(reply, pushes: list) -> None:
        d.callback(reply)
        for push in pushes:  # what serving it caused for this client follows its reply
            protocol.push(push)

    def acked(failure_for, waiting: tuple) -> None:
        blocked, pushes, seq = waiting
        reason = failure_for(seq)
        if reason is None:
            answer(blocked.reply, pushes)
        else:
            answer(Error("ERR persistence failed: %s" % (reason,)), pushes)

    def resolved(blocked: Blocked) -> None:
        # The requests held behind the blocking one run in the next turn; the store's clock
        # is the reactor (a Clock in tests).
        protocol._store.clock.callLater(0, protocol.resume)
        session = protocol.session
        pushes, session.after_reply = session.after_reply, []
        seq = max(blocked.seq, journal.appended)
        if seq > journal.acked:
            journal.on_acked(seq, acked, (blocked, pushes, seq))
        else:
            answer(blocked.reply, pushes)

    blocked.add_callback(resolved)
    return d
