"""``twistd kvstore``: command-line options and the service that loads, serves and persists."""

from __future__ import annotations

import gc
import os
import time

from twisted.application import service, strports
from twisted.application.internet import StreamServerEndpointService
from twisted.internet import task
from twisted.logger import Logger
from twisted.python import usage

from kvtwist import __version__
from kvtwist.engine.databases import DEFAULT_DATABASES, DatabaseCountError
from kvtwist.engine.limits import limits_of
from kvtwist.engine.store import Store
from kvtwist.engine.users import auth_for
from kvtwist.serve.daemon import ServerOptions
from kvtwist.storage.journal import POLICIES as FSYNC_POLICIES
from kvtwist.storage.journal import WRITERS as JOURNAL_WRITERS
from kvtwist.serve.factory import KVFactory
from kvtwist.serve.tls import TLSError, tls_endpoint

DEFAULT_LISTEN = "tcp:7379:interface=127.0.0.1"
MAX_DATABASES = 1 << 16
SWEEP_INTERVAL = 0.1  # seconds between active-expiry sweeps, as Redis's hz 10
# The garbage collector policy while serving (CPython; PyPy's collector is incremental).
# What recovery loaded, modules and the service tree are frozen once at start: full
# collections no longer walk the keyspace's containers (a million keys' scan-order list
# cost 25-50 ms a pass, every client waiting). Values are bytes or containers without
# cycles, freed by reference counting whatever the collector does; it only has garbage
# cycles to find, and the young generations find those that die young. So, as kvproxy
# does, the young generation is collected every 10k net allocations rather than 700,
# and full collections are 100x rarer (threshold2 10 -> 1000).
GC_THRESHOLDS = (10000, 10, 1000)


def _size(text: str) -> int:
    """Parse a byte size such as ``512mb``, ``64MB``, ``1g`` or ``4096``."""
    value = text.strip().lower()
    for suffix, factor in (("kb", 1024), ("mb", 1024 ** 2), ("gb", 1024 ** 3),
                           ("k", 1024), ("m", 1024 ** 2), ("g", 1024 ** 3), ("b", 1)):
        if value.endswith(suffix):
            return int(float(value[: -len(suffix)]) * factor)
    return int(value)


# Directives of a --config file that set twistd kvstore's options.
_FILE_OPTIONS = {"dir": "data", "appendfsync": "fsync", "proto-max-bulk-len": "max-bulk",
                 "databases": "databases"}
_MULTI_ARG = ("bind", "save", "latency-tracking-info-percentiles", "client-output-buffer-limit")


def _interface(bind: str) -> str:
    # Redis's "-" prefix marks an address as optional; "*" is every IPv4 address.
    bind = bind.lstrip("-")
    if bind == "*":
        bind = "0.0.0.0"
    return bind.replace(":", "\\:")


