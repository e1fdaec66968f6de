"""INFO: Server, Clients, Memory, Stats, Persistence and Keyspace sections, as Redis prints them."""

from __future__ import annotations

import os

import kvtwist
from kvtwist.engine.table import register


# Bytes per key beyond its key and value lengths: two bytes objects and a dict slot on
# CPython (sys.getsizeof is unavailable on PyPy, so this is a fixed estimate).
_PER_KEY_OVERHEAD = 120


def _memory_estimate(keyspace) -> int:
    # Exact accounting would cost on every write; sample 64 entries instead.
    data = keyspace.data
    if not data:
        return 0
    sample = list(zip(range(64), data.items()))
    each = sum(len(key) + len(value) for _, (key, value) in sample) / float(len(sample))
    return int(len(data) * (each + _PER_KEY_OVERHEAD) + len(keyspace.expires) * 64)


def _info_sections(session) -> dict:
    store = session.store
    uptime = int(store.clock.seconds() - store.started)
    server = [("redis_version", "7.0.0"), ("redis_mode", "standalone"),
              ("kvtwist_version", kvtwist.__version__),
              # kvproxy trusts MGET's nils only from a backend saying it holds strings only.
              ("kvtwist_value_types", "string"), ("arch_bits", "64"),
              ("process_id", str(os.getpid())), ("uptime_in_seconds", uptime),
              ("uptime_in_days", uptime // 86400)]
    # tap passes the listening port in config; store.port serves embedders that set it.
    port = store.config.get("port", store.port)
    if port is not None:
        server.append(("tcp_port", port))
    databases = store.databases
    used = sum(_memory_estimate(each) for each in databases)
    persistence = [("loading", 0)]
    info = getattr(store.journal, "info", None)
    if info is not None:
        persistence.extend(sorted(info().items()))
    return {
        "server": server,
        "clients": [("connected_clients", len(store.clients)),
                    ("maxclients", store.config.get("maxclients", "0"))],
        "memory": [("used_memory", used), ("used_memory_human", "%.2fK" % (used / 1024.0)),
                   ("maxmemory", store.config.get("maxmemory", "0"))],
        "stats": [("total_connections_received", store.connections_received),
                  ("total_commands_processed", store.commands_processed),
                  ("expired_keys", databases.expired_keys)],
        "persistence": persistence,
        "keyspace": [("db%d" % (each.index,), "keys=%d,expires=%d,avg_ttl=0" % (
            len(each), len(each.expires))) for each in databases if len(each)],
    }


_SECTION_TITLES = {"server": "Server", "clients": "Clients", "memory": "Memory", "stats": "Stats",
                   "persistence": "Persistence", "keyspace": "Keyspace"}


@register("info", -1, "fast", 0, 0, 0)
def cmd_info(session, argv):
    sections = _info_sections(session)
    wanted = [arg.decode("utf-8", "replace").lower() for arg in argv[1:]]
    if not wanted or set(wanted) & {"all", "everything", "default"}:
        wanted = list(sections)
    out = []
    for name in sections:
        if name in wanted:
            lines = ["# %s" % _SECTION_TITLES[name]]
            lines.extend("%s:%s" % pair for pair in sections[name])
            out.append("\r\n".join(lines) + "\r\n")
    return "\r\n".join(out).encode("utf-8")
