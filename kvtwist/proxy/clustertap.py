"""``twistd kvproxy --cluster``: the seeds' check and the ClusterStore's links."""

from __future__ import annotations

from twisted.python import usage

from kvtwist.client import connect, endpoint_from_string
from kvtwist.proxy.backend import Backend
from kvtwist.proxy.cluster import ClusterStore
from kvtwist.proxy.invalidation import InvalidationListener
from kvtwist.proxy.pool import EndpointServer, PoolError, backend_server

# Options a cluster front does not take, and why.
NOT_WITH_CLUSTER = (
    ("pool", "a pool file describes servers kvproxy shards keys over; a cluster places "
             "them itself"),
    ("serve-stale", "--serve-stale is for a sharded pool's servers"),
    ("stats", "--stats reports a sharded pool; INFO reports the cluster"),
)


def cluster_seeds(options) -> list:
    """The "host:port" of each ``--cluster`` seed (host:port, or a tcp: endpoint naming
    host and port); a usage error for anything else or for options that do not go with
    it."""
    if options["backends"]:
        raise usage.UsageError("give --cluster or --backend, not both")
    for name, why in NOT_WITH_CLUSTER:
        value = options[name]
        if value:
            raise usage.UsageError("--%s does not go with --cluster: %s" % (name, why))
    seeds = []
    for text in options["cluster"]:
        try:
            server = backend_server(text)
        except PoolError as e:
            raise usage.UsageError("--cluster: %s" % (e,))
        prefix = text.split(":", 1)[0].lower()
        if (server.__class__ is EndpointServer and (server.port == 0 or prefix != "tcp")) \
                or server.weight != 1 or server.name != server.address:
            raise usage.UsageError("--cluster %s: give a node as host:port (kvproxy reaches "
                                   "the cluster's nodes over TCP)" % (text,))
        seeds.append(server.address)
    return seeds


def tcp_endpoint(address: str) -> str:
    """The Twisted client endpoint string of "host:port" (an IPv6 host in brackets)."""
    host, _, port = address.rpartition(":")
    return "tcp:%s:%s" % (host.strip("[]").replace(":", "\\:"), port)


def cluster_store(reactor, settings: dict, cache, login, timeout,
                  requirepass: bytes = b"") -> ClusterStore:
    """A ClusterStore reading the map from ``settings["cluster"]``'s seeds, opening a
    backend link (and, unless --no-tracking, an invalidation link) to each primary;
    ``requirepass`` is the password kvproxy's clients must give."""
    def connect_node(address, node_cache):
        endpoint = tcp_endpoint(address)
        backend = Backend(reactor, endpoint_from_string(reactor, endpoint), address, timeout,
                          identify=True, login=login)
        listener = None
        if not settings["no-tracking"]:
            listener = InvalidationListener(
                reactor, endpoint_from_string(reactor, endpoint), node_cache, address,
                timeout, heartbeat=float(settings["heartbeat"]),
                heartbeat_timeout=float(settings["heartbeat-timeout"]), login=login)
        return backend, listener

    def open_seed(address):
        d = connect(reactor, tcp_endpoint(address), timeout)
        if login is not None:
            d.addCallback(_logged_in, login)
        return d

    seeds = settings["cluster"]
    if isinstance(seeds, str):
        seeds = [seeds]
    return ClusterStore(reactor, cache, seeds, connect_node, open_seed,
                        allow_admin=bool(settings["allow-admin"]),
                        requirepass=requirepass)


def _logged_in(client, login):
    def checked(reply):
        if getattr(reply, "message", None) is not None:
            client.close()
            raise ValueError("the seed refused kvproxy's login: %s" % (reply.message,))
        return client
    return client.request(login).addCallback(checked)
