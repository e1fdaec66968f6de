"""The soak test: kvstore and kvproxy under mixed load through a kill -9, plus its self-checks.

The soak itself runs only with ``KVTWIST_SOAK=1`` (``make test-slow``); its size comes
from the environment (see the settings below). The self-checks always run.
"""

from __future__ import annotations

import json
import os
import platform
import random
import re
import shutil
import signal
import socket
import tempfile
import zlib
from time import monotonic
from unittest import skipIf

from twisted.internet import defer, reactor, task
from twisted.internet.testing import StringTransport
from twisted.internet.threads import deferToThread
from twisted.trial.unittest import SynchronousTestCase, TestCase

from tests.procs import free_port, start_kvproxy, start_kvstore, twistd_command
from tests.soak.client import MEDIUM_SIZE, Pool, SoakProtocol, roles
from tests.soak.figures import Figures, by_second, percentile
from tests.soak.model import (
    HEADER, Error, Key, ProtocolError, ReplyReader, Status, Streamed, Values, encode)


def _setting(name: str, default: float) -> float:
    return float(os.environ.get(name) or default)


ENABLED = os.environ.get("KVTWIST_SOAK", "") not in ("", "0")
SECONDS = _setting("KVTWIST_SOAK_SECONDS", 60)  # how long the clients run
CLIENTS = int(_setting("KVTWIST_SOAK_CLIENTS", 200))
BIG_BYTES = int(_setting("KVTWIST_SOAK_BIG_BYTES", 16 << 20))  # each big value's size
BIG_FRACTION = _setting("KVTWIST_SOAK_BIG_FRACTION", 0.02)  # of the clients, writing them
P99_LIMIT_MS = _setting("KVTWIST_SOAK_P99_MS", 50)  # 0: report the p99, do not assert it
SEED = int(_setting("KVTWIST_SOAK_SEED", random.randrange(1 << 30)))
REPORT = os.environ.get("KVTWIST_SOAK_REPORT")  # also write the figures (JSON) there
LOGS = os.environ.get("KVTWIST_SOAK_LOGS")  # also write each server's log in this directory
DOWNTIME = 1.0  # seconds kvstore stays dead before its restart
SETTLE = 2.0  # seconds after writes are acknowledged again that still count as the kill
WARMUP = 2.0  # first seconds of the run, left out of the latency figures (JIT, connects)
DRAIN = 30.0  # seconds the clients get to finish after the run
STORE_ARGS = ("--fsync", "always", "--journal-writer", "process")


def save_logs(directory: str, processes: list) -> None:
    """Write each server's log to ``directory`` as <n>-<plugin>.log, in start order."""
    os.makedirs(directory, exist_ok=True)
    for number, process in enumerate(processes):
        name = "%d-%s.log" % (number, os.path.basename(process.plugin))
        with open(os.path.join(directory, name), "w") as handle:
            handle.write(process.log)


_STARTING = re.compile(r"twistd \S+ \((\S+) (\S+)\) starting up")


def interpreter_of(log: str) -> str:
    """The interpreter (executable's name and version) a twistd log says it runs under."""
    match = _STARTING.search(log)
    if match is None:
        return "unknown"
    return "%s %s" % (os.path.basename(match.group(1)), match.group(2))


def _stop_all(processes: list) -> None:
    for process in processes:
        process.kill()


def _stat(pid) -> list:
    """The fields of /proc/<pid>/stat after the command name ([] if it is gone)."""
    try:
        with open("/proc/%s/stat" % (pid,)) as stat:
            return stat.read().rpartition(")")[2].split()
    except OSError:
        return []


