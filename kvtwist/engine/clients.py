"""Connection commands: CLIENT (LIST, INFO, KILL, REPLY, PAUSE, ...) and MONITOR, as Redis 7.0.

The serve layer tells each session what only it knows (``laddr``, ``fd``,
``last_interaction``, ``disconnect``, ``push``) and serves what the engine decides here:
CLIENT REPLY's silenced replies and CLIENT PAUSE's held commands (see
kvtwist.engine.hooks). Other families add CLIENT subcommands through
``table.subcommands("client")`` (TRACKING lives in kvtwist.engine.tracking).
"""

from __future__ import annotations

from kvtwist.engine.hooks import INTERRUPT, hooks_for
from kvtwist.engine.table import (
    SYNTAX, TABLE, SUBCOMMANDS, define_config, parse_int, register, sub_dispatch, subcommands)
from kvtwist.wire.replies import NO_REPLY, OK, CommandError, Error, Status

CLIENT_TYPES = (b"normal", b"master", b"replica", b"slave", b"pubsub")

# Commands that may replicate though not writes (Redis's may-replicate flag): a WRITE pause
# holds them too.
MAY_REPLICATE = frozenset([b"publish", b"eval", b"evalsha", b"fcall"])


def valid_name(name: bytes) -> bool:
    """Return whether a client name has no spaces, newlines or special characters."""
    return all(0x21 <= byte <= 0x7E for byte in name)


def full_name(argv) -> bytes:
    """Return a command's name as CLIENT LIST's cmd field shows it: "client|list", "get"."""
    if not argv:
        return b"NULL"
    command = TABLE.get(argv[0].lower())
    if command is None:
        return b"NULL"
    container = SUBCOMMANDS.get(command.name)
    if container is not None and len(argv) > 1 and argv[1].lower() in container:
        return command.name + b"|" + argv[1].lower()
    return command.name


# -- CLIENT LIST / INFO -------------------------------------------------------------------


def _tracking(session):
    tracker = getattr(session.store, "tracker", None)
    return None if tracker is None else tracker.tracking.get(session.id)


def _subscriptions(session) -> tuple:
    """Return the session's (channels, patterns, shard channels) counts."""
    pubsub = getattr(session.store, "pubsub", None)
    state = None if pubsub is None else pubsub.clients.get(session.id)
    if state is None:
        return 0, 0, 0
    return len(state.channels), len(state.patterns), len(state.shard)


def _flags(session, tracking, subscribed) -> bytes:
    flags = b""
    if session in session.store.monitors:
        flags += b"O"
    if any(subscribed):
        flags += b"P"
    if session.blocked is not None:  # BLPOP...: engine/blocking.py
        flags += b"b"
    if session.multi is not None:
        flags += b"x"
    if tracking is not None:
        flags += b"t"
        if tracking.bcast:
            flags += b"B"
        if tracking.broken:
            flags += b"R"
    watching = session.watching
    if watching is not None and getattr(watching, "dirty", False):
        flags += b"d"
    if session.closing is True:
        flags += b"c"
    if session.no_evict:
        flags += b"e"
    return flags or b"N"


def _request_size(argv) -> int:
    # The bytes of the command being served as RESP: Redis's qbuf while it runs.
    return len(b"*%d\r\n" % len(argv)) + sum(
        len(b"$%d\r\n" % len(arg)) + len(arg) + 2 for arg in argv)


def client_line(session) -> bytes:
    """Return one CLIENT LIST line (no newline) describing a session, in Redis 7.0's format.

    Cost: O(channels) for the sub count. Fields Redis measures in its own buffers (qbuf,
    argv-mem, rbs, obl...) are the sizes of the command in hand, or 0.
    """
    store = session.store
    now = store.clock.seconds()
    tracking = _tracking(session)
    subscribed = _subscriptions(session)
    current = store.current is session
    qbuf = _request_size(session.last_argv) if current else 0
    argv_mem = sum(map(len, session.last_argv)) if current else 0
    multi = session.multi
    multi_mem = 0 if multi is None else sum(sum(map(len, argv)) for argv in multi.queued)
    redirect = -1 if tracking is None else tracking.redirect
    fd = session.fd
    # What the client has not read yet, as the serve layer measures it (Redis's omem).
    output = getattr(session, "output_memory", None)
    omem = output() if output is not None else 0
    return (b"id=%d addr=%s laddr=%s fd=%d name=%s age=%d idle=%d flags=%s db=%d sub=%d "
            b"psub=%d ssub=%d multi=%d qbuf=%d qbuf-free=%d argv-mem=%d multi-mem=%d rbs=%d "
            b"rbp=%d obl=0 oll=0 omem=%d tot-mem=%d events=r cmd=%s user=%s redir=%d "
            b"resp=%d lib-name=%s lib-ver=%s" % (
                session.id, session.peer.encode("utf-8", "replace"),
                session.laddr.encode("utf-8", "replace"), fd, session.name or b"",
                int(now - session.created), int(now - session.last_interaction),
                _flags(session, tracking, subscribed), session.db, subscribed[0],
                subscribed[1], subscribed[2],
                -1 if multi is None else len(multi.queued), qbuf,
                0 if not qbuf else max(0, 20474 - qbuf), argv_mem, multi_mem,
                1024, 1024, omem, 2048 + qbuf + argv_mem + multi_mem + omem,
                full_name(session.last_argv), session.user.name, redirect, session.protocol,
                session.lib_name, session.lib_ver))


