"""The benchmark suites: each starts its servers, measures them and appends report rows."""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time

from benchmarks import procs, redisbench
from benchmarks.report import Row

SUITES = ("core", "dialects", "fsync", "memory", "restart", "proxy", "stalls", "types",
          "typememory", "acl", "cluster", "sharding", "pypy")
CONFIGS = ((50, 1), (50, 16), (1, 1))  # (-c, -P)
REDIS = "redis-server"
CPY, PYPY = "CPython", "PyPy"


class Run:
    """Shared state of one harness run: sizes, interpreters, rows, progress output."""

    def __init__(self, workdir: str, quick: bool, suites, out=sys.stderr):
        self.workdir = workdir
        self.quick = quick
        self.suites = suites
        self.out = out
        self.rows = []
        self.references = {}
        self.ceilings = {}
        self.began = time.monotonic()
        self.pythons = {CPY: procs.CPYTHON}
        if "pypy" in suites and os.path.exists(procs.PYPY):
            self.pythons[PYPY] = procs.PYPY
        elif "pypy" in suites:
            self.progress("PyPy venv %s missing: PyPy rows skipped" % procs.PYPY)
        self.loadgen_python = procs.PYPY if os.path.exists(procs.PYPY) else procs.CPYTHON
        self.keys = 100000 if quick else 1000000

    @property
    def rounds(self) -> int:
        """Return how many rounds the interleaved suites measure."""
        return 2 if self.quick else 5

    def requests(self, conns: int, pipeline: int) -> int:
        """Return redis-benchmark's -n for one (-c, -P) configuration."""
        if conns == 1:
            return 1500 if self.quick else 8000
        return (10000 if self.quick else 60000) * (4 if pipeline > 1 else 1)

    @property
    def duration(self) -> float:
        """Seconds each load-generator run lasts."""
        return 0.4 if self.quick else 1.0

    def progress(self, text: str) -> None:
        """Print one progress line with the elapsed time."""
        self.out.write("[%6.1fs] %s\n" % (time.monotonic() - self.began, text))
        self.out.flush()

    def tmp(self, name: str) -> str:
        """Return a fresh directory under the run's work directory."""
        path = os.path.join(self.workdir, "%s-%d" % (name, len(os.listdir(self.workdir))))
        os.makedirs(path)
        return path

    def failed(self, group, server, test, error, conns=None, pipeline=None, unit="ops/s"):
        """Record a measurement that could not be made, so the table shows why."""
        self.progress("  FAILED %s / %s / %s: %s" % (group, server, test, error))
        self.rows.append(Row(group, server, test, None, unit, conns, pipeline,
                             note=str(error)[:120]))

    def kvstore(self, interpreter: str, fsync: str = "no", data_dir=None, extra=()):
        """Return an unstarted kvstore Server under ``interpreter`` (``extra``: more options)."""
        port = procs.free_port()
        data_dir = data_dir or self.tmp("kvdata")
        log = os.path.join(self.workdir, "kvstore-%d.log" % port)
        return procs.Server("kvstore (%s)" % interpreter, procs.kvstore_argv(
            self.pythons[interpreter], port, data_dir, fsync, log, extra), port, self.workdir,
            ready_timeout=180.0)

    def redis(self, appendfsync=None, workdir=None):
        """Return an unstarted redis-server Server (no persistence when ``appendfsync`` is None)."""
        port = procs.free_port()
        return procs.Server(REDIS, procs.redis_argv(port, workdir or self.tmp("redis"),
                                                    appendfsync), port, self.workdir)

    def ceiling(self, interpreter: str):
        """Return an unstarted ceiling Server under ``interpreter``."""
        port = procs.free_port()
        return procs.Server("ceiling (%s)" % interpreter,
                            procs.ceiling_argv(self.pythons[interpreter], port), port,
                            self.workdir)

    def bench(self, group, label, server, tests, configs, keyspace=100000, names=None):
        """Run redis-benchmark for each (-c, -P) and append a row per test."""
        for conns, pipeline in configs:
            n = self.requests(conns, pipeline)
            self.progress("%s: %s redis-benchmark -t %s -c %d -P %d -n %d" % (
                group, label, ",".join(tests), conns, pipeline, n))
            try:
                found = redisbench.run(server.port, tests, conns, pipeline, n,
                                       timeout=120.0, keyspace=keyspace)
            except redisbench.BenchmarkError as e:
                for test in tests:
                    self.failed(group, label, (names or {}).get(test, test.upper()), e,
                                conns, pipeline)
                continue
            for test in tests:
                name = test.upper()
                got = found.get(name)
                shown = (names or {}).get(test, name)
                if got is None:
                    self.failed(group, label, shown, "no %s row" % name, conns, pipeline)
                    continue
                self.rows.append(Row(group, label, shown, got["ops"], "ops/s", conns,
                                     pipeline, got["p50"], got["p99"]))

    def warm(self, label, server, tests=("set", "get"), keyspace=100000):
        """Drive ``server`` without recording, so a JIT has compiled the hot paths (and a
        caching proxy holds the keys of ``keyspace``).

        Pipelined and one-at-a-time requests take different paths through the server
        (resp.RequestParser.drain cuts a lone request on its own), so both are driven.
        """
        for pipeline in (16, 1):
            n = self.requests(50, pipeline) // 2
            self.progress("warm-up: %s redis-benchmark -t %s -P %d -n %d" % (
                label, ",".join(tests), pipeline, n))
            try:
                redisbench.run(server.port, tests, 50, pipeline, n, timeout=120.0,
                               keyspace=keyspace)
            except redisbench.BenchmarkError as e:
                self.progress("  warm-up of %s failed: %s" % (label, e))

    def load(self, group, label, port, dialect, tests, configs, replies=""):
        """Run the Twisted load generator once over tests x configs; append a row each."""
        self.progress("%s: %s loadgen %s %s at %s, %.1fs each" % (
            group, label, dialect, ",".join(tests), _configs(configs), self.duration))
        argv = [self.loadgen_python, os.path.join(procs.ROOT, "benchmarks", "loadgen.py"),
                "--port", str(port), "--dialect", dialect, "--test", ",".join(tests),
                "--configs", _configs(configs), "--duration", str(self.duration),
                "--warmup", str(self.duration / 2)]
        if replies:
            argv += ["--replies", replies]
        budget = len(tests) * len(configs) * (self.duration * 1.5 + 20) + 30
        why = "loadgen gave no result"
        try:
            done = subprocess.run(argv, capture_output=True, text=True, timeout=budget,
                                  env=procs.child_env())
            why += ": " + (done.stderr.strip()[-200:] or "exit status %d" % done.returncode)
            results = [json.loads(line) for line in done.stdout.splitlines() if line.strip()]
        except (subprocess.TimeoutExpired, ValueError) as e:
            results = []
            why += ": %s" % (e,)
        found = {(r.get("test"), r.get("conns"), r.get("pipeline")): r for r in results}
        for conns, pipeline in configs:
            for test in tests:
                result = found.get((test, conns, pipeline))
                if result is None or "error" in result:
                    self.failed(group, label, test, result["error"] if result else why,
                                conns, pipeline)
                    continue
                note = "%d error replies" % result["errors"] if result["errors"] else ""
                self.rows.append(Row(group, label, test, result["ops"], "ops/s", conns,
                                     pipeline, result["p50"], result["p99"], note))


