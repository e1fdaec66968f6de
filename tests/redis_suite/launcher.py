"""kvstore in place of ``src/redis-server CONFIGFILE`` for the own-server runs of Redis's suite.

The suite's harness (tests/support/server.tcl) writes a redis.conf-style CONFIGFILE from
tests/assets/default.conf plus the test's overrides, starts ``src/redis-server CONFIGFILE``
with stdout and stderr appended to files, waits for the line holding `` PID: <pid>`` (Redis's
logo; "Failed listening on port" instead makes it retry on another port), PINGs the port,
waits for "Ready to accept connections", and later stops the server with ``kill <pid>``.

The runner writes a two-line ``src/redis-server`` shell script that execs this module, so
the PID the harness holds is kvstore's own: this process parses twistd's options and runs
``twistd -n kvstore --config CONFIGFILE`` in itself (no further child). Before that it
comments out (with ``MARK``, so a restart sees them again) the few directives of the
harness's default.conf that kvstore has no parameter for and whose value is what kvstore
does anyway (``HARMLESS``); every other directive kvstore does not know makes it refuse to
start, naming the file and line. ``port``, ``bind`` and ``unixsocket`` become ``--listen``
endpoints; ``dir`` is kvstore's ``--data`` (its --config maps it). CONFIG REWRITE therefore
rewrites the harness's own file, and a restart_server reads what it wrote.

When kvstore is listening (its data loaded, as when Redis prints its logo) the launcher
prints `` PID: <pid>`` and "Ready to accept connections". When kvstore cannot start for
another reason than a busy port it prints its reason, then the PID line, and exits 1: the
harness stops waiting at once (instead of its two minutes), fails to PING it and reports
"Can't start the Redis server" with the log and the reason.
"""

from __future__ import annotations

import os
import stat
import sys
import time
from typing import List, Optional, Tuple

MARK = "# [kvstore launcher] "
# default.conf's directives kvstore has no parameter for, with the values at which kvstore
# behaves as Redis does with them (None: any value; only the log's look depends on it).
HARMLESS = {
    "always-show-logo": None,  # the launcher prints the logo's PID line itself
    "daemonize": ("no",),  # twistd -n stays in the foreground
    "pidfile": None,  # nothing reads it: the harness keeps the PID it started
    "loglevel": None,  # kvstore's log is twistd's, not Redis's
    "logfile": ("",),  # "" is stdout, where twistd logs
    "timeout": ("0",),  # no idle-client timeout, kvstore has none
    "appendonly": ("no",),  # kvstore journals every write; "no" only spares Redis an AOF
    "save": ("900 1",),  # nor an RDB snapshot (kvstore accepts only save "")
    "no-appendfsync-on-rewrite": ("no",),  # kvstore never skips an fsync
    "rdbcompression": ("yes",),  # kvstore writes no RDB file
    "dbfilename": ("dump.rdb",),
    "activerehashing": ("yes",),  # no incremental rehashing to turn off
    "repl-diskless-sync-delay": ("0",),  # kvstore has no replication
    "slave-serve-stale-data": ("yes",),
    "propagation-error-behavior": ("panic",),
    "enable-protected-configs": ("yes",),  # kvstore gates none of these
    "enable-debug-command": ("yes",),
    "enable-module-command": ("yes",),
}
LISTEN_DIRECTIVES = ("port", "bind", "unixsocket", "unixsocketperm")
DEFAULT_PORT = "6379"
UNIX_PATH_MAX = 107  # sizeof(sockaddr_un.sun_path) - 1 on Linux


class LaunchError(Exception):
    """The configuration cannot be run by kvstore; the message says why."""


def _split(line: str) -> Optional[List[str]]:
    """A line's words as Redis splits them (None for a blank line, a comment or bad quotes)."""
    from kvtwist.wire.inline import UnbalancedQuotes, split_args

    stripped = line.strip()
    if not stripped or stripped.startswith("#"):
        return None
    try:
        words = split_args(stripped.encode("utf-8", "surrogateescape"))
    except UnbalancedQuotes:
        return None
    words = [word.decode("utf-8", "surrogateescape") for word in words]
    if words:
        words[0] = words[0].lower()
    return words or None


def _harmless(words: List[str]) -> bool:
    values = HARMLESS.get(words[0], ())
    return values is None or (len(words) > 1 and " ".join(words[1:]).lower() in values)


