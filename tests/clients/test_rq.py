"""RQ, a real job queue, against a real ``twistd kvstore``: jobs are enqueued, a burst-mode
worker (a subprocess, as ``rq worker --burst`` runs) performs them, and their results and
failures are stored and read back through RQ's own API."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile

from twisted.trial.unittest import SkipTest, SynchronousTestCase

from tests.procs import start_kvstore
from tests.storage.test_crash import Connection

try:
    import redis
    import rq
except ImportError:  # the test extras are not installed
    redis = rq = None

# The commands RQ 2.x/3.x sends for enqueueing, working and storing results (measured with
# INFO commandstats against redis-server): results go to a stream (XADD MAXLEN ~ 10,
# XREVRANGE; XREAD BLOCK for latest_result(timeout=...), XLEN for Job.results()).
NEEDED = ("hset hget hgetall hdel hexists hincrby hincrbyfloat sadd srem smembers zadd zrem "
          "zrange zrangebyscore zremrangebyscore rpush lrem lmove llen lrange xadd xrevrange "
          "xread xlen multi exec watch expire persist subscribe").split()

WORKER = """
import sys
import redis
import rq

connection = redis.Redis(port=int(sys.argv[1]))
queue = rq.Queue("jobs", connection=connection)
worker = rq.Worker([queue], connection=connection, name="kvtwist-test-worker")
worker.work(burst=True)
"""


class RQTests(SynchronousTestCase):
    """An RQ worker runs jobs queued on kvstore and stores their results there."""

    def setUp(self):
        if rq is None:
            raise SkipTest("rq is not installed (pip install -e .[test])")
        directory = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, directory, True)
        self.directory = directory
        self.server = start_kvstore(directory)
        self.addCleanup(lambda: self.server.stop())  # the current one: tests restart it
        self.connection = redis.Redis(port=self.server.port)
        self.addCleanup(self.connection.close)
        raw = Connection(self.server.port)
        try:
            known = raw.call(b"COMMAND", b"INFO", *[name.encode() for name in NEEDED])
        finally:
            raw.close()
        missing = [name for name, info in zip(NEEDED, known) if info is None]
        self.assertEqual(missing, [], "kvstore lacks commands RQ needs")

    def worker_command(self) -> list:
        return [sys.executable, "-c", WORKER, str(self.server.port)]

    def worker_env(self) -> dict:
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [os.getcwd(), env.get("PYTHONPATH")]))
        return env

    def work(self) -> None:
        done = subprocess.run(self.worker_command(), env=self.worker_env(),
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=120)
        self.assertEqual(done.returncode, 0, done.stdout.decode("utf-8", "replace"))

    def test_jobs_run_and_results_are_stored(self):
        """Enqueued jobs run in a burst worker; results, failures and the queue's state read
        back from kvstore as RQ stored them."""
        queue = rq.Queue("jobs", connection=self.connection)
        jobs = [queue.enqueue("operator.add", n, 100) for n in range(5)]
        failing = queue.enqueue("operator.truediv", 1, 0)
        self.assertEqual(len(queue), 6)
        self.work()
        for n, job in enumerate(jobs):
            job.refresh()
            self.assertEqual(job.get_status(), rq.job.JobStatus.FINISHED)
            self.assertEqual(job.return_value(), n + 100)
            result = job.latest_result()
            self.assertEqual(result.type, rq.results.Result.Type.SUCCESSFUL)
            self.assertEqual(result.return_value, n + 100)
            self.assertEqual([each.return_value for each in job.results()], [n + 100])
        failing.refresh()
        self.assertEqual(failing.get_status(), rq.job.JobStatus.FAILED)
        result = failing.latest_result()
        self.assertEqual(result.type, rq.results.Result.Type.FAILED)
        self.assertIn("ZeroDivisionError", result.exc_string)
        self.assertEqual(len(queue), 0)
        self.assertIn(failing.id, queue.failed_job_registry.get_job_ids())
        self.assertEqual(sorted(queue.finished_job_registry.get_job_ids()),
                         sorted(job.id for job in jobs))
        # The results are a stream per job, as in Redis.
        self.assertEqual(self.connection.type(rq.results.Result.get_key(jobs[0].id)), b"stream")

    def test_latest_result_waits_for_the_worker(self):
        """latest_result(timeout=...) blocks in XREAD BLOCK until the worker stores the
        result (the worker runs meanwhile in its own process)."""
        queue = rq.Queue("jobs", connection=self.connection)
        job = queue.enqueue("operator.mul", 6, 7)
        worker = subprocess.Popen(self.worker_command(), env=self.worker_env(),
                                  stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        try:
            result = job.latest_result(timeout=60)
        finally:
            output = worker.communicate(timeout=120)[0]
        self.assertEqual(worker.returncode, 0, output.decode("utf-8", "replace"))
        self.assertIsNotNone(result)
        self.assertEqual(result.return_value, 42)
        self.assertEqual(job.get_status(refresh=True), rq.job.JobStatus.FINISHED)

    def test_results_survive_a_restart(self):
        """Job results (streams) are journalled: a restarted kvstore still has them."""
        queue = rq.Queue("jobs", connection=self.connection)
        job = queue.enqueue("operator.add", 1, 2)
        self.work()
        self.connection.close()
        self.server.stop()
        self.server = start_kvstore(self.directory)
        self.connection = redis.Redis(port=self.server.port)
        self.addCleanup(self.connection.close)
        job = rq.job.Job.fetch(job.id, connection=self.connection)
        self.assertEqual(job.latest_result().return_value, 3)
