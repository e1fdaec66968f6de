"""Tests for kvtwist.cli.repl: rendering, and ``kvtwist cli`` through pipes and a pty."""

from __future__ import annotations

import io
import os
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time

from twisted.trial import unittest

from kvtwist.cli import repl
from kvtwist.wire.replies import NIL_ARRAY, OK, Error, Pairs, Status
from tests.procs import ROOT, free_port, start_kvproxy, start_kvstore
from tests.redisref import start_redis_or_skip



def cli_env(**extra):
    """Return an environment in which ``python -m kvtwist.cli`` imports this checkout."""
    env = dict(os.environ)
    env["PYTHONPATH"] = ROOT + os.pathsep + env.get("PYTHONPATH", "")
    env.update(extra)
    return env


def run_cli(args, stdin=b"", timeout=60, env=None):
    """Run ``kvtwist`` with args and piped stdin; return (status, stdout, stderr).

    It runs in a session of its own, so a timeout kills whatever it started as well
    (the demo's kvstore) before TimeoutExpired is raised.
    """
    proc = subprocess.Popen([sys.executable, "-m", "kvtwist.cli"] + args,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env=env or cli_env(),
                            start_new_session=True)
    try:
        out, err = proc.communicate(stdin, timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        raise
    return proc.returncode, out, err


class RenderTests(unittest.SynchronousTestCase):
    """Replies print as redis-cli prints them."""

    def test_formatted(self):
        """At a terminal, replies are quoted and labelled, one LF-terminated line each."""
        self.assertEqual(repl.render(b"a b", False), b'"a b"\n')
        self.assertEqual(repl.render(None, False), b"(nil)\n")
        self.assertEqual(repl.render(3, False), b"(integer) 3\n")
        self.assertEqual(repl.render(OK, False), b"OK\n")
        self.assertEqual(repl.render(Error("ERR no"), False), b"(error) ERR no\n")
        self.assertEqual(repl.render([b"x", None], False), b'1) "x"\n2) (nil)\n')
        self.assertEqual(repl.render([], False), b"(empty array)\n")

    def test_raw(self):
        """In raw mode (pipes), values print bare, nil as an empty line, arrays one item a line."""
        self.assertEqual(repl.render(b"a b", True), b"a b\n")
        self.assertEqual(repl.render(None, True), b"\n")
        self.assertEqual(repl.render(NIL_ARRAY, True), b"\n")
        self.assertEqual(repl.render(-4, True), b"-4\n")
        self.assertEqual(repl.render(Status(b"PONG"), True), b"PONG\n")
        self.assertEqual(repl.render(Error("ERR no"), True), b"ERR no\n")
        self.assertEqual(repl.render([b"x", [1, None]], True), b"x\n1\n\n")
        self.assertEqual(repl.render(Pairs([(b"k", b"v")]), True), b"k\nv\n")


class UnreachableTests(unittest.SynchronousTestCase):
    """Nothing listening gives one clear line and status 1."""

    def test_refused(self):
        """A refused connection prints 'Could not connect to host:port: reason' and returns 1."""
        port = free_port()
        err = io.BytesIO()
        status = repl.run_cli("127.0.0.1", port, ["PING"], stdout=io.BytesIO(), stderr=err)
        self.assertEqual(status, 1)
        self.assertEqual(err.getvalue(),
                         b"Could not connect to 127.0.0.1:%d: Connection refused\n" % (port,))

    def test_refused_from_the_command_line(self):
        """The console script prints the same line, no traceback, and exits 1."""
        port = free_port()
        status, out, err = run_cli(["cli", "-p", str(port), "ping"])
        self.assertEqual((status, out), (1, b""))
        self.assertEqual(err, b"Could not connect to 127.0.0.1:%d: Connection refused\n" % (port,))


def start_kvproxy_and_kvstore(tmpdir):
    """Start kvstore and a kvproxy in front of it; return both, the proxy last."""
    store = start_kvstore(tmpdir)
    try:
        return [store, start_kvproxy(store.port)]
    except BaseException:
        store.stop()
        raise


class ServerMixin:
    """Starts servers for each test and stops them afterwards.

    C{start(tmpdir)} returns the servers it started, the one to talk to last.
    """

    start = None

    def setUp(self):
        self.tmpdir = tempfile.mkdtemp(prefix="kvtwist-repl-")
        self.addCleanup(shutil.rmtree, self.tmpdir, True)
        started = self.start(self.tmpdir)
        for server in started:
            self.addCleanup(server.stop)
        self.port = started[-1].port


class PipeMixin(ServerMixin):
    """One-shot mode and piped standard input."""

    def test_one_shot(self):
        """A command on the command line runs once; status 0 on success, 1 on an error reply."""
        port = str(self.port)
        self.assertEqual(run_cli(["cli", "-p", port, "set", "k", "a b"]), (0, b"OK\n", b""))
        self.assertEqual(run_cli(["cli", "-p", port, "get", "k"]), (0, b"a b\n", b""))
        self.assertEqual(run_cli(["cli", "-p", port, "--no-raw", "mget", "k", "none"]),
                         (0, b'1) "a b"\n2) (nil)\n', b""))
        status, out, err = run_cli(["cli", "-p", port, "incr", "k"])
        self.assertEqual(status, 1)
        self.assertTrue(out.startswith(b"ERR "), out)

    def test_piped_lines(self):
        """Each stdin line is one command (quotes as redis-cli); any error reply makes status 1."""
        status, out, err = run_cli(["cli", "-p", str(self.port)], stdin=(
            b'set greeting "hello world"\n'
            b"get greeting\n"
            b"\n"
            b"incr counter\r\n"
            b"get missing\n"))
        self.assertEqual((status, out, err), (0, b"OK\nhello world\n1\n\n", b""))
        status, out, err = run_cli(["cli", "-p", str(self.port)],
                                   stdin=b'incr greeting\n"unbalanced\nping\n')
        self.assertEqual(status, 1)
        self.assertTrue(out.startswith(b"ERR "), out)
        self.assertTrue(out.endswith(b"PONG\n"), out)
        self.assertIn(b"Invalid argument(s)", err)


class RedisPipeTests(PipeMixin, unittest.TestCase):
    """kvtwist cli against redis-server, through pipes."""

    start = staticmethod(lambda tmpdir: [start_redis_or_skip()])


class KVStorePipeTests(PipeMixin, unittest.TestCase):
    """kvtwist cli against kvstore, through pipes."""

    start = staticmethod(lambda tmpdir: [start_kvstore(tmpdir)])


class KVProxyPipeTests(PipeMixin, unittest.TestCase):
    """kvtwist cli against kvproxy in front of kvstore, through pipes."""

    start = staticmethod(start_kvproxy_and_kvstore)


def start_tls_redis(tmpdir):
    """Start a TLS-only redis-server with Twisted's test certificate; return it in a list."""
    import twisted.test

    pem = os.path.join(os.path.dirname(twisted.test.__file__), "server.pem")
    try:
        return [start_redis_or_skip(tls_pem=pem)]
    except RuntimeError as exc:
        raise unittest.SkipTest("redis-server without TLS support: %s" % (exc,))


class TLSTests(ServerMixin, unittest.TestCase):
    """--tls talks to a TLS-only server."""

    start = staticmethod(start_tls_redis)

    def test_tls(self):
        """With --tls --insecure commands work; an unverifiable certificate is one clear line."""
        port = str(self.port)
        self.assertEqual(run_cli(["cli", "-p", port, "--tls", "--insecure", "set", "k", "v"]),
                         (0, b"OK\n", b""))
        status, out, err = run_cli(["cli", "-p", port, "--tls", "get", "k"])
        self.assertEqual((status, out), (1, b""))
        self.assertTrue(err.startswith(b"Could not connect to 127.0.0.1:%s: " % (port.encode(),)))
        self.assertIn(b"certificate verify failed", err)
        self.assertEqual(err.count(b"\n"), 1)


class Terminal:
    """A ``kvtwist cli`` process on a pseudo-terminal, read with bounded select calls."""

    def __init__(self, test, port, histfile):
        import pty  # noqa: F401 -- POSIX only; the import documents the requirement

        self.master, slave = os.openpty()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "kvtwist.cli", "cli", "-p", str(port)],
            stdin=slave, stdout=slave, stderr=slave, close_fds=True, start_new_session=True,
            env=cli_env(KVTWIST_HISTFILE=histfile, TERM="xterm", INPUTRC=os.devnull))
        os.close(slave)
        self.output = b""
        test.addCleanup(self.close)

    def send(self, data: bytes) -> None:
        """Type bytes at the terminal."""
        os.write(self.master, data)

    def expect(self, needle: bytes, timeout: float = 30.0) -> bytes:
        """Read until needle appears; return everything read up to and including it."""
        deadline = time.monotonic() + timeout
        while needle not in self.output:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError("waited for %r; the terminal shows %r" % (needle, self.output))
            ready, _, _ = select.select([self.master], [], [], left)
            if not ready:
                continue
            try:
                data = os.read(self.master, 4096)
            except OSError:  # EIO: the child closed the terminal
                data = b""
            if not data:
                raise AssertionError("terminal closed waiting for %r; it showed %r"
                                     % (needle, self.output))
            self.output += data
        index = self.output.index(needle) + len(needle)
        seen, self.output = self.output[:index], self.output[index:]
        return seen

    def wait(self, timeout: float = 30.0) -> int:
        """Wait for the process to exit; return its status."""
        return self.proc.wait(timeout)

    def close(self) -> None:
        """Kill the process if still running and close the terminal."""
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        os.close(self.master)


