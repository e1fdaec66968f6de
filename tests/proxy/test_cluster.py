"""Tests for kvtwist.proxy.cluster with fake nodes: routing by slot, redirections (MOVED,
ASK, TRYAGAIN), reading the slot map, and what the cache drops when slots move or a
node's invalidation link goes down."""

from __future__ import annotations

from twisted.internet.defer import succeed
from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from kvtwist.proxy.cache import Cache
from kvtwist.proxy.cluster import TRYAGAIN_DELAY, ClusterStore
from kvtwist.proxy.clusternode import MAX_REDIRECTS
from kvtwist.proxy.slotmap import key_slot
from kvtwist.wire.replies import OK, Error
from tests.proxy.fakes import FakeBackend, result_of

RANGES = [(0, 5460, "a:1"), (5461, 10922, "b:2"), (10923, 16383, "c:3")]
SLOTS_REPLY = [[first, last, [address.split(":")[0].encode(), int(address.split(":")[1])]]
               for first, last, address in RANGES]


class NodeListener:
    """A fake invalidation link of one node."""

    state = "on"
    link = "up"
    messages = 0

    def __init__(self, cache) -> None:
        self.cache = cache  # the node's NodeCache
        self.caching = True


class SeedClient:
    """A fake seed connection answering CLUSTER SLOTS (or refusing it)."""

    def __init__(self, slots, shards=None) -> None:
        self.slots = slots
        self.shards = shards
        self.sent = []
        self.closed = False

    def request(self, argv, **options):
        self.sent.append(list(argv))
        return succeed(self.slots if argv[1] == b"SLOTS" else self.shards)

    def close(self) -> None:
        self.closed = True


def owner_of(key: bytes) -> str:
    slot = key_slot(key)
    for first, last, address in RANGES:
        if first <= slot <= last:
            return address
    raise AssertionError(slot)


def key_on(address: str, prefix: bytes = b"k", avoid=()) -> bytes:
    """A key whose slot the RANGES map gives ``address``."""
    for number in range(10000):
        key = b"%s%d" % (prefix, number)
        if owner_of(key) == address and key_slot(key) not in avoid:
            return key
    raise AssertionError(address)


class ClusterCase(SynchronousTestCase):
    """A ClusterStore over fake nodes on a Clock, its map read from a fake seed."""

    seed_reply = SLOTS_REPLY

    def setUp(self) -> None:
        self.clock = Clock()
        self.cache = Cache(self.clock)
        self.addCleanup(self.cache.stop)
        self.backends = {}
        self.listeners = {}
        self.seeds = []

        def connect_node(address, node_cache):
            backend = self.backends[address] = FakeBackend()
            backend.address = address
            listener = self.listeners[address] = NodeListener(node_cache)
            return backend, listener

        def open_seed(address):
            client = SeedClient(self.seed_reply)
            self.seeds.append((address, client))
            return succeed(client)

        self.proxy = ClusterStore(self.clock, self.cache, ["s:1", "s:2"], connect_node,
                                  open_seed)
        self.proxy.start()
        self.addCleanup(self.proxy.stop)
        self.session = self.proxy.new_session("peer")

    def sent(self, address: str) -> list:
        return [argv for argv, d in self.backends[address].sent]

    def answer_last(self, address: str, reply) -> None:
        backend = self.backends[address]
        backend.answer(len(backend.sent) - 1, reply)


