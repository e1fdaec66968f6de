"""Tests for kvtwist.loop.turns: the end-of-turn call a reactor offers, or callLater(0)."""

from __future__ import annotations

from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from kvtwist.loop.turns import at_turn_end


class AtTurnEndTests(SynchronousTestCase):
    """at_turn_end picks the reactor's callAtTurnEnd when it has one."""

    def test_reactor_with_call_at_turn_end(self) -> None:
        """A reactor offering callAtTurnEnd gets exactly that method back."""

        class Reactor:
            def callAtTurnEnd(self, f) -> None:
                pass

        reactor = Reactor()
        self.assertEqual(at_turn_end(reactor), reactor.callAtTurnEnd)

    def test_other_reactor_gets_call_later_zero(self) -> None:
        """Any other clock runs the call through callLater(0) on its next turn."""
        clock = Clock()
        ran = []
        at_turn_end(clock)(lambda: ran.append(True))
        self.assertEqual([call.getTime() for call in clock.getDelayedCalls()], [0])
        clock.advance(0)
        self.assertEqual(ran, [True])
