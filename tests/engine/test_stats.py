"""Tests for kvtwist.engine.stats: what the per-command hook counts."""

from __future__ import annotations

from twisted.trial.unittest import SynchronousTestCase

from kvtwist.engine import stats
from kvtwist.wire.replies import Error
from tests.helpers import SessionMixin


class StatsTests(SessionMixin, SynchronousTestCase):
    def test_subcommands_counted_apart(self):
        """A container's subcommands are counted as 'config|get', as Redis 7 names them."""
        self.call("config", "get", "hz")
        self.call("config", "nosuch")
        names = {stat.name for stat in self.store.stats.commands[
            self.session.table[b"config"]].subs.values()}
        self.assertEqual(names, {b"config|get"})
        self.assertEqual(self.store.stats.commands[self.session.table[b"config"]].failed, 1)

    def test_rejected(self):
        """Arity errors and unknown commands are rejected calls and error replies."""
        self.call("get")
        self.call("nosuch")
        stat = self.store.stats.commands[self.session.table[b"get"]]
        self.assertEqual((stat.calls, stat.rejected), (0, 1))
        self.assertEqual(self.store.stats.errors, {"ERR": 2})

    def test_error_codes_limited(self):
        """At most 128 distinct error codes are tracked; all error replies are counted."""
        counter = stats.Stats(self.clock)
        for index in range(200):
            counter.error(Error("E%d oops" % index))
        self.assertEqual(len(counter.errors), stats.MAX_ERROR_CODES)
        self.assertEqual(counter.error_replies, 200)

    def test_hits_and_misses_only_for_reads(self):
        """Reads count a hit or miss per key; writes count neither."""
        self.call("set", "a", "1")
        self.call("exists", "a", "b")
        self.call("del", "a")
        self.assertEqual((self.store.stats.hits, self.store.stats.misses), (1, 1))

    def test_percentiles(self):
        """Percentiles report the upper bound of the bucket holding them."""
        stat = stats.CommandStat(b"x", None)
        stat.histogram[3] = 99
        stat.histogram[10] = 1
        counter = stats.Stats(self.clock)
        self.assertEqual(counter.percentile_line(stat), "p50=0.008,p99=0.008,p99.9=1.024")
