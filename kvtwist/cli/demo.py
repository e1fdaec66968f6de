"""``kvtwist demo``: Alice stores, Bob reads back, a transcript of the two-user session."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time

from twisted.internet import defer
from twisted.internet.error import ConnectError

import kvtwist
from kvtwist.wire.replies import NIL_ARRAY, Error
from kvtwist.wire.textreply import quote, to_text

# Alice's session: several pairs, then an overwrite of one of them.
ALICE = [
    [b"SET", b"demo:name", b"Alice"],
    [b"SET", b"demo:city", b"Paris"],
    [b"SET", b"demo:language", b"Python"],
    [b"SET", b"demo:motto", b"keep it simple"],
    [b"SET", b"demo:city", b"Lisbon"],
]
MISSING = b"demo:unicorn"
_SOURCE_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(kvtwist.__file__)))
MISSING_TRIES = 3


def expected_values() -> dict:
    """Return what Bob should read: each key's last value in Alice's session."""
    values = {}
    for _, key, value in ALICE:
        values[key] = value
    return values


def free_port(host: str = "127.0.0.1") -> int:
    """Return a TCP port on host that was free a moment ago."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.bind((host, 0))
        return sock.getsockname()[1]
    finally:
        sock.close()


class ServerFailed(Exception):
    """kvstore exited or did not start listening; str() says why."""


def start_kvstore(data_dir: str, port: int | None = None, wait: float = 30.0):
    """Start ``python -m twisted kvstore`` on 127.0.0.1; return (process, port).

    Blocks until the server accepts connections. Its log goes to
    C{data_dir}/kvstore.log. Raises L{ServerFailed} if it exits or is not
    listening within C{wait} seconds.
    """
    port = free_port() if port is None else port
    argv = [sys.executable, "-m", "twisted", "--log-format=text", "kvstore",
            "--listen", "tcp:%d:interface=127.0.0.1" % (port,),
            "--data", os.path.join(data_dir, "data")]
    process = start_process(argv, port, os.path.join(data_dir, "kvstore.log"), wait, "kvstore")
    return process, port


def start_process(argv: list, port: int, logname: str, wait: float = 30.0, name=None):
    """Start a server process and return it once 127.0.0.1:port accepts connections.

    Output goes to C{logname}. Raises L{ServerFailed} (after stopping the
    process) if it exits or does not listen within C{wait} seconds.
    """
    name = name or os.path.basename(argv[0])
    # The child must import this kvtwist (and its twistd plugins) whatever
    # the current directory is.
    env = dict(os.environ)
    env["PYTHONPATH"] = _SOURCE_ROOT + os.pathsep + env.get("PYTHONPATH", "")
    with open(logname, "wb") as logfile:
        process = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=logfile,
                                   stderr=subprocess.STDOUT, env=env)
    deadline = time.monotonic() + wait
    while True:
        if process.poll() is not None:
            raise ServerFailed("%s exited with status %s: %s"
                               % (name, process.returncode, _tail(logname)))
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1.0).close()
            return process
        except OSError:
            pass
        if time.monotonic() > deadline:
            stop_process(process)
            raise ServerFailed("%s did not listen on port %d within %gs: %s"
                               % (name, port, wait, _tail(logname)))
        # The child needs a moment to start; poll gently.
        time.sleep(0.05)


def _tail(logname: str) -> str:
    try:
        with open(logname, "rb") as f:
            lines = f.read().decode("utf-8", "replace").strip().splitlines()
    except OSError:
        return "(no log)"
    return " | ".join(lines[-3:]) or "(empty log)"


