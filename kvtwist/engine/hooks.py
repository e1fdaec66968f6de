"""What the engine asks of the serve layer, which installs it on the store (``store.hooks``).

The engine is pure: it cannot close a connection, hold a client, stop the reactor or
write a snapshot. Commands that need one of these (CLIENT KILL and PAUSE, SHUTDOWN,
SAVE, DEBUG RELOAD...) call a hook here; the serve layer replaces the defaults with
its own when it serves the store. The defaults are what a store with nobody serving it
can honestly do (nothing to hold, nothing to stop) or refuse.
"""

from __future__ import annotations

from kvtwist.wire.replies import CommandError

# Set as ``session.closing`` by a command that changes how its connection is served
# (CLIENT REPLY, CLIENT PAUSE): the protocol stops its fast loop and looks again at the
# session before serving the requests that follow. QUIT and a kill set True (close).
INTERRUPT = "interrupt"


class Hooks:
    """The serve layer's services to the engine; these defaults serve a bare Store."""

    def __init__(self) -> None:
        self.last_save = 0  # unix time of the last successful snapshot (LASTSAVE)
        self.active_expire = True  # DEBUG SET-ACTIVE-EXPIRE: the sweep runs

    def paused(self, store) -> None:
        """The pause (``store.pause_mode``, ``store.pause_end``) began, changed or ended."""

    def shutdown(self, session, save: bool, now: bool, force: bool):
        """Stop the server: return an error reply, or None when it is going down."""
        raise CommandError("ERR Errors trying to SHUTDOWN. Check logs.")

    def save(self, session):
        """Snapshot the data now; return a Deferred or a reply."""
        raise CommandError("ERR no journal: this store does not persist")

    def bgsave(self, session, schedule: bool):
        """Start a snapshot in the background; return the reply."""
        raise CommandError("ERR no journal: this store does not persist")

    def reload(self, session):
        """Snapshot the data, then load it back from disk; return a Deferred or a reply."""
        raise CommandError("ERR no journal: this store does not persist")

    def set_active_expire(self, on: bool) -> None:
        """Start or stop the active-expiry sweep."""
        self.active_expire = on

    def later(self, seconds, reply):
        """Return ``reply`` after ``seconds`` (None: never) as a Deferred reply.

        A bare store has no event loop to wait in: it answers at once.
        """
        return reply

    def sleep(self, seconds: float) -> None:
        """Block the whole server for ``seconds`` (DEBUG SLEEP), as Redis does."""
        import time

        time.sleep(seconds)


def hooks_for(store) -> Hooks:
    """Return the store's hooks, installing the defaults on first use."""
    hooks = getattr(store, "hooks", None)
    if hooks is None:
        hooks = store.hooks = Hooks()
    return hooks
