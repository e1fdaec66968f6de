"""The caching proxy: sessions that answer GET/MGET from a cache and forward the rest."""

from __future__ import annotations

from twisted.internet.defer import Deferred
from twisted.python.failure import Failure

from kvtwist import __version__
from kvtwist.client import ClientDisconnected, NotAnswered, RequestTimeout, UnexpectedReply
from kvtwist.proxy.auth import NO_AUTH, NOAUTH_ERROR, Authenticating, proxy_auth, valid_name
from kvtwist.proxy.commands import (
    CONTAINERS, READ_ONLY, REFUSED, STREAM_READS, WRITES, admin, admin_keys, blocks, scope)
from kvtwist.proxy.cache import slot
from kvtwist.proxy.databases import Selecting, invalidate
from kvtwist.proxy.front import Reply
from kvtwist.proxy.lanes import lane_get, lane_write, large_write
from kvtwist.proxy.link import fetcher
from kvtwist.proxy.reads import Reads
from kvtwist.proxy.transactions import Transacting, send_transaction
from kvtwist.proxy.tunnel import TUNNELLED, Spares, Tunnel, opens, tunnel_execute
from kvtwist.proxy.watching import Watching
from kvtwist.wire.replies import OK, PONG, Error


def backend_error(failure) -> Error:
    """Return the error reply a client gets when the backend could not answer."""
    exc = failure.value
    if isinstance(exc, RequestTimeout):
        return Error("ERR backend timeout: %s" % (exc,))
    if isinstance(exc, BackendUnavailable):
        return Error("ERR backend unavailable: %s" % (exc,))
    if isinstance(exc, NotAnswered):
        return Error("ERR backend request not answered: %s" % (exc,))
    if isinstance(exc, ClientDisconnected):
        return Error("ERR backend connection lost: %s" % (exc,))
    return Error("ERR backend request failed: %s" % (failure.getErrorMessage(),))


class BackendUnavailable(Exception):
    """The backend could not be reached; the request was not sent."""


