"""Tests for kvtwist.proxy.cache: TTL expiry with task.Clock, LRU bounds, placeholders, stats."""

from __future__ import annotations

import gc
import platform
from unittest import skipIf
import weakref

from hypothesis import given, settings
from hypothesis import strategies as st
from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from kvtwist.proxy.cache import MISSING, Cache


class CacheTTLTests(SynchronousTestCase):
    """Entries expire at their TTL, through one timer for the whole cache."""

    def setUp(self) -> None:
        self.clock = Clock()
        self.cache = Cache(self.clock, ttl=60, miss_ttl=5, max_entries=10)

    def test_hitJustBeforeTTL(self) -> None:
        """A value read a little before its TTL is a hit."""
        self.cache.put(b"k", b"v")
        self.clock.advance(59.999)
        self.assertEqual(self.cache.get(b"k"), b"v")
        self.assertEqual(self.cache.hits, 1)

    def test_missAtTTL(self) -> None:
        """A value read at exactly its TTL is gone and counted as an expiration and a miss."""
        self.cache.put(b"k", b"v")
        self.clock.advance(60)
        self.assertIs(self.cache.get(b"k"), MISSING)
        self.assertEqual(self.cache.expirations, 1)
        self.assertEqual(self.cache.misses, 1)
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_overdueEntryIsAMissBeforeTheTimerRuns(self) -> None:
        """A value or cached miss read after its TTL is a miss even if the reactor has
        not yet run the cache's timer (a read handled in the same iteration)."""
        self.cache.put(b"k", b"v")
        self.cache.put(b"n", None)
        self.clock.rightNow += 60
        self.assertIs(self.cache.get(b"n"), MISSING)
        self.assertIs(self.cache.get(b"k"), MISSING)
        self.assertEqual((self.cache.expirations, self.cache.bytes), (2, 0))
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_cachedMissUsesShorterTTL(self) -> None:
        """A cached miss (None) is a hit until miss_ttl, then gone."""
        self.cache.put(b"k", None)
        self.clock.advance(4.9)
        self.assertIsNone(self.cache.get(b"k"))
        self.clock.advance(0.1)
        self.assertIs(self.cache.get(b"k"), MISSING)

    def test_missTTLCappedByTTL(self) -> None:
        """The miss TTL never exceeds the value TTL."""
        cache = Cache(self.clock, ttl=2, miss_ttl=5)
        self.assertEqual(cache.miss_ttl, 2.0)

    def test_replaceCancelsOldTimer(self) -> None:
        """Replacing an entry restarts its TTL; the cache keeps one timer."""
        self.cache.put(b"k", b"v1")
        self.clock.advance(30)
        self.cache.put(b"k", b"v2")
        self.assertEqual(len(self.clock.getDelayedCalls()), 1)
        self.clock.advance(59)
        self.assertEqual(self.cache.get(b"k"), b"v2")
        self.clock.advance(1)
        self.assertIs(self.cache.get(b"k"), MISSING)

    def test_invalidateCancelsTimer(self) -> None:
        """Invalidating an entry removes it and cancels its timer."""
        self.cache.put(b"k", b"v")
        self.assertTrue(self.cache.invalidate(b"k"))
        self.assertEqual(self.clock.getDelayedCalls(), [])
        self.assertIs(self.cache.get(b"k"), MISSING)
        self.assertEqual(self.cache.invalidations, 1)
        self.assertFalse(self.cache.invalidate(b"k"))

    def test_stopLeavesNoDelayedCall(self) -> None:
        """stop() cancels every timer and empties the cache."""
        for i in range(5):
            self.cache.put(b"k%d" % i, b"v")
        self.cache.stop()
        self.assertEqual(self.clock.getDelayedCalls(), [])
        self.assertEqual(len(self.cache), 0)

    def test_invalidateAllCancelsTimers(self) -> None:
        """invalidate_all() drops every entry, cancels their timers and counts a flush."""
        for i in range(3):
            self.cache.put(b"k%d" % i, b"v")
        self.assertEqual(self.cache.invalidate_all(), 3)
        self.assertEqual(self.clock.getDelayedCalls(), [])
        self.assertEqual(self.cache.flushes, 1)
        self.assertEqual(self.cache.invalidations, 3)

    def test_disabled(self) -> None:
        """With max_entries 0 nothing is stored and no timer is started."""
        cache = Cache(self.clock, ttl=60, max_entries=0)
        cache.put(b"k", b"v")
        self.assertIs(cache.get(b"k"), MISSING)
        self.assertEqual(self.clock.getDelayedCalls(), [])


