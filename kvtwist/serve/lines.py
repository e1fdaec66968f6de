"""The text (telnet) and JSON-lines dialects of KVProtocol: a request per line."""

from __future__ import annotations

from kvtwist.wire import jsonlines
from kvtwist.wire.inline import UnbalancedQuotes, split_args
from kvtwist.wire.replies import Error, to_resp
from kvtwist.wire.textreply import to_text

TEXT, RESP, JSON = "text", "resp", "json"

# The longest text or JSON request line, as Redis's PROTO_INLINE_MAX_SIZE for inline
# requests: a longer one is refused and the connection closed.
MAX_LINE = 64 * 1024


class LineDialects:
    """Mixed into KVProtocol: serving the text and JSON dialects' request lines, and an
    error rendered in whichever dialect the connection speaks."""

    def _render_error(self, message: str) -> bytes:
        if self.dialect is RESP:
            return to_resp(Error(message))  # errors are the same bytes in RESP2 and RESP3
        if self.dialect is JSON:
            return jsonlines.encode_error(message)
        return to_text(Error(message))

    def lineReceived(self, line: bytes) -> None:
        """Serve one text or JSON request line (its LF removed)."""
        if self._closing:
            return
        if line.endswith(b"\r"):
            line = line[:-1]
        if self.dialect is JSON:
            if not line.strip():
                return
            try:
                argv, render, db = jsonlines.decode(line)
            except jsonlines.JsonRequestError as e:
                self._chunk.parts.append(jsonlines.encode_error(str(e)))
                return
            if db is not None:
                self._run_in(db, argv, render)
                return
        else:
            render = self._render
            try:
                argv = split_args(line)
            except UnbalancedQuotes:
                # The line itself was framed fine, so a person at a telnet prompt keeps
                # the session; only the request is refused.
                self._chunk.parts.append(
                    render(Error("ERR Protocol error: unbalanced quotes in request")))
                return
            if not argv:
                return
        self._serve(argv, render)

    def lineLengthExceeded(self) -> None:
        """Refuse a request line longer than MAX_LINE and close, as Redis does."""
        if self.dialect is JSON:
            part = jsonlines.encode_error(
                "ERR Protocol error: too big JSON request (a request line is limited to "
                "%d bytes)" % (MAX_LINE,))
        else:
            part = to_text(Error("ERR Protocol error: too big inline request"))
        # Called from dataReceived only, so a chunk is open.
        self._chunk.parts.append(part)
        self._close_after_chunk()

    def _run_in(self, db: int, argv: list, render) -> None:
        # A JSON request's "db": this request runs there; the connection's selection stays.
        session = self.session
        if db >= session.store.databases.count:
            self._chunk.parts.append(jsonlines.encode_error("ERR DB index is out of range"))
            return
        selected = session.db
        session.select(db)
        try:
            self._run(argv, render)
        finally:
            if session.db == db:  # a SELECT in the request itself sticks
                session.select(selected)

