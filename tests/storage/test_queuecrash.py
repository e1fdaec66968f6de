"""The queue crash test: LPUSH producers and BRPOP consumers against a real ``twistd kvstore``
killed with SIGKILL in cycles. Every acknowledged push is afterwards still in the list or was
delivered to exactly one consumer; nothing is delivered twice or both delivered and kept.

One allowance, inherent to any server that answers a pop (Redis's too): the reply to a pop
is sent once the pop is durable, so a kill between that moment and the bytes leaving the
process loses the reply of a consumer that was waiting. Each consumer with a BRPOP in
flight at the kill may therefore account for at most one element neither listed nor
delivered (BLMOVE is the reliable-queue pattern for that). The fast suite runs a few
cycles; tests/soak/test_queuesoak.py runs many (``KVTWIST_SOAK=1``).
"""

from __future__ import annotations

import os
import random
import shutil
import tempfile
import threading

from twisted.trial.unittest import SynchronousTestCase

from tests.procs import start_kvstore
from tests.storage.test_crash import Connection

QUEUE = b"queue"
PRODUCERS = 2
CONSUMERS = 2


class QueueModel:
    """What the clients know: elements sent, acknowledged, delivered; lost replies allowed."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.progress = threading.Condition(self.lock)
        self.sent = set()
        self.acked = set()
        self.delivered = []
        self.delivered_set = set()
        self.lost = set()  # popped for a consumer whose reply the kill swallowed
        self.events = 0

    def pushed(self, element: bytes, acked: bool) -> None:
        with self.lock:
            if acked:
                self.acked.add(element)
                self.events += 1
                self.progress.notify_all()
            else:
                self.sent.add(element)

    def got(self, element: bytes) -> None:
        with self.lock:
            if element in self.delivered_set:
                self.delivered.append(element)  # a duplicate: verify reports it
            self.delivered.append(element)
            self.delivered_set.add(element)
            self.events += 1
            self.progress.notify_all()


def producer(port: int, model: QueueModel, number: int, counter: list,
             stop: threading.Event) -> None:
    """LPUSH unique elements until the server dies or ``stop``."""
    try:
        conn = Connection(port)
    except OSError:
        return
    try:
        while not stop.is_set():
            counter[0] += 1
            element = b"p%d-%d" % (number, counter[0])
            model.pushed(element, False)
            reply = conn.call(b"LPUSH", QUEUE, element)
            if isinstance(reply, int):
                model.pushed(element, True)
    except (OSError, ConnectionError):
        pass
    finally:
        conn.close()


def consumer(port: int, model: QueueModel, number: int, stop: threading.Event) -> None:
    """BRPOP until the server dies or ``stop``; record each element received (a consumer
    has at most one BRPOP in flight: the kill can swallow at most one reply of each)."""
    try:
        conn = Connection(port)
    except OSError:
        return
    try:
        while not stop.is_set():
            reply = conn.call(b"BRPOP", QUEUE, b"0.2")
            if isinstance(reply, list):
                model.got(reply[1])
    except (OSError, ConnectionError):
        pass
    finally:
        conn.close()


class QueueCrashTests(SynchronousTestCase):
    """Pushes and blocking pops through SIGKILL: nothing acknowledged lost, nothing twice."""

    cycles_count = 3

    def setUp(self) -> None:
        self.directory = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, self.directory, True)
        self.server = None
        self.addCleanup(self._kill)

    def _kill(self) -> None:
        if self.server is not None:
            self.server.kill()

    def verify(self, model: QueueModel, port: int) -> None:
        conn = Connection(port)
        try:
            listed = conn.call(b"LRANGE", QUEUE, b"0", b"-1") or []
        finally:
            conn.close()
        listed_set = set(listed)
        self.assertEqual(len(listed), len(listed_set), "an element is in the list twice")
        self.assertEqual(len(model.delivered), len(model.delivered_set),
                         "an element was delivered twice")
        self.assertEqual(listed_set & model.delivered_set, set(),
                         "an element was delivered and is still in the list")
        self.assertEqual(listed_set - model.sent - model.acked, set(), "an invented element")
        missing = model.acked - listed_set - model.delivered_set - model.lost
        self.assertLessEqual(len(missing), CONSUMERS,
                             "acknowledged pushes lost: %r" % (sorted(missing)[:10],))
        model.lost |= missing

    def cycles(self, count: int) -> QueueModel:
        """Run ``count`` push/pop/SIGKILL/restart/verify cycles; return the model."""
        rng = random.Random(int.from_bytes(os.urandom(4), "big"))
        model = QueueModel()
        counters = [[0] for _ in range(PRODUCERS)]
        args = ("--fsync", "always", "--compact-min", "16kb")
        for cycle in range(count):
            self.server = start_kvstore(self.directory, *args)
            port = self.server.port
            if cycle:
                self.verify(model, port)
            stop = threading.Event()
            threads = [threading.Thread(target=producer, args=(port, model, n, counters[n], stop))
                       for n in range(PRODUCERS)]
            threads += [threading.Thread(target=consumer, args=(port, model, n, stop))
                        for n in range(CONSUMERS)]
            for thread in threads:
                thread.start()
            target = model.events + rng.randrange(50, 400)
            with model.progress:
                model.progress.wait_for(lambda target=target: model.events >= target, 30)
            self.server.kill()
            stop.set()
            for thread in threads:
                thread.join(30)
            self.server = None
        self.server = start_kvstore(self.directory, *args)
        self.verify(model, self.server.port)
        return model

    def test_queue_through_kills(self) -> None:
        """A few SIGKILL cycles under LPUSH producers and BRPOP consumers keep the queue's
        promise: acknowledged pushes are listed or delivered once, and never both."""
        model = self.cycles(self.cycles_count)
        self.assertGreater(len(model.acked), self.cycles_count * 20)
        self.assertGreater(len(model.delivered), 0)
