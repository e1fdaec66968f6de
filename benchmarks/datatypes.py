"""The types and typememory suites: kvstore's hashes, lists, sets and sorted sets next to
redis-server's (issue 18).

``types``: redis-benchmark's data-type tests at -c 50 -P 1 and -P 16, kvstore and
redis-server running side by side and measured in turn (``suites.interleaved``), once with
no durability (kvstore ``--fsync no``, redis-server without AOF) and once with a sync per
commit (kvstore ``--fsync always``, redis-server ``appendfsync always``); each row is the
median of the rounds with its per-round ratio and the server's CPU per command.

``typememory``: bytes per element of one 1,000,000-element hash, list, set and sorted set,
each loaded into a fresh server by pipelined 100-element commands. kvstore's figure is
its process's RSS growth (what the machine pays); its INFO used_memory (an estimate kept
by the types' ``nbytes``: what maxmemory counts) is shown next to it. redis-server's is
its used_memory growth (its allocator's count), with its RSS growth too.
"""

from __future__ import annotations

import contextlib
import socket
import time

from benchmarks import procs
from benchmarks.report import Row
from benchmarks.suites import CPY, REDIS, Run, _guard, interleaved

TYPE_TESTS = ("lpush", "rpush", "lpop", "rpop", "sadd", "hset", "spop", "zadd", "zpopmin",
              "lrange_100", "lrange_600")
# The tests that warm PyPy's JIT before the rounds (LRANGE_600 is slow and warms nothing new).
WARM_TESTS = ("lpush", "lpop", "sadd", "spop", "hset", "zadd", "zpopmin", "lrange_100")
PIPELINES = (1, 16)
# (kvstore --fsync, redis-server appendfsync: None for no AOF at all)
POLICIES = (("no", None), ("always", "always"))

MEMBER = b"m%015d"  # 16-byte hash fields, list elements, set and sorted-set members
VALUE = b"v%015d"   # 16-byte hash values
KINDS = (("hash", "16 B fields, 16 B values"), ("list", "16 B elements"),
         ("set", "16 B members"), ("zset", "16 B members, integer scores"))
CHUNK = 100         # elements per loading command
BATCH = 100         # commands per pipelined write


def type_requests(run: Run, test: str, pipeline: int) -> int:
    """Return redis-benchmark's -n for one data-type test: 20,000 at -P 1 (4,000 with
    ``--quick``), three times as many pipelined, a quarter of that for LRANGE_600 (each
    request reads 600 elements)."""
    requests = 4000 if run.quick else 20000
    if pipeline > 1:
        requests *= 3
    if test == "lrange_600":
        requests //= 4
    return requests


def types(run: Run) -> None:
    """redis-benchmark's data-type tests against kvstore and redis-server, interleaved rounds."""
    for fsync, appendfsync in POLICIES:
        group = "types, fsync %s" % fsync
        reference = REDIS if appendfsync is None else "%s appendfsync %s" % (REDIS, appendfsync)
        run.references[group] = reference
        if not procs.kvstore_available():
            run.failed(group, "kvstore", "all", "kvtwist/serve/tap.py not in this checkout yet")
            continue
        with contextlib.ExitStack() as stack:
            try:
                servers = [(reference, stack.enter_context(run.redis(appendfsync=appendfsync)))]
                for interpreter in run.pythons:
                    label = "kvstore --fsync %s" % fsync
                    if interpreter != CPY:
                        label += " (%s)" % interpreter
                    server = stack.enter_context(run.kvstore(interpreter, fsync=fsync))
                    if interpreter != CPY:
                        run.warm(label, server, tests=WARM_TESTS)
                    servers.append((label, server))
            except (procs.ServerError, OSError) as e:
                run.failed(group, reference, "all", e)
                continue
            for pipeline in PIPELINES:
                for test in TYPE_TESTS:
                    interleaved(run, group, servers, test, 50, pipeline,
                                type_requests(run, test, pipeline), against="redis", cpu=True)


# -- typememory -------------------------------------------------------------------------


