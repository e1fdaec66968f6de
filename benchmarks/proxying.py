"""The proxy suite: GET through kvproxy and nutcracker, next to GET straight to kvstore."""

from __future__ import annotations

import os

from benchmarks import procs
from benchmarks.suites import CPY, Run, _guard

# redis-benchmark's -r keys are key:%012d; the hit path preloads all of them.
HIT_KEYS = 10000
MISS_KEYSPACE = 100000000  # nearly every GET a key never seen before: a cache miss
DIRECT = "kvstore direct"


def proxy(run: Run) -> None:
    """GET on the hit and miss paths: kvstore direct, through kvproxy, through nutcracker."""
    group = "proxy GET"
    run.references[group] = DIRECT
    names_hit = {"get": "GET hit"}
    names_miss = {"get": "GET miss"}
    configs = ((50, 1), (50, 16))
    if not procs.kvstore_available():
        run.failed(group, DIRECT, "GET", "kvtwist/tap.py not in this checkout yet")
        return

    def measure():
        with run.kvstore(CPY) as backend:
            run.progress("%s: preloading %d keys" % (group, HIT_KEYS))
            procs.bulk_load(backend.port, HIT_KEYS, b"key:%012d", b"x" * 32)

            def both(label, port, server):
                # One pass first so a caching proxy holds the hit keys.
                run.bench(group + " warm-up", label, server, ("get",), ((50, 16),),
                          keyspace=HIT_KEYS)
                run.rows.pop()
                run.bench(group, label, server, ("get",), configs, keyspace=HIT_KEYS,
                          names=names_hit)
                run.bench(group, label, server, ("get",), configs,
                          keyspace=MISS_KEYSPACE, names=names_miss)

            both(DIRECT, backend.port, backend)
            if procs.kvproxy_available():
                def via_kvproxy():
                    port = procs.free_port()
                    log = os.path.join(run.workdir, "kvproxy-%d.log" % port)
                    server = procs.Server("kvproxy", procs.kvproxy_argv(
                        procs.CPYTHON, port, backend.port, log), port, run.workdir)
                    with server:
                        both("kvproxy", port, server)

                _guard(run, group, "kvproxy", "GET", via_kvproxy)
            else:
                run.failed(group, "kvproxy", "GET", "kvtwist/proxytap.py not in this checkout yet")

            def via_nutcracker():
                port = procs.free_port()
                argv = procs.nutcracker_config(
                    os.path.join(run.tmp("nutcracker"), "nutcracker.yml"), port, backend.port)
                with procs.Server("nutcracker", argv, port, run.workdir) as server:
                    both("nutcracker", port, server)

            _guard(run, group, "nutcracker", "GET", via_nutcracker)

    _guard(run, group, DIRECT, "GET", measure)
