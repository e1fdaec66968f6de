"""Connection and server commands: PING, HELLO, CLIENT, CONFIG, COMPACT and friends."""

from __future__ import annotations

from twisted.logger import Logger

from kvtwist.engine.table import (
    PARAMS, SYNTAX, TABLE, arity_error, parse_int, register, sub_dispatch, subcommands)
from kvtwist.engine.users import DEFAULT_USER, WRONGPASS, auth_for, authenticate
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


@register("quit", -1, "fast no_auth", 0, 0, 0, aliases="exit")
def cmd_quit(session, argv):
    session.closing = True
    return OK


@register("auth", -2, "noscript loading stale fast no_auth allow_busy", 0, 0, 0)
def cmd_auth(session, argv):
    """AUTH [username] password."""
    if len(argv) > 3:
        raise CommandError(SYNTAX)
    if len(argv) == 2:
        if not auth_for(session.store).required:
            raise CommandError("ERR AUTH <password> called without any password configured "
                               "for the default user. Are you sure your configuration is "
                               "correct?")
        username, password = DEFAULT_USER, argv[1]
    else:
        username, password = argv[1], argv[2]
    if not authenticate(session, username, password):
        raise CommandError(WRONGPASS)
    return OK


@register("hello", -1, "fast noscript loading stale no_auth", 0, 0, 0)
def cmd_hello(session, argv):
    """HELLO [protover [AUTH user pass] [SETNAME name]]: RESP2 or RESP3, logging in on the way."""
    version = None
    if len(argv) > 1:
        try:
            version = parse_int(argv[1])
        except CommandError:
            raise CommandError("ERR Protocol version is not an integer or out of range")
        if version not in (2, 3):
            raise CommandError("NOPROTO unsupported protocol version")
    index, name = 2, None
    while index < len(argv):
        option = argv[index].lower()
        if option == b"auth" and index + 2 < len(argv):
            if not authenticate(session, argv[index + 1], argv[index + 2]):
                raise CommandError(WRONGPASS)
            index += 3
        elif option == b"setname" and index + 1 < len(argv):
            name = argv[index + 1]
            if not _valid_name(name):
                raise CommandError(
                    "ERR Client names cannot contain spaces, newlines or special characters.")
            index += 2
        else:
            raise CommandError("ERR Syntax error in HELLO option '%s'"
                               % (argv[index].decode("utf-8", "replace"),))
    if not session.authenticated:
        raise CommandError("NOAUTH HELLO must be called with the client already "
                           "authenticated, otherwise the HELLO AUTH <user> <pass> option can "
                           "be used to authenticate the client and select the RESP protocol "
                           "version at the same time")
    if version is not None:
        session.protocol = version
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
    b"renamenx": b"key newkey", b"dump": b"[key] (no key: every pair)", b"flush": b"[ASYNC|SYNC]",
    b"ping": b"[message]", b"echo": b"message", b"info": b"[section ...]", b"select": b"0",
    b"client": b"subcommand [arg ...] (CLIENT HELP)", b"config": b"GET pattern | SET name value",
    b"command": b"[COUNT|INFO name ...|DOCS|LIST]",
    b"compact": b"(snapshot the journal in the background)",
    b"bgrewriteaof": b"(alias of COMPACT)",
    b"restore": b"key ttl serialized-value [REPLACE] [ABSTTL]",
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



def _help_lines(container: bytes, lines) -> list:
    return ([b"%s <subcommand> [<arg> [value] [opt] ...]. Subcommands are:" % container]
            + [line.encode() for line in lines])


# -- CLIENT (other families add subcommands through table.subcommands("client")) ------


def _valid_name(name: bytes) -> bool:
    return all(0x21 <= byte <= 0x7E for byte in name)


def client_line(session) -> bytes:
    """Return one CLIENT LIST line (no newline) describing a session."""
    age = int(session.store.clock.seconds() - session.created)
    return (b"id=%d addr=%s laddr= fd=-1 name=%s age=%d idle=0 flags=N db=0 sub=0 psub=0 "
            b"multi=-1 qbuf=0 qbuf-free=0 obl=0 oll=0 omem=0 events=r cmd=%s user=default "
            b"resp=2 lib-name=%s lib-ver=%s" % (
                session.id, session.peer.encode("utf-8", "replace"), session.name or b"", age,
                session.last_command or b"NULL", session.lib_name, session.lib_ver))


