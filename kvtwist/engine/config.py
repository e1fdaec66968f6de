"""CONFIG GET/SET/RESETSTAT/REWRITE/HELP over the parameter registry, and the parameters the
engine and the server implement.

Each parameter here takes effect: the slow log's and latency monitor's thresholds, latency
tracking, proto-max-bulk-len (the serve layer's request parser, see ``watch``), hz (the
serve layer's active-expiry sweep). Those fixed when the server starts (port, bind, dir,
appendonly, appendfsync, databases) show their real values and refuse CONFIG SET as Redis
refuses an immutable one. Anything else is refused with Redis's unknown-option error.
"""

from __future__ import annotations

from kvtwist.engine import configfile
from kvtwist.engine.databases import DEFAULT_DATABASES
from kvtwist.engine.glob import compile_glob
from kvtwist.engine.table import integer_parameter
from kvtwist.engine.table import (
    PARAMS, SYNTAX, define_config, register, sub_dispatch, subcommands)
from kvtwist.wire.replies import OK, CommandError, Pairs, Status

LLONG_MAX = 2 ** 63 - 1
INT_MAX = 2 ** 31 - 1
POLICIES = ("always", "everysec", "no")


class ConfigError(Exception):
    """A parameter refused at start-up (--config FILE or a command-line option)."""


# -- parsers (each raises ValueError with Redis's reason text) ------------------------


integer = integer_parameter  # Redis's integer parameters (engine/table.py)


def _in_range(value: int, low: int, high: int) -> int:
    if not low <= value <= high:
        raise ValueError("argument must be between %d and %d inclusive" % (low, high))
    return value


_UNITS = {"": 1, "b": 1, "k": 1000, "kb": 1024, "m": 1000 ** 2, "mb": 1024 ** 2,
          "g": 1000 ** 3, "gb": 1024 ** 3}


def memory(low: int, high: int):
    """Return a parser of Redis's memory parameters (``1mb``, ``64k``, ``1048576``)."""
    def parse(text: str) -> int:
        lowered = text.lower()
        digits = lowered.rstrip("kmgb")
        unit = lowered[len(digits):]
        if unit not in _UNITS or not digits.isdigit() or not digits.isascii():
            raise ValueError("argument must be a memory value")
        return _in_range(int(digits) * _UNITS[unit], low, high)
    return parse


def yes_no(text: str) -> bool:
    """Parse a Redis boolean: yes or no, in any case."""
    lowered = text.lower()
    if lowered not in ("yes", "no"):
        raise ValueError("argument must be 'yes' or 'no'")
    return lowered == "yes"


def show_yes_no(value: bool) -> str:
    """Show a boolean as CONFIG GET does."""
    return "yes" if value else "no"


def _percentiles(text: str) -> tuple:
    words = text.split(" ")
    if words == [""]:
        return ()
    values = []
    for word in words:
        try:
            value = float(word)
        except ValueError:
            raise ValueError("Invalid latency-tracking-info-percentiles parameters")
        if not 0.0 <= value <= 100.0:
            raise ValueError(
                "latency-tracking-info-percentiles parameters should sit between [0.0,100.0]")
        values.append(value)
    return tuple(values)


def _show_percentiles(values: tuple) -> str:
    return " ".join(("%f" % value).rstrip("0").rstrip(".") for value in values)


def _fsync(text: str) -> str:
    if text.lower() not in POLICIES:
        raise ValueError("argument(s) must be one of the following: always, everysec, no")
    return text.lower()


def _hz(text: str) -> int:
    # Redis takes 0..INT_MAX and clamps what it uses (and shows) to 1..500.
    return min(max(integer(0, INT_MAX)(text), 1), 500)


def _save(text: str) -> str:
    if text.strip():
        raise ValueError("kvstore takes no RDB snapshots (every write is journalled): "
                         "only \"\" is accepted")
    return ""


# -- what setting a parameter does ----------------------------------------------------


# Directives that are not parameters, by name: a function of the store giving their lines
# for CONFIG REWRITE (acl_file adds "user").
REWRITE_DIRECTIVES: dict = {}


def watch(store, name: str, callback) -> None:
    """Call ``callback(value)`` each time parameter ``name`` is set (the serve layer's part)."""
    store.__dict__.setdefault("config_watchers", {}).setdefault(name, []).append(callback)


def _notify(store, name: str, value) -> None:
    for callback in getattr(store, "config_watchers", {}).get(name, ()):
        callback(value)


def _notifier(name: str):
    return lambda store, value: _notify(store, name, value)


def _slowlog_max_len(store, value: int) -> None:
    store.stats.slowlog.max_len = value
    store.stats.slowlog.trim()


def _databases(store, value: int) -> None:
    have = store.databases.count
    if value != have:
        raise ValueError("this kvstore has %d database%s" % (have, "" if have == 1 else "s"))


def _appendonly(store, value: bool) -> None:
    if not value and getattr(store.journal, "policy", None) is not None:
        raise ValueError("kvstore always journals its writes (appendonly is yes)")


