"""The slow path of KVProtocol: requests served one at a time, held while clients are paused.

The protocol's fast RESP loop runs a read's requests back to back. A connection leaves
it when its session needs each request looked at (CLIENT REPLY OFF or SKIP silences
replies, a MONITOR client may not touch keys) or while CLIENT PAUSE is on (a paused
command and everything after it wait, in order, until the pause ends). A command that
changes these sets ``session.closing`` to ``hooks.INTERRUPT``, and the fast loop hands
the rest of its read to ``_interrupted``.
"""

from __future__ import annotations

from collections import deque

from kvtwist.engine.clients import pause_applies
from kvtwist.engine.monitor import REPLICA_KEYSPACE, monitor_refuses
from kvtwist.serve.blocking import Blocked, deferred_reply
from kvtwist.serve.limits import close_over_output, over_output_limit
from kvtwist.wire import jsonlines
from kvtwist.wire.replies import (
    NO_REPLY, Error, Push, to_resp, to_resp3, to_resp3_push)
from kvtwist.wire.textreply import to_text

ON = b"on"


class _Unpaused:
    """The pause state of a store that has none: never paused, nobody monitoring."""

    pause_mode = None
    monitors = ()


UNPAUSED = _Unpaused()


class HeldRequests:
    """Mixed into KVProtocol: per-request serving, CLIENT REPLY, PAUSE and KILL, and push."""

    def _describe_connection(self) -> None:
        # What only the serve layer knows, for CLIENT LIST / KILL.
        session = self.session
        host = self.transport.getHost()
        if hasattr(host, "port"):
            session.laddr = "%s:%s" % (host.host, host.port)
        fileno = getattr(self.transport, "fileno", None)
        try:
            session.fd = fileno() if fileno is not None else -1
        except Exception:
            session.fd = -1
        session.disconnect = self._disconnect

    def _execute(self, session, argv):
        """Run ``argv``; return its reply, or NO_REPLY when CLIENT REPLY silences it."""
        if getattr(session, "reply_mode", ON) == b"skip":
            session.reply_mode = b"skipping"  # this command's reply is the one skipped
        store = self._control
        if store.monitors and session in store.monitors and monitor_refuses(session, argv):
            reply = Error(REPLICA_KEYSPACE)
        else:
            reply = session.execute(argv)
        mode = getattr(session, "reply_mode", ON)
        if reply.__class__ is Push:
            return reply  # pub/sub confirmations are pushes: REPLY OFF does not stop them
        if mode != ON and reply.__class__ is Blocked:
            deferred_reply(self, reply)  # silenced, but what follows it must still resume
        if mode == b"off":
            return NO_REPLY
        if mode == b"skipping":
            session.reply_mode = ON
            return NO_REPLY
        return reply

    def _render_for(self, render):
        if render is not None:
            return render
        return to_resp3 if getattr(self.session, "protocol", 2) == 3 else to_resp

    def _serve(self, argv, render) -> None:
        """Run one request now, or hold it behind others or while a pause applies."""
        store = self._control
        if self._held or getattr(self.session, "blocked", None) is not None or (
                store.pause_mode is not None and pause_applies(store, self.session, argv)):
            self._hold(argv, render)
            return
        if self._output_full():  # the client has not taken the replies so far
            if self._held is None:
                self._held = deque()
            self._held.append((argv, render))
            self._slow = True
            self._wake_for_output()
            return
        self._run(argv, self._render_for(render))

    def _hold(self, argv, render) -> None:
        if self._held is None:
            self._held = deque()
        self._held.append((argv, render))
        self._slow = True
        waiting = getattr(getattr(self._control, "hooks", None), "waiting", None)
        if waiting is not None:
            waiting.add(self)

    def _serve_all(self, requests: list, error):
        """Serve a read's requests one by one; return ([], the error still to report)."""
        if self._held:
            self._drain_held()
        for argv in requests:
            if self._closing:
                break
            self._serve(argv, None)
        if error is not None and self._held and not self._closing:
            self._hold(None, error)  # reported after the held requests, then closed
            error = None
        self._update_slow()
        return [], error

    def _interrupted(self, requests: list, argv, error) -> None:
        # The fast loop ran ``argv``, which changed how this connection is served.
        self.session.closing = False
        self._read_out = 0
        index = 0
        while requests[index] is not argv:
            index += 1
        _, error = self._serve_all(requests[index + 1:], error)
        if self._closing:
            return
        if error is not None:
            self._chunk.parts.append(b"-ERR %s\r\n" % str(error).encode("utf-8"))
            self._close_after_chunk()
        elif self._parser.joining is not None and not self._joining:
            self._join_large()

    def _drain_held(self) -> None:
        """Serve held requests until one must still wait (or none is left)."""
        held = self._held
        store = self._control
        while held and not self._closing:
            if self._output_full():  # served once the client took the replies so far
                self._wake_for_output()
                break
            argv, render = held[0]
            if getattr(self.session, "blocked", None) is not None:
                return  # a blocking command waits: the rest once it is served
            if argv is None:  # a protocol error read after held requests
                held.popleft()
                self._chunk.parts.append(b"-ERR %s\r\n" % str(render).encode("utf-8"))
                self._close_after_chunk()
                break
            if store.pause_mode is not None and pause_applies(store, self.session, argv):
                waiting = getattr(getattr(store, "hooks", None), "waiting", None)
                if waiting is not None:
                    waiting.add(self)
                return
            held.popleft()
            self._run(argv, self._render_for(render))
        waiting = getattr(getattr(store, "hooks", None), "waiting", None)
        if waiting is not None:
            waiting.discard(self)
        self._update_slow()

    def _update_slow(self) -> None:
        session = self.session
        store = self._control
        self._slow = bool(self._held) or getattr(session, "reply_mode", ON) != ON or (
            getattr(session, "blocked", None) is not None) or (
            bool(store.monitors) and session in store.monitors)

    def resume(self) -> None:
        """The pause ended (or changed): serve what was held, as if just read."""
        if self._closing or not self._held or self.transport is None:
            return
        self.dataReceived(b"")

    def _disconnect(self) -> None:
        """CLIENT KILL: close once the replies already queued are written."""
        if self._closing:
            return
        self._closing = True
        self._held = None
        if self._lines is not None:
            self._lines.clear()
        if not self._queue and self._stream is None:
            self._close()
            return
        chunk = self.chunk_type([])
        chunk.close = True
        self._enqueue(chunk)

    def _push_after_reply(self) -> None:
        # Invalidations the command just run caused for its own client follow its reply.
        pushes, self.session.after_reply = self.session.after_reply, []
        for reply in pushes:
            self.push(reply)

    def push_early(self, reply) -> None:
        """Send a client-side caching invalidation after everything already queued, not
        waiting for pending writes: it tells only that a key may have changed."""
        self.push(reply, False)

    def push(self, reply, gated: bool = True) -> None:
        """Send an out-of-band reply (pub/sub message) after everything already queued;
        unless ``gated`` is false, it also waits for every write appended before it."""
        if self._closing or self.dialect is None:
            return
        mode = getattr(self.session, "reply_mode", b"on")
        if mode != b"on" and mode != b"skip" and reply.__class__ is not Push:
            # CLIENT REPLY OFF silences MONITOR lines; pub/sub messages and invalidations
            # are pushes, which Redis delivers all the same (its CLIENT_PUSHING).
            return
        if self.dialect == "resp":
            if getattr(self.session, "protocol", 2) == 3:
                part = to_resp3_push(reply)
            else:
                part = to_resp(reply)
        elif self.dialect == "json":
            part = jsonlines.render(reply)
        else:
            part = to_text(reply)
        watchdog = self._watchdog
        if watchdog is not None and over_output_limit(
                self, watchdog.limits, self._seconds(), len(part)):
            close_over_output(self, watchdog.limits)
            return
        # A push may reveal any write made before it (a keyspace notification, a message
        # its publisher sent after writing): it waits for all; invalidations do not.
        journal = self._journal
        need = journal.appended if gated and journal.appended != journal.acked else 0
        chunk = self._chunk
        if chunk is not None:
            chunk.parts.append(part)
            if need > chunk.need:
                chunk.need = need
        elif not self._queue and not need:
            self._write(part)
        else:
            chunk = self.chunk_type([part])
            chunk.pushes = True
            if need:
                self._gate(chunk, need)
            if self._queue:
                self._enqueue(chunk)
            else:  # a held head is not counted in the backlog (see dataReceived)
                chunk.size = 0
                self._queue.append(chunk)
