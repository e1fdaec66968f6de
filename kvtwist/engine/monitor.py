"""MONITOR, as Redis 7.0: every command any client runs, as a line, to the monitoring clients.

``Session.execute`` calls ``store.feed_monitors`` after each command while
``store.monitors`` is not empty; the serve layer refuses key commands from a monitoring
client and shows it its own commands after their replies (kvtwist.serve.held).
"""

from __future__ import annotations

from kvtwist.engine.hooks import INTERRUPT
from kvtwist.engine.table import TABLE, register
from kvtwist.wire.replies import NO_REPLY, OK, CommandError, Status

# Subcommands Redis 7.0 flags "admin": MONITOR does not show them (nor any admin command).
_ADMIN_SUBCOMMANDS = {
    b"client": frozenset([b"kill", b"list", b"no-evict", b"pause", b"unblock", b"unpause"]),
    b"config": frozenset([b"get", b"set", b"resetstat", b"rewrite"]),
}



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
    if "admin" in command.flags or "skip_monitor" in command.flags:
        admin = _ADMIN_SUBCOMMANDS.get(command.name)
        if admin is None or len(argv) < 2 or argv[1].lower() in admin:
            return
    store = session.store
    if command.name in (b"hello", b"auth"):
        argv = _redacted(command.name, argv)
    line = Status(monitor_line(session, argv, store.clock.seconds()))
    for monitor in list(store.monitors):
        if monitor.id not in store.clients:
            store.monitors.remove(monitor)
        elif monitor is session:
            session.monitor_echo = line  # the serve layer sends it after the reply, as Redis
        elif monitor.push is not None and monitor.reply_mode == b"on":
            monitor.push(line)


def _redacted(name: bytes, argv) -> list:
    argv = list(argv)
    if name == b"auth":
        return argv[:1] + [b"(redacted)"] * (len(argv) - 1)
    for index in range(2, len(argv) - 2):
        if argv[index].lower() == b"auth":
            argv[index + 1] = argv[index + 2] = b"(redacted)"
    return argv


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

REPLICA_KEYSPACE = "ERR Replica can't interact with the keyspace"
