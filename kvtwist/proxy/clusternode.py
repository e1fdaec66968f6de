"""The parts of ``kvproxy --cluster`` that stand for one primary: its link following
the cluster's redirections (``NodeLink``), the cache as its invalidation link sees it
(``NodeCache``), its reads (one MGET per slot), and the node itself (``ClusterNode``).
"""

from __future__ import annotations

from kvtwist.proxy.reads import Reads
from kvtwist.proxy.slotmap import key_slot
from kvtwist.proxy.store import ProxyStore
from kvtwist.wire.replies import Error

MAX_REDIRECTS = 5  # redirections one request follows at most


class NodeLink:
    """A node's backend link (``inner``: a ``Backend``, or a test's fake) whose requests
    follow the cluster's redirections (see the module's docstring); every other
    attribute is the inner link's."""

    # Not the inner link's: every request must follow redirections (``link.fetcher``
    # sends through ``request`` then).
    fetch = None

    def __init__(self, inner, cluster) -> None:
        self.inner = inner
        self.cluster = cluster
        self.sent = 0  # requests sent on the link, and those answered (or failed)
        self.answered = 0

    def request(self, argv: list, db=None, hops: int = MAX_REDIRECTS, tries: int = 0,
                **options):
        """Send ``argv`` (as ``Backend.request``); the Deferred delivers the reply of the
        node that finally answered it. O(1) beyond the inner request."""
        self.sent += 1
        d = self.inner.request(argv, db=db, **options)
        d.addBoth(self._answered)
        return d.addCallback(self.cluster.follow, argv, db, options, hops, tries, self)

    def _answered(self, result):
        self.answered += 1
        return result

    def __getattr__(self, name):
        return getattr(self.inner, name)


class NodeCache:
    """The shared cache as one node's invalidation link sees it: a key it names is
    dropped; a flush (its link down or back up, or a FLUSHALL on it) drops only the keys
    of the slots that node serves."""

    def __init__(self, cluster, address: str) -> None:
        self.cluster = cluster
        self.address = address

    def invalidate(self, key: bytes, db=None) -> bool:
        return self.cluster.cache.invalidate(key, db)

    def invalidate_all(self) -> int:
        return self.cluster.flush_node(self.address)

    def __getattr__(self, name):
        return getattr(self.cluster.cache, name)


class ClusterReads(Reads):
    """A node's reads: the misses of a turn are fetched with one GET each or, from a
    strings-only node, one MGET per slot (a cluster refuses an MGET over several), O(batch)."""

    def _send_group(self, batch, db: int) -> None:
        if len(batch) > 1 and self.backend.strings_only:
            groups = {}
            for placeholder in batch:
                groups.setdefault(key_slot(placeholder.key), []).append(placeholder)
            if len(groups) > 1:
                for group in groups.values():
                    Reads._send_group(self, group, db)
                return
        Reads._send_group(self, batch, db)


class ClusterNode(ProxyStore):
    """One primary of the cluster (``address``: "host:port"): its link, its reads, its
    invalidation link; it serves no clients itself."""

    def __init__(self, clock, cache, backend, listener, address: str, cluster) -> None:
        ProxyStore.__init__(self, clock, cache, backend, listener)
        self.reads = ClusterReads(self)
        self.address = address
        self.label = address
        self.cluster = cluster
        self.ejected = False  # never: the cluster moves slots, not kvproxy

    @property
    def caching(self) -> bool:
        """Whether fetched values may be cached: every primary's link is up."""
        return self.cluster.caching

    def failed(self, failure) -> Error:
        """The error for a request this node did not answer (naming it); the map is read
        again (the node may have failed over)."""
        self.cluster.schedule_refresh()
        error = ProxyStore.failed(self, failure)
        return Error("ERR node %s: %s" % (self.address, error.message[4:]))


class SlotNodes:
    """``shards`` for ``proxy.multikey``: slot -> the node serving it."""

    def __init__(self, cluster) -> None:
        self.cluster = cluster

    def __getitem__(self, slot: int):
        return self.cluster.owner(slot)
