"""The parameters of the serve layer's resource limits and protected mode, and their counters.

Each parameter is parsed and kept here (``limits_of(store)``, a ``Limits``); the serve
layer (kvtwist.serve.limits) reads the values on each use, so CONFIG SET takes effect at
once for every connection. The names, ranges, defaults and error texts are Redis 7.0's:

- ``maxclients`` (10000): a connection over it gets ``-ERR max number of clients reached``;
- ``timeout`` (0, never): idle seconds after which a normal client is closed;
- ``tcp-keepalive`` (300): SO_KEEPALIVE and TCP_KEEPIDLE of each accepted socket;
- ``tcp-backlog`` (511, at start only): the listening socket's backlog;
- ``client-query-buffer-limit`` (1gb): the largest unfinished request;
- ``client-output-buffer-limit`` (``normal 0 0 0 slave 256mb 64mb 60 pubsub 32mb 8mb 60``);
- ``protected-mode`` (yes): refuse non-loopback clients while the default user has no
  password;
- ``enable-protected-configs`` (no, at start only): whether CONFIG SET may change the
  protected parameters (``dir`` and the other paths, see kvtwist.engine.config).
"""

from __future__ import annotations

from kvtwist.engine.config import _notifier, integer, memory, show_yes_no, yes_no
from kvtwist.engine.table import define_config

INT_MAX = 2 ** 31 - 1
UINT_MAX = 2 ** 32 - 1
LLONG_MAX = 2 ** 63 - 1
ULLONG_MAX = 2 ** 64 - 1

# Client classes of client-output-buffer-limit, in Redis's order (CONFIG GET shows them so).
CLASSES = ("normal", "slave", "pubsub")
_CLASS_NAMES = {"normal": "normal", "slave": "slave", "replica": "slave", "pubsub": "pubsub"}
DEFAULT_OBUF = "normal 0 0 0 slave 268435456 67108864 60 pubsub 33554432 8388608 60"
PROTECTED_ACTIONS = ("no", "yes", "local")


class Limits:
    """The current limits of one store, and what enforcing them counted (INFO stats)."""

    def __init__(self) -> None:
        self.maxclients = 10000
        self.timeout = 0
        self.keepalive = 300
        self.backlog = 511
        self.query_buffer = 1024 ** 3
        # class -> (hard bytes, soft bytes, soft seconds); 0 means no limit
        self.output = {"normal": (0, 0, 0), "slave": (256 * 1024 ** 2, 64 * 1024 ** 2, 60),
                       "pubsub": (32 * 1024 ** 2, 8 * 1024 ** 2, 60)}
        self.normal_limited = False  # normal clients have an output limit (not 0 0 0)
        self.protected_mode = True
        self.protected_configs = "no"
        self.rejected_connections = 0
        self.query_buffer_disconnections = 0
        self.output_buffer_disconnections = 0
        self.maxmemory_clients = 0  # bytes; negative: a percentage of maxmemory
        self.evicted_clients = 0  # INFO stats: closed by maxmemory-clients


def limits_of(store) -> Limits:
    """Return the store's Limits, made on first use (Redis's defaults)."""
    limits = getattr(store, "limits", None)
    if limits is None:
        limits = store.limits = Limits()
    return limits


def _memtoull(text: str) -> int:
    # Redis's memtoull: digits and an optional unit (b, k, kb, m, mb, g, gb), any case.
    return memory(0, ULLONG_MAX)(text)


def parse_output_limits(text: str) -> dict:
    """Parse ``class hard soft seconds ...`` as Redis does; return {class: (hard, soft, s)}.

    Raises ValueError with Redis's reason. Classes not named keep their limits.
    """
    words = text.split()
    if len(words) % 4:
        raise ValueError("Wrong number of arguments in buffer limit configuration.")
    values = {}
    for index in range(0, len(words), 4):
        name = _CLASS_NAMES.get(words[index].lower())
        if name is None:
            raise ValueError("Invalid client class specified in buffer limit configuration.")
        try:
            hard = _memtoull(words[index + 1])
            soft = _memtoull(words[index + 2])
            seconds = int(words[index + 3])
            if "%d" % seconds != words[index + 3].lstrip("+") or seconds < 0:
                raise ValueError(words[index + 3])
        except ValueError:
            raise ValueError("Error in hard, soft or soft_seconds setting in "
                             "buffer limit configuration.")
        values[name] = (hard, soft, seconds)
    return values