def steal_ticks() -> tuple:
    """(steal, total) CPU ticks of the machine so far, from /proc/stat."""
    with open("/proc/stat") as stat:
        ticks = [int(field) for field in stat.readline().split()[1:]]
    return (ticks[7] if len(ticks) > 7 else 0), sum(ticks)


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a live process and its children (kvstore's journal
    writer), from /proc; O(number of processes)."""
    pids = [pid] + [other for other in os.listdir("/proc")
                    if other.isdigit() and _stat(other)[1:2] == [str(pid)]]
    ticks = 0
    for each in pids:
        fields = _stat(each)
        if fields:
            ticks += int(fields[11]) + int(fields[12])
    return ticks / os.sysconf("SC_CLK_TCK")


def _call(port: int, *argv: bytes, timeout: float = 60.0):
    """Send one command on a new blocking connection; return its reply."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    try:
        sock.sendall(encode(*argv))
        reader = ReplyReader()
        while True:
            data = sock.recv(1 << 16)
            if not data:
                raise ConnectionError("connection closed before the reply")
            replies = reader.feed(data)
            if replies:
                return replies[0]
    finally:
        sock.close()


def proxy_info(port: int) -> dict:
    """kvproxy's INFO fields."""
    reply = _call(port, b"INFO")
    fields = {}
    for line in reply.decode("utf-8", "replace").splitlines():
        name, colon, value = line.partition(":")
        if colon:
            fields[name] = value
    return fields


def read_back(port: int, pool: Pool):
    """Read every client's keys from the kvstore at ``port``; return (keys read, problems).

    Each must hold its last acknowledged write or a later unacknowledged one.
    """
    sock = socket.create_connection(("127.0.0.1", port), timeout=60)
    reader = ReplyReader()
    problems = []
    count = 0
    try:
        for client in pool.clients:
            sock.sendall(b"".join(encode(b"GET", key.name) for key in client.keys))
            replies = []
            while len(replies) < len(client.keys):
                data = sock.recv(1 << 16)
                if not data:
                    raise ConnectionError("kvstore closed the connection")
                replies += reader.feed(data)
            for key, reply in zip(client.keys, replies):
                count += 1
                problem = pool.values.check(client.cid, key, reply, key.sent)
                if problem is not None:
                    problems.append("%s (client %d)" % (problem[1], client.cid))
    finally:
        sock.close()
    return count, problems


