"""INFO: Redis 7.0's sections and field names, plus kvtwist's own ``# Journal`` section.

Values are in Redis's style: integers, 0/1 flags, ``ok``/``err``; never a Python repr.
The engine is pure: the serve layer may give the store ``rss_provider`` (a function
returning the process's resident bytes) and ``config_file``; without them those fields
are 0 and empty.
"""

from __future__ import annotations

import binascii
import itertools
import os
import platform
import sys

import kvtwist
from kvtwist.engine.types import TYPES
from kvtwist.engine.config import text_of
from kvtwist.engine.table import PARAMS, register

try:
    import resource
except ImportError:  # not on every platform: the CPU section is then empty
    resource = None

# Order of Redis 7.0's INFO sections; "default" leaves out commandstats and latencystats.
SECTIONS = ("server", "clients", "memory", "persistence", "stats", "replication", "cpu",
            "modules", "commandstats", "errorstats", "latencystats", "cluster", "keyspace",
            "journal")
NOT_DEFAULT = frozenset(["commandstats", "latencystats"])
TITLES = {"cpu": "CPU"}

def _blocked_clients(store) -> int:
    blocking = getattr(store, "blocking", None)  # engine/blocking.py, once a client blocks
    return 0 if blocking is None else blocking.count()


def used_memory(store) -> int:
    """Return the estimated bytes of the data: the meter maxmemory compares with (keys,
    values, typed values' own estimates and a per-key overhead; see keyspace.Meter). O(1)."""
    databases = getattr(store, "databases", None)
    if databases is None:
        return 0
    measure = getattr(store, "clients_memory", None)  # clients' buffers (serve/limits.py)
    return databases.meter.used + (measure() if measure is not None else 0)


def human(size: int) -> str:
    """Format bytes as Redis's bytesToHuman does (B, K, M, G, T)."""
    if size < 1024:
        return "%dB" % size
    for unit, power in (("K", 1), ("M", 2), ("G", 3), ("T", 4), ("P", 5)):
        if size < 1024 ** (power + 1) or unit == "P":
            return "%.2f%s" % (size / float(1024 ** power), unit)
    return "%dB" % size


def _avg_ttl(keyspace, now_ms: int) -> int:
    # From up to 64 keys with an expiry: Redis's is an estimate from sampling too.
    sample = list(itertools.islice(keyspace.expires.values(), 64))
    if not sample:
        return 0
    return max(0, int(sum(at - now_ms for at in sample) / len(sample)))


