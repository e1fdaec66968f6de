"""kvproxy's backend connection: the RESP client link with a forwarding fast path.

A request kvproxy forwards for a client (a miss's GET, a write) is sent with
``BackendLink.send_slot``: it waits in the link's queue as a ``Slot``, which calls its
``done(reply, *args)`` when the reply comes, with no Deferred and no callback chain (a
Deferred, its canceller and two callbacks cost more than the rest of a forwarded
request). Every other request (``request``: the link's own, a tunnel's, a checked one)
goes the ordinary way, in the same queue: replies are matched to requests in order
whatever their kind. A slot's failure (the connection lost, a request ahead of it timed
out) reaches ``done`` as a Failure, as a Deferred's errback would.
"""

from __future__ import annotations

from twisted.logger import Logger
from twisted.python.failure import Failure

from kvtwist.client import KVClient, RespClientFactory
from kvtwist.loop.turns import at_turn_end
from kvtwist.wire.respreply import LARGE_ARG, encode_request

log = Logger()


def encode(argv: list):
    """``argv`` as a RESP request: one formatting for the usual two or three bytes
    arguments (GET key, SET key value), else ``encode_request`` (pieces when an argument
    is large); O(len(argv))."""
    count = len(argv)
    if count == 2:
        name, key = argv
        if name.__class__ is bytes and key.__class__ is bytes:
            return b"*2\r\n$%d\r\n%s\r\n$%d\r\n%s\r\n" % (len(name), name, len(key), key)
    elif count == 3:
        name, key, value = argv
        if (name.__class__ is bytes and key.__class__ is bytes and value.__class__ is bytes
                and len(value) <= LARGE_ARG):
            return b"*3\r\n$%d\r\n%s\r\n$%d\r\n%s\r\n$%d\r\n%s\r\n" % (
                len(name), name, len(key), key, len(value), value)
    return encode_request(argv)


class Slot:
    """One forwarded request waiting for its reply on a ``BackendLink`` (it stands in the
    link's queue where the client protocol keeps its requests, so it has their
    attributes: ``deadline``, ``timeout``, ``abandoned``, ``check``, ``command``).

    ``done(result, *args)`` is called once: with the reply (error replies as ``Error``
    values), or with a Failure. ``shard`` (a ``shards.Shard``, or None) counts the
    outcome as its ``answered`` does.
    """

    __slots__ = ("deadline", "timeout", "abandoned", "check", "command", "done", "args",
                 "shard")

    raw = True  # error replies are values
    expect = 1  # one reply
    collected = None  # not a (P)SUBSCRIBE

    def __init__(self, command: bytes, check, done, args, shard=None) -> None:
        self.deadline = None
        self.timeout = None
        self.abandoned = False
        self.command = command
        self.check = check
        self.done = done
        self.args = args
        self.shard = shard

    @property
    def deferred(self):
        """What the client protocol's failure paths call ``errback`` on: the slot."""
        return self

    def callback(self, reply) -> None:
        """The reply came (O(1) plus ``done``)."""
        shard = self.shard
        if shard is not None:
            shard.in_flight -= 1
            shard.failures = 0
        try:
            self.done(reply, *self.args)
        except Exception:
            log.failure("kvproxy: handling a backend reply failed")

    def errback(self, reason) -> None:
        """No reply will come: ``reason`` (an exception or a Failure) says why."""
        if reason.__class__ is not Failure:
            reason = Failure(reason)
        if self.shard is not None:
            self.shard.answered(reason)
        try:
            self.done(reason, *self.args)
        except Exception:
            log.failure("kvproxy: handling a failed backend request failed")


class BackendLink(KVClient):
    """A client connection to a backend with ``send_slot`` (see the module docstring).

    What ``send_slot`` queues is written at the end of the reactor turn (after the
    misses batched for that turn were queued), with no DelayedCall.
    """

    def __init__(self, *args, **kwargs) -> None:
        KVClient.__init__(self, *args, **kwargs)
        self._at_turn_end = at_turn_end(self._clock)
        self._flush_due = False

    def send_slot(self, argv: list, slot: Slot) -> None:
        """Send ``argv``; ``slot`` is called with its reply. The caller knows the link is
        connected (``is_connected``). O(len(argv))."""
        self._pending.append(slot)
        self.queue_request(encode(argv))
        if not self._flush_due:
            self._flush_due = True
            self._at_turn_end(self._turn_ended)
        if self.timeout is not None:
            self._deadlines.arm(slot, self.timeout)

    def _turn_ended(self) -> None:
        self._flush_due = False
        self.flush_writes()

    def _deliver(self, reply) -> None:
        pending = self._pending
        if pending:
            entry = pending[0]
            if entry.__class__ is Slot and not self._channels and not self._patterns:
                pending.popleft()
                if entry.deadline is not None:
                    self._deadlines.settle(entry)
                check = entry.check
                if check is not None and not check(reply):
                    self._out_of_step(entry)
                    return
                entry.abandoned = True
                entry.callback(reply)
                return
        KVClient._deliver(self, reply)


class LinkFactory(RespClientFactory):
    """Builds ``BackendLink`` connections."""

    protocol = BackendLink


def fetcher(backend):
    """``backend.fetch`` (see ``backend.Backend.fetch``), or for a backend without one
    (a cluster's, a test's) the same through its ``request``."""
    fetch = getattr(backend, "fetch", None)
    if fetch is not None:
        return fetch

    def fetch(argv, db, check, done, *args):
        backend.request(argv, db=db, check=check).addBoth(done, *args)
    return fetch
