"""The blocking side of ``kvtwist cli``: a RESP connection, redis-cli rendering and the prompt."""

from __future__ import annotations

import socket
import sys

from kvtwist.wire import respreply
from kvtwist.wire.inline import UnbalancedQuotes, split_args
from kvtwist.cli.lineedit import help_text, history_path, setup_readline
from kvtwist.wire.replies import NIL_ARRAY, Error, Pairs, Status
from kvtwist.wire.textreply import to_text

_STREAMING = (b"SUBSCRIBE", b"PSUBSCRIBE", b"MONITOR")


class ConnectFailed(Exception):
    """Nothing accepted a connection at the address; str() is the one-line message."""


class ServerClosed(Exception):
    """The server closed the connection, or sent bytes that are not RESP."""


class Connection:
    """A blocking RESP connection: send an argv, read the reply with L{respreply.ReplyParser}."""

    def __init__(self, host: str, port: int, tls: bool = False, cafile: str | None = None,
                 insecure: bool = False) -> None:
        self.host = host
        self.port = port
        self.tls = tls
        self.cafile = cafile
        self.insecure = insecure
        self.sock = None
        self.parser = None

    @property
    def address(self) -> str:
        """host:port as redis-cli shows it in the prompt."""
        return "%s:%d" % (self.host, self.port)

    def open(self) -> None:
        """Connect; raises L{ConnectFailed} with a one-line message when nobody listens."""
        try:
            sock = socket.create_connection((self.host, self.port))
            if self.tls:
                import ssl

                context = ssl.create_default_context(cafile=self.cafile)
                if self.insecure:
                    context.check_hostname = False
                    context.verify_mode = ssl.CERT_NONE
                sock = context.wrap_socket(sock, server_hostname=self.host)
        except (OSError, ValueError) as exc:
            reason = getattr(exc, "strerror", None) or str(exc) or exc.__class__.__name__
            raise ConnectFailed("Could not connect to %s: %s" % (self.address, reason))
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock = sock
        self.parser = respreply.ReplyParser()

    def close(self) -> None:
        """Close the socket, if open."""
        if self.sock is not None:
            try:
                self.sock.close()
            except OSError:
                pass
        self.sock = None

    def send(self, argv: list) -> None:
        """Write one command; raises L{ServerClosed} when the connection is gone."""
        try:
            self.sock.sendall(respreply.encode_command(argv))
        except OSError:
            self.close()
            raise ServerClosed("Server closed the connection")

    def read_reply(self):
        """Return the next reply value; raises L{ServerClosed} on EOF or invalid RESP."""
        parser = self.parser
        while True:
            try:
                reply = parser.next_reply()
            except respreply.ProtocolError as exc:
                self.close()
                raise ServerClosed("Protocol error: %s" % (exc,))
            if reply is not respreply.NEED_MORE:
                return reply
            try:
                data = self.sock.recv(65536)
            except OSError:
                data = b""
            if not data:
                self.close()
                raise ServerClosed("Server closed the connection")
            parser.feed(data)

    def call(self, argv: list):
        """Send one command and return its reply value."""
        self.send(argv)
        return self.read_reply()


def render(reply, raw: bool) -> bytes:
    """Return a reply as redis-cli prints it: formatted for a terminal, or --raw for pipes."""
    if not raw:
        return to_text(reply).replace(b"\r\n", b"\n")
    return b"".join(line + b"\n" for line in _raw_lines(reply))


def _raw_lines(reply) -> list:
    if reply.__class__ is bytes:
        return [reply]
    if reply is None or reply is NIL_ARRAY:
        return [b""]
    if isinstance(reply, Status):
        return [reply.text]
    if isinstance(reply, Error):
        return [reply.message.encode("utf-8", "replace")]
    if isinstance(reply, int):
        return [b"%d" % int(reply)]
    if isinstance(reply, Pairs):
        lines = []
        for key, value in reply.items:
            lines += [key, value]
        return lines
    if isinstance(reply, (list, tuple)):
        if not reply:
            return [b""]
        lines = []
        for item in reply:
            lines.extend(_raw_lines(item))
        return lines
    return [bytes(reply)]


