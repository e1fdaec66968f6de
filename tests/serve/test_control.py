"""Tests for kvtwist.serve.control: the serve hooks, and a real twistd kvstore using them."""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import time

import redis
from twisted.internet.defer import Deferred, fail, succeed
from twisted.internet.task import Clock, LoopingCall
from twisted.trial.unittest import SynchronousTestCase

from kvtwist.engine.store import Store
from kvtwist.serve.control import ServeHooks
from kvtwist.storage.journal import JournalError
from kvtwist.wire.replies import Error, Status
from tests.procs import start_kvstore
from tests.redisref import start_redis_or_skip


class FakeJournal:
    """compact() answers with the Deferred a test gives it."""

    def __init__(self) -> None:
        self.compacting = False
        self.results = []
        self.appended = 0
        self.generation = 1
        self.failure = None

    def compact(self):
        return self.results.pop(0)


class HooksTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.clock = Clock()
        self.store = Store(self.clock)
        self.hooks = self.store.hooks = ServeHooks(self.clock)
        self.journal = FakeJournal()
        self.stopped = []
        self.sweeper = LoopingCall(lambda: None)
        self.sweeper.clock = self.clock
        self.hooks.attach(self.journal, self.sweeper, 0.1, lambda: self.stopped.append(1), None)
        self.store.journal = self.journal  # what SAVE and BGSAVE check for a running snapshot
        self.session = self.store.new_session("127.0.0.1:1")

    def test_later(self) -> None:
        """later() fires its reply after the delay on the injected clock; None never fires."""
        d = self.hooks.later(0.25, 0)
        got = []
        d.addCallback(got.append)
        self.clock.advance(0.2)
        self.assertEqual(got, [])
        self.clock.advance(0.05)
        self.assertEqual(got, [0])
        self.assertNoResult(self.hooks.later(None, 0))

    def test_pause_wakes_waiters(self) -> None:
        """When the pause ends every protocol holding requests is resumed."""
        resumed = []

        class Waiter:
            session = self.session

            def resume(self):
                resumed.append(1)

        self.store.pause_mode, self.store.pause_end = b"all", 2.0
        self.hooks.paused(self.store)
        self.hooks.waiting.add(Waiter())
        self.clock.advance(1.9)
        self.assertEqual(resumed, [])
        self.clock.advance(0.1)
        self.assertEqual(resumed, [1])
        self.assertIsNone(self.store.pause_mode)

    def test_save_and_bgsave(self) -> None:
        """SAVE answers OK once the snapshot is in; BGSAVE at once, or scheduled behind one."""
        d = Deferred()
        self.journal.results.append(d)
        reply = self.session.execute([b"save"])
        self.assertNoResult(reply)
        d.callback(100)
        self.assertEqual(self.successResultOf(reply), Status(b"OK"))
        self.journal.results.append(fail(JournalError("disk full")))
        self.assertEqual(self.successResultOf(self.session.execute([b"save"])),
                         Error("ERR disk full"))
        self.journal.results.append(succeed(1))
        self.assertEqual(self.session.execute([b"bgsave"]),
                         Status(b"Background saving started"))
        self.journal.compacting = True
        self.journal.results.append(succeed(1))
        self.assertEqual(self.session.execute([b"bgsave", b"schedule"]),
                         Status(b"Background saving scheduled"))
        self.assertEqual(self.session.execute([b"bgsave"]),
                         Error("ERR Background save already in progress"))
        self.assertEqual(self.session.execute([b"save"]),
                         Error("ERR Background save already in progress"))

    def test_shutdown(self) -> None:
        """SHUTDOWN closes the caller without a reply and stops the server in the next turn."""
        reply = self.session.execute([b"shutdown", b"nosave"])
        self.assertNoResult(reply)
        self.assertIs(self.session.closing, True)
        self.clock.advance(0)
        self.assertEqual(self.stopped, [1])

    def test_shutdown_save_failure(self) -> None:
        """SHUTDOWN SAVE stays up with Redis's error when the snapshot fails, unless FORCE."""
        self.journal.results.append(fail(JournalError("disk full")))
        reply = self.session.execute([b"shutdown", b"save"])
        self.assertEqual(self.successResultOf(reply),
                         Error("ERR Errors trying to SHUTDOWN. Check logs."))
        self.assertEqual(self.stopped, [])
        self.journal.results.append(fail(JournalError("disk full")))
        self.session.execute([b"shutdown", b"save", b"force"])
        self.assertEqual(self.stopped, [1])

    def test_active_expire(self) -> None:
        """DEBUG SET-ACTIVE-EXPIRE stops and restarts the sweep."""
        self.sweeper.start(0.1, now=False)
        self.session.execute([b"debug", b"set-active-expire", b"0"])
        self.assertFalse(self.sweeper.running)
        self.session.execute([b"debug", b"set-active-expire", b"1"])
        self.assertTrue(self.sweeper.running)


