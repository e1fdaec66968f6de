"""Tests for kvtwist.client.deadlines: one timer serving every pending request's deadline."""

from __future__ import annotations

from twisted.internet.task import Clock
from twisted.trial import unittest

from kvtwist import client
from kvtwist.client.deadlines import Deadlines
from tests.client.test_protocol import connected


class Entry:
    """A pending request as Deadlines sees it."""

    def __init__(self) -> None:
        self.deadline = None
        self.timeout = None


class DeadlinesTests(unittest.SynchronousTestCase):
    """Deadlines keeps one timer armed for the earliest pending deadline."""

    def setUp(self) -> None:
        self.clock = Clock()
        self.pending = []
        self.expired = []
        self.deadlines = Deadlines(self.clock, lambda: self.pending, self.expired.append)

    def add(self, timeout: float) -> Entry:
        """Queue a new pending request with a deadline ``timeout`` seconds away."""
        entry = Entry()
        self.pending.append(entry)
        self.deadlines.arm(entry, timeout)
        return entry

    def test_arm_sets_deadline(self) -> None:
        """arm records the timeout and an absolute deadline on the clock."""
        self.clock.advance(10)
        entry = self.add(5)
        self.assertEqual((entry.timeout, entry.deadline, self.deadlines.count), (5, 15, 1))

    def test_one_timer_cancelled_by_last_settle(self) -> None:
        """Many deadlines share one delayed call, cancelled when the last one settles."""
        entries = [self.add(5) for _ in range(10)]
        self.assertEqual(len(self.clock.getDelayedCalls()), 1)
        for entry in entries:
            self.deadlines.settle(entry)
        self.assertEqual(self.clock.getDelayedCalls(), [])
        self.assertEqual((entries[0].deadline, self.deadlines.count), (None, 0))

    def test_expired_gets_earliest_overdue(self) -> None:
        """Once a deadline passes, expired receives that request, and not before."""
        self.add(5)
        second = self.add(2)
        self.clock.advance(1.9)
        self.assertEqual(self.expired, [])
        self.clock.advance(0.1)
        self.assertEqual(self.expired, [second])

    def test_rearms_for_next_after_settled_head(self) -> None:
        """When the timer finds its request settled, it re-arms for the next deadline."""
        first = self.add(5)
        self.clock.advance(3)
        second = self.add(5)
        self.pending.remove(first)
        self.deadlines.settle(first)
        self.clock.advance(2)
        self.assertEqual(self.expired, [])
        self.assertEqual(len(self.clock.getDelayedCalls()), 1)
        self.clock.advance(3)
        self.assertEqual(self.expired, [second])


class ClientDeadlineTests(unittest.SynchronousTestCase):
    """The RESP client's timeouts run on Deadlines' single timer."""

    def test_one_timer_for_many_requests(self):
        """A pipeline of timed requests arms one delayed call, not one per request."""
        proto, transport, clock = connected(timeout=5)
        ds = [proto.get(b"k%d" % (i,)) for i in range(100)]
        clock.advance(0)
        self.assertEqual(len(clock.getDelayedCalls()), 1)
        proto.dataReceived(b"$1\r\nv\r\n" * 100)
        self.assertEqual([self.successResultOf(d) for d in ds], [b"v"] * 100)
        self.assertEqual(clock.getDelayedCalls(), [])

    def test_later_request_times_out_after_answered_head(self):
        """When the head is answered, the watchdog still times out a later overdue request."""
        proto, transport, clock = connected()
        first = proto.execute(b"GET", b"a", timeout=5)
        clock.advance(3)
        second = proto.execute(b"GET", b"b", timeout=5)
        proto.dataReceived(b"$1\r\nA\r\n")
        self.assertEqual(self.successResultOf(first), b"A")
        clock.advance(4.9)
        self.assertNoResult(second)
        clock.advance(0.2)
        self.failureResultOf(second, client.RequestTimeout)
        self.assertTrue(transport.aborted)

    def test_shorter_timeout_behind_longer_fires_first(self):
        """A later request with a shorter timeout re-arms the watchdog sooner."""
        proto, transport, clock = connected()
        slow = proto.execute(b"GET", b"a", timeout=60)
        quick = proto.execute(b"GET", b"b", timeout=1)
        clock.advance(1)
        self.failureResultOf(quick, client.RequestTimeout)
        self.failureResultOf(slow, client.ClientDisconnected)
