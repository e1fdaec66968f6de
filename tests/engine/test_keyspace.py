"""Tests for kvtwist.engine.keyspace: values, expiry, effects, replay, KEYS, the SCAN order."""

from __future__ import annotations

from hypothesis import given, settings, strategies as st
from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from kvtwist.engine import keyspace
from kvtwist.engine.keyspace import DEL, EXPIRE_AT, FLUSH, PERSIST, SET, SETRANGE, Keyspace


def make(start: float = 1000.0):
    clock = Clock()
    clock.advance(start)
    log = []
    return clock, Keyspace(clock, log.append), log


class OpcodeTests(SynchronousTestCase):
    def test_opcodes(self):
        """The effect opcodes keep the values fixed by the journal format."""
        self.assertEqual((SET, DEL, EXPIRE_AT, PERSIST, FLUSH), (1, 2, 3, 4, 5))
        self.assertEqual(keyspace.SET, 1)


class ValueTests(SynchronousTestCase):
    def test_set_get(self):
        """A stored value is returned and a missing key reads as None."""
        _, ks, _ = make()
        ks.set(b"k", b"v")
        self.assertEqual(ks.get(b"k"), b"v")
        self.assertIsNone(ks.get(b"missing"))
        self.assertEqual(len(ks), 1)

    def test_delete_and_pop(self):
        """delete reports whether the key existed; pop returns the removed value."""
        _, ks, _ = make()
        ks.set(b"a", b"1")
        ks.set(b"b", b"2")
        self.assertTrue(ks.delete(b"a"))
        self.assertFalse(ks.delete(b"a"))
        self.assertEqual(ks.pop(b"b"), b"2")
        self.assertIsNone(ks.pop(b"b"))
        self.assertEqual(len(ks), 0)

    def test_set_without_expiry_clears_ttl(self):
        """Setting with expire_at_ms 0 removes an earlier expiry."""
        _, ks, _ = make()
        ks.set(b"k", b"v", 2000000)
        ks.set(b"k", b"w")
        self.assertEqual(ks.ttl_ms(b"k"), -1)


class ExpiryTests(SynchronousTestCase):
    def test_boundary(self):
        """A key lives while now_ms <= expire_at and is gone one millisecond later."""
        clock, ks, _ = make(1000.0)
        ks.set(b"k", b"v", 1000500)
        clock.advance(0.5)
        self.assertEqual(ks.now_ms(), 1000500)
        self.assertEqual(ks.get(b"k"), b"v")
        self.assertEqual(ks.ttl_ms(b"k"), 0)
        clock.advance(0.001)
        self.assertIsNone(ks.get(b"k"))
        self.assertEqual(ks.ttl_ms(b"k"), -2)
        self.assertEqual(ks.expired_keys, 1)

    def test_lazy_expiry_does_not_log(self):
        """Expiring a key on access removes it from storage without logging an effect."""
        clock, ks, log = make()
        ks.set(b"k", b"v", ks.now_ms() + 10)
        del log[:]
        clock.advance(1)
        self.assertFalse(ks.exists(b"k"))
        self.assertNotIn(b"k", ks.data)
        self.assertEqual(log, [])

    def test_expire_in_past_deletes(self):
        """expire_at with a time not in the future deletes the key and logs DEL."""
        _, ks, log = make()
        ks.set(b"k", b"v")
        ks.expire_at(b"k", ks.now_ms())
        self.assertFalse(ks.exists(b"k"))
        self.assertEqual(log[-1], (DEL, b"k"))

    def test_persist(self):
        """persist removes an expiry once and reports whether there was one."""
        clock, ks, log = make()
        ks.set(b"k", b"v")
        ks.expire_at(b"k", ks.now_ms() + 1000)
        self.assertEqual(log[-1], (EXPIRE_AT, b"k", ks.now_ms() + 1000))
        self.assertTrue(ks.persist(b"k"))
        self.assertFalse(ks.persist(b"k"))
        self.assertEqual(log[-1], (PERSIST, b"k"))
        clock.advance(10)
        self.assertEqual(ks.get(b"k"), b"v")

    def test_sweep(self):
        """sweep removes expired keys it samples, repeats while many expired, and counts them."""
        clock, ks, _ = make()
        now = ks.now_ms()
        for index in range(100):
            ks.set(b"dead%d" % index, b"v", now + 10)
        for index in range(5):
            ks.set(b"live%d" % index, b"v", now + 100000)
        ks.set(b"plain", b"v")
        clock.advance(1)
        total = 0
        for _ in range(20):
            total += ks.sweep(20)
        self.assertEqual(total, 100)
        self.assertEqual(len(ks), 6)
        self.assertEqual(ks.sweep(), 0)

    def test_sweep_limit(self):
        """One sweep call stops after a round where at most a quarter of the sample expired."""
        clock, ks, _ = make()
        now = ks.now_ms()
        for index in range(40):
            ks.set(b"k%02d" % index, b"v", now + (10 if index % 10 == 0 else 100000))
        clock.advance(1)
        self.assertEqual(ks.sweep(20), 2)
        self.assertEqual(ks.sweep(20), 2)
        self.assertEqual(len(ks), 36)