def _configs(configs) -> str:
    return ",".join("%dx%d" % pair for pair in configs)


def _guard(run, group, label, test, work, unit="ops/s"):
    """Run ``work()``; a failure to start or measure becomes a failed row, not a crash."""
    try:
        work()
    except (procs.ServerError, OSError, subprocess.SubprocessError) as e:
        run.failed(group, label, test, e, unit=unit)
    except Exception as e:  # a harness bug must not lose the rows measured so far
        run.failed(group, label, test, "%s: %s" % (e.__class__.__name__, e), unit=unit)


def interleaved(run: Run, group: str, servers: list, test: str, conns: int, pipeline: int,
                requests: int, keyspace: int = 100000, shown=None, against="redis",
                cpu=False, measure=None) -> None:
    """Measure ``servers`` (``[(label, Server)]``, the reference first) in turn, round after
    round, with redis-benchmark -t ``test`` (or ``measure(server)``, returning one parsed
    redis-benchmark row); append a row per server.

    Each row is the median of the server's rounds (shown as ``shown``, default the test's
    name) with the range of its per-round ratio to the reference, named ``against`` in
    the note, and with ``cpu`` its CPU per request.
    """
    name = test.upper()
    found = {label: [] for label, server in servers}
    used = {label: [] for label, server in servers}
    for round_ in range(run.rounds):
        for label, server in servers:
            run.progress("%s: round %d, %s redis-benchmark -t %s -c %d -P %d -n %d -r %d" % (
                group, round_ + 1, label, test, conns, pipeline, requests, keyspace))
            before = procs.cpu_seconds(server.pid) if cpu else {}
            try:
                if measure is not None:
                    found[label].append(measure(server))
                else:
                    got = redisbench.run(server.port, (test,), conns, pipeline, requests,
                                         timeout=120.0, keyspace=keyspace, auth=server.auth)
                    found[label].append(got[name])
            except (redisbench.BenchmarkError, KeyError) as e:
                run.progress("  %s failed: %s" % (label, e))
                found[label].append(None)
                continue
            if cpu:
                used[label].append(cpu_per_request(before, procs.cpu_seconds(server.pid),
                                                   server.pid, requests))
    base = found[servers[0][0]]
    for label, results in found.items():
        summary = round_summary(results, base)
        if summary is None:
            run.failed(group, label, shown or name, "no round measured", conns, pipeline)
            continue
        ops, middle, count, low, high = summary
        note = "median of %d" % count
        if results is not base and low is not None:
            note += "; x %s per round %.2f-%.2f" % (against, low, high)
        note += cpu_note(used[label], name)
        run.rows.append(Row(group, label, shown or name, ops, "ops/s", conns, pipeline,
                            middle["p50"], middle["p99"], note=note))


