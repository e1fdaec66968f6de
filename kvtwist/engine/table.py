"""The command table: entries by name, registration, and the errors and parsers handlers share.

It imports no command module; kvtwist.engine.commands loads them all into it."""

from __future__ import annotations

from kvtwist.wire.replies import Error, CommandError

LLONG_MIN = -(2 ** 63)
LLONG_MAX = 2 ** 63 - 1
MAX_STRING = 512 * 1024 * 1024

NOT_INTEGER = "ERR value is not an integer or out of range"
SYNTAX = "ERR syntax error"
TOO_BIG = "ERR string exceeds maximum allowed size (proto-max-bulk-len)"


class Command:
    """One command-table entry: name, Redis arity, flags, key positions and handler."""

    __slots__ = ("name", "arity", "flags", "first_key", "last_key", "step", "handler", "write",
                 "no_auth", "denyoom")

    def __init__(self, name: bytes, arity: int, flags, first_key: int, last_key: int,
                 step: int, handler) -> None:
        self.name = name
        self.arity = arity
        self.flags = tuple(flags)
        self.first_key = first_key
        self.last_key = last_key
        self.step = step
        self.handler = handler
        self.write = "write" in self.flags
        self.no_auth = "no_auth" in self.flags  # allowed before AUTH (AUTH, HELLO, QUIT, RESET)
        self.denyoom = "denyoom" in self.flags  # refused when over maxmemory

    def __repr__(self) -> str:
        return "Command(%r, %d)" % (self.name, self.arity)


# name (lowercase bytes) -> Command; _LOOKUP adds upper-case spellings so most calls hit first.
TABLE: dict = {}
_LOOKUP: dict = {}


def register(name: str, arity: int, flags: str, first_key: int = 0, last_key: int = 0,
             step: int = 0, aliases: str = ""):
    """Return a decorator adding its handler(session, argv) under ``name`` and its aliases."""
    def decorate(handler):
        for each in [name] + aliases.split():
            entry = Command(each.encode(), arity, flags.split(), first_key, last_key, step, handler)
            TABLE[entry.name] = entry
            _LOOKUP[entry.name] = entry
            _LOOKUP[entry.name.upper()] = entry
        return handler
    return decorate


def arity_error(name) -> Error:
    """Return Redis's wrong-number-of-arguments error for a command (or 'cmd|sub') name."""
    if isinstance(name, bytes):
        name = name.decode("utf-8", "replace")
    return Error("ERR wrong number of arguments for '%s' command" % (name,))


def _c_str(value: bytes, limit: int) -> bytes:
    # Redis formats these with %.*s: stops at a NUL and at the byte limit.
    return value.split(b"\0", 1)[0][:limit]


def unknown_command(argv) -> Error:
    """Return Redis 7's exact unknown-command error for an argument vector."""
    args = b""
    for arg in argv[1:]:
        if len(args) >= 128:
            break
        args += b"'" + _c_str(arg, 128 - len(args)) + b"' "
    return Error("ERR unknown command '%s', with args beginning with: %s" % (
        _c_str(argv[0], 128).decode("utf-8", "replace"), args.decode("utf-8", "replace")))


def unknown_subcommand(argv) -> Error:
    """Return Redis's unknown-subcommand error, e.g. "Try CLIENT HELP."."""
    return Error("ERR unknown subcommand '%s'. Try %s HELP." % (
        _c_str(argv[1], 128).decode("utf-8", "replace"),
        argv[0].decode("utf-8", "replace").upper()))


def expire_time_error(name: str) -> CommandError:
    """Return Redis's invalid-expire-time error for a command name."""
    return CommandError("ERR invalid expire time in '%s' command" % (name,))


def write_refused(failure: str) -> str:
    """Return Redis's MISCONF error for a write refused while the journal cannot be written."""
    return "MISCONF Errors writing to the AOF file: %s" % (failure,)


def c_lower(arg: bytes) -> bytes:
    """Return ``arg`` as strcasecmp compares it: up to its first NUL, lower-cased."""
    return arg.split(b"\0", 1)[0].lower()