class CacheLRUTests(SynchronousTestCase):
    """max_entries bounds the cache, evicting the least recently used entry."""

    def setUp(self) -> None:
        self.clock = Clock()
        self.cache = Cache(self.clock, ttl=60, max_entries=2)

    def test_evictsLeastRecentlyUsed(self) -> None:
        """Reading an entry makes it recent, so the other one is evicted."""
        self.cache.put(b"a", b"1")
        self.cache.put(b"b", b"2")
        self.cache.get(b"a")
        self.cache.put(b"c", b"3")
        self.assertIn(b"a", self.cache)
        self.assertNotIn(b"b", self.cache)
        self.assertIn(b"c", self.cache)
        self.assertEqual(self.cache.evictions, 1)

    def test_evictionCancelsTimer(self) -> None:
        """Entries cost no timer each: however many are put and evicted, the cache has
        one timer, and an evicted entry does not count as expired when its time comes."""
        for key in (b"a", b"b", b"c", b"d"):
            self.cache.put(key, b"v")
        self.assertEqual(len(self.clock.getDelayedCalls()), 1)
        self.clock.advance(60)
        self.assertEqual((self.cache.expirations, len(self.cache)), (2, 0))
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_evictionDropsDeadRecordsAtTheHead(self) -> None:
        """A stream of new misses evicting the oldest keeps one deadline record per
        entry, even behind entries invalidated earlier."""
        cache = Cache(self.clock, ttl=60, max_entries=100)
        cache.put(b"first", None)
        for count in range(50):
            cache.put(b"old%d" % count, None)
        for count in range(50):
            cache.invalidate(b"old%d" % count)
        for count in range(5000):
            cache.put(b"new%d" % count, None)
            if count >= 99:
                self.assertEqual(len(cache._misses), len(cache))

    def test_deadlineRecordsAreCompacted(self) -> None:
        """Replacing the same entries over and over keeps the deadline records bounded
        (those of replaced entries are dropped once they outnumber the live ones)."""
        cache = Cache(self.clock, ttl=60, max_entries=2)
        for count in range(5000):
            cache.put(b"a", b"%d" % count)
            cache.put(b"b", None)
        records = len(cache._values) + len(cache._misses) + len(cache._bounded)
        self.assertLessEqual(records, 2 * 2 + 1024 + 1)
        self.assertEqual(cache.get(b"a"), b"4999")
        self.clock.advance(5)
        self.assertEqual((cache.get(b"b"), cache.expirations), (MISSING, 1))

    def test_stats(self) -> None:
        """stats() reports hits, misses, the hit ratio and entry counts."""
        self.cache.put(b"a", b"1")
        self.cache.get(b"a")
        self.cache.get(b"a")
        self.cache.get(b"zz")
        self.cache.get(b"zz")
        stats = self.cache.stats()
        self.assertEqual(stats["hits"], 2)
        self.assertEqual(stats["misses"], 2)
        self.assertEqual(stats["hit_ratio"], 0.5)
        self.assertEqual(stats["entries"], 1)

    @settings(max_examples=200, deadline=None)
    @given(st.lists(st.tuples(st.sampled_from(["put", "get", "inv", "tick"]),
                              st.integers(0, 5)), max_size=60))
    def test_modelAgreement(self, ops) -> None:
        """Any sequence of puts, gets, invalidations and clock ticks matches a reference model."""
        clock = Clock()
        cache = Cache(clock, ttl=10, max_entries=3)
        model = []  # [key, value, expires_at], least recent first
        for op, n in ops:
            key = b"k%d" % n
            now = clock.seconds()
            model = [item for item in model if item[2] > now]
            found = [item for item in model if item[0] == key]
            if op == "put":
                model = [item for item in model if item[0] != key]
                model.append([key, b"v%d" % now, now + 10])
                cache.put(key, b"v%d" % now)
                model = model[-3:]
            elif op == "get":
                got = cache.get(key)
                if found:
                    self.assertEqual(got, found[0][1])
                    model.remove(found[0])
                    model.append(found[0])
                else:
                    self.assertIs(got, MISSING)
            elif op == "inv":
                cache.invalidate(key)
                model = [item for item in model if item[0] != key]
            else:
                clock.advance(n)
            now = clock.seconds()
            model = [item for item in model if item[2] > now]
            self.assertEqual(len(cache), len(model))
            self.assertEqual(len(clock.getDelayedCalls()), min(1, len(model)))
        cache.stop()
        self.assertEqual(clock.getDelayedCalls(), [])


