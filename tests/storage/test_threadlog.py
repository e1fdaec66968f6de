"""Tests for kvtwist.storage.threadlog: the job thread and the journal appended to through it."""

from __future__ import annotations

import threading

from twisted.internet import reactor
from twisted.trial.unittest import TestCase

from kvtwist.storage.threadlog import ThreadWorker


class ThreadWorkerTests(TestCase):
    """ThreadWorker runs jobs in order in its own thread and reports back on the reactor."""

    def test_jobs_in_order_off_the_reactor_thread(self) -> None:
        """Jobs run in order off-thread; results and errors reach done() in the reactor thread."""
        worker = ThreadWorker(reactor, "test-writer")
        seen = []

        def job(n):
            seen.append((n, threading.current_thread() is threading.main_thread()))
            if n == 2:
                raise ValueError("boom")
            return n * 10

        results = []

        def done(ok, value):
            results.append((ok, value if ok else type(value), threading.current_thread()))

        for n in range(4):
            worker.submit(lambda n=n: job(n), done)
        worker.start()

        def check(_):
            self.assertEqual(seen, [(0, False), (1, False), (2, False), (3, False)])
            self.assertEqual([(ok, v) for ok, v, _ in results],
                             [(True, 0), (True, 10), (False, ValueError), (True, 30)])
            self.assertTrue(all(t is threading.main_thread() for _, _, t in results))

        return worker.stop().addCallback(check)

    def test_stop_without_start(self) -> None:
        """Stopping a worker that never started still runs its queued jobs and fires."""
        worker = ThreadWorker(reactor, "test-writer")
        results = []
        worker.submit(lambda: 7, lambda ok, value: results.append((ok, value)))
        return worker.stop().addCallback(lambda _: self.assertEqual(results, [(True, 7)]))
