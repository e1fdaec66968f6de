"""The long queue crash test: tests/storage/test_queuecrash.py's cycles, 25 of them.

Runs only with ``KVTWIST_SOAK=1`` (the slow CI stage, ``make test-slow``); the number of
cycles comes from ``KVTWIST_QUEUE_CYCLES`` (default 25).
"""

from __future__ import annotations

import os
from unittest import skipIf

from tests.storage import test_queuecrash

ENABLED = os.environ.get("KVTWIST_SOAK", "") not in ("", "0")


@skipIf(not ENABLED, "the queue soak runs with KVTWIST_SOAK=1 (make test-slow)")
class QueueSoakTests(test_queuecrash.QueueCrashTests):
    """Many SIGKILL cycles under LPUSH producers and BRPOP consumers."""

    cycles_count = int(os.environ.get("KVTWIST_QUEUE_CYCLES") or 25)
