"""Celery against a real ``twistd kvstore``: its Redis broker (lists, sets, sorted sets,
hashes, pub/sub) and result backend, with a worker process running the tasks."""

from __future__ import annotations

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

    def test_tasks_run_and_results_are_stored(self) -> None:
        """Tasks sent to kvstore's queue run in the worker; results and failures come back."""
        try:
            results = [self.app.add.delay(i, i) for i in range(5)]
            self.assertEqual([r.get(timeout=60) for r in results], [0, 2, 4, 6, 8])
            failed = self.app.fail.delay()
            with self.assertRaises(ValueError):
                failed.get(timeout=60)
            self.assertEqual(failed.state, "FAILURE")
        except Exception:
            with open(self.log, "rb") as handle:
                sys.stderr.write(handle.read().decode("utf-8", "replace")[-4000:])
            raise