@skipIf(not ENABLED, "the soak runs with KVTWIST_SOAK=1 (make test-slow)")
class SoakTests(TestCase):
    """kvstore and kvproxy under a mixed load of many clients, through a kill -9."""

    timeout = SECONDS + DRAIN + 210  # the hard deadline: start-ups, drain, read-back

    @defer.inlineCallbacks
    def test_soak(self):
        """Clients mixing small and big values, pipelines, slow reads and reconnects see
        only their own replies, every acknowledged write survives kill -9, and small
        requests' p99 latency stays under the limit outside the kill window."""
        data = tempfile.mkdtemp(prefix="kvtwist-soak-")
        self.addCleanup(shutil.rmtree, data, True)
        processes = []
        self.addCleanup(_stop_all, processes)
        starting = []  # restarts under way in a thread: cleanup waits for them first
        self.addCleanup(lambda: defer.DeferredList(starting))

        def start(*args, **kwargs):
            d = deferToThread(start_kvstore, data, *(STORE_ARGS + args), **kwargs)
            d.addCallback(lambda process: processes.append(process) or process)
            starting.append(d)
            return d

        port = free_port()
        store = start_kvstore(data, *STORE_ARGS, port=port)
        processes.append(store)
        proxy = start_kvproxy(port)
        processes.append(proxy)
        proxy.wait_for_line("invalidation tracking on")
        pool = Pool(reactor, {"proxy": proxy.port, "direct": port}, CLIENTS, BIG_BYTES,
                    BIG_FRACTION, SEED)
        self.addCleanup(lambda: pool.closed or pool.close())
        figures = pool.figures
        machine = {"load_generator_cpu_s": -sum(os.times()[:2])}  # and other figures
        steal = steal_ticks()
        started = monotonic()
        pool.start()
        yield task.deferLater(reactor, SECONDS / 2, lambda: None)
        machine["kvstore_cpu_s"] = cpu_seconds(store.pid)
        os.kill(store.pid, signal.SIGKILL)
        figures.kill_at = monotonic()  # a request sent from now on cannot reach it
        yield deferToThread(store.kill)  # reaps it
        yield task.deferLater(reactor, DOWNTIME, lambda: None)
        began = monotonic()
        store = yield start(port=port)
        restart = monotonic() - began
        yield task.deferLater(reactor, max(0.0, started + SECONDS - monotonic()), lambda: None)
        ended = monotonic()
        machine["load_generator_cpu_s"] += sum(os.times()[:2])
        machine["kvstore_cpu_s"] += cpu_seconds(store.pid)
        machine["kvproxy_cpu_s"] = cpu_seconds(proxy.pid)
        steal = [now - before for now, before in zip(steal_ticks(), steal)]
        machine["steal_percent"] = 100.0 * steal[0] / max(1, steal[1])
        pool.stop()
        drain = reactor.callLater(DRAIN, pool.close)
        yield pool.finished
        if drain.active():
            drain.cancel()
        drained = monotonic() - ended
        info = yield deferToThread(proxy_info, proxy.port)
        yield deferToThread(proxy.stop)
        yield deferToThread(store.kill)
        began = monotonic()
        store = yield start()
        final_start = monotonic() - began
        keys_read, lost_writes = yield deferToThread(read_back, store.port, pool)
        yield deferToThread(store.stop)
        machine["data_dir_mb"] = sum(os.path.getsize(os.path.join(where, name))
                                 for where, _, names in os.walk(data) for name in names) / 1e6
        recovered = figures.recovered_at()
        window = (figures.kill_at, recovered + SETTLE if recovered else float("inf"))
        machine["servers"] = interpreter_of(proxy.log)
        if LOGS:
            save_logs(LOGS, processes)
        report = self.report(pool, started, ended, window, restart, drained, final_start,
                             keys_read, lost_writes, info, machine)
        self.check(report, lost_writes)

    def report(self, pool, started, ended, window, restart, drained, final_start,
               keys_read, lost_writes, info, machine) -> dict:
        """The run's figures, printed and written to KVTWIST_SOAK_REPORT if set."""
        figures = pool.figures
        report = {
            "interpreter": "%s %s" % (platform.python_implementation(),  # the load generator's
                                      platform.python_version()),
            "clients": CLIENTS, "seconds": round(ended - started, 2), "seed": SEED,
            "started_monotonic": round(started, 3),  # to line up with the servers' logs
            "big_bytes": BIG_BYTES, "big_fraction": BIG_FRACTION,
            "roles": dict((role, roles(CLIENTS, BIG_FRACTION).count(role))
                          for role in set(roles(CLIENTS, BIG_FRACTION))),
            "kill_at_s": round(figures.kill_at - started, 2),
            "restart_s": round(restart, 2),
            "recovery_s": dict((path, round(at - figures.kill_at, 2))
                               for path, at in figures.first_ack.items()),
            "kill_window_s": [round(edge - started, 2) for edge in window],
            "servers": machine.pop("servers"),  # the servers' interpreter (KVTWIST_SERVER_PYTHON)
            "machine": dict((name, round(value, 1)) for name, value in machine.items()),
            "load_average": os.getloadavg(),
            "drain_s": round(drained, 2), "final_start_s": round(final_start, 2),
            "keys_read_back": keys_read, "lost_writes": len(lost_writes),
            "proxy": dict((name, info.get(name)) for name in (
                "backend_errors", "backend_forwarded", "backend_fetches", "cache_hits",
                "cache_misses", "cache_invalidations", "invalidation_state")),
        }
        report.update(figures.summary(started, WARMUP, window))
        text = json.dumps(report, indent=1, sort_keys=True)
        print("\nsoak figures:\n" + text)
        if REPORT:
            with open(REPORT, "w") as out:
                out.write(text + "\n")
        return report

    def check(self, report: dict, lost_writes: list) -> None:
        failures = []
        if report["violations"]:
            failures.append("replies not matching the client's own model: %s; e.g. %s"
                            % (report["violations"], report["violation_examples"][:5]))
        outside = dict((kind, count) for kind, count in report["incidents"].items()
                       if kind.endswith("_outside"))
        if outside:
            failures.append("errors or disconnects outside the kill window: %s; e.g. %s"
                            % (outside, report["incidents_outside_examples"][:5]))
        if lost_writes:
            failures.append("%d acknowledged writes lost, e.g. %s"
                            % (len(lost_writes), lost_writes[:5]))
        if len(report["recovery_s"]) < 2:
            failures.append("writes were not acknowledged again on both paths after the kill")
        small = report["small"]
        if not small["count"]:
            failures.append("no small request was measured outside the kill window")
        elif P99_LIMIT_MS and small["p99_ms"] > P99_LIMIT_MS:
            failures.append("small requests' p99 %.1f ms > %g ms outside the kill window "
                            "(p50 %.1f ms, max %.1f ms, %d requests)"
                            % (small["p99_ms"], P99_LIMIT_MS, small["p50_ms"],
                               small["max_ms"], small["count"]))
        if failures:
            self.fail("\n".join(failures) + "\nfigures: " + json.dumps(report, sort_keys=True))


