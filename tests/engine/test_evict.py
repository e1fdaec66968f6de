"""Tests for kvtwist.engine.evict: maxmemory, the eviction policies and the OOM refusal."""

from __future__ import annotations

from twisted.trial.unittest import SynchronousTestCase

from kvtwist.engine import evict
from kvtwist.engine.keyspace import DEL
from kvtwist.engine.evict import OOM
from kvtwist.wire.replies import OK, Error
from tests.helpers import SessionMixin


class ParseTests(SynchronousTestCase):
    """maxmemory sizes and policies parse as Redis's."""

    def test_sizes(self):
        """Plain bytes, k/m/g (powers of 1000) and kb/mb/gb (powers of 1024)."""
        self.assertEqual([evict.parse_memory(text) for text in ("100", "1k", "1kb", "2MB", "1g")],
                         [100, 1000, 1024, 2 * 1024 ** 2, 1000 ** 3])
        self.assertRaises(ValueError, evict.parse_memory, "lots")

    def test_policies(self):
        """Redis's eight policies are accepted (any case); others get Redis's list."""
        self.assertEqual(evict._parse_policy("ALLKEYS-LRU"), "allkeys-lru")
        self.assertEqual(evict._parse_policy("volatile-lfu"), "volatile-lfu")
        error = self.assertRaises(ValueError, evict._parse_policy, "lfu")
        self.assertEqual(str(error), "argument(s) must be one of the following: volatile-lru, "
                         "volatile-lfu, volatile-random, volatile-ttl, allkeys-lru, "
                         "allkeys-lfu, allkeys-random, noeviction")


