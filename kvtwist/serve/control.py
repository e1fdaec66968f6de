"""The serve layer's hooks for the engine (kvtwist.engine.hooks): pauses, timers, stopping.

KVFactory installs a ServeHooks on the store it serves; ``twistd kvstore``'s service
adds the journal, the expiry sweep and the service to stop (``attach``).
"""

from __future__ import annotations

import os

from twisted.internet.defer import Deferred
from twisted.logger import Logger

from kvtwist.engine.hooks import Hooks
from kvtwist.wire.replies import CommandError, Status

log = Logger()


class ServeHooks(Hooks):
    """Hooks backed by a reactor (and, once attached, a journal and a service)."""

    def __init__(self, reactor) -> None:
        Hooks.__init__(self)
        self.reactor = reactor
        self.waiting = set()  # protocols holding requests until a pause ends
        self._pause_call = None
        self.journal = None
        self.sweeper = None  # the active-expiry LoopingCall
        self.sweep_interval = 0.1
        self.stop = None  # callable stopping the server (journal committed first)
        self.directory = None
        self.started = reactor.seconds()
        self.stopping = False

    def attach(self, journal, sweeper, sweep_interval: float, stop, directory) -> None:
        """Give the hooks what SAVE, SHUTDOWN, DEBUG RELOAD and SET-ACTIVE-EXPIRE use."""
        self.journal = journal
        self.sweeper = sweeper
        self.sweep_interval = sweep_interval
        self.stop = stop
        self.directory = directory

    # -- CLIENT PAUSE ----------------------------------------------------------------

    def paused(self, store) -> None:
        """Wake held clients when the pause ends, now if it already has."""
        if self._pause_call is not None and self._pause_call.active():
            self._pause_call.cancel()
        self._pause_call = None
        if store.pause_mode is not None:
            delay = max(0.0, store.pause_end - self.reactor.seconds())
            self._pause_call = self.reactor.callLater(delay, self._pause_over, store)
        # A WRITE pause replacing an ALL one lets readers go at once.
        self._wake()

    def _pause_over(self, store) -> None:
        self._pause_call = None
        if store.pause_mode is not None and store.pause_end <= self.reactor.seconds():
            store.pause_mode = None
            store.pause_end = 0.0
        self._wake()

    def _wake(self) -> None:
        # Each looks again; one still paused adds itself back (HeldRequests._drain_held).
        waiting = sorted(self.waiting, key=lambda each: each.session.id)
        self.waiting.clear()
        for protocol in waiting:
            protocol.resume()

    # -- timers ------------------------------------------------------------------------

    def later(self, seconds, reply):
        """Return a Deferred firing with ``reply`` after ``seconds`` (None: never)."""
        d = Deferred()
        if seconds is not None:
            call = self.reactor.callLater(seconds, d.callback, reply)
            d.addErrback(lambda failure: call.cancel() if call.active() else None)
        return d

    # -- snapshots (SAVE, BGSAVE, LASTSAVE, DEBUG RELOAD) ----------------------------

    def _compact(self):
        compact = getattr(self.journal, "compact", None)
        if compact is None:
            raise CommandError("ERR no journal: this store does not persist")
        return compact()

    def save(self, session):
        """Compact the journal (a snapshot) and answer OK once it is installed."""
        d = self._compact()
        d.addCallback(lambda size: Status(b"OK"))
        d.addErrback(lambda failure: _error_reply("ERR " + failure.getErrorMessage()))
        return d

    def bgsave(self, session, schedule: bool):
        """Start a compaction; answer at once as Redis's BGSAVE does."""
        if getattr(self.journal, "compacting", False):
            if not schedule:
                raise CommandError("ERR Background save already in progress")
            self._compact().addErrback(_logged)  # queued behind the running one
            return Status(b"Background saving scheduled")
        failures = []
        self._compact().addErrback(lambda failure: failures.append(failure) or _logged(failure))
        if failures:
            raise CommandError("ERR %s" % (failures[0].getErrorMessage(),))
        return Status(b"Background saving started")

    @property
    def last_save(self):
        """The time of the newest installed snapshot (LASTSAVE), or of the start."""
        journal = self.journal
        if journal is None or self.directory is None:
            return self.started
        from kvtwist.storage.datadir import snapshot_path

        try:
            return int(os.stat(snapshot_path(self.directory, journal.generation)).st_mtime)
        except OSError:
            return self.started

    @last_save.setter
    def last_save(self, value) -> None:
        pass  # computed from the data directory

    def reload(self, session):
        """DEBUG RELOAD: write a snapshot, read it back from disk and check it is the data.

        The keyspace is not swapped for what was read (it is the same data, and a swap
        would bypass the journal): a snapshot that does not read back as the keyspace
        answers an error. Cost: O(keys) to write, read and compare.
        """
        store = session.store
        keyspace = store.keyspace
        before = self.journal.appended if self.journal is not None else 0
        d = self._compact()

        def check(_):
            if self.journal.appended != before:
                return Status(b"OK")  # written to since: the snapshot is older than memory
            loaded = read_snapshot(self.directory, self.journal.generation, store.clock)
            live = {key: keyspace.get(key) for key in keyspace.live_keys()}
            if loaded != live:
                return _error_reply("ERR Error trying to load the RDB dump")
            return Status(b"OK")

        d.addCallback(check)
        d.addErrback(lambda failure: _error("ERR Error trying to load the RDB dump", failure))
        return d

    # -- SHUTDOWN, DEBUG SET-ACTIVE-EXPIRE ------------------------------------------------

    def shutdown(self, session, save: bool, now: bool, force: bool):
        """Stop the server: snapshot first if asked, then commit the journal and stop."""
        if self.stop is None:
            return Hooks.shutdown(self, session, save, now, force)
        if self.stopping:
            raise CommandError("ERR Errors trying to SHUTDOWN. Check logs.")
        self.stopping = True
        session.closing = True
        log.warn("User requested shutdown...")
        d = Deferred()
        if save and self.journal is not None:
            saving = self._compact()

            def saved(result):
                if hasattr(result, "getErrorMessage") and not force:
                    self.stopping = False
                    log.error("Error trying to save the DB, can't exit.")
                    session.closing = False
                    d.callback(_error_reply("ERR Errors trying to SHUTDOWN. Check logs."))
                    return
                self.stop()

            saving.addBoth(saved)
        else:
            self.reactor.callLater(0, self.stop)
        return d  # never fires on success: the connection closes without a reply

    def set_active_expire(self, on: bool) -> None:
        """Start or stop the active-expiry sweep."""
        self.active_expire = on
        sweeper = self.sweeper
        if sweeper is None:
            return
        if on and not sweeper.running:
            sweeper.start(self.sweep_interval, now=False)
        elif not on and sweeper.running:
            sweeper.stop()


def read_snapshot(directory: str, generation: int, clock) -> dict:
    """Return {key: value} of the live keys in snapshot ``generation``, read from disk."""
    from kvtwist.engine.keyspace import Keyspace
    from kvtwist.storage import datadir, records

    fresh = Keyspace(clock, log=lambda effect: None)
    datadir._read_file(datadir.snapshot_path(directory, generation), records.SNAPSHOT,
                       generation, fresh.apply, fresh.load_items, datadir.LoadResult(), False)
    return {key: fresh.get(key) for key in fresh.live_keys()}


def _error_reply(message: str):
    from kvtwist.wire.replies import Error

    return Error(message)


def _error(prefix: str, failure):
    return _error_reply("%s: %s" % (prefix, failure.getErrorMessage()))


def _logged(failure) -> None:
    log.error("BGSAVE: background snapshot failed: {error}", error=failure.getErrorMessage())