def _chop(data: bytes, cuts) -> list:
    cuts = sorted(set(cuts))
    return [data[a:b] for a, b in zip([0] + cuts, cuts + [len(data)])]


class ReplyReaderTests(SynchronousTestCase):
    """tests.soak.model.ReplyReader."""

    replies = (b"+OK\r\n-ERR backend timeout\r\n:42\r\n$5\r\nhello\r\n$-1\r\n$0\r\n\r\n"
               b"*3\r\n$1\r\na\r\n$-1\r\n$2\r\nbc\r\n*0\r\n*-1\r\n")
    expected = [Status(b"OK"), Error("ERR backend timeout"), 42, b"hello", None, b"",
                [b"a", None, b"bc"], [], None]

    def feed(self, reader, pieces) -> list:
        out = []
        for piece in pieces:
            out += reader.feed(piece)
        return out

    def test_anySplit(self) -> None:
        """Replies split at any point, or byte by byte, are read the same."""
        for cut in range(len(self.replies) + 1):
            got = self.feed(ReplyReader(), _chop(self.replies, [cut]))
            self.assertEqual(got, self.expected, cut)
        bytewise = [self.replies[i:i + 1] for i in range(len(self.replies))]
        self.assertEqual(self.feed(ReplyReader(), bytewise), self.expected)

    def test_streamed(self) -> None:
        """A bulk of stream_min bytes or more becomes its length, head and body CRC."""
        body = bytes(range(256)) * 2
        data = b"$512\r\n" + body + b"\r\n+OK\r\n"
        for cuts in ([], [3], [10, 40], [517], [518, 519], list(range(0, len(data), 7))):
            got = self.feed(ReplyReader(stream_min=100), _chop(data, cuts))
            self.assertEqual(len(got), 2, cuts)
            self.assertIsInstance(got[0], Streamed)
            self.assertEqual((got[0].length, got[0].head, got[0].crc),
                             (512, body[:HEADER], zlib.crc32(body[HEADER:])), cuts)
            self.assertEqual(got[1], Status(b"OK"))

    def test_garbage(self) -> None:
        """Bytes that are no reply raise ProtocolError."""
        for data in (b"!x\r\n", b"$abc\r\n", b"$3\r\nabcde\r\n", b"x" * 100):
            self.assertRaises(ProtocolError, ReplyReader().feed, data)