def cpu_per_request(before: dict, after: dict, pid: int, requests: int):
    """Return ``(user, system, children)`` microseconds of CPU per request between two
    ``procs.cpu_seconds`` readings of server ``pid`` (children: its child processes, such
    as kvstore's journal writer, user and system together), or None without both readings.
    """
    if pid not in before or pid not in after or requests <= 0:
        return None
    user = after[pid][0] - before[pid][0]
    system = after[pid][1] - before[pid][1]
    children = sum(sum(after[child]) - sum(before.get(child, (0.0, 0.0)))
                   for child in after if child != pid)
    scale = 1e6 / requests
    return user * scale, system * scale, children * scale


def cpu_note(readings: list, name: str = "SET") -> str:
    """Return the rows' note on CPU per ``name`` request: each part's median over the rounds."""
    measured = [reading for reading in readings if reading is not None]
    if not measured:
        return ""
    user, system, children = (statistics.median(part) for part in zip(*measured))
    note = "; CPU per %s %.1f us user + %.1f us sys" % (name, user, system)
    if children:
        note += ", journal writer %.1f us" % children
    return note


def round_summary(results: list, base: list):
    """Summarise one server's rounds against the reference's rounds of the same run.

    ``results`` and ``base`` hold one parsed redis-benchmark row (or None) per round.
    Returns None if no round was measured, else ``(median ops, the round at the median
    (upper middle), rounds measured, lowest and highest per-round ratio)``; the ratios are
    None when no round has both figures.
    """
    measured = [r for r in results if r is not None]
    if not measured:
        return None
    ratios = [r["ops"] / b["ops"] for r, b in zip(results, base) if r and b and b["ops"]]
    middle = sorted(measured, key=lambda r: r["ops"])[len(measured) // 2]
    return (statistics.median([r["ops"] for r in measured]), middle, len(measured),
            min(ratios) if ratios else None, max(ratios) if ratios else None)

def core(run: Run) -> None:
    """redis-benchmark SET/GET/MSET against redis-server, kvstore and the ceiling server."""
    group = "core (redis-benchmark)"
    run.references[group] = REDIS
    with run.redis() as server:
        run.warm(REDIS, server)
        run.bench(group, REDIS, server, ("set", "get", "mset"), CONFIGS)
    for interpreter in run.pythons:
        if "core" not in run.suites and interpreter == CPY:
            continue
        if "pypy" not in run.suites and interpreter == PYPY:
            continue
        ceiling = "ceiling (%s)" % interpreter
        kvstore = "kvstore (%s)" % interpreter
        run.ceilings[kvstore] = ceiling

        def measure_ceiling(interpreter=interpreter, ceiling=ceiling):
            with run.ceiling(interpreter) as server:
                run.warm(ceiling, server)
                run.bench(group, ceiling, server, ("set", "get"), CONFIGS)

        _guard(run, group, ceiling, "all", measure_ceiling)
        if not procs.kvstore_available():
            run.failed(group, kvstore, "all", "kvtwist/serve/tap.py not in this checkout yet")
            continue

        def measure_kvstore(interpreter=interpreter, kvstore=kvstore):
            with run.kvstore(interpreter) as server:
                run.warm(kvstore, server, ("set", "get", "mset"))
                run.bench(group, kvstore, server, ("set", "get", "mset"), CONFIGS)

        _guard(run, group, kvstore, "all", measure_kvstore)


def dialects(run: Run) -> None:
    """The Twisted load generator's text and JSON dialects, against redis-server's."""
    text, js = "text dialect (loadgen)", "JSON dialect (loadgen)"
    run.references[text] = "redis-server (inline)"
    run.references[js] = "redis-server (RESP)"
    with run.redis() as server:
        run.load(text, "redis-server (inline)", server.port, "text", ("SET", "GET", "MSET"),
                 CONFIGS, replies="resp")
        run.load(js, "redis-server (RESP)", server.port, "resp", ("SET", "GET"), CONFIGS)
    label = "kvstore (CPython)"
    if not procs.kvstore_available():
        run.failed(text, label, "all", "kvtwist/serve/tap.py not in this checkout yet")
        return

    def measure():
        with run.kvstore(CPY) as server:
            run.load(text, label, server.port, "text", ("SET", "GET", "MSET"), CONFIGS)
            run.load(js, label, server.port, "json", ("SET", "GET"), CONFIGS)

    _guard(run, text, label, "all", measure)
