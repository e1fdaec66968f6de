"""Tests for benchmarks/sharding.py: the pool file, the argvs, the rounds and the suite's
order (no timing), and one --quick run of the suite end to end."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile

from twisted.trial.unittest import SkipTest, SynchronousTestCase

from benchmarks import __main__ as bench_main
from benchmarks import procs, redisbench, sharding, suites
from kvtwist.proxy.pool import parse_pool
from tests.benchmarks.test_datatypes import FakeServer, quiet_run

CSV_HEADER = ('"test","rps","avg_latency_ms","min_latency_ms","p50_latency_ms",'
              '"p95_latency_ms","p99_latency_ms","max_latency_ms"\n')


class PoolFileTests(SynchronousTestCase):
    """The one YAML pool both proxies read."""

    def test_kvproxy_reads_it(self) -> None:
        """kvproxy's own pool parser reads the file as ketama, fnv1a_64, tag {} over three
        named servers of weight 1, listening where nutcracker listens."""
        pool = parse_pool(sharding.pool_yaml(7000, [7001, 7002, 7003]))
        self.assertEqual((pool.name, pool.listen, pool.hash, pool.hash_tag),
                         ("shardbench", "127.0.0.1:7000", "fnv1a_64", "{}"))
        self.assertFalse(pool.auto_eject_hosts)
        self.assertEqual([(s.host, s.port, s.weight, s.name) for s in pool.servers],
                         [("127.0.0.1", 7001, 1, "shard-0"), ("127.0.0.1", 7002, 1, "shard-1"),
                          ("127.0.0.1", 7003, 1, "shard-2")])

    def test_server_line(self) -> None:
        """A server line is nutcracker's host:port:weight name."""
        self.assertEqual(sharding.server_line(6379, 2, 3), "127.0.0.1:6379:3 shard-2")

    def test_write_pool(self) -> None:
        """write_pool writes pool_yaml to the path it returns."""
        path = os.path.join(tempfile.mkdtemp(), "pool.yml")
        self.addCleanup(shutil.rmtree, os.path.dirname(path))
        self.assertEqual(sharding.write_pool(path, 1, [2, 3, 4]), path)
        with open(path) as f:
            self.assertEqual(f.read(), sharding.pool_yaml(1, [2, 3, 4]))


