"""The sharding suite: ``twistd kvproxy --pool FILE`` (CPython) and nutcracker side by side
over the same three servers, first three kvstores (CPython, ``--fsync no``), then three
redis-servers (no persistence).

Both proxies read the same nutcracker YAML pool (ketama, fnv1a_64, hash tag ``{}``, the
three servers with a weight and a name each), so every key lands on the same server
through either; kvproxy is given ``--listen`` besides, so it listens on a port of its own.
The hit keys are SET through kvproxy (so they land where the proxies place them), and a
sample of them is read back through nutcracker before anything is measured.

Each (test, -c, -P) is measured for nutcracker and kvproxy in turn, round after round,
and each row is the median of its rounds (as the proxy and cluster suites do), with the
per-round ratio to nutcracker and each proxy's CPU per request. Tests, in this order:

- GET hit: GETs of the 10,000 preloaded keys; kvproxy has them cached after its warm-up.
- MGET (10 keys): a custom redis-benchmark command of ten random preloaded keys, which
  both proxies split per server (kvproxy through each server's cache).
- GET miss: ``-r 100000000``, nearly every key never seen: a backend read each time.
- SET: ``-r 100000 -d 32``, forwarded to the key's server.

The miss test fills kvproxy's cache with nils, and SET changes keys, so the hit and
MGET tests run first.
"""

from __future__ import annotations

import contextlib
import os
import shutil

from benchmarks import procs, redisbench
from benchmarks.suites import CPY, Run, _guard, interleaved

KVPROXY = "kvproxy --pool (CPython)"
NUTCRACKER = "nutcracker"
SHARDS = 3
POOL = "shardbench"
HASH, DISTRIBUTION, HASH_TAG = "fnv1a_64", "ketama", "{}"
# (group, backend kind): the kvstores first.
GROUPS = (("sharding over 3 kvstores", "kvstore"),
          ("sharding over 3 redis-servers", "redis"))
HIT_KEYS = 10000  # redis-benchmark's -r keys are key:%012d: all of them are preloaded
MISS_KEYSPACE = 100000000
SET_KEYSPACE = 100000
MGET_KEYS = 10
MGET = "MGET (10 keys)"
# (shown as, redis-benchmark test, -r): the order they are measured in (see above).
TESTS = (("GET hit", "get", HIT_KEYS), (MGET, "mget", HIT_KEYS),
         ("GET miss", "get", MISS_KEYSPACE), ("SET", "set", SET_KEYSPACE))
CONFIGS = ((50, 1), (50, 16))
SAMPLE = 200  # hit keys read back through nutcracker to check both place keys alike


def server_line(port: int, index: int, weight: int = 1) -> str:
    """Return a pool file's server line for shard ``index`` on 127.0.0.1:port: named
    ``shard-N``, so ketama hashes the name, not the port the run happened to get."""
    return "127.0.0.1:%d:%d shard-%d" % (port, weight, index)


def pool_yaml(listen: int, shards: list, stats_name: str = POOL) -> str:
    """Return the nutcracker YAML pool both proxies read: ``listen`` is nutcracker's port
    (kvproxy's own is given with --listen), ``shards`` the servers' ports in order."""
    lines = ["%s:" % stats_name,
             "  listen: 127.0.0.1:%d" % listen,
             "  redis: true",
             "  hash: %s" % HASH,
             '  hash_tag: "%s"' % HASH_TAG,
             "  distribution: %s" % DISTRIBUTION,
             "  auto_eject_hosts: false",
             "  servers:"]
    lines += ["   - %s" % server_line(port, index) for index, port in enumerate(shards)]
    return "\n".join(lines) + "\n"


def write_pool(path: str, listen: int, shards: list) -> str:
    """Write ``pool_yaml`` to ``path`` and return ``path``."""
    with open(path, "w") as out:
        out.write(pool_yaml(listen, shards))
    return path


def kvproxy_argv(python: str, port: int, pool_path: str, log: str) -> list:
    """Return the argv of ``twistd kvproxy --pool FILE`` listening on 127.0.0.1:port."""
    return [python, "-c", procs.TWISTD, "-n", "--pidfile", "", "--logfile", log, "kvproxy",
            "--listen", "tcp:%d:interface=127.0.0.1" % port, "--pool", pool_path]


def nutcracker_argv(pool_path: str, stats_port: int) -> list:
    """Return nutcracker's argv for the pool file (its stats port on 127.0.0.1 too)."""
    return [shutil.which("nutcracker") or "/usr/sbin/nutcracker", "-c", pool_path,
            "-s", str(stats_port), "-a", "127.0.0.1"]


def bench_argv(port: int, test: str, conns: int, pipeline: int, requests: int,
               keyspace: int) -> list:
    """Return redis-benchmark's argv for one test: its built-in ``get``/``set``, or for
    ``mget`` a custom MGET of MGET_KEYS random keys (redis-benchmark has no built-in
    MGET test; each ``__rand_int__`` is drawn on its own)."""
    if test != "mget":
        return redisbench.command(port, (test,), conns, pipeline, requests, keyspace)
    argv = redisbench.command(port, ("get",), conns, pipeline, requests, keyspace)
    at = argv.index("-t")
    del argv[at:at + 2]
    return argv + ["MGET"] + ["key:__rand_int__"] * MGET_KEYS


def bench(port: int, test: str, conns: int, pipeline: int, requests: int, keyspace: int,
          timeout: float = 180.0) -> dict:
    """Run one redis-benchmark; return its parsed row (BenchmarkError if there is none)."""
    found = redisbench.run_argv(bench_argv(port, test, conns, pipeline, requests, keyspace),
                                timeout)
    if test == "mget":  # a custom command's row is named by its whole command line
        rows = [row for name, row in found.items() if name.startswith("MGET ")]
        if rows:
            return rows[0]
    elif test.upper() in found:
        return found[test.upper()]
    raise redisbench.BenchmarkError("no %s row" % (test.upper(),))