class Options(ServerOptions):
    """Options for ``twistd kvstore``."""

    default_listen = DEFAULT_LISTEN

    synopsis = "[--listen ENDPOINT]... [--data DIR] [--fsync always|everysec|no]"
    longdesc = ("A key-value server speaking telnet text, RESP2 (any Redis client) and "
                "JSON lines on one port, keeping its data in a journal in --data.")

    optParameters = [
        ["config", None, None, "a redis.conf-style file (command-line options override it)"],
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
        ["aclfile", None, None,
         "the ACL file of users (ACL LOAD/SAVE), loaded at start; fixed while running"],
        ["inline-replies", None, "text",
         "how inline (telnet) requests are answered: text (readable) or resp (as Redis)"],
        ["protected-mode", None, None,
         "yes (the default) or no: refuse clients from other hosts while no password is set"],
        ["tls-auth-clients", None, None,
         "yes (the default), optional or no: whether ssl: listeners require a client "
         "certificate signed by --tls-ca-cert-file"],
        ["tls-ca-cert-file", None, None,
         "PEM file of the CA(s) whose client certificates ssl: listeners accept"],
    ]
    optFlags = [
        ["repair", None, "keep the longest valid prefix of a corrupt journal and start"],
    ]
    compData = usage.Completions(
        optActions={"fsync": usage.CompleteList(FSYNC_POLICIES),
                    "journal-writer": usage.CompleteList(JOURNAL_WRITERS),
                    "data": usage.CompleteDirs()})

    def parseOptions(self, options=None) -> None:
        """Parse, noting which options the command line gives (they override --config)."""
        import getopt
        import sys

        try:
            given, _ = getopt.getopt(sys.argv[1:] if options is None else options,
                                     self.shortOpt, self.longOpt)
        except getopt.error:
            given = []  # the real parse below reports it
        self.given = {self.synonyms.get(opt.lstrip("-").replace("-", "_"), opt.lstrip("-"))
                      for opt, _ in given}
        ServerOptions.parseOptions(self, options)

    def postOptions(self) -> None:
        self.params = []  # (name, text, where) of --config's parameter directives
        self.users = []  # (words after "user", where) of --config's user directives
        if self["config"] is not None:
            self._read_config(self["config"])
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
        if self["inline-replies"] not in ("text", "resp"):
            raise usage.UsageError("--inline-replies must be text or resp")

    def _read_config(self, path: str) -> None:
        from kvtwist.engine import configfile
        from kvtwist.engine.table import PARAMS

        try:
            lines = configfile.read(path)
        except (OSError, configfile.ConfigFileError) as e:
            raise usage.UsageError("--config: %s" % (e,))
        given = getattr(self, "given", set())
        port, binds = None, None
        for number, words in lines:
            where = "%s:%d" % (path, number)
            name, args = words[0], words[1:]
            if name == "port" and len(args) == 1:
                port = args[0]
            elif name == "bind" and args:
                binds = args
            elif name == "user" and args:
                self.users.append(([arg.encode("utf-8", "surrogateescape") for arg in args],
                                   where))
            elif name in _FILE_OPTIONS and len(args) == 1:
                option = _FILE_OPTIONS[name]
                if option not in given:
                    self[option] = args[0]
            elif name in PARAMS and (len(args) == 1 or (name in _MULTI_ARG and args)):
                self.params.append((name, " ".join(args), where))
            else:
                raise usage.UsageError(
                    "%s: unknown directive or wrong number of arguments: '%s'"
                    % (where, " ".join(words)))
        if "listen" not in given and (port is not None or binds is not None):
            port = DEFAULT_LISTEN.split(":")[1] if port is None else port
            if not port.isdigit() or int(port) > 65535:
                raise usage.UsageError("%s: bad port '%s'" % (path, port))
            self["listen"] = [
                "tcp:%s:interface=%s" % (port, _interface(each))
                for each in (binds or ["127.0.0.1"])]


class StoreService(service.MultiService):
    """Owns the store's journal and expiry sweep; its children are the listening ports."""

    log = Logger()

    def __init__(self, store, journal, clock) -> None:
        service.MultiService.__init__(self)
        self.store = store
        self.journal = journal
        self.saved_gc_thresholds = None
        self._sweeper = task.LoopingCall(store.databases.sweep)
        self._sweeper.clock = clock
        self.sweep_interval = SWEEP_INTERVAL
        # instantaneous_ops_per_sec: the command rate sampled every 100 ms, as Redis does
        self._sampler = task.LoopingCall(
            lambda: store.stats.sample(store.commands_processed))
        self._sampler.clock = clock

    def set_hz(self, hz: int) -> None:
        """Sweep expired keys ``hz`` times a second (CONFIG SET hz), from now on."""
        self.sweep_interval = 1.0 / hz
        if self._sweeper.running:
            self._sweeper.stop()
            self._sweeper.start(self.sweep_interval, now=False)

    def startService(self) -> None:
        if hasattr(gc, "freeze"):  # see GC_THRESHOLDS
            self.saved_gc_thresholds = gc.get_threshold()
            gc.collect()
            gc.freeze()
            gc.set_threshold(*GC_THRESHOLDS)
        # Threads start here, not in makeService, so that they survive daemonizing.
        self.journal.start()
        if getattr(getattr(self.store, "hooks", None), "active_expire", True):
            self._sweeper.start(self.sweep_interval, now=False)
        self._sampler.start(0.1, now=False)
        service.MultiService.startService(self)
        if self.store.config.get("port") == "0":
            # Listening on any free port: CONFIG GET port and INFO tell the one chosen.
            for child in self:
                waiting = getattr(child, "_waitingForPort", None)
                if waiting is not None:
                    waiting.addCallback(self._listening)
                    break

    def _listening(self, port):
        number = getattr(port.getHost(), "port", None)
        if number is not None:
            self.store.config["port"] = str(number)
        return port

    def stopService(self):
        """Stop listening, then flush the journal; the Deferred fires when it is closed."""
        for call in (self._sweeper, self._sampler):
            if call.running:
                call.stop()
        d = service.MultiService.stopService(self)
        d.addCallback(lambda _: self.journal.stop())
        d.addBoth(self._restore_gc)
        return d

    def _restore_gc(self, result):
        if self.saved_gc_thresholds is not None:
            gc.set_threshold(*self.saved_gc_thresholds)
            gc.unfreeze()
            self.saved_gc_thresholds = None
        return result


