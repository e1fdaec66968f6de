"""Tests for kvtwist.serve.factory: the store's journal, the outbox hook, large-argument joins."""

from __future__ import annotations

from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from kvtwist.serve.factory import KVFactory
from tests.serve.test_protocol import FakeStore


class OutboxTests(SynchronousTestCase):
    """A factory given a reactor sends through an Outbox that the journal flushes."""

    def test_release_hook_follows_listening(self) -> None:
        """Starting the factory hooks its outbox flush into the journal; stopping unhooks it."""
        store = FakeStore()
        store.journal.release_hooks = []
        factory = KVFactory(store, reactor=Clock())
        factory.doStart()
        self.assertEqual(store.journal.release_hooks, [factory.outbox.flush])
        factory.doStop()
        self.assertEqual(store.journal.release_hooks, [])

    def test_journal_is_read_late(self) -> None:
        """A store without a journal serves as if every write were acknowledged."""
        store = FakeStore()
        factory = KVFactory(store)
        del store.journal
        self.assertEqual((factory.journal.appended, factory.journal.acked), (0, 0))
        store.journal = journal = object()
        self.assertIs(factory.journal, journal)

    def test_join_large_without_a_thread_pool(self) -> None:
        """On a reactor with no thread pool (a Clock) large arguments are joined at once."""
        factory = KVFactory(FakeStore(), reactor=Clock())
        self.assertEqual(self.successResultOf(factory.join_large([b"ab", b"cd"])), b"abcd")
