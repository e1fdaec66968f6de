"""Tests for kvtwist.proxy.clustersession with fake nodes: each command routed by its keys'
slot, the split commands split per slot, CROSSSLOT, transactions, keyless commands."""

from __future__ import annotations

from kvtwist.proxy.slotmap import key_slot
from kvtwist.wire.replies import OK, Error
from tests.proxy.fakes import result_of
from tests.proxy.test_cluster import ClusterCase, key_on, owner_of


class RoutingTests(ClusterCase):
    """Each command goes to the primary of its keys' slot."""

    def test_get_and_set(self) -> None:
        """SET and GET of a key reach its primary only; the GET is cached after."""
        key = key_on("b:2")
        d = self.session.execute([b"SET", key, b"v"])
        self.assertEqual(self.sent("b:2"), [[b"SET", key, b"v"]])
        self.answer_last("b:2", OK)
        self.assertEqual(result_of(d), OK)
        d = self.session.execute([b"GET", key])
        self.clock.advance(0)
        self.answer_last("b:2", b"v")
        self.assertEqual(result_of(d), b"v")
        self.assertEqual(self.session.execute([b"GET", key]), b"v")
        self.assertEqual(self.sent("a:1") + self.sent("c:3"), [])

    def test_mget_split_per_slot(self) -> None:
        """MGET is split per slot (two keys of one node in two slots: two requests) and
        merged back in the client's order."""
        first = key_on("a:1")
        second = key_on("a:1", avoid=(key_slot(first),))
        third = key_on("c:3")
        d = self.session.execute([b"MGET", first, third, second])
        self.assertEqual(sorted(self.sent("a:1")), sorted([[b"MGET", first],
                                                           [b"MGET", second]]))
        self.assertEqual(self.sent("c:3"), [[b"MGET", third]])
        for index, (argv, _) in enumerate(self.backends["a:1"].sent):
            self.backends["a:1"].answer(index, [b"v-" + argv[1]])
        self.answer_last("c:3", [None])
        self.assertEqual(result_of(d), [b"v-" + first, None, b"v-" + second])

    def test_batched_misses_per_slot(self) -> None:
        """GET misses of one turn on a strings-only node are fetched with one MGET per slot."""
        self.backends["a:1"].strings_only = True
        first = key_on("a:1")
        same = key_on("a:1", b"{%s}" % (first,))
        other = key_on("a:1", avoid=(key_slot(first),))
        for key in (first, same, other):
            self.session.execute([b"GET", key])
        self.clock.advance(0)
        self.assertEqual(sorted(self.sent("a:1")), sorted([[b"MGET", first, same],
                                                           [b"GET", other]]))

    def test_crossslot(self) -> None:
        """A multi-key command over two slots is refused with Redis's CROSSSLOT error; a
        hash tag keeps the keys in one slot."""
        reply = self.session.execute([b"RENAME", b"a", b"b"])
        self.assertEqual(reply, Error("CROSSSLOT Keys in request don't hash to the same slot"))
        self.session.execute([b"RENAME", b"{t}a", b"{t}b"])
        self.assertEqual(self.sent(owner_of(b"t")), [[b"RENAME", b"{t}a", b"{t}b"]])

    def test_transaction(self) -> None:
        """MULTI ... EXEC goes to the primary of its keys; keys in two slots: CROSSSLOT."""
        for argv in ([b"MULTI"], [b"SET", b"{t}a", b"1"], [b"INCR", b"{t}b"]):
            self.session.execute(argv)
        d = self.session.execute([b"EXEC"])
        node = owner_of(b"t")
        self.assertEqual(self.sent(node), [[b"MULTI"], [b"SET", b"{t}a", b"1"],
                                           [b"INCR", b"{t}b"], [b"EXEC"]])
        self.backends[node].answer(3, [OK, 1])
        self.assertEqual(result_of(d), [OK, 1])
        for argv in ([b"MULTI"], [b"SET", b"a", b"1"], [b"SET", b"b", b"1"]):
            self.session.execute(argv)
        self.assertEqual(self.session.execute([b"EXEC"]),
                         Error("CROSSSLOT Keys in request don't hash to the same slot"))

    def test_keyless(self) -> None:
        """DBSIZE is summed over the primaries; SCAN walks them in address order."""
        d = self.session.execute([b"DBSIZE"])
        for address, count in (("a:1", 1), ("b:2", 2), ("c:3", 3)):
            self.answer_last(address, count)
        self.assertEqual(result_of(d), 6)
        d = self.session.execute([b"SCAN", b"0"])
        self.assertEqual(self.sent("a:1")[-1], [b"SCAN", b"0"])
        self.answer_last("a:1", [b"0", [b"x"]])
        self.assertEqual(result_of(d), [b"1", [b"x"]])
        d = self.session.execute([b"SCAN", b"1"])
        self.assertEqual(self.sent("b:2")[-1], [b"SCAN", b"0"])
        self.answer_last("b:2", [b"7", [b"y"]])
        self.assertEqual(result_of(d), [b"22", [b"y"]])  # 7 x 3 + 1
        d = self.session.execute([b"SCAN", b"22"])
        self.assertEqual(self.sent("b:2")[-1], [b"SCAN", b"7"])

    def test_transaction_moved(self) -> None:
        """A transaction whose commands were answered MOVED is sent again, whole, to the
        node named."""
        for argv in ([b"MULTI"], [b"SET", b"{t}a", b"1"]):
            self.session.execute(argv)
        d = self.session.execute([b"EXEC"])
        node = owner_of(b"t")
        target = "a:1" if node != "a:1" else "b:2"
        backend = self.backends[node]
        backend.answer(0, OK)
        backend.answer(1, Error("MOVED %d %s" % (key_slot(b"t"), target)))
        backend.answer(2, Error("EXECABORT Transaction discarded because of previous "
                                "errors."))
        self.assertEqual(self.sent(target)[-3:], [[b"MULTI"], [b"SET", b"{t}a", b"1"],
                                                  [b"EXEC"]])
        self.answer_last(target, [OK])
        self.assertEqual(result_of(d), [OK])
