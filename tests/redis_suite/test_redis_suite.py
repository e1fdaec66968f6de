"""Redis 7.0.15's own test suite against kvstore, judged by tests/redis_suite/expected.txt.

It runs only with ``KVTWIST_REDIS_SUITE=1`` (``make test-redis-suite``, the slow CI stage):
it takes minutes and needs tclsh and redis-server. ``KVTWIST_REDIS_SUITE_ARGS`` adds runner
options (e.g. ``--files type/string --modes singledb``); ``KVTWIST_REDIS_SUITE_REPORT`` also
writes the markdown report there. The runner's own logic is tested by the other modules here.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from unittest import skipIf

from twisted.trial.unittest import SynchronousTestCase

from tests.procs import ROOT

ENABLED = os.environ.get("KVTWIST_REDIS_SUITE", "") not in ("", "0")
# The transparency stage: the CI's files through kvproxy in front of redis-server.
PROXY_ENABLED = os.environ.get("KVTWIST_PROXY_SUITE", "") not in ("", "0")
EXTRA = shlex.split(os.environ.get("KVTWIST_REDIS_SUITE_ARGS", ""))
REPORT = os.environ.get("KVTWIST_REDIS_SUITE_REPORT")
LIMIT = 3600.0  # seconds for the whole run (the runner kills each file after 600 s)


def run_suite(test, extra: list) -> None:
    """Run the runner with ``extra`` arguments; fail ``test`` unless it exits with 0."""
    command = [sys.executable, "-m", "tests.redis_suite", "--download"] + extra
    if REPORT:
        command += ["--report", REPORT]
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    done = subprocess.run(command, cwd=ROOT, env=env, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, timeout=LIMIT)
    output = done.stdout.decode("utf-8", "replace")
    print(output)
    test.assertEqual(done.returncode, 0, "the runner says (status %d):\n%s"
                     % (done.returncode, output[-20000:]))


@skipIf(not PROXY_ENABLED, "the transparency run is KVTWIST_PROXY_SUITE=1 (make test-proxy-suite)")
class ThroughProxyTests(SynchronousTestCase):
    def test_no_regression_through_kvproxy(self):
        """Every test expected-proxy-redis.txt says passes through kvproxy in front of
        redis-server (the CI's files, both modes) still passes."""
        run_suite(self, ["--through-proxy", "redis", "--proxy-ci"] + EXTRA)


@skipIf(not ENABLED, "the Redis suite runs with KVTWIST_REDIS_SUITE=1 (make test-redis-suite)")
class RedisSuiteTests(SynchronousTestCase):
    def test_no_regression(self):
        """Every test the expected file says kvstore passes still passes (a test passing only
        on a retry against a fresh kvstore is reported as flaky, not failed)."""
        command = [sys.executable, "-m", "tests.redis_suite", "--download"] + EXTRA
        if REPORT:
            command += ["--report", REPORT]
        env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
        done = subprocess.run(command, cwd=ROOT, env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, timeout=LIMIT)
        output = done.stdout.decode("utf-8", "replace")
        print(output)
        self.assertEqual(done.returncode, 0, "the runner says (status %d):\n%s"
                         % (done.returncode, output[-20000:]))
