"""MONITOR, as Redis 7.0: every command any client runs, as a line, to the monitoring clients.

``Session.execute`` calls ``store.feed_monitors`` after each command while
``store.monitors`` is not empty; the serve layer refuses key commands from a monitoring
client and shows it its own commands after their replies (kvtwist.serve.held).
"""

from __future__ import annotations

from kvtwist.engine.hooks import INTERRUPT
from kvtwist.engine.introspect import command_data
from kvtwist.engine.table import TABLE, register
from kvtwist.wire.replies import NO_REPLY, OK, CommandError, Status



def _hidden(command, argv) -> bool:
    # MONITOR does not show admin (nor skip_monitor) commands and subcommands: a
    # subcommand's flags are Redis 7.0's (ACL SETUSER, CONFIG SET... are admin).
    flags = command.flags
    if len(argv) >= 2:
        entry = command_data().get("%s|%s" % (command.name.decode("utf-8", "replace"),
                                               argv[1].lower().decode("utf-8", "replace")))
        if entry is not None:
            flags = entry["flags"]
    return "admin" in flags or "skip_monitor" in flags



def _repr(arg: bytes) -> bytes:
    # sdscatrepr: quoted, \\ \" \n \r \t \a \b escaped, other unprintables as \xHH.
    out = bytearray(b'"')
    for byte in arg:
        if byte in _ESCAPED:
            out += _ESCAPED[byte]
        elif 0x20 <= byte < 0x7F:
            out.append(byte)
        else:
            out += b"\\x%02x" % byte
    out += b'"'
    return bytes(out)


_ESCAPED = {0x5C: b"\\\\", 0x22: b'\\"', 0x0A: b"\\n", 0x0D: b"\\r", 0x09: b"\\t",
            0x07: b"\\a", 0x08: b"\\b"}


def monitor_line(session, argv, now: float) -> bytes:
    """Return the MONITOR line for ``argv`` run by ``session``, without "+" or CRLF."""
    whole = int(now)
    micros = int(round((now - whole) * 1000000))
    if micros >= 1000000:
        whole, micros = whole + 1, micros - 1000000
    return b"%d.%06d [%d %s] %s" % (whole, micros, session.db,
                                    session.peer.encode("utf-8", "replace"),
                                    b" ".join(_repr(arg) for arg in argv))


def feed_monitors(session, command, argv) -> None:
    """Send every MONITOR client the line of a command that just ran (not admin ones)."""
    if _hidden(command, argv):
        return
    store = session.store
    if command.name in REDACTING:
        argv = redacted(argv)
    line = Status(monitor_line(session, argv, store.clock.seconds()))
    for monitor in list(store.monitors):
        if monitor.id not in store.clients:
            store.monitors.remove(monitor)
        elif monitor is session:
            session.monitor_echo = line  # the serve layer sends it after the reply, as Redis
        elif monitor.push is not None and monitor.reply_mode == b"on":
            monitor.push(line)


REDACTED = b"(redacted)"
# CONFIG SET's SENSITIVE_CONFIG parameters.
SENSITIVE_CONFIGS = frozenset([b"requirepass", b"masterauth", b"masteruser"])


def redacted(argv) -> list:
    """Return ``argv`` as SLOWLOG and MONITOR show it: the arguments Redis 7.0 redacts
    (redactClientCommandArgument) replaced by ``(redacted)``: AUTH's, HELLO's AUTH user and
    password, every ACL SETUSER argument after SETUSER, MIGRATE's AUTH / AUTH2 credentials
    and the values of CONFIG SET requirepass, masterauth and masteruser. Redis redacts
    while parsing, so arguments after a syntax error stay as they are. O(len(argv))."""
    handler = REDACTING.get(argv[0].lower()) if argv else None
    if handler is None:
        return argv
    positions = handler(argv)
    if not positions:
        return argv
    out = list(argv)
    for index in positions:
        out[index] = REDACTED
    return out


def _auth(argv) -> list:
    return [] if len(argv) > 3 else list(range(1, len(argv)))


def _hello(argv) -> list:
    if len(argv) < 2:
        return []
    try:
        version = int(argv[1])
    except ValueError:
        return []
    if version not in (2, 3):
        return []
    found, index = [], 2
    while index < len(argv):
        more = len(argv) - 1 - index
        option = argv[index].lower()
        if option == b"auth" and more >= 2:
            found += [index + 1, index + 2]
            index += 3
        elif option == b"setname" and more:
            index += 2
        else:
            break
    return found


def _acl(argv) -> list:
    if len(argv) >= 3 and argv[1].lower() == b"setuser":
        return list(range(2, len(argv)))
    return []


def _config(argv) -> list:
    if len(argv) < 4 or len(argv) % 2 or argv[1].lower() != b"set":
        return []
    return [index + 1 for index in range(2, len(argv), 2)
            if argv[index].lower() in SENSITIVE_CONFIGS]


def _migrate(argv) -> list:
    found, index = [], 6
    while index < len(argv):
        more = len(argv) - 1 - index
        option = argv[index].lower()
        if option in (b"copy", b"replace"):
            index += 1
        elif option == b"auth" and more:
            found.append(index + 1)
            index += 2
        elif option == b"auth2" and more >= 2:
            found += [index + 1, index + 2]
            index += 3
        else:
            break
    return found


REDACTING = {b"auth": _auth, b"hello": _hello, b"acl": _acl, b"config": _config,
             b"migrate": _migrate}


@register("monitor", 1, "admin noscript loading stale", 0, 0, 0)
def cmd_monitor(session, argv):
    """Start sending this client a line for every command run (MONITOR)."""
    if getattr(session, "in_exec", False):
        raise CommandError("ERR MONITOR isn't allowed for DENY BLOCKING client")
    store = session.store
    if session in store.monitors:
        return NO_REPLY  # already monitoring: ignored, as Redis does
    store.feed_monitors = feed_monitors
    store.monitors.append(session)
    session.closing = session.closing or INTERRUPT  # its next commands are checked
    return OK


def monitor_refuses(session, argv) -> bool:
    """Return whether a MONITOR client may not run ``argv`` (a key-touching command)."""
    command = TABLE.get(argv[0].lower()) if argv else None
    return command is not None and (command.first_key != 0 or command.write)


REPLICA_KEYSPACE = "ERR Replica can't interact with the keyspace"