class ModelTests(SynchronousTestCase):
    """tests.soak.model.Key and Values."""

    def test_key(self) -> None:
        """A read may see the last acknowledged write, or a later one sent before it."""
        key = Key(7, 1)
        self.assertTrue(key.accepts(0, 0))
        first, second = key.write(), key.write()
        self.assertEqual((first, second), (1, 2))
        self.assertTrue(key.accepts(0, 2) and key.accepts(2, 2))
        self.assertFalse(key.accepts(2, 1))
        key.acknowledge(1)
        self.assertFalse(key.accepts(0, 2))
        self.assertEqual((key.acked, key.unsure), (1, [2]))
        key.acknowledge(2)
        self.assertEqual((key.acked, key.unsure), (2, []))
        self.assertFalse(key.accepts(1, 2))

    def test_check(self) -> None:
        """check() accepts the expected value and names foreign, stale and torn ones."""
        values = Values(4096)
        key = Key(3, 2)
        other = Key(4, 2)
        seq = key.write()
        key.acknowledge(seq)
        value = values.make(3, 2, seq, key.size_of(seq))
        self.assertIsNone(values.check(3, key, value, seq))
        self.assertEqual(values.check(3, key, values.make(4, 2, 1, 60), seq)[0], "foreign")
        self.assertEqual(values.check(3, key, values.make(3, 1, 1, 60), seq)[0], "foreign")
        self.assertEqual(values.check(4, other, value, 0)[0], "foreign")
        self.assertEqual(values.check(3, key, Status(b"OK"), seq)[0], "foreign")
        self.assertEqual(values.check(3, key, None, seq)[0], "stale")
        torn = value[:HEADER] + bytes(len(value) - HEADER)
        self.assertEqual(values.check(3, key, torn, seq)[0], "corrupt")

    def test_checkStreamed(self) -> None:
        """A big value is checked by its length, head and body CRC."""
        size = 1 << 20
        values = Values(size)
        key = Key(1, 12, size)
        seq = key.write()
        value = values.make(1, 12, seq, size)
        streamed = ReplyReader().feed(b"$%d\r\n%s\r\n" % (size, value))[0]
        self.assertIsNone(values.check(1, key, streamed, seq))
        streamed.crc ^= 1
        self.assertEqual(values.check(1, key, streamed, seq)[0], "corrupt")