class EffectTests(SynchronousTestCase):
    def test_effects_and_replay(self):
        """Every mutation logs one effect, and replaying them reaches the same state."""
        clock, ks, log = make()
        now = ks.now_ms()
        ks.set(b"a", b"1")
        ks.set(b"b", b"2", now + 5000)
        ks.expire_at(b"a", now + 9000)
        ks.persist(b"a")
        ks.delete(b"b")
        ks.set(b"c", b"3", now + 7000)
        self.assertEqual(log, [
            (SET, b"a", b"1", 0), (SET, b"b", b"2", now + 5000), (EXPIRE_AT, b"a", now + 9000),
            (PERSIST, b"a"), (DEL, b"b"), (SET, b"c", b"3", now + 7000)])
        replica = Keyspace(clock)
        for effect in log:
            replica.apply(effect)
        self.assertEqual(sorted(replica.snapshot_items()), sorted(ks.snapshot_items()))
        ks.flush()
        self.assertEqual(log[-1], (FLUSH,))
        replica.apply(log[-1])
        self.assertEqual(replica.snapshot_items(), [])

    def test_apply_does_not_log(self):
        """apply changes the data without calling the log."""
        _, ks, log = make()
        ks.apply((SET, b"k", b"v", 0))
        self.assertEqual(ks.get(b"k"), b"v")
        self.assertEqual(log, [])

    def test_apply_rejects_unknown(self):
        """apply raises ValueError for an unknown opcode."""
        _, ks, _ = make()
        self.assertRaises(ValueError, ks.apply, (99, b"k"))

    @settings(max_examples=100, deadline=None)
    @given(st.lists(st.tuples(st.sampled_from([b"a", b"b", b"c"]),
                              st.sampled_from([0, 0, 7, 9]))),
           st.lists(st.tuples(st.sampled_from([b"a", b"b", b"c", b"d"]),
                              st.sampled_from([0, 0, 7, 9])),
                    max_size=8))
    def test_load_items_matches_apply(self, before, batch):
        """load_items equals the same SETs applied one by one (data, expiries), without logging."""
        clock, ks, log = make(0)
        replica = Keyspace(clock)
        for key, at in before:
            ks.apply((SET, key, b"old", at))
            replica.apply((SET, key, b"old", at))
        keys = [key for key, _ in batch]
        values = [b"%d" % index for index in range(len(batch))]
        ats = [at for _, at in batch]
        ks.load_items(keys, values, ats)
        for key, value, at in zip(keys, values, ats):
            replica.apply((SET, key, value, at))
        self.assertEqual((ks.data, ks.expires), (replica.data, replica.expires))
        self.assertEqual(log, [])

    @settings(max_examples=60, deadline=None)
    @given(st.lists(st.tuples(st.sampled_from("set setx del expire persist flush".split()),
                              st.sampled_from([b"a", b"b", b"c"]),
                              st.integers(min_value=-5, max_value=5))))
    def test_replay_property(self, ops):
        """Any sequence of mutations replays through apply to an identical snapshot."""
        clock, ks, log = make()
        for op, key, number in ops:
            now = ks.now_ms()
            if op == "set":
                ks.set(key, b"%d" % number)
            elif op == "setx":
                ks.set(key, b"x", now + 1 + abs(number))
            elif op == "del":
                ks.delete(key)
            elif op == "expire" and ks.exists(key):
                ks.expire_at(key, now + number)
            elif op == "persist":
                ks.persist(key)
            elif op == "flush":
                ks.flush()
        replica = Keyspace(clock)
        for effect in log:
            replica.apply(effect)
        self.assertEqual(sorted(replica.snapshot_items()), sorted(ks.snapshot_items()))


