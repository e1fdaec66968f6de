"""The cluster suite: GET and SET on a three-primary Redis Cluster, by redis-benchmark's
own ``--cluster`` mode straight to the nodes, and by plain redis-benchmark through
``kvproxy --cluster`` in front of the same cluster.

The two are measured in turn, round after round, and each row is the median of its
rounds (as the proxy suite does). Through kvproxy, GETs of keys it has cached are answered
without a node; redis-benchmark's GETs here read the keys its SETs wrote.
"""

from __future__ import annotations

import contextlib
import os
import select
import shutil
import socket
import subprocess

from benchmarks import procs, redisbench
from benchmarks.report import Row
from benchmarks.suites import Run, _guard, round_summary

GROUP = "cluster (redis-benchmark)"
DIRECT = "cluster direct (--cluster)"
PROXY = "kvproxy --cluster (CPython)"
TESTS = ("set", "get")
CONFIGS = ((50, 1), (50, 16))
NODES = 3


def node_port() -> int:
    """A free loopback port whose cluster bus port (+10000) is free too."""
    return procs.free_port(10000)


def node_argv(port: int, workdir: str) -> list:
    """The argv of one cluster-enabled redis-server without persistence."""
    return ["redis-server", "--port", str(port), "--bind", "127.0.0.1",
            "--cluster-enabled", "yes", "--cluster-config-file",
            os.path.join(workdir, "nodes-%d.conf" % port), "--save", "", "--appendonly",
            "no", "--dir", workdir, "--daemonize", "no"]


def proxy_argv(python: str, port: int, seed: int, log: str) -> list:
    """The argv of ``twistd kvproxy --cluster`` on 127.0.0.1:port, seeded by ``seed``."""
    return [python, "-c", procs.TWISTD, "-n", "--pidfile", "", "--logfile", log, "kvproxy",
            "--listen", "tcp:%d:interface=127.0.0.1" % port,
            "--cluster", "127.0.0.1:%d" % seed]


def bench_argv(port: int, test: str, conns: int, pipeline: int, requests: int,
               keyspace: int, cluster: bool) -> list:
    """redis-benchmark's argv for one test, with ``--cluster`` straight to the nodes."""
    argv = redisbench.command(port, (test,), conns, pipeline, requests, keyspace)
    return argv + ["--cluster"] if cluster else argv


def bench(port: int, test: str, conns: int, pipeline: int, requests: int, keyspace: int,
          cluster: bool, timeout: float = 120.0) -> dict:
    """One redis-benchmark run; its parsed row for ``test`` (BenchmarkError if none)."""
    argv = bench_argv(port, test, conns, pipeline, requests, keyspace, cluster)
    found = redisbench.run_argv(argv, timeout).get(test.upper())
    if found is None:
        raise redisbench.BenchmarkError("no %s row" % (test.upper(),))
    return found


def create(ports: list, timeout: float = 60.0) -> None:
    """Join the nodes with ``redis-cli --cluster create`` and wait for cluster_state:ok
    on each."""
    done = subprocess.run(
        ["redis-cli", "--cluster", "create"] + ["127.0.0.1:%d" % port for port in ports]
        + ["--cluster-replicas", "0", "--cluster-yes"], capture_output=True, text=True,
        timeout=timeout)
    if done.returncode != 0:
        raise procs.ServerError("redis-cli --cluster create: %s" % (done.stdout[-300:],))
    for _ in range(int(timeout / 0.05)):
        if all(_state_ok(port, b"CLUSTER", b"INFO") for port in ports):
            return
        select.select([], [], [], 0.05)
    raise procs.ServerError("the cluster did not reach cluster_state:ok")


