"""The caching proxy: sessions that answer GET/MGET from a cache and forward the rest."""

from __future__ import annotations

from twisted.internet.defer import Deferred
from twisted.python.failure import Failure

from kvtwist import __version__
from kvtwist.proxy.cache import MISSING
from kvtwist.client import ClientDisconnected, RequestTimeout, UnexpectedReply
from kvtwist.proxy.commands import ALL, READ_ONLY, REFUSED, WRITES
from kvtwist.wire.replies import OK, PONG, Error, Pairs
from kvtwist.loop.turns import at_turn_end


def backend_error(failure) -> Error:
    """Return the error reply a client gets when the backend could not answer."""
    exc = failure.value
    if isinstance(exc, RequestTimeout):
        return Error("ERR backend timeout: %s" % (exc,))
    if isinstance(exc, BackendUnavailable):
        return Error("ERR backend unavailable: %s" % (exc,))
    if isinstance(exc, ClientDisconnected):
        return Error("ERR backend connection lost: %s" % (exc,))
    return Error("ERR backend request failed: %s" % (failure.getErrorMessage(),))


def _fits_get(reply) -> bool:
    """Whether ``reply`` can be GET's: a bulk string, nil or an error (O(1))."""
    cls = reply.__class__
    return cls is bytes or reply is None or cls is Error


class _FitsMget:
    """Whether a reply can be the answer to an MGET of ``count`` keys (O(1))."""

    __slots__ = ("count",)

    def __init__(self, count: int) -> None:
        self.count = count

    def __call__(self, reply) -> bool:
        cls = reply.__class__
        return (cls is list and len(reply) == self.count) or cls is Error


def _discard(result) -> None:
    """Drop a reply (or failure) nobody needs."""
    return None


class BackendUnavailable(Exception):
    """The backend could not be reached; the request was not sent."""


class ProxySession:
    """One client of the proxy: ``execute(argv)`` returns a reply or a Deferred of one."""

    def __init__(self, proxy: ProxyStore, session_id: int, peer: str) -> None:
        self.proxy = proxy
        self.id = session_id
        self.peer = peer
        self.name = b""
        self.closing = False
        self.push = None
        self.protocol = 2  # HELLO 3 switches this client to RESP3 replies

    def execute(self, argv: list):
        """Run one command: GET/MGET via the cache, a few locally, the rest on the backend."""
        if not argv:
            return Error("ERR empty command")
        name = argv[0].upper()
        proxy = self.proxy
        if name == b"GET" and len(argv) == 2:
            return proxy.get(argv[1])
        if name == b"MGET" and len(argv) > 1:
            return proxy.mget(argv[1:])
        if name in READ_ONLY:
            return proxy.forward(argv)
        local = _LOCAL.get(name)
        if local is not None:
            return local(self, argv)
        if name in REFUSED:
            return Error("ERR '%s' is not supported through kvproxy"
                         % (name.decode("ascii", "replace"),))
        extractor = WRITES.get(name)
        if extractor is not None:
            return proxy.write(argv, extractor(argv))
        # A command kvproxy does not know may answer more or less than once.
        return proxy.write(argv, ALL, checked=True)

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
        return self.proxy.info()

    def _select(self, argv):
        if len(argv) == 2 and argv[1] == b"0":
            return OK
        return Error("ERR kvproxy serves database 0 only")

    def _hello(self, argv):
        # The backend link is always RESP2; the front end renders this client's replies
        # in whichever protocol it asked for, so RESP3 clients (redis-py 8) work too.
        protocol = self.protocol
        if len(argv) > 1:
            if argv[1] not in (b"2", b"3"):
                return Error("NOPROTO unsupported protocol version")
            protocol = int(argv[1])
        options = argv[2:]
        if len(options) == 2 and options[0].upper() == b"SETNAME":
            self.name = options[1]
        elif options:
            return Error("ERR HELLO options other than SETNAME are not supported "
                         "through kvproxy")
        self.protocol = protocol
        return Pairs([(b"server", b"kvproxy"), (b"version", __version__.encode("ascii")),
                      (b"proto", protocol), (b"id", self.id), (b"mode", b"standalone"),
                      (b"role", b"master"), (b"modules", [])])

    def _client(self, argv):
        sub = argv[1].upper() if len(argv) > 1 else b""
        if sub == b"ID" and len(argv) == 2:
            return self.id
        if sub == b"SETNAME" and len(argv) == 3:
            if b" " in argv[2]:
                return Error("ERR Client names cannot contain spaces, newlines or "
                             "special characters.")
            self.name = argv[2]
            return OK
        if sub == b"GETNAME" and len(argv) == 2:
            return self.name or None
        if sub == b"SETINFO" and len(argv) == 4:
            return OK
        return Error("ERR CLIENT %s is not supported through kvproxy"
                     % (sub.decode("ascii", "replace"),))


