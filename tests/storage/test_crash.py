"""Crash tests: SIGKILL a real ``twistd -n kvstore`` under load, restart, check acked writes."""

from __future__ import annotations

import os
import random
import shutil
import socket
import tempfile
import threading

from twisted.trial.unittest import SynchronousTestCase

from kvtwist.wire.respreply import NEED_MORE, ReplyParser, encode_command
from kvtwist.wire.replies import Error, Status
from tests.procs import start_kvstore

CYCLES = 20
WRITERS = 4
KEYS_PER_WRITER = 16


class Connection:
    """A blocking RESP connection: ``call(*args)`` returns the reply value."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=30)
        self.parser = ReplyParser()

    def call(self, *args):
        self.sock.sendall(encode_command(list(args)))
        return self.read()

    def read(self):
        while True:
            reply = self.parser.next_reply()
            if reply is not NEED_MORE:
                return reply
            data = self.sock.recv(65536)
            if not data:
                raise ConnectionError("server closed the connection")
            self.parser.feed(data)

    def close(self) -> None:
        self.sock.close()


class Model:
    """What clients know: per key, the last acknowledged value and the values sent after it."""

    def __init__(self) -> None:
        self.acked = {}  # key -> value (None: deleted / never set)
        self.unsure = {}  # key -> list of values sent but not acknowledged
        self.lock = threading.Lock()
        self.progress = threading.Condition(self.lock)
        self.acks = 0

    def sent(self, key: bytes, value) -> None:
        with self.lock:
            self.unsure.setdefault(key, []).append(value)

    def acknowledged(self, key: bytes, value) -> None:
        with self.lock:
            self.acked[key] = value
            self.unsure[key] = []
            self.acks += 1
            self.progress.notify_all()

    def allowed(self, key: bytes) -> list:
        return [self.acked.get(key)] + self.unsure.get(key, [])


def writer(port: int, model: Model, number: int, counter: list, stop: threading.Event) -> None:
    """Write (SET, sometimes DEL) this writer's own keys until the connection dies or ``stop``."""
    rng = random.Random(number)
    try:
        conn = Connection(port)
    except OSError:
        return
    try:
        while not stop.is_set():
            key = b"w%d:k%d" % (number, rng.randrange(KEYS_PER_WRITER))
            counter[0] += 1
            if rng.random() < 0.1:
                model.sent(key, None)
                reply = conn.call(b"DEL", key)
                ok = isinstance(reply, int)
                value = None
            else:
                value = b"w%d-%d-" % (number, counter[0]) + b"x" * rng.randrange(200)
                model.sent(key, value)
                reply = conn.call(b"SET", key, value)
                ok = reply == Status(b"OK")
            if ok:
                model.acknowledged(key, value)
            elif not isinstance(reply, Error):
                raise AssertionError("unexpected reply %r" % (reply,))
    except (OSError, ConnectionError):
        pass  # the server was killed
    finally:
        conn.close()


class CrashTests(SynchronousTestCase):
    """Every acknowledged write survives SIGKILL at random moments, including during compaction."""

    def setUp(self) -> None:
        self.directory = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, self.directory, True)
        self.server = None
        self.addCleanup(self._kill)

    def _kill(self) -> None:
        if self.server is not None:
            self.server.kill()

    def verify(self, model: Model, port: int) -> None:
        conn = Connection(port)
        try:
            for key in sorted(set(model.acked) | set(model.unsure)):
                found = conn.call(b"GET", key)
                allowed = model.allowed(key)
                self.assertIn(found, allowed, "key %r: found %r, acked %r, unsure %r" % (
                    key, found, model.acked.get(key), model.unsure.get(key)))
                # What survived a restart is durable: it is the new baseline.
                model.acked[key] = found
                model.unsure[key] = []
            stray = conn.call(b"DBSIZE")
            self.assertEqual(stray, sum(1 for v in model.acked.values() if v is not None))
        finally:
            conn.close()

    def cycles(self, count: int, policy: str) -> Model:
        """Run ``count`` write/SIGKILL/restart/verify cycles under ``policy``; return the model."""
        rng = random.Random(int.from_bytes(os.urandom(4), "big"))
        model = Model()
        counters = [[0] for _ in range(WRITERS)]
        self.compactions_seen = 0
        args = ("--fsync", policy, "--compact-min", "16kb")
        for cycle in range(count):
            self.server = start_kvstore(self.directory, *args)
            if cycle:
                self.verify(model, self.server.port)
            stop = threading.Event()
            port = self.server.port
            threads = [threading.Thread(target=writer, args=(port, model, n, counters[n], stop))
                       for n in range(WRITERS)]
            for thread in threads:
                thread.start()
            target = model.acks + rng.randrange(20, 300)
            with model.progress:
                model.progress.wait_for(lambda target=target: model.acks >= target, 30)
            if cycle % 3 == 1:
                # Kill during (or right after starting) a compaction.
                conn = Connection(self.server.port)
                conn.sock.sendall(encode_command([b"COMPACT"]))
                if rng.random() < 0.5:
                    conn.read()
                self.server.kill()
                conn.close()
            else:
                self.server.kill()
            self.compactions_seen += self.server.log.count("Compaction to generation")
            stop.set()
            for thread in threads:
                thread.join(30)
            self.server = None
        self.server = start_kvstore(self.directory, *args)
        self.verify(model, self.server.port)
        return model

    def test_kill_restart_cycles(self) -> None:
        """Twenty SIGKILL/restart cycles under writers lose no acked write and invent none."""
        model = self.cycles(CYCLES, "always")
        self.assertGreater(model.acks, CYCLES * 20)
        self.assertGreater(self.compactions_seen, 0)

    def test_everysec_and_no_survive_process_crash(self) -> None:
        """Under everysec and no, a process crash (not a power cut) loses no acknowledged write."""
        for policy in ("everysec", "no"):
            model = self.cycles(4, policy)
            self.assertGreater(model.acks, 4 * 20)
            self.server.kill()
            self.server = None
            shutil.rmtree(self.directory)
            os.mkdir(self.directory)