class MapTests(ClusterCase):
    """The slot map is read from a seed at start, then from the primaries."""

    def test_read_from_seed(self) -> None:
        """CLUSTER SLOTS on the first seed gives three primaries; the seed is closed."""
        self.assertEqual(sorted(self.proxy.nodes), ["a:1", "b:2", "c:3"])
        self.assertEqual(self.seeds[0][0], "s:1")
        self.assertTrue(self.seeds[0][1].closed)
        self.assertEqual(self.proxy.slotmap.covered(), 16384)
        self.assertIn(b"cluster_state:ok\r\n", self.session.execute([b"INFO"]))

    def test_refresh_from_a_primary(self) -> None:
        """After the first map, the next is asked of a primary over its link."""
        self.clock.advance(self.proxy.refresh_interval)
        self.assertEqual(self.sent("a:1"), [[b"CLUSTER", b"SLOTS"]])
        self.answer_last("a:1", SLOTS_REPLY)
        self.assertEqual(self.proxy.refreshes, 2)

    def test_no_read_once_stopped(self) -> None:
        """Once kvproxy is stopping, a MOVED reads no map."""
        self.proxy.stop()
        self.proxy.moved_to(0, "b:2")
        self.assertEqual(self.sent("a:1"), [])
        self.assertEqual(self.proxy.slotmap.owner(0), "b:2")

    def test_shards_when_slots_refused(self) -> None:
        """A node refusing CLUSTER SLOTS is asked CLUSTER SHARDS."""
        self.clock.advance(self.proxy.refresh_interval)
        self.answer_last("a:1", Error("ERR unknown subcommand 'SLOTS'"))
        self.assertEqual(self.sent("a:1")[-1], [b"CLUSTER", b"SHARDS"])
        self.answer_last("a:1", [[b"slots", [0, 16383], b"nodes", [
            [b"id", b"x", b"port", 2, b"ip", b"b", b"role", b"master"]]]])
        self.assertEqual(self.proxy.slotmap.primaries(), ["b:2"])
        self.assertEqual(sorted(self.proxy.nodes), ["b:2"])  # the others were dropped

    def test_next_seed(self) -> None:
        """A seed that cannot be reached is skipped for the next."""
        proxy = ClusterStore(self.clock, self.cache, ["x:1", "y:2"],
                             lambda address, cache: (FakeBackend(), None),
                             lambda address: (succeed(SeedClient(SLOTS_REPLY))
                                              if address == "y:2" else _failed()))
        proxy.start()
        self.addCleanup(proxy.stop)
        self.assertEqual(proxy.slotmap.covered(), 16384)

    def test_no_map_yet(self) -> None:
        """Before a map is read, keyed commands fail with CLUSTERDOWN."""
        proxy = ClusterStore(self.clock, self.cache, ["x:1"],
                             lambda address, cache: (FakeBackend(), None),
                             lambda address: _failed())
        proxy.start()
        self.addCleanup(proxy.stop)
        session = proxy.new_session("p")
        reply = session.execute([b"GET", b"k"])
        self.assertTrue(reply.message.startswith("CLUSTERDOWN"))
        self.assertEqual(proxy.refresh_errors, 1)


def _failed():
    from twisted.internet.defer import fail
    return fail(ValueError("refused"))