def _server(store) -> list:
    now = store.clock.seconds()
    uptime = int(now - store.started)
    port = text_of(store, PARAMS["port"])
    if port == "0" and store.port is not None:
        port = str(store.port)  # an embedder that set store.port
    hz = store.config.get("hz", "10")
    return [("redis_version", "7.0.0"), ("redis_git_sha1", "00000000"), ("redis_git_dirty", 0),
            ("redis_mode", "standalone"),
            ("os", "%s %s %s" % (platform.system(), platform.release(), platform.machine())),
            ("arch_bits", 64 if sys.maxsize > 2 ** 32 else 32),
            ("process_id", os.getpid()), ("process_supervised", "no"),
            ("run_id", _run_id(store)), ("tcp_port", port),
            ("server_time_usec", int(now * 1000000)), ("uptime_in_seconds", uptime),
            ("uptime_in_days", uptime // 86400), ("hz", hz), ("configured_hz", hz),
            ("executable", sys.argv[0] if sys.argv and sys.argv[0] else ""),
            ("config_file", getattr(store, "config_file", None) or ""),
            ("kvtwist_version", kvtwist.__version__),
            # kvproxy trusts MGET's nils only from a backend saying it holds strings only.
            ("kvtwist_value_types", ",".join(
                ["string"] + [TYPES[code].type_name.decode() for code in sorted(TYPES)])),
            ("python_implementation", platform.python_implementation())]


def _run_id(store) -> str:
    run_id = getattr(store, "run_id", None)
    if run_id is None:
        run_id = store.run_id = binascii.hexlify(os.urandom(20)).decode()
    return run_id


def _memory(store, keyspaces) -> list:
    used = used_memory(store)
    provider = getattr(store, "rss_provider", None)
    rss = provider() if provider is not None else 0
    peak = max(getattr(store, "used_memory_peak", 0), used)
    store.used_memory_peak = peak
    return [("used_memory", used), ("used_memory_human", human(used)),
            ("used_memory_rss", rss), ("used_memory_rss_human", human(rss)),
            ("used_memory_peak", peak), ("used_memory_peak_human", human(peak)),
            ("used_memory_dataset", store.databases.meter.used), ("maxmemory", store.maxmemory),
            ("maxmemory_human", human(store.maxmemory)),
            ("maxmemory_policy", _evictor_field(store, "policy", "noeviction")),
            # no replication or AOF buffers; values are freed at once (never lazily)
            ("mem_not_counted_for_evict", 0), ("lazyfree_pending_objects", 0),
            ("lazyfreed_objects", 0),
            # the estimate maxmemory is compared with (engine/evict.py, keyspace.Meter)
            ("kvtwist_data_estimate", store.databases.meter.used)]


def _persistence(store) -> list:
    info = getattr(store.journal, "info", None)
    info = info() if info is not None else {}
    journalled = "fsync" in info  # the real journal (kvtwist.storage.journal)
    failure = info.get("failure")
    fields = [("loading", 0), ("async_loading", 0), ("rdb_changes_since_last_save", 0),
              ("rdb_bgsave_in_progress", 0), ("rdb_last_save_time", int(store.started)),
              ("rdb_last_bgsave_status", "ok"), ("rdb_last_bgsave_time_sec", -1),
              ("rdb_current_bgsave_time_sec", -1), ("rdb_saves", 0),
              ("aof_enabled", int(journalled)),
              ("aof_rewrite_in_progress", int(bool(info.get("compacting")))),
              ("aof_rewrite_scheduled", 0), ("aof_last_bgrewrite_status", "ok"),
              ("aof_rewrites", int(info.get("compactions", 0))),
              ("aof_last_write_status", "ok" if failure is None else "err")]
    if journalled:
        fields += [("aof_current_size", int(info.get("journal_bytes", 0))),
                   ("aof_base_size", int(info.get("snapshot_bytes", 0))),
                   ("aof_pending_rewrite", 0),
                   ("aof_buffer_length", int(info.get("pending", 0)))]
    return fields


def _journal(store) -> list:
    info = getattr(store.journal, "info", None)
    if info is None:
        return []
    fields = []
    for name, value in sorted(info().items()):
        if not name.startswith("journal"):
            name = "journal_" + name
        if value is None:
            value = ""
        elif value is True or value is False:
            value = int(value)
        elif isinstance(value, float):
            if name == "journal_last_load_seconds":
                name, value = "journal_last_load_ms", int(value * 1000)
            else:
                value = int(value)
        elif isinstance(value, str):
            value = value.replace("\r", " ").replace("\n", " ")
        fields.append((name, value))
    return fields


def _stats(store, keyspaces) -> list:
    stats = store.stats
    return [("total_connections_received", store.connections_received),
            ("total_commands_processed", store.commands_processed),
            ("instantaneous_ops_per_sec", stats.ops_per_sec()),
            ("rejected_connections", _limit(store, "rejected_connections", 0)),
            ("expired_keys", sum(keyspace.expired_keys for keyspace in keyspaces)),
            ("evicted_keys", _evictor_field(store, "evicted", 0)),
            ("evicted_clients", _limit(store, "evicted_clients", 0)),
            ("keyspace_hits", stats.hits),
            ("keyspace_misses", stats.misses), ("total_error_replies", stats.error_replies),
            ("unexpected_error_replies", 0),
            ("migrate_cached_sockets", 0),  # no MIGRATE: no connections to other servers
            ("tracking_total_keys", len(_tracker_field(store, "table", ()))),
            ("tracking_total_items", sum(map(len, _tracker_field(store, "table", {}).values()))),
            ("tracking_total_prefixes", len(set(
                prefix for settings in _tracker_field(store, "tracking", {}).values()
                if settings.bcast for prefix in settings.prefixes))),
            ("acl_access_denied_auth", getattr(getattr(store, "auth", None), "denied", 0))]


def _limit(store, name: str, default):
    limits = getattr(store, "limits", None)  # kvtwist.engine.limits.Limits, once made
    return default if limits is None else getattr(limits, name)


def _evictor_field(store, name: str, default):
    evictor = store.evictor
    return default if evictor is None else getattr(evictor, name)


def _tracker_field(store, name: str, default):
    tracker = getattr(store, "tracker", None)
    return default if tracker is None else getattr(tracker, name)


def _cpu() -> list:
    if resource is None:
        return []
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    fields = [("used_cpu_sys", "%.6f" % own.ru_stime), ("used_cpu_user", "%.6f" % own.ru_utime),
              ("used_cpu_sys_children", "%.6f" % children.ru_stime),
              ("used_cpu_user_children", "%.6f" % children.ru_utime)]
    thread = getattr(resource, "RUSAGE_THREAD", None)
    if thread is not None:
        main = resource.getrusage(thread)
        fields += [("used_cpu_sys_main_thread", "%.6f" % main.ru_stime),
                   ("used_cpu_user_main_thread", "%.6f" % main.ru_utime)]
    return fields


def _command_stats(store) -> list:
    fields = []
    for stat in _all_stats(store):
        if stat.calls or stat.rejected or stat.failed:
            usec = stat.nanos // 1000
            fields.append(("cmdstat_" + stat.name.decode("utf-8", "replace"),
                           "calls=%d,usec=%d,usec_per_call=%.2f,rejected_calls=%d,"
                           "failed_calls=%d" % (stat.calls, usec,
                                                usec / float(stat.calls) if stat.calls else 0,
                                                stat.rejected, stat.failed)))
    return fields


def _all_stats(store):
    for stat in store.stats.commands.values():
        yield stat
        if stat.subs:
            for sub in stat.subs.values():
                yield sub


def _latency_stats(store) -> list:
    stats = store.stats
    fields = []
    if not stats.tracking:
        return fields
    for stat in _all_stats(store):
        line = stats.percentile_line(stat)
        if line:
            fields.append(("latency_percentiles_usec_" + stat.name.decode("utf-8", "replace"),
                           line))
    return fields


def _keyspace(store, keyspaces) -> list:
    now_ms = int(store.clock.seconds() * 1000)
    return [("db%d" % getattr(keyspace, "index", 0),
             "keys=%d,expires=%d,avg_ttl=%d" % (len(keyspace), len(keyspace.expires),
                                                _avg_ttl(keyspace, now_ms)))
            for keyspace in keyspaces if len(keyspace)]


def _section(store, name: str, keyspaces) -> list:
    if name == "server":
        return _server(store)
    if name == "clients":
        return [("connected_clients", len(store.clients)), ("cluster_connections", 0),
                ("maxclients", _limit(store, "maxclients", 10000)),
                ("blocked_clients", _blocked_clients(store)),
                ("tracking_clients", len(_tracker_field(store, "tracking", ())))]
    if name == "memory":
        return _memory(store, keyspaces)
    if name == "persistence":
        return _persistence(store)
    if name == "stats":
        return _stats(store, keyspaces)
    if name == "replication":
        return [("role", "master"), ("connected_slaves", 0),
                ("master_failover_state", "no-failover"), ("master_replid", _run_id(store)),
                ("master_replid2", "0" * 40), ("master_repl_offset", 0),
                ("second_repl_offset", -1), ("repl_backlog_active", 0),
                ("repl_backlog_first_byte_offset", 0), ("repl_backlog_histlen", 0)]
    if name == "cpu":
        return _cpu()
    if name == "commandstats":
        return _command_stats(store)
    if name == "errorstats":
        return [("errorstat_" + code, "count=%d" % count)
                for code, count in store.stats.errors.items()]
    if name == "latencystats":
        return _latency_stats(store)
    if name == "cluster":
        return [("cluster_enabled", 0)]
    if name == "keyspace":
        return _keyspace(store, keyspaces)
    if name == "journal":
        return _journal(store)
    return []  # modules: none


def wanted_sections(args) -> list:
    """Return the sections INFO's arguments ask for, in Redis's order."""
    names = {arg.decode("utf-8", "replace").lower() for arg in args}
    if not names:
        names = {"default"}
    if "everything" in names or "all" in names:
        names.update(SECTIONS)
    if "default" in names:
        names.update(name for name in SECTIONS if name not in NOT_DEFAULT)
    return [name for name in SECTIONS if name in names]


@register("info", -1, "random loading stale", 0, 0, 0)
def cmd_info(session, argv):
    """INFO [section ...]: O(commands + databases + 256 sampled keys per database)."""
    store = session.store
    keyspaces = getattr(store, "databases", [store.keyspace])
    out = []
    for name in wanted_sections(argv[1:]):
        lines = ["# %s" % TITLES.get(name, name.capitalize())]
        lines.extend("%s:%s" % pair for pair in _section(store, name, keyspaces))
        out.append("\r\n".join(lines) + "\r\n")
    return "\r\n".join(out).encode("utf-8")
