"""KVFactory: the kvstore protocol's factory, holding the store, its outbox and reply limits."""

from __future__ import annotations

from twisted.internet import protocol

from kvtwist.engine.config import watch
from kvtwist.loop.directwrite import Outbox
from kvtwist.serve.control import ServeHooks
from kvtwist.serve.limits import Watchdog
from kvtwist.serve.protocol import KVProtocol
from kvtwist.serve.streaming import join_off_loop


class _NoJournal:
    """Stands in for a journal where nothing is persisted (the proxy): all is acked."""

    appended = acked = 0


class KVFactory(protocol.Factory):
    """Serve a store: anything with ``new_session(peer)`` and ``drop_session(session)``."""

    protocol = KVProtocol

    def __init__(self, store, max_bulk: int = 512 * 1024 * 1024, reactor=None) -> None:
        self.store = store
        self.max_bulk = max_bulk
        self.reactor = reactor  # None: the global reactor paces streamed replies
        # With a reactor, replies of one turn go out back to back (see directwrite.Outbox).
        self.outbox = None if reactor is None else Outbox(reactor)
        self._hooked = None
        # A kvstore Store's limits (maxclients, timeout, buffers; kvtwist.serve.limits);
        # kvproxy's store has none. ``watchdog.protect`` turns protected mode on.
        self.watchdog = None
        if hasattr(store, "pause_mode") and hasattr(store, "config"):
            if reactor is None:
                from twisted.internet import reactor as clock
            else:
                clock = reactor
            self.watchdog = Watchdog(store, clock)
            # CONFIG SET proto-max-bulk-len reaches the parsers of open connections too.
            watch(store, "proto-max-bulk-len", lambda value: setattr(self, "max_bulk", value))
        if hasattr(store, "pause_mode") and not isinstance(getattr(store, "hooks", None),
                                                           ServeHooks):
            # What the engine asks of the serve layer: pauses, timers, SAVE, SHUTDOWN...
            if reactor is None:
                from twisted.internet import reactor as clock
            else:
                clock = reactor
            store.hooks = ServeHooks(clock)

    def join_large(self, parts: list):
        """Return a Deferred firing with ``b"".join(parts)``, joined in a thread.

        Where a journal records writes, the value's CRC is computed there too (see
        serve.streaming.join_pieces).
        """
        return join_off_loop(self.reactor, parts, checksum=self.journal is not _NoJournal)

    def startFactory(self) -> None:
        if self.watchdog is not None:
            self.watchdog.start()
        hooks = getattr(self.journal, "release_hooks", None)
        if self.outbox is not None and hooks is not None:
            # Replies a commit releases are sent at once (a burst already), so what was
            # queued before them must leave first.
            self._hooked = hooks
            hooks.append(self.outbox.flush)

    def stopFactory(self) -> None:
        if self.watchdog is not None:
            self.watchdog.stop()
        if self._hooked is not None:
            self._hooked.remove(self.outbox.flush)
            self._hooked = None

    @property
    def journal(self):
        """The store's journal, read on each use since the store may attach one late."""
        journal = getattr(self.store, "journal", None)
        return _NoJournal if journal is None else journal
