"""A server pool as nutcracker describes it: its YAML file (``--pool FILE``) or repeated
``--backend`` options, checked and turned into a L{Pool} that kvproxy routes by.

A pool file holds one pool (a YAML mapping of one name to its settings) with nutcracker's
keys and defaults. Every key kvproxy accepts takes effect; the nutcracker keys it does not
implement are refused by name, so a file never means more than it does.
"""

from __future__ import annotations

import re

from kvtwist.proxy.hashkit import DISTRIBUTIONS, HASHES, Distribution

# nutcracker's defaults (nc_conf.h).
DEFAULT_HASH = "fnv1a_64"
DEFAULT_DISTRIBUTION = "ketama"
DEFAULT_RETRY_TIMEOUT_MS = 30000
DEFAULT_FAILURE_LIMIT = 2
DEFAULT_BACKLOG = 512
KETAMA_PORT = 11211  # libmemcached's: a server on it is hashed by host alone

# Keys nutcracker knows that kvproxy does not implement, and why.
REFUSED = {
    "client_connections": "kvproxy has no per-pool client limit",
    "server_connections": "kvproxy keeps one connection per server",
    "tcpkeepalive": "kvproxy does not set keepalive on its server connections",
    "reuseport": "kvproxy does not listen with SO_REUSEPORT",
}

_SERVER = re.compile(r"^(?P<host>\[[^\]]+\]|[^\s:]+):(?P<port>\d+)(?::(?P<weight>\d+))?"
                     r"(?:\s+(?P<name>\S+))?$")


class PoolError(ValueError):
    """A pool description kvproxy cannot use; the message names the field."""


class Server:
    """One server of a pool: where it is, its weight, and the name keys are hashed by."""

    __slots__ = ("host", "port", "weight", "name")

    def __init__(self, host: str, port: int, weight: int = 1, name: str = "") -> None:
        self.host = host
        self.port = port
        self.weight = weight
        # conf_add_server: the given name, else "host:port" ("host" alone on port 11211).
        self.name = name or (host if port == KETAMA_PORT else "%s:%d" % (host, port))

    @property
    def address(self) -> str:
        """Return "host:port"."""
        return "%s:%d" % (self.host, self.port)

    def endpoint(self) -> str:
        """Return the Twisted client endpoint string of this server."""
        host = self.host.strip("[]").replace(":", "\\:")
        return "tcp:%s:%d" % (host, self.port)

    def __repr__(self) -> str:
        return "Server(%r, %d, %d, %r)" % (self.host, self.port, self.weight, self.name)


def parse_server(text: str) -> Server:
    """Parse ``host:port[:weight] [name]`` (a pool file's server line, or ``--backend``)."""
    match = _SERVER.match(text.strip())
    if match is None:
        raise PoolError("bad server %r: use host:port[:weight] [name]" % (text,))
    port = int(match.group("port"))
    if not 0 < port < 65536:
        raise PoolError("bad server %r: port out of range" % (text,))
    weight = int(match.group("weight") or 1)
    if weight < 1:
        raise PoolError("bad server %r: the weight must be at least 1" % (text,))
    return Server(match.group("host"), port, weight, match.group("name") or "")


class Pool:
    """A pool's servers and settings; ``distribution`` places keys on ``servers``.

    Times are in seconds (the file gives milliseconds, as nutcracker's). ``timeout`` None
    means no limit.
    """

    def __init__(self, servers: list, name: str = "kvproxy", listen: str = "",
                 hash: str = DEFAULT_HASH, hash_tag: str = "",
                 distribution: str = DEFAULT_DISTRIBUTION, timeout=None,
                 backlog: int = DEFAULT_BACKLOG, auto_eject_hosts: bool = False,
                 server_retry_timeout: float = DEFAULT_RETRY_TIMEOUT_MS / 1000.0,
                 server_failure_limit: int = DEFAULT_FAILURE_LIMIT,
                 redis_auth: str = "", redis_db: int = 0, preconnect: bool = False) -> None:
        if not servers:
            raise PoolError("the pool has no servers")
        self.servers = list(servers)
        self.name = name
        self.listen = listen
        self.hash = hash
        self.hash_tag = hash_tag
        self.timeout = timeout
        self.backlog = backlog
        self.auto_eject_hosts = auto_eject_hosts
        self.server_retry_timeout = server_retry_timeout
        self.server_failure_limit = server_failure_limit
        self.redis_auth = redis_auth
        self.redis_db = redis_db
        self.preconnect = preconnect
        try:
            self.distribution = Distribution(
                [(server.name, server.weight) for server in self.servers], distribution,
                hash, hash_tag.encode("latin-1"))
        except ValueError as exc:
            raise PoolError(str(exc)) from None


def _number(pool: str, key: str, value, minimum: int = 0) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise PoolError("%s: %s must be an integer of at least %d, not %r"
                        % (pool, key, minimum, value))
    return value


def _flag(pool: str, key: str, value) -> bool:
    if not isinstance(value, bool):
        raise PoolError("%s: %s must be true or false, not %r" % (pool, key, value))
    return value


