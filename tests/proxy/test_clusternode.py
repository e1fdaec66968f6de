"""Tests for kvtwist.proxy.clusternode with fake nodes: a node's link (redirections
followed, requests counted), its cache view, its per-slot reads, its errors."""

from __future__ import annotations

from twisted.python.failure import Failure

from kvtwist.proxy.slotmap import key_slot
from kvtwist.proxy.store import BackendUnavailable
from kvtwist.wire.replies import Error
from tests.proxy.fakes import result_of
from tests.proxy.test_cluster import ClusterCase, key_on


class NodeLinkTests(ClusterCase):
    """A node's link counts its requests and hands back the final reply."""

    def test_counts(self) -> None:
        """sent and answered count the link's requests (a failure is answered too)."""
        link = self.proxy.nodes["a:1"].backend
        first = link.request([b"PING"])
        second = link.request([b"PING"])
        self.assertEqual((link.sent, link.answered), (2, 0))
        self.backends["a:1"].answer(0, b"PONG")
        self.backends["a:1"].fail(1, BackendUnavailable("gone"))
        self.assertEqual((link.sent, link.answered), (2, 2))
        self.assertEqual(result_of(first), b"PONG")
        self.assertIsInstance(result_of(second), Failure)

    def test_attributes_of_the_inner_link(self) -> None:
        """Other attributes are the inner link's (its state, its address)."""
        link = self.proxy.nodes["b:2"].backend
        self.assertEqual((link.state, link.address), ("connected", "b:2"))


class NodeTests(ClusterCase):
    """A node's errors name it; its reads fetch one MGET per slot."""

    def test_failure_names_the_node_and_reads_the_map(self) -> None:
        """A request the node did not answer gets an error naming it, and the map is
        read again."""
        key = key_on("c:3")
        d = self.session.execute([b"SET", key, b"v"])
        before = len(self.sent("a:1"))
        self.backends["c:3"].fail(0, BackendUnavailable("cannot connect to c:3"))
        reply = result_of(d)
        self.assertEqual(reply, Error("ERR node c:3: backend unavailable: cannot connect "
                                      "to c:3"))
        self.assertEqual(self.sent("a:1")[before:], [[b"CLUSTER", b"SLOTS"]])

    def test_cache_view(self) -> None:
        """A node's cache view drops a named key, and flushes only that node's slots."""
        on_a, on_b = key_on("a:1"), key_on("b:2")
        self.cache.put(on_a, b"1")
        self.cache.put(on_b, b"2")
        view = self.listeners["b:2"].cache
        self.assertEqual(view.invalidate_all(), 1)
        self.assertIn(on_a, self.cache)
        self.assertNotIn(on_b, self.cache)
        view.invalidate(on_a)
        self.assertNotIn(on_a, self.cache)
        self.assertIs(view.ttl, self.cache.ttl)  # the rest is the cache's

    def test_one_get_per_miss(self) -> None:
        """Misses of one turn go as one GET each, whatever their slots."""
        key = key_on("a:1")
        tagged = [b"{%s}%d" % (key, number) for number in range(3)]
        other = key_on("a:1", avoid=(key_slot(key),))
        replies = [self.session.execute([b"GET", name]) for name in tagged + [other]]
        self.clock.advance(0)
        self.assertEqual(sorted(self.sent("a:1")),
                         sorted([[b"GET", name] for name in tagged + [other]]))
        backend = self.backends["a:1"]
        for index, (argv, _) in enumerate(backend.sent):
            backend.answer(index, b"v-" + argv[1])
        self.assertEqual([result_of(reply) for reply in replies],
                         [b"v-" + name for name in tagged + [other]])

    def test_one_mget_per_slot(self) -> None:
        """From a strings-only node, misses of one turn in one slot share an MGET; another
        slot gets its own."""
        self.backends["a:1"].strings_only = True
        key = key_on("a:1")
        tagged = [b"{%s}%d" % (key, number) for number in range(3)]
        other = key_on("a:1", avoid=(key_slot(key),))
        replies = [self.session.execute([b"GET", name]) for name in tagged + [other]]
        self.clock.advance(0)
        self.assertEqual(sorted(self.sent("a:1")), sorted([[b"MGET"] + tagged,
                                                           [b"GET", other]]))
        backend = self.backends["a:1"]
        for index, (argv, _) in enumerate(backend.sent):
            backend.answer(index, [b"x"] * 3 if argv[0] == b"MGET" else b"y")
        self.assertEqual([result_of(reply) for reply in replies], [b"x", b"x", b"x", b"y"])