_UNITS = {b"": 1, b"b": 1, b"k": 1000, b"kb": 1024, b"m": 1000 ** 2, b"mb": 1024 ** 2,
          b"g": 1000 ** 3, b"gb": 1024 ** 3}


def max_bulk(store) -> int:
    """Return proto-max-bulk-len, the longest string value (512 MB unless configured)."""
    text = store.config.get("proto-max-bulk-len")
    if text is None:
        return MAX_STRING
    text = text.encode() if isinstance(text, str) else text
    digits = text.rstrip(b"bBkKmMgG")
    try:
        return int(digits) * _UNITS[text[len(digits):].lower()]
    except (KeyError, ValueError):
        return MAX_STRING


def parse_int(value: bytes) -> int:
    """Return a signed 64-bit integer in Redis's strict form; raise CommandError otherwise."""
    try:
        number = int(value)
    except ValueError:
        raise CommandError(NOT_INTEGER)
    # int() also takes spaces, '+', '_' and leading zeros; string2ll takes none of them.
    if b"%d" % number != value or not LLONG_MIN <= number <= LLONG_MAX:
        raise CommandError(NOT_INTEGER)
    return number


# container (lowercase bytes, b"client") -> {subcommand: (arity counting the container, handler)}.
# A family adds subcommands to another family's container here, without importing it.
SUBCOMMANDS: dict = {}


def subcommands(container: str) -> dict:
    """Return the subcommand table of a container command such as CLIENT, made on first use."""
    return SUBCOMMANDS.setdefault(container.encode(), {})


def sub_dispatch(subcommands: dict, argv, session):
    """Run ``argv``'s subcommand from ``subcommands``, or return Redis's unknown/arity error."""
    # subcommands: lowercase name -> (arity counting the container name, handler)
    entry = subcommands.get(argv[1].lower())
    if entry is None:
        return unknown_subcommand(argv)
    arity, handler = entry
    if (len(argv) != arity) if arity > 0 else (len(argv) < -arity):
        return arity_error(argv[0].lower() + b"|" + argv[1].lower())
    return handler(session, argv)


# -- configuration parameters (CONFIG GET/SET, --config files) --------------------------


class Param:
    """One configuration parameter: its name, default text, parser and what setting it does.

    ``parse(text)`` returns the value or raises ValueError with Redis's reason text;
    ``apply(store, value)`` (optional) makes the new value take effect. ``store.config``
    holds each parameter's current text by name: ``show(value)`` when given (the form
    CONFIG GET prints, e.g. ``1048576`` for ``1mb``), else the text as it was set.
    """

    __slots__ = ("name", "default", "parse", "apply", "mutable", "aliases", "show")

    def __init__(self, name: str, default: str, parse, apply, mutable: bool, aliases,
                 show=None) -> None:
        self.name = name
        self.default = default
        self.parse = parse
        self.apply = apply
        self.mutable = mutable
        self.aliases = tuple(aliases)
        self.show = show


# name -> Param; every family defines the parameters it implements (and nothing else).
PARAMS: dict = {}


def integer_parameter(low: int, high: int):
    """Return a parser of Redis's integer configuration parameters between ``low`` and
    ``high`` (createIntConfig, createSizeTConfig...), with Redis's error texts."""
    def parse(text: str) -> int:
        try:
            value = int(text)
            if "%d" % value != text:
                raise ValueError(text)
        except ValueError:
            raise ValueError("argument couldn't be parsed into an integer")
        if not low <= value <= high:
            raise ValueError("argument must be between %d and %d inclusive" % (low, high))
        return value
    return parse


# Redis's size_t parameters (createSizeTConfig): 0 to LONG_MAX.
SIZE_T = integer_parameter(0, LLONG_MAX)


def define_config(name: str, default: str, parse=str, apply=None, mutable: bool = True,
                  aliases=(), show=None) -> Param:
    """Register a configuration parameter that kvstore really implements."""
    param = Param(name, default, parse, apply, mutable, aliases, show)
    PARAMS[name] = param
    for alias in param.aliases:
        PARAMS[alias] = param
    return param
