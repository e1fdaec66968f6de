"""Connection and server commands: PING, HELLO, COMMAND, CONFIG, COMPACT and friends.

CLIENT and MONITOR live in kvtwist.engine.clients, SAVE, SHUTDOWN, DEBUG... in
kvtwist.engine.admin."""

from __future__ import annotations

from twisted.logger import Logger

from kvtwist.engine.table import (
    SYNTAX, TABLE, arity_error, parse_int, register, sub_dispatch)
from kvtwist.engine.glob import compile_glob
from kvtwist.wire.replies import OK, PONG, CommandError, Error, Pairs, Status

log = Logger()


# -- connection and server commands ---------------------------------------------------


@register("ping", -1, "fast", 0, 0, 0)
def cmd_ping(session, argv):
    if len(argv) > 2:
        return arity_error("ping")
    return PONG if len(argv) == 1 else argv[1]


@register("echo", 2, "fast", 0, 0, 0)
def cmd_echo(session, argv):
    return argv[1]


@register("quit", -1, "fast", 0, 0, 0, aliases="exit")
def cmd_quit(session, argv):
    session.closing = True
    return OK


@register("select", 2, "fast", 0, 0, 0)
def cmd_select(session, argv):
    index = parse_int(argv[1])
    if not -2 ** 31 <= index < 2 ** 31:
        raise CommandError("ERR value is out of range, value must between -2147483648 and "
                           "2147483647")
    if index != 0:
        raise CommandError("ERR DB index is out of range")
    return OK


@register("hello", -1, "fast noscript loading stale", 0, 0, 0)
def cmd_hello(session, argv):
    """HELLO [protover [AUTH user pass] [SETNAME name]]: only RESP2 is spoken here."""
    if len(argv) > 1:
        try:
            version = parse_int(argv[1])
        except CommandError:
            raise CommandError("ERR Protocol version is not an integer or out of range")
        if version not in (2, 3):
            raise CommandError("NOPROTO unsupported protocol version")
        session.protocol = version
    index, name = 2, None
    while index < len(argv):
        option = argv[index].lower()
        if option == b"auth" and index + 2 < len(argv):
            index += 3  # no passwords: the default user accepts any, as Redis's nopass does
        elif option == b"setname" and index + 1 < len(argv):
            name = argv[index + 1]
            if not _valid_name(name):
                raise CommandError(
                    "ERR Client names cannot contain spaces, newlines or special characters.")
            index += 2
        else:
            raise CommandError("ERR Syntax error in HELLO option '%s'"
                               % (argv[index].decode("utf-8", "replace"),))
    if name is not None:
        session.name = name or None
    # Pairs: a flat array in RESP2 and a map in RESP3, as Redis sends.
    return Pairs([(b"server", b"redis"), (b"version", b"7.0.0"), (b"proto", session.protocol),
                  (b"id", session.id), (b"mode", b"standalone"), (b"role", b"master"),
                  (b"modules", [])])


@register("time", 1, "fast", 0, 0, 0)
def cmd_time(session, argv):
    now = session.store.clock.seconds()
    whole = int(now)
    return [b"%d" % whole, b"%d" % int((now - whole) * 1000000)]


USAGE = {
    b"set": b"key value [NX|XX] [GET] [EX s|PX ms|EXAT unix-s|PXAT unix-ms|KEEPTTL]",
    b"get": b"key", b"getdel": b"key", b"getset": b"key value", b"del": b"key [key ...]",
    b"mset": b"key value [key value ...]", b"msetnx": b"key value [key value ...]",
    b"mget": b"key [key ...]", b"exists": b"key [key ...]", b"incrby": b"key increment",
    b"decrby": b"key decrement", b"incrbyfloat": b"key increment", b"append": b"key value",
    b"getrange": b"key start end", b"setrange": b"key offset value", b"setex": b"key seconds value",
    b"psetex": b"key ms value", b"setnx": b"key value", b"expire": b"key seconds [NX|XX|GT|LT]",
    b"pexpire": b"key ms [NX|XX|GT|LT]", b"expireat": b"key unix-s [NX|XX|GT|LT]",
    b"pexpireat": b"key unix-ms [NX|XX|GT|LT]", b"keys": b"pattern",
    b"scan": b"cursor [MATCH pattern] [COUNT n] [TYPE type]", b"rename": b"key newkey",
    b"renamenx": b"key newkey", b"dump": b"(every pair, sorted by key)", b"flush": b"[ASYNC|SYNC]",
    b"ping": b"[message]", b"echo": b"message", b"info": b"[section ...]", b"select": b"0",
    b"client": b"subcommand [arg ...] (CLIENT HELP)", b"config": b"GET pattern | SET name value",
    b"command": b"[COUNT|INFO name ...|DOCS|LIST]",
    b"compact": b"(snapshot the journal in the background)",
    b"bgrewriteaof": b"(alias of COMPACT)",
}


@register("help", -1, "fast", 0, 0, 0)
def cmd_help(session, argv):
    lines = []
    for name in sorted(TABLE):
        usage = USAGE.get(name, b"key" if TABLE[name].first_key else b"")
        lines.append((name.upper() + b" " + usage).rstrip())
    return lines


# -- COMPACT (BGREWRITEAOF) ------------------------------------------------------------