def translate(lines: List[str]) -> Tuple[List[str], List[str], Optional[str]]:
    """Return (the file's new lines, the --listen endpoints, the unix socket's path or None)
    for a CONFIGFILE's lines; O(lines).

    A line is commented out with MARK when its directive is HARMLESS at its value or is
    ``unixsocket``/``unixsocketperm`` (served by --listen); a line MARK commented out earlier
    is read again first, so translating twice gives the same file. The unix socket's path is
    cut to UNIX_PATH_MAX bytes, as Redis's anetUnixServer copies it into sun_path.
    """
    out = []
    port, binds, unix = DEFAULT_PORT, ["127.0.0.1"], None
    for line in lines:
        text = line[len(MARK):] if line.startswith(MARK) else line
        words = _split(text)
        if words is None:
            out.append(line)
            continue
        name = words[0]
        if name == "port" and len(words) == 2:
            port = words[1]
        elif name == "bind" and len(words) > 1:
            binds = words[1:]
        elif name == "unixsocket" and len(words) == 2:
            unix = words[1].encode("utf-8", "surrogateescape")[:UNIX_PATH_MAX].decode(
                "utf-8", "surrogateescape")
        drop = name in ("unixsocket", "unixsocketperm") or _harmless(words)
        out.append(MARK + text if drop else text)
    if not port.isdigit() or int(port) > 65535:
        raise LaunchError("bad port '%s'" % (port,))
    listen = []
    if port != "0":
        for bind in binds:
            bind = bind.lstrip("-")  # Redis's "optional address" prefix
            bind = "0.0.0.0" if bind == "*" else bind
            listen.append("tcp:%s:interface=%s" % (port, bind.replace(":", "\\:")))
    if unix:
        # No lock file: Redis removes a socket left behind and binds (see prepare).
        listen.append("unix:%s:lockfile=0" % (unix.replace(":", "\\:"),))
    if not listen:
        raise LaunchError("neither a TCP port nor a unixsocket to listen on")
    return out, listen, unix


def prepare(config_file: str) -> List[str]:
    """Translate CONFIGFILE in place (only when that changes it) and remove a unix socket
    left at its path, as Redis does before listening; return the --listen endpoints."""
    with open(config_file, "rb") as handle:
        text = handle.read().decode("utf-8", "surrogateescape")
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    new, listen, unix = translate(lines)
    if new != lines:
        temporary = "%s.launcher-%d" % (config_file, os.getpid())
        with open(temporary, "wb") as handle:
            handle.write(("\n".join(new) + "\n").encode("utf-8", "surrogateescape"))
        os.rename(temporary, config_file)
    if unix is not None:
        try:
            if stat.S_ISSOCK(os.lstat(unix).st_mode):
                os.unlink(unix)
        except FileNotFoundError:
            pass
    return listen


def twistd_args(config_file: str, listen: List[str], extra: List[str]) -> List[str]:
    """twistd's argv (after the program name) running kvstore on CONFIGFILE."""
    args = ["--pidfile=", "--nodaemon", "--logfile=-", "kvstore", "--config", config_file]
    for endpoint in listen:
        args += ["--listen", endpoint]
    return args + list(extra)


def write(fd: int, text: str) -> None:
    """Write to a file descriptor directly (stdout: past twistd's capture of sys.stdout)."""
    os.write(fd, text.encode("utf-8", "replace"))


def say(text: str) -> None:
    """Log a line to stdout (the harness's log file) in Redis's log format."""
    stamp = time.strftime("%d %b %Y %H:%M:%S", time.localtime())
    write(1, "%d:M %s * %s\n" % (os.getpid(), stamp, text))


def pid_line() -> str:
    """The line the harness waits for (Redis's logo holds "PID: <pid>")."""
    return "kvstore launched for Redis's test suite, PID: %d" % (os.getpid(),)


def give_up(reason: str) -> int:
    """Report a start-up failure the way the harness notices at once; return the status."""
    write(2, "kvstore launcher: %s\n" % (reason,))
    say("kvstore did not start: %s" % (reason,))
    say(pid_line())
    return 1


def main(argv: Optional[List[str]] = None) -> int:
    """``launcher.py [kvstore option ...] -- CONFIGFILE``: run kvstore, return its status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    extra, rest = (argv[:argv.index("--")], argv[argv.index("--") + 1:]) if "--" in argv \
        else ([], argv)
    if len(rest) != 1:
        return give_up("usage: redis-server CONFIGFILE (kvstore takes no command-line "
                       "directives; got %r)" % (rest,))
    config_file = rest[0]
    try:
        listen = prepare(config_file)
    except (OSError, LaunchError) as error:
        return give_up("%s: %s" % (config_file, error))
    return run_twistd(twistd_args(config_file, listen, extra))


def run_twistd(args: List[str]) -> int:
    """Run twistd in this process, announcing readiness once its reactor runs."""
    from twisted.internet.error import CannotListenError
    from twisted.python import usage
    from twisted.scripts.twistd import ServerOptions, runApp

    sys.argv = ["twistd"] + args
    config = ServerOptions()
    try:
        config.parseOptions(args)  # kvstore's options install its reactor
    except usage.UsageError as error:
        return give_up(str(error))
    from twisted.internet import reactor

    ready = []

    def announce():
        ready.append(True)
        say(pid_line())
        say("Ready to accept connections")

    reactor.callWhenRunning(announce)
    try:
        runApp(config)
    except CannotListenError as error:
        if not isinstance(error.port, int):  # the unix socket: the harness must not retry
            return give_up(str(error))
        # A busy TCP port: Redis's line, on which the harness retries on another port.
        say("Failed listening on port %s (TCP), aborting. (%s)" % (error.port, error))
        return 1
    except SystemExit as error:
        if ready or error.code in (None, 0):
            raise
        return give_up(str(error.code))
    except Exception as error:  # any other failure to start: say it, not a 2-minute wait
        if ready:
            raise
        return give_up("%s: %s" % (type(error).__name__, error))
    return 0