class SetRangeTests(SynchronousTestCase):
    """setrange writes a piece of a value in place of the whole value, in the log too."""

    def test_patch_append_pad_and_create(self):
        """It patches, appends, zero-pads past the end and creates a missing key; expiry stays."""
        clock, ks, log = make()
        at = ks.now_ms() + 5000
        ks.set(b"k", b"hello world", at)
        self.assertEqual(ks.setrange(b"k", 6, b"there"), 11)
        self.assertEqual(ks.setrange(b"k", 11, b"!"), 12)
        self.assertEqual(ks.get(b"k"), b"hello there!")
        self.assertEqual(ks.expire_of(b"k"), at)
        self.assertEqual(ks.setrange(b"new", 3, b"x"), 4)
        self.assertEqual(ks.get(b"new"), b"\0\0\0x")
        self.assertEqual(ks.expire_of(b"new"), 0)
        self.assertEqual(log[1:], [(SETRANGE, b"k", 6, b"there"), (SETRANGE, b"k", 11, b"!"),
                                   (SETRANGE, b"new", 3, b"x")])

    def test_replay_and_rollback(self):
        """Replaying the log gives the same values, and a rollback restores the old ones."""
        clock, ks, log = make()
        ks.set(b"k", b"abc")
        ks.track_undo()
        ks.setrange(b"k", 1, b"ZZZZ")
        ks.setrange(b"fresh", 2, b"y")
        again = Keyspace(clock)
        for effect in log:
            again.apply(effect)
        self.assertEqual(again.data, {b"k": b"aZZZZ", b"fresh": b"\0\0y"})
        ks.rollback()
        self.assertEqual(ks.data, {b"k": b"abc"})


class UndoTests(SynchronousTestCase):
    """With undo tracked, every logged effect can be taken back until it is settled."""

    def test_rollback_restores_each_kind_of_change(self) -> None:
        """SET, DEL, EXPIRE_AT, PERSIST and FLUSH are undone newest first, values and expiries."""
        clock, ks, log = make()
        ks.set(b"keep", b"1", 5_000_000)
        ks.set(b"gone", b"2")
        ks.track_undo()
        ks.set(b"keep", b"changed")
        ks.delete(b"gone")
        ks.set(b"new", b"3")
        ks.expire_at(b"new", 9_000_000)
        ks.persist(b"new")
        ks.flush()
        ks.set(b"after", b"4")
        changed = [effect for keyspace, effect in ks.rollback()]
        self.assertEqual(ks.data, {b"keep": b"1", b"gone": b"2"})
        self.assertEqual(ks.expires, {b"keep": 5_000_000})
        self.assertEqual(changed[:2], [(DEL, b"after"), (FLUSH,)])
        self.assertEqual(set(changed[2:]), {(DEL, b"new"), (DEL, b"gone"), (DEL, b"keep")})
        self.assertEqual(len(log), 9)  # two before tracking, seven after; rollback logs nothing

    def test_settled_effects_stay(self) -> None:
        """Effects settled as durable are not undone; only the later ones are."""
        clock, ks, log = make()
        ks.track_undo()
        ks.set(b"a", b"1")
        ks.set(b"a", b"2")
        ks.settle(1)
        ks.set(b"b", b"3")
        ks.rollback()
        self.assertEqual(ks.data, {b"a": b"1"})

    def test_rollback_keeps_the_scan_order(self) -> None:
        """After a rollback SCAN and RANDOMKEY see exactly the keys put back, once each."""
        clock, ks, log = make()
        for key in (b"a", b"b", b"c"):
            ks.set(key, b"1")
        ks.track_undo()
        ks.delete(b"a")
        ks.set(b"new", b"2")
        ks.flush()
        ks.set(b"later", b"3")
        ks.rollback()
        cursor, seen = 0, []
        while True:
            cursor, keys = ks.scan(cursor, 2)
            seen += keys
            if cursor == 0:
                break
        self.assertEqual(sorted(seen), [b"a", b"b", b"c"])
        self.assertIn(ks.random_key(), (b"a", b"b", b"c"))

    def test_untracked_keyspace_remembers_nothing(self) -> None:
        """Without track_undo no prior state is kept (an in-memory store pays nothing)."""
        clock, ks, log = make()
        ks.set(b"a", b"1")
        self.assertIsNone(ks.undo)


