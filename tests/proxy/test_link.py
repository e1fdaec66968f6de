"""Tests for kvtwist.proxy.link: forwarded requests as slots on the backend link."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase

from kvtwist.client import ClientDisconnected, RequestTimeout, UnexpectedReply
from kvtwist.proxy.link import BackendLink, Slot, encode, fetcher
from kvtwist.wire.replies import Error
from kvtwist.wire.respreply import LARGE_ARG, encode_command
from tests.proxy.test_backend import BackendCase


class Outcomes:
    """Records what ``done`` callbacks receive."""

    def __init__(self) -> None:
        self.seen = []

    def done(self, result, *args) -> None:
        self.seen.append((result, args))


class FetchTests(BackendCase):
    """Backend.fetch sends on the link as a Slot and calls done with the outcome."""

    def test_repliesInOrderWithOrdinaryRequests(self) -> None:
        """Slots and ordinary requests share the link's queue: each gets its own reply."""
        self.assertIsInstance(self.backend.client, BackendLink)
        outcomes = Outcomes()
        self.backend.fetch([b"GET", b"a"], 0, None, outcomes.done, 1, 2)
        d = self.backend.request([b"GET", b"b"], db=0)
        self.backend.fetch([b"SET", b"c", b"v"], 0, None, outcomes.done, 3)
        self.assertIsInstance(self.backend.client._pending[0], Slot)
        self.reply(b"$1\r\nA\r\n$1\r\nB\r\n-ERR no\r\n")
        self.assertEqual(self.successResultOf(d), b"B")
        self.assertEqual(outcomes.seen, [(b"A", (1, 2)), (Error("ERR no"), (3,))])
        self.assertIn(b"*3\r\n$3\r\nSET\r\n$1\r\nc\r\n$1\r\nv\r\n",
                      self.endpoint.connections[-1][1].value())

    def test_lostConnectionFailsTheSlot(self) -> None:
        """A slot whose connection closes before its reply gets a Failure."""
        outcomes = Outcomes()
        self.backend.fetch([b"GET", b"a"], 0, None, outcomes.done)
        self.clock.advance(0)
        self.endpoint.close(0)
        [(result, args)] = outcomes.seen
        self.assertIsInstance(result, Failure)
        self.assertIsNotNone(result.check(ClientDisconnected))

    def test_timeout(self) -> None:
        """A slot with no reply within the link's timeout fails with RequestTimeout."""
        outcomes = Outcomes()
        self.backend.fetch([b"GET", b"a"], 0, None, outcomes.done)
        self.clock.advance(self.timeout + 0.1)
        [(result, args)] = outcomes.seen
        self.assertIsNotNone(result.check(RequestTimeout))

    def test_refusedReplyClosesTheLink(self) -> None:
        """A reply the slot's check refuses fails it (UnexpectedReply) and drops the link."""
        outcomes = Outcomes()
        self.backend.fetch([b"GET", b"a"], 0, lambda reply: reply.__class__ is bytes,
                           outcomes.done)
        self.reply(b":1\r\n")
        [(result, args)] = outcomes.seen
        self.assertIsNotNone(result.check(UnexpectedReply))
        self.assertTrue(self.endpoint.connections[0][1].aborted)

    def test_otherDatabaseGoesThroughRequest(self) -> None:
        """A fetch for another database than the link's is sent behind its SELECT."""
        outcomes = Outcomes()
        self.backend.fetch([b"GET", b"a"], 3, None, outcomes.done)
        self.reply(b"+OK\r\n$1\r\nA\r\n")
        self.assertEqual(outcomes.seen, [(b"A", ())])
        self.assertTrue(self.endpoint.connections[0][1].value().startswith(
            b"*2\r\n$6\r\nSELECT\r\n$1\r\n3\r\n"))

    def test_shardCounts(self) -> None:
        """A slot's outcome is counted by its shard: in flight until answered, a reply
        resets its failures."""
        class Shard:
            requests = in_flight = failures = 0
        shard = Shard()
        shard.failures = 1
        self.backend.shard = shard
        outcomes = Outcomes()
        self.backend.fetch([b"GET", b"a"], 0, None, outcomes.done)
        self.assertEqual((shard.requests, shard.in_flight), (1, 1))
        self.reply(b"$-1\r\n")
        self.assertEqual((shard.in_flight, shard.failures, outcomes.seen), (0, 0, [(None, ())]))


class FetcherTests(SynchronousTestCase):
    """fetcher falls back to request() for a backend without fetch."""

    def test_fallback(self) -> None:
        """A backend with only request() gets the argv, database and check; done gets
        the reply."""
        from twisted.internet import defer

        class Plain:
            fetch = None

            def request(self, argv, db=None, **options):
                self.sent = (argv, db, options)
                return defer.succeed(b"v")
        plain = Plain()
        outcomes = Outcomes()
        fetcher(plain)([b"GET", b"k"], 2, None, outcomes.done, 7)
        self.assertEqual((plain.sent, outcomes.seen),
                         (([b"GET", b"k"], 2, {"check": None}), [(b"v", (7,))]))


class EncodeTests(SynchronousTestCase):
    """encode writes what encode_command writes."""

    @given(st.lists(st.binary(max_size=20), min_size=1, max_size=4))
    def test_sameBytes(self, argv) -> None:
        """Any argv of bytes encodes as encode_command encodes it."""
        self.assertEqual(encode(argv), encode_command(argv))

    def test_largeValueInPieces(self) -> None:
        """A SET of a large value is pieces, the value uncopied among them."""
        big = b"v" * (LARGE_ARG + 1)
        pieces = encode([b"SET", b"k", big])
        self.assertTrue(any(piece is big for piece in pieces))
        self.assertEqual(b"".join(pieces), encode_command([b"SET", b"k", big]))
