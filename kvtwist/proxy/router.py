"""kvproxy over a pool of servers (twemproxy's sharding): each key's requests go to the
server nutcracker would put it on (``pool.Pool.distribution``).

``ShardedStore`` holds the pool's ``Shard``s (``proxy.shards``), routes keys, ejects and
readmits servers (nutcracker's auto_eject_hosts / server_failure_limit /
server_retry_timeout), and answers INFO; ``ShardedSession`` routes each command: GET and
single-server commands go to their key's shard as they would to the one backend; MGET,
MSET, DEL, UNLINK, EXISTS and TOUCH are split per server (``proxy.multikey``); keyless
commands are answered by kvproxy, sent to every server and merged, or sent to the first
live server (``multikey.KEYLESS``); any other command whose keys live on several servers
is refused with a CROSSSLOT error naming them.
"""

from __future__ import annotations

from twisted.logger import Logger

from kvtwist import __version__
from kvtwist.proxy import multikey
from kvtwist.proxy.commands import (
    CONTAINERS, READ_ONLY, REFUSED, STREAM_READS, WRITES, admin, admin_keys, blocks, scope)
from kvtwist.proxy.keys import command_keys
from kvtwist.proxy.auth import NO_AUTH, NOAUTH_ERROR
from kvtwist.proxy.store import _LOCAL, ProxySession, ProxyStore, cache_info
from kvtwist.proxy.transactions import send_transaction
from kvtwist.wire.replies import Error

log = Logger()

# The most keys whose server is remembered (``ShardedStore.shard_index``).
PLACED_LIMIT = 100000


def crossslot(shards, what: str = "command") -> Error:
    """The error for keys of one command (or transaction) on several servers."""
    names = ", ".join(shard.label for shard in shards)
    return Error("ERR CROSSSLOT keys of this %s live on different servers (%s): use a "
                 "hash tag" % (what, names))


class ShardedSession(ProxySession):
    """A client of a sharded kvproxy: like ``ProxySession``, each command routed by key."""

    keyless = multikey.KEYLESS  # keyless commands' handlers (kvproxy --cluster adds SCAN's)

    def execute(self, argv: list):
        """Run one command on the shard of its keys (see the module's docstring)."""
        if not argv:
            return Error("ERR empty command")
        if not self.authenticated and argv[0].upper() not in NO_AUTH:
            return NOAUTH_ERROR
        if self._held is not None:  # behind a SELECT in flight
            return self._hold(argv)
        if self._queued is not None:  # inside MULTI
            return self._queue(argv)
        name = argv[0].upper()
        if self._pinned is not None:  # watching: on the client's own connection
            reply = self._pinned_execute(argv, name)
            if reply is not None:
                return reply
        proxy = self.proxy
        db = self.db
        if name == b"GET" and len(argv) == 2:
            shard = proxy.shard(argv[1])
            if shard is None:
                return proxy.no_server()
            return self.cached_get(shard, argv[1], db)
        split = multikey.SPLIT.get(name)
        if split is not None and len(argv) > 1:
            return split(proxy, argv, db)
        local = _LOCAL.get(name)
        if local is not None:
            return local(self, argv)
        keyless = self.keyless.get(name)
        if keyless is not None:
            return keyless(self, argv)
        if name in REFUSED or (name in STREAM_READS and blocks(argv)):
            return Error("ERR '%s' is not supported through kvproxy"
                         % (name.decode("ascii", "replace"),))
        server_wide = admin(name, argv)
        if server_wide and not proxy.allow_admin:
            return Error("ERR '%s' changes the backend for every client of kvproxy: "
                         "refused (start kvproxy with --allow-admin to forward it)"
                         % (server_wide,))
        keys = command_keys(name, argv)
        if keys:
            shard = proxy.route(keys)
            if shard.__class__ is Error:
                return shard
        elif server_wide or name in multikey.EVERY_SERVER:
            return multikey.every(self, argv)
        else:
            shard = proxy.first_live()
            if shard is None:
                return proxy.no_server()
        if name in READ_ONLY or name in STREAM_READS:
            return shard.forward(argv, db=db)
        extractor = WRITES.get(name)
        if extractor is not None:
            return shard.write(argv, scope(name, argv, db, extractor(argv)), db)
        if server_wide:
            return shard.write(argv, scope(name, argv, db, admin_keys(name, argv)), db)
        if name in CONTAINERS:
            return shard.forward(argv, db=db)
        return shard.forward(argv, checked=True, db=db)

    @staticmethod
    def cached_get(shard, key: bytes, db: int):
        """GET ``key`` through ``shard``'s cache."""
        return shard.get(key, db)

    def __init__(self, proxy, session_id: int, peer: str) -> None:
        ProxySession.__init__(self, proxy, session_id, peer)
        self.db = proxy.pool.redis_db  # nutcracker's redis_db: where its clients start


