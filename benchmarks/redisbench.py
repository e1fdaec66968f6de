"""Run redis-benchmark against one loopback server and parse its ``--csv`` output."""

from __future__ import annotations

import csv
import io
import subprocess

# redis-benchmark 7 names MSET after its key count and LRANGE after its range; the table
# uses the short names.
_TEST_NAMES = {"MSET (10 keys)": "MSET", "LRANGE_100 (first 100 elements)": "LRANGE_100",
               "LRANGE_300 (first 300 elements)": "LRANGE_300",
               "LRANGE_500 (first 500 elements)": "LRANGE_500",
               "LRANGE_600 (first 600 elements)": "LRANGE_600"}


class BenchmarkError(Exception):
    """redis-benchmark failed or printed output that is not its CSV format."""


def parse_csv(text: str) -> dict:
    """Return ``{test: {"ops": float, "p50": float|None, "p99": float|None}}`` from
    redis-benchmark 7 ``--csv`` output (older versions without latency columns give None).

    Raises BenchmarkError when no CSV header or no result row is present.
    """
    lines = [line for line in text.splitlines() if line.startswith('"')]
    if not lines or not lines[0].startswith('"test"'):
        raise BenchmarkError("no redis-benchmark CSV header in output: %r" % (text[:200],))
    results = {}
    for row in csv.DictReader(io.StringIO("\n".join(lines))):
        name = row.get("test") or ""
        try:
            ops = float(row["rps"])
        except (KeyError, TypeError, ValueError):
            raise BenchmarkError("bad rps in redis-benchmark row %r" % (row,))
        results[_TEST_NAMES.get(name, name)] = {
            "ops": ops, "p50": _float_or_none(row.get("p50_latency_ms")),
            "p99": _float_or_none(row.get("p99_latency_ms"))}
    if not results:
        raise BenchmarkError("redis-benchmark printed a header but no results")
    return results


def _float_or_none(value):
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def command(port: int, tests, clients: int, pipeline: int, requests: int,
            keyspace: int = 100000, data_size: int = 32, auth=()) -> list:
    """Return the redis-benchmark argv for one run against 127.0.0.1:port (``auth``: the
    arguments that log in, such as ``("--user", name, "-a", password)``)."""
    return ["redis-benchmark", "-h", "127.0.0.1", "-p", str(port), "-t", ",".join(tests),
            "-c", str(clients), "-P", str(pipeline), "-n", str(requests),
            "-r", str(keyspace), "-d", str(data_size)] + list(auth) + ["-q", "--csv"]


def run(port: int, tests, clients: int, pipeline: int, requests: int,
        timeout: float, keyspace: int = 100000, auth=()) -> dict:
    """Run redis-benchmark and return ``parse_csv`` of its output.

    Raises BenchmarkError if it exits non-zero or overruns ``timeout`` seconds.
    """
    return run_argv(command(port, tests, clients, pipeline, requests, keyspace, auth=auth),
                    timeout)


def run_argv(argv: list, timeout: float) -> dict:
    """Run the redis-benchmark command line ``argv`` and return ``parse_csv`` of its output.

    Raises BenchmarkError if it exits non-zero or overruns ``timeout`` seconds.
    """
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise BenchmarkError("redis-benchmark overran %.0fs: %s" % (timeout, " ".join(argv)))
    if done.returncode != 0:
        raise BenchmarkError("redis-benchmark exited %d: %s" % (
            done.returncode, (done.stderr or done.stdout).strip()[:300]))
    return parse_csv(done.stdout)
