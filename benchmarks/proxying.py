"""The proxy suite: GET through kvproxy and nutcracker, next to GET straight to kvstore."""

from __future__ import annotations

import contextlib
import os

from benchmarks import procs
from benchmarks.suites import CPY, Run, _guard, interleaved

# redis-benchmark's -r keys are key:%012d; the hit path preloads all of them.
HIT_KEYS = 10000
MISS_KEYSPACE = 100000000  # nearly every GET a key never seen before: a cache miss
DIRECT = "kvstore direct"
PATHS = (("GET hit", HIT_KEYS), ("GET miss", MISS_KEYSPACE))


def proxy(run: Run) -> None:
    """GET on the hit and miss paths: kvstore direct, through kvproxy, through nutcracker.

    The three are measured in turn, round after round (as the fsync rounds are), and each
    row is the median of its rounds: one pass each, minutes apart, would compare the VM's
    moments more than the servers.
    """
    group = "proxy GET"
    run.references[group] = DIRECT
    if not procs.kvstore_available():
        run.failed(group, DIRECT, "GET", "kvtwist/serve/tap.py not in this checkout yet")
        return

    def measure():
        with contextlib.ExitStack() as stack:
            backend = stack.enter_context(run.kvstore(CPY))
            run.progress("%s: preloading %d keys" % (group, HIT_KEYS))
            procs.bulk_load(backend.port, HIT_KEYS, b"key:%012d", b"x" * 32)
            servers = [(DIRECT, backend)]
            for label, start in (("kvproxy", _kvproxy), ("nutcracker", _nutcracker)):
                try:
                    servers.append((label, stack.enter_context(start(run, backend.port))))
                except (procs.ServerError, OSError) as e:
                    run.failed(group, label, "GET", e)
            for label, server in servers:
                run.warm(label, server, ("get",), keyspace=HIT_KEYS)  # a cache then holds them
            for test, keyspace in PATHS:
                for conns, pipeline in ((50, 1), (50, 16)):
                    interleaved(run, group, servers, "get", conns, pipeline,
                                run.requests(conns, pipeline), keyspace, shown=test,
                                against="direct")

    _guard(run, group, DIRECT, "GET", measure)


def _kvproxy(run: Run, backend: int) -> procs.Server:
    if not procs.kvproxy_available():
        raise procs.ServerError("kvtwist/proxy/tap.py not in this checkout yet")
    port = procs.free_port()
    log = os.path.join(run.workdir, "kvproxy-%d.log" % port)
    return procs.Server("kvproxy", procs.kvproxy_argv(procs.CPYTHON, port, backend, log),
                        port, run.workdir)


def _nutcracker(run: Run, backend: int) -> procs.Server:
    port = procs.free_port()
    argv = procs.nutcracker_config(
        os.path.join(run.tmp("nutcracker"), "nutcracker.yml"), port, backend)
    return procs.Server("nutcracker", argv, port, run.workdir)