class ClientTests(SynchronousTestCase):
    """tests.soak.client: roles and reply checking on a fake connection."""

    def connect(self, role: str = "simple"):
        clock = task.Clock()
        pool = Pool(clock, {"proxy": 1, "direct": 2}, 20, 4096, 0.05, 1,
                    values=Values(MEDIUM_SIZE))
        client = next(each for each in pool.clients if each.role == role)
        conn = SoakProtocol(client)
        conn.makeConnection(StringTransport())
        return clock, pool, client, conn

    def answer(self, client, pending) -> bytes:
        """The right replies, in RESP, to the requests ``pending``."""
        out = []
        for op, subject, context, _ in pending:
            if op == "SET":
                out.append(b"+OK\r\n")
            elif op == "ECHO":
                out.append(b"$%d\r\n%s\r\n" % (len(subject), subject))
            else:
                # A read sees the last write sent before it.
                keys, seqs = (subject, context) if op == "MGET" else ([subject], [context])
                bulks = b""
                for key, seq in zip(keys, seqs):
                    if seq:
                        value = client.values.make(client.cid, key.index, seq, key.size_of(seq))
                        bulks += b"$%d\r\n%s\r\n" % (len(value), value)
                    else:
                        bulks += b"$-1\r\n"
                out.append(b"*%d\r\n%s" % (len(keys), bulks) if op == "MGET" else bulks)
        return b"".join(out)

    def test_roles(self) -> None:
        """200 clients with 2% big ones: 4 big, 10 slow, 20 churning, 50 pipelining."""
        counts = dict((role, roles(200, 0.02).count(role)) for role in set(roles(200, 0.02)))
        self.assertEqual(counts, {"big": 4, "slow": 10, "churn": 20, "pipeline": 50,
                                  "simple": 116})

    def test_rightReplies(self) -> None:
        """Right replies to pipelined batches are no violation and their latencies count."""
        clock, pool, client, conn = self.connect("pipeline")
        for _ in range(5):
            clock.advance(1)
            batch = list(client.pending)
            self.assertTrue(batch)
            conn.dataReceived(self.answer(client, batch))
            self.assertEqual(client.pending, type(client.pending)())
        self.assertEqual(pool.figures.violations, {})
        self.assertGreater(len(pool.figures.seconds["proxy"]), 10)
        self.assertGreater(pool.figures.acks, 0)

    def test_swappedReplies(self) -> None:
        """Two echo replies in the wrong order are two violations."""
        clock, pool, client, conn = self.connect()
        client.send([client.echo_request(), client.echo_request()])
        first, second = client.pending[0][1], client.pending[1][1]
        conn.dataReceived(b"$%d\r\n%s\r\n$%d\r\n%s\r\n"
                          % (len(second), second, len(first), first))
        self.assertEqual(pool.figures.violations, {"foreign": 2})

    def test_errorLeavesWriteUnsure(self) -> None:
        """A SET answered by an error stays possible; a later read may see it or not."""
        clock, pool, client, conn = self.connect()
        key = client.small[0]
        client.send([client.set_request(key)])
        conn.dataReceived(b"-ERR backend connection lost\r\n")
        self.assertEqual((key.acked, key.unsure), (0, [1]))
        for reply in (b"$-1\r\n", self.answer(client, [("GET", key, 1, 0.0)])):
            client.send([client.get_request(key)])
            conn.dataReceived(reply)
        self.assertEqual(pool.figures.violations, {})
        self.assertEqual([incident[0] for incident in pool.figures.incidents], ["error"])

    def test_lostConnection(self) -> None:
        """A connection lost with requests in flight is an incident; the client reconnects."""
        clock, pool, client, conn = self.connect()
        client.send([client.set_request(client.small[1])])
        conn.connectionLost()
        self.assertEqual([incident[0] for incident in pool.figures.incidents], ["lost"])
        self.assertIsNone(client.conn)
        self.assertEqual(len(clock.getDelayedCalls()), 1)

    def test_finalProbe(self) -> None:
        """On stop, a client sends its probe and is done once it is answered."""
        clock, pool, client, conn = self.connect()
        clock.advance(0)
        conn.dataReceived(self.answer(client, list(client.pending)))
        pool.stop()
        self.assertEqual([request[0] for request in client.pending], ["GET", "ECHO"])
        conn.dataReceived(self.answer(client, list(client.pending)))
        self.assertTrue(conn.transport.disconnecting)
        conn.connectionLost()
        self.assertTrue(client.done)