def _client_setname(session, argv):
    if not _valid_name(argv[2]):
        raise CommandError("ERR Client names cannot contain spaces, newlines or special "
                           "characters.")
    session.name = argv[2] or None
    return OK


def _client_setinfo(session, argv):
    attribute = argv[2].lower()
    if attribute not in (b"lib-name", b"lib-ver"):
        raise CommandError("ERR Unrecognized option '%s'" % (argv[2].decode("utf-8", "replace"),))
    if not _valid_name(argv[3]):
        raise CommandError("ERR %s cannot contain spaces, newlines or special characters."
                           % (attribute.decode(),))
    if attribute == b"lib-name":
        session.lib_name = argv[3]
    else:
        session.lib_ver = argv[3]
    return OK


def _client_list(session, argv):
    clients = sorted(session.store.clients.values(), key=lambda each: each.id)
    if len(argv) > 2:
        option = argv[2].lower()
        if option == b"type" and len(argv) == 4:
            if argv[3].lower() not in (b"normal", b"master", b"replica", b"pubsub", b"slave"):
                raise CommandError("ERR Unknown client type '%s'" % (
                    argv[3].decode("utf-8", "replace"),))
            clients = clients if argv[3].lower() == b"normal" else []
        elif option == b"id" and len(argv) > 3:
            ids = set()
            for raw in argv[3:]:
                try:
                    ids.add(parse_int(raw))
                except CommandError:
                    raise CommandError("ERR Invalid client ID")
            clients = [each for each in clients if each.id in ids]
        else:
            raise CommandError(SYNTAX)
    return b"".join(client_line(each) + b"\n" for each in clients)


def _on_off(session, argv):
    if argv[2].lower() not in (b"on", b"off"):
        raise CommandError(SYNTAX)
    return OK


CLIENT_SUBCOMMANDS = subcommands("client")
CLIENT_SUBCOMMANDS.update({
    b"id": (2, lambda session, argv: session.id),
    b"getname": (2, lambda session, argv: session.name),
    b"setname": (3, _client_setname),
    b"setinfo": (4, _client_setinfo),
    b"info": (2, lambda session, argv: client_line(session) + b"\n"),
    b"list": (-2, _client_list),
    b"no-evict": (3, _on_off),
    b"no-touch": (3, _on_off),
    b"help": (2, lambda session, argv: _help_lines(b"CLIENT", [
        "GETNAME", "    Return the name of the current connection.", "ID",
        "    Return the ID of the current connection.", "INFO",
        "    Return information about the current client connection.",
        "LIST [TYPE normal|master|replica|pubsub] [ID <id> [<id> ...]]",
        "    Return information about client connections.", "NO-EVICT (ON|OFF)",
        "    Accepted for compatibility.", "NO-TOUCH (ON|OFF)", "    Accepted for compatibility.",
        "SETINFO <LIB-NAME|LIB-VER> <value>", "    Record the client library's name or version.",
        "SETNAME <name>", "    Assign the name <name> to the current connection."])),
})


@register("client", -2, "admin noscript loading stale", 0, 0, 0)
def cmd_client(session, argv):
    return sub_dispatch(CLIENT_SUBCOMMANDS, argv, session)


# -- CONFIG -------------------------------------------------------------------------

# Fixed when the server starts: Redis's own answer for an immutable setting.
IMMUTABLE_CONFIG = frozenset(["databases", "port", "bind", "dir", "appendonly", "appendfsync",
                              "dbfilename"])


def _config_get(session, argv):
    config = session.store.config
    # Parameters a family defines (table.define_config) until CONFIG is rebuilt over them.
    config = dict([(name, param.default) for name, param in PARAMS.items()], **config)
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
        param = PARAMS.get(name)
        if param is not None:
            text = argv[index + 1].decode("utf-8", "replace")
            try:
                value = param.parse(text)
            except ValueError as exc:
                raise CommandError("ERR CONFIG SET failed (possibly related to argument '%s') "
                                   "- %s" % (name, exc))
            config[name] = text
            if param.apply is not None:
                param.apply(session.store, value)
            continue
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
    store.databases.reset_stats()
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