define_config("slowlog-log-slower-than", "10000", integer(-1, LLONG_MAX),
              lambda store, value: store.stats.set_thresholds(slow_us=value), show=str)
define_config("slowlog-max-len", "128", integer(0, LLONG_MAX), _slowlog_max_len, show=str)
define_config("latency-monitor-threshold", "0", integer(0, LLONG_MAX),
              lambda store, value: store.stats.set_thresholds(latency_ms=value), show=str)
define_config("latency-tracking", "yes", yes_no,
              lambda store, value: setattr(store.stats, "tracking", value), show=show_yes_no)
define_config("latency-tracking-info-percentiles", "50 99 99.9", _percentiles,
              lambda store, value: setattr(store.stats, "percentiles", value),
              show=_show_percentiles)
define_config("proto-max-bulk-len", "536870912", memory(1024 * 1024, LLONG_MAX),
              _notifier("proto-max-bulk-len"), show=str)
define_config("hz", "10", _hz, _notifier("hz"), show=str)
define_config("save", "", _save)
# Fixed when the server starts (twistd kvstore's options or --config FILE).
define_config("port", "0", integer(0, 65535), mutable=False, show=str)
define_config("bind", "", str, mutable=False)
define_config("dir", "", str, mutable=False)
define_config("appendonly", "no", yes_no, _appendonly, mutable=False, show=show_yes_no)
define_config("appendfsync", "always", _fsync, mutable=False, show=str)
define_config("databases", str(DEFAULT_DATABASES), integer(1, INT_MAX), _databases,
              mutable=False, show=str)

# Given as one argument in CONFIG SET, as several words in a file line (Redis's MULTI_ARG).
MULTI_ARG = frozenset(["bind", "save", "latency-tracking-info-percentiles",
                       "client-output-buffer-limit"])


def params() -> list:
    """Return each registered parameter once (not once per alias), in registration order."""
    seen = {}
    for param in PARAMS.values():
        seen.setdefault(param.name, param)
    return list(seen.values())


def defaults() -> dict:
    """Return every parameter's default text by name: a new store's ``config``."""
    return {param.name: param.default for param in params()}


def text_of(store, param) -> str:
    """Return a parameter's current text as CONFIG GET shows it."""
    if param.name == "databases":
        return str(store.databases.count)
    return store.config.get(param.name, param.default)


def _set(store, param, text: str) -> None:
    # Raises ValueError (Redis's reason) before changing anything if the text is refused.
    value = param.parse(text)
    store.config[param.name] = param.show(value) if param.show is not None else text
    if param.apply is not None:
        param.apply(store, value)


def configure(store, pairs) -> None:
    """Set parameters at start-up (immutable ones too); raise ConfigError naming the first
    refused, with ``where`` (a file and line) when given.

    ``pairs``: (name, text) or (name, text, where) tuples.
    """
    for pair in pairs:
        name, text = pair[0], pair[1]
        where = pair[2] + ": " if len(pair) > 2 else ""
        param = PARAMS.get(name.lower())
        if param is None:
            raise ConfigError("%sunknown configuration parameter '%s'" % (where, name))
        try:
            _set(store, param, text)
        except ValueError as e:
            raise ConfigError("%s'%s %s': %s" % (where, name, text, e))


# -- CONFIG ---------------------------------------------------------------------------


# Settable in Redis but fixed when kvstore starts: setting one to the value it has is a no-op
# (clients that write back what CONFIG GET gave them work); any other value is refused.
FIXED_AT_START = frozenset(["port", "bind", "dir", "appendonly", "appendfsync"])
# Paths the server writes: CONFIG SET refuses them unless enable-protected-configs allows
# the client (Redis 7's PROTECTED_CONFIG), so a client cannot make it write files anywhere.
# Redis's other paths (aclfile, appendfilename, logfile, pidfile...) are immutable instead.
PROTECTED = frozenset(["dir", "dbfilename"])


def _unchanged(store, param, raw: bytes) -> bool:
    if param.name not in FIXED_AT_START:
        return False
    text = raw.decode("utf-8", "replace")
    try:
        value = param.parse(text)
    except ValueError:
        return False
    return (param.show(value) if param.show is not None else text) == text_of(store, param)


def is_local(peer: str) -> bool:
    """Whether a client's ``host:port`` is 127.0.0.1 or ::1 (Redis's islocalClient).

    A peer with no port (a Unix socket's) is local too.
    """
    if ":" not in peer:
        return True
    return peer.rsplit(":", 1)[0] in ("127.0.0.1", "::1", "[::1]")


def _protected_allowed(session) -> bool:
    # enable-protected-configs (kvtwist.engine.limits): no, yes or local.
    action = session.store.config.get("enable-protected-configs", "no")
    return action == "yes" or (action == "local" and is_local(session.peer))


