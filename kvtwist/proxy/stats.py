"""kvproxy's stats port (``--stats ENDPOINT``), like nutcracker's: each connection gets one
JSON document of the pool's and every server's counters, then is closed.

    {"service": "kvproxy", "source": HOST, "version": V, "uptime": S, "timestamp": T,
     "total_connections": N, "curr_connections": N,
     POOL: {"client_connections": N, "server_ejects": N, "forward_error": N,
            "fragments": N, "cache_hits": N, "cache_misses": N, "stale_served": N,
            SERVER NAME: {"address": "host:port", "status": "up", "requests": N,
                          "errors": N, "ejections": N, "in_flight": N,
                          "request_bytes": N, "response_bytes": N}, ...}}

A server's ``requests`` are the requests kvproxy sent it (its fetches, writes, forwarded
commands, SELECTs it added), ``errors`` those that failed on its side (unreachable, timed
out, connection lost), ``request_bytes`` / ``response_bytes`` the bytes written to and
read from its backend connection. O(servers) per document.
"""

from __future__ import annotations

import json
import socket

from twisted.internet.protocol import Factory, Protocol

from kvtwist import __version__


def stats_document(store) -> dict:
    """The stats document of a ShardedStore (see the module's docstring)."""
    now = store.clock.seconds()
    shards = store.shards
    pool = {
        "client_connections": len(store.clients),
        "server_ejects": sum(shard.ejections for shard in shards),
        "forward_error": sum(shard.errors for shard in shards),
        "fragments": store.fragments,
        "cache_hits": store.cache.hits,
        "cache_misses": store.cache.misses,
        "stale_served": sum(shard.stale_served for shard in shards),
    }
    for shard in shards:
        pool[shard.label] = {
            "address": shard.server.address,
            "status": shard.status,
            "requests": shard.requests,
            "errors": shard.errors,
            "ejections": shard.ejections,
            "in_flight": shard.in_flight,
            "request_bytes": shard.bytes_out,
            "response_bytes": shard.bytes_in,
        }
    return {
        "service": "kvproxy",
        "source": socket.gethostname(),
        "version": __version__,
        "uptime": int(now - store.started),
        "timestamp": int(now),
        "total_connections": store._next_id,
        "curr_connections": len(store.clients),
        store.pool.name: pool,
    }


class StatsProtocol(Protocol):
    """Writes the document and closes."""

    def connectionMade(self) -> None:
        document = stats_document(self.factory.store)
        self.transport.write(json.dumps(document, sort_keys=True).encode("utf-8") + b"\n")
        self.transport.loseConnection()


class StatsFactory(Factory):
    """The stats port's factory, over a ShardedStore."""

    protocol = StatsProtocol
    noisy = False

    def __init__(self, store) -> None:
        self.store = store
