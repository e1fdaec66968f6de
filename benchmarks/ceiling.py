"""The Twisted ceiling: the tightest RESP GET/SET server on a dict that Twisted allows."""

from __future__ import annotations

import argparse
import sys

from twisted.internet import protocol

from kvtwist.loop.directwrite import Outbox, reply_channel

_OK = b"+OK\r\n"
_NIL = b"$-1\r\n"
_PONG = b"+PONG\r\n"


class CeilingProtocol(protocol.Protocol):
    """RESP multibulk only; GET, SET (plain two-argument form) and PING; anything else errs.

    No general parser on purpose: this measures what Twisted itself costs per request.
    Replies leave the way kvstore's do (sent at once, back to back at the end of the
    reactor turn: kvtwist.loop.directwrite), so the two differ only in the work per request.
    Partial requests wait in a chunk list until the bytes they need have arrived, so a
    large value arriving in many reads is joined once, not once per read.
    """

    def __init__(self, data: dict, outbox=None):
        self.data = data
        self.outbox = outbox
        self._write = self._close = None
        self._chunks = []
        self._have = 0
        self._need = 0

    def connectionMade(self):
        self._write, self._close = reply_channel(self.transport, self.outbox)[:2]

    def dataReceived(self, data: bytes):
        if self._chunks:
            self._chunks.append(data)
            self._have += len(data)
            if self._have < self._need:
                return
            data = b"".join(self._chunks)
            self._chunks = []
        store = self.data
        out = []
        size = len(data)
        try:
            pos = self._serve(data, store, out)
        except ValueError:
            self._fail(out, b"-ERR Protocol error: bad length\r\n")
            return
        if pos is None:
            return
        if pos < size:
            rest = data[pos:]
            self._chunks = [rest]
            self._have = len(rest)
        if out:
            self._write(b"".join(out))

    def _serve(self, data: bytes, store: dict, out: list):
        """Answer every complete request in ``data`` into ``out``; return where the
        unanswered rest starts, or None after a protocol error closed the connection."""
        pos = 0
        size = len(data)
        find = data.find
        while pos < size:
            if data[pos] != 42:  # b"*"
                self._fail(out, b"-ERR Protocol error: only RESP multibulk is served\r\n")
                return None
            eol = find(b"\r\n", pos)
            if eol < 0:
                self._need = size - pos + 1
                break
            argc = int(data[pos + 1:eol])
            if argc < 0:
                raise ValueError(argc)
            at = eol + 2
            args = []
            while argc:
                eol = find(b"\r\n", at)
                if eol < 0:
                    break
                start = eol + 2
                end = start + int(data[at + 1:eol])
                if end + 2 > size:
                    at = end + 2
                    break
                args.append(data[start:end])
                at = end + 2
                argc -= 1
            if argc:
                # Everything before this request is answered; wait for at least the
                # bytes the incomplete argument announced (or one more byte).
                self._need = max(at, size + 1) - pos
                break
            pos = at
            if not args:
                continue
            name = args[0]
            if name == b"GET" and len(args) == 2:
                value = store.get(args[1])
                out.append(_NIL if value is None else
                           b"$%d\r\n%s\r\n" % (len(value), value))
            elif name == b"SET" and len(args) == 3:
                store[args[1]] = args[2]
                out.append(_OK)
            elif name.upper() == b"PING":
                out.append(_PONG)
            else:
                out.append(b"-ERR unknown command for the ceiling server\r\n")
        return pos

    def _fail(self, out, message: bytes):
        out.append(message)
        self._write(b"".join(out))
        self._close()


class CeilingFactory(protocol.Factory):
    """Serves one shared dict to every connection."""

    def __init__(self, reactor=None):
        self.data = {}
        self.outbox = None if reactor is None else Outbox(reactor)

    def buildProtocol(self, addr):
        return CeilingProtocol(self.data, self.outbox)


def main(argv=None) -> int:
    """Listen on 127.0.0.1:--port until killed; returns the exit status."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args(argv)
    # The reactor kvstore and kvproxy run on, so x ceiling compares only the work per request.
    if sys.platform.startswith("linux"):
        from kvtwist.loop import epoll

        epoll.install_default()
    from twisted.internet import reactor
    reactor.listenTCP(args.port, CeilingFactory(reactor), interface="127.0.0.1", backlog=511)
    reactor.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