def requests(run: Run, test: str, conns: int, pipeline: int) -> int:
    """Return -n for one test: the run's figure, a quarter of it for MGET (ten keys each,
    over up to three servers)."""
    n = run.requests(conns, pipeline)
    return n // 4 if test == "mget" else n


def rounds(run: Run, group: str, servers: list, shown: str, test: str, conns: int,
           pipeline: int, n: int, keyspace: int) -> None:
    """Measure ``servers`` (``[(label, Server)]``, nutcracker first) in turn, ``run.rounds``
    times (``suites.interleaved``); append a row each: the median, the per-round ratio to
    nutcracker, and the proxy process's CPU per request."""
    interleaved(run, group, servers, test, conns, pipeline, n, keyspace, shown=shown,
                against="nutcracker", cpu=True,
                measure=lambda server: bench(server.port, test, conns, pipeline, n, keyspace))


def check_placement(port: int, count: int = SAMPLE, total: int = HIT_KEYS) -> None:
    """Read ``count`` of the preloaded keys through the proxy on ``port``: each must be
    found (raises ServerError naming the first one that is not)."""
    step = max(1, total // count)
    for i in range(0, total, step):
        key = b"key:%012d" % i
        reply = procs.command(port, b"GET", key)
        if not reply.startswith(b"$") or reply == b"$-1":
            raise procs.ServerError("%s set through kvproxy is not found through nutcracker "
                                    "(%r): the two place keys differently" % (key, reply))


def shard_sizes(ports: list) -> list:
    """Return each server's DBSIZE."""
    sizes = []
    for port in ports:
        reply = procs.command(port, b"DBSIZE")
        sizes.append(int(reply[1:]) if reply.startswith(b":") else -1)
    return sizes


def backends(run: Run, kind: str, stack) -> list:
    """Start the group's SHARDS servers on ``stack``; return them."""
    if kind == "kvstore":
        return [stack.enter_context(run.kvstore(CPY)) for _ in range(SHARDS)]
    return [stack.enter_context(run.redis()) for _ in range(SHARDS)]


def proxies(run: Run, group: str, shards: list, stack) -> list:
    """Start nutcracker and kvproxy on ``stack`` over ``shards`` with one pool file; return
    ``[(label, Server)]``, nutcracker first (a proxy that does not start is a failed row)."""
    listen = procs.free_port()
    pool = write_pool(os.path.join(run.tmp("pool"), "pool.yml"), listen,
                      [shard.port for shard in shards])
    started = []
    port = procs.free_port()
    log = os.path.join(run.workdir, "kvproxy-pool-%d.log" % port)
    for label, server in (
            (NUTCRACKER, procs.Server(NUTCRACKER, nutcracker_argv(pool, procs.free_port()),
                                      listen, run.workdir)),
            (KVPROXY, procs.Server(KVPROXY, kvproxy_argv(procs.CPYTHON, port, pool, log),
                                   port, run.workdir))):
        try:
            started.append((label, stack.enter_context(server)))
        except (procs.ServerError, OSError) as e:
            run.failed(group, label, "all", e)
    return started


def measure_group(run: Run, group: str, kind: str) -> None:
    """Start the group's servers and proxies, preload, warm up, and measure every test."""
    with contextlib.ExitStack() as stack:
        shards = backends(run, kind, stack)
        servers = proxies(run, group, shards, stack)
        if not servers:
            return
        labels = dict(servers)
        loader = labels.get(KVPROXY) or labels[NUTCRACKER]
        run.progress("%s: preloading %d keys through %s" % (group, HIT_KEYS, loader.label))
        procs.bulk_load(loader.port, HIT_KEYS, b"key:%012d", b"x" * 32)
        sizes = shard_sizes([shard.port for shard in shards])
        run.progress("%s: keys per server %s" % (group, sizes))
        if sum(sizes) != HIT_KEYS or min(sizes) <= 0:
            raise procs.ServerError("the servers hold %s keys, not %d over all three"
                                    % (sizes, HIT_KEYS))
        if NUTCRACKER in labels:
            check_placement(labels[NUTCRACKER].port)
        for label, server in servers:  # kvproxy's cache then holds every hit key
            run.warm(label, server, ("get",), keyspace=HIT_KEYS)
        for shown, test, keyspace in TESTS:
            for conns, pipeline in CONFIGS:
                rounds(run, group, servers, shown, test, conns, pipeline,
                       requests(run, test, conns, pipeline), keyspace)


def sharding(run: Run) -> None:
    """GET hit, MGET, GET miss and SET at -c 50 -P 1 and -P 16 through kvproxy --pool and
    nutcracker over three kvstores, then over three redis-servers."""
    for group, _kind in GROUPS:
        run.references[group] = NUTCRACKER
    missing = [why for why in (
        None if shutil.which("nutcracker") or os.path.exists("/usr/sbin/nutcracker")
        else "nutcracker is not installed",
        None if procs.kvproxy_available() else "kvtwist/proxy/tap.py not in this checkout",
        None if procs.kvstore_available() else "kvtwist/serve/tap.py not in this checkout")
        if why]
    if missing:
        for group, _kind in GROUPS:
            run.failed(group, KVPROXY, "all", "; ".join(missing))
        return
    for group, kind in GROUPS:
        _guard(run, group, KVPROXY, "all",
               lambda group=group, kind=kind: measure_group(run, group, kind))