def parse_pool(text: str) -> Pool:
    """Return the Pool a nutcracker YAML document describes (exactly one pool)."""
    import yaml  # PyYAML: only kvproxy with --pool needs it

    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise PoolError("not valid YAML: %s" % (exc,)) from None
    if not isinstance(document, dict) or len(document) != 1:
        raise PoolError("a pool file holds exactly one pool: a mapping of its name to its "
                        "settings (kvproxy serves one pool per process)")
    [(name, settings)] = document.items()
    name = str(name)
    if not isinstance(settings, dict):
        raise PoolError("%s: the pool's settings must be a mapping" % (name,))
    for key in settings:
        if key in REFUSED:
            raise PoolError("%s: %s is not supported: %s" % (name, key, REFUSED[key]))
    known = {"listen", "hash", "hash_tag", "distribution", "timeout", "backlog", "redis",
             "redis_auth", "redis_db", "preconnect", "auto_eject_hosts",
             "server_retry_timeout", "server_failure_limit", "servers"}
    unknown = sorted(set(settings) - known)
    if unknown:
        raise PoolError("%s: unknown key %s" % (name, unknown[0]))
    if settings.get("redis", False) is not True:
        raise PoolError("%s: kvproxy speaks Redis only: set redis: true" % (name,))
    servers = settings.get("servers")
    if not isinstance(servers, list) or not servers:
        raise PoolError("%s: servers must be a non-empty list" % (name,))
    hash_name = str(settings.get("hash", DEFAULT_HASH))
    if hash_name not in HASHES:
        raise PoolError("%s: unknown hash %r (use %s)" % (name, hash_name,
                                                          ", ".join(sorted(HASHES))))
    distribution = str(settings.get("distribution", DEFAULT_DISTRIBUTION))
    if distribution not in DISTRIBUTIONS:
        raise PoolError("%s: unknown distribution %r (use %s)" % (
            name, distribution, ", ".join(DISTRIBUTIONS)))
    hash_tag = settings.get("hash_tag", "")
    if hash_tag and (not isinstance(hash_tag, str) or len(hash_tag) != 2):
        raise PoolError("%s: hash_tag must be two characters, such as \"{}\"" % (name,))
    timeout = settings.get("timeout")
    if timeout is not None:
        timeout = _number(name, "timeout", timeout, 1) / 1000.0
    redis_auth = settings.get("redis_auth", "")
    if not isinstance(redis_auth, str):
        raise PoolError("%s: redis_auth must be a string" % (name,))
    return Pool(
        [parse_server(str(line)) for line in servers], name=name,
        listen=str(settings.get("listen", "")), hash=hash_name, hash_tag=hash_tag,
        distribution=distribution, timeout=timeout,
        backlog=_number(name, "backlog", settings.get("backlog", DEFAULT_BACKLOG), 1),
        auto_eject_hosts=_flag(name, "auto_eject_hosts",
                               settings.get("auto_eject_hosts", False)),
        server_retry_timeout=_number(
            name, "server_retry_timeout",
            settings.get("server_retry_timeout", DEFAULT_RETRY_TIMEOUT_MS), 1) / 1000.0,
        server_failure_limit=_number(
            name, "server_failure_limit",
            settings.get("server_failure_limit", DEFAULT_FAILURE_LIMIT), 1),
        redis_auth=redis_auth,
        redis_db=_number(name, "redis_db", settings.get("redis_db", 0)),
        preconnect=_flag(name, "preconnect", settings.get("preconnect", False)))


def listen_endpoint(listen: str) -> str:
    """Return the Twisted server endpoint string of a pool's ``listen`` (host:port)."""
    match = re.match(r"^(?P<host>\[[^\]]+\]|[^\s:]+):(?P<port>\d+)$", listen.strip())
    if match is None:
        raise PoolError("bad listen %r: use host:port" % (listen,))
    host = match.group("host").strip("[]").replace(":", "\\:")
    return "tcp:%s:interface=%s" % (match.group("port"), host)


# Twisted client endpoint types: a --backend starting with one is an endpoint string.
ENDPOINT_TYPES = ("tcp", "tcp6", "tls", "ssl", "unix", "systemd", "tor", "onion")
_TCP_ENDPOINT = re.compile(r"^(?:tcp|tcp6|tls|ssl):(?:host=)?(?P<host>[^:=]+):(?:port=)?"
                           r"(?P<port>\d+)(?::|$)")


class EndpointServer(Server):
    """A server given as a Twisted client endpoint string (``--backend tls:...``): named
    "host:port" when the string says them (as nutcracker names it), else by the string."""

    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        match = _TCP_ENDPOINT.match(text)
        if match is not None:
            Server.__init__(self, match.group("host"), int(match.group("port")))
        else:
            Server.__init__(self, text, 0, 1, text)
        self.text = text

    @property
    def address(self) -> str:
        return self.name if self.port == 0 else Server.address.fget(self)

    def endpoint(self) -> str:
        return self.text


def backend_server(text: str) -> Server:
    """The Server a ``--backend`` names: an endpoint string (``tcp:host:port``, ``tls:...``,
    ``unix:...``) or nutcracker's ``host:port[:weight] [name]``."""
    prefix = text.split(":", 1)[0].lower()
    if prefix in ENDPOINT_TYPES:
        return EndpointServer(text)
    return parse_server(text)
