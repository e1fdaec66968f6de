"""The fsync, memory and restart suites: kvstore's durability costs next to redis-server's."""

from __future__ import annotations

import contextlib

from benchmarks import procs
from benchmarks.report import Row
from benchmarks.suites import CPY, Run, _guard, interleaved

POLICIES = ("no", "everysec", "always")
KEY_FORMAT = b"k%015d"    # 16-byte keys
VALUE_FORMAT = b"v%031d"  # 32-byte values


def fsync(run: Run) -> None:
    """SET at -c 50 -P 1 and -c 1 per --fsync policy, next to the matching appendfsync.

    kvstore runs under each interpreter of the run (PyPy when the pypy suite is selected).
    """
    for policy in POLICIES:
        group = "fsync %s" % policy
        redis_label = "redis-server appendfsync %s" % policy
        kv_label = "kvstore --fsync %s" % policy
        run.references[group] = redis_label

        def measure_redis(policy=policy, group=group, redis_label=redis_label):
            with run.redis(appendfsync=policy) as server:
                run.bench(group, redis_label, server, ("set",), ((50, 1), (1, 1)))

        _guard(run, group, redis_label, "SET", measure_redis)
        if not procs.kvstore_available():
            run.failed(group, kv_label, "SET", "kvtwist/serve/tap.py not in this checkout yet")
            continue

        for interpreter in run.pythons:
            label = kv_label if interpreter == CPY else "%s (%s)" % (kv_label, interpreter)

            def measure_kvstore(policy=policy, group=group, label=label,
                                interpreter=interpreter):
                with run.kvstore(interpreter, fsync=policy) as server:
                    if interpreter != CPY:
                        run.warm(label, server, tests=("set",))
                    run.bench(group, label, server, ("set",), ((50, 1), (1, 1)))

            _guard(run, group, label, "SET", measure_kvstore)


def fsync_rounds(run: Run) -> None:
    """SET -c 50 -P 1 with fsync on every commit, servers measured in turn, several rounds.

    One figure per server is at the mercy of a shared VM's moment; here redis-server
    (appendfsync always), kvstore with each journal writer and the ceiling server (which
    keeps nothing: the most a Twisted server does at all) run side by side and are
    measured round after round, and each row is the median, with the range of its
    per-round ratio to redis-server.
    """
    group = "fsync always, %d rounds" % run.rounds
    reference = "redis-server appendfsync always"
    run.references[group] = reference
    with contextlib.ExitStack() as stack:
        try:
            servers = [(reference, stack.enter_context(run.redis(appendfsync="always")))]
            for interpreter in run.pythons:
                suffix = "" if interpreter == CPY else " (%s)" % interpreter
                for label, server in (
                        ("kvstore --fsync always" + suffix,
                         run.kvstore(interpreter, fsync="always")),
                        ("kvstore --fsync always --journal-writer thread" + suffix,
                         run.kvstore(interpreter, fsync="always",
                                     extra=("--journal-writer", "thread"))),
                        ("ceiling, no durability" + suffix, run.ceiling(interpreter))):
                    servers.append((label, stack.enter_context(server)))
                    if interpreter != CPY:
                        run.warm(label, server, tests=("set",))
        except (procs.ServerError, OSError) as e:
            run.failed(group, reference, "SET", e, 50, 1)
            return
        interleaved(run, group, servers, "set", 50, 1, run.requests(50, 1) * 2 // 3,
                    against="redis", cpu=True)


def memory(run: Run) -> None:
    """Bytes per key after loading run.keys keys: kvstore RSS vs redis used_memory."""
    group = "memory (%d keys)" % run.keys
    test = "16 B keys, 32 B values"
    reference = "redis-server used_memory"
    run.references[group] = reference

    def measure_redis():
        with run.redis() as server:
            empty_used = procs.info_field(server.port, "used_memory")
            empty_rss = procs.rss_bytes(server.pid)
            run.progress("%s: loading %d keys into redis-server" % (group, run.keys))
            procs.bulk_load(server.port, run.keys, KEY_FORMAT, VALUE_FORMAT)
            used = procs.info_field(server.port, "used_memory") - empty_used
            rss = procs.rss_bytes(server.pid) - empty_rss
        run.rows.append(Row(group, reference, test, used / run.keys, "bytes/key"))
        run.rows.append(Row(group, "redis-server RSS", test, rss / run.keys, "bytes/key"))

    _guard(run, group, reference, test, measure_redis, unit="bytes/key")
    for interpreter in run.pythons:
        label = "kvstore (%s) RSS" % interpreter
        if interpreter != CPY and "pypy" not in run.suites:
            continue
        if not procs.kvstore_available():
            run.failed(group, label, test, "kvtwist/serve/tap.py not in this checkout yet",
                       unit="bytes/key")
            continue

        def measure_kvstore(interpreter=interpreter, label=label):
            with run.kvstore(interpreter) as server:
                empty = procs.rss_bytes(server.pid)
                run.progress("%s: loading %d keys into %s" % (group, run.keys, label))
                took = procs.bulk_load(server.port, run.keys, KEY_FORMAT, VALUE_FORMAT)
                grown = procs.rss_bytes(server.pid) - empty
            run.rows.append(Row(group, label, test, grown / run.keys, "bytes/key",
                                note="load %.1fs" % took))

        _guard(run, group, label, test, measure_kvstore, unit="bytes/key")


def restart(run: Run) -> None:
    """Seconds from process start to PING with run.keys keys recovered from disk."""
    group = "restart (%d keys)" % run.keys
    test = "start to PONG, data loaded"
    reference = "redis-server AOF everysec"
    run.references[group] = reference

    def measure(label, make):
        first = make()
        with first:
            run.progress("%s: loading %d keys into %s" % (group, run.keys, label))
            procs.bulk_load(first.port, run.keys, KEY_FORMAT, VALUE_FORMAT)
        again = make()
        with again:
            size = procs.command(again.port, "DBSIZE")
        note = "" if size == b":%d" % run.keys else "DBSIZE after restart %r" % (size,)
        run.rows.append(Row(group, label, test, again.ready_after, "s", note=note))
        run.progress("%s: %s ready after %.2fs" % (group, label, again.ready_after))

    redis_dir = run.tmp("redis-aof")
    _guard(run, group, reference, test, lambda: measure(
        reference, lambda: run.redis(appendfsync="everysec", workdir=redis_dir)), unit="s")
    label = "kvstore (CPython) --fsync everysec"
    if not procs.kvstore_available():
        run.failed(group, label, test, "kvtwist/serve/tap.py not in this checkout yet", unit="s")
        return
    data_dir = run.tmp("kv-restart")
    _guard(run, group, label, test, lambda: measure(
        label, lambda: run.kvstore(CPY, fsync="everysec", data_dir=data_dir)), unit="s")
