"""Celery against a real ``twistd kvstore``: its Redis broker (lists, sets, sorted sets,
hashes, pub/sub) and result backend, with a worker process running the tasks."""

from __future__ import annotations

import gc
import os
import shutil
import subprocess
import sys
import tempfile
from unittest import SkipTest

from twisted.trial.unittest import SynchronousTestCase

from tests.procs import ROOT, ChildProcess, start_kvstore

try:
    import celery  # noqa: F401
except ImportError:  # pragma: no cover - the test extra installs it
    celery = None


class CeleryTests(SynchronousTestCase):
    """A Celery worker takes tasks from kvstore and stores their results in it."""

    def setUp(self) -> None:
        if celery is None:
            raise SkipTest("celery is not installed (pip install -e '.[test]')")
        directory = tempfile.mkdtemp(prefix="kvtwist-celery-")
        self.addCleanup(shutil.rmtree, directory, True)
        self.kvstore = start_kvstore(os.path.join(directory, "data"))
        self.addCleanup(self.kvstore.stop)
        url = "redis://127.0.0.1:%d" % (self.kvstore.port,)
        os.environ["KVTWIST_CELERY_URL"] = url
        self.addCleanup(os.environ.pop, "KVTWIST_CELERY_URL", None)
        env = dict(os.environ, PYTHONPATH=ROOT)
        process = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "tests.clients.celery_app", "worker",
             "--pool", "solo", "--concurrency", "1", "--loglevel", "WARNING",
             "--without-gossip", "--without-mingle", "--without-heartbeat"],
            cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
            stderr=open(os.path.join(directory, "worker.log"), "wb"))
        worker = ChildProcess()
        worker.process, worker.pid = process, process.pid
        self.addCleanup(worker.stop)
        self.log = os.path.join(directory, "worker.log")
        from tests.clients import celery_app
        self.app = celery_app
        self.results = []
        self.addCleanup(self.release_results)  # runs before kvstore stops

    def release_results(self) -> None:
        """Drop the test's AsyncResults and collect them while kvstore still runs.

        An AsyncResult's finalizer unsubscribes from its result on the backend's pub/sub
        connection. Collected after kvstore stopped (under PyPy, whenever the next
        collection comes: in a later test, in its reactor's thread), it retried that
        connection 20 times a second apart, holding that test up for 20 s; one such
        DUMP-over-TCP test timed out in CI.
        """
        del self.results[:]
        for _ in range(3):  # PyPy runs a finalizer on the collection after the one that found it
            gc.collect()

    def test_tasks_run_and_results_are_stored(self) -> None:
        """Tasks sent to kvstore's queue run in the worker; results and failures come back."""
        results = self.results
        try:
            results += [self.app.add.delay(i, i) for i in range(5)]
            self.assertEqual([r.get(timeout=60) for r in results], [0, 2, 4, 6, 8])
            results.append(self.app.fail.delay())
            with self.assertRaises(ValueError):
                results[-1].get(timeout=60)
            self.assertEqual(results[-1].state, "FAILURE")
        except Exception:
            with open(self.log, "rb") as handle:
                sys.stderr.write(handle.read().decode("utf-8", "replace")[-4000:])
            raise