def makeService(options, reactor=None) -> service.MultiService:
    """Open the data directory (loading it) and build the kvstore service tree."""
    from kvtwist.storage.journal import Journal, JournalError

    if reactor is None:
        from twisted.internet import reactor
    from kvtwist.engine import config

    store = Store(reactor, config={"port": _first_port(options["listen"]),
                                   "bind": " ".join(_interfaces(options["listen"])),
                                   "proto-max-bulk-len": str(options["max-bulk"]),
                                   "appendonly": "yes", "appendfsync": options["fsync"],
                                   "dir": os.path.abspath(options["data"]),
                                   "inline-replies": options["inline-replies"]},
                  databases=options["databases"])
    if options["config"] is not None:
        store.config_file = os.path.abspath(options["config"])
    store.rss_provider = _rss
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
    params = getattr(options, "params", [])
    # The ACL file is loaded last, as Redis does: its default user wins over requirepass.
    aclfile = [param for param in params if param[0].lower() == "aclfile"]
    if options["aclfile"]:
        aclfile = [("aclfile", os.path.abspath(options["aclfile"]), "--aclfile")]
    try:
        config.configure(store, [param for param in params if param[0].lower() != "aclfile"])
        if options["requirepass"]:
            auth_for(store).set_password(
                options["requirepass"].encode("utf-8", "surrogateescape"))
        _configured_users(store, getattr(options, "users", []), aclfile)
        config.configure(store, aclfile)
    except config.ConfigError as e:
        raise SystemExit("kvstore: %s" % (e,))
    for name in ("protected-mode", "tls-auth-clients", "tls-ca-cert-file"):
        if options.get(name) is not None:
            try:
                config.configure(store, [(name, options[name], "--" + name)])
            except config.ConfigError as e:
                raise SystemExit("kvstore: %s" % (e,))
    StoreService.log.info(
        "kvstore {version}: {keys} keys loaded from {data} in {seconds:.3f}s (fsync {fsync})",
        version=__version__, keys=len(store.databases), data=os.path.abspath(options["data"]),
        seconds=time.monotonic() - started, fsync=options["fsync"])
    top = StoreService(store, journal, reactor)
    factory = KVFactory(store, max_bulk=options["max-bulk"], reactor=reactor)
    factory.watchdog.protect = True  # protected mode applies to kvstore's listeners
    config.watch(store, "hz", top.set_hz)
    if store.config["hz"] != "10":
        top.set_hz(int(store.config["hz"]))
    backlog = limits_of(store).backlog
    for description in options["listen"]:
        if description.split(":", 1)[0] == "ssl":  # Redis's TLS client authentication
            try:
                endpoint = tls_endpoint(reactor, description, store, backlog)
            except TLSError as e:
                raise SystemExit("kvstore: %s" % (e,))
            StreamServerEndpointService(endpoint, factory).setServiceParent(top)
            continue
        strports.service(with_backlog(description, backlog), factory,
                         reactor=reactor).setServiceParent(top)
    # SHUTDOWN stops the reactor: the service stops, committing the journal, as on SIGTERM.
    store.hooks.attach(journal, top._sweeper, SWEEP_INTERVAL, reactor.stop,
                       os.path.abspath(options["data"]))
    return top


def _configured_users(store, users: list, aclfile: list) -> None:
    # The config file's "user" directives (ACLLoadUsersAtStartup): not with an ACL file.
    from kvtwist.engine import acl_file, config

    if not users:
        return
    if any(param[1] for param in aclfile):
        raise config.ConfigError(acl_file.BOTH)
    seen, declared = set(), []
    for words, where in users:
        try:
            declared.append((words[0], acl_file.check_config_user(store, words, seen)))
        except ValueError as e:
            raise config.ConfigError("%s: %s" % (where, e))
    try:
        acl_file.load_config_users(store, declared)
    except ValueError as e:
        raise config.ConfigError(str(e))


def with_backlog(description: str, backlog: int) -> str:
    """Add ``backlog`` (tcp-backlog) to a tcp, ssl or unix endpoint description without one."""
    kind = description.split(":", 1)[0]
    if kind not in ("tcp", "ssl", "unix") or ":backlog=" in description:
        return description
    return "%s:backlog=%d" % (description, backlog)


def _interfaces(listen: list) -> list:
    found = []
    for description in listen:
        for field in description.replace("\\:", "\0").split(":")[1:]:
            if field.startswith("interface="):
                found.append(field[len("interface="):].replace("\0", ":"))
    return found


def _rss() -> int:
    """Return the process's resident set size in bytes from /proc/self/statm, else 0."""
    try:
        with open("/proc/self/statm", "rb") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError, AttributeError):
        return 0


def _first_port(listen: list) -> str:
    for description in listen:
        for field in description.split(":")[1:]:
            if field.isdigit():
                return field
    return "0"
