"""The harness of a value type's journal tests (test_listjournal.py, test_streamjournal.py):
the type's commands run on a StoreHarness, its values compared across restarts, compactions,
refused writes, ``kvtwist check`` and the RESP export into a redis-server."""

from __future__ import annotations

import errno

from twisted.trial.unittest import SynchronousTestCase

from kvtwist.storage import fsck
from tests.storage.test_fsck import pipe_into_redis
from tests.storage.test_journal import GroupCommitTests, StoreHarness


class TypeJournalCase(SynchronousTestCase):
    """A type's journal tests: ``commands`` run its operations; ``values(h)`` is every key's
    value in a form equal exactly when the type's state is."""

    mktemp = GroupCommitTests.mktemp
    commands: list = []

    def values(self, h) -> dict:
        raise NotImplementedError

    def run_all(self, h) -> None:
        for argv in self.commands:
            h.run(*argv)

    def ran(self) -> StoreHarness:
        """Return a new harness that ran every command and committed them."""
        h = StoreHarness(self)
        self.run_all(h)
        h.turn()
        return h

    def compacted(self, before: tuple, after: tuple) -> tuple:
        """Run ``before``, then every command, a compaction with them pending and ``after``;
        check the compaction wrote and a reload has the same values; return (h, reloaded)."""
        h = StoreHarness(self)
        h.run(*before)
        h.turn()
        self.run_all(h)
        d = h.journal.compact()
        h.run(*after)
        h.turn()
        self.assertGreater(self.successResultOf(d), 0)
        expected = self.values(h)
        again = h.reload()
        self.assertEqual(self.values(again), expected)
        return h, again

    def refused(self, h, commands) -> None:
        """Run ``commands`` while the disk refuses writes; check the values are as before,
        once the disk accepts writes again too, and after a reload."""
        h.turn()
        before = self.values(h)
        h.ops.fault, h.ops.only = errno.ENOSPC, "write"
        for argv in commands:
            h.run(*argv)
        h.turn()
        self.assertEqual(self.values(h), before)
        h.ops.fault = None
        h.clock.advance(1)
        h.turn()
        self.assertEqual(self.values(h.reload()), before)

    def exported(self, h) -> tuple:
        """Commit and stop ``h``; check ``kvtwist check`` counts its keys and its RESP export
        loads into a redis-server without errors; return (values, the server's socket)."""
        h.turn()
        expected = self.values(h)
        h.stop()
        report = fsck.check(h.directory)
        self.assertTrue(report.ok, report.lines)
        self.assertIn("%d keys" % len(expected), report.lines[-1])
        sock, piped = pipe_into_redis(self, h.directory)
        self.assertIn(b"errors: 0", piped.stdout)
        return expected, sock