class ShardedStore(ProxyStore):
    """What ``KVFactory`` serves for a sharded kvproxy: sessions over the pool's shards.

    ``pool`` is the ``pool.Pool`` (its ``distribution`` places keys; ``auto_eject_hosts``,
    ``server_retry_timeout`` and ``server_failure_limit`` as nutcracker's); ``shards`` its
    ``Shard``s in the pool's server order.
    """

    session_class = ShardedSession

    def __init__(self, clock, cache, pool, shards, allow_admin: bool = False,
                 requirepass: bytes = b"") -> None:
        ProxyStore.__init__(self, clock, cache, None, None, allow_admin, requirepass)
        self.pool = pool
        self.distribution = pool.distribution
        self.shards = shards
        self.random = pool.distribution.distribution == "random"
        for shard in shards:
            shard.ring = self
        self._retry_calls = {}
        self.fragments = 0  # the parts of commands split over servers
        # key -> server index, for the keys placed lately (hashing in Python costs
        # microseconds a key); emptied when the distribution changes or it is full.
        self._placed = {}

    # -- routing -------------------------------------------------------------------

    def shard_index(self, key: bytes):
        """The index of ``key``'s server, or None when every server is ejected: O(1) for
        a key placed lately, else O(len(key)) plus O(log points) for ketama."""
        index = self._placed.get(key)
        if index is None:
            index = self.distribution.index(key)
            if index is not None and not self.random:
                placed = self._placed
                if len(placed) >= PLACED_LIMIT:
                    placed.clear()
                placed[key] = index
        return index

    def shard(self, key: bytes):
        """The Shard ``key`` lives on, or None when every server is ejected."""
        index = self.shard_index(key)
        return None if index is None else self.shards[index]

    def route(self, keys: list):
        """The one Shard all ``keys`` live on, or the Error a client gets (CROSSSLOT, or
        no server); O(total key length)."""
        index = self.shard_index
        first = index(keys[0])
        if first is None:
            return self.no_server()
        if self.random:
            return self.shards[first]  # a random pool places the command, not each key
        others = None
        for key in keys[1:]:
            where = index(key)
            if where != first:
                if others is None:
                    others = {first}
                others.add(where)
        if others is not None:
            return crossslot([self.shards[each] for each in sorted(others)])
        return self.shards[first]

    def live(self) -> list:
        """The shards keys may be placed on now (not ejected)."""
        return [shard for shard in self.shards if not shard.ejected]

    def first_live(self):
        """The first server of the pool that is not ejected (None: none)."""
        for shard in self.shards:
            if not shard.ejected:
                return shard
        return None

    def no_server(self) -> Error:
        return Error("ERR no server available: every server of pool %s is ejected"
                     % (self.pool.name,))

    # -- ejection (nutcracker's server_failure / server_pool_update) -----------------

    def failed_too_often(self, shard) -> None:
        """``shard`` failed ``server_failure_limit`` times in a row: with auto_eject_hosts
        its keys go to the other servers until ``server_retry_timeout`` has passed."""
        if not self.pool.auto_eject_hosts:
            return  # its keys keep failing, fast, while it is down
        shard.failures = 0
        shard.ejected = True
        shard.ejections += 1
        shard.retry_at = self.clock.seconds() + self.pool.server_retry_timeout
        log.warn("kvproxy: server {name} ejected after {count} failures; retried in "
                 "{retry:g} s", name=shard.label, count=self.pool.server_failure_limit,
                 retry=self.pool.server_retry_timeout)
        self._replace()
        self._retry_calls[shard.index] = self.clock.callLater(
            self.pool.server_retry_timeout, self._readmit, shard)

    def _readmit(self, shard) -> None:
        self._retry_calls.pop(shard.index, None)
        shard.ejected = False
        shard.failures = 0
        log.info("kvproxy: server {name} back in the pool", name=shard.label)
        self._replace()

    def _replace(self) -> None:
        # Keys moved between servers: what the cache holds for them came from another
        # server, so it is all dropped (O(entries)).
        self.distribution.update([shard.index for shard in self.shards if not shard.ejected])
        self._placed.clear()
        self.cache.invalidate_all()

    def stop(self) -> None:
        """Cancel the readmission timers (kvproxy is stopping)."""
        for call in self._retry_calls.values():
            if call.active():
                call.cancel()
        self._retry_calls.clear()

    # -- what ProxySession's shared handlers use ------------------------------------

    def forward(self, argv: list, checked: bool = False, db=None):
        """A client's SELECT: sent to every live server (``multikey.selected``)."""
        return multikey.broadcast(self, argv, db)

    def pin_target(self, keys):
        """The Shard a WATCH of ``keys`` pins its client to (or the error)."""
        return self.route(keys)

    def pinned_here(self, shard, keys) -> bool:
        """Whether every key of a watching client's command lives on its pinned server
        (a keyless command goes the usual way)."""
        return bool(keys) and self.route(keys) is shard

    def pin_crossslot(self, shards) -> Error:
        """The error for a watching client's keys on another server."""
        unique = []
        for shard in shards:
            if shard.__class__ is not Error and shard not in unique:
                unique.append(shard)
        return crossslot(sorted(unique, key=lambda shard: shard.index), "transaction")

    def transaction(self, commands: list, db: int):
        """Send a client's transaction to the server of its keys (or the first live one
        when it has none); a CROSSSLOT error when they live on several."""
        keys = []
        for argv in commands:
            keys.extend(command_keys(argv[0].upper(), argv))
        if keys:
            shard = self.route(keys)
            if shard.__class__ is Error:
                return Error(shard.message.replace("this command", "this transaction"))
        else:
            shard = self.first_live()
            if shard is None:
                return self.no_server()
        return send_transaction(shard, commands, db)

    # -- INFO ------------------------------------------------------------------------

    def info(self) -> bytes:
        """INFO text: the proxy and pool, a section per server, and the cache."""
        shards = self.shards
        total = sum
        lines = [
            "# Proxy",
            "kvproxy_version:%s" % (__version__,),
            "uptime_in_seconds:%d" % (self.clock.seconds() - self.started,),
            "connected_clients:%d" % (len(self.clients),),
            "requirepass:%s" % ("yes" if self.auth.required else "no",),
            "acl_access_denied_auth:%d" % (self.auth.denied,),
            "pool_name:%s" % (self.pool.name,),
            "pool_distribution:%s" % (self.distribution.distribution,),
            "pool_hash:%s" % (self.pool.hash,),
            "pool_hash_tag:%s" % (self.pool.hash_tag,),
            "pool_auto_eject_hosts:%s" % ("yes" if self.pool.auto_eject_hosts else "no",),
            "pool_servers:%d" % (len(shards),),
            "pool_live_servers:%d" % (len(self.live()),),
            "backend_forwarded:%d" % (total(shard.forwarded for shard in shards),),
            "backend_fetches:%d" % (total(shard.reads.fetches for shard in shards),),
            "backend_errors:%d" % (total(shard.backend_errors for shard in shards),),
            "stale_served:%d" % (total(shard.stale_served for shard in shards),),
            "fragments:%d" % (self.fragments,),
        ]
        for shard in shards:
            lines += shard_info(shard)
        lines += cache_info(self.cache.stats(), total(shard.reads.coalesced
                                                      for shard in shards))
        return ("\r\n".join(lines) + "\r\n").encode("utf-8")


def shard_info(shard) -> list:
    """INFO's section for one server (``# Server<n>``, keys prefixed ``server<n>_``)."""
    prefix = "server%d_" % (shard.index,)
    listener = shard.listener
    fields = [
        ("name", shard.label),
        ("address", shard.server.address),
        ("weight", shard.server.weight),
        ("status", shard.status),
        ("requests", shard.requests),
        ("errors", shard.errors),
        ("failures", shard.failures),
        ("ejections", shard.ejections),
        ("in_flight", shard.in_flight),
        ("bytes_in", shard.bytes_in),
        ("bytes_out", shard.bytes_out),
        ("retry_in", "%.3f" % (max(0.0, shard.retry_at - shard.clock.seconds())
                               if shard.ejected else 0.0)),
        ("cache_invalidation_link", listener.link if listener is not None else "off"),
        ("stale_served", shard.stale_served),
    ]
    return ["", "# Server%d" % (shard.index,)] + [
        "%s%s:%s" % (prefix, name, value) for name, value in fields]