class CachePlaceholderTests(SynchronousTestCase):
    """Placeholders keep a fetch that raced an invalidation from caching a stale value."""

    def setUp(self) -> None:
        self.clock = Clock()
        self.cache = Cache(self.clock, ttl=60)

    def test_fillStores(self) -> None:
        """A fetch's result is stored when no invalidation came in between."""
        placeholder = self.cache.reserve(b"k")
        self.assertIs(self.cache.pending(b"k"), placeholder)
        self.assertTrue(self.cache.fill(placeholder, b"v"))
        self.assertEqual(self.cache.get(b"k"), b"v")
        self.assertIsNone(self.cache.pending(b"k"))

    def test_invalidationVoidsFetch(self) -> None:
        """An invalidation during the fetch keeps the fetched (maybe stale) value out."""
        placeholder = self.cache.reserve(b"k")
        self.cache.invalidate(b"k")
        self.assertIsNone(self.cache.pending(b"k"))
        self.assertFalse(self.cache.fill(placeholder, b"stale"))
        self.assertIs(self.cache.get(b"k"), MISSING)

    def test_flushVoidsFetch(self) -> None:
        """A flush during the fetch keeps the fetched value out."""
        placeholder = self.cache.reserve(b"k")
        self.cache.invalidate_all()
        self.assertFalse(self.cache.fill(placeholder, b"stale"))
        self.assertNotIn(b"k", self.cache)

    def test_newerFetchWins(self) -> None:
        """Of two fetches of one key, only the newer placeholder may fill."""
        first = self.cache.reserve(b"k")
        self.cache.invalidate(b"k")
        second = self.cache.reserve(b"k")
        self.assertFalse(self.cache.fill(first, b"old"))
        self.assertIs(self.cache.pending(b"k"), second)
        self.assertTrue(self.cache.fill(second, b"new"))
        self.assertEqual(self.cache.get(b"k"), b"new")

    def test_release(self) -> None:
        """A released placeholder (failed fetch) is forgotten and stores nothing."""
        placeholder = self.cache.reserve(b"k")
        self.cache.release(placeholder)
        self.assertIsNone(self.cache.pending(b"k"))
        self.assertNotIn(b"k", self.cache)


class Value:
    """Stands in for a cached value, and can be watched with a weak reference."""

    def __len__(self) -> int:
        return 1


