"""``twistd kvstore``: command-line options and the service that loads, serves and persists."""

from __future__ import annotations

import os
import time

from twisted.application import service, strports
from twisted.internet import task
from twisted.logger import Logger
from twisted.python import usage

from kvtwist import __version__
from kvtwist.engine.store import Store
from kvtwist.serve.daemon import ServerOptions
from kvtwist.storage.journal import POLICIES as FSYNC_POLICIES
from kvtwist.storage.journal import WRITERS as JOURNAL_WRITERS
from kvtwist.serve.factory import KVFactory

DEFAULT_LISTEN = "tcp:7379:interface=127.0.0.1"
SWEEP_INTERVAL = 0.1  # seconds between active-expiry sweeps, as Redis's hz 10


def _size(text: str) -> int:
    """Parse a byte size such as ``512mb``, ``64MB``, ``1g`` or ``4096``."""
    value = text.strip().lower()
    for suffix, factor in (("kb", 1024), ("mb", 1024 ** 2), ("gb", 1024 ** 3),
                           ("k", 1024), ("m", 1024 ** 2), ("g", 1024 ** 3), ("b", 1)):
        if value.endswith(suffix):
            return int(float(value[: -len(suffix)]) * factor)
    return int(value)


class Options(ServerOptions):
    """Options for ``twistd kvstore``."""

    default_listen = DEFAULT_LISTEN

    synopsis = "[--listen ENDPOINT]... [--data DIR] [--fsync always|everysec|no]"
    longdesc = ("A key-value server speaking telnet text, RESP2 (any Redis client) and "
                "JSON lines on one port, keeping its data in a journal in --data.")

    optParameters = [
        ["data", "d", "kvdata", "directory holding the journal and snapshots"],
        ["fsync", None, "always", "journal fsync policy: always, everysec or no"],
        ["max-bulk", None, "512mb", "largest bulk string a RESP client may send"],
        ["compact-min", None, "64mb", "journal size below which it is never compacted"],
        ["compact-ratio", None, "2.0", "compact when the journal exceeds this x the snapshot"],
        ["journal-writer", None, "process",
         "who appends to the journal: process (a child process, fastest) or thread"],
        ["inline-replies", None, "text",
         "how inline (telnet) requests are answered: text (readable) or resp (as Redis)"],
    ]
    optFlags = [
        ["repair", None, "keep the longest valid prefix of a corrupt journal and start"],
    ]
    compData = usage.Completions(
        optActions={"fsync": usage.CompleteList(FSYNC_POLICIES),
                    "journal-writer": usage.CompleteList(JOURNAL_WRITERS),
                    "data": usage.CompleteDirs()})

    def postOptions(self) -> None:
        ServerOptions.postOptions(self)
        if self["fsync"] not in FSYNC_POLICIES:
            raise usage.UsageError("--fsync must be one of: %s" % ", ".join(FSYNC_POLICIES))
        if self["journal-writer"] not in JOURNAL_WRITERS:
            raise usage.UsageError("--journal-writer must be process or thread")
        try:
            self["max-bulk"] = _size(self["max-bulk"])
            self["compact-min"] = _size(self["compact-min"])
            self["compact-ratio"] = float(self["compact-ratio"])
        except ValueError as e:
            raise usage.UsageError("bad size or ratio: %s" % (e,))
        if self["max-bulk"] < 1:
            raise usage.UsageError("--max-bulk must be positive")
        if self["inline-replies"] not in ("text", "resp"):
            raise usage.UsageError("--inline-replies must be text or resp")


class StoreService(service.MultiService):
    """Owns the store's journal and expiry sweep; its children are the listening ports."""

    log = Logger()

    def __init__(self, store, journal, clock) -> None:
        service.MultiService.__init__(self)
        self.store = store
        self.journal = journal
        self._sweeper = task.LoopingCall(store.keyspace.sweep)
        self._sweeper.clock = clock

    def startService(self) -> None:
        # Threads start here, not in makeService, so that they survive daemonizing.
        self.journal.start()
        if getattr(getattr(self.store, "hooks", None), "active_expire", True):
            self._sweeper.start(SWEEP_INTERVAL, now=False)
        service.MultiService.startService(self)

    def stopService(self):
        """Stop listening, then flush the journal; the Deferred fires when it is closed."""
        if self._sweeper.running:
            self._sweeper.stop()
        d = service.MultiService.stopService(self)
        d.addCallback(lambda _: self.journal.stop())
        return d


def makeService(options, reactor=None) -> service.MultiService:
    """Open the data directory (loading it) and build the kvstore service tree."""
    from kvtwist.storage.journal import Journal, JournalError

    if reactor is None:
        from twisted.internet import reactor
    store = Store(reactor, config={"port": _first_port(options["listen"]),
                                   "proto-max-bulk-len": str(options["max-bulk"]),
                                   "appendfsync": options["fsync"],
                                   "dir": os.path.abspath(options["data"]),
                                   "inline-replies": options["inline-replies"]})
    started = time.monotonic()
    try:
        journal = Journal.open(options["data"], store.keyspace, reactor,
                               fsync=options["fsync"], repair=options["repair"],
                               compact_min_bytes=options["compact-min"],
                               compact_ratio=options["compact-ratio"],
                               writer=options["journal-writer"])
    except (JournalError, OSError) as e:
        raise SystemExit("kvstore: cannot open %s: %s" % (options["data"], e))
    store.set_journal(journal)
    StoreService.log.info(
        "kvstore {version}: {keys} keys loaded from {data} in {seconds:.3f}s (fsync {fsync})",
        version=__version__, keys=len(store.keyspace), data=os.path.abspath(options["data"]),
        seconds=time.monotonic() - started, fsync=options["fsync"])
    top = StoreService(store, journal, reactor)
    factory = KVFactory(store, max_bulk=options["max-bulk"], reactor=reactor)
    for description in options["listen"]:
        strports.service(description, factory, reactor=reactor).setServiceParent(top)
    # SHUTDOWN stops the reactor: the service stops, committing the journal, as on SIGTERM.
    store.hooks.attach(journal, top._sweeper, SWEEP_INTERVAL, reactor.stop,
                       os.path.abspath(options["data"]))
    return top


def _first_port(listen: list) -> str:
    for description in listen:
        for field in description.split(":")[1:]:
            if field.isdigit():
                return field
    return "0"