class ProxySession(Selecting, Authenticating, Watching, Transacting):
    """One client of the proxy: ``execute(argv)`` returns a reply or a Deferred of one.

    ``db`` is its database (``Selecting``): every request it sends runs there. While
    kvproxy's password is not given (``Authenticating``) only AUTH, HELLO and QUIT run.
    """

    after_reply = ()  # the protocol's pushes-after-reply queue: kvproxy never has any
    _tunnel = None  # the client's own backend connection, once it needs one (proxy.tunnel)
    output_gate = None  # the front end's OutputGate (serve.limits), paced tunnels read by it

    def __init__(self, proxy: ProxyStore, session_id: int, peer: str) -> None:
        self.proxy = proxy
        self._reads = proxy.reads
        lanes = proxy.lanes
        self._large = None if lanes is None else lanes.large  # keys with large values
        self.id = session_id
        self.peer = peer
        self.name = b""
        self.closing = False
        self.push = None
        self.protocol = 2  # HELLO 3 switches this client to RESP3 replies
        self.authenticated = not proxy.auth.required

    def execute(self, argv: list):
        """Run one command: GET/MGET via the cache, a few locally, the rest on the backend."""
        if not argv:
            return Error("ERR empty command")
        if not self.authenticated and argv[0].upper() not in NO_AUTH:
            return NOAUTH_ERROR
        if self._tunnel is not None:  # everything on the client's own connection
            return tunnel_execute(self, self._tunnel, argv[0].upper(), argv)
        if self._held is not None:  # behind a SELECT in flight
            return self._hold(argv)
        if self._queued is not None:  # inside MULTI
            return self._queue(argv)
        name = argv[0].upper()
        if self._pinned is not None:  # watching: on the client's own connection
            if name in TUNNELLED and self.proxy.tunnels and opens(name, argv,
                                                                  self.proxy.resp3_tunnel):
                return self._start_tunnel(argv)
            reply = self._pinned_execute(argv, name)
            if reply is not None:
                return reply
        db = self.db
        if name == b"GET" and len(argv) == 2:
            large = self._large
            if large and slot(argv[1], db) in large:
                return self._by_lane(lane_get(self.proxy, argv[1], db))
            return self._reads.get(argv[1], db)
        proxy = self.proxy
        if name == b"MGET" and len(argv) > 1:
            return proxy.reads.mget(argv[1:], db)
        if name in READ_ONLY:
            return proxy.forward(argv, db=db)
        extractor = WRITES.get(name)
        if extractor is not None:
            if self._large is not None and large_write(argv):
                return self._by_lane(lane_write(proxy, argv,
                                                scope(name, argv, db, extractor(argv)), db))
            return proxy.write(argv, scope(name, argv, db, extractor(argv)), db)
        if name in TUNNELLED and proxy.tunnels and opens(name, argv, proxy.resp3_tunnel):
            return self._start_tunnel(argv)
        local = _LOCAL.get(name)
        if local is not None:
            return local(self, argv)
        if name in REFUSED or (name in STREAM_READS and blocks(argv)):
            return Error("ERR '%s' is not supported through kvproxy"
                         % (name.decode("ascii", "replace"),))
        if name in STREAM_READS:
            return proxy.forward(argv, db=db)
        server_wide = admin(name, argv)
        if server_wide:
            if not proxy.allow_admin:
                return Error("ERR '%s' changes the backend for every client of kvproxy: "
                             "refused (start kvproxy with --allow-admin to forward it)"
                             % (server_wide,))
            return proxy.write(argv, scope(name, argv, db, admin_keys(name, argv)), db)
        if name in CONTAINERS:
            return proxy.forward(argv, db=db)
        # A command kvproxy does not know (a module's, say) may answer more or less than
        # once: the link checks it. Its writes reach the cache through invalidations only.
        return proxy.forward(argv, checked=True, db=db)

    def _by_lane(self, reply):
        """A request sent on a lane (``proxy.lanes``): the client's next commands are held
        until it is answered (``Selecting._hold``), so they run after it."""
        if not isinstance(reply, Deferred):
            return reply  # a cache hit
        self._held = []
        reply.addBoth(self._lane_answered)
        return reply

    def _lane_answered(self, result):
        self._release()
        return result

    def _start_tunnel(self, argv):
        """Open the client's own backend connection (``proxy.tunnel``) and send ``argv``
        there; so will be every later command of the client."""
        tunnel = self._tunnel = Tunnel(self, self.proxy)
        prepare = []
        if self.db:
            prepare.append([b"SELECT", b"%d" % (self.db,)])
        if self.name:
            prepare.append([b"CLIENT", b"SETNAME", self.name])
        name = argv[0].upper()
        if name == b"HELLO":  # kvproxy's own login first: no tunnel before it
            reply = self._hello(argv)
            if reply.__class__ is Error:
                return reply
        elif self.protocol == 3:
            prepare.append([b"HELLO", b"3"])
        replayed = []
        if self._queued is not None:  # the transaction opened in kvproxy goes on there
            replayed = [[b"MULTI"]] + self._queued
            if self._aborted:  # a queue-time error: the backend's EXEC must abort too
                replayed.append([b"KVPROXY-QUEUE-TIME-ERROR"])
            self._queued = None
            self._aborted = False
        self.unpin()  # a WATCH's connection
        tunnel.open(prepare, replayed)
        return tunnel_execute(self, tunnel, name, argv)

    def untunnel(self, tunnel) -> None:
        """The tunnel could not be opened: the client's next commands go the usual way."""
        if self._tunnel is tunnel:
            self._tunnel = None

    def tunnel_closed(self, tunnel) -> None:
        """The backend closed the client's tunnel: close the client's connection once the
        replies already relayed are written."""
        if self._tunnel is not tunnel:
            return
        disconnect = getattr(self, "disconnect", None)
        if disconnect is not None:
            disconnect()
        else:
            self.closing = True

    def _ping(self, argv):
        if len(argv) == 1:
            return PONG
        if len(argv) == 2:
            return argv[1]
        return Error("ERR wrong number of arguments for 'ping' command")

    def _quit(self, argv):
        self.closing = True
        return OK

    def _info(self, argv):
        """INFO: the backend's, with kvproxy's sections after it where Redis's default
        sections are asked for; ``INFO proxy`` (or ``cache``) is kvproxy's alone."""
        proxy = self.proxy
        sections = [arg.lower() for arg in argv[1:]]
        if proxy.backend is None or (sections and all(section in PROXY_SECTIONS
                                                      for section in sections)):
            return proxy.info()
        d = proxy.forward(argv, db=self.db)
        if not sections or any(section in DEFAULT_SECTIONS for section in sections):
            d.addCallback(_with_proxy_info, proxy)
        return d

    def _client(self, argv):
        sub = argv[1].upper() if len(argv) > 1 else b""
        if sub == b"ID" and len(argv) == 2:
            return self.id
        if sub == b"SETNAME" and len(argv) == 3:
            if not valid_name(argv[2]):
                return Error("ERR Client names cannot contain spaces, newlines or "
                             "special characters.")
            self.name = argv[2]
            return OK
        if sub == b"GETNAME" and len(argv) == 2:
            return self.name or None
        if sub == b"SETINFO" and len(argv) == 4:
            return OK
        if sub == b"MAINT_NOTIFICATIONS":  # as Redis 7.0 answers it
            return Error("ERR unknown subcommand '%s'. Try CLIENT HELP."
                         % (argv[1][:128].decode("utf-8", "replace"),))
        return Error("ERR CLIENT %s is not supported through kvproxy"
                     % (sub.decode("ascii", "replace"),))