def subcommand_syntax(argv) -> CommandError:
    """Return Redis's addReplySubcommandSyntaxError for a container command's argv."""
    return CommandError("ERR unknown subcommand or wrong number of arguments for '%s'. Try %s "
                        "HELP." % (argv[1][:128].decode("utf-8", "replace"),
                                   argv[0].decode("utf-8", "replace").upper()))


def _client_type(raw: bytes) -> bytes:
    kind = raw.lower()
    if kind not in CLIENT_TYPES:
        raise CommandError("ERR Unknown client type '%s'" % (raw.decode("utf-8", "replace"),))
    return b"replica" if kind == b"slave" else kind


def _is_type(session, kind: bytes) -> bool:
    # Redis's getClientType: a MONITOR client counts as a replica, a subscriber as pubsub.
    if session in session.store.monitors:
        return kind == b"replica"
    if any(_subscriptions(session)):
        return kind == b"pubsub"
    return kind == b"normal"


def _clients(store) -> list:
    return sorted(store.clients.values(), key=lambda each: each.id)


def _client_list(session, argv):
    """CLIENT LIST [TYPE type] [ID id ...]: O(clients)."""
    clients = _clients(session.store)
    if len(argv) == 4 and argv[2].lower() == b"type":
        kind = _client_type(argv[3])
        clients = [each for each in clients if _is_type(each, kind)]
    elif len(argv) > 3 and argv[2].lower() == b"id":
        ids = []
        for raw in argv[3:]:
            try:
                ids.append(parse_int(raw))
            except CommandError:
                raise CommandError("ERR Invalid client ID")
        by_id = session.store.clients
        clients = [by_id[each] for each in ids if each in by_id]
    elif len(argv) != 2:
        raise CommandError(SYNTAX)
    return b"".join(client_line(each) + b"\n" for each in clients)


# -- CLIENT KILL --------------------------------------------------------------------------


def kill(session, target) -> None:
    """Close ``target``'s connection once its pending replies are written."""
    if target is session:
        session.closing = True  # after this command's reply
        return
    target.closing = True
    disconnect = target.disconnect
    if disconnect is not None:
        disconnect()
    # Gone at once for every other client (CLIENT LIST, pub/sub, tracking), as in Redis,
    # while its connection finishes writing; the connection's own close drops it again.
    session.store.drop_session(target)


def _client_kill(session, argv):
    """CLIENT KILL addr | CLIENT KILL [ID id] [TYPE t] [USER u] [ADDR a] [LADDR a] [SKIPME y/n].

    O(clients).
    """
    addr = laddr = kind = None
    client_id = 0
    skipme = True
    if len(argv) == 3:
        addr, skipme = argv[2], False  # the old form can kill the caller
    elif len(argv) > 3:
        index = 2
        while index < len(argv):
            option = argv[index].lower()
            if index + 1 >= len(argv):
                raise CommandError(SYNTAX)
            value = argv[index + 1]
            if option == b"id":
                try:
                    client_id = parse_int(value)
                except CommandError:
                    client_id = 0
                if client_id < 1:
                    raise CommandError("ERR client-id should be greater than 0")
            elif option == b"type":
                kind = _client_type(value)
            elif option == b"addr":
                addr = value
            elif option == b"laddr":
                laddr = value
            elif option == b"user":
                if value != b"default":
                    raise CommandError("ERR No such user '%s'" % (value.decode("utf-8",
                                                                                "replace"),))
            elif option == b"skipme":
                if value.lower() not in (b"yes", b"no"):
                    raise CommandError(SYNTAX)
                skipme = value.lower() == b"yes"
            else:
                raise CommandError(SYNTAX)
            index += 2
    killed = 0
    for each in _clients(session.store):
        if addr is not None and each.peer.encode("utf-8", "replace") != addr:
            continue
        if laddr is not None and each.laddr.encode("utf-8", "replace") != laddr:
            continue
        if kind is not None and not _is_type(each, kind):
            continue
        if client_id and each.id != client_id:
            continue
        if each is session and skipme:
            continue
        kill(session, each)
        killed += 1
    if len(argv) == 3:
        return OK if killed else Error("ERR No such client")
    return killed