class FiguresTests(SynchronousTestCase):
    """tests.soak.figures."""

    def test_percentile(self) -> None:
        """Nearest-rank percentiles."""
        ordered = list(range(1, 101))
        self.assertEqual([percentile(ordered, f) for f in (0.5, 0.99, 1.0)], [50, 99, 100])
        self.assertEqual(percentile([], 0.99), 0.0)

    def test_window(self) -> None:
        """Latencies and incidents meeting the kill window or the warm-up are set apart."""
        figures = Figures()

        class Client:
            cid, path = 1, "proxy"

        for sent_at, seconds in ((1.0, 0.5), (11.0, 0.01), (19.5, 1.0), (30.0, 0.02)):
            figures.latency("proxy", sent_at, seconds)
        figures.error(20.5, 21.0, Client, "GET", "ERR backend connection lost")
        figures.error(40.0, 40.1, Client, "GET", "ERR backend timeout")
        summary = figures.summary(0.0, 2.0, (20.0, 25.0))
        self.assertEqual(summary["small"], {"count": 2, "p50_ms": 10.0, "p99_ms": 20.0,
                                            "max_ms": 20.0})
        self.assertEqual(summary["small_proxy_kill_window"]["count"], 1)
        self.assertEqual(summary["small_proxy_warmup"]["count"], 1)
        self.assertEqual(summary["incidents"], {"error_in_window": 1, "error_outside": 1})

    def test_byKind(self) -> None:
        """Latencies outside the window and warm-up are also summed up per path, command
        and kind of client."""
        figures = Figures()
        figures.latency("proxy", 10.0, 0.010, "GET simple")
        figures.latency("proxy", 11.0, 0.030, "GET simple")
        figures.latency("direct", 12.0, 0.020, "ECHO pipeline")
        figures.latency("direct", 1.0, 0.5, "ECHO pipeline")  # in the warm-up
        summary = figures.summary(0.0, 2.0, None)
        self.assertEqual(summary["small_by_kind"], {
            "proxy GET simple": {"count": 2, "p50_ms": 10.0, "p99_ms": 30.0, "max_ms": 30.0},
            "direct ECHO pipeline": {"count": 1, "p50_ms": 20.0, "p99_ms": 20.0,
                                     "max_ms": 20.0}})

    def test_bySecond(self) -> None:
        """Each whole second since the start gets its requests' count, p99 and maximum."""
        samples = [(100.2, 0.001), (100.9, 0.003), (102.5, 0.040)]
        self.assertEqual(by_second(samples, 100.0),
                         ["+0 s: 2, p99 3.0, max 3.0", "+2 s: 1, p99 40.0, max 40.0"])
        figures = Figures()
        for sent_at, seconds in samples:
            figures.latency("direct", sent_at, seconds)
        self.assertEqual(figures.summary(100.0, 0.0, None)["small_by_second"],
                         by_second(samples, 100.0))


class ServerInterpreterTests(SynchronousTestCase):
    """The soak's servers may run under another interpreter than its load generator."""

    def test_serverPython(self) -> None:
        """KVTWIST_SERVER_PYTHON names the interpreter whose twistd the servers run under."""
        other = tempfile.mkdtemp(prefix="kvtwist-python-")
        self.addCleanup(shutil.rmtree, other, True)
        python = os.path.join(other, "python")
        self.patch(os, "environ", dict(os.environ, KVTWIST_SERVER_PYTHON=python))
        self.assertEqual(twistd_command(), [python, "-c",
                                            "from twisted.scripts.twistd import run; run()"])
        open(os.path.join(other, "twistd"), "w").close()
        self.assertEqual(twistd_command(), [os.path.join(other, "twistd")])

    def test_interpreterOfLog(self) -> None:
        """The servers' interpreter is read from twistd's start-up line."""
        log = ("2026-12-05T02:58:13+0000 [twisted.scripts._twistd_unix.UnixAppLogger#info] "
               "twistd 25.5.0 (/work/main/.venv-pypy/bin/pypy3 3.9.16) starting up.\n")
        self.assertEqual(interpreter_of(log), "pypy3 3.9.16")
        self.assertEqual(interpreter_of("nothing here"), "unknown")

    def test_saveLogs(self) -> None:
        """KVTWIST_SOAK_LOGS receives each server's log, named by start order and plugin."""
        where = os.path.join(tempfile.mkdtemp(prefix="kvtwist-logs-"), "logs")
        self.addCleanup(shutil.rmtree, os.path.dirname(where), True)

        class Process:
            def __init__(self, plugin, log):
                self.plugin, self.log = plugin, log
        save_logs(where, [Process("kvstore", "store log\n"), Process("kvproxy", "proxy log\n")])
        self.assertEqual(sorted(os.listdir(where)), ["0-kvstore.log", "1-kvproxy.log"])
        with open(os.path.join(where, "1-kvproxy.log")) as handle:
            self.assertEqual(handle.read(), "proxy log\n")