def stop_process(process, wait: float = 10.0) -> int:
    """Stop a server started by L{start_kvstore} (SIGTERM, then SIGKILL); return its status."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(wait)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    return process.returncode


def show_command(argv: list) -> bytes:
    """Return argv as a user would type it: words quoted only when they need it."""
    words = []
    for arg in argv:
        if arg and all(0x21 <= byte < 0x7F and byte not in b"\"'\\" for byte in arg):
            words.append(arg)
        else:
            words.append(quote(arg))
    return b" ".join(words)


class Transcript:
    """Writes who sent what and what came back, redis-cli style, to a binary file."""

    def __init__(self, out) -> None:
        self.out = out

    def note(self, text: str) -> None:
        """Write one narrative line."""
        self.out.write(text.encode("utf-8") + b"\n")
        self.out.flush()

    def exchange(self, who: str, argv: list, reply) -> None:
        """Write one command and its reply, indented under it."""
        prefix = who.encode("utf-8") + b"> "
        pad = b" " * len(prefix)
        lines = [prefix + show_command(argv)]
        lines += [pad + line for line in to_text(reply).split(b"\r\n")[:-1]]
        self.out.write(b"".join(line + b"\n" for line in lines))
        self.out.flush()


async def session(reactor, host: str, port: int, out) -> int:
    """Play the two-user session against host:port; return the exit status."""
    from kvtwist import client

    transcript = Transcript(out)
    where = "%s:%d" % (host, port)
    try:
        alice = await client.connect(reactor, where, timeout=10)
        transcript.note("alice connected to %s" % (where,))
        bob = await client.connect(reactor, where, timeout=10)
        transcript.note("bob connected to %s" % (where,))
    except (ConnectError, defer.TimeoutError) as exc:
        transcript.note("Could not connect to %s: %s" % (where, _reason(exc)))
        return 1

    async def send(who, conn, argv):
        reply = await conn.request(argv)
        transcript.exchange(who, argv, reply)
        return reply

    problems = []
    try:
        transcript.note("\n-- alice stores some pairs, then changes her city --")
        for argv in ALICE:
            reply = await send("alice", alice, argv)
            if isinstance(reply, Error):
                problems.append("alice's %s failed: %s"
                                % (show_command(argv).decode(), reply.message))
        transcript.note("\n-- bob reads them back --")
        for key, value in expected_values().items():
            reply = await send("bob", bob, [b"GET", key])
            if reply != value:
                problems.append("bob read %r for %s, expected %r" % (reply, key.decode(), value))
        for _ in range(MISSING_TRIES):
            reply = await send("bob", bob, [b"GET", MISSING])
            if reply is not None and reply is not NIL_ARRAY:
                problems.append("bob read %r for the missing key" % (reply,))
        keys = list(expected_values())
        reply = await send("bob", bob, [b"MGET"] + keys + [MISSING])
        if reply != [expected_values()[k] for k in keys] + [None]:
            problems.append("bob's MGET returned %r" % (reply,))
        transcript.note("\n-- both leave --")
        for who, conn in (("alice", alice), ("bob", bob)):
            reply = await send(who, conn, [b"QUIT"])
            await conn.when_disconnected()
            transcript.note("%s disconnected" % (who,))
    except Exception as exc:
        for conn in (alice, bob):
            conn.close()
        if isinstance(exc, BrokenPipeError):
            raise
        transcript.note("demo failed: %s" % (_reason(exc),))
        return 1
    if problems:
        transcript.note("\ndemo FAILED:\n  " + "\n  ".join(problems))
        return 1
    transcript.note("\nBob read back everything Alice stored; the missing key stayed missing.")
    return 0


def _reason(exc) -> str:
    return str(exc) or exc.__class__.__name__


def run_demo(host: str = "127.0.0.1", port: int | None = None, out=None) -> int:
    """Run ``kvtwist demo``; returns the exit status.

    Without C{port}, starts a kvstore on a free loopback port with a
    temporary data directory, and stops it afterwards.
    """
    from twisted.internet.task import react

    out = getattr(sys.stdout, "buffer", sys.stdout) if out is None else out
    process = None
    tmpdir = None
    if port is None:
        tmpdir = tempfile.mkdtemp(prefix="kvtwist-demo-")
        try:
            process, port = start_kvstore(tmpdir)
        except ServerFailed as exc:
            out.write(("Could not start kvstore: %s\n" % (exc,)).encode("utf-8"))
            shutil.rmtree(tmpdir, ignore_errors=True)
            return 1
        out.write(("kvtwist demo: started kvstore (pid %d) on 127.0.0.1:%d\n"
                   % (process.pid, port)).encode("utf-8"))
    status = []

    def main(reactor):
        d = defer.ensureDeferred(session(reactor, host, port, out))
        d.addCallback(status.append)
        # Output piped into `head` and closed early: end quietly.
        d.addErrback(lambda f: f.trap(BrokenPipeError) and status.append(1))
        return d

    try:
        react(main)
    except SystemExit:
        pass
    finally:
        if process is not None:
            stop_process(process)
            shutil.rmtree(tmpdir, ignore_errors=True)
            out.write(b"kvtwist demo: kvstore stopped\n")
            out.flush()
    return status[0] if status else 1