class RedirectTests(ClusterCase):
    """MOVED, ASK and TRYAGAIN are followed, the client seeing the final reply."""

    def test_moved(self) -> None:
        """MOVED sends the request again to the node it names, moves the slot in the map
        and reads the map again."""
        key = key_on("a:1")
        slot = key_slot(key)
        d = self.session.execute([b"SET", key, b"v"])
        self.answer_last("a:1", Error("MOVED %d b:2" % (slot,)))
        self.assertEqual(self.sent("b:2"), [[b"SET", key, b"v"]])
        self.assertEqual(self.proxy.slotmap.owner(slot), "b:2")
        self.assertEqual(self.sent("a:1")[-1], [b"CLUSTER", b"SLOTS"])  # the map again
        self.answer_last("b:2", OK)
        self.assertEqual(result_of(d), OK)
        self.assertEqual(self.proxy.moved, 1)

    def test_moved_to_a_new_node(self) -> None:
        """A MOVED naming an unknown node makes a link to it."""
        key = key_on("a:1")
        d = self.session.execute([b"GET", key])
        self.clock.advance(0)
        self.answer_last("a:1", Error("MOVED %d d:4" % (key_slot(key),)))
        self.assertEqual(self.sent("d:4"), [[b"GET", key]])
        self.answer_last("d:4", b"v")
        self.assertEqual(result_of(d), b"v")

    def test_ask(self) -> None:
        """ASK sends ASKING then the request to the node it names; the map is kept."""
        key = key_on("a:1")
        slot = key_slot(key)
        d = self.session.execute([b"SET", key, b"v"])
        self.answer_last("a:1", Error("ASK %d c:3" % (slot,)))
        self.assertEqual(self.sent("c:3"), [[b"ASKING"], [b"SET", key, b"v"]])
        self.backends["c:3"].answer(0, OK)
        self.answer_last("c:3", OK)
        self.assertEqual(result_of(d), OK)
        self.assertEqual(self.proxy.slotmap.owner(slot), "a:1")
        self.assertEqual(self.proxy.asked, 1)

    def test_tryagain(self) -> None:
        """TRYAGAIN sends the request again to the same node after a short delay."""
        d = self.session.execute([b"EXISTS", b"{t}a", b"{t}b"])
        node = owner_of(b"t")
        self.answer_last(node, Error("TRYAGAIN Multiple keys request during rehashing of slot"))
        self.assertEqual(len(self.sent(node)), 1)
        self.clock.advance(TRYAGAIN_DELAY)
        self.assertEqual(self.sent(node)[-1], [b"EXISTS", b"{t}a", b"{t}b"])
        self.answer_last(node, 2)
        self.assertEqual(result_of(d), 2)

    def test_redirect_limit(self) -> None:
        """After MAX_REDIRECTS redirections the client gets the last one as it is."""
        key = key_on("a:1")
        d = self.session.execute([b"SET", key, b"v"])
        node = "a:1"
        for _hop in range(MAX_REDIRECTS + 1):
            target = "b:2" if node == "a:1" else "a:1"
            last = Error("ASK %d %s" % (key_slot(key), target))
            self.answer_last(node, last)
            node = target
        self.assertEqual(result_of(d), last)


class CacheTests(ClusterCase):
    """What the shared cache drops when slots move and when a node's link goes down."""

    def fill(self, key: bytes, value: bytes) -> None:
        d = self.session.execute([b"GET", key])
        self.clock.advance(0)
        self.answer_last(owner_of(key), value)
        self.assertEqual(result_of(d), value)
        self.assertEqual(self.session.execute([b"GET", key]), value)  # cached

    def test_slot_moved_on_refresh(self) -> None:
        """A map in which a slot changed owner drops that slot's cached keys only."""
        moving = key_on("a:1")
        staying = key_on("a:1", avoid=(key_slot(moving),))
        self.fill(moving, b"1")
        self.fill(staying, b"2")
        slot = key_slot(moving)
        ranges = [(0, slot - 1, "a:1"), (slot, slot, "b:2"), (slot + 1, 5460, "a:1")]
        ranges = [r for r in ranges if r[0] <= r[1]] + RANGES[1:]
        self.proxy.install(ranges)
        self.assertNotIn(moving, self.cache)
        self.assertIn(staying, self.cache)
        self.assertEqual(self.proxy.slots_invalidated, 1)

    def test_slot_moved_by_moved(self) -> None:
        """A slot MOVED moved has its keys dropped when the map is next read, even if the
        map agrees with the MOVED."""
        key = key_on("a:1")
        other = key_on("a:1", avoid=(key_slot(key),))
        self.fill(key, b"1")
        self.fill(other, b"2")
        self.proxy.moved_to(key_slot(key), "b:2")
        ranges = [(first, last, owner) for first, last, owner in
                  self.proxy.slotmap.ranges()]
        self.answer_last("a:1", [[first, last, [owner.split(":")[0].encode(),
                                                int(owner.split(":")[1])]]
                                 for first, last, owner in ranges])
        self.assertNotIn(key, self.cache)
        self.assertIn(other, self.cache)

    def test_link_down_flushes_its_node(self) -> None:
        """A node's link going down drops that node's keys only, and nothing is cached
        while it is down."""
        on_a, on_b = key_on("a:1"), key_on("b:2")
        self.fill(on_a, b"1")
        self.fill(on_b, b"2")
        listener = self.listeners["a:1"]
        listener.caching = False
        listener.cache.invalidate_all()
        self.assertNotIn(on_a, self.cache)
        self.assertIn(on_b, self.cache)
        self.assertFalse(self.proxy.caching)
        d = self.session.execute([b"GET", on_a])
        self.answer_last("a:1", b"1")
        self.assertEqual(result_of(d), b"1")
        self.assertNotIn(on_a, self.cache)

    def test_invalidation_message(self) -> None:
        """A key a node's link names is dropped."""
        key = key_on("c:3")
        self.fill(key, b"1")
        self.listeners["c:3"].cache.invalidate(key)
        self.assertNotIn(key, self.cache)

    def test_write_through_redirect(self) -> None:
        """A write answered MOVED drops its key when sent and when finally answered."""
        key = key_on("a:1")
        self.fill(key, b"1")
        d = self.session.execute([b"SET", key, b"2"])
        self.assertNotIn(key, self.cache)
        self.answer_last("a:1", Error("MOVED %d b:2" % (key_slot(key),)))
        self.answer_last("b:2", OK)
        self.assertEqual(result_of(d), OK)
        d = self.session.execute([b"GET", key])
        self.clock.advance(0)
        self.assertEqual(self.sent("b:2")[-1], [b"GET", key])