def _config_get(session, argv):
    """CONFIG GET pattern [pattern ...]: O(patterns x parameters)."""
    found = {}  # lowercased name as matched -> (name as replied, param)
    for raw in argv[2:]:
        name = raw.decode("utf-8", "replace")
        if not any(char in name for char in "[*?"):
            param = PARAMS.get(name.lower())
            if param is not None and name.lower() not in found:
                found[name.lower()] = (name, param)
            continue
        match = compile_glob(raw, nocase=True).fullmatch
        canonical = {param.name for _, param in found.values()}
        for key, param in PARAMS.items():
            if param.name in canonical or key in found:
                continue
            if match(key.encode("utf-8")) is not None:
                found[key] = (key, param)
                canonical.add(param.name)
    store = session.store
    # Pairs: a flat array in RESP2 and a map in RESP3, as Redis sends.
    return Pairs([(name.encode("utf-8"), text_of(store, param).encode("utf-8"))
                  for name, param in found.values()])


def _config_set(session, argv):
    """CONFIG SET name value [name value ...]: all or nothing, as Redis 7 does it."""
    if len(argv) % 2:
        raise CommandError(SYNTAX)
    store = session.store
    chosen, failure, unknown = [], None, None
    for index in range(2, len(argv), 2):
        name = argv[index].decode("utf-8", "replace")
        param = PARAMS.get(name.lower())
        if param is None:
            if failure is None:
                unknown = name
                break
            continue
        if failure is not None:
            continue
        if param.name in PROTECTED and not _protected_allowed(session):
            failure = (name, "can't set protected config")
        elif not param.mutable and not _unchanged(store, param, argv[index + 1]):
            failure = (name, "can't set immutable config")
        elif any(param is each for each, _ in chosen):
            failure = (name, "duplicate parameter")
        chosen.append((param, argv[index + 1].decode("utf-8", "replace")))
    if unknown is not None:
        raise CommandError("ERR Unknown option or number of arguments for CONFIG SET - '%s'"
                           % (unknown,))
    if failure is None:
        # Parse every value before anything changes, then apply; an apply refusing rolls
        # every parameter back to its old text.
        for param, text in chosen:
            try:
                param.parse(text)
            except ValueError as e:
                failure = (param.name, str(e))
                break
    if failure is None:
        old = [(param, text_of(store, param)) for param, _ in chosen]
        try:
            for param, text in chosen:
                failed = param.name
                _set(store, param, text)
        except ValueError as e:
            for param, text in old:
                try:
                    _set(store, param, text)
                except ValueError:
                    pass
            failure = (failed, str(e))
    if failure is not None:
        raise CommandError("ERR CONFIG SET failed (possibly related to argument '%s') - %s"
                           % failure)
    return OK


def _config_resetstat(session, argv):
    """Zero what Redis's resetServerStats and the command/error tables reset: O(commands)."""
    store = session.store
    store.commands_processed = 0
    store.connections_received = 0
    for keyspace in getattr(store, "databases", [store.keyspace]):
        keyspace.expired_keys = 0
    store.stats.reset()
    _reset_limit_stats(store)
    return OK


def _reset_limit_stats(store) -> None:
    # resetServerStats's eviction and client-limit counters (engine/limits.py's Limits).
    if getattr(store, "evictor", None) is not None:
        store.evictor.evicted = 0
    limits = getattr(store, "limits", None)
    if limits is None:
        return
    limits.evicted_clients = limits.rejected_connections = 0
    limits.query_buffer_disconnections = limits.output_buffer_disconnections = 0


def _config_rewrite(session, argv):
    path = getattr(session.store, "config_file", None)
    if path is None:
        raise CommandError("ERR The server is running without a config file")
    try:
        configfile.rewrite(path, [(param, text_of(session.store, param)) for param in params()],
                           MULTI_ARG, {name: lines(session.store)
                                       for name, lines in REWRITE_DIRECTIVES.items()})
    except OSError as e:
        raise CommandError("ERR Rewriting config file: %s" % (e.strerror or e,))
    return OK


CONFIG_SUBCOMMANDS = subcommands("config")
CONFIG_SUBCOMMANDS.update({
    b"get": (-3, _config_get),
    b"set": (-4, _config_set),
    b"resetstat": (2, _config_resetstat),
    b"rewrite": (2, _config_rewrite),
    b"help": (2, lambda session, argv: [Status(line) for line in (
        b"CONFIG <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
        b"GET <pattern>",
        b"    Return parameters matching the glob-like <pattern> and their values.",
        b"SET <directive> <value>", b"    Set the configuration <directive> to <value>.",
        b"RESETSTAT", b"    Reset statistics reported by the INFO command.",
        b"REWRITE", b"    Rewrite the configuration file.",
        b"HELP", b"    Prints this help.")]),
})


@register("config", -2, "admin noscript loading stale", 0, 0, 0)
def cmd_config(session, argv):
    return sub_dispatch(CONFIG_SUBCOMMANDS, argv, session)