class Session:
    """Runs commands typed or piped by a user and prints the replies.

    C{out} and C{err} are binary files; C{raw} selects redis-cli's --raw output.
    """

    def __init__(self, connection: Connection, out, err, raw: bool) -> None:
        self.connection = connection
        self.out = out
        self.err = err
        self.raw = raw
        self.errors = 0

    def _print(self, data: bytes) -> None:
        self.out.write(data)
        self.out.flush()

    def _warn(self, text: str) -> None:
        self.err.write(text.encode("utf-8", "replace") + b"\n")
        self.err.flush()

    def run(self, argv: list) -> bool:
        """Execute one argv and print its reply; returns False when the user is leaving."""
        if not argv:
            return True
        name = argv[0].upper()
        if name in (b"QUIT", b"EXIT"):
            return False
        if name == b"HELP":
            self._print(help_text([a.decode("utf-8", "replace") for a in argv[1:]])
                        .encode("utf-8"))
            return True
        conn = self.connection
        if conn.sock is None:
            try:
                conn.open()
            except ConnectFailed as exc:
                self._warn(str(exc))
                self.errors += 1
                return True
        try:
            reply = conn.call(argv)
            self._show(reply)
            if name in _STREAMING and not isinstance(reply, Error):
                self._stream(argv)
        except ServerClosed as exc:
            self._warn("Error: %s" % (exc,))
            self.errors += 1
        return True

    def _show(self, reply) -> None:
        if isinstance(reply, Error):
            self.errors += 1
        self._print(render(reply, self.raw))

    def _stream(self, argv: list) -> None:
        # SUBSCRIBE answers once per channel and then pushes messages; MONITOR
        # streams. Like redis-cli, print them until the user interrupts.
        if argv[0].upper() != b"MONITOR":
            self._print(b"Reading messages... (press Ctrl-C to quit)\n")
            for _ in range(len(argv) - 2):
                self._show(self.connection.read_reply())
        try:
            while True:
                self._show(self.connection.read_reply())
        except KeyboardInterrupt:
            self.connection.close()

    def prompt(self) -> str:
        """The prompt: host:port> while connected, not connected> otherwise."""
        if self.connection.sock is None:
            return "not connected> "
        return "%s> " % (self.connection.address,)

    def interactive(self) -> int:
        """Prompt for commands with line editing and history; return the exit status."""
        histfile = history_path()
        readline = setup_readline(histfile)
        while True:
            try:
                line = input(self.prompt())
            except EOFError:
                self._print(b"\n")
                break
            except KeyboardInterrupt:
                self._print(b"\n")
                continue
            if not line.strip():
                continue
            if readline is not None:
                try:
                    readline.write_history_file(histfile)
                except (OSError, IOError):
                    # An unwritable history file must not end the session.
                    pass
            try:
                argv = split_args(line.encode("utf-8", "surrogateescape"))
            except UnbalancedQuotes:
                self._warn("Invalid argument(s)")
                continue
            try:
                if not self.run(argv):
                    break
            except KeyboardInterrupt:
                # The reply may still be on its way: reconnect for the next command
                # rather than read it as the answer to something else.
                self.connection.close()
                self._print(b"\n")
        self.connection.close()
        return 0

    def piped(self, lines) -> int:
        """Run one command per line of a non-terminal input; 1 if any reply was an error."""
        for line in lines:
            line = line.rstrip(b"\r\n")
            try:
                argv = split_args(line)
            except UnbalancedQuotes:
                self._warn("Invalid argument(s): %s" % (line.decode("utf-8", "replace"),))
                self.errors += 1
                continue
            if not self.run(argv):
                break
        self.connection.close()
        return 1 if self.errors else 0


def run_cli(host: str, port: int, words: list, tls: bool = False, cafile=None,
            insecure: bool = False, raw=None, stdin=None, stdout=None, stderr=None) -> int:
    """Run ``kvtwist cli``; returns the process exit status.

    With C{words}, runs that one command (status 1 on an error reply);
    otherwise reads commands at a prompt, or one a line when stdin is not a
    terminal. C{raw=None} picks redis-cli's default: formatted for a terminal.
    """
    stdin = sys.stdin if stdin is None else stdin
    stdout = sys.stdout if stdout is None else stdout
    stderr = sys.stderr if stderr is None else stderr
    if raw is None:
        raw = not stdout.isatty()
    out = getattr(stdout, "buffer", stdout)
    err = getattr(stderr, "buffer", stderr)
    connection = Connection(host, port, tls=tls, cafile=cafile, insecure=insecure)
    session = Session(connection, out, err, raw)
    if words and words[0].upper() == "HELP":
        session.run([w.encode("utf-8", "surrogateescape") for w in words])
        return 0
    try:
        connection.open()
    except ConnectFailed as exc:
        session._warn(str(exc))
        return 1
    if words:
        session.run([w.encode("utf-8", "surrogateescape") for w in words])
        connection.close()
        return 1 if session.errors else 0
    if stdin.isatty():
        return session.interactive()
    return session.piped(getattr(stdin, "buffer", stdin))