def _raw(port: int, data: bytes, wait: float = 10.0) -> bytes:
    """Send raw bytes; return everything received until the peer closes (or is quiet ``wait`` s)."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    try:
        sock.sendall(data)
        sock.settimeout(wait)
        out = b""
        while True:
            try:
                chunk = sock.recv(65536)
            except socket.timeout:
                return out
            if not chunk:
                return out + b"<EOF>"
            out += chunk
    finally:
        sock.close()


class ServerTests(SynchronousTestCase):
    """A real ``twistd kvstore`` process."""

    def start(self, *args):
        data = tempfile.mkdtemp(prefix="kvtwist-control-")
        self.addCleanup(shutil.rmtree, data, True)
        proc = start_kvstore(data, *args)
        self.addCleanup(proc.stop)
        return proc, data

    def test_shutdown_commits_and_stops(self) -> None:
        """SHUTDOWN closes the connection without a reply, exits 0, and the data is kept."""
        proc, data = self.start()
        r = redis.Redis(port=proc.port, socket_timeout=10)
        r.set("kept", "yes")
        r.close()
        self.assertEqual(_raw(proc.port, b"SHUTDOWN SAVE\r\n"), b"<EOF>")
        self.assertEqual(proc.process.wait(30), 0)
        again = start_kvstore(data)
        self.addCleanup(again.stop)
        r = redis.Redis(port=again.port, socket_timeout=10)
        self.addCleanup(r.close)
        self.assertEqual(r.get("kept"), b"yes")
        self.assertGreater(r.lastsave().timestamp(), time.time() - 120)

    def test_inline_replies_resp_as_redis(self) -> None:
        """--inline-replies resp answers inline requests with redis-server's exact bytes."""
        proc, _ = self.start("--inline-replies", "resp")
        server = start_redis_or_skip()
        self.addCleanup(server.stop)
        script = (b'PING\r\n\r\nSET k "a b"\r\nGET k\r\nECHO \'x\'\r\nBOGUS 1\r\n'
                  b"*1\r\n$4\r\nPING\r\nCLIENT REPLY SKIP\r\nGET k\r\nDEL k\r\nMEMORY USAGE k\r\n"
                  b"ROLE\r\nGET \"unbalanced\r\nPING\r\n")
        self.assertEqual(_raw(proc.port, script), _raw(server.port, script))

    def test_monitor_with_redis_cli(self) -> None:
        """redis-cli MONITOR prints other clients' commands as it does against Redis."""
        proc, _ = self.start()
        monitor = subprocess.Popen(["redis-cli", "-p", str(proc.port), "monitor"],
                                   stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        self.addCleanup(monitor.wait)
        self.addCleanup(monitor.kill)
        self.assertEqual(monitor.stdout.readline(), b"OK\n")
        r = redis.Redis(port=proc.port, socket_timeout=10)
        self.addCleanup(r.close)
        r.set("k", 'say "hi"\n')
        line = monitor.stdout.readline().decode()
        while '"SET"' not in line:  # the client's connection handshake comes first
            line = monitor.stdout.readline().decode()
        self.assertRegex(line, r'^\d+\.\d{6} \[0 127\.0\.0\.1:\d+\] "SET" "k" '
                               r'"say \\"hi\\"\\n"\n$')

    def test_client_kill(self) -> None:
        """CLIENT KILL ID closes that connection; the killer gets the count."""
        proc, _ = self.start()
        victim = redis.Redis(port=proc.port, socket_timeout=10)
        self.addCleanup(victim.close)
        victim_id = victim.client_id()
        killer = redis.Redis(port=proc.port, socket_timeout=10)
        self.addCleanup(killer.close)
        self.assertEqual(killer.execute_command("CLIENT", "KILL", "ID", victim_id), 1)
        self.assertNotIn(b"id=%d " % victim_id, killer.execute_command("CLIENT", "LIST"))
        listing = killer.execute_command("CLIENT", "LIST").decode()
        self.assertIn("laddr=127.0.0.1:%d " % proc.port, listing)
        self.assertNotIn(" fd=-1 ", listing)
