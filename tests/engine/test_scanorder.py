"""Tests for kvtwist.engine.scanorder: SCAN's stable cursor and RANDOMKEY over a keyspace."""

from __future__ import annotations

from hypothesis import settings, strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule
from twisted.trial.unittest import SynchronousTestCase

from kvtwist.engine.keyspace import DEL, FLUSH, SET
from tests.engine.test_keyspace import make


class ScanTests(SynchronousTestCase):
    def full_scan(self, ks, count, during=None):
        seen, cursor, steps = [], 0, 0
        while True:
            cursor, found = ks.scan(cursor, count)
            seen.extend(found)
            steps += 1
            if during is not None:
                during(steps)
            if cursor == 0:
                return seen
            self.assertLess(steps, 10000)

    def test_scan_returns_everything_once(self):
        """A full scan visits every key exactly once when nothing changes."""
        _, ks, _ = make()
        for index in range(500):
            ks.set(b"k%d" % index, b"v")
        seen = self.full_scan(ks, 7)
        self.assertEqual(sorted(seen), sorted(ks.data))
        self.assertEqual(len(seen), 500)

    def test_scan_with_changes(self):
        """Keys present throughout are returned even while others are added and deleted."""
        _, ks, _ = make()
        for index in range(300):
            ks.set(b"k%d" % index, b"v")

        def churn(step):
            ks.delete(b"k%d" % (step * 2 + 1))
            ks.set(b"new%d" % step, b"v")

        seen = set(self.full_scan(ks, 5, churn))
        stable = {b"k%d" % index for index in range(0, 300, 2)}
        self.assertTrue(stable <= seen)

    def test_scan_empty(self):
        """Scanning an empty keyspace finishes at once."""
        _, ks, _ = make()
        self.assertEqual(ks.scan(0, 10), (0, []))

    def test_scan_and_random_key_do_not_walk_the_keyspace(self):
        """SCAN 0 and RANDOMKEY never iterate the whole keyspace, also right after a write."""
        _, ks, _ = make()
        for index in range(1000):
            ks.set(b"k%d" % index, b"v")
        ks.data = IterationCountingDict(ks.data)
        self.assertEqual(len(ks.scan(0, 10)[1]), 10)
        self.assertIn(ks.random_key(), ks.data)
        ks.set(b"new", b"v")
        ks.delete(b"k5")
        self.assertEqual(len(ks.scan(0, 10)[1]), 10)
        self.assertIn(ks.random_key(), ks.data)
        self.assertEqual(ks.data.iterations, 0)

    def test_count_bounds_each_step(self):
        """A step looks at COUNT entries: at most COUNT keys, the cursor down by COUNT."""
        _, ks, _ = make()
        for index in range(100):
            ks.set(b"k%d" % index, b"v")
        cursor, found = ks.scan(0, 30)
        self.assertEqual((cursor, len(found)), (70, 30))
        cursor, found = ks.scan(cursor, 60)
        self.assertEqual((cursor, len(found)), (10, 60))
        cursor, found = ks.scan(cursor, 60)
        self.assertEqual((cursor, len(found)), (0, 10))

    def test_cursor_clamped(self):
        """A cursor past the end of the order starts from its top and still ends with 0."""
        _, ks, _ = make()
        for index in range(50):
            ks.set(b"k%d" % index, b"v")
        cursor, found = ks.scan(2 ** 64 - 1, 1000)
        self.assertEqual((cursor, sorted(found)), (0, sorted(ks.data)))
        cursor, found = ks.scan(51, 10)
        self.assertEqual((cursor, len(found)), (40, 10))

    def test_compaction_between_steps(self):
        """A compaction pass running across scan steps loses no key present throughout."""
        _, ks, _ = make()
        ks.compact_floor, ks.compact_step = 0, 4
        for index in range(300):
            ks.set(b"k%03d" % index, b"v")
        cursor, seen = ks.scan(0, 20)
        passes = 0
        for index in range(300):
            if index % 3 != 2:
                ks.delete(b"k%03d" % index)
            if index % 7 == 0:
                ks.set(b"new%d" % index, b"v")
            if index % 20 == 0:
                ks.set(b"k%03d" % index, b"back")
            passes += ks._pass_read >= 0
            if index % 4 == 0 and cursor:
                cursor, found = ks.scan(cursor, 2)
                seen.extend(found)
        while cursor:
            cursor, found = ks.scan(cursor, 5)
            seen.extend(found)
        self.assertGreater(passes, 0)
        self.assertTrue({b"k%03d" % index for index in range(2, 300, 3)} <= set(seen))

    def test_reinserted_key_keeps_its_entry(self):
        """A key deleted and set again revives its old entry: a scan returns it once."""
        _, ks, _ = make()
        for index in range(10):
            ks.set(b"k%d" % index, b"v")
        ks.delete(b"k3")
        ks.set(b"k3", b"again")
        ks.load_items([b"k4"], [b"x"], [0])
        ks.apply((DEL, b"k5"))
        ks.load_items([b"k5", b"k6", b"k5"], [b"x", b"y", b"z"], [0, 0, 0])
        ks.apply((DEL, b"k7"))
        ks.apply((SET, b"k7", b"w", 0))
        self.assertEqual(len(ks._order), 10)
        self.assertEqual(sorted(ScanTests.full_scan(self, ks, 3)), sorted(ks.data))

    def test_compaction_is_bounded(self):
        """Under churn dead entries stay within a small multiple of the live ones."""
        _, ks, _ = make()
        ks.compact_floor = 100
        for index in range(20000):
            ks.set(b"k%d" % index, b"v")
            if index % 3:
                ks.delete(b"k%d" % index)
            if index % 11 == 0:
                ks.delete(b"k%d" % (index // 2))
            bound = 3 * (len(ks) + ks.compact_floor) + 2 * ks.compact_step
            self.assertLessEqual(len(ks._order), bound)
        self.assertLess(len(ks._order), 20000)
        self.assertEqual(sorted(self.full_scan(ks, 100)), sorted(ks.data))

    def test_scan_skips_expired(self):
        """Expired keys are not returned by a scan step (and are removed on the way)."""
        clock, ks, _ = make()
        ks.set(b"dead", b"v", ks.now_ms() + 5)
        ks.set(b"live", b"v")
        clock.advance(1)
        self.assertEqual(ks.scan(0, 10), (0, [b"live"]))
        self.assertNotIn(b"dead", ks.data)

    def test_scan_after_recovery(self):
        """After bulk loading (new keys or overwrites) and replay, a scan returns each key once."""
        clock, ks, _ = make()
        ks.load_items([b"a", b"b", b"c"], [b"1", b"2", b"3"], [0, 0, 0])
        self.assertEqual(sorted(self.full_scan(ks, 2)), [b"a", b"b", b"c"])
        ks.load_items([b"b", b"d", b"d"], [b"4", b"5", b"6"], [0, 0, 0])
        ks.apply((DEL, b"a"))
        ks.apply((SET, b"e", b"7", 0))
        ks.set(b"f", b"8")
        self.assertEqual(sorted(self.full_scan(ks, 2)), [b"b", b"c", b"d", b"e", b"f"])
        ks.apply((FLUSH,))
        self.assertEqual(ks.scan(0, 10), (0, []))
        ks.set(b"g", b"9")
        self.assertEqual(self.full_scan(ks, 10), [b"g"])

    def test_flush_empties_the_order(self):
        """flush forgets every entry of the scan order."""
        _, ks, _ = make()
        for index in range(10):
            ks.set(b"k%d" % index, b"v")
        ks.flush()
        self.assertEqual((ks.scan(0, 10), ks._order), ((0, []), []))

    def test_random_key(self):
        """random_key returns one of the live keys, or None when empty."""
        _, ks, _ = make()
        self.assertIsNone(ks.random_key())
        ks.set(b"only", b"v")
        self.assertEqual(ks.random_key(), b"only")
        for index in range(100):
            ks.set(b"k%d" % index, b"v")
        self.assertIn(ks.random_key(), ks.data)

    def test_random_key_live_only_and_every_key(self):
        """random_key returns only live keys, expiring dead ones, and in time every live key."""
        clock, ks, _ = make()
        for index in range(3000):
            ks.set(b"gone%d" % index, b"v")
        for index in range(3000):
            ks.delete(b"gone%d" % index)
        for index in range(20):
            ks.set(b"dead%d" % index, b"v", ks.now_ms() + 5)
            ks.set(b"live%d" % index, b"v")
        clock.advance(1)
        drawn = {ks.random_key() for _ in range(2000)}
        self.assertEqual(drawn, {b"live%d" % index for index in range(20)})

    def test_random_key_all_expired(self):
        """random_key gives up with None after 100 expired draws, each removing its key."""
        clock, ks, _ = make()
        for index in range(300):
            ks.set(b"k%d" % index, b"v", ks.now_ms() + 5)
        clock.advance(1)
        self.assertIsNone(ks.random_key())
        self.assertEqual(len(ks), 200)
        self.assertEqual(ks.expired_keys, 100)


class IterationCountingDict(dict):
    """A dict that counts how often it is iterated."""

    iterations = 0

    def __iter__(self):
        self.iterations += 1
        return dict.__iter__(self)


POOL = [b"k%d" % index for index in range(10)]


class ScanMachine(RuleBasedStateMachine):
    """Random writes, deletes, replays, expiry and compaction between the steps of scans."""

    def __init__(self):
        RuleBasedStateMachine.__init__(self)
        self.clock, self.ks, _ = make()
        self.ks.compact_floor, self.ks.compact_step = 0, 1
        self.model = {}  # key -> expire_at (0: none), the keys alive now
        self.cursor = None
        self.stable = set()
        self.seen = set()

    def _drop(self, key):
        self.model.pop(key, None)
        self.stable.discard(key)

    @rule(key=st.sampled_from(POOL), ttl=st.sampled_from([0, 0, 3, 20]))
    def set(self, key, ttl):
        at = self.ks.now_ms() + ttl if ttl else 0
        self.ks.set(key, b"v", at)
        self.model[key] = at

    @rule(key=st.sampled_from(POOL))
    def delete(self, key):
        self.ks.delete(key)
        self._drop(key)

    @rule(batch=st.lists(st.tuples(st.sampled_from(POOL), st.sampled_from([0, 0, 3, 20])),
                         min_size=1, max_size=5))
    def load(self, batch):
        now = self.ks.now_ms()
        keys = [key for key, _ in batch]
        ats = [now + ttl if ttl else 0 for _, ttl in batch]
        self.ks.load_items(keys, [b"v"] * len(keys), ats)
        for key, at in zip(keys, ats):
            self.model[key] = at

    @rule(key=st.sampled_from(POOL))
    def replay_delete(self, key):
        self.ks.apply((DEL, key))
        self._drop(key)

    @rule(ms=st.integers(min_value=1, max_value=10), sweep=st.booleans())
    def advance(self, ms, sweep):
        self.clock.advance(ms / 1000.0)
        now = self.ks.now_ms()
        for key, at in list(self.model.items()):
            if at and now > at:
                self._drop(key)
        if sweep:
            self.ks.sweep()

    @rule(key=st.sampled_from(POOL))
    def read(self, key):
        assert (self.ks.get(key) is not None) == (key in self.model)

    @rule(count=st.integers(min_value=1, max_value=4))
    def scan_step(self, count):
        if self.cursor is None:
            self.cursor, self.stable, self.seen = 0, set(self.model), set()
        self.cursor, found = self.ks.scan(self.cursor, count)
        assert len(found) <= count
        self.seen.update(found)
        if self.cursor == 0:
            assert self.stable <= self.seen, self.stable - self.seen
            self.cursor = None

    @rule()
    def compact(self):
        self.ks._compact()

    @rule()
    def random_key(self):
        key = self.ks.random_key()
        if self.model:
            assert key in self.model, key
        else:
            assert key is None, key

    @invariant()
    def one_entry_per_key(self):
        ks = self.ks
        entries = [key for key in ks._order if key is not None]
        assert len(entries) == len(set(entries))
        assert set(entries) == set(ks.data) | ks._tombstones
        assert not ks._tombstones & set(ks.data)
        if ks._pass_read < 0:
            assert len(entries) == len(ks._order)


ScanMachine.TestCase.settings = settings(max_examples=150, stateful_step_count=60,
                                         deadline=None)


class ScanMachineTests(ScanMachine.TestCase):
    """Keys present for a whole scan are returned while others change and the order compacts."""