class OrderTests(ClusterCase):
    """Requests of a slot whose owner changed do not overtake those sent before."""

    def test_moved_keeps_order(self) -> None:
        """While requests sent to the old owner before a MOVED are unanswered, later ones
        of that slot go there too (to be redirected after them); then to the new owner."""
        key = key_on("a:1")
        slot = key_slot(key)
        first = self.session.execute([b"SET", key, b"1"])
        self.proxy.moved_to(slot, "b:2")  # another request's MOVED moved the slot
        second = self.session.execute([b"GET", key])
        self.clock.advance(0)
        sent = self.sent("a:1")
        self.assertEqual([argv for argv in sent if argv[0] != b"CLUSTER"],
                         [[b"SET", key, b"1"], [b"GET", key]])
        self.assertEqual(self.sent("b:2"), [])
        backend = self.backends["a:1"]
        backend.answer(0, Error("MOVED %d b:2" % (slot,)))
        backend.answer(sent.index([b"GET", key]), Error("MOVED %d b:2" % (slot,)))
        self.assertEqual(self.sent("b:2"), [[b"SET", key, b"1"], [b"GET", key]])
        self.backends["b:2"].answer(0, OK)
        self.backends["b:2"].answer(1, b"1")
        self.assertEqual((result_of(first), result_of(second)), (OK, b"1"))
        third = self.session.execute([b"SET", key, b"3"])
        self.assertEqual(self.sent("b:2")[-1], [b"SET", key, b"3"])
        self.answer_last("b:2", OK)
        self.assertEqual(result_of(third), OK)

    def test_new_map_keeps_order(self) -> None:
        """A map moving a slot with requests in flight on its old owner waits the same
        way."""
        key = key_on("a:1")
        slot = key_slot(key)
        self.session.execute([b"SET", key, b"1"])
        ranges = [(0, slot, "c:3"), (slot + 1, 5460, "a:1")] + RANGES[1:]
        self.proxy.install([r for r in ranges if r[0] <= r[1]])
        self.session.execute([b"INCR", key])
        self.assertEqual(self.sent("a:1")[-1], [b"INCR", key])
        self.assertEqual(self.sent("c:3"), [])
        self.backends["a:1"].answer(0, OK)
        self.backends["a:1"].answer(1, Error("MOVED %d c:3" % (slot,)))
        self.assertEqual(self.sent("c:3"), [[b"INCR", key]])
        self.session.execute([b"GET", key])
        self.clock.advance(0)
        self.assertEqual(self.sent("c:3")[-1], [b"GET", key])