# -- CLIENT REPLY, PAUSE, UNPAUSE, UNBLOCK and small ones --------------------------------


def _client_reply(session, argv):
    mode = argv[2].lower()
    if mode == b"on":
        session.reply_mode = b"on"
        session.closing = session.closing or INTERRUPT
        return OK
    if mode == b"off":
        session.reply_mode = b"off"
    elif mode == b"skip":
        if session.reply_mode != b"off":
            session.reply_mode = b"skip"
    else:
        raise CommandError(SYNTAX)
    session.closing = session.closing or INTERRUPT  # the protocol serves the next ones
    return NO_REPLY


def _pause_end(session, raw: bytes) -> float:
    try:
        milliseconds = parse_int(raw)
    except CommandError:
        raise CommandError("ERR timeout is not an integer or out of range")
    if milliseconds < 0:
        raise CommandError("ERR timeout is negative")
    if milliseconds == 0:
        return 0.0
    return session.store.clock.seconds() + milliseconds / 1000.0


def _client_pause(session, argv):
    """CLIENT PAUSE ms [WRITE|ALL]: the serve layer holds the affected clients' commands."""
    mode = b"all"
    if len(argv) == 4:
        mode = argv[3].lower()
        if mode not in (b"write", b"all"):
            raise CommandError("ERR CLIENT PAUSE mode must be WRITE or ALL")
    elif len(argv) != 3:
        raise subcommand_syntax(argv)
    end = _pause_end(session, argv[2])
    store = session.store
    if end <= store.clock.seconds():
        pause_clients(store, None, 0.0)
    else:
        pause_clients(store, mode, end)
        session.closing = session.closing or INTERRUPT  # the caller's next commands wait too
    return OK


def pause_clients(store, mode, end: float) -> None:
    """Pause clients (``mode`` b"write" or b"all") until ``end``, or unpause (None)."""
    store.pause_mode = mode
    store.pause_end = end if mode is not None else 0.0
    hooks_for(store).paused(store)


def pause_applies(store, session, argv) -> bool:
    """Return whether ``argv`` from ``session`` must wait for the pause to end.

    ALL holds every command; WRITE holds writes, commands that may replicate and an
    EXEC holding writes (Redis's processCommand), and readonly commands still run.
    """
    mode = store.pause_mode
    if mode is None:
        return False
    if store.pause_end <= store.clock.seconds():
        pause_clients(store, None, 0.0)
        return False
    if mode == b"all":
        return True
    name = argv[0].lower() if argv else b""
    command = TABLE.get(name)
    if command is None:
        return False
    if command.write or command.name in MAY_REPLICATE:
        return True
    return command.name == b"exec" and session.multi is not None and session.multi.writes


def _client_unpause(session, argv):
    pause_clients(session.store, None, 0.0)
    return OK


def _client_unblock(session, argv):
    """CLIENT UNBLOCK id [TIMEOUT|ERROR]: 1 when a blocked client was woken, else 0.

    engine/blocking.py installs ``store.unblock(target, error)`` (returning whether the
    target was blocked) once a client first blocks; before that nobody is blocked.
    """
    if len(argv) > 4:
        raise subcommand_syntax(argv)
    error = False
    if len(argv) == 4:
        reason = argv[3].lower()
        if reason not in (b"timeout", b"error"):
            raise CommandError("ERR CLIENT UNBLOCK reason should be TIMEOUT or ERROR")
        error = reason == b"error"
    target = session.store.clients.get(parse_int(argv[2]))
    unblock = getattr(session.store, "unblock", None)
    if target is None or unblock is None:
        return 0
    return 1 if unblock(target, error) else 0


def _on_off(attribute: str):
    def handler(session, argv):
        state = argv[2].lower()
        if state not in (b"on", b"off"):
            raise CommandError(SYNTAX)
        setattr(session, attribute, state == b"on")
        return OK
    return handler