def element_command(kind: str, key: bytes, first: int, last: int) -> list:
    """Return the argv adding elements ``first`` to ``last - 1`` to a ``kind`` value."""
    members = [MEMBER % i for i in range(first, last)]
    if kind == "hash":
        args = [b"HSET", key]
        for i, member in zip(range(first, last), members):
            args += (member, VALUE % i)
        return args
    if kind == "list":
        return [b"RPUSH", key] + members
    if kind == "set":
        return [b"SADD", key] + members
    if kind == "zset":
        args = [b"ZADD", key]
        for i, member in zip(range(first, last), members):
            args += (b"%d" % i, member)
        return args
    raise ValueError("unknown kind %r" % (kind,))


def load_requests(kind: str, key: bytes, count: int):
    """Yield pipelined writes, each the RESP of up to BATCH commands of up to CHUNK
    elements, and the number of commands in it, that build a ``count``-element value."""
    commands = []
    for first in range(0, count, CHUNK):
        commands.append(procs.encode(element_command(kind, key, first,
                                                     min(count, first + CHUNK))))
        if len(commands) == BATCH:
            yield b"".join(commands), len(commands)
            commands = []
    if commands:
        yield b"".join(commands), len(commands)


def check_replies(data: bytes, commands: int) -> None:
    """Raise ServerError unless ``data`` is exactly ``commands`` integer replies."""
    lines = data.split(b"\r\n")
    if lines[-1] != b"" or len(lines) - 1 != commands or not all(
            line.startswith(b":") for line in lines[:-1]):
        raise procs.ServerError("unexpected reply while loading: %r" % (data[:80],))


def load_elements(port: int, kind: str, count: int, key: bytes = b"big",
                  timeout: float = 600.0) -> float:
    """Build a ``count``-element ``kind`` value at ``key`` over one connection; return the
    seconds it took. Raises ServerError on any reply other than an integer."""
    began = time.monotonic()
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        for request, commands in load_requests(kind, key, count):
            sock.sendall(request)
            data = b""
            while data.count(b"\r\n") < commands:
                chunk = sock.recv(65536)
                if not chunk:
                    raise procs.ServerError("server closed the connection during the load")
                data += chunk
            check_replies(data, commands)
    return time.monotonic() - began


def typememory(run: Run) -> None:
    """Bytes per element of run.keys-element values: kvstore RSS (and its used_memory
    estimate) against redis-server's used_memory growth (and RSS growth)."""
    group = "typememory (%d elements)" % run.keys
    reference = "redis-server used_memory"
    run.references[group] = reference
    per = float(run.keys)
    for kind, what in KINDS:
        test = "%s (%s)" % (kind, what)

        def measure_redis(kind=kind, test=test):
            with run.redis() as server:
                used = procs.info_field(server.port, "used_memory")
                rss = procs.rss_bytes(server.pid)
                run.progress("%s: loading a %s into redis-server" % (group, kind))
                load_elements(server.port, kind, run.keys)
                used = procs.info_field(server.port, "used_memory") - used
                rss = procs.rss_bytes(server.pid) - rss
            run.rows.append(Row(group, reference, test, used / per, "bytes/element"))
            run.rows.append(Row(group, "redis-server RSS", test, rss / per, "bytes/element"))

        _guard(run, group, reference, test, measure_redis, unit="bytes/element")
        for interpreter in run.pythons:
            label = "kvstore (%s)" % interpreter
            if not procs.kvstore_available():
                run.failed(group, label + " RSS", test, "kvtwist/serve/tap.py not in this "
                           "checkout yet", unit="bytes/element")
                continue

            def measure_kvstore(kind=kind, test=test, interpreter=interpreter, label=label):
                with run.kvstore(interpreter) as server:
                    used = procs.info_field(server.port, "used_memory")
                    rss = procs.rss_bytes(server.pid)
                    run.progress("%s: loading a %s into %s" % (group, kind, label))
                    took = load_elements(server.port, kind, run.keys)
                    used = procs.info_field(server.port, "used_memory") - used
                    rss = procs.rss_bytes(server.pid) - rss
                run.rows.append(Row(group, label + " RSS", test, rss / per, "bytes/element",
                                    note="load %.1fs" % took))
                run.rows.append(Row(group, label + " used_memory (estimate)", test,
                                    used / per, "bytes/element"))

            _guard(run, group, label + " RSS", test, measure_kvstore, unit="bytes/element")
