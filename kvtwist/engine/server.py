"""Connection and server commands: PING, AUTH, HELLO, COMPACT and friends.

CLIENT and MONITOR live in kvtwist.engine.clients, SAVE, SHUTDOWN, DEBUG... in
kvtwist.engine.admin, CONFIG in kvtwist.engine.config, COMMAND in
kvtwist.engine.introspect."""

from __future__ import annotations

from twisted.logger import Logger

from kvtwist.engine.table import (
    SYNTAX, TABLE, arity_error, parse_int, register)
from kvtwist.wire.replies import OK, PONG, CommandError, Pairs, Status
from kvtwist.engine.users import DEFAULT_USER, WRONGPASS, auth_for, authenticate

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
        if auth_for(session.store).default.nopass:
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



def _valid_name(name: bytes) -> bool:
    return all(0x21 <= byte <= 0x7E for byte in name)