class KeysTests(SynchronousTestCase):
    def test_keys_with_many_stars(self):
        """keys answers a pattern with many stars over a long key (no backtracking search)."""
        _, ks, _ = make()
        ks.set(b"a" * 10000, b"v")
        ks.set(b"a" * 10000 + b"b", b"v")
        self.assertEqual(ks.keys(b"*a" * 40 + b"b"), [b"a" * 10000 + b"b"])

    def test_keys(self):
        """keys returns live keys that match and skips expired ones."""
        clock, ks, _ = make()
        ks.set(b"user:1", b"a")
        ks.set(b"user:2", b"b", ks.now_ms() + 10)
        ks.set(b"other", b"c")
        self.assertEqual(sorted(ks.keys(b"user:*")), [b"user:1", b"user:2"])
        clock.advance(1)
        self.assertEqual(sorted(ks.keys(b"*")), [b"other", b"user:1"])


class MeterTests(SynchronousTestCase):
    """The keyspace's meter follows every change and matches a full recount."""

    def test_meter_matches_recount(self):
        """After sets, overwrites, SETRANGE, deletes, expiry, flush and rollback, used == size()."""
        clock = Clock()
        ks = Keyspace(clock)
        ks.track_undo()
        ks.set(b"a", b"12345")
        ks.set(b"b", b"x", 500)
        ks.set(b"a", b"1")
        ks.setrange(b"c", 3, b"zz")
        ks.setrange(b"a", 0, b"longer value")
        self.assertEqual(ks.meter.used, ks.size())
        ks.settle(len(ks.undo))
        ks.delete(b"c")
        clock.advance(1)
        self.assertFalse(ks.exists(b"b"))
        self.assertEqual(ks.meter.used, ks.size())
        ks.flush()
        self.assertEqual(ks.meter.used, 0)
        ks.rollback()
        self.assertEqual(ks.meter.used, ks.size())
        self.assertEqual(sorted(ks.data), [b"a", b"c"])


class AccessTests(SynchronousTestCase):
    """``access`` (last-access times, stamped by objects.touched) follows the keys."""

    def test_removals_drop_entries(self) -> None:
        """delete, expiry, flush, an undone insertion and replayed DEL/FLUSH drop entries."""
        clock, ks, log = make()
        self.assertEqual(ks.access_epoch, 1000.0)
        for key in (b"a", b"b", b"c", b"d"):
            ks.set(key, b"1")
            ks.access[key] = clock.seconds()
        ks.expire_at(b"b", 1000_500)
        ks.delete(b"a")
        clock.advance(1)
        self.assertFalse(ks.exists(b"b"))
        self.assertEqual(set(ks.access), {b"c", b"d"})
        ks.track_undo()
        ks.set(b"e", b"1")
        ks.access[b"e"] = clock.seconds()
        ks.rollback()
        self.assertEqual(set(ks.access), {b"c", b"d"})
        ks.apply((DEL, b"c"))
        self.assertEqual(set(ks.access), {b"d"})
        ks.apply((FLUSH,))
        self.assertEqual(ks.access, {})
        ks.set(b"f", b"1")
        ks.access[b"f"] = 0.0
        ks.flush()
        self.assertEqual(ks.access, {})
