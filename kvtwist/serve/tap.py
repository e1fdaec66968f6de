"""``twistd kvstore``: command-line options and the service that loads, serves and persists."""

from __future__ import annotations

import os
import time

from twisted.application import service, strports
from twisted.internet import task
from twisted.logger import Logger
from twisted.python import usage

from kvtwist import __version__
from kvtwist.engine.databases import DEFAULT_DATABASES, DatabaseCountError
from kvtwist.engine.store import Store
from kvtwist.engine.users import auth_for
from kvtwist.serve.daemon import ServerOptions
from kvtwist.storage.journal import POLICIES as FSYNC_POLICIES
from kvtwist.storage.journal import WRITERS as JOURNAL_WRITERS
from kvtwist.serve.factory import KVFactory

DEFAULT_LISTEN = "tcp:7379:interface=127.0.0.1"
MAX_DATABASES = 1 << 16
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
        ["databases", None, str(DEFAULT_DATABASES), "number of databases (SELECT 0..N-1)"],
        ["requirepass", None, None,
         "the password clients must AUTH with (default: none); prefer --config for secrets"],
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
        try:
            self["databases"] = int(self["databases"])
        except ValueError:
            raise usage.UsageError("--databases must be a whole number")
        if not 1 <= self["databases"] <= MAX_DATABASES:
            raise usage.UsageError("--databases must be between 1 and %d" % (MAX_DATABASES,))


class StoreService(service.MultiService):
    """Owns the store's journal and expiry sweep; its children are the listening ports."""

    log = Logger()

    def __init__(self, store, journal, clock) -> None:
        service.MultiService.__init__(self)
        self.store = store
        self.journal = journal
        self._sweeper = task.LoopingCall(store.databases.sweep)
        self._sweeper.clock = clock

    def startService(self) -> None:
        # Threads start here, not in makeService, so that they survive daemonizing.
        self.journal.start()
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
                                   "databases": str(options["databases"]),
                                   "dir": os.path.abspath(options["data"])},
                  databases=options["databases"])
    started = time.monotonic()
    try:
        journal = Journal.open(options["data"], store.databases, reactor,
                               fsync=options["fsync"], repair=options["repair"],
                               compact_min_bytes=options["compact-min"],
                               compact_ratio=options["compact-ratio"],
                               writer=options["journal-writer"])
    except (JournalError, OSError, DatabaseCountError) as e:
        raise SystemExit("kvstore: cannot open %s: %s" % (options["data"], e))
    store.set_journal(journal)
    if options["requirepass"]:
        auth_for(store).set_password(options["requirepass"].encode("utf-8", "surrogateescape"))
    StoreService.log.info(
        "kvstore {version}: {keys} keys loaded from {data} in {seconds:.3f}s (fsync {fsync})",
        version=__version__, keys=len(store.databases), data=os.path.abspath(options["data"]),
        seconds=time.monotonic() - started, fsync=options["fsync"])
    top = StoreService(store, journal, reactor)
    factory = KVFactory(store, max_bulk=options["max-bulk"], reactor=reactor)
    for description in options["listen"]:
        strports.service(description, factory, reactor=reactor).setServiceParent(top)
    return top


def _first_port(listen: list) -> str:
    for description in listen:
        for field in description.split(":")[1:]:
            if field.isdigit():
                return field
    return "0"