_LOCAL = {
    b"PING": ProxySession._ping,
    b"QUIT": ProxySession._quit,
    b"INFO": ProxySession._info,
    b"SELECT": ProxySession._select,
    b"CLIENT": ProxySession._client,
    b"HELLO": ProxySession._hello,
}


class ProxyStore:
    """What ``server.KVFactory`` serves for kvproxy: sessions over a cache and a backend.

    ``backend`` has ``request(argv) -> Deferred[reply]`` (error replies as ``Error``
    values; failures for disconnects, timeouts, unavailability) and a ``state`` string.
    ``listener`` (optional) has ``state`` and ``caching`` (whether cached entries are
    trustworthy now); without one the cache relies on TTLs alone.
    """

    def __init__(self, clock, cache, backend, listener=None) -> None:
        self.clock = clock
        self.cache = cache
        self.backend = backend
        self.listener = listener
        self.clients = {}
        self.started = clock.seconds()
        self._next_id = 0
        self.forwarded = 0
        self.fetches = 0
        self.fetched_keys = 0
        self.rereads = 0
        self.coalesced = 0
        self._batch = []  # placeholders of this turn's GET misses, sent at its end
        self._batch_due = False  # a call at the end of the turn will send the batch
        self._at_turn_end = at_turn_end(clock)
        # key -> placeholders of MGET fetches in flight whose nil would be re-read with
        # GET and that no write to the key has followed yet (see ``_fence``).
        self._unfenced = {}
        self.fences = 0
        self.backend_errors = 0

    def new_session(self, peer: str = "") -> ProxySession:
        """Return a new session for a connected client."""
        self._next_id += 1
        session = self.clients[self._next_id] = ProxySession(self, self._next_id, peer)
        return session

    def drop_session(self, session: ProxySession) -> None:
        """Forget a disconnected client's session."""
        self.clients.pop(session.id, None)

    @property
    def caching(self) -> bool:
        """Whether fetched values may be cached now (invalidations flowing, or TTL-only)."""
        listener = self.listener
        return listener is None or listener.caching

    # -- reads -------------------------------------------------------------------

    def get(self, key: bytes):
        """Return the cached value, or a Deferred of what GET key answers on the backend.

        Misses are not sent one by one: those of one reactor turn (every client's) go
        to the backend together at the end of the turn (see ``_send_batch``).
        """
        cache = self.cache
        value = cache.get(key)
        if value is not MISSING:
            return value
        if not self.caching:
            return self.forward([b"GET", key])
        waiter = Deferred()
        placeholder = cache.pending(key)
        if placeholder is not None:
            # Joined only while no write to the key was acknowledged since the fetch
            # was sent, so its answer is as fresh as a fetch of our own.
            self.coalesced += 1
            if placeholder.waiters is None:
                placeholder.waiters = [waiter]
            else:
                placeholder.waiters.append(waiter)
            return waiter
        placeholder = cache.reserve(key)
        placeholder.waiters = [waiter]
        self._batch.append(placeholder)
        if not self._batch_due:
            self._batch_due = True
            self._at_turn_end(self._turn_ended)
        return waiter

    def _turn_ended(self) -> None:
        self._batch_due = False
        self._send_batch()  # nothing left to send if a write sent the batch early

    def _send_batch(self) -> None:
        # One request for the turn's misses: one GET, or one MGET for several keys.
        batch = self._batch
        if not batch:
            return
        self._batch = []
        self.fetches += 1
        self.fetched_keys += len(batch)
        if len(batch) == 1:
            placeholder = batch[0]
            self.backend.request([b"GET", placeholder.key], check=_fits_get).addBoth(
                self._fetched, placeholder)
            return
        argv = [b"MGET"]
        argv.extend([placeholder.key for placeholder in batch])
        tracked = not self.backend.strings_only
        if tracked:
            self._track(batch)
        self.backend.request(argv, check=_FitsMget(len(batch))).addBoth(
            self._batch_fetched, batch, tracked)

    def _batch_fetched(self, reply, batch, tracked) -> None:
        if tracked:
            self._untrack(batch)
            self._answer_batch(reply, batch)
            self._drop_fences(batch)
            return
        self._answer_batch(reply, batch)

    def _answer_batch(self, reply, batch) -> None:
        if reply.__class__ is list and len(reply) == len(batch):
            fill = self.cache.fill
            reread = self._reread
            trusted = self.backend.strings_only
            for placeholder, value in zip(batch, reply):
                if value.__class__ is bytes or (value is None and trusted):
                    fill(placeholder, value)
                    self._answer(placeholder, value)
                else:
                    # MGET answers nil for a key of another type where GET says
                    # WRONGTYPE: only GET's own answer may be cached or relayed.
                    reread(placeholder)
            return
        if isinstance(reply, Error):
            # What MGET refused, GET may not (a per-command ACL, say): ask key by key.
            for placeholder in batch:
                self._reread(placeholder)
            return
        error = self._fetch_error(reply)
        release = self.cache.release
        for placeholder in batch:
            release(placeholder)
            self._answer(placeholder, error)

    # -- fences: re-reads that a later write must not overtake -------------------------
    #
    # A nil in an MGET reply is re-read with GET, which runs on the backend after
    # whatever was sent after the MGET. Were a write to the key among those, the re-read
    # would answer a read made before the write with the write's result. So a write to
    # a key whose ambiguous MGET is in flight is preceded by a GET of the key (its
    # fence); the MGET's nil is then answered by that GET, which runs after the MGET and
    # before the write. Only fetches on a backend that is not strings-only are tracked.

    def _track(self, placeholders) -> None:
        """Note MGET fetches whose nil would need a re-read (O(len(placeholders)))."""
        unfenced = self._unfenced
        for placeholder in placeholders:
            if placeholder is None:
                continue
            waiting = unfenced.get(placeholder.key)
            if waiting is None:
                unfenced[placeholder.key] = [placeholder]
            else:
                waiting.append(placeholder)

    def _fence(self, keys) -> None:
        """Send a GET (the fence) for each tracked fetch of ``keys`` (ALL: every one).

        Called just before a write to ``keys`` is sent; O(len(keys)) plus one request
        per fetch fenced.
        """
        unfenced = self._unfenced
        if keys is ALL:
            groups = list(unfenced.values())
            unfenced.clear()
        else:
            groups = [unfenced.pop(key) for key in keys if key in unfenced]
        request = self.backend.request
        for group in groups:
            for placeholder in group:
                self.fences += 1
                self.fetches += 1
                placeholder.fence = request([b"GET", placeholder.key], check=_fits_get)

    def _untrack(self, placeholders) -> None:
        """Forget the tracked fetches of an MGET that answered (O(len(placeholders)))."""
        unfenced = self._unfenced
        for placeholder in placeholders:
            if placeholder is None or placeholder.fence is not None:
                continue  # a fenced fetch is no longer tracked
            waiting = unfenced.get(placeholder.key)
            if waiting is not None and placeholder in waiting:
                waiting.remove(placeholder)
                if not waiting:
                    del unfenced[placeholder.key]

    @staticmethod
    def _drop_fences(placeholders) -> None:
        """Discard the fences of an answered MGET that no re-read took."""
        for placeholder in placeholders:
            if placeholder is not None and placeholder.fence is not None:
                placeholder.fence.addBoth(_discard)
                placeholder.fence = None

    def _fetch_error(self, reply) -> Error:
        """Count a failed MGET fetch; return the error its waiting clients get."""
        if isinstance(reply, Failure):
            return self._failed(reply)
        self.backend_errors += 1
        return Error("ERR backend sent a malformed MGET reply")

    def _reread(self, placeholder) -> None:
        # Ask GET for the key; a fence already asked it, before any write to the key.
        self.rereads += 1
        fence = placeholder.fence
        if fence is not None:
            placeholder.fence = None
            fence.addBoth(self._fetched, placeholder)
            return
        self.fetches += 1
        self.backend.request([b"GET", placeholder.key], check=_fits_get).addBoth(
            self._fetched, placeholder)

    def _fetched(self, reply, placeholder) -> None:
        if reply is None or reply.__class__ is bytes:
            self.cache.fill(placeholder, reply)
        else:
            self.cache.release(placeholder)
            if isinstance(reply, Failure):
                reply = self._failed(reply)
        self._answer(placeholder, reply)

    @staticmethod
    def _answer(placeholder, reply) -> None:
        waiters = placeholder.waiters
        if waiters is not None:
            placeholder.waiters = None
            for waiter in waiters:
                waiter.callback(reply)

    def mget(self, keys: list):
        """Return the values of ``keys``, fetching only those the cache lacks in one MGET."""
        cache = self.cache
        values = []
        wanted = {}
        for key in keys:
            value = cache.get(key)
            values.append(value)
            if value is MISSING and key not in wanted:
                wanted[key] = None
        if not wanted:
            return values
        fetch = list(wanted)
        placeholders = None
        tracked = False
        if self.caching:
            # A key whose GET fetch is pending keeps it: that fetch fills the cache.
            pending = cache.pending
            placeholders = [None if pending(key) is not None else cache.reserve(key)
                            for key in fetch]
            tracked = not self.backend.strings_only
            if tracked:
                self._track(placeholders)
        self.fetches += 1
        self.fetched_keys += len(fetch)
        d = self.backend.request([b"MGET"] + fetch, check=_FitsMget(len(fetch)))
        d.addBoth(self._mget_fetched, keys, values, fetch, placeholders, tracked)
        return d

    def _mget_fetched(self, reply, keys, values, fetch, placeholders, tracked):
        cache = self.cache
        ok = reply.__class__ is list and len(reply) == len(fetch)
        if not ok:
            error = reply if isinstance(reply, Error) else self._fetch_error(reply)
        if tracked:
            self._untrack(placeholders)
        if placeholders is not None:
            trusted = ok and self.backend.strings_only
            for index, placeholder in enumerate(placeholders):
                if placeholder is None:
                    continue
                value = reply[index] if ok else error
                if value.__class__ is bytes or (value is None and trusted):
                    cache.fill(placeholder, value)
                    self._answer(placeholder, value)
                elif ok and placeholder.waiters is not None:
                    # A GET joined this fetch; it is owed GET's answer, not MGET's nil.
                    self._reread(placeholder)
                else:
                    cache.release(placeholder)
                    self._answer(placeholder, value)
            if tracked:
                self._drop_fences(placeholders)
        if not ok:
            return error
        fetched = dict(zip(fetch, reply))
        return [fetched[key] if value is MISSING else value
                for key, value in zip(keys, values)]

    # -- forwarding ----------------------------------------------------------------

    def forward(self, argv: list) -> Deferred:
        """Send a command that changes nothing; the Deferred delivers its reply."""
        self.forwarded += 1
        return self.backend.request(argv).addErrback(self._failed)

    def write(self, argv: list, keys, checked: bool = False) -> Deferred:
        """Send a write and drop the keys it touches (ALL: everything) from the cache.

        They are dropped when it is sent, so a GET pipelined after it is fetched after
        it, and again when it is answered (or fails), voiding fetches that raced it;
        the Deferred delivers the backend's reply after that. ``checked``: the command
        is not known to answer exactly once, so the backend link checks that it does
        (``RespClientProtocol.request``).
        """
        if self._batch:
            # The misses read before this write must reach the backend before it.
            self._send_batch()
        if self._unfenced:
            self._fence(keys)
        self._invalidate(keys)
        self.forwarded += 1
        d = self.backend.request(argv, checked=True) if checked else self.backend.request(argv)
        d.addBoth(self._written, keys)
        return d

    def _written(self, result, keys):
        self._invalidate(keys)
        if isinstance(result, Failure):
            return self._failed(result)
        return result

    def _invalidate(self, keys) -> None:
        if keys is ALL:
            self.cache.invalidate_all()
            return
        for key in keys:
            self.cache.invalidate(key)

    def _failed(self, failure) -> Error:
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
        lines = [
            "# Proxy",
            "kvproxy_version:%s" % (__version__,),
            "uptime_in_seconds:%d" % (self.clock.seconds() - self.started,),
            "connected_clients:%d" % (len(self.clients),),
            "backend_state:%s" % (self.backend.state,),
            "backend_address:%s" % (getattr(self.backend, "address", ""),),
            "backend_forwarded:%d" % (self.forwarded,),
            "backend_fetches:%d" % (self.fetches,),
            "backend_fetched_keys:%d" % (self.fetched_keys,),
            "backend_rereads:%d" % (self.rereads,),
            "backend_fences:%d" % (self.fences,),
            "backend_strings_only:%d" % (self.backend.strings_only,),
            "backend_errors:%d" % (self.backend_errors,),
            "invalidation_state:%s" % (listener.state if listener is not None else "off",),
            "invalidation_messages:%d" % (getattr(listener, "messages", 0),),
            "",
            "# Cache",
            "cache_hits:%d" % (stats["hits"],),
            "cache_misses:%d" % (stats["misses"],),
            "cache_hit_ratio:%.4f" % (stats["hit_ratio"],),
            "cache_coalesced:%d" % (self.coalesced,),
            "cache_entries:%d" % (stats["entries"],),
            "cache_max_entries:%d" % (stats["max_entries"],),
            "cache_evictions:%d" % (stats["evictions"],),
            "cache_expirations:%d" % (stats["expirations"],),
            "cache_invalidations:%d" % (stats["invalidations"],),
            "cache_flushes:%d" % (stats["flushes"],),
            "cache_ttl:%g" % (stats["ttl"],),
            "cache_miss_ttl:%g" % (stats["miss_ttl"],),
        ]
        return ("\r\n".join(lines) + "\r\n").encode("utf-8")