def _state_ok(port: int, *argv) -> bool:
    """Whether ``argv``'s reply (CLUSTER INFO, or kvproxy's INFO) says cluster_state:ok."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(procs.encode(argv))
        data = b""
        while True:
            at = data.find(b"cluster_state:")
            if (at >= 0 and data.find(b"\r\n", at) >= 0) or (
                    data.startswith(b"-") and data.endswith(b"\r\n")):
                break
            chunk = sock.recv(65536)
            if not chunk or len(data) > 1 << 20:
                break
            data += chunk
    return b"cluster_state:ok" in data


def rounds(run: Run, targets: list, test: str, conns: int, pipeline: int,
           requests: int, keyspace: int) -> None:
    """Measure ``targets`` (``[(label, port, cluster mode)]``, the reference first) in
    turn, ``run.rounds`` times; append a row each: the median, with the per-round ratio
    to the reference in the note."""
    found = {label: [] for label, port, cluster in targets}
    for round_ in range(run.rounds):
        for label, port, cluster in targets:
            run.progress("%s: round %d, %s redis-benchmark%s -t %s -c %d -P %d -n %d" % (
                GROUP, round_ + 1, label, " --cluster" if cluster else "", test, conns,
                pipeline, requests))
            try:
                found[label].append(bench(port, test, conns, pipeline, requests, keyspace,
                                          cluster))
            except redisbench.BenchmarkError as e:
                run.progress("  %s failed: %s" % (label, e))
                found[label].append(None)
    base = found[targets[0][0]]
    for label, results in found.items():
        summary = round_summary(results, base)
        if summary is None:
            run.failed(GROUP, label, test.upper(), "no round measured", conns, pipeline)
            continue
        ops, middle, count, low, high = summary
        note = "median of %d" % (count,)
        if results is not base and low is not None:
            note += "; x direct per round %.2f-%.2f" % (low, high)
        run.rows.append(Row(GROUP, label, test.upper(), ops, "ops/s", conns, pipeline,
                            middle["p50"], middle["p99"], note=note))


def cluster(run: Run) -> None:
    """GET and SET at -c 50 -P 1 and -P 16: redis-benchmark --cluster straight to three
    primaries, and redis-benchmark through kvproxy --cluster."""
    run.references[GROUP] = DIRECT
    if shutil.which("redis-cli") is None:
        run.failed(GROUP, DIRECT, "all", "redis-cli is not on PATH")
        return
    if not procs.kvproxy_available():
        run.failed(GROUP, PROXY, "all", "kvtwist/proxy/tap.py not in this checkout yet")
        return

    def measure():
        with contextlib.ExitStack() as stack:
            workdir = run.tmp("cluster")
            ports = [node_port() for _ in range(NODES)]
            for port in ports:
                stack.enter_context(procs.Server("cluster node", node_argv(port, workdir),
                                                 port, run.workdir))
            run.progress("%s: joining %d primaries" % (GROUP, NODES))
            create(ports)
            port = procs.free_port()
            log = os.path.join(run.workdir, "kvproxy-cluster-%d.log" % port)
            stack.enter_context(procs.Server(PROXY, proxy_argv(procs.CPYTHON, port,
                                                               ports[0], log),
                                             port, run.workdir))
            _wait_mapped(port)
            targets = [(DIRECT, ports[0], True), (PROXY, port, False)]
            keyspace = 100000
            for label, target, mode in targets:  # warm-up: the proxy's JIT and cache
                for pipeline in (16, 1):
                    n = run.requests(50, pipeline) // 2
                    run.progress("warm-up: %s -P %d -n %d" % (label, pipeline, n))
                    try:
                        bench(target, "set", 50, pipeline, n, keyspace, mode)
                        bench(target, "get", 50, pipeline, n, keyspace, mode)
                    except redisbench.BenchmarkError as e:
                        run.progress("  warm-up of %s failed: %s" % (label, e))
            for test in TESTS:
                for conns, pipeline in CONFIGS:
                    rounds(run, targets, test, conns, pipeline,
                           run.requests(conns, pipeline), keyspace)

    _guard(run, GROUP, PROXY, "all", measure)


def _wait_mapped(port: int, attempts: int = 400) -> None:
    """Wait until kvproxy has read the slot map (its INFO says cluster_state:ok)."""
    for _ in range(attempts):
        try:
            if _state_ok(port, b"INFO"):
                return
        except OSError:
            pass
        select.select([], [], [], 0.05)
    raise procs.ServerError("kvproxy --cluster did not read the slot map")