class ArgvTests(SynchronousTestCase):
    """The argvs of the proxies and of redis-benchmark."""

    def test_kvproxy_argv(self) -> None:
        """kvproxy gets the pool file and a --listen of its own on loopback."""
        argv = sharding.kvproxy_argv("python", 7100, "/tmp/pool.yml", "/tmp/log")
        self.assertEqual(argv[argv.index("--pool") + 1], "/tmp/pool.yml")
        self.assertEqual(argv[argv.index("--listen") + 1], "tcp:7100:interface=127.0.0.1")
        self.assertIn("kvproxy", argv)

    def test_nutcracker_argv(self) -> None:
        """nutcracker gets the same pool file and its stats port on loopback."""
        argv = sharding.nutcracker_argv("/tmp/pool.yml", 7200)
        self.assertEqual(argv[argv.index("-c") + 1], "/tmp/pool.yml")
        self.assertEqual(argv[argv.index("-s") + 1], "7200")
        self.assertEqual(argv[argv.index("-a") + 1], "127.0.0.1")

    def test_builtin_tests(self) -> None:
        """GET and SET are redis-benchmark's built-in tests with -r."""
        argv = sharding.bench_argv(7000, "get", 50, 16, 1000, 10000)
        self.assertEqual(argv[argv.index("-t") + 1], "get")
        self.assertEqual(argv[argv.index("-r") + 1], "10000")
        self.assertEqual(argv[argv.index("-P") + 1], "16")

    def test_mget_is_a_custom_command(self) -> None:
        """MGET is a custom command of ten random keys, without -t, with -r."""
        argv = sharding.bench_argv(7000, "mget", 50, 1, 1000, 10000)
        self.assertNotIn("-t", argv)
        self.assertEqual(argv[argv.index("-r") + 1], "10000")
        self.assertEqual(argv[-11:], ["MGET"] + ["key:__rand_int__"] * 10)

    def test_mget_requests(self) -> None:
        """MGET makes a quarter of the run's requests; GET and SET all of them."""
        run = quiet_run(("sharding",))
        self.addCleanup(run.out.close)
        self.assertEqual(sharding.requests(run, "get", 50, 1), run.requests(50, 1))
        self.assertEqual(sharding.requests(run, "mget", 50, 16), run.requests(50, 16) // 4)


class Done:
    """What subprocess.run returns: an exit status and the output."""

    def __init__(self, stdout: str, returncode: int = 0) -> None:
        self.stdout = stdout
        self.stderr = ""
        self.returncode = returncode


class BenchTests(SynchronousTestCase):
    """bench runs redis-benchmark once and picks its row."""

    def test_custom_row(self) -> None:
        """The MGET row is found under its whole command line."""
        text = CSV_HEADER + '"MGET key:__rand_int__ key:__rand_int__","1000.0","1","0",' \
                            '"0.5","1","2.5","3"\n'
        self.patch(subprocess, "run", lambda argv, **kw: Done(text))
        self.assertEqual(sharding.bench(1, "mget", 50, 1, 100, 10),
                         {"ops": 1000.0, "p50": 0.5, "p99": 2.5})

    def test_builtin_row(self) -> None:
        """The GET row is found by its name."""
        text = CSV_HEADER + '"GET","2000.0","1","0","0.5","1","2.5","3"\n'
        self.patch(subprocess, "run", lambda argv, **kw: Done(text))
        self.assertEqual(sharding.bench(1, "get", 50, 1, 100, 10)["ops"], 2000.0)

    def test_failures(self) -> None:
        """A non-zero exit, or no row for the test, is a BenchmarkError."""
        self.patch(subprocess, "run", lambda argv, **kw: Done("boom", 1))
        self.assertRaises(redisbench.BenchmarkError, sharding.bench, 1, "get", 50, 1, 100, 10)
        text = CSV_HEADER + '"SET","2000.0","1","0","0.5","1","2.5","3"\n'
        self.patch(subprocess, "run", lambda argv, **kw: Done(text))
        self.assertRaises(redisbench.BenchmarkError, sharding.bench, 1, "get", 50, 1, 100, 10)


class RoundsTests(SynchronousTestCase):
    """rounds measures the proxies in turn and reduces each to its median row."""

    def test_rows_against_nutcracker(self) -> None:
        """Each proxy gets a median row; kvproxy's note has its per-round ratio to
        nutcracker and its CPU per request."""
        calls = []

        def bench(port, test, conns, pipeline, n, keyspace):
            calls.append(port)
            return {"ops": 1000.0 * port, "p50": 1.0, "p99": 2.0}

        self.patch(sharding, "bench", bench)
        ticks = iter(range(100))
        self.patch(procs, "cpu_seconds", lambda pid: {pid: (next(ticks), 0.0)})
        run = quiet_run(("sharding",))
        self.addCleanup(run.out.close)
        servers = [(sharding.NUTCRACKER, FakeServer("n", 1)),
                   (sharding.KVPROXY, FakeServer("k", 2))]
        sharding.rounds(run, "g", servers, "GET hit", "get", 50, 1, 1000000, 10)
        self.assertEqual(calls, [1, 2] * run.rounds)
        self.assertEqual([(r.server, r.test, r.value) for r in run.rows],
                         [(sharding.NUTCRACKER, "GET hit", 1000.0),
                          (sharding.KVPROXY, "GET hit", 2000.0)])
        self.assertNotIn("per round", run.rows[0].note)
        self.assertIn("x nutcracker per round 2.00-2.00", run.rows[1].note)
        self.assertIn("CPU per GET 1.0 us user", run.rows[1].note)

    def test_failed_rounds(self) -> None:
        """A proxy with no round measured gets a failed row."""

        def bench(port, *args):
            if port == 2:
                raise redisbench.BenchmarkError("refused")
            return {"ops": 10.0, "p50": 1.0, "p99": 2.0}

        self.patch(sharding, "bench", bench)
        self.patch(procs, "cpu_seconds", lambda pid: {})
        run = quiet_run(("sharding",))
        self.addCleanup(run.out.close)
        sharding.rounds(run, "g", [("n", FakeServer("n", 1)), ("k", FakeServer("k", 2))],
                        "SET", "set", 50, 16, 100, 10)
        self.assertEqual([(r.server, r.value) for r in run.rows], [("n", 10.0), ("k", None)])


class SuiteTests(SynchronousTestCase):
    """The suite's order of work, its checks and its registration."""

    def fake_group(self, sizes=(3000, 3000, 4000), placed=True):
        """Run measure_group with fake servers; return (run, the events in order)."""
        events = []
        self.patch(sharding, "backends",
                   lambda run, kind, stack: [FakeServer("s", 11 + i) for i in range(3)])
        self.patch(sharding, "proxies", lambda run, group, shards, stack: [
            (sharding.NUTCRACKER, FakeServer(sharding.NUTCRACKER, 1)),
            (sharding.KVPROXY, FakeServer(sharding.KVPROXY, 2))])
        self.patch(procs, "bulk_load", lambda port, *a: events.append(("load", port)))
        self.patch(sharding, "shard_sizes", lambda ports: list(sizes))

        def check(port):
            events.append(("check", port))
            if not placed:
                raise procs.ServerError("placed elsewhere")

        self.patch(sharding, "check_placement", check)
        run = quiet_run(("sharding",))
        self.addCleanup(run.out.close)
        self.patch(run, "warm", lambda label, server, tests, keyspace: events.append(
            ("warm", label, tests, keyspace)))
        self.patch(sharding, "rounds", lambda run, group, servers, shown, test, conns,
                   pipeline, n, keyspace: events.append((shown, pipeline, keyspace)))
        return run, events

    def test_order(self) -> None:
        """Keys are loaded through kvproxy, checked through nutcracker, both proxies
        warmed, then hits, MGET, misses and SET at -P 1 and -P 16, nutcracker first."""
        run, events = self.fake_group()
        sharding.measure_group(run, "g", "kvstore")
        self.assertEqual(events[:4], [
            ("load", 2), ("check", 1), ("warm", sharding.NUTCRACKER, ("get",), 10000),
            ("warm", sharding.KVPROXY, ("get",), 10000)])
        self.assertEqual(events[4:], [
            ("GET hit", 1, 10000), ("GET hit", 16, 10000), (sharding.MGET, 1, 10000),
            (sharding.MGET, 16, 10000), ("GET miss", 1, 100000000),
            ("GET miss", 16, 100000000), ("SET", 1, 100000), ("SET", 16, 100000)])

    def test_keys_missing_from_the_servers(self) -> None:
        """Servers that do not hold every preloaded key stop the group before measuring."""
        run, events = self.fake_group(sizes=(5000, 0, 5000))
        self.assertRaises(procs.ServerError, sharding.measure_group, run, "g", "redis")
        self.assertEqual(events, [("load", 2)])

    def test_placement_disagrees(self) -> None:
        """Keys that nutcracker does not find where kvproxy put them stop the group."""
        run, events = self.fake_group(placed=False)
        self.assertRaises(procs.ServerError, sharding.measure_group, run, "g", "redis")
        self.assertEqual(events, [("load", 2), ("check", 1)])

    def test_check_placement(self) -> None:
        """check_placement reads every step-th hit key and fails on the first nil."""
        asked = []

        def command(port, *args):
            asked.append(args[1])
            return b"$-1" if args[1] == b"key:%012d" % 4 else b"$32"

        self.patch(procs, "command", command)
        sharding.check_placement(1, count=2, total=4)
        self.assertEqual(asked, [b"key:%012d" % 0, b"key:%012d" % 2])
        self.assertRaises(procs.ServerError, sharding.check_placement, 1, count=5, total=5)

    def test_guarded_groups(self) -> None:
        """A group that fails becomes a failed row and the next group still runs; both
        groups are measured against nutcracker."""
        seen = []

        def measure(run, group, kind):
            seen.append(kind)
            raise procs.ServerError("no start")

        self.patch(sharding, "measure_group", measure)
        self.patch(procs, "kvproxy_available", lambda: True)
        self.patch(procs, "kvstore_available", lambda: True)
        self.patch(shutil, "which", lambda name: "/usr/sbin/" + name)
        run = quiet_run(("sharding",))
        self.addCleanup(run.out.close)
        sharding.sharding(run)
        self.assertEqual(seen, ["kvstore", "redis"])
        self.assertEqual([(r.group, r.value, r.note) for r in run.rows],
                         [(group, None, "no start") for group, _ in sharding.GROUPS])
        self.assertEqual(set(run.references.values()), {sharding.NUTCRACKER})

    def test_no_nutcracker(self) -> None:
        """Without nutcracker each group gets one failed row saying so, and nothing starts."""
        run = quiet_run(("sharding",))
        self.addCleanup(run.out.close)
        self.patch(sharding, "measure_group", lambda *a: self.fail("measured"))
        self.patch(procs, "kvproxy_available", lambda: True)
        self.patch(procs, "kvstore_available", lambda: True)
        self.patch(shutil, "which", lambda name: None)
        self.patch(os.path, "exists", lambda path: False)
        sharding.sharding(run)
        self.assertEqual([(r.group, r.value, r.note) for r in run.rows],
                         [(group, None, "nutcracker is not installed")
                          for group, _ in sharding.GROUPS])

    def test_registered(self) -> None:
        """The suite is named sharding and python -m benchmarks runs it."""
        self.assertIn("sharding", suites.SUITES)
        self.assertIn(("sharding", sharding.sharding), bench_main.RUNNERS)


class QuickRunTests(SynchronousTestCase):
    """``python -m benchmarks --quick --suite sharding`` against real servers."""

    def test_quick_rows(self) -> None:
        """A --quick run measures every test at -P 1 and -P 16 through both proxies over
        both kinds of servers, with no failed row."""
        if os.environ.get("KVTWIST_SLOW", "") in ("", "0"):
            raise SkipTest("a minute of benchmark: runs with KVTWIST_SLOW=1 (make test-slow)")
        for tool in ("nutcracker", "redis-benchmark", "redis-server"):
            if shutil.which(tool) is None and not os.path.exists("/usr/sbin/" + tool):
                raise SkipTest("%s is not installed" % (tool,))
        if not os.path.exists(procs.CPYTHON):
            raise SkipTest("the servers run under %s, which is missing" % (procs.CPYTHON,))
        results = tempfile.mkdtemp(prefix="kvtwist-shardbench-")
        self.addCleanup(shutil.rmtree, results, True)
        done = subprocess.run(
            [sys.executable, "-m", "benchmarks", "--quick", "--suite", "sharding",
             "--results", results], capture_output=True, text=True, timeout=900,
            cwd=procs.ROOT, env=procs.child_env())
        self.assertEqual(done.returncode, 0, done.stderr[-2000:])
        with open(os.path.join(results, "latest.md")) as f:
            table = f.read()
        rows = [line.split(" | ") for line in table.splitlines()
                if line.startswith("| sharding")]
        found = {(cells[0][2:], cells[1], cells[2], cells[4]) for cells in rows}
        want = {(group, server, shown, pipeline)
                for group, _ in sharding.GROUPS
                for server in (sharding.NUTCRACKER, sharding.KVPROXY)
                for shown, _, _ in sharding.TESTS for pipeline in ("1", "16")}
        self.assertEqual(found, want)
        self.assertEqual(len(rows), len(want))
        self.assertNotIn("failed", table)
