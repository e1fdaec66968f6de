"""Tests for benchmarks/datatypes.py: the types and typememory suites (no timing)."""

from __future__ import annotations

import os
import socket
import tempfile
import threading

from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from benchmarks import datatypes, procs, redisbench, suites
from kvtwist.engine.store import Store


class FakeServer:
    """A started server as the suites see it: a port, a pid, login arguments."""

    auth = ()

    def __init__(self, label: str, port: int) -> None:
        self.label = label
        self.port = self.pid = port

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def quiet_run(selected=("types",)) -> suites.Run:
    """Return a --quick Run that prints nothing (close ``run.out`` at cleanup)."""
    return suites.Run(tempfile.gettempdir(), True, selected, out=open(os.devnull, "w"))


class RequestsTests(SynchronousTestCase):
    """How many requests each data-type test makes."""

    def test_sizes(self) -> None:
        """-P 16 makes three times -P 1's requests; LRANGE_600 a quarter; --quick a fifth."""
        run = quiet_run()
        self.addCleanup(run.out.close)
        self.assertEqual(datatypes.type_requests(run, "lpush", 1), 4000)
        self.assertEqual(datatypes.type_requests(run, "lpush", 16), 12000)
        self.assertEqual(datatypes.type_requests(run, "lrange_600", 16), 3000)
        run.quick = False
        self.assertEqual(datatypes.type_requests(run, "hset", 1), 20000)


class TypesSuiteTests(SynchronousTestCase):
    """The types suite measures kvstore against the matching redis-server, test by test."""

    def test_groups_servers_and_rows(self) -> None:
        """Two groups (fsync no / always), each test at -P 1 and -P 16 with CPU per command."""
        started = []

        def redis(appendfsync=None, workdir=None):
            started.append(("redis", appendfsync))
            return FakeServer("redis", 1)

        def kvstore(interpreter, fsync="no", data_dir=None, extra=()):
            started.append(("kvstore", fsync))
            return FakeServer("kv", 2)

        calls = []

        def bench(port, tests, conns, pipeline, n, timeout, keyspace, auth):
            calls.append((port, tests[0], pipeline, n))
            name = tests[0].upper()
            return {name: {"ops": 100.0 if port == 1 else 50.0, "p50": 1.0, "p99": 2.0}}

        run = quiet_run()
        self.addCleanup(run.out.close)
        self.patch(run, "redis", redis)
        self.patch(run, "kvstore", kvstore)
        self.patch(procs, "kvstore_available", lambda: True)
        self.patch(procs, "cpu_seconds", lambda pid: {pid: (0.0, 0.0)})
        self.patch(redisbench, "run", bench)
        datatypes.types(run)
        self.assertEqual(started, [("redis", None), ("kvstore", "no"),
                                   ("redis", "always"), ("kvstore", "always")])
        self.assertEqual(run.references, {"types, fsync no": "redis-server",
                                          "types, fsync always":
                                          "redis-server appendfsync always"})
        per_group = len(datatypes.TYPE_TESTS) * len(datatypes.PIPELINES)
        self.assertEqual(len(run.rows), 2 * 2 * per_group)
        self.assertEqual(len(calls), 2 * 2 * run.rounds * per_group)
        kv = [row for row in run.rows if row.server == "kvstore --fsync always"]
        self.assertEqual([(row.test, row.pipeline) for row in kv[:2]],
                         [("LPUSH", 1), ("RPUSH", 1)])
        self.assertIn("x redis per round 0.50-0.50; CPU per LPUSH", kv[0].note)
        self.assertIn((2, "lrange_600", 16, 3000), calls)


class ElementsTests(SynchronousTestCase):
    """The commands that build a large value for typememory."""

    def test_commands(self) -> None:
        """Each kind's command adds the given elements with 16-byte members."""
        self.assertEqual(datatypes.element_command("hash", b"k", 3, 5),
                         [b"HSET", b"k", b"m000000000000003", b"v000000000000003",
                          b"m000000000000004", b"v000000000000004"])
        self.assertEqual(datatypes.element_command("list", b"k", 0, 2),
                         [b"RPUSH", b"k", b"m000000000000000", b"m000000000000001"])
        self.assertEqual(datatypes.element_command("set", b"k", 9, 10)[0], b"SADD")
        self.assertEqual(datatypes.element_command("zset", b"k", 7, 8),
                         [b"ZADD", b"k", b"7", b"m000000000000007"])
        self.assertRaises(ValueError, datatypes.element_command, "bag", b"k", 0, 1)

    def test_requests_cover_every_element(self) -> None:
        """The pipelined writes hold BATCH commands of CHUNK elements, every element once."""
        writes = list(datatypes.load_requests("set", b"k", 25050))
        self.assertEqual([count for _, count in writes], [100, 100, 51])
        store = Store(Clock())
        session = store.new_session()
        for request, _ in writes:
            for argv in _split(request):
                session.execute(argv)
        self.assertEqual(session.execute([b"SCARD", b"k"]), 25050)

    def test_check_replies(self) -> None:
        """Exactly the expected number of integer replies passes; anything else raises."""
        datatypes.check_replies(b":100\r\n:200\r\n", 2)
        for data, count in ((b":1\r\n", 2), (b":1\r\n-ERR x\r\n", 2), (b":1\r\n:2", 2)):
            self.assertRaises(procs.ServerError, datatypes.check_replies, data, count)

    def test_load_against_a_server(self) -> None:
        """load_elements sends every batch and reads each one's replies before the next."""
        listener = socket.socket()
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        self.addCleanup(listener.close)
        got = []

        def serve() -> None:
            conn, _ = listener.accept()
            with conn:
                buffered = b""
                while True:
                    chunk = conn.recv(1 << 20)
                    if not chunk:
                        return
                    buffered += chunk
                    commands = list(_split(buffered, strict=False))
                    if commands:
                        got.extend(commands)
                        buffered = b""
                        conn.sendall(b":1\r\n" * len(commands))

        thread = threading.Thread(target=serve, daemon=True)
        thread.start()
        datatypes.load_elements(listener.getsockname()[1], "hash", 250)
        thread.join(10)
        self.assertEqual([len(argv) for argv in got], [202, 202, 102])


def _split(data: bytes, strict: bool = True):
    """Yield the argv of each whole RESP multibulk request in ``data`` (tests only)."""
    position = 0
    found = []
    while position < len(data):
        end = data.find(b"\r\n", position)
        if end < 0:
            break
        count = int(data[position + 1:end])
        position = end + 2
        argv = []
        for _ in range(count):
            end = data.find(b"\r\n", position)
            if end < 0:
                break
            size = int(data[position + 1:end])
            if end + 2 + size + 2 > len(data):
                break
            argv.append(data[end + 2:end + 2 + size])
            position = end + 2 + size + 2
        if len(argv) < count:
            if strict:
                raise ValueError("incomplete request")
            return iter(())
        found.append(argv)
    return iter(found)