class TerminalTests(ServerMixin, unittest.TestCase):
    """The interactive prompt on a pseudo-terminal: prompt, replies, completion, history."""

    start = staticmethod(lambda tmpdir: [start_redis_or_skip()])

    def terminal(self):
        """Start kvtwist cli on a fresh pty with this test's history file."""
        return Terminal(self, self.port, os.path.join(self.tmpdir, "history"))

    def test_prompt_and_replies(self):
        """The prompt is host:port> and replies appear formatted, as redis-cli shows them."""
        prompt = b"127.0.0.1:%d> " % (self.port,)
        term = self.terminal()
        term.expect(prompt)
        term.send(b'SET greeting "hello world"\r')
        self.assertIn(b"OK\r\n", term.expect(prompt))
        term.send(b"GET greeting\r")
        self.assertIn(b'"hello world"\r\n', term.expect(prompt))
        term.send(b"GET nothing\r")
        self.assertIn(b"(nil)\r\n", term.expect(prompt))
        term.send(b"INCR greeting\r")
        self.assertIn(b"(error) ERR value is not an integer", term.expect(prompt))
        term.send(b"RPUSH list a b\r")
        term.expect(prompt)
        term.send(b"LRANGE list 0 -1\r")
        self.assertIn(b'1) "a"\r\n2) "b"\r\n', term.expect(prompt))
        term.send(b"quit\r")
        self.assertEqual(term.wait(), 0)

    def test_completion(self):
        """TAB completes a command name, and a command name after HELP."""
        prompt = b"127.0.0.1:%d> " % (self.port,)
        term = self.terminal()
        term.expect(prompt)
        # Only the completed name is a command: the replies prove TAB worked
        # (the echo itself is redrawn differently by each line editor).
        term.send(b"PIN\t\r")
        self.assertIn(b"PONG\r\n", term.expect(prompt))
        term.send(b"help exis\t\r")
        self.assertIn(b"EXISTS key [key ...]", term.expect(prompt))
        term.send(b"\x04")
        self.assertEqual(term.wait(), 0)

    def test_history_between_runs(self):
        """Lines typed in one run are recalled with Ctrl-P in the next."""
        prompt = b"127.0.0.1:%d> " % (self.port,)
        term = self.terminal()
        term.expect(prompt)
        term.send(b"ECHO remembered\r")
        term.expect(prompt)
        term.send(b"\x04")
        self.assertEqual(term.wait(), 0)
        with open(os.path.join(self.tmpdir, "history"), "rb") as f:
            self.assertIn(b"ECHO remembered", f.read())
        term = self.terminal()
        term.expect(prompt)
        term.send(b"\x10\r")
        self.assertIn(b'"remembered"\r\n', term.expect(prompt))
        term.send(b"\x04")
        self.assertEqual(term.wait(), 0)

    def test_server_goes_away(self):
        """When the server closes the connection, the prompt says so and shows not connected."""
        prompt = b"127.0.0.1:%d> " % (self.port,)
        term = self.terminal()
        term.expect(prompt)
        term.send(b"CLIENT KILL TYPE normal SKIPME no\r")
        term.expect(prompt)
        term.send(b"PING\r")
        self.assertIn(b"Error: Server closed the connection", term.expect(b"not connected> "))
        term.send(b"PING\r")
        self.assertIn(b"PONG", term.expect(prompt))
        term.send(b"\x04")
        self.assertEqual(term.wait(), 0)