def _compact_failed(failure, failures: list) -> None:
    # Nobody waits on a background compaction's Deferred, so its failure is logged here.
    failures.append(failure)
    log.error("COMPACT: background compaction failed: {error}",
              error=failure.getErrorMessage())


# Not flagged "write": compaction is maintenance, so a failed journal does not refuse it.
@register("compact", 1, "admin noscript", 0, 0, 0, aliases="bgrewriteaof")
def cmd_compact(session, argv):
    """Start journal.compact() in the background; reply at once, as Redis's BGREWRITEAOF does."""
    journal = session.store.journal
    compact = getattr(journal, "compact", None)
    if compact is None:
        raise CommandError("ERR no journal: this store does not persist")
    if journal.compacting:
        raise CommandError("ERR Background append only file rewriting already in progress")
    failures: list = []
    compact().addErrback(_compact_failed, failures)
    if failures:  # refused at once (journal stopping or failed): say so rather than "started"
        raise CommandError("ERR Can't execute an AOF background rewriting: %s"
                           % (failures[0].getErrorMessage(),))
    return Status(b"Background append only file rewriting started")


# -- INFO ---------------------------------------------------------------------------



# -- COMMAND ------------------------------------------------------------------------


def command_info(command) -> list:
    """Return COMMAND INFO's 10-element entry for one command."""
    return [command.name, command.arity, [Status(flag.encode()) for flag in command.flags],
            command.first_key, command.last_key, command.step, [], [], [], []]


def _help_lines(container: bytes, lines) -> list:
    return ([b"%s <subcommand> [<arg> [value] [opt] ...]. Subcommands are:" % container]
            + [line.encode() for line in lines])


COMMAND_SUBCOMMANDS = {
    b"count": (2, lambda session, argv: len(TABLE)),
    b"docs": (-2, lambda session, argv: []),
    b"list": (-2, lambda session, argv: sorted(TABLE)),
    b"info": (-2, lambda session, argv: [
        command_info(TABLE[name.lower()]) if name.lower() in TABLE else None
        for name in argv[2:]] if len(argv) > 2 else [command_info(c) for c in TABLE.values()]),
    b"help": (2, lambda session, argv: _help_lines(b"COMMAND", [
        "(no subcommand)", "    Return details about all commands.", "COUNT",
        "    Return the total number of commands.", "DOCS [<command-name> ...]",
        "    Return documentary information (empty here).", "INFO [<command-name> ...]",
        "    Return details about the named commands.", "LIST", "    Return command names."])),
}


@register("command", -1, "loading stale", 0, 0, 0)
def cmd_command(session, argv):
    if len(argv) == 1:
        return [command_info(command) for command in TABLE.values()]
    return sub_dispatch(COMMAND_SUBCOMMANDS, argv, session)


def _valid_name(name: bytes) -> bool:
    return all(0x21 <= byte <= 0x7E for byte in name)


# -- CONFIG -------------------------------------------------------------------------

# Fixed when the server starts: Redis's own answer for an immutable setting.
IMMUTABLE_CONFIG = frozenset(["databases", "port", "bind", "dir", "appendonly", "appendfsync",
                              "dbfilename"])


def _config_get(session, argv):
    config = session.store.config
    found = {}
    for pattern in argv[2:]:
        match = compile_glob(pattern, nocase=True).fullmatch
        for name in config:
            if name not in found and match(name.encode("utf-8")) is not None:
                found[name] = config[name]
    # Pairs: a flat array in RESP2 (Redis's bytes) and a map in RESP3.
    return Pairs([(name.encode("utf-8"),
                   value.encode("utf-8") if isinstance(value, str) else b"%d" % value)
                  for name, value in found.items()])


def _config_set(session, argv):
    if len(argv) % 2:
        raise CommandError(SYNTAX)
    config = session.store.config
    updates = {}
    for index in range(2, len(argv), 2):
        name = argv[index].decode("utf-8", "replace").lower()
        if name not in config:
            raise CommandError("ERR Unknown option or number of arguments for CONFIG SET - '%s'"
                               % (name,))
        if name in IMMUTABLE_CONFIG:
            raise CommandError("ERR CONFIG SET failed (possibly related to argument '%s') - "
                               "can't set immutable config" % (name,))
        updates[name] = argv[index + 1].decode("utf-8", "replace")
    config.update(updates)
    return OK


def _config_resetstat(session, argv):
    store = session.store
    store.commands_processed = 0
    store.connections_received = 0
    store.keyspace.expired_keys = 0
    return OK


CONFIG_SUBCOMMANDS = {
    b"get": (-3, _config_get),
    b"set": (-4, _config_set),
    b"resetstat": (2, _config_resetstat),
    b"rewrite": (2, lambda session, argv: Error("ERR The server is running without a config file")),
    b"help": (2, lambda session, argv: _help_lines(b"CONFIG", [
        "GET <pattern>", "    Return parameters matching the glob-like <pattern> and their values.",
        "SET <directive> <value>", "    Set the configuration <directive> to <value>.",
        "RESETSTAT", "    Reset statistics reported by the INFO command.",
        "REWRITE", "    Not supported: there is no configuration file."])),
}


@register("config", -2, "admin noscript loading stale", 0, 0, 0)
def cmd_config(session, argv):
    return sub_dispatch(CONFIG_SUBCOMMANDS, argv, session)