class LfuTests(SessionMixin, SynchronousTestCase):
    """The LFU policies keep Redis's logarithmic access counters (OBJECT FREQ)."""

    def test_counter_grows_and_decays(self):
        """A new key starts at 5, accesses raise it (the first ones surely), each
        lfu-decay-time minutes idle take one off; OBJECT IDLETIME is refused under LFU and
        FREQ outside it."""
        self.call("set", "k", "v")
        self.assertIn("LFU maxmemory policy is not selected",
                      self.call("object", "freq", "k").message)
        self.call("config", "set", "maxmemory-policy", "allkeys-lfu")
        self.call("del", "k")
        self.call("set", "k", "v")
        self.assertEqual(self.call("object", "freq", "k"), 5)
        self.call("get", "k")
        self.assertEqual(self.call("object", "freq", "k"), 6)
        for _ in range(200):
            self.call("get", "k")
        grown = self.call("object", "freq", "k")
        self.assertTrue(6 < grown < 100, grown)
        self.clock.advance(3 * 60)
        self.assertEqual(self.call("object", "freq", "k"), grown - 3)
        self.assertIn("LFU maxmemory policy is selected",
                      self.call("object", "idletime", "k").message)
        self.call("config", "set", "lfu-decay-time", "0")
        self.assertEqual(self.call("object", "freq", "k"), grown)
        self.call("config", "set", "maxmemory-policy", "allkeys-lru")
        self.assertIn("LFU maxmemory policy is not selected",
                      self.call("object", "freq", "k").message)

    def test_least_frequently_used_evicted(self):
        """allkeys-lfu evicts the keys read least often; volatile-lfu only expiring ones."""
        self.call("config", "set", "maxmemory-policy", "allkeys-lfu")
        self.call("config", "set", "maxmemory-samples", "64")
        for i in range(20):
            self.call("set", "key:%02d" % i, "x" * 100)
        for _ in range(30):
            for i in range(10):
                self.call("get", "key:%02d" % i)
        used = self.store.databases.meter.used
        evict._set_maxmemory(self.store, used * 3 // 4)
        self.assertTrue(all(self.call("exists", "key:%02d" % i) for i in range(10)))
        self.assertGreater(self.store.evictor.evicted, 0)
        self.call("flushall")
        evict._set_maxmemory(self.store, 0)
        self.call("config", "set", "maxmemory-policy", "volatile-lfu")
        self.call("set", "keep", "x" * 1000)
        self.call("set", "temp", "x" * 1000, "ex", "100")
        evict._set_maxmemory(self.store, self.store.databases.meter.used - 10)
        self.assertEqual((self.call("exists", "keep"), self.call("exists", "temp")), (1, 0))


class EvictionTests(SessionMixin, SynchronousTestCase):
    """Over maxmemory, keys are evicted by policy, or denyoom commands refused."""

    def fill(self, count=20, ttl=False):
        for i in range(count):
            args = ["set", "key:%02d" % i, "x" * 100] + (["px", str(1000 + i)] if ttl else [])
            self.assertEqual(self.call(*args), OK)

    def limit(self, policy, maxmemory):
        evict._set_policy(self.store, policy)
        evict._set_maxmemory(self.store, maxmemory)

    def test_meter_counts_keys(self):
        """The meter is each key's key and value lengths plus a fixed overhead."""
        self.fill(3)
        self.assertEqual(self.store.databases.meter.used, 3 * (6 + 100 + evict_overhead()))

    def test_noeviction_refuses_writes_that_grow(self):
        """With noeviction, SET gets OOM over the limit; GET and DEL still run."""
        self.fill(10)
        self.limit("noeviction", 1000)
        self.assertEqual(self.call("set", "more", "x"), Error(OOM))
        self.assertEqual(self.call("get", "key:00"), b"x" * 100)
        self.assertEqual(self.call("del", "key:00"), 1)

    def test_allkeys_random_evicts_until_it_fits(self):
        """allkeys-random evicts keys (journalled DELs) until the data fits, and counts them."""
        self.fill(20)
        self.limit("allkeys-random", 2000)
        self.assertEqual(self.call("set", "new", "v"), OK)
        meter = self.store.databases.meter.used
        self.assertLessEqual(meter - (3 + 1 + evict_overhead()), 2000)
        evicted = self.store.evictor.evicted
        self.assertGreater(evicted, 0)
        self.assertEqual(sum(1 for effect in self.journal.effects if effect[0] == DEL), evicted)
        self.assertEqual(self.call("dbsize"), 21 - evicted)

    def test_volatile_ttl_evicts_nearest_expiry(self):
        """volatile-ttl evicts the keys closest to expiring first, and never persistent ones."""
        self.fill(5, ttl=True)
        self.call("set", "keep", "y" * 100)
        evict._set_samples(self.store, 64)  # the nearest of 5 is then sampled but for (4/5)**64
        self.limit("volatile-ttl", 5 * (6 + 100 + evict_overhead()))
        self.call("get", "keep")
        self.assertIsNone(self.call("get", "key:00"))
        self.assertEqual(self.call("get", "keep"), b"y" * 100)

    def test_volatile_without_expiring_keys_is_oom(self):
        """A volatile policy with no key to evict refuses denyoom commands."""
        self.fill(10)
        self.limit("volatile-random", 1000)
        self.assertEqual(self.call("set", "more", "x"), Error(OOM))

    def test_lru_evicts_least_recently_used(self):
        """allkeys-lru evicts the key accessed longest ago among its samples."""
        self.fill(2)
        keyspace = self.store.keyspace
        keyspace.access = {b"key:00": 10.0, b"key:01": 5.0}
        evict._set_samples(self.store, 64)
        self.limit("allkeys-lru", 300)
        self.assertEqual(self.call("get", "key:00"), b"x" * 100)
        self.assertIsNone(self.call("get", "key:01"))

    def test_exec_over_maxmemory_is_aborted(self):
        """Over maxmemory an EXEC holding a denyoom command is aborted; a read-only one runs."""
        self.fill(10)
        self.call("multi")
        self.call("set", "x", "1")
        self.limit("noeviction", 1000)
        self.assertEqual(self.call("exec"), Error("EXECABORT Transaction discarded because of: "
                                                  + OOM))
        self.call("multi")
        self.call("get", "key:00")
        self.assertEqual(self.call("exec"), [b"x" * 100])

    def test_oom_in_multi_dooms_exec(self):
        """A denyoom command refused inside MULTI fails the EXEC."""
        self.fill(10)
        self.limit("noeviction", 1000)
        self.call("multi")
        self.assertEqual(self.call("set", "a", "b"), Error(OOM))
        self.assertTrue(self.call("exec").message.startswith("EXECABORT"))


def evict_overhead() -> int:
    from kvtwist.engine.keyspace import PER_KEY
    return PER_KEY


class TenacityTests(SessionMixin, SynchronousTestCase):
    """maxmemory-eviction-tenacity bounds one command's eviction time, as Redis's."""

    def test_time_limits(self):
        """Up to 10: 50 us a step; then 15 % more a step; 100 is unlimited (Redis's)."""
        self.assertAlmostEqual(evict.time_limit(10), 500e-6)
        self.assertAlmostEqual(evict.time_limit(11), 575e-6)
        self.assertIn("between 0 and 100", self.call(
            "config", "set", "maxmemory-eviction-tenacity", "101").message)
        self.assertEqual(self.call("config", "set", "maxmemory-eviction-tenacity", "100"), OK)
        self.assertEqual(self.store.evictor.tenacity, 100)

    def test_out_of_time_is_not_a_failure(self):
        """When the time runs out eviction stops and the command still runs (EVICT_RUNNING);
        the next command evicts more."""
        self.call("config", "set", "maxmemory-policy", "allkeys-random")
        for i in range(100):
            self.call("set", "key:%03d" % i, "x" * 100)
        clock = self.clock
        real = clock.seconds
        ticks = iter(range(10 ** 6))
        clock.seconds = lambda: real() + next(ticks)  # every reading a second later
        self.addCleanup(setattr, clock, "seconds", real)
        evict._set_maxmemory(self.store, 1000)
        self.assertEqual(self.call("set", "new", "v"), OK)
        self.assertGreater(self.call("dbsize"), 10)
