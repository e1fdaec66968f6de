"""Tests for benchmarks.cluster's pure parts: the argvs and the per-round reduction (no
servers, no timing)."""

from __future__ import annotations

import os
import tempfile

from twisted.trial.unittest import SynchronousTestCase

from benchmarks import cluster, redisbench, suites


class ArgvTests(SynchronousTestCase):
    """The argvs of the nodes, the proxy and redis-benchmark."""

    def test_bench_argv(self) -> None:
        """Straight to the cluster redis-benchmark gets --cluster; through kvproxy not."""
        direct = cluster.bench_argv(7000, "get", 50, 16, 1000, 100, True)
        self.assertEqual(direct[-1], "--cluster")
        self.assertEqual(direct[direct.index("-P") + 1], "16")
        self.assertNotIn("--cluster", cluster.bench_argv(7000, "get", 50, 1, 1000, 100, False))

    def test_node_and_proxy_argv(self) -> None:
        """A node is cluster-enabled without persistence; kvproxy is seeded by a node."""
        node = cluster.node_argv(7000, "/tmp/x")
        self.assertEqual(node[node.index("--cluster-enabled") + 1], "yes")
        self.assertEqual(node[node.index("--cluster-config-file") + 1], "/tmp/x/nodes-7000.conf")
        proxy = cluster.proxy_argv("python", 7100, 7000, "/tmp/log")
        self.assertEqual(proxy[proxy.index("--cluster") + 1], "127.0.0.1:7000")
        self.assertIn("tcp:7100:interface=127.0.0.1", proxy)

    def test_suite_registered(self) -> None:
        """The suite is named cluster."""
        self.assertIn("cluster", suites.SUITES)


class RoundsTests(SynchronousTestCase):
    """rounds measures the targets in turn and reduces each to its median row."""

    def test_rows(self) -> None:
        """A row per target, the second with its ratio to the first per round."""
        calls = []
        rates = {1: iter([100.0, 300.0]), 2: iter([50.0, 150.0])}

        def bench(port, test, conns, pipeline, requests, keyspace, mode):
            calls.append((port, mode))
            return {"ops": next(rates[port]), "p50": 1.0, "p99": 2.0}

        self.patch(cluster, "bench", bench)
        run = suites.Run(tempfile.gettempdir(), True, ("cluster",), out=open(os.devnull, "w"))
        self.addCleanup(run.out.close)
        cluster.rounds(run, [("direct", 1, True), ("proxy", 2, False)], "get", 50, 1, 10, 5)
        self.assertEqual(calls, [(1, True), (2, False), (1, True), (2, False)])
        direct, proxy = run.rows
        self.assertEqual((direct.value, proxy.value), (200.0, 100.0))
        self.assertEqual(proxy.note, "median of 2; x direct per round 0.50-0.50")

    def test_failed_rounds(self) -> None:
        """A target with no round measured gets a failed row."""
        def bench(*args):
            raise redisbench.BenchmarkError("down")

        self.patch(cluster, "bench", bench)
        run = suites.Run(tempfile.gettempdir(), True, ("cluster",), out=open(os.devnull, "w"))
        self.addCleanup(run.out.close)
        cluster.rounds(run, [("direct", 1, True)], "set", 50, 16, 10, 5)
        self.assertIsNone(run.rows[0].value)
