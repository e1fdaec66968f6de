"""kvproxy in front of a Redis Cluster (``--cluster ENDPOINT``, repeatable seeds).

``ClusterStore`` reads the slot map (``CLUSTER SLOTS``, else ``CLUSTER SHARDS``) from a
seed, then from the primaries; it keeps one ``ClusterNode`` per primary (a backend link
and an invalidation link each) and routes each key to the primary serving its slot
(``slotmap.key_slot``). The sessions (``proxy.clustersession``) use it as a sharded
kvproxy uses its pool: ``shard_index`` is a key's slot and ``shards[slot]`` that slot's
node, so the split commands (``proxy.multikey``) are split per slot, as Redis Cluster
needs them.

Redirections are followed on every request a node's link sends (``NodeLink``): a
``MOVED slot host:port`` reply moves the slot to that node in the map (then the whole map
is read again, once for a burst of them) and the request is sent again there; ``ASK slot
host:port`` sends ``ASKING`` and the request, back to back, on that node's link without
changing the map; ``TRYAGAIN`` (a multi-key request during a slot's migration) is sent
again after ``TRYAGAIN_DELAY``. A request follows at most ``MAX_REDIRECTS`` redirections
(and ``MAX_TRYAGAIN`` retries), then its client gets the reply as it is. Replies arrive in
order on a link and are sent again as they arrive, so requests redirected together keep
their order.

The cache is shared by the nodes. Each node's invalidation link (CLIENT TRACKING BCAST on
that primary) drops the keys it names; when a link goes down (and again when it is back)
only that node's keys are flushed (``NodeCache``); while any primary's link is down
nothing new is cached. When a map is read, the keys of every slot whose owner changed
(and of the slots MOVED moved since the last one) are dropped, in one pass over the cache.
"""

from __future__ import annotations

from twisted.application import service
from twisted.internet import defer
from twisted.logger import Logger

from kvtwist import __version__
from kvtwist.proxy import multikey
from kvtwist.proxy.clusternode import ClusterNode, NodeCache, NodeLink, SlotNodes
from kvtwist.proxy.clustersession import ClusterSession, send_block
from kvtwist.proxy.keys import command_keys
from kvtwist.proxy.slotmap import SlotMap, SlotMapError, ask_map, key_slot, redirection
from kvtwist.proxy.store import ProxyStore, cache_info
from kvtwist.wire.replies import Error

log = Logger()

MAX_TRYAGAIN = 40
TRYAGAIN_DELAY = 0.05
REFRESH_INTERVAL = 5.0  # seconds between slot map reads while nothing asks for one
RETRY_DELAY = 0.5  # seconds before a failed map read is tried again
CROSSSLOT = Error("CROSSSLOT Keys in request don't hash to the same slot")
NOT_SERVED = Error("CLUSTERDOWN Hash slot not served")
NO_MAP = Error("CLUSTERDOWN kvproxy has not read the cluster's slot map yet")


def _discard(result) -> None:
    return None


class ClusterService(service.MultiService):
    """The nodes' links (added and removed as the map changes); reads the map on start."""

    def __init__(self, store) -> None:
        service.MultiService.__init__(self)
        self.store = store

    def startService(self) -> None:
        service.MultiService.startService(self)
        self.store.start()

    def stopService(self):
        self.store.stop()
        return service.MultiService.stopService(self)