class CacheMemoryTests(SynchronousTestCase):
    """Entries are freed by reference counting alone, so the cyclic collector can idle."""

    @skipIf(platform.python_implementation() != "CPython", "needs reference counting")
    def test_droppedValuesFreedWithoutCollector(self) -> None:
        """Values evicted, replaced, expired or invalidated are freed with the collector off."""
        clock = Clock()
        cache = Cache(clock, ttl=10, max_entries=2)
        refs = []
        enabled = gc.isenabled()
        gc.disable()
        try:
            for key in (b"evicted", b"replaced", b"expired", b"invalidated"):
                value = Value()
                refs.append(weakref.ref(value))
                cache.put(key, value)
                del value
                if key == b"evicted":
                    cache.put(b"x", b"1")
                    cache.put(b"y", b"2")
                elif key == b"replaced":
                    cache.put(key, b"new")
                elif key == b"expired":
                    clock.advance(10)
                else:
                    cache.invalidate(key)
            self.assertEqual([ref() for ref in refs], [None, None, None, None])
        finally:
            if enabled:
                gc.enable()
            cache.stop()


class CacheDatabaseTests(SynchronousTestCase):
    """Entries are keyed by (database, key): one database's value never answers another's."""

    def setUp(self) -> None:
        self.clock = Clock()
        self.cache = Cache(self.clock, ttl=60, miss_ttl=5, max_entries=10)
        self.addCleanup(self.cache.stop)

    def test_databasesAreSeparate(self) -> None:
        """A value cached in database 0 is a miss in database 3, and the other way round."""
        self.cache.put(b"k", b"zero")
        self.assertIs(self.cache.get(b"k", 3), MISSING)
        self.cache.put(b"k", b"three", 3)
        self.assertEqual(self.cache.get(b"k"), b"zero")
        self.assertEqual(self.cache.get(b"k", 3), b"three")
        self.assertEqual(self.cache.get(b"k", 0), b"zero")

    def test_placeholdersCarryTheirDatabase(self) -> None:
        """A fetch reserved in database 5 fills database 5 only; one in database 0 is apart."""
        five = self.cache.reserve(b"k", 5)
        zero = self.cache.reserve(b"k")
        self.assertEqual((five.key, five.db, zero.db), (b"k", 5, 0))
        self.assertIs(self.cache.pending(b"k", 5), five)
        self.assertIs(self.cache.pending(b"k"), zero)
        self.assertTrue(self.cache.fill(five, b"v5"))
        self.assertTrue(zero.live)
        self.assertEqual(self.cache.get(b"k", 5), b"v5")
        self.assertIs(self.cache.get(b"k"), MISSING)

    def test_invalidateByNameDropsEveryDatabase(self) -> None:
        """invalidate(key) (a tracking message names a key, not its database) drops the key
        in every database and voids its fetches there."""
        self.cache.put(b"k", b"0")
        self.cache.put(b"k", b"2", 2)
        self.cache.put(b"other", b"x", 2)
        fetch = self.cache.reserve(b"k", 7)
        self.cache.invalidate(b"k")
        self.assertIs(self.cache.get(b"k"), MISSING)
        self.assertIs(self.cache.get(b"k", 2), MISSING)
        self.assertFalse(fetch.live)
        self.assertEqual(self.cache.get(b"other", 2), b"x")

    def test_invalidateInOneDatabase(self) -> None:
        """invalidate(key, db) drops the key of that database only."""
        self.cache.put(b"k", b"0")
        self.cache.put(b"k", b"2", 2)
        self.assertTrue(self.cache.invalidate(b"k", 2))
        self.assertEqual(self.cache.get(b"k"), b"0")
        self.assertIs(self.cache.get(b"k", 2), MISSING)
        self.assertTrue(self.cache.invalidate(b"k", 0))
        self.assertIs(self.cache.get(b"k"), MISSING)

    def test_invalidateDatabase(self) -> None:
        """invalidate_db(n) drops every entry and voids every fetch of database n alone."""
        self.cache.put(b"a", b"0")
        self.cache.put(b"a", b"1", 1)
        self.cache.put(b"b", b"1", 1)
        fetch = self.cache.reserve(b"c", 1)
        other = self.cache.reserve(b"c")
        self.assertEqual(self.cache.invalidate_db(1), 2)
        self.assertEqual(self.cache.get(b"a"), b"0")
        self.assertIs(self.cache.get(b"a", 1), MISSING)
        self.assertIs(self.cache.get(b"b", 1), MISSING)
        self.assertFalse(fetch.live)
        self.assertTrue(other.live)
        self.assertEqual(self.cache.invalidate_db(0), 1)
        self.assertEqual(len(self.cache), 0)

    def test_expiryAndEvictionPerDatabase(self) -> None:
        """Entries of other databases expire and are evicted like those of database 0."""
        self.cache.put(b"k", b"v", 4)
        self.clock.advance(60)
        self.assertIs(self.cache.get(b"k", 4), MISSING)
        self.assertEqual(self.cache.expirations, 1)
        for number in range(11):
            self.cache.put(b"k%d" % number, b"v", number % 3)
        self.assertEqual(len(self.cache), 10)
        self.assertIs(self.cache.get(b"k0", 0), MISSING)

    def test_statsCountEntriesPerDatabase(self) -> None:
        """stats()["databases"] maps each database holding entries to its count."""
        self.assertEqual(self.cache.stats()["databases"], {})
        self.cache.put(b"a", b"1")
        self.assertEqual(self.cache.stats()["databases"], {0: 1})
        self.cache.put(b"a", b"1", 3)
        self.cache.put(b"b", None, 3)
        self.assertEqual(self.cache.stats()["databases"], {0: 1, 3: 2})