PROXY_SECTIONS = frozenset([b"proxy", b"cache"])
DEFAULT_SECTIONS = frozenset([b"default", b"all", b"everything"])


def _with_proxy_info(reply, proxy):
    """The backend's INFO text followed by kvproxy's sections (kvproxy's alone when the
    backend does not answer: INFO is how one sees why)."""
    if reply.__class__ is Error:
        return proxy.info()
    if reply.__class__ is not bytes:
        return reply
    return reply.rstrip(b"\r\n") + b"\r\n\r\n" + proxy.info()


_LOCAL = {
    b"PING": ProxySession._ping,
    b"QUIT": ProxySession._quit,
    b"EXIT": ProxySession._quit,  # kvstore's alias: the backend would close the shared link
    b"INFO": ProxySession._info,
    b"SELECT": ProxySession._select,
    b"CLIENT": ProxySession._client,
    b"HELLO": ProxySession._hello,
    b"AUTH": ProxySession._auth,
    b"MULTI": ProxySession._multi,
    b"EXEC": ProxySession._exec,
    b"DISCARD": ProxySession._discard,
    b"WATCH": ProxySession._watch,
    b"UNWATCH": ProxySession._unwatch,
}


class ProxyStore:
    """What ``server.KVFactory`` serves for kvproxy: sessions over a cache and a backend.

    ``backend`` has ``request(argv) -> Deferred[reply]`` (error replies as ``Error``
    values; failures for disconnects, timeouts, unavailability) and a ``state`` string.
    ``listener`` (optional) has ``state`` and ``caching`` (whether cached entries are
    trustworthy now); without one the cache relies on TTLs alone. ``requirepass``
    (bytes; empty: none) is the password its clients must log in with (``auth``).
    """

    def __init__(self, clock, cache, backend, listener=None, allow_admin: bool = False,
                 requirepass: bytes = b"", resp3_cached: bool = False) -> None:
        self.clock = clock
        self.cache = cache
        self.backend = backend
        self.listener = listener
        self.allow_admin = allow_admin  # forward server-wide commands (commands.admin)
        # One backend kvproxy can connect to: a client may get a connection of its own
        # (proxy.tunnel); without (a pool, or a test's fake) such commands are refused.
        self.tunnels = getattr(backend, "endpoint", None) is not None
        self.resp3_tunnel = not resp3_cached  # HELLO 3 tunnels (else answered here)
        self.spares = Spares(self) if self.tunnels else None
        # Large requests' own connections (a proxy.lanes.Lanes, which twistd kvproxy
        # gives one backend before any client connects); None: none.
        self.lanes = None
        self.clients = {}
        self.started = clock.seconds()
        self._next_id = 0
        self.forwarded = 0
        self.backend_errors = 0
        self.reads = Reads(self)
        self.auth = proxy_auth(requirepass)

    def new_session(self, peer: str = "") -> ProxySession:
        """Return a new session for a connected client."""
        self._next_id += 1
        session = self.session_class(self, self._next_id, peer)
        self.clients[self._next_id] = session
        return session

    session_class = ProxySession

    def stop(self) -> None:
        """Close the spare connections and the lanes (kvproxy is stopping)."""
        if self.spares is not None:
            self.spares.stop()
        if self.lanes is not None:
            self.lanes.stop()

    def drop_session(self, session: ProxySession) -> None:
        """Forget a disconnected client's session (closing its WATCH connection)."""
        self.clients.pop(session.id, None)
        session.unpin()
        tunnel = session._tunnel
        if tunnel is not None:
            session._tunnel = None
            tunnel.close()

    @property
    def caching(self) -> bool:
        """Whether fetched values may be cached now (invalidations flowing, or TTL-only)."""
        listener = self.listener
        return listener is None or listener.caching

    # -- forwarding ----------------------------------------------------------------

    def forward(self, argv: list, checked: bool = False, db=None) -> Deferred:
        """Send a command that changes no key, to run in database ``db`` (None: wherever
        the backend connection is); the Deferred delivers its reply.

        ``checked``: the command is not known to answer exactly once, so the backend
        link checks that it does (``RespClientProtocol.request``).
        """
        self.forwarded += 1
        if checked:
            return self.backend.request(argv, db=db, checked=True).addErrback(self.failed)
        d = Reply()
        fetcher(self.backend)(argv, db, None, self._forwarded, d)
        return d

    def _forwarded(self, result, d: Reply) -> None:
        if result.__class__ is Failure:
            result = self.failed(result)
        d.answer(result)

    def write(self, argv: list, targets, db: int = 0) -> Deferred:
        """Send a write to run in database ``db`` and drop what it may change from the
        cache: ``targets`` is its ``commands.scope``, a list of (database or None for
        every one, keys or ALL).

        They are dropped when it is sent, so a GET pipelined after it is fetched after
        it, and again when it is answered (or fails), voiding fetches that raced it;
        the Deferred delivers the backend's reply after that.
        """
        # The misses read before this write, and the re-reads it must not overtake,
        # reach the backend before it.
        self.reads.before_write(targets)
        invalidate(self.cache, targets)
        self.forwarded += 1
        d = Reply()
        fetcher(self.backend)(argv, db, None, self._written_to, targets, d)
        return d

    def _written_to(self, result, targets, d: Reply) -> None:
        d.answer(self._written(result, targets))

    def _written(self, result, targets):
        invalidate(self.cache, targets)
        if isinstance(result, Failure):
            return self.failed(result)
        return result

    def pin_target(self, keys):
        """Where a WATCH of ``keys`` pins its client: the one backend."""
        return self

    def pinned_here(self, store, keys) -> bool:
        """Whether a watching client's command on ``keys`` goes on its connection: with
        one backend, every one."""
        return True

    def transaction(self, commands: list, db: int):
        """Run a client's MULTI ... EXEC (``transactions.send_transaction``)."""
        return send_transaction(self, commands, db)

    def failed(self, failure) -> Error:
        """Count a request the backend did not answer; return the error its client gets.

        When the backend's replies fell out of step with the requests, replies taken
        before that was seen may have gone to the wrong fetch: the cache is flushed.
        """
        self.backend_errors += 1
        if failure.check(UnexpectedReply) is not None:
            self.cache.invalidate_all()
        return backend_error(failure)

    # -- INFO ------------------------------------------------------------------------

    def info(self) -> bytes:
        """Return INFO text: the proxy, its backend and the cache's counters."""
        stats = self.cache.stats()
        listener = self.listener
        reads = self.reads
        lines = [
            "# Proxy",
            "kvproxy_version:%s" % (__version__,),
            "uptime_in_seconds:%d" % (self.clock.seconds() - self.started,),
            "connected_clients:%d" % (len(self.clients),),
            "requirepass:%s" % ("yes" if self.auth.required else "no",),
            "acl_access_denied_auth:%d" % (self.auth.denied,),
            "backend_state:%s" % (self.backend.state,),
            "backend_address:%s" % (getattr(self.backend, "address", ""),),
            "backend_forwarded:%d" % (self.forwarded,),
            "backend_fetches:%d" % (reads.fetches,),
            "backend_fetched_keys:%d" % (reads.fetched_keys,),
            "backend_rereads:%d" % (reads.rereads,),
            "backend_fences:%d" % (reads.fences,),
            "backend_retries:%d" % (reads.retries,),
            "backend_ttl_checks:%d" % (reads.ttl_checks,),
            "backend_strings_only:%d" % (self.backend.strings_only,),
            "backend_errors:%d" % (self.backend_errors,),
            "lane_requests:%d" % (self.lanes.requests if self.lanes is not None else 0,),
            "lane_connections:%d" % (len(self.lanes.links) if self.lanes is not None else 0,),
            "invalidation_state:%s" % (listener.state if listener is not None else "off",),
            "invalidation_messages:%d" % (getattr(listener, "messages", 0),),
            "cache_invalidation_link:%s" % (listener.link if listener is not None else "off",),
            "cache_invalidation_reconnects:%d" % (getattr(listener, "reconnects", 0),),
        ]
        lines += cache_info(stats, reads.coalesced)
        return ("\r\n".join(lines) + "\r\n").encode("utf-8")


def cache_info(stats: dict, coalesced: int) -> list:
    """INFO's ``# Cache`` section (with the blank line before it) from ``Cache.stats()``."""
    lines = [
        "",
        "# Cache",
        "cache_hits:%d" % (stats["hits"],),
        "cache_misses:%d" % (stats["misses"],),
        "cache_hit_ratio:%.4f" % (stats["hit_ratio"],),
        "cache_coalesced:%d" % (coalesced,),
        "cache_entries:%d" % (stats["entries"],),
    ]
    lines.extend("cache_db%d:entries=%d" % (db, count)
                 for db, count in stats["databases"].items())
    lines += [
        "cache_max_entries:%d" % (stats["max_entries"],),
        "cache_bytes:%d" % (stats["bytes"],),
        "cache_max_bytes:%d" % (stats["max_bytes"],),
        "cache_evictions:%d" % (stats["evictions"],),
        "cache_expirations:%d" % (stats["expirations"],),
        "cache_invalidations:%d" % (stats["invalidations"],),
        "cache_flushes:%d" % (stats["flushes"],),
        "cache_ttl:%g" % (stats["ttl"],),
        "cache_miss_ttl:%g" % (stats["miss_ttl"],),
    ]
    return lines