def _client_setname(session, argv):
    if not valid_name(argv[2]):
        raise CommandError("ERR Client names cannot contain spaces, newlines or special "
                           "characters.")
    session.name = argv[2] or None
    return OK


def _client_setinfo(session, argv):
    attribute = argv[2].lower()
    if attribute not in (b"lib-name", b"lib-ver"):
        raise CommandError("ERR Unrecognized option '%s'" % (argv[2].decode("utf-8", "replace"),))
    if not valid_name(argv[3]):
        raise CommandError("ERR %s cannot contain spaces, newlines or special characters."
                           % (attribute.decode(),))
    if attribute == b"lib-name":
        session.lib_name = argv[3]
    else:
        session.lib_ver = argv[3]
    return OK


HELP = [
    "CLIENT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "CACHING (YES|NO)",
    "    Enable/disable tracking of the keys for next command in OPTIN/OPTOUT modes.",
    "GETREDIR",
    "    Return the client ID we are redirecting to when tracking is enabled.",
    "GETNAME", "    Return the name of the current connection.",
    "ID", "    Return the ID of the current connection.",
    "INFO", "    Return information about the current client connection.",
    "KILL <ip:port>", "    Kill connection made from <ip:port>.",
    "KILL <option> <value> [<option> <value> [...]]",
    "    Kill connections. Options are:",
    "    * ADDR (<ip:port>|<unixsocket>:0)",
    "      Kill connections made from the specified address",
    "    * LADDR (<ip:port>|<unixsocket>:0)",
    "      Kill connections made to specified local address",
    "    * TYPE (NORMAL|MASTER|REPLICA|PUBSUB)",
    "      Kill connections by type.",
    "    * USER <username>",
    "      Kill connections authenticated by <username>.",
    "    * SKIPME (YES|NO)",
    "      Skip killing current connection (default: yes).",
    "LIST [options ...]",
    "    Return information about client connections. Options:",
    "    * TYPE (NORMAL|MASTER|REPLICA|PUBSUB)",
    "      Return clients of specified type.",
    "UNPAUSE", "    Stop the current client pause, resuming traffic.",
    "PAUSE <timeout> [WRITE|ALL]",
    "    Suspend all, or just write, clients for <timeout> milliseconds.",
    "REPLY (ON|OFF|SKIP)", "    Control the replies sent to the current connection.",
    "SETNAME <name>", "    Assign the name <name> to the current connection.",
    "UNBLOCK <clientid> [TIMEOUT|ERROR]", "    Unblock the specified blocked client.",
    "TRACKING (ON|OFF) [REDIRECT <id>] [BCAST] [PREFIX <prefix> [...]]",
    "         [OPTIN] [OPTOUT] [NOLOOP]",
    "    Control server assisted client side caching.",
    "TRACKINGINFO", "    Report tracking status for the current connection.",
    "NO-EVICT (ON|OFF)", "    Protect current client connection from eviction.",
    "HELP", "    Prints this help.",
]


CLIENT_SUBCOMMANDS = subcommands("client")
CLIENT_SUBCOMMANDS.update({
    b"id": (2, lambda session, argv: session.id),
    b"getname": (2, lambda session, argv: session.name),
    b"setname": (3, _client_setname),
    b"setinfo": (4, _client_setinfo),
    b"info": (2, lambda session, argv: client_line(session) + b"\n"),
    b"list": (-2, _client_list),
    b"kill": (-3, _client_kill),
    b"reply": (3, _client_reply),
    b"pause": (-3, _client_pause),
    b"unpause": (2, _client_unpause),
    b"unblock": (-3, _client_unblock),
    b"no-evict": (3, _on_off("no_evict")),
    b"no-touch": (3, _on_off("no_touch")),
    b"help": (2, lambda session, argv: [Status(line.encode()) for line in HELP]),
})


@register("client", -2, "admin noscript loading stale", 0, 0, 0)
def cmd_client(session, argv):
    return sub_dispatch(CLIENT_SUBCOMMANDS, argv, session)


def _inline_replies(text: str) -> str:
    if text.lower() not in ("text", "resp"):
        raise ValueError("argument must be 'text' or 'resp'")
    return text.lower()


# How a connection whose first request is an inline line is answered: kvtwist's
# redis-cli-like text, or RESP as redis-server does. Read when a connection picks its
# dialect, so CONFIG SET changes new connections only.
define_config("inline-replies", "text", parse=_inline_replies)

__all__ = ["MAY_REPLICATE", "client_line", "full_name", "kill", "pause_applies",
           "pause_clients", "valid_name"]