class CacheByteBudgetTests(SynchronousTestCase):
    """max_bytes bounds the sum of key and value sizes, evicting the least recently used."""

    def setUp(self) -> None:
        self.clock = Clock()
        self.cache = Cache(self.clock, ttl=60, miss_ttl=5, max_entries=100, max_bytes=10)

    def test_bytesCountKeyAndValue(self) -> None:
        """An entry costs its key's length plus its value's (a cached miss: its key's)."""
        self.cache.put(b"ab", b"123")
        self.cache.put(b"c", None)
        self.cache.put(b"d", b"1", 2)
        self.assertEqual(self.cache.bytes, 5 + 1 + 2)
        self.cache.put(b"ab", b"1")
        self.assertEqual(self.cache.bytes, 3 + 1 + 2)

    def test_leastRecentlyUsedGoFirst(self) -> None:
        """Going over the budget evicts the oldest entries until the sum fits again."""
        self.cache.put(b"a", b"1111")  # 5
        self.cache.put(b"b", b"22")  # 3
        self.cache.get(b"a")
        self.cache.put(b"c", b"333")  # 4: 12 > 10, b goes
        self.assertIn(b"a", self.cache)
        self.assertNotIn(b"b", self.cache)
        self.assertIn(b"c", self.cache)
        self.assertEqual((self.cache.bytes, self.cache.evictions), (9, 1))
        self.cache.put(b"d", b"4444444")  # 8: a and c go
        self.assertEqual(list(self.cache._entries), [b"d"])
        self.assertEqual((self.cache.bytes, self.cache.evictions), (8, 3))

    def test_entryLargerThanBudgetIsNotKept(self) -> None:
        """A value that alone exceeds the budget is not cached, and evicts nothing."""
        self.cache.put(b"a", b"1")
        self.cache.put(b"big", b"x" * 20)
        self.assertNotIn(b"big", self.cache)
        self.assertIn(b"a", self.cache)
        self.assertEqual(self.cache.bytes, 2)
        self.assertEqual(list(self.cache._entries), [b"a"])

    def test_everyRemovalReturnsItsBytes(self) -> None:
        """Expiry, invalidation (by key, database or all) and stop give the bytes back."""
        self.cache.put(b"a", b"1")
        self.cache.put(b"b", None)
        self.clock.advance(5)
        self.assertEqual(self.cache.bytes, 2)
        self.cache.invalidate(b"a")
        self.assertEqual(self.cache.bytes, 0)
        self.cache.put(b"a", b"1", 1)
        self.cache.put(b"b", b"2", 2)
        self.cache.invalidate_db(1)
        self.assertEqual(self.cache.bytes, 2)
        self.cache.put(b"c", b"3")
        self.cache.invalidate_all()
        self.assertEqual(self.cache.bytes, 0)
        self.cache.put(b"c", b"3")
        self.cache.stop()
        self.assertEqual(self.cache.bytes, 0)

    def test_noBudget(self) -> None:
        """max_bytes 0 (the default) counts bytes but limits only the entry count."""
        cache = Cache(self.clock, ttl=60)
        cache.put(b"k", b"x" * 1000)
        self.assertEqual(cache.bytes, 1001)
        self.assertEqual((cache.stats()["bytes"], cache.stats()["max_bytes"]), (1001, 0))
        cache.stop()

    @settings(max_examples=200, deadline=None)
    @given(st.lists(st.tuples(st.sampled_from(["put", "miss", "get", "inv", "tick"]),
                              st.integers(0, 5), st.integers(0, 8)), max_size=60))
    def test_budgetHolds(self, ops) -> None:
        """After any sequence of operations the byte count is the sum of the entries' sizes
        and at most the budget."""
        clock = Clock()
        cache = Cache(clock, ttl=10, miss_ttl=3, max_bytes=12)
        for op, key, size in ops:
            name = b"k%d" % key
            if op == "put":
                cache.put(name, b"v" * size)
            elif op == "miss":
                cache.put(name, None)
            elif op == "get":
                cache.get(name)
            elif op == "inv":
                cache.invalidate(name)
            else:
                clock.advance(size)
            total = sum(len(entry[2]) + len(entry[0] or b"")
                        for entry in cache._entries.values())
            self.assertEqual(cache.bytes, total)
            self.assertLessEqual(cache.bytes, 12)
        cache.stop()