def show_output_limits(output: dict) -> str:
    """The text CONFIG GET shows for every class's limits."""
    return " ".join("%s %d %d %d" % ((name,) + tuple(output[name])) for name in CLASSES)


def _set_output(store, values: dict) -> None:
    limits = limits_of(store)
    output = dict(limits.output)
    output.update(values)
    limits.output = output
    limits.normal_limited = output["normal"][:2] != (0, 0)
    # The classes not given keep theirs: what CONFIG GET shows is all of them.
    store.config["client-output-buffer-limit"] = show_output_limits(output)


def _protected_action(text: str) -> str:
    if text.lower() not in PROTECTED_ACTIONS:
        raise ValueError("argument(s) must be one of the following: no, yes, local")
    return text.lower()


def _setter(attribute: str):
    return lambda store, value: setattr(limits_of(store), attribute, value)


define_config("maxclients", "10000", integer(1, UINT_MAX), _setter("maxclients"), show=str)
define_config("timeout", "0", integer(0, INT_MAX), _setter("timeout"), show=str)
define_config("tcp-keepalive", "300", integer(0, INT_MAX), _setter("keepalive"), show=str)
define_config("tcp-backlog", "511", integer(0, INT_MAX), _setter("backlog"), mutable=False,
              show=str)
define_config("client-query-buffer-limit", str(1024 ** 3), memory(1024 * 1024, LLONG_MAX),
              _setter("query_buffer"), show=str)
define_config("client-output-buffer-limit", DEFAULT_OBUF, parse_output_limits, _set_output)
define_config("protected-mode", "yes", yes_no, _setter("protected_mode"), show=show_yes_no)
define_config("enable-protected-configs", "no", _protected_action,
              _setter("protected_configs"), mutable=False, show=str)


# -- maxmemory-clients (client eviction) --------------------------------------------------

MIN_CLIENT_EVICTION = 128 * 1024  # Redis's floor, so a bad value cannot lock everyone out


def _parse_memory_or_percent(text: str) -> int:
    if text.endswith("%"):
        digits = text[:-1]
        if not digits.isdigit():
            raise ValueError("argument must be a memory or percent value")
        if int(digits) > 100:
            raise ValueError("percentage argument must be less or equal to 100")
        return -int(digits)
    try:
        return _memtoull(text)
    except ValueError:
        raise ValueError("argument must be a memory or percent value")


def _show_memory_or_percent(value: int) -> str:
    return "%d%%" % (-value,) if value < 0 else str(value)


def client_eviction_limit(store) -> int:
    """getClientEvictionLimit: the bytes all clients together may hold before the largest
    are closed (0: no client eviction). A percentage is of ``maxmemory``; at least
    MIN_CLIENT_EVICTION."""
    value = limits_of(store).maxmemory_clients
    if value < 0 and getattr(store, "maxmemory", 0):
        actual = store.maxmemory * -value // 100
    elif value > 0:
        actual = value
    else:
        return 0
    return max(actual, MIN_CLIENT_EVICTION)


define_config("maxmemory-clients", "0", _parse_memory_or_percent, _setter("maxmemory_clients"),
              show=_show_memory_or_percent)


# -- TLS client authentication (kvtwist.serve.tls applies them to the TLS listeners) --------

TLS_AUTH_CLIENTS = ("no", "yes", "optional")


def _tls_auth_clients(text: str) -> str:
    mode = text.lower()
    if mode not in TLS_AUTH_CLIENTS:
        raise ValueError("argument(s) must be one of the following: no, yes, optional")
    return mode


# tls-auth-clients: yes (Redis's default) requires a client certificate signed by the CA of
# tls-ca-cert-file, optional checks one when given, no asks for none. The serve layer
# (watching them) refuses a change its TLS listeners cannot apply.
define_config("tls-auth-clients", "yes", _tls_auth_clients, _notifier("tls-auth-clients"),
              show=str)
define_config("tls-ca-cert-file", "", str, _notifier("tls-ca-cert-file"))
