"""Shared test fixtures: a Session on a Clock, driven one command at a time."""

from __future__ import annotations

from twisted.internet.task import Clock

from kvtwist.engine.store import NullJournal, Store
from kvtwist.wire.replies import Error

START = 1700000000.0


class RecordingJournal(NullJournal):
    """A NullJournal that also remembers each effect."""

    def __init__(self):
        NullJournal.__init__(self)
        self.effects = []

    def append(self, effect):
        NullJournal.append(self, effect)
        self.effects.append(effect)


class SessionMixin:
    """For TestCases: ``self.session`` on ``self.store`` with ``self.clock`` at ``start``.

    ``self.journal`` is a fresh L{RecordingJournal}; ``peer`` is the session's client address.
    """

    start = START
    peer = "127.0.0.1:5000"

    def setUp(self):
        self.clock = Clock()
        self.clock.advance(self.start)
        self.journal = RecordingJournal()
        self.store = Store(self.clock, self.journal)
        self.session = self.store.new_session(self.peer)

    def call(self, *args):
        """Run one command (str or bytes arguments); return its reply value."""
        return self.session.execute([a if isinstance(a, bytes) else a.encode() for a in args])

    def error(self, *args):
        """Run one command that must fail; return its error message."""
        reply = self.call(*args)
        self.assertIsInstance(reply, Error, args)
        return reply.message