class CacheLifeBoundTests(SynchronousTestCase):
    """An entry's life may be bounded below the cache TTL (its key's remaining TTL)."""

    def setUp(self) -> None:
        self.clock = Clock()
        self.cache = Cache(self.clock, ttl=60, miss_ttl=5)
        self.addCleanup(self.cache.stop)

    def test_boundedEntryExpiresAtItsBound(self) -> None:
        """A value put with a life of 0.1 s is a hit until then and gone at 0.1 s."""
        self.cache.put(b"k", b"v", life=0.1)
        self.clock.advance(0.099)
        self.assertEqual(self.cache.get(b"k"), b"v")
        self.clock.advance(0.001)
        self.assertIs(self.cache.get(b"k"), MISSING)
        self.assertEqual(self.cache.expirations, 1)

    def test_boundLongerThanTtlKeepsTtl(self) -> None:
        """A bound beyond the cache TTL leaves the TTL in charge."""
        self.cache.put(b"k", b"v", life=3600)
        self.clock.advance(60)
        self.assertIs(self.cache.get(b"k"), MISSING)

    def test_spentBoundStoresNothing(self) -> None:
        """A life of 0 or less stores nothing and drops the entry it would replace."""
        self.cache.put(b"k", b"old")
        self.cache.put(b"k", b"v", life=0)
        self.assertIs(self.cache.get(b"k"), MISSING)
        self.assertEqual(self.cache.bytes, 0)
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_overdueBoundedEntryIsAMissBeforeItsTimerRuns(self) -> None:
        """A bounded entry read after its deadline is a miss even if the reactor has not
        yet run its timer (a read handled in the same iteration)."""
        self.cache.put(b"k", b"v", life=0.1)
        self.clock.rightNow += 0.2  # time passed; the timer has not run
        self.assertIs(self.cache.get(b"k"), MISSING)
        self.assertEqual(self.cache.expirations, 1)
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_fillWithLife(self) -> None:
        """A fetch's fill takes the life bound too."""
        placeholder = self.cache.reserve(b"k")
        self.assertTrue(self.cache.fill(placeholder, b"v", 0.5))
        self.clock.advance(0.5)
        self.assertIs(self.cache.get(b"k"), MISSING)