class ClusterStore(ProxyStore):
    """What ``KVFactory`` serves for ``kvproxy --cluster``: sessions over a cluster.

    ``seeds``: "host:port" of nodes to read the first map from. ``connect_node(address,
    cache)`` returns the (backend, invalidation listener or None) of a new primary, the
    listener dropping keys from ``cache`` (a ``NodeCache``); both are started as children
    of ``service``. ``open_seed(address)`` returns a Deferred of a connection (with
    ``request`` and ``close``) to a seed.
    """

    session_class = ClusterSession

    def __init__(self, clock, cache, seeds, connect_node, open_seed=None,
                 allow_admin: bool = False, requirepass: bytes = b"",
                 refresh_interval: float = REFRESH_INTERVAL) -> None:
        ProxyStore.__init__(self, clock, cache, None, None, allow_admin, requirepass)
        self.seeds = list(seeds)
        self.connect_node = connect_node
        self.open_seed = open_seed
        self.refresh_interval = refresh_interval
        self.service = ClusterService(self)
        self.nodes = {}  # address -> ClusterNode
        self.slotmap = None  # the SlotMap, once read
        self._primaries = []  # the addresses serving slots, sorted
        self.shards = SlotNodes(self)
        self.random = False
        self.fragments = 0
        self.moved = 0
        self.asked = 0
        self.retried = 0
        self.refreshes = 0
        self.refresh_errors = 0
        self.slots_invalidated = 0
        self._moved_slots = set()  # slots MOVED moved since the last map read
        # slot -> (its old owner's node, how many requests had been sent on its link)
        # when the slot moved: see ``owner``.
        self._barriers = {}
        self._refreshing = False
        self._again = False
        self._timer = None
        self._running = False

    # -- routing -------------------------------------------------------------------

    def shard_index(self, key: bytes):
        """``key``'s slot, or None when no node serves it (O(len(key)))."""
        slotmap = self.slotmap
        if slotmap is None:
            return None
        slot = key_slot(key)
        return slot if slotmap.owners[slot] is not None else None

    def owner(self, slot: int):
        """The node to send a request of ``slot`` to, or None: the map's owner, except
        while requests sent to the slot's previous owner before the slot moved are
        unanswered. Then it is that previous owner, which redirects it after them, so a
        request never overtakes one sent before it. O(1)."""
        barriers = self._barriers
        if barriers:
            barrier = barriers.get(slot)
            if barrier is not None:
                node, sent = barrier
                link = node.backend
                if link.answered < sent and self.nodes.get(node.address) is node:
                    return node
                del barriers[slot]
        owner = self.slotmap.owners[slot]
        return None if owner is None else self.nodes[owner]

    def _moving(self, slot: int, previous) -> None:
        """``slot`` leaves node address ``previous``: hold its requests behind those in
        flight there (``owner``)."""
        node = self.nodes.get(previous) if previous is not None else None
        if node is not None:
            link = node.backend
            if link.answered < link.sent:
                self._barriers[slot] = (node, link.sent)

    def shard(self, key: bytes):
        """The node serving ``key``, or None."""
        if self.slotmap is None:
            return None
        return self.owner(key_slot(key))

    def route(self, keys: list):
        """The node serving every one of ``keys`` (one slot), or the Error a client gets:
        CROSSSLOT, or no node. O(total key length)."""
        slot = key_slot(keys[0])
        for key in keys[1:]:
            if key_slot(key) != slot:
                return CROSSSLOT
        if self.slotmap is None:
            return NO_MAP
        node = self.owner(slot)
        return NOT_SERVED if node is None else node

    def live(self) -> list:
        """The nodes serving slots, in address order."""
        return [self.nodes[address] for address in self._primaries]

    def first_live(self):
        nodes = self.live()
        return nodes[0] if nodes else None

    def no_server(self) -> Error:
        return NO_MAP if self.slotmap is None else NOT_SERVED

    @property
    def caching(self) -> bool:
        """Whether every primary's invalidation link is up (or tracking is off)."""
        for node in self.nodes.values():
            listener = node.listener
            if listener is not None and not listener.caching:
                return False
        return self.slotmap is not None

    # -- nodes -----------------------------------------------------------------------

    def node(self, address: str) -> ClusterNode:
        """The node at ``address``, made (its links started) if it is new."""
        node = self.nodes.get(address)
        if node is not None:
            return node
        backend, listener = self.connect_node(address, NodeCache(self, address))
        node = ClusterNode(self.clock, self.cache, NodeLink(backend, self), listener,
                           address, self)
        self.nodes[address] = node
        for child in (listener, backend):
            if isinstance(child, service.Service):
                child.setServiceParent(self.service)
        return node

    def _forget(self, address: str) -> None:
        node = self.nodes.pop(address)
        for child in (node.listener, node.backend.inner):
            if isinstance(child, service.Service) and child.parent is not None:
                child.disownServiceParent()

    # -- redirections ------------------------------------------------------------------

    def follow(self, reply, argv, db, options, hops, tries, link):
        """A node's reply to ``argv``: a MOVED / ASK / TRYAGAIN is followed (see the
        module's docstring); any other reply is passed on. O(1) beyond sending again."""
        if reply.__class__ is not Error:
            return reply
        message = reply.message
        if message.startswith("TRYAGAIN"):
            if tries >= MAX_TRYAGAIN:
                return reply
            self.retried += 1
            d = defer.Deferred()
            self.clock.callLater(TRYAGAIN_DELAY, self._again_on, d, link, argv, db, options,
                                 hops, tries + 1)
            return d
        if message.startswith("CLUSTERDOWN"):
            self.schedule_refresh()
            return reply
        if hops <= 0 or not (message.startswith("MOVED ") or message.startswith("ASK ")):
            return reply
        found = redirection(message)
        if found is None:
            return reply
        kind, slot, address = found
        if kind == "MOVED":
            node = self.moved_to(slot, address)
            return node.backend.request(argv, db=db, hops=hops - 1, tries=tries, **options)
        self.asked += 1
        node = self.node(address)
        node.backend.inner.request([b"ASKING"], db=db).addBoth(_discard)
        return node.backend.request(argv, db=db, hops=hops - 1, tries=tries, **options)

    def moved_to(self, slot: int, address: str) -> ClusterNode:
        """A MOVED reply said ``address`` serves ``slot``: so the map says until it is
        read again (soon); return that node. O(1)."""
        self.moved += 1
        node = self.node(address)
        slotmap = self.slotmap
        if slotmap is not None and slotmap.owners[slot] != address:
            self._moving(slot, slotmap.owners[slot])
            slotmap.assign(slot, address)
            self._moved_slots.add(slot)
            if address not in self._primaries:
                self._primaries = sorted(self._primaries + [address])
        self.schedule_refresh()
        return node

    @staticmethod
    def _again_on(d, link, argv, db, options, hops, tries) -> None:
        link.request(argv, db=db, hops=hops, tries=tries, **options).chainDeferred(d)

    # -- the slot map ------------------------------------------------------------------

    def start(self) -> None:
        """Read the map (kvproxy is starting), then every ``refresh_interval``."""
        self._running = True
        self.refresh()

    def stop(self) -> None:
        """Stop reading the map (kvproxy is stopping)."""
        self._running = False
        if self._timer is not None and self._timer.active():
            self._timer.cancel()
        self._timer = None

    def schedule_refresh(self) -> None:
        """Read the map again soon (a MOVED, a CLUSTERDOWN, a node that failed): at once,
        or after the read in flight (one more for any number of calls meanwhile)."""
        self.refresh()

    def _later(self, delay: float) -> None:
        if not self._running:
            return
        if self._timer is not None and self._timer.active():
            self._timer.cancel()
        self._timer = self.clock.callLater(delay, self.refresh)

    def refresh(self) -> defer.Deferred:
        """Read the map from a primary whose link is up, else from the seeds in turn;
        the Deferred fires (with None) once it is installed or the read failed."""
        if self._refreshing or not self._running:
            self._again = self._refreshing
            return defer.succeed(None)
        self._refreshing = True
        self._again = False
        if self._timer is not None and self._timer.active():
            self._timer.cancel()
        self._timer = None
        sources = [node for node in self.live() if node.backend.state == "connected"]
        if sources:
            node = sources[0]
            d = ask_map(node.backend.inner.request, node.address.rpartition(":")[0])
            d.addErrback(lambda failure: self._from_seeds(list(self.seeds)))
        else:
            d = self._from_seeds(list(self.seeds))
        d.addCallbacks(self._read, self._unread)
        return d

    def _from_seeds(self, seeds: list) -> defer.Deferred:
        if not seeds or self.open_seed is None:
            return defer.fail(SlotMapError("no seed answered CLUSTER SLOTS"))
        address = seeds.pop(0)
        d = self.open_seed(address)
        d.addCallback(self._ask_seed, address)
        d.addErrback(lambda failure: self._from_seeds(seeds))
        return d

    @staticmethod
    def _ask_seed(client, address: str):
        d = ask_map(client.request, address.rpartition(":")[0])

        def close(result):
            client.close()
            return result
        return d.addBoth(close)

    def _read(self, ranges) -> None:
        self._refreshing = False
        self.refreshes += 1
        self.install(ranges)
        self._next()

    def _unread(self, failure) -> None:
        self._refreshing = False
        self.refresh_errors += 1
        log.warn("kvproxy: cannot read the cluster's slot map: {why}",
                 why=failure.getErrorMessage())
        if self._again:
            self._again = False
            self._later(RETRY_DELAY)
        else:
            self._later(RETRY_DELAY if self.slotmap is None else self.refresh_interval)

    def _next(self) -> None:
        if self._again:
            self._again = False
            self.refresh()
        else:
            self._later(self.refresh_interval)

    def install(self, ranges) -> None:
        """Make ``ranges`` ((first, last, primary address)) the map: nodes made for new
        primaries, those serving nothing any more stopped, and the cached keys of slots
        whose owner changed (or that MOVED moved since the last map) dropped. O(slots +
        cache entries when a slot changed)."""
        new = SlotMap(ranges)
        old = self.slotmap
        changed = self._moved_slots
        self._moved_slots = set()
        if old is not None:
            moving = old.changed(new)
            for slot in moving:
                self._moving(slot, old.owners[slot])
            changed |= moving
        primaries = new.primaries()
        for address in primaries:
            self.node(address)
        self.slotmap = new
        self._primaries = primaries
        for address in list(self.nodes):
            if address not in primaries:
                self._forget(address)
        if changed:
            self.slots_invalidated += len(changed)
            self.drop_keys(lambda key: key_slot(key) in changed)

    def drop_keys(self, wanted) -> int:
        """Drop the cached keys (and void the fetches) for which ``wanted(key)``; return
        how many entries were dropped. O(entries + fetches in flight)."""
        cache = self.cache
        names = [name for name in list(cache._entries) + list(cache._pending)
                 if wanted(name[1] if name.__class__ is tuple else name)]
        dropped = 0
        for name in names:
            if name.__class__ is tuple:
                dropped += cache.invalidate(name[1], name[0])
            else:
                dropped += cache.invalidate(name, 0)
        return dropped

    def flush_node(self, address: str) -> int:
        """Drop the cached keys of the slots ``address`` serves (and of those MOVED moved
        since the last map): its invalidation link went down or came back. O(entries)."""
        slotmap = self.slotmap
        if slotmap is None:
            return self.cache.invalidate_all()
        owners = slotmap.owners
        moved = self._moved_slots

        def wanted(key):
            slot = key_slot(key)
            return owners[slot] == address or slot in moved
        self.cache.flushes += 1
        return self.drop_keys(wanted)

    # -- what ProxySession's shared handlers use ------------------------------------

    def forward(self, argv: list, checked: bool = False, db=None):
        """A client's SELECT: sent to every primary (a cluster refuses all but 0)."""
        return multikey.broadcast(self, argv, db)

    def pin_target(self, keys):
        """The node a WATCH of ``keys`` pins its client to (or the error)."""
        return self.route(keys)

    def pinned_here(self, node, keys) -> bool:
        return bool(keys) and self.route(keys) is node

    def pin_crossslot(self, nodes) -> Error:
        return CROSSSLOT

    def transaction(self, commands: list, db: int):
        """MULTI ... EXEC on the node of the transaction's keys (one slot; CROSSSLOT
        otherwise), redirections followed (``clustersession.send_block``)."""
        keys = []
        for argv in commands:
            keys.extend(command_keys(argv[0].upper(), argv))
        if keys:
            node = self.route(keys)
            if node.__class__ is Error:
                return node
        else:
            node = self.first_live()
            if node is None:
                return self.no_server()
        return send_block(self, node, commands, db)

    # -- INFO ------------------------------------------------------------------------

    def info(self) -> bytes:
        """INFO text: the proxy and cluster, a section per primary, and the cache."""
        nodes = self.live()
        slotmap = self.slotmap
        covered = slotmap.covered() if slotmap is not None else 0
        total = sum
        lines = [
            "# Proxy",
            "kvproxy_version:%s" % (__version__,),
            "uptime_in_seconds:%d" % (self.clock.seconds() - self.started,),
            "connected_clients:%d" % (len(self.clients),),
            "requirepass:%s" % ("yes" if self.auth.required else "no",),
            "acl_access_denied_auth:%d" % (self.auth.denied,),
            "cluster_seeds:%s" % (",".join(self.seeds),),
            "cluster_state:%s" % ("ok" if covered == 16384 else "fail",),
            "cluster_slots_covered:%d" % (covered,),
            "cluster_primaries:%d" % (len(nodes),),
            "cluster_map_refreshes:%d" % (self.refreshes,),
            "cluster_map_errors:%d" % (self.refresh_errors,),
            "cluster_moved:%d" % (self.moved,),
            "cluster_ask:%d" % (self.asked,),
            "cluster_tryagain:%d" % (self.retried,),
            "cluster_slots_invalidated:%d" % (self.slots_invalidated,),
            "backend_forwarded:%d" % (total(node.forwarded for node in nodes),),
            "backend_fetches:%d" % (total(node.reads.fetches for node in nodes),),
            "backend_errors:%d" % (total(node.backend_errors for node in nodes),),
            "fragments:%d" % (self.fragments,),
        ]
        counts = {}
        if slotmap is not None:
            for owner in slotmap.owners:
                counts[owner] = counts.get(owner, 0) + 1
        for index, node in enumerate(nodes):
            listener = node.listener
            prefix = "node%d_" % (index,)
            lines += ["", "# Node%d" % (index,)] + [prefix + line for line in [
                "address:%s" % (node.address,),
                "status:%s" % ("up" if node.backend.state == "connected"
                               else node.backend.state,),
                "slots:%d" % (counts.get(node.address, 0),),
                "forwarded:%d" % (node.forwarded,),
                "fetches:%d" % (node.reads.fetches,),
                "errors:%d" % (node.backend_errors,),
                "cache_invalidation_link:%s" % (listener.link if listener is not None
                                                else "off",),
                "invalidation_messages:%d" % (getattr(listener, "messages", 0),),
            ]]
        lines += cache_info(self.cache.stats(), total(node.reads.coalesced for node in nodes))
        return ("\r\n".join(lines) + "\r\n").encode("utf-8")
